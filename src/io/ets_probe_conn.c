/*
 * The ETS-aware client's connections (msp/ets_probe.h): blocking TCP with a
 * timeout, then a full TLS 1.3 handshake by OpenSSL, whose ServerHello
 * messages go to the sans-IO msp_ets_probe_server_hello as they arrive.
 * What the probe judges is the library's (src/ets/probe.c); this file only
 * moves bytes and reports what OpenSSL saw.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "msp/ets_probe.h"

struct msp_ets_probe_client {
    SSL_CTX *ctx;
    char *host, *port, *name; /* name: server_name and the name verified */
    int verify;               /* a CA file was given */
    int timeout_s;
};

void msp_ets_probe_client_free(msp_ets_probe_client_t *c)
{
    if (c == NULL) {
        return;
    }
    SSL_CTX_free(c->ctx);
    free(c->host);
    free(c->port);
    free(c->name);
    free(c);
}

static SSL_CTX *client_ctx(const msp_ets_probe_client_cfg_t *cfg, msp_error_t *err)
{
    const char *groups = cfg->groups != NULL ? cfg->groups : MSP_ETS_PROBE_GROUPS_DEFAULT;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set1_groups_list(ctx, groups) != 1) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "OpenSSL does not know the group list '%s'", groups);
        return NULL;
    }
    /* A fresh full handshake every time: a resumed one proves nothing about the key share. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (cfg->ca != NULL && SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        msp_error_set(err, MSP_ERR_IO, NULL, "%s: cannot read the CA certificates", cfg->ca);
        return NULL;
    }
    return ctx;
}

int msp_ets_probe_client_new(const msp_ets_probe_client_cfg_t *cfg, msp_ets_probe_client_t **out, msp_error_t *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->host == NULL || cfg->port == NULL || cfg->timeout_s < 0) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "no host or port, or a negative timeout");
    }
    msp_ets_probe_client_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "no memory for the client");
    }
    c->ctx = client_ctx(cfg, err);
    if (c->ctx == NULL) {
        int rc = err != NULL ? err->code : MSP_ERR_ARGUMENT;
        msp_ets_probe_client_free(c);
        return rc;
    }
    c->host = strdup(cfg->host);
    c->port = strdup(cfg->port);
    c->name = strdup(cfg->servername != NULL ? cfg->servername : cfg->host);
    c->verify = cfg->ca != NULL;
    c->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 10;
    if (c->host == NULL || c->port == NULL || c->name == NULL) {
        msp_ets_probe_client_free(c);
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "no memory for the client");
    }
    *out = c;
    return MSP_OK;
}

static int wait_fd(int fd, short events, int timeout_s)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;
    do {
        n = poll(&pfd, 1, timeout_s * 1000);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* A connected non-blocking TCP socket within the timeout, or -1 with err set. */
static int dial(const msp_ets_probe_client_t *c, msp_error_t *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(c->host, c->port, &hints, &res), fd = -1, e = 0;
    if (rc != 0) {
        msp_error_set(err, MSP_ERR_IO, NULL, "%s", gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        socklen_t sl = sizeof e;
        e = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
            (errno != EINPROGRESS || wait_fd(fd, POLLOUT, c->timeout_s) <= 0 ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0 || e != 0)) {
            e = e != 0 ? e : errno != EINPROGRESS ? errno : ETIMEDOUT;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        msp_error_set(err, MSP_ERR_IO, NULL, "cannot connect: %s", strerror(e));
    }
    return fd;
}

static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    const uint8_t *p = buf;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 && p[0] == 2) {
        /* a ServerHello that does not parse fails the handshake in OpenSSL too: nothing to record */
        msp_ets_probe_server_hello(arg, p, len, NULL);
    }
}

/* Drives the non-blocking handshake to its end within the timeout per wait. */
static int handshake(SSL *ssl, int fd, int timeout_s)
{
    for (;;) {
        int rc = SSL_connect(ssl);
        if (rc == 1) {
            return 1;
        }
        int e = SSL_get_error(ssl, rc);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (ev == 0 || wait_fd(fd, ev, timeout_s) <= 0) {
            return 0;
        }
    }
}

static void keep_certificate(SSL *ssl, uint8_t **cert, size_t *cert_len)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    unsigned char *der = NULL;
    int n = peer != NULL ? i2d_X509(peer, &der) : 0;
    if (n > 0) {
        *cert = der;
        *cert_len = (size_t)n;
    }
    X509_free(peer);
}

/* What the connection showed besides the key share: the suite and the certificate check. */
static void report(const msp_ets_probe_client_t *c, SSL *ssl, msp_ets_probe_conn_t *out)
{
    snprintf(out->suite, sizeof out->suite, "%s", SSL_get_cipher_name(ssl));
    long v = SSL_get_verify_result(ssl);
    snprintf(out->certificate, sizeof out->certificate, "%s",
             !c->verify       ? "not verified (no --ca)"
             : v == X509_V_OK ? "verified"
                              : X509_verify_cert_error_string(v));
}

static int start(const msp_ets_probe_client_t *c, SSL *ssl, int fd)
{
    int ok = SSL_set_fd(ssl, fd) == 1 && SSL_set_tlsext_host_name(ssl, c->name) == 1;
    if (ok && c->verify) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL); /* reported, not enforced: the probe wants to see the server */
        ok = SSL_set1_host(ssl, c->name) == 1;
    }
    return ok;
}

/*
 * Closes as a well-behaved client: our close_notify, then what the server
 * still sends (its NewSessionTickets, its close_notify) read and dropped
 * until it closes, for at most a second. Closing with those bytes unread
 * makes the kernel answer with RST, and the server's later packets then
 * look like a new connection to a passive observer (issue 13: a phantom
 * flow in every capture of a probe).
 */
static void close_cleanly(SSL *ssl, int fd)
{
    uint8_t sink[4096];
    SSL_shutdown(ssl);
    for (int reads = 0; reads < 64; reads++) {
        int rc = SSL_read(ssl, sink, sizeof sink);
        if (rc > 0) {
            continue;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (SSL_get_error(ssl, rc) != SSL_ERROR_WANT_READ || poll(&pfd, 1, 1000) <= 0) {
            break; /* the server's close_notify or FIN, an error, or a second of silence */
        }
    }
}

int msp_ets_probe_client_connect(msp_ets_probe_client_t *c, msp_ets_probe_conn_t *out, uint8_t **cert, size_t *cert_len,
                                 msp_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (cert != NULL) {
        *cert = NULL;
        *cert_len = 0;
    }
    int fd = dial(c, err);
    if (fd < 0) {
        return MSP_ERR_IO;
    }
    SSL *ssl = SSL_new(c->ctx);
    int rc = ssl != NULL && start(c, ssl, fd)
                 ? MSP_OK
                 : msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "no memory for the TLS connection");
    if (rc == MSP_OK) {
        SSL_set_msg_callback(ssl, on_msg);
        SSL_set_msg_callback_arg(ssl, out);
        if (!handshake(ssl, fd, c->timeout_s)) {
            unsigned long e = ERR_peek_last_error();
            const char *why = e != 0 ? ERR_reason_error_string(e) : "timeout or connection closed";
            rc = msp_error_set(err, MSP_ERR_IO, NULL, "TLS 1.3 handshake failed: %s", why != NULL ? why : "(null)");
        }
    }
    if (rc == MSP_OK) {
        report(c, ssl, out);
        if (cert != NULL) {
            keep_certificate(ssl, cert, cert_len);
        }
        close_cleanly(ssl, fd);
    }
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return rc;
}
