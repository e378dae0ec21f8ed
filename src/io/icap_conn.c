/*
 * The ICAP driver (msp/tlmsp_icap.h): one transaction over one non-blocking
 * connection on a libev loop. It moves the codec's bytes and keeps a time
 * limit; the codec (src/tlmsp_app/icap.c) knows the protocol.
 */
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

#include <ev.h>

#include "msp/tlmsp_icap.h"

#define DEFAULT_TIMEOUT 10.0
#define READ_SIZE 65536

struct msp_io_icap {
    struct ev_loop *loop;
    ev_io io;
    ev_timer timer;
    int fd;
    msp_icap_url_t url;
    msp_buf_t out; /* what is still to be written, from out_off */
    size_t out_off;
    uint8_t *rest; /* the body after the preview, for a 100 Continue */
    size_t rest_len;
    int pending_errno; /* connect() failed before the loop ran: reported from the timer */
    char detail[352];
    msp_icap_resp_t *resp;
    msp_io_icap_fn done;
    void *user;
};

int msp_io_icap_resolve(const msp_icap_url_t *u, struct sockaddr_storage *addr, socklen_t *addrlen, msp_error_t *err)
{
    struct addrinfo hints, *res = NULL;
    char svc[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(svc, sizeof(svc), "%u", u->port);
    int rc = getaddrinfo(u->host, svc, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*addr)) {
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return msp_error_set(err, MSP_ERR_NOT_FOUND, NULL, "icap://%s:%u: cannot resolve the name: %s", u->host,
                             u->port, rc != 0 ? gai_strerror(rc) : "no address");
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return MSP_OK;
}

/* The end: watchers stopped, socket closed, the caller told (it may free t: nothing touches t after). */
static void finish(msp_io_icap_t *t, int err, const msp_icap_resp_info_t *info)
{
    ev_io_stop(t->loop, &t->io);
    ev_timer_stop(t->loop, &t->timer);
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    msp_io_icap_fn done = t->done;
    t->done = NULL;
    if (done != NULL) {
        done(t->user, err, info, err == MSP_OK ? "" : t->detail);
    }
}

static void fail(msp_io_icap_t *t, int err, const char *why, int e)
{
    /* the detail is cut to its buffer: the service's query string may be long */
    int n = snprintf(t->detail, sizeof(t->detail), "icap://%.80s:%u/%.80s: ", t->url.host, t->url.port, t->url.service);
    snprintf(t->detail + n, sizeof(t->detail) - (size_t)n, "%.160s%s%.80s", why, e != 0 ? ": " : "",
             e != 0 ? strerror(e) : "");
    finish(t, err, NULL);
}

static void watch(msp_io_icap_t *t, int events)
{
    ev_io_stop(t->loop, &t->io);
    ev_io_set(&t->io, t->fd, events);
    ev_io_start(t->loop, &t->io);
}

static void on_write(msp_io_icap_t *t)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr != 0) {
        fail(t, MSP_ERR_IO, "cannot connect", soerr);
        return;
    }
    while (t->out_off < t->out.len) {
        ssize_t n = send(t->fd, t->out.base + t->out_off, t->out.len - t->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        if (n <= 0) {
            fail(t, MSP_ERR_IO, "cannot send the request", errno);
            return;
        }
        t->out_off += (size_t)n;
    }
    t->out.len = t->out_off = 0;
    watch(t, EV_READ);
}

/* A 100 Continue: the rest of the body goes, and the answer that counts follows it. */
static int on_continue(msp_io_icap_t *t)
{
    const uint8_t *extra;
    size_t n = msp_icap_resp_extra(t->resp, &extra);
    uint8_t *keep = n > 0 ? malloc(n) : NULL;
    if (n > 0 && keep == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    if (n > 0) {
        memcpy(keep, extra, n);
    }
    msp_icap_resp_reset(t->resp);
    int done = 0, ret = msp_icap_request_rest(t->rest, t->rest_len, &t->out);
    free(t->rest);
    t->rest = NULL;
    t->rest_len = 0;
    if (ret == MSP_OK && n > 0) {
        ret = msp_icap_resp_input(t->resp, keep, n, &done, NULL);
    }
    free(keep);
    if (ret == MSP_OK) {
        watch(t, EV_WRITE);
    }
    return ret;
}

static void on_read(msp_io_icap_t *t)
{
    uint8_t buf[READ_SIZE];
    ssize_t n = recv(t->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        fail(t, MSP_ERR_IO, n == 0 ? "the server closed the connection before answering" : "cannot read",
             n == 0 ? 0 : errno);
        return;
    }
    msp_error_t err;
    msp_error_clear(&err);
    int done = 0, ret = msp_icap_resp_input(t->resp, buf, (size_t)n, &done, &err);
    if (ret != MSP_OK) {
        fail(t, ret, err.detail, 0);
        return;
    }
    if (!done) {
        return;
    }
    const msp_icap_resp_info_t *info = msp_icap_resp_info(t->resp);
    if (info->status == 100 && t->rest != NULL) {
        if (on_continue(t) != MSP_OK) {
            fail(t, MSP_ERR_NO_MEMORY, "out of memory", 0);
        }
        return;
    }
    if (info->status == 100) {
        fail(t, MSP_ERR_SYNTAX, "100 Continue with nothing left to send", 0);
        return;
    }
    finish(t, MSP_OK, info);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    msp_io_icap_t *t = w->data;
    if (revents & EV_WRITE) {
        on_write(t);
    } else if (revents & EV_READ) {
        on_read(t);
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    msp_io_icap_t *t = w->data;
    if (t->pending_errno != 0) {
        fail(t, MSP_ERR_IO, "cannot connect", t->pending_errno);
        return;
    }
    fail(t, MSP_ERR_LIMIT, "no answer in time", 0);
}

static int start_connect(msp_io_icap_t *t, const msp_io_icap_cfg_t *cfg)
{
    int one = 1;
    t->fd = socket(cfg->addr->sa_family, SOCK_STREAM, 0);
    if (t->fd < 0) {
        return errno;
    }
    int fl = fcntl(t->fd, F_GETFL);
    if (fl < 0 || fcntl(t->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        return errno;
    }
    setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(t->fd, cfg->addr, cfg->addrlen) != 0 && errno != EINPROGRESS) {
        return errno;
    }
    return 0;
}

int msp_io_icap_new(struct ev_loop *loop, const msp_io_icap_cfg_t *cfg, msp_icap_method_t method,
                    const uint8_t *req_hdr, size_t req_hdr_len, const uint8_t *res_hdr, size_t res_hdr_len,
                    const uint8_t *body, size_t body_len, msp_io_icap_fn done, void *user, msp_io_icap_t **out)
{
    *out = NULL;
    msp_io_icap_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    t->loop = loop;
    t->fd = -1;
    t->url = *cfg->url;
    t->done = done;
    t->user = user;
    msp_buf_init(&t->out, MSP_ICAP_MAX_RESPONSE + MSP_ICAP_MAX_HEADERS);
    size_t sent = 0;
    int ret = msp_icap_resp_new(0, &t->resp);
    if (ret == MSP_OK) {
        ret = method == MSP_ICAP_OPTIONS
                  ? msp_icap_options_request(&t->url, &t->out)
                  : msp_icap_request(&t->url, method, req_hdr, req_hdr_len, res_hdr, res_hdr_len, body, body_len,
                                     cfg->preview, cfg->allow204, &t->out, &sent);
    }
    if (ret == MSP_OK && method != MSP_ICAP_OPTIONS && sent < body_len) {
        t->rest_len = body_len - sent;
        t->rest = malloc(t->rest_len);
        ret = t->rest != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
        if (ret == MSP_OK) {
            memcpy(t->rest, body + sent, t->rest_len);
        }
    }
    if (ret != MSP_OK) {
        t->done = NULL;
        msp_io_icap_free(t);
        return ret;
    }
    ev_io_init(&t->io, on_io, -1, EV_WRITE);
    t->io.data = t;
    ev_timer_init(&t->timer, on_timer, cfg->timeout > 0 ? cfg->timeout : DEFAULT_TIMEOUT, 0);
    t->timer.data = t;
    int e = start_connect(t, cfg);
    if (e != 0) {
        /* reported from the loop, as promised */
        t->pending_errno = e;
        ev_timer_set(&t->timer, 0, 0);
    } else {
        watch(t, EV_WRITE);
    }
    ev_timer_start(loop, &t->timer);
    *out = t;
    return MSP_OK;
}

void msp_io_icap_free(msp_io_icap_t *t)
{
    if (t == NULL) {
        return;
    }
    ev_io_stop(t->loop, &t->io);
    ev_timer_stop(t->loop, &t->timer);
    if (t->fd >= 0) {
        close(t->fd);
    }
    msp_buf_free(&t->out);
    msp_icap_resp_free(t->resp);
    free(t->rest);
    free(t);
}
