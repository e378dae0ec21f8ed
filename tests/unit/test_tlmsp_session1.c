/*
 * The TLMSP key schedule against the reference's 1-middlebox session
 * (tests/vectors/tlmsp-handshake/vectors-1mbox.txt): from the
 * ephemeral private keys and the public values on the wire, recompute
 * every premaster and master secret, every pairwise key block, open every
 * MiddleboxKeyMaterial / KeyConfirmation with the key our block gives, and
 * derive every context key from the contributions inside them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>

#include "msp/error.h"
#include "tlmsp_container.h"
#include "tlmsp_kdf.h"
#include "tlmsp_keymat.h"
#include "tlmsp_seq.h"
#include "capture.h"
#include "reader.h"
#include "vectors.h"

#define VEC_FILE "tlmsp-handshake/vectors-1mbox.txt"
#define MBOX_HELLO_LEN 71

typedef struct session {
    vec_file_t f;
    uint8_t client_random[32], server_random[32], idlist[32];
    uint8_t m_to_client[1][32], m_to_server[1][32];
    EVP_PKEY *client, *server, *m_to_client_key, *m_to_server_key;
    uint8_t client_pub[32], server_pub[32];
    uint8_t ms_cs[48], ms_cm[48], ms_sm[48];
    msp_tlmsp_key_block_t kb_cs, kb_cm, kb_sm;
} session_t;

static void hex(const char *from, const char *label, uint8_t *out, size_t len)
{
    if (from == NULL || vec_hex(from, label, out, len) != (long)len) {
        fail_msg("vector '%s' missing or not %zu bytes", label, len);
    }
}

static EVP_PKEY *der_key(const session_t *s, const char *label)
{
    uint8_t der[256];
    long n = vec_hex(s->f.text, label, der, sizeof(der));
    assert_true(n > 0);
    const uint8_t *p = der;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, n);
    assert_non_null(k);
    return k;
}

static void load(session_t *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(vec_load(&s->f, VEC_FILE), 0);
    const char *t = s->f.text;
    hex(t, "client_random", s->client_random, 32);
    hex(t, "server_random", s->server_random, 32);
    hex(t, "idlist_hash", s->idlist, 32);
    /* MiddleboxHello (tlmsp-handshake.md 5.1): id | version | to_client_random | to_server_random | ... */
    uint8_t hello[MBOX_HELLO_LEN];
    hex(t, "MiddleboxHello(51) body", hello, sizeof(hello));
    assert_int_equal(hello[0], 51);
    memcpy(s->m_to_client[0], hello + 3, 32);
    memcpy(s->m_to_server[0], hello + 35, 32);
    s->client = der_key(s, "client ephemeral private (DER)");
    s->server = der_key(s, "server ephemeral private (DER)");
    s->m_to_client_key = der_key(s, "mbox 51 to_client private (DER)");
    s->m_to_server_key = der_key(s, "mbox 51 to_server private (DER)");
    hex(t, "client CKE public", s->client_pub, 32);
    hex(t, "server SKE public", s->server_pub, 32);
}

static void unload(session_t *s)
{
    EVP_PKEY_free(s->client);
    EVP_PKEY_free(s->server);
    EVP_PKEY_free(s->m_to_client_key);
    EVP_PKEY_free(s->m_to_server_key);
    vec_free(&s->f);
}

static void raw_public(EVP_PKEY *k, uint8_t out[32])
{
    size_t n = 32;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, out, &n), 1);
    assert_int_equal(n, 32);
}

/* premaster(own, peer) computed from both sides must agree. */
static size_t premaster_both(EVP_PKEY *a, const uint8_t a_pub[32], EVP_PKEY *b, const uint8_t b_pub[32],
                             uint8_t out[64])
{
    uint8_t other[64];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(msp_tlmsp_premaster(a, b_pub, 32, out, &n1), MSP_OK);
    assert_int_equal(msp_tlmsp_premaster(b, a_pub, 32, other, &n2), MSP_OK);
    assert_int_equal(n1, 32);
    assert_int_equal(n2, 32);
    assert_memory_equal(out, other, 32);
    return n1;
}

static void derive_all(session_t *s)
{
    uint8_t pm[64], m_c_pub[32], m_s_pub[32];
    raw_public(s->m_to_client_key, m_c_pub);
    raw_public(s->m_to_server_key, m_s_pub);
    size_t n = premaster_both(s->client, s->client_pub, s->server, s->server_pub, pm);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->client_random, s->server_random, s->ms_cs), MSP_OK);
    n = premaster_both(s->client, s->client_pub, s->m_to_client_key, m_c_pub, pm);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->client_random, s->m_to_client[0], s->ms_cm), MSP_OK);
    n = premaster_both(s->server, s->server_pub, s->m_to_server_key, m_s_pub, pm);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->server_random, s->m_to_server[0], s->ms_sm), MSP_OK);
    assert_int_equal(msp_tlmsp_key_block(s->ms_cs, s->client_random, s->server_random, &s->kb_cs), MSP_OK);
    assert_int_equal(msp_tlmsp_key_block(s->ms_cm, s->client_random, s->m_to_client[0], &s->kb_cm), MSP_OK);
    assert_int_equal(msp_tlmsp_key_block(s->ms_sm, s->server_random, s->m_to_server[0], &s->kb_sm), MSP_OK);
}

static void test_premaster_and_master_secrets(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    uint8_t pm[64], want[48];
    size_t n = premaster_both(s.client, s.client_pub, s.server, s.server_pub, pm);
    hex(s.f.text, "premaster client-server", want, 32);
    assert_memory_equal(pm, want, n);
    derive_all(&s);
    hex(s.f.text, "master secret (1, 254)", want, 48);
    assert_memory_equal(s.ms_cs, want, 48);
    hex(s.f.text, "master secret (1, 51)", want, 48);
    assert_memory_equal(s.ms_cm, want, 48);
    hex(s.f.text, "master secret (254, 51)", want, 48);
    assert_memory_equal(s.ms_sm, want, 48);
    unload(&s);
}

static void test_key_blocks(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    derive_all(&s);
    static const char *const labels[] = {"key block (1, 254)", "key block (1, 51)", "key block (254, 51)"};
    const msp_tlmsp_key_block_t *kbs[] = {&s.kb_cs, &s.kb_cm, &s.kb_sm};
    for (int i = 0; i < 3; i++) {
        uint8_t want[64];
        hex(s.f.text, labels[i], want, 64);
        assert_memory_equal(kbs[i]->b_to_a_mac, want, 16);
        assert_memory_equal(kbs[i]->a_to_b_mac, want + 16, 16);
        assert_memory_equal(kbs[i]->b_to_a_enc, want + 32, 16);
        assert_memory_equal(kbs[i]->a_to_b_enc, want + 48, 16);
    }
    unload(&s);
}

/* The contributions inside a key-material message, as the vectors give its plaintext. */
static void contributions(session_t *s, const char *msg, msp_tlmsp_contrib_t *c)
{
    static uint8_t plain[1024];
    const char *sec = vec_section(&s->f, msg);
    assert_non_null(sec);
    long n = vec_hex(sec, "plaintext", plain, sizeof(plain));
    assert_true(n > 0);
    assert_int_equal(msp_tlmsp_contrib_decode(plain, (size_t)n, c), MSP_OK);
}

static void test_context_and_synch_keys(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    static msp_tlmsp_contrib_t cc, sc;
    contributions(&s, "MiddleboxKeyMaterial 1->254", &cc); /* the client's, sent to the server */
    contributions(&s, "MiddleboxKeyMaterial 254->1", &sc);
    msp_tlmsp_randoms_t r = {s.client_random, s.server_random, s.m_to_server, s.m_to_client, 1};
    int checked = 0;
    for (int id = 0; id < 256; id++) {
        if (!cc.present[id]) {
            continue;
        }
        assert_true(sc.present[id]);
        msp_tlmsp_context_keys_t k;
        assert_int_equal(
            msp_tlmsp_context_keys((uint8_t)id, sc.reader[id], cc.reader[id], sc.writer[id], cc.writer[id], &r, &k),
            MSP_OK);
        char label[64];
        uint8_t want[64];
        snprintf(label, sizeof(label), "context %d reader block", id);
        hex(s.f.text, label, want, 64);
        assert_memory_equal(k.client_reader_mac, want, 16);
        assert_memory_equal(k.client_reader_enc, want + 16, 16);
        assert_memory_equal(k.server_reader_mac, want + 32, 16);
        assert_memory_equal(k.server_reader_enc, want + 48, 16);
        snprintf(label, sizeof(label), "context %d writer block", id);
        hex(s.f.text, label, want, 32);
        assert_memory_equal(k.client_writer_mac, want, 16);
        assert_memory_equal(k.server_writer_mac, want + 16, 16);
        checked++;
    }
    assert_int_equal(checked, 3); /* contexts 0, 1 and 2 of this session */
    uint8_t cs[16], ss[16], want[32];
    assert_int_equal(msp_tlmsp_synch_keys(sc.synch, cc.synch, &r, cs, ss), MSP_OK);
    hex(s.f.text, "synch block", want, 32);
    assert_memory_equal(cs, want, 16);
    assert_memory_equal(ss, want + 16, 16);
    unload(&s);
}

static void test_client_finished(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    derive_all(&s);
    uint8_t th[32], want[12], got[12];
    hex(s.f.text, "endpoint transcript hash for client Finished", th, 32);
    hex(s.f.text, "client verify_data", want, 12);
    assert_int_equal(msp_tlmsp_verify_data(s.ms_cs, "client finished", th, got), MSP_OK);
    assert_memory_equal(got, want, 12);
    unload(&s);
}

/*
 * tlmsp-handshake.md 2: the first 32 bytes equal the TLS 1.2 PRF (OpenSSL's
 * own, as an independent reference), every later byte differs.
 */
static void test_prf_against_tls12_prf(void **state)
{
    (void)state;
    static const uint8_t secret[48] = {1, 2, 3, 4, 5};
    static const uint8_t seed[64] = {9, 8, 7};
    uint8_t ours[96], tls[96];
    msp_iov_t pieces[] = {{seed, 20}, {seed + 20, 44}};
    assert_int_equal(msp_tlmsp_prf(secret, sizeof(secret), "key expansion", pieces, 2, ours, sizeof(ours)), MSP_OK);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    char label_seed[13 + 64];
    memcpy(label_seed, "key expansion", 13);
    memcpy(label_seed + 13, seed, 64);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, sizeof(secret)),
                           OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, label_seed, sizeof(label_seed)),
                           OSSL_PARAM_construct_end()};
    assert_int_equal(EVP_KDF_derive(ctx, tls, sizeof(tls), params), 1);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    assert_memory_equal(ours, tls, 32);
    for (int i = 32; i < 96; i += 32) {
        assert_memory_not_equal(ours + i, tls + i, 32);
    }
    /* A prefix of a longer output is the shorter output. */
    uint8_t shorter[40];
    assert_int_equal(msp_tlmsp_prf(secret, sizeof(secret), "key expansion", pieces, 2, shorter, sizeof(shorter)),
                     MSP_OK);
    assert_memory_equal(shorter, ours, sizeof(shorter));
    assert_int_equal(msp_tlmsp_prf(secret, 1, "x", pieces, MSP_TLMSP_MAX_PRF_PIECES + 1, ours, 1), MSP_ERR_ARGUMENT);
}

static void test_bad_peer_values(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    uint8_t out[64];
    size_t n = 0;
    uint8_t zero[32] = {0};
    /* The all-zero X25519 point gives an all-zero secret, which OpenSSL refuses (RFC 7748 6.1). */
    assert_int_equal(msp_tlmsp_premaster(s.client, zero, sizeof(zero), out, &n), MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(msp_tlmsp_premaster(s.client, s.server_pub, 31, out, &n), MSP_ALERT_ILLEGAL_PARAMETER);
    unload(&s);
    /* P-256: a point that is not on the curve. */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    uint8_t bad[65] = {4, 1, 2, 3};
    assert_int_equal(msp_tlmsp_premaster(ec, bad, sizeof(bad), out, &n), MSP_ALERT_ILLEGAL_PARAMETER);
    /* and one that is: our own public key gives a 32-byte x coordinate. */
    uint8_t pub[65];
    size_t plen = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &plen), 1);
    assert_int_equal(msp_tlmsp_premaster(ec, pub, plen, out, &n), MSP_OK);
    assert_int_equal(n, 32);
    EVP_PKEY_free(ec);
}

static void test_idlist_hash(void **state)
{
    (void)state;
    static const uint8_t a[] = "first certificate", b[] = "second";
    msp_iov_t two[] = {{a, sizeof(a) - 1}, {b, sizeof(b) - 1}};
    uint8_t h1[32], h2[32], joined[64];
    memcpy(joined, a, sizeof(a) - 1);
    memcpy(joined + sizeof(a) - 1, b, sizeof(b) - 1);
    msp_iov_t one[] = {{joined, sizeof(a) + sizeof(b) - 2}};
    assert_int_equal(msp_tlmsp_idlist_hash(two, 2, h1), MSP_OK);
    assert_int_equal(msp_tlmsp_idlist_hash(one, 1, h2), MSP_OK);
    assert_memory_equal(h1, h2, 32);
    uint8_t direct[32];
    unsigned int dn = 0;
    assert_int_equal(EVP_Digest(joined, one[0].len, direct, &dn, EVP_sha256(), NULL), 1);
    assert_memory_equal(h1, direct, 32);
}

/* The messages of the session and the key each direction uses (6.5 table). */
static const struct {
    const char *msg;
    int block; /* 0 (C,S), 1 (C,m), 2 (S,m) */
    int a_to_b;
} km_cases[] = {
    {"MiddleboxKeyMaterial 1->51", 1, 1},       {"MiddleboxKeyMaterial 1->254", 0, 1},
    {"MiddleboxKeyMaterial 254->51", 2, 1},     {"MiddleboxKeyMaterial 254->1", 0, 0},
    {"MiddleboxKeyConfirmation 51->254", 2, 0}, {"MiddleboxKeyConfirmation 51->1", 1, 0},
};

static const uint8_t *km_key(const session_t *s, size_t i)
{
    const msp_tlmsp_key_block_t *kbs[] = {&s->kb_cs, &s->kb_cm, &s->kb_sm};
    return km_cases[i].a_to_b ? kbs[km_cases[i].block]->a_to_b_enc : kbs[km_cases[i].block]->b_to_a_enc;
}

/*
 * Every key-material message opens with the key our block gives for its
 * direction (the key the vectors name, 6.5 table); its contributions decode
 * and re-encode, and it re-seals byte-identically.
 */
static void test_key_material_messages(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    derive_all(&s);
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    static msp_tlmsp_contrib_t c;
    for (size_t i = 0; i < sizeof(km_cases) / sizeof(km_cases[0]); i++) {
        const char *sec = vec_section(&s.f, km_cases[i].msg);
        uint8_t body[512], plain[512], want[512], want_key[16], id;
        size_t n = 0;
        hex(sec, "key", want_key, 16);
        assert_memory_equal(km_key(&s, i), want_key, 16);
        long blen = vec_hex(sec, km_cases[i].msg, body, sizeof(body));
        long wlen = vec_hex(sec, "plaintext", want, sizeof(want));
        assert_true(blen > 0 && wlen > 0);
        assert_int_equal(msp_tlmsp_keymat_open(&g, km_key(&s, i), body, (size_t)blen, &id, plain, &n), MSP_OK);
        assert_int_equal(n, (size_t)wlen);
        assert_memory_equal(plain, want, n);
        assert_int_equal(id, body[0]);
        assert_int_equal(msp_tlmsp_contrib_decode(plain, n, &c), MSP_OK);
        uint8_t access[256] = {0};
        for (int k = 0; k < 256; k++) {
            access[k] =
                (uint8_t)((c.has_reader[k] ? MSP_TLMSP_CAN_READ : 0) | (c.has_writer[k] ? MSP_TLMSP_CAN_WRITE : 0));
        }
        msp_buf_t b;
        msp_buf_init(&b, 4096);
        assert_int_equal(msp_tlmsp_contrib_encode(&c, access, &b), MSP_OK);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.base, plain, n);
        b.len = 0;
        assert_int_equal(msp_tlmsp_keymat_seal(&g, km_key(&s, i), body[0], body + 1, plain, n, &b), MSP_OK);
        assert_int_equal(b.len, (size_t)blen);
        assert_memory_equal(b.base, body, b.len);
        msp_buf_free(&b);
        /* The wrong direction's key does not open it. */
        const uint8_t *other = km_cases[i].a_to_b ? (&s.kb_cs)->b_to_a_enc : (&s.kb_cs)->a_to_b_enc;
        assert_int_equal(msp_tlmsp_keymat_open(&g, other, body, (size_t)blen, &id, plain, &n), MSP_ALERT_DECRYPT_ERROR);
        assert_int_equal(msp_tlmsp_keymat_open(&g, km_key(&s, i), body, 29, &id, plain, &n), MSP_ALERT_DECODE_ERROR);
    }
    msp_tlmsp_gcm_free(&g);
    unload(&s);
}

static void test_contrib_decode_errors(void **state)
{
    (void)state;
    static msp_tlmsp_contrib_t c;
    uint8_t ok[1 + 16 + 1 + 16 + 1 + 16];
    memset(ok, 0, sizeof(ok));
    ok[17] = 16;
    ok[34] = 16;
    assert_int_equal(msp_tlmsp_contrib_decode(ok, sizeof(ok), &c), MSP_OK);
    assert_true(c.present[0] && c.has_reader[0] && c.has_writer[0]);
    uint8_t bad[sizeof(ok)];
    memcpy(bad, ok, sizeof(ok));
    bad[17] = 15; /* a contribution is 16 bytes or nothing */
    assert_int_equal(msp_tlmsp_contrib_decode(bad, sizeof(bad), &c), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_contrib_decode(ok, sizeof(ok) - 1, &c), MSP_ALERT_DECODE_ERROR);
    uint8_t twice[2 * sizeof(ok)];
    memcpy(twice, ok, sizeof(ok));
    memcpy(twice + sizeof(ok), ok, sizeof(ok));
    assert_int_equal(msp_tlmsp_contrib_decode(twice, sizeof(twice), &c), MSP_ALERT_DECODE_ERROR);
    static const uint8_t no_ctx0[] = {1, 0, 0};
    assert_int_equal(msp_tlmsp_contrib_decode(no_ctx0, sizeof(no_ctx0), &c), MSP_ALERT_DECODE_ERROR);
}

/* ---- Finished and MiddleboxFinished from the captured transcripts (6.10, 6.11) ---- */

typedef struct transcript {
    EVP_MD_CTX *md;
} transcript_t;

static void t_init(transcript_t *t)
{
    t->md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestInit_ex(t->md, EVP_sha256(), NULL), 1);
}

/* A whole handshake message: type | length(3) | body. */
static void t_msg(transcript_t *t, uint8_t type, const uint8_t *body, size_t len)
{
    const uint8_t head[4] = {type, (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    assert_int_equal(EVP_DigestUpdate(t->md, head, 4), 1);
    assert_int_equal(EVP_DigestUpdate(t->md, body, len), 1);
}

static void t_cap(transcript_t *t, const cap_msg_t *m)
{
    assert_non_null(m);
    t_msg(t, m->type, m->body, m->len);
}

/* The hash so far; the transcript goes on. */
static void t_hash(transcript_t *t, uint8_t out[32])
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    assert_int_equal(EVP_MD_CTX_copy_ex(copy, t->md), 1);
    assert_int_equal(EVP_DigestFinal_ex(copy, out, NULL), 1);
    EVP_MD_CTX_free(copy);
}

/* The KeyMaterial in msgs addressed to target (5.5: its first body byte). */
static const cap_msg_t *key_material_to(const cap_msg_t *msgs, size_t n, uint8_t target)
{
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].type == MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL && msgs[i].len > 0 && msgs[i].body[0] == target) {
            return &msgs[i];
        }
    }
    return NULL;
}

/* Lcontrib(m) (6.11): per present context, [C_s | S_s for 0], C_r | S_r if m reads, C_w | S_w if m writes. */
static size_t lcontrib(const msp_tlmsp_contrib_t *cc, const msp_tlmsp_contrib_t *sc, const msp_tlmsp_contrib_t *to_m,
                       uint8_t *out)
{
    size_t n = 0;
    for (int c = 0; c < 256; c++) {
        if (!cc->present[c]) {
            continue;
        }
        if (c == 0) {
            memcpy(out + n, cc->synch, 16);
            memcpy(out + n + 16, sc->synch, 16);
            n += 32;
        }
        if (to_m->has_reader[c]) {
            memcpy(out + n, cc->reader[c], 16);
            memcpy(out + n + 16, sc->reader[c], 16);
            n += 32;
        }
        if (to_m->has_writer[c]) {
            memcpy(out + n, cc->writer[c], 16);
            memcpy(out + n + 16, sc->writer[c], 16);
            n += 32;
        }
    }
    return n;
}

static void expect_verify(const uint8_t master[48], const char *label, transcript_t *t, session_t *s,
                          const char *vec_label, uint8_t out[12])
{
    uint8_t h[32], want[12];
    t_hash(t, h);
    assert_int_equal(msp_tlmsp_verify_data(master, label, h, out), MSP_OK);
    hex(s->f.text, vec_label, want, 12);
    assert_memory_equal(out, want, 12);
}

static void test_finished_from_capture(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    derive_all(&s);
    static cap_file_t cap;
    assert_int_equal(cap_load("tlmsp-handshake/sample-1mbox/cap.pcap", &cap), 0);
    static cap_msg_t up[64], down[64];
    size_t nu = cap_handshake_messages(cap_to(&cap, 10481), up, 64);     /* client -> middlebox */
    size_t nd = cap_handshake_messages(cap_from(&cap, 10481), down, 64); /* middlebox -> client */
    const cap_msg_t *ch = cap_find_msg(up, nu, MSP_TLMSP_HT_CLIENT_HELLO);
    const cap_msg_t *cke = cap_find_msg(up, nu, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE);
    const cap_msg_t *km_s = key_material_to(up, nu, MSP_TLMSP_ID_SERVER);
    const cap_msg_t *km_c = key_material_to(down, nd, MSP_TLMSP_ID_CLIENT);
    static const uint8_t server_side[] = {MSP_TLMSP_HT_SERVER_HELLO, MSP_TLMSP_HT_CERTIFICATE,
                                          MSP_TLMSP_HT_SERVER_KEY_EXCHANGE, MSP_TLMSP_HT_SERVER_HELLO_DONE};
    /* 6.10: everything in wire order except KeyConfirmations and KeyMaterial to middleboxes. */
    transcript_t ep, tm;
    t_init(&ep);
    t_init(&tm);
    t_cap(&ep, ch);
    t_cap(&tm, ch);
    for (size_t i = 0; i < sizeof(server_side); i++) {
        t_cap(&ep, cap_find_msg(down, nd, server_side[i]));
        t_cap(&tm, cap_find_msg(down, nd, server_side[i]));
    }
    static const uint8_t mbox_msgs[] = {MSP_TLMSP_HT_MIDDLEBOX_HELLO, MSP_TLMSP_HT_MIDDLEBOX_CERT,
                                        MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE, MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE};
    for (size_t i = 0; i < sizeof(mbox_msgs); i++) {
        t_cap(&ep, cap_find_msg(down, nd, mbox_msgs[i]));
        /* 6.11: T_m has the middlebox's own messages but not its MiddleboxKeyExchange. */
        if (mbox_msgs[i] != MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE) {
            t_cap(&tm, cap_find_msg(down, nd, mbox_msgs[i]));
        }
    }
    const cap_msg_t *tail[] = {cke, km_s, km_c};
    for (size_t i = 0; i < 3; i++) {
        t_cap(&ep, tail[i]);
        t_cap(&tm, tail[i]);
    }
    uint8_t h[32], want[32], client_fin[12], server_fin[12], mfin[12];
    t_hash(&ep, h);
    hex(s.f.text, "endpoint transcript hash for client Finished", want, 32);
    assert_memory_equal(h, want, 32);
    expect_verify(s.ms_cs, "client finished", &ep, &s, "client verify_data", client_fin);
    t_msg(&ep, MSP_TLMSP_HT_FINISHED, client_fin, 12);
    t_hash(&ep, h);
    assert_int_equal(msp_tlmsp_verify_data(s.ms_cs, "server finished", h, server_fin), MSP_OK);

    /* The server-side transcript: T_m | Lcontrib(m) | client Finished, with master(S,m). */
    static msp_tlmsp_contrib_t cc, sc, to_m;
    contributions(&s, "MiddleboxKeyMaterial 1->254", &cc);
    contributions(&s, "MiddleboxKeyMaterial 254->1", &sc);
    contributions(&s, "MiddleboxKeyMaterial 1->51", &to_m);
    uint8_t lc[4096], lc_want[4096];
    size_t lcn = lcontrib(&cc, &sc, &to_m, lc);
    assert_int_equal(vec_hex(s.f.text, "Lcontrib(m=51)", lc_want, sizeof(lc_want)), (long)lcn);
    assert_memory_equal(lc, lc_want, lcn);
    transcript_t ts;
    ts.md = EVP_MD_CTX_new();
    assert_int_equal(EVP_MD_CTX_copy_ex(ts.md, tm.md), 1);
    assert_int_equal(EVP_DigestUpdate(ts.md, lc, lcn), 1);
    t_msg(&ts, MSP_TLMSP_HT_FINISHED, client_fin, 12);
    expect_verify(s.ms_sm, "middlebox-server finished", &ts, &s, "MiddleboxFinished m->server (m=51) verify_data",
                  mfin);
    expect_verify(s.ms_sm, "server-middlebox finished", &ts, &s, "MiddleboxFinished server->m (m=51) verify_data",
                  mfin);

    /* The client side: T_m | client Finished, then | server Finished, with master(C,m). */
    t_msg(&tm, MSP_TLMSP_HT_FINISHED, client_fin, 12);
    expect_verify(s.ms_cm, "client-middlebox finished", &tm, &s, "MiddleboxFinished client->m (m=51) verify_data",
                  mfin);
    t_msg(&tm, MSP_TLMSP_HT_FINISHED, server_fin, 12);
    expect_verify(s.ms_cm, "middlebox-client finished", &tm, &s, "MiddleboxFinished m->client (m=51) verify_data",
                  mfin);
    EVP_MD_CTX_free(ep.md);
    EVP_MD_CTX_free(tm.md);
    EVP_MD_CTX_free(ts.md);
    cap_free(&cap);
    unload(&s);
}

/* ---- every post-ChangeCipherSpec record of every hop, decoded and authenticated ---- */

typedef struct keys1 {
    msp_tlmsp_context_keys_t ctx[256];
    uint8_t present[256];
    uint8_t client_synch[16], server_synch[16];
} keys1_t;

static void session_keys(session_t *s, keys1_t *k)
{
    static msp_tlmsp_contrib_t cc, sc;
    contributions(s, "MiddleboxKeyMaterial 1->254", &cc);
    contributions(s, "MiddleboxKeyMaterial 254->1", &sc);
    msp_tlmsp_randoms_t r = {s->client_random, s->server_random, s->m_to_server, s->m_to_client, 1};
    memset(k, 0, sizeof(*k));
    for (int c = 0; c < 256; c++) {
        if (cc.present[c]) {
            k->present[c] = 1;
            assert_int_equal(msp_tlmsp_context_keys((uint8_t)c, sc.reader[c], cc.reader[c], sc.writer[c], cc.writer[c],
                                                    &r, &k->ctx[c]),
                             MSP_OK);
        }
    }
    assert_int_equal(msp_tlmsp_synch_keys(sc.synch, cc.synch, &r, k->client_synch, k->server_synch), MSP_OK);
}

typedef struct hop_side {
    uint16_t port;
    int from;      /* the stream leaves the port (else arrives at it) */
    int to_server; /* direction of travel */
    uint8_t self;  /* the receiver */
    uint8_t path[2];
    size_t npath;
    uint8_t peer; /* the endpoint at the far end */
} hop_side_t;

/* Decodes one stream's records after its ChangeCipherSpec; returns the number of containers seen. */
static size_t decode_side(session_t *s, const keys1_t *k, msp_tlmsp_gcm_t *g, const cap_stream_t *st,
                          const hop_side_t *h, size_t *records0)
{
    msp_tlmsp_seq_t seq;
    assert_int_equal(msp_tlmsp_seq_init(&seq, h->self, h->path, h->npath), MSP_OK);
    msp_reader_t r, payload;
    msp_reader_init(&r, st->data, st->len);
    int keyed = 0;
    size_t containers = 0;
    static uint8_t plain[70000];
    static msp_tlmsp_container_t c;
    while (msp_reader_left(&r) > 0) {
        uint8_t type;
        uint16_t version;
        uint32_t sid = 0;
        assert_int_equal(msp_read_u8(&r, &type), MSP_OK);
        assert_int_equal(msp_read_u16(&r, &version), MSP_OK);
        assert_int_equal(msp_read_block(&r, 2, &payload), MSP_OK);
        if (!keyed) {
            keyed = type == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC;
            if (keyed) {
                msp_tlmsp_seq_reset_rx(&seq);
            }
            continue;
        }
        assert_int_equal(msp_read_u32(&payload, &sid), MSP_OK);
        if (type == MSP_TLMSP_CT_HANDSHAKE) {
            /* Context-0 record: re-protected on every hop by the neighbour (3). */
            msp_tlmsp_seq_rx_record(&seq);
            uint64_t q;
            assert_int_equal(msp_tlmsp_seq_of(&seq, payload.pos[0], &q), MSP_OK);
            const uint8_t *key = h->to_server ? k->ctx[0].client_reader_enc : k->ctx[0].server_reader_enc;
            size_t len = msp_reader_left(&payload);
            assert_int_equal(msp_tlmsp_record0_open(g, key, q, type, sid, payload.pos, len, plain), MSP_OK);
            assert_true(plain[0] == MSP_TLMSP_HT_FINISHED || plain[0] == MSP_TLMSP_HT_MIDDLEBOX_FINISHED);
            (*records0)++;
            continue;
        }
        assert_true(type == MSP_TLMSP_CT_APPLICATION_DATA || type == MSP_TLMSP_CT_ALERT);
        while (msp_reader_left(&payload) > 0) {
            assert_int_equal(msp_tlmsp_container_parse(&payload, 1, &c), MSP_OK);
            uint8_t origin = (c.flags & (MSP_TLMSP_CF_INSERTED | MSP_TLMSP_CF_DELETED)) ? c.m_info[0] : h->peer;
            assert_int_equal(msp_tlmsp_seq_rx_container(&seq, origin, c.m_info, c.m_info_len), MSP_OK);
            assert_true(k->present[c.context]);
            const msp_tlmsp_context_keys_t *ck = &k->ctx[c.context];
            msp_tlmsp_mac_in_t in = {type, sid, 0, c.flags, c.m_info, c.m_info_len};
            assert_int_equal(msp_tlmsp_seq_of(&seq, c.fragment[0], &in.seq), MSP_OK);
            const uint8_t *rkey = h->to_server ? ck->client_reader_enc : ck->server_reader_enc;
            const uint8_t *wkey = h->to_server ? ck->client_writer_mac : ck->server_writer_mac;
            assert_int_equal(msp_tlmsp_fragment_open(g, rkey, &in, c.fragment, c.fragment_len, plain), MSP_OK);
            uint8_t mac[16];
            assert_int_equal(msp_tlmsp_writer_mac(g, wkey, &in, c.fragment, c.fragment_len, mac), MSP_OK);
            assert_int_equal(msp_tlmsp_mac_verify(mac, c.writer_mac, MSP_ALERT_BAD_WRITER_MAC), MSP_OK);
            const msp_tlmsp_fmac_t *fm = &c.fmacs[0];
            msp_tlmsp_mac_in_t fin = in;
            assert_int_equal(msp_tlmsp_seq_of(&seq, fm->id, &fin.seq), MSP_OK);
            const uint8_t *synch = h->to_server ? k->client_synch : k->server_synch;
            assert_int_equal(msp_tlmsp_reader_check_mac(g, synch, &fin, c.fragment, c.fragment_len, fm->nonce, mac),
                             MSP_OK);
            assert_int_equal(msp_tlmsp_mac_verify(mac, fm->reader_check, MSP_ALERT_BAD_READER_MAC), MSP_OK);
            if (h->self == MSP_TLMSP_ID_CLIENT || h->self == MSP_TLMSP_ID_SERVER) {
                /* Only endpoints hold the A-B key the check MAC uses (5.2): generator -> this endpoint. */
                const uint8_t *ab = fm->id == MSP_TLMSP_ID_CLIENT    ? s->kb_cs.a_to_b_enc
                                    : fm->id == MSP_TLMSP_ID_SERVER  ? s->kb_cs.b_to_a_enc
                                    : h->self == MSP_TLMSP_ID_CLIENT ? s->kb_cm.b_to_a_enc
                                                                     : s->kb_sm.b_to_a_enc;
                assert_int_equal(msp_tlmsp_check_mac(g, ab, &fin, fm, NULL, mac), MSP_OK);
                assert_int_equal(msp_tlmsp_mac_verify(mac, fm->check, MSP_ALERT_BAD_RECORD_MAC), MSP_OK);
            }
            containers++;
        }
    }
    assert_true(keyed);
    return containers;
}

static void test_every_record_authenticates(void **state)
{
    (void)state;
    session_t s;
    load(&s);
    derive_all(&s);
    static keys1_t k;
    session_keys(&s, &k);
    static cap_file_t cap;
    assert_int_equal(cap_load("tlmsp-handshake/sample-1mbox/cap.pcap", &cap), 0);
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    const hop_side_t sides[] = {
        {10481, 0, 1, 51, {MSP_TLMSP_ID_CLIENT}, 1, MSP_TLMSP_ID_CLIENT},                      /* client -> mbox */
        {10481, 1, 0, MSP_TLMSP_ID_CLIENT, {51, MSP_TLMSP_ID_SERVER}, 2, MSP_TLMSP_ID_SERVER}, /* mbox -> client */
        {10482, 0, 1, MSP_TLMSP_ID_SERVER, {51, MSP_TLMSP_ID_CLIENT}, 2, MSP_TLMSP_ID_CLIENT}, /* mbox -> server */
        {10482, 1, 0, 51, {MSP_TLMSP_ID_SERVER}, 1, MSP_TLMSP_ID_SERVER},                      /* server -> mbox */
    };
    size_t containers = 0, records0 = 0;
    for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
        const cap_stream_t *st = sides[i].from ? cap_from(&cap, sides[i].port) : cap_to(&cap, sides[i].port);
        assert_non_null(st);
        containers += decode_side(&s, &k, &g, st, &sides[i], &records0);
    }
    /* Finished + one MiddleboxFinished on each of the four hop directions (6.6). */
    assert_int_equal(records0, 8);
    /* cfg-1mbox.ucl: "hello-one" from the client, then its shutdown's close_notify, each on both hops. */
    assert_int_equal(containers, 4);
    msp_tlmsp_gcm_free(&g);
    cap_free(&cap);
    unload(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_premaster_and_master_secrets),
        cmocka_unit_test(test_key_blocks),
        cmocka_unit_test(test_context_and_synch_keys),
        cmocka_unit_test(test_client_finished),
        cmocka_unit_test(test_prf_against_tls12_prf),
        cmocka_unit_test(test_bad_peer_values),
        cmocka_unit_test(test_idlist_hash),
        cmocka_unit_test(test_key_material_messages),
        cmocka_unit_test(test_contrib_decode_errors),
        cmocka_unit_test(test_finished_from_capture),
        cmocka_unit_test(test_every_record_authenticates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
