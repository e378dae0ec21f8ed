/*
 * msp ets decrypt: the passive ETS middlebox. Packets from a capture file or
 * an interface go into the library's passive pipeline (ets_passive.h: TCP
 * reassembly, one TLS 1.3 decryptor per connection, the visibility check),
 * which needs nothing but the static server keys. This file opens the
 * capture and the outputs and writes what the pipeline reports: JSON events
 * (the lines the library renders, msp_ets_passive_*_json),
 * plaintext per flow and direction, an NSS key log for Wireshark, and a
 * plaintext capture for the tools an enterprise already runs.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ets_cli.h"
#include "msp/ets.h"
#include "msp/ets_passive.h"
#include "msp/ets_pcap.h"
#include "msp/ets_shard.h"
#include "msp/ets_workers.h"

static const char usage[] =
    "usage: msp ets decrypt (--key KEY | --key-dir DIR)... (--pcap FILE | --interface IF)\n"
    "                       [--out DIR] [--events FILE] [--keylog-out FILE] [--out-pcap FILE]\n"
    "                       [--filter BPF] [--promisc] [--count N] [--max-flows N] [--tickets N]\n"
    "                       [--rotate SIZE|SECONDSs] [--quiet] [--workers N] [--shard K/N]\n"
    "\n"
    "Decrypts TLS 1.3 connections passively, knowing only the servers' static ETS keys (PEM private\n"
    "keys, X25519 or P-256: msp ets keygen, the key manager, or openssl genpkey; --key-dir loads every\n"
    "x25519*.pem and p256*.pem of a folder, e.g. the one msp ets keymgr fetch writes). TCP is reassembled\n"
    "(loss, reordering, retransmissions); HelloRetryRequest, resumption with tickets seen earlier in\n"
    "the same run, 0-RTT and KeyUpdate are followed.\n"
    "\n"
    "  --pcap FILE        read a capture (pcap or pcapng); --interface IF captures live until\n"
    "                     SIGINT/SIGTERM or --count packets\n"
    "  --events FILE      one JSON object per line (flow, handshake, key_update, ticket, alert,\n"
    "                     undecryptable, flow_end, summary); default standard output\n"
    "  --out DIR          the plaintext of each flow: DIR/flow-ID-CLIENT-SERVER.c2s and .s2c\n"
    "  --keylog-out FILE  an NSS key log (Wireshark, tshark -o tls.keylog_file:FILE)\n"
    "  --out-pcap FILE    each decrypted flow again as plain TCP, with its addresses and ports;\n"
    "                     - (standard output, then --events FILE is required) or a FIFO: a live\n"
    "                     stream for tshark -r -, Suricata, Zeek, flushed after every batch of packets\n"
    "  --rotate SPEC      --out-pcap FILE in pieces FILE.0, FILE.1, ..., each a capture of its own:\n"
    "                     SIZE bytes with a k, M or G suffix (decimal, at least 64k: 100M), or\n"
    "                     SECONDS with an s suffix (60s), counted in capture time\n"
    "  --quiet            no progress line and no summary line on standard error\n"
    "  --max-flows N      flows tracked at once (default 65536); --tickets N PSKs kept (65536)\n"
    "  --workers N        decrypt on N threads, each given the flows of its share of the IP address\n"
    "                     pairs (an interface: one socket each in a PACKET_FANOUT group); flow ids stay\n"
    "                     unique, no longer consecutive\n"
    "  --shard K/N        keep only shard K (0 .. N-1) of N: the flows one of N hosts decrypts when\n"
    "                     each runs msp with its own K on the same traffic (docs/ets-deploy.md)\n"
    "\n"
    "Every connection that cannot be decrypted is reported with its reason (no static key for its\n"
    "key share, resumption of a connection not seen, gap in the capture, truncated, ...). The run ends\n"
    "with a summary line on standard error; reading a file onto a terminal shows its progress there.\n"
    "The capture and the keys are checked before any output is created.\n"
    "exit status: 0 when every TLS connection was decrypted, 1 when some could not be or an output\n"
    "failed while writing (a full disk, the reader of a stream gone), 2 on bad arguments, unreadable\n"
    "input or an output that cannot be created.\n";

#define DEC_MAX_KEYS MSP_ETS_DEC_MAX_KEYS

typedef struct dec_args {
    const char *keys[DEC_MAX_KEYS];
    size_t n_keys;
    const char *key_dirs[8];
    size_t n_key_dirs;
    const char *pcap, *iface, *filter, *out_dir, *events, *keylog, *out_pcap;
    int promisc, quiet;
    uint64_t count, max_flows, tickets;
    uint64_t rotate_bytes, rotate_us; /* --rotate */
    uint64_t workers;                 /* --workers; 0 or 1: this thread alone */
    unsigned shard_k, shard_n;        /* --shard K/N; shard_n 0: all */
} dec_args_t;

typedef struct dec_run dec_run_t;

/* What we write of one flow. */
typedef struct dec_flow {
    FILE *out[2];
    msp_pcap_out_flow_t *pout;
} dec_flow_t;

struct dec_run {
    const dec_args_t *args;
    msp_ets_passive_t *pipe;
    FILE *events, *keylog;
    char keylog_tmp[4096];
    msp_pcap_out_t *pout;
    msp_buf_t line;
    int io_error;
    char cut[512]; /* why the capture ended early, "" when it was read to its end */
    msp_pcap_in_t *in;
    int out_created;   /* folder levels --out made, removed again when the run does not start */
    char io_why[4608]; /* the first output failure, naming the output (a path may take 4 KiB) */
    msp_ets_passive_report_t report;
    uint64_t t0_us, progress_us; /* run start and last progress line, wall clock */
    int progress;                /* a progress line is on the terminal */
    int tty;                     /* progress lines wanted: standard error is a terminal, no --quiet */
    int args_events_stdout;      /* the events go to standard output */
    int events_made;             /* the events file was not there before */

    /* --workers N: then pipe is their total, and each worker has a copy of this (worker_runs) */
    msp_ets_workers_t *workers;
    dec_run_t *worker_runs;
};

/* One line the library rendered (line.len 0: nothing to write) to the events file. */
static void output_failed(dec_run_t *r, const char *what, const char *path, int e);

static void write_line(dec_run_t *r, int rc)
{
    if (rc != MSP_OK) {
        r->io_error = 1;
    } else if (fwrite(r->line.base, 1, r->line.len, r->events) != r->line.len) {
        output_failed(r, "cannot write output", r->args_events_stdout ? "-" : r->args->events, errno);
    }
    r->line.len = 0;
}

/* --workers: the plaintext capture is one for all the workers (the other outputs are written a whole line per
 * fwrite, which stdio does under the stream's lock) */
static void pout_lock(dec_run_t *r)
{
    if (r->workers != NULL) {
        msp_ets_workers_lock(r->workers);
    }
}

static void pout_unlock(dec_run_t *r)
{
    if (r->workers != NULL) {
        msp_ets_workers_unlock(r->workers);
    }
}

/* ---- per-flow files ---- */

static FILE *flow_file(dec_run_t *r, msp_ets_passive_flow_t *pf, dec_flow_t *f, int dir)
{
    if (f->out[dir] != NULL || r->args->out_dir == NULL) {
        return f->out[dir];
    }
    const msp_tcp_flow_info_t *info = msp_ets_passive_flow_info(pf);
    char c[MSP_ETS_PASSIVE_ADDR_TEXT], s[MSP_ETS_PASSIVE_ADDR_TEXT], path[4096];
    msp_ets_passive_addr_text(info, 0, c);
    msp_ets_passive_addr_text(info, 1, s);
    snprintf(path, sizeof path, "%s/flow-%llu-%s-%s.%s", r->args->out_dir, (unsigned long long)info->id, c, s,
             dir == 0 ? "c2s" : "s2c");
    f->out[dir] = fopen(path, "wb");
    if (f->out[dir] == NULL) {
        output_failed(r, "cannot create output", path, errno);
    }
    return f->out[dir];
}

/* ---- pipeline callbacks ---- */

static void on_plaintext(void *arg, msp_ets_passive_flow_t *pf, int dir, const uint8_t *p, size_t n, uint64_t ts_us)
{
    dec_run_t *r = arg;
    dec_flow_t *f = msp_ets_passive_flow_user(pf);
    if (f == NULL) {
        return;
    }
    FILE *out = flow_file(r, pf, f, dir);
    if (out != NULL && fwrite(p, 1, n, out) != n) {
        output_failed(r, "cannot write output", r->args->out_dir, errno);
    }
    if (r->pout != NULL) {
        const msp_tcp_flow_info_t *info = msp_ets_passive_flow_info(pf);
        msp_error_t err = {0};
        int rc = MSP_OK;
        pout_lock(r);
        if (f->pout == NULL) {
            rc = msp_pcap_out_flow_begin(r->pout, info, info->first_ts_us, &f->pout, &err);
        }
        if (rc == MSP_OK && f->pout != NULL) {
            rc = msp_pcap_out_data(r->pout, f->pout, dir, p, n, ts_us, &err);
        }
        pout_unlock(r);
        if (rc != MSP_OK) {
            output_failed(r, err.detail, NULL, 0);
        }
    }
}

static void on_keylog(void *arg, msp_ets_passive_flow_t *pf, const char *line, size_t len)
{
    dec_run_t *r = arg;
    (void)pf;
    if (r->keylog != NULL && fwrite(line, 1, len, r->keylog) != len) {
        output_failed(r, "cannot write output", r->args->keylog, errno);
    }
}

static void on_event(void *arg, msp_ets_passive_flow_t *pf, const msp_ets_event_t *ev, const msp_ets_passive_vis_t *vis)
{
    dec_run_t *r = arg;
    msp_ets_passive_report_event(&r->report, ev);
    write_line(r, msp_ets_passive_event_json(msp_ets_passive_flow_info(pf)->id, ev, vis, &r->line));
}

static void on_open(void *arg, msp_ets_passive_flow_t *pf)
{
    dec_run_t *r = arg;
    const msp_tcp_flow_info_t *info = msp_ets_passive_flow_info(pf);
    dec_flow_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        r->io_error = 1; /* its plaintext cannot be written */
    }
    msp_ets_passive_flow_set_user(pf, f);
    write_line(r, msp_ets_passive_flow_json(info, &r->line));
}

static void on_close(void *arg, msp_ets_passive_flow_t *pf, msp_tcp_close_reason_t reason)
{
    dec_run_t *r = arg;
    const msp_tcp_flow_info_t *info = msp_ets_passive_flow_info(pf);
    write_line(r, msp_ets_passive_flow_end_json(pf, reason, &r->line));
    dec_flow_t *f = msp_ets_passive_flow_user(pf);
    if (f == NULL) {
        return;
    }
    for (int d = 0; d < 2; d++) {
        if (f->out[d] != NULL && fclose(f->out[d]) != 0) {
            output_failed(r, "cannot write output", r->args->out_dir, errno);
        }
    }
    msp_error_t err = {0};
    pout_lock(r);
    int rc = f->pout != NULL ? msp_pcap_out_flow_end(r->pout, f->pout, info->last_ts_us, &err) : MSP_OK;
    pout_unlock(r);
    if (rc != MSP_OK) {
        output_failed(r, err.detail, NULL, 0);
    }
    free(f);
    msp_ets_passive_flow_set_user(pf, NULL);
}

static const msp_ets_passive_cb_t dec_callbacks = {on_open, on_plaintext, on_event, on_keylog, on_close};

/* ---- arguments ---- */

static int parse_u64(const char *opt, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || v[0] == '-' || n < lo || n > hi) {
        cli_error("msp ets decrypt", "error: %s wants a number from %llu to %llu, not '%s'", opt,
                  (unsigned long long)lo, (unsigned long long)hi, v);
        return CLI_USAGE;
    }
    *out = n;
    return CLI_OK;
}

/* --rotate: SIZE with a k, M or G suffix (decimal, as tcpdump -C counts), or SECONDS with an s suffix; a bare
 * number could be either, so it is refused. */
static int parse_rotate(dec_args_t *a, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    static const struct {
        const char *suffix;
        uint64_t mul;
        int time;
    } units[] = {{"k", 1000u, 0}, {"M", 1000000u, 0}, {"G", 1000000000u, 0}, {"s", 1000000u, 1}};
    for (size_t k = 0; errno == 0 && end != v && v[0] != '-' && k < sizeof units / sizeof units[0]; k++) {
        if (strcmp(end, units[k].suffix) != 0 || n == 0 || n > UINT64_MAX / units[k].mul) {
            continue;
        }
        uint64_t x = n * units[k].mul;
        if (!units[k].time && x < MSP_PCAP_OUT_ROTATE_MIN) {
            break;
        }
        *(units[k].time ? &a->rotate_us : &a->rotate_bytes) = x;
        return CLI_OK;
    }
    cli_error("msp ets decrypt",
              "error: --rotate wants a size with a k, M or G suffix (at least %uk) or seconds with an s suffix, "
              "not '%s'",
              (unsigned)((MSP_PCAP_OUT_ROTATE_MIN + 999) / 1000), v);
    return CLI_USAGE;
}

/* --shard K/N: K from 0 to N-1, N from 1 to MSP_ETS_SHARD_MAX. */
static int parse_shard(dec_args_t *a, const char *v)
{
    unsigned k, n;
    char end;
    if (sscanf(v, "%u/%u%c", &k, &n, &end) != 2 || v[0] == '-' || strchr(v, '-') != NULL || n == 0 ||
        n > MSP_ETS_SHARD_MAX || k >= n) {
        cli_error("msp ets decrypt", "error: --shard wants K/N with N from 1 to %d and K from 0 to N-1, not '%s'",
                  MSP_ETS_SHARD_MAX, v);
        return CLI_USAGE;
    }
    a->shard_k = k;
    a->shard_n = n;
    return CLI_OK;
}

static int parse_opt(dec_args_t *a, const char *o, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } paths[] = {
        {"--pcap", offsetof(dec_args_t, pcap)},         {"--interface", offsetof(dec_args_t, iface)},
        {"--filter", offsetof(dec_args_t, filter)},     {"--out", offsetof(dec_args_t, out_dir)},
        {"--events", offsetof(dec_args_t, events)},     {"--keylog-out", offsetof(dec_args_t, keylog)},
        {"--out-pcap", offsetof(dec_args_t, out_pcap)},
    };
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        if (strcmp(o, paths[k].name) == 0) {
            *(const char **)((char *)a + paths[k].off) = v;
            return CLI_OK;
        }
    }
    if (strcmp(o, "--key") == 0) {
        if (a->n_keys == DEC_MAX_KEYS) {
            cli_error("msp ets decrypt", "error: more than %d --key", DEC_MAX_KEYS);
            return CLI_USAGE;
        }
        a->keys[a->n_keys++] = v;
        return CLI_OK;
    }
    if (strcmp(o, "--key-dir") == 0) {
        if (a->n_key_dirs == sizeof a->key_dirs / sizeof a->key_dirs[0]) {
            cli_error("msp ets decrypt", "error: more than 8 --key-dir");
            return CLI_USAGE;
        }
        a->key_dirs[a->n_key_dirs++] = v;
        return CLI_OK;
    }
    if (strcmp(o, "--count") == 0) {
        return parse_u64(o, v, 1, UINT64_MAX, &a->count);
    }
    if (strcmp(o, "--max-flows") == 0) {
        return parse_u64(o, v, 1, 1u << 24, &a->max_flows);
    }
    if (strcmp(o, "--tickets") == 0) {
        return parse_u64(o, v, 0, 1u << 24, &a->tickets);
    }
    if (strcmp(o, "--rotate") == 0) {
        return parse_rotate(a, v);
    }
    if (strcmp(o, "--workers") == 0) {
        return parse_u64(o, v, 1, MSP_ETS_WORKERS_MAX, &a->workers);
    }
    if (strcmp(o, "--shard") == 0) {
        return parse_shard(a, v);
    }
    cli_error("msp ets decrypt", "error: unexpected argument '%s' (see 'msp ets decrypt --help')", o);
    return CLI_USAGE;
}

/* Standard output carries one thing, and a plaintext capture stream is not rotated (no file to close). */
static int check_streams(const dec_args_t *a)
{
    int pcap_stdout = a->out_pcap != NULL && strcmp(a->out_pcap, "-") == 0;
    const char *why = NULL;
    if (pcap_stdout && (a->events == NULL || strcmp(a->events, "-") == 0)) {
        why = "--out-pcap - writes the capture to standard output: give the events a file (--events FILE)";
    } else if (pcap_stdout && isatty(STDOUT_FILENO)) {
        why = "--out-pcap -: standard output is a terminal (pipe it into a reader: | tshark -r -)";
    } else if ((a->rotate_bytes != 0 || a->rotate_us != 0) && (a->out_pcap == NULL || pcap_stdout)) {
        why = "--rotate wants --out-pcap FILE (a file, not -)";
    } else if (a->rotate_bytes != 0 && a->rotate_us != 0) {
        why = "--rotate by size or by time, not both";
    }
    if (why != NULL) {
        cli_error("msp ets decrypt", "error: %s", why);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int parse_args(int argc, char **argv, dec_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->max_flows = MSP_TCP_MAX_FLOWS_DEFAULT;
    a->tickets = 65536;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--promisc") == 0) {
            a->promisc = 1;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            a->quiet = 1;
        } else if (strncmp(argv[i], "--", 2) == 0 && i + 1 < argc) {
            if (parse_opt(a, argv[i], argv[i + 1]) != CLI_OK) {
                return CLI_USAGE;
            }
            i++;
        } else {
            cli_error("msp ets decrypt", "error: unexpected argument '%s' (see 'msp ets decrypt --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    const char *missing = a->n_keys + a->n_key_dirs == 0            ? "--key KEY or --key-dir DIR"
                          : (a->pcap == NULL) == (a->iface == NULL) ? "exactly one of --pcap FILE and --interface IF"
                                                                    : NULL;
    if (missing != NULL) {
        cli_error("msp ets decrypt", "error: %s is required (see 'msp ets decrypt --help')", missing);
        return CLI_USAGE;
    }
    return check_streams(a);
}

/* ---- setup and teardown ---- */

/* One static key; a key already loaded (the key manager's GROUP.pem is a copy of a GROUP-FINGERPRINT.pem) is
 * skipped by the pipeline. */
static int add_key(dec_run_t *r, const char *path)
{
    EVP_PKEY *key = ets_cli_load_key("msp ets decrypt", path);
    msp_error_t err = {0};
    int rc = key == NULL          ? MSP_ERR_IO
             : r->workers != NULL ? msp_ets_workers_add_key(r->workers, key, &err)
                                  : msp_ets_passive_add_key(r->pipe, key, &err);
    EVP_PKEY_free(key);
    if (rc == MSP_ERR_ARGUMENT) {
        cli_error("msp ets decrypt",
                  "%s: error: not an X25519 or P-256 key (the groups ETS static keys are served for)", path);
    } else if (rc != MSP_OK && rc != MSP_ERR_IO) {
        cli_error("msp ets decrypt", "%s: error: %s", path, err.detail);
    }
    return rc == MSP_OK ? CLI_OK : CLI_USAGE;
}

/* The key files of a folder: x25519*.pem and p256*.pem, what msp ets keygen and msp ets keymgr fetch write. */
static int add_key_dir(dec_run_t *r, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        cli_error("msp ets decrypt", "%s: error: %s", dir, strerror(errno));
        return CLI_USAGE;
    }
    int st = CLI_OK;
    size_t before = msp_ets_passive_key_count(r->pipe);
    for (struct dirent *e = readdir(d); st == CLI_OK && e != NULL; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        int named = strncmp(e->d_name, "x25519", 6) == 0 || strncmp(e->d_name, "p256", 4) == 0;
        if (named && len > 4 && strcmp(e->d_name + len - 4, ".pem") == 0) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            st = add_key(r, path);
        }
    }
    closedir(d);
    if (st == CLI_OK && msp_ets_passive_key_count(r->pipe) == before) {
        cli_error("msp ets decrypt", "%s: error: no static key (x25519*.pem, p256*.pem) in this folder", dir);
        st = CLI_USAGE;
    }
    return st;
}

/* ---- --workers ---- */

/* One pipeline, or with --workers N one per worker (then r->pipe is their total: keys, counts, summary). */
static int new_pipeline(dec_run_t *r, const msp_ets_passive_cfg_t *cfg)
{
    unsigned n = (unsigned)r->args->workers;
    if (n <= 1) {
        return msp_ets_passive_new(cfg, &r->pipe);
    }
    void *args[MSP_ETS_WORKERS_MAX];
    if ((r->worker_runs = calloc(n, sizeof *r->worker_runs)) == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    for (unsigned k = 0; k < n; k++) {
        args[k] = &r->worker_runs[k]; /* filled by run_workers, once the outputs are open */
    }
    msp_ets_workers_cfg_t wc = {.n = n, .passive = *cfg, .worker_arg = args};
    int rc = msp_ets_workers_new(&wc, &r->workers);
    r->pipe = rc == MSP_OK ? msp_ets_workers_total(r->workers) : NULL;
    return rc;
}

static void free_pipeline(dec_run_t *r)
{
    if (r->workers != NULL) {
        msp_ets_workers_free(r->workers);
    } else {
        msp_ets_passive_free(r->pipe);
    }
    free(r->worker_runs);
}

/* --shard K/N on a capture of this link type, with --filter if given: the expression of the shard's flows. */
static int shard_filter(const dec_args_t *a, int link, char *out, size_t cap)
{
    char shard[MSP_ETS_SHARD_FILTER_MAX];
    if (msp_ets_shard_filter(link, a->shard_k, a->shard_n, shard, sizeof shard) != MSP_OK) {
        return MSP_ERR_ARGUMENT;
    }
    int n = a->filter != NULL && a->filter[0] != '\0' ? snprintf(out, cap, "(%s) and (%s)", a->filter, shard)
                                                      : snprintf(out, cap, "%s", shard);
    return n > 0 && (size_t)n < cap ? MSP_OK : MSP_ERR_LIMIT;
}

/* The link type of an interface, for the shard filter that the workers' sockets are opened with. */
static int iface_link(const dec_args_t *a, int *link, msp_error_t *err)
{
    msp_pcap_in_t *in;
    int rc = msp_pcap_in_open_live(a->iface, NULL, a->promisc, &in, err);
    if (rc == MSP_OK) {
        *link = msp_pcap_in_link(in);
        msp_pcap_in_close(in);
    }
    return rc;
}

static msp_ets_workers_t *running_workers;

/* What the workers' copies of r found, back into r: output failures, undecryptable reasons. */
static void gather_workers(dec_run_t *r)
{
    for (unsigned k = 0; k < msp_ets_workers_count(r->workers); k++) {
        dec_run_t *wr = &r->worker_runs[k];
        if (wr->io_error && !r->io_error) {
            snprintf(r->io_why, sizeof r->io_why, "%s", wr->io_why);
        }
        r->io_error |= wr->io_error;
        for (size_t i = 0; i < MSP_ETS_PASSIVE_REASONS; i++) {
            r->report.undecryptable[i] += wr->report.undecryptable[i];
        }
        msp_buf_free(&wr->line);
    }
}

/* Decrypts the file in, or (NULL) the interface already opened, on the workers; each writes through its own copy
 * of r (its own line buffer, error flag and tally). */
static int run_workers(dec_run_t *r, msp_pcap_in_t *in, msp_error_t *err)
{
    unsigned n = msp_ets_workers_count(r->workers);
    for (unsigned k = 0; k < n; k++) {
        dec_run_t *wr = &r->worker_runs[k];
        *wr = *r;
        wr->worker_runs = NULL;
        msp_buf_init(&wr->line, 1u << 20);
    }
    running_workers = r->workers;
    int rc = in != NULL ? msp_ets_workers_run_file(r->workers, in, r->args->count, err)
                        : msp_ets_workers_run_live(r->workers, r->args->count, err);
    running_workers = NULL;
    gather_workers(r);
    msp_ets_workers_stats_t st;
    msp_ets_workers_stats(r->workers, &st);
    if (in == NULL) {
        r->report.dropped = st.dropped;
    }
    if (r->args->quiet) {
        return rc;
    }
    /* how the load was spread: an operator sizing workers or hosts reads it */
    fprintf(stderr, "msp ets decrypt: %u workers, packets per worker:", n);
    for (unsigned k = 0; k < n; k++) {
        fprintf(stderr, " %llu",
                (unsigned long long)msp_ets_passive_tcp_stats(msp_ets_workers_pipe(r->workers, k))->packets);
    }
    if (in != NULL) {
        fprintf(stderr, "; the reader waited %llu times\n", (unsigned long long)st.reader_waits);
    } else {
        fprintf(stderr, "; misrouted %llu, dropped by the kernel %llu\n", (unsigned long long)st.misrouted,
                (unsigned long long)st.dropped);
    }
    return rc;
}

/* --workers N on an interface: N sockets in one PACKET_FANOUT group, opened before any output exists. */
static int open_workers_live(dec_run_t *r)
{
    const dec_args_t *a = r->args;
    msp_error_t err = {0};
    char filter[4096];
    int link, rc = MSP_OK;
    if (a->shard_n != 0 && (rc = iface_link(a, &link, &err)) == MSP_OK &&
        shard_filter(a, link, filter, sizeof filter) != MSP_OK) {
        rc = msp_error_set(&err, MSP_ERR_LIMIT, NULL, "capture %s: --filter is too long", a->iface);
    }
    if (rc == MSP_OK) {
        rc = msp_ets_workers_open_live(r->workers, a->iface, a->shard_n != 0 ? filter : a->filter, a->promisc, &err);
    }
    if (rc != MSP_OK) {
        cli_print_error("msp ets decrypt", &err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int load_keys(dec_run_t *r)
{
    msp_ets_passive_cfg_t cfg;
    msp_ets_passive_cfg_default(&cfg);
    cfg.tcp.max_flows = r->args->max_flows;
    cfg.max_tickets = r->args->tickets;
    cfg.cb = &dec_callbacks;
    cfg.arg = r;
    if (new_pipeline(r, &cfg) != MSP_OK) {
        cli_error("msp ets decrypt", "error: out of memory");
        return CLI_USAGE;
    }
    int st = CLI_OK;
    for (size_t k = 0; st == CLI_OK && k < r->args->n_keys; k++) {
        st = add_key(r, r->args->keys[k]);
    }
    for (size_t k = 0; st == CLI_OK && k < r->args->n_key_dirs; k++) {
        st = add_key_dir(r, r->args->key_dirs[k]);
    }
    return st;
}

static FILE *open_tmp(const char *path, char *tmp, size_t cap)
{
    if ((size_t)snprintf(tmp, cap, "%s.tmp.XXXXXX", path) >= cap) {
        return NULL;
    }
    int fd = mkstemp(tmp);
    return fd >= 0 ? fdopen(fd, "w") : NULL;
}

/* ---- outputs: created only once the capture and the keys are known good ---- */

/* The first output failure, as one line naming the output ("cannot write output PATH: why"; path NULL: what is
 * the whole line); the capture stops at the next batch. */
static void output_failed(dec_run_t *r, const char *what, const char *path, int e)
{
    if (!r->io_error) {
        if (path == NULL) {
            snprintf(r->io_why, sizeof r->io_why, "%s", what);
        } else {
            const char *name = strcmp(path, "-") == 0 ? "standard output" : path;
            snprintf(r->io_why, sizeof r->io_why, "%s %s: %s", what, name, strerror(e));
        }
    }
    r->io_error = 1;
}

static int cannot_create(const char *path, int e)
{
    cli_error("msp ets decrypt", "cannot create output %s: %s", path, strerror(e));
    return CLI_USAGE;
}

static int open_outputs(dec_run_t *r)
{
    const dec_args_t *a = r->args;
    msp_error_t err = {0};
    r->events = stdout;
    if (a->events == NULL || strcmp(a->events, "-") == 0) {
        r->args_events_stdout = 1;
    } else if ((r->events_made = access(a->events, F_OK) != 0, r->events = fopen(a->events, "w")) == NULL) {
        return cannot_create(a->events, errno);
    }
    if (a->out_dir != NULL && cli_mkdirs(a->out_dir, 0755, &r->out_created) != 0) {
        return cannot_create(a->out_dir, errno);
    }
    if (a->keylog != NULL && (r->keylog = open_tmp(a->keylog, r->keylog_tmp, sizeof r->keylog_tmp)) == NULL) {
        return cannot_create(a->keylog, errno);
    }
    msp_pcap_out_cfg_t pc = {.path = a->out_pcap, .rotate_bytes = a->rotate_bytes, .rotate_us = a->rotate_us};
    if (a->out_pcap != NULL && msp_pcap_out_new(&pc, &r->pout, &err) != MSP_OK) {
        cli_error("msp ets decrypt", "%s", err.detail);
        return CLI_USAGE;
    }
    /* One file per flow and direction may be open at once: take all the descriptors we may. */
    struct rlimit rl;
    if (a->out_dir != NULL && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return CLI_OK;
}

/* A run that did not start takes back what open_outputs created: no empty file or folder stays. */
static void remove_outputs(dec_run_t *r)
{
    if (r->events != NULL && r->events != stdout) {
        fclose(r->events);
        r->events = NULL;
        if (r->events_made) {
            unlink(r->args->events);
        }
    }
    cli_rmdirs(r->args->out_dir, r->out_created);
}

/* Keeps or discards the key log and the plaintext capture: whole files or none. */
static int close_outputs(dec_run_t *r, int ok)
{
    msp_error_t err = {0};
    int status = CLI_OK;
    if (r->keylog != NULL) {
        int closed = fclose(r->keylog) == 0;
        if (ok && closed && rename(r->keylog_tmp, r->args->keylog) == 0) {
            r->keylog = NULL;
        } else {
            unlink(r->keylog_tmp);
            status = ok ? CLI_FAIL : status;
            if (ok) {
                cli_error("msp ets decrypt", "cannot write output %s: %s", r->args->keylog, strerror(errno));
            }
        }
    }
    if (r->pout != NULL) {
        if (ok && msp_pcap_out_close(r->pout, &err) != MSP_OK) {
            cli_error("msp ets decrypt", "%s", err.detail);
            status = CLI_FAIL;
        } else if (!ok) {
            msp_pcap_out_abort(r->pout);
        }
    }
    if (r->events != NULL && r->events != stdout && fclose(r->events) != 0) {
        cli_error("msp ets decrypt", "cannot write output %s: %s", r->args->events, strerror(errno));
        status = CLI_FAIL;
    }
    return status;
}

/* ---- progress and summary on standard error ---- */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#define PROGRESS_EVERY_US 250000u /* redraw at most four times a second */

/* Redraws the progress line: only a capture file read onto a terminal has one. */
static void show_progress(dec_run_t *r, msp_pcap_in_t *in)
{
    uint64_t done, total, t = now_us();
    if (!r->tty || t - r->progress_us < PROGRESS_EVERY_US || msp_pcap_in_progress(in, &done, &total) != MSP_OK) {
        return;
    }
    char mem[256];
    msp_buf_t b;
    msp_buf_init_fixed(&b, mem, sizeof mem);
    msp_ets_passive_progress_text(done, total, t - r->t0_us, msp_ets_passive_counts(r->pipe)->flows, &b);
    if (msp_buf_cstr(&b) != NULL) {
        fprintf(stderr, "\rmsp ets decrypt: %s\033[K", msp_buf_cstr(&b));
        fflush(stderr);
        r->progress = 1;
    }
    r->progress_us = t;
}

static void clear_progress(dec_run_t *r)
{
    if (r->progress) {
        fputs("\r\033[K", stderr);
        r->progress = 0;
    }
}

/* After each batch of packets: streams handed on (a reader sees the packets now), progress; an output that failed
 * stops the capture. */
static void on_batch(void *arg, msp_pcap_in_t *in)
{
    dec_run_t *r = arg;
    msp_error_t err = {0};
    if (r->pout != NULL && !r->io_error && msp_pcap_out_flush(r->pout, &err) != MSP_OK) {
        output_failed(r, err.detail, NULL, 0);
    }
    if (!r->io_error && fflush(r->events) != 0) {
        output_failed(r, "cannot write output", r->args_events_stdout ? "-" : r->args->events, errno);
    }
    if (r->io_error) {
        msp_pcap_in_stop(in);
        return;
    }
    show_progress(r, in);
}

/* The last line: what the run did (--quiet: nothing). */
static void print_summary(dec_run_t *r)
{
    clear_progress(r);
    if (r->args->quiet) {
        return;
    }
    r->report.counts = *msp_ets_passive_counts(r->pipe);
    r->report.captured = msp_ets_passive_tcp_stats(r->pipe)->bytes;
    r->report.elapsed_us = now_us() - r->t0_us;
    char mem[1024];
    msp_buf_t b;
    msp_buf_init_fixed(&b, mem, sizeof mem);
    msp_ets_passive_summary_text(&r->report, &b);
    if (msp_buf_cstr(&b) != NULL) {
        fprintf(stderr, "msp ets decrypt: %s", msp_buf_cstr(&b));
    }
}

/* ---- the capture ---- */

static msp_pcap_in_t *running_capture;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno; /* a stop may write to an event descriptor */
    if (running_capture != NULL) {
        msp_pcap_in_stop(running_capture);
    }
    if (running_workers != NULL) {
        msp_ets_workers_stop(running_workers);
    }
    errno = saved;
}

/* Opens the capture (a file's header is read here): before any output exists. */
static int open_capture(dec_run_t *r)
{
    const dec_args_t *a = r->args;
    msp_error_t err = {0};
    if (r->workers != NULL && a->iface != NULL) {
        return open_workers_live(r);
    }
    int rc = a->pcap != NULL ? msp_pcap_in_open_file(a->pcap, a->filter, &r->in, &err)
                             : msp_pcap_in_open_live(a->iface, a->filter, a->promisc, &r->in, &err);
    char filter[4096];
    if (rc == MSP_OK && a->shard_n != 0) {
        rc = shard_filter(a, msp_pcap_in_link(r->in), filter, sizeof filter) == MSP_OK
                 ? msp_pcap_in_set_filter(r->in, filter, &err)
                 : msp_error_set(&err, MSP_ERR_LIMIT, NULL, "capture %s: --filter is too long",
                                 a->pcap != NULL ? a->pcap : a->iface);
    }
    if (rc != MSP_OK) {
        cli_print_error("msp ets decrypt", &err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Reads the capture to its end; when it breaks off (a file cut inside a packet, an interface gone), what was read
 * is still decrypted and r->cut says why it ended. */
static void capture(dec_run_t *r)
{
    const dec_args_t *a = r->args;
    msp_pcap_in_t *in = r->in;
    msp_error_t err = {0};
    if (a->iface != NULL) {
        /* as tcpdump and dumpcap do: whoever starts traffic next knows that it will be seen */
        fprintf(stderr, "msp ets decrypt: capturing on %s\n", a->iface);
    }
    running_capture = in;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (in == NULL) { /* --workers on an interface: their sockets are open */
        if (run_workers(r, NULL, &err) != MSP_OK) {
            snprintf(r->cut, sizeof r->cut, "%s", err.detail[0] != '\0' ? err.detail : msp_error_name(err.code));
        }
        return;
    }
    r->tty = !a->quiet && isatty(STDERR_FILENO);
    msp_pcap_in_on_batch(in, on_batch, r);
    int rc = r->workers != NULL ? run_workers(r, in, &err)
                                : msp_pcap_in_run(in, msp_ets_passive_tcp(r->pipe), a->count, NULL, &err);
    if (rc != MSP_OK) {
        snprintf(r->cut, sizeof r->cut, "%s", err.detail[0] != '\0' ? err.detail : msp_error_name(err.code));
    }
    running_capture = NULL;
    if (msp_pcap_in_dropped(in, &r->report.dropped) != MSP_OK) {
        r->report.dropped = 0; /* a file: nothing dropped that we could know of */
    }
    msp_pcap_in_close(in);
    r->in = NULL;
}

static int decrypt(dec_run_t *r)
{
    capture(r);
    msp_ets_passive_finish(r->pipe);
    write_line(r, msp_ets_passive_summary_json(r->pipe, r->cut, &r->line));
    if (fflush(r->events) != 0) {
        output_failed(r, "cannot write output", r->args_events_stdout ? "-" : r->args->events, errno);
    }
    print_summary(r);
    msp_error_t err = {0};
    if (msp_ets_passive_error(r->pipe, &err) != MSP_OK) {
        cli_error("msp ets decrypt", "error: %s", err.detail);
        return CLI_USAGE;
    }
    if (r->io_error) {
        cli_error("msp ets decrypt", "%s", r->io_why[0] != '\0' ? r->io_why : "error: cannot render an event");
    }
    return r->io_error ? CLI_FAIL : CLI_OK;
}

int cmd_ets_decrypt(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    dec_args_t a;
    dec_run_t r = {.args = &a};
    if (parse_args(argc, argv, &a) != CLI_OK) {
        return CLI_USAGE;
    }
    /* a reader of standard output or of a FIFO that goes away is an error we report, not a signal that kills */
    signal(SIGPIPE, SIG_IGN);
    r.t0_us = now_us();
    msp_buf_init(&r.line, 1u << 20);
    int status = load_keys(&r);
    if (status == CLI_OK) {
        status = open_capture(&r);
    }
    if (status == CLI_OK && (status = open_outputs(&r)) != CLI_OK) {
        remove_outputs(&r);
    }
    if (status == CLI_OK) {
        status = decrypt(&r);
    }
    msp_pcap_in_close(r.in);
    int closed = close_outputs(&r, status == CLI_OK);
    if (status == CLI_OK) {
        /* a flow that began before the capture is no failure of the keys or of msp: the summary names them */
        const msp_ets_passive_counts_t *n = msp_ets_passive_counts(r.pipe);
        uint64_t undecryptable = n->undecryptable - n->midstream;
        status = closed != CLI_OK ? closed : undecryptable > 0 || r.cut[0] != '\0' ? CLI_FAIL : CLI_OK;
    }
    if (status == CLI_FAIL && r.cut[0] != '\0') {
        /* everything before the break was decrypted and written: the outputs are whole up to there */
        cli_error("msp ets decrypt", "error: %s (what came before it was decrypted)", r.cut);
    } else if (status == CLI_FAIL && !r.io_error) {
        cli_error("msp ets decrypt", "%llu of %llu connections could not be decrypted (see the undecryptable events)",
                  (unsigned long long)msp_ets_passive_counts(r.pipe)->undecryptable,
                  (unsigned long long)msp_ets_passive_counts(r.pipe)->flows);
    }
    msp_buf_free(&r.line);
    free_pipeline(&r);
    return status;
}
