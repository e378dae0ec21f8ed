/*
 * Test and bench helper: one in-process TLS 1.3 connection between a server
 * SSL_CTX (normally msp_ets_server_ctx_new) and a stock client in the
 * default library context, over memory BIOs, with everything a passive
 * observer would see recorded:
 *
 *   - the raw bytes of each direction (bytes[ETS_C2S], bytes[ETS_S2C]),
 *   - the same bytes as "chunks" in the order they were written, so a
 *     decryptor can be fed the two directions interleaved as on a wire,
 *   - the client's NSS key log lines (what the decryptor must reproduce),
 *   - the application data each side received.
 *
 * Whole connection in one call:
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
 * Or step by step (ets_pair_run is these steps):
 *
 *   ets_pair_start(&p, sctx, cctx, &o);             // handshake (and 0-RTT) done
 *   ets_pair_send(&p, ETS_C2S, data, n);            // one SSL_write, read and checked by the peer
 *   ets_pair_key_update(&p, ETS_C2S, 1);            // KeyUpdate(update_requested) on the wire
 *   ets_pair_finish(&p);                            // close_notify both ways
 *
 * Every step returns 0, or -1 with p->error set; after a failure every step
 * fails at once. With o.on_write set nothing of the wire is kept: each move
 * of bytes goes to the callback instead (a generator streaming a capture).
 * One connection per ets_pair_t; nothing here is shared between pairs.
 */
#ifndef MSP_TEST_ETS_PAIR_H
#define MSP_TEST_ETS_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define ETS_PAIR_MAX_BYTES (1u << 20)              /* default: wire bytes kept per direction; more fails the pair */
#define ETS_PAIR_MAX_CHUNKS 4096                   /* default: chunks kept */
#define ETS_PAIR_LIMIT ((size_t)1 << 30)           /* the most o.max_bytes, o.max_chunks, o.max_app may ask for */
#define ETS_PAIR_MAX_KEYLOG 16384                  /* bytes of key log text; more fails the pair */
#define ETS_PAIR_MAX_APP 65536                     /* default: application data kept per direction (the rest dropped) */
#define ETS_PAIR_MAX_SHARE 133                     /* longest key_exchange we parse (P-521 point) */
#define ETS_PAIR_MOVE (1u << 20)                   /* callback mode: bytes handed over per call, at most */
#define ETS_PAIR_ONE_WAY_BATCH (ETS_PAIR_MOVE / 2) /* one-way writes are moved once this much is pending */
#define ETS_PAIR_MAX_ALPN 32                       /* longest o.alpn */

enum { ETS_C2S = 0, ETS_S2C = 1 };
enum { ETS_CERT_RSA = 0, ETS_CERT_P256 = 1 };

/* A write of one side: bytes[dir][off .. off+len). */
typedef struct ets_chunk {
    int dir;
    size_t off;
    size_t len;
} ets_chunk_t;

/* Callback mode: bytes one side wrote, in wire order (len[dir] already counts them). */
typedef void (*ets_pair_write_fn)(void *arg, int dir, const uint8_t *bytes, size_t n);

typedef struct ets_pair_opts {
    const char *groups;       /* client groups list, in preference order; NULL: OpenSSL's default */
    const char *ciphersuites; /* client TLS 1.3 suites ("TLS_AES_128_GCM_SHA256"); NULL: default */
    const char *sni;          /* client server_name; NULL: none */
    const char *alpn;         /* the one protocol the client offers ("h2"); NULL: none */
    SSL_SESSION *session;     /* resume it (not taken over) */
    const char *early_data;   /* with session: sent as 0-RTT by ets_pair_start; NULL: none */
    int key_update; /* ets_pair_run: after the first exchange a client KeyUpdate(update_requested), then a second one */
    const char *c2s;            /* ets_pair_run: application data client -> server; NULL: "hello server" */
    const char *s2c;            /* ets_pair_run: application data server -> client; NULL: "hello client" */
    size_t max_bytes;           /* wire bytes kept per direction; 0: ETS_PAIR_MAX_BYTES */
    size_t max_chunks;          /* chunks kept; 0: ETS_PAIR_MAX_CHUNKS */
    size_t max_app;             /* application data kept per direction; 0: ETS_PAIR_MAX_APP */
    ets_pair_write_fn on_write; /* set: every move goes here, no bytes or chunks are kept */
    void *arg;                  /* for on_write */
} ets_pair_opts_t;

typedef struct ets_pair {
    SSL *client, *server; /* alive until ets_pair_free */
    uint8_t *bytes[2];    /* what went over the wire, per direction; owned (NULL in callback mode) */
    size_t len[2];        /* bytes moved per direction (also in callback mode) */
    ets_chunk_t *chunks;  /* in write order; owned */
    size_t nchunks;
    char *keylog; /* the client's key log: "LABEL <client_random> <secret>\n" lines, NUL-terminated; owned */
    size_t keylog_len;
    char *app[2]; /* application data received: [ETS_C2S] by the server, [ETS_S2C] by the client; NUL-terminated */
    size_t app_len[2];
    SSL_SESSION *session; /* ets_pair_run: the client's session after the connection (for o.session); owned */
    int resumed;          /* the client reports the session was reused (known after ets_pair_start) */
    int early_accepted;   /* the server accepted the 0-RTT data (known after ets_pair_start) */
    char error[512];      /* why a step failed: the first failure, with OpenSSL's first error */
    /* internal */
    size_t cap[2], chunks_cap, keylog_cap, app_cap[2];
    size_t max_bytes, max_chunks, max_app;
    int one_way[2]; /* the peer no longer reads this direction */
    ets_pair_write_fn on_write;
    void *arg;
    uint8_t *move_buf; /* callback mode */
} ets_pair_t;

/** A client SSL_CTX in the default library context: TLS 1.3 only, no verification, key log recorded. */
SSL_CTX *ets_pair_client_ctx(void);

/** A self-signed certificate and its key (RSA 2048 or ECDSA P-256), in the default library context. 0 on success. */
int ets_pair_make_cert(int kind, EVP_PKEY **key, X509 **cert);

/**
 * Replaces cert's subjectAltName with one ETS otherName (TS 103 523-3
 * 4.3.3) whose VisibilityInformation is malformed (a 1-byte fingerprint),
 * for the tests of how a malformed entry is reported. 0 on success.
 */
int ets_pair_add_bad_visibility(X509 *cert);

/** Puts cert and key on a server SSL_CTX and allows 0-RTT (16 KiB). 0 on success. */
int ets_pair_server_setup(SSL_CTX *sctx, EVP_PKEY *key, X509 *cert);

/**
 * Starts one connection (cctx from ets_pair_client_ctx): the handshake,
 * with o->early_data as 0-RTT when o->session allows it. o may be NULL.
 * p is always to be released with ets_pair_free.
 */
int ets_pair_start(ets_pair_t *p, SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o);

/** One SSL_write of data from dir's side; the peer reads all of it, which must equal data. */
int ets_pair_send(ets_pair_t *p, int dir, const void *data, size_t n);

/**
 * One SSL_write the peer never reads (a generator's bulk data): its bytes
 * are recorded but not delivered, and dir stays one-way from then on.
 * Pending bytes are moved once ETS_PAIR_ONE_WAY_BATCH are waiting, and by any other step.
 */
int ets_pair_write(ets_pair_t *p, int dir, const void *data, size_t n);

/** dir's side sends a KeyUpdate now; requested: update_requested (the peer answers on its next write). */
int ets_pair_key_update(ets_pair_t *p, int dir, int requested);

/** Moves what is pending, then close_notify from the server, then from the client. */
int ets_pair_finish(ets_pair_t *p);

/**
 * One whole connection: ets_pair_start, o->c2s and o->s2c exchanged, with
 * o->key_update a client KeyUpdate and a second exchange, the session
 * taken, ets_pair_finish. 0 on success; -1 with p->error set.
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
