/*
 * Discovery with reconnect (tlmsp-handshake.md 7.2) on the reference's own
 * capture (tlmsp-handshake/sample-discovery): the first attempt's
 * ServerHello inserts a middlebox; the second ClientHello carries
 * discovery_ack = 1, the initial list, the first Sid, the SHA-256 of the
 * first attempt's ClientHello..ServerHelloDone and the discovered list; the
 * second ServerHello returns that list under the same Sid. Every TLMSP
 * extension of both attempts rebuilds byte-identically, including the
 * reference's 255-context ContextList of the second attempt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "capture.h"
#include "msp/error.h"
#include "reader.h"
#include "msp/tlmsp_hello.h"

#define FIRST_HOP_PORT 10441

static cap_file_t cap;

static int setup(void **state)
{
    (void)state;
    return cap_load("tlmsp-handshake/sample-discovery/cap.pcap", &cap);
}

static int teardown(void **state)
{
    (void)state;
    cap_free(&cap);
    return 0;
}

/* The k-th stream (in capture order) leaving or arriving at port. */
static const cap_stream_t *nth(uint16_t port, int from, size_t k)
{
    for (size_t i = 0; i < cap.n; i++) {
        if ((from ? cap.s[i].sport : cap.s[i].dport) == port && cap.s[i].len > 0 && k-- == 0) {
            return &cap.s[i];
        }
    }
    fail_msg("no stream %zu %s port %u", k, from ? "from" : "to", port);
    return NULL;
}

/* An extension's data in a hello body (ClientHello: skip session_id, suites, compression). */
static int find_ext(const cap_msg_t *m, uint16_t want, const uint8_t **data, size_t *len)
{
    msp_reader_t r, v, exts;
    uint16_t u16;
    uint8_t u8;
    msp_reader_init(&r, m->body, m->len);
    assert_int_equal(msp_read_u16(&r, &u16), MSP_OK);
    assert_int_equal(msp_read_bytes(&r, 32, data), MSP_OK);
    assert_int_equal(msp_read_block(&r, 1, &v), MSP_OK);
    if (m->type == MSP_TLMSP_HT_CLIENT_HELLO) {
        assert_int_equal(msp_read_block(&r, 2, &v), MSP_OK);
        assert_int_equal(msp_read_block(&r, 1, &v), MSP_OK);
    } else {
        assert_int_equal(msp_read_u16(&r, &u16), MSP_OK);
        assert_int_equal(msp_read_u8(&r, &u8), MSP_OK);
    }
    assert_int_equal(msp_read_block(&r, 2, &exts), MSP_OK);
    while (msp_reader_left(&exts) > 0) {
        assert_int_equal(msp_read_u16(&exts, &u16), MSP_OK);
        assert_int_equal(msp_read_block(&exts, 2, &v), MSP_OK);
        if (u16 == want) {
            *data = v.pos;
            *len = msp_reader_left(&v);
            return 1;
        }
    }
    return 0;
}

typedef struct attempt {
    cap_msg_t up[64], down[64];
    size_t nu, nd;
    const cap_msg_t *ch, *sh;
    msp_tlmsp_ext_client_t ce;
    msp_tlmsp_ext_server_t se;
    msp_tlmsp_context_list_t cl;
} attempt_t;

static void rebuilds(const uint8_t *data, size_t len, int (*build)(const void *, msp_buf_t *), const void *v)
{
    msp_buf_t b;
    msp_buf_init(&b, 1 << 20);
    assert_int_equal(build(v, &b), MSP_OK);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.base, data, len);
    msp_buf_free(&b);
}

static int build_client(const void *v, msp_buf_t *b)
{
    return msp_tlmsp_ext_client_build(v, b);
}

static int build_server(const void *v, msp_buf_t *b)
{
    return msp_tlmsp_ext_server_build(v, b);
}

static int build_contexts(const void *v, msp_buf_t *b)
{
    return msp_tlmsp_context_list_build(v, b);
}

static void load_attempt(attempt_t *a, size_t k)
{
    a->nu = cap_handshake_messages(nth(FIRST_HOP_PORT, 0, k), a->up, 64);
    a->nd = cap_handshake_messages(nth(FIRST_HOP_PORT, 1, k), a->down, 64);
    a->ch = cap_find_msg(a->up, a->nu, MSP_TLMSP_HT_CLIENT_HELLO);
    a->sh = cap_find_msg(a->down, a->nd, MSP_TLMSP_HT_SERVER_HELLO);
    assert_true(a->ch != NULL && a->sh != NULL);
    const uint8_t *d;
    size_t n;
    assert_true(find_ext(a->ch, MSP_TLMSP_EXT_TLMSP, &d, &n));
    assert_int_equal(msp_tlmsp_ext_client_parse(d, n, &a->ce), MSP_OK);
    rebuilds(d, n, build_client, &a->ce);
    assert_true(find_ext(a->ch, MSP_TLMSP_EXT_CONTEXT_LIST, &d, &n));
    assert_int_equal(msp_tlmsp_context_list_parse(d, n, &a->cl), MSP_OK);
    rebuilds(d, n, build_contexts, &a->cl);
    assert_true(find_ext(a->sh, MSP_TLMSP_EXT_TLMSP, &d, &n));
    assert_int_equal(msp_tlmsp_ext_server_parse(d, n, &a->se), MSP_OK);
    rebuilds(d, n, build_server, &a->se);
}

static void same_list(const msp_tlmsp_mbox_list_t *x, const msp_tlmsp_mbox_list_t *y)
{
    assert_int_equal(x->n, y->n);
    for (size_t i = 0; i < x->n; i++) {
        assert_int_equal(x->m[i].id, y->m[i].id);
        assert_int_equal(x->m[i].inserted, y->m[i].inserted);
        assert_int_equal(x->m[i].address.len, y->m[i].address.len);
        assert_memory_equal(x->m[i].address.bytes, y->m[i].address.bytes, x->m[i].address.len);
        assert_memory_equal(x->m[i].access, y->m[i].access, 256);
    }
}

static void test_discovery_reconnect(void **state)
{
    (void)state;
    attempt_t *a1 = calloc(1, sizeof(*a1)), *a2 = calloc(1, sizeof(*a2));
    load_attempt(a1, 0);
    load_attempt(a2, 1);
    /* Attempt 1: the client names one middlebox, the server returns it plus one it inserted. */
    assert_int_equal(a1->ce.discovery_ack, 0);
    assert_int_equal(a1->ce.middleboxes.n, 1);
    assert_int_equal(a1->se.middleboxes.n, 2);
    assert_int_equal(a1->se.middleboxes.m[0].inserted, 0);
    assert_int_equal(a1->se.middleboxes.m[1].inserted, 1);
    /* Attempt 2 (7.2 step 4). */
    assert_int_equal(a2->ce.discovery_ack, 1);
    assert_int_equal(a2->ce.sid, a1->se.sid);
    assert_int_equal(a2->se.sid, a1->se.sid);
    same_list(&a2->ce.discovered, &a1->se.middleboxes);
    same_list(&a2->se.middleboxes, &a1->se.middleboxes);
    assert_int_equal(a2->ce.middleboxes.n, 1);
    assert_int_equal(a2->ce.middleboxes.m[0].id, a1->se.middleboxes.m[0].id);
    /* handshake_hash = SHA-256(ClientHello | ServerHello | Certificate | ServerKeyExchange | ServerHelloDone). */
    static const uint8_t from_server[] = {MSP_TLMSP_HT_SERVER_HELLO, MSP_TLMSP_HT_CERTIFICATE,
                                          MSP_TLMSP_HT_SERVER_KEY_EXCHANGE, MSP_TLMSP_HT_SERVER_HELLO_DONE};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 1 + sizeof(from_server); i++) {
        const cap_msg_t *m = i == 0 ? a1->ch : cap_find_msg(a1->down, a1->nd, from_server[i - 1]);
        assert_non_null(m);
        const uint8_t head[4] = {m->type, (uint8_t)(m->len >> 16), (uint8_t)(m->len >> 8), (uint8_t)m->len};
        assert_int_equal(EVP_DigestUpdate(md, head, 4), 1);
        assert_int_equal(EVP_DigestUpdate(md, m->body, m->len), 1);
    }
    uint8_t h[32];
    assert_int_equal(EVP_DigestFinal_ex(md, h, NULL), 1);
    EVP_MD_CTX_free(md);
    assert_int_equal(a2->ce.handshake_hash_len, 32);
    assert_memory_equal(a2->ce.handshake_hash, h, 32);
    /* The reference's bug (7.2): the second ContextList names all 255 contexts. */
    size_t n1 = 0, n2 = 0;
    for (int c = 1; c < 256; c++) {
        n1 += a1->cl.present[c];
        n2 += a2->cl.present[c];
    }
    assert_int_equal(n1, 1);
    assert_int_equal(n2, 255);
    free(a1);
    free(a2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery_reconnect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
