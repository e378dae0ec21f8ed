/*
 * msp ets keymgr serve|fetch: an ETS key manager and its consumer (ets.md 3.4,
 * 3.5: key packages over HTTPS, pull by fingerprints or groups, push, rotation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "cli.h"
#include "ets_cli.h"
#include "cmd_ets_keymgr.h"
#include "msp/ets.h"
#include "msp/ets_keymgr.h"
#include "msp/ets_keypkg.h"

#define CMD "msp ets keymgr"
#define KEYS_PATH MSP_ETS_KEYMGR_KEYS_PATH
#define PUSH_PATH MSP_ETS_KEYMGR_PUSH_PATH
#define MAX_PUSH 8

static const char usage[] =
    "usage: msp ets keymgr serve --listen HOST:PORT --cert C --key K --ca CA --store DIR\n"
    "                            [--groups x25519,p256] [--rotate SECONDS] [--lifetime SECONDS]\n"
    "                            [--retention SECONDS] [--push https://HOST:PORT]...\n"
    "                            [--ca-cert CACERT --ca-key CAKEY --access TEXT] [--allow-subject PATTERN]\n"
    "                            [--require-cms]\n"
    "       msp ets keymgr fetch (--url https://HOST:PORT | --listen HOST:PORT) --cert C --key K --ca CA\n"
    "                            [--fingerprints HEX,... | --groups x25519,p256 [--certs 0x0403:0x0403,...]\n"
    "                            [--context NAME]] --out-dir DIR [--watch SECONDS] [--allow-subject PATTERN]\n"
    "                            [--cms] [--trust-signer CERTS]\n"
    "\n"
    "serve: an ETS key manager (TS 103 523-3 clause 4.3.5-4.3.8) over HTTPS with mutual TLS 1.3: any client\n"
    "certificate chaining to --ca is authorised (narrowed by --allow-subject, an fnmatch pattern on the whole\n"
    "RFC 2253 subject string, where * also matches the commas between RDNs). It makes a static key per group\n"
    "on start and every --rotate seconds (default 86400), valid for\n"
    "--lifetime seconds (default twice --rotate), kept in --store and findable by fingerprint until expiry plus\n"
    "--retention (default --lifetime). GET " KEYS_PATH "?fingerprints=HEX,... or ?groups=0x001d,0x0017\n"
    "[&certs=ISSUER:SUBJECT,...][&context=DNSNAME] returns an RFC 5958 key package (application/pkcs8);\n"
    "certificates (subject schemes 0x0403, 0x0804) are issued by --ca-cert/--ca-key with one visibility\n"
    "information per key. --push: after each rotation, PUT the current keys to URL" PUSH_PATH ".\n"
    "A request whose Accept names application/pkcs7-mime (or application/cms) gets the package CMS-wrapped\n"
    "(ETS-KP-2): signed with --cert/--key, encrypted to the client's certificate. --require-cms: plain requests\n"
    "get 406, and pushes are CMS-wrapped to each consumer's certificate.\n"
    "\n"
    "fetch: pulls keys (--url) or, with --listen, accepts pushed packages until SIGINT/SIGTERM. Writes\n"
    "DIR/GROUP-FINGERPRINT.pem (PKCS#8), DIR/GROUP.pem (the newest valid key of a groups fetch or push) and\n"
    "DIR/cert-SCHEME.pem + DIR/cert-SCHEME.key.pem; prints one line per key: GROUP FINGERPRINT NOT-BEFORE\n"
    "NOT-AFTER. --watch re-fetches every SECONDS. DIR is created (mode 0700) when it is missing. --cms: ask for\n"
    "a CMS-wrapped package, decrypt it with --cert/--key and verify its signer against --trust-signer (PEM\n"
    "certificates: the key manager's own or its CA; default --ca); anything else is refused and nothing\n"
    "written. --trust-signer implies --cms. With --listen, --cms refuses plain pushes; a CMS-wrapped push is\n"
    "always verified.\n";

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

static const char *const GROUP_NAMES[2] = {"x25519", "p256"};

/* What serve keeps between requests: the manager and how to push. */
typedef struct server {
    msp_ets_keymgr_t *km;
    const char *store;
    const char *const *push;
    size_t n_push;
    SSL_CTX *client; /* for push */
    int64_t next;    /* when to tick again */
    X509 *sign_cert; /* --cert/--key: what signs CMS-wrapped packages */
    EVP_PKEY *sign_key;
    int require_cms;
} server_t;

/* ---- CMS-wrapped packages (ETS-KP-2) ---- */

/* pkg wrapped for to into out, or 0 with a one-line why. */
static int wrap_for(const server_t *s, X509 *to, const msp_buf_t *pkg, msp_buf_t *out, char *why, size_t why_len)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (to == NULL) {
        snprintf(why, why_len, "no client certificate to encrypt to");
        return 0;
    }
    if (msp_ets_keypkg_cms_wrap(pkg->base, pkg->len, s->sign_cert, s->sign_key, to, (int64_t)time(NULL), out, &err) !=
        MSP_OK) {
        snprintf(why, why_len, "cannot wrap the package for the client certificate: %s", err.detail);
        return 0;
    }
    return 1;
}

/* The first certificate of a PEM file, or every one (at most max) into out. */
static size_t read_certs(const char *path, X509 **out, size_t max)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    X509 *x;
    while (f != NULL && n <= max && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (n == max) {
            X509_free(x);
            n++; /* over the limit: said by the caller */
            break;
        }
        out[n++] = x;
    }
    ERR_clear_error();
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    ERR_clear_error();
    return k;
}

static void on_event(void *user, const msp_ets_keymgr_event_t *ev)
{
    const server_t *s = user;
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1], a[32], b[32];
    msp_hex(fp, ev->fingerprint, sizeof(ev->fingerprint));
    switch (ev->kind) {
    case MSP_ETS_KEYMGR_NEW_KEY:
        iso(a, ev->not_before);
        iso(b, ev->not_after);
        fprintf(stderr, CMD ": new key %s %s %s %s\n", ev->group, fp, a, b);
        break;
    case MSP_ETS_KEYMGR_RETIRED_KEY:
        fprintf(stderr, CMD ": retired key %s %s\n", ev->group, fp);
        break;
    case MSP_ETS_KEYMGR_SKIPPED:
        fprintf(stderr, CMD ": %s/%s: skipped, not a store file\n", s->store, ev->name);
        break;
    case MSP_ETS_KEYMGR_STORE_ERROR:
        fprintf(stderr, CMD ": %s/%s: error: cannot remove the retired key (tried again)\n", s->store, ev->name);
        break;
    }
}

/* One PUT of body (type: NULL plain) to url, to the server that presents expect (NULL: any); logged. */
static int push_one(server_t *s, const char *url, const msp_buf_t *body, const char *type, X509 *expect,
                    msp_buf_t *resp, char *why, size_t why_len)
{
    km_call_t c = {.url = url,
                   .method = "PUT",
                   .target = MSP_ETS_KEYMGR_PUSH_PATH,
                   .body = body->base,
                   .body_len = body->len,
                   .body_type = type,
                   .expect_peer = expect,
                   .resp = resp};
    if (km_call(s->client, &c, why, why_len) != 0) {
        return 0;
    }
    fprintf(stderr, CMD ": push to %s: %d\n", url, c.status);
    return 1;
}

/*
 * A CMS-wrapped push: the consumer's certificate is learnt from a first
 * connection (a GET it answers 405), the package wrapped to it and PUT on
 * a second one that must present the same certificate.
 */
static int push_cms(server_t *s, const char *url, const msp_buf_t *pkg, msp_buf_t *resp, char *why, size_t why_len)
{
    km_call_t probe = {.url = url, .method = "GET", .target = MSP_ETS_KEYMGR_PUSH_PATH, .resp = resp, .want_peer = 1};
    if (km_call(s->client, &probe, why, why_len) != 0 || probe.peer == NULL) {
        return 0;
    }
    msp_buf_t w;
    msp_buf_init(&w, MSP_ETS_KP_MAX_CMS);
    resp->len = 0;
    int ok = wrap_for(s, probe.peer, pkg, &w, why, why_len) &&
             push_one(s, url, &w, MSP_ETS_KEYMGR_TYPE_CMS, probe.peer, resp, why, why_len);
    msp_buf_free(&w);
    X509_free(probe.peer);
    return ok;
}

/* ETS-KT-2: the manager is the HTTPS client and PUTs the current keys to every consumer. */
static void push_all(server_t *s, int64_t now)
{
    msp_buf_t pkg, resp;
    msp_error_t err;
    msp_buf_init(&pkg, MSP_ETS_KP_MAX_SIZE);
    if (msp_ets_keymgr_current(s->km, now, &pkg, &err) != MSP_OK) {
        msp_buf_free(&pkg);
        return;
    }
    for (size_t i = 0; i < s->n_push; i++) {
        char why[512];
        msp_buf_init(&resp, KM_MAX_BODY);
        int ok = s->require_cms ? push_cms(s, s->push[i], &pkg, &resp, why, sizeof(why))
                                : push_one(s, s->push[i], &pkg, NULL, NULL, &resp, why, sizeof(why));
        if (!ok) {
            fprintf(stderr, CMD ": push to %s failed: %s\n", s->push[i], why);
        }
        msp_buf_free(&resp);
    }
    msp_buf_free(&pkg);
}

static int tick_at(server_t *s, int64_t now)
{
    msp_ets_keymgr_tick_t t;
    msp_error_t err;
    msp_error_clear(&err);
    int ret = msp_ets_keymgr_tick(s->km, now, &t, &err);
    if (ret != MSP_OK) {
        fprintf(stderr, CMD ": error: %s\n", err.detail);
    }
    if (t.rotated && s->n_push > 0) {
        push_all(s, now);
    }
    s->next = t.next;
    return ret;
}

static int tick(void *user)
{
    server_t *s = user;
    int64_t now = (int64_t)time(NULL);
    if (now >= s->next) {
        tick_at(s, now);
    }
    int64_t wait = s->next - now;
    return wait < 1 ? 1000 : wait > 86400 ? 86400 * 1000 : (int)(wait * 1000);
}

static void fail(km_response_t *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain";
    msp_buf_printf(&resp->body, "%s\n", text);
}

static void handle(void *user, const km_request_t *req, km_response_t *resp)
{
    server_t *s = user;
    size_t pl = strlen(MSP_ETS_KEYMGR_KEYS_PATH);
    if (strncmp(req->target, MSP_ETS_KEYMGR_KEYS_PATH, pl) != 0 ||
        (req->target[pl] != '\0' && req->target[pl] != '?')) {
        fail(resp, 404, "unknown path");
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        fail(resp, 405, "GET only");
        resp->allow = "GET";
        return;
    }
    unsigned want = msp_ets_keymgr_accept(req->accept);
    if (s->require_cms && !(want & MSP_ETS_KEYMGR_ACCEPT_CMS)) {
        fail(resp, 406, "this key manager sends CMS-wrapped packages only (Accept: " MSP_ETS_KEYMGR_TYPE_CMS ")");
        return;
    }
    msp_error_t err;
    msp_error_clear(&err);
    msp_buf_t pkg;
    msp_buf_init(&pkg, MSP_ETS_KP_MAX_SIZE);
    int ret =
        msp_ets_keymgr_get(s->km, req->target[pl] == '?' ? req->target + pl + 1 : "", (int64_t)time(NULL), &pkg, &err);
    char why[512];
    if (ret != MSP_OK) {
        fail(resp, msp_ets_keymgr_http_status(ret), err.detail);
    } else if (!(want & MSP_ETS_KEYMGR_ACCEPT_CMS)) {
        resp->status = msp_buf_put(&resp->body, pkg.base, pkg.len) == MSP_OK ? 200 : 500;
        resp->content_type = MSP_ETS_KEYMGR_TYPE_PKCS8;
    } else if (!wrap_for(s, req->peer_cert, &pkg, &resp->body, why, sizeof(why))) {
        resp->body.len = 0;
        resp->body.err = 0;
        fail(resp, 406, why);
    } else {
        resp->status = 200;
        resp->content_type = MSP_ETS_KEYMGR_TYPE_CMS;
    }
    msp_buf_free(&pkg);
}

/* ---- argument parsing ---- */

/* fetch's side of CMS: our certificate and key (the recipient), the signers we trust */
typedef struct cms_keys {
    X509 *cert;
    EVP_PKEY *key;
    X509 *trusted[MSP_ETS_KP_MAX_TRUSTED];
    size_t n_trusted;
} cms_keys_t;

typedef struct opts {
    const char *listen, *url, *cert, *key, *ca, *store, *groups, *fingerprints, *certs, *context, *out_dir;
    const char *ca_cert, *ca_key, *access, *allow, *trust;
    const char *push[MAX_PUSH];
    size_t n_push;
    int64_t rotate, lifetime, retention, watch;
    int cms, require_cms; /* fetch --cms (or --trust-signer), serve --require-cms */
    cms_keys_t *keys;     /* fetch: loaded when CMS may arrive */
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
                    {"--allow-subject", &o->allow},
                    {"--trust-signer", &o->trust}};
        struct {
            const char *name;
            int64_t *dst;
        } nums[] = {{"--rotate", &o->rotate},
                    {"--lifetime", &o->lifetime},
                    {"--retention", &o->retention},
                    {"--watch", &o->watch}};
        int done = 0;
        if (strcmp(a, "--cms") == 0 || strcmp(a, "--require-cms") == 0) {
            *(a[2] == 'c' ? &o->cms : &o->require_cms) = 1; /* flags: no value */
            continue;
        }
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
    o->cms |= o->trust != NULL;
    return 0;
}

static int load_ca(const opts_t *o, X509 **cert, EVP_PKEY **key)
{
    if ((o->ca_cert == NULL) != (o->ca_key == NULL)) {
        cli_error(CMD, "error: --ca-cert and --ca-key go together");
        return -1;
    }
    if (o->ca_cert == NULL) {
        return 0;
    }
    FILE *f = fopen(o->ca_cert, "r");
    *cert = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    f = fopen(o->ca_key, "r");
    *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    if (*cert == NULL || *key == NULL || X509_check_private_key(*cert, *key) != 1) {
        cli_error(CMD, "error: %s / %s: cannot read a matching CA certificate and key", o->ca_cert, o->ca_key);
        return -1;
    }
    return 0;
}

/* The manager of the options: CA, groups, times, the store directory. */
static int new_manager(const opts_t *o, server_t *s, msp_ets_keymgr_store_t *store)
{
    msp_ets_keymgr_cfg_t cfg;
    msp_error_t err;
    X509 *ca_cert = NULL;
    EVP_PKEY *ca_key = NULL;
    int groups[2], ret = -1;
    memset(&cfg, 0, sizeof(cfg));
    if (parse_groups(o->groups ? o->groups : "x25519,p256", groups) != 0) {
        cli_error(CMD, "serve: error: --groups: x25519 and/or p256 expected");
    } else if (o->access != NULL && strlen(o->access) > MSP_ETS_MAX_ACCESS) {
        cli_error(CMD, "serve: error: --access longer than %d bytes", MSP_ETS_MAX_ACCESS);
    } else if (load_ca(o, &ca_cert, &ca_key) != 0) {
        /* said */
    } else if (msp_ets_keymgr_dir_store(o->store, store, &err) != MSP_OK) {
        cli_error(CMD, "%s: error: %s", o->store, err.detail);
    } else {
        cfg.groups = (groups[0] ? MSP_ETS_KEYMGR_X25519 : 0) | (groups[1] ? MSP_ETS_KEYMGR_P256 : 0);
        cfg.rotate = o->rotate;
        cfg.lifetime = o->lifetime;
        cfg.retention = o->retention;
        cfg.store = store;
        cfg.ca_cert = ca_cert;
        cfg.ca_key = ca_key;
        cfg.access = o->access;
        cfg.on_event = on_event;
        cfg.event_user = s;
        int r = msp_ets_keymgr_new(&cfg, &s->km);
        if (r != MSP_OK) {
            cli_error(CMD, "%s: error: cannot load the store: %s", o->store, msp_error_name(r));
        }
        ret = r == MSP_OK ? 0 : -1;
    }
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    return ret;
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
    if (o.cms || o.trust != NULL) {
        cli_error(CMD, "serve: error: --cms and --trust-signer are fetch's (serve: --require-cms)");
        return CLI_USAGE;
    }
    server_t s = {.store = o.store, .push = o.push, .n_push = o.n_push, .require_cms = o.require_cms};
    /* the TLS certificate and key also sign CMS-wrapped packages */
    if (read_certs(o.cert, &s.sign_cert, 1) != 1 || (s.sign_key = read_key(o.key)) == NULL ||
        X509_check_private_key(s.sign_cert, s.sign_key) != 1) {
        ERR_clear_error();
        cli_error(CMD, "serve: error: %s / %s: cannot read a matching certificate and key", o.cert, o.key);
        X509_free(s.sign_cert);
        EVP_PKEY_free(s.sign_key);
        return CLI_USAGE;
    }
    msp_ets_keymgr_store_t store;
    char why[512];
    int ret = CLI_USAGE, fd = -1;
    SSL_CTX *ctx = NULL;
    if (new_manager(&o, &s, &store) == 0) {
        ctx = km_tls_ctx(1, o.cert, o.key, o.ca, why, sizeof(why));
        s.client = ctx != NULL && o.n_push > 0 ? km_tls_ctx(0, o.cert, o.key, o.ca, why, sizeof(why)) : NULL;
        if (ctx == NULL || (o.n_push > 0 && s.client == NULL)) {
            cli_error(CMD, "serve: error: %s", why);
        } else if ((fd = km_listen(o.listen, why, sizeof(why))) < 0) {
            cli_error(CMD, "serve: error: %s", why);
        } else if (tick_at(&s, (int64_t)time(NULL)) != MSP_OK) {
            cli_error(CMD, "serve: error: cannot make or store the first keys in %s", o.store);
            ret = CLI_FAIL;
        } else {
            fprintf(stderr, CMD ": listening on %s\n", o.listen);
            km_signals();
            km_serve(fd, ctx, o.allow, CMD, handle, tick, &s);
            ret = CLI_OK;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    SSL_CTX_free(ctx);
    SSL_CTX_free(s.client);
    msp_ets_keymgr_free(s.km);
    X509_free(s.sign_cert);
    EVP_PKEY_free(s.sign_key);
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
        iso(a, s->not_before);
        if (s->has_not_after) {
            iso(b, s->not_after);
        } else {
            strcpy(b, "-");
        }
        printf("%s %s %s %s\n", group, fp, a, b);
    }
    static const uint16_t ids[2] = {0x001d, 0x0017};
    for (int g = 0; stable && g < 2; g++) {
        int best = msp_ets_keymgr_newest(pkg->statics, pkg->n_static, ids[g], now);
        snprintf(path, sizeof(path), "%s/%s.pem", dir, GROUP_NAMES[g]);
        if (best >= 0 && write_pem_key(path, pkg->statics[best].key, NULL) != CLI_OK) {
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

static int build_target(const opts_t *o, msp_buf_t *out)
{
    int g[2] = {0, 0};
    msp_error_t err;
    if (o->fingerprints == NULL && parse_groups(o->groups, g) != 0) {
        cli_error(CMD, "fetch: error: --groups: x25519 and/or p256 expected");
        return -1;
    }
    unsigned groups = (g[0] ? MSP_ETS_KEYMGR_X25519 : 0) | (g[1] ? MSP_ETS_KEYMGR_P256 : 0);
    if (msp_ets_keymgr_target(o->fingerprints, groups, o->certs, o->context, out, &err) != MSP_OK) {
        cli_error(CMD, "fetch: error: %s", err.detail);
        return -1;
    }
    return 0;
}

/* A received body (plain, or CMS opened and verified: msp_ets_keymgr_receive) into pkg; 0 and why otherwise. */
static int received(const opts_t *o, const uint8_t *body, size_t len, const char *type, msp_buf_t *pkg, char *why,
                    size_t why_len)
{
    msp_error_t err;
    msp_error_clear(&err);
    msp_ets_keymgr_cms_t cms = {0};
    if (o->keys != NULL) {
        cms = (msp_ets_keymgr_cms_t){o->keys->cert, o->keys->key, o->keys->trusted, o->keys->n_trusted};
    }
    if (msp_ets_keymgr_receive(body, len, type, o->keys != NULL ? &cms : NULL, o->cms, (int64_t)time(NULL), pkg,
                               &err) != MSP_OK) {
        snprintf(why, why_len, "%s", err.detail);
        return 0;
    }
    return 1;
}

/* Our certificate and key and the trusted signers (--trust-signer, else --ca), for CMS; -1 said. */
static int load_cms_keys(const opts_t *o, cms_keys_t *k)
{
    const char *trust = o->trust != NULL ? o->trust : o->ca;
    memset(k, 0, sizeof(*k));
    k->n_trusted = read_certs(trust, k->trusted, MSP_ETS_KP_MAX_TRUSTED);
    if (read_certs(o->cert, &k->cert, 1) != 1 || (k->key = read_key(o->key)) == NULL) {
        cli_error(CMD, "fetch: error: %s / %s: cannot read the certificate and key", o->cert, o->key);
        return -1;
    }
    if (k->n_trusted == 0 || k->n_trusted > MSP_ETS_KP_MAX_TRUSTED) {
        cli_error(CMD, "fetch: error: %s: 1 to %d PEM certificates of trusted signers expected", trust,
                  MSP_ETS_KP_MAX_TRUSTED);
        return -1;
    }
    return 0;
}

static void free_cms_keys(cms_keys_t *k)
{
    X509_free(k->cert);
    EVP_PKEY_free(k->key);
    for (size_t i = 0; i < k->n_trusted && i < MSP_ETS_KP_MAX_TRUSTED; i++) {
        X509_free(k->trusted[i]);
    }
}

static int fetch_once(SSL_CTX *ctx, const opts_t *o, const char *target)
{
    msp_buf_t resp;
    msp_buf_init(&resp, KM_MAX_BODY);
    int ret = CLI_FAIL;
    char why[512];
    km_call_t c = {.url = o->url,
                   .method = "GET",
                   .target = target,
                   .resp = &resp,
                   .accept = o->cms ? MSP_ETS_KEYMGR_TYPE_CMS : NULL};
    int status = 0;
    if (km_call(ctx, &c, why, sizeof(why)) != 0) {
        cli_error(CMD, "fetch: error: %s", why);
    } else if ((status = c.status) != 200) {
        size_t n = resp.len;
        const char *text = msp_buf_cstr(&resp);
        n = text != NULL ? strcspn(text, "\r\n") : 0;
        cli_error(CMD, "fetch: error: the key manager answered %d: %.*s", status, (int)(n > 200 ? 200 : n),
                  text ? text : "");
    } else {
        msp_ets_keypkg_t pkg;
        msp_error_t err;
        msp_error_clear(&err);
        msp_buf_t der;
        msp_buf_init(&der, MSP_ETS_KP_MAX_SIZE);
        if (!received(o, resp.base, resp.len, c.resp_type, &der, why, sizeof(why))) {
            cli_error(CMD, "fetch: error: %s", why);
        } else if (msp_ets_keypkg_decode(der.base, der.len, &pkg, &err) != MSP_OK) {
            cli_error(CMD, "fetch: error: the key package is not acceptable: %s", err.detail);
        } else {
            ret = save_package(o->out_dir, &pkg, o->fingerprints == NULL);
            msp_ets_keypkg_free(&pkg);
        }
        msp_buf_free(&der);
    }
    msp_buf_free(&resp);
    return ret;
}

static void consume_package(const opts_t *o, const uint8_t *der, size_t len, km_response_t *resp);

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
        resp->allow = "PUT";
        return;
    }
    msp_buf_t der;
    char why[512];
    msp_buf_init(&der, MSP_ETS_KP_MAX_SIZE);
    if (o->cms && msp_ets_keymgr_content_type(req->content_type) != MSP_ETS_KEYMGR_ACCEPT_CMS) {
        fail(resp, 415, "this consumer takes CMS-wrapped packages only (Content-Type " MSP_ETS_KEYMGR_TYPE_CMS ")");
    } else if (!received(o, req->body, req->body_len, req->content_type, &der, why, sizeof(why))) {
        fprintf(stderr, CMD ": push refused: %s\n", why);
        fail(resp, 400, why);
    } else {
        consume_package(o, der.base, der.len, resp);
    }
    msp_buf_free(&der);
}

/* A pushed package, plain or unwrapped, into the output directory. */
static void consume_package(const opts_t *o, const uint8_t *der, size_t len, km_response_t *resp)
{
    msp_ets_keypkg_t pkg;
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_ets_keypkg_decode(der, len, &pkg, &err) != MSP_OK) {
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
    char why[512], target_mem[KM_MAX_TARGET];
    const char *target = NULL;
    msp_buf_t tb;
    msp_buf_init_fixed(&tb, target_mem, sizeof(target_mem));
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
    if (o.url != NULL && (build_target(&o, &tb) != 0 || (target = msp_buf_cstr(&tb)) == NULL)) {
        return CLI_USAGE;
    }
    if (o.require_cms) {
        cli_error(CMD, "fetch: error: --require-cms is serve's (fetch: --cms)");
        return CLI_USAGE;
    }
    cms_keys_t keys;
    /* a push may come CMS-wrapped even without --cms: then it is verified all the same */
    if ((o.cms || o.listen != NULL) && load_cms_keys(&o, &keys) != 0) {
        free_cms_keys(&keys);
        return CLI_USAGE;
    }
    o.keys = o.cms || o.listen != NULL ? &keys : NULL;
    SSL_CTX *ctx = km_tls_ctx(o.listen != NULL, o.cert, o.key, o.ca, why, sizeof(why));
    if (ctx == NULL) {
        cli_error(CMD, "fetch: error: %s", why);
        if (o.keys != NULL) {
            free_cms_keys(o.keys);
        }
        return CLI_USAGE;
    }
    /* the key folder, made once the arguments are known good (private keys: the owner's alone) */
    int made = 0;
    if (cli_mkdirs(o.out_dir, 0700, &made) != 0) {
        cli_error(CMD, "fetch: error: cannot create output %s: %s", o.out_dir, strerror(errno));
        cli_rmdirs(o.out_dir, made);
        SSL_CTX_free(ctx);
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
    if (ret != CLI_OK) {
        cli_rmdirs(o.out_dir, made); /* a single fetch that failed leaves no empty folder behind */
    }
    SSL_CTX_free(ctx);
    if (o.keys != NULL) {
        free_cms_keys(o.keys);
    }
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
