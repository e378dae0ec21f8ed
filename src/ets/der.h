/* DER writing shared by the visibility information and the key packages (X.690 definite lengths). */
#ifndef MSP_ETS_DER_H
#define MSP_ETS_DER_H

#include <stddef.h>

#include "msp/buf.h"

/** A definite length in its minimal form (up to 2^24 - 1: everything we write is far smaller). */
void ets_der_put_len(msp_buf_t *out, size_t n);

/** The bytes ets_der_put_len writes for n. */
size_t ets_der_len_size(size_t n);

#endif
