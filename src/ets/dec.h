/* Private parts of the passive TLS 1.3 decryptor (msp/ets_dec.h). */
#ifndef MSP_ETS_DEC_PRIV_H
#define MSP_ETS_DEC_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/buf.h"
#include "msp/ets_dec.h"

#define DEC_MAX_HASH 48
#define DEC_GROUP_X25519 0x001d
#define DEC_GROUP_P256 0x0017

/*
 * OpenSSL objects fetched once per key set rather than once per connection:
 * fetching is a locked name lookup, and OpenSSL 3.0's HKDF runs HMAC() per
 * call, which fetches HMAC and the digest by name each time. The HMAC
 * contexts have their digest set and are only ever duplicated.
 */
typedef struct dec_crypto {
    EVP_MD *sha256, *sha384;
    EVP_CIPHER *aes128gcm, *aes256gcm, *chacha, *aes128ccm;
    EVP_MAC *hmac;
    EVP_MAC_CTX *hmac256, *hmac384;
    uint8_t empty256[32], empty384[48]; /* Hash(""), for Derive-Secret(., "derived", "") */
    /* Derive-Secret(HKDF-Extract(0, 0), "derived", ""): the salt of every handshake without a PSK */
    uint8_t derived256[32], derived384[48];
} dec_crypto_t;

typedef struct dec_key {
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *derive; /* derive_init done; only duplicated, never changed */
    /*
     * Scratch, the one mutable part: the client share of the connection being
     * derived. Every new EVP_PKEY costs OpenSSL 3.0 a walk over the keymgmt's
     * names (EVP_PKEY_set_type_by_keymgmt), about 3 us of a 70 us handshake;
     * setting the public key of this one does not. One thread (ets_dec.h).
     */
    EVP_PKEY *peer;
    uint16_t group;
    uint8_t share[MSP_ETS_DEC_MAX_SHARE];
    size_t share_len;
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
} dec_key_t;

struct msp_ets_keys {
    dec_crypto_t crypto;
    dec_key_t key[MSP_ETS_DEC_MAX_KEYS];
    size_t n;
};

#define DEC_MAX_TICKETS (1u << 24) /* msp_ets_tickets_new refuses a larger store */
#define DEC_NONE UINT32_MAX

/*
 * Tickets up to DEC_TICKET_INLINE bytes (OpenSSL's are about 200) are kept
 * in blocks of the store, DEC_TICKET_BLOCK entries' worth each, made when
 * first needed: a malloc per ticket cost more than the rest of storing it.
 */
#define DEC_TICKET_INLINE 256
#define DEC_TICKET_BLOCK 1024

typedef struct dec_ticket {
    uint8_t *ticket; /* in the entry's block slot, or its own allocation when longer */
    size_t ticket_len;
    int own; /* ticket is an allocation of its own */
    uint32_t hash;
    uint16_t suite;
    uint8_t psk[DEC_MAX_HASH];
    size_t psk_len;
    uint32_t newer, older; /* LRU list of entry indices, DEC_NONE at the ends */
    uint64_t tag;          /* of the issuing connection (msp_ets_conn_set_issuer), 0: none */
    const uint8_t *info;   /* its info: inside the ticket's allocation, after the ticket bytes; NULL: none */
    size_t info_len;
} dec_ticket_t;

/* Who issued a ticket: msp_ets_conn_set_issuer's arguments. */
typedef struct dec_issuer {
    uint64_t tag;
    const uint8_t *info;
    size_t info_len;
} dec_issuer_t;

/*
 * A hash index (linear probing, twice the entries, a power of two) and an
 * LRU list: a lookup or an eviction costs the same with 65,536 tickets as
 * with 4, where scanning every entry per NewSessionTicket did not.
 */
struct msp_ets_tickets {
    dec_ticket_t *e;
    uint8_t **block; /* max / DEC_TICKET_BLOCK rounded up; each NULL until an entry in it stores a ticket */
    uint32_t *slot;  /* entry index + 1; 0 is empty */
    size_t n, max, mask;
    uint32_t newest, oldest;
};

/* A suite's algorithms. */
typedef struct dec_suite {
    uint16_t id;
    const EVP_MD *md;
    const EVP_CIPHER *cipher;
    const EVP_MAC_CTX *hmac; /* digest set; duplicated per connection */
    const uint8_t *empty;    /* Hash("") */
    const uint8_t *derived;  /* Derive-Secret(Early Secret without a PSK, "derived", "") */
    size_t hlen, keylen, taglen;
    int ccm;
    int cipher_index; /* which of a direction's cipher contexts (dec_aead_t.by) */
} dec_suite_t;

#define DEC_CIPHERS 4 /* AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305, AES-128-CCM */

/* One direction's record protection. */
typedef struct dec_aead {
    EVP_CIPHER_CTX *ctx; /* the one of by in use */
    /* one per cipher, made when first needed: a recycled connection of another suite keeps its own */
    EVP_CIPHER_CTX *by[DEC_CIPHERS];
    uint8_t iv[12];
    uint64_t seq;
    int on;
} dec_aead_t;

typedef struct dec_dir {
    msp_buf_t in; /* bytes not yet consumed: at most one record unless waiting for keys */
    size_t off;   /* start of the next record in in */
    msp_buf_t hs; /* handshake bytes not yet forming a whole message */
    dec_aead_t aead;
    uint8_t secret[DEC_MAX_HASH]; /* current traffic secret (handshake, then application) */
    uint64_t records;             /* records seen, for "record N" */
    unsigned generation;          /* KeyUpdates */
    int ended;
    uint64_t stream;                 /* bytes fed and lost: the stream offset where the next input begins */
    uint64_t enc_bytes, enc_records; /* encrypted records opened and their size: the typical record after a gap */
    uint64_t records_lost;           /* in gaps */
    struct dec_resync *rs;           /* while searching for records after a gap, else NULL */
    int dead;                        /* a search after a gap gave up: only this direction is undecryptable */
} dec_dir_t;

/* Handshake progress; each phase says whose message comes next. */
enum {
    PH_CH1,     /* client: ClientHello */
    PH_SH1,     /* server: ServerHello or HelloRetryRequest */
    PH_CH2,     /* client: second ClientHello */
    PH_SH2,     /* server: ServerHello */
    PH_SFLIGHT, /* server: EncryptedExtensions .. Finished */
    PH_CFLIGHT, /* client: [EndOfEarlyData] [Certificate CertificateVerify] Finished */
    PH_DONE,    /* both directions carry application data */
};

/* Early data handling of the client after EncryptedExtensions. */
enum { EARLY_NONE, EARLY_ACCEPTED, EARLY_SKIP };

typedef struct dec_share {
    uint16_t group;
    size_t off, len; /* within ch */
} dec_share_t;

typedef struct dec_psk_id {
    size_t off, len; /* within ch */
} dec_psk_id_t;

/*
 * A field that owns an allocation must be freed in msp_ets_conn_free and,
 * in dec_conn_recycle (dec_conn.c), either kept (listed there) or freed:
 * recycling wipes every field it does not list.
 */
struct msp_ets_conn {
    const msp_ets_keys_t *keys;
    const dec_crypto_t *cr;
    msp_ets_tickets_t *tickets;
    msp_ets_conn_cb_t cb;
    void *arg;
    dec_dir_t d[2];
    int phase, failed, hrr, resumed, early_offered, early, early_accepted, ee;
    const dec_suite_t *suite;
    dec_suite_t suite_store;
    uint16_t group;
    EVP_MAC_CTX *hmac;              /* the suite's HMAC (one of hmac_by), re-keyed for every HKDF step */
    EVP_MAC_CTX *hmac_by[2];        /* SHA-256, SHA-384; made when first needed, kept by a recycled connection */
    uint8_t hmac_key[DEC_MAX_HASH]; /* its current key: the next step with it skips the key setup */
    size_t hmac_key_len;            /* 0: none */
    EVP_MD_CTX *th;                 /* transcript hash */
    EVP_MD_CTX *th_tmp;             /* copy of th finished for an intermediate hash */
    uint8_t client_random[32];
    msp_buf_t ch; /* the latest ClientHello message */
    dec_share_t share[MSP_ETS_DEC_MAX_SHARES];
    size_t nshare;
    dec_psk_id_t psk_id[MSP_ETS_DEC_MAX_PSK_IDS];
    size_t npsk;
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
    uint8_t early_secret[DEC_MAX_HASH]; /* client_early_traffic_secret */
    uint8_t hs_secret[DEC_MAX_HASH];    /* Handshake Secret, then (from the ServerHello on) Master Secret */
    /* finished_key of each side (RFC 8446 4.4.4), derived while the HMAC holds that side's secret anyway */
    uint8_t fin_key[2][DEC_MAX_HASH];
    int have_fin_key[2];
    uint8_t shs[DEC_MAX_HASH]; /* server_handshake_traffic_secret, for Finished */
    uint8_t chs[DEC_MAX_HASH]; /* client_handshake_traffic_secret */
    uint8_t res[DEC_MAX_HASH]; /* resumption_master_secret */
    int have_res;
    char sni[MSP_ETS_DEC_MAX_NAME + 1], alpn[MSP_ETS_DEC_MAX_NAME + 1];
    msp_buf_t cert;      /* the server's end-entity certificate DER */
    dec_issuer_t self;   /* what this connection's tickets are stored with */
    uint64_t issuer_tag; /* a resumption: the tag of the ticket the ServerHello selected */
    size_t psk_sel;      /* and its identity's index, to fetch its info again at the end of the handshake */
};

/* dec_keys.c */
const dec_suite_t *dec_suite_find(const dec_crypto_t *cr, uint16_t id, dec_suite_t *out);
const dec_key_t *dec_key_find(const msp_ets_keys_t *keys, uint16_t group, const uint8_t *share, size_t len);
int dec_key_derive(const dec_key_t *k, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t *out_len);
int dec_tickets_put(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len, uint16_t suite, const uint8_t *psk,
                    size_t psk_len);
/* The same, kept with who issued it (NULL: nobody said). */
int dec_tickets_put_from(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len, uint16_t suite, const uint8_t *psk,
                         size_t psk_len, const dec_issuer_t *from);
const dec_ticket_t *dec_tickets_get(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len);

/* dec_sched.c */
int dec_kdf_start(msp_ets_conn_t *c);
/* out = Derive-Secret(HKDF-Extract(0, 0), "derived", "") with suite id's hash: the same for every connection. */
int dec_kdf_no_psk(const dec_crypto_t *cr, uint16_t id, uint8_t *out);
int dec_extract(msp_ets_conn_t *c, const uint8_t *salt, const uint8_t *ikm, size_t ikm_len, uint8_t *out);
int dec_expand_label(msp_ets_conn_t *c, const uint8_t *secret, const char *label, const uint8_t *ctx, size_t ctx_len,
                     uint8_t *out, size_t len);
int dec_derive_secret(msp_ets_conn_t *c, const uint8_t *secret, const char *label, const uint8_t *hash, uint8_t *out);
int dec_derive_next(msp_ets_conn_t *c, uint8_t *secret); /* Derive-Secret(., "derived", "") */
int dec_transcript_hash(msp_ets_conn_t *c, uint8_t *out);
int dec_aead_set(msp_ets_conn_t *c, dec_aead_t *a, const uint8_t *secret);
/* Decrypts rec (header + body) in place; *inner / *n give the content without padding, *type the real type. */
int dec_aead_open(const dec_suite_t *s, dec_aead_t *a, uint8_t *rec, size_t len, uint8_t **inner, size_t *n,
                  uint8_t *type);

/* dec_hs.c */

/* A ServerHello or HelloRetryRequest, as far as the decryptor and the probe (probe.c) look at it; pointers into msg. */
typedef struct dec_server_hello {
    const uint8_t *random;
    uint16_t legacy_version, version, suite, group, psk; /* version: supported_versions, 0 when absent */
    const uint8_t *share;                                /* key_exchange of key_share (NULL for an HRR) */
    size_t share_len;
    int has_share, has_psk;
    int hrr; /* random is SHA-256("HelloRetryRequest"): group is the selected_group, no share */
} dec_server_hello_t;

/*
 * Parses a whole ServerHello handshake message (msg: type 2, its 3-byte length, the body; len exactly that).
 * MSP_OK (also for a TLS 1.2 ServerHello without extensions) or MSP_ALERT_DECODE_ERROR.
 */
int dec_server_hello_parse(const uint8_t *msg, size_t len, dec_server_hello_t *sh);
int dec_handshake(msp_ets_conn_t *c, int dir, const uint8_t *msg, size_t len);

/* dec_resync.c: finding the records of a direction again after a gap */
typedef struct dec_resync dec_resync_t;
/* A gap of lost bytes in dir after the handshake: starts (or extends) the search. */
void dec_resync_gap(msp_ets_conn_t *c, int dir, uint64_t lost);
/* Takes up to n bytes of dir into the search; returns how many. d->rs is NULL once a record verified. */
size_t dec_resync_feed(msp_ets_conn_t *c, int dir, const uint8_t *p, size_t n);
/* dir ended while searching. */
void dec_resync_end(msp_ets_conn_t *c, int dir);
void dec_resync_free(dec_dir_t *d);

/* dec_conn.c */
void dec_fail(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Only dir is undecryptable from now on (its own UNDECRYPTABLE event); the other goes on. */
void dec_fail_dir(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void dec_event(msp_ets_conn_t *c, msp_ets_event_t *ev);
void dec_keylog(msp_ets_conn_t *c, const char *label, const uint8_t *secret);
/*
 * Makes c as msp_ets_conn_new made it (same keys, tickets, callbacks, arg) for the next connection, keeping
 * its allocations: the passive pipeline reuses connections instead of allocating each one's buffers and
 * OpenSSL contexts again.
 */
void dec_conn_recycle(msp_ets_conn_t *c);

#endif
