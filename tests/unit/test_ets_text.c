/*
 * The passive pipeline's run in words (ets_passive.h, src/ets/passive_text.c):
 * the summary line `msp ets decrypt` ends with, undecryptable flows counted
 * by reason, and the progress line; decimal units, exact strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msp/ets_passive.h"

static void undecryptable(msp_ets_passive_report_t *r, msp_ets_reason_t why, int times)
{
    msp_ets_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = MSP_ETS_EV_UNDECRYPTABLE;
    ev.reason = why;
    for (int i = 0; i < times; i++) {
        msp_ets_passive_report_event(r, &ev);
    }
}

static const char *summary(const msp_ets_passive_report_t *r, char *mem, size_t cap)
{
    msp_buf_t b;
    msp_buf_init_fixed(&b, mem, cap);
    assert_int_equal(msp_ets_passive_summary_text(r, &b), MSP_OK);
    return msp_buf_cstr(&b);
}

static void test_summary(void **state)
{
    (void)state;
    msp_ets_passive_report_t r;
    memset(&r, 0, sizeof(r));
    undecryptable(&r, MSP_ETS_R_GAP, 3);
    undecryptable(&r, MSP_ETS_R_NO_STATIC_KEY, 5);
    msp_ets_event_t hs = {.kind = MSP_ETS_EV_HANDSHAKE, .reason = MSP_ETS_R_AEAD};
    msp_ets_passive_report_event(&r, &hs); /* not an undecryptable event: not counted */
    assert_int_equal(r.undecryptable[MSP_ETS_R_AEAD], 0);
    r.counts.flows = 408;
    r.counts.decrypted = 400;
    r.counts.undecryptable = 8;
    r.counts.plaintext = 1234567890;
    r.captured = 1300000000;
    r.elapsed_us = 3100000;
    char mem[512];
    /* reasons in their documented (enum) order, whatever order they came in */
    assert_string_equal(summary(&r, mem, sizeof(mem)),
                        "408 flows, 400 decrypted, 8 undecryptable (no_static_key 5, gap 3), 1.2 GB plaintext, "
                        "1.3 GB captured in 3.1 s (419.4 MB/s)\n");
    r.counts.empty = 2;
    r.counts.flows = 410;
    assert_string_equal(summary(&r, mem, sizeof(mem)),
                        "410 flows, 400 decrypted, 8 undecryptable (no_static_key 5, gap 3), 2 without a TLS 1.3 "
                        "handshake, 1.2 GB plaintext, 1.3 GB captured in 3.1 s (419.4 MB/s)\n");

    /* a live capture's kernel drops are said at the end */
    r.dropped = 12;
    assert_string_equal(summary(&r, mem, sizeof(mem)),
                        "410 flows, 400 decrypted, 8 undecryptable (no_static_key 5, gap 3), 2 without a TLS 1.3 "
                        "handshake, 1.2 GB plaintext, 1.3 GB captured in 3.1 s (419.4 MB/s); 12 packets dropped by "
                        "the capture\n");

    /* nothing at all, in no time: no rate */
    memset(&r, 0, sizeof(r));
    r.counts.flows = 1;
    r.counts.decrypted = 1;
    r.counts.plaintext = 999;
    r.captured = 1000;
    assert_string_equal(summary(&r, mem, sizeof(mem)),
                        "1 flow, 1 decrypted, 0 undecryptable, 999 B plaintext, 1.0 kB captured in 0.00 s\n");
    /* unit boundaries: 999.95 kB rounds up into MB, not to "1000.0 kB" */
    r.counts.plaintext = 999950;
    r.captured = 999949;
    r.elapsed_us = 250000;
    assert_string_equal(summary(&r, mem, sizeof(mem)), "1 flow, 1 decrypted, 0 undecryptable, 1.0 MB plaintext, "
                                                       "999.9 kB captured in 0.25 s (4.0 MB/s)\n");

    /* a reason out of range is counted, under "none", not written past the table */
    memset(&r, 0, sizeof(r));
    undecryptable(&r, (msp_ets_reason_t)1000, 1);
    assert_int_equal(r.undecryptable[0], 1);
}

static void test_progress(void **state)
{
    (void)state;
    char mem[256];
    msp_buf_t b;
    msp_buf_init_fixed(&b, mem, sizeof(mem));
    assert_int_equal(msp_ets_passive_progress_text(512000000, 1300000000, 1250000, 120, &b), MSP_OK);
    assert_string_equal(msp_buf_cstr(&b), "512.0 MB of 1.3 GB (39 %), 409.6 MB/s, 120 flows");
    msp_buf_init_fixed(&b, mem, sizeof(mem));
    assert_int_equal(msp_ets_passive_progress_text(2000, 2000, 0, 1, &b), MSP_OK);
    assert_string_equal(msp_buf_cstr(&b), "2.0 kB of 2.0 kB (100 %), 1 flow");
    /* a buffer too small says so */
    char tiny[8];
    msp_buf_init_fixed(&b, tiny, sizeof(tiny));
    assert_int_not_equal(msp_ets_passive_progress_text(2000, 2000, 0, 1, &b), MSP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
