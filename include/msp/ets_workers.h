/*
 * The passive pipeline (ets_passive.h) on several cores: N worker threads,
 * each with its own msp_ets_passive_t, each given the flows of its shard
 * (ets_shard.h: a symmetric hash of the IP address pair, so both directions
 * of a connection, and every connection between one client and one server,
 * reach the same worker in capture order; a resumption finds its ticket in
 * its worker's own store, without locking and without a race).
 *
 *   msp_ets_workers_cfg_t cfg = {.n = 4};
 *   msp_ets_passive_cfg_default(&cfg.passive);
 *   cfg.passive.cb = &my_callbacks;  cfg.worker_arg = my_args;   // my_args[k]: worker k's own
 *   msp_ets_workers_t *w;
 *   msp_ets_workers_new(&cfg, &w);
 *   msp_ets_workers_add_key(w, static_key, &err);
 *   capture file: msp_ets_workers_run_file(w, in, 0, &err);   // in from msp_pcap_in_open_file
 *   interface:    msp_ets_workers_open_live(w, "eth1", NULL, 1, &err); msp_ets_workers_run_live(w, 0, &err);
 *   ... msp_ets_workers_total(w): the summed counts, for msp_ets_passive_summary_json ...
 *   msp_ets_workers_free(w);
 *
 * A capture file is read by the calling thread, which decodes each packet
 * just enough to hash it and hands packets in batches to the workers through
 * bounded queues (MSP_ETS_WORKERS_QUEUE batches each): when a worker is
 * behind, the reader waits; nothing is dropped. An interface is read by the
 * workers themselves: one AF_PACKET socket each, joined in one PACKET_FANOUT
 * group whose classic BPF program computes the same shard in the kernel.
 *
 * The callbacks of different workers run at the same time, each on its
 * worker's thread, with that worker's argument. What they share (an output
 * file, a counter) they use under msp_ets_workers_lock or their own lock;
 * what one worker's callbacks touch alone (a flow's files) needs none. A
 * flow is seen by one worker from its open to its end.
 *
 * Flow ids are unique among the workers and the same from one run to the
 * next: worker k (0-based) of n numbers its flows k+1, k+1+n, k+1+2n, ...
 * (with n = 1: 1, 2, 3, ... as msp_ets_passive_t alone).
 *
 * Bounds: the limits of cfg.passive (tcp.max_flows, tcp.budget,
 * max_tickets) are the totals: each worker gets its share, rounded up.
 * Queued packets: at most n * (MSP_ETS_WORKERS_QUEUE + 2) batches of
 * MSP_ETS_WORKERS_BATCH_BYTES.
 */
#ifndef MSP_ETS_WORKERS_H
#define MSP_ETS_WORKERS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/api.h"
#include "msp/error.h"
#include "msp/ets_passive.h"
#include "msp/ets_pcap.h"

#define MSP_ETS_WORKERS_MAX 256                  /* worker threads at most */
#define MSP_ETS_WORKERS_BATCH 256                /* packets handed over at once (capture files) */
#define MSP_ETS_WORKERS_BATCH_BYTES (512u << 10) /* captured bytes of one batch; a larger packet is cut to it */
#define MSP_ETS_WORKERS_QUEUE 4                  /* batches waiting per worker before the reader waits */

typedef struct msp_ets_workers msp_ets_workers_t;

typedef struct msp_ets_workers_cfg {
    unsigned n;                    /* workers, 1 .. MSP_ETS_WORKERS_MAX */
    msp_ets_passive_cfg_t passive; /* every worker's pipeline; its limits are totals, divided among the workers */
    void *const *worker_arg; /* NULL: every worker's callbacks get passive.arg; else worker k gets worker_arg[k] */
} msp_ets_workers_cfg_t;

/** MSP_OK; MSP_ERR_ARGUMENT for n out of range or a bad passive config; MSP_ERR_NO_MEMORY. */
MSP_API int msp_ets_workers_new(const msp_ets_workers_cfg_t *cfg, msp_ets_workers_t **out);

/** Closes live captures still open, frees the pipelines. Not while a run is going on. NULL is ignored. */
MSP_API void msp_ets_workers_free(msp_ets_workers_t *w);

MSP_API unsigned msp_ets_workers_count(const msp_ets_workers_t *w);

/** Worker k's pipeline (k < n), for what ets_passive.h offers beyond what is here; NULL for k out of range. */
MSP_API msp_ets_passive_t *msp_ets_workers_pipe(msp_ets_workers_t *w, unsigned k);

/** msp_ets_passive_add_key on every worker (and on the total, so that its key count says what was loaded). */
MSP_API int msp_ets_workers_add_key(msp_ets_workers_t *w, EVP_PKEY *key, msp_error_t *err);

/**
 * Reads the capture in (borrowed; its filter applies) in the calling thread
 * and decrypts it on the workers until it ends, msp_pcap_in_stop(in) or
 * msp_ets_workers_stop(w) is called (from a signal handler too), or
 * max_packets were read (0: no limit); then every worker finishes its
 * pipeline (all its flows end) and the counts are summed into the total.
 * Once per w. MSP_OK also when stopped; MSP_ERR_IO when the capture broke
 * off (what came before is decrypted); a worker's MSP_ERR_NO_MEMORY.
 * err->detail says why, "capture NAME: ...".
 */
MSP_API int msp_ets_workers_run_file(msp_ets_workers_t *w, msp_pcap_in_t *in, uint64_t max_packets, msp_error_t *err);

/**
 * Opens interface ifname once per worker (as msp_pcap_in_open_live) and
 * joins the captures in one PACKET_FANOUT group (Linux) whose classic BPF
 * program sends each packet to the worker of its shard; filter (may be
 * NULL) applies to each. Nothing is captured before every worker is in the
 * group. The codes of msp_pcap_in_open_live; MSP_ERR_IO also when the
 * fanout group cannot be made (another system, or no CAP_NET_RAW).
 */
MSP_API int msp_ets_workers_open_live(msp_ets_workers_t *w, const char *ifname, const char *filter, int promisc,
                                      msp_error_t *err);

/**
 * Captures on every worker until msp_ets_workers_stop(w) or max_packets
 * (0: no limit; counted over all the workers), then finishes every pipeline
 * and sums the counts, as msp_ets_workers_run_file. Once per w, after
 * msp_ets_workers_open_live.
 */
MSP_API int msp_ets_workers_run_live(msp_ets_workers_t *w, uint64_t max_packets, msp_error_t *err);

/** Asks a run to return. Async-signal-safe: call it from a SIGINT/SIGTERM handler. */
MSP_API void msp_ets_workers_stop(msp_ets_workers_t *w);

/**
 * A lock for what the callbacks of different workers share (one output
 * file written by several): take it around each use, never across calls
 * into the library.
 */
MSP_API void msp_ets_workers_lock(msp_ets_workers_t *w);
MSP_API void msp_ets_workers_unlock(msp_ets_workers_t *w);

/**
 * A pipeline that is never fed: the keys added, and after a run the counts,
 * TCP statistics and first failure of every worker summed
 * (msp_ets_passive_add_counts). Give it to msp_ets_passive_summary_json,
 * msp_ets_passive_counts, msp_ets_passive_error. Owned by w.
 */
MSP_API msp_ets_passive_t *msp_ets_workers_total(msp_ets_workers_t *w);

typedef struct msp_ets_workers_stats {
    uint64_t reader_waits; /* capture file: times the reader found a worker's queue full and waited */
    uint64_t misrouted;    /* interface: packets the kernel gave a worker other than msp_ets_shard_of's (0) */
    uint64_t dropped;      /* interface: packets the kernel dropped, summed over the workers' sockets */
} msp_ets_workers_stats_t;

/** After a run. */
MSP_API void msp_ets_workers_stats(msp_ets_workers_t *w, msp_ets_workers_stats_t *out);

#endif
