/*
 * The passive pipeline (msp/ets_passive.h): TCP reassembly into one TLS 1.3
 * decryptor per connection, the visibility check of each handshake, key log
 * lines, counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msp/ets_passive.h"
#include "reader.h"

#include "dec.h"

/* Ended flows kept with their decryptor for the next ones: enough for a capture's churn, bounded memory. */
#define FLOW_POOL 64

struct msp_ets_passive_flow {
    msp_ets_passive_t *p;
    msp_ets_passive_flow_t *prev, *next; /* the open flows, for msp_ets_passive_free */
    msp_tcp_flow_t *tcp;
    msp_ets_conn_t *conn;
    void *user;
    uint64_t plain[2];
    int handshake, failed, saw_data, vis_error;
    msp_buf_t verdict; /* the handshake's visibility verdict, kept with the tickets this flow issues */
};

struct msp_ets_passive {
    msp_ets_passive_cb_t cb;
    void *arg;
    msp_tcp_t *tcp;
    msp_ets_keys_t *keys;
    uint8_t share[MSP_ETS_DEC_MAX_KEYS][MSP_ETS_DEC_MAX_SHARE]; /* of each key held, to skip a key added twice */
    size_t share_len[MSP_ETS_DEC_MAX_KEYS];
    msp_ets_tickets_t *tickets;
    msp_ets_passive_flow_t *flows;           /* open */
    msp_ets_passive_flow_t *pool[FLOW_POOL]; /* ended, conn recycled (dec_conn_recycle) */
    size_t npool;
    msp_ets_passive_counts_t n;
    uint64_t now_us; /* timestamp of the packet being fed */
    msp_error_t err; /* the first failure of the pipeline itself */
    /* the last certificate checked, so that a server's many connections parse it once */
    uint8_t *cert;
    size_t cert_len;
    msp_ets_visibility_t vis;
    int vis_rc;
    char vis_text[sizeof(((msp_error_t *)0)->detail)];
    /* a resumption's verdict, the issuing connection's (scratch: one handshake at a time) */
    msp_ets_visibility_t rvis;
    char rvis_text[sizeof(((msp_error_t *)0)->detail)];
};

static const msp_ets_conn_cb_t conn_callbacks;

const char *msp_ets_flow_status_name(msp_ets_flow_status_t s)
{
    return s == MSP_ETS_FLOW_DECRYPTED ? "decrypted" : s == MSP_ETS_FLOW_UNDECRYPTABLE ? "undecryptable" : "empty";
}

static void pipeline_error(msp_ets_passive_t *p, int code, const char *what)
{
    if (p->err.code == MSP_OK) {
        msp_error_set(&p->err, code, NULL, "%s", what);
    }
}

/* ---- the visibility check ---- */

/* Parses the certificate unless it is the one checked last (same bytes). */
static void read_certificate(msp_ets_passive_t *p, const uint8_t *cert, size_t len)
{
    /* equivalent mutant: '==' -> '!=': then every certificate is parsed again, to the same entries (only slower) */
    if (p->cert != NULL && p->cert_len == len && memcmp(p->cert, cert, len) == 0) {
        return;
    }
    msp_error_t err = {0};
    p->vis_rc = msp_ets_visibility_read(cert, len, &p->vis, &err);
    snprintf(p->vis_text, sizeof p->vis_text, "%s", p->vis_rc != MSP_OK ? err.detail : "");
    free(p->cert);
    p->cert = malloc(len);
    /* without memory nothing is remembered: the next certificate is parsed again, to the same result */
    p->cert_len = p->cert != NULL ? len : 0;
    if (p->cert != NULL) {
        memcpy(p->cert, cert, len);
    }
}

/*
 * ---- the verdict a resumption inherits ----
 * A resumption shows no certificate: what holds for its traffic is the
 * visibility information of the full handshake that issued its ticket. That
 * verdict travels with the tickets (msp_ets_conn_set_issuer), in this
 * private form: u32 error code, u8 flags (1: matches, 2: misplaced), u8
 * entries, u16-prefixed error text, then per entry the fingerprint, u8
 * match, u16-prefixed access description.
 */

static void verdict_put(msp_buf_t *b, const msp_ets_visibility_t *vis, int rc, const char *text)
{
    size_t tl = strlen(text);
    msp_buf_put_u32(b, (uint32_t)rc);
    msp_buf_put_u8(b, (uint8_t)((vis->matches ? 1 : 0) | (vis->misplaced ? 2 : 0)));
    msp_buf_put_u8(b, (uint8_t)vis->n_vi);
    msp_buf_put_u16(b, (uint16_t)tl);
    msp_buf_put(b, text, tl);
    for (size_t k = 0; k < vis->n_vi; k++) {
        msp_buf_put(b, vis->vi[k].fingerprint, MSP_ETS_FINGERPRINT_LEN);
        msp_buf_put_u8(b, (uint8_t)vis->match[k]);
        msp_buf_put_u16(b, (uint16_t)vis->vi[k].access_len);
        msp_buf_put(b, vis->vi[k].access, vis->vi[k].access_len);
    }
}

/* Keeps the flow's verdict and hands it to its decryptor for the tickets to come; too large: said so instead. */
static void verdict_keep(msp_ets_passive_flow_t *f, const msp_ets_visibility_t *vis, int rc, const char *text)
{
    static const msp_ets_visibility_t none = {.n_vi = 0};
    msp_buf_free(&f->verdict);
    msp_buf_init(&f->verdict, MSP_ETS_DEC_MAX_ISSUER_INFO);
    verdict_put(&f->verdict, vis, rc, text);
    if (msp_buf_error(&f->verdict) == MSP_ERR_LIMIT) {
        msp_buf_free(&f->verdict);
        msp_buf_init(&f->verdict, MSP_ETS_DEC_MAX_ISSUER_INFO);
        verdict_put(&f->verdict, &none, MSP_ERR_NOT_FOUND,
                    "the issuing connection's visibility information was too large to keep with its tickets");
    }
    int ok = msp_buf_error(&f->verdict) == MSP_OK;
    /* without memory the tickets carry the flow id only: their resumptions say the verdict was not kept */
    msp_ets_conn_set_issuer(f->conn, msp_tcp_flow_info(f->tcp)->id, ok ? f->verdict.base : NULL,
                            ok ? f->verdict.len : 0);
}

/* Reads a kept verdict into p->rvis; MSP_OK, or MSP_ERR_SYNTAX (it is ours: only a bug gets there). */
static int verdict_read(msp_ets_passive_t *p, const uint8_t *in, size_t n, int *rc)
{
    msp_ets_visibility_t *vis = &p->rvis;
    msp_reader_t r, s;
    uint32_t code;
    uint8_t flags, nvi, m;
    msp_reader_init(&r, in, n);
    if (msp_read_u32(&r, &code) || msp_read_u8(&r, &flags) || msp_read_u8(&r, &nvi) || nvi > MSP_ETS_MAX_VI ||
        msp_read_block(&r, 2, &s) || msp_reader_left(&s) >= sizeof p->rvis_text) {
        return MSP_ERR_SYNTAX;
    }
    *rc = (int)code;
    snprintf(p->rvis_text, sizeof p->rvis_text, "%.*s", (int)msp_reader_left(&s), (const char *)s.pos);
    vis->matches = flags & 1;
    vis->misplaced = (flags & 2) != 0;
    for (vis->n_vi = 0; vis->n_vi < nvi; vis->n_vi++) {
        msp_ets_vi_t *vi = &vis->vi[vis->n_vi];
        if (msp_read_copy(&r, vi->fingerprint, MSP_ETS_FINGERPRINT_LEN) || msp_read_u8(&r, &m) ||
            msp_read_block(&r, 2, &s) || msp_reader_left(&s) > MSP_ETS_MAX_ACCESS) {
            return MSP_ERR_SYNTAX;
        }
        vi->access_len = msp_reader_left(&s);
        memcpy(vi->access, s.pos, vi->access_len);
        vi->access[vi->access_len] = '\0';
        vis->match[vis->n_vi] = m != 0;
    }
    return msp_reader_expect_end(&r) == MSP_OK ? MSP_OK : MSP_ERR_SYNTAX;
}

/* The issuing connection's verdict for a resumption (ev->issuer_tag set), or why there is none. */
static int inherited(msp_ets_passive_t *p, const msp_ets_event_t *ev)
{
    int rc = MSP_ERR_NOT_FOUND;
    if (ev->issuer_info == NULL || verdict_read(p, ev->issuer_info, ev->issuer_info_len, &rc) != MSP_OK) {
        p->rvis.n_vi = 0; /* what verdict_read left half done */
        p->rvis.matches = p->rvis.misplaced = 0;
        rc = MSP_ERR_NOT_FOUND;
        snprintf(p->rvis_text, sizeof p->rvis_text, "the visibility verdict of flow %llu was not kept with its ticket",
                 (unsigned long long)ev->issuer_tag);
    }
    return rc;
}

static void on_resumption(msp_ets_passive_flow_t *f, const msp_ets_event_t *ev)
{
    msp_ets_passive_t *p = f->p;
    if (ev->issuer_tag == 0) { /* not a ticket of ours: nothing known about its certificate */
        if (p->cb.event != NULL) {
            p->cb.event(p->arg, f, ev, NULL);
        }
        return;
    }
    int rc = inherited(p, ev);
    f->vis_error = rc != MSP_OK && rc != MSP_ERR_NOT_FOUND; /* the issuing certificate's own error */
    verdict_keep(f, &p->rvis, rc, p->rvis_text);            /* a resumption's tickets inherit it in turn */
    msp_ets_passive_vis_t vis = {&p->rvis, rc, p->rvis_text};
    if (p->cb.event != NULL) {
        p->cb.event(p->arg, f, ev, &vis);
    }
}

static void on_handshake(msp_ets_passive_flow_t *f, const msp_ets_event_t *ev)
{
    msp_ets_passive_t *p = f->p;
    f->handshake = 1;
    if (ev->cert == NULL) {
        on_resumption(f, ev);
        return;
    }
    read_certificate(p, ev->cert, ev->cert_len);
    msp_ets_visibility_match(&p->vis, ev->fingerprint);
    f->vis_error = p->vis_rc != MSP_OK;
    p->n.visibility_errors += (uint64_t)f->vis_error;
    verdict_keep(f, &p->vis, p->vis_rc, p->vis_text);
    msp_ets_passive_vis_t vis = {&p->vis, p->vis_rc, p->vis_text};
    if (p->cb.event != NULL) {
        p->cb.event(p->arg, f, ev, &vis);
    }
}

/* ---- decryptor callbacks ---- */

static void on_plaintext(void *arg, int dir, uint8_t content_type, const uint8_t *bytes, size_t n)
{
    msp_ets_passive_flow_t *f = arg;
    msp_ets_passive_t *p = f->p;
    if (content_type != 23) {
        return; /* alerts come as events */
    }
    f->plain[dir] += n;
    p->n.plaintext += n;
    if (p->cb.plaintext != NULL) {
        p->cb.plaintext(p->arg, f, dir, bytes, n, p->now_us);
    }
}

static void on_keylog(void *arg, const char *label, const uint8_t client_random[32], const uint8_t *secret, size_t len)
{
    msp_ets_passive_flow_t *f = arg;
    msp_ets_passive_t *p = f->p;
    char line[MSP_ETS_PASSIVE_MAX_KEYLOG];
    size_t ln = strlen(label);
    /* "LABEL RANDOM SECRET\n", put together without printf: six lines per connection */
    if (p->cb.keylog == NULL || len > 64 || ln + 1 + 64 + 1 + 2 * len + 2 > sizeof line) {
        return;
    }
    memcpy(line, label, ln);
    line[ln] = ' ';
    msp_hex(line + ln + 1, client_random, 32);
    line[ln + 65] = ' ';
    msp_hex(line + ln + 66, secret, len);
    size_t n = ln + 66 + 2 * len;
    line[n++] = '\n';
    p->cb.keylog(p->arg, f, line, n);
}

/*
 * The decryptor sees records that make no sense before a ClientHello; the
 * TCP table knows the connection's start was not captured. Together: the
 * capture began mid-connection, said as such instead of "malformed".
 */
static const msp_ets_event_t *midstream(msp_ets_passive_flow_t *f, const msp_ets_event_t *ev, msp_ets_event_t *out,
                                        char *text, size_t cap)
{
    if (ev->client_random != NULL || !msp_tcp_flow_info(f->tcp)->initiator_guessed) {
        return ev;
    }
    snprintf(text, cap, "capture began mid-connection (neither its SYN nor its ClientHello was seen): %s", ev->text);
    *out = *ev;
    out->reason = MSP_ETS_R_MIDSTREAM;
    out->text = text;
    f->p->n.midstream++;
    return out;
}

static void on_event(void *arg, const msp_ets_event_t *dec_ev)
{
    msp_ets_passive_flow_t *f = arg;
    msp_ets_passive_t *p = f->p;
    /* the decryptor knows no time: the event is the flow's latest packet's (the one being fed, or at the end its last)
     */
    msp_ets_event_t timed = *dec_ev;
    timed.ts_us = msp_tcp_flow_info(f->tcp)->last_ts_us;
    const msp_ets_event_t *ev = &timed;
    msp_ets_event_t mid;
    char text[MSP_ETS_DEC_MAX_TEXT + 96];
    if (ev->kind == MSP_ETS_EV_HANDSHAKE) {
        on_handshake(f, ev);
        return;
    }
    if (ev->kind == MSP_ETS_EV_UNDECRYPTABLE) {
        f->failed = 1;
        /* nothing more will come out of it: stop reassembling it (unless only one direction failed, after a gap) */
        if (msp_ets_conn_failed(f->conn)) {
            msp_tcp_flow_ignore(f->tcp);
        }
        ev = midstream(f, ev, &mid, text, sizeof text);
    }
    if (p->cb.event != NULL) {
        p->cb.event(p->arg, f, ev, NULL);
    }
}

static const msp_ets_conn_cb_t conn_callbacks = {on_plaintext, on_event, on_keylog};

/* ---- TCP callbacks ---- */

static void flow_link(msp_ets_passive_t *p, msp_ets_passive_flow_t *f)
{
    f->next = p->flows;
    if (p->flows != NULL) {
        p->flows->prev = f;
    }
    p->flows = f;
}

static void flow_free(msp_ets_passive_t *p, msp_ets_passive_flow_t *f)
{
    if (f->prev != NULL) {
        f->prev->next = f->next;
    } else {
        p->flows = f->next;
    }
    if (f->next != NULL) {
        f->next->prev = f->prev;
    }
    msp_buf_free(&f->verdict); /* flow_new wipes a pooled flow: nothing of it may own memory but its decryptor */
    if (p->npool < FLOW_POOL) {
        dec_conn_recycle(f->conn);
        p->pool[p->npool++] = f;
        return;
    }
    msp_ets_conn_free(f->conn);
    free(f);
}

/* A flow with a fresh decryptor: a recycled one when there is one (no allocation), else a new one. */
static msp_ets_passive_flow_t *flow_new(msp_ets_passive_t *p)
{
    if (p->npool > 0) {
        msp_ets_passive_flow_t *f = p->pool[--p->npool];
        msp_ets_conn_t *conn = f->conn;
        memset(f, 0, sizeof *f);
        f->conn = conn;
        return f;
    }
    msp_ets_passive_flow_t *f = calloc(1, sizeof *f);
    if (f == NULL || msp_ets_conn_new(p->keys, p->tickets, &conn_callbacks, f, &f->conn) != MSP_OK) {
        free(f);
        return NULL;
    }
    return f;
}

static void on_open(void *ctx, msp_tcp_flow_t *tcp, const msp_tcp_flow_info_t *info)
{
    (void)info;
    msp_ets_passive_t *p = ctx;
    msp_ets_passive_flow_t *f = flow_new(p);
    if (f == NULL) {
        pipeline_error(p, MSP_ERR_NO_MEMORY, "no memory for a connection: it was not followed");
        msp_tcp_flow_ignore(tcp);
        return;
    }
    f->p = p;
    f->tcp = tcp;
    flow_link(p, f);
    msp_tcp_flow_set_user(tcp, f);
    p->n.flows++;
    if (p->cb.flow_open != NULL) {
        p->cb.flow_open(p->arg, f);
    }
}

static void on_data(void *ctx, msp_tcp_flow_t *tcp, int dir, const uint8_t *bytes, size_t n, uint64_t ts_us)
{
    msp_ets_passive_t *p = ctx;
    msp_ets_passive_flow_t *f = msp_tcp_flow_user(tcp);
    p->now_us = ts_us;
    if (f != NULL) {
        f->saw_data = 1;
        if (msp_ets_conn_feed(f->conn, dir, bytes, n) != MSP_OK) {
            pipeline_error(p, MSP_ERR_NO_MEMORY, "no memory for a connection's records");
        }
    }
}

static void on_gap(void *ctx, msp_tcp_flow_t *tcp, int dir, uint64_t lost, uint64_t ts_us)
{
    msp_ets_passive_t *p = ctx;
    msp_ets_passive_flow_t *f = msp_tcp_flow_user(tcp);
    p->now_us = ts_us;
    if (f != NULL) {
        f->saw_data = 1;
        msp_ets_conn_gap(f->conn, dir, lost);
    }
}

static void on_close(void *ctx, msp_tcp_flow_t *tcp, msp_tcp_close_reason_t reason)
{
    msp_ets_passive_t *p = ctx;
    msp_ets_passive_flow_t *f = msp_tcp_flow_user(tcp);
    if (f == NULL) {
        return;
    }
    if (f->saw_data) {
        msp_ets_conn_end(f->conn); /* a handshake cut short is reported now */
    }
    msp_ets_flow_status_t st = msp_ets_passive_flow_status(f);
    p->n.undecryptable += st == MSP_ETS_FLOW_UNDECRYPTABLE;
    p->n.decrypted += st == MSP_ETS_FLOW_DECRYPTED;
    p->n.empty += st == MSP_ETS_FLOW_EMPTY;
    if (p->cb.flow_end != NULL) {
        p->cb.flow_end(p->arg, f, reason);
    }
    msp_tcp_flow_set_user(tcp, NULL);
    flow_free(p, f);
}

/* ---- the pipeline ---- */

void msp_ets_passive_cfg_default(msp_ets_passive_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    msp_tcp_config_default(&cfg->tcp);
    cfg->max_tickets = MSP_ETS_PASSIVE_TICKETS_DEFAULT;
}

static int cfg_ok(const msp_ets_passive_cfg_t *cfg)
{
    const msp_tcp_config_t *t = &cfg->tcp;
    return t->max_flows >= 1 && t->window >= 1 && t->window <= (1u << 30) && t->max_segs >= 1 &&
           t->max_closed <= MSP_TCP_MAX_CLOSED && cfg->max_tickets <= (1u << 24);
}

int msp_ets_passive_new(const msp_ets_passive_cfg_t *cfg, msp_ets_passive_t **out)
{
    static const msp_tcp_callbacks_t tcp_cb = {on_open, on_data, on_gap, on_close};
    *out = NULL;
    if (cfg == NULL || !cfg_ok(cfg)) {
        return MSP_ERR_ARGUMENT;
    }
    msp_ets_passive_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    if (cfg->cb != NULL) {
        p->cb = *cfg->cb;
    }
    p->arg = cfg->arg;
    /* cfg_ok checked the arguments: what fails here is memory (or OpenSSL fetching the algorithms) */
    if (msp_ets_keys_new(&p->keys) != MSP_OK ||
        (cfg->max_tickets > 0 && msp_ets_tickets_new(cfg->max_tickets, &p->tickets) != MSP_OK) ||
        msp_tcp_new(&cfg->tcp, &tcp_cb, p, &p->tcp) != MSP_OK) {
        msp_ets_passive_free(p);
        return MSP_ERR_NO_MEMORY;
    }
    *out = p;
    return MSP_OK;
}

void msp_ets_passive_free(msp_ets_passive_t *p)
{
    if (p == NULL) {
        return;
    }
    msp_tcp_free(p->tcp); /* flows still open are dropped without callbacks: ours go here */
    while (p->flows != NULL) {
        flow_free(p, p->flows);
    }
    while (p->npool > 0) {
        msp_ets_passive_flow_t *f = p->pool[--p->npool];
        msp_ets_conn_free(f->conn);
        free(f);
    }
    msp_ets_tickets_free(p->tickets);
    msp_ets_keys_free(p->keys);
    free(p->cert);
    free(p);
}

/* ---- keys ---- */

int msp_ets_passive_add_key(msp_ets_passive_t *p, EVP_PKEY *key, msp_error_t *err)
{
    uint8_t share[MSP_ETS_DEC_MAX_SHARE];
    size_t len = 0;
    if (key == NULL || msp_ets_key_share(key, share, sizeof share, &len) != MSP_OK) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "not an X25519 or P-256 key");
    }
    size_t n = msp_ets_keys_count(p->keys);
    for (size_t k = 0; k < n; k++) {
        if (p->share_len[k] == len && memcmp(p->share[k], share, len) == 0) {
            return MSP_OK; /* e.g. the key manager's GROUP.pem is a copy of a GROUP-FINGERPRINT.pem */
        }
    }
    if (n == MSP_ETS_DEC_MAX_KEYS) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "more than %d static keys", MSP_ETS_DEC_MAX_KEYS);
    }
    int rc = msp_ets_keys_add(p->keys, key, err);
    if (rc == MSP_OK) {
        memcpy(p->share[n], share, len);
        p->share_len[n] = len;
    }
    return rc;
}

int msp_ets_passive_add_keypkg(msp_ets_passive_t *p, const msp_ets_keypkg_t *pkg, msp_error_t *err)
{
    for (size_t k = 0; k < pkg->n_static; k++) {
        int rc = msp_ets_passive_add_key(p, pkg->statics[k].key, err);
        if (rc != MSP_OK) {
            return rc;
        }
    }
    return MSP_OK;
}

size_t msp_ets_passive_key_count(const msp_ets_passive_t *p)
{
    return msp_ets_keys_count(p->keys);
}

/* ---- input, results ---- */

int msp_ets_passive_packet(msp_ets_passive_t *p, uint64_t ts_us, int link, const uint8_t *bytes, size_t caplen,
                           size_t len)
{
    return msp_tcp_packet(p->tcp, link, bytes, caplen, len, ts_us);
}

msp_tcp_t *msp_ets_passive_tcp(msp_ets_passive_t *p)
{
    return p->tcp;
}

void msp_ets_passive_finish(msp_ets_passive_t *p)
{
    msp_tcp_finish(p->tcp);
}

const msp_ets_passive_counts_t *msp_ets_passive_counts(const msp_ets_passive_t *p)
{
    return &p->n;
}

const msp_tcp_stats_t *msp_ets_passive_tcp_stats(const msp_ets_passive_t *p)
{
    return msp_tcp_stats(p->tcp);
}

int msp_ets_passive_error(const msp_ets_passive_t *p, msp_error_t *err)
{
    if (err != NULL) {
        *err = p->err;
    }
    return p->err.code;
}

/* ---- a flow ---- */

const msp_tcp_flow_info_t *msp_ets_passive_flow_info(const msp_ets_passive_flow_t *f)
{
    return msp_tcp_flow_info(f->tcp);
}

msp_ets_flow_status_t msp_ets_passive_flow_status(const msp_ets_passive_flow_t *f)
{
    return f->failed ? MSP_ETS_FLOW_UNDECRYPTABLE : f->handshake ? MSP_ETS_FLOW_DECRYPTED : MSP_ETS_FLOW_EMPTY;
}

uint64_t msp_ets_passive_flow_plaintext(const msp_ets_passive_flow_t *f, int dir)
{
    return dir == 0 || dir == 1 ? f->plain[dir] : 0;
}

int msp_ets_passive_flow_visibility_error(const msp_ets_passive_flow_t *f)
{
    return f->vis_error;
}

void msp_ets_passive_flow_set_user(msp_ets_passive_flow_t *f, void *user)
{
    f->user = user;
}

void *msp_ets_passive_flow_user(const msp_ets_passive_flow_t *f)
{
    return f->user;
}

/* Both structs are uint64_t counters only (checked below), so a new counter is summed without a change here. */
static void add_u64s(uint64_t *into, const uint64_t *from, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        into[k] += from[k];
    }
}

_Static_assert(sizeof(msp_ets_passive_counts_t) % sizeof(uint64_t) == 0, "counts are uint64_t");
_Static_assert(sizeof(msp_tcp_stats_t) % sizeof(uint64_t) == 0, "TCP statistics are uint64_t");

void msp_ets_passive_add_counts(msp_ets_passive_t *into, const msp_ets_passive_t *from)
{
    add_u64s((uint64_t *)&into->n, (const uint64_t *)&from->n, sizeof into->n / sizeof(uint64_t));
    /* the table's statistics are its own; into's table is only summed into, never fed by this */
    msp_tcp_stats_t *st = (msp_tcp_stats_t *)msp_tcp_stats(into->tcp);
    add_u64s((uint64_t *)st, (const uint64_t *)msp_tcp_stats(from->tcp), sizeof *st / sizeof(uint64_t));
    if (into->err.code == MSP_OK) {
        into->err = from->err;
    }
}
