/* The accepting side of a server (msp/io_listener.h): caps, and a pause at the open-file limit. */
#define _GNU_SOURCE /* accept4 */
#include "msp/io_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#define SOURCE_BUCKETS 1024
#define ACCEPT_BATCH 64 /* connections taken per readiness event, so one busy listener cannot starve the loop */

/* The open sessions of one source address (IPv4-mapped IPv6 counts as IPv4). */
typedef struct source {
    struct source *next;
    uint8_t addr[16];
    uint8_t len;
    size_t n;
} source_t;

struct msp_io_listener {
    struct ev_loop *loop;
    msp_io_listener_cfg_t cfg;
    int fd;
    uint16_t port;
    ev_io w;
    ev_timer retry;
    int paused;
    size_t sessions;
    source_t *buckets[SOURCE_BUCKETS];
};

/* The address bytes that identify a source; 0 when the family has none (then no per-source cap applies). */
static size_t source_key(const struct sockaddr *sa, socklen_t len, uint8_t key[16])
{
    if (sa == NULL) {
        return 0;
    }
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(key, a->s6_addr + 12, 4);
            return 4;
        }
        memcpy(key, a->s6_addr, 16);
        return 16;
    }
    return 0;
}

static source_t **source_slot(msp_io_listener_t *l, const uint8_t *key, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ key[i]) * 16777619u;
    }
    source_t **p = &l->buckets[h % SOURCE_BUCKETS];
    while (*p != NULL && ((*p)->len != len || memcmp((*p)->addr, key, len) != 0)) {
        p = &(*p)->next;
    }
    return p;
}

/* Counts a session in; 0, or the event that refuses it (or -1: no memory). */
static int count_in(msp_io_listener_t *l, const struct sockaddr *sa, socklen_t salen)
{
    if (l->sessions >= l->cfg.max_sessions) {
        return MSP_IO_LISTENER_REJECTED_TOTAL;
    }
    uint8_t key[16];
    size_t len = source_key(sa, salen, key);
    if (len > 0) {
        source_t **p = source_slot(l, key, len);
        if (*p != NULL && (*p)->n >= l->cfg.max_per_source) {
            return MSP_IO_LISTENER_REJECTED_SOURCE;
        }
        if (*p == NULL) {
            *p = calloc(1, sizeof(**p));
            if (*p == NULL) {
                return -1;
            }
            memcpy((*p)->addr, key, len);
            (*p)->len = (uint8_t)len;
        }
        (*p)->n++;
    }
    l->sessions++;
    return 0;
}

static void count_out(msp_io_listener_t *l, const struct sockaddr *sa, socklen_t salen)
{
    uint8_t key[16];
    size_t len = source_key(sa, salen, key);
    if (len > 0) {
        source_t **p = source_slot(l, key, len);
        if (*p == NULL) {
            return; /* not one of ours: nothing was counted */
        }
        if (--(*p)->n == 0) {
            source_t *s = *p;
            *p = s->next;
            free(s);
        }
    }
    if (l->sessions > 0) {
        l->sessions--;
    }
}

static void report(msp_io_listener_t *l, int what, const struct sockaddr *sa, socklen_t len, int err)
{
    if (l->cfg.event != NULL) {
        l->cfg.event(l->cfg.user, what, sa, len, err);
    }
}

static int out_of_descriptors(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

static void pause_accepting(msp_io_listener_t *l, int e)
{
    ev_io_stop(l->loop, &l->w);
    if (!l->paused) {
        l->paused = 1;
        report(l, MSP_IO_LISTENER_PAUSED, NULL, 0, e);
    }
    ev_timer_stop(l->loop, &l->retry);
    ev_timer_set(&l->retry, l->cfg.retry, 0.);
    ev_timer_start(l->loop, &l->retry);
}

/* One connection: kept, refused over a cap, or handed over. */
static void take(msp_io_listener_t *l, int fd, const struct sockaddr *sa, socklen_t len)
{
    int rc = count_in(l, sa, len);
    if (rc != 0) {
        close(fd);
        if (rc > 0) {
            report(l, rc, sa, len, 0);
        }
        return;
    }
    if (l->cfg.accept(l->cfg.user, fd, sa, len) != 0) {
        close(fd);
        count_out(l, sa, len);
    }
}

static void resume_accepting(msp_io_listener_t *l)
{
    l->paused = 0;
    ev_timer_stop(l->loop, &l->retry);
    ev_io_start(l->loop, &l->w);
    report(l, MSP_IO_LISTENER_RESUMED, NULL, 0, 0);
}

/*
 * Accepts what is waiting; returns after a batch, when none waits, or at the
 * limit. While paused, connections are still taken as descriptors free up,
 * but accepting counts as resumed only once the queue is empty with a
 * descriptor to spare: a server held at the limit logs one pause, not a
 * pause and a resume for every session that ends.
 */
static void accept_some(msp_io_listener_t *l)
{
    for (int i = 0; i < ACCEPT_BATCH && l->fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            take(l, fd, (struct sockaddr *)&ss, len);
            continue;
        }
        int e = errno;
        if (out_of_descriptors(e)) {
            pause_accepting(l, e);
            return;
        }
        if (e != ECONNABORTED && e != EINTR) {
            if (l->paused) {
                resume_accepting(l);
            }
            return; /* EAGAIN: none waits */
        }
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    accept_some(w->data);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    accept_some(w->data);
}

static int bind_one(const struct addrinfo *ai, const msp_io_listener_cfg_t *cfg)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (cfg->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, cfg->backlog) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int open_socket(const msp_io_listener_cfg_t *cfg, int *out, msp_error_t *err)
{
    struct addrinfo hints, *res = NULL;
    char svc[8];
    const char *host = cfg->host != NULL ? cfg->host : "";
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(svc, sizeof(svc), "%u", cfg->port);
    int rc = getaddrinfo(cfg->host, svc, &hints, &res);
    if (rc != 0) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, NULL, "cannot listen on %s:%u: %s", host, cfg->port,
                             gai_strerror(rc));
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = bind_one(ai, cfg);
        e = fd < 0 ? errno : 0;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "cannot listen on %s:%u: %s", host, cfg->port, strerror(e));
    }
    *out = fd;
    return MSP_OK;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : 0;
}

static int check_cfg(const msp_io_listener_cfg_t *cfg, msp_io_listener_cfg_t *c, msp_error_t *err)
{
    *c = *cfg;
    c->backlog = c->backlog > 0 ? c->backlog : MSP_IO_LISTENER_BACKLOG;
    c->max_sessions = c->max_sessions > 0 ? c->max_sessions : MSP_IO_LISTENER_MAX_SESSIONS;
    c->max_per_source = c->max_per_source > 0 ? c->max_per_source : c->max_sessions;
    c->retry = c->retry > 0 ? c->retry : MSP_IO_LISTENER_RETRY;
    if (c->accept == NULL || (unsigned)c->backlog > MSP_IO_LISTENER_LIMIT_MAX ||
        c->max_sessions > MSP_IO_LISTENER_LIMIT_MAX || c->max_per_source > MSP_IO_LISTENER_LIMIT_MAX) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "listener: no accept callback, or a limit over %u",
                             MSP_IO_LISTENER_LIMIT_MAX);
    }
    return MSP_OK;
}

int msp_io_listener_new(struct ev_loop *loop, const msp_io_listener_cfg_t *cfg, msp_io_listener_t **out,
                        msp_error_t *err)
{
    *out = NULL;
    msp_io_listener_cfg_t c;
    if (cfg == NULL || loop == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "listener: no configuration or loop");
    }
    int rc = check_cfg(cfg, &c, err);
    if (rc != MSP_OK) {
        return rc;
    }
    msp_io_listener_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "listener: out of memory");
    }
    rc = open_socket(&c, &l->fd, err);
    if (rc != MSP_OK) {
        free(l);
        return rc;
    }
    l->loop = loop;
    l->cfg = c;
    l->port = bound_port(l->fd);
    ev_io_init(&l->w, on_readable, l->fd, EV_READ);
    l->w.data = l;
    ev_timer_init(&l->retry, on_retry, c.retry, 0.);
    l->retry.data = l;
    ev_io_start(loop, &l->w);
    *out = l;
    return MSP_OK;
}

void msp_io_listener_close(msp_io_listener_t *l)
{
    if (l == NULL || l->fd < 0) {
        return;
    }
    ev_io_stop(l->loop, &l->w);
    ev_timer_stop(l->loop, &l->retry);
    close(l->fd);
    l->fd = -1;
    l->port = 0;
    l->paused = 0;
}

void msp_io_listener_free(msp_io_listener_t *l)
{
    if (l == NULL) {
        return;
    }
    msp_io_listener_close(l);
    for (size_t i = 0; i < SOURCE_BUCKETS; i++) {
        while (l->buckets[i] != NULL) {
            source_t *s = l->buckets[i];
            l->buckets[i] = s->next;
            free(s);
        }
    }
    free(l);
}

void msp_io_listener_done(msp_io_listener_t *l, const struct sockaddr *peer, socklen_t peer_len)
{
    if (l == NULL) {
        return;
    }
    count_out(l, peer, peer_len);
    if (l->paused) {
        accept_some(l); /* a descriptor was just freed: the connections that waited get it */
    }
}

size_t msp_io_listener_sessions(const msp_io_listener_t *l)
{
    return l != NULL ? l->sessions : 0;
}

int msp_io_listener_paused(const msp_io_listener_t *l)
{
    return l != NULL && l->paused;
}

uint16_t msp_io_listener_port(const msp_io_listener_t *l)
{
    return l != NULL ? l->port : 0;
}

const char *msp_io_peer_text(const struct sockaddr *peer, socklen_t peer_len, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    int v6 = 0;
    if (peer != NULL && peer->sa_family == AF_INET && peer_len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)peer;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (peer != NULL && peer->sa_family == AF_INET6 && peer_len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)peer;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        v6 = 1;
    }
    snprintf(out, size, v6 ? "[%s]:%u" : "%s:%u", host, port);
    return out;
}
