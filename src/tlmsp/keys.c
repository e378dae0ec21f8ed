/*
 * Key material for the state machines (tlmsp-handshake.md 5.5-5.6,
 * 6.5-6.8, 6.10-6.11), built on the primitives of kdf.c and keymat.c.
 * ETSI TS 103 523-2 clause numbers: the write-up gives none for these, so the
 * bare section numbers below are tlmsp-handshake.md's.
 */
#include "tlmsp_keys.h"

#include <string.h>

#include <openssl/crypto.h>

#include "msp/error.h"
#include "reader.h"

static int is_endpoint(uint8_t id)
{
    return id == MSP_TLMSP_ID_CLIENT || id == MSP_TLMSP_ID_SERVER;
}

static int is_mbox(uint8_t id)
{
    return id >= MSP_TLMSP_ID_FIRST_MIDDLEBOX && id <= MSP_TLMSP_ID_LAST_MIDDLEBOX;
}

static int is_present(const uint8_t present[256], int c)
{
    return c == MSP_TLMSP_CONTEXT_CONTROL || present[c] != 0;
}

/* 1.7 and ssl/tlmsp_ctx.c: tlmsp_context_access(): write implies read; context 0 is always fully accessible. */
static uint8_t rights(const uint8_t *access, int c)
{
    if (access == NULL || c == MSP_TLMSP_CONTEXT_CONTROL) {
        return MSP_TLMSP_CAN_ALL;
    }
    uint8_t a = access[c] & MSP_TLMSP_CAN_ALL;
    return (a & MSP_TLMSP_CAN_WRITE) ? MSP_TLMSP_CAN_ALL : a;
}

static int same(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, MSP_TLMSP_CONTRIB_LEN) == 0;
}

/* The A-B key for a message from src to dst (6.5; with AES-GCM the Encryption slot, "MAC" slots unused). */
int msp_tlmsp_pair_key(const msp_tlmsp_key_block_t *kb, uint8_t src, uint8_t dst, const uint8_t **key)
{
    int known = (is_endpoint(src) || is_mbox(src)) && (is_endpoint(dst) || is_mbox(dst));
    if (kb == NULL || key == NULL || !known || src == dst || (!is_endpoint(src) && !is_endpoint(dst))) {
        return MSP_ERR_ARGUMENT;
    }
    /*
     * 6.5 table, first matching row: client -> x is A_to_B, x -> client is
     * B_to_A, server -> x is A_to_B, x -> server is B_to_A.
     */
    int a_to_b = src == MSP_TLMSP_ID_CLIENT || (dst != MSP_TLMSP_ID_CLIENT && src == MSP_TLMSP_ID_SERVER);
    *key = a_to_b ? kb->a_to_b_enc : kb->b_to_a_enc;
    return MSP_OK;
}

int msp_tlmsp_contrib_generate(msp_tlmsp_contrib_t *c, const uint8_t present[256], const uint8_t *rnd, size_t rnd_len)
{
    size_t n = 0;
    for (int id = 0; id < 256; id++) {
        n += is_present(present, id) ? 1 : 0;
    }
    if (rnd_len != MSP_TLMSP_CONTRIB_LEN + n * 2 * MSP_TLMSP_CONTRIB_LEN) {
        return MSP_ERR_ARGUMENT;
    }
    memset(c, 0, sizeof(*c));
    msp_reader_t r;
    msp_reader_init(&r, rnd, rnd_len);
    /* 6.6: synch for context 0, then reader and writer of each present context (ssl/tlmsp_ctx.c). */
    int ret = msp_read_copy(&r, c->synch, MSP_TLMSP_CONTRIB_LEN);
    for (int id = 0; ret == MSP_OK && id < 256; id++) {
        if (!is_present(present, id)) {
            continue;
        }
        c->present[id] = c->has_reader[id] = c->has_writer[id] = 1;
        ret = msp_read_copy(&r, c->reader[id], MSP_TLMSP_CONTRIB_LEN);
        if (ret == MSP_OK) {
            ret = msp_read_copy(&r, c->writer[id], MSP_TLMSP_CONTRIB_LEN);
        }
    }
    return ret;
}

/*
 * MiddleboxKeyMaterial (5.5) or, with the middlebox's own rights, KeyConfirmation (5.6): the contributions
 * filtered by "the sender's view of the target's rights".
 */
int msp_tlmsp_key_material_seal(msp_tlmsp_gcm_t *g, const uint8_t key[MSP_TLMSP_KEY_LEN], uint8_t id, uint8_t sender,
                                const uint8_t suffix[MSP_TLMSP_NONCE_SUFFIX_LEN], const msp_tlmsp_contrib_t *c,
                                const uint8_t *access, msp_buf_t *out)
{
    uint8_t acc[256];
    for (int i = 0; i < 256; i++) {
        acc[i] = rights(access, i);
    }
    uint8_t plain[MSP_TLMSP_MAX_CONTRIB_LEN];
    msp_buf_t pb;
    msp_buf_init_fixed(&pb, plain, sizeof(plain));
    int ret = msp_tlmsp_contrib_encode(c, acc, &pb);
    /* 5.5: nonce = sender id | 11 random bytes (ssl/tlmsp_enc.c: tlmsp_generate_nonce()). */
    uint8_t nonce[MSP_TLMSP_GCM_NONCE_LEN];
    nonce[0] = sender;
    memcpy(nonce + 1, suffix, MSP_TLMSP_NONCE_SUFFIX_LEN);
    if (ret == MSP_OK) {
        ret = msp_tlmsp_keymat_seal(g, key, id, nonce, plain, pb.len, out);
    }
    msp_buf_free(&pb); /* wipes plain */
    return ret;
}

/* The id byte that opens every middlebox message body (5.1-5.7). */
static int first_byte(const uint8_t *body, size_t len, uint8_t *id)
{
    msp_reader_t r;
    msp_reader_init(&r, body, len);
    return msp_read_u8(&r, id);
}

int msp_tlmsp_key_material_id(const uint8_t *body, size_t len, uint8_t *id)
{
    return first_byte(body, len, id);
}

/* Every listed context must be one of the session's (the reference: internal_error, ssl/tlmsp_msg.c). */
static int known_contexts(const msp_tlmsp_contrib_t *c, const uint8_t present[256])
{
    for (int id = 0; id < 256; id++) {
        if (c->present[id] && !is_present(present, id)) {
            return MSP_ALERT_UNKNOWN_CONTEXT;
        }
    }
    return MSP_OK;
}

/*
 * 5.5 receiver: "first byte must equal its own id", the body "shorter than 33698" bytes, "each context id must be
 * present".
 */
int msp_tlmsp_key_material_open(msp_tlmsp_gcm_t *g, const uint8_t key[MSP_TLMSP_KEY_LEN], const uint8_t *body,
                                size_t len, uint8_t expect_id, const uint8_t present[256], msp_tlmsp_contrib_t *c)
{
    memset(c, 0, sizeof(*c));
    /* equivalent mutant: '>' -> '>=': len >= 33697 fails the third test too (29 + MAX_CONTRIB_LEN is 9005) */
    if (len <= MSP_TLMSP_KEYMAT_OVERHEAD || len > MSP_TLMSP_KEYMAT_MAX_BODY ||
        len - MSP_TLMSP_KEYMAT_OVERHEAD > MSP_TLMSP_MAX_CONTRIB_LEN) {
        return MSP_ALERT_DECODE_ERROR;
    }
    uint8_t id = 0;
    int ret = msp_tlmsp_key_material_id(body, len, &id);
    if (ret == MSP_OK && id != expect_id) {
        ret = MSP_ALERT_ILLEGAL_PARAMETER;
    }
    uint8_t plain[MSP_TLMSP_MAX_CONTRIB_LEN];
    size_t n = 0;
    if (ret == MSP_OK) {
        ret = msp_tlmsp_keymat_open(g, key, body, len, &id, plain, &n);
    }
    if (ret == MSP_OK) {
        ret = msp_tlmsp_contrib_decode(plain, n, c);
    }
    if (ret == MSP_OK) {
        ret = known_contexts(c, present);
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    if (ret != MSP_OK) {
        OPENSSL_cleanse(c, sizeof(*c));
    }
    return ret;
}

/* 6.7 for one context and one middlebox (ssl/tlmsp_msg.c: tlmsp_process_middlebox_key_material()). */
static int confirms(const msp_tlmsp_contrib_t *peer, const msp_tlmsp_contrib_t *conf, uint8_t a, int c)
{
    if (conf == NULL || !conf->present[c]) {
        return 0;
    }
    if (c == MSP_TLMSP_CONTEXT_CONTROL && !same(conf->synch, peer->synch)) {
        return 0;
    }
    if ((a & MSP_TLMSP_CAN_READ) && (!conf->has_reader[c] || !same(conf->reader[c], peer->reader[c]))) {
        return 0;
    }
    return !(a & MSP_TLMSP_CAN_WRITE) || (conf->has_writer[c] && same(conf->writer[c], peer->writer[c]));
}

/*
 * Key-confirmation check (6.7): for every present context and every middlebox "a confirmation entry for (m, c)
 * must exist" and the echoed synch/reader/writer must equal; "any failure -> fatal alert 179".
 */
int msp_tlmsp_key_confirmation_check(const uint8_t present[256], const msp_tlmsp_contrib_t *peer,
                                     const msp_tlmsp_contrib_t *const *confirm, const uint8_t (*access)[256],
                                     size_t nmbox)
{
    if (present == NULL || peer == NULL || nmbox > MSP_TLMSP_MAX_MIDDLEBOXES ||
        (nmbox > 0 && (confirm == NULL || access == NULL))) {
        return MSP_ERR_ARGUMENT;
    }
    /*
     * The loop runs over the session's contexts, as the reference's does, so
     * a context the peer left out is a fault rather than skipped.
     */
    for (int c = 0; c < 256; c++) {
        if (!is_present(present, c)) {
            continue;
        }
        if (!peer->present[c] || !peer->has_reader[c] || !peer->has_writer[c]) {
            return MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT;
        }
        for (size_t i = 0; i < nmbox; i++) {
            if (!confirms(peer, confirm[i], rights(access[i], c), c)) {
                return MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT;
            }
        }
    }
    return MSP_OK;
}

int msp_tlmsp_derive_context_keys(uint8_t id, const msp_tlmsp_contrib_t *client, const msp_tlmsp_contrib_t *server,
                                  const msp_tlmsp_randoms_t *r, msp_tlmsp_context_keys_t *keys)
{
    /* 6.8: the secret is server | client; kdf.c takes the server's part first. */
    return msp_tlmsp_context_keys(id, server->reader[id], client->reader[id], server->writer[id], client->writer[id], r,
                                  keys);
}

/* 6.8: synch keys from S_s | C_s over seed(0). */
int msp_tlmsp_derive_synch_keys(const msp_tlmsp_contrib_t *client, const msp_tlmsp_contrib_t *server,
                                const msp_tlmsp_randoms_t *r, uint8_t client_synch[MSP_TLMSP_KEY_LEN],
                                uint8_t server_synch[MSP_TLMSP_KEY_LEN])
{
    return msp_tlmsp_synch_keys(server->synch, client->synch, r, client_synch, server_synch);
}

/* Lcontrib(m) (6.11): per present context, [C_s | S_s], C_r | S_r if m may read, C_w | S_w if m may write. */
int msp_tlmsp_lcontrib(const uint8_t present[256], const msp_tlmsp_contrib_t *client, const msp_tlmsp_contrib_t *server,
                       const uint8_t access[256], msp_buf_t *out)
{
    /* ssl/tlmsp_fin.c: tlmsp_finish_construct_Lcontrib(): client first, unlike the key secrets of 6.8. */
    for (int c = 0; c < 256; c++) {
        if (!is_present(present, c)) {
            continue;
        }
        uint8_t a = rights(access, c);
        if (c == MSP_TLMSP_CONTEXT_CONTROL) {
            msp_buf_put(out, client->synch, MSP_TLMSP_CONTRIB_LEN);
            msp_buf_put(out, server->synch, MSP_TLMSP_CONTRIB_LEN);
        }
        if (a & MSP_TLMSP_CAN_READ) {
            msp_buf_put(out, client->reader[c], MSP_TLMSP_CONTRIB_LEN);
            msp_buf_put(out, server->reader[c], MSP_TLMSP_CONTRIB_LEN);
        }
        if (a & MSP_TLMSP_CAN_WRITE) {
            msp_buf_put(out, client->writer[c], MSP_TLMSP_CONTRIB_LEN);
            msp_buf_put(out, server->writer[c], MSP_TLMSP_CONTRIB_LEN);
        }
    }
    return msp_buf_error(out);
}

/* The target id of a KeyMaterial is an endpoint (an empty body counts as not: ssl/tlmsp_fin.c). */
static int to_endpoint(const uint8_t *body, size_t len)
{
    uint8_t id;
    return first_byte(body, len, &id) == MSP_OK && is_endpoint(id);
}

/*
 * Endpoint Finished transcript (6.10): omits every KeyConfirmation and MiddleboxFinished and every KeyMaterial
 * not addressed to an endpoint (ssl/tlmsp_fin.c: tlmsp_finish_endpoint_exclude()).
 */
int msp_tlmsp_endpoint_transcript_includes(uint8_t type, const uint8_t *body, size_t len)
{
    switch (type) {
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION:
    case MSP_TLMSP_HT_MIDDLEBOX_FINISHED:
        return 0;
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL:
        return to_endpoint(body, len);
    default:
        return 1;
    }
}

/*
 * T_m, the MiddleboxFinished transcript (6.11 inclusion rules): only m's own MiddleboxHello, Cert and HelloDone,
 * KeyMaterial only to an endpoint (ssl/tlmsp_fin.c: tlmsp_finish_append()).
 */
int msp_tlmsp_mbox_transcript_includes(uint8_t type, const uint8_t *body, size_t len, uint8_t mbox)
{
    uint8_t id;
    switch (type) {
    case MSP_TLMSP_HT_CLIENT_HELLO:
    case MSP_TLMSP_HT_SERVER_HELLO:
    case MSP_TLMSP_HT_CERTIFICATE:
    case MSP_TLMSP_HT_SERVER_KEY_EXCHANGE:
    case MSP_TLMSP_HT_SERVER_HELLO_DONE:
    case MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE:
    case MSP_TLMSP_HT_FINISHED:
        return 1;
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL:
        return to_endpoint(body, len);
    case MSP_TLMSP_HT_MIDDLEBOX_HELLO:
    case MSP_TLMSP_HT_MIDDLEBOX_CERT:
    case MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE:
        return first_byte(body, len, &id) == MSP_OK && id == mbox;
    default:
        return 0;
    }
}
