/*
 * The socket drivers (msp/tlmsp_io.h) under load and failure, over
 * socketpairs and loopback TCP in one libev loop:
 *  - a send is all or nothing in the core (no sequence number used for a
 *    container that did not go into the queue);
 *  - a full output queue refuses sends with MSP_ERR_AGAIN (the driver
 *    reads on; msp_io_ep_pause stops it) and drains (the drained event)
 *    into a session that goes on intact;
 *  - the handshake and idle time-outs of both drivers;
 *  - middlebox_route_failure when the next hop refuses, resets or closes
 *    before answering;
 *  - heap per idle session (driver + core), N sessions open at once.
 * Nothing here asserts on a duration: time-outs are small and only their
 * outcome is checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer replaces malloc (mallinfo2 then says nothing): its own count (sanitizer/allocator_interface.h,
 * which gcc does not ship) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#include "msp/error.h"
#include "msp/tlmsp.h"
#include "msp/tlmsp_io.h"
#include "net.h"
#include "sock.h"

#define STEPS_MAX 200000 /* loop iterations before a test gives up (a stall, not a time limit) */
#define MIB (1u << 20)

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(nonblocking(sv[0]), 0);
    assert_int_equal(nonblocking(sv[1]), 0);
}

/* Client -- server in memory, the handshake done; context 1 present. */
static net_t *ready_net(size_t nmbox)
{
    net_t *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    net_setup_t s;
    memset(&s, 0, sizeof(s));
    s.n = nmbox;
    s.server_id = &net_server_id;
    s.mbox_id[0] = &net_mbox_ids[0];
    s.contexts.present[1] = 1;
    s.access[0][1] = MSP_TLMSP_ACCESS_RW;
    assert_int_equal(net_open(net, &s), 0);
    return net;
}

static void free_net(net_t *net)
{
    net_close(net);
    free(net);
}

/* ---- 1. a send is all or nothing ---- */

static void test_send_all_or_nothing(void **state)
{
    (void)state;
    net_t *net = ready_net(0);
    net_pump(net);
    assert_true(net_ready(net));
    size_t n = 100000;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    msp_buf_t small;
    msp_buf_init(&small, 40000);
    /* three containers fit, seven do not: nothing at all is written */
    assert_int_equal(msp_tlmsp_conn_send(net->client, 1, big, n, &small), MSP_ERR_LIMIT);
    assert_int_equal(small.len, 0);
    assert_int_equal(msp_buf_error(&small), MSP_OK);
    /* and no sequence number went: what fits next arrives intact, every check passing */
    assert_int_equal(msp_tlmsp_conn_send(net->client, 1, big, 30000, &small), MSP_OK);
    assert_int_equal(msp_buf_put(&net->c2s[0], small.base, small.len), MSP_OK);
    net_pump(net);
    assert_int_equal(net->server_err, 0);
    assert_int_equal(net->at_server.data[1].len, 30000);
    assert_memory_equal(net->at_server.data[1].base, big, 30000);
    msp_buf_free(&small);
    free(big);
    free_net(net);
}

/* ---- drivers: a rig of one server endpoint (or middlebox) driven by the loop, the peer by the test ---- */

typedef struct rig {
    struct ev_loop *loop;
    net_t *net;
    msp_io_ep_t *ep;
    msp_io_mb_t *mb;
    int peer;   /* the test's end of the driver's socket */
    int closed; /* the closed event ran */
    int err;    /* what it reported */
    char why[128];
    int drained; /* drained events */
    /* middlebox: the client's driver and the next hop */
    msp_io_ep_t *client;
    int client_closed, client_err;
    int next_kind; /* what the connect event returns: 0 a socketpair end, 1 a TCP connect to port */
    uint16_t port;
    int next_peer; /* the socketpair's other end */
    int stalled;   /* nothing moved for 10 s: the loops stop, the assertions fail */
    ev_timer guard;
} rig_t;

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
    rig_t *r = w->data;
    (void)loop;
    (void)revents;
    r->stalled = 1;
}

static void on_closed(void *user, msp_io_ep_t *ep, int err)
{
    rig_t *r = user;
    if (ep == r->client) {
        r->client_closed = 1;
        r->client_err = err;
        r->client = NULL;
        msp_io_ep_free(ep);
        return;
    }
    r->closed = 1;
    r->err = err;
    snprintf(r->why, sizeof(r->why), "%s", msp_io_ep_why(ep) != NULL ? msp_io_ep_why(ep) : "");
    r->ep = NULL;
    msp_io_ep_free(ep);
}

static void on_drained(void *user, msp_io_ep_t *ep)
{
    rig_t *r = user;
    (void)ep;
    r->drained++;
}

static void rig_open(rig_t *r, net_t *net)
{
    memset(r, 0, sizeof(*r));
    r->loop = ev_loop_new(EVFLAG_AUTO);
    r->net = net;
    r->peer = -1;
    r->next_peer = -1;
    ev_timer_init(&r->guard, on_guard, 0., 10.);
    r->guard.data = r;
    ev_timer_again(r->loop, &r->guard);
}

/* The server's connection (in memory so far) goes to a driver on one end of a socketpair; the test keeps the other. */
static void rig_server(rig_t *r, const msp_io_timeouts_t *t)
{
    int sv[2];
    pair(sv);
    msp_io_ep_events_t ev = {r, NULL, on_closed, on_drained};
    assert_int_equal(msp_io_ep_new(r->loop, sv[1], r->net->server, &ev, &r->ep), MSP_OK);
    r->net->server = NULL;
    r->peer = sv[0];
    if (t != NULL) {
        msp_io_ep_set_timeouts(r->ep, t);
    }
}

static void rig_close(rig_t *r)
{
    msp_io_ep_free(r->ep);
    msp_io_ep_free(r->client);
    msp_io_mb_free(r->mb);
    if (r->peer >= 0) {
        close(r->peer);
    }
    if (r->next_peer >= 0) {
        close(r->next_peer);
    }
    ev_timer_stop(r->loop, &r->guard);
    ev_loop_destroy(r->loop);
    free_net(r->net);
}

/* Runs the loop (not blocking longer than the time-outs in use) until done(r) or STEPS_MAX turns. */
static int run_until(rig_t *r, int (*done)(rig_t *r))
{
    for (int i = 0; i < STEPS_MAX && !r->stalled && !done(r); i++) {
        ev_timer_again(r->loop, &r->guard);
        ev_run(r->loop, EVRUN_ONCE);
    }
    return done(r);
}

static int is_closed(rig_t *r)
{
    return r->closed;
}

/* What the peer (the in-memory client) reads from the socket: fed to the client connection. The input's result. */
static int peer_read(rig_t *r, size_t *got)
{
    static uint8_t buf[256 << 10];
    ssize_t n = read(r->peer, buf, sizeof(buf));
    *got = n > 0 ? (size_t)n : 0;
    if (n <= 0) {
        return MSP_OK;
    }
    size_t used = (size_t)n;
    r->net->c2s[0].len = 0;
    return msp_tlmsp_conn_input(r->net->client, buf, &used, &r->net->c2s[0]);
}

/* ---- 1. back-pressure ---- */

static void test_full_queue_refuses_and_pause_stops_reading(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(0));
    net_pump(r.net);
    assert_true(net_ready(r.net));
    rig_server(&r, NULL);
    uint8_t *chunk = calloc(1, MIB);
    size_t sent = 0;
    int rc = MSP_OK;
    /* the client reads nothing: the server's queue fills to its mark, then sends are refused, whole */
    for (int i = 0; i < 300 && rc == MSP_OK; i++) {
        rc = msp_io_ep_send(r.ep, 1, chunk, MIB);
        sent += rc == MSP_OK ? MIB : 0;
    }
    assert_int_equal(rc, MSP_ERR_AGAIN);
    assert_false(msp_io_ep_writable(r.ep));
    assert_true(msp_io_ep_pending(r.ep) >= SOCK_HIGH_WATER);
    assert_true(sent < SOCK_HIGH_WATER + 2 * MIB);
    /* input keeps coming: the driver still reads it (a peer doing the same would otherwise wait on us for ever) */
    msp_buf_t in;
    msp_buf_init(&in, MIB);
    assert_int_equal(msp_tlmsp_conn_send(r.net->client, 1, (const uint8_t *)"ping", 4, &in), MSP_OK);
    assert_int_equal(write(r.peer, in.base, in.len), (ssize_t)in.len);
    for (int i = 0; i < 50; i++) {
        ev_run(r.loop, EVRUN_NOWAIT);
    }
    assert_int_equal(r.net->at_server.data[1].len, 4);
    /* a program whose answers wait pauses its input: it waits in the network until resumed */
    msp_io_ep_pause(r.ep, 1);
    in.len = 0;
    assert_int_equal(msp_tlmsp_conn_send(r.net->client, 1, (const uint8_t *)"pong", 4, &in), MSP_OK);
    assert_int_equal(write(r.peer, in.base, in.len), (ssize_t)in.len);
    msp_buf_free(&in);
    for (int i = 0; i < 50; i++) {
        ev_run(r.loop, EVRUN_NOWAIT);
    }
    assert_int_equal(r.net->at_server.data[1].len, 4);
    msp_io_ep_pause(r.ep, 0);
    /* the client reads: the queue drains, the drained event runs, the input is read, every byte checks */
    for (int i = 0; i < STEPS_MAX && (r.drained == 0 || r.net->at_client.data[1].len < sent); i++) {
        size_t got;
        assert_int_equal(peer_read(&r, &got), MSP_OK);
        ev_run(r.loop, EVRUN_NOWAIT);
    }
    assert_true(r.drained > 0);
    assert_int_equal(r.net->at_client.data[1].len, sent);
    assert_int_equal(r.net->at_server.data[1].len, 8);
    assert_true(msp_io_ep_writable(r.ep));
    assert_false(r.closed);
    free(chunk);
    rig_close(&r);
}

static void no_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/*
 * A queue left at its mark by a flush, with no send refused (writable() said no): the drained event must still
 * come, even when a later flush after input empties it with no write event to follow (a script client that stopped
 * at writable() then waited for ever, once in three runs of tlmsp_io under ASan).
 */
static void test_queue_left_full_is_reported(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    int sv[2];
    pair(sv);
    sock_t s;
    sock_init(&s, loop, sv[0], no_io, NULL);
    static uint8_t chunk[MIB];
    /* a little: written at once, nothing to report */
    assert_int_equal(msp_buf_put(sock_out(&s), chunk, 4096), MSP_OK);
    assert_int_equal(sock_flush(&s), MSP_OK);
    assert_int_equal(sock_pending(&s), 0);
    assert_false(s.owe_drained);
    /* past the mark: the peer reads nothing, the flush leaves it queued */
    for (size_t n = 0; n < SOCK_HIGH_WATER + MIB; n += MIB) {
        assert_int_equal(msp_buf_put(sock_out(&s), chunk, MIB), MSP_OK);
    }
    assert_int_equal(sock_flush(&s), MSP_OK);
    assert_true(sock_pending(&s) >= SOCK_HIGH_WATER);
    assert_true(s.owe_drained);
    sock_close(&s);
    close(sv[1]);
    ev_loop_destroy(loop);
}

/* ---- 4. time-outs ---- */

static void test_ep_handshake_timeout(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(0)); /* the client's ClientHello stays in memory: the server hears nothing */
    msp_io_timeouts_t t = {0.05, 0, 0, 0};
    rig_server(&r, &t);
    assert_true(run_until(&r, is_closed));
    assert_int_equal(r.err, MSP_ERR_TIMEOUT);
    assert_string_equal(r.why, "handshake timed out after 0.05 s");
    uint8_t b;
    assert_int_equal(read(r.peer, &b, 1), 0); /* the socket is closed */
    rig_close(&r);
}

static void test_ep_idle_timeout(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(0));
    net_pump(r.net);
    assert_true(net_ready(r.net));
    msp_io_timeouts_t t = {0, 0.05, 0, 0};
    rig_server(&r, &t);
    assert_true(run_until(&r, is_closed));
    assert_int_equal(r.err, MSP_ERR_TIMEOUT);
    assert_string_equal(r.why, "idle timed out after 0.05 s");
    size_t got;
    /* the client heard close_notify: a clean end on its side */
    assert_int_equal(peer_read(&r, &got), MSP_ERR_CLASS_PEER_ALERT + 0);
    assert_true(got > 0);
    rig_close(&r);
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* A timeout of 0 is off: the session stays while the loop runs a while. */
static void test_timeouts_off(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(0));
    msp_io_timeouts_t t = {0, 0, 0, 0};
    rig_server(&r, &t);
    ev_timer guard;
    ev_timer_init(&guard, stop_loop, 0.2, 0);
    ev_timer_start(r.loop, &guard);
    ev_run(r.loop, 0); /* nothing else is armed: returns when the guard fires */
    assert_false(r.closed);
    rig_close(&r);
}

/* ---- the middlebox ---- */

static void mb_closed(void *user, msp_io_mb_t *mb, int err)
{
    rig_t *r = user;
    r->closed = 1;
    r->err = err;
    snprintf(r->why, sizeof(r->why), "%s", msp_io_mb_why(mb) != NULL ? msp_io_mb_why(mb) : "");
    r->mb = NULL;
    msp_io_mb_free(mb);
}

static int tcp_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int mb_connect(void *user, const msp_tlmsp_address_t *next)
{
    rig_t *r = user;
    (void)next;
    if (r->next_kind == 0) {
        int sv[2];
        pair(sv);
        r->next_peer = sv[1];
        return sv[0];
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(r->port);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* client (driver) -- middlebox (driver) over a socketpair; the middlebox's next hop as next_kind says. */
static void rig_mbox(rig_t *r, const msp_io_timeouts_t *t, int send_hello)
{
    int sv[2];
    pair(sv);
    msp_buf_t *hello = &r->net->c2s[0];
    if (send_hello) {
        assert_int_equal(write(sv[0], hello->base, hello->len), (ssize_t)hello->len);
    }
    hello->len = 0;
    msp_io_ep_events_t eev = {r, NULL, on_closed, NULL};
    assert_int_equal(msp_io_ep_new(r->loop, sv[0], r->net->client, &eev, &r->client), MSP_OK);
    msp_io_mb_events_t mev = {r, mb_connect, NULL, mb_closed};
    assert_int_equal(msp_io_mb_new(r->loop, sv[1], r->net->m[0], &mev, &r->mb), MSP_OK);
    r->net->client = NULL;
    r->net->m[0] = NULL;
    msp_io_timeouts_t none = {0, 0, 0, 0};
    msp_io_ep_set_timeouts(r->client, &none);
    if (t != NULL) {
        msp_io_mb_set_timeouts(r->mb, t);
    }
}

static int closed_both(rig_t *r)
{
    return r->closed && r->client_closed;
}

static void expect_route_failure(rig_t *r, const char *why)
{
    assert_true(run_until(r, closed_both));
    assert_int_equal(r->err, MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE);
    assert_string_equal(r->why, why);
    /* the client heard the fatal alert, not a bare FIN */
    assert_int_equal(r->client_err, MSP_ERR_CLASS_PEER_ALERT + MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE);
}

static void test_mb_handshake_timeout(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(1));
    msp_io_timeouts_t t = {0.05, 0, 0, 0};
    rig_mbox(&r, &t, 0); /* a client that connects and sends nothing */
    assert_true(run_until(&r, is_closed));
    assert_int_equal(r.err, MSP_ERR_TIMEOUT);
    assert_string_equal(r.why, "handshake timed out after 0.05 s");
    rig_close(&r);
}

static void test_mb_next_hop_refused(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(1));
    int l = tcp_listener(&r.port);
    close(l); /* nobody listens there now */
    r.next_kind = 1;
    rig_mbox(&r, NULL, 1);
    expect_route_failure(&r, "connection refused");
    rig_close(&r);
}

static int hello_at_next_hop(rig_t *r)
{
    uint8_t b[5];
    return r->closed || recv(r->next_peer, b, sizeof(b), MSG_PEEK) == (ssize_t)sizeof(b);
}

static void test_mb_next_hop_closes(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(1));
    r.next_kind = 0;
    rig_mbox(&r, NULL, 1);
    assert_true(run_until(&r, hello_at_next_hop));
    uint8_t buf[4096];
    while (read(r.next_peer, buf, sizeof(buf)) > 0) {
    }
    close(r.next_peer); /* the next hop read the ClientHello and went away without a word */
    r.next_peer = -1;
    expect_route_failure(&r, "closed before answering");
    rig_close(&r);
}

static int accepted;

static int next_hop_accepts(rig_t *r)
{
    if (accepted < 0) {
        accepted = accept(r->next_peer, NULL, NULL);
    }
    uint8_t b[5];
    return r->closed || (accepted >= 0 && recv(accepted, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) == 5);
}

static void test_mb_next_hop_resets(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, ready_net(1));
    r.next_peer = tcp_listener(&r.port);
    assert_int_equal(nonblocking(r.next_peer), 0);
    r.next_kind = 1;
    accepted = -1;
    rig_mbox(&r, NULL, 1);
    assert_true(run_until(&r, next_hop_accepts));
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(accepted, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(accepted); /* RST */
    expect_route_failure(&r, "connection reset");
    rig_close(&r);
}

/* ---- a peer that sends close_notify and resets (TLS 1.2 lets a closer leave without waiting for our answer) ---- */

/* The server's connection goes to a driver on an accepted loopback TCP socket (a reset needs TCP); the test keeps
 * the connecting end. */
static void rig_server_tcp(rig_t *r)
{
    uint16_t port;
    int l = tcp_listener(&port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int fd = accept(l, NULL, NULL);
    close(l);
    assert_true(fd >= 0);
    assert_int_equal(nonblocking(fd), 0);
    msp_io_ep_events_t ev = {r, NULL, on_closed, NULL};
    assert_int_equal(msp_io_ep_new(r->loop, fd, r->net->server, &ev, &r->ep), MSP_OK);
    r->net->server = NULL;
    r->peer = c;
}

/*
 * The server has output queued that the client never reads (its writes wait for a write event, its reading is
 * paused: the write event comes first); the client sends close_notify when with_close_notify, then resets.
 * Returns what the server's closed event reported.
 */
static int reset_after(rig_t *r, int with_close_notify)
{
    rig_open(r, ready_net(0));
    net_pump(r->net);
    assert_true(net_ready(r->net));
    rig_server_tcp(r);
    uint8_t *chunk = calloc(1, MIB);
    for (int i = 0; i < 300 && msp_io_ep_send(r->ep, 1, chunk, MIB) == MSP_OK; i++) {
    }
    free(chunk);
    assert_true(msp_io_ep_pending(r->ep) > 0);
    msp_io_ep_pause(r->ep, 1);
    if (with_close_notify) {
        msp_buf_t out;
        msp_buf_init(&out, 4096);
        assert_int_equal(msp_tlmsp_conn_alert(r->net->client, 0, 1, 0, &out), MSP_OK);
        assert_int_equal(write(r->peer, out.base, out.len), (ssize_t)out.len);
        msp_buf_free(&out);
    }
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(r->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(r->peer); /* RST */
    r->peer = -1;
    assert_true(run_until(r, is_closed));
    return r->err;
}

static void test_ep_reset_after_close_notify_is_clean(void **state)
{
    (void)state;
    rig_t r;
    assert_int_equal(reset_after(&r, 1), MSP_OK);
    rig_close(&r);
}

static void test_ep_reset_alone_is_an_error(void **state)
{
    (void)state;
    rig_t r;
    assert_int_equal(reset_after(&r, 0), MSP_ERR_IO);
    assert_string_equal(r.why, "connection reset");
    rig_close(&r);
}

/* ---- 3. memory per idle session ---- */

static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

typedef struct sessions {
    rig_t r;
    size_t n;
    net_t *nets; /* allocated before the baseline: the test's own sinks are not the sessions' cost */
    msp_io_ep_t **client, **server;
    msp_io_mb_t **mb;
    size_t ready;
} sessions_t;

static void count_ready(void *user, msp_io_ep_t *ep)
{
    sessions_t *s = user;
    (void)ep;
    s->ready++;
}

static void never_closed(void *user, msp_io_ep_t *ep, int err)
{
    (void)user;
    (void)ep;
    fail_msg("a session ended: %s", msp_error_name(err));
}

static void mb_never_closed(void *user, msp_io_mb_t *mb, int err)
{
    (void)user;
    (void)mb;
    fail_msg("a middlebox session ended: %s", msp_error_name(err));
}

static int server_fds[2]; /* the middlebox's way to the server, for the connect event */

static int mb_next_fd(void *user, const msp_tlmsp_address_t *next)
{
    (void)user;
    (void)next;
    return server_fds[0];
}

static void mb_count_ready(void *user, msp_io_mb_t *mb)
{
    sessions_t *s = user;
    (void)mb;
    s->ready++;
}

/* Opens session i: client -- [middlebox --] server, every part on the loop. */
static void session_open(sessions_t *s, size_t i, size_t nmbox)
{
    net_setup_t st;
    memset(&st, 0, sizeof(st));
    st.n = nmbox;
    st.server_id = &net_server_id;
    st.mbox_id[0] = &net_mbox_ids[0];
    st.contexts.present[1] = 1;
    st.access[0][1] = MSP_TLMSP_ACCESS_RW;
    net_t *net = &s->nets[i];
    assert_int_equal(net_open(net, &st), 0);
    int a[2], b[2];
    pair(a);
    msp_buf_t *hello = &net->c2s[0];
    assert_int_equal(write(a[0], hello->base, hello->len), (ssize_t)hello->len);
    msp_buf_free(hello); /* the test's buffer: not the session's */
    msp_io_ep_events_t cev = {s, count_ready, never_closed, NULL};
    assert_int_equal(msp_io_ep_new(s->r.loop, a[0], net->client, &cev, &s->client[i]), MSP_OK);
    int server_end = a[1];
    if (nmbox > 0) {
        pair(b);
        server_fds[0] = b[0];
        msp_io_mb_events_t mev = {s, mb_next_fd, mb_count_ready, mb_never_closed};
        assert_int_equal(msp_io_mb_new(s->r.loop, a[1], net->m[0], &mev, &s->mb[i]), MSP_OK);
        net->m[0] = NULL;
        server_end = b[1];
    }
    msp_io_ep_events_t sev = {s, count_ready, never_closed, NULL};
    assert_int_equal(msp_io_ep_new(s->r.loop, server_end, net->server, &sev, &s->server[i]), MSP_OK);
    net->client = net->server = NULL;
    /* each handshake to its end before the next session opens (the middlebox's connect event takes server_fds) */
    size_t want = s->ready + (nmbox > 0 ? 3 : 2);
    for (int k = 0; k < STEPS_MAX && s->ready < want && !s->r.stalled; k++) {
        ev_timer_again(s->r.loop, &s->r.guard);
        ev_run(s->r.loop, EVRUN_ONCE);
    }
    assert_int_equal(s->ready, want);
}

/* Heap bytes per idle session (driver + core state of every part on the path) with n sessions open. */
static double per_session(size_t n, size_t nmbox, double *mb_part)
{
    sessions_t s;
    memset(&s, 0, sizeof(s));
    s.r.loop = ev_loop_new(EVFLAG_AUTO);
    ev_timer_init(&s.r.guard, on_guard, 0., 10.);
    s.r.guard.data = &s.r;
    s.n = n;
    s.nets = calloc(n, sizeof(*s.nets));
    s.client = calloc(n, sizeof(*s.client));
    s.server = calloc(n, sizeof(*s.server));
    s.mb = calloc(n, sizeof(*s.mb));
    assert_true(s.nets != NULL && s.client != NULL && s.server != NULL && s.mb != NULL);
    /* warm-up: OpenSSL's and libev's one-time state is not a session's */
    session_open(&s, 0, nmbox);
    msp_io_ep_free(s.client[0]);
    msp_io_ep_free(s.server[0]);
    msp_io_mb_free(s.mb[0]);
    net_close(&s.nets[0]);
    memset(&s.nets[0], 0, sizeof(s.nets[0]));
    s.ready = 0;
    sock_rbuf_ref(); /* the thread's read buffer and queue cache stay: they are the loop's, not a session's */
    size_t base = heap_in_use() - sock_rbuf_bytes();
    for (size_t i = 0; i < n; i++) {
        session_open(&s, i, nmbox);
    }
    double total = (double)(heap_in_use() - sock_rbuf_bytes() - base);
    if (mb_part != NULL) {
        size_t before = heap_in_use();
        for (size_t i = 0; i < n; i++) {
            msp_io_mb_free(s.mb[i]);
            s.mb[i] = NULL;
        }
        *mb_part = (double)(before - heap_in_use()) / (double)n;
    }
    for (size_t i = 0; i < n; i++) {
        msp_io_ep_free(s.client[i]);
        msp_io_ep_free(s.server[i]);
        msp_io_mb_free(s.mb[i]);
        net_close(&s.nets[i]);
    }
    sock_rbuf_unref();
    assert_int_equal(sock_rbuf_bytes(), 0); /* freed with the last driver */
    free(s.nets);
    free(s.client);
    free(s.server);
    free(s.mb);
    ev_timer_stop(s.r.loop, &s.r.guard);
    ev_loop_destroy(s.r.loop);
    return total / (double)n;
}

#define IDLE_SESSION_MAX (64u << 10)

static size_t sessions_n = 100;

static void test_memory_per_idle_session(void **state)
{
    (void)state;
    double mb = 0;
    /* an endpoint session: per path (client + server), half each */
    double ep = per_session(sessions_n, 0, NULL) / 2;
    double path = per_session(sessions_n, 1, &mb);
    fprintf(stderr, "heap per idle session, %zu open: endpoint %.0f B, middlebox %.0f B (path of three %.0f B)\n",
            sessions_n, ep, mb, path);
    assert_true(ep <= IDLE_SESSION_MAX);
    assert_true(mb <= IDLE_SESSION_MAX);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1) {
        sessions_n = (size_t)strtoul(argv[1], NULL, 10); /* the figure for another N (report) */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_all_or_nothing),
        cmocka_unit_test(test_full_queue_refuses_and_pause_stops_reading),
        cmocka_unit_test(test_queue_left_full_is_reported),
        cmocka_unit_test(test_ep_handshake_timeout),
        cmocka_unit_test(test_ep_idle_timeout),
        cmocka_unit_test(test_timeouts_off),
        cmocka_unit_test(test_mb_handshake_timeout),
        cmocka_unit_test(test_mb_next_hop_refused),
        cmocka_unit_test(test_mb_next_hop_closes),
        cmocka_unit_test(test_mb_next_hop_resets),
        cmocka_unit_test(test_ep_reset_after_close_notify_is_clean),
        cmocka_unit_test(test_ep_reset_alone_is_an_error),
        cmocka_unit_test(test_memory_per_idle_session),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
