/* The ICAP client codec (src/tlmsp_app/icap.c) and its libev driver (src/io/icap_conn.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "msp/tlmsp_icap.h"

static void test_url(void **state)
{
    (void)state;
    msp_icap_url_t u;
    assert_int_equal(msp_icap_url_parse("icap://127.0.0.1:1345/avscan?allow204=on", &u, NULL), MSP_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 1345);
    assert_string_equal(u.service, "avscan?allow204=on");
    assert_int_equal(msp_icap_url_parse("icap://av.example/reqmod", &u, NULL), MSP_OK);
    assert_int_equal(u.port, MSP_ICAP_DEFAULT_PORT);
    assert_int_equal(msp_icap_url_parse("icap://[::1]:99/s", &u, NULL), MSP_OK);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 99);
    msp_error_t err;
    assert_int_equal(msp_icap_url_parse("http://h/s", &u, &err), MSP_ERR_SYNTAX);
    assert_non_null(strstr(err.detail, "not an icap:// URL"));
    assert_int_equal(msp_icap_url_parse("icap://h/", &u, NULL), MSP_ERR_SYNTAX);
    assert_int_equal(msp_icap_url_parse("icap://h:0/s", &u, NULL), MSP_ERR_SYNTAX);
    assert_int_equal(msp_icap_url_parse("icap://h:70000/s", &u, NULL), MSP_ERR_SYNTAX);
    assert_int_equal(msp_icap_url_parse("icap://:5/s", &u, NULL), MSP_ERR_SYNTAX);
}

static const char *str(msp_buf_t *b)
{
    return msp_buf_cstr(b);
}

static void test_request_preview(void **state)
{
    (void)state;
    msp_icap_url_t u;
    assert_int_equal(msp_icap_url_parse("icap://10.0.0.1:1344/av", &u, NULL), MSP_OK);
    const char *hdr = "POST / HTTP/1.1\r\nHost: h\r\n\r\n";
    msp_buf_t b;
    msp_buf_init(&b, 1 << 16);
    size_t sent = 99;
    assert_int_equal(msp_icap_request(&u, MSP_ICAP_REQMOD, (const uint8_t *)hdr, strlen(hdr), NULL, 0,
                                      (const uint8_t *)"abcdefghij", 10, 4, 1, &b, &sent),
                     MSP_OK);
    assert_int_equal(sent, 4);
    assert_non_null(strstr(str(&b), "REQMOD icap://10.0.0.1:1344/av ICAP/1.0\r\n"));
    assert_non_null(strstr(str(&b), "Allow: 204\r\nPreview: 4\r\nEncapsulated: req-hdr=0, req-body=28\r\n\r\nPOST /"));
    assert_non_null(strstr(str(&b), "\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"));
    b.len = 0;
    assert_int_equal(msp_icap_request_rest((const uint8_t *)"efghij", 6, &b), MSP_OK);
    assert_string_equal(str(&b), "6\r\nefghij\r\n0\r\n\r\n");
    /* the whole body in the preview: ieof, nothing left */
    b.len = 0;
    const char *res = "HTTP/1.1 200 OK\r\n\r\n";
    assert_int_equal(msp_icap_request(&u, MSP_ICAP_RESPMOD, (const uint8_t *)hdr, strlen(hdr), (const uint8_t *)res,
                                      strlen(res), (const uint8_t *)"abc", 3, 1024, 0, &b, &sent),
                     MSP_OK);
    assert_int_equal(sent, 3);
    assert_null(strstr(str(&b), "Allow: 204"));
    assert_non_null(strstr(str(&b), "Encapsulated: req-hdr=0, res-hdr=28, res-body=47\r\n"));
    assert_non_null(strstr(str(&b), "3\r\nabc\r\n0; ieof\r\n\r\n"));
    /* no preview: all of it, plain last chunk */
    b.len = 0;
    assert_int_equal(msp_icap_request(&u, MSP_ICAP_REQMOD, (const uint8_t *)hdr, strlen(hdr), NULL, 0,
                                      (const uint8_t *)"abc", 3, -1, 0, &b, &sent),
                     MSP_OK);
    assert_int_equal(sent, 3);
    assert_null(strstr(str(&b), "Preview"));
    assert_non_null(strstr(str(&b), "3\r\nabc\r\n0\r\n\r\n"));
    msp_buf_free(&b);
}

static void test_null_body_and_length(void **state)
{
    (void)state;
    msp_icap_url_t u;
    assert_int_equal(msp_icap_url_parse("icap://h/s", &u, NULL), MSP_OK);
    msp_buf_t b;
    msp_buf_init(&b, 1 << 16);
    size_t sent = 7;
    const char *get = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(
        msp_icap_request(&u, MSP_ICAP_REQMOD, (const uint8_t *)get, strlen(get), NULL, 0, NULL, 0, 1024, 1, &b, &sent),
        MSP_OK);
    assert_int_equal(sent, 0);
    assert_non_null(strstr(str(&b), "Encapsulated: req-hdr=0, null-body=18\r\n\r\nGET / HTTP/1.1\r\n\r\n"));
    assert_null(strstr(str(&b), "ieof")); /* no chunk at all */
    b.len = 0;
    /* a page without a length (close-delimited) and one with a stale length and chunking */
    const char *page = "HTTP/1.0 403 Forbidden\r\nServer: C-ICAP\r\nConnection: close\r\n\r\n";
    assert_int_equal(msp_icap_http_set_length((const uint8_t *)page, strlen(page), 473, &b), MSP_OK);
    assert_string_equal(str(&b), "HTTP/1.0 403 Forbidden\r\nServer: C-ICAP\r\nConnection: close\r\n"
                                 "Content-Length: 473\r\n\r\n");
    b.len = 0;
    const char *old = "HTTP/1.1 200 OK\r\ncontent-length: 9\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n";
    assert_int_equal(msp_icap_http_set_length((const uint8_t *)old, strlen(old), 0, &b), MSP_OK);
    assert_string_equal(str(&b), "HTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 0\r\n\r\n");
    msp_buf_free(&b);
}

/* c-icap 0.5.10's answer to a REQMOD carrying EICAR (virus_scan, mode=simple), as captured. */
static const char blocked[] =
    "ICAP/1.0 200 OK\r\nServer: C-ICAP/0.5.10\r\nConnection: keep-alive\r\nISTag: \"CI0001-XYZ\"\r\n"
    "X-Infection-Found: Type=0; Resolution=2; Threat=eicar.com.UNOFFICIAL;\r\nX-Violations-Found: 1\r\n"
    "\t-\r\n\teicar.com.UNOFFICIAL\r\n\t0\r\n\t0\r\nEncapsulated: res-hdr=0, res-body=108\r\n\r\n"
    "HTTP/1.0 403 Forbidden\r\nServer: C-ICAP\r\nConnection: close\r\nContent-Type: text/html\r\n"
    "Content-Language: en\r\n\r\n"
    "1c\r\n<html>VIRUS FOUND</html>\n\0\0\0\r\n0\r\n\r\n";

static void test_response_blocked_bytewise(void **state)
{
    (void)state;
    msp_icap_resp_t *r;
    assert_int_equal(msp_icap_resp_new(0, &r), MSP_OK);
    size_t n = sizeof(blocked) - 1;
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(done, 0);
        assert_int_equal(msp_icap_resp_input(r, (const uint8_t *)blocked + i, 1, &done, NULL), MSP_OK);
    }
    assert_int_equal(done, 1);
    const msp_icap_resp_info_t *in = msp_icap_resp_info(r);
    assert_int_equal(in->status, 200);
    assert_string_equal(in->istag, "\"CI0001-XYZ\"");
    assert_string_equal(in->infection, "Type=0; Resolution=2; Threat=eicar.com.UNOFFICIAL;");
    assert_int_equal(in->is_response, 1);
    assert_int_equal(in->http_status, 403);
    assert_int_equal(in->http_hdr_len, 108);
    /* fed byte by byte, the buffer moved many times: the header must point into where it is now */
    assert_memory_equal(in->http_hdr, "HTTP/1.0 403 Forbidden\r\n", 24);
    assert_memory_equal(in->http_hdr + 104, "\r\n\r\n", 4);
    assert_int_equal(in->has_body, 1);
    assert_int_equal(in->body_len, 0x1c);
    assert_memory_equal(in->body, "<html>VIRUS FOUND</html>\n", 25);
    const uint8_t *extra;
    assert_int_equal(msp_icap_resp_extra(r, &extra), 0);
    msp_icap_resp_free(r);
}

static void test_response_options_204_continue(void **state)
{
    (void)state;
    msp_icap_resp_t *r;
    assert_int_equal(msp_icap_resp_new(0, &r), MSP_OK);
    const char *opt = "ICAP/1.0 200 OK\r\nMethods: RESPMOD, REQMOD\r\nISTag: \"x\"\r\nPreview: 1024\r\n"
                      "Allow: 204\r\nEncapsulated: null-body=0\r\n\r\n";
    int done;
    assert_int_equal(msp_icap_resp_input(r, (const uint8_t *)opt, strlen(opt), &done, NULL), MSP_OK);
    assert_int_equal(done, 1);
    assert_int_equal(msp_icap_resp_info(r)->preview, 1024);
    assert_int_equal(msp_icap_resp_info(r)->allow204, 1);
    assert_int_equal(msp_icap_resp_info(r)->has_body, 0);
    /* 100 Continue followed at once by the final answer: the rest is extra, for after a reset */
    msp_icap_resp_reset(r);
    const char *two = "ICAP/1.0 100 Continue\r\n\r\nICAP/1.0 204 Unmodified\r\nISTag: \"y\"\r\n\r\n";
    assert_int_equal(msp_icap_resp_input(r, (const uint8_t *)two, strlen(two), &done, NULL), MSP_OK);
    assert_int_equal(done, 1);
    assert_int_equal(msp_icap_resp_info(r)->status, 100);
    const uint8_t *extra;
    size_t n = msp_icap_resp_extra(r, &extra);
    assert_int_equal(n, strlen(two) - 25);
    uint8_t copy[128];
    memcpy(copy, extra, n);
    msp_icap_resp_reset(r);
    assert_int_equal(msp_icap_resp_input(r, copy, n, &done, NULL), MSP_OK);
    assert_int_equal(done, 1);
    assert_int_equal(msp_icap_resp_info(r)->status, 204);
    assert_string_equal(msp_icap_resp_info(r)->istag, "\"y\"");
    msp_icap_resp_free(r);
}

static void feed_expect(const char *text, size_t limit, int want)
{
    msp_icap_resp_t *r;
    assert_int_equal(msp_icap_resp_new(limit, &r), MSP_OK);
    int done = 0;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_icap_resp_input(r, (const uint8_t *)text, strlen(text), &done, &err), want);
    if (want != MSP_OK) {
        assert_int_equal(err.code, want);
        assert_true(err.detail[0] != '\0');
    }
    msp_icap_resp_free(r);
}

static void test_response_malformed(void **state)
{
    (void)state;
    feed_expect("HTTP/1.1 200 OK\r\n\r\n", 0, MSP_ERR_SYNTAX);
    feed_expect("ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=x\r\n\r\n", 0, MSP_ERR_SYNTAX);
    feed_expect("ICAP/1.0 200 OK\r\nEncapsulated: res-body=10, res-hdr=0\r\n\r\n", 0, MSP_ERR_SYNTAX);
    feed_expect("ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0\r\n\r\n", 0, MSP_ERR_SYNTAX);
    feed_expect("ICAP/1.0 200 OK\r\nEncapsulated: res-body=0\r\n\r\nzz\r\n", 0, MSP_ERR_SYNTAX);
    feed_expect("ICAP/1.0 200 OK\r\nEncapsulated: res-body=0\r\n\r\nffffffffffffffffff\r\n", 0, MSP_ERR_SYNTAX);
    /* a chunk larger than the limit */
    feed_expect("ICAP/1.0 200 OK\r\nEncapsulated: res-body=0\r\n\r\n100\r\n", 16, MSP_ERR_SYNTAX);
    /* incomplete but well formed: waits */
    feed_expect("ICAP/1.0 200 OK\r\nEncapsulated: res-body=0\r\n\r\n10\r\nabc", 0, MSP_OK);
    /* an error status without Encapsulated: done, no body */
    msp_icap_resp_t *r;
    assert_int_equal(msp_icap_resp_new(0, &r), MSP_OK);
    int done;
    const char *e = "ICAP/1.0 404 Service not found\r\n\r\n";
    assert_int_equal(msp_icap_resp_input(r, (const uint8_t *)e, strlen(e), &done, NULL), MSP_OK);
    assert_int_equal(done, 1);
    assert_int_equal(msp_icap_resp_info(r)->status, 404);
    msp_icap_resp_free(r);
}

/* ---- the driver, against a listener of the test's own ---- */

typedef struct fake {
    int lfd, cfd;
    ev_io accept_w, read_w;
    const char *answer;  /* to the first last-chunk; NULL: never answer */
    const char *answer2; /* to the second (after a 100 Continue) */
    int answered;
    size_t got;
    char req[4096];
    int calls, err, status;
    char detail[352];
} fake_t;

static void fake_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    fake_t *f = w->data;
    ssize_t n = read(f->cfd, f->req + f->got, sizeof(f->req) - 1 - f->got);
    if (n <= 0) {
        ev_io_stop(loop, w);
        return;
    }
    f->got += (size_t)n;
    f->req[f->got] = '\0';
    const char *end = strstr(f->req, "\r\n0\r\n\r\n");
    int ends = end == NULL ? 0 : strstr(end + 7, "\r\n0\r\n\r\n") != NULL ? 2 : 1;
    const char *a = ends > f->answered ? (f->answered == 0 ? f->answer : f->answer2) : NULL;
    if (a != NULL) {
        f->answered++;
        assert_true(write(f->cfd, a, strlen(a)) == (ssize_t)strlen(a));
    }
}

static void fake_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    fake_t *f = w->data;
    f->cfd = accept(f->lfd, NULL, NULL);
    ev_io_stop(loop, w);
    ev_io_init(&f->read_w, fake_read, f->cfd, EV_READ);
    f->read_w.data = f;
    ev_io_start(loop, &f->read_w);
}

static void done_cb(void *user, int err, const msp_icap_resp_info_t *info, const char *detail)
{
    fake_t *f = user;
    f->calls++;
    f->err = err;
    f->status = info != NULL ? info->status : 0;
    snprintf(f->detail, sizeof(f->detail), "%s", detail);
}

static void drive(fake_t *f, const char *answer, const char *answer2, int listen_too, double timeout)
{
    struct ev_loop *loop = ev_loop_new(0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    memset(f, 0, sizeof(*f));
    f->answer = answer;
    f->answer2 = answer2;
    f->cfd = -1;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
    if (listen_too) {
        assert_int_equal(listen(f->lfd, 4), 0);
        ev_io_init(&f->accept_w, fake_accept, f->lfd, EV_READ);
        f->accept_w.data = f;
        ev_io_start(loop, &f->accept_w);
    } else {
        close(f->lfd); /* nobody listens there: connection refused */
        f->lfd = -1;
    }
    msp_icap_url_t u;
    assert_int_equal(msp_icap_url_parse("icap://127.0.0.1/av", &u, NULL), MSP_OK);
    msp_io_icap_cfg_t c = {&u, (const struct sockaddr *)&a, al, timeout, 2, 1};
    msp_io_icap_t *t;
    assert_int_equal(msp_io_icap_new(loop, &c, MSP_ICAP_REQMOD, (const uint8_t *)"POST / HTTP/1.1\r\n\r\n", 19, NULL, 0,
                                     (const uint8_t *)"hello", 5, done_cb, f, &t),
                     MSP_OK);
    assert_int_equal(f->calls, 0); /* never from inside the call */
    while (f->calls == 0) {
        ev_run(loop, EVRUN_ONCE);
    }
    msp_io_icap_free(t);
    ev_io_stop(loop, &f->accept_w);
    ev_io_stop(loop, &f->read_w);
    if (f->cfd >= 0) {
        close(f->cfd);
    }
    if (f->lfd >= 0) {
        close(f->lfd);
    }
    ev_loop_destroy(loop);
}

static void test_driver(void **state)
{
    (void)state;
    fake_t f;
    /* preview of 2 bytes, 100 Continue, the rest, then 204 */
    drive(&f, "ICAP/1.0 100 Continue\r\n\r\n", "ICAP/1.0 204 No Content\r\n\r\n", 1, 5);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.err, MSP_OK);
    assert_int_equal(f.status, 204);
    assert_non_null(strstr(f.req, "Preview: 2\r\n"));
    assert_non_null(strstr(f.req, "2\r\nhe\r\n0\r\n\r\n3\r\nllo\r\n0\r\n\r\n"));
    /* a second 100 Continue with nothing left to send is not an answer */
    drive(&f, "ICAP/1.0 100 Continue\r\n\r\n", "ICAP/1.0 100 Continue\r\n\r\n", 1, 5);
    assert_int_equal(f.err, MSP_ERR_SYNTAX);
    drive(&f, "ICAP/1.0 204 No Content\r\n\r\n", NULL, 1, 5);
    assert_int_equal(f.err, MSP_OK);
    assert_int_equal(f.status, 204);
    drive(&f, NULL, NULL, 0, 5);
    assert_int_equal(f.err, MSP_ERR_IO);
    assert_non_null(strstr(f.detail, "icap://127.0.0.1:1344/av: cannot connect"));
    drive(&f, NULL, NULL, 1, 0.2);
    assert_int_equal(f.err, MSP_ERR_LIMIT);
    assert_non_null(strstr(f.detail, "no answer in time"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_request_preview),
        cmocka_unit_test(test_null_body_and_length),
        cmocka_unit_test(test_response_blocked_bytewise),
        cmocka_unit_test(test_response_options_204_continue),
        cmocka_unit_test(test_response_malformed),
        cmocka_unit_test(test_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
