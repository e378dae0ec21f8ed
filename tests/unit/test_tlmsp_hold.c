/*
 * A middlebox that holds containers (MSP_TLMSP_HOLD) and releases them later
 * (msp_tlmsp_mbox_release): what comes out is what the verdicts would have
 * produced at once (the verbatim fields unchanged, a forwarding chain the
 * next middlebox and the server accept), in order, with later containers of
 * the same direction waiting behind the held ones; the bound; the refusals.
 *
 * Path: client -- m1 -- m2 -- server (net_two_mbox_setup): context 1
 * unconfirmed (m1 rw, m2 r), context 2 confirmed (m1 r, m2 rw). m1 is
 * rebuilt with a scripted callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"
#include "msp/error.h"
#include "net.h"
#include "reader.h"

#define SCRIPT_MAX 128

/* What m1 answers to the n-th data container toward the server. */
typedef struct script {
    msp_tlmsp_verdict_t v[SCRIPT_MAX];
    const char *with[SCRIPT_MAX];
    size_t n;     /* data containers seen toward the server */
    size_t other; /* alerts and containers toward the client */
    msp_tlmsp_mbox_t **m;
    int release_in_callback; /* what msp_tlmsp_mbox_release answered from inside the callback (0: not tried) */
    uint64_t rng;
} script_t;

static msp_tlmsp_verdict_t scripted(void *user, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx, uint8_t access,
                                    const uint8_t *p, size_t len, const uint8_t **data, size_t *data_len)
{
    script_t *s = user;
    (void)ctx;
    (void)access;
    (void)p;
    (void)len;
    if (!to_server || kind != MSP_TLMSP_DATA) {
        s->other++;
        return MSP_TLMSP_FORWARD;
    }
    size_t i = s->n++;
    if (s->release_in_callback == 0) {
        msp_tlmsp_verdict_t f = MSP_TLMSP_FORWARD;
        msp_buf_t out;
        msp_buf_init(&out, 1024);
        s->release_in_callback = msp_tlmsp_mbox_release(*s->m, 1, 0, &f, NULL, NULL, &out);
        msp_buf_free(&out);
    }
    msp_tlmsp_verdict_t v = i < SCRIPT_MAX ? s->v[i] : MSP_TLMSP_HOLD;
    if (v == MSP_TLMSP_REPLACE) {
        *data = (const uint8_t *)s->with[i];
        *data_len = strlen(s->with[i]);
    }
    return v;
}

static void rng(void *user, uint8_t *buf, size_t len)
{
    uint64_t *st = user;
    for (size_t i = 0; i < len; i++) {
        *st = *st * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(*st >> 56);
    }
}

/* Capture what crosses link 0 and link 1 toward the server after the handshake. */
typedef struct wire {
    msp_buf_t in, out; /* into m1, out of m1 */
    int on;
} wire_t;

static void tap(void *user, size_t link, int to_server, msp_buf_t *buf)
{
    wire_t *w = user;
    if (w->on && to_server && link <= 1) {
        msp_buf_put(link == 0 ? &w->in : &w->out, buf->base, buf->len);
    }
}

typedef struct fixture {
    net_t net;
    script_t script;
    wire_t wire;
} fixture_t;

static void open_path(fixture_t *f)
{
    net_setup_t s;
    net_two_mbox_setup(&s);
    memset(f, 0, sizeof(*f));
    assert_int_equal(net_open(&f->net, &s), 0);
    /* m1 again, before it saw a byte, with the script */
    msp_tlmsp_mbox_free(f->net.m[0]);
    f->net.m[0] = NULL;
    f->script.m = &f->net.m[0];
    f->script.rng = 7;
    msp_tlmsp_mbox_cfg_t mc;
    memset(&mc, 0, sizeof(mc));
    mc.random = rng;
    mc.random_user = &f->script.rng;
    mc.address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://m1:10001", 16};
    mc.identity = (msp_tlmsp_identity_t){net_mbox_ids[0].key, net_mbox_ids[0].ders, net_mbox_ids[0].lens, 1};
    mc.container = scripted;
    mc.user = &f->script;
    assert_int_equal(msp_tlmsp_mbox_new(&mc, &f->net.m[0]), MSP_OK);
    msp_buf_init(&f->wire.in, 1u << 26);
    msp_buf_init(&f->wire.out, 1u << 26);
    f->net.tamper = tap;
    f->net.tamper_user = &f->wire;
    net_pump(&f->net);
    assert_true(net_ready(&f->net));
    f->wire.on = 1;
}

static void close_path(fixture_t *f)
{
    msp_buf_free(&f->wire.in);
    msp_buf_free(&f->wire.out);
    net_close(&f->net);
}

static void send_text(fixture_t *f, uint8_t ctx, const char *text)
{
    assert_int_equal(msp_tlmsp_conn_send(f->net.client, ctx, (const uint8_t *)text, strlen(text), &f->net.c2s[0]),
                     MSP_OK);
    net_pump(&f->net);
}

static int release(fixture_t *f, size_t n, const msp_tlmsp_verdict_t *v, const char *const *with)
{
    const uint8_t *data[8] = {NULL};
    size_t len[8] = {0};
    for (size_t i = 0; with != NULL && i < n; i++) {
        data[i] = (const uint8_t *)with[i];
        len[i] = with[i] != NULL ? strlen(with[i]) : 0;
    }
    int ret = msp_tlmsp_mbox_release(f->net.m[0], 1, n, v, data, len, &f->net.c2s[1]);
    net_pump(&f->net);
    return ret;
}

static void expect_at_server(const fixture_t *f, uint8_t ctx, const char *text)
{
    const msp_buf_t *b = &f->net.at_server.data[ctx];
    assert_int_equal(b->len, strlen(text));
    assert_memory_equal(b->base, text, b->len);
}

static void expect_clean(const fixture_t *f)
{
    assert_int_equal(f->net.client_err, MSP_OK);
    assert_int_equal(f->net.server_err, MSP_OK);
    assert_int_equal(f->net.mbox_err[0], MSP_OK);
    assert_int_equal(f->net.mbox_err[1], MSP_OK);
}

/* The one container of the record at p (a record of one container, as conn_send makes for short data). */
static void parse_one(const msp_buf_t *b, msp_tlmsp_container_t *c)
{
    assert_true(b->len > 9);
    assert_int_equal(b->base[0], MSP_TLMSP_CT_APPLICATION_DATA);
    assert_int_equal(net_record_len(b->base), b->len);
    msp_reader_t r;
    msp_reader_init(&r, b->base + 9, b->len - 9);
    assert_int_equal(msp_tlmsp_container_parse(&r, 1, c), MSP_OK);
    assert_int_equal(msp_reader_left(&r), 0);
}

/* Held, then released unchanged: the container m1 sends is the one it got, with its own entry appended (7.2). */
static void test_held_then_forwarded(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    open_path(f);
    f->script.v[0] = MSP_TLMSP_HOLD;
    send_text(f, 2, "held in context two");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 1);
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 0), 0);
    assert_int_equal(f->wire.out.len, 0);
    expect_at_server(f, 2, "");
    msp_tlmsp_verdict_t v[1] = {MSP_TLMSP_FORWARD};
    assert_int_equal(release(f, 1, v, NULL), MSP_OK);
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 0);
    expect_at_server(f, 2, "held in context two");
    expect_clean(f);
    static msp_tlmsp_container_t a, b;
    parse_one(&f->wire.in, &a);
    parse_one(&f->wire.out, &b);
    assert_int_equal(a.context, b.context);
    assert_int_equal(a.flags, b.flags);
    assert_int_equal(a.fragment_len, b.fragment_len);
    assert_memory_equal(a.fragment, b.fragment, a.fragment_len);
    assert_memory_equal(a.writer_mac, b.writer_mac, 16);
    /* confirmed context: the client's entry verbatim, m1's of order 1 after it */
    assert_int_equal(a.nfmacs, 1);
    assert_int_equal(b.nfmacs, 2);
    assert_int_equal(b.fmacs[0].id, a.fmacs[0].id);
    assert_memory_equal(b.fmacs[0].reader_check, a.fmacs[0].reader_check, 16);
    assert_memory_equal(b.fmacs[0].check, a.fmacs[0].check, 16);
    assert_int_equal(b.fmacs[1].order, 1);
    assert_int_equal(b.fmacs[1].id, msp_tlmsp_mbox_id(f->net.m[0]));
    /* what went out is what a forward of the same container in the same session has: the same length */
    size_t held_len = f->wire.out.len;
    f->wire.out.len = 0;
    f->script.v[1] = MSP_TLMSP_FORWARD;
    send_text(f, 2, "sent on in context two");
    assert_int_equal(f->wire.out.len - held_len, strlen("sent on in context two") - strlen("held in context two"));
    expect_at_server(f, 2, "held in context twosent on in context two");
    expect_clean(f);
    assert_int_equal(f->script.release_in_callback, MSP_ERR_ARGUMENT);
    close_path(f);
    free(f);
}

/* Two held, the second replaced on release; m2 (a reader of context 1) and the server see the new data. */
static void test_held_two_second_replaced(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    open_path(f);
    f->script.v[0] = f->script.v[1] = MSP_TLMSP_HOLD;
    send_text(f, 1, "first ");
    send_text(f, 1, "second");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 2);
    expect_at_server(f, 1, "");
    msp_tlmsp_verdict_t v[2] = {MSP_TLMSP_FORWARD, MSP_TLMSP_REPLACE};
    const char *with[2] = {NULL, "SECOND, replaced"};
    assert_int_equal(release(f, 2, v, with), MSP_OK);
    expect_at_server(f, 1, "first SECOND, replaced");
    assert_int_equal(f->net.seen[1].plain.len, strlen("first SECOND, replaced"));
    expect_clean(f);
    /* the session goes on: a container after them, and the echo path is untouched */
    f->script.v[2] = MSP_TLMSP_FORWARD;
    send_text(f, 1, " third");
    expect_at_server(f, 1, "first SECOND, replaced third");
    expect_clean(f);
    close_path(f);
    free(f);
}

/* Later containers wait behind a held one with the verdict they got, however they were decided. */
static void test_order_kept(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    open_path(f);
    f->script.v[0] = MSP_TLMSP_HOLD;
    f->script.v[1] = MSP_TLMSP_FORWARD;
    f->script.v[2] = MSP_TLMSP_REPLACE;
    f->script.with[2] = "C";
    f->script.v[3] = MSP_TLMSP_DELETE;
    f->script.v[4] = MSP_TLMSP_HOLD;
    f->script.v[5] = MSP_TLMSP_FORWARD;
    send_text(f, 1, "a");
    send_text(f, 1, "b");
    send_text(f, 1, "c");
    send_text(f, 1, "d");
    send_text(f, 1, "e");
    send_text(f, 1, "f");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 2);
    assert_int_equal(f->wire.out.len, 0);
    expect_at_server(f, 1, "");
    /* the first held one out: everything up to the next held one follows it */
    msp_tlmsp_verdict_t v[1] = {MSP_TLMSP_FORWARD};
    assert_int_equal(release(f, 1, v, NULL), MSP_OK);
    expect_at_server(f, 1, "abC");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 1);
    const char *with[1] = {"E"};
    v[0] = MSP_TLMSP_REPLACE;
    assert_int_equal(release(f, 1, v, with), MSP_OK);
    expect_at_server(f, 1, "abCEf");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 0);
    expect_clean(f);
    /* the other direction never waited */
    f->net.echo = 1;
    send_text(f, 2, "x");
    assert_int_equal(f->net.at_client.data[2].len, 1);
    expect_clean(f);
    close_path(f);
    free(f);
}

/* Past MSP_TLMSP_HOLD_MAX_BYTES the input fails with MSP_ERR_LIMIT and the session ends both ways. */
static void test_bound(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    open_path(f);
    for (size_t i = 0; i < SCRIPT_MAX; i++) {
        f->script.v[i] = MSP_TLMSP_HOLD;
    }
    size_t n = MSP_TLMSP_HOLD_MAX_BYTES / MAX_CONTAINER_DATA + 1;
    uint8_t *big = calloc(n, MAX_CONTAINER_DATA);
    assert_non_null(big);
    /* just under: held */
    size_t under = MSP_TLMSP_HOLD_MAX_BYTES / (MAX_CONTAINER_DATA + 200);
    assert_int_equal(msp_tlmsp_conn_send(f->net.client, 1, big, under * MAX_CONTAINER_DATA, &f->net.c2s[0]), MSP_OK);
    net_pump(&f->net);
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), under);
    expect_clean(f);
    assert_int_equal(msp_tlmsp_conn_send(f->net.client, 1, big, n * MAX_CONTAINER_DATA, &f->net.c2s[0]), MSP_OK);
    net_pump(&f->net);
    assert_int_equal(f->net.mbox_err[0], MSP_ERR_LIMIT);
    assert_int_equal(f->net.server_err, MSP_ERR_CLASS_PEER_ALERT + MSP_ALERT_INTERNAL_ERROR);
    assert_int_equal(f->net.client_err, MSP_ERR_CLASS_PEER_ALERT + MSP_ALERT_INTERNAL_ERROR);
    expect_at_server(f, 1, "");
    /* a dead hop releases nothing */
    msp_tlmsp_verdict_t v[1] = {MSP_TLMSP_FORWARD};
    assert_int_equal(release(f, 1, v, NULL), MSP_ERR_ARGUMENT);
    free(big);
    close_path(f);
    free(f);
}

/* Releases that cannot be made are refused whole, and change nothing. */
static void test_refused_releases(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    open_path(f);
    msp_tlmsp_verdict_t v[2] = {MSP_TLMSP_FORWARD, MSP_TLMSP_FORWARD};
    /* nothing held */
    assert_int_equal(release(f, 1, v, NULL), MSP_ERR_ARGUMENT);
    assert_int_equal(release(f, 0, v, NULL), MSP_OK);
    assert_int_equal(f->wire.out.len, 0);
    f->script.v[0] = MSP_TLMSP_HOLD;
    f->script.v[1] = MSP_TLMSP_HOLD;
    send_text(f, 2, "read only here");
    send_text(f, 1, "writable here");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 2);
    /* more than are held; HOLD is no release verdict; m1 may only read context 2; a replacement without data */
    assert_int_equal(release(f, 3, (msp_tlmsp_verdict_t[3]){0}, NULL), MSP_ERR_ARGUMENT);
    v[0] = MSP_TLMSP_HOLD;
    assert_int_equal(release(f, 1, v, NULL), MSP_ERR_ARGUMENT);
    v[0] = MSP_TLMSP_REPLACE;
    assert_int_equal(release(f, 1, v, (const char *[1]){"x"}), MSP_ERR_ARGUMENT);
    v[0] = MSP_TLMSP_DELETE;
    assert_int_equal(release(f, 1, v, NULL), MSP_ERR_ARGUMENT);
    v[0] = MSP_TLMSP_FORWARD;
    v[1] = MSP_TLMSP_REPLACE;
    assert_int_equal(msp_tlmsp_mbox_release(f->net.m[0], 1, 2, v, NULL, NULL, &f->net.c2s[1]), MSP_ERR_ARGUMENT);
    assert_int_equal(f->net.c2s[1].len, 0);
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 2);
    expect_clean(f);
    /* read-only: HOLD only delays; the writable one deleted */
    v[1] = MSP_TLMSP_DELETE;
    assert_int_equal(release(f, 2, v, NULL), MSP_OK);
    expect_at_server(f, 2, "read only here");
    expect_at_server(f, 1, "");
    expect_clean(f);
    close_path(f);
    free(f);
}

/* An alert, close_notify included, waits behind held data; the session closes once it went out. */
static void test_alert_and_close_while_held(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    open_path(f);
    f->script.v[0] = MSP_TLMSP_HOLD;
    send_text(f, 1, "before the alerts");
    assert_int_equal(msp_tlmsp_conn_alert(f->net.client, 1, 1, 90, &f->net.c2s[0]), MSP_OK);
    assert_int_equal(msp_tlmsp_conn_alert(f->net.client, 0, 1, 0, &f->net.c2s[0]), MSP_OK);
    net_pump(&f->net);
    assert_int_equal(f->net.at_server.alerts, 0);
    assert_int_equal(f->net.server_err, MSP_OK);
    expect_at_server(f, 1, "");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 1);
    /* the other direction is not held up: an alert from the server reaches the client */
    assert_int_equal(msp_tlmsp_conn_alert(f->net.server, 2, 1, 90, &f->net.s2c[2]), MSP_OK);
    net_pump(&f->net);
    assert_int_equal(f->net.at_client.alerts, 1);
    msp_tlmsp_verdict_t v[1] = {MSP_TLMSP_REPLACE};
    assert_int_equal(release(f, 1, v, (const char *[1]){"replaced before the alerts"}), MSP_OK);
    expect_at_server(f, 1, "replaced before the alerts");
    assert_int_equal(f->net.at_server.alerts, 2);
    assert_int_equal(f->net.at_server.last_desc, 0);
    assert_int_equal(f->net.server_err, MSP_ERR_CLASS_PEER_ALERT + 0);
    assert_true(msp_tlmsp_conn_closed(f->net.server));
    close_path(f);
    free(f);
}

/* Freed with containers held: nothing leaks (the sanitizer run checks). */
static void test_free_while_held(void **state)
{
    (void)state;
    fixture_t *f = calloc(1, sizeof(*f));
    open_path(f);
    f->script.v[0] = MSP_TLMSP_HOLD;
    f->script.v[1] = MSP_TLMSP_REPLACE;
    f->script.with[1] = "copied";
    send_text(f, 1, "one");
    send_text(f, 1, "two");
    assert_int_equal(msp_tlmsp_mbox_held(f->net.m[0], 1), 1);
    expect_at_server(f, 1, "");
    close_path(f);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_then_forwarded), cmocka_unit_test(test_held_two_second_replaced),
        cmocka_unit_test(test_order_kept),          cmocka_unit_test(test_bound),
        cmocka_unit_test(test_refused_releases),    cmocka_unit_test(test_alert_and_close_while_held),
        cmocka_unit_test(test_free_while_held),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
