/* libpcap's headers use the BSD u_char/u_int types. */
#define _DEFAULT_SOURCE
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "msp/error.h"
#include "reader.h"

/* One TCP segment's payload, kept until its stream is assembled. */
typedef struct seg {
    uint32_t seq;
    uint8_t *data;
    size_t len;
} seg_t;

typedef struct flow {
    uint16_t sport, dport;
    uint32_t isn;
    int has_isn;
    seg_t *segs;
    size_t nsegs, cap;
} flow_t;

/* Offset of the IP header for the capture's link type, or -1 if we do not handle it. */
static int link_offset(int dlt)
{
    switch (dlt) {
    case DLT_EN10MB:
        return 14;
    case DLT_NULL:
    case DLT_LOOP:
        return 4;
    case DLT_LINUX_SLL:
        return 16;
    case DLT_LINUX_SLL2:
        return 20;
    case DLT_RAW:
        return 0;
    default:
        return -1;
    }
}

/* The TCP header and payload in an IPv4 or IPv6 packet. */
static const uint8_t *tcp_of(const uint8_t *ip, size_t len, size_t *tcp_len)
{
    if (len >= 20 && (ip[0] >> 4) == 4 && ip[9] == 6) {
        size_t ihl = (size_t)(ip[0] & 15) * 4, total = (size_t)ip[2] << 8 | ip[3];
        if (ihl < 20 || total > len || total < ihl) {
            return NULL;
        }
        *tcp_len = total - ihl;
        return ip + ihl;
    }
    if (len >= 40 && (ip[0] >> 4) == 6 && ip[6] == 6) {
        size_t plen = (size_t)ip[4] << 8 | ip[5];
        if (40 + plen > len) {
            return NULL;
        }
        *tcp_len = plen;
        return ip + 40;
    }
    return NULL;
}

static flow_t *flow_for(flow_t *flows, size_t *nflows, uint16_t sport, uint16_t dport, int syn)
{
    /* A SYN starts a new connection, even on ports seen before. */
    for (size_t i = *nflows; !syn && i-- > 0;) {
        if (flows[i].sport == sport && flows[i].dport == dport) {
            return &flows[i];
        }
    }
    if (*nflows == CAP_MAX_STREAMS) {
        return NULL;
    }
    flow_t *f = &flows[(*nflows)++];
    memset(f, 0, sizeof(*f));
    f->sport = sport;
    f->dport = dport;
    return f;
}

static void add_segment(flow_t *f, const uint8_t *tcp, size_t tcp_len)
{
    size_t off = (size_t)(tcp[12] >> 4) * 4;
    uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
    if (tcp[13] & 0x02) { /* SYN */
        f->isn = seq + 1;
        f->has_isn = 1;
    }
    if (off > tcp_len || off == tcp_len) {
        return;
    }
    if (f->nsegs == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->segs = realloc(f->segs, f->cap * sizeof(*f->segs));
    }
    seg_t *s = &f->segs[f->nsegs++];
    s->seq = seq;
    s->len = tcp_len - off;
    s->data = malloc(s->len);
    memcpy(s->data, tcp + off, s->len);
}

static int by_seq(const void *a, const void *b)
{
    const seg_t *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorted by sequence number; retransmitted or overlapping bytes are taken once. */
static void assemble(flow_t *f, cap_stream_t *out)
{
    qsort(f->segs, f->nsegs, sizeof(*f->segs), by_seq);
    size_t total = 0;
    for (size_t i = 0; i < f->nsegs; i++) {
        total += f->segs[i].len;
    }
    out->sport = f->sport;
    out->dport = f->dport;
    out->data = malloc(total + 1);
    out->len = 0;
    uint32_t next = f->has_isn ? f->isn : (f->nsegs ? f->segs[0].seq : 0);
    for (size_t i = 0; i < f->nsegs; i++) {
        seg_t *s = &f->segs[i];
        uint32_t skip = next - s->seq; /* wraps for a segment past a gap: then nothing is skipped */
        if (skip < s->len) {
            memcpy(out->data + out->len, s->data + skip, s->len - skip);
            out->len += s->len - skip;
            next = s->seq + (uint32_t)s->len;
        }
        free(s->data);
    }
    free(f->segs);
}

int cap_load(const char *relpath, cap_file_t *cap)
{
    char path[1024], err[PCAP_ERRBUF_SIZE];
    snprintf(path, sizeof(path), "%s/%s", MSP_VECTORS_DIR, relpath);
    memset(cap, 0, sizeof(*cap));
    pcap_t *p = pcap_open_offline(path, err);
    if (p == NULL) {
        fprintf(stderr, "capture: %s: %s\n", path, err);
        return -1;
    }
    int off = link_offset(pcap_datalink(p));
    if (off < 0) {
        fprintf(stderr, "capture: %s: link type %d not handled\n", path, pcap_datalink(p));
        pcap_close(p);
        return -1;
    }
    static flow_t flows[CAP_MAX_STREAMS];
    size_t nflows = 0;
    struct pcap_pkthdr *h;
    const u_char *pkt;
    while (pcap_next_ex(p, &h, &pkt) == 1) {
        size_t tcp_len = 0;
        const uint8_t *tcp = h->caplen > (unsigned)off ? tcp_of(pkt + off, h->caplen - (unsigned)off, &tcp_len) : NULL;
        if (tcp == NULL || tcp_len < 20) {
            continue;
        }
        uint16_t sport = (uint16_t)(tcp[0] << 8 | tcp[1]), dport = (uint16_t)(tcp[2] << 8 | tcp[3]);
        flow_t *f = flow_for(flows, &nflows, sport, dport, (tcp[13] & 0x02) != 0);
        if (f != NULL) {
            add_segment(f, tcp, tcp_len);
        }
    }
    pcap_close(p);
    for (size_t i = 0; i < nflows; i++) {
        assemble(&flows[i], &cap->s[cap->n++]);
    }
    return 0;
}

void cap_free(cap_file_t *cap)
{
    for (size_t i = 0; i < cap->n; i++) {
        free(cap->s[i].data);
    }
    cap->n = 0;
}

const cap_stream_t *cap_find(const cap_file_t *cap, uint16_t sport, uint16_t dport)
{
    for (size_t i = cap->n; i-- > 0;) {
        if (cap->s[i].sport == sport && cap->s[i].dport == dport && cap->s[i].len > 0) {
            return &cap->s[i];
        }
    }
    return NULL;
}

static const cap_stream_t *by_port(const cap_file_t *cap, uint16_t port, int source)
{
    for (size_t i = cap->n; i-- > 0;) {
        if ((source ? cap->s[i].sport : cap->s[i].dport) == port && cap->s[i].len > 0) {
            return &cap->s[i];
        }
    }
    return NULL;
}

const cap_stream_t *cap_from(const cap_file_t *cap, uint16_t sport)
{
    return by_port(cap, sport, 1);
}

const cap_stream_t *cap_to(const cap_file_t *cap, uint16_t dport)
{
    return by_port(cap, dport, 0);
}

/* Reads "type(1) | version(2) | v16<payload>"; 0 at the end or on a malformed record. */
static int next_record(msp_reader_t *r, uint8_t *type, msp_reader_t *payload)
{
    uint16_t version;
    return msp_read_u8(r, type) == MSP_OK && msp_read_u16(r, &version) == MSP_OK &&
           msp_read_block(r, 2, payload) == MSP_OK;
}

size_t cap_handshake_messages(const cap_stream_t *s, cap_msg_t *out, size_t max)
{
    msp_reader_t r, payload, body;
    msp_reader_init(&r, s != NULL ? s->data : NULL, s != NULL ? s->len : 0);
    size_t n = 0, records = 0;
    uint8_t type;
    while (next_record(&r, &type, &payload) && type != 20) {
        uint32_t sid;
        if (records++ > 0 && msp_read_u32(&payload, &sid) != MSP_OK) {
            break;
        }
        while (type == 22 && n < max && msp_read_u8(&payload, &out[n].type) == MSP_OK &&
               msp_read_block(&payload, 3, &body) == MSP_OK) {
            out[n].body = body.pos;
            out[n].len = msp_reader_left(&body);
            n++;
        }
    }
    return n;
}

const cap_msg_t *cap_find_msg(const cap_msg_t *m, size_t n, uint8_t type)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == type) {
            return &m[i];
        }
    }
    return NULL;
}
