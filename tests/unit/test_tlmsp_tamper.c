/*
 * The tamper matrix (issue 4): a session with two middleboxes is run once to
 * record every record on every hop and direction; then, for each record and
 * each mutation (a bit flip in each field, truncation, drop, replay,
 * reorder), the session is run again with that one change made on the wire.
 *
 * Every outcome is pinned in tests/vectors/tlmsp-tamper.tsv: who noticed,
 * with which alert, what every entity ended with, and how much plaintext each
 * endpoint released per context. A case whose outcome differs from the table,
 * or a case missing from it or not in it, fails the test by name: a check
 * that stops working (a MAC compared with itself, or only in part) turns an
 * alert into "no effect" or moves it to another entity, and the table says
 * so. MSP_TAMPER_WRITE=PATH writes the table instead, and the run fails so
 * that a rewrite is always a deliberate act (docs/tlmsp-tamper.md).
 *
 * Independent of the table, every case must release no altered plaintext
 * and end in an alert, or leave the session intact, or (only where bytes
 * went missing) stall. Then a read-only middlebox that writes, and one that
 * inserts without write access. Forgeries that get exactly one check wrong,
 * which no bit flip can do, are in test_tlmsp_forge.c.
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
#include "reader.h"
#include "net.h"

#define TABLE_PATH MSP_SOURCE_DIR "/tests/vectors/tlmsp-tamper.tsv"
#define MAX_RECS 512
#define MAX_FIELDS 96
#define LINE_MAX_LEN 512
#define KEY_COLS 6 /* hop dir index kind field mutation: what names a case */

static const char TABLE_HEADER[] = "hop\tdir\tindex\tkind\tfield\tmutation\toffset\toutcome\tdetector\talert\tcode\t"
                                   "client\tm1\tm2\tserver\tsrv_ctx1\tsrv_ctx2\tcli_ctx1\tcli_ctx2";

enum mut { FLIP, TRUNCATE, DROP, REPLAY, REORDER, NMUT };
static const char *const mut_name[NMUT] = {"flip", "truncate", "drop", "replay", "reorder"};
static const char *const hop_name[3] = {"client-m1", "m1-m2", "m2-server"};

typedef struct field {
    char name[32];
    size_t off; /* from the start of the record */
} field_t;

typedef struct rec_info {
    size_t link;
    int to_server;
    size_t index; /* among the records on this link and direction */
    char kind[32];
    field_t f[MAX_FIELDS];
    size_t nf;
} rec_info_t;

typedef struct tamper {
    int recording;
    rec_info_t *recs;
    size_t nrecs;
    size_t count[3][2];
    int seen_ccs[3][2];
    size_t sealed[3][2]; /* handshake records after the ChangeCipherSpec */
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

/* ---- the fields of a record, from its parsed structure ---- */

static void add(rec_info_t *r, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add(rec_info_t *r, size_t off, const char *fmt, ...)
{
    assert_true(r->nf < MAX_FIELDS);
    field_t *f = &r->f[r->nf++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->name, sizeof(f->name), fmt, ap);
    va_end(ap);
    f->off = off;
}

/* The first, a middle and the last byte of a field of len bytes, each named by its index. */
static void add_bytes(rec_info_t *r, size_t off, size_t len, const char *pre, const char *name)
{
    size_t at[3] = {0, len / 2, len - 1};
    for (size_t i = 0; i < 3; i++) {
        if (i == 0 || at[i] != at[i - 1]) {
            add(r, off + at[i], "%s%s[%zu]", pre, name, at[i]);
        }
    }
}

static void header_fields(rec_info_t *r)
{
    add(r, 0, "type");
    add(r, 1, "version");
    add_bytes(r, 3, 2, "", "length");
    if (r->index > 0) { /* only the first record each way has no Sid */
        add(r, 5, "sid");
    }
}

/* One forwarding MAC at off: the mandatory one keeps the names the matrix always had, an additional one is afN. */
static void fmac_fields(rec_info_t *r, size_t off, const char *pre, int mandatory)
{
    add(r, off, "%s%s", pre, mandatory ? "fmac_id" : "id");
    add(r, off + 1, "%s%s", pre, mandatory ? "fmac_order" : "order");
    add(r, off + 2, "%s%s", pre, mandatory ? "fmac_flags" : "flags");
    add_bytes(r, off + 3, 16, pre, "reader_check");
    add_bytes(r, off + 19, 12, pre, mandatory ? "fmac_nonce" : "nonce");
    add_bytes(r, off + 31, 16, pre, "check_mac");
}

static void container_fields(rec_info_t *r, const uint8_t *rec)
{
    msp_tlmsp_container_t *c = calloc(1, sizeof(*c));
    msp_reader_t rd;
    assert_non_null(c);
    msp_reader_init(&rd, rec + 9, net_record_len(rec) - 9);
    assert_int_equal(msp_tlmsp_container_parse(&rd, 1, c), MSP_OK);
    size_t frag = (size_t)(c->fragment - rec);
    add(r, 9, "ctx");
    add(r, 10, "flags");
    add_bytes(r, frag - 2, 2, "", "frag_len");
    add(r, frag, "nonce");
    add(r, frag + 12, "ciphertext");
    add_bytes(r, frag + c->fragment_len - 16, 16, "", "tag");
    add_bytes(r, (size_t)(c->writer_mac - rec), 16, "", "writer_mac");
    fmac_fields(r, (size_t)(c->fmacs[0].reader_check - rec) - 3, "", 1);
    if (c->flags & MSP_TLMSP_CF_ADDITIONAL_FORWARDING_MACS) {
        add(r, (size_t)(c->fmacs[0].check - rec) + 16, "nAF");
    }
    for (size_t i = 1; i < c->nfmacs; i++) {
        char pre[24];
        snprintf(pre, sizeof(pre), "af%zu.", i);
        fmac_fields(r, (size_t)(c->fmacs[i].reader_check - rec) - 3, pre, 0);
    }
    snprintf(r->kind, sizeof(r->kind), "%s(ctx%u)", rec[0] == MSP_TLMSP_CT_ALERT ? "alert" : "data", c->context);
    free(c);
}

/* The engine's own names (conn_states.c); "handshake" for a type the tables do not know, as the pinned table says. */
static const char *hs_name(uint8_t t)
{
    const char *name = hs_type_name(MSP_TLMSP_CT_HANDSHAKE, t);
    return strcmp(name, "?") == 0 ? "handshake" : name;
}

/* A handshake record after the ChangeCipherSpec: sid | nonce(12) | ciphertext | tag(16) (records 3). The first
 * each way is the Finished, the others MiddleboxFinished (handshake 4.3 step 6, 4.4 step 8). */
static void sealed_fields(rec_info_t *r, const uint8_t *rec, size_t nth)
{
    size_t n = net_record_len(rec);
    add(r, 9, "nonce[0]");
    add(r, 21, "ciphertext");
    add_bytes(r, n - 16, 16, "", "tag");
    snprintf(r->kind, sizeof(r->kind), "%s", nth == 0 ? "Finished" : "MiddleboxFinished");
}

/* Plaintext handshake and ChangeCipherSpec: the first, middle and last payload byte. */
static void payload_fields(rec_info_t *r, const uint8_t *rec)
{
    size_t sid = r->index > 0 ? 4 : 0, len = net_record_len(rec) - 5 - sid, p = 5 + sid;
    if (rec[0] == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC) {
        snprintf(r->kind, sizeof(r->kind), "ChangeCipherSpec");
    } else {
        snprintf(r->kind, sizeof(r->kind), "%s", len > 0 ? hs_name(rec[p]) : "handshake");
    }
    if (len > 0) {
        add(r, p, "payload[0]");
        add(r, p + len / 2, "payload[mid]");
        add(r, p + len - 1, "payload[end]");
    }
}

static void describe(tamper_t *t, rec_info_t *r, const uint8_t *rec)
{
    int *ccs = &t->seen_ccs[r->link][r->to_server];
    header_fields(r);
    if (rec[0] == MSP_TLMSP_CT_APPLICATION_DATA || (rec[0] == MSP_TLMSP_CT_ALERT && *ccs)) {
        container_fields(r, rec);
    } else if (rec[0] == MSP_TLMSP_CT_HANDSHAKE && *ccs) {
        sealed_fields(r, rec, t->sealed[r->link][r->to_server]++);
    } else {
        payload_fields(r, rec);
    }
    *ccs |= rec[0] == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC;
}

static void record_all(tamper_t *t, size_t link, int to_server, const msp_buf_t *b)
{
    for (size_t off = 0; off + 5 <= b->len; off += net_record_len(b->base + off)) {
        assert_true(t->nrecs < MAX_RECS);
        rec_info_t *r = &t->recs[t->nrecs++];
        r->link = link;
        r->to_server = to_server;
        r->index = t->count[link][to_server]++;
        describe(t, r, b->base + off);
    }
}

/* ---- running one case ---- */

/* Applies the case's mutation to the buffer holding the target record. */
static void mutate(tamper_t *t, msp_buf_t *b, size_t off)
{
    size_t n = net_record_len(b->base + off), end = off + n;
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
    for (size_t off = 0; !t->done && off + 5 <= b->len; off += net_record_len(b->base + off)) {
        if (t->count[link][to_server]++ == t->index) {
            t->done = 1;
            mutate(t, b, off);
            if (t->mut == REORDER && b->len > off) {
                /* the next record is in this chunk: put the held one right after it */
                size_t next_end = off + net_record_len(b->base + off);
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

static int exact(const net_sink_t *s)
{
    return s->data[1].len == strlen(expect_server[1]) && s->data[2].len == strlen(expect_server[2]);
}

/* What one case did: every entity's error, in path order, and the plaintext the endpoints released. */
typedef struct result {
    int err[4];
    size_t released[4]; /* server ctx 1, 2; client ctx 1, 2 */
    int ready;
    int clean; /* what each endpoint released is a prefix of what was sent */
} result_t;

static const char *const entity[4] = {"client", "m1", "m2", "server"};

/* Who noticed: the first entity, in path order, with an alert of its own (not a peer's). */
static int detector(const result_t *r, const char **who)
{
    for (int i = 0; i < 4; i++) {
        if (r->err[i] > 0 && r->err[i] < MSP_ERR_CLASS_PEER_ALERT) {
            *who = entity[i];
            return r->err[i];
        }
    }
    *who = "-";
    return 0;
}

static int all_clear(const result_t *r)
{
    return r->err[0] == 0 && r->err[1] == 0 && r->err[2] == 0 && r->err[3] == 0;
}

/* An entity's end state: "-" nothing, "177" an alert it raised, "rx177" one it received, "local:0x206" neither. */
static void err_text(int e, char *buf, size_t n)
{
    if (e == 0) {
        snprintf(buf, n, "-");
    } else if (e > 0 && e < MSP_ERR_CLASS_PEER_ALERT) {
        snprintf(buf, n, "%d", e);
    } else if (MSP_ERR_IS_PEER_ALERT(e)) {
        snprintf(buf, n, "rx%d", e - MSP_ERR_CLASS_PEER_ALERT);
    } else {
        snprintf(buf, n, "local:0x%03x", (unsigned)e);
    }
}

/* Nothing anyone can see changed: no error anywhere, every entity ready, every byte delivered both ways. */
static int intact(const result_t *r)
{
    size_t one = strlen(expect_server[1]), two = strlen(expect_server[2]);
    return all_clear(r) && r->ready && r->released[0] == one && r->released[1] == two && r->released[2] == one &&
           r->released[3] == two;
}

static const char *outcome_word(const result_t *r)
{
    const char *who;
    return detector(r, &who) != 0 ? "alert" : intact(r) ? "no_effect" : "stalled";
}

/* The table line of one case (TABLE_HEADER's columns). */
static char *case_line(const rec_info_t *r, const field_t *f, int mut, const result_t *res)
{
    const char *who;
    int alert = detector(res, &who);
    char e[4][24], code[8] = "-";
    for (int i = 0; i < 4; i++) {
        err_text(res->err[i], e[i], sizeof(e[i]));
    }
    if (alert != 0) {
        snprintf(code, sizeof(code), "%d", alert);
    }
    char *line = malloc(LINE_MAX_LEN);
    assert_non_null(line);
    int n = snprintf(
        line, LINE_MAX_LEN, "%s\t%s\t%zu\t%s\t%s\t%s\t%zu\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%zu\t%zu\t%zu\t%zu",
        hop_name[r->link], r->to_server ? "c2s" : "s2c", r->index, r->kind, f != NULL ? f->name : "-", mut_name[mut],
        f != NULL ? f->off : 0, outcome_word(res), who, alert != 0 ? msp_error_name(alert) : "-", code, e[0], e[1],
        e[2], e[3], res->released[0], res->released[1], res->released[2], res->released[3]);
    assert_true(n > 0 && n < LINE_MAX_LEN);
    return line;
}

typedef struct outcome {
    size_t cases, detected, stalled, intact;
    size_t broken; /* cases that break an invariant */
    char **lines;
} outcome_t;

static void run_one(const rec_info_t *r, int mut, const field_t *f, result_t *res)
{
    net_setup_t setup;
    net_t net;
    tamper_t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    net_two_mbox_setup(&setup);
    t->link = r->link;
    t->to_server = r->to_server;
    t->index = r->index;
    t->mut = mut;
    t->off = f != NULL ? f->off : 0;
    assert_int_equal(net_open(&net, &setup), 0);
    net.tamper = hook;
    net.tamper_user = t;
    traffic(&net);
    assert_true(t->done);
    int err[4] = {net.client_err, net.mbox_err[0], net.mbox_err[1], net.server_err};
    memcpy(res->err, err, sizeof(err));
    res->released[0] = net.at_server.data[1].len;
    res->released[1] = net.at_server.data[2].len;
    res->released[2] = net.at_client.data[1].len;
    res->released[3] = net.at_client.data[2].len;
    res->ready = net_ready(&net);
    res->clean = prefix_ok(&net.at_server) && prefix_ok(&net.at_client);
    net_close(&net);
    free(t);
}

static void run_case(const rec_info_t *r, int mut, const field_t *f, outcome_t *o)
{
    result_t res;
    run_one(r, mut, f, &res);
    char *line = case_line(r, f, mut, &res);
    const char *who;
    int alert = detector(&res, &who), unchanged = intact(&res);
    /* An alert; or the session intact (nothing changed that matters); or, where bytes went missing (drop, a
     * held-back last record, a longer record length), a stall: nothing says more is not coming. */
    int may_stall = mut == DROP || mut == REORDER || (f != NULL && strncmp(f->name, "length[", 7) == 0);
    if (!res.clean) {
        print_message("INVARIANT altered plaintext released: %s\n", line);
        o->broken++;
    } else if (!(alert != 0 || unchanged || may_stall)) {
        print_message("INVARIANT stalled where nothing went missing: %s\n", line);
        o->broken++;
    }
    o->lines[o->cases++] = line;
    o->detected += alert != 0;
    o->intact += alert == 0 && unchanged;
    o->stalled += alert == 0 && !unchanged;
}

/* ---- the pinned table ---- */

typedef struct table {
    char **line;
    size_t n;
} table_t;

static size_t key_len(const char *line)
{
    const char *p = line;
    for (int tabs = 0; *p != '\0'; p++) {
        if (*p == '\t' && ++tabs == KEY_COLS) {
            break;
        }
    }
    return (size_t)(p - line);
}

static int same_key(const char *a, const char *b)
{
    size_t n = key_len(a);
    return n == key_len(b) && memcmp(a, b, n) == 0;
}

/* The case a line names, readable: hop=m1-m2 dir=c2s ... */
/* The next tab-separated column of *p: its length; *p moves past it and its tab. */
static size_t next_col(const char **p, const char **col)
{
    size_t len = strcspn(*p, "\t");
    *col = *p;
    *p += (*p)[len] != '\0' ? len + 1 : len;
    return len;
}

/* The case a line names, readable: "hop=m1-m2 dir=c2s index=13 ..." (names from TABLE_HEADER). */
static void case_name(const char *line, char *out, size_t n)
{
    const char *h = TABLE_HEADER, *name, *val;
    size_t w = 0;
    out[0] = '\0';
    for (int c = 0; c < KEY_COLS && w < n; c++) {
        size_t hn = next_col(&h, &name), vn = next_col(&line, &val);
        w += (size_t)snprintf(out + w, n - w, "%s%.*s=%.*s", c > 0 ? " " : "", (int)hn, name, (int)vn, val);
    }
}

/* The columns that differ, as "name expected x, got y; ..." */
static void diff_cols(const char *want, const char *got, char *out, size_t n)
{
    const char *h = TABLE_HEADER, *name, *a, *b;
    size_t w = 0;
    out[0] = '\0';
    while (*h != '\0' && w < n) {
        size_t hn = next_col(&h, &name), an = next_col(&want, &a), bn = next_col(&got, &b);
        if (an != bn || memcmp(a, b, an) != 0) {
            w += (size_t)snprintf(out + w, n - w, "%.*s expected %.*s, got %.*s; ", (int)hn, name, (int)an, a, (int)bn,
                                  b);
        }
    }
}

static int load_table(const char *path, table_t *t)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int header = 0;
    size_t cap_lines = 0;
    t->n = 0;
    t->line = NULL;
    if (f == NULL) {
        return -1;
    }
    while ((n = getline(&buf, &cap, f)) > 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
            buf[--n] = '\0';
        }
        if (!header) {
            header = 1;
            if (strcmp(buf, TABLE_HEADER) != 0) {
                print_message("%s: header is not\n%s\n", path, TABLE_HEADER);
                t->n = 0;
                break;
            }
        } else if (n > 0) {
            if (t->n == cap_lines) {
                cap_lines = cap_lines > 0 ? 2 * cap_lines : 2048;
                t->line = realloc(t->line, cap_lines * sizeof(*t->line));
                assert_non_null(t->line);
            }
            t->line[t->n++] = strdup(buf);
        }
    }
    free(buf);
    fclose(f);
    return header && t->n > 0 ? 0 : -1;
}

static void free_lines(char **line, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(line[i]);
    }
    free(line);
}

/* The index of the line of want with got's key, trying the same position first; -1 if none. */
static long find_case(const table_t *want, const char *got, size_t hint, const char *used)
{
    if (hint < want->n && !used[hint] && same_key(want->line[hint], got)) {
        return (long)hint;
    }
    for (size_t j = 0; j < want->n; j++) {
        if (!used[j] && same_key(want->line[j], got)) {
            return (long)j;
        }
    }
    return -1;
}

/* Every case against the table; prints each difference and returns how many there are. */
static size_t compare(const table_t *want, char **got, size_t ngot)
{
    size_t bad = 0;
    char *used = calloc(want->n + 1, 1);
    char name[256], diff[1024];
    assert_non_null(used);
    for (size_t i = 0; i < ngot; i++) {
        long j = find_case(want, got[i], i, used);
        case_name(got[i], name, sizeof(name));
        if (j < 0) {
            print_message("EXTRA case %s, not in the table: got %s\n", name, got[i]);
            bad++;
            continue;
        }
        used[j] = 1;
        if (strcmp(want->line[j], got[i]) != 0) {
            diff_cols(want->line[j], got[i], diff, sizeof(diff));
            print_message("CHANGED case %s: %s\n  expected %s\n  got      %s\n", name, diff, want->line[j], got[i]);
            bad++;
        }
    }
    for (size_t j = 0; j < want->n; j++) {
        if (!used[j]) {
            case_name(want->line[j], name, sizeof(name));
            print_message("MISSING case %s: expected %s\n", name, want->line[j]);
            bad++;
        }
    }
    free(used);
    return bad;
}

static int write_table(const char *path, char **lines, size_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return 0;
    }
    int ok = fprintf(f, "%s\n", TABLE_HEADER) > 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = fprintf(f, "%s\n", lines[i]) > 0;
    }
    return fclose(f) == 0 && ok;
}

/*
 * Compares with the pinned table, or, with MSP_TAMPER_WRITE=PATH, writes it there. Returns why the test fails, in
 * msg, or 0 when every case matched: a rewrite always fails, so that it can never pass silently.
 */
static int check_table(char **lines, size_t n, char *msg, size_t msg_len)
{
    const char *out = getenv("MSP_TAMPER_WRITE");
    if (out != NULL && *out != '\0') {
        int ok = write_table(out, lines, n);
        snprintf(msg, msg_len,
                 ok ? "MSP_TAMPER_WRITE: wrote %zu cases to %s and compared nothing; review the diff, then run again "
                      "without MSP_TAMPER_WRITE"
                    : "MSP_TAMPER_WRITE: could not write %zu cases to %s",
                 n, out);
        return -1;
    }
    table_t want;
    if (load_table(TABLE_PATH, &want) != 0) {
        free_lines(want.line, want.n);
        snprintf(msg, msg_len, "cannot read the pinned table %s (regenerate with MSP_TAMPER_WRITE=PATH)", TABLE_PATH);
        return -1;
    }
    size_t bad = compare(&want, lines, n);
    snprintf(msg, msg_len, "%zu of %zu cases differ from %s (%zu pinned); see CHANGED/MISSING/EXTRA above", bad, n,
             TABLE_PATH, want.n);
    free_lines(want.line, want.n);
    return bad > 0 ? -1 : 0;
}

/* One clean run through the hook: every record on every hop and direction, with its fields. */
static tamper_t *record_session(void)
{
    net_setup_t setup;
    net_t net;
    tamper_t *rec = calloc(1, sizeof(*rec));
    assert_non_null(rec);
    rec->recs = calloc(MAX_RECS, sizeof(*rec->recs));
    assert_non_null(rec->recs);
    net_two_mbox_setup(&setup);
    assert_int_equal(net_open(&net, &setup), 0);
    rec->recording = 1;
    net.tamper = hook;
    net.tamper_user = rec;
    traffic(&net);
    assert_true(net_ready(&net));
    assert_true(prefix_ok(&net.at_server) && exact(&net.at_server));
    assert_true(prefix_ok(&net.at_client) && exact(&net.at_client));
    net_close(&net);
    return rec;
}

static void test_matrix(void **state)
{
    (void)state;
    tamper_t *rec = record_session();
    outcome_t o = {0, 0, 0, 0, 0, NULL};
    size_t max = 0;
    for (size_t i = 0; i < rec->nrecs; i++) {
        max += rec->recs[i].nf + NMUT - 1;
    }
    o.lines = calloc(max, sizeof(*o.lines));
    assert_non_null(o.lines);
    for (size_t i = 0; i < rec->nrecs; i++) {
        const rec_info_t *r = &rec->recs[i];
        for (size_t k = 0; k < r->nf; k++) {
            run_case(r, FLIP, &r->f[k], &o);
        }
        for (int m = TRUNCATE; m < NMUT; m++) {
            run_case(r, m, NULL, &o);
        }
    }
    print_message("%zu records, %zu cases: %zu ended in an alert, %zu stalled without releasing anything altered, "
                  "%zu had no effect\n",
                  rec->nrecs, o.cases, o.detected, o.stalled, o.intact);
    char msg[512];
    int ret = check_table(o.lines, o.cases, msg, sizeof(msg));
    if (o.broken > 0) {
        snprintf(msg, sizeof(msg), "%zu cases break an invariant (INVARIANT above)", o.broken);
        ret = -1;
    }
    free_lines(o.lines, o.cases);
    free(rec->recs);
    free(rec);
    if (ret != 0) {
        fail_msg("%s", msg);
    }
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
    msp_reader_init(&rd, b->base + 9, net_record_len(b->base) - 9);
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
    net_two_mbox_setup(&setup);
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
    net_two_mbox_setup(&setup);
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
    return cmocka_run_group_tests(tests, net_two_mbox_ids_make, net_two_mbox_ids_free);
}
