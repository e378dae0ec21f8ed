/*
 * The passive pipeline on N worker threads (msp/ets_workers.h): a capture
 * file read by the calling thread and handed out by flow shard through
 * bounded queues, or an interface read by the workers themselves through a
 * PACKET_FANOUT group that shards in the kernel. Each worker owns its
 * msp_ets_passive_t; nothing of the protocol is shared between threads.
 */
/* libpcap's headers use the BSD u_char/u_int types. */
#define _DEFAULT_SOURCE
#include "msp/ets_workers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>

#include "ets_workers.h"
#include "msp/ets_shard.h"
#include "pcap_in.h"

/* Packets for one worker, copied out of libpcap's buffer by the reader. */
typedef struct batch {
    struct batch *next;
    unsigned count;
    size_t used;
    struct {
        uint64_t ts_us;
        uint32_t caplen, len;
        size_t off;
    } pkt[MSP_ETS_WORKERS_BATCH];
    uint8_t data[MSP_ETS_WORKERS_BATCH_BYTES];
} batch_t;

typedef struct worker {
    msp_ets_workers_t *w;
    unsigned k;
    msp_ets_passive_t *pipe;
    pthread_t thread;
    int started;
    /* capture file: the queue from the reader; mu guards everything down to eof */
    pthread_mutex_t mu;
    pthread_cond_t queued; /* a batch was queued, or the end */
    pthread_cond_t freed;  /* a batch came back */
    batch_t *head, *tail;  /* queued */
    batch_t *spare;        /* consumed, for the reader to fill again */
    unsigned allocated;    /* at most MSP_ETS_WORKERS_QUEUE + 2: queued, being filled, being decrypted */
    int eof;
    batch_t *fill; /* the reader's own */
    /* interface */
    msp_pcap_in_t *in;
    uint64_t misrouted;
    /* the first failure of this worker */
    int rc;
    msp_error_t err;
} worker_t;

struct msp_ets_workers {
    unsigned n;
    worker_t *wk;
    msp_ets_passive_t *total;
    pthread_mutex_t lock;  /* msp_ets_workers_lock */
    atomic_int stop;       /* lock-free: set from a signal handler and from any worker */
    msp_pcap_in_t *reader; /* the capture file being read */
    int link, ran, live;
    uint64_t max, read;          /* capture file: packets to read, read */
    atomic_uint_least64_t taken; /* interface: packets taken by all the workers */
    int reader_rc;
    msp_ets_workers_stats_t st;
};

static size_t share(size_t total, unsigned n)
{
    return total / n + (total % n != 0);
}

/* Worker k's pipeline: its share of the limits, its flow ids, its own callback argument. */
static int worker_new(msp_ets_workers_t *w, const msp_ets_workers_cfg_t *cfg, unsigned k)
{
    worker_t *wk = &w->wk[k];
    wk->w = w;
    wk->k = k;
    pthread_mutex_init(&wk->mu, NULL);
    pthread_cond_init(&wk->queued, NULL);
    pthread_cond_init(&wk->freed, NULL);
    msp_ets_passive_cfg_t pc = cfg->passive;
    pc.arg = cfg->worker_arg != NULL ? cfg->worker_arg[k] : cfg->passive.arg;
    pc.tcp.max_flows = share(pc.tcp.max_flows, cfg->n);
    pc.tcp.budget = share(pc.tcp.budget, cfg->n);
    pc.max_tickets = share(pc.max_tickets, cfg->n);
    pc.tcp.id_first = k + 1;
    pc.tcp.id_step = cfg->n;
    return msp_ets_passive_new(&pc, &wk->pipe);
}

int msp_ets_workers_new(const msp_ets_workers_cfg_t *cfg, msp_ets_workers_t **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->n == 0 || cfg->n > MSP_ETS_WORKERS_MAX) {
        return MSP_ERR_ARGUMENT;
    }
    msp_ets_workers_t *w = calloc(1, sizeof *w);
    if (w == NULL || (w->wk = calloc(cfg->n, sizeof *w->wk)) == NULL) {
        free(w);
        return MSP_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&w->lock, NULL);
    atomic_init(&w->taken, 0);
    atomic_init(&w->stop, 0);
    int rc = MSP_OK;
    for (unsigned k = 0; k < cfg->n && rc == MSP_OK; k++) {
        w->n = k + 1; /* the workers msp_ets_workers_free has to undo, if the next one fails */
        rc = worker_new(w, cfg, k);
    }
    msp_ets_passive_cfg_t tc = cfg->passive;
    tc.cb = NULL; /* never fed: it only sums */
    if (rc == MSP_OK) {
        rc = msp_ets_passive_new(&tc, &w->total);
    }
    if (rc != MSP_OK) {
        msp_ets_workers_free(w);
        return rc;
    }
    *out = w;
    return MSP_OK;
}

static void free_batches(batch_t *b)
{
    while (b != NULL) {
        batch_t *next = b->next;
        free(b);
        b = next;
    }
}

void msp_ets_workers_free(msp_ets_workers_t *w)
{
    if (w == NULL) {
        return;
    }
    for (unsigned k = 0; k < w->n; k++) {
        worker_t *wk = &w->wk[k];
        msp_pcap_in_close(wk->in);
        msp_ets_passive_free(wk->pipe);
        free_batches(wk->head);
        free_batches(wk->spare);
        free(wk->fill);
        pthread_mutex_destroy(&wk->mu);
        pthread_cond_destroy(&wk->queued);
        pthread_cond_destroy(&wk->freed);
    }
    msp_ets_passive_free(w->total);
    pthread_mutex_destroy(&w->lock);
    free(w->wk);
    free(w);
}

unsigned msp_ets_workers_count(const msp_ets_workers_t *w)
{
    return w->n;
}

msp_ets_passive_t *msp_ets_workers_pipe(msp_ets_workers_t *w, unsigned k)
{
    return k < w->n ? w->wk[k].pipe : NULL;
}

msp_ets_passive_t *msp_ets_workers_total(msp_ets_workers_t *w)
{
    return w->total;
}

int msp_ets_workers_add_key(msp_ets_workers_t *w, EVP_PKEY *key, msp_error_t *err)
{
    int rc = msp_ets_passive_add_key(w->total, key, err);
    for (unsigned k = 0; k < w->n && rc == MSP_OK; k++) {
        rc = msp_ets_passive_add_key(w->wk[k].pipe, key, err);
    }
    return rc;
}

void msp_ets_workers_lock(msp_ets_workers_t *w)
{
    pthread_mutex_lock(&w->lock);
}

void msp_ets_workers_unlock(msp_ets_workers_t *w)
{
    pthread_mutex_unlock(&w->lock);
}

void msp_ets_workers_stop(msp_ets_workers_t *w)
{
    atomic_store(&w->stop, 1);
    if (w->reader != NULL) {
        msp_pcap_in_stop(w->reader);
    }
    for (unsigned k = 0; k < w->n; k++) {
        if (w->wk[k].in != NULL) {
            msp_pcap_in_stop(w->wk[k].in);
        }
    }
}

void msp_ets_workers_stats(msp_ets_workers_t *w, msp_ets_workers_stats_t *out)
{
    *out = w->st;
}

/* ---- one packet into a worker's pipeline ---- */

static void feed(worker_t *wk, uint64_t ts_us, const uint8_t *bytes, uint32_t caplen, uint32_t len)
{
    if (wk->rc != MSP_OK) {
        return;
    }
    int rc = msp_ets_passive_packet(wk->pipe, ts_us, wk->w->link, bytes, caplen, len);
    if (rc != MSP_OK) {
        /* as msp_pcap_in_run: the pipeline cannot go on, so neither can the run */
        wk->rc = msp_error_set(&wk->err, rc, NULL, "worker %u: %s", wk->k, msp_error_name(rc));
        msp_ets_workers_stop(wk->w);
    }
}

/* ---- threads ---- */

/* Runs fn on every worker, with the signals blocked there: the caller's thread takes SIGINT and SIGTERM. */
static int start_threads(msp_ets_workers_t *w, void *(*fn)(void *))
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = MSP_OK;
    for (unsigned k = 0; k < w->n && rc == MSP_OK; k++) {
        rc = pthread_create(&w->wk[k].thread, NULL, fn, &w->wk[k]) == 0 ? MSP_OK : MSP_ERR_NO_MEMORY;
        w->wk[k].started = rc == MSP_OK;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Joins the workers, sums their counts into the total; the first failure: a worker's, else the reader's (rerr). */
static int join_threads(msp_ets_workers_t *w, int rc, const msp_error_t *rerr, msp_error_t *err)
{
    const worker_t *failed = NULL;
    for (unsigned k = 0; k < w->n; k++) {
        worker_t *wk = &w->wk[k];
        if (wk->started) {
            pthread_join(wk->thread, NULL);
            wk->started = 0;
        }
        msp_ets_passive_add_counts(w->total, wk->pipe);
        w->st.misrouted += wk->misrouted;
        uint64_t dropped;
        if (wk->in != NULL && msp_pcap_in_dropped(wk->in, &dropped) == MSP_OK) {
            w->st.dropped += dropped;
        }
        if (wk->rc != MSP_OK && failed == NULL) {
            failed = wk; /* what stopped the reader, if it stopped */
        }
    }
    if (failed != NULL) {
        rc = failed->rc;
        rerr = &failed->err;
    }
    if (rc != MSP_OK && err != NULL) {
        *err = *rerr;
    }
    return rc;
}

/* ---- capture file: the reader and the queues ---- */

/* A batch for the reader to fill: a spare one, a new one, or (all in use) the next one the worker frees. */
static batch_t *take_batch(msp_ets_workers_t *w, worker_t *wk)
{
    pthread_mutex_lock(&wk->mu);
    while (wk->spare == NULL && wk->allocated == MSP_ETS_WORKERS_QUEUE + 2) {
        w->st.reader_waits++;
        pthread_cond_wait(&wk->freed, &wk->mu);
    }
    batch_t *b = wk->spare;
    if (b != NULL) {
        wk->spare = b->next;
    } else if ((b = malloc(sizeof *b)) != NULL) {
        wk->allocated++;
    }
    pthread_mutex_unlock(&wk->mu);
    if (b != NULL) {
        b->next = NULL;
        b->count = 0;
        b->used = 0;
    }
    return b;
}

static void hand_over(worker_t *wk)
{
    batch_t *b = wk->fill;
    wk->fill = NULL;
    if (b == NULL || b->count == 0) {
        wk->fill = b;
        return;
    }
    pthread_mutex_lock(&wk->mu);
    if (wk->tail != NULL) {
        wk->tail->next = b;
    } else {
        wk->head = b;
    }
    wk->tail = b;
    pthread_cond_signal(&wk->queued);
    pthread_mutex_unlock(&wk->mu);
}

static void end_queue(worker_t *wk)
{
    hand_over(wk);
    pthread_mutex_lock(&wk->mu);
    wk->eof = 1;
    pthread_cond_signal(&wk->queued);
    pthread_mutex_unlock(&wk->mu);
}

static void on_file_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    msp_ets_workers_t *w = (msp_ets_workers_t *)user;
    if (w->reader_rc != MSP_OK) {
        return;
    }
    worker_t *wk = &w->wk[msp_ets_shard_of(w->link, bytes, h->caplen, w->n)];
    uint32_t cap = h->caplen < MSP_ETS_WORKERS_BATCH_BYTES ? h->caplen : MSP_ETS_WORKERS_BATCH_BYTES;
    batch_t *b = wk->fill;
    if (b != NULL && (b->count == MSP_ETS_WORKERS_BATCH || b->used + cap > MSP_ETS_WORKERS_BATCH_BYTES)) {
        hand_over(wk);
    }
    if (wk->fill == NULL && (wk->fill = take_batch(w, wk)) == NULL) {
        w->reader_rc = MSP_ERR_NO_MEMORY;
        pcap_breakloop(pcap_in_pcap(w->reader));
        return;
    }
    b = wk->fill;
    b->pkt[b->count].ts_us = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
    b->pkt[b->count].caplen = cap; /* a larger packet is cut: the pipeline sees its end as not captured */
    b->pkt[b->count].len = h->len;
    b->pkt[b->count].off = b->used;
    memcpy(b->data + b->used, bytes, cap);
    b->used += cap;
    b->count++;
    w->read++;
    if (w->max != 0 && w->read >= w->max) {
        pcap_breakloop(pcap_in_pcap(w->reader));
    }
}

static void *file_worker(void *arg)
{
    worker_t *wk = arg;
    for (;;) {
        pthread_mutex_lock(&wk->mu);
        while (wk->head == NULL && !wk->eof) {
            pthread_cond_wait(&wk->queued, &wk->mu);
        }
        batch_t *b = wk->head;
        if (b != NULL && (wk->head = b->next) == NULL) {
            wk->tail = NULL;
        }
        pthread_mutex_unlock(&wk->mu);
        if (b == NULL) {
            break; /* the end, and nothing left */
        }
        for (unsigned i = 0; i < b->count; i++) {
            feed(wk, b->pkt[i].ts_us, b->data + b->pkt[i].off, b->pkt[i].caplen, b->pkt[i].len);
        }
        pthread_mutex_lock(&wk->mu);
        b->next = wk->spare;
        wk->spare = b;
        pthread_cond_signal(&wk->freed);
        pthread_mutex_unlock(&wk->mu);
    }
    msp_ets_passive_finish(wk->pipe);
    return NULL;
}

/* Reads the file until its end, a stop, max packets or an error; MSP_OK or why it broke off. */
static int read_file(msp_ets_workers_t *w, msp_error_t *err)
{
    pcap_t *p = pcap_in_pcap(w->reader);
    int n = 0;
    while (!atomic_load(&w->stop) && w->reader_rc == MSP_OK && (w->max == 0 || w->read < w->max)) {
        n = pcap_dispatch(p, MSP_PCAP_BATCH, on_file_packet, (u_char *)w);
        if (n == PCAP_ERROR || n == PCAP_ERROR_BREAK || n == 0) {
            break; /* an error, a stop (or max), the end of the file */
        }
    }
    const char *name = pcap_in_name(w->reader);
    if (w->reader_rc != MSP_OK) {
        return msp_error_set(err, w->reader_rc, NULL, "capture %s: packet %llu: %s", name, (unsigned long long)w->read,
                             msp_error_name(w->reader_rc));
    }
    if (n == PCAP_ERROR) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "capture %s: %s", name, pcap_geterr(p));
    }
    return MSP_OK;
}

int msp_ets_workers_run_file(msp_ets_workers_t *w, msp_pcap_in_t *in, uint64_t max_packets, msp_error_t *err)
{
    if (w->ran || w->live) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "workers: one run each");
    }
    w->ran = 1;
    w->reader = in;
    w->link = msp_pcap_in_link(in);
    w->max = max_packets;
    msp_error_t rerr = {0};
    int rc = start_threads(w, file_worker);
    if (rc != MSP_OK) {
        msp_error_set(&rerr, rc, NULL, "workers: cannot start a thread");
    } else {
        rc = read_file(w, &rerr);
    }
    for (unsigned k = 0; k < w->n; k++) {
        end_queue(&w->wk[k]);
    }
    rc = join_threads(w, rc, &rerr, err);
    w->reader = NULL;
    return rc;
}

/* ---- interface: one socket per worker in a PACKET_FANOUT group ---- */

/*
 * The fanout program: msp_ets_shard_of in classic BPF, on the packet as the
 * kernel holds it when it picks a socket (loads relative to the network
 * header; the protocol from the skb, so VLAN tags already taken off do not
 * matter). The kernel takes the result modulo the sockets in the group,
 * which are the workers in the order they joined.
 */
const struct sock_filter ets_workers_shard_prog[] = {
    BPF_STMT(BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 6),
    /* IPv4: source ^ destination */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 16),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, MSP_ETS_SHARD_MUL),
    BPF_STMT(BPF_JMP | BPF_JA, 24),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 25),
    /* IPv6: the eight words of both addresses xored */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 8),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 16),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 20),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 24),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 28),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 32),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 36),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, MSP_ETS_SHARD_MUL),
    /* both: the upper half */
    BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
    BPF_STMT(BPF_RET | BPF_A, 0),
    /* not IP: the first worker, as msp_ets_shard_of */
    BPF_STMT(BPF_RET | BPF_K, 0),
};
const size_t ets_workers_shard_prog_len = sizeof ets_workers_shard_prog / sizeof ets_workers_shard_prog[0];

static int live_fail(msp_error_t *err, const char *ifname, const char *what)
{
    return msp_error_set(err, MSP_ERR_IO, NULL, "capture %s: %s: %s", ifname, what, strerror(errno));
}

/* Worker k's socket joins the group (the first one makes it, with the program); nothing passes its filter yet. */
static int join_fanout(msp_ets_workers_t *w, unsigned k, uint16_t *group, const char *ifname, msp_error_t *err)
{
    static const struct sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    const struct sock_fprog none = {1, (struct sock_filter *)drop_all};
    const struct sock_fprog prog = {(unsigned short)ets_workers_shard_prog_len,
                                    (struct sock_filter *)ets_workers_shard_prog};
    int fd = pcap_fileno(pcap_in_pcap(w->wk[k].in));
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &none, sizeof none) != 0) {
        return live_fail(err, ifname, "cannot hold the capture back");
    }
    uint32_t arg = k == 0 ? (uint32_t)(PACKET_FANOUT_CBPF | PACKET_FANOUT_FLAG_UNIQUEID) << 16
                          : (uint32_t)PACKET_FANOUT_CBPF << 16 | *group;
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
        return live_fail(err, ifname, "cannot join a PACKET_FANOUT group");
    }
    if (k == 0) {
        socklen_t len = sizeof arg;
        if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, &len) != 0 ||
            setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &prog, sizeof prog) != 0) {
            return live_fail(err, ifname, "cannot set the PACKET_FANOUT program");
        }
        *group = (uint16_t)(arg & 0xffff);
    }
    return MSP_OK;
}

static int live_filter(msp_pcap_in_t *in, const char *ifname, const char *filter, msp_error_t *err)
{
    pcap_t *p = pcap_in_pcap(in);
    struct bpf_program bp;
    if (pcap_compile(p, &bp, filter != NULL ? filter : "", 1, PCAP_NETMASK_UNKNOWN) != 0) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "capture %s: filter: %s", ifname, pcap_geterr(p));
    }
    int ok = pcap_setfilter(p, &bp) == 0;
    pcap_freecode(&bp);
    return ok ? MSP_OK : msp_error_set(err, MSP_ERR_IO, NULL, "capture %s: %s", ifname, pcap_geterr(p));
}

int msp_ets_workers_open_live(msp_ets_workers_t *w, const char *ifname, const char *filter, int promisc,
                              msp_error_t *err)
{
    if (w->ran || w->live) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "workers: one run each");
    }
    w->live = 1;
    uint16_t group = 0;
    int rc = MSP_OK;
    for (unsigned k = 0; k < w->n && rc == MSP_OK; k++) {
        rc = msp_pcap_in_open_live(ifname, NULL, promisc, &w->wk[k].in, err);
        if (rc == MSP_OK) {
            rc = join_fanout(w, k, &group, ifname, err);
        }
    }
    /* every worker is in the group: from here each packet goes to the worker of its shard */
    for (unsigned k = 0; k < w->n && rc == MSP_OK; k++) {
        rc = live_filter(w->wk[k].in, ifname, filter, err);
    }
    if (rc == MSP_OK) {
        w->link = msp_pcap_in_link(w->wk[0].in);
    }
    return rc;
}

static void on_live_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    worker_t *wk = (worker_t *)user;
    msp_ets_workers_t *w = wk->w;
    uint64_t nth = atomic_fetch_add(&w->taken, 1);
    if (w->max != 0 && nth >= w->max) {
        msp_ets_workers_stop(w);
        return;
    }
    wk->misrouted += msp_ets_shard_of(w->link, bytes, h->caplen, w->n) != wk->k;
    feed(wk, (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec, bytes, h->caplen, h->len);
    if (w->max != 0 && nth + 1 == w->max) {
        msp_ets_workers_stop(w);
    }
}

static void *live_worker(void *arg)
{
    worker_t *wk = arg;
    msp_ets_workers_t *w = wk->w;
    pcap_t *p = pcap_in_pcap(wk->in);
    while (!atomic_load(&w->stop) && wk->rc == MSP_OK) {
        if (pcap_dispatch(p, MSP_PCAP_BATCH, on_live_packet, (u_char *)wk) == PCAP_ERROR) {
            wk->rc = msp_error_set(&wk->err, MSP_ERR_IO, NULL, "capture %s: %s", pcap_in_name(wk->in), pcap_geterr(p));
            msp_ets_workers_stop(w);
        }
    }
    msp_ets_passive_finish(wk->pipe);
    return NULL;
}

int msp_ets_workers_run_live(msp_ets_workers_t *w, uint64_t max_packets, msp_error_t *err)
{
    if (!w->live || w->ran || w->wk[w->n - 1].in == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "workers: msp_ets_workers_open_live first, one run each");
    }
    w->ran = 1;
    w->max = max_packets;
    int rc = start_threads(w, live_worker);
    msp_error_t rerr = {0};
    if (rc != MSP_OK) {
        msp_error_set(&rerr, rc, NULL, "workers: cannot start a thread");
        msp_ets_workers_stop(w);
    }
    return join_threads(w, rc, &rerr, err);
}
