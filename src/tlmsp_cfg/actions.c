/*
 * Action blocks. As in the reference, each send, reply, alert, log,
 * shutdown or renegotiate inside them is one action; an empty block adds
 * none. The format is the reference tools' (tlmsp-records.md 11.3); the
 * write-up gives no ETSI TS 103 523-2 clause for the rules cited below.
 */
#include <stdio.h>
#include <string.h>

#include "cfg_internal.h"

static const cfg_key_t action_keys[] = {
    {"send", true}, {"reply", true}, {"alert", true}, {"log", true}, {"shutdown", false}, {"renegotiate", false},
};

static const cfg_key_t payload_keys[] = {
    {"context", false}, {"data", false}, {"file", false}, {"handler", false}, {"template", false},
};

static const cfg_key_t alert_keys[] = {{"context", false}, {"level", false}, {"description", false}};
static const cfg_key_t log_keys[] = {{"handler", false}};

typedef struct act_build {
    const char *in; /* activity "tag" */
    msp_tlmsp_cfg_action_t *actions;
    size_t n;
    msp_tlmsp_cfg_action_kind_t kind; /* of the key being walked */
} act_build_t;

/* ---- templates ---- */

/* At p (a '$'), the length of a well-formed ${digits} and its number; 0 when p does not open one. */
static size_t template_ref(const uint8_t *p, size_t left, uint32_t *ref)
{
    if (left < 2 || p[0] != '$' || p[1] != '{') {
        return 0;
    }
    size_t i = 2;
    uint32_t v = 0;
    while (i < left && p[i] >= '0' && p[i] <= '9' && v <= MSP_TLMSP_CFG_MAX_TEMPLATE_REF) {
        v = v * 10 + (uint32_t)(p[i++] - '0');
    }
    if (i == 2 || i >= left || p[i] != '}' || v > MSP_TLMSP_CFG_MAX_TEMPLATE_REF) {
        return SIZE_MAX; /* "${" that is not a reference */
    }
    *ref = v;
    return i + 1;
}

/* Splits the decoded template into literal bytes each followed by a ${n}, the last perhaps by nothing. */
static int template_split(cfg_ld_t *ld, const msp_ucl_t *v, const char *in, msp_tlmsp_cfg_action_t *a)
{
    msp_tlmsp_cfg_segment_t *seg;
    int rc = cfg_new(ld, v, a->data.len / 4 + 1, sizeof(*seg), &seg);
    if (rc != MSP_OK) {
        return rc;
    }
    const uint8_t *p = a->data.p;
    size_t start = 0;
    size_t n = 0;
    for (size_t i = 0; i < a->data.len;) {
        uint32_t ref;
        size_t len = template_ref(p + i, a->data.len - i, &ref);
        if (len == SIZE_MAX) {
            /* The reference keeps a malformed reference as text; it is almost surely a typo. */
            return cfg_fail(ld, MSP_ERR_INVALID, v,
                            "\"template\" in %s has a \"${\" that is not a reference ${0} to ${%d}", in,
                            MSP_TLMSP_CFG_MAX_TEMPLATE_REF);
        }
        if (len == 0) {
            i++;
            continue;
        }
        seg[n++] = (msp_tlmsp_cfg_segment_t){{p + start, i - start}, ref};
        i += len;
        start = i;
    }
    if (start < a->data.len) {
        seg[n++] = (msp_tlmsp_cfg_segment_t){{p + start, a->data.len - start}, MSP_TLMSP_CFG_TEMPLATE_END};
    }
    a->segments = seg;
    a->n_segments = n;
    return MSP_OK;
}

/* ---- send and reply ---- */

static int payload_source(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_action_t *a)
{
    static const char *const keys[] = {"data", "file", "handler", "template"};
    static const msp_tlmsp_cfg_payload_t kinds[] = {MSP_TLMSP_CFG_PAYLOAD_DATA, MSP_TLMSP_CFG_PAYLOAD_FILE,
                                                    MSP_TLMSP_CFG_PAYLOAD_HANDLER, MSP_TLMSP_CFG_PAYLOAD_TEMPLATE};
    const msp_ucl_t *v = NULL;
    for (size_t i = 0; i < 4; i++) {
        const msp_ucl_t *c = cfg_find(node, keys[i]);
        if (c != NULL && v != NULL) {
            return cfg_fail(ld, MSP_ERR_INVALID, c, "%s has more than one of data, file, handler and template", in);
        }
        if (c != NULL) {
            v = c;
            a->payload = kinds[i];
        }
    }
    if (v == NULL) {
        return cfg_fail(ld, MSP_ERR_INVALID, node, "%s needs one of data, file, handler and template", in);
    }
    int rc = cfg_get_name(ld, v, v->key, in, &a->text);
    if (rc == MSP_OK && (a->payload == MSP_TLMSP_CFG_PAYLOAD_DATA || a->payload == MSP_TLMSP_CFG_PAYLOAD_TEMPLATE)) {
        rc = cfg_decode(ld, v, a->text, &a->data);
    }
    if (rc == MSP_OK && a->payload == MSP_TLMSP_CFG_PAYLOAD_TEMPLATE) {
        rc = template_split(ld, v, in, a);
    }
    return rc;
}

/* Data goes in a user context: "application data in context 0 is rejected" (tlmsp-records.md 4.2). */
static int send_one(cfg_ld_t *ld, const msp_ucl_t *node, act_build_t *b, msp_tlmsp_cfg_action_t *a)
{
    char in[180];
    snprintf(in, sizeof(in), "the %s of %s", a->kind == MSP_TLMSP_CFG_ACTION_SEND ? "send" : "reply", b->in);
    int rc = cfg_check_keys(ld, node, payload_keys, sizeof(payload_keys) / sizeof(payload_keys[0]), in);
    const msp_ucl_t *ctx = cfg_find(node, "context");
    if (rc == MSP_OK && ctx == NULL) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, node, "%s has no \"context\"", in);
    }
    if (rc == MSP_OK) {
        rc = cfg_context_ref(ld, ctx, false, in, &a->context_id);
    }
    return rc == MSP_OK ? payload_source(ld, node, in, a) : rc;
}

/* ---- alert ---- */

static int alert_description(cfg_ld_t *ld, const msp_ucl_t *v, const char *in, msp_tlmsp_cfg_action_t *a)
{
    if (v->type == MSP_UCL_STRING) {
        int d = cfg_alert_by_name(v->v.str.s);
        if (d < 0) {
            return cfg_fail(ld, MSP_ERR_INVALID, v, "unknown alert description \"%s\" in %s", v->v.str.s, in);
        }
        a->description = (uint8_t)d;
        return MSP_OK;
    }
    int64_t d;
    int rc = cfg_get_int(ld, v, "description", in, 0, 255, &d);
    a->description = (uint8_t)d;
    return rc;
}

/* warning (1) or fatal (2): any other level is fatal on receipt (tlmsp-records.md 10.2). */
static int alert_level(cfg_ld_t *ld, const msp_ucl_t *v, const char *in, msp_tlmsp_cfg_action_t *a)
{
    if (v->type == MSP_UCL_STRING && strcmp(v->v.str.s, "warning") == 0) {
        a->level = MSP_TLMSP_CFG_ALERT_WARNING;
    } else if (v->type == MSP_UCL_STRING && strcmp(v->v.str.s, "fatal") == 0) {
        a->level = MSP_TLMSP_CFG_ALERT_FATAL;
    } else {
        return cfg_fail(ld, MSP_ERR_INVALID, v, "\"level\" in %s must be warning or fatal", in);
    }
    return MSP_OK;
}

/* An alert container may use context 0, unlike data (tlmsp-records.md 4.2, 10.2). */
static int alert_one(cfg_ld_t *ld, const msp_ucl_t *node, act_build_t *b, msp_tlmsp_cfg_action_t *a)
{
    char in[180];
    snprintf(in, sizeof(in), "the alert of %s", b->in);
    int rc = cfg_check_keys(ld, node, alert_keys, sizeof(alert_keys) / sizeof(alert_keys[0]), in);
    for (size_t i = 0; i < 3 && rc == MSP_OK; i++) {
        if (cfg_find(node, alert_keys[i].name) == NULL) {
            rc = cfg_fail(ld, MSP_ERR_INVALID, node, "%s has no \"%s\"", in, alert_keys[i].name);
        }
    }
    if (rc == MSP_OK) {
        rc = cfg_context_ref(ld, cfg_find(node, "context"), true, in, &a->context_id);
    }
    if (rc == MSP_OK) {
        rc = alert_level(ld, cfg_find(node, "level"), in, a);
    }
    return rc == MSP_OK ? alert_description(ld, cfg_find(node, "description"), in, a) : rc;
}

/* ---- log, shutdown, renegotiate ---- */

static int log_one(cfg_ld_t *ld, const msp_ucl_t *node, act_build_t *b, msp_tlmsp_cfg_action_t *a)
{
    char in[180];
    snprintf(in, sizeof(in), "the log of %s", b->in);
    int rc = cfg_check_keys(ld, node, log_keys, 1, in);
    const msp_ucl_t *h = cfg_find(node, "handler");
    if (rc == MSP_OK && h == NULL) {
        rc = cfg_fail(ld, MSP_ERR_INVALID, node, "%s has no \"handler\"", in);
    }
    if (rc == MSP_OK) {
        a->payload = MSP_TLMSP_CFG_PAYLOAD_HANDLER;
        rc = cfg_get_name(ld, h, "handler", in, &a->text);
    }
    return rc;
}

static int flag_one(cfg_ld_t *ld, const msp_ucl_t *node, act_build_t *b)
{
    bool on;
    int rc = cfg_get_bool(ld, node, node->key, b->in, &on);
    if (rc == MSP_OK && !on) {
        /* The reference adds an action that does nothing. */
        rc = cfg_fail(ld, MSP_ERR_INVALID, node, "\"%s = no\" in %s does nothing; leave it out", node->key, b->in);
    }
    return rc;
}

static int action_item(cfg_ld_t *ld, const msp_ucl_t *item, void *arg)
{
    act_build_t *b = arg;
    msp_tlmsp_cfg_action_t *a = &b->actions[b->n++];
    a->kind = b->kind;
    a->line = item->line;
    int rc = MSP_OK;
    if (b->kind != MSP_TLMSP_CFG_ACTION_SHUTDOWN && b->kind != MSP_TLMSP_CFG_ACTION_RENEGOTIATE) {
        rc = cfg_need_object(ld, item, item->key != NULL ? item->key : "action", b->in);
    }
    if (rc != MSP_OK) {
        return rc;
    }
    switch (b->kind) {
    case MSP_TLMSP_CFG_ACTION_SEND:
    case MSP_TLMSP_CFG_ACTION_REPLY:
        return send_one(ld, item, b, a);
    case MSP_TLMSP_CFG_ACTION_ALERT:
        return alert_one(ld, item, b, a);
    case MSP_TLMSP_CFG_ACTION_LOG:
        return log_one(ld, item, b, a);
    default:
        return flag_one(ld, item, b);
    }
}

static msp_tlmsp_cfg_action_kind_t kind_of(const msp_ucl_t *node)
{
    static const msp_tlmsp_cfg_action_kind_t kinds[] = {
        MSP_TLMSP_CFG_ACTION_SEND, MSP_TLMSP_CFG_ACTION_REPLY,    MSP_TLMSP_CFG_ACTION_ALERT,
        MSP_TLMSP_CFG_ACTION_LOG,  MSP_TLMSP_CFG_ACTION_SHUTDOWN, MSP_TLMSP_CFG_ACTION_RENEGOTIATE,
    };
    for (size_t i = 0; i < 6; i++) {
        if (cfg_key_is(node, action_keys[i].name)) {
            return kinds[i];
        }
    }
    return MSP_TLMSP_CFG_ACTION_SEND; /* not reached: keys are checked first */
}

/*
 * libucl hands the reference one array per keyword, so it runs
 * `send, alert, send` in one block as send, send, alert. Rather than run
 * them in an order the file does not show, such a block is refused.
 */
static int block_order(cfg_ld_t *ld, const msp_ucl_t *block, const char *in)
{
    for (const msp_ucl_t *c = block->v.kids.first; c != NULL; c = c->next) {
        const msp_ucl_t *prev = NULL;
        bool other_between = false;
        for (const msp_ucl_t *p = block->v.kids.first; p != c; p = p->next) {
            if (cfg_key_is(p, c->key)) {
                prev = p;
                other_between = false;
            } else if (prev != NULL) {
                other_between = true;
            }
        }
        if (prev != NULL && other_between) {
            return cfg_fail(ld, MSP_ERR_INVALID, c,
                            "\"%s\" comes again after other actions in one action block of %s; the reference would "
                            "run it out of file order, so give it its own action block",
                            c->key, in);
        }
    }
    return MSP_OK;
}

static int block_visit(cfg_ld_t *ld, const msp_ucl_t *block, void *arg)
{
    act_build_t *b = arg;
    int rc = cfg_need_object(ld, block, "action", b->in);
    if (rc == MSP_OK) {
        rc = cfg_check_keys(ld, block, action_keys, sizeof(action_keys) / sizeof(action_keys[0]), b->in);
    }
    if (rc == MSP_OK) {
        rc = block_order(ld, block, b->in);
    }
    for (const msp_ucl_t *c = block->v.kids.first; c != NULL && rc == MSP_OK; c = c->next) {
        bool first = true;
        for (const msp_ucl_t *p = block->v.kids.first; p != c && first; p = p->next) {
            first = !cfg_key_is(p, c->key);
        }
        if (!first) {
            continue;
        }
        /* cfg_each walks every value of this keyword in the block, so visit each keyword once. */
        b->kind = kind_of(c);
        if (b->kind == MSP_TLMSP_CFG_ACTION_SHUTDOWN || b->kind == MSP_TLMSP_CFG_ACTION_RENEGOTIATE) {
            rc = action_item(ld, c, b); /* single-valued: an array is refused, not expanded */
        } else {
            rc = cfg_each(ld, block, c->key, b->in, action_item, b);
        }
    }
    return rc;
}

static int count_visit(cfg_ld_t *ld, const msp_ucl_t *block, void *arg)
{
    size_t *n = arg;
    if (block->type != MSP_UCL_OBJECT) {
        return MSP_OK; /* reported with its line when built */
    }
    for (const msp_ucl_t *c = block->v.kids.first; c != NULL; c = c->next) {
        /* An upper bound: keys not yet checked are counted too, and a flag is one action whatever it holds. */
        bool flag = cfg_key_is(c, "shutdown") || cfg_key_is(c, "renegotiate");
        *n += c->type == MSP_UCL_ARRAY && !flag ? c->v.kids.count : 1;
    }
    (void)ld;
    return MSP_OK;
}

int cfg_actions(cfg_ld_t *ld, const msp_ucl_t *activity, const char *in, msp_tlmsp_cfg_activity_t *a)
{
    size_t n = 0;
    int rc = cfg_each(ld, activity, "action", in, count_visit, &n);
    if (rc == MSP_OK && n > MSP_TLMSP_CFG_MAX_ACTIONS) {
        rc = cfg_fail(ld, MSP_ERR_LIMIT, cfg_find(activity, "action"), "%s has %zu actions, more than %d", in, n,
                      MSP_TLMSP_CFG_MAX_ACTIONS);
    }
    act_build_t b = {.in = in};
    if (rc == MSP_OK && n > 0) {
        rc = cfg_new(ld, activity, n, sizeof(msp_tlmsp_cfg_action_t), &b.actions);
    }
    if (rc == MSP_OK) {
        rc = cfg_each(ld, activity, "action", in, block_visit, &b);
    }
    a->actions = b.actions;
    a->n_actions = b.n;
    return rc;
}
