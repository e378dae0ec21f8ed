/*
 * ETS key packages (TS 103 523-3 V1.3.1 clause 4.3.6, RFC 5958; ets.md 3.4 ETS-KP-1).
 *
 * Each OneAsymmetricKey, and the structures nested in its OCTET STRINGs and attribute values, is an OpenSSL ASN.1
 * template. OpenSSL's template decoder reads BER (long and indefinite lengths, constructed strings, high-tag-number
 * forms all pass), so strict DER is checked by encoding what was decoded again: DER is the one encoding that comes
 * back byte for byte. The package's own SEQUENCE OF is framed by hand (der.h): a template would decode every
 * element of a 1 MiB package before the element limits could be checked.
 */
#include "msp/ets_keypkg.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "msp/ets.h"
#include "reader.h"

#include "der.h"

#define T_SEQUENCE 0x30
#define KEY_LEN 32
#define P256_POINT_LEN 65
#define ELEMENT_LIMIT (MSP_ETS_KP_MAX_CERT + 8192) /* bytes of one encoded OneAsymmetricKey */

/* The content octets of the identifiers we write and recognise. */
static const uint8_t OID_X25519[] = {0x2b, 0x65, 0x6e};
static const uint8_t OID_ECDH[] = {0x2b, 0x81, 0x04, 0x01, 0x0c};
static const uint8_t OID_EC_PUBLIC_KEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_PRIME256V1[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_VALIDITY[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x02, 0x01, 0x0d, 0x06};
static const uint8_t OID_USER_CERT[] = {0x55, 0x04, 0x24};

/* ---- the structures ---- */

/* RFC 5958 OneAsymmetricKey; attributes [0] IMPLICIT SET OF Attribute, publicKey [1] IMPLICIT BIT STRING. */
typedef struct kp_element {
    ASN1_INTEGER *version;
    X509_ALGOR *alg;
    ASN1_OCTET_STRING *priv;
    STACK_OF(X509_ATTRIBUTE) * attrs;
    ASN1_BIT_STRING *pub;
} KP_ELEMENT;

/* RFC 5915 ECPrivateKey: version 1, the scalar, [0] namedCurve, [1] the public point. */
typedef struct kp_ec_private {
    ASN1_INTEGER *version;
    ASN1_OCTET_STRING *priv;
    ASN1_OBJECT *curve;
    ASN1_BIT_STRING *pub;
} KP_EC_PRIVATE;

/* RFC 7906 key validity period: SEQUENCE { doNotUseBefore BinaryTime, doNotUseAfter BinaryTime OPTIONAL }. */
typedef struct kp_validity {
    ASN1_INTEGER *not_before;
    ASN1_INTEGER *not_after;
} KP_VALIDITY;

/* The private key octets are wiped when a structure holding them is freed, as OpenSSL does for PKCS#8. */
static int element_cb(int op, ASN1_VALUE **v, const ASN1_ITEM *it, void *arg)
{
    (void)it;
    (void)arg;
    KP_ELEMENT *e = (KP_ELEMENT *)*v;
    if (op == ASN1_OP_FREE_PRE && e->priv != NULL) {
        OPENSSL_cleanse(e->priv->data, (size_t)e->priv->length);
    }
    return 1;
}

static int ec_private_cb(int op, ASN1_VALUE **v, const ASN1_ITEM *it, void *arg)
{
    (void)it;
    (void)arg;
    KP_EC_PRIVATE *k = (KP_EC_PRIVATE *)*v;
    if (op == ASN1_OP_FREE_PRE && k->priv != NULL) {
        OPENSSL_cleanse(k->priv->data, (size_t)k->priv->length);
    }
    return 1;
}

/* clang-format off */
ASN1_SEQUENCE_cb(KP_ELEMENT, element_cb) = {
    ASN1_SIMPLE(KP_ELEMENT, version, ASN1_INTEGER),
    ASN1_SIMPLE(KP_ELEMENT, alg, X509_ALGOR),
    ASN1_SIMPLE(KP_ELEMENT, priv, ASN1_OCTET_STRING),
    ASN1_IMP_SET_OF_OPT(KP_ELEMENT, attrs, X509_ATTRIBUTE, 0),
    ASN1_IMP_OPT(KP_ELEMENT, pub, ASN1_BIT_STRING, 1),
} static_ASN1_SEQUENCE_END_cb(KP_ELEMENT, KP_ELEMENT)

ASN1_SEQUENCE_cb(KP_EC_PRIVATE, ec_private_cb) = {
    ASN1_SIMPLE(KP_EC_PRIVATE, version, ASN1_INTEGER),
    ASN1_SIMPLE(KP_EC_PRIVATE, priv, ASN1_OCTET_STRING),
    ASN1_EXP_OPT(KP_EC_PRIVATE, curve, ASN1_OBJECT, 0),
    ASN1_EXP_OPT(KP_EC_PRIVATE, pub, ASN1_BIT_STRING, 1),
} static_ASN1_SEQUENCE_END_cb(KP_EC_PRIVATE, KP_EC_PRIVATE)

ASN1_SEQUENCE(KP_VALIDITY) = {
    ASN1_SIMPLE(KP_VALIDITY, not_before, ASN1_INTEGER),
    ASN1_OPT(KP_VALIDITY, not_after, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(KP_VALIDITY)

static int to_der(const void *v, const ASN1_ITEM *it, msp_buf_t *out); /* ends the macros' last statement */
/* clang-format on */

#define IT_ELEMENT ASN1_ITEM_rptr(KP_ELEMENT)
#define IT_EC_PRIVATE ASN1_ITEM_rptr(KP_EC_PRIVATE)
#define IT_VALIDITY ASN1_ITEM_rptr(KP_VALIDITY)
#define IT_OCTETS ASN1_ITEM_rptr(ASN1_OCTET_STRING)

/* DER of a structure into out, wiped when freed (it may hold a private key). */
static int to_der(const void *v, const ASN1_ITEM *it, msp_buf_t *out)
{
    uint8_t *der = NULL;
    int n = ASN1_item_i2d((const ASN1_VALUE *)v, &der, it);
    if (n <= 0) {
        return MSP_ERR_NO_MEMORY;
    }
    msp_buf_put(out, der, (size_t)n);
    OPENSSL_clear_free(der, (size_t)n);
    return msp_buf_error(out);
}

/* Strict DER decoding: all of [der, der + len) is one value, and that value encodes back to exactly these bytes. */
static void *from_der(const uint8_t *der, size_t len, const ASN1_ITEM *it)
{
    const uint8_t *p = der;
    uint8_t *back = NULL;
    ASN1_VALUE *v = len <= LONG_MAX ? ASN1_item_d2i(NULL, &p, (long)len, it) : NULL;
    int n = v != NULL && p == der + len ? ASN1_item_i2d(v, &back, it) : -1;
    int same = n >= 0 && (size_t)n == len && memcmp(back, der, len) == 0;
    OPENSSL_clear_free(back, n > 0 ? (size_t)n : 0);
    if (!same) {
        ASN1_item_free(v, it);
        return NULL;
    }
    return v;
}

static int obj_is(const ASN1_OBJECT *o, const uint8_t *want, size_t n)
{
    return o != NULL && OBJ_length(o) == n && memcmp(OBJ_get0_data(o), want, n) == 0;
}

static ASN1_OBJECT *obj_new(const uint8_t *content, size_t n)
{
    return ASN1_OBJECT_create(NID_undef, (unsigned char *)content, (int)n, NULL, NULL);
}

/* A BIT STRING of whole octets: OpenSSL would otherwise drop trailing zero bits when writing it. */
static ASN1_BIT_STRING *bits_new(const uint8_t *p, size_t n)
{
    ASN1_BIT_STRING *b = ASN1_BIT_STRING_new();
    if (b == NULL || ASN1_BIT_STRING_set(b, (unsigned char *)p, (int)n) != 1) {
        ASN1_BIT_STRING_free(b);
        return NULL;
    }
    b->flags = (b->flags & ~0x07L) | ASN1_STRING_FLAG_BITS_LEFT;
    return b;
}

static int whole_octets(const ASN1_BIT_STRING *b)
{
    return (b->flags & 0x07) == 0;
}

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

/* One attribute with one value, the DER in v (a SEQUENCE: the validity period, a certificate). */
static int add_attr(KP_ELEMENT *e, const uint8_t *oid, size_t oid_len, const msp_buf_t *v)
{
    ASN1_OBJECT *o = obj_new(oid, oid_len);
    X509_ATTRIBUTE *a = o != NULL && msp_buf_error(v) == MSP_OK
                            ? X509_ATTRIBUTE_create_by_OBJ(NULL, o, V_ASN1_SEQUENCE, v->base, (int)v->len)
                            : NULL;
    ASN1_OBJECT_free(o);
    if ((e->attrs == NULL && (e->attrs = sk_X509_ATTRIBUTE_new_null()) == NULL) || a == NULL ||
        sk_X509_ATTRIBUTE_push(e->attrs, a) <= 0) {
        X509_ATTRIBUTE_free(a);
        return MSP_ERR_NO_MEMORY;
    }
    return MSP_OK;
}

static int put_validity(KP_ELEMENT *e, const msp_ets_kp_static_t *s)
{
    KP_VALIDITY *v = (KP_VALIDITY *)ASN1_item_new(IT_VALIDITY);
    msp_buf_t der;
    msp_buf_init(&der, 64);
    int ok = v != NULL && ASN1_INTEGER_set_int64(v->not_before, s->not_before) == 1 &&
             (!s->has_not_after ||
              ((v->not_after = ASN1_INTEGER_new()) != NULL && ASN1_INTEGER_set_int64(v->not_after, s->not_after) == 1));
    int ret = ok && to_der(v, IT_VALIDITY, &der) == MSP_OK ? add_attr(e, OID_VALIDITY, sizeof(OID_VALIDITY), &der)
                                                           : MSP_ERR_NO_MEMORY;
    ASN1_item_free((ASN1_VALUE *)v, IT_VALIDITY);
    msp_buf_free(&der);
    return ret;
}

/* privateKey: X25519 CurvePrivateKey (RFC 8410), P-256 ECPrivateKey (RFC 5915) with its public key. */
static int put_private(KP_ELEMENT *e, int group, const uint8_t priv[KEY_LEN], const uint8_t *pub, size_t pub_len)
{
    msp_buf_t der;
    msp_buf_init(&der, 256);
    int ret = MSP_ERR_NO_MEMORY;
    if (group == GROUP_X25519) {
        ASN1_OCTET_STRING *k = ASN1_OCTET_STRING_new();
        if (k != NULL && ASN1_OCTET_STRING_set(k, priv, KEY_LEN) == 1) {
            ret = to_der(k, IT_OCTETS, &der);
            OPENSSL_cleanse(k->data, KEY_LEN);
        }
        ASN1_OCTET_STRING_free(k);
    } else {
        KP_EC_PRIVATE *k = (KP_EC_PRIVATE *)ASN1_item_new(IT_EC_PRIVATE);
        if (k != NULL && ASN1_INTEGER_set(k->version, 1) == 1 && ASN1_OCTET_STRING_set(k->priv, priv, KEY_LEN) == 1 &&
            (k->pub = bits_new(pub, pub_len)) != NULL) {
            ret = to_der(k, IT_EC_PRIVATE, &der);
        }
        ASN1_item_free((ASN1_VALUE *)k, IT_EC_PRIVATE);
    }
    if (ret == MSP_OK && ASN1_OCTET_STRING_set(e->priv, der.base, (int)der.len) != 1) {
        ret = MSP_ERR_NO_MEMORY;
    }
    OPENSSL_cleanse(der.base, der.len);
    msp_buf_free(&der);
    return ret;
}

/* Type A: { 1, algorithm, privateKey, [0] { key validity period }, [1] publicKey }. */
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
    KP_ELEMENT *e = (KP_ELEMENT *)ASN1_item_new(IT_ELEMENT);
    int ok = e != NULL && ASN1_INTEGER_set(e->version, 1) == 1; /* v2: publicKey present */
    if (ok && group == GROUP_X25519) {
        ASN1_OBJECT *o = obj_new(OID_X25519, sizeof(OID_X25519)); /* RFC 8410: parameters absent */
        ok = o != NULL && X509_ALGOR_set0(e->alg, o, V_ASN1_UNDEF, NULL) == 1;
        if (!ok) {
            ASN1_OBJECT_free(o);
        }
    } else if (ok) {
        ASN1_OBJECT *o = obj_new(OID_ECDH, sizeof(OID_ECDH)); /* RFC 5480 restricted id-ecDH, as ets.md 3.4 asks */
        ASN1_OBJECT *curve = obj_new(OID_PRIME256V1, sizeof(OID_PRIME256V1));
        ok = o != NULL && curve != NULL && X509_ALGOR_set0(e->alg, o, V_ASN1_OBJECT, curve) == 1;
        if (!ok) {
            ASN1_OBJECT_free(o);
            ASN1_OBJECT_free(curve);
        }
    }
    ok = ok && put_private(e, group, priv, pub, pub_len) == MSP_OK && put_validity(e, s) == MSP_OK &&
         (e->pub = bits_new(pub, pub_len)) != NULL;
    int ret = ok ? to_der(e, IT_ELEMENT, out) : MSP_ERR_NO_MEMORY;
    ASN1_item_free((ASN1_VALUE *)e, IT_ELEMENT);
    OPENSSL_cleanse(priv, sizeof(priv));
    return ret == MSP_OK ? MSP_OK : msp_error_set(err, ret, NULL, "static key %zu: %s", i, msp_error_name(ret));
}

/* Type B: the PKCS#8 form OpenSSL writes for the key gives algorithm and privateKey; we add the certificate. */
static int encode_signer(const msp_ets_kp_signer_t *g, size_t i, msp_buf_t *out, msp_error_t *err)
{
    PKCS8_PRIV_KEY_INFO *p8 = g->key != NULL && g->cert != NULL && X509_check_private_key(g->cert, g->key) == 1
                                  ? EVP_PKEY2PKCS8(g->key)
                                  : NULL;
    uint8_t *p8der = NULL;
    int p8len = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, &p8der) : -1;
    PKCS8_PRIV_KEY_INFO_free(p8);
    /* OneAsymmetricKey v1 is PrivateKeyInfo: the template reads OpenSSL's encoding as our element */
    KP_ELEMENT *e = p8len > 0 ? from_der(p8der, (size_t)p8len, IT_ELEMENT) : NULL;
    OPENSSL_clear_free(p8der, p8len > 0 ? (size_t)p8len : 0);
    msp_buf_t cert;
    msp_buf_init(&cert, MSP_ETS_KP_MAX_CERT);
    int ok = e != NULL && ASN1_INTEGER_get(e->version) == 0 && to_der(g->cert, ASN1_ITEM_rptr(X509), &cert) == MSP_OK;
    if (ok) { /* algorithm and privateKey are all we take from it */
        sk_X509_ATTRIBUTE_pop_free(e->attrs, X509_ATTRIBUTE_free);
        ASN1_BIT_STRING_free(e->pub);
        e->attrs = NULL;
        e->pub = NULL;
    }
    if (!ok) {
        ASN1_item_free((ASN1_VALUE *)e, IT_ELEMENT);
        msp_buf_free(&cert);
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                             "signer %zu: no key, no certificate, a key that is not the certificate's, or a "
                             "certificate over %u bytes",
                             i, MSP_ETS_KP_MAX_CERT);
    }
    msp_buf_t der;
    msp_buf_init(&der, ELEMENT_LIMIT);
    int ret = add_attr(e, OID_USER_CERT, sizeof(OID_USER_CERT), &cert);
    ret = ret == MSP_OK ? to_der(e, IT_ELEMENT, &der) : ret;
    if (ret == MSP_OK) {
        msp_buf_put(out, der.base, der.len);
        ret = msp_buf_error(out);
    }
    OPENSSL_cleanse(der.base, der.len);
    msp_buf_free(&der);
    msp_buf_free(&cert);
    ASN1_item_free((ASN1_VALUE *)e, IT_ELEMENT);
    return ret == MSP_OK ? MSP_OK
                         : msp_error_set(err, ret, NULL, "signer %zu: %s (an element holds at most %u bytes)", i,
                                         msp_error_name(ret), ELEMENT_LIMIT);
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
    ERR_set_mark();
    int ret = MSP_OK;
    for (size_t i = 0; ret == MSP_OK && i < n_static; i++) {
        ret = encode_static(&statics[i], i, &body, err);
    }
    for (size_t i = 0; ret == MSP_OK && i < n_signer; i++) {
        ret = encode_signer(&signers[i], i, &body, err); /* Type B comes last (ETS-KP-1) */
    }
    ERR_pop_to_mark();
    if (ret == MSP_OK) {
        msp_buf_put_u8(out, T_SEQUENCE);
        ets_der_put_len(out, body.len);
        msp_buf_put(out, body.base, body.len);
        ret = msp_buf_error(out);
        if (ret != MSP_OK) {
            msp_error_set(err, ret, NULL, "the package does not fit: %s", msp_error_name(ret));
        }
    }
    OPENSSL_cleanse(body.base, body.len);
    msp_buf_free(&body);
    return ret;
}

/* ---- reading ---- */

#define BAD(code, ...) msp_error_set(err, code, NULL, __VA_ARGS__)

static int read_alg_a(const X509_ALGOR *alg, size_t i, int *group, msp_error_t *err)
{
    const ASN1_OBJECT *oid;
    int ptype;
    const void *pval;
    X509_ALGOR_get0(&oid, &ptype, &pval, alg);
    if (obj_is(oid, OID_X25519, sizeof(OID_X25519)) && ptype == V_ASN1_UNDEF) { /* RFC 8410: parameters absent */
        *group = GROUP_X25519;
        return MSP_OK;
    }
    if ((obj_is(oid, OID_ECDH, sizeof(OID_ECDH)) || obj_is(oid, OID_EC_PUBLIC_KEY, sizeof(OID_EC_PUBLIC_KEY))) &&
        ptype == V_ASN1_OBJECT && obj_is(pval, OID_PRIME256V1, sizeof(OID_PRIME256V1))) {
        *group = GROUP_P256;
        return MSP_OK;
    }
    return BAD(MSP_ERR_INVALID,
               "element %zu: not an X25519 (1.3.101.110) or P-256 (1.3.132.1.12 / 1.2.840.10045.2.1 + prime256v1) key",
               i);
}

/*
 * An RFC 5915 ECPrivateKey: version 1, the 32-byte scalar, optional [0] prime256v1, optional [1] public point
 * (*has_pub; one longer than any P-256 point is handed back as P256_POINT_LEN + 1 bytes, to differ from publicKey).
 */
static int read_ec_private(const ASN1_OCTET_STRING *os, uint8_t priv[KEY_LEN], uint8_t *pub, size_t *pub_len,
                           int *has_pub)
{
    KP_EC_PRIVATE *k = from_der(os->data, (size_t)os->length, IT_EC_PRIVATE);
    int ok = k != NULL && ASN1_INTEGER_get(k->version) == 1 && k->priv->length == KEY_LEN &&
             (k->curve == NULL || obj_is(k->curve, OID_PRIME256V1, sizeof(OID_PRIME256V1))) &&
             (k->pub == NULL || whole_octets(k->pub));
    if (ok) {
        memcpy(priv, k->priv->data, KEY_LEN);
        *has_pub = k->pub != NULL;
        *pub_len = *has_pub ? (size_t)k->pub->length : 0;
        if (*pub_len > P256_POINT_LEN) {
            *pub_len = P256_POINT_LEN + 1;
            memset(pub, 0, *pub_len);
        } else if (*has_pub) {
            memcpy(pub, k->pub->data, *pub_len);
        }
    }
    ASN1_item_free((ASN1_VALUE *)k, IT_EC_PRIVATE);
    return ok ? MSP_OK : MSP_ERR_SYNTAX;
}

static int read_private_a(const ASN1_OCTET_STRING *os, size_t i, int group, uint8_t priv[KEY_LEN], uint8_t *inner_pub,
                          size_t *inner_pub_len, int *has_inner, msp_error_t *err)
{
    *inner_pub_len = 0;
    *has_inner = 0;
    if (group == GROUP_X25519) {
        ASN1_OCTET_STRING *k = from_der(os->data, (size_t)os->length, IT_OCTETS);
        int ok = k != NULL && k->length == KEY_LEN;
        if (ok) {
            memcpy(priv, k->data, KEY_LEN);
            OPENSSL_cleanse(k->data, KEY_LEN);
        }
        ASN1_OCTET_STRING_free(k);
        return ok ? MSP_OK : BAD(MSP_ERR_SYNTAX, "element %zu: X25519 privateKey is not a 32-byte CurvePrivateKey", i);
    }
    if (read_ec_private(os, priv, inner_pub, inner_pub_len, has_inner) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: privateKey is not a P-256 ECPrivateKey", i);
    }
    return MSP_OK;
}

/* The RFC 7906 key validity period value: BinaryTime >= 0, doNotUseAfter >= doNotUseBefore. */
static int read_validity(const ASN1_STRING *der, msp_ets_kp_static_t *s)
{
    KP_VALIDITY *v = from_der(der->data, (size_t)der->length, IT_VALIDITY);
    int ok = v != NULL && ASN1_INTEGER_get_int64(&s->not_before, v->not_before) == 1 && s->not_before >= 0;
    s->has_not_after = ok && v->not_after != NULL;
    if (s->has_not_after) {
        ok = ASN1_INTEGER_get_int64(&s->not_after, v->not_after) == 1 && s->not_after >= s->not_before;
    }
    ASN1_item_free((ASN1_VALUE *)v, IT_VALIDITY);
    return ok ? MSP_OK : MSP_ERR_SYNTAX;
}

/*
 * The attributes: want_oid is the one the caller needs (exactly once, with one SEQUENCE value, handed back in
 * *value, NULL when absent); other attributes are allowed and skipped. Every attribute has at least one value.
 */
static int read_attrs(const STACK_OF(X509_ATTRIBUTE) * attrs, const uint8_t *want_oid, size_t want_len,
                      const ASN1_STRING **value)
{
    int n = sk_X509_ATTRIBUTE_num(attrs);
    *value = NULL;
    if (n > MSP_ETS_KP_MAX_ATTRS) {
        return MSP_ERR_SYNTAX;
    }
    for (int j = 0; j < n; j++) {
        X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(attrs, j);
        if (X509_ATTRIBUTE_count(a) == 0) {
            return MSP_ERR_SYNTAX;
        }
        if (!obj_is(X509_ATTRIBUTE_get0_object(a), want_oid, want_len)) {
            continue;
        }
        const ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, 0);
        if (*value != NULL || X509_ATTRIBUTE_count(a) != 1 || t->type != V_ASN1_SEQUENCE) {
            return MSP_ERR_SYNTAX; /* the same attribute twice, several values, or not a SEQUENCE */
        }
        *value = t->value.sequence;
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

static int read_static(const KP_ELEMENT *e, size_t i, msp_ets_kp_static_t *s, msp_error_t *err)
{
    int group = GROUP_NONE, has_inner, ret;
    uint8_t priv[KEY_LEN], inner_pub[P256_POINT_LEN + 1];
    size_t inner_pub_len;
    const ASN1_STRING *validity;
    if ((ret = read_alg_a(e->alg, i, &group, err)) != MSP_OK ||
        (ret = read_private_a(e->priv, i, group, priv, inner_pub, &inner_pub_len, &has_inner, err)) != MSP_OK) {
        return ret;
    }
    size_t pub_len = e->pub != NULL ? (size_t)e->pub->length : 0;
    if (e->attrs == NULL) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: a static key without attributes (the validity period is required)", i);
    } else if (read_attrs(e->attrs, OID_VALIDITY, sizeof(OID_VALIDITY), &validity) != MSP_OK ||
               (validity != NULL && read_validity(validity, s) != MSP_OK)) {
        ret = BAD(MSP_ERR_SYNTAX, "element %zu: malformed attributes or key validity period", i);
    } else if (validity == NULL) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: a static key without the key validity period attribute", i);
    } else if (e->pub == NULL || !whole_octets(e->pub) ||
               pub_len != (group == GROUP_X25519 ? KEY_LEN : P256_POINT_LEN)) {
        ret = BAD(MSP_ERR_SYNTAX, "element %zu: publicKey missing or malformed", i);
    } else if (has_inner && (inner_pub_len != pub_len || memcmp(inner_pub, e->pub->data, pub_len) != 0)) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: the ECPrivateKey's public key differs from publicKey", i);
    } else if ((s->key = build_key(group, priv, e->pub->data, pub_len)) == NULL) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: the public key does not belong to the private key", i);
    }
    OPENSSL_cleanse(priv, sizeof(priv));
    return ret;
}

/* The literal reading of ets.md 3.4 (the certificate's signatureAlgorithm) stands for the subject key's algorithm. */
static X509_ALGOR *subject_alg(X509 *cert, X509_ALGOR *alg)
{
    const X509_ALGOR *sig = NULL;
    X509_ALGOR *pk = NULL;
    X509_get0_signature(NULL, &sig, cert);
    if (sig == NULL || X509_ALGOR_cmp(sig, alg) != 0) {
        return alg;
    }
    return X509_PUBKEY_get0_param(NULL, NULL, NULL, &pk, X509_get_X509_PUBKEY(cert)) == 1 ? pk : NULL;
}

/* The signer's key: the element without its attributes is a PKCS#8 PrivateKeyInfo, which OpenSSL reads. */
static EVP_PKEY *signer_key(KP_ELEMENT *e, X509_ALGOR *alg)
{
    STACK_OF(X509_ATTRIBUTE) *attrs = e->attrs;
    X509_ALGOR *own = e->alg;
    uint8_t *der = NULL;
    e->attrs = NULL;
    e->alg = alg;
    int n = ASN1_item_i2d((ASN1_VALUE *)e, &der, IT_ELEMENT);
    e->attrs = attrs;
    e->alg = own;
    const uint8_t *p = der;
    PKCS8_PRIV_KEY_INFO *info = n > 0 ? d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, n) : NULL;
    EVP_PKEY *key = info != NULL ? EVP_PKCS82PKEY(info) : NULL;
    PKCS8_PRIV_KEY_INFO_free(info);
    OPENSSL_clear_free(der, n > 0 ? (size_t)n : 0);
    return key;
}

/* Type B: { 0, algorithm, privateKey, [0] { userCertificate } }. */
static int read_signer(KP_ELEMENT *e, size_t i, msp_ets_kp_signer_t *g, msp_error_t *err)
{
    const ASN1_STRING *cert;
    if (e->pub != NULL || e->attrs == NULL ||
        read_attrs(e->attrs, OID_USER_CERT, sizeof(OID_USER_CERT), &cert) != MSP_OK || cert == NULL) {
        return BAD(MSP_ERR_SYNTAX,
                   "element %zu: a signer element needs algorithm, privateKey, and attributes "
                   "with userCertificate, and no publicKey",
                   i);
    }
    if (cert->length > MSP_ETS_KP_MAX_CERT ||
        (g->cert = from_der(cert->data, (size_t)cert->length, ASN1_ITEM_rptr(X509))) == NULL) {
        return BAD(MSP_ERR_SYNTAX, "element %zu: userCertificate is not one X.509 certificate of at most %u bytes", i,
                   MSP_ETS_KP_MAX_CERT);
    }
    X509_ALGOR *alg = subject_alg(g->cert, e->alg);
    if (alg == NULL) {
        return BAD(MSP_ERR_INVALID, "element %zu: cannot read the certificate's key algorithm", i);
    }
    if ((g->key = signer_key(e, alg)) == NULL) {
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

/* The element [der, der + len) in strict DER, or MSP_ERR_SYNTAX with what OpenSSL's decoder says, if it says. */
static int parse_element(const uint8_t *der, size_t len, size_t i, KP_ELEMENT **e, msp_error_t *err)
{
    if (len > ELEMENT_LIMIT) {
        return BAD(MSP_ERR_LIMIT, "element %zu: %zu bytes (at most %u)", i, len, ELEMENT_LIMIT);
    }
    ERR_set_mark();
    int ret = (*e = from_der(der, len, IT_ELEMENT)) != NULL ? MSP_OK : MSP_ERR_SYNTAX;
    if (ret != MSP_OK) {
        const char *data = NULL;
        unsigned long why = ERR_peek_last_error_data(&data, NULL);
        const char *reason = why != 0 ? ERR_reason_error_string(why) : NULL;
        BAD(ret, "element %zu: not a DER OneAsymmetricKey (%s%s%s)", i, reason != NULL ? reason : "not in DER form",
            data != NULL && *data != '\0' ? ": " : "", data != NULL ? data : "");
    }
    ERR_pop_to_mark();
    return ret;
}

static int read_element(const uint8_t *der, size_t len, size_t i, msp_ets_keypkg_t *pkg, msp_error_t *err)
{
    int64_t version;
    KP_ELEMENT *e = NULL;
    int ret = parse_element(der, len, i, &e, err);
    if (ret != MSP_OK) {
        return ret;
    }
    if (ASN1_INTEGER_get_int64(&version, e->version) != 1) {
        ret = BAD(MSP_ERR_SYNTAX, "element %zu: a version beyond 64 bits", i);
    } else if (version == 1 && pkg->n_signer > 0) {
        ret = BAD(MSP_ERR_INVALID, "element %zu: a static key after a signer (Type B comes last)", i);
    } else if (version == 1) {
        memset(&pkg->statics[pkg->n_static], 0, sizeof(pkg->statics[0]));
        ret = read_static(e, i, &pkg->statics[pkg->n_static++], err);
    } else if (version == 0 && pkg->n_signer == MSP_ETS_KP_MAX_SIGNERS) {
        ret = BAD(MSP_ERR_LIMIT, "more than %d signer elements", MSP_ETS_KP_MAX_SIGNERS);
    } else if (version == 0) {
        ret = read_signer(e, i, &pkg->signers[pkg->n_signer++], err);
    } else {
        ret = BAD(MSP_ERR_INVALID, "element %zu: version %lld (a static key is v2 = 1, a signer v1 = 0)", i,
                  (long long)version);
    }
    ASN1_item_free((ASN1_VALUE *)e, IT_ELEMENT);
    return ret;
}

int msp_ets_keypkg_decode(const uint8_t *der, size_t len, msp_ets_keypkg_t *pkg, msp_error_t *err)
{
    memset(pkg, 0, sizeof(*pkg));
    if (len > MSP_ETS_KP_MAX_SIZE) {
        return BAD(MSP_ERR_LIMIT, "a key package of %zu bytes (at most %u)", len, MSP_ETS_KP_MAX_SIZE);
    }
    msp_reader_t r, seq;
    if (len == 0) { /* nothing to frame, and a reader over (NULL, 0) would add 0 to a null pointer */
        return BAD(MSP_ERR_SYNTAX, "not one DER SEQUENCE (AsymmetricKeyPackage)");
    }
    msp_reader_init(&r, der, len);
    if (ets_der_read(&r, T_SEQUENCE, &seq) != MSP_OK || msp_reader_expect_end(&r) != MSP_OK) {
        return BAD(MSP_ERR_SYNTAX, "not one DER SEQUENCE (AsymmetricKeyPackage)");
    }
    ERR_set_mark();
    int ret = msp_reader_left(&seq) > 0 ? MSP_OK : BAD(MSP_ERR_SYNTAX, "an empty key package");
    for (size_t i = 0; ret == MSP_OK && msp_reader_left(&seq) > 0; i++) {
        const uint8_t *start = seq.pos;
        msp_reader_t e;
        if (i == MSP_ETS_KP_MAX_ELEMENTS) {
            ret = BAD(MSP_ERR_LIMIT, "more than %d elements", MSP_ETS_KP_MAX_ELEMENTS);
        } else if (ets_der_read(&seq, T_SEQUENCE, &e) != MSP_OK) {
            ret = BAD(MSP_ERR_SYNTAX, "element %zu: not a DER SEQUENCE", i);
        } else {
            ret = read_element(start, (size_t)(seq.pos - start), i, pkg, err);
        }
    }
    if (ret == MSP_OK) {
        ret = check_binding(pkg, err);
    }
    ERR_pop_to_mark();
    if (ret != MSP_OK) {
        msp_ets_keypkg_free(pkg);
    }
    return ret;
}

void msp_ets_keypkg_free(msp_ets_keypkg_t *pkg)
{
    if (pkg == NULL) {
        return;
    }
    for (size_t i = 0; i < pkg->n_static; i++) {
        EVP_PKEY_free(pkg->statics[i].key);
    }
    for (size_t i = 0; i < pkg->n_signer; i++) {
        EVP_PKEY_free(pkg->signers[i].key);
        X509_free(pkg->signers[i].cert);
    }
    memset(pkg, 0, sizeof(*pkg));
}
