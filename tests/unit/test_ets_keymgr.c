/*
 * The ETS key manager core (include/msp/ets_keymgr.h) on an in-memory store
 * and a clock passed in: rotation (a key per group, the newest current one
 * served), expiry (404 saying so, still found by fingerprint), retention
 * enforced at lookup without a tick and the record removed at the next,
 * refusal of unknown groups and fingerprints and of malformed queries,
 * storage callbacks that fail (list, save, remove), records that are not
 * keys, reloading a store, the limits (keys on record, query length, certs
 * pairs), certificates issued for certs= with the same extensions as
 * msp_ets_cert_issue makes for `msp ets cert`, and the directory store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "msp/error.h"
#include "msp/ets.h"
#include "msp/ets_cert.h"
#include "msp/ets_keymgr.h"
#include "msp/ets_keypkg.h"

#define T0 1700000000

/* ---- an in-memory store whose callbacks can be made to fail ---- */

#define MEM_MAX 16

typedef struct mem_store {
    char names[MEM_MAX][MSP_ETS_KEYMGR_MAX_NAME];
    uint8_t data[MEM_MAX][MSP_ETS_KEYMGR_MAX_RECORD];
    size_t lens[MEM_MAX];
    size_t n;
    int fail_save, fail_remove, fail_list;
    int saves, removes;
} mem_store_t;

static int mem_find(const mem_store_t *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int mem_save(void *user, const char *name, const uint8_t *data, size_t len)
{
    mem_store_t *m = user;
    if (m->fail_save) {
        return MSP_ERR_IO;
    }
    int i = mem_find(m, name);
    if (i < 0) {
        if (m->n == MEM_MAX || len > MSP_ETS_KEYMGR_MAX_RECORD) {
            return MSP_ERR_LIMIT;
        }
        i = (int)m->n++;
    }
    snprintf(m->names[i], sizeof(m->names[i]), "%s", name);
    memcpy(m->data[i], data, len);
    m->lens[i] = len;
    m->saves++;
    return MSP_OK;
}

static int mem_remove(void *user, const char *name)
{
    mem_store_t *m = user;
    if (m->fail_remove) {
        return MSP_ERR_IO;
    }
    int i = mem_find(m, name);
    if (i >= 0) {
        m->n--;
        memmove(m->names[i], m->names[m->n], sizeof(m->names[i]));
        memmove(m->data[i], m->data[m->n], m->lens[m->n]);
        m->lens[i] = m->lens[m->n];
        m->removes++;
    }
    return MSP_OK;
}

static int mem_list(void *user, int (*each)(void *, const char *, const uint8_t *, size_t), void *ctx)
{
    mem_store_t *m = user;
    if (m->fail_list) {
        return MSP_ERR_IO;
    }
    for (size_t i = 0; i < m->n; i++) {
        int r = each(ctx, m->names[i], m->data[i], m->lens[i]);
        if (r != MSP_OK) {
            return r;
        }
    }
    return MSP_OK;
}

/* ---- fixture: the store, the events seen, a config ---- */

typedef struct fixture {
    mem_store_t mem;
    msp_ets_keymgr_store_t store;
    msp_ets_keymgr_cfg_t cfg;
    msp_ets_keymgr_t *km;
    int events[4];
    msp_ets_keymgr_event_t last[4];
    msp_buf_t out;
    msp_error_t err;
} fixture_t;

static void on_event(void *user, const msp_ets_keymgr_event_t *ev)
{
    fixture_t *f = user;
    f->events[ev->kind]++;
    f->last[ev->kind] = *ev;
    f->last[ev->kind].name = NULL; /* valid during the callback only */
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->store = (msp_ets_keymgr_store_t){&f->mem, mem_save, mem_remove, mem_list};
    f->cfg = (msp_ets_keymgr_cfg_t){.groups = MSP_ETS_KEYMGR_X25519 | MSP_ETS_KEYMGR_P256,
                                    .rotate = 10,
                                    .lifetime = 20,
                                    .retention = 5,
                                    .store = &f->store,
                                    .on_event = on_event,
                                    .event_user = f};
    msp_buf_init(&f->out, MSP_ETS_KP_MAX_SIZE);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    msp_ets_keymgr_free(f->km);
    msp_buf_free(&f->out);
    free(f);
    return 0;
}

static void start(fixture_t *f)
{
    assert_int_equal(msp_ets_keymgr_new(&f->cfg, &f->km), MSP_OK);
}

static msp_ets_keymgr_tick_t tick(fixture_t *f, int64_t now, int want)
{
    msp_ets_keymgr_tick_t t;
    msp_error_clear(&f->err);
    assert_int_equal(msp_ets_keymgr_tick(f->km, now, &t, &f->err), want);
    return t;
}

/* GET with query at now: the code; on MSP_OK the package decoded into pkg (the caller frees it). */
static int get(fixture_t *f, const char *query, int64_t now, msp_ets_keypkg_t *pkg)
{
    f->out.len = 0;
    msp_error_clear(&f->err);
    int r = msp_ets_keymgr_get(f->km, query, now, &f->out, &f->err);
    if (r == MSP_OK) {
        msp_error_t err;
        assert_int_equal(msp_ets_keypkg_decode(f->out.base, f->out.len, pkg, &err), MSP_OK);
    } else {
        assert_true(strlen(f->err.detail) > 0);
    }
    return r;
}

static void fp_hex(const uint8_t fp[MSP_ETS_FINGERPRINT_LEN], char out[2 * MSP_ETS_FINGERPRINT_LEN + 1])
{
    msp_hex(out, fp, MSP_ETS_FINGERPRINT_LEN);
}

/* ---- tests ---- */

static void test_rotation(void **state)
{
    fixture_t *f = *state;
    start(f);
    assert_int_equal(msp_ets_keymgr_count(f->km), 0);
    msp_ets_keymgr_tick_t t = tick(f, T0, MSP_OK);
    assert_true(t.rotated);
    assert_int_equal(t.next, T0 + 10);
    assert_int_equal(msp_ets_keymgr_count(f->km), 2);
    assert_int_equal(f->mem.n, 2);
    assert_int_equal(f->events[MSP_ETS_KEYMGR_NEW_KEY], 2);
    assert_int_equal(f->last[MSP_ETS_KEYMGR_NEW_KEY].not_after, T0 + 20);
    /* not due: nothing made */
    t = tick(f, T0 + 9, MSP_OK);
    assert_false(t.rotated);
    assert_int_equal(msp_ets_keymgr_count(f->km), 2);
    /* both groups served; the key's validity as configured */
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, "groups=0x001d,0x0017", T0 + 1, &pkg), MSP_OK);
    assert_int_equal(pkg.n_static, 2);
    assert_int_equal(pkg.n_signer, 0);
    assert_int_equal(pkg.statics[0].not_before, T0);
    assert_int_equal(pkg.statics[0].not_after, T0 + 20);
    assert_int_equal(msp_ets_kp_group_id(pkg.statics[0].key), 0x001d);
    assert_int_equal(msp_ets_kp_group_id(pkg.statics[1].key), 0x0017);
    msp_ets_keypkg_free(&pkg);
    /* the rotation: new keys, and the newest valid key is the current one */
    t = tick(f, T0 + 10, MSP_OK);
    assert_true(t.rotated);
    assert_int_equal(msp_ets_keymgr_count(f->km), 4);
    assert_int_equal(get(f, "groups=0x001d", T0 + 11, &pkg), MSP_OK);
    assert_int_equal(pkg.n_static, 1);
    assert_int_equal(pkg.statics[0].not_before, T0 + 10);
    msp_ets_keypkg_free(&pkg);
    /* the push package: the current key of each group */
    f->out.len = 0;
    assert_int_equal(msp_ets_keymgr_current(f->km, T0 + 11, &f->out, &f->err), MSP_OK);
    assert_int_equal(msp_ets_keypkg_decode(f->out.base, f->out.len, &pkg, &f->err), MSP_OK);
    assert_int_equal(pkg.n_static, 2);
    assert_int_equal(pkg.statics[1].not_before, T0 + 10);
    msp_ets_keypkg_free(&pkg);
}

static void test_expiry(void **state)
{
    fixture_t *f = *state;
    f->cfg.groups = MSP_ETS_KEYMGR_X25519;
    f->cfg.rotate = 4;
    f->cfg.lifetime = 1;
    start(f);
    tick(f, T0, MSP_OK);
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1], q[64];
    fp_hex(f->last[MSP_ETS_KEYMGR_NEW_KEY].fingerprint, fp);
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, "groups=0x001d", T0, &pkg), MSP_OK);
    msp_ets_keypkg_free(&pkg);
    /* at not_after no key is current: 404 that says the key expired */
    assert_int_equal(get(f, "groups=0x001d", T0 + 1, &pkg), MSP_ERR_NOT_FOUND);
    assert_non_null(strstr(f->err.detail, "expired"));
    assert_int_equal(msp_ets_keymgr_http_status(MSP_ERR_NOT_FOUND), 404);
    /* ... while the fingerprint still finds it */
    snprintf(q, sizeof(q), "fingerprints=%s", fp);
    assert_int_equal(get(f, q, T0 + 1, &pkg), MSP_OK);
    assert_int_equal(pkg.n_static, 1);
    assert_int_equal(pkg.statics[0].not_after, T0 + 1);
    msp_ets_keypkg_free(&pkg);
    /* a group the manager does not serve is another 404 */
    assert_int_equal(get(f, "groups=0x0017", T0, &pkg), MSP_ERR_NOT_FOUND);
    assert_non_null(strstr(f->err.detail, "none of the requested groups is supported"));
    assert_int_equal(msp_ets_keymgr_current(f->km, T0 + 1, &f->out, &f->err), MSP_ERR_NOT_FOUND);
}

static void test_retention_at_lookup(void **state)
{
    fixture_t *f = *state;
    f->cfg.groups = MSP_ETS_KEYMGR_X25519;
    f->cfg.rotate = 100;
    f->cfg.lifetime = 1;
    f->cfg.retention = 5;
    start(f);
    msp_ets_keymgr_tick_t t = tick(f, T0, MSP_OK);
    /* the next deadline is the retirement, not the rotation */
    assert_int_equal(t.next, T0 + 6);
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1], q[64];
    fp_hex(f->last[MSP_ETS_KEYMGR_NEW_KEY].fingerprint, fp);
    snprintf(q, sizeof(q), "fingerprints=%s", fp);
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, q, T0 + 5, &pkg), MSP_OK);
    msp_ets_keypkg_free(&pkg);
    /* at not_after + retention it is gone, with no tick in between */
    assert_int_equal(get(f, q, T0 + 6, &pkg), MSP_ERR_NOT_FOUND);
    assert_string_equal(f->err.detail, "no key on record with these fingerprints");
    assert_int_equal(f->mem.n, 1);
    /* the tick removes its record and says so */
    t = tick(f, T0 + 6, MSP_OK);
    assert_false(t.rotated);
    assert_int_equal(f->mem.n, 0);
    assert_int_equal(msp_ets_keymgr_count(f->km), 0);
    assert_int_equal(f->events[MSP_ETS_KEYMGR_RETIRED_KEY], 1);
    assert_string_equal(f->last[MSP_ETS_KEYMGR_RETIRED_KEY].group, "x25519");
    assert_int_equal(t.next, T0 + 100);
}

static void test_refusals(void **state)
{
    fixture_t *f = *state;
    start(f);
    tick(f, T0, MSP_OK);
    msp_ets_keypkg_t pkg;
    static const struct {
        const char *query;
        int code;
    } cases[] = {
        {"fingerprints=00112233445566778899", MSP_ERR_NOT_FOUND},
        {"fingerprints=", MSP_ERR_ARGUMENT},
        {"fingerprints=nothex", MSP_ERR_SYNTAX},
        {"fingerprints=001122334455667788zz", MSP_ERR_SYNTAX},
        {"fingerprints=00112233445566778899,", MSP_ERR_SYNTAX},
        {"groups=0x001d&fingerprints=00112233445566778899", MSP_ERR_SYNTAX},
        {"groups=", MSP_ERR_SYNTAX},
        {"", MSP_ERR_SYNTAX},
        {"other=1", MSP_ERR_SYNTAX},
        {"groups=0x0018", MSP_ERR_NOT_FOUND},
        {"groups=x25519", MSP_ERR_SYNTAX},
        {"groups=0x001d%zz", MSP_ERR_SYNTAX},
        {"groups=0x001d%00", MSP_ERR_SYNTAX},
        {"groups=0x001d&context=not_dns!", MSP_ERR_ARGUMENT},
        {"groups=0x001d&certs=0x0403:0x0403", MSP_ERR_ARGUMENT}, /* no CA */
        {"groups=0x001d&certs=0403", MSP_ERR_SYNTAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int r = get(f, cases[i].query, T0 + 1, &pkg);
        if (r != cases[i].code) {
            fail_msg("%s: %s (%s), expected %s", cases[i].query, msp_error_name(r), f->err.detail,
                     msp_error_name(cases[i].code));
        }
        assert_int_equal(msp_ets_keymgr_http_status(r), cases[i].code == MSP_ERR_NOT_FOUND ? 404 : 400);
    }
    /* percent-encoding is decoded: %2C is the comma */
    assert_int_equal(get(f, "groups=0x001d%2C0x0017", T0 + 1, &pkg), MSP_OK);
    assert_int_equal(pkg.n_static, 2);
    msp_ets_keypkg_free(&pkg);
    assert_int_equal(msp_ets_keymgr_http_status(MSP_OK), 200);
    assert_int_equal(msp_ets_keymgr_http_status(MSP_ERR_NO_MEMORY), 500);
    assert_int_equal(msp_ets_keymgr_http_status(MSP_ALERT_INTERNAL_ERROR), 500);
}

static void test_store_failures(void **state)
{
    fixture_t *f = *state;
    /* listing fails: no manager */
    f->mem.fail_list = 1;
    assert_int_equal(msp_ets_keymgr_new(&f->cfg, &f->km), MSP_ERR_IO);
    assert_null(f->km);
    f->mem.fail_list = 0;
    start(f);
    /* saving fails: no key on record, the tick says why and asks to be called again soon */
    f->mem.fail_save = 1;
    msp_ets_keymgr_tick_t t = tick(f, T0, MSP_ERR_IO);
    assert_false(t.rotated);
    assert_int_equal(t.next, T0 + 1);
    assert_int_equal(msp_ets_keymgr_count(f->km), 0);
    assert_true(strlen(f->err.detail) > 0);
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, "groups=0x001d", T0, &pkg), MSP_ERR_NOT_FOUND);
    /* it works again: the rotation happens at the next tick */
    f->mem.fail_save = 0;
    t = tick(f, T0 + 1, MSP_OK);
    assert_true(t.rotated);
    assert_int_equal(msp_ets_keymgr_count(f->km), 2);
    /* removing fails: the key is not findable any more, its record stays and is tried again */
    f->mem.fail_remove = 1;
    tick(f, T0 + 26, MSP_OK); /* past not_after + retention of the first keys; a rotation too */
    assert_int_equal(f->events[MSP_ETS_KEYMGR_STORE_ERROR], 2);
    assert_int_equal(f->events[MSP_ETS_KEYMGR_RETIRED_KEY], 0);
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1], q[64];
    fp_hex(f->last[MSP_ETS_KEYMGR_STORE_ERROR].fingerprint, fp);
    snprintf(q, sizeof(q), "fingerprints=%s", fp);
    assert_int_equal(get(f, q, T0 + 26, &pkg), MSP_ERR_NOT_FOUND);
    f->mem.fail_remove = 0;
    t = tick(f, T0 + 27, MSP_OK);
    assert_int_equal(f->events[MSP_ETS_KEYMGR_RETIRED_KEY], 2);
    assert_int_equal(f->mem.n, 2);
}

static void test_reload_and_skip(void **state)
{
    fixture_t *f = *state;
    start(f);
    tick(f, T0, MSP_OK);
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
    memcpy(fp, f->last[MSP_ETS_KEYMGR_NEW_KEY].fingerprint, sizeof(fp));
    msp_ets_keymgr_free(f->km);
    f->km = NULL;
    /* records that are not key records are skipped, with an event */
    const char *junk[] = {"not a record", "msp-ets-not-before: 1\nmsp-ets-not-after: 0\n", ""};
    for (size_t i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "junk%zu.pem", i);
        assert_int_equal(mem_save(&f->mem, name, (const uint8_t *)junk[i], strlen(junk[i])), MSP_OK);
    }
    start(f);
    assert_int_equal(f->events[MSP_ETS_KEYMGR_SKIPPED], 3);
    assert_int_equal(msp_ets_keymgr_count(f->km), 2);
    /* the reloaded keys keep fingerprint and validity */
    char hex[2 * MSP_ETS_FINGERPRINT_LEN + 1], q[64];
    fp_hex(fp, hex);
    snprintf(q, sizeof(q), "fingerprints=%s", hex);
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, q, T0 + 1, &pkg), MSP_OK);
    assert_int_equal(pkg.statics[0].not_before, T0);
    assert_int_equal(pkg.statics[0].not_after, T0 + 20);
    msp_ets_keypkg_free(&pkg);
    /* the first tick of a reloaded manager rotates */
    assert_true(tick(f, T0 + 1, MSP_OK).rotated);
}

static void test_limits(void **state)
{
    fixture_t *f = *state;
    f->cfg.groups = MSP_ETS_KEYMGR_X25519;
    f->cfg.max_keys = 2;
    f->cfg.retention = 1000;
    start(f);
    tick(f, T0, MSP_OK);
    tick(f, T0 + 10, MSP_OK);
    tick(f, T0 + 20, MSP_ERR_LIMIT);
    assert_int_equal(msp_ets_keymgr_count(f->km), 2);
    /* a store with more keys than max_keys is refused */
    msp_ets_keymgr_free(f->km);
    f->km = NULL;
    f->cfg.max_keys = 1;
    assert_int_equal(msp_ets_keymgr_new(&f->cfg, &f->km), MSP_ERR_LIMIT);
    /* a query over the limit is the client's fault */
    f->cfg.max_keys = 0;
    start(f);
    char *q = malloc(MSP_ETS_KEYMGR_MAX_QUERY + 16);
    memset(q, 'a', MSP_ETS_KEYMGR_MAX_QUERY + 15);
    memcpy(q, "groups=0x001d&x=", 16);
    q[MSP_ETS_KEYMGR_MAX_QUERY + 15] = '\0';
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, q, T0 + 1, &pkg), MSP_ERR_SYNTAX);
    free(q);
    /* bad configurations */
    msp_ets_keymgr_t *km = (msp_ets_keymgr_t *)1;
    msp_ets_keymgr_cfg_t c = f->cfg;
    c.groups = 0;
    assert_int_equal(msp_ets_keymgr_new(&c, &km), MSP_ERR_ARGUMENT);
    assert_null(km);
    c = f->cfg;
    c.rotate = -1;
    assert_int_equal(msp_ets_keymgr_new(&c, &km), MSP_ERR_ARGUMENT);
    c = f->cfg;
    c.max_keys = MSP_ETS_KEYMGR_MAX_KEYS + 1;
    assert_int_equal(msp_ets_keymgr_new(&c, &km), MSP_ERR_ARGUMENT);
    c = f->cfg;
    c.store = NULL;
    assert_int_equal(msp_ets_keymgr_new(&c, &km), MSP_ERR_ARGUMENT);
    msp_ets_keymgr_free(NULL);
}

static X509 *make_ca(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8, (const unsigned char *)"ca", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    ASN1_TIME_set(X509_getm_notBefore(x), T0 - 86400);
    ASN1_TIME_set(X509_getm_notAfter(x), T0 + 86400);
    X509_set_pubkey(x, key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void ext_list(X509 *x, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < X509_get_ext_count(x); i++) {
        X509_EXTENSION *e = X509_get_ext(x, i);
        used += (size_t)snprintf(out + used, cap - used, "%s:%d,",
                                 OBJ_nid2sn(OBJ_obj2nid(X509_EXTENSION_get_object(e))), X509_EXTENSION_get_critical(e));
    }
}

static void test_certs(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *ca = make_ca(ca_key);
    f->cfg.ca_cert = ca;
    f->cfg.ca_key = ca_key;
    f->cfg.access = "IDS of msp.test";
    start(f);
    tick(f, T0, MSP_OK);
    tick(f, T0 + 10, MSP_OK);
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, "groups=0x001d,0x0017&certs=0x0403:0x0403,0x0403:0x0804&context=ets.test", T0 + 11, &pkg),
                     MSP_OK);
    assert_int_equal(pkg.n_static, 2);
    assert_int_equal(pkg.n_signer, 2);
    X509 *x = pkg.signers[0].cert;
    assert_int_equal(X509_verify(x, ca_key), 1);
    assert_int_equal(X509_check_host(x, "ets.test", 0, 0, NULL), 1);
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(pkg.signers[1].cert), "RSA"));
    /* validity: the keys' common period */
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_TIME_set(t, T0 + 10);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(x), t), 0);
    ASN1_TIME_set(t, T0 + 30);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), t), 0);
    ASN1_TIME_free(t);
    msp_ets_vi_t vi[MSP_ETS_MAX_VI];
    size_t n = 0;
    int misplaced = 0;
    assert_int_equal(msp_ets_cert_read(x, vi, MSP_ETS_MAX_VI, &n, &misplaced), MSP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(vi[0].access, "IDS of msp.test");
    /* the same extensions as msp ets cert's certificates: one issuer */
    uint8_t fp[1][MSP_ETS_FINGERPRINT_LEN];
    memcpy(fp[0], vi[0].fingerprint, MSP_ETS_FINGERPRINT_LEN);
    const char *dns[1] = {"ets.test"};
    msp_ets_cert_cfg_t c = {.subject_key = pkg.signers[0].key,
                            .subject = "/CN=ets.test",
                            .dns = dns,
                            .n_dns = 1,
                            .not_before = T0,
                            .not_after = T0 + 1,
                            .fingerprints = (const uint8_t(*)[MSP_ETS_FINGERPRINT_LEN])fp,
                            .n_fingerprints = 1,
                            .access = "x",
                            .issuer_cert = ca,
                            .issuer_key = ca_key};
    X509 *direct = NULL;
    assert_int_equal(msp_ets_cert_issue(&c, &direct, &f->err), MSP_OK);
    char a[512], b[512];
    ext_list(x, a, sizeof(a));
    ext_list(direct, b, sizeof(b));
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "keyUsage:1"));
    X509_free(direct);
    msp_ets_keypkg_free(&pkg);
    /* refusals of certs= */
    assert_int_equal(get(f, "groups=0x001d&certs=0x0403:0x0805", T0 + 11, &pkg), MSP_ERR_ARGUMENT);
    assert_non_null(strstr(f->err.detail, "subject scheme not supported"));
    assert_int_equal(get(f, "groups=0x001d&certs=0x0804:0x0403", T0 + 11, &pkg), MSP_ERR_ARGUMENT);
    assert_non_null(strstr(f->err.detail, "issuer scheme"));
    assert_int_equal(get(f,
                         "groups=0x001d&certs=0x0403:0x0403,0x0403:0x0403,0x0403:0x0403,0x0403:0x0403,"
                         "0x0403:0x0403",
                         T0 + 11, &pkg),
                     MSP_ERR_ARGUMENT);
    assert_non_null(strstr(f->err.detail, "too many pairs"));
    /* a CA key that is not the certificate's */
    msp_ets_keymgr_t *km = NULL;
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    f->cfg.ca_key = other;
    assert_int_equal(msp_ets_keymgr_new(&f->cfg, &km), MSP_ERR_ARGUMENT);
    EVP_PKEY_free(other);
    /* the manager holds its own references */
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    assert_int_equal(get(f, "groups=0x001d&certs=0x0403:0x0403", T0 + 11, &pkg), MSP_OK);
    assert_int_equal(pkg.n_signer, 1);
    msp_ets_keypkg_free(&pkg);
}

static void test_dir_store(void **state)
{
    fixture_t *f = *state;
    char dir[] = "/tmp/test_ets_keymgr.XXXXXX";
    assert_non_null(mkdtemp(dir));
    msp_ets_keymgr_store_t store;
    msp_error_t err;
    assert_int_equal(msp_ets_keymgr_dir_store("/nonexistent/dir", &store, &err), MSP_ERR_IO);
    assert_int_equal(msp_ets_keymgr_dir_store(dir, &store, &err), MSP_OK);
    f->cfg.store = &store;
    f->cfg.groups = MSP_ETS_KEYMGR_P256;
    f->cfg.lifetime = 1;
    f->cfg.retention = 1;
    start(f);
    tick(f, T0, MSP_OK);
    char hex[2 * MSP_ETS_FINGERPRINT_LEN + 1], path[256];
    fp_hex(f->last[MSP_ETS_KEYMGR_NEW_KEY].fingerprint, hex);
    snprintf(path, sizeof(path), "%s/p256-%s.pem", dir, hex);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a stray file and a temporary one: the first is skipped with an event, the second not even listed */
    char stray[256], tmp[256];
    snprintf(stray, sizeof(stray), "%s/stray.pem", dir);
    snprintf(tmp, sizeof(tmp), "%s/x.pem.tmp.abc.pem", dir);
    FILE *fh = fopen(stray, "w");
    fputs("hello\n", fh);
    fclose(fh);
    fh = fopen(tmp, "w");
    fputs("hello\n", fh);
    fclose(fh);
    /* a record over MSP_ETS_KEYMGR_MAX_RECORD is not read, only skipped: a real record followed by padding */
    char big[256];
    snprintf(big, sizeof(big), "%s/big.pem", dir);
    FILE *src = fopen(path, "r");
    fh = fopen(big, "w");
    for (int c; (c = fgetc(src)) != EOF;) {
        fputc(c, fh);
    }
    for (int i = 0; i < MSP_ETS_KEYMGR_MAX_RECORD; i++) {
        fputc('\n', fh);
    }
    fclose(src);
    fclose(fh);
    msp_ets_keymgr_free(f->km);
    f->km = NULL;
    start(f);
    assert_int_equal(msp_ets_keymgr_count(f->km), 1);
    assert_int_equal(f->events[MSP_ETS_KEYMGR_SKIPPED], 2);
    /* retirement removes the file */
    tick(f, T0 + 2, MSP_OK);
    assert_int_equal(f->events[MSP_ETS_KEYMGR_RETIRED_KEY], 1);
    assert_int_not_equal(stat(path, &st), 0);
    unlink(stray);
    unlink(tmp);
    unlink(big);
    snprintf(path, sizeof(path), "rm -f %s/*.pem", dir);
    assert_int_equal(system(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_consumer_side(void **state)
{
    fixture_t *f = *state;
    msp_buf_t t;
    msp_error_t err;
    msp_buf_init(&t, 8192);
    assert_int_equal(
        msp_ets_keymgr_target(NULL, MSP_ETS_KEYMGR_X25519 | MSP_ETS_KEYMGR_P256, "0x0403:0x0403", "ets.test", &t, &err),
        MSP_OK);
    assert_string_equal(msp_buf_cstr(&t),
                        MSP_ETS_KEYMGR_KEYS_PATH "?groups=0x001d,0x0017&certs=0x0403:0x0403&context=ets.test");
    /* what would end or add a parameter is percent-encoded, and the manager decodes it back */
    t.len = 0;
    assert_int_equal(msp_ets_keymgr_target(NULL, MSP_ETS_KEYMGR_P256, NULL, "a b&x=%#", &t, &err), MSP_OK);
    assert_string_equal(msp_buf_cstr(&t), MSP_ETS_KEYMGR_KEYS_PATH "?groups=0x0017&context=a%20b%26x%3D%25%23");
    t.len = 0;
    assert_int_equal(msp_ets_keymgr_target("00112233445566778899", 0, NULL, NULL, &t, &err), MSP_OK);
    assert_string_equal(msp_buf_cstr(&t), MSP_ETS_KEYMGR_KEYS_PATH "?fingerprints=00112233445566778899");
    assert_int_equal(msp_ets_keymgr_target("00", MSP_ETS_KEYMGR_X25519, NULL, NULL, &t, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_keymgr_target(NULL, 0, NULL, NULL, &t, &err), MSP_ERR_ARGUMENT);
    char *big = malloc(MSP_ETS_KEYMGR_MAX_QUERY + 1);
    memset(big, 'a', MSP_ETS_KEYMGR_MAX_QUERY);
    big[MSP_ETS_KEYMGR_MAX_QUERY] = '\0';
    t.len = 0;
    assert_int_equal(msp_ets_keymgr_target(big, 0, NULL, NULL, &t, &err), MSP_ERR_LIMIT);
    free(big);
    msp_buf_free(&t);
    /* the round trip through the manager: the target's query answers; the newest valid key is found */
    start(f);
    tick(f, T0, MSP_OK);
    tick(f, T0 + 10, MSP_OK);
    msp_buf_init(&t, 8192);
    assert_int_equal(msp_ets_keymgr_target(NULL, MSP_ETS_KEYMGR_X25519 | MSP_ETS_KEYMGR_P256, NULL, NULL, &t, &err),
                     MSP_OK);
    const char *q = strchr(msp_buf_cstr(&t), '?') + 1;
    msp_ets_keypkg_t pkg;
    assert_int_equal(get(f, q, T0 + 11, &pkg), MSP_OK);
    msp_buf_free(&t);
    assert_int_equal(msp_ets_keymgr_newest(pkg.statics, pkg.n_static, 0x0017, T0 + 11), 1);
    msp_ets_keypkg_free(&pkg);
    msp_ets_kp_static_t s[3] = {{NULL, T0, T0 + 20, 1}, {NULL, T0 + 10, T0 + 30, 1}, {NULL, T0 + 50, 0, 0}};
    for (size_t i = 0; i < 3; i++) {
        s[i].key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    }
    assert_int_equal(msp_ets_keymgr_newest(s, 3, 0x001d, T0 + 11), 1);
    assert_int_equal(msp_ets_keymgr_newest(s, 3, 0x001d, T0 + 5), 0);
    assert_int_equal(msp_ets_keymgr_newest(s, 3, 0x001d, T0 + 40), -1); /* expired; the third not yet valid */
    assert_int_equal(msp_ets_keymgr_newest(s, 3, 0x001d, T0 + 50), 2);  /* no doNotUseAfter: valid on */
    assert_int_equal(msp_ets_keymgr_newest(s, 3, 0x0017, T0 + 11), -1);
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY_free(s[i].key);
    }
}

/* Accept and Content-Type (ETS-KT-1, ETS-KP-2): both CMS names of the spec, q=0, wildcards never mean CMS. */
static void test_media_types(void **state)
{
    (void)state;
    const unsigned P = MSP_ETS_KEYMGR_ACCEPT_PKCS8, C = MSP_ETS_KEYMGR_ACCEPT_CMS;
    static const struct {
        const char *accept;
        unsigned want;
    } cases[] = {
        {NULL, MSP_ETS_KEYMGR_ACCEPT_PKCS8},
        {"", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
        {" \t", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
        {"application/pkcs8", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
        {"application/pkcs7-mime", MSP_ETS_KEYMGR_ACCEPT_CMS},
        {"Application/PKCS7-MIME; smime-type=enveloped-data", MSP_ETS_KEYMGR_ACCEPT_CMS},
        {"application/pkcs8, application/cms", MSP_ETS_KEYMGR_ACCEPT_PKCS8 | MSP_ETS_KEYMGR_ACCEPT_CMS},
        {"application/cms;q=0.5 ,application/pkcs8;q=0", MSP_ETS_KEYMGR_ACCEPT_CMS},
        {"application/pkcs7-mime;q=0", 0},
        {"application/pkcs7-mime; q=0.000, */*", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
        {"*/*", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
        {"application/*", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
        {"text/html", 0},
        {"application/pkcs7-mimex, application/cm", 0},
        {",,,", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned got = msp_ets_keymgr_accept(cases[i].accept);
        if (got != cases[i].want) {
            fail_msg("Accept '%s': %u, want %u", cases[i].accept ? cases[i].accept : "(none)", got, cases[i].want);
        }
    }
    assert_int_equal(msp_ets_keymgr_content_type("application/pkcs7-mime; smime-type=enveloped-data"), C);
    assert_int_equal(msp_ets_keymgr_content_type("application/cms"), C);
    assert_int_equal(msp_ets_keymgr_content_type(" application/PKCS8 "), P);
    assert_int_equal(msp_ets_keymgr_content_type("*/*"), 0);
    assert_int_equal(msp_ets_keymgr_content_type("text/plain"), 0);
    assert_int_equal(msp_ets_keymgr_content_type(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_at_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_and_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_consumer_side, setup, teardown),
        cmocka_unit_test(test_media_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
