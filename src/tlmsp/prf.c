/*
 * Finished and MiddleboxFinished verify_data (tlmsp-handshake.md 6.10,
 * 6.11). The TLMSP PRF itself is msp_tlmsp_prf() (kdf.c); the endpoint
 * Finished uses the stock TLS 1.2 PRF, taken from OpenSSL's TLS1-PRF KDF
 * so that it is not our code that computes it. The write-up gives no
 * ETSI TS 103 523-2 clause numbers for these; sections cited are its own.
 */
#include "tlmsp_keys.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "msp/error.h"

/* Labels from ssl/tlmsp_fin.c TLMSP_FINISH_LABEL_* and RFC 5246 7.4.9. */
static const struct {
    const char *label;
    int stock; /* 1: the TLS 1.2 PRF (6.10), 0: the TLMSP PRF (6.11) */
} finished_kinds[] = {
    [MSP_TLMSP_FIN_CLIENT] = {"client finished", 1},
    [MSP_TLMSP_FIN_SERVER] = {"server finished", 1},
    [MSP_TLMSP_FIN_CLIENT_TO_MBOX] = {"client-middlebox finished", 0},
    [MSP_TLMSP_FIN_MBOX_TO_SERVER] = {"middlebox-server finished", 0},
    [MSP_TLMSP_FIN_SERVER_TO_MBOX] = {"server-middlebox finished", 0},
    [MSP_TLMSP_FIN_MBOX_TO_CLIENT] = {"middlebox-client finished", 0},
};

#define NKINDS (sizeof(finished_kinds) / sizeof(finished_kinds[0]))

/* RFC 5246 5: PRF(secret, label, seed) with SHA-256; TLS1-PRF concatenates repeated seed parameters. */
static int tls12_prf(const uint8_t master[MSP_TLMSP_MASTER_LEN], const char *label,
                     const uint8_t hash[MSP_TLMSP_HASH_LEN], uint8_t out[MSP_TLMSP_VERIFY_LEN])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)master, MSP_TLMSP_MASTER_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)label, strlen(label)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)hash, MSP_TLMSP_HASH_LEN),
        OSSL_PARAM_construct_end(),
    };
    int ok = ctx != NULL && EVP_KDF_derive(ctx, out, MSP_TLMSP_VERIFY_LEN, params) > 0;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? MSP_OK : MSP_ERR_NO_MEMORY;
}

/*
 * Endpoint Finished: the stock TLS 1.2 PRF with the TLMSP master secret (tlmsp-handshake.md 6.10);
 * MiddleboxFinished: the TLMSP PRF, the label by direction (6.11).
 */
int msp_tlmsp_finished(msp_tlmsp_finished_kind_t kind, const uint8_t master[MSP_TLMSP_MASTER_LEN],
                       const uint8_t transcript_hash[MSP_TLMSP_HASH_LEN], uint8_t out[MSP_TLMSP_VERIFY_LEN])
{
    if ((unsigned)kind >= NKINDS) {
        return MSP_ERR_ARGUMENT;
    }
    const char *label = finished_kinds[kind].label;
    if (finished_kinds[kind].stock) {
        return tls12_prf(master, label, transcript_hash, out);
    }
    return msp_tlmsp_verify_data(master, label, transcript_hash, out);
}

int msp_tlmsp_finished_check(msp_tlmsp_finished_kind_t kind, const uint8_t master[MSP_TLMSP_MASTER_LEN],
                             const uint8_t transcript_hash[MSP_TLMSP_HASH_LEN], const uint8_t *got, size_t got_len)
{
    /* 5.7 and RFC 5246 7.4.9: verify_data is exactly 12 bytes. */
    if (got_len != MSP_TLMSP_VERIFY_LEN) {
        return MSP_ALERT_DECODE_ERROR;
    }
    uint8_t want[MSP_TLMSP_VERIFY_LEN];
    int ret = msp_tlmsp_finished(kind, master, transcript_hash, want);
    if (ret == MSP_OK && CRYPTO_memcmp(want, got, sizeof(want)) != 0) {
        ret = MSP_ALERT_DECRYPT_ERROR;
    }
    OPENSSL_cleanse(want, sizeof(want));
    return ret;
}

static int is_mbox(uint8_t id)
{
    return id >= MSP_TLMSP_ID_FIRST_MIDDLEBOX && id <= MSP_TLMSP_ID_LAST_MIDDLEBOX;
}

/* The 6.11 label table (ssl/tlmsp_fin.c: tlmsp_finish_verify_label()), plus the two endpoint Finished (6.10). */
int msp_tlmsp_finished_kind(uint8_t src, uint8_t dst, msp_tlmsp_finished_kind_t *kind)
{
    if (src == MSP_TLMSP_ID_CLIENT && (dst == MSP_TLMSP_ID_SERVER || is_mbox(dst))) {
        *kind = dst == MSP_TLMSP_ID_SERVER ? MSP_TLMSP_FIN_CLIENT : MSP_TLMSP_FIN_CLIENT_TO_MBOX;
        return MSP_OK;
    }
    if (src == MSP_TLMSP_ID_SERVER && (dst == MSP_TLMSP_ID_CLIENT || is_mbox(dst))) {
        *kind = dst == MSP_TLMSP_ID_CLIENT ? MSP_TLMSP_FIN_SERVER : MSP_TLMSP_FIN_SERVER_TO_MBOX;
        return MSP_OK;
    }
    if (is_mbox(src) && (dst == MSP_TLMSP_ID_CLIENT || dst == MSP_TLMSP_ID_SERVER)) {
        *kind = dst == MSP_TLMSP_ID_CLIENT ? MSP_TLMSP_FIN_MBOX_TO_CLIENT : MSP_TLMSP_FIN_MBOX_TO_SERVER;
        return MSP_OK;
    }
    return MSP_ERR_ARGUMENT;
}
