/* DER framing shared by the visibility information and the key packages (X.690 definite lengths). */
#ifndef MSP_ETS_DER_H
#define MSP_ETS_DER_H

#include <stddef.h>

#include "msp/buf.h"
#include "reader.h"

/** A definite length in its minimal form (up to 2^24 - 1: everything we write is far smaller). */
void ets_der_put_len(msp_buf_t *out, size_t n);

/** The bytes ets_der_put_len writes for n. */
size_t ets_der_len_size(size_t n);

/**
 * One TLV of the expected (one-octet) tag with a definite length in its minimal form (X.690 10.1), of at most 3
 * length octets; its content in *value. MSP_ERR_SYNTAX otherwise, r left where it was.
 */
int ets_der_read(msp_reader_t *r, uint8_t tag, msp_reader_t *value);

#endif
