/*
 * The middlebox handshake messages against the reference's 1-middlebox
 * session (tlmsp-handshake/vectors-1mbox.txt): MiddleboxHello,
 * MiddleboxKeyExchange and MiddleboxHelloDone parse, carry what 5.1-5.4
 * say (the key-exchange points are the public halves of the private keys
 * in the file) and rebuild byte-identically; malformed bodies fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "tlmsp_mbox_msg.h"
#include "vectors.h"

static vec_file_t f;

static int setup(void **state)
{
    (void)state;
    return vec_load(&f, "tlmsp-handshake/vectors-1mbox.txt");
}

static int teardown(void **state)
{
    (void)state;
    vec_free(&f);
    return 0;
}

static size_t body(const char *label, uint8_t *out, size_t max)
{
    long n = vec_hex(f.text, label, out, max);
    if (n <= 0) {
        fail_msg("vector '%s' missing", label);
    }
    return (size_t)n;
}

static void rebuilt_equal(msp_buf_t *b, const uint8_t *want, size_t n)
{
    assert_int_equal(msp_buf_error(b), MSP_OK);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->base, want, n);
    b->len = 0;
}

static void test_hello_and_done(void **state)
{
    (void)state;
    uint8_t raw[128], random[32];
    size_t n = body("MiddleboxHello(51) body", raw, sizeof(raw));
    msp_tlmsp_mbox_hello_t h;
    assert_int_equal(msp_tlmsp_mbox_hello_parse(raw, n, &h), MSP_OK);
    assert_int_equal(h.id, 51);
    assert_int_equal(n, 71); /* 5.1 */
    assert_memory_equal(h.to_client_random, raw + 3, 32);
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_tlmsp_mbox_hello_build(&h, &b), MSP_OK);
    rebuilt_equal(&b, raw, n);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(msp_tlmsp_mbox_hello_parse(raw, cut, &h), MSP_ALERT_DECODE_ERROR);
    }
    raw[n - 2] = 1; /* a non-empty cipher_suites */
    assert_int_equal(msp_tlmsp_mbox_hello_parse(raw, n, &h), MSP_ALERT_DECODE_ERROR);
    memset(random, 0, sizeof(random));
    uint8_t id;
    n = body("MiddleboxHelloDone(51) body", raw, sizeof(raw));
    assert_int_equal(msp_tlmsp_mbox_hello_done_parse(raw, n, &id), MSP_OK);
    assert_int_equal(id, 51);
    assert_int_equal(msp_tlmsp_mbox_hello_done_build(id, &b), MSP_OK);
    rebuilt_equal(&b, raw, n);
    static const uint8_t client_id[] = {MSP_TLMSP_ID_CLIENT}, extra[] = {51, 0};
    assert_int_equal(msp_tlmsp_mbox_hello_done_parse(client_id, 1, &id), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_mbox_hello_done_parse(extra, 2, &id), MSP_ALERT_DECODE_ERROR);
    msp_buf_free(&b);
}

static void expect_public_of(const msp_tlmsp_kex_half_t *h, const char *der_label)
{
    uint8_t der[256], pub[64];
    long n = vec_hex(f.text, der_label, der, sizeof(der));
    assert_true(n > 0);
    const uint8_t *p = der;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, n);
    assert_non_null(k);
    size_t plen = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &plen), 1);
    EVP_PKEY_free(k);
    assert_int_equal(h->point_len, plen);
    assert_memory_equal(h->point, pub, plen);
}

static void test_key_exchange(void **state)
{
    (void)state;
    static uint8_t raw[2048], hello_raw[128];
    size_t n = body("MiddleboxKeyExchange(51) body", raw, sizeof(raw));
    msp_tlmsp_mbox_kex_t k;
    assert_int_equal(msp_tlmsp_mbox_kex_parse(raw, n, &k), MSP_OK);
    assert_int_equal(k.id, 51);
    assert_int_equal(k.to_client.group, 0x001d); /* X25519 */
    assert_int_equal(k.to_server.group, 0x001d);
    assert_int_equal(k.to_client.sigalg, 0x0201); /* rsa_pkcs1_sha1, the legacy default (5.3) */
    assert_int_equal(k.to_client.signature_len, 256);
    assert_int_equal(n, 593); /* 5.3: X25519 + RSA-2048 */
    expect_public_of(&k.to_client, "mbox 51 to_client private (DER)");
    expect_public_of(&k.to_server, "mbox 51 to_server private (DER)");
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_tlmsp_mbox_kex_build(&k, &b), MSP_OK);
    rebuilt_equal(&b, raw, n);
    /* The signed data: both randoms of the MiddleboxHello, then exactly the params bytes. */
    size_t hn = body("MiddleboxHello(51) body", hello_raw, sizeof(hello_raw));
    msp_tlmsp_mbox_hello_t h;
    assert_int_equal(msp_tlmsp_mbox_hello_parse(hello_raw, hn, &h), MSP_OK);
    assert_int_equal(msp_tlmsp_mbox_kex_signed_data(&h, &k.to_server, &b), MSP_OK);
    assert_int_equal(b.len, 64 + k.to_server.params_len);
    assert_memory_equal(b.base, hello_raw + 3, 64);
    assert_memory_equal(b.base + 64, k.to_server.params, k.to_server.params_len);
    msp_buf_free(&b);
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(msp_tlmsp_mbox_kex_parse(raw, cut, &k), MSP_ALERT_DECODE_ERROR);
    }
    raw[1] = 1; /* explicit curve parameters are not supported */
    assert_int_equal(msp_tlmsp_mbox_kex_parse(raw, n, &k), MSP_ALERT_DECODE_ERROR);
}

static void test_cert_and_finished(void **state)
{
    (void)state;
    static const uint8_t a[] = {0x30, 0x03, 0x02, 0x01, 0x05}, c[] = {0x30, 0x00};
    msp_tlmsp_mbox_cert_t m = {.id = 0x44, .ncerts = 2, .der = {a, c}, .der_len = {sizeof(a), sizeof(c)}};
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_tlmsp_mbox_cert_build(&m, &b), MSP_OK);
    static const uint8_t want[] = {0x44, 0, 0, 13, 0, 0, 5, 0x30, 0x03, 0x02, 0x01, 0x05, 0, 0, 2, 0x30, 0x00};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.base, want, sizeof(want));
    msp_tlmsp_mbox_cert_t back;
    assert_int_equal(msp_tlmsp_mbox_cert_parse(b.base, b.len, &back), MSP_OK);
    assert_int_equal(back.ncerts, 2);
    assert_int_equal(back.der_len[0], sizeof(a));
    static const uint8_t empty[] = {0x44, 0, 0, 0};
    assert_int_equal(msp_tlmsp_mbox_cert_parse(empty, sizeof(empty), &back), MSP_ALERT_DECODE_ERROR);
    b.len = 0;
    msp_tlmsp_mbox_finished_t fin = {.id = 51};
    assert_int_equal(vec_hex(f.text, "MiddleboxFinished client->m (m=51) verify_data", fin.verify_data, 12), 12);
    assert_int_equal(msp_tlmsp_mbox_finished_build(&fin, &b), MSP_OK);
    assert_int_equal(b.len, 13);
    msp_tlmsp_mbox_finished_t fb;
    assert_int_equal(msp_tlmsp_mbox_finished_parse(b.base, b.len, &fb), MSP_OK);
    assert_memory_equal(fb.verify_data, fin.verify_data, 12);
    assert_int_equal(msp_tlmsp_mbox_finished_parse(b.base, 12, &fb), MSP_ALERT_DECODE_ERROR);
    msp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_and_done),
        cmocka_unit_test(test_key_exchange),
        cmocka_unit_test(test_cert_and_finished),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
