/*
 * The TLMSP key schedule of the ETSI reference (tlmsp-handshake.md 2 and
 * 6): its PRF, the ECDHE premaster secrets, the IDList hash, the pairwise
 * master secrets and key blocks, the context keys, and Finished
 * verify_data. Pure functions: inputs in, bytes out, no state, no
 * randomness.
 */
#ifndef MSP_TLMSP_KDF_H
#define MSP_TLMSP_KDF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define MSP_TLMSP_RANDOM_LEN 32
#define MSP_TLMSP_HASH_LEN 32 /* SHA-256, the PRF hash of every suite the reference accepts */
#define MSP_TLMSP_MASTER_LEN 48
#define MSP_TLMSP_VERIFY_LEN 12
#define MSP_TLMSP_MAX_PREMASTER 512  /* ECDHE gives 32 (X25519, P-256); room for DHE */
#define MSP_TLMSP_MAX_PRF_PIECES 514 /* tlmsp-handshake.md 1.10: enough for 251 middleboxes */

/** A borrowed byte range. */
typedef struct msp_iov {
    const uint8_t *base;
    size_t len;
} msp_iov_t;

/**
 * The TLMSP PRF (tlmsp-handshake.md 2): P_SHA256 with the reference's A()
 * chain, O1 = HMAC(secret, HMAC(secret, S) | S), O(i+1) = HMAC(secret,
 * O(i) | S), S = label | seed pieces. Its first 32 bytes equal the TLS 1.2
 * PRF, the rest differ. Writes out_len bytes; MSP_OK or MSP_ERR_ARGUMENT
 * (more than MSP_TLMSP_MAX_PRF_PIECES pieces) or MSP_ERR_NO_MEMORY.
 */
int msp_tlmsp_prf(const uint8_t *secret, size_t secret_len, const char *label, const msp_iov_t *seed, size_t nseed,
                  uint8_t *out, size_t out_len);

/**
 * An ECDHE premaster secret (6.2): own is our private key, peer the
 * other side's public value as sent on the wire (X25519: 32 raw bytes;
 * P-256: the uncompressed point). *out_len receives the secret's length.
 * MSP_ALERT_ILLEGAL_PARAMETER when the peer value is not a valid key of
 * own's group.
 */
int msp_tlmsp_premaster(EVP_PKEY *own, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t *out_len);

/** idlist_hash (6.3): SHA-256 over the DER certificates in the order given (absent ones left out). */
int msp_tlmsp_idlist_hash(const msp_iov_t *certs, size_t ncerts, uint8_t out[MSP_TLMSP_HASH_LEN]);

/**
 * master(A,B) (6.4) = PRF(premaster, "master secret", idlist_hash |
 * a_random | b_random)[0:48].
 */
int msp_tlmsp_master_secret(const uint8_t *premaster, size_t premaster_len,
                            const uint8_t idlist_hash[MSP_TLMSP_HASH_LEN], const uint8_t a_random[MSP_TLMSP_RANDOM_LEN],
                            const uint8_t b_random[MSP_TLMSP_RANDOM_LEN], uint8_t out[MSP_TLMSP_MASTER_LEN]);

/** A pairwise key block kb(A,B) (6.5), A the endpoint (the client for the client-server pair). */
typedef struct msp_tlmsp_key_block {
    uint8_t b_to_a_mac[16];
    uint8_t a_to_b_mac[16];
    uint8_t b_to_a_enc[16];
    uint8_t a_to_b_enc[16];
} msp_tlmsp_key_block_t;

/** kb(A,B) = PRF(master, "key expansion", a_random | b_random)[0:64] (6.5; a first, unlike TLS). */
int msp_tlmsp_key_block(const uint8_t master[MSP_TLMSP_MASTER_LEN], const uint8_t a_random[MSP_TLMSP_RANDOM_LEN],
                        const uint8_t b_random[MSP_TLMSP_RANDOM_LEN], msp_tlmsp_key_block_t *kb);

/** The randoms of the session, for the context-key seed (6.8). */
typedef struct msp_tlmsp_randoms {
    const uint8_t *client;                                 /* 32 bytes */
    const uint8_t *server;                                 /* 32 bytes */
    const uint8_t (*mbox_to_server)[MSP_TLMSP_RANDOM_LEN]; /* per middlebox, list order m1..mN */
    const uint8_t (*mbox_to_client)[MSP_TLMSP_RANDOM_LEN];
    size_t nmbox; /* at most 251 */
} msp_tlmsp_randoms_t;

/** One context's keys (6.8); client_* protect client->server, server_* server->client. */
typedef struct msp_tlmsp_context_keys {
    uint8_t client_reader_mac[16];
    uint8_t client_reader_enc[16];
    uint8_t server_reader_mac[16];
    uint8_t server_reader_enc[16];
    uint8_t client_writer_mac[16];
    uint8_t server_writer_mac[16];
} msp_tlmsp_context_keys_t;

/**
 * The reader and writer keys of context id (6.8) from the server's and the
 * client's 16-byte contributions (server first, as the reference does).
 */
int msp_tlmsp_context_keys(uint8_t id, const uint8_t s_reader[16], const uint8_t c_reader[16],
                           const uint8_t s_writer[16], const uint8_t c_writer[16], const msp_tlmsp_randoms_t *r,
                           msp_tlmsp_context_keys_t *keys);

/** The synch keys (6.8): [0:16] client_synch_mac_key, [16:32] server_synch_mac_key. */
int msp_tlmsp_synch_keys(const uint8_t s_synch[16], const uint8_t c_synch[16], const msp_tlmsp_randoms_t *r,
                         uint8_t client_synch[16], uint8_t server_synch[16]);

/**
 * verify_data = PRF(master, label, transcript_hash)[0:12]: the endpoint
 * Finished (6.10, labels "client finished" / "server finished"; the stock
 * TLS PRF gives the same 12 bytes) and the MiddleboxFinished (6.11,
 * "client-middlebox finished", "middlebox-server finished",
 * "server-middlebox finished", "middlebox-client finished").
 */
int msp_tlmsp_verify_data(const uint8_t master[MSP_TLMSP_MASTER_LEN], const char *label,
                          const uint8_t transcript_hash[MSP_TLMSP_HASH_LEN], uint8_t out[MSP_TLMSP_VERIFY_LEN]);

#endif
