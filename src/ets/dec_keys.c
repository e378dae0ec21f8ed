/*
 * Static key set, suite table and the shared secret of the decryptor (ets.md 7). ETSI TS 103 523-3 4.1-4.2: the
 * middlebox "gets a passive copy of the packets plus the server's static key pair" (ets.md 2); 4.3.1-4.3.2:
 * one static key pair per group, the handshake otherwise ordinary TLS 1.3 (ets.md 3.1, ETS-KX-1/2).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
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
    EVP_MAC_CTX_free(cr->hmac256);
    EVP_MAC_CTX_free(cr->hmac384);
    EVP_MAC_free(cr->hmac);
}

static EVP_MAC_CTX *hmac_new(EVP_MAC *mac, const char *digest)
{
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
                      OSSL_PARAM_construct_end()};
    EVP_MAC_CTX *x = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    if (x != NULL && EVP_MAC_CTX_set_params(x, p) != 1) {
        EVP_MAC_CTX_free(x);
        x = NULL;
    }
    return x;
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
    cr->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    cr->hmac256 = hmac_new(cr->hmac, "SHA256");
    cr->hmac384 = hmac_new(cr->hmac, "SHA384");
    return cr->sha256 && cr->sha384 && cr->aes128gcm && cr->aes256gcm && cr->chacha && cr->aes128ccm && cr->hmac256 &&
           cr->hmac384 && EVP_Digest("", 0, cr->empty256, NULL, cr->sha256, NULL) == 1 &&
           EVP_Digest("", 0, cr->empty384, NULL, cr->sha384, NULL) == 1 &&
           dec_kdf_no_psk(cr, 0x1301, cr->derived256) == MSP_OK && dec_kdf_no_psk(cr, 0x1302, cr->derived384) == MSP_OK;
}

int msp_ets_keys_new(msp_ets_keys_t **out)
{
    *out = NULL;
    msp_ets_keys_t *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    if (!crypto_fetch(&k->crypto)) {
        msp_ets_keys_free(k);
        return MSP_ERR_NO_MEMORY;
    }
    *out = k;
    return MSP_OK;
}

void msp_ets_keys_free(msp_ets_keys_t *k)
{
    if (k == NULL) {
        return;
    }
    for (size_t i = 0; i < k->n; i++) {
        EVP_PKEY_CTX_free(k->key[i].derive);
        EVP_PKEY_free(k->key[i].peer);
        EVP_PKEY_free(k->key[i].pkey);
    }
    crypto_free(&k->crypto);
    free(k);
}

size_t msp_ets_keys_count(const msp_ets_keys_t *k)
{
    return k != NULL ? k->n : 0;
}

/* Holds the static key's own share until the first derivation replaces it. */
static EVP_PKEY *peer_scratch(EVP_PKEY *priv, const uint8_t *share, size_t len)
{
    EVP_PKEY *p = EVP_PKEY_new();
    if (p != NULL && (EVP_PKEY_copy_parameters(p, priv) != 1 || EVP_PKEY_set1_encoded_public_key(p, share, len) != 1)) {
        EVP_PKEY_free(p);
        p = NULL;
    }
    return p;
}

/* A static key pair (TS 103 523-3 4.3.2, ets.md 3.1 ETS-KX-2), kept with its fingerprint (4.3.3, ETS-VI-3). */
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
    /* a context per connection costs a keymgmt lookup; a copy of this one does not */
    d->derive = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    d->peer = peer_scratch(priv, d->share, d->share_len);
    if (d->derive == NULL || d->peer == NULL || EVP_PKEY_derive_init(d->derive) != 1 ||
        msp_ets_fingerprint(d->share, d->share_len, d->fp) != MSP_OK || EVP_PKEY_up_ref(priv) != 1) {
        EVP_PKEY_CTX_free(d->derive);
        EVP_PKEY_free(d->peer);
        d->derive = NULL;
        d->peer = NULL;
        return msp_error_set(err, MSP_ERR_NO_MEMORY, "ets_dec", "cannot take the key");
    }
    d->pkey = priv;
    k->n++;
    return MSP_OK;
}

/* The static key whose public value is the ServerHello key_share (ets.md 7 "Key lookup in ETS"). */
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

/* The client's share in k's scratch peer key; P-256: uncompressed point only (RFC 8446 4.2.8.2). */
static EVP_PKEY *peer_key(const dec_key_t *k, const uint8_t *peer, size_t len)
{
    if (k->group == DEC_GROUP_X25519 ? len != 32 : len != 65 || peer[0] != 0x04) {
        return NULL;
    }
    return EVP_PKEY_set1_encoded_public_key(k->peer, peer, len) == 1 ? k->peer : NULL;
}

/* The (EC)DHE shared secret from the static private key and the client's share (ets.md 7 "Shared secret"). */
int dec_key_derive(const dec_key_t *k, const uint8_t *peer, size_t peer_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY *p = peer_key(k, peer, peer_len);
    if (p == NULL) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_dup(k->derive);
    size_t n = *out_len;
    /*
     * No peer check in set_peer: for P-256 it adds n * Q = O, a second
     * scalar multiplication, where decoding the point has already refused
     * one off the curve (with cofactor 1 that is the whole check); X25519
     * takes any 32 bytes (RFC 7748) and its derive refuses an all-zero
     * result. X25519: the 32-byte output; P-256: the x-coordinate (RFC 8446 7.4).
     */
    int ok = ctx != NULL && EVP_PKEY_derive_set_peer_ex(ctx, p, 0) == 1 && EVP_PKEY_derive(ctx, out, &n) == 1;
    EVP_PKEY_CTX_free(ctx);
    *out_len = n;
    return ok ? MSP_OK : MSP_ALERT_ILLEGAL_PARAMETER;
}

/* Hash and AEAD by suite (ets.md 7): 0x1301-0x1305, IV length 12 for all. */
const dec_suite_t *dec_suite_find(const dec_crypto_t *cr, uint16_t id, dec_suite_t *s)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->md = cr->sha256;
    s->hmac = cr->hmac256;
    s->empty = cr->empty256;
    s->derived = cr->derived256;
    s->hlen = 32;
    s->keylen = 16;
    s->taglen = 16;
    switch (id) {
    case 0x1301:
        s->cipher = cr->aes128gcm;
        break;
    case 0x1302:
        s->cipher = cr->aes256gcm;
        s->cipher_index = 1;
        s->md = cr->sha384;
        s->hmac = cr->hmac384;
        s->empty = cr->empty384;
        s->derived = cr->derived384;
        s->hlen = 48;
        s->keylen = 32;
        break;
    case 0x1303:
        s->cipher = cr->chacha;
        s->cipher_index = 2;
        s->keylen = 32;
        break;
    case 0x1304:
    case 0x1305:
        s->cipher = cr->aes128ccm;
        s->cipher_index = 3;
        s->ccm = 1;
        s->taglen = id == 0x1305 ? 8 : 16;
        break;
    default:
        return NULL;
    }
    return s;
}

/*
 * ---- ticket store ----
 * ets.md 7 "PSK resumption": a middlebox that did not decrypt the issuing connection "cannot decrypt the
 * resumption, even with psk_dhe_ke and the static key"; so PSKs learnt from NewSessionTicket are kept.
 */

int msp_ets_tickets_new(size_t max, msp_ets_tickets_t **out)
{
    *out = NULL;
    if (max == 0 || max > DEC_MAX_TICKETS) {
        return MSP_ERR_ARGUMENT;
    }
    size_t slots = 1;
    while (slots < 2 * max) {
        slots *= 2;
    }
    msp_ets_tickets_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    t->e = calloc(max, sizeof(*t->e));
    t->slot = calloc(slots, sizeof(*t->slot));
    t->block = calloc((max + DEC_TICKET_BLOCK - 1) / DEC_TICKET_BLOCK, sizeof(*t->block));
    if (t->e == NULL || t->slot == NULL || t->block == NULL) {
        free(t->e);
        free(t->slot);
        free(t->block);
        free(t);
        return MSP_ERR_NO_MEMORY;
    }
    t->max = max;
    t->mask = slots - 1;
    t->newest = t->oldest = DEC_NONE;
    *out = t;
    return MSP_OK;
}

void msp_ets_tickets_free(msp_ets_tickets_t *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].own) {
            free(t->e[i].ticket);
        }
    }
    for (size_t b = 0; b * DEC_TICKET_BLOCK < t->n; b++) {
        size_t used = t->n - b * DEC_TICKET_BLOCK < DEC_TICKET_BLOCK ? t->n - b * DEC_TICKET_BLOCK : DEC_TICKET_BLOCK;
        if (t->block[b] != NULL) {
            OPENSSL_cleanse(t->block[b], used * DEC_TICKET_INLINE);
        }
        free(t->block[b]);
    }
    free(t->block);
    /* entries from n on were never written: wiping them would only fault in pages calloc left untouched */
    OPENSSL_cleanse(t->e, t->n * sizeof(*t->e));
    free(t->e);
    free(t->slot);
    free(t);
}

size_t msp_ets_tickets_count(const msp_ets_tickets_t *t)
{
    return t != NULL ? t->n : 0;
}

/* FNV-1a over 64-bit words (tickets are ~200 bytes: a multiply per byte showed): a filter before memcmp. */
static uint32_t ticket_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ull;
    }
    for (; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return (uint32_t)(h ^ h >> 32);
}

/* Where entry x keeps a ticket of len bytes: its block slot (the block made now if need be) or an allocation. */
static uint8_t *ticket_storage(msp_ets_tickets_t *t, uint32_t x, size_t len, int *own)
{
    *own = len > DEC_TICKET_INLINE;
    if (*own) {
        return malloc(len);
    }
    uint8_t **b = &t->block[x / DEC_TICKET_BLOCK];
    if (*b == NULL) {
        *b = malloc((size_t)DEC_TICKET_BLOCK * DEC_TICKET_INLINE);
    }
    return *b != NULL ? *b + (size_t)(x % DEC_TICKET_BLOCK) * DEC_TICKET_INLINE : NULL;
}

/* The slot holding the ticket, or the empty slot where it would go. */
static size_t find_slot(const msp_ets_tickets_t *t, const uint8_t *ticket, size_t len, uint32_t h)
{
    size_t i = h & t->mask;
    while (t->slot[i] != 0) {
        const dec_ticket_t *e = &t->e[t->slot[i] - 1];
        if (e->hash == h && e->ticket_len == len && memcmp(e->ticket, ticket, len) == 0) {
            break;
        }
        i = (i + 1) & t->mask;
    }
    return i;
}

/* Empties slot i and moves later entries of its probe run back, so no lookup stops early (no tombstones). */
static void slot_remove(msp_ets_tickets_t *t, size_t i)
{
    t->slot[i] = 0;
    for (size_t j = (i + 1) & t->mask; t->slot[j] != 0; j = (j + 1) & t->mask) {
        size_t home = t->e[t->slot[j] - 1].hash & t->mask;
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? home > i && home <= j : home > i || home <= j;
        if (!stays) {
            t->slot[i] = t->slot[j];
            t->slot[j] = 0;
            i = j;
        }
    }
}

static void lru_unlink(msp_ets_tickets_t *t, uint32_t x)
{
    dec_ticket_t *e = &t->e[x];
    if (e->newer != DEC_NONE) {
        t->e[e->newer].older = e->older;
    } else {
        t->newest = e->older;
    }
    if (e->older != DEC_NONE) {
        t->e[e->older].newer = e->newer;
    } else {
        t->oldest = e->newer;
    }
}

static void lru_push(msp_ets_tickets_t *t, uint32_t x)
{
    dec_ticket_t *e = &t->e[x];
    e->newer = DEC_NONE;
    e->older = t->newest;
    if (t->newest != DEC_NONE) {
        t->e[t->newest].newer = x;
    } else {
        t->oldest = x;
    }
    t->newest = x;
}

int dec_tickets_put(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len, uint16_t suite, const uint8_t *psk,
                    size_t psk_len)
{
    return dec_tickets_put_from(t, ticket, len, suite, psk, psk_len, NULL);
}

/* How much of the issuer's info is kept with a ticket (info longer than the limit is not). */
static size_t issuer_info_len(const dec_issuer_t *from)
{
    return from != NULL && from->info != NULL && from->info_len <= MSP_ETS_DEC_MAX_ISSUER_INFO ? from->info_len : 0;
}

/* Entry x, its index slot i the empty one for a new ticket: takes a free entry or evicts the oldest. Returns the
 * slot to use (an eviction may move the empty slot). */
static size_t entry_take(msp_ets_tickets_t *t, uint32_t x, const uint8_t *ticket, size_t len, uint32_t h, size_t i)
{
    if (t->n < t->max) {
        t->n++;
        return i;
    }
    dec_ticket_t *old = &t->e[x];
    slot_remove(t, find_slot(t, old->ticket, old->ticket_len, old->hash));
    lru_unlink(t, x);
    if (old->own) {
        free(old->ticket);
    }
    return find_slot(t, ticket, len, h);
}

int dec_tickets_put_from(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len, uint16_t suite, const uint8_t *psk,
                         size_t psk_len, const dec_issuer_t *from)
{
    if (len == 0 || len > MSP_ETS_DEC_MAX_TICKET || psk_len > DEC_MAX_HASH) {
        return MSP_ERR_LIMIT;
    }
    uint32_t h = ticket_hash(ticket, len);
    size_t i = find_slot(t, ticket, len, h);
    size_t info_len = issuer_info_len(from);
    int known = t->slot[i] != 0;
    uint32_t x = known ? t->slot[i] - 1 : t->n < t->max ? (uint32_t)t->n : t->oldest;
    /* storage first: when there is none, nothing has changed yet (a known ticket's block slot is its own) */
    int own;
    uint8_t *copy = ticket_storage(t, x, len + info_len, &own);
    if (copy == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    dec_ticket_t *e = &t->e[x];
    if (known) {
        lru_unlink(t, x); /* the same bytes: the slot stays, the issuer may be new */
        if (e->own && e->ticket != copy) {
            free(e->ticket);
        }
    } else {
        i = entry_take(t, x, ticket, len, h, i);
        e->ticket_len = len;
        e->hash = h;
        t->slot[i] = x + 1;
    }
    memcpy(copy, ticket, len); /* may overwrite an evicted ticket in the same block slot: it is gone */
    if (info_len > 0) {
        memcpy(copy + len, from->info, info_len);
    }
    e->ticket = copy;
    e->own = own;
    e->tag = from != NULL ? from->tag : 0;
    e->info = info_len > 0 ? copy + len : NULL;
    e->info_len = info_len;
    e->suite = suite;
    memcpy(e->psk, psk, psk_len);
    e->psk_len = psk_len;
    lru_push(t, x);
    return MSP_OK;
}

const dec_ticket_t *dec_tickets_get(msp_ets_tickets_t *t, const uint8_t *ticket, size_t len)
{
    if (t == NULL) {
        return NULL;
    }
    size_t i = find_slot(t, ticket, len, ticket_hash(ticket, len));
    if (t->slot[i] == 0) {
        return NULL;
    }
    uint32_t x = t->slot[i] - 1;
    lru_unlink(t, x);
    lru_push(t, x);
    return &t->e[x];
}
