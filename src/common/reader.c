#include "reader.h"

#include <string.h>

#include "msp/error.h"

void msp_reader_init(msp_reader_t *r, const void *p, size_t len)
{
    r->pos = p;
    r->end = p != NULL ? r->pos + len : r->pos; /* NULL + 0 is undefined in C */
}

size_t msp_reader_left(const msp_reader_t *r)
{
    return (size_t)(r->end - r->pos);
}

/* All fixed-width reads go through here, so the bound is checked once. */
static int read_be(msp_reader_t *r, size_t n, uint64_t *v)
{
    if (msp_reader_left(r) < n) {
        return MSP_ALERT_DECODE_ERROR;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        x = (x << 8) | r->pos[i];
    }
    r->pos += n;
    *v = x;
    return MSP_OK;
}

int msp_read_u8(msp_reader_t *r, uint8_t *v)
{
    uint64_t x;
    int ret = read_be(r, 1, &x);
    if (ret == MSP_OK) {
        *v = (uint8_t)x;
    }
    return ret;
}

int msp_read_u16(msp_reader_t *r, uint16_t *v)
{
    uint64_t x;
    int ret = read_be(r, 2, &x);
    if (ret == MSP_OK) {
        *v = (uint16_t)x;
    }
    return ret;
}

int msp_read_u24(msp_reader_t *r, uint32_t *v)
{
    uint64_t x;
    int ret = read_be(r, 3, &x);
    if (ret == MSP_OK) {
        *v = (uint32_t)x;
    }
    return ret;
}

int msp_read_u32(msp_reader_t *r, uint32_t *v)
{
    uint64_t x;
    int ret = read_be(r, 4, &x);
    if (ret == MSP_OK) {
        *v = (uint32_t)x;
    }
    return ret;
}

int msp_read_u64(msp_reader_t *r, uint64_t *v)
{
    return read_be(r, 8, v);
}

int msp_peek_u8(const msp_reader_t *r, uint8_t *v)
{
    if (msp_reader_left(r) < 1) {
        return MSP_ALERT_DECODE_ERROR;
    }
    *v = r->pos[0];
    return MSP_OK;
}

int msp_read_bytes(msp_reader_t *r, size_t n, const uint8_t **p)
{
    if (msp_reader_left(r) < n) {
        return MSP_ALERT_DECODE_ERROR;
    }
    *p = r->pos;
    r->pos += n;
    return MSP_OK;
}

int msp_read_copy(msp_reader_t *r, void *dst, size_t n)
{
    const uint8_t *p;
    int ret = msp_read_bytes(r, n, &p);
    if (ret == MSP_OK && n > 0) {
        memcpy(dst, p, n);
    }
    return ret;
}

int msp_read_sub(msp_reader_t *r, size_t n, msp_reader_t *sub)
{
    const uint8_t *p;
    int ret = msp_read_bytes(r, n, &p);
    if (ret == MSP_OK) {
        sub->pos = p;
        sub->end = p + n;
    }
    return ret;
}

int msp_read_block(msp_reader_t *r, size_t prefix_len, msp_reader_t *sub)
{
    if (prefix_len < 1 || prefix_len > 4) {
        return MSP_ERR_ARGUMENT;
    }
    msp_reader_t save = *r;
    uint64_t n;
    int ret = read_be(r, prefix_len, &n);
    if (ret == MSP_OK) {
        ret = msp_read_sub(r, (size_t)n, sub);
    }
    if (ret != MSP_OK) {
        *r = save;
    }
    return ret;
}

int msp_reader_expect_end(const msp_reader_t *r)
{
    return msp_reader_left(r) == 0 ? MSP_OK : MSP_ALERT_DECODE_ERROR;
}
