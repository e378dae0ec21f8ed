/*
 * ETS visibility information (ets.md 3.3): the fingerprint known answer, the
 * DER layout that `openssl req` produces for it (ets.md 3.3, verified
 * there), decoding rules, key_share bytes of static keys, and certificates
 * carrying one or several visibility informations beside other names,
 * written, re-read from DER and found again; a stand-alone extension with
 * the ETS OID is reported as misplaced. A VisibilityInformation with an
 * element more than its two, or bytes after it, is refused.
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

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* ets.md 3.3: the X25519 key_share of the verified experiment and its fingerprint. */
static void test_fingerprint_known_answer(void **state)
{
    (void)state;
    uint8_t ks[32], fp[MSP_ETS_FINGERPRINT_LEN], want[MSP_ETS_FINGERPRINT_LEN];
    unhex("2873f48af2fd37390dbe5abba4a89b2d14c2697554e737afbcbbb3fca7d37b02", ks);
    unhex("65be2a27489585a805ec", want);
    assert_int_equal(msp_ets_fingerprint(ks, sizeof(ks), fp), MSP_OK);
    assert_memory_equal(fp, want, sizeof(want));
    ks[31] ^= 1;
    assert_int_equal(msp_ets_fingerprint(ks, sizeof(ks), fp), MSP_OK);
    assert_memory_not_equal(fp, want, sizeof(want));
}

/* ets.md 3.3: `openssl req` gives 302e 040a <fingerprint> 0c20 <32 UTF-8 bytes> for a 32-byte description. */
static void test_der_layout(void **state)
{
    (void)state;
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN], store[128], got_fp[MSP_ETS_FINGERPRINT_LEN];
    unhex("65be2a27489585a805ec", fp);
    const char *access = "middleboxes of example.com (IDS)";
    assert_int_equal(strlen(access), 32);
    msp_buf_t b;
    msp_buf_init_fixed(&b, store, sizeof(store));
    assert_int_equal(msp_ets_vi_encode(fp, access, 32, &b), MSP_OK);
    assert_int_equal(b.len, 2 + 2 + 10 + 2 + 32);
    static const uint8_t head[] = {0x30, 0x2e, 0x04, 0x0a};
    assert_memory_equal(b.base, head, sizeof(head));
    assert_memory_equal(b.base + 4, fp, 10);
    assert_int_equal(b.base[14], 0x0c);
    assert_int_equal(b.base[15], 0x20);
    assert_memory_equal(b.base + 16, access, 32);
    const uint8_t *a;
    size_t alen;
    assert_int_equal(msp_ets_vi_decode(b.base, b.len, got_fp, &a, &alen), MSP_OK);
    assert_memory_equal(got_fp, fp, 10);
    assert_int_equal(alen, 32);
    assert_memory_equal(a, access, 32);
}

static void test_long_description_and_rules(void **state)
{
    (void)state;
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, got[MSP_ETS_FINGERPRINT_LEN];
    char access[300];
    memset(access, 'a', sizeof(access));
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    assert_int_equal(msp_ets_vi_encode(fp, access, sizeof(access), &b), MSP_OK);
    assert_int_equal(b.base[1], 0x82); /* 316 bytes of body: the two-byte length form */
    const uint8_t *a;
    size_t alen;
    assert_int_equal(msp_ets_vi_decode(b.base, b.len, got, &a, &alen), MSP_OK);
    assert_int_equal(alen, sizeof(access));
    /* every cut is refused, and so is a trailing byte */
    for (size_t cut = 0; cut < b.len; cut++) {
        assert_int_equal(msp_ets_vi_decode(b.base, cut, got, &a, &alen), MSP_ERR_SYNTAX);
    }
    msp_buf_put_u8(&b, 0);
    assert_int_equal(msp_ets_vi_decode(b.base, b.len, got, &a, &alen), MSP_ERR_SYNTAX);
    msp_buf_free(&b);
    /* a 9-byte fingerprint, a non-minimal length, a wrong tag, bad UTF-8 */
    static const uint8_t short_fp[] = {0x30, 0x0d, 0x04, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0c, 0x00};
    static const uint8_t long_len[] = {0x30, 0x81, 0x0e, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0c, 0x00};
    static const uint8_t ia5[] = {0x30, 0x0e, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x16, 0x00};
    static const uint8_t bad_utf8[] = {0x30, 0x0f, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0c, 0x01, 0xc0};
    assert_int_equal(msp_ets_vi_decode(short_fp, sizeof(short_fp), got, &a, &alen), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_vi_decode(long_len, sizeof(long_len), got, &a, &alen), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_vi_decode(ia5, sizeof(ia5), got, &a, &alen), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_vi_decode(bad_utf8, sizeof(bad_utf8), got, &a, &alen), MSP_ERR_SYNTAX);
    msp_buf_init(&b, 1u << 16);
    assert_int_equal(msp_ets_vi_encode(fp, "\xc0", 1, &b), MSP_ERR_ARGUMENT);
    msp_buf_free(&b);
}

static void test_key_share(void **state)
{
    (void)state;
    uint8_t out[200];
    size_t len = 0;
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), *p = EVP_EC_gen("P-256"), *q = EVP_EC_gen("P-384");
    EVP_PKEY *rsa = EVP_RSA_gen(1024);
    assert_int_equal(msp_ets_key_share(x, out, sizeof(out), &len), MSP_OK);
    assert_int_equal(len, 32);
    assert_int_equal(msp_ets_key_share(p, out, sizeof(out), &len), MSP_OK);
    assert_int_equal(len, 65);
    assert_int_equal(out[0], 0x04);
    assert_int_equal(msp_ets_key_share(p, out, 64, &len), MSP_ERR_LIMIT);
    assert_int_equal(msp_ets_key_share(q, out, sizeof(out), &len), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_key_share(rsa, out, sizeof(out), &len), MSP_ERR_ARGUMENT);
    EVP_PKEY_free(x);
    EVP_PKEY_free(p);
    EVP_PKEY_free(q);
    EVP_PKEY_free(rsa);
}

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    assert_non_null(x);
    assert_true(X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), 7) &&
                X509_gmtime_adj(X509_getm_notBefore(x), 0) && X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
                X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ets.example", -1, -1, 0) &&
                X509_set_subject_name(x, n) && X509_set_issuer_name(x, n) && X509_set_pubkey(x, key));
    X509_NAME_free(n);
    return x;
}

/* Two static keys, one certificate: one otherName each (ETS-VI-5), next to a DNS name, through DER and back. */
static void test_certificate(void **state)
{
    (void)state;
    EVP_PKEY *signing = EVP_EC_gen("P-256"), *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), *k2 = EVP_EC_gen("P-256");
    X509 *x = self_signed(signing);
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *dns = GENERAL_NAME_new();
    ASN1_IA5STRING *host = ASN1_IA5STRING_new();
    ASN1_STRING_set(host, "ets.example", -1);
    GENERAL_NAME_set0_value(dns, GEN_DNS, host);
    sk_GENERAL_NAME_push(names, dns);
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0), 1);
    GENERAL_NAMES_free(names);
    uint8_t ks[65], fp1[10], fp2[10];
    size_t len;
    assert_int_equal(msp_ets_key_share(k1, ks, sizeof(ks), &len), MSP_OK);
    msp_ets_fingerprint(ks, len, fp1);
    assert_int_equal(msp_ets_key_share(k2, ks, sizeof(ks), &len), MSP_OK);
    msp_ets_fingerprint(ks, len, fp2);
    assert_int_equal(msp_ets_cert_add(x, fp1, "all IDS of example.com", 22), MSP_OK);
    assert_int_equal(msp_ets_cert_add(x, fp2, "compliance logger", 17), MSP_OK);
    assert_true(X509_sign(x, signing, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int der_len = i2d_X509(x, &der);
    const unsigned char *p = der;
    X509 *y = d2i_X509(NULL, &p, der_len);
    assert_non_null(y);
    msp_ets_vi_t vi[4];
    size_t n;
    int misplaced;
    assert_int_equal(msp_ets_cert_read(y, vi, 4, &n, &misplaced), MSP_OK);
    assert_int_equal(n, 2);
    assert_false(misplaced);
    assert_memory_equal(vi[0].fingerprint, fp1, 10);
    assert_string_equal(vi[0].access, "all IDS of example.com");
    assert_memory_equal(vi[1].fingerprint, fp2, 10);
    assert_string_equal(vi[1].access, "compliance logger");
    assert_int_equal(msp_ets_cert_read(y, vi, 1, &n, &misplaced), MSP_ERR_LIMIT);
    /* the DNS name is still there, first */
    GENERAL_NAMES *back = X509_get_ext_d2i(y, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(back), 3);
    assert_int_equal(sk_GENERAL_NAME_value(back, 0)->type, GEN_DNS);
    GENERAL_NAMES_free(back);
    /* a stand-alone extension with the ETS OID is not where V1.3.1 puts it: reported */
    ASN1_OBJECT *oid = OBJ_txt2obj(MSP_ETS_VI_OID, 1);
    ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(data, (const unsigned char *)"\x05\x00", 2);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, data);
    X509_add_ext(y, ext, -1);
    assert_int_equal(msp_ets_cert_read(y, vi, 4, &n, &misplaced), MSP_OK);
    assert_true(misplaced);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(data);
    ASN1_OBJECT_free(oid);
    OPENSSL_free(der);
    X509_free(x);
    X509_free(y);
    EVP_PKEY_free(signing);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* An ETS otherName whose value is not a VisibilityInformation is an error, never skipped. */
static void test_broken_value(void **state)
{
    (void)state;
    EVP_PKEY *signing = EVP_EC_gen("P-256");
    X509 *x = self_signed(signing);
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_TYPE *value = ASN1_TYPE_new();
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    static const uint8_t bad[] = {0x30, 0x03, 0x04, 0x01, 0x00};
    ASN1_STRING_set(seq, bad, sizeof(bad));
    ASN1_TYPE_set(value, V_ASN1_SEQUENCE, seq);
    GENERAL_NAME_set0_othername(gen, OBJ_txt2obj(MSP_ETS_VI_OID, 1), value);
    sk_GENERAL_NAME_push(names, gen);
    X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0);
    GENERAL_NAMES_free(names);
    msp_ets_vi_t vi[2];
    size_t n;
    int misplaced;
    assert_int_equal(msp_ets_cert_read(x, vi, 2, &n, &misplaced), MSP_ERR_SYNTAX);
    X509_free(x);
    EVP_PKEY_free(signing);
}

/*
 * VisibilityInformation ::= SEQUENCE { fingerprint OCTET STRING (SIZE(10)), accessDescription UTF8String }
 * (ETS-VI-2) has exactly two elements: one more inside the SEQUENCE is refused, and so are bytes after it.
 * The well-formed prefix of each is accepted, so the refusal is for the extra element alone.
 */
static void test_extra_element(void **state)
{
    (void)state;
    static const uint8_t good[] = {0x30, 0x0e, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0c, 0x00};
    /* a NULL after accessDescription, inside the SEQUENCE (its length counts it) */
    static const uint8_t extra_null[] = {0x30, 0x10, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0c, 0x00, 0x05, 0x00};
    /* a second accessDescription inside the SEQUENCE */
    static const uint8_t extra_utf8[] = {0x30, 0x11, 0x04, 0x0a, 1,    2,    3,    4,    5,  6,
                                         7,    8,    9,    10,   0x0c, 0x00, 0x0c, 0x01, 'x'};
    /* the same NULL after the SEQUENCE: trailing bytes */
    static const uint8_t trailing[] = {0x30, 0x0e, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0c, 0x00, 0x05, 0x00};
    uint8_t got[MSP_ETS_FINGERPRINT_LEN];
    const uint8_t *a;
    size_t alen;
    assert_int_equal(msp_ets_vi_decode(good, sizeof(good), got, &a, &alen), MSP_OK);
    assert_int_equal(alen, 0);
    assert_int_equal(msp_ets_vi_decode(extra_null, sizeof(extra_null), got, &a, &alen), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_vi_decode(extra_utf8, sizeof(extra_utf8), got, &a, &alen), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_vi_decode(trailing, sizeof(trailing), got, &a, &alen), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_vi_decode(trailing, sizeof(trailing) - 2, got, &a, &alen), MSP_OK);

    /* in a certificate: the otherName with the extra element is an error, as any broken value is */
    EVP_PKEY *signing = EVP_EC_gen("P-256");
    X509 *x = self_signed(signing);
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_TYPE *value = ASN1_TYPE_new();
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    assert_true(ASN1_STRING_set(seq, extra_null, sizeof(extra_null)));
    ASN1_TYPE_set(value, V_ASN1_SEQUENCE, seq);
    assert_true(GENERAL_NAME_set0_othername(gen, OBJ_txt2obj(MSP_ETS_VI_OID, 1), value));
    assert_true(sk_GENERAL_NAME_push(names, gen) > 0);
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0), 1);
    GENERAL_NAMES_free(names);
    msp_ets_vi_t vi[2];
    size_t n;
    int misplaced;
    assert_int_equal(msp_ets_cert_read(x, vi, 2, &n, &misplaced), MSP_ERR_SYNTAX);
    X509_free(x);
    EVP_PKEY_free(signing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprint_known_answer),
        cmocka_unit_test(test_der_layout),
        cmocka_unit_test(test_long_description_and_rules),
        cmocka_unit_test(test_key_share),
        cmocka_unit_test(test_certificate),
        cmocka_unit_test(test_broken_value),
        cmocka_unit_test(test_extra_element),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
