/*
 * Link, IP and TCP header decoding for the passive TCP layer (ets_tcp.h): the passive copy of the packets an ETS
 * middlebox gets (TS 103 523-3 4.1-4.2, ets.md 2). No ETS clause governs the headers themselves.
 */
#include "msp/ets_tcp.h"

#include <string.h>

#include "msp/error.h"
#include "reader.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_QINQ_OLD 0x9100

#define IPPROTO_TCP_ 6
#define IP6_HOPOPTS 0
#define IP6_ROUTING 43
#define IP6_FRAGMENT 44
#define IP6_AH 51
#define IP6_DSTOPTS 60

/* What the link layer carries: an IP version, or 0 for something else. */
typedef struct link_out {
    int ip;
    uint16_t vlan;
} link_out_t;

static int ethertype_ip(uint16_t type)
{
    return type == ETHERTYPE_IPV4 ? 4 : type == ETHERTYPE_IPV6 ? 6 : 0;
}

static msp_tcp_verdict_t link_ethernet(msp_reader_t *r, link_out_t *out)
{
    const uint8_t *macs;
    uint16_t type;
    if (msp_read_bytes(r, 12, &macs) != MSP_OK || msp_read_u16(r, &type) != MSP_OK) {
        return MSP_TCP_TRUNCATED;
    }
    for (int i = 0; type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ_OLD; i++) {
        uint16_t tci;
        if (i == MSP_TCP_MAX_VLAN) {
            return MSP_TCP_NOT_TCP;
        }
        if (msp_read_u16(r, &tci) != MSP_OK || msp_read_u16(r, &type) != MSP_OK) {
            return MSP_TCP_TRUNCATED;
        }
        if (out->vlan == 0) {
            out->vlan = (uint16_t)((tci & 0x0fff) + 1);
        }
    }
    out->ip = ethertype_ip(type);
    return MSP_TCP_OK;
}

/* BSD loopback: an AF_ value in the capturing host's byte order (NULL) or network order (LOOP). */
static msp_tcp_verdict_t link_null(msp_reader_t *r, link_out_t *out)
{
    uint32_t af;
    if (msp_read_u32(r, &af) != MSP_OK) {
        return MSP_TCP_TRUNCATED;
    }
    if (af > 0xffff) {
        af = ((af & 0xff) << 24) | ((af & 0xff00) << 8) | ((af >> 8) & 0xff00) | (af >> 24);
    }
    /* AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS) */
    out->ip = af == 2 ? 4 : (af == 10 || af == 24 || af == 28 || af == 30) ? 6 : 0;
    return MSP_TCP_OK;
}

static msp_tcp_verdict_t link_sll(msp_reader_t *r, int v2, link_out_t *out)
{
    const uint8_t *hdr;
    uint16_t proto;
    if (v2) {
        /* protocol, reserved, ifindex, hatype, pkttype, halen, address[8] */
        if (msp_read_u16(r, &proto) != MSP_OK || msp_read_bytes(r, 18, &hdr) != MSP_OK) {
            return MSP_TCP_TRUNCATED;
        }
    } else {
        /* pkttype, hatype, halen, address[8], protocol */
        if (msp_read_bytes(r, 14, &hdr) != MSP_OK || msp_read_u16(r, &proto) != MSP_OK) {
            return MSP_TCP_TRUNCATED;
        }
    }
    out->ip = ethertype_ip(proto);
    return MSP_TCP_OK;
}

static msp_tcp_verdict_t link_raw(const msp_reader_t *r, link_out_t *out)
{
    uint8_t b;
    if (msp_peek_u8(r, &b) != MSP_OK) {
        return MSP_TCP_TRUNCATED;
    }
    out->ip = (b >> 4) == 4 ? 4 : (b >> 4) == 6 ? 6 : 0;
    return MSP_TCP_OK;
}

int msp_tcp_link_supported(int link)
{
    switch (link) {
    case MSP_TCP_LINK_NULL:
    case MSP_TCP_LINK_EN10MB:
    case MSP_TCP_LINK_RAW:
    case MSP_TCP_LINK_RAW_BSD:
    case MSP_TCP_LINK_RAW_FILE:
    case MSP_TCP_LINK_LOOP:
    case MSP_TCP_LINK_SLL:
    case MSP_TCP_LINK_IPV4:
    case MSP_TCP_LINK_IPV6:
    case MSP_TCP_LINK_SLL2:
        return 1;
    default:
        return 0;
    }
}

static msp_tcp_verdict_t decode_link(int link, msp_reader_t *r, link_out_t *out)
{
    switch (link) {
    case MSP_TCP_LINK_EN10MB:
        return link_ethernet(r, out);
    case MSP_TCP_LINK_NULL:
    case MSP_TCP_LINK_LOOP:
        return link_null(r, out);
    case MSP_TCP_LINK_SLL:
        return link_sll(r, 0, out);
    case MSP_TCP_LINK_SLL2:
        return link_sll(r, 1, out);
    case MSP_TCP_LINK_RAW:
    case MSP_TCP_LINK_RAW_BSD:
    case MSP_TCP_LINK_RAW_FILE:
        return link_raw(r, out);
    case MSP_TCP_LINK_IPV4:
        out->ip = 4;
        return MSP_TCP_OK;
    case MSP_TCP_LINK_IPV6:
        out->ip = 6;
        return MSP_TCP_OK;
    default:
        return MSP_TCP_UNKNOWN_LINK;
    }
}

/*
 * The IP payload: *body is what was captured of it (at most what the IP
 * length announces), *wire what the IP length announces. wire_left is what
 * the original packet had after the link header (for a zero IPv4 length:
 * TSO captures).
 */
static msp_tcp_verdict_t decode_ipv4(msp_reader_t *r, size_t wire_left, msp_tcp_pkt_t *pkt, msp_reader_t *body,
                                     size_t *wire)
{
    uint8_t vihl, tos, ttl, proto;
    uint16_t total, id, frag, sum;
    const uint8_t *src, *dst, *opts;
    if (msp_read_u8(r, &vihl) != MSP_OK || msp_read_u8(r, &tos) != MSP_OK || msp_read_u16(r, &total) != MSP_OK ||
        msp_read_u16(r, &id) != MSP_OK || msp_read_u16(r, &frag) != MSP_OK || msp_read_u8(r, &ttl) != MSP_OK ||
        msp_read_u8(r, &proto) != MSP_OK || msp_read_u16(r, &sum) != MSP_OK || msp_read_bytes(r, 4, &src) != MSP_OK ||
        msp_read_bytes(r, 4, &dst) != MSP_OK) {
        return MSP_TCP_TRUNCATED;
    }
    size_t ihl = (size_t)(vihl & 0x0f) * 4;
    if ((vihl >> 4) != 4 || ihl < 20) {
        return MSP_TCP_MALFORMED;
    }
    if (msp_read_bytes(r, ihl - 20, &opts) != MSP_OK) {
        return MSP_TCP_TRUNCATED;
    }
    if (total == 0) {
        total = wire_left > 0xffff ? 0xffff : (uint16_t)wire_left; /* segmentation offload: length left to the NIC */
    }
    if (total < ihl) {
        return MSP_TCP_MALFORMED;
    }
    if ((frag & 0x3fff) != 0) { /* MF set or an offset: a fragment */
        return MSP_TCP_FRAGMENT;
    }
    if (proto != IPPROTO_TCP_) {
        return MSP_TCP_NOT_TCP;
    }
    pkt->ip_version = 4;
    memcpy(pkt->src, src, 4);
    memcpy(pkt->dst, dst, 4);
    *wire = total - ihl;
    size_t have = msp_reader_left(r);
    return msp_read_sub(r, have < *wire ? have : *wire, body) == MSP_OK ? MSP_TCP_OK : MSP_TCP_MALFORMED;
}

/* Walks the extension headers we can skip, up to TCP. */
static msp_tcp_verdict_t skip_ipv6_ext(msp_reader_t *r, uint8_t *next, size_t *wire)
{
    for (int i = 0; i <= MSP_TCP_MAX_IP6_EXT; i++) {
        uint8_t nh, hlen;
        size_t size;
        if (*next == IPPROTO_TCP_) {
            return MSP_TCP_OK;
        }
        if (*next != IP6_HOPOPTS && *next != IP6_ROUTING && *next != IP6_DSTOPTS && *next != IP6_FRAGMENT &&
            *next != IP6_AH) {
            return *next == 50 ? MSP_TCP_UNSUPPORTED : MSP_TCP_NOT_TCP; /* ESP hides the rest */
        }
        if (i == MSP_TCP_MAX_IP6_EXT) {
            return MSP_TCP_UNSUPPORTED;
        }
        if (msp_read_u8(r, &nh) != MSP_OK || msp_read_u8(r, &hlen) != MSP_OK) {
            return MSP_TCP_TRUNCATED;
        }
        if (*next == IP6_FRAGMENT) {
            uint16_t off;
            const uint8_t *ident;
            if (msp_read_u16(r, &off) != MSP_OK || msp_read_bytes(r, 4, &ident) != MSP_OK) {
                return MSP_TCP_TRUNCATED;
            }
            if ((off & 0xfff9) != 0) { /* an offset or M: a real fragment (an atomic one is just skipped) */
                return MSP_TCP_FRAGMENT;
            }
            size = 8;
        } else {
            const uint8_t *rest;
            size = *next == IP6_AH ? ((size_t)hlen + 2) * 4 : ((size_t)hlen + 1) * 8;
            if (msp_read_bytes(r, size - 2, &rest) != MSP_OK) {
                return MSP_TCP_TRUNCATED;
            }
        }
        if (*wire < size) {
            return MSP_TCP_MALFORMED;
        }
        *wire -= size;
        *next = nh;
    }
    return MSP_TCP_UNSUPPORTED;
}

static msp_tcp_verdict_t decode_ipv6(msp_reader_t *r, msp_tcp_pkt_t *pkt, msp_reader_t *body, size_t *wire)
{
    uint32_t vtf;
    uint16_t plen;
    uint8_t next, hops;
    const uint8_t *src, *dst;
    if (msp_read_u32(r, &vtf) != MSP_OK || msp_read_u16(r, &plen) != MSP_OK || msp_read_u8(r, &next) != MSP_OK ||
        msp_read_u8(r, &hops) != MSP_OK || msp_read_bytes(r, 16, &src) != MSP_OK ||
        msp_read_bytes(r, 16, &dst) != MSP_OK) {
        return MSP_TCP_TRUNCATED;
    }
    if ((vtf >> 28) != 6) {
        return MSP_TCP_MALFORMED;
    }
    /* Only the announced payload is ours (the rest is link padding); the walk must stay inside it. */
    size_t have = msp_reader_left(r);
    msp_reader_t payload;
    if (msp_read_sub(r, have < plen ? have : plen, &payload) != MSP_OK) {
        return MSP_TCP_MALFORMED;
    }
    size_t left = plen;
    msp_tcp_verdict_t v = skip_ipv6_ext(&payload, &next, &left);
    if (v != MSP_TCP_OK) {
        return v;
    }
    pkt->ip_version = 6;
    memcpy(pkt->src, src, 16);
    memcpy(pkt->dst, dst, 16);
    *body = payload;
    *wire = left;
    return MSP_TCP_OK;
}

static msp_tcp_verdict_t decode_tcp(msp_reader_t *r, size_t wire, msp_tcp_pkt_t *pkt)
{
    uint8_t off, flags;
    uint16_t sum, urg;
    const uint8_t *opts;
    if (msp_read_u16(r, &pkt->sport) != MSP_OK || msp_read_u16(r, &pkt->dport) != MSP_OK ||
        msp_read_u32(r, &pkt->seq) != MSP_OK || msp_read_u32(r, &pkt->ack) != MSP_OK ||
        msp_read_u8(r, &off) != MSP_OK || msp_read_u8(r, &flags) != MSP_OK || msp_read_u16(r, &pkt->window) != MSP_OK ||
        msp_read_u16(r, &sum) != MSP_OK || msp_read_u16(r, &urg) != MSP_OK) {
        return wire < 20 ? MSP_TCP_MALFORMED : MSP_TCP_TRUNCATED;
    }
    size_t hlen = (size_t)(off >> 4) * 4;
    if (hlen < 20 || hlen > wire) {
        return MSP_TCP_MALFORMED;
    }
    if (msp_read_bytes(r, hlen - 20, &opts) != MSP_OK) {
        return MSP_TCP_TRUNCATED;
    }
    pkt->flags = flags;
    pkt->wire_len = wire - hlen;
    pkt->payload_len = msp_reader_left(r);
    return msp_read_bytes(r, pkt->payload_len, &pkt->payload) == MSP_OK ? MSP_TCP_OK : MSP_TCP_MALFORMED;
}

msp_tcp_verdict_t msp_tcp_decode(int link, const uint8_t *p, size_t caplen, size_t len, msp_tcp_pkt_t *pkt)
{
    memset(pkt, 0, sizeof(*pkt));
    msp_reader_t r;
    msp_reader_init(&r, p, caplen);
    link_out_t lo = {0, 0};
    msp_tcp_verdict_t v = decode_link(link, &r, &lo);
    if (v != MSP_TCP_OK) {
        return v;
    }
    if (lo.ip == 0) {
        return MSP_TCP_NOT_TCP;
    }
    pkt->vlan = lo.vlan;
    size_t link_len = caplen - msp_reader_left(&r);
    size_t wire_left = len > link_len ? len - link_len : 0;
    msp_reader_t body;
    size_t wire = 0;
    v = lo.ip == 4 ? decode_ipv4(&r, wire_left, pkt, &body, &wire) : decode_ipv6(&r, pkt, &body, &wire);
    if (v != MSP_TCP_OK) {
        return v;
    }
    return decode_tcp(&body, wire, pkt);
}

const char *msp_tcp_verdict_name(msp_tcp_verdict_t v)
{
    switch (v) {
    case MSP_TCP_OK:
        return "tcp";
    case MSP_TCP_NOT_TCP:
        return "not tcp";
    case MSP_TCP_FRAGMENT:
        return "fragment";
    case MSP_TCP_TRUNCATED:
        return "truncated headers";
    case MSP_TCP_MALFORMED:
        return "malformed";
    case MSP_TCP_UNSUPPORTED:
        return "unsupported ipv6 extension";
    case MSP_TCP_UNKNOWN_LINK:
        return "unknown link type";
    }
    return "?";
}
