/*
 * The ticket store's memory of who issued a ticket (issue 13, finding 6):
 * dec_tickets_put_from keeps the issuer's tag and a copy of its info with
 * the PSK, the lookup gives them back, info over MSP_ETS_DEC_MAX_ISSUER_INFO
 * is not kept (the tag is), a ticket stored again takes its new issuer, an
 * evicted ticket takes its issuer with it. The pipeline's use of it (the
 * resumed_from and inherited visibility of a resumption) is in
 * test_ets_passive.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dec.h"
#include "msp/error.h"

static const uint8_t PSK[32] = {1, 2, 3};

static void test_issuer_kept(void **state)
{
    (void)state;
    msp_ets_tickets_t *t = NULL;
    assert_int_equal(msp_ets_tickets_new(2, &t), MSP_OK);
    const uint8_t info[] = "verdict of flow 7";
    dec_issuer_t from = {7, info, sizeof info};
    assert_int_equal(dec_tickets_put_from(t, (const uint8_t *)"aaaa", 4, 0x1301, PSK, 32, &from), MSP_OK);
    from.info = NULL; /* the store keeps its own copy */
    const dec_ticket_t *e = dec_tickets_get(t, (const uint8_t *)"aaaa", 4);
    assert_non_null(e);
    assert_int_equal(e->tag, 7);
    assert_int_equal(e->info_len, sizeof info);
    assert_memory_equal(e->info, info, sizeof info);
    assert_memory_equal(e->psk, PSK, 32);

    /* stored again by another connection: the new issuer */
    uint8_t other[3] = {9, 9, 9};
    dec_issuer_t again = {8, other, sizeof other};
    assert_int_equal(dec_tickets_put_from(t, (const uint8_t *)"aaaa", 4, 0x1301, PSK, 32, &again), MSP_OK);
    assert_int_equal(msp_ets_tickets_count(t), 1);
    e = dec_tickets_get(t, (const uint8_t *)"aaaa", 4);
    assert_int_equal(e->tag, 8);
    assert_int_equal(e->info_len, 3);
    assert_memory_equal(e->info, other, 3);

    /* no issuer: tag 0, no info (what dec_tickets_put stores) */
    assert_int_equal(dec_tickets_put(t, (const uint8_t *)"bbbb", 4, 0x1301, PSK, 32), MSP_OK);
    e = dec_tickets_get(t, (const uint8_t *)"bbbb", 4);
    assert_int_equal(e->tag, 0);
    assert_null(e->info);
    assert_int_equal(e->info_len, 0);

    /* a third ticket evicts the least recently used ("aaaa"), issuer and all (ASan: nothing leaks) */
    assert_int_equal(dec_tickets_put_from(t, (const uint8_t *)"cccc", 4, 0x1301, PSK, 32, &again), MSP_OK);
    assert_null(dec_tickets_get(t, (const uint8_t *)"aaaa", 4));
    assert_int_equal(dec_tickets_get(t, (const uint8_t *)"cccc", 4)->tag, 8);
    msp_ets_tickets_free(t);
}

static void test_issuer_info_limit(void **state)
{
    (void)state;
    msp_ets_tickets_t *t = NULL;
    assert_int_equal(msp_ets_tickets_new(4, &t), MSP_OK);
    static uint8_t big[MSP_ETS_DEC_MAX_ISSUER_INFO + 1];
    memset(big, 'x', sizeof big);
    dec_issuer_t at = {3, big, MSP_ETS_DEC_MAX_ISSUER_INFO};
    assert_int_equal(dec_tickets_put_from(t, (const uint8_t *)"at", 2, 0x1301, PSK, 32, &at), MSP_OK);
    const dec_ticket_t *e = dec_tickets_get(t, (const uint8_t *)"at", 2);
    assert_int_equal(e->info_len, MSP_ETS_DEC_MAX_ISSUER_INFO);
    assert_memory_equal(e->info, big, MSP_ETS_DEC_MAX_ISSUER_INFO);
    dec_issuer_t over = {4, big, sizeof big};
    assert_int_equal(dec_tickets_put_from(t, (const uint8_t *)"over", 4, 0x1301, PSK, 32, &over), MSP_OK);
    e = dec_tickets_get(t, (const uint8_t *)"over", 4);
    assert_int_equal(e->tag, 4); /* the tag is kept: the resumption still names its issuer */
    assert_null(e->info);
    assert_int_equal(e->info_len, 0);
    msp_ets_tickets_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issuer_kept),
        cmocka_unit_test(test_issuer_info_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
