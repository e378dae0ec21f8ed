/*
 * The endpoint driver: one socket, one msp_tlmsp_conn_t. Its output queue
 * above SOCK_HIGH_WATER stops reading (what we read may produce more output,
 * a reflecting server's does) and refuses sends with MSP_ERR_AGAIN until it
 * drains.
 *
 * Half-close (the connection's endpoint config has half_close): each
 * direction's close_notify ends only that direction. The peer's is reported
 * (the peer_closed event) and its end of stream then is a clean one; ours,
 * once written, leaves the peer's direction running under the idle
 * time-out. The driver ends once both went and the output is written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "msp/error.h"
#include "msp/tlmsp_io.h"
#include "conn.h" /* src/tlmsp: the connection's half_close */
#include "sock.h"

struct msp_io_ep {
    sock_t s;
    sock_timer_t tm;
    msp_tlmsp_conn_t *conn;
    msp_io_ep_events_t ev;
    msp_io_ep_peer_closed_fn peer_closed;
    int announced; /* ready reported */
    int closing;   /* a closing alert is queued: shut down once it is out */
    int fatal;     /* that alert was a fatal one (half-close waits for nothing more then) */
    int done;
    int half;      /* the connection runs with half_close */
    int peer_told; /* the peer's close_notify was reported */
    int peer_fin;  /* half-close: the peer's close_notify came after ours (the core says so by its return) */
    int peer_eof;  /* half-close: the peer's end of stream after its close_notify */
    int paused;    /* the program stopped our reading (msp_io_ep_pause) */
    char why[64];
};

static void finish(msp_io_ep_t *ep, int err)
{
    if (ep->done) {
        return;
    }
    ep->done = 1;
    sock_timer_stop(&ep->tm);
    sock_flush(&ep->s);
    sock_read(&ep->s, 0);
    if (ep->ev.closed != NULL) {
        ep->ev.closed(ep->ev.user, ep, err); /* may free ep */
    }
}

static int salvage_feed(void *owner, uint8_t *p, size_t n)
{
    msp_io_ep_t *ep = owner;
    size_t used = n;
    int ret = msp_tlmsp_conn_input(ep->conn, p, &used, sock_out(&ep->s));
    return ret == MSP_ERR_CLASS_PEER_ALERT + 0 ? 1 : ret != MSP_OK ? -1 : 0;
}

/*
 * A socket failure: its reason kept for the program's log line. A reset that follows the peer's close_notify is
 * a clean end (sock_salvage); not in half-close, where our direction still had to be delivered.
 */
static void fail_io(msp_io_ep_t *ep)
{
    if (!ep->half && !ep->done && sock_salvage(&ep->s, salvage_feed, ep)) {
        finish(ep, MSP_OK);
        return;
    }
    if (ep->s.err != 0 && ep->why[0] == '\0') {
        snprintf(ep->why, sizeof(ep->why), "%s", sock_strerror(ep->s.err));
    }
    finish(ep, MSP_ERR_IO);
}

static void backpressure(msp_io_ep_t *ep)
{
    sock_read(&ep->s, !ep->paused && !ep->peer_eof);
}

/* Half-close: the peer's close_notify came in. */
static int peer_gone(const msp_io_ep_t *ep)
{
    return ep->peer_fin || msp_tlmsp_conn_peer_closed(ep->conn);
}

/* Half-close: both directions closed and our output written. */
static int half_done(const msp_io_ep_t *ep)
{
    return ep->closing && (ep->fatal || peer_gone(ep)) && sock_pending(&ep->s) == 0;
}

/*
 * Half-close, after the core ran: reports the peer's close_notify once; once our close_notify is written the close
 * time-out no longer applies (the peer's direction may run on: the idle time-out bounds it). Nonzero when ep may be
 * gone.
 */
static int half_settle(msp_io_ep_t *ep)
{
    if (ep->closing && !ep->fatal && ep->tm.closing_at > 0 && sock_pending(&ep->s) == 0) {
        ep->tm.closing_at = 0;
        sock_timer_arm(&ep->tm);
    }
    if (half_done(ep)) {
        finish(ep, MSP_OK);
        return 1;
    }
    if (!ep->peer_told && peer_gone(ep)) {
        ep->peer_told = 1;
        if (ep->peer_closed != NULL) {
            ep->peer_closed(ep->ev.user, ep); /* may free ep */
            return 1;
        }
    }
    return 0;
}

/* After the core ran: flush, announce readiness, end on failure. Returns nonzero when ep may be gone. */
static int settle(msp_io_ep_t *ep, int ret)
{
    int io = sock_flush(&ep->s);
    if (ret == MSP_OK && io != MSP_OK) {
        fail_io(ep);
        return 1;
    }
    if (ret == MSP_OK && !ep->announced && msp_tlmsp_conn_ready(ep->conn)) {
        ep->announced = 1;
        ep->tm.ready = 1;
        sock_timer_arm(&ep->tm);
        backpressure(ep);
        if (ep->ev.ready != NULL) {
            ep->ev.ready(ep->ev.user, ep);
        }
        return 0;
    }
    if (ret == MSP_ERR_CLASS_PEER_ALERT + 0 && ep->half) {
        ep->peer_fin = 1; /* both closed: our output still goes out */
        backpressure(ep);
        return half_settle(ep);
    }
    if (ret == MSP_ERR_CLASS_PEER_ALERT + 0) {
        finish(ep, MSP_OK); /* close_notify: a clean end */
        return 1;
    }
    if (ret != MSP_OK) {
        finish(ep, ret);
        return 1;
    }
    if (ep->half) {
        backpressure(ep);
        return half_settle(ep);
    }
    if (ep->closing && sock_pending(&ep->s) == 0) {
        finish(ep, MSP_OK);
        return 1;
    }
    backpressure(ep);
    return 0;
}

/*
 * A queue that refused a send (MSP_ERR_AGAIN) or was left full, and is empty now: the sender hears it (the drained
 * event), whichever flush emptied it. A flush after input empties it with no write event to follow: the sender would
 * wait for ever.
 */
static void report_drained(msp_io_ep_t *ep)
{
    if (ep->s.owe_drained && sock_pending(&ep->s) == 0 && ep->ev.drained != NULL) {
        ep->s.owe_drained = 0;
        ep->ev.drained(ep->ev.user, ep); /* may send, or free ep: nothing follows */
    }
}

static void on_read(msp_io_ep_t *ep)
{
    uint8_t *p;
    long n = sock_recv(&ep->s, &p);
    if (n == -2) {
        return;
    }
    if (n < 0) {
        fail_io(ep);
        return;
    }
    if (n == 0 && ep->half && peer_gone(ep)) {
        ep->peer_eof = 1; /* its direction ended cleanly; ours may still run */
        settle(ep, MSP_OK);
        return;
    }
    if (n == 0 && ep->half) {
        snprintf(ep->why, sizeof(ep->why), "closed by the peer without close_notify");
        finish(ep, MSP_ERR_IO);
        return;
    }
    if (n == 0) {
        /* The peer went away without close_notify: not a clean end. */
        if (!msp_tlmsp_conn_closed(ep->conn)) {
            snprintf(ep->why, sizeof(ep->why), "closed by the peer");
        }
        finish(ep, msp_tlmsp_conn_closed(ep->conn) ? MSP_OK : MSP_ERR_IO);
        return;
    }
    sock_timer_touch(&ep->tm);
    size_t used = (size_t)n;
    int ret = msp_tlmsp_conn_input(ep->conn, p, &used, sock_out(&ep->s));
    if (settle(ep, ret) == 0) {
        report_drained(ep); /* the flush after our input may empty a queue that refused a send */
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    msp_io_ep_t *ep = w->data;
    (void)loop;
    int was_up = ep->s.up;
    if (ep->s.err != 0 || sock_check_connect(&ep->s, revents) != MSP_OK) {
        fail_io(ep);
        return;
    }
    if (ep->s.up && !was_up) {
        ep->tm.connect_at = 0;
        sock_timer_arm(&ep->tm);
    }
    if (revents & EV_WRITE) {
        size_t before = sock_pending(&ep->s);
        if (settle(ep, MSP_OK)) {
            return;
        }
        if (sock_pending(&ep->s) < before) {
            sock_timer_touch(&ep->tm);
        }
        if (sock_pending(&ep->s) == 0 && ep->ev.drained != NULL) {
            ep->s.owe_drained = 0;
            ep->ev.drained(ep->ev.user, ep); /* may send, or free ep: nothing follows */
            return;
        }
    }
    if (revents & EV_READ) {
        on_read(ep);
    }
}

static void expired(void *owner, int phase, double after)
{
    msp_io_ep_t *ep = owner;
    if (phase == TM_CONNECT && ep->s.up) {
        ep->tm.connect_at = 0; /* it came up in a write of ours, not in a write event */
        sock_timer_arm(&ep->tm);
        return;
    }
    if (phase == TM_CLOSE && sock_pending(&ep->s) == 0) {
        /* our close_notify and everything before it went out; the peer's answer is not awaited for ever (a
         * TLS 1.2 closer need not wait for it): a clean end on our side */
        finish(ep, MSP_OK);
        return;
    }
    if (phase == TM_CLOSE) {
        snprintf(ep->why, sizeof(ep->why), "close timed out after %g s (the peer did not read)", after);
    } else {
        snprintf(ep->why, sizeof(ep->why), "%s timed out after %g s", sock_timer_phase(phase), after);
    }
    if (phase == TM_IDLE) {
        /* an orderly end: the peer hears close_notify */
        msp_tlmsp_conn_alert(ep->conn, 0, 1, 0, sock_out(&ep->s));
    }
    finish(ep, MSP_ERR_TIMEOUT); /* may free ep */
}

int msp_io_ep_new(struct ev_loop *loop, int fd, msp_tlmsp_conn_t *conn, const msp_io_ep_events_t *ev, msp_io_ep_t **out)
{
    *out = NULL;
    msp_io_ep_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    ep->conn = conn;
    ep->ev = *ev;
    ep->half = conn->half_close;
    sock_rbuf_ref();
    sock_init(&ep->s, loop, fd, on_io, ep);
    sock_timer_init(&ep->tm, loop, expired, ep);
    sock_read(&ep->s, 1);
    *out = ep;
    /* A client speaks first (its socket may still be connecting); a server's start is refused by the core and
     * ignored here, its socket is an accepted one. */
    if (msp_tlmsp_conn_start(conn, sock_out(&ep->s)) == MSP_OK) {
        ep->tm.connect_at = ep->tm.start;
        if (sock_flush(&ep->s) != MSP_OK) {
            ev_feed_event(loop, &ep->s.wr, EV_WRITE); /* the connect failed already: reported from the loop */
        }
        if (ep->s.up) {
            ep->tm.connect_at = 0;
        }
    } else {
        ep->s.up = 1;
    }
    ep->tm.ready = msp_tlmsp_conn_ready(conn); /* a connection handed over after its handshake is idle now */
    sock_timer_arm(&ep->tm);
    return MSP_OK;
}

void msp_io_ep_free(msp_io_ep_t *ep)
{
    if (ep == NULL) {
        return;
    }
    sock_timer_stop(&ep->tm);
    sock_close(&ep->s);
    sock_rbuf_unref();
    msp_tlmsp_conn_free(ep->conn);
    free(ep);
}

msp_tlmsp_conn_t *msp_io_ep_conn(msp_io_ep_t *ep)
{
    return ep->conn;
}

int msp_io_ep_writable(const msp_io_ep_t *ep)
{
    return !ep->done && sock_pending(&ep->s) < SOCK_HIGH_WATER;
}

int msp_io_ep_send(msp_io_ep_t *ep, uint8_t ctx, const uint8_t *p, size_t len)
{
    if (sock_pending(&ep->s) >= SOCK_HIGH_WATER) {
        ep->s.owe_drained = 1;
        return MSP_ERR_AGAIN;
    }
    int ret = msp_tlmsp_conn_send(ep->conn, ctx, p, len, sock_out(&ep->s));
    int io = sock_flush(&ep->s);
    sock_timer_touch(&ep->tm);
    if (!ep->done) {
        backpressure(ep);
    }
    return ret != MSP_OK ? ret : io;
}

int msp_io_ep_alert(msp_io_ep_t *ep, uint8_t ctx, uint8_t level, uint8_t desc)
{
    int ret = msp_tlmsp_conn_alert(ep->conn, ctx, level, desc, sock_out(&ep->s));
    if ((level == 2 || desc == 0) && !ep->closing) {
        ep->closing = 1;
        ep->fatal = level == 2;
        ep->tm.closing_at = ev_now(ep->s.loop);
        if (!ep->done) {
            sock_timer_arm(&ep->tm);
        }
    }
    int io = sock_flush(&ep->s);
    if (ep->half && ep->closing && !ep->done && io == MSP_OK && sock_pending(&ep->s) == 0) {
        /* written: after a close_notify the close time-out is over; the end (when the peer's direction is over
         * too, or at once after a fatal alert) from the loop */
        if (!ep->fatal) {
            ep->tm.closing_at = 0;
            sock_timer_arm(&ep->tm);
        }
        ev_feed_event(ep->s.loop, &ep->s.wr, EV_WRITE);
    }
    return ret != MSP_OK ? ret : io;
}

void msp_io_ep_pause(msp_io_ep_t *ep, int paused)
{
    ep->paused = paused != 0;
    if (!ep->done) {
        backpressure(ep);
    }
}

void msp_io_ep_set_peer_closed(msp_io_ep_t *ep, msp_io_ep_peer_closed_fn peer_closed)
{
    ep->peer_closed = peer_closed;
}

int msp_io_ep_peer_closed(const msp_io_ep_t *ep)
{
    return ep->half && peer_gone(ep);
}

size_t msp_io_ep_pending(const msp_io_ep_t *ep)
{
    return sock_pending(&ep->s);
}

void msp_io_ep_set_timeouts(msp_io_ep_t *ep, const msp_io_timeouts_t *t)
{
    ep->tm.t = *t;
    if (!ep->done) {
        sock_timer_arm(&ep->tm);
    }
}

const char *msp_io_ep_why(const msp_io_ep_t *ep)
{
    return ep->why[0] != '\0' ? ep->why : NULL;
}
