/*
 * DER lengths (definite, minimal) for what ETSI TS 103 523-3 encodes in ASN.1: the VisibilityInformation (4.3.3,
 * ets.md 3.3) and the key packages (4.3.4-4.3.8, ets.md 3.4).
 */
#include "der.h"

#include "msp/error.h"

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

int ets_der_read(msp_reader_t *r, uint8_t tag, msp_reader_t *value)
{
    msp_reader_t save = *r;
    uint8_t t, l0;
    size_t len = 0;
    int ok = msp_read_u8(r, &t) == MSP_OK && t == tag && msp_read_u8(r, &l0) == MSP_OK;
    if (ok && l0 < 0x80) {
        len = l0;
    } else if (ok && l0 == 0x81) {
        uint8_t v;
        ok = msp_read_u8(r, &v) == MSP_OK && v >= 0x80;
        len = v;
    } else if (ok && l0 == 0x82) {
        uint16_t v;
        ok = msp_read_u16(r, &v) == MSP_OK && v >= 0x100;
        len = v;
    } else if (ok && l0 == 0x83) {
        uint32_t v;
        ok = msp_read_u24(r, &v) == MSP_OK && v >= 0x10000;
        len = v;
    } else {
        ok = 0; /* indefinite (0x80), or longer than anything we accept */
    }
    if (!ok || msp_read_sub(r, len, value) != MSP_OK) {
        *r = save;
        return MSP_ERR_SYNTAX;
    }
    return MSP_OK;
}
