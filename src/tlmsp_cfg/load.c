/*
 * Loading a configuration: reading the text, the UCL parse, the order of
 * the top-level blocks, and the one owner of every allocation (the pool).
 * The blocks are those of the reference tools' configuration
 * (tlmsp-records.md 11.3): context, activity, client, server, middlebox.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"

/* Each allocation is a chunk on one list, so a half-built model frees in one walk. */
typedef union cfg_chunk {
    union cfg_chunk *next;
    max_align_t align;
} cfg_chunk_t;

struct msp_tlmsp_cfg_pool {
    cfg_chunk_t *head;
};

int cfg_fail(cfg_ld_t *ld, int code, const msp_ucl_t *at, const char *fmt, ...)
{
    char where[sizeof(ld->err->where)];
    char detail[sizeof(ld->err->detail)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(where, sizeof(where), "%s:%u", ld->name, at != NULL ? (unsigned)at->line : 1u);
    return msp_error_set(ld->err, code, where, "%s", detail);
}

int cfg_new(cfg_ld_t *ld, const msp_ucl_t *at, size_t count, size_t size, void *out)
{
    void **res = out;
    *res = NULL;
    if (size != 0 && count > (SIZE_MAX - sizeof(cfg_chunk_t)) / size) {
        return cfg_fail(ld, MSP_ERR_LIMIT, at, "an allocation of %zu items of %zu bytes is too large", count, size);
    }
    cfg_chunk_t *c = calloc(1, sizeof(*c) + count * size);
    if (c == NULL) {
        return cfg_fail(ld, MSP_ERR_NO_MEMORY, at, "out of memory");
    }
    c->next = ld->cfg->pool->head;
    ld->cfg->pool->head = c;
    *res = c + 1;
    return MSP_OK;
}

int cfg_strdup(cfg_ld_t *ld, const msp_ucl_t *at, const char *s, size_t len, const char **out)
{
    char *p;
    int rc = cfg_new(ld, at, len + 1, 1, &p);
    if (rc == MSP_OK) {
        memcpy(p, s, len);
        p[len] = '\0';
        *out = p;
    }
    return rc;
}

void msp_tlmsp_cfg_free(msp_tlmsp_cfg_t *cfg)
{
    if (cfg == NULL) {
        return;
    }
    if (cfg->pool != NULL) {
        cfg_chunk_t *c = cfg->pool->head;
        while (c != NULL) {
            cfg_chunk_t *next = c->next;
            free(c);
            c = next;
        }
        free(cfg->pool);
    }
    free(cfg);
}

static const cfg_key_t top_keys[] = {
    {"context", true}, {"activity", true}, {"client", false}, {"server", false}, {"middlebox", true},
};

/* Defaults for the two endpoints, which stay in the model even when their block is absent. */
static void endpoint_defaults(msp_tlmsp_cfg_entity_t *e, msp_tlmsp_cfg_role_t role)
{
    e->role = role;
    e->tag = "";
    e->address.text = "";
    e->address.host = "";
    e->cert_file = role == MSP_TLMSP_CFG_SERVER ? "server-cert.pem" : "";
    e->cert_key_file = role == MSP_TLMSP_CFG_SERVER ? "server-key.pem" : "";
    e->version_min = MSP_TLMSP_CFG_VERSION_1_0;
    e->version_max = MSP_TLMSP_CFG_VERSION_1_0;
}

static int build(cfg_ld_t *ld, const msp_ucl_t *root)
{
    if (root->type != MSP_UCL_OBJECT) {
        return cfg_fail(ld, MSP_ERR_INVALID, root, "the configuration must be a set of blocks, not a %s",
                        msp_ucl_type_name(root->type));
    }
    int rc = cfg_check_keys(ld, root, top_keys, sizeof(top_keys) / sizeof(top_keys[0]), "the configuration");
    if (rc == MSP_OK) {
        rc = cfg_contexts(ld, root);
    }
    if (rc == MSP_OK) {
        rc = cfg_activities(ld, root);
    }
    endpoint_defaults(&ld->cfg->client, MSP_TLMSP_CFG_CLIENT);
    endpoint_defaults(&ld->cfg->server, MSP_TLMSP_CFG_SERVER);
    const msp_ucl_t *client = cfg_find(root, "client");
    const msp_ucl_t *server = cfg_find(root, "server");
    if (rc == MSP_OK && client != NULL) {
        rc = cfg_endpoint(ld, client, &ld->cfg->client);
    }
    if (rc == MSP_OK && server != NULL) {
        rc = cfg_endpoint(ld, server, &ld->cfg->server);
    }
    if (rc == MSP_OK) {
        rc = cfg_middleboxes(ld, root);
    }
    return rc;
}

static int load_doc(cfg_ld_t *ld, const char *text, size_t len)
{
    /* The file limit is ours; the node and depth limits are the UCL parser's defaults. */
    msp_ucl_limits_t lim = msp_ucl_default_limits;
    lim.max_input = MSP_TLMSP_CFG_MAX_FILE;
    msp_ucl_doc_t *doc = NULL;
    msp_error_t perr;
    msp_error_clear(&perr);
    int rc = msp_ucl_parse(text, len, &lim, &doc, &perr);
    if (rc != MSP_OK) {
        char where[2 * sizeof(perr.where)];
        snprintf(where, sizeof(where), "%s:%s", ld->name, perr.where[0] != '\0' ? perr.where : "1");
        return msp_error_set(ld->err, rc, where, "%s", perr.detail);
    }
    rc = build(ld, msp_ucl_root(doc));
    msp_ucl_free(doc);
    return rc;
}

int msp_tlmsp_cfg_load_mem(const char *text, size_t len, const char *name, msp_tlmsp_cfg_t **out, msp_error_t *err)
{
    msp_error_clear(err);
    if (out == NULL || (text == NULL && len != 0)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "no text or no place for the result");
    }
    *out = NULL;
    cfg_ld_t ld = {.name = name != NULL ? name : "<memory>", .err = err};
    if (len > MSP_TLMSP_CFG_MAX_FILE) {
        return cfg_fail(&ld, MSP_ERR_LIMIT, NULL, "the configuration is %zu bytes, more than the %zu allowed", len,
                        MSP_TLMSP_CFG_MAX_FILE);
    }
    int rc = MSP_ERR_NO_MEMORY;
    ld.cfg = calloc(1, sizeof(*ld.cfg));
    if (ld.cfg != NULL) {
        ld.cfg->pool = calloc(1, sizeof(*ld.cfg->pool));
    }
    if (ld.cfg == NULL || ld.cfg->pool == NULL) {
        cfg_fail(&ld, rc, NULL, "out of memory");
        goto done;
    }
    rc = cfg_strdup(&ld, NULL, ld.name, strlen(ld.name), &ld.cfg->name);
    if (rc == MSP_OK) {
        rc = load_doc(&ld, text != NULL ? text : "", len);
    }
done:
    if (rc == MSP_OK) {
        *out = ld.cfg;
    } else {
        msp_tlmsp_cfg_free(ld.cfg);
    }
    return rc;
}

/* Reads at most MSP_TLMSP_CFG_MAX_FILE + 1 bytes, so that an oversized file is caught without reading it all. */
static int read_file(const char *path, char **text, size_t *len, msp_error_t *err)
{
    int rc = MSP_OK;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return msp_error_set(err, MSP_ERR_IO, path, "cannot open the file: %s", strerror(errno));
    }
    buf = malloc(MSP_TLMSP_CFG_MAX_FILE + 1);
    if (buf == NULL) {
        rc = msp_error_set(err, MSP_ERR_NO_MEMORY, path, "out of memory");
        goto done;
    }
    n = fread(buf, 1, MSP_TLMSP_CFG_MAX_FILE + 1, f);
    if (ferror(f)) {
        rc = msp_error_set(err, MSP_ERR_IO, path, "cannot read the file: %s", strerror(errno));
    } else if (n > MSP_TLMSP_CFG_MAX_FILE) {
        rc = msp_error_set(err, MSP_ERR_LIMIT, path, "the file is larger than the %zu bytes allowed",
                           MSP_TLMSP_CFG_MAX_FILE);
    }
done:
    fclose(f);
    if (rc == MSP_OK) {
        *text = buf;
        *len = n;
    } else {
        free(buf);
    }
    return rc;
}

int msp_tlmsp_cfg_load_file(const char *path, msp_tlmsp_cfg_t **out, msp_error_t *err)
{
    msp_error_clear(err);
    if (out == NULL || path == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "no path or no place for the result");
    }
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc == MSP_OK) {
        rc = msp_tlmsp_cfg_load_mem(text, len, path, out, err);
    }
    free(text);
    return rc;
}
