/*
 * MiddleboxFinished (tlmsp-handshake.md 4.4 steps 7-8, 6.11) from
 * dishonest entities that hold the keys: every context-0 key is known to
 * the whole path, so any entity can put an authentic handshake record on
 * its hop after ChangeCipherSpec. A bit flip on the wire cannot test these
 * checks: the record tag stops it first (bad_record_mac). Here the sender
 * opens its own sealed records on the way out and seals again what it
 * chooses to send, with the sequence numbers the receiver expects, so the
 * record layer takes every message and only the MiddleboxFinished checks
 * stand between the forgery and a finished handshake.
 *
 * Path and contexts as in test_tlmsp_tamper: client -- m1 -- m2 -- server.
 * Toward the server the client sends Finished, then MiddleboxFinished for
 * m1 and m2; each middlebox replaces its own with one for the server, so
 * the server gets Finished, MF(m1), MF(m2); the server's flight goes the
 * same way back.
 *
 * At an endpoint (conn_endpoint.c on_mbox_finished):
 * - m2 sends, before its own, a MiddleboxFinished naming a middlebox that
 *   is not on the path -> illegal_parameter (47) from the server; m1 does
 *   the same toward the client -> 47 from the client.
 * - m2 replays m1's MiddleboxFinished (authentic, it verifies) before its
 *   own: a second one from the same middlebox -> 47 from the server; m1
 *   sends its own twice toward the client -> 47 from the client.
 * - m2 sends, instead of its own, one computed with its real master secret
 *   and transcript but for the other direction ("middlebox-client
 *   finished" toward the server) -> decrypt_error (51) from the server; m1
 *   the mirror image toward the client -> 51 from the client. Controls: the
 *   same recomputation with the right label is byte for byte what the
 *   middlebox sent, and the session completes and carries data.
 *
 * At a middlebox (conn_mbox.c on_mbox_finished), which counts the
 * MiddleboxFinished of each direction:
 * - the client sends one more than there are middleboxes -> m1 says
 *   unexpected_message (10); the server does -> m2 says 10;
 * - the client sends an empty one -> m1 says 10; one of a single byte (the
 *   id of m1, no verify_data) gets past the count and fails to parse: m1
 *   says decode_error (50).
 *
 * Each refusal: the entity named sends the alert, no other entity raises
 * one of its own, both endpoints hear it, nobody is ready and nothing is
 * released in either context.
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
#include "tlmsp_mbox_msg.h"
#include "tlmsp_tls12.h"
#include "net.h"

static const char *const entity[4] = {"client", "m1", "m2", "server"};

/* ---- a sender that rewrites its own handshake flight after ChangeCipherSpec ---- */

typedef struct forger forger_t;

/* What the sender sends for the k-th handshake message it wrote after its ChangeCipherSpec (msg, with header):
 * zero or more whole handshake messages appended to out. */
typedef void (*forge_fn)(forger_t *f, size_t k, const uint8_t *msg, size_t len, msp_buf_t *out);

struct forger {
    net_t *net;
    size_t link; /* link i joins node i and i + 1 (0 = client, 3 = server) */
    int to_server;
    forge_fn fn;
    int ccs;        /* the sender's ChangeCipherSpec went by on this link */
    size_t in, out; /* handshake records after it: as the sender wrote them, as they go on (6.2: from 0) */
    int done;       /* fn changed something */
    uint8_t label;  /* forge_own_mf: the kind the forged verify_data is computed for */
    uint8_t bogus;  /* forge_unknown_id: a middlebox id that is not on the path */
};

static sess_t *sender_sess(const forger_t *f)
{
    size_t node = f->to_server ? f->link : f->link + 1;
    if (node == 0) {
        return &f->net->client->s;
    }
    if (node == f->net->n + 1) {
        return &f->net->server->s;
    }
    return &f->net->m[node - 1]->s;
}

/* One handshake message in its own record, sealed with the context-0 key of the direction (records 3). */
static void seal_record(forger_t *f, uint32_t sid, const uint8_t nonce[12], const uint8_t *msg, size_t len,
                        msp_buf_t *b)
{
    sess_t *s = sender_sess(f);
    const uint8_t *key =
        f->to_server ? s->keys[s->key_at[0]].client_reader_enc : s->keys[s->key_at[0]].server_reader_enc;
    msp_buf_put_u8(b, MSP_TLMSP_CT_HANDSHAKE);
    msp_buf_put_u16(b, MSP_TLMSP_WIRE_VERSION);
    msp_buf_put_u16(b, (uint16_t)(4 + len + MSP_TLMSP_FRAGMENT_OVERHEAD)); /* Sid, then nonce, message, tag */
    msp_buf_put_u32(b, sid);
    assert_int_equal(msp_buf_reserve(b, len + MSP_TLMSP_FRAGMENT_OVERHEAD), MSP_OK);
    assert_int_equal(
        msp_tlmsp_record0_seal(&s->g, key, f->out++, MSP_TLMSP_CT_HANDSHAKE, sid, nonce, msg, len, b->base + b->len),
        MSP_OK);
    b->len += len + MSP_TLMSP_FRAGMENT_OVERHEAD;
}

/* The tamper hook: every handshake record after the sender's ChangeCipherSpec on (link, direction) is opened with
 * the sequence number it was sealed with and replaced by what fn makes of its message, each message in its own
 * record, sealed with the sequence numbers the receiver counts. Other records pass unchanged. */
static void forge_hook(void *user, size_t link, int to_server, msp_buf_t *b)
{
    forger_t *f = user;
    if (link != f->link || to_server != f->to_server) {
        return;
    }
    sess_t *s = sender_sess(f);
    msp_buf_t nb, msgs;
    msp_buf_init(&nb, 1u << 26);
    msp_buf_init(&msgs, 1u << 20);
    for (size_t off = 0; off < b->len; off += net_record_len(b->base + off)) {
        const uint8_t *p = b->base + off;
        size_t n = net_record_len(p);
        assert_true(off + n <= b->len); /* whole records: nothing here cuts them */
        if (!f->ccs || p[0] != MSP_TLMSP_CT_HANDSHAKE) {
            f->ccs = f->ccs || p[0] == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC;
            assert_int_equal(msp_buf_put(&nb, p, n), MSP_OK);
            continue;
        }
        const uint8_t *key =
            f->to_server ? s->keys[s->key_at[0]].client_reader_enc : s->keys[s->key_at[0]].server_reader_enc;
        uint32_t sid = (uint32_t)p[5] << 24 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 8 | p[8];
        const uint8_t *payload = p + 9;
        size_t plen = n - 9, mlen = plen - MSP_TLMSP_FRAGMENT_OVERHEAD;
        uint8_t plain[256], nonce[12];
        assert_true(mlen <= sizeof(plain));
        assert_int_equal(msp_tlmsp_record0_open(&s->g, key, f->in, MSP_TLMSP_CT_HANDSHAKE, sid, payload, plen, plain),
                         MSP_OK);
        memcpy(nonce, payload, sizeof(nonce));
        msgs.len = 0;
        f->fn(f, f->in++, plain, mlen, &msgs);
        /* one record per message (1.10); a record beyond the first gets a nonce of its own, same author */
        for (size_t at = 0, j = 0; at < msgs.len; j++) {
            size_t m = 4 + ((size_t)msgs.base[at + 1] << 16 | (size_t)msgs.base[at + 2] << 8 | msgs.base[at + 3]);
            nonce[11] ^= (uint8_t)j;
            seal_record(f, sid, nonce, msgs.base + at, m, &nb);
            at += m;
        }
    }
    b->len = 0;
    assert_int_equal(msp_buf_put(b, nb.base, nb.len), MSP_OK);
    msp_buf_free(&nb);
    msp_buf_free(&msgs);
}

static void put_msg(msp_buf_t *out, const uint8_t *msg, size_t len)
{
    assert_int_equal(msp_buf_put(out, msg, len), MSP_OK);
}

static void put_mf(msp_buf_t *out, const msp_tlmsp_mbox_finished_t *mf)
{
    size_t mark;
    msp_tls12_hs_begin(out, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, &mark);
    msp_tlmsp_mbox_finished_build(mf, out);
    assert_int_equal(msp_tls12_hs_end(out, mark), MSP_OK);
}

/* The k-th message, a MiddleboxFinished from the sender (a middlebox) itself. */
static int own_mf(const forger_t *f, const uint8_t *msg, size_t len, msp_tlmsp_mbox_finished_t *mf)
{
    return msg[0] == MSP_TLMSP_HT_MIDDLEBOX_FINISHED && msp_tlmsp_mbox_finished_parse(msg + 4, len - 4, mf) == MSP_OK &&
           mf->id == sender_sess(f)->self;
}

/* A middlebox sends, instead of its own MiddleboxFinished, one computed with its real master secret and
 * transcript for the kind f->label (6.11): toward the server master(S,m) over its server-facing transcript, toward
 * the client master(C,m) over its client-facing one. */
static void forge_own_mf(forger_t *f, size_t k, const uint8_t *msg, size_t len, msp_buf_t *out)
{
    msp_tlmsp_mbox_finished_t mf, honest;
    (void)k;
    if (!own_mf(f, msg, len, &honest)) {
        put_msg(out, msg, len);
        return;
    }
    msp_tlmsp_mbox_t *m = f->net->m[f->to_server ? f->link - 1 : f->link];
    const uint8_t *master = f->to_server ? m->s.master_s : m->s.master_c;
    uint8_t h[32];
    assert_int_equal(sess_hash_peek(f->to_server ? m->ts : m->tc, NULL, 0, h), MSP_OK);
    /* the inputs are the ones the middlebox used: for its own direction they give what it sent */
    mf.id = honest.id;
    assert_int_equal(msp_tlmsp_finished(f->to_server ? MSP_TLMSP_FIN_MBOX_TO_SERVER : MSP_TLMSP_FIN_MBOX_TO_CLIENT,
                                        master, h, mf.verify_data),
                     MSP_OK);
    assert_memory_equal(mf.verify_data, honest.verify_data, sizeof(mf.verify_data));
    assert_int_equal(msp_tlmsp_finished((msp_tlmsp_finished_kind_t)f->label, master, h, mf.verify_data), MSP_OK);
    put_mf(out, &mf);
    f->done = 1;
}

/* Before the middlebox's own MiddleboxFinished: one naming f->bogus, with the verify_data of its own. */
static void forge_unknown_id(forger_t *f, size_t k, const uint8_t *msg, size_t len, msp_buf_t *out)
{
    msp_tlmsp_mbox_finished_t mf;
    (void)k;
    if (own_mf(f, msg, len, &mf)) {
        mf.id = f->bogus;
        put_mf(out, &mf);
        f->done = 1;
    }
    put_msg(out, msg, len);
}

/* The first MiddleboxFinished of the flight sent twice: toward the server m2 replays m1's, toward the client m1
 * sends its own again. Either way an authentic one, a second time, before the last middlebox's. */
static void forge_twice(forger_t *f, size_t k, const uint8_t *msg, size_t len, msp_buf_t *out)
{
    put_msg(out, msg, len);
    if (k == 1) {
        assert_int_equal(msg[0], MSP_TLMSP_HT_MIDDLEBOX_FINISHED);
        assert_int_equal(msg[4], f->net->m[0]->s.self);
        put_msg(out, msg, len);
        f->done = 1;
    }
}

/* An endpoint's flight (Finished, MF(m1), MF(m2)) with the last MiddleboxFinished sent once more. */
static void forge_extra(forger_t *f, size_t k, const uint8_t *msg, size_t len, msp_buf_t *out)
{
    put_msg(out, msg, len);
    if (k == f->net->n) {
        assert_int_equal(msg[0], MSP_TLMSP_HT_MIDDLEBOX_FINISHED);
        put_msg(out, msg, len);
        f->done = 1;
    }
}

/* The client puts an empty MiddleboxFinished before the one for m1. */
static void forge_empty(forger_t *f, size_t k, const uint8_t *msg, size_t len, msp_buf_t *out)
{
    static const uint8_t empty[4] = {MSP_TLMSP_HT_MIDDLEBOX_FINISHED, 0, 0, 0};
    if (k == 1) {
        put_msg(out, empty, sizeof(empty));
        f->done = 1;
    }
    put_msg(out, msg, len);
}

/* The client sends, instead of the MiddleboxFinished for m1, its first byte alone: m1's id, no verify_data. */
static void forge_id_only(forger_t *f, size_t k, const uint8_t *msg, size_t len, msp_buf_t *out)
{
    if (k != 1) {
        put_msg(out, msg, len);
        return;
    }
    assert_int_equal(msg[0], MSP_TLMSP_HT_MIDDLEBOX_FINISHED);
    assert_int_equal(msg[4], f->net->m[0]->s.self);
    const uint8_t id_only[5] = {MSP_TLMSP_HT_MIDDLEBOX_FINISHED, 0, 0, 1, msg[4]};
    put_msg(out, id_only, sizeof(id_only));
    f->done = 1;
}

/* ---- the session ---- */

/* The handshake with the forger on its link; then "alpha" from the client in context 1 if it is ready. */
static void run(net_t *net, forger_t *f)
{
    net_setup_t setup;
    net_two_mbox_setup(&setup);
    f->net = net;
    assert_int_equal(net_open(net, &setup), 0);
    net->tamper = forge_hook;
    net->tamper_user = f;
    net_pump(net);
    assert_true(f->ccs);
    assert_true(f->done);
    if (msp_tlmsp_conn_ready(net->client)) {
        assert_int_equal(msp_tlmsp_conn_send(net->client, 1, (const uint8_t *)"alpha", 5, &net->c2s[0]), MSP_OK);
        net_pump(net);
    }
}

/* Entity `who` (0 client, 1 m1, 2 m2, 3 server) must send `alert`; the others raise none of their own, both
 * endpoints hear it, nobody is ready, nothing is released. */
static void expect_refused(forger_t *f, const char *what, size_t who, int alert)
{
    net_t net;
    run(&net, f);
    int err[4] = {net.client_err, net.mbox_err[0], net.mbox_err[1], net.server_err};
    print_message("%s: %s says %s (%d); client %#x m1 %#x m2 %#x server %#x, released %zu/%zu bytes at the "
                  "server, %zu/%zu at the client\n",
                  what, entity[who], msp_error_name(err[who]), err[who], (unsigned)err[0], (unsigned)err[1],
                  (unsigned)err[2], (unsigned)err[3], net.at_server.data[1].len, net.at_server.data[2].len,
                  net.at_client.data[1].len, net.at_client.data[2].len);
    net_expect_refused(&net, who, alert);
    if (who != 0) {
        assert_int_equal(net.at_client.last_desc, alert);
    }
    if (who != 3) {
        assert_int_equal(net.at_server.last_desc, alert);
    }
    assert_false(msp_tlmsp_conn_ready(net.client) || msp_tlmsp_conn_ready(net.server));
    net_close(&net);
}

/* m2's flight toward the server, m1's toward the client: the last hop before each endpoint. */
static forger_t toward_server(forge_fn fn)
{
    return (forger_t){.link = 2, .to_server = 1, .fn = fn};
}

static forger_t toward_client(forge_fn fn)
{
    return (forger_t){.link = 0, .to_server = 0, .fn = fn};
}

/* ---- at the endpoints ---- */

/* The forging is right: recomputed for the right kind, the MiddleboxFinished is the one the middlebox sent, and
 * the session completes and carries data. */
static void expect_own_mf_accepted(forger_t f)
{
    net_t net;
    run(&net, &f);
    assert_int_equal(net.client_err | net.mbox_err[0] | net.mbox_err[1] | net.server_err, MSP_OK);
    assert_true(net_ready(&net));
    assert_int_equal(net.at_server.data[1].len, 5);
    assert_memory_equal(net.at_server.data[1].base, "alpha", 5);
    net_close(&net);
}

static void test_mbox_finished_control(void **state)
{
    (void)state;
    forger_t f = toward_server(forge_own_mf);
    f.label = MSP_TLMSP_FIN_MBOX_TO_SERVER;
    expect_own_mf_accepted(f);
    f = toward_client(forge_own_mf);
    f.label = MSP_TLMSP_FIN_MBOX_TO_CLIENT;
    expect_own_mf_accepted(f);
}

/* "middlebox-client finished" toward the server, "middlebox-server finished" toward the client: the right key, the
 * right transcript, the other direction's label (6.11). */
static void test_mbox_finished_wrong_direction(void **state)
{
    (void)state;
    forger_t f = toward_server(forge_own_mf);
    f.label = MSP_TLMSP_FIN_MBOX_TO_CLIENT;
    expect_refused(&f, "m2's MiddleboxFinished for the client, sent to the server", 3, MSP_ALERT_DECRYPT_ERROR);
    f = toward_client(forge_own_mf);
    f.label = MSP_TLMSP_FIN_MBOX_TO_SERVER;
    expect_refused(&f, "m1's MiddleboxFinished for the server, sent to the client", 0, MSP_ALERT_DECRYPT_ERROR);
}

/* A MiddleboxFinished from an id in the middlebox range (so that it parses) that is not on the path (0x30, 0x37):
 * the id after each listed one, and both ends of the range. It comes before the sender's own. */
static void test_mbox_finished_unknown_id(void **state)
{
    (void)state;
    static const uint8_t ids[] = {0x31, 0x38, MSP_TLMSP_ID_FIRST_MIDDLEBOX, MSP_TLMSP_ID_LAST_MIDDLEBOX};
    char what[96];
    for (size_t i = 0; i < sizeof(ids); i++) {
        forger_t f = toward_server(forge_unknown_id);
        f.bogus = ids[i];
        snprintf(what, sizeof(what), "m2 sends a MiddleboxFinished from %#x, not on the path", ids[i]);
        expect_refused(&f, what, 3, MSP_ALERT_ILLEGAL_PARAMETER);
        f = toward_client(forge_unknown_id);
        f.bogus = ids[i];
        snprintf(what, sizeof(what), "m1 sends a MiddleboxFinished from %#x, not on the path", ids[i]);
        expect_refused(&f, what, 0, MSP_ALERT_ILLEGAL_PARAMETER);
    }
}

static void test_mbox_finished_twice(void **state)
{
    (void)state;
    forger_t f = toward_server(forge_twice);
    expect_refused(&f, "m2 replays m1's MiddleboxFinished to the server", 3, MSP_ALERT_ILLEGAL_PARAMETER);
    f = toward_client(forge_twice);
    expect_refused(&f, "m1 sends its MiddleboxFinished twice to the client", 0, MSP_ALERT_ILLEGAL_PARAMETER);
}

/* ---- at the middleboxes ---- */

static void test_mbox_finished_one_too_many(void **state)
{
    (void)state;
    /* the client's flight toward m1, the server's toward m2: the first middlebox each meets counts */
    forger_t f = {.link = 0, .to_server = 1, .fn = forge_extra};
    expect_refused(&f, "the client sends three MiddleboxFinished for two middleboxes", 1, MSP_ALERT_UNEXPECTED_MESSAGE);
    f = (forger_t){.link = 2, .to_server = 0, .fn = forge_extra};
    expect_refused(&f, "the server sends three MiddleboxFinished for two middleboxes", 2, MSP_ALERT_UNEXPECTED_MESSAGE);
}

static void test_mbox_finished_empty(void **state)
{
    (void)state;
    forger_t f = {.link = 0, .to_server = 1, .fn = forge_empty};
    expect_refused(&f, "the client sends an empty MiddleboxFinished", 1, MSP_ALERT_UNEXPECTED_MESSAGE);
}

/* One byte is not empty: it is counted and read, and an id without verify_data does not parse. */
static void test_mbox_finished_id_only(void **state)
{
    (void)state;
    forger_t f = {.link = 0, .to_server = 1, .fn = forge_id_only};
    expect_refused(&f, "the client sends m1's MiddleboxFinished as its id alone", 1, MSP_ALERT_DECODE_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mbox_finished_control),      cmocka_unit_test(test_mbox_finished_wrong_direction),
        cmocka_unit_test(test_mbox_finished_unknown_id),   cmocka_unit_test(test_mbox_finished_twice),
        cmocka_unit_test(test_mbox_finished_one_too_many), cmocka_unit_test(test_mbox_finished_empty),
        cmocka_unit_test(test_mbox_finished_id_only),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
