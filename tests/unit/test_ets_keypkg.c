/*
 * ETS key packages (ets.md 3.4 ETS-KP-1): round trips of X25519 and P-256
 * static keys with and without doNotUseAfter, and of a signer (Type B) whose
 * certificate carries their visibility information; the exact bytes of an
 * X25519 package assembled by hand from the spec's tags and OIDs, the
 * P-256 prefix (id-ecDH + prime256v1, ECPrivateKey v1); every truncation of
 * a valid package refused; wrong versions, a static key without validity,
 * public keys that are not the private key's, a signer before a static key
 * or without the fingerprints, non-minimal and indefinite lengths and the
 * size limit refused. A small DER editor re-emits whole packages with one TLV
 * changed (ancestors' lengths fixed up), so that every TLV of a static and of
 * a signer package gets: a non-minimal length, an indefinite length, its
 * constructed bit flipped, another tag, the same tag in the long form, an
 * element appended inside it; integers get out-of-range values. Every one of
 * them is refused as MSP_ERR_SYNTAX, except a version out of 0..1 and an
 * algorithm parameter of another universal type (MSP_ERR_INVALID). Another
 * attribute beside the validity period is skipped when the SET OF is in DER
 * order, refused when not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
        assert_int_equal(decode(n ? copy : NULL, n), MSP_ERR_SYNTAX);
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

/*
 * A DER editor for the tests: re-emits an encoding TLV by TLV, numbered in pre-order, with TLV `target` changed
 * and every enclosing length fixed up. It descends into constructed TLVs (except `opaque`, the certificate, which
 * is OpenSSL's to parse) and into the privateKey OCTET STRING of a static element (CurvePrivateKey, ECPrivateKey).
 */
enum { E_NONE, E_LONG_LEN, E_INDEFINITE, E_CONS_FLIP, E_TAG_SWAP, E_LONG_TAG, E_TRAILING, E_CONTENT };

typedef struct edit {
    size_t target;
    int kind;
    const uint8_t *content; /* E_CONTENT: the new content octets */
    size_t content_len;
    const uint8_t *opaque;
    size_t count;      /* TLVs seen */
    int hit;           /* the change applied (the target exists and the change fits its kind) */
    uint8_t tag;       /* the target's tag */
    const uint8_t *at; /* and where it starts in the original */
    size_t n_int;      /* INTEGERs seen, and the target's number among them */
    size_t int_at;
} edit_t;

static void tlv(const uint8_t *p, size_t n, uint8_t *tag, size_t *hdr, size_t *len)
{
    assert_true(n >= 2);
    size_t l = p[1], h = 2;
    if (l & 0x80) {
        size_t k = l & 0x7f;
        assert_true(k >= 1 && k <= 3 && n >= 2 + k);
        l = 0;
        for (size_t i = 0; i < k; i++) {
            l = l << 8 | p[2 + i];
        }
        h += k;
    }
    assert_true(n - h >= l);
    *tag = p[0];
    *hdr = h;
    *len = l;
}

/* A definite length, minimal or with one octet more than needed. */
static void put_len(msp_buf_t *b, size_t n, int longer)
{
    size_t k = n < 0x80 ? 0 : n < 0x100 ? 1 : n < 0x10000 ? 2 : 3;
    if (k == 0 && !longer) {
        msp_buf_put_u8(b, (uint8_t)n);
        return;
    }
    k += longer != 0;
    msp_buf_put_u8(b, (uint8_t)(0x80 | k));
    for (size_t i = k; i-- > 0;) {
        msp_buf_put_u8(b, i < sizeof(size_t) ? (uint8_t)(n >> (8 * i)) : 0);
    }
}

static void emit(const uint8_t *p, size_t n, int depth, int in_static, edit_t *e, msp_buf_t *out)
{
    while (n > 0) {
        uint8_t tag;
        size_t h, len;
        tlv(p, n, &tag, &h, &len);
        const uint8_t *c = p + h;
        size_t idx = e->count++;
        int me = idx == e->target;
        int cons = (tag & 0x20) != 0 && p != e->opaque;
        int descend = cons || (tag == 0x04 && depth == 2 && in_static);
        int is_static = tag == 0x30 && depth == 1 && len >= 3 && c[0] == 0x02 && c[1] == 0x01 && c[2] == 0x01;
        if (tag == 0x02 && idx <= e->target) {
            e->n_int++;
        }
        msp_buf_t inner;
        msp_buf_init(&inner, 2 * MSP_ETS_KP_MAX_SIZE);
        if (descend) {
            emit(c, len, depth + 1, is_static, e, &inner);
        } else {
            msp_buf_put(&inner, c, len);
        }
        int long_len = 0, indefinite = 0;
        if (me) {
            e->tag = tag;
            e->at = p;
            e->int_at = e->n_int - 1;
            switch (e->kind) {
            case E_LONG_LEN:
                e->hit = long_len = 1;
                break;
            case E_INDEFINITE:
                e->hit = indefinite = (tag & 0x20) != 0;
                break;
            case E_CONS_FLIP:
                tag ^= 0x20;
                e->hit = 1;
                break;
            case E_TAG_SWAP:
                tag ^= 0x01; /* SEQUENCE <-> SET, INTEGER <-> BIT STRING, OCTET STRING <-> NULL, [0] <-> [1] ... */
                e->hit = 1;
                break;
            case E_LONG_TAG:
                e->hit = 1; /* written below: the same class and number in the high-tag-number form */
                break;
            case E_TRAILING:
                e->hit = descend;
                msp_buf_put_u8(&inner, 0x05); /* a NULL after the last element */
                msp_buf_put_u8(&inner, 0x00);
                break;
            case E_CONTENT:
                e->hit = tag == 0x02;
                inner.len = 0;
                msp_buf_put(&inner, e->content, e->content_len);
                break;
            default:
                break;
            }
        }
        assert_int_equal(msp_buf_error(&inner), MSP_OK);
        if (me && e->kind == E_LONG_TAG) {
            msp_buf_put_u8(out, (uint8_t)((tag & 0xe0) | 0x1f));
            msp_buf_put_u8(out, tag & 0x1f);
        } else {
            msp_buf_put_u8(out, tag);
        }
        if (indefinite) {
            msp_buf_put_u8(out, 0x80);
            msp_buf_put(out, inner.base, inner.len);
            msp_buf_put_u8(out, 0);
            msp_buf_put_u8(out, 0);
        } else {
            put_len(out, inner.len, long_len);
            msp_buf_put(out, inner.base, inner.len);
        }
        msp_buf_free(&inner);
        p += h + len;
        n -= h + len;
    }
}

/* The package with TLV t changed by kind; 0 when there is no TLV t (t past the last). */
static int edited(const msp_buf_t *pkg, const uint8_t *opaque, size_t t, int kind, edit_t *e, msp_buf_t *out)
{
    memset(e, 0, sizeof(*e));
    e->target = t;
    e->kind = kind;
    e->opaque = opaque;
    msp_buf_init(out, 2 * MSP_ETS_KP_MAX_SIZE);
    emit(pkg->base, pkg->len, 0, 0, e, out);
    assert_int_equal(msp_buf_error(out), MSP_OK);
    return t < e->count;
}

/*
 * The algorithm parameters are an ANY: prime256v1 with another universal tag (ObjectDescriptor) is well formed, and
 * so is id-X25519 with a NULL appended as its parameters; both are the wrong algorithm.
 */
static int want_for(const edit_t *e, int kind)
{
    static const uint8_t prime256v1[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const uint8_t x25519[] = {0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e};
    int param = memcmp(e->at, prime256v1, sizeof(prime256v1)) == 0;
    int alg = memcmp(e->at, x25519, sizeof(x25519)) == 0;
    return (kind == E_TAG_SWAP && param) || (kind == E_TRAILING && alg) ? MSP_ERR_INVALID : MSP_ERR_SYNTAX;
}

/* Every TLV changed by kind, one at a time: each is refused (want_for); returns how many were tried. */
static size_t sweep(const msp_buf_t *pkg, const uint8_t *opaque, int kind)
{
    size_t tried = 0;
    for (size_t t = 0;; t++) {
        edit_t e;
        msp_buf_t out;
        if (!edited(pkg, opaque, t, kind, &e, &out)) {
            msp_buf_free(&out);
            break;
        }
        if (e.hit) {
            int got = decode(out.base, out.len), want = want_for(&e, kind);
#ifdef KP_DUMP
            printf("DUMP kind %d node %zu tag %02x: %d\n", kind, t, e.tag, got);
#else
            if (got != want) {
                fail_msg("kind %d, TLV %zu (tag %02x): %s, want %s", kind, t, e.tag, msp_error_name(got),
                         msp_error_name(want));
            }
#endif
            tried++;
        }
        msp_buf_free(&out);
    }
    return tried;
}

/* The packages the sweeps edit: two static keys; the same with a signer (its certificate left opaque). */
typedef struct sample {
    msp_ets_kp_static_t s[2];
    EVP_PKEY *sk;
    X509 *cert;
    msp_buf_t statics, signed_pkg;
    const uint8_t *cert_at; /* where the certificate starts in signed_pkg */
} sample_t;

static X509 *signer_cert(EVP_PKEY *key, const msp_ets_kp_static_t *s, size_t n);

static void sample_init(sample_t *x)
{
    x->s[0] = (msp_ets_kp_static_t){x25519_fixed(), 10, 20, 1};
    x->s[1] = (msp_ets_kp_static_t){p256(), 10, 0, 0};
    x->sk = p256();
    x->cert = signer_cert(x->sk, x->s, 2);
    msp_ets_kp_signer_t g = {x->sk, x->cert};
    encode(x->s, 2, NULL, 0, &x->statics);
    encode(x->s, 2, &g, 1, &x->signed_pkg);
    uint8_t *der = NULL;
    int n = i2d_X509(x->cert, &der);
    assert_true(n > 0);
    x->cert_at = find(x->signed_pkg.base, x->signed_pkg.len, der, (size_t)n);
    assert_non_null(x->cert_at);
    OPENSSL_free(der);
    /* the editor reproduces both packages when it changes nothing */
    for (int i = 0; i < 2; i++) {
        const msp_buf_t *b = i ? &x->signed_pkg : &x->statics;
        edit_t e;
        msp_buf_t out;
        assert_int_equal(edited(b, x->cert_at, SIZE_MAX, E_NONE, &e, &out), 0);
        assert_int_equal(out.len, b->len);
        assert_memory_equal(out.base, b->base, b->len);
        assert_int_equal(decode(out.base, out.len), MSP_OK);
        msp_buf_free(&out);
    }
}

static void sample_free(sample_t *x)
{
    msp_buf_free(&x->statics);
    msp_buf_free(&x->signed_pkg);
    X509_free(x->cert);
    EVP_PKEY_free(x->sk);
    EVP_PKEY_free(x->s[0].key);
    EVP_PKEY_free(x->s[1].key);
}

/* Every kind of change on every TLV of both packages is refused (want_for); each sweep reaches the TLVs it should. */
static void test_every_tlv_malformed(void **state)
{
    (void)state;
    sample_t x;
    sample_init(&x);
    static const int kinds[] = {E_LONG_LEN, E_INDEFINITE, E_CONS_FLIP, E_TAG_SWAP, E_LONG_TAG, E_TRAILING};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t a = sweep(&x.statics, NULL, kinds[k]);
        size_t b = sweep(&x.signed_pkg, x.cert_at, kinds[k]);
        assert_true(a >= 10); /* two elements, each with five constructed TLVs or more */
        assert_true(b > a);
    }
    sample_free(&x);
}

/* A trailing byte after the package, after an element, or after the last byte of the certificate. */
static void test_trailing_bytes(void **state)
{
    (void)state;
    sample_t x;
    sample_init(&x);
    for (int i = 0; i < 2; i++) {
        const msp_buf_t *b = i ? &x.signed_pkg : &x.statics;
        for (uint8_t v = 0; v < 3; v++) {
            uint8_t *t = malloc(b->len + 1);
            memcpy(t, b->base, b->len);
            t[b->len] = v;
            assert_int_equal(decode(t, b->len + 1), MSP_ERR_SYNTAX);
            free(t);
        }
    }
    sample_free(&x);
}

/* The INTEGERs of an X25519 element, in order: version, doNotUseBefore (10), doNotUseAfter (20). */
static int with_int(const msp_buf_t *pkg, size_t which, const uint8_t *content, size_t n)
{
    for (size_t t = 0;; t++) {
        edit_t e;
        msp_buf_t out;
        int more = edited(pkg, NULL, t, E_CONTENT, &e, &out);
        assert_true(more);
        e.content = content;
        e.content_len = n;
        if (e.hit && e.int_at == which) {
            msp_buf_free(&out);
            memset(&e, 0, sizeof(e));
            e.target = t;
            e.kind = E_CONTENT;
            e.content = content;
            e.content_len = n;
            msp_buf_init(&out, 2 * MSP_ETS_KP_MAX_SIZE);
            emit(pkg->base, pkg->len, 0, 0, &e, &out);
            int got = decode(out.base, out.len);
            msp_buf_free(&out);
            return got;
        }
        msp_buf_free(&out);
    }
}

static void test_out_of_range_integers(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {x25519_fixed(), 10, 20, 1};
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    static const uint8_t big[] = {0x00, 0x80, 0, 0, 0, 0, 0, 0, 0}; /* 2^63: past int64_t */
    static const uint8_t huge[] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0};   /* 2^64 */
    static const uint8_t minus[] = {0xff};                          /* -1 */
    static const uint8_t min64[] = {0x80, 0, 0, 0, 0, 0, 0, 0};     /* INT64_MIN */
    static const uint8_t max64[] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t v256[] = {0x01, 0x00};
    static const uint8_t padded[] = {0x00, 0x01}; /* 1, not minimal */
    static const uint8_t padded_neg[] = {0xff, 0xff};
    /* the version: a number that is not 0 or 1 is a rule broken, an unreadable one malformed */
    assert_int_equal(with_int(&b, 0, big, sizeof(big)), MSP_ERR_SYNTAX);
    assert_int_equal(with_int(&b, 0, huge, sizeof(huge)), MSP_ERR_SYNTAX);
    assert_int_equal(with_int(&b, 0, minus, sizeof(minus)), MSP_ERR_INVALID);
    assert_int_equal(with_int(&b, 0, min64, sizeof(min64)), MSP_ERR_INVALID);
    assert_int_equal(with_int(&b, 0, v256, sizeof(v256)), MSP_ERR_INVALID);
    assert_int_equal(with_int(&b, 0, padded, sizeof(padded)), MSP_ERR_SYNTAX);
    assert_int_equal(with_int(&b, 0, padded_neg, sizeof(padded_neg)), MSP_ERR_SYNTAX);
    assert_int_equal(with_int(&b, 0, NULL, 0), MSP_ERR_SYNTAX);
    /* the validity period: BinaryTime >= 0, doNotUseAfter >= doNotUseBefore, both within int64_t */
    for (size_t which = 1; which <= 2; which++) {
        assert_int_equal(with_int(&b, which, big, sizeof(big)), MSP_ERR_SYNTAX);
        assert_int_equal(with_int(&b, which, huge, sizeof(huge)), MSP_ERR_SYNTAX);
        assert_int_equal(with_int(&b, which, minus, sizeof(minus)), MSP_ERR_SYNTAX);
        assert_int_equal(with_int(&b, which, min64, sizeof(min64)), MSP_ERR_SYNTAX);
        assert_int_equal(with_int(&b, which, padded, sizeof(padded)), MSP_ERR_SYNTAX);
        assert_int_equal(with_int(&b, which, NULL, 0), MSP_ERR_SYNTAX);
    }
    assert_int_equal(with_int(&b, 1, max64, sizeof(max64)), MSP_ERR_SYNTAX); /* after doNotUseAfter */
    assert_int_equal(with_int(&b, 2, max64, sizeof(max64)), MSP_OK);
    assert_int_equal(with_int(&b, 2, v256, sizeof(v256)), MSP_OK);
    msp_buf_free(&b);
    /* the largest BinaryTime travels both ways */
    msp_ets_kp_static_t far = {s.key, 0, INT64_MAX, 1};
    encode(&far, 1, NULL, 0, &b);
    msp_ets_keypkg_t pkg;
    msp_error_t err;
    assert_int_equal(msp_ets_keypkg_decode(b.base, b.len, &pkg, &err), MSP_OK);
    assert_true(pkg.statics[0].not_after == INT64_MAX);
    msp_ets_keypkg_free(&pkg);
    msp_buf_free(&b);
    /* the ECPrivateKey version (the second INTEGER of a P-256 element) is 1 */
    msp_ets_kp_static_t p = {p256(), 10, 20, 1};
    encode(&p, 1, NULL, 0, &b);
    assert_int_equal(with_int(&b, 1, v256, sizeof(v256)), MSP_ERR_SYNTAX);
    assert_int_equal(with_int(&b, 1, big, sizeof(big)), MSP_ERR_SYNTAX);
    assert_int_equal(with_int(&b, 1, minus, sizeof(minus)), MSP_ERR_SYNTAX);
    msp_buf_free(&b);
    EVP_PKEY_free(p.key);
    EVP_PKEY_free(s.key);
}

/* A package cut at every length, with a signer: always malformed. */
static void test_every_truncation_with_signer(void **state)
{
    (void)state;
    sample_t x;
    sample_init(&x);
    for (size_t n = 0; n < x.signed_pkg.len; n++) {
        uint8_t *copy = malloc(n + 1);
        memcpy(copy, x.signed_pkg.base, n);
        assert_int_equal(decode(n ? copy : NULL, n), MSP_ERR_SYNTAX);
        free(copy);
    }
    sample_free(&x);
}

/* Another attribute beside the validity period is skipped; DER orders a SET OF by encoding, so it goes first. */
static void test_attribute_order(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {x25519_fixed(), 10, 20, 1};
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    static const uint8_t other[] = {0x30, 0x07, 0x06, 0x01, 0x2a, 0x31, 0x02, 0x05, 0x00}; /* { 1.2, { NULL } } */
    size_t at = 4 + 3 + 7 + 36, alen = b.base[at + 1];
    assert_int_equal(b.base[at], 0xa0);
    assert_true(b.base[1] + sizeof(other) < 0x80);
    for (int first = 0; first < 2; first++) {
        uint8_t v[256], *w = v;
        memcpy(w, b.base, at + 2);
        w += at + 2;
        if (first) {
            memcpy(w, other, sizeof(other));
            w += sizeof(other);
        }
        memcpy(w, b.base + at + 2, alen);
        w += alen;
        if (!first) {
            memcpy(w, other, sizeof(other));
            w += sizeof(other);
        }
        memcpy(w, b.base + at + 2 + alen, b.len - at - 2 - alen);
        w += b.len - at - 2 - alen;
        v[1] += sizeof(other);
        v[3] += sizeof(other);
        v[at + 1] += sizeof(other);
        assert_int_equal((size_t)(w - v), b.len + sizeof(other));
        assert_int_equal(decode(v, (size_t)(w - v)), first ? MSP_OK : MSP_ERR_SYNTAX);
    }
    msp_buf_free(&b);
    EVP_PKEY_free(s.key);
}

/* n copies of the element of a one-element package, as one package (a 3-byte length: n * element < 64 KiB). */
static uint8_t *repeat(const msp_buf_t *one, size_t n, size_t *len)
{
    assert_true(one->base[1] < 0x80);
    size_t elem = one->len - 2, body = n * elem;
    assert_true(body >= 0x100 && body < 0x10000);
    uint8_t *p = malloc(body + 4);
    p[0] = 0x30;
    p[1] = 0x82;
    p[2] = (uint8_t)(body >> 8);
    p[3] = (uint8_t)body;
    for (size_t i = 0; i < n; i++) {
        memcpy(p + 4 + i * elem, one->base + 2, elem);
    }
    *len = body + 4;
    return p;
}

/* At most 64 elements; an element over MSP_ETS_KP_MAX_CERT + 8192 bytes is refused before it is decoded. */
static void test_element_limits(void **state)
{
    (void)state;
    msp_ets_kp_static_t s = {x25519_fixed(), 10, 20, 1};
    msp_buf_t b;
    encode(&s, 1, NULL, 0, &b);
    size_t len;
    uint8_t *p = repeat(&b, MSP_ETS_KP_MAX_ELEMENTS, &len);
    assert_int_equal(decode(p, len), MSP_OK);
    free(p);
    p = repeat(&b, MSP_ETS_KP_MAX_ELEMENTS + 1, &len);
    assert_int_equal(decode(p, len), MSP_ERR_LIMIT);
    free(p);
    msp_buf_free(&b);
    EVP_PKEY_free(s.key);
    /* SEQUENCE { SEQUENCE { 64 KiB of zeros } }: too big to be one element */
    size_t big = 1 << 16;
    p = calloc(1, big + 10);
    static const uint8_t head[] = {0x30, 0x83, 0x01, 0x00, 0x05, 0x30, 0x83, 0x01, 0x00, 0x00};
    memcpy(p, head, sizeof(head));
    assert_int_equal(decode(p, big + 10), MSP_ERR_LIMIT);
    free(p);
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
        cmocka_unit_test(test_every_tlv_malformed),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_out_of_range_integers),
        cmocka_unit_test(test_every_truncation_with_signer),
        cmocka_unit_test(test_attribute_order),
        cmocka_unit_test(test_element_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
