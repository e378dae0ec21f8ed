/* The common layer: the bounded reader, the limited writer, the JSON writer, errors and logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/buf.h"
#include "msp/error.h"
#include "msp/json.h"
#include "msp/log.h"
#include "reader.h"

static void test_reader_ints(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
                                 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12};
    msp_reader_t r;
    msp_reader_init(&r, in, sizeof(in));
    uint8_t u8;
    uint16_t u16;
    uint32_t u24, u32;
    uint64_t u64;
    assert_int_equal(msp_read_u8(&r, &u8), MSP_OK);
    assert_int_equal(u8, 0x01);
    assert_int_equal(msp_read_u16(&r, &u16), MSP_OK);
    assert_int_equal(u16, 0x0203);
    assert_int_equal(msp_read_u24(&r, &u24), MSP_OK);
    assert_int_equal(u24, 0x040506);
    assert_int_equal(msp_read_u32(&r, &u32), MSP_OK);
    assert_int_equal(u32, 0x0708090a);
    assert_int_equal(msp_read_u64(&r, &u64), MSP_OK);
    assert_true(u64 == 0x0b0c0d0e0f101112ull);
    assert_int_equal(msp_reader_left(&r), 0);
    assert_int_equal(msp_reader_expect_end(&r), MSP_OK);
    assert_int_equal(msp_read_u8(&r, &u8), MSP_ALERT_DECODE_ERROR);
}

/* A failed read consumes nothing, so the caller's reader is still where it was. */
static void test_reader_short_reads_do_not_move(void **state)
{
    (void)state;
    static const uint8_t in[] = {0xaa, 0xbb, 0xcc};
    msp_reader_t r;
    msp_reader_init(&r, in, sizeof(in));
    uint32_t v;
    uint64_t w;
    const uint8_t *p;
    assert_int_equal(msp_read_u32(&r, &v), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_read_u64(&r, &w), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_read_bytes(&r, 4, &p), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_reader_left(&r), 3);
    assert_int_equal(msp_read_u24(&r, &v), MSP_OK);
    assert_int_equal(v, 0xaabbcc);
    msp_reader_init(&r, NULL, 0);
    assert_int_equal(msp_reader_left(&r), 0);
    uint8_t b;
    assert_int_equal(msp_peek_u8(&r, &b), MSP_ALERT_DECODE_ERROR);
}

static void test_reader_blocks(void **state)
{
    (void)state;
    /* vector<0..2^16-1> holding a u8 and vector<0..255> of 2 bytes, then a trailing byte */
    static const uint8_t in[] = {0x00, 0x04, 0x07, 0x02, 0x11, 0x22, 0x99};
    msp_reader_t r, blk, inner;
    msp_reader_init(&r, in, sizeof(in));
    assert_int_equal(msp_read_block(&r, 2, &blk), MSP_OK);
    assert_int_equal(msp_reader_left(&blk), 4);
    uint8_t v;
    assert_int_equal(msp_read_u8(&blk, &v), MSP_OK);
    assert_int_equal(v, 7);
    assert_int_equal(msp_reader_expect_end(&blk), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_read_block(&blk, 1, &inner), MSP_OK);
    uint8_t two[2];
    assert_int_equal(msp_read_copy(&inner, two, 2), MSP_OK);
    assert_int_equal(two[1], 0x22);
    assert_int_equal(msp_reader_expect_end(&inner), MSP_OK);
    assert_int_equal(msp_reader_expect_end(&blk), MSP_OK);
    /* The block cannot reach past its own end into the trailing byte. */
    assert_int_equal(msp_read_u8(&blk, &v), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_peek_u8(&r, &v), MSP_OK);
    assert_int_equal(v, 0x99);
}

static void test_reader_block_longer_than_input(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x05, 0x01, 0x02};
    msp_reader_t r, blk;
    msp_reader_init(&r, in, sizeof(in));
    assert_int_equal(msp_read_block(&r, 2, &blk), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_reader_left(&r), 4); /* the length prefix was not consumed */
    assert_int_equal(msp_read_block(&r, 5, &blk), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_read_block(&r, 0, &blk), MSP_ERR_ARGUMENT);
}

/* The widest prefix the header allows (1..4): a 4-byte length, as a u32 vector would have. */
static void test_reader_block_prefix_4(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb, 0xcc};
    msp_reader_t r, blk;
    msp_reader_init(&r, in, sizeof(in));
    assert_int_equal(msp_read_block(&r, 4, &blk), MSP_OK);
    assert_int_equal(msp_reader_left(&blk), 2);
    uint16_t v;
    assert_int_equal(msp_read_u16(&blk, &v), MSP_OK);
    assert_int_equal(v, 0xaabb);
    assert_int_equal(msp_reader_left(&r), 1);
    /* A 4-byte length past the end: refused, and the prefix is not consumed. */
    static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x01};
    msp_reader_init(&r, big, sizeof(big));
    assert_int_equal(msp_read_block(&r, 4, &blk), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_reader_left(&r), sizeof(big));
}

/* Zero-length blocks and copies, down to the empty reader over NULL: nothing is copied, not even through NULL. */
static void test_reader_zero_length(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x00, 0x00, 0x07};
    msp_reader_t r, blk;
    msp_reader_init(&r, in, sizeof(in));
    assert_int_equal(msp_read_block(&r, 1, &blk), MSP_OK);
    assert_int_equal(msp_reader_left(&blk), 0);
    assert_int_equal(msp_reader_expect_end(&blk), MSP_OK);
    assert_int_equal(msp_read_block(&r, 2, &blk), MSP_OK);
    assert_int_equal(msp_reader_left(&blk), 0);
    assert_int_equal(msp_reader_left(&r), 1);
    uint8_t one = 0x5a;
    assert_int_equal(msp_read_copy(&blk, &one, 0), MSP_OK);
    assert_int_equal(one, 0x5a);
    msp_reader_init(&r, NULL, 0);
    assert_int_equal(msp_read_copy(&r, NULL, 0), MSP_OK);
    assert_int_equal(msp_read_copy(&r, &one, 1), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(one, 0x5a);
}

/* A copy longer than what is left fails, leaves dst as it was and consumes nothing. */
static void test_reader_copy_too_long(void **state)
{
    (void)state;
    uint8_t *in = malloc(2); /* exactly sized, so that a read past it is an overflow */
    assert_non_null(in);
    in[0] = 0x11;
    in[1] = 0x22;
    msp_reader_t r;
    msp_reader_init(&r, in, 2);
    uint8_t dst[64];
    memset(dst, 0x5a, sizeof(dst));
    assert_int_equal(msp_read_copy(&r, dst, sizeof(dst)), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_read_copy(&r, dst, 3), MSP_ALERT_DECODE_ERROR);
    for (size_t i = 0; i < sizeof(dst); i++) {
        assert_int_equal(dst[i], 0x5a);
    }
    assert_int_equal(msp_reader_left(&r), 2);
    assert_int_equal(msp_read_copy(&r, dst, 2), MSP_OK);
    assert_int_equal(dst[0], 0x11);
    assert_int_equal(dst[1], 0x22);
    assert_int_equal(dst[2], 0x5a);
    free(in);
}

static void test_buf_grows_to_limit_and_sticks(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1000);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(msp_buf_puts(&b, "0123456789"), MSP_OK);
    }
    assert_int_equal(b.len, 1000);
    assert_int_equal(msp_buf_put_u8(&b, 'x'), MSP_ERR_LIMIT);
    assert_int_equal(b.len, 1000);
    /* Sticky: even a write that would fit now fails. */
    assert_int_equal(msp_buf_put(&b, "", 0), MSP_ERR_LIMIT);
    assert_int_equal(msp_buf_error(&b), MSP_ERR_LIMIT);
    assert_null(msp_buf_cstr(&b));
    msp_buf_free(&b);
    assert_null(b.base);
}

static void test_buf_fixed(void **state)
{
    (void)state;
    uint8_t mem[8];
    msp_buf_t b;
    msp_buf_init_fixed(&b, mem, sizeof(mem));
    assert_int_equal(msp_buf_put_u32(&b, 0x01020304), MSP_OK);
    assert_int_equal(msp_buf_put_u16(&b, 0x0506), MSP_OK);
    assert_int_equal(msp_buf_put_u24(&b, 0x070809), MSP_ERR_LIMIT);
    assert_int_equal(b.len, 6);
    assert_memory_equal(mem, "\x01\x02\x03\x04\x05\x06", 6);
    msp_buf_free(&b); /* wipes, does not free caller memory */
    assert_int_equal(mem[0], 0);
}

static void test_buf_blocks_and_ints(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1 << 20);
    size_t outer, inner;
    assert_int_equal(msp_buf_block_begin(&b, 2, &outer), MSP_OK);
    assert_int_equal(msp_buf_put_u8(&b, 7), MSP_OK);
    assert_int_equal(msp_buf_block_begin(&b, 1, &inner), MSP_OK);
    assert_int_equal(msp_buf_put(&b, "\x11\x22", 2), MSP_OK);
    assert_int_equal(msp_buf_block_end(&b, 1, inner), MSP_OK);
    assert_int_equal(msp_buf_block_end(&b, 2, outer), MSP_OK);
    assert_int_equal(msp_buf_put_u64(&b, 0x0102030405060708ull), MSP_OK);
    assert_int_equal(b.len, 14);
    assert_memory_equal(b.base, "\x00\x04\x07\x02\x11\x22\x01\x02\x03\x04\x05\x06\x07\x08", 14);
    /* The reader reads back what the writer wrote. */
    msp_reader_t r, blk;
    msp_reader_init(&r, b.base, b.len);
    assert_int_equal(msp_read_block(&r, 2, &blk), MSP_OK);
    assert_int_equal(msp_reader_left(&blk), 4);
    msp_buf_free(&b);
}

static void test_buf_block_overflow(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1 << 20);
    size_t m;
    assert_int_equal(msp_buf_block_begin(&b, 1, &m), MSP_OK);
    uint8_t big[256] = {0};
    assert_int_equal(msp_buf_put(&b, big, sizeof(big)), MSP_OK);
    assert_int_equal(msp_buf_block_end(&b, 1, m), MSP_ERR_LIMIT);
    msp_buf_free(&b);
    msp_buf_init(&b, 16);
    assert_int_equal(msp_buf_put_u24(&b, 0x1000000), MSP_ERR_ARGUMENT);
    msp_buf_free(&b);
}

static void test_buf_printf(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 64);
    assert_int_equal(msp_buf_printf(&b, "%s=%d", "x", 42), MSP_OK);
    assert_string_equal(msp_buf_cstr(&b), "x=42");
    assert_int_equal(msp_buf_printf(&b, "%100s", ""), MSP_ERR_LIMIT);
    msp_buf_free(&b);
}

static void test_json_writer(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    msp_json_t j;
    msp_json_init(&j, &b, 0);
    msp_json_object_begin(&j);
    msp_json_key(&j, "s");
    msp_json_string(&j, "a\"b\\c\n\x01\xc3\xa9\xff");
    msp_json_key(&j, "a");
    msp_json_array_begin(&j);
    msp_json_int(&j, -5);
    msp_json_bool(&j, 1);
    msp_json_null(&j);
    msp_json_string(&j, NULL);
    msp_json_array_end(&j);
    msp_json_key(&j, "e");
    msp_json_object_begin(&j);
    msp_json_object_end(&j);
    msp_json_object_end(&j);
    assert_int_equal(msp_json_finish(&j), MSP_OK);
    assert_string_equal(msp_buf_cstr(&b),
                        "{\"s\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\",\"a\":[-5,true,null,null],\"e\":{}}\n");
    msp_buf_free(&b);
}

static void test_json_pretty_and_unbalanced(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    msp_json_t j;
    msp_json_init(&j, &b, 1);
    msp_json_object_begin(&j);
    msp_json_key(&j, "k");
    msp_json_array_begin(&j);
    msp_json_int(&j, 1);
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    assert_int_equal(msp_json_finish(&j), MSP_OK);
    assert_string_equal(msp_buf_cstr(&b), "{\n  \"k\": [\n    1\n  ]\n}\n");
    msp_buf_free(&b);

    msp_buf_init(&b, 4096);
    msp_json_init(&j, &b, 0);
    msp_json_array_begin(&j);
    assert_int_not_equal(msp_json_finish(&j), MSP_OK); /* left open */
    msp_buf_free(&b);

    msp_buf_init(&b, 4096);
    msp_json_init(&j, &b, 0);
    for (int i = 0; i <= MSP_JSON_MAX_DEPTH; i++) {
        msp_json_array_begin(&j);
    }
    assert_int_equal(msp_buf_error(&b), MSP_ERR_LIMIT);
    msp_buf_free(&b);
}

static void test_error(void **state)
{
    (void)state;
    msp_error_t err;
    assert_int_equal(msp_error_set(&err, MSP_ERR_SYNTAX, "f.ucl:3", "expected %s", "'}'"), MSP_ERR_SYNTAX);
    assert_string_equal(err.where, "f.ucl:3");
    assert_string_equal(err.detail, "expected '}'");
    assert_int_equal(msp_error_set(NULL, MSP_ERR_IO, NULL, "x"), MSP_ERR_IO);
    msp_error_clear(&err);
    assert_int_equal(err.code, MSP_OK);
    assert_string_equal(err.where, "");
    assert_string_equal(msp_error_name(MSP_ALERT_DECODE_ERROR), "decode_error");
    assert_string_equal(msp_error_name(MSP_ERR_CLASS_PEER_ALERT + MSP_ALERT_BAD_RECORD_MAC), "bad_record_mac");
    assert_true(MSP_ERR_IS_PEER_ALERT(MSP_ERR_CLASS_PEER_ALERT + 20));
    assert_false(MSP_ERR_IS_PEER_ALERT(MSP_ERR_LIMIT));
    assert_string_equal(msp_error_name(MSP_ERR_LIMIT), "limit exceeded");
    char longer[600];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    msp_error_set(&err, MSP_ERR_INVALID, longer, "%s", longer);
    assert_int_equal(strlen(err.where), sizeof(err.where) - 1);
    assert_int_equal(strlen(err.detail), sizeof(err.detail) - 1);
}

typedef struct seen {
    int calls;
    msp_log_level_t level;
    char msg[64];
} seen_t;

static void sink(void *ctx, msp_log_level_t level, const char *msg)
{
    seen_t *s = ctx;
    s->calls++;
    s->level = level;
    strncpy(s->msg, msg, sizeof(s->msg) - 1);
}

static void test_log(void **state)
{
    (void)state;
    seen_t s = {0};
    msp_logger_t lg = {sink, &s, MSP_LOG_WARN};
    msp_log(&lg, MSP_LOG_ERROR, "a%d", 1);
    msp_log(&lg, MSP_LOG_DEBUG, "dropped");
    msp_log(NULL, MSP_LOG_ERROR, "nobody");
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.level, MSP_LOG_ERROR);
    assert_string_equal(s.msg, "a1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_ints),
        cmocka_unit_test(test_reader_short_reads_do_not_move),
        cmocka_unit_test(test_reader_blocks),
        cmocka_unit_test(test_reader_block_longer_than_input),
        cmocka_unit_test(test_reader_block_prefix_4),
        cmocka_unit_test(test_reader_zero_length),
        cmocka_unit_test(test_reader_copy_too_long),
        cmocka_unit_test(test_buf_grows_to_limit_and_sticks),
        cmocka_unit_test(test_buf_fixed),
        cmocka_unit_test(test_buf_blocks_and_ints),
        cmocka_unit_test(test_buf_block_overflow),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_json_writer),
        cmocka_unit_test(test_json_pretty_and_unbalanced),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
