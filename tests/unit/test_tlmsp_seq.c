/*
 * Sequence numbers (tlmsp-records.md 6), replayed on the record sequences
 * of the reference sessions whose counters tlmsp-records/vectors.txt
 * states: V2 (the middlebox receives the client's first container with
 * seq(client) = 2), V3 and V4 (the server receives an inserted and then a
 * delete container from middlebox 230 with seq(230) = 2, then 3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "tlmsp_seq.h"
#include "vectors.h"

static vec_file_t f;

static int setup(void **state)
{
    (void)state;
    return vec_load(&f, "tlmsp-records/vectors.txt");
}

static int teardown(void **state)
{
    (void)state;
    vec_free(&f);
    return 0;
}

/* "seq(X) = N" or "seq(X)=N" in a section of the vectors. */
static uint64_t stated(const char *section, const char *what)
{
    const char *sec = vec_section(&f, section);
    assert_non_null(sec);
    const char *p = strstr(sec, what);
    assert_non_null(p);
    p += strlen(what);
    p += strspn(p, " =");
    return strtoull(p, NULL, 10);
}

static uint64_t seq_of(const msp_tlmsp_seq_t *s, uint8_t id)
{
    uint64_t v = 0;
    assert_int_equal(msp_tlmsp_seq_of(s, id, &v), MSP_OK);
    return v;
}

/* After ChangeCipherSpec each hop carries Finished and one MiddleboxFinished per middlebox (6.6). */
static void after_finished(msp_tlmsp_seq_t *s, size_t nmbox)
{
    msp_tlmsp_seq_reset_rx(s);
    for (size_t i = 0; i < 1 + nmbox; i++) {
        msp_tlmsp_seq_rx_record(s);
    }
}

static void test_v2_first_container_at_middlebox(void **state)
{
    (void)state;
    /* Middlebox 230's client-facing side receives along [client]. */
    static const uint8_t path[] = {MSP_TLMSP_ID_CLIENT};
    msp_tlmsp_seq_t s;
    assert_int_equal(msp_tlmsp_seq_init(&s, 230, path, 1), MSP_OK);
    after_finished(&s, 1);
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, MSP_TLMSP_ID_CLIENT, NULL, 0), MSP_OK);
    assert_int_equal(seq_of(&s, MSP_TLMSP_ID_CLIENT), stated("### V2", "seq(author)"));
}

static void test_v3_v4_inserted_then_deleted(void **state)
{
    (void)state;
    /* The server receives along [230, client]. */
    static const uint8_t path[] = {230, MSP_TLMSP_ID_CLIENT};
    msp_tlmsp_seq_t s;
    assert_int_equal(msp_tlmsp_seq_init(&s, MSP_TLMSP_ID_SERVER, path, 2), MSP_OK);
    after_finished(&s, 1);
    static const uint8_t inserted[] = {230, 0};
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 230, inserted, sizeof(inserted)), MSP_OK);
    assert_int_equal(seq_of(&s, 230), stated("### V3", "seq(author)"));
    /* V4's M_INFO: m_id 230, one indicator {source 1, count 1}. */
    static const uint8_t deleted[] = {230, 1, 1, 0, 1};
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 230, deleted, sizeof(deleted)), MSP_OK);
    assert_int_equal(seq_of(&s, 230), stated("### V4", "seq(author)"));
    /* The client's counter did not move for either; the delete step shows on the next items. */
    assert_int_equal(seq_of(&s, MSP_TLMSP_ID_CLIENT), 1);
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, MSP_TLMSP_ID_CLIENT, NULL, 0), MSP_OK);
    assert_int_equal(seq_of(&s, MSP_TLMSP_ID_CLIENT), 3);
    assert_int_equal(seq_of(&s, 230), 5);
}

/* The sender's view matches: Finished 0, MiddleboxFinished 1..N, first container 1 + N. */
static void test_transmit(void **state)
{
    (void)state;
    static const uint8_t path[] = {0x40, 0x41, MSP_TLMSP_ID_SERVER};
    msp_tlmsp_seq_t s;
    assert_int_equal(msp_tlmsp_seq_init(&s, MSP_TLMSP_ID_CLIENT, path, 3), MSP_OK);
    msp_tlmsp_seq_reset_tx(&s);
    for (uint64_t i = 0; i < 3; i++) {
        assert_int_equal(msp_tlmsp_seq_tx(&s, 0), i);
    }
    assert_int_equal(msp_tlmsp_seq_tx(&s, 2), 3); /* carries two delete indicators */
    assert_int_equal(msp_tlmsp_seq_tx(&s, 0), 6);
    assert_int_equal(seq_of(&s, MSP_TLMSP_ID_CLIENT), 6);
    msp_tlmsp_seq_reset_tx(&s);
    assert_int_equal(msp_tlmsp_seq_tx(&s, 0), 0);
}

static void test_unknown_entities(void **state)
{
    (void)state;
    static const uint8_t path[] = {0x40, MSP_TLMSP_ID_CLIENT};
    msp_tlmsp_seq_t s;
    assert_int_equal(msp_tlmsp_seq_init(&s, MSP_TLMSP_ID_SERVER, path, 2), MSP_OK);
    after_finished(&s, 1);
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 0x55, NULL, 0), MSP_ALERT_ILLEGAL_PARAMETER);
    static const uint8_t bad_source[] = {0x40, 1, 0x55, 0, 1};
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 0x40, bad_source, sizeof(bad_source)), MSP_ALERT_ILLEGAL_PARAMETER);
    static const uint8_t short_info[] = {0x40, 2, 1, 0, 1};
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 0x40, short_info, sizeof(short_info)), MSP_ALERT_DECODE_ERROR);
    /* Nothing moved on the failures. */
    assert_int_equal(seq_of(&s, 0x40), 1);
    assert_int_equal(seq_of(&s, MSP_TLMSP_ID_CLIENT), 1);
    uint64_t v;
    assert_int_equal(msp_tlmsp_seq_of(&s, 0x55, &v), MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(msp_tlmsp_seq_init(&s, 1, path, 0), MSP_ERR_ARGUMENT);
}

/*
 * A delete indicator's source must be an entity on the path, not the reader itself; nothing says it must be
 * upstream of the deleter (records 4.3), so the neighbour, at position 0, is a source like any other: the delete
 * step reaches the path from the neighbour up to the source (6.4 step 3), here the neighbour alone.
 */
static void test_indicator_source_is_neighbour(void **state)
{
    (void)state;
    static const uint8_t path[] = {0x40, MSP_TLMSP_ID_CLIENT};
    msp_tlmsp_seq_t s;
    assert_int_equal(msp_tlmsp_seq_init(&s, MSP_TLMSP_ID_SERVER, path, 2), MSP_OK);
    after_finished(&s, 1);
    static const uint8_t neighbour[] = {0x40, 1, 0x40, 0, 2};
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 0x40, neighbour, sizeof(neighbour)), MSP_OK);
    assert_int_equal(seq_of(&s, 0x40), 2);
    /* the delete step of 2 shows on 0x40's next item, not on the client's */
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 0x40, NULL, 0), MSP_OK);
    assert_int_equal(seq_of(&s, 0x40), 5);
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, MSP_TLMSP_ID_CLIENT, NULL, 0), MSP_OK);
    assert_int_equal(seq_of(&s, MSP_TLMSP_ID_CLIENT), 2);
    assert_int_equal(seq_of(&s, 0x40), 6);
    /* the reader's own id is not on its path */
    static const uint8_t self[] = {0x40, 1, MSP_TLMSP_ID_SERVER, 0, 1};
    assert_int_equal(msp_tlmsp_seq_rx_container(&s, 0x40, self, sizeof(self)), MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(seq_of(&s, 0x40), 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_first_container_at_middlebox),
        cmocka_unit_test(test_v3_v4_inserted_then_deleted),
        cmocka_unit_test(test_transmit),
        cmocka_unit_test(test_unknown_entities),
        cmocka_unit_test(test_indicator_source_is_neighbour),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
