/*
 * The TLS 1.2 handshake messages TLMSP carries (msp/tlmsp_tls12.h) against
 * the reference's own traffic (tlmsp-handshake/sample-1mbox and
 * sample-2mbox): the real ClientHello, ServerHello, Certificate,
 * ServerKeyExchange and ClientKeyExchange parse, carry what
 * tlmsp-handshake.md 1.4, 1.9, 3.1 and 3.4 state and rebuild
 * byte-identically; the server's signature verifies with its certificate
 * key and fails when tampered; our own signatures, sigalg choice and
 * ECDHE keys work; a key object with no key in it is internal_error, not a
 * good signature; every malformed body is decode_error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "capture.h"
#include "msp/error.h"
#include "msp/tlmsp.h"
#include "tlmsp_kdf.h"
#include "tlmsp_tls12.h"

#define NSAMPLES 2

/* The client's side of each sample's first hop: 1-mbox client -> middlebox, 2-mbox client -> m1. */
static const struct {
    const char *path;
    uint16_t port;
} samples[NSAMPLES] = {
    {"tlmsp-handshake/sample-1mbox/cap.pcap", 10481},
    {"tlmsp-handshake/sample-2mbox/cap.pcap", 10411},
};

static cap_file_t cap[NSAMPLES];
static cap_msg_t up[NSAMPLES][64], down[NSAMPLES][64];
static size_t nup[NSAMPLES], ndown[NSAMPLES];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        if (cap_load(samples[i].path, &cap[i]) != 0) {
            return -1;
        }
        const cap_stream_t *u = cap_to(&cap[i], samples[i].port), *d = cap_from(&cap[i], samples[i].port);
        if (u == NULL || d == NULL) {
            return -1;
        }
        nup[i] = cap_handshake_messages(u, up[i], 64);
        ndown[i] = cap_handshake_messages(d, down[i], 64);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        cap_free(&cap[i]);
    }
    return 0;
}

static const cap_msg_t *msg(size_t sample, int from_server, uint8_t type)
{
    const cap_msg_t *m =
        from_server ? cap_find_msg(down[sample], ndown[sample], type) : cap_find_msg(up[sample], nup[sample], type);
    if (m == NULL) {
        fail_msg("sample %zu: no handshake message %u", sample, type);
    }
    return m;
}

static void rebuilt_equal(msp_buf_t *b, const cap_msg_t *m)
{
    assert_int_equal(msp_buf_error(b), MSP_OK);
    assert_int_equal(b->len, m->len);
    assert_memory_equal(b->base, m->body, m->len);
    b->len = 0;
}

static void expect_ext_order(const msp_tls12_ext_t *ext, size_t n, const uint16_t *want, size_t nwant)
{
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ext[i].type, want[i]);
    }
}

static void expect_list(const uint8_t *list, size_t len, const uint8_t *want, size_t nwant)
{
    assert_int_equal(len, nwant);
    assert_memory_equal(list, want, nwant);
}

/* 3.1 and 1.9: the reference client's hello, its extension order (1.4), groups and sigalgs. */
static void test_client_hello(void **state)
{
    (void)state;
    static const uint16_t order[] = {0x000b, 0x000a, 0x0023, 0x0016, 0x000d, 0xff06, 0xff07};
    static const uint8_t groups[] = {0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18};
    static msp_tls12_client_hello_t h;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    for (size_t s = 0; s < NSAMPLES; s++) {
        const cap_msg_t *m = msg(s, 0, MSP_TLMSP_HT_CLIENT_HELLO);
        assert_int_equal(msp_tls12_client_hello_parse(m->body, m->len, &h), MSP_OK);
        assert_int_equal(h.version, 0x0303);
        assert_int_equal(h.session_id_len, 0);
        assert_true(msp_tls12_u16_list_has(h.cipher_suites, h.cipher_suites_len, 0xc02f));
        assert_true(msp_tls12_u16_list_has(h.cipher_suites, h.cipher_suites_len, 0x00ff));
        assert_false(msp_tls12_u16_list_has(h.cipher_suites, h.cipher_suites_len, 0x1234));
        expect_list(h.compression, h.compression_len, (const uint8_t[]){0}, 1);
        expect_ext_order(h.ext, h.next, order, 7);
        const uint8_t *list;
        size_t len;
        const msp_tls12_ext_t *g = msp_tls12_find_ext(h.ext, h.next, MSP_TLS12_EXT_SUPPORTED_GROUPS);
        assert_int_equal(msp_tls12_ext_u16_list(g, &list, &len), MSP_OK);
        expect_list(list, len, groups, sizeof(groups));
        const msp_tls12_ext_t *a = msp_tls12_find_ext(h.ext, h.next, MSP_TLS12_EXT_SIGNATURE_ALGORITHMS);
        assert_int_equal(msp_tls12_ext_u16_list(a, &list, &len), MSP_OK);
        assert_int_equal(len, 46); /* the 23 algorithms of 1.9 */
        assert_true(list[0] == 0x04 && list[1] == 0x03);
        assert_null(msp_tls12_find_ext(h.ext, h.next, MSP_TLS12_EXT_RENEGOTIATION_INFO));
        assert_int_equal(msp_tls12_client_hello_build(&h, &b), MSP_OK);
        rebuilt_equal(&b, m);
    }
    msp_buf_free(&b);
}

/* 3.4: the demo server's hello, ECDHE-RSA-AES128-GCM-SHA256, extensions ff01 000b 0023 ff06. */
static void test_server_hello(void **state)
{
    (void)state;
    static const uint16_t order[] = {0xff01, 0x000b, 0x0023, 0xff06};
    static msp_tls12_server_hello_t h;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    for (size_t s = 0; s < NSAMPLES; s++) {
        const cap_msg_t *m = msg(s, 1, MSP_TLMSP_HT_SERVER_HELLO);
        assert_int_equal(msp_tls12_server_hello_parse(m->body, m->len, &h), MSP_OK);
        assert_int_equal(h.version, 0x0303);
        assert_int_equal(h.cipher_suite, MSP_TLS12_ECDHE_RSA_AES128_GCM_SHA256);
        assert_int_equal(h.compression, 0);
        assert_int_equal(h.session_id_len, 0);
        expect_ext_order(h.ext, h.next, order, 4);
        assert_int_equal(msp_tls12_server_hello_build(&h, &b), MSP_OK);
        rebuilt_equal(&b, m);
    }
    msp_buf_free(&b);
}

/* The server's leaf certificate key from a sample's Certificate message. */
static EVP_PKEY *server_key(size_t s)
{
    const cap_msg_t *m = msg(s, 1, MSP_TLMSP_HT_CERTIFICATE);
    msp_tls12_certificate_t c;
    assert_int_equal(msp_tls12_certificate_parse(m->body, m->len, &c), MSP_OK);
    assert_true(c.ncerts >= 1);
    const uint8_t *p = c.der[0];
    X509 *x = d2i_X509(NULL, &p, (long)c.der_len[0]);
    assert_non_null(x);
    assert_ptr_equal(p, c.der[0] + c.der_len[0]);
    EVP_PKEY *key = X509_get_pubkey(x);
    X509_free(x);
    assert_non_null(key);
    return key;
}

static void test_certificate(void **state)
{
    (void)state;
    msp_tls12_certificate_t c;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    for (size_t s = 0; s < NSAMPLES; s++) {
        const cap_msg_t *m = msg(s, 1, MSP_TLMSP_HT_CERTIFICATE);
        assert_int_equal(msp_tls12_certificate_parse(m->body, m->len, &c), MSP_OK);
        assert_int_equal(msp_tls12_certificate_build(&c, &b), MSP_OK);
        rebuilt_equal(&b, m);
        EVP_PKEY *key = server_key(s);
        assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_RSA);
        EVP_PKEY_free(key);
    }
    msp_buf_free(&b);
}

/* The randoms the server signed over: the ClientHello's and the ServerHello's. */
static void randoms(size_t s, uint8_t cr[32], uint8_t sr[32])
{
    const cap_msg_t *ch = msg(s, 0, MSP_TLMSP_HT_CLIENT_HELLO), *sh = msg(s, 1, MSP_TLMSP_HT_SERVER_HELLO);
    memcpy(cr, ch->body + 2, 32);
    memcpy(sr, sh->body + 2, 32);
}

/* 1.9: X25519, signed rsa_pss_rsae_sha256 by the server's certificate key; a flipped byte anywhere fails. */
static void test_server_key_exchange(void **state)
{
    (void)state;
    uint8_t cr[32], sr[32], body[1024];
    msp_tls12_server_kex_t k;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    for (size_t s = 0; s < NSAMPLES; s++) {
        const cap_msg_t *m = msg(s, 1, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE);
        assert_int_equal(msp_tls12_server_kex_parse(m->body, m->len, &k), MSP_OK);
        assert_int_equal(k.group, MSP_TLS12_GROUP_X25519);
        assert_int_equal(k.point_len, 32);
        assert_int_equal(k.params_len, 4 + 32);
        assert_ptr_equal(k.params, m->body);
        assert_int_equal(k.sigalg, 0x0804);
        assert_int_equal(msp_tls12_server_kex_build(&k, &b), MSP_OK);
        rebuilt_equal(&b, m);
        EVP_PKEY *key = server_key(s);
        randoms(s, cr, sr);
        assert_int_equal(msp_tls12_server_kex_verify(key, cr, sr, &k), MSP_OK);
        assert_int_equal(msp_tls12_server_kex_verify(key, sr, cr, &k), MSP_ALERT_DECRYPT_ERROR);
        assert_true(m->len <= sizeof(body));
        size_t flips[] = {5, k.params_len - 1, m->len - 1, m->len - k.signature_len};
        for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
            memcpy(body, m->body, m->len);
            body[flips[i]] ^= 0x01;
            assert_int_equal(msp_tls12_server_kex_parse(body, m->len, &k), MSP_OK);
            assert_int_equal(msp_tls12_server_kex_verify(key, cr, sr, &k), MSP_ALERT_DECRYPT_ERROR);
        }
        k.sigalg = 0x0403; /* ECDSA on an RSA key */
        assert_int_equal(msp_tls12_server_kex_verify(key, cr, sr, &k), MSP_ALERT_ILLEGAL_PARAMETER);
        EVP_PKEY_free(key);
    }
    msp_buf_free(&b);
}

static void test_client_key_exchange(void **state)
{
    (void)state;
    const uint8_t *point;
    size_t len;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 16);
    for (size_t s = 0; s < NSAMPLES; s++) {
        const cap_msg_t *m = msg(s, 0, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE);
        assert_int_equal(msp_tls12_client_kex_parse(m->body, m->len, &point, &len), MSP_OK);
        assert_int_equal(len, 32); /* X25519, raw (1.9) */
        assert_ptr_equal(point, m->body + 1);
        assert_int_equal(msp_tls12_client_kex_build(point, len, &b), MSP_OK);
        rebuilt_equal(&b, m);
    }
    msp_buf_free(&b);
}

/* type(1) | length(3) around a body, as the reference frames every message (1.3). */
static void test_handshake_header(void **state)
{
    (void)state;
    const cap_msg_t *m = msg(0, 0, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE);
    msp_buf_t b;
    size_t mark;
    msp_buf_init(&b, 1u << 16);
    assert_int_equal(msp_tls12_hs_begin(&b, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE, &mark), MSP_OK);
    assert_int_equal(msp_buf_put(&b, m->body, m->len), MSP_OK);
    assert_int_equal(msp_tls12_hs_end(&b, mark), MSP_OK);
    assert_int_equal(b.len, 4 + m->len);
    assert_memory_equal(b.base, ((const uint8_t[]){16, 0, 0, (uint8_t)m->len}), 4);
    /* The body as the capture holds it, right after its header. */
    assert_memory_equal(m->body - 4, b.base, b.len);
    msp_buf_free(&b);
}

static EVP_PKEY *rsa_key, *p256_key;

static int keys_setup(void **state)
{
    (void)state;
    rsa_key = EVP_RSA_gen(2048);
    p256_key = EVP_EC_gen("P-256");
    return rsa_key != NULL && p256_key != NULL ? 0 : -1;
}

static int keys_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(p256_key);
    return 0;
}

/* Params -> sign -> build -> parse -> verify; a flipped signature byte, a mismatched key or sigalg fail. */
static void sign_round_trip(EVP_PKEY *key, uint16_t sigalg)
{
    uint8_t cr[32], sr[32], point[32], sig[512], params[64];
    memset(cr, 0xc1, 32);
    memset(sr, 0x5e, 32);
    memset(point, 0x09, 32);
    msp_buf_t pb, b;
    msp_buf_init_fixed(&pb, params, sizeof(params));
    assert_int_equal(msp_tls12_ecdh_params(MSP_TLS12_GROUP_X25519, point, 32, &pb), MSP_OK);
    assert_int_equal(pb.len, 36);
    size_t n = sizeof(sig);
    assert_int_equal(msp_tls12_server_kex_sign(key, sigalg, cr, sr, params, pb.len, sig, &n), MSP_OK);
    msp_tls12_server_kex_t k = {.group = MSP_TLS12_GROUP_X25519,
                                .point = point,
                                .point_len = 32,
                                .sigalg = sigalg,
                                .signature = sig,
                                .signature_len = n};
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_tls12_server_kex_build(&k, &b), MSP_OK);
    assert_int_equal(msp_tls12_server_kex_parse(b.base, b.len, &k), MSP_OK);
    assert_memory_equal(k.params, params, pb.len);
    assert_int_equal(msp_tls12_server_kex_verify(key, cr, sr, &k), MSP_OK);
    sig[n / 2] ^= 0x10;
    k.signature = sig;
    assert_int_equal(msp_tls12_server_kex_verify(key, cr, sr, &k), MSP_ALERT_DECRYPT_ERROR);
    EVP_PKEY *other = key == rsa_key ? p256_key : rsa_key;
    assert_int_equal(msp_tls12_server_kex_verify(other, cr, sr, &k), MSP_ALERT_ILLEGAL_PARAMETER);
    n = sizeof(sig);
    assert_int_equal(msp_tls12_server_kex_sign(other, sigalg, cr, sr, params, pb.len, sig, &n),
                     MSP_ALERT_ILLEGAL_PARAMETER);
    n = 8; /* no room for any signature */
    assert_int_equal(msp_tls12_server_kex_sign(key, sigalg, cr, sr, params, pb.len, sig, &n), MSP_ALERT_INTERNAL_ERROR);
    msp_buf_free(&b);
}

static void test_sign_round_trip(void **state)
{
    (void)state;
    sign_round_trip(rsa_key, 0x0804);
    sign_round_trip(rsa_key, 0x0401);
    sign_round_trip(rsa_key, 0x0201);
    sign_round_trip(p256_key, 0x0403);
    sign_round_trip(p256_key, 0x0203);
}

/*
 * A key object of the right type that holds no key (EVP_PKEY_set_type alone) passes the sigalg table, but OpenSSL
 * cannot set up a verification with it: that is internal_error (sigalg.h), never a good signature, even for a
 * signature that the real key verifies.
 */
static void verify_without_key(EVP_PKEY *real, uint16_t sigalg)
{
    uint8_t cr[32], sr[32], point[32], sig[512], params[64];
    memset(cr, 0xc1, 32);
    memset(sr, 0x5e, 32);
    memset(point, 0x09, 32);
    msp_buf_t pb;
    msp_buf_init_fixed(&pb, params, sizeof(params));
    assert_int_equal(msp_tls12_ecdh_params(MSP_TLS12_GROUP_X25519, point, 32, &pb), MSP_OK);
    size_t n = sizeof(sig);
    assert_int_equal(msp_tls12_server_kex_sign(real, sigalg, cr, sr, params, pb.len, sig, &n), MSP_OK);
    msp_tls12_server_kex_t k = {.group = MSP_TLS12_GROUP_X25519,
                                .point = point,
                                .point_len = 32,
                                .params = params,
                                .params_len = pb.len,
                                .sigalg = sigalg,
                                .signature = sig,
                                .signature_len = n};
    assert_int_equal(msp_tls12_server_kex_verify(real, cr, sr, &k), MSP_OK);
    EVP_PKEY *empty = EVP_PKEY_new();
    assert_non_null(empty);
    assert_int_equal(EVP_PKEY_set_type(empty, EVP_PKEY_get_base_id(real)), 1);
    assert_int_equal(msp_tls12_server_kex_verify(empty, cr, sr, &k), MSP_ALERT_INTERNAL_ERROR);
    EVP_PKEY_free(empty);
}

static void test_verify_without_key(void **state)
{
    (void)state;
    verify_without_key(rsa_key, 0x0804);
    verify_without_key(rsa_key, 0x0401);
    verify_without_key(rsa_key, 0x0201);
    verify_without_key(p256_key, 0x0403);
    verify_without_key(p256_key, 0x0203);
}

static void expect_choice(EVP_PKEY *key, const uint8_t *list, size_t len, int ret, uint16_t want)
{
    uint16_t got = 0;
    assert_int_equal(msp_tls12_choose_sigalg(key, list, len, &got), ret);
    if (ret == MSP_OK) {
        assert_int_equal(got, want);
    }
}

/* RSA: PSS, then PKCS#1 SHA-256, then SHA-1; P-256: ECDSA SHA-256, then SHA-1; no list = SHA-1 (7.4.1.4.1). */
static void test_choose_sigalg(void **state)
{
    (void)state;
    static const uint8_t pkcs1[] = {0x02, 0x01, 0x04, 0x01}, sha1[] = {0x02, 0x03, 0x02, 0x01}, ecdsa[] = {0x04, 0x03},
                         pss384[] = {0x08, 0x05};
    const cap_msg_t *m = msg(0, 0, MSP_TLMSP_HT_CLIENT_HELLO);
    static msp_tls12_client_hello_t h;
    const uint8_t *ref;
    size_t ref_len;
    assert_int_equal(msp_tls12_client_hello_parse(m->body, m->len, &h), MSP_OK);
    const msp_tls12_ext_t *a = msp_tls12_find_ext(h.ext, h.next, MSP_TLS12_EXT_SIGNATURE_ALGORITHMS);
    assert_int_equal(msp_tls12_ext_u16_list(a, &ref, &ref_len), MSP_OK);
    expect_choice(rsa_key, ref, ref_len, MSP_OK, 0x0804);
    expect_choice(rsa_key, pkcs1, sizeof(pkcs1), MSP_OK, 0x0401);
    expect_choice(rsa_key, sha1, sizeof(sha1), MSP_OK, 0x0201);
    expect_choice(rsa_key, NULL, 0, MSP_OK, 0x0201);
    expect_choice(rsa_key, ecdsa, sizeof(ecdsa), MSP_ALERT_HANDSHAKE_FAILURE, 0);
    expect_choice(rsa_key, pss384, sizeof(pss384), MSP_ALERT_HANDSHAKE_FAILURE, 0);
    expect_choice(p256_key, ref, ref_len, MSP_OK, 0x0403);
    expect_choice(p256_key, sha1, sizeof(sha1), MSP_OK, 0x0203);
    expect_choice(p256_key, NULL, 0, MSP_OK, 0x0203);
    expect_choice(p256_key, pkcs1, sizeof(pkcs1), MSP_ALERT_HANDSHAKE_FAILURE, 0);
    EVP_PKEY *p384 = EVP_EC_gen("P-384"), *x = NULL;
    assert_int_equal(msp_tls12_ecdhe_keygen(MSP_TLS12_GROUP_X25519, &x), MSP_OK);
    expect_choice(p384, ref, ref_len, MSP_ALERT_HANDSHAKE_FAILURE, 0); /* 0x0403 names P-256 here */
    expect_choice(x, ref, ref_len, MSP_ALERT_HANDSHAKE_FAILURE, 0);    /* not a signing key */
    EVP_PKEY_free(p384);
    EVP_PKEY_free(x);
}

/* Two fresh keys on group: the wire public values have the 1.9 lengths and give one premaster (6.2). */
static void ecdhe_pair(uint16_t group, size_t want_len)
{
    EVP_PKEY *a = NULL, *b = NULL;
    uint8_t pa[128], pb[128], sa[MSP_TLMSP_MAX_PREMASTER], sb[MSP_TLMSP_MAX_PREMASTER];
    size_t la, lb, na, nb;
    assert_int_equal(msp_tls12_ecdhe_keygen(group, &a), MSP_OK);
    assert_int_equal(msp_tls12_ecdhe_keygen(group, &b), MSP_OK);
    assert_int_equal(msp_tls12_ecdhe_public(a, pa, sizeof(pa), &la), MSP_OK);
    assert_int_equal(msp_tls12_ecdhe_public(b, pb, sizeof(pb), &lb), MSP_OK);
    assert_int_equal(la, want_len);
    assert_int_equal(lb, want_len);
    assert_int_equal(msp_tls12_ecdhe_public(a, pa, want_len - 1, &la), MSP_ERR_LIMIT);
    assert_int_equal(msp_tlmsp_premaster(a, pb, lb, sa, &na), MSP_OK);
    assert_int_equal(msp_tlmsp_premaster(b, pa, want_len, sb, &nb), MSP_OK);
    assert_int_equal(na, 32);
    assert_int_equal(nb, 32);
    assert_memory_equal(sa, sb, na);
    assert_memory_not_equal(pa, pb, want_len);
    OPENSSL_cleanse(sa, sizeof(sa));
    OPENSSL_cleanse(sb, sizeof(sb));
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void test_ecdhe(void **state)
{
    (void)state;
    ecdhe_pair(MSP_TLS12_GROUP_X25519, 32);
    ecdhe_pair(MSP_TLS12_GROUP_P256, 65);
    EVP_PKEY *k = NULL;
    uint8_t pub[65];
    size_t len;
    assert_int_equal(msp_tls12_ecdhe_keygen(MSP_TLS12_GROUP_P256, &k), MSP_OK);
    assert_int_equal(msp_tls12_ecdhe_public(k, pub, sizeof(pub), &len), MSP_OK);
    assert_int_equal(pub[0], 0x04); /* uncompressed */
    EVP_PKEY_free(k);
    /* P-384 is not a group of ours; the stale pointer must be cleared. */
    k = p256_key;
    assert_int_equal(msp_tls12_ecdhe_keygen(0x0018, &k), MSP_ALERT_HANDSHAKE_FAILURE);
    assert_null(k);
}

/* Every cut of a real body fails (but at `valid`, where a hello without extensions ends); so does a trailing byte. */
static void truncations(const cap_msg_t *m, int (*parse)(const uint8_t *, size_t, void *), size_t valid)
{
    static uint8_t body[1u << 16];
    assert_true(m->len < sizeof(body));
    for (size_t cut = 0; cut < m->len; cut++) {
        assert_int_equal(parse(m->body, cut, NULL), cut == valid ? MSP_OK : MSP_ALERT_DECODE_ERROR);
    }
    memcpy(body, m->body, m->len);
    body[m->len] = 0;
    assert_int_equal(parse(body, m->len + 1, NULL), MSP_ALERT_DECODE_ERROR);
}

static int parse_ch(const uint8_t *p, size_t len, void *unused)
{
    static msp_tls12_client_hello_t h;
    (void)unused;
    return msp_tls12_client_hello_parse(p, len, &h);
}

static int parse_sh(const uint8_t *p, size_t len, void *unused)
{
    static msp_tls12_server_hello_t h;
    (void)unused;
    return msp_tls12_server_hello_parse(p, len, &h);
}

static int parse_cert(const uint8_t *p, size_t len, void *unused)
{
    msp_tls12_certificate_t c;
    (void)unused;
    return msp_tls12_certificate_parse(p, len, &c);
}

static int parse_skx(const uint8_t *p, size_t len, void *unused)
{
    msp_tls12_server_kex_t k;
    (void)unused;
    return msp_tls12_server_kex_parse(p, len, &k);
}

static int parse_ckx(const uint8_t *p, size_t len, void *unused)
{
    const uint8_t *point;
    size_t n;
    (void)unused;
    return msp_tls12_client_kex_parse(p, len, &point, &n);
}

/* Where the extensions block of a parsed real hello starts: two bytes before its first extension's type. */
static size_t ext_start(const cap_msg_t *m, const msp_tls12_ext_t *first)
{
    return (size_t)(first->data - m->body) - 4 - 2;
}

static void test_truncations(void **state)
{
    (void)state;
    static msp_tls12_client_hello_t ch;
    static msp_tls12_server_hello_t sh;
    for (size_t s = 0; s < NSAMPLES; s++) {
        const cap_msg_t *m = msg(s, 0, MSP_TLMSP_HT_CLIENT_HELLO);
        assert_int_equal(msp_tls12_client_hello_parse(m->body, m->len, &ch), MSP_OK);
        truncations(m, parse_ch, ext_start(m, &ch.ext[0]));
        m = msg(s, 1, MSP_TLMSP_HT_SERVER_HELLO);
        assert_int_equal(msp_tls12_server_hello_parse(m->body, m->len, &sh), MSP_OK);
        truncations(m, parse_sh, ext_start(m, &sh.ext[0]));
        truncations(msg(s, 1, MSP_TLMSP_HT_CERTIFICATE), parse_cert, SIZE_MAX);
        truncations(msg(s, 1, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE), parse_skx, SIZE_MAX);
        truncations(msg(s, 0, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE), parse_ckx, SIZE_MAX);
    }
}

/* A ClientHello from parts: valid defaults but for what a case changes. */
typedef struct ch_parts {
    size_t sid_len, suites_len, comp_len, next;
    const uint8_t *comp;
    uint16_t types[MSP_TLS12_MAX_EXTENSIONS + 1];
} ch_parts_t;

static int ch_from(const ch_parts_t *c, msp_tls12_client_hello_t *h)
{
    static const uint8_t zeros[64], suites[] = {0xc0, 0x2f, 0x00, 0xff};
    static uint8_t body[4096];
    msp_buf_t b;
    size_t mark;
    *h = (msp_tls12_client_hello_t){.version = 0x0303,
                                    .session_id = zeros,
                                    .session_id_len = c->sid_len,
                                    .cipher_suites = suites,
                                    .cipher_suites_len = c->suites_len,
                                    .compression = c->comp != NULL ? c->comp : zeros,
                                    .compression_len = c->comp_len};
    msp_buf_init_fixed(&b, body, sizeof(body));
    assert_int_equal(msp_tls12_client_hello_build(h, &b), MSP_OK);
    /* The extensions by hand: ext[] has no room for the one past the limit. */
    if (c->next > 0) {
        msp_buf_block_begin(&b, 2, &mark);
        for (size_t i = 0; i < c->next; i++) {
            msp_buf_put_u16(&b, c->types[i]);
            msp_buf_put_u16(&b, (uint16_t)(i % 3));
            msp_buf_put(&b, zeros, i % 3);
        }
        msp_buf_block_end(&b, 2, mark);
    }
    assert_int_equal(msp_buf_error(&b), MSP_OK);
    return msp_tls12_client_hello_parse(body, b.len, h);
}

static void test_hello_rules(void **state)
{
    (void)state;
    static const uint8_t comp_null_last[] = {1, 0}, comp_no_null[] = {1};
    static msp_tls12_client_hello_t h;
    ch_parts_t c = {.suites_len = 4, .comp_len = 1, .next = 3, .types = {10, 11, 13}};
    assert_int_equal(ch_from(&c, &h), MSP_OK);
    assert_int_equal(h.next, 3);
    assert_int_equal(h.ext[2].type, 13);
    assert_int_equal(h.ext[2].len, 2);
    c.types[2] = 10; /* a duplicate extension */
    assert_int_equal(ch_from(&c, &h), MSP_ALERT_DECODE_ERROR);
    c.next = MSP_TLS12_MAX_EXTENSIONS;
    for (size_t i = 0; i <= MSP_TLS12_MAX_EXTENSIONS; i++) {
        c.types[i] = (uint16_t)(0x100 + i);
    }
    assert_int_equal(ch_from(&c, &h), MSP_OK);
    c.next = MSP_TLS12_MAX_EXTENSIONS + 1;
    assert_int_equal(ch_from(&c, &h), MSP_ALERT_DECODE_ERROR);
    c = (ch_parts_t){.suites_len = 4, .comp_len = 1, .sid_len = 32};
    assert_int_equal(ch_from(&c, &h), MSP_OK);
    assert_int_equal(h.next, 0); /* no extensions block at all */
    c.sid_len = 33;
    assert_int_equal(ch_from(&c, &h), MSP_ALERT_DECODE_ERROR);
    c = (ch_parts_t){.suites_len = 3, .comp_len = 1}; /* odd cipher list */
    assert_int_equal(ch_from(&c, &h), MSP_ALERT_DECODE_ERROR);
    c.suites_len = 0;
    assert_int_equal(ch_from(&c, &h), MSP_ALERT_DECODE_ERROR);
    c = (ch_parts_t){.suites_len = 2, .comp_len = 0};
    assert_int_equal(ch_from(&c, &h), MSP_ALERT_DECODE_ERROR);
    c = (ch_parts_t){.suites_len = 2, .comp_len = 1, .comp = comp_no_null};
    assert_int_equal(ch_from(&c, &h), MSP_ALERT_DECODE_ERROR);
    c = (ch_parts_t){.suites_len = 2, .comp_len = 2, .comp = comp_null_last};
    assert_int_equal(ch_from(&c, &h), MSP_OK);
}

/* The real hellos with their extensions block length off by one either way, or empty. */
static void test_extension_block(void **state)
{
    (void)state;
    static uint8_t body[1u << 16];
    static msp_tls12_client_hello_t ch;
    static msp_tls12_server_hello_t sh;
    const cap_msg_t *m = msg(0, 0, MSP_TLMSP_HT_CLIENT_HELLO);
    assert_int_equal(msp_tls12_client_hello_parse(m->body, m->len, &ch), MSP_OK);
    size_t at = ext_start(m, &ch.ext[0]);
    memcpy(body, m->body, m->len);
    body[at + 1]--;
    assert_int_equal(msp_tls12_client_hello_parse(body, m->len, &ch), MSP_ALERT_DECODE_ERROR);
    body[at + 1] += 2;
    assert_int_equal(msp_tls12_client_hello_parse(body, m->len, &ch), MSP_ALERT_DECODE_ERROR);
    body[at] = body[at + 1] = 0; /* an empty block (RFC 5246 allows it) */
    assert_int_equal(msp_tls12_client_hello_parse(body, at + 2, &ch), MSP_OK);
    assert_int_equal(ch.next, 0);
    m = msg(1, 1, MSP_TLMSP_HT_SERVER_HELLO);
    assert_int_equal(msp_tls12_server_hello_parse(m->body, m->len, &sh), MSP_OK);
    at = ext_start(m, &sh.ext[0]);
    memcpy(body, m->body, m->len);
    body[at + 1]--;
    assert_int_equal(msp_tls12_server_hello_parse(body, m->len, &sh), MSP_ALERT_DECODE_ERROR);
    memcpy(body, m->body, m->len);
    body[at + 4] = 0xff; /* the first extension's data runs past the block */
    assert_int_equal(msp_tls12_server_hello_parse(body, m->len, &sh), MSP_ALERT_DECODE_ERROR);
    memcpy(body, m->body, m->len);
    body[2 + 32] = 33; /* session_id length 33: the bytes are there, the length is not allowed */
    assert_int_equal(msp_tls12_server_hello_parse(body, m->len, &sh), MSP_ALERT_DECODE_ERROR);
    /* A duplicated ServerHello extension: the second one's type made the first's. */
    memcpy(body, m->body, m->len);
    size_t second = at + 2 + 4 + sh.ext[0].len;
    body[second] = body[at + 2];
    body[second + 1] = body[at + 3];
    assert_int_equal(msp_tls12_server_hello_parse(body, m->len, &sh), MSP_ALERT_DECODE_ERROR);
}

/* ServerKeyExchange and ClientKeyExchange rules: curve_type 3 only, non-empty point, nothing after. */
static void test_key_exchange_rules(void **state)
{
    (void)state;
    static uint8_t body[1024];
    msp_tls12_server_kex_t k;
    const cap_msg_t *m = msg(0, 1, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE);
    memcpy(body, m->body, m->len);
    for (uint8_t type = 0; type < 5; type++) {
        body[0] = type; /* 1 explicit_prime and 2 explicit_char2 are refused too */
        assert_int_equal(msp_tls12_server_kex_parse(body, m->len, &k), type == 3 ? MSP_OK : MSP_ALERT_DECODE_ERROR);
    }
    static const uint8_t empty_point[] = {3, 0x00, 0x1d, 0, 0x08, 0x04, 0, 0};
    assert_int_equal(msp_tls12_server_kex_parse(empty_point, sizeof(empty_point), &k), MSP_ALERT_DECODE_ERROR);
    static const uint8_t empty_sig[] = {3, 0x00, 0x1d, 1, 9, 0x08, 0x04, 0, 0};
    assert_int_equal(msp_tls12_server_kex_parse(empty_sig, sizeof(empty_sig), &k), MSP_OK);
    assert_int_equal(k.signature_len, 0);
    const uint8_t *point;
    size_t len;
    static const uint8_t ckx_empty[] = {0}, ckx_one[] = {1, 9}, ckx_long[] = {1, 9, 9};
    assert_int_equal(msp_tls12_client_kex_parse(ckx_empty, 1, &point, &len), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tls12_client_kex_parse(ckx_one, 2, &point, &len), MSP_OK);
    assert_int_equal(msp_tls12_client_kex_parse(ckx_long, 3, &point, &len), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tls12_client_kex_parse(NULL, 0, &point, &len), MSP_ALERT_DECODE_ERROR);
}

/* Certificate: an empty list parses, an empty entry does not, nor a chain past MSP_TLS12_MAX_CERTS. */
static void test_certificate_rules(void **state)
{
    (void)state;
    static const uint8_t empty_list[] = {0, 0, 0}, empty_entry[] = {0, 0, 3, 0, 0, 0};
    msp_tls12_certificate_t c;
    assert_int_equal(msp_tls12_certificate_parse(empty_list, 3, &c), MSP_OK);
    assert_int_equal(c.ncerts, 0);
    assert_int_equal(msp_tls12_certificate_parse(empty_entry, 6, &c), MSP_ALERT_DECODE_ERROR);
    static const uint8_t der[] = {0x30, 0x00};
    msp_tls12_certificate_t many = {.ncerts = MSP_TLS12_MAX_CERTS};
    for (size_t i = 0; i < MSP_TLS12_MAX_CERTS; i++) {
        many.der[i] = der;
        many.der_len[i] = sizeof(der);
    }
    uint8_t body[3 + (MSP_TLS12_MAX_CERTS + 1) * 5];
    msp_buf_t b;
    msp_buf_init_fixed(&b, body, sizeof(body));
    assert_int_equal(msp_tls12_certificate_build(&many, &b), MSP_OK);
    assert_int_equal(msp_tls12_certificate_parse(body, b.len, &c), MSP_OK);
    assert_int_equal(c.ncerts, MSP_TLS12_MAX_CERTS);
    /* One more entry: append it and grow the list length by its 5 bytes. */
    memcpy(body + b.len, (const uint8_t[]){0, 0, 2, 0x30, 0x00}, 5);
    body[2] = (uint8_t)(body[2] + 5);
    assert_int_equal(msp_tls12_certificate_parse(body, b.len + 5, &c), MSP_ALERT_DECODE_ERROR);
}

/* supported_groups / signature_algorithms data: v16<u16*>, non-empty, even, nothing after. */
static void test_u16_list_rules(void **state)
{
    (void)state;
    static const struct {
        uint8_t data[6];
        size_t len;
        int ret;
    } cases[] = {
        {{0, 2, 0, 0x1d}, 4, MSP_OK},
        {{0, 0}, 2, MSP_ALERT_DECODE_ERROR},
        {{0, 1, 0x1d}, 3, MSP_ALERT_DECODE_ERROR},
        {{0, 2, 0, 0x1d, 0}, 5, MSP_ALERT_DECODE_ERROR},
        {{0, 4, 0, 0x1d}, 4, MSP_ALERT_DECODE_ERROR},
        {{0}, 1, MSP_ALERT_DECODE_ERROR},
        {{0}, 0, MSP_ALERT_DECODE_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msp_tls12_ext_t e = {MSP_TLS12_EXT_SUPPORTED_GROUPS, cases[i].data, cases[i].len};
        const uint8_t *list;
        size_t len;
        if (msp_tls12_ext_u16_list(&e, &list, &len) != cases[i].ret) {
            fail_msg("case %zu", i);
        }
    }
    static const uint8_t odd[] = {0x00, 0x1d, 0x00};
    assert_true(msp_tls12_u16_list_has(odd, 3, 0x001d));
    assert_false(msp_tls12_u16_list_has(odd, 3, 0x1d00)); /* pairs only, from the start */
}

/* Captures and keys are loaded once: key generation is the slow part. */
static int setup_all(void **state)
{
    return setup(state) == 0 && keys_setup(state) == 0 ? 0 : -1;
}

static int teardown_all(void **state)
{
    keys_teardown(state);
    return teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_hello),        cmocka_unit_test(test_server_hello),
        cmocka_unit_test(test_certificate),         cmocka_unit_test(test_server_key_exchange),
        cmocka_unit_test(test_client_key_exchange), cmocka_unit_test(test_handshake_header),
        cmocka_unit_test(test_truncations),         cmocka_unit_test(test_extension_block),
        cmocka_unit_test(test_key_exchange_rules),  cmocka_unit_test(test_sign_round_trip),
        cmocka_unit_test(test_choose_sigalg),       cmocka_unit_test(test_ecdhe),
        cmocka_unit_test(test_hello_rules),         cmocka_unit_test(test_certificate_rules),
        cmocka_unit_test(test_u16_list_rules),      cmocka_unit_test(test_verify_without_key),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
