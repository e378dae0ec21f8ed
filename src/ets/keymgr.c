/*
 * The ETS key manager's key store (include/msp/ets_keymgr.h): keys made per
 * group at each rotation, kept in the caller's store as records, expired at
 * not_after and retired at not_after + retention. Time is a parameter.
 *
 * A record is text: three header lines, then the PKCS#8 PEM private key
 * (PEM readers skip the header lines, so a record is also a key file):
 *   msp-ets-group: x25519
 *   msp-ets-not-before: UNIX
 *   msp-ets-not-after: UNIX
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "keymgr.h"
#include "msp/ets.h"

#define DEFAULT_ROTATE 86400
#define DEFAULT_ACCESS "middleboxes authorised by the operator of this key manager"
#define MAX_KEY_TIME (INT64_C(1) << 40) /* times in records: far beyond any real date, far from overflow */

static const unsigned GROUPS[2] = {MSP_ETS_KEYMGR_X25519, MSP_ETS_KEYMGR_P256};

const char *keymgr_group_name(unsigned group)
{
    return group == MSP_ETS_KEYMGR_X25519 ? "x25519" : "p256";
}

int keymgr_findable(const msp_ets_keymgr_t *km, const km_key_t *k, int64_t now)
{
    return now < k->not_after + km->retention;
}

const km_key_t *keymgr_current(const msp_ets_keymgr_t *km, unsigned group, int64_t now)
{
    const km_key_t *best = NULL;
    for (size_t i = 0; i < km->n_keys; i++) {
        const km_key_t *k = &km->keys[i];
        if (k->group == group && k->not_before <= now && now < k->not_after &&
            (best == NULL || k->not_before >= best->not_before)) {
            best = k;
        }
    }
    return best;
}

static void emit(const msp_ets_keymgr_t *km, msp_ets_keymgr_event_kind_t kind, const km_key_t *k, const char *name)
{
    if (km->on_event == NULL) {
        return;
    }
    msp_ets_keymgr_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.name = name;
    if (k != NULL) {
        ev.group = keymgr_group_name(k->group);
        memcpy(ev.fingerprint, k->fp, sizeof(ev.fingerprint));
        ev.not_before = k->not_before;
        ev.not_after = k->not_after;
    }
    km->on_event(km->event_user, &ev);
}

static int fingerprint_of(EVP_PKEY *key, uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    uint8_t share[133];
    size_t n = 0;
    return msp_ets_key_share(key, share, sizeof(share), &n) == MSP_OK ? msp_ets_fingerprint(share, n, fp)
                                                                      : MSP_ERR_ARGUMENT;
}

static void record_name(const km_key_t *k, char name[MSP_ETS_KEYMGR_MAX_NAME])
{
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    msp_hex(fp, k->fp, sizeof(k->fp));
    snprintf(name, MSP_ETS_KEYMGR_MAX_NAME, "%s-%s.pem", keymgr_group_name(k->group), fp);
}

static int record_encode(const km_key_t *k, msp_buf_t *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL;
    int ok = b != NULL && PEM_write_bio_PrivateKey(b, k->key, NULL, NULL, 0, NULL, NULL) == 1;
    long n = ok ? BIO_get_mem_data(b, &pem) : 0;
    ok = ok && n > 0 &&
         msp_buf_printf(out, "msp-ets-group: %s\nmsp-ets-not-before: %lld\nmsp-ets-not-after: %lld\n",
                        keymgr_group_name(k->group), (long long)k->not_before, (long long)k->not_after) == MSP_OK &&
         msp_buf_put(out, pem, (size_t)n) == MSP_OK;
    BIO_free(b);
    ERR_clear_error();
    return ok ? MSP_OK : MSP_ERR_NO_MEMORY;
}

static int header_value(const char *text, const char *field, long long *v)
{
    const char *p = strstr(text, field);
    char *end = NULL;
    if (p == NULL) {
        return 0;
    }
    *v = strtoll(p + strlen(field), &end, 10);
    return end != p + strlen(field) && (*end == '\n' || *end == '\r');
}

/* A record back into a key; 0 when it is not one. */
static int record_decode(const uint8_t *data, size_t len, km_key_t *k)
{
    char text[MSP_ETS_KEYMGR_MAX_RECORD + 1];
    long long nb = 0, na = 0;
    if (data == NULL || len == 0 || len > MSP_ETS_KEYMGR_MAX_RECORD || memchr(data, '\0', len) != NULL) {
        return 0;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    if (!header_value(text, "msp-ets-not-before: ", &nb) || !header_value(text, "msp-ets-not-after: ", &na) || nb < 0 ||
        na < nb || na > MAX_KEY_TIME) {
        return 0;
    }
    BIO *b = BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    uint16_t id = key != NULL ? msp_ets_kp_group_id(key) : 0;
    if (id == 0 || fingerprint_of(key, k->fp) != MSP_OK) {
        EVP_PKEY_free(key);
        return 0;
    }
    k->key = key;
    k->group = id == 0x001d ? MSP_ETS_KEYMGR_X25519 : MSP_ETS_KEYMGR_P256;
    k->not_before = nb;
    k->not_after = na;
    return 1;
}

static int load_one(void *ctx, const char *name, const uint8_t *data, size_t len)
{
    msp_ets_keymgr_t *km = ctx;
    km_key_t k;
    if (!record_decode(data, len, &k)) {
        emit(km, MSP_ETS_KEYMGR_SKIPPED, NULL, name);
        return MSP_OK;
    }
    if (km->n_keys == km->max_keys) {
        EVP_PKEY_free(k.key);
        return MSP_ERR_LIMIT;
    }
    km->keys[km->n_keys++] = k;
    return MSP_OK;
}

static int check_cfg(const msp_ets_keymgr_cfg_t *cfg)
{
    const msp_ets_keymgr_store_t *s = cfg->store;
    int times_ok = cfg->rotate >= 0 && cfg->rotate <= MSP_ETS_KEYMGR_MAX_TIME && cfg->lifetime >= 0 &&
                   cfg->lifetime <= MSP_ETS_KEYMGR_MAX_TIME && cfg->retention >= 0 &&
                   cfg->retention <= MSP_ETS_KEYMGR_MAX_TIME;
    int groups_ok = cfg->groups != 0 && (cfg->groups & ~(MSP_ETS_KEYMGR_X25519 | MSP_ETS_KEYMGR_P256)) == 0;
    int store_ok = s != NULL && s->save != NULL && s->remove != NULL && s->list != NULL;
    int ca_ok = (cfg->ca_cert == NULL) == (cfg->ca_key == NULL) &&
                (cfg->ca_cert == NULL || X509_check_private_key(cfg->ca_cert, cfg->ca_key) == 1);
    int access_ok = cfg->access == NULL || strlen(cfg->access) <= MSP_ETS_MAX_ACCESS;
    ERR_clear_error();
    return times_ok && groups_ok && store_ok && ca_ok && access_ok && cfg->max_keys <= MSP_ETS_KEYMGR_MAX_KEYS
               ? MSP_OK
               : MSP_ERR_ARGUMENT;
}

int msp_ets_keymgr_new(const msp_ets_keymgr_cfg_t *cfg, msp_ets_keymgr_t **out)
{
    *out = NULL;
    if (cfg == NULL || check_cfg(cfg) != MSP_OK) {
        return MSP_ERR_ARGUMENT;
    }
    msp_ets_keymgr_t *km = calloc(1, sizeof(*km));
    if (km == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    km->groups = cfg->groups;
    km->rotate = cfg->rotate ? cfg->rotate : DEFAULT_ROTATE;
    km->lifetime = cfg->lifetime ? cfg->lifetime : 2 * km->rotate;
    km->retention = cfg->retention ? cfg->retention : km->lifetime;
    km->max_keys = cfg->max_keys ? cfg->max_keys : MSP_ETS_KEYMGR_MAX_KEYS;
    km->store = *cfg->store;
    km->on_event = cfg->on_event;
    km->event_user = cfg->event_user;
    km->keys = calloc(km->max_keys, sizeof(*km->keys));
    km->access = strdup(cfg->access != NULL ? cfg->access : DEFAULT_ACCESS);
    if (km->keys == NULL || km->access == NULL) {
        msp_ets_keymgr_free(km);
        return MSP_ERR_NO_MEMORY;
    }
    if (cfg->ca_cert != NULL) {
        X509_up_ref(cfg->ca_cert);
        EVP_PKEY_up_ref(cfg->ca_key);
        km->ca_cert = cfg->ca_cert;
        km->ca_key = cfg->ca_key;
    }
    int ret = km->store.list(km->store.user, load_one, km);
    if (ret != MSP_OK) {
        msp_ets_keymgr_free(km);
        return ret;
    }
    *out = km;
    return MSP_OK;
}

void msp_ets_keymgr_free(msp_ets_keymgr_t *km)
{
    if (km == NULL) {
        return;
    }
    for (size_t i = 0; i < km->n_keys; i++) {
        EVP_PKEY_free(km->keys[i].key);
    }
    free(km->keys);
    free(km->access);
    X509_free(km->ca_cert);
    EVP_PKEY_free(km->ca_key);
    free(km);
}

size_t msp_ets_keymgr_count(const msp_ets_keymgr_t *km)
{
    return km->n_keys;
}

static int new_key(msp_ets_keymgr_t *km, unsigned group, int64_t now, msp_error_t *err)
{
    if (km->n_keys == km->max_keys) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "the store holds %zu keys already", km->max_keys);
    }
    km_key_t *k = &km->keys[km->n_keys];
    k->key = group == MSP_ETS_KEYMGR_X25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519")
                                            : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k->group = group;
    k->not_before = now;
    k->not_after = now + km->lifetime;
    if (k->key == NULL || fingerprint_of(k->key, k->fp) != MSP_OK) {
        EVP_PKEY_free(k->key);
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "cannot make a %s key", keymgr_group_name(group));
    }
    char name[MSP_ETS_KEYMGR_MAX_NAME];
    msp_buf_t rec;
    msp_buf_init(&rec, MSP_ETS_KEYMGR_MAX_RECORD);
    record_name(k, name);
    int ret = record_encode(k, &rec);
    if (ret == MSP_OK) {
        ret = km->store.save(km->store.user, name, rec.base, rec.len);
    }
    OPENSSL_cleanse(rec.base, rec.len);
    msp_buf_free(&rec);
    if (ret != MSP_OK) {
        EVP_PKEY_free(k->key);
        return msp_error_set(err, ret, NULL, "cannot store the new %s key as %s", keymgr_group_name(group), name);
    }
    km->n_keys++;
    emit(km, MSP_ETS_KEYMGR_NEW_KEY, k, name);
    return MSP_OK;
}

/* Drops the keys past their retention whose record could be removed. */
static void retire(msp_ets_keymgr_t *km, int64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < km->n_keys; i++) {
        km_key_t *k = &km->keys[i];
        char name[MSP_ETS_KEYMGR_MAX_NAME];
        if (keymgr_findable(km, k, now)) {
            km->keys[j++] = *k;
            continue;
        }
        record_name(k, name);
        if (km->store.remove(km->store.user, name) != MSP_OK) {
            emit(km, MSP_ETS_KEYMGR_STORE_ERROR, k, name);
            km->keys[j++] = *k;
            continue;
        }
        emit(km, MSP_ETS_KEYMGR_RETIRED_KEY, k, name);
        EVP_PKEY_free(k->key);
    }
    km->n_keys = j;
}

static int64_t next_deadline(const msp_ets_keymgr_t *km, int64_t now)
{
    int64_t next = km->next_rotation;
    for (size_t i = 0; i < km->n_keys; i++) {
        int64_t end = km->keys[i].not_after + km->retention;
        /* a record whose removal failed is tried again in a second, not at once */
        end = end > now ? end : now + 1;
        next = end < next ? end : next;
    }
    return next;
}

int msp_ets_keymgr_tick(msp_ets_keymgr_t *km, int64_t now, msp_ets_keymgr_tick_t *out, msp_error_t *err)
{
    int ret = MSP_OK;
    out->rotated = 0;
    retire(km, now);
    if (km->next_rotation == 0 || now >= km->next_rotation) {
        for (size_t g = 0; ret == MSP_OK && g < 2; g++) {
            if (km->groups & GROUPS[g]) {
                ret = new_key(km, GROUPS[g], now, err);
            }
        }
        if (ret == MSP_OK) {
            km->next_rotation = now + km->rotate;
            out->rotated = 1;
        }
    }
    out->next = ret == MSP_OK ? next_deadline(km, now) : now + 1;
    return ret;
}
