/*
 * An ICAP client (RFC 3507) for a middlebox that hands the plaintext it may
 * read to an inspection service (antivirus, DLP): the codec is sans-IO
 * (requests written into msp_buf_t, responses parsed from bytes), the
 * driver at the end of this header moves them over a socket on a libev loop.
 *
 * What the codec speaks: OPTIONS (Methods, Preview, Allow: 204, ISTag),
 * REQMOD and RESPMOD with an encapsulated HTTP header and a chunked body,
 * Preview (the first bytes, then "100 Continue" asks for the rest; "0;
 * ieof" when the preview is the whole body) and 204 No Content. Responses:
 * the ICAP status and headers (ISTag, X-Infection-Found, X-Virus-ID), the
 * encapsulated HTTP header (a request or a response: a REQMOD may be
 * answered with a response, which is how a service blocks a request) and
 * the de-chunked body. Folded header lines (c-icap's X-Violations-Found)
 * are joined.
 */
#ifndef MSP_TLMSP_ICAP_H
#define MSP_TLMSP_ICAP_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "msp/buf.h"
#include "msp/error.h"

#define MSP_ICAP_DEFAULT_PORT 1344
#define MSP_ICAP_MAX_RESPONSE ((size_t)8 << 20) /* bytes of one response we keep (headers and body) */
#define MSP_ICAP_MAX_HEADERS ((size_t)64 << 10) /* the ICAP header block of a response */

/** icap://HOST[:PORT]/SERVICE, split. */
typedef struct msp_icap_url {
    char host[256];
    uint16_t port;
    char service[256]; /* without the leading '/'; may carry a query (c-icap: avscan?allow204=on) */
} msp_icap_url_t;

/** MSP_OK, or MSP_ERR_SYNTAX (not icap://HOST[:PORT]/SERVICE, or a part too long) with err saying why. */
MSP_API int msp_icap_url_parse(const char *url, msp_icap_url_t *out, msp_error_t *err);

typedef enum msp_icap_method {
    MSP_ICAP_OPTIONS = 1,
    MSP_ICAP_REQMOD,  /* what goes toward the server: an HTTP request */
    MSP_ICAP_RESPMOD, /* what goes toward the client: an HTTP response (with the request it answers) */
} msp_icap_method_t;

/** An OPTIONS request for u's service. MSP_OK or the buffer's error (MSP_ERR_LIMIT, MSP_ERR_NO_MEMORY). */
MSP_API int msp_icap_options_request(const msp_icap_url_t *u, msp_buf_t *out);

/**
 * The head of a REQMOD or RESPMOD and the first preview bytes of its body.
 * req_hdr: the HTTP request header (request line to the blank line); for
 * RESPMOD res_hdr is the HTTP response header (NULL/0 for a REQMOD). With
 * preview >= 0, a "Preview:" of min(preview, body_len) bytes is sent, and
 * the rest waits for the server's 100 Continue (msp_icap_request_rest),
 * unless the body fits ("0; ieof"); preview < 0: the whole body now. An
 * empty body is sent as null-body.
 * allow204: "Allow: 204" (the server may answer 204 for an unchanged
 * message). *sent gets the body bytes written. MSP_OK or the buffer's error.
 */
MSP_API int msp_icap_request(const msp_icap_url_t *u, msp_icap_method_t method, const uint8_t *req_hdr,
                             size_t req_hdr_len, const uint8_t *res_hdr, size_t res_hdr_len, const uint8_t *body,
                             size_t body_len, long preview, int allow204, msp_buf_t *out, size_t *sent);

/**
 * An HTTP header block (start line to the blank line, as an ICAP service
 * returned it) rewritten for a body of exactly body_len bytes sent as is:
 * Content-Length and Transfer-Encoding lines dropped, "Content-Length:
 * body_len" added before the blank line (a service's page often has
 * neither, which would leave the peer reading until the connection
 * closes). Appended to out; MSP_OK or the buffer's error.
 */
MSP_API int msp_icap_http_set_length(const uint8_t *hdr, size_t len, size_t body_len, msp_buf_t *out);

/** After a 100 Continue: the body bytes not in the preview, as chunks, and the last chunk. */
MSP_API int msp_icap_request_rest(const uint8_t *rest, size_t len, msp_buf_t *out);

/** A parsed ICAP response; every pointer points into the parser and lives until its next input or free. */
typedef struct msp_icap_resp_info {
    int status;              /* ICAP status: 100, 200, 204, 4xx, 5xx */
    char istag[128];         /* ISTag, "" when absent */
    char infection[256];     /* X-Infection-Found, "" when absent */
    char virus_id[256];      /* X-Virus-ID, "" when absent */
    long preview;            /* OPTIONS: Preview, -1 when absent */
    int allow204;            /* OPTIONS: "Allow: 204" */
    int is_response;         /* the encapsulated HTTP message is a response (res-hdr) */
    int http_status;         /* its status code when it is a response, else 0 */
    const uint8_t *http_hdr; /* the encapsulated HTTP header (req-hdr or res-hdr), NULL when none */
    size_t http_hdr_len;
    int has_body;        /* a req-body / res-body / opt-body followed */
    const uint8_t *body; /* the de-chunked body */
    size_t body_len;
} msp_icap_resp_info_t;

typedef struct msp_icap_resp msp_icap_resp_t;

/** A response parser keeping at most limit bytes (0: MSP_ICAP_MAX_RESPONSE). MSP_OK or MSP_ERR_NO_MEMORY. */
MSP_API int msp_icap_resp_new(size_t limit, msp_icap_resp_t **out);
/** NULL is ignored. */
MSP_API void msp_icap_resp_free(msp_icap_resp_t *r);
/** Forgets the response so far, for the next one on the same connection. */
MSP_API void msp_icap_resp_reset(msp_icap_resp_t *r);

/**
 * Feeds len received bytes; all are taken. *done is set once a whole
 * response is in (100 Continue counts as one; reset before the next), and
 * msp_icap_resp_info then describes it. MSP_OK; MSP_ERR_SYNTAX (not ICAP,
 * a bad Encapsulated header or chunk) or MSP_ERR_LIMIT (over the limit),
 * with err saying why.
 */
MSP_API int msp_icap_resp_input(msp_icap_resp_t *r, const uint8_t *p, size_t len, int *done, msp_error_t *err);

/** The response parsed (valid once done). */
MSP_API const msp_icap_resp_info_t *msp_icap_resp_info(const msp_icap_resp_t *r);

/** Bytes that came after the whole response (a server that pipelines): to be fed again after a reset. */
MSP_API size_t msp_icap_resp_extra(const msp_icap_resp_t *r, const uint8_t **p);

/* ---- the driver on a libev loop ---- */

struct ev_loop;
typedef struct msp_io_icap msp_io_icap_t;

/**
 * One ICAP transaction's end. err: MSP_OK and info the response (valid
 * during the call), or the failure (MSP_ERR_IO: the server refused or hung
 * up; MSP_ERR_LIMIT: timed out; MSP_ERR_SYNTAX: not an ICAP answer) with
 * detail a one-line why naming the server; info NULL then.
 */
typedef void (*msp_io_icap_fn)(void *user, int err, const msp_icap_resp_info_t *info, const char *detail);

/**
 * The server's address for u (blocking getaddrinfo: once, at start). MSP_OK, or MSP_ERR_NOT_FOUND with err
 * ("icap://HOST:PORT: cannot resolve the name: ...").
 */
MSP_API int msp_io_icap_resolve(const msp_icap_url_t *u, struct sockaddr_storage *addr, socklen_t *addrlen,
                                msp_error_t *err);

typedef struct msp_io_icap_cfg {
    const msp_icap_url_t *url;   /* copied */
    const struct sockaddr *addr; /* copied: where to connect (msp_io_icap_resolve) */
    socklen_t addrlen;
    double timeout; /* seconds for connect + answer; 0: 10 */
    long preview;   /* bytes to preview, -1: none (usually OPTIONS' Preview) */
    int allow204;   /* the server said Allow: 204 */
} msp_io_icap_cfg_t;

/**
 * A transaction: connects to cfg->addr, sends
 * OPTIONS (method MSP_ICAP_OPTIONS, no message) or the message, sends the
 * rest of the body on 100 Continue, and calls done once from the loop with
 * the answer or the failure (never from inside this call). The message's
 * bytes are copied. MSP_OK with *out, or MSP_ERR_NO_MEMORY. The caller frees t
 * (msp_io_icap_free), in done or later. One connection per transaction.
 */
MSP_API int msp_io_icap_new(struct ev_loop *loop, const msp_io_icap_cfg_t *cfg, msp_icap_method_t method,
                            const uint8_t *req_hdr, size_t req_hdr_len, const uint8_t *res_hdr, size_t res_hdr_len,
                            const uint8_t *body, size_t body_len, msp_io_icap_fn done, void *user, msp_io_icap_t **out);

/** Cancels the transaction (done does not run after this) and frees it. NULL is ignored. */
MSP_API void msp_io_icap_free(msp_io_icap_t *t);

#endif
