/* Match-action activities (see activity.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "activity.h"

#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msp/error.h"

#define MAX_FILE (16u << 20)   /* a payload or pattern file */
#define MAX_OUTPUT (16u << 20) /* what a handler may produce */
#define MAX_GROUPS 64

struct act_state {
    const msp_tlmsp_cfg_activity_t *a;
    pcre2_code *re;
    uint8_t *pattern_file;
    size_t pattern_file_len;
    uint8_t **payload; /* per action: a file's contents */
    size_t *payload_len;
    uint64_t inspected, matched;
    ev_timer timer;
    act_set_t *set;
};

/* ---- output ---- */

void act_print_bytes(FILE *f, const uint8_t *p, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c >= 0x20 && c < 0x7f) {
            fputc(c, f);
        } else {
            fprintf(f, "\\x%02x", c);
        }
    }
    fputc('"', f);
}

static void present(act_set_t *set, const act_state_t *st, const char *what, uint8_t ctx, const uint8_t *p, size_t len)
{
    if (set->present == NULL || !(st->a->present || set->force_present)) {
        return;
    }
    fprintf(set->present, "%s: activity %s %s %zu bytes in context %u: ", set->who, st->a->tag, what, len, ctx);
    act_print_bytes(set->present, p, len);
    fputc('\n', set->present);
    fflush(set->present);
}

/* ---- set-up ---- */

static int read_file(const char *name, uint8_t **out, size_t *out_len, char *err, size_t err_cap)
{
    FILE *f = fopen(name, "rb");
    uint8_t *b = f != NULL ? malloc(MAX_FILE) : NULL;
    size_t n = b != NULL ? fread(b, 1, MAX_FILE, f) : 0;
    int bad = f == NULL || b == NULL || ferror(f) || (n == MAX_FILE && fgetc(f) != EOF);
    if (f != NULL) {
        fclose(f);
    }
    if (bad) {
        snprintf(err, err_cap, "%s: %s", name, f == NULL ? strerror(errno) : "unreadable or larger than 16 MiB");
        free(b);
        return -1;
    }
    *out = b;
    *out_len = n;
    return 0;
}

static int compile(act_set_t *set, act_state_t *st)
{
    int code;
    PCRE2_SIZE at;
    const char *re = st->a->match.text;
    st->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &code, &at, NULL);
    if (st->re == NULL) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(set->err, sizeof(set->err), "%s:%u: regex of activity %s at offset %zu: %s", set->cfg->name,
                 st->a->match.line, st->a->tag, (size_t)at, (const char *)msg);
        return -1;
    }
    return 0;
}

static int prepare(act_set_t *set, act_state_t *st)
{
    const msp_tlmsp_cfg_activity_t *a = st->a;
    if (a->match.pattern == MSP_TLMSP_CFG_PATTERN_REGEX && compile(set, st) != 0) {
        return -1;
    }
    if (a->match.pattern == MSP_TLMSP_CFG_PATTERN_FILE &&
        read_file(a->match.text, &st->pattern_file, &st->pattern_file_len, set->err, sizeof(set->err)) != 0) {
        return -1;
    }
    st->payload = calloc(a->n_actions + 1, sizeof(*st->payload));
    st->payload_len = calloc(a->n_actions + 1, sizeof(*st->payload_len));
    if (st->payload == NULL || st->payload_len == NULL) {
        snprintf(set->err, sizeof(set->err), "out of memory");
        return -1;
    }
    for (size_t i = 0; i < a->n_actions; i++) {
        const msp_tlmsp_cfg_action_t *x = &a->actions[i];
        if (x->kind == MSP_TLMSP_CFG_ACTION_RENEGOTIATE) {
            snprintf(set->err, sizeof(set->err),
                     "%s:%u: activity %s: renegotiate is not supported by TLMSP (the reference cannot do it either)",
                     set->cfg->name, x->line, a->tag);
            return -1;
        }
        if (x->payload == MSP_TLMSP_CFG_PAYLOAD_FILE &&
            read_file(x->text, &st->payload[i], &st->payload_len[i], set->err, sizeof(set->err)) != 0) {
            return -1;
        }
    }
    return 0;
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

int act_init(act_set_t *set, struct ev_loop *loop, const msp_tlmsp_cfg_t *cfg, const msp_tlmsp_cfg_fnlist_t *fns,
             const char *who, int middlebox, int to_server, const act_io_t *io, FILE *present_to, int force_present)
{
    memset(set, 0, sizeof(*set));
    set->cfg = cfg;
    set->who = who;
    set->middlebox = middlebox;
    set->to_server = to_server;
    set->io = *io;
    set->loop = loop;
    set->present = present_to;
    set->force_present = force_present;
    msp_buf_init(&set->queue, 64u << 20);
    msp_buf_init(&set->replacement, MAX_OUTPUT);
    ev_idle_init(&set->idle, on_idle);
    set->idle.data = set;
    set->n = fns != NULL ? fns->n : 0;
    set->st = calloc(set->n + 1, sizeof(*set->st));
    if (set->st == NULL) {
        snprintf(set->err, sizeof(set->err), "out of memory");
        return -1;
    }
    for (size_t i = 0; i < set->n; i++) {
        set->st[i].a = &cfg->activities[fns->activity[i]];
        set->st[i].set = set;
        ev_timer_init(&set->st[i].timer, on_timer, 0, 0);
        set->st[i].timer.data = &set->st[i];
        if (prepare(set, &set->st[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

void act_free(act_set_t *set)
{
    act_stop(set);
    for (size_t i = 0; set->st != NULL && i < set->n; i++) {
        act_state_t *st = &set->st[i];
        pcre2_code_free(st->re);
        free(st->pattern_file);
        for (size_t k = 0; st->payload != NULL && k < st->a->n_actions; k++) {
            free(st->payload[k]);
        }
        free(st->payload);
        free(st->payload_len);
    }
    free(set->st);
    msp_buf_free(&set->queue);
    msp_buf_free(&set->replacement);
}

/* ---- the queue of sends: the core is not re-entrant, so actions run after the input that caused them ---- */

enum { Q_SEND = 1, Q_ALERT = 2, Q_SHUTDOWN = 3 };

static void enqueue(act_set_t *set, int op, int to_server, uint8_t ctx, uint8_t level, uint8_t desc, const uint8_t *p,
                    size_t len)
{
    msp_buf_t *q = &set->queue;
    msp_buf_put_u8(q, (uint8_t)op);
    msp_buf_put_u8(q, (uint8_t)to_server);
    msp_buf_put_u8(q, ctx);
    msp_buf_put_u8(q, level);
    msp_buf_put_u8(q, desc);
    msp_buf_put_u32(q, (uint32_t)len);
    msp_buf_put(q, p, len);
    if (set->loop != NULL) {
        ev_idle_start(set->loop, &set->idle);
    }
}

static void run_queue(act_set_t *set)
{
    size_t off = 0;
    while (off + 9 <= set->queue.len) {
        const uint8_t *h = set->queue.base + off;
        size_t len = (size_t)h[5] << 24 | (size_t)h[6] << 16 | (size_t)h[7] << 8 | h[8];
        off += 9 + len;
        if (h[0] == Q_SEND) {
            set->io.send(set->io.user, h[1], h[2], h + 9, len);
        } else if (h[0] == Q_ALERT) {
            set->io.alert(set->io.user, h[1], h[2], h[3], h[4]);
        } else if (set->io.shutdown(set->io.user) != MSP_OK) {
            break; /* the connection is gone (and maybe the set with it) */
        }
    }
    set->queue.len = 0;
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    act_set_t *set = w->data;
    (void)revents;
    ev_idle_stop(loop, w);
    run_queue(set);
}

/* ---- actions ---- */

typedef struct groups {
    size_t n;
    const uint8_t *p[MAX_GROUPS];
    size_t len[MAX_GROUPS];
} groups_t;

/* Runs cmd under /bin/sh with in on stdin and collects its stdout (at most MAX_OUTPUT bytes). */
static int run_handler(const char *cmd, const uint8_t *in, size_t in_len, msp_buf_t *out)
{
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    /* Small inputs go in before reading; a handler that does not read its input still gets EOF. */
    if (pid > 0 && in_len > 0 && write(to[1], in, in_len) < 0) {
        in_len = 0;
    }
    close(to[1]);
    uint8_t buf[65536];
    ssize_t n;
    while (pid > 0 && (n = read(from[0], buf, sizeof(buf))) > 0) {
        msp_buf_put(out, buf, (size_t)n);
    }
    close(from[0]);
    int status = 0;
    if (pid > 0) {
        waitpid(pid, &status, 0);
    }
    return pid > 0 && msp_buf_error(out) == MSP_OK ? 0 : -1;
}

static int payload(act_set_t *set, act_state_t *st, size_t i, const groups_t *g, msp_buf_t *out)
{
    const msp_tlmsp_cfg_action_t *x = &st->a->actions[i];
    switch (x->payload) {
    case MSP_TLMSP_CFG_PAYLOAD_DATA:
        return msp_buf_put(out, x->data.p, x->data.len) == MSP_OK ? 0 : -1;
    case MSP_TLMSP_CFG_PAYLOAD_FILE:
        return msp_buf_put(out, st->payload[i], st->payload_len[i]) == MSP_OK ? 0 : -1;
    case MSP_TLMSP_CFG_PAYLOAD_TEMPLATE:
        for (size_t k = 0; k < x->n_segments; k++) {
            const msp_tlmsp_cfg_segment_t *s = &x->segments[k];
            msp_buf_put(out, s->data.p, s->data.len);
            /* an undefined reference is empty, as documented in everything.ucl */
            if (s->ref != MSP_TLMSP_CFG_TEMPLATE_END && s->ref < g->n) {
                msp_buf_put(out, g->p[s->ref], g->len[s->ref]);
            }
        }
        return msp_buf_error(out) == MSP_OK ? 0 : -1;
    case MSP_TLMSP_CFG_PAYLOAD_HANDLER:
        return run_handler(x->text, g->n > 0 ? g->p[0] : NULL, g->n > 0 ? g->len[0] : 0, out);
    default:
        (void)set;
        return 0;
    }
}

/*
 * Runs the actions of a match (or of a timer, with no groups). same_ctx: the matched container's context, whose
 * `send`s in that context a middlebox puts in place of the container (returned in set->replacement).
 */
static int act(act_set_t *set, act_state_t *st, const groups_t *g, int same_ctx)
{
    msp_buf_t out;
    msp_buf_init(&out, MAX_OUTPUT);
    int replaced = 0;
    for (size_t i = 0; i < st->a->n_actions; i++) {
        const msp_tlmsp_cfg_action_t *x = &st->a->actions[i];
        out.len = 0;
        if (x->kind == MSP_TLMSP_CFG_ACTION_ALERT) {
            enqueue(set, Q_ALERT, set->to_server, x->context_id, (uint8_t)x->level, x->description, NULL, 0);
            continue;
        }
        if (x->kind == MSP_TLMSP_CFG_ACTION_SHUTDOWN) {
            enqueue(set, Q_SHUTDOWN, 0, 0, 0, 0, NULL, 0);
            continue;
        }
        if (payload(set, st, i, g, &out) != 0) {
            fprintf(stderr, "%s: activity %s: action at line %u failed\n", set->who, st->a->tag, x->line);
            continue;
        }
        if (x->kind == MSP_TLMSP_CFG_ACTION_LOG) {
            present(set, st, "logged", x->context_id, out.base, out.len);
            continue;
        }
        int dir = x->kind == MSP_TLMSP_CFG_ACTION_REPLY && set->middlebox ? !set->to_server : set->to_server;
        present(set, st, "sent", x->context_id, out.base, out.len);
        if (set->middlebox && same_ctx >= 0 && dir == set->to_server && x->context_id == same_ctx) {
            msp_buf_put(&set->replacement, out.base, out.len);
            replaced = 1;
        } else {
            enqueue(set, Q_SEND, dir, x->context_id, 0, 0, out.base, out.len);
        }
    }
    msp_buf_free(&out);
    return replaced;
}

/* ---- timers ---- */

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    act_state_t *st = w->data;
    groups_t none = {0, {NULL}, {0}};
    (void)loop;
    (void)revents;
    act(st->set, st, &none, -1);
}

void act_start(act_set_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        const msp_tlmsp_cfg_match_t *m = &set->st[i].a->match;
        if (!m->has_at && !m->has_every) {
            continue;
        }
        double first = m->has_at ? m->at_ms / 1000.0 : m->every_ms / 1000.0;
        ev_timer_set(&set->st[i].timer, first, m->has_every ? m->every_ms / 1000.0 : 0.0);
        ev_timer_start(set->loop, &set->st[i].timer);
    }
}

void act_stop(act_set_t *set)
{
    for (size_t i = 0; set->loop != NULL && set->st != NULL && i < set->n; i++) {
        ev_timer_stop(set->loop, &set->st[i].timer);
    }
    if (set->loop != NULL) {
        ev_idle_stop(set->loop, &set->idle);
    }
    set->queue.len = 0;
}

/* ---- matching ---- */

static int in_which(const msp_tlmsp_cfg_match_t *m, uint8_t ctx)
{
    if (m->which_all) {
        return 1;
    }
    for (size_t i = 0; i < m->n_which; i++) {
        if (m->which[i] == ctx) {
            return 1;
        }
    }
    return 0;
}

static int container_match(act_state_t *st, const uint8_t *p, size_t len, groups_t *g)
{
    const msp_tlmsp_cfg_match_t *m = &st->a->match;
    int hit = 0;
    st->inspected++;
    switch (m->container) {
    case MSP_TLMSP_CFG_CONTAINER_NTH:
        hit = st->inspected == m->container_n;
        break;
    case MSP_TLMSP_CFG_CONTAINER_PROBABILITY:
        hit = (double)st->matched < m->container_p * (double)st->inspected;
        break;
    case MSP_TLMSP_CFG_CONTAINER_ALL:
        hit = 1;
        break;
    default:
        return 0;
    }
    g->n = 1;
    g->p[0] = p;
    g->len[0] = len;
    return hit;
}

/* The match's start and length within p, and its groups. */
static int pattern_match(act_state_t *st, const uint8_t *p, size_t len, groups_t *g, size_t *at)
{
    const msp_tlmsp_cfg_match_t *m = &st->a->match;
    const uint8_t *pat = m->pattern == MSP_TLMSP_CFG_PATTERN_FILE ? st->pattern_file : m->data.p;
    size_t pat_len = m->pattern == MSP_TLMSP_CFG_PATTERN_FILE ? st->pattern_file_len : m->data.len;
    if (m->pattern == MSP_TLMSP_CFG_PATTERN_REGEX) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(st->re, NULL);
        int rc = md != NULL ? pcre2_match(st->re, p, len, 0, 0, md, NULL) : -1;
        PCRE2_SIZE *ov = rc > 0 ? pcre2_get_ovector_pointer(md) : NULL;
        g->n = rc > 0 ? (size_t)(rc < MAX_GROUPS ? rc : MAX_GROUPS) : 0;
        for (size_t i = 0; i < g->n; i++) {
            int unset = ov[2 * i] == PCRE2_UNSET;
            g->p[i] = unset ? p : p + ov[2 * i];
            g->len[i] = unset ? 0 : ov[2 * i + 1] - ov[2 * i];
        }
        *at = rc > 0 ? ov[0] : 0;
        pcre2_match_data_free(md);
        return rc > 0;
    }
    if (pat_len == 0 || pat_len > len) {
        return 0; /* an empty pattern never matches (reference) */
    }
    const uint8_t *hit = memmem(p, len, pat, pat_len);
    g->n = hit != NULL;
    g->p[0] = hit;
    g->len[0] = pat_len;
    *at = hit != NULL ? (size_t)(hit - p) : 0;
    return hit != NULL;
}

msp_tlmsp_verdict_t act_on_data(act_set_t *set, uint8_t ctx, uint8_t access, const uint8_t *p, size_t len,
                                const uint8_t **data, size_t *data_len)
{
    /* The first activity (function-list order) that matches wins, as in the reference. */
    for (size_t i = 0; p != NULL && i < set->n; i++) {
        act_state_t *st = &set->st[i];
        const msp_tlmsp_cfg_match_t *m = &st->a->match;
        groups_t g = {0, {NULL}, {0}};
        size_t at = 0;
        if (!in_which(m, ctx) ||
            (m->container == MSP_TLMSP_CFG_CONTAINER_NONE && m->pattern == MSP_TLMSP_CFG_PATTERN_NONE)) {
            continue;
        }
        int hit = m->container != MSP_TLMSP_CFG_CONTAINER_NONE ? container_match(st, p, len, &g)
                                                               : pattern_match(st, p, len, &g, &at);
        if (!hit) {
            continue;
        }
        st->matched++;
        present(set, st, "matched", ctx, g.p[0], g.len[0]);
        if (!set->middlebox || m->forward || access != MSP_TLMSP_ACCESS_RW) {
            act(set, st, &g, -1);
            return MSP_TLMSP_FORWARD;
        }
        /* A middlebox deletes the matched data: what is around it stays, the action's output for this
         * context and direction takes its place. */
        set->replacement.len = 0;
        msp_buf_put(&set->replacement, p, at);
        int replaced = act(set, st, &g, ctx);
        msp_buf_put(&set->replacement, g.p[0] + g.len[0], len - at - g.len[0]);
        if (!replaced && set->replacement.len == 0) {
            return MSP_TLMSP_DELETE;
        }
        *data = set->replacement.base;
        *data_len = set->replacement.len;
        return MSP_TLMSP_REPLACE;
    }
    return MSP_TLMSP_FORWARD;
}
