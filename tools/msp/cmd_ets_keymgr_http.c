/* msp ets keymgr transport: HTTPS with mutual TLS 1.3 (ets.md 3.4 ETS-KT-1, ETS-KT-4), minimal bounded HTTP/1.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

static void set_timeouts(int fd)
{
    struct timeval tv = {KM_IO_TIMEOUT, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
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
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        snprintf(why, why_len, "%s: %s", hostport, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Reads until the blank line ending the head; what follows it (the start of a body) stays in buf. */
static int read_head(SSL *ssl, uint8_t *buf, size_t cap, size_t *got, size_t *head_len)
{
    *got = 0;
    while (*got < cap) {
        int n = SSL_read(ssl, buf + *got, (int)(cap - *got));
        if (n <= 0) {
            return -1;
        }
        *got += (size_t)n;
        for (size_t i = 3; i < *got; i++) {
            if (memcmp(buf + i - 3, "\r\n\r\n", 4) == 0) {
                *head_len = i + 1;
                return 0;
            }
        }
    }
    return -1; /* over KM_MAX_HEAD */
}

/* The value of a header (case-insensitive name) in a NUL-terminated head, or NULL. */
static const char *header(const char *head, const char *name, char *out, size_t out_len)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            l += nl + 1;
            l += strspn(l, " \t");
            size_t n = strcspn(l, "\r\n");
            while (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t')) {
                n--;
            }
            if (n >= out_len) {
                return NULL;
            }
            memcpy(out, l, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

static int parse_length(const char *v, size_t *n)
{
    char *end;
    if (v == NULL || *v < '0' || *v > '9') {
        return -1;
    }
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || x > KM_MAX_BODY) {
        return -1;
    }
    *n = (size_t)x;
    return 0;
}

static int ssl_write_all(SSL *ssl, const void *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        int w = SSL_write(ssl, (const uint8_t *)p + done, (int)(n - done));
        if (w <= 0) {
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 501:
        return "Not Implemented";
    default:
        return "Internal Server Error";
    }
}

static void respond(SSL *ssl, km_response_t *resp)
{
    char head[512];
    const uint8_t *body = msp_buf_error(&resp->body) == MSP_OK ? resp->body.base : NULL;
    size_t len = body != NULL ? resp->body.len : 0;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%sConnection: close\r\n\r\n",
                     resp->status, reason(resp->status), resp->content_type ? resp->content_type : "text/plain", len,
                     resp->allow ? "Allow: " : "", resp->allow ? resp->allow : "", resp->allow ? "\r\n" : "");
    /* HEAD: the head of the answer GET would get, no body (RFC 9110 9.3.2) */
    if (ssl_write_all(ssl, head, (size_t)n) == 0 && len > 0 && !resp->head_only) {
        ssl_write_all(ssl, body, len);
    }
}

/*
 * Closes without a reset: a close() with unread bytes in the receive buffer
 * (the client's Finished and request after a refused handshake, or its
 * close_notify) makes the kernel send RST, which can overtake the alert or the
 * answer still in flight. So: FIN first, then read and drop what the peer
 * still sends until it closes too, for at most KM_LINGER_MS.
 */
static void linger_close(int fd)
{
    uint8_t sink[4096];
    struct timeval start, now;
    shutdown(fd, SHUT_WR);
    gettimeofday(&start, NULL);
    for (;;) {
        gettimeofday(&now, NULL);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
        struct pollfd p = {fd, POLLIN, 0};
        if (spent >= KM_LINGER_MS || poll(&p, 1, (int)(KM_LINGER_MS - spent)) <= 0) {
            break;
        }
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n <= 0 && !(n < 0 && errno == EINTR)) {
            break;
        }
    }
    close(fd);
}

static void error_body(km_response_t *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain";
    msp_buf_printf(&resp->body, "%s\n", text);
}

static void peer_subject(SSL *ssl, char *out, size_t n)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    BIO *b = BIO_new(BIO_s_mem());
    out[0] = '\0';
    if (x != NULL && b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int r = BIO_read(b, out, (int)n - 1);
        out[r > 0 ? r : 0] = '\0';
    }
    BIO_free(b);
}

/* "METHOD SP TARGET SP HTTP/1.x CRLF", each part bounded. */
static int parse_request_line(const char *head, km_request_t *req)
{
    size_t line = strcspn(head, "\r\n"), m = strcspn(head, " ");
    if (m == 0 || m >= sizeof(req->method) || m >= line) {
        return -1;
    }
    const char *t = head + m + 1;
    size_t tl = strcspn(t, " \r\n");
    if (tl == 0 || tl >= sizeof(req->target) || t[tl] != ' ' || strncmp(t + tl + 1, "HTTP/1.", 7) != 0 ||
        (size_t)(t + tl + 1 + 8 - head) != line || head[line] != '\r') {
        return -1;
    }
    memcpy(req->method, head, m);
    req->method[m] = '\0';
    memcpy(req->target, t, tl);
    req->target[tl] = '\0';
    return 0;
}

/* Reads one request into req (head and body in buf) or fills resp with the error to send. */
static int read_request(SSL *ssl, uint8_t *buf, km_request_t *req, km_response_t *resp)
{
    size_t got, head_len, body_len = 0;
    char cl[32], te[32];
    if (read_head(ssl, buf, KM_MAX_HEAD, &got, &head_len) != 0) {
        error_body(resp, 400, "request head missing, cut short, slow or over 8 KiB");
        return -1;
    }
    char head[KM_MAX_HEAD + 1];
    memcpy(head, buf, head_len);
    head[head_len] = '\0';
    if (parse_request_line(head, req) != 0) {
        error_body(resp, 400, "malformed request line");
        return -1;
    }
    if (header(head, "Transfer-Encoding", te, sizeof(te)) != NULL) {
        error_body(resp, 501, "no transfer codings, send Content-Length");
        return -1;
    }
    const char *v = header(head, "Content-Length", cl, sizeof(cl));
    if (v != NULL && parse_length(v, &body_len) != 0) {
        error_body(resp, 413, "body over 1 MiB or a malformed Content-Length");
        return -1;
    }
    if (body_len > 0 && (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)) {
        error_body(resp, 400, "a body is not accepted with GET or HEAD");
        return -1;
    }
    /* the body follows the head in the same buffer; the part already read moves to its start */
    uint8_t *body = buf + KM_MAX_HEAD;
    size_t have = got - head_len;
    if (have > body_len) {
        error_body(resp, 400, "more bytes than Content-Length");
        return -1;
    }
    memmove(body, buf + head_len, have);
    while (have < body_len) {
        int n = SSL_read(ssl, body + have, (int)(body_len - have));
        if (n <= 0) {
            error_body(resp, 400, "body cut short or too slow");
            return -1;
        }
        have += (size_t)n;
    }
    req->body = body;
    req->body_len = body_len;
    return 0;
}

static void serve_one(int cfd, SSL_CTX *ctx, const char *allow, const char *cmd, km_handler_fn handler, void *user,
                      uint8_t *buf)
{
    km_request_t req;
    km_response_t resp;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    msp_buf_init(&resp.body, KM_MAX_BODY + 4096);
    set_timeouts(cfd);
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, cfd) != 1 || SSL_accept(ssl) != 1) {
        char why[300];
        ssl_why(why, sizeof(why), "TLS handshake failed");
        fprintf(stderr, "%s: - - %s\n", cmd, why);
    } else {
        peer_subject(ssl, req.peer, sizeof(req.peer));
        if (read_request(ssl, buf, &req, &resp) == 0) {
            if (allow != NULL && fnmatch(allow, req.peer, 0) != 0) {
                error_body(&resp, 403, "client certificate subject not allowed");
            } else {
                handler(user, &req, &resp);
            }
        }
        resp.head_only = strcmp(req.method, "HEAD") == 0;
        respond(ssl, &resp);
        fprintf(stderr, "%s: \"%s\" %s %s %d %zu\n", cmd, req.peer, req.method[0] ? req.method : "-",
                req.target[0] ? req.target : "-", resp.status, resp.body.len);
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    linger_close(cfd);
    msp_buf_free(&resp.body);
}

void km_serve(int fd, SSL_CTX *ctx, const char *allow_subject, const char *cmd, km_handler_fn handler, km_tick_fn tick,
              void *user)
{
    uint8_t *buf = malloc(KM_MAX_HEAD + KM_MAX_BODY);
    if (buf == NULL) {
        fprintf(stderr, "%s: error: out of memory\n", cmd);
        return;
    }
    while (!km_stop) {
        int wait = tick != NULL ? tick(user) : -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, wait);
        if (r <= 0 || km_stop) {
            continue;
        }
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd >= 0) {
            serve_one(cfd, ctx, allow_subject, cmd, handler, user, buf);
        }
    }
    free(buf);
}

static int connect_to(const char *host, const char *port, char *why, size_t why_len)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(why, why_len, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            set_timeouts(fd);
            if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
                snprintf(why, why_len, "%s:%s: %s", host, port, strerror(errno));
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* The response: status line, headers, then Content-Length bytes (or up to close), at most KM_MAX_BODY. */
static int read_response(SSL *ssl, int *status, msp_buf_t *resp, char *why, size_t why_len)
{
    uint8_t *buf = malloc(KM_MAX_HEAD);
    size_t got, head_len, want = KM_MAX_BODY;
    int known = 0;
    char head[KM_MAX_HEAD + 1], cl[32];
    if (buf == NULL || read_head(ssl, buf, KM_MAX_HEAD, &got, &head_len) != 0) {
        free(buf);
        snprintf(why, why_len, "no HTTP response (connection closed, timed out or refused)");
        return -1;
    }
    memcpy(head, buf, head_len);
    head[head_len] = '\0';
    if (sscanf(head, "HTTP/1.%*c %3d", status) != 1) {
        free(buf);
        snprintf(why, why_len, "malformed HTTP status line");
        return -1;
    }
    const char *v = header(head, "Content-Length", cl, sizeof(cl));
    if (v != NULL) {
        if (parse_length(v, &want) != 0) {
            free(buf);
            snprintf(why, why_len, "response body over 1 MiB or a malformed Content-Length");
            return -1;
        }
        known = 1;
    }
    msp_buf_put(resp, buf + head_len, got - head_len);
    free(buf);
    uint8_t chunk[16384];
    while (resp->len < want && msp_buf_error(resp) == MSP_OK) {
        size_t ask = want - resp->len < sizeof(chunk) ? want - resp->len : sizeof(chunk);
        int n = SSL_read(ssl, chunk, (int)ask);
        if (n <= 0) {
            break;
        }
        msp_buf_put(resp, chunk, (size_t)n);
    }
    if (msp_buf_error(resp) != MSP_OK || (known && resp->len != want)) {
        snprintf(why, why_len, "response body cut short or over 1 MiB");
        return -1;
    }
    return 0;
}

int km_request(SSL_CTX *ctx, const char *url, const char *method, const char *target, const uint8_t *body,
               size_t body_len, int *status, msp_buf_t *resp, char *why, size_t why_len)
{
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
    int fd = connect_to(host, port, why, why_len);
    if (fd < 0) {
        return -1;
    }
    SSL *ssl = SSL_new(ctx);
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = ssl != NULL && SSL_set_fd(ssl, fd) == 1 &&
             (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
                    : SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1);
    int ret = -1;
    if (!ok || SSL_connect(ssl) != 1) {
        long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (v != X509_V_OK) {
            snprintf(why, why_len, "%s: server certificate not accepted: %s", url, X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            ssl_why(why, why_len, "TLS handshake failed (is our certificate accepted?)");
        }
    } else {
        char head[KM_MAX_TARGET + 512];
        int n = snprintf(head, sizeof(head),
                         "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: application/pkcs8\r\nContent-Length: %zu\r\n%s"
                         "Connection: close\r\n\r\n",
                         method, target, hostport, body_len, body != NULL ? "Content-Type: application/pkcs8\r\n" : "");
        if (n < 0 || (size_t)n >= sizeof(head) || ssl_write_all(ssl, head, (size_t)n) != 0 ||
            (body_len > 0 && ssl_write_all(ssl, body, body_len) != 0)) {
            ssl_why(why, why_len, "cannot send the request (refused by the server?)");
        } else {
            ret = read_response(ssl, status, resp, why, why_len);
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return ret;
}
