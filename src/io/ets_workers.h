/* Inside the library: the PACKET_FANOUT program of ets_workers.c, for the tests to run it. */
#ifndef MSP_IO_ETS_WORKERS_H
#define MSP_IO_ETS_WORKERS_H

#include <stddef.h>

#include <linux/filter.h>

/* msp_ets_shard_of in classic BPF: loads relative to the network header (SKF_NET_OFF), the protocol from the
 * socket buffer (SKF_AD_PROTOCOL); the kernel takes the result modulo the sockets in the group */
extern const struct sock_filter ets_workers_shard_prog[];
extern const size_t ets_workers_shard_prog_len;

#endif
