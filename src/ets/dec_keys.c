/* Static key set, suite table and the shared secret of the decryptor (ets.md 7). */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "dec.h"

static void crypto_free(dec_crypto_t *cr)
{
    EVP_MD_free(cr->sha256);
    EVP_MD_free(cr->sha384);
    EVP_CIPHER_free(cr->aes128gcm);
    EVP_CIPHER_free(cr->aes256gcm);
    EVP_CIPHER_free(cr->chacha);
    EVP_CIPHER_free(cr->aes128ccm);
    EVP_KDF_free(cr->hkdf);
}

/* Fetching is a locked name lookup: once per key set, not per connection or record. */
static int crypto_fetch(dec_crypto_t *cr)
{
    cr->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    cr->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
    cr->aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    cr->aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    cr->chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    cr->aes128ccm = EVP_CIPHER_fetch(NULL, "AES-128-CCM", NULL);
    cr->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    return cr->sha256 && cr->sha384 && cr->aes128gcm && cr->aes256gcm && cr->chacha && cr->aes128ccm && cr->hkdf;
}

msp_ets_keys_t *msp_ets_keys_new(void)
{
    msp_ets_keys_t *k = calloc(1, sizeof(*k));
    if (k != NULL && !crypto_fetch(&k->crypto)) {
        msp_ets_keys_free(k);
        return NULL;
    }
    return k;
}

void msp_ets_keys_free(msp_ets_keys_t *k)
{
    if (k == NULL) {
        return;
    }
    for (size_t i = 0; i < k->n; i++) {
        EVP_PKEY_free(k->key[i].pkey);
    }
    crypto_free(&k->crypto);
    free(k);
}

size_t msp_ets_keys_count(const msp_ets_keys_t *k)
{
    return k != NULL ? k->n : 0;
}

int msp_ets_keys_add(msp_ets_keys_t *k, EVP_PKEY *priv, msp_error_t *err)
{
    if (k == NULL || priv == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, "ets_dec", "no key");
    }
    if (k->n == MSP_ETS_DEC_MAX_KEYS) {
        return msp_error_set(err, MSP_ERR_LIMIT, "ets_dec", "more than %d static keys", MSP_ETS_DEC_MAX_KEYS);
    }
    dec_key_t *d = &k->key[k->n];
    if (msp_ets_key_share(priv, d->share, sizeof(d->share), &d->share_len) != MSP_OK) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, "ets_dec", "static key is neither X25519 nor P-256");
    }
    d->group = EVP_PKEY_is_a(priv, "X25519") ? DEC_GROUP_X25519 : DEC_GROUP_P256;
    if (msp_ets_fingerprint(d->share, d->share_len, d->fp) != MSP_OK || EVP_PKEY_up_ref(priv) != 1) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, "ets_dec", "cannot take the key");
    }
    d->pkey = priv;
    k->n++;
    return MSP_OK;
}

const dec_key_t *dec_key_find(const msp_ets_keys_t *keys, uint16_t group, const uint8_t *share, size_t len)
{
    for (size_t i = 0; i < keys->n; i++) {
        const dec_key_t *k = &keys->key[i];
        if (k->group == group && k->share_len == len && memcmp(k->share, share, len) == 0) {
            return k;
        }
    }
    return NULL;
}

static EVP_PKEY *peer_key(const dec_key_t *k, const uint8_t *peer, size_t len)
{
    if (k->group == DEC_GROUP_X25519) {
        return len == 32 ? EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer, len) : NULL;
    }
    /* uncompressed point only (RFC 8446 4.2.8.2); decoding checks it is on the curve */
    if (len != 65 || peer[0] != 0x04) {
        return NULL;
    }
    EVP_PKEY *p = EVP_PKEY_new();
    if (p != NULL &&
        (EVP_PKEY_copy_parameters(p, k->pkey) != 1 || EVP_PKEY_set1_encoded_public_key(p, peer, len) != 1)) {
        EVP_PKEY_free(p);
        p = NULL;
    }
    return p;
}

int dec_key_derive(const dec_key_t *k, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY *p = peer_key(k, peer, peer_len);
    if (p == NULL) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    size_t n = *out_len;
    /* X25519: the 32-byte output; P-256: the x-coordinate (RFC 8446 7.4) */
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, p) == 1 &&
             EVP_PKEY_derive(ctx, out, &n) == 1;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(p);
    *out_len = n;
    return ok ? MSP_OK : MSP_ALERT_ILLEGAL_PARAMETER;
}

const dec_suite_t *dec_suite_find(const dec_crypto_t *cr, uint16_t id, dec_suite_t *s)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->md = cr->sha256;
    s->hlen = 32;
    s->keylen = 16;
    s->taglen = 16;
    switch (id) {
    case 0x1301:
        s->cipher = cr->aes128gcm;
        break;
    case 0x1302:
        s->cipher = cr->aes256gcm;
        s->md = cr->sha384;
        s->hlen = 48;
        s->keylen = 32;
        break;
    case 0x1303:
        s->cipher = cr->chacha;
        s->keylen = 32;
        break;
    case 0x1304:
    case 0x1305:
        s->cipher = cr->aes128ccm;
        s->ccm = 1;
        s->taglen = id == 0x1305 ? 8 : 16;
        break;
    default:
        return NULL;
    }
    return s;
}

/* ---- ticket store ---- */

msp_ets_tickets_t *msp_ets_tickets_new(size_t max)
{
    if (max == 0) {
        return NULL;
    }
    msp_ets_tickets_t *t = calloc(1, sizeof(*t));
    if (t != NULL && (t->e = calloc(max, sizeof(*t->e))) == NULL) {
        free(t);
        return NULL;
    }
    if (t != NULL) {
        t->max = max;
    }
    return t;
}

void msp_ets_tickets_free(msp_ets_tickets_t *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].ticket);
    }
    OPENSSL_cleanse(t->e, t->max * sizeof(*t->e));
    free(t->e);
    free(t);
}

size_t msp_ets_tickets_count(const msp_ets_tickets_t *t)
{
    return t != NULL ? t->n : 0;
}

/* FNV-1a: a cheap filter before memcmp over the ticket bytes. */
static uint32_t ticket_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static dec_ticket_t *lookup(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len, uint32_t h)
{
    for (size_t i = 0; i < t->n; i++) {
        dec_ticket_t *e = &t->e[i];
        if (e->hash == h && e->ticket_len == len && memcmp(e->ticket, ticket, len) == 0) {
            return e;
        }
    }
    return NULL;
}

int dec_tickets_put(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len, uint16_t suite, const uint8_t *psk,
                    size_t psk_len)
{
    if (len == 0 || len > MSP_ETS_DEC_MAX_TICKET || psk_len > DEC_MAX_HASH) {
        return MSP_ERR_LIMIT;
    }
    uint32_t h = ticket_hash(ticket, len);
    dec_ticket_t *e = lookup(t, ticket, len, h);
    if (e == NULL && t->n < t->max) {
        e = &t->e[t->n++];
    } else if (e == NULL) {
        e = &t->e[0];
        for (size_t i = 1; i < t->n; i++) {
            if (t->e[i].used < e->used) {
                e = &t->e[i];
            }
        }
        free(e->ticket);
        e->ticket = NULL;
    }
    if (e->ticket == NULL) {
        if ((e->ticket = malloc(len)) == NULL) {
            e->ticket_len = 0;
            e->hash = 0;
            return MSP_ERR_NO_MEMORY;
        }
        memcpy(e->ticket, ticket, len);
    }
    e->ticket_len = len;
    e->hash = h;
    e->suite = suite;
    memcpy(e->psk, psk, psk_len);
    e->psk_len = psk_len;
    e->used = ++t->clock;
    return MSP_OK;
}

const dec_ticket_t *dec_tickets_get(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len)
{
    if (t == NULL) {
        return NULL;
    }
    dec_ticket_t *e = lookup(t, ticket, len, ticket_hash(ticket, len));
    if (e != NULL) {
        e->used = ++t->clock;
    }
    return e;
}
