/*
 * The TLMSP hello extensions against the reference's 1-middlebox session
 * (tlmsp-handshake/vectors-1mbox.txt): parse each, check the fields
 * tlmsp-handshake.md 3.5 states, rebuild byte-identically, and reject
 * every malformed variant with decode_error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "msp/tlmsp_hello.h"
#include "vectors.h"

static vec_file_t f;

static int setup(void **state)
{
    (void)state;
    return vec_load(&f, "tlmsp-handshake/vectors-1mbox.txt");
}

static int teardown(void **state)
{
    (void)state;
    vec_free(&f);
    return 0;
}

static size_t ext(const char *label, uint8_t *out, size_t max)
{
    long n = vec_hex(f.text, label, out, max);
    if (n <= 0) {
        fail_msg("vector '%s' missing", label);
    }
    return (size_t)n;
}

static void expect_address(const msp_tlmsp_address_t *a, const char *url)
{
    assert_int_equal(a->type, MSP_TLMSP_ADDR_URL);
    assert_int_equal(a->len, strlen(url));
    assert_memory_equal(a->bytes, url, a->len);
}

static void test_client_extension(void **state)
{
    (void)state;
    uint8_t data[512];
    size_t n = ext("ClientHello TLMSP ext 0xff06 data", data, sizeof(data));
    msp_tlmsp_ext_client_t *e = calloc(1, sizeof(*e));
    assert_int_equal(msp_tlmsp_ext_client_parse(data, n, e), MSP_OK);
    expect_address(&e->client, "tlmsp://localhost");
    expect_address(&e->server, "tlmsp://localhost:10482");
    assert_int_equal(e->discovery_ack, 0);
    assert_int_equal(e->middleboxes.n, 1);
    const msp_tlmsp_mbox_info_t *m = &e->middleboxes.m[0];
    assert_int_equal(m->id, 0x33);
    expect_address(&m->address, "tlmsp://localhost:10481");
    assert_int_equal(m->inserted, 0);
    assert_int_equal(m->transparent, 0);
    assert_int_equal(m->access[1], MSP_TLMSP_ACCESS_RW);
    assert_int_equal(m->access[2], MSP_TLMSP_ACCESS_NONE);
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_tlmsp_ext_client_build(e, &b), MSP_OK);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.base, data, n);
    /* Every truncation is a decode error; so is a trailing byte. */
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(msp_tlmsp_ext_client_parse(data, cut, e), MSP_ALERT_DECODE_ERROR);
    }
    data[n] = 0;
    assert_int_equal(msp_tlmsp_ext_client_parse(data, n + 1, e), MSP_ALERT_DECODE_ERROR);
    msp_buf_free(&b);
    free(e);
}

/* One byte of the 3.5 example changed at a time, each to a value the reader must refuse. */
static void test_client_extension_rules(void **state)
{
    (void)state;
    uint8_t data[512], bad[512];
    size_t n = ext("ClientHello TLMSP ext 0xff06 data", data, sizeof(data));
    msp_tlmsp_ext_client_t *e = calloc(1, sizeof(*e));
    /* Offsets in the example: version 0..1, client address 2.., list after the two addresses. */
    size_t list = 2 + 3 + 0x11 + 3 + 0x17 + 1; /* the middlebox list's u16 length */
    size_t id = list + 2, inserted = id + 1 + 3 + 0x17, transparent = inserted + 1, ticket = transparent + 1;
    size_t auth = ticket + 2 + 2;
    const struct {
        const char *what;
        size_t at;
        uint8_t value;
    } cases[] = {
        {"major version", 0, 2},    {"id 0x01 (the client)", id, 0x01}, {"id 0xfe (the server)", id, 0xfe},
        {"forbidden", inserted, 2}, {"transparent 2", transparent, 2},  {"non-empty ticket", ticket + 1, 1},
        {"auth 2", auth, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, data, n);
        bad[cases[i].at] = cases[i].value;
        if (msp_tlmsp_ext_client_parse(bad, n, e) != MSP_ALERT_DECODE_ERROR) {
            fail_msg("%s accepted", cases[i].what);
        }
    }
    /* A NUL byte inside an address; an address type past MAC. */
    memcpy(bad, data, n);
    bad[2 + 3 + 4] = 0;
    assert_int_equal(msp_tlmsp_ext_client_parse(bad, n, e), MSP_ALERT_DECODE_ERROR);
    memcpy(bad, data, n);
    bad[2] = 5;
    assert_int_equal(msp_tlmsp_ext_client_parse(bad, n, e), MSP_ALERT_DECODE_ERROR);
    free(e);
}

static void test_duplicate_and_conflicting_entries(void **state)
{
    (void)state;
    msp_tlmsp_ext_client_t *e = calloc(1, sizeof(*e)), *back = calloc(1, sizeof(*back));
    static const uint8_t url[] = "tlmsp://m";
    e->client = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_FQDN, url, 9};
    e->server = (msp_tlmsp_address_t){MSP_TLMSP_ADDR_URL, url, 0}; /* empty is tolerated */
    e->middleboxes.n = 2;
    for (int i = 0; i < 2; i++) {
        e->middleboxes.m[i].id = (uint8_t)(0x10 + i);
        e->middleboxes.m[i].address = e->client;
        e->middleboxes.m[i].access[5] = MSP_TLMSP_ACCESS_R;
        e->middleboxes.m[i].access[3] = MSP_TLMSP_ACCESS_RW;
    }
    e->discovery_ack = 1;
    e->sid = 0x01020304;
    static const uint8_t hash[32] = {9};
    e->handshake_hash = hash;
    e->handshake_hash_len = 32;
    e->discovered = e->middleboxes;
    msp_buf_t b;
    msp_buf_init(&b, 1 << 16);
    assert_int_equal(msp_tlmsp_ext_client_build(e, &b), MSP_OK);
    assert_int_equal(msp_tlmsp_ext_client_parse(b.base, b.len, back), MSP_OK);
    assert_int_equal(back->sid, 0x01020304);
    assert_int_equal(back->handshake_hash_len, 32);
    assert_int_equal(back->discovered.n, 2);
    assert_int_equal(back->middleboxes.m[1].access[3], MSP_TLMSP_ACCESS_RW);
    assert_int_equal(back->middleboxes.m[1].access[5], MSP_TLMSP_ACCESS_R);
    assert_int_equal(back->server.len, 0);
    /* The same id twice in one list. */
    e->middleboxes.m[1].id = 0x10;
    b.len = 0;
    assert_int_equal(msp_tlmsp_ext_client_build(e, &b), MSP_OK);
    assert_int_equal(msp_tlmsp_ext_client_parse(b.base, b.len, back), MSP_ALERT_DECODE_ERROR);
    msp_buf_free(&b);
    /* A repeated access pair: identical is accepted, conflicting is not. */
    /* version | two empty URL addresses | ack 0 | list of 13 bytes: id 0x20, empty address, static,
     * not transparent, empty ticket, 2 access entries */
    static const uint8_t same[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0x20, 0, 0, 0, 0, 0, 0, 0, 2, 7, 1, 7, 1};
    static const uint8_t conflict[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0x20, 0, 0, 0, 0, 0, 0, 0, 2, 7, 1, 7, 0};
    assert_int_equal(msp_tlmsp_ext_client_parse(same, sizeof(same), back), MSP_OK);
    assert_int_equal(back->middleboxes.m[0].access[7], MSP_TLMSP_ACCESS_RW);
    assert_int_equal(msp_tlmsp_ext_client_parse(conflict, sizeof(conflict), back), MSP_ALERT_DECODE_ERROR);
    free(e);
    free(back);
}

static void test_server_extension(void **state)
{
    (void)state;
    uint8_t data[512], sid[4];
    size_t n = ext("ServerHello TLMSP ext 0xff06 data", data, sizeof(data));
    assert_int_equal(vec_hex(f.text, "sid", sid, sizeof(sid)), 4);
    msp_tlmsp_ext_server_t *e = calloc(1, sizeof(*e));
    assert_int_equal(msp_tlmsp_ext_server_parse(data, n, e), MSP_OK);
    assert_int_equal(e->sid, (uint32_t)sid[0] << 24 | (uint32_t)sid[1] << 16 | (uint32_t)sid[2] << 8 | sid[3]);
    expect_address(&e->client, "tlmsp://localhost");
    assert_int_equal(e->middleboxes.n, 1);
    assert_int_equal(e->middleboxes.m[0].id, 0x33);
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_tlmsp_ext_server_build(e, &b), MSP_OK);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.base, data, n);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(msp_tlmsp_ext_server_parse(data, cut, e), MSP_ALERT_DECODE_ERROR);
    }
    msp_buf_free(&b);
    free(e);
}

static void test_context_list(void **state)
{
    (void)state;
    uint8_t data[64];
    size_t n = ext("ClientHello ContextList 0xff07 data", data, sizeof(data));
    static msp_tlmsp_context_list_t c;
    assert_int_equal(msp_tlmsp_context_list_parse(data, n, &c), MSP_OK);
    assert_true(c.present[1] && c.present[2] && !c.present[0] && !c.present[3]);
    assert_int_equal(c.purpose_len[1], 3);
    assert_memory_equal(c.purpose[1], "web", 3);
    assert_int_equal(c.purpose_len[2], 0);
    assert_int_equal(c.audit[1], 0);
    msp_buf_t b;
    msp_buf_init(&b, 1024);
    assert_int_equal(msp_tlmsp_context_list_build(&c, &b), MSP_OK);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.base, data, n);
    msp_buf_free(&b);
    /* context 0, a repeated context, audit 2, origin_verification 1 */
    static const uint8_t zero[] = {0, 4, 0, 0, 0, 0};
    static const uint8_t twice[] = {0, 8, 1, 0, 0, 0, 1, 0, 0, 0};
    static const uint8_t audit[] = {0, 4, 1, 2, 0, 0};
    static const uint8_t origin[] = {0, 4, 1, 0, 1, 0};
    assert_int_equal(msp_tlmsp_context_list_parse(zero, sizeof(zero), &c), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_context_list_parse(twice, sizeof(twice), &c), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_context_list_parse(audit, sizeof(audit), &c), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_context_list_parse(origin, sizeof(origin), &c), MSP_ALERT_DECODE_ERROR);
}

/* 1.10: at most 251 middleboxes in a list. */
static void test_list_limit(void **state)
{
    (void)state;
    msp_tlmsp_ext_server_t *e = calloc(1, sizeof(*e));
    e->middleboxes.n = MSP_TLMSP_MAX_MIDDLEBOXES;
    for (size_t i = 0; i < e->middleboxes.n; i++) {
        e->middleboxes.m[i].id = (uint8_t)(MSP_TLMSP_ID_FIRST_MIDDLEBOX + i);
    }
    msp_buf_t b;
    msp_buf_init(&b, 1 << 20);
    assert_int_equal(msp_tlmsp_ext_server_build(e, &b), MSP_OK);
    assert_int_equal(msp_tlmsp_ext_server_parse(b.base, b.len, e), MSP_OK);
    assert_int_equal(e->middleboxes.n, MSP_TLMSP_MAX_MIDDLEBOXES);
    /* A 252nd entry (id 0xfd) does not fit. */
    static const uint8_t extra[] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t list_len = (size_t)b.base[6 + 6] << 8 | b.base[6 + 6 + 1]; /* version, sid, two empty addresses */
    list_len += sizeof(extra);
    b.base[12] = (uint8_t)(list_len >> 8);
    b.base[13] = (uint8_t)list_len;
    msp_buf_put(&b, extra, sizeof(extra));
    assert_int_equal(msp_tlmsp_ext_server_parse(b.base, b.len, e), MSP_ALERT_DECODE_ERROR);
    msp_buf_free(&b);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_extension),
        cmocka_unit_test(test_client_extension_rules),
        cmocka_unit_test(test_duplicate_and_conflicting_entries),
        cmocka_unit_test(test_server_extension),
        cmocka_unit_test(test_context_list),
        cmocka_unit_test(test_list_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
