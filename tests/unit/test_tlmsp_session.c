/*
 * In-memory TLMSP sessions (no sockets): client, 0..8 middleboxes, server,
 * for every access (none, read, read-write) with 1 and 4 contexts; data of
 * any length both ways; a middlebox that modifies, deletes and inserts;
 * partial records; an ECDSA server; close_notify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "net.h"

static net_identity_t rsa_server, ec_server, mbox_ids[NET_MAX_MBOX];

static int setup_ids(void **state)
{
    (void)state;
    int bad = net_identity_make(&rsa_server, "server", 1) | net_identity_make(&ec_server, "server-ec", 0);
    for (size_t i = 0; i < NET_MAX_MBOX; i++) {
        char cn[16];
        snprintf(cn, sizeof(cn), "mbox%zu", i + 1);
        bad |= net_identity_make(&mbox_ids[i], cn, 1);
    }
    return bad;
}

static int free_ids(void **state)
{
    (void)state;
    net_identity_free(&rsa_server);
    net_identity_free(&ec_server);
    for (size_t i = 0; i < NET_MAX_MBOX; i++) {
        net_identity_free(&mbox_ids[i]);
    }
    return 0;
}

static void make_setup(net_setup_t *s, size_t n, uint8_t access, size_t nctx)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->server_id = &rsa_server;
    for (size_t c = 1; c <= nctx; c++) {
        s->contexts.present[c] = 1;
    }
    if (nctx >= 2) {
        s->contexts.audit[2] = 1; /* one confirmed (audited) context */
        s->contexts.purpose[1] = (const uint8_t *)"web";
        s->contexts.purpose_len[1] = 3;
    }
    for (size_t i = 0; i < n; i++) {
        s->mbox_id[i] = &mbox_ids[i];
        for (size_t c = 1; c <= nctx; c++) {
            s->access[i][c] = access;
        }
    }
}

static void assert_buf(const msp_buf_t *b, const uint8_t *p, size_t len)
{
    assert_int_equal(b->len, len);
    assert_memory_equal(b->base, p, len);
}

/* Handshake, then each context both ways (the server echoes), then a 40000-byte message (3 containers). */
static void run_session(size_t n, uint8_t access, size_t nctx)
{
    net_setup_t setup;
    net_t net;
    make_setup(&setup, n, access, nctx);
    assert_int_equal(net_open(&net, &setup), 0);
    net.echo = 1;
    net_pump(&net);
    assert_int_equal(net.client_err, 0);
    assert_int_equal(net.server_err, 0);
    assert_true(net_ready(&net));
    msp_buf_t want[5];
    for (size_t c = 1; c <= nctx; c++) {
        msp_buf_init(&want[c], 1u << 20);
        msp_buf_printf(&want[c], "context %zu: hello through %zu middleboxes", c, n);
        assert_int_equal(msp_tlmsp_conn_send(net.client, (uint8_t)c, want[c].base, want[c].len, &net.c2s[0]), MSP_OK);
        net_pump(&net);
    }
    uint8_t *big = malloc(40000);
    for (size_t i = 0; i < 40000; i++) {
        big[i] = (uint8_t)(i * 7 + 3);
    }
    assert_int_equal(msp_tlmsp_conn_send(net.client, 1, big, 40000, &net.c2s[0]), MSP_OK);
    msp_buf_put(&want[1], big, 40000);
    net_pump(&net);
    assert_int_equal(net.client_err, 0);
    assert_int_equal(net.server_err, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(net.mbox_err[i], 0);
        /* a middlebox sees plaintext exactly when it may read (records 8) */
        assert_true(net.seen[i].containers > 0);
        assert_int_equal(net.seen[i].with_plaintext > 0, access != MSP_TLMSP_ACCESS_NONE);
    }
    for (size_t c = 1; c <= nctx; c++) {
        assert_buf(&net.at_server.data[c], want[c].base, want[c].len);
        assert_buf(&net.at_client.data[c], want[c].base, want[c].len);
        msp_buf_free(&want[c]);
    }
    free(big);
    net_close(&net);
}

static void test_matrix(void **state)
{
    (void)state;
    static const size_t counts[] = {0, 1, 2, 3, 8};
    static const uint8_t accesses[] = {MSP_TLMSP_ACCESS_NONE, MSP_TLMSP_ACCESS_R, MSP_TLMSP_ACCESS_RW};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        for (size_t a = 0; a < 3; a++) {
            for (size_t ctx = 1; ctx <= 4; ctx += 3) {
                if (counts[i] == 0 && a > 0) {
                    continue; /* access means nothing without a middlebox */
                }
                print_message("  %zu middleboxes, access %u, %zu contexts\n", counts[i], accesses[a], ctx);
                run_session(counts[i], accesses[a], ctx);
            }
        }
    }
}

static void open_ready(net_t *net, net_setup_t *setup)
{
    assert_int_equal(net_open(net, setup), 0);
    net_pump(net);
    assert_true(net_ready(net));
}

static void test_modify(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 2, MSP_TLMSP_ACCESS_RW, 4);
    open_ready(&net, &setup);
    net.seen[1].match = "client-ping";
    net.seen[1].with = "PING";
    net.echo = 1;
    for (uint8_t c = 1; c <= 2; c++) { /* unconfirmed and confirmed (audit chain) */
        assert_int_equal(msp_tlmsp_conn_send(net.client, c, (const uint8_t *)"client-ping", 11, &net.c2s[0]), MSP_OK);
        net_pump(&net);
        assert_int_equal(net.server_err, 0);
        assert_int_equal(net.client_err, 0);
        /* m2 changed it on the way out; the echo passes m2 again, unchanged */
        assert_buf(&net.at_client.data[c], (const uint8_t *)"PING", 4);
    }
    net_close(&net);
}

static void test_delete_then_more(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 3, MSP_TLMSP_ACCESS_RW, 4);
    open_ready(&net, &setup);
    net.seen[1].match = "drop-me";
    net.seen[1].delete_match = 1;
    for (uint8_t c = 1; c <= 2; c++) {
        msp_tlmsp_conn_send(net.client, c, (const uint8_t *)"drop-me", 7, &net.c2s[0]);
        msp_tlmsp_conn_send(net.client, c, (const uint8_t *)"keep", 4, &net.c2s[0]);
        net_pump(&net);
        assert_int_equal(net.server_err, 0);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(net.mbox_err[i], 0);
        }
        /* the delete container carries no data; the sequence numbers still line up for what follows (6.6) */
        assert_buf(&net.at_server.data[c], (const uint8_t *)"keep", 4);
    }
    net_close(&net);
}

static void test_insert(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 3, MSP_TLMSP_ACCESS_RW, 4);
    open_ready(&net, &setup);
    for (uint8_t c = 1; c <= 2; c++) {
        assert_int_equal(msp_tlmsp_mbox_send(net.m[1], 0, c, (const uint8_t *)"to-client", 9, &net.s2c[1]), MSP_OK);
        assert_int_equal(msp_tlmsp_mbox_send(net.m[1], 1, c, (const uint8_t *)"to-server", 9, &net.c2s[2]), MSP_OK);
        net_pump(&net);
        assert_int_equal(net.client_err, 0);
        assert_int_equal(net.server_err, 0);
        assert_buf(&net.at_client.data[c], (const uint8_t *)"to-client", 9);
        assert_buf(&net.at_server.data[c], (const uint8_t *)"to-server", 9);
        /* and the endpoints' own traffic still verifies after an insertion (6.4) */
        msp_tlmsp_conn_send(net.client, c, (const uint8_t *)"after", 5, &net.c2s[0]);
        net_pump(&net);
        assert_int_equal(net.server_err, 0);
        assert_buf(&net.at_server.data[c], (const uint8_t *)"to-serverafter", 14);
    }
    /* a read-only middlebox may not insert */
    net_close(&net);
    make_setup(&setup, 1, MSP_TLMSP_ACCESS_R, 1);
    open_ready(&net, &setup);
    assert_int_equal(msp_tlmsp_mbox_send(net.m[0], 1, 1, (const uint8_t *)"x", 1, &net.c2s[1]), MSP_ERR_ARGUMENT);
    net_close(&net);
}

static void test_partial_records(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 2, MSP_TLMSP_ACCESS_R, 4);
    assert_int_equal(net_open(&net, &setup), 0);
    net.chunk = 7;
    net.echo = 1;
    net_pump(&net);
    assert_true(net_ready(&net));
    msp_tlmsp_conn_send(net.client, 3, (const uint8_t *)"in pieces", 9, &net.c2s[0]);
    net_pump(&net);
    assert_buf(&net.at_client.data[3], (const uint8_t *)"in pieces", 9);
    net_close(&net);
}

static void test_ecdsa_server(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 1, MSP_TLMSP_ACCESS_RW, 1);
    setup.server_id = &ec_server;
    open_ready(&net, &setup);
    net.echo = 1;
    msp_tlmsp_conn_send(net.client, 1, (const uint8_t *)"ecdsa", 5, &net.c2s[0]);
    net_pump(&net);
    assert_buf(&net.at_client.data[1], (const uint8_t *)"ecdsa", 5);
    net_close(&net);
}

static void test_close_notify(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 2, MSP_TLMSP_ACCESS_NONE, 1);
    open_ready(&net, &setup);
    assert_int_equal(msp_tlmsp_conn_alert(net.client, 0, 1, 0, &net.c2s[0]), MSP_OK);
    net_pump(&net);
    assert_int_equal(net.at_server.alerts, 1);
    assert_int_equal(net.at_server.last_desc, 0);
    assert_int_equal(net.server_err, MSP_ERR_CLASS_PEER_ALERT + 0);
    assert_true(msp_tlmsp_conn_closed(net.server));
    net_close(&net);
}

/* half_close: the client closes its direction; the server still answers through the middleboxes, then closes. */
static void test_half_close(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 2, MSP_TLMSP_ACCESS_R, 1);
    setup.half_close = 1;
    open_ready(&net, &setup);
    assert_int_equal(msp_tlmsp_conn_send(net.client, 1, (const uint8_t *)"request", 7, &net.c2s[0]), MSP_OK);
    assert_int_equal(msp_tlmsp_conn_alert(net.client, 0, 1, 0, &net.c2s[0]), MSP_OK);
    /* our direction is closed: no more data from us */
    assert_int_equal(msp_tlmsp_conn_send(net.client, 1, (const uint8_t *)"late", 4, &net.c2s[0]), MSP_ERR_ARGUMENT);
    net_pump(&net);
    assert_int_equal(net.server_err, MSP_OK);
    assert_int_equal(net.at_server.alerts, 1);
    assert_int_equal(net.at_server.last_desc, 0);
    assert_true(msp_tlmsp_conn_peer_closed(net.server));
    assert_false(msp_tlmsp_conn_peer_closed(net.client));
    assert_buf(&net.at_server.data[1], (const uint8_t *)"request", 7);
    assert_int_equal(msp_tlmsp_conn_send(net.server, 1, (const uint8_t *)"answer", 6, &net.s2c[setup.n]), MSP_OK);
    net_pump(&net);
    assert_buf(&net.at_client.data[1], (const uint8_t *)"answer", 6);
    assert_int_equal(net.client_err, MSP_OK);
    for (size_t i = 0; i < setup.n; i++) {
        assert_int_equal(net.mbox_err[i], MSP_OK);
    }
    /* the server's close_notify ends the session for the client, which closed first */
    assert_int_equal(msp_tlmsp_conn_alert(net.server, 0, 1, 0, &net.s2c[setup.n]), MSP_OK);
    net_pump(&net);
    assert_int_equal(net.client_err, MSP_ERR_CLASS_PEER_ALERT + 0);
    assert_true(msp_tlmsp_conn_peer_closed(net.client));
    net_close(&net);
}

/* half_close, the server first, no middlebox: the client still sends after the server's close_notify. */
static void test_half_close_server_first(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 0, MSP_TLMSP_ACCESS_NONE, 1);
    setup.half_close = 1;
    open_ready(&net, &setup);
    assert_int_equal(msp_tlmsp_conn_alert(net.server, 0, 1, 0, &net.s2c[0]), MSP_OK);
    net_pump(&net);
    assert_int_equal(net.client_err, MSP_OK);
    assert_true(msp_tlmsp_conn_peer_closed(net.client));
    assert_true(msp_tlmsp_conn_ready(net.client));
    assert_int_equal(msp_tlmsp_conn_send(net.client, 1, (const uint8_t *)"more", 4, &net.c2s[0]), MSP_OK);
    assert_int_equal(msp_tlmsp_conn_alert(net.client, 0, 1, 0, &net.c2s[0]), MSP_OK);
    net_pump(&net);
    assert_buf(&net.at_server.data[1], (const uint8_t *)"more", 4);
    assert_int_equal(net.server_err, MSP_ERR_CLASS_PEER_ALERT + 0);
    net_close(&net);
}

static void test_unknown_context(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup, 1, MSP_TLMSP_ACCESS_RW, 1);
    open_ready(&net, &setup);
    assert_int_equal(msp_tlmsp_conn_send(net.client, 9, (const uint8_t *)"x", 1, &net.c2s[0]),
                     MSP_ALERT_UNKNOWN_CONTEXT);
    assert_int_equal(net.c2s[0].len, 0);
    net_close(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),           cmocka_unit_test(test_modify),
        cmocka_unit_test(test_delete_then_more), cmocka_unit_test(test_insert),
        cmocka_unit_test(test_partial_records),  cmocka_unit_test(test_ecdsa_server),
        cmocka_unit_test(test_close_notify),     cmocka_unit_test(test_unknown_context),
        cmocka_unit_test(test_half_close),       cmocka_unit_test(test_half_close_server_first),
    };
    return cmocka_run_group_tests(tests, setup_ids, free_ids);
}
