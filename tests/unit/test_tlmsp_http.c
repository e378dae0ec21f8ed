/*
 * The HTTP/1.x framer of `--contexts http` (msp/tlmsp_http.h): which bytes
 * are header and which body, where messages end, that the segments tile the
 * input exactly, whatever the feed sizes (every test runs whole, byte by
 * byte and in pieces of 7), chunked encoding, pipelining, HEAD/1xx/204/304,
 * close-delimited bodies, upgrades and CONNECT as tunnels, and the errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/tlmsp_http.h"

#define CAP 8192

/* What the segments of one direction said: bytes, their kind, and the boundary marks. */
typedef struct rec {
    uint8_t bytes[CAP];
    char kind[CAP]; /* 'h', 'b' or 't' (tunnel) per byte */
    size_t n;
    char marks[1024]; /* "H<offset>[:<status or method>] M<offset> ..." */
    int fail_after;   /* the callback fails once this many bytes arrived (0: never) */
} rec_t;

static void mark(rec_t *r, const char *fmt, ...)
{
    size_t used = strlen(r->marks);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->marks + used, sizeof(r->marks) - used, fmt, ap);
    va_end(ap);
}

static int collect(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg)
{
    (void)dir;
    rec_t *r = user;
    assert_true(r->n + seg->len <= CAP);
    assert_true(seg->len > 0 || (seg->flags & MSP_HTTP_MESSAGE_DONE));
    if (seg->len > 0) {
        memcpy(r->bytes + r->n, seg->p, seg->len);
    }
    char k = (seg->flags & MSP_HTTP_TUNNEL) ? 't' : seg->kind == MSP_HTTP_HEADER ? 'h' : 'b';
    memset(r->kind + r->n, k, seg->len);
    r->n += seg->len;
    if (seg->flags & MSP_HTTP_HEADERS_DONE) {
        assert_int_equal(seg->kind, MSP_HTTP_HEADER);
        if (seg->method != NULL) {
            mark(r, "H%zu:%s ", r->n, seg->method);
        } else {
            mark(r, "H%zu:%d ", r->n, seg->status);
        }
    }
    if (seg->flags & MSP_HTTP_MESSAGE_DONE) {
        mark(r, "M%zu ", r->n);
    }
    if (r->fail_after != 0 && r->n >= (size_t)r->fail_after) {
        return MSP_ERR_INVALID;
    }
    return MSP_OK;
}

/* Run-length form of the kinds: "h27 b5". */
static void layout(const rec_t *r, char *out, size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; i < r->n;) {
        size_t j = i;
        while (j < r->n && r->kind[j] == r->kind[i]) {
            j++;
        }
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%c%zu", i == 0 ? "" : " ", r->kind[i], j - i);
        i = j;
    }
}

/* Feeds text in pieces of `piece` bytes (0: whole) and checks the tiling. */
static int feed(msp_http_t *h, msp_http_dir_t dir, const char *text, size_t piece, rec_t *r)
{
    size_t len = strlen(text), start = r->n;
    int rc = MSP_OK;
    for (size_t off = 0; off < len && rc == MSP_OK;) {
        size_t n = piece == 0 || piece > len - off ? len - off : piece;
        msp_error_t err;
        rc = msp_http_feed(h, dir, (const uint8_t *)text + off, n, collect, r, &err);
        off += n;
    }
    if (rc == MSP_OK) {
        assert_int_equal(r->n - start, len);
        assert_memory_equal(r->bytes + start, text, len);
    }
    return rc;
}

static msp_http_t *framer(void)
{
    msp_http_t *h = NULL;
    assert_int_equal(msp_http_new(NULL, &h), MSP_OK);
    return h;
}

static const size_t pieces[] = {0, 1, 7};

/* One direction, every piece size: the layout (consecutive header blocks merge) and the marks. */
static void check_one(msp_http_dir_t dir, const char *text, const char *want_layout, const char *want_marks)
{
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        msp_http_t *h = framer();
        rec_t r = {0};
        assert_int_equal(feed(h, dir, text, pieces[i], &r), MSP_OK);
        char got[512];
        layout(&r, got, sizeof(got));
        assert_string_equal(got, want_layout);
        assert_string_equal(r.marks, want_marks);
        msp_http_free(h);
    }
}

#define GET "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" /* 28 bytes */

static int count_segments(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg)
{
    (void)dir;
    (void)seg;
    (*(int *)user)++;
    return MSP_OK;
}

static void test_get_without_body(void **state)
{
    (void)state;
    check_one(MSP_HTTP_REQUESTS, GET, "h28", "H28:GET M28 ");
    /* a header block fed whole is one segment (one container), not one per line */
    msp_http_t *h = framer();
    int n = 0;
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)GET, strlen(GET), count_segments, &n, NULL),
                     MSP_OK);
    assert_int_equal(n, 1);
    msp_http_free(h);
}

static void test_post_with_length(void **state)
{
    (void)state;
    const char *req = "POST /up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"; /* 40 + 5 */
    check_one(MSP_HTTP_REQUESTS, req, "h40 b5", "H40:POST M45 ");
}

static void test_chunked_response_with_trailer(void **state)
{
    (void)state;
    /* header 47; chunks "5\r\nhello\r\n" (10) and "0\r\nX-T: 1\r\n\r\n" (13), all body */
    const char *resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
    check_one(MSP_HTTP_RESPONSES, resp, "h47 b23", "H47:200 M70 ");
}

static void test_pipelined_requests(void **state)
{
    (void)state;
    const char *two = GET "PUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" GET;
    check_one(MSP_HTTP_REQUESTS, two, "h66 b3 h28", "H28:GET M28 H66:PUT M69 H97:GET M97 ");
}

/* The response direction after the requests: HEAD's answer has no body despite its Content-Length. */
static void test_head_answer_has_no_body(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        msp_http_t *h = framer();
        rec_t q = {0}, r = {0};
        assert_int_equal(feed(h, MSP_HTTP_REQUESTS, "HEAD /a HTTP/1.1\r\n\r\n" GET, pieces[i], &q), MSP_OK);
        const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" /* 38 */
                           "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
        assert_int_equal(feed(h, MSP_HTTP_RESPONSES, resp, pieces[i], &r), MSP_OK);
        char got[128];
        layout(&r, got, sizeof(got));
        assert_string_equal(got, "h76 b4");
        assert_string_equal(r.marks, "H38:200 M38 H76:200 M80 ");
        msp_http_free(h);
    }
}

static void test_interim_and_bodiless_statuses(void **state)
{
    (void)state;
    const char *resp = "HTTP/1.1 100 Continue\r\n\r\n"                   /* 25 */
                       "HTTP/1.1 204 No Content\r\n\r\n"                 /* 27 */
                       "HTTP/1.1 304 Not Modified\r\n\r\n"               /* 29 */
                       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"; /* 38 + 2 */
    check_one(MSP_HTTP_RESPONSES, resp, "h119 b2", "H25:100 M25 H52:204 M52 H81:304 M81 H119:200 M121 ");
}

static void test_close_delimited_body(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        msp_http_t *h = framer();
        rec_t r = {0};
        assert_int_equal(feed(h, MSP_HTTP_RESPONSES, "HTTP/1.1 200 OK\r\n\r\nuntil the end", pieces[i], &r), MSP_OK);
        assert_string_equal(r.marks, "H19:200 ");
        msp_error_t err;
        assert_int_equal(msp_http_eof(h, MSP_HTTP_RESPONSES, collect, &r, &err), MSP_OK);
        char got[128];
        layout(&r, got, sizeof(got));
        assert_string_equal(got, "h19 b13");
        assert_string_equal(r.marks, "H19:200 M32 ");
        msp_http_free(h);
    }
}

static void test_eof_between_messages_and_inside_one(void **state)
{
    (void)state;
    msp_http_t *h = framer();
    rec_t r = {0};
    msp_error_t err;
    assert_int_equal(msp_http_eof(h, MSP_HTTP_REQUESTS, collect, &r, &err), MSP_OK);
    assert_int_equal(feed(h, MSP_HTTP_REQUESTS, GET, 0, &r), MSP_OK);
    assert_int_equal(msp_http_eof(h, MSP_HTTP_REQUESTS, collect, &r, &err), MSP_OK);
    assert_int_equal(feed(h, MSP_HTTP_RESPONSES, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0, &r), MSP_OK);
    assert_int_equal(msp_http_eof(h, MSP_HTTP_RESPONSES, collect, &r, &err), MSP_ERR_SYNTAX);
    assert_non_null(strstr(err.detail, "body"));
    msp_http_free(h);

    h = framer();
    assert_int_equal(feed(h, MSP_HTTP_REQUESTS, "GET / HTTP/1.1\r\nHo", 0, &r), MSP_OK);
    assert_int_equal(msp_http_eof(h, MSP_HTTP_REQUESTS, collect, &r, &err), MSP_ERR_SYNTAX);
    assert_non_null(strstr(err.detail, "header block"));
    msp_http_free(h);
}

static void test_upgrade_request_becomes_tunnel(void **state)
{
    (void)state;
    const char *req = "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" /* 61 */
                      "GET /not-http-any-more HTTP/1.1\r\n\r\n";                              /* 35 */
    check_one(MSP_HTTP_REQUESTS, req, "h61 t35", "H61:GET M61 ");
}

static void test_switching_protocols_and_connect(void **state)
{
    (void)state;
    const char *resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" /* 77 */
                       "\x81\x05hello";
    check_one(MSP_HTTP_RESPONSES, resp, "h77 t7", "H77:101 M77 ");

    msp_http_t *h = framer();
    rec_t q = {0}, r = {0};
    assert_int_equal(feed(h, MSP_HTTP_REQUESTS, "CONNECT a:443 HTTP/1.1\r\n\r\n\x16\x03\x01", 0, &q), MSP_OK);
    char got[128];
    layout(&q, got, sizeof(got));
    assert_string_equal(got, "h26 t3");
    assert_int_equal(feed(h, MSP_HTTP_RESPONSES, "HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03", 0, &r), MSP_OK);
    layout(&r, got, sizeof(got));
    assert_string_equal(got, "h19 t3");
    msp_http_free(h);
}

static void test_not_http_is_refused_for_good(void **state)
{
    (void)state;
    msp_http_t *h = framer();
    rec_t r = {0};
    msp_error_t err;
    const char *junk = "\x16\x03\x01\x02\x00\n";
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)junk, strlen(junk), collect, &r, &err),
                     MSP_ERR_SYNTAX);
    assert_non_null(strstr(err.detail, "not an HTTP/1.x request"));
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)GET, strlen(GET), collect, &r, &err),
                     MSP_ERR_SYNTAX);
    assert_int_equal(r.n, 0);
    /* the other direction is unaffected */
    assert_int_equal(feed(h, MSP_HTTP_RESPONSES, "HTTP/1.1 204 No Content\r\n\r\n", 0, &r), MSP_OK);
    msp_http_free(h);
}

static void test_limits(void **state)
{
    (void)state;
    msp_http_cfg_t cfg = {.max_header = 40, .max_pipeline = 2};
    msp_http_t *h = NULL;
    assert_int_equal(msp_http_new(&cfg, &h), MSP_OK);
    rec_t r = {0};
    msp_error_t err;
    assert_int_equal(feed(h, MSP_HTTP_REQUESTS, GET GET, 0, &r), MSP_OK);
    assert_int_equal(feed(h, MSP_HTTP_REQUESTS, GET, 0, &r), MSP_ERR_LIMIT);
    msp_http_free(h);

    assert_int_equal(msp_http_new(&cfg, &h), MSP_OK);
    const char *big = "GET / HTTP/1.1\r\nX-Long: 0123456789012345678901234567890123456789\r\n\r\n";
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)big, strlen(big), collect, &r, &err),
                     MSP_ERR_LIMIT);
    assert_non_null(strstr(err.detail, "larger than 40"));
    msp_http_free(h);
}

static void test_callback_error_stops(void **state)
{
    (void)state;
    msp_http_t *h = framer();
    rec_t r = {.fail_after = 1};
    msp_error_t err;
    const char *req = "POST /up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)req, strlen(req), collect, &r, &err),
                     MSP_ERR_INVALID);
    assert_int_equal(r.n, 40); /* the header block, not the body after it */
    /* sticky */
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)GET, strlen(GET), collect, &r, &err),
                     MSP_ERR_INVALID);
    assert_int_equal(r.n, 40);
    msp_http_free(h);
}

static void test_arguments(void **state)
{
    (void)state;
    msp_http_free(NULL);
    msp_http_t *h = framer();
    msp_error_t err;
    assert_int_equal(msp_http_feed(h, (msp_http_dir_t)2, (const uint8_t *)"x", 1, collect, NULL, &err),
                     MSP_ERR_ARGUMENT);
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, NULL, 1, collect, NULL, &err), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, NULL, 0, collect, NULL, &err), MSP_OK);
    msp_http_free(h);
}

/* A mixed stream cut at every position into two feeds frames as it does whole. */
static void test_every_split_point(void **state)
{
    (void)state;
    const char *text =
        "\r\nPOST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n" GET "PUT /y HTTP/1.1\r\nContent-Length: 2\r\n\r\nzz";
    msp_http_t *h = framer();
    rec_t whole = {0};
    assert_int_equal(feed(h, MSP_HTTP_REQUESTS, text, 0, &whole), MSP_OK);
    msp_http_free(h);
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut++) {
        h = framer();
        rec_t r = {0};
        msp_error_t err;
        assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)text, cut, collect, &r, &err), MSP_OK);
        assert_int_equal(msp_http_feed(h, MSP_HTTP_REQUESTS, (const uint8_t *)text + cut, len - cut, collect, &r, &err),
                         MSP_OK);
        assert_int_equal(r.n, len);
        assert_memory_equal(r.kind, whole.kind, len);
        assert_string_equal(r.marks, whole.marks);
        msp_http_free(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_without_body),
        cmocka_unit_test(test_post_with_length),
        cmocka_unit_test(test_chunked_response_with_trailer),
        cmocka_unit_test(test_pipelined_requests),
        cmocka_unit_test(test_head_answer_has_no_body),
        cmocka_unit_test(test_interim_and_bodiless_statuses),
        cmocka_unit_test(test_close_delimited_body),
        cmocka_unit_test(test_eof_between_messages_and_inside_one),
        cmocka_unit_test(test_upgrade_request_becomes_tunnel),
        cmocka_unit_test(test_switching_protocols_and_connect),
        cmocka_unit_test(test_not_http_is_refused_for_good),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_callback_error_stops),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_every_split_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
