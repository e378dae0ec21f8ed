/*
 * The library's renderings of ETS results, byte for byte: the passive
 * pipeline's JSON event lines (what `msp ets decrypt --events` writes), the
 * probe's verdict as text and JSON (what `msp ets probe` prints), group
 * names, access descriptions, static key descriptions, the visibility lines
 * of a certificate. A change of any
 * expected string here is a change of an output format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "msp/ets.h"
#include "msp/ets_passive.h"
#include "msp/ets_probe.h"

static const uint8_t FP[MSP_ETS_FINGERPRINT_LEN] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0xff};

static void assert_rendered(msp_buf_t *b, const char *want)
{
    assert_int_equal(msp_buf_error(b), MSP_OK);
    assert_string_equal(msp_buf_cstr(b), want);
    b->len = 0;
}

/* ---- passive event lines ---- */

static void test_event_lines(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_HANDSHAKE,
                          .suite = 0x1302,
                          .group = 0x001d,
                          .sni = "a\"b",
                          .alpn = "h2",
                          .hrr = 1,
                          .early_offered = 1,
                          .text = "",
                          .ts_us = 1796686694085123ull};
    memcpy(ev.fingerprint, FP, sizeof FP);
    assert_int_equal(msp_ets_passive_event_json(7, &ev, NULL, &b), MSP_OK);
    assert_rendered(&b, "{\"event\":\"handshake\",\"flow\":7,\"time\":\"2026-12-07T23:38:14.085123Z\","
                        "\"ts\":1796686694.085123,\"suite\":\"TLS_AES_256_GCM_SHA384\",\"group\":\"x25519\","
                        "\"sni\":\"a\\\"b\",\"alpn\":\"h2\",\"resumed\":false,\"hrr\":true,\"early_data\":\"rejected\","
                        "\"fingerprint\":\"0123456789abcdef00ff\"}\n");

    ev.suite = 0x1399;
    ev.group = 0;
    ev.resumed = 1;
    ev.hrr = 0;
    ev.early_accepted = 1;
    ev.ts_us = 951782400000001ull; /* a leap day */
    msp_ets_passive_event_json(1, &ev, NULL, &b);
    assert_rendered(&b, "{\"event\":\"handshake\",\"flow\":1,\"time\":\"2000-02-29T00:00:00.000001Z\","
                        "\"ts\":951782400.000001,\"suite\":\"unknown\",\"group\":\"none (psk_ke)\","
                        "\"sni\":\"a\\\"b\",\"alpn\":\"h2\",\"resumed\":true,\"hrr\":false,\"early_data\":\"accepted\","
                        "\"fingerprint\":\"0123456789abcdef00ff\"}\n");

    ev = (msp_ets_event_t){.kind = MSP_ETS_EV_KEY_UPDATE, .dir = 1, .generation = 3, .text = ""};
    msp_ets_passive_event_json(2, &ev, NULL, &b);
    assert_rendered(&b, "{\"event\":\"key_update\",\"flow\":2,\"time\":\"1970-01-01T00:00:00.000000Z\",\"ts\":0.000000,"
                        "\"dir\":\"server\",\"generation\":3}\n");

    ev = (msp_ets_event_t){.kind = MSP_ETS_EV_TICKET, .lifetime = 7200, .max_early_data = 16384, .ticket_len = 192};
    msp_ets_passive_event_json(2, &ev, NULL, &b);
    assert_rendered(&b, "{\"event\":\"ticket\",\"flow\":2,\"time\":\"1970-01-01T00:00:00.000000Z\",\"ts\":0.000000,"
                        "\"lifetime\":7200,\"max_early_data\":16384,\"ticket_len\":192}\n");

    ev = (msp_ets_event_t){.kind = MSP_ETS_EV_ALERT, .dir = 0, .alert_level = 1, .alert_desc = 0};
    msp_ets_passive_event_json(2, &ev, NULL, &b);
    assert_rendered(&b, "{\"event\":\"alert\",\"flow\":2,\"time\":\"1970-01-01T00:00:00.000000Z\",\"ts\":0.000000,"
                        "\"dir\":\"client\",\"level\":1,\"description\":0}\n");

    ev = (msp_ets_event_t){.kind = MSP_ETS_EV_UNDECRYPTABLE, .reason = MSP_ETS_R_NO_STATIC_KEY, .text = "no key\n"};
    msp_ets_passive_event_json(3, &ev, NULL, &b);
    assert_rendered(&b, "{\"event\":\"undecryptable\",\"flow\":3,\"time\":\"1970-01-01T00:00:00.000000Z\",\"ts\":0."
                        "000000,\"reason\":\"no_static_key\",\"detail\":\"no key\\n\"}\n");

    ev.kind = (msp_ets_event_kind_t)99; /* no line for it */
    assert_int_equal(msp_ets_passive_event_json(3, &ev, NULL, &b), MSP_OK);
    assert_int_equal(b.len, 0);
    msp_buf_free(&b);
}

static void test_handshake_visibility(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    msp_ets_visibility_t *vis = calloc(1, sizeof *vis);
    assert_non_null(vis);
    vis->n_vi = 2;
    memcpy(vis->vi[0].fingerprint, FP, sizeof FP);
    strcpy(vis->vi[0].access, "SOC \"A\"");
    vis->vi[0].access_len = strlen(vis->vi[0].access);
    strcpy(vis->vi[1].access, "B");
    vis->vi[1].access_len = 1;
    vis->match[0] = 1;
    vis->matches = 1;
    msp_ets_passive_vis_t pv = {vis, MSP_OK, ""};
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_HANDSHAKE, .suite = 0x1301, .group = 0x0017, .sni = "", .alpn = ""};
    msp_ets_passive_event_json(1, &ev, &pv, &b);
    assert_rendered(&b, "{\"event\":\"handshake\",\"flow\":1,\"time\":\"1970-01-01T00:00:00.000000Z\",\"ts\":0.000000,"
                        "\"suite\":\"TLS_AES_128_GCM_SHA256\","
                        "\"group\":\"secp256r1\","
                        "\"sni\":\"\",\"alpn\":\"\",\"resumed\":false,\"hrr\":false,\"early_data\":\"none\","
                        "\"fingerprint\":\"00000000000000000000\",\"visibility\":[{\"fingerprint\":"
                        "\"0123456789abcdef00ff\",\"access\":\"SOC \\\"A\\\"\",\"matches\":true},{\"fingerprint\":"
                        "\"00000000000000000000\",\"access\":\"B\",\"matches\":false}],\"visibility_matches\":true}\n");

    memset(vis, 0, sizeof *vis);
    pv = (msp_ets_passive_vis_t){vis, MSP_ERR_SYNTAX, "bad entry"};
    ev.group = 0x0018;
    msp_ets_passive_event_json(1, &ev, &pv, &b);
    assert_rendered(&b, "{\"event\":\"handshake\",\"flow\":1,\"time\":\"1970-01-01T00:00:00.000000Z\",\"ts\":0.000000,"
                        "\"suite\":\"TLS_AES_128_GCM_SHA256\","
                        "\"group\":\"other\","
                        "\"sni\":\"\",\"alpn\":\"\",\"resumed\":false,\"hrr\":false,\"early_data\":\"none\","
                        "\"fingerprint\":\"00000000000000000000\",\"visibility\":[],\"visibility_matches\":false,"
                        "\"visibility_error\":\"bad entry\"}\n");
    free(vis);
    msp_buf_free(&b);
}

static void test_flow_line(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    msp_tcp_flow_info_t info = {.id = 12, .ip_version = 4, .port = {40000, 443}, .first_ts_us = 1700000000000042ull};
    memcpy(info.addr[0], (uint8_t[]){10, 0, 0, 1}, 4);
    memcpy(info.addr[1], (uint8_t[]){192, 168, 1, 254}, 4);
    assert_int_equal(msp_ets_passive_flow_json(&info, &b), MSP_OK);
    assert_rendered(&b,
                    "{\"event\":\"flow\",\"flow\":12,\"time\":\"2023-11-14T22:13:20.000042Z\",\"ts\":1700000000.000042,"
                    "\"client\":\"10.0.0.1:40000\",\"server\":\"192.168.1.254:443\",\"initiator_guessed\":false}\n");

    info.ip_version = 6;
    memset(info.addr, 0, sizeof info.addr);
    info.addr[0][15] = 1;
    info.addr[1][0] = 0x20;
    info.addr[1][1] = 0x01;
    info.initiator_guessed = 1;
    info.first_ts_us = 5;
    msp_ets_passive_flow_json(&info, &b);
    assert_rendered(&b, "{\"event\":\"flow\",\"flow\":12,\"time\":\"1970-01-01T00:00:00.000005Z\",\"ts\":0.000005,"
                        "\"client\":\"[::1]:40000\",\"server\":\"[2001::]:443\",\"initiator_guessed\":true}\n");

    /* a timestamp past what RFC 3339 can write is clamped to its last instant, never wrapped */
    info.first_ts_us = UINT64_MAX;
    msp_ets_passive_flow_json(&info, &b);
    assert_rendered(&b, "{\"event\":\"flow\",\"flow\":12,\"time\":\"9999-12-31T23:59:59.999999Z\","
                        "\"ts\":253402300799.999999,\"client\":\"[::1]:40000\",\"server\":\"[2001::]:443\","
                        "\"initiator_guessed\":true}\n");

    char a[MSP_ETS_PASSIVE_ADDR_TEXT];
    msp_ets_passive_addr_text(&info, 1, a);
    assert_string_equal(a, "[2001::]:443");
    msp_buf_free(&b);
}

/* ---- flow_end and summary, from a pipeline fed one TCP connection without TLS ---- */

typedef struct seen {
    msp_buf_t lines;
} seen_t;

static void on_end(void *arg, msp_ets_passive_flow_t *flow, msp_tcp_close_reason_t reason)
{
    seen_t *s = arg;
    assert_int_equal(msp_ets_passive_flow_end_json(flow, reason, &s->lines), MSP_OK);
}

static void packet(msp_ets_passive_t *p, int dir, uint8_t flags, uint32_t seq[2], uint64_t ts)
{
    static const uint8_t client[4] = {10, 0, 0, 1}, server[4] = {10, 0, 0, 2};
    msp_tcp_pkt_t pkt = {.ip_version = 4, .flags = flags, .window = 65535};
    memcpy(pkt.src, dir == 0 ? client : server, 4);
    memcpy(pkt.dst, dir == 0 ? server : client, 4);
    pkt.sport = dir == 0 ? 50000 : 443;
    pkt.dport = dir == 0 ? 443 : 50000;
    pkt.seq = seq[dir];
    pkt.ack = seq[!dir];
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    assert_int_equal(msp_tcp_build(MSP_TCP_LINK_EN10MB, &pkt, &b), MSP_OK);
    assert_int_equal(msp_ets_passive_packet(p, ts, MSP_TCP_LINK_EN10MB, b.base, b.len, b.len), MSP_OK);
    msp_buf_free(&b);
    seq[dir] += (flags & (MSP_TCP_SYN | MSP_TCP_FIN)) != 0;
}

static void test_flow_end_and_summary(void **state)
{
    (void)state;
    static const msp_ets_passive_cb_t cb = {.flow_end = on_end};
    seen_t s;
    msp_buf_init(&s.lines, 1u << 16);
    msp_ets_passive_cfg_t cfg;
    msp_ets_passive_cfg_default(&cfg);
    cfg.cb = &cb;
    cfg.arg = &s;
    msp_ets_passive_t *p = NULL;
    assert_int_equal(msp_ets_passive_new(&cfg, &p), MSP_OK);
    uint32_t seq[2] = {1000, 7000};
    packet(p, 0, MSP_TCP_SYN, seq, 1);
    packet(p, 1, MSP_TCP_SYN | MSP_TCP_ACK, seq, 2);
    packet(p, 0, MSP_TCP_ACK, seq, 3);
    packet(p, 1, MSP_TCP_FIN | MSP_TCP_ACK, seq, 4);
    packet(p, 0, MSP_TCP_FIN | MSP_TCP_ACK, seq, 5);
    msp_ets_passive_finish(p);
    assert_rendered(&s.lines,
                    "{\"event\":\"flow_end\",\"flow\":1,\"time\":\"1970-01-01T00:00:00.000005Z\",\"ts\":0.000005,"
                    "\"reason\":\"fin\",\"status\":\"empty\","
                    "\"plaintext\":[0,0],\"lost\":[0,0]}\n");

    assert_int_equal(msp_ets_passive_summary_json(p, NULL, &s.lines), MSP_OK);
    assert_rendered(&s.lines, "{\"event\":\"summary\",\"time\":\"1970-01-01T00:00:00.000005Z\",\"ts\":0.000005,"
                              "\"packets\":5,\"bytes\":270,\"flows\":1,\"decrypted\":0,"
                              "\"undecryptable\":0,\"empty\":1,\"plaintext\":0,\"non_tcp\":0,\"fragments\":0,"
                              "\"truncated\":0,\"gaps\":0,\"evicted\":0,\"midstream\":0,\"late\":0}\n");
    msp_ets_passive_summary_json(p, "cut \"short\"", &s.lines);
    assert_rendered(&s.lines, "{\"event\":\"summary\",\"time\":\"1970-01-01T00:00:00.000005Z\",\"ts\":0.000005,"
                              "\"packets\":5,\"bytes\":270,\"flows\":1,\"decrypted\":0,"
                              "\"undecryptable\":0,\"empty\":1,\"plaintext\":0,\"non_tcp\":0,\"fragments\":0,"
                              "\"truncated\":0,\"gaps\":0,\"evicted\":0,\"midstream\":0,\"late\":0,\"capture_error\":"
                              "\"cut \\\"short\\\"\"}\n");

    /* a full buffer is reported, not cut silently */
    uint8_t small[16];
    msp_buf_t tiny;
    msp_buf_init_fixed(&tiny, small, sizeof small);
    assert_int_not_equal(msp_ets_passive_summary_json(p, NULL, &tiny), MSP_OK);
    msp_ets_passive_free(p);
    msp_buf_free(&s.lines);
}

/* ---- the probe's verdict ---- */

static void probe_facts(msp_ets_probe_conn_t conn[2], msp_ets_probe_verdict_t *v)
{
    memset(conn, 0, 2 * sizeof *conn);
    memset(v, 0, sizeof *v);
    for (int i = 0; i < 2; i++) {
        conn[i].group = i == 0 ? 0x001d : 0x0017;
        conn[i].share_len = 3;
        conn[i].share[0] = 0xab;
        conn[i].share[2] = (uint8_t)i;
        conn[i].fingerprint[0] = (uint8_t)(0x10 + i);
        conn[i].have_share = 1;
        snprintf(conn[i].suite, sizeof conn[i].suite, "TLS_AES_128_GCM_SHA256");
        snprintf(conn[i].certificate, sizeof conn[i].certificate, "%s", i == 0 ? "verified" : "not verified (no --ca)");
    }
    conn[1].hrr = 1;
    v->vis.n_vi = 2;
    memcpy(v->vis.vi[0].fingerprint, FP, sizeof FP);
    strcpy(v->vis.vi[0].access, "SOC\t\"x\\y\"");
    v->vis.vi[0].access_len = strlen(v->vis.vi[0].access);
    strcpy(v->vis.vi[1].access, "caf\xc3\xa9");
    v->vis.vi[1].access_len = strlen(v->vis.vi[1].access);
    v->vis.match[1] = 1;
    v->vis.matches = 1;
    v->vis.misplaced = 1;
    v->repeated = 1;
    v->comparable = 1;
    v->visible = 1;
    v->text = "some verdict";
}

static void test_probe_text(void **state)
{
    (void)state;
    msp_ets_probe_conn_t conn[2];
    msp_ets_probe_verdict_t *v = malloc(sizeof *v);
    assert_non_null(v);
    probe_facts(conn, v);
    msp_ets_probe_facts_t f = {conn, 2, NULL, 0, {0, 0}};
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    assert_int_equal(msp_ets_probe_render_text("h:1", &f, v, &b), MSP_OK);
    assert_rendered(&b, "h:1: connection 1: TLS_AES_128_GCM_SHA256, group x25519, key share fingerprint "
                        "10000000000000000000, certificate verified\n"
                        "h:1: connection 2: TLS_AES_128_GCM_SHA256, group secp256r1 (after HelloRetryRequest), key "
                        "share fingerprint 11000000000000000000, certificate not verified (no --ca)\n"
                        "h:1: visibility 1: fingerprint 0123456789abcdef00ff (another key: not the key share sent), "
                        "access \"SOC\\x09\\\"x\\\\y\\\"\"\n"
                        "h:1: visibility 2: fingerprint 00000000000000000000 (matches the key share sent), access "
                        "\"caf\xc3\xa9\"\n"
                        "h:1: warning: an extension with the ETS OID outside subjectAltName\n"
                        "h:1: key share: repeated (static)\n"
                        "h:1: verdict: some verdict\n");

    v->vis.n_vi = 0;
    v->vis.misplaced = 0;
    v->repeated = 0;
    f.n_conn = 1;
    msp_ets_probe_render_text("h:1", &f, v, &b);
    assert_rendered(&b, "h:1: connection 1: TLS_AES_128_GCM_SHA256, group x25519, key share fingerprint "
                        "10000000000000000000, certificate verified\n"
                        "h:1: key share: fresh on every connection\nh:1: verdict: some verdict\n");
    v->comparable = 0;
    msp_ets_probe_render_text("h:1", &f, v, &b);
    assert_non_null(strstr(msp_buf_cstr(&b), "h:1: key share: not comparable\n"));
    free(v);
    msp_buf_free(&b);
}

static void test_probe_json(void **state)
{
    (void)state;
    msp_ets_probe_conn_t conn[2];
    msp_ets_probe_verdict_t *v = malloc(sizeof *v);
    assert_non_null(v);
    probe_facts(conn, v);
    conn[1].group = 0x0042;
    msp_ets_probe_facts_t f = {conn, 2, NULL, 0, {0, 0}};
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    assert_int_equal(msp_ets_probe_render_json("[::1]:443", &f, v, &b), MSP_OK);
    assert_rendered(&b, "{\"target\":\"[::1]:443\",\"connections\":[{\"suite\":\"TLS_AES_128_GCM_SHA256\",\"group\":"
                        "\"x25519\",\"hello_retry_request\":false,\"key_share\":\"ab0000\",\"fingerprint\":"
                        "\"10000000000000000000\",\"certificate\":\"verified\"},{\"suite\":\"TLS_AES_128_GCM_SHA256\","
                        "\"group\":\"other\",\"hello_retry_request\":true,\"key_share\":\"ab0001\",\"fingerprint\":"
                        "\"11000000000000000000\",\"certificate\":\"not verified (no --ca)\"}],\"visibility\":[{"
                        "\"fingerprint\":\"0123456789abcdef00ff\",\"access\":\"SOC\\t\\\"x\\\\y\\\"\","
                        "\"matches_key_share\":false},{\"fingerprint\":\"00000000000000000000\",\"access\":"
                        "\"caf\xc3\xa9\",\"matches_key_share\":true}],\"misplaced_extension\":true,"
                        "\"static_key_share\":true,\"comparable\":true,\"verdict\":\"some verdict\"}\n");
    free(v);
    msp_buf_free(&b);
}

static void test_group_names(void **state)
{
    (void)state;
    assert_string_equal(msp_ets_group_name(0x001d), "x25519");
    assert_string_equal(msp_ets_group_name(0x0017), "secp256r1");
    assert_string_equal(msp_ets_group_name(0x0018), "secp384r1");
    assert_string_equal(msp_ets_group_name(0x0019), "secp521r1");
    assert_string_equal(msp_ets_group_name(0x001e), "x448");
    assert_string_equal(msp_ets_group_name(0), "other");
    assert_string_equal(msp_ets_group_name(0x0100), "other");
}

static void test_access_text(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 64);
    assert_int_equal(msp_ets_access_text(&b, "a\0\x7f\n\"\\z", 7), MSP_OK);
    assert_rendered(&b, "\"a\\x00\\x7f\\x0a\\\"\\\\z\"");
    assert_int_equal(msp_ets_access_text(&b, "", 0), MSP_OK);
    assert_rendered(&b, "\"\"");
    char big[100];
    memset(big, 'x', sizeof big);
    assert_int_equal(msp_ets_access_text(&b, big, sizeof big), MSP_ERR_LIMIT);
    msp_buf_free(&b);
}

/* ---- static keys and certificates ---- */

/* RFC 7748 6.1: Alice's X25519 key; its public key (the key_share) is 8520f009...4e6a. */
static EVP_PKEY *alice(void)
{
    static const uint8_t priv[32] = {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
                                     0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
                                     0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a};
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, sizeof priv);
    assert_non_null(k);
    return k;
}

static void test_key_describe(void **state)
{
    (void)state;
    EVP_PKEY *k = alice();
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
    static const uint8_t want[MSP_ETS_FINGERPRINT_LEN] = {0x30, 0x0c, 0x9c, 0x96, 0x03, 0xb9, 0x2a, 0x4b, 0x39, 0xed};
    assert_int_equal(msp_ets_key_fingerprint(k, fp), MSP_OK);
    assert_memory_equal(fp, want, sizeof want);
    msp_buf_t b;
    msp_buf_init(&b, 1024);
    assert_int_equal(msp_ets_key_describe(k, &b), MSP_OK);
    assert_rendered(&b, "x25519 static key, fingerprint 300c9c9603b92a4b39ed, key_share "
                        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    EVP_PKEY_free(k);

    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(p256);
    assert_int_equal(msp_ets_key_describe(p256, &b), MSP_OK);
    assert_int_equal(strncmp(msp_buf_cstr(&b), "p256 static key, fingerprint ", 29), 0);
    assert_int_equal(b.len, 29 + 20 + strlen(", key_share ") + 130);
    b.len = 0;
    EVP_PKEY_free(p256);

    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    assert_int_equal(msp_ets_key_fingerprint(ed, fp), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_ets_key_describe(ed, &b), MSP_ERR_ARGUMENT);
    assert_int_equal(b.len, 0);
    EVP_PKEY_free(ed);
    msp_buf_free(&b);
}

static void test_cert_vi_lines(void **state)
{
    (void)state;
    X509 *x = X509_new();
    assert_non_null(x);
    msp_buf_t b;
    msp_buf_init(&b, 1024);
    assert_int_equal(msp_ets_cert_vi_lines(x, "c.pem", &b), MSP_OK);
    assert_int_equal(b.len, 0);
    uint8_t fp2[MSP_ETS_FINGERPRINT_LEN] = {0xff};
    assert_int_equal(msp_ets_cert_add(x, FP, "SOC", 3), MSP_OK);
    assert_int_equal(msp_ets_cert_add(x, fp2, "other", 5), MSP_OK);
    assert_int_equal(msp_ets_cert_vi_lines(x, "c.pem", &b), MSP_OK);
    assert_rendered(&b, "c.pem: visibility 1: fingerprint 0123456789abcdef00ff\n"
                        "c.pem: visibility 2: fingerprint ff000000000000000000\n");
    X509_free(x);
    msp_buf_free(&b);
}

static void test_cert_render(void **state)
{
    (void)state;
    msp_ets_vi_t *vi = calloc(2, sizeof *vi);
    assert_non_null(vi);
    memcpy(vi[0].fingerprint, FP, sizeof FP);
    strcpy(vi[0].access, "SOC \"1\"\n");
    vi[0].access_len = strlen(vi[0].access);
    strcpy(vi[1].access, "B");
    vi[1].access_len = 1;
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_ets_cert_render_text("c.pem", vi, 2, 1, &b), MSP_OK);
    assert_rendered(&b, "c.pem: visibility 1: fingerprint 0123456789abcdef00ff, access \"SOC \\\"1\\\"\\x0a\"\n"
                        "c.pem: visibility 2: fingerprint 00000000000000000000, access \"B\"\n"
                        "c.pem: warning: an extension with the ETS OID outside subjectAltName (not V1.3.1's place)\n");
    assert_int_equal(msp_ets_cert_render_text("c.pem", vi, 0, 0, &b), MSP_OK);
    assert_rendered(&b, "c.pem: no ETS visibility information\n");
    assert_int_equal(msp_ets_cert_render_json("c.pem", vi, 2, 0, &b), MSP_OK);
    assert_rendered(&b, "{\"certificate\":\"c.pem\",\"misplaced_extension\":false,\"visibility\":[{\"fingerprint\":"
                        "\"0123456789abcdef00ff\",\"access\":\"SOC \\\"1\\\"\\n\"},{\"fingerprint\":"
                        "\"00000000000000000000\",\"access\":\"B\"}]}\n");
    assert_int_equal(msp_ets_cert_render_json("c.pem", vi, 0, 1, &b), MSP_OK);
    assert_rendered(&b, "{\"certificate\":\"c.pem\",\"misplaced_extension\":true,\"visibility\":[]}\n");
    free(vi);
    msp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_lines),  cmocka_unit_test(test_handshake_visibility),
        cmocka_unit_test(test_flow_line),    cmocka_unit_test(test_flow_end_and_summary),
        cmocka_unit_test(test_probe_text),   cmocka_unit_test(test_probe_json),
        cmocka_unit_test(test_group_names),  cmocka_unit_test(test_access_text),
        cmocka_unit_test(test_key_describe), cmocka_unit_test(test_cert_vi_lines),
        cmocka_unit_test(test_cert_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
