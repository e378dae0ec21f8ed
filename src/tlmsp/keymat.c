/*
 * MiddleboxKeyMaterial / MiddleboxKeyConfirmation bodies of ETSI TS 103 523-2. The write-up gives no clause
 * numbers of the standard for them; the bare section numbers below are tlmsp-handshake.md's (5.5, 5.6).
 */
#include "tlmsp_keymat.h"

#include <string.h>

#include <openssl/crypto.h>

#include "msp/error.h"

/*
 * contributions (5.5): for each present context ascending, c | [synch, c = 0 only] | v8<reader> | v8<writer>;
 * reader empty "if the target may not read c", writer empty "if the target may not write c".
 */
int msp_tlmsp_contrib_encode(const msp_tlmsp_contrib_t *c, const uint8_t access[256], msp_buf_t *out)
{
    for (int id = 0; id < 256; id++) {
        if (!c->present[id]) {
            continue;
        }
        uint8_t a = id == MSP_TLMSP_CONTEXT_CONTROL ? MSP_TLMSP_CAN_ALL : access[id];
        msp_buf_put_u8(out, (uint8_t)id);
        if (id == MSP_TLMSP_CONTEXT_CONTROL) {
            msp_buf_put(out, c->synch, MSP_TLMSP_CONTRIB_LEN); /* no length prefix (5.5) */
        }
        int r = (a & MSP_TLMSP_CAN_READ) && c->has_reader[id];
        int w = (a & MSP_TLMSP_CAN_WRITE) && c->has_writer[id];
        msp_buf_put_u8(out, r ? MSP_TLMSP_CONTRIB_LEN : 0);
        msp_buf_put(out, c->reader[id], r ? MSP_TLMSP_CONTRIB_LEN : 0);
        msp_buf_put_u8(out, w ? MSP_TLMSP_CONTRIB_LEN : 0);
        msp_buf_put(out, c->writer[id], w ? MSP_TLMSP_CONTRIB_LEN : 0);
    }
    return msp_buf_error(out);
}

/* v8<16 bytes or nothing>: "a non-empty reader/writer must be exactly 16 bytes" (5.5). */
static int read_part(msp_reader_t *r, uint8_t *has, uint8_t out[MSP_TLMSP_CONTRIB_LEN])
{
    msp_reader_t v;
    int ret = msp_read_block(r, 1, &v);
    if (ret != MSP_OK) {
        return ret;
    }
    size_t n = msp_reader_left(&v);
    if (n != 0 && n != MSP_TLMSP_CONTRIB_LEN) {
        return MSP_ALERT_DECODE_ERROR;
    }
    *has = n != 0;
    return n != 0 ? msp_read_copy(&v, out, n) : MSP_OK;
}

/* The receiver's side of 5.5 (context 0, with its synch, required; a context listed twice refused). */
int msp_tlmsp_contrib_decode(const uint8_t *p, size_t len, msp_tlmsp_contrib_t *c)
{
    memset(c, 0, sizeof(*c));
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    int ret = MSP_OK;
    while (ret == MSP_OK && msp_reader_left(&r) > 0) {
        uint8_t id;
        ret = msp_read_u8(&r, &id);
        if (ret == MSP_OK && c->present[id]) {
            ret = MSP_ALERT_DECODE_ERROR;
        }
        if (ret == MSP_OK && id == MSP_TLMSP_CONTEXT_CONTROL) {
            ret = msp_read_copy(&r, c->synch, MSP_TLMSP_CONTRIB_LEN);
        }
        if (ret == MSP_OK) {
            c->present[id] = 1;
            ret = read_part(&r, &c->has_reader[id], c->reader[id]);
        }
        if (ret == MSP_OK) {
            ret = read_part(&r, &c->has_writer[id], c->writer[id]);
        }
    }
    if (ret == MSP_OK && !c->present[MSP_TLMSP_CONTEXT_CONTROL]) {
        ret = MSP_ALERT_DECODE_ERROR;
    }
    if (ret != MSP_OK) {
        OPENSSL_cleanse(c, sizeof(*c));
    }
    return ret;
}

/* body = id | nonce(12) | GCM(contributions) | tag(16), IV = the nonce, AAD = id | nonce (5.5, 5.6). */
int msp_tlmsp_keymat_seal(msp_tlmsp_gcm_t *g, const uint8_t key[16], uint8_t id, const uint8_t nonce[12],
                          const uint8_t *plain, size_t len, msp_buf_t *out)
{
    if (1 + MSP_TLMSP_GCM_NONCE_LEN + len + MSP_TLMSP_TAG_LEN > MSP_TLMSP_KEYMAT_MAX_BODY) {
        return MSP_ERR_LIMIT;
    }
    size_t start = out->len;
    int ret = msp_buf_reserve(out, 1 + MSP_TLMSP_GCM_NONCE_LEN + len + MSP_TLMSP_TAG_LEN);
    if (ret != MSP_OK) {
        return ret;
    }
    uint8_t *body = out->base + start;
    body[0] = id;
    memcpy(body + 1, nonce, MSP_TLMSP_GCM_NONCE_LEN);
    /* The AAD is the body's first 13 bytes; the record0 helper's layout does not fit, so use the raw engine. */
    int outl = 0, fin = 0;
    uint8_t *ct = body + 1 + MSP_TLMSP_GCM_NONCE_LEN;
    if (!EVP_EncryptInit_ex(g->ctx, NULL, NULL, key, nonce) ||
        !EVP_EncryptUpdate(g->ctx, NULL, &outl, body, 1 + MSP_TLMSP_GCM_NONCE_LEN) ||
        (len > 0 && !EVP_EncryptUpdate(g->ctx, ct, &outl, plain, (int)len)) ||
        !EVP_EncryptFinal_ex(g->ctx, ct + len, &fin) ||
        !EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, MSP_TLMSP_TAG_LEN, ct + len)) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    out->len += 1 + MSP_TLMSP_GCM_NONCE_LEN + len + MSP_TLMSP_TAG_LEN;
    return MSP_OK;
}

/* 5.5 receiver: a body "shorter than 33698" bytes, with room for the id, the nonce and the tag. */
int msp_tlmsp_keymat_open(msp_tlmsp_gcm_t *g, const uint8_t key[16], const uint8_t *body, size_t len, uint8_t *id,
                          uint8_t *plain, size_t *plain_len)
{
    if (len <= 1 + MSP_TLMSP_GCM_NONCE_LEN + MSP_TLMSP_TAG_LEN || len > MSP_TLMSP_KEYMAT_MAX_BODY) {
        return MSP_ALERT_DECODE_ERROR;
    }
    size_t n = len - 1 - MSP_TLMSP_GCM_NONCE_LEN - MSP_TLMSP_TAG_LEN;
    uint8_t tag[MSP_TLMSP_TAG_LEN];
    memcpy(tag, body + len - MSP_TLMSP_TAG_LEN, MSP_TLMSP_TAG_LEN);
    int outl = 0, fin = 0;
    if (!EVP_DecryptInit_ex(g->ctx, NULL, NULL, key, body + 1) ||
        !EVP_DecryptUpdate(g->ctx, NULL, &outl, body, 1 + MSP_TLMSP_GCM_NONCE_LEN) ||
        !EVP_DecryptUpdate(g->ctx, plain, &outl, body + 1 + MSP_TLMSP_GCM_NONCE_LEN, (int)n) ||
        !EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, MSP_TLMSP_TAG_LEN, tag)) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    if (!EVP_DecryptFinal_ex(g->ctx, plain + n, &fin)) {
        OPENSSL_cleanse(plain, n);
        return MSP_ALERT_DECRYPT_ERROR;
    }
    *id = body[0];
    *plain_len = n;
    return MSP_OK;
}
