/* A non-blocking socket with an output queue, on libev: what both drivers move bytes with. */
#include "sock.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "msp/error.h"

void sock_init(sock_t *s, struct ev_loop *loop, int fd, void (*cb)(struct ev_loop *, ev_io *, int), void *owner)
{
    s->loop = loop;
    s->fd = fd;
    s->off = 0;
    s->reading = 0;
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

void sock_close(sock_t *s)
{
    if (s->fd >= 0) {
        ev_io_stop(s->loop, &s->rd);
        ev_io_stop(s->loop, &s->wr);
        close(s->fd);
        s->fd = -1;
    }
    msp_buf_free(&s->out);
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

/* Writes what the kernel takes; the rest waits for EV_WRITE. MSP_ERR_IO when the peer is gone. */
int sock_flush(sock_t *s)
{
    if (s->fd < 0) {
        return MSP_OK; /* not connected yet: the queue waits */
    }
    while (s->off < s->out.len) {
        ssize_t n = write(s->fd, s->out.base + s->off, s->out.len - s->off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)) {
            ev_io_start(s->loop, &s->wr);
            return MSP_OK;
        }
        if (n < 0) {
            return MSP_ERR_IO;
        }
        s->off += (size_t)n;
    }
    s->out.len = s->off = 0;
    ev_io_stop(s->loop, &s->wr);
    return MSP_OK;
}

/* Output is appended by the core; compact before it does so that the queue does not creep. Only when more than
 * half is written: moving a long queue on every call would copy it over and over. */
msp_buf_t *sock_out(sock_t *s)
{
    if (s->off > 0 && s->off == s->out.len) {
        s->out.len = s->off = 0;
    } else if (s->off > (1u << 20) && 2 * s->off > s->out.len) {
        memmove(s->out.base, s->out.base + s->off, s->out.len - s->off);
        s->out.len -= s->off;
        s->off = 0;
    }
    return &s->out;
}
