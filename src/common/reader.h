/*
 * The one bounds-checked reader for bytes that come from outside.
 *
 * Every length read from input opens a sub-reader with its own end
 * (msp_read_block), so a parser cannot step past the field it is in;
 * msp_reader_expect_end() then checks that the field was consumed exactly.
 * A failed read leaves the reader where it was and returns
 * MSP_ALERT_DECODE_ERROR.
 */
#ifndef MSP_READER_H
#define MSP_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct msp_reader {
    const uint8_t *pos;
    const uint8_t *end;
} msp_reader_t;

/** A reader over len bytes at p (p may be NULL when len is 0). */
void msp_reader_init(msp_reader_t *r, const void *p, size_t len);

/** Bytes not yet read. */
size_t msp_reader_left(const msp_reader_t *r);

int msp_read_u8(msp_reader_t *r, uint8_t *v);
int msp_read_u16(msp_reader_t *r, uint16_t *v); /* big-endian, as on the wire */
int msp_read_u24(msp_reader_t *r, uint32_t *v);
int msp_read_u32(msp_reader_t *r, uint32_t *v);
int msp_read_u64(msp_reader_t *r, uint64_t *v);

/** Looks at the next byte without consuming it. */
int msp_peek_u8(const msp_reader_t *r, uint8_t *v);

/** A view of the next n bytes (no copy); *p points into the input. */
int msp_read_bytes(msp_reader_t *r, size_t n, const uint8_t **p);

/** Copies the next n bytes into dst. */
int msp_read_copy(msp_reader_t *r, void *dst, size_t n);

/** Splits the next n bytes off into sub. */
int msp_read_sub(msp_reader_t *r, size_t n, msp_reader_t *sub);

/**
 * Reads a big-endian length of prefix_len (1..4) bytes, then splits that many
 * bytes off into sub: the TLS vector<..> of RFC 5246 4.3.
 */
int msp_read_block(msp_reader_t *r, size_t prefix_len, msp_reader_t *sub);

/** MSP_OK when nothing is left, else MSP_ALERT_DECODE_ERROR. */
int msp_reader_expect_end(const msp_reader_t *r);

#endif
