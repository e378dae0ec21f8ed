/*
 * The middlebox driver's pending connect (msp/tlmsp_io.h): a client, a
 * middlebox and a server over socketpairs in one libev loop. The connect
 * event answers MSP_IO_MB_PENDING and the test finishes it as a program
 * whose name lookup ended would: msp_io_mb_connected, msp_io_mb_route_failed,
 * or the session ending first (the closed event, with msp_io_mb_connecting
 * still true: the program's cue to drop its lookup).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "msp/error.h"
#include "msp/tlmsp.h"
#include "msp/tlmsp_io.h"
#include "net.h"

#define STEPS_MAX 100000 /* loop iterations before a test gives up (a stall, not a time limit) */

typedef struct rig {
    struct ev_loop *loop;
    net_t net;
    msp_io_ep_t *client, *server;
    msp_io_mb_t *mb;
    int server_fd;        /* the middlebox's end toward the server, handed over by the test */
    int answer;           /* what the connect event returns: MSP_IO_MB_PENDING or -1 */
    int connects;         /* connect events */
    char next[64];        /* the address the connect event was given */
    int closes;           /* the middlebox's closed events */
    int pending_at_close; /* msp_io_mb_connecting in the closed event */
    int keep_mb;          /* the closed event leaves mb to the test */
    int mb_err;           /* what the middlebox's closed event reported */
    int client_closed;    /* the client's closed event ran */
    int client_err;       /* ... and what it reported */
    int client_ready, server_ready;
    int stalled; /* the guard fired: nothing moved for 10 s */
    ev_timer guard;
} rig_t;

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int mb_connect(void *user, const msp_tlmsp_address_t *next)
{
    rig_t *r = user;
    r->connects++;
    snprintf(r->next, sizeof(r->next), "%.*s", (int)next->len, (const char *)next->bytes);
    return r->answer;
}

static void mb_closed(void *user, msp_io_mb_t *mb, int err)
{
    rig_t *r = user;
    r->closes++;
    r->mb_err = err;
    r->pending_at_close = msp_io_mb_connecting(mb);
    if (!r->keep_mb) {
        r->mb = NULL;
        msp_io_mb_free(mb);
    }
}

static void ep_ready(void *user, msp_io_ep_t *ep)
{
    rig_t *r = user;
    if (ep == r->client) {
        r->client_ready = 1;
    } else {
        r->server_ready = 1;
    }
}

static void ep_closed(void *user, msp_io_ep_t *ep, int err)
{
    rig_t *r = user;
    if (ep == r->client) {
        r->client_closed = 1;
        r->client_err = err;
        r->client = NULL;
    } else {
        r->server = NULL;
    }
    msp_io_ep_free(ep);
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
    rig_t *r = w->data;
    (void)loop;
    (void)revents;
    r->stalled = 1; /* the loops below stop; the test's own assertions then fail */
}

/* Runs the loop until done(r) holds, or nothing moves any more. Returns done(r). */
static int run_until(rig_t *r, int (*done)(rig_t *r))
{
    for (int i = 0; i < STEPS_MAX && !r->stalled && !done(r); i++) {
        ev_timer_again(r->loop, &r->guard);
        ev_run(r->loop, EVRUN_ONCE);
    }
    return done(r);
}

static int mb_pending(rig_t *r)
{
    return r->mb != NULL && msp_io_mb_connecting(r->mb);
}

static int mb_gone(rig_t *r)
{
    return r->mb == NULL;
}

static int both_ready(rig_t *r)
{
    return r->client_ready && r->server_ready;
}

static int client_closed(rig_t *r)
{
    return r->client_closed;
}

static int client_gone_seen(rig_t *r)
{
    return r->closes > 0;
}

static int hello_arrived(rig_t *r)
{
    return r->net.at_server.data[1].len >= 5;
}

/* client -- middlebox over one socketpair; the middlebox's way to the server is a second one, not yet handed over. */
static void rig_open(rig_t *r, int answer)
{
    memset(r, 0, sizeof(*r));
    r->loop = ev_loop_new(EVFLAG_AUTO);
    r->answer = answer;
    net_setup_t s;
    memset(&s, 0, sizeof(s));
    s.n = 1;
    s.server_id = &net_server_id;
    s.mbox_id[0] = &net_mbox_ids[0];
    s.contexts.present[1] = 1;
    s.access[0][1] = MSP_TLMSP_ACCESS_RW;
    assert_int_equal(net_open(&r->net, &s), 0);
    int a[2], b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(nonblocking(a[i]), 0);
        assert_int_equal(nonblocking(b[i]), 0);
    }
    /* net_open started the client: its ClientHello is already in c2s[0]. */
    msp_buf_t *hello = &r->net.c2s[0];
    assert_int_equal(write(a[0], hello->base, hello->len), (ssize_t)hello->len);
    hello->len = 0;
    msp_io_ep_events_t eev = {r, ep_ready, ep_closed, NULL};
    assert_int_equal(msp_io_ep_new(r->loop, a[0], r->net.client, &eev, &r->client), MSP_OK);
    assert_int_equal(msp_io_ep_new(r->loop, b[1], r->net.server, &eev, &r->server), MSP_OK);
    msp_io_mb_events_t mev = {r, mb_connect, NULL, mb_closed};
    assert_int_equal(msp_io_mb_new(r->loop, a[1], r->net.m[0], &mev, &r->mb), MSP_OK);
    r->net.client = r->net.server = NULL; /* the drivers own them now */
    r->net.m[0] = NULL;
    r->server_fd = b[0];
    ev_timer_init(&r->guard, on_guard, 0., 10.);
    r->guard.data = r;
    ev_timer_again(r->loop, &r->guard);
}

static void rig_close(rig_t *r)
{
    msp_io_ep_free(r->client);
    msp_io_ep_free(r->server);
    msp_io_mb_free(r->mb);
    if (r->server_fd >= 0) {
        close(r->server_fd);
    }
    ev_timer_stop(r->loop, &r->guard);
    ev_loop_destroy(r->loop);
    net_close(&r->net);
}

/* The lookup ends well after the ClientHello came in: what waited in the queue goes out and the path works. */
static void test_pending_then_connected(void **state)
{
    (void)state;
    rig_t *r = calloc(1, sizeof(*r));
    rig_open(r, MSP_IO_MB_PENDING);
    assert_int_equal(msp_io_mb_connected(r->mb, r->server_fd), MSP_ERR_ARGUMENT); /* nothing asked yet */
    assert_true(run_until(r, mb_pending));
    assert_int_equal(r->connects, 1);
    assert_string_equal(r->next, "tlmsp://server:10255");
    ev_run(r->loop, EVRUN_NOWAIT); /* more turns while pending: nothing asks again, nothing fails */
    assert_int_equal(r->connects, 1);
    assert_false(r->client_closed);
    assert_int_equal(msp_io_mb_connected(r->mb, r->server_fd), MSP_OK);
    r->server_fd = -1;
    assert_false(msp_io_mb_connecting(r->mb));
    assert_int_equal(msp_io_mb_connected(r->mb, 0), MSP_ERR_ARGUMENT); /* no second answer */
    assert_true(run_until(r, both_ready));
    assert_int_equal(msp_io_ep_send(r->client, 1, (const uint8_t *)"hello", 5), MSP_OK);
    assert_true(run_until(r, hello_arrived));
    assert_int_equal(r->net.at_server.data[1].len, 5);
    assert_memory_equal(r->net.at_server.data[1].base, "hello", 5);
    assert_int_equal(r->connects, 1);
    assert_int_equal(r->closes, 0);
    rig_close(r);
    free(r);
}

static void expect_route_failure(rig_t *r, int mb_err)
{
    assert_true(run_until(r, client_closed));
    /* the fatal alert reached the client (a plain alert before the handshake's end: no alert event) */
    assert_int_equal(r->client_err, MSP_ERR_CLASS_PEER_ALERT + MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE);
    assert_null(r->mb);
    assert_int_equal(r->mb_err, mb_err);
    assert_int_equal(r->closes, 1);
    assert_false(r->pending_at_close); /* the program's own answer ended the wait: nothing to drop */
}

/* The lookup failed: the client hears middlebox_route_failure, the closed event reports the program's reason. */
static void test_pending_then_route_failed(void **state)
{
    (void)state;
    rig_t *r = calloc(1, sizeof(*r));
    rig_open(r, MSP_IO_MB_PENDING);
    msp_io_mb_route_failed(r->mb, MSP_ERR_NOT_FOUND); /* not waiting yet: ignored */
    assert_non_null(r->mb);
    assert_true(run_until(r, mb_pending));
    msp_io_mb_route_failed(r->mb, MSP_ERR_NOT_FOUND);
    expect_route_failure(r, MSP_ERR_NOT_FOUND);
    rig_close(r);
    free(r);
}

/* The same failure with no reason given reports middlebox_route_failure. */
static void test_route_failed_default_reason(void **state)
{
    (void)state;
    rig_t *r = calloc(1, sizeof(*r));
    rig_open(r, MSP_IO_MB_PENDING);
    assert_true(run_until(r, mb_pending));
    msp_io_mb_route_failed(r->mb, MSP_OK);
    expect_route_failure(r, MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE);
    rig_close(r);
    free(r);
}

/* A connect event that fails at once ends the session the same way. */
static void test_connect_fails_at_once(void **state)
{
    (void)state;
    rig_t *r = calloc(1, sizeof(*r));
    rig_open(r, -1);
    expect_route_failure(r, MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE);
    assert_int_equal(r->connects, 1);
    rig_close(r);
    free(r);
}

/* The client goes away during the lookup: the closed event says the lookup still runs. */
static void test_client_leaves_while_pending(void **state)
{
    (void)state;
    rig_t *r = calloc(1, sizeof(*r));
    rig_open(r, MSP_IO_MB_PENDING);
    assert_true(run_until(r, mb_pending));
    msp_io_ep_free(r->client);
    r->client = NULL;
    assert_true(run_until(r, mb_gone));
    assert_int_equal(r->closes, 1);
    assert_true(r->pending_at_close);
    assert_int_equal(r->mb_err, MSP_OK);
    rig_close(r);
    free(r);
}

/* An answer that comes after the session ended is refused, and the fd stays the program's. */
static void test_answer_after_end_refused(void **state)
{
    (void)state;
    rig_t *r = calloc(1, sizeof(*r));
    rig_open(r, MSP_IO_MB_PENDING);
    r->keep_mb = 1;
    assert_true(run_until(r, mb_pending));
    msp_io_ep_free(r->client);
    r->client = NULL;
    assert_true(run_until(r, client_gone_seen));
    assert_true(r->pending_at_close);
    assert_int_equal(msp_io_mb_connected(r->mb, r->server_fd), MSP_ERR_ARGUMENT);
    msp_io_mb_route_failed(r->mb, MSP_OK);
    assert_int_equal(r->closes, 1);                   /* no second end */
    assert_int_equal(write(r->server_fd, "x", 1), 1); /* still open: not taken */
    rig_close(r);
    free(r);
}

/* A driver freed before the ClientHello came asked nothing; one freed during the lookup is simply gone. */
static void test_free_before_and_during(void **state)
{
    (void)state;
    rig_t *r = calloc(1, sizeof(*r));
    rig_open(r, MSP_IO_MB_PENDING);
    assert_int_equal(msp_io_mb_connecting(r->mb), 0);
    msp_io_mb_free(r->mb);
    r->mb = NULL;
    assert_int_equal(r->connects, 0);
    rig_close(r);
    free(r);

    r = calloc(1, sizeof(*r));
    rig_open(r, MSP_IO_MB_PENDING);
    assert_true(run_until(r, mb_pending));
    msp_io_mb_free(r->mb);
    r->mb = NULL;
    assert_int_equal(r->closes, 0);
    rig_close(r);
    free(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_then_connected),      cmocka_unit_test(test_pending_then_route_failed),
        cmocka_unit_test(test_route_failed_default_reason), cmocka_unit_test(test_connect_fails_at_once),
        cmocka_unit_test(test_client_leaves_while_pending), cmocka_unit_test(test_answer_after_end_refused),
        cmocka_unit_test(test_free_before_and_during),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
