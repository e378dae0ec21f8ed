/*
 * CMS-wrapped key packages (ets.md 3.4 ETS-KP-2, msp_ets_keypkg_cms_*):
 * the round trip to EC and RSA recipients, trust by CA or by the pinned key
 * manager certificate, and each refusal with its own code: malformed,
 * wrong content type, wrong recipient, tampered ciphertext, bad signature,
 * untrusted or expired signer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "msp/error.h"
#include "msp/ets_keymgr.h"
#include "msp/ets_keypkg.h"

#define NOW 1796686694 /* 2026-12-07 */
#define DAY 86400

typedef struct party {
    EVP_PKEY *key;
    X509 *cert;
} party_t;

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

/* A certificate for key, valid [NOW - DAY, NOW + DAY), issued by issuer (NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const party_t *issuer, int ca)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(uintptr_t)key & 0x7fffffff);
    X509_set_version(x, 2);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer->cert) : name);
    ASN1_TIME_set(X509_getm_notBefore(x), NOW - DAY);
    ASN1_TIME_set(X509_getm_notAfter(x), NOW + DAY);
    X509_set_pubkey(x, key);
    if (ca) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, issuer != NULL ? issuer->key : key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static party_t party(EVP_PKEY *key, const char *cn, const party_t *issuer, int ca)
{
    party_t p = {key, make_cert(key, cn, issuer, ca)};
    return p;
}

static void party_free(party_t *p)
{
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
}

typedef struct fixture {
    party_t ca, km, consumer, other, stranger;
    msp_buf_t pkg;
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;
    f.ca = party(ec_key(), "ca", NULL, 1);
    f.km = party(ec_key(), "key manager", &f.ca, 0);
    f.consumer = party(ec_key(), "middlebox", &f.ca, 0);
    f.other = party(ec_key(), "another middlebox", &f.ca, 0);
    f.stranger = party(ec_key(), "key manager", NULL, 0); /* the same name, not the same key */
    msp_ets_kp_static_t s = {
        .key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), .not_before = NOW, .not_after = NOW + DAY, .has_not_after = 1};
    msp_buf_init(&f.pkg, MSP_ETS_KP_MAX_SIZE);
    assert_int_equal(msp_ets_keypkg_encode(&s, 1, NULL, 0, &f.pkg, NULL), MSP_OK);
    EVP_PKEY_free(s.key);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    party_free(&f->ca);
    party_free(&f->km);
    party_free(&f->consumer);
    party_free(&f->other);
    party_free(&f->stranger);
    msp_buf_free(&f->pkg);
    return 0;
}

static void wrap(fixture_t *f, X509 *recipient, msp_buf_t *out)
{
    msp_error_t err;
    msp_buf_init(out, MSP_ETS_KP_MAX_CMS);
    assert_int_equal(msp_ets_keypkg_cms_wrap(f->pkg.base, f->pkg.len, f->km.cert, f->km.key, recipient, NOW, out, &err),
                     MSP_OK);
}

/* Unwraps as the consumer trusting trusted; on success the package must come back byte for byte. */
static int unwrap_as(fixture_t *f, const party_t *me, const uint8_t *p, size_t n, X509 *trusted, int64_t now)
{
    msp_buf_t out;
    msp_error_t err;
    msp_error_clear(&err);
    msp_buf_init(&out, MSP_ETS_KP_MAX_SIZE);
    int ret = msp_ets_keypkg_cms_unwrap(p, n, me->cert, me->key, &trusted, 1, now, &out, &err);
    if (ret == MSP_OK) {
        assert_int_equal(out.len, f->pkg.len);
        assert_memory_equal(out.base, f->pkg.base, out.len);
    } else {
        assert_int_equal(out.len, 0); /* nothing handed out */
        assert_int_equal(err.code, ret);
        assert_true(err.detail[0] != '\0');
    }
    msp_buf_free(&out);
    assert_int_equal(ERR_peek_error(), 0); /* no OpenSSL error left behind */
    return ret;
}

static int unwrap(fixture_t *f, const uint8_t *p, size_t n)
{
    return unwrap_as(f, &f->consumer, p, n, f->ca.cert, NOW);
}

static void test_round_trip(void **state)
{
    fixture_t *f = *state;
    msp_buf_t w;
    wrap(f, f->consumer.cert, &w);
    /* the outer layer is RFC 5083 AuthEnvelopedData holding SignedData */
    const unsigned char *q = w.base;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)w.len);
    assert_non_null(cms);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_id_smime_ct_authEnvelopedData);
    assert_int_equal(OBJ_obj2nid(CMS_get0_eContentType(cms)), NID_pkcs7_signed);
    CMS_ContentInfo_free(cms);
    /* trusted as a CA's certificate, or pinned as the key manager's own */
    assert_int_equal(unwrap(f, w.base, w.len), MSP_OK);
    assert_int_equal(unwrap_as(f, &f->consumer, w.base, w.len, f->km.cert, NOW), MSP_OK);
    msp_ets_keypkg_t pkg;
    assert_int_equal(msp_ets_keypkg_decode(f->pkg.base, f->pkg.len, &pkg, NULL), MSP_OK);
    assert_int_equal(pkg.n_static, 1);
    msp_ets_keypkg_free(&pkg);
    msp_buf_free(&w);
}

static void test_rsa_recipient(void **state)
{
    fixture_t *f = *state;
    party_t rsa = party(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), "rsa middlebox", &f->ca, 0);
    msp_buf_t w;
    wrap(f, rsa.cert, &w);
    assert_int_equal(unwrap_as(f, &rsa, w.base, w.len, f->ca.cert, NOW), MSP_OK);
    assert_int_equal(unwrap(f, w.base, w.len), MSP_ERR_NOT_FOUND);
    msp_buf_free(&w);
    party_free(&rsa);
}

static void test_wrong_recipient(void **state)
{
    fixture_t *f = *state;
    msp_buf_t w;
    wrap(f, f->other.cert, &w);
    assert_int_equal(unwrap(f, w.base, w.len), MSP_ERR_NOT_FOUND);
    assert_int_equal(unwrap_as(f, &f->other, w.base, w.len, f->ca.cert, NOW), MSP_OK);
    msp_buf_free(&w);
}

static void test_tampered(void **state)
{
    fixture_t *f = *state;
    msp_buf_t w;
    wrap(f, f->consumer.cert, &w);
    /* AuthEnvelopedData ends with the 16-byte GCM tag (04 10 ...), the ciphertext just before it */
    assert_int_equal(w.base[w.len - 18], 0x04);
    assert_int_equal(w.base[w.len - 17], 0x10);
    size_t spots[] = {w.len - 1, w.len - 19, w.len - 100};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        w.base[spots[i]] ^= 0x01;
        assert_int_equal(unwrap(f, w.base, w.len), MSP_ALERT_BAD_RECORD_MAC);
        w.base[spots[i]] ^= 0x01;
    }
    assert_int_equal(unwrap(f, w.base, w.len), MSP_OK);
    msp_buf_free(&w);
}

static void test_untrusted_signer(void **state)
{
    fixture_t *f = *state;
    msp_buf_t w;
    wrap(f, f->consumer.cert, &w);
    assert_int_equal(unwrap_as(f, &f->consumer, w.base, w.len, f->stranger.cert, NOW), MSP_ALERT_BAD_CERTIFICATE);
    assert_int_equal(unwrap_as(f, &f->consumer, w.base, w.len, f->other.cert, NOW), MSP_ALERT_BAD_CERTIFICATE);
    /* time is the caller's: past the signer's notAfter it is no longer trusted */
    assert_int_equal(unwrap_as(f, &f->consumer, w.base, w.len, f->ca.cert, NOW + 2 * DAY), MSP_ALERT_BAD_CERTIFICATE);
    msp_buf_free(&w);
}

/* ---- structures msp_ets_keypkg_cms_wrap would not make, built here with OpenSSL ---- */

/* SignedData of content with eContentType oid, signed by signer. */
static void signed_der(const msp_buf_t *content, const char *oid, const party_t *signer, msp_buf_t *out)
{
    const unsigned flags = CMS_BINARY | CMS_PARTIAL;
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    ASN1_OBJECT *type = OBJ_txt2obj(oid, 1);
    BIO *in = BIO_new_mem_buf(content->base, (int)content->len);
    assert_int_equal(CMS_set1_eContentType(cms, type), 1);
    assert_non_null(CMS_add1_signer(cms, signer->cert, signer->key, EVP_sha256(), flags));
    assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    msp_buf_init(out, MSP_ETS_KP_MAX_CMS);
    assert_int_equal(msp_buf_put(out, der, (size_t)n), MSP_OK);
    OPENSSL_free(der);
    BIO_free(in);
    ASN1_OBJECT_free(type);
    CMS_ContentInfo_free(cms);
}

/* inner encrypted to recipient with eContentType inner_nid, AES-256-GCM (AuthEnvelopedData) or CBC (EnvelopedData). */
static void envelope_with(const msp_buf_t *inner, int inner_nid, X509 *recipient, const EVP_CIPHER *cipher,
                          msp_buf_t *out)
{
    STACK_OF(X509) *to = sk_X509_new_null();
    sk_X509_push(to, recipient);
    BIO *in = BIO_new_mem_buf(inner->base, (int)inner->len);
    CMS_ContentInfo *cms = CMS_encrypt(to, NULL, cipher, CMS_BINARY | CMS_PARTIAL);
    assert_non_null(cms);
    assert_int_equal(CMS_set1_eContentType(cms, OBJ_nid2obj(inner_nid)), 1);
    assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    msp_buf_init(out, MSP_ETS_KP_MAX_CMS);
    assert_int_equal(msp_buf_put(out, der, (size_t)n), MSP_OK);
    OPENSSL_free(der);
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    sk_X509_free(to);
}

static void envelope(const msp_buf_t *inner, int inner_nid, X509 *recipient, msp_buf_t *out)
{
    envelope_with(inner, inner_nid, recipient, EVP_aes_256_gcm(), out);
}

static void test_wrong_content_type(void **state)
{
    fixture_t *f = *state;
    msp_buf_t sd, env;
    /* signed as id-data, not id-ct-KP-aKeyPackage */
    signed_der(&f->pkg, "1.2.840.113549.1.7.1", &f->km, &sd);
    envelope(&sd, NID_pkcs7_signed, f->consumer.cert, &env);
    assert_int_equal(unwrap(f, env.base, env.len), MSP_ERR_INVALID);
    /* SignedData alone, without the envelope */
    assert_int_equal(unwrap(f, sd.base, sd.len), MSP_ERR_INVALID);
    msp_buf_free(&env);
    msp_buf_free(&sd);
    /* the right SignedData in an envelope that says it holds id-data */
    signed_der(&f->pkg, MSP_ETS_KP_OID_AKEYPACKAGE, &f->km, &sd);
    envelope(&sd, NID_pkcs7_data, f->consumer.cert, &env);
    assert_int_equal(unwrap(f, env.base, env.len), MSP_ERR_INVALID);
    msp_buf_free(&env);
    /* ... and the same in a correct envelope is accepted: the refusals above were the content types */
    envelope(&sd, NID_pkcs7_signed, f->consumer.cert, &env);
    assert_int_equal(unwrap(f, env.base, env.len), MSP_OK);
    msp_buf_free(&env);
    /* EnvelopedData (AES-CBC, RFC 5652 6) is read too */
    envelope_with(&sd, NID_pkcs7_signed, f->consumer.cert, EVP_aes_256_cbc(), &env);
    const unsigned char *q = env.base;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)env.len);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_enveloped);
    CMS_ContentInfo_free(cms);
    assert_int_equal(unwrap(f, env.base, env.len), MSP_OK);
    msp_buf_free(&env);
    /* the package itself, not wrapped at all: not even a ContentInfo */
    assert_int_equal(unwrap(f, f->pkg.base, f->pkg.len), MSP_ERR_SYNTAX);
    msp_buf_free(&sd);
}

static void test_bad_signature(void **state)
{
    fixture_t *f = *state;
    msp_buf_t sd, env;
    signed_der(&f->pkg, MSP_ETS_KP_OID_AKEYPACKAGE, &f->km, &sd);
    /* the SignerInfo's signature (an ECDSA-Sig-Value) closes the SignedData; its last byte is the s integer's */
    sd.base[sd.len - 1] ^= 0x01;
    envelope(&sd, NID_pkcs7_signed, f->consumer.cert, &env);
    assert_int_equal(unwrap(f, env.base, env.len), MSP_ALERT_DECRYPT_ERROR);
    msp_buf_free(&env);
    /* the package changed after signing */
    sd.base[sd.len - 1] ^= 0x01;
    uint8_t *at = NULL;
    for (size_t i = 0; at == NULL && i + f->pkg.len <= sd.len; i++) {
        at = memcmp(sd.base + i, f->pkg.base, f->pkg.len) == 0 ? sd.base + i : NULL;
    }
    assert_non_null(at);
    at[f->pkg.len - 1] ^= 0x01;
    envelope(&sd, NID_pkcs7_signed, f->consumer.cert, &env);
    assert_int_equal(unwrap(f, env.base, env.len), MSP_ALERT_DECRYPT_ERROR);
    msp_buf_free(&env);
    msp_buf_free(&sd);
}

static void test_malformed_and_limits(void **state)
{
    fixture_t *f = *state;
    msp_buf_t w;
    wrap(f, f->consumer.cert, &w);
    for (size_t n = 0; n < w.len; n += 1 + n / 8) {
        assert_int_equal(unwrap(f, w.base, n), MSP_ERR_SYNTAX); /* every cut is refused as malformed */
    }
    assert_int_equal(msp_buf_put_u8(&w, 0), MSP_OK);
    assert_int_equal(unwrap(f, w.base, w.len), MSP_ERR_SYNTAX); /* trailing byte */
    w.len--;
    msp_error_t err;
    msp_buf_t out;
    msp_buf_init(&out, 16); /* too small for the package */
    X509 *trusted = f->ca.cert;
    assert_int_equal(
        msp_ets_keypkg_cms_unwrap(w.base, w.len, f->consumer.cert, f->consumer.key, &trusted, 1, NOW, &out, &err),
        MSP_ERR_LIMIT);
    assert_int_equal(msp_ets_keypkg_cms_unwrap(w.base, MSP_ETS_KP_MAX_CMS + 1, f->consumer.cert, f->consumer.key,
                                               &trusted, 1, NOW, &out, &err),
                     MSP_ERR_LIMIT);
    assert_int_equal(
        msp_ets_keypkg_cms_unwrap(w.base, w.len, f->consumer.cert, f->consumer.key, &trusted, 0, NOW, &out, &err),
        MSP_ERR_ARGUMENT);
    /* the key must be the certificate's */
    assert_int_equal(
        msp_ets_keypkg_cms_unwrap(w.base, w.len, f->consumer.cert, f->other.key, &trusted, 1, NOW, &out, &err),
        MSP_ERR_ARGUMENT);
    msp_buf_free(&out);
    msp_buf_free(&w);
    /* wrapping: the signer's key must be its certificate's; Ed25519 cannot receive CMS */
    msp_buf_init(&out, MSP_ETS_KP_MAX_CMS);
    assert_int_equal(
        msp_ets_keypkg_cms_wrap(f->pkg.base, f->pkg.len, f->km.cert, f->other.key, f->consumer.cert, NOW, &out, &err),
        MSP_ERR_ARGUMENT);
    party_t ed = party(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), "ed", &f->ca, 0);
    assert_int_equal(msp_ets_keypkg_cms_wrap(f->pkg.base, f->pkg.len, f->km.cert, f->km.key, ed.cert, NOW, &out, &err),
                     MSP_ERR_ARGUMENT);
    assert_int_equal(out.len, 0);
    assert_int_equal(ERR_peek_error(), 0);
    party_free(&ed);
    msp_buf_free(&out);
}

/* The consumer's decision (msp_ets_keymgr_receive): plain taken unless CMS is required, CMS opened and verified. */
static void test_receive(void **state)
{
    fixture_t *f = *state;
    msp_buf_t w, out;
    msp_error_t err;
    X509 *trusted = f->ca.cert;
    msp_ets_keymgr_cms_t cms = {f->consumer.cert, f->consumer.key, &trusted, 1};
    wrap(f, f->consumer.cert, &w);
    msp_buf_init(&out, MSP_ETS_KP_MAX_SIZE);
    static const char *const types[] = {"application/pkcs7-mime", "application/cms; q=1"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(msp_ets_keymgr_receive(w.base, w.len, types[i], &cms, 1, NOW, &out, &err), MSP_OK);
        assert_int_equal(out.len, f->pkg.len);
        assert_memory_equal(out.base, f->pkg.base, out.len);
        out.len = 0;
    }
    /* plain: taken as it is, unless CMS is required */
    assert_int_equal(msp_ets_keymgr_receive(f->pkg.base, f->pkg.len, "application/pkcs8", &cms, 0, NOW, &out, &err),
                     MSP_OK);
    assert_memory_equal(out.base, f->pkg.base, f->pkg.len);
    out.len = 0;
    assert_int_equal(msp_ets_keymgr_receive(f->pkg.base, f->pkg.len, "application/pkcs8", &cms, 1, NOW, &out, &err),
                     MSP_ERR_INVALID);
    assert_string_equal(err.detail, "the key package is not CMS-wrapped (Content-Type application/pkcs8)");
    assert_int_equal(msp_ets_keymgr_receive(f->pkg.base, f->pkg.len, NULL, &cms, 1, NOW, &out, &err), MSP_ERR_INVALID);
    /* CMS: refused as the unwrap refuses, said so; without keys it cannot be opened */
    assert_int_equal(msp_ets_keymgr_receive(w.base, w.len, "application/pkcs7-mime",
                                            &(msp_ets_keymgr_cms_t){f->other.cert, f->other.key, &trusted, 1}, 0, NOW,
                                            &out, &err),
                     MSP_ERR_NOT_FOUND);
    assert_non_null(strstr(err.detail, "the CMS-wrapped key package is refused: not encrypted to our certificate"));
    assert_int_equal(msp_ets_keymgr_receive(w.base, w.len, "application/pkcs7-mime", NULL, 0, NOW, &out, &err),
                     MSP_ERR_ARGUMENT);
    assert_int_equal(out.len, 0);
    msp_buf_free(&out);
    msp_buf_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_rsa_recipient),
        cmocka_unit_test(test_wrong_recipient),  cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_untrusted_signer), cmocka_unit_test(test_wrong_content_type),
        cmocka_unit_test(test_bad_signature),    cmocka_unit_test(test_malformed_and_limits),
        cmocka_unit_test(test_receive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
