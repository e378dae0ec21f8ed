/*
 * The passive TLS 1.3 decryptor (msp/ets_dec.h) on one connection with a
 * fixed X25519 static key. Input framing: a byte h, then (h >> 2) + 1 bytes
 * for direction h & 1; h & 2 on a frame of the client direction with
 * h >> 2 == 63 means a gap instead. Corpus: recorded handshakes with this
 * key (tests/unit/test_ets_dec.c writes them when MSP_ETS_DEC_CORPUS is set).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "msp/ets_dec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzz key: X25519 private key 0x42 * 32 (the same in the corpus writer). */
static msp_ets_keys_t *fuzz_keys(void)
{
    static msp_ets_keys_t *keys;
    if (keys == NULL) {
        uint8_t raw[32];
        memset(raw, 0x42, sizeof(raw));
        EVP_PKEY *k = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, raw, sizeof(raw));
        if (k == NULL || msp_ets_keys_new(&keys) != MSP_OK || msp_ets_keys_add(keys, k, NULL) != MSP_OK) {
            abort();
        }
        EVP_PKEY_free(k);
    }
    return keys;
}

static void on_plain(void *arg, int dir, uint8_t type, const uint8_t *p, size_t n)
{
    size_t *sum = arg;
    *sum += n + (size_t)dir + type + (n > 0 ? p[0] + p[n - 1] : 0); /* touch the bytes */
}

static void on_event(void *arg, const msp_ets_event_t *ev)
{
    size_t *sum = arg;
    *sum += strlen(ev->text) + ev->cert_len + (ev->cert_len > 0 ? ev->cert[ev->cert_len - 1] : 0);
    if (ev->kind == MSP_ETS_EV_HANDSHAKE) {
        *sum += strlen(ev->sni) + strlen(ev->alpn);
    }
}

static void on_keylog(void *arg, const char *label, const uint8_t cr[32], const uint8_t *secret, size_t len)
{
    size_t *sum = arg;
    *sum += strlen(label) + cr[31] + secret[len - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const msp_ets_conn_cb_t cb = {on_plain, on_event, on_keylog};
    static msp_ets_tickets_t *tickets;
    size_t sum = 0;
    if (tickets == NULL && msp_ets_tickets_new(4, &tickets) != MSP_OK) {
        abort();
    }
    msp_ets_conn_t *c = NULL;
    if (msp_ets_conn_new(fuzz_keys(), tickets, &cb, &sum, &c) != MSP_OK) {
        abort();
    }
    size_t i = 0;
    while (i < size) {
        uint8_t h = data[i++];
        size_t n = (size_t)(h >> 2) + 1;
        if ((h & 3) == 2 && n == 64) {
            msp_ets_conn_gap(c, 0, 7);
            continue;
        }
        n = n > size - i ? size - i : n;
        msp_ets_conn_feed(c, h & 1, data + i, n);
        i += n;
    }
    msp_ets_conn_end(c);
    msp_ets_conn_free(c);
    volatile size_t sink = sum;
    (void)sink;
    return 0;
}
