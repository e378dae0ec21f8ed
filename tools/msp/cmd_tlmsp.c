/* msp client | server | middlebox: the reference's three programs, with its flags and configuration files. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "activity.h"
#include "mb_inspect.h"
#include "msp/error.h"
#include "msp/tlmsp_io.h"
#include "prog.h"
#include "serve.h"

/* ---- a configuration and its setups, reloaded on SIGHUP ---- */

/* What sessions start with; each keeps the one it started with (its certificates, keys and activities). */
typedef struct gen {
    msp_tlmsp_cfg_t *cfg;
    size_t refs; /* one while it is the process's current one, one per session */
    size_t n;    /* setups: the server's one, or one per middlebox served */
    msp_tlmsp_setup_t **setup;
} gen_t;

static gen_t *gen_ref(gen_t *g)
{
    g->refs++;
    return g;
}

static void gen_unref(gen_t *g)
{
    if (g == NULL || --g->refs > 0) {
        return;
    }
    for (size_t i = 0; g->setup != NULL && i < g->n; i++) {
        msp_tlmsp_setup_free(g->setup[i]);
    }
    free(g->setup);
    msp_tlmsp_cfg_free(g->cfg);
    free(g);
}

/* The middlebox tag of setup i: -t's, or -a's from the configuration. */
static const char *gen_tag(const gen_t *g, const prog_opts_t *o, size_t i)
{
    return o->all ? g->cfg->middleboxes[i].tag : o->tags[i];
}

/*
 * Loads the configuration and sets up the server (mbox 0) or each middlebox
 * of -t / -a, activities compiled: NULL with the reasons printed.
 */
static gen_t *gen_load(const char *role, const prog_opts_t *o, int mbox)
{
    gen_t *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        prog_error(role, "out of memory");
        return NULL;
    }
    g->refs = 1;
    int ok = prog_load(role, o, &g->cfg) == 0;
    if (ok) {
        g->n = !mbox ? 1 : o->all ? g->cfg->n_middleboxes : o->ntags;
        g->setup = calloc(g->n + 1, sizeof(*g->setup));
        ok = g->setup != NULL;
    }
    if (ok && g->n == 0) {
        prog_error(role, "%s: the configuration has no middlebox", g->cfg->name);
        ok = 0;
    }
    for (size_t i = 0; ok && i < g->n; i++) {
        ok = prog_setup(role, o, g->cfg, mbox ? gen_tag(g, o, i) : NULL, &g->setup[i]) == 0;
        const msp_tlmsp_cfg_entity_t *e = mbox && ok ? msp_tlmsp_setup_entity(g->setup[i]) : &g->cfg->server;
        ok = ok && prog_check_activities(role, g->cfg, e) == 0;
    }
    if (!ok) {
        gen_unref(g);
        return NULL;
    }
    return g;
}

/* ---- endpoints ---- */

typedef struct ep_app {
    const char *role;
    const prog_opts_t *o;
    const msp_tlmsp_cfg_t *cfg;
    struct ev_loop *loop;
    msp_io_ep_t *ep;
    act_set_t acts;
    int result;                  /* the client's exit status */
    msp_tlmsp_endpoint_cfg_t ec; /* client: to connect again after discovery */
    /* a server's session: */
    gen_t *gen;
    serve_session_t ss;
    int up; /* the handshake completed */
} ep_app_t;

static void on_ep_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    ep_app_t *a = user;
    const uint8_t *d;
    size_t n;
    a->ss.bytes_in += len;
    if (a->o->verbose > 1) {
        fprintf(stderr, "msp %s: %zu bytes in context %u\n", a->role, len, ctx);
    }
    act_on_data(&a->acts, ctx, MSP_TLMSP_ACCESS_RW, p, len, &d, &n);
}

static void on_ep_alert(void *user, uint8_t ctx, uint8_t level, uint8_t desc)
{
    ep_app_t *a = user;
    if (level == 2 || a->o->verbose > 0) {
        prog_error(a->role, "%s alert %s (%u) in context %u", level == 2 ? "fatal" : "warning",
                   desc == 0 ? "close_notify" : msp_error_name(desc), desc, ctx);
    }
}

static void on_ep_ready(void *user, msp_io_ep_t *ep)
{
    ep_app_t *a = user;
    a->up = 1;
    if (a->ss.sv != NULL && a->ss.sv->draining) {
        msp_io_ep_alert(ep, 0, 1, 0); /* it finished its handshake during a drain: close it now */
        return;
    }
    if (a->o->verbose > 0) {
        const msp_tlmsp_mbox_list_t *l = msp_tlmsp_conn_middleboxes(msp_io_ep_conn(ep));
        fprintf(stderr, "msp %s: handshake complete, %zu middlebox(es)\n", a->role, l->n);
    }
    act_start(&a->acts);
}

/* The queue went empty: a big file being sent goes on. */
static void on_ep_drained(void *user, msp_io_ep_t *ep)
{
    ep_app_t *a = user;
    (void)ep;
    act_drained(&a->acts);
}

static int client_reconnect(ep_app_t *a, msp_io_ep_t *old);

/*
 * A session log line's outcome and detail: the alert or error by name, and the driver's reason when it has one
 * ("middlebox_route_failure: connection refused", "timeout: handshake timed out after 30 s"), formatted into buf.
 */
static const char *log_outcome(int err, const char *why, const char **detail, char *buf, size_t size)
{
    const char *outcome = msp_tlmsp_log_outcome(err, detail);
    if (why != NULL) {
        snprintf(buf, size, "%s: %s", *detail, why);
        *detail = buf;
    }
    return outcome;
}

/* Why a session ended: the driver's reason for a time-out or a socket failure, else the code's name. */
static const char *why_ended(int err, const char *why)
{
    return why != NULL && (err == MSP_ERR_IO || err == MSP_ERR_TIMEOUT) ? why : msp_error_name(err);
}

static void on_ep_closed(void *user, msp_io_ep_t *ep, int err)
{
    ep_app_t *a = user;
    if (err == MSP_ERR_RECONNECT && client_reconnect(a, ep) == 0) {
        return;
    }
    if (err != MSP_OK) {
        prog_error(a->role, "connection ended: %s", why_ended(err, msp_io_ep_why(ep)));
    } else if (a->o->verbose > 0) {
        fprintf(stderr, "msp %s: connection closed\n", a->role);
    }
    a->result = err == MSP_OK ? 0 : 1;
    act_stop(&a->acts);
    a->ep = NULL;
    msp_io_ep_free(ep);
    if (strcmp(a->role, "client") == 0) {
        ev_break(a->loop, EVBREAK_ALL);
    }
}

static int ep_app_init(ep_app_t *a, const char *role, const prog_opts_t *o, const msp_tlmsp_cfg_t *cfg,
                       struct ev_loop *loop, const msp_tlmsp_cfg_fnlist_t *fns, int to_server)
{
    memset(a, 0, sizeof(*a));
    a->role = role;
    a->o = o;
    a->cfg = cfg;
    a->loop = loop;
    msp_tlmsp_activity_cfg_t ac = {cfg, fns, false, to_server, 0, o->reflect};
    if (act_init(&a->acts, loop, &ac, role, &a->ep, NULL, o->presentation) != 0) {
        prog_error(role, "%s", a->acts.err);
        return -1;
    }
    return 0;
}

static void ep_app_free(ep_app_t *a)
{
    msp_io_ep_free(a->ep);
    act_free(&a->acts);
}

/* A connection's state goes once the loop is out of every call that may still use it. */
static void free_ep_later(int revents, void *arg)
{
    ep_app_t *a = arg;
    (void)revents;
    act_free(&a->acts);
    gen_unref(a->gen);
    free(a);
}

/* 7.2: the server inserted middleboxes; connect again along the list it returned. */
static int client_reconnect(ep_app_t *a, msp_io_ep_t *old)
{
    msp_tlmsp_conn_t *conn;
    if (msp_tlmsp_conn_reconnect(msp_io_ep_conn(old), &a->ec, &conn) != MSP_OK) {
        return -1;
    }
    msp_io_ep_free(old);
    a->ep = NULL;
    const msp_tlmsp_address_t *hop = msp_tlmsp_conn_first_hop(conn);
    if (a->o->verbose > 0) {
        fprintf(stderr, "msp client: middleboxes discovered; connecting again to %.*s\n", (int)hop->len,
                (const char *)hop->bytes);
    }
    int fd = prog_connect_address("client", hop, a->o->port_shift);
    msp_io_ep_events_t ev = {a, on_ep_ready, on_ep_closed, on_ep_drained};
    if (fd >= 0 && msp_io_ep_new(a->loop, fd, conn, &ev, &a->ep) == MSP_OK) {
        msp_io_ep_set_timeouts(a->ep, &a->o->timeouts);
    } else {
        msp_tlmsp_conn_free(conn);
        if (fd >= 0) {
            close(fd);
        }
        a->result = 1;
        ev_break(a->loop, EVBREAK_ALL);
    }
    return 0;
}

int cmd_tlmsp_client(int argc, char **argv)
{
    prog_opts_t o;
    int rc = prog_parse("client", argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    if (prog_stream_mode(&o)) {
        return cmd_stream_client(&o);
    }
    msp_tlmsp_cfg_t *cfg;
    msp_tlmsp_setup_t *setup = NULL;
    if (prog_load("client", &o, &cfg) != 0) {
        return 2;
    }
    if (prog_setup("client", &o, cfg, NULL, &setup) != 0) {
        msp_tlmsp_cfg_free(cfg);
        return 2; /* input that cannot be read */
    }
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(0);
    ep_app_t a;
    int ret = ep_app_init(&a, "client", &o, cfg, loop, &cfg->client.to_server, 1);
    msp_tlmsp_conn_t *conn = NULL;
    msp_tlmsp_events_t events = {&a, on_ep_data, on_ep_alert};
    msp_tlmsp_setup_endpoint(setup, &events, &a.ec);
    if (ret == 0) {
        ret = msp_tlmsp_conn_new(MSP_TLMSP_ID_CLIENT, &a.ec, &conn) == MSP_OK ? 0 : -1;
    }
    /* the first hop: the first middlebox the client names, else the server */
    int fd = ret == 0 ? prog_connect_address("client", msp_tlmsp_conn_first_hop(conn), o.port_shift) : -1;
    msp_io_ep_events_t ev = {&a, on_ep_ready, on_ep_closed, on_ep_drained};
    a.result = 1;
    if (fd >= 0 && msp_io_ep_new(loop, fd, conn, &ev, &a.ep) == MSP_OK) {
        msp_io_ep_set_timeouts(a.ep, &o.timeouts);
        ev_run(loop, 0);
    } else {
        msp_tlmsp_conn_free(conn);
        if (fd >= 0) {
            close(fd);
        }
    }
    ep_app_free(&a);
    msp_tlmsp_setup_free(setup);
    msp_tlmsp_cfg_free(cfg);
    return a.result;
}

/* ---- server ---- */

typedef struct server_app {
    const prog_opts_t *o;
    struct ev_loop *loop;
    gen_t *gen; /* what new sessions start with */
    serve_t sv;
    msp_io_listener_t *l;
} server_app_t;

/* The session's log line; its memory goes once the loop is out of every call that may still use it. */
static void server_end(ep_app_t *a, const char *outcome, const char *detail)
{
    msp_tlmsp_log_record_t r;
    msp_tlmsp_log_record_init(&r);
    r.outcome = outcome;
    r.detail = detail;
    a->ss.bytes_out = a->acts.sent[0] + a->acts.sent[1];
    serve_session_end(&a->ss, &r);
    ev_once(a->loop, -1, 0, 0, free_ep_later, a);
}

static void server_closed(void *user, msp_io_ep_t *ep, int err)
{
    ep_app_t *a = user;
    char why[160] = ""; /* the driver's reason (a time-out, a reset), kept: on_ep_closed frees ep */
    if (msp_io_ep_why(ep) != NULL) {
        snprintf(why, sizeof(why), "%s", msp_io_ep_why(ep));
    }
    on_ep_closed(user, ep, err);
    const char *detail;
    char both[256];
    const char *outcome = log_outcome(err, why[0] != '\0' ? why : NULL, &detail, both, sizeof(both));
    server_end(a, outcome, detail);
}

/* The drain deadline: the session ends now. */
static void server_kill(void *owner)
{
    ep_app_t *a = owner;
    act_stop(&a->acts);
    msp_io_ep_free(a->ep);
    a->ep = NULL;
    server_end(a, "timeout", "drain deadline");
}

/* close_notify now, or once its handshake is over (on_ep_ready); the deadline ends what is left. */
static void server_drain(void *owner)
{
    ep_app_t *a = owner;
    if (a->up && a->ep != NULL) {
        msp_io_ep_alert(a->ep, 0, 1, 0);
    }
}

static int server_reload(void *user)
{
    server_app_t *s = user;
    gen_t *g = gen_load("server", s->o, 0);
    if (g == NULL) {
        return -1;
    }
    gen_unref(s->gen);
    s->gen = g;
    return 0;
}

static int server_accept(void *user, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    server_app_t *s = user;
    gen_t *g = s->gen;
    ep_app_t *a = malloc(sizeof(*a));
    msp_tlmsp_conn_t *conn = NULL;
    int ok = a != NULL && ep_app_init(a, "server", s->o, g->cfg, s->loop, &g->cfg->server.to_client, 0) == 0;
    if (ok) {
        msp_tlmsp_events_t events = {a, on_ep_data, on_ep_alert};
        msp_tlmsp_endpoint_cfg_t ec;
        msp_tlmsp_setup_endpoint(g->setup[0], &events, &ec);
        ok = msp_tlmsp_conn_new(MSP_TLMSP_ID_SERVER, &ec, &conn) == MSP_OK;
    }
    msp_io_ep_events_t ev = {a, on_ep_ready, server_closed, on_ep_drained};
    if (ok && msp_io_ep_new(s->loop, fd, conn, &ev, &a->ep) == MSP_OK) {
        msp_io_ep_set_timeouts(a->ep, &s->o->timeouts);
        a->gen = gen_ref(g);
        serve_session_begin(&s->sv, &a->ss, s->l, peer, peer_len, a);
        return 0;
    }
    prog_error("server", "cannot take a connection: out of memory");
    msp_tlmsp_conn_free(conn);
    if (a != NULL) {
        act_free(&a->acts);
        free(a);
    }
    return -1; /* the listener closes fd */
}

/* One process's server (each worker's own): 0 after a drain, 2 when it cannot listen. */
static int server_run(void *arg, unsigned worker)
{
    server_app_t *s = arg;
    s->loop = ev_default_loop(0);
    serve_hooks_t hooks = {server_drain, server_kill, server_reload, s};
    serve_init(&s->sv, "server", s->o, s->loop, worker, &hooks);
    const msp_tlmsp_cfg_t *cfg = s->gen->cfg;
    int status = 2;
    if (serve_listen(&s->sv, cfg->server.address.host, (uint16_t)(cfg->server.address.port + s->o->port_shift),
                     server_accept, s, &s->l) == 0) {
        serve_run(&s->sv);
        status = 0;
    }
    serve_free(&s->sv);
    gen_unref(s->gen);
    s->gen = NULL;
    return status;
}

int cmd_tlmsp_server(int argc, char **argv)
{
    prog_opts_t o;
    int rc = prog_parse("server", argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    if (prog_stream_mode(&o)) {
        return cmd_stream_server(&o);
    }
    server_app_t s;
    memset(&s, 0, sizeof(s));
    s.o = &o;
    s.gen = gen_load("server", &o, 0);
    if (s.gen == NULL) {
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int status = serve_workers("server", o.workers, server_run, &s);
    if (o.workers > 1) {
        gen_unref(s.gen); /* the workers had their own copies */
    }
    return status;
}

/* ---- middlebox ---- */

typedef struct mb_proc mb_proc_t;

/* One middlebox of the configuration this process serves, on its own port. */
typedef struct mb_site {
    mb_proc_t *p;
    size_t i; /* its setup in the generation */
    msp_io_listener_t *l;
} mb_site_t;

struct mb_proc {
    const prog_opts_t *o;
    struct ev_loop *loop;
    gen_t *gen; /* what new sessions start with */
    serve_t sv;
    size_t n;
    mb_site_t *sites;
    insp_site_t *insp; /* --icap, --out-pcap; NULL without */
};

typedef struct mb_app {
    mb_site_t *site;
    gen_t *gen;
    const msp_tlmsp_cfg_entity_t *e;
    msp_io_mb_t *mb;
    prog_lookup_t *lookup; /* the next hop's name lookup, while it runs */
    act_set_t to_server, to_client;
    serve_session_t ss;
    insp_t *insp;
    int next_fd;
    char next[300]; /* the next hop's HOST:PORT, for the log */
} mb_app_t;

static msp_tlmsp_verdict_t mb_container(void *user, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx, uint8_t access,
                                        const uint8_t *p, size_t len, const uint8_t **data, size_t *data_len)
{
    mb_app_t *a = user;
    if (kind != MSP_TLMSP_DATA) {
        return MSP_TLMSP_FORWARD;
    }
    *(to_server ? &a->ss.bytes_in : &a->ss.bytes_out) += len; /* what this middlebox can read */
    if (a->site->p->o->verbose > 1) {
        fprintf(stderr, "msp middlebox %s: container of %zu bytes in context %u toward the %s%s\n", a->e->tag, len, ctx,
                to_server ? "server" : "client", p == NULL ? " (opaque)" : "");
    }
    msp_tlmsp_verdict_t v;
    if (insp_container(a->insp, to_server, kind, ctx, access, p, len, &v)) {
        return v;
    }
    return act_on_data(to_server ? &a->to_server : &a->to_client, ctx, access, p, len, data, data_len);
}

/* The lookup ended (from the loop): the driver sends what waited, or refuses the session. */
static void mb_next_hop_found(void *user, int fd, const msp_error_t *err)
{
    mb_app_t *a = user;
    a->lookup = NULL;
    if (fd < 0) {
        prog_error("middlebox", "%s", err->detail);
        msp_io_mb_route_failed(a->mb, MSP_OK);
    } else if (msp_io_mb_connected(a->mb, fd) != MSP_OK) {
        close(fd);
    } else {
        a->next_fd = fd;
    }
}

/* The next hop's name is looked up without stopping the loop: every other session carries on meanwhile. */
static int mb_connect(void *user, const msp_tlmsp_address_t *next)
{
    mb_app_t *a = user;
    prog_address_text(next, a->site->p->o->port_shift, a->next, sizeof(a->next));
    int fd = prog_connect_address_async("middlebox", next, a->site->p->o->port_shift, mb_next_hop_found, a, &a->lookup);
    a->next_fd = fd;
    return fd == PROG_PENDING ? MSP_IO_MB_PENDING : fd;
}

static void mb_drain(void *owner);

static void mb_ready(void *user, msp_io_mb_t *mb)
{
    mb_app_t *a = user;
    if (a->site->p->o->verbose > 0) {
        fprintf(stderr, "msp middlebox %s: handshake complete (id 0x%02x)\n", a->e->tag,
                msp_tlmsp_mbox_id(msp_io_mb_mbox(mb)));
    }
    insp_next_hop(a->insp, a->next_fd); /* connected by now: its peer is the server's address */
    if (a->ss.sv != NULL && a->ss.sv->draining) {
        mb_drain(a);
        return;
    }
    act_start(&a->to_server);
    act_start(&a->to_client);
}

static void mb_drained(void *user, msp_io_mb_t *mb, int to_server)
{
    mb_app_t *a = user;
    (void)mb;
    (void)to_server;
    act_drained(&a->to_server);
    act_drained(&a->to_client);
}

static void free_mb_later(int revents, void *arg)
{
    mb_app_t *a = arg;
    (void)revents;
    act_free(&a->to_server);
    act_free(&a->to_client);
    insp_free(a->insp);
    gen_unref(a->gen);
    free(a);
}

static const char *access_name(uint8_t access)
{
    return access == MSP_TLMSP_ACCESS_RW ? "rw" : access == MSP_TLMSP_ACCESS_R ? "r" : "none";
}

/* The contexts of the session (the configuration's, and any other this middlebox was granted) and its access. */
static size_t mb_contexts(const mb_app_t *a, msp_tlmsp_log_context_t *out)
{
    const msp_tlmsp_mbox_t *m = msp_io_mb_mbox(a->mb);
    const msp_tlmsp_cfg_t *cfg = a->gen->cfg;
    size_t n = 0;
    for (unsigned id = 1; id < 256; id++) {
        const char *tag = NULL;
        for (size_t i = 0; i < cfg->n_contexts && tag == NULL; i++) {
            tag = cfg->contexts[i].id == id ? cfg->contexts[i].tag : NULL;
        }
        uint8_t access = msp_tlmsp_mbox_access(m, (uint8_t)id);
        if (tag != NULL || access != MSP_TLMSP_ACCESS_NONE) {
            out[n++] =
                (msp_tlmsp_log_context_t){(uint8_t)id, tag != NULL && tag[0] != '\0' ? tag : NULL, access_name(access)};
        }
    }
    return n;
}

/* The session ends: its log line (who, contexts and access, bytes, outcome), the driver freed, the rest later. */
static void mb_end(mb_app_t *a, const char *outcome, const char *detail)
{
    msp_tlmsp_log_context_t ctxs[MSP_TLMSP_LOG_MAX_CONTEXTS];
    char next[MSP_TLMSP_MAX_ADDRESS + 1];
    msp_tlmsp_log_record_t r;
    msp_tlmsp_log_record_init(&r);
    r.tag = a->e->tag;
    r.outcome = outcome;
    r.detail = detail;
    const msp_tlmsp_address_t *hop = a->mb != NULL ? msp_tlmsp_mbox_next_hop(msp_io_mb_mbox(a->mb)) : NULL;
    if (hop != NULL) { /* the ClientHello came: the contexts are known */
        snprintf(next, sizeof(next), "%.*s", (int)hop->len, (const char *)hop->bytes);
        r.next = next;
        r.n_contexts = mb_contexts(a, ctxs);
        r.contexts = ctxs;
    }
    if (a->mb != NULL && msp_io_mb_connecting(a->mb)) {
        msp_io_resolver_cancel(a->lookup); /* the session ended during the lookup: its answer must not reach mb */
        a->lookup = NULL;
    }
    act_stop(&a->to_server);
    act_stop(&a->to_client);
    a->ss.bytes_in += a->to_server.sent[1] + a->to_client.sent[1];
    a->ss.bytes_out += a->to_server.sent[0] + a->to_client.sent[0];
    serve_session_end(&a->ss, &r);
    insp_closed(a->insp);
    msp_io_mb_free(a->mb);
    a->mb = NULL;
    ev_once(a->site->p->loop, -1, 0, 0, free_mb_later, a);
}

static void mb_closed(void *user, msp_io_mb_t *mb, int err)
{
    mb_app_t *a = user;
    const char *why = msp_io_mb_why(mb);
    if (err == MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE && why != NULL) {
        prog_error("middlebox", "next hop %s: %s", a->next, why); /* the driver found it: refused, reset, ... */
    }
    if (err != MSP_OK) {
        prog_error("middlebox", "%s: connection ended: %s", a->e->tag, why_ended(err, why));
    }
    const char *detail;
    char both[256];
    const char *outcome = log_outcome(err, why, &detail, both, sizeof(both));
    mb_end(a, outcome, detail);
}

static void mb_kill(void *owner)
{
    mb_end(owner, "timeout", "drain deadline");
}

/* close_notify both ways, now or once both handshakes are over (mb_ready); the deadline ends what is left. */
static void mb_drain(void *owner)
{
    mb_app_t *a = owner;
    if (a->mb == NULL || !msp_tlmsp_mbox_ready(msp_io_mb_mbox(a->mb))) {
        return;
    }
    msp_io_mb_alert(a->mb, 1, 0, 1, 0);
    if (a->mb != NULL) { /* a failure to send ends the session at once */
        msp_io_mb_alert(a->mb, 0, 0, 1, 0);
    }
}

static int mb_reload(void *user)
{
    mb_proc_t *p = user;
    gen_t *g = gen_load("middlebox", p->o, 1);
    int same = g != NULL && g->n == p->gen->n;
    for (size_t i = 0; same && i < g->n; i++) {
        same = strcmp(gen_tag(g, p->o, i), gen_tag(p->gen, p->o, i)) == 0;
    }
    if (g != NULL && !same) {
        prog_error("middlebox", "%s: the middleboxes to serve changed; restart to listen for others", p->o->config);
    }
    if (!same) {
        gen_unref(g);
        return -1;
    }
    gen_unref(p->gen);
    p->gen = g;
    return 0;
}

static int mb_accept(void *user, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    mb_site_t *site = user;
    mb_proc_t *p = site->p;
    gen_t *g = p->gen;
    const msp_tlmsp_cfg_entity_t *e = msp_tlmsp_setup_entity(g->setup[site->i]);
    mb_app_t *a = calloc(1, sizeof(*a));
    msp_tlmsp_mbox_t *m = NULL;
    int ok = a != NULL;
    if (ok) {
        msp_tlmsp_activity_cfg_t up = {g->cfg, &e->to_server, true, true, 0, false};
        msp_tlmsp_activity_cfg_t down = {g->cfg, &e->to_client, true, false, 0, false};
        a->site = site;
        a->e = e;
        a->next_fd = -1;
        a->insp = insp_new(p->insp, e->tag, &a->mb, fd);
        ok = (p->insp == NULL || a->insp != NULL) &&
             act_init(&a->to_server, p->loop, &up, e->tag, NULL, &a->mb, p->o->presentation) == 0 &&
             act_init(&a->to_client, p->loop, &down, e->tag, NULL, &a->mb, p->o->presentation) == 0;
    }
    if (ok) {
        msp_tlmsp_mbox_cfg_t mc;
        msp_tlmsp_setup_mbox(g->setup[site->i], mb_container, a, &mc);
        ok = msp_tlmsp_mbox_new(&mc, &m) == MSP_OK;
    }
    msp_io_mb_events_t ev = {a, mb_connect, mb_ready, mb_closed};
    if (ok && msp_io_mb_new(p->loop, fd, m, &ev, &a->mb) == MSP_OK) {
        msp_io_mb_set_timeouts(a->mb, &p->o->timeouts);
        msp_io_mb_set_drained(a->mb, mb_drained);
        a->gen = gen_ref(g);
        serve_session_begin(&p->sv, &a->ss, site->l, peer, peer_len, a);
        return 0;
    }
    prog_error("middlebox", "cannot take a connection");
    msp_tlmsp_mbox_free(m);
    if (a != NULL) {
        act_free(&a->to_server);
        act_free(&a->to_client);
        insp_free(a->insp);
        free(a);
    }
    return -1; /* the listener closes fd */
}

/* One process's middleboxes (each worker's own): 0 after a drain, 2 when one cannot listen. */
static int mb_run(void *arg, unsigned worker)
{
    mb_proc_t *p = arg;
    p->loop = ev_default_loop(0);
    serve_hooks_t hooks = {mb_drain, mb_kill, mb_reload, p};
    serve_init(&p->sv, "middlebox", p->o, p->loop, worker, &hooks);
    /* before the listeners: the ICAP service answers OPTIONS before any session is taken */
    int status = insp_site_open(p->o, p->gen->cfg, p->loop, &p->insp);
    int ok = status == 0;
    status = ok ? 2 : status;
    for (size_t i = 0; ok && i < p->n; i++) {
        const msp_tlmsp_cfg_entity_t *e = msp_tlmsp_setup_entity(p->gen->setup[i]);
        if (p->o->icap != NULL && (e->to_server.n > 0 || e->to_client.n > 0)) {
            /* both would hold containers of one direction, and each releases the oldest */
            prog_error("middlebox", "--icap: middlebox %s has activities: ICAP inspection replaces them (remove them)",
                       e->tag);
            ok = 0;
            break;
        }
        p->sites[i].p = p;
        p->sites[i].i = i;
        ok = serve_listen(&p->sv, e->address.host, (uint16_t)(e->address.port + p->o->port_shift), mb_accept,
                          &p->sites[i], &p->sites[i].l) == 0;
    }
    ok = ok && prog_resolver_start("middlebox", p->loop) == 0;
    if (ok) {
        serve_run(&p->sv);
    }
    prog_resolver_stop();
    insp_site_close(p->insp); /* the capture is finished and renamed into place */
    p->insp = NULL;
    serve_free(&p->sv);
    gen_unref(p->gen);
    p->gen = NULL;
    return ok ? 0 : status;
}

int cmd_tlmsp_middlebox(int argc, char **argv)
{
    prog_opts_t o;
    int rc = prog_parse("middlebox", argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    if (o.out_pcap != NULL && o.workers > 1) {
        prog_error("middlebox",
                   "--out-pcap: one capture file cannot be written by %d worker processes; use --workers 1", o.workers);
        return 2;
    }
    mb_proc_t p;
    memset(&p, 0, sizeof(p));
    p.o = &o;
    p.gen = gen_load("middlebox", &o, 1);
    if (p.gen == NULL) {
        return 2;
    }
    p.n = p.gen->n;
    p.sites = calloc(p.n, sizeof(*p.sites));
    if (p.sites == NULL) {
        prog_error("middlebox", "out of memory");
        gen_unref(p.gen);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int status = serve_workers("middlebox", o.workers, mb_run, &p);
    free(p.sites);
    if (o.workers > 1) {
        gen_unref(p.gen); /* the workers had their own copies */
    }
    return status;
}
