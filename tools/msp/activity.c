/* Activities on libev (see activity.h): timers, handler processes, presentation. */
#include "activity.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msp/buf.h"
#include "msp/error.h"

#define MAX_OUTPUT (16u << 20)  /* what a handler may produce */
#define HOLD_IDLE 0.1           /* s: held containers wait this long for more (READ_QUEUE_MAX_IDLE_MS) */
#define FILE_CHUNK (256u << 10) /* a big file is read this much at a time */
#define FILE_WATER (1u << 20)   /* and only while the endpoint's queue holds less than this */

void act_print_bytes(FILE *f, const uint8_t *p, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c >= 0x20 && c < 0x7f) {
            fputc(c, f);
        } else {
            fprintf(f, "\\x%02x", c);
        }
    }
    fputc('"', f);
}

static void present(act_set_t *set, const msp_tlmsp_action_t *x, const char *what, const uint8_t *p, size_t len)
{
    if (x->activity == NULL || !(x->activity->present || set->force_present)) {
        return;
    }
    fprintf(stdout, "%s: activity %s %s %zu bytes in context %u: ", set->who, x->activity->tag, what, len, x->context);
    act_print_bytes(stdout, p, len);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Runs cmd under /bin/sh with in on stdin and collects its stdout (at most MAX_OUTPUT bytes). */
static int run_handler(const char *cmd, const uint8_t *in, size_t in_len, msp_buf_t *out)
{
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    /* Small inputs go in before reading; a handler that does not read its input still gets EOF. */
    if (pid > 0 && in_len > 0 && write(to[1], in, in_len) < 0) {
        in_len = 0;
    }
    close(to[1]);
    uint8_t buf[65536];
    ssize_t n;
    while (pid > 0 && (n = read(from[0], buf, sizeof(buf))) > 0) {
        msp_buf_put(out, buf, (size_t)n);
    }
    close(from[0]);
    int status = 0;
    if (pid > 0) {
        waitpid(pid, &status, 0);
    }
    return pid > 0 && msp_buf_error(out) == MSP_OK ? 0 : -1;
}

/* Room in the output queues the actions write to (a full one refuses sends: the actions wait for its drained event). */
static int writable(const act_set_t *set)
{
    if (set->mb != NULL && *set->mb != NULL) {
        return msp_io_mb_writable(*set->mb, 0) && msp_io_mb_writable(*set->mb, 1);
    }
    return set->ep == NULL || *set->ep == NULL || msp_io_ep_writable(*set->ep);
}

static void send(act_set_t *set, int to_server, uint8_t ctx, const uint8_t *p, size_t len)
{
    int rc = MSP_OK;
    if (set->shut) {
        return; /* a periodic send after our close_notify: the session is ending */
    }
    if (set->mb != NULL && *set->mb != NULL) {
        rc = msp_io_mb_send(*set->mb, to_server, ctx, p, len);
    } else if (set->ep != NULL && *set->ep != NULL) {
        rc = msp_io_ep_send(*set->ep, ctx, p, len);
    }
    if (rc == MSP_OK) {
        set->sent[to_server != 0] += len;
    }
    if (rc != MSP_OK && rc != MSP_ERR_IO) { /* a socket failure ends the session: its closed event says so */
        fprintf(stderr, "%s: activities: cannot send %zu bytes in context %u: %s\n", set->who, len, ctx,
                msp_error_name(rc));
    }
}

static void alert(act_set_t *set, int to_server, uint8_t ctx, uint8_t level, uint8_t desc)
{
    if (set->mb != NULL && *set->mb != NULL) {
        msp_io_mb_alert(*set->mb, to_server, ctx, level, desc);
    } else if (set->ep != NULL && *set->ep != NULL) {
        msp_io_ep_alert(*set->ep, ctx, level, desc);
    }
}

static void handler(act_set_t *set, const msp_tlmsp_action_t *x)
{
    msp_buf_t out;
    msp_buf_init(&out, MAX_OUTPUT);
    if (run_handler(x->command, x->p, x->len, &out) != 0) {
        fprintf(stderr, "%s: activity %s: action at line %u failed\n", set->who, x->activity->tag, x->line);
    } else if (x->log) {
        present(set, x, "logged", out.base, out.len);
    } else {
        present(set, x, "sent", out.base, out.len);
        send(set, x->to_server, x->context, out.base, out.len);
    }
    msp_buf_free(&out);
}

/*
 * A big `file =` payload (MSP_TLMSP_ACTION_SEND_FILE, endpoints only): read in chunks while the endpoint's queue is
 * under FILE_WATER, the rest when it drains (act_drained). Returns nonzero while the file is not all sent: the
 * actions after it wait.
 */
static int file_pump(act_set_t *set)
{
    static uint8_t chunk[FILE_CHUNK];
    while (set->file != NULL) {
        if (set->ep == NULL || *set->ep == NULL) {
            fclose(set->file); /* the connection is gone */
            set->file = NULL;
            return 0;
        }
        if (msp_io_ep_pending(*set->ep) >= FILE_WATER) {
            return 1;
        }
        size_t n = fread(chunk, 1, sizeof(chunk), set->file);
        if (n > 0 && msp_io_ep_send(*set->ep, set->file_ctx, chunk, n) != MSP_OK) {
            fprintf(stderr, "%s: activity %s: sending file %s failed\n", set->who, set->file_act->tag, set->file_name);
            n = 0;
        }
        set->file_sent += n;
        if (n < sizeof(chunk)) {
            if (ferror(set->file)) {
                fprintf(stderr, "%s: activity %s: file %s: read error\n", set->who, set->file_act->tag, set->file_name);
            }
            if (set->file_act->present || set->force_present) {
                fprintf(stdout, "%s: activity %s sent %llu bytes of file %s in context %u\n", set->who,
                        set->file_act->tag, (unsigned long long)set->file_sent, set->file_name, set->file_ctx);
                fflush(stdout);
            }
            fclose(set->file);
            set->file = NULL;
        }
    }
    return 0;
}

static void file_start(act_set_t *set, const msp_tlmsp_action_t *x)
{
    set->file = fopen(x->file, "rb");
    if (set->file == NULL) {
        fprintf(stderr, "%s: activity %s: file %s: %s\n", set->who, x->activity->tag, x->file, strerror(errno));
        return;
    }
    set->file_act = x->activity;
    set->file_name = x->file;
    set->file_ctx = x->context;
    set->file_sent = 0;
}

/* A reflecting endpoint answers every input: while its answers wait for room, its input waits in the network. */
static void pause_input(act_set_t *set)
{
    if (set->reflect && set->ep != NULL && *set->ep != NULL) {
        msp_io_ep_pause(*set->ep, set->blocked);
    }
}

static void arm(act_set_t *set);

/*
 * The actions the matcher decided, once the input that caused them is done. A timer that fired while the queue was
 * full ran nothing: when room comes back here (input ran the actions, before any drained event), it is armed again,
 * else the periodic activities and the timed shutdown would never run.
 */
static void run_actions(act_set_t *set)
{
    int was_blocked = set->blocked;
    msp_tlmsp_action_t x;
    /* blocked: the next action waits in the matcher until the queue drains (act_drained) */
    while (!file_pump(set) && !(set->blocked = !writable(set)) && msp_tlmsp_activity_next(set->m, &x)) {
        switch (x.kind) {
        case MSP_TLMSP_ACTION_SEND_FILE:
            file_start(set, &x);
            break;
        case MSP_TLMSP_ACTION_MATCHED:
            present(set, &x, "matched", x.p, x.len);
            break;
        case MSP_TLMSP_ACTION_SEND:
            present(set, &x, "sent", x.p, x.len);
            if (!x.applied) {
                send(set, x.to_server, x.context, x.p, x.len);
            }
            break;
        case MSP_TLMSP_ACTION_ALERT:
            alert(set, x.to_server, x.context, x.level, x.description);
            break;
        case MSP_TLMSP_ACTION_HANDLER:
            handler(set, &x);
            break;
        case MSP_TLMSP_ACTION_SHUTDOWN:
            /* close_notify, once (a second one reaching a peer that already closed is answered with a reset); a
             * middlebox sends it both ways */
            if (set->shut) {
                break;
            }
            set->shut = 1;
            alert(set, 0, 0, 1, 0);
            if (set->mb != NULL) {
                alert(set, 1, 0, 1, 0);
            }
            break;
        }
    }
    if (was_blocked && !set->blocked) {
        arm(set);
    }
    pause_input(set);
}

/* What the holding matcher decided goes out before the actions it caused, so inserted sends follow it. */
static void release(act_set_t *set)
{
    const msp_tlmsp_verdict_t *v;
    const uint8_t *const *data;
    const size_t *len;
    size_t n = set->hold ? msp_tlmsp_activity_take_released(set->m, &v, &data, &len) : 0;
    if (n > 0 && *set->mb != NULL && msp_io_mb_release(*set->mb, set->to_server, n, v, data, len) != MSP_OK) {
        fprintf(stderr, "%s: activities: cannot release %zu held containers\n", set->who, n);
    }
    /* the release may have ended the session (then *set->mb is NULL and act_stop ran) */
    if (set->hold && *set->mb != NULL && msp_tlmsp_mbox_held(msp_io_mb_mbox(*set->mb), set->to_server) == 0) {
        ev_timer_stop(set->loop, &set->hold_idle);
    }
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
    release(w->data);
    run_actions(w->data);
}

/*
 * Once per loop turn, after its inputs: the idle watcher may wait while the
 * sockets stay busy, the engine may not. The actions the release decided
 * (and their log lines) follow at once, after the containers they concern.
 */
static void on_release(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    ev_prepare_stop(loop, w);
    release(w->data);
    run_actions(w->data);
}

/* Nothing more came to complete a match: the held containers go out as they stand. */
static void on_hold_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    act_set_t *set = w->data;
    (void)revents;
    ev_timer_stop(loop, w);
    if (msp_tlmsp_activity_flush(set->m) != MSP_OK) {
        fprintf(stderr, "%s: activities: too much data held or queued\n", set->who);
    }
    release(set);
    run_actions(set);
}

static uint64_t now_ms(struct ev_loop *loop)
{
    return (uint64_t)(ev_now(loop) * 1000.0 + 0.5);
}

/* One libev timer for the set, at the matcher's next due time. */
static void arm(act_set_t *set)
{
    uint64_t due = msp_tlmsp_activity_next_due(set->m), now = now_ms(set->loop);
    ev_timer_stop(set->loop, &set->timer);
    if (due != MSP_TLMSP_ACTIVITY_NO_TIME) {
        ev_timer_set(&set->timer, due > now ? (double)(due - now) / 1000.0 : 0.0, 0.0);
        ev_timer_start(set->loop, &set->timer);
    }
}

/* Time-driven activities run when due; not while an output queue is full (act_drained runs them, late ones once). */
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    act_set_t *set = w->data;
    (void)revents;
    if (set->blocked) {
        return;
    }
    if (msp_tlmsp_activity_advance(set->m, now_ms(loop)) != MSP_OK) {
        fprintf(stderr, "%s: activities: too much data queued\n", set->who);
    }
    arm(set);
    ev_idle_start(loop, &set->idle);
}

int act_init(act_set_t *set, struct ev_loop *loop, const msp_tlmsp_activity_cfg_t *ac, const char *who,
             msp_io_ep_t **ep, msp_io_mb_t **mb, int force_present)
{
    memset(set, 0, sizeof(*set));
    set->who = who;
    set->ep = ep;
    set->mb = mb;
    set->loop = loop;
    set->force_present = force_present;
    ev_idle_init(&set->idle, on_idle);
    set->idle.data = set;
    ev_timer_init(&set->timer, on_timer, 0, 0);
    set->timer.data = set;
    ev_prepare_init(&set->release, on_release);
    set->release.data = set;
    ev_timer_init(&set->hold_idle, on_hold_idle, 0, HOLD_IDLE);
    set->hold_idle.data = set;
    set->to_server = ac->to_server;
    set->reflect = ac->reflect;
    msp_error_t err;
    if (msp_tlmsp_activity_new(ac, &set->m, &err) != MSP_OK) {
        snprintf(set->err, sizeof(set->err), "%s: %s", err.where[0] != '\0' ? err.where : ac->cfg->name, err.detail);
        return -1;
    }
    if (mb == NULL || ac->functions == NULL || ac->functions->n == 0) {
        return 0;
    }
    /* MSP_ERR_ARGUMENT: an activity counts containers (number, probability): each is decided on its own */
    int rc = msp_tlmsp_activity_hold(set->m);
    set->hold = rc == MSP_OK;
    if (rc != MSP_OK && rc != MSP_ERR_ARGUMENT) {
        snprintf(set->err, sizeof(set->err), "%s: activities: %s", who, msp_error_name(rc));
        return -1;
    }
    return 0;
}

void act_free(act_set_t *set)
{
    act_stop(set);
    msp_tlmsp_activity_free(set->m);
    set->m = NULL;
}

void act_start(act_set_t *set)
{
    msp_tlmsp_activity_start(set->m, now_ms(set->loop));
    arm(set);
}

void act_drained(act_set_t *set)
{
    if (set->file != NULL) {
        run_actions(set); /* a big file goes on */
    } else if (set->blocked && set->loop != NULL && set->m != NULL) {
        set->blocked = 0;
        pause_input(set);
        on_timer(set->loop, &set->timer, 0);
    }
}

void act_stop(act_set_t *set)
{
    if (set->file != NULL) {
        fclose(set->file);
        set->file = NULL;
    }
    if (set->loop != NULL) {
        ev_timer_stop(set->loop, &set->timer);
        ev_idle_stop(set->loop, &set->idle);
        ev_prepare_stop(set->loop, &set->release);
        ev_timer_stop(set->loop, &set->hold_idle);
    }
    if (set->m != NULL) {
        msp_tlmsp_activity_stop(set->m);
    }
}

msp_tlmsp_verdict_t act_on_data(act_set_t *set, uint8_t ctx, uint8_t access, const uint8_t *p, size_t len,
                                const uint8_t **data, size_t *data_len)
{
    msp_tlmsp_verdict_t v = MSP_TLMSP_FORWARD;
    if (msp_tlmsp_activity_input(set->m, ctx, access, p, len, &v, data, data_len) != MSP_OK) {
        fprintf(stderr, "%s: activities: too much data held or queued\n", set->who);
    }
    ev_idle_start(set->loop, &set->idle);
    if (set->hold) {
        ev_prepare_start(set->loop, &set->release); /* the engine takes releases only after this input */
    }
    if (v == MSP_TLMSP_HOLD) {
        ev_timer_again(set->loop, &set->hold_idle);
    }
    return v;
}
