/*
 * A container's envelope (tlmsp-records.md 4.2, 8, 10.2): what every receiver
 * checks before and beside the MACs. A middlebox with write access writes a
 * container of its own, through the code that writes its honest ones, from
 * the keys and sequence numbers it really has; exactly one thing is wrong,
 * so only the envelope check stands between it and the endpoint's
 * application.
 *
 * Path and contexts as in test_tlmsp_forge: client -- m1 -- m2 -- server;
 * context 1 unconfirmed (m1 rw, m2 r), context 2 confirmed (m1 r, m2 rw).
 *
 * - m2 inserts "EVIL!" in context 2 without the additional-forwarding-MACs
 *   flag (0x1000) and its nAF tail, as if the context were unconfirmed:
 *   illegal_parameter (47) from the server.
 * - m1 inserts "EVIL!" in context 1 with the flag and an empty nAF tail, as
 *   if the context were confirmed: illegal_parameter (47) from the client.
 * - m2 sends an alert in context 2 whose plaintext is not level |
 *   description (3, 1 or 0 bytes): decode_error (50) from the server.
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

/* One container written by a middlebox toward an endpoint. */
typedef struct write {
    size_t mbox;   /* 0: m1, 1: m2 */
    int to_server; /* else toward the client */
    uint8_t type;  /* MSP_TLMSP_CT_APPLICATION_DATA or MSP_TLMSP_CT_ALERT */
    uint8_t ctx;
    const uint8_t *p;
    size_t len;
    int flip_audit; /* the lie: written as if ctx's audit mode were the other one */
} write_t;

static const uint8_t evil[5] = {'E', 'V', 'I', 'L', '!'};

/* The session, ready; then the middlebox writes w with its own session state (as it inserts, records 7.1, 7.5). */
static void run(net_t *net, const write_t *w)
{
    net_setup_t setup;
    net_two_mbox_setup(&setup);
    assert_int_equal(setup.access[w->mbox][w->ctx], MSP_TLMSP_ACCESS_RW);
    assert_int_equal(net_open(net, &setup), 0);
    net_pump(net);
    assert_true(net_ready(net));
    msp_tlmsp_mbox_t *m = net->m[w->mbox];
    hop_t *h = w->to_server ? &m->b : &m->a;
    uint8_t *audit = &m->s.ctx.audit[w->ctx], keep = *audit;
    if (w->flip_audit) {
        *audit = !keep;
    }
    h->out = w->to_server ? &net->c2s[w->mbox + 1] : &net->s2c[w->mbox];
    assert_int_equal(data_send(h, w->type, w->ctx, w->p, w->len), MSP_OK);
    h->out = NULL;
    *audit = keep;
    net_pump(net);
}

/* The endpoint w goes to must send `alert` and nobody else; nothing reaches either application in w->ctx. */
static void expect_alert(const write_t *w, int alert, const char *what)
{
    net_t net;
    run(&net, w);
    int *detector = w->to_server ? &net.server_err : &net.client_err;
    int *other = w->to_server ? &net.client_err : &net.server_err;
    net_sink_t *at = w->to_server ? &net.at_server : &net.at_client;
    net_sink_t *at_other = w->to_server ? &net.at_client : &net.at_server;
    const char *name = w->to_server ? "server" : "client";
    if (*detector != alert) {
        print_message("m%zu %s: want %s (%d) from the %s; got client %#x m1 %#x m2 %#x server %#x, the %s released "
                      "%zu bytes and %d alerts\n",
                      w->mbox + 1, what, msp_error_name(alert), alert, name, (unsigned)net.client_err,
                      (unsigned)net.mbox_err[0], (unsigned)net.mbox_err[1], (unsigned)net.server_err, name,
                      at->data[w->ctx].len, at->alerts);
    }
    /* the endpoint noticed, alone; its alert reached the other endpoint; nothing was released */
    assert_int_equal(*detector, alert);
    assert_int_equal(net.mbox_err[0], MSP_OK);
    assert_int_equal(net.mbox_err[1], MSP_OK);
    assert_int_equal(*other, MSP_ERR_CLASS_PEER_ALERT + alert);
    assert_int_equal(at_other->last_desc, alert);
    assert_int_equal(at->data[w->ctx].len, 0);
    assert_int_equal(at_other->data[w->ctx].len, 0);
    assert_int_equal(at->alerts, 0);
    print_message("m%zu %s: the %s says %s (%d)\n", w->mbox + 1, what, name, msp_error_name(alert), alert);
    net_close(&net);
}

/* The writing itself is right: without the lie the endpoint takes the container. */
static void expect_accepted(const write_t *w)
{
    net_t net;
    run(&net, w);
    net_sink_t *at = w->to_server ? &net.at_server : &net.at_client;
    assert_int_equal(net.client_err | net.mbox_err[0] | net.mbox_err[1] | net.server_err, MSP_OK);
    if (w->type == MSP_TLMSP_CT_ALERT) {
        assert_int_equal(at->alerts, 1);
        assert_int_equal(at->last_ctx, w->ctx);
        assert_int_equal(at->last_level, w->p[0]);
        assert_int_equal(at->last_desc, w->p[1]);
    } else {
        assert_int_equal(at->data[w->ctx].len, w->len);
        assert_memory_equal(at->data[w->ctx].base, w->p, w->len);
    }
    net_close(&net);
}

static const uint8_t warning[3] = {1, 90, 0}; /* user_canceled; the third byte only for the lie */

static void test_control(void **state)
{
    (void)state;
    write_t m2_data = {1, 1, MSP_TLMSP_CT_APPLICATION_DATA, 2, evil, sizeof(evil), 0};
    write_t m1_data = {0, 0, MSP_TLMSP_CT_APPLICATION_DATA, 1, evil, sizeof(evil), 0};
    write_t m2_alert = {1, 1, MSP_TLMSP_CT_ALERT, 2, warning, 2, 0};
    expect_accepted(&m2_data);
    expect_accepted(&m1_data);
    expect_accepted(&m2_alert);
}

/* Records 4.2: flag 0x1000 iff the context is confirmed. */
static void test_audit_flag_missing(void **state)
{
    (void)state;
    write_t w = {1, 1, MSP_TLMSP_CT_APPLICATION_DATA, 2, evil, sizeof(evil), 1};
    expect_alert(&w, MSP_ALERT_ILLEGAL_PARAMETER, "inserts in confirmed context 2 without flag 0x1000");
}

static void test_audit_flag_unconfirmed(void **state)
{
    (void)state;
    write_t w = {0, 0, MSP_TLMSP_CT_APPLICATION_DATA, 1, evil, sizeof(evil), 1};
    expect_alert(&w, MSP_ALERT_ILLEGAL_PARAMETER, "inserts in unconfirmed context 1 with flag 0x1000");
}

/* Records 10.2: an alert's plaintext is exactly level | description. */
static void test_alert_plaintext_length(void **state)
{
    (void)state;
    static const size_t lens[] = {3, 1, 0};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char what[64];
        write_t w = {1, 1, MSP_TLMSP_CT_ALERT, 2, warning, lens[i], 0};
        snprintf(what, sizeof(what), "sends an alert of %zu bytes in context 2", lens[i]);
        expect_alert(&w, MSP_ALERT_DECODE_ERROR, what);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control),
        cmocka_unit_test(test_audit_flag_missing),
        cmocka_unit_test(test_audit_flag_unconfirmed),
        cmocka_unit_test(test_alert_plaintext_length),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
