/* ETS visibility information (TS 103 523-3 V1.3.1 clause 4.3.3; ets.md 3.3). */
#include "msp/ets.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "msp/error.h"
#include "msp/json.h"
#include "reader.h"

#include "der.h"

#define DER_SEQUENCE 0x30
#define DER_OCTET_STRING 0x04
#define DER_UTF8_STRING 0x0c

/*
 * 4.3.3: fingerprint = the first 80 bits of SHA-256 over the static public key "exactly as sent in the ServerHello
 * key_share" (ets.md 3.3 ETS-VI-3).
 */
int msp_ets_fingerprint(const uint8_t *key_share, size_t len, uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    uint8_t h[32];
    unsigned n = 0;
    if (EVP_Digest(key_share, len, h, &n, EVP_sha256(), NULL) != 1) {
        return MSP_ERR_NO_MEMORY;
    }
    memcpy(fp, h, MSP_ETS_FINGERPRINT_LEN); /* H0 || H1 || (H2 >> 16): the first 80 bits (ETS-VI-3) */
    return MSP_OK;
}

/* The key_share bytes of a static key (ETS-VI-3: 32 raw bytes for X25519, the 65-byte point for P-256). */
int msp_ets_key_share(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len)
{
    char group[32];
    int ok = EVP_PKEY_is_a(key, "X25519") ||
             (EVP_PKEY_is_a(key, "EC") &&
              EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1 &&
              strcmp(group, "prime256v1") == 0);
    if (!ok) {
        return MSP_ERR_ARGUMENT;
    }
    size_t need = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0, &need) != 1) {
        return MSP_ERR_ARGUMENT;
    }
    if (need > cap) {
        return MSP_ERR_LIMIT;
    }
    /* the key_share encoding of RFC 8446 4.2.8.2: raw X25519, or the uncompressed point */
    return EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, cap, len) == 1
               ? MSP_OK
               : MSP_ERR_ARGUMENT;
}

int msp_ets_key_fingerprint(EVP_PKEY *key, uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    uint8_t share[133];
    size_t len = 0;
    int rc = msp_ets_key_share(key, share, sizeof(share), &len);
    return rc == MSP_OK ? msp_ets_fingerprint(share, len, fp) : MSP_ERR_ARGUMENT;
}

int msp_ets_key_describe(EVP_PKEY *key, msp_buf_t *out)
{
    uint8_t share[65], fp[MSP_ETS_FINGERPRINT_LEN]; /* 65: an uncompressed P-256 point, the longest we serve */
    char share_hex[2 * sizeof(share) + 1], fp_hex[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    size_t len = 0;
    if (msp_ets_key_share(key, share, sizeof(share), &len) != MSP_OK || msp_ets_fingerprint(share, len, fp) != MSP_OK) {
        return MSP_ERR_ARGUMENT;
    }
    msp_hex(share_hex, share, len);
    msp_hex(fp_hex, fp, sizeof(fp));
    msp_buf_printf(out, "%s static key, fingerprint %s, key_share %s", EVP_PKEY_is_a(key, "X25519") ? "x25519" : "p256",
                   fp_hex, share_hex);
    return msp_buf_error(out);
}

/*
 * VisibilityInformation ::= SEQUENCE { fingerprint OCTET STRING (SIZE(10)), accessDescription UTF8String }
 * (4.3.3, ets.md 3.3 ETS-VI-2); accessDescription is free text that "shall be accurate" (ETS-VI-6).
 */
int msp_ets_vi_encode(const uint8_t fp[MSP_ETS_FINGERPRINT_LEN], const char *access, size_t access_len, msp_buf_t *out)
{
    if (access_len > MSP_ETS_MAX_ACCESS || !msp_utf8_valid(access, access_len)) {
        return MSP_ERR_ARGUMENT;
    }
    size_t body = 2 + MSP_ETS_FINGERPRINT_LEN + 1 + ets_der_len_size(access_len) + access_len;
    msp_buf_put_u8(out, DER_SEQUENCE);
    ets_der_put_len(out, body);
    msp_buf_put_u8(out, DER_OCTET_STRING);
    msp_buf_put_u8(out, MSP_ETS_FINGERPRINT_LEN);
    msp_buf_put(out, fp, MSP_ETS_FINGERPRINT_LEN);
    msp_buf_put_u8(out, DER_UTF8_STRING);
    ets_der_put_len(out, access_len);
    msp_buf_put(out, access, access_len);
    return msp_buf_error(out);
}

/* One DER TLV of the expected tag; definite, minimal length (X.690 10.1). */
static int read_tlv(msp_reader_t *r, uint8_t tag, msp_reader_t *value)
{
    uint8_t t, l0, b = 0;
    size_t len = 0;
    msp_reader_init(value, NULL, 0); /* a refused TLV leaves value empty, never what it held before */
    if (msp_read_u8(r, &t) != MSP_OK || t != tag || msp_read_u8(r, &l0) != MSP_OK) {
        return MSP_ERR_SYNTAX;
    }
    if (l0 < 0x80) {
        len = l0;
    } else if (l0 == 0x81 || l0 == 0x82) {
        for (int i = 0; i < (l0 & 0x7f); i++) {
            /* equivalent mutant: '||' -> '&&': a failed read leaves r empty; a leading zero is not minimal */
            if (msp_read_u8(r, &b) != MSP_OK || (i == 0 && b == 0)) {
                return MSP_ERR_SYNTAX;
            }
            len = len << 8 | b;
        }
        if (len < (l0 == 0x81 ? 0x80u : 0x100u)) {
            return MSP_ERR_SYNTAX; /* not the minimal form */
        }
    } else {
        return MSP_ERR_SYNTAX; /* indefinite, or longer than any VisibilityInformation we accept */
    }
    return msp_read_sub(r, len, value) == MSP_OK ? MSP_OK : MSP_ERR_SYNTAX;
}

/* ETS-VI-2 (4.3.3), read strictly: exactly the two fields, the fingerprint exactly 10 bytes. */
int msp_ets_vi_decode(const uint8_t *der, size_t len, uint8_t fp[MSP_ETS_FINGERPRINT_LEN], const uint8_t **access,
                      size_t *access_len)
{
    msp_reader_t r, seq, f, a;
    msp_reader_init(&r, der, len);
    if (read_tlv(&r, DER_SEQUENCE, &seq) != MSP_OK || msp_reader_left(&r) != 0 ||
        read_tlv(&seq, DER_OCTET_STRING, &f) != MSP_OK || msp_reader_left(&f) != MSP_ETS_FINGERPRINT_LEN ||
        read_tlv(&seq, DER_UTF8_STRING, &a) != MSP_OK || msp_reader_left(&seq) != 0) {
        return MSP_ERR_SYNTAX;
    }
    *access_len = msp_reader_left(&a);
    *access = a.pos;
    if (*access_len > MSP_ETS_MAX_ACCESS || !msp_utf8_valid(a.pos, *access_len)) {
        return MSP_ERR_SYNTAX;
    }
    memcpy(fp, f.pos, MSP_ETS_FINGERPRINT_LEN);
    return MSP_OK;
}

static ASN1_OBJECT *vi_oid(void)
{
    return OBJ_txt2obj(MSP_ETS_VI_OID, 1);
}

/* The otherName of ETS-VI-4: type-id 0.4.0.3523.3.1, value the DER of the VisibilityInformation. */
static GENERAL_NAME *vi_name(const uint8_t fp[MSP_ETS_FINGERPRINT_LEN], const char *access, size_t access_len)
{
    uint8_t store[16 + MSP_ETS_MAX_ACCESS];
    msp_buf_t der;
    msp_buf_init_fixed(&der, store, sizeof(store));
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_OBJECT *oid = vi_oid();
    ASN1_TYPE *value = ASN1_TYPE_new();
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    int ok = gen != NULL && oid != NULL && value != NULL && seq != NULL &&
             msp_ets_vi_encode(fp, access, access_len, &der) == MSP_OK && ASN1_STRING_set(seq, der.base, (int)der.len);
    if (ok) {
        ASN1_TYPE_set(value, V_ASN1_SEQUENCE, seq); /* a SEQUENCE value holds its whole encoding */
        seq = NULL;
        ok = GENERAL_NAME_set0_othername(gen, oid, value);
    }
    if (!ok) {
        ASN1_STRING_free(seq);
        ASN1_TYPE_free(value);
        ASN1_OBJECT_free(oid);
        GENERAL_NAME_free(gen);
        return NULL;
    }
    return gen;
}

/*
 * 4.3.3: the server certificate "shall carry visibility information" as a subjectAltName otherName (ETS-VI-1,
 * ETS-VI-4); one otherName per static key pair (ETS-VI-5), so existing names are kept.
 */
int msp_ets_cert_add(X509 *x, const uint8_t fp[MSP_ETS_FINGERPRINT_LEN], const char *access, size_t access_len)
{
    int crit = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (names == NULL) {
        names = GENERAL_NAMES_new();
        crit = 0;
    }
    GENERAL_NAME *gen = names != NULL ? vi_name(fp, access, access_len) : NULL;
    int ok = gen != NULL && sk_GENERAL_NAME_push(names, gen) > 0;
    if (!ok) {
        GENERAL_NAME_free(gen);
    }
    ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, names, crit, X509V3_ADD_REPLACE) == 1;
    GENERAL_NAMES_free(names);
    return ok ? MSP_OK : MSP_ERR_ARGUMENT;
}

static int read_one(const GENERAL_NAME *gen, const ASN1_OBJECT *want, msp_ets_vi_t *vi, int *found)
{
    ASN1_OBJECT *oid = NULL;
    ASN1_TYPE *value = NULL;
    *found = 0;
    if (!GENERAL_NAME_get0_otherName(gen, &oid, &value) || OBJ_cmp(oid, want) != 0) {
        return MSP_OK;
    }
    *found = 1;
    const uint8_t *access;
    if (value == NULL || value->type != V_ASN1_SEQUENCE ||
        msp_ets_vi_decode(value->value.sequence->data, (size_t)value->value.sequence->length, vi->fingerprint, &access,
                          &vi->access_len) != MSP_OK) {
        return MSP_ERR_SYNTAX; /* an ETS otherName that is not a VisibilityInformation is reported, never skipped */
    }
    memcpy(vi->access, access, vi->access_len);
    vi->access[vi->access_len] = '\0';
    return MSP_OK;
}

/*
 * Every VisibilityInformation of the SAN (4.3.3, ETS-VI-4/5); a stand-alone extension with the same OID is
 * reported as "non-conformant placement" (ets.md 3.3 note) rather than ignored.
 */
int msp_ets_cert_read(X509 *x, msp_ets_vi_t *vi, size_t max, size_t *n, int *misplaced)
{
    ASN1_OBJECT *want = vi_oid();
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int ret = want != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
    *n = 0;
    for (int i = 0; ret == MSP_OK && names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        int found;
        if (*n == max) {
            ret = MSP_ERR_LIMIT;
            break;
        }
        ret = read_one(sk_GENERAL_NAME_value(names, i), want, &vi[*n], &found);
        *n += ret == MSP_OK && found;
    }
    *misplaced = want != NULL && X509_get_ext_by_OBJ(x, want, -1) >= 0;
    GENERAL_NAMES_free(names);
    ASN1_OBJECT_free(want);
    return ret;
}

/*
 * Removes the ETS otherNames (4.3.3 ETS-VI-4) before re-signing with new keys: "a rotated key therefore needs a
 * new (or multi-key) certificate" (ets.md 3.5).
 */
int msp_ets_cert_clear(X509 *x, size_t *removed)
{
    int crit = 0;
    *removed = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (names == NULL) {
        return MSP_OK;
    }
    ASN1_OBJECT *want = vi_oid();
    int ret = want != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
    for (int i = sk_GENERAL_NAME_num(names) - 1; ret == MSP_OK && i >= 0; i--) {
        ASN1_OBJECT *oid = NULL;
        ASN1_TYPE *value = NULL;
        if (GENERAL_NAME_get0_otherName(sk_GENERAL_NAME_value(names, i), &oid, &value) && OBJ_cmp(oid, want) == 0) {
            GENERAL_NAME_free(sk_GENERAL_NAME_delete(names, i));
            (*removed)++;
        }
    }
    if (ret == MSP_OK && *removed > 0) {
        /* A subjectAltName left empty would be invalid (RFC 5280 4.2.1.6): drop the extension instead. */
        int idx = X509_get_ext_by_NID(x, NID_subject_alt_name, -1);
        if (sk_GENERAL_NAME_num(names) == 0) {
            X509_EXTENSION_free(X509_delete_ext(x, idx));
        } else if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, crit, X509V3_ADD_REPLACE) != 1) {
            ret = MSP_ERR_NO_MEMORY;
        }
    }
    ASN1_OBJECT_free(want);
    GENERAL_NAMES_free(names);
    return ret;
}
