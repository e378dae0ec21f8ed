/*
 * Captures for the ETS decryptor, on libpcap: reading packets from a file
 * (pcap or pcapng) or an interface into the passive TCP layer
 * (ets_tcp.h), and writing decrypted flows back out as a plaintext capture.
 *
 * Errors are one line in err->detail, "capture NAME: why".
 */
#ifndef MSP_ETS_PCAP_H
#define MSP_ETS_PCAP_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/error.h"
#include "msp/ets_tcp.h"

struct sockaddr;

#define MSP_PCAP_SNAPLEN 262144           /* live capture: whole packets, even with offloads */
#define MSP_PCAP_TIMEOUT_MS 200           /* live capture: how often a stop request is looked at, at worst */
#define MSP_PCAP_BATCH 256                /* packets per pcap_dispatch */
#define MSP_PCAP_OUT_MSS 16384            /* payload per written segment */
#define MSP_PCAP_OUT_MAX_FLOWS (1u << 20) /* flows open at once in one output */
#define MSP_PCAP_OUT_ROTATE_MIN 64000u    /* the smallest size a rotated output file may be given */

/* ---- input ---- */

typedef struct msp_pcap_in msp_pcap_in_t;

/**
 * Opens a capture file; filter (may be NULL) is a BPF expression. *out gets
 * the capture. MSP_ERR_NO_MEMORY, MSP_ERR_IO (cannot open or read it, or
 * the filter cannot be set), MSP_ERR_SYNTAX (the filter does not compile),
 * MSP_ERR_INVALID (a link type msp_tcp_decode does not understand); *out is
 * NULL on failure.
 */
MSP_API int msp_pcap_in_open_file(const char *path, const char *filter, msp_pcap_in_t **out, msp_error_t *err);

/**
 * Opens an interface: snaplen MSP_PCAP_SNAPLEN, immediate mode, promiscuous
 * only if promisc, optional BPF filter. *out gets the capture; the codes are
 * those of msp_pcap_in_open_file (MSP_ERR_IO also when the interface cannot
 * be opened or activated).
 */
MSP_API int msp_pcap_in_open_live(const char *ifname, const char *filter, int promisc, msp_pcap_in_t **out,
                                  msp_error_t *err);

/**
 * Replaces the capture's BPF filter (NULL or "": none): a filter that needs
 * the link type (msp_ets_shard_filter) is set once the capture is open. The
 * codes of msp_pcap_in_open_file for a filter.
 */
MSP_API int msp_pcap_in_set_filter(msp_pcap_in_t *in, const char *filter, msp_error_t *err);

/** The capture's link type (pass it to msp_tcp_packet). */
MSP_API int msp_pcap_in_link(const msp_pcap_in_t *in);

/**
 * Feeds packets to tcp until the file ends, msp_pcap_in_stop() is called,
 * max_packets were read (0: no limit), or an error. Does not call
 * msp_tcp_finish. MSP_OK also when stopped; *count (may be NULL) gets the
 * packets read by this call.
 */
MSP_API int msp_pcap_in_run(msp_pcap_in_t *in, msp_tcp_t *tcp, uint64_t max_packets, uint64_t *count, msp_error_t *err);

/**
 * fn(arg, in) runs inside msp_pcap_in_run after each batch of packets (at
 * most MSP_PCAP_BATCH), and for an interface also after each read time-out
 * (at least every MSP_PCAP_TIMEOUT_MS while nothing comes): where a program
 * flushes its streams and shows progress. It may call msp_pcap_in_stop.
 * fn NULL: none.
 */
MSP_API void msp_pcap_in_on_batch(msp_pcap_in_t *in, void (*fn)(void *arg, msp_pcap_in_t *in), void *arg);

/**
 * A capture file's progress: *done bytes of it read (up to libpcap's
 * read-ahead), *total its size. MSP_ERR_IO for an interface or a capture
 * that is not a regular file (a pipe: no size).
 */
MSP_API int msp_pcap_in_progress(const msp_pcap_in_t *in, uint64_t *done, uint64_t *total);

/** Asks a running msp_pcap_in_run to return. Async-signal-safe: call it from a SIGINT/SIGTERM handler. */
MSP_API void msp_pcap_in_stop(msp_pcap_in_t *in);

/** Live capture: packets the kernel dropped. MSP_ERR_IO if the capture cannot say (files). */
MSP_API int msp_pcap_in_dropped(msp_pcap_in_t *in, uint64_t *dropped);

/** NULL is ignored. */
MSP_API void msp_pcap_in_close(msp_pcap_in_t *in);

/* ---- plaintext output ---- */

typedef struct msp_pcap_out msp_pcap_out_t;
typedef struct msp_pcap_out_flow msp_pcap_out_flow_t;

typedef struct msp_pcap_out_cfg {
    /*
     * Where it goes. A regular file (or a name not there yet) is written
     * under a temporary name beside it and renamed to it when done: whole
     * or not at all. "-" (standard output), a FIFO or a device is a
     * stream: written in place as packets come (msp_pcap_out_flush), for a
     * reader that dissects it live (tshark -r -, Suricata, Zeek); opening
     * a FIFO waits for its reader.
     */
    const char *path;
    /*
     * Rotation (regular files only; 0: none). The output becomes PATH.0,
     * PATH.1, ...: a file is closed and renamed into place, and the next
     * begun, before a packet that would take it past rotate_bytes (at
     * least MSP_PCAP_OUT_ROTATE_MIN), or once a packet's capture time is
     * rotate_us or more past the file's first packet (capture time, never
     * the clock: a quiet link keeps its file open). Each file is a capture
     * of its own: pcap header, and every flow still open begins in it
     * with a handshake carrying its current sequence numbers.
     */
    uint64_t rotate_bytes;
    uint64_t rotate_us;
} msp_pcap_out_cfg_t;

/**
 * A plaintext capture (Ethernet link type, microsecond timestamps) as cfg
 * says. *out gets it. MSP_ERR_ARGUMENT (no path, rotate_bytes too small,
 * rotation of a stream), MSP_ERR_NO_MEMORY, MSP_ERR_IO (the file cannot be
 * created or started; err->detail "cannot create output PATH: why"); *out
 * is NULL on failure.
 */
MSP_API int msp_pcap_out_new(const msp_pcap_out_cfg_t *cfg, msp_pcap_out_t **out, msp_error_t *err);

/** msp_pcap_out_new with only a path: one file written under a temporary name and renamed, or a stream. */
MSP_API int msp_pcap_out_open(const char *path, msp_pcap_out_t **out, msp_error_t *err);

/**
 * Hands what was written so far to the file or stream (call it after each
 * batch of packets: a stream's reader sees them then). MSP_ERR_IO when the
 * writing failed; err->detail names the output, "output PATH: the reader
 * went away (...)" for a stream whose reader closed it (EPIPE: the caller
 * ignores SIGPIPE). After a failure every write answers MSP_ERR_IO.
 */
MSP_API int msp_pcap_out_flush(msp_pcap_out_t *o, msp_error_t *err);

/** Files begun so far (1 without rotation): the current one is PATH.(files - 1). */
MSP_API uint64_t msp_pcap_out_files(const msp_pcap_out_t *o);

/**
 * Starts a flow with the addresses and ports of info (addr[0]/port[0]: the
 * client): a three-way handshake at ts_us.
 */
MSP_API int msp_pcap_out_flow_begin(msp_pcap_out_t *o, const msp_tcp_flow_info_t *info, uint64_t ts_us,
                                    msp_pcap_out_flow_t **flow, msp_error_t *err);

/**
 * msp_pcap_out_flow_begin for a connection a program relayed: client and
 * server are the peers' socket addresses (AF_INET or AF_INET6, the same
 * family; an IPv4-mapped IPv6 address counts as IPv4), as a middlebox saw
 * them (getpeername). MSP_ERR_ARGUMENT for another family or a mix.
 */
MSP_API int msp_pcap_out_flow_begin_peers(msp_pcap_out_t *o, const struct sockaddr *client,
                                          const struct sockaddr *server, uint64_t ts_us, msp_pcap_out_flow_t **flow,
                                          msp_error_t *err);

/** n bytes from direction dir (0: client to server), in segments of at most MSP_PCAP_OUT_MSS. */
MSP_API int msp_pcap_out_data(msp_pcap_out_t *o, msp_pcap_out_flow_t *flow, int dir, const uint8_t *p, size_t n,
                              uint64_t ts_us, msp_error_t *err);

/** Bytes that are missing in direction dir: the sequence numbers skip them, as a capture with loss would. */
MSP_API int msp_pcap_out_gap(msp_pcap_out_t *o, msp_pcap_out_flow_t *flow, int dir, uint64_t lost, msp_error_t *err);

/** FIN/ACK both ways and the last ACK at ts_us; frees flow. */
MSP_API int msp_pcap_out_flow_end(msp_pcap_out_t *o, msp_pcap_out_flow_t *flow, uint64_t ts_us, msp_error_t *err);

/**
 * Ends the flows still open (at their last timestamp), writes everything
 * out and renames the file into place (a stream is closed). Frees o, also
 * on failure (the temporary file is then removed). o NULL: MSP_OK,
 * nothing done.
 */
MSP_API int msp_pcap_out_close(msp_pcap_out_t *o, msp_error_t *err);

/**
 * Frees o and removes the temporary file: nothing half-written stays (files
 * already rotated into place stay; a stream keeps what its reader got).
 * NULL is ignored.
 */
MSP_API void msp_pcap_out_abort(msp_pcap_out_t *o);

#endif
