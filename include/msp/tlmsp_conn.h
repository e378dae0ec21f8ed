/*
 * TLMSP connections, sans-IO: a client, a server, or a middlebox (two hops)
 * driven by bytes in -> bytes out and events, with no sockets, no clock and
 * no global state (../shared/design/style.md 5.1). Randomness comes from the
 * caller's callback, except the ephemeral ECDHE keys, which OpenSSL
 * generates from its own DRBG.
 *
 * The handshake is tlmsp-handshake.md 4 (what every hop carries, 4.2); the
 * record layer tlmsp-records.md 2-10. Every failure is the alert that names
 * it (msp/error.h): it is written to the output before the call returns it,
 * as a plain alert, an unprotected alert container or a protected one,
 * whichever the hop is ready for (tlmsp-handshake.md 7.5), and the
 * connection is dead afterwards.
 *
 * Calls (picotls-shaped): *inlen is how much input is offered; on return,
 * how much was consumed (everything unless an error stopped it). Output is
 * appended to caller-owned msp_buf_t.
 */
#ifndef MSP_TLMSP_CONN_H
#define MSP_TLMSP_CONN_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include "msp/api.h"
#include "msp/buf.h"
#include "msp/tlmsp.h"
#include "msp/tlmsp_hello.h"

/** Fills buf with len unpredictable bytes. Must not fail. */
typedef void (*msp_tlmsp_random_fn)(void *user, uint8_t *buf, size_t len);

/** A certificate chain (DER, leaf first) and its private key; both borrowed for the connection's life. */
typedef struct msp_tlmsp_identity {
    EVP_PKEY *key;
    const uint8_t *const *der;
    const size_t *der_len;
    size_t ncerts;
} msp_tlmsp_identity_t;

/** Why a container event fires: data or an alert (tlmsp-records.md 10.2). */
typedef enum msp_tlmsp_kind { MSP_TLMSP_DATA = 23, MSP_TLMSP_ALERT = 21 } msp_tlmsp_kind_t;

/**
 * Events of an endpoint. data: application data that passed every check, in
 * context ctx. alert: an alert container received (level 1 warning, 2
 * fatal); close_notify is reported here too.
 */
typedef struct msp_tlmsp_events {
    void *user;
    void (*data)(void *user, uint8_t ctx, const uint8_t *p, size_t len);
    void (*alert)(void *user, uint8_t ctx, uint8_t level, uint8_t desc);
} msp_tlmsp_events_t;

/*
 * What the connections of one process share instead of building in every session: the peer certificates
 * already parsed (a middlebox sees the same server certificate in every session, and OpenSSL 3 decodes the key
 * of each parse through its decoder machinery), and the algorithms fetched once (OpenSSL 3 fetches by name at
 * every use otherwise). Optional: a configuration's shared may be NULL, and then each connection parses and
 * fetches for itself; the bytes on the wire are the same either way. Safe for concurrent use by connections on
 * several threads. Borrowed by the connections: it must outlive them.
 */
#define MSP_TLMSP_SHARED_CERTS 64        /* parsed certificates kept, the default of max_certs */
#define MSP_TLMSP_SHARED_CERT_MAX 16384u /* a longer certificate is parsed in every session, never kept */

typedef struct msp_tlmsp_shared_cfg {
    size_t max_certs; /* parsed certificates kept, the oldest replaced first; 0: MSP_TLMSP_SHARED_CERTS */
} msp_tlmsp_shared_cfg_t;

typedef struct msp_tlmsp_shared msp_tlmsp_shared_t;

/** cfg may be NULL (the defaults). MSP_OK, or MSP_ERR_NO_MEMORY (also when OpenSSL cannot fetch an algorithm). */
MSP_API int msp_tlmsp_shared_new(const msp_tlmsp_shared_cfg_t *cfg, msp_tlmsp_shared_t **out);
/** Releases sh and every certificate it keeps; NULL is a no-op. */
MSP_API void msp_tlmsp_shared_free(msp_tlmsp_shared_t *sh);

typedef struct msp_tlmsp_endpoint_cfg {
    msp_tlmsp_random_fn random;
    void *random_user;
    msp_tlmsp_address_t client_address; /* client: sent in the ClientHello; server: unused */
    msp_tlmsp_address_t server_address;
    /* client: the contexts to offer (present, audit, purpose); server: unused (learned) */
    const msp_tlmsp_context_list_t *contexts;
    /*
     * client: the middleboxes to name, ids assigned, client to server order.
     * server: the list it accepts (addresses, transparency and access must
     * match the ClientHello's exactly, as the reference's demo server
     * demands, else alert 171); entries with inserted = 1 are inserted
     * when the client's list lacks them (discovery), entries with
     * inserted = 2 are forbidden (alert 171); NULL accepts any list.
     */
    const msp_tlmsp_mbox_list_t *middleboxes;
    msp_tlmsp_identity_t identity; /* server: required; client: unused (no client certificates) */
    X509_STORE *trust;             /* certificates of the peers are verified against it; NULL: not verified */
    msp_tlmsp_events_t events;
    /*
     * 0 (the reference's TLS 1.2 behaviour): a close_notify either way ends
     * the connection; msp_tlmsp_conn_input returns MSP_ERR_CLASS_PEER_ALERT
     * + 0 for the peer's. 1: each direction closes apart (TLS 1.3 style, for
     * stream mode's half-close): the peer's close_notify is reported through
     * the alert event and ends only its direction (input returns MSP_OK;
     * data after it is unexpected_message), we may still send until we send
     * our own; once both went, input returns MSP_ERR_CLASS_PEER_ALERT + 0.
     */
    int half_close;
    msp_tlmsp_shared_t *shared; /* optional, borrowed: what the process's connections share; NULL: nothing */
} msp_tlmsp_endpoint_cfg_t;

typedef struct msp_tlmsp_conn msp_tlmsp_conn_t;

/**
 * A client (role MSP_TLMSP_ID_CLIENT) or server (MSP_TLMSP_ID_SERVER). The
 * configuration is copied; the identity, trust store and events stay
 * borrowed. MSP_OK, MSP_ERR_ARGUMENT (a missing key, random callback or
 * contexts), MSP_ERR_NO_MEMORY.
 */
MSP_API int msp_tlmsp_conn_new(uint8_t role, const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out);

/**
 * The same in the constructor convention of every msp object
 * (`int msp_x_new(const msp_x_cfg_t *cfg, msp_x_t **out)`): a client, a
 * server. *out is NULL unless MSP_OK is returned.
 */
MSP_API int msp_tlmsp_client_new(const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out);
MSP_API int msp_tlmsp_server_new(const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out);

/** Releases c and everything it owns; NULL is a no-op. */
MSP_API void msp_tlmsp_conn_free(msp_tlmsp_conn_t *c);

/** Client: writes the ClientHello. */
MSP_API int msp_tlmsp_conn_start(msp_tlmsp_conn_t *c, msp_buf_t *out);

/**
 * Feeds received bytes: handshake messages are answered into out,
 * containers are checked and reported through the events. Returns MSP_OK,
 * the alert we sent (then the connection is dead), or MSP_ERR_CLASS_PEER_ALERT
 * + n when the peer sent fatal alert n (or n = 0 after close_notify).
 */
MSP_API int msp_tlmsp_conn_input(msp_tlmsp_conn_t *c, const uint8_t *in, size_t *inlen, msp_buf_t *out);

/**
 * Discovery (tlmsp-handshake.md 7.2): when msp_tlmsp_conn_input returned
 * MSP_ERR_RECONNECT the server inserted middleboxes; the client has sent the
 * fatal close_notify the reference sends. This makes the client of the
 * second attempt (cfg as for the first), which names the discovered list,
 * and is to be connected to msp_tlmsp_conn_first_hop() of the new one.
 */
MSP_API int msp_tlmsp_conn_reconnect(const msp_tlmsp_conn_t *old, const msp_tlmsp_endpoint_cfg_t *cfg,
                                     msp_tlmsp_conn_t **out);

/** Where a client connects: the first non-transparent middlebox of its list, else the server. */
MSP_API const msp_tlmsp_address_t *msp_tlmsp_conn_first_hop(const msp_tlmsp_conn_t *c);

/** True once both Finished and every MiddleboxFinished have been exchanged. */
MSP_API int msp_tlmsp_conn_ready(const msp_tlmsp_conn_t *c);

/** True once a close_notify or a fatal alert went either way. */
MSP_API int msp_tlmsp_conn_closed(const msp_tlmsp_conn_t *c);

/** True once the peer's close_notify came in (half_close) or the connection died. */
MSP_API int msp_tlmsp_conn_peer_closed(const msp_tlmsp_conn_t *c);

/**
 * Sends application data in context ctx (a present user context), split
 * into containers of at most 16355 bytes (the largest the reference
 * accepts, tlmsp-records.md 2.4). Only when ready. MSP_ALERT_UNKNOWN_CONTEXT
 * for a context not in the session (nothing is sent). All or nothing:
 * MSP_ERR_LIMIT (or MSP_ERR_NO_MEMORY) when out cannot take every container,
 * and then nothing is written and no sequence number is used, so the
 * connection goes on (a local limit, never an alert).
 */
MSP_API int msp_tlmsp_conn_send(msp_tlmsp_conn_t *c, uint8_t ctx, const uint8_t *p, size_t len, msp_buf_t *out);

/** Sends an alert container in ctx (close_notify: level 1, desc 0, ctx 0). */
MSP_API int msp_tlmsp_conn_alert(msp_tlmsp_conn_t *c, uint8_t ctx, uint8_t level, uint8_t desc, msp_buf_t *out);

/** The session's middleboxes (as agreed in the ServerHello) and contexts; valid while c lives. */
MSP_API const msp_tlmsp_mbox_list_t *msp_tlmsp_conn_middleboxes(const msp_tlmsp_conn_t *c);
MSP_API const msp_tlmsp_context_list_t *msp_tlmsp_conn_contexts(const msp_tlmsp_conn_t *c);

/* ---- middlebox ---- */

/** What a middlebox does with a container it received (tlmsp-records.md 7). */
typedef enum msp_tlmsp_verdict {
    MSP_TLMSP_FORWARD = 0, /* unchanged (the only choice without write access) */
    MSP_TLMSP_REPLACE,     /* re-encrypt *data (write access) */
    MSP_TLMSP_DELETE,      /* send a delete container in its place (write access) */
    MSP_TLMSP_HOLD,        /* keep it, in order, until msp_tlmsp_mbox_release (read access, data only) */
} msp_tlmsp_verdict_t;

/*
 * What a middlebox may hold per direction: held containers and every container queued behind them (they may not
 * overtake), as their received bytes plus any replacement. A container that would go over it fails the input with
 * MSP_ERR_LIMIT (the connection ends both ways with internal_error). The caller can release only after
 * msp_tlmsp_mbox_input returns, and one input may be a whole socket read (1 MiB in src/io) of containers queued
 * behind a held run that the matcher decides only at its own bound (512 KiB, MSP_TLMSP_ACTIVITY_HOLD_BYTES): so
 * 4 MiB, above one read plus the matcher's bound (1.5 MiB) with room for a replacement of each and a second read
 * before the release runs. The reference's read queue (libdemo/activity.c READ_QUEUE_MAX_DEPTH_BYTES) is 1 MiB.
 */
#define MSP_TLMSP_HOLD_MAX_BYTES (4u << 20)
#define MSP_TLMSP_HOLD_MAX_CONTAINERS 4096

/**
 * Called for every container that passed the middlebox's checks, before it
 * is forwarded. to_server: its direction. access: MSP_TLMSP_ACCESS_* of this
 * middlebox for ctx; p/len the plaintext (NULL/0 without read access).
 * Return the verdict; for REPLACE set *data and *data_len to the new plaintext
 * (at most 16355 bytes; the memory must stay valid until the call that fed
 * the input returns). Data the middlebox inserts goes through
 * msp_tlmsp_mbox_send.
 *
 * HOLD (application data the middlebox can read) keeps the container: it
 * goes out when msp_tlmsp_mbox_release says what to do with it. While
 * anything is held in a direction, later containers of that direction
 * (alerts too, close_notify included) wait behind it with the verdict they
 * got (a REPLACE's data is copied), so the order on the wire and the audit
 * chain are those of deciding at once. The callback must not call
 * msp_tlmsp_mbox_release. What the middlebox originates itself
 * (msp_tlmsp_mbox_send, msp_tlmsp_mbox_alert) goes out at once, ahead of
 * anything held: release first to have it follow.
 */
typedef msp_tlmsp_verdict_t (*msp_tlmsp_container_fn)(void *user, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx,
                                                      uint8_t access, const uint8_t *p, size_t len,
                                                      const uint8_t **data, size_t *data_len);

typedef struct msp_tlmsp_mbox_cfg {
    msp_tlmsp_random_fn random;
    void *random_user;
    msp_tlmsp_address_t address; /* how the lists name this middlebox (compared byte for byte, 3.6) */
    msp_tlmsp_identity_t identity;
    X509_STORE *trust; /* endpoints' and other middleboxes' certificates; NULL: not verified */
    msp_tlmsp_container_fn container;
    void *user;
    msp_tlmsp_shared_t *shared; /* optional, borrowed: what the process's connections share; NULL: nothing */
} msp_tlmsp_mbox_cfg_t;

typedef struct msp_tlmsp_mbox msp_tlmsp_mbox_t;

/** MSP_OK, MSP_ERR_ARGUMENT (no random callback, key, certificate or address), MSP_ERR_NO_MEMORY; *out NULL on failure.
 */
MSP_API int msp_tlmsp_mbox_new(const msp_tlmsp_mbox_cfg_t *cfg, msp_tlmsp_mbox_t **out);
/** Releases m and everything it owns; NULL is a no-op. */
MSP_API void msp_tlmsp_mbox_free(msp_tlmsp_mbox_t *m);

/**
 * Feeds bytes received from the client (from_server = 0) or the server
 * (1). Output for each hop is appended to to_client / to_server. Returns as
 * msp_tlmsp_conn_input; a failure sends the alert both ways.
 */
MSP_API int msp_tlmsp_mbox_input(msp_tlmsp_mbox_t *m, int from_server, const uint8_t *in, size_t *inlen,
                                 msp_buf_t *to_client, msp_buf_t *to_server);

/**
 * The next hop once the ClientHello is in (the next non-transparent
 * middlebox after this one, else the server, 3.6); NULL before. The
 * driver connects to it and then sends what msp_tlmsp_mbox_input put into
 * to_server.
 */
MSP_API const msp_tlmsp_address_t *msp_tlmsp_mbox_next_hop(const msp_tlmsp_mbox_t *m);

/** True when both hops completed their handshake. */
MSP_API int msp_tlmsp_mbox_ready(const msp_tlmsp_mbox_t *m);

/** This middlebox's id and its access to ctx (MSP_TLMSP_ACCESS_*), once the ClientHello is in. */
MSP_API uint8_t msp_tlmsp_mbox_id(const msp_tlmsp_mbox_t *m);
MSP_API uint8_t msp_tlmsp_mbox_access(const msp_tlmsp_mbox_t *m, uint8_t ctx);

/**
 * Releases the oldest n containers held toward the server (to_server = 1)
 * or client, in order: verdicts[i] (FORWARD, REPLACE with data[i] /
 * data_len[i], or DELETE) for the i-th; data and data_len may be NULL when
 * no verdict is REPLACE. The output, appended to out, is byte for byte what
 * the verdicts would have produced returned from the callback (same sequence
 * numbers, MACs and forwarding chain), followed by the containers that
 * waited behind them up to the next one still held. MSP_OK;
 * MSP_ERR_ARGUMENT, and nothing sent, when n is more than are held, a
 * verdict is HOLD or one needs write access we lack (read-only: only
 * FORWARD), a replacement is over 16355 bytes, or the hop is closed by a
 * failure; a failure while writing ends the connection that way.
 */
MSP_API int msp_tlmsp_mbox_release(msp_tlmsp_mbox_t *m, int to_server, size_t n, const msp_tlmsp_verdict_t *verdicts,
                                   const uint8_t *const *data, const size_t *data_len, msp_buf_t *out);

/** How many containers are held toward the server (to_server = 1) or client, waiting for a verdict. */
MSP_API size_t msp_tlmsp_mbox_held(const msp_tlmsp_mbox_t *m, int to_server);

/** Inserts data toward the server (to_server = 1) or client in ctx; needs write access. All or nothing, as
 * msp_tlmsp_conn_send. */
MSP_API int msp_tlmsp_mbox_send(msp_tlmsp_mbox_t *m, int to_server, uint8_t ctx, const uint8_t *p, size_t len,
                                msp_buf_t *out);

/** Sends an alert container toward the server (to_server = 1) or client, in ctx (0, or a context it can read). */
MSP_API int msp_tlmsp_mbox_alert(msp_tlmsp_mbox_t *m, int to_server, uint8_t ctx, uint8_t level, uint8_t desc,
                                 msp_buf_t *out);

#endif
