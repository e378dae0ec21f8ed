/*
 * The record layer's framing decisions on a hop (tlmsp-records.md 2, 3,
 * 10), each pinned at its boundary by one record put on the wire, in a whole
 * session: which entity refuses it, with which alert, and that nothing is
 * released.
 *
 * - A handshake message announcing exactly MAX_HS_MSG bytes is within the
 *   limit, so a record holding only its header is a message cut short
 *   (decode_error, 50); one byte more is record_overflow (22).
 * - ChangeCipherSpec must be the single byte 1: a 0, a 2, or the 1 followed
 *   by another byte is unexpected_message (10).
 * - After ChangeCipherSpec a context-0 record is sealed: a handshake record
 *   of exactly nonce + tag (28 bytes, an empty plaintext) gets to the tag
 *   check (bad_record_mac, 20); a shorter one, and a ChangeCipherSpec of
 *   any length, is unexpected_message (10).
 *
 * Path and contexts as in test_tlmsp_tamper: client -- m1 -- m2 -- server.
 * Each case runs on the client's hop toward m1 (m1 refuses), on the
 * server's hop (the server refuses) and, but for the message sizes (see
 * announce()), on the client's hop from m1 (the client refuses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"
#include "msp/error.h"
#include "net.h"

/* ---- one record put on one hop ---- */

enum where { BEFORE, AFTER, INSTEAD };
static const char *const where_name[] = {"before", "after", "instead of"};
static const char *const entity[4] = {"client", "m1", "m2", "server"};

typedef struct inject {
    size_t link; /* link i joins node i and i + 1 (0 = client, 3 = server) */
    int to_server;
    int where; /* relative to the first record of content type `anchor` on that link and direction */
    uint8_t anchor;
    uint8_t type; /* the record put there: content type and payload (after the Sid) */
    uint8_t payload[64];
    size_t len;
    size_t seen; /* records that passed on the link and direction so far */
    int done;
} inject_t;

/* The record gets the Sid of its anchor, which has one unless it is the first record of its hop (records 2.2). */
static void inject_hook(void *user, size_t link, int to_server, msp_buf_t *b)
{
    inject_t *in = user;
    if (in->done || link != in->link || to_server != in->to_server) {
        return;
    }
    size_t off = 0;
    for (; off + 5 <= b->len && b->base[off] != in->anchor; off += net_record_len(b->base + off)) {
        in->seen++;
    }
    if (off + 5 > b->len) {
        return;
    }
    uint8_t rec[5 + 4 + sizeof(in->payload)];
    size_t sid = in->seen > 0 ? 4 : 0, n = 5 + sid + in->len, anchor_len = net_record_len(b->base + off);
    rec[0] = in->type;
    rec[1] = 0x03;
    rec[2] = 0x03;
    rec[3] = (uint8_t)((sid + in->len) >> 8);
    rec[4] = (uint8_t)(sid + in->len);
    memcpy(rec + 5, b->base + off + 5, sid);
    memcpy(rec + 5 + sid, in->payload, in->len);
    size_t at = in->where == AFTER ? off + anchor_len : off, cut = in->where == INSTEAD ? anchor_len : 0;
    assert_int_equal(msp_buf_reserve(b, n), MSP_OK);
    memmove(b->base + at + n, b->base + at + cut, b->len - at - cut);
    memcpy(b->base + at, rec, n);
    b->len = b->len - cut + n;
    in->done = 1;
}

/* The session with the record put on its hop; the entity that receives it must send `alert`, the alert must reach
 * both endpoints, no other entity may raise one of its own, and nothing may be released. */
static void expect_refused(inject_t *in, int alert)
{
    net_setup_t setup;
    net_t net;
    net_two_mbox_setup(&setup);
    assert_int_equal(net_open(&net, &setup), 0);
    net.tamper = inject_hook;
    net.tamper_user = in;
    net_pump(&net);
    assert_true(in->done);
    if (msp_tlmsp_conn_ready(net.client)) {
        msp_tlmsp_conn_send(net.client, 1, (const uint8_t *)"alpha", 5, &net.c2s[0]);
        net_pump(&net);
    }
    int err[4] = {net.client_err, net.mbox_err[0], net.mbox_err[1], net.server_err};
    size_t who = in->to_server ? in->link + 1 : in->link;
    print_message("record type %u, %zu bytes, %s the first of type %u on %s-%s %s: %s says %s (%d); client %#x "
                  "m1 %#x m2 %#x server %#x\n",
                  in->type, in->len, where_name[in->where], in->anchor, entity[in->link], entity[in->link + 1],
                  in->to_server ? "c2s" : "s2c", entity[who], msp_error_name(err[who]), err[who], (unsigned)err[0],
                  (unsigned)err[1], (unsigned)err[2], (unsigned)err[3]);
    net_expect_refused(&net, who, alert);
    net_close(&net);
}

/* The hops a case runs on: the client's toward m1, the server's from m2, the client's from m1. */
static const struct {
    size_t link;
    int to_server;
} hops[] = {{0, 1}, {2, 1}, {0, 0}};

static inject_t on_hop(size_t i, int where, uint8_t anchor, uint8_t type, const uint8_t *p, size_t len)
{
    inject_t in;
    memset(&in, 0, sizeof(in));
    in.link = hops[i].link;
    in.to_server = hops[i].to_server;
    in.where = where;
    in.anchor = anchor;
    in.type = type;
    assert_true(len <= sizeof(in.payload));
    memcpy(in.payload, p, len);
    in.len = len;
    return in;
}

/* ---- handshake messages against MAX_HS_MSG ---- */

/*
 * A record holding only the header of a handshake message of `total` bytes, before the first record toward m1 and
 * toward the server. (Not toward the client: it fails before it has the Sid from the ServerHello, so its alert has
 * none, and m1, which forwarded the ServerHello, refuses that alert itself: decode_error, records 2.2.)
 */
static void announce(size_t total, int alert)
{
    size_t body = total - 4;
    const uint8_t header[4] = {MSP_TLMSP_HT_CERTIFICATE, (uint8_t)(body >> 16), (uint8_t)(body >> 8), (uint8_t)body};
    for (size_t i = 0; i < 2; i++) {
        inject_t in = on_hop(i, BEFORE, MSP_TLMSP_CT_HANDSHAKE, MSP_TLMSP_CT_HANDSHAKE, header, sizeof(header));
        expect_refused(&in, alert);
    }
}

static void test_handshake_message_at_limit(void **state)
{
    (void)state;
    announce(MAX_HS_MSG, MSP_ALERT_DECODE_ERROR); /* allowed, but not in its record (hop_init) */
}

static void test_handshake_message_over_limit(void **state)
{
    (void)state;
    announce(MAX_HS_MSG + 1, MSP_ALERT_RECORD_OVERFLOW);
}

/* ---- ChangeCipherSpec content (records 10.1) ---- */

static void ccs_content(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < sizeof(hops) / sizeof(hops[0]); i++) {
        inject_t in = on_hop(i, INSTEAD, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, p, len);
        expect_refused(&in, MSP_ALERT_UNEXPECTED_MESSAGE);
    }
}

static void test_ccs_content(void **state)
{
    (void)state;
    static const uint8_t zero[] = {0}, two[] = {2}, one_more[] = {1, 1};
    ccs_content(zero, sizeof(zero));
    ccs_content(two, sizeof(two));
    ccs_content(one_more, sizeof(one_more));
}

/* ---- context-0 records after ChangeCipherSpec (records 3) ---- */

/* Right after the ChangeCipherSpec: `len` bytes of record `type`, whose first byte names the peer endpoint as the
 * author (records 5.3), so that its sequence number is found; the rest is no valid tag. */
static void after_ccs(uint8_t type, size_t len, int alert)
{
    uint8_t p[64];
    memset(p, 0x5a, sizeof(p));
    for (size_t i = 0; i < sizeof(hops) / sizeof(hops[0]); i++) {
        p[0] = hops[i].to_server ? MSP_TLMSP_ID_CLIENT : MSP_TLMSP_ID_SERVER;
        inject_t in = on_hop(i, AFTER, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, type, p, len);
        expect_refused(&in, alert);
    }
}

static void test_sealed_handshake_empty(void **state)
{
    (void)state;
    /* nonce and tag alone are an empty plaintext: the tag decides */
    after_ccs(MSP_TLMSP_CT_HANDSHAKE, MSP_TLMSP_FRAGMENT_OVERHEAD, MSP_ALERT_BAD_RECORD_MAC);
    after_ccs(MSP_TLMSP_CT_HANDSHAKE, MSP_TLMSP_FRAGMENT_OVERHEAD + 1, MSP_ALERT_BAD_RECORD_MAC);
}

static void test_sealed_handshake_short(void **state)
{
    (void)state;
    after_ccs(MSP_TLMSP_CT_HANDSHAKE, MSP_TLMSP_FRAGMENT_OVERHEAD - 1, MSP_ALERT_UNEXPECTED_MESSAGE);
    after_ccs(MSP_TLMSP_CT_HANDSHAKE, 1, MSP_ALERT_UNEXPECTED_MESSAGE);
}

static void test_ccs_after_ccs(void **state)
{
    (void)state;
    /* however long, and even shaped like a sealed record: there is no second ChangeCipherSpec */
    after_ccs(MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, MSP_TLMSP_FRAGMENT_OVERHEAD, MSP_ALERT_UNEXPECTED_MESSAGE);
    after_ccs(MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, MSP_TLMSP_FRAGMENT_OVERHEAD + 1, MSP_ALERT_UNEXPECTED_MESSAGE);
    after_ccs(MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, 1, MSP_ALERT_UNEXPECTED_MESSAGE);
}

/* ---- content types (records 2) ---- */

/* A record of a content type TLMSP does not have (24, and the largest, 255), unkeyed (before the first handshake
 * record toward m1 and toward the server, as in announce()) and keyed (after the ChangeCipherSpec, on every hop). */
static void test_unknown_content_type(void **state)
{
    (void)state;
    static const uint8_t p[] = {1, 0, 0, 0};
    static const uint8_t types[] = {24, 255};
    for (size_t t = 0; t < sizeof(types); t++) {
        for (size_t i = 0; i < 2; i++) {
            inject_t in = on_hop(i, BEFORE, MSP_TLMSP_CT_HANDSHAKE, types[t], p, sizeof(p));
            expect_refused(&in, MSP_ALERT_UNEXPECTED_MESSAGE);
        }
        for (size_t i = 0; i < sizeof(hops) / sizeof(hops[0]); i++) {
            inject_t in = on_hop(i, AFTER, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, types[t], p, sizeof(p));
            expect_refused(&in, MSP_ALERT_UNEXPECTED_MESSAGE);
        }
    }
}

/* Application data before the ChangeCipherSpec that keys the hop: there are no keys to check it with. */
static void test_application_data_before_ccs(void **state)
{
    (void)state;
    uint8_t p[64];
    memset(p, 0x5a, sizeof(p));
    for (size_t i = 0; i < sizeof(hops) / sizeof(hops[0]); i++) {
        inject_t in = on_hop(i, BEFORE, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, MSP_TLMSP_CT_APPLICATION_DATA, p, sizeof(p));
        expect_refused(&in, MSP_ALERT_UNEXPECTED_MESSAGE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_message_at_limit),
        cmocka_unit_test(test_handshake_message_over_limit),
        cmocka_unit_test(test_ccs_content),
        cmocka_unit_test(test_sealed_handshake_empty),
        cmocka_unit_test(test_sealed_handshake_short),
        cmocka_unit_test(test_ccs_after_ccs),
        cmocka_unit_test(test_unknown_content_type),
        cmocka_unit_test(test_application_data_before_ccs),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
