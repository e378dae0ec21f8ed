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
    /* too few elements: no accessDescription at all, and one of another type (PrintableString) */
    static const uint8_t missing[] = {0x30, 0x0c, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    static const uint8_t printable[] = {0x30, 0x0e, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x13, 0x00};
    assert_int_equal(msp_ets_vi_decode(missing, sizeof(missing), got, &a, &alen), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_vi_decode(printable, sizeof(printable), got, &a, &alen), MSP_ERR_SYNTAX);

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

/*
 * DER lengths written by hand (X.690 8.1.3, 10.1): short form up to 0x7f, 0x81 for 0x80..0xff, 0x82 for
 * 0x100..0xffff, each accepted at both the SEQUENCE and the accessDescription and decoded to the right
 * fingerprint and description; the indefinite form 0x80, non-minimal forms, a leading zero, 0x83 and more,
 * and a length cut short are refused.
 */
static const uint8_t vi_fp[MSP_ETS_FINGERPRINT_LEN] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9};

/* 0x30 <seq_len> 0x04 0x0a <vi_fp> 0x0c <str_len> and n bytes 'a'+i%26: the length bytes exactly as given. */
static size_t hand_vi(uint8_t *out, const uint8_t *seq_len, size_t seq_n, const uint8_t *str_len, size_t str_n,
                      size_t n)
{
    size_t o = 0;
    out[o++] = 0x30;
    memcpy(out + o, seq_len, seq_n);
    o += seq_n;
    out[o++] = 0x04;
    out[o++] = MSP_ETS_FINGERPRINT_LEN;
    memcpy(out + o, vi_fp, sizeof(vi_fp));
    o += sizeof(vi_fp);
    out[o++] = 0x0c;
    memcpy(out + o, str_len, str_n);
    o += str_n;
    for (size_t i = 0; i < n; i++) {
        out[o++] = (uint8_t)('a' + i % 26);
    }
    return o;
}

/* The checks report the line of their caller. */
#define assert_vi_ok(der, len, want_access) check_vi_ok(der, len, want_access, __FILE__, __LINE__)
#define assert_vi_syntax(der, len) check_vi_syntax(der, len, __FILE__, __LINE__)

static void check_vi_ok(const uint8_t *der, size_t len, size_t want_access, const char *file, int line)
{
    uint8_t got[MSP_ETS_FINGERPRINT_LEN];
    const uint8_t *a = NULL;
    size_t alen = 0;
    _assert_int_equal((uintmax_t)msp_ets_vi_decode(der, len, got, &a, &alen), MSP_OK, file, line);
    _assert_memory_equal(got, vi_fp, sizeof(vi_fp), file, line);
    _assert_int_equal(alen, want_access, file, line);
    _assert_true(a == der + len - want_access, "a == der + len - want_access", file, line);
    for (size_t i = 0; i < alen; i++) {
        _assert_int_equal(a[i], (uintmax_t)('a' + i % 26), file, line);
    }
}

static void check_vi_syntax(const uint8_t *der, size_t len, const char *file, int line)
{
    uint8_t got[MSP_ETS_FINGERPRINT_LEN];
    const uint8_t *a;
    size_t alen;
    _assert_int_equal((uintmax_t)msp_ets_vi_decode(der, len, got, &a, &alen), MSP_ERR_SYNTAX, file, line);
}

#define L(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static void test_length_forms(void **state)
{
    (void)state;
    static uint8_t der[8 + 16 + MSP_ETS_MAX_ACCESS + 2];
    /* valid: each boundary of each form, at both levels */
    assert_vi_ok(der, hand_vi(der, L(0x0e), L(0x00), 0), 0);
    assert_vi_ok(der, hand_vi(der, L(0x7f), L(0x71), 0x71), 0x71);                   /* SEQUENCE 0x7f: short */
    assert_vi_ok(der, hand_vi(der, L(0x81, 0x80), L(0x72), 0x72), 0x72);             /* SEQUENCE 0x80: 0x81 0x80 */
    assert_vi_ok(der, hand_vi(der, L(0x81, 0x8d), L(0x7f), 0x7f), 0x7f);             /* string 0x7f: short */
    assert_vi_ok(der, hand_vi(der, L(0x81, 0x8f), L(0x81, 0x80), 0x80), 0x80);       /* string 0x80: 0x81 0x80 */
    assert_vi_ok(der, hand_vi(der, L(0x81, 0xff), L(0x81, 0xf0), 0xf0), 0xf0);       /* SEQUENCE 0xff */
    assert_vi_ok(der, hand_vi(der, L(0x82, 0x01, 0x00), L(0x81, 0xf1), 0xf1), 0xf1); /* SEQUENCE 0x100 */
    assert_vi_ok(der, hand_vi(der, L(0x82, 0x01, 0x0e), L(0x81, 0xff), 0xff), 0xff); /* string 0xff */
    assert_vi_ok(der, hand_vi(der, L(0x82, 0x01, 0x10), L(0x82, 0x01, 0x00), 0x100), 0x100); /* string 0x100 */
    /* exactly MSP_ETS_MAX_ACCESS (0x1000) bytes of description is accepted, one more is refused */
    assert_vi_ok(der, hand_vi(der, L(0x82, 0x10, 0x10), L(0x82, 0x10, 0x00), MSP_ETS_MAX_ACCESS), MSP_ETS_MAX_ACCESS);
    assert_vi_syntax(der, hand_vi(der, L(0x82, 0x10, 0x11), L(0x82, 0x10, 0x01), MSP_ETS_MAX_ACCESS + 1));

    /* the indefinite form 0x80, with 128 bytes after it that a definite length 0x80 would take */
    assert_vi_syntax(der, hand_vi(der, L(0x80), L(0x72), 0x72));
    assert_vi_syntax(der, hand_vi(der, L(0x81, 0x8e), L(0x80), 0x80));
    /* and as it is really used: contents, then the end-of-contents octets */
    static const uint8_t indefinite[] = {0x30, 0x80, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0c, 0x00, 0x00, 0x00};
    assert_vi_syntax(indefinite, sizeof(indefinite));
    /* not minimal: 0x81 with less than 0x80, 0x82 with less than 0x100, a leading zero */
    assert_vi_syntax(der, hand_vi(der, L(0x81, 0x7f), L(0x71), 0x71));
    assert_vi_syntax(der, hand_vi(der, L(0x82, 0x00, 0x80), L(0x72), 0x72));
    assert_vi_syntax(der, hand_vi(der, L(0x82, 0x00, 0xff), L(0x81, 0xf0), 0xf0));
    assert_vi_syntax(der, hand_vi(der, L(0x0f), L(0x81, 0x00), 0));
    assert_vi_syntax(der, hand_vi(der, L(0x14), L(0x81, 0x05), 5));
    assert_vi_syntax(der, hand_vi(der, L(0x81, 0x8e), L(0x81, 0x7f), 0x7f));
    assert_vi_syntax(der, hand_vi(der, L(0x81, 0x90), L(0x82, 0x00, 0x80), 0x80));
    assert_vi_syntax(der, hand_vi(der, L(0x82, 0x01, 0x0f), L(0x82, 0x00, 0xff), 0xff));
    /* 0x83 and more */
    assert_vi_syntax(der, hand_vi(der, L(0x83, 0x00, 0x00, 0x0e), L(0x00), 0));
    assert_vi_syntax(der, hand_vi(der, L(0x83, 0x00, 0x01, 0x11), L(0x83, 0x00, 0x01, 0x00), 0x100));
    assert_vi_syntax(der, hand_vi(der, L(0x84, 0x00, 0x00, 0x00, 0x0e), L(0x00), 0));
    assert_vi_syntax(der, hand_vi(der, L(0x8f), L(0x00), 0));
    assert_vi_syntax(der, hand_vi(der, L(0xff), L(0x00), 0));
    /* lengths cut short */
    static const uint8_t cut1[] = {0x30, 0x81}, cut2[] = {0x30, 0x82, 0x01};
    assert_vi_syntax(cut1, sizeof(cut1));
    assert_vi_syntax(cut2, sizeof(cut2));
    assert_vi_syntax(der, hand_vi(der, L(0x0e), L(0x81), 0));
    assert_vi_syntax(der, hand_vi(der, L(0x0f), L(0x82, 0x01), 0));
}

/*
 * A refused length that ends the SEQUENCE (nothing after it there), decoded right after a valid
 * VisibilityInformation: a decoder that took such a length without splitting the description off would
 * report what the earlier call left behind.
 */
static int decode_after_valid(const uint8_t *der, size_t len)
{
    static const uint8_t prior[] = {0x30, 0x10, 0x04, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0c, 0x02, 'o', 'k'};
    uint8_t got[MSP_ETS_FINGERPRINT_LEN];
    const uint8_t *a;
    size_t alen;
    int first = msp_ets_vi_decode(prior, sizeof(prior), got, &a, &alen);
    int second = msp_ets_vi_decode(der, len, got, &a, &alen);
    return first == MSP_OK ? second : -1;
}

static void test_refused_length_at_end(void **state)
{
    (void)state;
    uint8_t der[32];
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x0f), L(0x81, 0x00), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x10), L(0x82, 0x00, 0x00), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x0f), L(0x82, 0x01), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x0e), L(0x81), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x0f), L(0x81, 0x7f), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x10), L(0x82, 0x00, 0xff), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x0e), L(0x80), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x0e), L(0x83), 0)), MSP_ERR_SYNTAX);
    assert_int_equal(decode_after_valid(der, hand_vi(der, L(0x0e), L(0xff), 0)), MSP_ERR_SYNTAX);
}

/* An ETS otherName whose value is a valid VisibilityInformation's DER, but as an OCTET STRING, not a SEQUENCE. */
static void test_value_not_sequence(void **state)
{
    (void)state;
    uint8_t der[64];
    size_t len = hand_vi(der, L(0x12), L(0x04), 4);
    assert_vi_ok(der, len, 4); /* the bytes themselves are fine */
    for (int as_seq = 1; as_seq >= 0; as_seq--) {
        EVP_PKEY *signing = EVP_EC_gen("P-256");
        X509 *x = self_signed(signing);
        GENERAL_NAMES *names = GENERAL_NAMES_new();
        GENERAL_NAME *gen = GENERAL_NAME_new();
        ASN1_TYPE *value = ASN1_TYPE_new();
        int type = as_seq ? V_ASN1_SEQUENCE : V_ASN1_OCTET_STRING;
        ASN1_STRING *str = ASN1_STRING_type_new(type);
        assert_true(ASN1_STRING_set(str, der, (int)len));
        ASN1_TYPE_set(value, type, str);
        assert_true(GENERAL_NAME_set0_othername(gen, OBJ_txt2obj(MSP_ETS_VI_OID, 1), value));
        assert_true(sk_GENERAL_NAME_push(names, gen) > 0);
        assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0), 1);
        GENERAL_NAMES_free(names);
        msp_ets_vi_t vi[2];
        size_t n = 0;
        int misplaced;
        if (as_seq) { /* the control: the same bytes as a SEQUENCE are read */
            assert_int_equal(msp_ets_cert_read(x, vi, 2, &n, &misplaced), MSP_OK);
            assert_int_equal(n, 1);
            assert_memory_equal(vi[0].fingerprint, vi_fp, sizeof(vi_fp));
            assert_string_equal(vi[0].access, "abcd");
        } else {
            assert_int_equal(msp_ets_cert_read(x, vi, 2, &n, &misplaced), MSP_ERR_SYNTAX);
        }
        X509_free(x);
        EVP_PKEY_free(signing);
    }
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
        cmocka_unit_test(test_length_forms),
        cmocka_unit_test(test_refused_length_at_end),
        cmocka_unit_test(test_value_not_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
