/*
 * The client and server blocks, and what every entity shares: function
 * lists (activity tags) and the protocol version range.
 */
#include <stdio.h>
#include <string.h>

#include "cfg_internal.h"

static const cfg_key_t client_keys[] = {{"version", false}, {"address", false}, {"function", true}};
static const cfg_key_t server_keys[] = {
    {"version", false}, {"address", false}, {"cert-file", false}, {"cert-key-file", false}, {"function", true},
};
static const cfg_key_t version_keys[] = {{"min", false}, {"max", false}};

typedef struct fn_walk {
    const char *key;
    const char *in;
    cfg_fn_check check;
    void *arg;
    size_t *list;
    size_t n;
} fn_walk_t;

static int fn_visit(cfg_ld_t *ld, const msp_ucl_t *item, void *arg)
{
    fn_walk_t *w = arg;
    if (item->type != MSP_UCL_STRING) {
        return cfg_fail(ld, MSP_ERR_INVALID, item, "\"%s\" in %s lists activity tags, not a %s", w->key, w->in,
                        msp_ucl_type_name(item->type));
    }
    size_t index;
    if (msp_tlmsp_cfg_activity_by_tag(ld->cfg, item->v.str.s, &index) == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, item, "no activity has the tag \"%s\" listed in \"%s\" of %s",
                        item->v.str.s, w->key, w->in);
    }
    for (size_t i = 0; i < w->n; i++) {
        if (w->list[i] == index) {
            /* The reference would run it twice on every match; that is never what a list means. */
            return cfg_fail(ld, MSP_ERR_INVALID, item, "activity \"%s\" is listed twice in \"%s\" of %s", item->v.str.s,
                            w->key, w->in);
        }
    }
    w->list[w->n++] = index;
    return w->check != NULL ? w->check(ld, item, index, w->arg) : MSP_OK;
}

int cfg_fnlist(cfg_ld_t *ld, const msp_ucl_t *obj, const char *key, const char *in, cfg_fn_check check, void *arg,
               msp_tlmsp_cfg_fnlist_t *out)
{
    fn_walk_t w = {.key = key, .in = in, .check = check, .arg = arg};
    size_t n = cfg_count_items(obj, key);
    int rc = n > 0 ? cfg_new(ld, obj, n, sizeof(size_t), &w.list) : MSP_OK;
    if (rc == MSP_OK && n > 0) {
        rc = cfg_each(ld, obj, key, in, fn_visit, &w);
    }
    out->activity = w.list;
    out->n = w.n;
    return rc;
}

/* "vMAJOR.MINOR" as the reference reads it: digits only, no leading zero in the major. */
static bool version_text(const char *s, unsigned *v)
{
    unsigned major = 0, minor = 0;
    size_t i = 1;
    if (s[0] != 'v' || s[1] < '1' || s[1] > '9') {
        return false;
    }
    for (; s[i] >= '0' && s[i] <= '9' && major < 256; i++) {
        major = major * 10 + (unsigned)(s[i] - '0');
    }
    if (s[i++] != '.' || s[i] == '\0') {
        return false;
    }
    for (; s[i] >= '0' && s[i] <= '9' && minor < 256; i++) {
        minor = minor * 10 + (unsigned)(s[i] - '0');
    }
    *v = major << 8 | minor;
    return s[i] == '\0' && major < 256 && minor < 256;
}

/* Only TLMSP 1.0 exists: the extension's version "must match exactly on receipt" (tlmsp-handshake.md 1.1). */
static int version_one(cfg_ld_t *ld, const msp_ucl_t *v, const char *in, uint16_t *out)
{
    unsigned ver;
    if (v->type != MSP_UCL_STRING || !version_text(v->v.str.s, &ver)) {
        return cfg_fail(ld, MSP_ERR_INVALID, v, "a version in %s is written v1.0", in);
    }
    if (ver != MSP_TLMSP_CFG_VERSION_1_0) {
        return cfg_fail(ld, MSP_ERR_INVALID, v, "version %s in %s is not supported; only v1.0 is defined", v->v.str.s,
                        in);
    }
    *out = (uint16_t)ver;
    return MSP_OK;
}

static int version_range(cfg_ld_t *ld, const msp_ucl_t *v, const char *in, msp_tlmsp_cfg_entity_t *e)
{
    if (v->type != MSP_UCL_OBJECT) {
        int rc = version_one(ld, v, in, &e->version_min);
        e->version_max = e->version_min;
        return rc;
    }
    int rc = cfg_check_keys(ld, v, version_keys, 2, in);
    const msp_ucl_t *min = cfg_find(v, "min");
    const msp_ucl_t *max = cfg_find(v, "max");
    if (rc == MSP_OK && min != NULL) {
        rc = version_one(ld, min, in, &e->version_min);
    }
    if (rc == MSP_OK && max != NULL) {
        rc = version_one(ld, max, in, &e->version_max);
    }
    if (rc == MSP_OK && e->version_min > e->version_max) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, v, "the version range of %s has min above max", in);
    }
    return rc;
}

/* Optional file names with a default already in place. */
static int cert_files(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_entity_t *e)
{
    const msp_ucl_t *cert = cfg_find(node, "cert-file");
    const msp_ucl_t *key = cfg_find(node, "cert-key-file");
    int rc = MSP_OK;
    if (cert != NULL) {
        rc = cfg_get_name(ld, cert, "cert-file", in, &e->cert_file);
    }
    if (rc == MSP_OK && key != NULL) {
        rc = cfg_get_name(ld, key, "cert-key-file", in, &e->cert_key_file);
    }
    return rc;
}

/* client { address; function } and server { address; function; cert-file; cert-key-file } (tlmsp-records.md 11.3). */
int cfg_endpoint(cfg_ld_t *ld, const msp_ucl_t *node, msp_tlmsp_cfg_entity_t *e)
{
    bool server = e->role == MSP_TLMSP_CFG_SERVER;
    const char *in = server ? "the server" : "the client";
    e->defined = true;
    e->line = node->line;
    int rc = cfg_need_object(ld, node, server ? "server" : "client", "the configuration");
    if (rc == MSP_OK) {
        rc = server ? cfg_check_keys(ld, node, server_keys, sizeof(server_keys) / sizeof(server_keys[0]), in)
                    : cfg_check_keys(ld, node, client_keys, sizeof(client_keys) / sizeof(client_keys[0]), in);
    }
    const msp_ucl_t *addr = rc == MSP_OK ? cfg_find(node, "address") : NULL;
    if (rc == MSP_OK && addr == NULL) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, node, "%s has no \"address\"", in);
    }
    if (rc == MSP_OK) {
        rc = cfg_address(ld, addr, !server, in, &e->address);
    }
    const msp_ucl_t *version = cfg_find(node, "version");
    if (rc == MSP_OK && version != NULL) {
        rc = version_range(ld, version, in, e);
    }
    if (rc == MSP_OK && server) {
        rc = cert_files(ld, node, in, e);
    }
    /* The client's activities act toward the server, the server's toward the client. */
    if (rc == MSP_OK) {
        rc = cfg_fnlist(ld, node, "function", in, NULL, NULL, server ? &e->to_client : &e->to_server);
    }
    return rc;
}

int cfg_entity_files(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_entity_t *e)
{
    return cert_files(ld, node, in, e);
}
