/*
 * An HTTP/1.x framer, sans-IO: one connection's bytes in, in each direction
 * as they come, segments out (header bytes, body bytes) with the message
 * boundaries. TLMSP's `--contexts http` puts the segments of headers in the
 * context tagged `header` and those of bodies in the one tagged `body`, as
 * the reference's curl and Apache ports do; an ICAP client at a middlebox
 * uses the same segments to find the messages.
 *
 * The segments tile the input: concatenated in order they are exactly the
 * bytes fed, nothing added, dropped or rewritten. Parsing is Debian's
 * libhttp-parser (http_parser.h), strict as it is built.
 *
 * What belongs where:
 *  - header: the start line, the header fields and the empty line that ends
 *    them (and any empty lines before a start line, which HTTP tolerates);
 *  - body: the message body as it travels, transfer coding included: with
 *    chunked encoding the chunk-size lines, the CRLFs and the trailer
 *    fields are body bytes (RFC 9112 6: the message body is the coded one).
 *  - A response to HEAD, a 1xx, 204 or 304 response, and a request without
 *    Content-Length or Transfer-Encoding end with their header block. A
 *    response that has neither and may have a body ends when its direction
 *    ends (msp_http_eof): a close-delimited body.
 *  - Upgrades and CONNECT are passed, not refused: once a request carrying
 *    `Upgrade` + `Connection: upgrade` (or a CONNECT request) is complete,
 *    everything after it in that direction is one body that never ends
 *    (flag MSP_HTTP_TUNNEL); likewise after a 101 response or a 2xx answer
 *    to CONNECT in the response direction. A server that declines an
 *    upgrade leaves later requests on that connection in the body: when in
 *    doubt, bytes go to the body, never the other way.
 *
 * Responses are paired with requests in order (pipelining), to know which
 * answer a HEAD or a CONNECT: a program framing responses feeds the
 * requests of the same connection too (their segments may be ignored). A
 * response whose request was not fed is taken as the answer to a GET.
 */
#ifndef MSP_TLMSP_HTTP_H
#define MSP_TLMSP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "msp/api.h"
#include "msp/error.h"

#define MSP_HTTP_DEFAULT_MAX_HEADER ((size_t)64 << 10) /* bytes of one header block */
#define MSP_HTTP_DEFAULT_MAX_PIPELINE 1024             /* requests fed and not yet answered */

typedef enum msp_http_dir {
    MSP_HTTP_REQUESTS = 0, /* client to server */
    MSP_HTTP_RESPONSES = 1 /* server to client */
} msp_http_dir_t;

typedef enum msp_http_kind { MSP_HTTP_HEADER = 0, MSP_HTTP_BODY = 1 } msp_http_kind_t;

/* Segment flags. */
#define MSP_HTTP_HEADERS_DONE 0x1 /* the segment ends the message's header block */
#define MSP_HTTP_MESSAGE_DONE 0x2 /* the segment ends the message */
#define MSP_HTTP_TUNNEL 0x4       /* after an upgrade or CONNECT: opaque bytes, no more messages */

/*
 * One segment: p/len point into the bytes being fed (valid during the
 * callback only). A header block or a body may come in several segments
 * (one per feed at least). len may be 0 only for a segment that just marks
 * MSP_HTTP_MESSAGE_DONE (the end of a close-delimited body, from
 * msp_http_eof). status (responses) and method ("GET", requests) are set
 * on the segment flagged MSP_HTTP_HEADERS_DONE, else 0 and NULL.
 */
typedef struct msp_http_seg {
    msp_http_kind_t kind;
    const uint8_t *p;
    size_t len;
    unsigned flags;
    int status;
    const char *method;
} msp_http_seg_t;

/* Called for each segment, in order; it must not re-enter the framer. Non-zero stops the feed with that code. */
typedef int (*msp_http_seg_fn)(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg);

typedef struct msp_http_cfg {
    size_t max_header;   /* 0: MSP_HTTP_DEFAULT_MAX_HEADER */
    size_t max_pipeline; /* 0: MSP_HTTP_DEFAULT_MAX_PIPELINE */
} msp_http_cfg_t;

typedef struct msp_http msp_http_t;

/** A framer for one connection, both directions. cfg may be NULL. MSP_OK or MSP_ERR_NO_MEMORY. */
MSP_API int msp_http_new(const msp_http_cfg_t *cfg, msp_http_t **out);

/** NULL is ignored. */
MSP_API void msp_http_free(msp_http_t *h);

/**
 * Feeds len bytes of direction dir; fn gets their segments before this
 * returns. MSP_OK; MSP_ERR_SYNTAX (not HTTP/1.x: err says what the parser
 * saw), MSP_ERR_LIMIT (a header block over max_header, or more than
 * max_pipeline requests unanswered), or fn's own code. An error is sticky
 * for the direction: the segments given so far stand, nothing more is
 * framed in it.
 */
MSP_API int msp_http_feed(msp_http_t *h, msp_http_dir_t dir, const uint8_t *p, size_t len, msp_http_seg_fn fn,
                          void *user, msp_error_t *err);

/**
 * Direction dir ended (the peer closed its side). A close-delimited body
 * ends here (fn gets an empty body segment flagged MSP_HTTP_MESSAGE_DONE).
 * MSP_OK, also between messages and in a tunnel; MSP_ERR_SYNTAX when the
 * direction ends inside a message (a truncated header block or body).
 */
MSP_API int msp_http_eof(msp_http_t *h, msp_http_dir_t dir, msp_http_seg_fn fn, void *user, msp_error_t *err);

#endif
