/*
 * msp middlebox --icap / --out-pcap (mb_inspect.h): the program's glue.
 * What is held, what each part becomes and what the service's answer means
 * is the library's (msp/tlmsp_inspect.h, sans-IO); this runs it on the
 * loop: the pause timers (MSG_IDLE, the activities' hold idle), one ICAP
 * transaction per part (msp_io_icap_*, msp/tlmsp_icap.h), the releases,
 * inserts and alerts through the middlebox driver, the log lines, and the
 * capture (msp/ets_pcap.h).
 */
#include "mb_inspect.h"

#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "msp/buf.h"
#include "msp/error.h"
#include "msp/ets_pcap.h"
#include "msp/tlmsp_icap.h"
#include "msp/tlmsp_inspect.h"

#define MSG_IDLE 0.1      /* s: a pause that ends a part (the activities' hold idle) */
#define ICAP_TIMEOUT 10.0 /* s: connect and answer */

struct insp_site {
    struct ev_loop *loop;
    int icap;
    msp_icap_url_t url;
    const char *url_text;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    long preview;
    int allow204;
    uint8_t hctx, bctx; /* the contexts tagged header and body; 0: no HTTP mode */
    msp_pcap_out_t *pcap;
    const char *pcap_path;
};

typedef struct insp_dir {
    insp_t *i;
    int to_server;
    msp_io_icap_t *t; /* the part with the service */
    ev_timer idle;
} insp_dir_t;

struct insp {
    insp_site_t *s;
    const char *tag;
    msp_io_mb_t **mb;
    struct sockaddr_storage client, server;
    int have_server, blocked, capture_failed;
    char peers[176];
    msp_inspect_t *x;  /* NULL until the first container (HTTP mode is decided then) */
    insp_dir_t dir[2]; /* [1]: toward the server */
    msp_pcap_out_flow_t *flow;
};

/* ---- the site ---- */

typedef struct options_wait {
    int done, err;
    char detail[352];
    long preview;
    int allow204, status;
} options_wait_t;

static void options_done(void *user, int err, const msp_icap_resp_info_t *info, const char *detail)
{
    options_wait_t *w = user;
    w->done = 1;
    w->err = err;
    snprintf(w->detail, sizeof(w->detail), "%s", detail);
    if (info != NULL) {
        w->status = info->status;
        w->preview = info->preview;
        w->allow204 = info->allow204;
    }
}

/* OPTIONS at start: the service must answer 200 before any session is taken (fail closed from the start). */
static int icap_options(insp_site_t *s)
{
    options_wait_t w = {0, 0, "", -1, 0, 0};
    msp_io_icap_cfg_t c = {&s->url, (const struct sockaddr *)&s->addr, s->addrlen, ICAP_TIMEOUT, -1, 0};
    msp_io_icap_t *t;
    if (msp_io_icap_new(s->loop, &c, MSP_ICAP_OPTIONS, NULL, 0, NULL, 0, NULL, 0, options_done, &w, &t) != MSP_OK) {
        prog_error("middlebox", "%s: out of memory", s->url_text);
        return 1;
    }
    while (!w.done) {
        ev_run(s->loop, EVRUN_ONCE);
    }
    msp_io_icap_free(t);
    if (w.err != MSP_OK) {
        prog_error("middlebox", "--icap: %s", w.detail);
        return 1;
    }
    if (w.status != 200) {
        prog_error("middlebox", "--icap: %s: OPTIONS answered with ICAP status %d", s->url_text, w.status);
        return 1;
    }
    s->preview = w.preview;
    s->allow204 = w.allow204;
    return 0;
}

/* HTTP mode needs both contexts: the tags `--contexts http` uses. */
static void http_contexts(insp_site_t *s, const msp_tlmsp_cfg_t *cfg)
{
    for (size_t k = 0; k < cfg->n_contexts; k++) {
        if (strcmp(cfg->contexts[k].tag, "header") == 0 && s->hctx == 0) {
            s->hctx = cfg->contexts[k].id;
        } else if (strcmp(cfg->contexts[k].tag, "body") == 0 && s->bctx == 0) {
            s->bctx = cfg->contexts[k].id;
        }
    }
    if (s->hctx == 0 || s->bctx == 0) {
        s->hctx = s->bctx = 0;
    }
}

int insp_site_open(const prog_opts_t *o, const msp_tlmsp_cfg_t *cfg, struct ev_loop *loop, insp_site_t **out)
{
    *out = NULL;
    if (o->icap == NULL && o->out_pcap == NULL) {
        return 0;
    }
    insp_site_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        prog_error("middlebox", "out of memory");
        return 1;
    }
    s->loop = loop;
    http_contexts(s, cfg);
    msp_error_t err;
    msp_error_clear(&err);
    int rc = 0;
    if (o->icap != NULL) {
        s->icap = 1;
        s->url_text = o->icap;
        if (msp_icap_url_parse(o->icap, &s->url, &err) != MSP_OK) {
            prog_error("middlebox", "--icap: %s", err.detail);
            rc = 2;
        } else if (msp_io_icap_resolve(&s->url, &s->addr, &s->addrlen, &err) != MSP_OK) {
            prog_error("middlebox", "--icap: %s", err.detail);
            rc = 1;
        } else {
            rc = icap_options(s);
        }
    }
    if (rc == 0 && o->out_pcap != NULL) {
        s->pcap_path = o->out_pcap;
        if (msp_pcap_out_open(o->out_pcap, &s->pcap, &err) != MSP_OK) {
            prog_error("middlebox", "--out-pcap: %s", err.detail);
            rc = 2;
        }
        /* the capture is written when the middlebox stops: SIGINT and SIGTERM drain it (serve.c), then the
         * program closes the site */
    }
    if (rc != 0) {
        insp_site_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void insp_site_close(insp_site_t *s)
{
    if (s == NULL) {
        return;
    }
    msp_error_t err;
    msp_error_clear(&err);
    if (s->pcap != NULL) {
        if (msp_pcap_out_close(s->pcap, &err) != MSP_OK) {
            prog_error("middlebox", "--out-pcap: %s", err.detail);
        }
    }
    free(s);
}

/* ---- sessions ---- */

static const char *dir_name(int to_server)
{
    return to_server ? "client->server" : "server->client";
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t size)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, size, "?");
    } else {
        snprintf(out, size, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    }
}

static const char *peers(insp_t *i)
{
    char c[80], s[80] = "?";
    format_addr(&i->client, c, sizeof(c));
    if (i->have_server) {
        format_addr(&i->server, s, sizeof(s));
    }
    snprintf(i->peers, sizeof(i->peers), "%s -> %s", c, s);
    return i->peers;
}

/* The session ends with a fatal alert both endpoints see; what is held never goes out. */
static void end_session(insp_t *i, uint8_t desc)
{
    i->blocked = 1;
    for (int to_server = 1; to_server >= 0 && *i->mb != NULL; to_server--) {
        msp_io_mb_alert(*i->mb, to_server, 0, 2, desc);
    }
}

static void start_scan(insp_dir_t *d);

static void fail_closed(insp_t *i, const char *what)
{
    prog_error("middlebox", "%s: %s: %s: session ended (fail closed)", i->tag, peers(i), what);
    end_session(i, MSP_ALERT_INTERNAL_ERROR);
}

static void log_verdict(insp_dir_t *d, const msp_icap_resp_info_t *r, const msp_inspect_outcome_t *o)
{
    insp_t *i = d->i;
    const char *inf = r->infection[0] ? ", X-Infection-Found: " : "", *vid = r->virus_id[0] ? ", X-Virus-ID: " : "";
    if (o->kind == MSP_INSPECT_BLOCK) {
        prog_error("middlebox",
                   "%s: %s: blocked %s data in context %u: ICAP %d%s%.0d%s%s%s%s from %s (%s); session ended with "
                   "access_denied",
                   i->tag, peers(i), dir_name(d->to_server), o->ctx, r->status, r->http_status ? " HTTP " : "",
                   r->http_status, inf, r->infection, vid, r->virus_id, i->s->url_text, o->why);
    } else if (o->kind == MSP_INSPECT_FAIL) {
        prog_error("middlebox", "%s: %s: ICAP %s answered %d for %s data: session ended (fail closed)", i->tag,
                   peers(i), i->s->url_text, r->status, dir_name(d->to_server));
    } else if (o->kind == MSP_INSPECT_REPLACE) {
        prog_error("middlebox",
                   "%s: %s: %s data in context %u replaced by the ICAP answer (%zu bytes%s%s%s%s%s) from %s", i->tag,
                   peers(i), dir_name(d->to_server), o->ctx, r->has_body ? r->body_len : 0, inf, r->infection, vid,
                   r->virus_id, o->toward_client ? ", sent back to the client" : "", i->s->url_text);
    }
}

/* The outcome through the driver: releases, then inserts; or the session ends. Each step may end it. */
static void apply(insp_dir_t *d, const msp_inspect_outcome_t *o)
{
    insp_t *i = d->i;
    if (o->kind == MSP_INSPECT_BLOCK || o->kind == MSP_INSPECT_FAIL) {
        end_session(i, o->alert);
        return;
    }
    if (*i->mb != NULL && msp_io_mb_release(*i->mb, d->to_server, o->n, o->verdicts, o->data, o->data_len) != MSP_OK) {
        fail_closed(i, "cannot release the held containers");
        return;
    }
    for (size_t k = 0; k < o->ninsert && *i->mb != NULL; k++) {
        const msp_inspect_insert_t *n = &o->insert[k];
        msp_io_mb_send(*i->mb, n->to_server, n->ctx, n->p, n->len);
    }
}

static void scan_done(void *user, int err, const msp_icap_resp_info_t *info, const char *detail)
{
    insp_dir_t *d = user;
    insp_t *i = d->i;
    msp_io_icap_t *t = d->t;
    d->t = NULL; /* freed below: info is its */
    msp_inspect_outcome_t o;
    unsigned flags = 0;
    int rc = MSP_OK;
    if (i->blocked) {
        /* nothing more goes out of this session */
    } else if (err != MSP_OK) {
        char what[400];
        snprintf(what, sizeof(what), "ICAP: %s", detail);
        fail_closed(i, what);
    } else if ((rc = msp_inspect_answer(i->x, d->to_server, info, &o, &flags)) != MSP_OK) {
        fail_closed(i, msp_error_name(rc));
    } else {
        log_verdict(d, info, &o);
        apply(d, &o);
    }
    msp_io_icap_free(t);
    if ((flags & MSP_INSPECT_READY) && !i->blocked && *i->mb != NULL) {
        start_scan(d);
    }
}

/* The complete part goes to the service (the next one collects behind it). */
static void start_scan(insp_dir_t *d)
{
    insp_t *i = d->i;
    msp_inspect_request_t r;
    if (!msp_inspect_scan(i->x, d->to_server, &r)) {
        return;
    }
    msp_io_icap_cfg_t c = {
        &i->s->url, (const struct sockaddr *)&i->s->addr, i->s->addrlen, ICAP_TIMEOUT, i->s->preview, i->s->allow204};
    if (msp_io_icap_new(i->s->loop, &c, r.method, r.req_hdr, r.req_hdr_len, r.res_hdr, r.res_hdr_len, r.body,
                        r.body_len, scan_done, d, &d->t) != MSP_OK) {
        fail_closed(i, "ICAP: out of memory");
    }
}

/* What an input or a pause said: start a scan, (re)arm the pause timer, log. */
static void follow(insp_dir_t *d, unsigned flags, const msp_error_t *err)
{
    insp_t *i = d->i;
    if (flags & MSP_INSPECT_STREAM) {
        prog_error("middlebox", "%s: %s: %s data %s: scanned as a byte stream from here", i->tag, peers(i),
                   dir_name(d->to_server), err->detail);
    }
    if (flags & MSP_INSPECT_CUT) {
        prog_error("middlebox",
                   "%s: %s: %s data over %zu bytes (or %d containers) without a pause: scanned in parts of that "
                   "size (a signature across two parts can be missed)",
                   i->tag, peers(i), dir_name(d->to_server), MSP_INSPECT_PART_BYTES, MSP_INSPECT_PART_CONTAINERS);
    }
    ev_timer_stop(i->s->loop, &d->idle);
    if (flags & MSP_INSPECT_OPEN) {
        ev_timer_set(&d->idle, MSG_IDLE, 0);
        ev_timer_start(i->s->loop, &d->idle);
    }
    if (flags & MSP_INSPECT_READY) {
        start_scan(d);
    }
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    insp_dir_t *d = w->data;
    unsigned flags;
    (void)loop;
    (void)revents;
    msp_inspect_pause(d->i->x, d->to_server, &flags);
    follow(d, flags & ~MSP_INSPECT_OPEN, NULL);
}

insp_t *insp_new(insp_site_t *s, const char *tag, msp_io_mb_t **mb, int client_fd)
{
    if (s == NULL) {
        return NULL;
    }
    insp_t *i = calloc(1, sizeof(*i));
    if (i == NULL) {
        prog_error("middlebox", "%s: out of memory", tag);
        return NULL;
    }
    i->s = s;
    i->tag = tag;
    i->mb = mb;
    socklen_t sl = sizeof(i->client);
    if (getpeername(client_fd, (struct sockaddr *)&i->client, &sl) != 0) {
        i->client.ss_family = AF_UNSPEC;
    }
    for (int k = 0; k < 2; k++) {
        insp_dir_t *d = &i->dir[k];
        d->i = i;
        d->to_server = k;
        ev_timer_init(&d->idle, on_idle, MSG_IDLE, 0);
        d->idle.data = d;
    }
    return i;
}

void insp_next_hop(insp_t *i, int fd)
{
    if (i == NULL || fd < 0) {
        return;
    }
    socklen_t sl = sizeof(i->server);
    i->have_server = getpeername(fd, (struct sockaddr *)&i->server, &sl) == 0;
}

static uint64_t now_us(insp_t *i)
{
    return (uint64_t)(ev_now(i->s->loop) * 1e6);
}

/* The capture: one TCP flow per session, both directions, every readable context in the order it passed. */
static void capture(insp_t *i, int to_server, const uint8_t *p, size_t len)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (i->flow == NULL && (!i->have_server || i->capture_failed)) {
        return; /* without the server's address there is no flow to write (logged once) */
    }
    if (i->flow == NULL &&
        msp_pcap_out_flow_begin_peers(i->s->pcap, (const struct sockaddr *)&i->client,
                                      (const struct sockaddr *)&i->server, now_us(i), &i->flow, &err) != MSP_OK) {
        prog_error("middlebox", "%s: %s: --out-pcap: %s", i->tag, peers(i), err.detail);
        i->flow = NULL;
        i->capture_failed = 1; /* the session goes on; its flow is missing from the capture */
        return;
    }
    if (msp_pcap_out_data(i->s->pcap, i->flow, to_server ? 0 : 1, p, len, now_us(i), &err) != MSP_OK) {
        prog_error("middlebox", "%s: %s: --out-pcap: %s", i->tag, peers(i), err.detail);
    }
}

/* HTTP mode for the session, decided at its first container: both contexts exist and this middlebox reads both. */
/* HTTP mode needs both contexts readable here: decided at the session's first container. */
static int inspector(insp_t *i)
{
    msp_tlmsp_mbox_t *m = *i->mb != NULL ? msp_io_mb_mbox(*i->mb) : NULL;
    if (i->x != NULL || m == NULL) {
        return i->x != NULL;
    }
    msp_inspect_cfg_t c = {i->s->hctx, i->s->bctx};
    if (c.header_ctx == 0 || msp_tlmsp_mbox_access(m, c.header_ctx) == MSP_TLMSP_ACCESS_NONE ||
        msp_tlmsp_mbox_access(m, c.body_ctx) == MSP_TLMSP_ACCESS_NONE) {
        c.header_ctx = c.body_ctx = 0;
    }
    return msp_inspect_new(&c, &i->x) == MSP_OK;
}

int insp_container(insp_t *i, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx, uint8_t access, const uint8_t *p,
                   size_t len, msp_tlmsp_verdict_t *v)
{
    if (i == NULL || kind != MSP_TLMSP_DATA || p == NULL) {
        return 0;
    }
    if (i->s->pcap != NULL) {
        capture(i, to_server, p, len);
    }
    if (!i->s->icap) {
        return 0;
    }
    *v = MSP_TLMSP_HOLD;
    if (i->blocked) {
        return 1; /* held for good: the session is ending */
    }
    insp_dir_t *d = &i->dir[to_server ? 1 : 0];
    msp_error_t err;
    msp_error_clear(&err);
    unsigned flags = 0;
    if (!inspector(i) ||
        msp_inspect_input(i->x, to_server, ctx, access == MSP_TLMSP_ACCESS_RW, p, len, &flags, &err) != MSP_OK) {
        fail_closed(i, "too much held");
        return 1;
    }
    follow(d, flags, &err);
    return 1;
}

void insp_closed(insp_t *i)
{
    if (i == NULL) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        ev_timer_stop(i->s->loop, &i->dir[k].idle);
        msp_io_icap_free(i->dir[k].t);
        i->dir[k].t = NULL;
    }
    if (i->flow != NULL) {
        msp_error_t err;
        msp_error_clear(&err);
        if (msp_pcap_out_flow_end(i->s->pcap, i->flow, now_us(i), &err) != MSP_OK) {
            prog_error("middlebox", "%s: --out-pcap: %s", i->tag, err.detail);
        }
        i->flow = NULL;
    }
}

void insp_free(insp_t *i)
{
    if (i == NULL) {
        return;
    }
    insp_closed(i);
    msp_inspect_free(i->x);
    free(i);
}
