/*
 * Context blocks, and the ways other blocks name contexts: by id, by tag,
 * or '*' for all of them. The format is the reference tools' (tlmsp-records.md
 * 11.3); the limits are TLMSP's (ETSI TS 103 523-2, no clause given by the
 * write-up): tlmsp-handshake.md 1.7 and 1.10.
 */
#include <stdio.h>
#include <string.h>

#include "cfg_internal.h"

static const cfg_key_t context_keys[] = {
    {"id", false}, {"tag", false}, {"comment", false}, {"purpose", false}, {"audit", false},
};

/*
 * The reference gives a context without an id the lowest free one when its block ends, in file order. User
 * contexts are 1..255; 0 is the control context, "never listed in the ContextList" (tlmsp-handshake.md 1.7).
 */
static int assign_id(cfg_ld_t *ld, const msp_ucl_t *node, msp_tlmsp_cfg_context_t *c)
{
    for (unsigned id = MSP_TLMSP_CFG_CONTEXT_ID_MIN; id <= MSP_TLMSP_CFG_CONTEXT_ID_MAX; id++) {
        if (!ld->id_used[id]) {
            ld->id_used[id] = true;
            c->id = (uint8_t)id;
            c->id_auto = true;
            return MSP_OK;
        }
    }
    return cfg_fail(ld, MSP_ERR_LIMIT, node, "no context id is left for this context (ids are 1 to 255)");
}

static int take_id(cfg_ld_t *ld, const msp_ucl_t *v, msp_tlmsp_cfg_context_t *c)
{
    int64_t id;
    int rc = cfg_get_int(ld, v, "id", "context", MSP_TLMSP_CFG_CONTEXT_ID_MIN, MSP_TLMSP_CFG_CONTEXT_ID_MAX, &id);
    if (rc != MSP_OK) {
        return rc;
    }
    if (ld->id_used[id]) {
        /* Name the holder: it may have got the id automatically, which is easy to miss. */
        const msp_tlmsp_cfg_context_t *other = msp_tlmsp_cfg_context_by_id(ld->cfg, (unsigned)id);
        return cfg_fail(ld, MSP_ERR_INVALID, v, "context id %u is already used by the context at line %u%s",
                        (unsigned)id, other != NULL ? (unsigned)other->line : 0u,
                        other != NULL && other->id_auto ? " (which got it automatically)" : "");
    }
    ld->id_used[id] = true;
    c->id = (uint8_t)id;
    return MSP_OK;
}

static int context_strings(cfg_ld_t *ld, const msp_ucl_t *node, msp_tlmsp_cfg_context_t *c)
{
    static const char *const keys[] = {"tag", "comment", "purpose"};
    const char **dst[] = {&c->tag, &c->comment, &c->purpose};
    int rc = MSP_OK;
    for (size_t i = 0; i < 3 && rc == MSP_OK; i++) {
        const msp_ucl_t *v = cfg_find(node, keys[i]);
        *dst[i] = "";
        if (v != NULL) {
            rc = cfg_get_string(ld, v, keys[i], "context", dst[i]);
        }
    }
    const msp_ucl_t *tag = cfg_find(node, "tag");
    if (rc == MSP_OK && tag != NULL && strcmp(c->tag, "*") == 0) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, tag, "a context cannot be tagged \"*\": '*' names every context");
    }
    const msp_ucl_t *purpose = cfg_find(node, "purpose");
    if (rc == MSP_OK && purpose != NULL && strlen(c->purpose) > 255) {
        /* ContextDescription carries the purpose in at most 255 bytes (tlmsp-handshake.md 1.10, 3.3). */
        rc = cfg_fail(ld, MSP_ERR_INVALID, purpose, "the purpose of a context is at most 255 bytes, not %zu",
                      strlen(c->purpose));
    }
    return rc;
}

static int context_one(cfg_ld_t *ld, const msp_ucl_t *node, msp_tlmsp_cfg_context_t *c)
{
    int rc = cfg_need_object(ld, node, "context", "the configuration");
    if (rc == MSP_OK) {
        rc = cfg_check_keys(ld, node, context_keys, sizeof(context_keys) / sizeof(context_keys[0]), "context");
    }
    c->line = node->line;
    if (rc == MSP_OK) {
        rc = context_strings(ld, node, c);
    }
    /* audit = yes is a "confirmed" context (tlmsp-records.md 9; the ContextList audit byte, tlmsp-handshake.md 3.3). */
    const msp_ucl_t *audit = cfg_find(node, "audit");
    if (rc == MSP_OK && audit != NULL) {
        rc = cfg_get_bool(ld, audit, "audit", "context", &c->audit);
    }
    if (rc == MSP_OK) {
        const msp_ucl_t *id = cfg_find(node, "id");
        rc = id != NULL ? take_id(ld, id, c) : assign_id(ld, node, c);
    }
    return rc;
}

/* The first line of a block that needs every context defined already. */
static uint32_t first_user_line(const msp_ucl_t *root)
{
    uint32_t line = UINT32_MAX;
    for (const msp_ucl_t *c = root->v.kids.first; c != NULL; c = c->next) {
        if ((cfg_key_is(c, "activity") || cfg_key_is(c, "middlebox")) && c->line < line) {
            line = c->line;
        }
    }
    return line;
}

typedef struct ctx_walk {
    size_t i;
    uint32_t user_line;
} ctx_walk_t;

static int context_visit(cfg_ld_t *ld, const msp_ucl_t *item, void *arg)
{
    ctx_walk_t *w = arg;
    if (w->i >= MSP_TLMSP_CFG_MAX_CONTEXTS) {
        return cfg_fail(ld, MSP_ERR_LIMIT, item, "more than %d contexts", MSP_TLMSP_CFG_MAX_CONTEXTS);
    }
    if (item->line > w->user_line) {
        return cfg_fail(ld, MSP_ERR_INVALID, item,
                        "a context is defined after the first activity or middlebox (line %u); define every "
                        "context first",
                        (unsigned)w->user_line);
    }
    ld->cfg->n_contexts = w->i + 1;
    return context_one(ld, item, &ld->cfg->contexts[w->i++]);
}

int cfg_contexts(cfg_ld_t *ld, const msp_ucl_t *root)
{
    if (cfg_count_items(root, "context") == 0) {
        return cfg_fail(ld, MSP_ERR_INVALID, root, "at least one context must be defined");
    }
    ctx_walk_t w = {.i = 0, .user_line = first_user_line(root)};
    return cfg_list(ld, root, "context", MSP_TLMSP_CFG_MAX_CONTEXTS, sizeof(msp_tlmsp_cfg_context_t),
                    &ld->cfg->contexts, context_visit, &w);
}

static const msp_tlmsp_cfg_context_t *by_tag(const msp_tlmsp_cfg_t *cfg, const char *tag, size_t *count)
{
    const msp_tlmsp_cfg_context_t *found = NULL;
    *count = 0;
    for (size_t i = 0; i < cfg->n_contexts; i++) {
        if (strcmp(cfg->contexts[i].tag, tag) == 0) {
            found = found != NULL ? found : &cfg->contexts[i];
            ++*count;
        }
    }
    return found;
}

int cfg_context_ref(cfg_ld_t *ld, const msp_ucl_t *node, bool zero_ok, const char *in, uint8_t *id)
{
    if (node->type == MSP_UCL_INT) {
        int64_t v;
        int rc = cfg_get_int(ld, node, "context", in, zero_ok ? 0 : 1, MSP_TLMSP_CFG_CONTEXT_ID_MAX, &v);
        if (rc == MSP_OK && v != 0 && !ld->id_used[v]) {
            rc = cfg_fail(ld, MSP_ERR_INVALID, node, "context %u in %s is not defined", (unsigned)v, in);
        }
        *id = (uint8_t)v;
        return rc;
    }
    if (node->type != MSP_UCL_STRING) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "\"context\" in %s must be a context id or tag, not a %s", in,
                        msp_ucl_type_name(node->type));
    }
    size_t count;
    const msp_tlmsp_cfg_context_t *c = by_tag(ld->cfg, node->v.str.s, &count);
    if (c == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "no context has the tag \"%s\" named in %s", node->v.str.s, in);
    }
    if (count > 1) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "the tag \"%s\" in %s names %zu contexts; give one context id",
                        node->v.str.s, in, count);
    }
    *id = c->id;
    return MSP_OK;
}

typedef struct which_walk {
    const char *in;
    cfg_which_t *w;
} which_walk_t;

static int which_add(cfg_ld_t *ld, const msp_ucl_t *item, cfg_which_t *w, uint8_t id, const char *in)
{
    if (!w->seen[id]) {
        w->seen[id] = true;
        w->ids[w->n++] = id;
        return MSP_OK;
    }
    if (!w->strict) {
        return MSP_OK; /* the reference ignores a context named twice in a match */
    }
    return cfg_fail(ld, MSP_ERR_INVALID, item, "context %u is named more than once in %s", (unsigned)id, in);
}

static int which_tag(cfg_ld_t *ld, const msp_ucl_t *item, which_walk_t *ww)
{
    const char *tag = item->v.str.s;
    bool star = strcmp(tag, "*") == 0;
    bool found = false;
    int rc = MSP_OK;
    ww->w->all |= star;
    for (size_t i = 0; i < ld->cfg->n_contexts && rc == MSP_OK; i++) {
        const msp_tlmsp_cfg_context_t *c = &ld->cfg->contexts[i];
        if (star || strcmp(c->tag, tag) == 0) {
            found = true;
            rc = which_add(ld, item, ww->w, c->id, ww->in);
        }
    }
    if (rc == MSP_OK && !found) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, item, "no context has the tag \"%s\" named in \"which\" of %s", tag, ww->in);
    }
    return rc;
}

static int which_visit(cfg_ld_t *ld, const msp_ucl_t *item, void *arg)
{
    which_walk_t *ww = arg;
    if (item->type == MSP_UCL_STRING) {
        return which_tag(ld, item, ww);
    }
    int64_t id;
    int rc = cfg_get_int(ld, item, "which", ww->in, MSP_TLMSP_CFG_CONTEXT_ID_MIN, MSP_TLMSP_CFG_CONTEXT_ID_MAX, &id);
    if (rc == MSP_OK && !ld->id_used[id]) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, item, "context %u in \"which\" of %s is not defined", (unsigned)id, ww->in);
    }
    return rc == MSP_OK ? which_add(ld, item, ww->w, (uint8_t)id, ww->in) : rc;
}

int cfg_which(cfg_ld_t *ld, const msp_ucl_t *obj, const char *in, cfg_which_t *w)
{
    which_walk_t ww = {.in = in, .w = w};
    return cfg_each(ld, obj, "which", in, which_visit, &ww);
}
