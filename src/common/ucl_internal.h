/*
 * Private to the UCL parser (ucl.c, ucl_parse.c, ucl_lex.c): the parser
 * state and the helpers the files share. Nothing here is public API; the
 * msp_uclp_ prefix only keeps the linker namespace clean.
 */
#ifndef MSP_UCL_INTERNAL_H
#define MSP_UCL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msp/error.h"
#include "msp/ucl.h"

/* An open object or array. */
typedef struct ucl_frame {
    msp_ucl_t *node;
    const char *open; /* its '{' or '[' (the text start for the implicit top-level object) */
    size_t depth;     /* the top-level value is depth 1 */
    bool brace;       /* false only for the implicit top-level object */
} ucl_frame_t;

/* A slot of the table (parent, key) -> the section object that named sections `key name { }` merge into. */
typedef struct ucl_sect {
    const msp_ucl_t *parent;
    msp_ucl_t *child; /* NULL: empty slot */
} ucl_sect_t;

typedef struct ucl_parser {
    const char *text;
    const char *p; /* the cursor */
    const char *end;
    const char *lpos; /* ucl_line_at's memory: lline is the line of lpos */
    size_t lline;
    msp_ucl_limits_t lim;
    size_t nodes;
    msp_ucl_doc_t *doc;
    ucl_frame_t *frames;
    size_t nframes;
    size_t fcap;
    ucl_sect_t *sects;
    size_t nsects;
    size_t scap;
    bool ahead_valid; /* section_ahead's memory: the first stop byte at or after ahead_from */
    const char *ahead_from;
    const char *ahead_stop;
    msp_error_t *err;
} ucl_parser_t;

/* Room for a quoted character or a shortened key in an error message. */
#define UCL_SHOW_MAX 48

/* Arena memory owned by the document, aligned for any type; NULL when out of memory. */
void *msp_uclp_alloc(ucl_parser_t *ps, size_t n);

/* A NUL-terminated arena copy of n bytes; NULL when out of memory. */
const char *msp_uclp_copy(ucl_parser_t *ps, const char *s, size_t n);

/* The 1-based line of a position in the text. */
uint32_t msp_uclp_line_at(ucl_parser_t *ps, const char *at);

/* Records an error at the line of at and returns code. */
int msp_uclp_fail(ucl_parser_t *ps, int code, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int msp_uclp_no_memory(ucl_parser_t *ps, const char *at);

/* The character at at, for an error message: 'x', "byte 0x0c", "end of line" or "end of input". */
const char *msp_uclp_show_char(const ucl_parser_t *ps, const char *at, char buf[UCL_SHOW_MAX]);

/* n bytes of text made printable and short enough for an error message. */
const char *msp_uclp_show_text(const char *s, size_t n, char buf[UCL_SHOW_MAX]);

/* True when a '#' or '/ *' comment starts at p. */
bool msp_uclp_at_comment(const ucl_parser_t *ps, const char *p);

/* Skips the comment at the cursor ('#' up to, not including, the newline). */
int msp_uclp_skip_comment(ucl_parser_t *ps);

/* Skips spaces, tabs, newlines and comments. */
int msp_uclp_skip_blank(ucl_parser_t *ps);

/* The double-quoted string at the cursor, unescaped into the arena (NUL-terminated; may hold NULs). */
int msp_uclp_lex_dquote(ucl_parser_t *ps, const char **s, size_t *n);

/* The scalar at the cursor (not '{' or '['): a string, number, boolean or null, stored in v. */
int msp_uclp_lex_scalar(ucl_parser_t *ps, msp_ucl_t *v);

/* The structural parser (ucl_parse.c): fills ps->doc->root from the text. */
int msp_uclp_parse_top(ucl_parser_t *ps);

/* The document's root, set once the top-level value is created. */
void msp_uclp_set_root(ucl_parser_t *ps, msp_ucl_t *root);

#endif
