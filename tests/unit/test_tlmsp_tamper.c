/*
 * The tamper matrix (issue 4): a session with two middleboxes is run once to
 * record every record on every hop and direction; then, for each record and
 * each mutation (a bit flip in each field, truncation, drop, replay,
 * reorder), the session is run again with that one change made on the wire.
 * Every case must end in an alert from the entity that noticed, and no
 * endpoint may release plaintext other than a prefix of what was sent.
 * Then a read-only middlebox that writes, and one that inserts without
 * write access. The matrix (cases x outcome) is printed for docs/.
 *
 * Path: client -- m1 -- m2 -- server. Contexts: 1 unconfirmed (m1 rw, m2 r),
 * 2 confirmed (m1 r, m2 rw).
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

static net_identity_t server_id, m_ids[2];

enum mut { FLIP, TRUNCATE, DROP, REPLAY, REORDER, NMUT };
static const char *const mut_name[NMUT] = {"flip", "truncate", "drop", "replay", "reorder"};

typedef struct rec_info {
    size_t link;
    int to_server;
    size_t index; /* among the records on this link and direction */
    uint8_t type;
    size_t len;      /* payload length */
    uint8_t hs_type; /* first handshake type of a plaintext handshake record, else 0 */
    size_t flen;     /* a container's fragment length */
    int post_ccs;
} rec_info_t;

typedef struct field {
    const char *name;
    size_t off; /* from the start of the record */
} field_t;

typedef struct tamper {
    int recording;
    rec_info_t recs[512];
    size_t nrecs;
    size_t count[3][2];
    int seen_ccs[3][2];
    /* the case being run */
    size_t link;
    int to_server;
    size_t index;
    int mut;
    size_t off;
    int done;
    uint8_t held[70000];
    size_t held_len;
} tamper_t;

static void make_setup(net_setup_t *s)
{
    memset(s, 0, sizeof(*s));
    s->n = 2;
    s->server_id = &server_id;
    s->mbox_id[0] = &m_ids[0];
    s->mbox_id[1] = &m_ids[1];
    s->contexts.present[1] = s->contexts.present[2] = 1;
    s->contexts.audit[2] = 1;
    s->access[0][1] = MSP_TLMSP_ACCESS_RW;
    s->access[0][2] = MSP_TLMSP_ACCESS_R;
    s->access[1][1] = MSP_TLMSP_ACCESS_R;
    s->access[1][2] = MSP_TLMSP_ACCESS_RW;
}

static size_t rec_len(const uint8_t *p)
{
    return 5 + ((size_t)p[3] << 8 | p[4]);
}

static void record_all(tamper_t *t, size_t link, int to_server, const msp_buf_t *b)
{
    for (size_t off = 0; off + 5 <= b->len && t->nrecs < 512; off += rec_len(b->base + off)) {
        rec_info_t *r = &t->recs[t->nrecs++];
        const uint8_t *p = b->base + off;
        r->link = link;
        r->to_server = to_server;
        r->index = t->count[link][to_server]++;
        r->type = p[0];
        r->len = rec_len(p) - 5;
        r->post_ccs = t->seen_ccs[link][to_server];
        int sid = !(r->index == 0); /* only the first record each way has no Sid */
        r->hs_type = p[0] == 22 && !r->post_ccs && r->len > (size_t)(sid ? 4 : 0) ? p[5 + (sid ? 4 : 0)] : 0;
        if (p[0] == 20) {
            t->seen_ccs[link][to_server] = 1;
        }
        size_t c = 5 + (sid ? 4 : 0);
        if ((p[0] == 23 || (p[0] == 21 && r->post_ccs)) && r->len >= c + 5 - 5) {
            r->flen = (size_t)p[c + 3] << 8 | p[c + 4];
        }
    }
}

/* Applies the case's mutation to the buffer holding the target record. */
static void mutate(tamper_t *t, msp_buf_t *b, size_t off)
{
    size_t n = rec_len(b->base + off), end = off + n;
    switch (t->mut) {
    case FLIP:
        b->base[off + t->off] ^= 0x01;
        break;
    case TRUNCATE: {
        size_t len = n - 5 - 1;
        b->base[off + 3] = (uint8_t)(len >> 8);
        b->base[off + 4] = (uint8_t)len;
        memmove(b->base + end - 1, b->base + end, b->len - end);
        b->len--;
        break;
    }
    case DROP:
        memmove(b->base + off, b->base + end, b->len - end);
        b->len -= n;
        break;
    case REPLAY:
        msp_buf_reserve(b, n);
        memmove(b->base + end + n, b->base + end, b->len - end);
        memcpy(b->base + end, b->base + off, n);
        b->len += n;
        break;
    case REORDER:
        /* the record is held back and delivered after the next chunk on this link */
        memcpy(t->held, b->base + off, n);
        t->held_len = n;
        memmove(b->base + off, b->base + end, b->len - end);
        b->len -= n;
        break;
    }
}

static void hook(void *user, size_t link, int to_server, msp_buf_t *b)
{
    tamper_t *t = user;
    if (t->recording) {
        record_all(t, link, to_server, b);
        return;
    }
    if (link != t->link || to_server != t->to_server) {
        return;
    }
    if (t->held_len > 0 && t->done) {
        msp_buf_put(b, t->held, t->held_len);
        t->held_len = 0;
        return;
    }
    for (size_t off = 0; !t->done && off + 5 <= b->len; off += rec_len(b->base + off)) {
        if (t->count[link][to_server]++ == t->index) {
            t->done = 1;
            mutate(t, b, off);
            if (t->mut == REORDER && b->len > off) {
                /* the next record is in this chunk: put the held one right after it */
                size_t next_end = off + rec_len(b->base + off);
                msp_buf_reserve(b, t->held_len);
                memmove(b->base + next_end + t->held_len, b->base + next_end, b->len - next_end);
                memcpy(b->base + next_end, t->held, t->held_len);
                b->len += t->held_len;
                t->held_len = 0;
            }
            return;
        }
    }
}

/* The traffic of one run: handshake, data both ways in both contexts, then more data. */
static void traffic(net_t *net)
{
    net->echo = 1;
    net_pump(net);
    if (msp_tlmsp_conn_ready(net->client)) {
        msp_tlmsp_conn_send(net->client, 1, (const uint8_t *)"alpha", 5, &net->c2s[0]);
        msp_tlmsp_conn_send(net->client, 2, (const uint8_t *)"beta", 4, &net->c2s[0]);
        net_pump(net);
        msp_tlmsp_conn_send(net->client, 1, (const uint8_t *)"gamma", 5, &net->c2s[0]);
        net_pump(net);
    }
}

static const char *const expect_server[3] = {NULL, "alphagamma", "beta"};

/* Plaintext released must be a prefix of what was sent (the echo makes the client's the same). */
static int prefix_ok(const net_sink_t *s)
{
    for (int c = 1; c <= 2; c++) {
        const msp_buf_t *b = &s->data[c];
        if (b->len > strlen(expect_server[c]) || (b->len > 0 && memcmp(b->base, expect_server[c], b->len) != 0)) {
            return 0;
        }
    }
    return 1;
}

/* Who noticed: the first entity with an alert of its own (not a peer's). */
static int detector(const net_t *net, const char **who)
{
    int errs[4] = {net->client_err, net->mbox_err[0], net->mbox_err[1], net->server_err};
    static const char *const all[] = {"client", "m1", "m2", "server"};
    for (int i = 0; i < 4; i++) {
        if (errs[i] > 0 && errs[i] < 256) {
            *who = all[i];
            return errs[i];
        }
    }
    *who = "-";
    return 0;
}

static void fields_of(const rec_info_t *r, field_t *f, size_t *n)
{
    size_t k = 0, sid = r->index == 0 ? 0 : 4;
    f[k++] = (field_t){"type", 0};
    f[k++] = (field_t){"version", 1};
    f[k++] = (field_t){"length", 4};
    if (sid) {
        f[k++] = (field_t){"sid", 5};
    }
    size_t p = 5 + sid;
    if (r->flen > 0) {
        size_t q = p + 5 + r->flen + 16; /* ctx | flags | frag_len | fragment | writer MAC | forwarding MAC */
        f[k++] = (field_t){"ctx", p};
        f[k++] = (field_t){"flags", p + 1};
        f[k++] = (field_t){"frag_len", p + 4};
        f[k++] = (field_t){"nonce", p + 5};
        f[k++] = (field_t){"ciphertext", p + 5 + 12};
        f[k++] = (field_t){"tag", p + 5 + r->flen - 1};
        f[k++] = (field_t){"writer_mac", p + 5 + r->flen};
        f[k++] = (field_t){"fmac_id", q};
        f[k++] = (field_t){"fmac_order", q + 1};
        f[k++] = (field_t){"fmac_flags", q + 2};
        f[k++] = (field_t){"reader_check", q + 3};
        f[k++] = (field_t){"fmac_nonce", q + 19};
        f[k++] = (field_t){"check_mac", q + 31};
        if (5 + r->len > q + 47) {
            f[k++] = (field_t){"nAF", q + 47};
        }
    } else if (r->len > sid) {
        f[k++] = (field_t){"payload[0]", p};
        f[k++] = (field_t){"payload[mid]", p + (r->len - sid) / 2};
        f[k++] = (field_t){"payload[end]", p + r->len - sid - 1};
    }
    *n = k;
}

static const char *kind(const rec_info_t *r)
{
    static char buf[32];
    if (r->type == 22 && !r->post_ccs) {
        snprintf(buf, sizeof(buf), "hs(%u)", r->hs_type);
    } else {
        snprintf(buf, sizeof(buf), "%s%s",
                 r->type == 20   ? "ccs"
                 : r->type == 21 ? "alert"
                 : r->type == 22 ? "hs-enc"
                                 : "data",
                 "");
    }
    return buf;
}

typedef struct outcome {
    size_t cases, detected, stalled;
} outcome_t;

static void run_case(tamper_t *rec, const rec_info_t *r, int mut, const field_t *f, outcome_t *o)
{
    net_setup_t setup;
    net_t net;
    tamper_t *t = calloc(1, sizeof(*t));
    make_setup(&setup);
    t->link = r->link;
    t->to_server = r->to_server;
    t->index = r->index;
    t->mut = mut;
    t->off = f != NULL ? f->off : 0;
    assert_int_equal(net_open(&net, &setup), 0);
    net.tamper = hook;
    net.tamper_user = t;
    traffic(&net);
    const char *who;
    int alert = detector(&net, &who);
    int clean = prefix_ok(&net.at_server) && prefix_ok(&net.at_client);
    /* A change nobody could notice would have to leave the session intact and the data exact. */
    int intact = alert == 0 && net_ready(&net) && net.at_server.data[1].len == 10 && net.at_server.data[2].len == 4 &&
                 net.at_client.data[1].len == 10 && net.at_client.data[2].len == 4;
    print_message("| %zu%s | %-8s | %-3zu | %-14s | %-8s | %-6s | %s |\n", r->link, r->to_server ? ">" : "<", kind(r),
                  r->index, f != NULL ? f->name : "-", mut_name[mut], who,
                  alert != 0 ? msp_error_name(alert)
                  : intact   ? "no effect"
                             : "stalled");
    o->cases++;
    o->detected += alert != 0;
    /* Every case: no altered plaintext, and an alert; or the session intact (nothing changed that matters); or, where
     * bytes went missing (drop, a held-back last record, a longer record length), a stall that releases nothing
     * altered: nothing says more is not coming. */
    int may_stall = mut == DROP || mut == REORDER || (f != NULL && strcmp(f->name, "length") == 0);
    assert_true(clean);
    assert_true(alert != 0 || intact || may_stall);
    o->stalled += alert == 0 && !intact;
    (void)rec;
    net_close(&net);
    free(t);
}

static int setup_ids(void **state)
{
    (void)state;
    return net_identity_make(&server_id, "server", 1) | net_identity_make(&m_ids[0], "m1", 1) |
           net_identity_make(&m_ids[1], "m2", 1);
}

static int free_ids(void **state)
{
    (void)state;
    net_identity_free(&server_id);
    net_identity_free(&m_ids[0]);
    net_identity_free(&m_ids[1]);
    return 0;
}

static void test_matrix(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    tamper_t *rec = calloc(1, sizeof(*rec));
    make_setup(&setup);
    assert_int_equal(net_open(&net, &setup), 0);
    rec->recording = 1;
    net.tamper = hook;
    net.tamper_user = rec;
    traffic(&net);
    assert_true(net_ready(&net));
    assert_true(prefix_ok(&net.at_server));
    assert_int_equal(net.at_server.data[1].len, 10);
    net_close(&net);
    print_message("| hop | record | # | field | mutation | detected by | alert |\n|---|---|---|---|---|---|---|\n");
    outcome_t o = {0, 0, 0};
    for (size_t i = 0; i < rec->nrecs; i++) {
        const rec_info_t *r = &rec->recs[i];
        field_t f[32];
        size_t nf;
        fields_of(r, f, &nf);
        for (size_t k = 0; k < nf; k++) {
            run_case(rec, r, FLIP, &f[k], &o);
        }
        for (int m = TRUNCATE; m < NMUT; m++) {
            run_case(rec, r, m, NULL, &o);
        }
    }
    print_message("%zu cases: %zu detected with an alert, %zu stalled without releasing anything altered\n", o.cases,
                  o.detected, o.stalled);
    assert_true(o.detected > o.cases / 2);
    free(rec);
}

/* m2 may only read context 1: what a dishonest m2 can build with the keys it has. */
typedef struct rogue {
    net_t *net;
    int done;
} rogue_t;

static void rewrite_as_m2(void *user, size_t link, int to_server, msp_buf_t *b)
{
    rogue_t *r = user;
    if (r->done || link != 2 || !to_server || b->len < 10 || b->base[0] != 23) {
        return;
    }
    msp_tlmsp_mbox_t *m2 = r->net->m[1];
    msp_reader_t rd;
    msp_tlmsp_container_t *c = calloc(1, sizeof(*c));
    msp_reader_init(&rd, b->base + 9, rec_len(b->base) - 9);
    assert_int_equal(msp_tlmsp_container_parse(&rd, 1, c), MSP_OK);
    msp_buf_t out;
    msp_buf_init(&out, 1u << 20);
    m2->b.out = &out;
    m2->b.seq.tx.pending = 0; /* take the sequence number of the container it replaces */
    assert_int_equal(data_replace(&m2->b, 23, c, (const uint8_t *)"EVIL!", 5), MSP_OK);
    m2->b.out = NULL;
    b->len = 0;
    msp_buf_put(b, out.base, out.len);
    msp_buf_free(&out);
    free(c);
    r->done = 1;
}

static void test_readonly_middlebox_writes(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    rogue_t r = {&net, 0};
    make_setup(&setup);
    assert_int_equal(net_open(&net, &setup), 0);
    net_pump(&net);
    assert_true(net_ready(&net));
    net.tamper = rewrite_as_m2;
    net.tamper_user = &r;
    msp_tlmsp_conn_send(net.client, 1, (const uint8_t *)"alpha", 5, &net.c2s[0]);
    net_pump(&net);
    assert_true(r.done);
    /* it re-encrypted under the reader key it holds, but has no writer key: the server refuses (records 8) */
    assert_int_equal(net.server_err, MSP_ALERT_BAD_WRITER_MAC);
    assert_int_equal(net.at_server.data[1].len, 0);
    print_message("read-only m2 rewrites a container in context 1: server says %s\n", msp_error_name(net.server_err));
    net_close(&net);
}

static void test_readonly_middlebox_inserts(void **state)
{
    (void)state;
    net_setup_t setup;
    net_t net;
    make_setup(&setup);
    assert_int_equal(net_open(&net, &setup), 0);
    net_pump(&net);
    assert_true(net_ready(&net));
    /* the API refuses; a dishonest m2 builds the container itself */
    assert_int_equal(msp_tlmsp_mbox_send(net.m[1], 1, 1, (const uint8_t *)"EVIL!", 5, &net.c2s[2]), MSP_ERR_ARGUMENT);
    net.m[1]->b.out = &net.c2s[2];
    assert_int_equal(data_send(&net.m[1]->b, 23, 1, (const uint8_t *)"EVIL!", 5), MSP_OK);
    net.m[1]->b.out = NULL;
    net_pump(&net);
    assert_int_equal(net.server_err, MSP_ALERT_BAD_WRITER_MAC);
    assert_int_equal(net.at_server.data[1].len, 0);
    print_message("read-only m2 inserts into context 1: server says %s\n", msp_error_name(net.server_err));
    net_close(&net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_readonly_middlebox_writes),
        cmocka_unit_test(test_readonly_middlebox_inserts),
    };
    return cmocka_run_group_tests(tests, setup_ids, free_ids);
}
