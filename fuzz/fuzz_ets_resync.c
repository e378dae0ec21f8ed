/*
 * The decryptor's search for records after a gap (src/ets/dec_resync.c,
 * docs/ets.md "Loss recovery"). The connection is put straight into the state
 * after a handshake: TLS_AES_128_GCM_SHA256, fixed application traffic
 * secrets (0x11 x 32 client, 0x22 x 32 server), so that the input can mix
 * records that authenticate with junk, gaps and fake headers. Operations,
 * each a byte op and its arguments, direction (op >> 2) & 1:
 *
 *   op % 4 == 0  raw bytes: a length byte n, then n + 1 bytes
 *   op % 4 == 1  a gap of (u16 + 1) << ((op >> 3) & 7) bytes (up to 8 MiB)
 *   op % 4 == 2  a record that authenticates, under the next generation's
 *                key when op & 8: sequence number = that key's counter +
 *                (int8), content u16 % 16385 bytes, fed split at a byte
 *   op % 4 == 3  a header 23 3 3 with the next two bytes as its length
 *
 * Checked: every plaintext handed out is one this harness encrypted (its
 * content pattern), i.e. nothing that did not authenticate comes out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../src/ets/dec.h"
#include "msp/error.h"
#include "msp/ets_dec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CONTENT 16384

typedef struct gen {
    uint8_t key[16], iv[12];
    uint64_t next; /* the counter op 2 is relative to */
} gen_t;

typedef struct harness {
    msp_ets_conn_t *c;
    gen_t g[2][2]; /* [dir][generation 0/1] */
    uint8_t rec[5 + MAX_CONTENT + 1 + 16];
    size_t sum;
} harness_t;

static uint8_t content_byte(size_t j)
{
    return (uint8_t)(j * 7 + 3);
}

static void on_plain(void *arg, int dir, uint8_t type, const uint8_t *p, size_t n)
{
    harness_t *h = arg;
    for (size_t j = 0; j < n && type == 23; j++) {
        if (p[j] != content_byte(j)) {
            abort(); /* plaintext that this harness never encrypted */
        }
    }
    h->sum += n + (size_t)dir;
}

static void on_event(void *arg, const msp_ets_event_t *ev)
{
    harness_t *h = arg;
    h->sum += strlen(ev->text) + ev->gap_skipped + ev->records_lost;
}

static void derive(msp_ets_conn_t *c, const uint8_t *secret, gen_t *g)
{
    if (dec_expand_label(c, secret, "key", NULL, 0, g->key, sizeof g->key) != MSP_OK ||
        dec_expand_label(c, secret, "iv", NULL, 0, g->iv, sizeof g->iv) != MSP_OK) {
        abort();
    }
    g->next = 0;
}

/* The connection after a handshake, and the keys of both generations of both directions. */
static void setup(harness_t *h)
{
    static msp_ets_keys_t *keys;
    static const msp_ets_conn_cb_t cb = {on_plain, on_event, NULL};
    if (keys == NULL && msp_ets_keys_new(&keys) != MSP_OK) {
        abort();
    }
    if (msp_ets_conn_new(keys, NULL, &cb, h, &h->c) != MSP_OK) {
        abort();
    }
    msp_ets_conn_t *c = h->c;
    c->suite = dec_suite_find(c->cr, 0x1301, &c->suite_store);
    if (c->suite == NULL || dec_kdf_start(c) != MSP_OK) {
        abort();
    }
    for (int dir = 0; dir < 2; dir++) {
        uint8_t next[32];
        memset(c->d[dir].secret, dir == 0 ? 0x11 : 0x22, 32);
        if (dec_aead_set(c, &c->d[dir].aead, c->d[dir].secret) != MSP_OK ||
            dec_expand_label(c, c->d[dir].secret, "traffic upd", NULL, 0, next, 32) != MSP_OK) {
            abort();
        }
        derive(c, c->d[dir].secret, &h->g[dir][0]);
        derive(c, next, &h->g[dir][1]);
    }
    c->phase = PH_DONE;
}

/* An application data record of n content bytes under g with sequence number seq, into h->rec; its length. */
static size_t seal(harness_t *h, const gen_t *g, uint64_t seq, size_t n)
{
    uint8_t *r = h->rec, nonce[12];
    size_t body = n + 1 + 16;
    r[0] = 23, r[1] = 3, r[2] = 3, r[3] = (uint8_t)(body >> 8), r[4] = (uint8_t)body;
    for (size_t j = 0; j < n; j++) {
        r[5 + j] = content_byte(j);
    }
    r[5 + n] = 23;
    memcpy(nonce, g->iv, 12);
    for (int i = 0; i < 8; i++) {
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
    }
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int outl = 0, fin = 0;
    if (x == NULL || EVP_EncryptInit_ex(x, EVP_aes_128_gcm(), NULL, g->key, nonce) != 1 ||
        EVP_EncryptUpdate(x, NULL, &outl, r, 5) != 1 || EVP_EncryptUpdate(x, r + 5, &outl, r + 5, (int)n + 1) != 1 ||
        EVP_EncryptFinal_ex(x, r + 5 + outl, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, r + 5 + n + 1) != 1) {
        abort();
    }
    EVP_CIPHER_CTX_free(x);
    return 5 + body;
}

static int take(const uint8_t *data, size_t size, size_t *i, size_t n, uint32_t *out)
{
    if (size - *i < n) {
        return 0;
    }
    *out = 0;
    for (size_t k = 0; k < n; k++) {
        *out = *out << 8 | data[(*i)++];
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static harness_t h;
    h.sum = 0;
    setup(&h);
    size_t i = 0;
    uint32_t a = 0, b = 0, s = 0;
    while (i < size && !msp_ets_conn_failed(h.c)) {
        uint8_t op = data[i++];
        int dir = (op >> 2) & 1;
        if (op % 4 == 0 && take(data, size, &i, 1, &a)) {
            size_t n = a + 1 < size - i ? a + 1 : size - i;
            msp_ets_conn_feed(h.c, dir, data + i, n);
            i += n;
        } else if (op % 4 == 1 && take(data, size, &i, 2, &a)) {
            msp_ets_conn_gap(h.c, dir, (uint64_t)(a + 1) << ((op >> 3) & 7));
        } else if (op % 4 == 2 && take(data, size, &i, 1, &s) && take(data, size, &i, 2, &a) &&
                   take(data, size, &i, 1, &b)) {
            gen_t *g = &h.g[dir][(op >> 3) & 1];
            int64_t d = (int8_t)s;
            uint64_t seq = d < 0 && (uint64_t)-d > g->next ? 0 : g->next + (uint64_t)d;
            size_t len = seal(&h, g, seq, a % (MAX_CONTENT + 1));
            g->next = seq + 1;
            size_t cut = b % (len + 1);
            msp_ets_conn_feed(h.c, dir, h.rec, cut);
            msp_ets_conn_feed(h.c, dir, h.rec + cut, len - cut);
        } else if (op % 4 == 3 && take(data, size, &i, 2, &a)) {
            uint8_t hdr[5] = {23, 3, 3, (uint8_t)(a >> 8), (uint8_t)a};
            msp_ets_conn_feed(h.c, dir, hdr, sizeof hdr);
        }
    }
    msp_ets_conn_end(h.c);
    msp_ets_conn_free(h.c);
    h.c = NULL;
    volatile size_t sink = h.sum;
    (void)sink;
    return 0;
}
