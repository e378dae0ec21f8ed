/*
 * The record layer and the handshake parsers as a peer reaches them: bytes
 * fed to a fresh TLMSP server (first input byte even) or middlebox (odd),
 * in chunks whose sizes come from the input, so partial records, several
 * records per chunk and every framing path are exercised. Whatever comes
 * in, the connection must either go on or fail with an alert, never crash
 * or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "msp/tlmsp_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;
static uint8_t *der;
static size_t der_len;

/* One P-256 self-signed certificate for the whole run (key generation is not what is being fuzzed). */
static int identity(void)
{
    if (key != NULL) {
        return 0;
    }
    key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = key != NULL && x != NULL && X509_set_pubkey(x, key) && X509_sign(x, key, EVP_sha256()) > 0;
    unsigned char *d = NULL;
    int len = ok ? i2d_X509(x, &d) : -1;
    X509_free(x);
    der = d;
    der_len = len > 0 ? (size_t)len : 0;
    return len > 0 ? 0 : -1;
}

static void counter_random(void *user, uint8_t *buf, size_t len)
{
    uint8_t *c = user;
    for (size_t i = 0; i < len; i++) {
        buf[i] = (*c)++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || identity() != 0) {
        return 0;
    }
    uint8_t counter = 0;
    const uint8_t *ders[1] = {der};
    size_t lens[1] = {der_len};
    msp_tlmsp_identity_t id = {key, ders, lens, 1};
    msp_tlmsp_conn_t *conn = NULL;
    msp_tlmsp_mbox_t *mbox = NULL;
    int as_mbox = data[0] & 1;
    size_t chunk = 1 + data[1] * 7;
    if (as_mbox) {
        msp_tlmsp_mbox_cfg_t c;
        memset(&c, 0, sizeof(c));
        c.random = counter_random;
        c.random_user = &counter;
        c.address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://localhost:10481", 23};
        c.identity = id;
        if (msp_tlmsp_mbox_new(&c, &mbox) != MSP_OK) {
            abort();
        }
    } else {
        msp_tlmsp_endpoint_cfg_t c;
        memset(&c, 0, sizeof(c));
        c.random = counter_random;
        c.random_user = &counter;
        c.identity = id;
        if (msp_tlmsp_conn_new(MSP_TLMSP_ID_SERVER, &c, &conn) != MSP_OK) {
            abort();
        }
    }
    msp_buf_t a, b;
    msp_buf_init(&a, 1u << 22);
    msp_buf_init(&b, 1u << 22);
    int ret = MSP_OK;
    for (size_t off = 2; off < size && ret == MSP_OK; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk, used = n;
        ret = as_mbox ? msp_tlmsp_mbox_input(mbox, (off / chunk) % 5 == 4, data + off, &used, &a, &b)
                      : msp_tlmsp_conn_input(conn, data + off, &used, &a);
        if (ret == MSP_OK && used != n) {
            abort(); /* the contract: everything is consumed unless an error stopped it */
        }
        a.len = b.len = 0;
    }
    msp_buf_free(&a);
    msp_buf_free(&b);
    msp_tlmsp_conn_free(conn);
    msp_tlmsp_mbox_free(mbox);
    return 0;
}
