/*
 * Inspection at a middlebox, sans-IO: the plaintext of the containers a
 * middlebox may read is held in parts, each part becomes an ICAP request
 * (msp/tlmsp_icap.h), and the service's answer becomes what the middlebox
 * does with the held containers: release them (msp_tlmsp_mbox_release),
 * replace them, or end the session. No sockets, no clock: the caller runs
 * the ICAP transactions and tells when a direction paused.
 *
 * One object per session, both directions. A part is what a direction
 * carries until a pause (msp_inspect_pause, the caller's idle timer), the
 * end of an HTTP message, or a bound (MSP_INSPECT_PART_BYTES,
 * MSP_INSPECT_PART_CONTAINERS). At most one part per direction is with the
 * service; the next one collects behind it (its containers stay held).
 *
 * Byte-stream mode: a part's plaintext is the body of a synthetic HTTP
 * message (REQMOD: "POST /tlmsp/context-N"; RESPMOD: "200 OK" answering
 * "GET /tlmsp/context-N"; N the part's first context).
 *
 * HTTP mode (cfg.header_ctx and cfg.body_ctx, both readable here: the
 * endpoints' `--contexts http`): the HTTP framer (msp/tlmsp_http.h) finds
 * the messages; a part is one message (or a piece of a long one) with its
 * own header block. Bytes of other readable contexts count as body. A
 * direction that is not HTTP/1.x, or becomes a tunnel, goes on as a byte
 * stream (MSP_INSPECT_STREAM).
 *
 * Verdicts (msp_inspect_answer): 204, or 200 with the message unchanged
 * and no X-Infection-Found / X-Virus-ID: PASS (every held container
 * FORWARD). Another ICAP status: FAIL (internal_error). 200 with a change:
 * BLOCK (access_denied) when a container of the part is in a context this
 * middlebox may only read; else REPLACE: byte stream, the answer's body
 * refills the held containers (REPLACE, at most 16355 bytes each; the rest
 * DELETE; what does not fit is inserted after them); HTTP, the containers
 * are deleted and the answer is inserted as a whole message (header with
 * its Content-Length fixed, then body). A request answered with a response
 * (how a service blocks a request) is deleted and the response goes to the
 * client.
 */
#ifndef MSP_TLMSP_INSPECT_H
#define MSP_TLMSP_INSPECT_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/error.h"
#include "msp/tlmsp_conn.h"
#include "msp/tlmsp_icap.h"

#define MSP_INSPECT_PART_BYTES ((size_t)1 << 20) /* plaintext of one part */
#define MSP_INSPECT_PART_CONTAINERS 1024

typedef struct msp_inspect_cfg {
    uint8_t header_ctx, body_ctx; /* HTTP mode in these contexts (both readable here); 0: byte stream only */
} msp_inspect_cfg_t;

/* What an input did (flags). */
#define MSP_INSPECT_READY 0x1  /* a part is complete and none is with the service: msp_inspect_scan starts it */
#define MSP_INSPECT_OPEN 0x2   /* a part is still collecting: the caller (re)arms its pause timer */
#define MSP_INSPECT_CUT 0x4    /* a part was cut at a bound, the first time in this direction (worth a log line) */
#define MSP_INSPECT_STREAM 0x8 /* HTTP framing given up in this direction (err says why; worth a log line) */

typedef struct msp_inspect msp_inspect_t;

/** MSP_OK or MSP_ERR_NO_MEMORY; cfg may be NULL (byte stream only). */
MSP_API int msp_inspect_new(const msp_inspect_cfg_t *cfg, msp_inspect_t **out);
/** NULL is ignored. */
MSP_API void msp_inspect_free(msp_inspect_t *x);

/**
 * A container of application data this middlebox can read, which the
 * caller holds (MSP_TLMSP_HOLD). writable: its access is rw. *flags gets
 * MSP_INSPECT_*; err (may be NULL) the why of MSP_INSPECT_STREAM. MSP_OK,
 * or MSP_ERR_LIMIT / MSP_ERR_NO_MEMORY (more than the engine may hold:
 * the caller ends the session).
 */
MSP_API int msp_inspect_input(msp_inspect_t *x, int to_server, uint8_t ctx, int writable, const uint8_t *p, size_t len,
                              unsigned *flags, msp_error_t *err);

/** The direction paused (the caller's idle timer): its open part is complete. *flags as msp_inspect_input. */
MSP_API void msp_inspect_pause(msp_inspect_t *x, int to_server, unsigned *flags);

/** One ICAP request: pointers into x, valid until msp_inspect_answer for this direction. */
typedef struct msp_inspect_request {
    msp_icap_method_t method; /* REQMOD toward the server, RESPMOD toward the client */
    const uint8_t *req_hdr, *res_hdr, *body;
    size_t req_hdr_len, res_hdr_len, body_len;
    uint8_t ctx;       /* the part's first context */
    size_t containers; /* held containers it stands for */
} msp_inspect_request_t;

/**
 * Moves the complete part of the direction to the service: 1 and *req
 * filled, or 0 when none is complete or one is already with the service.
 */
MSP_API int msp_inspect_scan(msp_inspect_t *x, int to_server, msp_inspect_request_t *req);

typedef enum msp_inspect_kind {
    MSP_INSPECT_PASS = 0, /* release the containers unchanged */
    MSP_INSPECT_REPLACE,  /* release with the verdicts below, then the inserts */
    MSP_INSPECT_BLOCK,    /* a fatal alert (access_denied) both ways; nothing held goes out */
    MSP_INSPECT_FAIL,     /* the service answered with an error: fatal internal_error both ways */
} msp_inspect_kind_t;

typedef struct msp_inspect_insert {
    int to_server;
    uint8_t ctx;
    const uint8_t *p;
    size_t len;
} msp_inspect_insert_t;

/**
 * What to do with the part that was with the service. Pointers are valid
 * until the next call on x (data may point into the answer r: keep it
 * until then too).
 */
typedef struct msp_inspect_outcome {
    msp_inspect_kind_t kind;
    size_t n; /* containers to release (PASS, REPLACE), for msp_tlmsp_mbox_release */
    const msp_tlmsp_verdict_t *verdicts;
    const uint8_t *const *data;
    const size_t *data_len;
    msp_inspect_insert_t insert[2]; /* REPLACE: then these, in order (msp_tlmsp_mbox_send) */
    size_t ninsert;
    int toward_client; /* REPLACE: a request answered with a response, which goes to the client */
    uint8_t alert;     /* BLOCK, FAIL: the fatal alert to send both ways */
    uint8_t ctx;       /* the part's first context */
    const char *why;   /* BLOCK, FAIL: a few words for the log line */
} msp_inspect_outcome_t;

/**
 * The service's answer r for the direction's part (after msp_inspect_scan).
 * *flags: MSP_INSPECT_READY when the next part can go now. MSP_OK, or
 * MSP_ERR_ARGUMENT (nothing was with the service), MSP_ERR_NO_MEMORY,
 * MSP_ERR_LIMIT (a replacement header over MSP_HTTP_DEFAULT_MAX_HEADER).
 */
MSP_API int msp_inspect_answer(msp_inspect_t *x, int to_server, const msp_icap_resp_info_t *r,
                               msp_inspect_outcome_t *out, unsigned *flags);

#endif
