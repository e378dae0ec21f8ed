/*
 * The TLS 1.2 handshake message parsers (msp/tlmsp_tls12.h); the first
 * byte picks the message. A body that parses must rebuild to the same
 * bytes. The one slack: a hello with an empty extensions block (00 00)
 * parses like one with none (next = 0) and rebuilds without it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "tlmsp_tls12.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int client_hello(const uint8_t *p, size_t n, msp_buf_t *b, size_t *next)
{
    static msp_tls12_client_hello_t m;
    int ok = msp_tls12_client_hello_parse(p, n, &m) == MSP_OK;
    *next = m.next;
    return ok && msp_tls12_client_hello_build(&m, b) == MSP_OK;
}

static int server_hello(const uint8_t *p, size_t n, msp_buf_t *b, size_t *next)
{
    static msp_tls12_server_hello_t m;
    int ok = msp_tls12_server_hello_parse(p, n, &m) == MSP_OK;
    *next = m.next;
    return ok && msp_tls12_server_hello_build(&m, b) == MSP_OK;
}

static int certificate(const uint8_t *p, size_t n, msp_buf_t *b)
{
    static msp_tls12_certificate_t m;
    return msp_tls12_certificate_parse(p, n, &m) == MSP_OK && msp_tls12_certificate_build(&m, b) == MSP_OK;
}

static int server_kex(const uint8_t *p, size_t n, msp_buf_t *b)
{
    msp_tls12_server_kex_t m;
    return msp_tls12_server_kex_parse(p, n, &m) == MSP_OK && msp_tls12_server_kex_build(&m, b) == MSP_OK;
}

static int client_kex(const uint8_t *p, size_t n, msp_buf_t *b)
{
    const uint8_t *point;
    size_t len;
    return msp_tls12_client_kex_parse(p, n, &point, &len) == MSP_OK &&
           msp_tls12_client_kex_build(point, len, b) == MSP_OK;
}

/* An extension's u16 list: rebuilt as v16<list>. */
static int u16_list(const uint8_t *p, size_t n, msp_buf_t *b)
{
    const msp_tls12_ext_t e = {MSP_TLS12_EXT_SUPPORTED_GROUPS, p, n};
    const uint8_t *list;
    size_t len;
    if (msp_tls12_ext_u16_list(&e, &list, &len) != MSP_OK) {
        return 0;
    }
    msp_buf_put_u16(b, (uint16_t)len);
    msp_buf_put(b, list, len);
    return msp_buf_error(b) == MSP_OK;
}

/* Identical, or (hellos only) the input is the rebuild plus an empty extensions block. */
static int same(const uint8_t *p, size_t n, const msp_buf_t *b, int hello, size_t next)
{
    if (b->len == n) {
        return n == 0 || memcmp(b->base, p, n) == 0;
    }
    return hello && next == 0 && n == b->len + 2 && p[n - 2] == 0 && p[n - 1] == 0 && memcmp(b->base, p, b->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1, next = 0;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 20);
    int parsed = 0, hello = data[0] % 6 < 2;
    switch (data[0] % 6) {
    case 0:
        parsed = client_hello(p, n, &b, &next);
        break;
    case 1:
        parsed = server_hello(p, n, &b, &next);
        break;
    case 2:
        parsed = certificate(p, n, &b);
        break;
    case 3:
        parsed = server_kex(p, n, &b);
        break;
    case 4:
        parsed = client_kex(p, n, &b);
        break;
    default:
        parsed = u16_list(p, n, &b);
        break;
    }
    if (parsed && !same(p, n, &b, hello, next)) {
        abort();
    }
    msp_buf_free(&b);
    return 0;
}
