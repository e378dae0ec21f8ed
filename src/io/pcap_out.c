/*
 * Plaintext capture output: every decrypted flow re-emitted as plain TCP
 * over Ethernet with its original addresses and ports, so that ordinary
 * tools (tshark "follow", an IDS) read the plaintext. Sequence numbers start
 * at fixed ISNs and advance with the data; checksums are valid.
 */
/* libpcap's headers use the BSD u_char/u_int types. */
#define _DEFAULT_SOURCE
#include "msp/ets_pcap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <pcap/pcap.h>

#define ISN_CLIENT 0x1000u
#define ISN_SERVER 0x2000u
#define OUT_SNAPLEN 262144
#define FRAME_MAX (MSP_PCAP_OUT_MSS + 128) /* Ethernet + IPv6 + TCP headers fit in the 128 */
#define WINDOW 65535

struct msp_pcap_out_flow {
    msp_pcap_out_flow_t *prev, *next;
    msp_tcp_flow_info_t info;
    uint32_t seq[2]; /* the next sequence number per direction */
    uint64_t last_ts;
};

struct msp_pcap_out {
    pcap_t *dead;
    pcap_dumper_t *dump;
    char *path, *tmp;
    msp_pcap_out_flow_t *flows;
    size_t nflows;
    uint8_t frame[FRAME_MAX];
};

static void free_out(msp_pcap_out_t *o, int remove_tmp)
{
    if (o->dump != NULL) {
        pcap_dump_close(o->dump);
    }
    if (o->dead != NULL) {
        pcap_close(o->dead);
    }
    if (remove_tmp && o->tmp != NULL) {
        unlink(o->tmp);
    }
    while (o->flows != NULL) {
        msp_pcap_out_flow_t *f = o->flows;
        o->flows = f->next;
        free(f);
    }
    free(o->path);
    free(o->tmp);
    free(o);
}

int msp_pcap_out_open(const char *path, msp_pcap_out_t **out, msp_error_t *err)
{
    *out = NULL;
    msp_pcap_out_t *o = calloc(1, sizeof(*o));
    size_t n = strlen(path);
    if (o == NULL || (o->path = strdup(path)) == NULL || (o->tmp = malloc(n + 16)) == NULL) {
        if (o != NULL) {
            free_out(o, 0);
        }
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "capture %s: out of memory", path);
    }
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        free(o->tmp);
        o->tmp = NULL;
        free_out(o, 0);
        return msp_error_set(err, MSP_ERR_IO, NULL, "capture %s: cannot create a file beside it", path);
    }
    FILE *fp = fdopen(fd, "wb");
    o->dead = pcap_open_dead(DLT_EN10MB, OUT_SNAPLEN);
    o->dump = fp != NULL && o->dead != NULL ? pcap_dump_fopen(o->dead, fp) : NULL;
    if (o->dump == NULL) {
        if (fp != NULL) {
            fclose(fp);
        } else {
            close(fd);
        }
        free_out(o, 1);
        return msp_error_set(err, MSP_ERR_IO, NULL, "capture %s: cannot start writing", path);
    }
    *out = o;
    return MSP_OK;
}

static int emit(msp_pcap_out_t *o, msp_pcap_out_flow_t *f, int dir, uint8_t flags, const uint8_t *p, size_t n,
                uint64_t ts, msp_error_t *err)
{
    msp_tcp_pkt_t pkt;
    memset(&pkt, 0, sizeof(pkt));
    pkt.ip_version = f->info.ip_version;
    memcpy(pkt.src, f->info.addr[dir], sizeof(pkt.src));
    memcpy(pkt.dst, f->info.addr[1 - dir], sizeof(pkt.dst));
    pkt.sport = f->info.port[dir];
    pkt.dport = f->info.port[1 - dir];
    pkt.seq = f->seq[dir];
    pkt.ack = (flags & MSP_TCP_ACK) ? f->seq[1 - dir] : 0;
    pkt.flags = flags;
    pkt.window = WINDOW;
    pkt.payload = p;
    pkt.payload_len = n;
    msp_buf_t b;
    msp_buf_init_fixed(&b, o->frame, sizeof(o->frame));
    int ret = msp_tcp_build(MSP_TCP_LINK_EN10MB, &pkt, &b);
    if (ret != MSP_OK) {
        return msp_error_set(err, ret, NULL, "capture output: cannot build a packet: %s", msp_error_name(ret));
    }
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(ts / 1000000u);
    h.ts.tv_usec = (suseconds_t)(ts % 1000000u);
    h.caplen = h.len = (bpf_u_int32)b.len;
    pcap_dump((u_char *)o->dump, &h, o->frame);
    f->seq[dir] += (uint32_t)n + ((flags & (MSP_TCP_SYN | MSP_TCP_FIN)) ? 1 : 0);
    if (ts > f->last_ts) {
        f->last_ts = ts;
    }
    return MSP_OK;
}

int msp_pcap_out_flow_begin(msp_pcap_out_t *o, const msp_tcp_flow_info_t *info, uint64_t ts_us,
                            msp_pcap_out_flow_t **flow, msp_error_t *err)
{
    if (info->ip_version != 4 && info->ip_version != 6) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "capture output: IP version %d", info->ip_version);
    }
    if (o->nflows >= MSP_PCAP_OUT_MAX_FLOWS) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "capture output: more than %u flows open",
                             MSP_PCAP_OUT_MAX_FLOWS);
    }
    msp_pcap_out_flow_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "capture output: out of memory");
    }
    f->info = *info;
    f->seq[0] = ISN_CLIENT;
    f->seq[1] = ISN_SERVER;
    f->next = o->flows;
    if (o->flows != NULL) {
        o->flows->prev = f;
    }
    o->flows = f;
    o->nflows++;
    int ret = emit(o, f, 0, MSP_TCP_SYN, NULL, 0, ts_us, err);
    if (ret == MSP_OK) {
        ret = emit(o, f, 1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, ts_us, err);
    }
    if (ret == MSP_OK) {
        ret = emit(o, f, 0, MSP_TCP_ACK, NULL, 0, ts_us, err);
    }
    *flow = f;
    return ret;
}

/* One peer's address and port into info's side dir: 4 or 6, or 0 for a family a capture cannot carry. */
static int peer_side(const struct sockaddr *sa, msp_tcp_flow_info_t *info, int dir)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(info->addr[dir], &in->sin_addr, 4);
        info->port[dir] = ntohs(in->sin_port);
        return 4;
    }
    if (sa->sa_family != AF_INET6) {
        return 0;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    info->port[dir] = ntohs(in6->sin6_port);
    if (memcmp(in6->sin6_addr.s6_addr, mapped, sizeof(mapped)) == 0) {
        memcpy(info->addr[dir], in6->sin6_addr.s6_addr + 12, 4);
        return 4;
    }
    memcpy(info->addr[dir], in6->sin6_addr.s6_addr, 16);
    return 6;
}

int msp_pcap_out_flow_begin_peers(msp_pcap_out_t *o, const struct sockaddr *client, const struct sockaddr *server,
                                  uint64_t ts_us, msp_pcap_out_flow_t **flow, msp_error_t *err)
{
    msp_tcp_flow_info_t info;
    memset(&info, 0, sizeof(info));
    int v0 = peer_side(client, &info, 0), v1 = peer_side(server, &info, 1);
    *flow = NULL;
    if (v0 == 0 || v0 != v1) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "capture output: peers of different or unknown families");
    }
    info.ip_version = (uint8_t)v0;
    info.first_ts_us = info.last_ts_us = ts_us;
    return msp_pcap_out_flow_begin(o, &info, ts_us, flow, err);
}

int msp_pcap_out_data(msp_pcap_out_t *o, msp_pcap_out_flow_t *flow, int dir, const uint8_t *p, size_t n, uint64_t ts_us,
                      msp_error_t *err)
{
    if (dir != 0 && dir != 1) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "capture output: direction %d", dir);
    }
    while (n > 0) {
        size_t k = n < MSP_PCAP_OUT_MSS ? n : MSP_PCAP_OUT_MSS;
        int ret = emit(o, flow, dir, MSP_TCP_PSH | MSP_TCP_ACK, p, k, ts_us, err);
        if (ret != MSP_OK) {
            return ret;
        }
        p += k;
        n -= k;
    }
    return MSP_OK;
}

int msp_pcap_out_gap(msp_pcap_out_t *o, msp_pcap_out_flow_t *flow, int dir, uint64_t lost, msp_error_t *err)
{
    (void)o;
    if (dir != 0 && dir != 1) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "capture output: direction %d", dir);
    }
    flow->seq[dir] += (uint32_t)lost; /* sequence space is modulo 2^32, as on the wire */
    return MSP_OK;
}

int msp_pcap_out_flow_end(msp_pcap_out_t *o, msp_pcap_out_flow_t *flow, uint64_t ts_us, msp_error_t *err)
{
    int ret = emit(o, flow, 0, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0, ts_us, err);
    if (ret == MSP_OK) {
        ret = emit(o, flow, 1, MSP_TCP_FIN | MSP_TCP_ACK, NULL, 0, ts_us, err);
    }
    if (ret == MSP_OK) {
        ret = emit(o, flow, 0, MSP_TCP_ACK, NULL, 0, ts_us, err);
    }
    if (flow->prev != NULL) {
        flow->prev->next = flow->next;
    } else {
        o->flows = flow->next;
    }
    if (flow->next != NULL) {
        flow->next->prev = flow->prev;
    }
    o->nflows--;
    free(flow);
    return ret;
}

int msp_pcap_out_close(msp_pcap_out_t *o, msp_error_t *err)
{
    if (o == NULL) {
        return MSP_OK;
    }
    int ret = MSP_OK;
    while (o->flows != NULL && ret == MSP_OK) {
        ret = msp_pcap_out_flow_end(o, o->flows, o->flows->last_ts, err);
    }
    if (ret == MSP_OK) {
        FILE *fp = pcap_dump_file(o->dump);
        if (pcap_dump_flush(o->dump) != 0 || ferror(fp) || fsync(fileno(fp)) != 0) {
            ret = msp_error_set(err, MSP_ERR_IO, NULL, "capture %s: write failed", o->path);
        }
    }
    if (ret == MSP_OK) {
        pcap_dump_close(o->dump);
        o->dump = NULL;
        if (rename(o->tmp, o->path) != 0) {
            ret =
                msp_error_set(err, MSP_ERR_IO, NULL, "capture %s: cannot rename the finished file into place", o->path);
        }
    }
    free_out(o, ret != MSP_OK);
    return ret;
}

void msp_pcap_out_abort(msp_pcap_out_t *o)
{
    if (o != NULL) {
        free_out(o, 1);
    }
}
