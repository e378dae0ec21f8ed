/*
 * The peers' certificates (sess_cert_key, conn_sess.c): a leaf must be
 * exactly one DER certificate, its public key must be one OpenSSL can use,
 * and with a trust store it must chain to it; anything else is
 * bad_certificate (42). Each check is tested twice: on sess_cert_key itself,
 * with the exact return code and what it leaves in *pub, and in an in-memory
 * session, where the entity that receives the certificate must send 42.
 * The same hold with the certificates a process keeps parsed (msp_tlmsp_shared_t): a kept certificate is the
 * same object, and nothing the parse refuses or the trust store rejects gets through the cache.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "conn.h"
#include "msp/error.h"
#include "net.h"
#include "tlmsp_shared.h"

static net_identity_t ec_id, rsa_id, other_id;

static int setup_ids(void **state)
{
    (void)state;
    return net_identity_make(&ec_id, "server-ec", 0) | net_identity_make(&rsa_id, "server", 1) |
           net_identity_make(&other_id, "other", 0);
}

static int free_ids(void **state)
{
    (void)state;
    net_identity_free(&ec_id);
    net_identity_free(&rsa_id);
    net_identity_free(&other_id);
    return 0;
}

/* How a certificate is spoiled. */
typedef enum {
    CERT_AS_IS,
    CERT_TRAILING_BYTE, /* one byte after the certificate's DER */
    CERT_TRUNCATED,     /* the last byte missing */
    CERT_UNKNOWN_KEY,   /* SubjectPublicKeyInfo algorithm 1.2.840.10045.2.99 instead of id-ecPublicKey */
    CERT_BAD_POINT,     /* the P-256 point's format byte 0x04 made 0x05 */
} spoil_t;

static size_t find(const uint8_t *p, size_t len, const uint8_t *what, size_t what_len)
{
    size_t at = len, hits = 0;
    for (size_t i = 0; i + what_len <= len; i++) {
        if (memcmp(p + i, what, what_len) == 0) {
            at = i;
            hits++;
        }
    }
    assert_int_equal(hits, 1);
    return at;
}

/* A copy of from (same key) whose certificate is spoiled; the DER still parses except when truncated. */
static void spoiled(const net_identity_t *from, spoil_t how, net_identity_t *to)
{
    static const uint8_t ec_oid[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    static const uint8_t p256_point[] = {0x03, 0x42, 0x00, 0x04};
    memset(to, 0, sizeof(*to));
    assert_int_equal(EVP_PKEY_up_ref(from->key), 1);
    to->key = from->key;
    to->der = OPENSSL_malloc(from->der_len + 1);
    assert_non_null(to->der);
    memcpy(to->der, from->der, from->der_len);
    to->der_len = from->der_len;
    switch (how) {
    case CERT_AS_IS:
        break;
    case CERT_TRAILING_BYTE:
        to->der[to->der_len++] = 0x00;
        break;
    case CERT_TRUNCATED:
        to->der_len--;
        break;
    case CERT_UNKNOWN_KEY:
        to->der[find(to->der, to->der_len, ec_oid, sizeof(ec_oid)) + sizeof(ec_oid) - 1] = 0x63;
        break;
    case CERT_BAD_POINT:
        to->der[find(to->der, to->der_len, p256_point, sizeof(p256_point)) + sizeof(p256_point) - 1] = 0x05;
        break;
    }
    to->ders[0] = to->der;
    to->lens[0] = to->der_len;
}

static X509_STORE *store_of(const net_identity_t *id)
{
    const uint8_t *p = id->der;
    X509 *x = d2i_X509(NULL, &p, (long)id->der_len);
    X509_STORE *st = X509_STORE_new();
    assert_non_null(x);
    assert_non_null(st);
    assert_int_equal(X509_STORE_add_cert(st, x), 1);
    X509_free(x);
    return st;
}

/* sess_cert_key on a session with only the trust store set. */
static int cert_key(X509_STORE *trust, const uint8_t *der, size_t len, EVP_PKEY **pub)
{
    sess_t s;
    memset(&s, 0, sizeof(s));
    s.trust = trust;
    return sess_cert_key(&s, der, len, pub);
}

static void test_cert_key_ok(void **state)
{
    (void)state;
    EVP_PKEY *pub = NULL;
    assert_int_equal(cert_key(NULL, ec_id.der, ec_id.der_len, &pub), MSP_OK);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_eq(pub, ec_id.key), 1);
    /* a second certificate replaces the key (the first is freed) */
    assert_int_equal(cert_key(NULL, rsa_id.der, rsa_id.der_len, &pub), MSP_OK);
    assert_int_equal(EVP_PKEY_eq(pub, rsa_id.key), 1);
    EVP_PKEY_free(pub);
}

/* DER that is not exactly one certificate: refused before anything else, *pub left alone. */
static void test_cert_not_one_der(void **state)
{
    (void)state;
    static const uint8_t garbage[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    static const spoil_t hows[] = {CERT_TRAILING_BYTE, CERT_TRUNCATED};
    X509_STORE *trust = store_of(&ec_id);
    for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
        net_identity_t bad;
        spoiled(&ec_id, hows[i], &bad);
        EVP_PKEY *pub = NULL;
        assert_int_equal(cert_key(NULL, bad.der, bad.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
        assert_null(pub);
        /* the trust store, which holds this very certificate, does not make the extra byte acceptable */
        assert_int_equal(cert_key(trust, bad.der, bad.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
        assert_null(pub);
        net_identity_free(&bad);
    }
    EVP_PKEY *pub = NULL;
    assert_int_equal(cert_key(NULL, garbage, sizeof(garbage), &pub), MSP_ALERT_BAD_CERTIFICATE);
    assert_null(pub);
    assert_int_equal(cert_key(NULL, ec_id.der, 0, &pub), MSP_ALERT_BAD_CERTIFICATE);
    assert_null(pub);
    /* a key from an earlier certificate stays where it was */
    assert_int_equal(cert_key(NULL, rsa_id.der, rsa_id.der_len, &pub), MSP_OK);
    EVP_PKEY *kept = pub;
    assert_int_equal(cert_key(NULL, garbage, sizeof(garbage), &pub), MSP_ALERT_BAD_CERTIFICATE);
    assert_ptr_equal(pub, kept);
    EVP_PKEY_free(pub);
    X509_STORE_free(trust);
}

/* A certificate that parses but whose public key OpenSSL cannot extract: bad_certificate, no key. */
static void test_cert_key_unusable(void **state)
{
    (void)state;
    static const spoil_t hows[] = {CERT_UNKNOWN_KEY, CERT_BAD_POINT};
    for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
        net_identity_t bad;
        spoiled(&ec_id, hows[i], &bad);
        /* the DER itself is fine: only the key is unusable */
        const uint8_t *p = bad.der;
        X509 *x = d2i_X509(NULL, &p, (long)bad.der_len);
        assert_non_null(x);
        assert_ptr_equal(p, bad.der + bad.der_len);
        X509_free(x);
        EVP_PKEY *pub = NULL;
        assert_int_equal(cert_key(NULL, bad.der, bad.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
        assert_null(pub);
        /* an earlier key is dropped: the session has no key for this peer */
        assert_int_equal(cert_key(NULL, rsa_id.der, rsa_id.der_len, &pub), MSP_OK);
        assert_int_equal(cert_key(NULL, bad.der, bad.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
        assert_null(pub);
        net_identity_free(&bad);
    }
}

/* With a trust store the leaf must chain to it. */
static void test_cert_trust(void **state)
{
    (void)state;
    X509_STORE *own = store_of(&ec_id), *other = store_of(&other_id);
    EVP_PKEY *pub = NULL;
    assert_int_equal(cert_key(own, ec_id.der, ec_id.der_len, &pub), MSP_OK);
    assert_int_equal(EVP_PKEY_eq(pub, ec_id.key), 1);
    assert_int_equal(cert_key(other, ec_id.der, ec_id.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
    assert_null(pub);
    assert_int_equal(cert_key(own, rsa_id.der, rsa_id.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
    assert_null(pub);
    X509_STORE_free(own);
    X509_STORE_free(other);
}

/* ---- the same checks in a session: client, n middleboxes, server ---- */

static void make_setup(net_setup_t *s, size_t n, net_identity_t *server, net_identity_t *mbox)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->server_id = server;
    s->contexts.present[1] = 1;
    for (size_t i = 0; i < n; i++) {
        s->mbox_id[i] = mbox;
        s->access[i][1] = MSP_TLMSP_ACCESS_RW;
    }
}

/* The client, with trust as its store, takes (or refuses, with 42) the server's certificate spoiled as how. */
static void session_server_cert(spoil_t how, X509_STORE *trust, int want)
{
    net_identity_t server;
    spoiled(&ec_id, how, &server);
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 0, &server, NULL);
    assert_int_equal(net_open(&net, &setup), 0);
    net.client->s.trust = trust;
    net_pump(&net);
    if (want == MSP_OK) {
        assert_int_equal(net.client_err | net.server_err, MSP_OK);
        assert_true(net_ready(&net));
    } else {
        assert_int_equal(net.client_err, want);
        assert_int_equal(net.server_err, MSP_ERR_CLASS_PEER_ALERT + want);
        assert_int_equal(net.at_server.last_desc, want);
        assert_false(msp_tlmsp_conn_ready(net.client) || msp_tlmsp_conn_ready(net.server));
    }
    net_close(&net);
    net_identity_free(&server);
}

static void test_session_server_cert(void **state)
{
    (void)state;
    X509_STORE *own = store_of(&ec_id), *other = store_of(&other_id);
    session_server_cert(CERT_AS_IS, NULL, MSP_OK);
    session_server_cert(CERT_AS_IS, own, MSP_OK);
    session_server_cert(CERT_AS_IS, other, MSP_ALERT_BAD_CERTIFICATE);
    session_server_cert(CERT_TRAILING_BYTE, NULL, MSP_ALERT_BAD_CERTIFICATE);
    session_server_cert(CERT_TRAILING_BYTE, own, MSP_ALERT_BAD_CERTIFICATE);
    session_server_cert(CERT_TRUNCATED, NULL, MSP_ALERT_BAD_CERTIFICATE);
    session_server_cert(CERT_UNKNOWN_KEY, NULL, MSP_ALERT_BAD_CERTIFICATE);
    session_server_cert(CERT_BAD_POINT, NULL, MSP_ALERT_BAD_CERTIFICATE);
    X509_STORE_free(own);
    X509_STORE_free(other);
}

/* ---- certificates kept parsed across sessions (msp_tlmsp_shared_t) ---- */

static int cert_key_shared(msp_tlmsp_shared_t *sh, X509_STORE *trust, const uint8_t *der, size_t len, EVP_PKEY **pub)
{
    sess_t s;
    memset(&s, 0, sizeof(s));
    s.trust = trust;
    s.shared = sh;
    return sess_cert_key(&s, der, len, pub);
}

/* The same bytes give the same parsed certificate; other bytes another one; without the cache, a fresh parse. */
static void test_shared_kept(void **state)
{
    (void)state;
    msp_tlmsp_shared_t *sh = NULL;
    X509 *a = NULL, *b = NULL, *c = NULL, *fresh = NULL;
    assert_int_equal(msp_tlmsp_shared_new(NULL, &sh), MSP_OK);
    assert_int_equal(msp_tlmsp_shared_x509(sh, ec_id.der, ec_id.der_len, &a), MSP_OK);
    assert_int_equal(msp_tlmsp_shared_x509(sh, ec_id.der, ec_id.der_len, &b), MSP_OK);
    assert_ptr_equal(a, b);
    assert_int_equal(msp_tlmsp_shared_x509(sh, rsa_id.der, rsa_id.der_len, &c), MSP_OK);
    assert_ptr_not_equal(a, c);
    assert_int_equal(msp_tlmsp_shared_x509(NULL, ec_id.der, ec_id.der_len, &fresh), MSP_OK);
    assert_ptr_not_equal(a, fresh);
    assert_int_equal(X509_cmp(a, fresh), 0);
    /* the references handed out are the caller's: the cache's own outlives them, and theirs outlive the cache */
    X509_free(a);
    X509_free(fresh);
    msp_tlmsp_shared_free(sh);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(b), ec_id.key), 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c), rsa_id.key), 1);
    X509_free(b);
    X509_free(c);
    msp_tlmsp_shared_free(NULL);
}

/* Refused bytes are refused every time (never kept); a parsed certificate with an unusable key stays unusable. */
static void test_shared_refuses_alike(void **state)
{
    (void)state;
    static const spoil_t hows[] = {CERT_TRAILING_BYTE, CERT_TRUNCATED, CERT_UNKNOWN_KEY, CERT_BAD_POINT};
    msp_tlmsp_shared_t *sh = NULL;
    assert_int_equal(msp_tlmsp_shared_new(NULL, &sh), MSP_OK);
    for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
        net_identity_t bad;
        spoiled(&ec_id, hows[i], &bad);
        for (int round = 0; round < 2; round++) {
            EVP_PKEY *pub = NULL;
            assert_int_equal(cert_key_shared(sh, NULL, bad.der, bad.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
            assert_null(pub);
        }
        net_identity_free(&bad);
    }
    /* the good certificate, whose prefix the trailing-byte copy shares, is still its own */
    EVP_PKEY *pub = NULL;
    assert_int_equal(cert_key_shared(sh, NULL, ec_id.der, ec_id.der_len, &pub), MSP_OK);
    assert_int_equal(EVP_PKEY_eq(pub, ec_id.key), 1);
    EVP_PKEY_free(pub);
    msp_tlmsp_shared_free(sh);
}

/* A kept certificate is verified again in every session: the cache holds parses, not verdicts. */
static void test_shared_trust(void **state)
{
    (void)state;
    X509_STORE *own = store_of(&ec_id), *other = store_of(&other_id);
    msp_tlmsp_shared_t *sh = NULL;
    assert_int_equal(msp_tlmsp_shared_new(NULL, &sh), MSP_OK);
    EVP_PKEY *pub = NULL;
    assert_int_equal(cert_key_shared(sh, own, ec_id.der, ec_id.der_len, &pub), MSP_OK);
    assert_int_equal(cert_key_shared(sh, other, ec_id.der, ec_id.der_len, &pub), MSP_ALERT_BAD_CERTIFICATE);
    assert_null(pub);
    assert_int_equal(cert_key_shared(sh, own, ec_id.der, ec_id.der_len, &pub), MSP_OK);
    assert_int_equal(EVP_PKEY_eq(pub, ec_id.key), 1);
    EVP_PKEY_free(pub);
    msp_tlmsp_shared_free(sh);
    X509_STORE_free(own);
    X509_STORE_free(other);
}

/* At most max_certs are kept: with 2, a third replaces the oldest, and the others stay. */
static void test_shared_bounded(void **state)
{
    (void)state;
    msp_tlmsp_shared_cfg_t cfg = {2};
    msp_tlmsp_shared_t *sh = NULL;
    const net_identity_t *ids[3] = {&ec_id, &rsa_id, &other_id};
    X509 *first[3], *again[3];
    assert_int_equal(msp_tlmsp_shared_new(&cfg, &sh), MSP_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(msp_tlmsp_shared_x509(sh, ids[i]->der, ids[i]->der_len, &first[i]), MSP_OK);
    }
    /* ec_id went (the oldest); rsa_id and other_id are still the objects first handed out */
    assert_int_equal(msp_tlmsp_shared_x509(sh, rsa_id.der, rsa_id.der_len, &again[1]), MSP_OK);
    assert_int_equal(msp_tlmsp_shared_x509(sh, other_id.der, other_id.der_len, &again[2]), MSP_OK);
    assert_int_equal(msp_tlmsp_shared_x509(sh, ec_id.der, ec_id.der_len, &again[0]), MSP_OK);
    assert_ptr_not_equal(again[0], first[0]);
    assert_ptr_equal(again[1], first[1]);
    assert_ptr_equal(again[2], first[2]);
    for (int i = 0; i < 3; i++) {
        X509_free(first[i]);
        X509_free(again[i]);
    }
    msp_tlmsp_shared_free(sh);
}

/* Sessions through two middleboxes whose every entity shares one cache: each completes, the later from it. */
static void test_shared_sessions(void **state)
{
    (void)state;
    msp_tlmsp_shared_t *sh = NULL;
    assert_int_equal(msp_tlmsp_shared_new(NULL, &sh), MSP_OK);
    for (int round = 0; round < 3; round++) {
        net_setup_t setup;
        net_t net;
        make_setup(&setup, 2, &rsa_id, &ec_id);
        assert_int_equal(net_open(&net, &setup), 0);
        net.client->s.shared = net.server->s.shared = net.m[0]->s.shared = net.m[1]->s.shared = sh;
        net_pump(&net);
        assert_int_equal(net.client_err | net.server_err | net.mbox_err[0] | net.mbox_err[1], MSP_OK);
        assert_true(net_ready(&net));
        net_close(&net);
    }
    X509 *x = NULL; /* the server's certificate was kept */
    assert_int_equal(msp_tlmsp_shared_x509(sh, rsa_id.der, rsa_id.der_len, &x), MSP_OK);
    X509 *y = NULL;
    assert_int_equal(msp_tlmsp_shared_x509(sh, rsa_id.der, rsa_id.der_len, &y), MSP_OK);
    assert_ptr_equal(x, y);
    X509_free(x);
    X509_free(y);
    msp_tlmsp_shared_free(sh);
}

/* Threads sharing one cache of 2 over 3 certificates (every insertion evicts): each always gets its own key. */
typedef struct shared_worker {
    msp_tlmsp_shared_t *sh;
    int offset, wrong;
} shared_worker_t;

static void *shared_work(void *arg)
{
    shared_worker_t *w = arg;
    const net_identity_t *ids[3] = {&ec_id, &rsa_id, &other_id};
    for (int i = 0; i < 300; i++) {
        const net_identity_t *id = ids[(i + w->offset) % 3];
        X509 *x = NULL;
        if (msp_tlmsp_shared_x509(w->sh, id->der, id->der_len, &x) != MSP_OK ||
            EVP_PKEY_eq(X509_get0_pubkey(x), id->key) != 1) {
            w->wrong++;
        }
        X509_free(x);
    }
    return NULL;
}

static void test_shared_threads(void **state)
{
    (void)state;
    msp_tlmsp_shared_cfg_t cfg = {2};
    msp_tlmsp_shared_t *sh = NULL;
    pthread_t t[4];
    shared_worker_t w[4];
    assert_int_equal(msp_tlmsp_shared_new(&cfg, &sh), MSP_OK);
    for (int i = 0; i < 4; i++) {
        w[i] = (shared_worker_t){sh, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, shared_work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].wrong, 0);
    }
    msp_tlmsp_shared_free(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_key_ok),          cmocka_unit_test(test_cert_not_one_der),
        cmocka_unit_test(test_cert_key_unusable),    cmocka_unit_test(test_cert_trust),
        cmocka_unit_test(test_session_server_cert),  cmocka_unit_test(test_shared_kept),
        cmocka_unit_test(test_shared_refuses_alike), cmocka_unit_test(test_shared_trust),
        cmocka_unit_test(test_shared_bounded),       cmocka_unit_test(test_shared_sessions),
        cmocka_unit_test(test_shared_threads),
    };
    return cmocka_run_group_tests(tests, setup_ids, free_ids);
}
