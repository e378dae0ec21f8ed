/*
 * The listener (msp/io_listener.h) on loopback: the total and per-source
 * caps close what is over them with one event each; at the open-file limit
 * accepting pauses with one event (not one per failed accept) and resumes
 * when a session ends, serving the connection that waited.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "msp/io_listener.h"

#define MAX_FDS 16

typedef struct seen {
    int fds[MAX_FDS];
    struct sockaddr_storage peers[MAX_FDS];
    socklen_t lens[MAX_FDS];
    size_t n;
    int events[8]; /* by msp_io_listener_event_t */
    int refuse;    /* the accept callback refuses */
} seen_t;

static int on_accept(void *user, int fd, const struct sockaddr *peer, socklen_t len)
{
    seen_t *s = user;
    if (s->refuse || s->n == MAX_FDS) {
        return -1;
    }
    s->fds[s->n] = fd;
    memcpy(&s->peers[s->n], peer, len);
    s->lens[s->n++] = len;
    return 0;
}

static void on_event(void *user, int what, const struct sockaddr *peer, socklen_t len, int err)
{
    seen_t *s = user;
    (void)peer;
    (void)len;
    (void)err;
    s->events[what]++;
}

static msp_io_listener_t *listener(struct ev_loop *loop, seen_t *s, size_t total, size_t per_source, double retry)
{
    msp_io_listener_cfg_t c;
    memset(&c, 0, sizeof(c));
    c.host = "127.0.0.1";
    c.max_sessions = total;
    c.max_per_source = per_source;
    c.retry = retry;
    c.accept = on_accept;
    c.event = on_event;
    c.user = s;
    msp_io_listener_t *l = NULL;
    msp_error_t err;
    assert_int_equal(msp_io_listener_new(loop, &c, &l, &err), MSP_OK);
    assert_int_not_equal(msp_io_listener_port(l), 0);
    return l;
}

/* A blocking connection from src (an address of 127/8) to the listener: complete once queued. */
static int dial(const msp_io_listener_t *l, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, src, &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    a.sin_port = htons(msp_io_listener_port(l));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Loop turns without waiting for anything but what is ready. */
static void turns(struct ev_loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        ev_run(loop, EVRUN_NOWAIT);
    }
}

/* The peer has closed: a read returns 0 (or an error) at once. */
static void closed_by_peer(int fd)
{
    char c;
    struct timeval tv = {5, 0}; /* a bound on a failing test, not a timed assertion */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_true(read(fd, &c, 1) <= 0);
}

static void test_total_cap(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(0);
    seen_t s = {0};
    msp_io_listener_t *l = listener(loop, &s, 2, 0, 0);
    int c[4];
    for (int i = 0; i < 3; i++) {
        c[i] = dial(l, "127.0.0.1");
    }
    turns(loop, 5);
    assert_int_equal(s.n, 2);
    assert_int_equal(msp_io_listener_sessions(l), 2);
    assert_int_equal(s.events[MSP_IO_LISTENER_REJECTED_TOTAL], 1);
    closed_by_peer(c[2]);
    /* one session ends: the next connection is kept */
    close(s.fds[0]);
    msp_io_listener_done(l, (struct sockaddr *)&s.peers[0], s.lens[0]);
    assert_int_equal(msp_io_listener_sessions(l), 1);
    c[3] = dial(l, "127.0.0.1");
    turns(loop, 5);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.events[MSP_IO_LISTENER_REJECTED_TOTAL], 1);
    /* a refused hand-over is not counted */
    s.refuse = 1;
    close(s.fds[1]);
    msp_io_listener_done(l, (struct sockaddr *)&s.peers[1], s.lens[1]);
    int r = dial(l, "127.0.0.1");
    turns(loop, 5);
    assert_int_equal(msp_io_listener_sessions(l), 1);
    closed_by_peer(r);
    close(r);
    for (int i = 0; i < 4; i++) {
        close(c[i]);
    }
    close(s.fds[2]);
    msp_io_listener_free(l);
    ev_loop_destroy(loop);
}

static void test_per_source_cap(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(0);
    seen_t s = {0};
    msp_io_listener_t *l = listener(loop, &s, 10, 1, 0);
    int a = dial(l, "127.0.0.1");
    turns(loop, 5);
    int b = dial(l, "127.0.0.1"); /* same source: over the cap */
    int c = dial(l, "127.0.0.2"); /* another source */
    turns(loop, 5);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.events[MSP_IO_LISTENER_REJECTED_SOURCE], 1);
    assert_int_equal(s.events[MSP_IO_LISTENER_REJECTED_TOTAL], 0);
    closed_by_peer(b);
    /* the first source's session ends: it may connect again */
    close(s.fds[0]);
    msp_io_listener_done(l, (struct sockaddr *)&s.peers[0], s.lens[0]);
    int d = dial(l, "127.0.0.1");
    turns(loop, 5);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.events[MSP_IO_LISTENER_REJECTED_SOURCE], 1);
    close(a);
    close(b);
    close(c);
    close(d);
    close(s.fds[1]);
    close(s.fds[2]);
    msp_io_listener_free(l);
    ev_loop_destroy(loop);
}

/* Fills every free descriptor under a lowered soft limit; returns how many (in fill). */
static int fill_descriptors(int *fill, int max)
{
    int n = 0;
    while (n < max) {
        int fd = dup(0);
        if (fd < 0) {
            assert_true(errno == EMFILE);
            break;
        }
        fill[n++] = fd;
    }
    return n;
}

static void test_pause_at_fd_limit(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(0);
    seen_t s = {0};
    msp_io_listener_t *l = listener(loop, &s, 0, 0, 1000.0); /* the retry timer never fires here */
    int a = dial(l, "127.0.0.1");
    turns(loop, 5);
    assert_int_equal(s.n, 1);
    int b_fd = socket(AF_INET, SOCK_STREAM, 0); /* made before the limit bites */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    static int fill[256];
    int nfill = fill_descriptors(fill, 256);
    assert_true(nfill > 0);
    /* a connection waits; accept fails with EMFILE */
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons(msp_io_listener_port(l));
    assert_int_equal(connect(b_fd, (struct sockaddr *)&to, sizeof(to)), 0);
    turns(loop, 50);
    assert_true(msp_io_listener_paused(l));
    assert_int_equal(s.events[MSP_IO_LISTENER_PAUSED], 1); /* once, however many turns */
    assert_int_equal(s.events[MSP_IO_LISTENER_RESUMED], 0);
    assert_int_equal(s.n, 1);
    /* a session ends and frees its descriptor: the waiting connection is taken at once, still at the limit */
    close(s.fds[0]);
    msp_io_listener_done(l, (struct sockaddr *)&s.peers[0], s.lens[0]);
    assert_int_equal(s.n, 2);
    assert_true(msp_io_listener_paused(l));
    assert_int_equal(s.events[MSP_IO_LISTENER_PAUSED], 1);
    assert_int_equal(s.events[MSP_IO_LISTENER_RESUMED], 0);
    /* descriptors to spare: the next session that ends resumes accepting, once */
    for (int i = 0; i < nfill; i++) {
        close(fill[i]);
    }
    close(s.fds[1]);
    msp_io_listener_done(l, (struct sockaddr *)&s.peers[1], s.lens[1]);
    assert_false(msp_io_listener_paused(l));
    assert_int_equal(s.events[MSP_IO_LISTENER_RESUMED], 1);
    assert_int_equal(s.events[MSP_IO_LISTENER_PAUSED], 1);
    assert_int_equal(msp_io_listener_sessions(l), 0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(a);
    close(b_fd);
    msp_io_listener_free(l);
    ev_loop_destroy(loop);
}

/* While paused, the retry timer tries again: with a short retry, freeing a descriptor is enough. */
static void test_retry_timer(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(0);
    seen_t s = {0};
    msp_io_listener_t *l = listener(loop, &s, 0, 0, 0.01);
    int b_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 256;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    static int fill[256];
    int nfill = fill_descriptors(fill, 256);
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons(msp_io_listener_port(l));
    assert_int_equal(connect(b_fd, (struct sockaddr *)&to, sizeof(to)), 0);
    turns(loop, 5);
    assert_true(msp_io_listener_paused(l));
    close(fill[--nfill]); /* one for the connection that waits, one to spare */
    close(fill[--nfill]);
    while (msp_io_listener_paused(l)) {
        ev_run(loop, EVRUN_ONCE); /* waits for the retry timer */
    }
    assert_int_equal(s.events[MSP_IO_LISTENER_PAUSED], 1);
    assert_int_equal(s.events[MSP_IO_LISTENER_RESUMED], 1);
    assert_int_equal(s.n, 1);
    for (int i = 0; i < nfill; i++) {
        close(fill[i]);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(b_fd);
    close(s.fds[0]);
    msp_io_listener_free(l);
    ev_loop_destroy(loop);
}

static void test_bad_cfg(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(0);
    seen_t s = {0};
    msp_io_listener_cfg_t c;
    memset(&c, 0, sizeof(c));
    c.host = "127.0.0.1";
    msp_io_listener_t *l = (msp_io_listener_t *)&s;
    msp_error_t err;
    assert_int_equal(msp_io_listener_new(loop, &c, &l, &err), MSP_ERR_ARGUMENT); /* no accept callback */
    assert_null(l);
    c.accept = on_accept;
    c.max_sessions = MSP_IO_LISTENER_LIMIT_MAX + 1;
    assert_int_equal(msp_io_listener_new(loop, &c, &l, &err), MSP_ERR_ARGUMENT);
    /* a port in use without SO_REUSEPORT: the error names it */
    c.max_sessions = 0;
    c.user = &s;
    msp_io_listener_t *first = listener(loop, &s, 0, 0, 0);
    c.port = msp_io_listener_port(first);
    assert_int_equal(msp_io_listener_new(loop, &c, &l, &err), MSP_ERR_IO);
    assert_non_null(strstr(err.detail, "cannot listen on 127.0.0.1:"));
    msp_io_listener_free(first);
    msp_io_listener_free(NULL);
    char text[64];
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(443);
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    assert_string_equal(msp_io_peer_text((struct sockaddr *)&a6, sizeof(a6), text, sizeof(text)), "[::1]:443");
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_total_cap),         cmocka_unit_test(test_per_source_cap),
        cmocka_unit_test(test_pause_at_fd_limit), cmocka_unit_test(test_retry_timer),
        cmocka_unit_test(test_bad_cfg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
