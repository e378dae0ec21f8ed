/*
 * A streaming JSON writer over msp_buf: commas, nesting and string escaping
 * are handled here so that no renderer concatenates JSON by hand. Output is
 * always valid UTF-8 (invalid input bytes become U+FFFD). Errors land in the
 * buffer's sticky error.
 */
#ifndef MSP_JSON_H
#define MSP_JSON_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/buf.h"

#define MSP_JSON_MAX_DEPTH 32

typedef struct msp_json {
    msp_buf_t *out;
    int pretty;
    int depth;
    int after_key;
    unsigned char has_items[MSP_JSON_MAX_DEPTH];
} msp_json_t;

/** Starts writing into out; pretty = 1 indents with two spaces per level. */
MSP_API void msp_json_init(msp_json_t *j, msp_buf_t *out, int pretty);

MSP_API void msp_json_object_begin(msp_json_t *j);
MSP_API void msp_json_object_end(msp_json_t *j);
MSP_API void msp_json_array_begin(msp_json_t *j);
MSP_API void msp_json_array_end(msp_json_t *j);

/** The key of the next member; only inside an object. */
MSP_API void msp_json_key(msp_json_t *j, const char *key);

/** s may be NULL, which writes null. */
MSP_API void msp_json_string(msp_json_t *j, const char *s);
MSP_API void msp_json_string_n(msp_json_t *j, const char *s, size_t len);
MSP_API void msp_json_bool(msp_json_t *j, int v);
MSP_API void msp_json_int(msp_json_t *j, int64_t v);
MSP_API void msp_json_null(msp_json_t *j);

/** Ends the document with a newline; MSP_OK or the buffer's first error. */
MSP_API int msp_json_finish(msp_json_t *j);

/** True when the len bytes at p are valid UTF-8 (no surrogates, no overlong forms). */
MSP_API int msp_utf8_valid(const void *p, size_t len);

#endif
