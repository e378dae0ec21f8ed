/*
 * The msp-ets provider in-process (ets.md 8): the TLS 1.3 server share is
 * the static key on every connection, whatever the certificate, suite, HRR,
 * resumption or 0-RTT; everything else keeps getting fresh keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/provider.h>

#include "ets_pair.h"
#include "msp/ets.h"
#include "msp/ets_provider.h"

typedef struct fixture {
    EVP_PKEY *x25519, *p256; /* the static keys (default library context) */
    uint8_t x_pub[32], p_pub[65];
    OSSL_LIB_CTX *lib;
    SSL_CTX *sctx, *cctx;
    EVP_PKEY *cert_key;
    X509 *cert;
} fixture_t;

static void pub_of(EVP_PKEY *k, uint8_t *out, size_t want)
{
    size_t n = 0;
    assert_int_equal(msp_ets_key_share(k, out, want, &n), MSP_OK);
    assert_int_equal(n, want);
}

static SSL_CTX *server_ctx(OSSL_LIB_CTX *lib, int cert_kind, EVP_PKEY **ck, X509 **cert)
{
    msp_error_t err;
    SSL_CTX *s = NULL;
    assert_int_equal(msp_ets_server_ctx_new(lib, &s, &err), MSP_OK);
    assert_non_null(s);
    assert_int_equal(ets_pair_make_cert(cert_kind, ck, cert), 0);
    assert_int_equal(ets_pair_server_setup(s, *ck, *cert), 0);
    return s;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    f->p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    pub_of(f->x25519, f->x_pub, 32);
    pub_of(f->p256, f->p_pub, 65);
    EVP_PKEY *keys[] = {f->x25519, f->p256};
    msp_error_t err;
    assert_int_equal(msp_ets_libctx_new(keys, 2, &f->lib, &err), MSP_OK);
    assert_non_null(f->lib);
    f->sctx = server_ctx(f->lib, ETS_CERT_P256, &f->cert_key, &f->cert);
    f->cctx = ets_pair_client_ctx();
    assert_non_null(f->cctx);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    SSL_CTX_free(f->sctx);
    SSL_CTX_free(f->cctx);
    msp_ets_libctx_free(f->lib);
    EVP_PKEY_free(f->x25519);
    EVP_PKEY_free(f->p256);
    EVP_PKEY_free(f->cert_key);
    X509_free(f->cert);
    free(f);
    return 0;
}

/* One connection; asserts it worked and that the server share is `want` for `group`. */
static void expect_share(SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o, uint16_t group, const uint8_t *want,
                         size_t want_len, ets_pair_t *p, int *hrr)
{
    if (ets_pair_run(p, sctx, cctx, o) != 0) {
        fail_msg("connection failed: %s", p->error);
    }
    uint16_t g = 0;
    uint8_t share[ETS_PAIR_MAX_SHARE];
    size_t n = 0;
    assert_int_equal(ets_pair_server_share(p, &g, share, sizeof(share), &n, hrr), 0);
    assert_int_equal(g, group);
    assert_int_equal(n, want_len);
    assert_memory_equal(share, want, want_len);
    const char *sent = o && o->c2s ? o->c2s : "hello server";
    size_t got = strlen(p->app[ETS_C2S]), sent_len = strlen(sent);
    assert_true(got >= sent_len); /* after any early data */
    assert_string_equal(p->app[ETS_C2S] + got - sent_len, sent);
}

static void test_x25519_every_connection(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 3; i++) {
        ets_pair_t p;
        int hrr = -1;
        expect_share(f->sctx, f->cctx, NULL, 0x001d, f->x_pub, 32, &p, &hrr);
        assert_int_equal(hrr, 0);
        assert_string_equal(p.app[ETS_S2C], "hello client");
        ets_pair_free(&p);
    }
}

static void test_p256_rsa_certificate(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *ck;
    X509 *cert;
    SSL_CTX *s = server_ctx(f->lib, ETS_CERT_RSA, &ck, &cert);
    ets_pair_opts_t o = {.groups = "P-256"};
    for (int i = 0; i < 2; i++) {
        ets_pair_t p;
        expect_share(s, f->cctx, &o, 0x0017, f->p_pub, 65, &p, NULL);
        ets_pair_free(&p);
    }
    ets_pair_t p;
    expect_share(s, f->cctx, NULL, 0x001d, f->x_pub, 32, &p, NULL);
    ets_pair_free(&p);
    SSL_CTX_free(s);
    EVP_PKEY_free(ck);
    X509_free(cert);
}

static void test_three_suites(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *name;
        uint16_t id;
    } suites[] = {{"TLS_AES_128_GCM_SHA256", 0x1301},
                  {"TLS_AES_256_GCM_SHA384", 0x1302},
                  {"TLS_CHACHA20_POLY1305_SHA256", 0x1303}};
    for (size_t i = 0; i < 3; i++) {
        for (int g = 0; g < 2; g++) {
            ets_pair_opts_t o = {.ciphersuites = suites[i].name, .groups = g ? "P-256" : "x25519"};
            ets_pair_t p;
            expect_share(f->sctx, f->cctx, &o, g ? 0x0017 : 0x001d, g ? f->p_pub : f->x_pub, g ? 65 : 32, &p, NULL);
            assert_int_equal(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p.client)), suites[i].id);
            ets_pair_free(&p);
        }
    }
}

static void test_hello_retry_towards_static(void **state)
{
    fixture_t *f = *state;
    ets_pair_opts_t o = {.groups = "P-384:x25519"};
    ets_pair_t p;
    int hrr = 0;
    expect_share(f->sctx, f->cctx, &o, 0x001d, f->x_pub, 32, &p, &hrr);
    assert_int_equal(hrr, 1);
    ets_pair_free(&p);
    o.groups = "P-521:P-256";
    expect_share(f->sctx, f->cctx, &o, 0x0017, f->p_pub, 65, &p, &hrr);
    assert_int_equal(hrr, 1);
    ets_pair_free(&p);
}

static void test_resumption_and_early_data(void **state)
{
    fixture_t *f = *state;
    ets_pair_t first, again;
    expect_share(f->sctx, f->cctx, NULL, 0x001d, f->x_pub, 32, &first, NULL);
    assert_non_null(first.session);
    assert_true(SSL_SESSION_get_max_early_data(first.session) > 0);

    ets_pair_opts_t o = {.session = first.session, .early_data = "early bird", .c2s = "after"};
    expect_share(f->sctx, f->cctx, &o, 0x001d, f->x_pub, 32, &again, NULL);
    assert_true(again.resumed);
    assert_true(again.early_accepted);
    assert_string_equal(again.app[ETS_C2S], "early birdafter");
    char secret[256];
    assert_int_equal(ets_pair_keylog_get(&again, "CLIENT_EARLY_TRAFFIC_SECRET", secret, sizeof(secret)), 0);
    ets_pair_free(&again);
    ets_pair_free(&first);
}

static void test_key_update(void **state)
{
    fixture_t *f = *state;
    ets_pair_opts_t o = {.key_update = 1, .c2s = "ping", .s2c = "pong"};
    ets_pair_t p;
    if (ets_pair_run(&p, f->sctx, f->cctx, &o) != 0) {
        fail_msg("%s", p.error);
    }
    assert_string_equal(p.app[ETS_C2S], "pingping");
    assert_string_equal(p.app[ETS_S2C], "pongpong");
    char s0[256], s1[256];
    assert_int_equal(ets_pair_keylog_get(&p, "CLIENT_TRAFFIC_SECRET_0", s0, sizeof(s0)), 0);
    assert_int_equal(ets_pair_keylog_get(&p, "SERVER_HANDSHAKE_TRAFFIC_SECRET", s1, sizeof(s1)), 0);
    /* the recording: every chunk lies inside its direction, and together they are the whole of it */
    size_t total[2] = {0, 0};
    for (size_t i = 0; i < p.nchunks; i++) {
        assert_int_equal(p.chunks[i].off, total[p.chunks[i].dir]);
        total[p.chunks[i].dir] += p.chunks[i].len;
    }
    assert_int_equal(total[ETS_C2S], p.len[ETS_C2S]);
    assert_int_equal(total[ETS_S2C], p.len[ETS_S2C]);
    ets_pair_free(&p);
}

static void test_two_contexts_independent(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    uint8_t other_pub[32];
    pub_of(other, other_pub, 32);
    assert_memory_not_equal(other_pub, f->x_pub, 32);
    msp_error_t err;
    OSSL_LIB_CTX *lib2 = NULL;
    assert_int_equal(msp_ets_libctx_new(&other, 1, &lib2, &err), MSP_OK);
    assert_non_null(lib2);
    EVP_PKEY *ck;
    X509 *cert;
    SSL_CTX *s2 = server_ctx(lib2, ETS_CERT_P256, &ck, &cert);
    for (int i = 0; i < 2; i++) { /* interleaved */
        ets_pair_t p;
        expect_share(s2, f->cctx, NULL, 0x001d, other_pub, 32, &p, NULL);
        ets_pair_free(&p);
        expect_share(f->sctx, f->cctx, NULL, 0x001d, f->x_pub, 32, &p, NULL);
        ets_pair_free(&p);
    }
    /* lib2 has no P-256 key: its server offers x25519 only, a P-256-only client finds no common group */
    ets_pair_opts_t o = {.groups = "P-256"};
    ets_pair_t p;
    assert_int_not_equal(ets_pair_run(&p, s2, f->cctx, &o), 0);
    ets_pair_free(&p);
    SSL_CTX_free(s2);
    msp_ets_libctx_free(lib2);
    EVP_PKEY_free(other);
    EVP_PKEY_free(ck);
    X509_free(cert);
}

/* The key_share of the first ClientHello in the client's direction (group x25519). */
static void client_share(const ets_pair_t *p, uint8_t out[32])
{
    const uint8_t *b = p->bytes[ETS_C2S];
    /* the x25519 entry: 00 1d 00 20 followed by the key; ClientHello is the first record */
    for (size_t i = 5; i + 36 <= p->len[ETS_C2S] && i < 2048; i++) {
        if (b[i] == 0x00 && b[i + 1] == 0x1d && b[i + 2] == 0x00 && b[i + 3] == 0x20) {
            memcpy(out, b + i + 4, 32);
            return;
        }
    }
    fail_msg("no x25519 share in the ClientHello");
}

static void test_client_in_ets_context_is_fresh(void **state)
{
    fixture_t *f = *state;
    SSL_CTX *c = SSL_CTX_new_ex(f->lib, MSP_ETS_PROPQ, TLS_client_method());
    assert_non_null(c);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    uint8_t a[32], b[32];
    ets_pair_opts_t o = {.groups = "x25519"};
    ets_pair_t p;
    expect_share(f->sctx, c, &o, 0x001d, f->x_pub, 32, &p, NULL);
    client_share(&p, a);
    ets_pair_free(&p);
    expect_share(f->sctx, c, &o, 0x001d, f->x_pub, 32, &p, NULL);
    client_share(&p, b);
    ets_pair_free(&p);
    assert_memory_not_equal(a, b, 32);
    assert_memory_not_equal(a, f->x_pub, 32);
    SSL_CTX_free(c);
    /* and the stock client of the default context too */
    expect_share(f->sctx, f->cctx, &o, 0x001d, f->x_pub, 32, &p, NULL);
    client_share(&p, a);
    ets_pair_free(&p);
    assert_memory_not_equal(a, b, 32);
}

static EVP_PKEY *keygen_in(OSSL_LIB_CTX *lib, const char *alg, const char *curve, EVP_PKEY *templ)
{
    EVP_PKEY_CTX *c = templ ? EVP_PKEY_CTX_new_from_pkey(lib, templ, MSP_ETS_PROPQ)
                            : EVP_PKEY_CTX_new_from_name(lib, alg, MSP_ETS_PROPQ);
    EVP_PKEY *k = NULL;
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    if (curve != NULL) {
        assert_int_equal(EVP_PKEY_CTX_set_group_name(c, curve), 1);
    }
    if (EVP_PKEY_keygen(c, &k) != 1) {
        k = NULL;
    }
    EVP_PKEY_CTX_free(c);
    return k;
}

static void test_keygen_without_template_is_fresh(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *a = keygen_in(f->lib, "X25519", NULL, NULL), *b = keygen_in(f->lib, "X25519", NULL, NULL);
    assert_non_null(a);
    assert_non_null(b);
    /* it did go through msp-ets (the property preference), and still fresh */
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(a)), MSP_ETS_PROVIDER_NAME);
    uint8_t pa[32], pb[32];
    pub_of(a, pa, 32);
    pub_of(b, pb, 32);
    assert_memory_not_equal(pa, pb, 32);
    assert_memory_not_equal(pa, f->x_pub, 32);

    EVP_PKEY *e = keygen_in(f->lib, "EC", "P-256", NULL);
    uint8_t pe[65];
    pub_of(e, pe, 65);
    assert_memory_not_equal(pe, f->p_pub, 65);
    EVP_PKEY *big = keygen_in(f->lib, "EC", "P-384", NULL); /* a curve without a static key still works */
    assert_non_null(big);

    /* with a public template (libssl's server share) the static key comes back */
    EVP_PKEY *s = keygen_in(f->lib, NULL, NULL, a);
    assert_non_null(s);
    pub_of(s, pa, 32);
    assert_memory_equal(pa, f->x_pub, 32);
    EVP_PKEY *sp = keygen_in(f->lib, NULL, NULL, e);
    assert_non_null(sp);
    pub_of(sp, pe, 65);
    assert_memory_equal(pe, f->p_pub, 65);
    /* and such a key cannot be changed */
    assert_int_not_equal(EVP_PKEY_set_octet_string_param(sp, "encoded-pub-key", f->p_pub, 65), 1);

    /* a template on a curve without a static key: refused, with the group named */
    ERR_clear_error();
    EVP_PKEY *none = keygen_in(f->lib, NULL, NULL, big);
    assert_null(none);
    const char *data = NULL;
    int named = 0;
    while (ERR_get_error_all(NULL, NULL, NULL, &data, NULL) != 0) {
        named |= data != NULL && strstr(data, "msp-ets: no static key for group secp384r1") != NULL;
    }
    assert_true(named);
    EVP_PKEY *objs[] = {a, b, e, big, s, sp};
    for (size_t i = 0; i < 6; i++) {
        EVP_PKEY_free(objs[i]);
    }
}

static void test_bad_arguments(void **state)
{
    fixture_t *f = *state;
    msp_error_t err;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    /* each failure returns its code, records it in err and leaves *out NULL (even when it held something) */
    OSSL_LIB_CTX *lib = (OSSL_LIB_CTX *)&lib;
    assert_int_equal(msp_ets_libctx_new(&rsa, 1, &lib, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(err.code, MSP_ERR_ARGUMENT);
    assert_null(lib);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    lib = (OSSL_LIB_CTX *)&lib;
    assert_int_equal(msp_ets_libctx_new(&p384, 1, &lib, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(err.code, MSP_ERR_ARGUMENT);
    assert_null(lib);
    EVP_PKEY *two[] = {f->x25519, f->x25519};
    assert_int_equal(msp_ets_libctx_new(two, 2, &lib, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(err.code, MSP_ERR_ARGUMENT);
    assert_null(lib);
    lib = (OSSL_LIB_CTX *)&lib;
    assert_int_equal(msp_ets_libctx_new(two, 0, &lib, &err), MSP_ERR_ARGUMENT);
    assert_null(lib);
    SSL_CTX *s = (SSL_CTX *)&s;
    assert_int_equal(msp_ets_server_ctx_new(NULL, &s, &err), MSP_ERR_ARGUMENT);
    assert_null(s);
    OSSL_LIB_CTX *plain = OSSL_LIB_CTX_new();
    s = (SSL_CTX *)&s;
    assert_int_equal(msp_ets_server_ctx_new(plain, &s, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(err.code, MSP_ERR_ARGUMENT);
    assert_null(s);
    OSSL_LIB_CTX_free(plain);
    msp_ets_libctx_free(NULL);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
    ERR_clear_error();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x25519_every_connection),
        cmocka_unit_test(test_p256_rsa_certificate),
        cmocka_unit_test(test_three_suites),
        cmocka_unit_test(test_hello_retry_towards_static),
        cmocka_unit_test(test_resumption_and_early_data),
        cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_two_contexts_independent),
        cmocka_unit_test(test_client_in_ets_context_is_fresh),
        cmocka_unit_test(test_keygen_without_template_is_fresh),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
