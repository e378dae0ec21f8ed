/* Capture input on libpcap: a file or an interface feeding the passive TCP layer. */
/* libpcap's headers use the BSD u_char/u_int types. */
#define _DEFAULT_SOURCE
#include "msp/ets_pcap.h"
#include "pcap_in.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <pcap/pcap.h>

#define PCAP_IN_IOBUF (1u << 20)

struct msp_pcap_in {
    pcap_t *p;
    int link;
    int live;
    volatile sig_atomic_t stop;
    char name[128];
    /* the current run */
    msp_tcp_t *tcp;
    uint64_t count, max;
    int ret;
    uint64_t size; /* a regular capture file's size, else 0 */
    void (*batch)(void *arg, msp_pcap_in_t *in);
    void *batch_arg;
    char *iobuf; /* the file's stdio buffer */
};

static int fail(msp_error_t *err, int code, const char *name, const char *why)
{
    return msp_error_set(err, code, NULL, "capture %s: %s", name, why);
}

static int set_filter(msp_pcap_in_t *in, const char *filter, msp_error_t *err)
{
    if (filter == NULL || filter[0] == '\0') {
        return MSP_OK;
    }
    struct bpf_program prog;
    if (pcap_compile(in->p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "capture %s: filter: %s", in->name, pcap_geterr(in->p));
    }
    int ok = pcap_setfilter(in->p, &prog) == 0;
    pcap_freecode(&prog);
    return ok ? MSP_OK : fail(err, MSP_ERR_IO, in->name, pcap_geterr(in->p));
}

static msp_pcap_in_t *alloc_in(const char *name)
{
    msp_pcap_in_t *in = calloc(1, sizeof(*in));
    if (in != NULL) {
        size_t n = strlen(name);
        if (n >= sizeof(in->name)) {
            n = sizeof(in->name) - 1;
        }
        memcpy(in->name, name, n);
    }
    return in;
}

/* The link type is checked once here, so that a capture we cannot read fails before any packet. */
static int finish_open(msp_pcap_in_t *in, const char *filter, msp_pcap_in_t **out, msp_error_t *err)
{
    in->link = pcap_datalink(in->p);
    int ret = MSP_OK;
    if (!msp_tcp_link_supported(in->link)) {
        const char *lname = pcap_datalink_val_to_name(in->link);
        ret = msp_error_set(err, MSP_ERR_INVALID, NULL, "capture %s: link type %s (%d) is not supported", in->name,
                            lname != NULL ? lname : "?", in->link);
    } else {
        ret = set_filter(in, filter, err);
    }
    if (ret != MSP_OK) {
        msp_pcap_in_close(in);
        return ret;
    }
    *out = in;
    return MSP_OK;
}

int msp_pcap_in_open_file(const char *path, const char *filter, msp_pcap_in_t **out, msp_error_t *err)
{
    *out = NULL;
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    msp_pcap_in_t *in = alloc_in(path);
    if (in == NULL) {
        return fail(err, MSP_ERR_NO_MEMORY, path, "out of memory");
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
        free(in);
        return fail(err, MSP_ERR_IO, path, "the file is empty"); /* libpcap would say "truncated dump file" */
    }
    /* stdio's default buffer is a page: one read(2) or two per packet; a larger one reads the file in big steps */
    FILE *f = strcmp(path, "-") == 0 ? NULL : fopen(path, "rb");
    in->iobuf = f != NULL ? malloc(PCAP_IN_IOBUF) : NULL;
    if (in->iobuf != NULL) {
        setvbuf(f, in->iobuf, _IOFBF, PCAP_IN_IOBUF);
    }
    in->p = f != NULL ? pcap_fopen_offline(f, ebuf) : pcap_open_offline(path, ebuf);
    if (in->p == NULL && f != NULL) {
        fclose(f);
    }
    if (in->p == NULL) {
        free(in->iobuf);
        int ret = fail(err, MSP_ERR_IO, path, ebuf);
        free(in);
        return ret;
    }
    FILE *fp = pcap_file(in->p);
    if (fp != NULL && fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode)) {
        in->size = (uint64_t)st.st_size;
    }
    return finish_open(in, filter, out, err);
}

int msp_pcap_in_open_live(const char *ifname, const char *filter, int promisc, msp_pcap_in_t **out, msp_error_t *err)
{
    *out = NULL;
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    msp_pcap_in_t *in = alloc_in(ifname);
    if (in == NULL) {
        return fail(err, MSP_ERR_NO_MEMORY, ifname, "out of memory");
    }
    in->live = 1;
    in->p = pcap_create(ifname, ebuf);
    if (in->p == NULL) {
        int ret = fail(err, MSP_ERR_IO, ifname, ebuf);
        free(in);
        return ret;
    }
    if (pcap_set_snaplen(in->p, MSP_PCAP_SNAPLEN) != 0 || pcap_set_promisc(in->p, promisc ? 1 : 0) != 0 ||
        pcap_set_immediate_mode(in->p, 1) != 0 || pcap_set_timeout(in->p, MSP_PCAP_TIMEOUT_MS) != 0) {
        msp_pcap_in_close(in);
        return fail(err, MSP_ERR_IO, ifname, "cannot set capture options");
    }
    int st = pcap_activate(in->p);
    if (st < 0) {
        /* the warning/error text is in pcap_geterr for PCAP_ERROR, a status name otherwise */
        const char *why = st == PCAP_ERROR ? pcap_geterr(in->p) : pcap_statustostr(st);
        int ret = fail(err, MSP_ERR_IO, ifname, why);
        msp_pcap_in_close(in);
        return ret;
    }
    return finish_open(in, filter, out, err);
}

int msp_pcap_in_set_filter(msp_pcap_in_t *in, const char *filter, msp_error_t *err)
{
    /* "" compiles to a filter that keeps everything: it replaces one set before */
    return set_filter(in, filter != NULL && filter[0] != '\0' ? filter : " ", err);
}

int msp_pcap_in_link(const msp_pcap_in_t *in)
{
    return in->link;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    msp_pcap_in_t *in = (msp_pcap_in_t *)user;
    if (in->ret != MSP_OK) {
        return;
    }
    uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
    in->ret = msp_tcp_packet(in->tcp, in->link, bytes, h->caplen, h->len, ts);
    in->count++;
    if (in->ret != MSP_OK || (in->max != 0 && in->count >= in->max)) {
        pcap_breakloop(in->p);
    }
}

int msp_pcap_in_run(msp_pcap_in_t *in, msp_tcp_t *tcp, uint64_t max_packets, uint64_t *count, msp_error_t *err)
{
    in->tcp = tcp;
    in->count = 0;
    in->max = max_packets;
    in->ret = MSP_OK;
    int n = 0;
    while (!in->stop && in->ret == MSP_OK && (in->max == 0 || in->count < in->max)) {
        int batch = MSP_PCAP_BATCH;
        if (in->max != 0 && in->max - in->count < (uint64_t)batch) {
            batch = (int)(in->max - in->count);
        }
        n = pcap_dispatch(in->p, batch, on_packet, (u_char *)in);
        if (n == PCAP_ERROR || (n == 0 && !in->live)) {
            break; /* an error, or the end of the file */
        }
        if (in->batch != NULL) {
            in->batch(in->batch_arg, in);
        }
    }
    if (count != NULL) {
        *count = in->count;
    }
    if (in->ret != MSP_OK) {
        return msp_error_set(err, in->ret, NULL, "capture %s: packet %llu: %s", in->name, (unsigned long long)in->count,
                             msp_error_name(in->ret));
    }
    if (n == PCAP_ERROR) {
        return fail(err, MSP_ERR_IO, in->name, pcap_geterr(in->p));
    }
    return MSP_OK;
}

void msp_pcap_in_on_batch(msp_pcap_in_t *in, void (*fn)(void *arg, msp_pcap_in_t *in), void *arg)
{
    in->batch = fn;
    in->batch_arg = arg;
}

int msp_pcap_in_progress(const msp_pcap_in_t *in, uint64_t *done, uint64_t *total)
{
    FILE *fp = in->live ? NULL : pcap_file(in->p);
    off_t at = fp != NULL ? ftello(fp) : -1;
    if (in->size == 0 || at < 0) {
        return MSP_ERR_IO;
    }
    *done = (uint64_t)at < in->size ? (uint64_t)at : in->size;
    *total = in->size;
    return MSP_OK;
}

void msp_pcap_in_stop(msp_pcap_in_t *in)
{
    in->stop = 1;
    pcap_breakloop(in->p);
}

int msp_pcap_in_dropped(msp_pcap_in_t *in, uint64_t *dropped)
{
    struct pcap_stat st;
    if (!in->live || pcap_stats(in->p, &st) != 0) {
        return MSP_ERR_IO;
    }
    *dropped = (uint64_t)st.ps_drop + st.ps_ifdrop;
    return MSP_OK;
}

void msp_pcap_in_close(msp_pcap_in_t *in)
{
    if (in == NULL) {
        return;
    }
    if (in->p != NULL) {
        pcap_close(in->p);
    }
    free(in->iobuf);
    free(in);
}

/* ---- inside the library (pcap_in.h) ---- */

pcap_t *pcap_in_pcap(msp_pcap_in_t *in)
{
    return in->p;
}

const char *pcap_in_name(const msp_pcap_in_t *in)
{
    return in->name;
}
