/*
 * The ETS-aware client's verdict (msp/ets_probe.h) on real handshakes: two
 * connections of a stock client to an ETS server (the msp-ets provider,
 * static key shares) or to a stock OpenSSL server, recorded by ets_pair; the
 * ServerHello messages come from the recorded server bytes, the certificate
 * from the client's session. Verdicts for: visibility information matching
 * the key share, naming another key, none at all, fresh key shares, groups
 * that differ; a HelloRetryRequest; malformed ServerHellos and certificates;
 * the policies. The driver (msp_ets_probe_client_*): a real TCP connection to
 * an ETS server in a child process, and its errors.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ets_pair.h"
#include "msp/error.h"
#include "msp/ets.h"
#include "msp/ets_probe.h"
#include "msp/ets_provider.h"

enum { CERT_VI, CERT_OTHER, CERT_NONE, CERT_BAD, NCERTS };

typedef struct world {
    EVP_PKEY *x25519, *p256, *other, *cert_key;
    X509 *cert[NCERTS];
    OSSL_LIB_CTX *lib;
    SSL_CTX *ets[NCERTS]; /* ETS servers, one per certificate */
    SSL_CTX *plain;       /* a stock server: a fresh key share every time, certificate CERT_VI */
    SSL_CTX *cctx;
} world_t;

static world_t W;

/* What the probe saw of one connection: every ServerHello message of the recorded server bytes. */
static void connect_once(SSL_CTX *sctx, const char *groups, msp_ets_probe_conn_t *c, uint8_t **cert, size_t *cert_len)
{
    ets_pair_t p;
    ets_pair_opts_t o = {.groups = groups};
    if (ets_pair_run(&p, sctx, W.cctx, &o) != 0) {
        fail_msg("connection: %s", p.error);
    }
    memset(c, 0, sizeof *c);
    const uint8_t *b = p.bytes[ETS_S2C];
    size_t n = p.len[ETS_S2C], hellos = 0;
    for (size_t off = 0; off + 5 <= n && b[off] != 23;) {
        size_t len = (size_t)b[off + 3] << 8 | b[off + 4];
        assert_true(off + 5 + len <= n);
        const uint8_t *m = b + off + 5;
        if (b[off] == 22 && len >= 4 && m[0] == 2) {
            size_t mlen = 4 + ((size_t)m[1] << 16 | (size_t)m[2] << 8 | m[3]);
            assert_int_equal(msp_ets_probe_server_hello(c, m, mlen, NULL), MSP_OK);
            hellos++;
        }
        off += 5 + len;
    }
    assert_true(hellos >= 1);
    /* the share recorded is the one the server sent */
    uint16_t group;
    uint8_t share[ETS_PAIR_MAX_SHARE];
    size_t share_len;
    int hrr;
    assert_int_equal(ets_pair_server_share(&p, &group, share, sizeof share, &share_len, &hrr), 0);
    assert_true(c->have_share);
    assert_int_equal(c->group, group);
    assert_int_equal(c->hrr, hrr);
    assert_int_equal(c->share_len, share_len);
    assert_memory_equal(c->share, share, share_len);
    if (cert != NULL) {
        X509 *peer = SSL_get1_peer_certificate(p.client);
        assert_non_null(peer);
        *cert = NULL;
        int len = i2d_X509(peer, cert);
        assert_true(len > 0);
        *cert_len = (size_t)len;
        X509_free(peer);
    }
    ets_pair_free(&p);
}

typedef struct probe {
    msp_ets_probe_conn_t conn[2];
    uint8_t *cert;
    size_t cert_len;
    msp_ets_probe_verdict_t *v;
} probe_t;

/* Two connections to sctx, judged under policy; returns judge's code. */
static int probe(probe_t *pr, SSL_CTX *sctx, const char *groups0, const char *groups1, msp_ets_probe_policy_t policy)
{
    memset(pr, 0, sizeof *pr);
    connect_once(sctx, groups0, &pr->conn[0], &pr->cert, &pr->cert_len);
    connect_once(sctx, groups1, &pr->conn[1], NULL, NULL);
    pr->v = malloc(sizeof *pr->v);
    assert_non_null(pr->v);
    msp_ets_probe_facts_t f = {pr->conn, 2, pr->cert, pr->cert_len, policy};
    msp_error_t err;
    return msp_ets_probe_judge(&f, pr->v, &err);
}

static void probe_free(probe_t *pr)
{
    OPENSSL_free(pr->cert);
    free(pr->v);
}

static const msp_ets_probe_policy_t REPORT = {0, 0}, REFUSE_ETS = {1, 0}, REQUIRE_VI = {0, 1};

/* ---- tests ---- */

static void test_matching_visibility(void **state)
{
    (void)state;
    probe_t pr;
    assert_int_equal(probe(&pr, W.ets[CERT_VI], "X25519", "X25519", REQUIRE_VI), MSP_OK);
    const msp_ets_probe_verdict_t *v = pr.v;
    assert_true(v->repeated);
    assert_true(v->comparable);
    assert_true(v->visible);
    assert_int_equal(v->vis.n_vi, 1);
    assert_true(v->vis.match[0]);
    assert_true(v->vis.matches);
    assert_memory_equal(v->vis.vi[0].fingerprint, pr.conn[0].fingerprint, MSP_ETS_FINGERPRINT_LEN);
    assert_string_equal(v->vis.vi[0].access, "IDS of ets.example");
    assert_false(v->vis.misplaced);
    assert_false(v->refused);
    assert_string_equal(v->text, "ETS server: static key share, disclosed by accurate visibility information");
    /* the same facts under --refuse-ets: refused */
    msp_ets_probe_facts_t f = {pr.conn, 2, pr.cert, pr.cert_len, REFUSE_ETS};
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, NULL), MSP_OK);
    assert_true(pr.v->refused);
    probe_free(&pr);
}

static void test_visibility_names_another_key(void **state)
{
    (void)state;
    probe_t pr;
    assert_int_equal(probe(&pr, W.ets[CERT_OTHER], "X25519", "X25519", REQUIRE_VI), MSP_OK);
    assert_true(pr.v->repeated);
    assert_true(pr.v->visible);
    assert_int_equal(pr.v->vis.n_vi, 1);
    assert_false(pr.v->vis.match[0]);
    assert_false(pr.v->vis.matches);
    assert_true(pr.v->refused);
    assert_string_equal(pr.v->text, "ETS server: static key share, but the visibility information does not match it");
    probe_free(&pr);
}

static void test_no_visibility(void **state)
{
    (void)state;
    probe_t pr;
    assert_int_equal(probe(&pr, W.ets[CERT_NONE], "X25519", "X25519", REQUIRE_VI), MSP_OK);
    assert_true(pr.v->repeated);
    assert_false(pr.v->visible);
    assert_int_equal(pr.v->vis.n_vi, 0);
    assert_true(pr.v->refused);
    assert_string_equal(pr.v->text,
                        "static key share without visibility information (ETS Annex A, or an undisclosed reused key)");
    /* without a policy: reported, not refused */
    msp_ets_probe_facts_t f = {pr.conn, 2, pr.cert, pr.cert_len, REPORT};
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, NULL), MSP_OK);
    assert_false(pr.v->refused);
    probe_free(&pr);
}

/* A stock server: fresh shares; its certificate names a key that was never sent. */
static void test_fresh_shares(void **state)
{
    (void)state;
    probe_t pr;
    assert_int_equal(probe(&pr, W.plain, "X25519", "X25519", REQUIRE_VI), MSP_OK);
    assert_false(pr.v->repeated);
    assert_true(pr.v->comparable);
    assert_true(pr.v->visible);
    assert_false(pr.v->vis.matches);
    assert_true(pr.v->refused);
    assert_string_equal(pr.v->text, "visibility information that does not match the key share sent");
    /* without the certificate's entries: no sign of ETS, and nothing to refuse */
    msp_ets_probe_facts_t f = {pr.conn, 2, NULL, 0, REFUSE_ETS};
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, NULL), MSP_OK);
    assert_false(pr.v->refused);
    assert_string_equal(pr.v->text, "no sign of ETS: a fresh key share on every connection, no visibility information");
    probe_free(&pr);
}

/* P-384 offered first: the ETS server asks for X25519 (HRR); the share after it is the static one. Then connections
 * of two groups: not comparable. */
static void test_hrr(void **state)
{
    (void)state;
    probe_t pr;
    assert_int_equal(probe(&pr, W.ets[CERT_VI], "P-384:X25519", "X25519", REQUIRE_VI), MSP_OK);
    assert_true(pr.conn[0].hrr);
    assert_false(pr.conn[1].hrr);
    assert_int_equal(pr.conn[0].group, 0x001d);
    assert_true(pr.v->repeated);
    assert_true(pr.v->vis.matches);
    assert_false(pr.v->refused);
    probe_free(&pr);

    assert_int_equal(probe(&pr, W.ets[CERT_VI], "X25519", "P-256", REPORT), MSP_OK);
    assert_int_equal(pr.conn[1].group, 0x0017);
    assert_false(pr.v->repeated);
    assert_false(pr.v->comparable);
    assert_true(pr.v->vis.matches); /* the first connection's X25519 share */
    assert_string_equal(pr.v->text, "visibility information matching the key share, which did not repeat (key rotated "
                                    "between connections?)");
    probe_free(&pr);
}

static void test_malformed(void **state)
{
    (void)state;
    probe_t pr;
    /* a certificate with a malformed entry: no verdict, an error */
    assert_int_equal(probe(&pr, W.ets[CERT_BAD], "X25519", "X25519", REQUIRE_VI), MSP_ERR_SYNTAX);
    msp_error_t err;
    msp_ets_probe_facts_t f = {pr.conn, 2, pr.cert, pr.cert_len, REQUIRE_VI};
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, &err), MSP_ERR_SYNTAX);
    assert_string_equal(err.detail, "the certificate carries a malformed visibility information entry");
    assert_int_equal(pr.v->vis.n_vi, 0);
    /* bytes that are no certificate, or one with trailing bytes */
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    f.cert = junk;
    f.cert_len = sizeof junk;
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, &err), MSP_ERR_SYNTAX);
    assert_string_equal(err.detail, "the server certificate does not parse");
    uint8_t *longer = malloc(pr.cert_len + 1);
    memcpy(longer, pr.cert, pr.cert_len);
    longer[pr.cert_len] = 0;
    f.cert = longer;
    f.cert_len = pr.cert_len + 1;
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, &err), MSP_ERR_SYNTAX);
    free(longer);
    /* no connection, too many */
    f.cert = NULL;
    f.n_conn = 0;
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, &err), MSP_ERR_ARGUMENT);
    f.n_conn = MSP_ETS_PROBE_MAX_CONN + 1;
    assert_int_equal(msp_ets_probe_judge(&f, pr.v, &err), MSP_ERR_ARGUMENT);
    probe_free(&pr);
}

/* A ServerHello built by hand: the parser is the decryptor's, strict about its framing. */
static void test_malformed_server_hello(void **state)
{
    (void)state;
    uint8_t sh[128];
    size_t n = 0;
    sh[n++] = 2;
    n += 3; /* length, below */
    sh[n++] = 3, sh[n++] = 3;
    memset(sh + n, 0x11, 32), n += 32;     /* random */
    sh[n++] = 0;                           /* session id */
    sh[n++] = 0x13, sh[n++] = 0x01;        /* suite */
    sh[n++] = 0;                           /* compression */
    sh[n++] = 0, sh[n++] = 4 + 2 + 4 + 36; /* extensions */
    sh[n++] = 0, sh[n++] = 43, sh[n++] = 0, sh[n++] = 2, sh[n++] = 3, sh[n++] = 4;
    sh[n++] = 0, sh[n++] = 51, sh[n++] = 0, sh[n++] = 36, sh[n++] = 0, sh[n++] = 0x1d, sh[n++] = 0, sh[n++] = 32;
    memset(sh + n, 0x42, 32), n += 32;
    sh[1] = 0, sh[2] = 0, sh[3] = (uint8_t)(n - 4);
    msp_ets_probe_conn_t c = {0};
    assert_int_equal(msp_ets_probe_server_hello(&c, sh, n, NULL), MSP_OK);
    assert_true(c.have_share);
    assert_int_equal(c.group, 0x001d);
    assert_int_equal(c.share_len, 32);
    assert_int_equal(c.share[31], 0x42);
    assert_false(c.hrr);
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
    assert_int_equal(msp_ets_fingerprint(c.share, 32, fp), MSP_OK);
    assert_memory_equal(c.fingerprint, fp, sizeof fp);

    msp_error_t err;
    msp_ets_probe_conn_t d = {0}, zero = {0};
    for (size_t cut = 0; cut < n; cut++) { /* every truncation, with its length field or without */
        assert_int_equal(msp_ets_probe_server_hello(&d, sh, cut, &err), MSP_ERR_SYNTAX);
    }
    sh[0] = 1; /* a ClientHello */
    assert_int_equal(msp_ets_probe_server_hello(&d, sh, n, &err), MSP_ERR_SYNTAX);
    sh[0] = 2;
    sh[3]++; /* length field one more than the bytes */
    assert_int_equal(msp_ets_probe_server_hello(&d, sh, n, &err), MSP_ERR_SYNTAX);
    sh[3]--;
    sh[n - 33]++; /* key_exchange length past the extension */
    assert_int_equal(msp_ets_probe_server_hello(&d, sh, n, &err), MSP_ERR_SYNTAX);
    assert_int_equal(msp_ets_probe_server_hello(&d, NULL, 0, &err), MSP_ERR_SYNTAX);
    assert_memory_equal(&d, &zero, sizeof d); /* untouched by all of them */
}

/* ---- setup ---- */

static X509 *certificate(int kind)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), kind + 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ets.example", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, W.cert_key);
    uint8_t share[32], fp[MSP_ETS_FINGERPRINT_LEN];
    size_t len;
    if (kind == CERT_VI || kind == CERT_OTHER) {
        assert_int_equal(msp_ets_key_share(kind == CERT_VI ? W.x25519 : W.other, share, sizeof share, &len), MSP_OK);
        assert_int_equal(msp_ets_fingerprint(share, len, fp), MSP_OK);
        assert_int_equal(msp_ets_cert_add(x, fp, "IDS of ets.example", 18), MSP_OK);
    } else if (kind == CERT_BAD) {
        assert_int_equal(ets_pair_add_bad_visibility(x), 0);
    }
    assert_true(X509_sign(x, W.cert_key, NULL) > 0);
    return x;
}

static int use_cert(SSL_CTX *s, X509 *cert)
{
    return s != NULL && SSL_CTX_use_certificate(s, cert) == 1 && SSL_CTX_use_PrivateKey(s, W.cert_key) == 1;
}

/* ---- the driver: real connections ---- */

/* A listening socket on 127.0.0.1; *port gets its number. */
static int listener(char port[16])
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(port, 16, "%u", ntohs(sa.sin_port));
    return fd;
}

/* A child that serves one TLS connection with sctx, then exits. */
static pid_t serve_once(int lfd, SSL_CTX *sctx)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN); /* the client may be gone when our close_notify goes out */
        int fd = accept(lfd, NULL, NULL);
        SSL *ssl = SSL_new(sctx);
        int ok = fd >= 0 && ssl != NULL && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1;
        if (ok) {
            char b[16];
            (void)SSL_read(ssl, b, sizeof b); /* until the client's close_notify */
            SSL_shutdown(ssl);
        }
        _exit(ok ? 0 : 1);
    }
    return pid;
}

static void test_client_connects(void **state)
{
    (void)state;
    char port[16];
    int lfd = listener(port);
    pid_t pid = serve_once(lfd, W.ets[CERT_VI]);
    msp_ets_probe_client_cfg_t cfg = {.host = "127.0.0.1", .port = port, .servername = "ets.test", .timeout_s = 5};
    msp_ets_probe_client_t *c = NULL;
    msp_error_t err;
    assert_int_equal(msp_ets_probe_client_new(&cfg, &c, &err), MSP_OK);
    msp_ets_probe_conn_t conn;
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    assert_int_equal(msp_ets_probe_client_connect(c, &conn, &cert, &cert_len, &err), MSP_OK);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fail_msg("server child: status %#x", st);
    }

    /* the server's static X25519 key share, its fingerprint, its certificate */
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
    assert_int_equal(msp_ets_key_fingerprint(W.x25519, fp), MSP_OK);
    assert_true(conn.have_share);
    assert_int_equal(conn.group, 0x001d);
    assert_int_equal(conn.share_len, 32);
    assert_memory_equal(conn.fingerprint, fp, sizeof fp);
    assert_int_equal(strncmp(conn.suite, "TLS_", 4), 0);
    assert_string_equal(conn.certificate, "not verified (no --ca)");
    unsigned char *want = NULL;
    int want_len = i2d_X509(W.cert[CERT_VI], &want);
    assert_true(want_len > 0);
    assert_int_equal(cert_len, (size_t)want_len);
    assert_memory_equal(cert, want, cert_len);
    OPENSSL_free(want);
    OPENSSL_free(cert);

    /* nobody listens any more: refused, said in one line */
    close(lfd);
    assert_int_equal(msp_ets_probe_client_connect(c, &conn, NULL, NULL, &err), MSP_ERR_IO);
    assert_string_equal(err.detail, "cannot connect: Connection refused");
    assert_false(conn.have_share);
    msp_ets_probe_client_free(c);
}

static void test_client_errors(void **state)
{
    (void)state;
    msp_ets_probe_client_t *c = (msp_ets_probe_client_t *)&c;
    msp_error_t err;
    msp_ets_probe_client_cfg_t cfg = {.host = "127.0.0.1", .port = "1", .groups = "no-such-group"};
    assert_int_equal(msp_ets_probe_client_new(&cfg, &c, &err), MSP_ERR_ARGUMENT);
    assert_null(c);
    cfg.groups = NULL;
    cfg.ca = "/nonexistent/ca.pem";
    assert_int_equal(msp_ets_probe_client_new(&cfg, &c, &err), MSP_ERR_IO);
    assert_null(c);
    cfg.ca = NULL;
    cfg.port = NULL;
    assert_int_equal(msp_ets_probe_client_new(&cfg, &c, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_probe_client_new(NULL, &c, &err), MSP_ERR_ARGUMENT);
    msp_ets_probe_client_free(NULL);

    /* a server that is not TLS: the handshake fails, said in one line */
    char port[16];
    int lfd = listener(port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = accept(lfd, NULL, NULL);
        char b[512];
        ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
        _exit(n > 0 && write(fd, "HTTP/1.0 400 no\r\n\r\n", 19) == 19 ? 0 : 1);
    }
    cfg = (msp_ets_probe_client_cfg_t){.host = "127.0.0.1", .port = port, .timeout_s = 5};
    assert_int_equal(msp_ets_probe_client_new(&cfg, &c, &err), MSP_OK);
    msp_ets_probe_conn_t conn;
    assert_int_equal(msp_ets_probe_client_connect(c, &conn, NULL, NULL, &err), MSP_ERR_IO);
    assert_int_equal(strncmp(err.detail, "TLS 1.3 handshake failed: ", 26), 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    close(lfd);
    msp_ets_probe_client_free(c);
}

static int setup(void **state)
{
    (void)state;
    W.x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    W.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    W.other = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    W.cert_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    msp_error_t err;
    EVP_PKEY *keys[2] = {W.x25519, W.p256};
    if (msp_ets_libctx_new(keys, 2, &W.lib, &err) != MSP_OK) {
        fprintf(stderr, "libctx: %s\n", err.detail);
        return -1;
    }
    for (int k = 0; k < NCERTS; k++) {
        W.cert[k] = certificate(k);
        if (msp_ets_server_ctx_new(W.lib, &W.ets[k], &err) != MSP_OK || !use_cert(W.ets[k], W.cert[k])) {
            return -1;
        }
    }
    W.plain = SSL_CTX_new(TLS_server_method());
    if (!use_cert(W.plain, W.cert[CERT_VI]) || SSL_CTX_set_min_proto_version(W.plain, TLS1_3_VERSION) != 1) {
        return -1;
    }
    W.cctx = ets_pair_client_ctx();
    return W.cctx != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int k = 0; k < NCERTS; k++) {
        SSL_CTX_free(W.ets[k]);
        X509_free(W.cert[k]);
    }
    SSL_CTX_free(W.plain);
    SSL_CTX_free(W.cctx);
    msp_ets_libctx_free(W.lib);
    EVP_PKEY_free(W.x25519);
    EVP_PKEY_free(W.p256);
    EVP_PKEY_free(W.other);
    EVP_PKEY_free(W.cert_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matching_visibility),
        cmocka_unit_test(test_visibility_names_another_key),
        cmocka_unit_test(test_no_visibility),
        cmocka_unit_test(test_fresh_shares),
        cmocka_unit_test(test_hrr),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_malformed_server_hello),
        cmocka_unit_test(test_client_connects),
        cmocka_unit_test(test_client_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
