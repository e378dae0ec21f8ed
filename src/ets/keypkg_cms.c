/*
 * CMS-wrapped key packages (ets.md 3.4 ETS-KP-2): SignedData (RFC 5652 5)
 * of an id-ct-KP-aKeyPackage inside AuthEnvelopedData (RFC 5083) to the
 * consumer, with OpenSSL 3's CMS. The order, sign then encrypt, is RFC
 * 5958's own suggestion for key packages (section 5): the signature
 * stays hidden, and whoever removes the envelope still holds a signed
 * package. OpenSSL's CMS decoder reads BER; the outer and inner
 * ContentInfo must still fill their buffer exactly.
 */
#include "msp/ets_keypkg.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

/* The newest OpenSSL error as "reason (data)", or fallback; the queue is cleared. */
static void ossl_why(char *out, size_t n, const char *fallback)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_last_error_data(&data, &flags);
    if (e == 0) {
        snprintf(out, n, "%s", fallback);
    } else {
        const char *reason = ERR_reason_error_string(e);
        snprintf(out, n, "%s%s%s%s", reason != NULL ? reason : fallback, (flags & ERR_TXT_STRING) ? " (" : "",
                 (flags & ERR_TXT_STRING) ? data : "", (flags & ERR_TXT_STRING) ? ")" : "");
    }
    ERR_clear_error();
}

static int fail(msp_error_t *err, int code, const char *what)
{
    char why[256];
    ossl_why(why, sizeof why, "OpenSSL gave no reason");
    return msp_error_set(err, code, NULL, "%s: %s", what, why);
}

/* The DER of cms appended to out. */
static int put_der(CMS_ContentInfo *cms, msp_buf_t *out, msp_error_t *err)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    if (n <= 0) {
        return fail(err, MSP_ALERT_INTERNAL_ERROR, "cannot encode the CMS structure");
    }
    int ret = msp_buf_put(out, der, (size_t)n);
    OPENSSL_free(der);
    return ret == MSP_OK ? MSP_OK : msp_error_set(err, ret, NULL, "the wrapped package does not fit the output");
}

/* SignedData of the package, signed now (our signingTime: OpenSSL would read the clock). */
static int sign_package(const uint8_t *der, size_t len, X509 *cert, EVP_PKEY *key, int64_t now, CMS_ContentInfo **out,
                        msp_error_t *err)
{
    int ret = MSP_OK;
    const unsigned flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
    ASN1_OBJECT *type = OBJ_txt2obj(MSP_ETS_KP_OID_AKEYPACKAGE, 1);
    ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)now);
    BIO *in = BIO_new_mem_buf(der, (int)len);
    CMS_SignerInfo *si = NULL;
    int ok = cms != NULL && type != NULL && t != NULL && in != NULL && CMS_set1_eContentType(cms, type) == 1 &&
             (si = CMS_add1_signer(cms, cert, key, EVP_sha256(), flags)) != NULL &&
             CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, t->type, t, -1) == 1 &&
             CMS_final(cms, in, NULL, CMS_BINARY) == 1;
    if (!ok) {
        ret = fail(err, MSP_ALERT_INTERNAL_ERROR, "cannot sign the key package");
        CMS_ContentInfo_free(cms);
        cms = NULL;
    }
    ASN1_OBJECT_free(type);
    ASN1_TIME_free(t);
    BIO_free(in);
    *out = cms;
    return ret;
}

int msp_ets_keypkg_cms_wrap(const uint8_t *der, size_t len, X509 *signer_cert, EVP_PKEY *signer_key, X509 *recipient,
                            int64_t now, msp_buf_t *out, msp_error_t *err)
{
    if (der == NULL || signer_cert == NULL || signer_key == NULL || recipient == NULL || out == NULL || now < 0) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "package, signer, key, recipient and out are required");
    }
    if (len == 0 || len > MSP_ETS_KP_MAX_SIZE) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "a package holds 1..%u bytes", MSP_ETS_KP_MAX_SIZE);
    }
    if (X509_check_private_key(signer_cert, signer_key) != 1) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "the signing key is not the signer certificate's");
    }
    EVP_PKEY *to_key = X509_get0_pubkey(recipient);
    if (to_key == NULL || !(EVP_PKEY_is_a(to_key, "RSA") || EVP_PKEY_is_a(to_key, "EC"))) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "CMS encrypts to an RSA or EC recipient key only");
    }
    CMS_ContentInfo *sd = NULL;
    int ret = sign_package(der, len, signer_cert, signer_key, now, &sd, err);
    if (ret != MSP_OK) {
        return ret;
    }
    unsigned char *sd_der = NULL;
    int sd_len = i2d_CMS_ContentInfo(sd, &sd_der);
    CMS_ContentInfo_free(sd);
    STACK_OF(X509) *to = sk_X509_new_null();
    ASN1_OBJECT *signed_type = OBJ_nid2obj(NID_pkcs7_signed);
    BIO *in = sd_len > 0 ? BIO_new_mem_buf(sd_der, sd_len) : NULL;
    CMS_ContentInfo *env = NULL;
    if (in == NULL || to == NULL || sk_X509_push(to, recipient) <= 0) {
        ret = fail(err, MSP_ALERT_INTERNAL_ERROR, "cannot encode the signed package");
    } else if ((env = CMS_encrypt(to, NULL, EVP_aes_256_gcm(), CMS_BINARY | CMS_PARTIAL)) == NULL) {
        ret = fail(err, MSP_ERR_ARGUMENT, "cannot encrypt to the recipient's certificate (RSA or EC key needed)");
    } else if (CMS_set1_eContentType(env, signed_type) != 1 || CMS_final(env, in, NULL, CMS_BINARY) != 1) {
        ret = fail(err, MSP_ALERT_INTERNAL_ERROR, "cannot encrypt the signed package");
    } else {
        ret = put_der(env, out, err);
    }
    CMS_ContentInfo_free(env);
    BIO_free(in);
    sk_X509_free(to);
    OPENSSL_free(sd_der);
    return ret;
}

/* ---- unwrap ---- */

/* A whole DER ContentInfo, nothing after it. */
static CMS_ContentInfo *parse(const uint8_t *p, size_t len)
{
    const unsigned char *q = p;
    CMS_ContentInfo *cms = len <= (size_t)LONG_MAX ? d2i_CMS_ContentInfo(NULL, &q, (long)len) : NULL;
    if (cms != NULL && q != p + len) {
        CMS_ContentInfo_free(cms);
        cms = NULL;
    }
    ERR_clear_error();
    return cms;
}

static int type_is(const ASN1_OBJECT *o, int nid)
{
    return o != NULL && OBJ_obj2nid(o) == nid;
}

/* Does one RecipientInfo name cert (key transport by issuer and serial or key id, key agreement likewise)? */
static int addressed_to(CMS_ContentInfo *cms, X509 *cert)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS && CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0) {
            return 1;
        }
        STACK_OF(CMS_RecipientEncryptedKey) *reks =
            CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_AGREE ? CMS_RecipientInfo_kari_get0_reks(ri) : NULL;
        for (int k = 0; k < sk_CMS_RecipientEncryptedKey_num(reks); k++) {
            if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, k), cert) == 0) {
                return 1;
            }
        }
    }
    ERR_clear_error();
    return 0;
}

/* The envelope opened: the SignedData's DER in *plain (a memory BIO the caller frees). */
static int open_envelope(const uint8_t *p, size_t len, X509 *cert, EVP_PKEY *key, BIO **plain, msp_error_t *err)
{
    CMS_ContentInfo *env = parse(p, len);
    int ret = MSP_OK;
    *plain = NULL;
    if (env == NULL) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "not a DER CMS ContentInfo");
    }
    const ASN1_OBJECT *outer = CMS_get0_type(env);
    if (!type_is(outer, NID_id_smime_ct_authEnvelopedData) && !type_is(outer, NID_pkcs7_enveloped)) {
        ret = msp_error_set(err, MSP_ERR_INVALID, NULL, "content type is not AuthEnvelopedData or EnvelopedData");
    } else if (!type_is(CMS_get0_eContentType(env), NID_pkcs7_signed)) {
        ret = msp_error_set(err, MSP_ERR_INVALID, NULL, "the envelope does not hold SignedData");
    } else if (!addressed_to(env, cert)) {
        ret = msp_error_set(err, MSP_ERR_NOT_FOUND, NULL, "not encrypted to our certificate (no RecipientInfo for it)");
    } else if ((*plain = BIO_new(BIO_s_mem())) == NULL) {
        ret = msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "no memory");
    } else if (CMS_decrypt(env, key, cert, NULL, *plain, CMS_BINARY) != 1) {
        ret = fail(err, MSP_ALERT_BAD_RECORD_MAC, "the envelope does not decrypt or authenticate (tampered?)");
    }
    CMS_ContentInfo_free(env);
    if (ret != MSP_OK) {
        BIO_free(*plain);
        *plain = NULL;
    }
    return ret;
}

/* Trust anchors as they are (a pinned key manager certificate needs no issuer), any purpose, at now. */
static X509_STORE *trust_store(X509 *const *trusted, size_t n, int64_t now)
{
    X509_STORE *st = X509_STORE_new();
    int ok = st != NULL && X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
             X509_STORE_set_purpose(st, X509_PURPOSE_ANY) == 1 && X509_STORE_set_trust(st, X509_TRUST_COMPAT) == 1;
    if (ok) {
        X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st), (time_t)now);
    }
    for (size_t i = 0; ok && i < n; i++) {
        ok = trusted[i] != NULL && X509_STORE_add_cert(st, trusted[i]) == 1;
    }
    if (!ok) {
        X509_STORE_free(st);
        st = NULL;
    }
    return st;
}

/* The signed package verified: signature first (a distinct failure), then the signer's certificate. */
static int verify_signed(BIO *plain, X509 *const *trusted, size_t n, int64_t now, BIO *content, msp_error_t *err)
{
    char *p = NULL;
    long len = BIO_get_mem_data(plain, &p);
    CMS_ContentInfo *sd = len > 0 ? parse((const uint8_t *)p, (size_t)len) : NULL;
    X509_STORE *st = trust_store(trusted, n, now);
    ASN1_OCTET_STRING **body = sd != NULL ? CMS_get0_content(sd) : NULL;
    ASN1_OBJECT *akp = OBJ_txt2obj(MSP_ETS_KP_OID_AKEYPACKAGE, 1);
    int ret = MSP_OK;
    if (st == NULL || akp == NULL) {
        ret = msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "cannot build the trust store");
    } else if (sd == NULL) {
        ret = msp_error_set(err, MSP_ERR_SYNTAX, NULL, "the envelope's content is not a DER CMS ContentInfo");
    } else if (!type_is(CMS_get0_type(sd), NID_pkcs7_signed)) {
        ret = msp_error_set(err, MSP_ERR_INVALID, NULL, "the envelope's content is not SignedData");
    } else if (OBJ_cmp(CMS_get0_eContentType(sd), akp) != 0) {
        ret = msp_error_set(err, MSP_ERR_INVALID, NULL, "the signed content is not id-ct-KP-aKeyPackage");
    } else if (body == NULL || *body == NULL) {
        ret = msp_error_set(err, MSP_ERR_INVALID, NULL, "the signed package is detached (no eContent)");
    } else if (CMS_verify(sd, NULL, st, NULL, NULL, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
        ret = fail(err, MSP_ALERT_DECRYPT_ERROR, "the key package's signature does not verify");
    } else if (CMS_verify(sd, NULL, st, NULL, content, CMS_BINARY) != 1) {
        ret = fail(err, MSP_ALERT_BAD_CERTIFICATE, "the key package's signer is not trusted");
    }
    ASN1_OBJECT_free(akp);
    X509_STORE_free(st);
    CMS_ContentInfo_free(sd);
    return ret;
}

int msp_ets_keypkg_cms_unwrap(const uint8_t *cms, size_t len, X509 *cert, EVP_PKEY *key, X509 *const *trusted,
                              size_t n_trusted, int64_t now, msp_buf_t *out, msp_error_t *err)
{
    if (cms == NULL || cert == NULL || key == NULL || trusted == NULL || n_trusted == 0 || out == NULL || now < 0) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "input, certificate, key, trusted signers and out needed");
    }
    if (len > MSP_ETS_KP_MAX_CMS || n_trusted > MSP_ETS_KP_MAX_TRUSTED) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "at most %u bytes and %d trusted signers", MSP_ETS_KP_MAX_CMS,
                             MSP_ETS_KP_MAX_TRUSTED);
    }
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "the key is not the recipient certificate's");
    }
    BIO *plain = NULL, *content = NULL;
    int ret = open_envelope(cms, len, cert, key, &plain, err);
    if (ret == MSP_OK && (content = BIO_new(BIO_s_mem())) == NULL) {
        ret = msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "no memory");
    }
    if (ret == MSP_OK) {
        ret = verify_signed(plain, trusted, n_trusted, now, content, err);
    }
    if (ret == MSP_OK) {
        char *p = NULL;
        long n = BIO_get_mem_data(content, &p);
        if (n <= 0 || (size_t)n > MSP_ETS_KP_MAX_SIZE) {
            ret = msp_error_set(err, MSP_ERR_LIMIT, NULL, "the signed package holds 1..%u bytes", MSP_ETS_KP_MAX_SIZE);
        } else if (msp_buf_put(out, p, (size_t)n) != MSP_OK) {
            ret = msp_error_set(err, MSP_ERR_LIMIT, NULL, "the key package does not fit the output");
        }
    }
    BIO_free(plain);
    BIO_free(content);
    ERR_clear_error();
    return ret;
}
