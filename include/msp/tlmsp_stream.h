/*
 * Stream mode: one plain byte stream (an application's TCP connection, or
 * stdin/stdout) carried in one TLMSP session, on a libev loop; what
 * `msp client --accept`, `msp client --stdio` and `msp server --forward`
 * run per connection, like stunnel or ncat.
 *
 * Bytes read from the plain side go to the peer in one context, or with
 * HTTP framing (msp/tlmsp_http.h) the header blocks in one context and the
 * bodies in another. Application data received in any context is written
 * to the plain side in the order it came.
 *
 * Both directions close apart (the endpoint runs with half_close):
 *  - EOF on the plain side sends close_notify; the other direction keeps
 *    flowing;
 *  - the peer's close_notify shuts down the plain side's writing
 *    (shutdown(SHUT_WR), or close for a pipe) once what came before it is
 *    written;
 *  - the session ends cleanly when both went and everything is written.
 * Back-pressure: reading from one side stops while the other side's queue
 * is above high_water (the TLMSP side's: at most 6 MiB), and resumes when it
 * drains.
 *
 * The TLMSP side is the endpoint driver of msp/tlmsp_io.h (msp_io_ep) with
 * half-close: its time-outs (handshake, idle, close, connect) end a session
 * too, and an idle session holds no queues.
 */
#ifndef MSP_TLMSP_STREAM_H
#define MSP_TLMSP_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "msp/api.h"
#include "msp/error.h"
#include "msp/tlmsp_conn.h"
#include "msp/tlmsp_io.h"

#define MSP_TLMSP_STREAM_HIGH_WATER ((size_t)4 << 20) /* the default of msp_tlmsp_stream_cfg_t.high_water */
#define MSP_TLMSP_STREAM_HANDSHAKE_TIMEOUT 30.0       /* seconds, the default of .handshake_timeout */

typedef struct msp_tlmsp_stream msp_tlmsp_stream_t;

typedef struct msp_tlmsp_stream_events {
    void *user;
    /* the TLMSP handshake is complete (a server gateway connects its backend here); optional */
    void (*ready)(void *user, msp_tlmsp_stream_t *s);
    /* the session is over: err->code MSP_OK after a clean close both ways, else why (err->detail one line);
     * it may free s */
    void (*closed)(void *user, msp_tlmsp_stream_t *s, const msp_error_t *err);
} msp_tlmsp_stream_events_t;

typedef struct msp_tlmsp_stream_cfg {
    struct ev_loop *loop;
    uint8_t role;                           /* MSP_TLMSP_ID_CLIENT or MSP_TLMSP_ID_SERVER */
    const msp_tlmsp_endpoint_cfg_t *engine; /* copied; its events and half_close are the stream's own */
    /* plain bytes go in ctx; with http set, header blocks in header_ctx and bodies in body_ctx */
    uint8_t ctx;
    int http;
    uint8_t header_ctx, body_ctx;
    size_t high_water; /* 0: MSP_TLMSP_STREAM_HIGH_WATER */
    /* the TLMSP side's time-outs (copied); NULL: msp_io_timeouts_default. An expiry ends the session with
     * MSP_ERR_IO and a detail such as "TLMSP side: idle timed out after 300 s". */
    const msp_io_timeouts_t *timeouts;
    /* seconds from attaching the TLMSP side to a complete handshake, over timeouts' handshake when not 0;
     * negative: none */
    double handshake_timeout;
    msp_tlmsp_stream_events_t ev;
} msp_tlmsp_stream_cfg_t;

/**
 * A session with neither side attached yet. MSP_OK; MSP_ERR_ARGUMENT (no
 * loop, engine or closed event, a bad role, a context 0), or
 * MSP_ERR_NO_MEMORY, or what msp_tlmsp_conn_new returned.
 */
MSP_API int msp_tlmsp_stream_new(const msp_tlmsp_stream_cfg_t *cfg, msp_tlmsp_stream_t **out);

/** Closes both sides' descriptors and frees everything. NULL is ignored. */
MSP_API void msp_tlmsp_stream_free(msp_tlmsp_stream_t *s);

/**
 * The TLMSP side: a non-blocking socket, connected or connecting (a client
 * sends its ClientHello now), owned from now on. Once only. MSP_OK or
 * MSP_ERR_ARGUMENT (fd not taken).
 */
MSP_API int msp_tlmsp_stream_attach_tlmsp(msp_tlmsp_stream_t *s, int fd);

/**
 * The plain side: in_fd and out_fd (the same socket twice, or stdin and
 * stdout), non-blocking, owned from now on. Its reading starts once the
 * handshake is complete; what the peer sends before it is attached waits
 * (up to high_water, then the TLMSP side is not read). Once only. MSP_OK
 * or MSP_ERR_ARGUMENT (nothing taken).
 */
MSP_API int msp_tlmsp_stream_attach_plain(msp_tlmsp_stream_t *s, int in_fd, int out_fd);

/**
 * Ends the session at once with err (code and detail kept for the closed
 * event): a fatal internal_error alert goes to the peer when the handshake
 * is complete. For a program whose plain side cannot be had (a backend
 * that refuses). The closed event, like every closed event, runs later
 * from the loop, never inside a call of the program.
 */
MSP_API void msp_tlmsp_stream_abort(msp_tlmsp_stream_t *s, const msp_error_t *err);

/**
 * Ends our direction as an end of the plain side would (close_notify; the
 * plain side is read no more), while the peer's runs on until its
 * close_notify: the session then ends cleanly. Before the handshake is
 * complete the session ends at once (MSP_ERR_IO). For a drain.
 */
MSP_API void msp_tlmsp_stream_close(msp_tlmsp_stream_t *s);

/** The engine (for its middleboxes and contexts); valid while s lives. */
MSP_API msp_tlmsp_conn_t *msp_tlmsp_stream_conn(msp_tlmsp_stream_t *s);

/** Bytes carried so far: read from the plain side (to_peer = 1), or written to it. */
MSP_API uint64_t msp_tlmsp_stream_bytes(const msp_tlmsp_stream_t *s, int to_peer);

#endif
