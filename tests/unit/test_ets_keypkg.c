/*
 * ETS key packages (ets.md 3.4 ETS-KP-1): round trips of X25519 and P-256
 * static keys with and without doNotUseAfter, and of a signer (Type B) whose
 * certificate carries their visibility information; the exact bytes of an
 * X25519 package assembled by hand from the spec's tags and OIDs, the
 * P-256 prefix (id-ecDH + prime256v1, ECPrivateKey v1); every truncation of
 * a valid package refused; wrong versions, a static key without validity,
 * public keys that are not the private key's, a signer before a static key
 * or without the fingerprints, non-minimal and indefinite lengths and the
 * size limit refused.
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
#include "msp/ets_keypkg.h"

static EVP_PKEY *x25519_fixed(void)
{
    uint8_t priv[32];
    for (int i = 0; i < 32; i++) {
        priv[i] = (uint8_t)(i + 1);
    }
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, sizeof(priv));
    assert_non_null(k);
    return k;
}

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

/* Encodes into a fresh heap buffer; the caller frees. */
static void encode(const msp_ets_kp_static_t *s, size_t ns, const msp_ets_kp_signer_t *g, size_t ng, msp_buf_t *b)
{
    msp_error_t err;
    msp_buf_init(b, MSP_ETS_KP_MAX_SIZE);
    assert_int_equal(msp_ets_keypkg_encode(s, ns, g, ng, b, &err), MSP_OK);
}

static int decode(const uint8_t *p, size_t n)
{
    msp_ets_keypkg_t pkg;
    msp_error_t err;
    int ret = msp_ets_keypkg_decode(p, n, &pkg, &err);
    msp_ets_keypkg_free(&pkg);
    return ret;
}

static void test_round_trip_static(void **state)
{
    (void)state;
    msp_ets_kp_static_t s[2] = {{x25519_fixed(), 1700000000, 1700086400, 1}, {p256(), 5, 0, 0}};
    msp_buf_t b;
    encode(s, 2, NULL, 0, &b);
    msp_ets_keypkg_t pkg;
    msp_error_t err;
    assert_int_equal(msp_ets_keypkg_decode(b.base, b.len, &pkg, &err), MSP_OK);
    assert_int_equal(pkg.n_static, 2);
    assert_int_equal(pkg.n_signer, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(EVP_PKEY_eq(pkg.statics[i].key, s[i].key), 1);
        assert_int_equal(pkg.statics[i].not_before, s[i].not_before);
        assert_int_equal(pkg.statics[i].has_not_after, s[i].has_not_after);
    }
    assert_int_equal(pkg.statics[0].not_after, 1700086400);
    assert_string_equal(msp_ets_kp_group_name(pkg.statics[1].key), "p256");
    assert_int_equal(msp_ets_kp_group_id(pkg.statics[0].key), 0x001d);
    /* the private halves arrive too: the decoded keys derive the same secret as the originals */
    uint8_t raw[32], raw2[32];
    size_t n = sizeof(raw), n2 = sizeof(raw2);
    assert_int_equal(EVP_PKEY_get_raw_private_key(pkg.statics[0].key, raw, &n), 1);
    assert_int_equal(EVP_PKEY_get_raw_private_key(s[0].key, raw2, &n2), 1);
    assert_memory_equal(raw, raw2, 32);
    BIGNUM *d1 = NULL, *d2 = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pkg.statics[1].key, "priv", &d1), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(s[1].key, "priv", &d2), 1);
    assert_int_equal(BN_cmp(d1, d2), 0);
    BN_free(d1);
    BN_free(d2);
    msp_ets_keypkg_free(&pkg);
    msp_buf_free(&b);
    EVP_PKEY_free(s[0].key);
    EVP_PKEY_free(s[1].key);
}

/* The whole X25519 package, assembled by hand from ETS-KP-1 (RFC 5958, RFC 8410, RFC 7906 OID). */
static void test_x25519_layout(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {x25519_fixed(), 0x60000000, 0x80000000, 1};
    uint8_t pub[32];
    size_t pn = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(s.key, pub, &pn), 1);
    uint8_t want[117], *w = want;
    static const uint8_t head[] = {0x30, 0x73, 0x30, 0x71, 0x02, 0x01, 0x01, /* package, element, v2 */
                                   0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, /* id-X25519 */
                                   0x04, 0x22, 0x04, 0x20};                  /* CurvePrivateKey */
    static const uint8_t attrs[] = {0xa0, 0x1e, 0x30, 0x1c,                  /* [0] attributes */
                                    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x02, 0x01, 0x0d, 0x06, /* 7906 */
                                    0x31, 0x0f, 0x30, 0x0d, 0x02, 0x04, 0x60, 0x00, 0x00, 0x00,       /* before */
                                    0x02, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00, /* after, minimal + sign */
                                    0x81, 0x21, 0x00};                        /* [1] publicKey */
    memcpy(w, head, sizeof(head));
    w += sizeof(head);
    for (int i = 0; i < 32; i++) {
        *w++ = (uint8_t)(i + 1);
    }
    memcpy(w, attrs, sizeof(attrs));
    w += sizeof(attrs);
    memcpy(w, pub, 32);
    w += 32;
    assert_int_equal(w - want, sizeof(want));
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.base, want, sizeof(want));
    assert_int_equal(decode(want, sizeof(want)), MSP_OK);
    msp_buf_free(&b);
    EVP_PKEY_free(s.key);
}

/* P-256: id-ecDH 1.3.132.1.12 with namedCurve prime256v1, privateKey an RFC 5915 ECPrivateKey (ets.md 3.4). */
static void test_p256_layout(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {p256(), 1, 2, 1};
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    static const uint8_t head[] = {0x30, 0x81, 0xe5, 0x30, 0x81, 0xe2, 0x02, 0x01, 0x01, 0x30,
                                   0x11, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x01, 0x0c,             /* id-ecDH */
                                   0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, /* prime256v1 */
                                   0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20};      /* ECPrivateKey */
    assert_int_equal(b.len, 0xe5 + 3);
    assert_memory_equal(b.base, head, sizeof(head));
    /* the outer publicKey is the key_share point */
    uint8_t ks[65];
    size_t ks_len;
    assert_int_equal(msp_ets_key_share(s.key, ks, sizeof(ks), &ks_len), MSP_OK);
    static const uint8_t tail_head[] = {0x81, 0x42, 0x00};
    assert_memory_equal(b.base + b.len - 68, tail_head, 3);
    assert_memory_equal(b.base + b.len - 65, ks, 65);
    msp_buf_free(&b);
    EVP_PKEY_free(s.key);
}

static void test_every_truncation_refused(void **state)
{
    (void)state;
    msp_ets_kp_static_t s[2] = {{x25519_fixed(), 10, 20, 1}, {p256(), 10, 20, 1}};
    msp_buf_t b;
    encode(s, 2, NULL, 0, &b);
    assert_int_equal(decode(b.base, b.len), MSP_OK);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n + 1); /* a fresh allocation of exactly n bytes lets ASan catch over-reads */
        memcpy(copy, b.base, n);
        assert_int_not_equal(decode(n ? copy : NULL, n), MSP_OK);
        free(copy);
    }
    msp_buf_free(&b);
    EVP_PKEY_free(s[0].key);
    EVP_PKEY_free(s[1].key);
}

static void test_bad_versions(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {x25519_fixed(), 10, 20, 1};
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    assert_int_equal(b.base[6], 1); /* 30 73 30 71 02 01 [01] */
    for (int v = 0; v < 256; v++) {
        b.base[6] = (uint8_t)v;
        assert_int_equal(decode(b.base, b.len) == MSP_OK, v == 1);
    }
    msp_buf_free(&b);
    EVP_PKEY_free(s.key);
}

static void test_v2_without_validity(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {x25519_fixed(), 10, 20, 1};
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    /* drop the [0] attributes: 2 + 0x1a bytes after version (3), algorithm (7), privateKey (36) */
    size_t at = 4 + 3 + 7 + 36, alen = 2 + b.base[at + 1];
    assert_int_equal(b.base[at], 0xa0);
    uint8_t cut[256];
    memcpy(cut, b.base, at);
    memcpy(cut + at, b.base + at + alen, b.len - at - alen);
    size_t n = b.len - alen;
    cut[1] = (uint8_t)(n - 2);
    cut[3] = (uint8_t)(n - 4);
    assert_int_equal(decode(cut, n), MSP_ERR_INVALID);
    /* attributes present, but the validity OID changed into another attribute */
    memcpy(cut, b.base, b.len);
    cut[at + 4 + 2 + 8] ^= 0x01; /* last OID byte: 13.6 -> 13.7 */
    assert_int_equal(decode(cut, b.len), MSP_ERR_INVALID);
    msp_buf_free(&b);
    EVP_PKEY_free(s.key);
}

static uint8_t *find(uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

static void test_public_private_mismatch(void **state)
{
    (void)state;
    /* X25519: one flipped bit of the public key */
    msp_ets_kp_static_t x = {x25519_fixed(), 10, 20, 1};
    msp_buf_t b;
    encode(&x, 1, NULL, 0, &b);
    b.base[b.len - 1] ^= 1;
    assert_int_equal(decode(b.base, b.len), MSP_ERR_INVALID);
    msp_buf_free(&b);
    EVP_PKEY_free(x.key);

    /* P-256: another valid point, in both places it appears (ECPrivateKey and publicKey) */
    msp_ets_kp_static_t s1 = {p256(), 10, 20, 1}, s2 = {p256(), 10, 20, 1};
    uint8_t ks1[65], ks2[65];
    size_t n1, n2;
    assert_int_equal(msp_ets_key_share(s1.key, ks1, sizeof(ks1), &n1), MSP_OK);
    assert_int_equal(msp_ets_key_share(s2.key, ks2, sizeof(ks2), &n2), MSP_OK);
    encode(&s1, 1, NULL, 0, &b);
    uint8_t *p;
    int replaced = 0;
    while ((p = find(b.base, b.len, ks1, 65)) != NULL) {
        memcpy(p, ks2, 65);
        replaced++;
    }
    assert_int_equal(replaced, 2);
    assert_int_equal(decode(b.base, b.len), MSP_ERR_INVALID);
    /* only the outer one replaced: the two public keys disagree */
    msp_buf_free(&b);
    encode(&s1, 1, NULL, 0, &b);
    memcpy(b.base + b.len - 65, ks2, 65);
    assert_int_equal(decode(b.base, b.len), MSP_ERR_INVALID);
    msp_buf_free(&b);
    EVP_PKEY_free(s1.key);
    EVP_PKEY_free(s2.key);
}

/* A self-signed ECDSA certificate with the visibility information of the given static keys. */
static X509 *signer_cert(EVP_PKEY *key, const msp_ets_kp_static_t *s, size_t n)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"ets", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    for (size_t i = 0; i < n; i++) {
        uint8_t ks[65], fp[MSP_ETS_FINGERPRINT_LEN];
        size_t len;
        assert_int_equal(msp_ets_key_share(s[i].key, ks, sizeof(ks), &len), MSP_OK);
        assert_int_equal(msp_ets_fingerprint(ks, len, fp), MSP_OK);
        assert_int_equal(msp_ets_cert_add(x, fp, "test", 4), MSP_OK);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void test_signer_round_trip(void **state)
{
    (void)state;
    msp_ets_kp_static_t s[2] = {{x25519_fixed(), 10, 20, 1}, {p256(), 10, 20, 1}};
    EVP_PKEY *sk = p256();
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(rsa);
    msp_ets_kp_signer_t g[2] = {{sk, signer_cert(sk, s, 2)}, {rsa, signer_cert(rsa, s, 2)}};
    msp_buf_t b;
    encode(s, 2, g, 2, &b);
    msp_ets_keypkg_t pkg;
    msp_error_t err;
    assert_int_equal(msp_ets_keypkg_decode(b.base, b.len, &pkg, &err), MSP_OK);
    assert_int_equal(pkg.n_static, 2);
    assert_int_equal(pkg.n_signer, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(X509_cmp(pkg.signers[i].cert, g[i].cert), 0);
        assert_int_equal(EVP_PKEY_eq(pkg.signers[i].key, g[i].key), 1);
    }
    msp_ets_keypkg_free(&pkg);
    msp_buf_free(&b);

    /* a certificate that lacks the fingerprint of one static key is refused */
    msp_ets_kp_signer_t partial = {sk, signer_cert(sk, s, 1)};
    encode(s, 2, &partial, 1, &b);
    assert_int_equal(msp_ets_keypkg_decode(b.base, b.len, &pkg, &err), MSP_ERR_INVALID);
    msp_buf_free(&b);

    /* a signer before a static key is refused: splice the elements of two packages in the wrong order */
    msp_buf_t a, c;
    encode(s, 1, NULL, 0, &a);
    encode(NULL, 0, &partial, 1, &c); /* on its own (no static key to bind) a signer is fine */
    assert_int_equal(decode(c.base, c.len), MSP_OK);
    size_t ha = 2, hc = c.base[1] == 0x82 ? 4 : c.base[1] == 0x81 ? 3 : 2;
    size_t body = (c.len - hc) + (a.len - ha);
    uint8_t *both = malloc(body + 4);
    both[0] = 0x30;
    both[1] = 0x82;
    both[2] = (uint8_t)(body >> 8);
    both[3] = (uint8_t)body;
    memcpy(both + 4, c.base + hc, c.len - hc);
    memcpy(both + 4 + c.len - hc, a.base + ha, a.len - ha);
    assert_int_equal(decode(both, body + 4), MSP_ERR_INVALID);
    memcpy(both + 4, a.base + ha, a.len - ha); /* the right order decodes */
    memcpy(both + 4 + a.len - ha, c.base + hc, c.len - hc);
    assert_int_equal(decode(both, body + 4), MSP_OK); /* partial binds exactly s[0] */
    free(both);
    msp_buf_free(&a);
    msp_buf_free(&c);

    X509_free(partial.cert);
    X509_free(g[0].cert);
    X509_free(g[1].cert);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(s[0].key);
    EVP_PKEY_free(s[1].key);
}

static void test_der_strictness_and_limits(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {x25519_fixed(), 10, 20, 1};
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    uint8_t v[256];
    /* the outer length in long form (30 81 NN): not minimal */
    v[0] = 0x30;
    v[1] = 0x81;
    memcpy(v + 2, b.base + 1, b.len - 1);
    assert_int_equal(decode(v, b.len + 1), MSP_ERR_SYNTAX);
    /* indefinite length with an end-of-contents */
    memcpy(v, b.base, b.len);
    v[1] = 0x80;
    v[b.len] = 0;
    v[b.len + 1] = 0;
    assert_int_equal(decode(v, b.len + 2), MSP_ERR_SYNTAX);
    /* a trailing byte */
    memcpy(v, b.base, b.len);
    v[b.len] = 0;
    assert_int_equal(decode(v, b.len + 1), MSP_ERR_SYNTAX);
    /* an empty package */
    static const uint8_t empty[] = {0x30, 0x00};
    assert_int_equal(decode(empty, sizeof(empty)), MSP_ERR_SYNTAX);
    /* the size limit is checked before anything is read */
    uint8_t *big = calloc(1, MSP_ETS_KP_MAX_SIZE + 1);
    assert_int_equal(decode(big, MSP_ETS_KP_MAX_SIZE + 1), MSP_ERR_LIMIT);
    free(big);
    /* the encoder refuses an empty package and keys it cannot carry */
    msp_error_t err;
    msp_buf_t o;
    msp_buf_init(&o, 1024);
    assert_int_equal(msp_ets_keypkg_encode(NULL, 0, NULL, 0, &o, &err), MSP_ERR_ARGUMENT);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    msp_ets_kp_static_t bad = {ed, 0, 0, 0};
    assert_int_equal(msp_ets_keypkg_encode(&bad, 1, NULL, 0, &o, &err), MSP_ERR_ARGUMENT);
    msp_ets_kp_static_t backwards = {s.key, 20, 10, 1};
    assert_int_equal(msp_ets_keypkg_encode(&backwards, 1, NULL, 0, &o, &err), MSP_ERR_ARGUMENT);
    EVP_PKEY_free(ed);
    msp_buf_free(&o);
    msp_buf_free(&b);
    EVP_PKEY_free(s.key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_static),
        cmocka_unit_test(test_x25519_layout),
        cmocka_unit_test(test_p256_layout),
        cmocka_unit_test(test_every_truncation_refused),
        cmocka_unit_test(test_bad_versions),
        cmocka_unit_test(test_v2_without_validity),
        cmocka_unit_test(test_public_private_mismatch),
        cmocka_unit_test(test_signer_round_trip),
        cmocka_unit_test(test_der_strictness_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
