/* Internal: a non-blocking socket with an output queue, and a session's time-outs (src/io). */
#ifndef MSP_IO_SOCK_H
#define MSP_IO_SOCK_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "msp/buf.h"
#include "msp/tlmsp_io.h"

#define SOCK_OUT_LIMIT (256u << 20)  /* a peer that stops reading cannot make us hold more */
#define SOCK_HIGH_WATER (8u << 20)   /* above this, the side feeding the queue stops reading, senders get AGAIN */
#define SOCK_READ_SIZE (1024u << 10) /* big reads: a middlebox spends a third less CPU per byte than with 256 KiB */

typedef struct sock {
    struct ev_loop *loop;
    int fd;
    ev_io rd, wr;
    msp_buf_t out; /* released whenever it empties: an idle session holds no queue */
    size_t off;    /* bytes of out already written */
    int reading;
    int up;          /* the connection is established (a byte went either way, or the connect completed) */
    int answered;    /* a byte came in */
    int owe_drained; /* a send was refused, or the queue was left full: report when it drains */
    int err;         /* errno of the failure that ended it, 0 */
} sock_t;

void sock_init(sock_t *s, struct ev_loop *loop, int fd, void (*cb)(struct ev_loop *, ev_io *, int), void *owner);
void sock_attach(sock_t *s, int fd);
void sock_close(sock_t *s);
void sock_drop(sock_t *s); /* what waits for a peer that is gone goes */
void sock_read(sock_t *s, int on);
size_t sock_pending(const sock_t *s);
int sock_flush(sock_t *s);
msp_buf_t *sock_out(sock_t *s);
/* A connect in progress that failed (SO_ERROR): MSP_ERR_IO with s->err set; MSP_OK when up or still connecting. */
int sock_check_connect(sock_t *s, int revents);
/*
 * Reads what is there into the thread's shared read buffer (*p, SOCK_READ_SIZE bytes): > 0 bytes, 0 at the end of
 * the stream, -1 with s->err on a failure, -2 when nothing is there yet.
 */
long sock_recv(sock_t *s, uint8_t **p);
/*
 * A write found the peer gone (s->err ECONNRESET or EPIPE) while what it sent before going may still be unread, its
 * close_notify among it: TLS 1.2 lets a closer leave without waiting for our answer and asks us to drop what we still
 * had for it (RFC 5246 7.2.1). Reads what is left, at most SOCK_SALVAGE_READS times, handing each chunk to feed,
 * which returns 1 once the close_notify is in, -1 to stop, 0 for more. 1 when the close_notify came, s->err kept
 * for the log when it did not.
 */
#define SOCK_SALVAGE_READS 16
int sock_salvage(sock_t *s, int (*feed)(void *owner, uint8_t *p, size_t n), void *owner);
/* One line for a log: what errno err means for a connection ("connection refused", ...). */
const char *sock_strerror(int err);

/*
 * The read buffer is one per thread, not one per session: drivers hold a reference while they live; it is
 * allocated at the first read and freed with the last reference, with the thread's cache of emptied output
 * queues (at most 4 of at most 4 MiB). sock_rbuf_bytes: what both take now (tests).
 */
void sock_rbuf_ref(void);
void sock_rbuf_unref(void);
size_t sock_rbuf_bytes(void);

/* The time-outs of a session on one libev timer that only moves when the phase changes (nothing per byte). */
enum { TM_NONE, TM_HANDSHAKE, TM_IDLE, TM_CLOSE, TM_CONNECT };

typedef struct sock_timer {
    ev_timer w;
    struct ev_loop *loop;
    msp_io_timeouts_t t;
    double start;      /* the session began */
    double last;       /* a byte went in or out */
    double connect_at; /* a connect began and is not up yet; 0 none */
    double closing_at; /* our closing alert was queued; 0 none */
    int ready;         /* the handshake completed */
    void (*expired)(void *owner, int phase, double after);
    void *owner;
} sock_timer_t;

void sock_timer_init(sock_timer_t *tm, struct ev_loop *loop, void (*expired)(void *, int, double), void *owner);
void sock_timer_arm(sock_timer_t *tm); /* after a phase change: the earliest deadline */
void sock_timer_stop(sock_timer_t *tm);
/* A byte went in or out: the idle deadline moves (the timer finds out when it fires). */
static inline void sock_timer_touch(sock_timer_t *tm)
{
    tm->last = ev_now(tm->loop);
}
/* "handshake", "idle", ... */
const char *sock_timer_phase(int phase);

#endif
