/*
 * The activities of msp client, server and middlebox on libev: the
 * library's matcher (msp/tlmsp_activity.h) decides, this runs what it
 * decides: timers, the actions after the input that caused them (the core
 * is not re-entrant), handler processes, presentation output.
 */
#ifndef MSP_TOOLS_ACTIVITY_H
#define MSP_TOOLS_ACTIVITY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ev.h>

#include "msp/tlmsp_activity.h"
#include "msp/tlmsp_io.h"

/* One function list (an entity's activities for one direction) of an endpoint or a middlebox connection. */
typedef struct act_set {
    msp_tlmsp_activity_t *m;
    const char *who;  /* "client", "server", "mbox1" ... for the output */
    msp_io_ep_t **ep; /* where the actions go: the endpoint's driver, */
    msp_io_mb_t **mb; /* or the middlebox's (NULL until connected, after closing) */
    struct ev_loop *loop;
    int force_present; /* -P: present every activity */
    ev_idle idle;
    ev_timer timer;
    /* a middlebox's matcher that holds containers (msp_tlmsp_activity_hold): */
    int hold, to_server;
    ev_prepare release; /* after the inputs of a loop turn: what the matcher decided goes out */
    ev_timer hold_idle; /* nothing came for HOLD_IDLE: the held containers are decided as they stand */
    uint64_t sent[2];   /* application bytes the actions sent toward the client [0] and the server [1] */
    int reflect;        /* -r: every input is answered, so a blocked set pauses the endpoint's input */
    int shut;           /* the shutdown action ran: later sends have nowhere to go */
    int blocked;        /* an output queue is full: the actions wait for act_drained */
    char err[600];
    /* a big file being sent (MSP_TLMSP_ACTION_SEND_FILE): the actions after it wait */
    FILE *file;
    const msp_tlmsp_cfg_activity_t *file_act;
    const char *file_name;
    uint8_t file_ctx;
    unsigned long long file_sent;
} act_set_t;

/**
 * The matcher for ac (regexes compiled, files read), acting on *ep or *mb. 0, or -1 with set->err.
 * A middlebox's matcher holds containers that may begin a match the next one completes, unless an
 * activity of the list matches by container number or probability (those count containers one by one).
 */
int act_init(act_set_t *set, struct ev_loop *loop, const msp_tlmsp_activity_cfg_t *ac, const char *who,
             msp_io_ep_t **ep, msp_io_mb_t **mb, int force_present);
void act_free(act_set_t *set);

/** The connection is up: time-driven activities start. */
void act_start(act_set_t *set);
/** An output queue drained (the drivers' drained events): a big file being sent and the actions that waited for room go
 * on. */
void act_drained(act_set_t *set);

/** The connection is gone: timers stop, queued actions are dropped. */
void act_stop(act_set_t *set);

/**
 * Data that arrived (endpoint), or a container a middlebox may act on.
 * Returns the verdict for a middlebox (REPLACE: *data, *len are valid until
 * the next call; HOLD: the set releases it once decided, before it runs the
 * actions); endpoints get FORWARD.
 */
msp_tlmsp_verdict_t act_on_data(act_set_t *set, uint8_t ctx, uint8_t access, const uint8_t *p, size_t len,
                                const uint8_t **data, size_t *data_len);

/** Prints bytes readably: printable ASCII as is, the rest escaped (\n, \xNN). */
void act_print_bytes(FILE *f, const uint8_t *p, size_t len);

#endif
