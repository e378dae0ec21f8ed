/*
 * Our decoders on the reference's own traffic: the 1-middlebox capture of
 * tlmsp-handshake/sample-1mbox. Every record of every hop and
 * direction decodes; the middlebox's certificate and the server's give the
 * IDList hash the vectors state; both MiddleboxKeyExchange signatures
 * verify with the middlebox's certificate key, and fail when tampered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "capture.h"
#include "msp/error.h"
#include "reader.h"
#include "tlmsp_kdf.h"
#include "tlmsp_mbox_msg.h"
#include "vectors.h"

#define MBOX_PORT 10481
#define SERVER_PORT 10482

static cap_file_t cap;
static vec_file_t vec;

static int setup(void **state)
{
    (void)state;
    if (cap_load("tlmsp-handshake/sample-1mbox/cap.pcap", &cap) != 0) {
        return -1;
    }
    return vec_load(&vec, "tlmsp-handshake/vectors-1mbox.txt");
}

static int teardown(void **state)
{
    (void)state;
    cap_free(&cap);
    vec_free(&vec);
    return 0;
}

/* Every record of a stream: a known type, version 0x0303 (the client's first record may say 0x0301), all bytes used. */
static size_t walk_records(const cap_stream_t *s)
{
    msp_reader_t r, payload;
    msp_reader_init(&r, s->data, s->len);
    size_t n = 0;
    while (msp_reader_left(&r) > 0) {
        uint8_t type;
        uint16_t version;
        assert_int_equal(msp_read_u8(&r, &type), MSP_OK);
        assert_int_equal(msp_read_u16(&r, &version), MSP_OK);
        assert_int_equal(msp_read_block(&r, 2, &payload), MSP_OK);
        assert_true(type >= 20 && type <= 23);
        assert_true(version == 0x0303 || (n == 0 && version == 0x0301));
        n++;
    }
    return n;
}

static void test_every_record_decodes(void **state)
{
    (void)state;
    const cap_stream_t *streams[] = {cap_to(&cap, MBOX_PORT), cap_from(&cap, MBOX_PORT), cap_to(&cap, SERVER_PORT),
                                     cap_from(&cap, SERVER_PORT)};
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(streams[i]);
        assert_true(walk_records(streams[i]) >= 4);
    }
}

/* The leaf of a standard Certificate body: v24< v24<DER>* >. */
static void leaf_of_certificate(const cap_msg_t *m, const uint8_t **der, size_t *len)
{
    msp_reader_t r, list, cert;
    msp_reader_init(&r, m->body, m->len);
    assert_int_equal(msp_read_block(&r, 3, &list), MSP_OK);
    assert_int_equal(msp_read_block(&list, 3, &cert), MSP_OK);
    *der = cert.pos;
    *len = msp_reader_left(&cert);
}

static void test_idlist_hash_from_certificates(void **state)
{
    (void)state;
    static cap_msg_t msgs[64];
    size_t n = cap_handshake_messages(cap_from(&cap, MBOX_PORT), msgs, 64);
    const cap_msg_t *server_cert = cap_find_msg(msgs, n, MSP_TLMSP_HT_CERTIFICATE);
    const cap_msg_t *mbox_cert = cap_find_msg(msgs, n, MSP_TLMSP_HT_MIDDLEBOX_CERT);
    assert_non_null(server_cert);
    assert_non_null(mbox_cert);
    msp_tlmsp_mbox_cert_t mc;
    assert_int_equal(msp_tlmsp_mbox_cert_parse(mbox_cert->body, mbox_cert->len, &mc), MSP_OK);
    assert_int_equal(mc.id, 51);
    const uint8_t *sder;
    size_t slen;
    leaf_of_certificate(server_cert, &sder, &slen);
    /* 6.3: the middleboxes' leaf certificates in list order, then the server's; no client certificate here. */
    msp_iov_t certs[] = {{mc.der[0], mc.der_len[0]}, {sder, slen}};
    uint8_t got[32], want[32], server_hash[32];
    assert_int_equal(msp_tlmsp_idlist_hash(certs, 2, got), MSP_OK);
    assert_int_equal(vec_hex(vec.text, "idlist_hash", want, 32), 32);
    assert_memory_equal(got, want, 32);
    assert_int_equal(msp_tlmsp_idlist_hash(&certs[1], 1, got), MSP_OK);
    assert_int_equal(vec_hex(vec.text, "SHA-256(server cert DER)", server_hash, 32), 32);
    assert_memory_equal(got, server_hash, 32);
}

static void test_key_exchange_signatures(void **state)
{
    (void)state;
    static cap_msg_t msgs[64];
    size_t n = cap_handshake_messages(cap_from(&cap, MBOX_PORT), msgs, 64);
    const cap_msg_t *hm = cap_find_msg(msgs, n, MSP_TLMSP_HT_MIDDLEBOX_HELLO);
    const cap_msg_t *cm = cap_find_msg(msgs, n, MSP_TLMSP_HT_MIDDLEBOX_CERT);
    const cap_msg_t *km = cap_find_msg(msgs, n, MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE);
    assert_true(hm != NULL && cm != NULL && km != NULL);
    msp_tlmsp_mbox_hello_t hello;
    msp_tlmsp_mbox_cert_t cert;
    msp_tlmsp_mbox_kex_t kex;
    assert_int_equal(msp_tlmsp_mbox_hello_parse(hm->body, hm->len, &hello), MSP_OK);
    assert_int_equal(msp_tlmsp_mbox_cert_parse(cm->body, cm->len, &cert), MSP_OK);
    assert_int_equal(msp_tlmsp_mbox_kex_parse(km->body, km->len, &kex), MSP_OK);
    const uint8_t *p = cert.der[0];
    X509 *x = d2i_X509(NULL, &p, (long)cert.der_len[0]);
    assert_non_null(x);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_int_equal(msp_tlmsp_mbox_kex_verify(pub, &hello, &kex.to_client), MSP_OK);
    assert_int_equal(msp_tlmsp_mbox_kex_verify(pub, &hello, &kex.to_server), MSP_OK);
    /* Swapped halves, a changed random, a flipped signature bit: each fails. */
    assert_int_equal(msp_tlmsp_mbox_kex_verify(pub, &hello,
                                               &(msp_tlmsp_kex_half_t){.params = kex.to_client.params,
                                                                       .params_len = kex.to_client.params_len,
                                                                       .group = kex.to_client.group,
                                                                       .point = kex.to_server.point,
                                                                       .point_len = kex.to_server.point_len,
                                                                       .sigalg = kex.to_client.sigalg,
                                                                       .signature = kex.to_client.signature,
                                                                       .signature_len = kex.to_client.signature_len}),
                     MSP_ALERT_DECRYPT_ERROR);
    hello.to_server_random[0] ^= 1;
    assert_int_equal(msp_tlmsp_mbox_kex_verify(pub, &hello, &kex.to_client), MSP_ALERT_DECRYPT_ERROR);
    hello.to_server_random[0] ^= 1;
    uint8_t sig[512];
    memcpy(sig, kex.to_client.signature, kex.to_client.signature_len);
    sig[10] ^= 0x80;
    msp_tlmsp_kex_half_t bad = kex.to_client;
    bad.signature = sig;
    assert_int_equal(msp_tlmsp_mbox_kex_verify(pub, &hello, &bad), MSP_ALERT_DECRYPT_ERROR);
    bad.sigalg = 0x0403; /* ECDSA on an RSA key */
    assert_int_equal(msp_tlmsp_mbox_kex_verify(pub, &hello, &bad), MSP_ALERT_ILLEGAL_PARAMETER);
    X509_free(x);
}

/* Our own signatures verify, for the reference's algorithm and the modern ones. */
static void test_sign_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
    assert_non_null(rsa);
    assert_non_null(ec);
    msp_tlmsp_mbox_hello_t hello = {.id = 0x40};
    static const uint8_t point[32] = {5};
    struct {
        EVP_PKEY *key;
        uint16_t sigalg;
    } cases[] = {{rsa, 0x0201}, {rsa, 0x0401}, {rsa, 0x0804}, {ec, 0x0203}, {ec, 0x0403}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msp_tlmsp_kex_half_t h = {.group = 0x001d, .point = point, .point_len = 32, .sigalg = cases[i].sigalg};
        uint8_t sig[512];
        size_t n = sizeof(sig);
        assert_int_equal(msp_tlmsp_mbox_kex_sign(cases[i].key, cases[i].sigalg, &hello, &h, sig, &n), MSP_OK);
        h.signature = sig;
        h.signature_len = n;
        assert_int_equal(msp_tlmsp_mbox_kex_verify(cases[i].key, &hello, &h), MSP_OK);
        sig[n - 1] ^= 1;
        assert_int_equal(msp_tlmsp_mbox_kex_verify(cases[i].key, &hello, &h), MSP_ALERT_DECRYPT_ERROR);
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_record_decodes),
        cmocka_unit_test(test_idlist_hash_from_certificates),
        cmocka_unit_test(test_key_exchange_signatures),
        cmocka_unit_test(test_sign_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
