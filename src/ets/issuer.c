/*
 * The one ETS server certificate issuer (include/msp/ets_cert.h): used by
 * `msp ets cert` and by the key manager, so both make the same extensions.
 */
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "msp/ets_cert.h"

#define MAX_SUBJECT 1024
#define MAX_SAN_TEXT 4096

int msp_ets_cert_is_own_key(EVP_PKEY *key, const uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    uint8_t share[133], own[MSP_ETS_FINGERPRINT_LEN];
    size_t n = 0;
    /* only an X25519 or P-256 subject key can have the fingerprint of a static key at all */
    return key != NULL && msp_ets_key_share(key, share, sizeof(share), &n) == MSP_OK &&
           msp_ets_fingerprint(share, n, own) == MSP_OK && memcmp(own, fp, sizeof(own)) == 0;
}

int msp_ets_cert_scheme_ok(EVP_PKEY *issuer_key, uint16_t scheme)
{
    char group[32];
    if (issuer_key == NULL) {
        return 0;
    }
    if (EVP_PKEY_is_a(issuer_key, "RSA")) {
        return scheme == 0x0804 || scheme == 0x0401;
    }
    if (EVP_PKEY_is_a(issuer_key, "ED25519")) {
        return scheme == 0x0807;
    }
    return scheme == 0x0403 && EVP_PKEY_is_a(issuer_key, "EC") &&
           EVP_PKEY_get_utf8_string_param(issuer_key, "group", group, sizeof(group), NULL) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

/* "/CN=a/O=b", as openssl req -subj takes it. */
static X509_NAME *parse_subject(const char *s)
{
    char buf[MAX_SUBJECT];
    if (s == NULL || s[0] != '/' || strlen(s) >= sizeof(buf)) {
        return NULL;
    }
    X509_NAME *name = X509_NAME_new();
    strcpy(buf, s + 1);
    for (char *save = NULL, *part = strtok_r(buf, "/", &save); name != NULL && part != NULL;
         part = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(part, '=');
        if (eq == NULL || eq == part || eq[1] == '\0') {
            X509_NAME_free(name);
            return NULL;
        }
        *eq = '\0';
        if (X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0) != 1) {
            X509_NAME_free(name);
            return NULL;
        }
    }
    return name;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static int set_serial(X509 *x)
{
    uint8_t raw[16];
    BIGNUM *bn = NULL;
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return 0;
    }
    raw[0] &= 0x7f; /* positive, as RFC 5280 4.1.2.2 wants */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static int set_validity(X509 *x, int64_t not_before, int64_t not_after)
{
    return ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) != NULL &&
           ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) != NULL;
}

static int add_dns(X509 *x, X509 *issuer, const char *const *dns, size_t n)
{
    char san[MAX_SAN_TEXT] = "";
    size_t used = 0;
    if (n == 0) {
        return 1;
    }
    for (size_t k = 0; k < n; k++) {
        /* a comma would start another entry of the openssl.cnf list */
        if (dns[k] == NULL || strchr(dns[k], ',') != NULL) {
            return 0;
        }
        int w = snprintf(san + used, sizeof(san) - used, "%sDNS:%s", k > 0 ? "," : "", dns[k]);
        if (w < 0 || (size_t)w >= sizeof(san) - used) {
            return 0;
        }
        used += (size_t)w;
    }
    return add_ext(x, issuer, NID_subject_alt_name, san);
}

/* A new certificate: subject, key and the fixed extensions of ets_cert.h; issuer NULL when self-signed. */
static int build_new(const msp_ets_cert_cfg_t *cfg, X509 *x, msp_error_t *err)
{
    X509 *signer = cfg->issuer_cert != NULL ? cfg->issuer_cert : x;
    X509_NAME *name = parse_subject(cfg->subject);
    if (name == NULL) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                             "subject: the form /CN=NAME[/O=ORG...] with names OpenSSL "
                             "knows");
    }
    int ok = X509_set_version(x, 2) == 1 && X509_set_subject_name(x, name) == 1 &&
             X509_set_issuer_name(x, cfg->issuer_cert != NULL ? X509_get_subject_name(cfg->issuer_cert) : name) == 1 &&
             X509_set_pubkey(x, cfg->subject_key) == 1 && set_validity(x, cfg->not_before, cfg->not_after);
    X509_NAME_free(name);
    ok = ok && add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(x, signer, NID_key_usage, "critical,digitalSignature") &&
         add_ext(x, signer, NID_ext_key_usage, "serverAuth") &&
         add_ext(x, signer, NID_subject_key_identifier, "hash") &&
         (cfg->issuer_cert == NULL || add_ext(x, signer, NID_authority_key_identifier, "keyid:always"));
    if (!ok) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "cannot build the certificate");
    }
    if (!add_dns(x, signer, cfg->dns, cfg->n_dns)) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "a DNS name OpenSSL refuses");
    }
    return MSP_OK;
}

/* The issuer's keyid as authorityKeyIdentifier, where the old one stood (or last). */
static int replace_aki(X509 *x, X509 *issuer)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    int at = X509_get_ext_by_NID(x, NID_authority_key_identifier, -1);
    if (ext != NULL && at >= 0) {
        X509_EXTENSION_free(X509_delete_ext(x, at));
    }
    int ok = ext != NULL && X509_add_ext(x, ext, at) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A copy of base for a new issuer: new serial and issuer name, its own keyid, the old visibility information gone. */
static int build_reissue(const msp_ets_cert_cfg_t *cfg, X509 *x, msp_error_t *err)
{
    size_t removed = 0;
    int ok = X509_set_issuer_name(x, X509_get_subject_name(cfg->issuer_cert)) == 1 &&
             replace_aki(x, cfg->issuer_cert) &&
             (cfg->not_after == 0 || set_validity(x, cfg->not_before, cfg->not_after)) &&
             msp_ets_cert_clear(x, &removed) == MSP_OK;
    if (!ok) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "cannot re-issue this certificate");
    }
    return MSP_OK;
}

static int add_visibility(const msp_ets_cert_cfg_t *cfg, X509 *x, msp_error_t *err)
{
    EVP_PKEY *own = X509_get0_pubkey(x);
    size_t access_len = strlen(cfg->access);
    for (size_t k = 0; k < cfg->n_fingerprints; k++) {
        if (msp_ets_cert_is_own_key(own, cfg->fingerprints[k])) {
            return msp_error_set(err, MSP_ERR_INVALID, NULL,
                                 "static key %zu is the certificate's own key (ETS-VI-1 wants them different)", k + 1);
        }
        if (msp_ets_cert_add(x, cfg->fingerprints[k], cfg->access, access_len) != MSP_OK) {
            return msp_error_set(err, MSP_ERR_INVALID, NULL, "access: not valid UTF-8 or longer than %d bytes",
                                 MSP_ETS_MAX_ACCESS);
        }
    }
    return MSP_OK;
}

static int sign(X509 *x, EVP_PKEY *key, uint16_t scheme)
{
    if (scheme != 0x0804) {
        /* Ed25519/Ed448 sign without a separate digest; everything else with SHA-256 */
        int pure = EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448");
        return X509_sign(x, key, pure ? NULL : EVP_sha256()) > 0;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md != NULL && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 && X509_sign_ctx(x, md) > 0;
    EVP_MD_CTX_free(md);
    return ok;
}

static int check_cfg(const msp_ets_cert_cfg_t *cfg, msp_error_t *err)
{
    if (cfg == NULL || cfg->issuer_key == NULL || cfg->access == NULL ||
        (cfg->base == NULL && (cfg->subject_key == NULL || cfg->subject == NULL)) ||
        (cfg->base != NULL && cfg->issuer_cert == NULL) || (cfg->n_dns > 0 && cfg->dns == NULL) ||
        (cfg->n_fingerprints > 0 && cfg->fingerprints == NULL)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                             "a subject key and subject (or a base certificate), an "
                             "issuer key and an access text are required");
    }
    if (cfg->n_fingerprints == 0 || cfg->n_fingerprints > MSP_ETS_MAX_VI || cfg->n_dns > MSP_ETS_CERT_MAX_DNS) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "1..%d static keys and at most %d DNS names", MSP_ETS_MAX_VI,
                             MSP_ETS_CERT_MAX_DNS);
    }
    if ((cfg->base == NULL || cfg->not_after != 0) && cfg->not_after <= cfg->not_before) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "not_after must lie after not_before");
    }
    EVP_PKEY *signer_of = cfg->issuer_cert != NULL ? X509_get0_pubkey(cfg->issuer_cert) : cfg->subject_key;
    if (signer_of == NULL || EVP_PKEY_eq(signer_of, cfg->issuer_key) != 1) {
        ERR_clear_error();
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "the issuer key is not the key of the issuer certificate");
    }
    if (cfg->scheme != 0 && !msp_ets_cert_scheme_ok(cfg->issuer_key, cfg->scheme)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "the issuer key cannot sign with scheme 0x%04x", cfg->scheme);
    }
    return MSP_OK;
}

int msp_ets_cert_issue(const msp_ets_cert_cfg_t *cfg, X509 **out, msp_error_t *err)
{
    *out = NULL;
    int ret = check_cfg(cfg, err);
    if (ret != MSP_OK) {
        return ret;
    }
    X509 *x = cfg->base != NULL ? X509_dup(cfg->base) : X509_new();
    if (x == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "no memory for a certificate");
    }
    if (!set_serial(x)) {
        ret = msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "cannot draw a serial number");
    }
    if (ret == MSP_OK) {
        ret = cfg->base != NULL ? build_reissue(cfg, x, err) : build_new(cfg, x, err);
    }
    if (ret == MSP_OK) {
        ret = add_visibility(cfg, x, err);
    }
    if (ret == MSP_OK && !sign(x, cfg->issuer_key, cfg->scheme)) {
        ret = msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "signing failed: %s",
                            ERR_reason_error_string(ERR_peek_error()) ? ERR_reason_error_string(ERR_peek_error())
                                                                      : "unknown");
    }
    ERR_clear_error();
    if (ret != MSP_OK) {
        X509_free(x);
        return ret;
    }
    *out = x;
    return MSP_OK;
}
