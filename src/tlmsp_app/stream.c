/*
 * Stream mode (msp/tlmsp_stream.h): a plain byte stream in one TLMSP
 * session, with half-close and back-pressure both ways, on libev.
 *
 * Two sides, each a pair of descriptors with an output queue: t (the TLMSP
 * socket, in = out) and p (the plain socket, or stdin and stdout). The
 * engine runs with half_close, so each direction's close_notify ends only
 * that direction. The closed event always runs from the loop (a zero timer),
 * never from inside a call of the program, so the program may free the
 * stream there without pulling it from under a caller.
 */
#include "msp/tlmsp_stream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "msp/buf.h"
#include "msp/tlmsp_http.h"

#define READ_SIZE (128u << 10)
#define KEEP_QUEUE (256u << 10) /* an empty queue bigger than this gives its memory back */

/*
 * One read buffer per thread, not per session: a read is consumed (decrypted into the plain queue, or framed and
 * sealed into the TLMSP queue) before the callback returns, and idle sessions then cost only their state.
 */
static _Thread_local uint8_t rbuf[READ_SIZE];

typedef struct side {
    int in_fd, out_fd; /* -1 until attached; out_fd -1 again once shut (a pipe is closed) */
    ev_io rd, wr;
    msp_buf_t out;
    size_t off; /* bytes of out already written */
    int reading;
    int blocked;   /* reading stopped because the other side's queue is above the high-water mark */
    int eof;       /* nothing more to read */
    int got_bytes; /* something was read */
    int shut;      /* our writing ended */
} side_t;

struct msp_tlmsp_stream {
    struct ev_loop *loop;
    msp_tlmsp_stream_cfg_t cfg;
    msp_tlmsp_endpoint_cfg_t engine;
    msp_tlmsp_conn_t *conn;
    msp_http_t *http;
    side_t t, p;
    int announced; /* ready reported */
    int we_closed; /* our close_notify is queued */
    int done;
    ev_timer fin;       /* runs the closed event from the loop */
    ev_timer handshake; /* from attaching the TLMSP side to ready */
    uint64_t up, down;
    msp_error_t err;
};

static size_t pending(const side_t *d)
{
    return d->out.len - d->off;
}

static void side_init(side_t *d, size_t limit)
{
    d->in_fd = d->out_fd = -1;
    msp_buf_init(&d->out, limit);
}

static void set_read(msp_tlmsp_stream_t *s, side_t *d, int on)
{
    if (d->in_fd < 0 || on == d->reading) {
        return;
    }
    d->reading = on;
    if (on) {
        ev_io_start(s->loop, &d->rd);
    } else {
        ev_io_stop(s->loop, &d->rd);
    }
}

static void side_stop(msp_tlmsp_stream_t *s, side_t *d)
{
    set_read(s, d, 0);
    if (d->out_fd >= 0) {
        ev_io_stop(s->loop, &d->wr);
    }
}

/* ---- ending ---- */

static void on_fin(struct ev_loop *loop, ev_timer *w, int revents)
{
    msp_tlmsp_stream_t *s = w->data;
    (void)loop;
    (void)revents;
    s->cfg.ev.closed(s->cfg.ev.user, s, &s->err); /* may free s */
}

static void finish(msp_tlmsp_stream_t *s)
{
    if (s->done) {
        return;
    }
    s->done = 1;
    ev_timer_stop(s->loop, &s->handshake);
    side_stop(s, &s->t);
    side_stop(s, &s->p);
    ev_timer_start(s->loop, &s->fin);
}

/* Writes what the kernel takes; the rest waits for EV_WRITE. -1 (errno set) when the descriptor refuses. */
static int flush(msp_tlmsp_stream_t *s, side_t *d)
{
    if (d->out_fd < 0) {
        return 0; /* not attached yet (or shut): the queue waits */
    }
    while (d->off < d->out.len) {
        ssize_t n = write(d->out_fd, d->out.base + d->off, d->out.len - d->off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) {
            ev_io_start(s->loop, &d->wr);
            return 0;
        }
        if (n < 0) {
            return -1;
        }
        d->off += (size_t)n;
    }
    d->out.len = d->off = 0;
    if (d->out.cap > KEEP_QUEUE) {
        size_t limit = d->out.limit;
        msp_buf_free(&d->out);
        msp_buf_init(&d->out, limit);
    }
    ev_io_stop(s->loop, &d->wr);
    return 0;
}

/* The queue before appending: compacted once more than half is written, so that it does not creep. */
static msp_buf_t *queue(side_t *d)
{
    if (d->off > 0 && d->off == d->out.len) {
        d->out.len = d->off = 0;
    } else if (d->off > (1u << 20) && 2 * d->off > d->out.len) {
        memmove(d->out.base, d->out.base + d->off, d->out.len - d->off);
        d->out.len -= d->off;
        d->off = 0;
    }
    return &d->out;
}

static void fail(msp_tlmsp_stream_t *s, int code, int alert, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends the session with a reason; alert: tell the peer with a fatal internal_error (its socket still works). */
static void fail(msp_tlmsp_stream_t *s, int code, int alert, const char *fmt, ...)
{
    if (s->done) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char why[300];
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    msp_error_set(&s->err, code, "stream", "%s", why);
    if (alert && msp_tlmsp_conn_ready(s->conn) && !s->we_closed &&
        msp_tlmsp_conn_alert(s->conn, 0, 2, MSP_ALERT_INTERNAL_ERROR, queue(&s->t)) == MSP_OK) {
        flush(s, &s->t);
    }
    finish(s);
}

static void tlmsp_failed(msp_tlmsp_stream_t *s);

/* ---- the state after every event ---- */

/* Reading from a side stops while the other's queue is above the high-water mark and resumes below half. */
static void backpressure(msp_tlmsp_stream_t *s, side_t *reader, const side_t *other)
{
    size_t hw = s->cfg.high_water;
    if (!reader->blocked && pending(other) > hw) {
        reader->blocked = 1;
    } else if (reader->blocked && pending(other) <= hw / 2) {
        reader->blocked = 0;
    }
}

/* What both sides should do now; ends the session when both directions are closed and written. */
static void settle(msp_tlmsp_stream_t *s)
{
    if (s->done) {
        return;
    }
    int peer_closed = msp_tlmsp_conn_peer_closed(s->conn);
    /* the peer's close_notify: the plain side's writing ends once what came before it is out */
    if (peer_closed && s->p.out_fd >= 0 && !s->p.shut && pending(&s->p) == 0) {
        s->p.shut = 1;
        ev_io_stop(s->loop, &s->p.wr);
        if (s->p.out_fd == s->p.in_fd) {
            shutdown(s->p.out_fd, SHUT_WR);
        } else {
            close(s->p.out_fd); /* a pipe or file: its reader sees the end */
            s->p.out_fd = -1;
        }
    }
    if (s->we_closed && (peer_closed || s->t.eof) && pending(&s->t) == 0 && s->p.shut) {
        msp_error_clear(&s->err);
        finish(s);
        return;
    }
    if (s->t.eof && !peer_closed) {
        fail(s, MSP_ERR_IO, 0, "the TLMSP peer closed the connection without close_notify");
        return;
    }
    backpressure(s, &s->t, &s->p);
    backpressure(s, &s->p, &s->t);
    set_read(s, &s->t, !s->t.eof && !s->t.blocked);
    set_read(s, &s->p, s->announced && !s->p.eof && !s->we_closed && !s->p.blocked);
}

/* ---- the TLMSP side ---- */

static int drop_segment(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg)
{
    (void)user;
    (void)dir;
    (void)seg;
    return MSP_OK;
}

static msp_http_dir_t outgoing(const msp_tlmsp_stream_t *s)
{
    return s->cfg.role == MSP_TLMSP_ID_CLIENT ? MSP_HTTP_REQUESTS : MSP_HTTP_RESPONSES;
}

static void on_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    msp_tlmsp_stream_t *s = user;
    (void)ctx;
    msp_buf_put(queue(&s->p), p, len);
    s->down += len;
    if (s->http != NULL) {
        /* the other direction is followed only to pair answers with requests (HEAD, CONNECT); its
         * bytes go out unchanged whatever the framer thinks of them */
        msp_http_feed(s->http, outgoing(s) == MSP_HTTP_REQUESTS ? MSP_HTTP_RESPONSES : MSP_HTTP_REQUESTS, p, len,
                      drop_segment, NULL, NULL);
    }
}

static void on_alert(void *user, uint8_t ctx, uint8_t level, uint8_t desc)
{
    msp_tlmsp_stream_t *s = user;
    (void)ctx;
    if (level == 2) {
        msp_error_set(&s->err, MSP_ERR_CLASS_PEER_ALERT + desc, "stream", "the peer sent a fatal %s alert (%u)",
                      msp_error_name(desc), desc);
    }
}

static void tlmsp_input(msp_tlmsp_stream_t *s, size_t n)
{
    size_t used = n;
    int ret = msp_tlmsp_conn_input(s->conn, rbuf, &used, queue(&s->t));
    if (flush(s, &s->t) != 0 && ret == MSP_OK) {
        tlmsp_failed(s);
        return;
    }
    if (msp_buf_error(&s->p.out) != MSP_OK) {
        fail(s, MSP_ERR_LIMIT, 1, "plain side: more than %zu bytes queued", s->p.out.limit);
        return;
    }
    if (flush(s, &s->p) != 0) {
        fail(s, MSP_ERR_IO, 1, "plain side: %s", strerror(errno));
        return;
    }
    if (ret != MSP_OK && ret != MSP_ERR_CLASS_PEER_ALERT + 0) {
        if (s->err.code == MSP_OK) {
            msp_error_set(&s->err, ret, "stream", "TLMSP%s: %s%s", s->announced ? "" : " handshake failed",
                          MSP_ERR_IS_PEER_ALERT(ret) ? "the peer sent " : "",
                          msp_error_name(MSP_ERR_IS_PEER_ALERT(ret) ? ret & 0xff : ret));
        }
        finish(s);
        return;
    }
    if (!s->announced && msp_tlmsp_conn_ready(s->conn)) {
        s->announced = 1;
        ev_timer_stop(s->loop, &s->handshake);
        if (s->cfg.ev.ready != NULL) {
            s->cfg.ev.ready(s->cfg.ev.user, s); /* may attach the plain side or abort */
        }
    }
    settle(s);
}

static void tlmsp_read(msp_tlmsp_stream_t *s)
{
    ssize_t n = read(s->t.in_fd, rbuf, READ_SIZE);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        tlmsp_failed(s);
        return;
    }
    if (n == 0) {
        s->t.eof = 1;
        set_read(s, &s->t, 0);
        if (!msp_tlmsp_conn_ready(s->conn) && !msp_tlmsp_conn_peer_closed(s->conn)) {
            fail(s, MSP_ERR_IO, 0, "TLMSP side: the connection closed during the handshake");
            return;
        }
        settle(s);
        return;
    }
    s->t.got_bytes = 1;
    tlmsp_input(s, (size_t)n);
}

/* ---- the plain side ---- */

static int send_segment(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg)
{
    msp_tlmsp_stream_t *s = user;
    (void)dir;
    if (seg->len == 0) {
        return MSP_OK;
    }
    uint8_t ctx = seg->kind == MSP_HTTP_HEADER ? s->cfg.header_ctx : s->cfg.body_ctx;
    return msp_tlmsp_conn_send(s->conn, ctx, seg->p, seg->len, queue(&s->t));
}

static void plain_eof(msp_tlmsp_stream_t *s)
{
    s->p.eof = 1;
    set_read(s, &s->p, 0);
    if (s->http != NULL) {
        msp_http_eof(s->http, outgoing(s), send_segment, s, NULL); /* a close-delimited body ends here */
    }
    if (msp_tlmsp_conn_alert(s->conn, 0, 1, 0, queue(&s->t)) != MSP_OK) {
        fail(s, MSP_ERR_IO, 0, "cannot send close_notify");
        return;
    }
    s->we_closed = 1;
}

static void plain_read(msp_tlmsp_stream_t *s)
{
    ssize_t n = read(s->p.in_fd, rbuf, READ_SIZE);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n < 0) {
        fail(s, MSP_ERR_IO, 1, "plain side: %s", strerror(errno));
        return;
    }
    if (n == 0) {
        plain_eof(s);
    } else {
        s->up += (uint64_t)n;
        msp_error_t err;
        msp_error_clear(&err);
        int ret = s->http != NULL ? msp_http_feed(s->http, outgoing(s), rbuf, (size_t)n, send_segment, s, &err)
                                  : msp_tlmsp_conn_send(s->conn, s->cfg.ctx, rbuf, (size_t)n, queue(&s->t));
        if (ret != MSP_OK) {
            fail(s, ret, 1, "plain side: %s", err.detail[0] != '\0' ? err.detail : msp_error_name(ret));
            return;
        }
    }
    if (flush(s, &s->t) != 0) {
        tlmsp_failed(s);
        return;
    }
    settle(s);
}

/* ---- the loop ---- */

static void on_handshake_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    msp_tlmsp_stream_t *s = w->data;
    (void)loop;
    (void)revents;
    fail(s, MSP_ERR_IO, 0, "the handshake timed out after %g s", s->cfg.handshake_timeout);
}

/* The TLMSP socket refused a read or write (errno): says what it means at this point of the session. */
static void tlmsp_failed(msp_tlmsp_stream_t *s)
{
    int e = errno;
    if (!s->announced && s->cfg.role == MSP_TLMSP_ID_CLIENT && s->down == 0 && !s->t.got_bytes) {
        fail(s, MSP_ERR_IO, 0, "cannot reach the first hop: %s", strerror(e));
    } else if (msp_tlmsp_conn_peer_closed(s->conn) && !s->we_closed) {
        fail(s, MSP_ERR_IO, 0, "the peer closed its connection after its close_notify, before our direction ended (%s)",
             strerror(e));
    } else {
        fail(s, MSP_ERR_IO, 0, "TLMSP side: %s", strerror(e));
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    msp_tlmsp_stream_t *s = w->data;
    (void)loop;
    (void)revents;
    if (s->done) {
        return;
    }
    if (w == &s->t.wr || w == &s->p.wr) {
        side_t *d = w == &s->t.wr ? &s->t : &s->p;
        if (flush(s, d) != 0) {
            if (d == &s->t) {
                tlmsp_failed(s);
            } else {
                fail(s, MSP_ERR_IO, 1, "plain side: %s", strerror(errno));
            }
            return;
        }
        settle(s);
    } else if (w == &s->t.rd) {
        tlmsp_read(s);
    } else {
        plain_read(s);
    }
}

static void side_watch(msp_tlmsp_stream_t *s, side_t *d, int in_fd, int out_fd)
{
    d->in_fd = in_fd;
    d->out_fd = out_fd;
    ev_io_init(&d->rd, on_io, in_fd, EV_READ);
    ev_io_init(&d->wr, on_io, out_fd, EV_WRITE);
    d->rd.data = d->wr.data = s;
}

/* ---- public API ---- */

int msp_tlmsp_stream_new(const msp_tlmsp_stream_cfg_t *cfg, msp_tlmsp_stream_t **out)
{
    if (out == NULL) {
        return MSP_ERR_ARGUMENT;
    }
    *out = NULL;
    if (cfg == NULL || cfg->loop == NULL || cfg->engine == NULL || cfg->ev.closed == NULL ||
        (cfg->role != MSP_TLMSP_ID_CLIENT && cfg->role != MSP_TLMSP_ID_SERVER) ||
        (cfg->http ? cfg->header_ctx == 0 || cfg->body_ctx == 0 : cfg->ctx == 0)) {
        return MSP_ERR_ARGUMENT;
    }
    msp_tlmsp_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    s->loop = cfg->loop;
    s->cfg = *cfg;
    if (s->cfg.high_water == 0) {
        s->cfg.high_water = MSP_TLMSP_STREAM_HIGH_WATER;
    }
    /* above the mark by at most one read and its records' overhead */
    side_init(&s->t, 2 * s->cfg.high_water + 4 * READ_SIZE);
    side_init(&s->p, 2 * s->cfg.high_water + 4 * READ_SIZE);
    ev_timer_init(&s->fin, on_fin, 0, 0);
    s->fin.data = s;
    if (s->cfg.handshake_timeout == 0) {
        s->cfg.handshake_timeout = MSP_TLMSP_STREAM_HANDSHAKE_TIMEOUT;
    }
    ev_timer_init(&s->handshake, on_handshake_timeout, s->cfg.handshake_timeout, 0);
    s->handshake.data = s;
    s->engine = *cfg->engine;
    s->engine.events = (msp_tlmsp_events_t){s, on_data, on_alert};
    s->engine.half_close = 1;
    int ret = MSP_OK;
    if (cfg->http) {
        ret = msp_http_new(NULL, &s->http);
    }
    if (ret == MSP_OK) {
        ret = msp_tlmsp_conn_new(cfg->role, &s->engine, &s->conn);
    }
    if (ret != MSP_OK) {
        msp_tlmsp_stream_free(s);
        return ret;
    }
    *out = s;
    return MSP_OK;
}

static void side_close(msp_tlmsp_stream_t *s, side_t *d)
{
    side_stop(s, d);
    if (d->out_fd >= 0 && d->out_fd != d->in_fd) {
        close(d->out_fd);
    }
    if (d->in_fd >= 0) {
        close(d->in_fd);
    }
    msp_buf_free(&d->out);
}

void msp_tlmsp_stream_free(msp_tlmsp_stream_t *s)
{
    if (s == NULL) {
        return;
    }
    ev_timer_stop(s->loop, &s->fin);
    ev_timer_stop(s->loop, &s->handshake);
    side_close(s, &s->t);
    side_close(s, &s->p);
    msp_tlmsp_conn_free(s->conn);
    msp_http_free(s->http);
    free(s);
}

int msp_tlmsp_stream_attach_tlmsp(msp_tlmsp_stream_t *s, int fd)
{
    if (s == NULL || fd < 0 || s->t.in_fd >= 0 || s->done) {
        return MSP_ERR_ARGUMENT;
    }
    side_watch(s, &s->t, fd, fd);
    if (s->cfg.handshake_timeout > 0) {
        ev_timer_start(s->loop, &s->handshake);
    }
    if (s->cfg.role == MSP_TLMSP_ID_CLIENT) {
        int ret = msp_tlmsp_conn_start(s->conn, queue(&s->t));
        if (ret != MSP_OK) {
            fail(s, ret, 0, "cannot start the handshake: %s", msp_error_name(ret));
            return MSP_OK;
        }
    }
    if (flush(s, &s->t) != 0) {
        tlmsp_failed(s);
        return MSP_OK;
    }
    settle(s);
    return MSP_OK;
}

int msp_tlmsp_stream_attach_plain(msp_tlmsp_stream_t *s, int in_fd, int out_fd)
{
    if (s == NULL || in_fd < 0 || out_fd < 0 || s->p.in_fd >= 0 || s->done) {
        return MSP_ERR_ARGUMENT;
    }
    side_watch(s, &s->p, in_fd, out_fd);
    if (flush(s, &s->p) != 0) {
        fail(s, MSP_ERR_IO, 1, "plain side: %s", strerror(errno));
        return MSP_OK;
    }
    settle(s);
    return MSP_OK;
}

void msp_tlmsp_stream_abort(msp_tlmsp_stream_t *s, const msp_error_t *err)
{
    if (s == NULL) {
        return;
    }
    fail(s, err != NULL && err->code != MSP_OK ? err->code : MSP_ERR_IO, 1, "%s",
         err != NULL && err->detail[0] != '\0' ? err->detail : "aborted");
}

msp_tlmsp_conn_t *msp_tlmsp_stream_conn(msp_tlmsp_stream_t *s)
{
    return s->conn;
}

uint64_t msp_tlmsp_stream_bytes(const msp_tlmsp_stream_t *s, int to_peer)
{
    return to_peer ? s->up : s->down;
}
