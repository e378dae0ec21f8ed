/*
 * msp ets keymgr serve|fetch: an ETS key manager and its consumer (ets.md 3.4,
 * 3.5: key packages over HTTPS, pull by fingerprints or groups, push, rotation).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "ets_cli.h"
#include "cmd_ets_keymgr.h"
#include "msp/ets.h"
#include "msp/ets_keypkg.h"

#define CMD "msp ets keymgr"
#define KEYS_PATH "/.well-known/enterprise-transport-security/keys"
#define PUSH_PATH "/enterprise-transport-security/keys"
#define MAX_KEYS 1024 /* keys on record in one store */
#define MAX_PUSH 8
#define MAX_CERTS 4 /* certs pairs in one request */
#define MAX_STORE_FILE 16384

static const char usage[] =
    "usage: msp ets keymgr serve --listen HOST:PORT --cert C --key K --ca CA --store DIR\n"
    "                            [--groups x25519,p256] [--rotate SECONDS] [--lifetime SECONDS]\n"
    "                            [--retention SECONDS] [--push https://HOST:PORT]...\n"
    "                            [--ca-cert CACERT --ca-key CAKEY --access TEXT] [--allow-subject PATTERN]\n"
    "       msp ets keymgr fetch (--url https://HOST:PORT | --listen HOST:PORT) --cert C --key K --ca CA\n"
    "                            [--fingerprints HEX,... | --groups x25519,p256 [--certs 0x0403:0x0403,...]\n"
    "                            [--context NAME]] --out-dir DIR [--watch SECONDS] [--allow-subject PATTERN]\n"
    "\n"
    "serve: an ETS key manager (TS 103 523-3 clause 4.3.5-4.3.8) over HTTPS with mutual TLS 1.3: any client\n"
    "certificate chaining to --ca is authorised (narrowed by --allow-subject, an fnmatch pattern on the RFC 2253\n"
    "subject). It makes a static key per group on start and every --rotate seconds (default 86400), valid for\n"
    "--lifetime seconds (default twice --rotate), kept in --store and findable by fingerprint until expiry plus\n"
    "--retention (default --lifetime). GET " KEYS_PATH "?fingerprints=HEX,... or ?groups=0x001d,0x0017\n"
    "[&certs=ISSUER:SUBJECT,...][&context=DNSNAME] returns an RFC 5958 key package (application/pkcs8);\n"
    "certificates (subject schemes 0x0403, 0x0804) are issued by --ca-cert/--ca-key with one visibility\n"
    "information per key. --push: after each rotation, PUT the current keys to URL" PUSH_PATH ".\n"
    "\n"
    "fetch: pulls keys (--url) or, with --listen, accepts pushed packages until SIGINT/SIGTERM. Writes\n"
    "DIR/GROUP-FINGERPRINT.pem (PKCS#8), DIR/GROUP.pem (the newest valid key of a groups fetch or push) and\n"
    "DIR/cert-SCHEME.pem + DIR/cert-SCHEME.key.pem; prints one line per key: GROUP FINGERPRINT NOT-BEFORE\n"
    "NOT-AFTER. --watch re-fetches every SECONDS.\n";

typedef struct key_entry {
    EVP_PKEY *key;
    const char *group; /* "x25519" or "p256" */
    int64_t not_before, not_after;
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
} key_entry_t;

typedef struct manager {
    const char *store;
    int groups[2]; /* x25519, p256 enabled */
    int64_t rotate, lifetime, retention, next_rotation;
    key_entry_t keys[MAX_KEYS];
    size_t n_keys;
    const char *push[MAX_PUSH];
    size_t n_push;
    SSL_CTX *client; /* for push */
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    const char *access;
} manager_t;

static int fingerprint_of(EVP_PKEY *key, uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    uint8_t ks[133];
    size_t n = 0;
    return msp_ets_key_share(key, ks, sizeof(ks), &n) == MSP_OK ? msp_ets_fingerprint(ks, n, fp) : MSP_ERR_ARGUMENT;
}

static void iso(char out[32], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int parse_seconds(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || x <= 0 || x > 100LL * 365 * 86400) {
        return -1;
    }
    *v = x;
    return 0;
}

/* "x25519,p256" (names or NamedGroup hex) into the two flags. */
static int parse_groups(const char *s, int groups[2])
{
    char copy[256];
    groups[0] = groups[1] = 0;
    if (strlen(s) >= sizeof(copy)) {
        return -1;
    }
    strcpy(copy, s);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "x25519") == 0 || strcasecmp(t, "0x001d") == 0) {
            groups[0] = 1;
        } else if (strcmp(t, "p256") == 0 || strcasecmp(t, "0x0017") == 0) {
            groups[1] = 1;
        } else {
            return -1;
        }
    }
    return groups[0] || groups[1] ? 0 : -1;
}

static int write_pem_key(const char *path, EVP_PKEY *key, const char *prefix)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    int ok = b != NULL && (prefix == NULL || BIO_puts(b, prefix) >= 0) &&
             PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1;
    long n = ok ? BIO_get_mem_data(b, &p) : 0;
    int ret = ok ? cli_write_file(CMD, path, p, (size_t)n, 0600) : CLI_FAIL;
    if (!ok) {
        cli_error(CMD, "%s: error: cannot encode the key", path);
    }
    BIO_free(b);
    return ret;
}

static int write_pem_cert(const char *path, X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    int ok = b != NULL && PEM_write_bio_X509(b, x) == 1;
    long n = ok ? BIO_get_mem_data(b, &p) : 0;
    int ret = ok ? cli_write_file(CMD, path, p, (size_t)n, 0644) : CLI_FAIL;
    BIO_free(b);
    return ret;
}

/* ---- the store: DIR/GROUP-FINGERPRINT.pem, a few "msp-ets-*: value" lines, then the PKCS#8 PEM key ---- */

static int store_save(const manager_t *m, const key_entry_t *e)
{
    char path[4096], fp[2 * MSP_ETS_FINGERPRINT_LEN + 1], prefix[256];
    msp_hex(fp, e->fp, sizeof(e->fp));
    snprintf(path, sizeof(path), "%s/%s-%s.pem", m->store, e->group, fp);
    snprintf(prefix, sizeof(prefix), "msp-ets-group: %s\nmsp-ets-not-before: %lld\nmsp-ets-not-after: %lld\n", e->group,
             (long long)e->not_before, (long long)e->not_after);
    return write_pem_key(path, e->key, prefix);
}

static void store_load_one(manager_t *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    char text[MAX_STORE_FILE + 1];
    size_t n = f != NULL ? fread(text, 1, MAX_STORE_FILE, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    text[n] = '\0';
    long long nb, na;
    const char *pb = strstr(text, "msp-ets-not-before: "), *pa = strstr(text, "msp-ets-not-after: ");
    BIO *b = BIO_new_mem_buf(text, (int)n);
    EVP_PKEY *key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    key_entry_t *e = &m->keys[m->n_keys];
    if (key == NULL || pb == NULL || pa == NULL || sscanf(pb, "msp-ets-not-before: %lld", &nb) != 1 ||
        sscanf(pa, "msp-ets-not-after: %lld", &na) != 1 || msp_ets_kp_group_name(key) == NULL ||
        fingerprint_of(key, e->fp) != MSP_OK || m->n_keys == MAX_KEYS) {
        fprintf(stderr, CMD ": %s: skipped, not a store file\n", path);
        EVP_PKEY_free(key);
        return;
    }
    e->key = key;
    e->group = msp_ets_kp_group_name(key);
    e->not_before = nb;
    e->not_after = na;
    m->n_keys++;
}

static int store_load(manager_t *m)
{
    DIR *d = opendir(m->store);
    if (d == NULL) {
        cli_error(CMD, "%s: error: %s", m->store, strerror(errno));
        return CLI_USAGE;
    }
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".pem") == 0 && strstr(de->d_name, ".tmp.") == NULL) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", m->store, de->d_name);
            store_load_one(m, path);
        }
    }
    closedir(d);
    return CLI_OK;
}

/* Drops keys past their expiry plus the retention time, file and all. */
static void store_purge(manager_t *m, int64_t now)
{
    size_t j = 0;
    for (size_t i = 0; i < m->n_keys; i++) {
        key_entry_t *e = &m->keys[i];
        if (e->not_after + m->retention < now) {
            char path[4096], fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
            msp_hex(fp, e->fp, sizeof(e->fp));
            snprintf(path, sizeof(path), "%s/%s-%s.pem", m->store, e->group, fp);
            unlink(path);
            fprintf(stderr, CMD ": retired key %s %s\n", e->group, fp);
            EVP_PKEY_free(e->key);
            continue;
        }
        m->keys[j++] = *e;
    }
    m->n_keys = j;
}

/* The newest key of a group that is valid now. */
static const key_entry_t *current(const manager_t *m, const char *group, int64_t now)
{
    const key_entry_t *best = NULL;
    for (size_t i = 0; i < m->n_keys; i++) {
        const key_entry_t *e = &m->keys[i];
        if (strcmp(e->group, group) == 0 && e->not_before <= now && now < e->not_after &&
            (best == NULL || e->not_before >= best->not_before)) {
            best = e;
        }
    }
    return best;
}

static const char *const GROUP_NAMES[2] = {"x25519", "p256"};

static int new_key(manager_t *m, int g, int64_t now)
{
    if (m->n_keys == MAX_KEYS) {
        fprintf(stderr, CMD ": error: the store holds %d keys already\n", MAX_KEYS);
        return -1;
    }
    key_entry_t *e = &m->keys[m->n_keys];
    e->key = g == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519") : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (e->key == NULL || fingerprint_of(e->key, e->fp) != MSP_OK) {
        EVP_PKEY_free(e->key);
        return -1;
    }
    e->group = GROUP_NAMES[g];
    e->not_before = now;
    e->not_after = now + m->lifetime;
    if (store_save(m, e) != CLI_OK) {
        EVP_PKEY_free(e->key);
        return -1;
    }
    m->n_keys++;
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1], a[32], b[32];
    msp_hex(fp, e->fp, sizeof(e->fp));
    iso(a, e->not_before);
    iso(b, e->not_after);
    fprintf(stderr, CMD ": new key %s %s %s %s\n", e->group, fp, a, b);
    return 0;
}

static int encode_entries(const key_entry_t *const *list, size_t n, const msp_ets_kp_signer_t *g, size_t ng,
                          msp_buf_t *out, msp_error_t *err)
{
    msp_ets_kp_static_t s[MSP_ETS_KP_MAX_ELEMENTS];
    if (n > MSP_ETS_KP_MAX_ELEMENTS) {
        n = MSP_ETS_KP_MAX_ELEMENTS;
    }
    for (size_t i = 0; i < n; i++) {
        s[i].key = list[i]->key;
        s[i].not_before = list[i]->not_before;
        s[i].not_after = list[i]->not_after;
        s[i].has_not_after = 1;
    }
    return msp_ets_keypkg_encode(s, n, g, ng, out, err);
}

/* ETS-KT-2: the manager is the HTTPS client and PUTs the current keys to every consumer. */
static void push_all(manager_t *m, int64_t now)
{
    const key_entry_t *list[2];
    size_t n = 0;
    for (int g = 0; g < 2; g++) {
        if (m->groups[g] && (list[n] = current(m, GROUP_NAMES[g], now)) != NULL) {
            n++;
        }
    }
    msp_buf_t pkg, resp;
    msp_error_t err;
    msp_buf_init(&pkg, MSP_ETS_KP_MAX_SIZE);
    if (n == 0 || encode_entries(list, n, NULL, 0, &pkg, &err) != MSP_OK) {
        msp_buf_free(&pkg);
        return;
    }
    for (size_t i = 0; i < m->n_push; i++) {
        int status = 0;
        char why[512];
        msp_buf_init(&resp, KM_MAX_BODY);
        if (km_request(m->client, m->push[i], "PUT", PUSH_PATH, pkg.base, pkg.len, &status, &resp, why, sizeof(why)) !=
            0) {
            fprintf(stderr, CMD ": push to %s failed: %s\n", m->push[i], why);
        } else {
            fprintf(stderr, CMD ": push to %s: %d\n", m->push[i], status);
        }
        msp_buf_free(&resp);
    }
    msp_buf_free(&pkg);
}

static int rotate(manager_t *m, int64_t now)
{
    for (int g = 0; g < 2; g++) {
        if (m->groups[g] && new_key(m, g, now) != 0) {
            return -1;
        }
    }
    store_purge(m, now);
    if (m->n_push > 0) {
        push_all(m, now);
    }
    return 0;
}

static int tick(void *user)
{
    manager_t *m = user;
    int64_t now = (int64_t)time(NULL);
    if (now >= m->next_rotation) {
        rotate(m, now);
        m->next_rotation = now + m->rotate;
    }
    return (int)((m->next_rotation - now) * 1000);
}

/* ---- request handling ---- */

static int unhex_char(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The percent-decoded value of query parameter name, or NULL when absent (or malformed: *bad). */
static const char *query_param(const char *query, const char *name, char *out, size_t cap, int *bad)
{
    size_t nl = strlen(name);
    for (const char *p = query; p != NULL && *p != '\0'; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != '=') {
            continue;
        }
        const char *v = p + nl + 1;
        size_t n = 0;
        for (; *v != '\0' && *v != '&'; v++) {
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

static void answer_package(km_response_t *resp, const key_entry_t *const *list, size_t n, const msp_ets_kp_signer_t *g,
                           size_t ng)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (encode_entries(list, n, g, ng, &resp->body, &err) != MSP_OK) {
        resp->body.len = 0;
        resp->body.err = 0;
        resp->status = 500;
        msp_buf_printf(&resp->body, "cannot encode the package: %s\n", err.detail);
        return;
    }
    resp->status = 200;
    resp->content_type = "application/pkcs8";
}

static void fail(km_response_t *resp, int status, const char *text)
{
    resp->status = status;
    msp_buf_printf(&resp->body, "%s\n", text);
}

static void by_fingerprints(manager_t *m, const char *list, km_response_t *resp)
{
    const key_entry_t *found[MSP_ETS_KP_MAX_ELEMENTS];
    size_t n = 0;
    if (*list == '\0') {
        fail(resp, 400, "an empty fingerprint list (behaviour out of scope of TS 103 523-3)");
        return;
    }
    for (const char *p = list; p != NULL; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        size_t len = strcspn(p, ",");
        uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
        if (len != 2 * MSP_ETS_FINGERPRINT_LEN) {
            fail(resp, 400, "a fingerprint is 20 hex digits");
            return;
        }
        for (size_t i = 0; i < MSP_ETS_FINGERPRINT_LEN; i++) {
            int h = unhex_char(p[2 * i]), l = unhex_char(p[2 * i + 1]);
            if (h < 0 || l < 0) {
                fail(resp, 400, "a fingerprint is 20 hex digits");
                return;
            }
            fp[i] = (uint8_t)(h * 16 + l);
        }
        /* every key on record with that fingerprint, all of them on a collision (ETS-KT-3) */
        for (size_t i = 0; i < m->n_keys && n < MSP_ETS_KP_MAX_ELEMENTS; i++) {
            if (memcmp(m->keys[i].fp, fp, sizeof(fp)) == 0) {
                found[n++] = &m->keys[i];
            }
        }
    }
    if (n == 0) {
        fail(resp, 404, "no key on record with these fingerprints");
        return;
    }
    answer_package(resp, found, n, NULL, 0);
}

/* The SignatureSchemes a CA key can sign certificates with. */
static int ca_can(EVP_PKEY *ca, uint16_t scheme)
{
    if (EVP_PKEY_is_a(ca, "RSA")) {
        return scheme == 0x0804 || scheme == 0x0401;
    }
    if (EVP_PKEY_is_a(ca, "ED25519")) {
        return scheme == 0x0807;
    }
    char name[32];
    return scheme == 0x0403 && EVP_PKEY_is_a(ca, "EC") &&
           EVP_PKEY_get_utf8_string_param(ca, "group", name, sizeof(name), NULL) == 1 &&
           strcmp(name, "prime256v1") == 0;
}

static int sign_cert(X509 *x, EVP_PKEY *ca, uint16_t scheme)
{
    if (scheme != 0x0804) {
        return X509_sign(x, ca, scheme == 0x0807 ? NULL : EVP_sha256()) > 0;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md != NULL && EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, ca) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 && X509_sign_ctx(x, md) > 0;
    EVP_MD_CTX_free(md);
    return ok;
}

/*
 * A server certificate for a new subject key, bound to every returned static key by one VisibilityInformation
 * each (ETS-VI-5); its validity lies within all of theirs, since the fingerprint and the validity period together
 * make the binding.
 */
static X509 *issue(manager_t *m, EVP_PKEY *subject, const key_entry_t *const *keys, size_t n, uint16_t issuer_scheme,
                   const char *dns)
{
    int64_t nb = 0, na = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        nb = keys[i]->not_before > nb ? keys[i]->not_before : nb;
        na = keys[i]->not_after < na ? keys[i]->not_after : na;
    }
    uint8_t serial[16];
    char san[300];
    X509 *x = X509_new();
    BIGNUM *bn = NULL;
    int ok = x != NULL && RAND_bytes(serial, sizeof(serial)) == 1 && X509_set_version(x, 2) == 1;
    serial[0] &= 0x7f;
    ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                    (const unsigned char *)(dns ? dns : "ets-server"), -1, -1, 0) == 1 &&
         X509_set_issuer_name(x, X509_get_subject_name(m->ca_cert)) == 1 &&
         ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) != NULL &&
         ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) != NULL && X509_set_pubkey(x, subject) == 1 &&
         ets_cli_add_ext(x, m->ca_cert, NID_basic_constraints, "critical,CA:FALSE") &&
         ets_cli_add_ext(x, m->ca_cert, NID_key_usage, "critical,digitalSignature") &&
         ets_cli_add_ext(x, m->ca_cert, NID_ext_key_usage, "serverAuth") &&
         ets_cli_add_ext(x, m->ca_cert, NID_subject_key_identifier, "hash") &&
         ets_cli_add_ext(x, m->ca_cert, NID_authority_key_identifier, "keyid:always");
    if (ok && dns != NULL) {
        snprintf(san, sizeof(san), "DNS:%s", dns);
        ok = ets_cli_add_ext(x, m->ca_cert, NID_subject_alt_name, san);
    }
    for (size_t i = 0; ok && i < n; i++) {
        ok = msp_ets_cert_add(x, keys[i]->fp, m->access, strlen(m->access)) == MSP_OK;
    }
    ok = ok && sign_cert(x, m->ca_key, issuer_scheme);
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int dns_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 253 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n &&
           s[0] != '.' && s[0] != '-';
}

static void by_groups(manager_t *m, const char *groups, const char *certs, const char *context, km_response_t *resp)
{
    const key_entry_t *list[2];
    size_t n = 0;
    int64_t now = (int64_t)time(NULL);
    int want[2] = {0, 0};
    for (const char *p = groups; p != NULL; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        uint16_t v;
        if (parse_u16(p, strcspn(p, ","), &v) != 0) {
            fail(resp, 400, "groups: comma-separated NamedGroup hex values expected (0x001d,0x0017)");
            return;
        }
        want[0] |= v == 0x001d;
        want[1] |= v == 0x0017;
    }
    for (int g = 0; g < 2; g++) {
        if (want[g] && m->groups[g] && (list[n] = current(m, GROUP_NAMES[g], now)) != NULL) {
            n++;
        }
    }
    if (n == 0) {
        fail(resp, 404, "none of the requested groups is supported (x25519 0x001d, p256 0x0017)");
        return;
    }
    if (context != NULL && !dns_ok(context)) {
        fail(resp, 400, "context: this key manager takes a DNS name for the certificate subject");
        return;
    }
    msp_ets_kp_signer_t signers[MAX_CERTS];
    size_t ns = 0;
    const char *problem = NULL;
    for (const char *p = certs; problem == NULL && p != NULL; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        size_t len = strcspn(p, ","), colon = strcspn(p, ":");
        uint16_t is, ss;
        if (colon >= len || parse_u16(p, colon, &is) != 0 || parse_u16(p + colon + 1, len - colon - 1, &ss) != 0) {
            problem = "certs: comma-separated ISSUER:SUBJECT SignatureScheme hex pairs expected (0x0403:0x0804)";
        } else if (m->ca_key == NULL) {
            problem = "certs: this key manager issues no certificates (no --ca-cert/--ca-key)";
        } else if (ss != 0x0403 && ss != 0x0804) {
            problem = "certs: subject scheme not supported (0x0403 ecdsa_secp256r1_sha256, 0x0804 rsa_pss_rsae_sha256)";
        } else if (!ca_can(m->ca_key, is)) {
            problem = "certs: issuer scheme is not one the CA key signs with";
        } else if (ns == MAX_CERTS) {
            problem = "certs: too many pairs";
        } else {
            EVP_PKEY *k = ss == 0x0403 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                       : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
            X509 *x = k != NULL ? issue(m, k, list, n, is, context) : NULL;
            if (x == NULL) {
                EVP_PKEY_free(k);
                problem = "certs: cannot issue the certificate";
            } else {
                signers[ns].key = k;
                signers[ns++].cert = x;
            }
        }
    }
    if (problem != NULL) {
        fail(resp, 400, problem);
    } else {
        answer_package(resp, list, n, signers, ns);
    }
    for (size_t i = 0; i < ns; i++) {
        EVP_PKEY_free(signers[i].key);
        X509_free(signers[i].cert);
    }
}

static void handle(void *user, const km_request_t *req, km_response_t *resp)
{
    manager_t *m = user;
    size_t pl = strlen(KEYS_PATH);
    resp->content_type = "text/plain";
    if (strncmp(req->target, KEYS_PATH, pl) != 0 || (req->target[pl] != '\0' && req->target[pl] != '?')) {
        fail(resp, 404, "unknown path");
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        fail(resp, 405, "GET only");
        return;
    }
    const char *q = req->target[pl] == '?' ? req->target + pl + 1 : "";
    char fps[KM_MAX_TARGET], groups[KM_MAX_TARGET], certs[KM_MAX_TARGET], ctx[KM_MAX_TARGET];
    int bad = 0;
    const char *f = query_param(q, "fingerprints", fps, sizeof(fps), &bad);
    const char *g = query_param(q, "groups", groups, sizeof(groups), &bad);
    const char *c = query_param(q, "certs", certs, sizeof(certs), &bad);
    const char *x = query_param(q, "context", ctx, sizeof(ctx), &bad);
    if (bad || (f != NULL && g != NULL)) {
        fail(resp, 400, "malformed query, or both fingerprints and groups");
    } else if (f != NULL) {
        by_fingerprints(m, f, resp);
    } else if (g != NULL && *g != '\0') {
        by_groups(m, g, c, x, resp);
    } else {
        fail(resp, 400, "a fingerprints= or a non-empty groups= parameter is required");
    }
}

/* ---- argument parsing ---- */

typedef struct opts {
    const char *listen, *url, *cert, *key, *ca, *store, *groups, *fingerprints, *certs, *context, *out_dir;
    const char *ca_cert, *ca_key, *access, *allow;
    const char *push[MAX_PUSH];
    size_t n_push;
    int64_t rotate, lifetime, retention, watch;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        struct {
            const char *name;
            const char **dst;
        } strs[] = {{"--listen", &o->listen},
                    {"--url", &o->url},
                    {"--cert", &o->cert},
                    {"--key", &o->key},
                    {"--ca", &o->ca},
                    {"--store", &o->store},
                    {"--groups", &o->groups},
                    {"--fingerprints", &o->fingerprints},
                    {"--certs", &o->certs},
                    {"--context", &o->context},
                    {"--out-dir", &o->out_dir},
                    {"--ca-cert", &o->ca_cert},
                    {"--ca-key", &o->ca_key},
                    {"--access", &o->access},
                    {"--allow-subject", &o->allow}};
        struct {
            const char *name;
            int64_t *dst;
        } nums[] = {{"--rotate", &o->rotate},
                    {"--lifetime", &o->lifetime},
                    {"--retention", &o->retention},
                    {"--watch", &o->watch}};
        int done = 0;
        if (v == NULL) {
            cli_error(CMD, "error: %s needs a value", a);
            return -1;
        }
        for (size_t k = 0; !done && k < sizeof(strs) / sizeof(strs[0]); k++) {
            if (strcmp(a, strs[k].name) == 0) {
                *strs[k].dst = v;
                done = 1;
            }
        }
        for (size_t k = 0; !done && k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (strcmp(a, nums[k].name) == 0) {
                if (parse_seconds(v, nums[k].dst) != 0) {
                    cli_error(CMD, "error: %s: a positive number of seconds expected, not '%s'", a, v);
                    return -1;
                }
                done = 1;
            }
        }
        if (!done && strcmp(a, "--push") == 0) {
            if (o->n_push == MAX_PUSH) {
                cli_error(CMD, "error: at most %d --push", MAX_PUSH);
                return -1;
            }
            o->push[o->n_push++] = v;
            done = 1;
        }
        if (!done) {
            cli_error(CMD, "error: unknown option '%s' (see --help)", a);
            return -1;
        }
        i++;
    }
    if (o->cert == NULL || o->key == NULL || o->ca == NULL) {
        cli_error(CMD, "error: --cert, --key and --ca are required (mutual TLS)");
        return -1;
    }
    return 0;
}

static int load_ca(manager_t *m, const opts_t *o)
{
    if ((o->ca_cert == NULL) != (o->ca_key == NULL)) {
        cli_error(CMD, "error: --ca-cert and --ca-key go together");
        return -1;
    }
    if (o->ca_cert == NULL) {
        return 0;
    }
    FILE *f = fopen(o->ca_cert, "r");
    m->ca_cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    f = fopen(o->ca_key, "r");
    m->ca_key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    if (m->ca_cert == NULL || m->ca_key == NULL || X509_check_private_key(m->ca_cert, m->ca_key) != 1) {
        cli_error(CMD, "error: %s / %s: cannot read a matching CA certificate and key", o->ca_cert, o->ca_key);
        return -1;
    }
    return 0;
}

static int serve(int argc, char **argv)
{
    opts_t o;
    if (parse_opts(argc, argv, &o) != 0) {
        return CLI_USAGE;
    }
    if (o.listen == NULL || o.store == NULL) {
        cli_error(CMD, "serve: error: --listen and --store are required");
        return CLI_USAGE;
    }
    manager_t *m = calloc(1, sizeof(*m));
    char why[512];
    int ret = CLI_USAGE, fd = -1;
    SSL_CTX *ctx = NULL;
    if (m == NULL) {
        cli_error(CMD, "error: out of memory");
        return CLI_FAIL;
    }
    m->store = o.store;
    m->rotate = o.rotate ? o.rotate : 86400;
    m->lifetime = o.lifetime ? o.lifetime : 2 * m->rotate;
    m->retention = o.retention ? o.retention : m->lifetime;
    m->access = o.access ? o.access : "middleboxes authorised by the operator of this key manager";
    memcpy(m->push, o.push, sizeof(o.push));
    m->n_push = o.n_push;
    if (parse_groups(o.groups ? o.groups : "x25519,p256", m->groups) != 0) {
        cli_error(CMD, "serve: error: --groups: x25519 and/or p256 expected");
    } else if (strlen(m->access) > MSP_ETS_MAX_ACCESS) {
        cli_error(CMD, "serve: error: --access longer than %d bytes", MSP_ETS_MAX_ACCESS);
    } else if (load_ca(m, &o) == 0 && store_load(m) == CLI_OK) {
        ctx = km_tls_ctx(1, o.cert, o.key, o.ca, why, sizeof(why));
        m->client = ctx != NULL && o.n_push > 0 ? km_tls_ctx(0, o.cert, o.key, o.ca, why, sizeof(why)) : NULL;
        if (ctx == NULL || (o.n_push > 0 && m->client == NULL)) {
            cli_error(CMD, "serve: error: %s", why);
        } else if ((fd = km_listen(o.listen, why, sizeof(why))) < 0) {
            cli_error(CMD, "serve: error: %s", why);
        } else if (rotate(m, (int64_t)time(NULL)) != 0) {
            cli_error(CMD, "serve: error: cannot make or store the first keys in %s", o.store);
            ret = CLI_FAIL;
        } else {
            m->next_rotation = (int64_t)time(NULL) + m->rotate;
            fprintf(stderr, CMD ": listening on %s\n", o.listen);
            km_signals();
            km_serve(fd, ctx, o.allow, CMD, handle, tick, m);
            ret = CLI_OK;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    SSL_CTX_free(ctx);
    SSL_CTX_free(m->client);
    for (size_t i = 0; i < m->n_keys; i++) {
        EVP_PKEY_free(m->keys[i].key);
    }
    EVP_PKEY_free(m->ca_key);
    X509_free(m->ca_cert);
    free(m);
    return ret;
}

/* ---- fetch ---- */

static const char *scheme_of(EVP_PKEY *k)
{
    return EVP_PKEY_is_a(k, "RSA") ? "0x0804" : EVP_PKEY_is_a(k, "EC") ? "0x0403" : "other";
}

/* Writes what a package holds into dir; with stable, DIR/GROUP.pem becomes the newest valid key of each group. */
static int save_package(const char *dir, const msp_ets_keypkg_t *pkg, int stable)
{
    char path[4096], fp[2 * MSP_ETS_FINGERPRINT_LEN + 1], a[32], b[32];
    int64_t now = (int64_t)time(NULL);
    const msp_ets_kp_static_t *best[2] = {NULL, NULL};
    for (size_t i = 0; i < pkg->n_static; i++) {
        const msp_ets_kp_static_t *s = &pkg->statics[i];
        uint8_t f[MSP_ETS_FINGERPRINT_LEN];
        const char *group = msp_ets_kp_group_name(s->key);
        if (group == NULL || fingerprint_of(s->key, f) != MSP_OK) {
            continue;
        }
        msp_hex(fp, f, sizeof(f));
        snprintf(path, sizeof(path), "%s/%s-%s.pem", dir, group, fp);
        if (write_pem_key(path, s->key, NULL) != CLI_OK) {
            return CLI_USAGE;
        }
        int g = strcmp(group, "x25519") == 0 ? 0 : 1;
        int valid = s->not_before <= now && (!s->has_not_after || now < s->not_after);
        if (valid && (best[g] == NULL || s->not_before >= best[g]->not_before)) {
            best[g] = s;
        }
        iso(a, s->not_before);
        if (s->has_not_after) {
            iso(b, s->not_after);
        } else {
            strcpy(b, "-");
        }
        printf("%s %s %s %s\n", group, fp, a, b);
    }
    for (int g = 0; stable && g < 2; g++) {
        snprintf(path, sizeof(path), "%s/%s.pem", dir, GROUP_NAMES[g]);
        if (best[g] != NULL && write_pem_key(path, best[g]->key, NULL) != CLI_OK) {
            return CLI_USAGE;
        }
    }
    for (size_t i = 0; i < pkg->n_signer; i++) {
        char kpath[4096];
        const char *sch = scheme_of(pkg->signers[i].key);
        snprintf(path, sizeof(path), i == 0 ? "%s/cert-%s.pem" : "%s/cert-%s-%zu.pem", dir, sch, i);
        snprintf(kpath, sizeof(kpath), i == 0 ? "%s/cert-%s.key.pem" : "%s/cert-%s-%zu.key.pem", dir, sch, i);
        if (write_pem_key(kpath, pkg->signers[i].key, NULL) != CLI_OK ||
            write_pem_cert(path, pkg->signers[i].cert) != CLI_OK) {
            return CLI_USAGE;
        }
        printf("certificate %s %s\n", sch, path);
    }
    fflush(stdout);
    return CLI_OK;
}

static int build_target(const opts_t *o, char *out, size_t cap)
{
    int n;
    if (o->fingerprints != NULL) {
        n = snprintf(out, cap, KEYS_PATH "?fingerprints=%s", o->fingerprints);
    } else {
        int g[2];
        if (parse_groups(o->groups, g) != 0) {
            cli_error(CMD, "fetch: error: --groups: x25519 and/or p256 expected");
            return -1;
        }
        n = snprintf(out, cap, KEYS_PATH "?groups=%s%s%s%s%s",
                     g[0] && g[1] ? "0x001d,0x0017"
                     : g[0]       ? "0x001d"
                                  : "0x0017",
                     o->certs ? "&certs=" : "", o->certs ? o->certs : "", o->context ? "&context=" : "",
                     o->context ? o->context : "");
    }
    const char *q = strchr(out, '?');
    if (n < 0 || (size_t)n >= cap || strpbrk(q, " \r\n%#") != NULL) {
        cli_error(CMD, "fetch: error: the request parameters are too long or hold unusable characters");
        return -1;
    }
    return 0;
}

static int fetch_once(SSL_CTX *ctx, const opts_t *o, const char *target)
{
    msp_buf_t resp;
    msp_buf_init(&resp, KM_MAX_BODY);
    int status = 0, ret = CLI_FAIL;
    char why[512];
    if (km_request(ctx, o->url, "GET", target, NULL, 0, &status, &resp, why, sizeof(why)) != 0) {
        cli_error(CMD, "fetch: error: %s", why);
    } else if (status != 200) {
        size_t n = resp.len;
        const char *text = msp_buf_cstr(&resp);
        n = text != NULL ? strcspn(text, "\r\n") : 0;
        cli_error(CMD, "fetch: error: the key manager answered %d: %.*s", status, (int)(n > 200 ? 200 : n),
                  text ? text : "");
    } else {
        msp_ets_keypkg_t pkg;
        msp_error_t err;
        msp_error_clear(&err);
        if (msp_ets_keypkg_decode(resp.base, resp.len, &pkg, &err) != MSP_OK) {
            cli_error(CMD, "fetch: error: the key package is not acceptable: %s", err.detail);
        } else {
            ret = save_package(o->out_dir, &pkg, o->fingerprints == NULL);
            msp_ets_keypkg_free(&pkg);
        }
    }
    msp_buf_free(&resp);
    return ret;
}

static void consume(void *user, const km_request_t *req, km_response_t *resp)
{
    const opts_t *o = user;
    resp->content_type = "text/plain";
    if (strcmp(req->target, PUSH_PATH) != 0) {
        fail(resp, 404, "unknown path");
        return;
    }
    if (strcmp(req->method, "PUT") != 0) {
        fail(resp, 405, "PUT only");
        return;
    }
    msp_ets_keypkg_t pkg;
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_ets_keypkg_decode(req->body, req->body_len, &pkg, &err) != MSP_OK) {
        char text[400];
        snprintf(text, sizeof(text), "not an acceptable key package: %s", err.detail);
        fail(resp, 400, text);
        return;
    }
    int r = save_package(o->out_dir, &pkg, 1);
    msp_ets_keypkg_free(&pkg);
    if (r != CLI_OK) {
        fail(resp, 500, "cannot store the keys");
    } else {
        resp->status = 204;
    }
}

static int fetch(int argc, char **argv)
{
    opts_t o;
    char why[512], target[KM_MAX_TARGET];
    if (parse_opts(argc, argv, &o) != 0) {
        return CLI_USAGE;
    }
    if (o.out_dir == NULL || (o.url == NULL) == (o.listen == NULL)) {
        cli_error(CMD, "fetch: error: --out-dir and exactly one of --url, --listen are required");
        return CLI_USAGE;
    }
    if (o.url != NULL && (o.fingerprints == NULL) == (o.groups == NULL)) {
        cli_error(CMD, "fetch: error: exactly one of --fingerprints, --groups is required");
        return CLI_USAGE;
    }
    struct stat st;
    if (stat(o.out_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error(CMD, "fetch: error: %s: not a directory", o.out_dir);
        return CLI_USAGE;
    }
    if (o.url != NULL && build_target(&o, target, sizeof(target)) != 0) {
        return CLI_USAGE;
    }
    SSL_CTX *ctx = km_tls_ctx(o.listen != NULL, o.cert, o.key, o.ca, why, sizeof(why));
    if (ctx == NULL) {
        cli_error(CMD, "fetch: error: %s", why);
        return CLI_USAGE;
    }
    int ret = CLI_OK;
    if (o.listen != NULL) {
        int fd = km_listen(o.listen, why, sizeof(why));
        if (fd < 0) {
            cli_error(CMD, "fetch: error: %s", why);
            ret = CLI_USAGE;
        } else {
            fprintf(stderr, CMD ": listening on %s for pushed keys\n", o.listen);
            km_signals();
            km_serve(fd, ctx, o.allow, CMD, consume, NULL, &o);
            close(fd);
        }
    } else if (o.watch > 0) {
        km_signals();
        while (!km_stop) {
            fetch_once(ctx, &o, target); /* a failed round is reported and retried at the next */
            for (int64_t s = 0; s < o.watch && !km_stop; s++) {
                sleep(1);
            }
        }
    } else {
        ret = fetch_once(ctx, &o, target);
    }
    SSL_CTX_free(ctx);
    return ret;
}

int cmd_ets_keymgr(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || cli_wants_help(argc, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "serve") == 0) {
        return serve(argc, argv);
    }
    if (strcmp(argv[1], "fetch") == 0) {
        return fetch(argc, argv);
    }
    cli_error(CMD, "error: unknown verb '%s' (serve, fetch)", argv[1]);
    return CLI_USAGE;
}
