/* The state an entity keeps for a TLMSP session, shared by its hops. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "tlmsp_shared.h"

int sess_init(sess_t *s, uint8_t self, msp_tlmsp_random_fn random, void *user)
{
    memset(s, 0, sizeof(*s));
    s->self = self;
    s->random = random;
    s->random_user = user;
    s->pool_used = NONCE_POOL;
    s->list = calloc(1, sess_list_size(0));
    s->keys = calloc(1, sizeof(*s->keys)); /* the zero entry; the rest at ChangeCipherSpec */
    s->cc = calloc(1, sizeof(*s->cc));
    s->sc = calloc(1, sizeof(*s->sc));
    if (s->list == NULL || s->keys == NULL || s->cc == NULL || s->sc == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    return msp_tlmsp_gcm_init(&s->g);
}

static void free_peers(sess_t *s)
{
    for (size_t i = 0; s->mb != NULL && i < s->list->n; i++) {
        free(s->mb[i].cert);
        EVP_PKEY_free(s->mb[i].pub);
        if (s->mb[i].confirm != NULL) {
            OPENSSL_clear_free(s->mb[i].confirm, sizeof(*s->mb[i].confirm));
        }
        EVP_MD_CTX_free(s->mb[i].t);
    }
    if (s->mb != NULL) {
        OPENSSL_cleanse(s->mb, s->list->n * sizeof(*s->mb));
    }
    free(s->mb);
    free(s->mb_to_server);
    free(s->mb_to_client);
    s->mb = NULL;
    s->mb_to_server = s->mb_to_client = NULL;
}

/* Entries of keys: the zero one, and once derived context 0 and every present context. */
static size_t nkeys(const sess_t *s)
{
    size_t n = 1;
    for (int c = 0; s->keyed && c < 256; c++) {
        n += c == 0 || s->ctx.present[c];
    }
    return n;
}

uint8_t *sess_scratch(sess_t *s, size_t need)
{
    if (s->scratch == NULL) {
        s->scratch = malloc(SCRATCH_LEN);
    }
    size_t n = need < SCRATCH_LEN ? need : SCRATCH_LEN;
    s->scratch_used = n > s->scratch_used ? n : s->scratch_used;
    return s->scratch;
}

void sess_scratch_drop(sess_t *s)
{
    if (s->scratch != NULL) {
        OPENSSL_clear_free(s->scratch, s->scratch_used); /* it held plaintext: only what was written, not 64 KiB */
        s->scratch = NULL;
        s->scratch_used = 0;
    }
}

void sess_handshake_done(sess_t *s)
{
    if (s->cc != NULL) {
        OPENSSL_clear_free(s->cc, sizeof(*s->cc));
        s->cc = NULL;
    }
    if (s->sc != NULL) {
        OPENSSL_clear_free(s->sc, sizeof(*s->sc));
        s->sc = NULL;
    }
    EVP_MD_CTX_free(s->t);
    s->t = NULL;
    for (size_t i = 0; s->mb != NULL && i < s->list->n; i++) {
        if (s->mb[i].confirm != NULL) {
            OPENSSL_clear_free(s->mb[i].confirm, sizeof(*s->mb[i].confirm));
            s->mb[i].confirm = NULL;
        }
        EVP_MD_CTX_free(s->mb[i].t);
        s->mb[i].t = NULL;
    }
}

void sess_free(sess_t *s)
{
    if (s->list != NULL) {
        free_peers(s);
    }
    free(s->list);
    free(s->addr_store);
    free(s->server_cert);
    EVP_PKEY_free(s->server_pub);
    EVP_PKEY_free(s->eph);
    EVP_PKEY_free(s->eph2);
    if (s->keys != NULL) {
        OPENSSL_clear_free(s->keys, nkeys(s) * sizeof(*s->keys));
    }
    free(s->purpose_store);
    sess_scratch_drop(s);
    if (s->cc != NULL) {
        OPENSSL_clear_free(s->cc, sizeof(*s->cc));
    }
    if (s->sc != NULL) {
        OPENSSL_clear_free(s->sc, sizeof(*s->sc));
    }
    EVP_MD_CTX_free(s->t);
    free(s->ch);
    free(s->sh);
    msp_tlmsp_gcm_free(&s->g);
    OPENSSL_cleanse(s, sizeof(*s));
}

void sess_random(sess_t *s, uint8_t *p, size_t n)
{
    s->random(s->random_user, p, n);
}

/* Nonce suffixes come from a 4 KB pool: one callback per record would cost as much as a small container's crypto
 * (style.md 5.7). */
void sess_nonce(sess_t *s, uint8_t nonce[12])
{
    if (s->pool_used + MSP_TLMSP_NONCE_SUFFIX_LEN > NONCE_POOL) {
        sess_random(s, s->pool, NONCE_POOL);
        s->pool_used = 0;
    }
    nonce[0] = s->self;
    memcpy(nonce + 1, s->pool + s->pool_used, MSP_TLMSP_NONCE_SUFFIX_LEN);
    s->pool_used += MSP_TLMSP_NONCE_SUFFIX_LEN;
}

int sess_dup(uint8_t **dst, size_t *dst_len, const uint8_t *p, size_t len)
{
    uint8_t *d = malloc(len > 0 ? len : 1);
    if (d == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    if (len > 0) {
        memcpy(d, p, len);
    }
    free(*dst);
    *dst = d;
    *dst_len = len;
    return MSP_OK;
}

/* Addresses point into the input they were parsed from; the session keeps its own copies in one block. */
static size_t list_address_bytes(const msp_tlmsp_mbox_list_t *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        n += l->m[i].address.len;
    }
    return n;
}

static void copy_address(msp_tlmsp_address_t *a, uint8_t **pos)
{
    if (a->len > 0) {
        memcpy(*pos, a->bytes, a->len);
    }
    a->bytes = *pos;
    *pos += a->len;
}

static int store_all(sess_t *s, const msp_tlmsp_address_t *client, const msp_tlmsp_address_t *server)
{
    size_t total = client->len + server->len + list_address_bytes(s->list);
    uint8_t *store = malloc(total > 0 ? total : 1), *pos = store;
    if (store == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    s->client_address = *client;
    s->server_address = *server;
    copy_address(&s->client_address, &pos);
    copy_address(&s->server_address, &pos);
    for (size_t i = 0; i < s->list->n; i++) {
        copy_address(&s->list->m[i].address, &pos);
    }
    free(s->addr_store);
    s->addr_store = store;
    return MSP_OK;
}

size_t sess_list_size(size_t n)
{
    return offsetof(msp_tlmsp_mbox_list_t, m) + n * sizeof(msp_tlmsp_mbox_info_t);
}

/* A copy of a list that owns its address bytes (in *store), independent of any session; only its n entries. */
int sess_list_dup(const msp_tlmsp_mbox_list_t *in, msp_tlmsp_mbox_list_t **out, uint8_t **store)
{
    size_t total = list_address_bytes(in);
    *out = malloc(sess_list_size(in->n));
    *store = malloc(total > 0 ? total : 1);
    if (*out == NULL || *store == NULL) {
        free(*out);
        free(*store);
        *out = NULL;
        *store = NULL;
        return MSP_ERR_NO_MEMORY;
    }
    memcpy(*out, in, sess_list_size(in->n));
    uint8_t *pos = *store;
    for (size_t i = 0; i < in->n; i++) {
        copy_address(&(*out)->m[i].address, &pos);
    }
    return MSP_OK;
}

int sess_store_addresses(sess_t *s, const msp_tlmsp_address_t *client, const msp_tlmsp_address_t *server)
{
    msp_tlmsp_address_t c = *client, v = *server;
    return store_all(s, &c, &v);
}

int sess_set_list(sess_t *s, const msp_tlmsp_mbox_list_t *list)
{
    if (list->n > MSP_TLMSP_MAX_MIDDLEBOXES) {
        return MSP_ERR_LIMIT;
    }
    free_peers(s);
    msp_tlmsp_mbox_list_t *copy = malloc(sess_list_size(list->n));
    if (copy == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    memcpy(copy, list, sess_list_size(list->n)); /* list may be s->list itself */
    free(s->list);
    s->list = copy;
    size_t n = list->n > 0 ? list->n : 1;
    s->mb = calloc(n, sizeof(*s->mb));
    s->mb_to_server = calloc(n, 32);
    s->mb_to_client = calloc(n, 32);
    if (s->mb == NULL || s->mb_to_server == NULL || s->mb_to_client == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    return store_all(s, &s->client_address, &s->server_address);
}

int sess_set_contexts(sess_t *s, const msp_tlmsp_context_list_t *c)
{
    msp_tlmsp_context_list_t copy = *c;
    size_t total = 0, off = 0;
    for (int i = 1; i < 256; i++) {
        total += c->purpose_len[i];
    }
    uint8_t *store = malloc(total > 0 ? total : 1);
    if (store == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    for (int i = 1; i < 256; i++) {
        if (copy.purpose_len[i] > 0) {
            memcpy(store + off, c->purpose[i], c->purpose_len[i]);
            copy.purpose[i] = store + off;
            off += c->purpose_len[i];
        }
    }
    free(s->purpose_store);
    s->purpose_store = store;
    copy.present[0] = 0; /* context 0 is implicit (1.7) */
    s->ctx = copy;
    memcpy(s->present, copy.present, sizeof(s->present));
    s->present[0] = 1;
    return MSP_OK;
}

int sess_same_address(const msp_tlmsp_address_t *a, const msp_tlmsp_address_t *b)
{
    return a->type == b->type && a->len == b->len && (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
}

int sess_mbox_index(const sess_t *s, uint8_t id)
{
    for (size_t i = 0; i < s->list->n; i++) {
        if (s->list->m[i].id == id) {
            return (int)i;
        }
    }
    return -1;
}

/* MSP_TLMSP_ACCESS_* of an entity for a context: endpoints everything, every middlebox all of context 0 (1.7). */
uint8_t sess_access(const sess_t *s, uint8_t entity, uint8_t ctx)
{
    if (entity == MSP_TLMSP_ID_CLIENT || entity == MSP_TLMSP_ID_SERVER || ctx == 0) {
        return MSP_TLMSP_ACCESS_RW;
    }
    int i = sess_mbox_index(s, entity);
    return i < 0 ? MSP_TLMSP_ACCESS_NONE : s->list->m[i].access[ctx];
}

/*
 * The leaf's public key; verified against the trust store when there is one (the reference never verifies, 9.14).
 * The certificate comes parsed from the shared cache when the process saw these bytes before.
 */
int sess_cert_key(sess_t *s, const uint8_t *der, size_t len, EVP_PKEY **pub)
{
    X509 *x = NULL;
    int ret = msp_tlmsp_shared_x509(s->shared, der, len, &x);
    if (ret != MSP_OK) {
        return ret; /* not one certificate: refused before anything else, *pub left alone */
    }
    if (s->trust != NULL) {
        X509_STORE_CTX *v = X509_STORE_CTX_new();
        ret = v != NULL && X509_STORE_CTX_init(v, s->trust, x, NULL) == 1 && X509_verify_cert(v) == 1
                  ? MSP_OK
                  : MSP_ALERT_BAD_CERTIFICATE;
        X509_STORE_CTX_free(v);
    }
    EVP_PKEY *k = ret == MSP_OK ? X509_get_pubkey(x) : NULL;
    if (ret == MSP_OK && k == NULL) {
        ret = MSP_ALERT_BAD_CERTIFICATE;
    }
    X509_free(x);
    EVP_PKEY_free(*pub);
    *pub = k;
    return ret;
}

/* 6.3: middlebox leaves in list order, then the server's; no client certificates. */
int sess_idlist(sess_t *s)
{
    msp_iov_t v[MSP_TLMSP_MAX_MIDDLEBOXES + 1];
    size_t n = 0;
    for (size_t i = 0; i < s->list->n; i++) {
        if (s->mb[i].cert == NULL) {
            return MSP_ALERT_UNEXPECTED_MESSAGE; /* a middlebox that never sent its certificate */
        }
        v[n++] = (msp_iov_t){s->mb[i].cert, s->mb[i].cert_len};
    }
    v[n++] = (msp_iov_t){s->server_cert, s->server_cert_len};
    return msp_tlmsp_idlist_hash(v, n, s->idlist);
}

/* 6.8 at ChangeCipherSpec: every present context, context 0, and the synch keys. A middlebox derives zeros-based keys
 * for contexts it cannot access, as the reference does; they are never used. */
int sess_derive_context_keys(sess_t *s)
{
    if (s->keyed) {
        return MSP_OK;
    }
    msp_tlmsp_randoms_t r = {s->client_random, s->server_random, (const uint8_t(*)[32])s->mb_to_server,
                             (const uint8_t(*)[32])s->mb_to_client, s->list->n};
    int ret = msp_tlmsp_derive_synch_keys(s->cc, s->sc, &r, s->synch[DIR_C2S], s->synch[DIR_S2C]);
    s->keyed = 1; /* nkeys() counts the entries to come */
    size_t n = nkeys(s), k = 1;
    s->keyed = 0;
    msp_tlmsp_context_keys_t *keys = ret == MSP_OK ? calloc(n, sizeof(*keys)) : NULL;
    if (ret == MSP_OK && keys == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    for (int c = 0; c < 256 && ret == MSP_OK; c++) {
        if (c == 0 || s->ctx.present[c]) {
            s->key_at[c] = (uint16_t)k;
            ret = msp_tlmsp_derive_context_keys((uint8_t)c, s->cc, s->sc, &r, &keys[k++]);
        }
    }
    if (ret != MSP_OK) {
        OPENSSL_clear_free(keys, n * sizeof(*keys));
        memset(s->key_at, 0, sizeof(s->key_at));
        return ret;
    }
    OPENSSL_clear_free(s->keys, sizeof(*s->keys));
    s->keys = keys;
    s->keyed = 1;
    return ret;
}

int sess_hash_add(EVP_MD_CTX *t, const uint8_t *p, size_t n)
{
    return EVP_DigestUpdate(t, p, n) == 1 ? MSP_OK : MSP_ALERT_INTERNAL_ERROR;
}

/* The hash of the transcript so far plus extra, leaving t as it was. */
int sess_hash_peek(EVP_MD_CTX *t, const uint8_t *extra, size_t extra_len, uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_MD_CTX_copy_ex(c, t) == 1 && (extra_len == 0 || EVP_DigestUpdate(c, extra, extra_len)) &&
             EVP_DigestFinal_ex(c, out, NULL) == 1;
    EVP_MD_CTX_free(c);
    return ok ? MSP_OK : MSP_ALERT_INTERNAL_ERROR;
}

static EVP_MD_CTX *new_hash(void)
{
    EVP_MD_CTX *t = EVP_MD_CTX_new();
    if (t != NULL && EVP_DigestInit_ex(t, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(t);
        t = NULL;
    }
    return t;
}

/* The transcripts start once the list is final, with the buffered ClientHello and ServerHello (6.11). */
int sess_transcripts_start(sess_t *s, int per_mbox)
{
    s->t = new_hash();
    MSP_ENSURE(s->t != NULL, MSP_ERR_NO_MEMORY);
    MSP_GUARD(sess_hash_add(s->t, s->ch, s->ch_len));
    MSP_GUARD(sess_hash_add(s->t, s->sh, s->sh_len));
    for (size_t i = 0; per_mbox && i < s->list->n; i++) {
        s->mb[i].t = new_hash();
        MSP_ENSURE(s->mb[i].t != NULL, MSP_ERR_NO_MEMORY);
        MSP_GUARD(sess_hash_add(s->mb[i].t, s->ch, s->ch_len));
        MSP_GUARD(sess_hash_add(s->mb[i].t, s->sh, s->sh_len));
    }
    return MSP_OK;
}

/* The pairwise key for a message src -> dst that this entity holds (6.5). */
int sess_pair_key(sess_t *s, uint8_t src, uint8_t dst, const uint8_t **key)
{
    const msp_tlmsp_key_block_t *kb = NULL;
    uint8_t other = src == s->self ? dst : src;
    if (s->self == MSP_TLMSP_ID_CLIENT || s->self == MSP_TLMSP_ID_SERVER) {
        int i = sess_mbox_index(s, other);
        if (other == MSP_TLMSP_ID_CLIENT || other == MSP_TLMSP_ID_SERVER) {
            kb = &s->kb_cs;
        } else if (i >= 0) {
            kb = &s->mb[i].kb;
        }
    } else if (other == MSP_TLMSP_ID_CLIENT) {
        kb = &s->kb_c;
    } else if (other == MSP_TLMSP_ID_SERVER) {
        kb = &s->kb_s;
    }
    return kb == NULL ? MSP_ALERT_ILLEGAL_PARAMETER : msp_tlmsp_pair_key(kb, src, dst, key);
}
