#include "msp/json.h"

#include <inttypes.h>
#include <string.h>

#include "msp/error.h"

void msp_json_init(msp_json_t *j, msp_buf_t *out, int pretty)
{
    memset(j, 0, sizeof(*j));
    j->out = out;
    j->pretty = pretty;
}

static void newline(msp_json_t *j)
{
    if (!j->pretty) {
        return;
    }
    msp_buf_put_u8(j->out, '\n');
    for (int i = 0; i < j->depth; i++) {
        msp_buf_puts(j->out, "  ");
    }
}

/* Called before every value and key: writes the separator the position needs. */
static void before_item(msp_json_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth == 0) {
        return;
    }
    if (j->has_items[j->depth - 1]) {
        msp_buf_put_u8(j->out, ',');
    }
    j->has_items[j->depth - 1] = 1;
    newline(j);
}

static void open_container(msp_json_t *j, char c)
{
    before_item(j);
    if (j->depth >= MSP_JSON_MAX_DEPTH) {
        /* Force the sticky error: a reservation no buffer can satisfy. */
        msp_buf_reserve(j->out, SIZE_MAX);
        return;
    }
    msp_buf_put_u8(j->out, (uint8_t)c);
    j->has_items[j->depth++] = 0;
}

static void close_container(msp_json_t *j, char c)
{
    if (j->depth == 0) {
        msp_buf_reserve(j->out, SIZE_MAX);
        return;
    }
    int had = j->has_items[--j->depth];
    if (had) {
        newline(j);
    }
    msp_buf_put_u8(j->out, (uint8_t)c);
}

void msp_json_object_begin(msp_json_t *j)
{
    open_container(j, '{');
}

void msp_json_object_end(msp_json_t *j)
{
    close_container(j, '}');
}

void msp_json_array_begin(msp_json_t *j)
{
    open_container(j, '[');
}

void msp_json_array_end(msp_json_t *j)
{
    close_container(j, ']');
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

int msp_utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(s + i, len - i);
        if (n == 0) {
            return 0;
        }
        i += n;
    }
    return 1;
}

static void put_escaped(msp_buf_t *b, const unsigned char *s, size_t len)
{
    msp_buf_put_u8(b, '"');
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            msp_buf_printf(b, "\\%c", c);
            i++;
        } else if (c == '\n') {
            msp_buf_puts(b, "\\n");
            i++;
        } else if (c == '\t') {
            msp_buf_puts(b, "\\t");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            msp_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t n = utf8_len(s + i, len - i);
            if (n == 0) {
                msp_buf_puts(b, "\\ufffd");
                i++;
            } else {
                msp_buf_put(b, s + i, n);
                i += n;
            }
        }
    }
    msp_buf_put_u8(b, '"');
}

void msp_json_key(msp_json_t *j, const char *key)
{
    before_item(j);
    put_escaped(j->out, (const unsigned char *)key, strlen(key));
    msp_buf_puts(j->out, j->pretty ? ": " : ":");
    j->after_key = 1;
}

void msp_json_string_n(msp_json_t *j, const char *s, size_t len)
{
    before_item(j);
    put_escaped(j->out, (const unsigned char *)s, len);
}

void msp_json_string(msp_json_t *j, const char *s)
{
    if (s == NULL) {
        msp_json_null(j);
        return;
    }
    msp_json_string_n(j, s, strlen(s));
}

void msp_json_bool(msp_json_t *j, int v)
{
    before_item(j);
    msp_buf_puts(j->out, v ? "true" : "false");
}

void msp_json_int(msp_json_t *j, int64_t v)
{
    before_item(j);
    msp_buf_printf(j->out, "%" PRId64, v);
}

void msp_json_null(msp_json_t *j)
{
    before_item(j);
    msp_buf_puts(j->out, "null");
}

int msp_json_finish(msp_json_t *j)
{
    if (j->depth != 0) {
        msp_buf_reserve(j->out, SIZE_MAX);
    }
    msp_buf_put_u8(j->out, '\n');
    return msp_buf_error(j->out);
}
