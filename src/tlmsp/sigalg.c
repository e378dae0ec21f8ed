#include "sigalg.h"

#include <openssl/rsa.h>

#include "msp/error.h"

typedef struct sigalg {
    uint16_t code;
    const char *digest;
    int key_type; /* EVP_PKEY_RSA or EVP_PKEY_EC */
    int pss;
} sigalg_t;

/*
 * The SHA-1 pair is what the reference's middleboxes sign with (tlmsp-handshake.md 1.9, 5.3: an implementation
 * "must accept SHA-1 signatures here"); the rest is what TLS 1.2 peers use. No TS 103 523-2 clause is given.
 */
static const sigalg_t sigalgs[] = {
    {0x0201, "SHA1", EVP_PKEY_RSA, 0},   {0x0203, "SHA1", EVP_PKEY_EC, 0},    {0x0401, "SHA256", EVP_PKEY_RSA, 0},
    {0x0501, "SHA384", EVP_PKEY_RSA, 0}, {0x0601, "SHA512", EVP_PKEY_RSA, 0}, {0x0403, "SHA256", EVP_PKEY_EC, 0},
    {0x0503, "SHA384", EVP_PKEY_EC, 0},  {0x0603, "SHA512", EVP_PKEY_EC, 0},  {0x0804, "SHA256", EVP_PKEY_RSA, 1},
    {0x0805, "SHA384", EVP_PKEY_RSA, 1}, {0x0806, "SHA512", EVP_PKEY_RSA, 1},
};

static const sigalg_t *find_sigalg(uint16_t code, EVP_PKEY *key)
{
    for (size_t i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++) {
        if (sigalgs[i].code == code && EVP_PKEY_get_base_id(key) == sigalgs[i].key_type) {
            return &sigalgs[i];
        }
    }
    return NULL;
}

int msp_sigalg_fits(EVP_PKEY *key, uint16_t sigalg)
{
    return find_sigalg(sigalg, key) != NULL;
}

/* A digest-sign/verify context fed with the parts; PSS salt = digest length, as TLS 1.2 uses it. */
static EVP_MD_CTX *sig_ctx(EVP_PKEY *key, const sigalg_t *a, int sign, const msp_iov_t *parts, size_t n)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md != NULL && (sign ? EVP_DigestSignInit_ex(md, &pctx, a->digest, NULL, NULL, key, NULL)
                                 : EVP_DigestVerifyInit_ex(md, &pctx, a->digest, NULL, NULL, key, NULL)) > 0;
    if (ok && a->pss) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    }
    for (size_t i = 0; ok && i < n; i++) {
        ok = (sign ? EVP_DigestSignUpdate(md, parts[i].base, parts[i].len)
                   : EVP_DigestVerifyUpdate(md, parts[i].base, parts[i].len)) > 0;
    }
    if (!ok) {
        EVP_MD_CTX_free(md);
        return NULL;
    }
    return md;
}

int msp_sigalg_sign(EVP_PKEY *key, uint16_t sigalg, const msp_iov_t *parts, size_t n, uint8_t *sig, size_t *sig_len)
{
    const sigalg_t *a = find_sigalg(sigalg, key);
    if (a == NULL) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    EVP_MD_CTX *md = sig_ctx(key, a, 1, parts, n);
    int ret = md != NULL && EVP_DigestSignFinal(md, sig, sig_len) > 0 ? MSP_OK : MSP_ALERT_INTERNAL_ERROR;
    EVP_MD_CTX_free(md);
    return ret;
}

int msp_sigalg_verify(EVP_PKEY *key, uint16_t sigalg, const msp_iov_t *parts, size_t n, const uint8_t *sig,
                      size_t sig_len)
{
    const sigalg_t *a = find_sigalg(sigalg, key);
    if (a == NULL) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    EVP_MD_CTX *md = sig_ctx(key, a, 0, parts, n);
    if (md == NULL) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    /* Any failure past set-up (a malformed DER, a wrong length) is the signature's fault. */
    int ok = EVP_DigestVerifyFinal(md, sig, sig_len) == 1;
    EVP_MD_CTX_free(md);
    return ok ? MSP_OK : MSP_ALERT_DECRYPT_ERROR;
}
