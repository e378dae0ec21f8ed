/*
 * The middlebox handshake message parsers (tlmsp-handshake.md 5.1-5.4,
 * 5.7); the first byte picks the message. A body that parses must rebuild
 * to as many bytes (MiddleboxHello's unchecked version aside, the
 * encodings have no slack).
 */
#include <stdint.h>
#include <stdlib.h>

#include "msp/error.h"
#include "tlmsp_mbox_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 20);
    int parsed = 0;
    switch (data[0] % 5) {
    case 0: {
        msp_tlmsp_mbox_hello_t m;
        parsed = msp_tlmsp_mbox_hello_parse(p, n, &m) == MSP_OK && msp_tlmsp_mbox_hello_build(&m, &b) == MSP_OK;
        break;
    }
    case 1: {
        static msp_tlmsp_mbox_cert_t m;
        parsed = msp_tlmsp_mbox_cert_parse(p, n, &m) == MSP_OK && msp_tlmsp_mbox_cert_build(&m, &b) == MSP_OK;
        break;
    }
    case 2: {
        msp_tlmsp_mbox_kex_t m;
        parsed = msp_tlmsp_mbox_kex_parse(p, n, &m) == MSP_OK && msp_tlmsp_mbox_kex_build(&m, &b) == MSP_OK;
        break;
    }
    case 3: {
        uint8_t id;
        parsed =
            msp_tlmsp_mbox_hello_done_parse(p, n, &id) == MSP_OK && msp_tlmsp_mbox_hello_done_build(id, &b) == MSP_OK;
        break;
    }
    default: {
        msp_tlmsp_mbox_finished_t m;
        parsed = msp_tlmsp_mbox_finished_parse(p, n, &m) == MSP_OK && msp_tlmsp_mbox_finished_build(&m, &b) == MSP_OK;
        break;
    }
    }
    if (parsed && b.len != n) {
        abort();
    }
    msp_buf_free(&b);
    return 0;
}
