/*
 * Passive TCP (ets_tcp.h): decoding on every link type we accept, the flow
 * table (directions, guessed initiators, FIN/RST/idle/eviction/reuse
 * closing) and reassembly (reordering, duplicates, overlaps with the first
 * copy winning, sequence wrap-around, holes reported as gaps of the right
 * size at the right place, buffer limits, truncated captures), all on
 * packets synthesised here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "msp/ets_tcp.h"

/* ---- a recorder of what the table reports ---- */

#define REC_FLOWS 8
#define REC_BYTES 8192
#define REC_GAPS 8

typedef struct rec_flow {
    msp_tcp_flow_info_t open; /* info as flow_open saw it */
    uint8_t data[2][REC_BYTES];
    size_t len[2];
    size_t ngaps[2];
    uint64_t gap_len[2][REC_GAPS];
    size_t gap_at[2][REC_GAPS]; /* stream offset where the gap was reported */
    int closed;
    msp_tcp_close_reason_t reason;
    msp_tcp_flow_info_t last; /* info at close */
} rec_flow_t;

typedef struct rec {
    rec_flow_t f[REC_FLOWS];
    size_t n;
    int ignore_all;
} rec_t;

static void on_open(void *ctx, msp_tcp_flow_t *flow, const msp_tcp_flow_info_t *info)
{
    rec_t *r = ctx;
    assert_true(r->n < REC_FLOWS);
    rec_flow_t *f = &r->f[r->n++];
    f->open = *info;
    msp_tcp_flow_set_user(flow, f);
    if (r->ignore_all) {
        msp_tcp_flow_ignore(flow);
    }
}

static void on_data(void *ctx, msp_tcp_flow_t *flow, int dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)ctx;
    (void)ts;
    rec_flow_t *f = msp_tcp_flow_user(flow);
    assert_true(n > 0);
    assert_true(f->len[dir] + n <= REC_BYTES);
    memcpy(f->data[dir] + f->len[dir], p, n);
    f->len[dir] += n;
}

static void on_gap(void *ctx, msp_tcp_flow_t *flow, int dir, uint64_t lost, uint64_t ts)
{
    (void)ctx;
    (void)ts;
    rec_flow_t *f = msp_tcp_flow_user(flow);
    assert_true(lost > 0);
    assert_true(f->ngaps[dir] < REC_GAPS);
    f->gap_len[dir][f->ngaps[dir]] = lost;
    f->gap_at[dir][f->ngaps[dir]++] = f->len[dir];
}

static void on_close(void *ctx, msp_tcp_flow_t *flow, msp_tcp_close_reason_t reason)
{
    (void)ctx;
    rec_flow_t *f = msp_tcp_flow_user(flow);
    assert_false(f->closed);
    f->closed = 1;
    f->reason = reason;
    f->last = *msp_tcp_flow_info(flow);
}

static const msp_tcp_callbacks_t CB = {on_open, on_data, on_gap, on_close};

static msp_tcp_t *table(rec_t *r, const msp_tcp_config_t *cfg)
{
    memset(r, 0, sizeof(*r));
    msp_tcp_t *t = NULL;
    assert_int_equal(msp_tcp_new(cfg, &CB, r, &t), MSP_OK);
    assert_non_null(t);
    return t;
}

/* ---- a packet builder: one connection, packets by direction ---- */

typedef struct conn {
    int link;
    int ip;
    uint16_t vlan;
    uint8_t addr[2][16];
    uint16_t port[2];
} conn_t;

static conn_t conn4(void)
{
    conn_t c;
    memset(&c, 0, sizeof(c));
    c.link = MSP_TCP_LINK_EN10MB;
    c.ip = 4;
    memcpy(c.addr[0], "\x0a\x00\x00\x01", 4);
    memcpy(c.addr[1], "\x0a\x00\x00\x02", 4);
    c.port[0] = 40000;
    c.port[1] = 443;
    return c;
}

static conn_t conn6(void)
{
    conn_t c = conn4();
    c.ip = 6;
    memcpy(c.addr[0], "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    memcpy(c.addr[1], "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
    return c;
}

static size_t build(const conn_t *c, int dir, uint32_t seq, uint8_t flags, const void *p, size_t n, uint8_t *out,
                    size_t cap)
{
    msp_tcp_pkt_t pkt;
    memset(&pkt, 0, sizeof(pkt));
    pkt.ip_version = (uint8_t)c->ip;
    memcpy(pkt.src, c->addr[dir], 16);
    memcpy(pkt.dst, c->addr[1 - dir], 16);
    pkt.sport = c->port[dir];
    pkt.dport = c->port[1 - dir];
    pkt.seq = seq;
    pkt.ack = 1;
    pkt.flags = flags;
    pkt.window = 1000;
    pkt.vlan = c->vlan;
    pkt.payload = p;
    pkt.payload_len = n;
    msp_buf_t b;
    msp_buf_init_fixed(&b, out, cap);
    assert_int_equal(msp_tcp_build(c->link, &pkt, &b), MSP_OK);
    return b.len;
}

/* Sends one packet; caplen_cut > 0 captures only that many bytes of it. */
static void send_cut(msp_tcp_t *t, const conn_t *c, int dir, uint32_t seq, uint8_t flags, const void *p, size_t n,
                     uint64_t ts, size_t caplen_cut)
{
    uint8_t frame[2048];
    size_t len = build(c, dir, seq, flags, p, n, frame, sizeof(frame));
    size_t caplen = caplen_cut > 0 && caplen_cut < len ? caplen_cut : len;
    /* an exact-size copy, so ASan catches a read past caplen */
    uint8_t *exact = malloc(caplen);
    assert_non_null(exact);
    memcpy(exact, frame, caplen);
    assert_int_equal(msp_tcp_packet(t, c->link, exact, caplen, len, ts), MSP_OK);
    free(exact);
}

static void send_pkt(msp_tcp_t *t, const conn_t *c, int dir, uint32_t seq, uint8_t flags, const void *p, size_t n,
                     uint64_t ts)
{
    send_cut(t, c, dir, seq, flags, p, n, ts, 0);
}

#define ISN0 1000u
#define ISN1 5000u
#define A MSP_TCP_ACK
#define PA (MSP_TCP_PSH | MSP_TCP_ACK)
#define FA (MSP_TCP_FIN | MSP_TCP_ACK)

static void handshake(msp_tcp_t *t, const conn_t *c, uint32_t isn0, uint32_t isn1)
{
    send_pkt(t, c, 0, isn0, MSP_TCP_SYN, NULL, 0, 1);
    send_pkt(t, c, 1, isn1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, 2);
    send_pkt(t, c, 0, isn0 + 1, A, NULL, 0, 3);
}

static void close_both(msp_tcp_t *t, const conn_t *c, uint32_t end0, uint32_t end1, uint64_t ts)
{
    send_pkt(t, c, 0, end0, FA, NULL, 0, ts);
    send_pkt(t, c, 1, end1, FA, NULL, 0, ts + 1);
}

static void pattern(uint8_t *p, size_t n, uint8_t salt)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * 7 + salt + (i >> 8));
    }
}

/* Sends msg from dir in segments of seg bytes, in the order perm gives (NULL: in order). */
static void send_stream(msp_tcp_t *t, const conn_t *c, int dir, uint32_t start, const uint8_t *msg, size_t n,
                        size_t seg, const size_t *perm, uint64_t ts)
{
    size_t nseg = (n + seg - 1) / seg;
    for (size_t k = 0; k < nseg; k++) {
        size_t i = perm != NULL ? perm[k] : k;
        size_t off = i * seg, len = n - off < seg ? n - off : seg;
        send_pkt(t, c, dir, start + (uint32_t)off, PA, msg + off, len, ts + k);
    }
}

static void shuffle(size_t *perm, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        perm[i] = i;
    }
    for (size_t i = n - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        size_t j = (seed >> 8) % (i + 1);
        size_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

/* ---- tests ---- */

static void test_in_order(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    uint8_t req[300], resp[2500];
    pattern(req, sizeof(req), 1);
    pattern(resp, sizeof(resp), 2);
    handshake(t, &c, ISN0, ISN1);
    send_stream(t, &c, 0, ISN0 + 1, req, sizeof(req), 100, NULL, 10);
    send_stream(t, &c, 1, ISN1 + 1, resp, sizeof(resp), 1000, NULL, 20);
    assert_int_equal(r->n, 1);
    assert_false(r->f[0].closed);
    close_both(t, &c, ISN0 + 1 + sizeof(req), ISN1 + 1 + sizeof(resp), 30);
    rec_flow_t *f = &r->f[0];
    assert_true(f->closed);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(f->open.ip_version, 4);
    assert_memory_equal(f->open.addr[0], c.addr[0], 4);
    assert_memory_equal(f->open.addr[1], c.addr[1], 4);
    assert_int_equal(f->open.port[0], 40000);
    assert_int_equal(f->open.port[1], 443);
    assert_int_equal(f->open.first_ts_us, 1);
    assert_false(f->open.initiator_guessed);
    assert_int_equal(f->len[0], sizeof(req));
    assert_memory_equal(f->data[0], req, sizeof(req));
    assert_int_equal(f->len[1], sizeof(resp));
    assert_memory_equal(f->data[1], resp, sizeof(resp));
    assert_int_equal(f->ngaps[0] + f->ngaps[1], 0);
    assert_int_equal(f->last.bytes[1], sizeof(resp));
    const msp_tcp_stats_t *st = msp_tcp_stats(t);
    assert_int_equal(st->flows, 1);
    assert_int_equal(st->flows_open, 0);
    assert_int_equal(st->delivered, sizeof(req) + sizeof(resp));
    assert_int_equal(st->packets, 3 + 3 + 3 + 2);
    assert_int_equal(st->buffered_peak, 0); /* in order: nothing was copied */
    msp_tcp_free(t);
    free(r);
}

static void run_reordered(uint32_t isn, uint32_t seed, int dup)
{
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    uint8_t msg[4000];
    size_t perm[40];
    pattern(msg, sizeof(msg), 3);
    shuffle(perm, 40, seed);
    handshake(t, &c, isn, ISN1);
    send_stream(t, &c, 0, isn + 1, msg, sizeof(msg), 100, perm, 10);
    if (dup) {
        shuffle(perm, 40, seed + 1);
        send_stream(t, &c, 0, isn + 1, msg, sizeof(msg), 100, perm, 100);
        send_pkt(t, &c, 0, isn + 51, PA, msg + 50, 100, 200); /* straddles two old segments */
    }
    close_both(t, &c, isn + 1 + sizeof(msg), ISN1 + 1, 300);
    rec_flow_t *f = &r->f[0];
    assert_int_equal(r->n, 1);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(f->len[0], sizeof(msg));
    assert_memory_equal(f->data[0], msg, sizeof(msg));
    assert_int_equal(f->ngaps[0], 0);
    const msp_tcp_stats_t *st = msp_tcp_stats(t);
    assert_int_equal(st->buffered, 0);
    assert_true(st->buffered_peak > 0);
    if (dup) {
        assert_int_equal(st->duplicate, sizeof(msg) + 100);
    }
    msp_tcp_free(t);
    free(r);
}

static void test_reordered(void **state)
{
    (void)state;
    run_reordered(ISN0, 7, 0);
    run_reordered(ISN0, 99, 0);
}

static void test_duplicated(void **state)
{
    (void)state;
    run_reordered(ISN0, 11, 1);
}

/* The stream crosses 2^32 in the middle, reordered. */
static void test_wraparound(void **state)
{
    (void)state;
    run_reordered(0xffffffffu - 1500, 5, 1);
    run_reordered(0xffffffffu, 6, 0); /* the SYN is the last number: data starts at 0 */
}

/* First copy wins, both for buffered data and against a later in-order segment. */
static void test_overlap(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    uint8_t a[10], b[20], cc[5], d[15], e[30], g[10];
    memset(g, 'F', sizeof(g));
    memset(a, 'A', sizeof(a));
    memset(b, 'B', sizeof(b));
    memset(cc, 'C', sizeof(cc));
    memset(d, 'D', sizeof(d));
    memset(e, 'E', sizeof(e));
    handshake(t, &c, ISN0, ISN1);
    uint32_t s = ISN0 + 1;
    send_pkt(t, &c, 0, s + 10, PA, a, 10, 10); /* [10,20) buffered */
    send_pkt(t, &c, 0, s + 5, PA, b, 20, 11);  /* [5,25): only [5,10) and [20,25) are new */
    send_pkt(t, &c, 0, s + 40, PA, g, 10, 12); /* [40,50) */
    send_pkt(t, &c, 0, s + 0, PA, cc, 5, 13);  /* [0,5) in order: delivers up to 25 */
    send_pkt(t, &c, 0, s + 20, PA, d, 15, 14); /* [20,35): in order from 25 */
    send_pkt(t, &c, 0, s + 30, PA, e, 30, 15); /* [30,60): 35..40 and 50..60 new, 40..50 buffered wins */
    rec_flow_t *f = &r->f[0];
    const char *want = "CCCCCBBBBBAAAAAAAAAABBBBBDDDDDDDDDDEEEEEFFFFFFFFFFEEEEEEEEEE";
    assert_int_equal(f->len[0], strlen(want));
    assert_memory_equal(f->data[0], want, strlen(want));
    assert_int_equal(msp_tcp_stats(t)->buffered, 0);
    msp_tcp_finish(t);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_END);
    assert_int_equal(f->ngaps[0], 0);
    msp_tcp_free(t);
    free(r);
}

/* A missing segment: the gap is reported with its size, where it was, then the rest follows. */
static void test_hole_gap(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    uint8_t msg[1000];
    pattern(msg, sizeof(msg), 4);
    size_t order[] = {0, 1, 3, 4, 5, 6, 7, 8, 9}; /* segment 2 never comes */
    handshake(t, &c, ISN0, ISN1);
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        send_pkt(t, &c, 0, ISN0 + 1 + (uint32_t)order[k] * 100, PA, msg + order[k] * 100, 100, 10 + k);
    }
    rec_flow_t *f = &r->f[0];
    assert_int_equal(f->len[0], 200); /* held behind the hole */
    assert_int_equal(msp_tcp_stats(t)->buffered, 700);
    close_both(t, &c, ISN0 + 1 + 1000, ISN1 + 1, 50);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(f->ngaps[0], 1);
    assert_int_equal(f->gap_len[0][0], 100);
    assert_int_equal(f->gap_at[0][0], 200);
    assert_int_equal(f->len[0], 900);
    assert_memory_equal(f->data[0], msg, 200);
    assert_memory_equal(f->data[0] + 200, msg + 300, 700);
    assert_int_equal(f->last.lost[0], 100);
    assert_int_equal(msp_tcp_stats(t)->gap_bytes, 100);
    msp_tcp_free(t);
    free(r);
}

/* Trailing bytes before a FIN that never came: a gap at close too. */
static void test_fin_with_hole_at_end(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    uint8_t msg[300];
    pattern(msg, sizeof(msg), 5);
    handshake(t, &c, ISN0, ISN1);
    send_pkt(t, &c, 0, ISN0 + 1, PA, msg, 100, 10);
    send_pkt(t, &c, 0, ISN0 + 301, FA, NULL, 0, 11); /* FIN after 300 bytes; 200 never seen */
    send_pkt(t, &c, 1, ISN1 + 1, FA, NULL, 0, 12);
    rec_flow_t *f = &r->f[0];
    assert_int_equal(f->reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(f->ngaps[0], 1);
    assert_int_equal(f->gap_len[0][0], 200);
    assert_int_equal(f->len[0], 100);
    msp_tcp_free(t);
    free(r);
}

static void test_window_limit(void **state)
{
    (void)state;
    msp_tcp_config_t cfg;
    msp_tcp_config_default(&cfg);
    cfg.window = 1000;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, &cfg);
    conn_t c = conn4();
    uint8_t msg[2000];
    pattern(msg, sizeof(msg), 6);
    handshake(t, &c, ISN0, ISN1);
    send_pkt(t, &c, 0, ISN0 + 1, PA, msg, 100, 10);
    for (uint32_t i = 2; i < 20; i++) { /* segment 1 lost */
        send_pkt(t, &c, 0, ISN0 + 1 + i * 100, PA, msg + i * 100, 100, 10 + i);
    }
    rec_flow_t *f = &r->f[0];
    /* [1100,1200) is beyond 100 + 1000: the hole was given up then, before the close */
    assert_false(f->closed);
    assert_int_equal(f->ngaps[0], 1);
    assert_int_equal(f->gap_len[0][0], 100);
    assert_int_equal(f->gap_at[0][0], 100);
    assert_int_equal(f->len[0], 1900);
    assert_memory_equal(f->data[0] + 100, msg + 200, 1800);
    assert_true(msp_tcp_stats(t)->buffered_peak <= 1000);
    msp_tcp_finish(t);
    msp_tcp_free(t);
    free(r);
}

static void test_budget_and_segment_limits(void **state)
{
    (void)state;
    for (int which = 0; which < 2; which++) {
        msp_tcp_config_t cfg;
        msp_tcp_config_default(&cfg);
        if (which == 0) {
            cfg.budget = 250; /* over all flows */
        } else {
            cfg.max_segs = 2;
        }
        rec_t *r = calloc(1, sizeof(*r));
        msp_tcp_t *t = table(r, &cfg);
        conn_t c = conn4();
        uint8_t msg[600];
        pattern(msg, sizeof(msg), 7);
        handshake(t, &c, ISN0, ISN1);
        /* segments 1..5 of 100 bytes arrive, segment 0 never: the third forces the hole out */
        for (uint32_t i = 1; i < 6; i++) {
            send_pkt(t, &c, 0, ISN0 + 1 + i * 100, PA, msg + i * 100, 100, 10 + i);
        }
        rec_flow_t *f = &r->f[0];
        assert_int_equal(f->ngaps[0], 1);
        assert_int_equal(f->gap_len[0][0], 100);
        assert_int_equal(f->gap_at[0][0], 0);
        assert_int_equal(f->len[0], 500);
        assert_memory_equal(f->data[0], msg + 100, 500);
        assert_true(msp_tcp_stats(t)->buffered_peak <= 250);
        msp_tcp_finish(t);
        msp_tcp_free(t);
        free(r);
    }
}

static void test_rst(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    uint8_t msg[300];
    pattern(msg, sizeof(msg), 8);
    handshake(t, &c, ISN0, ISN1);
    send_pkt(t, &c, 1, ISN1 + 1, PA, msg, 100, 10);
    send_pkt(t, &c, 1, ISN1 + 201, PA, msg + 200, 100, 11);
    send_pkt(t, &c, 0, ISN0 + 1, MSP_TCP_RST, NULL, 0, 12);
    rec_flow_t *f = &r->f[0];
    assert_true(f->closed);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_RST);
    assert_int_equal(f->ngaps[1], 1);
    assert_int_equal(f->gap_len[1][0], 100);
    assert_int_equal(f->len[1], 200);
    assert_int_equal(msp_tcp_stats(t)->flows_open, 0);
    /* a late packet of the reset flow without payload opens nothing */
    send_pkt(t, &c, 1, ISN1 + 301, A, NULL, 0, 13);
    assert_int_equal(r->n, 1);
    assert_int_equal(msp_tcp_stats(t)->no_flow, 1);
    msp_tcp_free(t);
    free(r);
}

static void test_idle(void **state)
{
    (void)state;
    msp_tcp_config_t cfg;
    msp_tcp_config_default(&cfg);
    cfg.idle_us = 1000000;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, &cfg);
    conn_t a = conn4(), b = conn4();
    b.port[0] = 40001;
    handshake(t, &a, ISN0, ISN1);
    send_pkt(t, &a, 0, ISN0 + 1, PA, "x", 1, 900000);
    send_pkt(t, &b, 0, 77, PA, "y", 1, 1800000); /* a was active 0.9 s ago: stays */
    assert_false(r->f[0].closed);
    send_pkt(t, &b, 0, 78, PA, "z", 1, 1900001); /* now 1.000001 s */
    assert_true(r->f[0].closed);
    assert_int_equal(r->f[0].reason, MSP_TCP_CLOSE_IDLE);
    assert_false(r->f[1].closed);
    assert_int_equal(msp_tcp_stats(t)->idle, 1);
    /* the same ports after the idle close: a new (guessed) flow; 443 was seen listening, so it is the server even
     * though it sends first */
    send_pkt(t, &a, 1, ISN1 + 1, PA, "w", 1, 1900002);
    assert_int_equal(r->n, 3);
    assert_true(r->f[2].open.initiator_guessed);
    assert_true(r->f[2].open.roles_from_port);
    assert_int_equal(r->f[2].open.port[0], 40000);
    assert_int_equal(r->f[2].open.port[1], 443);
    assert_int_equal(r->f[2].len[1], 1);
    msp_tcp_finish(t);
    assert_int_equal(r->f[1].reason, MSP_TCP_CLOSE_END);
    assert_int_equal(r->f[2].reason, MSP_TCP_CLOSE_END);
    msp_tcp_free(t);
    free(r);
}

static void test_eviction(void **state)
{
    (void)state;
    msp_tcp_config_t cfg;
    msp_tcp_config_default(&cfg);
    cfg.max_flows = 2;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, &cfg);
    conn_t c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = conn4();
        c[i].port[0] = (uint16_t)(50000 + i);
    }
    handshake(t, &c[0], ISN0, ISN1);
    handshake(t, &c[1], ISN0, ISN1);
    send_pkt(t, &c[0], 0, ISN0 + 1, PA, "a", 1, 10); /* flow 0 becomes the most recent */
    handshake(t, &c[2], ISN0, ISN1);
    assert_int_equal(r->n, 3);
    assert_false(r->f[0].closed);
    assert_true(r->f[1].closed);
    assert_int_equal(r->f[1].reason, MSP_TCP_CLOSE_EVICTED);
    assert_int_equal(msp_tcp_stats(t)->evicted, 1);
    assert_int_equal(msp_tcp_stats(t)->flows_open, 2);
    msp_tcp_finish(t);
    assert_int_equal(r->f[0].len[0], 1);
    msp_tcp_free(t);
    free(r);
}

/* No handshake seen: the first sender of payload is direction 0, marked as guessed. */
static void test_mid_stream(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    send_pkt(t, &c, 1, 123456, A, NULL, 0, 1); /* a bare ACK opens nothing */
    assert_int_equal(r->n, 0);
    send_pkt(t, &c, 1, 123456, PA, "hello", 5, 2);
    send_pkt(t, &c, 0, 999, PA, "hi", 2, 3);
    send_pkt(t, &c, 1, 123461, PA, "world", 5, 4);
    msp_tcp_finish(t);
    rec_flow_t *f = &r->f[0];
    assert_int_equal(r->n, 1);
    assert_true(f->open.initiator_guessed);
    assert_int_equal(f->open.port[0], 443);
    assert_memory_equal(f->open.addr[0], c.addr[1], 4);
    assert_int_equal(f->len[0], 10);
    assert_memory_equal(f->data[0], "helloworld", 10);
    assert_int_equal(f->len[1], 2);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_END);
    assert_false(f->open.roles_from_port); /* no port was seen listening */
    msp_tcp_free(t);
    free(r);
}

/*
 * Issue 13, finding 2: a connection already open when the capture starts. Its
 * server port was seen listening (a SYN to it, a SYN-ACK from it, for other
 * clients and addresses): that side is the server, whoever sends first.
 */
static void test_mid_stream_listener(void **state)
{
    (void)state;
    for (int by_synack = 0; by_synack <= 1; by_synack++) {
        rec_t *r = calloc(1, sizeof(*r));
        msp_tcp_t *t = table(r, NULL);
        conn_t other = conn4(), c = conn4();
        memcpy(other.addr[0], "\x0a\x00\x00\x09", 4);
        memcpy(other.addr[1], "\x0a\x00\x00\x08", 4); /* another server on the same port */
        other.port[0] = 51000;
        if (by_synack) {
            send_pkt(t, &other, 1, ISN1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, 1);
        } else {
            send_pkt(t, &other, 0, ISN0, MSP_TCP_SYN, NULL, 0, 1);
        }
        send_pkt(t, &c, 1, 123456, PA, "hello", 5, 2); /* the server of c speaks first */
        send_pkt(t, &c, 0, 999, PA, "hi", 2, 3);
        assert_int_equal(r->n, 2);
        rec_flow_t *f = &r->f[1];
        assert_true(f->open.initiator_guessed);
        assert_true(f->open.roles_from_port);
        assert_int_equal(f->open.port[0], 40000);
        assert_int_equal(f->open.port[1], 443);
        assert_memory_equal(f->open.addr[0], c.addr[0], 4);
        assert_int_equal(f->len[0], 2);
        assert_int_equal(f->len[1], 5);
        assert_memory_equal(f->data[1], "hello", 5);
        /* both ports seen listening: nothing to go by, the first sender is the client */
        conn_t to_51000 = conn4(), both = conn4();
        to_51000.port[0] = 40002;
        to_51000.port[1] = 51000;
        both.port[0] = 51000;
        send_pkt(t, &to_51000, 0, ISN0, MSP_TCP_SYN, NULL, 0, 4); /* now 51000 listens too */
        send_pkt(t, &both, 1, 77, PA, "x", 1, 5);
        assert_int_equal(r->n, 4);
        assert_false(r->f[3].open.roles_from_port);
        assert_int_equal(r->f[3].open.port[0], 443);
        msp_tcp_finish(t);
        msp_tcp_free(t);
        free(r);
    }
}

/*
 * Issue 13, finding 1: `msp ets probe` resets its connections after the
 * ServerHello; the rest of the server's flight, captured after the RST, must
 * not open a flow of its own with the roles swapped. Likewise a
 * retransmission after both FINs. A segment far from where the connection
 * stood, or one after late_us, is a new connection again.
 */
static void test_late_after_close(void **state)
{
    (void)state;
    msp_tcp_config_t cfg;
    msp_tcp_config_default(&cfg);
    cfg.late_us = 1000000;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, &cfg);
    conn_t c = conn4();
    uint8_t flight[3000];
    pattern(flight, sizeof(flight), 3);
    handshake(t, &c, ISN0, ISN1);
    send_pkt(t, &c, 0, ISN0 + 1, PA, "hello", 5, 10);
    send_pkt(t, &c, 1, ISN1 + 1, PA, flight, 1000, 11);
    send_pkt(t, &c, 0, ISN0 + 6, MSP_TCP_RST | MSP_TCP_ACK, NULL, 0, 12);
    assert_true(r->f[0].closed);
    send_pkt(t, &c, 1, ISN1 + 1001, PA, flight + 1000, 1000, 13); /* in flight behind the RST */
    send_pkt(t, &c, 1, ISN1 + 2001, PA, flight + 2000, 1000, 14);
    send_pkt(t, &c, 1, ISN1 + 1, PA, flight, 1000, 15); /* a retransmission of what was seen */
    assert_int_equal(r->n, 1);
    assert_int_equal(msp_tcp_stats(t)->late, 3);
    assert_int_equal(msp_tcp_stats(t)->flows, 1);

    /* a retransmission after both FINs */
    conn_t d = conn4();
    d.port[0] = 40001;
    handshake(t, &d, ISN0, ISN1);
    send_pkt(t, &d, 1, ISN1 + 1, PA, "data", 4, 20);
    close_both(t, &d, ISN0 + 1, ISN1 + 5, 21);
    assert_true(r->f[1].closed);
    assert_int_equal(r->f[1].reason, MSP_TCP_CLOSE_FIN);
    send_pkt(t, &d, 1, ISN1 + 1, PA, "data", 4, 23);
    assert_int_equal(r->n, 2);
    assert_int_equal(msp_tcp_stats(t)->late, 4);

    /* far from where c's server stood: another connection on the same ports, not a late segment */
    send_pkt(t, &c, 1, ISN1 + 0x40000000u, PA, "new", 3, 30);
    assert_int_equal(r->n, 3);
    assert_int_equal(r->f[2].len[1], 3);
    assert_int_equal(msp_tcp_stats(t)->late, 4);

    /* d's late segment after late_us (capture time): a flow again (its port listens: the roles are right) */
    send_pkt(t, &d, 1, ISN1 + 1, PA, "data", 4, 21 + 1000002);
    assert_int_equal(r->n, 4);
    assert_true(r->f[3].open.roles_from_port);
    assert_int_equal(r->f[3].open.port[1], 443);
    assert_int_equal(msp_tcp_stats(t)->late, 4);
    msp_tcp_finish(t);
    msp_tcp_free(t);
    free(r);
}

/* Packets without timestamps (all 0): a closed connection is still remembered. */
static void test_late_at_time_zero(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    send_pkt(t, &c, 0, ISN0, MSP_TCP_SYN, NULL, 0, 0);
    send_pkt(t, &c, 1, ISN1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, 0);
    send_pkt(t, &c, 0, ISN0 + 1, MSP_TCP_RST, NULL, 0, 0);
    send_pkt(t, &c, 1, ISN1 + 1, PA, "late", 4, 0);
    assert_int_equal(r->n, 1);
    assert_int_equal(msp_tcp_stats(t)->late, 1);
    msp_tcp_finish(t);
    msp_tcp_free(t);
    free(r);
}

/* Without the memory (max_closed 0 or late_us 0) a late segment opens a flow, as before. */
static void test_late_memory_off(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        msp_tcp_config_t cfg;
        msp_tcp_config_default(&cfg);
        if (k == 0) {
            cfg.max_closed = 0;
        } else {
            cfg.late_us = 0;
        }
        rec_t *r = calloc(1, sizeof(*r));
        msp_tcp_t *t = table(r, &cfg);
        conn_t c = conn4();
        handshake(t, &c, ISN0, ISN1);
        send_pkt(t, &c, 0, ISN0 + 1, MSP_TCP_RST, NULL, 0, 10);
        send_pkt(t, &c, 1, ISN1 + 1, PA, "late", 4, 11);
        assert_int_equal(r->n, 2);
        assert_int_equal(msp_tcp_stats(t)->late, 0);
        msp_tcp_finish(t);
        msp_tcp_free(t);
        free(r);
    }
}

/* Only the SYN-ACK seen: its receiver is the client, not a guess. */
static void test_synack_only(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    send_pkt(t, &c, 1, ISN1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, 1);
    send_pkt(t, &c, 0, ISN0 + 1, PA, "req", 3, 2);
    send_pkt(t, &c, 1, ISN1 + 1, PA, "resp", 4, 3);
    msp_tcp_finish(t);
    rec_flow_t *f = &r->f[0];
    assert_false(f->open.initiator_guessed);
    assert_int_equal(f->open.port[0], 40000);
    assert_int_equal(f->len[0], 3);
    assert_int_equal(f->len[1], 4);
    msp_tcp_free(t);
    free(r);
}

static void test_syn_fin_data_keepalive_probe(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    send_pkt(t, &c, 0, ISN0, MSP_TCP_SYN, "early", 5, 1); /* data on the SYN (TFO) */
    send_pkt(t, &c, 0, ISN0, MSP_TCP_SYN, "early", 5, 2); /* SYN retransmitted: same flow */
    send_pkt(t, &c, 1, ISN1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, 3);
    send_pkt(t, &c, 0, ISN0 + 6, PA, "-more", 5, 4);
    send_pkt(t, &c, 0, ISN0 + 10, A, "e", 1, 5);       /* keep-alive: one old byte */
    send_pkt(t, &c, 0, ISN0 + 11, A, "X", 1, 6);       /* zero-window probe: the next byte */
    send_pkt(t, &c, 0, ISN0 + 11, PA, "Y-tail", 6, 7); /* then the whole segment: X stays */
    send_pkt(t, &c, 1, ISN1 + 1, FA, "bye", 3, 8);     /* data on the FIN */
    send_pkt(t, &c, 0, ISN0 + 17, FA, NULL, 0, 9);
    rec_flow_t *f = &r->f[0];
    assert_int_equal(r->n, 1);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(f->len[0], 16);
    assert_memory_equal(f->data[0], "early-moreX-tail", 16);
    assert_int_equal(f->len[1], 3);
    assert_memory_equal(f->data[1], "bye", 3);
    assert_int_equal(f->ngaps[0] + f->ngaps[1], 0);
    assert_int_equal(msp_tcp_stats(t)->duplicate, 5 + 1 + 1);
    msp_tcp_free(t);
    free(r);
}

static void test_port_reuse(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    handshake(t, &c, ISN0, ISN1);
    send_pkt(t, &c, 0, ISN0 + 1, PA, "one", 3, 4);
    close_both(t, &c, ISN0 + 4, ISN1 + 1, 5);
    send_pkt(t, &c, 0, ISN1 + 4, A, NULL, 0, 6); /* the last ACK: no new flow */
    handshake(t, &c, 70000, 80000);
    send_pkt(t, &c, 0, 70001, PA, "two", 3, 7);
    handshake(t, &c, 90000, 91000); /* a SYN with another ISN on an open flow: a new connection */
    send_pkt(t, &c, 0, 90001, PA, "three", 5, 8);
    msp_tcp_finish(t);
    assert_int_equal(r->n, 3);
    assert_int_equal(r->f[0].reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(r->f[1].reason, MSP_TCP_CLOSE_REUSED);
    assert_int_equal(r->f[2].reason, MSP_TCP_CLOSE_END);
    assert_memory_equal(r->f[1].data[0], "two", 3);
    assert_memory_equal(r->f[2].data[0], "three", 5);
    assert_int_equal(r->f[2].open.id, 3);
    msp_tcp_free(t);
    free(r);
}

/* One short exchange over a given link / IP version; checks both streams. */
static void run_link(conn_t c)
{
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    handshake(t, &c, ISN0, ISN1);
    send_pkt(t, &c, 0, ISN0 + 1, PA, "GET /", 5, 4);
    send_pkt(t, &c, 1, ISN1 + 1, PA, "200 OK", 6, 5);
    close_both(t, &c, ISN0 + 6, ISN1 + 7, 6);
    rec_flow_t *f = &r->f[0];
    assert_int_equal(r->n, 1);
    assert_int_equal(f->reason, MSP_TCP_CLOSE_FIN);
    assert_int_equal(f->open.ip_version, c.ip);
    assert_memory_equal(f->open.addr[0], c.addr[0], c.ip == 4 ? 4 : 16);
    assert_memory_equal(f->data[0], "GET /", 5);
    assert_memory_equal(f->data[1], "200 OK", 6);
    assert_int_equal(msp_tcp_stats(t)->malformed + msp_tcp_stats(t)->non_tcp, 0);
    msp_tcp_free(t);
    free(r);
}

static void test_links(void **state)
{
    (void)state;
    static const int links[] = {MSP_TCP_LINK_EN10MB, MSP_TCP_LINK_SLL, MSP_TCP_LINK_SLL2,    MSP_TCP_LINK_NULL,
                                MSP_TCP_LINK_LOOP,   MSP_TCP_LINK_RAW, MSP_TCP_LINK_RAW_FILE};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        for (int v6 = 0; v6 < 2; v6++) {
            conn_t c = v6 ? conn6() : conn4();
            c.link = links[i];
            run_link(c);
        }
    }
    conn_t c = conn4();
    c.link = MSP_TCP_LINK_IPV4;
    run_link(c);
    c = conn6();
    c.link = MSP_TCP_LINK_IPV6;
    run_link(c);
}

static void test_vlan(void **state)
{
    (void)state;
    conn_t c = conn4();
    c.vlan = 42 + 1;
    run_link(c);
    uint8_t frame[256];
    size_t n = build(&c, 0, 1, PA, "v", 1, frame, sizeof(frame));
    msp_tcp_pkt_t pkt;
    assert_int_equal(msp_tcp_decode(MSP_TCP_LINK_EN10MB, frame, n, n, &pkt), MSP_TCP_OK);
    assert_int_equal(pkt.vlan, 43);
    assert_int_equal(pkt.payload_len, 1);
    c = conn6();
    c.vlan = 7;
    run_link(c);
}

/* An IPv6 hop-by-hop and a destination options header in front of TCP are walked. */
static void test_ipv6_extensions(void **state)
{
    (void)state;
    conn_t c = conn6();
    c.link = MSP_TCP_LINK_RAW;
    uint8_t frame[256], ext[256];
    size_t n = build(&c, 0, 1, PA, "six", 3, frame, sizeof(frame));
    /* IPv6 header | HBH (8) | DSTOPTS (16) | TCP */
    memcpy(ext, frame, 40);
    ext[6] = 0;
    static const uint8_t hbh[8] = {60, 0, 1, 4, 0, 0, 0, 0};
    static const uint8_t dst[16] = {6, 1, 1, 12, 0};
    memcpy(ext + 40, hbh, 8);
    memcpy(ext + 48, dst, 16);
    memcpy(ext + 64, frame + 40, n - 40);
    size_t plen = n - 40 + 24;
    ext[4] = (uint8_t)(plen >> 8);
    ext[5] = (uint8_t)plen;
    msp_tcp_pkt_t pkt;
    assert_int_equal(msp_tcp_decode(MSP_TCP_LINK_RAW, ext, n + 24, n + 24, &pkt), MSP_TCP_OK);
    assert_int_equal(pkt.ip_version, 6);
    assert_int_equal(pkt.payload_len, 3);
    assert_memory_equal(pkt.payload, "six", 3);
    ext[48] = 50; /* ESP after the options: we cannot see further */
    assert_int_equal(msp_tcp_decode(MSP_TCP_LINK_RAW, ext, n + 24, n + 24, &pkt), MSP_TCP_UNSUPPORTED);
    ext[40] = 44; /* the hop-by-hop header is followed by a fragment header with an offset */
    static const uint8_t frag[8] = {6, 0, 0x01, 0x00, 0, 0, 0, 1};
    memcpy(ext + 48, frag, 8);
    assert_int_equal(msp_tcp_decode(MSP_TCP_LINK_RAW, ext, n + 24, n + 24, &pkt), MSP_TCP_FRAGMENT);
}

static void test_skipped_packets(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    c.link = MSP_TCP_LINK_RAW;
    uint8_t frame[256];
    size_t n = build(&c, 0, 1, PA, "frag", 4, frame, sizeof(frame));
    frame[6] = 0x20; /* MF */
    assert_int_equal(msp_tcp_packet(t, c.link, frame, n, n, 1), MSP_OK);
    frame[6] = 0x00;
    frame[7] = 0x10; /* an offset */
    assert_int_equal(msp_tcp_packet(t, c.link, frame, n, n, 1), MSP_OK);
    frame[7] = 0;
    frame[9] = 17; /* UDP */
    assert_int_equal(msp_tcp_packet(t, c.link, frame, n, n, 1), MSP_OK);
    frame[9] = 6;
    assert_int_equal(msp_tcp_packet(t, c.link, frame, 30, n, 1), MSP_OK); /* TCP header cut */
    frame[32] = 0x30;                                                     /* TCP data offset 12 */
    assert_int_equal(msp_tcp_packet(t, c.link, frame, n, n, 1), MSP_OK);
    uint8_t arp[60] = {0};
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert_int_equal(msp_tcp_packet(t, MSP_TCP_LINK_EN10MB, arp, sizeof(arp), sizeof(arp), 1), MSP_OK);
    assert_int_equal(msp_tcp_packet(t, 147, arp, sizeof(arp), sizeof(arp), 1), MSP_ERR_ARGUMENT);
    const msp_tcp_stats_t *st = msp_tcp_stats(t);
    assert_int_equal(st->fragments, 2);
    assert_int_equal(st->non_tcp, 2);
    assert_int_equal(st->truncated, 1);
    assert_int_equal(st->malformed, 2);
    assert_int_equal(st->flows, 0);
    assert_int_equal(r->n, 0);
    msp_tcp_free(t);
    free(r);
}

/* Captured shorter than sent: the missing payload is a gap, the stream goes on. */
static void test_truncated_caplen(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    conn_t c = conn4();
    uint8_t msg[300];
    pattern(msg, sizeof(msg), 9);
    handshake(t, &c, ISN0, ISN1);
    send_cut(t, &c, 0, ISN0 + 1, PA, msg, 100, 10, 14 + 20 + 20 + 40); /* 40 of 100 bytes */
    send_pkt(t, &c, 0, ISN0 + 101, PA, msg + 100, 100, 11);
    /* truncated while out of order: the captured part is held, the rest is a hole */
    send_cut(t, &c, 0, ISN0 + 301, PA, msg, 50, 12, 14 + 20 + 20 + 10);
    send_cut(t, &c, 0, ISN0 + 201, PA, msg + 200, 100, 13, 0);
    rec_flow_t *f = &r->f[0];
    assert_int_equal(f->ngaps[0], 1);
    assert_int_equal(f->gap_at[0][0], 40);
    assert_int_equal(f->gap_len[0][0], 60);
    assert_int_equal(f->len[0], 40 + 100 + 100 + 10);
    assert_memory_equal(f->data[0], msg, 40);
    assert_memory_equal(f->data[0] + 40, msg + 100, 200);
    msp_tcp_finish(t);
    assert_int_equal(f->ngaps[0], 1); /* the lost tail has no FIN after it: nothing more to report */
    assert_int_equal(msp_tcp_stats(t)->truncated, 2);
    msp_tcp_free(t);
    free(r);
}

/* Ignoring a flow: no data, no gaps, nothing buffered, but open and close still come. */
static void test_ignore(void **state)
{
    (void)state;
    rec_t *r = calloc(1, sizeof(*r));
    msp_tcp_t *t = table(r, NULL);
    r->ignore_all = 1;
    conn_t c = conn4();
    handshake(t, &c, ISN0, ISN1);
    send_pkt(t, &c, 0, ISN0 + 1, PA, "abc", 3, 4);
    send_pkt(t, &c, 0, ISN0 + 10, PA, "def", 3, 5);
    assert_int_equal(msp_tcp_stats(t)->buffered, 0);
    msp_tcp_finish(t);
    assert_int_equal(r->f[0].len[0], 0);
    assert_int_equal(r->f[0].ngaps[0], 0);
    assert_true(r->f[0].closed);
    msp_tcp_free(t);
    free(r);
}

static void test_bad_config(void **state)
{
    (void)state;
    msp_tcp_config_t cfg;
    msp_tcp_config_default(&cfg);
    cfg.max_flows = 0;
    msp_tcp_t *t = (msp_tcp_t *)&t; /* a failure leaves NULL, whatever was there */
    assert_int_equal(msp_tcp_new(&cfg, NULL, NULL, &t), MSP_ERR_ARGUMENT);
    assert_null(t);
    msp_tcp_config_default(&cfg);
    cfg.window = (1u << 30) + 1;
    t = (msp_tcp_t *)&t;
    assert_int_equal(msp_tcp_new(&cfg, NULL, NULL, &t), MSP_ERR_ARGUMENT);
    assert_null(t);
    msp_tcp_config_default(&cfg);
    cfg.max_closed = MSP_TCP_MAX_CLOSED + 1;
    t = (msp_tcp_t *)&t;
    assert_int_equal(msp_tcp_new(&cfg, NULL, NULL, &t), MSP_ERR_ARGUMENT);
    assert_null(t);
    msp_tcp_free(NULL);
    assert_string_equal(msp_tcp_close_reason_name(MSP_TCP_CLOSE_END), "end_of_input");
    assert_string_equal(msp_tcp_verdict_name(MSP_TCP_FRAGMENT), "fragment");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_reordered),
        cmocka_unit_test(test_duplicated),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_hole_gap),
        cmocka_unit_test(test_fin_with_hole_at_end),
        cmocka_unit_test(test_window_limit),
        cmocka_unit_test(test_budget_and_segment_limits),
        cmocka_unit_test(test_rst),
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_mid_stream),
        cmocka_unit_test(test_mid_stream_listener),
        cmocka_unit_test(test_late_after_close),
        cmocka_unit_test(test_late_at_time_zero),
        cmocka_unit_test(test_late_memory_off),
        cmocka_unit_test(test_synack_only),
        cmocka_unit_test(test_syn_fin_data_keepalive_probe),
        cmocka_unit_test(test_port_reuse),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_vlan),
        cmocka_unit_test(test_ipv6_extensions),
        cmocka_unit_test(test_skipped_packets),
        cmocka_unit_test(test_truncated_caplen),
        cmocka_unit_test(test_ignore),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
