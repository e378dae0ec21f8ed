/*
 * Handshakes through one middlebox (issue 12): sessions per second and the CPU each party spends per handshake,
 * against the public-key floor and OpenSSL's TLS 1.2 server.
 *
 *   tlmsp     this process (one libev loop, libmsp's client on msp_io_ep) -> `msp middlebox` -> `msp server -r`:
 *             C sessions in flight; each a full handshake, one byte sent and echoed, close_notify; as many as
 *             fit in T seconds (after a warm-up) or exactly N (--sessions).
 *   baseline  the same loop with OpenSSL TLS 1.2 clients (ECDHE-RSA-AES128-GCM-SHA256, X25519, no tickets)
 *             against `openssl s_server -rev`, same RSA-2048 key type.
 *
 * CPU per handshake: utime + stime of the process and any it forked (/proc/PID/stat) over the measured window,
 * divided by the sessions completed in it. The floor: the public-key operations a party must do per session, each timed
 * (in CPU time, as the processes are) with OpenSSL in this run on the same key types (X25519, RSA-2048 with RSA-PSS
 * SHA-256, what msp negotiates): middlebox  2 X25519 key generations (to_client, to_server, H 5.3), 2 RSA signatures
 * (one per half of its MiddleboxKeyExchange), 1 RSA verification (the ServerKeyExchange, H 4.5), 2 X25519 derivations
 * (with the client's and the server's share, H 6.2); certificates are not verified unless --trust is passed through
 * --mbox-args (then add the chain checks: not in this floor) msp server 1 X25519 key generation, 1 RSA signature
 * (ServerKeyExchange), 2 RSA verifications (the middlebox's two halves), 2 X25519 derivations (client, middlebox)
 *   s_server   1 X25519 key generation, 1 RSA signature, 1 X25519 derivation
 * floor / actual says how close a party is to the cost no implementation can avoid (1.0 = nothing else).
 *
 * Not a test: nothing here asserts a figure. It exits 1 when a session did not complete (the smoke ctest).
 *
 * Usage: bench_handshake --msp PATH [--openssl PATH|none] [--seconds T] [--warmup W] [--concurrency C]
 *                        [--sessions N] [--mbox-args "..."] [--server-args "..."] [--trust] [--keep]
 *
 * --trust: every party verifies its peers' certificates (msp's --trust, a file of the generated certificates);
 * the floor does not grow (the leaves are the trust anchors: no signature is checked), the set-up does.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

#include "msp/error.h"
#include "msp/tlmsp_cfg.h"
#include "msp/tlmsp_io.h"
#include "msp/tlmsp_setup.h"

#define MAX_SLOTS 1024
#define MAX_ARGS 64
#define DRAIN_SECONDS 10.0 /* sessions still in flight at the end get this long to finish */

static void die(const char *what)
{
    fprintf(stderr, "bench_handshake: %s\n", what);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- options ---- */

typedef struct opts {
    const char *msp, *openssl;
    double seconds, warmup, floor_seconds;
    int concurrency;
    long sessions; /* > 0: exactly this many, no warm-up, the whole run measured */
    char *mbox_args, *server_args;
    int trust, keep;
} opts_t;

/* ---- processes ---- */

/* A free loopback port (the kernel's pick, released at once: the program started next binds it). */
static unsigned free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        die("cannot find a free port");
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Splits extra (space-separated, no quoting) onto argv after n entries. */
static int add_words(char **argv, int n, char *extra)
{
    for (char *w = extra != NULL ? strtok(extra, " ") : NULL; w != NULL && n < MAX_ARGS - 1; w = strtok(NULL, " ")) {
        argv[n++] = w;
    }
    argv[n] = NULL;
    return n;
}

static pid_t spawn(char **argv, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600), in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid < 0) {
        die("fork failed");
    }
    return pid;
}

static int try_connect(unsigned port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Waits until pid listens on port (at most 10 s); 0 when it exited or never did. */
static int wait_listening(pid_t pid, unsigned port)
{
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            return 0;
        }
        if (try_connect(port)) {
            return 1;
        }
        sleep_ms(20);
    }
    return 0;
}

static void stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

static void show_log(const char *log)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "tail -n 5 %s >&2", log);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_handshake: (no log in %s)\n", log);
    }
}

/* utime + stime (fields 14, 15) and the parent (field 4) of pid, from /proc/PID/stat; 0 when it is gone. */
static int proc_stat(long pid, double *cpu, long *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    unsigned long long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", ppid, &ut, &st) != 3) {
        return 0;
    }
    *cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return 1;
}

/*
 * CPU seconds of pid and every process below it (a middlebox run with workers may fork them; threads are counted
 * in their process already). A child that exited in the window is not counted: workers live as long as the run.
 */
static double proc_cpu(pid_t pid)
{
    enum { MAX_TREE = 256 };
    long tree[MAX_TREE];
    size_t n = 0;
    double total = 0, cpu;
    long ppid;
    if (!proc_stat(pid, &total, &ppid)) {
        return 0;
    }
    tree[n++] = pid;
    for (int grew = 1; grew && n < MAX_TREE;) { /* children found in a pass may have children of their own */
        grew = 0;
        DIR *d = opendir("/proc");
        for (struct dirent *e = d != NULL ? readdir(d) : NULL; e != NULL && n < MAX_TREE; e = readdir(d)) {
            long child = atol(e->d_name);
            int known = 0, below = 0;
            for (size_t i = 0; child > 0 && i < n; i++) {
                known |= tree[i] == child;
            }
            if (child <= 0 || known || !proc_stat(child, &cpu, &ppid)) {
                continue;
            }
            for (size_t i = 0; i < n; i++) {
                below |= tree[i] == ppid;
            }
            if (below) {
                tree[n++] = child;
                total += cpu;
                grew = 1;
            }
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    return total;
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* ---- one run of the client loop, shared by both paths ---- */

typedef struct run {
    struct ev_loop *loop;
    const opts_t *o;
    unsigned port;
    pid_t pids[2]; /* whose CPU is reported: [0] middlebox or s_server, [1] msp server (or 0) */
    long started, done, failed;
    int running, measuring;
    double t0, t1, cpu0[3], cpu1[3];
    long done0, done1;
    char first_failure[200];
    ev_idle idle;
    ev_timer timer;
    void (*start)(struct run *r, int slot); /* begins a session in a free slot */
    int (*busy)(struct run *r, int slot);
    void (*service)(struct run *r, int slot); /* deferred work of a slot (a close to send) */
    void *slots;
} run_t;

static void snapshot(run_t *r, double *t, double cpu[3], long *done)
{
    *t = now();
    *done = r->done;
    cpu[0] = r->pids[0] > 0 ? proc_cpu(r->pids[0]) : 0;
    cpu[1] = r->pids[1] > 0 ? proc_cpu(r->pids[1]) : 0;
    cpu[2] = self_cpu();
}

static int in_flight(run_t *r)
{
    int n = 0;
    for (int i = 0; i < r->o->concurrency; i++) {
        n += r->busy(r, i);
    }
    return n;
}

static void session_end(run_t *r, int ok, const char *why)
{
    if (ok) {
        r->done++;
    } else {
        r->failed++;
        if (r->failed >= 100 && r->done == 0) {
            r->running = 0; /* nothing works: stop starting */
        }
        if (r->first_failure[0] == 0) {
            snprintf(r->first_failure, sizeof(r->first_failure), "%s", why);
        }
    }
    ev_idle_start(r->loop, &r->idle);
}

/* Whether another session is to be started. */
static int wanted(const run_t *r)
{
    return r->o->sessions > 0 ? r->started < r->o->sessions : r->running;
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    run_t *r = w->data;
    (void)revents;
    ev_idle_stop(loop, w);
    for (int i = 0; i < r->o->concurrency; i++) {
        r->service(r, i);
    }
    /* a session may end inside its start (loopback is fast): fill until the slots are busy or none is wanted */
    for (int i = 0; i < r->o->concurrency && wanted(r); i++) {
        for (int k = 0; k < 4 && wanted(r) && !r->busy(r, i); k++) {
            r->started++;
            r->start(r, i);
        }
    }
    if (r->o->sessions > 0 && r->done + r->failed >= r->o->sessions && r->measuring) {
        snapshot(r, &r->t1, r->cpu1, &r->done1);
        r->measuring = 0;
    }
    if (!wanted(r) && in_flight(r) == 0) {
        ev_break(loop, EVBREAK_ALL);
    }
}

/* Warm-up over: measure. Measured time over: no new sessions; then the in-flight ones get DRAIN_SECONDS. */
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    run_t *r = w->data;
    (void)revents;
    if (!r->measuring && r->running && r->t0 == 0) {
        snapshot(r, &r->t0, r->cpu0, &r->done0);
        r->measuring = 1;
        ev_timer_set(w, r->o->seconds, 0);
        ev_timer_start(loop, w);
    } else if (r->running) {
        snapshot(r, &r->t1, r->cpu1, &r->done1);
        r->measuring = 0;
        r->running = 0;
        ev_timer_set(w, DRAIN_SECONDS, 0);
        ev_timer_start(loop, w);
        ev_idle_start(loop, &r->idle);
    } else {
        snprintf(r->first_failure, sizeof(r->first_failure), "%d sessions still in flight %.0f s after the end",
                 in_flight(r), DRAIN_SECONDS);
        r->failed += in_flight(r);
        ev_break(loop, EVBREAK_ALL);
    }
}

static void run_loop(run_t *r)
{
    r->loop = ev_loop_new(EVFLAG_AUTO);
    ev_idle_init(&r->idle, on_idle);
    r->idle.data = r;
    ev_timer_init(&r->timer, on_timer, r->o->sessions > 0 ? 600.0 : r->o->warmup, 0);
    r->timer.data = r;
    r->running = 1;
    if (r->o->sessions > 0) { /* a count, not a time: the whole run is measured */
        snapshot(r, &r->t0, r->cpu0, &r->done0);
        r->measuring = 1;
        r->running = 0; /* no timer decides the end: the count does */
    }
    ev_timer_start(r->loop, &r->timer);
    ev_idle_start(r->loop, &r->idle);
    ev_run(r->loop, 0);
    if (r->measuring) {
        snapshot(r, &r->t1, r->cpu1, &r->done1);
    }
}

/* ---- TLMSP sessions on libmsp ---- */

typedef struct tslot {
    run_t *r;
    msp_io_ep_t *ep;
    int busy, got, closing;
} tslot_t;

typedef struct tlmsp_client {
    msp_tlmsp_setup_t *setup;
    tslot_t slot[MAX_SLOTS];
} tlmsp_client_t;

static tlmsp_client_t tc;

static void t_ready(void *user, msp_io_ep_t *ep)
{
    static const uint8_t ping = 'x';
    if (msp_io_ep_send(ep, 1, &ping, 1) != MSP_OK) {
        ((tslot_t *)user)->closing = 1; /* the closed event follows */
    }
}

static void t_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    tslot_t *s = user;
    (void)ctx;
    if (len == 1 && p[0] == 'x' && !s->got) {
        s->got = 1;
        s->closing = 1; /* close_notify once this input is done (the core is not re-entrant) */
        ev_idle_start(s->r->loop, &s->r->idle);
    }
}

static void t_closed(void *user, msp_io_ep_t *ep, int err)
{
    tslot_t *s = user;
    char why[160];
    snprintf(why, sizeof(why), "a TLMSP session ended with %d (%s) %s the echo", err,
             err >= 0 && err < 256 ? msp_tlmsp_cfg_alert_name((unsigned)err) : "local", s->got ? "after" : "before");
    msp_io_ep_free(ep);
    s->ep = NULL;
    s->busy = 0;
    session_end(s->r, s->got && err == MSP_OK, why);
}

static void t_start(run_t *r, int i)
{
    tslot_t *s = &tc.slot[i];
    memset(s, 0, sizeof(*s));
    s->r = r;
    s->busy = 1;
    msp_tlmsp_events_t ev = {s, t_data, NULL};
    msp_tlmsp_endpoint_cfg_t cfg;
    msp_tlmsp_setup_endpoint(tc.setup, &ev, &cfg);
    msp_io_ep_events_t iev = {s, t_ready, t_closed, NULL};
    msp_tlmsp_conn_t *conn = NULL;
    msp_error_t err;
    int fd = -1;
    if (msp_io_connect("127.0.0.1", (uint16_t)r->port, &fd, &err) != MSP_OK ||
        msp_tlmsp_client_new(&cfg, &conn) != MSP_OK || msp_io_ep_new(r->loop, fd, conn, &iev, &s->ep) != MSP_OK) {
        if (fd >= 0) {
            close(fd);
        }
        msp_tlmsp_conn_free(conn);
        s->busy = 0;
        session_end(r, 0, "cannot start a TLMSP session");
    }
}

static int t_busy(run_t *r, int i)
{
    (void)r;
    return tc.slot[i].busy;
}

static void t_service(run_t *r, int i)
{
    tslot_t *s = &tc.slot[i];
    (void)r;
    if (s->busy && s->closing && s->ep != NULL) {
        s->closing = 0;
        msp_io_ep_alert(s->ep, 0, 1, 0); /* the closed event ends the session */
    }
}

/* ---- OpenSSL TLS 1.2 sessions (the baseline) ---- */

typedef struct oslot {
    run_t *r;
    SSL *ssl;
    int fd, busy, phase; /* 0 handshake, 1 write, 2 read the echo, 3 shutdown */
    size_t got;
    ev_io io;
} oslot_t;

typedef struct ossl_client {
    SSL_CTX *ctx;
    oslot_t slot[MAX_SLOTS];
} ossl_client_t;

static ossl_client_t oc;

static void o_end(oslot_t *s, int ok, const char *why)
{
    ev_io_stop(s->r->loop, &s->io);
    SSL_free(s->ssl);
    close(s->fd);
    s->ssl = NULL;
    s->busy = 0;
    session_end(s->r, ok, why);
}

/* One step of the session; returns when OpenSSL wants the socket (the watcher is set for it). */
static void o_step(oslot_t *s)
{
    for (;;) {
        int ret;
        char buf[16];
        switch (s->phase) {
        case 0:
            ret = SSL_connect(s->ssl);
            break;
        case 1:
            ret = SSL_write(s->ssl, "x\n", 2);
            break;
        case 2:
            ret = SSL_read(s->ssl, buf, sizeof(buf));
            break;
        default:
            ret = SSL_shutdown(s->ssl);
            if (ret >= 0) { /* our close_notify is out: done, as the TLMSP client is */
                o_end(s, 1, "");
                return;
            }
        }
        if (ret > 0) {
            s->got += s->phase == 2 ? (size_t)ret : 0;
            if (s->phase != 2 || s->got >= 2) {
                s->phase++;
            }
            continue;
        }
        int e = SSL_get_error(s->ssl, ret);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            o_end(s, 0, "an OpenSSL session failed");
            return;
        }
        ev_io_stop(s->r->loop, &s->io);
        ev_io_set(&s->io, s->fd, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE);
        ev_io_start(s->r->loop, &s->io);
        return;
    }
}

static void o_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    o_step(w->data);
}

static void o_start(run_t *r, int i)
{
    oslot_t *s = &oc.slot[i];
    msp_error_t err;
    memset(s, 0, sizeof(*s));
    s->r = r;
    s->busy = 1;
    s->fd = -1;
    if (msp_io_connect("127.0.0.1", (uint16_t)r->port, &s->fd, &err) != MSP_OK || (s->ssl = SSL_new(oc.ctx)) == NULL ||
        SSL_set_fd(s->ssl, s->fd) != 1) {
        SSL_free(s->ssl);
        if (s->fd >= 0) {
            close(s->fd);
        }
        s->busy = 0;
        session_end(r, 0, "cannot start an OpenSSL session");
        return;
    }
    ev_io_init(&s->io, o_io, s->fd, EV_WRITE);
    s->io.data = s;
    o_step(s);
}

static int o_busy(run_t *r, int i)
{
    (void)r;
    return oc.slot[i].busy;
}

static void o_service(run_t *r, int i)
{
    (void)r;
    (void)i;
}

/* ---- the public-key floor, timed now ---- */

typedef struct floor_ms {
    double keygen, derive, sign, verify;
} floor_ms_t;

/* CPU time of this thread: what the floor is timed in, as the processes' CPU is (a loaded machine's waits are not
 * counted in either). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU milliseconds per call of op(arg), run for about secs of CPU. */
static double time_op(int (*op)(void *), void *arg, double secs)
{
    long n = 0;
    double t0 = cpu_now(), t;
    do {
        if (!op(arg)) {
            die("an OpenSSL operation of the floor failed");
        }
        n++;
        t = cpu_now() - t0;
    } while (t < secs || n < 3);
    return t / (double)n * 1e3;
}

typedef struct fctx {
    EVP_PKEY_CTX *gen, *derive, *sign, *verify;
    uint8_t tbs[32 + 32 + 36], sig[512];
    size_t sig_len;
} fctx_t;

static int op_keygen(void *a)
{
    EVP_PKEY *k = NULL;
    int ok = EVP_PKEY_keygen(((fctx_t *)a)->gen, &k) > 0;
    EVP_PKEY_free(k);
    return ok;
}

static int op_derive(void *a)
{
    uint8_t out[64];
    size_t n = sizeof(out);
    return EVP_PKEY_derive(((fctx_t *)a)->derive, out, &n) > 0;
}

/* A signature of a ServerKeyExchange-sized message: hashing it is part of the operation. */
static int op_sign(void *a)
{
    fctx_t *f = a;
    uint8_t h[32];
    f->sig_len = sizeof(f->sig);
    return EVP_Digest(f->tbs, sizeof(f->tbs), h, NULL, EVP_sha256(), NULL) &&
           EVP_PKEY_sign(f->sign, f->sig, &f->sig_len, h, sizeof(h)) > 0;
}

static int op_verify(void *a)
{
    fctx_t *f = a;
    uint8_t h[32];
    return EVP_Digest(f->tbs, sizeof(f->tbs), h, NULL, EVP_sha256(), NULL) &&
           EVP_PKEY_verify(f->verify, f->sig, f->sig_len, h, sizeof(h)) == 1;
}

static int pss(EVP_PKEY_CTX *c)
{
    return EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) > 0 &&
           EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) > 0 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) > 0;
}

static floor_ms_t measure_floor(EVP_PKEY *rsa, double secs)
{
    fctx_t f;
    memset(&f, 0, sizeof(f));
    EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), *b = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    f.gen = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    f.derive = a != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, a, NULL) : NULL;
    f.sign = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
    f.verify = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
    if (b == NULL || f.gen == NULL || EVP_PKEY_keygen_init(f.gen) <= 0 || f.derive == NULL ||
        EVP_PKEY_derive_init(f.derive) <= 0 || EVP_PKEY_derive_set_peer(f.derive, b) <= 0 || f.sign == NULL ||
        EVP_PKEY_sign_init(f.sign) <= 0 || !pss(f.sign) || f.verify == NULL || EVP_PKEY_verify_init(f.verify) <= 0 ||
        !pss(f.verify)) {
        die("cannot set up the floor's operations");
    }
    memset(f.tbs, 0x5a, sizeof(f.tbs));
    floor_ms_t ms;
    ms.keygen = time_op(op_keygen, &f, secs);
    ms.derive = time_op(op_derive, &f, secs);
    ms.sign = time_op(op_sign, &f, secs);
    ms.verify = time_op(op_verify, &f, secs);
    EVP_PKEY_CTX_free(f.gen);
    EVP_PKEY_CTX_free(f.derive);
    EVP_PKEY_CTX_free(f.sign);
    EVP_PKEY_CTX_free(f.verify);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return ms;
}

/* ---- the two paths ---- */

typedef struct result {
    int ran;
    long sessions, failed;
    double secs, per_s, ms[3]; /* CPU ms per handshake: [0] middlebox / s_server, [1] msp server, [2] client */
    char why[200];
} result_t;

static result_t summarize(run_t *r)
{
    result_t x;
    memset(&x, 0, sizeof(x));
    x.ran = 1;
    x.sessions = r->done1 - r->done0;
    x.failed = r->failed;
    x.secs = r->t1 - r->t0;
    x.per_s = x.secs > 0 ? (double)x.sessions / x.secs : 0;
    for (int i = 0; i < 3; i++) {
        x.ms[i] = x.sessions > 0 ? (r->cpu1[i] - r->cpu0[i]) * 1e3 / (double)x.sessions : 0;
    }
    snprintf(x.why, sizeof(x.why), "%s", r->first_failure);
    return x;
}

static const char ucl[] = "context { id = 1; tag = c1 }\n"
                          "client { address = tlmsp://client }\n"
                          "middlebox { tag = mbox1; address = tlmsp://127.0.0.1:%u; cert-file = \"%s/mbox1-cert.pem\"\n"
                          "            cert-key-file = \"%s/mbox1-key.pem\"; context { which = c1; access = r } }\n"
                          "server { address = tlmsp://127.0.0.1:%u; cert-file = \"%s/server-cert.pem\"\n"
                          "         cert-key-file = \"%s/server-key.pem\" }\n";

static result_t run_tlmsp(const opts_t *o, const char *dir)
{
    unsigned mport = free_port(), sport = free_port();
    char cfg_path[512], text[4096], slog[512], mlog[512];
    snprintf(cfg_path, sizeof(cfg_path), "%s/bench.ucl", dir);
    snprintf(text, sizeof(text), ucl, mport, dir, dir, sport, dir, dir);
    FILE *f = fopen(cfg_path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        die("cannot write the configuration");
    }
    snprintf(slog, sizeof(slog), "%s/server.log", dir);
    snprintf(mlog, sizeof(mlog), "%s/middlebox.log", dir);
    char *sargv[MAX_ARGS] = {(char *)o->msp, "server", "-c", cfg_path, "-r"};
    char *margv[MAX_ARGS] = {(char *)o->msp, "middlebox", "-c", cfg_path, "-a"};
    char trust[512];
    snprintf(trust, sizeof(trust), "%s/trust.pem", dir);
    int ns = 5, nm = 5;
    if (o->trust) {
        sargv[ns++] = margv[nm++] = "--trust";
        sargv[ns++] = margv[nm++] = trust;
    }
    add_words(sargv, ns, o->server_args);
    add_words(margv, nm, o->mbox_args);
    pid_t spid = spawn(sargv, slog), mpid = spawn(margv, mlog);
    if (!wait_listening(spid, sport) || !wait_listening(mpid, mport)) {
        show_log(slog);
        show_log(mlog);
        stop(spid);
        stop(mpid);
        die("msp server or msp middlebox did not start (logs above)");
    }
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_error_t err;
    msp_tlmsp_setup_cfg_t sc = {NULL, MSP_TLMSP_CFG_CLIENT, NULL, dir, o->trust ? trust : NULL, NULL, NULL};
    if (msp_tlmsp_cfg_load_file(cfg_path, &cfg, &err) != MSP_OK) {
        die("cannot read the generated configuration");
    }
    sc.cfg = cfg;
    if (msp_tlmsp_setup_new(&sc, &tc.setup, &err) != MSP_OK) {
        die("cannot set up the client from the generated configuration");
    }
    run_t r;
    memset(&r, 0, sizeof(r));
    r.o = o;
    r.port = mport;
    r.pids[0] = mpid;
    r.pids[1] = spid;
    r.start = t_start;
    r.busy = t_busy;
    r.service = t_service;
    run_loop(&r);
    result_t x = summarize(&r);
    ev_loop_destroy(r.loop);
    stop(mpid);
    stop(spid);
    msp_tlmsp_setup_free(tc.setup);
    msp_tlmsp_cfg_free(cfg);
    return x;
}

static result_t run_openssl(const opts_t *o, const char *dir)
{
    unsigned port = free_port();
    char acc[64], cert[512], key[512], log[512];
    snprintf(acc, sizeof(acc), "127.0.0.1:%u", port);
    snprintf(cert, sizeof(cert), "%s/server-cert.pem", dir);
    snprintf(key, sizeof(key), "%s/server-key.pem", dir);
    snprintf(log, sizeof(log), "%s/s_server.log", dir);
    char *argv[MAX_ARGS] = {(char *)o->openssl,
                            "s_server",
                            "-accept",
                            acc,
                            "-cert",
                            cert,
                            "-key",
                            key,
                            "-tls1_2",
                            "-cipher",
                            "ECDHE-RSA-AES128-GCM-SHA256",
                            "-groups",
                            "X25519",
                            "-no_ticket",
                            "-rev",
                            "-quiet",
                            NULL};
    pid_t pid = spawn(argv, log);
    if (!wait_listening(pid, port)) {
        show_log(log);
        stop(pid);
        die("openssl s_server did not start (log above)");
    }
    oc.ctx = SSL_CTX_new(TLS_client_method());
    if (oc.ctx == NULL || !SSL_CTX_set_min_proto_version(oc.ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(oc.ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(oc.ctx, "ECDHE-RSA-AES128-GCM-SHA256") ||
        !SSL_CTX_set1_groups_list(oc.ctx, "X25519")) {
        die("cannot set up the OpenSSL client");
    }
    SSL_CTX_set_options(oc.ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(oc.ctx, SSL_SESS_CACHE_OFF);
    run_t r;
    memset(&r, 0, sizeof(r));
    r.o = o;
    r.port = port;
    r.pids[0] = pid;
    r.start = o_start;
    r.busy = o_busy;
    r.service = o_service;
    run_loop(&r);
    result_t x = summarize(&r);
    ev_loop_destroy(r.loop);
    stop(pid);
    SSL_CTX_free(oc.ctx);
    return x;
}

/* ---- identities ---- */

static void write_file(const char *dir, const char *name, const msp_buf_t *b)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(b->base, 1, b->len, f) != b->len || fclose(f) != 0) {
        die("cannot write a PEM file");
    }
}

static void make_identity(const char *dir, const char *name)
{
    msp_buf_t cert, key;
    msp_buf_init(&cert, 1u << 16);
    msp_buf_init(&key, 1u << 16);
    if (msp_tlmsp_setup_selfsigned(name, 2, &cert, &key) != MSP_OK) {
        die("cannot make a certificate");
    }
    char n[64];
    snprintf(n, sizeof(n), "%s-cert.pem", name);
    write_file(dir, n, &cert);
    snprintf(n, sizeof(n), "%s-key.pem", name);
    write_file(dir, n, &key);
    msp_buf_free(&cert);
    msp_buf_free(&key);
}

/* dir/out = dir/a | dir/b (the trust file: both certificates). */
static void concat(const char *dir, const char *out, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "cat '%s/%s' '%s/%s' > '%s/%s'", dir, a, dir, b, dir, out);
    if (system(cmd) != 0) {
        die("cannot write the trust file");
    }
}

static EVP_PKEY *read_key(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s-key.pem", dir, name);
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    if (k == NULL) {
        die("cannot read back a key");
    }
    return k;
}

/* ---- report ---- */

static void row(const char *name, const result_t *x, int i, double floor)
{
    if (!x->ran) {
        printf("%-28s %10s %12s %10s %12s\n", name, "-", "-", "-", "-");
        return;
    }
    printf("%-28s %10.0f %12.3f %10.3f %12.2f\n", name, x->per_s, x->ms[i], floor, x->ms[i] > 0 ? floor / x->ms[i] : 0);
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_handshake --msp PATH [--openssl PATH|none] [--seconds T] [--warmup W] "
                    "[--concurrency C] [--sessions N] [--mbox-args \"...\"] [--server-args \"...\"] "
                    "[--floor-seconds S] [--trust] [--keep]\n"
                    "  --trust         every party verifies its peers' certificates (msp --trust)\n"
                    "  --mbox-args     extra flags for msp middlebox (e.g. \"--workers 2\"), space-separated\n"
                    "  --server-args   extra flags for msp server\n"
                    "  --sessions N    exactly N sessions per path, the whole run measured (a smoke run)\n");
    return 2;
}

static int parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){NULL, "openssl", 5.0, 0.5, 0.3, 16, 0, NULL, NULL, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--keep") == 0 || strcmp(a, "--trust") == 0) {
            *(a[2] == 'k' ? &o->keep : &o->trust) = 1;
            continue;
        }
        if (v == NULL) {
            return usage();
        }
        i++;
        if (strcmp(a, "--msp") == 0) {
            o->msp = v;
        } else if (strcmp(a, "--openssl") == 0) {
            o->openssl = v;
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            o->warmup = atof(v);
        } else if (strcmp(a, "--floor-seconds") == 0) {
            o->floor_seconds = atof(v);
        } else if (strcmp(a, "--concurrency") == 0) {
            o->concurrency = atoi(v);
        } else if (strcmp(a, "--sessions") == 0) {
            o->sessions = atol(v);
        } else if (strcmp(a, "--mbox-args") == 0) {
            o->mbox_args = strdup(v);
        } else if (strcmp(a, "--server-args") == 0) {
            o->server_args = strdup(v);
        } else {
            return usage();
        }
    }
    if (o->msp == NULL || o->seconds <= 0 || o->warmup <= 0 || o->floor_seconds <= 0 || o->concurrency <= 0 ||
        o->concurrency > MAX_SLOTS || o->sessions < 0) {
        return usage();
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse(argc, argv, &o) != 0) {
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/msp-bench-hs-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        die("cannot make a temporary directory");
    }
    make_identity(dir, "server");
    make_identity(dir, "mbox1");
    concat(dir, "trust.pem", "server-cert.pem", "mbox1-cert.pem");
    EVP_PKEY *mkey = read_key(dir, "mbox1");
    floor_ms_t f = measure_floor(mkey, o.floor_seconds);
    EVP_PKEY_free(mkey);
    double floor_mbox = 2 * f.keygen + 2 * f.sign + f.verify + 2 * f.derive;
    double floor_server = f.keygen + f.sign + 2 * f.verify + 2 * f.derive;
    double floor_tls = f.keygen + f.sign + f.derive;

    result_t t = run_tlmsp(&o, dir), b;
    memset(&b, 0, sizeof(b));
    int baseline = strcmp(o.openssl, "none") != 0;
    if (baseline) {
        b = run_openssl(&o, dir);
    }

    if (o.sessions > 0) {
        printf("bench_handshake: %ld sessions per path, %d in flight, loopback, 2 cores shared\n", o.sessions,
               o.concurrency);
    } else {
        printf("bench_handshake: %.1f s per path after %.1f s warm-up, %d in flight, loopback, 2 cores shared\n",
               o.seconds, o.warmup, o.concurrency);
    }
    printf("each session: full handshake, 1 byte echoed, close_notify; CPU = utime+stime (/proc) / sessions\n\n");
    printf("%-28s %10s %12s %10s %12s\n", "process", "sessions/s", "CPU ms/hs", "floor ms", "floor/actual");
    row("msp middlebox", &t, 0, floor_mbox);
    row("msp server", &t, 1, floor_server);
    row("client (this, libmsp)", &t, 2, 0);
    row("openssl s_server (TLS 1.2)", &b, 0, floor_tls);
    row("client (this, OpenSSL)", &b, 2, 0);
    printf("\nfloor, timed now (ms): X25519 keygen %.4f, X25519 derive %.4f, RSA-2048 PSS-SHA256 sign %.4f, "
           "verify %.4f\n",
           f.keygen, f.derive, f.sign, f.verify);
    printf("  middlebox = 2 keygen + 2 sign + 1 verify + 2 derive = %.3f ms; msp server = 1 keygen + 1 sign + "
           "2 verify + 2 derive = %.3f ms; s_server = 1 keygen + 1 sign + 1 derive = %.3f ms\n",
           floor_mbox, floor_server, floor_tls);
    if (t.ran && b.ran && b.ms[0] > 0) {
        printf("  middlebox CPU per handshake = %.2f x s_server's\n", t.ms[0] / b.ms[0]);
    }
    printf("completed: TLMSP %ld (failed %ld), OpenSSL %ld (failed %ld)\n", t.sessions, t.failed, b.sessions, b.failed);
    if (t.failed > 0) {
        fprintf(stderr, "bench_handshake: TLMSP: %s\n", t.why);
    }
    if (b.failed > 0) {
        fprintf(stderr, "bench_handshake: OpenSSL: %s\n", b.why);
    }
    printf("json {\"bench\":\"handshake\",\"concurrency\":%d,\"seconds\":%.3f,\"mbox_args\":\"%s\","
           "\"tlmsp\":{\"sessions\":%ld,\"failed\":%ld,\"per_s\":%.1f,\"mbox_cpu_ms\":%.4f,\"server_cpu_ms\":%.4f,"
           "\"client_cpu_ms\":%.4f,\"mbox_floor_ms\":%.4f,\"mbox_floor_ratio\":%.3f,\"server_floor_ms\":%.4f},"
           "\"openssl\":{\"sessions\":%ld,\"failed\":%ld,\"per_s\":%.1f,\"server_cpu_ms\":%.4f,\"floor_ms\":%.4f},"
           "\"floor_ops_ms\":{\"x25519_keygen\":%.4f,\"x25519_derive\":%.4f,\"rsa2048_pss_sign\":%.4f,"
           "\"rsa2048_pss_verify\":%.4f}}\n",
           o.concurrency, t.secs, o.mbox_args != NULL ? o.mbox_args : "", t.sessions, t.failed, t.per_s, t.ms[0],
           t.ms[1], t.ms[2], floor_mbox, t.ms[0] > 0 ? floor_mbox / t.ms[0] : 0, floor_server, b.sessions, b.failed,
           b.per_s, b.ms[0], floor_tls, f.keygen, f.derive, f.sign, f.verify);
    if (!o.keep) {
        char rm[600];
        snprintf(rm, sizeof(rm), "rm -rf %s", dir);
        if (system(rm) != 0) {
            fprintf(stderr, "bench_handshake: could not remove %s\n", dir);
        }
    } else {
        fprintf(stderr, "bench_handshake: kept %s\n", dir);
    }
    int ok = t.failed == 0 && t.sessions > 0 && (!baseline || (b.failed == 0 && b.sessions > 0));
    if (o.sessions > 0) {
        ok = ok && t.sessions == o.sessions && (!baseline || b.sessions == o.sessions);
    }
    free(o.mbox_args);
    free(o.server_args);
    return ok ? 0 : 1;
}
