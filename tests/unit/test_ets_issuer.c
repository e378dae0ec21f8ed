/*
 * The ETS certificate issuer (include/msp/ets_cert.h): a CA-issued and a
 * self-signed certificate parsed back with OpenSSL: exactly the extensions
 * ets_cert.h lists (critical where it says), the validity asked for, one
 * VisibilityInformation per fingerprint after the DNS names, a signature
 * that verifies with the issuer key (RSA-PSS for 0x0804); re-issuing keeps
 * subject, key and validity and replaces the visibility information and
 * serial; ETS-VI-1, a wrong issuer key, a scheme the issuer cannot sign
 * with, bad subjects and access texts and the limits are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "msp/error.h"
#include "msp/ets.h"
#include "msp/ets_cert.h"

#define NB 1700000000
#define NA 1700864000

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *x, int nid, const char *v)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, v);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A self-signed CA certificate for key. */
static X509 *make_ca(EVP_PKEY *key)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8, (const unsigned char *)"test-ca", -1, -1,
                               0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    ASN1_TIME_set(X509_getm_notBefore(x), NB - 86400);
    ASN1_TIME_set(X509_getm_notAfter(x), NA + 86400);
    X509_set_pubkey(x, key);
    add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, NID_key_usage, "critical,keyCertSign");
    add_ext(x, NID_subject_key_identifier, "hash");
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void fingerprint(EVP_PKEY *k, uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    uint8_t share[133];
    size_t n = 0;
    assert_int_equal(msp_ets_key_share(k, share, sizeof(share), &n), MSP_OK);
    assert_int_equal(msp_ets_fingerprint(share, n, fp), MSP_OK);
}

typedef struct fixture {
    EVP_PKEY *ca_key, *subject, *s1, *s2;
    X509 *ca;
    uint8_t fps[2][MSP_ETS_FINGERPRINT_LEN];
    const char *dns[2];
    msp_ets_cert_cfg_t cfg;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    f->ca_key = p256();
    f->ca = make_ca(f->ca_key);
    f->subject = p256();
    f->s1 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    f->s2 = p256();
    fingerprint(f->s1, f->fps[0]);
    fingerprint(f->s2, f->fps[1]);
    f->dns[0] = "ets.test";
    f->dns[1] = "www.ets.test";
    f->cfg = (msp_ets_cert_cfg_t){.subject_key = f->subject,
                                  .subject = "/CN=ets.test/O=Example",
                                  .dns = f->dns,
                                  .n_dns = 2,
                                  .not_before = NB,
                                  .not_after = NA,
                                  .fingerprints = (const uint8_t(*)[MSP_ETS_FINGERPRINT_LEN])f->fps,
                                  .n_fingerprints = 2,
                                  .access = "IDS of example.com",
                                  .issuer_cert = f->ca,
                                  .issuer_key = f->ca_key};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->subject);
    EVP_PKEY_free(f->s1);
    EVP_PKEY_free(f->s2);
    X509_free(f->ca);
    free(f);
    return 0;
}

static X509 *issue_ok(const msp_ets_cert_cfg_t *cfg)
{
    X509 *x = NULL;
    msp_error_t err;
    msp_error_clear(&err);
    int r = msp_ets_cert_issue(cfg, &x, &err);
    if (r != MSP_OK) {
        fail_msg("issue: %s", err.detail);
    }
    assert_non_null(x);
    return x;
}

static int issue_code(const msp_ets_cert_cfg_t *cfg)
{
    X509 *x = (X509 *)1;
    msp_error_t err;
    int r = msp_ets_cert_issue(cfg, &x, &err);
    assert_null(x);
    assert_true(strlen(err.detail) > 0);
    return r;
}

/* The extensions by NID in order, with criticality: "nid:crit,...". */
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

static void assert_validity(X509 *x, int64_t nb, int64_t na)
{
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_TIME_set(t, (time_t)nb);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(x), t), 0);
    ASN1_TIME_set(t, (time_t)na);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), t), 0);
    ASN1_TIME_free(t);
}

static void test_ca_issued(void **state)
{
    fixture_t *f = *state;
    X509 *x = issue_ok(&f->cfg);
    char exts[512];
    ext_list(x, exts, sizeof(exts));
    assert_string_equal(exts, "basicConstraints:1,keyUsage:1,extendedKeyUsage:0,subjectKeyIdentifier:0,"
                              "authorityKeyIdentifier:0,subjectAltName:0,");
    /* the flags OpenSSL derives: not a CA, digitalSignature only, serverAuth */
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
    /* AKI = the CA's SKI; issued by the CA and the signature verifies with its key */
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(f->ca)), 0);
    assert_int_equal(X509_check_issued(f->ca, x), X509_V_OK);
    assert_int_equal(X509_verify(x, f->ca_key), 1);
    assert_int_equal(X509_verify(x, f->subject), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), f->subject), 1);
    assert_validity(x, NB, NA);
    char cn[64];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, cn, sizeof(cn));
    assert_string_equal(cn, "Example");
    assert_int_equal(X509_check_host(x, "www.ets.test", 0, 0, NULL), 1);
    /* SAN: the two DNS names, then one VisibilityInformation per fingerprint, in order */
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(san), 4);
    assert_int_equal(sk_GENERAL_NAME_value(san, 0)->type, GEN_DNS);
    assert_int_equal(sk_GENERAL_NAME_value(san, 1)->type, GEN_DNS);
    assert_int_equal(sk_GENERAL_NAME_value(san, 2)->type, GEN_OTHERNAME);
    GENERAL_NAMES_free(san);
    msp_ets_vi_t vi[MSP_ETS_MAX_VI];
    size_t n = 0;
    int misplaced = 1;
    assert_int_equal(msp_ets_cert_read(x, vi, MSP_ETS_MAX_VI, &n, &misplaced), MSP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(misplaced, 0);
    assert_memory_equal(vi[0].fingerprint, f->fps[0], MSP_ETS_FINGERPRINT_LEN);
    assert_memory_equal(vi[1].fingerprint, f->fps[1], MSP_ETS_FINGERPRINT_LEN);
    assert_string_equal(vi[1].access, "IDS of example.com");
    /* a positive serial of up to 16 bytes */
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    assert_int_equal(BN_is_negative(serial), 0);
    assert_true(BN_num_bytes(serial) <= 16 && BN_num_bytes(serial) >= 8);
    BN_free(serial);
    X509_free(x);
}

static void test_self_signed(void **state)
{
    fixture_t *f = *state;
    msp_ets_cert_cfg_t c = f->cfg;
    c.issuer_cert = NULL;
    c.issuer_key = f->subject;
    c.n_dns = 0;
    X509 *x = issue_ok(&c);
    char exts[512];
    ext_list(x, exts, sizeof(exts));
    /* the same extensions, but no authorityKeyIdentifier (RFC 5280 4.2.1.1 allows leaving it out here) */
    assert_string_equal(exts, "basicConstraints:1,keyUsage:1,extendedKeyUsage:0,subjectKeyIdentifier:0,"
                              "subjectAltName:0,");
    assert_int_equal(X509_verify(x, f->subject), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    /* a self-signed leaf with keyUsage digitalSignature still verifies as its own trust anchor */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, x);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, x, NULL);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), NB + 10);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(x);
}

static void test_rsa_pss(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    X509 *ca = make_ca(rsa);
    msp_ets_cert_cfg_t c = f->cfg;
    c.issuer_cert = ca;
    c.issuer_key = rsa;
    c.scheme = 0x0804;
    X509 *x = issue_ok(&c);
    assert_int_equal(X509_get_signature_nid(x), NID_rsassaPss);
    assert_int_equal(X509_verify(x, rsa), 1);
    X509_free(x);
    c.scheme = 0x0401;
    x = issue_ok(&c);
    assert_int_equal(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);
    X509_free(x);
    c.scheme = 0x0403; /* an RSA key cannot */
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    X509_free(ca);
    EVP_PKEY_free(rsa);
}

static void test_scheme_ok(void **state)
{
    fixture_t *f = *state;
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_int_equal(msp_ets_cert_scheme_ok(f->ca_key, 0x0403), 1);
    assert_int_equal(msp_ets_cert_scheme_ok(f->ca_key, 0x0804), 0);
    assert_int_equal(msp_ets_cert_scheme_ok(ed, 0x0807), 1);
    assert_int_equal(msp_ets_cert_scheme_ok(ed, 0x0403), 0);
    assert_int_equal(msp_ets_cert_scheme_ok(p384, 0x0403), 0);
    assert_int_equal(msp_ets_cert_scheme_ok(NULL, 0x0403), 0);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);
}

static void test_reissue(void **state)
{
    fixture_t *f = *state;
    X509 *orig = issue_ok(&f->cfg);
    EVP_PKEY *other_ca_key = p256();
    X509 *other_ca = make_ca(other_ca_key);
    uint8_t fp3[1][MSP_ETS_FINGERPRINT_LEN];
    EVP_PKEY *s3 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    fingerprint(s3, fp3[0]);
    msp_ets_cert_cfg_t c = {.base = orig,
                            .fingerprints = (const uint8_t(*)[MSP_ETS_FINGERPRINT_LEN])fp3,
                            .n_fingerprints = 1,
                            .access = "new holders",
                            .issuer_cert = other_ca,
                            .issuer_key = other_ca_key};
    X509 *re = issue_ok(&c);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(re), X509_get_subject_name(orig)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(re), f->subject), 1);
    assert_validity(re, NB, NA); /* kept: not_after 0 */
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(re), X509_get0_serialNumber(orig)), 0);
    assert_int_equal(X509_verify(re, other_ca_key), 1);
    assert_int_equal(X509_check_issued(other_ca, re), X509_V_OK);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(re), X509_get0_subject_key_id(other_ca)), 0);
    msp_ets_vi_t vi[MSP_ETS_MAX_VI];
    size_t n = 0;
    int misplaced = 0;
    assert_int_equal(msp_ets_cert_read(re, vi, MSP_ETS_MAX_VI, &n, &misplaced), MSP_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(vi[0].fingerprint, fp3[0], MSP_ETS_FINGERPRINT_LEN);
    assert_int_equal(X509_check_host(re, "ets.test", 0, 0, NULL), 1); /* DNS names kept */
    char a[512], b[512];
    ext_list(orig, a, sizeof(a));
    ext_list(re, b, sizeof(b));
    assert_string_equal(a, b);
    /* a new validity when asked */
    c.not_before = NB + 10;
    c.not_after = NB + 20;
    X509 *re2 = issue_ok(&c);
    assert_validity(re2, NB + 10, NB + 20);
    X509_free(re2);
    /* re-issuing needs an issuer certificate */
    c.issuer_cert = NULL;
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    X509_free(re);
    X509_free(orig);
    X509_free(other_ca);
    EVP_PKEY_free(other_ca_key);
    EVP_PKEY_free(s3);
}

static void test_refusals(void **state)
{
    fixture_t *f = *state;
    msp_ets_cert_cfg_t c = f->cfg;
    uint8_t own[2][MSP_ETS_FINGERPRINT_LEN];
    /* ETS-VI-1: the subject key as a static key, in any position */
    memcpy(own[0], f->fps[0], MSP_ETS_FINGERPRINT_LEN);
    fingerprint(f->subject, own[1]);
    assert_int_equal(msp_ets_cert_is_own_key(f->subject, own[1]), 1);
    assert_int_equal(msp_ets_cert_is_own_key(f->subject, own[0]), 0);
    c.fingerprints = (const uint8_t(*)[MSP_ETS_FINGERPRINT_LEN])own;
    assert_int_equal(issue_code(&c), MSP_ERR_INVALID);
    c = f->cfg;
    c.issuer_key = f->subject; /* not the CA's key */
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    c = f->cfg;
    c.subject = "CN=no-slash";
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    c.subject = "/NOTANATTRIBUTE=x";
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    c.subject = "/CN=";
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    c = f->cfg;
    c.access = "\xff\xfe";
    assert_int_equal(issue_code(&c), MSP_ERR_INVALID);
    c = f->cfg;
    c.not_after = c.not_before;
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    c = f->cfg;
    c.n_fingerprints = 0;
    assert_int_equal(issue_code(&c), MSP_ERR_LIMIT);
    c.n_fingerprints = MSP_ETS_MAX_VI + 1;
    assert_int_equal(issue_code(&c), MSP_ERR_LIMIT);
    c = f->cfg;
    c.n_dns = MSP_ETS_CERT_MAX_DNS + 1;
    assert_int_equal(issue_code(&c), MSP_ERR_LIMIT);
    const char *comma[1] = {"a.test,DNS:evil.test"};
    c = f->cfg;
    c.dns = comma;
    c.n_dns = 1;
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
    c = f->cfg;
    c.subject_key = NULL;
    assert_int_equal(issue_code(&c), MSP_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_issued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rsa_pss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheme_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reissue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
