/*
 * The passive TLS 1.3 decryptor of ETS (ets.md 7), sans-IO.
 *
 * One msp_ets_conn_t per TCP connection is fed the reassembled bytes of each
 * direction (0 = client to server, 1 = server to client) in any interleaving
 * and any split. With the static server private keys (msp_ets_keys_t) it
 * reproduces every TLS 1.3 secret, reports them through the keylog callback
 * (NSS labels) and hands out the decrypted application data and alerts.
 * PSKs learned from NewSessionTickets go to a bounded msp_ets_tickets_t that
 * several connections share, so that later resumptions decrypt as well.
 *
 * A connection that cannot be decrypted is reported once, by an
 * MSP_ETS_EV_UNDECRYPTABLE event with a reason, and then only consumed.
 * The one exception is a search for records after a gap that gives up
 * (msp_ets_conn_gap): its event stops only that direction, the other goes
 * on (and may later report its own).
 * Callbacks run inside feed/gap/end; they must not free the connection.
 * Neither object is safe for concurrent use; keys may be shared by the
 * connections of one thread (a key set keeps scratch state for derivations).
 */
#ifndef MSP_ETS_DEC_H
#define MSP_ETS_DEC_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/error.h"
#include "msp/ets.h"

#define MSP_ETS_DEC_MAX_KEYS 64               /* static keys in one msp_ets_keys_t */
#define MSP_ETS_DEC_MAX_SHARE 133             /* key_share bytes (P-521 would be 133) */
#define MSP_ETS_DEC_MAX_RECORD (16384 + 256)  /* TLSCiphertext.length, RFC 8446 5.2 */
#define MSP_ETS_DEC_MAX_PENDING (256 * 1024)  /* bytes held per direction while waiting for keys */
#define MSP_ETS_DEC_MAX_HS_MSG (64 * 1024)    /* handshake message, except Certificate */
#define MSP_ETS_DEC_MAX_CERT_MSG (128 * 1024) /* Certificate message (chains are larger) */
#define MSP_ETS_DEC_MAX_SHARES 16             /* key_share entries of a ClientHello looked at */
#define MSP_ETS_DEC_MAX_PSK_IDS 16            /* pre_shared_key identities looked at */
#define MSP_ETS_DEC_MAX_TICKET 4096           /* ticket bytes kept in the store (larger ones are not stored) */
#define MSP_ETS_DEC_MAX_NAME 255              /* SNI host name and ALPN protocol kept */
#define MSP_ETS_DEC_MAX_TEXT 256              /* event text */
#define MSP_ETS_DEC_MAX_ISSUER_INFO 1024      /* bytes of issuer info kept with each ticket (msp_ets_conn_set_issuer) */
/*
 * The search for records after a gap (docs/ets.md "Loss recovery"), per gap:
 * header candidates tried, sequence numbers tried per candidate and key,
 * AEAD input bytes spent on trials, captured bytes looked through.
 */
#define MSP_ETS_DEC_RESYNC_CANDIDATES 64
#define MSP_ETS_DEC_RESYNC_SEQS 64
#define MSP_ETS_DEC_RESYNC_WORK (4u << 20)
#define MSP_ETS_DEC_RESYNC_SCAN (1u << 20)

/** Static private keys, looked up by the exact ServerHello key_share bytes. */
typedef struct msp_ets_keys msp_ets_keys_t;

/**
 * An empty key set, with the digests, ciphers and HMAC it derives with
 * fetched once. *out gets it; MSP_ERR_NO_MEMORY (*out NULL) on an allocation
 * or OpenSSL failure. Free with msp_ets_keys_free.
 */
MSP_API int msp_ets_keys_new(msp_ets_keys_t **out);
/** Adds an X25519 or P-256 private key (up-referenced); MSP_ERR_ARGUMENT for another kind, MSP_ERR_LIMIT when full. */
MSP_API int msp_ets_keys_add(msp_ets_keys_t *keys, EVP_PKEY *priv, msp_error_t *err);
MSP_API size_t msp_ets_keys_count(const msp_ets_keys_t *keys);
/** NULL is ignored. */
MSP_API void msp_ets_keys_free(msp_ets_keys_t *keys);

/** PSKs learned from NewSessionTickets, keyed by the ticket bytes; the least recently used goes when full. */
typedef struct msp_ets_tickets msp_ets_tickets_t;

/**
 * A store of at most max PSKs. *out gets it; MSP_ERR_ARGUMENT for max 0 or
 * above 2^24, MSP_ERR_NO_MEMORY; *out is NULL on failure.
 */
MSP_API int msp_ets_tickets_new(size_t max, msp_ets_tickets_t **out);
MSP_API size_t msp_ets_tickets_count(const msp_ets_tickets_t *t);
/** NULL is ignored. */
MSP_API void msp_ets_tickets_free(msp_ets_tickets_t *t);

typedef enum msp_ets_event_kind {
    MSP_ETS_EV_HANDSHAKE = 1, /* the client Finished was seen: the connection decrypts */
    MSP_ETS_EV_KEY_UPDATE,    /* dir moved to its next application traffic secret */
    MSP_ETS_EV_TICKET,        /* a NewSessionTicket's PSK went into the ticket store */
    MSP_ETS_EV_ALERT,         /* an alert (plaintext or decrypted) */
    MSP_ETS_EV_UNDECRYPTABLE, /* reported once; the connection is only consumed from now on */
    MSP_ETS_EV_GAP,           /* dir lost bytes after the handshake and found its records again (or ended) */
} msp_ets_event_kind_t;

typedef enum msp_ets_reason {
    MSP_ETS_R_NONE = 0,
    MSP_ETS_R_NO_STATIC_KEY,   /* no static key matches the ServerHello key_share */
    MSP_ETS_R_PSK_UNKNOWN,     /* psk_dhe_ke resumption with a PSK from a connection not seen */
    MSP_ETS_R_PSK_KE_UNKNOWN,  /* psk_ke resumption (no key_share) with an unknown ticket */
    MSP_ETS_R_NOT_TLS13,       /* the ServerHello negotiated another version */
    MSP_ETS_R_GAP,             /* bytes lost in reassembly */
    MSP_ETS_R_AEAD,            /* a record does not authenticate */
    MSP_ETS_R_FINISHED,        /* the server Finished MAC does not verify: derived keys are wrong */
    MSP_ETS_R_MALFORMED,       /* record or handshake message breaks RFC 8446 */
    MSP_ETS_R_TRUNCATED,       /* the connection ended inside the handshake */
    MSP_ETS_R_PENDING_LIMIT,   /* more than MSP_ETS_DEC_MAX_PENDING bytes waited for keys */
    MSP_ETS_R_UNSUPPORTED,     /* suite or group we cannot handle */
    MSP_ETS_R_INTERNAL,        /* allocation or OpenSSL failure */
    MSP_ETS_R_MIDSTREAM,       /* the capture began mid-connection: neither its SYN nor its ClientHello was seen
                                  (set by the passive pipeline, ets_passive.h; the decryptor alone cannot tell) */
    MSP_ETS_R_KEY_UPDATE_LOST, /* a gap hid a KeyUpdate: records are found again, no key of ours opens them */
} msp_ets_reason_t;

/** A static name for reason ("no_static_key", ...). */
MSP_API const char *msp_ets_reason_name(msp_ets_reason_t reason);

typedef struct msp_ets_event {
    msp_ets_event_kind_t kind;
    int dir;                      /* the direction it concerns, -1 for the connection */
    msp_ets_reason_t reason;      /* UNDECRYPTABLE */
    const char *text;             /* one line, always set */
    const uint8_t *client_random; /* 32 bytes, NULL before the ClientHello */

    /* HANDSHAKE */
    uint16_t suite, group;  /* group 0 for psk_ke */
    const char *sni, *alpn; /* "" when absent */
    int resumed, early_offered, early_accepted, hrr;
    uint8_t fingerprint[MSP_ETS_FINGERPRINT_LEN]; /* of the ServerHello key_share (zero for psk_ke) */
    const uint8_t *cert;                          /* DER of the server's end-entity certificate (NULL on resumption) */
    size_t cert_len;

    /* KEY_UPDATE: generation (1 = first update) */
    unsigned generation;
    /* TICKET */
    uint32_t lifetime, max_early_data;
    size_t ticket_len;
    /* ALERT */
    uint8_t alert_level, alert_desc;

    /*
     * HANDSHAKE of a resumption: the tag and info of the connection that
     * issued the ticket (msp_ets_conn_set_issuer); issuer_tag 0 when it was
     * given none, issuer_info NULL when it was given none or the ticket left
     * the store during this handshake. Valid during the event only.
     */
    uint64_t issuer_tag;
    const uint8_t *issuer_info;
    size_t issuer_info_len;
    /* capture time (microseconds since 1970) of the packet that brought it, or at a flow's end of its last packet:
     * set by the passive pipeline (ets_passive.h); 0 from a bare msp_ets_conn_t, which knows no time */
    uint64_t ts_us;
    /*
     * GAP, in dir's TCP stream (byte 0: its first byte): the bytes
     * [gap_from - gap_partial, gap_from + gap_lost + gap_skipped) were not
     * decrypted. gap_lost of them were lost, in gap_count gaps, all within
     * [gap_from, gap_to); gap_partial came before gap_from (the start of the
     * record the first gap cut); gap_skipped were captured after gap_from
     * but belong to no record that authenticates. records_lost records were
     * not decrypted: exact unless records_exact is 0 (after a KeyUpdate found
     * by trial the records before it are not counted: a lower bound; also
     * when the stream ended). recovered: 1 when a record after the gap
     * authenticated and decryption goes on; 0 when the stream ended first
     * (nothing after the gap to decrypt).
     */
    uint64_t gap_from, gap_to, gap_lost, gap_partial, gap_skipped, records_lost;
    unsigned gap_count;
    int records_exact, recovered;
} msp_ets_event_t;

typedef struct msp_ets_conn_cb {
    /* content_type 23 (application data) or 21 (alert, 2 bytes) */
    void (*plaintext)(void *arg, int dir, uint8_t content_type, const uint8_t *p, size_t n);
    void (*event)(void *arg, const msp_ets_event_t *ev);
    /* NSS key log label, e.g. "CLIENT_HANDSHAKE_TRAFFIC_SECRET" */
    void (*keylog)(void *arg, const char *label, const uint8_t client_random[32], const uint8_t *secret, size_t len);
} msp_ets_conn_cb_t;

typedef struct msp_ets_conn msp_ets_conn_t;

/**
 * A connection; *out gets it. keys must outlive the connection; tickets may
 * be NULL (resumptions are then undecryptable, no tickets kept); cb may be
 * NULL, and so may any of its callbacks. MSP_ERR_ARGUMENT for keys NULL,
 * MSP_ERR_NO_MEMORY; *out is NULL on failure.
 */
MSP_API int msp_ets_conn_new(const msp_ets_keys_t *keys, msp_ets_tickets_t *tickets, const msp_ets_conn_cb_t *cb,
                             void *arg, msp_ets_conn_t **out);
/** MSP_OK, or MSP_ERR_ARGUMENT / MSP_ERR_NO_MEMORY; undecryptable input is an event, not an error. */
MSP_API int msp_ets_conn_feed(msp_ets_conn_t *c, int dir, const uint8_t *p, size_t n);
/**
 * lost bytes of dir could not be reassembled. Inside the handshake the
 * connection becomes undecryptable (reason gap). After it, dir searches for
 * its records again (docs/ets.md "Loss recovery"): the first record header after
 * the gap whose AEAD tag verifies at a sequence number near the one the lost
 * bytes suggest fixes framing and sequence number, an MSP_ETS_EV_GAP event
 * says what was lost, and decryption goes on; the other direction is not
 * held up meanwhile. A search that exceeds the MSP_ETS_DEC_RESYNC_* bounds
 * makes the rest of that direction undecryptable (reason gap, or
 * key_update_in_gap when records are framed but neither the current key nor
 * the next generation's opens them); the other direction goes on.
 */
MSP_API int msp_ets_conn_gap(msp_ets_conn_t *c, int dir, uint64_t lost);
/** Both directions ended: reports a handshake cut short. */
MSP_API int msp_ets_conn_end(msp_ets_conn_t *c);
/**
 * Says who this connection is, for the resumptions of the tickets it issues:
 * every PSK it stores from now on keeps tag (nonzero; 0: untagged) and a
 * copy of info (at most MSP_ETS_DEC_MAX_ISSUER_INFO bytes; longer info is
 * not kept, the tag is), and a resumption with one of those PSKs reports
 * them in its HANDSHAKE event (issuer_tag, issuer_info). The decryptor does
 * not look inside; the passive pipeline passes its flow id and the issuing
 * handshake's visibility verdict. info must stay valid until the next call
 * or msp_ets_conn_free.
 */
MSP_API void msp_ets_conn_set_issuer(msp_ets_conn_t *c, uint64_t tag, const uint8_t *info, size_t len);
/** Nonzero once the connection as a whole is undecryptable (both directions, or any failure but a gap search's). */
MSP_API int msp_ets_conn_failed(const msp_ets_conn_t *c);
/** NULL is ignored. */
MSP_API void msp_ets_conn_free(msp_ets_conn_t *c);
/** Records of dir not decrypted because of gaps so far (the sum of its GAP events' records_lost); 0 for a bad dir. */
MSP_API uint64_t msp_ets_conn_records_lost(const msp_ets_conn_t *c, int dir);

#endif
