/* A non-blocking socket with an output queue, on libev: what both drivers move bytes with; and their time-outs. */
#include "sock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msp/error.h"

/* ---- the read buffer, one per thread ---- */

static _Thread_local uint8_t *rbuf;
static _Thread_local size_t rbuf_refs;

/*
 * Output queues that emptied, kept for the next queue that fills on this thread: a session that goes quiet holds
 * none, and a busy one does not allocate (and fault in) its queue again after every flush. Ciphertext only.
 */
#define CACHE_N 4
#define CACHE_MAX_CAP (16u << 20)
static _Thread_local struct cached {
    uint8_t *p;
    size_t cap;
} cache[CACHE_N];
static _Thread_local size_t ncache;

void sock_rbuf_ref(void)
{
    rbuf_refs++;
}

void sock_rbuf_unref(void)
{
    if (rbuf_refs > 0 && --rbuf_refs == 0) {
        free(rbuf); /* it held ciphertext only: nothing to wipe */
        rbuf = NULL;
        while (ncache > 0) {
            free(cache[--ncache].p);
        }
    }
}

size_t sock_rbuf_bytes(void)
{
    size_t n = rbuf != NULL ? SOCK_READ_SIZE : 0;
    for (size_t i = 0; i < ncache; i++) {
        n += cache[i].cap;
    }
    return n;
}

/* ---- the socket ---- */

void sock_init(sock_t *s, struct ev_loop *loop, int fd, void (*cb)(struct ev_loop *, ev_io *, int), void *owner)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->fd = fd;
    msp_buf_init(&s->out, SOCK_OUT_LIMIT);
    ev_io_init(&s->rd, cb, fd < 0 ? 0 : fd, EV_READ);
    ev_io_init(&s->wr, cb, fd < 0 ? 0 : fd, EV_WRITE);
    s->rd.data = s->wr.data = owner;
}

void sock_attach(sock_t *s, int fd)
{
    s->fd = fd;
    ev_io_set(&s->rd, fd, EV_READ);
    ev_io_set(&s->wr, fd, EV_WRITE);
}

/* The queue holds ciphertext only: freed (or cached) without wiping (a wipe would cost a pass over every byte). */
static void release_out(sock_t *s)
{
    if (s->out.base != NULL && rbuf_refs > 0 && ncache < CACHE_N && s->out.cap <= CACHE_MAX_CAP) {
        cache[ncache++] = (struct cached){s->out.base, s->out.cap};
    } else {
        free(s->out.base);
    }
    msp_buf_init(&s->out, SOCK_OUT_LIMIT);
    s->off = 0;
}

void sock_close(sock_t *s)
{
    if (s->fd >= 0) {
        ev_io_stop(s->loop, &s->rd);
        ev_io_stop(s->loop, &s->wr);
        close(s->fd);
        s->fd = -1;
    }
    release_out(s);
}

void sock_drop(sock_t *s)
{
    release_out(s);
    if (s->fd >= 0) {
        ev_io_stop(s->loop, &s->wr);
    }
}

void sock_read(sock_t *s, int on)
{
    if (s->fd < 0 || on == s->reading) {
        return;
    }
    s->reading = on;
    if (on) {
        ev_io_start(s->loop, &s->rd);
    } else {
        ev_io_stop(s->loop, &s->rd);
    }
}

size_t sock_pending(const sock_t *s)
{
    return s->out.len - s->off;
}

/*
 * A queue left at its high-water mark: whoever asks (a refused send, or a writable() that said no) waits for the
 * drained event, so it must come even when a flush after input empties the queue with no write event to follow.
 */
static void mark_full(sock_t *s)
{
    if (sock_pending(s) >= SOCK_HIGH_WATER) {
        s->owe_drained = 1;
    }
}

/* Writes what the kernel takes; the rest waits for EV_WRITE. MSP_ERR_IO (s->err set) when the peer is gone. */
int sock_flush(sock_t *s)
{
    if (s->fd < 0) {
        mark_full(s);
        return MSP_OK; /* not connected yet: the queue waits */
    }
    while (s->off < s->out.len) {
        ssize_t n = write(s->fd, s->out.base + s->off, s->out.len - s->off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) {
            mark_full(s);
            ev_io_start(s->loop, &s->wr);
            return MSP_OK;
        }
        if (n < 0) {
            s->err = errno;
            return MSP_ERR_IO;
        }
        s->up = 1;
        s->off += (size_t)n;
    }
    if (s->out.base != NULL) {
        release_out(s);
    }
    ev_io_stop(s->loop, &s->wr);
    return MSP_OK;
}

/* Output is appended by the core; compact before it does so that the queue does not creep. Only when more than
 * half is written: moving a long queue on every call would copy it over and over. */
msp_buf_t *sock_out(sock_t *s)
{
    if (s->out.base == NULL && ncache > 0) {
        /* the largest: a middlebox's two queues differ (a bulk direction and its acknowledgements), and a small one
         * taken for the bulk direction grows again by copying what was appended (a quarter more CPU per GiB) */
        size_t best = 0;
        for (size_t i = 1; i < ncache; i++) {
            best = cache[i].cap > cache[best].cap ? i : best;
        }
        struct cached c = cache[best];
        cache[best] = cache[--ncache];
        s->out.base = c.p;
        s->out.cap = c.cap;
    }
    if (s->off > 0 && s->off == s->out.len) {
        s->out.len = s->off = 0;
    } else if (s->off > (1u << 20) && 2 * s->off > s->out.len) {
        memmove(s->out.base, s->out.base + s->off, s->out.len - s->off);
        s->out.len -= s->off;
        s->off = 0;
    }
    return &s->out;
}

int sock_check_connect(sock_t *s, int revents)
{
    if (s->up || s->fd < 0 || !(revents & (EV_READ | EV_WRITE))) {
        return MSP_OK;
    }
    int e = 0;
    socklen_t len = sizeof(e);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) {
        e = errno;
    }
    if (e != 0) {
        s->err = e;
        return MSP_ERR_IO;
    }
    if (revents & EV_WRITE) {
        s->up = 1; /* writable without an error: the connect completed */
    }
    return MSP_OK;
}

long sock_recv(sock_t *s, uint8_t **p)
{
    if (rbuf == NULL && (rbuf = malloc(SOCK_READ_SIZE)) == NULL) {
        s->err = ENOMEM;
        return -1;
    }
    ssize_t n = read(s->fd, rbuf, SOCK_READ_SIZE);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return -2;
    }
    if (n < 0) {
        s->err = errno;
        return -1;
    }
    if (n > 0) {
        s->up = s->answered = 1;
    }
    *p = rbuf;
    return (long)n;
}

int sock_salvage(sock_t *s, int (*feed)(void *owner, uint8_t *p, size_t n), void *owner)
{
    int err = s->err;
    if (s->fd < 0 || (err != ECONNRESET && err != EPIPE)) {
        return 0;
    }
    int got = 0;
    for (int i = 0; i < SOCK_SALVAGE_READS && got == 0; i++) {
        uint8_t *p;
        long n = sock_recv(s, &p);
        got = n > 0 ? feed(owner, p, (size_t)n) : -1;
    }
    s->err = err;
    return got > 0;
}

const char *sock_strerror(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return "connection refused";
    case ECONNRESET:
        return "connection reset";
    case ETIMEDOUT:
        return "connection timed out";
    case EHOSTUNREACH:
        return "host unreachable";
    case ENETUNREACH:
        return "network unreachable";
    case EPIPE:
        return "connection closed by the peer";
    default:
        return strerror(err);
    }
}

/* ---- time-outs ---- */

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

void sock_timer_init(sock_timer_t *tm, struct ev_loop *loop, void (*expired)(void *, int, double), void *owner)
{
    memset(tm, 0, sizeof(*tm));
    tm->loop = loop;
    tm->expired = expired;
    tm->owner = owner;
    msp_io_timeouts_default(&tm->t);
    tm->start = tm->last = ev_now(loop);
    ev_init(&tm->w, on_timer);
    tm->w.data = tm;
}

/* The phase whose deadline comes first, and that deadline (absolute); TM_NONE when nothing runs. */
static int earliest(const sock_timer_t *tm, double *due)
{
    int phase = TM_NONE;
    double d[5] = {0};
    if (tm->closing_at > 0 && tm->t.close > 0) {
        d[TM_CLOSE] = tm->closing_at + tm->t.close;
    }
    if (tm->connect_at > 0 && tm->t.connect > 0) {
        d[TM_CONNECT] = tm->connect_at + tm->t.connect;
    }
    if (!tm->ready && tm->t.handshake > 0) {
        d[TM_HANDSHAKE] = tm->start + tm->t.handshake;
    }
    if (tm->ready && tm->closing_at == 0 && tm->t.idle > 0) {
        d[TM_IDLE] = tm->last + tm->t.idle;
    }
    for (int i = TM_HANDSHAKE; i <= TM_CONNECT; i++) {
        if (d[i] > 0 && (phase == TM_NONE || d[i] < *due)) {
            phase = i;
            *due = d[i];
        }
    }
    return phase;
}

void sock_timer_arm(sock_timer_t *tm)
{
    double due = 0;
    ev_timer_stop(tm->loop, &tm->w);
    if (earliest(tm, &due) == TM_NONE) {
        return;
    }
    double left = due - ev_now(tm->loop);
    ev_timer_set(&tm->w, left > 0 ? left : 0, 0);
    ev_timer_start(tm->loop, &tm->w);
}

void sock_timer_stop(sock_timer_t *tm)
{
    if (tm->loop != NULL) {
        ev_timer_stop(tm->loop, &tm->w);
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    sock_timer_t *tm = w->data;
    (void)revents;
    double due = 0;
    int phase = earliest(tm, &due);
    if (phase == TM_NONE) {
        return;
    }
    if (due > ev_now(loop)) {
        sock_timer_arm(tm); /* bytes moved since: the idle deadline went further */
        return;
    }
    double after = phase == TM_HANDSHAKE ? tm->t.handshake
                   : phase == TM_IDLE    ? tm->t.idle
                   : phase == TM_CLOSE   ? tm->t.close
                                         : tm->t.connect;
    tm->expired(tm->owner, phase, after); /* may free the owner */
}

const char *sock_timer_phase(int phase)
{
    static const char *const names[] = {"", "handshake", "idle", "close", "connect"};
    return phase >= 0 && phase <= TM_CONNECT ? names[phase] : "";
}

void msp_io_timeouts_default(msp_io_timeouts_t *t)
{
    t->handshake = MSP_IO_HANDSHAKE_TIMEOUT;
    t->idle = MSP_IO_IDLE_TIMEOUT;
    t->close = MSP_IO_CLOSE_TIMEOUT;
    t->connect = MSP_IO_CONNECT_TIMEOUT;
}
