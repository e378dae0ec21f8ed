/*
 * What msp server and msp middlebox (and any other accepting command) do as
 * services an operator runs: listeners with the session caps
 * (msp/io_listener.h), one log line per session and per listener event
 * (msp/tlmsp_log.h, on the error stream), a drain on SIGTERM and SIGINT, a
 * reload on SIGHUP, and --workers processes. No protocol here: the program
 * says how to close_notify, end and reload its own sessions.
 */
#ifndef MSP_TOOLS_SERVE_H
#define MSP_TOOLS_SERVE_H

#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "msp/io_listener.h"
#include "msp/tlmsp_log.h"
#include "prog.h"

typedef struct serve serve_t;

/* A listener and the program's accept callback behind it. */
typedef struct serve_port {
    serve_t *sv;
    msp_io_listener_t *l;
    msp_io_listener_accept_fn fn;
    void *user;
} serve_port_t;

/* One session the program took from a listener; embedded in the program's own session state. */
typedef struct serve_session {
    serve_t *sv;
    msp_io_listener_t *l;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    char peer_text[64];
    uint64_t id;
    double start;                 /* ev_time() when accepted */
    uint64_t bytes_in, bytes_out; /* toward the server, toward the client */
    void *owner;
    struct serve_session *prev, *next;
} serve_session_t;

/* The program's part of a drain and a reload. */
typedef struct serve_hooks {
    void (*drain)(void *owner); /* close_notify on a session; one not yet up ends at once (serve_session_end) */
    void (*kill)(void *owner);  /* the drain deadline: end the session now (serve_session_end) */
    int (*reload)(void *user);  /* SIGHUP: 0, or -1 with the reason printed; open sessions keep theirs */
    void *user;
} serve_hooks_t;

struct serve {
    const char *role;
    const prog_opts_t *o;
    struct ev_loop *loop;
    unsigned worker; /* 1..N with --workers N > 1, else 0 */
    serve_hooks_t hooks;
    serve_session_t *sessions; /* open ones, newest first */
    size_t open;
    uint64_t last_id;
    int draining;
    size_t n_ports;
    serve_port_t ports[PROG_MAX_TAGS];
    ev_signal sig_term, sig_int, sig_hup;
    ev_timer deadline;
};

/** Sets sv up on loop (the default loop: it takes the signals). */
void serve_init(serve_t *sv, const char *role, const prog_opts_t *o, struct ev_loop *loop, unsigned worker,
                const serve_hooks_t *hooks);

/** Listens on host:port with -o's caps and backlog (SO_REUSEPORT under --workers): 0, or -1 printed. */
int serve_listen(serve_t *sv, const char *host, uint16_t port, msp_io_listener_accept_fn fn, void *user,
                 msp_io_listener_t **out);

/** Counts a session in (from the accept callback): its id, start and peer. */
void serve_session_begin(serve_t *sv, serve_session_t *s, msp_io_listener_t *l, const struct sockaddr *peer,
                         socklen_t peer_len, void *owner);

/**
 * Counts it out: its log line (r: what the program adds, tag, next hop,
 * contexts, outcome; the rest is filled here), the listener's count; at the
 * end of a drain, the loop stops.
 */
void serve_session_end(serve_session_t *s, msp_tlmsp_log_record_t *r);

/** One log line for r (time, role, pid and worker filled here). */
void serve_log(const serve_t *sv, msp_tlmsp_log_record_t *r);

/** Catches SIGTERM, SIGINT and SIGHUP and runs the loop until a drain ends. */
void serve_run(serve_t *sv);

/** Closes the listeners. */
void serve_free(serve_t *sv);

/**
 * --workers: n == 1 runs run(arg, 0) here. Else n processes run(arg, 1..n);
 * this one forwards SIGTERM, SIGINT and SIGHUP to them, restarts none, and
 * returns the worst exit status once all have exited.
 */
int serve_workers(const char *role, int n, int (*run)(void *arg, unsigned worker), void *arg);

#endif
