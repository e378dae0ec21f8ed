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

#include "msp/tlmsp_conn.h"

struct ev_loop;

typedef struct msp_io_ep msp_io_ep_t;

/* What an endpoint driver reports. err: MSP_OK after a clean close, else the error or alert. */
typedef struct msp_io_ep_events {
    void *user;
    void (*ready)(void *user, msp_io_ep_t *ep);
    void (*closed)(void *user, msp_io_ep_t *ep, int err);
    /* optional: the output queue went empty (a sender refills it here) */
    void (*drained)(void *user, msp_io_ep_t *ep);
} msp_io_ep_events_t;

/**
 * Drives conn over the connected non-blocking socket fd (both owned from
 * now on). A client's ClientHello is sent at once. MSP_OK or
 * MSP_ERR_NO_MEMORY (then nothing is owned).
 */
MSP_API int msp_io_ep_new(struct ev_loop *loop, int fd, msp_tlmsp_conn_t *conn, const msp_io_ep_events_t *ev,
                          msp_io_ep_t **out);

/** Closes the socket and frees the connection. NULL is ignored. */
MSP_API void msp_io_ep_free(msp_io_ep_t *ep);

MSP_API msp_tlmsp_conn_t *msp_io_ep_conn(msp_io_ep_t *ep);

/** Queues application data (msp_tlmsp_conn_send) and writes what the socket takes. */
MSP_API int msp_io_ep_send(msp_io_ep_t *ep, uint8_t ctx, const uint8_t *p, size_t len);

/** Sends an alert (close_notify: 0, 1, 0); after a closing alert the driver shuts down once flushed. */
MSP_API int msp_io_ep_alert(msp_io_ep_t *ep, uint8_t ctx, uint8_t level, uint8_t desc);

/** Bytes queued and not yet taken by the socket. */
MSP_API size_t msp_io_ep_pending(const msp_io_ep_t *ep);

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

/** Inserts data toward the server (to_server = 1) or the client (msp_tlmsp_mbox_send). */
MSP_API int msp_io_mb_send(msp_io_mb_t *mb, int to_server, uint8_t ctx, const uint8_t *p, size_t len);

/** Sends an alert toward the server (to_server = 1) or the client (msp_tlmsp_mbox_alert). */
MSP_API int msp_io_mb_alert(msp_io_mb_t *mb, int to_server, uint8_t ctx, uint8_t level, uint8_t desc);

#endif
