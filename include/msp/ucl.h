/*
 * A parser for UCL, the configuration language of libucl (vstakhov/libucl),
 * which the ETSI TLMSP reference reads its .ucl files with and which our
 * framework profiles are written in. Debian 12 does not package libucl, so
 * msp carries its own parser with libucl's semantics for the parts of the
 * language those files use, and a clear error for the rest.
 *
 * The whole tree lives in one arena owned by the returned document: one
 * free, no per-node ownership. Every node records the line it starts on, so
 * a later semantic check can say where, not only what.
 */
#ifndef MSP_UCL_H
#define MSP_UCL_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/error.h"

typedef enum msp_ucl_type {
    MSP_UCL_NULL,
    MSP_UCL_BOOL,
    MSP_UCL_INT,
    MSP_UCL_FLOAT,
    MSP_UCL_TIME, /* a number with a time suffix (10ms, 5s, 2min): seconds in .f */
    MSP_UCL_STRING,
    MSP_UCL_OBJECT,
    MSP_UCL_ARRAY,
} msp_ucl_type_t;

typedef struct msp_ucl msp_ucl_t;
struct msp_ucl {
    msp_ucl_type_t type;
    uint32_t line;   /* 1-based line where the value (or its key) starts */
    const char *key; /* NUL-terminated; NULL for array elements and the root */
    msp_ucl_t *next; /* next sibling in the parent object or array */
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *s; /* NUL-terminated; may also contain NUL bytes */
            size_t len;
        } str;
        struct {
            msp_ucl_t *first;
            msp_ucl_t *last;
            size_t count;
        } kids; /* OBJECT and ARRAY */
    } v;
};

typedef struct msp_ucl_limits {
    size_t max_input; /* bytes of text */
    size_t max_depth; /* nesting of objects and arrays */
    size_t max_nodes;
} msp_ucl_limits_t;

/** Limits fit for hand-written configuration: 4 MiB, depth 64, 200k nodes. */
extern const msp_ucl_limits_t msp_ucl_default_limits;

typedef struct msp_ucl_doc msp_ucl_doc_t;

/**
 * Parses len bytes of UCL (or JSON) text. On success *doc owns the tree and
 * msp_ucl_root() is an OBJECT (or whatever the text's single top-level value
 * is). On failure returns MSP_ERR_SYNTAX or MSP_ERR_LIMIT (MSP_ERR_NO_MEMORY)
 * with err->where = "LINE" (decimal line number) and err->detail saying what
 * was expected, and *doc is NULL. limits may be NULL for the defaults.
 */
MSP_API int msp_ucl_parse(const char *text, size_t len, const msp_ucl_limits_t *limits, msp_ucl_doc_t **doc,
                          msp_error_t *err);

/** The top-level value of a parsed document. */
MSP_API const msp_ucl_t *msp_ucl_root(const msp_ucl_doc_t *doc);

/** Frees the document and every node in it. NULL is fine. */
MSP_API void msp_ucl_free(msp_ucl_doc_t *doc);

/**
 * The first child of obj with this key, or NULL. Repeated keys stay as
 * separate children in file order (libucl's "implicit array"); use
 * msp_ucl_count_key() to find them and walk ->next to visit them.
 */
MSP_API const msp_ucl_t *msp_ucl_lookup(const msp_ucl_t *obj, const char *key);

/** How many children of obj carry this key. */
MSP_API size_t msp_ucl_count_key(const msp_ucl_t *obj, const char *key);

/** A static name for a type ("string", "object", ...). */
MSP_API const char *msp_ucl_type_name(msp_ucl_type_t type);

#endif
