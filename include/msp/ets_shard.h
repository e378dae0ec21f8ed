/*
 * Sharding a capture by flow, for msp ets decrypt on several cores
 * (ets_workers.h) and several hosts (docs/ets-deploy.md).
 *
 * The shard of a packet is a symmetric hash of its IP address pair, not of
 * the 4-tuple: both directions of a connection land in the same shard, and
 * so does every connection between one client and one server. A resumption
 * is therefore seen by the pipeline that saw the NewSessionTicket it uses,
 * and each shard keeps its own ticket store.
 *
 *   w     = (src ^ dst) as 32-bit big-endian words xored together
 *           (IPv4: one word each; IPv6: four each)
 *   shard = ((w * 2654435761) mod 2^32 >> 16) mod n
 *
 * The same expression exists as a pcap filter (msp_ets_shard_filter: a
 * tcpdump expression, for a host given shard k of n by a BPF filter) and as
 * the classic BPF program the kernel's PACKET_FANOUT runs for a live capture.
 * One pair of busy hosts stays on one shard: balance comes from many pairs.
 */
#ifndef MSP_ETS_SHARD_H
#define MSP_ETS_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "msp/api.h"
#include "msp/ets_tcp.h"

#define MSP_ETS_SHARD_MAX 1024        /* shards at most */
#define MSP_ETS_SHARD_MUL 2654435761u /* Knuth's multiplier: spreads addresses that differ in a few bits */
#define MSP_ETS_SHARD_FILTER_MAX 1024 /* bytes of a filter expression, its NUL included */

/** The shard (0 .. n-1) of two IP addresses (ip_version 4: the first 4 bytes of each); the order does not matter. */
MSP_API unsigned msp_ets_shard_of_addrs(int ip_version, const uint8_t a[16], const uint8_t b[16], unsigned n);

/**
 * The shard (0 .. n-1) of a captured packet (link type as ets_tcp.h). A
 * packet that is not TCP over IP (msp_tcp_decode) is in shard 0: it holds
 * nothing to decrypt, it is only counted there. n 0 counts as 1.
 */
MSP_API unsigned msp_ets_shard_of(int link, const uint8_t *bytes, size_t caplen, unsigned n);

/**
 * The pcap filter expression (tcpdump syntax) that keeps the IPv4 and IPv6
 * packets of shard k of n, on link type link (Ethernet: also under one
 * 802.1Q tag), into out (cap bytes). On BSD loopback captures (link NULL)
 * libpcap's ip6 means the AF_INET6 of the system running the filter. MSP_ERR_ARGUMENT for n outside
 * 1..MSP_ETS_SHARD_MAX or k >= n, MSP_ERR_LIMIT when cap is too small.
 */
MSP_API int msp_ets_shard_filter(int link, unsigned k, unsigned n, char *out, size_t cap);

#endif
