/*
 * Loss recovery of the passive TLS 1.3 decryptor (msp/ets_dec.h,
 * docs/ets.md "Loss recovery") on real OpenSSL connections (ets_pair.h): the recorded
 * streams are cut into TCP-sized segments and fed in wire order with
 * segments dropped (1 % and 10 % with a fixed seed, and by hand: inside a
 * record, across a record boundary, exactly one whole record, the start of
 * a record), each run of dropped segments handed over as one gap as TCP
 * reassembly does.
 *
 * The model: after the handshake a record decrypts exactly when none of its
 * bytes was lost. A reference decryptor fed everything gives each record's
 * plaintext; the lossy one must give exactly the plaintext of the intact
 * records, byte for byte, and one GAP event per run of damaged records with
 * the exact lost range, partial and skipped bytes and record count. Plus:
 * KeyUpdate inside the gap (recovered with the next generation's key; two
 * of them: key_update_in_gap), a gap inside the handshake, a stream ending
 * inside the search, and hostile bytes after a gap (the search gives up
 * within its bounds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "dec.h"
#include "ets_pair.h"
#include "msp/buf.h"
#include "msp/error.h"
#include "msp/ets_dec.h"
#include "msp/ets_passive.h"
#include "msp/ets_provider.h"

#define SEG 1448        /* TCP payload per segment */
#define MAX_RANGES 4096 /* lost ranges per direction */
#define MAX_EVENTS 1024

typedef struct world {
    EVP_PKEY *x25519, *cert_key;
    X509 *cert;
    OSSL_LIB_CTX *lib;
    SSL_CTX *sctx, *cctx;
    msp_ets_keys_t *keys;
} world_t;

static world_t W;

static uint32_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

/* ---- the connection ---- */

typedef struct shape {
    const char *suite;
    int records;    /* per direction, alternating */
    size_t max;     /* bytes of one write: 1 .. max */
    int key_update; /* client KeyUpdate (not requested) after this many records (0: none) */
    int key_updates;
} shape_t;

static void make_pair(ets_pair_t *p, const shape_t *sh)
{
    ets_pair_opts_t o = {.ciphersuites = sh->suite, .groups = "X25519", .max_bytes = 8u << 20, .max_chunks = 1u << 16};
    if (ets_pair_start(p, W.sctx, W.cctx, &o) != 0) {
        fail_msg("connection: %s", p->error);
    }
    uint8_t *buf = malloc(sh->max);
    assert_non_null(buf);
    for (int i = 0; i < 2 * sh->records; i++) {
        if (sh->key_update > 0 && i == 2 * sh->key_update) {
            for (int k = 0; k < sh->key_updates; k++) {
                assert_int_equal(ets_pair_key_update(p, ETS_C2S, 0), 0);
            }
        }
        size_t n = 1 + rnd() % sh->max;
        for (size_t j = 0; j < n; j++) {
            buf[j] = (uint8_t)rnd();
        }
        if (ets_pair_send(p, i & 1, buf, n) != 0) {
            fail_msg("send: %s", p->error);
        }
    }
    free(buf);
    if (ets_pair_finish(p) != 0) {
        fail_msg("finish: %s", p->error);
    }
}

/* The records of one direction's stream: record i starts at off[i]. */
typedef struct recs {
    size_t *off, *len;
    size_t n;
} recs_t;

static recs_t parse_records(const ets_pair_t *p, int dir)
{
    recs_t r = {0};
    size_t cap = p->len[dir] / 5 + 1;
    r.off = calloc(cap, sizeof(size_t));
    r.len = calloc(cap, sizeof(size_t));
    assert_true(r.off != NULL && r.len != NULL);
    for (size_t at = 0; at < p->len[dir]; r.n++) {
        assert_true(p->len[dir] - at >= 5);
        const uint8_t *h = p->bytes[dir] + at;
        r.off[r.n] = at;
        r.len[r.n] = 5 + ((size_t)h[3] << 8 | h[4]);
        at += r.len[r.n];
    }
    return r;
}

static void recs_free(recs_t *r)
{
    free(r->off);
    free(r->len);
}

/* ---- what a decryptor reports ---- */

typedef struct piece {
    uint64_t rec;
    uint8_t *p;
    size_t n;
} piece_t;

typedef struct run {
    msp_ets_conn_t *c;
    piece_t *pc[2];
    size_t npc[2], cap[2];
    uint8_t *all[2]; /* every plaintext byte in order */
    size_t all_len[2];
    msp_ets_event_t gap[MAX_EVENTS];
    size_t ngap;
    int undecryptable, key_updates, trial_key_updates;
    msp_ets_reason_t reason;
    char text[MSP_ETS_DEC_MAX_TEXT];
} run_t;

static void on_plain(void *arg, int dir, uint8_t type, const uint8_t *p, size_t n)
{
    run_t *r = arg;
    if (type != 23) {
        return;
    }
    if (r->npc[dir] == r->cap[dir]) {
        r->cap[dir] = r->cap[dir] * 2 + 64;
        r->pc[dir] = realloc(r->pc[dir], r->cap[dir] * sizeof(piece_t));
        assert_non_null(r->pc[dir]);
    }
    piece_t *x = &r->pc[dir][r->npc[dir]++];
    x->rec = r->c->d[dir].records - 1; /* the record being handled */
    x->p = malloc(n + 1);
    assert_non_null(x->p);
    memcpy(x->p, p, n);
    x->n = n;
    r->all[dir] = realloc(r->all[dir], r->all_len[dir] + n + 1);
    assert_non_null(r->all[dir]);
    memcpy(r->all[dir] + r->all_len[dir], p, n);
    r->all_len[dir] += n;
}

static void on_event(void *arg, const msp_ets_event_t *ev)
{
    run_t *r = arg;
    if (ev->kind == MSP_ETS_EV_GAP) {
        assert_true(r->ngap < MAX_EVENTS);
        r->gap[r->ngap++] = *ev;
    } else if (ev->kind == MSP_ETS_EV_KEY_UPDATE) {
        r->key_updates++;
        r->trial_key_updates += strstr(ev->text, "inside a gap") != NULL;
    } else if (ev->kind == MSP_ETS_EV_UNDECRYPTABLE) {
        r->undecryptable++;
        r->reason = ev->reason;
        snprintf(r->text, sizeof r->text, "%s", ev->text);
    }
}

static const msp_ets_conn_cb_t CB = {on_plain, on_event, NULL};

static void run_free(run_t *r)
{
    for (int d = 0; d < 2; d++) {
        for (size_t i = 0; i < r->npc[d]; i++) {
            free(r->pc[d][i].p);
        }
        free(r->pc[d]);
        free(r->all[d]);
    }
    msp_ets_conn_free(r->c);
}

/* ---- feeding with losses ---- */

/* Lost byte ranges of one direction, sorted, not adjacent (TCP reports a run of missing segments as one gap). */
typedef struct loss {
    size_t from[MAX_RANGES], to[MAX_RANGES];
    size_t n;
} loss_t;

/* The losses of both directions, none yet; the caller frees them. */
static loss_t *loss_new(void)
{
    loss_t *loss = calloc(2, sizeof(loss_t));
    assert_non_null(loss);
    return loss;
}

static void loss_add(loss_t *l, size_t from, size_t to)
{
    if (l->n > 0 && l->to[l->n - 1] == from) {
        l->to[l->n - 1] = to;
        return;
    }
    assert_true(l->n < MAX_RANGES);
    assert_true(l->n == 0 || l->to[l->n - 1] < from);
    l->from[l->n] = from;
    l->to[l->n++] = to;
}

/* Feeds [a, b) of dir; a lost range is handed over as one gap where the stream reaches its start. */
static void feed_range(run_t *r, const ets_pair_t *p, int dir, const loss_t *l, size_t a, size_t b)
{
    while (a < b) {
        size_t next = b;
        int lost = 0;
        for (size_t i = 0; i < l->n && !lost; i++) {
            if (l->from[i] <= a && a < l->to[i]) {
                lost = 1;
                if (a == l->from[i]) {
                    assert_int_equal(msp_ets_conn_gap(r->c, dir, l->to[i] - l->from[i]), MSP_OK);
                }
                next = l->to[i] < b ? l->to[i] : b;
            } else if (l->from[i] > a && l->from[i] < next) {
                next = l->from[i];
            }
        }
        if (!lost) {
            assert_int_equal(msp_ets_conn_feed(r->c, dir, p->bytes[dir] + a, next - a), MSP_OK);
        }
        a = next;
    }
}

/* The pair's writes in wire order, each cut into segments; loss[dir] says what never arrives. */
static void feed_lossy(run_t *r, const ets_pair_t *p, const loss_t loss[2])
{
    assert_int_equal(msp_ets_conn_new(W.keys, NULL, &CB, r, &r->c), MSP_OK);
    for (size_t i = 0; i < p->nchunks; i++) {
        const ets_chunk_t *ch = &p->chunks[i];
        for (size_t a = ch->off; a < ch->off + ch->len; a += SEG) {
            size_t b = a + SEG < ch->off + ch->len ? a + SEG : ch->off + ch->len;
            feed_range(r, p, ch->dir, &loss[ch->dir], a, b);
        }
    }
    assert_int_equal(msp_ets_conn_end(r->c), MSP_OK);
}

/*
 * Random segment drops at permille/1000 once the handshake is over, never in a direction's last write (the
 * close_notify: every run of damaged records is followed by an intact one). Whether the handshake is over is
 * what a reference decryptor fed in the same order says at that point.
 */
static size_t random_loss(const ets_pair_t *p, unsigned permille, loss_t loss[2])
{
    run_t ref = {0};
    size_t segs = 0;
    assert_int_equal(msp_ets_conn_new(W.keys, NULL, NULL, NULL, &ref.c), MSP_OK);
    size_t last[2] = {0, 0};
    for (size_t i = 0; i < p->nchunks; i++) {
        last[p->chunks[i].dir] = i;
    }
    memset(loss, 0, 2 * sizeof(loss_t));
    for (size_t i = 0; i < p->nchunks; i++) {
        const ets_chunk_t *ch = &p->chunks[i];
        for (size_t a = ch->off; a < ch->off + ch->len; a += SEG) {
            size_t b = a + SEG < ch->off + ch->len ? a + SEG : ch->off + ch->len;
            if (ref.c->phase == PH_DONE && i != last[ch->dir] && rnd() % 1000 < permille) {
                loss_add(&loss[ch->dir], a, b);
                segs++;
            }
            assert_int_equal(msp_ets_conn_feed(ref.c, ch->dir, p->bytes[ch->dir] + a, b - a), MSP_OK);
        }
    }
    msp_ets_conn_free(ref.c);
    return segs;
}

/* ---- the model ---- */

static int damaged(const loss_t *l, size_t from, size_t to)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->from[i] < to && from < l->to[i]) {
            return 1;
        }
    }
    return 0;
}

/* The plaintext of the intact records, exactly, record by record. */
static void check_plaintext(const run_t *ref, const run_t *got, int dir, const recs_t *rs, const loss_t *l)
{
    size_t want = 0, j = 0;
    for (size_t i = 0; i < ref->npc[dir]; i++) {
        const piece_t *x = &ref->pc[dir][i];
        assert_true(x->rec < rs->n);
        if (damaged(l, rs->off[x->rec], rs->off[x->rec] + rs->len[x->rec])) {
            continue;
        }
        want++;
        assert_true(j < got->npc[dir]);
        const piece_t *y = &got->pc[dir][j++];
        assert_int_equal(y->rec, x->rec);
        assert_int_equal(y->n, x->n);
        assert_memory_equal(y->p, x->p, x->n);
    }
    assert_int_equal(got->npc[dir], want);
}

/* One GAP event per run of damaged records, each field exact. Returns the events checked. */
static size_t check_gaps(const run_t *got, int dir, const recs_t *rs, const loss_t *l, size_t *k)
{
    size_t events = 0;
    for (size_t i = 0; i < rs->n;) {
        if (!damaged(l, rs->off[i], rs->off[i] + rs->len[i])) {
            i++;
            continue;
        }
        size_t first = i;
        while (i < rs->n && damaged(l, rs->off[i], rs->off[i] + rs->len[i])) {
            i++;
        }
        size_t start = rs->off[first], end = rs->off[i - 1] + rs->len[i - 1];
        uint64_t from = UINT64_MAX, to = 0, lost = 0;
        unsigned gaps = 0;
        for (size_t g = 0; g < l->n; g++) {
            if (l->from[g] < end && start < l->to[g]) {
                from = from < l->from[g] ? from : l->from[g];
                to = l->to[g];
                lost += l->to[g] - l->from[g];
                gaps++;
            }
        }
        while (*k < got->ngap && got->gap[*k].dir != dir) {
            (*k)++;
        }
        assert_true(*k < got->ngap);
        const msp_ets_event_t *ev = &got->gap[(*k)++];
        assert_int_equal(ev->gap_from, from);
        assert_int_equal(ev->gap_to, to);
        assert_int_equal(ev->gap_lost, lost);
        assert_int_equal(ev->gap_count, gaps);
        assert_int_equal(ev->gap_partial, from - start);
        assert_int_equal(ev->gap_skipped, end - from - lost);
        assert_int_equal(ev->records_lost, i - first);
        assert_int_equal(ev->records_exact, 1);
        assert_int_equal(ev->recovered, 1);
        events++;
    }
    return events;
}

static void reference(run_t *ref, const ets_pair_t *p)
{
    static const loss_t none[2];
    feed_lossy(ref, p, none);
    assert_int_equal(ref->undecryptable, 0);
    assert_true(ref->npc[0] > 0 && ref->npc[1] > 0);
}

/* Feeds p with loss and checks everything against the model. */
static void check_loss(const ets_pair_t *p, const loss_t loss[2], size_t *events)
{
    run_t ref = {0}, got = {0};
    reference(&ref, p);
    feed_lossy(&got, p, loss);
    if (got.undecryptable) {
        fail_msg("undecryptable: %s", got.text);
    }
    size_t total = 0;
    for (int dir = 0; dir < 2; dir++) {
        recs_t rs = parse_records(p, dir);
        size_t k = 0;
        check_plaintext(&ref, &got, dir, &rs, &loss[dir]);
        size_t ev = check_gaps(&got, dir, &rs, &loss[dir], &k);
        uint64_t lost_records = 0;
        for (size_t i = 0; i < got.ngap; i++) {
            lost_records += got.gap[i].dir == dir ? got.gap[i].records_lost : 0;
        }
        assert_int_equal(msp_ets_conn_records_lost(got.c, dir), lost_records);
        total += ev;
        recs_free(&rs);
    }
    assert_int_equal(got.ngap, total);
    *events = total;
    run_free(&ref);
    run_free(&got);
}

/* ---- tests ---- */

static void random_drops(const char *suite, unsigned permille, uint32_t seed)
{
    rng_state = seed;
    ets_pair_t p;
    make_pair(&p, &(shape_t){.suite = suite, .records = 120, .max = 20000});
    loss_t *loss = loss_new();
    size_t segs = random_loss(&p, permille, loss);
    assert_true(segs >= 4); /* the seed drops segments in both directions */
    assert_true(loss[0].n > 0 && loss[1].n > 0);
    size_t events = 0;
    check_loss(&p, loss, &events);
    assert_true(events >= 2);
    free(loss);
    ets_pair_free(&p);
}

static void test_drop_1_percent(void **state)
{
    (void)state;
    random_drops("TLS_AES_128_GCM_SHA256", 10, 1);
    random_drops("TLS_CHACHA20_POLY1305_SHA256", 10, 2);
}

static void test_drop_10_percent(void **state)
{
    (void)state;
    random_drops("TLS_AES_256_GCM_SHA384", 100, 3);
    random_drops("TLS_AES_128_GCM_SHA256", 100, 4);
}

/* MSP_RESYNC_SEEDS=N: N more seeds of each (not in CI: for a longer look after a change) */
static void test_more_seeds(void **state)
{
    (void)state;
    const char *env = getenv("MSP_RESYNC_SEEDS");
    unsigned n = env != NULL ? (unsigned)atoi(env) : 0;
    for (unsigned i = 0; i < n; i++) {
        random_drops(i % 2 ? "TLS_CHACHA20_POLY1305_SHA256" : "TLS_AES_128_GCM_SHA256", i % 3 ? 100 : 10, 100 + i);
    }
}

static void one_loss(const ets_pair_t *p, int dir, size_t from, size_t to)
{
    loss_t *loss = loss_new();
    loss_add(&loss[dir], from, to);
    size_t events = 0;
    check_loss(p, loss, &events);
    assert_int_equal(events, 1);
    free(loss);
}

/* By hand: inside a record, across a boundary, exactly one record, a record's start, several records. */
static void test_boundaries(void **state)
{
    (void)state;
    rng_state = 7;
    ets_pair_t p;
    make_pair(&p, &(shape_t){.suite = "TLS_AES_128_GCM_SHA256", .records = 40, .max = 6000});
    for (int dir = 0; dir < 2; dir++) {
        recs_t rs = parse_records(&p, dir);
        assert_true(rs.n > 30);
        size_t i = rs.n / 2;
        size_t a = rs.off[i], n = rs.len[i];
        assert_true(n > 40);
        one_loss(&p, dir, a + 10, a + 30);               /* inside one record */
        one_loss(&p, dir, a + n - 7, a + n + 9);         /* across the boundary with the next */
        one_loss(&p, dir, a, a + n);                     /* exactly one record */
        one_loss(&p, dir, a, a + 3);                     /* the start of a header */
        one_loss(&p, dir, a + 3, a + n + rs.len[i + 1]); /* the end of a header, a whole record after */
        one_loss(&p, dir, a + 1, rs.off[i + 5] + 2);     /* several records, into a header */
        recs_free(&rs);
    }
    ets_pair_free(&p);
}

/* A gap inside the handshake: that connection is undecryptable, as before recovery existed. */
static void test_gap_in_handshake(void **state)
{
    (void)state;
    rng_state = 9;
    ets_pair_t p;
    make_pair(&p, &(shape_t){.suite = "TLS_AES_128_GCM_SHA256", .records = 2, .max = 100});
    loss_t *loss = loss_new();
    loss_add(&loss[1], 200, 300); /* the server's first flight */
    run_t got = {0};
    feed_lossy(&got, &p, loss);
    assert_int_equal(got.undecryptable, 1);
    assert_int_equal(got.reason, MSP_ETS_R_GAP);
    assert_string_equal(got.text, "gap of 100 bytes in server->client stream");
    assert_int_equal(got.ngap, 0);
    run_free(&got);
    free(loss);
    ets_pair_free(&p);
}

/* A client KeyUpdate inside the gap: the next generation's key finds the records again. */
static void test_key_update_in_gap(void **state)
{
    (void)state;
    rng_state = 11;
    ets_pair_t p;
    make_pair(
        &p,
        &(shape_t){.suite = "TLS_AES_128_GCM_SHA256", .records = 20, .max = 3000, .key_update = 10, .key_updates = 1});
    recs_t rs = parse_records(&p, 0);
    /* the KeyUpdate: the client's first record after the 10th exchange that is short (5 + 5 + 1 + 16 bytes) */
    size_t ku = 0;
    for (size_t i = rs.n / 3; i < rs.n && ku == 0; i++) {
        ku = rs.len[i] == 5 + 5 + 1 + 16 ? i : 0;
    }
    assert_true(ku > 0);
    run_t ref = {0};
    reference(&ref, &p);
    assert_int_equal(ref.key_updates, 1);

    loss_t *loss = loss_new();
    loss_add(&loss[0], rs.off[ku - 1] + 20, rs.off[ku + 1] + 30); /* the end of one record, the KeyUpdate, a start */
    run_t got = {0};
    feed_lossy(&got, &p, loss);
    if (got.undecryptable) {
        fail_msg("undecryptable: %s", got.text);
    }
    assert_int_equal(got.key_updates, 1);
    assert_int_equal(got.trial_key_updates, 1);
    assert_int_equal(got.ngap, 1);
    const msp_ets_event_t *ev = &got.gap[0];
    assert_int_equal(ev->dir, 0);
    assert_int_equal(ev->gap_from, rs.off[ku - 1] + 20);
    assert_int_equal(ev->gap_to, rs.off[ku + 1] + 30);
    assert_int_equal(ev->records_exact, 0);
    assert_int_equal(ev->records_lost, 2); /* at least the KeyUpdate and the record cut after it: here exactly 3 */
    assert_int_equal(ev->recovered, 1);
    /* everything after the gap, byte for byte: the reference's plaintext from record ku + 2 on */
    size_t want_from = 0;
    for (size_t i = 0; i < ref.npc[0]; i++) {
        if (ref.pc[0][i].rec >= ku + 2) {
            break;
        }
        want_from += ref.pc[0][i].n;
    }
    size_t before = 0; /* what the lossy run gave before the gap: the records before ku - 1 */
    for (size_t i = 0; i < ref.npc[0] && ref.pc[0][i].rec < ku - 1; i++) {
        before += ref.pc[0][i].n;
    }
    assert_int_equal(got.all_len[0] - before, ref.all_len[0] - want_from);
    assert_memory_equal(got.all[0] + before, ref.all[0] + want_from, ref.all_len[0] - want_from);
    assert_memory_equal(got.all[0], ref.all[0], before);
    /* the other direction lost nothing */
    assert_int_equal(got.all_len[1], ref.all_len[1]);
    assert_memory_equal(got.all[1], ref.all[1], ref.all_len[1]);
    run_free(&got);
    run_free(&ref);
    free(loss);
    recs_free(&rs);
    ets_pair_free(&p);
}

/* Seed 13's pair with two client KeyUpdates back to back, the client's records, and where the first of them is. */
static size_t two_key_updates(ets_pair_t *p, recs_t *rs)
{
    rng_state = 13;
    make_pair(
        p,
        &(shape_t){.suite = "TLS_AES_128_GCM_SHA256", .records = 20, .max = 3000, .key_update = 10, .key_updates = 2});
    *rs = parse_records(p, 0);
    size_t ku = 0;
    for (size_t i = rs->n / 3; i < rs->n && ku == 0; i++) {
        ku = rs->len[i] == 5 + 5 + 1 + 16 && rs->len[i + 1] == rs->len[i] ? i : 0;
    }
    assert_true(ku > 0);
    return ku;
}

/* Two KeyUpdates inside the gap: framing is found, no key of ours opens it: key_update_in_gap. */
static void test_two_key_updates_in_gap(void **state)
{
    (void)state;
    ets_pair_t p;
    recs_t rs;
    size_t ku = two_key_updates(&p, &rs);
    loss_t *loss = loss_new();
    loss_add(&loss[0], rs.off[ku] - 4, rs.off[ku + 2] + 7);
    run_t got = {0};
    feed_lossy(&got, &p, loss);
    assert_int_equal(got.undecryptable, 1);
    assert_int_equal(got.reason, MSP_ETS_R_KEY_UPDATE_LOST);
    assert_string_equal(msp_ets_reason_name(got.reason), "key_update_in_gap");
    assert_non_null(strstr(got.text, "a KeyUpdate inside the gap"));
    assert_int_equal(got.ngap, 0);
    /* only the client direction stopped: the server's plaintext is all there */
    assert_false(msp_ets_conn_failed(got.c));
    run_t ref = {0};
    reference(&ref, &p);
    assert_int_equal(got.all_len[1], ref.all_len[1]);
    assert_memory_equal(got.all[1], ref.all[1], ref.all_len[1]);
    assert_true(got.all_len[0] < ref.all_len[0]);
    assert_memory_equal(got.all[0], ref.all[0], got.all_len[0]);
    run_free(&ref);
    run_free(&got);
    free(loss);
    recs_free(&rs);
    ets_pair_free(&p);
}

/* The server's stream ends inside the search (its last bytes lost): reported, not undecryptable. */
static void test_gap_at_end(void **state)
{
    (void)state;
    rng_state = 15;
    ets_pair_t p;
    make_pair(&p, &(shape_t){.suite = "TLS_AES_128_GCM_SHA256", .records = 6, .max = 500});
    recs_t rs = parse_records(&p, 1);
    size_t last = rs.off[rs.n - 1];
    loss_t *loss = loss_new();
    loss_add(&loss[1], last + 2, p.len[1]); /* the close_notify record, after its first two bytes */
    run_t got = {0};
    feed_lossy(&got, &p, loss);
    assert_int_equal(got.undecryptable, 0);
    assert_int_equal(got.ngap, 1);
    assert_int_equal(got.gap[0].recovered, 0);
    assert_int_equal(got.gap[0].records_exact, 0);
    assert_int_equal(got.gap[0].records_lost, 1);
    assert_int_equal(got.gap[0].gap_partial, 2);
    assert_int_equal(got.gap[0].gap_from, last + 2);
    assert_int_equal(got.gap[0].gap_to, p.len[1]);
    assert_false(msp_ets_conn_failed(got.c));
    run_free(&got);
    free(loss);
    recs_free(&rs);
    ets_pair_free(&p);
}

/* Feeds the handshake and a little data, then a gap and what the caller gives: the run. */
static void hostile(run_t *got, const ets_pair_t *p, const uint8_t *junk, size_t n)
{
    recs_t rs = parse_records(p, 0);
    size_t cut = rs.off[rs.n / 2];
    assert_int_equal(msp_ets_conn_new(W.keys, NULL, &CB, got, &got->c), MSP_OK);
    assert_int_equal(msp_ets_conn_feed(got->c, 1, p->bytes[1], p->len[1]), MSP_OK);
    assert_int_equal(msp_ets_conn_feed(got->c, 0, p->bytes[0], cut), MSP_OK);
    assert_int_equal(got->c->phase, PH_DONE);
    assert_int_equal(msp_ets_conn_gap(got->c, 0, 5000), MSP_OK);
    for (size_t i = 0; i < n; i += 1000) {
        assert_int_equal(msp_ets_conn_feed(got->c, 0, junk + i, n - i < 1000 ? n - i : 1000), MSP_OK);
    }
    assert_int_equal(msp_ets_conn_end(got->c), MSP_OK);
    recs_free(&rs);
}

/* Bytes after a gap made to look like records: the search stops at its bounds and says so. */
static void test_hostile(void **state)
{
    (void)state;
    rng_state = 17;
    ets_pair_t p;
    make_pair(&p, &(shape_t){.suite = "TLS_AES_128_GCM_SHA256", .records = 10, .max = 500});
    size_t n = 3u << 20;
    uint8_t *junk = malloc(n);
    assert_non_null(junk);

    /* headers one after the other, the largest length each: chained, so "framed", and no key opens them */
    for (size_t i = 0; i < n; i++) {
        junk[i] = (uint8_t)rnd();
    }
    for (size_t i = 0; i + 5 <= n; i += 5 + MSP_ETS_DEC_MAX_RECORD) {
        memcpy(junk + i, "\x17\x03\x03\x41\x00", 5);
    }
    run_t got = {0};
    hostile(&got, &p, junk, n);
    assert_int_equal(got.undecryptable, 1);
    assert_int_equal(got.reason, MSP_ETS_R_KEY_UPDATE_LOST);
    run_free(&got);

    /* a header at every byte, never two in a row where the length says: candidates run out */
    for (size_t i = 0; i + 5 <= n; i += 5) {
        memcpy(junk + i, "\x17\x03\x03\x00\x20", 5);
    }
    memset(&got, 0, sizeof got);
    hostile(&got, &p, junk, n);
    assert_int_equal(got.undecryptable, 1);
    assert_int_equal(got.reason, MSP_ETS_R_GAP);
    assert_non_null(strstr(got.text, "64 candidate headers"));
    run_free(&got);

    /* no header at all: the search stops after MSP_ETS_DEC_RESYNC_SCAN bytes */
    memset(junk, 0x42, n);
    memset(&got, 0, sizeof got);
    hostile(&got, &p, junk, n);
    assert_int_equal(got.undecryptable, 1);
    assert_int_equal(got.reason, MSP_ETS_R_GAP);
    assert_non_null(strstr(got.text, "no record found again in the 1048576 bytes after it"));
    run_free(&got);
    free(junk);
    ets_pair_free(&p);
}

/* ---- through the whole pipeline (msp_ets_passive_*): TCP reassembly hands the hole over ---- */

typedef struct pipe {
    uint8_t *pt[2];
    size_t pt_len[2];
    msp_ets_event_t gap[MAX_EVENTS];
    size_t ngap;
    int undecryptable, ended;
    msp_ets_flow_status_t status;
    msp_buf_t json;
} pipe_t;

static void pipe_plain(void *arg, msp_ets_passive_flow_t *f, int dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)f, (void)ts;
    pipe_t *x = arg;
    x->pt[dir] = realloc(x->pt[dir], x->pt_len[dir] + n + 1);
    assert_non_null(x->pt[dir]);
    memcpy(x->pt[dir] + x->pt_len[dir], p, n);
    x->pt_len[dir] += n;
}

static void pipe_event(void *arg, msp_ets_passive_flow_t *f, const msp_ets_event_t *ev, const msp_ets_passive_vis_t *v)
{
    pipe_t *x = arg;
    x->undecryptable += ev->kind == MSP_ETS_EV_UNDECRYPTABLE;
    if (ev->kind == MSP_ETS_EV_GAP) {
        assert_true(x->ngap < MAX_EVENTS);
        x->gap[x->ngap++] = *ev;
        assert_int_equal(msp_ets_passive_event_json(msp_ets_passive_flow_info(f)->id, ev, v, &x->json), MSP_OK);
    }
}

static void pipe_end(void *arg, msp_ets_passive_flow_t *f, msp_tcp_close_reason_t reason)
{
    (void)reason;
    pipe_t *x = arg;
    x->ended++;
    x->status = msp_ets_passive_flow_status(f);
}

typedef struct wire {
    msp_ets_passive_t *p;
    uint32_t seq[2];
    uint64_t ts;
} wire_t;

/* One packet of dir; sent 0: counted in the sequence space but never captured (a dropped segment). */
static void packet(wire_t *w, int dir, uint8_t flags, const uint8_t *data, size_t n, int sent)
{
    static const uint8_t client[4] = {10, 0, 0, 1}, server[4] = {10, 0, 0, 2};
    msp_tcp_pkt_t pkt = {.ip_version = 4, .flags = flags, .window = 65535, .payload = data, .payload_len = n};
    memcpy(pkt.src, dir == 0 ? client : server, 4);
    memcpy(pkt.dst, dir == 0 ? server : client, 4);
    pkt.sport = dir == 0 ? 40000 : 443;
    pkt.dport = dir == 0 ? 443 : 40000;
    pkt.seq = w->seq[dir];
    pkt.ack = w->seq[!dir];
    w->ts += 100;
    if (sent) {
        msp_buf_t b;
        msp_buf_init(&b, 1u << 16);
        assert_int_equal(msp_tcp_build(MSP_TCP_LINK_EN10MB, &pkt, &b), MSP_OK);
        assert_int_equal(msp_ets_passive_packet(w->p, w->ts, MSP_TCP_LINK_EN10MB, b.base, b.len, b.len), MSP_OK);
        msp_buf_free(&b);
    }
    w->seq[dir] += (uint32_t)n + ((flags & (MSP_TCP_SYN | MSP_TCP_FIN)) != 0);
}

/* p on the wire as Ethernet packets of SEG bytes at most, those with a lost byte not captured, through the pipeline. */
static pipe_t *pipeline(const ets_pair_t *p, const loss_t loss[2], uint32_t window)
{
    static const msp_ets_passive_cb_t cb = {NULL, pipe_plain, pipe_event, NULL, pipe_end};
    pipe_t *x = calloc(1, sizeof *x);
    assert_non_null(x);
    msp_buf_init(&x->json, 1u << 20);
    msp_ets_passive_cfg_t cfg;
    msp_ets_passive_cfg_default(&cfg);
    cfg.cb = &cb;
    cfg.arg = x;
    cfg.tcp.window = window != 0 ? window : cfg.tcp.window;
    msp_ets_passive_t *pp = NULL;
    msp_error_t err;
    assert_int_equal(msp_ets_passive_new(&cfg, &pp), MSP_OK);
    assert_int_equal(msp_ets_passive_add_key(pp, W.x25519, &err), MSP_OK);
    wire_t w = {.p = pp, .seq = {1000, 7777}, .ts = 1700000000000000ull};
    packet(&w, 0, MSP_TCP_SYN, NULL, 0, 1);
    packet(&w, 1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, 1);
    packet(&w, 0, MSP_TCP_ACK, NULL, 0, 1);
    for (size_t i = 0; i < p->nchunks; i++) {
        const ets_chunk_t *ch = &p->chunks[i];
        for (size_t a = ch->off; a < ch->off + ch->len; a += SEG) {
            size_t n = ch->off + ch->len - a < SEG ? ch->off + ch->len - a : SEG;
            packet(&w, ch->dir, MSP_TCP_ACK | MSP_TCP_PSH, p->bytes[ch->dir] + a, n,
                   !damaged(&loss[ch->dir], a, a + n));
        }
    }
    packet(&w, 1, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0, 1);
    packet(&w, 0, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0, 1);
    msp_ets_passive_finish(pp);
    msp_ets_passive_free(pp);
    return x;
}

static void pipe_free(pipe_t *x)
{
    msp_buf_free(&x->json);
    free(x->pt[0]);
    free(x->pt[1]);
    free(x);
}

/* The 10 % drops of random_loss as Ethernet packets: the flow decrypts, its gaps are events, and the JSON lines. */
static void test_pipeline(void **state)
{
    (void)state;
    rng_state = 21;
    ets_pair_t p;
    make_pair(&p, &(shape_t){.suite = "TLS_AES_128_GCM_SHA256", .records = 40, .max = 9000});
    loss_t *loss = loss_new();
    assert_true(random_loss(&p, 100, loss) > 0);
    run_t direct = {0};
    feed_lossy(&direct, &p, loss);
    assert_int_equal(direct.undecryptable, 0);
    pipe_t *x = pipeline(&p, loss, 0);

    assert_int_equal(x->ended, 1);
    assert_int_equal(x->undecryptable, 0);
    assert_int_equal(x->status, MSP_ETS_FLOW_DECRYPTED);
    for (int dir = 0; dir < 2; dir++) {
        assert_int_equal(x->pt_len[dir], direct.all_len[dir]);
        assert_memory_equal(x->pt[dir], direct.all[dir], direct.all_len[dir]);
    }
    /* the same events as the decryptor fed directly (TCP hands the holes over later, in the same places) */
    assert_int_equal(x->ngap, direct.ngap);
    for (size_t i = 0; i < x->ngap; i++) {
        const msp_ets_event_t *a = &x->gap[i], *b = NULL;
        for (size_t j = 0; j < direct.ngap && b == NULL; j++) {
            b = direct.gap[j].dir == a->dir && direct.gap[j].gap_from == a->gap_from ? &direct.gap[j] : NULL;
        }
        assert_non_null(b);
        assert_int_equal(a->gap_to, b->gap_to);
        assert_int_equal(a->gap_lost, b->gap_lost);
        assert_int_equal(a->gap_skipped, b->gap_skipped);
        assert_int_equal(a->gap_partial, b->gap_partial);
        assert_int_equal(a->records_lost, b->records_lost);
    }
    assert_int_equal(msp_buf_put(&x->json, "", 1), MSP_OK);
    assert_non_null(strstr((const char *)x->json.base, "{\"event\":\"gap\",\"flow\":1,\"time\":"));
    pipe_free(x);
    run_free(&direct);
    free(loss);
    ets_pair_free(&p);
}

/* Two KeyUpdates lost from the client: the flow is undecryptable, the server's whole plaintext still comes out. */
static void test_pipeline_one_direction(void **state)
{
    (void)state;
    ets_pair_t p;
    recs_t rs;
    size_t ku = two_key_updates(&p, &rs);
    loss_t *loss = loss_new();
    loss_add(&loss[0], rs.off[ku], rs.off[ku + 2]);
    run_t ref = {0};
    reference(&ref, &p);
    /* a small window: TCP gives the hole up while the server still has data to come (not only at the FIN) */
    pipe_t *x = pipeline(&p, loss, 4096);
    assert_int_equal(x->ended, 1);
    assert_int_equal(x->undecryptable, 1);
    assert_int_equal(x->status, MSP_ETS_FLOW_UNDECRYPTABLE);
    assert_int_equal(x->pt_len[1], ref.all_len[1]);
    assert_memory_equal(x->pt[1], ref.all[1], ref.all_len[1]);
    assert_true(x->pt_len[0] < ref.all_len[0]);
    assert_memory_equal(x->pt[0], ref.all[0], x->pt_len[0]);
    pipe_free(x);
    run_free(&ref);
    free(loss);
    recs_free(&rs);
    ets_pair_free(&p);
}

/* The JSON line of a GAP event (msp_ets_passive_event_json). */
static void test_json(void **state)
{
    (void)state;
    msp_buf_t out;
    msp_buf_init(&out, 4096);
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_GAP,
                          .dir = 1,
                          .text = "x",
                          .gap_from = 1000,
                          .gap_to = 2448,
                          .gap_lost = 1448,
                          .gap_count = 1,
                          .gap_partial = 12,
                          .gap_skipped = 300,
                          .records_lost = 2,
                          .records_exact = 1,
                          .recovered = 1};
    assert_int_equal(msp_ets_passive_event_json(7, &ev, NULL, &out), MSP_OK);
    assert_int_equal(msp_buf_put(&out, "", 1), MSP_OK);
    assert_string_equal((const char *)out.base,
                        "{\"event\":\"gap\",\"flow\":7,\"time\":\"1970-01-01T00:00:00.000000Z\",\"ts\":0.000000,"
                        "\"dir\":\"server\",\"from\":1000,\"to\":2448,\"lost\":1448,"
                        "\"gaps\":1,\"partial\":12,\"skipped\":300,\"records_lost\":2,\"records_exact\":true,"
                        "\"recovered\":true}\n");
    msp_buf_free(&out);
}

static int setup(void **state)
{
    (void)state;
    W.x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    msp_error_t err;
    if (W.x25519 == NULL || msp_ets_libctx_new(&W.x25519, 1, &W.lib, &err) != MSP_OK ||
        msp_ets_server_ctx_new(W.lib, &W.sctx, &err) != MSP_OK ||
        ets_pair_make_cert(ETS_CERT_P256, &W.cert_key, &W.cert) != 0 ||
        ets_pair_server_setup(W.sctx, W.cert_key, W.cert) != 0) {
        return -1;
    }
    SSL_CTX_set_ciphersuites(W.sctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    W.cctx = ets_pair_client_ctx();
    if (W.cctx == NULL || msp_ets_keys_new(&W.keys) != MSP_OK || msp_ets_keys_add(W.keys, W.x25519, &err) != MSP_OK) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    msp_ets_keys_free(W.keys);
    SSL_CTX_free(W.sctx);
    SSL_CTX_free(W.cctx);
    msp_ets_libctx_free(W.lib);
    X509_free(W.cert);
    EVP_PKEY_free(W.x25519);
    EVP_PKEY_free(W.cert_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_drop_1_percent),
        cmocka_unit_test(test_drop_10_percent),
        cmocka_unit_test(test_more_seeds),
        cmocka_unit_test(test_gap_in_handshake),
        cmocka_unit_test(test_key_update_in_gap),
        cmocka_unit_test(test_two_key_updates_in_gap),
        cmocka_unit_test(test_gap_at_end),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_pipeline_one_direction),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
