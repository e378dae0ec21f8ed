#include "msp/buf.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"

void msp_buf_init(msp_buf_t *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
    b->owned = 1;
}

void msp_buf_init_fixed(msp_buf_t *b, void *storage, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->base = storage;
    b->cap = cap;
    b->limit = cap;
}

void msp_buf_free(msp_buf_t *b)
{
    if (b != NULL && b->base != NULL) {
        OPENSSL_cleanse(b->base, b->cap);
        if (b->owned) {
            free(b->base);
        }
    }
    b->base = NULL;
    b->len = b->cap = 0;
}

int msp_buf_error(const msp_buf_t *b)
{
    return b->err;
}

static int fail(msp_buf_t *b, int code)
{
    if (b->err == MSP_OK) {
        b->err = code;
    }
    return b->err;
}

/* Growth doubles, so appending n bytes one at a time costs O(n) overall. */
static int grow(msp_buf_t *b, size_t need)
{
    if (!b->owned) {
        return fail(b, MSP_ERR_LIMIT);
    }
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    }
    if (cap > b->limit) {
        cap = b->limit;
    }
    uint8_t *p = malloc(cap);
    if (p == NULL) {
        return fail(b, MSP_ERR_NO_MEMORY);
    }
    if (b->len > 0) {
        memcpy(p, b->base, b->len);
    }
    /* realloc would leave the old copy unwiped; copy, cleanse, free instead. */
    if (b->base != NULL) {
        OPENSSL_cleanse(b->base, b->cap);
        free(b->base);
    }
    b->base = p;
    b->cap = cap;
    return MSP_OK;
}

int msp_buf_reserve(msp_buf_t *b, size_t n)
{
    if (b->err != MSP_OK) {
        return b->err;
    }
    if (n > b->limit - b->len) {
        return fail(b, MSP_ERR_LIMIT);
    }
    if (b->len + n <= b->cap) {
        return MSP_OK;
    }
    return grow(b, b->len + n);
}

int msp_buf_put(msp_buf_t *b, const void *p, size_t n)
{
    int ret = msp_buf_reserve(b, n);
    if (ret != MSP_OK) {
        return ret;
    }
    if (n > 0) {
        memcpy(b->base + b->len, p, n);
        b->len += n;
    }
    return MSP_OK;
}

static int put_be(msp_buf_t *b, uint64_t v, size_t n)
{
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) {
        tmp[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    return msp_buf_put(b, tmp, n);
}

int msp_buf_put_u8(msp_buf_t *b, uint8_t v)
{
    return put_be(b, v, 1);
}

int msp_buf_put_u16(msp_buf_t *b, uint16_t v)
{
    return put_be(b, v, 2);
}

int msp_buf_put_u24(msp_buf_t *b, uint32_t v)
{
    if (v > 0xffffff) {
        return fail(b, MSP_ERR_ARGUMENT);
    }
    return put_be(b, v, 3);
}

int msp_buf_put_u32(msp_buf_t *b, uint32_t v)
{
    return put_be(b, v, 4);
}

int msp_buf_put_u64(msp_buf_t *b, uint64_t v)
{
    return put_be(b, v, 8);
}

int msp_buf_puts(msp_buf_t *b, const char *s)
{
    return msp_buf_put(b, s, strlen(s));
}

int msp_buf_vprintf(msp_buf_t *b, const char *fmt, va_list ap)
{
    if (b->err != MSP_OK) {
        return b->err;
    }
    /* Formatted straight into the free space when it fits (the usual case: one pass, not a measuring pass
     * and a writing one); only a longer result is formatted again after the buffer has grown. */
    size_t room = b->cap - b->len;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(room > 0 ? (char *)b->base + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return fail(b, MSP_ERR_ARGUMENT);
    }
    if ((size_t)n < room && (size_t)n < b->limit - b->len) {
        b->len += (size_t)n;
        return MSP_OK;
    }
    /* +1 for the terminator vsnprintf writes; it is not counted in len. */
    int ret = msp_buf_reserve(b, (size_t)n + 1);
    if (ret != MSP_OK) {
        return ret;
    }
    vsnprintf((char *)b->base + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return MSP_OK;
}

int msp_buf_printf(msp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int ret = msp_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return ret;
}

int msp_buf_block_begin(msp_buf_t *b, size_t prefix_len, size_t *mark)
{
    if (prefix_len < 1 || prefix_len > 4) {
        return fail(b, MSP_ERR_ARGUMENT);
    }
    *mark = b->len;
    return put_be(b, 0, prefix_len);
}

int msp_buf_block_end(msp_buf_t *b, size_t prefix_len, size_t mark)
{
    if (b->err != MSP_OK) {
        return b->err;
    }
    if (prefix_len < 1 || prefix_len > 4 || mark + prefix_len > b->len) {
        return fail(b, MSP_ERR_ARGUMENT);
    }
    uint64_t n = b->len - mark - prefix_len;
    if (n >> (8 * prefix_len) != 0) {
        return fail(b, MSP_ERR_LIMIT);
    }
    for (size_t i = 0; i < prefix_len; i++) {
        b->base[mark + prefix_len - 1 - i] = (uint8_t)(n >> (8 * i));
    }
    return MSP_OK;
}

const char *msp_buf_cstr(msp_buf_t *b)
{
    if (msp_buf_reserve(b, 1) != MSP_OK) {
        return NULL;
    }
    b->base[b->len] = '\0';
    return (const char *)b->base;
}

/* A table, not snprintf("%02x") per byte: key logs and events print a few hundred bytes of hex per connection. */
void msp_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}
