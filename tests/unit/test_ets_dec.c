/*
 * The passive TLS 1.3 decryptor (msp/ets_dec.h, ets.md 7) against real
 * OpenSSL handshakes: an in-process client and an ETS server (the msp-ets
 * provider, static key shares) talk over memory BIOs, both directions are
 * recorded, and the decryptor, given only the static private key, must
 * produce exactly the client's own key log lines and the plaintext both
 * sides sent, for every way of splitting and interleaving the two streams.
 * Covered: X25519 and P-256; suites 1301/1302/1303 (CCM through the same
 * pair); HelloRetryRequest; resumption with a ticket learned from the first
 * connection; 0-RTT accepted; KeyUpdate both ways; many records; and the
 * undecryptable cases (wrong key, unknown PSK, truncation, flipped byte,
 * gap, a P-256 share off the curve, a Finished with a wrong MAC in a record
 * that decrypts, an unknown psk_ke resumption, an unsupported suite), plus
 * the key schedule's RFC 8446 constants and malformed input; a client that
 * answers a CertificateRequest; an EndOfEarlyData where RFC 8446 4.5 allows
 * none; and Finished messages handed to dec_handshake directly (right,
 * wrong, and a MAC that cannot be computed).
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "dec.h"
#include "ets_pair.h"
#include "msp/error.h"
#include "msp/ets_dec.h"
#include "msp/ets_provider.h"

/* ---- recording TLS 1.3 pair (ets_pair.h) ---- */

#define LOG_MAX 64
#define APP_MAX (1u << 20) /* application data kept per direction: exchange() sends at most 28 x 20000 bytes */

typedef struct world {
    EVP_PKEY *x25519, *p256, *other, *cert_key;
    X509 *cert;
    OSSL_LIB_CTX *lib;
    SSL_CTX *sctx, *cctx;
} world_t;

static world_t W;

static const char EARLY[] = "early data, 0-RTT";

static void append(uint8_t **b, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n > *cap) {
        *cap = (*len + n) * 2 + 1024;
        *b = realloc(*b, *cap);
        assert_non_null(*b);
    }
    memcpy(*b + *len, p, n);
    *len += n;
}

/* A connection to W.sctx with the SNI and ALPN the handshake event is checked for; o.early_data: EARLY as 0-RTT. */
static void pair_start(ets_pair_t *p, ets_pair_opts_t o)
{
    o.sni = "ets.example";
    o.alpn = "h2";
    o.max_app = APP_MAX;
    if (ets_pair_start(p, W.sctx, W.cctx, &o) != 0) {
        fail_msg("connection: %s", p->error);
    }
    if (o.early_data != NULL) {
        assert_int_equal(p->app_len[ETS_C2S], strlen(o.early_data));
        assert_string_equal(p->app[ETS_C2S], o.early_data);
    }
}

/* One write; the helper checks that the peer read exactly data. */
static void pair_send(ets_pair_t *p, int dir, const void *data, size_t n)
{
    if (ets_pair_send(p, dir, data, n) != 0) {
        fail_msg("send: %s", p->error);
    }
}

/* ---- what the decryptor reports ---- */

typedef struct seen {
    uint8_t *pt[2];
    size_t pt_len[2], pt_cap[2];
    char *log[LOG_MAX];
    size_t nlog;
    int kinds[16];
    msp_ets_reason_t reason;
    int undecryptable, handshakes, tickets, key_updates, alerts;
    msp_ets_event_t hs; /* scalars of the handshake event */
    size_t cert_len;
    char text[MSP_ETS_DEC_MAX_TEXT];
} seen_t;

static void on_plain(void *arg, int dir, uint8_t type, const uint8_t *p, size_t n)
{
    seen_t *s = arg;
    if (type == 23) {
        append(&s->pt[dir], &s->pt_len[dir], &s->pt_cap[dir], p, n);
    }
}

static void on_event(void *arg, const msp_ets_event_t *ev)
{
    seen_t *s = arg;
    assert_non_null(ev->text);
    switch (ev->kind) {
    case MSP_ETS_EV_HANDSHAKE:
        s->handshakes++;
        s->hs = *ev;
        s->cert_len = ev->cert_len;
        assert_string_equal(ev->sni, "ets.example");
        assert_string_equal(ev->alpn, "h2");
        break;
    case MSP_ETS_EV_UNDECRYPTABLE:
        s->undecryptable++;
        s->reason = ev->reason;
        snprintf(s->text, sizeof(s->text), "%s", ev->text);
        break;
    case MSP_ETS_EV_TICKET:
        s->tickets++;
        break;
    case MSP_ETS_EV_KEY_UPDATE:
        s->key_updates++;
        break;
    case MSP_ETS_EV_ALERT:
        s->alerts++;
        break;
    case MSP_ETS_EV_GAP: /* test_ets_resync */
        break;
    }
}

static void on_keylog(void *arg, const char *label, const uint8_t cr[32], const uint8_t *secret, size_t len)
{
    seen_t *s = arg;
    char line[256];
    int n = snprintf(line, sizeof(line), "%s ", label);
    for (int i = 0; i < 32; i++) {
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", cr[i]);
    }
    n += snprintf(line + n, sizeof(line) - (size_t)n, " ");
    for (size_t i = 0; i < len; i++) {
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%02x", secret[i]);
    }
    assert_true(s->nlog < LOG_MAX);
    s->log[s->nlog++] = strdup(line);
}

static void seen_free(seen_t *s)
{
    for (int i = 0; i < 2; i++) {
        free(s->pt[i]);
    }
    for (size_t i = 0; i < s->nlog; i++) {
        free(s->log[i]);
    }
    memset(s, 0, sizeof(*s));
}

static const msp_ets_conn_cb_t CB = {on_plain, on_event, on_keylog};

/* The constructors, asserted to succeed: the tests below are about what the objects do. */
static msp_ets_conn_t *conn_new(const msp_ets_keys_t *k, msp_ets_tickets_t *t, const msp_ets_conn_cb_t *cb, void *arg)
{
    msp_ets_conn_t *c = NULL;
    assert_int_equal(msp_ets_conn_new(k, t, cb, arg, &c), MSP_OK);
    assert_non_null(c);
    return c;
}

static msp_ets_tickets_t *tickets_new(size_t max)
{
    msp_ets_tickets_t *t = NULL;
    assert_int_equal(msp_ets_tickets_new(max, &t), MSP_OK);
    assert_non_null(t);
    return t;
}

/* How the recorded streams are handed to the decryptor. */
enum { ORDER_LIVE, ORDER_CLIENT_FIRST, ORDER_SERVER_FIRST, ORDER_RANDOM, ORDER_BYTES, NORDERS };

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void feed_dir_random(msp_ets_conn_t *c, const ets_pair_t *p, int dir, size_t *pos, size_t upto)
{
    while (*pos < upto) {
        size_t n = 1 + rnd() % 700;
        n = n > upto - *pos ? upto - *pos : n;
        assert_int_equal(msp_ets_conn_feed(c, dir, p->bytes[dir] + *pos, n), MSP_OK);
        *pos += n;
    }
}

static void feed(msp_ets_conn_t *c, const ets_pair_t *p, int order)
{
    size_t pos[2] = {0, 0};
    switch (order) {
    case ORDER_LIVE:
        for (size_t i = 0; i < p->nchunks; i++) {
            const ets_chunk_t *s = &p->chunks[i];
            assert_int_equal(msp_ets_conn_feed(c, s->dir, p->bytes[s->dir] + s->off, s->len), MSP_OK);
        }
        break;
    case ORDER_CLIENT_FIRST:
    case ORDER_SERVER_FIRST: {
        int first = order == ORDER_CLIENT_FIRST ? 0 : 1;
        assert_int_equal(msp_ets_conn_feed(c, first, p->bytes[first], p->len[first]), MSP_OK);
        assert_int_equal(msp_ets_conn_feed(c, !first, p->bytes[!first], p->len[!first]), MSP_OK);
        break;
    }
    case ORDER_RANDOM:
        /* random chunks, random interleaving, but never ahead of the live order by more than the streams allow */
        while (pos[0] < p->len[0] || pos[1] < p->len[1]) {
            int dir = pos[0] == p->len[0] ? 1 : pos[1] == p->len[1] ? 0 : (int)(rnd() & 1);
            size_t n = 1 + rnd() % 3000;
            n = n > p->len[dir] - pos[dir] ? p->len[dir] - pos[dir] : n;
            feed_dir_random(c, p, dir, &pos[dir], pos[dir] + n);
        }
        break;
    default:
        for (size_t i = 0; i < p->nchunks; i++) {
            const ets_chunk_t *s = &p->chunks[i];
            for (size_t j = 0; j < s->len; j++) {
                assert_int_equal(msp_ets_conn_feed(c, s->dir, p->bytes[s->dir] + s->off + j, 1), MSP_OK);
            }
        }
        break;
    }
    assert_int_equal(msp_ets_conn_end(c), MSP_OK);
}

static int standard_label(const char *line)
{
    static const char *const std[] = {"CLIENT_EARLY_TRAFFIC_SECRET ",
                                      "EARLY_EXPORTER_SECRET ",
                                      "CLIENT_HANDSHAKE_TRAFFIC_SECRET ",
                                      "SERVER_HANDSHAKE_TRAFFIC_SECRET ",
                                      "CLIENT_TRAFFIC_SECRET_0 ",
                                      "SERVER_TRAFFIC_SECRET_0 ",
                                      "EXPORTER_SECRET "};
    for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++) {
        if (strncmp(line, std[i], strlen(std[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Every line we produce is one of OpenSSL's, and every standard line of OpenSSL's is ours. */
static void check_keylog(const ets_pair_t *p, const seen_t *s)
{
    size_t want = 0;
    for (const char *line = p->keylog; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        size_t n = (size_t)(nl - line);
        if (standard_label(line)) {
            want++;
            int found = 0;
            for (size_t j = 0; j < s->nlog; j++) {
                found |= strlen(s->log[j]) == n && strncmp(line, s->log[j], n) == 0;
            }
            if (!found) {
                fail_msg("OpenSSL key log line not reproduced: %.*s", (int)n, line);
            }
        }
        line = nl + 1;
    }
    assert_true(want >= 5);
    assert_int_equal(s->nlog, want);
}

/* Decrypts p in every order; returns the handshake event's scalars of the last run. */
static void check_all_orders(const ets_pair_t *p, msp_ets_keys_t *keys, msp_ets_tickets_t *tickets, seen_t *last)
{
    for (int order = 0; order < NORDERS; order++) {
        seen_t s = {0};
        msp_ets_conn_t *c = conn_new(keys, tickets, &CB, &s);
        assert_non_null(c);
        feed(c, p, order);
        if (s.undecryptable) {
            fail_msg("order %d: undecryptable: %s", order, s.text);
        }
        assert_int_equal(s.handshakes, 1);
        check_keylog(p, &s);
        for (int dir = 0; dir < 2; dir++) {
            assert_int_equal(s.pt_len[dir], p->app_len[dir]);
            if (p->app_len[dir] > 0) {
                assert_memory_equal(s.pt[dir], p->app[dir], p->app_len[dir]);
            }
        }
        msp_ets_conn_free(c);
        if (order == NORDERS - 1 && last != NULL) {
            *last = s;
        } else {
            seen_free(&s);
        }
    }
}

static msp_ets_keys_t *keys_with(EVP_PKEY *a, EVP_PKEY *b)
{
    msp_ets_keys_t *k = NULL;
    assert_int_equal(msp_ets_keys_new(&k), MSP_OK);
    assert_non_null(k);
    msp_error_t err;
    if (a != NULL) {
        assert_int_equal(msp_ets_keys_add(k, a, &err), MSP_OK);
    }
    if (b != NULL) {
        assert_int_equal(msp_ets_keys_add(k, b, &err), MSP_OK);
    }
    return k;
}

static void exchange(ets_pair_t *p, int records)
{
    uint8_t buf[20000];
    for (int i = 0; i < records; i++) {
        size_t n = 1 + (size_t)(rnd() % sizeof(buf));
        for (size_t j = 0; j < n; j++) {
            buf[j] = (uint8_t)rnd();
        }
        pair_send(p, i & 1, buf, n);
    }
}

/* ---- tests ---- */

static void run_basic(const char *suites, const char *groups, uint16_t suite, uint16_t group, int hrr)
{
    ets_pair_t p;
    pair_start(&p, (ets_pair_opts_t){.ciphersuites = suites, .groups = groups});
    exchange(&p, 6);
    msp_ets_keys_t *k = keys_with(W.x25519, W.p256);
    msp_ets_tickets_t *t = tickets_new(8);
    seen_t s;
    check_all_orders(&p, k, t, &s);
    assert_int_equal(s.hs.suite, suite);
    assert_int_equal(s.hs.group, group);
    assert_int_equal(s.hs.hrr, hrr);
    assert_int_equal(s.hs.resumed, 0);
    assert_true(s.cert_len > 100);
    assert_true(s.tickets >= 1);
    seen_free(&s);
    msp_ets_tickets_free(t);
    msp_ets_keys_free(k);
    ets_pair_free(&p);
}

static void test_x25519_1301(void **state)
{
    (void)state;
    run_basic("TLS_AES_128_GCM_SHA256", "X25519", 0x1301, 0x1d, 0);
}

static void test_x25519_1302(void **state)
{
    (void)state;
    run_basic("TLS_AES_256_GCM_SHA384", "X25519", 0x1302, 0x1d, 0);
}

static void test_p256_1303(void **state)
{
    (void)state;
    run_basic("TLS_CHACHA20_POLY1305_SHA256", "P-256", 0x1303, 0x17, 0);
}

static void test_p256_1302(void **state)
{
    (void)state;
    run_basic("TLS_AES_256_GCM_SHA384", "P-256:X25519", 0x1302, 0x17, 0);
}

static void test_ccm(void **state)
{
    (void)state;
    run_basic("TLS_AES_128_CCM_SHA256", "X25519", 0x1304, 0x1d, 0);
    run_basic("TLS_AES_128_CCM_8_SHA256", "X25519", 0x1305, 0x1d, 0);
}

/* The client's first key share is for X448, which the ETS server has no static key for: HRR to X25519. */
static void test_hrr(void **state)
{
    (void)state;
    run_basic("TLS_AES_128_GCM_SHA256", "X448:X25519", 0x1301, 0x1d, 1);
    run_basic("TLS_AES_256_GCM_SHA384", "X448:P-256", 0x1302, 0x17, 1);
}

static SSL_SESSION *first_connection(ets_pair_t *p, const char *suites, msp_ets_keys_t *k, msp_ets_tickets_t *t)
{
    pair_start(p, (ets_pair_opts_t){.ciphersuites = suites, .groups = "X25519"});
    exchange(p, 2);
    seen_t s = {0};
    msp_ets_conn_t *c = conn_new(k, t, &CB, &s);
    feed(c, p, ORDER_LIVE);
    assert_int_equal(s.undecryptable, 0);
    assert_true(s.tickets >= 1);
    assert_int_equal(msp_ets_tickets_count(t), (size_t)s.tickets);
    msp_ets_conn_free(c);
    seen_free(&s);
    SSL_SESSION *sess = SSL_get1_session(p->client);
    assert_non_null(sess);
    assert_int_equal(SSL_SESSION_is_resumable(sess), 1);
    return sess;
}

static void test_resumption(void **state)
{
    (void)state;
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    msp_ets_tickets_t *t = tickets_new(8);
    ets_pair_t p1, p2;
    SSL_SESSION *sess = first_connection(&p1, "TLS_AES_256_GCM_SHA384", k, t);
    pair_start(&p2, (ets_pair_opts_t){.ciphersuites = "TLS_AES_256_GCM_SHA384", .groups = "X25519", .session = sess});
    assert_int_equal(SSL_session_reused(p2.client), 1);
    exchange(&p2, 4);
    seen_t s;
    check_all_orders(&p2, k, t, &s);
    assert_int_equal(s.hs.resumed, 1);
    assert_int_equal(s.cert_len, 0);
    seen_free(&s);

    /* the resumed connection alone, with a fresh ticket store: not decryptable, said once */
    msp_ets_tickets_t *fresh = tickets_new(8);
    seen_t n = {0};
    msp_ets_conn_t *c = conn_new(k, fresh, &CB, &n);
    feed(c, &p2, ORDER_RANDOM);
    assert_int_equal(n.undecryptable, 1);
    assert_int_equal(n.reason, MSP_ETS_R_PSK_UNKNOWN);
    assert_non_null(strstr(n.text, "PSK from a connection not seen"));
    assert_int_equal(n.pt_len[0] + n.pt_len[1], 0);
    msp_ets_conn_free(c);
    seen_free(&n);
    msp_ets_tickets_free(fresh);

    SSL_SESSION_free(sess);
    ets_pair_free(&p1);
    ets_pair_free(&p2);
    msp_ets_tickets_free(t);
    msp_ets_keys_free(k);
}

static void test_early_data(void **state)
{
    (void)state;
    msp_ets_keys_t *k = keys_with(W.x25519, W.p256);
    msp_ets_tickets_t *t = tickets_new(8);
    ets_pair_t p1, p2;
    SSL_SESSION *sess = first_connection(&p1, "TLS_AES_128_GCM_SHA256", k, t);
    assert_true(SSL_SESSION_get_max_early_data(sess) > 0);
    pair_start(&p2,
               (ets_pair_opts_t){
                   .ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519", .session = sess, .early_data = EARLY});
    assert_int_equal(SSL_get_early_data_status(p2.client), SSL_EARLY_DATA_ACCEPTED);
    exchange(&p2, 3);
    seen_t s;
    check_all_orders(&p2, k, t, &s);
    assert_int_equal(s.hs.resumed, 1);
    assert_int_equal(s.hs.early_offered, 1);
    assert_int_equal(s.hs.early_accepted, 1);
    seen_free(&s);
    SSL_SESSION_free(sess);
    ets_pair_free(&p1);
    ets_pair_free(&p2);
    msp_ets_tickets_free(t);
    msp_ets_keys_free(k);
}

static void test_key_update_many_records(void **state)
{
    (void)state;
    ets_pair_t p;
    pair_start(&p, (ets_pair_opts_t){.ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519"});
    exchange(&p, 20);
    assert_int_equal(ets_pair_key_update(&p, ETS_C2S, 1), 0);
    exchange(&p, 4); /* the server answers with its own update */
    assert_int_equal(ets_pair_key_update(&p, ETS_S2C, 0), 0);
    exchange(&p, 4);
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    seen_t s;
    check_all_orders(&p, k, NULL, &s);
    assert_int_equal(s.key_updates, 3);
    seen_free(&s);
    msp_ets_keys_free(k);
    ets_pair_free(&p);
}

static void expect_failure(const ets_pair_t *p, msp_ets_keys_t *k, int order, msp_ets_reason_t reason, const char *text)
{
    seen_t s = {0};
    msp_ets_conn_t *c = conn_new(k, NULL, &CB, &s);
    feed(c, p, order);
    assert_int_equal(s.undecryptable, 1);
    if (s.reason != reason) {
        fail_msg("want reason %s, got %s: %s", msp_ets_reason_name(reason), msp_ets_reason_name(s.reason), s.text);
    }
    assert_non_null(strstr(s.text, text));
    assert_int_equal(msp_ets_conn_failed(c), 1);
    msp_ets_conn_free(c);
    seen_free(&s);
}

static void test_undecryptable(void **state)
{
    (void)state;
    ets_pair_t p;
    pair_start(&p, (ets_pair_opts_t){.ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519"});
    exchange(&p, 4);
    msp_ets_keys_t *wrong = keys_with(W.other, W.p256);
    msp_ets_keys_t *right = keys_with(W.x25519, NULL);
    for (int order = 0; order < NORDERS; order++) {
        expect_failure(&p, wrong, order, MSP_ETS_R_NO_STATIC_KEY, "no static key matches the ServerHello key_share");
    }

    /* truncated: the server's flight cut in the middle */
    ets_pair_t cut = p;
    ets_chunk_t cut_chunks[8];
    cut.chunks = cut_chunks;
    cut.nchunks = 0;
    for (size_t i = 0; i < p.nchunks && p.chunks[i].dir == 0; i++) {
        assert_true(cut.nchunks < 7);
        cut.chunks[cut.nchunks++] = p.chunks[i];
    }
    cut.chunks[cut.nchunks++] = (ets_chunk_t){.dir = 1, .off = 0, .len = 200};
    expect_failure(&cut, right, ORDER_LIVE, MSP_ETS_R_TRUNCATED, "connection ended inside the handshake");

    /* a flipped byte in the last server record */
    p.bytes[1][p.len[1] - 3] ^= 0x40;
    expect_failure(&p, right, ORDER_LIVE, MSP_ETS_R_AEAD, "AEAD failure on record");
    p.bytes[1][p.len[1] - 3] ^= 0x40;

    /* a gap */
    seen_t s = {0};
    msp_ets_conn_t *c = conn_new(right, NULL, &CB, &s);
    assert_int_equal(msp_ets_conn_feed(c, 0, p.bytes[0], 100), MSP_OK);
    assert_int_equal(msp_ets_conn_gap(c, 0, 1234), MSP_OK);
    assert_int_equal(msp_ets_conn_feed(c, 0, p.bytes[0] + 1334, p.len[0] - 1334), MSP_OK);
    assert_int_equal(msp_ets_conn_feed(c, 1, p.bytes[1], p.len[1]), MSP_OK);
    assert_int_equal(msp_ets_conn_end(c), MSP_OK);
    assert_int_equal(s.undecryptable, 1);
    assert_int_equal(s.reason, MSP_ETS_R_GAP);
    assert_string_equal(s.text, "gap of 1234 bytes in client->server stream");
    msp_ets_conn_free(c);
    seen_free(&s);

    msp_ets_keys_free(wrong);
    msp_ets_keys_free(right);
    ets_pair_free(&p);
}

/*
 * The key set keeps one scratch peer key per static key: a client share off
 * the curve is refused, and the next connection with the same key set still
 * derives from its own share, not from what the refused one left behind.
 */
static void test_p256_share_off_curve(void **state)
{
    (void)state;
    ets_pair_t p;
    pair_start(&p, (ets_pair_opts_t){.ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "P-256"});
    exchange(&p, 2);
    static const uint8_t entry[] = {0x00, 0x17, 0x00, 0x41,
                                    0x04}; /* KeyShareEntry: secp256r1, 65 bytes, uncompressed */
    uint8_t *at = memmem(p.bytes[ETS_C2S], p.len[ETS_C2S], entry, sizeof(entry));
    assert_non_null(at);
    uint8_t *y_last = at + sizeof(entry) + 63;
    msp_ets_keys_t *k = keys_with(W.x25519, W.p256);
    *y_last ^= 0x01; /* y^2 = x^3 - 3x + b no longer holds */
    expect_failure(&p, k, ORDER_LIVE, MSP_ETS_R_MALFORMED, "the client's key_share is not a valid public key");
    *y_last ^= 0x01;
    seen_t s;
    check_all_orders(&p, k, NULL, &s);
    assert_int_equal(s.hs.group, 0x17);
    seen_free(&s);
    msp_ets_keys_free(k);
    ets_pair_free(&p);
}

/* A TLS 1.2 server answer is reported as such. */
static void test_not_tls13(void **state)
{
    (void)state;
    static const uint8_t ch[] = {22,   3, 1, 0, 53, 1, 0,  0, 49, 3,    3,   [11 ... 42] = 7, 0, 0, 2, 0x13,
                                 0x01, 1, 0, 0, 6,  0, 43, 0, 2,  0x03, 0x04};
    static const uint8_t sh[] = {22, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3, [11 ... 42] = 9, 0, 0xc0, 0x2f, 0};
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    seen_t s = {0};
    msp_ets_conn_t *c = conn_new(k, NULL, &CB, &s);
    assert_int_equal(msp_ets_conn_feed(c, 1, sh, sizeof(sh)), MSP_OK);
    assert_int_equal(s.undecryptable, 0); /* waits for the ClientHello */
    assert_int_equal(msp_ets_conn_feed(c, 0, ch, sizeof(ch)), MSP_OK);
    assert_int_equal(s.reason, MSP_ETS_R_NOT_TLS13);
    assert_string_equal(s.text, "not TLS 1.3 (negotiated 0x0303)");
    msp_ets_conn_free(c);
    seen_free(&s);
    msp_ets_keys_free(k);
}

/* Garbage and broken messages: one report, no crash, input still accepted. */
static void test_malformed(void **state)
{
    (void)state;
    static const uint8_t http[] = "GET / HTTP/1.1\r\n\r\n";
    static const uint8_t bad_ch[] = {22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0};
    static const uint8_t huge[] = {22, 3, 1, 0, 8, 11, 0xff, 0xff, 0xff, 3, 3, 0, 0};
    const uint8_t *in[] = {http, bad_ch, huge};
    size_t len[] = {sizeof(http), sizeof(bad_ch), sizeof(huge)};
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    for (size_t i = 0; i < 3; i++) {
        seen_t s = {0};
        msp_ets_conn_t *c = conn_new(k, NULL, &CB, &s);
        assert_int_equal(msp_ets_conn_feed(c, 0, in[i], len[i]), MSP_OK);
        assert_int_equal(msp_ets_conn_feed(c, 0, in[i], len[i]), MSP_OK);
        assert_int_equal(msp_ets_conn_end(c), MSP_OK);
        assert_int_equal(s.undecryptable, 1);
        assert_int_equal(s.reason, MSP_ETS_R_MALFORMED);
        msp_ets_conn_free(c);
        seen_free(&s);
    }
    assert_int_equal(msp_ets_conn_feed(NULL, 0, http, 1), MSP_ERR_ARGUMENT);
    msp_ets_keys_free(k);
}

/* A server stream that never gets its ClientHello is held, bounded. */
static void test_pending_limit(void **state)
{
    (void)state;
    static uint8_t rec[5 + 16384] = {22, 3, 3, 0x40, 0};
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    seen_t s = {0};
    msp_ets_conn_t *c = conn_new(k, NULL, &CB, &s);
    for (int i = 0; i < 20 && s.undecryptable == 0; i++) {
        assert_int_equal(msp_ets_conn_feed(c, 1, rec, sizeof(rec)), MSP_OK);
    }
    assert_int_equal(s.reason, MSP_ETS_R_PENDING_LIMIT);
    msp_ets_conn_free(c);
    seen_free(&s);
    msp_ets_keys_free(k);
}

/*
 * RFC 8446 7.1 with no PSK: Early Secret = HKDF-Extract(0^32, 0^32) and
 * Derive-Secret(., "derived", "") under SHA-256; the values are the ones of
 * RFC 8448 section 3 ("simple 1-RTT handshake").
 */
static void test_schedule_constants(void **state)
{
    (void)state;
    static const uint8_t es[32] = {0x33, 0xad, 0x0a, 0x1c, 0x60, 0x7e, 0xc0, 0x3b, 0x09, 0xe6, 0xcd,
                                   0x98, 0x93, 0x68, 0x0c, 0xe2, 0x10, 0xad, 0xf3, 0x00, 0xaa, 0x1f,
                                   0x26, 0x60, 0xe1, 0xb2, 0x2e, 0x10, 0xf1, 0x70, 0xf9, 0x2a};
    static const uint8_t derived[32] = {0x6f, 0x26, 0x15, 0xa1, 0x08, 0xc7, 0x02, 0xc5, 0x67, 0x8f, 0x54,
                                        0xfc, 0x9d, 0xba, 0xb6, 0x97, 0x16, 0xc0, 0x76, 0x18, 0x9c, 0x48,
                                        0x25, 0x0c, 0xeb, 0xea, 0xc3, 0x57, 0x6c, 0x36, 0x11, 0xba};
    static const uint8_t zero[32];
    msp_ets_keys_t *k = keys_with(NULL, NULL);
    msp_ets_conn_t *c = conn_new(k, NULL, NULL, NULL);
    c->suite = dec_suite_find(c->cr, 0x1301, &c->suite_store);
    assert_int_equal(dec_kdf_start(c), MSP_OK);
    uint8_t s[32];
    assert_int_equal(dec_extract(c, NULL, zero, 32, s), MSP_OK);
    assert_memory_equal(s, es, 32);
    assert_int_equal(dec_derive_next(c, s), MSP_OK);
    assert_memory_equal(s, derived, 32);
    assert_null(dec_suite_find(c->cr, 0x1306, &c->suite_store));
    msp_ets_conn_free(c);
    msp_ets_keys_free(k);
}

static void test_tickets_lru(void **state)
{
    (void)state;
    msp_ets_tickets_t *t = tickets_new(2);
    uint8_t psk[32] = {1};
    assert_int_equal(dec_tickets_put(t, (const uint8_t *)"aaaa", 4, 0x1301, psk, 32), MSP_OK);
    assert_int_equal(dec_tickets_put(t, (const uint8_t *)"bbbb", 4, 0x1301, psk, 32), MSP_OK);
    assert_non_null(dec_tickets_get(t, (const uint8_t *)"aaaa", 4)); /* a is now the newer */
    assert_int_equal(dec_tickets_put(t, (const uint8_t *)"cccc", 4, 0x1301, psk, 32), MSP_OK);
    assert_int_equal(msp_ets_tickets_count(t), 2);
    assert_non_null(dec_tickets_get(t, (const uint8_t *)"aaaa", 4));
    assert_null(dec_tickets_get(t, (const uint8_t *)"bbbb", 4));
    assert_non_null(dec_tickets_get(t, (const uint8_t *)"cccc", 4));
    assert_null(dec_tickets_get(t, (const uint8_t *)"ccc", 3));
    msp_ets_tickets_free(t);
}

/* One ticket of len bytes, numbered i (its first bytes), the rest a pattern of i. */
static void numbered_ticket(uint8_t *out, size_t len, uint32_t i)
{
    for (size_t k = 0; k < len; k++) {
        out[k] = (uint8_t)(i * 31 + k);
    }
    memcpy(out, &i, sizeof i);
}

/*
 * Tickets in the store's blocks (up to DEC_TICKET_INLINE bytes) and in
 * allocations of their own (longer), over two blocks and through eviction
 * in both directions (a long one's entry taken by a short one and the
 * reverse): each lookup finds its own bytes and PSK, the evicted none.
 */
static void test_tickets_storage(void **state)
{
    (void)state;
    const uint32_t max = DEC_TICKET_BLOCK + 100, total = max + 300;
    msp_ets_tickets_t *t = tickets_new(max);
    uint8_t ticket[DEC_TICKET_INLINE + 64], psk[32];
    for (uint32_t i = 0; i < total; i++) {
        size_t len = i % 7 == 0 ? DEC_TICKET_INLINE + 1 + i % 50 : 100 + i % (DEC_TICKET_INLINE - 99);
        numbered_ticket(ticket, len, i);
        memset(psk, (int)(i & 0xff), sizeof psk);
        assert_int_equal(dec_tickets_put(t, ticket, len, 0x1301, psk, sizeof psk), MSP_OK);
    }
    assert_int_equal(msp_ets_tickets_count(t), max);
    for (uint32_t i = 0; i < total; i++) {
        size_t len = i % 7 == 0 ? DEC_TICKET_INLINE + 1 + i % 50 : 100 + i % (DEC_TICKET_INLINE - 99);
        numbered_ticket(ticket, len, i);
        const dec_ticket_t *e = dec_tickets_get(t, ticket, len);
        if (i < total - max) {
            assert_null(e); /* the oldest went */
            continue;
        }
        assert_non_null(e);
        assert_int_equal(e->ticket_len, len);
        assert_memory_equal(e->ticket, ticket, len);
        memset(psk, (int)(i & 0xff), sizeof psk);
        assert_memory_equal(e->psk, psk, sizeof psk);
    }
    msp_ets_tickets_free(t);
}

/* The constructors' failures: the code, and *out NULL even when it held something. */
static void test_constructors(void **state)
{
    (void)state;
    msp_ets_tickets_t *t = (msp_ets_tickets_t *)&t;
    assert_int_equal(msp_ets_tickets_new(0, &t), MSP_ERR_ARGUMENT);
    assert_null(t);
    t = (msp_ets_tickets_t *)&t;
    assert_int_equal(msp_ets_tickets_new(((size_t)1 << 24) + 1, &t), MSP_ERR_ARGUMENT);
    assert_null(t);
    msp_ets_conn_t *c = (msp_ets_conn_t *)&c;
    assert_int_equal(msp_ets_conn_new(NULL, NULL, &CB, NULL, &c), MSP_ERR_ARGUMENT);
    assert_null(c);
    msp_ets_keys_t *k = NULL;
    assert_int_equal(msp_ets_keys_new(&k), MSP_OK);
    assert_int_equal(msp_ets_conn_new(k, NULL, NULL, NULL, &c), MSP_OK);
    assert_non_null(c);
    msp_ets_conn_free(c);
    msp_ets_keys_free(k);
    /* every free accepts NULL */
    msp_ets_conn_free(NULL);
    msp_ets_tickets_free(NULL);
    msp_ets_keys_free(NULL);
}

static void test_keys_add(void **state)
{
    (void)state;
    msp_ets_keys_t *k = NULL;
    assert_int_equal(msp_ets_keys_new(&k), MSP_OK);
    msp_error_t err;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_int_equal(msp_ets_keys_add(k, rsa, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_keys_add(k, W.p256, &err), MSP_OK);
    assert_int_equal(msp_ets_keys_count(k), 1);
    EVP_PKEY_free(rsa);
    msp_ets_keys_free(k);
}

/*
 * With MSP_ETS_DEC_CORPUS=dir set, writes seed inputs for fuzz/fuzz_ets_dec.c:
 * recorded connections to a server whose X25519 static key is 0x42 * 32,
 * framed as that target reads them. Otherwise it checks only that the key
 * gives the share the target's key set expects.
 */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg);

static void write_corpus(const char *dir, const char *name, const ets_pair_t *p)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < p->nchunks; i++) {
        for (size_t off = 0; off < p->chunks[i].len; off += 64) {
            size_t n = p->chunks[i].len - off > 64 ? 64 : p->chunks[i].len - off;
            fputc((int)(((n - 1) << 2) | (size_t)p->chunks[i].dir), f);
            fwrite(p->bytes[p->chunks[i].dir] + p->chunks[i].off + off, 1, n, f);
        }
    }
    assert_int_equal(fclose(f), 0);
}

static void test_fuzz_corpus(void **state)
{
    (void)state;
    uint8_t raw[32];
    memset(raw, 0x42, sizeof(raw));
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, raw, sizeof(raw));
    assert_non_null(key);
    const char *dir = getenv("MSP_ETS_DEC_CORPUS");
    if (dir == NULL) {
        msp_ets_keys_t *k = keys_with(key, NULL);
        assert_int_equal(k->key[0].share_len, 32);
        msp_ets_keys_free(k);
        EVP_PKEY_free(key);
        return;
    }
    msp_error_t err;
    OSSL_LIB_CTX *lib = NULL;
    assert_int_equal(msp_ets_libctx_new(&key, 1, &lib, &err), MSP_OK);
    SSL_CTX *saved = W.sctx;
    assert_int_equal(msp_ets_server_ctx_new(lib, &W.sctx, &err), MSP_OK);
    assert_non_null(W.sctx);
    SSL_CTX_use_certificate(W.sctx, W.cert);
    SSL_CTX_use_PrivateKey(W.sctx, W.cert_key);
    SSL_CTX_set_alpn_select_cb(W.sctx, alpn_select, NULL);
    static const struct {
        const char *name, *suites, *groups;
    } runs[] = {{"x25519_1301", "TLS_AES_128_GCM_SHA256", "X25519"},
                {"hrr_1302", "TLS_AES_256_GCM_SHA384", "X448:X25519"},
                {"x25519_1303", "TLS_CHACHA20_POLY1305_SHA256", "X25519"}};
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        ets_pair_t p;
        pair_start(&p, (ets_pair_opts_t){.ciphersuites = runs[i].suites, .groups = runs[i].groups});
        pair_send(&p, 0, "GET / HTTP/1.1\r\n\r\n", 18);
        pair_send(&p, 1, "HTTP/1.1 204 No Content\r\n\r\n", 27);
        write_corpus(dir, runs[i].name, &p);
        ets_pair_free(&p);
    }
    SSL_CTX_free(W.sctx);
    W.sctx = saved;
    msp_ets_libctx_free(lib);
    EVP_PKEY_free(key);
}

/* ---- the reasons finished, psk_ke_unknown, unsupported ---- */

/* A copy of p whose dir bytes are a private, writable copy (the original keeps decrypting). */
static ets_pair_t pair_copy(const ets_pair_t *p, int dir)
{
    ets_pair_t q = *p;
    q.bytes[dir] = malloc(p->len[dir]);
    assert_non_null(q.bytes[dir]);
    memcpy(q.bytes[dir], p->bytes[dir], p->len[dir]);
    return q;
}

static void unhex(const char *h, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(h), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* HKDF-Expand-Label(secret, label, "", n) under SHA-256 (RFC 8446 7.1), with OpenSSL's HKDF, not the decryptor's. */
static void expand_label(const uint8_t secret[32], const char *label, uint8_t *out, size_t n)
{
    uint8_t info[2 + 1 + 32 + 1];
    size_t ll = 6 + strlen(label), il = 0;
    info[il++] = (uint8_t)(n >> 8);
    info[il++] = (uint8_t)n;
    info[il++] = (uint8_t)ll;
    memcpy(info + il, "tls13 ", 6);
    memcpy(info + il + 6, label, ll - 6);
    il += ll;
    info[il++] = 0; /* empty context */
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, il),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    assert_non_null(kctx);
    assert_int_equal(EVP_KDF_derive(kctx, out, n, params), 1);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
}

/* AES-128-GCM over one TLS 1.3 record body in place (RFC 8446 5.2); 1 when it authenticated (decrypt). */
static int gcm(int enc, const uint8_t key[16], const uint8_t nonce[12], const uint8_t hdr[5], uint8_t *body, size_t n)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int len = 0, ok = x != NULL && EVP_CipherInit_ex(x, EVP_aes_128_gcm(), NULL, key, nonce, enc) == 1 &&
                      EVP_CipherUpdate(x, NULL, &len, hdr, 5) == 1;
    uint8_t *tag = body + n - 16;
    ok = ok && (enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1);
    ok = ok && EVP_CipherUpdate(x, body, &len, body, (int)(n - 16)) == 1 && EVP_CipherFinal_ex(x, body, &len) == 1;
    ok = ok && (!enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
    EVP_CIPHER_CTX_free(x);
    return ok;
}

/*
 * The Finished of dir (TLS_AES_128_GCM_SHA256, no 0-RTT) given a wrong verify_data, its record encrypted
 * again under that side's handshake key (from OpenSSL's own key log): every record still authenticates,
 * only the MAC inside is wrong.
 */
static void corrupt_finished(ets_pair_t *p, int dir)
{
    char hex[2 * 32 + 1];
    uint8_t secret[32], key[16], iv[12];
    assert_int_equal(
        ets_pair_keylog_get(p, dir == ETS_C2S ? "CLIENT_HANDSHAKE_TRAFFIC_SECRET" : "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                            hex, sizeof(hex)),
        0);
    unhex(hex, secret, sizeof(secret));
    expand_label(secret, "key", key, sizeof(key));
    expand_label(secret, "iv", iv, sizeof(iv));
    uint8_t *b = p->bytes[dir];
    uint64_t seq = 0;
    for (size_t off = 0; off + 5 <= p->len[dir];) {
        uint8_t *hdr = b + off, *body = hdr + 5;
        size_t n = (size_t)hdr[3] << 8 | hdr[4];
        assert_true(off + 5 + n <= p->len[dir]);
        off += 5 + n;
        if (hdr[0] != 23) {
            continue; /* ClientHello, ServerHello, change_cipher_spec */
        }
        uint8_t nonce[12];
        memcpy(nonce, iv, sizeof(nonce));
        for (int i = 0; i < 8; i++) {
            nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
        }
        seq++;
        assert_true(n > 17);
        if (!gcm(0, key, nonce, hdr, body, n)) {
            fail_msg("record %llu of dir %d does not decrypt under the handshake key", (unsigned long long)seq - 1,
                     dir);
        }
        size_t inner = n - 16;
        while (inner > 0 && body[inner - 1] == 0) {
            inner--; /* padding */
        }
        assert_int_equal(body[inner - 1], 22); /* handshake: the Finished comes before any application data */
        uint8_t *finished = NULL;
        for (size_t m = 0; m + 4 <= inner - 1;) {
            size_t ml = (size_t)body[m + 1] << 16 | (size_t)body[m + 2] << 8 | body[m + 3];
            if (body[m] == 20) {
                assert_int_equal(ml, 32);
                finished = body + m;
            }
            m += 4 + ml;
        }
        if (finished != NULL) {
            finished[4 + 31] ^= 0x01; /* the last byte of verify_data */
        }
        assert_true(gcm(1, key, nonce, hdr, body, n));
        if (finished != NULL) {
            return;
        }
    }
    fail_msg("no Finished found in dir %d", dir);
}

/*
 * finished (dec_hs.c server_finished, client_flight): a Finished whose record decrypts under the right key
 * but whose verify_data is wrong. Server side: the MAC over the transcript is the only thing that notices
 * (the record is fine); client side: without the check the connection would decrypt in full.
 */
static void test_finished(void **state)
{
    (void)state;
    ets_pair_t p;
    pair_start(&p, (ets_pair_opts_t){.ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519"});
    exchange(&p, 2);
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    check_all_orders(&p, k, NULL, NULL); /* untouched, it decrypts */
    ets_pair_t s = pair_copy(&p, ETS_S2C), c = pair_copy(&p, ETS_C2S);
    corrupt_finished(&s, ETS_S2C);
    corrupt_finished(&c, ETS_C2S);
    for (int order = 0; order < NORDERS; order++) {
        expect_failure(&s, k, order, MSP_ETS_R_FINISHED, "server Finished does not verify (wrong key or transcript)");
        expect_failure(&c, k, order, MSP_ETS_R_FINISHED, "client Finished does not verify");
    }
    assert_string_equal(msp_ets_reason_name(MSP_ETS_R_FINISHED), "finished");
    free(s.bytes[ETS_S2C]);
    free(c.bytes[ETS_C2S]);
    msp_ets_keys_free(k);
    ets_pair_free(&p);
}

/*
 * psk_ke_unknown (dec_hs.c selected_psk): a PSK-only resumption (psk_ke, RFC 8446 4.2.9: no key_share in
 * the ServerHello). Both sides allow it (SSL_OP_ALLOW_NO_DHE_KEX) and the client offers no group the ETS
 * server has, so OpenSSL resumes without (EC)DHE. With the issuing connection's ticket it decrypts; without
 * it, it is psk_ke_unknown, not psk_unknown.
 */
static void test_psk_ke(void **state)
{
    (void)state;
    SSL_CTX *cctx = ets_pair_client_ctx();
    assert_non_null(cctx);
    SSL_CTX_set_options(cctx, SSL_OP_ALLOW_NO_DHE_KEX);
    SSL_CTX_set_options(W.sctx, SSL_OP_ALLOW_NO_DHE_KEX);
    msp_ets_keys_t *k = keys_with(W.x25519, W.p256);
    msp_ets_tickets_t *t = tickets_new(8);
    ets_pair_t p1, p2;
    ets_pair_opts_t o = {
        .ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519", .sni = "ets.example", .alpn = "h2"};
    if (ets_pair_start(&p1, W.sctx, cctx, &o) != 0) {
        fail_msg("first connection: %s", p1.error);
    }
    exchange(&p1, 2);
    seen_t s1 = {0};
    msp_ets_conn_t *c = conn_new(k, t, &CB, &s1);
    feed(c, &p1, ORDER_LIVE);
    assert_int_equal(s1.undecryptable, 0);
    assert_true(s1.tickets >= 1);
    msp_ets_conn_free(c);
    seen_free(&s1);
    SSL_SESSION *sess = SSL_get1_session(p1.client);
    assert_non_null(sess);

    o.groups = "X448"; /* no group in common: resumption without (EC)DHE */
    o.session = sess;
    if (ets_pair_start(&p2, W.sctx, cctx, &o) != 0) {
        fail_msg("psk_ke connection: %s", p2.error);
    }
    exchange(&p2, 2);
    assert_int_equal(p2.resumed, 1);
    uint16_t group;
    uint8_t share[ETS_PAIR_MAX_SHARE];
    size_t len;
    assert_int_equal(ets_pair_server_share(&p2, &group, share, sizeof(share), &len, NULL), -1); /* no key_share */
    SSL_CTX_clear_options(W.sctx, SSL_OP_ALLOW_NO_DHE_KEX);

    seen_t s;
    check_all_orders(&p2, k, t, &s);
    assert_int_equal(s.hs.resumed, 1);
    assert_int_equal(s.hs.group, 0); /* psk_ke */
    seen_free(&s);
    for (int order = 0; order < NORDERS; order++) {
        expect_failure(&p2, k, order, MSP_ETS_R_PSK_KE_UNKNOWN, "PSK-only (psk_ke) resumption with an unknown ticket");
    }
    assert_string_equal(msp_ets_reason_name(MSP_ETS_R_PSK_KE_UNKNOWN), "psk_ke_unknown");

    SSL_SESSION_free(sess);
    ets_pair_free(&p1);
    ets_pair_free(&p2);
    msp_ets_tickets_free(t);
    msp_ets_keys_free(k);
    SSL_CTX_free(cctx);
}

/*
 * unsupported (dec_hs.c start_suite): a ServerHello choosing a suite the decryptor has no algorithms for,
 * here TLS_SHA256_SHA256 (0xC0B4, RFC 9150, integrity only), which OpenSSL 3.0 cannot negotiate: the
 * recorded ServerHello's suite is replaced (nothing is verified before the suite is looked up).
 * A group without a static key type (X448, from a plain OpenSSL server) is not "unsupported" but
 * no_static_key naming the group: keys exist only for X25519 and P-256, and the key is looked up by group
 * and share.
 */
static void test_unsupported(void **state)
{
    (void)state;
    ets_pair_t p;
    pair_start(&p, (ets_pair_opts_t){.ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519"});
    exchange(&p, 2);
    ets_pair_t q = pair_copy(&p, ETS_S2C);
    uint8_t *sh = q.bytes[ETS_S2C];
    assert_int_equal(sh[0], 22);
    assert_int_equal(sh[5], 2);              /* ServerHello */
    size_t at = 5 + 4 + 2 + 32 + 1 + sh[43]; /* record and message headers, version, random, session id */
    assert_int_equal(sh[at] << 8 | sh[at + 1], 0x1301);
    sh[at] = 0xc0;
    sh[at + 1] = 0xb4;
    msp_ets_keys_t *k = keys_with(W.x25519, W.p256);
    for (int order = 0; order < NORDERS; order++) {
        expect_failure(&q, k, order, MSP_ETS_R_UNSUPPORTED, "cipher suite 0xc0b4 is not supported");
    }
    assert_string_equal(msp_ets_reason_name(MSP_ETS_R_UNSUPPORTED), "unsupported");
    free(q.bytes[ETS_S2C]);
    ets_pair_free(&p);

    /* X448 from a stock server */
    SSL_CTX *plain = SSL_CTX_new(TLS_server_method());
    assert_non_null(plain);
    assert_int_equal(SSL_CTX_use_certificate(plain, W.cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(plain, W.cert_key), 1);
    SSL_CTX_set_alpn_select_cb(plain, alpn_select, NULL);
    ets_pair_opts_t o = {.groups = "X448", .sni = "ets.example", .alpn = "h2"};
    if (ets_pair_start(&p, plain, W.cctx, &o) != 0) {
        fail_msg("X448 connection: %s", p.error);
    }
    exchange(&p, 2);
    expect_failure(&p, k, ORDER_LIVE, MSP_ETS_R_NO_STATIC_KEY, "group 0x001e");
    ets_pair_free(&p);
    SSL_CTX_free(plain);
    msp_ets_keys_free(k);
}

/* ---- the client's flight (dec_hs.c client_flight, finished_ok) ---- */

static int accept_any_cert(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

/*
 * client_flight: a client that answers the server's CertificateRequest, with a certificate (Certificate and
 * CertificateVerify) or without one (an empty Certificate): both messages go into the transcript, the
 * connection decrypts in full in every order.
 */
static void test_client_certificate(void **state)
{
    (void)state;
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    for (int with_cert = 0; with_cert < 2; with_cert++) {
        SSL_CTX *cctx = ets_pair_client_ctx();
        assert_non_null(cctx);
        if (with_cert) {
            assert_int_equal(SSL_CTX_use_certificate(cctx, W.cert), 1);
            assert_int_equal(SSL_CTX_use_PrivateKey(cctx, W.cert_key), 1);
        }
        SSL_CTX_set_verify(W.sctx, SSL_VERIFY_PEER, accept_any_cert);
        ets_pair_t p;
        ets_pair_opts_t o = {.ciphersuites = "TLS_AES_128_GCM_SHA256",
                             .groups = "X25519",
                             .sni = "ets.example",
                             .alpn = "h2",
                             .max_app = APP_MAX};
        int rc = ets_pair_start(&p, W.sctx, cctx, &o);
        SSL_CTX_set_verify(W.sctx, SSL_VERIFY_NONE, NULL);
        if (rc != 0) {
            fail_msg("client certificate %d: %s", with_cert, p.error);
        }
        X509 *peer = SSL_get1_peer_certificate(p.server);
        if (with_cert) {
            assert_non_null(peer);
            assert_int_equal(X509_cmp(peer, W.cert), 0);
        } else {
            assert_null(peer);
        }
        X509_free(peer);
        exchange(&p, 4);
        seen_t s;
        check_all_orders(&p, k, NULL, &s);
        assert_int_equal(s.hs.suite, 0x1301);
        assert_int_equal(s.cert_len, (size_t)i2d_X509(W.cert, NULL)); /* the server's certificate, not the client's */
        seen_free(&s);
        ets_pair_free(&p);
        SSL_CTX_free(cctx);
    }
    msp_ets_keys_free(k);
}

/*
 * A copy of p whose dir record holding the first handshake message of type msg_type, under the key of the key
 * log line label (OpenSSL's, TLS_AES_128_GCM_SHA256), is sealed again after edit(plaintext, length, offset of
 * that message) returned the new length of its handshake bytes: the record may grow, the bytes after it only
 * move. Records before the first that opens under that key are under another (0-RTT data before the handshake
 * key). q.bytes[dir] and q.chunks are the copy's own.
 */
static ets_pair_t reseal(const ets_pair_t *p, int dir, const char *label, uint8_t msg_type,
                         size_t (*edit)(uint8_t *, size_t, size_t))
{
    char hex[2 * 32 + 1];
    uint8_t secret[32], key[16], iv[12];
    assert_int_equal(ets_pair_keylog_get(p, label, hex, sizeof(hex)), 0);
    unhex(hex, secret, sizeof(secret));
    expand_label(secret, "key", key, sizeof(key));
    expand_label(secret, "iv", iv, sizeof(iv));
    const uint8_t *b = p->bytes[dir];
    uint64_t seq = 0;
    for (size_t off = 0; off + 5 <= p->len[dir];) {
        static uint8_t rec[5 + 16384 + 256 + 64]; /* room to grow */
        size_t at = off, n = (size_t)b[off + 3] << 8 | b[off + 4];
        assert_true(off + 5 + n <= p->len[dir] && n + 64 <= sizeof(rec) - 5);
        off += 5 + n;
        if (b[at] != 23) {
            continue;
        }
        memcpy(rec, b + at, 5 + n);
        uint8_t nonce[12];
        memcpy(nonce, iv, sizeof(nonce));
        for (int i = 0; i < 8; i++) {
            nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
        }
        assert_true(n > 17);
        if (!gcm(0, key, nonce, rec, rec + 5, n)) {
            assert_int_equal(seq, 0); /* under another key, before the first record under this one */
            continue;
        }
        seq++;
        size_t inner = n - 16;
        while (inner > 0 && rec[5 + inner - 1] == 0) {
            inner--;
        }
        if (inner == 0 || rec[5 + inner - 1] != 22) {
            continue; /* 0-RTT application data */
        }
        size_t hs = inner - 1, m = 0;
        while (m + 4 <= hs && rec[5 + m] != msg_type) {
            m += 4 + ((size_t)rec[5 + m + 1] << 16 | (size_t)rec[5 + m + 2] << 8 | rec[5 + m + 3]);
        }
        if (m + 4 > hs) {
            continue;
        }
        size_t nhs = edit(rec + 5, hs, m);
        rec[5 + nhs] = 22;
        size_t nn = nhs + 1 + 16;
        rec[3] = (uint8_t)(nn >> 8);
        rec[4] = (uint8_t)nn;
        assert_true(gcm(1, key, nonce, rec, rec + 5, nn));
        ets_pair_t q = *p;
        size_t len = p->len[dir] - n + nn;
        q.bytes[dir] = malloc(len);
        q.chunks = malloc(p->nchunks * sizeof(*q.chunks));
        assert_non_null(q.bytes[dir]);
        assert_non_null(q.chunks);
        memcpy(q.bytes[dir], b, at);
        memcpy(q.bytes[dir] + at, rec, 5 + nn);
        memcpy(q.bytes[dir] + at + 5 + nn, b + off, p->len[dir] - off);
        q.len[dir] = len;
        int inside = 0;
        for (size_t i = 0; i < p->nchunks; i++) {
            ets_chunk_t ch = p->chunks[i];
            if (ch.dir == dir && ch.off > at) {
                ch.off = ch.off + nn - n;
            } else if (ch.dir == dir && ch.off + ch.len > at) {
                assert_true(ch.off + ch.len >= off); /* the whole record in one write */
                ch.len = ch.len + nn - n;
                inside++;
            }
            q.chunks[i] = ch;
        }
        assert_int_equal(inside, 1);
        return q;
    }
    fail_msg("no handshake message of type %u in dir %d", msg_type, dir);
    return *p;
}

static void reseal_free(ets_pair_t *q, int dir)
{
    free(q->bytes[dir]);
    free(q->chunks);
}

/* An EndOfEarlyData (4 bytes) inserted before the message at m. */
static size_t insert_eoed(uint8_t *hs, size_t n, size_t m)
{
    memmove(hs + m + 4, hs + m, n - m);
    memcpy(hs + m, "\x05\x00\x00\x00", 4);
    return n + 4;
}

/* The EndOfEarlyData at m given a one-byte body: a 5-byte message. */
static size_t eoed_with_body(uint8_t *hs, size_t n, size_t m)
{
    assert_int_equal(hs[m + 3], 0);
    memmove(hs + m + 5, hs + m + 4, n - m - 4);
    hs[m + 3] = 1;
    hs[m + 4] = 0;
    return n + 1;
}

static void expect_failure_tickets(const ets_pair_t *p, msp_ets_keys_t *k, msp_ets_tickets_t *t, int order,
                                   msp_ets_reason_t reason, const char *text)
{
    seen_t s = {0};
    msp_ets_conn_t *c = conn_new(k, t, &CB, &s);
    feed(c, p, order);
    assert_int_equal(s.undecryptable, 1);
    if (s.reason != reason) {
        fail_msg("order %d: want reason %s, got %s: %s", order, msp_ets_reason_name(reason),
                 msp_ets_reason_name(s.reason), s.text);
    }
    assert_string_equal(s.text, text);
    assert_int_equal(s.handshakes, 0);
    msp_ets_conn_free(c);
    seen_free(&s);
}

/*
 * client_flight: EndOfEarlyData only after accepted 0-RTT, and only empty (RFC 8446 4.5). An EndOfEarlyData
 * sealed into the client's Finished record of a connection without 0-RTT, and the real one of an accepted
 * 0-RTT connection (under the early key) given a one-byte body: both are malformed, said as such in every order
 * (accepting them would instead end at the client Finished, whose transcript then differs). The unchanged 0-RTT
 * connection decrypts (the control).
 */
static void test_end_of_early_data(void **state)
{
    (void)state;
    msp_ets_keys_t *k = keys_with(W.x25519, NULL);
    ets_pair_t p;
    pair_start(&p, (ets_pair_opts_t){.ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519"});
    exchange(&p, 2);
    ets_pair_t q = reseal(&p, ETS_C2S, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", 20, insert_eoed);
    for (int order = 0; order < NORDERS; order++) {
        expect_failure_tickets(&q, k, NULL, order, MSP_ETS_R_MALFORMED,
                               "malformed handshake: unexpected EndOfEarlyData");
    }
    reseal_free(&q, ETS_C2S);
    ets_pair_free(&p);

    msp_ets_tickets_t *t = tickets_new(8);
    ets_pair_t p1, p2;
    SSL_SESSION *sess = first_connection(&p1, "TLS_AES_128_GCM_SHA256", k, t);
    pair_start(&p2,
               (ets_pair_opts_t){
                   .ciphersuites = "TLS_AES_128_GCM_SHA256", .groups = "X25519", .session = sess, .early_data = EARLY});
    assert_int_equal(SSL_get_early_data_status(p2.client), SSL_EARLY_DATA_ACCEPTED);
    exchange(&p2, 2);
    seen_t s;
    check_all_orders(&p2, k, t, &s);
    assert_int_equal(s.hs.early_accepted, 1);
    seen_free(&s);
    q = reseal(&p2, ETS_C2S, "CLIENT_EARLY_TRAFFIC_SECRET", 5, eoed_with_body);
    for (int order = 0; order < NORDERS; order++) {
        expect_failure_tickets(&q, k, t, order, MSP_ETS_R_MALFORMED, "malformed handshake: unexpected EndOfEarlyData");
    }
    reseal_free(&q, ETS_C2S);
    SSL_SESSION_free(sess);
    ets_pair_free(&p1);
    ets_pair_free(&p2);
    msp_ets_tickets_free(t);
    msp_ets_keys_free(k);
}

/*
 * A connection set by hand to the point where dir's Finished comes next: suite 0x1301, every secret zero,
 * SNI and ALPN as the handshake event is checked for, and an empty transcript (th) or none at all.
 */
static msp_ets_conn_t *at_finished(msp_ets_keys_t *k, seen_t *s, int dir, int th)
{
    msp_ets_conn_t *c = conn_new(k, NULL, &CB, s);
    assert_non_null(c);
    c->suite = dec_suite_find(c->cr, 0x1301, &c->suite_store);
    assert_non_null(c->suite);
    assert_int_equal(dec_kdf_start(c), MSP_OK);
    c->phase = dir == ETS_S2C ? PH_SFLIGHT : PH_CFLIGHT;
    c->ee = 1;
    c->early = EARLY_NONE;
    snprintf(c->sni, sizeof(c->sni), "ets.example");
    snprintf(c->alpn, sizeof(c->alpn), "h2");
    if (th) {
        c->th = EVP_MD_CTX_new();
        assert_non_null(c->th);
        assert_int_equal(EVP_DigestInit_ex(c->th, EVP_sha256(), NULL), 1);
    }
    return c;
}

/*
 * finished_ok, server_finished, client_flight through dec_handshake: the Finished of a secret of zeros over an
 * empty transcript, verify_data = HMAC(HKDF-Expand-Label(0^32, "finished", "", 32), SHA-256("")) computed here
 * with OpenSSL's HKDF and HMAC. Right: MSP_OK and the next phase; one bit off: MSP_ERR_INVALID and reason
 * finished, for either side. A MAC that cannot be computed (no transcript hash, as when OpenSSL fails) is
 * reason internal, MSP_ERR_INVALID: not a Finished that "does not verify".
 */
static void test_finished_by_hand(void **state)
{
    (void)state;
    static const uint8_t zero[32];
    uint8_t fkey[32], empty[32], fin[4 + 32] = {20, 0, 0, 32};
    unsigned hl = 0;
    expand_label(zero, "finished", fkey, sizeof(fkey));
    assert_int_equal(EVP_Digest("", 0, empty, &hl, EVP_sha256(), NULL), 1);
    assert_non_null(HMAC(EVP_sha256(), fkey, sizeof(fkey), empty, sizeof(empty), fin + 4, &hl));
    assert_int_equal(hl, 32);
    msp_ets_keys_t *k = keys_with(NULL, NULL);
    for (int dir = 0; dir < 2; dir++) {
        seen_t s = {0};
        msp_ets_conn_t *c = at_finished(k, &s, dir, 1);
        assert_int_equal(dec_handshake(c, dir, fin, sizeof(fin)), MSP_OK);
        assert_int_equal(s.undecryptable, 0);
        assert_int_equal(c->phase, dir == ETS_S2C ? PH_CFLIGHT : PH_DONE);
        assert_int_equal(s.handshakes, dir == ETS_C2S);
        msp_ets_conn_free(c);
        seen_free(&s);

        fin[4 + 31] ^= 0x01;
        c = at_finished(k, &s, dir, 1);
        assert_int_equal(dec_handshake(c, dir, fin, sizeof(fin)), MSP_ERR_INVALID);
        assert_int_equal(s.undecryptable, 1);
        assert_int_equal(s.reason, MSP_ETS_R_FINISHED);
        assert_string_equal(s.text, dir == ETS_S2C ? "server Finished does not verify (wrong key or transcript)"
                                                   : "client Finished does not verify");
        assert_int_equal(msp_ets_conn_failed(c), 1);
        msp_ets_conn_free(c);
        seen_free(&s);
        fin[4 + 31] ^= 0x01;
    }
    seen_t s = {0};
    msp_ets_conn_t *c = at_finished(k, &s, ETS_S2C, 0);
    assert_int_equal(dec_handshake(c, ETS_S2C, fin, sizeof(fin)), MSP_ERR_INVALID);
    assert_int_equal(s.undecryptable, 1);
    assert_int_equal(s.reason, MSP_ETS_R_INTERNAL);
    assert_string_equal(s.text, "key schedule failed (OpenSSL)");
    assert_int_equal(c->phase, PH_SFLIGHT);
    msp_ets_conn_free(c);
    seen_free(&s);
    msp_ets_keys_free(k);
}

/* ---- fixtures ---- */

static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"ets.example", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, NULL) > 0);
    return x;
}

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    (void)s;
    (void)arg;
    static const uint8_t h2[] = {2, 'h', '2'};
    return SSL_select_next_proto((unsigned char **)out, outlen, h2, sizeof(h2), in, inlen) == OPENSSL_NPN_NEGOTIATED
               ? SSL_TLSEXT_ERR_OK
               : SSL_TLSEXT_ERR_NOACK;
}

static int setup(void **state)
{
    (void)state;
    W.x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    W.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    W.other = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    W.cert_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    W.cert = self_signed(W.cert_key);
    msp_error_t err;
    EVP_PKEY *keys[2] = {W.x25519, W.p256};
    if (msp_ets_libctx_new(keys, 2, &W.lib, &err) != MSP_OK) {
        fprintf(stderr, "libctx: %s\n", err.detail);
        return -1;
    }
    if (msp_ets_server_ctx_new(W.lib, &W.sctx, &err) != MSP_OK || SSL_CTX_use_certificate(W.sctx, W.cert) != 1 ||
        SSL_CTX_use_PrivateKey(W.sctx, W.cert_key) != 1) {
        return -1;
    }
    SSL_CTX_set_ciphersuites(W.sctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                                     "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256");
    SSL_CTX_set_max_early_data(W.sctx, 16384);
    SSL_CTX_set_options(W.sctx, SSL_OP_NO_ANTI_REPLAY);
    SSL_CTX_set_alpn_select_cb(W.sctx, alpn_select, NULL);
    W.cctx = ets_pair_client_ctx();
    return W.cctx != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(W.sctx);
    SSL_CTX_free(W.cctx);
    msp_ets_libctx_free(W.lib);
    X509_free(W.cert);
    EVP_PKEY_free(W.x25519);
    EVP_PKEY_free(W.p256);
    EVP_PKEY_free(W.other);
    EVP_PKEY_free(W.cert_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_constants),
        cmocka_unit_test(test_tickets_lru),
        cmocka_unit_test(test_tickets_storage),
        cmocka_unit_test(test_constructors),
        cmocka_unit_test(test_keys_add),
        cmocka_unit_test(test_x25519_1301),
        cmocka_unit_test(test_x25519_1302),
        cmocka_unit_test(test_p256_1303),
        cmocka_unit_test(test_p256_1302),
        cmocka_unit_test(test_ccm),
        cmocka_unit_test(test_hrr),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_early_data),
        cmocka_unit_test(test_key_update_many_records),
        cmocka_unit_test(test_undecryptable),
        cmocka_unit_test(test_p256_share_off_curve),
        cmocka_unit_test(test_not_tls13),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_pending_limit),
        cmocka_unit_test(test_finished),
        cmocka_unit_test(test_psk_ke),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_end_of_early_data),
        cmocka_unit_test(test_finished_by_hand),
        cmocka_unit_test(test_fuzz_corpus),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
