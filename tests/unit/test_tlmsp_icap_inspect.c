/* Inspection at a middlebox, sans-IO (src/tlmsp_app/inspect.c): parts, requests, outcomes. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msp/tlmsp_inspect.h"

static void in(msp_inspect_t *x, int to_server, uint8_t ctx, int rw, const char *p, unsigned *flags)
{
    assert_int_equal(msp_inspect_input(x, to_server, ctx, rw, (const uint8_t *)p, strlen(p), flags, NULL), MSP_OK);
}

static msp_icap_resp_info_t answer(int status)
{
    msp_icap_resp_info_t r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.preview = -1;
    return r;
}

static void test_stream_pass(void **state)
{
    (void)state;
    msp_inspect_t *x;
    assert_int_equal(msp_inspect_new(NULL, &x), MSP_OK);
    unsigned f;
    in(x, 1, 1, 1, "abc", &f);
    assert_int_equal(f, MSP_INSPECT_OPEN);
    in(x, 1, 2, 1, "def", &f);
    assert_int_equal(f, MSP_INSPECT_OPEN);
    msp_inspect_request_t r;
    assert_int_equal(msp_inspect_scan(x, 1, &r), 0); /* nothing complete yet */
    msp_inspect_pause(x, 1, &f);
    assert_int_equal(f, MSP_INSPECT_READY);
    assert_int_equal(msp_inspect_scan(x, 1, &r), 1);
    assert_int_equal(r.method, MSP_ICAP_REQMOD);
    assert_int_equal(r.containers, 2);
    assert_int_equal(r.ctx, 1);
    assert_int_equal(r.body_len, 6);
    assert_memory_equal(r.body, "abcdef", 6);
    assert_non_null(strstr((const char *)r.req_hdr, "POST /tlmsp/context-1 HTTP/1.1\r\n"));
    assert_non_null(strstr((const char *)r.req_hdr, "Content-Length: 6\r\n\r\n"));
    assert_int_equal(r.res_hdr_len, 0);
    msp_icap_resp_info_t a = answer(204);
    msp_inspect_outcome_t o;
    assert_int_equal(msp_inspect_answer(x, 1, &a, &o, &f), MSP_OK);
    assert_int_equal(o.kind, MSP_INSPECT_PASS);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.verdicts[0], MSP_TLMSP_FORWARD);
    assert_int_equal(o.verdicts[1], MSP_TLMSP_FORWARD);
    assert_int_equal(f, 0);
    assert_int_equal(msp_inspect_answer(x, 1, &a, &o, &f), MSP_ERR_ARGUMENT); /* nothing with the service */
    /* toward the client: RESPMOD with a synthetic response */
    in(x, 0, 1, 1, "xyz", &f);
    msp_inspect_pause(x, 0, &f);
    assert_int_equal(msp_inspect_scan(x, 0, &r), 1);
    assert_int_equal(r.method, MSP_ICAP_RESPMOD);
    assert_non_null(strstr((const char *)r.req_hdr, "GET /tlmsp/context-1 HTTP/1.1\r\n"));
    assert_non_null(strstr((const char *)r.res_hdr, "HTTP/1.1 200 OK\r\n"));
    /* unchanged 200 counts as a pass */
    a = answer(200);
    a.is_response = 1;
    a.has_body = 1;
    a.body = (const uint8_t *)"xyz";
    a.body_len = 3;
    assert_int_equal(msp_inspect_answer(x, 0, &a, &o, &f), MSP_OK);
    assert_int_equal(o.kind, MSP_INSPECT_PASS);
    msp_inspect_free(x);
}

static void test_block_fail(void **state)
{
    (void)state;
    msp_inspect_t *x;
    assert_int_equal(msp_inspect_new(NULL, &x), MSP_OK);
    unsigned f;
    msp_inspect_request_t r;
    msp_inspect_outcome_t o;
    in(x, 1, 1, 1, "rw part", &f);
    in(x, 1, 5, 0, "and a read-only one", &f);
    msp_inspect_pause(x, 1, &f);
    assert_int_equal(msp_inspect_scan(x, 1, &r), 1);
    msp_icap_resp_info_t a = answer(200);
    a.is_response = 1;
    a.http_status = 403;
    snprintf(a.infection, sizeof(a.infection), "Threat=x;");
    assert_int_equal(msp_inspect_answer(x, 1, &a, &o, &f), MSP_OK);
    assert_int_equal(o.kind, MSP_INSPECT_BLOCK);
    assert_int_equal(o.alert, MSP_ALERT_ACCESS_DENIED);
    assert_non_null(strstr(o.why, "read-only"));
    /* the body is unchanged but the service found something: still not a pass */
    in(x, 0, 5, 0, "same", &f);
    msp_inspect_pause(x, 0, &f);
    assert_int_equal(msp_inspect_scan(x, 0, &r), 1);
    a = answer(200);
    a.is_response = 1;
    a.has_body = 1;
    a.body = (const uint8_t *)"same";
    a.body_len = 4;
    snprintf(a.virus_id, sizeof(a.virus_id), "EICAR");
    assert_int_equal(msp_inspect_answer(x, 0, &a, &o, &f), MSP_OK);
    assert_int_equal(o.kind, MSP_INSPECT_BLOCK);
    in(x, 0, 5, 1, "err", &f);
    msp_inspect_pause(x, 0, &f);
    assert_int_equal(msp_inspect_scan(x, 0, &r), 1);
    a = answer(500);
    assert_int_equal(msp_inspect_answer(x, 0, &a, &o, &f), MSP_OK);
    assert_int_equal(o.kind, MSP_INSPECT_FAIL);
    assert_int_equal(o.alert, MSP_ALERT_INTERNAL_ERROR);
    msp_inspect_free(x);
}

static void test_stream_replace(void **state)
{
    (void)state;
    msp_inspect_t *x;
    assert_int_equal(msp_inspect_new(NULL, &x), MSP_OK);
    unsigned f;
    msp_inspect_request_t r;
    msp_inspect_outcome_t o;
    in(x, 1, 2, 1, "one", &f);
    in(x, 1, 2, 1, "two", &f);
    msp_inspect_pause(x, 1, &f);
    assert_int_equal(msp_inspect_scan(x, 1, &r), 1);
    size_t big = 40000;
    uint8_t *body = malloc(big);
    memset(body, 'r', big);
    msp_icap_resp_info_t a = answer(200);
    a.has_body = 1;
    a.body = body;
    a.body_len = big;
    assert_int_equal(msp_inspect_answer(x, 1, &a, &o, &f), MSP_OK);
    assert_int_equal(o.kind, MSP_INSPECT_REPLACE);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.verdicts[0], MSP_TLMSP_REPLACE);
    assert_int_equal(o.data_len[0], 16355);
    assert_ptr_equal(o.data[1], body + 16355);
    assert_int_equal(o.data_len[1], 16355);
    assert_int_equal(o.ninsert, 1);
    assert_int_equal(o.insert[0].to_server, 1);
    assert_int_equal(o.insert[0].ctx, 2);
    assert_int_equal(o.insert[0].len, big - 2 * 16355);
    /* a shorter answer: the left-over container is deleted */
    in(x, 1, 2, 1, "three", &f);
    in(x, 1, 2, 1, "four", &f);
    msp_inspect_pause(x, 1, &f);
    assert_int_equal(msp_inspect_scan(x, 1, &r), 1);
    a.body_len = 10;
    assert_int_equal(msp_inspect_answer(x, 1, &a, &o, &f), MSP_OK);
    assert_int_equal(o.verdicts[0], MSP_TLMSP_REPLACE);
    assert_int_equal(o.data_len[0], 10);
    assert_int_equal(o.verdicts[1], MSP_TLMSP_DELETE);
    assert_int_equal(o.ninsert, 0);
    /* a request answered with a response: deleted, the response goes to the client */
    in(x, 1, 2, 1, "upload", &f);
    msp_inspect_pause(x, 1, &f);
    assert_int_equal(msp_inspect_scan(x, 1, &r), 1);
    a.is_response = 1;
    assert_int_equal(msp_inspect_answer(x, 1, &a, &o, &f), MSP_OK);
    assert_int_equal(o.toward_client, 1);
    assert_int_equal(o.verdicts[0], MSP_TLMSP_DELETE);
    assert_int_equal(o.ninsert, 1);
    assert_int_equal(o.insert[0].to_server, 0);
    free(body);
    msp_inspect_free(x);
}

static void test_queue_behind(void **state)
{
    (void)state;
    msp_inspect_t *x;
    assert_int_equal(msp_inspect_new(NULL, &x), MSP_OK);
    unsigned f;
    msp_inspect_request_t r;
    msp_inspect_outcome_t o;
    in(x, 0, 1, 0, "first", &f);
    msp_inspect_pause(x, 0, &f);
    assert_int_equal(msp_inspect_scan(x, 0, &r), 1);
    in(x, 0, 1, 0, "second", &f);
    assert_int_equal(f, MSP_INSPECT_OPEN);
    msp_inspect_pause(x, 0, &f);
    assert_int_equal(f, 0); /* complete, but one part is with the service */
    assert_int_equal(msp_inspect_scan(x, 0, &r), 0);
    msp_icap_resp_info_t a = answer(204);
    assert_int_equal(msp_inspect_answer(x, 0, &a, &o, &f), MSP_OK);
    assert_int_equal(o.n, 1);
    assert_int_equal(f, MSP_INSPECT_READY);
    assert_int_equal(msp_inspect_scan(x, 0, &r), 1);
    assert_int_equal(r.body_len, 6);
    assert_memory_equal(r.body, "second", 6);
    msp_inspect_free(x);
}

static void test_cut(void **state)
{
    (void)state;
    msp_inspect_t *x;
    assert_int_equal(msp_inspect_new(NULL, &x), MSP_OK);
    size_t n = 16000, total = 0;
    char *chunk = malloc(n + 1);
    memset(chunk, 'c', n);
    chunk[n] = '\0';
    unsigned f = 0, seen = 0;
    while (!(f & MSP_INSPECT_READY)) {
        in(x, 1, 1, 0, chunk, &f);
        seen |= f;
        total += n;
    }
    assert_true(seen & MSP_INSPECT_CUT);
    assert_true(total >= MSP_INSPECT_PART_BYTES && total < MSP_INSPECT_PART_BYTES + n);
    in(x, 1, 1, 0, chunk, &f); /* the next part */
    assert_int_equal(f & MSP_INSPECT_CUT, 0);
    free(chunk);
    msp_inspect_free(x);
}

static void test_http(void **state)
{
    (void)state;
    msp_inspect_cfg_t c = {3, 4};
    msp_inspect_t *x;
    assert_int_equal(msp_inspect_new(&c, &x), MSP_OK);
    unsigned f;
    msp_inspect_request_t r;
    msp_inspect_outcome_t o;
    const char *req = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    in(x, 1, 3, 1, req, &f);
    assert_int_equal(f, MSP_INSPECT_OPEN);
    in(x, 1, 4, 1, "hello", &f);
    assert_int_equal(f, MSP_INSPECT_READY); /* the message is whole: no pause needed */
    assert_int_equal(msp_inspect_scan(x, 1, &r), 1);
    assert_int_equal(r.req_hdr_len, strlen(req));
    assert_memory_equal(r.req_hdr, req, strlen(req));
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "hello", 5);
    assert_int_equal(r.containers, 2);
    /* the service blocks it with a page: deleted, and the page goes to the client as a whole message */
    const char *page_hdr = "HTTP/1.0 403 Forbidden\r\nConnection: close\r\n\r\n";
    msp_icap_resp_info_t a = answer(200);
    a.is_response = 1;
    a.http_status = 403;
    a.http_hdr = (const uint8_t *)page_hdr;
    a.http_hdr_len = strlen(page_hdr);
    a.has_body = 1;
    a.body = (const uint8_t *)"VIRUS FOUND";
    a.body_len = 11;
    assert_int_equal(msp_inspect_answer(x, 1, &a, &o, &f), MSP_OK);
    assert_int_equal(o.kind, MSP_INSPECT_REPLACE);
    assert_int_equal(o.toward_client, 1);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.verdicts[0], MSP_TLMSP_DELETE);
    assert_int_equal(o.verdicts[1], MSP_TLMSP_DELETE);
    assert_int_equal(o.ninsert, 2);
    assert_int_equal(o.insert[0].to_server, 0);
    assert_int_equal(o.insert[0].ctx, 3);
    const char *want = "HTTP/1.0 403 Forbidden\r\nConnection: close\r\nContent-Length: 11\r\n\r\n";
    assert_int_equal(o.insert[0].len, strlen(want));
    assert_memory_equal(o.insert[0].p, want, strlen(want));
    assert_int_equal(o.insert[1].ctx, 4);
    assert_int_equal(o.insert[1].len, 11);
    /* the response direction: RESPMOD with the request it answers */
    in(x, 0, 3, 1, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", &f);
    in(x, 0, 4, 1, "ok", &f);
    assert_int_equal(f, MSP_INSPECT_READY);
    assert_int_equal(msp_inspect_scan(x, 0, &r), 1);
    assert_int_equal(r.method, MSP_ICAP_RESPMOD);
    assert_memory_equal(r.req_hdr, req, strlen(req));
    assert_memory_equal(r.res_hdr, "HTTP/1.1 200 OK\r\n", 17);
    msp_inspect_free(x);
}

static void test_http_gives_up(void **state)
{
    (void)state;
    msp_inspect_cfg_t c = {3, 4};
    msp_inspect_t *x;
    assert_int_equal(msp_inspect_new(&c, &x), MSP_OK);
    unsigned f;
    msp_error_t err;
    msp_error_clear(&err);
    const char *junk = "\x01\x02 not http at all\r\n\r\n";
    assert_int_equal(msp_inspect_input(x, 1, 3, 1, (const uint8_t *)junk, strlen(junk), &f, &err), MSP_OK);
    assert_true(f & MSP_INSPECT_STREAM);
    assert_true(err.detail[0] != '\0');
    msp_inspect_pause(x, 1, &f);
    msp_inspect_request_t r;
    assert_int_equal(msp_inspect_scan(x, 1, &r), 1);
    assert_non_null(strstr((const char *)r.req_hdr, "POST /tlmsp/context-3"));
    assert_true(r.body_len >= strlen(junk)); /* every byte is scanned */
    assert_non_null(memmem(r.body, r.body_len, junk, strlen(junk)));
    msp_inspect_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_pass),   cmocka_unit_test(test_block_fail), cmocka_unit_test(test_stream_replace),
        cmocka_unit_test(test_queue_behind),  cmocka_unit_test(test_cut),        cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
