/* The shard of a packet: a symmetric hash of its IP address pair (msp/ets_shard.h). */
#include "msp/ets_shard.h"

#include <stdio.h>

#include "msp/error.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

unsigned msp_ets_shard_of_addrs(int ip_version, const uint8_t a[16], const uint8_t b[16], unsigned n)
{
    uint32_t w = 0;
    for (int k = 0; k < (ip_version == 6 ? 16 : 4); k += 4) {
        w ^= be32(a + k) ^ be32(b + k);
    }
    /* xor makes it symmetric; the multiplication spreads the few bits in which addresses usually differ */
    return n > 1 ? (unsigned)(((uint32_t)(w * MSP_ETS_SHARD_MUL) >> 16) % n) : 0;
}

unsigned msp_ets_shard_of(int link, const uint8_t *bytes, size_t caplen, unsigned n)
{
    msp_tcp_pkt_t pkt;
    if (n <= 1 || msp_tcp_decode(link, bytes, caplen, caplen, &pkt) != MSP_TCP_OK) {
        return 0;
    }
    return msp_ets_shard_of_addrs(pkt.ip_version, pkt.src, pkt.dst, n);
}

/* "(ip and ((W * MUL) >> 16) % N = K) or (ip6 and ...)", W the xor of the address words at their offsets. */
int msp_ets_shard_filter(int link, unsigned k, unsigned n, char *out, size_t cap)
{
    if (n == 0 || n > MSP_ETS_SHARD_MAX || k >= n) {
        return MSP_ERR_ARGUMENT;
    }
    char one[256];
    int len = snprintf(one, sizeof one,
                       "(ip and (((ip[12:4] ^ ip[16:4]) * %u) >> 16) %% %u = %u) or "
                       "(ip6 and (((ip6[8:4] ^ ip6[12:4] ^ ip6[16:4] ^ ip6[20:4] ^ ip6[24:4] ^ ip6[28:4] ^ "
                       "ip6[32:4] ^ ip6[36:4]) * %u) >> 16) %% %u = %u)",
                       MSP_ETS_SHARD_MUL, n, k, MSP_ETS_SHARD_MUL, n, k);
    if (len < 0 || (size_t)len >= sizeof one) {
        return MSP_ERR_LIMIT;
    }
    /* libpcap's "vlan" moves the offsets of what follows it: last, so that it moves only its own copy */
    int total = link == MSP_TCP_LINK_EN10MB ? snprintf(out, cap, "%s or (vlan and (%s))", one, one)
                                            : snprintf(out, cap, "%s", one);
    if (total < 0 || (size_t)total >= cap) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return MSP_ERR_LIMIT;
    }
    return MSP_OK;
}
