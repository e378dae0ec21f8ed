/*
 * The structural grammar of UCL: objects, arrays, keys, named sections and
 * separators. Scalars are lexed in ucl_lex.c.
 *
 * The parser is iterative: an explicit stack of open containers replaces
 * recursion, so hostile nesting costs at most max_depth frames of heap and
 * never any stack.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ucl_internal.h"

/* ---- nodes ---- */

static int new_node(ucl_parser_t *ps, msp_ucl_t *parent, const char *key, const char *at, msp_ucl_t **out)
{
    if (ps->nodes >= ps->lim.max_nodes) {
        return msp_uclp_fail(ps, MSP_ERR_LIMIT, at, "more than %zu values", ps->lim.max_nodes);
    }
    msp_ucl_t *n = msp_uclp_alloc(ps, sizeof(*n));
    if (n == NULL) {
        return msp_uclp_no_memory(ps, at);
    }
    memset(n, 0, sizeof(*n));
    ps->nodes++;
    n->type = MSP_UCL_NULL;
    n->line = msp_uclp_line_at(ps, at);
    n->key = key;
    if (parent != NULL) {
        if (parent->v.kids.last != NULL) {
            parent->v.kids.last->next = n;
        } else {
            parent->v.kids.first = n;
        }
        parent->v.kids.last = n;
        parent->v.kids.count++;
    }
    *out = n;
    return MSP_OK;
}

/* Makes node a container and enters it; the depth is checked before anything grows. */
static int open_container(ucl_parser_t *ps, msp_ucl_t *node, const char *at, size_t parent_depth, bool brace)
{
    /* at is the '{' or '[' (or, for the implicit top-level object, the start of the text). */
    size_t depth = parent_depth + 1;
    if (depth > ps->lim.max_depth) {
        return msp_uclp_fail(ps, MSP_ERR_LIMIT, at, "objects and arrays nest deeper than %zu levels",
                             ps->lim.max_depth);
    }
    node->type = brace && *at == '[' ? MSP_UCL_ARRAY : MSP_UCL_OBJECT;
    if (ps->nframes == ps->fcap) {
        size_t cap = ps->fcap == 0 ? 16 : ps->fcap * 2;
        ucl_frame_t *f = realloc(ps->frames, cap * sizeof(*f));
        if (f == NULL) {
            return msp_uclp_no_memory(ps, at);
        }
        ps->frames = f;
        ps->fcap = cap;
    }
    ps->frames[ps->nframes++] = (ucl_frame_t){.node = node, .open = at, .depth = depth, .brace = brace};
    if (brace) {
        ps->p = at + 1;
    }
    return MSP_OK;
}

/*
 * Named sections. `key "a" { }` and a later `key "b" { }` share one `key`
 * object, so the intermediate objects that the named-section syntax creates
 * are remembered per (parent, key) in a small open-addressing table: a
 * linear search of the parent's children would make a file of many
 * distinct section keys quadratic.
 */
static size_t sect_hash(const msp_ucl_t *parent, const char *key)
{
    uint64_t h = 1469598103934665603u ^ (uint64_t)(uintptr_t)parent;
    for (const unsigned char *k = (const unsigned char *)key; *k != '\0'; k++) {
        h = (h ^ *k) * 1099511628211u;
    }
    return (size_t)(h ^ (h >> 29));
}

static msp_ucl_t *sect_find(const ucl_parser_t *ps, const msp_ucl_t *parent, const char *key)
{
    if (ps->scap == 0) {
        return NULL;
    }
    size_t mask = ps->scap - 1;
    for (size_t i = sect_hash(parent, key) & mask;; i = (i + 1) & mask) {
        const ucl_sect_t *s = &ps->sects[i];
        if (s->child == NULL) {
            return NULL;
        }
        if (s->parent == parent && strcmp(s->child->key, key) == 0) {
            return s->child;
        }
    }
}

static void sect_put(ucl_sect_t *tab, size_t cap, const msp_ucl_t *parent, msp_ucl_t *child)
{
    size_t mask = cap - 1;
    size_t i = sect_hash(parent, child->key) & mask;
    while (tab[i].child != NULL) {
        i = (i + 1) & mask;
    }
    tab[i].parent = parent;
    tab[i].child = child;
}

static int sect_add(ucl_parser_t *ps, msp_ucl_t *parent, msp_ucl_t *child, const char *at)
{
    /* Kept at most half full, so a probe always ends at an empty slot. */
    if ((ps->nsects + 1) * 2 > ps->scap) {
        size_t cap = ps->scap == 0 ? 64 : ps->scap * 2;
        ucl_sect_t *tab = calloc(cap, sizeof(*tab));
        if (tab == NULL) {
            return msp_uclp_no_memory(ps, at);
        }
        for (size_t i = 0; i < ps->scap; i++) {
            if (ps->sects[i].child != NULL) {
                sect_put(tab, cap, ps->sects[i].parent, ps->sects[i].child);
            }
        }
        free(ps->sects);
        ps->sects = tab;
        ps->scap = cap;
    }
    sect_put(ps->sects, ps->scap, parent, child);
    ps->nsects++;
    return MSP_OK;
}

/* ---- keys ---- */

static bool is_key_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '/' ||
           c >= 0x80;
}

static bool is_key_char(unsigned char c)
{
    return is_key_start(c) || c == '-' || c == '.';
}

static int reject_macro(ucl_parser_t *ps)
{
    const char *name = ps->p + 1;
    const char *e = name;
    while (e < ps->end && is_key_char((unsigned char)*e) && *e != '.') {
        e++;
    }
    char show[UCL_SHOW_MAX];
    return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->p, "macros such as .include are not supported (found '.%s')",
                         msp_uclp_show_text(name, (size_t)(e - name), show));
}

/*
 * One key or section name: a quoted string, or a bare word of letters,
 * digits, '_', '-', '.', '/' and bytes >= 0x80 that, as in libucl, ends at
 * a space, a tab, '=' or ':' (so `key{` and a key alone on its line are
 * errors there, and here).
 */
static int lex_key(ucl_parser_t *ps, const char **key)
{
    const char *at = ps->p;
    char b1[UCL_SHOW_MAX];
    char b2[UCL_SHOW_MAX];
    if (*at == '"') {
        const char *s;
        size_t n;
        int rc = msp_uclp_lex_dquote(ps, &s, &n);
        if (rc != MSP_OK) {
            return rc;
        }
        if (n == 0) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "empty keys are not allowed");
        }
        if (memchr(s, '\0', n) != NULL) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "a key must not contain \\u0000");
        }
        *key = s;
        return MSP_OK;
    }
    if (!is_key_start((unsigned char)*at)) {
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "expected a key, found %s", msp_uclp_show_char(ps, at, b1));
    }
    const char *e = at + 1;
    while (e < ps->end && is_key_char((unsigned char)*e)) {
        e++;
    }
    if (e >= ps->end || (*e != ' ' && *e != '\t' && *e != '=' && *e != ':')) {
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, e, "expected a space, '=' or ':' after key '%s', found %s",
                             msp_uclp_show_text(at, (size_t)(e - at), b1), msp_uclp_show_char(ps, e, b2));
    }
    *key = msp_uclp_copy(ps, at, (size_t)(e - at));
    if (*key == NULL) {
        return msp_uclp_no_memory(ps, at);
    }
    ps->p = e;
    return MSP_OK;
}

static void skip_spaces(ucl_parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t')) {
        ps->p++;
    }
}

/*
 * After `key` with no '=' or ':', libucl tells `key value` from
 * `key name ... {` by whether a '{' or '[' comes before the next ',', ';'
 * or end of line. The same test here, byte for byte, so that a line reads
 * the same way in both parsers (or fails in both).
 *
 * The stop found is remembered: on one long line of members separated
 * only by block comments, every key would otherwise rescan the rest of the
 * line, which is quadratic. A later start inside the scanned span must
 * meet the same stop, as the span holds no other stop byte.
 */
static bool section_ahead(ucl_parser_t *ps)
{
    const char *t = ps->p;
    if (t < ps->end && (*t == '{' || *t == '[')) {
        return false;
    }
    if (!ps->ahead_valid || t < ps->ahead_from || t > ps->ahead_stop) {
        const char *s = t;
        while (s < ps->end && *s != ',' && *s != ';' && *s != '\n' && *s != '\r' && *s != '{' && *s != '[') {
            s++;
        }
        ps->ahead_valid = true;
        ps->ahead_from = t;
        ps->ahead_stop = s;
    }
    return ps->ahead_stop < ps->end && (*ps->ahead_stop == '{' || *ps->ahead_stop == '[');
}

/*
 * `key n1 n2 ... nk {` builds key { n1 { ... nk { } } }. Every level but
 * the last is a section object that later named sections with the same
 * key in the same parent merge into; the last level is always new, so a
 * repeated `requirement "X" { }` leaves two children keyed "X" (see ucl.h).
 */
static int parse_section(ucl_parser_t *ps, msp_ucl_t *parent, size_t depth, const char *key, const char *key_at)
{
    char b1[UCL_SHOW_MAX];
    char b2[UCL_SHOW_MAX];
    for (;;) {
        msp_ucl_t *sec = sect_find(ps, parent, key);
        if (sec == NULL) {
            if (depth + 1 > ps->lim.max_depth) {
                return msp_uclp_fail(ps, MSP_ERR_LIMIT, key_at, "objects and arrays nest deeper than %zu levels",
                                     ps->lim.max_depth);
            }
            int rc = new_node(ps, parent, key, key_at, &sec);
            if (rc == MSP_OK) {
                sec->type = MSP_UCL_OBJECT;
                rc = sect_add(ps, parent, sec, key_at);
            }
            if (rc != MSP_OK) {
                return rc;
            }
        }
        parent = sec;
        depth++;
        skip_spaces(ps);
        key_at = ps->p;
        if (key_at >= ps->end || (*key_at != '"' && !is_key_start((unsigned char)*key_at))) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, key_at, "expected a section name or '{' after '%s', found %s",
                                 msp_uclp_show_text(key, strlen(key), b1), msp_uclp_show_char(ps, key_at, b2));
        }
        int rc = lex_key(ps, &key);
        if (rc != MSP_OK) {
            return rc;
        }
        skip_spaces(ps);
        if (ps->p < ps->end && (*ps->p == '{' || *ps->p == '[')) {
            msp_ucl_t *body;
            rc = new_node(ps, parent, key, key_at, &body);
            return rc != MSP_OK ? rc : open_container(ps, body, ps->p, depth, true);
        }
    }
}

/* ---- values ---- */

/*
 * After a value: spaces, comments and any run of separators (',', ';',
 * newline). The next thing must follow a separator unless it closes the
 * enclosing object or array. As in libucl, a closing bracket is itself a
 * separator (sep is then true on entry), so `a { } b { }` is one line.
 */
static int after_value(ucl_parser_t *ps, bool sep)
{
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t' || c == '\v' || c == '\f') {
            ps->p++;
        } else if (c == ',' || c == ';' || c == '\n' || c == '\r') {
            sep = true;
            ps->p++;
        } else if (msp_uclp_at_comment(ps, ps->p)) {
            int rc = msp_uclp_skip_comment(ps);
            if (rc != MSP_OK) {
                return rc;
            }
            sep = true;
        } else if (c == '}' || c == ']' || sep) {
            return MSP_OK;
        } else {
            char b[UCL_SHOW_MAX];
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->p, "expected ',', ';' or a new line after the value, found %s",
                                 msp_uclp_show_char(ps, ps->p, b));
        }
    }
    return MSP_OK;
}

/* A value for node: a container is entered (and finished later), a scalar is lexed and followed up. */
static int parse_value(ucl_parser_t *ps, msp_ucl_t *node, size_t depth)
{
    int rc = msp_uclp_skip_blank(ps);
    if (rc != MSP_OK) {
        return rc;
    }
    const char *at = ps->p;
    if (at >= ps->end) {
        char b[UCL_SHOW_MAX];
        return node->key != NULL ? msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "expected a value for key '%s'",
                                                 msp_uclp_show_text(node->key, strlen(node->key), b))
                                 : msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "expected a value");
    }
    if (*at == '{' || *at == '[') {
        return open_container(ps, node, at, depth, true);
    }
    rc = msp_uclp_lex_scalar(ps, node);
    return rc != MSP_OK ? rc : after_value(ps, false);
}

/* `key [=|:] value`, or a named section. */
static int parse_member(ucl_parser_t *ps, const ucl_frame_t *top)
{
    msp_ucl_t *parent = top->node;
    size_t depth = top->depth;
    const char *key_at = ps->p;
    if (*key_at == '.') {
        return reject_macro(ps);
    }
    const char *key;
    char show[UCL_SHOW_MAX];
    int rc = lex_key(ps, &key);
    if (rc != MSP_OK) {
        return rc;
    }
    bool sep = false;
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t') {
            ps->p++;
        } else if (c == '=' || c == ':') {
            if (sep) {
                return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->p, "unexpected '%c' after key '%s' and its separator", c,
                                     msp_uclp_show_text(key, strlen(key), show));
            }
            sep = true;
            ps->p++;
        } else if (msp_uclp_at_comment(ps, ps->p)) {
            /* libucl swallows the newline that ends a '#' comment here, so the value may start on the next line. */
            bool line_comment = c == '#';
            rc = msp_uclp_skip_comment(ps);
            if (rc != MSP_OK) {
                return rc;
            }
            ps->p += line_comment && ps->p < ps->end;
        } else {
            break;
        }
    }
    if (!sep && section_ahead(ps)) {
        return parse_section(ps, parent, depth, key, key_at);
    }
    msp_ucl_t *n;
    rc = new_node(ps, parent, key, key_at, &n);
    return rc != MSP_OK ? rc : parse_value(ps, n, depth);
}

static int parse_element(ucl_parser_t *ps, const ucl_frame_t *top)
{
    msp_ucl_t *n;
    int rc = new_node(ps, top->node, NULL, ps->p, &n);
    return rc != MSP_OK ? rc : parse_value(ps, n, top->depth);
}

static int close_container(ucl_parser_t *ps, const ucl_frame_t *top)
{
    char c = *ps->p;
    bool is_object = top->node->type == MSP_UCL_OBJECT;
    char want = is_object ? '}' : ']';
    if (!top->brace) {
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->p, "'%c' closes nothing: no object or array is open here", c);
    }
    if (c != want) {
        uint32_t open_line = msp_uclp_line_at(ps, top->open);
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->p,
                             "expected '%c' to close the %s opened on line %" PRIu32 ", found '%c'", want,
                             is_object ? "object" : "array", open_line, c);
    }
    ps->p++;
    ps->nframes--;
    return MSP_OK;
}

/* After the closing bracket of a braced top-level value only blanks, comments and separators may follow. */
static int finish_top(ucl_parser_t *ps)
{
    for (;;) {
        int rc = msp_uclp_skip_blank(ps);
        if (rc != MSP_OK) {
            return rc;
        }
        if (ps->p >= ps->end) {
            return MSP_OK;
        }
        if (*ps->p != ';' && *ps->p != ',') {
            char b[UCL_SHOW_MAX];
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->p, "unexpected %s after the top-level value",
                                 msp_uclp_show_char(ps, ps->p, b));
        }
        ps->p++;
    }
}

static int unclosed(ucl_parser_t *ps, const ucl_frame_t *top)
{
    bool is_object = top->node->type == MSP_UCL_OBJECT;
    uint32_t open_line = msp_uclp_line_at(ps, top->open);
    return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->end, "expected '%c' to close the %s opened on line %" PRIu32,
                         is_object ? '}' : ']', is_object ? "object" : "array", open_line);
}

int msp_uclp_parse_top(ucl_parser_t *ps)
{
    int rc = msp_uclp_skip_blank(ps);
    if (rc != MSP_OK) {
        return rc;
    }
    msp_ucl_t *root = NULL;
    const char *at = ps->p;
    bool brace = at < ps->end && (*at == '{' || *at == '[');
    rc = new_node(ps, NULL, NULL, brace ? at : ps->text, &root);
    if (rc == MSP_OK) {
        rc = open_container(ps, root, brace ? at : ps->text, 0, brace);
    }
    if (rc != MSP_OK) {
        return rc;
    }
    msp_uclp_set_root(ps, root);
    for (;;) {
        rc = msp_uclp_skip_blank(ps);
        if (rc != MSP_OK) {
            return rc;
        }
        const ucl_frame_t *top = &ps->frames[ps->nframes - 1];
        if (ps->p >= ps->end) {
            return top->brace ? unclosed(ps, top) : MSP_OK;
        }
        if (*ps->p == '}' || *ps->p == ']') {
            rc = close_container(ps, top);
            if (rc == MSP_OK) {
                rc = ps->nframes == 0 ? finish_top(ps) : after_value(ps, true);
                if (rc == MSP_OK && ps->nframes == 0) {
                    return MSP_OK;
                }
            }
        } else if (top->node->type == MSP_UCL_OBJECT) {
            rc = parse_member(ps, top);
        } else {
            rc = parse_element(ps, top);
        }
        if (rc != MSP_OK) {
            return rc;
        }
    }
}
