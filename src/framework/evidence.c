/*
 * The evidence a profile names for a requirement: `evidence = ["test",
 * "test:case", ...]` in its requirement block, read from the parsed UCL the
 * profile keeps. (The `prof` branch adds the same two functions with the
 * profile format; the merge keeps one copy.)
 */
#include <string.h>

#include "fw.h"

static const msp_ucl_t *evidence_list(const msp_fw_profile_t *p, size_t req_index)
{
    if (p->doc == NULL || req_index >= p->cat->count) {
        return NULL;
    }
    const msp_ucl_t *root = msp_ucl_root(p->doc);
    if (root->type != MSP_UCL_OBJECT) {
        return NULL;
    }
    const char *ref = p->cat->reqs[req_index].ref;
    for (const msp_ucl_t *t = root->v.kids.first; t != NULL; t = t->next) {
        if (strcmp(t->key, "requirement") != 0 || t->type != MSP_UCL_OBJECT) {
            continue;
        }
        const msp_ucl_t *r = msp_ucl_lookup(t, ref);
        const msp_ucl_t *e = r != NULL && r->type == MSP_UCL_OBJECT ? msp_ucl_lookup(r, "evidence") : NULL;
        if (e != NULL && e->type == MSP_UCL_ARRAY) {
            return e;
        }
    }
    return NULL;
}

/* Only string entries count; check reports the others. */
static const msp_ucl_t *nth(const msp_ucl_t *list, size_t k)
{
    for (const msp_ucl_t *v = list != NULL ? list->v.kids.first : NULL; v != NULL; v = v->next) {
        if (v->type == MSP_UCL_STRING && k-- == 0) {
            return v;
        }
    }
    return NULL;
}

size_t msp_fw_evidence_count(const msp_fw_profile_t *p, size_t req_index)
{
    size_t n = 0;
    while (nth(evidence_list(p, req_index), n) != NULL) {
        n++;
    }
    return n;
}

const char *msp_fw_evidence(const msp_fw_profile_t *p, size_t req_index, size_t k)
{
    const msp_ucl_t *v = nth(evidence_list(p, req_index), k);
    return v != NULL ? v->v.str.s : NULL;
}

#define EVIDENCE_MAX 64

/* Rule "format": evidence is a list of at most EVIDENCE_MAX strings "test" or "test:case", neither part empty. */
static void check_one(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *e)
{
    if (e->type != MSP_UCL_ARRAY) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR,
                           "'evidence' must be a list [\"test\", \"test:case\"], not %s (line %u)",
                           fw_type_article(e->type), (unsigned)e->line);
        return;
    }
    if (e->v.kids.count > EVIDENCE_MAX) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "more than %d evidence entries (line %u)", EVIDENCE_MAX,
                           (unsigned)e->line);
    }
    for (const msp_ucl_t *v = e->v.kids.first; v != NULL; v = v->next) {
        const char *s = v->type == MSP_UCL_STRING ? v->v.str.s : NULL;
        const char *colon = s != NULL ? strchr(s, ':') : NULL;
        if (s == NULL || strlen(s) != v->v.str.len || s[0] == '\0' || s[0] == ':' ||
            (colon != NULL && colon[1] == '\0')) {
            msp_fw_add_finding(p, ref, MSP_FW_ERROR, "an evidence entry is \"test\" or \"test:case\", not %s (line %u)",
                               s != NULL ? "an empty name" : fw_type_article(v->type), (unsigned)v->line);
        }
    }
}

void fw_check_evidence(msp_fw_profile_t *p)
{
    const msp_ucl_t *root = p->doc != NULL ? msp_ucl_root(p->doc) : NULL;
    if (root == NULL || root->type != MSP_UCL_OBJECT) {
        return;
    }
    for (const msp_ucl_t *t = root->v.kids.first; t != NULL; t = t->next) {
        if (strcmp(t->key, "requirement") != 0 || t->type != MSP_UCL_OBJECT) {
            continue;
        }
        for (const msp_ucl_t *r = t->v.kids.first; r != NULL; r = r->next) {
            const msp_ucl_t *e = r->type == MSP_UCL_OBJECT ? msp_ucl_lookup(r, "evidence") : NULL;
            if (e != NULL) {
                check_one(p, r->key, e);
            }
        }
    }
}
