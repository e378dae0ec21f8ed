/*
 * The reference's 2-middlebox session (tlmsp-handshake/sample-2mbox):
 * from the capture and the ephemeral private keys its dump patch logged,
 * recompute all five master secrets (client-server, client-m1, client-m2,
 * server-m1, server-m2) and compare them with the ones it dumped. This
 * checks the list order and the two-certificate IDList hash, which the
 * 1-middlebox vectors cannot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "capture.h"
#include "msp/error.h"
#include "reader.h"
#include "msp/tlmsp_hello.h"
#include "tlmsp_kdf.h"
#include "tlmsp_mbox_msg.h"
#include "vectors.h"

#define DIR "tlmsp-handshake/sample-2mbox/"
#define FIRST_HOP_PORT 10411

static cap_file_t cap;
static vec_file_t cli, srv, mb;

static int setup(void **state)
{
    (void)state;
    return cap_load(DIR "cap.pcap", &cap) == 0 && vec_load(&cli, DIR "cli.log") == 0 &&
                   vec_load(&srv, DIR "srv.log") == 0 && vec_load(&mb, DIR "mb.log") == 0
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    cap_free(&cap);
    vec_free(&cli);
    vec_free(&srv);
    vec_free(&mb);
    return 0;
}

/* The hex after "<tag> self=<id> der=" or "self=<id> peer_entity=<peer> ms=" in a log. */
static size_t logged(const vec_file_t *log, const char *key, uint8_t *out, size_t max)
{
    const char *p = strstr(log->text, key);
    if (p == NULL) {
        fail_msg("log line '%s' missing", key);
    }
    p += strlen(key);
    size_t n = strspn(p, "0123456789abcdef");
    long got = vec_unhex(p, n, out, max);
    assert_true(got > 0);
    return (size_t)got;
}

static EVP_PKEY *logged_key(const vec_file_t *log, const char *key)
{
    uint8_t der[256];
    size_t n = logged(log, key, der, sizeof(der));
    const uint8_t *p = der;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)n);
    assert_non_null(k);
    return k;
}

static void raw_public(EVP_PKEY *k, uint8_t out[32])
{
    size_t n = 32;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, out, &n), 1);
}

/* The 0xff06 extension of a ClientHello body. */
static void client_hello(const cap_msg_t *ch, uint8_t random[32], msp_tlmsp_ext_client_t *ext)
{
    msp_reader_t r, v, exts;
    uint16_t version;
    msp_reader_init(&r, ch->body, ch->len);
    assert_int_equal(msp_read_u16(&r, &version), MSP_OK);
    assert_int_equal(msp_read_copy(&r, random, 32), MSP_OK);
    assert_int_equal(msp_read_block(&r, 1, &v), MSP_OK); /* session_id */
    assert_int_equal(msp_read_block(&r, 2, &v), MSP_OK); /* cipher_suites */
    assert_int_equal(msp_read_block(&r, 1, &v), MSP_OK); /* compression */
    assert_int_equal(msp_read_block(&r, 2, &exts), MSP_OK);
    while (msp_reader_left(&exts) > 0) {
        uint16_t type;
        assert_int_equal(msp_read_u16(&exts, &type), MSP_OK);
        assert_int_equal(msp_read_block(&exts, 2, &v), MSP_OK);
        if (type == MSP_TLMSP_EXT_TLMSP) {
            assert_int_equal(msp_tlmsp_ext_client_parse(v.pos, msp_reader_left(&v), ext), MSP_OK);
            return;
        }
    }
    fail_msg("no TLMSP extension in the ClientHello");
}

/* The named-curve point of a ServerKeyExchange or ClientKeyExchange body. */
static void point_of(const cap_msg_t *m, int server, uint8_t out[32])
{
    msp_reader_t r, v;
    uint8_t curve_type;
    uint16_t group;
    msp_reader_init(&r, m->body, m->len);
    if (server) {
        assert_int_equal(msp_read_u8(&r, &curve_type), MSP_OK);
        assert_int_equal(msp_read_u16(&r, &group), MSP_OK);
        assert_int_equal(group, 0x001d);
    }
    assert_int_equal(msp_read_block(&r, 1, &v), MSP_OK);
    assert_int_equal(msp_reader_left(&v), 32);
    memcpy(out, v.pos, 32);
}

static void test_five_master_secrets(void **state)
{
    (void)state;
    static cap_msg_t up[64], down[64];
    size_t nu = cap_handshake_messages(cap_to(&cap, FIRST_HOP_PORT), up, 64);
    size_t nd = cap_handshake_messages(cap_from(&cap, FIRST_HOP_PORT), down, 64);
    uint8_t client_random[32], server_random[32], client_pub[32], server_pub[32];
    static msp_tlmsp_ext_client_t ext;
    client_hello(cap_find_msg(up, nu, MSP_TLMSP_HT_CLIENT_HELLO), client_random, &ext);
    assert_int_equal(ext.middleboxes.n, 2);
    const cap_msg_t *sh = cap_find_msg(down, nd, MSP_TLMSP_HT_SERVER_HELLO);
    assert_non_null(sh);
    memcpy(server_random, sh->body + 2, 32);
    point_of(cap_find_msg(up, nu, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE), 0, client_pub);
    point_of(cap_find_msg(down, nd, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE), 1, server_pub);

    /* Per middlebox, in list order: its hello and its leaf certificate. */
    msp_tlmsp_mbox_hello_t hello[2];
    msp_iov_t certs[3];
    for (size_t i = 0; i < nd; i++) {
        for (size_t k = 0; k < 2; k++) {
            if (down[i].type == MSP_TLMSP_HT_MIDDLEBOX_HELLO && down[i].body[0] == ext.middleboxes.m[k].id) {
                assert_int_equal(msp_tlmsp_mbox_hello_parse(down[i].body, down[i].len, &hello[k]), MSP_OK);
            }
            if (down[i].type == MSP_TLMSP_HT_MIDDLEBOX_CERT && down[i].body[0] == ext.middleboxes.m[k].id) {
                static msp_tlmsp_mbox_cert_t mc[2];
                assert_int_equal(msp_tlmsp_mbox_cert_parse(down[i].body, down[i].len, &mc[k]), MSP_OK);
                certs[k] = (msp_iov_t){mc[k].der[0], mc[k].der_len[0]};
            }
        }
    }
    msp_reader_t r, list, leaf;
    const cap_msg_t *sc = cap_find_msg(down, nd, MSP_TLMSP_HT_CERTIFICATE);
    msp_reader_init(&r, sc->body, sc->len);
    assert_int_equal(msp_read_block(&r, 3, &list), MSP_OK);
    assert_int_equal(msp_read_block(&list, 3, &leaf), MSP_OK);
    certs[2] = (msp_iov_t){leaf.pos, msp_reader_left(&leaf)};
    uint8_t idlist[32];
    assert_int_equal(msp_tlmsp_idlist_hash(certs, 3, idlist), MSP_OK);

    EVP_PKEY *client = logged_key(&cli, "endpoint-kex self=1 der=");
    EVP_PKEY *server = logged_key(&srv, "endpoint-kex self=254 der=");
    uint8_t pm[64], ms[48], want[48];
    size_t n;
    char key[96];
    assert_int_equal(msp_tlmsp_premaster(client, server_pub, 32, pm, &n), MSP_OK);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, idlist, client_random, server_random, ms), MSP_OK);
    logged(&cli, "self=1 peer_entity=254 ms=", want, 48);
    assert_memory_equal(ms, want, 48);
    for (size_t k = 0; k < 2; k++) {
        uint8_t id = ext.middleboxes.m[k].id, pub[32];
        snprintf(key, sizeof(key), "mbox-to-client-kex self=%u der=", id);
        EVP_PKEY *to_client = logged_key(&mb, key);
        snprintf(key, sizeof(key), "mbox-to-server-kex self=%u der=", id);
        EVP_PKEY *to_server = logged_key(&mb, key);
        raw_public(to_client, pub);
        assert_int_equal(msp_tlmsp_premaster(client, pub, 32, pm, &n), MSP_OK);
        assert_int_equal(msp_tlmsp_master_secret(pm, n, idlist, client_random, hello[k].to_client_random, ms), MSP_OK);
        snprintf(key, sizeof(key), "self=1 peer_entity=%u ms=", id);
        logged(&cli, key, want, 48);
        assert_memory_equal(ms, want, 48);
        raw_public(to_server, pub);
        assert_int_equal(msp_tlmsp_premaster(server, pub, 32, pm, &n), MSP_OK);
        assert_int_equal(msp_tlmsp_master_secret(pm, n, idlist, server_random, hello[k].to_server_random, ms), MSP_OK);
        snprintf(key, sizeof(key), "self=%u peer_entity=254 ms=", id);
        logged(&mb, key, want, 48);
        assert_memory_equal(ms, want, 48);
        EVP_PKEY_free(to_client);
        EVP_PKEY_free(to_server);
    }
    EVP_PKEY_free(client);
    EVP_PKEY_free(server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_master_secrets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
