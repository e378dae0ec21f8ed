/*
 * The operator's log of a TLMSP server or middlebox: one line per event
 * (a session that ended, a connection refused over a cap, accepting paused
 * and resumed, a drain, a reload), as text ("key=value" after an RFC 3339
 * UTC timestamp) or as one JSON object per line with stable field names
 * (docs/deploy-log.md). Sans-IO: the time is a parameter, the line goes
 * into a caller's buffer; the program writes it.
 */
#ifndef MSP_TLMSP_LOG_H
#define MSP_TLMSP_LOG_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/buf.h"

typedef enum msp_tlmsp_log_format {
    MSP_TLMSP_LOG_TEXT = 0,
    MSP_TLMSP_LOG_JSON = 1,
} msp_tlmsp_log_format_t;

#define MSP_TLMSP_LOG_MAX_CONTEXTS 255
#define MSP_TLMSP_LOG_LINE_MAX 8192 /* the longest line formatted; longer strings are cut */

/* A context a middlebox saw in a session, with its access: "none", "r" or "rw". */
typedef struct msp_tlmsp_log_context {
    uint8_t id;
    const char *tag; /* may be NULL */
    const char *access;
} msp_tlmsp_log_context_t;

/*
 * One event. NULL strings and the fields marked "0: absent" are left out
 * of the line; everything else is always there.
 */
typedef struct msp_tlmsp_log_record {
    double time;         /* seconds since the epoch (UTC) of the event */
    const char *role;    /* "server", "middlebox" */
    const char *event;   /* "session", "rejected", "paused", "resumed", "drain", "drained", "reload", ... */
    long pid;            /* the process (a worker's own) */
    unsigned worker;     /* 1..N with --workers; 0: absent */
    uint64_t id;         /* the session id, unique within the process; 0: absent */
    const char *tag;     /* middlebox tag */
    const char *peer;    /* the client side "ADDR:PORT" */
    const char *next;    /* a middlebox's next hop */
    int has_bytes;       /* the two byte counts are present */
    uint64_t bytes_in;   /* application bytes from the client (toward the server) */
    uint64_t bytes_out;  /* application bytes toward the client */
    double duration;     /* seconds; negative: absent */
    const char *outcome; /* "close", "alert", "error", "timeout", "drained", "rejected" ... */
    const char *detail;  /* the alert's name, the error, the reason */
    long count;          /* a number the event carries (sessions open, sessions closed); negative: absent */
    size_t n_contexts;
    const msp_tlmsp_log_context_t *contexts;
} msp_tlmsp_log_record_t;

/** A record with every optional field absent (duration and count -1). */
MSP_API void msp_tlmsp_log_record_init(msp_tlmsp_log_record_t *r);

/**
 * Appends the line for r (ending in a newline) to out. MSP_OK,
 * MSP_ERR_ARGUMENT (r, role or event NULL) or the buffer's error.
 */
MSP_API int msp_tlmsp_log_format(const msp_tlmsp_log_record_t *r, msp_tlmsp_log_format_t format, msp_buf_t *out);

/** t as RFC 3339 UTC with milliseconds ("2026-12-07T21:30:00.123Z") into out (at least 25 bytes): out. */
MSP_API const char *msp_tlmsp_log_time(double t, char *out, size_t size);

/**
 * The outcome of a session that ended with err (MSP_OK, an alert we sent,
 * an alert the peer sent, a local error): "close", "alert" (*detail the
 * alert's name) or "error" (*detail the error's name). *detail is NULL for
 * "close"; the strings are static.
 */
MSP_API const char *msp_tlmsp_log_outcome(int err, const char **detail);

/** "text" or "json" to a format: MSP_OK, or MSP_ERR_ARGUMENT. */
MSP_API int msp_tlmsp_log_format_parse(const char *s, msp_tlmsp_log_format_t *out);

#endif
