/* msp ets keymgr: the HTTPS transport (mutual TLS 1.3, libevent evhttp) shared by serve and fetch. */
#ifndef MSP_CMD_ETS_KEYMGR_H
#define MSP_CMD_ETS_KEYMGR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "msp/buf.h"

#define KM_MAX_HEAD 8192       /* request or status line + headers */
#define KM_MAX_BODY (1u << 20) /* PUT and response bodies */
#define KM_IO_TIMEOUT 5        /* seconds a peer may stall one read or write */
#define KM_MAX_TARGET 4096
#define KM_LINGER_MS 1000 /* how long a closing connection waits for the peer to close too */
#define KM_MAX_LINGER 64  /* connections waiting so at a time */
#define KM_MAX_CONNS 64   /* connections served at once; past it the listener pauses (back-pressure, not refusal) */
#define KM_ACCEPT_PAUSE_MS 1000 /* after accept() fails (EMFILE, ENFILE, ENOMEM): try again this much later */

extern volatile sig_atomic_t km_stop;

/** SIGINT/SIGTERM set km_stop (no SA_RESTART, so poll wakes up); SIGPIPE ignored. */
void km_signals(void);

/** A TLS 1.3-only context presenting cert/key and requiring a peer certificate that chains to ca. */
SSL_CTX *km_tls_ctx(int server, const char *cert, const char *key, const char *ca, char *why, size_t why_len);

/** Splits "HOST:PORT" or "[V6]:PORT" (host gets at most host_len - 1 bytes). */
int km_split_hostport(const char *s, char *host, size_t host_len, char *port, size_t port_len);

/** A listening socket on HOST:PORT, or -1 with why. */
int km_listen(const char *hostport, char *why, size_t why_len);

typedef struct km_request {
    char method[16];
    char target[KM_MAX_TARGET];
    const uint8_t *body; /* PUT only */
    size_t body_len;
    char peer[512];           /* the client certificate's subject */
    X509 *peer_cert;          /* the client certificate (verified against --ca), valid during the handler */
    const char *accept;       /* the Accept header, NULL when absent */
    const char *content_type; /* the Content-Type header, NULL when absent */
} km_request_t;

typedef struct km_response {
    int status;
    const char *content_type;
    msp_buf_t body;    /* owned by the server loop */
    const char *allow; /* the Allow header of a 405 */
} km_response_t;

typedef void (*km_handler_fn)(void *user, const km_request_t *req, km_response_t *resp);
/** Called now and then; returns the milliseconds until it wants to run again (-1: never). */
typedef int (*km_tick_fn)(void *user);

/**
 * Serves connections until km_stop (SIGINT/SIGTERM): mutual TLS, one
 * request each (bounded, timed out), one response, close. allow_subject
 * (fnmatch pattern on the RFC 2253 subject) may be NULL. Logs one line per
 * request and per refused handshake to stderr.
 */
void km_serve(int fd, SSL_CTX *ctx, const char *allow_subject, const char *cmd, km_handler_fn handler, km_tick_fn tick,
              void *user);

/**
 * One request to https://HOST:PORT (url) with target, optional body; the
 * server is verified against the context's CA and the URL's host name or
 * address. *status and body (up to KM_MAX_BODY) on success; else -1 and why.
 */
int km_request(SSL_CTX *ctx, const char *url, const char *method, const char *target, const uint8_t *body,
               size_t body_len, int *status, msp_buf_t *resp, char *why, size_t why_len);

/** One request as km_request, with its media types and what the server was. */
typedef struct km_call {
    const char *url, *method, *target;
    const uint8_t *body;
    size_t body_len;
    const char *accept;    /* NULL: application/pkcs8 */
    const char *body_type; /* NULL: application/pkcs8 */
    X509 *expect_peer;     /* not NULL: the server must present this very certificate */
    /* out */
    int status;
    msp_buf_t *resp;
    char resp_type[128]; /* the response's Content-Type, "" when absent */
    X509 *peer;          /* with want_peer: the server's certificate (the caller frees it) */
    int want_peer;
} km_call_t;

/** km_request with the fields of c; 0, or -1 and why. */
int km_call(SSL_CTX *ctx, km_call_t *c, char *why, size_t why_len);

#endif
