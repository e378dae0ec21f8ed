/* Services an operator runs: caps, session logs, drain, reload, workers (serve.h). */
#include "serve.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msp/buf.h"
#include "msp/error.h"

void serve_log(const serve_t *sv, msp_tlmsp_log_record_t *r)
{
    r->time = ev_time();
    r->role = sv->role;
    r->pid = (long)getpid();
    r->worker = sv->worker;
    msp_buf_t b;
    msp_buf_init(&b, MSP_TLMSP_LOG_LINE_MAX);
    if (msp_tlmsp_log_format(r, sv->o->log_json ? MSP_TLMSP_LOG_JSON : MSP_TLMSP_LOG_TEXT, &b) == MSP_OK) {
        /* one write per line: the workers share the stream (O_APPEND for -e FILE) */
        FILE *f = prog_err != NULL ? prog_err : stderr;
        fflush(f);
        ssize_t n = write(fileno(f), b.base, b.len);
        (void)n; /* a log that cannot be written has nowhere to say so */
    }
    msp_buf_free(&b);
}

static void log_event(const serve_t *sv, const char *event, long count, const char *peer, const char *detail)
{
    msp_tlmsp_log_record_t r;
    msp_tlmsp_log_record_init(&r);
    r.event = event;
    r.count = count;
    r.peer = peer;
    r.detail = detail;
    serve_log(sv, &r);
}

static int on_accept(void *user, int fd, const struct sockaddr *peer, socklen_t len)
{
    serve_port_t *p = user;
    return p->fn(p->user, fd, peer, len);
}

static void on_listener_event(void *user, int what, const struct sockaddr *peer, socklen_t len, int err)
{
    serve_t *sv = ((serve_port_t *)user)->sv;
    char text[64];
    switch (what) {
    case MSP_IO_LISTENER_PAUSED:
        log_event(sv, "paused", (long)sv->open, NULL, strerror(err));
        break;
    case MSP_IO_LISTENER_RESUMED:
        log_event(sv, "resumed", (long)sv->open, NULL, NULL);
        break;
    default:
        log_event(sv, "rejected", (long)sv->open, msp_io_peer_text(peer, len, text, sizeof(text)),
                  what == MSP_IO_LISTENER_REJECTED_TOTAL ? "max-sessions" : "max-per-source");
        break;
    }
}

void serve_init(serve_t *sv, const char *role, const prog_opts_t *o, struct ev_loop *loop, unsigned worker,
                const serve_hooks_t *hooks)
{
    memset(sv, 0, sizeof(*sv));
    sv->role = role;
    sv->o = o;
    sv->loop = loop;
    sv->worker = worker;
    sv->hooks = *hooks;
}

int serve_listen(serve_t *sv, const char *host, uint16_t port, msp_io_listener_accept_fn fn, void *user,
                 msp_io_listener_t **out)
{
    msp_io_listener_cfg_t c;
    memset(&c, 0, sizeof(c));
    c.host = host;
    c.port = port;
    c.backlog = sv->o->backlog;
    c.reuseport = sv->o->workers > 1;
    c.max_sessions = sv->o->max_sessions;
    c.max_per_source = sv->o->max_per_source;
    c.accept = on_accept;
    c.event = on_listener_event;
    msp_error_t err;
    msp_error_clear(&err);
    if (sv->n_ports == PROG_MAX_TAGS) {
        prog_error(sv->role, "more than %d listeners", PROG_MAX_TAGS);
        return -1;
    }
    serve_port_t *p = &sv->ports[sv->n_ports];
    p->sv = sv;
    p->fn = fn;
    p->user = user;
    c.user = p;
    if (msp_io_listener_new(sv->loop, &c, &p->l, &err) != MSP_OK) {
        prog_error(sv->role, "%s", err.detail);
        return -1;
    }
    sv->n_ports++;
    *out = p->l;
    return 0;
}

void serve_session_begin(serve_t *sv, serve_session_t *s, msp_io_listener_t *l, const struct sockaddr *peer,
                         socklen_t peer_len, void *owner)
{
    memset(s, 0, sizeof(*s));
    s->sv = sv;
    s->l = l;
    if (peer_len > (socklen_t)sizeof(s->peer)) {
        peer_len = sizeof(s->peer);
    }
    memcpy(&s->peer, peer, peer_len);
    s->peer_len = peer_len;
    msp_io_peer_text(peer, peer_len, s->peer_text, sizeof(s->peer_text));
    s->id = ++sv->last_id;
    s->start = ev_time();
    s->owner = owner;
    s->next = sv->sessions;
    if (s->next != NULL) {
        s->next->prev = s;
    }
    sv->sessions = s;
    sv->open++;
}

static void drain_end(serve_t *sv, const char *outcome, long forced)
{
    ev_timer_stop(sv->loop, &sv->deadline);
    msp_tlmsp_log_record_t r;
    msp_tlmsp_log_record_init(&r);
    r.event = "drained";
    r.count = forced;
    r.outcome = outcome;
    serve_log(sv, &r);
    ev_break(sv->loop, EVBREAK_ALL);
}

void serve_session_end(serve_session_t *s, msp_tlmsp_log_record_t *r)
{
    serve_t *sv = s->sv;
    if (sv == NULL) {
        return; /* never begun, or already ended */
    }
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        sv->sessions = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    sv->open--;
    r->event = "session";
    r->id = s->id;
    r->peer = s->peer_text;
    r->has_bytes = 1;
    r->bytes_in = s->bytes_in;
    r->bytes_out = s->bytes_out;
    r->duration = ev_time() - s->start;
    serve_log(sv, r);
    msp_io_listener_done(s->l, (struct sockaddr *)&s->peer, s->peer_len);
    s->sv = NULL;
    if (sv->draining == 1 && sv->open == 0) {
        drain_end(sv, "clean", 0);
    }
}

/* ---- signals ---- */

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    serve_t *sv = w->data;
    (void)loop;
    (void)revents;
    long forced = (long)sv->open;
    sv->draining = 2; /* the sessions killed below do not end the drain one by one */
    while (sv->sessions != NULL) {
        serve_session_t *s = sv->sessions;
        sv->hooks.kill(s->owner);
        if (sv->sessions == s) {
            break; /* the program could not end it: do not spin */
        }
    }
    drain_end(sv, "deadline", forced);
}

static void start_drain(serve_t *sv, int signum)
{
    if (sv->draining == 1) {
        on_deadline(sv->loop, &sv->deadline, 0); /* a second SIGTERM or SIGINT: no more waiting */
        return;
    }
    if (sv->draining) {
        return;
    }
    sv->draining = 1;
    log_event(sv, "drain", (long)sv->open, NULL, strsignal(signum));
    for (size_t i = 0; i < sv->n_ports; i++) {
        msp_io_listener_close(sv->ports[i].l);
    }
    if (sv->open == 0) {
        drain_end(sv, "clean", 0);
        return;
    }
    ev_timer_init(&sv->deadline, on_deadline, sv->o->drain_timeout, 0.);
    sv->deadline.data = sv;
    ev_timer_start(sv->loop, &sv->deadline);
    for (serve_session_t *s = sv->sessions, *next; s != NULL && sv->draining == 1; s = next) {
        next = s->next; /* s may end inside the call (its memory stays until the loop turns) */
        sv->hooks.drain(s->owner);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    serve_t *sv = w->data;
    (void)loop;
    (void)revents;
    if (w->signum != SIGHUP) {
        start_drain(sv, w->signum);
        return;
    }
    int ok = sv->hooks.reload(sv->hooks.user) == 0;
    log_event(sv, "reload", -1, NULL, ok ? "new sessions use the reloaded configuration" : "kept the old one");
}

void serve_run(serve_t *sv)
{
    ev_signal *w[] = {&sv->sig_term, &sv->sig_int, &sv->sig_hup};
    int sig[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        ev_signal_init(w[i], on_signal, sig[i]);
        w[i]->data = sv;
        ev_signal_start(sv->loop, w[i]);
    }
    sigset_t set; /* a worker starts with them blocked (serve_workers): those that came meanwhile arrive now */
    sigemptyset(&set);
    for (size_t i = 0; i < 3; i++) {
        sigaddset(&set, sig[i]);
    }
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    ev_run(sv->loop, 0);
    for (size_t i = 0; i < 3; i++) {
        ev_signal_stop(sv->loop, w[i]);
    }
    ev_run(sv->loop, EVRUN_NOWAIT); /* the sessions' deferred frees (ev_once) */
}

void serve_free(serve_t *sv)
{
    for (size_t i = 0; i < sv->n_ports; i++) {
        msp_io_listener_free(sv->ports[i].l);
    }
    sv->n_ports = 0;
}

/* ---- workers ---- */

static void on_child(int signum)
{
    (void)signum; /* only to be waited for: SIGCHLD's default action would discard it */
}

/* The worst of two exit statuses (a worker killed by a signal counts as a failed run). */
static int worst(int a, int status)
{
    int b = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    return b > a ? b : a;
}

int serve_workers(const char *role, int n, int (*run)(void *arg, unsigned worker), void *arg)
{
    if (n <= 1) {
        return run(arg, 0);
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    signal(SIGCHLD, on_child);
    sigprocmask(SIG_BLOCK, &set, &old); /* taken with sigwaitinfo below; a worker unblocks them */
    pid_t pids[PROG_MAX_WORKERS] = {0};
    int live = 0, status = 0;
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            /* SIGTERM, SIGINT and SIGHUP stay blocked until the worker's loop watches them (serve_run): one
             * forwarded before then waits instead of killing the worker */
            signal(SIGCHLD, SIG_DFL);
            sigdelset(&set, SIGCHLD);
            sigprocmask(SIG_SETMASK, &old, NULL);
            sigprocmask(SIG_BLOCK, &set, NULL);
            exit(run(arg, (unsigned)i + 1));
        }
        if (pids[i] < 0) {
            prog_error(role, "cannot start worker %d: %s", i + 1, strerror(errno));
            pids[i] = 0;
            status = 1;
            break;
        }
        live++;
    }
    if (status != 0) {
        for (int i = 0; i < live; i++) {
            kill(pids[i], SIGTERM);
        }
    }
    while (live > 0) {
        siginfo_t info;
        int s = sigwaitinfo(&set, &info);
        if (s == SIGCHLD) {
            int st;
            pid_t pid;
            while (live > 0 && (pid = waitpid(-1, &st, WNOHANG)) > 0) {
                status = worst(status, st);
                live--;
                for (int i = 0; i < n; i++) {
                    pids[i] = pids[i] == pid ? 0 : pids[i];
                }
            }
        } else if (s > 0) {
            for (int i = 0; i < n; i++) {
                if (pids[i] > 0) {
                    kill(pids[i], s);
                }
            }
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return status;
}
