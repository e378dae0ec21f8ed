/*
 * Stream mode of msp client and server (msp/tlmsp_stream.h does the work):
 * `msp client --accept ADDR:PORT` and `--stdio`, `msp server --forward
 * ADDR:PORT`. This file parses, listens (serve.h: caps, the session log
 * line, drain, reload, workers), connects without blocking the loop
 * (msp_io_resolver_connect) and logs; the sessions are the library's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "msp/error.h"
#include "msp/tlmsp_io.h"
#include "msp/tlmsp_stream.h"
#include "prog.h"
#include "serve.h"

/* What new sessions start with: a configuration, its setup and the stream settings; SIGHUP makes a new one. */
typedef struct gen {
    msp_tlmsp_cfg_t *cfg;
    msp_tlmsp_setup_t *setup;
    msp_tlmsp_endpoint_cfg_t ec;
    msp_tlmsp_stream_cfg_t sc; /* its loop set per session */
    int refs;                  /* the gateway's, and one per session */
} gen_t;

typedef struct sess sess_t;

typedef struct gw {
    const char *role;
    const prog_opts_t *o;
    gen_t *gen;
    struct ev_loop *loop;
    msp_io_resolver_t *resolver;
    serve_t sv; /* --accept, --forward */
    msp_io_listener_t *l;
    char host[256]; /* where to listen */
    uint16_t port;
    char fwd_host[256]; /* server: the backend */
    uint16_t fwd_port;
    sess_t *all; /* every session not freed yet */
    unsigned long sessions;
    int result; /* --stdio: the exit status */
} gw_t;

struct sess {
    gw_t *gw;
    gen_t *gen;
    msp_tlmsp_stream_t *s;
    msp_io_resolver_lookup_t *lookup; /* the connect in flight, if any */
    unsigned long id;
    serve_session_t ss; /* the listener's count and the session log line (not with --stdio) */
    sess_t *prev, *next;
};

/* An operator's log line: a UTC timestamp, then "msp ROLE: session N: ...". */
static void gw_log(const gw_t *g, const sess_t *x, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void gw_log(const gw_t *g, const sess_t *x, const char *fmt, ...)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    FILE *f = prog_err != NULL ? prog_err : stderr;
    fprintf(f, "%s.%03ldZ msp %s: ", when, (long)(tv.tv_usec / 1000), g->role);
    if (x != NULL) {
        fprintf(f, "session %lu: ", x->id);
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}

/* "ADDR:PORT" with the port given (an IPv6 address in brackets). 0, or -1 printed. */
static int split_hostport(const char *role, const char *flag, const char *text, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    char url[300];
    int n = snprintf(url, sizeof(url), "tcp://%s", text);
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        (size_t)n >= sizeof(url) || msp_tlmsp_cfg_address_parse(url, host, cap, port) != MSP_OK || *port == 0) {
        prog_error(role, "%s: '%s' is not ADDR:PORT", flag, text);
        return -1;
    }
    return 0;
}

/* The contexts the bytes travel in (--context TAG, --contexts http, else the first). 0, or -1 printed. */
static int pick_contexts(const char *role, const prog_opts_t *o, const msp_tlmsp_cfg_t *cfg, msp_tlmsp_stream_cfg_t *sc)
{
    if (o->contexts != NULL) {
        const msp_tlmsp_cfg_context_t *h = msp_tlmsp_cfg_context_by_tag(cfg, "header");
        const msp_tlmsp_cfg_context_t *b = msp_tlmsp_cfg_context_by_tag(cfg, "body");
        if (h == NULL || b == NULL) {
            prog_error(role, "--contexts http: %s needs one context tagged header and one tagged body", o->config);
            return -1;
        }
        sc->http = 1;
        sc->header_ctx = h->id;
        sc->body_ctx = b->id;
        return 0;
    }
    if (o->context != NULL) {
        const msp_tlmsp_cfg_context_t *c = msp_tlmsp_cfg_context_by_tag(cfg, o->context);
        if (c == NULL) {
            prog_error(role, "--context: %s has no single context tagged '%s'", o->config, o->context);
            return -1;
        }
        sc->ctx = c->id;
        return 0;
    }
    if (cfg->n_contexts == 0) {
        prog_error(role, "%s: no context to carry the bytes in", o->config);
        return -1;
    }
    sc->ctx = cfg->contexts[0].id;
    return 0;
}

static void gen_unref(gen_t *g)
{
    if (g == NULL || --g->refs > 0) {
        return;
    }
    msp_tlmsp_setup_free(g->setup);
    msp_tlmsp_cfg_free(g->cfg);
    free(g);
}

/* Configuration, setup (trust) and contexts. NULL, printed. */
static gen_t *gen_load(const char *role, const prog_opts_t *o)
{
    gen_t *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        prog_error(role, "out of memory");
        return NULL;
    }
    g->refs = 1;
    if (prog_load(role, o, &g->cfg) != 0 || prog_setup(role, o, g->cfg, NULL, &g->setup) != 0 ||
        pick_contexts(role, o, g->cfg, &g->sc) != 0) {
        gen_unref(g);
        return NULL;
    }
    msp_tlmsp_setup_endpoint(g->setup, NULL, &g->ec);
    g->sc.role = strcmp(role, "client") == 0 ? MSP_TLMSP_ID_CLIENT : MSP_TLMSP_ID_SERVER;
    g->sc.engine = &g->ec;
    g->sc.timeouts = &o->timeouts; /* --handshake-timeout, --idle-timeout, --close-timeout, --connect-timeout */
    return g;
}

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- sessions ---- */

static void sess_free(sess_t *x)
{
    gw_t *g = x->gw;
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        g->all = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    }
    msp_io_resolver_cancel(x->lookup);
    msp_tlmsp_stream_free(x->s);
    gen_unref(x->gen);
    free(x);
}

/* The session log line (--accept, --forward): application bytes from the client's side and toward it. */
static void sess_log(sess_t *x, const char *outcome, const char *detail)
{
    int client = x->gw->gen->sc.role == MSP_TLMSP_ID_CLIENT;
    msp_tlmsp_log_record_t r;
    msp_tlmsp_log_record_init(&r);
    r.outcome = outcome;
    r.detail = detail;
    x->ss.bytes_in = msp_tlmsp_stream_bytes(x->s, client);
    x->ss.bytes_out = msp_tlmsp_stream_bytes(x->s, !client);
    serve_session_end(&x->ss, &r); /* once: a second call does nothing */
}

static void on_closed(void *user, msp_tlmsp_stream_t *s, const msp_error_t *err)
{
    sess_t *x = user;
    gw_t *g = x->gw;
    if (err->code != MSP_OK) {
        gw_log(g, x, "ended: %s", err->detail[0] != '\0' ? err->detail : msp_error_name(err->code));
    } else if (g->o->verbose > 0) {
        gw_log(g, x, "closed cleanly: %llu bytes to the peer, %llu from it",
               (unsigned long long)msp_tlmsp_stream_bytes(s, 1), (unsigned long long)msp_tlmsp_stream_bytes(s, 0));
    }
    const char *detail = NULL;
    const char *outcome = msp_tlmsp_log_outcome(err->code, &detail);
    if (err->code != MSP_OK && strstr(err->detail, "timed out") != NULL) {
        outcome = "timeout";
    }
    sess_log(x, outcome, err->detail[0] != '\0' ? err->detail : detail);
    if (g->o->stdio) {
        g->result = err->code == MSP_OK ? 0 : 1;
        ev_break(g->loop, EVBREAK_ALL);
    }
    sess_free(x);
}

/* A connect ended (from the loop): the socket joins the session, or the session ends saying why. */
static void on_connected(void *user, int fd, const msp_error_t *err)
{
    sess_t *x = user;
    x->lookup = NULL;
    int server = x->gen->sc.role == MSP_TLMSP_ID_SERVER;
    if (fd < 0) {
        msp_error_t why;
        msp_error_set(&why, err->code, NULL, "%s: %s", server ? "backend" : "first hop", err->detail);
        msp_tlmsp_stream_abort(x->s, &why);
        return;
    }
    int ret = server ? msp_tlmsp_stream_attach_plain(x->s, fd, fd) : msp_tlmsp_stream_attach_tlmsp(x->s, fd);
    if (ret != MSP_OK) {
        close(fd);
    }
}

static void sess_connect(sess_t *x, const char *host, uint16_t port)
{
    msp_error_t err;
    msp_error_clear(&err);
    int fd = -1;
    if (msp_io_resolver_connect(x->gw->resolver, host, port, on_connected, x, &fd, &x->lookup, &err) != MSP_OK) {
        on_connected(x, -1, &err);
    } else if (x->lookup == NULL) {
        on_connected(x, fd, &err);
    }
}

/* The server's backend is connected once the peer is authenticated, not for every TCP knock. */
static void on_ready(void *user, msp_tlmsp_stream_t *s)
{
    sess_t *x = user;
    gw_t *g = x->gw;
    if (g->o->verbose > 0) {
        gw_log(g, x, "handshake complete, %zu middlebox(es)", msp_tlmsp_conn_middleboxes(msp_tlmsp_stream_conn(s))->n);
    }
    if (x->gen->sc.role == MSP_TLMSP_ID_SERVER) {
        sess_connect(x, g->fwd_host, g->fwd_port);
    }
}

static sess_t *sess_new(gw_t *g)
{
    sess_t *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return NULL;
    }
    x->gw = g;
    x->id = ++g->sessions;
    msp_tlmsp_stream_cfg_t sc = g->gen->sc;
    sc.loop = g->loop;
    sc.ev = (msp_tlmsp_stream_events_t){x, on_ready, on_closed};
    int ret = msp_tlmsp_stream_new(&sc, &x->s);
    if (ret != MSP_OK) {
        gw_log(g, x, "cannot start: %s", msp_error_name(ret));
        free(x);
        return NULL;
    }
    x->gen = g->gen;
    x->gen->refs++;
    x->next = g->all;
    if (x->next != NULL) {
        x->next->prev = x;
    }
    g->all = x;
    return x;
}

/* Client: the plain side is here; the TLMSP side goes to the first hop (the first middlebox, else the server). */
static sess_t *client_session(gw_t *g, int in_fd, int out_fd)
{
    sess_t *x = sess_new(g);
    if (x == NULL || msp_tlmsp_stream_attach_plain(x->s, in_fd, out_fd) != MSP_OK) {
        if (x != NULL) {
            sess_free(x);
        }
        return NULL;
    }
    const msp_tlmsp_address_t *hop = msp_tlmsp_conn_first_hop(msp_tlmsp_stream_conn(x->s));
    char url[MSP_TLMSP_MAX_ADDRESS + 1], host[256];
    uint16_t port;
    snprintf(url, sizeof(url), "%.*s", (int)hop->len, (const char *)hop->bytes);
    if (msp_tlmsp_cfg_address_parse(url, host, sizeof(host), &port) != MSP_OK) {
        msp_error_t err;
        msp_error_set(&err, MSP_ERR_INVALID, NULL, "first hop '%s': not an address we can connect to", url);
        msp_tlmsp_stream_abort(x->s, &err);
        return x;
    }
    sess_connect(x, host, (uint16_t)(port + g->o->port_shift));
    return x;
}

/* The listener's accept: 0 when the session took fd, -1 (the listener closes it). */
static int gw_accept(void *user, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    gw_t *g = user;
    sess_t *x = NULL;
    if (g->gen->sc.role == MSP_TLMSP_ID_CLIENT) {
        x = client_session(g, fd, fd);
    } else if ((x = sess_new(g)) != NULL && msp_tlmsp_stream_attach_tlmsp(x->s, fd) != MSP_OK) {
        sess_free(x);
        x = NULL;
    }
    if (x == NULL) {
        return -1;
    }
    serve_session_begin(&g->sv, &x->ss, g->l, peer, peer_len, x);
    return 0;
}

/* ---- drain and reload (serve.h) ---- */

/* Our direction ends (close_notify); the peer's runs on until its own, or the drain deadline. */
static void gw_drain(void *owner)
{
    msp_tlmsp_stream_close(((sess_t *)owner)->s);
}

/* The drain deadline: the session ends now (its log line here, its memory from the loop). */
static void gw_kill(void *owner)
{
    sess_t *x = owner;
    msp_error_t err;
    msp_error_set(&err, MSP_ERR_IO, NULL, "drain deadline");
    sess_log(x, "timeout", "drain deadline");
    msp_tlmsp_stream_abort(x->s, &err);
}

static int gw_reload(void *user)
{
    gw_t *g = user;
    gen_t *n = gen_load(g->role, g->o);
    if (n == NULL) {
        return -1;
    }
    gen_unref(g->gen);
    g->gen = n;
    return 0;
}

/* ---- start-up ---- */

/* The loop and the resolver of this process. 0, or -1 printed. */
static int gw_loop(gw_t *g)
{
    g->loop = ev_default_loop(0);
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_io_resolver_new(g->loop, NULL, &g->resolver, &err) != MSP_OK) {
        prog_error(g->role, "%s", err.detail);
        return -1;
    }
    return 0;
}

static void gw_close(gw_t *g)
{
    while (g->all != NULL) {
        sess_free(g->all);
    }
    msp_io_resolver_free(g->resolver);
    g->resolver = NULL;
}

/* One process's gateway (each worker's own): 0 after a drain, 1 when it cannot listen. */
static int gw_run(void *arg, unsigned worker)
{
    gw_t *g = arg;
    if (gw_loop(g) != 0) {
        return 1;
    }
    serve_hooks_t hooks = {gw_drain, gw_kill, gw_reload, g};
    serve_init(&g->sv, g->role, g->o, g->loop, worker, &hooks);
    int status = 1;
    if (serve_listen(&g->sv, g->host, g->port, gw_accept, g, &g->l) == 0) {
        if (g->o->verbose > 0) {
            gw_log(g, NULL, "listening on %s:%u", g->host, g->port);
        }
        serve_run(&g->sv);
        status = 0;
    }
    gw_close(g);
    serve_free(&g->sv);
    return status;
}

/* Configuration and warnings. 0, or the exit status (2: bad input). */
static int gw_open(gw_t *g, const char *role, const prog_opts_t *o)
{
    memset(g, 0, sizeof(*g));
    g->role = role;
    g->o = o;
    g->result = 1;
    if ((g->gen = gen_load(role, o)) == NULL) {
        return 2;
    }
    const msp_tlmsp_cfg_entity_t *e = msp_tlmsp_setup_entity(g->gen->setup);
    if (e->to_server.n > 0 || e->to_client.n > 0) {
        prog_error(role, "warning: stream mode runs no activities: the %s's function lists in %s are not used", role,
                   o->config);
    }
    if (o->insecure) {
        prog_error(role, "warning: --insecure: no certificate is verified; anyone on the path can pose as a peer");
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int cmd_stream_client(prog_opts_t *o)
{
    gw_t g;
    char host[256];
    uint16_t port = 0;
    if (o->accept != NULL && split_hostport("client", "--accept", o->accept, host, sizeof(host), &port) != 0) {
        return 2;
    }
    int status = gw_open(&g, "client", o);
    if (status == 0 && o->stdio) {
        status = gw_loop(&g) != 0 ? 1 : 0;
        if (status == 0 && (nonblocking(0) != 0 || nonblocking(1) != 0 || client_session(&g, 0, 1) == NULL)) {
            prog_error("client", "--stdio: cannot use stdin and stdout: %s", strerror(errno));
            status = 1;
        } else if (status == 0) {
            ev_run(g.loop, 0);
            status = g.result;
        }
        gw_close(&g);
    } else if (status == 0) {
        snprintf(g.host, sizeof(g.host), "%s", host);
        g.port = port;
        status = serve_workers("client", o->workers, gw_run, &g);
    }
    gen_unref(g.gen);
    return status;
}

int cmd_stream_server(prog_opts_t *o)
{
    gw_t g;
    char host[256];
    uint16_t port;
    if (split_hostport("server", "--forward", o->forward, host, sizeof(host), &port) != 0) {
        return 2;
    }
    int status = gw_open(&g, "server", o);
    if (status == 0) {
        snprintf(g.fwd_host, sizeof(g.fwd_host), "%s", host);
        g.fwd_port = port;
        const msp_tlmsp_cfg_entity_t *e = msp_tlmsp_setup_entity(g.gen->setup);
        snprintf(g.host, sizeof(g.host), "%s", e->address.host);
        g.port = (uint16_t)(e->address.port + o->port_shift);
        status = serve_workers("server", o->workers, gw_run, &g);
    }
    gen_unref(g.gen);
    return status;
}
