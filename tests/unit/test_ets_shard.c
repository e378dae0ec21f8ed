/*
 * Sharding by IP address pair (ets_shard.h): symmetric, in range, spread;
 * the same shard whatever the link type; the pcap filter expression keeps
 * exactly the packets of its shard (compiled by libpcap, run on built
 * packets); flow ids of tables fed side by side; counts summed.
 */
/* libpcap's headers use the BSD u_char/u_int types. */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "msp/error.h"
#include "msp/ets_passive.h"
#include "msp/ets_shard.h"
#include "msp/ets_tcp.h"

/* A fixed sequence (xorshift64): the same addresses on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint8_t rnd8(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)(rng >> 32);
}

static void rnd_addrs(int v, uint8_t a[16], uint8_t b[16])
{
    memset(a, 0, 16);
    memset(b, 0, 16);
    for (int k = 0; k < (v == 6 ? 16 : 4); k++) {
        a[k] = rnd8();
        b[k] = rnd8();
    }
}

static void test_symmetric_in_range(void **state)
{
    (void)state;
    static const unsigned ns[] = {1, 2, 3, 4, 7, 16, 1024};
    for (int i = 0; i < 2000; i++) {
        int v = i % 2 ? 6 : 4;
        uint8_t a[16], b[16];
        rnd_addrs(v, a, b);
        for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
            unsigned s = msp_ets_shard_of_addrs(v, a, b, ns[j]);
            assert_true(s < ns[j]);
            assert_int_equal(s, msp_ets_shard_of_addrs(v, b, a, ns[j]));
        }
    }
    uint8_t a[16] = {127, 0, 0, 1}, b[16] = {127, 0, 0, 1};
    assert_int_equal(msp_ets_shard_of_addrs(4, a, b, 0), 0);
    assert_int_equal(msp_ets_shard_of_addrs(4, a, b, 1), 0);
}

/* Many clients of one server, as a monitored server farm has: each shard gets its part, within 10 %. */
static void test_spread(void **state)
{
    (void)state;
    static const unsigned ns[] = {2, 3, 4, 16};
    uint8_t server[16] = {10, 0, 0, 1};
    for (size_t j = 0; j < sizeof ns / sizeof ns[0]; j++) {
        unsigned count[16] = {0};
        const unsigned clients = 32000;
        for (unsigned i = 0; i < clients; i++) {
            uint8_t c[16] = {10, 64, (uint8_t)(i >> 8), (uint8_t)i}; /* consecutive addresses, as the bench's */
            count[msp_ets_shard_of_addrs(4, c, server, ns[j])]++;
        }
        for (unsigned k = 0; k < ns[j]; k++) {
            double share = (double)count[k] * ns[j] / clients;
            assert_true(share > 0.9 && share < 1.1);
        }
    }
}

static void build(int link, int v, const uint8_t *src, const uint8_t *dst, uint16_t vlan, msp_buf_t *out)
{
    static const uint8_t payload[] = "hello";
    msp_tcp_pkt_t pkt = {.ip_version = (uint8_t)v,
                         .sport = 40000,
                         .dport = 443,
                         .seq = 1,
                         .flags = MSP_TCP_ACK,
                         .window = 1024,
                         .vlan = vlan,
                         .payload = payload,
                         .payload_len = 5};
    memcpy(pkt.src, src, 16);
    memcpy(pkt.dst, dst, 16);
    out->len = 0;
    assert_int_equal(msp_tcp_build(link, &pkt, out), MSP_OK);
}

static const int links[] = {MSP_TCP_LINK_EN10MB, MSP_TCP_LINK_RAW, MSP_TCP_LINK_SLL, MSP_TCP_LINK_SLL2,
                            MSP_TCP_LINK_NULL};

static void test_packets(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    for (int i = 0; i < 400; i++) {
        int v = i % 2 ? 6 : 4;
        uint8_t a[16], c[16];
        rnd_addrs(v, a, c);
        for (size_t l = 0; l < sizeof links / sizeof links[0]; l++) {
            for (unsigned n = 1; n <= 5; n++) {
                build(links[l], v, a, c, 0, &b);
                assert_int_equal(msp_ets_shard_of(links[l], b.base, b.len, n), msp_ets_shard_of_addrs(v, a, c, n));
                build(links[l], v, c, a, 0, &b); /* the other direction */
                assert_int_equal(msp_ets_shard_of(links[l], b.base, b.len, n), msp_ets_shard_of_addrs(v, a, c, n));
            }
        }
        build(MSP_TCP_LINK_EN10MB, v, a, c, 7, &b);
        assert_int_equal(msp_ets_shard_of(MSP_TCP_LINK_EN10MB, b.base, b.len, 3), msp_ets_shard_of_addrs(v, a, c, 3));
    }
    /* not TCP: shard 0 */
    static const uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
    for (unsigned n = 1; n <= 8; n++) {
        assert_int_equal(msp_ets_shard_of(MSP_TCP_LINK_EN10MB, arp, sizeof arp, n), 0);
    }
    msp_buf_free(&b);
}

/* The filter for shard k keeps a packet exactly when msp_ets_shard_of says k. */
static void check_filters(int link, unsigned n)
{
    pcap_t *dead = pcap_open_dead(link, 65535);
    assert_non_null(dead);
    struct bpf_program prog[16];
    assert_true(n <= 16);
    for (unsigned k = 0; k < n; k++) {
        char expr[MSP_ETS_SHARD_FILTER_MAX];
        assert_int_equal(msp_ets_shard_filter(link, k, n, expr, sizeof expr), MSP_OK);
        if (pcap_compile(dead, &prog[k], expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
            fail_msg("%s: %s", expr, pcap_geterr(dead));
        }
    }
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    for (int i = 0; i < 300; i++) {
        /* BSD loopback: libpcap's ip6 means this system's AF_INET6 there, the builder writes a BSD one */
        int v = i % 2 && link != MSP_TCP_LINK_NULL ? 6 : 4;
        uint8_t a[16], c[16];
        rnd_addrs(v, a, c);
        for (int vlan = 0; vlan <= (link == MSP_TCP_LINK_EN10MB ? 1 : 0); vlan++) {
            build(link, v, a, c, (uint16_t)(vlan * 100), &b);
            struct pcap_pkthdr h = {.caplen = (bpf_u_int32)b.len, .len = (bpf_u_int32)b.len};
            unsigned want = msp_ets_shard_of(link, b.base, b.len, n), matched = 0;
            for (unsigned k = 0; k < n; k++) {
                int m = pcap_offline_filter(&prog[k], &h, (const u_char *)b.base) != 0;
                if (m != (k == want)) {
                    fail_msg("link %d, IPv%d, vlan %d: shard %u of %u, the filter of %u says %d", link, v, vlan, want,
                             n, k, m);
                }
                matched += (unsigned)m;
            }
            assert_int_equal(matched, 1);
        }
    }
    for (unsigned k = 0; k < n; k++) {
        pcap_freecode(&prog[k]);
    }
    msp_buf_free(&b);
    pcap_close(dead);
}

static void test_filter(void **state)
{
    (void)state;
    for (size_t l = 0; l < sizeof links / sizeof links[0]; l++) {
        for (unsigned n = 1; n <= 5; n++) {
            check_filters(links[l], n);
        }
        check_filters(links[l], 16);
    }
}

static void test_filter_arguments(void **state)
{
    (void)state;
    char expr[MSP_ETS_SHARD_FILTER_MAX];
    assert_int_equal(msp_ets_shard_filter(MSP_TCP_LINK_EN10MB, 2, 2, expr, sizeof expr), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_shard_filter(MSP_TCP_LINK_EN10MB, 0, 0, expr, sizeof expr), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_shard_filter(MSP_TCP_LINK_EN10MB, 0, MSP_ETS_SHARD_MAX + 1, expr, sizeof expr),
                     MSP_ERR_ARGUMENT);
    assert_int_equal(
        msp_ets_shard_filter(MSP_TCP_LINK_EN10MB, MSP_ETS_SHARD_MAX - 1, MSP_ETS_SHARD_MAX, expr, sizeof expr), MSP_OK);
    assert_int_equal(msp_ets_shard_filter(MSP_TCP_LINK_EN10MB, 0, 2, expr, 100), MSP_ERR_LIMIT);
    assert_string_equal(expr, "");
}

/* ---- flow ids and counts of pipelines side by side ---- */

static uint64_t ids[8];
static size_t n_ids;

static void on_open(void *ctx, msp_tcp_flow_t *flow, const msp_tcp_flow_info_t *info)
{
    (void)ctx;
    (void)flow;
    ids[n_ids++] = info->id;
}

static void syn(msp_tcp_t *t, uint8_t client)
{
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    uint8_t a[16] = {10, 0, 0, client}, s[16] = {10, 0, 0, 1};
    msp_tcp_pkt_t pkt = {.ip_version = 4, .sport = 40000, .dport = 443, .seq = 1, .flags = MSP_TCP_SYN};
    memcpy(pkt.src, a, 16);
    memcpy(pkt.dst, s, 16);
    assert_int_equal(msp_tcp_build(MSP_TCP_LINK_RAW, &pkt, &b), MSP_OK);
    assert_int_equal(msp_tcp_packet(t, MSP_TCP_LINK_RAW, b.base, b.len, b.len, 1), MSP_OK);
    msp_buf_free(&b);
}

static void test_flow_ids(void **state)
{
    (void)state;
    static const msp_tcp_callbacks_t cb = {.flow_open = on_open};
    msp_tcp_config_t cfg;
    msp_tcp_config_default(&cfg);
    cfg.id_first = 3;
    cfg.id_step = 4;
    msp_tcp_t *t;
    assert_int_equal(msp_tcp_new(&cfg, &cb, NULL, &t), MSP_OK);
    n_ids = 0;
    for (uint8_t c = 2; c < 5; c++) {
        syn(t, c);
    }
    assert_int_equal(n_ids, 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 7);
    assert_int_equal(ids[2], 11);
    msp_tcp_free(t);
    /* zero (a config not made by msp_tcp_config_default): 1, 2, ... as before */
    cfg.id_first = cfg.id_step = 0;
    assert_int_equal(msp_tcp_new(&cfg, &cb, NULL, &t), MSP_OK);
    n_ids = 0;
    syn(t, 2);
    syn(t, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    msp_tcp_free(t);
}

static void test_add_counts(void **state)
{
    (void)state;
    msp_ets_passive_cfg_t cfg;
    msp_ets_passive_cfg_default(&cfg);
    msp_ets_passive_t *w[2], *total;
    assert_int_equal(msp_ets_passive_new(&cfg, &w[0]), MSP_OK);
    assert_int_equal(msp_ets_passive_new(&cfg, &w[1]), MSP_OK);
    assert_int_equal(msp_ets_passive_new(&cfg, &total), MSP_OK);
    for (uint8_t c = 2; c < 5; c++) {
        syn(msp_ets_passive_tcp(w[0]), c);
    }
    syn(msp_ets_passive_tcp(w[1]), 9);
    msp_ets_passive_finish(w[0]);
    msp_ets_passive_finish(w[1]);
    msp_ets_passive_add_counts(total, w[0]);
    msp_ets_passive_add_counts(total, w[1]);
    assert_int_equal(msp_ets_passive_counts(total)->flows, 4);
    assert_int_equal(msp_ets_passive_counts(total)->empty, 4);
    assert_int_equal(msp_ets_passive_tcp_stats(total)->packets, 4);
    assert_int_equal(msp_ets_passive_tcp_stats(total)->flows, 4);
    assert_int_equal(msp_ets_passive_counts(w[1])->flows, 1); /* from is not changed */
    assert_int_equal(msp_ets_passive_error(total, NULL), MSP_OK);
    for (int k = 0; k < 2; k++) {
        msp_ets_passive_free(w[k]);
    }
    msp_ets_passive_free(total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_symmetric_in_range),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_packets),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_filter_arguments),
        cmocka_unit_test(test_flow_ids),
        cmocka_unit_test(test_add_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
