/*
 * The TLMSP key schedule of ETSI TS 103 523-2 as the reference computes it. The write-up gives no clause
 * numbers of the standard for it; the bare section numbers below are tlmsp-handshake.md's (2, 6).
 */
#include "tlmsp_kdf.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "msp/error.h"
#include "msp/tlmsp.h"

/* One HMAC-SHA256 over prefix | label | seed pieces (prefix may be empty). */
static int hmac_pieces(EVP_MAC_CTX *proto, const uint8_t *prefix, size_t prefix_len, const char *label,
                       const msp_iov_t *seed, size_t nseed, uint8_t out[MSP_TLMSP_HASH_LEN])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(proto);
    size_t n = 0;
    int ok = ctx != NULL && EVP_MAC_update(ctx, prefix, prefix_len) &&
             EVP_MAC_update(ctx, (const uint8_t *)label, strlen(label));
    for (size_t i = 0; ok && i < nseed; i++) {
        ok = EVP_MAC_update(ctx, seed[i].base, seed[i].len);
    }
    ok = ok && EVP_MAC_final(ctx, out, &n, MSP_TLMSP_HASH_LEN) && n == MSP_TLMSP_HASH_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? MSP_OK : MSP_ERR_NO_MEMORY;
}

/*
 * tlmsp-handshake.md 2: the reference feeds each output block, not A(i),
 * into the next A(); so the chain is A1 = HMAC(S), O1 = HMAC(A1 | S),
 * O(i+1) = HMAC(O(i) | S). Reproducing the bug is what byte compatibility
 * means here.
 */
int msp_tlmsp_prf(const uint8_t *secret, size_t secret_len, const char *label, const msp_iov_t *seed, size_t nseed,
                  uint8_t *out, size_t out_len)
{
    if (nseed > MSP_TLMSP_MAX_PRF_PIECES) {
        return MSP_ERR_ARGUMENT;
    }
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *proto = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    /* An empty secret is legal HMAC input; OpenSSL wants a non-NULL pointer for it. */
    static const uint8_t none[1];
    int ret = proto != NULL && EVP_MAC_init(proto, secret_len > 0 ? secret : none, secret_len, params)
                  ? MSP_OK
                  : MSP_ERR_NO_MEMORY;
    uint8_t block[MSP_TLMSP_HASH_LEN];
    if (ret == MSP_OK) {
        ret = hmac_pieces(proto, NULL, 0, label, seed, nseed, block); /* A1 */
    }
    for (size_t done = 0; ret == MSP_OK && done < out_len;) {
        ret = hmac_pieces(proto, block, sizeof(block), label, seed, nseed, block);
        size_t n = out_len - done < sizeof(block) ? out_len - done : sizeof(block);
        if (ret == MSP_OK) {
            memcpy(out + done, block, n);
            done += n;
        }
    }
    OPENSSL_cleanse(block, sizeof(block));
    EVP_MAC_CTX_free(proto);
    EVP_MAC_free(mac);
    return ret;
}

/* The peer's public value as a key of own's group: raw for X25519/X448, an encoded point otherwise. */
static EVP_PKEY *peer_key(EVP_PKEY *own, const uint8_t *peer, size_t peer_len)
{
    int id = EVP_PKEY_get_base_id(own);
    if (id == EVP_PKEY_X25519 || id == EVP_PKEY_X448) {
        return EVP_PKEY_new_raw_public_key(id, NULL, peer, peer_len);
    }
    char group[64];
    size_t glen = 0;
    if (id != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(own, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen)) {
        return NULL;
    }
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                           OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)peer, peer_len),
                           OSSL_PARAM_construct_end()};
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/*
 * Premaster secrets (6.2): ECDH of the same endpoint key with each peer's key; raw shared secret as in TLS
 * (X25519 32 bytes, P-256 the x-coordinate).
 */
int msp_tlmsp_premaster(EVP_PKEY *own, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY *pk = peer_key(own, peer, peer_len);
    if (pk == NULL) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
    size_t n = MSP_TLMSP_MAX_PREMASTER;
    /* Derive refuses a point off the curve or an all-zero X25519 result: the peer's fault. */
    int ret = ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, pk) > 0 &&
                      EVP_PKEY_derive(ctx, out, &n) > 0
                  ? MSP_OK
                  : MSP_ALERT_ILLEGAL_PARAMETER;
    if (ret == MSP_OK) {
        *out_len = n;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return ret;
}

/* IDList hash (6.3): SHA-256 over the leaf DERs: [client] | m1 .. mN in list order | server. */
int msp_tlmsp_idlist_hash(const msp_iov_t *certs, size_t ncerts, uint8_t out[MSP_TLMSP_HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < ncerts; i++) {
        ok = EVP_DigestUpdate(ctx, certs[i].base, certs[i].len);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    return ok ? MSP_OK : MSP_ERR_NO_MEMORY;
}

/* master(A,B) = PRF(premaster, "master secret", idlist_hash | a_random | b_random)[0:48] (6.4). */
int msp_tlmsp_master_secret(const uint8_t *premaster, size_t premaster_len,
                            const uint8_t idlist_hash[MSP_TLMSP_HASH_LEN], const uint8_t a_random[MSP_TLMSP_RANDOM_LEN],
                            const uint8_t b_random[MSP_TLMSP_RANDOM_LEN], uint8_t out[MSP_TLMSP_MASTER_LEN])
{
    /* 6.4: the IDList hash comes before the randoms, unlike TLS. */
    const msp_iov_t seed[] = {
        {idlist_hash, MSP_TLMSP_HASH_LEN}, {a_random, MSP_TLMSP_RANDOM_LEN}, {b_random, MSP_TLMSP_RANDOM_LEN}};
    return msp_tlmsp_prf(premaster, premaster_len, "master secret", seed, 3, out, MSP_TLMSP_MASTER_LEN);
}

/*
 * kb(A,B) = PRF(master, "key expansion", a_random | b_random)[0:64] (6.5), A first, not the TLS order:
 * B_to_A_MAC | A_to_B_MAC | B_to_A_enc | A_to_B_enc.
 */
int msp_tlmsp_key_block(const uint8_t master[MSP_TLMSP_MASTER_LEN], const uint8_t a_random[MSP_TLMSP_RANDOM_LEN],
                        const uint8_t b_random[MSP_TLMSP_RANDOM_LEN], msp_tlmsp_key_block_t *kb)
{
    const msp_iov_t seed[] = {{a_random, MSP_TLMSP_RANDOM_LEN}, {b_random, MSP_TLMSP_RANDOM_LEN}};
    uint8_t block[64];
    int ret = msp_tlmsp_prf(master, MSP_TLMSP_MASTER_LEN, "key expansion", seed, 2, block, sizeof(block));
    if (ret == MSP_OK) {
        memcpy(kb->b_to_a_mac, block, 16);
        memcpy(kb->a_to_b_mac, block + 16, 16);
        memcpy(kb->b_to_a_enc, block + 32, 16);
        memcpy(kb->a_to_b_enc, block + 48, 16);
    }
    OPENSSL_cleanse(block, sizeof(block));
    return ret;
}

/*
 * seed(c) = c | m1.to_server_random | m1.to_client_random | ... | server_random
 * | client_random (6.8): the middleboxes in list order, to_server first, and
 * the server's random before the client's.
 */
static int context_block(uint8_t id, const uint8_t *s_part, const uint8_t *c_part, const char *label,
                         const msp_tlmsp_randoms_t *r, uint8_t *out, size_t out_len)
{
    if (r->nmbox > MSP_TLMSP_MAX_MIDDLEBOXES) {
        return MSP_ERR_ARGUMENT;
    }
    msp_iov_t seed[1 + 2 * MSP_TLMSP_MAX_MIDDLEBOXES + 2];
    size_t n = 0;
    seed[n++] = (msp_iov_t){&id, 1};
    for (size_t m = 0; m < r->nmbox; m++) {
        seed[n++] = (msp_iov_t){r->mbox_to_server[m], MSP_TLMSP_RANDOM_LEN};
        seed[n++] = (msp_iov_t){r->mbox_to_client[m], MSP_TLMSP_RANDOM_LEN};
    }
    seed[n++] = (msp_iov_t){r->server, MSP_TLMSP_RANDOM_LEN};
    seed[n++] = (msp_iov_t){r->client, MSP_TLMSP_RANDOM_LEN};
    uint8_t secret[32];
    memcpy(secret, s_part, 16);
    memcpy(secret + 16, c_part, 16);
    int ret = msp_tlmsp_prf(secret, sizeof(secret), label, seed, n, out, out_len);
    OPENSSL_cleanse(secret, sizeof(secret));
    return ret;
}

/*
 * Context keys (6.8): reader_block(c) = PRF(S_r | C_r, "reader keys", seed(c))[0:64], writer_block(c) =
 * PRF(S_w | C_w, "writer keys", seed(c))[0:32]; the server's contribution first.
 */
int msp_tlmsp_context_keys(uint8_t id, const uint8_t s_reader[16], const uint8_t c_reader[16],
                           const uint8_t s_writer[16], const uint8_t c_writer[16], const msp_tlmsp_randoms_t *r,
                           msp_tlmsp_context_keys_t *keys)
{
    uint8_t reader[64], writer[32];
    int ret = context_block(id, s_reader, c_reader, "reader keys", r, reader, sizeof(reader));
    if (ret == MSP_OK) {
        ret = context_block(id, s_writer, c_writer, "writer keys", r, writer, sizeof(writer));
    }
    if (ret == MSP_OK) {
        memcpy(keys->client_reader_mac, reader, 16);
        memcpy(keys->client_reader_enc, reader + 16, 16);
        memcpy(keys->server_reader_mac, reader + 32, 16);
        memcpy(keys->server_reader_enc, reader + 48, 16);
        memcpy(keys->client_writer_mac, writer, 16);
        memcpy(keys->server_writer_mac, writer + 16, 16);
    }
    OPENSSL_cleanse(reader, sizeof(reader));
    OPENSSL_cleanse(writer, sizeof(writer));
    return ret;
}

/* synch_block = PRF(S_s | C_s, "synch keys", seed(0))[0:32]: client_synch | server_synch (6.8). */
int msp_tlmsp_synch_keys(const uint8_t s_synch[16], const uint8_t c_synch[16], const msp_tlmsp_randoms_t *r,
                         uint8_t client_synch[16], uint8_t server_synch[16])
{
    uint8_t block[32];
    int ret = context_block(MSP_TLMSP_CONTEXT_CONTROL, s_synch, c_synch, "synch keys", r, block, sizeof(block));
    if (ret == MSP_OK) {
        memcpy(client_synch, block, 16);
        memcpy(server_synch, block + 16, 16);
    }
    OPENSSL_cleanse(block, sizeof(block));
    return ret;
}

/* MiddleboxFinished verify_data = PRF(master(E, m), label, SHA-256(transcript))[0:12] (6.11). */
int msp_tlmsp_verify_data(const uint8_t master[MSP_TLMSP_MASTER_LEN], const char *label,
                          const uint8_t transcript_hash[MSP_TLMSP_HASH_LEN], uint8_t out[MSP_TLMSP_VERIFY_LEN])
{
    const msp_iov_t seed[] = {{transcript_hash, MSP_TLMSP_HASH_LEN}};
    return msp_tlmsp_prf(master, MSP_TLMSP_MASTER_LEN, label, seed, 1, out, MSP_TLMSP_VERIFY_LEN);
}
