/*
 * The middlebox driver: the accepted client socket (A) and, once the
 * ClientHello names the next hop, the connection toward the server (B).
 * Output toward a hop that is not connected yet waits in its queue, also
 * while the program finds the next hop without blocking the loop (the
 * connect event answered MSP_IO_MB_PENDING). A queue above SOCK_HIGH_WATER
 * stops reading from the side that fills it. The next hop failing before it
 * answered anything (refused, reset, not connected in time, closed) is a
 * route failure: the client gets the fatal middlebox_route_failure alert.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "msp/error.h"
#include "msp/tlmsp.h"
#include "msp/tlmsp_io.h"
#include "sock.h"

struct msp_io_mb {
    sock_t a, b;
    sock_timer_t tm;
    msp_tlmsp_mbox_t *m;
    msp_io_mb_events_t ev;
    msp_io_mb_drained_fn on_drained;
    int announced, done;
    int connecting; /* the connect event answered MSP_IO_MB_PENDING: waiting for the program */
    int draining;   /* one side hung up: what waits for the other goes out first (at most the close time-out) */
    char why[64];
};

static void finish(msp_io_mb_t *mb, int err)
{
    if (mb->done) {
        return;
    }
    mb->done = 1; /* connecting stays: the closed event tells the program to drop its lookup */
    sock_timer_stop(&mb->tm);
    sock_flush(&mb->a);
    sock_flush(&mb->b);
    sock_read(&mb->a, 0);
    sock_read(&mb->b, 0);
    if (mb->ev.closed != NULL) {
        mb->ev.closed(mb->ev.user, mb, err); /* may free mb */
    }
}

static void attach_next(msp_io_mb_t *mb, int fd)
{
    sock_attach(&mb->b, fd);
    sock_read(&mb->b, 1);
    mb->tm.connect_at = ev_now(mb->a.loop);
    sock_timer_arm(&mb->tm);
}

/* The next hop cannot be reached: the client hears why before its socket closes. */
static int route_failure(msp_io_mb_t *mb)
{
    msp_tlmsp_mbox_alert(mb->m, 0, 0, 2, MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE, sock_out(&mb->a));
    return MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE;
}

/* The next hop failed before it answered: a route failure, its reason kept for the program's log line. */
static void next_hop_failed(msp_io_mb_t *mb, const char *why)
{
    snprintf(mb->why, sizeof(mb->why), "%s", why);
    route_failure(mb);
    finish(mb, MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE);
}

static int connect_next(msp_io_mb_t *mb)
{
    const msp_tlmsp_address_t *next = msp_tlmsp_mbox_next_hop(mb->m);
    if (mb->b.fd >= 0 || mb->connecting || next == NULL) {
        return MSP_OK;
    }
    int fd = mb->ev.connect(mb->ev.user, next);
    if (fd == MSP_IO_MB_PENDING) {
        mb->connecting = 1;
        return MSP_OK;
    }
    if (fd < 0) {
        return route_failure(mb);
    }
    attach_next(mb, fd);
    return MSP_OK;
}

/* Reading from a side stops while the other side's queue is above the high-water mark. */
/* Containers held toward a side (msp_tlmsp_mbox_release decides them later, e.g. after an ICAP verdict): above
 * this, the side feeding them stops reading, so a fast sender waits for the verdicts instead of running into the
 * engine's hold bound (MSP_TLMSP_HOLD_MAX_CONTAINERS, 4 MiB) and ending the session. */
#define HELD_HIGH 128

static void backpressure(msp_io_mb_t *mb)
{
    sock_read(&mb->a, sock_pending(&mb->b) < SOCK_HIGH_WATER && msp_tlmsp_mbox_held(mb->m, 1) < HELD_HIGH);
    if (mb->b.fd >= 0) {
        sock_read(&mb->b, sock_pending(&mb->a) < SOCK_HIGH_WATER && msp_tlmsp_mbox_held(mb->m, 0) < HELD_HIGH);
    }
}

typedef struct salvage {
    msp_io_mb_t *mb;
    int from_server;
} salvage_t;

static int salvage_feed(void *owner, uint8_t *p, size_t n)
{
    salvage_t *v = owner;
    size_t used = n;
    int ret = msp_tlmsp_mbox_input(v->mb->m, v->from_server, p, &used, sock_out(&v->mb->a), sock_out(&v->mb->b));
    return ret == MSP_ERR_CLASS_PEER_ALERT + 0 ? 1 : ret != MSP_OK ? -1 : 0;
}

/*
 * A socket failed: on the way to a next hop that never answered, a route failure; else the session ends, cleanly
 * when the reset followed that peer's close_notify (sock_salvage: the other peer is told).
 */
static void fail_io(msp_io_mb_t *mb, sock_t *s)
{
    if (s == &mb->b && !mb->b.answered) {
        next_hop_failed(mb, sock_strerror(s->err));
        return;
    }
    salvage_t v = {mb, s == &mb->b};
    if (!mb->done && sock_salvage(s, salvage_feed, &v)) {
        finish(mb, MSP_OK);
        return;
    }
    snprintf(mb->why, sizeof(mb->why), "%s", sock_strerror(s->err));
    finish(mb, MSP_ERR_IO);
}

static int settle(msp_io_mb_t *mb, int ret)
{
    if (ret == MSP_OK) {
        ret = connect_next(mb);
    }
    int io_b = sock_flush(&mb->b), io_a = sock_flush(&mb->a);
    if (ret == MSP_OK && io_b != MSP_OK) {
        fail_io(mb, &mb->b);
        return 1;
    }
    if (ret == MSP_OK && io_a != MSP_OK) {
        fail_io(mb, &mb->a);
        return 1;
    }
    if (ret == MSP_OK && !mb->announced && msp_tlmsp_mbox_ready(mb->m)) {
        mb->announced = 1;
        mb->tm.ready = 1;
        sock_timer_arm(&mb->tm);
        if (mb->ev.ready != NULL) {
            mb->ev.ready(mb->ev.user, mb);
        }
    }
    if (ret != MSP_OK || (mb->draining && sock_pending(&mb->a) == 0 && sock_pending(&mb->b) == 0)) {
        finish(mb, ret == MSP_ERR_CLASS_PEER_ALERT + 0 ? MSP_OK : ret);
        return 1;
    }
    if (!mb->draining) {
        backpressure(mb);
    }
    return 0;
}

/* Side s hung up: the path is gone, once what the other side's peer is owed (a close_notify among it) is out. */
static void hung_up(msp_io_mb_t *mb, sock_t *s)
{
    sock_t *other = s == &mb->a ? &mb->b : &mb->a;
    sock_drop(s);
    sock_read(&mb->a, 0);
    sock_read(&mb->b, 0);
    if (sock_pending(other) == 0 || other->fd < 0) {
        finish(mb, MSP_OK);
        return;
    }
    mb->draining = 1;
    mb->tm.closing_at = ev_now(mb->a.loop);
    sock_timer_arm(&mb->tm);
}

/* Report a queue that refused a send or was left full, and is empty now, after whichever flush emptied it. Nonzero when
 * mb may be gone. */
static int drained(msp_io_mb_t *mb, sock_t *s)
{
    if (!s->owe_drained || sock_pending(s) > 0 || mb->on_drained == NULL) {
        return 0;
    }
    s->owe_drained = 0;
    mb->on_drained(mb->ev.user, mb, s == &mb->b);
    return 1;
}

static void on_read(msp_io_mb_t *mb, int from_server)
{
    sock_t *s = from_server ? &mb->b : &mb->a;
    uint8_t *p;
    long n = sock_recv(s, &p);
    if (n == -2) {
        return;
    }
    if (n < 0) {
        fail_io(mb, s);
        return;
    }
    if (n == 0 && from_server && !mb->b.answered) {
        next_hop_failed(mb, "closed before answering");
        return;
    }
    if (n == 0) {
        hung_up(mb, s);
        return;
    }
    sock_timer_touch(&mb->tm);
    size_t used = (size_t)n;
    int ret = msp_tlmsp_mbox_input(mb->m, from_server, p, &used, sock_out(&mb->a), sock_out(&mb->b));
    if (settle(mb, ret) == 0 && !drained(mb, &mb->a)) {
        drained(mb, &mb->b); /* the flush after input may empty a queue that refused a send: no write event follows */
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    msp_io_mb_t *mb = w->data;
    (void)loop;
    int from_server = w == &mb->b.rd || w == &mb->b.wr;
    sock_t *s = from_server ? &mb->b : &mb->a;
    int was_up = s->up;
    if (sock_check_connect(s, revents) != MSP_OK) {
        fail_io(mb, s);
        return;
    }
    if (from_server && s->up && !was_up) {
        mb->tm.connect_at = 0;
        sock_timer_arm(&mb->tm);
    }
    if (revents & EV_WRITE) {
        size_t before = sock_pending(s);
        if (settle(mb, MSP_OK)) {
            return;
        }
        if (sock_pending(s) < before) {
            sock_timer_touch(&mb->tm);
        }
        if (drained(mb, s)) {
            return; /* the program may have freed mb */
        }
    }
    if (revents & EV_READ) {
        on_read(mb, from_server);
    }
}

static void expired(void *owner, int phase, double after)
{
    msp_io_mb_t *mb = owner;
    if (phase == TM_CONNECT && mb->b.up) {
        mb->tm.connect_at = 0; /* it came up in a write of ours, not in a write event */
        sock_timer_arm(&mb->tm);
        return;
    }
    if (phase == TM_CONNECT) {
        snprintf(mb->why, sizeof(mb->why), "connect timed out after %g s", after);
        route_failure(mb);
        finish(mb, MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE);
        return;
    }
    snprintf(mb->why, sizeof(mb->why), "%s timed out after %g s", sock_timer_phase(phase), after);
    if (phase == TM_IDLE) {
        /* an orderly end both ways */
        msp_tlmsp_mbox_alert(mb->m, 0, 0, 1, 0, sock_out(&mb->a));
        msp_tlmsp_mbox_alert(mb->m, 1, 0, 1, 0, sock_out(&mb->b));
    }
    finish(mb, MSP_ERR_TIMEOUT); /* may free mb */
}

int msp_io_mb_new(struct ev_loop *loop, int client_fd, msp_tlmsp_mbox_t *m, const msp_io_mb_events_t *ev,
                  msp_io_mb_t **out)
{
    *out = NULL;
    msp_io_mb_t *mb = calloc(1, sizeof(*mb));
    if (mb == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    mb->m = m;
    mb->ev = *ev;
    sock_rbuf_ref();
    sock_init(&mb->a, loop, client_fd, on_io, mb);
    sock_init(&mb->b, loop, -1, on_io, mb);
    mb->a.up = 1; /* accepted */
    sock_timer_init(&mb->tm, loop, expired, mb);
    sock_timer_arm(&mb->tm);
    sock_read(&mb->a, 1);
    *out = mb;
    return MSP_OK;
}

void msp_io_mb_free(msp_io_mb_t *mb)
{
    if (mb == NULL) {
        return;
    }
    sock_timer_stop(&mb->tm);
    sock_close(&mb->a);
    sock_close(&mb->b);
    sock_rbuf_unref();
    msp_tlmsp_mbox_free(mb->m);
    free(mb);
}

msp_tlmsp_mbox_t *msp_io_mb_mbox(msp_io_mb_t *mb)
{
    return mb->m;
}

int msp_io_mb_connected(msp_io_mb_t *mb, int fd)
{
    if (!mb->connecting || mb->done || fd < 0) {
        return MSP_ERR_ARGUMENT;
    }
    mb->connecting = 0;
    attach_next(mb, fd);
    settle(mb, MSP_OK); /* the queued ClientHello goes out (or waits for EV_WRITE); may free mb */
    return MSP_OK;
}

void msp_io_mb_route_failed(msp_io_mb_t *mb, int err)
{
    if (!mb->connecting || mb->done) {
        return;
    }
    mb->connecting = 0;
    route_failure(mb);
    finish(mb, err != MSP_OK ? err : MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE); /* may free mb */
}

int msp_io_mb_connecting(const msp_io_mb_t *mb)
{
    return mb->connecting;
}

void msp_io_mb_set_drained(msp_io_mb_t *mb, msp_io_mb_drained_fn fn)
{
    mb->on_drained = fn;
}

int msp_io_mb_writable(const msp_io_mb_t *mb, int to_server)
{
    return !mb->done && sock_pending(to_server ? &mb->b : &mb->a) < SOCK_HIGH_WATER;
}

int msp_io_mb_send(msp_io_mb_t *mb, int to_server, uint8_t ctx, const uint8_t *p, size_t len)
{
    sock_t *s = to_server ? &mb->b : &mb->a;
    if (sock_pending(s) >= SOCK_HIGH_WATER) {
        s->owe_drained = 1;
        return MSP_ERR_AGAIN;
    }
    int ret = msp_tlmsp_mbox_send(mb->m, to_server, ctx, p, len, sock_out(s));
    sock_timer_touch(&mb->tm);
    settle(mb, MSP_OK);
    return ret;
}

int msp_io_mb_alert(msp_io_mb_t *mb, int to_server, uint8_t ctx, uint8_t level, uint8_t desc)
{
    int ret = msp_tlmsp_mbox_alert(mb->m, to_server, ctx, level, desc, sock_out(to_server ? &mb->b : &mb->a));
    if ((level == 2 || desc == 0) && mb->tm.closing_at == 0 && !mb->done) {
        mb->tm.closing_at = ev_now(mb->a.loop);
        sock_timer_arm(&mb->tm);
    }
    settle(mb, MSP_OK);
    return ret;
}

int msp_io_mb_release(msp_io_mb_t *mb, int to_server, size_t n, const msp_tlmsp_verdict_t *v,
                      const uint8_t *const *data, const size_t *len)
{
    int ret = msp_tlmsp_mbox_release(mb->m, to_server, n, v, data, len, sock_out(to_server ? &mb->b : &mb->a));
    settle(mb, MSP_OK); /* what the socket takes goes now; a failure while writing ends the session; may free mb */
    return ret;
}

void msp_io_mb_set_timeouts(msp_io_mb_t *mb, const msp_io_timeouts_t *t)
{
    mb->tm.t = *t;
    if (!mb->done) {
        sock_timer_arm(&mb->tm);
    }
}

const char *msp_io_mb_why(const msp_io_mb_t *mb)
{
    return mb->why[0] != '\0' ? mb->why : NULL;
}
