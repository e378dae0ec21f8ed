/*
 * The handshake tables (src/tlmsp/conn_states.c and the rows in
 * conn_client.c, conn_server.c, conn_mbox.c): every table is well formed
 * (no duplicate row, every state it names reachable from its initial state,
 * no dead end before the terminal state, which is reached and ends it), and
 * for every role and every state, every message the table has no row for is
 * answered with unexpected_message (10) by the real connection objects,
 * leaving the state as it was. The disallowed messages are computed from the
 * tables, so a row added later is covered without touching this file.
 *
 * Plus the same through the wire for the first state of each role, and the
 * guard macros of src/common/guard.h, and the constructor convention.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../common/guard.h"
#include "conn.h"
#include "msp/error.h"
#include "net.h"

static const hs_table_t *const tables[] = {&client_table, &server_table, &mbox_client_table, &mbox_server_table};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* ---- the tables are well formed ---- */

static void test_rows_sane(void **state)
{
    (void)state;
    for (size_t t = 0; t < NTABLES; t++) {
        const hs_table_t *tb = tables[t];
        assert_true(tb->nrows > 0);
        assert_true(tb->initial < tb->nstates && tb->terminal < tb->nstates);
        for (size_t i = 0; i < tb->nrows; i++) {
            const hs_row_t *r = &tb->rows[i];
            assert_true(r->state < tb->nstates && r->next < tb->nstates && r->alt < tb->nstates);
            assert_non_null(r->fn);
            assert_non_null(r->sends);
            assert_non_null(r->ref);
            assert_true(r->ref[0] != '\0'); /* every row cites its clause */
            assert_true(r->ct == HS_CT_START || r->ct == MSP_TLMSP_CT_HANDSHAKE ||
                        r->ct == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC);
            assert_string_not_equal(hs_type_name(r->ct, r->type), "?");
            /* one row per (state, content type, message type): the lookup finds this one */
            assert_ptr_equal(hs_find(tb, r->state, r->ct, r->type), r);
        }
    }
}

/* From the initial state along next and alt; returns a bitmap of reached states. */
static void reach(const hs_table_t *tb, uint8_t seen[256])
{
    memset(seen, 0, 256);
    seen[tb->initial] = 1;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < tb->nrows; i++) {
            const hs_row_t *r = &tb->rows[i];
            if (seen[r->state] && (!seen[r->next] || !seen[r->alt])) {
                seen[r->next] = seen[r->alt] = 1;
                changed = 1;
            }
        }
    }
}

static void test_reachable(void **state)
{
    (void)state;
    for (size_t t = 0; t < NTABLES; t++) {
        const hs_table_t *tb = tables[t];
        uint8_t seen[256];
        reach(tb, seen);
        assert_true(seen[tb->terminal]);
        for (size_t i = 0; i < tb->nrows; i++) {
            const hs_row_t *r = &tb->rows[i];
            if (!seen[r->state] || !seen[r->next] || !seen[r->alt]) {
                fail_msg("%s: row %zu (%s) is not reachable from %s", tb->role, i, tb->states[r->state],
                         tb->states[tb->initial]);
            }
        }
        /* every reached state but the terminal one has a way on; the terminal one has none */
        for (size_t s = 0; s < tb->nstates; s++) {
            int rows = 0;
            for (size_t i = 0; i < tb->nrows; i++) {
                rows += tb->rows[i].state == s;
            }
            if (s == tb->terminal) {
                assert_int_equal(rows, 0);
            } else if (seen[s] && rows == 0) {
                fail_msg("%s: %s is a dead end", tb->role, tb->states[s]);
            }
        }
    }
}

/* ---- what a table has no row for is unexpected_message, in every state ---- */

typedef struct roles {
    net_t net;
} roles_t;

static int roles_open(void **state)
{
    static roles_t r;
    net_setup_t s;
    memset(&r, 0, sizeof(r));
    net_two_mbox_setup(&s);
    if (net_open(&r.net, &s) != 0) {
        return -1;
    }
    *state = &r;
    return 0;
}

static int roles_close(void **state)
{
    roles_t *r = *state;
    net_close(&r->net);
    return 0;
}

/* The hop that runs a table, and where its state lives. */
static hop_t *hop_of(roles_t *r, size_t t, int **st)
{
    switch (t) {
    case 0:
        *st = &r->net.client->state;
        return &r->net.client->h;
    case 1:
        *st = &r->net.server->state;
        return &r->net.server->h;
    case 2:
        *st = &r->net.m[0]->state_a;
        return &r->net.m[0]->a;
    default:
        *st = &r->net.m[0]->state_b;
        return &r->net.m[0]->b;
    }
}

static void test_unlisted_is_unexpected(void **state)
{
    roles_t *r = *state;
    size_t checked = 0;
    for (size_t t = 0; t < NTABLES; t++) {
        const hs_table_t *tb = tables[t];
        int *st;
        hop_t *h = hop_of(r, t, &st);
        int saved = *st;
        for (size_t s = 0; s < tb->nstates; s++) {
            for (int type = 0; type < 256; type++) {
                if (hs_find(tb, (int)s, MSP_TLMSP_CT_HANDSHAKE, (uint8_t)type) != NULL) {
                    continue;
                }
                uint8_t msg[4] = {(uint8_t)type, 0, 0, 0};
                *st = (int)s;
                int ret = h->ops->handshake(h, (uint8_t)type, msg + 4, 0, msg, sizeof(msg));
                if (ret != MSP_ALERT_UNEXPECTED_MESSAGE || *st != (int)s) {
                    fail_msg("%s in %s: %s (%d) gave %d, state %d", tb->role, tb->states[s],
                             hs_type_name(MSP_TLMSP_CT_HANDSHAKE, (uint8_t)type), type, ret, *st);
                }
                checked++;
            }
            if (hs_find(tb, (int)s, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, 1) == NULL) {
                *st = (int)s;
                assert_int_equal(h->ops->ccs(h), MSP_ALERT_UNEXPECTED_MESSAGE);
                assert_int_equal(*st, (int)s);
                checked++;
            }
        }
        *st = saved;
    }
    /* 4 tables x their states x 256 types, less the rows: thousands, not a handful */
    assert_true(checked > 4 * 9 * 250);
}

/* The start row is the client's only way out of START; msp_tlmsp_conn_start refuses it elsewhere. */
static void test_start_only_at_start(void **state)
{
    roles_t *r = *state;
    msp_buf_t out;
    msp_buf_init(&out, 1 << 16);
    assert_int_equal(r->net.client->state, EP_SERVER_HELLO); /* net_open started it */
    assert_int_equal(msp_tlmsp_conn_start(r->net.client, &out), MSP_ERR_ARGUMENT);
    assert_int_equal(out.len, 0);
    for (size_t s = 0; s < EP_NSTATES; s++) {
        assert_true((hs_find(&client_table, (int)s, HS_CT_START, 0) != NULL) == (s == EP_START));
    }
    msp_buf_free(&out);
}

/* ---- through the wire: a fresh entity refuses a message its first state has no row for ---- */

static const uint8_t server_hello_rec[] = {22, 3, 3, 0, 4, MSP_TLMSP_HT_SERVER_HELLO, 0, 0, 0};
static const uint8_t client_hello_rec[] = {22, 3, 3, 0, 4, MSP_TLMSP_HT_CLIENT_HELLO, 0, 0, 0};
static const uint8_t alert10[] = {21, 3, 3, 0, 2, 2, 10}; /* a plain fatal unexpected_message */

static void test_wire_server(void **state)
{
    (void)state;
    roles_t r;
    net_setup_t s;
    net_two_mbox_setup(&s);
    assert_int_equal(net_open(&r.net, &s), 0);
    msp_buf_t out;
    msp_buf_init(&out, 1 << 16);
    size_t n = sizeof(server_hello_rec);
    assert_int_equal(msp_tlmsp_conn_input(r.net.server, server_hello_rec, &n, &out), MSP_ALERT_UNEXPECTED_MESSAGE);
    assert_int_equal(out.len, sizeof(alert10));
    assert_memory_equal(out.base, alert10, sizeof(alert10));
    assert_true(msp_tlmsp_conn_closed(r.net.server));
    msp_buf_free(&out);
    net_close(&r.net);
}

static void test_wire_client(void **state)
{
    (void)state;
    roles_t r;
    net_setup_t s;
    net_two_mbox_setup(&s);
    assert_int_equal(net_open(&r.net, &s), 0);
    msp_buf_t out;
    msp_buf_init(&out, 1 << 16);
    size_t n = sizeof(client_hello_rec);
    assert_int_equal(msp_tlmsp_conn_input(r.net.client, client_hello_rec, &n, &out), MSP_ALERT_UNEXPECTED_MESSAGE);
    assert_int_equal(out.len, sizeof(alert10));
    assert_memory_equal(out.base, alert10, sizeof(alert10));
    msp_buf_free(&out);
    net_close(&r.net);
}

static void test_wire_mbox(void **state)
{
    (void)state;
    roles_t r;
    net_setup_t s;
    net_two_mbox_setup(&s);
    assert_int_equal(net_open(&r.net, &s), 0);
    msp_buf_t a, b;
    msp_buf_init(&a, 1 << 16);
    msp_buf_init(&b, 1 << 16);
    size_t n = sizeof(server_hello_rec);
    /* a ServerHello from the client's side, before any ClientHello: refused, the alert goes both ways */
    assert_int_equal(msp_tlmsp_mbox_input(r.net.m[0], 0, server_hello_rec, &n, &a, &b), MSP_ALERT_UNEXPECTED_MESSAGE);
    assert_int_equal(a.len, sizeof(alert10));
    assert_memory_equal(a.base, alert10, sizeof(alert10));
    assert_int_equal(r.net.m[0]->state_a, MB_CLIENT_HELLO);
    assert_int_equal(r.net.m[0]->state_b, MB_IDLE);
    assert_null(msp_tlmsp_mbox_next_hop(r.net.m[0]));
    msp_buf_free(&a);
    msp_buf_free(&b);
    net_close(&r.net);
}

/* ---- the guard macros ---- */

static int guard_chain(int a, int b, int *reached)
{
    MSP_GUARD(a);
    *reached = 1;
    MSP_ENSURE(b == 0, MSP_ALERT_DECODE_ERROR);
    *reached = 2;
    return MSP_OK;
}

static int guard_goto(int a, int *cleaned)
{
    int ret;
    MSP_GUARD_GOTO(ret, a, out);
    MSP_ENSURE_GOTO(ret, a == 0, MSP_ERR_INVALID, out);
out:
    (*cleaned)++;
    return ret;
}

static int guard_err(msp_error_t *err, int ok)
{
    MSP_ENSURE_ERR(err, ok, MSP_ERR_LIMIT, "%d is too many", 7);
    return MSP_OK;
}

static void test_guard(void **state)
{
    (void)state;
    int reached = 0;
    assert_int_equal(guard_chain(MSP_ALERT_BAD_CERTIFICATE, 0, &reached), MSP_ALERT_BAD_CERTIFICATE);
    assert_int_equal(reached, 0);
    assert_int_equal(guard_chain(MSP_OK, 1, &reached), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(reached, 1);
    assert_int_equal(guard_chain(MSP_OK, 0, &reached), MSP_OK);
    assert_int_equal(reached, 2);

    int cleaned = 0;
    assert_int_equal(guard_goto(MSP_ERR_NO_MEMORY, &cleaned), MSP_ERR_NO_MEMORY);
    assert_int_equal(guard_goto(MSP_OK, &cleaned), MSP_OK);
    assert_int_equal(cleaned, 2);

    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(guard_err(&err, 1), MSP_OK);
    assert_int_equal(err.code, MSP_OK);
    assert_int_equal(guard_err(&err, 0), MSP_ERR_LIMIT);
    assert_int_equal(err.code, MSP_ERR_LIMIT);
    assert_non_null(strstr(err.where, "test_tlmsp_states.c:"));
    assert_string_equal(err.detail, "7 is too many");
    assert_int_equal(guard_err(NULL, 0), MSP_ERR_LIMIT);
}

/* ---- one constructor convention: int msp_x_new(cfg, &out), *out NULL on failure, a NULL-safe free ---- */

static void test_constructors(void **state)
{
    (void)state;
    msp_tlmsp_conn_t *c = (msp_tlmsp_conn_t *)&c; /* not NULL: the call must clear it */
    assert_int_equal(msp_tlmsp_client_new(NULL, &c), MSP_ERR_ARGUMENT);
    assert_null(c);
    assert_int_equal(msp_tlmsp_client_new(NULL, NULL), MSP_ERR_ARGUMENT);
    msp_tlmsp_endpoint_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    c = (msp_tlmsp_conn_t *)&c;
    assert_int_equal(msp_tlmsp_server_new(&cfg, &c), MSP_ERR_ARGUMENT); /* no random callback, no key */
    assert_null(c);
    msp_tlmsp_mbox_t *m = (msp_tlmsp_mbox_t *)&m;
    assert_int_equal(msp_tlmsp_mbox_new(NULL, &m), MSP_ERR_ARGUMENT);
    assert_null(m);
    msp_tlmsp_conn_free(NULL);
    msp_tlmsp_mbox_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_sane),
        cmocka_unit_test(test_reachable),
        cmocka_unit_test_setup_teardown(test_unlisted_is_unexpected, roles_open, roles_close),
        cmocka_unit_test_setup_teardown(test_start_only_at_start, roles_open, roles_close),
        cmocka_unit_test(test_wire_server),
        cmocka_unit_test(test_wire_client),
        cmocka_unit_test(test_wire_mbox),
        cmocka_unit_test(test_guard),
        cmocka_unit_test(test_constructors),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
