/* msp client | server | middlebox: the reference's three programs, with its flags and configuration files. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "activity.h"
#include "msp/error.h"
#include "msp/tlmsp_io.h"
#include "prog.h"

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
} ep_app_t;

static void on_ep_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    ep_app_t *a = user;
    const uint8_t *d;
    size_t n;
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
    (void)ep;
    if (a->o->verbose > 0) {
        const msp_tlmsp_mbox_list_t *l = msp_tlmsp_conn_middleboxes(msp_io_ep_conn(ep));
        fprintf(stderr, "msp %s: handshake complete, %zu middlebox(es)\n", a->role, l->n);
    }
    act_start(&a->acts);
}

static int client_reconnect(ep_app_t *a, msp_io_ep_t *old);

/* A full output queue drained: the activities that waited for room go on. */
static void on_ep_drained(void *user, msp_io_ep_t *ep)
{
    ep_app_t *a = user;
    (void)ep;
    act_resume(&a->acts);
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
    const msp_tlmsp_cfg_t *cfg;
    struct ev_loop *loop;
    msp_tlmsp_setup_t *setup; /* identity, trust and the middlebox list it accepts */
    ev_io accept_w;
} server_app_t;

static void server_closed(void *user, msp_io_ep_t *ep, int err)
{
    ep_app_t *a = user;
    on_ep_closed(user, ep, err);
    ev_once(a->loop, -1, 0, 0, free_ep_later, a);
}

static void server_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    server_app_t *s = w->data;
    (void)revents;
    int fd = accept(w->fd, NULL, NULL);
    if (fd < 0) {
        return;
    }
    ep_app_t *a = malloc(sizeof(*a));
    msp_tlmsp_conn_t *conn = NULL;
    int ok = a != NULL && ep_app_init(a, "server", s->o, s->cfg, loop, &s->cfg->server.to_client, 0) == 0;
    if (ok) {
        msp_tlmsp_events_t events = {a, on_ep_data, on_ep_alert};
        msp_tlmsp_endpoint_cfg_t ec;
        msp_tlmsp_setup_endpoint(s->setup, &events, &ec);
        ok = msp_tlmsp_conn_new(MSP_TLMSP_ID_SERVER, &ec, &conn) == MSP_OK;
    }
    msp_io_ep_events_t ev = {a, on_ep_ready, server_closed, on_ep_drained};
    if (ok && msp_io_ep_new(loop, fd, conn, &ev, &a->ep) == MSP_OK) {
        msp_io_ep_set_timeouts(a->ep, &s->o->timeouts);
        return;
    }
    prog_error("server", "cannot take a connection: out of memory");
    msp_tlmsp_conn_free(conn);
    close(fd);
    if (a != NULL) {
        act_free(&a->acts);
        free(a);
    }
}

int cmd_tlmsp_server(int argc, char **argv)
{
    prog_opts_t o;
    int rc = prog_parse("server", argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    server_app_t s;
    memset(&s, 0, sizeof(s));
    if (prog_load("server", &o, (msp_tlmsp_cfg_t **)&s.cfg) != 0) {
        return 2;
    }
    int status = 2;
    if (prog_setup("server", &o, s.cfg, NULL, &s.setup) == 0 &&
        prog_check_activities("server", s.cfg, &s.cfg->server) == 0) {
        signal(SIGPIPE, SIG_IGN);
        s.o = &o;
        s.loop = ev_default_loop(0);
        int fd =
            prog_listen("server", s.cfg->server.address.host, (uint16_t)(s.cfg->server.address.port + o.port_shift));
        if (fd >= 0) {
            ev_io_init(&s.accept_w, server_accept, fd, EV_READ);
            s.accept_w.data = &s;
            ev_io_start(s.loop, &s.accept_w);
            ev_run(s.loop, 0);
            close(fd);
            status = 0;
        }
    }
    msp_tlmsp_setup_free(s.setup);
    msp_tlmsp_cfg_free((msp_tlmsp_cfg_t *)s.cfg);
    return status;
}

/* ---- middlebox ---- */

typedef struct mb_site {
    const prog_opts_t *o;
    const msp_tlmsp_cfg_t *cfg;
    const msp_tlmsp_cfg_entity_t *e;
    struct ev_loop *loop;
    msp_tlmsp_setup_t *setup; /* identity and trust */
    ev_io accept_w;
} mb_site_t;

typedef struct mb_app {
    mb_site_t *site;
    msp_io_mb_t *mb;
    prog_lookup_t *lookup; /* the next hop's name lookup, while it runs */
    act_set_t to_server, to_client;
    char next[300]; /* the next hop's HOST:PORT, for the log */
} mb_app_t;

static msp_tlmsp_verdict_t mb_container(void *user, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx, uint8_t access,
                                        const uint8_t *p, size_t len, const uint8_t **data, size_t *data_len)
{
    mb_app_t *a = user;
    if (kind != MSP_TLMSP_DATA) {
        return MSP_TLMSP_FORWARD;
    }
    if (a->site->o->verbose > 1) {
        fprintf(stderr, "msp middlebox %s: container of %zu bytes in context %u toward the %s%s\n", a->site->e->tag,
                len, ctx, to_server ? "server" : "client", p == NULL ? " (opaque)" : "");
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
    }
}

/* The next hop's name is looked up without stopping the loop: every other session carries on meanwhile. */
static int mb_connect(void *user, const msp_tlmsp_address_t *next)
{
    mb_app_t *a = user;
    prog_address_text(next, a->site->o->port_shift, a->next, sizeof(a->next));
    int fd = prog_connect_address_async("middlebox", next, a->site->o->port_shift, mb_next_hop_found, a, &a->lookup);
    return fd == PROG_PENDING ? MSP_IO_MB_PENDING : fd;
}

static void mb_ready(void *user, msp_io_mb_t *mb)
{
    mb_app_t *a = user;
    if (a->site->o->verbose > 0) {
        fprintf(stderr, "msp middlebox %s: handshake complete (id 0x%02x)\n", a->site->e->tag,
                msp_tlmsp_mbox_id(msp_io_mb_mbox(mb)));
    }
    act_start(&a->to_server);
    act_start(&a->to_client);
}

static void mb_drained(void *user, msp_io_mb_t *mb, int to_server)
{
    mb_app_t *a = user;
    (void)mb;
    (void)to_server;
    act_resume(&a->to_server);
    act_resume(&a->to_client);
}

static void free_mb_later(int revents, void *arg)
{
    mb_app_t *a = arg;
    (void)revents;
    act_free(&a->to_server);
    act_free(&a->to_client);
    free(a);
}

static void mb_closed(void *user, msp_io_mb_t *mb, int err)
{
    mb_app_t *a = user;
    const char *why = msp_io_mb_why(mb);
    if (err == MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE && why != NULL) {
        prog_error("middlebox", "next hop %s: %s", a->next, why); /* the driver found it: refused, reset, ... */
    }
    if (err != MSP_OK) {
        prog_error("middlebox", "%s: connection ended: %s", a->site->e->tag, why_ended(err, why));
    }
    if (msp_io_mb_connecting(mb)) {
        msp_io_resolver_cancel(a->lookup); /* the session ended during the lookup: its answer must not reach mb */
        a->lookup = NULL;
    }
    a->mb = NULL;
    act_stop(&a->to_server);
    act_stop(&a->to_client);
    msp_io_mb_free(mb);
    ev_once(a->site->loop, -1, 0, 0, free_mb_later, a);
}

static void mb_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    mb_site_t *site = w->data;
    (void)revents;
    int fd = accept(w->fd, NULL, NULL);
    if (fd < 0) {
        return;
    }
    mb_app_t *a = calloc(1, sizeof(*a));
    msp_tlmsp_mbox_t *m = NULL;
    int ok = a != NULL;
    if (ok) {
        msp_tlmsp_activity_cfg_t up = {site->cfg, &site->e->to_server, true, true, 0, false};
        msp_tlmsp_activity_cfg_t down = {site->cfg, &site->e->to_client, true, false, 0, false};
        a->site = site;
        ok = act_init(&a->to_server, loop, &up, site->e->tag, NULL, &a->mb, site->o->presentation) == 0 &&
             act_init(&a->to_client, loop, &down, site->e->tag, NULL, &a->mb, site->o->presentation) == 0;
    }
    if (ok) {
        msp_tlmsp_mbox_cfg_t mc;
        msp_tlmsp_setup_mbox(site->setup, mb_container, a, &mc);
        ok = msp_tlmsp_mbox_new(&mc, &m) == MSP_OK;
    }
    msp_io_mb_events_t ev = {a, mb_connect, mb_ready, mb_closed};
    if (ok && msp_io_mb_new(loop, fd, m, &ev, &a->mb) == MSP_OK) {
        msp_io_mb_set_timeouts(a->mb, &site->o->timeouts);
        msp_io_mb_set_drained(a->mb, mb_drained);
        return;
    }
    prog_error("middlebox", "cannot take a connection");
    msp_tlmsp_mbox_free(m);
    close(fd);
    if (a != NULL) {
        act_free(&a->to_server);
        act_free(&a->to_client);
        free(a);
    }
}

static int mb_site_open(mb_site_t *site, const char *tag)
{
    if (prog_setup("middlebox", site->o, site->cfg, tag, &site->setup) != 0) {
        return -1;
    }
    site->e = msp_tlmsp_setup_entity(site->setup);
    if (prog_check_activities("middlebox", site->cfg, site->e) != 0) {
        return -1;
    }
    int fd = prog_listen("middlebox", site->e->address.host, (uint16_t)(site->e->address.port + site->o->port_shift));
    if (fd < 0) {
        return -1;
    }
    ev_io_init(&site->accept_w, mb_accept, fd, EV_READ);
    site->accept_w.data = site;
    ev_io_start(site->loop, &site->accept_w);
    return 0;
}

int cmd_tlmsp_middlebox(int argc, char **argv)
{
    prog_opts_t o;
    int rc = prog_parse("middlebox", argc, argv, &o);
    if (rc != 0) {
        return rc == 1 ? 0 : 2;
    }
    msp_tlmsp_cfg_t *cfg;
    if (prog_load("middlebox", &o, &cfg) != 0) {
        return 2;
    }
    size_t n = o.all ? cfg->n_middleboxes : o.ntags;
    mb_site_t *sites = calloc(n + 1, sizeof(*sites));
    struct ev_loop *loop = ev_default_loop(0);
    int ok = sites != NULL && n > 0;
    if (n == 0) {
        prog_error("middlebox", "%s: the configuration has no middlebox", cfg->name);
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; ok && i < n; i++) {
        sites[i].o = &o;
        sites[i].cfg = cfg;
        sites[i].loop = loop;
        ok = mb_site_open(&sites[i], o.all ? cfg->middleboxes[i].tag : o.tags[i]) == 0;
    }
    if (ok) {
        ok = prog_resolver_start("middlebox", loop) == 0;
    }
    if (ok) {
        ev_run(loop, 0);
    }
    prog_resolver_stop();
    for (size_t i = 0; sites != NULL && i < n; i++) {
        msp_tlmsp_setup_free(sites[i].setup);
    }
    free(sites);
    msp_tlmsp_cfg_free(cfg);
    return ok ? 0 : 2;
}
