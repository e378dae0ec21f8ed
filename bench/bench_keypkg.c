/*
 * ETS key packages (msp/ets_keypkg.h): encode and decode time per package,
 * on one core, for the shapes msp handles:
 *   x25519      one X25519 static key (Type A);
 *   p256        one P-256 static key;
 *   full        both static keys and a P-256 signer (Type B) whose
 *               certificate carries their visibility information;
 *   bad-length  the x25519 package with its outer length in a non-minimal
 *               long form: refused at the first header;
 *   junk        1 MiB of well-formed elements with a bad version: refused at
 *               the first element, however many follow.
 * The floors beside them are the OpenSSL work a decode cannot avoid: an
 * X25519 key from its private half (which derives the public one), and a
 * P-256 pairwise check. Every run is checked (decode result, round trip
 * bytes); no figure is asserted. Times are the thread's CPU time, so that other
 * work on a shared machine counts less.
 *
 * Usage: bench_keypkg [--seconds S] (per measurement, default 1)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "msp/ets.h"
#include "msp/ets_keypkg.h"

#define JUNK_SIZE (1u << 20)
#define BATCH 16 /* operations between two readings of the clock, which costs about a microsecond */

static void die(const char *what)
{
    fprintf(stderr, "bench_keypkg: %s\n", what);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine may be shared */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A self-signed certificate for key with the visibility information of the static keys. */
static X509 *signer_cert(EVP_PKEY *key, const msp_ets_kp_static_t *s, size_t n)
{
    X509 *x = X509_new();
    if (x == NULL || X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || X509_set_pubkey(x, key) != 1) {
        die("certificate");
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t ks[65], fp[MSP_ETS_FINGERPRINT_LEN];
        size_t len;
        if (msp_ets_key_share(s[i].key, ks, sizeof(ks), &len) != MSP_OK || msp_ets_fingerprint(ks, len, fp) != MSP_OK ||
            msp_ets_cert_add(x, fp, "bench", 5) != MSP_OK) {
            die("visibility information");
        }
    }
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        die("signing");
    }
    return x;
}

typedef struct shape {
    const char *name;
    const msp_ets_kp_static_t *s;
    size_t ns;
    const msp_ets_kp_signer_t *g;
    size_t ng;
} shape_t;

static void encode(const shape_t *sh, msp_buf_t *b)
{
    msp_error_t err;
    msp_buf_init(b, MSP_ETS_KP_MAX_SIZE);
    if (msp_ets_keypkg_encode(sh->s, sh->ns, sh->g, sh->ng, b, &err) != MSP_OK) {
        die("encode");
    }
}

static void report(const char *name, const char *op, double seconds, size_t n)
{
    printf("%-11s %-7s %10.0f ns/op %10.0f op/s\n", name, op, seconds * 1e9 / (double)n, (double)n / seconds);
}

static void bench_shape(const shape_t *sh, double budget)
{
    msp_buf_t ref, b;
    encode(sh, &ref);
    size_t n = 0;
    double t0 = now(), t;
    do {
        for (int k = 0; k < BATCH; k++, n++) {
            encode(sh, &b);
            if (b.len != ref.len || memcmp(b.base, ref.base, ref.len) != 0) {
                die("the encoding changed between runs");
            }
            msp_buf_free(&b);
        }
    } while ((t = now() - t0) < budget);
    report(sh->name, "encode", t, n);
    n = 0;
    t0 = now();
    do {
        for (int k = 0; k < BATCH; k++, n++) {
            msp_ets_keypkg_t pkg;
            msp_error_t err;
            if (msp_ets_keypkg_decode(ref.base, ref.len, &pkg, &err) != MSP_OK || pkg.n_static != sh->ns ||
                pkg.n_signer != sh->ng) {
                die("decode");
            }
            msp_ets_keypkg_free(&pkg);
        }
    } while ((t = now() - t0) < budget);
    report(sh->name, "decode", t, n);
    msp_buf_free(&ref);
}

static void bench_refusal(const char *name, const uint8_t *der, size_t len, int want, double budget)
{
    size_t n = 0;
    double t0 = now(), t;
    do {
        for (int k = 0; k < BATCH; k++, n++) {
            msp_ets_keypkg_t pkg;
            msp_error_t err;
            if (msp_ets_keypkg_decode(der, len, &pkg, &err) != want) {
                die("a refusal changed");
            }
        }
    } while ((t = now() - t0) < budget);
    report(name, "decode", t, n);
}

static void bench_floors(EVP_PKEY *p256, double budget)
{
    uint8_t priv[32] = {1};
    size_t n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < BATCH; i++, n++) {
            EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, sizeof(priv));
            uint8_t pub[32];
            size_t pl = sizeof(pub);
            if (k == NULL || EVP_PKEY_get_raw_public_key(k, pub, &pl) != 1) {
                die("X25519 floor");
            }
            EVP_PKEY_free(k);
        }
    } while ((t = now() - t0) < budget);
    report("floor", "x25519", t, n);
    n = 0;
    t0 = now();
    do {
        for (int i = 0; i < BATCH; i++, n++) {
            EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, p256, NULL);
            if (c == NULL || EVP_PKEY_pairwise_check(c) != 1) {
                die("P-256 floor");
            }
            EVP_PKEY_CTX_free(c);
        }
    } while ((t = now() - t0) < budget);
    report("floor", "p256", t, n);
}

/* 1 MiB of well-formed elements with version 5: SEQUENCE { 5, SEQUENCE { OID 1.2 }, OCTET STRING '' }. */
static uint8_t *junk(size_t *len)
{
    static const uint8_t elem[] = {0x30, 0x0a, 0x02, 0x01, 0x05, 0x30, 0x03, 0x06, 0x01, 0x2a, 0x04, 0x00};
    size_t body = (JUNK_SIZE - 5) / sizeof(elem) * sizeof(elem);
    uint8_t *p = malloc(body + 5);
    if (p == NULL) {
        die("out of memory");
    }
    p[0] = 0x30;
    p[1] = 0x83;
    p[2] = (uint8_t)(body >> 16);
    p[3] = (uint8_t)(body >> 8);
    p[4] = (uint8_t)body;
    for (size_t i = 0; i < body; i += sizeof(elem)) {
        memcpy(p + 5 + i, elem, sizeof(elem));
    }
    *len = body + 5;
    return p;
}

int main(int argc, char **argv)
{
    double budget = 1.0;
    if (argc == 3 && strcmp(argv[1], "--seconds") == 0) {
        budget = strtod(argv[2], NULL);
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench_keypkg [--seconds S]\n");
        return 2;
    }
    uint8_t seed[32];
    for (int i = 0; i < 32; i++) {
        seed[i] = (uint8_t)(i + 1);
    }
    EVP_PKEY *x = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, seed, sizeof(seed));
    EVP_PKEY *p = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *sk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (x == NULL || p == NULL || sk == NULL) {
        die("keys");
    }
    msp_ets_kp_static_t s[2] = {{x, 1700000000, 1800000000, 1}, {p, 1700000000, 0, 0}};
    msp_ets_kp_signer_t g = {sk, signer_cert(sk, s, 2)};
    const shape_t shapes[] = {
        {"x25519", &s[0], 1, NULL, 0},
        {"p256", &s[1], 1, NULL, 0},
        {"full", s, 2, &g, 1},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        bench_shape(&shapes[i], budget);
    }
    msp_buf_t b;
    encode(&shapes[0], &b);
    uint8_t *long_form = malloc(b.len + 1);
    if (long_form == NULL || b.base[1] >= 0x80) {
        die("bad-length");
    }
    long_form[0] = 0x30;
    long_form[1] = 0x81;
    memcpy(long_form + 2, b.base + 1, b.len - 1);
    bench_refusal("bad-length", long_form, b.len + 1, MSP_ERR_SYNTAX, budget);
    size_t jlen;
    uint8_t *j = junk(&jlen);
    bench_refusal("junk", j, jlen, MSP_ERR_INVALID, budget);
    bench_floors(p, budget);
    free(j);
    free(long_form);
    msp_buf_free(&b);
    X509_free(g.cert);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(p);
    EVP_PKEY_free(x);
    return 0;
}
