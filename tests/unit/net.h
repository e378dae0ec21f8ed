/*
 * Test helper: a TLMSP path in memory (client, middleboxes m1..mN, server)
 * with no sockets. Bytes move hop by hop when net_pump() runs; a tamper hook
 * can change them on the way, and chunk sizes can be forced to exercise
 * partial records.
 */
#ifndef MSP_TEST_NET_H
#define MSP_TEST_NET_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/buf.h"
#include "msp/tlmsp_conn.h"

#define NET_MAX_MBOX 8

typedef struct net_identity {
    EVP_PKEY *key;
    uint8_t *der;
    size_t der_len;
    const uint8_t *ders[1];
    size_t lens[1];
} net_identity_t;

/** A self-signed certificate for cn, RSA-2048 (rsa != 0) or P-256. 0 on success. */
int net_identity_make(net_identity_t *id, const char *cn, int rsa);
void net_identity_free(net_identity_t *id);

/* What an endpoint received, per context (concatenated). */
typedef struct net_sink {
    msp_buf_t data[256];
    int alerts;
    uint8_t last_level, last_desc, last_ctx;
} net_sink_t;

/* What a middlebox saw and what it should do. */
typedef struct net_mbox_seen {
    size_t containers, with_plaintext;
    msp_buf_t plain; /* plaintexts it could read, concatenated */
    /* behaviour: replace plaintext `match` by `with` (to_server direction only when to_server_only) */
    const char *match, *with;
    int delete_match;
} net_mbox_seen_t;

/* A tamper hook sees every chunk on a link before delivery: link i joins node i and i+1 (0 = client,
 * n + 1 = server); to_server is the direction. It may change buf in place (and its length). */
typedef void (*net_tamper_fn)(void *user, size_t link, int to_server, msp_buf_t *buf);

typedef struct net {
    size_t n;
    msp_tlmsp_conn_t *client, *server;
    msp_tlmsp_mbox_t *m[NET_MAX_MBOX];
    msp_buf_t c2s[NET_MAX_MBOX + 1], s2c[NET_MAX_MBOX + 1];
    net_sink_t at_client, at_server;
    net_mbox_seen_t seen[NET_MAX_MBOX];
    int client_err, server_err, mbox_err[NET_MAX_MBOX];
    net_tamper_fn tamper;
    void *tamper_user;
    size_t chunk;       /* deliver at most this many bytes per call (0: all) */
    int echo;           /* the server sends back what it receives, in the same context */
    size_t echoed[256]; /* how much of at_server.data[c] went back */
    uint64_t rng;       /* deterministic randomness for the callbacks */
} net_t;

typedef struct net_setup {
    size_t n;                          /* middleboxes */
    uint8_t access[NET_MAX_MBOX][256]; /* MSP_TLMSP_ACCESS_* per middlebox and context */
    msp_tlmsp_context_list_t contexts; /* what the client offers */
    net_identity_t *server_id, *mbox_id[NET_MAX_MBOX];
    int half_close; /* msp_tlmsp_endpoint_cfg_t.half_close of both endpoints */
} net_setup_t;

/** Builds the path; the client has sent its ClientHello. 0 on success. */
int net_open(net_t *net, const net_setup_t *setup);
void net_close(net_t *net);

/** Moves bytes until nothing moves. Returns the number of deliveries made. */
size_t net_pump(net_t *net);

/** True when every entity finished its handshake. */
int net_ready(const net_t *net);

/*
 * The path the tamper, forge, records, envelope and finished tests share: client -- m1 -- m2 -- server, context 1
 * unconfirmed (m1 rw, m2 r), context 2 confirmed (m1 r, m2 rw). The identities are made once per test binary
 * (cmocka group set-up and tear-down).
 */
extern net_identity_t net_server_id, net_mbox_ids[2];
void net_two_mbox_setup(net_setup_t *s);
int net_two_mbox_ids_make(void **state);
int net_two_mbox_ids_free(void **state);

/*
 * Entity `who` (0 client, 1 m1, 2 m2, 3 server) sent `alert`; every other entity raised none of its own (only the
 * relayed alert), both endpoints heard it, nobody is ready and nothing was released (cmocka assertions).
 */
void net_expect_refused(const net_t *net, size_t who, int alert);

/** The whole length of the record at p: header and payload. */
size_t net_record_len(const uint8_t *p);

#endif
