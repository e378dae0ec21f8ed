/*
 * ETS benchmark: `msp ets decrypt` (knowing only the server's static key)
 * against tshark with a key log (knowing every connection's secrets),
 * decrypting the same generated captures, each pinned to one core:
 *
 *   bulk        N TLS 1.3 connections (default 10000), each a small request
 *               and a response of S bytes (default: N * S >= 1 GiB)
 *   handshakes  M connections (default 20000) with tiny payloads
 *
 * The captures are made here: a stock OpenSSL client (default library
 * context, its key log written for tshark) talks to an ETS server (the
 * msp-ets provider with a generated static key) over memory BIOs, and every
 * byte either side writes goes into a pcap in the order written. Suites
 * rotate per connection (1/3 each of AES-128-GCM, AES-256-GCM and
 * ChaCha20-Poly1305). The client does not read the response: the bytes
 * only need to be in the capture.
 *
 * Then, in the same run: msp ets decrypt and tshark on both captures (wall
 * and CPU time of the child), and the crypto floors in this process (ECDH
 * per second, AEAD decryption of 16 KiB records). Every figure is checked:
 * msp must report every connection decrypted and exactly the plaintext
 * generated, tshark must have dissected every HTTP request and response
 * (which it can only see after decrypting them); otherwise the run fails.
 *
 * bench_ets --help lists the options.
 */
#define _GNU_SOURCE /* sched_setaffinity, wait4 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "msp/ets_pcap.h"
#include "msp/ets_provider.h"
#include "msp/ets_tcp.h"

#include "ets_pair.h"

#define RECORD 16384     /* the server writes its response in SSL_write calls of this size */
#define TINY_RESPONSE 64 /* body of a handshake-capture response */
#define DEFAULT_CONNS 10000u
#define DEFAULT_HANDSHAKES 20000u
#define MAX_CONNS (1u << 22)       /* client addresses are 10.64.0.0 + i: stays inside 10/8 */
#define MAX_SIZE (1ull << 32)      /* response bytes per connection */
#define FLOOR_SECONDS 0.4          /* each crypto floor is timed for this long */
#define LINE_MAX_LEN 4096          /* the summary line of msp ets decrypt */
#define TS_START 1700000000000000u /* capture time of the first packet, microseconds */
#define LOSS_PER_MILLE 10          /* the lossy capture drops this many segments of 1000 */
#define LOSS_SEED 0x9e3779b97f4a7c15ull

static const char *const suites[3] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                      "TLS_CHACHA20_POLY1305_SHA256"};

static const char usage[] =
    "usage: bench_ets [--connections N] [--size BYTES] [--handshakes M] [--group x25519|p256]\n"
    "                 [--capture DIR] [--keep DIR] [--msp PATH] [--tshark PATH] [--skip-tshark]\n"
    "                 [--tshark-limit L] [--with-out] [--cpu C] [--tmp DIR] [--workers N]\n"
    "\n"
    "msp ets decrypt (static server key only) against tshark -o tls.keylog_file (every connection's\n"
    "secrets) on the same generated captures, on one core, with the crypto floors measured now.\n"
    "\n"
    "  --connections N   bulk capture: N TLS 1.3 connections (default 10000)\n"
    "  --size BYTES      response body per bulk connection (default: the least with N * BYTES >= 1 GiB)\n"
    "  --handshakes M    handshake capture: M connections with tiny payloads (default 20000; 0: none)\n"
    "  --group G         the server's static key and the client's key share: x25519 (default) or p256\n"
    "  --capture DIR     reuse the captures a run with --keep DIR left (nothing is generated)\n"
    "  --keep DIR        keep the captures, key logs and static key in DIR (created)\n"
    "  --msp PATH        the msp to run (default: ../tools/msp/msp beside this program)\n"
    "  --tshark PATH     the tshark to run (default: tshark from PATH)\n"
    "  --skip-tshark     measure msp and the floors only\n"
    "  --tshark-limit L  tshark decrypts only the first L connections of each capture (a prefix\n"
    "                    capture written alongside); its rates are labelled as such\n"
    "  --with-out        also time msp ets decrypt --out DIR (plaintext files) on the bulk capture\n"
    "  --cpu C           the core everything is pinned to (default: the last one)\n"
    "  --tmp DIR         where the temporary directory goes (default /tmp)\n"
    "  --workers N       also run msp ets decrypt --workers N on both captures, on N cores (CPU C\n"
    "                    and the N-1 below it), and print the speed-up over one worker\n"
    "\n"
    "exit status: 0 when every run succeeded and was consistent, 1 otherwise, 2 on bad arguments.\n";

typedef struct opts {
    uint64_t conns, size, handshakes, tshark_limit;
    const char *group, *capture, *keep, *msp, *tshark, *tmp;
    int skip_tshark, with_out, cpu;
    unsigned workers;
} opts_t;

/* What a capture holds, written to DIR/NAME.info so that --capture can check a reused one. */
typedef struct capinfo {
    uint64_t conns, size, plaintext, records, bytes;
    uint64_t prefix_conns, prefix_bytes, prefix_plaintext, prefix_records;
    uint64_t segments, dropped; /* the lossy capture: segments cut, segments left out */
} capinfo_t;

/* One child run: time and verdict. */
typedef struct run {
    int ok;
    double wall, cpu;
    char why[512];
    uint64_t got[3]; /* msp: decrypted, undecryptable, plaintext; tshark: requests, responses, records */
} run_t;

static char workdir[4096];
static int keep_workdir;

/* ---- small helpers ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* This process's CPU time: on a shared machine the floors and the children compare on it too. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    char path[8192];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            remove_tree(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup(void)
{
    if (workdir[0] != '\0' && !keep_workdir) {
        remove_tree(workdir);
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_error();
    char ossl[256] = "";
    if (e != 0) {
        ERR_error_string_n(e, ossl, sizeof ossl);
    }
    fprintf(stderr, "bench_ets: error: %s%s%s\n", msg, ossl[0] ? ": " : "", ossl);
    cleanup();
    exit(1);
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) {
        die("path too long: %s/%s", dir, name);
    }
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/*
 * Reads a capture once, untimed, so that each tool reads it from the page
 * cache: a reused capture (--capture) may have been evicted, and the first
 * tool to run would otherwise pay the disk for both (seen: 5.8 s wall for
 * 3.3 s of CPU).
 */
static void warm(const char *path)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        die("%s: %s", path, strerror(errno));
    }
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
    }
    if (n < 0) {
        die("%s: %s", path, strerror(errno));
    }
    close(fd);
}

/* ---- keys and certificate ---- */

static EVP_PKEY *make_key(const char *group)
{
    EVP_PKEY *k = strcmp(group, "p256") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                             : EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    if (k == NULL) {
        die("cannot generate a %s key", group);
    }
    return k;
}

static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name = x != NULL ? X509_get_subject_name(x) : NULL;
    if (name == NULL || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) || !X509_gmtime_adj(X509_getm_notAfter(x), 86400) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ets.bench", -1, -1, 0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) || X509_sign(x, key, EVP_sha256()) <= 0) {
        die("cannot make the server certificate");
    }
    return x;
}

static void write_key(const char *path, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0) {
        die("%s: cannot write the static key", path);
    }
}

/* ---- capture generation ---- */

/* The capture being written: the full one and, for the first prefix connections, the prefix one. */
typedef struct gen {
    msp_pcap_out_t *out[4]; /* the capture, its prefix, the lossy capture, its prefix */
    msp_pcap_out_flow_t *flow[4];
    uint64_t rng; /* xorshift64: which segments the lossy capture leaves out */
    uint64_t segments, dropped;
    uint64_t ts;
    FILE *keylog;
    uint64_t plaintext; /* application bytes written by both sides */
    uint64_t records;   /* application data records: one per write, since no write exceeds RECORD */
} gen_t;

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/*
 * The lossy capture: the segments msp_pcap_out_data would write, each one
 * left out with probability LOSS_PER_MILLE / 1000 (a fixed seed: the same
 * segments every time). A left-out segment still takes its sequence space,
 * as a capture that missed it would show.
 */
static void lossy_data(gen_t *g, int dir, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = n < MSP_PCAP_OUT_MSS ? n : MSP_PCAP_OUT_MSS;
        int drop = next_rand(&g->rng) % 1000 < LOSS_PER_MILLE;
        g->segments++;
        g->dropped += (uint64_t)drop;
        for (int j = 2; j < 4; j++) {
            msp_error_t err = {0};
            int rc = g->flow[j] == NULL ? MSP_OK
                     : drop             ? msp_pcap_out_gap(g->out[j], g->flow[j], dir, k, &err)
                                        : msp_pcap_out_data(g->out[j], g->flow[j], dir, p, k, g->ts, &err);
            if (rc != MSP_OK) {
                die("%s", err.detail);
            }
        }
        p += k;
        n -= k;
    }
}

/* ets_pair's callback: what one side wrote goes into the capture(s) as it is written. */
static void on_wire(void *arg, int dir, const uint8_t *bytes, size_t n)
{
    gen_t *g = arg;
    for (int k = 0; k < 2; k++) {
        msp_error_t err = {0};
        if (g->flow[k] != NULL && msp_pcap_out_data(g->out[k], g->flow[k], dir, bytes, n, g->ts, &err) != MSP_OK) {
            die("%s", err.detail);
        }
    }
    if (g->flow[2] != NULL) {
        lossy_data(g, dir, bytes, n);
    }
    g->ts += 5;
}

static void count(gen_t *g, size_t n)
{
    g->plaintext += n;
    g->records++;
}

/* One request from the client, read (and checked) by the server. */
static void request(gen_t *g, ets_pair_t *p, uint64_t i)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET /object/%llu HTTP/1.1\r\nHost: ets.bench\r\nUser-Agent: bench_ets\r\n\r\n",
                     (unsigned long long)i);
    if (ets_pair_send(p, ETS_C2S, req, (size_t)n) != 0) {
        die("request: %s", p->error);
    }
    count(g, (size_t)n);
}

/* The response in RECORD-byte writes; the client does not read it (only the capture needs it). */
static void respond(gen_t *g, ets_pair_t *p, uint64_t size, const uint8_t *body)
{
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %llu\r\n\r\n",
                     (unsigned long long)size);
    if (ets_pair_write(p, ETS_S2C, hdr, (size_t)n) != 0) {
        die("response: %s", p->error);
    }
    count(g, (size_t)n);
    for (uint64_t off = 0; off < size;) {
        size_t k = size - off < RECORD ? (size_t)(size - off) : RECORD;
        if (ets_pair_write(p, ETS_S2C, body, k) != 0) {
            die("response: %s", p->error);
        }
        count(g, k);
        off += k;
    }
}

static void one_connection(gen_t *g, SSL_CTX *sctx, SSL_CTX *cctx, uint64_t i, uint64_t size, const uint8_t *body,
                           int in_prefix)
{
    uint32_t ip = (10u << 24) + (64u << 16) + (uint32_t)i;
    msp_tcp_flow_info_t info = {.ip_version = 4};
    info.addr[0][0] = (uint8_t)(ip >> 24), info.addr[0][1] = (uint8_t)(ip >> 16);
    info.addr[0][2] = (uint8_t)(ip >> 8), info.addr[0][3] = (uint8_t)ip;
    info.addr[1][0] = 10, info.addr[1][3] = 1;
    info.port[0] = (uint16_t)(32768 + i % 28000);
    info.port[1] = 443;
    for (int k = 0; k < 4; k++) {
        msp_error_t err = {0};
        g->flow[k] = NULL;
        if ((k % 2 == 0 || in_prefix) && g->out[k] != NULL &&
            msp_pcap_out_flow_begin(g->out[k], &info, g->ts, &g->flow[k], &err) != MSP_OK) {
            die("%s", err.detail);
        }
    }
    g->ts += 10;
    ets_pair_t p;
    ets_pair_opts_t o = {.ciphersuites = suites[i % 3], .on_write = on_wire, .arg = g};
    if (ets_pair_start(&p, sctx, cctx, &o) != 0) {
        die("connection %llu: %s", (unsigned long long)i, p.error);
    }
    request(g, &p, i);
    respond(g, &p, size, body);
    if (ets_pair_finish(&p) != 0) {
        die("connection %llu: %s", (unsigned long long)i, p.error);
    }
    if (fwrite(p.keylog, 1, p.keylog_len, g->keylog) != p.keylog_len) {
        die("cannot write the key log");
    }
    ets_pair_free(&p);
    for (int k = 0; k < 4; k++) {
        msp_error_t err = {0};
        if (g->flow[k] != NULL && msp_pcap_out_flow_end(g->out[k], g->flow[k], g->ts, &err) != MSP_OK) {
            die("%s", err.detail);
        }
        g->flow[k] = NULL;
    }
    g->ts += 10;
}

static const char *const info_keys[] = {
    "connections",        "size",         "plaintext",        "records",       "bytes",
    "prefix_connections", "prefix_bytes", "prefix_plaintext", "prefix_records"};

static uint64_t *info_field(capinfo_t *ci, size_t k)
{
    uint64_t *f[] = {&ci->conns,        &ci->size,         &ci->plaintext,        &ci->records,       &ci->bytes,
                     &ci->prefix_conns, &ci->prefix_bytes, &ci->prefix_plaintext, &ci->prefix_records};
    return f[k];
}

static void write_info(const char *path, capinfo_t *ci)
{
    FILE *f = fopen(path, "w");
    int ok = f != NULL;
    for (size_t k = 0; ok && k < sizeof info_keys / sizeof info_keys[0]; k++) {
        ok = fprintf(f, "%s %llu\n", info_keys[k], (unsigned long long)*info_field(ci, k)) > 0;
    }
    if (ok && ci->segments > 0) {
        ok = fprintf(f, "segments %llu\ndropped %llu\n", (unsigned long long)ci->segments,
                     (unsigned long long)ci->dropped) > 0;
    }
    if (f == NULL || fclose(f) != 0 || !ok) {
        die("%s: cannot write", path);
    }
}

static void read_info(const char *path, capinfo_t *ci)
{
    FILE *f = fopen(path, "r");
    char name[64];
    unsigned long long v;
    int ok = f != NULL;
    for (size_t k = 0; ok && k < sizeof info_keys / sizeof info_keys[0]; k++) {
        ok = fscanf(f, "%63s %llu", name, &v) == 2 && strcmp(name, info_keys[k]) == 0;
        *info_field(ci, k) = v;
    }
    unsigned long long segs, drops;
    if (ok && fscanf(f, " segments %llu dropped %llu", &segs, &drops) == 2) {
        ci->segments = segs;
        ci->dropped = drops;
    }
    if (f != NULL) {
        fclose(f);
    }
    if (!ok) {
        die("%s: missing or unreadable (was the directory written by --keep?)", path);
    }
}

/*
 * Writes DIR/NAME.pcap (and DIR/NAME-prefix.pcap with the first prefix connections when prefix > 0),
 * DIR/NAME.keylog and DIR/NAME.info; with lossy, also DIR/lossy.pcap (DIR/lossy-prefix.pcap) and
 * DIR/lossy.info: the same connections with 1 % of the segments left out.
 */
static void generate(const char *name, SSL_CTX *sctx, uint64_t conns, uint64_t size, uint64_t prefix, capinfo_t *ci,
                     capinfo_t *lossy)
{
    char path[4096], ppath[4096], kpath[4096], ipath[4096], tmp[512];
    char lpath[4096], lppath[4096], lipath[4096];
    path_in(lpath, sizeof lpath, workdir, "lossy.pcap");
    path_in(lppath, sizeof lppath, workdir, "lossy-prefix.pcap");
    path_in(lipath, sizeof lipath, workdir, "lossy.info");
    snprintf(tmp, sizeof tmp, "%s.pcap", name);
    path_in(path, sizeof path, workdir, tmp);
    snprintf(tmp, sizeof tmp, "%s-prefix.pcap", name);
    path_in(ppath, sizeof ppath, workdir, tmp);
    snprintf(tmp, sizeof tmp, "%s.keylog", name);
    path_in(kpath, sizeof kpath, workdir, tmp);
    snprintf(tmp, sizeof tmp, "%s.info", name);
    path_in(ipath, sizeof ipath, workdir, tmp);

    SSL_CTX *cctx = ets_pair_client_ctx();
    if (cctx == NULL) {
        die("client SSL_CTX");
    }
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
    gen_t g = {.ts = TS_START, .rng = LOSS_SEED};
    if ((g.keylog = fopen(kpath, "w")) == NULL) {
        die("%s: %s", kpath, strerror(errno));
    }
    uint8_t *body = malloc(RECORD);
    if (body == NULL) {
        die("out of memory");
    }
    for (size_t k = 0; k < RECORD; k++) {
        body[k] = (uint8_t)("0123456789abcdefghijklmnopqrstuvwxyz\n"[k % 37]);
    }
    msp_error_t err = {0};
    if (msp_pcap_out_open(path, &g.out[0], &err) != MSP_OK ||
        (prefix > 0 && msp_pcap_out_open(ppath, &g.out[1], &err) != MSP_OK) ||
        (lossy != NULL && msp_pcap_out_open(lpath, &g.out[2], &err) != MSP_OK) ||
        (lossy != NULL && prefix > 0 && msp_pcap_out_open(lppath, &g.out[3], &err) != MSP_OK)) {
        die("%s", err.detail);
    }
    memset(ci, 0, sizeof *ci);
    for (uint64_t i = 0; i < conns; i++) {
        one_connection(&g, sctx, cctx, i, size, body, i < prefix);
        if (i + 1 == prefix) {
            ci->prefix_plaintext = g.plaintext;
            ci->prefix_records = g.records;
        }
    }
    for (int k = 0; k < 4; k++) {
        if (g.out[k] != NULL && msp_pcap_out_close(g.out[k], &err) != MSP_OK) {
            die("%s", err.detail);
        }
    }
    if (fclose(g.keylog) != 0) {
        die("%s: cannot write", kpath);
    }
    ci->conns = conns;
    ci->size = size;
    ci->plaintext = g.plaintext;
    ci->records = g.records;
    ci->bytes = file_size(path);
    ci->prefix_conns = prefix;
    ci->prefix_bytes = prefix > 0 ? file_size(ppath) : 0;
    write_info(ipath, ci);
    if (lossy != NULL) {
        *lossy = *ci;
        lossy->bytes = file_size(lpath);
        lossy->prefix_bytes = prefix > 0 ? file_size(lppath) : 0;
        lossy->segments = g.segments;
        lossy->dropped = g.dropped;
        write_info(lipath, lossy);
    }
    free(body);
    SSL_CTX_free(cctx);
}

/* ---- child runs ---- */

/* --workers: the msp runs that pass --workers run_workers, on run_ncpu cores ending at run_cpu (else: one) */
static const char *run_workers;
static int run_cpu, run_ncpu = 1;

static void widen(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = run_cpu; c > run_cpu - run_ncpu && c >= 0; c--) {
        CPU_SET(c, &set);
    }
    if (run_ncpu > 1 && sched_setaffinity(0, sizeof set, &set) != 0) {
        _exit(125);
    }
}

/* Runs argv with stdout to out_path (NULL: /dev/null) and stderr to err_path; times it. */
static run_t run_child(char *const argv[], const char *out_path, const char *err_path, int *status)
{
    run_t r = {0};
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        die("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        widen();
        int o = open(out_path != NULL ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) {
            _exit(126);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    struct rusage ru;
    int st = 0;
    if (wait4(pid, &st, 0, &ru) != pid) {
        die("wait4: %s", strerror(errno));
    }
    r.wall = now() - t0;
    r.cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
            (double)ru.ru_stime.tv_usec * 1e-6;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    r.ok = 1;
    return r;
}

/* The first line of a file (for an error message). */
static void first_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f != NULL && fgets(out, (int)cap, f) != NULL) {
        out[strcspn(out, "\n")] = '\0';
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* The last line of a file that starts with prefix. */
static int last_line(const char *path, const char *prefix, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    char line[LINE_MAX_LEN];
    int found = 0;
    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            snprintf(out, cap, "%s", line);
            out[strcspn(out, "\n")] = '\0';
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static uint64_t json_u64(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p != NULL ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

/*
 * msp ets decrypt on one capture; its summary must show every connection decrypted and all the plaintext.
 * lossy: a capture with segments left out, where only the summary line is needed (exit 1 says some
 * connections could not be decrypted) and r.got takes what it recovered.
 */
static run_t run_msp(const opts_t *o, const char *key, const char *cap, uint64_t conns, uint64_t plaintext,
                     const char *out_dir, int lossy)
{
    char ev[4096], errp[4096], line[LINE_MAX_LEN];
    path_in(ev, sizeof ev, workdir, "msp-events.json");
    path_in(errp, sizeof errp, workdir, "msp-stderr.txt");
    char *argv[] = {(char *)o->msp,  "ets",       "decrypt",  "--key", (char *)key,
                    "--pcap",        (char *)cap, "--events", ev,      out_dir != NULL ? "--out" : NULL,
                    (char *)out_dir, NULL,        NULL,       NULL};
    if (run_workers != NULL) {
        char **end = argv + (out_dir != NULL ? 11 : 9);
        end[0] = "--workers";
        end[1] = (char *)run_workers;
    }
    int status;
    run_t r = run_child(argv, NULL, errp, &status);
    r.ok = 0;
    int found = last_line(ev, "{\"event\":\"summary\"", line, sizeof line);
    if (found) {
        r.got[0] = json_u64(line, "decrypted");
        r.got[1] = json_u64(line, "undecryptable");
        r.got[2] = json_u64(line, "plaintext");
    }
    if (!found) {
        first_line(errp, line, sizeof line);
        snprintf(r.why, sizeof r.why, "exit %d, no summary: %.300s", status, line);
    } else if (lossy) {
        r.ok = status == 0 || status == 1;
        snprintf(r.why, sizeof r.why, "exit %d: %.300s", status, line);
    } else if (json_u64(line, "decrypted") != conns || json_u64(line, "undecryptable") != 0 ||
               json_u64(line, "flows") != conns || json_u64(line, "plaintext") != plaintext || status != 0) {
        snprintf(r.why, sizeof r.why, "exit %d, expected %llu flows decrypted and %llu plaintext bytes: %.300s", status,
                 (unsigned long long)conns, (unsigned long long)plaintext, line);
    } else {
        r.ok = 1;
    }
    unlink(ev);
    unlink(errp);
    return r;
}

/*
 * tshark with the key log. Decrypting is not optional for it here: the
 * statistics count HTTP requests and responses, and the records whose
 * content type is application data. In TLS 1.3 all three exist only inside
 * decrypted records (the outer type of every protected record is 23, the
 * real one is encrypted), so the counts must be exactly the connections and
 * the application data records generated (one per SSL_write): one record
 * not decrypted and the run fails. http.desegment_body is off so that tshark
 * does not also reassemble the bodies (as performance.md measured it); the
 * TLS layer still reassembles, decrypts and dissects every record.
 */
static run_t run_tshark(const opts_t *o, const char *cap, const char *keylog, uint64_t conns, uint64_t records,
                        int lossy)
{
    char outp[4096], errp[4096], kl[4200], line[LINE_MAX_LEN];
    path_in(outp, sizeof outp, workdir, "tshark-out.txt");
    path_in(errp, sizeof errp, workdir, "tshark-stderr.txt");
    snprintf(kl, sizeof kl, "tls.keylog_file:%s", keylog);
    char *argv[] = {(char *)o->tshark,
                    "-n",
                    "-r",
                    (char *)cap,
                    "-o",
                    kl,
                    "-o",
                    "http.desegment_body:FALSE",
                    "-q",
                    "-z",
                    "io,stat,0,COUNT(http.request)http.request,COUNT(http.response)http.response,"
                    "COUNT(tls.record.content_type)tls.record.content_type==23",
                    NULL};
    int status;
    run_t r = run_child(argv, outp, errp, &status);
    r.ok = 0;
    /* the last row of the io,stat table: "| 0.000 <> 12.345 | 10000 | 10000 |" */
    unsigned long long req = 0, resp = 0, rec = 0;
    int found = 0;
    FILE *f = fopen(outp, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "<>");
        if (p != NULL && (p = strchr(p, '|')) != NULL && sscanf(p, "| %llu | %llu | %llu |", &req, &resp, &rec) == 3) {
            found = 1;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    r.got[0] = req;
    r.got[1] = resp;
    r.got[2] = rec;
    if (status != 0 || !found) {
        first_line(errp, line, sizeof line);
        snprintf(r.why, sizeof r.why, "exit %d, no statistics: %.300s", status, line);
    } else if (lossy) {
        r.ok = 1; /* what it dissected is the figure; nothing to expect */
    } else if (req != conns || resp != conns || rec != records) {
        snprintf(r.why, sizeof r.why,
                 "decrypted %llu requests, %llu responses, %llu application data records; expected %llu, %llu, %llu",
                 req, resp, rec, (unsigned long long)conns, (unsigned long long)conns, (unsigned long long)records);
    } else {
        r.ok = 1;
    }
    unlink(outp);
    unlink(errp);
    return r;
}

/* ---- crypto floors ---- */

/* The client's key share as a decryptor gets it: bytes off the wire, decoded (P-256: on the curve, checked). */
static EVP_PKEY *decode_share(EVP_PKEY *priv, const char *group, const uint8_t *share, size_t len)
{
    if (strcmp(group, "x25519") == 0) {
        return EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, share, len);
    }
    EVP_PKEY *p = EVP_PKEY_new();
    if (p != NULL && (EVP_PKEY_copy_parameters(p, priv) != 1 || EVP_PKEY_set1_encoded_public_key(p, share, len) != 1)) {
        EVP_PKEY_free(p);
        p = NULL;
    }
    return p;
}

/*
 * ECDH per second as a passive decryptor must do it once per connection:
 * decode the client's share, a fresh context, derive. The peer check is
 * what the group needs and no more: X25519's (all-zero output), and for
 * P-256 only the on-curve check of the decoding (cofactor 1), not OpenSSL's
 * default n * Q = O, a second scalar multiplication.
 */
static double ecdh_rate(const char *group, double *cpu_rate)
{
    EVP_PKEY *priv = make_key(group), *client = make_key(group);
    uint8_t secret[66], *share = NULL;
    size_t share_len = EVP_PKEY_get1_encoded_public_key(client, &share);
    int validate = strcmp(group, "x25519") == 0;
    uint64_t n = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        for (int i = 0; i < 64; i++) {
            size_t len = sizeof secret;
            EVP_PKEY *peer = decode_share(priv, group, share, share_len);
            EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
            if (peer == NULL || ctx == NULL || EVP_PKEY_derive_init(ctx) <= 0 ||
                EVP_PKEY_derive_set_peer_ex(ctx, peer, validate) <= 0 || EVP_PKEY_derive(ctx, secret, &len) <= 0) {
                die("ECDH");
            }
            EVP_PKEY_CTX_free(ctx);
            EVP_PKEY_free(peer);
        }
        n += 64;
        t = now() - t0;
    } while (t < FLOOR_SECONDS);
    *cpu_rate = (double)n / (cpu_now() - c0);
    OPENSSL_free(share);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(client);
    return (double)n / t;
}

/* AEAD decryption (tag checked) of RECORD-byte records with a 5-byte header as AAD, bytes per second. */
static double aead_rate(const EVP_CIPHER *cipher, double *cpu_rate)
{
    static uint8_t key[32], iv[12] = {1}, aad[5] = {23, 3, 3, 0x40, 0x11}, in[RECORD], ct[RECORD], pt[RECORD];
    uint8_t tag[16];
    int n = 0, f = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c == NULL || !EVP_EncryptInit_ex(c, cipher, NULL, key, iv) || !EVP_EncryptUpdate(c, NULL, &n, aad, 5) ||
        !EVP_EncryptUpdate(c, ct, &n, in, RECORD) || !EVP_EncryptFinal_ex(c, ct + n, &f) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag) || !EVP_DecryptInit_ex(c, cipher, NULL, key, iv)) {
        die("AEAD set-up");
    }
    uint64_t iters = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        for (int i = 0; i < 64; i++) {
            if (!EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) || !EVP_DecryptUpdate(c, NULL, &n, aad, 5) ||
                !EVP_DecryptUpdate(c, pt, &n, ct, RECORD) || !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 16, tag) ||
                EVP_DecryptFinal_ex(c, pt + n, &f) <= 0) {
                die("AEAD decryption");
            }
        }
        iters += 64;
        t = now() - t0;
    } while (t < FLOOR_SECONDS);
    *cpu_rate = (double)iters * RECORD / (cpu_now() - c0);
    EVP_CIPHER_CTX_free(c);
    return (double)iters * RECORD / t;
}

/* ---- arguments ---- */

static uint64_t parse_num(const char *opt, const char *v, uint64_t lo, uint64_t hi)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || v[0] == '-' || v[0] == '\0' || n < lo || n > hi) {
        fprintf(stderr, "bench_ets: error: %s wants a number from %llu to %llu, not '%s'\n", opt,
                (unsigned long long)lo, (unsigned long long)hi, v);
        exit(2);
    }
    return n;
}

static void default_msp(opts_t *o)
{
    static char path[4200];
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "bench_ets: error: cannot find this program's directory; use --msp PATH\n");
        exit(2);
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(path, sizeof path, "%s/../tools/msp/msp", self);
    o->msp = path;
}

static void parse_args(int argc, char **argv, opts_t *o)
{
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    *o = (opts_t){.conns = DEFAULT_CONNS,
                  .handshakes = DEFAULT_HANDSHAKES,
                  .group = "x25519",
                  .tshark = "tshark",
                  .tmp = "/tmp",
                  .cpu = ncpu > 0 ? ncpu - 1 : 0,
                  .workers = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        } else if (strcmp(a, "--skip-tshark") == 0) {
            o->skip_tshark = 1;
            continue;
        } else if (strcmp(a, "--with-out") == 0) {
            o->with_out = 1;
            continue;
        } else if (strncmp(a, "--", 2) != 0 || v == NULL) {
            fprintf(stderr, "bench_ets: error: unexpected argument '%s' (see bench_ets --help)\n", a);
            exit(2);
        }
        i++;
        if (strcmp(a, "--connections") == 0) {
            o->conns = parse_num(a, v, 1, MAX_CONNS);
        } else if (strcmp(a, "--size") == 0) {
            o->size = parse_num(a, v, 0, MAX_SIZE);
        } else if (strcmp(a, "--handshakes") == 0) {
            o->handshakes = parse_num(a, v, 0, MAX_CONNS);
        } else if (strcmp(a, "--tshark-limit") == 0) {
            o->tshark_limit = parse_num(a, v, 1, MAX_CONNS);
        } else if (strcmp(a, "--workers") == 0) {
            o->workers = (unsigned)parse_num(a, v, 1, 256);
        } else if (strcmp(a, "--cpu") == 0) {
            o->cpu = (int)parse_num(a, v, 0, 1023);
        } else if (strcmp(a, "--group") == 0 && (strcmp(v, "x25519") == 0 || strcmp(v, "p256") == 0)) {
            o->group = v;
        } else if (strcmp(a, "--capture") == 0) {
            o->capture = v;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = v;
        } else if (strcmp(a, "--msp") == 0) {
            o->msp = v;
        } else if (strcmp(a, "--tshark") == 0) {
            o->tshark = v;
        } else if (strcmp(a, "--tmp") == 0) {
            o->tmp = v;
        } else {
            fprintf(stderr, "bench_ets: error: unexpected argument '%s %s' (see bench_ets --help)\n", a, v);
            exit(2);
        }
    }
    if (o->size == 0 && o->capture == NULL) {
        o->size = ((1ull << 30) + o->conns - 1) / o->conns;
    }
    if (o->msp == NULL) {
        default_msp(o);
    }
    if (access(o->msp, X_OK) != 0) {
        fprintf(stderr, "bench_ets: error: %s: not an executable msp (build the msp target, or use --msp PATH)\n",
                o->msp);
        exit(2);
    }
    if (o->capture != NULL && o->keep != NULL) {
        fprintf(stderr, "bench_ets: error: --capture and --keep together (the captures are already kept)\n");
        exit(2);
    }
}

/* ---- the table ---- */

typedef struct row {
    const char *tool, *capture, *note;
    run_t r;
    uint64_t bytes, conns;
} row_t;

static double mbps(const row_t *x)
{
    return (double)x->bytes / x->r.wall / 1e6;
}

static double cps(const row_t *x)
{
    return (double)x->conns / x->r.wall;
}

/* floor_s, floor_cpu_s: the floor's seconds per connection, in wall and in CPU time (0: no floor column) */
static void print_row(const row_t *x, const row_t *base, double floor_s, double floor_cpu_s)
{
    if (!x->r.ok) {
        printf("%-26s %-11s %8s %8s %9s %9s %9s %8s %8s  FAILED: %s\n", x->tool, x->capture, "-", "-", "-", "-", "-",
               "-", "-", x->r.why);
        return;
    }
    char ratio[32] = "-", fl[32] = "-", flc[32] = "-";
    if (base != NULL && base->r.ok) {
        snprintf(ratio, sizeof ratio, "%.2f", cps(x) / cps(base));
    }
    if (floor_s > 0) {
        snprintf(fl, sizeof fl, "%.2f", floor_s * (double)x->conns / x->r.wall);
        snprintf(flc, sizeof flc, "%.2f", floor_cpu_s * (double)x->conns / x->r.cpu);
    }
    printf("%-26s %-11s %8.2f %8.2f %9.1f %9.0f %9s %8s %8s  %s\n", x->tool, x->capture, x->r.wall, x->r.cpu, mbps(x),
           cps(x), ratio, fl, flc, x->note != NULL ? x->note : "");
}

/* What each tool made of the lossy capture: msp's plaintext, tshark's HTTP responses and records. */
static void loss_lines(const capinfo_t *cl, const row_t *ml, const row_t *tl)
{
    printf(
        "\nlossy capture: the bulk capture's connections with %llu of %llu segments left out (%.2f %%, fixed seed)\n",
        (unsigned long long)cl->dropped, (unsigned long long)cl->segments,
        cl->segments > 0 ? 100.0 * (double)cl->dropped / (double)cl->segments : 0.0);
    if (ml->r.ok) {
        printf("  msp:    %llu of %llu connections decrypted to the end, %llu undecryptable; plaintext %llu of %llu "
               "bytes (%.1f %%)\n",
               (unsigned long long)ml->r.got[0], (unsigned long long)cl->conns, (unsigned long long)ml->r.got[1],
               (unsigned long long)ml->r.got[2], (unsigned long long)cl->plaintext,
               100.0 * (double)ml->r.got[2] / (double)cl->plaintext);
    }
    if (tl != NULL && tl->r.ok) {
        int pre = cl->prefix_conns > 0;
        uint64_t conns = pre ? cl->prefix_conns : cl->conns, records = pre ? cl->prefix_records : cl->records;
        printf("  tshark: %llu of %llu HTTP responses, %llu of %llu application data records dissected (%.1f %%)%s\n",
               (unsigned long long)tl->r.got[1], (unsigned long long)conns, (unsigned long long)tl->r.got[2],
               (unsigned long long)records, 100.0 * (double)tl->r.got[2] / (double)records,
               pre ? " (prefix capture)" : "");
    }
}

/*
 * The direction, per core, as PASS/FAIL lines: information, not the exit status. The verdict is on
 * wall time, as the issue measures it; the CPU-time figure beside it is what a core of a shared machine did.
 */
static void direction_lines(const row_t *mb, const row_t *mh, double ecdh, double ecdh_cpu)
{
    if (mb->r.ok) {
        printf("direction (issue) bulk, >= 1000 MB/s per core: %s (%.0f MB/s; in CPU time %.0f MB/s)\n",
               mbps(mb) >= 1000 ? "PASS" : "FAIL", mbps(mb), (double)mb->bytes / mb->r.cpu / 1e6);
    } else {
        printf("direction (issue) bulk, >= 1000 MB/s per core: FAIL (the run failed)\n");
    }
    if (mh == NULL) {
        printf("direction (issue) handshakes, >= 0.8 x the ECDH floor per core: not measured (--handshakes 0)\n");
    } else if (mh->r.ok) {
        double cpu_rate = (double)mh->conns / mh->r.cpu;
        printf("direction (issue) handshakes, >= 0.8 x the ECDH floor per core: %s (%.0f/s = %.2f x %.0f/s; in CPU "
               "time %.0f/s = %.2f x %.0f/s)\n",
               cps(mh) >= 0.8 * ecdh ? "PASS" : "FAIL", cps(mh), cps(mh) / ecdh, ecdh, cpu_rate, cpu_rate / ecdh_cpu,
               ecdh_cpu);
    } else {
        printf("direction (issue) handshakes, >= 0.8 x the ECDH floor per core: FAIL (the run failed)\n");
    }
}

/* ---- main ---- */

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "bench_ets: error: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
        exit(2);
    }
}

static void setup_dir(const opts_t *o)
{
    if (o->capture != NULL) {
        snprintf(workdir, sizeof workdir, "%s", o->capture);
        keep_workdir = 1;
        return;
    }
    if (o->keep != NULL) {
        if (mkdir(o->keep, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "bench_ets: error: %s: %s\n", o->keep, strerror(errno));
            exit(2);
        }
        snprintf(workdir, sizeof workdir, "%s", o->keep);
        keep_workdir = 1;
        return;
    }
    if ((size_t)snprintf(workdir, sizeof workdir, "%s/bench_ets.XXXXXX", o->tmp) >= sizeof workdir ||
        mkdtemp(workdir) == NULL) {
        fprintf(stderr, "bench_ets: error: cannot make a temporary directory in %s: %s\n", o->tmp, strerror(errno));
        exit(2);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    cleanup();
    _exit(1);
}

int main(int argc, char **argv)
{
    opts_t o;
    parse_args(argc, argv, &o);
    pin(o.cpu); /* the children inherit it: everything runs on one core */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setup_dir(&o);

    char key_path[4096], bulk[4096], bulk_pre[4096], bulk_kl[4096], hs[4096], hs_pre[4096], hs_kl[4096], info[4096];
    char keyname[64];
    snprintf(keyname, sizeof keyname, "ets-%s.pem", o.group);
    path_in(key_path, sizeof key_path, workdir, keyname);
    path_in(bulk, sizeof bulk, workdir, "bulk.pcap");
    path_in(bulk_pre, sizeof bulk_pre, workdir, "bulk-prefix.pcap");
    path_in(bulk_kl, sizeof bulk_kl, workdir, "bulk.keylog");
    path_in(hs, sizeof hs, workdir, "handshakes.pcap");
    path_in(hs_pre, sizeof hs_pre, workdir, "handshakes-prefix.pcap");
    path_in(hs_kl, sizeof hs_kl, workdir, "handshakes.keylog");
    char lossy[4096], lossy_pre[4096];
    path_in(lossy, sizeof lossy, workdir, "lossy.pcap");
    path_in(lossy_pre, sizeof lossy_pre, workdir, "lossy-prefix.pcap");
    capinfo_t cb = {0}, ch = {0}, cl = {0};
    double gen_bulk = 0, gen_hs = 0;
    if (o.capture != NULL) {
        path_in(info, sizeof info, workdir, "bulk.info");
        read_info(info, &cb);
        path_in(info, sizeof info, workdir, "handshakes.info");
        if (access(info, R_OK) == 0) {
            read_info(info, &ch);
        }
        path_in(info, sizeof info, workdir, "lossy.info");
        if (access(info, R_OK) == 0) {
            read_info(info, &cl); /* a directory kept before the lossy capture existed has none */
        }
        if (access(key_path, R_OK) != 0) {
            die("%s: no static key for --group %s in %s", key_path, o.group, workdir);
        }
        if (o.tshark_limit != 0 && o.tshark_limit != cb.prefix_conns) {
            die("--tshark-limit %llu, but the kept prefix captures hold %llu connections",
                (unsigned long long)o.tshark_limit, (unsigned long long)cb.prefix_conns);
        }
        o.tshark_limit = cb.prefix_conns;
    } else {
        EVP_PKEY *key = make_key(o.group), *cert_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (cert_key == NULL) {
            die("cannot generate the certificate key");
        }
        X509 *cert = make_cert(cert_key);
        write_key(key_path, key);
        msp_error_t err = {0};
        OSSL_LIB_CTX *lib = NULL;
        SSL_CTX *sctx = NULL;
        if (msp_ets_libctx_new(&key, 1, &lib, &err) != MSP_OK || msp_ets_server_ctx_new(lib, &sctx, &err) != MSP_OK) {
            die("ETS server: %s", err.detail);
        }
        if (!SSL_CTX_use_certificate(sctx, cert) || !SSL_CTX_use_PrivateKey(sctx, cert_key)) {
            die("server certificate");
        }
        double t0 = now();
        generate("bulk", sctx, o.conns, o.size, o.tshark_limit < o.conns ? o.tshark_limit : 0, &cb, &cl);
        gen_bulk = now() - t0;
        if (o.handshakes > 0) {
            t0 = now();
            generate("handshakes", sctx, o.handshakes, TINY_RESPONSE,
                     o.tshark_limit < o.handshakes ? o.tshark_limit : 0, &ch, NULL);
            gen_hs = now() - t0;
        }
        SSL_CTX_free(sctx);
        msp_ets_libctx_free(lib);
        X509_free(cert);
        EVP_PKEY_free(cert_key);
        EVP_PKEY_free(key);
    }

    warm(bulk);
    if (ch.conns > 0) {
        warm(hs);
    }
    if (cb.prefix_conns > 0) {
        warm(bulk_pre);
    }
    if (ch.prefix_conns > 0) {
        warm(hs_pre);
    }
    if (cl.conns > 0) {
        warm(lossy);
    }
    if (cl.prefix_conns > 0) {
        warm(lossy_pre);
    }

    /* the crypto floors, on the same core, before the runs so nothing else competes */
    double ecdh_cpu, aead_cpu[3];
    double ecdh = ecdh_rate(o.group, &ecdh_cpu);
    double aead[3] = {aead_rate(EVP_aes_128_gcm(), &aead_cpu[0]), aead_rate(EVP_aes_256_gcm(), &aead_cpu[1]),
                      aead_rate(EVP_chacha20_poly1305(), &aead_cpu[2])};

    /* msp */
    row_t rows[12]; /* msp: bulk, handshakes, 2 with --workers, lossy, --out; tshark: 3 */
    size_t nrows = 0;
    row_t *mb = &rows[nrows++], *mh = NULL, *mo = NULL, *tb = NULL, *th = NULL, *ml = NULL, *tl = NULL;
    *mb = (row_t){"msp ets decrypt", "bulk",  NULL, run_msp(&o, key_path, bulk, cb.conns, cb.plaintext, NULL, 0),
                  cb.bytes,          cb.conns};
    if (ch.conns > 0) {
        mh = &rows[nrows++];
        *mh = (row_t){"msp ets decrypt", "handshakes", NULL, run_msp(&o, key_path, hs, ch.conns, ch.plaintext, NULL, 0),
                      ch.bytes,          ch.conns};
    }
    row_t *wb = NULL, *wh = NULL;
    static char wname[64];
    if (o.workers > 1) {
        static char wnum[16];
        snprintf(wnum, sizeof wnum, "%u", o.workers);
        snprintf(wname, sizeof wname, "msp ets decrypt --workers %u", o.workers);
        run_workers = wnum, run_cpu = o.cpu, run_ncpu = (int)o.workers;
        wb = &rows[nrows++];
        *wb = (row_t){wname,    "bulk",  NULL, run_msp(&o, key_path, bulk, cb.conns, cb.plaintext, NULL, 0),
                      cb.bytes, cb.conns};
        if (ch.conns > 0) {
            wh = &rows[nrows++];
            *wh = (row_t){wname,    "handshakes", NULL, run_msp(&o, key_path, hs, ch.conns, ch.plaintext, NULL, 0),
                          ch.bytes, ch.conns};
        }
        run_workers = NULL, run_ncpu = 1;
    }
    if (cl.conns > 0) {
        ml = &rows[nrows++];
        *ml = (row_t){"msp ets decrypt",
                      "lossy",
                      "1 % of the segments left out",
                      run_msp(&o, key_path, lossy, cl.conns, cl.plaintext, NULL, 1),
                      cl.bytes,
                      cl.conns};
    }
    if (o.with_out) {
        char od[4096];
        path_in(od, sizeof od, workdir, "plaintext");
        mo = &rows[nrows++];
        *mo = (row_t){"msp ets decrypt --out DIR",
                      "bulk",
                      "plaintext files on the capture's file system",
                      run_msp(&o, key_path, bulk, cb.conns, cb.plaintext, od, 0),
                      cb.bytes,
                      cb.conns};
        remove_tree(od);
    }
    /* tshark */
    static char note_b[128], note_h[128];
    if (!o.skip_tshark) {
        int pre_b = cb.prefix_conns > 0, pre_h = ch.prefix_conns > 0;
        snprintf(note_b, sizeof note_b, "first %llu connections only (prefix capture)",
                 (unsigned long long)cb.prefix_conns);
        snprintf(note_h, sizeof note_h, "first %llu connections only (prefix capture)",
                 (unsigned long long)ch.prefix_conns);
        tb = &rows[nrows++];
        *tb = (row_t){"tshark -o tls.keylog_file",
                      "bulk",
                      pre_b ? note_b : NULL,
                      run_tshark(&o, pre_b ? bulk_pre : bulk, bulk_kl, pre_b ? cb.prefix_conns : cb.conns,
                                 pre_b ? cb.prefix_records : cb.records, 0),
                      pre_b ? cb.prefix_bytes : cb.bytes,
                      pre_b ? cb.prefix_conns : cb.conns};
        if (ch.conns > 0) {
            th = &rows[nrows++];
            *th = (row_t){"tshark -o tls.keylog_file",
                          "handshakes",
                          pre_h ? note_h : NULL,
                          run_tshark(&o, pre_h ? hs_pre : hs, hs_kl, pre_h ? ch.prefix_conns : ch.conns,
                                     pre_h ? ch.prefix_records : ch.records, 0),
                          pre_h ? ch.prefix_bytes : ch.bytes,
                          pre_h ? ch.prefix_conns : ch.conns};
        }
        if (cl.conns > 0) {
            int pre_l = cl.prefix_conns > 0;
            tl = &rows[nrows++];
            *tl = (row_t){"tshark -o tls.keylog_file",
                          "lossy",
                          pre_l ? note_b : "1 % of the segments left out",
                          run_tshark(&o, pre_l ? lossy_pre : lossy, bulk_kl, 0, 0, 1),
                          pre_l ? cl.prefix_bytes : cl.bytes,
                          pre_l ? cl.prefix_conns : cl.conns};
        }
    }

    /* The floor of a capture: one ECDH per connection and the AEAD over its plaintext, suites 1/3 each. */
    double aead_mix = 3 / (1 / aead[0] + 1 / aead[1] + 1 / aead[2]);
    double fb = 1 / ecdh + (double)cb.plaintext / (double)cb.conns / aead_mix; /* seconds per connection */
    double fh = ch.conns > 0 ? 1 / ecdh + (double)ch.plaintext / (double)ch.conns / aead_mix : 0;
    /* the same in CPU seconds, for the CPU columns */
    double aead_mix_cpu = 3 / (1 / aead_cpu[0] + 1 / aead_cpu[1] + 1 / aead_cpu[2]);
    double fb_cpu = 1 / ecdh_cpu + (double)cb.plaintext / (double)cb.conns / aead_mix_cpu;
    double fh_cpu = ch.conns > 0 ? 1 / ecdh_cpu + (double)ch.plaintext / (double)ch.conns / aead_mix_cpu : 0;

    printf("bench_ets: one core (CPU %d), msp = %s\n", o.cpu, o.msp);
    printf("bulk capture:      %.1f MB, %llu TLS 1.3 connections, %llu-byte responses, %.1f MB plaintext%s\n",
           (double)cb.bytes / 1e6, (unsigned long long)cb.conns, (unsigned long long)cb.size,
           (double)cb.plaintext / 1e6, o.capture != NULL ? " (reused)" : "");
    if (ch.conns > 0) {
        printf("handshake capture: %.1f MB, %llu TLS 1.3 connections, %d-byte responses\n", (double)ch.bytes / 1e6,
               (unsigned long long)ch.conns, TINY_RESPONSE);
    }
    printf("static key %s; server ECDSA P-256 certificate; suites rotate per connection: 1/3 each AES-128-GCM, "
           "AES-256-GCM, ChaCha20-Poly1305; 2 session tickets per connection\n",
           o.group);
    if (o.capture == NULL) {
        printf("generation (not compared): bulk %.1f s, handshakes %.1f s\n", gen_bulk, gen_hs);
    }
    printf("msp: every connection decrypted and exactly the plaintext generated (its summary line, checked)\n");
    if (!o.skip_tshark) {
        printf("tshark: -n -r CAP -o tls.keylog_file:KEYLOG -o http.desegment_body:FALSE -q -z io,stat,0,"
               "COUNT(http.request)...,COUNT(http.response)...,COUNT(tls.record.content_type)tls.record.content_type=="
               "23:\n"
               "        requests, responses and inner content types exist only in decrypted TLS 1.3 records; the "
               "counts must\n"
               "        equal the connections and the application data records generated, so it decrypted every one\n");
    }
    printf("MB/s: capture file bytes per wall second; x floor: the crypto floor's time for the capture / wall time;\n"
           "x fl CPU: the same in CPU time (the floor's CPU time / the run's), steadier on a shared machine\n\n");
    printf("%-26s %-11s %8s %8s %9s %9s %9s %8s %8s\n", "tool", "capture", "wall s", "CPU s", "MB/s", "conn/s",
           "x tshark", "x floor", "x fl CPU");
    print_row(mb, tb, fb, fb_cpu);
    if (wb != NULL) {
        print_row(wb, tb, fb, fb_cpu);
    }
    if (mo != NULL) {
        print_row(mo, tb, fb, fb_cpu);
    }
    if (tb != NULL) {
        print_row(tb, NULL, fb, fb_cpu);
    }
    if (mh != NULL) {
        print_row(mh, th, fh, fh_cpu);
    }
    if (wh != NULL) {
        print_row(wh, th, fh, fh_cpu);
    }
    if (th != NULL) {
        print_row(th, NULL, fh, fh_cpu);
    }
    if (ml != NULL) {
        print_row(ml, tl, 0, 0);
    }
    if (tl != NULL) {
        print_row(tl, NULL, 0, 0);
    }
    printf("%-26s %-11s %8.2f %8.2f %9.1f %9.0f %9s %8s %8s\n", "crypto floor", "bulk", fb * (double)cb.conns,
           fb_cpu * (double)cb.conns, (double)cb.bytes / (fb * (double)cb.conns) / 1e6, 1 / fb, "-", "1.00", "1.00");
    if (ch.conns > 0) {
        printf("%-26s %-11s %8.2f %8.2f %9.1f %9.0f %9s %8s %8s\n", "crypto floor", "handshakes", fh * (double)ch.conns,
               fh_cpu * (double)ch.conns, (double)ch.bytes / (fh * (double)ch.conns) / 1e6, 1 / fh, "-", "1.00",
               "1.00");
    }
    printf("\nfloors measured now (one core): %s ECDH %.0f/s (share decoded, fresh context, derive); decryption of "
           "%d-byte records: AES-128-GCM %.0f MB/s, AES-256-GCM %.0f MB/s, ChaCha20-Poly1305 %.0f MB/s\n",
           o.group, ecdh, RECORD, aead[0] / 1e6, aead[1] / 1e6, aead[2] / 1e6);
    if (ml != NULL) {
        loss_lines(&cl, ml, tl);
    }
    direction_lines(mb, mh, ecdh, ecdh_cpu);
    if (wb != NULL && wb->r.ok && mb->r.ok) {
        printf("--workers %u on %u cores (CPU %d down): bulk x%.2f, handshakes ", o.workers, o.workers, o.cpu,
               mb->r.wall / wb->r.wall);
        if (wh != NULL && wh->r.ok && mh != NULL && mh->r.ok) {
            printf("x%.2f", mh->r.wall / wh->r.wall);
        } else {
            printf("-");
        }
        printf(" the speed of one worker (wall time); direction (issue): >= 1.8 for 2 workers\n");
    }
    if (keep_workdir) {
        printf("captures, key logs and static key in %s\n", workdir);
    }

    printf("\ncsv,tool,capture,wall_s,cpu_s,mbps,conns_per_s\n");
    int ok = 1;
    for (size_t k = 0; k < nrows; k++) {
        ok &= rows[k].r.ok;
        if (rows[k].r.ok) {
            printf("csv,%s,%s,%.3f,%.3f,%.1f,%.0f\n", rows[k].tool, rows[k].capture, rows[k].r.wall, rows[k].r.cpu,
                   mbps(&rows[k]), cps(&rows[k]));
        }
    }
    cleanup();
    if (!ok) {
        fprintf(stderr, "bench_ets: error: a run failed or was inconsistent (see the table)\n");
    }
    return ok ? 0 : 1;
}
