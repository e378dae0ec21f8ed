/*
 * The next-hop resolver (msp/tlmsp_io.h) in one libev loop: a local
 * listening socket to connect to, and a name server of the test's own on
 * 127.0.0.1 (UDP) that answers every query "no such name", or holds the
 * queries until the test releases them, or never answers.
 */
#define _DEFAULT_SOURCE /* fd_set and struct timeval for ares.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ares.h>
#include <ev.h>

#include "msp/error.h"
#include "msp/tlmsp_io.h"

#define STEPS_MAX 100000 /* loop iterations before a test gives up (a stall, not a time limit) */
#define HELD_MAX 16

enum { DNS_NXDOMAIN, DNS_HOLD, DNS_SILENT };

typedef struct rig {
    struct ev_loop *loop;
    int listen_fd;
    uint16_t port; /* the listener's */
    ev_io accept_w;
    int accepted;
    int dns_fd;
    char servers[32]; /* "127.0.0.1:PORT" of the name server */
    ev_io dns_w;
    int dns_mode;
    int queries;
    uint8_t held[HELD_MAX][512];
    size_t held_len[HELD_MAX];
    struct sockaddr_in held_from[HELD_MAX];
    size_t nheld;
    ev_timer guard;
    int stalled;
    /* what the lookup callback saw */
    int calls;
    int fd;
    msp_error_t err;
} rig_t;

static rig_t rig;

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    int fd = accept(w->fd, NULL, NULL);
    if (fd >= 0) {
        rig.accepted++;
        close(fd);
    }
}

/* The query turned into its own "no such name" answer: the header and the question, nothing else. */
static size_t nxdomain(uint8_t *p, size_t n)
{
    size_t i = 12;
    while (i < n && p[i] != 0) {
        i += (size_t)p[i] + 1;
    }
    i += 5; /* the root label, QTYPE, QCLASS */
    if (n < 12 || i > n) {
        return 0;
    }
    p[2] = (uint8_t)(0x80 | (p[2] & 0x79)); /* QR, the query's opcode and RD */
    p[3] = 0x83;                            /* RA, NXDOMAIN */
    memset(p + 6, 0, 6);                    /* no answer, authority or additional records */
    return i;
}

static void answer(const uint8_t *q, size_t n, const struct sockaddr_in *from)
{
    uint8_t p[512];
    memcpy(p, q, n);
    size_t len = nxdomain(p, n);
    if (len > 0) {
        sendto(rig.dns_fd, p, len, 0, (const struct sockaddr *)from, sizeof(*from));
    }
}

static void on_query(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    uint8_t q[512];
    struct sockaddr_in from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(w->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
    if (n <= 0) {
        return;
    }
    rig.queries++;
    if (rig.dns_mode == DNS_NXDOMAIN) {
        answer(q, (size_t)n, &from);
    } else if (rig.dns_mode == DNS_HOLD && rig.nheld < HELD_MAX) {
        memcpy(rig.held[rig.nheld], q, (size_t)n);
        rig.held_len[rig.nheld] = (size_t)n;
        rig.held_from[rig.nheld++] = from;
    }
}

static void release(void)
{
    for (size_t i = 0; i < rig.nheld; i++) {
        answer(rig.held[i], rig.held_len[i], &rig.held_from[i]);
    }
    rig.nheld = 0;
    rig.dns_mode = DNS_NXDOMAIN;
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    rig.stalled = 1;
}

static void on_done(void *user, int fd, const msp_error_t *err)
{
    assert_ptr_equal(user, &rig);
    rig.calls++;
    rig.fd = fd;
    rig.err = *err;
}

/* Runs the loop until cond holds; fails the test on a stall. */
#define RUN_UNTIL(cond)                                                                                                \
    do {                                                                                                               \
        for (int step_ = 0; step_ < STEPS_MAX && !rig.stalled && !(cond); step_++) {                                   \
            ev_run(rig.loop, EVRUN_ONCE);                                                                              \
        }                                                                                                              \
        assert_false(rig.stalled);                                                                                     \
        assert_true(cond);                                                                                             \
    } while (0)

static int bound_socket(int type, struct sockaddr_in *a)
{
    socklen_t len = sizeof(*a);
    int fd = socket(AF_INET, type, 0);
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) != 0 || getsockname(fd, (struct sockaddr *)a, &len) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        return -1;
    }
    return fd;
}

static int setup(void **state)
{
    (void)state;
    memset(&rig, 0, sizeof(rig));
    rig.loop = ev_loop_new(EVFLAG_AUTO);
    struct sockaddr_in a;
    rig.listen_fd = bound_socket(SOCK_STREAM, &a);
    if (rig.loop == NULL || rig.listen_fd < 0 || listen(rig.listen_fd, 16) != 0) {
        return -1;
    }
    rig.port = ntohs(a.sin_port);
    rig.dns_fd = bound_socket(SOCK_DGRAM, &a);
    if (rig.dns_fd < 0) {
        return -1;
    }
    snprintf(rig.servers, sizeof(rig.servers), "127.0.0.1:%u", ntohs(a.sin_port));
    ev_io_init(&rig.accept_w, on_accept, rig.listen_fd, EV_READ);
    ev_io_start(rig.loop, &rig.accept_w);
    ev_io_init(&rig.dns_w, on_query, rig.dns_fd, EV_READ);
    ev_io_start(rig.loop, &rig.dns_w);
    ev_timer_init(&rig.guard, on_guard, 10., 0.);
    ev_timer_start(rig.loop, &rig.guard);
    rig.fd = -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ev_io_stop(rig.loop, &rig.accept_w);
    ev_io_stop(rig.loop, &rig.dns_w);
    ev_timer_stop(rig.loop, &rig.guard);
    close(rig.listen_fd);
    close(rig.dns_fd);
    if (rig.fd >= 0) {
        close(rig.fd);
    }
    ev_loop_destroy(rig.loop);
    return 0;
}

static msp_io_resolver_t *resolver(double timeout, size_t max_lookups)
{
    msp_io_resolver_cfg_t cfg = {timeout, max_lookups, rig.servers};
    msp_io_resolver_t *r = NULL;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_new(rig.loop, &cfg, &r, &err), MSP_OK);
    assert_non_null(r);
    return r;
}

static void assert_connected(int fd)
{
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    RUN_UNTIL(rig.accepted == 1);
    close(fd);
}

/* An IP literal connects at once and asks no name server (nor needs a resolver). */
static void test_ip_literal(void **state)
{
    (void)state;
    msp_io_resolver_t *r = resolver(0, 0);
    msp_io_resolver_lookup_t *l = (msp_io_resolver_lookup_t *)&rig;
    int fd = -2;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_connect(r, "127.0.0.1", rig.port, on_done, &rig, &fd, &l, &err), MSP_OK);
    assert_null(l);
    assert_connected(fd);
    rig.accepted = 0;
    assert_int_equal(msp_io_resolver_connect(NULL, "127.0.0.1", rig.port, on_done, &rig, &fd, &l, &err), MSP_OK);
    assert_connected(fd);
    assert_int_equal(rig.queries, 0);
    assert_int_equal(rig.calls, 0);
    msp_io_resolver_free(r);
}

/* localhost goes through c-ares (its hosts file: the answer may come at once) and connects. */
static void test_localhost(void **state)
{
    (void)state;
    rig.dns_mode = DNS_SILENT; /* a question to the name server would never be answered */
    msp_io_resolver_t *r = resolver(0, 0);
    msp_io_resolver_lookup_t *l = NULL;
    int fd = -2;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_connect(r, "localhost", rig.port, on_done, &rig, &fd, &l, &err), MSP_OK);
    if (l != NULL) {
        assert_int_equal(fd, -1);
        RUN_UNTIL(rig.calls == 1);
        assert_int_equal(rig.err.code, MSP_OK);
        fd = rig.fd;
        rig.fd = -1;
    }
    assert_connected(fd);
    msp_io_resolver_free(r);
}

/* A name the name server does not know: the callback gets the reason, as the program prints it. */
static void test_not_found(void **state)
{
    (void)state;
    msp_io_resolver_t *r = resolver(0, 0);
    msp_io_resolver_lookup_t *l = NULL;
    int fd = -2;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_connect(r, "nosuch.invalid", 4433, on_done, &rig, &fd, &l, &err), MSP_OK);
    assert_non_null(l);
    assert_int_equal(fd, -1);
    RUN_UNTIL(rig.calls == 1);
    assert_int_equal(rig.fd, -1);
    assert_int_equal(rig.err.code, MSP_ERR_NOT_FOUND);
    char want[200];
    snprintf(want, sizeof(want), "next hop nosuch.invalid:4433: cannot resolve the name: %s",
             ares_strerror(ARES_ENOTFOUND));
    assert_string_equal(rig.err.detail, want);
    assert_true(rig.queries > 0);
    msp_io_resolver_free(r);
}

/*
 * Cancelled before the answer: no callback. The lookup counts against the
 * limit until c-ares lets it go, so a second one goes on only after the
 * cancelled one's answer was taken.
 */
static void test_cancel(void **state)
{
    (void)state;
    rig.dns_mode = DNS_HOLD;
    msp_io_resolver_t *r = resolver(0, 1);
    msp_io_resolver_lookup_t *l = NULL;
    int fd = -2;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_connect(r, "slow.invalid.", 4433, on_done, &rig, &fd, &l, &err), MSP_OK);
    assert_non_null(l);
    RUN_UNTIL(rig.nheld > 0);
    msp_io_resolver_cancel(l);
    msp_io_resolver_cancel(NULL);
    release();
    int rc = MSP_ERR_LIMIT;
    for (int step = 0; step < STEPS_MAX && !rig.stalled && rc == MSP_ERR_LIMIT; step++) {
        ev_run(rig.loop, EVRUN_ONCE);
        rc = msp_io_resolver_connect(r, "next.invalid.", 4433, on_done, &rig, &fd, &l, &err);
    }
    assert_false(rig.stalled);
    assert_int_equal(rc, MSP_OK);
    assert_int_equal(rig.calls, 0);
    RUN_UNTIL(rig.calls == 1); /* the second one is answered */
    assert_int_equal(rig.err.code, MSP_ERR_NOT_FOUND);
    msp_io_resolver_free(r);
}

/* With the limit reached a new name is refused with its reason; a name the hosts file knows still goes on. */
static void test_limit(void **state)
{
    (void)state;
    rig.dns_mode = DNS_SILENT;
    msp_io_resolver_t *r = resolver(0, 1);
    msp_io_resolver_lookup_t *l = NULL, *l2 = NULL;
    int fd = -2;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_connect(r, "first.invalid.", 4433, on_done, &rig, &fd, &l, &err), MSP_OK);
    assert_non_null(l);
    assert_int_equal(msp_io_resolver_connect(r, "second.invalid.", 4433, on_done, &rig, &fd, &l2, &err), MSP_ERR_LIMIT);
    assert_null(l2);
    assert_int_equal(fd, -1);
    assert_string_equal(err.detail, "next hop second.invalid.:4433: 1 name lookups in flight already; session refused");
    assert_int_equal(msp_io_resolver_connect(r, "localhost", rig.port, on_done, &rig, &fd, &l2, &err), MSP_OK);
    assert_null(l2);
    assert_connected(fd);
    assert_int_equal(rig.calls, 0);
    msp_io_resolver_free(r); /* first.invalid. still pending: dropped, no callback */
    assert_int_equal(rig.calls, 0);
}

/* No answer within the resolver's time-out: the reason names it; the late lookup dies with the resolver. */
static void test_timeout(void **state)
{
    (void)state;
    rig.dns_mode = DNS_SILENT;
    msp_io_resolver_t *r = resolver(0.05, 0);
    msp_io_resolver_lookup_t *l = NULL;
    int fd = -2;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_connect(r, "quiet.invalid.", 4433, on_done, &rig, &fd, &l, &err), MSP_OK);
    RUN_UNTIL(rig.calls == 1);
    assert_int_equal(rig.err.code, MSP_ERR_NOT_FOUND);
    assert_string_equal(rig.err.detail, "next hop quiet.invalid.:4433: no answer from the name servers within 0.05 s");
    msp_io_resolver_free(r);
    assert_int_equal(rig.calls, 1);
}

/* Free with lookups pending, twice over, and NULL. */
static void test_free_pending(void **state)
{
    (void)state;
    rig.dns_mode = DNS_SILENT;
    msp_io_resolver_t *r = resolver(0, 0);
    msp_io_resolver_lookup_t *l1 = NULL, *l2 = NULL;
    int fd = -2;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_connect(r, "a.invalid.", 1, on_done, &rig, &fd, &l1, &err), MSP_OK);
    assert_int_equal(msp_io_resolver_connect(r, "b.invalid.", 2, on_done, &rig, &fd, &l2, &err), MSP_OK);
    assert_non_null(l1);
    assert_non_null(l2);
    RUN_UNTIL(rig.queries > 0);
    msp_io_resolver_free(r);
    msp_io_resolver_free(NULL);
    assert_int_equal(rig.calls, 0);
}

/* Bad name servers are refused at construction, with the reason. */
static void test_bad_servers(void **state)
{
    (void)state;
    msp_io_resolver_cfg_t cfg = {0, 0, "not an address"};
    msp_io_resolver_t *r = (msp_io_resolver_t *)&rig;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_io_resolver_new(rig.loop, &cfg, &r, &err), MSP_ERR_ARGUMENT);
    assert_null(r);
    assert_non_null(strstr(err.detail, "cannot start the name resolver: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ip_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_localhost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_servers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
