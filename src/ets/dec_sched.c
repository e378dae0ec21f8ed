/*
 * TLS 1.3 key schedule and record protection of the decryptor (RFC 8446 7, 5.2; ets.md 7). ETSI TS 103 523-3
 * adds nothing here: 4.3.1 keeps the handshake "byte-for-byte ordinary TLS 1.3" (ets.md 3.1, ETS-KX-1).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "dec.h"

/*
 * HKDF (RFC 5869) over one HMAC context per connection, re-keyed for each
 * step: Extract is HMAC(salt, IKM), and Expand never needs more than one
 * block in TLS 1.3 (L <= Hash.length), so it is HMAC(PRK, info || 0x01).
 * Through EVP_KDF "HKDF" OpenSSL 3.0 fetches HMAC and the digest by name on
 * every call (its HMAC()): 0.9-1.6 us a step against 0.2-0.4 us here.
 */
static int hmac(msp_ets_conn_t *c, const uint8_t *key, size_t key_len, const uint8_t *msg, size_t msg_len, uint8_t *out)
{
    size_t n = 0;
    /* several labels in a row expand one secret: HMAC keeps its keyed state, so skip the key setup (~half) */
    int same = key_len == c->hmac_key_len && key_len <= DEC_MAX_HASH && CRYPTO_memcmp(key, c->hmac_key, key_len) == 0;
    int ok = EVP_MAC_init(c->hmac, same ? NULL : key, same ? 0 : key_len, NULL) == 1;
    c->hmac_key_len = 0;
    ok = ok && EVP_MAC_update(c->hmac, msg, msg_len) == 1 && EVP_MAC_final(c->hmac, out, &n, DEC_MAX_HASH) == 1 &&
         n == c->suite->hlen;
    if (ok && key_len <= DEC_MAX_HASH && key != out) {
        memcpy(c->hmac_key, key, key_len);
        c->hmac_key_len = key_len;
    }
    return ok ? MSP_OK : MSP_ERR_INVALID;
}

/* The suite's HMAC with its digest already set: a copy, not a fetch by name. */
int dec_kdf_start(msp_ets_conn_t *c)
{
    EVP_MAC_CTX **x = &c->hmac_by[c->suite->hlen == 48];
    c->hmac_key_len = 0; /* a recycled connection's context: the first step sets a key */
    if (*x == NULL) {
        *x = EVP_MAC_CTX_dup(c->suite->hmac);
    }
    c->hmac = *x;
    return c->hmac != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
}

int dec_kdf_no_psk(const dec_crypto_t *cr, uint16_t id, uint8_t *out)
{
    static const uint8_t zero[DEC_MAX_HASH];
    msp_ets_conn_t c = {.cr = cr};
    c.suite = dec_suite_find(cr, id, &c.suite_store);
    int rc = c.suite != NULL ? dec_kdf_start(&c) : MSP_ERR_ARGUMENT;
    rc = rc ? rc : dec_extract(&c, NULL, zero, c.suite->hlen, out);
    rc = rc ? rc : dec_derive_next(&c, out);
    EVP_MAC_CTX_free(c.hmac_by[0]);
    EVP_MAC_CTX_free(c.hmac_by[1]);
    OPENSSL_cleanse(&c, sizeof(c));
    return rc;
}

/* HKDF-Extract = HMAC(salt, ikm): also what Finished needs (RFC 8446 4.4.4), so it serves both. */
int dec_extract(msp_ets_conn_t *c, const uint8_t *salt, const uint8_t *ikm, size_t ikm_len, uint8_t *out)
{
    static const uint8_t zero[DEC_MAX_HASH];
    return hmac(c, salt != NULL ? salt : zero, c->suite->hlen, ikm, ikm_len, out);
}

int dec_expand_label(msp_ets_conn_t *c, const uint8_t *secret, const char *label, const uint8_t *ctx, size_t ctx_len,
                     uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 6 + 32 + 1 + DEC_MAX_HASH + 32 + 1], t[DEC_MAX_HASH];
    size_t ln = strlen(label);
    if (ln > 32 || ctx_len > DEC_MAX_HASH + 32 || len > c->suite->hlen) {
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
    info[n++] = 0x01; /* T(1), the only block */
    /* out may be secret itself (KeyUpdate), and may be shorter than a block */
    int rc = hmac(c, secret, c->suite->hlen, info, n, t);
    if (rc == MSP_OK) {
        memcpy(out, t, len);
    }
    OPENSSL_cleanse(t, sizeof(t));
    return rc;
}

/* Derive-Secret(s, label, msgs) = HKDF-Expand-Label(s, label, Transcript-Hash(msgs), Hash.len) (ets.md 7). */
int dec_derive_secret(msp_ets_conn_t *c, const uint8_t *secret, const char *label, const uint8_t *hash, uint8_t *out)
{
    return dec_expand_label(c, secret, label, hash, c->suite->hlen, out, c->suite->hlen);
}

int dec_derive_next(msp_ets_conn_t *c, uint8_t *secret)
{
    return dec_derive_secret(c, secret, "derived", c->suite->empty, secret);
}

int dec_transcript_hash(msp_ets_conn_t *c, uint8_t *out)
{
    if (c->th_tmp == NULL && (c->th_tmp = EVP_MD_CTX_new()) == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    return EVP_MD_CTX_copy_ex(c->th_tmp, c->th) == 1 && EVP_DigestFinal_ex(c->th_tmp, out, NULL) == 1 ? MSP_OK
                                                                                                      : MSP_ERR_INVALID;
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
    EVP_CIPHER_CTX **x = &a->by[s->cipher_index];
    if (rc == MSP_OK && *x == NULL && (*x = EVP_CIPHER_CTX_new()) == NULL) {
        rc = MSP_ERR_NO_MEMORY;
    }
    a->ctx = *x;
    if (rc == MSP_OK) {
        /* GCM and ChaCha20-Poly1305 keep their cipher across keys: only the key changes (no new provider context) */
        int same = !s->ccm && EVP_CIPHER_CTX_get0_cipher(a->ctx) == s->cipher;
        int ok = same || EVP_DecryptInit_ex(a->ctx, s->cipher, NULL, NULL, NULL) == 1;
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

/*
 * ets.md 7 "Traffic keys": nonce = iv XOR the 64-bit sequence number, AAD = the 5-byte record header; the
 * plaintext is content | type | zero padding.
 */
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
