/*
 * Dishonest entities, built from the keys they really hold: each forgery
 * gets exactly one check wrong and every other check right, so that exactly
 * one verification stands between it and the endpoint's application, and
 * the test names the alert (and who sends it) that this one check must
 * produce. A wire bit flip cannot do this: it is caught by whichever check
 * comes first, and another layer can mask a check that stopped working (a
 * flipped reader check also breaks the check MAC computed over it).
 *
 * Path and contexts as in test_tlmsp_tamper: client -- m1 -- m2 -- server;
 * context 1 unconfirmed (m1 rw, m2 r), context 2 confirmed (m1 r, m2 rw).
 *
 * - m2 (read-only in context 1) re-encrypts "alpha" as "EVIL!" in the
 *   client's name, GCM tag and forwarding MAC right: only the writer MAC is
 *   wrong -> the server sends bad_writer_mac (178). The same for an alert
 *   container: the client's warning made a fatal alert -> 178.
 * - m2 forwards "alpha" with a reader check wrong in one byte (the first, or
 *   the last), the check MAC computed correctly over it -> bad_reader_mac
 *   (177) from the server.
 * - m2 forwards "alpha" with a check MAC under the wrong pair key (its key
 *   toward the client, which the server does not have), or right but for its
 *   last byte -> bad_reader_mac (177) from the server.
 * - m2 passes a container of context 2 (confirmed) on with its own
 *   forwarding MAC twice, every MAC right, the audit order right: one entry
 *   more than the chain has steps -> bad_reader_mac (177) from the server.
 * - An alert needs only read access (records 4.5, 8): m2's warning in
 *   context 1, m1's in context 2, each with a zero writer MAC, must reach
 *   the server, past every entity that could write the context.
 * - m1 confirms a client writer contribution it did not receive, m2 a server
 *   reader contribution: the KeyConfirmation is sealed correctly, its
 *   content is wrong -> middlebox_keyconfirmation_fault (179) from the
 *   endpoint that checks it (tlmsp-handshake.md 6.7).
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
#include "reader.h"
#include "tlmsp_tls12.h"
#include "net.h"

/* ---- containers forged by m2 on its hop to the server ---- */

enum lie {
    LIE_NONE,         /* control: m2's forwarding MAC recomputed honestly */
    LIE_NONE_WRITER,  /* control: new plaintext with a writer MAC from m1's writer key: a legitimate modification */
    LIE_WRITER_MAC,   /* new plaintext in the client's name; the client's writer MAC of the old fragment */
    LIE_READER_CHECK, /* reader check wrong in byte `byte`, check MAC right over it */
    LIE_CHECK_KEY,    /* check MAC under m2's key toward the client */
    LIE_CHECK_BYTE,   /* check MAC right but for byte `byte` */
};

static const char *const lie_name[] = {"none",         "none (writer key)", "writer MAC",
                                       "reader check", "check MAC key",     "check MAC byte"};

typedef struct forger {
    net_t *net;
    int lie;
    size_t byte;
    int done;
    uint8_t type;        /* the record type of the container: application data, or an alert */
    const uint8_t *evil; /* what m2 puts in the client's name (as long as what the client sent) */
} forger_t;

/* What the client sends in context 1 and what m2 makes of it: "alpha" and "EVIL!" as data; as an alert, a warning
 * user_canceled that m2 turns into a fatal access_denied. */
static const uint8_t alpha[5] = {'a', 'l', 'p', 'h', 'a'}, evil_data[5] = {'E', 'V', 'I', 'L', '!'};
static const uint8_t warning[2] = {1, 90}, evil_alert[2] = {2, 49};

static size_t sent_len(const forger_t *f)
{
    return f->type == MSP_TLMSP_CT_ALERT ? sizeof(warning) : sizeof(alpha);
}

/* The inputs of every container MAC (records 5.4) at the sequence number seq. */
static msp_tlmsp_mac_in_t mac_in(const forger_t *f, const sess_t *s, const msp_tlmsp_container_t *c, uint64_t seq)
{
    return (msp_tlmsp_mac_in_t){f->type, s->sid, seq, c->flags, NULL, 0};
}

/* m2 re-seals the fragment as the client's, with the reader key it has (context 1, client to server); with
 * writer_key, also the writer MAC that m2 cannot make itself. */
static void reseal_as_client(const forger_t *f, msp_tlmsp_mbox_t *m2, msp_tlmsp_container_t *c,
                             const uint8_t *writer_key)
{
    uint64_t seq;
    uint8_t nonce[12] = {MSP_TLMSP_ID_CLIENT, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    /* the author's sequence number, which m2 counts as it receives from the client's side */
    assert_int_equal(msp_tlmsp_seq_of(&m2->a.seq, MSP_TLMSP_ID_CLIENT, &seq), MSP_OK);
    msp_tlmsp_mac_in_t in = mac_in(f, &m2->s, c, seq);
    assert_int_equal(c->fragment_len, sent_len(f) + MSP_TLMSP_FRAGMENT_OVERHEAD);
    assert_int_equal(msp_tlmsp_fragment_seal(&m2->s.g, m2->s.keys[m2->s.key_at[1]].client_reader_enc, &in, nonce,
                                             f->evil, sent_len(f), (uint8_t *)c->fragment),
                     MSP_OK);
    if (writer_key != NULL) {
        assert_int_equal(
            msp_tlmsp_writer_mac(&m2->s.g, writer_key, &in, c->fragment, c->fragment_len, (uint8_t *)c->writer_mac),
            MSP_OK);
    }
}

/* m2's forwarding MAC of order 0 (records 5.7, 5.8) over the container as it now is, with the lie asked for. */
static void refmac(forger_t *f, msp_tlmsp_mbox_t *m2, msp_tlmsp_container_t *c)
{
    sess_t *s = &m2->s;
    uint64_t seq;
    const uint8_t *ab;
    msp_tlmsp_fmac_t *fm = &c->fmacs[0];
    uint8_t *rc = (uint8_t *)fm->reader_check, *check = (uint8_t *)fm->check;
    /* the sequence number m2 gave this container as it sent it */
    assert_int_equal(msp_tlmsp_seq_of(&m2->b.seq, s->self, &seq), MSP_OK);
    msp_tlmsp_mac_in_t in = mac_in(f, s, c, seq);
    assert_int_equal(fm->id, s->self);
    assert_int_equal(
        msp_tlmsp_reader_check_mac(&s->g, s->synch[DIR_C2S], &in, c->fragment, c->fragment_len, fm->nonce, rc), MSP_OK);
    if (f->lie == LIE_READER_CHECK) {
        rc[f->byte] ^= 0x01;
    }
    uint8_t to = f->lie == LIE_CHECK_KEY ? MSP_TLMSP_ID_CLIENT : MSP_TLMSP_ID_SERVER;
    assert_int_equal(sess_pair_key(s, s->self, to, &ab), MSP_OK);
    assert_int_equal(msp_tlmsp_check_mac(&s->g, ab, &in, fm, NULL, check), MSP_OK);
    if (f->lie == LIE_CHECK_BYTE) {
        check[f->byte] ^= 0x01;
    }
}

static void forge_container(void *user, size_t link, int to_server, msp_buf_t *b)
{
    forger_t *f = user;
    if (f->done || link != 2 || !to_server || b->len < 10 || b->base[0] != f->type) {
        return;
    }
    msp_tlmsp_mbox_t *m2 = f->net->m[1];
    msp_tlmsp_container_t *c = calloc(1, sizeof(*c));
    msp_reader_t rd;
    assert_non_null(c);
    assert_int_equal(net_record_len(b->base), b->len); /* one container, the one just sent */
    msp_reader_init(&rd, b->base + 9, b->len - 9);
    assert_int_equal(msp_tlmsp_container_parse(&rd, 1, c), MSP_OK);
    assert_int_equal(c->context, 1);
    /* the container's views point into b: the forgery is written in place, every length unchanged */
    if (f->lie == LIE_WRITER_MAC || f->lie == LIE_NONE_WRITER) {
        reseal_as_client(f, m2, c,
                         f->lie == LIE_NONE_WRITER ? f->net->m[0]->s.keys[f->net->m[0]->s.key_at[1]].client_writer_mac
                                                   : NULL);
    }
    refmac(f, m2, c);
    free(c);
    f->done = 1;
}

static const char *kind_name(uint8_t type)
{
    return type == MSP_TLMSP_CT_ALERT ? "an alert" : "a data";
}

/* The session, ready, m2 forging on its hop to the server; then the client's "alpha" or warning in context 1. */
static void run_forger(net_t *net, forger_t *f)
{
    net_setup_t setup;
    net_two_mbox_setup(&setup);
    assert_int_equal(net_open(net, &setup), 0);
    net_pump(net);
    assert_true(net_ready(net));
    net->tamper = forge_container;
    net->tamper_user = f;
    if (f->type == MSP_TLMSP_CT_ALERT) {
        assert_int_equal(msp_tlmsp_conn_alert(net->client, 1, warning[0], warning[1], &net->c2s[0]), MSP_OK);
    } else {
        assert_int_equal(msp_tlmsp_conn_send(net->client, 1, alpha, sizeof(alpha), &net->c2s[0]), MSP_OK);
    }
    net_pump(net);
    assert_true(f->done);
}

/* The client's container of this type in context 1, forged on the last hop: the server must send `alert`. */
static void expect_server_alert(uint8_t type, int lie, size_t byte, int alert)
{
    net_t net;
    forger_t f = {&net, lie, byte, 0, type, type == MSP_TLMSP_CT_ALERT ? evil_alert : evil_data};
    run_forger(&net, &f);
    if (net.server_err != alert) {
        print_message("m2 forges the %s of %s container (byte %zu): want %s (%d) from the server; got client %#x "
                      "m1 %#x m2 %#x server %#x, the server released %zu bytes and %d alerts in context 1\n",
                      lie_name[lie], kind_name(type), byte, msp_error_name(alert), alert, (unsigned)net.client_err,
                      (unsigned)net.mbox_err[0], (unsigned)net.mbox_err[1], (unsigned)net.server_err,
                      net.at_server.data[1].len, net.at_server.alerts);
    }
    /* the server noticed, alone; its alert reached the client; nothing was released, no alert passed on */
    assert_int_equal(net.server_err, alert);
    assert_int_equal(net.mbox_err[0], MSP_OK);
    assert_int_equal(net.mbox_err[1], MSP_OK);
    assert_int_equal(net.client_err, MSP_ERR_CLASS_PEER_ALERT + alert);
    assert_int_equal(net.at_client.last_desc, alert);
    assert_int_equal(net.at_server.data[1].len, 0);
    assert_int_equal(net.at_client.data[1].len, 0);
    assert_int_equal(net.at_server.alerts, 0);
    print_message("m2 forges the %s of %s container (byte %zu): server says %s (%d)\n", lie_name[lie], kind_name(type),
                  byte, msp_error_name(net.server_err), net.server_err);
    net_close(&net);
}

/* The forging itself is right: with no lie the server takes the container, and what it gets is `want`. */
static void expect_accepted(uint8_t type, int lie, const uint8_t *want)
{
    net_t net;
    forger_t f = {&net, lie, 0, 0, type, type == MSP_TLMSP_CT_ALERT ? evil_alert : evil_data};
    run_forger(&net, &f);
    assert_int_equal(net.client_err | net.mbox_err[0] | net.mbox_err[1], MSP_OK);
    if (type == MSP_TLMSP_CT_ALERT) {
        /* the server takes the alert as it comes: a warning goes by, a fatal one ends the session */
        assert_int_equal(net.server_err, want[0] == 2 ? MSP_ERR_CLASS_PEER_ALERT + want[1] : MSP_OK);
        assert_int_equal(net.at_server.alerts, 1);
        assert_int_equal(net.at_server.last_ctx, 1);
        assert_int_equal(net.at_server.last_level, want[0]);
        assert_int_equal(net.at_server.last_desc, want[1]);
    } else {
        assert_int_equal(net.server_err, MSP_OK);
        assert_int_equal(net.at_server.data[1].len, sizeof(alpha));
        assert_memory_equal(net.at_server.data[1].base, want, sizeof(alpha));
    }
    net_close(&net);
}

static void test_forger_control(void **state)
{
    (void)state;
    expect_accepted(MSP_TLMSP_CT_APPLICATION_DATA, LIE_NONE, alpha);
    /* only the writer MAC separates the forgery below from a write by an entity that holds the writer key */
    expect_accepted(MSP_TLMSP_CT_APPLICATION_DATA, LIE_NONE_WRITER, evil_data);
    expect_accepted(MSP_TLMSP_CT_ALERT, LIE_NONE, warning);
    expect_accepted(MSP_TLMSP_CT_ALERT, LIE_NONE_WRITER, evil_alert);
}

static void test_forged_writer_mac(void **state)
{
    (void)state;
    expect_server_alert(MSP_TLMSP_CT_APPLICATION_DATA, LIE_WRITER_MAC, 0, MSP_ALERT_BAD_WRITER_MAC);
}

/* An alert's author with write access is held to its writer MAC like any writer (records 8): m2, which only reads
 * context 1, cannot turn the client's warning into a fatal alert in the client's name. */
static void test_forged_alert_writer_mac(void **state)
{
    (void)state;
    expect_server_alert(MSP_TLMSP_CT_ALERT, LIE_WRITER_MAC, 0, MSP_ALERT_BAD_WRITER_MAC);
}

static void test_forged_reader_check_first_byte(void **state)
{
    (void)state;
    expect_server_alert(MSP_TLMSP_CT_APPLICATION_DATA, LIE_READER_CHECK, 0, MSP_ALERT_BAD_READER_MAC);
}

static void test_forged_reader_check_last_byte(void **state)
{
    (void)state;
    expect_server_alert(MSP_TLMSP_CT_APPLICATION_DATA, LIE_READER_CHECK, MSP_TLMSP_MAC_LEN - 1,
                        MSP_ALERT_BAD_READER_MAC);
}

static void test_forged_check_mac_key(void **state)
{
    (void)state;
    expect_server_alert(MSP_TLMSP_CT_APPLICATION_DATA, LIE_CHECK_KEY, 0, MSP_ALERT_BAD_READER_MAC);
}

static void test_forged_check_mac_last_byte(void **state)
{
    (void)state;
    expect_server_alert(MSP_TLMSP_CT_APPLICATION_DATA, LIE_CHECK_BYTE, MSP_TLMSP_MAC_LEN - 1, MSP_ALERT_BAD_READER_MAC);
}

/* ---- an alert from a middlebox that only reads its context ---- */

typedef struct watch {
    uint8_t author; /* the container of interest: the first alert container by this entity */
    size_t link;
    int seen;
    uint8_t writer_mac[MSP_TLMSP_MAC_LEN];
} watch_t;

/* Looks, changes nothing: the writer MAC of the first protected alert container `author` wrote, on `link`. */
static void watch_alert(void *user, size_t link, int to_server, msp_buf_t *b)
{
    watch_t *w = user;
    if (w->seen || link != w->link || !to_server || b->len < 10 || b->base[0] != MSP_TLMSP_CT_ALERT) {
        return;
    }
    msp_tlmsp_container_t *c = calloc(1, sizeof(*c));
    msp_reader_t rd;
    assert_non_null(c);
    msp_reader_init(&rd, b->base + 9, net_record_len(b->base) - 9);
    assert_int_equal(msp_tlmsp_container_parse(&rd, 1, c), MSP_OK);
    if (c->fragment[0] == w->author) {
        memcpy(w->writer_mac, c->writer_mac, MSP_TLMSP_MAC_LEN);
        w->seen = 1;
    }
    free(c);
}

/*
 * An alert needs only read access to its context, and then its writer MAC is zeros (records 4.5, 8): the
 * middlebox `mbox` (read-only in ctx) sends a warning toward the server; every writer on the way (the server,
 * and m2 in context 2) must take it without a writer MAC to check, and the server must get the alert.
 */
static void expect_read_only_alert_accepted(size_t mbox, uint8_t ctx)
{
    net_setup_t setup;
    net_t net;
    net_two_mbox_setup(&setup);
    assert_int_equal(setup.access[mbox][ctx], MSP_TLMSP_ACCESS_R);
    assert_int_equal(net_open(&net, &setup), 0);
    net_pump(&net);
    assert_true(net_ready(&net));
    watch_t w = {msp_tlmsp_mbox_id(net.m[mbox]), mbox + 1, 0, {0}};
    static const uint8_t zeros[MSP_TLMSP_MAC_LEN];
    net.tamper = watch_alert;
    net.tamper_user = &w;
    assert_int_equal(msp_tlmsp_mbox_alert(net.m[mbox], 1, ctx, warning[0], warning[1], &net.c2s[mbox + 1]), MSP_OK);
    net_pump(&net);
    assert_true(w.seen);
    assert_memory_equal(w.writer_mac, zeros, MSP_TLMSP_MAC_LEN);
    if (net.client_err | net.mbox_err[0] | net.mbox_err[1] | net.server_err) {
        print_message("m%zu (read-only) sends a warning in context %u: got client %#x m1 %#x m2 %#x server %#x\n",
                      mbox + 1, ctx, (unsigned)net.client_err, (unsigned)net.mbox_err[0], (unsigned)net.mbox_err[1],
                      (unsigned)net.server_err);
    }
    assert_int_equal(net.client_err | net.mbox_err[0] | net.mbox_err[1] | net.server_err, MSP_OK);
    assert_int_equal(net.at_server.alerts, 1);
    assert_int_equal(net.at_server.last_ctx, ctx);
    assert_int_equal(net.at_server.last_level, warning[0]);
    assert_int_equal(net.at_server.last_desc, warning[1]);
    assert_true(msp_tlmsp_conn_ready(net.server) && msp_tlmsp_conn_ready(net.client));
    net_close(&net);
}

static void test_alert_from_read_only_middlebox(void **state)
{
    (void)state;
    expect_read_only_alert_accepted(1, 1); /* m2 reads context 1: the server checks it */
    expect_read_only_alert_accepted(0, 2); /* m1 reads context 2: m2 (a writer there), then the server */
}

/* ---- an audit chain with one entry too many ---- */

typedef struct dup {
    net_t *net;
    int done;
} dup_t;

/*
 * m2 passes the client's container of context 2 (confirmed) on with its own forwarding MAC twice: every entry is
 * right, every MAC checks, the audit order is client, m1, m2; but the chain has four entries for three steps
 * (records 8: highest order == number of steps == nAF).
 */
static void duplicate_fmac(void *user, size_t link, int to_server, msp_buf_t *b)
{
    dup_t *d = user;
    if (d->done || link != 2 || !to_server || b->len < 10 || b->base[0] != MSP_TLMSP_CT_APPLICATION_DATA) {
        return;
    }
    msp_tlmsp_container_t *c = calloc(1, sizeof(*c));
    msp_reader_t rd;
    uint8_t last[MSP_TLMSP_FMAC_LEN];
    assert_non_null(c);
    assert_int_equal(net_record_len(b->base), b->len); /* one container, the one just sent */
    msp_reader_init(&rd, b->base + 9, b->len - 9);
    assert_int_equal(msp_tlmsp_container_parse(&rd, 1, c), MSP_OK);
    assert_int_equal(c->context, 2);
    assert_int_equal(c->nfmacs, 3);
    /* the chain as m2 wrote it: the mandatory entry (client, order 0), then nAF = 2: m1 (1), m2 (2) */
    const msp_tlmsp_fmac_t *mine = &c->fmacs[2];
    assert_int_equal(mine->id, msp_tlmsp_mbox_id(d->net->m[1]));
    assert_int_equal(mine->order, 2);
    size_t naf = (size_t)(c->fmacs[0].check + MSP_TLMSP_MAC_LEN - b->base);
    size_t at = (size_t)(mine->reader_check - 3 - b->base);
    assert_int_equal(b->base[naf], 2);
    assert_int_equal(at + MSP_TLMSP_FMAC_LEN, b->len); /* m2's entry ends the container */
    memcpy(last, b->base + at, sizeof(last));
    free(c);
    b->base[naf] = 3;
    assert_int_equal(msp_buf_put(b, last, sizeof(last)), MSP_OK);
    size_t body = b->len - 5;
    b->base[3] = (uint8_t)(body >> 8);
    b->base[4] = (uint8_t)body;
    d->done = 1;
}

static void test_forged_audit_chain_extra_entry(void **state)
{
    (void)state;
    int alert = MSP_ALERT_BAD_READER_MAC;
    net_setup_t setup;
    net_t net;
    dup_t d = {&net, 0};
    net_two_mbox_setup(&setup);
    assert_int_equal(net_open(&net, &setup), 0);
    net_pump(&net);
    assert_true(net_ready(&net));
    net.tamper = duplicate_fmac;
    net.tamper_user = &d;
    assert_int_equal(msp_tlmsp_conn_send(net.client, 2, alpha, sizeof(alpha), &net.c2s[0]), MSP_OK);
    net_pump(&net);
    assert_true(d.done);
    if (net.server_err != alert) {
        print_message("m2 repeats its forwarding MAC: want %s (%d) from the server; got client %#x m1 %#x m2 %#x "
                      "server %#x, the server released %zu bytes in context 2\n",
                      msp_error_name(alert), alert, (unsigned)net.client_err, (unsigned)net.mbox_err[0],
                      (unsigned)net.mbox_err[1], (unsigned)net.server_err, net.at_server.data[2].len);
    }
    assert_int_equal(net.server_err, alert);
    assert_int_equal(net.mbox_err[0], MSP_OK);
    assert_int_equal(net.mbox_err[1], MSP_OK);
    assert_int_equal(net.client_err, MSP_ERR_CLASS_PEER_ALERT + alert);
    assert_int_equal(net.at_client.last_desc, alert);
    assert_int_equal(net.at_server.data[2].len, 0);
    assert_int_equal(net.at_client.data[2].len, 0);
    print_message("m2 repeats its forwarding MAC in context 2: server says %s (%d)\n", msp_error_name(alert), alert);
    net_close(&net);
}

/* ---- a KeyConfirmation that confirms what the middlebox never received ---- */

typedef struct confirmer {
    net_t *net;
    size_t mbox;   /* index of the lying middlebox */
    int to_server; /* the direction its KeyConfirmation travels */
    int writer;    /* lie about the writer contribution, else the reader one */
    uint8_t ctx;
    int done;
} confirmer_t;

/* The KeyConfirmation (5.6) the middlebox would send, sealed with its real pair key, one contribution altered. */
static void lying_confirmation(const confirmer_t *k, msp_buf_t *msg)
{
    msp_tlmsp_mbox_t *m = k->net->m[k->mbox];
    sess_t *s = &m->s;
    const uint8_t *key;
    uint8_t suffix[MSP_TLMSP_NONCE_SUFFIX_LEN] = {0};
    size_t mark;
    msp_tlmsp_contrib_t *lie = malloc(sizeof(*lie));
    assert_non_null(lie);
    /* what it received from the endpoint it confirms toward the other one */
    memcpy(lie, k->to_server ? s->cc : s->sc, sizeof(*lie));
    (k->writer ? lie->writer[k->ctx] : lie->reader[k->ctx])[0] ^= 0x01;
    assert_int_equal(sess_pair_key(s, s->self, k->to_server ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT, &key), MSP_OK);
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, &mark);
    assert_int_equal(
        msp_tlmsp_key_material_seal(&s->g, key, s->self, s->self, suffix, lie, s->list->m[m->me].access, msg), MSP_OK);
    msp_tls12_hs_end(msg, mark);
    free(lie);
}

/* On the hop past the lying middlebox: its KeyConfirmation, replaced in place (same length). */
static void replace_confirmation(void *user, size_t link, int to_server, msp_buf_t *b)
{
    confirmer_t *k = user;
    size_t hop = k->to_server ? k->mbox + 1 : k->mbox;
    uint8_t id = k->net->m[k->mbox]->s.self;
    if (k->done || link != hop || to_server != k->to_server) {
        return;
    }
    for (size_t off = 0; off + 14 <= b->len; off += net_record_len(b->base + off)) {
        uint8_t *p = b->base + off;
        if (p[0] != MSP_TLMSP_CT_HANDSHAKE || p[9] != MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION || p[13] != id) {
            continue;
        }
        msp_buf_t msg;
        msp_buf_init(&msg, 1u << 16);
        lying_confirmation(k, &msg);
        assert_int_equal(msg.len, net_record_len(p) - 9); /* record header and Sid, then the one message */
        memcpy(p + 9, msg.base, msg.len);
        msp_buf_free(&msg);
        k->done = 1;
        return;
    }
}

/* The handshake with one lying KeyConfirmation; the endpoint it is for must send 179 and nobody gets keyed. */
static void expect_keyconfirmation_fault(confirmer_t *k)
{
    net_setup_t setup;
    net_t net;
    k->net = &net;
    net_two_mbox_setup(&setup);
    assert_int_equal(net_open(&net, &setup), 0);
    net.tamper = replace_confirmation;
    net.tamper_user = k;
    net_pump(&net);
    assert_true(k->done);
    int fault = MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT, heard = MSP_ERR_CLASS_PEER_ALERT + fault;
    /* the endpoint that checks the confirmation sends 179, the middleboxes pass it on, the other endpoint has it */
    assert_int_equal(net.server_err, k->to_server ? fault : heard);
    assert_int_equal(net.client_err, k->to_server ? heard : fault);
    assert_int_equal(net.mbox_err[0], MSP_OK);
    assert_int_equal(net.mbox_err[1], MSP_OK);
    assert_false(net_ready(&net));
    assert_false(msp_tlmsp_conn_ready(net.client) || msp_tlmsp_conn_ready(net.server));
    print_message("m%zu confirms a wrong %s contribution for context %u: the %s says %s (%d)\n", k->mbox + 1,
                  k->writer ? "writer" : "reader", k->ctx, k->to_server ? "server" : "client", msp_error_name(fault),
                  fault);
    net_close(&net);
}

static void test_keyconfirmation_fault_at_server(void **state)
{
    (void)state;
    confirmer_t k = {NULL, 0, 1, 1, 1, 0}; /* m1 writes context 1: it confirms the client's writer part */
    expect_keyconfirmation_fault(&k);
}

static void test_keyconfirmation_fault_at_client(void **state)
{
    (void)state;
    confirmer_t k = {NULL, 1, 0, 0, 1, 0}; /* m2 reads context 1: it confirms the server's reader part */
    expect_keyconfirmation_fault(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forger_control),
        cmocka_unit_test(test_forged_writer_mac),
        cmocka_unit_test(test_forged_alert_writer_mac),
        cmocka_unit_test(test_forged_reader_check_first_byte),
        cmocka_unit_test(test_forged_reader_check_last_byte),
        cmocka_unit_test(test_forged_check_mac_key),
        cmocka_unit_test(test_forged_check_mac_last_byte),
        cmocka_unit_test(test_alert_from_read_only_middlebox),
        cmocka_unit_test(test_forged_audit_chain_extra_entry),
        cmocka_unit_test(test_keyconfirmation_fault_at_server),
        cmocka_unit_test(test_keyconfirmation_fault_at_client),
    };
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
