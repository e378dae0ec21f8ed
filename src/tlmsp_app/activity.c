/* The activity matcher (msp/tlmsp_activity.h): the reference's match loop, sans-IO. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "msp/tlmsp_activity.h"

#include <errno.h>
#include <pcre2.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msp/buf.h"

#define MAX_GROUPS 64
#define MAX_SEGMENTS 4096 /* containers held by an endpoint, whatever their size */
#define MAX_SCRATCH ((size_t)16 << 20)

typedef struct act_state {
    const msp_tlmsp_cfg_activity_t *a;
    bool which[256];
    pcre2_code *re;
    pcre2_match_data *md;
    uint8_t *pattern_file;
    size_t pattern_file_len;
    uint8_t **payload; /* per action: a file's contents */
    size_t *payload_len;
    bool *streamed;              /* per action: a file too big to hold, sent by the caller in chunks */
    uint64_t inspected, matched; /* container matches, by container number as the reference counts */
    uint64_t due;
} act_state_t;

typedef struct segment {
    uint8_t ctx;
    size_t off, len;
    uint64_t number;
} segment_t;

typedef struct pending {
    msp_tlmsp_action_t act;
    size_t off;
} pending_t;

/* A match: [start, end) in the searched bytes, and its groups (group 0 is the match). */
typedef struct hit {
    size_t start, end;
    uint8_t ctx;
    size_t n;
    const uint8_t *p[MAX_GROUPS];
    size_t len[MAX_GROUPS];
} hit_t;

/* A verdict decided for a held container (its data in rel_bytes). */
typedef struct released {
    msp_tlmsp_verdict_t v;
    size_t off, len;
} released_t;

struct msp_tlmsp_activity {
    msp_tlmsp_activity_cfg_t cfg;
    size_t n;
    act_state_t *st;
    uint64_t counter; /* containers seen */
    bool matching;    /* some activity has a container or pattern match */
    msp_buf_t queue;  /* an endpoint's held bytes; segs say which container each came from */
    segment_t *segs;  /* grown as containers are held (at most MAX_SEGMENTS): an idle matcher holds none */
    size_t nsegs, cap_segs;
    pending_t *acts;
    size_t nacts, cap_acts, taken;
    msp_buf_t bytes;       /* the actions' payloads */
    msp_buf_t scratch;     /* a payload being built */
    msp_buf_t replacement; /* a middlebox's new container; holding: the new data of every container of the run */
    /* a holding middlebox (cfg.hold): the run held is segs/queue (undecided bytes), of context run_ctx */
    bool hold;
    uint8_t run_ctx;
    msp_buf_t prefix;                                         /* the first held container's data decided already */
    bool prefix_modified;                                     /* and whether that changed it */
    size_t out_start[MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS + 2]; /* where each container's data starts in replacement */
    bool modified[MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS + 1];
    size_t cur; /* the container replacement is being written for */
    /* verdicts decided for held containers, until taken */
    struct released *rel;  /* MSP_TLMSP_HOLD_MAX_CONTAINERS, the most the engine holds and queues behind */
    size_t rel_n, rel_cap; /* the four rel arrays grow together, up to MSP_TLMSP_HOLD_MAX_CONTAINERS */
    bool rel_taken;
    msp_buf_t rel_bytes;
    msp_tlmsp_verdict_t *rel_v; /* what take_released hands out */
    const uint8_t **rel_data;
    size_t *rel_len;
};

/* ---- set-up ---- */

/*
 * Reads a pattern or payload file whole. streamed (NULL: not allowed) is set instead for a payload file over
 * MSP_TLMSP_ACTIVITY_MAX_FILE: an endpoint sends it as MSP_TLMSP_ACTION_SEND_FILE, read by the caller in chunks.
 */
static int read_file(const char *name, uint8_t **out, size_t *out_len, bool *streamed, uint32_t line,
                     const char *cfg_name, msp_error_t *err)
{
    char where[160];
    snprintf(where, sizeof(where), "%s:%u", cfg_name, line);
    FILE *f = fopen(name, "rb");
    if (f == NULL) {
        return msp_error_set(err, MSP_ERR_IO, where, "%s: %s", name, strerror(errno));
    }
    struct stat sb;
    if (streamed != NULL && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
        (uint64_t)sb.st_size > MSP_TLMSP_ACTIVITY_MAX_FILE) {
        fclose(f);
        *streamed = true;
        return MSP_OK;
    }
    uint8_t *b = malloc(MSP_TLMSP_ACTIVITY_MAX_FILE);
    size_t n = b != NULL ? fread(b, 1, MSP_TLMSP_ACTIVITY_MAX_FILE, f) : 0;
    int code = b == NULL                                             ? MSP_ERR_NO_MEMORY
               : ferror(f)                                           ? MSP_ERR_IO
               : n == MSP_TLMSP_ACTIVITY_MAX_FILE && fgetc(f) != EOF ? MSP_ERR_LIMIT
                                                                     : MSP_OK;
    fclose(f);
    if (code != MSP_OK) {
        free(b);
        return msp_error_set(err, code, where, "%s: unreadable or larger than 16 MiB%s", name,
                             streamed == NULL ? "" : " (a middlebox holds the files it sends in memory)");
    }
    uint8_t *fit = realloc(b, n > 0 ? n : 1); /* keep what the file holds, not the ceiling */
    *out = fit != NULL ? fit : b;
    *out_len = n;
    return MSP_OK;
}

static int compile(act_state_t *st, const char *cfg_name, msp_error_t *err)
{
    int code;
    PCRE2_SIZE at;
    /* the reference's options: \u and \x as in JavaScript, $ only at the very end, . matches newlines */
    st->re = pcre2_compile((PCRE2_SPTR)st->a->match.text, PCRE2_ZERO_TERMINATED,
                           PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY | PCRE2_DOTALL, &code, &at, NULL);
    if (st->re == NULL) {
        PCRE2_UCHAR msg[128];
        char where[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(where, sizeof(where), "%s:%u", cfg_name, st->a->match.line);
        return msp_error_set(err, MSP_ERR_INVALID, where, "regex of activity %s at offset %zu: %s", st->a->tag,
                             (size_t)at, (const char *)msg);
    }
    st->md = pcre2_match_data_create_from_pattern(st->re, NULL);
    return st->md != NULL ? MSP_OK : msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "out of memory");
}

static int prepare(act_state_t *st, bool middlebox, const char *cfg_name, msp_error_t *err)
{
    const msp_tlmsp_cfg_activity_t *a = st->a;
    const msp_tlmsp_cfg_match_t *m = &a->match;
    int rc = MSP_OK;
    for (size_t i = 0; i < m->n_which; i++) {
        st->which[m->which[i]] = true;
    }
    if (m->which_all) {
        memset(st->which, 1, sizeof(st->which));
    }
    st->due = MSP_TLMSP_ACTIVITY_NO_TIME;
    if (m->pattern == MSP_TLMSP_CFG_PATTERN_REGEX) {
        rc = compile(st, cfg_name, err);
    } else if (m->pattern == MSP_TLMSP_CFG_PATTERN_FILE) {
        rc = read_file(m->text, &st->pattern_file, &st->pattern_file_len, NULL, m->line, cfg_name, err);
    }
    st->payload = calloc(a->n_actions + 1, sizeof(*st->payload));
    st->payload_len = calloc(a->n_actions + 1, sizeof(*st->payload_len));
    st->streamed = calloc(a->n_actions + 1, sizeof(*st->streamed));
    if (rc == MSP_OK && (st->payload == NULL || st->payload_len == NULL || st->streamed == NULL)) {
        rc = msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "out of memory");
    }
    for (size_t i = 0; rc == MSP_OK && i < a->n_actions; i++) {
        const msp_tlmsp_cfg_action_t *x = &a->actions[i];
        if (x->kind == MSP_TLMSP_CFG_ACTION_RENEGOTIATE) {
            char where[160];
            snprintf(where, sizeof(where), "%s:%u", cfg_name, x->line);
            rc = msp_error_set(err, MSP_ERR_INVALID, where,
                               "activity %s: renegotiate is not supported by TLMSP (the reference cannot do it either)",
                               a->tag);
        } else if (x->payload == MSP_TLMSP_CFG_PAYLOAD_FILE) {
            rc = read_file(x->text, &st->payload[i], &st->payload_len[i], middlebox ? NULL : &st->streamed[i], x->line,
                           cfg_name, err);
        }
    }
    return rc;
}

int msp_tlmsp_activity_new(const msp_tlmsp_activity_cfg_t *cfg, msp_tlmsp_activity_t **out, msp_error_t *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->cfg == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "no configuration");
    }
    msp_tlmsp_activity_t *a = calloc(1, sizeof(*a));
    size_t n = cfg->functions != NULL ? cfg->functions->n : 0;
    if (a == NULL || (a->st = calloc(n + 1, sizeof(*a->st))) == NULL) {
        msp_tlmsp_activity_free(a);
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "out of memory");
    }
    a->cfg = *cfg;
    if (a->cfg.max_queue == 0) {
        a->cfg.max_queue = MSP_TLMSP_ACTIVITY_DEFAULT_QUEUE;
    }
    msp_buf_init(&a->queue, a->cfg.max_queue + MSP_TLMSP_MAX_CONTAINER_PLAINTEXT);
    msp_buf_init(&a->bytes, MSP_TLMSP_ACTIVITY_MAX_PENDING);
    msp_buf_init(&a->scratch, MAX_SCRATCH);
    msp_buf_init(&a->replacement, MAX_SCRATCH);
    msp_buf_init(&a->prefix, MSP_TLMSP_ACTIVITY_HOLD_BYTES + MSP_TLMSP_MAX_CONTAINER_PLAINTEXT);
    msp_buf_init(&a->rel_bytes, MAX_SCRATCH);
    for (size_t i = 0; i < n; i++) {
        a->st[a->n].a = &cfg->cfg->activities[cfg->functions->activity[i]];
        a->n++;
        const msp_tlmsp_cfg_match_t *m = &a->st[a->n - 1].a->match;
        a->matching |= m->container != MSP_TLMSP_CFG_CONTAINER_NONE || m->pattern != MSP_TLMSP_CFG_PATTERN_NONE;
        int rc = prepare(&a->st[a->n - 1], cfg->middlebox, cfg->cfg->name, err);
        if (rc != MSP_OK) {
            msp_tlmsp_activity_free(a);
            return rc;
        }
    }
    *out = a;
    return MSP_OK;
}

void msp_tlmsp_activity_free(msp_tlmsp_activity_t *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; a->st != NULL && i < a->n; i++) {
        act_state_t *st = &a->st[i];
        pcre2_match_data_free(st->md);
        pcre2_code_free(st->re);
        free(st->pattern_file);
        for (size_t k = 0; st->payload != NULL && k < st->a->n_actions; k++) {
            free(st->payload[k]);
        }
        free(st->payload);
        free(st->payload_len);
        free(st->streamed);
    }
    free(a->st);
    free(a->segs);
    free(a->acts);
    msp_buf_free(&a->queue);
    msp_buf_free(&a->bytes);
    msp_buf_free(&a->scratch);
    msp_buf_free(&a->replacement);
    msp_buf_free(&a->prefix);
    msp_buf_free(&a->rel_bytes);
    free(a->rel);
    free(a->rel_v);
    free(a->rel_data);
    free(a->rel_len);
    free(a);
}

/* ---- the actions taken by the caller ---- */

/* Once every action was taken, the storage starts over (the last one's bytes stayed valid until this call). */
static void actions_reset(msp_tlmsp_activity_t *a)
{
    if (a->taken == a->nacts) {
        a->taken = a->nacts = 0;
        a->bytes.len = 0;
        a->bytes.err = MSP_OK;
    }
}

static int push(msp_tlmsp_activity_t *a, const msp_tlmsp_action_t *act, const uint8_t *p, size_t len)
{
    if (a->nacts == a->cap_acts) {
        size_t cap = a->cap_acts != 0 ? 2 * a->cap_acts : 16;
        pending_t *q = cap <= MSP_TLMSP_ACTIVITY_MAX_PENDING / sizeof(*q) ? realloc(a->acts, cap * sizeof(*q)) : NULL;
        if (q == NULL) {
            return MSP_ERR_NO_MEMORY;
        }
        a->acts = q;
        a->cap_acts = cap;
    }
    size_t off = a->bytes.len;
    if (msp_buf_put(&a->bytes, p, len) != MSP_OK) {
        a->bytes.err = MSP_OK;
        a->bytes.len = off;
        return MSP_ERR_LIMIT;
    }
    a->acts[a->nacts].act = *act;
    a->acts[a->nacts].act.len = len;
    a->acts[a->nacts].off = off;
    a->nacts++;
    return MSP_OK;
}

bool msp_tlmsp_activity_next(msp_tlmsp_activity_t *a, msp_tlmsp_action_t *out)
{
    if (a->taken == a->nacts) {
        return false;
    }
    pending_t *q = &a->acts[a->taken++];
    *out = q->act;
    out->p = a->bytes.base != NULL ? a->bytes.base + q->off : (const uint8_t *)"";
    return true;
}

/* ---- running an activity's actions ---- */

static const hit_t no_groups = {0};

/* The bytes of a data, file or template payload, into a->scratch. */
static int payload(msp_tlmsp_activity_t *a, const act_state_t *st, size_t i, const hit_t *g)
{
    const msp_tlmsp_cfg_action_t *x = &st->a->actions[i];
    msp_buf_t *out = &a->scratch;
    out->len = 0;
    out->err = MSP_OK;
    if (x->payload == MSP_TLMSP_CFG_PAYLOAD_DATA) {
        msp_buf_put(out, x->data.p, x->data.len);
    } else if (x->payload == MSP_TLMSP_CFG_PAYLOAD_FILE) {
        msp_buf_put(out, st->payload[i], st->payload_len[i]);
    } else if (x->payload == MSP_TLMSP_CFG_PAYLOAD_TEMPLATE) {
        for (size_t k = 0; k < x->n_segments; k++) {
            const msp_tlmsp_cfg_segment_t *s = &x->segments[k];
            msp_buf_put(out, s->data.p, s->data.len);
            /* an undefined reference is empty, as documented in everything.ucl */
            if (s->ref != MSP_TLMSP_CFG_TEMPLATE_END && s->ref < g->n) {
                msp_buf_put(out, g->p[s->ref], g->len[s->ref]);
            }
        }
    }
    return msp_buf_error(out);
}

/* send / reply / log: in place (middlebox, same context and direction), queued, or a handler to run. */
static int act_payload(msp_tlmsp_activity_t *a, const act_state_t *st, size_t i, const hit_t *g, int in_place)
{
    const msp_tlmsp_cfg_action_t *x = &st->a->actions[i];
    bool reply = x->kind == MSP_TLMSP_CFG_ACTION_REPLY && a->cfg.middlebox;
    msp_tlmsp_action_t act = {.activity = st->a, .line = x->line, .context = x->context_id};
    act.to_server = reply ? !a->cfg.to_server : a->cfg.to_server;
    act.log = x->kind == MSP_TLMSP_CFG_ACTION_LOG;
    if (x->payload == MSP_TLMSP_CFG_PAYLOAD_HANDLER) {
        act.kind = MSP_TLMSP_ACTION_HANDLER;
        act.command = x->text;
        return push(a, &act, g->n > 0 ? g->p[0] : NULL, g->n > 0 ? g->len[0] : 0);
    }
    if (!act.log && x->payload == MSP_TLMSP_CFG_PAYLOAD_FILE && st->streamed[i]) {
        act.kind = MSP_TLMSP_ACTION_SEND_FILE;
        act.file = x->text;
        return push(a, &act, NULL, 0);
    }
    int rc = act.log ? MSP_OK : payload(a, st, i, g); /* a log has only a handler (everything.ucl) */
    if (act.log || rc != MSP_OK) {
        return rc;
    }
    act.kind = MSP_TLMSP_ACTION_SEND;
    if (in_place >= 0 && act.to_server == a->cfg.to_server && x->context_id == in_place) {
        act.applied = true;
        rc = msp_buf_put(&a->replacement, a->scratch.base, a->scratch.len);
    }
    return rc != MSP_OK ? rc : push(a, &act, a->scratch.base, a->scratch.len);
}

/*
 * The actions of a match (g) or of a timer (no groups), in configuration order. in_place: the matched
 * container's context when a middlebox deletes the match (its sends there and in this direction take the
 * match's place, in a->replacement), else -1.
 */
static int act(msp_tlmsp_activity_t *a, const act_state_t *st, const hit_t *g, int in_place)
{
    int rc = MSP_OK;
    for (size_t i = 0; rc == MSP_OK && i < st->a->n_actions; i++) {
        const msp_tlmsp_cfg_action_t *x = &st->a->actions[i];
        msp_tlmsp_action_t simple = {.activity = st->a, .line = x->line, .to_server = a->cfg.to_server};
        if (x->kind == MSP_TLMSP_CFG_ACTION_ALERT) {
            simple.kind = MSP_TLMSP_ACTION_ALERT;
            simple.context = x->context_id;
            simple.level = (uint8_t)x->level;
            simple.description = x->description;
            rc = push(a, &simple, NULL, 0);
        } else if (x->kind == MSP_TLMSP_CFG_ACTION_SHUTDOWN) {
            simple.kind = MSP_TLMSP_ACTION_SHUTDOWN;
            rc = push(a, &simple, NULL, 0);
        } else {
            rc = act_payload(a, st, i, g, in_place);
        }
    }
    return rc;
}

static int matched(msp_tlmsp_activity_t *a, const act_state_t *st, const hit_t *h, int in_place)
{
    msp_tlmsp_action_t m = {.kind = MSP_TLMSP_ACTION_MATCHED, .activity = st->a, .context = h->ctx};
    m.to_server = a->cfg.to_server;
    int rc = push(a, &m, h->p[0], h->len[0]);
    return rc != MSP_OK ? rc : act(a, st, h, in_place);
}

/* ---- time ---- */

void msp_tlmsp_activity_start(msp_tlmsp_activity_t *a, uint64_t now_ms)
{
    for (size_t i = 0; i < a->n; i++) {
        const msp_tlmsp_cfg_match_t *m = &a->st[i].a->match;
        a->st[i].due = m->has_at ? now_ms + m->at_ms : m->has_every ? now_ms + m->every_ms : MSP_TLMSP_ACTIVITY_NO_TIME;
    }
}

void msp_tlmsp_activity_stop(msp_tlmsp_activity_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        a->st[i].due = MSP_TLMSP_ACTIVITY_NO_TIME;
    }
    a->queue.len = 0;
    a->nsegs = 0;
    a->prefix.len = 0;
    a->rel_n = 0;
    a->rel_bytes.len = 0;
    a->taken = a->nacts;
    actions_reset(a);
}

uint64_t msp_tlmsp_activity_next_due(const msp_tlmsp_activity_t *a)
{
    uint64_t due = MSP_TLMSP_ACTIVITY_NO_TIME;
    for (size_t i = 0; i < a->n; i++) {
        due = a->st[i].due < due ? a->st[i].due : due;
    }
    return due;
}

int msp_tlmsp_activity_advance(msp_tlmsp_activity_t *a, uint64_t now_ms)
{
    int rc = MSP_OK;
    actions_reset(a);
    for (size_t i = 0; rc == MSP_OK && i < a->n; i++) {
        act_state_t *st = &a->st[i];
        if (st->due > now_ms) {
            continue;
        }
        uint64_t every = st->a->match.has_every ? st->a->match.every_ms : 0;
        st->due = every == 0 ? MSP_TLMSP_ACTIVITY_NO_TIME : st->due + every > now_ms ? st->due + every : now_ms + every;
        rc = act(a, st, &no_groups, -1);
    }
    return rc;
}

/* ---- matching ---- */

/* The reference's container conditions, for the container with this number. */
static bool container_hit(act_state_t *st, uint64_t number)
{
    const msp_tlmsp_cfg_match_t *m = &st->a->match;
    bool hit = false;
    st->inspected = number > st->inspected ? number : st->inspected;
    if (m->container == MSP_TLMSP_CFG_CONTAINER_NTH) {
        hit = number == m->container_n;
    } else if (m->container == MSP_TLMSP_CFG_CONTAINER_PROBABILITY) {
        hit = (double)st->matched < m->container_p * (double)st->inspected;
    } else {
        hit = m->container == MSP_TLMSP_CFG_CONTAINER_ALL;
    }
    st->matched += hit;
    return hit;
}

/* The first match of st's pattern in p[0..len): start, end and groups (pointers into p). */
static bool pattern_hit(act_state_t *st, const uint8_t *p, size_t len, hit_t *h)
{
    const msp_tlmsp_cfg_match_t *m = &st->a->match;
    if (m->pattern == MSP_TLMSP_CFG_PATTERN_REGEX) {
        int rc = pcre2_match(st->re, p != NULL ? p : (const uint8_t *)"", len, 0, 0, st->md, NULL);
        if (rc <= 0) {
            return false;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
        h->n = (size_t)(rc < MAX_GROUPS ? rc : MAX_GROUPS);
        for (size_t i = 0; i < h->n; i++) {
            bool unset = ov[2 * i] == PCRE2_UNSET;
            h->p[i] = unset ? p : p + ov[2 * i];
            h->len[i] = unset ? 0 : ov[2 * i + 1] - ov[2 * i];
        }
        h->start = ov[0];
        h->end = ov[1];
        return true;
    }
    const uint8_t *pat = m->pattern == MSP_TLMSP_CFG_PATTERN_FILE ? st->pattern_file : m->data.p;
    size_t pat_len = m->pattern == MSP_TLMSP_CFG_PATTERN_FILE ? st->pattern_file_len : m->data.len;
    /* an empty pattern never matches (reference) */
    const uint8_t *at = pat_len > 0 && pat_len <= len ? memmem(p, len, pat, pat_len) : NULL;
    if (at == NULL) {
        return false;
    }
    h->n = 1;
    h->p[0] = at;
    h->len[0] = pat_len;
    h->start = (size_t)(at - p);
    h->end = h->start + pat_len;
    return true;
}

static bool whole(const uint8_t *p, size_t start, size_t len, uint8_t ctx, hit_t *h)
{
    h->n = 1;
    h->p[0] = p != NULL ? p + start : p;
    h->len[0] = len;
    h->start = start;
    h->end = start + len;
    h->ctx = ctx;
    return true;
}

/* An endpoint: st's earliest match in the held containers, with offsets into the queue. */
static bool queue_hit(msp_tlmsp_activity_t *a, act_state_t *st, hit_t *h)
{
    const msp_tlmsp_cfg_match_t *m = &st->a->match;
    size_t first = 0;
    if (m->container != MSP_TLMSP_CFG_CONTAINER_NONE) {
        for (size_t i = 0; i < a->nsegs; i++) {
            const segment_t *s = &a->segs[i];
            if (st->which[s->ctx] && container_hit(st, s->number)) {
                return whole(a->queue.base, s->off, s->len, s->ctx, h);
            }
        }
        return false;
    }
    if (m->pattern == MSP_TLMSP_CFG_PATTERN_NONE) {
        return false;
    }
    /* the first run of consecutive containers in the activity's contexts */
    while (first < a->nsegs && !st->which[a->segs[first].ctx]) {
        first++;
    }
    size_t last = first;
    while (last < a->nsegs && st->which[a->segs[last].ctx]) {
        last++;
    }
    if (first == last) {
        return false;
    }
    size_t off = a->segs[first].off, end = a->segs[last - 1].off + a->segs[last - 1].len;
    if (!pattern_hit(st, a->queue.base + off, end - off, h)) {
        return false;
    }
    h->start += off;
    h->end += off;
    /* the context of the container the match starts in */
    size_t i = first;
    while (i + 1 < last && a->segs[i].off + a->segs[i].len <= h->start) {
        i++;
    }
    h->ctx = a->segs[i].ctx;
    return true;
}

/* Drops the first n held bytes (consumed by a match, or over the limit). */
static void consume(msp_tlmsp_activity_t *a, size_t n)
{
    size_t keep = 0;
    for (size_t i = 0; i < a->nsegs; i++) {
        segment_t s = a->segs[i];
        if (s.off + s.len > n || (s.len == 0 && s.off > n)) {
            size_t cut = n > s.off ? n - s.off : 0;
            a->segs[keep] = (segment_t){s.ctx, s.off + cut - n, s.len - cut, s.number};
            keep++;
        }
    }
    a->nsegs = keep;
    if (a->queue.len > n) {
        memmove(a->queue.base, a->queue.base + n, a->queue.len - n);
    }
    a->queue.len -= n;
}

/* Room for one more segment (nsegs < MAX_SEGMENTS here). */
static int segs_room(msp_tlmsp_activity_t *a)
{
    if (a->nsegs < a->cap_segs) {
        return MSP_OK;
    }
    size_t cap = a->cap_segs > 0 ? 2 * a->cap_segs : 16;
    cap = cap < MAX_SEGMENTS ? cap : MAX_SEGMENTS;
    segment_t *s = realloc(a->segs, cap * sizeof(*s));
    if (s == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    a->segs = s;
    a->cap_segs = cap;
    return MSP_OK;
}

/* The bytes of one container join the held ones (and its segment the list). */
static int queue_segment(msp_tlmsp_activity_t *a, uint8_t ctx, const uint8_t *p, size_t len)
{
    int rc = segs_room(a);
    if (rc != MSP_OK) {
        return rc;
    }
    rc = msp_buf_put(&a->queue, p, len);
    if (rc != MSP_OK) {
        a->queue.err = MSP_OK;
        return rc;
    }
    a->segs[a->nsegs++] = (segment_t){ctx, a->queue.len - len, len, a->counter};
    return MSP_OK;
}

static int endpoint_input(msp_tlmsp_activity_t *a, uint8_t ctx, const uint8_t *p, size_t len)
{
    if (a->nsegs == MAX_SEGMENTS && a->segs[0].len == 0) {
        memmove(a->segs, a->segs + 1, (--a->nsegs) * sizeof(*a->segs));
    } else if (a->nsegs == MAX_SEGMENTS) {
        consume(a, a->segs[0].off + a->segs[0].len);
    }
    int rc = MSP_OK;
    if (a->cfg.reflect) {
        msp_tlmsp_action_t back = {.kind = MSP_TLMSP_ACTION_SEND, .context = ctx, .to_server = a->cfg.to_server};
        rc = push(a, &back, p, len);
    }
    if (rc != MSP_OK || !a->matching) {
        return rc; /* nothing would ever look at what is held */
    }
    rc = queue_segment(a, ctx, p, len);
    if (rc != MSP_OK) {
        return rc;
    }
    for (bool again = true; again && rc == MSP_OK && a->nsegs > 0;) {
        hit_t best = {.start = SIZE_MAX}, h;
        act_state_t *win = NULL;
        for (size_t i = 0; i < a->n; i++) {
            memset(&h, 0, sizeof(h));
            if (queue_hit(a, &a->st[i], &h) && h.start < best.start) {
                best = h;
                win = &a->st[i];
            }
        }
        again = win != NULL;
        if (again) {
            rc = matched(a, win, &best, -1);
            /* everything through the end of the match is consumed; an empty match at the start would never end */
            again = best.end > 0;
            consume(a, best.end);
        }
    }
    if (a->queue.len > a->cfg.max_queue) {
        consume(a, a->queue.len - a->cfg.max_queue);
    }
    return rc;
}

/* A middlebox: st's earliest match in p[pos..len) of the container passing through. */
static bool container_search(act_state_t *st, uint8_t ctx, const uint8_t *p, size_t pos, size_t len, uint64_t number,
                             hit_t *h)
{
    const msp_tlmsp_cfg_match_t *m = &st->a->match;
    if (!st->which[ctx]) {
        return false;
    }
    if (m->container != MSP_TLMSP_CFG_CONTAINER_NONE) {
        return pos == 0 && container_hit(st, number) && whole(p, 0, len, ctx, h);
    }
    if (m->pattern == MSP_TLMSP_CFG_PATTERN_NONE || !pattern_hit(st, p + pos, len - pos, h)) {
        return false;
    }
    h->start += pos;
    h->end += pos;
    h->ctx = ctx;
    return true;
}

static int middlebox_input(msp_tlmsp_activity_t *a, uint8_t ctx, uint8_t access, const uint8_t *p, size_t len,
                           bool *modified)
{
    size_t pos = 0;
    int rc = MSP_OK;
    a->replacement.len = 0;
    a->replacement.err = MSP_OK;
    for (bool again = p != NULL; again && rc == MSP_OK;) {
        hit_t best = {.start = SIZE_MAX}, h;
        act_state_t *win = NULL;
        for (size_t i = 0; i < a->n; i++) {
            memset(&h, 0, sizeof(h));
            if (container_search(&a->st[i], ctx, p, pos, len, a->counter, &h) && h.start < best.start) {
                best = h;
                win = &a->st[i];
            }
        }
        if (win == NULL) {
            break;
        }
        /* forward = yes (or no write access): the data stays and the rest of the container goes with it */
        if (win->a->match.forward || access != MSP_TLMSP_ACCESS_RW) {
            rc = matched(a, win, &best, -1);
            break;
        }
        /* the match is deleted: what is around it stays, the actions' sends here take its place */
        msp_buf_put(&a->replacement, p + pos, best.start - pos);
        rc = matched(a, win, &best, ctx);
        *modified = true;
        again = best.end > best.start;
        pos = best.end;
    }
    if (p != NULL) {
        msp_buf_put(&a->replacement, p + pos, len - pos);
    }
    return rc != MSP_OK ? rc : msp_buf_error(&a->replacement);
}

/* ---- a holding middlebox (cfg.hold) ---- */

/* From here on replacement takes container j's data (every container before it has its start). */
static void out_to(msp_tlmsp_activity_t *a, size_t j)
{
    while (a->cur < j) {
        a->out_start[++a->cur] = a->replacement.len;
    }
}

/* The run's bytes [x, y) stay: each into its own container's new data. */
static void keep(msp_tlmsp_activity_t *a, size_t x, size_t y)
{
    for (size_t j = a->cur; x < y && j < a->nsegs; j++) {
        size_t end = a->segs[j].off + a->segs[j].len;
        if (x >= end) {
            continue;
        }
        out_to(a, j);
        size_t n = (y < end ? y : end) - x;
        msp_buf_put(&a->replacement, a->queue.base + x, n);
        x += n;
    }
}

/* The container the run's byte x is in (the last one for the end). */
static size_t seg_at(const msp_tlmsp_activity_t *a, size_t x)
{
    size_t j = 0;
    while (j + 1 < a->nsegs && a->segs[j].off + a->segs[j].len <= x) {
        j++;
    }
    return j;
}

/* Where, from pos on, some pattern could begin a match that more data would complete; the end if nowhere. */
static size_t partial_start(msp_tlmsp_activity_t *a, size_t pos)
{
    size_t end = a->queue.len, q = end;
    const uint8_t *b = a->queue.base;
    for (size_t i = 0; i < a->n && pos < end; i++) {
        act_state_t *st = &a->st[i];
        const msp_tlmsp_cfg_match_t *m = &st->a->match;
        if (!st->which[a->run_ctx] || m->pattern == MSP_TLMSP_CFG_PATTERN_NONE) {
            continue;
        }
        if (m->pattern == MSP_TLMSP_CFG_PATTERN_REGEX) {
            if (pcre2_match(st->re, b + pos, end - pos, 0, PCRE2_PARTIAL_HARD, st->md, NULL) == PCRE2_ERROR_PARTIAL) {
                size_t at = pos + pcre2_get_ovector_pointer(st->md)[0];
                q = at < q ? at : q;
            }
            continue;
        }
        const uint8_t *pat = m->pattern == MSP_TLMSP_CFG_PATTERN_FILE ? st->pattern_file : m->data.p;
        size_t pat_len = m->pattern == MSP_TLMSP_CFG_PATTERN_FILE ? st->pattern_file_len : m->data.len;
        /* a suffix of the bytes that begins the pattern */
        for (size_t at = end - pos + 1 > pat_len ? end - pat_len + 1 : pos; pat_len > 0 && at < end && at < q; at++) {
            if (memcmp(b + at, pat, end - at) == 0) {
                q = at;
                break;
            }
        }
    }
    return q;
}

/* Container j of the run, decided: what becomes of it, its data in replacement. */
static msp_tlmsp_verdict_t verdict_of(const msp_tlmsp_activity_t *a, size_t j, size_t *off, size_t *len)
{
    *off = a->out_start[j];
    *len = a->out_start[j + 1] - a->out_start[j];
    return !a->modified[j] ? MSP_TLMSP_FORWARD : *len == 0 ? MSP_TLMSP_DELETE : MSP_TLMSP_REPLACE;
}

/* Room for one more decided container (the arrays handed out by take_released are valid until the next call). */
static int rel_room(msp_tlmsp_activity_t *a)
{
    if (a->rel_n < a->rel_cap) {
        return MSP_OK;
    }
    if (a->rel_cap == MSP_TLMSP_HOLD_MAX_CONTAINERS) {
        return MSP_ERR_LIMIT; /* the engine could not hold them either */
    }
    size_t cap = a->rel_cap > 0 ? 2 * a->rel_cap : 16;
    cap = cap < MSP_TLMSP_HOLD_MAX_CONTAINERS ? cap : MSP_TLMSP_HOLD_MAX_CONTAINERS;
    released_t *r = realloc(a->rel, cap * sizeof(*r));
    a->rel = r != NULL ? r : a->rel;
    msp_tlmsp_verdict_t *v = r != NULL ? realloc(a->rel_v, cap * sizeof(*v)) : NULL;
    a->rel_v = v != NULL ? v : a->rel_v;
    const uint8_t **d = v != NULL ? realloc(a->rel_data, cap * sizeof(*d)) : NULL;
    a->rel_data = d != NULL ? d : a->rel_data;
    size_t *l = d != NULL ? realloc(a->rel_len, cap * sizeof(*l)) : NULL;
    a->rel_len = l != NULL ? l : a->rel_len;
    if (l == NULL) {
        return MSP_ERR_NO_MEMORY; /* the arrays that grew keep the old capacity's contents */
    }
    a->rel_cap = cap;
    return MSP_OK;
}

static int release_one(msp_tlmsp_activity_t *a, msp_tlmsp_verdict_t v, const uint8_t *p, size_t len)
{
    int room = rel_room(a);
    if (room != MSP_OK) {
        return room;
    }
    released_t *r = &a->rel[a->rel_n];
    r->v = v;
    r->off = a->rel_bytes.len;
    r->len = v == MSP_TLMSP_REPLACE ? len : 0;
    int rc = r->len > 0 ? msp_buf_put(&a->rel_bytes, p, r->len) : MSP_OK;
    a->rel_n += rc == MSP_OK;
    return rc;
}

/* Storage handed out by take_released lives until the next call. */
static void rel_reset(msp_tlmsp_activity_t *a)
{
    if (a->rel_taken) {
        a->rel_taken = false;
        a->rel_n = 0;
        a->rel_bytes.len = 0;
        a->rel_bytes.err = MSP_OK;
    }
}

/* The run starts over: replacement gets the first container's decided data. */
static void run_begin(msp_tlmsp_activity_t *a)
{
    a->replacement.len = 0;
    a->replacement.err = MSP_OK;
    if (a->prefix.len > 0) {
        msp_buf_put(&a->replacement, a->prefix.base, a->prefix.len);
    }
    a->cur = 0;
    a->out_start[0] = 0;
    memset(a->modified, 0, sizeof(a->modified));
    a->modified[0] = a->prefix_modified;
}

/* Containers [0, h) of the run are decided (the last of them, when it is the current one, is returned); the rest
 * stays held, the first of them with what was decided of it from q on. */
static int run_end(msp_tlmsp_activity_t *a, size_t q, size_t h, bool current_decided)
{
    int rc = msp_buf_error(&a->replacement);
    out_to(a, h);
    for (size_t j = 0; rc == MSP_OK && j < h && (j + 1 < a->nsegs || !current_decided); j++) {
        size_t off, len;
        msp_tlmsp_verdict_t v = verdict_of(a, j, &off, &len);
        rc = release_one(a, v, len > 0 ? a->replacement.base + off : NULL, len);
    }
    a->prefix.len = 0;
    a->prefix.err = MSP_OK;
    a->prefix_modified = h < a->nsegs && a->modified[h];
    if (h < a->nsegs && a->replacement.len > a->out_start[h]) {
        msp_buf_put(&a->prefix, a->replacement.base + a->out_start[h], a->replacement.len - a->out_start[h]);
        rc = rc != MSP_OK ? rc : msp_buf_error(&a->prefix);
    }
    size_t keep_segs = a->nsegs - h;
    for (size_t j = 0; j < keep_segs; j++) {
        segment_t s = a->segs[h + j];
        size_t from = s.off > q ? s.off : q;
        a->segs[j] = (segment_t){s.ctx, from - q, s.off + s.len - from, s.number};
    }
    if (q > 0) {
        memmove(a->queue.base, a->queue.base + q, a->queue.len - q);
        a->queue.len -= q;
    }
    a->nsegs = keep_segs;
    return rc;
}

int msp_tlmsp_activity_hold(msp_tlmsp_activity_t *a)
{
    bool ok = a->cfg.middlebox && a->counter == 0;
    for (size_t i = 0; i < a->n; i++) {
        ok &= a->st[i].a->match.container == MSP_TLMSP_CFG_CONTAINER_NONE;
    }
    if (!ok) {
        return MSP_ERR_ARGUMENT;
    }
    a->hold = true; /* the arrays of decided containers grow as containers are decided (rel_room) */
    return MSP_OK;
}

/* Every held container decided as it stands. */
int msp_tlmsp_activity_flush(msp_tlmsp_activity_t *a)
{
    rel_reset(a);
    if (!a->hold || a->nsegs == 0) {
        return MSP_OK;
    }
    run_begin(a);
    keep(a, 0, a->queue.len);
    return run_end(a, a->queue.len, a->nsegs, false);
}

/* Marks the containers the match [start, end) touches as changed. */
static void mark(msp_tlmsp_activity_t *a, const hit_t *h)
{
    for (size_t j = seg_at(a, h->start); j < a->nsegs && (j == seg_at(a, h->start) || a->segs[j].off < h->end); j++) {
        a->modified[j] = true;
    }
}

/* The run with the current container at its end: matched, consumed, and what might still match held. */
static int hold_search(msp_tlmsp_activity_t *a, uint8_t access, msp_tlmsp_verdict_t *v, const uint8_t **data,
                       size_t *data_len)
{
    size_t pos = 0, q, end = a->queue.len;
    int rc = MSP_OK;
    bool stop = false;
    run_begin(a);
    for (bool again = true; again && rc == MSP_OK;) {
        hit_t best = {.start = SIZE_MAX}, h;
        act_state_t *win = NULL;
        for (size_t i = 0; i < a->n; i++) {
            memset(&h, 0, sizeof(h));
            if (container_search(&a->st[i], a->run_ctx, a->queue.base, pos, end, 0, &h) && h.start < best.start) {
                best = h;
                win = &a->st[i];
            }
        }
        if (win == NULL) {
            break;
        }
        if (win->a->match.forward || access != MSP_TLMSP_ACCESS_RW) {
            rc = matched(a, win, &best, -1); /* as in one container: the rest goes on unchanged */
            stop = true;
            break;
        }
        keep(a, pos, best.start);
        out_to(a, seg_at(a, best.start));
        rc = matched(a, win, &best, a->run_ctx);
        mark(a, &best);
        again = best.end > best.start;
        pos = best.end;
    }
    q = stop ? end : partial_start(a, pos);
    keep(a, pos, q);
    size_t h = 0;
    while (h < a->nsegs && a->segs[h].off + a->segs[h].len <= q) {
        h++;
    }
    bool current = h == a->nsegs;
    if (current) {
        out_to(a, h - 1);
        a->out_start[h] = a->replacement.len;
        size_t off, len;
        *v = verdict_of(a, h - 1, &off, &len);
        *data = len > 0 ? a->replacement.base + off : NULL; /* run_end leaves replacement as it is */
        *data_len = len;
    } else {
        *v = MSP_TLMSP_HOLD;
    }
    int rc2 = run_end(a, q, h, current);
    return rc != MSP_OK ? rc : rc2;
}

/* A holding middlebox's container. Without read access nothing is held: what was held is decided first. */
static int hold_input(msp_tlmsp_activity_t *a, uint8_t ctx, uint8_t access, const uint8_t *p, size_t len,
                      msp_tlmsp_verdict_t *v, const uint8_t **data, size_t *data_len)
{
    int rc = MSP_OK;
    *v = MSP_TLMSP_FORWARD;
    if (a->nsegs > 0 && (p == NULL || ctx != a->run_ctx || a->nsegs >= MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS ||
                         a->queue.len + len > MSP_TLMSP_ACTIVITY_HOLD_BYTES)) {
        rc = msp_tlmsp_activity_flush(a);
    }
    if (rc != MSP_OK || p == NULL) {
        return rc;
    }
    a->run_ctx = ctx;
    rc = queue_segment(a, ctx, p, len); /* nsegs < MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS here */
    if (rc != MSP_OK) {
        return rc;
    }
    return hold_search(a, access, v, data, data_len);
}

size_t msp_tlmsp_activity_take_released(msp_tlmsp_activity_t *a, const msp_tlmsp_verdict_t **verdicts,
                                        const uint8_t *const **data, const size_t **data_len)
{
    rel_reset(a);
    for (size_t i = 0; i < a->rel_n; i++) {
        a->rel_v[i] = a->rel[i].v;
        a->rel_data[i] = a->rel_bytes.base != NULL ? a->rel_bytes.base + a->rel[i].off : NULL;
        a->rel_len[i] = a->rel[i].len;
    }
    *verdicts = a->rel_v;
    *data = a->rel_data;
    *data_len = a->rel_len;
    a->rel_taken = true;
    return a->rel_n;
}

int msp_tlmsp_activity_input(msp_tlmsp_activity_t *a, uint8_t ctx, uint8_t access, const uint8_t *p, size_t len,
                             msp_tlmsp_verdict_t *verdict, const uint8_t **data, size_t *data_len)
{
    bool modified = false;
    int rc;
    actions_reset(a);
    a->counter++;
    if (a->hold) {
        /* the verdict is what became of the container even after a failure (the run stays consistent) */
        msp_tlmsp_verdict_t v = MSP_TLMSP_FORWARD;
        const uint8_t *d = NULL;
        size_t n = 0;
        rel_reset(a);
        rc = hold_input(a, ctx, access, p, len, &v, &d, &n);
        if (verdict != NULL) {
            *verdict = v;
        }
        if (data != NULL && data_len != NULL && v == MSP_TLMSP_REPLACE) {
            *data = d;
            *data_len = n;
        }
        return rc;
    }
    if (!a->cfg.middlebox) {
        rc = endpoint_input(a, ctx, p, len);
    } else {
        rc = middlebox_input(a, ctx, access, p, len, &modified);
    }
    if (verdict != NULL) {
        *verdict = rc != MSP_OK || !modified ? MSP_TLMSP_FORWARD
                   : a->replacement.len == 0 ? MSP_TLMSP_DELETE
                                             : MSP_TLMSP_REPLACE;
    }
    if (data != NULL && data_len != NULL && verdict != NULL && *verdict == MSP_TLMSP_REPLACE) {
        *data = a->replacement.base;
        *data_len = a->replacement.len;
    }
    return rc;
}

size_t msp_tlmsp_activity_held(const msp_tlmsp_activity_t *a)
{
    return a->queue.len;
}
