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

/** Asks a running msp_pcap_in_run to return. Async-signal-safe: call it from a SIGINT/SIGTERM handler. */
MSP_API void msp_pcap_in_stop(msp_pcap_in_t *in);

/** Live capture: packets the kernel dropped. MSP_ERR_IO if the capture cannot say (files). */
MSP_API int msp_pcap_in_dropped(msp_pcap_in_t *in, uint64_t *dropped);

/** NULL is ignored. */
MSP_API void msp_pcap_in_close(msp_pcap_in_t *in);

/* ---- plaintext output ---- */

typedef struct msp_pcap_out msp_pcap_out_t;
typedef struct msp_pcap_out_flow msp_pcap_out_flow_t;

/**
 * A pcap (Ethernet link type, microsecond timestamps) written under a
 * temporary name beside path and renamed to path by msp_pcap_out_close.
 * *out gets it. MSP_ERR_NO_MEMORY, MSP_ERR_IO (the temporary file cannot be
 * created or started); *out is NULL on failure.
 */
MSP_API int msp_pcap_out_open(const char *path, msp_pcap_out_t **out, msp_error_t *err);

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
 * out and renames the file into place. Frees o, also on failure (the
 * temporary file is then removed). o NULL: MSP_OK, nothing done.
 */
MSP_API int msp_pcap_out_close(msp_pcap_out_t *o, msp_error_t *err);

/** Frees o and removes the temporary file: nothing half-written stays. NULL is ignored. */
MSP_API void msp_pcap_out_abort(msp_pcap_out_t *o);

#endif
