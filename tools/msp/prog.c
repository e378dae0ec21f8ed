/* Shared set-up of the TLMSP programs (prog.h). */
#include "prog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ares.h>
#include <ev.h>

#include "msp/error.h"
#include "msp/tlmsp_activity.h"

FILE *prog_err;

void prog_error(const char *role, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    FILE *f = prog_err != NULL ? prog_err : stderr;
    fprintf(f, "msp %s: ", role);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
    va_end(ap);
}

static void usage(const char *role, FILE *f)
{
    int mbox = strcmp(role, "middlebox") == 0, server = strcmp(role, "server") == 0;
    fprintf(f, "usage: msp %s [options] (-c FILE | --config FILE)%s\n\n", role, mbox ? " [-a | (-t TAG)...]" : "");
    fprintf(f,
            "The ETSI TLMSP %s, configured by the reference's .ucl files (tlmsp-tools); its flags are\n"
            "the reference program's.\n\noptions:\n",
            role);
    if (mbox) {
        fputs("  -a                       use every middlebox of the configuration\n", f);
    }
    fputs("  -c, --config FILE        TLMSP configuration file (.ucl)\n"
          "  -e, --errors FILE        send error messages to FILE (- means stdout) [stderr]\n"
          "  -h, --help               print this message\n"
          "  -P, --presentation       present every activity (data matched and sent)\n"
          "  -p, --port-shift DELTA   add DELTA to every port number of the configuration [0]\n",
          f);
    if (server) {
        fputs("  -r, --reflect            send everything received back to the client\n", f);
    }
    if (!mbox) {
        fputs("  -s, --stream-api         accepted for compatibility: msp has one API for both\n", f);
    }
    if (mbox) {
        fputs("  -t, --tag TAG            the middlebox of the configuration to run (repeatable)\n", f);
    }
    fputs("  -v, --verbose            one more level of detail on stderr (repeatable)\n"
          "      --pki DIR            where certificate and key files are found [the config file's folder];\n"
          "                           keys are also looked up in DIR/private\n"
          "      --trust FILE         verify every peer's certificate against these PEM certificates\n"
          "                           (the reference verifies nothing)\n",
          f);
    if (!mbox && !server) {
        fputs("\nThe client exits when its connection ends: 0 after a clean close, 1 after an alert or error.\n", f);
    }
}

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < -65535 || v > 65535) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int open_errors(const char *role, const char *path)
{
    if (strcmp(path, "-") == 0) {
        prog_err = stdout;
        return 0;
    }
    prog_err = fopen(path, "a");
    if (prog_err == NULL) {
        prog_err = stderr;
        prog_error(role, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int prog_parse(const char *role, int argc, char **argv, prog_opts_t *o)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"errors", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {"presentation", no_argument, NULL, 'P'},
        {"port-shift", required_argument, NULL, 'p'},
        {"reflect", no_argument, NULL, 'r'},
        {"stream-api", no_argument, NULL, 's'},
        {"tag", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"pki", required_argument, NULL, 'K'},
        {"trust", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    int mbox = strcmp(role, "middlebox") == 0, server = strcmp(role, "server") == 0;
    const char *shorts = mbox ? ":ac:e:hPp:t:v" : server ? ":c:e:hPp:rsv" : ":c:e:hPp:sv";
    memset(o, 0, sizeof(*o));
    prog_err = stderr;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        switch (c) {
        case 'a':
            o->all = 1;
            break;
        case 'c':
            o->config = optarg;
            break;
        case 'e':
            if (open_errors(role, optarg) != 0) {
                return 2;
            }
            break;
        case 'h':
            usage(role, stdout);
            return 1;
        case 'P':
            o->presentation = 1;
            break;
        case 'p':
            if (parse_int(optarg, &o->port_shift) != 0) {
                prog_error(role, "-p: not a port shift: '%s'", optarg);
                return 2;
            }
            break;
        case 'r':
            o->reflect = 1;
            break;
        case 's':
            break;
        case 't':
            if (o->ntags == PROG_MAX_TAGS) {
                prog_error(role, "-t: more than %d tags", PROG_MAX_TAGS);
                return 2;
            }
            o->tags[o->ntags++] = optarg;
            break;
        case 'v':
            o->verbose++;
            break;
        case 'K':
            o->pki = optarg;
            break;
        case 'T':
            o->trust = optarg;
            break;
        case ':':
            prog_error(role, "option -%c needs a value (see 'msp %s --help')", optopt, role);
            return 2;
        default:
            prog_error(role, "unknown option '%s' (see 'msp %s --help')", argv[optind - 1], role);
            return 2;
        }
    }
    if (optind < argc) {
        prog_error(role, "unexpected argument '%s' (see 'msp %s --help')", argv[optind], role);
        return 2;
    }
    if (o->config == NULL) {
        prog_error(role, "no configuration: give -c FILE (see 'msp %s --help')", role);
        return 2;
    }
    if (mbox && o->all == (o->ntags > 0)) {
        prog_error(role, "give either -a or one or more -t TAG");
        return 2;
    }
    return 0;
}

int prog_load(const char *role, const prog_opts_t *o, msp_tlmsp_cfg_t **cfg)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_tlmsp_cfg_load_file(o->config, cfg, &err) != MSP_OK) {
        prog_error(role, "%s: %s", err.where[0] != '\0' ? err.where : o->config,
                   err.detail[0] != '\0' ? err.detail : msp_error_name(err.code));
        return -1;
    }
    return 0;
}

int prog_setup(const char *role, const prog_opts_t *o, const msp_tlmsp_cfg_t *cfg, const char *tag,
               msp_tlmsp_setup_t **out)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(o->config, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - o->config) : 1, slash != NULL ? o->config : ".");
    msp_tlmsp_setup_cfg_t sc = {cfg, MSP_TLMSP_CFG_CLIENT, tag, o->pki != NULL ? o->pki : dir, o->trust, NULL, NULL};
    sc.role = strcmp(role, "client") == 0   ? MSP_TLMSP_CFG_CLIENT
              : strcmp(role, "server") == 0 ? MSP_TLMSP_CFG_SERVER
                                            : MSP_TLMSP_CFG_MIDDLEBOX;
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_tlmsp_setup_new(&sc, out, &err) != MSP_OK) {
        prog_error(role, "%s%s%s", err.where, err.where[0] != '\0' ? ": " : "", err.detail);
        return -1;
    }
    return 0;
}

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static struct addrinfo *resolve(const char *role, const char *host, uint16_t port, int flags)
{
    struct addrinfo hints, *res = NULL;
    char svc[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags;
    snprintf(svc, sizeof(svc), "%u", port);
    int rc = getaddrinfo(host, svc, &hints, &res);
    if (rc != 0) {
        prog_error(role, "%s:%u: %s", host, port, gai_strerror(rc));
        return NULL;
    }
    return res;
}

int prog_listen(const char *role, const char *host, uint16_t port)
{
    struct addrinfo *res = resolve(role, host, port, AI_PASSIVE);
    int fd = -1, one = 1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, 0);
        if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
                        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0 || nonblocking(fd) != 0)) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0 && res != NULL) {
        prog_error(role, "cannot listen on %s:%u: %s", host, port, strerror(errno));
    }
    freeaddrinfo(res);
    return fd;
}

/* A non-blocking connection under way to one address: the fd, or -1 with errno set. */
static int connect_to(int family, const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM, 0), one = 1;
    if (fd >= 0 && (nonblocking(fd) != 0 || (connect(fd, addr, len) != 0 && errno != EINPROGRESS))) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static int connect_resolved(const char *role, const char *host, uint16_t port, int flags)
{
    struct addrinfo *res = resolve(role, host, port, flags);
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = connect_to(ai->ai_family, ai->ai_addr, ai->ai_addrlen);
    }
    if (fd < 0 && res != NULL) {
        prog_error(role, "cannot connect to %s:%u: %s", host, port, strerror(errno));
    }
    freeaddrinfo(res);
    return fd;
}

int prog_connect(const char *role, const char *host, uint16_t port)
{
    return connect_resolved(role, host, port, 0);
}

/* The host and port of an address from the wire, the port shifted. 0, or -1 printed. */
static int split_address(const char *role, const msp_tlmsp_address_t *a, int port_shift, char *host, size_t size,
                         uint16_t *port)
{
    char text[MSP_TLMSP_MAX_ADDRESS + 1];
    snprintf(text, sizeof(text), "%.*s", (int)a->len, (const char *)a->bytes);
    if (msp_tlmsp_cfg_address_parse(text, host, size, port) != MSP_OK) {
        prog_error(role, "next hop '%s': not an address we can connect to", text);
        return -1;
    }
    *port = (uint16_t)(*port + port_shift);
    return 0;
}

int prog_connect_address(const char *role, const msp_tlmsp_address_t *a, int port_shift)
{
    char host[256];
    uint16_t port;
    if (split_address(role, a, port_shift, host, sizeof(host), &port) != 0) {
        return -1;
    }
    return prog_connect(role, host, port);
}

/* ---- the next-hop resolver (c-ares on libev) ---- */

typedef struct res_sock {
    ev_io w;
    struct res_sock *next;
} res_sock_t;

static struct {
    const char *role;
    struct ev_loop *loop;
    ares_channel ch;
    int up;
    ev_timer tick;     /* c-ares's own retries and time-outs (ares_timeout) */
    res_sock_t *socks; /* one watcher per socket c-ares uses */
    size_t inflight;   /* lookups c-ares holds, cancelled ones too until it lets them go */
} resolver;

struct prog_lookup {
    const char *role;
    prog_lookup_fn done; /* NULL once cancelled or timed out: the answer is then dropped */
    void *user;
    ev_timer timeout;
    int starting, finished, fd; /* an answer given inside ares_getaddrinfo itself (the hosts file) */
    char host[256];
    uint16_t port;
};

static void resolver_tick_again(void)
{
    struct timeval tv, *t = ares_timeout(resolver.ch, NULL, &tv);
    ev_timer_stop(resolver.loop, &resolver.tick);
    if (t != NULL) {
        ev_timer_set(&resolver.tick, (double)t->tv_sec + (double)t->tv_usec / 1e6, 0.);
        ev_timer_start(resolver.loop, &resolver.tick);
    }
}

static void on_resolver_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    int fd = w->fd; /* w may be freed by on_sock_state inside ares_process_fd */
    ares_process_fd(resolver.ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    resolver_tick_again();
}

static void on_resolver_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    ares_process_fd(resolver.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    resolver_tick_again();
}

/* ARES_OPT_SOCK_STATE_CB: c-ares opened, changed or closed one of its sockets. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    (void)data;
    res_sock_t **p = &resolver.socks;
    while (*p != NULL && (*p)->w.fd != fd) {
        p = &(*p)->next;
    }
    res_sock_t *s = *p;
    if (s != NULL) {
        ev_io_stop(resolver.loop, &s->w);
    }
    if (!readable && !writable) {
        if (s != NULL) {
            *p = s->next;
            free(s);
        }
        return;
    }
    if (s == NULL && (s = calloc(1, sizeof(*s))) == NULL) {
        return; /* without a watcher the lookup ends by its time-out */
    }
    if (*p == NULL) {
        s->next = resolver.socks;
        resolver.socks = s;
    }
    ev_io_init(&s->w, on_resolver_io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    ev_io_start(resolver.loop, &s->w);
}

int prog_resolver_start(const char *role, struct ev_loop *loop)
{
    struct ares_options opts;
    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = on_sock_state;
    opts.timeout = 1500; /* ms; with 2 tries c-ares gives up after 4.5 s per server, within PROG_LOOKUP_TIMEOUT */
    opts.tries = 2;
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc == ARES_SUCCESS) {
        rc = ares_init_options(&resolver.ch, &opts, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
        if (rc != ARES_SUCCESS) {
            ares_library_cleanup();
        }
    }
    if (rc != ARES_SUCCESS) {
        prog_error(role, "cannot start the name resolver: %s", ares_strerror(rc));
        return -1;
    }
    resolver.role = role;
    resolver.loop = loop;
    resolver.up = 1;
    ev_timer_init(&resolver.tick, on_resolver_tick, 0., 0.);
    return 0;
}

void prog_resolver_stop(void)
{
    if (!resolver.up) {
        return;
    }
    ev_timer_stop(resolver.loop, &resolver.tick);
    ares_destroy(resolver.ch); /* every lookup ends with ARES_EDESTRUCTION: none is answered */
    while (resolver.socks != NULL) {
        res_sock_t *s = resolver.socks;
        resolver.socks = s->next;
        ev_io_stop(resolver.loop, &s->w);
        free(s);
    }
    ares_library_cleanup();
    resolver.up = 0;
}

static int connect_nodes(prog_lookup_t *l, const struct ares_addrinfo *res)
{
    int fd = -1;
    for (const struct ares_addrinfo_node *n = res != NULL ? res->nodes : NULL; n != NULL && fd < 0; n = n->ai_next) {
        fd = connect_to(n->ai_family, n->ai_addr, n->ai_addrlen);
    }
    if (fd < 0) {
        prog_error(l->role, "cannot connect to %s:%u: %s", l->host, l->port,
                   res != NULL && res->nodes != NULL ? strerror(errno) : "no address");
    }
    return fd;
}

static void on_lookup(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    prog_lookup_t *l = arg;
    (void)timeouts;
    resolver.inflight--;
    int fd = -1;
    if (status == ARES_EDESTRUCTION) {
        l->done = NULL; /* the program is ending */
    } else if (l->done != NULL && status != ARES_SUCCESS) {
        prog_error(l->role, "next hop %s:%u: cannot resolve the name: %s", l->host, l->port, ares_strerror(status));
    } else if (l->done != NULL) {
        fd = connect_nodes(l, res);
    }
    if (res != NULL) {
        ares_freeaddrinfo(res);
    }
    if (l->starting) {
        l->finished = 1;
        l->fd = fd;
        return;
    }
    prog_lookup_fn done = l->done;
    void *user = l->user;
    ev_timer_stop(resolver.loop, &l->timeout);
    free(l);
    if (done != NULL) {
        done(user, fd);
    }
}

static void on_lookup_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    prog_lookup_t *l = w->data;
    (void)loop;
    (void)revents;
    prog_lookup_fn done = l->done;
    l->done = NULL; /* c-ares's late answer is dropped; l goes with it */
    prog_error(l->role, "next hop %s:%u: no answer from the name servers within %g s", l->host, l->port,
               PROG_LOOKUP_TIMEOUT);
    done(l->user, -1);
}

static int is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int hosts_know(const char *host)
{
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < 2; i++) {
        struct hostent *he = NULL;
        if (ares_gethostbyname_file(resolver.ch, host, families[i], &he) == ARES_SUCCESS) {
            ares_free_hostent(he);
            return 1;
        }
    }
    return 0;
}

static int refuse_full(const char *role, const char *host, uint16_t port)
{
    prog_error(role, "next hop %s:%u: %d name lookups in flight already; session refused", host, port,
               PROG_LOOKUPS_MAX);
    return -1;
}

int prog_connect_address_async(const char *role, const msp_tlmsp_address_t *a, int port_shift, prog_lookup_fn done,
                               void *user, prog_lookup_t **lookup)
{
    char host[256];
    uint16_t port;
    if (split_address(role, a, port_shift, host, sizeof(host), &port) != 0) {
        return -1;
    }
    if (is_ip_literal(host) || !resolver.up) {
        return connect_resolved(role, host, port, is_ip_literal(host) ? AI_NUMERICHOST : 0);
    }
    /* over the limit, only a name the hosts file answers at once goes on */
    int full = resolver.inflight >= PROG_LOOKUPS_MAX;
    if (full && !hosts_know(host)) {
        return refuse_full(role, host, port);
    }
    prog_lookup_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        prog_error(role, "next hop %s:%u: out of memory", host, port);
        return -1;
    }
    l->role = role;
    l->done = done;
    l->user = user;
    snprintf(l->host, sizeof(l->host), "%s", host);
    l->port = port;
    char svc[8];
    snprintf(svc, sizeof(svc), "%u", port);
    struct ares_addrinfo_hints hints = {ARES_AI_NUMERICSERV, AF_UNSPEC, SOCK_STREAM, 0};
    ev_timer_init(&l->timeout, on_lookup_timeout, PROG_LOOKUP_TIMEOUT, 0.);
    l->timeout.data = l;
    resolver.inflight++;
    l->starting = 1;
    ares_getaddrinfo(resolver.ch, host, svc, &hints, on_lookup, l);
    l->starting = 0;
    if (l->finished) {
        int fd = l->fd;
        free(l);
        return fd;
    }
    resolver_tick_again();
    if (full) {
        l->done = NULL; /* the hosts file did not answer after all: c-ares lets l go with its answer */
        return refuse_full(role, host, port);
    }
    ev_timer_start(resolver.loop, &l->timeout);
    *lookup = l;
    return PROG_PENDING;
}

void prog_lookup_cancel(prog_lookup_t *l)
{
    if (l == NULL) {
        return;
    }
    l->done = NULL;
    ev_timer_stop(resolver.loop, &l->timeout);
}

int prog_check_activities(const char *role, const msp_tlmsp_cfg_t *cfg, const msp_tlmsp_cfg_entity_t *e)
{
    const msp_tlmsp_cfg_fnlist_t *lists[] = {&e->to_server, &e->to_client};
    for (size_t i = 0; i < 2; i++) {
        msp_tlmsp_activity_cfg_t ac = {cfg, lists[i], e->role == MSP_TLMSP_CFG_MIDDLEBOX, i == 0, 0, false};
        msp_tlmsp_activity_t *a = NULL;
        msp_error_t err;
        msp_error_clear(&err);
        if (msp_tlmsp_activity_new(&ac, &a, &err) != MSP_OK) {
            prog_error(role, "%s: %s", err.where[0] != '\0' ? err.where : cfg->name, err.detail);
            return -1;
        }
        msp_tlmsp_activity_free(a);
    }
    return 0;
}
