/*
 * Keys and scalar values, with the reference's typing: keys compare without
 * case (it lowercases them), a whole number may stand for a string, and
 * every other mismatch is an error that names the key and the block.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cfg_internal.h"

bool cfg_key_is(const msp_ucl_t *node, const char *key)
{
    return node->key != NULL && strcasecmp(node->key, key) == 0;
}

/* The lookups see nothing in a value that is not a block, so a caller may ask before the type is checked. */
const msp_ucl_t *cfg_find(const msp_ucl_t *obj, const char *key)
{
    if (obj->type != MSP_UCL_OBJECT) {
        return NULL;
    }
    for (const msp_ucl_t *c = obj->v.kids.first; c != NULL; c = c->next) {
        if (cfg_key_is(c, key)) {
            return c;
        }
    }
    return NULL;
}

size_t cfg_count_items(const msp_ucl_t *obj, const char *key)
{
    size_t n = 0;
    if (obj->type != MSP_UCL_OBJECT) {
        return 0;
    }
    for (const msp_ucl_t *c = obj->v.kids.first; c != NULL; c = c->next) {
        if (cfg_key_is(c, key)) {
            n += c->type == MSP_UCL_ARRAY ? c->v.kids.count : 1;
        }
    }
    return n;
}

/*
 * A repeatable key may appear several times and each time hold one value or
 * an array of them (libucl merges all of these into one array for the
 * reference); fn sees each value in file order. Arrays inside arrays are
 * refused, as the reference does.
 */
int cfg_each(cfg_ld_t *ld, const msp_ucl_t *obj, const char *key, const char *in, cfg_visit_fn fn, void *arg)
{
    int rc = MSP_OK;
    if (obj->type != MSP_UCL_OBJECT) {
        return MSP_OK;
    }
    for (const msp_ucl_t *c = obj->v.kids.first; c != NULL && rc == MSP_OK; c = c->next) {
        if (!cfg_key_is(c, key)) {
            continue;
        }
        if (c->type != MSP_UCL_ARRAY) {
            rc = fn(ld, c, arg);
            continue;
        }
        for (const msp_ucl_t *e = c->v.kids.first; e != NULL && rc == MSP_OK; e = e->next) {
            if (e->type == MSP_UCL_ARRAY) {
                return cfg_fail(ld, MSP_ERR_INVALID, e, "\"%s\" in %s holds an array inside an array", key, in);
            }
            rc = fn(ld, e, arg);
        }
    }
    return rc;
}

/*
 * A top-level repeatable key (context, activity, middlebox): an array of its
 * items, at most max of `size` bytes (fn refuses the one past max), each
 * visited in file order. None: *out is left as it is.
 */
int cfg_list(cfg_ld_t *ld, const msp_ucl_t *root, const char *key, size_t max, size_t size, void *out, cfg_visit_fn fn,
             void *arg)
{
    size_t n = cfg_count_items(root, key);
    if (n == 0) {
        return MSP_OK;
    }
    int rc = cfg_new(ld, root, n < max ? n : max, size, out);
    return rc == MSP_OK ? cfg_each(ld, root, key, "the configuration", fn, arg) : rc;
}

static const cfg_key_t *known_key(const msp_ucl_t *node, const cfg_key_t *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (cfg_key_is(node, keys[i].name)) {
            return &keys[i];
        }
    }
    return NULL;
}

int cfg_check_keys(cfg_ld_t *ld, const msp_ucl_t *obj, const cfg_key_t *keys, size_t n, const char *in)
{
    for (const msp_ucl_t *c = obj->v.kids.first; c != NULL; c = c->next) {
        const cfg_key_t *k = known_key(c, keys, n);
        if (k == NULL) {
            return cfg_fail(ld, MSP_ERR_INVALID, c, "unknown key \"%s\" in %s", c->key, in);
        }
        if (k->repeat) {
            continue;
        }
        /* A single-valued key given twice would be an array the reference refuses: say so plainly. */
        for (const msp_ucl_t *p = obj->v.kids.first; p != c; p = p->next) {
            if (cfg_key_is(p, k->name)) {
                return cfg_fail(ld, MSP_ERR_INVALID, c, "\"%s\" is given more than once in %s (first at line %u)",
                                k->name, in, (unsigned)p->line);
            }
        }
    }
    return MSP_OK;
}

int cfg_need_object(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in)
{
    if (node->type == MSP_UCL_OBJECT) {
        return MSP_OK;
    }
    return cfg_fail(ld, MSP_ERR_INVALID, node, "\"%s\" in %s must be a block { ... }, not a %s", key, in,
                    msp_ucl_type_name(node->type));
}

int cfg_get_string(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, const char **out)
{
    char num[24];
    if (node->type == MSP_UCL_INT) {
        /* The reference turns a number into its text; only whole numbers keep their exact spelling. */
        int len = snprintf(num, sizeof(num), "%" PRId64, node->v.i);
        return cfg_strdup(ld, node, num, (size_t)len, out);
    }
    if (node->type != MSP_UCL_STRING) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "\"%s\" in %s must be a string, not a %s (quote it)", key, in,
                        msp_ucl_type_name(node->type));
    }
    if (strlen(node->v.str.s) != node->v.str.len) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "\"%s\" in %s contains a NUL byte (write %%00 in data)", key, in);
    }
    return cfg_strdup(ld, node, node->v.str.s, node->v.str.len, out);
}

int cfg_get_name(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, const char **out)
{
    int rc = cfg_get_string(ld, node, key, in, out);
    if (rc == MSP_OK && (*out)[0] == '\0') {
        rc = cfg_fail(ld, MSP_ERR_INVALID, node, "\"%s\" in %s is empty", key, in);
    }
    return rc;
}

int cfg_get_bool(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, bool *out)
{
    if (node->type != MSP_UCL_BOOL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "\"%s\" in %s must be yes, no, true or false, not a %s", key, in,
                        msp_ucl_type_name(node->type));
    }
    *out = node->v.b != 0;
    return MSP_OK;
}

int cfg_get_int(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, int64_t min, int64_t max,
                int64_t *out)
{
    if (node->type != MSP_UCL_INT) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "\"%s\" in %s must be a whole number, not a %s", key, in,
                        msp_ucl_type_name(node->type));
    }
    if (node->v.i < min || node->v.i > max) {
        return cfg_fail(ld, MSP_ERR_INVALID, node,
                        "\"%s\" in %s must be between %" PRId64 " and %" PRId64 ", not %" PRId64, key, in, min, max,
                        node->v.i);
    }
    *out = node->v.i;
    return MSP_OK;
}

int cfg_get_ms(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, uint32_t min, uint32_t *out)
{
    if (node->type == MSP_UCL_TIME) {
        /* The reference takes plain milliseconds only; a unit would be silently misread elsewhere. */
        return cfg_fail(ld, MSP_ERR_INVALID, node,
                        "\"%s\" in %s is a number of milliseconds without a unit (write %.0f for this value)", key, in,
                        node->v.f * 1000.0);
    }
    if (node->type == MSP_UCL_STRING && node->v.str.s[0] >= '0' && node->v.str.s[0] <= '9') {
        return cfg_fail(ld, MSP_ERR_INVALID, node,
                        "\"%s\" in %s is a number of milliseconds without a unit, not \"%s\"", key, in, node->v.str.s);
    }
    int64_t v = 0;
    int rc = cfg_get_int(ld, node, key, in, min, MSP_TLMSP_CFG_MAX_TIME_MS, &v);
    if (rc == MSP_OK) {
        *out = (uint32_t)v;
    }
    return rc;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (uint8_t)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * The reference's data encoding: %XX is the byte XX, and a '%' that is not
 * followed by two hex digits stays a '%'.
 */
int cfg_decode(cfg_ld_t *ld, const msp_ucl_t *at, const char *s, msp_tlmsp_cfg_bytes_t *out)
{
    size_t len = strlen(s);
    uint8_t *p;
    int rc = cfg_new(ld, at, len + 1, 1, &p);
    if (rc != MSP_OK) {
        return rc;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = s[i] == '%' && len - i >= 3 ? hex_digit((uint8_t)s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_digit((uint8_t)s[i + 2]) : -1;
        if (lo >= 0) {
            p[n++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            p[n++] = (uint8_t)s[i];
        }
    }
    out->p = p;
    out->len = n;
    return MSP_OK;
}
