/*
 * The operator's log lines (msp/tlmsp_log.h): the text and JSON shapes of a
 * session a middlebox served, RFC 3339 time, outcomes from error codes,
 * escaping, and absent fields left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "msp/tlmsp_log.h"

static const msp_tlmsp_log_context_t ctxs[] = {{1, "ping", "rw"}, {2, NULL, "r"}};

static void session(msp_tlmsp_log_record_t *r)
{
    msp_tlmsp_log_record_init(r);
    r->time = 1796601600.25; /* 2026-12-07T00:00:00.250Z */
    r->role = "middlebox";
    r->event = "session";
    r->pid = 42;
    r->worker = 2;
    r->id = 7;
    r->tag = "mbox1";
    r->peer = "127.0.0.1:5000";
    r->next = "tlmsp://localhost:10002";
    r->has_bytes = 1;
    r->bytes_in = 4;
    r->bytes_out = 11;
    r->duration = 0.0126;
    r->outcome = "alert";
    r->detail = "middlebox_route_failure";
    r->n_contexts = 2;
    r->contexts = ctxs;
}

static const char *fmt(const msp_tlmsp_log_record_t *r, msp_tlmsp_log_format_t f, msp_buf_t *b)
{
    msp_buf_init(b, MSP_TLMSP_LOG_LINE_MAX);
    assert_int_equal(msp_tlmsp_log_format(r, f, b), MSP_OK);
    return msp_buf_cstr(b);
}

static void test_text(void **state)
{
    (void)state;
    msp_tlmsp_log_record_t r;
    msp_buf_t b;
    session(&r);
    assert_string_equal(fmt(&r, MSP_TLMSP_LOG_TEXT, &b),
                        "2026-12-07T00:00:00.250Z msp middlebox[42]: session worker=2 id=7 tag=mbox1 "
                        "peer=127.0.0.1:5000 next=tlmsp://localhost:10002 contexts=1:rw,2:r bytes_in=4 bytes_out=11 "
                        "duration_ms=13 outcome=alert detail=middlebox_route_failure\n");
    msp_buf_free(&b);
}

static void test_json(void **state)
{
    (void)state;
    msp_tlmsp_log_record_t r;
    msp_buf_t b;
    session(&r);
    assert_string_equal(fmt(&r, MSP_TLMSP_LOG_JSON, &b),
                        "{\"time\":\"2026-12-07T00:00:00.250Z\",\"role\":\"middlebox\",\"pid\":42,\"worker\":2,"
                        "\"event\":\"session\",\"id\":7,\"tag\":\"mbox1\",\"peer\":\"127.0.0.1:5000\","
                        "\"next\":\"tlmsp://localhost:10002\",\"contexts\":[{\"id\":1,\"tag\":\"ping\",\"access\":"
                        "\"rw\"},{\"id\":2,\"access\":\"r\"}],\"bytes_in\":4,\"bytes_out\":11,\"duration_ms\":13,"
                        "\"outcome\":\"alert\",\"detail\":\"middlebox_route_failure\"}\n");
    msp_buf_free(&b);
}

/* Absent fields are left out; a value with a space or a quote is quoted and escaped. */
static void test_minimal_and_escaped(void **state)
{
    (void)state;
    msp_tlmsp_log_record_t r;
    msp_buf_t b;
    msp_tlmsp_log_record_init(&r);
    r.time = 0.5;
    r.role = "server";
    r.event = "paused";
    r.pid = 1;
    r.count = 0;
    r.detail = "Too many \"open\" files";
    assert_string_equal(fmt(&r, MSP_TLMSP_LOG_TEXT, &b), "1970-01-01T00:00:00.500Z msp server[1]: paused count=0 "
                                                         "detail=\"Too many \\\"open\\\" files\"\n");
    msp_buf_free(&b);
    assert_string_equal(fmt(&r, MSP_TLMSP_LOG_JSON, &b),
                        "{\"time\":\"1970-01-01T00:00:00.500Z\",\"role\":\"server\",\"pid\":1,\"event\":\"paused\","
                        "\"count\":0,\"detail\":\"Too many \\\"open\\\" files\"}\n");
    msp_buf_free(&b);
    r.role = NULL;
    msp_buf_init(&b, 100);
    assert_int_equal(msp_tlmsp_log_format(&r, MSP_TLMSP_LOG_TEXT, &b), MSP_ERR_ARGUMENT);
    msp_buf_free(&b);
}

static void test_outcome(void **state)
{
    (void)state;
    const char *d = "x";
    assert_string_equal(msp_tlmsp_log_outcome(MSP_OK, &d), "close");
    assert_null(d);
    assert_string_equal(msp_tlmsp_log_outcome(MSP_ALERT_DECODE_ERROR, &d), "alert");
    assert_string_equal(d, "decode_error");
    assert_string_equal(msp_tlmsp_log_outcome(MSP_ERR_CLASS_PEER_ALERT | MSP_ALERT_BAD_CERTIFICATE, &d), "alert");
    assert_non_null(strstr(d, "bad_certificate"));
    assert_string_equal(msp_tlmsp_log_outcome(MSP_ERR_IO, &d), "error");
    assert_string_equal(d, msp_error_name(MSP_ERR_IO));
    msp_tlmsp_log_format_t f;
    assert_int_equal(msp_tlmsp_log_format_parse("json", &f), MSP_OK);
    assert_int_equal(f, MSP_TLMSP_LOG_JSON);
    assert_int_equal(msp_tlmsp_log_format_parse("text", &f), MSP_OK);
    assert_int_equal(f, MSP_TLMSP_LOG_TEXT);
    assert_int_equal(msp_tlmsp_log_format_parse("xml", &f), MSP_ERR_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_minimal_and_escaped),
        cmocka_unit_test(test_outcome),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
