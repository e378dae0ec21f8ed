/*
 * msp ets probe HOST:PORT: the client's view of an ETS server (TS 103 523-3
 * Annex B "ETS-aware client", ets.md 6): connect several times, compare the
 * ServerHello key shares (a repeat proves a static or long-lived key, the
 * only signal an Annex A server gives), read the certificate's visibility
 * information and check its fingerprint against the key share actually sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "msp/ets.h"
#include "msp/ets_probe.h"

static const char usage[] =
    "usage: msp ets probe HOST:PORT [--servername NAME] [--groups LIST] [--ca FILE]\n"
    "                     [--connections N] [--timeout SECONDS] [--format text|json]\n"
    "                     [--refuse-ets] [--require-visibility]\n"
    "\n"
    "Connects N times (default 2) with TLS 1.3 and reports, as an ETS-aware client would:\n"
    "  - the key share of every ServerHello, and whether it repeats (a static key: no forward\n"
    "    secrecy; the only way to notice an ETS server that shows no visibility information);\n"
    "  - the certificate's visibility information (TS 103 523-3 4.3.3) and whether its fingerprint\n"
    "    matches the key share the server actually sent.\n"
    "--groups is OpenSSL's group list to offer (default X25519:P-256); --ca verifies the server's\n"
    "certificate chain and name (without it the certificate is read but not verified).\n"
    "\n"
    "exit status: 0; 1 when a policy refuses the server: --refuse-ets (a repeated key share or\n"
    "visibility information), --require-visibility (a repeated key share without visibility\n"
    "information matching it, or visibility information that does not match); 2 when a\n"
    "connection fails or the arguments are wrong.\n";

#define PROBE_MAX_CONN MSP_ETS_PROBE_MAX_CONN

typedef struct probe_args {
    const char *target, *servername, *groups, *ca;
    char host[256], port[16];
    int connections, timeout, json, refuse_ets, require_visibility;
} probe_args_t;

typedef struct probe_result {
    msp_ets_probe_conn_t conn[PROBE_MAX_CONN]; /* key share, suite and certificate check of each connection */
    uint8_t *cert;                             /* DER of the first connection's server certificate */
    size_t cert_len;
} probe_result_t;

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

static int wait_fd(int fd, short events, int timeout)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;
    do {
        n = poll(&pfd, 1, timeout * 1000);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* A connected TCP socket within the timeout, or -1 with one line on stderr. */
static int dial(const probe_args_t *a)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(a->host, a->port, &hints, &res), fd = -1, err = 0;
    if (rc != 0) {
        cli_error("msp ets probe", "%s: error: %s", a->target, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        socklen_t sl = sizeof err;
        err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
            (errno != EINPROGRESS || wait_fd(fd, POLLOUT, a->timeout) <= 0 ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 || err != 0)) {
            err = err != 0 ? err : errno != EINPROGRESS ? errno : ETIMEDOUT;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        cli_error("msp ets probe", "%s: error: cannot connect: %s", a->target, strerror(err));
    }
    return fd;
}

static SSL_CTX *client_ctx(const probe_args_t *a)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set1_groups_list(ctx, a->groups) != 1) {
        cli_error("msp ets probe", "error: --groups '%s': OpenSSL does not know this group list", a->groups);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* A fresh full handshake every time: a resumed one proves nothing about the key share. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (a->ca != NULL && SSL_CTX_load_verify_locations(ctx, a->ca, NULL) != 1) {
        cli_error("msp ets probe", "%s: error: cannot read the CA certificates", a->ca);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Drives a non-blocking handshake to its end within the timeout. */
static int handshake(SSL *ssl, int fd, int timeout)
{
    for (;;) {
        int rc = SSL_connect(ssl);
        if (rc == 1) {
            return 1;
        }
        int e = SSL_get_error(ssl, rc);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (ev == 0 || wait_fd(fd, ev, timeout) <= 0) {
            return 0;
        }
    }
}

static void keep_certificate(SSL *ssl, probe_result_t *res)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    unsigned char *der = NULL;
    int n = peer != NULL ? i2d_X509(peer, &der) : 0;
    if (n > 0) {
        res->cert = der;
        res->cert_len = (size_t)n;
    }
    X509_free(peer);
}

static int probe_once(const probe_args_t *a, SSL_CTX *ctx, msp_ets_probe_conn_t *c, probe_result_t *res, int first)
{
    int fd = dial(a);
    if (fd < 0) {
        return CLI_USAGE;
    }
    SSL *ssl = SSL_new(ctx);
    const char *name = a->servername != NULL ? a->servername : a->host;
    int ok = ssl != NULL && SSL_set_fd(ssl, fd) == 1 && SSL_set_tlsext_host_name(ssl, name) == 1;
    if (ok && a->ca != NULL) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL); /* reported, not enforced: the probe wants to see the server */
        ok = SSL_set1_host(ssl, name) == 1;
    }
    SSL_set_msg_callback(ssl, on_msg);
    SSL_set_msg_callback_arg(ssl, c);
    if (ok && !handshake(ssl, fd, a->timeout)) {
        unsigned long e = ERR_peek_last_error();
        cli_error("msp ets probe", "%s: error: TLS 1.3 handshake failed: %s", a->target,
                  e != 0 ? ERR_reason_error_string(e) : "timeout or connection closed");
        ok = 0;
    }
    if (ok) {
        snprintf(c->suite, sizeof c->suite, "%s", SSL_get_cipher_name(ssl));
        long v = SSL_get_verify_result(ssl);
        snprintf(c->certificate, sizeof c->certificate, "%s",
                 a->ca == NULL    ? "not verified (no --ca)"
                 : v == X509_V_OK ? "verified"
                                  : X509_verify_cert_error_string(v));
        if (first) {
            keep_certificate(ssl, res);
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return ok ? CLI_OK : CLI_USAGE;
}

static int parse_count(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < lo || n > hi) {
        cli_error("msp ets probe", "error: %s wants a number from %d to %d, not '%s'", opt, lo, hi, v);
        return CLI_USAGE;
    }
    *out = (int)n;
    return CLI_OK;
}

static int parse_target(probe_args_t *a)
{
    /* HOST:PORT, [V6]:PORT */
    const char *t = a->target, *colon = strrchr(t, ':');
    size_t hl = colon != NULL ? (size_t)(colon - t) : 0;
    if (hl > 1 && t[0] == '[' && t[hl - 1] == ']') {
        t++;
        hl -= 2;
    }
    if (colon == NULL || hl == 0 || hl >= sizeof a->host || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof a->port || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        cli_error("msp ets probe", "error: '%s' is not HOST:PORT", a->target);
        return CLI_USAGE;
    }
    memcpy(a->host, t, hl);
    a->host[hl] = '\0';
    snprintf(a->port, sizeof a->port, "%s", colon + 1);
    return CLI_OK;
}

static int parse_args(int argc, char **argv, probe_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->groups = "X25519:P-256";
    a->connections = 2;
    a->timeout = 10;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int st = CLI_OK, took = v != NULL;
        if (strcmp(o, "--servername") == 0 && v != NULL) {
            a->servername = v;
        } else if (strcmp(o, "--groups") == 0 && v != NULL) {
            a->groups = v;
        } else if (strcmp(o, "--ca") == 0 && v != NULL) {
            a->ca = v;
        } else if (strcmp(o, "--connections") == 0 && v != NULL) {
            st = parse_count(o, v, 2, PROBE_MAX_CONN, &a->connections);
        } else if (strcmp(o, "--timeout") == 0 && v != NULL) {
            st = parse_count(o, v, 1, 3600, &a->timeout);
        } else if (strcmp(o, "--format") == 0 && v != NULL && (strcmp(v, "json") == 0 || strcmp(v, "text") == 0)) {
            a->json = strcmp(v, "json") == 0;
        } else {
            took = 0;
            if (strcmp(o, "--refuse-ets") == 0) {
                a->refuse_ets = 1;
            } else if (strcmp(o, "--require-visibility") == 0) {
                a->require_visibility = 1;
            } else if (o[0] != '-' && a->target == NULL) {
                a->target = o;
            } else {
                cli_error("msp ets probe", "error: unexpected argument '%s' (see 'msp ets probe --help')", o);
                return CLI_USAGE;
            }
        }
        if (st != CLI_OK) {
            return st;
        }
        i += took;
    }
    if (a->target == NULL) {
        cli_error("msp ets probe", "error: no HOST:PORT given (see 'msp ets probe --help')");
        return CLI_USAGE;
    }
    return parse_target(a);
}

int cmd_ets_probe(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    probe_args_t a;
    if (parse_args(argc, argv, &a) != CLI_OK) {
        return CLI_USAGE;
    }
    SSL_CTX *ctx = client_ctx(&a);
    probe_result_t *res = calloc(1, sizeof *res);
    msp_ets_probe_verdict_t *v = calloc(1, sizeof *v);
    int status = ctx != NULL && res != NULL && v != NULL ? CLI_OK : CLI_USAGE;
    for (int i = 0; status == CLI_OK && i < a.connections; i++) {
        status = probe_once(&a, ctx, &res->conn[i], res, i == 0);
    }
    SSL_CTX_free(ctx);
    msp_ets_probe_facts_t facts = {res != NULL ? res->conn : NULL,
                                   (size_t)a.connections,
                                   res != NULL ? res->cert : NULL,
                                   res != NULL ? res->cert_len : 0,
                                   {a.refuse_ets, a.require_visibility}};
    msp_error_t err = {0};
    if (status == CLI_OK && msp_ets_probe_judge(&facts, v, &err) != MSP_OK) {
        cli_error("msp ets probe", "%s: error: %s", a.target, err.detail);
        status = CLI_FAIL;
    }
    if (status == CLI_OK) {
        msp_buf_t out;
        msp_buf_init(&out, CLI_OUTPUT_LIMIT);
        (a.json ? msp_ets_probe_render_json : msp_ets_probe_render_text)(a.target, &facts, v, &out);
        status = cli_write_stdout("msp ets probe", &out);
        msp_buf_free(&out);
        if (status == CLI_OK && v->refused) {
            cli_error("msp ets probe", "%s: refused by policy: %s", a.target, v->text);
            status = CLI_FAIL;
        }
    }
    if (res != NULL) {
        OPENSSL_free(res->cert);
    }
    free(res);
    free(v);
    return status;
}
