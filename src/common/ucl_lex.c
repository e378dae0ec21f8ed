/*
 * Lexing of UCL scalars and comments, with libucl's rules (README and
 * src/ucl_parser.c of vstakhov/libucl) where they are sound, and stricter
 * where libucl silently changes the text:
 *
 *  - "double quoted": the JSON escapes \" \\ \/ \b \f \n \r \t \uXXXX, and
 *    nothing else (libucl turns an unknown \q into q; here it is an error);
 *    a surrogate pair becomes one 4-byte UTF-8 sequence and a lone
 *    surrogate is an error (libucl writes each half as 3 bytes);
 *  - 'single quoted': no escapes but \' and a \ before a newline, which
 *    are removed; every other \ stays as written;
 *  - <<TERM heredoc: TERM is [A-Z]+ right before a newline; the string
 *    runs to the line that starts with TERM followed by a newline, ';',
 *    ',' or the end, without the newline before that line;
 *  - bare words: up to ',', ';', newline, '#', '/ *', or a '}' or ']' that
 *    closes nothing inside the word; trailing blanks are dropped. Then
 *    null, nan, inf, true/false/yes/no/on/off (any case) and numbers are
 *    recognised, and anything else is a string (with the same escapes as
 *    a quoted one).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ucl_internal.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- comments ---- */

bool msp_uclp_at_comment(const ucl_parser_t *ps, const char *p)
{
    return p < ps->end && (*p == '#' || (*p == '/' && p + 1 < ps->end && p[1] == '*'));
}

int msp_uclp_skip_comment(ucl_parser_t *ps)
{
    const char *p = ps->p;
    if (*p == '#') {
        const char *nl = memchr(p, '\n', (size_t)(ps->end - p));
        ps->p = nl != NULL ? nl : ps->end;
        return MSP_OK;
    }
    /*
     * As in libucl, block comments nest, and double-quoted text inside one
     * is skipped whole, so that a commented-out `key = "*" "/"` line does
     * not end the comment early. There is no // comment in UCL.
     */
    size_t nest = 1;
    bool quoted = false;
    for (p += 2; p < ps->end;) {
        if (*p == '"' && p[-1] != '\\') {
            quoted = !quoted;
            p++;
        } else if (quoted) {
            p++;
        } else if (*p == '*' && p + 1 < ps->end && p[1] == '/') {
            p += 2;
            if (--nest == 0) {
                ps->p = p;
                return MSP_OK;
            }
        } else if (*p == '/' && p + 1 < ps->end && p[1] == '*') {
            nest++;
            p += 2;
        } else {
            p++;
        }
    }
    return msp_uclp_fail(ps, MSP_ERR_SYNTAX, ps->p, "unterminated /* comment");
}

int msp_uclp_skip_blank(ucl_parser_t *ps)
{
    for (;;) {
        while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r' ||
                                   *ps->p == '\v' || *ps->p == '\f')) {
            ps->p++;
        }
        if (!msp_uclp_at_comment(ps, ps->p)) {
            return MSP_OK;
        }
        int rc = msp_uclp_skip_comment(ps);
        if (rc != MSP_OK) {
            return rc;
        }
    }
}

/* ---- escapes ---- */

static size_t put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Four hex digits at s[i..i+3] of an n-byte string; -1 if there are not. */
static long hex4(const char *s, size_t n, size_t i)
{
    if (i > n || n - i < 4) {
        return -1;
    }
    long v = 0;
    for (size_t k = i; k < i + 4; k++) {
        int h = hex_value(s[k]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

/* The \u escape whose 'u' is s[*i]: appends UTF-8 at d + *o, leaves *i on its last digit. */
static int unescape_u(ucl_parser_t *ps, const char *s, size_t n, size_t *i, char *d, size_t *o)
{
    const char *at = s + *i - 1;
    long cp = hex4(s, n, *i + 1);
    if (cp < 0) {
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "\\u must be followed by four hex digits");
    }
    *i += 4;
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "unpaired surrogate \\u%04lx", cp);
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        /* A high surrogate must be followed at once by \u and a low one. */
        long lo = *i + 2 < n && s[*i + 1] == '\\' && s[*i + 2] == 'u' ? hex4(s, n, *i + 3) : -1;
        if (lo < 0xdc00 || lo > 0xdfff) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, at, "unpaired surrogate \\u%04lx", cp);
        }
        *i += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    *o += put_utf8(d + *o, (uint32_t)cp);
    return MSP_OK;
}

static char simple_escape(char c)
{
    switch (c) {
    case '"':
    case '\\':
    case '/':
        return c;
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default:
        return 0;
    }
}

/* JSON escapes in s[0..n) into the arena. No escape lengthens its text, so n + 1 bytes always suffice. */
static int unescape_json(ucl_parser_t *ps, const char *s, size_t n, const char **out, size_t *outlen)
{
    char *d = msp_uclp_alloc(ps, n + 1);
    if (d == NULL) {
        return msp_uclp_no_memory(ps, s);
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            d[o++] = s[i];
            continue;
        }
        if (++i == n) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, s + i - 1, "a '\\' at the end of the value escapes nothing");
        }
        char c = simple_escape(s[i]);
        if (c != 0) {
            d[o++] = c;
        } else if (s[i] == 'u') {
            int rc = unescape_u(ps, s, n, &i, d, &o);
            if (rc != MSP_OK) {
                return rc;
            }
        } else if ((unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7f) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, s + i - 1, "unknown escape \\%c", s[i]);
        } else {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, s + i - 1, "unknown escape: '\\' before byte 0x%02x",
                                 (unsigned char)s[i]);
        }
    }
    d[o] = '\0';
    *out = d;
    *outlen = o;
    return MSP_OK;
}

static int set_string(ucl_parser_t *ps, msp_ucl_t *v, const char *s, size_t n, bool escaped)
{
    v->type = MSP_UCL_STRING;
    if (escaped) {
        return unescape_json(ps, s, n, &v->v.str.s, &v->v.str.len);
    }
    v->v.str.s = msp_uclp_copy(ps, s, n);
    v->v.str.len = n;
    return v->v.str.s != NULL ? MSP_OK : msp_uclp_no_memory(ps, s);
}

/* ---- quoted strings and heredocs ---- */

int msp_uclp_lex_dquote(ucl_parser_t *ps, const char **s, size_t *n)
{
    const char *open = ps->p;
    const char *p = open + 1;
    bool escaped = false;
    for (;;) {
        if (p >= ps->end) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, open, "unterminated string");
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            if (ps->end - p < 2) {
                return msp_uclp_fail(ps, MSP_ERR_SYNTAX, open, "unterminated string");
            }
            escaped = true;
            p += 2;
            continue;
        }
        if (c == '\n' || c == '\r') {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, open,
                                 "unterminated string: the line ends before the closing '\"'");
        }
        if (c < 0x20) {
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, p, "control character 0x%02x in a string: write it as \\u%04x", c,
                                 c);
        }
        p++;
    }
    ps->p = p + 1;
    msp_ucl_t tmp;
    int rc = set_string(ps, &tmp, open + 1, (size_t)(p - open - 1), escaped);
    if (rc == MSP_OK) {
        *s = tmp.v.str.s;
        *n = tmp.v.str.len;
    }
    return rc;
}

static int lex_squote(ucl_parser_t *ps, msp_ucl_t *v)
{
    const char *open = ps->p;
    const char *p = open + 1;
    while (p < ps->end && *p != '\'') {
        p += *p == '\\' && ps->end - p >= 2 ? 2 : 1;
    }
    if (p >= ps->end) {
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, open, "unterminated string");
    }
    const char *s = open + 1;
    size_t n = (size_t)(p - s);
    ps->p = p + 1;
    char *d = msp_uclp_alloc(ps, n + 1);
    if (d == NULL) {
        return msp_uclp_no_memory(ps, open);
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        /* The scan above paired every '\' with the byte after it, so s[i + 1] exists. */
        if (s[i] != '\\') {
            d[o++] = s[i];
        } else if (s[++i] == '\'') {
            d[o++] = '\'';
        } else if (s[i] == '\r') {
            i += i + 1 < n && s[i + 1] == '\n';
        } else if (s[i] != '\n') {
            d[o++] = '\\';
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    v->type = MSP_UCL_STRING;
    v->v.str.s = d;
    v->v.str.len = o;
    return MSP_OK;
}

/* "<<TERM\n" at p: the length of TERM, or 0 when p does not open a heredoc (it is then a bare word). */
static size_t heredoc_open(const ucl_parser_t *ps, const char *p)
{
    if (ps->end - p < 4 || p[0] != '<' || p[1] != '<') {
        return 0;
    }
    const char *q = p + 2;
    while (q < ps->end && *q >= 'A' && *q <= 'Z') {
        q++;
    }
    return q < ps->end && *q == '\n' ? (size_t)(q - p - 2) : 0;
}

static int lex_heredoc(ucl_parser_t *ps, size_t tlen, msp_ucl_t *v)
{
    const char *open = ps->p;
    const char *term = open + 2;
    const char *body = term + tlen + 1;
    for (const char *line = body;;) {
        if ((size_t)(ps->end - line) >= tlen && memcmp(line, term, tlen) == 0) {
            const char *after = line + tlen;
            if (after == ps->end || *after == '\n' || *after == ';' || *after == ',') {
                ps->p = after;
                return set_string(ps, v, body, line > body ? (size_t)(line - 1 - body) : 0, false);
            }
        }
        const char *nl = memchr(line, '\n', (size_t)(ps->end - line));
        if (nl == NULL) {
            char b[UCL_SHOW_MAX];
            return msp_uclp_fail(ps, MSP_ERR_SYNTAX, open, "unterminated heredoc: no line '%s' ends it",
                                 msp_uclp_show_text(term, tlen, b));
        }
        line = nl + 1;
    }
}

/* ---- numbers ---- */

typedef enum { SUF_NONE, SUF_MULT, SUF_BYTES, SUF_TIME } suffix_kind_t;

typedef struct suffix {
    const char *name;
    suffix_kind_t kind;
    double factor;
} suffix_t;

/*
 * libucl's multipliers: k, m, g are powers of 1000 (10m is 10000000, not
 * ten minutes), kb, mb, gb powers of 1024, and a time suffix makes the
 * value seconds. ks and gs are libucl's too (the k or g multiplier on
 * seconds). Case does not matter.
 */
static const suffix_t suffixes[] = {
    {"", SUF_NONE, 1},
    {"k", SUF_MULT, 1e3},
    {"m", SUF_MULT, 1e6},
    {"g", SUF_MULT, 1e9},
    {"kb", SUF_BYTES, 1024.0},
    {"mb", SUF_BYTES, 1048576.0},
    {"gb", SUF_BYTES, 1073741824.0},
    {"ms", SUF_TIME, 1e-3},
    {"ks", SUF_TIME, 1e3},
    {"gs", SUF_TIME, 1e9},
    {"min", SUF_TIME, 60},
    {"s", SUF_TIME, 1},
    {"h", SUF_TIME, 3600},
    {"d", SUF_TIME, 86400},
    {"w", SUF_TIME, 604800},
    {"y", SUF_TIME, 31536000},
};

static const suffix_t *find_suffix(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        const char *name = suffixes[i].name;
        size_t k = 0;
        while (k < n && name[k] != '\0' && (s[k] | 0x20) == name[k]) {
            k++;
        }
        if (k == n && name[k] == '\0') {
            return &suffixes[i];
        }
    }
    return NULL;
}

/* Length of the numeric part of s (sign, digits, fraction, exponent), 0 if s does not start with a number. */
static size_t number_span(const char *s, size_t n, bool *hex, bool *is_float)
{
    size_t i = s[0] == '-';
    if (i >= n || !is_digit(s[i])) {
        return 0;
    }
    *hex = s[i] == '0' && i + 1 < n && (s[i + 1] | 0x20) == 'x';
    *is_float = false;
    if (*hex) {
        size_t d = i + 2;
        for (i = d; i < n && hex_value(s[i]) >= 0; i++) {
        }
        return i > d ? i : 0;
    }
    while (i < n && is_digit(s[i])) {
        i++;
    }
    if (i < n && s[i] == '.') {
        *is_float = true;
        for (i++; i < n && is_digit(s[i]); i++) {
        }
    }
    if (i < n && (s[i] | 0x20) == 'e') {
        size_t k = i + 1;
        k += k < n && (s[k] == '+' || s[k] == '-');
        if (k >= n || !is_digit(s[k])) {
            return 0; /* "1e" or "1e+" is not a number (libucl agrees) */
        }
        while (k < n && is_digit(s[k])) {
            k++;
        }
        *is_float = true;
        i = k;
    }
    return i;
}

/* Integer value of s[0..n) (sign and digits already checked); false if it does not fit in int64. */
static bool parse_int(const char *s, size_t n, bool hex, int64_t *out)
{
    bool neg = s[0] == '-';
    size_t i = neg ? 1u : 0u;
    i += hex ? 2u : 0u;
    unsigned base = hex ? 16 : 10;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)hex_value(s[i]);
        if (v > (UINT64_MAX - d) / base) {
            return false;
        }
        v = v * base + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return false;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        return true;
    }
    if (v > (uint64_t)INT64_MAX) {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

static bool mul_int(int64_t v, int64_t m, int64_t *out)
{
    if ((v > 0 && v > INT64_MAX / m) || (v < 0 && v < INT64_MIN / m)) {
        return false;
    }
    *out = v * m;
    return true;
}

static bool double_to_int(double d, int64_t *out)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
        return false;
    }
    *out = (int64_t)d;
    return true;
}

/* The value of a number whose suffix is known; false when it is out of range. */
static bool number_value(const char *s, size_t span, bool hex, bool is_float, const suffix_t *suf, msp_ucl_t *v)
{
    if (!is_float && suf->kind != SUF_TIME) {
        int64_t i;
        if (!parse_int(s, span, hex, &i)) {
            return false;
        }
        v->type = MSP_UCL_INT;
        return suf->kind == SUF_NONE ? (v->v.i = i, true) : mul_int(i, (int64_t)suf->factor, &v->v.i);
    }
    /* span < 128 (see lex_number); LC_NUMERIC is "C", as msp never calls setlocale(). */
    char buf[128];
    memcpy(buf, s, span);
    buf[span] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    if (errno == ERANGE) {
        return false;
    }
    if (suf->kind == SUF_BYTES) {
        v->type = MSP_UCL_INT;
        return double_to_int(d * suf->factor, &v->v.i);
    }
    v->type = suf->kind == SUF_TIME ? MSP_UCL_TIME : MSP_UCL_FLOAT;
    /* Dividing keeps 10ms exactly the double nearest 0.01, as libucl computes it. */
    v->v.f = suf->factor < 1 ? d / 1000.0 : d * suf->factor;
    return isfinite(v->v.f);
}

/*
 * A bare word that starts with '-' or a digit: *is_num says whether it is
 * a number (if not, the caller keeps it as a string, as libucl does with
 * "0xdeadbeef.1" or "12 value"). A number that does not fit is an error.
 *
 * libucl also keeps the word as a string when a comment follows it on the
 * line without a separator ("10 /" "* c *" "/"), and when a suffix is not
 * followed at once by the separator ("10s ;", "10s # c"); so does this, as
 * reading the text differently would be worse than reading it oddly.
 * spaced says blanks came between the word and its end, commented that the
 * word ended at a comment.
 */
static int lex_number(ucl_parser_t *ps, const char *s, size_t n, bool spaced, bool commented, msp_ucl_t *v,
                      bool *is_num)
{
    bool hex = false;
    bool is_float = false;
    size_t span = number_span(s, n, &hex, &is_float);
    *is_num = false;
    /* Over 127 characters libucl gives up on a number, and so does this. */
    if (span == 0 || span >= 128) {
        return MSP_OK;
    }
    const suffix_t *suf = find_suffix(s + span, n - span);
    if (suf == NULL || (hex && suf->kind == SUF_TIME) || commented || (spaced && suf->kind != SUF_NONE)) {
        return MSP_OK;
    }
    *is_num = true;
    if (!number_value(s, span, hex, is_float, suf, v)) {
        char b[UCL_SHOW_MAX];
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, s, "number %s is out of range", msp_uclp_show_text(s, n, b));
    }
    return MSP_OK;
}

/* ---- bare words ---- */

static bool is_value_end(char c)
{
    return c == '\0' || c == '\n' || c == '\r' || c == '#' || c == ',' || c == ';' || c == ']' || c == '}';
}

/* Where the bare word at the cursor ends; a '}' or ']' that closes a bracket of the word itself is part of it. */
static const char *bare_end(const ucl_parser_t *ps)
{
    size_t curly_open = 0;
    size_t curly_close = 0;
    size_t square_open = 0;
    size_t square_close = 0;
    const char *p = ps->p;
    while (p < ps->end) {
        char c = *p;
        if (c == '{') {
            curly_open++;
        } else if (c == '}' && ++curly_close <= curly_open) {
            p++;
            continue;
        } else if (c == '[') {
            square_open++;
        } else if (c == ']' && ++square_close <= square_open) {
            p++;
            continue;
        } else if (c == '\\') {
            p += ps->end - p >= 2 ? 2 : 1;
            continue;
        }
        if (is_value_end(c) || (c == '/' && p + 1 < ps->end && p[1] == '*')) {
            break;
        }
        p++;
    }
    return p;
}

static bool lex_atom(const char *s, size_t n, msp_ucl_t *v)
{
    static const struct {
        const char *word;
        int value;
    } words[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"on", 1}, {"off", 0}};
    if (n == 4 && memcmp(s, "null", 4) == 0) {
        v->type = MSP_UCL_NULL;
        return true;
    }
    if (n == 3 && (memcmp(s, "nan", 3) == 0 || memcmp(s, "inf", 3) == 0)) {
        v->type = MSP_UCL_FLOAT;
        v->v.f = s[0] == 'n' ? NAN : INFINITY;
        return true;
    }
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t k = 0;
        while (k < n && words[i].word[k] != '\0' && (s[k] | 0x20) == words[i].word[k]) {
            k++;
        }
        if (k == n && words[i].word[k] == '\0') {
            v->type = MSP_UCL_BOOL;
            v->v.b = words[i].value;
            return true;
        }
    }
    return false;
}

static int lex_bare(ucl_parser_t *ps, msp_ucl_t *v)
{
    const char *s = ps->p;
    const char *e = bare_end(ps);
    ps->p = e;
    bool commented = e < ps->end && *e == '/';
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    bool spaced = e != ps->p;
    size_t n = (size_t)(e - s);
    if (n == 0) {
        char b[UCL_SHOW_MAX];
        return msp_uclp_fail(ps, MSP_ERR_SYNTAX, s, "expected a value, found %s", msp_uclp_show_char(ps, s, b));
    }
    if (lex_atom(s, n, v)) {
        return MSP_OK;
    }
    if (*s == '-' || is_digit(*s)) {
        bool is_num;
        int rc = lex_number(ps, s, n, spaced, commented, v, &is_num);
        if (rc != MSP_OK || is_num) {
            return rc;
        }
    }
    return set_string(ps, v, s, n, memchr(s, '\\', n) != NULL);
}

int msp_uclp_lex_scalar(ucl_parser_t *ps, msp_ucl_t *v)
{
    if (*ps->p == '"') {
        v->type = MSP_UCL_STRING;
        return msp_uclp_lex_dquote(ps, &v->v.str.s, &v->v.str.len);
    }
    if (*ps->p == '\'') {
        return lex_squote(ps, v);
    }
    size_t tlen = heredoc_open(ps, ps->p);
    return tlen > 0 ? lex_heredoc(ps, tlen, v) : lex_bare(ps, v);
}
