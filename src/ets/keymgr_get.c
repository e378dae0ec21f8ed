/*
 * The key manager's answers (include/msp/ets_keymgr.h; ets.md 3.4
 * ETS-KT-3): GET ...keys?fingerprints=HEX,... or ?groups=...[&certs=...]
 * [&context=...] into a key package, and the package of current keys to
 * push (ETS-KT-2).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "keymgr.h"
#include "msp/ets_cert.h"

/* The query's parameters, percent-decoded; NULL when absent. */
typedef struct query {
    const char *fingerprints, *groups, *certs, *context;
    char store[4][MSP_ETS_KEYMGR_MAX_QUERY];
} query_t;

static int unhex_char(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The decoded value of parameter name into out, NULL when absent; -1 in *bad when malformed. */
static const char *param(const char *q, const char *name, char *out, size_t cap, int *bad)
{
    size_t nl = strlen(name);
    for (const char *p = q; p != NULL && *p != '\0'; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != '=') {
            continue;
        }
        size_t n = 0;
        for (const char *v = p + nl + 1; *v != '\0' && *v != '&'; v++) {
            int c = (unsigned char)*v;
            if (c == '%') {
                int h = unhex_char(v[1]), l = h >= 0 ? unhex_char(v[2]) : -1;
                if (l < 0) {
                    *bad = 1;
                    return NULL;
                }
                c = h * 16 + l;
                v += 2;
            } else if (c == '+') {
                c = ' ';
            }
            if (n + 1 >= cap || c == 0) {
                *bad = 1;
                return NULL;
            }
            out[n++] = (char)c;
        }
        out[n] = '\0';
        return out;
    }
    return NULL;
}

static int parse_query(const char *q, query_t *out)
{
    int bad = strlen(q) >= MSP_ETS_KEYMGR_MAX_QUERY;
    out->fingerprints = param(q, "fingerprints", out->store[0], sizeof(out->store[0]), &bad);
    out->groups = param(q, "groups", out->store[1], sizeof(out->store[1]), &bad);
    out->certs = param(q, "certs", out->store[2], sizeof(out->store[2]), &bad);
    out->context = param(q, "context", out->store[3], sizeof(out->store[3]), &bad);
    return bad ? MSP_ERR_SYNTAX : MSP_OK;
}

static int parse_u16(const char *s, size_t n, uint16_t *v)
{
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
    }
    if (n == 0 || n > 4) {
        return -1;
    }
    unsigned x = 0;
    for (size_t i = 0; i < n; i++) {
        int d = unhex_char(s[i]);
        if (d < 0) {
            return -1;
        }
        x = x * 16 + (unsigned)d;
    }
    *v = (uint16_t)x;
    return 0;
}

/* The next comma-separated item after p, or NULL. */
static const char *next_item(const char *p)
{
    const char *c = strchr(p, ',');
    return c != NULL ? c + 1 : NULL;
}

int keymgr_encode(const km_key_t *const *keys, size_t n, const msp_ets_kp_signer_t *signers, size_t n_signers,
                  msp_buf_t *out, msp_error_t *err)
{
    msp_ets_kp_static_t s[MSP_ETS_KP_MAX_ELEMENTS];
    n = n < MSP_ETS_KP_MAX_ELEMENTS ? n : MSP_ETS_KP_MAX_ELEMENTS;
    for (size_t i = 0; i < n; i++) {
        s[i].key = keys[i]->key;
        s[i].not_before = keys[i]->not_before;
        s[i].not_after = keys[i]->not_after;
        s[i].has_not_after = 1;
    }
    msp_error_t why;
    msp_error_clear(&why);
    if (msp_ets_keypkg_encode(s, n, signers, n_signers, out, &why) != MSP_OK) {
        /* a package of our own keys must encode: a failure is ours (500), not the client's */
        return msp_error_set(err, MSP_ALERT_INTERNAL_ERROR, NULL, "cannot encode the package: %s", why.detail);
    }
    return MSP_OK;
}

static int by_fingerprints(msp_ets_keymgr_t *km, const char *list, int64_t now, msp_buf_t *out, msp_error_t *err)
{
    const km_key_t *found[MSP_ETS_KP_MAX_ELEMENTS];
    size_t n = 0;
    if (*list == '\0') {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                             "an empty fingerprint list (behaviour out of scope of TS 103 523-3)");
    }
    for (const char *p = list; p != NULL; p = next_item(p)) {
        uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
        int ok = strcspn(p, ",") == 2 * MSP_ETS_FINGERPRINT_LEN;
        for (size_t i = 0; ok && i < MSP_ETS_FINGERPRINT_LEN; i++) {
            int h = unhex_char(p[2 * i]), l = unhex_char(p[2 * i + 1]);
            ok = h >= 0 && l >= 0;
            fp[i] = (uint8_t)(h * 16 + l);
        }
        if (!ok) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "a fingerprint is 20 hex digits");
        }
        /* every key on record with that fingerprint, all of them on a collision (ETS-KT-3); retired ones are gone */
        for (size_t i = 0; i < km->n_keys && n < MSP_ETS_KP_MAX_ELEMENTS; i++) {
            if (memcmp(km->keys[i].fp, fp, sizeof(fp)) == 0 && keymgr_findable(km, &km->keys[i], now)) {
                found[n++] = &km->keys[i];
            }
        }
    }
    if (n == 0) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, NULL, "no key on record with these fingerprints");
    }
    return keymgr_encode(found, n, NULL, 0, out, err);
}

static int dns_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 253 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n &&
           s[0] != '.' && s[0] != '-';
}

/* One certs= pair: a fresh subject key and its certificate, bound to every returned key (ETS-VI-5). */
static int issue_one(msp_ets_keymgr_t *km, uint16_t is, uint16_t ss, const km_key_t *const *keys, size_t n,
                     const char *context, msp_ets_kp_signer_t *out, msp_error_t *err)
{
    uint8_t fps[2][MSP_ETS_FINGERPRINT_LEN];
    char subject[300];
    const char *dns[1] = {context};
    msp_ets_cert_cfg_t c;
    memset(&c, 0, sizeof(c));
    /* the fingerprint and the validity period together make the binding: within all the keys' periods */
    c.not_after = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        memcpy(fps[i], keys[i]->fp, MSP_ETS_FINGERPRINT_LEN);
        c.not_before = keys[i]->not_before > c.not_before ? keys[i]->not_before : c.not_before;
        c.not_after = keys[i]->not_after < c.not_after ? keys[i]->not_after : c.not_after;
    }
    snprintf(subject, sizeof(subject), "/CN=%s", context != NULL ? context : "ets-server");
    c.subject = subject;
    c.dns = dns;
    c.n_dns = context != NULL;
    c.fingerprints = (const uint8_t(*)[MSP_ETS_FINGERPRINT_LEN])fps;
    c.n_fingerprints = n;
    c.access = km->access;
    c.issuer_cert = km->ca_cert;
    c.issuer_key = km->ca_key;
    c.scheme = is;
    c.subject_key = ss == 0x0403 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                 : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    int ret = c.subject_key != NULL ? msp_ets_cert_issue(&c, &out->cert, err) : MSP_ERR_NO_MEMORY;
    ERR_clear_error();
    if (ret != MSP_OK) {
        EVP_PKEY_free(c.subject_key);
        return msp_error_set(err, MSP_ALERT_INTERNAL_ERROR, NULL, "certs: cannot issue the certificate");
    }
    out->key = c.subject_key;
    return MSP_OK;
}

static int issue_all(msp_ets_keymgr_t *km, const char *certs, const km_key_t *const *keys, size_t n,
                     const char *context, msp_ets_kp_signer_t *signers, size_t *ns, msp_error_t *err)
{
    for (const char *p = certs; p != NULL; p = next_item(p)) {
        size_t len = strcspn(p, ","), colon = strcspn(p, ":");
        uint16_t is, ss;
        if (colon >= len || parse_u16(p, colon, &is) != 0 || parse_u16(p + colon + 1, len - colon - 1, &ss) != 0) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL,
                                 "certs: comma-separated ISSUER:SUBJECT SignatureScheme hex pairs expected "
                                 "(0x0403:0x0804)");
        }
        if (km->ca_key == NULL) {
            return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                                 "certs: this key manager issues no certificates (no --ca-cert/--ca-key)");
        }
        if (ss != 0x0403 && ss != 0x0804) {
            return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                                 "certs: subject scheme not supported (0x0403 ecdsa_secp256r1_sha256, 0x0804 "
                                 "rsa_pss_rsae_sha256)");
        }
        if (!msp_ets_cert_scheme_ok(km->ca_key, is)) {
            return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "certs: issuer scheme is not one the CA key signs with");
        }
        if (*ns == MSP_ETS_KEYMGR_MAX_CERTS) {
            return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "certs: too many pairs");
        }
        int ret = issue_one(km, is, ss, keys, n, context, &signers[*ns], err);
        if (ret != MSP_OK) {
            return ret;
        }
        (*ns)++;
    }
    return MSP_OK;
}

static int by_groups(msp_ets_keymgr_t *km, const query_t *q, int64_t now, msp_buf_t *out, msp_error_t *err)
{
    static const unsigned GROUPS[2] = {MSP_ETS_KEYMGR_X25519, MSP_ETS_KEYMGR_P256};
    const km_key_t *list[2];
    size_t n = 0;
    unsigned want = 0;
    for (const char *p = q->groups; p != NULL; p = next_item(p)) {
        uint16_t v;
        if (parse_u16(p, strcspn(p, ","), &v) != 0) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL,
                                 "groups: comma-separated NamedGroup hex values expected (0x001d,0x0017)");
        }
        want |= v == 0x001d ? MSP_ETS_KEYMGR_X25519 : v == 0x0017 ? MSP_ETS_KEYMGR_P256 : 0;
    }
    want &= km->groups;
    for (size_t g = 0; g < 2; g++) {
        if ((want & GROUPS[g]) && (list[n] = keymgr_current(km, GROUPS[g], now)) != NULL) {
            n++;
        }
    }
    if (want == 0) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, NULL,
                             "none of the requested groups is supported (x25519 0x001d, p256 0x0017)");
    }
    if (n == 0) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, NULL,
                             "the key of the requested groups has expired; the next rotation makes a new one");
    }
    if (q->context != NULL && !dns_ok(q->context)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL,
                             "context: this key manager takes a DNS name for the certificate subject");
    }
    msp_ets_kp_signer_t signers[MSP_ETS_KEYMGR_MAX_CERTS];
    size_t ns = 0;
    int ret = issue_all(km, q->certs, list, n, q->context, signers, &ns, err);
    if (ret == MSP_OK) {
        ret = keymgr_encode(list, n, signers, ns, out, err);
    }
    for (size_t i = 0; i < ns; i++) {
        EVP_PKEY_free(signers[i].key);
        X509_free(signers[i].cert);
    }
    return ret;
}

int msp_ets_keymgr_get(msp_ets_keymgr_t *km, const char *query, int64_t now, msp_buf_t *out, msp_error_t *err)
{
    query_t *q = malloc(sizeof(*q));
    if (q == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "no memory for the query");
    }
    int ret = parse_query(query != NULL ? query : "", q);
    if (ret != MSP_OK || (q->fingerprints != NULL && q->groups != NULL)) {
        ret = msp_error_set(err, MSP_ERR_SYNTAX, NULL, "malformed query, or both fingerprints and groups");
    } else if (q->fingerprints != NULL) {
        ret = by_fingerprints(km, q->fingerprints, now, out, err);
    } else if (q->groups != NULL && *q->groups != '\0') {
        ret = by_groups(km, q, now, out, err);
    } else {
        ret = msp_error_set(err, MSP_ERR_SYNTAX, NULL, "a fingerprints= or a non-empty groups= parameter is required");
    }
    free(q);
    return ret;
}

int msp_ets_keymgr_current(msp_ets_keymgr_t *km, int64_t now, msp_buf_t *out, msp_error_t *err)
{
    const km_key_t *list[2];
    size_t n = 0;
    if ((km->groups & MSP_ETS_KEYMGR_X25519) && (list[n] = keymgr_current(km, MSP_ETS_KEYMGR_X25519, now)) != NULL) {
        n++;
    }
    if ((km->groups & MSP_ETS_KEYMGR_P256) && (list[n] = keymgr_current(km, MSP_ETS_KEYMGR_P256, now)) != NULL) {
        n++;
    }
    if (n == 0) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, NULL, "no key is current");
    }
    return keymgr_encode(list, n, NULL, 0, out, err);
}

int msp_ets_keymgr_http_status(int code)
{
    switch (code) {
    case MSP_OK:
        return 200;
    case MSP_ERR_SYNTAX:
    case MSP_ERR_ARGUMENT:
    case MSP_ERR_INVALID:
        return 400;
    case MSP_ERR_NOT_FOUND:
        return 404;
    default:
        return 500;
    }
}

/* value, percent-encoded outside the characters the query syntax leaves alone */
static void put_value(msp_buf_t *out, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~,:", *p) != NULL) {
            msp_buf_put_u8(out, *p);
        } else {
            msp_buf_printf(out, "%%%02X", *p);
        }
    }
}

int msp_ets_keymgr_target(const char *fingerprints, unsigned groups, const char *certs, const char *context,
                          msp_buf_t *out, msp_error_t *err)
{
    if ((fingerprints == NULL) == (groups == 0) || (groups & ~(MSP_ETS_KEYMGR_X25519 | MSP_ETS_KEYMGR_P256)) != 0) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "exactly one of fingerprints and groups is required");
    }
    size_t start = out->len;
    msp_buf_puts(out, MSP_ETS_KEYMGR_KEYS_PATH "?");
    if (fingerprints != NULL) {
        msp_buf_puts(out, "fingerprints=");
        put_value(out, fingerprints);
    } else {
        msp_buf_puts(out, groups == (MSP_ETS_KEYMGR_X25519 | MSP_ETS_KEYMGR_P256) ? "groups=0x001d,0x0017"
                          : groups == MSP_ETS_KEYMGR_X25519                       ? "groups=0x001d"
                                                                                  : "groups=0x0017");
        const char *names[2] = {"&certs=", "&context="}, *values[2] = {certs, context};
        for (size_t i = 0; i < 2; i++) {
            if (values[i] != NULL) {
                msp_buf_puts(out, names[i]);
                put_value(out, values[i]);
            }
        }
    }
    size_t query = out->len - start - strlen(MSP_ETS_KEYMGR_KEYS_PATH "?");
    if (msp_buf_error(out) != MSP_OK || query >= MSP_ETS_KEYMGR_MAX_QUERY) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "the request parameters are over %d bytes",
                             MSP_ETS_KEYMGR_MAX_QUERY);
    }
    return MSP_OK;
}

int msp_ets_keymgr_newest(const msp_ets_kp_static_t *statics, size_t n, uint16_t group, int64_t now)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        const msp_ets_kp_static_t *s = &statics[i];
        int valid = s->not_before <= now && (!s->has_not_after || now < s->not_after);
        if (valid && msp_ets_kp_group_id(s->key) == group && (best < 0 || s->not_before >= statics[best].not_before)) {
            best = (int)i;
        }
    }
    return best;
}
