/* The endpoint driver: one socket, one msp_tlmsp_conn_t. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "msp/error.h"
#include "msp/tlmsp_io.h"
#include "sock.h"

struct msp_io_ep {
    sock_t s;
    msp_tlmsp_conn_t *conn;
    msp_io_ep_events_t ev;
    int announced; /* ready reported */
    int closing;   /* a closing alert is queued: shut down once it is out */
    int done;
    uint8_t rbuf[SOCK_READ_SIZE];
};

static void finish(msp_io_ep_t *ep, int err)
{
    if (ep->done) {
        return;
    }
    ep->done = 1;
    sock_flush(&ep->s);
    sock_read(&ep->s, 0);
    if (ep->ev.closed != NULL) {
        ep->ev.closed(ep->ev.user, ep, err); /* may free ep */
    }
}

/* After the core ran: flush, announce readiness, end on failure. Returns nonzero when ep may be gone. */
static int settle(msp_io_ep_t *ep, int ret)
{
    int io = sock_flush(&ep->s);
    if (ret == MSP_OK && io != MSP_OK) {
        ret = io;
    }
    if (ret == MSP_OK && !ep->announced && msp_tlmsp_conn_ready(ep->conn)) {
        ep->announced = 1;
        if (ep->ev.ready != NULL) {
            ep->ev.ready(ep->ev.user, ep);
        }
        return 0;
    }
    if (ret == MSP_ERR_CLASS_PEER_ALERT + 0) {
        finish(ep, MSP_OK); /* close_notify: a clean end */
        return 1;
    }
    if (ret != MSP_OK) {
        finish(ep, ret);
        return 1;
    }
    if (ep->closing && sock_pending(&ep->s) == 0) {
        finish(ep, MSP_OK);
        return 1;
    }
    return 0;
}

static void on_read(msp_io_ep_t *ep)
{
    ssize_t n = read(ep->s.fd, ep->rbuf, sizeof(ep->rbuf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        /* The peer went away without close_notify: not a clean end. */
        finish(ep, msp_tlmsp_conn_closed(ep->conn) ? MSP_OK : MSP_ERR_IO);
        return;
    }
    size_t used = (size_t)n;
    int ret = msp_tlmsp_conn_input(ep->conn, ep->rbuf, &used, sock_out(&ep->s));
    settle(ep, ret);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    msp_io_ep_t *ep = w->data;
    (void)loop;
    if (revents & EV_WRITE) {
        if (settle(ep, MSP_OK)) {
            return;
        }
        if (sock_pending(&ep->s) == 0 && ep->ev.drained != NULL) {
            ep->ev.drained(ep->ev.user, ep); /* may send, or free ep: nothing follows */
            return;
        }
    }
    if (revents & EV_READ) {
        on_read(ep);
    }
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
    sock_init(&ep->s, loop, fd, on_io, ep);
    sock_read(&ep->s, 1);
    *out = ep;
    /* A client speaks first; a server's start is refused by the core and ignored here. */
    if (msp_tlmsp_conn_start(conn, sock_out(&ep->s)) == MSP_OK) {
        sock_flush(&ep->s);
    }
    return MSP_OK;
}

void msp_io_ep_free(msp_io_ep_t *ep)
{
    if (ep == NULL) {
        return;
    }
    sock_close(&ep->s);
    msp_tlmsp_conn_free(ep->conn);
    free(ep);
}

msp_tlmsp_conn_t *msp_io_ep_conn(msp_io_ep_t *ep)
{
    return ep->conn;
}

int msp_io_ep_send(msp_io_ep_t *ep, uint8_t ctx, const uint8_t *p, size_t len)
{
    int ret = msp_tlmsp_conn_send(ep->conn, ctx, p, len, sock_out(&ep->s));
    int io = sock_flush(&ep->s);
    return ret != MSP_OK ? ret : io;
}

int msp_io_ep_alert(msp_io_ep_t *ep, uint8_t ctx, uint8_t level, uint8_t desc)
{
    int ret = msp_tlmsp_conn_alert(ep->conn, ctx, level, desc, sock_out(&ep->s));
    if (level == 2 || desc == 0) {
        ep->closing = 1;
    }
    int io = sock_flush(&ep->s);
    return ret != MSP_OK ? ret : io;
}

size_t msp_io_ep_pending(const msp_io_ep_t *ep)
{
    return sock_pending(&ep->s);
}
