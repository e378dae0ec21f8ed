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
#include "msp/io_listener.h"
#include "msp/tlmsp_activity.h"
#include "msp/tlmsp_io.h"
#include "msp/tlmsp_log.h"

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
    int mbox = strcmp(role, "middlebox") == 0, server = strcmp(role, "server") == 0, client = !mbox && !server;
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
    {
        if (client) {
            fputs("  with --accept (a listening client):\n", f);
        }
        fprintf(f,
                "      --backlog N          the listen(2) backlog [%d; the kernel caps it at net.core.somaxconn]\n"
                "      --drain-timeout SEC  after SIGTERM or SIGINT, how long open sessions get to close [%g]\n"
                "      --log-format FMT     session log lines (stderr or -e FILE): text or json [text]\n"
                "      --max-per-source N   open sessions per client address; more are closed at once\n"
                "                           [--max-sessions: a gateway or a NAT puts a whole site on one address]\n"
                "      --max-sessions N     open sessions in all; more are closed at once [%d]\n"
                "      --workers N          N processes, each accepting on its own SO_REUSEPORT socket [1]\n",
                MSP_IO_LISTENER_BACKLOG, PROG_DRAIN_TIMEOUT, MSP_IO_LISTENER_MAX_SESSIONS);
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
    if (mbox) {
        fputs("      --icap icap://HOST[:PORT]/SERVICE\n"
              "                           hold the plaintext of every context this middlebox may read until an ICAP\n"
              "                           service (RFC 3507) passes it: REQMOD toward the server, RESPMOD toward the\n"
              "                           client; a block ends the session (read-only context) or replaces the data\n"
              "                           (writable context); an unreachable service fails closed\n"
              "      --out-pcap FILE      write the plaintext of the contexts this middlebox may read as one TCP\n"
              "                           flow per session (client and server addresses) into FILE when it stops\n"
              "                           (SIGINT or SIGTERM)\n",
              f);
    }
    if (!mbox) {
        fputs("\nstream mode (each plain connection in its own TLMSP session; see msp(1)):\n", f);
        if (server) {
            fputs("      --forward ADDR:PORT  send each session's data to a new TCP connection to ADDR:PORT\n", f);
        } else {
            fputs("      --accept ADDR:PORT   listen on ADDR:PORT; carry each accepted connection to the server\n"
                  "      --stdio              carry stdin and stdout in one session\n",
                  f);
        }
        fputs("      --context TAG        the context the bytes travel in [the configuration's first]\n"
              "      --contexts http      HTTP/1.x: headers in the context tagged header, bodies in body\n"
              "      --insecure           verify no certificate (stream mode needs --trust FILE or this)\n",
              f);
    }
    {
        fputs(client ? "\nWith --accept: one" : "\nOne", f);
        fputs(" log line per session (peers, bytes each way, duration, outcome). SIGTERM and SIGINT drain:\n"
              "no new sessions, close_notify on the open ones, exit 0 once they end or at the drain timeout\n"
              "(a second signal closes them at once).\n"
              "SIGHUP reloads the configuration, certificates and keys for new sessions (a failed reload\n"
              "is logged and the old ones kept).\n",
              f);
    }
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

/* A count in 1..max for --FLAG. 0, or -1 printed. */
static int parse_count(const char *role, const char *flag, const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > max) {
        prog_error(role, "--%s: not a number from 1 to %ld: '%s'", flag, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_seconds(const char *role, const char *flag, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0 && v <= 86400)) {
        prog_error(role, "--%s: not a number of seconds from 0 to 86400: '%s'", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

enum { OPT_BACKLOG = 1000, OPT_DRAIN, OPT_LOG_FORMAT, OPT_PER_SOURCE, OPT_MAX_SESSIONS, OPT_WORKERS };
enum { OPT_HANDSHAKE_TIMEOUT = 1100, OPT_IDLE_TIMEOUT, OPT_CLOSE_TIMEOUT, OPT_CONNECT_TIMEOUT };

/* --handshake-timeout, --idle-timeout, --close-timeout, --connect-timeout: 0 (off) up to a day. */
static int parse_timeout(const char *role, int c, const char *s, msp_io_timeouts_t *t)
{
    static const char *const names[] = {"handshake-timeout", "idle-timeout", "close-timeout", "connect-timeout"};
    double *slot[] = {&t->handshake, &t->idle, &t->close, &t->connect};
    return parse_seconds(role, names[c - OPT_HANDSHAKE_TIMEOUT], s, slot[c - OPT_HANDSHAKE_TIMEOUT]);
}

/* The operator's flags of a server or middlebox: 0, or -1 printed. */
static int parse_ops(const char *role, int c, const char *arg, prog_opts_t *o)
{
    static const char *const names[] = {"backlog",        "drain-timeout", "log-format",
                                        "max-per-source", "max-sessions",  "workers"};
    const char *name = names[c - OPT_BACKLOG];
    long v = 0;
    msp_tlmsp_log_format_t fmt;
    if (c == OPT_DRAIN) {
        return parse_seconds(role, name, arg, &o->drain_timeout);
    }
    if (c == OPT_LOG_FORMAT) {
        if (msp_tlmsp_log_format_parse(arg, &fmt) != MSP_OK) {
            prog_error(role, "--log-format: '%s': give text or json", arg);
            return -1;
        }
        o->log_json = fmt == MSP_TLMSP_LOG_JSON;
        return 0;
    }
    if (parse_count(role, name, arg, c == OPT_WORKERS ? PROG_MAX_WORKERS : (long)MSP_IO_LISTENER_LIMIT_MAX, &v) != 0) {
        return -1;
    }
    if (c == OPT_BACKLOG) {
        o->backlog = (int)v;
    } else if (c == OPT_PER_SOURCE) {
        o->max_per_source = (size_t)v;
    } else if (c == OPT_MAX_SESSIONS) {
        o->max_sessions = (size_t)v;
    } else {
        o->workers = (int)v;
    }
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

int prog_stream_mode(const prog_opts_t *o)
{
    return o->accept != NULL || o->forward != NULL || o->stdio;
}

/* A stream-mode option: only for the roles that have it (the middlebox has none). */
static int stream_option(const char *role, int c, prog_opts_t *o)
{
    int server = strcmp(role, "server") == 0, client = strcmp(role, "client") == 0;
    const char *name = c == 'A'   ? "--accept"
                       : c == 'F' ? "--forward"
                       : c == 'S' ? "--stdio"
                       : c == 'C' ? "--context"
                       : c == 'H' ? "--contexts"
                                  : "--insecure";
    if ((!client && !server) || (server && (c == 'A' || c == 'S')) || (client && c == 'F')) {
        prog_error(role, "unknown option '%s' (see 'msp %s --help')", name, role);
        return -1;
    }
    switch (c) {
    case 'A':
        o->accept = optarg;
        break;
    case 'F':
        o->forward = optarg;
        break;
    case 'S':
        o->stdio = 1;
        break;
    case 'C':
        o->context = optarg;
        break;
    case 'H':
        if (strcmp(optarg, "http") != 0) {
            prog_error(role, "--contexts: '%s' is not a framing msp knows (http)", optarg);
            return -1;
        }
        o->contexts = optarg;
        break;
    default:
        o->insecure = 1;
        break;
    }
    return 0;
}

/* Stream mode's rules: one way in, one framing, and certificates verified unless the user says otherwise. */
static int stream_check(const char *role, const prog_opts_t *o)
{
    if (!prog_stream_mode(o)) {
        if (o->context != NULL || o->contexts != NULL || o->insecure) {
            prog_error(role, "%s is for stream mode (--%s)",
                       o->context != NULL    ? "--context"
                       : o->contexts != NULL ? "--contexts"
                                             : "--insecure",
                       strcmp(role, "server") == 0 ? "forward" : "accept or --stdio");
            return 2;
        }
        return 0;
    }
    if (o->presentation || o->reflect) {
        prog_error(role, "%s is for script mode: stream mode runs no activities", o->reflect ? "-r" : "-P");
        return 2;
    }
    if (o->accept != NULL && o->stdio) {
        prog_error(role, "give either --accept or --stdio");
        return 2;
    }
    if (o->context != NULL && o->contexts != NULL) {
        prog_error(role, "give either --context or --contexts");
        return 2;
    }
    if (o->trust != NULL && o->insecure) {
        prog_error(role, "give either --trust or --insecure");
        return 2;
    }
    if (o->trust == NULL && !o->insecure) {
        prog_error(role, "stream mode verifies certificates: give --trust FILE, or --insecure to verify none");
        return 2;
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
        {"accept", required_argument, NULL, 'A'},
        {"forward", required_argument, NULL, 'F'},
        {"stdio", no_argument, NULL, 'S'},
        {"context", required_argument, NULL, 'C'},
        {"contexts", required_argument, NULL, 'H'},
        {"insecure", no_argument, NULL, 'I'},
        {"icap", required_argument, NULL, 'Q'},
        {"out-pcap", required_argument, NULL, 'W'},
        {"backlog", required_argument, NULL, OPT_BACKLOG},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"max-per-source", required_argument, NULL, OPT_PER_SOURCE},
        {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"close-timeout", required_argument, NULL, OPT_CLOSE_TIMEOUT},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {NULL, 0, NULL, 0},
    };
    int mbox = strcmp(role, "middlebox") == 0, server = strcmp(role, "server") == 0, client = !mbox && !server;
    const char *serve_flag = NULL; /* the last of --backlog, --workers, ... given */
    const char *shorts = mbox ? ":ac:e:hPp:t:v" : server ? ":c:e:hPp:rsv" : ":c:e:hPp:sv";
    memset(o, 0, sizeof(*o));
    o->drain_timeout = PROG_DRAIN_TIMEOUT;
    o->workers = 1;
    msp_io_timeouts_default(&o->timeouts);
    prog_err = stderr;
    optind = 1;
    opterr = 0;
    int c, idx = 0;
    while ((c = getopt_long(argc, argv, shorts, longs, &idx)) != -1) {
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
        case 'A':
        case 'F':
        case 'S':
        case 'C':
        case 'H':
        case 'I':
            if (stream_option(role, c, o) != 0) {
                return 2;
            }
            break;
        case 'Q':
        case 'W':
            if (!mbox) {
                prog_error(role, "unknown option '%s' (see 'msp %s --help')", c == 'Q' ? "--icap" : "--out-pcap", role);
                return 2;
            }
            *(c == 'Q' ? &o->icap : &o->out_pcap) = optarg;
            break;
        case OPT_BACKLOG:
        case OPT_DRAIN:
        case OPT_LOG_FORMAT:
        case OPT_PER_SOURCE:
        case OPT_MAX_SESSIONS:
        case OPT_WORKERS:
            if (!mbox && !server && !client) {
                prog_error(role, "unknown option '--%s' (see 'msp %s --help')", longs[idx].name, role);
                return 2;
            }
            serve_flag = longs[idx].name; /* a client's: only with --accept (checked below) */
            if (parse_ops(role, c, optarg, o) != 0) {
                return 2;
            }
            break;
        case OPT_HANDSHAKE_TIMEOUT:
        case OPT_IDLE_TIMEOUT:
        case OPT_CLOSE_TIMEOUT:
        case OPT_CONNECT_TIMEOUT:
            if (parse_timeout(role, c, optarg, &o->timeouts) != 0) {
                return 2;
            }
            break;
        case ':':
            if (optopt >= OPT_BACKLOG) {
                prog_error(role, "option '%s' needs a value (see 'msp %s --help')", argv[optind - 1], role);
                return 2;
            }
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
    if (client && serve_flag != NULL && o->accept == NULL) {
        prog_error(role, "unknown option '--%s' (see 'msp %s --help'): it is for a client with --accept", serve_flag,
                   role);
        return 2;
    }
    return stream_check(role, o);
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
