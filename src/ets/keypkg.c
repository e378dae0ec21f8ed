/* ETS key packages (TS 103 523-3 V1.3.1 clause 4.3.6, RFC 5958; ets.md 3.4 ETS-KP-1). */
#include "msp/ets_keypkg.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "msp/ets.h"
#include "msp/reader.h"

#include "der.h"

#define T_INTEGER 0x02
#define T_BIT_STRING 0x03
#define T_OCTET_STRING 0x04
#define T_OID 0x06
#define T_SEQUENCE 0x30
#define T_SET 0x31
#define T_ATTRS 0xa0  /* [0] IMPLICIT SET OF Attribute (constructed) */
#define T_PUBKEY 0x81 /* [1] IMPLICIT BIT STRING (primitive) */
#define T_EC_PARAMS 0xa0
#define T_EC_PUB 0xa1

#define KEY_LEN 32
#define P256_POINT_LEN 65
#define ELEMENT_LIMIT (MSP_ETS_KP_MAX_CERT + 8192) /* one encoded OneAsymmetricKey */

/* Content octets (tag and length included) of the identifiers we write and recognise. */
static const uint8_t OID_X25519[] = {T_OID, 3, 0x2b, 0x65, 0x6e};
static const uint8_t OID_ECDH[] = {T_OID, 5, 0x2b, 0x81, 0x04, 0x01, 0x0c};
static const uint8_t OID_EC_PUBLIC_KEY[] = {T_OID, 7, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_PRIME256V1[] = {T_OID, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_VALIDITY[] = {T_OID, 9, 0x60, 0x86, 0x48, 0x01, 0x65, 0x02, 0x01, 0x0d, 0x06};
static const uint8_t OID_USER_CERT[] = {T_OID, 3, 0x55, 0x04, 0x24};

enum { GROUP_NONE, GROUP_X25519, GROUP_P256 };

static int group_of(EVP_PKEY *key)
{
    char name[32];
    if (key == NULL) {
        return GROUP_NONE;
    }
    if (EVP_PKEY_is_a(key, "X25519")) {
        return GROUP_X25519;
    }
    if (EVP_PKEY_is_a(key, "EC") &&
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), NULL) == 1 &&
        strcmp(name, "prime256v1") == 0) {
        return GROUP_P256;
    }
    return GROUP_NONE;
}

const char *msp_ets_kp_group_name(EVP_PKEY *key)
{
    int g = group_of(key);
    return g == GROUP_X25519 ? "x25519" : g == GROUP_P256 ? "p256" : NULL;
}

uint16_t msp_ets_kp_group_id(EVP_PKEY *key)
{
    int g = group_of(key);
    return g == GROUP_X25519 ? 0x001d : g == GROUP_P256 ? 0x0017 : 0;
}

/* ---- writing ---- */

static void put_tlv(msp_buf_t *out, uint8_t tag, const void *p, size_t n)
{
    msp_buf_put_u8(out, tag);
    ets_der_put_len(out, n);
    msp_buf_put(out, p, n);
}

/* Wraps what inner holds as one TLV; DER lengths come first, so the content is built before its header. */
static void put_wrapped(msp_buf_t *out, uint8_t tag, msp_buf_t *inner)
{
    if (msp_buf_error(inner) != MSP_OK) {
        out->err = out->err ? out->err : msp_buf_error(inner);
        return;
    }
    put_tlv(out, tag, inner->base, inner->len);
}

/* A non-negative INTEGER in its minimal two's complement form. */
static void put_uint(msp_buf_t *out, uint64_t v)
{
    uint8_t b[9];
    size_t n = 0;
    do {
        b[8 - n++] = (uint8_t)v;
        v >>= 8;
    } while (v != 0);
    if (b[9 - n] & 0x80) {
        b[8 - n++] = 0;
    }
    put_tlv(out, T_INTEGER, b + 9 - n, n);
}

static int raw_private(EVP_PKEY *key, int group, uint8_t priv[KEY_LEN])
{
    if (group == GROUP_X25519) {
        size_t n = KEY_LEN;
        return EVP_PKEY_get_raw_private_key(key, priv, &n) == 1 && n == KEY_LEN ? MSP_OK : MSP_ERR_ARGUMENT;
    }
    BIGNUM *bn = NULL;
    int ok =
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1 && BN_bn2binpad(bn, priv, KEY_LEN) == KEY_LEN;
    BN_clear_free(bn);
    return ok ? MSP_OK : MSP_ERR_ARGUMENT;
}

/* [0] attributes with the one RFC 7906 key validity period attribute. */
static void put_validity(msp_buf_t *out, const msp_ets_kp_static_t *s)
{
    msp_buf_t times, value, set, attr, attrs;
    msp_buf_init(&times, 64);
    msp_buf_init(&value, 64);
    msp_buf_init(&set, 64);
    msp_buf_init(&attr, 128);
    msp_buf_init(&attrs, 128);
    put_uint(&times, (uint64_t)s->not_before);
    if (s->has_not_after) {
        put_uint(&times, (uint64_t)s->not_after);
    }
    put_wrapped(&value, T_SEQUENCE, &times);
    put_wrapped(&set, T_SET, &value);
    msp_buf_put(&attr, OID_VALIDITY, sizeof(OID_VALIDITY));
    msp_buf_put(&attr, set.base, set.len);
    put_wrapped(&attrs, T_SEQUENCE, &attr);
    put_wrapped(out, T_ATTRS, &attrs);
    msp_buf_free(&times);
    msp_buf_free(&value);
    msp_buf_free(&set);
    msp_buf_free(&attr);
    msp_buf_free(&attrs);
}

/* privateKey: X25519 CurvePrivateKey (RFC 8410), P-256 ECPrivateKey (RFC 5915) with its public key. */
static void put_private(msp_buf_t *out, int group, const uint8_t priv[KEY_LEN], const uint8_t *pub, size_t pub_len)
{
    msp_buf_t inner, ec, bits, tagged;
    msp_buf_init(&inner, 256);
    if (group == GROUP_X25519) {
        put_tlv(&inner, T_OCTET_STRING, priv, KEY_LEN);
    } else {
        msp_buf_init(&ec, 256);
        msp_buf_init(&bits, 128);
        msp_buf_init(&tagged, 128);
        put_uint(&ec, 1);
        put_tlv(&ec, T_OCTET_STRING, priv, KEY_LEN);
        msp_buf_put_u8(&bits, 0); /* no unused bits */
        msp_buf_put(&bits, pub, pub_len);
        put_wrapped(&tagged, T_BIT_STRING, &bits);
        put_wrapped(&ec, T_EC_PUB, &tagged);
        put_wrapped(&inner, T_SEQUENCE, &ec);
        msp_buf_free(&ec);
        msp_buf_free(&bits);
        msp_buf_free(&tagged);
    }
    put_wrapped(out, T_OCTET_STRING, &inner);
    msp_buf_free(&inner);
}

static int encode_static(const msp_ets_kp_static_t *s, size_t i, msp_buf_t *out, msp_error_t *err)
{
    int group = group_of(s->key);
    uint8_t priv[KEY_LEN], pub[P256_POINT_LEN];
    size_t pub_len = 0;
    if (group == GROUP_NONE || s->not_before < 0 || (s->has_not_after && s->not_after < s->not_before) ||
        raw_private(s->key, group, priv) != MSP_OK || msp_ets_key_share(s->key, pub, sizeof(pub), &pub_len) != MSP_OK) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                             "static key %zu: not an X25519 or P-256 private key with a valid validity period", i);
    }
    msp_buf_t body, alg, bits;
    msp_buf_init(&body, 1024);
    msp_buf_init(&alg, 64);
    msp_buf_init(&bits, 128);
    put_uint(&body, 1); /* v2: publicKey present */
    if (group == GROUP_X25519) {
        msp_buf_put(&alg, OID_X25519, sizeof(OID_X25519));
    } else {
        msp_buf_put(&alg, OID_ECDH, sizeof(OID_ECDH)); /* RFC 5480 restricted id-ecDH, as ets.md 3.4 asks */
        msp_buf_put(&alg, OID_PRIME256V1, sizeof(OID_PRIME256V1));
    }
    put_wrapped(&body, T_SEQUENCE, &alg);
    put_private(&body, group, priv, pub, pub_len);
    put_validity(&body, s);
    msp_buf_put_u8(&bits, 0);
    msp_buf_put(&bits, pub, pub_len);
    put_wrapped(&body, T_PUBKEY, &bits);
    put_wrapped(out, T_SEQUENCE, &body);
    OPENSSL_cleanse(priv, sizeof(priv));
    msp_buf_free(&body);
    msp_buf_free(&alg);
    msp_buf_free(&bits);
    return msp_buf_error(out);
}

/* One DER TLV of the expected tag; definite, minimal length (X.690 10.1), at most 3 length octets. */
static int der_read(msp_reader_t *r, uint8_t tag, msp_reader_t *value)
{
    msp_reader_t save = *r;
    uint8_t t, l0;
    size_t len = 0;
    int ok = msp_read_u8(r, &t) == MSP_OK && t == tag && msp_read_u8(r, &l0) == MSP_OK;
    if (ok && l0 < 0x80) {
        len = l0;
    } else if (ok && l0 == 0x81) {
        uint8_t v;
        ok = msp_read_u8(r, &v) == MSP_OK && v >= 0x80;
        len = v;
    } else if (ok && l0 == 0x82) {
        uint16_t v;
        ok = msp_read_u16(r, &v) == MSP_OK && v >= 0x100;
        len = v;
    } else if (ok && l0 == 0x83) {
        uint32_t v;
        ok = msp_read_u24(r, &v) == MSP_OK && v >= 0x10000;
        len = v;
    } else {
        ok = 0; /* indefinite (0x80), or longer than any package we accept */
    }
    if (!ok || msp_read_sub(r, len, value) != MSP_OK) {
        *r = save;
        return MSP_ERR_SYNTAX;
    }
    return MSP_OK;
}

static int der_peek(const msp_reader_t *r, uint8_t tag)
{
    uint8_t t;
    return msp_peek_u8(r, &t) == MSP_OK && t == tag;
}

/* An INTEGER of at most 8 content octets in minimal form. */
static int der_read_int(msp_reader_t *r, int64_t *v)
{
    msp_reader_t c;
    if (der_read(r, T_INTEGER, &c) != MSP_OK) {
        return MSP_ERR_SYNTAX;
    }
    size_t n = msp_reader_left(&c);
    if (n == 0 || n > 8 ||
        (n > 1 && ((c.pos[0] == 0 && !(c.pos[1] & 0x80)) || (c.pos[0] == 0xff && (c.pos[1] & 0x80))))) {
        return MSP_ERR_SYNTAX;
    }
    uint64_t u = (c.pos[0] & 0x80) ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++) {
        u = u << 8 | c.pos[i];
    }
    *v = (int64_t)u;
    return MSP_OK;
}

/* The whole TLV the reader sits on, its tag checked: a view (start, length) for copying through unchanged. */
static int der_read_raw(msp_reader_t *r, uint8_t tag, const uint8_t **p, size_t *n)
{
    const uint8_t *start = r->pos;
    msp_reader_t v;
    if (der_read(r, tag, &v) != MSP_OK) {
        return MSP_ERR_SYNTAX;
    }
    *p = start;
    *n = (size_t)(r->pos - start);
    return MSP_OK;
}

static int eq(msp_reader_t *r, const uint8_t *want, size_t n)
{
    return msp_reader_left(r) == n && memcmp(r->pos, want, n) == 0;
}

/* Type B: the PKCS#8 form OpenSSL writes for the key gives algorithm and privateKey, to which we add the certificate.
 */
static int encode_signer(const msp_ets_kp_signer_t *g, size_t i, msp_buf_t *out, msp_error_t *err)
{
    PKCS8_PRIV_KEY_INFO *p8 = g->key != NULL && g->cert != NULL && X509_check_private_key(g->cert, g->key) == 1
                                  ? EVP_PKEY2PKCS8(g->key)
                                  : NULL;
    uint8_t *p8der = NULL, *cder = NULL;
    int p8len = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, &p8der) : -1;
    int clen = p8len > 0 ? i2d_X509(g->cert, &cder) : -1;
    PKCS8_PRIV_KEY_INFO_free(p8);
    msp_reader_t r, seq;
    int64_t version = -1;
    const uint8_t *alg = NULL, *priv = NULL;
    size_t alg_len = 0, priv_len = 0;
    msp_reader_init(&r, p8der, p8len > 0 ? (size_t)p8len : 0);
    int ok = clen > 0 && (size_t)clen <= MSP_ETS_KP_MAX_CERT && der_read(&r, T_SEQUENCE, &seq) == MSP_OK &&
             der_read_int(&seq, &version) == MSP_OK && version == 0 &&
             der_read_raw(&seq, T_SEQUENCE, &alg, &alg_len) == MSP_OK &&
             der_read_raw(&seq, T_OCTET_STRING, &priv, &priv_len) == MSP_OK;
    if (ok) {
        msp_buf_t body, attr, set, attrs;
        msp_buf_init(&body, ELEMENT_LIMIT);
        msp_buf_init(&attr, ELEMENT_LIMIT);
        msp_buf_init(&set, ELEMENT_LIMIT);
        msp_buf_init(&attrs, ELEMENT_LIMIT);
        put_uint(&body, 0); /* v1: no publicKey */
        msp_buf_put(&body, alg, alg_len);
        msp_buf_put(&body, priv, priv_len);
        msp_buf_put(&set, cder, (size_t)clen);
        msp_buf_put(&attr, OID_USER_CERT, sizeof(OID_USER_CERT));
        put_wrapped(&attr, T_SET, &set);
        put_wrapped(&attrs, T_SEQUENCE, &attr);
        put_wrapped(&body, T_ATTRS, &attrs);
        put_wrapped(out, T_SEQUENCE, &body);
        msp_buf_free(&body);
        msp_buf_free(&attr);
        msp_buf_free(&set);
        msp_buf_free(&attrs);
    }
    OPENSSL_clear_free(p8der, p8len > 0 ? (size_t)p8len : 0);
    OPENSSL_free(cder);
    if (!ok) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                             "signer %zu: no key, no certificate, a key that is not the certificate's, or a "
                             "certificate over %u bytes",
                             i, MSP_ETS_KP_MAX_CERT);
    }
    return msp_buf_error(out);
}

int msp_ets_keypkg_encode(const msp_ets_kp_static_t *statics, size_t n_static, const msp_ets_kp_signer_t *signers,
                          size_t n_signer, msp_buf_t *out, msp_error_t *err)
{
    if (n_static + n_signer == 0 || n_static + n_signer > MSP_ETS_KP_MAX_ELEMENTS ||
        n_signer > MSP_ETS_KP_MAX_SIGNERS) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "a package holds 1..%d elements, at most %d signers",
                             MSP_ETS_KP_MAX_ELEMENTS, MSP_ETS_KP_MAX_SIGNERS);
    }
    msp_buf_t body;
    msp_buf_init(&body, MSP_ETS_KP_MAX_SIZE);
    int ret = MSP_OK;
    for (size_t i = 0; ret == MSP_OK && i < n_static; i++) {
        ret = encode_static(&statics[i], i, &body, err);
    }
    for (size_t i = 0; ret == MSP_OK && i < n_signer; i++) {
        ret = encode_signer(&signers[i], i, &body, err); /* Type B comes last (ETS-KP-1) */
    }
    if (ret == MSP_OK) {
        put_wrapped(out, T_SEQUENCE, &body);
        ret = msp_buf_error(out);
        if (ret != MSP_OK) {
            msp_error_set(err, ret, NULL, "the package does not fit: %s", msp_error_name(ret));
        }
    }
    msp_buf_free(&body);
    return ret;
}

/* ---- reading ---- */

#define BAD(code, ...) msp_error_set(err, code, NULL, __VA_ARGS__)

static int read_alg_a(msp_reader_t *e, size_t i, int *group, msp_error_t *err)
{
    msp_reader_t alg, oid;
    if (der_read(e, T_SEQUENCE, &alg) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: privateKeyAlgorithm is not a SEQUENCE", i);
    }
    if (eq(&alg, OID_X25519, sizeof(OID_X25519))) { /* RFC 8410: parameters absent */
        *group = GROUP_X25519;
        return MSP_OK;
    }
    msp_reader_t rest = alg;
    if (der_read(&rest, T_OID, &oid) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: privateKeyAlgorithm without an OID", i);
    }
    msp_reader_t id;
    msp_reader_init(&id, alg.pos, (size_t)(rest.pos - alg.pos));
    int ec = eq(&id, OID_ECDH, sizeof(OID_ECDH)) || eq(&id, OID_EC_PUBLIC_KEY, sizeof(OID_EC_PUBLIC_KEY));
    if (!ec || !eq(&rest, OID_PRIME256V1, sizeof(OID_PRIME256V1))) {
        return BAD(MSP_ERR_INVALID,
                   "element %zu: not an X25519 (1.3.101.110) or P-256 (1.3.132.1.12 / "
                   "1.2.840.10045.2.1 + prime256v1) key",
                   i);
    }
    *group = GROUP_P256;
    return MSP_OK;
}

/* An RFC 5915 ECPrivateKey: version 1, the 32-byte scalar, optional [0] prime256v1, optional [1] public point. */
static int read_ec_private(msp_reader_t *os, uint8_t priv[KEY_LEN], const uint8_t **pub, size_t *pub_len)
{
    msp_reader_t seq, k, tagged, bits;
    int64_t version;
    *pub = NULL;
    *pub_len = 0;
    if (der_read(os, T_SEQUENCE, &seq) != MSP_OK || msp_reader_expect_end(os) != MSP_OK ||
        der_read_int(&seq, &version) != MSP_OK || version != 1 || der_read(&seq, T_OCTET_STRING, &k) != MSP_OK ||
        msp_reader_left(&k) != KEY_LEN) {
        return MSP_ERR_SYNTAX;
    }
    memcpy(priv, k.pos, KEY_LEN);
    if (der_peek(&seq, T_EC_PARAMS) &&
        (der_read(&seq, T_EC_PARAMS, &tagged) != MSP_OK || !eq(&tagged, OID_PRIME256V1, sizeof(OID_PRIME256V1)))) {
        return MSP_ERR_SYNTAX;
    }
    if (der_peek(&seq, T_EC_PUB)) {
        uint8_t unused;
        if (der_read(&seq, T_EC_PUB, &tagged) != MSP_OK || der_read(&tagged, T_BIT_STRING, &bits) != MSP_OK ||
            msp_reader_expect_end(&tagged) != MSP_OK || msp_read_u8(&bits, &unused) != MSP_OK || unused != 0) {
            return MSP_ERR_SYNTAX;
        }
        *pub = bits.pos;
        *pub_len = msp_reader_left(&bits);
    }
    return msp_reader_expect_end(&seq) == MSP_OK ? MSP_OK : MSP_ERR_SYNTAX;
}

static int read_private_a(msp_reader_t *e, size_t i, int group, uint8_t priv[KEY_LEN], const uint8_t **inner_pub,
                          size_t *inner_pub_len, msp_error_t *err)
{
    msp_reader_t os, k;
    *inner_pub = NULL;
    *inner_pub_len = 0;
    if (der_read(e, T_OCTET_STRING, &os) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: privateKey is not an OCTET STRING", i);
    }
    if (group == GROUP_X25519) {
        if (der_read(&os, T_OCTET_STRING, &k) != MSP_OK || msp_reader_expect_end(&os) != MSP_OK ||
            msp_reader_left(&k) != KEY_LEN) {
            return BAD(MSP_ERR_SYNTAX, "element %zu: X25519 privateKey is not a 32-byte CurvePrivateKey", i);
        }
        memcpy(priv, k.pos, KEY_LEN);
        return MSP_OK;
    }
    if (read_ec_private(&os, priv, inner_pub, inner_pub_len) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: privateKey is not a P-256 ECPrivateKey", i);
    }
    return MSP_OK;
}

/* The RFC 7906 key validity period value: SEQUENCE { doNotUseBefore, doNotUseAfter OPTIONAL }, BinaryTime >= 0. */
static int read_validity(msp_reader_t *values, msp_ets_kp_static_t *s)
{
    msp_reader_t v;
    if (der_read(values, T_SEQUENCE, &v) != MSP_OK || msp_reader_expect_end(values) != MSP_OK ||
        der_read_int(&v, &s->not_before) != MSP_OK || s->not_before < 0) {
        return MSP_ERR_SYNTAX;
    }
    s->has_not_after = msp_reader_left(&v) > 0;
    if (s->has_not_after && (der_read_int(&v, &s->not_after) != MSP_OK || s->not_after < s->not_before)) {
        return MSP_ERR_SYNTAX;
    }
    return msp_reader_expect_end(&v) == MSP_OK ? MSP_OK : MSP_ERR_SYNTAX;
}

/*
 * The attributes: each SEQUENCE { OID, SET OF value }. want_oid is the attribute the caller needs (exactly once,
 * with one value, handed back in *value); other attributes are allowed and skipped.
 */
static int read_attrs(msp_reader_t *attrs, const uint8_t *want_oid, size_t want_len, msp_reader_t *value, int *found)
{
    size_t n = 0;
    *found = 0;
    while (msp_reader_left(attrs) > 0) {
        msp_reader_t attr, id, set;
        if (++n > MSP_ETS_KP_MAX_ATTRS || der_read(attrs, T_SEQUENCE, &attr) != MSP_OK) {
            return MSP_ERR_SYNTAX;
        }
        id = attr;
        if (der_read(&attr, T_OID, &set) != MSP_OK) {
            return MSP_ERR_SYNTAX;
        }
        id.end = attr.pos;
        if (der_read(&attr, T_SET, &set) != MSP_OK || msp_reader_expect_end(&attr) != MSP_OK ||
            msp_reader_left(&set) == 0) {
            return MSP_ERR_SYNTAX;
        }
        if (eq(&id, want_oid, want_len)) {
            if (*found) {
                return MSP_ERR_SYNTAX; /* the same attribute twice */
            }
            *found = 1;
            *value = set;
        }
    }
    return MSP_OK;
}

/* The public key must belong to the private one: X25519 recomputes it, P-256 by OpenSSL's pairwise check. */
static EVP_PKEY *build_key(int group, const uint8_t priv[KEY_LEN], const uint8_t *pub, size_t pub_len)
{
    EVP_PKEY *key = NULL;
    if (group == GROUP_X25519) {
        uint8_t got[KEY_LEN];
        size_t n = sizeof(got);
        key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEY_LEN);
        if (key != NULL &&
            (EVP_PKEY_get_raw_public_key(key, got, &n) != 1 || n != pub_len || memcmp(got, pub, n) != 0)) {
            EVP_PKEY_free(key);
            key = NULL;
        }
        return key;
    }
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *d = BN_bin2bn(priv, KEY_LEN, NULL);
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    int ok = bld != NULL && d != NULL && ctx != NULL &&
             OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1 &&
             OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len) == 1 &&
             (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
             EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) == 1;
    EVP_PKEY_CTX_free(ctx);
    ctx = ok ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
    ok = ok && ctx != NULL && EVP_PKEY_pairwise_check(ctx) == 1;
    if (!ok) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return key;
}

static int read_static(msp_reader_t *e, size_t i, msp_ets_kp_static_t *s, msp_error_t *err)
{
    int group = GROUP_NONE, found = 0, ret;
    uint8_t priv[KEY_LEN];
    const uint8_t *inner_pub;
    size_t inner_pub_len;
    msp_reader_t attrs, value, bits;
    uint8_t unused;
    if ((ret = read_alg_a(e, i, &group, err)) != MSP_OK ||
        (ret = read_private_a(e, i, group, priv, &inner_pub, &inner_pub_len, err)) != MSP_OK) {
        return ret;
    }
    if (!der_peek(e, T_ATTRS)) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: a static key without attributes (the validity period is required)", i);
    } else if (der_read(e, T_ATTRS, &attrs) != MSP_OK ||
               read_attrs(&attrs, OID_VALIDITY, sizeof(OID_VALIDITY), &value, &found) != MSP_OK ||
               (found && read_validity(&value, s) != MSP_OK)) {
        ret = BAD(MSP_ERR_SYNTAX, "element %zu: malformed attributes or key validity period", i);
    } else if (!found) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: a static key without the key validity period attribute", i);
    } else if (der_read(e, T_PUBKEY, &bits) != MSP_OK || msp_reader_expect_end(e) != MSP_OK ||
               msp_read_u8(&bits, &unused) != MSP_OK || unused != 0 ||
               msp_reader_left(&bits) != (group == GROUP_X25519 ? KEY_LEN : P256_POINT_LEN)) {
        ret = BAD(MSP_ERR_SYNTAX, "element %zu: publicKey missing, malformed or followed by more fields", i);
    } else if (inner_pub != NULL &&
               (inner_pub_len != msp_reader_left(&bits) || memcmp(inner_pub, bits.pos, inner_pub_len) != 0)) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: the ECPrivateKey's public key differs from publicKey", i);
    } else if ((s->key = build_key(group, priv, bits.pos, msp_reader_left(&bits))) == NULL) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: the public key does not belong to the private key", i);
    }
    OPENSSL_cleanse(priv, sizeof(priv));
    return ret;
}

/* Accepts the literal reading of ets.md 3.4 (the certificate's signatureAlgorithm) by mapping it to the subject key's.
 */
static int subject_alg(X509 *cert, const uint8_t *alg, size_t alg_len, uint8_t **out, int *out_len)
{
    const X509_ALGOR *sig = NULL;
    X509_ALGOR *pk = NULL;
    uint8_t *sig_der = NULL;
    X509_get0_signature(NULL, &sig, cert);
    int n = sig != NULL ? i2d_X509_ALGOR(sig, &sig_der) : -1;
    int literal = n > 0 && (size_t)n == alg_len && memcmp(sig_der, alg, alg_len) == 0;
    OPENSSL_free(sig_der);
    *out = NULL;
    *out_len = 0;
    if (!literal) {
        return MSP_OK;
    }
    if (X509_PUBKEY_get0_param(NULL, NULL, NULL, &pk, X509_get_X509_PUBKEY(cert)) != 1 || pk == NULL ||
        (*out_len = i2d_X509_ALGOR(pk, out)) <= 0) {
        return MSP_ERR_INVALID;
    }
    return MSP_OK;
}

/* Type B: { 0, algorithm, privateKey, [0] { userCertificate } }; the key goes to OpenSSL as a plain PKCS#8 v1. */
static int read_signer(msp_reader_t *e, size_t i, msp_ets_kp_signer_t *g, msp_error_t *err)
{
    const uint8_t *alg, *priv;
    size_t alg_len, priv_len;
    msp_reader_t attrs, value, cert;
    int found = 0;
    if (der_read_raw(e, T_SEQUENCE, &alg, &alg_len) != MSP_OK ||
        der_read_raw(e, T_OCTET_STRING, &priv, &priv_len) != MSP_OK || der_read(e, T_ATTRS, &attrs) != MSP_OK ||
        msp_reader_expect_end(e) != MSP_OK ||
        read_attrs(&attrs, OID_USER_CERT, sizeof(OID_USER_CERT), &value, &found) != MSP_OK || !found) {
        return BAD(MSP_ERR_SYNTAX,
                   "element %zu: a signer element needs algorithm, privateKey, and attributes "
                   "with userCertificate, and no publicKey",
                   i);
    }
    msp_reader_t copy = value;
    if (der_read(&copy, T_SEQUENCE, &cert) != MSP_OK || msp_reader_expect_end(&copy) != MSP_OK ||
        msp_reader_left(&value) > MSP_ETS_KP_MAX_CERT) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: userCertificate is not one certificate of at most %u bytes", i,
                   MSP_ETS_KP_MAX_CERT);
    }
    const uint8_t *p = value.pos;
    g->cert = d2i_X509(NULL, &p, (long)msp_reader_left(&value));
    if (g->cert == NULL || p != value.end) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: userCertificate is not an X.509 certificate", i);
    }
    uint8_t *mapped = NULL;
    int mapped_len = 0;
    if (subject_alg(g->cert, alg, alg_len, &mapped, &mapped_len) != MSP_OK) {
        return BAD(MSP_ERR_INVALID, "element %zu: cannot read the certificate's key algorithm", i);
    }
    msp_buf_t p8, body;
    msp_buf_init(&p8, ELEMENT_LIMIT);
    msp_buf_init(&body, ELEMENT_LIMIT);
    put_uint(&body, 0);
    msp_buf_put(&body, mapped != NULL ? mapped : alg, mapped != NULL ? (size_t)mapped_len : alg_len);
    msp_buf_put(&body, priv, priv_len);
    put_wrapped(&p8, T_SEQUENCE, &body);
    OPENSSL_free(mapped);
    PKCS8_PRIV_KEY_INFO *info = NULL;
    p = p8.base;
    if (msp_buf_error(&p8) == MSP_OK) {
        info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)p8.len);
    }
    g->key = info != NULL ? EVP_PKCS82PKEY(info) : NULL;
    PKCS8_PRIV_KEY_INFO_free(info);
    msp_buf_free(&p8);
    msp_buf_free(&body);
    if (g->key == NULL) {
        return BAD(MSP_ERR_INVALID, "element %zu: the signer's private key cannot be read", i);
    }
    if (X509_check_private_key(g->cert, g->key) != 1) {
        return BAD(MSP_ERR_INVALID, "element %zu: the signer's private key is not the certificate's", i);
    }
    return MSP_OK;
}

/* ETS-KP-1: every certificate of a package is bound to all its static keys, one VisibilityInformation each. */
static int check_binding(const msp_ets_keypkg_t *pkg, msp_error_t *err)
{
    msp_ets_vi_t *vi = calloc(MSP_ETS_MAX_VI, sizeof(*vi));
    int ret = vi != NULL ? MSP_OK : BAD(MSP_ERR_NO_MEMORY, "out of memory");
    for (size_t c = 0; ret == MSP_OK && c < pkg->n_signer; c++) {
        size_t n = 0;
        int misplaced = 0;
        if (msp_ets_cert_read(pkg->signers[c].cert, vi, MSP_ETS_MAX_VI, &n, &misplaced) != MSP_OK) {
            ret = BAD(MSP_ERR_INVALID, "certificate %zu: unreadable visibility information", c);
        }
        for (size_t k = 0; ret == MSP_OK && k < pkg->n_static; k++) {
            uint8_t ks[P256_POINT_LEN], fp[MSP_ETS_FINGERPRINT_LEN];
            size_t ks_len = 0, j = 0;
            if (msp_ets_key_share(pkg->statics[k].key, ks, sizeof(ks), &ks_len) != MSP_OK ||
                msp_ets_fingerprint(ks, ks_len, fp) != MSP_OK) {
                ret = BAD(MSP_ERR_INVALID, "static key %zu: no key_share", k);
                break;
            }
            while (j < n && memcmp(vi[j].fingerprint, fp, sizeof(fp)) != 0) {
                j++;
            }
            if (j == n) {
                ret =
                    BAD(MSP_ERR_INVALID, "certificate %zu carries no visibility information for static key %zu", c, k);
            }
        }
    }
    free(vi);
    return ret;
}

static int read_element(msp_reader_t *e, size_t i, msp_ets_keypkg_t *pkg, msp_error_t *err)
{
    int64_t version;
    if (der_read_int(e, &version) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: no version", i);
    }
    if (version == 1) {
        if (pkg->n_signer > 0) {
            return BAD(MSP_ERR_INVALID, "element %zu: a static key after a signer (Type B comes last)", i);
        }
        memset(&pkg->statics[pkg->n_static], 0, sizeof(pkg->statics[0]));
        return read_static(e, i, &pkg->statics[pkg->n_static++], err);
    }
    if (version == 0) {
        if (pkg->n_signer == MSP_ETS_KP_MAX_SIGNERS) {
            return BAD(MSP_ERR_LIMIT, "more than %d signer elements", MSP_ETS_KP_MAX_SIGNERS);
        }
        return read_signer(e, i, &pkg->signers[pkg->n_signer++], err);
    }
    return BAD(MSP_ERR_INVALID, "element %zu: version %lld (a static key is v2 = 1, a signer v1 = 0)", i,
               (long long)version);
}

int msp_ets_keypkg_decode(const uint8_t *der, size_t len, msp_ets_keypkg_t *pkg, msp_error_t *err)
{
    memset(pkg, 0, sizeof(*pkg));
    if (len > MSP_ETS_KP_MAX_SIZE) {
        return BAD(MSP_ERR_LIMIT, "a key package of %zu bytes (at most %u)", len, MSP_ETS_KP_MAX_SIZE);
    }
    msp_reader_t r, seq;
    msp_reader_init(&r, der, len);
    if (der_read(&r, T_SEQUENCE, &seq) != MSP_OK || msp_reader_expect_end(&r) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "not one DER SEQUENCE (AsymmetricKeyPackage)");
    }
    int ret = msp_reader_left(&seq) > 0 ? MSP_OK : BAD(MSP_ERR_SYNTAX, "an empty key package");
    for (size_t i = 0; ret == MSP_OK && msp_reader_left(&seq) > 0; i++) {
        msp_reader_t e;
        if (i == MSP_ETS_KP_MAX_ELEMENTS) {
            ret = BAD(MSP_ERR_LIMIT, "more than %d elements", MSP_ETS_KP_MAX_ELEMENTS);
        } else if (der_read(&seq, T_SEQUENCE, &e) != MSP_OK) {
            ret = BAD(MSP_ERR_SYNTAX, "element %zu: not a DER SEQUENCE", i);
        } else {
            ret = read_element(&e, i, pkg, err);
        }
    }
    if (ret == MSP_OK) {
        ret = check_binding(pkg, err);
    }
    if (ret != MSP_OK) {
        msp_ets_keypkg_free(pkg);
    }
    return ret;
}

void msp_ets_keypkg_free(msp_ets_keypkg_t *pkg)
{
    for (size_t i = 0; i < pkg->n_static; i++) {
        EVP_PKEY_free(pkg->statics[i].key);
    }
    for (size_t i = 0; i < pkg->n_signer; i++) {
        EVP_PKEY_free(pkg->signers[i].key);
        X509_free(pkg->signers[i].cert);
    }
    memset(pkg, 0, sizeof(*pkg));
}
