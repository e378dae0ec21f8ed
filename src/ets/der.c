/*
 * DER lengths (definite, minimal) for what ETSI TS 103 523-3 encodes in ASN.1: the VisibilityInformation (4.3.3,
 * ets.md 3.3) and the key packages (4.3.4-4.3.8, ets.md 3.4).
 */
#include "der.h"

void ets_der_put_len(msp_buf_t *out, size_t n)
{
    if (n < 0x80) {
        msp_buf_put_u8(out, (uint8_t)n);
    } else if (n < 0x100) {
        msp_buf_put_u8(out, 0x81);
        msp_buf_put_u8(out, (uint8_t)n);
    } else if (n < 0x10000) {
        msp_buf_put_u8(out, 0x82);
        msp_buf_put_u16(out, (uint16_t)n);
    } else {
        msp_buf_put_u8(out, 0x83);
        msp_buf_put_u24(out, (uint32_t)n);
    }
}

size_t ets_der_len_size(size_t n)
{
    return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}
