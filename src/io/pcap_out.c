/*
 * Plaintext capture output: every decrypted flow re-emitted as plain TCP
 * over Ethernet with its original addresses and ports, so that ordinary
 * tools (tshark "follow", an IDS) read the plaintext. Sequence numbers start
 * at fixed ISNs and advance with the data; checksums are valid.
 */
/* libpcap's headers use the BSD u_char/u_int types. */
#define _DEFAULT_SOURCE
#include "msp/ets_pcap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

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
    uint64_t file; /* the output file its handshake is in: a flow going on in a later one gets a new handshake */
};

struct msp_pcap_out {
    pcap_t *dead;
    pcap_dumper_t *dump;
    char *path, *tmp; /* tmp: the file being written, renamed to its name when done (NULL when streaming) */
    size_t tmp_cap;
    int streaming; /* standard output, a FIFO or a device: written in place, flushed on request */
    int werr;      /* errno of the first failed write (stdio keeps only a flag) */
    uint64_t rotate_bytes, rotate_us;
    uint64_t file;      /* files started so far (the current one's number is file - 1) */
    uint64_t file_len;  /* bytes in the current file */
    uint64_t file_pkts; /* packets in it */
    uint64_t file_ts;   /* capture time of its first packet */
    msp_pcap_out_flow_t *flows;
    size_t nflows;
    uint8_t frame[FRAME_MAX];
};

/* A file's bytes before its first packet, and per packet besides the frame (pcap's file and record headers). */
#define FILE_HDR 24u
#define REC_HDR 16u

static int out_error(msp_error_t *err, int code, const char *path, const char *what, int e)
{
    const char *name = path == NULL || strcmp(path, "-") == 0 ? "standard output" : path;
    if (e == EPIPE) {
        return msp_error_set(err, code, NULL, "the reader of %s went away (%s)", name, strerror(e));
    }
    return msp_error_set(err, code, NULL, "%s %s: %s", what, name, e != 0 ? strerror(e) : "failed");
}

static void close_dump(msp_pcap_out_t *o)
{
    if (o->dump != NULL) {
        pcap_dump_close(o->dump);
        o->dump = NULL;
    }
}

static void free_out(msp_pcap_out_t *o, int remove_tmp)
{
    close_dump(o);
    if (o->dead != NULL) {
        pcap_close(o->dead);
    }
    if (remove_tmp && o->tmp != NULL && o->tmp[0] != '\0') {
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

/* The name the current file gets when it is done: the path, or PATH.N when rotating. */
static void final_name(const msp_pcap_out_t *o, char *out, size_t cap)
{
    if (o->rotate_bytes == 0 && o->rotate_us == 0) {
        snprintf(out, cap, "%s", o->path);
    } else {
        snprintf(out, cap, "%s.%llu", o->path, (unsigned long long)(o->file - 1));
    }
}

/* Starts the next file: a temporary one beside the path, or the stream. */
static int start_file(msp_pcap_out_t *o, msp_error_t *err)
{
    FILE *fp = NULL;
    int fd = -1;
    if (o->streaming) {
        fd = strcmp(o->path, "-") == 0 ? dup(STDOUT_FILENO) : open(o->path, O_WRONLY | O_CLOEXEC);
    } else {
        snprintf(o->tmp, o->tmp_cap, "%s.tmp.XXXXXX", o->path);
        fd = mkstemp(o->tmp);
        if (fd < 0) {
            o->tmp[0] = '\0';
        }
    }
    if (fd < 0) {
        return out_error(err, MSP_ERR_IO, o->path, "cannot create output", errno);
    }
    if ((fp = fdopen(fd, "wb")) == NULL || (o->dump = pcap_dump_fopen(o->dead, fp)) == NULL) {
        int e = errno;
        if (fp != NULL) {
            fclose(fp);
        } else {
            close(fd);
        }
        return out_error(err, MSP_ERR_IO, o->path, "cannot create output", e);
    }
    o->file++;
    o->file_len = FILE_HDR;
    o->file_pkts = 0;
    return MSP_OK;
}

/* Writes the current file out; a temporary file is renamed to its final name. */
static int end_file(msp_pcap_out_t *o, msp_error_t *err)
{
    FILE *fp = pcap_dump_file(o->dump);
    errno = 0;
    if (pcap_dump_flush(o->dump) != 0 || ferror(fp) || (!o->streaming && fsync(fileno(fp)) != 0)) {
        return out_error(err, MSP_ERR_IO, o->path, "cannot write output", o->werr != 0 ? o->werr : errno);
    }
    close_dump(o);
    if (o->streaming) {
        return MSP_OK;
    }
    char name[4096 + 32];
    final_name(o, name, sizeof(name));
    if (rename(o->tmp, name) != 0) {
        return out_error(err, MSP_ERR_IO, name, "cannot write output", errno);
    }
    o->tmp[0] = '\0';
    return MSP_OK;
}

int msp_pcap_out_new(const msp_pcap_out_cfg_t *cfg, msp_pcap_out_t **out, msp_error_t *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0' ||
        (cfg->rotate_bytes != 0 && cfg->rotate_bytes < MSP_PCAP_OUT_ROTATE_MIN)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "capture output: no path, or rotation below %u bytes",
                             MSP_PCAP_OUT_ROTATE_MIN);
    }
    struct stat st;
    int streaming = strcmp(cfg->path, "-") == 0 || (stat(cfg->path, &st) == 0 && !S_ISREG(st.st_mode));
    if (streaming && (cfg->rotate_bytes != 0 || cfg->rotate_us != 0)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "output %s: a stream cannot be rotated", cfg->path);
    }
    msp_pcap_out_t *o = calloc(1, sizeof(*o));
    size_t n = strlen(cfg->path);
    if (o == NULL || (o->path = strdup(cfg->path)) == NULL ||
        (!streaming && (o->tmp = calloc(1, o->tmp_cap = n + 32)) == NULL) ||
        (o->dead = pcap_open_dead(DLT_EN10MB, OUT_SNAPLEN)) == NULL) {
        if (o != NULL) {
            free_out(o, 0);
        }
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "output %s: out of memory", cfg->path);
    }
    o->streaming = streaming;
    o->rotate_bytes = cfg->rotate_bytes;
    o->rotate_us = cfg->rotate_us;
    int ret = start_file(o, err);
    if (ret != MSP_OK) {
        free_out(o, 1);
        return ret;
    }
    *out = o;
    return MSP_OK;
}

int msp_pcap_out_open(const char *path, msp_pcap_out_t **out, msp_error_t *err)
{
    msp_pcap_out_cfg_t cfg = {.path = path};
    return msp_pcap_out_new(&cfg, out, err);
}

/* Before a packet of about len bytes at ts: the next file when this one is full or its time is up. */
static int rotate_if_due(msp_pcap_out_t *o, uint64_t ts, size_t len, msp_error_t *err)
{
    if (o->file_pkts == 0) {
        o->file_ts = ts;
        return MSP_OK;
    }
    int full = o->rotate_bytes != 0 && o->file_len + REC_HDR + len > o->rotate_bytes;
    int late = o->rotate_us != 0 && ts >= o->file_ts + o->rotate_us;
    if (!full && !late) {
        return MSP_OK;
    }
    int ret = end_file(o, err);
    if (ret == MSP_OK) {
        ret = start_file(o, err);
    }
    o->file_ts = ts;
    return ret;
}

static int emit(msp_pcap_out_t *o, msp_pcap_out_flow_t *f, int dir, uint8_t flags, const uint8_t *p, size_t n,
                uint64_t ts, msp_error_t *err);

/* The three-way handshake a reader needs to follow the flow, at ts. */
static int handshake(msp_pcap_out_t *o, msp_pcap_out_flow_t *f, uint64_t ts, msp_error_t *err)
{
    int ret = emit(o, f, 0, MSP_TCP_SYN, NULL, 0, ts, err);
    if (ret == MSP_OK) {
        ret = emit(o, f, 1, MSP_TCP_SYN | MSP_TCP_ACK, NULL, 0, ts, err);
    }
    if (ret == MSP_OK) {
        ret = emit(o, f, 0, MSP_TCP_ACK, NULL, 0, ts, err);
    }
    return ret;
}

/* A flow that began in an earlier file gets a handshake in this one too, with its current sequence numbers, so
 * that each file is a capture a reader follows on its own. */
static int resume_flow(msp_pcap_out_t *o, msp_pcap_out_flow_t *f, uint64_t ts, msp_error_t *err)
{
    f->file = o->file;
    f->seq[0]--;
    f->seq[1]--;
    return handshake(o, f, ts, err);
}

static int emit(msp_pcap_out_t *o, msp_pcap_out_flow_t *f, int dir, uint8_t flags, const uint8_t *p, size_t n,
                uint64_t ts, msp_error_t *err)
{
    if (o->dump == NULL) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "output %s: an earlier write failed", o->path);
    }
    int ret = rotate_if_due(o, ts, n + FRAME_MAX - MSP_PCAP_OUT_MSS, err);
    if (ret == MSP_OK && f->file != o->file && !(flags & MSP_TCP_SYN)) {
        ret = resume_flow(o, f, ts, err);
    }
    if (ret != MSP_OK) {
        return ret;
    }
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
    ret = msp_tcp_build(MSP_TCP_LINK_EN10MB, &pkt, &b);
    if (ret != MSP_OK) {
        return msp_error_set(err, ret, NULL, "capture output: cannot build a packet: %s", msp_error_name(ret));
    }
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(ts / 1000000u);
    h.ts.tv_usec = (suseconds_t)(ts % 1000000u);
    h.caplen = h.len = (bpf_u_int32)b.len;
    pcap_dump((u_char *)o->dump, &h, o->frame);
    if (o->werr == 0 && ferror(pcap_dump_file(o->dump))) {
        o->werr = errno != 0 ? errno : EIO;
    }
    o->file_len += REC_HDR + b.len;
    o->file_pkts++;
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
    f->file = o->file;
    f->next = o->flows;
    if (o->flows != NULL) {
        o->flows->prev = f;
    }
    o->flows = f;
    o->nflows++;
    int ret = handshake(o, f, ts_us, err);
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

int msp_pcap_out_flush(msp_pcap_out_t *o, msp_error_t *err)
{
    if (o->dump == NULL) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "output %s: an earlier write failed", o->path);
    }
    errno = 0;
    if (pcap_dump_flush(o->dump) != 0 || ferror(pcap_dump_file(o->dump))) {
        int e = o->werr != 0 ? o->werr : errno;
        close_dump(o); /* nothing more goes to a stream that failed (a reader gone does not come back) */
        return out_error(err, MSP_ERR_IO, o->path, "cannot write output", e);
    }
    return MSP_OK;
}

uint64_t msp_pcap_out_files(const msp_pcap_out_t *o)
{
    return o->file;
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
        ret = end_file(o, err);
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
