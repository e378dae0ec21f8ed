/* What msp client, server, middlebox and demo share: options, errors, sockets (the rest is msp/tlmsp_setup.h). */
#ifndef MSP_TOOLS_PROG_H
#define MSP_TOOLS_PROG_H

#include <stdint.h>
#include <stdio.h>

#include "msp/tlmsp_cfg.h"
#include "msp/tlmsp_conn.h"
#include "msp/tlmsp_io.h"
#include "msp/tlmsp_setup.h"

#define PROG_MAX_TAGS 251

typedef struct prog_opts {
    const char *config;
    const char *errors;   /* -e FILE, "-" = stdout */
    const char *pki;      /* --pki DIR: where certificate files are looked up */
    const char *trust;    /* --trust FILE: PEM certificates the peers' certificates must chain to */
    int presentation;     /* -P */
    int port_shift;       /* -p */
    int verbose;          /* -v, repeatable */
    int reflect;          /* -r (server) */
    int all;              /* -a (middlebox) */
    const char *icap;     /* --icap URL (middlebox) */
    const char *out_pcap; /* --out-pcap FILE (middlebox) */
    size_t ntags;
    const char *tags[PROG_MAX_TAGS];
    /* stream mode (cmd_stream.c) */
    const char *accept;   /* client --accept ADDR:PORT */
    const char *forward;  /* server --forward ADDR:PORT */
    int stdio;            /* client --stdio */
    const char *context;  /* --context TAG */
    const char *contexts; /* --contexts http */
    int insecure;         /* --insecure */
    /* server and middlebox, as an operator runs them (0: the library's defaults, msp/io_listener.h) */
    size_t max_sessions;        /* --max-sessions */
    size_t max_per_source;      /* --max-per-source */
    int backlog;                /* --backlog */
    int log_json;               /* --log-format json */
    double drain_timeout;       /* --drain-timeout [PROG_DRAIN_TIMEOUT] */
    int workers;                /* --workers [1] */
    msp_io_timeouts_t timeouts; /* --handshake-timeout, --idle-timeout, --close-timeout, --connect-timeout */
} prog_opts_t;

/** True when o asks for stream mode (--accept, --stdio, --forward). */
int prog_stream_mode(const prog_opts_t *o);

#define PROG_DRAIN_TIMEOUT 10.0 /* seconds open sessions get to close after SIGTERM or SIGINT */
#define PROG_MAX_WORKERS 256

/** Where errors go (-e). */
extern FILE *prog_err;

/** One line on the error stream: "msp ROLE: ...". */
void prog_error(const char *role, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Parses the reference's flags for role ("client", "server", "middlebox"). 0, 1 (--help printed) or 2 (usage). */
int prog_parse(const char *role, int argc, char **argv, prog_opts_t *o);

/** Loads the configuration (errors printed). */
int prog_load(const char *role, const prog_opts_t *o, msp_tlmsp_cfg_t **cfg);

/**
 * The configuration-to-engine setup of role (middlebox: the one tagged
 * tag), with --pki (default: the configuration's folder) and --trust.
 * 0, or -1 with the error printed.
 */
int prog_setup(const char *role, const prog_opts_t *o, const msp_tlmsp_cfg_t *cfg, const char *tag,
               msp_tlmsp_setup_t **out);

/** Compiles e's activities once, as the reference does at start-up: 0, or -1 with the error printed. */
int prog_check_activities(const char *role, const msp_tlmsp_cfg_t *cfg, const msp_tlmsp_cfg_entity_t *e);

/** Non-blocking sockets: a listener on host:port, a connection to host:port. -1 (printed) on failure. */
int prog_listen(const char *role, const char *host, uint16_t port);
int prog_connect(const char *role, const char *host, uint16_t port);

/** Connects to an address from the wire (a URL), with the port shift. */
int prog_connect_address(const char *role, const msp_tlmsp_address_t *a, int port_shift);

/*
 * The middlebox's next-hop resolver: msp/tlmsp_io.h's msp_io_resolver_t (one
 * per process, on the libev loop), its failures printed here.
 */
#define PROG_PENDING (-2) /* prog_connect_address_async: the answer comes later */

struct ev_loop;
typedef msp_io_resolver_lookup_t prog_lookup_t;

/* A lookup's end: fd is a non-blocking socket connecting to the address, or -1 (err says why). */
typedef msp_io_resolver_fn prog_lookup_fn;

/** Starts the resolver on loop; 0, or -1 with the error printed. */
int prog_resolver_start(const char *role, struct ev_loop *loop);

/** Drops every lookup (none is answered) and the channel. */
void prog_resolver_stop(void);

/**
 * prog_connect_address without blocking: the fd at once for an IP literal
 * or a name the hosts file knows, -1 (printed) when the address cannot be
 * used or too many lookups are in flight, else PROG_PENDING with *lookup
 * set: done(user, fd, err) runs later from the loop, unless
 * msp_io_resolver_cancel ran first.
 */
int prog_connect_address_async(const char *role, const msp_tlmsp_address_t *a, int port_shift, prog_lookup_fn done,
                               void *user, prog_lookup_t **lookup);

/** Stream mode: the client's --accept or --stdio, the server's --forward (cmd_stream.c). Exit status. */
int cmd_stream_client(prog_opts_t *o);
int cmd_stream_server(prog_opts_t *o);
/** "HOST:PORT" of an address from the wire, the port shifted, into out; "?" when it is not one. */
void prog_address_text(const msp_tlmsp_address_t *a, int port_shift, char *out, size_t size);

int cmd_tlmsp_client(int argc, char **argv);
int cmd_tlmsp_server(int argc, char **argv);
int cmd_tlmsp_middlebox(int argc, char **argv);
int cmd_tlmsp_demo(int argc, char **argv);

#endif
