/*
 * Loopback benchmark of TLMSP against what users run today (issue 4):
 *
 *   tlmsp-r     client -> msp middlebox with read access -> server
 *   tlmsp-none  the same, middlebox without access to the context
 *   tls         direct TLS 1.2 (OpenSSL, ECDHE-RSA-AES128-GCM-SHA256), no middlebox
 *   haproxy     a split proxy: HAProxy terminating TLS and re-encrypting to the
 *               server (skipped, and said so, when haproxy is not installed)
 *
 * For each: a bulk transfer (default 1 GiB) client -> server, and 64-byte
 * ping-pong round trips; MB/s and microseconds per round trip, each also as a
 * ratio to direct TLS measured in the same run. Then the crypto floor of the
 * TLMSP paths from the primitives' speed measured in the same run (2 cores
 * shared by sender, middlebox and receiver). Every party is its own process;
 * the client's process times.
 *
 * With --reference DIR it also runs the ETSI reference's programs from a local build (never in CI).
 *
 * With --soak BYTES (issue 12; a bench, never in CI) it runs instead a long transfer through 1 and 3 middleboxes
 * (each its own process, read access and no access), the SHA-256 of what the client sent compared with the
 * server's of what it received, and reports the figure an operator sizes hardware by: CPU seconds per GiB of each
 * middlebox process, against HAProxy's process (a TLS split proxy) for the same transfer in the same run.
 *
 * Usage: bench_transfer [--bytes N] [--rounds N] [--only PATH] [--reference DIR] [--soak BYTES]
 */
#define _DEFAULT_SOURCE /* wait4 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "msp/tlmsp_conn.h"
#include "tlmsp_container.h"
#include "msp/tlmsp_io.h"

#define CHUNK 16355
#define PING 64

/* The bulk data: a fixed pattern of prime period, so containers (16355 bytes) never line up with it; the sender
 * points into it and the receiver compares against it, so that checking every byte costs a memcmp. */
#define PERIOD 65521
#define WRITE (16 * CHUNK) /* what the sender hands to the connection at a time, as an application writes */
static uint8_t pattern[PERIOD + WRITE + CHUNK];

static void make_pattern(void)
{
    uint32_t x = 0x9e3779b9;
    for (size_t i = 0; i < sizeof(pattern); i++) {
        if (i < PERIOD) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            pattern[i] = (uint8_t)x;
        } else {
            pattern[i] = pattern[i % PERIOD];
        }
    }
}

typedef struct ident {
    EVP_PKEY *key;
    X509 *x509;
    uint8_t *der;
    size_t der_len;
    const uint8_t *ders[1];
    size_t lens[1];
} ident_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_transfer: %s\n", what);
    exit(1);
}

static void rnd(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    if (RAND_bytes(buf, (int)len) != 1) {
        die("no randomness");
    }
}

static void make_ident(ident_t *id)
{
    id->key = EVP_RSA_gen(2048);
    id->x509 = X509_new();
    X509_NAME *n = X509_NAME_new();
    if (id->key == NULL || id->x509 == NULL || n == NULL || !X509_set_version(id->x509, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(id->x509), 1) || !X509_gmtime_adj(X509_getm_notBefore(id->x509), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(id->x509), 86400) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0) ||
        !X509_set_subject_name(id->x509, n) || !X509_set_issuer_name(id->x509, n) ||
        !X509_set_pubkey(id->x509, id->key) || X509_sign(id->x509, id->key, EVP_sha256()) <= 0) {
        die("cannot make a certificate");
    }
    X509_NAME_free(n);
    unsigned char *der = NULL;
    int len = i2d_X509(id->x509, &der);
    id->der = der;
    id->der_len = (size_t)len;
    id->ders[0] = der;
    id->lens[0] = (size_t)len;
}

static void free_ident(ident_t *id)
{
    EVP_PKEY_free(id->key);
    X509_free(id->x509);
    OPENSSL_free(id->der);
}

static int tcp_listen(unsigned *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        die("cannot listen");
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int tcp_connect(unsigned port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    for (int tries = 0; tries < 200; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        close(fd);
        sleep_ms(20);
    }
    die("cannot connect");
    return -1;
}

static int fcntl_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int open_devnull(void)
{
    return open("/dev/null", O_WRONLY);
}

static void nonblock(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl_nonblock(fd) != 0) {
        die("fcntl");
    }
}

/* ---- the measurement protocol, the same over TLMSP and TLS ----
 * client: 'B' + u64 total, then total bytes of the pattern; server: 'D' when all arrived byte-identical, 'X' if not;
 * then rounds x 64-byte 'P' messages, each echoed by the server. */

#define MAX_CHAIN 3 /* middleboxes in a row (--soak runs 1 and 3) */

typedef struct result {
    double mbps, rt_us;
    int ok;
    double cpu[3];            /* CPU seconds of client, (first) middlebox, server over the whole run */
    double mb_cpu[MAX_CHAIN]; /* CPU seconds of each middlebox of a chain; HAProxy's process in [0] */
    int sha;                  /* --soak: 1 when the server's SHA-256 of what it received is the client's of what it
                                 sent, 0 when not, -1 not computed */
} result_t;

static double cpu_of(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec * 1e-6 + (double)ru->ru_stime.tv_sec +
           ru->ru_stime.tv_usec * 1e-6;
}

/* ---- TLMSP server (child) ---- */

typedef struct tsrv {
    struct ev_loop *loop;
    msp_io_ep_t *ep;
    uint64_t want, got;
    int bulk, bad;
    EVP_MD_CTX *sha; /* --soak: what arrived, hashed; the digest goes to digest_fd */
    int digest_fd;
    msp_buf_t echo;
    ev_idle idle;
} tsrv_t;

/* --soak: the receiver's SHA-256 to the parent, which compares it with the sender's. */
static void send_digest(EVP_MD_CTX *sha, int fd)
{
    uint8_t md[32];
    if (sha == NULL) {
        return;
    }
    if (EVP_DigestFinal_ex(sha, md, NULL) != 1 || write(fd, md, sizeof(md)) != (ssize_t)sizeof(md)) {
        die("cannot pass the SHA-256 on");
    }
}

static void tsrv_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    tsrv_t *s = user;
    (void)ctx;
    if (!s->bulk && len == 9 && p[0] == 'B') {
        s->bulk = 1;
        s->want = 0;
        for (int i = 1; i < 9; i++) {
            s->want = s->want << 8 | p[i];
        }
        s->got = 0;
        return;
    }
    if (s->bulk) {
        s->bad |= len > CHUNK || memcmp(p, pattern + s->got % PERIOD, len) != 0;
        s->got += len;
        if (s->sha != NULL && EVP_DigestUpdate(s->sha, p, len) != 1) {
            die("SHA-256 failed");
        }
        if (s->got >= s->want) {
            s->bulk = 0;
            send_digest(s->sha, s->digest_fd);
            msp_buf_put(&s->echo, s->bad || s->got != s->want ? "X" : "D", 1);
            ev_idle_start(s->loop, &s->idle);
        }
        return;
    }
    msp_buf_put(&s->echo, p, len); /* a ping: echoed once this input is done (the core is not re-entrant) */
    ev_idle_start(s->loop, &s->idle);
}

static void tsrv_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    tsrv_t *s = w->data;
    (void)revents;
    ev_idle_stop(loop, w);
    if (s->ep != NULL && s->echo.len > 0) {
        msp_io_ep_send(s->ep, 1, s->echo.base, s->echo.len);
    }
    s->echo.len = 0;
}

static void tsrv_closed(void *user, msp_io_ep_t *ep, int err)
{
    tsrv_t *s = user;
    (void)err;
    s->ep = NULL;
    msp_io_ep_free(ep);
    ev_break(s->loop, EVBREAK_ALL);
}

static void tlmsp_server(int lfd, ident_t *id, int digest_fd)
{
    tsrv_t s;
    memset(&s, 0, sizeof(s));
    s.digest_fd = digest_fd;
    if (digest_fd >= 0 && ((s.sha = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL) != 1)) {
        die("SHA-256 set-up");
    }
    s.loop = ev_default_loop(0);
    msp_buf_init(&s.echo, 1u << 20);
    ev_idle_init(&s.idle, tsrv_idle);
    s.idle.data = &s;
    int fd = accept(lfd, NULL, NULL);
    nonblock(fd);
    msp_tlmsp_endpoint_cfg_t c;
    memset(&c, 0, sizeof(c));
    c.random = rnd;
    c.identity = (msp_tlmsp_identity_t){id->key, id->ders, id->lens, 1};
    c.events = (msp_tlmsp_events_t){&s, tsrv_data, NULL};
    msp_tlmsp_conn_t *conn;
    msp_io_ep_events_t ev = {&s, NULL, tsrv_closed, NULL};
    if (msp_tlmsp_conn_new(MSP_TLMSP_ID_SERVER, &c, &conn) != MSP_OK ||
        msp_io_ep_new(s.loop, fd, conn, &ev, &s.ep) != MSP_OK) {
        die("server set-up");
    }
    ev_run(s.loop, 0);
    _exit(0);
}

/* ---- TLMSP middlebox (child) ---- */

static unsigned next_port;

/* The port of "tlmsp://127.0.0.1:PORT" (the next middlebox of a chain), 0 when it has none (the server's). */
static unsigned port_of(const msp_tlmsp_address_t *a)
{
    unsigned port = 0;
    size_t i = a->len;
    while (i > 0 && a->bytes[i - 1] >= '0' && a->bytes[i - 1] <= '9') {
        i--;
    }
    for (size_t j = i; i > 0 && a->bytes[i - 1] == ':' && j < a->len; j++) {
        port = port * 10 + (unsigned)(a->bytes[j] - '0');
    }
    return port;
}

static int mb_connect(void *user, const msp_tlmsp_address_t *next)
{
    (void)user;
    unsigned port = port_of(next);
    int fd = tcp_connect(port != 0 ? port : next_port);
    nonblock(fd);
    return fd;
}

static void mb_closed(void *user, msp_io_mb_t *mb, int err)
{
    (void)err;
    msp_io_mb_free(mb);
    ev_break((struct ev_loop *)user, EVBREAK_ALL);
}

static void tlmsp_mbox(int lfd, ident_t *id, unsigned server_port, const char *addr)
{
    struct ev_loop *loop = ev_default_loop(0);
    next_port = server_port;
    int fd = accept(lfd, NULL, NULL);
    nonblock(fd);
    msp_tlmsp_mbox_cfg_t c;
    memset(&c, 0, sizeof(c));
    c.random = rnd;
    c.address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)addr, strlen(addr)};
    c.identity = (msp_tlmsp_identity_t){id->key, id->ders, id->lens, 1};
    msp_tlmsp_mbox_t *m;
    msp_io_mb_t *mb;
    msp_io_mb_events_t ev = {loop, mb_connect, NULL, mb_closed};
    if (msp_tlmsp_mbox_new(&c, &m) != MSP_OK || msp_io_mb_new(loop, fd, m, &ev, &mb) != MSP_OK) {
        die("middlebox set-up");
    }
    ev_run(loop, 0);
    _exit(0);
}

/* ---- TLMSP client (the timing side) ---- */

typedef struct tcli {
    struct ev_loop *loop;
    msp_io_ep_t *ep;
    uint64_t total, sent;
    int rounds, done_rounds, phase; /* 0 bulk, 1 ping-pong, 2 done */
    double t0, bulk_s, pp_s;
    int identical;
    uint8_t *chunk;
    ev_idle idle;
    EVP_MD_CTX *sha; /* --soak: what was sent, hashed */
} tcli_t;

static void tcli_fill(tcli_t *c)
{
    while (c->phase == 0 && c->sent < c->total && msp_io_ep_pending(c->ep) < (4u << 20)) {
        size_t n = c->total - c->sent < WRITE ? (size_t)(c->total - c->sent) : WRITE;
        if (msp_io_ep_send(c->ep, 1, pattern + c->sent % PERIOD, n) != MSP_OK) {
            die("send failed");
        }
        if (c->sha != NULL && EVP_DigestUpdate(c->sha, pattern + c->sent % PERIOD, n) != 1) {
            die("SHA-256 failed");
        }
        c->sent += n;
    }
}

static void tcli_ready(void *user, msp_io_ep_t *ep)
{
    tcli_t *c = user;
    uint8_t hdr[9] = {'B'};
    for (int i = 0; i < 8; i++) {
        hdr[8 - i] = (uint8_t)(c->total >> (8 * i));
    }
    c->t0 = now();
    msp_io_ep_send(ep, 1, hdr, sizeof(hdr));
    tcli_fill(c);
}

static void tcli_drained(void *user, msp_io_ep_t *ep)
{
    (void)ep;
    tcli_fill(user);
}

static void tcli_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    tcli_t *c = w->data;
    (void)revents;
    ev_idle_stop(loop, w);
    if (c->phase == 1 && c->done_rounds < c->rounds) {
        msp_io_ep_send(c->ep, 1, c->chunk, PING);
    } else if (c->phase == 1) {
        c->pp_s = now() - c->t0;
        c->phase = 2;
        msp_io_ep_alert(c->ep, 0, 1, 0);
    }
}

static void tcli_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    tcli_t *c = user;
    (void)ctx;
    (void)p;
    if (c->phase == 0 && len == 1) {
        c->bulk_s = now() - c->t0;
        c->identical = p[0] == 'D';
        c->phase = 1;
        c->t0 = now();
    } else if (c->phase == 1 && len == PING) {
        c->done_rounds++;
    }
    ev_idle_start(c->loop, &c->idle);
}

static void tcli_closed(void *user, msp_io_ep_t *ep, int err)
{
    tcli_t *c = user;
    (void)err;
    c->ep = NULL;
    msp_io_ep_free(ep);
    ev_break(c->loop, EVBREAK_ALL);
}

/* The client, through nmb middleboxes (addr, client side first) with access to context 1; sha: hashes what it sends. */
static result_t tlmsp_client(unsigned first_port, char (*addr)[64], size_t nmb, uint8_t access, uint64_t total,
                             int rounds, EVP_MD_CTX *sha)
{
    tcli_t c;
    memset(&c, 0, sizeof(c));
    c.sha = sha;
    c.loop = ev_default_loop(0);
    c.total = total;
    c.rounds = rounds;
    c.chunk = calloc(1, CHUNK);
    ev_idle_init(&c.idle, tcli_idle);
    c.idle.data = &c;
    static msp_tlmsp_context_list_t ctx;
    static msp_tlmsp_mbox_list_t list;
    memset(&ctx, 0, sizeof(ctx));
    ctx.present[1] = 1;
    memset(&list, 0, sizeof(list));
    list.n = nmb;
    for (size_t i = 0; i < nmb; i++) {
        list.m[i].id = (uint8_t)(0x42 + i);
        list.m[i].address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)addr[i], strnlen(addr[i], 64)};
        list.m[i].access[1] = access;
    }
    msp_tlmsp_endpoint_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.random = rnd;
    cfg.client_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://client", 14};
    cfg.server_address = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, (const uint8_t *)"tlmsp://server", 14};
    cfg.contexts = &ctx;
    cfg.middleboxes = &list;
    cfg.events = (msp_tlmsp_events_t){&c, tcli_data, NULL};
    msp_tlmsp_conn_t *conn;
    int fd = tcp_connect(first_port);
    nonblock(fd);
    msp_io_ep_events_t ev = {&c, tcli_ready, tcli_closed, tcli_drained};
    if (msp_tlmsp_conn_new(MSP_TLMSP_ID_CLIENT, &cfg, &conn) != MSP_OK ||
        msp_io_ep_new(c.loop, fd, conn, &ev, &c.ep) != MSP_OK) {
        die("client set-up");
    }
    ev_run(c.loop, 0);
    free(c.chunk);
    result_t r = {0};
    r.ok = c.phase == 2 && c.identical;
    if (!c.identical) {
        fprintf(stderr, "bench_transfer: the bulk data did NOT arrive byte-identical\n");
    }
    if (r.ok) {
        r.mbps = (double)total / c.bulk_s / 1e6;
        r.rt_us = c.pp_s / rounds * 1e6;
    }
    return r;
}

/* Client -> nmb middleboxes (each its own process, all with the same identity) -> server. soak: SHA-256 at both ends
 * (r.sha says whether they agree). */
static result_t run_chain(ident_t *server_id, ident_t *mbox_id, size_t nmb, uint8_t access, uint64_t total, int rounds,
                          int soak)
{
    unsigned sport, mport[MAX_CHAIN];
    int sfd = tcp_listen(&sport), mfd[MAX_CHAIN], dig[2] = {-1, -1};
    char addr[MAX_CHAIN][64];
    if (soak && pipe(dig) != 0) {
        die("pipe");
    }
    for (size_t i = 0; i < nmb; i++) {
        mfd[i] = tcp_listen(&mport[i]);
        snprintf(addr[i], sizeof(addr[i]), "tlmsp://127.0.0.1:%u", mport[i]);
    }
    pid_t s = fork(), m[MAX_CHAIN];
    if (s == 0) {
        for (size_t i = 0; i < nmb; i++) {
            close(mfd[i]);
        }
        tlmsp_server(sfd, server_id, dig[1]);
    }
    for (size_t i = 0; i < nmb; i++) {
        m[i] = fork();
        if (m[i] == 0) {
            close(sfd);
            tlmsp_mbox(mfd[i], mbox_id, sport, addr[i]);
        }
    }
    close(sfd);
    for (size_t i = 0; i < nmb; i++) {
        close(mfd[i]);
    }
    EVP_MD_CTX *sha = soak ? EVP_MD_CTX_new() : NULL;
    if (soak && (sha == NULL || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1)) {
        die("SHA-256 set-up");
    }
    struct rusage before, after, ru;
    getrusage(RUSAGE_SELF, &before);
    result_t r = tlmsp_client(mport[0], addr, nmb, access, total, rounds, sha);
    getrusage(RUSAGE_SELF, &after);
    r.cpu[0] = cpu_of(&after) - cpu_of(&before);
    for (size_t i = 0; i < nmb; i++) {
        wait4(m[i], NULL, 0, &ru);
        r.mb_cpu[i] = cpu_of(&ru);
    }
    r.cpu[1] = r.mb_cpu[0];
    wait4(s, NULL, 0, &ru);
    r.cpu[2] = cpu_of(&ru);
    r.sha = -1;
    if (soak) {
        uint8_t mine[32], theirs[32];
        close(dig[1]);
        r.sha =
            EVP_DigestFinal_ex(sha, mine, NULL) == 1 && read(dig[0], theirs, 32) == 32 && memcmp(mine, theirs, 32) == 0;
        close(dig[0]);
        EVP_MD_CTX_free(sha);
    }
    return r;
}

static result_t run_tlmsp(ident_t *server_id, ident_t *mbox_id, uint8_t access, uint64_t total, int rounds)
{
    return run_chain(server_id, mbox_id, 1, access, total, rounds, 0);
}

/* ---- TLS 1.2 (OpenSSL), for direct TLS and behind HAProxy ---- */

static SSL_CTX *tls_ctx(int server, ident_t *id)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES128-GCM-SHA256") ||
        (server && (SSL_CTX_use_certificate(ctx, id->x509) != 1 || SSL_CTX_use_PrivateKey(ctx, id->key) != 1))) {
        die("TLS context");
    }
    return ctx;
}

static int read_full(SSL *ssl, uint8_t *p, size_t n)
{
    while (n > 0) {
        int r = SSL_read(ssl, p, (int)n);
        if (r <= 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void tls_server(int lfd, ident_t *id)
{
    SSL_CTX *ctx = tls_ctx(1, id);
    int fd = accept(lfd, NULL, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    uint8_t *buf = malloc(65536), hdr[9];
    if (SSL_accept(ssl) != 1 || read_full(ssl, hdr, 9) != 0) {
        _exit(1);
    }
    uint64_t total = 0;
    for (int i = 1; i < 9; i++) {
        total = total << 8 | hdr[i];
    }
    int bad = 0;
    for (uint64_t got = 0; got < total;) {
        int r = SSL_read(ssl, buf, total - got < 16384 ? (int)(total - got) : 16384);
        if (r <= 0) {
            _exit(1);
        }
        bad |= memcmp(buf, pattern + got % PERIOD, (size_t)r) != 0;
        got += (uint64_t)r;
    }
    SSL_write(ssl, bad ? "X" : "D", 1);
    while (read_full(ssl, buf, PING) == 0) {
        SSL_write(ssl, buf, PING);
    }
    _exit(0);
}

static result_t tls_client(unsigned port, ident_t *id, uint64_t total, int rounds)
{
    SSL_CTX *ctx = tls_ctx(0, id);
    SSL *ssl = SSL_new(ctx);
    int fd = tcp_connect(port);
    SSL_set_fd(ssl, fd);
    result_t r = {0};
    uint8_t *chunk = calloc(1, CHUNK), hdr[9] = {'B'}, d;
    for (int i = 0; i < 8; i++) {
        hdr[8 - i] = (uint8_t)(total >> (8 * i));
    }
    if (SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return r;
    }
    double t0 = now();
    SSL_write(ssl, hdr, 9);
    for (uint64_t sent = 0; sent < total;) {
        int n = total - sent < WRITE ? (int)(total - sent) : WRITE;
        if (SSL_write(ssl, pattern + sent % PERIOD, n) != n) {
            return r;
        }
        sent += (uint64_t)n;
    }
    if (read_full(ssl, &d, 1) != 0 || d != 'D') {
        fprintf(stderr, "bench_transfer: the bulk data did NOT arrive byte-identical over TLS\n");
        return r;
    }
    r.mbps = (double)total / (now() - t0) / 1e6;
    t0 = now();
    for (int i = 0; i < rounds; i++) {
        if (SSL_write(ssl, chunk, PING) != PING || read_full(ssl, chunk, PING) != 0) {
            return r;
        }
    }
    r.rt_us = (now() - t0) / rounds * 1e6;
    r.ok = 1;
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    free(chunk);
    return r;
}

static result_t run_tls(ident_t *id, uint64_t total, int rounds)
{
    unsigned port;
    int lfd = tcp_listen(&port);
    pid_t s = fork();
    if (s == 0) {
        tls_server(lfd, id);
    }
    close(lfd);
    result_t r = tls_client(port, id, total, rounds);
    waitpid(s, NULL, 0);
    return r;
}

/* HAProxy as users run it: TLS in front, TLS again to the server, one thread. */
static int write_haproxy(const char *dir, ident_t *id, unsigned front, unsigned back)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/server.pem", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || !PEM_write_X509(f, id->x509) || !PEM_write_PrivateKey(f, id->key, NULL, NULL, 0, NULL, NULL)) {
        return -1;
    }
    fclose(f);
    snprintf(path, sizeof(path), "%s/haproxy.cfg", dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f,
            "global\n  nbthread 1\n  ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256\n"
            "  ssl-default-server-ciphers ECDHE-RSA-AES128-GCM-SHA256\n"
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n"
            "frontend f\n  bind 127.0.0.1:%u ssl crt %s/server.pem ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2\n"
            "  default_backend b\n"
            "backend b\n  server s 127.0.0.1:%u ssl verify none ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2\n",
            front, dir, back);
    return fclose(f);
}

static result_t run_haproxy(ident_t *id, uint64_t total, int rounds, int *available)
{
    result_t r = {0};
    *available = system("command -v haproxy >/dev/null 2>&1") == 0;
    char dir[] = "/tmp/msp-bench-XXXXXX";
    if (!*available || mkdtemp(dir) == NULL) {
        return r;
    }
    unsigned back, front;
    int lfd = tcp_listen(&back), pfd = tcp_listen(&front);
    close(pfd); /* HAProxy binds it itself */
    if (write_haproxy(dir, id, front, back) != 0) {
        die("cannot write the HAProxy configuration");
    }
    pid_t s = fork();
    if (s == 0) {
        tls_server(lfd, id);
    }
    close(lfd);
    char cfg[300];
    snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", dir);
    pid_t h = fork();
    if (h == 0) {
        int null = open_devnull();
        dup2(null, 1);
        dup2(null, 2);
        execlp("haproxy", "haproxy", "-db", "-f", cfg, (char *)NULL);
        _exit(127);
    }
    sleep_ms(300);
    r = tls_client(front, id, total, rounds);
    struct rusage ru;
    kill(h, SIGTERM);
    if (wait4(h, NULL, 0, &ru) == h) {
        r.mb_cpu[0] = cpu_of(&ru); /* HAProxy's process: the transfer, its two handshakes, start and stop */
    }
    kill(s, SIGTERM);
    waitpid(s, NULL, 0);
    char rm[400];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    if (system(rm) != 0) {
        fprintf(stderr, "bench_transfer: could not remove %s\n", dir);
    }
    return r;
}

/* ---- the ETSI reference's programs, when a local build is given (--reference DIR; never in CI) ----
 * Its programs only move data through their .ucl activities, so the figures come from their -P log timestamps
 * (nanoseconds): a 4 MiB file sent once (its sender breaks above about 6 MB, performance.md 2.7), and ping-pong
 * round trips; the same measurement performance.md made by hand. */

#define REF_BYTES (4u << 20)

static const char ref_bulk[] =
    "context { id = 1; tag = c1 }\n"
    "activity { tag = send-file; match { at = 500 } action { send { context = c1; file = \"%s/payload\" } } }\n"
    "activity { tag = count; match { which = *; container = all } action { } }\n"
    "client { address = tlmsp://localhost; function = send-file }\n"
    "middlebox { tag = mbox1; address = tlmsp://localhost:%u; cert-file = \"%s/mbox1-cert.pem\"\n"
    "            cert-key-file = \"%s/mbox1-key.pem\"; %s }\n"
    "server { address = tlmsp://localhost:%u; cert-file = \"%s/server-cert.pem\"; "
    "cert-key-file = \"%s/server-key.pem\"; function = count }\n";

static const char ref_ping[] =
    "context { id = 1; tag = c1 }\n"
    "activity { tag = ping; match { at = 500; every = 100 } action { send { context = c1; data = \"ping\" } } }\n"
    "activity { tag = pong; match { which = *; data = \"pong\" } action { } }\n"
    "activity { tag = reply; match { which = *; data = \"ping\" } action { send { context = c1; data = \"pong\" } } }\n"
    "client { address = tlmsp://localhost; function = [ ping, pong ] }\n"
    "middlebox { tag = mbox1; address = tlmsp://localhost:%u; cert-file = \"%s/mbox1-cert.pem\"\n"
    "            cert-key-file = \"%s/mbox1-key.pem\"; %s }\n"
    "server { address = tlmsp://localhost:%u; cert-file = \"%s/server-cert.pem\"; "
    "cert-key-file = \"%s/server-key.pem\"; function = reply }\n";

static int write_pem(const char *dir, const char *name, ident_t *id)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s-cert.pem", dir, name);
    FILE *f = fopen(path, "w");
    int ok = f != NULL && PEM_write_X509(f, id->x509) == 1;
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    snprintf(path, sizeof(path), "%s/%s-key.pem", dir, name);
    f = ok ? fopen(path, "w") : NULL;
    ok = f != NULL && PEM_write_PrivateKey(f, id->key, NULL, NULL, 0, NULL, NULL) == 1;
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

/* Runs the reference's server, middlebox and client on cfg for secs seconds; logs in dir/{srv,mb,cli}.log. */
static void ref_run(const char *bin, const char *dir, const char *cfg, int secs)
{
    static const char *const prog[3] = {"tlmsp-server", "tlmsp-mb", "tlmsp-client"};
    static const char *const log[3] = {"srv", "mb", "cli"};
    pid_t pid[3];
    for (int i = 0; i < 3; i++) {
        char exe[512], out[512];
        snprintf(exe, sizeof(exe), "%s/%s", bin, prog[i]);
        snprintf(out, sizeof(out), "%s/%s.log", dir, log[i]);
        pid[i] = fork();
        if (pid[i] == 0) {
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 1);
            dup2(fd, 2);
            if (i == 1) {
                execl(exe, exe, "-c", cfg, "-t", "mbox1", "-P", (char *)NULL);
            } else {
                execl(exe, exe, "-c", cfg, "-P", (char *)NULL);
            }
            _exit(127);
        }
        sleep_ms(300);
    }
    sleep_ms(secs * 1000L);
    for (int i = 2; i >= 0; i--) {
        kill(pid[i], SIGTERM);
        waitpid(pid[i], NULL, 0);
    }
}

/* Nanosecond timestamps of the log lines that contain what (at most max). */
static size_t ref_times(const char *path, const char *what, double *t, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    size_t n = 0;
    while (f != NULL && n < max && fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, what) != NULL) {
            t[n++] = strtod(line, NULL) * 1e-9;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static result_t run_reference(const char *bin, ident_t *server_id, ident_t *mbox_id, int read_access)
{
    result_t r = {0};
    char dir[] = "/tmp/msp-bench-ref-XXXXXX", path[512], cfg[8192];
    unsigned mport, sport;
    int a = tcp_listen(&mport), b = tcp_listen(&sport);
    close(a);
    close(b);
    if (mkdtemp(dir) == NULL || write_pem(dir, "server", server_id) != 0 || write_pem(dir, "mbox1", mbox_id) != 0) {
        return r;
    }
    snprintf(path, sizeof(path), "%s/payload", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(pattern, 1, REF_BYTES < PERIOD ? REF_BYTES : PERIOD, f) == 0) {
        return r;
    }
    for (size_t done = PERIOD; done < REF_BYTES; done += PERIOD) {
        fwrite(pattern, 1, REF_BYTES - done < PERIOD ? REF_BYTES - done : PERIOD, f);
    }
    fclose(f);
    const char *access = read_access ? "context { which = c1; access = r }" : "";
    snprintf(cfg, sizeof(cfg), ref_bulk, dir, mport, dir, dir, access, sport, dir, dir);
    snprintf(path, sizeof(path), "%s/bulk.ucl", dir);
    f = fopen(path, "w");
    if (f == NULL || fputs(cfg, f) < 0 || fclose(f) != 0) {
        return r;
    }
    ref_run(bin, dir, path, 5);
    double t0[1], t1[4096];
    snprintf(path, sizeof(path), "%s/cli.log", dir);
    size_t n0 = ref_times(path, "Activity send-file", t0, 1);
    snprintf(path, sizeof(path), "%s/srv.log", dir);
    size_t n1 = ref_times(path, "Activity count", t1, 4096);
    /* the reference sends files in 16000-byte containers (libdemo/activity.c MAX_CONTAINER_SIZE) */
    if (n0 == 1 && n1 == (REF_BYTES + 15999) / 16000) {
        r.mbps = REF_BYTES / (t1[n1 - 1] - t0[0]) / 1e6;
    }
    snprintf(cfg, sizeof(cfg), ref_ping, mport, dir, dir, access, sport, dir, dir);
    snprintf(path, sizeof(path), "%s/ping.ucl", dir);
    f = fopen(path, "w");
    if (f == NULL || fputs(cfg, f) < 0 || fclose(f) != 0) {
        return r;
    }
    ref_run(bin, dir, path, 3);
    double sent[64], got[64], rt[64];
    snprintf(path, sizeof(path), "%s/cli.log", dir);
    size_t ns = ref_times(path, "Activity ping", sent, 64), ng = ref_times(path, "Activity pong", got, 64), k = 0;
    for (size_t i = 0; i < ns && i < ng; i++) {
        rt[k++] = got[i] - sent[i];
    }
    if (k > 0) {
        qsort(rt, k, sizeof(rt[0]), cmp_double);
        r.rt_us = rt[k / 2] * 1e6; /* the median */
    }
    r.ok = r.mbps > 0 && k > 0;
    if (!r.ok && getenv("BENCH_KEEP") != NULL) {
        fprintf(stderr, "bench_transfer: reference run kept in %s (%zu sends, %zu containers counted)\n", dir, n0, n1);
        return r;
    }
    char rm[600];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    if (system(rm) != 0) {
        fprintf(stderr, "bench_transfer: could not remove %s\n", dir);
    }
    return r;
}

/* ---- crypto floor, from the primitives measured now ---- */

/* SHA-256 as msp computes the reader-check hashes of the data path: 16 at a time, multi-buffer (bytes per second). */
static double rate_mb_sha(void)
{
    enum { N = 16 };
    msp_tlmsp_gcm_t g;
    uint8_t *buf = calloc(N, CHUNK), hash[N][32];
    const uint8_t *frag[N];
    size_t len[N];
    msp_tlmsp_mac_in_t in[N];
    if (buf == NULL || msp_tlmsp_gcm_init(&g) != MSP_OK) {
        die("cannot set up the multi-buffer hash");
    }
    for (int i = 0; i < N; i++) {
        frag[i] = buf + (size_t)i * CHUNK;
        len[i] = CHUNK;
        in[i] = (msp_tlmsp_mac_in_t){23, 1, (uint64_t)i, 0, NULL, 0};
    }
    int iters = 0;
    double t0 = now(), t;
    do {
        if (msp_tlmsp_reader_check_hashes(&g, N, in, frag, len, hash) != MSP_OK) {
            die("multi-buffer hash failed");
        }
        iters++;
        t = now() - t0;
    } while (t < 0.3);
    msp_tlmsp_gcm_free(&g);
    free(buf);
    return (double)iters * N * CHUNK / t;
}

static double rate(int which)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    uint8_t *in = calloc(1, CHUNK + 64), *out = calloc(1, CHUNK + 64), key[16] = {1}, iv[12] = {2}, tag[16], h[32];
    int n, f, iters = 0;
    EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, iv);
    double t0 = now(), t;
    do {
        for (int i = 0; i < 64; i++) {
            if (which == 0) { /* GCM seal */
                EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv);
                EVP_EncryptUpdate(c, out, &n, in, CHUNK);
                EVP_EncryptFinal_ex(c, out + n, &f);
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
            } else if (which == 1) { /* GMAC: the data as AAD */
                EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv);
                EVP_EncryptUpdate(c, NULL, &n, in, CHUNK);
                EVP_EncryptFinal_ex(c, out, &f);
                EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag);
            } else {
                EVP_DigestInit_ex(m, EVP_sha256(), NULL);
                EVP_DigestUpdate(m, in, CHUNK);
                EVP_DigestFinal_ex(m, h, NULL);
            }
        }
        iters += 64;
        t = now() - t0;
    } while (t < 0.3);
    EVP_CIPHER_CTX_free(c);
    EVP_MD_CTX_free(m);
    free(in);
    free(out);
    return (double)iters * CHUNK / t; /* bytes per second */
}

/* ---- --soak: a long transfer through 1 and 3 middleboxes, SHA-256 at both ends, CPU per GiB against HAProxy ---- */

static int soak(ident_t *server_id, ident_t *mbox_id, uint64_t total)
{
    static const struct {
        const char *name, *csv;
        size_t nmb;
        uint8_t access;
    } paths[] = {
        {"TLMSP, 1 middlebox, read access", "tlmsp_1_r", 1, MSP_TLMSP_ACCESS_R},
        {"TLMSP, 1 middlebox, no access", "tlmsp_1_none", 1, MSP_TLMSP_ACCESS_NONE},
        {"TLMSP, 3 middleboxes, read access", "tlmsp_3_r", 3, MSP_TLMSP_ACCESS_R},
        {"TLMSP, 3 middleboxes, no access", "tlmsp_3_none", 3, MSP_TLMSP_ACCESS_NONE},
    };
    enum { NPATHS = sizeof(paths) / sizeof(paths[0]) };
    double gib = (double)total / (double)(1ull << 30);
    int have = 0, ok = 1;
    result_t hap = run_haproxy(server_id, total, 10, &have), r[NPATHS];
    double hap_s = hap.ok ? hap.mb_cpu[0] / gib : 0;
    for (size_t i = 0; i < NPATHS; i++) {
        r[i] = run_chain(server_id, mbox_id, paths[i].nmb, paths[i].access, total, 10, 1);
        ok &= r[i].ok && r[i].sha == 1;
    }
    printf("bench_transfer --soak: %.2f GiB client -> server per path, loopback, 2 cores shared by every process\n",
           gib);
    printf("SHA-256 of what the client sent against what the server received (HAProxy's path: checked byte for "
           "byte)\n\n%-36s %9s %8s  %s\n",
           "path", "MB/s", "SHA-256", "CPU s/GiB of each middlebox (x HAProxy's)");
    for (size_t i = 0; i < NPATHS; i++) {
        printf("%-36s %9.1f %8s ", paths[i].name, r[i].ok ? r[i].mbps : 0.0,
               r[i].sha == 1 ? "equal"
               : r[i].ok     ? "DIFFERS"
                             : "-");
        for (size_t j = 0; j < paths[i].nmb; j++) {
            printf(" %.3f (x %.2f)", r[i].mb_cpu[j] / gib, hap_s > 0 ? r[i].mb_cpu[j] / gib / hap_s : 0);
        }
        printf("\n");
    }
    printf("%-36s %9.1f %8s  %.3f (HAProxy's process)\n", "HAProxy split proxy (TLS 1.2)", hap.ok ? hap.mbps : 0.0,
           hap.ok ? "bytes ok"
           : have ? "FAILED"
                  : "absent",
           hap_s);
    printf("\ncsv,path,mbps,sha_equal,cpu_s_per_gib...\n");
    for (size_t i = 0; i < NPATHS; i++) {
        printf("csv,%s,%.1f,%d", paths[i].csv, r[i].mbps, r[i].sha == 1);
        for (size_t j = 0; j < paths[i].nmb; j++) {
            printf(",%.3f", r[i].mb_cpu[j] / gib);
        }
        printf("\n");
    }
    printf("csv,haproxy,%.1f,,%.3f\n", hap.mbps, hap_s);
    if (!have) {
        fprintf(stderr, "bench_transfer: haproxy is not installed: no CPU figure to compare with\n");
    }
    return ok && hap.ok ? 0 : 1;
}

static void print_row(const char *name, const result_t *r, const result_t *base, const char *note)
{
    if (!r->ok) {
        printf("%-34s %12s %10s %14s %10s  %s\n", name, "-", "-", "-", "-", note);
        return;
    }
    printf("%-34s %12.1f %10.2f %14.1f %10.2f  %s\n", name, r->mbps, base->ok ? r->mbps / base->mbps : 0, r->rt_us,
           base->ok ? r->rt_us / base->rt_us : 0, note);
}

int main(int argc, char **argv)
{
    uint64_t total = 1ull << 30;
    int rounds = 2000;
    uint64_t soak_bytes = 0;
    const char *only = NULL, *reference = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc) {
            total = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--reference") == 0 && i + 1 < argc) {
            reference = argv[++i];
        } else if (strcmp(argv[i], "--soak") == 0 && i + 1 < argc) {
            soak_bytes = strtoull(argv[++i], NULL, 10);
            total = soak_bytes != 0 ? soak_bytes : 1;
        } else {
            fprintf(
                stderr,
                "usage: bench_transfer [--bytes N] [--rounds N] [--only tls|tlmsp-r|tlmsp-none|haproxy] "
                "[--reference DIR] [--soak BYTES]\n"
                "  --reference DIR   also run the ETSI reference's tlmsp-client/-mb/-server found in DIR\n"
                "  --soak BYTES      instead: BYTES through 1 and 3 middleboxes (read, no access) with SHA-256 at\n"
                "                    both ends, and CPU seconds per GiB of each middlebox and of HAProxy's process\n");
            return 2;
        }
    }
    if (total == 0 || rounds <= 0) {
        fprintf(stderr, "bench_transfer: --bytes and --rounds must be positive\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    make_pattern();
    ident_t server_id, mbox_id;
    make_ident(&server_id);
    make_ident(&mbox_id);
    if (soak_bytes != 0) {
        int status = soak(&server_id, &mbox_id, soak_bytes);
        free_ident(&server_id);
        free_ident(&mbox_id);
        return status;
    }
    double gcm = rate(0), gmac = rate(1), sha = rate(2), mbsha = rate_mb_sha();
    result_t skipped = {0}, tls = skipped, r = skipped, none = skipped, hap = skipped;
    int have_haproxy = 1;
    /* --only runs one path (for profiling); the ratios then have no baseline */
    if (only == NULL || strcmp(only, "tls") == 0) {
        tls = run_tls(&server_id, total, rounds);
    }
    if (only == NULL || strcmp(only, "tlmsp-r") == 0) {
        r = run_tlmsp(&server_id, &mbox_id, MSP_TLMSP_ACCESS_R, total, rounds);
    }
    if (only == NULL || strcmp(only, "tlmsp-none") == 0) {
        none = run_tlmsp(&server_id, &mbox_id, MSP_TLMSP_ACCESS_NONE, total, rounds);
    }
    if (only == NULL || strcmp(only, "haproxy") == 0) {
        hap = run_haproxy(&server_id, total, rounds, &have_haproxy);
    }
    /* Per byte, on the 2 cores all parties share (performance.md 2.7): the sender seals, writer-MACs and hashes its
     * reader check, the receiver the same; a middlebox hashes twice (and decrypts when it may read). The floor with
     * the SHA-256 msp uses (multi-buffer) is the one to beat; the one with OpenSSL's is what a one-by-one
     * implementation could reach. */
    double end = 1 / gcm + 1 / gmac + 1 / mbsha, end1 = 1 / gcm + 1 / gmac + 1 / sha;
    double floor_r = 2 / (2 * end + 1 / gcm + 2 / mbsha) / 1e6, floor_none = 2 / (2 * end + 2 / mbsha) / 1e6;
    double floor_r1 = 2 / (2 * end1 + 1 / gcm + 2 / sha) / 1e6, floor_none1 = 2 / (2 * end1 + 2 / sha) / 1e6;
    printf("bench_transfer: %.0f MB bulk, %d x %d-byte round trips, loopback, 2 cores shared\n", total / 1e6, rounds,
           PING);
    printf("every bulk transfer below was checked byte for byte by its receiver (a row without figures failed)\n\n");
    printf("%-34s %12s %10s %14s %10s\n", "path", "bulk MB/s", "x TLS", "round trip us", "x TLS");
    print_row("direct TLS 1.2 (OpenSSL)", &tls, &tls, "");
    print_row("TLMSP, 1 middlebox, read access", &r, &tls, "");
    print_row("TLMSP, 1 middlebox, no access", &none, &tls, "");
    print_row("HAProxy split proxy (TLS 1.2)", &hap, &tls, have_haproxy ? "" : "haproxy not installed");
    if (reference != NULL) {
        result_t ref_r = run_reference(reference, &server_id, &mbox_id, 1);
        result_t ref_none = run_reference(reference, &server_id, &mbox_id, 0);
        print_row("ETSI reference, 1 mbox, read", &ref_r, &tls, "4 MiB; median ping-pong; from its -P log");
        print_row("ETSI reference, 1 mbox, no access", &ref_none, &tls, "4 MiB; median ping-pong; from its -P log");
    }
    for (int i = 0; i < 2; i++) {
        const result_t *x = i == 0 ? &r : &none;
        if (x->ok) {
            printf("%s CPU seconds: client %.2f, middlebox %.2f, server %.2f\n",
                   i == 0 ? "TLMSP read access:" : "TLMSP no access:  ", x->cpu[0], x->cpu[1], x->cpu[2]);
        }
    }
    printf("\ncrypto measured now: AES-128-GCM %.0f MB/s, GMAC %.0f MB/s, SHA-256 %.0f MB/s one by one (OpenSSL), "
           "%.0f MB/s 16 at a time (libipsec-mb, as msp uses it) (%d-byte messages)\n",
           gcm / 1e6, gmac / 1e6, sha / 1e6, mbsha / 1e6, CHUNK);
    printf("crypto floor with one-by-one SHA-256: read-only middlebox %.0f MB/s, no access %.0f MB/s\n", floor_r1,
           floor_none1);
    printf("crypto floor with the SHA-256 msp uses, 2 cores: read-only middlebox %.0f MB/s (measured %.2f of it), no "
           "access %.0f MB/s "
           "(measured %.2f of it)\n",
           floor_r, r.ok ? r.mbps / floor_r : 0, floor_none, none.ok ? none.mbps / floor_none : 0);
    printf("\ncsv,path,bulk_mbps,rt_us\ncsv,tls,%.1f,%.1f\ncsv,tlmsp_r,%.1f,%.1f\ncsv,tlmsp_none,%.1f,%.1f\n"
           "csv,haproxy,%.1f,%.1f\ncsv,floor_r,%.1f,\ncsv,floor_none,%.1f,\n",
           tls.mbps, tls.rt_us, r.mbps, r.rt_us, none.mbps, none.rt_us, hap.mbps, hap.rt_us, floor_r, floor_none);
    free_ident(&server_id);
    free_ident(&mbox_id);
    return only != NULL || (tls.ok && r.ok && none.ok) ? 0 : 1;
}
