/*
 * Stream mode's sessions (msp/tlmsp_stream.h) in one libev loop over
 * socketpairs: a client gateway and a server gateway, each with a plain
 * side the test plays the application on. Half-close both ways (the answer
 * travels after the request's EOF), back-pressure (a server application
 * that does not read stops the client gateway from reading its
 * application, and everything arrives once it reads), HTTP framing, a
 * plain side attached late, the idle time-out of the driver under a session,
 * and half-close through the endpoint driver (msp_io_ep) itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "msp/error.h"
#include "msp/tlmsp_io.h"
#include "msp/tlmsp_setup.h"
#include "msp/tlmsp_stream.h"
#include "net.h"

#define STEPS_MAX 200000 /* loop turns before a test gives up (a stall, not a time limit) */

static net_identity_t server_id;
static const msp_io_timeouts_t *rig_timeouts; /* the gateways' time-outs; NULL: the defaults */

typedef struct end {
    msp_tlmsp_stream_t *s;
    int ready, closed, code;
    char detail[sizeof(((msp_error_t *)0)->detail)];
} end_t;

typedef struct rig {
    struct ev_loop *loop;
    msp_tlmsp_context_list_t contexts;
    msp_tlmsp_mbox_list_t none;
    msp_tlmsp_endpoint_cfg_t ec;
    end_t c, s;
    int app_c, app_s; /* the applications' ends of the plain sides */
    int gw_s;         /* the server gateway's plain end until it is attached */
} rig_t;

static void on_ready(void *user, msp_tlmsp_stream_t *s)
{
    (void)s;
    ((end_t *)user)->ready++;
}

static void on_closed(void *user, msp_tlmsp_stream_t *s, const msp_error_t *err)
{
    (void)s;
    end_t *e = user;
    e->closed++;
    e->code = err->code;
    snprintf(e->detail, sizeof(e->detail), "%s", err->detail);
}

static void pair(int fd[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    for (int i = 0; i < 2; i++) {
        int small = 64 << 10; /* small kernel buffers: back-pressure shows sooner */
        setsockopt(fd[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(fd[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        assert_int_equal(fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK), 0);
    }
}

static msp_tlmsp_stream_t *stream(rig_t *r, end_t *e, uint8_t role, int http, size_t high_water)
{
    msp_tlmsp_stream_cfg_t sc = {.loop = r->loop,
                                 .role = role,
                                 .engine = &r->ec,
                                 .ctx = 1,
                                 .http = http,
                                 .header_ctx = 1,
                                 .body_ctx = 2,
                                 .high_water = high_water,
                                 .timeouts = rig_timeouts,
                                 .ev = {e, on_ready, on_closed}};
    msp_tlmsp_stream_t *s = NULL;
    assert_int_equal(msp_tlmsp_stream_new(&sc, &s), MSP_OK);
    return s;
}

/* Client and server gateways joined by a socketpair; the server's plain side is attached when attach_now. */
static void rig_open(rig_t *r, int http, size_t high_water, int attach_now)
{
    memset(r, 0, sizeof(*r));
    r->loop = ev_loop_new(EVFLAG_AUTO);
    r->contexts.present[1] = r->contexts.present[2] = 1;
    r->ec.random = msp_tlmsp_setup_random;
    r->ec.client_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://client", 14};
    r->ec.server_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://server:1", 16};
    r->ec.contexts = &r->contexts;
    r->ec.middleboxes = &r->none;
    r->ec.identity = (msp_tlmsp_identity_t){server_id.key, server_id.ders, server_id.lens, 1};
    r->c.s = stream(r, &r->c, MSP_TLMSP_ID_CLIENT, http, high_water);
    r->s.s = stream(r, &r->s, MSP_TLMSP_ID_SERVER, http, high_water);
    int t[2], pc[2], ps[2];
    pair(t);
    pair(pc);
    pair(ps);
    assert_int_equal(msp_tlmsp_stream_attach_tlmsp(r->s.s, t[1]), MSP_OK);
    assert_int_equal(msp_tlmsp_stream_attach_tlmsp(r->c.s, t[0]), MSP_OK);
    assert_int_equal(msp_tlmsp_stream_attach_plain(r->c.s, pc[1], pc[1]), MSP_OK);
    r->app_c = pc[0];
    r->app_s = ps[0];
    r->gw_s = ps[1];
    if (attach_now) {
        assert_int_equal(msp_tlmsp_stream_attach_plain(r->s.s, ps[1], ps[1]), MSP_OK);
        r->gw_s = -1;
    }
}

static void rig_close(rig_t *r)
{
    msp_tlmsp_stream_free(r->c.s);
    msp_tlmsp_stream_free(r->s.s);
    close(r->app_c);
    close(r->app_s);
    if (r->gw_s >= 0) {
        close(r->gw_s);
    }
    ev_loop_destroy(r->loop);
}

/* Reads what is there into b; returns 1 at EOF. */
static int drain(int fd, msp_buf_t *b)
{
    uint8_t tmp[65536];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n > 0) {
            msp_buf_put(b, tmp, (size_t)n);
            continue;
        }
        return n == 0;
    }
}

static void turn(rig_t *r)
{
    ev_run(r->loop, EVRUN_NOWAIT);
}

static void test_half_close_both_ways(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 0, 0, 1);
    assert_int_equal(write(r.app_c, "request", 7), 7);
    assert_int_equal(shutdown(r.app_c, SHUT_WR), 0);
    msp_buf_t at_s, at_c;
    msp_buf_init(&at_s, 1 << 20);
    msp_buf_init(&at_c, 1 << 20);
    int eof_s = 0, eof_c = 0;
    for (int i = 0; i < STEPS_MAX && !eof_s; i++) {
        turn(&r);
        eof_s = drain(r.app_s, &at_s);
    }
    /* the server's application saw the request and its end; both sessions are still open */
    assert_true(eof_s);
    assert_int_equal(at_s.len, 7);
    assert_memory_equal(at_s.base, "request", 7);
    assert_int_equal(r.c.ready, 1);
    assert_int_equal(r.s.ready, 1);
    assert_int_equal(r.c.closed + r.s.closed, 0);
    /* its answer goes back on the half still open */
    assert_int_equal(write(r.app_s, "answer", 6), 6);
    assert_int_equal(shutdown(r.app_s, SHUT_WR), 0);
    for (int i = 0; i < STEPS_MAX && !(eof_c && r.c.closed && r.s.closed); i++) {
        turn(&r);
        eof_c = eof_c || drain(r.app_c, &at_c);
    }
    assert_true(eof_c);
    assert_int_equal(at_c.len, 6);
    assert_memory_equal(at_c.base, "answer", 6);
    assert_int_equal(r.c.closed, 1);
    assert_int_equal(r.s.closed, 1);
    assert_int_equal(r.c.code, MSP_OK);
    assert_int_equal(r.s.code, MSP_OK);
    assert_int_equal(msp_tlmsp_stream_bytes(r.c.s, 1), 7);
    assert_int_equal(msp_tlmsp_stream_bytes(r.c.s, 0), 6);
    msp_buf_free(&at_s);
    msp_buf_free(&at_c);
    rig_close(&r);
}

/* A server application that does not read: the client gateway stops reading its application. */
static void test_back_pressure(void **state)
{
    (void)state;
    const size_t hw = 64 << 10;
    rig_t r;
    rig_open(&r, 0, hw, 1);
    static uint8_t chunk[32768];
    uint64_t written = 0;
    int idle = 0;
    for (int i = 0; i < STEPS_MAX && idle < 2000; i++) {
        for (size_t k = 0; k < sizeof(chunk); k++) {
            chunk[k] = (uint8_t)((written + k) * 13 + 5);
        }
        ssize_t n = write(r.app_c, chunk, sizeof(chunk));
        written += n > 0 ? (uint64_t)n : 0;
        uint64_t before = msp_tlmsp_stream_bytes(r.c.s, 1) + msp_tlmsp_stream_bytes(r.s.s, 0);
        turn(&r);
        uint64_t after = msp_tlmsp_stream_bytes(r.c.s, 1) + msp_tlmsp_stream_bytes(r.s.s, 0);
        idle = n <= 0 && before == after ? idle + 1 : 0;
    }
    /* stuck, not failed: what the gateways took is bounded by their marks and the kernel's buffers */
    assert_int_equal(idle, 2000);
    assert_int_equal(r.c.closed + r.s.closed, 0);
    assert_true(msp_tlmsp_stream_bytes(r.c.s, 1) < (4u << 20));
    assert_true(written < (8u << 20));
    /* the server's application reads: everything arrives, in order */
    assert_int_equal(shutdown(r.app_c, SHUT_WR), 0);
    msp_buf_t got;
    msp_buf_init(&got, 64u << 20);
    int eof = 0;
    for (int i = 0; i < STEPS_MAX && !eof; i++) {
        turn(&r);
        eof = drain(r.app_s, &got);
    }
    assert_true(eof);
    assert_int_equal(got.len, written);
    for (size_t k = 0; k < got.len; k++) {
        if (got.base[k] != (uint8_t)(k * 13 + 5)) {
            fail_msg("byte %zu differs", k);
        }
    }
    msp_buf_free(&got);
    rig_close(&r);
}

/* HTTP framing on the way (which context carries what: tlmsp_stream.sh, through a middlebox's eyes); the server's
 * plain side comes after the handshake and gets what waited for it. */
static void test_http_contexts_and_late_backend(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, 1, 0, 0);
    const char *req = "POST /up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(write(r.app_c, req, strlen(req)), (ssize_t)strlen(req));
    for (int i = 0; i < STEPS_MAX && r.s.ready == 0; i++) {
        turn(&r);
    }
    assert_int_equal(r.s.ready, 1);
    for (int i = 0; i < 1000; i++) {
        turn(&r); /* the request arrives and waits for the backend */
    }
    assert_int_equal(msp_tlmsp_stream_bytes(r.s.s, 0), strlen(req));
    assert_int_equal(msp_tlmsp_stream_attach_plain(r.s.s, r.gw_s, r.gw_s), MSP_OK);
    r.gw_s = -1;
    msp_buf_t got;
    msp_buf_init(&got, 1 << 20);
    for (int i = 0; i < STEPS_MAX && got.len < strlen(req); i++) {
        turn(&r);
        drain(r.app_s, &got);
    }
    assert_int_equal(got.len, strlen(req));
    assert_memory_equal(got.base, req, strlen(req));
    msp_buf_free(&got);
    rig_close(&r);
}

/* A TLMSP peer that never answers: the handshake timer ends the session (its length is not asserted). */
static void test_handshake_timeout(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    msp_tlmsp_context_list_t contexts = {0};
    msp_tlmsp_mbox_list_t none = {0};
    contexts.present[1] = 1;
    msp_tlmsp_endpoint_cfg_t ec = {0};
    ec.random = msp_tlmsp_setup_random;
    ec.client_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://client", 14};
    ec.server_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://server:1", 16};
    ec.contexts = &contexts;
    ec.middleboxes = &none;
    end_t e = {0};
    msp_tlmsp_stream_cfg_t sc = {.loop = loop,
                                 .role = MSP_TLMSP_ID_CLIENT,
                                 .engine = &ec,
                                 .ctx = 1,
                                 .handshake_timeout = 0.01,
                                 .ev = {&e, on_ready, on_closed}};
    assert_int_equal(msp_tlmsp_stream_new(&sc, &e.s), MSP_OK);
    int t[2];
    pair(t);
    assert_int_equal(msp_tlmsp_stream_attach_tlmsp(e.s, t[0]), MSP_OK);
    while (e.closed == 0) {
        ev_run(loop, EVRUN_ONCE);
    }
    assert_int_equal(e.code, MSP_ERR_IO);
    assert_int_equal(e.ready, 0);
    msp_tlmsp_stream_free(e.s);
    close(t[1]);
    ev_loop_destroy(loop);
}

/* Nobody writes after the handshake: each gateway's driver ends its session at the idle time-out, and says so. */
static void test_idle_timeout(void **state)
{
    (void)state;
    msp_io_timeouts_t t;
    msp_io_timeouts_default(&t);
    t.idle = 0.05;
    rig_timeouts = &t;
    rig_t r;
    rig_open(&r, 0, 0, 1);
    rig_timeouts = NULL;
    for (int i = 0; i < STEPS_MAX && r.c.ready + r.s.ready < 2; i++) {
        turn(&r);
    }
    assert_int_equal(r.c.ready + r.s.ready, 2);
    while (r.c.closed == 0 || r.s.closed == 0) {
        ev_run(r.loop, EVRUN_ONCE); /* the timers wake the loop */
    }
    assert_int_equal(r.c.code, MSP_ERR_IO);
    assert_non_null(strstr(r.c.detail, "idle timed out"));
    /* the server's end saw the client's close_notify (or timed out itself): it ended either way */
    assert_int_equal(r.s.closed, 1);
    rig_close(&r);
}

/* ---- half-close through msp_io_ep with two bare connections ---- */

typedef struct hc_end {
    msp_io_ep_t *ep;
    msp_buf_t got;
    int peer_closed, closed, code;
    int sent_after_peer_closed; /* the server answered after the client's close_notify */
} hc_end_t;

static void hc_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    msp_buf_put(&((hc_end_t *)user)->got, p, len);
}

static void hc_client_ready(void *user, msp_io_ep_t *ep)
{
    (void)user;
    assert_int_equal(msp_io_ep_send(ep, 1, (const uint8_t *)"ping", 4), MSP_OK);
    assert_int_equal(msp_io_ep_alert(ep, 0, 1, 0), MSP_OK); /* our direction ends; the answer still comes */
}

static void hc_peer_closed(void *user, msp_io_ep_t *ep)
{
    hc_end_t *e = user;
    e->peer_closed++;
    if (msp_io_ep_send(ep, 1, (const uint8_t *)"pong", 4) == MSP_OK) {
        e->sent_after_peer_closed = 1;
    }
    msp_io_ep_alert(ep, 0, 1, 0);
}

static void hc_closed(void *user, msp_io_ep_t *ep, int err)
{
    hc_end_t *e = user;
    (void)ep;
    e->closed++;
    e->code = err;
}

static void test_io_ep_half_close(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    msp_tlmsp_context_list_t contexts = {0};
    msp_tlmsp_mbox_list_t none = {0};
    contexts.present[1] = 1;
    hc_end_t c = {0}, s = {0};
    msp_buf_init(&c.got, 1 << 16);
    msp_buf_init(&s.got, 1 << 16);
    msp_tlmsp_endpoint_cfg_t ec = {0};
    ec.random = msp_tlmsp_setup_random;
    ec.client_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://client", 14};
    ec.server_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://server:1", 16};
    ec.contexts = &contexts;
    ec.middleboxes = &none;
    ec.identity = (msp_tlmsp_identity_t){server_id.key, server_id.ders, server_id.lens, 1};
    ec.half_close = 1;
    msp_tlmsp_conn_t *cc, *sc;
    ec.events = (msp_tlmsp_events_t){&c, hc_data, NULL};
    assert_int_equal(msp_tlmsp_conn_new(MSP_TLMSP_ID_CLIENT, &ec, &cc), MSP_OK);
    ec.events = (msp_tlmsp_events_t){&s, hc_data, NULL};
    assert_int_equal(msp_tlmsp_conn_new(MSP_TLMSP_ID_SERVER, &ec, &sc), MSP_OK);
    int t[2];
    pair(t);
    msp_io_ep_events_t sev = {&s, NULL, hc_closed, NULL};
    msp_io_ep_events_t cev = {&c, hc_client_ready, hc_closed, NULL};
    assert_int_equal(msp_io_ep_new(loop, t[1], sc, &sev, &s.ep), MSP_OK);
    assert_int_equal(msp_io_ep_new(loop, t[0], cc, &cev, &c.ep), MSP_OK);
    msp_io_ep_set_peer_closed(s.ep, hc_peer_closed);
    msp_io_ep_set_peer_closed(c.ep, hc_peer_closed);
    for (int i = 0; i < STEPS_MAX && (c.closed == 0 || s.closed == 0); i++) {
        ev_run(loop, EVRUN_NOWAIT);
    }
    assert_int_equal(s.peer_closed, 1);
    assert_int_equal(s.sent_after_peer_closed, 1);
    assert_int_equal(s.got.len, 4);
    assert_memory_equal(s.got.base, "ping", 4);
    assert_int_equal(c.got.len, 4);
    assert_memory_equal(c.got.base, "pong", 4);
    assert_int_equal(c.closed, 1);
    assert_int_equal(s.closed, 1);
    assert_int_equal(c.code, MSP_OK);
    assert_int_equal(s.code, MSP_OK);
    assert_true(msp_io_ep_peer_closed(c.ep));
    msp_io_ep_free(c.ep);
    msp_io_ep_free(s.ep);
    msp_buf_free(&c.got);
    msp_buf_free(&s.got);
    ev_loop_destroy(loop);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return net_identity_make(&server_id, "server", 0);
}

static int teardown(void **state)
{
    (void)state;
    net_identity_free(&server_id);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_close_both_ways),
        cmocka_unit_test(test_back_pressure),
        cmocka_unit_test(test_http_contexts_and_late_backend),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_io_ep_half_close),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
