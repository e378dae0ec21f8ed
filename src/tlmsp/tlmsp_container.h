/*
 * TLMSP containers and their cryptography as the ETSI reference puts them
 * on the wire (tlmsp-records.md 3-5, AES-128-GCM suites): parsing a
 * container into views of its fields, the fragment encryption, the writer
 * MAC, the forwarding MAC's reader-check and check MACs, and the
 * context-0 record protection. Sans-IO and allocation-free per record:
 * a msp_tlmsp_gcm_t owns one EVP context set up once; each call changes
 * only key and nonce, and MAC inputs are fed in pieces, never copied.
 */
#ifndef MSP_TLMSP_CONTAINER_H
#define MSP_TLMSP_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "reader.h"
#include "msp/tlmsp.h"

#define MSP_TLMSP_MAC_LEN 16
#define MSP_TLMSP_FMAC_LEN 47          /* id | order | flags | readerCheck(16) | nonce(12) | check(16) */
#define MSP_TLMSP_FRAGMENT_OVERHEAD 28 /* nonce(12) + tag(16) */
#define MSP_TLMSP_MAX_FMACS 256        /* the mandatory one and up to 255 additional */

/** One forwarding MAC (4.6), viewed in place. */
typedef struct msp_tlmsp_fmac {
    uint8_t id;
    uint8_t order;
    uint8_t flags;
    const uint8_t *reader_check; /* 16 bytes: outboundReaderCheckMAC */
    const uint8_t *nonce;        /* 12 bytes */
    const uint8_t *check;        /* 16 bytes: checkMAC */
} msp_tlmsp_fmac_t;

/** A container (4.1), viewed in place: the pointers are into the parsed record. */
typedef struct msp_tlmsp_container {
    uint8_t context;
    uint16_t flags;
    const uint8_t *m_info; /* verbatim m_id | n | n x (source | count), NULL when absent */
    size_t m_info_len;
    const uint8_t *fragment; /* nonce | ciphertext | tag; or the 2-byte alert of an unprotected container */
    size_t fragment_len;
    const uint8_t *writer_mac;                   /* 16 bytes; NULL for an unprotected alert container (4.7) */
    size_t nfmacs;                               /* 0 for an unprotected container, else 1 + nAF */
    msp_tlmsp_fmac_t fmacs[MSP_TLMSP_MAX_FMACS]; /* last, so a parse need not clear all of it */
} msp_tlmsp_container_t;

/**
 * Reads one container from r. protected_ = 0 reads the unprotected alert
 * form of 4.7 (before keys). Lengths and counts are checked against what
 * is left in r; anything short or inconsistent is MSP_ALERT_DECODE_ERROR and
 * r is left where it was.
 */
int msp_tlmsp_container_parse(msp_reader_t *r, int protected_, msp_tlmsp_container_t *c);

/** The fields of the common MAC input (5.4) other than L and the fragment. */
typedef struct msp_tlmsp_mac_in {
    uint8_t type; /* record type: 23 data, 21 alert */
    uint32_t sid;
    uint64_t seq; /* the counter of the entity the MAC belongs to (5.4-5.8) */
    uint16_t flags;
    const uint8_t *m_info;
    size_t m_info_len;
} msp_tlmsp_mac_in_t;

#define MSP_TLMSP_GCM_KEY_SLOTS 8 /* a container uses 4 keys (reader, writer, synch, A-B); room for both directions */

/*
 * An AES-128-GCM engine owned by a connection. Each key gets its own
 * initialised context, kept in a small cache, so a record changes only the
 * IV: re-expanding the key on every GMAC costs more than a small container's
 * data (performance.md 2.3).
 */
typedef struct msp_tlmsp_gcm_slot {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[16];
    int used;
} msp_tlmsp_gcm_slot_t;

#define MSP_TLMSP_HASH_BATCH 32    /* reader-check hashes computed together (multi-buffer SHA-256) */
#define MSP_TLMSP_HASH_BATCH_MIN 8 /* fewer go one by one: the lanes would mostly idle */

typedef struct msp_tlmsp_gcm {
    msp_tlmsp_gcm_slot_t slot[MSP_TLMSP_GCM_KEY_SLOTS];
    unsigned next;       /* the slot a new key replaces (round robin) */
    EVP_CIPHER_CTX *ctx; /* for callers that set the key themselves (key material) */
    EVP_MD_CTX *md;
    EVP_MD *sha256;  /* fetched once: an implicit fetch per digest costs more than hashing a small fragment */
    void *mb;        /* libipsec-mb manager for batches of hashes, made at the first batch */
    uint8_t *mb_buf; /* contiguous copies of the batch's inputs (the library hashes one buffer per job) */
} msp_tlmsp_gcm_t;

int msp_tlmsp_gcm_init(msp_tlmsp_gcm_t *g);
void msp_tlmsp_gcm_free(msp_tlmsp_gcm_t *g);

/**
 * Fragment encryption (5.5): out = nonce | ciphertext | tag, with AAD =
 * mac_input(in, L = len). out must have len + 28 bytes; len + 28 <= 16383.
 */
int msp_tlmsp_fragment_seal(msp_tlmsp_gcm_t *g, const uint8_t key[16], const msp_tlmsp_mac_in_t *in,
                            const uint8_t nonce[12], const uint8_t *plain, size_t len, uint8_t *out);

/** Decrypts a fragment into plain (fragment_len - 28 bytes); a bad tag is MSP_ALERT_BAD_RECORD_MAC. */
int msp_tlmsp_fragment_open(msp_tlmsp_gcm_t *g, const uint8_t key[16], const msp_tlmsp_mac_in_t *in,
                            const uint8_t *fragment, size_t fragment_len, uint8_t *plain);

/** The writer MAC (5.6): GMAC(writer key, fragment nonce, mac_input(in, L, fragment)). */
int msp_tlmsp_writer_mac(msp_tlmsp_gcm_t *g, const uint8_t key[16], const msp_tlmsp_mac_in_t *in,
                         const uint8_t *fragment, size_t fragment_len, uint8_t out[16]);

/** The outboundReaderCheckMAC (5.7): GMAC(synch key, fm nonce, SHA-256(mac_input(in, L, fragment))). */
int msp_tlmsp_reader_check_mac(msp_tlmsp_gcm_t *g, const uint8_t synch_key[16], const msp_tlmsp_mac_in_t *in,
                               const uint8_t *fragment, size_t fragment_len, const uint8_t nonce[12], uint8_t out[16]);

/**
 * The checkMAC (5.8) of fm: GMAC(A-B key, fm nonce, input) where input
 * holds fm's id, order, flags, the inbound reader-check MAC (the one of
 * order - 1; required iff fm->order != 0) and fm's own reader-check MAC.
 */
/**
 * The reader-check MAC in its two steps (5.7): the SHA-256 of the MAC input
 * and fragment, then the GMAC of that hash; msp_tlmsp_reader_check_mac is
 * both. msp_tlmsp_reader_check_hashes computes n (<= MSP_TLMSP_HASH_BATCH)
 * hashes at once with libipsec-mb's multi-buffer SHA-256 when n is at least
 * MSP_TLMSP_HASH_BATCH_MIN (a middlebox hashes every fragment twice, and
 * SHA-256 is the slowest step of the data path, performance.md 2.7): the
 * same results, faster.
 */
int msp_tlmsp_reader_check_hash(msp_tlmsp_gcm_t *g, const msp_tlmsp_mac_in_t *in, const uint8_t *fragment,
                                size_t fragment_len, uint8_t hash[32]);
int msp_tlmsp_reader_check_hashes(msp_tlmsp_gcm_t *g, size_t n, const msp_tlmsp_mac_in_t *in,
                                  const uint8_t *const *fragment, const size_t *fragment_len, uint8_t (*hash)[32]);
int msp_tlmsp_reader_check_gmac(msp_tlmsp_gcm_t *g, const uint8_t synch_key[16], const uint8_t nonce[12],
                                const uint8_t hash[32], uint8_t out[16]);

/** Internal: the reader-check input of 5.7 (mac_input with L and the fragment) in one buffer; returns its length. */
size_t msp_tlmsp_mac_input_flat(const msp_tlmsp_mac_in_t *in, const uint8_t *fragment, size_t fragment_len,
                                uint8_t *out);

/** Internal: frees the batch manager (msp_tlmsp_gcm_free calls it). */
void msp_tlmsp_sha_mb_free(msp_tlmsp_gcm_t *g);

int msp_tlmsp_check_mac(msp_tlmsp_gcm_t *g, const uint8_t ab_key[16], const msp_tlmsp_mac_in_t *in,
                        const msp_tlmsp_fmac_t *fm, const uint8_t *inbound, uint8_t out[16]);

/**
 * Verifies a MAC in constant time: MSP_OK, or fail_alert (e.g.
 * MSP_ALERT_BAD_WRITER_MAC, MSP_ALERT_BAD_READER_MAC) when they differ.
 */
int msp_tlmsp_mac_verify(const uint8_t got[16], const uint8_t want[16], int fail_alert);

/**
 * Context-0 record protection (3): out = nonce | ciphertext | tag with
 * AAD = seq(8) | type | 0x0303 | len(2) | sid(4). open writes len - 28
 * bytes; a bad tag is MSP_ALERT_BAD_RECORD_MAC.
 */
int msp_tlmsp_record0_seal(msp_tlmsp_gcm_t *g, const uint8_t key[16], uint64_t seq, uint8_t type, uint32_t sid,
                           const uint8_t nonce[12], const uint8_t *plain, size_t len, uint8_t *out);
int msp_tlmsp_record0_open(msp_tlmsp_gcm_t *g, const uint8_t key[16], uint64_t seq, uint8_t type, uint32_t sid,
                           const uint8_t *payload, size_t len, uint8_t *plain);

#endif
