/*
 * The passive pipeline on worker threads (ets_workers.h), on a capture file
 * of many flows between many address pairs: each worker sees exactly the
 * flows of its shard, flow ids are unique and say their worker, the total
 * holds the sums, nothing is lost through the bounded queues, --count,
 * argument checks.
 */
/* libpcap's headers use the BSD u_char/u_int types. */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "msp/error.h"
#include "msp/ets_pcap.h"
#include "msp/ets_shard.h"
#include "msp/ets_workers.h"

#include "ets_workers.h" /* the PACKET_FANOUT program */

#define PAIRS 60
#define BULK 3000 /* packets of one more flow: many batches through one worker's queue */

typedef struct seen {
    unsigned k, n;
    uint64_t ids[4 * PAIRS];
    size_t flows;
    int wrong_shard, wrong_id;
} seen_t;

static void on_open(void *arg, msp_ets_passive_flow_t *f)
{
    seen_t *s = arg;
    const msp_tcp_flow_info_t *info = msp_ets_passive_flow_info(f);
    s->wrong_shard += msp_ets_shard_of_addrs(info->ip_version, info->addr[0], info->addr[1], s->n) != s->k;
    s->wrong_id += (info->id - 1) % s->n != s->k;
    if (s->flows < sizeof s->ids / sizeof s->ids[0]) {
        s->ids[s->flows] = info->id;
    }
    s->flows++;
}

static const msp_ets_passive_cb_t callbacks = {.flow_open = on_open};

static void put(pcap_dumper_t *d, msp_buf_t *b, const msp_tcp_pkt_t *pkt, uint64_t *ts, uint64_t *count)
{
    b->len = 0;
    assert_int_equal(msp_tcp_build(MSP_TCP_LINK_EN10MB, pkt, b), MSP_OK);
    struct pcap_pkthdr h = {.caplen = (bpf_u_int32)b->len, .len = (bpf_u_int32)b->len};
    h.ts.tv_sec = (time_t)(*ts / 1000000);
    h.ts.tv_usec = (suseconds_t)(*ts % 1000000);
    *ts += 10;
    pcap_dump((u_char *)d, &h, b->base);
    (*count)++;
}

/* One connection: handshake, data packets each way, FINs. */
static void conn(pcap_dumper_t *d, msp_buf_t *b, int v, const uint8_t *c, const uint8_t *s, uint16_t port, int data,
                 uint64_t *ts, uint64_t *count)
{
    static const uint8_t payload[100] = {1};
    msp_tcp_pkt_t p = {.ip_version = (uint8_t)v, .sport = port, .dport = 443, .window = 1000};
    msp_tcp_pkt_t q = p;
    memcpy(p.src, c, 16);
    memcpy(p.dst, s, 16);
    memcpy(q.src, s, 16);
    memcpy(q.dst, c, 16);
    q.sport = 443;
    q.dport = port;
    p.seq = 1000, q.seq = 5000;
    p.flags = MSP_TCP_SYN;
    put(d, b, &p, ts, count);
    q.flags = MSP_TCP_SYN | MSP_TCP_ACK, q.ack = ++p.seq;
    put(d, b, &q, ts, count);
    p.flags = q.flags = MSP_TCP_ACK, p.ack = ++q.seq;
    for (int i = 0; i < data; i++) {
        msp_tcp_pkt_t *x = i % 2 ? &q : &p;
        x->payload = payload, x->payload_len = sizeof payload;
        put(d, b, x, ts, count);
        x->seq += sizeof payload;
        x->payload_len = 0;
    }
    p.flags = q.flags = MSP_TCP_FIN | MSP_TCP_ACK;
    put(d, b, &p, ts, count);
    put(d, b, &q, ts, count);
}

static char path[64];
static uint64_t packets, flows;

static int make_capture(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/test_ets_workers.%d.pcap", (int)getpid());
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    pcap_dumper_t *d = pcap_dump_open(dead, path);
    assert_non_null(d);
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    uint64_t ts = 1700000000000000ull;
    for (unsigned i = 0; i < PAIRS; i++) {
        int v = i % 3 == 2 ? 6 : 4;
        uint8_t c[16] = {10, 64, 0, (uint8_t)i}, s[16] = {10, 0, 0, (uint8_t)(1 + i % 4)};
        if (v == 6) {
            c[0] = s[0] = 0x20, c[1] = s[1] = 0x01, c[15] = (uint8_t)i, s[15] = 1;
        }
        conn(d, &b, v, c, s, (uint16_t)(40000 + i), 4, &ts, &packets);
        conn(d, &b, v, c, s, (uint16_t)(50000 + i), 2, &ts, &packets); /* the same pair again */
        flows += 2;
    }
    uint8_t c[16] = {10, 99, 0, 1}, s[16] = {10, 0, 0, 1};
    conn(d, &b, 4, c, s, 60000, BULK, &ts, &packets);
    flows++;
    msp_buf_free(&b);
    pcap_dump_close(d);
    pcap_close(dead);
    return 0;
}

static int remove_capture(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static msp_ets_workers_t *run(unsigned n, seen_t *seen, uint64_t max)
{
    void *args[8];
    for (unsigned k = 0; k < n; k++) {
        memset(&seen[k], 0, sizeof seen[k]);
        seen[k].k = k;
        seen[k].n = n;
        args[k] = &seen[k];
    }
    msp_ets_workers_cfg_t cfg = {.n = n, .worker_arg = args};
    msp_ets_passive_cfg_default(&cfg.passive);
    cfg.passive.cb = &callbacks;
    msp_ets_workers_t *w;
    assert_int_equal(msp_ets_workers_new(&cfg, &w), MSP_OK);
    assert_int_equal(msp_ets_workers_count(w), n);
    msp_pcap_in_t *in;
    msp_error_t err = {0};
    assert_int_equal(msp_pcap_in_open_file(path, NULL, &in, &err), MSP_OK);
    assert_int_equal(msp_ets_workers_run_file(w, in, max, &err), MSP_OK);
    msp_pcap_in_close(in);
    return w;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_shards(void **state)
{
    (void)state;
    for (unsigned n = 1; n <= 4; n++) {
        seen_t seen[4];
        msp_ets_workers_t *w = run(n, seen, 0);
        uint64_t ids[4 * PAIRS + 4];
        size_t total = 0;
        for (unsigned k = 0; k < n; k++) {
            assert_int_equal(seen[k].wrong_shard, 0);
            assert_int_equal(seen[k].wrong_id, 0);
            assert_true(seen[k].flows > 0); /* 60 pairs: every shard has some */
            assert_int_equal(msp_ets_passive_counts(msp_ets_workers_pipe(w, k))->flows, seen[k].flows);
            memcpy(ids + total, seen[k].ids, seen[k].flows * sizeof ids[0]);
            total += seen[k].flows;
        }
        assert_int_equal(total, flows);
        qsort(ids, total, sizeof ids[0], cmp_u64);
        for (size_t i = 1; i < total; i++) {
            assert_true(ids[i] != ids[i - 1]);
        }
        const msp_ets_passive_t *sum = msp_ets_workers_total(w);
        assert_int_equal(msp_ets_passive_counts(sum)->flows, flows);
        const msp_ets_passive_counts_t *c = msp_ets_passive_counts(sum);
        assert_int_equal(c->decrypted + c->undecryptable + c->empty, flows); /* every flow ended */
        assert_int_equal(c->undecryptable, flows);                           /* its bytes are not TLS */
        assert_int_equal(msp_ets_passive_tcp_stats(sum)->packets, packets);  /* nothing lost in the queues */
        assert_int_equal(msp_ets_passive_tcp_stats(sum)->tcp, packets);
        assert_null(msp_ets_workers_pipe(w, n));
        msp_ets_workers_free(w);
    }
}

static void test_count(void **state)
{
    (void)state;
    seen_t seen[3];
    msp_ets_workers_t *w = run(3, seen, 10);
    assert_int_equal(msp_ets_passive_tcp_stats(msp_ets_workers_total(w))->packets, 10);
    msp_ets_workers_free(w);
}

static void test_arguments(void **state)
{
    (void)state;
    msp_ets_workers_cfg_t cfg = {.n = 0};
    msp_ets_passive_cfg_default(&cfg.passive);
    msp_ets_workers_t *w = (msp_ets_workers_t *)&cfg;
    assert_int_equal(msp_ets_workers_new(&cfg, &w), MSP_ERR_ARGUMENT);
    assert_null(w);
    cfg.n = MSP_ETS_WORKERS_MAX + 1;
    assert_int_equal(msp_ets_workers_new(&cfg, &w), MSP_ERR_ARGUMENT);
    cfg.n = 2;
    cfg.passive.tcp.max_flows = 0; /* a bad pipeline config */
    assert_int_equal(msp_ets_workers_new(&cfg, &w), MSP_ERR_ARGUMENT);
    assert_null(w);
    msp_ets_workers_free(NULL);
    /* one run each */
    seen_t seen[2];
    w = run(2, seen, 0);
    msp_pcap_in_t *in;
    msp_error_t err = {0};
    assert_int_equal(msp_pcap_in_open_file(path, NULL, &in, &err), MSP_OK);
    assert_int_equal(msp_ets_workers_run_file(w, in, 0, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_workers_run_live(w, 0, &err), MSP_ERR_ARGUMENT);
    msp_pcap_in_close(in);
    msp_ets_workers_free(w);
}

/* ---- the PACKET_FANOUT program, run as the kernel runs it ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The program on a packet whose network header is net (len bytes) and whose protocol is proto; only the
 * instructions it uses. */
static uint32_t run_bpf(uint16_t proto, const uint8_t *net, size_t len)
{
    const struct sock_filter *prog = ets_workers_shard_prog;
    uint32_t a = 0, x = 0;
    for (size_t pc = 0; pc < ets_workers_shard_prog_len; pc++) {
        const struct sock_filter *f = &prog[pc];
        switch (f->code) {
        case BPF_LD | BPF_H | BPF_ABS:
            assert_int_equal(f->k, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL));
            a = proto;
            break;
        case BPF_LD | BPF_W | BPF_ABS:
            assert_true(f->k - (uint32_t)SKF_NET_OFF + 4 <= len);
            a = be32(net + (f->k - (uint32_t)SKF_NET_OFF));
            break;
        case BPF_MISC | BPF_TAX:
            x = a;
            break;
        case BPF_ALU | BPF_XOR | BPF_X:
            a ^= x;
            break;
        case BPF_ALU | BPF_MUL | BPF_K:
            a *= f->k;
            break;
        case BPF_ALU | BPF_RSH | BPF_K:
            a >>= f->k;
            break;
        case BPF_JMP | BPF_JA:
            pc += f->k;
            break;
        case BPF_JMP | BPF_JEQ | BPF_K:
            pc += a == f->k ? f->jt : f->jf;
            break;
        case BPF_RET | BPF_A:
            return a;
        case BPF_RET | BPF_K:
            return f->k;
        default:
            fail_msg("instruction %u: opcode %#x", (unsigned)pc, f->code);
        }
    }
    fail_msg("the program ran off its end");
    return 0;
}

/* The kernel's choice (the program's result modulo the sockets) is msp_ets_shard_of's, IPv4 and IPv6. */
static void test_fanout_program(void **state)
{
    (void)state;
    uint64_t rng = 0x2545f4914f6cdd1dull;
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    for (int i = 0; i < 1000; i++) {
        int v = i % 2 ? 6 : 4;
        msp_tcp_pkt_t pkt = {.ip_version = (uint8_t)v, .sport = 40000, .dport = 443, .flags = MSP_TCP_ACK};
        for (int k = 0; k < (v == 6 ? 16 : 4); k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            pkt.src[k] = (uint8_t)rng, pkt.dst[k] = (uint8_t)(rng >> 8);
        }
        b.len = 0;
        assert_int_equal(msp_tcp_build(MSP_TCP_LINK_RAW, &pkt, &b), MSP_OK);
        uint32_t r = run_bpf(v == 6 ? 0x86dd : 0x0800, b.base, b.len);
        for (unsigned n = 1; n <= 16; n++) {
            assert_int_equal(r % n, msp_ets_shard_of(MSP_TCP_LINK_RAW, b.base, b.len, n));
        }
    }
    static const uint8_t arp[28] = {0, 1, 8, 0, 6, 4};
    assert_int_equal(run_bpf(0x0806, arp, sizeof arp), 0); /* not IP: the first worker */
    msp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_fanout_program),
    };
    return cmocka_run_group_tests(tests, make_capture, remove_capture);
}
