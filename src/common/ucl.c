/*
 * The UCL parser's document: the public API, the arena every node and
 * string lives in, and the line and error helpers the parser shares.
 * The grammar of objects, arrays, keys and sections is in ucl_parse.c,
 * the lexing of scalars and comments in ucl_lex.c.
 *
 * Every node, key and string is carved from the document's arena, so a
 * failed parse frees everything with one call and returns nothing, and a
 * successful one is freed the same way.
 */
#include "ucl_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const msp_ucl_limits_t msp_ucl_default_limits = {
    .max_input = (size_t)4 << 20,
    .max_depth = 64,
    .max_nodes = 200000,
};

/*
 * Arena. Small allocations share 16 KiB blocks; a large one (a long string)
 * gets a block of its own, linked behind the current block so that the
 * space left in the current block is not thrown away.
 */
#define ARENA_BLOCK ((size_t)16384)
#define ARENA_ALIGN (_Alignof(max_align_t))

typedef struct ucl_block {
    struct ucl_block *next;
    size_t cap;
    size_t used;
    max_align_t data[];
} ucl_block_t;

struct msp_ucl_doc {
    ucl_block_t *blocks;
    msp_ucl_t *root;
};

void *msp_uclp_alloc(ucl_parser_t *ps, size_t n)
{
    msp_ucl_doc_t *doc = ps->doc;
    if (n > SIZE_MAX - ARENA_ALIGN - sizeof(ucl_block_t)) {
        return NULL;
    }
    size_t need = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    ucl_block_t *b = doc->blocks;
    if (b != NULL && b->cap - b->used >= need) {
        void *p = (unsigned char *)b->data + b->used;
        b->used += need;
        return p;
    }
    size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
    ucl_block_t *nb = malloc(sizeof(*nb) + cap);
    if (nb == NULL) {
        return NULL;
    }
    nb->cap = cap;
    nb->used = need;
    if (b != NULL && need > ARENA_BLOCK / 4) {
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        doc->blocks = nb;
    }
    return nb->data;
}

const char *msp_uclp_copy(ucl_parser_t *ps, const char *s, size_t n)
{
    char *d = msp_uclp_alloc(ps, n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/*
 * Lines. The cursor moves forward through the text, so the line of a
 * position is found by counting newlines from the last position asked
 * about; the rare look backwards (an error naming where a bracket opened)
 * counts back the same way.
 */
uint32_t msp_uclp_line_at(ucl_parser_t *ps, const char *at)
{
    while (ps->lpos < at) {
        const char *nl = memchr(ps->lpos, '\n', (size_t)(at - ps->lpos));
        if (nl == NULL) {
            ps->lpos = at;
            break;
        }
        ps->lline++;
        ps->lpos = nl + 1;
    }
    while (ps->lpos > at) {
        ps->lpos--;
        if (*ps->lpos == '\n') {
            ps->lline--;
        }
    }
    return ps->lline > UINT32_MAX ? UINT32_MAX : (uint32_t)ps->lline;
}

int msp_uclp_fail(ucl_parser_t *ps, int code, const char *at, const char *fmt, ...)
{
    char where[24];
    char detail[256];
    snprintf(where, sizeof(where), "%" PRIu32, msp_uclp_line_at(ps, at));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return msp_error_set(ps->err, code, where, "%s", detail);
}

int msp_uclp_no_memory(ucl_parser_t *ps, const char *at)
{
    return msp_uclp_fail(ps, MSP_ERR_NO_MEMORY, at, "out of memory");
}

const char *msp_uclp_show_char(const ucl_parser_t *ps, const char *at, char buf[UCL_SHOW_MAX])
{
    if (at >= ps->end) {
        return "end of input";
    }
    unsigned char c = (unsigned char)*at;
    if (c == '\n') {
        return "end of line";
    }
    if (c > ' ' && c < 0x7f) {
        snprintf(buf, UCL_SHOW_MAX, "'%c'", c);
    } else {
        snprintf(buf, UCL_SHOW_MAX, "byte 0x%02x", c);
    }
    return buf;
}

const char *msp_uclp_show_text(const char *s, size_t n, char buf[UCL_SHOW_MAX])
{
    /* Error text is one printable line: anything else in a key becomes '?'. */
    size_t max = UCL_SHOW_MAX - 4;
    size_t i = 0;
    for (; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c >= ' ' && c < 0x7f ? (char)c : '?';
    }
    if (i < n) {
        memcpy(buf + max - 3, "...", 3);
    }
    buf[i] = '\0';
    return buf;
}

/* ---- public API ---- */

static uint32_t line_of_offset(const char *text, size_t off)
{
    size_t line = 1;
    for (const char *p = text, *end = text + off; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
        line++;
    }
    return line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
}

int msp_ucl_parse(const char *text, size_t len, const msp_ucl_limits_t *limits, msp_ucl_doc_t **doc, msp_error_t *err)
{
    if (doc == NULL || (text == NULL && len > 0)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "msp_ucl_parse needs text and a place for the document");
    }
    *doc = NULL;
    const msp_ucl_limits_t *lim = limits != NULL ? limits : &msp_ucl_default_limits;
    if (len > lim->max_input) {
        char where[24];
        snprintf(where, sizeof(where), "%" PRIu32, line_of_offset(text, lim->max_input));
        return msp_error_set(err, MSP_ERR_LIMIT, where, "the text is %zu bytes, more than the limit of %zu", len,
                             lim->max_input);
    }
    if (text == NULL) {
        text = "";
    }
    ucl_parser_t ps = {
        .text = text,
        .p = text,
        .end = text + len,
        .lpos = text,
        .lline = 1,
        .lim = *lim,
        .err = err,
    };
    ps.doc = calloc(1, sizeof(*ps.doc));
    if (ps.doc == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, "1", "out of memory");
    }
    int rc = msp_uclp_parse_top(&ps);
    free(ps.frames);
    free(ps.sects);
    if (rc != MSP_OK) {
        msp_ucl_free(ps.doc);
        return rc;
    }
    *doc = ps.doc;
    return MSP_OK;
}

void msp_uclp_set_root(ucl_parser_t *ps, msp_ucl_t *root)
{
    ps->doc->root = root;
}

const msp_ucl_t *msp_ucl_root(const msp_ucl_doc_t *doc)
{
    return doc != NULL ? doc->root : NULL;
}

void msp_ucl_free(msp_ucl_doc_t *doc)
{
    if (doc == NULL) {
        return;
    }
    ucl_block_t *b = doc->blocks;
    while (b != NULL) {
        ucl_block_t *next = b->next;
        free(b);
        b = next;
    }
    free(doc);
}

const msp_ucl_t *msp_ucl_lookup(const msp_ucl_t *obj, const char *key)
{
    if (obj == NULL || key == NULL || obj->type != MSP_UCL_OBJECT) {
        return NULL;
    }
    for (const msp_ucl_t *c = obj->v.kids.first; c != NULL; c = c->next) {
        if (strcmp(c->key, key) == 0) {
            return c;
        }
    }
    return NULL;
}

size_t msp_ucl_count_key(const msp_ucl_t *obj, const char *key)
{
    size_t n = 0;
    if (obj == NULL || key == NULL || obj->type != MSP_UCL_OBJECT) {
        return 0;
    }
    for (const msp_ucl_t *c = obj->v.kids.first; c != NULL; c = c->next) {
        n += strcmp(c->key, key) == 0;
    }
    return n;
}

const char *msp_ucl_type_name(msp_ucl_type_t type)
{
    switch (type) {
    case MSP_UCL_NULL:
        return "null";
    case MSP_UCL_BOOL:
        return "boolean";
    case MSP_UCL_INT:
        return "integer";
    case MSP_UCL_FLOAT:
        return "float";
    case MSP_UCL_TIME:
        return "time";
    case MSP_UCL_STRING:
        return "string";
    case MSP_UCL_OBJECT:
        return "object";
    case MSP_UCL_ARRAY:
        return "array";
    }
    return "unknown";
}
