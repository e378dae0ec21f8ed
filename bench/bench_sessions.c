/*
 * Load driver for TLMSP at scale (issue 12): many concurrent sessions from one process on one libev loop, through
 * `msp middlebox` to `msp server -r`, written on libmsp's public API only (the configuration is the programs' .ucl,
 * turned into the client's engine configuration by msp_tlmsp_setup, as `msp client` does).
 *
 * For each level N (a 1-session level always runs first: the baseline): N sessions are opened, at most --parallel
 * handshakes at a time; each sends one small message in the configuration's first context and waits for the
 * server's reflection, byte for byte; all N then stay open, idle, while the RSS (VmRSS of /proc/PID/status) of every
 * watched process and of this one is sampled; then every session is closed with close_notify and must end cleanly.
 * Bytes per session: (RSS at N - RSS at the 1-session baseline) / (N - 1).
 *
 * It exits 0 when every session of every level came up, was echoed and closed cleanly; 1 otherwise (what failed
 * first is said on stderr); 2 for bad arguments or a file-descriptor limit too low for the largest level.
 *
 * Usage: bench_sessions -c FILE [-p SHIFT] [--sessions N[,N...]] [--parallel K] [--size BYTES]
 *                       [--watch NAME=PID]... [--timeout SECONDS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "msp/error.h"
#include "msp/tlmsp_cfg.h"
#include "msp/tlmsp_io.h"
#include "msp/tlmsp_setup.h"

#define MAX_LEVELS 8
#define MAX_WATCH 8
#define MAX_SIZE 16384
#define FD_SPARE 32 /* the loop, stdio, the configuration's files */

enum { S_NONE, S_HANDSHAKE, S_IDLE, S_CLOSING, S_CLEAN, S_FAILED };

struct run;

typedef struct sess {
    struct run *run;
    msp_io_ep_t *ep;
    int state;
    size_t got;
} sess_t;

typedef struct watch {
    const char *name;
    long pid; /* 0: this process */
    long base_kib;
    long kib;
} watch_t;

typedef struct run {
    struct ev_loop *loop;
    msp_tlmsp_endpoint_cfg_t ec; /* the template every session's client is made from */
    char host[256];
    uint16_t port;
    uint8_t ctx;
    uint8_t msg[MAX_SIZE];
    size_t size, parallel;
    double timeout;
    sess_t *s;
    size_t n, started, inflight, up, failed, clean;
    int closing;
    char why[512]; /* the first failure */
    ev_idle kick;
    ev_timer deadline;
    int timed_out;
} run_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Notes the first failure (what, then the detail, may be "") and, with s, counts that session as failed. */
static void fail(run_t *r, sess_t *s, const char *what, const char *detail)
{
    if (r->why[0] == '\0') {
        snprintf(r->why, sizeof(r->why), "%s%s", what, detail);
    }
    if (s != NULL) {
        s->state = S_FAILED;
        r->failed++;
    }
}

/* Every session of the phase has reached its end state: back to main. */
static void check_done(run_t *r)
{
    size_t settled = r->closing ? r->clean + r->failed : r->up + r->failed;
    if (settled == r->n) {
        ev_break(r->loop, EVBREAK_ONE);
    } else if (!r->closing) {
        ev_idle_start(r->loop, &r->kick); /* room for another handshake */
    }
}

static void on_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    sess_t *s = user;
    run_t *r = s->run;
    (void)ctx;
    if (s->state != S_HANDSHAKE) {
        return;
    }
    if (s->got + len > r->size || memcmp(p, r->msg + s->got, len) != 0) {
        r->inflight--;
        fail(r, s, "a message did not come back as it was sent", "");
        check_done(r);
        return;
    }
    s->got += len;
    if (s->got == r->size) {
        s->state = S_IDLE;
        r->inflight--;
        r->up++;
        check_done(r);
    }
}

static void on_ready(void *user, msp_io_ep_t *ep)
{
    sess_t *s = user;
    run_t *r = s->run;
    if (msp_io_ep_send(ep, r->ctx, r->msg, r->size) != MSP_OK) {
        r->inflight--;
        fail(r, s, "a session could not send its message", "");
        check_done(r);
    }
}

static void on_closed(void *user, msp_io_ep_t *ep, int err)
{
    sess_t *s = user;
    run_t *r = s->run;
    if (s->state == S_HANDSHAKE) {
        r->inflight--;
    } else if (s->state == S_IDLE) {
        r->up--; /* it was up, and ended before the close: a failure now */
    }
    if (s->state == S_FAILED) {
        /* counted when it failed */
    } else if (s->state == S_CLOSING && err == MSP_OK) {
        s->state = S_CLEAN;
        r->clean++;
    } else {
        fail(r, s, s->state == S_CLOSING ? "a session ended badly while closing: " : "a session ended early: ",
             msp_error_name(err));
    }
    s->ep = NULL;
    msp_io_ep_free(ep);
    check_done(r);
}

static int start_one(run_t *r, sess_t *s)
{
    msp_error_t err;
    msp_error_clear(&err);
    int fd = -1;
    msp_tlmsp_conn_t *conn = NULL;
    msp_tlmsp_endpoint_cfg_t ec = r->ec;
    ec.events.user = s;
    msp_io_ep_events_t ev = {s, on_ready, on_closed, NULL};
    memset(s, 0, sizeof(*s));
    s->run = r;
    if (msp_io_connect(r->host, r->port, &fd, &err) != MSP_OK) {
        fail(r, s, "", err.detail);
        return -1;
    }
    if (msp_tlmsp_client_new(&ec, &conn) != MSP_OK || msp_io_ep_new(r->loop, fd, conn, &ev, &s->ep) != MSP_OK) {
        msp_tlmsp_conn_free(conn);
        close(fd);
        fail(r, s, "out of memory", "");
        return -1;
    }
    s->state = S_HANDSHAKE;
    r->inflight++;
    return 0;
}

/* From the loop: as many new sessions as --parallel leaves room for. */
static void on_kick(struct ev_loop *loop, ev_idle *w, int revents)
{
    run_t *r = w->data;
    (void)revents;
    ev_idle_stop(loop, w);
    while (!r->closing && r->started < r->n && r->inflight < r->parallel) {
        sess_t *s = &r->s[r->started++];
        if (start_one(r, s) != 0) {
            check_done(r);
            return;
        }
    }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    run_t *r = w->data;
    (void)revents;
    r->timed_out = 1;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until the phase is settled or the deadline passes. 0 when it settled in time. */
static int run_phase(run_t *r)
{
    ev_timer_set(&r->deadline, r->timeout, 0);
    ev_timer_start(r->loop, &r->deadline);
    r->timed_out = 0;
    ev_run(r->loop, 0);
    ev_timer_stop(r->loop, &r->deadline);
    return r->timed_out ? -1 : 0;
}

static long rss_kib(long pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), pid == 0 ? "/proc/self/status" : "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

static void report_rss(size_t n, watch_t *w, size_t nw)
{
    printf("bench_sessions: %zu session(s) idle; RSS:", n);
    for (size_t i = 0; i < nw; i++) {
        w[i].kib = rss_kib(w[i].pid);
        if (n == 1) {
            w[i].base_kib = w[i].kib;
            printf("%s %s %ld KiB", i > 0 ? "," : "", w[i].name, w[i].kib);
        } else {
            double per = (double)(w[i].kib - w[i].base_kib) * 1024.0 / (double)(n - 1);
            printf("%s %s %ld KiB (%.0f bytes/session)", i > 0 ? "," : "", w[i].name, w[i].kib, per);
        }
    }
    printf("\n");
    fflush(stdout);
}

/* One level: open n, sample, close n. 0 when every session came up, was echoed and closed cleanly. */
static int level(run_t *r, size_t n, watch_t *w, size_t nw, FILE *csv)
{
    r->s = calloc(n, sizeof(sess_t));
    if (r->s == NULL) {
        fprintf(stderr, "bench_sessions: out of memory for %zu sessions\n", n);
        return -1;
    }
    r->n = n;
    r->started = r->inflight = r->up = r->failed = r->clean = 0;
    r->closing = 0;
    double t0 = now();
    ev_idle_start(r->loop, &r->kick);
    int timed_out = run_phase(r);
    double up_s = now() - t0;
    int ok = !timed_out && r->up == n;
    if (ok) {
        printf("bench_sessions: %zu session(s) up and echoed in %.2f s (%.0f handshakes/s)\n", n, up_s,
               (double)n / up_s);
        report_rss(n, w, nw);
    } else {
        fprintf(stderr, "bench_sessions: %zu of %zu sessions up and echoed after %.1f s%s; first failure: %s\n", r->up,
                n, up_s, timed_out ? " (timed out)" : "", r->why[0] != '\0' ? r->why : "none reported");
    }
    r->closing = 1;
    r->failed = 0; /* from here on: sessions that did not close cleanly */
    for (size_t i = 0; i < n; i++) {
        sess_t *s = &r->s[i];
        if (s->state == S_IDLE) {
            s->state = S_CLOSING;
            if (msp_io_ep_alert(s->ep, 0, 1, 0) != MSP_OK) {
                fail(r, NULL, "close_notify could not be sent", "");
            }
            continue;
        }
        s->state = S_FAILED; /* never opened, failed, or still in its handshake: not a clean close */
        r->failed++;
        msp_io_ep_free(s->ep);
        s->ep = NULL;
    }
    t0 = now();
    int close_late = r->clean + r->failed < n && run_phase(r) != 0;
    if (ok && r->clean == n) {
        printf("bench_sessions: %zu session(s) closed cleanly in %.2f s\n", n, now() - t0);
    } else if (ok) {
        fprintf(stderr, "bench_sessions: %zu of %zu sessions closed cleanly%s; first failure: %s\n", r->clean, n,
                close_late ? " (timed out)" : "", r->why[0] != '\0' ? r->why : "none reported");
    }
    ok = ok && r->clean == n;
    for (size_t i = 0; i < n; i++) {
        msp_io_ep_free(r->s[i].ep); /* only those a timed-out phase left */
    }
    if (ok && csv != NULL) {
        fprintf(csv, "csv,%zu,%.3f,%.1f", n, up_s, (double)n / up_s);
        for (size_t i = 0; i < nw; i++) {
            fprintf(csv, ",%ld,%.0f", w[i].kib, n > 1 ? (double)(w[i].kib - w[i].base_kib) * 1024.0 / (n - 1) : 0.0);
        }
        fprintf(csv, "\n");
    }
    free(r->s);
    r->s = NULL;
    return ok ? 0 : -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_sessions -c FILE [-p SHIFT] [--sessions N[,N...]] [--parallel K] [--size BYTES]\n"
                    "                      [--watch NAME=PID]... [--timeout SECONDS]\n"
                    "  -c FILE            the .ucl configuration of the programs (its client block and first hop)\n"
                    "  -p SHIFT           the port shift the programs were started with [0]\n"
                    "  --sessions LIST    the concurrent sessions of each level, after a 1-session baseline [1000]\n"
                    "  --parallel K       handshakes in flight at a time [32]\n"
                    "  --size BYTES       the message each session sends and gets back (1..16384) [64]\n"
                    "  --watch NAME=PID   a process whose RSS is sampled at each level (repeatable)\n"
                    "  --timeout SECONDS  the most each phase (open, close) of a level may take [120]\n");
    return 2;
}

static int parse_levels(const char *s, size_t *lv, size_t *n)
{
    *n = 0;
    lv[(*n)++] = 1;
    char *end;
    while (*s != '\0') {
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || v == 0 || v > 1000000 || (*end != ',' && *end != '\0') || *n == MAX_LEVELS) {
            return -1;
        }
        if (v > 1) {
            lv[(*n)++] = v;
        }
        s = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int parse_watch(const char *s, watch_t *w)
{
    const char *eq = strchr(s, '=');
    char *end;
    if (eq == NULL || eq == s) {
        return -1;
    }
    long pid = strtol(eq + 1, &end, 10);
    if (*end != '\0' || pid <= 0) {
        return -1;
    }
    static char names[MAX_WATCH][64];
    static size_t used;
    snprintf(names[used], sizeof(names[used]), "%.*s", (int)(eq - s), s);
    w->name = names[used++];
    w->pid = pid;
    return 0;
}

/* Enough descriptors for the largest level: the soft limit raised to what it needs (the hard one is the ceiling). */
static int raise_nofile(size_t sessions)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)sessions + FD_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -1;
    }
    if (rl.rlim_cur >= need) {
        return 0;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr, "bench_sessions: %zu sessions need %llu open files; the hard limit is %llu (ulimit -Hn)\n",
                sessions, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/* The client's engine configuration and first hop from the configuration file, as `msp client` derives them. */
static int setup_client(run_t *r, const char *file, int shift, msp_tlmsp_cfg_t **cfg, msp_tlmsp_setup_t **setup)
{
    msp_error_t err;
    msp_error_clear(&err);
    char dir[PATH_MAX];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - file) : 1, slash != NULL ? file : ".");
    int rc = msp_tlmsp_cfg_load_file(file, cfg, &err);
    if (rc == MSP_OK) {
        msp_tlmsp_setup_cfg_t sc = {*cfg, MSP_TLMSP_CFG_CLIENT, NULL, dir, NULL, NULL, NULL};
        rc = msp_tlmsp_setup_new(&sc, setup, &err);
    }
    if (rc != MSP_OK) {
        fprintf(stderr, "bench_sessions: %s: %s\n", err.where[0] != '\0' ? err.where : file, err.detail);
        return -1;
    }
    if ((*cfg)->n_contexts == 0) {
        fprintf(stderr, "bench_sessions: %s: no context to send in\n", file);
        return -1;
    }
    r->ctx = (*cfg)->contexts[0].id;
    msp_tlmsp_events_t ev = {NULL, on_data, NULL};
    msp_tlmsp_setup_endpoint(*setup, &ev, &r->ec);
    msp_tlmsp_conn_t *probe;
    if (msp_tlmsp_client_new(&r->ec, &probe) != MSP_OK) {
        fprintf(stderr, "bench_sessions: cannot make a client\n");
        return -1;
    }
    const msp_tlmsp_address_t *hop = msp_tlmsp_conn_first_hop(probe);
    char text[MSP_TLMSP_MAX_ADDRESS + 1];
    snprintf(text, sizeof(text), "%.*s", (int)hop->len, (const char *)hop->bytes);
    rc = msp_tlmsp_cfg_address_parse(text, r->host, sizeof(r->host), &r->port);
    msp_tlmsp_conn_free(probe);
    if (rc != MSP_OK) {
        fprintf(stderr, "bench_sessions: first hop '%s': not an address to connect to\n", text);
        return -1;
    }
    r->port = (uint16_t)(r->port + shift);
    return 0;
}

int main(int argc, char **argv)
{
    static run_t r;
    const char *file = NULL;
    int shift = 0;
    size_t lv[MAX_LEVELS], nlv = 0, nw = 0;
    watch_t w[MAX_WATCH + 1];
    parse_levels("1000", lv, &nlv);
    r.size = 64;
    r.parallel = 32;
    r.timeout = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = v == NULL;
        if (bad) {
        } else if (strcmp(a, "-c") == 0) {
            file = v;
        } else if (strcmp(a, "-p") == 0) {
            shift = atoi(v);
        } else if (strcmp(a, "--sessions") == 0) {
            bad = parse_levels(v, lv, &nlv) != 0;
        } else if (strcmp(a, "--parallel") == 0) {
            bad = (r.parallel = strtoul(v, NULL, 10)) == 0;
        } else if (strcmp(a, "--size") == 0) {
            r.size = strtoul(v, NULL, 10);
            bad = r.size == 0 || r.size > MAX_SIZE;
        } else if (strcmp(a, "--watch") == 0) {
            bad = nw == MAX_WATCH || parse_watch(v, &w[nw++]) != 0;
        } else if (strcmp(a, "--timeout") == 0) {
            bad = (r.timeout = strtod(v, NULL)) <= 0;
        } else {
            bad = 1;
        }
        if (bad) {
            return usage();
        }
        i++;
    }
    if (file == NULL) {
        return usage();
    }
    w[nw++] = (watch_t){"client", 0, 0, 0};
    size_t most = 0;
    for (size_t i = 0; i < nlv; i++) {
        most = lv[i] > most ? lv[i] : most;
    }
    if (raise_nofile(most) != 0) {
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < r.size; i++) {
        r.msg[i] = (uint8_t)("msp bench_sessions "[i % 19]);
    }
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_tlmsp_setup_t *setup = NULL;
    if (setup_client(&r, file, shift, &cfg, &setup) != 0) {
        msp_tlmsp_setup_free(setup);
        msp_tlmsp_cfg_free(cfg);
        return 2;
    }
    r.loop = ev_default_loop(0);
    ev_idle_init(&r.kick, on_kick);
    r.kick.data = &r;
    ev_init(&r.deadline, on_deadline);
    r.deadline.data = &r;
    int status = 0;
    char header[512] = "csv,sessions,up_s,handshakes_per_s";
    for (size_t i = 0; i < nw; i++) {
        size_t used = strlen(header);
        snprintf(header + used, sizeof(header) - used, ",%s_rss_kib,%s_bytes_per_session", w[i].name, w[i].name);
    }
    printf("%s\n", header);
    for (size_t i = 0; i < nlv && status == 0; i++) {
        status = level(&r, lv[i], w, nw, stdout) == 0 ? 0 : 1;
    }
    msp_tlmsp_setup_free(setup);
    msp_tlmsp_cfg_free(cfg);
    return status;
}
