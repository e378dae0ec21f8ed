/*
 * The passive TCP layer (ets_tcp.h) with small limits, so that eviction,
 * idle expiry, window, budget and segment limits all trigger.
 *
 * Input: records of [selector u8][length u16][bytes]. Selector bit 7 clear:
 * the bytes are a captured packet on link LINKS[selector & 7], captured
 * length cut by (selector >> 3) & 15 bytes. Bit 7 set: a synthetic segment
 * between two hosts, bytes = [dir/port u8][seq u32][flags u8][payload], so
 * that reassembly is reached without guessing headers. Timestamps advance by
 * (selector & 0x70) microseconds per record.
 */
#include <stdint.h>
#include <string.h>

#include "msp/error.h"
#include "msp/ets_tcp.h"
#include "reader.h"

static const int LINKS[8] = {MSP_TCP_LINK_EN10MB, MSP_TCP_LINK_RAW,  MSP_TCP_LINK_SLL,  MSP_TCP_LINK_SLL2,
                             MSP_TCP_LINK_NULL,   MSP_TCP_LINK_LOOP, MSP_TCP_LINK_IPV6, MSP_TCP_LINK_IPV4};

typedef struct sink {
    uint64_t sum, delivered, lost;
} sink_t;

static void on_data(void *ctx, msp_tcp_flow_t *flow, int dir, const uint8_t *p, size_t n, uint64_t ts)
{
    (void)flow;
    (void)dir;
    (void)ts;
    sink_t *s = ctx;
    for (size_t i = 0; i < n; i++) {
        s->sum += p[i]; /* touch every byte: ASan sees a bad pointer */
    }
    s->delivered += n;
    if (n > 0 && p[0] == 0xee && (s->delivered & 1)) {
        msp_tcp_flow_ignore(flow); /* losing interest in the middle of a delivery */
    }
}

static void on_gap(void *ctx, msp_tcp_flow_t *flow, int dir, uint64_t lost, uint64_t ts)
{
    (void)flow;
    (void)dir;
    (void)ts;
    sink_t *s = ctx;
    if (lost == 0 || lost > (1u << 31)) {
        __builtin_trap();
    }
    s->lost += lost;
}

static void synth(msp_tcp_t *t, msp_reader_t *r, uint64_t ts)
{
    uint8_t who, flags;
    uint32_t seq;
    if (msp_read_u8(r, &who) != MSP_OK || msp_read_u32(r, &seq) != MSP_OK || msp_read_u8(r, &flags) != MSP_OK) {
        return;
    }
    int dir = who & 1;
    uint16_t client_port = (uint16_t)(1000 + ((who >> 1) & 7)); /* up to 8 connections */
    msp_tcp_pkt_t pkt;
    memset(&pkt, 0, sizeof(pkt));
    pkt.ip_version = (who & 0x10) ? 6 : 4;
    pkt.src[0] = (uint8_t)(1 + dir);
    pkt.dst[0] = (uint8_t)(2 - dir);
    pkt.sport = dir ? 443 : client_port;
    pkt.dport = dir ? client_port : 443;
    pkt.seq = seq;
    pkt.flags = flags;
    pkt.payload_len = msp_reader_left(r);
    msp_read_bytes(r, pkt.payload_len, &pkt.payload);
    uint8_t frame[1024];
    msp_buf_t b;
    msp_buf_init_fixed(&b, frame, sizeof(frame));
    if (msp_tcp_build(MSP_TCP_LINK_RAW, &pkt, &b) == MSP_OK) {
        size_t cut = (who >> 5) * 8; /* a truncated capture now and then */
        size_t caplen = cut > 0 && cut < b.len ? b.len - cut : b.len;
        msp_tcp_packet(t, MSP_TCP_LINK_RAW, frame, caplen, b.len, ts);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msp_tcp_config_t cfg;
    msp_tcp_config_default(&cfg);
    cfg.max_flows = 3;
    cfg.window = 512;
    cfg.budget = 1024;
    cfg.max_segs = 6;
    cfg.idle_us = 2000;
    sink_t sink = {0, 0, 0};
    msp_tcp_callbacks_t cb = {NULL, on_data, on_gap, NULL};
    msp_tcp_t *t = NULL;
    if (msp_tcp_new(&cfg, &cb, &sink, &t) != MSP_OK) {
        return 0;
    }
    msp_reader_t r;
    msp_reader_init(&r, data, size);
    uint64_t ts = 0;
    uint8_t sel;
    msp_reader_t rec;
    while (msp_read_u8(&r, &sel) == MSP_OK && msp_read_block(&r, 2, &rec) == MSP_OK) {
        ts += sel & 0x70;
        if (sel & 0x80) {
            synth(t, &rec, ts);
            continue;
        }
        size_t len = msp_reader_left(&rec), cut = (sel >> 3) & 15;
        size_t caplen = cut < len ? len - cut : len;
        const uint8_t *pkt;
        msp_read_bytes(&rec, len, &pkt);
        msp_tcp_packet(t, LINKS[sel & 7], pkt, caplen, len, ts);
    }
    msp_tcp_finish(t);
    const msp_tcp_stats_t *st = msp_tcp_stats(t);
    if (st->buffered != 0 || st->flows_open != 0 || st->buffered_peak > cfg.budget || st->delivered != sink.delivered) {
        __builtin_trap();
    }
    msp_tcp_free(t);
    return 0;
}
