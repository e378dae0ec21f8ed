/*
 * The TLMSP hello extension parsers (tlmsp-handshake.md 3.2-3.4): the first
 * byte picks ClientHello 0xff06, ServerHello 0xff06 or the ContextList.
 * Whatever parses must rebuild into something that parses to the same
 * values (the rebuild is canonical, so it can be shorter than the input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "msp/tlmsp_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void client(const uint8_t *p, size_t n)
{
    static msp_tlmsp_ext_client_t e, back;
    if (msp_tlmsp_ext_client_parse(p, n, &e) != MSP_OK) {
        return;
    }
    msp_buf_t b;
    msp_buf_init(&b, 1u << 22);
    if (msp_tlmsp_ext_client_build(&e, &b) != MSP_OK || msp_tlmsp_ext_client_parse(b.base, b.len, &back) != MSP_OK ||
        back.middleboxes.n != e.middleboxes.n || back.discovered.n != e.discovered.n) {
        abort();
    }
    for (size_t i = 0; i < e.middleboxes.n; i++) {
        if (memcmp(back.middleboxes.m[i].access, e.middleboxes.m[i].access, 256) != 0) {
            abort();
        }
    }
    msp_buf_free(&b);
}

static void server(const uint8_t *p, size_t n)
{
    static msp_tlmsp_ext_server_t e, back;
    if (msp_tlmsp_ext_server_parse(p, n, &e) != MSP_OK) {
        return;
    }
    msp_buf_t b;
    msp_buf_init(&b, 1u << 22);
    if (msp_tlmsp_ext_server_build(&e, &b) != MSP_OK || msp_tlmsp_ext_server_parse(b.base, b.len, &back) != MSP_OK ||
        back.sid != e.sid || back.middleboxes.n != e.middleboxes.n) {
        abort();
    }
    msp_buf_free(&b);
}

static void contexts(const uint8_t *p, size_t n)
{
    static msp_tlmsp_context_list_t c, back;
    if (msp_tlmsp_context_list_parse(p, n, &c) != MSP_OK) {
        return;
    }
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    if (msp_tlmsp_context_list_build(&c, &b) != MSP_OK || b.len != n ||
        msp_tlmsp_context_list_parse(b.base, b.len, &back) != MSP_OK ||
        memcmp(back.present, c.present, sizeof(c.present)) != 0) {
        abort();
    }
    msp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    switch (data[0] % 3) {
    case 0:
        client(data + 1, size - 1);
        break;
    case 1:
        server(data + 1, size - 1);
        break;
    default:
        contexts(data + 1, size - 1);
        break;
    }
    return 0;
}
