/*
 * Batches of reader-check hashes (msp_tlmsp_reader_check_hashes, libipsec-mb
 * multi-buffer SHA-256) give exactly what one-by-one OpenSSL hashing gives,
 * for every batch size, with and without M_INFO, for fragment lengths from
 * the empty GCM fragment to the largest a reader accepts; and the reader-check
 * MAC in two steps equals the one-step function the container vectors verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "tlmsp_container.h"

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void test_batches_equal_single(void **state)
{
    (void)state;
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    static const size_t lens[] = {28, 29, 91, 1400 + 28, 16383, 16383 + 64};
    static const uint8_t m_info[5] = {0x33, 1, 0x01, 0, 1};
    uint8_t *buf = malloc(MSP_TLMSP_HASH_BATCH * 16500);
    fill(buf, MSP_TLMSP_HASH_BATCH * 16500, 7);
    for (size_t n = 1; n <= MSP_TLMSP_HASH_BATCH; n++) {
        msp_tlmsp_mac_in_t in[MSP_TLMSP_HASH_BATCH];
        const uint8_t *frag[MSP_TLMSP_HASH_BATCH];
        size_t len[MSP_TLMSP_HASH_BATCH];
        uint8_t got[MSP_TLMSP_HASH_BATCH][32], want[32];
        for (size_t i = 0; i < n; i++) {
            in[i] = (msp_tlmsp_mac_in_t){i % 2 ? 23 : 21,       0x2daa2eb1,
                                         1000 * n + i,          (uint16_t)(i % 3 ? 0 : 0x4000),
                                         i % 3 ? NULL : m_info, i % 3 ? 0 : sizeof(m_info)};
            frag[i] = buf + i * 16500;
            len[i] = lens[(i + n) % (sizeof(lens) / sizeof(lens[0]))];
        }
        assert_int_equal(msp_tlmsp_reader_check_hashes(&g, n, in, frag, len, got), MSP_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(msp_tlmsp_reader_check_hash(&g, &in[i], frag[i], len[i], want), MSP_OK);
            assert_memory_equal(got[i], want, 32);
        }
    }
    msp_tlmsp_mac_in_t one[MSP_TLMSP_HASH_BATCH + 1];
    assert_int_equal(msp_tlmsp_reader_check_hashes(&g, MSP_TLMSP_HASH_BATCH + 1, one, NULL, NULL, NULL),
                     MSP_ERR_ARGUMENT);
    free(buf);
    msp_tlmsp_gcm_free(&g);
}

static void test_two_steps_equal_one(void **state)
{
    (void)state;
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    uint8_t frag[300], key[16], nonce[12], h[32], a[16], b[16];
    fill(frag, sizeof(frag), 1);
    fill(key, sizeof(key), 2);
    fill(nonce, sizeof(nonce), 3);
    msp_tlmsp_mac_in_t in = {23, 1, 7, 0x1000, NULL, 0};
    assert_int_equal(msp_tlmsp_reader_check_mac(&g, key, &in, frag, sizeof(frag), nonce, a), MSP_OK);
    assert_int_equal(msp_tlmsp_reader_check_hash(&g, &in, frag, sizeof(frag), h), MSP_OK);
    assert_int_equal(msp_tlmsp_reader_check_gmac(&g, key, nonce, h, b), MSP_OK);
    assert_memory_equal(a, b, 16);
    in.seq++;
    assert_int_equal(msp_tlmsp_reader_check_hash(&g, &in, frag, sizeof(frag), h), MSP_OK);
    assert_int_equal(msp_tlmsp_reader_check_gmac(&g, key, nonce, h, b), MSP_OK);
    assert_memory_not_equal(a, b, 16); /* the sequence number is part of the input */
    msp_tlmsp_gcm_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_equal_single),
        cmocka_unit_test(test_two_steps_equal_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
