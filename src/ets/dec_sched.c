/* TLS 1.3 key schedule and record protection of the decryptor (RFC 8446 7, 5.2; ets.md 7). */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "dec.h"

static int kdf(msp_ets_conn_t *c, int mode, const uint8_t *salt, size_t salt_len, const uint8_t *key, size_t key_len,
               const uint8_t *info, size_t info_len, uint8_t *out, size_t len)
{
    OSSL_PARAM p[5], *q = p;
    *q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    if (salt != NULL) {
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    }
    if (info != NULL) {
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    }
    *q = OSSL_PARAM_construct_end();
    return EVP_KDF_derive(c->kdf, out, len, p) == 1 ? MSP_OK : MSP_ERR_INVALID;
}

/*
 * One HKDF context per connection with the suite's digest set once
 * (EVP_KDF_CTX_dup of a prepared HKDF context does not derive in OpenSSL
 * 3.0.x, so it cannot be prepared per key set).
 */
int dec_kdf_start(msp_ets_conn_t *c)
{
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                       (char *)(c->suite->hlen == 48 ? "SHA384" : "SHA256"), 0),
                      OSSL_PARAM_construct_end()};
    EVP_KDF_CTX_free(c->kdf);
    c->kdf = EVP_KDF_CTX_new(c->cr->hkdf);
    return c->kdf != NULL && EVP_KDF_CTX_set_params(c->kdf, p) == 1 ? MSP_OK : MSP_ERR_NO_MEMORY;
}

/* HKDF-Extract = HMAC(salt, ikm): also what Finished needs (RFC 8446 4.4.4), so it serves both. */
int dec_extract(msp_ets_conn_t *c, const uint8_t *salt, const uint8_t *ikm, size_t ikm_len, uint8_t *out)
{
    static const uint8_t zero[DEC_MAX_HASH];
    size_t h = c->suite->hlen;
    return kdf(c, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt != NULL ? salt : zero, h, ikm, ikm_len, NULL, 0, out, h);
}

int dec_expand_label(msp_ets_conn_t *c, const uint8_t *secret, const char *label, const uint8_t *ctx, size_t ctx_len,
                     uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 6 + 32 + 1 + DEC_MAX_HASH + 32];
    size_t ln = strlen(label);
    if (ln > 32 || ctx_len > DEC_MAX_HASH + 32) {
        return MSP_ERR_LIMIT;
    }
    /* HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255> */
    size_t n = 0;
    info[n++] = (uint8_t)(len >> 8);
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(6 + ln);
    memcpy(info + n, "tls13 ", 6);
    memcpy(info + n + 6, label, ln);
    n += 6 + ln;
    info[n++] = (uint8_t)ctx_len;
    if (ctx_len > 0) {
        memcpy(info + n, ctx, ctx_len);
    }
    n += ctx_len;
    return kdf(c, EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, secret, c->suite->hlen, info, n, out, len);
}

int dec_derive_secret(msp_ets_conn_t *c, const uint8_t *secret, const char *label, const uint8_t *hash, uint8_t *out)
{
    return dec_expand_label(c, secret, label, hash, c->suite->hlen, out, c->suite->hlen);
}

int dec_derive_next(msp_ets_conn_t *c, uint8_t *secret)
{
    uint8_t empty[DEC_MAX_HASH];
    unsigned n = 0;
    if (EVP_Digest("", 0, empty, &n, c->suite->md, NULL) != 1) {
        return MSP_ERR_INVALID;
    }
    return dec_derive_secret(c, secret, "derived", empty, secret);
}

int dec_transcript_hash(msp_ets_conn_t *c, uint8_t *out)
{
    EVP_MD_CTX *t = EVP_MD_CTX_new();
    int ok = t != NULL && EVP_MD_CTX_copy_ex(t, c->th) == 1 && EVP_DigestFinal_ex(t, out, NULL) == 1;
    EVP_MD_CTX_free(t);
    return ok ? MSP_OK : MSP_ERR_NO_MEMORY;
}

/* Keys once per traffic secret; records then only change the nonce (RFC 8446 7.3). */
int dec_aead_set(msp_ets_conn_t *c, dec_aead_t *a, const uint8_t *secret)
{
    const dec_suite_t *s = c->suite;
    uint8_t key[32];
    int rc = dec_expand_label(c, secret, "key", NULL, 0, key, s->keylen);
    if (rc == MSP_OK) {
        rc = dec_expand_label(c, secret, "iv", NULL, 0, a->iv, sizeof(a->iv));
    }
    if (rc == MSP_OK && a->ctx == NULL && (a->ctx = EVP_CIPHER_CTX_new()) == NULL) {
        rc = MSP_ERR_NO_MEMORY;
    }
    if (rc == MSP_OK) {
        int ok = EVP_DecryptInit_ex(a->ctx, s->cipher, NULL, NULL, NULL) == 1;
        if (s->ccm) {
            /* CCM: nonce and tag sizes before the key */
            ok = ok && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1 &&
                 EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, (int)s->taglen, NULL) == 1;
        }
        ok = ok && EVP_DecryptInit_ex(a->ctx, NULL, NULL, key, NULL) == 1;
        rc = ok ? MSP_OK : MSP_ERR_INVALID;
    }
    OPENSSL_cleanse(key, sizeof(key));
    a->seq = 0;
    a->on = rc == MSP_OK;
    return rc;
}

static int open_gcm(const dec_suite_t *s, EVP_CIPHER_CTX *x, const uint8_t *nonce, uint8_t *rec, size_t clen)
{
    int outl = 0, fin = 0;
    uint8_t *body = rec + 5;
    return EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) == 1 && EVP_DecryptUpdate(x, NULL, &outl, rec, 5) == 1 &&
           EVP_DecryptUpdate(x, body, &outl, body, (int)clen) == 1 &&
           EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, (int)s->taglen, body + clen) == 1 &&
           EVP_DecryptFinal_ex(x, body + outl, &fin) == 1;
}

static int open_ccm(const dec_suite_t *s, EVP_CIPHER_CTX *x, const uint8_t *nonce, uint8_t *rec, size_t clen)
{
    int outl = 0;
    uint8_t *body = rec + 5;
    /* CCM wants the tag and the total length before the AAD */
    return EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) == 1 &&
           EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, (int)s->taglen, body + clen) == 1 &&
           EVP_DecryptUpdate(x, NULL, &outl, NULL, (int)clen) == 1 && EVP_DecryptUpdate(x, NULL, &outl, rec, 5) == 1 &&
           EVP_DecryptUpdate(x, body, &outl, body, (int)clen) == 1;
}

int dec_aead_open(const dec_suite_t *s, dec_aead_t *a, uint8_t *rec, size_t len, uint8_t **inner, size_t *n,
                  uint8_t *type)
{
    if (len < 5 + s->taglen + 1) {
        return MSP_ALERT_BAD_RECORD_MAC;
    }
    size_t clen = len - 5 - s->taglen;
    uint8_t nonce[12];
    memcpy(nonce, a->iv, 12);
    for (int i = 0; i < 8; i++) {
        nonce[11 - i] ^= (uint8_t)(a->seq >> (8 * i));
    }
    int ok = s->ccm ? open_ccm(s, a->ctx, nonce, rec, clen) : open_gcm(s, a->ctx, nonce, rec, clen);
    if (!ok) {
        return MSP_ALERT_BAD_RECORD_MAC;
    }
    a->seq++;
    uint8_t *body = rec + 5;
    size_t i = clen;
    while (i > 0 && body[i - 1] == 0) {
        i--;
    }
    if (i == 0) {
        return MSP_ALERT_UNEXPECTED_MESSAGE; /* all padding: no content type (RFC 8446 5.4) */
    }
    *type = body[i - 1];
    *inner = body;
    *n = i - 1;
    return MSP_OK;
}
