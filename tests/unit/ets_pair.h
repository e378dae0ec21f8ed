/*
 * Test helper: one in-process TLS 1.3 connection between a server SSL_CTX
 * (normally msp_ets_server_ctx_new) and a stock client in the default
 * library context, over memory BIOs, with everything a passive observer
 * would see recorded:
 *
 *   - the raw bytes of each direction (bytes[ETS_C2S], bytes[ETS_S2C]),
 *   - the same bytes as "chunks" in the order they were written, so a
 *     decryptor can be fed the two directions interleaved as on a wire,
 *   - the client's NSS key log lines (what the decryptor must reproduce).
 *
 * Typical use:
 *
 *   EVP_PKEY *ck; X509 *cert;
 *   ets_pair_make_cert(ETS_CERT_P256, &ck, &cert);
 *   ets_pair_server_setup(sctx, ck, cert);          // cert, key, 0-RTT allowance
 *   SSL_CTX *cctx = ets_pair_client_ctx();
 *   ets_pair_t p;
 *   ets_pair_opts_t o = {.groups = "P-384:x25519"};  // offers P-384 first: HRR towards x25519
 *   if (ets_pair_run(&p, sctx, cctx, &o) != 0) fail(p.error);
 *   ... p.bytes, p.chunks, p.keylog, p.session (for the next run's o.session) ...
 *   ets_pair_free(&p);
 *
 * One connection per ets_pair_run; nothing here is shared between pairs.
 */
#ifndef MSP_TEST_ETS_PAIR_H
#define MSP_TEST_ETS_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define ETS_PAIR_MAX_BYTES (1u << 20) /* per direction; more fails the run */
#define ETS_PAIR_MAX_CHUNKS 4096
#define ETS_PAIR_MAX_KEYLOG 16384 /* bytes of key log text */
#define ETS_PAIR_MAX_APP 65536    /* application data kept per direction */
#define ETS_PAIR_MAX_SHARE 133    /* longest key_exchange we parse (P-521 point) */

enum { ETS_C2S = 0, ETS_S2C = 1 };
enum { ETS_CERT_RSA = 0, ETS_CERT_P256 = 1 };

/* A write of one side: bytes[dir][off .. off+len). */
typedef struct ets_chunk {
    int dir;
    size_t off;
    size_t len;
} ets_chunk_t;

typedef struct ets_pair_opts {
    const char *groups;       /* client groups list, in preference order; NULL: OpenSSL's default */
    const char *ciphersuites; /* client TLS 1.3 suites ("TLS_AES_128_GCM_SHA256"); NULL: default */
    SSL_SESSION *session;     /* resume it (not taken over) */
    const char *early_data;   /* with session: sent as 0-RTT; NULL: none */
    int key_update;           /* after the first exchange: client KeyUpdate(update_requested), then a second one */
    const char *c2s;          /* application data client -> server; NULL: "hello server" */
    const char *s2c;          /* application data server -> client; NULL: "hello client" */
} ets_pair_opts_t;

typedef struct ets_pair {
    SSL *client, *server; /* alive until ets_pair_free (both shut down) */
    uint8_t *bytes[2];    /* what went over the wire, per direction; owned */
    size_t len[2];
    ets_chunk_t *chunks; /* in write order; owned */
    size_t nchunks;
    char *keylog; /* the client's key log: "LABEL <client_random> <secret>\n" lines, NUL-terminated; owned */
    size_t keylog_len;
    char *app[2]; /* application data received: [ETS_C2S] by the server, [ETS_S2C] by the client; NUL-terminated */
    size_t app_len[2];
    SSL_SESSION *session; /* the client's session after the connection (for o.session of a resumption); owned */
    int resumed;          /* the client reports the session was reused */
    int early_accepted;   /* the server accepted the 0-RTT data */
    char error[512];      /* why ets_pair_run failed: the first OpenSSL error of either side */
} ets_pair_t;

/** A client SSL_CTX in the default library context: TLS 1.3 only, no verification, key log recorded. */
SSL_CTX *ets_pair_client_ctx(void);

/** A self-signed certificate and its key (RSA 2048 or ECDSA P-256), in the default library context. 0 on success. */
int ets_pair_make_cert(int kind, EVP_PKEY **key, X509 **cert);

/** Puts cert and key on a server SSL_CTX and allows 0-RTT (16 KiB). 0 on success. */
int ets_pair_server_setup(SSL_CTX *sctx, EVP_PKEY *key, X509 *cert);

/**
 * Runs one connection: handshake (with 0-RTT when asked and possible), the
 * application data both ways, optional KeyUpdate and a second exchange,
 * close_notify both ways. 0 on success; -1 with p->error set. p is always
 * to be released with ets_pair_free.
 */
int ets_pair_run(ets_pair_t *p, SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o);

void ets_pair_free(ets_pair_t *p);

/**
 * From the recorded server bytes: the group and key_exchange of the
 * ServerHello's key_share (the real ServerHello, after a possible
 * HelloRetryRequest); *hrr tells whether an HRR came first (may be NULL).
 * 0 on success; -1 when there is none (e.g. psk_ke) or the bytes do not parse.
 */
int ets_pair_server_share(const ets_pair_t *p, uint16_t *group, uint8_t *share, size_t cap, size_t *len, int *hrr);

/** The value of key log label for this connection (hex text into out, NUL-terminated); 0 if found. */
int ets_pair_keylog_get(const ets_pair_t *p, const char *label, char *out, size_t cap);

#endif
