/*
 * A TCP listener on a libev loop for servers an operator runs: it accepts,
 * applies the session caps (in total and per source address), and survives
 * the open-file limit. It knows nothing of TLMSP: each connection it keeps
 * goes to an accept callback as (fd, peer address); what happens to it is
 * the program's (msp server, msp middlebox, the stream mode).
 *
 * At the open-file limit (accept fails with EMFILE, ENFILE, ENOBUFS or
 * ENOMEM) accepting pauses: the watcher stops (a level-triggered listener
 * that cannot accept would spin the loop), one PAUSED event is reported,
 * and accepting is tried again every `retry` seconds and whenever a session
 * ends (msp_io_listener_done); the first accept that works reports RESUMED.
 * A connection over a cap is accepted and closed at once (no TLS alert: no
 * handshake has started), with a REJECTED event.
 */
#ifndef MSP_IO_LISTENER_H
#define MSP_IO_LISTENER_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "msp/error.h"

struct ev_loop;

#define MSP_IO_LISTENER_BACKLOG 4096         /* listen(2) backlog default; the kernel caps it at somaxconn */
#define MSP_IO_LISTENER_MAX_SESSIONS 4096    /* open sessions default */
#define MSP_IO_LISTENER_RETRY 0.5            /* seconds between accept attempts while paused */
#define MSP_IO_LISTENER_LIMIT_MAX (1u << 20) /* the largest cap or backlog accepted */

typedef struct msp_io_listener msp_io_listener_t;

/* What a listener reports besides connections (event callback's what). */
typedef enum msp_io_listener_event {
    MSP_IO_LISTENER_PAUSED = 1,      /* accept failed for want of descriptors (err: the errno) */
    MSP_IO_LISTENER_RESUMED,         /* accepting again */
    MSP_IO_LISTENER_REJECTED_TOTAL,  /* a connection closed at once: max_sessions are open */
    MSP_IO_LISTENER_REJECTED_SOURCE, /* a connection closed at once: max_per_source are open from its address */
} msp_io_listener_event_t;

/*
 * A connection the listener kept: fd is non-blocking and close-on-exec.
 * Return 0 when the program took fd (it calls msp_io_listener_done with the
 * same peer when the session ends), or -1 (the listener closes fd and does
 * not count it). peer is valid during the call.
 */
typedef int (*msp_io_listener_accept_fn)(void *user, int fd, const struct sockaddr *peer, socklen_t peer_len);

/* An event (msp_io_listener_event_t); peer is NULL for PAUSED and RESUMED; err an errno or 0. */
typedef void (*msp_io_listener_event_fn)(void *user, int what, const struct sockaddr *peer, socklen_t peer_len,
                                         int err);

typedef struct msp_io_listener_cfg {
    const char *host; /* a name or address to bind; NULL: every address */
    uint16_t port;
    int backlog;           /* 0: MSP_IO_LISTENER_BACKLOG */
    int reuseport;         /* SO_REUSEPORT: several processes each listen on the same port, the kernel spreads */
    size_t max_sessions;   /* 0: MSP_IO_LISTENER_MAX_SESSIONS */
    size_t max_per_source; /* 0: max_sessions (a client gateway or a NAT puts a whole site on one address) */
    double retry;          /* 0: MSP_IO_LISTENER_RETRY */
    msp_io_listener_accept_fn accept;
    msp_io_listener_event_fn event; /* may be NULL */
    void *user;
} msp_io_listener_cfg_t;

/**
 * Binds and listens on cfg->host:port, and starts accepting on loop.
 * MSP_OK; MSP_ERR_ARGUMENT (no accept callback, a cap or backlog over
 * MSP_IO_LISTENER_LIMIT_MAX), MSP_ERR_NOT_FOUND (the host does not
 * resolve), MSP_ERR_IO (no address could be bound: err's detail is
 * "cannot listen on HOST:PORT: why") or MSP_ERR_NO_MEMORY; err may be NULL.
 */
MSP_API int msp_io_listener_new(struct ev_loop *loop, const msp_io_listener_cfg_t *cfg, msp_io_listener_t **out,
                                msp_error_t *err);

/** Stops accepting and closes the listening socket; the sessions are the program's. NULL is ignored. */
MSP_API void msp_io_listener_free(msp_io_listener_t *l);

/** A session the accept callback took has ended: counts drop, and a paused listener tries to accept. */
MSP_API void msp_io_listener_done(msp_io_listener_t *l, const struct sockaddr *peer, socklen_t peer_len);

/** Stops accepting for good (a drain) and closes the listening socket; msp_io_listener_done still counts. */
MSP_API void msp_io_listener_close(msp_io_listener_t *l);

/** Sessions taken and not yet done. */
MSP_API size_t msp_io_listener_sessions(const msp_io_listener_t *l);

/** True while accepting is paused at the open-file limit. */
MSP_API int msp_io_listener_paused(const msp_io_listener_t *l);

/** The port bound (useful with port 0), or 0 after msp_io_listener_close. */
MSP_API uint16_t msp_io_listener_port(const msp_io_listener_t *l);

/** "ADDR:PORT" ("[ADDR]:PORT" for IPv6) of a peer into out (at least 64 bytes): out. */
MSP_API const char *msp_io_peer_text(const struct sockaddr *peer, socklen_t peer_len, char *out, size_t size);

#endif
