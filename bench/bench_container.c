/*
 * TLMSP container data path against the crypto it cannot avoid, measured in
 * the same run (tlmsp-records.md 5, performance.md 2.3). For each plaintext
 * size it times:
 *   - the primitives: AES-128-GCM seal of p bytes, SHA-256 of p bytes;
 *   - originate: what an endpoint does per container (fragment seal, writer
 *     MAC, reader-check MAC, check MAC), with nonces from a batched buffer;
 *   - forward: what a middlebox without access does (verify the inbound
 *     reader-check MAC, generate its own forwarding MAC);
 * and prints each path's rate and its ratio to the floor computed from the
 * primitives (originate: GCM + GMAC + SHA-256 over the fragment; forward:
 * two SHA-256 passes). Output: a table, then CSV rows.
 *
 * Usage: bench_container [seconds per measurement, default 0.5]
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msp/error.h"
#include "tlmsp_container.h"

typedef struct job {
    msp_tlmsp_gcm_t g;
    EVP_CIPHER_CTX *raw;
    EVP_MD_CTX *md;
    EVP_MD *sha256;
    uint8_t *plain, *frag;
    size_t p;
    uint8_t nonces[4096];
    size_t used;
} job_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Nonces are drawn 4 KB at a time: RAND_bytes costs about 1 us per call (performance.md 2.3). */
static const uint8_t *nonce(job_t *j)
{
    if (j->used + 12 > sizeof(j->nonces)) {
        if (RAND_bytes(j->nonces, sizeof(j->nonces)) != 1) {
            abort();
        }
        j->used = 0;
    }
    j->used += 12;
    return j->nonces + j->used - 12;
}

static const uint8_t key[16] = {1, 2, 3};

static void prim_gcm(job_t *j)
{
    int n, f;
    uint8_t tag[16];
    /* The key was expanded once, at set-up: a record layer only changes the IV. */
    if (!EVP_EncryptInit_ex(j->raw, NULL, NULL, NULL, nonce(j)) ||
        !EVP_EncryptUpdate(j->raw, j->frag, &n, j->plain, (int)j->p) || !EVP_EncryptFinal_ex(j->raw, j->frag + n, &f) ||
        !EVP_CIPHER_CTX_ctrl(j->raw, EVP_CTRL_GCM_GET_TAG, 16, tag)) {
        abort();
    }
}

static void prim_sha(job_t *j)
{
    uint8_t h[32];
    EVP_DigestInit_ex(j->md, j->sha256, NULL);
    EVP_DigestUpdate(j->md, j->plain, j->p);
    EVP_DigestFinal_ex(j->md, h, NULL);
}

static void originate(job_t *j)
{
    msp_tlmsp_mac_in_t in = {23, 0x01020304, 7, 0, NULL, 0};
    uint8_t wmac[16], rc[16], check[16];
    size_t flen = j->p + MSP_TLMSP_FRAGMENT_OVERHEAD;
    const uint8_t *fm_nonce = nonce(j);
    if (msp_tlmsp_fragment_seal(&j->g, key, &in, nonce(j), j->plain, j->p, j->frag) != MSP_OK ||
        msp_tlmsp_writer_mac(&j->g, key, &in, j->frag, flen, wmac) != MSP_OK ||
        msp_tlmsp_reader_check_mac(&j->g, key, &in, j->frag, flen, fm_nonce, rc) != MSP_OK) {
        abort();
    }
    msp_tlmsp_fmac_t fm = {1, 0, 0, rc, fm_nonce, check};
    if (msp_tlmsp_check_mac(&j->g, key, &in, &fm, NULL, check) != MSP_OK) {
        abort();
    }
}

static void forward(job_t *j)
{
    msp_tlmsp_mac_in_t in = {23, 0x01020304, 7, 0, NULL, 0};
    uint8_t rc[16], mine[16], check[16];
    size_t flen = j->p + MSP_TLMSP_FRAGMENT_OVERHEAD;
    static const uint8_t inbound_nonce[12] = {0x40, 9, 9}; /* the upstream generator's, fixed */
    static uint8_t inbound[16];
    static size_t primed_for;
    if (primed_for != j->p) {
        msp_tlmsp_reader_check_mac(&j->g, key, &in, j->frag, flen, inbound_nonce, inbound);
        primed_for = j->p;
    }
    if (msp_tlmsp_reader_check_mac(&j->g, key, &in, j->frag, flen, inbound_nonce, rc) != MSP_OK ||
        msp_tlmsp_mac_verify(rc, inbound, MSP_ALERT_BAD_READER_MAC) != MSP_OK) {
        abort();
    }
    /* Our own forwarding MAC: the sequence number at the front differs, so no hash state is shared. */
    in.seq = 9;
    const uint8_t *n = nonce(j);
    if (msp_tlmsp_reader_check_mac(&j->g, key, &in, j->frag, flen, n, mine) != MSP_OK) {
        abort();
    }
    msp_tlmsp_fmac_t fm = {0x40, 0, 0x80, mine, n, check};
    if (msp_tlmsp_check_mac(&j->g, key, &in, &fm, NULL, check) != MSP_OK) {
        abort();
    }
}

/* Seconds per call of fn, run for about budget seconds. */
static double per_call(void (*fn)(job_t *), job_t *j, double budget)
{
    size_t n = 0, batch = 64;
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < batch; i++) {
            fn(j);
        }
        n += batch;
        t = now() - t0;
    } while (t < budget);
    return t / (double)n;
}

int main(int argc, char **argv)
{
    double budget = argc > 1 ? atof(argv[1]) : 0.5;
    if (budget <= 0) {
        fprintf(stderr, "usage: bench_container [seconds per measurement > 0]\n");
        return 2;
    }
    static const size_t sizes[] = {16, 1024, 1400, 8192, 16355};
    job_t j;
    memset(&j, 0, sizeof(j));
    j.used = sizeof(j.nonces);
    j.plain = calloc(1, 16384);
    j.frag = calloc(1, 16384 + 64);
    j.raw = EVP_CIPHER_CTX_new();
    j.md = EVP_MD_CTX_new();
    j.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    if (j.sha256 == NULL || aes == NULL || j.plain == NULL || j.frag == NULL || j.raw == NULL || j.md == NULL ||
        msp_tlmsp_gcm_init(&j.g) != MSP_OK || !EVP_EncryptInit_ex(j.raw, aes, NULL, key, NULL)) {
        fprintf(stderr, "bench_container: cannot set up OpenSSL\n");
        return 1;
    }
    printf("%-7s %10s %10s %12s %12s %10s %12s %12s %10s\n", "p", "GCM MB/s", "SHA MB/s", "orig us", "orig MB/s",
           "orig/floor", "fwd us", "fwd MB/s", "fwd/floor");
    char csv[1024] = "";
    size_t csv_len = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        j.p = sizes[i];
        double gcm = per_call(prim_gcm, &j, budget), sha = per_call(prim_sha, &j, budget);
        double orig = per_call(originate, &j, budget), fwd = per_call(forward, &j, budget);
        /* Floors from the primitives of this run: the bulk passes each path cannot avoid. */
        double orig_floor = gcm + sha, fwd_floor = 2 * sha;
        double mb = (double)j.p / 1e6;
        printf("%-7zu %10.0f %10.0f %12.2f %12.0f %10.2f %12.2f %12.0f %10.2f\n", j.p, mb / gcm, mb / sha, orig * 1e6,
               mb / orig, orig_floor / orig, fwd * 1e6, mb / fwd, fwd_floor / fwd);
        csv_len +=
            (size_t)snprintf(csv + csv_len, sizeof(csv) - csv_len, "container,%zu,%.0f,%.0f,%.3f,%.3f,%.3f,%.3f\n", j.p,
                             mb / gcm, mb / sha, orig * 1e6, orig_floor / orig, fwd * 1e6, fwd_floor / fwd);
    }
    printf("\nkind,p,gcm_mbps,sha256_mbps,originate_us,originate_vs_floor,forward_us,forward_vs_floor\n%s", csv);
    EVP_CIPHER_free(aes);
    EVP_MD_free(j.sha256);
    msp_tlmsp_gcm_free(&j.g);
    EVP_CIPHER_CTX_free(j.raw);
    EVP_MD_CTX_free(j.md);
    free(j.plain);
    free(j.frag);
    return 0;
}
