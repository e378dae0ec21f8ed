/* Shared set-up of the TLMSP programs (prog.h). */
#include "prog.h"

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

#include "msp/error.h"
#include "msp/tlmsp_activity.h"
#include "msp/tlmsp_io.h"

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
          "      --handshake-timeout SEC  end a session whose handshake takes longer [30]\n"
          "      --idle-timeout SEC   close a session that moved no byte for SEC seconds [300]\n"
          "      --close-timeout SEC  end a session whose closing alert the peer does not take [5]\n"
          "      --connect-timeout SEC  give up a connection not made within SEC seconds [10]\n"
          "                           (0 turns a time-out off)\n"
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

/* --handshake-timeout (H), --idle-timeout (I), --close-timeout (C), --connect-timeout (N): 0 (off) up to a day. */
static int parse_seconds(const char *role, int flag, const char *s, msp_io_timeouts_t *t)
{
    static const char flags[] = "HICN";
    static const char *const names[] = {"handshake", "idle", "close", "connect"};
    double *slot[] = {&t->handshake, &t->idle, &t->close, &t->connect};
    size_t i = (size_t)(strchr(flags, flag) - flags);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0 && v <= 86400)) {
        prog_error(role, "--%s-timeout: not a number of seconds from 0 to 86400: '%s'", names[i], s);
        return -1;
    }
    *slot[i] = v;
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
        {"handshake-timeout", required_argument, NULL, 'H'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"close-timeout", required_argument, NULL, 'C'},
        {"connect-timeout", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    int mbox = strcmp(role, "middlebox") == 0, server = strcmp(role, "server") == 0;
    const char *shorts = mbox ? ":ac:e:hPp:t:v" : server ? ":c:e:hPp:rsv" : ":c:e:hPp:sv";
    memset(o, 0, sizeof(*o));
    msp_io_timeouts_default(&o->timeouts);
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
        case 'H':
        case 'I':
        case 'C':
        case 'N':
            if (parse_seconds(role, c, optarg, &o->timeouts) != 0) {
                return 2;
            }
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

int prog_connect(const char *role, const char *host, uint16_t port)
{
    msp_error_t err;
    msp_error_clear(&err);
    int fd;
    if (msp_io_connect(host, port, &fd, &err) != MSP_OK) {
        prog_error(role, "%s", err.detail);
    }
    return fd;
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

void prog_address_text(const msp_tlmsp_address_t *a, int port_shift, char *out, size_t size)
{
    char text[MSP_TLMSP_MAX_ADDRESS + 1], host[256];
    uint16_t port;
    snprintf(text, sizeof(text), "%.*s", (int)a->len, (const char *)a->bytes);
    if (msp_tlmsp_cfg_address_parse(text, host, sizeof(host), &port) != MSP_OK) {
        snprintf(out, size, "?");
        return;
    }
    snprintf(out, size, "%s:%u", host, (unsigned)(uint16_t)(port + port_shift));
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

/* ---- the next hop, through the library's resolver (msp/tlmsp_io.h) ---- */

static msp_io_resolver_t *resolver;

int prog_resolver_start(const char *role, struct ev_loop *loop)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_io_resolver_new(loop, NULL, &resolver, &err) != MSP_OK) {
        prog_error(role, "%s", err.detail);
        return -1;
    }
    return 0;
}

void prog_resolver_stop(void)
{
    msp_io_resolver_free(resolver);
    resolver = NULL;
}

int prog_connect_address_async(const char *role, const msp_tlmsp_address_t *a, int port_shift, prog_lookup_fn done,
                               void *user, prog_lookup_t **lookup)
{
    char host[256];
    uint16_t port;
    if (split_address(role, a, port_shift, host, sizeof(host), &port) != 0) {
        return -1;
    }
    if (resolver == NULL) {
        return prog_connect(role, host, port);
    }
    msp_error_t err;
    msp_error_clear(&err);
    int fd;
    if (msp_io_resolver_connect(resolver, host, port, done, user, &fd, lookup, &err) != MSP_OK) {
        prog_error(role, "%s", err.detail);
        return -1;
    }
    return *lookup != NULL ? PROG_PENDING : fd;
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
