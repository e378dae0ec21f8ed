/*
 * msp ets keymgr transport: HTTPS with mutual TLS 1.3 (ets.md 3.4 ETS-KT-1,
 * ETS-KT-4): libevent's evhttp over bufferevent_openssl, server and client,
 * with bounded heads and bodies and timeouts.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cmd_ets_keymgr.h"
#include "msp/error.h"

volatile sig_atomic_t km_stop;

static void on_signal(int sig)
{
    (void)sig;
    km_stop = 1;
}

void km_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void ssl_why(char *why, size_t n, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    snprintf(why, n, "%s%s%s", what, e != 0 ? ": " : "", buf);
    ERR_clear_error();
}

SSL_CTX *km_tls_ctx(int server, const char *cert, const char *key, const char *ca, char *why, size_t why_len)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
        ssl_why(why, why_len, "cannot create a TLS context");
    } else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_why(why, why_len, cert);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ssl_why(why, why_len, key);
    } else if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        ssl_why(why, why_len, ca);
    } else {
        /* ETS-KT-4: each side authorises the other; here by a certificate chaining to the given CA */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        if (server) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
            if (names != NULL) {
                SSL_CTX_set_client_CA_list(ctx, names);
            }
            SSL_CTX_set_num_tickets(ctx, 0);
        }
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

int km_split_hostport(const char *s, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return -1;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return -1;
        }
        hl = (size_t)(colon - s);
    }
    size_t pl = strlen(colon + 1);
    if (hl == 0 || hl >= host_len || pl == 0 || pl >= port_len || strspn(colon + 1, "0123456789") != pl) {
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return 0;
}

int km_listen(const char *hostport, char *why, size_t why_len)
{
    char host[256], port[16];
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (km_split_hostport(hostport, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(why, why_len, "%s: expected HOST:PORT", hostport);
        return -1;
    }
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(why, why_len, "%s: %s", hostport, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0 || evutil_make_socket_nonblocking(fd) != 0) {
        snprintf(why, why_len, "%s: %s", hostport, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/*
 * Debian's libev.so.4 (the TLMSP drivers) exports libevent 1.x names too
 * (event_base_new, event_add, ...): whichever library the dynamic linker
 * loads first wins them, libevent's own internal calls included, and with
 * libev's a libevent loop crashes. tools/msp/CMakeLists.txt links libevent
 * first; this says so plainly should that ever change.
 */
static int libevent_wins(char *why, size_t why_len)
{
    Dl_info info;
    if (dladdr((void *)event_base_new, &info) != 0 && info.dli_fname != NULL &&
        strstr(info.dli_fname, "libev.so") != NULL) {
        snprintf(why, why_len, "event_base_new comes from %s, not libevent (link libevent before libev)",
                 info.dli_fname);
        return 0;
    }
    return 1;
}

/* ---- server ---- */

typedef struct server {
    struct event_base *base;
    SSL_CTX *ctx;
    const char *allow, *cmd;
    km_handler_fn handler;
    km_tick_fn tick;
    void *user;
    struct event *timer;
    int lingering; /* connections draining after close */
    struct evconnlistener *listener;
    struct event *resume; /* re-enables the listener after a failed accept */
    int conns;            /* TLS connections alive (their SSL objects) */
} server_t;

/* The one server of this process, for the OpenSSL info callback (which has no user pointer of ours). */
static server_t *the_server;

typedef struct lingering {
    server_t *srv;
    struct event *ev;
    int fd;
} lingering_t;

static void linger_done(evutil_socket_t fd, short what, void *arg)
{
    lingering_t *l = arg;
    uint8_t sink[4096];
    if ((what & EV_READ) && recv(fd, sink, sizeof(sink), 0) > 0) {
        return; /* more to drop; EV_PERSIST brings us back, the timeout still bounds it */
    }
    event_free(l->ev);
    close(l->fd);
    l->srv->lingering--;
    free(l);
}

/*
 * Closes without a reset. evhttp closes the socket right after the last
 * write; a close() with unread bytes in the receive buffer (the client's
 * Finished and request after a refused handshake, or its close_notify)
 * makes the kernel send RST, which can overtake the alert or answer in
 * flight. A duplicate of the descriptor keeps the socket open: FIN now,
 * then drop what the peer still sends until it closes, at most
 * KM_LINGER_MS, at most KM_MAX_LINGER sockets at a time.
 */
static void linger(server_t *srv, int fd)
{
    struct timeval tv = {KM_LINGER_MS / 1000, (KM_LINGER_MS % 1000) * 1000};
    lingering_t *l = srv->lingering < KM_MAX_LINGER ? calloc(1, sizeof(*l)) : NULL;
    int dup_fd = l != NULL && fd >= 0 ? dup(fd) : -1;
    if (dup_fd < 0) {
        free(l);
        return;
    }
    shutdown(dup_fd, SHUT_WR);
    l->srv = srv;
    l->fd = dup_fd;
    l->ev = event_new(srv->base, dup_fd, EV_READ | EV_PERSIST, linger_done, l);
    if (l->ev == NULL || event_add(l->ev, &tv) != 0) {
        if (l->ev != NULL) {
            event_free(l->ev);
        }
        close(dup_fd);
        free(l);
        return;
    }
    srv->lingering++;
}

/*
 * evhttp (libevent 2.1) gives no hook on a connection before its first
 * request, so a refused handshake is seen here: OpenSSL calls this after
 * writing a fatal alert (the reason is on the error queue) or reading one.
 */
static void on_tls_info(const SSL *ssl, int where, int ret)
{
    server_t *srv = the_server;
    int fatal = (ret >> 8) == SSL3_AL_FATAL;
    if (srv == NULL || !fatal || SSL_is_init_finished(ssl) || !(where & (SSL_CB_WRITE_ALERT | SSL_CB_READ_ALERT))) {
        return;
    }
    char why[300];
    if (where & SSL_CB_WRITE_ALERT) {
        unsigned long e = ERR_peek_last_error();
        char buf[256] = "";
        if (e != 0) {
            ERR_error_string_n(e, buf, sizeof(buf));
        }
        snprintf(why, sizeof(why), "%s", e != 0 ? buf : SSL_alert_desc_string_long(ret));
        linger(srv, SSL_get_fd(ssl));
    } else {
        snprintf(why, sizeof(why), "the client sent the alert %s", SSL_alert_desc_string_long(ret));
    }
    fprintf(stderr, "%s: - - TLS handshake failed: %s\n", srv->cmd, why);
}

/*
 * The connection count. evhttp (libevent 2.1) has no connection limit and
 * no hook when a connection ends, but every connection owns one SSL, which
 * evhttp frees with it: the SSL's ex_data free callback is that hook.
 */
static int conn_index = -1;

static void conn_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    server_t *srv = ptr;
    if (srv != NULL && --srv->conns == KM_MAX_CONNS - 1 && srv->listener != NULL) {
        evconnlistener_enable(srv->listener);
    }
}

static struct bufferevent *new_tls_bev(struct event_base *base, void *arg)
{
    server_t *srv = arg;
    SSL *ssl = SSL_new(srv->ctx);
    if (ssl == NULL || SSL_set_ex_data(ssl, conn_index, srv) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (++srv->conns == KM_MAX_CONNS && srv->listener != NULL) {
        /* back-pressure: new clients wait in the listen backlog until a connection ends */
        evconnlistener_disable(srv->listener);
        fprintf(stderr, "%s: - - %d connections open: not accepting until one ends\n", srv->cmd, KM_MAX_CONNS);
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        SSL_free(ssl); /* libevent 2.1 leaves it to us when it fails; the count goes down with it */
    }
    return bev;
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    server_t *srv = arg;
    if (srv->conns < KM_MAX_CONNS) {
        evconnlistener_enable(srv->listener);
    }
}

/* accept() failed (out of descriptors or memory): pause instead of spinning on a readable listener. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    server_t *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval tv = {KM_ACCEPT_PAUSE_MS / 1000, (KM_ACCEPT_PAUSE_MS % 1000) * 1000};
    fprintf(stderr, "%s: - - cannot accept a connection: %s; trying again in %d ms\n", srv->cmd,
            evutil_socket_error_to_string(err), KM_ACCEPT_PAUSE_MS);
    evconnlistener_disable(lev);
    event_add(srv->resume, &tv);
}

static void peer_subject(SSL *ssl, char *out, size_t n)
{
    X509 *x = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    BIO *b = BIO_new(BIO_s_mem());
    out[0] = '\0';
    if (x != NULL && b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int r = BIO_read(b, out, (int)n - 1);
        out[r > 0 ? r : 0] = '\0';
    }
    BIO_free(b);
}

static const char *method_name(enum evhttp_cmd_type t)
{
    static const struct {
        enum evhttp_cmd_type type;
        const char *name;
    } names[] = {{EVHTTP_REQ_GET, "GET"},     {EVHTTP_REQ_POST, "POST"},       {EVHTTP_REQ_HEAD, "HEAD"},
                 {EVHTTP_REQ_PUT, "PUT"},     {EVHTTP_REQ_DELETE, "DELETE"},   {EVHTTP_REQ_OPTIONS, "OPTIONS"},
                 {EVHTTP_REQ_TRACE, "TRACE"}, {EVHTTP_REQ_CONNECT, "CONNECT"}, {EVHTTP_REQ_PATCH, "PATCH"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].type == t) {
            return names[i].name;
        }
    }
    return "-";
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    linger(arg, bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)));
}

static void error_body(km_response_t *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain";
    msp_buf_printf(&resp->body, "%s\n", text);
}

static void on_request(struct evhttp_request *r, void *arg)
{
    server_t *srv = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r);
    km_request_t req;
    km_response_t resp;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    msp_buf_init(&resp.body, KM_MAX_BODY + 4096);
    evhttp_connection_set_closecb(evcon, on_close, srv);
    SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
    peer_subject(ssl, req.peer, sizeof(req.peer));
    req.peer_cert = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    req.accept = evhttp_find_header(evhttp_request_get_input_headers(r), "Accept");
    req.content_type = evhttp_find_header(evhttp_request_get_input_headers(r), "Content-Type");
    snprintf(req.method, sizeof(req.method), "%s", method_name(evhttp_request_get_command(r)));
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    req.body_len = evbuffer_get_length(in);
    req.body = evbuffer_pullup(in, -1);
    const char *uri = evhttp_request_get_uri(r);
    if (strlen(uri) >= sizeof(req.target)) {
        error_body(&resp, 400, "request target over 4 KiB");
    } else if (snprintf(req.target, sizeof(req.target), "%s", uri),
               srv->allow != NULL && fnmatch(srv->allow, req.peer, 0) != 0) {
        error_body(&resp, 403, "client certificate subject not allowed");
    } else if (req.body_len > 0 && (strcmp(req.method, "GET") == 0 || strcmp(req.method, "HEAD") == 0)) {
        error_body(&resp, 400, "a body is not accepted with GET or HEAD");
    } else {
        srv->handler(srv->user, &req, &resp);
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    struct evbuffer *body = evbuffer_new();
    size_t len = msp_buf_error(&resp.body) == MSP_OK ? resp.body.len : 0;
    evhttp_add_header(h, "Content-Type", resp.content_type ? resp.content_type : "text/plain");
    evhttp_add_header(h, "Connection", "close");
    if (resp.allow != NULL) {
        evhttp_add_header(h, "Allow", resp.allow);
    }
    if (body != NULL && len > 0) {
        evbuffer_add(body, resp.body.base, len);
    }
    /* evhttp leaves the body out for HEAD (RFC 9110 9.3.2); a NULL reason is the standard phrase */
    evhttp_send_reply(r, resp.status, NULL, body);
    fprintf(stderr, "%s: \"%s\" %s %s %d %zu\n", srv->cmd, req.peer, req.method, req.target[0] ? req.target : "-",
            resp.status, len);
    evbuffer_free(body);
    msp_buf_free(&resp.body);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    server_t *srv = arg;
    (void)fd;
    (void)what;
    if (km_stop) {
        event_base_loopbreak(srv->base);
        return;
    }
    /* a signal ends the loop within a quarter of a second, whatever the tick asks */
    int ms = srv->tick != NULL ? srv->tick(srv->user) : 250;
    ms = ms < 0 || ms > 250 ? 250 : ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(srv->timer, &tv);
}

void km_serve(int fd, SSL_CTX *ctx, const char *allow_subject, const char *cmd, km_handler_fn handler, km_tick_fn tick,
              void *user)
{
    server_t srv = {.ctx = ctx, .allow = allow_subject, .cmd = cmd, .handler = handler, .tick = tick, .user = user};
    struct evhttp *http = NULL;
    char why[300];
    if (!libevent_wins(why, sizeof(why))) {
        fprintf(stderr, "%s: error: %s\n", cmd, why);
        return;
    }
    int own_fd = dup(fd); /* evhttp closes what it listens on */
    srv.base = event_base_new();
    http = srv.base != NULL ? evhttp_new(srv.base) : NULL;
    srv.timer = srv.base != NULL ? evtimer_new(srv.base, on_tick, &srv) : NULL;
    srv.resume = srv.base != NULL ? evtimer_new(srv.base, resume_accepting, &srv) : NULL;
    if (conn_index < 0) {
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_gone);
    }
    struct evhttp_bound_socket *bound = NULL;
    if (http != NULL && srv.timer != NULL && srv.resume != NULL && own_fd >= 0 && conn_index >= 0) {
        bound = evhttp_accept_socket_with_handle(http, own_fd);
    }
    srv.listener = bound != NULL ? evhttp_bound_socket_get_listener(bound) : NULL;
    if (srv.listener == NULL) {
        fprintf(stderr, "%s: error: cannot start the HTTP server\n", cmd);
        if (own_fd >= 0) {
            close(own_fd);
        }
    } else {
        evconnlistener_set_error_cb(srv.listener, on_accept_error);
        evhttp_set_bevcb(http, new_tls_bev, &srv);
        evhttp_set_gencb(http, on_request, &srv);
        evhttp_set_max_headers_size(http, KM_MAX_HEAD);
        evhttp_set_max_body_size(http, KM_MAX_BODY);
        evhttp_set_timeout(http, KM_IO_TIMEOUT);
        /* every method reaches the handlers, which answer 405 with Allow (evhttp's own answer would be 501) */
        evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                             EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                             EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
        the_server = &srv;
        SSL_CTX_set_info_callback(ctx, on_tls_info);
        on_tick(-1, 0, &srv);
        event_base_dispatch(srv.base);
        SSL_CTX_set_info_callback(ctx, NULL);
        the_server = NULL;
    }
    if (http != NULL) {
        srv.listener = NULL; /* freed with http; the SSLs freed with it must not touch it */
        evhttp_free(http);
    }
    if (srv.timer != NULL) {
        event_free(srv.timer);
    }
    if (srv.resume != NULL) {
        event_free(srv.resume);
    }
    if (srv.base != NULL) {
        event_base_free(srv.base);
    }
}

/* ---- client ---- */

typedef struct exchange {
    struct bufferevent *bev;
    SSL *ssl;
    const char *url;
    km_call_t *call;
    X509 *peer; /* the server's certificate, taken when the handshake is done */
    char *why;
    size_t why_len;
    int ok;
} exchange_t;

/*
 * The server's certificate is kept when the handshake completes: by the time
 * the response callback runs, evhttp has closed the connection and the SSL
 * no longer has a peer.
 */
static void on_client_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    exchange_t *x = SSL_get_app_data(ssl);
    if ((where & SSL_CB_HANDSHAKE_DONE) && x != NULL && x->peer == NULL) {
        x->peer = SSL_get1_peer_certificate(ssl);
    }
}

/* Why a request got no answer: the server's certificate, a TLS error, or the connection. */
static void no_answer(exchange_t *x)
{
    long v = SSL_get_verify_result(x->ssl);
    unsigned long e = bufferevent_get_openssl_error(x->bev);
    char buf[256] = "";
    if (v != X509_V_OK) {
        snprintf(x->why, x->why_len, "%s: server certificate not accepted: %s", x->url,
                 X509_verify_cert_error_string(v));
    } else if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(x->why, x->why_len, "TLS handshake failed (is our certificate accepted?): %s", buf);
    } else if (EVUTIL_SOCKET_ERROR() != 0) {
        snprintf(x->why, x->why_len, "%s: %s", x->url, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    } else {
        snprintf(x->why, x->why_len, "no HTTP response (connection closed, timed out or refused)");
    }
    ERR_clear_error();
}

static void on_response(struct evhttp_request *r, void *arg)
{
    exchange_t *x = arg;
    if (r == NULL || evhttp_request_get_response_code(r) == 0) {
        no_answer(x);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t n = evbuffer_get_length(in);
    km_call_t *c = x->call;
    X509 *peer = x->peer;
    const char *type = evhttp_find_header(evhttp_request_get_input_headers(r), "Content-Type");
    c->status = evhttp_request_get_response_code(r);
    snprintf(c->resp_type, sizeof(c->resp_type), "%s", type != NULL ? type : "");
    if (c->expect_peer != NULL && (peer == NULL || X509_cmp(peer, c->expect_peer) != 0)) {
        snprintf(x->why, x->why_len, "%s: the server's certificate changed since it was asked for", x->url);
        return;
    }
    if (msp_buf_put(c->resp, evbuffer_pullup(in, -1), n) != MSP_OK) {
        snprintf(x->why, x->why_len, "response body over 1 MiB");
        return;
    }
    if (c->want_peer) {
        c->peer = peer; /* the caller's now */
        x->peer = NULL;
    }
    x->ok = 1;
}

static void on_request_error(enum evhttp_request_error e, void *arg)
{
    exchange_t *x = arg;
    if (e == EVREQ_HTTP_DATA_TOO_LONG) {
        snprintf(x->why, x->why_len, "response head or body over the limits (8 KiB, 1 MiB)");
    } else if (e == EVREQ_HTTP_TIMEOUT) {
        snprintf(x->why, x->why_len, "%s: timed out", x->url);
    } else {
        no_answer(x);
    }
}

/* The TLS connection to host:port, verifying the server's name or address. */
static struct bufferevent *connect_tls(struct event_base *base, SSL_CTX *ctx, const char *host, SSL **out)
{
    SSL *ssl = SSL_new(ctx);
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = ssl != NULL && (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
                                   : SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1);
    struct bufferevent *bev = ok ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                                  BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
                                 : NULL;
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* a server that closes without close_notify after a complete answer is no error (Content-Length says) */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    *out = ssl;
    return bev;
}

int km_request(SSL_CTX *ctx, const char *url, const char *method, const char *target, const uint8_t *body,
               size_t body_len, int *status, msp_buf_t *resp, char *why, size_t why_len)
{
    km_call_t c = {.url = url, .method = method, .target = target, .body = body, .body_len = body_len, .resp = resp};
    int ret = km_call(ctx, &c, why, why_len);
    *status = c.status;
    return ret;
}

int km_call(SSL_CTX *ctx, km_call_t *c, char *why, size_t why_len)
{
    const char *url = c->url, *method = c->method, *target = c->target;
    const uint8_t *body = c->body;
    size_t body_len = c->body_len;
    char host[256], port[16], hostport[300];
    if (strncmp(url, "https://", 8) != 0 || strlen(url + 8) >= sizeof(hostport)) {
        snprintf(why, why_len, "%s: expected https://HOST:PORT", url);
        return -1;
    }
    snprintf(hostport, sizeof(hostport), "%s", url + 8);
    hostport[strcspn(hostport, "/")] = '\0';
    if (km_split_hostport(hostport, host, sizeof(host), port, sizeof(port)) != 0) {
        snprintf(why, why_len, "%s: expected https://HOST:PORT", url);
        return -1;
    }
    if (!libevent_wins(why, why_len)) {
        return -1;
    }
    exchange_t x = {.url = url, .call = c, .why = why, .why_len = why_len};
    struct event_base *base = event_base_new();
    struct evhttp_connection *evcon = NULL;
    struct evhttp_request *req = NULL;
    snprintf(why, why_len, "cannot set up the request");
    x.bev = base != NULL ? connect_tls(base, ctx, host, &x.ssl) : NULL;
    if (x.bev != NULL) {
        SSL_set_app_data(x.ssl, &x);
        SSL_set_info_callback(x.ssl, on_client_info);
    }
    evcon =
        x.bev != NULL ? evhttp_connection_base_bufferevent_new(base, NULL, x.bev, host, (uint16_t)atoi(port)) : NULL;
    req = evcon != NULL ? evhttp_request_new(on_response, &x) : NULL;
    if (req != NULL) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_connection_set_timeout(evcon, KM_IO_TIMEOUT);
        evhttp_connection_set_max_headers_size(evcon, KM_MAX_HEAD);
        evhttp_connection_set_max_body_size(evcon, KM_MAX_BODY);
        evhttp_request_set_error_cb(req, on_request_error);
        evhttp_add_header(h, "Host", hostport);
        evhttp_add_header(h, "Accept", c->accept != NULL ? c->accept : "application/pkcs8");
        evhttp_add_header(h, "Connection", "close");
        if (body != NULL) {
            evhttp_add_header(h, "Content-Type", c->body_type != NULL ? c->body_type : "application/pkcs8");
            evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len);
        }
        /* on failure evhttp_make_request frees req itself */
        if (evhttp_make_request(evcon, req, strcmp(method, "PUT") == 0 ? EVHTTP_REQ_PUT : EVHTTP_REQ_GET, target) ==
            0) {
            event_base_dispatch(base);
        }
    } else if (x.bev != NULL && evcon == NULL) {
        bufferevent_free(x.bev);
    }
    if (evcon != NULL) {
        evhttp_connection_free(evcon); /* frees the bufferevent, the SSL and the socket */
    }
    if (base != NULL) {
        event_base_free(base);
    }
    X509_free(x.peer);
    return x.ok ? 0 : -1;
}
