/*
 * The middlebox driver: the accepted client socket (A) and, once the
 * ClientHello names the next hop, the connection toward the server (B).
 * Output toward a hop that is not connected yet waits in its queue, also
 * while the program finds the next hop without blocking the loop (the
 * connect event answered MSP_IO_MB_PENDING). A queue above SOCK_HIGH_WATER
 * stops reading from the side that fills it.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "msp/error.h"
#include "msp/tlmsp.h"
#include "msp/tlmsp_io.h"
#include "sock.h"

struct msp_io_mb {
    sock_t a, b;
    msp_tlmsp_mbox_t *m;
    msp_io_mb_events_t ev;
    int announced, done;
    int connecting; /* the connect event answered MSP_IO_MB_PENDING: waiting for the program */
    uint8_t rbuf[SOCK_READ_SIZE];
};

static void finish(msp_io_mb_t *mb, int err)
{
    if (mb->done) {
        return;
    }
    mb->done = 1; /* connecting stays: the closed event tells the program to drop its lookup */
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
}

/* The next hop cannot be reached: the client hears why before its socket closes. */
static int route_failure(msp_io_mb_t *mb)
{
    msp_tlmsp_mbox_alert(mb->m, 0, 0, 2, MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE, sock_out(&mb->a));
    return MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE;
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
static void backpressure(msp_io_mb_t *mb)
{
    sock_read(&mb->a, sock_pending(&mb->b) < SOCK_HIGH_WATER);
    if (mb->b.fd >= 0) {
        sock_read(&mb->b, sock_pending(&mb->a) < SOCK_HIGH_WATER);
    }
}

static int settle(msp_io_mb_t *mb, int ret)
{
    if (ret == MSP_OK) {
        ret = connect_next(mb);
    }
    int io_a = sock_flush(&mb->a), io_b = sock_flush(&mb->b);
    if (ret == MSP_OK) {
        ret = io_a != MSP_OK ? io_a : io_b;
    }
    if (ret == MSP_OK && !mb->announced && msp_tlmsp_mbox_ready(mb->m)) {
        mb->announced = 1;
        if (mb->ev.ready != NULL) {
            mb->ev.ready(mb->ev.user, mb);
        }
    }
    if (ret != MSP_OK) {
        finish(mb, ret == MSP_ERR_CLASS_PEER_ALERT + 0 ? MSP_OK : ret);
        return 1;
    }
    backpressure(mb);
    return 0;
}

static void on_read(msp_io_mb_t *mb, int from_server)
{
    sock_t *s = from_server ? &mb->b : &mb->a;
    ssize_t n = read(s->fd, mb->rbuf, sizeof(mb->rbuf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        finish(mb, MSP_OK); /* either side hung up: the path is gone */
        return;
    }
    size_t used = (size_t)n;
    int ret = msp_tlmsp_mbox_input(mb->m, from_server, mb->rbuf, &used, sock_out(&mb->a), sock_out(&mb->b));
    settle(mb, ret);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    msp_io_mb_t *mb = w->data;
    (void)loop;
    int from_server = w == &mb->b.rd || w == &mb->b.wr;
    if ((revents & EV_WRITE) && settle(mb, MSP_OK)) {
        return;
    }
    if (revents & EV_READ) {
        on_read(mb, from_server);
    }
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
    sock_init(&mb->a, loop, client_fd, on_io, mb);
    sock_init(&mb->b, loop, -1, on_io, mb);
    sock_read(&mb->a, 1);
    *out = mb;
    return MSP_OK;
}

void msp_io_mb_free(msp_io_mb_t *mb)
{
    if (mb == NULL) {
        return;
    }
    sock_close(&mb->a);
    sock_close(&mb->b);
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

int msp_io_mb_send(msp_io_mb_t *mb, int to_server, uint8_t ctx, const uint8_t *p, size_t len)
{
    int ret = msp_tlmsp_mbox_send(mb->m, to_server, ctx, p, len, sock_out(to_server ? &mb->b : &mb->a));
    settle(mb, MSP_OK);
    return ret;
}

int msp_io_mb_alert(msp_io_mb_t *mb, int to_server, uint8_t ctx, uint8_t level, uint8_t desc)
{
    int ret = msp_tlmsp_mbox_alert(mb->m, to_server, ctx, level, desc, sock_out(to_server ? &mb->b : &mb->a));
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
