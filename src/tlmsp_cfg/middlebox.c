/*
 * Middlebox blocks: identity, discovery flags, the contexts each may read
 * or write, and the activities it runs in each direction, which must fit
 * that access (the reference's check). The format is the reference tools'
 * (tlmsp-records.md 11.3); the write-up gives no ETSI TS 103 523-2 clause for
 * the rules it carries, so the sections cited are the write-ups'.
 */
#include <stdio.h>
#include <string.h>

#include "cfg_internal.h"

static const cfg_key_t mbox_keys[] = {
    {"tag", false},
    {"address", false},
    {"cert-file", false},
    {"cert-key-file", false},
    {"transparent", false},
    {"discovered", false},
    {"forbidden", false},
    {"context", true},
    {"function-to-client", true},
    {"function-to-server", true},
};

static const cfg_key_t grant_keys[] = {{"which", true}, {"access", false}};

typedef struct mbox_walk {
    size_t i;
    const char *in;
    msp_tlmsp_cfg_entity_t *e;
    cfg_which_t which; /* every context granted so far in this middlebox */
} mbox_walk_t;

/* none, r or rw: on the wire "absent = no access", 0 read, 1 write, "write implies read" (tlmsp-handshake.md 1.7). */
static int grant_access(cfg_ld_t *ld, const msp_ucl_t *block, const char *in, msp_tlmsp_cfg_access_t *out)
{
    static const char *const names[] = {"none", "r", "rw"};
    const msp_ucl_t *v = cfg_find(block, "access");
    *out = MSP_TLMSP_CFG_ACCESS_R; /* the reference's default */
    if (v == NULL) {
        return MSP_OK;
    }
    for (int a = 0; a < 3 && v->type == MSP_UCL_STRING; a++) {
        if (strcmp(v->v.str.s, names[a]) == 0) {
            *out = (msp_tlmsp_cfg_access_t)a;
            return MSP_OK;
        }
    }
    return cfg_fail(ld, MSP_ERR_INVALID, v, "\"access\" in a context of %s must be none, r or rw", in);
}

/* One context { which, access } block; a context granted twice in one middlebox is an error, as in the reference. */
static int grant_visit(cfg_ld_t *ld, const msp_ucl_t *block, void *arg)
{
    mbox_walk_t *w = arg;
    msp_tlmsp_cfg_access_t access;
    size_t first = w->which.n;
    int rc = cfg_need_object(ld, block, "context", w->in);
    if (rc == MSP_OK) {
        rc = cfg_check_keys(ld, block, grant_keys, 2, w->in);
    }
    if (rc == MSP_OK && cfg_find(block, "which") == NULL) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, block, "a context block of %s has no \"which\"", w->in);
    }
    if (rc == MSP_OK) {
        rc = grant_access(ld, block, w->in, &access);
    }
    if (rc == MSP_OK) {
        rc = cfg_which(ld, block, w->in, &w->which);
    }
    for (size_t i = first; i < w->which.n && rc == MSP_OK; i++) {
        w->e->access[w->which.ids[i]] = access;
    }
    return rc;
}

static int need_access(cfg_ld_t *ld, const msp_ucl_t *item, const mbox_walk_t *w, const msp_tlmsp_cfg_activity_t *a,
                       uint8_t id, msp_tlmsp_cfg_access_t need, const char *why)
{
    if (w->e->access[id] >= need) {
        return MSP_OK;
    }
    return cfg_fail(ld, MSP_ERR_INVALID, item, "%s needs %s access to context %u for activity \"%s\" (%s), but has %s",
                    w->in, msp_tlmsp_cfg_access_name(need), (unsigned)id, a->tag, why,
                    msp_tlmsp_cfg_access_name(w->e->access[id]));
}

/*
 * tlmsp-records.md 11.3: "without forward, the middlebox needs rw on the matched contexts" (matches are deleted,
 * 7.4) and inserting needs write access (7.1, 7.5); only endpoints renegotiate (the reference's check).
 */
static int function_check(cfg_ld_t *ld, const msp_ucl_t *item, size_t index, void *arg)
{
    const mbox_walk_t *w = arg;
    const msp_tlmsp_cfg_activity_t *a = &ld->cfg->activities[index];
    const msp_tlmsp_cfg_match_t *m = &a->match;
    int rc = MSP_OK;
    /* A match deletes what it matches unless it forwards, so it needs write access then. */
    for (size_t i = 0; i < m->n_which && rc == MSP_OK; i++) {
        rc = need_access(ld, item, w, a, m->which[i], m->forward ? MSP_TLMSP_CFG_ACCESS_R : MSP_TLMSP_CFG_ACCESS_RW,
                         m->forward ? "it matches there" : "its match deletes data there");
    }
    for (size_t i = 0; i < a->n_actions && rc == MSP_OK; i++) {
        const msp_tlmsp_cfg_action_t *act = &a->actions[i];
        if (act->kind == MSP_TLMSP_CFG_ACTION_RENEGOTIATE) {
            rc = cfg_fail(ld, MSP_ERR_INVALID, item, "%s cannot run activity \"%s\": only endpoints renegotiate", w->in,
                          a->tag);
        } else if (act->kind == MSP_TLMSP_CFG_ACTION_SEND || act->kind == MSP_TLMSP_CFG_ACTION_REPLY) {
            rc = need_access(ld, item, w, a, act->context_id, MSP_TLMSP_CFG_ACCESS_RW, "it sends there");
        }
    }
    return rc;
}

static int mbox_tag(cfg_ld_t *ld, const msp_ucl_t *node, mbox_walk_t *w)
{
    const msp_ucl_t *tag = cfg_find(node, "tag");
    if (tag == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "a middlebox has no \"tag\"");
    }
    int rc = cfg_get_name(ld, tag, "tag", "a middlebox", &w->e->tag);
    for (size_t i = 0; i < w->i && rc == MSP_OK; i++) {
        if (strcmp(ld->cfg->middleboxes[i].tag, w->e->tag) == 0) {
            rc = cfg_fail(ld, MSP_ERR_INVALID, tag, "the middlebox tag \"%s\" is already used at line %u", w->e->tag,
                          (unsigned)ld->cfg->middleboxes[i].line);
        }
    }
    return rc;
}

/* "<tag>-cert.pem" and "<tag>-key.pem" unless given. */
static int mbox_files(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_entity_t *e)
{
    char name[300];
    int len = snprintf(name, sizeof(name), "%s-cert.pem", e->tag);
    int rc = cfg_strdup(ld, node, name, (size_t)len < sizeof(name) ? (size_t)len : sizeof(name) - 1, &e->cert_file);
    len = snprintf(name, sizeof(name), "%s-key.pem", e->tag);
    if (rc == MSP_OK) {
        rc = cfg_strdup(ld, node, name, (size_t)len < sizeof(name) ? (size_t)len : sizeof(name) - 1, &e->cert_key_file);
    }
    return rc == MSP_OK ? cfg_entity_files(ld, node, in, e) : rc;
}

/*
 * transparent, discovered (inserted by the server's discovery callback) and forbidden: tlmsp-handshake.md 7.2-7.4
 * (the list's inserted byte 2 = forbidden is "rejected by every parser", 7.4).
 */
static int mbox_flags(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_entity_t *e)
{
    static const char *const keys[] = {"transparent", "discovered", "forbidden"};
    bool *dst[] = {&e->transparent, &e->discovered, &e->forbidden};
    int rc = MSP_OK;
    for (size_t i = 0; i < 3 && rc == MSP_OK; i++) {
        const msp_ucl_t *v = cfg_find(node, keys[i]);
        if (v != NULL) {
            rc = cfg_get_bool(ld, v, keys[i], in, dst[i]);
        }
    }
    if (rc == MSP_OK && e->discovered && !e->transparent && e->forbidden) {
        /* The server would add it to the list and forbid it in the same breath. */
        rc =
            cfg_fail(ld, MSP_ERR_INVALID, cfg_find(node, "forbidden"),
                     "%s is discovered and not transparent, so the server inserts it; it cannot also be forbidden", in);
    }
    return rc;
}

static int mbox_body(cfg_ld_t *ld, const msp_ucl_t *node, mbox_walk_t *w)
{
    msp_tlmsp_cfg_entity_t *e = w->e;
    const msp_ucl_t *addr = cfg_find(node, "address");
    int rc = cfg_check_keys(ld, node, mbox_keys, sizeof(mbox_keys) / sizeof(mbox_keys[0]), w->in);
    if (rc == MSP_OK && addr == NULL) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, node, "%s has no \"address\"", w->in);
    }
    if (rc == MSP_OK) {
        rc = cfg_address(ld, addr, false, w->in, &e->address);
    }
    if (rc == MSP_OK) {
        rc = mbox_files(ld, node, w->in, e);
    }
    if (rc == MSP_OK) {
        rc = mbox_flags(ld, node, w->in, e);
    }
    if (rc == MSP_OK) {
        rc = cfg_each(ld, node, "context", w->in, grant_visit, w);
    }
    e->n_contexts = w->which.n;
    memcpy(e->context_ids, w->which.ids, w->which.n);
    /* Access is known in full before the functions are checked against it, wherever the keys stand. */
    if (rc == MSP_OK) {
        rc = cfg_fnlist(ld, node, "function-to-client", w->in, function_check, w, &e->to_client);
    }
    if (rc == MSP_OK) {
        rc = cfg_fnlist(ld, node, "function-to-server", w->in, function_check, w, &e->to_server);
    }
    return rc;
}

/* One middlebox block, in path order from client to server (tlmsp-handshake.md 1.6); at most 251 (1.10). */
static int mbox_visit(cfg_ld_t *ld, const msp_ucl_t *node, void *arg)
{
    mbox_walk_t *w = arg;
    char in[160];
    if (w->i >= MSP_TLMSP_CFG_MAX_MIDDLEBOXES) {
        return cfg_fail(ld, MSP_ERR_LIMIT, node, "more than %d middleboxes", MSP_TLMSP_CFG_MAX_MIDDLEBOXES);
    }
    w->e = &ld->cfg->middleboxes[w->i];
    w->e->role = MSP_TLMSP_CFG_MIDDLEBOX;
    w->e->defined = true;
    w->e->line = node->line;
    w->e->version_min = MSP_TLMSP_CFG_VERSION_1_0;
    w->e->version_max = MSP_TLMSP_CFG_VERSION_1_0;
    w->e->tag = "";
    ld->cfg->n_middleboxes = w->i + 1;
    memset(&w->which, 0, sizeof(w->which));
    w->which.strict = true;
    int rc = cfg_need_object(ld, node, "middlebox", "the configuration");
    if (rc == MSP_OK) {
        rc = mbox_tag(ld, node, w);
    }
    if (rc == MSP_OK) {
        snprintf(in, sizeof(in), "middlebox \"%s\"", w->e->tag);
        w->in = in;
        rc = mbox_body(ld, node, w);
    }
    w->i++;
    return rc;
}

int cfg_middleboxes(cfg_ld_t *ld, const msp_ucl_t *root)
{
    mbox_walk_t w = {0};
    return cfg_list(ld, root, "middlebox", MSP_TLMSP_CFG_MAX_MIDDLEBOXES, sizeof(msp_tlmsp_cfg_entity_t),
                    &ld->cfg->middleboxes, mbox_visit, &w);
}
