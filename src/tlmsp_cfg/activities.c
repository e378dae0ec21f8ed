/*
 * Activity blocks: a tag, one match (time, container or pattern) and the
 * actions to run when it fires. This is the reference tools' grammar
 * (tlmsp-records.md 11.3), not a rule of ETSI TS 103 523-2; the access an
 * activity needs is checked in middlebox.c.
 */
#include <stdio.h>
#include <string.h>

#include "cfg_internal.h"

static const cfg_key_t activity_keys[] = {
    {"tag", false},
    {"match", false},
    {"action", true},
    {"present", false},
};

static const cfg_key_t match_keys[] = {
    {"which", true}, {"at", false},   {"every", false}, {"container", false},
    {"data", false}, {"file", false}, {"regex", false}, {"forward", false},
};

static int match_container(cfg_ld_t *ld, const msp_ucl_t *v, const char *in, msp_tlmsp_cfg_match_t *m)
{
    if (v->type == MSP_UCL_INT) {
        int64_t n;
        int rc = cfg_get_int(ld, v, "container", in, 1, INT64_MAX, &n);
        m->container = MSP_TLMSP_CFG_CONTAINER_NTH;
        m->container_n = (uint64_t)n;
        return rc;
    }
    if (v->type == MSP_UCL_FLOAT) {
        /* The reference takes 0.0 and 1.0 too; its own text says 0 < p < 1, and * already means all. */
        if (!(v->v.f > 0.0 && v->v.f < 1.0)) {
            return cfg_fail(ld, MSP_ERR_INVALID, v,
                            "\"container\" in %s is a probability strictly between 0 and 1 (use * for all), not %g", in,
                            v->v.f);
        }
        m->container = MSP_TLMSP_CFG_CONTAINER_PROBABILITY;
        m->container_p = v->v.f;
        return MSP_OK;
    }
    if (v->type == MSP_UCL_STRING && (strcmp(v->v.str.s, "*") == 0 || strcmp(v->v.str.s, "all") == 0)) {
        m->container = MSP_TLMSP_CFG_CONTAINER_ALL;
        return MSP_OK;
    }
    return cfg_fail(ld, MSP_ERR_INVALID, v, "\"container\" in %s must be a count n >= 1, a probability, * or all", in);
}

/* data, file or regex: only one, since the reference silently keeps the last of several. */
static int match_pattern(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_match_t *m)
{
    static const char *const keys[] = {"data", "file", "regex"};
    static const msp_tlmsp_cfg_pattern_t kinds[] = {MSP_TLMSP_CFG_PATTERN_DATA, MSP_TLMSP_CFG_PATTERN_FILE,
                                                    MSP_TLMSP_CFG_PATTERN_REGEX};
    int rc = MSP_OK;
    for (size_t i = 0; i < 3 && rc == MSP_OK; i++) {
        const msp_ucl_t *v = cfg_find(node, keys[i]);
        if (v == NULL) {
            continue;
        }
        if (m->pattern != MSP_TLMSP_CFG_PATTERN_NONE) {
            return cfg_fail(ld, MSP_ERR_INVALID, v, "%s has more than one of data, file and regex", in);
        }
        m->pattern = kinds[i];
        rc = cfg_get_name(ld, v, keys[i], in, &m->text);
        if (rc == MSP_OK && kinds[i] == MSP_TLMSP_CFG_PATTERN_DATA) {
            rc = cfg_decode(ld, v, m->text, &m->data);
        }
    }
    return rc;
}

static int match_time(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_match_t *m)
{
    const msp_ucl_t *at = cfg_find(node, "at");
    const msp_ucl_t *every = cfg_find(node, "every");
    int rc = MSP_OK;
    m->has_at = at != NULL;
    m->has_every = every != NULL;
    if (at != NULL) {
        rc = cfg_get_ms(ld, at, "at", in, 0, &m->at_ms);
    }
    if (rc == MSP_OK && every != NULL) {
        rc = cfg_get_ms(ld, every, "every", in, 1, &m->every_ms);
    }
    return rc;
}

/* Exactly one kind of condition, and `which` exactly when the condition looks at data. */
static int match_shape(cfg_ld_t *ld, const msp_ucl_t *node, const char *in)
{
    bool timed = cfg_find(node, "at") != NULL || cfg_find(node, "every") != NULL;
    bool container = cfg_find(node, "container") != NULL;
    bool pattern = cfg_find(node, "data") != NULL || cfg_find(node, "file") != NULL || cfg_find(node, "regex") != NULL;
    const msp_ucl_t *which = cfg_find(node, "which");
    const msp_ucl_t *forward = cfg_find(node, "forward");
    int kinds = timed + container + pattern;
    if (kinds == 0) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "%s needs at/every, container, or data/file/regex", in);
    }
    if (kinds > 1) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "%s mixes time, container and pattern conditions; give one", in);
    }
    if (timed && (which != NULL || forward != NULL)) {
        return cfg_fail(ld, MSP_ERR_INVALID, which != NULL ? which : forward,
                        "\"%s\" does not apply to a time match (%s)", which != NULL ? "which" : "forward", in);
    }
    if (!timed && which == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "%s needs \"which\" for a container or pattern match", in);
    }
    return MSP_OK;
}

static int match_which(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_match_t *m)
{
    cfg_which_t w;
    memset(&w, 0, sizeof(w));
    int rc = cfg_which(ld, node, in, &w);
    uint8_t *ids = NULL;
    if (rc == MSP_OK && w.n > 0) {
        rc = cfg_new(ld, node, w.n, 1, &ids);
    }
    if (rc == MSP_OK) {
        if (w.n > 0) {
            memcpy(ids, w.ids, w.n);
        }
        m->which = ids;
        m->n_which = w.n;
        m->which_all = w.all;
    }
    return rc;
}

static int match_parse(cfg_ld_t *ld, const msp_ucl_t *node, const char *tag, msp_tlmsp_cfg_match_t *m)
{
    char owner[140];
    char in[160];
    snprintf(owner, sizeof(owner), "activity \"%s\"", tag);
    snprintf(in, sizeof(in), "the match of %s", owner);
    int rc = cfg_need_object(ld, node, "match", owner);
    if (rc == MSP_OK) {
        rc = cfg_check_keys(ld, node, match_keys, sizeof(match_keys) / sizeof(match_keys[0]), in);
    }
    m->line = node->line;
    if (rc == MSP_OK) {
        rc = match_shape(ld, node, in);
    }
    if (rc == MSP_OK) {
        rc = match_time(ld, node, in, m);
    }
    const msp_ucl_t *container = cfg_find(node, "container");
    if (rc == MSP_OK && container != NULL) {
        rc = match_container(ld, container, in, m);
    }
    if (rc == MSP_OK) {
        rc = match_pattern(ld, node, in, m);
    }
    const msp_ucl_t *forward = cfg_find(node, "forward");
    if (rc == MSP_OK && forward != NULL) {
        rc = cfg_get_bool(ld, forward, "forward", in, &m->forward);
    }
    return rc == MSP_OK ? match_which(ld, node, in, m) : rc;
}

static int activity_tag(cfg_ld_t *ld, const msp_ucl_t *node, size_t index)
{
    msp_tlmsp_cfg_activity_t *a = &ld->cfg->activities[index];
    const msp_ucl_t *tag = cfg_find(node, "tag");
    if (tag == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "an activity has no \"tag\"");
    }
    int rc = cfg_get_name(ld, tag, "tag", "an activity", &a->tag);
    for (size_t i = 0; i < index && rc == MSP_OK; i++) {
        if (strcmp(ld->cfg->activities[i].tag, a->tag) == 0) {
            rc = cfg_fail(ld, MSP_ERR_INVALID, tag, "the activity tag \"%s\" is already used at line %u", a->tag,
                          (unsigned)ld->cfg->activities[i].line);
        }
    }
    return rc;
}

/* The reference requires match, then at least one action block (an empty one only deletes the match). */
static int activity_parts(cfg_ld_t *ld, const msp_ucl_t *node, const char *in)
{
    const msp_ucl_t *match = cfg_find(node, "match");
    const msp_ucl_t *action = cfg_find(node, "action");
    if (match == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "%s has no \"match\"", in);
    }
    if (action == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "%s has no \"action\" (write action { } to only delete the match)",
                        in);
    }
    if (action->line < match->line) {
        return cfg_fail(ld, MSP_ERR_INVALID, action, "\"action\" comes before \"match\" in %s", in);
    }
    return MSP_OK;
}

static int activity_one(cfg_ld_t *ld, const msp_ucl_t *node, size_t index)
{
    msp_tlmsp_cfg_activity_t *a = &ld->cfg->activities[index];
    char in[160];
    a->line = node->line;
    int rc = cfg_need_object(ld, node, "activity", "the configuration");
    if (rc == MSP_OK) {
        rc = activity_tag(ld, node, index);
    }
    if (rc != MSP_OK) {
        return rc;
    }
    snprintf(in, sizeof(in), "activity \"%s\"", a->tag);
    rc = cfg_check_keys(ld, node, activity_keys, sizeof(activity_keys) / sizeof(activity_keys[0]), in);
    if (rc == MSP_OK) {
        rc = activity_parts(ld, node, in);
    }
    if (rc == MSP_OK) {
        rc = match_parse(ld, cfg_find(node, "match"), a->tag, &a->match);
    }
    const msp_ucl_t *present = cfg_find(node, "present");
    if (rc == MSP_OK && present != NULL) {
        rc = cfg_get_bool(ld, present, "present", in, &a->present);
    }
    return rc == MSP_OK ? cfg_actions(ld, node, in, a) : rc;
}

typedef struct act_walk {
    size_t i;
} act_walk_t;

static int activity_visit(cfg_ld_t *ld, const msp_ucl_t *item, void *arg)
{
    act_walk_t *w = arg;
    if (w->i >= MSP_TLMSP_CFG_MAX_ACTIVITIES) {
        return cfg_fail(ld, MSP_ERR_LIMIT, item, "more than %d activities", MSP_TLMSP_CFG_MAX_ACTIVITIES);
    }
    ld->cfg->n_activities = w->i + 1;
    return activity_one(ld, item, w->i++);
}

int cfg_activities(cfg_ld_t *ld, const msp_ucl_t *root)
{
    act_walk_t w = {0};
    return cfg_list(ld, root, "activity", MSP_TLMSP_CFG_MAX_ACTIVITIES, sizeof(msp_tlmsp_cfg_activity_t),
                    &ld->cfg->activities, activity_visit, &w);
}
