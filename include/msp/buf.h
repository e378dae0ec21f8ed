/*
 * The one writer: a byte buffer with an owner and a stated limit.
 *
 * Errors are sticky, as in BearSSL: after the first failed write every
 * later write is a no-op and msp_buf_error() reports the first failure, so
 * a renderer writes straight through and checks once at the end.
 */
#ifndef MSP_BUF_H
#define MSP_BUF_H

#include "msp/api.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct msp_buf {
    uint8_t *base;
    size_t len;
    size_t cap;
    size_t limit; /* len never exceeds this */
    int owned;    /* base is ours to realloc and free */
    int err;      /* first failure, sticky */
} msp_buf_t;

/** An empty heap buffer that grows up to limit bytes. */
MSP_API void msp_buf_init(msp_buf_t *b, size_t limit);

/** A buffer over caller memory of cap bytes; it never grows or frees. */
MSP_API void msp_buf_init_fixed(msp_buf_t *b, void *storage, size_t cap);

/** Wipes the contents (they may be secrets) and frees owned memory. */
MSP_API void msp_buf_free(msp_buf_t *b);

/** MSP_OK, or the first failure (MSP_ERR_LIMIT, MSP_ERR_NO_MEMORY). */
MSP_API int msp_buf_error(const msp_buf_t *b);

/** Makes room for n more bytes. */
MSP_API int msp_buf_reserve(msp_buf_t *b, size_t n);

MSP_API int msp_buf_put(msp_buf_t *b, const void *p, size_t n);
MSP_API int msp_buf_put_u8(msp_buf_t *b, uint8_t v);
MSP_API int msp_buf_put_u16(msp_buf_t *b, uint16_t v); /* big-endian */
int msp_buf_put_u24(msp_buf_t *b, uint32_t v);
MSP_API int msp_buf_put_u32(msp_buf_t *b, uint32_t v);
MSP_API int msp_buf_put_u64(msp_buf_t *b, uint64_t v);

/** Appends s without its terminator. */
MSP_API int msp_buf_puts(msp_buf_t *b, const char *s);

/** Lower-case hex of p[0..n) into out, which holds 2 * n + 1 bytes (NUL-terminated). */
MSP_API void msp_hex(char *out, const uint8_t *p, size_t n);

/** Appends formatted text (no terminator). */
MSP_API int msp_buf_printf(msp_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
MSP_API int msp_buf_vprintf(msp_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/**
 * Length-prefixed block, the writer's twin of msp_read_block: begin writes a
 * placeholder of prefix_len (1..4) bytes and returns its offset in *mark; end
 * fills in the length of what was written since, or fails with MSP_ERR_LIMIT
 * if it does not fit the prefix.
 */
MSP_API int msp_buf_block_begin(msp_buf_t *b, size_t prefix_len, size_t *mark);
MSP_API int msp_buf_block_end(msp_buf_t *b, size_t prefix_len, size_t mark);

/**
 * Returns the contents as a NUL-terminated string (the NUL is not counted in
 * len), or NULL after an error.
 */
MSP_API const char *msp_buf_cstr(msp_buf_t *b);

#endif
