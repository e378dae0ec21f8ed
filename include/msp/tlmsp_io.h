/*
 * The socket driver of TLMSP connections on libev: a thin layer that moves
 * bytes between non-blocking sockets and the sans-IO core of
 * msp/tlmsp_conn.h. It owns no protocol logic. libev, because the ETSI
 * reference's programs use it (tlmsp-tools), so the programs time their
 * activities with the same loop semantics.
 */
#ifndef MSP_TLMSP_IO_H
#define MSP_TLMSP_IO_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/error.h"
#include "msp/tlmsp_conn.h"

struct ev_loop;

/*
 * Time-outs of a driver's session, in seconds; 0 disables one. Each driver
 * keeps one libev timer that moves only when the session changes phase, so
 * they cost nothing per byte. An expiry ends the session: the closed event
 * reports MSP_ERR_TIMEOUT and msp_io_ep_why / msp_io_mb_why say which one
 * ("handshake timed out after 30 s"). A driver starts with the defaults.
 */
typedef struct msp_io_timeouts {
    double handshake; /* from the driver's start until the handshake completed [MSP_IO_HANDSHAKE_TIMEOUT] */
    double idle;      /* once ready, no byte received or sent for this long: close_notify, then the end [300] */
    double close;     /* after a closing alert we sent: its queue not written out (the peer stopped reading) [5] */
    double connect;   /* a connection in progress (the client's first hop, a middlebox's next hop) [10] */
} msp_io_timeouts_t;

#define MSP_IO_HANDSHAKE_TIMEOUT 30.0
#define MSP_IO_IDLE_TIMEOUT 300.0
#define MSP_IO_CLOSE_TIMEOUT 5.0
#define MSP_IO_CONNECT_TIMEOUT 10.0

/** Fills t with the defaults above. */
MSP_API void msp_io_timeouts_default(msp_io_timeouts_t *t);

typedef struct msp_io_ep msp_io_ep_t;

/* What an endpoint driver reports. err: MSP_OK after a clean close, else the error or alert. */
typedef struct msp_io_ep_events {
    void *user;
    void (*ready)(void *user, msp_io_ep_t *ep);
    void (*closed)(void *user, msp_io_ep_t *ep, int err);
    /* optional: the output queue went empty (a sender that got MSP_ERR_AGAIN refills it here) */
    void (*drained)(void *user, msp_io_ep_t *ep);
} msp_io_ep_events_t;

/*
 * With half_close (msp_tlmsp_endpoint_cfg_t): the peer's close_notify came
 * in; it sends no more, we may (until msp_io_ep_alert sends ours). Without
 * half_close the peer's close_notify ends the session instead.
 */
typedef void (*msp_io_ep_peer_closed_fn)(void *user, msp_io_ep_t *ep);

/**
 * Drives conn over the connected non-blocking socket fd (both owned from
 * now on). A client's ClientHello is sent at once. MSP_OK or
 * MSP_ERR_NO_MEMORY (then nothing is owned).
 *
 * When conn runs with half_close, each direction closes apart: the peer's
 * close_notify is reported (msp_io_ep_set_peer_closed) and its end of stream after it is
 * clean; our close_notify (msp_io_ep_alert), once written, leaves the
 * peer's direction running (the idle time-out bounds it). The session ends
 * (closed with MSP_OK) once both went and the output is written.
 */
MSP_API int msp_io_ep_new(struct ev_loop *loop, int fd, msp_tlmsp_conn_t *conn, const msp_io_ep_events_t *ev,
                          msp_io_ep_t **out);

/** Closes the socket and frees the connection. NULL is ignored. */
MSP_API void msp_io_ep_free(msp_io_ep_t *ep);

MSP_API msp_tlmsp_conn_t *msp_io_ep_conn(msp_io_ep_t *ep);

/**
 * Queues application data (msp_tlmsp_conn_send) and writes what the socket
 * takes. All or nothing: MSP_ERR_AGAIN when the output queue is above its
 * high-water mark (8 MiB; nothing queued: send again after the drained
 * event), MSP_ERR_LIMIT when the data would take the queue over its limit
 * (256 MiB; nothing queued), else as msp_tlmsp_conn_send. The driver
 * keeps reading meanwhile: two endpoints that each stopped reading while
 * their own output waited would wait on each other for ever (a client
 * sending in bulk to a server that reflects it). A program whose reaction
 * to input is what waits pauses its input instead (msp_io_ep_pause).
 */
MSP_API int msp_io_ep_send(msp_io_ep_t *ep, uint8_t ctx, const uint8_t *p, size_t len);

/**
 * Stops (paused = 1) or resumes (0) reading the socket, for a program whose
 * answers to input wait for room (a server reflecting what it receives):
 * paused until the drained event, the peer's input waits in the network
 * instead of in our memory.
 */
MSP_API void msp_io_ep_pause(msp_io_ep_t *ep, int paused);

/**
 * True while a send would be taken (the output queue is below its high-water
 * mark). When false, the drained event follows once the queue empties.
 */
MSP_API int msp_io_ep_writable(const msp_io_ep_t *ep);

/** Replaces the time-outs (t copied; the running phase's deadline counts from when it began). */
MSP_API void msp_io_ep_set_timeouts(msp_io_ep_t *ep, const msp_io_timeouts_t *t);

/**
 * Why the session ended, one line for a log, when the error code alone does
 * not say it: "handshake timed out after 30 s", "connection refused",
 * "connection reset", "connect timed out after 10 s", "closed by the peer";
 * NULL otherwise. Valid until ep is freed (in the closed event too).
 */
MSP_API const char *msp_io_ep_why(const msp_io_ep_t *ep);

/** Sends an alert (close_notify: 0, 1, 0); after a closing alert the driver shuts down once flushed. */
MSP_API int msp_io_ep_alert(msp_io_ep_t *ep, uint8_t ctx, uint8_t level, uint8_t desc);

/** Bytes queued and not yet taken by the socket. */
MSP_API size_t msp_io_ep_pending(const msp_io_ep_t *ep);

/**
 * Sets the event for the peer's close_notify with half_close (user: the
 * events' user); NULL: none. Apart from msp_io_ep_events_t so that programs
 * that list those events keep compiling.
 */
MSP_API void msp_io_ep_set_peer_closed(msp_io_ep_t *ep, msp_io_ep_peer_closed_fn peer_closed);

/**
 * True once the peer's close_notify came in with half_close. Its event does
 * not run when that close_notify ends the session (ours went before, and
 * everything is written): the closed event (MSP_OK) says it then.
 */
MSP_API int msp_io_ep_peer_closed(const msp_io_ep_t *ep);

typedef struct msp_io_mb msp_io_mb_t;

/* What the connect event returns when the program finishes the connection later. */
#define MSP_IO_MB_PENDING (-2)

/*
 * The events of a middlebox driver.
 *
 * connect: once the ClientHello names the next hop. Returns a non-blocking
 * socket connected or connecting to it (owned by the driver from then on),
 * -1 when it cannot be reached, or MSP_IO_MB_PENDING when the program finds
 * it later (a name lookup) without stopping the loop: it then calls
 * msp_io_mb_connected or msp_io_mb_route_failed, never from inside this
 * event. Output toward the next hop waits in its queue meanwhile. On -1 or
 * msp_io_mb_route_failed the client gets a fatal middlebox_route_failure
 * alert and the session ends.
 *
 * Cancelling a pending connect: the driver never calls the program about
 * it; the program's lookup must not outlive mb. When the session ends during
 * the lookup, the closed event runs with msp_io_mb_connecting(mb) still
 * true: the program drops its lookup there, before it frees mb. A program
 * that frees mb at another time drops the lookup first when
 * msp_io_mb_connecting(mb) is true. Answers given after the closed event
 * are refused (while mb is not freed).
 */
typedef struct msp_io_mb_events {
    void *user;
    int (*connect)(void *user, const msp_tlmsp_address_t *next);
    void (*ready)(void *user, msp_io_mb_t *mb);
    void (*closed)(void *user, msp_io_mb_t *mb, int err);
} msp_io_mb_events_t;

/* The queue toward the server (to_server = 1) or the client, which refused a send or was left full, went empty. */
typedef void (*msp_io_mb_drained_fn)(void *user, msp_io_mb_t *mb, int to_server);

/** Drives a middlebox for the accepted client socket fd (owned, with m, from now on). */
MSP_API int msp_io_mb_new(struct ev_loop *loop, int client_fd, msp_tlmsp_mbox_t *m, const msp_io_mb_events_t *ev,
                          msp_io_mb_t **out);
/** NULL is ignored. */
MSP_API void msp_io_mb_free(msp_io_mb_t *mb);
MSP_API msp_tlmsp_mbox_t *msp_io_mb_mbox(msp_io_mb_t *mb);

/**
 * Finishes a pending connect: fd is the non-blocking socket toward the next
 * hop, connected or connecting; the queued output goes out once it can.
 * MSP_OK (fd owned from now on; the closed event may already have run and
 * freed mb when this returns), or MSP_ERR_ARGUMENT when mb was not waiting
 * for a connection or its session already ended (fd not taken).
 */
MSP_API int msp_io_mb_connected(msp_io_mb_t *mb, int fd);

/**
 * Ends a pending connect in failure: the client gets a fatal
 * middlebox_route_failure alert and the closed event reports err (MSP_OK:
 * MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE); it may free mb. Ignored when mb was
 * not waiting for a connection or its session already ended.
 */
MSP_API void msp_io_mb_route_failed(msp_io_mb_t *mb, int err);

/** True while mb waits for msp_io_mb_connected or msp_io_mb_route_failed (also in its closed event). */
MSP_API int msp_io_mb_connecting(const msp_io_mb_t *mb);

/**
 * Inserts data toward the server (to_server = 1) or the client
 * (msp_tlmsp_mbox_send). All or nothing, as msp_io_ep_send: MSP_ERR_AGAIN
 * while that queue is above its high-water mark (then the drained event
 * says when to send again), MSP_ERR_LIMIT when it would go over its limit.
 */
MSP_API int msp_io_mb_send(msp_io_mb_t *mb, int to_server, uint8_t ctx, const uint8_t *p, size_t len);

/**
 * Sets the event for a queue that refused a send (or was left full) and drained (user: the
 * events' user); NULL: none. Apart from msp_io_mb_events_t so that programs
 * that list those events keep compiling.
 */
MSP_API void msp_io_mb_set_drained(msp_io_mb_t *mb, msp_io_mb_drained_fn drained);

/** True while a send toward the server (to_server = 1) or the client would be taken; when false, the drained event
 * follows. */
MSP_API int msp_io_mb_writable(const msp_io_mb_t *mb, int to_server);

/** Replaces the time-outs (as msp_io_ep_set_timeouts); connect bounds the connection to the next hop. */
MSP_API void msp_io_mb_set_timeouts(msp_io_mb_t *mb, const msp_io_timeouts_t *t);

/**
 * Why the session ended, as msp_io_ep_why. After a route failure the driver
 * found itself (the next hop refused or reset the connection, did not
 * connect within the connect time-out, or closed before answering) the
 * closed event reports MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE, the client got
 * that fatal alert, and this says why ("connection refused", "connection
 * reset", "connect timed out after 10 s", "closed before answering"), for
 * the program to log with the next hop's HOST:PORT.
 */
MSP_API const char *msp_io_mb_why(const msp_io_mb_t *mb);

/** Sends an alert toward the server (to_server = 1) or the client (msp_tlmsp_mbox_alert). */
MSP_API int msp_io_mb_alert(msp_io_mb_t *mb, int to_server, uint8_t ctx, uint8_t level, uint8_t desc);

/**
 * Releases the oldest n containers held toward the server (to_server = 1) or
 * the client with verdicts v (msp_tlmsp_mbox_release; data and len may be
 * NULL when none is REPLACE) and writes what the socket takes. Returns as
 * msp_tlmsp_mbox_release. A failure while writing ends the session: the
 * closed event runs (it may free mb) before this returns.
 */
MSP_API int msp_io_mb_release(msp_io_mb_t *mb, int to_server, size_t n, const msp_tlmsp_verdict_t *v,
                              const uint8_t *const *data, const size_t *len);

/*
 * The next-hop resolver: connects to HOST:PORT without stopping the loop,
 * for a middlebox driver's connect event. Names are looked up with c-ares
 * on the loop (one channel, its sockets watched by the loop), so a slow or
 * silent DNS server holds up only the lookups that wait for it. It reads
 * /etc/resolv.conf and the hosts file as c-ares does; its own time-outs
 * replace the file's `timeout:` and `attempts:` (c-ares tries each server
 * twice, 1.5 s then 3 s). IP literals skip c-ares.
 *
 * Failures come back as a code and an msp_error_t whose detail is one line
 * naming HOST:PORT ("next hop HOST:PORT: cannot resolve the name: ...",
 * "cannot connect to HOST:PORT: ..."), for the program to print as it is.
 */
typedef struct msp_io_resolver msp_io_resolver_t;
typedef struct msp_io_resolver_lookup msp_io_resolver_lookup_t;

#define MSP_IO_RESOLVER_TIMEOUT 5.0     /* seconds, the default of msp_io_resolver_cfg_t.timeout */
#define MSP_IO_RESOLVER_LOOKUPS_MAX 128 /* the default of msp_io_resolver_cfg_t.max_lookups */

typedef struct msp_io_resolver_cfg {
    double timeout;      /* seconds a lookup may take before it fails; 0: MSP_IO_RESOLVER_TIMEOUT */
    size_t max_lookups;  /* lookups in flight before new ones are refused; 0: MSP_IO_RESOLVER_LOOKUPS_MAX */
    const char *servers; /* name servers "IP[:PORT],..." instead of resolv.conf's; NULL: resolv.conf's */
} msp_io_resolver_cfg_t;

/*
 * A lookup's end, from the loop: fd is a non-blocking socket connected or
 * connecting to the first address that took the connect (owned by the
 * callee), or -1 with err saying why (err->code: MSP_ERR_NOT_FOUND for a
 * name that did not resolve in time, MSP_ERR_IO for a refused connect).
 */
typedef void (*msp_io_resolver_fn)(void *user, int fd, const msp_error_t *err);

/**
 * A resolver on loop; cfg may be NULL (the defaults). MSP_OK, or
 * MSP_ERR_NO_MEMORY, MSP_ERR_ARGUMENT (cfg->servers unusable) or
 * MSP_ERR_IO (c-ares cannot start), with err (may be NULL) saying why.
 */
MSP_API int msp_io_resolver_new(struct ev_loop *loop, const msp_io_resolver_cfg_t *cfg, msp_io_resolver_t **out,
                                msp_error_t *err);

/** Drops every lookup in flight (no callback runs: their handles die with r) and the channel. NULL is ignored. */
MSP_API void msp_io_resolver_free(msp_io_resolver_t *r);

/**
 * Connects to host:port. MSP_OK with *fd set and *lookup NULL when it was
 * answered at once (an IP literal, a name in the hosts file); MSP_OK with
 * *fd -1 and *lookup set when the answer comes later: done(user, fd, err)
 * runs then from the loop, unless msp_io_resolver_cancel ran first. Else
 * the error (err filled): MSP_ERR_LIMIT when max_lookups are in flight
 * already (a name the hosts file knows still goes on), MSP_ERR_NOT_FOUND,
 * MSP_ERR_IO, MSP_ERR_NO_MEMORY, MSP_ERR_ARGUMENT (a host longer than 255).
 * r may be NULL for an IP literal.
 */
MSP_API int msp_io_resolver_connect(msp_io_resolver_t *r, const char *host, uint16_t port, msp_io_resolver_fn done,
                                    void *user, int *fd, msp_io_resolver_lookup_t **lookup, msp_error_t *err);

/**
 * The caller no longer wants the answer: done will not run. Only before
 * done ran (the handle is not to be used after it). NULL is ignored.
 */
MSP_API void msp_io_resolver_cancel(msp_io_resolver_lookup_t *l);

/**
 * Without a loop: resolves host with the system's blocking getaddrinfo and
 * starts a non-blocking connection (TCP_NODELAY) to the first address that
 * takes it, for a program with one connection to make (a client). MSP_OK
 * with *fd; MSP_ERR_NOT_FOUND (the name) or MSP_ERR_IO (every address
 * refused at once), *fd -1 and err's detail the one line to print.
 */
MSP_API int msp_io_connect(const char *host, uint16_t port, int *fd, msp_error_t *err);

#endif
