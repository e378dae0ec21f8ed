/*
 * Stream mode (msp/tlmsp_stream.h): a plain byte stream in one TLMSP
 * session, with half-close and back-pressure both ways, on libev.
 *
 * The TLMSP side is the endpoint driver (msp_io_ep, io_ep.c) over a
 * connection with half_close: its time-outs, its output queue and its
 * back-pressure are the driver's. The plain side is two sock_t (sock.c): one
 * read (the application's socket, or stdin), one written (the same socket,
 * or stdout). The closed event always runs from the loop (a zero timer),
 * never from inside a call of the program, so the program may free the
 * stream there without pulling it from under a caller.
 */
#include "msp/tlmsp_stream.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "msp/tlmsp_http.h"
#include "msp/tlmsp_io.h"
#include "sock.h"

/* The plain side is read only while the driver's queue is below this, so that one read (SOCK_READ_SIZE) and its
 * records' overhead never take it over the driver's mark (a send refused halfway through a read would lose it). */
#define TLMSP_MARK (SOCK_HIGH_WATER - 2 * SOCK_READ_SIZE)

struct msp_tlmsp_stream {
    struct ev_loop *loop;
    msp_tlmsp_stream_cfg_t cfg;
    msp_tlmsp_endpoint_cfg_t engine;
    msp_io_timeouts_t timeouts;
    msp_tlmsp_conn_t *conn; /* the stream's until the TLMSP side is attached, then the driver's */
    msp_io_ep_t *ep;
    msp_http_t *http;
    sock_t in, out;  /* the plain side: fd -1 until attached (out.fd -1 again once a pipe is closed) */
    int plain;       /* the plain side is attached */
    int announced;   /* ready reported */
    int we_closed;   /* our close_notify is queued */
    int plain_eof;   /* nothing more to read from the plain side */
    int shut;        /* the plain side's writing ended */
    int ep_paused;   /* the driver's reading stopped: the plain queue is above the mark */
    int tlmsp_clean; /* the driver ended cleanly: both directions closed and written */
    int done;
    ev_timer fin; /* runs the closed event from the loop */
    uint64_t up, down;
    msp_error_t err;
};

static size_t tlmsp_mark(const msp_tlmsp_stream_t *s)
{
    return s->cfg.high_water < TLMSP_MARK ? s->cfg.high_water : TLMSP_MARK;
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
    sock_read(&s->in, 0);
    if (s->out.fd >= 0) {
        ev_io_stop(s->loop, &s->out.wr);
    }
    if (s->ep != NULL) {
        msp_io_ep_pause(s->ep, 1);
    }
    ev_timer_start(s->loop, &s->fin);
}

static void fail(msp_tlmsp_stream_t *s, int code, int alert, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends the session with a reason; alert: tell the peer with a fatal internal_error (its driver still runs). */
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
    if (alert && s->ep != NULL && s->announced && !s->we_closed && !s->tlmsp_clean) {
        msp_io_ep_alert(s->ep, 0, 2, MSP_ALERT_INTERNAL_ERROR);
    }
    finish(s);
}

/* ---- the state after every event ---- */

/* Reading the TLMSP side stops while the plain queue is above the high-water mark and resumes below half. */
static void backpressure(msp_tlmsp_stream_t *s)
{
    size_t queued = sock_pending(&s->out), hw = s->cfg.high_water;
    if (s->ep == NULL || s->tlmsp_clean) {
        return;
    }
    if (!s->ep_paused && queued > hw) {
        s->ep_paused = 1;
        msp_io_ep_pause(s->ep, 1);
    } else if (s->ep_paused && queued <= hw / 2) {
        s->ep_paused = 0;
        msp_io_ep_pause(s->ep, 0);
    }
}

/* What both sides should do now; ends the session when both directions are closed and written. */
static void settle(msp_tlmsp_stream_t *s)
{
    if (s->done) {
        return;
    }
    if (msp_buf_error(&s->out.out) != MSP_OK) {
        fail(s, MSP_ERR_LIMIT, 1, "plain side: more than %zu bytes queued", s->out.out.limit);
        return;
    }
    int peer_closed = s->tlmsp_clean || (s->ep != NULL && msp_io_ep_peer_closed(s->ep));
    /* the peer's close_notify: the plain side's writing ends once what came before it is out */
    if (peer_closed && s->plain && !s->shut && sock_pending(&s->out) == 0) {
        s->shut = 1;
        ev_io_stop(s->loop, &s->out.wr);
        if (s->out.fd == s->in.fd) {
            shutdown(s->out.fd, SHUT_WR);
        } else {
            close(s->out.fd); /* a pipe or file: its reader sees the end */
            s->out.fd = -1;
        }
    }
    if (s->tlmsp_clean && s->shut) {
        msp_error_clear(&s->err);
        finish(s);
        return;
    }
    backpressure(s);
    int room = s->ep != NULL && msp_io_ep_pending(s->ep) <= tlmsp_mark(s);
    sock_read(&s->in, s->plain && s->announced && room && !s->plain_eof && !s->we_closed);
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

/* From inside the driver's input: queue and write; what goes wrong is handled from the loop (out's write event). */
static void on_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    msp_tlmsp_stream_t *s = user;
    (void)ctx;
    msp_buf_put(sock_out(&s->out), p, len);
    s->down += len;
    if (s->http != NULL) {
        /* the other direction is followed only to pair answers with requests (HEAD, CONNECT); its
         * bytes go out unchanged whatever the framer thinks of them */
        msp_http_feed(s->http, outgoing(s) == MSP_HTTP_REQUESTS ? MSP_HTTP_RESPONSES : MSP_HTTP_REQUESTS, p, len,
                      drop_segment, NULL, NULL);
    }
    if (sock_flush(&s->out) != MSP_OK || msp_buf_error(&s->out.out) != MSP_OK) {
        ev_feed_event(s->loop, &s->out.wr, EV_WRITE);
    }
    backpressure(s);
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

static void ep_ready(void *user, msp_io_ep_t *ep)
{
    msp_tlmsp_stream_t *s = user;
    (void)ep;
    if (s->done) {
        return;
    }
    s->announced = 1;
    if (s->cfg.ev.ready != NULL) {
        s->cfg.ev.ready(s->cfg.ev.user, s); /* may attach the plain side or abort */
    }
    settle(s);
}

static void ep_settle(void *user, msp_io_ep_t *ep)
{
    (void)ep;
    settle(user);
}

/* The driver's end: clean (both directions closed and written), or why not. */
static void ep_closed(void *user, msp_io_ep_t *ep, int err)
{
    msp_tlmsp_stream_t *s = user;
    const char *why = msp_io_ep_why(ep);
    if (s->done) {
        return;
    }
    if (err == MSP_OK) {
        s->tlmsp_clean = 1;
        settle(s);
    } else if (err == MSP_ERR_TIMEOUT) {
        fail(s, MSP_ERR_IO, 0, "TLMSP side: %s", why != NULL ? why : "timed out");
    } else if (err == MSP_ERR_IO && !s->announced && s->cfg.role == MSP_TLMSP_ID_CLIENT && why != NULL &&
               strncmp(why, "closed by the peer", 18) != 0) {
        fail(s, MSP_ERR_IO, 0, "cannot reach the first hop: %s", why);
    } else if (err == MSP_ERR_IO) {
        fail(s, MSP_ERR_IO, 0, "TLMSP side: %s", why != NULL ? why : "the connection failed");
    } else if (s->err.code != MSP_OK) {
        finish(s); /* the peer's fatal alert, said by on_alert */
    } else {
        fail(s, err, 0, "TLMSP%s: %s%s", s->announced ? "" : " handshake failed",
             MSP_ERR_IS_PEER_ALERT(err) ? "the peer sent " : "",
             msp_error_name(MSP_ERR_IS_PEER_ALERT(err) ? err & 0xff : err));
    }
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
    return msp_io_ep_send(s->ep, ctx, seg->p, seg->len);
}

static void plain_eof(msp_tlmsp_stream_t *s)
{
    s->plain_eof = 1;
    sock_read(&s->in, 0);
    if (s->http != NULL && msp_http_eof(s->http, outgoing(s), send_segment, s, NULL) != MSP_OK) {
        fail(s, MSP_ERR_IO, 1, "TLMSP side: cannot send the rest of a body");
        return;
    }
    s->we_closed = 1;
    if (msp_io_ep_alert(s->ep, 0, 1, 0) != MSP_OK) {
        fail(s, MSP_ERR_IO, 0, "TLMSP side: cannot send close_notify");
    }
}

static void plain_read(msp_tlmsp_stream_t *s)
{
    uint8_t *p;
    long n = sock_recv(&s->in, &p);
    if (n == -2) {
        return;
    }
    if (n < 0) {
        fail(s, MSP_ERR_IO, 1, "plain side: %s", strerror(s->in.err));
        return;
    }
    if (n == 0) {
        plain_eof(s);
    } else {
        s->up += (uint64_t)n;
        msp_error_t err;
        msp_error_clear(&err);
        int ret = s->http != NULL ? msp_http_feed(s->http, outgoing(s), p, (size_t)n, send_segment, s, &err)
                                  : msp_io_ep_send(s->ep, s->cfg.ctx, p, (size_t)n);
        if (ret != MSP_OK) {
            fail(s, ret, 1, "plain side: %s", err.detail[0] != '\0' ? err.detail : msp_error_name(ret));
            return;
        }
    }
    settle(s);
}

static void on_plain(struct ev_loop *loop, ev_io *w, int revents)
{
    msp_tlmsp_stream_t *s = w->data;
    (void)loop;
    (void)revents;
    if (s->done) {
        return;
    }
    if (w == &s->out.wr) {
        if (sock_flush(&s->out) != MSP_OK) {
            fail(s, MSP_ERR_IO, 1, "plain side: %s", strerror(s->out.err));
            return;
        }
        settle(s);
    } else {
        plain_read(s);
    }
}

/* ---- public API ---- */

static int check(const msp_tlmsp_stream_cfg_t *cfg)
{
    return cfg != NULL && cfg->loop != NULL && cfg->engine != NULL && cfg->ev.closed != NULL &&
           (cfg->role == MSP_TLMSP_ID_CLIENT || cfg->role == MSP_TLMSP_ID_SERVER) &&
           (cfg->http ? cfg->header_ctx != 0 && cfg->body_ctx != 0 : cfg->ctx != 0);
}

int msp_tlmsp_stream_new(const msp_tlmsp_stream_cfg_t *cfg, msp_tlmsp_stream_t **out)
{
    if (out == NULL) {
        return MSP_ERR_ARGUMENT;
    }
    *out = NULL;
    if (!check(cfg)) {
        return MSP_ERR_ARGUMENT;
    }
    msp_tlmsp_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    sock_rbuf_ref(); /* the read buffer the driver and the plain side share */
    s->loop = cfg->loop;
    s->cfg = *cfg;
    if (s->cfg.high_water == 0) {
        s->cfg.high_water = MSP_TLMSP_STREAM_HIGH_WATER;
    }
    if (cfg->timeouts != NULL) {
        s->timeouts = *cfg->timeouts;
    } else {
        msp_io_timeouts_default(&s->timeouts);
    }
    if (cfg->handshake_timeout != 0) {
        s->timeouts.handshake = cfg->handshake_timeout > 0 ? cfg->handshake_timeout : 0;
    }
    sock_init(&s->in, s->loop, -1, on_plain, s);
    sock_init(&s->out, s->loop, -1, on_plain, s);
    ev_timer_init(&s->fin, on_fin, 0, 0);
    s->fin.data = s;
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

void msp_tlmsp_stream_free(msp_tlmsp_stream_t *s)
{
    if (s == NULL) {
        return;
    }
    ev_timer_stop(s->loop, &s->fin);
    if (s->ep != NULL) {
        msp_io_ep_free(s->ep); /* and the connection */
    } else {
        msp_tlmsp_conn_free(s->conn);
    }
    if (s->out.fd == s->in.fd && s->out.fd >= 0) {
        ev_io_stop(s->loop, &s->out.wr);
        s->out.fd = -1; /* one socket: closed once, with in */
    }
    sock_close(&s->out);
    sock_close(&s->in);
    msp_http_free(s->http);
    sock_rbuf_unref();
    free(s);
}

int msp_tlmsp_stream_attach_tlmsp(msp_tlmsp_stream_t *s, int fd)
{
    if (s == NULL || fd < 0 || s->ep != NULL || s->done) {
        return MSP_ERR_ARGUMENT;
    }
    msp_io_ep_events_t ev = {s, ep_ready, ep_closed, ep_settle};
    if (msp_io_ep_new(s->loop, fd, s->conn, &ev, &s->ep) != MSP_OK) {
        close(fd);
        fail(s, MSP_ERR_NO_MEMORY, 0, "TLMSP side: out of memory");
        return MSP_OK;
    }
    msp_io_ep_set_timeouts(s->ep, &s->timeouts);
    msp_io_ep_set_peer_closed(s->ep, ep_settle);
    settle(s);
    return MSP_OK;
}

int msp_tlmsp_stream_attach_plain(msp_tlmsp_stream_t *s, int in_fd, int out_fd)
{
    if (s == NULL || in_fd < 0 || out_fd < 0 || s->plain || s->done) {
        return MSP_ERR_ARGUMENT;
    }
    s->plain = 1;
    sock_attach(&s->in, in_fd);
    sock_attach(&s->out, out_fd);
    if (sock_flush(&s->out) != MSP_OK) {
        fail(s, MSP_ERR_IO, 1, "plain side: %s", strerror(s->out.err));
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

void msp_tlmsp_stream_close(msp_tlmsp_stream_t *s)
{
    if (s == NULL || s->done) {
        return;
    }
    if (!s->announced) {
        fail(s, MSP_ERR_IO, 0, "closed before the handshake completed");
    } else if (!s->plain_eof && !s->we_closed) {
        plain_eof(s); /* our direction ends here; the peer's runs on */
    }
}

msp_tlmsp_conn_t *msp_tlmsp_stream_conn(msp_tlmsp_stream_t *s)
{
    return s->conn;
}

uint64_t msp_tlmsp_stream_bytes(const msp_tlmsp_stream_t *s, int to_peer)
{
    return to_peer ? s->up : s->down;
}
