/*
 * The match-action activities of the reference's programs (tlmsp-tools
 * libdemo/activity.c, keywords in libtlmsp-cfg/everything.ucl), sans-IO:
 * containers (context, bytes) and the configured patterns in, actions out.
 * No sockets, no clock, no processes: time-driven activities run when the
 * caller says the time has come, and a `handler` is returned as an action
 * for the caller to run (docs/tlmsp-programs.md).
 *
 * One matcher per function list (an entity's activities for one direction).
 *
 * Matching is the reference's: after each container, every activity looks
 * for its match in the data held so far, the earliest match wins (ties: the
 * first activity of the list), its actions run, everything up to the end of
 * the match is consumed, and the rest is searched again until nothing
 * matches. An endpoint holds what did not match (the reference's read
 * queue, at most max_queue bytes), so a pattern split across containers
 * matches once its last part arrives; a pattern searches the first run of
 * consecutive containers in its `which` contexts. A middlebox decides on
 * each container as it passes, so it matches every occurrence within that
 * container only; unless msp_tlmsp_activity_hold made it hold: then, where it can read,
 * a container whose bytes might begin a match that the next container
 * completes gets MSP_TLMSP_HOLD, and the containers of one context held in
 * a row are searched as one (the reference's read queue at a middlebox).
 * When a match or a change of context decides them, what becomes of each
 * held container is taken with msp_tlmsp_activity_take_released, for
 * msp_tlmsp_mbox_release; msp_tlmsp_activity_flush decides them as they
 * stand (the caller's idle timer, the reference's 100 ms). A match across
 * containers: the bytes before it stay in the first, the same-context sends
 * take its place there, the bytes after it stay in the last; a container
 * left with nothing is deleted.
 */
#ifndef MSP_TLMSP_ACTIVITY_H
#define MSP_TLMSP_ACTIVITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msp/api.h"
#include "msp/error.h"
#include "msp/tlmsp_cfg.h"
#include "msp/tlmsp_conn.h"

#define MSP_TLMSP_ACTIVITY_MAX_FILE ((size_t)16 << 20)     /* a pattern or payload file */
#define MSP_TLMSP_ACTIVITY_DEFAULT_QUEUE ((size_t)1 << 20) /* the reference's READ_QUEUE_MAX_DEPTH_BYTES */
#define MSP_TLMSP_ACTIVITY_MAX_PENDING ((size_t)64 << 20)  /* bytes of actions not yet taken */
#define MSP_TLMSP_ACTIVITY_NO_TIME UINT64_MAX

typedef struct msp_tlmsp_activity_cfg {
    const msp_tlmsp_cfg_t *cfg;              /* borrowed for the matcher's life */
    const msp_tlmsp_cfg_fnlist_t *functions; /* the list to run; NULL: none */
    bool middlebox;                          /* else an endpoint */
    bool to_server;                          /* the direction of the data this list sees */
    size_t max_queue;                        /* endpoint: bytes held unmatched; 0: the default */
    bool reflect; /* endpoint: every container is also sent back as it came (the reference server's -r) */
} msp_tlmsp_activity_cfg_t;

typedef enum msp_tlmsp_action_kind {
    MSP_TLMSP_ACTION_MATCHED = 1, /* an activity matched p/len in context (for presentation) */
    MSP_TLMSP_ACTION_SEND,        /* send p/len in context toward the server (to_server) or the client */
    MSP_TLMSP_ACTION_ALERT,       /* send alert level/description in context toward to_server */
    MSP_TLMSP_ACTION_SHUTDOWN,    /* end the session (close_notify) */
    MSP_TLMSP_ACTION_HANDLER,     /* run command with p/len on stdin; send its output as SEND would, or log it (log) */
    /* an endpoint's `file =` payload over MSP_TLMSP_ACTIVITY_MAX_FILE, not held in memory: send the contents of
     * `file` in context toward to_server, read in chunks as the output queue drains; the actions after it wait
     * until it is all sent */
    MSP_TLMSP_ACTION_SEND_FILE,
} msp_tlmsp_action_kind_t;

typedef struct msp_tlmsp_action {
    msp_tlmsp_action_kind_t kind;
    const msp_tlmsp_cfg_activity_t *activity; /* the one whose match or timer caused it; NULL: reflect */
    uint32_t line;                            /* the action's line in the configuration (0 for MATCHED) */
    uint8_t context;
    bool to_server;
    bool applied;        /* SEND: already in the container's replacement (middlebox): present it only */
    bool log;            /* HANDLER: its output is logged, not sent */
    uint8_t level;       /* ALERT: 1 warning, 2 fatal */
    uint8_t description; /* ALERT */
    const char *command; /* HANDLER: for /bin/sh -c */
    const char *file;    /* SEND_FILE: the file name as configured */
    const uint8_t *p;
    size_t len;
} msp_tlmsp_action_t;

typedef struct msp_tlmsp_activity msp_tlmsp_activity_t;

/**
 * Compiles the regexes and reads the pattern and payload files (names as
 * configured, relative to the working directory). MSP_OK, or
 * MSP_ERR_INVALID (a regex that does not compile, `renegotiate`, which
 * TLMSP lacks), MSP_ERR_IO, MSP_ERR_LIMIT (a pattern file, or a
 * middlebox's payload file, over MSP_TLMSP_ACTIVITY_MAX_FILE; an endpoint's
 * bigger payload file is only opened here, and sent as
 * MSP_TLMSP_ACTION_SEND_FILE), MSP_ERR_NO_MEMORY; err says where and why.
 */
MSP_API int msp_tlmsp_activity_new(const msp_tlmsp_activity_cfg_t *cfg, msp_tlmsp_activity_t **out, msp_error_t *err);
/** NULL is ignored. */
MSP_API void msp_tlmsp_activity_free(msp_tlmsp_activity_t *a);

/**
 * The connection is up at now_ms (any clock of the caller, in ms): every
 * time-driven activity is scheduled from now (`at = 0` is due at once).
 */
MSP_API void msp_tlmsp_activity_start(msp_tlmsp_activity_t *a, uint64_t now_ms);

/** The connection is gone: nothing is scheduled any more, held data and untaken actions are dropped. */
MSP_API void msp_tlmsp_activity_stop(msp_tlmsp_activity_t *a);

/** When the next time-driven activity is due, or MSP_TLMSP_ACTIVITY_NO_TIME. */
MSP_API uint64_t msp_tlmsp_activity_next_due(const msp_tlmsp_activity_t *a);

/**
 * Runs every time-driven activity due by now_ms, once each (a repeating one
 * late by more than its period skips what it missed). MSP_OK or
 * MSP_ERR_LIMIT / MSP_ERR_NO_MEMORY (too many untaken actions).
 */
MSP_API int msp_tlmsp_activity_advance(msp_tlmsp_activity_t *a, uint64_t now_ms);

/**
 * A container's data in context ctx: for an endpoint the application data
 * received; for a middlebox a container passing through, with its access
 * (MSP_TLMSP_ACCESS_*) and p NULL without read access. Matches and queues
 * actions. verdict (may be NULL for an endpoint) gets what becomes of a
 * middlebox's container: FORWARD, DELETE (the match was all of it), or
 * REPLACE with the bytes in *data and *data_len, valid until the next call on a. MSP_OK, or
 * MSP_ERR_LIMIT / MSP_ERR_NO_MEMORY (then the container is forwarded).
 */
MSP_API int msp_tlmsp_activity_input(msp_tlmsp_activity_t *a, uint8_t ctx, uint8_t access, const uint8_t *p, size_t len,
                                     msp_tlmsp_verdict_t *verdict, const uint8_t **data, size_t *data_len);

/**
 * Takes the next queued action, in the order of the configuration.
 * Returns true and fills *out (bytes valid until the next call on a), or
 * false when none is left.
 */
MSP_API bool msp_tlmsp_activity_next(msp_tlmsp_activity_t *a, msp_tlmsp_action_t *out);

/** Bytes held unmatched (an endpoint's read queue; a holding middlebox's held containers, not yet decided). */
MSP_API size_t msp_tlmsp_activity_held(const msp_tlmsp_activity_t *a);

/* A holding middlebox (cfg.hold): at most this many containers and plaintext bytes held, well under the engine's
 * bounds (MSP_TLMSP_HOLD_MAX_*, which count whole containers); past them the oldest are decided as they stand. */
#define MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS 32
#define MSP_TLMSP_ACTIVITY_HOLD_BYTES ((size_t)512 << 10)

/**
 * A middlebox's matcher holds from now on (before its first input): where
 * it reads, it answers MSP_TLMSP_HOLD while a match could go on into the
 * next container. MSP_OK; MSP_ERR_ARGUMENT for an endpoint's, or when an
 * activity of the list matches containers (by number or probability, which
 * count containers one at a time); MSP_ERR_NO_MEMORY.
 */
MSP_API int msp_tlmsp_activity_hold(msp_tlmsp_activity_t *a);

/**
 * A holding middlebox: the verdicts decided for the oldest held containers
 * since the last call, in order (REPLACE with data[i], data_len[i]), for
 * msp_tlmsp_mbox_release; returns how many (0: none). Valid until the next
 * call on a.
 */
MSP_API size_t msp_tlmsp_activity_take_released(msp_tlmsp_activity_t *a, const msp_tlmsp_verdict_t **verdicts,
                                                const uint8_t *const **data, const size_t **data_len);

/** A holding middlebox: every held container is decided as it stands (nothing more will complete a match). */
MSP_API int msp_tlmsp_activity_flush(msp_tlmsp_activity_t *a);

#endif
