/*
 * Reads the known-answer files of tests/vectors/ ("label: hex"
 * lines, optionally grouped under "### " headings), so that tests take the
 * reference's values from the files themselves instead of pasting them.
 */
#ifndef MSP_TEST_VECTORS_H
#define MSP_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vec_file {
    char *text; /* the whole file, NUL-terminated */
    size_t len;
} vec_file_t;

/** Loads MSP_VECTORS_DIR/relpath; 0 on success, -1 (with a message on stderr) otherwise. */
int vec_load(vec_file_t *f, const char *relpath);
void vec_free(vec_file_t *f);

/**
 * The start of the section whose heading line begins with heading (e.g.
 * "### V2"), or the start of the file for NULL; NULL if there is none.
 */
const char *vec_section(const vec_file_t *f, const char *heading);

/**
 * Finds, from `from` up to the next "### " heading, the first line that
 * (after leading spaces) starts with label, and decodes the hex digits that
 * follow the first ": " after the label (or, on a line without one, the first " = ") (spaces inside the hex are
 * not allowed; decoding stops at the first non-hex character). Returns the
 * number of bytes written to out, or -1 if the label is missing, the hex is
 * odd-length or longer than max.
 */
long vec_hex(const char *from, const char *label, uint8_t *out, size_t max);

/** Like vec_hex, but copies the raw text after the separator up to the end of line. */
long vec_text(const char *from, const char *label, char *out, size_t max);

/** Decodes a hex string (no separators); -1 on a bad digit, odd length or overflow. */
long vec_unhex(const char *hex, size_t hexlen, uint8_t *out, size_t max);

#endif
