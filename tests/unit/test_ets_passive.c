/*
 * The passive pipeline (msp/ets_passive.h) fed packets: connections between
 * a stock client and an ETS server (the msp-ets provider, static key
 * shares) are recorded by ets_pair, put on the wire as Ethernet/IPv4/TCP
 * packets (three-way handshake, segments of at most 1400 bytes in the order
 * the sides wrote, FINs), and fed to the pipeline, which must hand out
 * exactly the plaintext each side sent, the client's own key log lines and
 * the visibility verdict of the certificate. Also: a flow with a wrong key
 * reports its error and ends undecryptable; a certificate whose visibility
 * information is malformed is reported (not taken for "none"), also from the
 * remembered certificate of a second connection; the limits (flow table,
 * ticket store, key count, configuration); key packages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ets_pair.h"
#include "msp/error.h"
#include "msp/ets.h"
#include "msp/ets_passive.h"
#include "msp/ets_provider.h"

#define MAX_FLOWS 8
#define MSS 1400

typedef struct world {
    EVP_PKEY *x25519, *p256, *other, *cert_key;
    X509 *cert_vi, *cert_bad, *cert_big;
    OSSL_LIB_CTX *lib;
    SSL_CTX *sctx_vi, *sctx_bad, *sctx_big, *cctx;
} world_t;

static world_t W;

/* ---- what the pipeline reports ---- */

typedef struct got_flow {
    uint64_t id;
    uint8_t *pt[2];
    size_t pt_len[2];
    int handshakes, undecryptable, ended, resumed;
    msp_ets_reason_t reason;
    int vis_seen, vis_error, vis_matches;
    size_t n_vi;
    char vis_text[256];
    msp_tcp_close_reason_t end_reason;
    msp_ets_flow_status_t status;
    uint64_t plain[2];
    int flow_vis_error;
    msp_tcp_flow_info_t info;           /* at open */
    char text[512];                     /* of the undecryptable event */
    uint64_t issuer_tag;                /* of the handshake event */
    char json[8192];                    /* the handshake event's line */
    uint64_t first_ts, hs_ts, plain_ts; /* the flow's first packet, its handshake event, its first plaintext */
} got_flow_t;

typedef struct got {
    got_flow_t f[MAX_FLOWS];
    size_t n;
    char keylog[16384];
    size_t keylog_len, keylog_lines;
} got_t;

static void on_open(void *arg, msp_ets_passive_flow_t *flow)
{
    got_t *g = arg;
    assert_true(g->n < MAX_FLOWS);
    got_flow_t *f = &g->f[g->n++];
    f->id = msp_ets_passive_flow_info(flow)->id;
    f->info = *msp_ets_passive_flow_info(flow);
    f->first_ts = msp_ets_passive_flow_info(flow)->first_ts_us;
    msp_ets_passive_flow_set_user(flow, f);
}

static void on_plain(void *arg, msp_ets_passive_flow_t *flow, int dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)arg;
    got_flow_t *f = msp_ets_passive_flow_user(flow);
    f->plain_ts = f->plain_ts != 0 ? f->plain_ts : ts;
    f->pt[dir] = realloc(f->pt[dir], f->pt_len[dir] + n + 1);
    assert_non_null(f->pt[dir]);
    memcpy(f->pt[dir] + f->pt_len[dir], p, n);
    f->pt_len[dir] += n;
}

static void on_event(void *arg, msp_ets_passive_flow_t *flow, const msp_ets_event_t *ev,
                     const msp_ets_passive_vis_t *vis)
{
    (void)arg;
    got_flow_t *f = msp_ets_passive_flow_user(flow);
    /* every event carries capture time: that of the flow's latest packet */
    assert_int_equal(ev->ts_us, msp_ets_passive_flow_info(flow)->last_ts_us);
    if (ev->kind == MSP_ETS_EV_HANDSHAKE) {
        f->hs_ts = ev->ts_us;
        f->handshakes++;
        f->resumed = ev->resumed;
        f->issuer_tag = ev->issuer_tag;
        msp_buf_t b;
        msp_buf_init_fixed(&b, f->json, sizeof f->json - 1);
        assert_int_equal(msp_ets_passive_event_json(f->id, ev, vis, &b), MSP_OK);
        f->json[b.len] = '\0';
        if (vis != NULL) {
            f->vis_seen = 1;
            f->vis_error = vis->error;
            f->vis_matches = vis->vis->matches;
            f->n_vi = vis->vis->n_vi;
            snprintf(f->vis_text, sizeof f->vis_text, "%s", vis->error_text);
        }
    } else {
        assert_null(vis);
    }
    if (ev->kind == MSP_ETS_EV_UNDECRYPTABLE) {
        f->undecryptable++;
        f->reason = ev->reason;
        snprintf(f->text, sizeof f->text, "%s", ev->text);
    }
}

static void on_keylog(void *arg, msp_ets_passive_flow_t *flow, const char *line, size_t len)
{
    (void)flow;
    got_t *g = arg;
    assert_true(len > 0 && line[len - 1] == '\n');
    assert_true(g->keylog_len + len < sizeof g->keylog);
    memcpy(g->keylog + g->keylog_len, line, len);
    g->keylog_len += len;
    g->keylog[g->keylog_len] = '\0';
    g->keylog_lines++;
}

static void on_end(void *arg, msp_ets_passive_flow_t *flow, msp_tcp_close_reason_t reason)
{
    (void)arg;
    got_flow_t *f = msp_ets_passive_flow_user(flow);
    f->ended++;
    f->end_reason = reason;
    f->status = msp_ets_passive_flow_status(flow);
    f->plain[0] = msp_ets_passive_flow_plaintext(flow, 0);
    f->plain[1] = msp_ets_passive_flow_plaintext(flow, 1);
    f->flow_vis_error = msp_ets_passive_flow_visibility_error(flow);
}

static const msp_ets_passive_cb_t CB = {on_open, on_plain, on_event, on_keylog, on_end};

static void got_free(got_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->f[i].pt[0]);
        free(g->f[i].pt[1]);
    }
    free(g);
}

static msp_ets_passive_t *pipeline(got_t **g, size_t max_flows, size_t max_tickets, EVP_PKEY *key)
{
    *g = calloc(1, sizeof **g);
    assert_non_null(*g);
    msp_ets_passive_cfg_t cfg;
    msp_ets_passive_cfg_default(&cfg);
    cfg.tcp.max_flows = max_flows;
    cfg.max_tickets = max_tickets;
    cfg.cb = &CB;
    cfg.arg = *g;
    msp_ets_passive_t *p = NULL;
    assert_int_equal(msp_ets_passive_new(&cfg, &p), MSP_OK);
    msp_error_t err;
    if (key != NULL) {
        assert_int_equal(msp_ets_passive_add_key(p, key, &err), MSP_OK);
    }
    return p;
}

/* ---- packets ---- */

typedef struct wire {
    msp_ets_passive_t *p;
    uint16_t cport;
    uint32_t seq[2];
    uint64_t ts;
} wire_t;

static void packet(wire_t *w, int dir, uint8_t flags, const uint8_t *data, size_t n)
{
    static const uint8_t client[4] = {10, 0, 0, 1}, server[4] = {10, 0, 0, 2};
    msp_tcp_pkt_t pkt = {.ip_version = 4, .flags = flags, .window = 65535, .payload = data, .payload_len = n};
    memcpy(pkt.src, dir == 0 ? client : server, 4);
    memcpy(pkt.dst, dir == 0 ? server : client, 4);
    pkt.sport = dir == 0 ? w->cport : 443;
    pkt.dport = dir == 0 ? 443 : w->cport;
    pkt.seq = w->seq[dir];
    pkt.ack = w->seq[!dir];
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    assert_int_equal(msp_tcp_build(MSP_TCP_LINK_EN10MB, &pkt, &b), MSP_OK);
    w->ts += 1000;
    assert_int_equal(msp_ets_passive_packet(w->p, w->ts, MSP_TCP_LINK_EN10MB, b.base, b.len, b.len), MSP_OK);
    msp_buf_free(&b);
    w->seq[dir] += (uint32_t)n + ((flags & (MSP_TCP_SYN | MSP_TCP_FIN)) != 0);
}

static void syn(wire_t *w, msp_ets_passive_t *p, uint16_t cport)
{
    *w = (wire_t){.p = p, .cport = cport, .seq = {1000u * cport, 7777u}, .ts = 1700000000000000ull + cport};
    packet(w, 0, MSP_TCP_SYN, NULL, 0);
    packet(w, 1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0);
    packet(w, 0, MSP_TCP_ACK, NULL, 0);
}

/* Chunks [from, to) of the recorded connection whose direction is in dirs (bit 0: client, bit 1: server). */
static void put_chunks(wire_t *w, const ets_pair_t *pair, size_t from, size_t to, int dirs)
{
    for (size_t i = from; i < to && i < pair->nchunks; i++) {
        const ets_chunk_t *c = &pair->chunks[i];
        if (!(dirs & (1 << c->dir))) {
            continue;
        }
        for (size_t off = 0; off < c->len; off += MSS) {
            size_t n = c->len - off < MSS ? c->len - off : MSS;
            packet(w, c->dir, MSP_TCP_ACK | MSP_TCP_PSH, pair->bytes[c->dir] + c->off + off, n);
        }
    }
}

/* The recorded connection as packets, the sides' writes in their order; FINs at the end. */
static void put_on_wire(msp_ets_passive_t *p, const ets_pair_t *pair, uint16_t cport)
{
    wire_t w;
    syn(&w, p, cport);
    put_chunks(&w, pair, 0, pair->nchunks, 3);
    packet(&w, 1, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0);
    packet(&w, 0, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0);
}

static void run_pair(ets_pair_t *pair, SSL_CTX *sctx, const char *c2s, const char *s2c, SSL_SESSION *session)
{
    ets_pair_opts_t o = {.groups = "X25519", .c2s = c2s, .s2c = s2c, .session = session};
    if (ets_pair_run(pair, sctx, W.cctx, &o) != 0) {
        fail_msg("connection: %s", pair->error);
    }
}

static void assert_plaintext(const got_flow_t *f, const ets_pair_t *pair)
{
    for (int d = 0; d < 2; d++) {
        assert_int_equal(f->pt_len[d], pair->app_len[d]);
        assert_int_equal(f->plain[d], pair->app_len[d]);
        assert_memory_equal(f->pt[d], pair->app[d], pair->app_len[d]);
    }
}

/* ---- tests ---- */

static void test_plaintext_and_keylog(void **state)
{
    (void)state;
    ets_pair_t pair;
    run_pair(&pair, W.sctx_vi, "GET / HTTP/1.1\r\nHost: ets.example\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nhello", NULL);
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 16, W.x25519);
    put_on_wire(p, &pair, 40001);
    msp_ets_passive_finish(p);

    assert_int_equal(g->n, 1);
    got_flow_t *f = &g->f[0];
    assert_int_equal(f->id, 1);
    assert_int_equal(f->handshakes, 1);
    assert_int_equal(f->undecryptable, 0);
    assert_plaintext(f, &pair);
    assert_int_equal(f->ended, 1);
    assert_int_equal(f->end_reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(f->status, MSP_ETS_FLOW_DECRYPTED);
    /* the certificate names the key share the server sent */
    assert_true(f->vis_seen);
    assert_int_equal(f->vis_error, MSP_OK);
    assert_int_equal(f->n_vi, 1);
    assert_true(f->vis_matches);
    assert_string_equal(f->vis_text, "");
    assert_false(f->flow_vis_error);
    /* the handshake's time is a packet's (1000 us apart) after the SYN, not after the first plaintext */
    assert_true(f->hs_ts > f->first_ts && f->hs_ts <= f->plain_ts);
    assert_int_equal((f->hs_ts - f->first_ts) % 1000, 0);
    assert_true(msp_ets_passive_tcp_stats(p)->last_ts_us >= f->plain_ts);
    /* every key log line is one of the client's own */
    assert_true(g->keylog_lines >= 5);
    for (const char *line = g->keylog; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        char one[512];
        snprintf(one, sizeof one, "%.*s", (int)(nl + 1 - line), line);
        if (strstr(pair.keylog, one) == NULL) {
            fail_msg("not in the client's key log: %s", one);
        }
        line = nl + 1;
    }
    const msp_ets_passive_counts_t *n = msp_ets_passive_counts(p);
    assert_int_equal(n->flows, 1);
    assert_int_equal(n->decrypted, 1);
    assert_int_equal(n->undecryptable, 0);
    assert_int_equal(n->empty, 0);
    assert_int_equal(n->plaintext, pair.app_len[0] + pair.app_len[1]);
    assert_int_equal(n->visibility_errors, 0);
    assert_int_equal(msp_ets_passive_tcp_stats(p)->flows, 1);
    assert_int_equal(msp_ets_passive_error(p, NULL), MSP_OK);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&pair);
}

static void test_wrong_key(void **state)
{
    (void)state;
    ets_pair_t pair;
    run_pair(&pair, W.sctx_vi, NULL, NULL, NULL);
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 16, W.other);
    put_on_wire(p, &pair, 40002);
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 1);
    got_flow_t *f = &g->f[0];
    assert_int_equal(f->undecryptable, 1);
    assert_int_equal(f->reason, MSP_ETS_R_NO_STATIC_KEY);
    assert_int_equal(f->handshakes, 0);
    assert_int_equal(f->pt_len[0] + f->pt_len[1], 0);
    assert_int_equal(f->status, MSP_ETS_FLOW_UNDECRYPTABLE);
    assert_string_equal(msp_ets_flow_status_name(f->status), "undecryptable");
    assert_int_equal(g->keylog_lines, 0);
    assert_int_equal(msp_ets_passive_counts(p)->undecryptable, 1);
    assert_int_equal(msp_ets_passive_counts(p)->decrypted, 0);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&pair);
}

/*
 * Connections one after the other reuse the decryptor of the one before
 * (passive.c keeps ended flows): each must start clean, whatever the last
 * one left: another suite (SHA-384 after SHA-256, ChaCha20 after AES),
 * and a flow that failed half-way (its buffers dropped).
 */
static void test_recycled_flows(void **state)
{
    (void)state;
    static const char *const suites[] = {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                                         "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"};
    ets_pair_t pair[4], cut;
    for (int i = 0; i < 4; i++) {
        ets_pair_opts_t o = {.groups = "X25519", .ciphersuites = suites[i], .c2s = suites[i], .s2c = "recycled"};
        if (ets_pair_run(&pair[i], W.sctx_vi, W.cctx, &o) != 0) {
            fail_msg("connection: %s", pair[i].error);
        }
    }
    run_pair(&cut, W.sctx_vi, NULL, NULL, NULL);
    cut.nchunks = 2; /* ClientHello and the server's first flight: ends inside the handshake */
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 16, W.x25519);
    put_on_wire(p, &pair[0], 41001);
    put_on_wire(p, &cut, 41002);
    for (int i = 1; i < 4; i++) {
        put_on_wire(p, &pair[i], (uint16_t)(41002 + i));
    }
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 5);
    assert_int_equal(g->f[1].status, MSP_ETS_FLOW_UNDECRYPTABLE);
    for (size_t i = 0; i < 5; i++) {
        if (i != 1) {
            const ets_pair_t *want = &pair[i == 0 ? 0 : i - 1];
            assert_int_equal(g->f[i].status, MSP_ETS_FLOW_DECRYPTED);
            assert_int_equal(g->f[i].handshakes, 1);
            assert_plaintext(&g->f[i], want);
        }
    }
    assert_int_equal(msp_ets_passive_counts(p)->decrypted, 4);
    assert_int_equal(msp_ets_passive_error(p, NULL), MSP_OK);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&cut);
    for (int i = 0; i < 4; i++) {
        ets_pair_free(&pair[i]);
    }
}

/* Two connections to a server whose certificate carries a malformed entry: both decrypt, both say so (the second
 * from the remembered certificate), and neither takes it for "no visibility information". */
static void test_malformed_visibility(void **state)
{
    (void)state;
    ets_pair_t pair[2];
    run_pair(&pair[0], W.sctx_bad, "one", "two", NULL);
    run_pair(&pair[1], W.sctx_bad, "three", "four", NULL);
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 16, W.x25519);
    put_on_wire(p, &pair[0], 40003);
    put_on_wire(p, &pair[1], 40004);
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 2);
    for (int i = 0; i < 2; i++) {
        got_flow_t *f = &g->f[i];
        assert_int_equal(f->handshakes, 1);
        assert_plaintext(f, &pair[i]);
        assert_true(f->vis_seen);
        assert_int_equal(f->vis_error, MSP_ERR_SYNTAX);
        assert_non_null(strstr(f->vis_text, "malformed visibility information"));
        assert_int_equal(f->n_vi, 0);
        assert_false(f->vis_matches);
        assert_true(f->flow_vis_error);
        assert_int_equal(f->status, MSP_ETS_FLOW_DECRYPTED);
    }
    assert_int_equal(msp_ets_passive_counts(p)->visibility_errors, 2);
    assert_int_equal(msp_ets_passive_counts(p)->decrypted, 2);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&pair[0]);
    ets_pair_free(&pair[1]);
}

/* A full table evicts the least recently active flow, which ends with that reason; the newer one decrypts. */
static void test_flow_limit(void **state)
{
    (void)state;
    ets_pair_t pair;
    run_pair(&pair, W.sctx_vi, NULL, NULL, NULL);
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 1, 16, W.x25519);
    wire_t w;
    syn(&w, p, 40005); /* opened, never finished */
    put_on_wire(p, &pair, 40006);
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->f[0].ended, 1);
    assert_int_equal(g->f[0].end_reason, MSP_TCP_CLOSE_EVICTED);
    assert_int_equal(g->f[0].status, MSP_ETS_FLOW_EMPTY);
    assert_int_equal(g->f[1].status, MSP_ETS_FLOW_DECRYPTED);
    assert_plaintext(&g->f[1], &pair);
    const msp_ets_passive_counts_t *n = msp_ets_passive_counts(p);
    assert_int_equal(n->empty, 1);
    assert_int_equal(n->decrypted, 1);
    assert_int_equal(msp_ets_passive_tcp_stats(p)->evicted, 1);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&pair);
}

/* A flow still open when the pipeline is freed (no finish) is released with it: nothing leaks (ASan). */
static void test_free_open_flows(void **state)
{
    (void)state;
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 4, 0, W.x25519);
    wire_t w;
    syn(&w, p, 40007);
    syn(&w, p, 40008);
    assert_int_equal(msp_ets_passive_counts(p)->flows, 2);
    assert_int_equal(g->f[0].ended + g->f[1].ended, 0);
    msp_ets_passive_free(p);
    got_free(g);
}

/* The visibility fields of a handshake event's line, from "visibility" up to the end of the line. */
static const char *vis_fields(const got_flow_t *f)
{
    const char *v = strstr(f->json, ",\"visibility\":");
    assert_non_null(v);
    return v;
}

/* Flows 2 and 3 resumed the tickets of flows 1 and 2: each says so and shows flow 1's visibility verdict. */
static void assert_inherited(const got_t *g)
{
    assert_null(strstr(g->f[0].json, "resumed_from"));
    size_t vl = strlen(vis_fields(&g->f[0])) - 2; /* the full handshake's fields, without its "}\n" */
    for (int i = 1; i <= 2; i++) {
        const got_flow_t *f = &g->f[i];
        assert_int_equal(f->status, MSP_ETS_FLOW_DECRYPTED);
        assert_true(f->resumed);
        assert_int_equal(f->issuer_tag, (uint64_t)i);
        assert_true(f->vis_seen);
        assert_int_equal(f->vis_error, MSP_OK);
        assert_int_equal(f->n_vi, 1);
        assert_true(f->vis_matches);
        assert_false(f->flow_vis_error);
        char want[64];
        snprintf(want, sizeof want, ",\"resumed_from\":%d}\n", i);
        assert_memory_equal(vis_fields(f), vis_fields(&g->f[0]), vl);
        assert_string_equal(vis_fields(f) + vl, want);
    }
}

/*
 * Resumption decrypts with the PSK of a ticket seen earlier in the run, and
 * not without a ticket store. Issue 13, finding 6: the resumption's
 * handshake names the flow that issued its ticket ("resumed_from") and
 * carries that connection's visibility verdict, the same fields as the full
 * handshake's; a resumption of the resumption inherits them in turn.
 */
static void test_ticket_limit(void **state)
{
    (void)state;
    ets_pair_t first, again, third;
    run_pair(&first, W.sctx_vi, NULL, NULL, NULL);
    run_pair(&again, W.sctx_vi, "resumed c2s", "resumed s2c", first.session);
    run_pair(&third, W.sctx_vi, "third c2s", "third s2c", again.session);
    assert_int_equal(again.resumed, 1);
    assert_int_equal(third.resumed, 1);
    for (size_t tickets = 0; tickets <= 1; tickets++) {
        got_t *g;
        msp_ets_passive_t *p = pipeline(&g, 16, tickets * 8, W.x25519);
        put_on_wire(p, &first, 40009);
        put_on_wire(p, &again, 40010);
        put_on_wire(p, &third, 40017);
        msp_ets_passive_finish(p);
        assert_int_equal(g->n, 3);
        assert_int_equal(g->f[0].status, MSP_ETS_FLOW_DECRYPTED);
        if (tickets == 0) {
            assert_int_equal(g->f[1].reason, MSP_ETS_R_PSK_UNKNOWN);
            assert_int_equal(g->f[1].status, MSP_ETS_FLOW_UNDECRYPTABLE);
        } else {
            assert_inherited(g);
            assert_plaintext(&g->f[1], &again);
            assert_plaintext(&g->f[2], &third);
            assert_int_equal(msp_ets_passive_counts(p)->visibility_errors, 0);
        }
        msp_ets_passive_free(p);
        got_free(g);
    }
    ets_pair_free(&first);
    ets_pair_free(&again);
    ets_pair_free(&third);
}

/*
 * A verdict too large to keep with the tickets (an access description of
 * 3000 bytes): the full handshake shows it, the resumption says it was not
 * kept (MSP_ERR_NOT_FOUND, no entries) and still names its issuing flow;
 * not a visibility error of a certificate.
 */
static void test_inherited_too_large(void **state)
{
    (void)state;
    ets_pair_t first, again;
    run_pair(&first, W.sctx_big, NULL, NULL, NULL);
    run_pair(&again, W.sctx_big, "c2s", "s2c", first.session);
    assert_int_equal(again.resumed, 1);
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 8, W.x25519);
    put_on_wire(p, &first, 40018);
    put_on_wire(p, &again, 40019);
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->f[0].n_vi, 1);
    assert_true(g->f[0].vis_matches);
    got_flow_t *f = &g->f[1];
    assert_int_equal(f->status, MSP_ETS_FLOW_DECRYPTED);
    assert_int_equal(f->issuer_tag, 1);
    assert_true(f->vis_seen);
    assert_int_equal(f->vis_error, MSP_ERR_NOT_FOUND);
    assert_int_equal(f->n_vi, 0);
    assert_false(f->flow_vis_error);
    assert_non_null(strstr(f->vis_text, "too large to keep with its tickets"));
    assert_non_null(strstr(f->json, ",\"visibility\":[],\"visibility_matches\":false,\"visibility_error\":\""));
    assert_non_null(strstr(f->json, ",\"resumed_from\":1}\n"));
    assert_int_equal(msp_ets_passive_counts(p)->visibility_errors, 0);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&first);
    ets_pair_free(&again);
}

/* A visibility server's connection, a pipeline that holds its key, and the SYN of its flow from cport. */
static msp_ets_passive_t *opened_flow(ets_pair_t *pair, got_t **g, wire_t *w, uint16_t cport)
{
    run_pair(pair, W.sctx_vi, NULL, NULL, NULL);
    msp_ets_passive_t *p = pipeline(g, 16, 16, W.x25519);
    syn(w, p, cport);
    return p;
}

/*
 * Issue 13, finding 1: a client that resets its connection after the
 * ClientHello (as `msp ets probe` does once it has the ServerHello); the
 * server's flight is captured after the RST. One connection, one flow: the
 * late flight must not open a second flow with the roles swapped and an
 * "encrypted record 0 before the ClientHello".
 */
static void test_late_flight_after_rst(void **state)
{
    (void)state;
    ets_pair_t pair;
    got_t *g;
    wire_t w;
    msp_ets_passive_t *p = opened_flow(&pair, &g, &w, 40013);
    put_chunks(&w, &pair, 0, 1, 1); /* the ClientHello */
    packet(&w, 0, MSP_TCP_RST | MSP_TCP_ACK, NULL, 0);
    put_chunks(&w, &pair, 1, pair.nchunks, 2); /* everything the server sent, late */
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 1);
    assert_int_equal(msp_ets_passive_counts(p)->flows, 1);
    assert_int_equal(g->f[0].end_reason, MSP_TCP_CLOSE_RST);
    assert_int_equal(g->f[0].undecryptable, 1);
    assert_int_equal(g->f[0].reason, MSP_ETS_R_TRUNCATED); /* the connection did end inside its handshake */
    assert_true(msp_ets_passive_tcp_stats(p)->late > 0);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&pair);
}

/*
 * Issue 13, finding 2: a connection already open when the capture starts
 * (its first packets are the server's, after the handshake). Port 443 was
 * seen listening (an earlier connection's SYN): the server is that side;
 * the flow is undecryptable as "capture began mid-connection", counted as
 * such, not "malformed".
 */
static void test_midstream(void **state)
{
    (void)state;
    ets_pair_t first, open;
    run_pair(&first, W.sctx_vi, NULL, NULL, NULL);
    run_pair(&open, W.sctx_vi, "already open c2s", "already open s2c", NULL);
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 16, W.x25519);
    put_on_wire(p, &first, 40014);
    size_t from = 2; /* after the ClientHello and the server's first flight: a server write comes first */
    while (from < open.nchunks && open.chunks[from].dir != 1) {
        from++;
    }
    assert_true(from < open.nchunks);
    wire_t w = {.p = p, .cport = 40015, .seq = {123456u, 654321u}, .ts = 1700000100000000ull};
    put_chunks(&w, &open, from, open.nchunks, 3);
    packet(&w, 1, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0);
    packet(&w, 0, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0);
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->f[0].status, MSP_ETS_FLOW_DECRYPTED);
    got_flow_t *f = &g->f[1];
    assert_true(f->info.initiator_guessed);
    assert_true(f->info.roles_from_port);
    assert_int_equal(f->info.port[0], 40015);
    assert_int_equal(f->info.port[1], 443);
    assert_int_equal(f->undecryptable, 1);
    assert_int_equal(f->reason, MSP_ETS_R_MIDSTREAM);
    assert_string_equal(msp_ets_reason_name(f->reason), "midstream");
    assert_non_null(strstr(f->text, "capture began mid-connection"));
    assert_int_equal(f->status, MSP_ETS_FLOW_UNDECRYPTABLE);
    const msp_ets_passive_counts_t *n = msp_ets_passive_counts(p);
    assert_int_equal(n->undecryptable, 1);
    assert_int_equal(n->midstream, 1);
    assert_int_equal(n->decrypted, 1);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&first);
    ets_pair_free(&open);
}

/* A flow whose SYN was seen fails as before (its reason is the decryptor's), never midstream. */
static void test_not_midstream_with_syn(void **state)
{
    (void)state;
    ets_pair_t pair;
    got_t *g;
    wire_t w;
    msp_ets_passive_t *p = opened_flow(&pair, &g, &w, 40016);
    put_chunks(&w, &pair, 2, pair.nchunks, 3); /* the handshake's records are missing, not the SYN */
    msp_ets_passive_finish(p);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->f[0].undecryptable, 1);
    assert_int_not_equal(g->f[0].reason, MSP_ETS_R_MIDSTREAM);
    assert_int_equal(msp_ets_passive_counts(p)->midstream, 0);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&pair);
}

static void test_key_limits(void **state)
{
    (void)state;
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 16, NULL);
    msp_error_t err;
    /* the same key twice is held once */
    assert_int_equal(msp_ets_passive_add_key(p, W.x25519, &err), MSP_OK);
    assert_int_equal(msp_ets_passive_add_key(p, W.x25519, &err), MSP_OK);
    assert_int_equal(msp_ets_passive_key_count(p), 1);
    /* not an ETS static key */
    assert_int_equal(msp_ets_passive_add_key(p, W.cert_key, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_passive_add_key(p, NULL, &err), MSP_ERR_ARGUMENT);
    /* up to MSP_ETS_DEC_MAX_KEYS, then refused */
    for (size_t k = 1; k < MSP_ETS_DEC_MAX_KEYS; k++) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        assert_int_equal(msp_ets_passive_add_key(p, key, &err), MSP_OK);
        EVP_PKEY_free(key);
    }
    assert_int_equal(msp_ets_passive_key_count(p), MSP_ETS_DEC_MAX_KEYS);
    assert_int_equal(msp_ets_passive_add_key(p, W.p256, &err), MSP_ERR_LIMIT);
    assert_non_null(strstr(err.detail, "more than 64 static keys"));
    assert_int_equal(msp_ets_passive_add_key(p, W.x25519, &err), MSP_OK); /* held already: not refused */
    msp_ets_passive_free(p);
    got_free(g);
}

static void test_keypkg(void **state)
{
    (void)state;
    got_t *g;
    msp_ets_passive_t *p = pipeline(&g, 16, 16, NULL);
    msp_ets_keypkg_t pkg;
    memset(&pkg, 0, sizeof pkg);
    pkg.statics[0].key = W.x25519;
    pkg.statics[1].key = W.p256;
    pkg.n_static = 2;
    msp_error_t err;
    assert_int_equal(msp_ets_passive_add_keypkg(p, &pkg, &err), MSP_OK);
    assert_int_equal(msp_ets_passive_key_count(p), 2);
    ets_pair_t pair;
    run_pair(&pair, W.sctx_vi, NULL, NULL, NULL);
    put_on_wire(p, &pair, 40011);
    msp_ets_passive_finish(p);
    assert_int_equal(g->f[0].status, MSP_ETS_FLOW_DECRYPTED);
    msp_ets_passive_free(p);
    got_free(g);
    ets_pair_free(&pair);
}

static void test_config(void **state)
{
    (void)state;
    msp_ets_passive_cfg_t cfg;
    msp_ets_passive_t *p = (msp_ets_passive_t *)&cfg;
    msp_ets_passive_cfg_default(&cfg);
    assert_int_equal(cfg.max_tickets, MSP_ETS_PASSIVE_TICKETS_DEFAULT);
    assert_int_equal(cfg.tcp.max_flows, MSP_TCP_MAX_FLOWS_DEFAULT);
    cfg.tcp.max_flows = 0;
    assert_int_equal(msp_ets_passive_new(&cfg, &p), MSP_ERR_ARGUMENT);
    assert_null(p);
    msp_ets_passive_cfg_default(&cfg);
    cfg.max_tickets = (1u << 24) + 1;
    assert_int_equal(msp_ets_passive_new(&cfg, &p), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_passive_new(NULL, &p), MSP_ERR_ARGUMENT);
    /* no callbacks at all: still counts */
    msp_ets_passive_cfg_default(&cfg);
    assert_int_equal(msp_ets_passive_new(&cfg, &p), MSP_OK);
    msp_error_t err;
    assert_int_equal(msp_ets_passive_add_key(p, W.x25519, &err), MSP_OK);
    ets_pair_t pair;
    run_pair(&pair, W.sctx_vi, NULL, NULL, NULL);
    put_on_wire(p, &pair, 40012);
    msp_ets_passive_finish(p);
    assert_int_equal(msp_ets_passive_counts(p)->decrypted, 1);
    assert_int_equal(msp_ets_passive_counts(p)->plaintext, pair.app_len[0] + pair.app_len[1]);
    /* an unknown link type is the caller's mistake */
    uint8_t junk[64] = {0};
    assert_int_equal(msp_ets_passive_packet(p, 1, 9999, junk, sizeof junk, sizeof junk), MSP_ERR_ARGUMENT);
    msp_ets_passive_free(p);
    msp_ets_passive_free(NULL);
    ets_pair_free(&pair);
    assert_string_equal(msp_ets_flow_status_name(MSP_ETS_FLOW_EMPTY), "empty");
    assert_string_equal(msp_ets_flow_status_name(MSP_ETS_FLOW_DECRYPTED), "decrypted");
}

/* ---- setup ---- */

enum { CERT_VI, CERT_BAD, CERT_BIG };

/* CERT_VI: one entry naming the x25519 key, access "IDS"; CERT_BAD: a malformed entry; CERT_BIG: one entry whose
 * access description (3000 bytes) is more than a ticket keeps (MSP_ETS_DEC_MAX_ISSUER_INFO). */
static X509 *certificate(int kind)
{
    int malformed = kind == CERT_BAD;
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), malformed + 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ets.example", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, W.cert_key);
    uint8_t share[32], fp[MSP_ETS_FINGERPRINT_LEN];
    size_t len;
    assert_int_equal(msp_ets_key_share(W.x25519, share, sizeof share, &len), MSP_OK);
    assert_int_equal(msp_ets_fingerprint(share, len, fp), MSP_OK);
    if (kind == CERT_BIG) {
        static char access[3000];
        memset(access, 'a', sizeof access);
        assert_int_equal(msp_ets_cert_add(x, fp, access, sizeof access), MSP_OK);
    } else if (!malformed) {
        assert_int_equal(msp_ets_cert_add(x, fp, "IDS", 3), MSP_OK);
    } else {
        assert_int_equal(ets_pair_add_bad_visibility(x), 0);
    }
    assert_true(X509_sign(x, W.cert_key, NULL) > 0);
    return x;
}

static SSL_CTX *server(X509 *cert)
{
    msp_error_t err;
    SSL_CTX *s = NULL;
    if (msp_ets_server_ctx_new(W.lib, &s, &err) != MSP_OK || SSL_CTX_use_certificate(s, cert) != 1 ||
        SSL_CTX_use_PrivateKey(s, W.cert_key) != 1) {
        return NULL;
    }
    return s;
}

static int setup(void **state)
{
    (void)state;
    W.x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    W.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    W.other = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    W.cert_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    W.cert_vi = certificate(CERT_VI);
    W.cert_bad = certificate(CERT_BAD);
    W.cert_big = certificate(CERT_BIG);
    msp_error_t err;
    EVP_PKEY *keys[2] = {W.x25519, W.p256};
    if (msp_ets_libctx_new(keys, 2, &W.lib, &err) != MSP_OK) {
        fprintf(stderr, "libctx: %s\n", err.detail);
        return -1;
    }
    W.sctx_vi = server(W.cert_vi);
    W.sctx_bad = server(W.cert_bad);
    W.sctx_big = server(W.cert_big);
    W.cctx = ets_pair_client_ctx();
    return W.sctx_vi != NULL && W.sctx_bad != NULL && W.sctx_big != NULL && W.cctx != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(W.sctx_vi);
    SSL_CTX_free(W.sctx_bad);
    SSL_CTX_free(W.sctx_big);
    SSL_CTX_free(W.cctx);
    msp_ets_libctx_free(W.lib);
    X509_free(W.cert_vi);
    X509_free(W.cert_bad);
    X509_free(W.cert_big);
    EVP_PKEY_free(W.x25519);
    EVP_PKEY_free(W.p256);
    EVP_PKEY_free(W.other);
    EVP_PKEY_free(W.cert_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plaintext_and_keylog),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_recycled_flows),
        cmocka_unit_test(test_malformed_visibility),
        cmocka_unit_test(test_flow_limit),
        cmocka_unit_test(test_free_open_flows),
        cmocka_unit_test(test_ticket_limit),
        cmocka_unit_test(test_inherited_too_large),
        cmocka_unit_test(test_late_flight_after_rst),
        cmocka_unit_test(test_midstream),
        cmocka_unit_test(test_not_midstream_with_syn),
        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_keypkg),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
