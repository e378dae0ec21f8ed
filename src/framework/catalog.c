#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "fw.h"

static const char *const principle_names[MSP_FW_PRINCIPLES] = {"Data Protection", "Transparency", "Access Control",
                                                               "Good Citizen"};
static const char *const principle_codes[MSP_FW_PRINCIPLES] = {"DP", "T", "AC", "GC"};

const char *msp_fw_principle_name(msp_fw_principle_t p)
{
    return (unsigned)p < MSP_FW_PRINCIPLES ? principle_names[p] : "?";
}

const char *msp_fw_principle_code(msp_fw_principle_t p)
{
    return (unsigned)p < MSP_FW_PRINCIPLES ? principle_codes[p] : "?";
}

int fw_ref_parse(const char *ref, int *middlebox, msp_fw_principle_t *principle)
{
    size_t len = strlen(ref);
    if (len > FW_MAX_REF || len < 5 || (ref[0] != 'E' && ref[0] != 'M') || ref[1] != '.') {
        return 0;
    }
    const char *p = ref + 2;
    int found = 0;
    for (int i = 0; i < MSP_FW_PRINCIPLES; i++) {
        size_t n = strlen(principle_codes[i]);
        if (strncmp(p, principle_codes[i], n) == 0 && p[n] == '.') {
            *principle = (msp_fw_principle_t)i;
            p += n;
            found = 1;
            break;
        }
    }
    if (!found) {
        return 0;
    }
    /* One or more ".N" groups, N a number without a leading zero. */
    while (*p == '.') {
        p++;
        if (*p < '1' || *p > '9') {
            return 0;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    *middlebox = ref[0] == 'M';
    return *p == '\0';
}

size_t fw_ref_parent_len(const char *ref)
{
    const char *last = strrchr(ref, '.');
    size_t n = (size_t)(last - ref);
    /* "E.DP.1" has no parent: its prefix "E.DP" is the principle itself. */
    return strchr(ref + 2, '.') == last ? 0 : n;
}

const char *fw_type_article(msp_ucl_type_t t)
{
    switch (t) {
    case MSP_UCL_OBJECT:
        return "an object";
    case MSP_UCL_ARRAY:
        return "an array";
    case MSP_UCL_INT:
    case MSP_UCL_FLOAT:
    case MSP_UCL_TIME:
        return "a number";
    case MSP_UCL_STRING:
        return "a string";
    case MSP_UCL_BOOL:
        return "a boolean";
    default:
        return msp_ucl_type_name(t);
    }
}

int msp_fw_catalog_find(const msp_fw_catalog_t *cat, const char *ref)
{
    for (size_t i = 0; i < cat->count; i++) {
        if (strcmp(cat->reqs[i].ref, ref) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int field_string(const msp_ucl_t *req, const char *key, const char **out, msp_error_t *err)
{
    const msp_ucl_t *v = msp_ucl_lookup(req, key);
    char where[48];
    snprintf(where, sizeof(where), "%u", (unsigned)req->line);
    if (v == NULL || v->type != MSP_UCL_STRING || v->v.str.len == 0) {
        return msp_error_set(err, MSP_ERR_INVALID, where, "%s: '%s' must be a non-empty string", req->key, key);
    }
    if (msp_ucl_count_key(req, key) != 1) {
        return msp_error_set(err, MSP_ERR_INVALID, where, "%s: '%s' given twice", req->key, key);
    }
    *out = v->v.str.s;
    return MSP_OK;
}

static int parse_one(msp_fw_catalog_t *cat, const msp_ucl_t *req, msp_error_t *err)
{
    char where[48];
    snprintf(where, sizeof(where), "%u", (unsigned)req->line);
    msp_fw_template_t *t = &cat->reqs[cat->count];
    if (req->type != MSP_UCL_OBJECT || !fw_ref_parse(req->key, &t->middlebox, &t->principle)) {
        return msp_error_set(err, MSP_ERR_INVALID, where, "'%s' is not a requirement block", req->key);
    }
    if (msp_fw_catalog_find(cat, req->key) >= 0) {
        return msp_error_set(err, MSP_ERR_INVALID, where, "%s: listed twice", req->key);
    }
    for (const msp_ucl_t *f = req->v.kids.first; f != NULL; f = f->next) {
        if (strcmp(f->key, "template") != 0 && strcmp(f->key, "text") != 0) {
            return msp_error_set(err, MSP_ERR_INVALID, where, "%s: unknown key '%s'", req->key, f->key);
        }
    }
    const char *kind;
    int ret = field_string(req, "template", &kind, err);
    if (ret == MSP_OK) {
        ret = field_string(req, "text", &t->text, err);
    }
    if (ret != MSP_OK) {
        return ret;
    }
    if (strcmp(kind, "M") != 0 && strcmp(kind, "O") != 0) {
        return msp_error_set(err, MSP_ERR_INVALID, where, "%s: template must be \"M\" or \"O\"", req->key);
    }
    t->ref = req->key;
    t->mandatory = kind[0] == 'M';
    t->parent = -1;
    size_t plen = fw_ref_parent_len(t->ref);
    if (plen > 0) {
        char parent[FW_MAX_REF + 1];
        memcpy(parent, t->ref, plen);
        parent[plen] = '\0';
        t->parent = msp_fw_catalog_find(cat, parent);
        if (t->parent < 0) {
            return msp_error_set(err, MSP_ERR_INVALID, where, "%s: parent %s must come first", t->ref, parent);
        }
    }
    cat->count++;
    return MSP_OK;
}

int msp_fw_catalog_parse(const char *text, size_t len, msp_fw_catalog_t **out, msp_error_t *err)
{
    *out = NULL;
    msp_fw_catalog_t *cat = calloc(1, sizeof(*cat));
    if (cat == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "catalog");
    }
    int ret = msp_ucl_parse(text, len, NULL, &cat->doc, err);
    if (ret != MSP_OK) {
        free(cat);
        return ret;
    }
    const msp_ucl_t *root = msp_ucl_root(cat->doc);
    const msp_ucl_t *reqs = msp_ucl_lookup(root, "requirement");
    if (root->type != MSP_UCL_OBJECT || root->v.kids.count != 1 || reqs == NULL || reqs->type != MSP_UCL_OBJECT) {
        ret = msp_error_set(err, MSP_ERR_INVALID, "1", "a catalog holds requirement blocks and nothing else");
        goto Exit;
    }
    cat->reqs = calloc(reqs->v.kids.count, sizeof(*cat->reqs));
    if (cat->reqs == NULL) {
        ret = msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "catalog");
        goto Exit;
    }
    for (const msp_ucl_t *r = reqs->v.kids.first; r != NULL && ret == MSP_OK; r = r->next) {
        ret = parse_one(cat, r, err);
    }
Exit:
    if (ret != MSP_OK) {
        msp_fw_catalog_free(cat);
        return ret;
    }
    *out = cat;
    return MSP_OK;
}

int msp_fw_catalog_builtin(msp_fw_catalog_t **out, msp_error_t *err)
{
    return msp_fw_catalog_parse(msp_fw_catalog_data[0].data, msp_fw_catalog_data[0].len, out, err);
}

void msp_fw_catalog_free(msp_fw_catalog_t *cat)
{
    if (cat == NULL) {
        return;
    }
    free(cat->reqs);
    msp_ucl_free(cat->doc);
    free(cat);
}
