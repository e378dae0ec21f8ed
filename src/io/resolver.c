/*
 * The next-hop resolver (msp/tlmsp_io.h): one c-ares channel on a libev
 * loop, an ev_io per socket c-ares uses (ARES_OPT_SOCK_STATE_CB), an
 * ev_timer for c-ares's own retries (ares_timeout), a time-out per lookup
 * and a bound on the lookups in flight.
 */
#define _DEFAULT_SOURCE /* getaddrinfo, fd_set and struct timeval for ares.h */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ares.h>
#include <ev.h>

#include "msp/error.h"
#include "msp/tlmsp_io.h"

typedef struct res_sock {
    ev_io w;
    msp_io_resolver_t *r;
    struct res_sock *next;
} res_sock_t;

struct msp_io_resolver {
    struct ev_loop *loop;
    ares_channel ch;
    ev_timer tick;      /* c-ares's own retries and time-outs (ares_timeout) */
    res_sock_t *socks;  /* one watcher per socket c-ares uses */
    size_t inflight;    /* lookups c-ares holds, cancelled ones too until it lets them go */
    size_t max_lookups; /* the bound on inflight, so on the lookups' memory */
    double timeout;
};

struct msp_io_resolver_lookup {
    msp_io_resolver_t *r;
    msp_io_resolver_fn done; /* NULL once cancelled or timed out: the answer is then dropped */
    void *user;
    ev_timer timeout;
    int starting, finished, fd; /* an answer given inside ares_getaddrinfo itself (the hosts file) */
    msp_error_t err;            /* ... and its reason */
    char host[256];
    uint16_t port;
};

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* A non-blocking connection under way to one address: the fd, or -1 with errno set. */
static int connect_to(int family, const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM, 0), one = 1;
    if (fd >= 0 && (nonblocking(fd) != 0 || (connect(fd, addr, len) != 0 && errno != EINPROGRESS))) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static void tick_again(msp_io_resolver_t *r)
{
    struct timeval tv, *t = ares_timeout(r->ch, NULL, &tv);
    ev_timer_stop(r->loop, &r->tick);
    if (t != NULL) {
        ev_timer_set(&r->tick, (double)t->tv_sec + (double)t->tv_usec / 1e6, 0.);
        ev_timer_start(r->loop, &r->tick);
    }
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    res_sock_t *s = (res_sock_t *)w;
    msp_io_resolver_t *r = s->r;
    int fd = w->fd; /* s may be freed by on_sock_state inside ares_process_fd */
    ares_process_fd(r->ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD, (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    tick_again(r);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    msp_io_resolver_t *r = w->data;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    tick_again(r);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares opened, changed or closed one of its sockets. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    msp_io_resolver_t *r = data;
    res_sock_t **p = &r->socks;
    while (*p != NULL && (*p)->w.fd != fd) {
        p = &(*p)->next;
    }
    res_sock_t *s = *p;
    if (s != NULL) {
        ev_io_stop(r->loop, &s->w);
    }
    if (!readable && !writable) {
        if (s != NULL) {
            *p = s->next;
            free(s);
        }
        return;
    }
    if (s == NULL && (s = calloc(1, sizeof(*s))) == NULL) {
        return; /* without a watcher the lookup ends by its time-out */
    }
    if (*p == NULL) {
        s->r = r;
        s->next = r->socks;
        r->socks = s;
    }
    ev_io_init(&s->w, on_io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    ev_io_start(r->loop, &s->w);
}

static int start_channel(msp_io_resolver_t *r, const msp_io_resolver_cfg_t *cfg, msp_error_t *err)
{
    struct ares_options opts;
    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = r;
    opts.timeout = 1500; /* ms; with 2 tries c-ares gives up after 4.5 s per server, within the default time-out */
    opts.tries = 2;
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        return msp_error_set(err, rc == ARES_ENOMEM ? MSP_ERR_NO_MEMORY : MSP_ERR_IO, NULL,
                             "cannot start the name resolver: %s", ares_strerror(rc));
    }
    rc = ares_init_options(&r->ch, &opts, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc == ARES_SUCCESS && cfg->servers != NULL) {
        rc = ares_set_servers_ports_csv(r->ch, cfg->servers);
        if (rc != ARES_SUCCESS) {
            ares_destroy(r->ch);
            rc = rc == ARES_ENOMEM ? rc : ARES_EBADSTR;
        }
    }
    if (rc != ARES_SUCCESS) {
        ares_library_cleanup();
        int code = rc == ARES_ENOMEM ? MSP_ERR_NO_MEMORY : rc == ARES_EBADSTR ? MSP_ERR_ARGUMENT : MSP_ERR_IO;
        return msp_error_set(err, code, NULL, "cannot start the name resolver: %s", ares_strerror(rc));
    }
    return MSP_OK;
}

int msp_io_resolver_new(struct ev_loop *loop, const msp_io_resolver_cfg_t *cfg, msp_io_resolver_t **out,
                        msp_error_t *err)
{
    static const msp_io_resolver_cfg_t defaults = {MSP_IO_RESOLVER_TIMEOUT, MSP_IO_RESOLVER_LOOKUPS_MAX, NULL};
    *out = NULL;
    if (loop == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "cannot start the name resolver: no loop");
    }
    cfg = cfg != NULL ? cfg : &defaults;
    msp_io_resolver_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "cannot start the name resolver: out of memory");
    }
    r->loop = loop;
    r->timeout = cfg->timeout > 0 ? cfg->timeout : MSP_IO_RESOLVER_TIMEOUT;
    r->max_lookups = cfg->max_lookups > 0 ? cfg->max_lookups : MSP_IO_RESOLVER_LOOKUPS_MAX;
    int rc = start_channel(r, cfg, err);
    if (rc != MSP_OK) {
        free(r);
        return rc;
    }
    ev_timer_init(&r->tick, on_tick, 0., 0.);
    r->tick.data = r;
    *out = r;
    return MSP_OK;
}

void msp_io_resolver_free(msp_io_resolver_t *r)
{
    if (r == NULL) {
        return;
    }
    ev_timer_stop(r->loop, &r->tick);
    ares_destroy(r->ch); /* every lookup ends with ARES_EDESTRUCTION: none is answered */
    while (r->socks != NULL) {
        res_sock_t *s = r->socks;
        r->socks = s->next;
        ev_io_stop(r->loop, &s->w);
        free(s);
    }
    ares_library_cleanup();
    free(r);
}

static int connect_nodes(msp_io_resolver_lookup_t *l, const struct ares_addrinfo *res)
{
    int fd = -1;
    for (const struct ares_addrinfo_node *n = res != NULL ? res->nodes : NULL; n != NULL && fd < 0; n = n->ai_next) {
        fd = connect_to(n->ai_family, n->ai_addr, n->ai_addrlen);
    }
    if (fd < 0) {
        int found = res != NULL && res->nodes != NULL;
        msp_error_set(&l->err, found ? MSP_ERR_IO : MSP_ERR_NOT_FOUND, NULL, "cannot connect to %s:%u: %s", l->host,
                      l->port, found ? strerror(errno) : "no address");
    }
    return fd;
}

static void on_lookup(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    msp_io_resolver_lookup_t *l = arg;
    msp_io_resolver_t *r = l->r;
    (void)timeouts;
    r->inflight--;
    int fd = -1;
    if (status == ARES_EDESTRUCTION) {
        l->done = NULL; /* the resolver is going */
    } else if (l->done != NULL && status != ARES_SUCCESS) {
        msp_error_set(&l->err, status == ARES_ENOMEM ? MSP_ERR_NO_MEMORY : MSP_ERR_NOT_FOUND, NULL,
                      "next hop %s:%u: cannot resolve the name: %s", l->host, l->port, ares_strerror(status));
    } else if (l->done != NULL) {
        fd = connect_nodes(l, res);
    }
    if (res != NULL) {
        ares_freeaddrinfo(res);
    }
    if (l->starting) {
        l->finished = 1;
        l->fd = fd;
        return;
    }
    msp_io_resolver_fn done = l->done;
    void *user = l->user;
    msp_error_t e = l->err;
    ev_timer_stop(r->loop, &l->timeout);
    free(l);
    if (done != NULL) {
        done(user, fd, &e);
    }
}

static void on_lookup_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    msp_io_resolver_lookup_t *l = w->data;
    (void)loop;
    (void)revents;
    msp_io_resolver_fn done = l->done;
    l->done = NULL; /* c-ares's late answer is dropped; l goes with it */
    msp_error_set(&l->err, MSP_ERR_NOT_FOUND, NULL, "next hop %s:%u: no answer from the name servers within %g s",
                  l->host, l->port, l->r->timeout);
    done(l->user, -1, &l->err);
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* A connection to host:port, the addresses from getaddrinfo in order; flags AI_NUMERICHOST: an IP literal, no
 * question to the network. */
static int connect_gai(const char *host, uint16_t port, int flags, int *fd, msp_error_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = flags}, *res = NULL;
    char svc[8];
    snprintf(svc, sizeof(svc), "%u", port);
    *fd = -1;
    int rc = getaddrinfo(host, svc, &hints, &res);
    if (rc != 0) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, NULL, "%s:%u: %s", host, port, gai_strerror(rc));
    }
    for (struct addrinfo *ai = res; ai != NULL && *fd < 0; ai = ai->ai_next) {
        *fd = connect_to(ai->ai_family, ai->ai_addr, ai->ai_addrlen);
    }
    int e = errno;
    freeaddrinfo(res);
    if (*fd < 0) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "cannot connect to %s:%u: %s", host, port, strerror(e));
    }
    return MSP_OK;
}

static int hosts_know(msp_io_resolver_t *r, const char *host)
{
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < 2; i++) {
        struct hostent *he = NULL;
        if (ares_gethostbyname_file(r->ch, host, families[i], &he) == ARES_SUCCESS) {
            ares_free_hostent(he);
            return 1;
        }
    }
    return 0;
}

static int refuse_full(msp_io_resolver_t *r, const char *host, uint16_t port, msp_error_t *err)
{
    return msp_error_set(err, MSP_ERR_LIMIT, NULL,
                         "next hop %s:%u: %zu name lookups in flight already; session refused", host, port,
                         r->max_lookups);
}

int msp_io_resolver_connect(msp_io_resolver_t *r, const char *host, uint16_t port, msp_io_resolver_fn done, void *user,
                            int *fd, msp_io_resolver_lookup_t **lookup, msp_error_t *err)
{
    *fd = -1;
    *lookup = NULL;
    if (is_ip_literal(host)) {
        return connect_gai(host, port, AI_NUMERICHOST, fd, err);
    }
    if (r == NULL || done == NULL || strlen(host) >= sizeof(((msp_io_resolver_lookup_t *)0)->host)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "next hop %.255s:%u: cannot look the name up", host, port);
    }
    /* over the limit, only a name the hosts file answers at once goes on */
    int full = r->inflight >= r->max_lookups;
    if (full && !hosts_know(r, host)) {
        return refuse_full(r, host, port, err);
    }
    msp_io_resolver_lookup_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "next hop %s:%u: out of memory", host, port);
    }
    l->r = r;
    l->done = done;
    l->user = user;
    snprintf(l->host, sizeof(l->host), "%s", host);
    l->port = port;
    char svc[8];
    snprintf(svc, sizeof(svc), "%u", port);
    struct ares_addrinfo_hints hints = {ARES_AI_NUMERICSERV, AF_UNSPEC, SOCK_STREAM, 0};
    ev_timer_init(&l->timeout, on_lookup_timeout, r->timeout, 0.);
    l->timeout.data = l;
    r->inflight++;
    l->starting = 1;
    ares_getaddrinfo(r->ch, host, svc, &hints, on_lookup, l);
    l->starting = 0;
    if (l->finished) {
        int rc = l->fd >= 0 ? MSP_OK : l->err.code != MSP_OK ? l->err.code : MSP_ERR_NOT_FOUND;
        *fd = l->fd;
        if (rc != MSP_OK && err != NULL) {
            *err = l->err;
        }
        free(l);
        return rc;
    }
    tick_again(r);
    if (full) {
        l->done = NULL; /* the hosts file did not answer after all: c-ares lets l go with its answer */
        return refuse_full(r, host, port, err);
    }
    ev_timer_start(r->loop, &l->timeout);
    *lookup = l;
    return MSP_OK;
}

void msp_io_resolver_cancel(msp_io_resolver_lookup_t *l)
{
    if (l == NULL) {
        return;
    }
    l->done = NULL;
    ev_timer_stop(l->r->loop, &l->timeout);
}

int msp_io_connect(const char *host, uint16_t port, int *fd, msp_error_t *err)
{
    return connect_gai(host, port, 0, fd, err);
}
