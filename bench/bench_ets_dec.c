/*
 * The ETS passive decryptor alone, in memory (msp/ets_dec.h): how many new
 * connections per second it follows and how fast it decrypts bulk data on
 * one core, against the floors of the primitives measured in the same run.
 *
 * Connections are recorded once between an ETS server (the msp-ets provider,
 * static key shares) and a stock OpenSSL client over memory BIOs. Then:
 *   handshake  K recorded handshakes (with the server's two tickets) per
 *              suite and group, fed in the recorded segments to fresh
 *              decryptors, over and over for --seconds: connections/s;
 *   bulk       a few connections carrying --mib MiB server to client, the
 *              data part fed in chunks of --chunk bytes: MB/s (10^6 B/s),
 *              the first pass and the best of --passes.
 * Floors: X25519 / P-256 derive per second with a prepared context, and the
 * suites' AEAD decrypting 16 KiB records with a keyed context.
 * Every replay is checked (a handshake event, no failure, all plaintext).
 *
 * Usage: bench_ets_dec [--conns K] [--mib M] [--bulk-conns N] [--chunk N]
 *                      [--passes N] [--seconds S] [--tickets N] [--only WHAT]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "msp/ets_dec.h"
#include "msp/ets_provider.h"

#include "ets_pair.h"

#define MAX_SEG 64      /* segments of one recorded handshake */
#define WRITE_MAX 16384 /* the server's bulk data in SSL_write calls of this size */
#define HS_SLACK 65536  /* recorded bytes per direction beyond the bulk records: the handshake */
#define RECORD_SLACK 32 /* per bulk record beyond its data: 5-byte header, content type, 16-byte tag, room */

/* One recorded connection (tests/unit/ets_pair.h): its handshake is chunks [0, hs_chunks). */
typedef struct rec_conn {
    ets_pair_t p;
    size_t hs_chunks;
    size_t hs_end[2]; /* stream offsets where the handshake recording ended */
} rec_conn_t;

typedef struct opts {
    size_t conns, mib, bulk_conns, passes, tickets;
    size_t chunk; /* 0: 1448 and 65536 */
    double seconds;
    const char *only; /* "handshake", "bulk", "floors" or NULL */
} opts_t;

typedef struct world {
    EVP_PKEY *x25519, *p256, *cert_key;
    X509 *cert;
    OSSL_LIB_CTX *lib;
    SSL_CTX *sctx, *cctx;
} world_t;

static world_t W;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_ets_dec: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- recording ---- */

static void record(rec_conn_t *r, const char *suite, const char *group, size_t bulk)
{
    ets_pair_opts_t o = {.ciphersuites = suite,
                         .groups = group,
                         .sni = "ets.example",
                         .max_bytes = bulk + (bulk / WRITE_MAX + 1) * RECORD_SLACK + HS_SLACK,
                         .max_chunks = MAX_SEG + bulk / WRITE_MAX + 1};
    if (ets_pair_start(&r->p, W.sctx, W.cctx, &o) != 0) {
        die("handshake %s %s: %s", suite, group, r->p.error);
    }
    if (r->p.nchunks > MAX_SEG) {
        die("handshake of more than %d segments", MAX_SEG);
    }
    r->hs_chunks = r->p.nchunks;
    r->hs_end[0] = r->p.len[0];
    r->hs_end[1] = r->p.len[1];
    uint8_t *data = malloc(WRITE_MAX);
    if (data == NULL) {
        die("out of memory");
    }
    RAND_bytes(data, WRITE_MAX);
    for (size_t sent = 0; sent < bulk;) {
        size_t n = bulk - sent < WRITE_MAX ? bulk - sent : WRITE_MAX;
        if (ets_pair_send(&r->p, ETS_S2C, data, n) != 0) {
            die("bulk data: %s", r->p.error);
        }
        sent += n;
    }
    free(data);
}

static void rec_free(rec_conn_t *r)
{
    ets_pair_free(&r->p);
}

/* ---- replay ---- */

typedef struct count {
    uint64_t plain[2];
    unsigned handshakes, failed;
    uint8_t sink;
    char text[MSP_ETS_DEC_MAX_TEXT];
} count_t;

static void on_plain(void *arg, int dir, uint8_t type, const uint8_t *p, size_t n)
{
    count_t *c = arg;
    if (type == 23) {
        c->plain[dir] += n;
        c->sink ^= n > 0 ? p[n - 1] : 0;
    }
}

static void on_event(void *arg, const msp_ets_event_t *ev)
{
    count_t *c = arg;
    if (ev->kind == MSP_ETS_EV_HANDSHAKE) {
        c->handshakes++;
    } else if (ev->kind == MSP_ETS_EV_UNDECRYPTABLE) {
        c->failed++;
        snprintf(c->text, sizeof(c->text), "%s", ev->text);
    }
}

static const msp_ets_conn_cb_t CB = {on_plain, on_event, NULL};

static msp_ets_conn_t *conn_new(const msp_ets_keys_t *keys, msp_ets_tickets_t *t, count_t *cnt)
{
    msp_ets_conn_t *c = NULL;
    if (msp_ets_conn_new(keys, t, &CB, cnt, &c) != MSP_OK) {
        die("msp_ets_conn_new");
    }
    return c;
}

static void feed(msp_ets_conn_t *c, int dir, const uint8_t *p, size_t n)
{
    if (msp_ets_conn_feed(c, dir, p, n) != MSP_OK) {
        die("msp_ets_conn_feed");
    }
}

static void replay_handshake(msp_ets_conn_t *c, const rec_conn_t *r)
{
    for (size_t i = 0; i < r->hs_chunks; i++) {
        const ets_chunk_t *s = &r->p.chunks[i];
        feed(c, s->dir, r->p.bytes[s->dir] + s->off, s->len);
    }
}

static void check(const count_t *cnt, unsigned handshakes, const char *what)
{
    if (cnt->failed > 0 || cnt->handshakes != handshakes) {
        die("%s: %u handshakes of %u, %u failed (%s)", what, cnt->handshakes, handshakes, cnt->failed, cnt->text);
    }
}

/* ---- floors ---- */

static double derive_rate(EVP_PKEY *priv, double seconds)
{
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, EVP_PKEY_is_a(priv, "X25519") ? "X25519" : "EC",
                                       EVP_PKEY_is_a(priv, "X25519") ? NULL : "P-256");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    if (peer == NULL || ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1) {
        die("derive floor");
    }
    uint8_t out[66];
    uint64_t n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 64; i++) {
            size_t len = sizeof(out);
            if (EVP_PKEY_derive(ctx, out, &len) != 1) {
                die("EVP_PKEY_derive");
            }
        }
        n += 64;
    } while ((t = now() - t0) < seconds);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return (double)n / t;
}

/* One TLS 1.3-shaped record (5-byte header as AAD, 16 KiB + 1 plaintext) opened over and over. */
static double aead_rate(const char *name, double seconds)
{
    enum { PT = 16385 };
    EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, name, NULL);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    static uint8_t ct[PT], pt[PT];
    uint8_t key[32] = {1}, iv[12] = {2}, tag[16], aad[5] = {23, 3, 3, (PT + 16) >> 8, (PT + 16) & 0xff};
    int outl = 0;
    if (ciph == NULL || x == NULL || EVP_EncryptInit_ex(x, ciph, NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(x, NULL, &outl, aad, 5) != 1 || EVP_EncryptUpdate(x, ct, &outl, pt, PT) != 1 ||
        EVP_EncryptFinal_ex(x, ct + outl, &outl) != 1 || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1 ||
        EVP_DecryptInit_ex(x, ciph, NULL, key, NULL) != 1) {
        die("%s floor", name);
    }
    uint64_t n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 16; i++) {
            if (EVP_DecryptInit_ex(x, NULL, NULL, NULL, iv) != 1 || EVP_DecryptUpdate(x, NULL, &outl, aad, 5) != 1 ||
                EVP_DecryptUpdate(x, pt, &outl, ct, PT) != 1 ||
                EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1 ||
                EVP_DecryptFinal_ex(x, pt + outl, &outl) != 1) {
                die("%s decrypt", name);
            }
        }
        n += 16;
    } while ((t = now() - t0) < seconds);
    EVP_CIPHER_CTX_free(x);
    EVP_CIPHER_free(ciph);
    return (double)n * (PT + 5 + 16) / t / 1e6;
}

/* ---- the runs ---- */

typedef struct suite {
    const char *ossl, *label, *aead;
    double floor_mbs;
} suite_t;

static suite_t SUITES[] = {
    {"TLS_AES_128_GCM_SHA256", "1301 AES-128-GCM", "AES-128-GCM", 0},
    {"TLS_AES_256_GCM_SHA384", "1302 AES-256-GCM", "AES-256-GCM", 0},
    {"TLS_CHACHA20_POLY1305_SHA256", "1303 ChaCha20", "ChaCha20-Poly1305", 0},
};
#define NSUITES (sizeof(SUITES) / sizeof(SUITES[0]))

static void row(const char *what, double v, const char *unit, double floor)
{
    if (floor > 0) {
        printf("%-44s %12.0f %-8s %12.0f %6.2f\n", what, v, unit, floor, v / floor);
    } else {
        printf("%-44s %12.0f %-8s %12s %6s\n", what, v, unit, "-", "-");
    }
    fflush(stdout);
}

static void run_handshakes(const opts_t *o, const msp_ets_keys_t *keys, const char *group, double floor)
{
    for (size_t s = 0; s < NSUITES; s++) {
        rec_conn_t *r = calloc(o->conns, sizeof(*r));
        if (r == NULL) {
            die("out of memory");
        }
        for (size_t i = 0; i < o->conns; i++) {
            record(&r[i], SUITES[s].ossl, group, 0);
        }
        msp_ets_tickets_t *t = NULL;
        if (o->tickets > 0 && msp_ets_tickets_new(o->tickets, &t) != MSP_OK) {
            die("msp_ets_tickets_new");
        }
        count_t cnt = {0};
        uint64_t n = 0;
        double t0 = now(), el;
        do {
            for (size_t i = 0; i < o->conns; i++) {
                msp_ets_conn_t *c = conn_new(keys, t, &cnt);
                replay_handshake(c, &r[i]);
                msp_ets_conn_end(c);
                msp_ets_conn_free(c);
            }
            n += o->conns;
        } while ((el = now() - t0) < o->seconds);
        check(&cnt, (unsigned)n, "handshake replay");
        char what[96];
        snprintf(what, sizeof(what), "handshake %s %s", group, SUITES[s].label);
        row(what, (double)n / el, "conn/s", floor);
        msp_ets_tickets_free(t);
        for (size_t i = 0; i < o->conns; i++) {
            rec_free(&r[i]);
        }
        free(r);
    }
}

static double bulk_pass(const opts_t *o, const msp_ets_keys_t *keys, rec_conn_t *r, size_t chunk, uint64_t bytes)
{
    count_t cnt = {0};
    double t0 = now();
    for (size_t i = 0; i < o->bulk_conns; i++) {
        msp_ets_conn_t *c = conn_new(keys, NULL, &cnt);
        replay_handshake(c, &r[i]);
        for (size_t off = r[i].hs_end[1]; off < r[i].p.len[1];) {
            size_t n = r[i].p.len[1] - off < chunk ? r[i].p.len[1] - off : chunk;
            feed(c, 1, r[i].p.bytes[1] + off, n);
            off += n;
        }
        msp_ets_conn_end(c);
        msp_ets_conn_free(c);
    }
    double el = now() - t0;
    check(&cnt, (unsigned)o->bulk_conns, "bulk replay");
    if (cnt.plain[1] != bytes * o->bulk_conns) {
        die("bulk replay: %llu plaintext bytes, want %llu", (unsigned long long)cnt.plain[1],
            (unsigned long long)(bytes * o->bulk_conns));
    }
    return (double)(bytes * o->bulk_conns) / el / 1e6;
}

static void run_bulk(const opts_t *o, const msp_ets_keys_t *keys)
{
    static const size_t chunks[] = {1448, 65536};
    uint64_t bytes = (uint64_t)o->mib << 20;
    for (size_t s = 0; s < NSUITES; s++) {
        rec_conn_t *r = calloc(o->bulk_conns, sizeof(*r));
        if (r == NULL) {
            die("out of memory");
        }
        for (size_t i = 0; i < o->bulk_conns; i++) {
            record(&r[i], SUITES[s].ossl, "X25519", bytes);
        }
        for (size_t k = 0; k < 2; k++) {
            size_t chunk = o->chunk > 0 ? o->chunk : chunks[k];
            double first = 0, best = 0;
            for (size_t p = 0; p < o->passes; p++) {
                double v = bulk_pass(o, keys, r, chunk, bytes);
                first = p == 0 ? v : first;
                best = v > best ? v : best;
            }
            char what[96];
            snprintf(what, sizeof(what), "bulk %s chunk %zu first pass", SUITES[s].label, chunk);
            row(what, first, "MB/s", SUITES[s].floor_mbs);
            snprintf(what, sizeof(what), "bulk %s chunk %zu best of %zu", SUITES[s].label, chunk, o->passes);
            row(what, best, "MB/s", SUITES[s].floor_mbs);
            if (o->chunk > 0) {
                break;
            }
        }
        for (size_t i = 0; i < o->bulk_conns; i++) {
            rec_free(&r[i]);
        }
        free(r);
    }
}

/* ---- setup ---- */

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (x == NULL) {
        die("X509_new");
    }
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ets.example", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, key);
    if (X509_sign(x, key, NULL) <= 0) {
        die("X509_sign");
    }
    return x;
}

static void setup(void)
{
    W.x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    W.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    W.cert_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (W.x25519 == NULL || W.p256 == NULL || W.cert_key == NULL) {
        die("keygen");
    }
    W.cert = self_signed(W.cert_key);
    msp_error_t err;
    EVP_PKEY *keys[2] = {W.x25519, W.p256};
    if (msp_ets_libctx_new(keys, 2, &W.lib, &err) != MSP_OK) {
        die("msp_ets_libctx_new: %s", err.detail);
    }
    if (msp_ets_server_ctx_new(W.lib, &W.sctx, &err) != MSP_OK) {
        die("msp_ets_server_ctx_new: %s", err.detail);
    }
    if (SSL_CTX_use_certificate(W.sctx, W.cert) != 1 || SSL_CTX_use_PrivateKey(W.sctx, W.cert_key) != 1 ||
        SSL_CTX_set_ciphersuites(W.sctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                         "TLS_CHACHA20_POLY1305_SHA256") != 1) {
        die("server context");
    }
    if ((W.cctx = ets_pair_client_ctx()) == NULL) {
        die("client context");
    }
    SSL_CTX_set_session_cache_mode(W.cctx, SSL_SESS_CACHE_OFF);
}

static void teardown(void)
{
    SSL_CTX_free(W.sctx);
    SSL_CTX_free(W.cctx);
    msp_ets_libctx_free(W.lib);
    X509_free(W.cert);
    EVP_PKEY_free(W.x25519);
    EVP_PKEY_free(W.p256);
    EVP_PKEY_free(W.cert_key);
}

static const char USAGE[] = "usage: bench_ets_dec [options]\n"
                            "  The ETS passive decryptor (msp/ets_dec.h) on connections recorded in memory,\n"
                            "  one core, against the primitives' floors measured in the same run.\n"
                            "  --conns K       recorded handshakes per suite and group (default 200)\n"
                            "  --seconds S     time each handshake case for at least S seconds (default 1)\n"
                            "  --tickets N     ticket store size for the handshake cases, 0 for none (default 65536,\n"
                            "                  as msp ets decrypt)\n"
                            "  --mib M         MiB of server data per bulk connection (default 64)\n"
                            "  --bulk-conns N  bulk connections per suite (default 2)\n"
                            "  --chunk N       feed bulk data in chunks of N bytes (default: 1448 and 65536)\n"
                            "  --passes N      bulk passes; the first and the best are printed (default 3)\n"
                            "  --only WHAT     floors, handshake or bulk (floors are always measured)\n"
                            "  -h, --help      this text\n";

static size_t num(const char *s, const char *opt)
{
    char *end;
    unsigned long long v = s != NULL ? strtoull(s, &end, 10) : 0;
    if (s == NULL || *end != '\0' || *s == '-') {
        fprintf(stderr, "bench_ets_dec: %s needs a number\n%s", opt, USAGE);
        exit(2);
    }
    return (size_t)v;
}

static void parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.conns = 200, .mib = 64, .bulk_conns = 2, .passes = 3, .tickets = 65536, .seconds = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(USAGE, stdout);
            exit(0);
        } else if (strcmp(a, "--conns") == 0) {
            o->conns = num(v, a);
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = v != NULL ? strtod(v, NULL) : 0;
        } else if (strcmp(a, "--tickets") == 0) {
            o->tickets = num(v, a);
        } else if (strcmp(a, "--mib") == 0) {
            o->mib = num(v, a);
        } else if (strcmp(a, "--bulk-conns") == 0) {
            o->bulk_conns = num(v, a);
        } else if (strcmp(a, "--chunk") == 0) {
            o->chunk = num(v, a);
        } else if (strcmp(a, "--passes") == 0) {
            o->passes = num(v, a);
        } else if (strcmp(a, "--only") == 0 && v != NULL) {
            o->only = v;
        } else {
            fprintf(stderr, "bench_ets_dec: unknown option %s\n%s", a, USAGE);
            exit(2);
        }
        i++;
    }
    if (o->conns == 0 || o->mib == 0 || o->bulk_conns == 0 || o->passes == 0 || o->seconds <= 0) {
        fprintf(stderr, "bench_ets_dec: counts must be positive\n%s", USAGE);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    parse(argc, argv, &o);
    setup();
    msp_error_t err;
    msp_ets_keys_t *keys = NULL;
    if (msp_ets_keys_new(&keys) != MSP_OK || msp_ets_keys_add(keys, W.x25519, &err) != MSP_OK ||
        msp_ets_keys_add(keys, W.p256, &err) != MSP_OK) {
        die("static keys");
    }
    printf("%s, one core; conns %zu, tickets %zu, bulk %zu x %zu MiB\n\n", OpenSSL_version(OPENSSL_VERSION), o.conns,
           o.tickets, o.bulk_conns, o.mib);
    printf("%-44s %12s %-8s %12s %6s\n", "case", "value", "unit", "floor", "ratio");
    double fx = derive_rate(W.x25519, o.seconds), fp = derive_rate(W.p256, o.seconds);
    row("floor X25519 derive", fx, "op/s", 0);
    row("floor P-256 derive", fp, "op/s", 0);
    for (size_t s = 0; s < NSUITES; s++) {
        char what[96];
        SUITES[s].floor_mbs = aead_rate(SUITES[s].aead, o.seconds / 2);
        snprintf(what, sizeof(what), "floor %s open 16 KiB records", SUITES[s].aead);
        row(what, SUITES[s].floor_mbs, "MB/s", 0);
    }
    if (o.only == NULL || strcmp(o.only, "handshake") == 0) {
        run_handshakes(&o, keys, "X25519", fx);
        run_handshakes(&o, keys, "P-256", fp);
    }
    if (o.only == NULL || strcmp(o.only, "bulk") == 0) {
        run_bulk(&o, keys);
    }
    msp_ets_keys_free(keys);
    teardown();
    return 0;
}
