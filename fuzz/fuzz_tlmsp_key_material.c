/*
 * MiddleboxKeyMaterial / KeyConfirmation bodies (tlmsp-handshake.md 5.5,
 * 5.6): the envelope under a fixed key, and the contributions list parsed
 * directly (the fuzzer cannot forge a GCM tag, so the decoder is also fed
 * the raw bytes), then re-encoded.
 */
#include <stdint.h>
#include <stdlib.h>

#include "msp/error.h"
#include "msp/tlmsp_keymat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static msp_tlmsp_gcm_t g;
    static msp_tlmsp_contrib_t c;
    static uint8_t plain[MSP_TLMSP_KEYMAT_MAX_BODY];
    static const uint8_t key[16] = {3};
    if (g.ctx == NULL && msp_tlmsp_gcm_init(&g) != MSP_OK) {
        abort();
    }
    uint8_t id;
    size_t n;
    msp_tlmsp_keymat_open(&g, key, data, size, &id, plain, &n);
    if (msp_tlmsp_contrib_decode(data, size, &c) == MSP_OK) {
        uint8_t access[256];
        for (int i = 0; i < 256; i++) {
            access[i] = MSP_TLMSP_CAN_ALL;
        }
        msp_buf_t b;
        msp_buf_init(&b, 1u << 16);
        /* Everything decoded re-encodes to as many bytes when nothing is filtered out (order may differ). */
        if (msp_tlmsp_contrib_encode(&c, access, &b) != MSP_OK || b.len != size) {
            abort();
        }
        msp_buf_free(&b);
    }
    return 0;
}
