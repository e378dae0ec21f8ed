/*
 * Packet construction: the plaintext capture writer and the tests build
 * their TCP segments here, with checksums an IDS would accept. No ETSI
 * TS 103 523-3 clause applies (what a middlebox does with the plaintext is
 * outside the standard).
 */
#include "msp/ets_tcp.h"

#include "msp/error.h"

#define TCP_HDR 20
#define IPV4_HDR 20
#define IPV6_HDR 40

/* RFC 1071 one's complement sum, folded but not inverted. */
static uint32_t sum_bytes(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        acc += (uint32_t)(p[i] << 8 | p[i + 1]);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if (n & 1) {
        acc += (uint32_t)p[n - 1] << 8;
    }
    while (acc >> 16) {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    return acc;
}

static void put_sum(uint8_t *at, uint32_t acc)
{
    uint16_t s = (uint16_t)~acc;
    at[0] = (uint8_t)(s >> 8);
    at[1] = (uint8_t)s;
}

static void put_link(int link, int ip, uint16_t vlan, msp_buf_t *out)
{
    uint16_t type = ip == 4 ? 0x0800 : 0x86dd;
    switch (link) {
    case MSP_TCP_LINK_EN10MB: {
        /* locally administered, fixed: the IP addresses are what identifies the hosts */
        static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
        msp_buf_put(out, macs, sizeof(macs));
        if (vlan != 0) {
            msp_buf_put_u16(out, 0x8100);
            msp_buf_put_u16(out, (uint16_t)((vlan - 1) & 0x0fff));
        }
        msp_buf_put_u16(out, type);
        break;
    }
    case MSP_TCP_LINK_SLL: {
        static const uint8_t head[14] = {0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0};
        msp_buf_put(out, head, sizeof(head));
        msp_buf_put_u16(out, type);
        break;
    }
    case MSP_TCP_LINK_SLL2: {
        static const uint8_t rest[18] = {0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0};
        msp_buf_put_u16(out, type);
        msp_buf_put(out, rest, sizeof(rest));
        break;
    }
    case MSP_TCP_LINK_NULL: /* host order on the machines that write these: little-endian here */
        msp_buf_put_u32(out, ip == 4 ? 0x02000000u : 0x1e000000u);
        break;
    case MSP_TCP_LINK_LOOP:
        msp_buf_put_u32(out, ip == 4 ? 2u : 24u);
        break;
    default: /* raw IP */
        break;
    }
}

int msp_tcp_build(int link, const msp_tcp_pkt_t *pkt, msp_buf_t *out)
{
    int ip = pkt->ip_version;
    size_t tcp_len = TCP_HDR + pkt->payload_len;
    int wrong_raw = (link == MSP_TCP_LINK_IPV4 && ip != 4) || (link == MSP_TCP_LINK_IPV6 && ip != 6);
    if ((ip != 4 && ip != 6) || !msp_tcp_link_supported(link) || wrong_raw || tcp_len > 0xffff - IPV4_HDR) {
        return MSP_ERR_ARGUMENT;
    }
    put_link(link, ip, pkt->vlan, out);
    size_t ip_at = out->len;
    uint32_t pseudo;
    if (ip == 4) {
        msp_buf_put_u16(out, 0x4500);
        msp_buf_put_u16(out, (uint16_t)(IPV4_HDR + tcp_len));
        msp_buf_put_u32(out, 0x00004000u); /* id 0, DF */
        msp_buf_put_u16(out, 0x4006);      /* TTL 64, TCP */
        msp_buf_put_u16(out, 0);
        msp_buf_put(out, pkt->src, 4);
        msp_buf_put(out, pkt->dst, 4);
        pseudo = sum_bytes(sum_bytes(6 + (uint32_t)tcp_len, pkt->src, 4), pkt->dst, 4);
    } else {
        msp_buf_put_u32(out, 0x60000000u);
        msp_buf_put_u16(out, (uint16_t)tcp_len);
        msp_buf_put_u16(out, 0x0640); /* TCP, hop limit 64 */
        msp_buf_put(out, pkt->src, 16);
        msp_buf_put(out, pkt->dst, 16);
        pseudo = sum_bytes(sum_bytes(6 + (uint32_t)tcp_len, pkt->src, 16), pkt->dst, 16);
    }
    size_t tcp_at = out->len;
    msp_buf_put_u16(out, pkt->sport);
    msp_buf_put_u16(out, pkt->dport);
    msp_buf_put_u32(out, pkt->seq);
    msp_buf_put_u32(out, pkt->ack);
    msp_buf_put_u8(out, TCP_HDR / 4 << 4);
    msp_buf_put_u8(out, pkt->flags);
    msp_buf_put_u16(out, pkt->window);
    msp_buf_put_u32(out, 0); /* checksum, urgent pointer */
    msp_buf_put(out, pkt->payload, pkt->payload_len);
    int ret = msp_buf_error(out);
    if (ret != MSP_OK) {
        return ret;
    }
    if (ip == 4) {
        put_sum(out->base + ip_at + 10, sum_bytes(0, out->base + ip_at, IPV4_HDR));
    }
    put_sum(out->base + tcp_at + 16, sum_bytes(pseudo, out->base + tcp_at, tcp_len));
    return MSP_OK;
}
