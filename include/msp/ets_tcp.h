/*
 * Passive TCP for the ETS decryptor (ets.md 7, "Inputs"): packet decoding,
 * a bounded flow table and per-direction reassembly, sans-IO.
 *
 * The caller feeds captured packets (link type, captured bytes, original
 * length, timestamp); the table calls back with flows opening and closing,
 * in-order byte streams per direction and gaps (bytes that will never be
 * seen). Time is the packets' timestamps only, never the wall clock.
 *
 * Direction 0 is the client: the sender of the SYN, or the receiver of a
 * SYN-ACK. When neither was seen (the capture began mid-connection, or the
 * SYN was lost; info->initiator_guessed is then set): the side whose port
 * was not seen listening, when exactly one of the two ports was
 * (info->roles_from_port; a port listens once a SYN went to it or a SYN-ACK
 * came from it, on any address, earlier in the capture), else the sender of
 * the first payload byte.
 *
 * Reassembly policy:
 *  - sequence numbers are compared with 32-bit serial arithmetic;
 *  - overlaps and retransmissions: the first copy of a byte wins (what most
 *    IDSs do); later copies are dropped without comparison;
 *  - in-order data goes from the packet buffer straight to the data callback
 *    (zero copy); only out-of-order segments are copied and buffered;
 *  - a hole is given up (gap callback with its exact size, then delivery
 *    continues after it) when buffering the next segment would exceed the
 *    per-direction window, the global budget or the segment count, and when
 *    the flow closes (FIN in both directions, RST, idle, eviction, end of
 *    input);
 *  - bytes announced by the IP length but not captured (caplen < len) are a
 *    gap as soon as delivery reaches them in order;
 *  - keep-alives (1 byte below the next sequence number) and retransmitted
 *    data are dropped; a zero-window probe's byte is data like any other.
 *  - a flow closes as soon as both FINs were seen (remaining holes become
 *    gaps);
 *  - late segments: a connection closed by FIN or RST is remembered for
 *    late_us of capture time (at most max_closed of them, the most recent
 *    kept); a segment with data and without SYN that arrives for it within
 *    the window of where its direction stood (a retransmission after the
 *    FINs, the server's flight still in flight behind a client's RST) is
 *    counted as late and dropped instead of opening a flow with guessed,
 *    often swapped, roles. Anything else on those ports (a SYN, a sequence
 *    number far away) is a new connection.
 */
#ifndef MSP_ETS_TCP_H
#define MSP_ETS_TCP_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/buf.h"

#define MSP_TCP_MAX_FLOWS_DEFAULT 65536u     /* flows open at once; the least recently active is evicted */
#define MSP_TCP_WINDOW_DEFAULT (4u << 20)    /* sequence space buffered ahead of the next byte, per direction */
#define MSP_TCP_BUDGET_DEFAULT (256u << 20)  /* out-of-order bytes buffered over all flows */
#define MSP_TCP_MAX_SEGS_DEFAULT 8192u       /* out-of-order segments buffered per direction */
#define MSP_TCP_IDLE_DEFAULT_US 600000000ull /* 10 minutes of capture time */
#define MSP_TCP_MAX_BUCKETS (1u << 20)       /* hash buckets are at most this many (chains beyond) */
#define MSP_TCP_MAX_IP6_EXT 8                /* IPv6 extension headers walked before giving up */
#define MSP_TCP_MAX_VLAN 4                   /* stacked 802.1Q/802.1ad tags */
#define MSP_TCP_CLOSED_DEFAULT 16384u        /* closed connections remembered for their late segments */
#define MSP_TCP_LATE_DEFAULT_US 60000000u    /* for 60 s of capture time: Linux's TIME_WAIT (2 MSL) */
#define MSP_TCP_MAX_CLOSED (1u << 20)        /* max_closed is at most this */

/* Link types, as pcap_datalink() reports them (and the file LINKTYPE_ values that differ). */
enum {
    MSP_TCP_LINK_NULL = 0,       /* BSD loopback, AF_ in host order */
    MSP_TCP_LINK_EN10MB = 1,     /* Ethernet, 802.1Q / 802.1ad tags skipped */
    MSP_TCP_LINK_RAW = 12,       /* raw IP (DLT_RAW on most systems) */
    MSP_TCP_LINK_RAW_BSD = 14,   /* raw IP (DLT_RAW on OpenBSD) */
    MSP_TCP_LINK_RAW_FILE = 101, /* LINKTYPE_RAW */
    MSP_TCP_LINK_LOOP = 108,     /* OpenBSD loopback, AF_ in network order */
    MSP_TCP_LINK_SLL = 113,      /* Linux cooked capture v1 */
    MSP_TCP_LINK_IPV4 = 228,
    MSP_TCP_LINK_IPV6 = 229,
    MSP_TCP_LINK_SLL2 = 276, /* Linux cooked capture v2 */
};

/* TCP flags */
#define MSP_TCP_FIN 0x01
#define MSP_TCP_SYN 0x02
#define MSP_TCP_RST 0x04
#define MSP_TCP_PSH 0x08
#define MSP_TCP_ACK 0x10

/** Why a packet was not passed on as TCP. */
typedef enum msp_tcp_verdict {
    MSP_TCP_OK = 0,       /* a TCP segment */
    MSP_TCP_NOT_TCP,      /* not IP, or IP carrying something else */
    MSP_TCP_FRAGMENT,     /* an IPv4 or IPv6 fragment (never reassembled) */
    MSP_TCP_TRUNCATED,    /* the headers themselves were not captured */
    MSP_TCP_MALFORMED,    /* a header contradicts itself or the lengths */
    MSP_TCP_UNSUPPORTED,  /* an IPv6 extension header we cannot walk (ESP, too many) */
    MSP_TCP_UNKNOWN_LINK, /* a link type not listed above */
} msp_tcp_verdict_t;

/** A decoded TCP segment; also the description the builder takes. */
typedef struct msp_tcp_pkt {
    uint8_t ip_version;       /* 4 or 6 */
    uint8_t src[16], dst[16]; /* IPv4: the first 4 bytes */
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t window;
    uint16_t vlan;          /* outermost 802.1Q VLAN id + 1, 0 = untagged (builder: tag with vlan - 1) */
    const uint8_t *payload; /* the captured payload, inside the packet */
    size_t payload_len;     /* captured payload bytes */
    size_t wire_len;        /* payload bytes by the IP length (>= payload_len; more when truncated) */
} msp_tcp_pkt_t;

/** Decodes one captured packet (caplen bytes at p, len on the wire). Never reads past p + caplen. */
MSP_API msp_tcp_verdict_t msp_tcp_decode(int link, const uint8_t *p, size_t caplen, size_t len, msp_tcp_pkt_t *pkt);

/** True for the link types msp_tcp_decode understands. */
MSP_API int msp_tcp_link_supported(int link);

/** A short name for a verdict ("fragment", ...). */
MSP_API const char *msp_tcp_verdict_name(msp_tcp_verdict_t v);

/**
 * Appends a packet for pkt (payload_len bytes of payload; wire_len is
 * ignored) on link EN10MB (with a VLAN tag if pkt->vlan), RAW, SLL, SLL2,
 * NULL or LOOP, with valid IPv4 and TCP checksums. MSP_ERR_ARGUMENT for
 * another link type, a bad IP version or a payload that does not fit an IP
 * packet.
 */
MSP_API int msp_tcp_build(int link, const msp_tcp_pkt_t *pkt, msp_buf_t *out);

/* ---- flow table and reassembly ---- */

typedef enum msp_tcp_close_reason {
    MSP_TCP_CLOSE_FIN = 0, /* FIN seen in both directions */
    MSP_TCP_CLOSE_RST,     /* RST seen in either direction */
    MSP_TCP_CLOSE_IDLE,    /* no packet for the idle time (capture timestamps) */
    MSP_TCP_CLOSE_END,     /* end of input (msp_tcp_finish) */
    MSP_TCP_CLOSE_EVICTED, /* the table was full; least recently active flow */
    MSP_TCP_CLOSE_REUSED,  /* a new SYN on the same addresses and ports */
} msp_tcp_close_reason_t;

MSP_API const char *msp_tcp_close_reason_name(msp_tcp_close_reason_t r);

typedef struct msp_tcp_flow_info {
    uint64_t id;         /* 1, 2, ... in order of opening (msp_tcp_config_t.id_first, id_step) */
    uint8_t ip_version;  /* 4 or 6 */
    uint8_t addr[2][16]; /* addr[dir] = the sender of direction dir; addr[0] the client */
    uint16_t port[2];
    uint64_t first_ts_us; /* the packet that opened the flow */
    uint64_t last_ts_us;
    int initiator_guessed; /* no SYN / SYN-ACK seen: roles from a listening port, else from the first payload byte */
    uint64_t bytes[2];     /* delivered per direction */
    uint64_t lost[2];      /* reported as gaps per direction */
    int roles_from_port;   /* initiator_guessed, and the server is the side whose port was seen listening */
} msp_tcp_flow_info_t;

typedef struct msp_tcp_flow msp_tcp_flow_t;

MSP_API const msp_tcp_flow_info_t *msp_tcp_flow_info(const msp_tcp_flow_t *flow);
MSP_API void msp_tcp_flow_set_user(msp_tcp_flow_t *flow, void *user);
MSP_API void *msp_tcp_flow_user(const msp_tcp_flow_t *flow);

/**
 * Stops delivery for this flow (the caller is not interested): its data is
 * neither buffered nor passed on any more, gaps are not reported; open and
 * close still are.
 */
MSP_API void msp_tcp_flow_ignore(msp_tcp_flow_t *flow);

/*
 * Callbacks (any may be NULL). They run inside msp_tcp_packet/msp_tcp_finish
 * and must not call either. p in data() points into the caller's packet or
 * into our buffer: valid only during the call.
 */
typedef struct msp_tcp_callbacks {
    void (*flow_open)(void *ctx, msp_tcp_flow_t *flow, const msp_tcp_flow_info_t *info);
    void (*data)(void *ctx, msp_tcp_flow_t *flow, int dir, const uint8_t *p, size_t n, uint64_t ts_us);
    void (*gap)(void *ctx, msp_tcp_flow_t *flow, int dir, uint64_t lost, uint64_t ts_us);
    void (*flow_close)(void *ctx, msp_tcp_flow_t *flow, msp_tcp_close_reason_t reason);
} msp_tcp_callbacks_t;

typedef struct msp_tcp_config {
    size_t max_flows;  /* >= 1 */
    uint32_t window;   /* 1 .. 2^30 */
    size_t budget;     /* bytes */
    size_t max_segs;   /* per direction, >= 1 */
    uint64_t idle_us;  /* 0: never idle */
    uint64_t hash_key; /* any value; vary it to make hash collisions unpredictable */
    size_t max_closed; /* connections closed by FIN or RST remembered, <= MSP_TCP_MAX_CLOSED; 0: none */
    uint64_t late_us;  /* for how long (capture time) their late segments are recognised; 0: not at all */
    /* flow ids are id_first, id_first + id_step, ... (0 counts as 1): tables fed side by side (one per worker
     * of msp_ets_workers, ets_workers.h) give ids unique among them */
    uint64_t id_first, id_step;
} msp_tcp_config_t;

MSP_API void msp_tcp_config_default(msp_tcp_config_t *cfg);

typedef struct msp_tcp_stats {
    uint64_t packets;       /* fed */
    uint64_t bytes;         /* captured bytes fed */
    uint64_t tcp;           /* decoded TCP segments */
    uint64_t non_tcp;       /* skipped: not TCP over IP */
    uint64_t fragments;     /* skipped: IP fragments */
    uint64_t truncated;     /* caplen < len (counted whether or not the headers survived) */
    uint64_t malformed;     /* skipped: bad or truncated headers, unsupported IPv6 extensions */
    uint64_t no_flow;       /* TCP without payload or SYN for no known flow (ignored) */
    uint64_t delivered;     /* payload bytes passed to data() */
    uint64_t duplicate;     /* payload bytes dropped as already seen */
    uint64_t flows;         /* opened */
    uint64_t flows_open;    /* open now */
    uint64_t gaps;          /* gap() calls */
    uint64_t gap_bytes;     /* bytes they reported */
    uint64_t evicted;       /* flows closed because the table was full */
    uint64_t idle;          /* flows closed as idle */
    uint64_t buffered;      /* out-of-order bytes held now */
    uint64_t buffered_peak; /* the most ever held */
    uint64_t late;          /* segments with data of a connection closed by FIN or RST shortly before: dropped */
    uint64_t last_ts_us;    /* the latest timestamp of a TCP segment fed (0: none yet) */
} msp_tcp_stats_t;

typedef struct msp_tcp msp_tcp_t;

/**
 * A new table (cfg NULL: defaults; cb NULL: no callbacks); *out gets it.
 * MSP_ERR_ARGUMENT for a config out of its ranges, MSP_ERR_NO_MEMORY; *out
 * is NULL on failure.
 */
MSP_API int msp_tcp_new(const msp_tcp_config_t *cfg, const msp_tcp_callbacks_t *cb, void *ctx, msp_tcp_t **out);

/**
 * Feeds one captured packet. Packets that are not TCP, or broken, are
 * counted in the statistics and skipped with MSP_OK; MSP_ERR_ARGUMENT for an
 * unsupported link type, MSP_ERR_NO_MEMORY if a flow or segment could not be
 * allocated (the packet is then lost, the table stays consistent).
 */
MSP_API int msp_tcp_packet(msp_tcp_t *t, int link, const uint8_t *p, size_t caplen, size_t len, uint64_t ts_us);

/** Feeds an already decoded segment (same rules). */
MSP_API int msp_tcp_segment(msp_tcp_t *t, const msp_tcp_pkt_t *pkt, uint64_t ts_us);

/** Closes every open flow (reason end of input), reporting their holes as gaps. */
MSP_API void msp_tcp_finish(msp_tcp_t *t);

MSP_API const msp_tcp_stats_t *msp_tcp_stats(const msp_tcp_t *t);

/** Frees the table; flows still open are dropped without callbacks (call msp_tcp_finish first). NULL is ignored. */
MSP_API void msp_tcp_free(msp_tcp_t *t);

#endif
