/*
 * The key schedule API of msp/tlmsp_keys.h against the reference's own
 * sessions (tests/vectors/tlmsp-handshake/):
 *
 *  - vectors-1mbox.txt: every value in the file recomputed from its inputs
 *    (premaster and master secrets, key blocks, the six KeyMaterial /
 *    KeyConfirmation bodies opened and re-sealed byte-identically, context
 *    and synch keys, Lcontrib, client Finished, the four MiddleboxFinished);
 *  - the captures sample-1mbox, sample-2mbox and sample-discovery (the
 *    post-discovery session runs with 256 contexts): from the wire and the
 *    ephemeral private keys in the logs, every master secret against the
 *    reference's own dump, every KeyMaterial and KeyConfirmation, the 6.7
 *    check on both endpoints, the context-0 keys decrypting every
 *    post-ChangeCipherSpec record on every hop, and the Finished and every
 *    MiddleboxFinished on the wire;
 *  - negative cases: truncation, bit flips, wrong ids, unknown contexts,
 *    malformed contributions, confirmation mismatches (179), bad arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "capture.h"
#include "msp/error.h"
#include "reader.h"
#include "msp/tlmsp_hello.h"
#include "tlmsp_keys.h"
#include "vectors.h"

#define VEC_FILE "tlmsp-handshake/vectors-1mbox.txt"
#define C MSP_TLMSP_ID_CLIENT
#define S MSP_TLMSP_ID_SERVER

/* ------------------------------------------------------------------ helpers */

static void hex(const char *from, const char *label, uint8_t *out, size_t len)
{
    if (from == NULL || vec_hex(from, label, out, len) != (long)len) {
        fail_msg("vector '%s' missing or not %zu bytes", label, len);
    }
}

static size_t hexv(const char *from, const char *label, uint8_t *out, size_t max)
{
    long n = from != NULL ? vec_hex(from, label, out, max) : -1;
    if (n <= 0) {
        fail_msg("vector '%s' missing", label);
    }
    return (size_t)n;
}

static msp_tlmsp_contrib_t *new_contrib(void)
{
    msp_tlmsp_contrib_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    return c;
}

static EVP_PKEY *der_key(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long)len);
    assert_non_null(k);
    return k;
}

/* The public value as it goes on the wire (X25519: raw 32 bytes; P-256: uncompressed point). */
static size_t wire_public(EVP_PKEY *k, uint8_t *out, size_t max)
{
    uint8_t *enc = NULL;
    size_t n = EVP_PKEY_get1_encoded_public_key(k, &enc);
    assert_true(n > 0 && n <= max);
    memcpy(out, enc, n);
    OPENSSL_free(enc);
    return n;
}

/* premaster(a, b_pub) and premaster(b, a_pub) must agree; returns the length. */
static size_t premaster_both(EVP_PKEY *a, EVP_PKEY *b, uint8_t out[MSP_TLMSP_MAX_PREMASTER])
{
    uint8_t a_pub[133], b_pub[133];
    size_t an = wire_public(a, a_pub, sizeof(a_pub)), bn = wire_public(b, b_pub, sizeof(b_pub));
    static uint8_t other[MSP_TLMSP_MAX_PREMASTER];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(msp_tlmsp_premaster(a, b_pub, bn, out, &n1), MSP_OK);
    assert_int_equal(msp_tlmsp_premaster(b, a_pub, an, other, &n2), MSP_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(out, other, n1);
    return n1;
}

/* SHA-256 over handshake messages, each with its 4-byte header. */
typedef struct th {
    EVP_MD_CTX *md;
} th_t;

static void th_init(th_t *t)
{
    t->md = EVP_MD_CTX_new();
    assert_non_null(t->md);
    assert_int_equal(EVP_DigestInit_ex(t->md, EVP_sha256(), NULL), 1);
}

static void th_bytes(th_t *t, const uint8_t *p, size_t n)
{
    assert_int_equal(EVP_DigestUpdate(t->md, p, n), 1);
}

static void th_msg(th_t *t, uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t h[4] = {type, (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    th_bytes(t, h, 4);
    th_bytes(t, body, len);
}

/* The hash so far; the context stays usable (a copy is finalised). */
static void th_peek(const th_t *t, uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_MD_CTX_copy_ex(c, t->md), 1);
    assert_int_equal(EVP_DigestFinal_ex(c, out, NULL), 1);
    EVP_MD_CTX_free(c);
}

static void th_free(th_t *t)
{
    EVP_MD_CTX_free(t->md);
}

/* Lcontrib into a heap buffer (at most 16 KiB). */
static size_t lcontrib(const uint8_t present[256], const msp_tlmsp_contrib_t *cl, const msp_tlmsp_contrib_t *sv,
                       const uint8_t access[256], uint8_t *out)
{
    msp_buf_t b;
    msp_buf_init_fixed(&b, out, MSP_TLMSP_MAX_LCONTRIB);
    assert_int_equal(msp_tlmsp_lcontrib(present, cl, sv, access, &b), MSP_OK);
    return b.len;
}

/* -------------------------------------------- vectors-1mbox.txt (file only) */

typedef struct vsess {
    vec_file_t f;
    uint8_t client_random[32], server_random[32], idlist[32];
    uint8_t mbox;
    uint8_t to_client[1][32], to_server[1][32];
    uint8_t mkc_pub[32], mks_pub[32]; /* the middlebox's two public values (MiddleboxKeyExchange) */
    uint8_t cke_pub[32], ske_pub[32];
    EVP_PKEY *client, *server, *m_to_client, *m_to_server;
    uint8_t present[256];
    uint8_t access[256]; /* the middlebox's list entry, from the ServerHello */
    uint8_t ms_cs[48], ms_cm[48], ms_sm[48];
    msp_tlmsp_key_block_t kb_cs, kb_cm, kb_sm;
    msp_tlmsp_gcm_t g;
} vsess_t;

static EVP_PKEY *vec_der_key(const vsess_t *s, const char *label)
{
    uint8_t der[256];
    size_t n = hexv(s->f.text, label, der, sizeof(der));
    return der_key(der, n);
}

/* ServerECDHParams (5.3): curve_type(3) | group(2) | v8<point>, then sigalg(2) | v16<signature>. */
static void kex_half(msp_reader_t *r, uint8_t pub[32])
{
    uint8_t curve_type;
    uint16_t group, sigalg;
    msp_reader_t point, sig;
    assert_int_equal(msp_read_u8(r, &curve_type), MSP_OK);
    assert_int_equal(curve_type, 3);
    assert_int_equal(msp_read_u16(r, &group), MSP_OK);
    assert_int_equal(group, 0x001d);
    assert_int_equal(msp_read_block(r, 1, &point), MSP_OK);
    assert_int_equal(msp_reader_left(&point), 32);
    assert_int_equal(msp_read_copy(&point, pub, 32), MSP_OK);
    assert_int_equal(msp_read_u16(r, &sigalg), MSP_OK);
    assert_int_equal(msp_read_block(r, 2, &sig), MSP_OK);
}

static void vload(vsess_t *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(vec_load(&s->f, VEC_FILE), 0);
    const char *t = s->f.text;
    hex(t, "client_random", s->client_random, 32);
    hex(t, "server_random", s->server_random, 32);
    hex(t, "idlist_hash", s->idlist, 32);
    /* MiddleboxHello (5.1): id | version | to_client_random | to_server_random | 00 0000 00 */
    uint8_t body[1024];
    size_t n = hexv(t, "MiddleboxHello(51) body", body, sizeof(body));
    msp_reader_t r;
    uint16_t version;
    msp_reader_init(&r, body, n);
    assert_int_equal(msp_read_u8(&r, &s->mbox), MSP_OK);
    assert_int_equal(msp_read_u16(&r, &version), MSP_OK);
    assert_int_equal(msp_read_copy(&r, s->to_client[0], 32), MSP_OK);
    assert_int_equal(msp_read_copy(&r, s->to_server[0], 32), MSP_OK);
    /* MiddleboxKeyExchange (5.3): id | params_to_client ... | params_to_server ... */
    n = hexv(t, "MiddleboxKeyExchange(51) body", body, sizeof(body));
    uint8_t id;
    msp_reader_init(&r, body, n);
    assert_int_equal(msp_read_u8(&r, &id), MSP_OK);
    assert_int_equal(id, s->mbox);
    kex_half(&r, s->mkc_pub);
    kex_half(&r, s->mks_pub);
    assert_int_equal(msp_reader_expect_end(&r), MSP_OK);
    hex(t, "client CKE public", s->cke_pub, 32);
    hex(t, "server SKE public", s->ske_pub, 32);
    s->client = vec_der_key(s, "client ephemeral private (DER)");
    s->server = vec_der_key(s, "server ephemeral private (DER)");
    s->m_to_client = vec_der_key(s, "mbox 51 to_client private (DER)");
    s->m_to_server = vec_der_key(s, "mbox 51 to_server private (DER)");
    /* The session's contexts (ContextList, 3.3) and the middlebox's rights (ServerHello list, 3.4). */
    static msp_tlmsp_context_list_t cl;
    static msp_tlmsp_ext_server_t sh;
    n = hexv(t, "ClientHello ContextList 0xff07 data", body, sizeof(body));
    assert_int_equal(msp_tlmsp_context_list_parse(body, n, &cl), MSP_OK);
    memcpy(s->present, cl.present, 256);
    n = hexv(t, "ServerHello TLMSP ext 0xff06 data", body, sizeof(body));
    assert_int_equal(msp_tlmsp_ext_server_parse(body, n, &sh), MSP_OK);
    assert_int_equal(sh.middleboxes.n, 1);
    assert_int_equal(sh.middleboxes.m[0].id, s->mbox);
    memcpy(s->access, sh.middleboxes.m[0].access, 256);
    assert_int_equal(msp_tlmsp_gcm_init(&s->g), MSP_OK);
}

static void vunload(vsess_t *s)
{
    EVP_PKEY_free(s->client);
    EVP_PKEY_free(s->server);
    EVP_PKEY_free(s->m_to_client);
    EVP_PKEY_free(s->m_to_server);
    msp_tlmsp_gcm_free(&s->g);
    vec_free(&s->f);
}

/* premaster from our private key and the public value the peer put on the wire; both sides must agree. */
static size_t vpremaster(EVP_PKEY *a, const uint8_t a_wire[32], EVP_PKEY *b, const uint8_t b_wire[32], uint8_t out[64])
{
    uint8_t other[64];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(msp_tlmsp_premaster(a, b_wire, 32, out, &n1), MSP_OK);
    assert_int_equal(msp_tlmsp_premaster(b, a_wire, 32, other, &n2), MSP_OK);
    assert_int_equal(n1, 32);
    assert_int_equal(n2, 32);
    assert_memory_equal(out, other, 32);
    return n1;
}

static void vderive(vsess_t *s)
{
    uint8_t pm[64];
    size_t n = vpremaster(s->client, s->cke_pub, s->server, s->ske_pub, pm);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->client_random, s->server_random, s->ms_cs), MSP_OK);
    n = vpremaster(s->client, s->cke_pub, s->m_to_client, s->mkc_pub, pm);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->client_random, s->to_client[0], s->ms_cm), MSP_OK);
    n = vpremaster(s->server, s->ske_pub, s->m_to_server, s->mks_pub, pm);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->server_random, s->to_server[0], s->ms_sm), MSP_OK);
    assert_int_equal(msp_tlmsp_key_block(s->ms_cs, s->client_random, s->server_random, &s->kb_cs), MSP_OK);
    assert_int_equal(msp_tlmsp_key_block(s->ms_cm, s->client_random, s->to_client[0], &s->kb_cm), MSP_OK);
    assert_int_equal(msp_tlmsp_key_block(s->ms_sm, s->server_random, s->to_server[0], &s->kb_sm), MSP_OK);
}

static const msp_tlmsp_key_block_t *vblock(const vsess_t *s, uint8_t a, uint8_t b)
{
    uint8_t m = a == C || a == S ? b : a, e = m == b ? a : b;
    if (m == C || m == S) {
        return &s->kb_cs;
    }
    return e == C ? &s->kb_cm : &s->kb_sm;
}

static void test_vectors_secrets_and_key_blocks(void **state)
{
    (void)state;
    vsess_t s;
    vload(&s);
    uint8_t pm[64], want[64];
    vpremaster(s.client, s.cke_pub, s.server, s.ske_pub, pm);
    hex(s.f.text, "premaster client-server", want, 32);
    assert_memory_equal(pm, want, 32);
    vderive(&s);
    hex(s.f.text, "master secret (1, 254)", want, 48);
    assert_memory_equal(s.ms_cs, want, 48);
    hex(s.f.text, "master secret (1, 51)", want, 48);
    assert_memory_equal(s.ms_cm, want, 48);
    hex(s.f.text, "master secret (254, 51)", want, 48);
    assert_memory_equal(s.ms_sm, want, 48);
    static const char *const labels[] = {"key block (1, 254)", "key block (1, 51)", "key block (254, 51)"};
    const msp_tlmsp_key_block_t *kbs[] = {&s.kb_cs, &s.kb_cm, &s.kb_sm};
    for (int i = 0; i < 3; i++) {
        hex(s.f.text, labels[i], want, 64);
        /* 6.5: B_to_A_MAC | A_to_B_MAC | B_to_A_enc | A_to_B_enc */
        assert_memory_equal(kbs[i]->b_to_a_mac, want, 16);
        assert_memory_equal(kbs[i]->a_to_b_mac, want + 16, 16);
        assert_memory_equal(kbs[i]->b_to_a_enc, want + 32, 16);
        assert_memory_equal(kbs[i]->a_to_b_enc, want + 48, 16);
    }
    vunload(&s);
}

/* The six messages of the session: label, sender, receiver, and whether it is a KeyConfirmation. */
static const struct {
    const char *label;
    uint8_t src, dst;
    int confirmation;
} vmsgs[] = {
    {"MiddleboxKeyMaterial 1->51", C, 51, 0},       {"MiddleboxKeyMaterial 1->254", C, S, 0},
    {"MiddleboxKeyMaterial 254->51", S, 51, 0},     {"MiddleboxKeyMaterial 254->1", S, C, 0},
    {"MiddleboxKeyConfirmation 51->254", 51, S, 1}, {"MiddleboxKeyConfirmation 51->1", 51, C, 1},
};

#define NVMSGS (sizeof(vmsgs) / sizeof(vmsgs[0]))

/* Opens message i with the key msp_tlmsp_pair_key picks; the body goes to body/len. */
static void vopen(vsess_t *s, size_t i, msp_tlmsp_contrib_t *c, uint8_t *body, size_t *len)
{
    const char *sec = vec_section(&s->f, vmsgs[i].label);
    assert_non_null(sec);
    *len = hexv(sec, vmsgs[i].label, body, 1024);
    const uint8_t *key = NULL;
    assert_int_equal(msp_tlmsp_pair_key(vblock(s, vmsgs[i].src, vmsgs[i].dst), vmsgs[i].src, vmsgs[i].dst, &key),
                     MSP_OK);
    uint8_t want_key[16];
    hex(sec, "key", want_key, 16);
    assert_memory_equal(key, want_key, 16);
    uint8_t id = vmsgs[i].confirmation ? vmsgs[i].src : vmsgs[i].dst;
    assert_int_equal(msp_tlmsp_key_material_open(&s->g, key, body, *len, id, s->present, c), MSP_OK);
}

static void test_vectors_key_material(void **state)
{
    (void)state;
    vsess_t s;
    vload(&s);
    vderive(&s);
    msp_tlmsp_contrib_t *c = new_contrib();
    for (size_t i = 0; i < NVMSGS; i++) {
        uint8_t body[1024], plain[1024];
        size_t len = 0;
        vopen(&s, i, c, body, &len);
        const char *sec = vec_section(&s.f, vmsgs[i].label);
        size_t plen = hexv(sec, "plaintext", plain, sizeof(plain));
        /*
         * The decoded contributions re-encode to the plaintext the reference
         * sent (5.5): filtered by the target's rights for a KeyMaterial, by
         * the middlebox's own for a KeyConfirmation, nothing for an endpoint.
         */
        int to_endpoint = !vmsgs[i].confirmation && (vmsgs[i].dst == C || vmsgs[i].dst == S);
        const uint8_t *access = to_endpoint ? NULL : s.access;
        uint8_t all[256];
        memset(all, MSP_TLMSP_CAN_ALL, sizeof(all));
        uint8_t enc[1024];
        msp_buf_t eb;
        msp_buf_init_fixed(&eb, enc, sizeof(enc));
        assert_int_equal(msp_tlmsp_contrib_encode(c, to_endpoint ? all : s.access, &eb), MSP_OK);
        assert_int_equal(eb.len, plen);
        assert_memory_equal(enc, plain, plen);
        /* nonce = sender id | 11 random bytes; re-sealing with those bytes gives the same body. */
        assert_int_equal(body[1], vmsgs[i].src);
        uint8_t out[1024];
        msp_buf_t ob;
        msp_buf_init_fixed(&ob, out, sizeof(out));
        const uint8_t *key = NULL;
        assert_int_equal(msp_tlmsp_pair_key(vblock(&s, vmsgs[i].src, vmsgs[i].dst), vmsgs[i].src, vmsgs[i].dst, &key),
                         MSP_OK);
        uint8_t id = body[0];
        assert_int_equal(msp_tlmsp_key_material_seal(&s.g, key, id, vmsgs[i].src, body + 2, c, access, &ob), MSP_OK);
        assert_int_equal(ob.len, len);
        assert_memory_equal(out, body, len);
        /* The receiver's checks: its own id only, and no other direction's key. */
        static msp_tlmsp_contrib_t tmp;
        assert_int_equal(msp_tlmsp_key_material_open(&s.g, key, body, len, (uint8_t)(id ^ 1), s.present, &tmp),
                         MSP_ALERT_ILLEGAL_PARAMETER);
        assert_int_equal(msp_tlmsp_key_material_open(&s.g, s.kb_cs.b_to_a_mac, body, len, id, s.present, &tmp),
                         MSP_ALERT_DECRYPT_ERROR);
    }
    free(c);
    vunload(&s);
}

/* The client's and server's full contributions, and what the middlebox received from each. */
typedef struct vcontribs {
    msp_tlmsp_contrib_t *client, *server, *m_from_client, *m_from_server, *conf_to_server, *conf_to_client;
} vcontribs_t;

static void vcontribs(vsess_t *s, vcontribs_t *v)
{
    msp_tlmsp_contrib_t **slots[] = {&v->m_from_client, &v->client,         &v->m_from_server,
                                     &v->server,        &v->conf_to_server, &v->conf_to_client};
    uint8_t body[1024];
    size_t len;
    for (size_t i = 0; i < NVMSGS; i++) {
        *slots[i] = new_contrib();
        vopen(s, i, *slots[i], body, &len);
    }
}

static void vcontribs_free(vcontribs_t *v)
{
    free(v->client);
    free(v->server);
    free(v->m_from_client);
    free(v->m_from_server);
    free(v->conf_to_server);
    free(v->conf_to_client);
}

static void test_vectors_context_keys_and_lcontrib(void **state)
{
    (void)state;
    vsess_t s;
    vload(&s);
    vderive(&s);
    vcontribs_t v;
    vcontribs(&s, &v);
    msp_tlmsp_randoms_t r = {s.client_random, s.server_random, s.to_server, s.to_client, 1};
    int checked = 0;
    for (int id = 0; id < 256; id++) {
        if (id != 0 && !s.present[id]) {
            continue;
        }
        msp_tlmsp_context_keys_t k, mk;
        assert_int_equal(msp_tlmsp_derive_context_keys((uint8_t)id, v.client, v.server, &r, &k), MSP_OK);
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
        /* The middlebox derives the same keys where it has the contributions (6.6). */
        assert_int_equal(msp_tlmsp_derive_context_keys((uint8_t)id, v.m_from_client, v.m_from_server, &r, &mk), MSP_OK);
        int readable = id == 0 || (s.access[id] & MSP_TLMSP_CAN_READ);
        assert_int_equal(memcmp(&mk.client_reader_enc, &k.client_reader_enc, 16) == 0, readable);
        checked++;
    }
    assert_int_equal(checked, 3); /* contexts 0, 1 and 2 of this session */
    uint8_t cs[16], ss[16], want[32];
    assert_int_equal(msp_tlmsp_derive_synch_keys(v.client, v.server, &r, cs, ss), MSP_OK);
    hex(s.f.text, "synch block", want, 32);
    assert_memory_equal(cs, want, 16);
    assert_memory_equal(ss, want + 16, 16);
    /* Lcontrib(m) (6.11) from the endpoints' view and from the middlebox's own. */
    static uint8_t lc[MSP_TLMSP_MAX_LCONTRIB], wantlc[MSP_TLMSP_MAX_LCONTRIB];
    size_t wn = hexv(s.f.text, "Lcontrib(m=51)", wantlc, sizeof(wantlc));
    size_t n = lcontrib(s.present, v.client, v.server, s.access, lc);
    assert_int_equal(n, wn);
    assert_memory_equal(lc, wantlc, n);
    n = lcontrib(s.present, v.m_from_client, v.m_from_server, s.access, lc);
    assert_int_equal(n, wn);
    assert_memory_equal(lc, wantlc, n);
    vcontribs_free(&v);
    vunload(&s);
}

static void test_vectors_confirmation_check(void **state)
{
    (void)state;
    vsess_t s;
    vload(&s);
    vderive(&s);
    vcontribs_t v;
    vcontribs(&s, &v);
    uint8_t access[1][256];
    memcpy(access[0], s.access, 256);
    const msp_tlmsp_contrib_t *to_server[] = {v.conf_to_server}, *to_client[] = {v.conf_to_client};
    /* The server checks the middlebox's echo of the client's contributions, and vice versa. */
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, to_server, access, 1), MSP_OK);
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.server, to_client, access, 1), MSP_OK);
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, to_client, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    /* Each field the check covers, tampered. */
    v.conf_to_server->synch[0] ^= 1;
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, to_server, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    v.conf_to_server->synch[0] ^= 1;
    v.conf_to_server->writer[1][15] ^= 0x80;
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, to_server, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    v.conf_to_server->writer[1][15] ^= 0x80;
    v.conf_to_server->present[2] = 0; /* a context the middlebox may not even read must still be listed */
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, to_server, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    v.conf_to_server->present[2] = 1;
    /* Rights the echo does not reflect: context 2 claimed readable. */
    access[0][2] = MSP_TLMSP_CAN_READ;
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, to_server, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    access[0][2] = 0;
    /* A present context the peer's KeyMaterial left out, a missing confirmation, bad arguments. */
    uint8_t more[256];
    memcpy(more, s.present, 256);
    more[7] = 1;
    assert_int_equal(msp_tlmsp_key_confirmation_check(more, v.client, to_server, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    const msp_tlmsp_contrib_t *none[] = {NULL};
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, none, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, NULL, NULL, 1), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, to_server, access, 252), MSP_ERR_ARGUMENT);
    /* Without middleboxes only the peer's completeness is checked. */
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, NULL, NULL, 0), MSP_OK);
    v.client->has_writer[1] = 0;
    assert_int_equal(msp_tlmsp_key_confirmation_check(s.present, v.client, NULL, NULL, 0),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    vcontribs_free(&v);
    vunload(&s);
}

static void test_vectors_client_finished(void **state)
{
    (void)state;
    vsess_t s;
    vload(&s);
    vderive(&s);
    uint8_t th[32], want[12], got[12];
    hex(s.f.text, "endpoint transcript hash for client Finished", th, 32);
    hex(s.f.text, "client verify_data", want, 12);
    msp_tlmsp_finished_kind_t kind;
    assert_int_equal(msp_tlmsp_finished_kind(C, S, &kind), MSP_OK);
    assert_int_equal(kind, MSP_TLMSP_FIN_CLIENT);
    assert_int_equal(msp_tlmsp_finished(kind, s.ms_cs, th, got), MSP_OK);
    assert_memory_equal(got, want, 12);
    assert_int_equal(msp_tlmsp_finished_check(kind, s.ms_cs, th, want, 12), MSP_OK);
    /* The TLMSP PRF gives the same 12 bytes (tlmsp-handshake.md 2). */
    assert_int_equal(msp_tlmsp_verify_data(s.ms_cs, "client finished", th, got), MSP_OK);
    assert_memory_equal(got, want, 12);
    want[11] ^= 1;
    assert_int_equal(msp_tlmsp_finished_check(kind, s.ms_cs, th, want, 12), MSP_ALERT_DECRYPT_ERROR);
    assert_int_equal(msp_tlmsp_finished_check(kind, s.ms_cs, th, want, 11), MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_finished_check(MSP_TLMSP_FIN_SERVER, s.ms_cs, th, got, 12), MSP_ALERT_DECRYPT_ERROR);
    vunload(&s);
}

/* ------------------------------------------ captures: whole sessions replayed */

#define MAX_MSGS 64
#define MAX_POST 16
#define MAX_HOPS 4
#define MAX_MB 3

typedef struct hmsg {
    uint8_t type;
    const uint8_t *body;
    size_t len;
} hmsg_t;

/* One direction of a hop: the plaintext messages before ChangeCipherSpec, the records after it. */
typedef struct hdir {
    hmsg_t pre[MAX_MSGS];
    size_t npre;
    const uint8_t *post[MAX_POST];
    size_t post_len[MAX_POST];
    size_t npost;
    uint32_t sid;
} hdir_t;

typedef struct cmbox {
    uint8_t id;
    uint8_t access[256];
    const uint8_t *cert; /* leaf certificate (DER) of its MiddleboxCert */
    size_t cert_len;
    uint8_t pub_c[133], pub_s[133]; /* to_client / to_server public values */
    size_t pub_c_len, pub_s_len;
    uint8_t ms_c[48], ms_s[48]; /* master(C,m), master(S,m) */
    msp_tlmsp_key_block_t kb_c, kb_s;
    msp_tlmsp_contrib_t *from_client, *from_server; /* the KeyMaterial it received */
    msp_tlmsp_contrib_t *conf_client, *conf_server; /* its KeyConfirmation to the client / server */
} cmbox_t;

typedef struct csess {
    const char *dir;
    cap_file_t cap;
    vec_file_t logs[3];
    size_t nhops, nmbox;
    hdir_t c2s[MAX_HOPS], s2c[MAX_HOPS];
    cmbox_t mb[MAX_MB];
    uint8_t client_random[32], server_random[32];
    uint8_t to_server[MAX_MB][32], to_client[MAX_MB][32];
    uint8_t present[256];
    const uint8_t *server_cert;
    size_t server_cert_len;
    uint8_t cke_pub[133], ske_pub[133];
    size_t cke_pub_len, ske_pub_len;
    uint8_t idlist[32], ms_cs[48];
    msp_tlmsp_key_block_t kb_cs;
    msp_tlmsp_contrib_t *client, *server;
    msp_tlmsp_context_keys_t ctx0;
    const hmsg_t *view[2 * MAX_MSGS]; /* hop 0 as the client saw it, in protocol order */
    size_t nview;
    msp_tlmsp_gcm_t g;
} csess_t;

/* Splits one direction of a hop into records (tlmsp-records.md 2.2: a Sid after every first record). */
static void split_dir(const cap_stream_t *st, hdir_t *d)
{
    memset(d, 0, sizeof(*d));
    assert_non_null(st);
    msp_reader_t r, payload, body;
    msp_reader_init(&r, st->data, st->len);
    int after_ccs = 0;
    for (size_t rec = 0; msp_reader_left(&r) > 0; rec++) {
        uint8_t type;
        uint16_t version;
        assert_int_equal(msp_read_u8(&r, &type), MSP_OK);
        assert_int_equal(msp_read_u16(&r, &version), MSP_OK);
        assert_int_equal(msp_read_block(&r, 2, &payload), MSP_OK);
        if (rec > 0) {
            assert_int_equal(msp_read_u32(&payload, &d->sid), MSP_OK);
        }
        if (type == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC) {
            after_ccs = 1;
        } else if (type == MSP_TLMSP_CT_HANDSHAKE && after_ccs && d->npost < MAX_POST) {
            d->post_len[d->npost] = msp_reader_left(&payload);
            assert_int_equal(msp_read_bytes(&payload, d->post_len[d->npost], &d->post[d->npost]), MSP_OK);
            d->npost++;
        }
        while (type == MSP_TLMSP_CT_HANDSHAKE && !after_ccs && msp_reader_left(&payload) > 0) {
            assert_true(d->npre < MAX_MSGS);
            hmsg_t *m = &d->pre[d->npre++];
            assert_int_equal(msp_read_u8(&payload, &m->type), MSP_OK);
            assert_int_equal(msp_read_block(&payload, 3, &body), MSP_OK);
            m->len = msp_reader_left(&body);
            m->body = body.pos;
        }
    }
}

/* The last connection to a listen port (as hsverify.py takes it) and its reverse stream. */
static void find_hop(csess_t *s, size_t k, uint16_t port)
{
    const cap_stream_t *c2s = NULL, *s2c = NULL;
    for (size_t i = 0; i < s->cap.n; i++) {
        if (s->cap.s[i].dport == port && s->cap.s[i].len > 0) {
            c2s = &s->cap.s[i];
        }
    }
    assert_non_null(c2s);
    for (size_t i = 0; i < s->cap.n; i++) {
        if (s->cap.s[i].sport == port && s->cap.s[i].dport == c2s->sport) {
            s2c = &s->cap.s[i];
        }
    }
    split_dir(c2s, &s->c2s[k]);
    split_dir(s2c, &s->s2c[k]);
}

/* extension_data of ext in a ClientHello (client = 1) or ServerHello body, or NULL. */
static const uint8_t *hello_ext(const hmsg_t *m, int client, uint16_t ext, size_t *len)
{
    msp_reader_t r, skip, exts, data;
    uint16_t version, suite, type;
    uint8_t comp;
    const uint8_t *random;
    msp_reader_init(&r, m->body, m->len);
    assert_int_equal(msp_read_u16(&r, &version), MSP_OK);
    assert_int_equal(msp_read_bytes(&r, 32, &random), MSP_OK);
    assert_int_equal(msp_read_block(&r, 1, &skip), MSP_OK); /* session_id */
    if (client) {
        assert_int_equal(msp_read_block(&r, 2, &skip), MSP_OK);
        assert_int_equal(msp_read_block(&r, 1, &skip), MSP_OK);
    } else {
        assert_int_equal(msp_read_u16(&r, &suite), MSP_OK);
        assert_int_equal(msp_read_u8(&r, &comp), MSP_OK);
    }
    assert_int_equal(msp_read_block(&r, 2, &exts), MSP_OK);
    while (msp_reader_left(&exts) > 0) {
        assert_int_equal(msp_read_u16(&exts, &type), MSP_OK);
        assert_int_equal(msp_read_block(&exts, 2, &data), MSP_OK);
        if (type == ext) {
            *len = msp_reader_left(&data);
            return data.pos;
        }
    }
    return NULL;
}

/* ServerECDHParams | sigalg | v16<sig> (5.3): the public value. */
static void ecdh_params(msp_reader_t *r, uint8_t *pub, size_t *len)
{
    uint8_t curve_type;
    uint16_t group, sigalg;
    msp_reader_t point, sig;
    assert_int_equal(msp_read_u8(r, &curve_type), MSP_OK);
    assert_int_equal(curve_type, 3);
    assert_int_equal(msp_read_u16(r, &group), MSP_OK);
    assert_int_equal(msp_read_block(r, 1, &point), MSP_OK);
    *len = msp_reader_left(&point);
    assert_true(*len > 0 && *len <= 133);
    assert_int_equal(msp_read_copy(&point, pub, *len), MSP_OK);
    assert_int_equal(msp_read_u16(r, &sigalg), MSP_OK);
    assert_int_equal(msp_read_block(r, 2, &sig), MSP_OK);
}

/* The leaf of a certificate_list v24< v24<DER>* >. */
static void leaf_cert(msp_reader_t *r, const uint8_t **der, size_t *len)
{
    msp_reader_t list, cert;
    assert_int_equal(msp_read_block(r, 3, &list), MSP_OK);
    assert_int_equal(msp_read_block(&list, 3, &cert), MSP_OK);
    *len = msp_reader_left(&cert);
    *der = cert.pos;
}

static cmbox_t *mbox_by_id(csess_t *s, uint8_t id)
{
    for (size_t i = 0; i < s->nmbox; i++) {
        if (s->mb[i].id == id) {
            return &s->mb[i];
        }
    }
    fail_msg("unknown middlebox %u", id);
    return NULL;
}

/* What each middlebox message of hop 0 (server to client) carries. */
static void mbox_message(csess_t *s, const hmsg_t *m)
{
    msp_reader_t r;
    uint8_t id;
    uint16_t version;
    msp_reader_init(&r, m->body, m->len);
    assert_int_equal(msp_read_u8(&r, &id), MSP_OK);
    cmbox_t *mb = mbox_by_id(s, id);
    size_t i = (size_t)(mb - s->mb);
    switch (m->type) {
    case MSP_TLMSP_HT_MIDDLEBOX_HELLO: /* 5.1 */
        assert_int_equal(msp_read_u16(&r, &version), MSP_OK);
        assert_int_equal(msp_read_copy(&r, s->to_client[i], 32), MSP_OK);
        assert_int_equal(msp_read_copy(&r, s->to_server[i], 32), MSP_OK);
        break;
    case MSP_TLMSP_HT_MIDDLEBOX_CERT: /* 5.2 */
        leaf_cert(&r, &mb->cert, &mb->cert_len);
        break;
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE: /* 5.3 */
        ecdh_params(&r, mb->pub_c, &mb->pub_c_len);
        ecdh_params(&r, mb->pub_s, &mb->pub_s_len);
        break;
    default:
        break;
    }
}

/* hop 0 in the order the client processed it (4.2, 4.3). */
static void client_view(csess_t *s)
{
    const hdir_t *up = &s->c2s[0], *down = &s->s2c[0];
    size_t i = 0;
    s->nview = 0;
    s->view[s->nview++] = &up->pre[0];
    for (; i < down->npre; i++) {
        const hmsg_t *m = &down->pre[i];
        s->view[s->nview++] = m;
        int last = s->nmbox > 0 ? m->type == MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE && m->body[0] == s->mb[0].id
                                : m->type == MSP_TLMSP_HT_SERVER_HELLO_DONE;
        if (last) {
            i++;
            break;
        }
    }
    for (size_t k = 1; k < up->npre; k++) {
        s->view[s->nview++] = &up->pre[k];
    }
    for (; i < down->npre; i++) {
        s->view[s->nview++] = &down->pre[i];
    }
}

/* "HSDBG pid=N <tag> self=<id> der=<hex>": the key of that entity whose public value is pub. */
static EVP_PKEY *log_key(const csess_t *s, const char *tag, int self, const uint8_t *pub, size_t pub_len)
{
    for (int f = 0; f < 3; f++) {
        for (const char *line = s->logs[f].text; line != NULL && *line != '\0';) {
            char t[64], hx[1024];
            int id = 0;
            if (sscanf(line, "HSDBG pid=%*d %63s self=%d der=%1023[0-9a-f]", t, &id, hx) == 3 && strcmp(t, tag) == 0 &&
                id == self) {
                uint8_t der[512], p[133];
                long n = vec_unhex(hx, strlen(hx), der, sizeof(der));
                assert_true(n > 0);
                EVP_PKEY *k = der_key(der, (size_t)n);
                if (wire_public(k, p, sizeof(p)) == pub_len && memcmp(p, pub, pub_len) == 0) {
                    return k;
                }
                EVP_PKEY_free(k);
            }
            line = strchr(line, '\n');
            line = line != NULL ? line + 1 : NULL;
        }
    }
    fail_msg("no %s key of %d in the logs matches the wire", tag, self);
    return NULL;
}

/* "HSDBGMS pid=N self=A peer_entity=B ms=<hex>": the reference's own master secret of a pair. */
static void log_master(const csess_t *s, int a, int b, uint8_t out[48])
{
    for (int f = 0; f < 3; f++) {
        for (const char *line = s->logs[f].text; line != NULL && *line != '\0';) {
            char hx[128];
            int x = 0, y = 0;
            if (sscanf(line, "HSDBGMS pid=%*d self=%d peer_entity=%d ms=%127[0-9a-f]", &x, &y, hx) == 3 &&
                ((x == a && y == b) || (x == b && y == a))) {
                assert_int_equal(vec_unhex(hx, strlen(hx), out, 48), 48);
                return;
            }
            line = strchr(line, '\n');
            line = line != NULL ? line + 1 : NULL;
        }
    }
    fail_msg("no master secret for (%d, %d) in the logs", a, b);
}

static void cload(csess_t *s, const char *dir, const uint16_t *ports, size_t nports)
{
    memset(s, 0, sizeof(*s));
    s->dir = dir;
    char path[256];
    snprintf(path, sizeof(path), "tlmsp-handshake/%s/cap.pcap", dir);
    assert_int_equal(cap_load(path, &s->cap), 0);
    static const char *const logs[] = {"cli.log", "mb.log", "srv.log"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "tlmsp-handshake/%s/%s", dir, logs[i]);
        assert_int_equal(vec_load(&s->logs[i], path), 0);
    }
    s->nhops = nports;
    for (size_t k = 0; k < nports; k++) {
        find_hop(s, k, ports[k]);
    }
    const hdir_t *up = &s->c2s[0], *down = &s->s2c[0];
    /* The middlebox list in order: the client sends KeyMaterial to m1..mN, then to the server (4.3). */
    for (size_t i = 0; i < up->npre; i++) {
        if (up->pre[i].type == MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL && up->pre[i].body[0] != S) {
            assert_true(s->nmbox < MAX_MB);
            s->mb[s->nmbox++].id = up->pre[i].body[0];
        }
    }
    assert_int_equal(s->nmbox + 1, s->nhops);
    /* Randoms, contexts, rights, certificates and public values from the wire. */
    assert_int_equal(up->pre[0].type, MSP_TLMSP_HT_CLIENT_HELLO);
    assert_int_equal(down->pre[0].type, MSP_TLMSP_HT_SERVER_HELLO);
    memcpy(s->client_random, up->pre[0].body + 2, 32);
    memcpy(s->server_random, down->pre[0].body + 2, 32);
    static msp_tlmsp_context_list_t cl;
    static msp_tlmsp_ext_server_t sh;
    size_t n = 0;
    const uint8_t *p = hello_ext(&up->pre[0], 1, MSP_TLMSP_EXT_CONTEXT_LIST, &n);
    assert_non_null(p);
    assert_int_equal(msp_tlmsp_context_list_parse(p, n, &cl), MSP_OK);
    memcpy(s->present, cl.present, 256);
    p = hello_ext(&down->pre[0], 0, MSP_TLMSP_EXT_TLMSP, &n);
    assert_non_null(p);
    assert_int_equal(msp_tlmsp_ext_server_parse(p, n, &sh), MSP_OK);
    assert_int_equal(sh.middleboxes.n, s->nmbox);
    for (size_t i = 0; i < s->nmbox; i++) {
        assert_int_equal(sh.middleboxes.m[i].id, s->mb[i].id);
        memcpy(s->mb[i].access, sh.middleboxes.m[i].access, 256);
    }
    for (size_t i = 0; i < down->npre; i++) {
        const hmsg_t *m = &down->pre[i];
        msp_reader_t r;
        msp_reader_init(&r, m->body, m->len);
        if (m->type == MSP_TLMSP_HT_CERTIFICATE) {
            leaf_cert(&r, &s->server_cert, &s->server_cert_len);
        } else if (m->type == MSP_TLMSP_HT_SERVER_KEY_EXCHANGE) {
            ecdh_params(&r, s->ske_pub, &s->ske_pub_len);
        } else if (m->type >= MSP_TLMSP_HT_MIDDLEBOX_HELLO && m->type <= MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE) {
            mbox_message(s, m);
        }
    }
    for (size_t i = 0; i < up->npre; i++) {
        if (up->pre[i].type == MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE) {
            msp_reader_t r, point;
            msp_reader_init(&r, up->pre[i].body, up->pre[i].len);
            assert_int_equal(msp_read_block(&r, 1, &point), MSP_OK);
            s->cke_pub_len = msp_reader_left(&point);
            assert_int_equal(msp_read_copy(&point, s->cke_pub, s->cke_pub_len), MSP_OK);
        }
    }
    assert_true(s->server_cert_len > 0 && s->ske_pub_len > 0 && s->cke_pub_len > 0);
    client_view(s);
    s->client = new_contrib();
    s->server = new_contrib();
    for (size_t i = 0; i < s->nmbox; i++) {
        s->mb[i].from_client = new_contrib();
        s->mb[i].from_server = new_contrib();
        s->mb[i].conf_client = new_contrib();
        s->mb[i].conf_server = new_contrib();
    }
    assert_int_equal(msp_tlmsp_gcm_init(&s->g), MSP_OK);
}

static void cfree(csess_t *s)
{
    for (size_t i = 0; i < s->nmbox; i++) {
        free(s->mb[i].from_client);
        free(s->mb[i].from_server);
        free(s->mb[i].conf_client);
        free(s->mb[i].conf_server);
    }
    free(s->client);
    free(s->server);
    msp_tlmsp_gcm_free(&s->g);
    for (int i = 0; i < 3; i++) {
        vec_free(&s->logs[i]);
    }
    cap_free(&s->cap);
}

/* 6.2-6.5 for every pair, each master secret against the reference's own dump. */
static void csecrets(csess_t *s)
{
    msp_iov_t certs[MAX_MB + 1];
    for (size_t i = 0; i < s->nmbox; i++) {
        certs[i] = (msp_iov_t){s->mb[i].cert, s->mb[i].cert_len};
    }
    certs[s->nmbox] = (msp_iov_t){s->server_cert, s->server_cert_len};
    assert_int_equal(msp_tlmsp_idlist_hash(certs, s->nmbox + 1, s->idlist), MSP_OK);
    EVP_PKEY *ck = log_key(s, "endpoint-kex", C, s->cke_pub, s->cke_pub_len);
    EVP_PKEY *sk = log_key(s, "endpoint-kex", S, s->ske_pub, s->ske_pub_len);
    static uint8_t pm[MSP_TLMSP_MAX_PREMASTER];
    uint8_t want[48];
    size_t n = premaster_both(ck, sk, pm);
    assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->client_random, s->server_random, s->ms_cs), MSP_OK);
    log_master(s, C, S, want);
    assert_memory_equal(s->ms_cs, want, 48);
    assert_int_equal(msp_tlmsp_key_block(s->ms_cs, s->client_random, s->server_random, &s->kb_cs), MSP_OK);
    for (size_t i = 0; i < s->nmbox; i++) {
        cmbox_t *m = &s->mb[i];
        EVP_PKEY *mc = log_key(s, "mbox-to-client-kex", m->id, m->pub_c, m->pub_c_len);
        EVP_PKEY *ms = log_key(s, "mbox-to-server-kex", m->id, m->pub_s, m->pub_s_len);
        /* 6.2: each endpoint reuses its one ephemeral key with every middlebox. */
        n = premaster_both(ck, mc, pm);
        assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->client_random, s->to_client[i], m->ms_c), MSP_OK);
        log_master(s, C, m->id, want);
        assert_memory_equal(m->ms_c, want, 48);
        n = premaster_both(sk, ms, pm);
        assert_int_equal(msp_tlmsp_master_secret(pm, n, s->idlist, s->server_random, s->to_server[i], m->ms_s), MSP_OK);
        log_master(s, S, m->id, want);
        assert_memory_equal(m->ms_s, want, 48);
        assert_int_equal(msp_tlmsp_key_block(m->ms_c, s->client_random, s->to_client[i], &m->kb_c), MSP_OK);
        assert_int_equal(msp_tlmsp_key_block(m->ms_s, s->server_random, s->to_server[i], &m->kb_s), MSP_OK);
        EVP_PKEY_free(mc);
        EVP_PKEY_free(ms);
    }
    EVP_PKEY_free(ck);
    EVP_PKEY_free(sk);
}

static const msp_tlmsp_key_block_t *cblock(csess_t *s, uint8_t src, uint8_t dst)
{
    if ((src == C || src == S) && (dst == C || dst == S)) {
        return &s->kb_cs;
    }
    cmbox_t *m = mbox_by_id(s, src == C || src == S ? dst : src);
    return src == C || dst == C ? &m->kb_c : &m->kb_s;
}

/* The receiver's rights as the sender sees them: NULL for an endpoint (everything). */
static const uint8_t *target_access(csess_t *s, uint8_t id)
{
    return id == C || id == S ? NULL : mbox_by_id(s, id)->access;
}

/* Opens one body (src -> dst), checks it re-seals byte-identically, returns the contributions. */
static void copen(csess_t *s, const hmsg_t *m, uint8_t src, uint8_t dst, int confirmation, msp_tlmsp_contrib_t *c)
{
    const uint8_t *key = NULL;
    assert_int_equal(msp_tlmsp_pair_key(cblock(s, src, dst), src, dst, &key), MSP_OK);
    uint8_t id = confirmation ? src : dst;
    assert_int_equal(msp_tlmsp_key_material_open(&s->g, key, m->body, m->len, id, s->present, c), MSP_OK);
    assert_int_equal(m->body[1], src); /* nonce[0] = sender id */
    msp_buf_t b;
    msp_buf_init(&b, MSP_TLMSP_KEYMAT_MAX_BODY);
    const uint8_t *access = target_access(s, confirmation ? src : dst);
    assert_int_equal(msp_tlmsp_key_material_seal(&s->g, key, id, src, m->body + 2, c, access, &b), MSP_OK);
    assert_int_equal(b.len, m->len);
    assert_memory_equal(b.base, m->body, m->len);
    msp_buf_free(&b);
}

/* Everything the receiver got is what the sender contributed, exactly as the rights allow (5.5). */
static void same_as_full(const csess_t *s, const msp_tlmsp_contrib_t *got, const msp_tlmsp_contrib_t *full,
                         const uint8_t *access)
{
    assert_memory_equal(got->synch, full->synch, 16);
    for (int c = 0; c < 256; c++) {
        assert_int_equal(got->present[c], c == 0 || s->present[c]);
        int r = access == NULL || c == 0 || (access[c] & MSP_TLMSP_CAN_READ);
        int w = access == NULL || c == 0 || (access[c] & MSP_TLMSP_CAN_WRITE);
        assert_int_equal(got->has_reader[c], got->present[c] && r);
        assert_int_equal(got->has_writer[c], got->present[c] && w);
        assert_true(!got->has_reader[c] || memcmp(got->reader[c], full->reader[c], 16) == 0);
        assert_true(!got->has_writer[c] || memcmp(got->writer[c], full->writer[c], 16) == 0);
    }
}

/* The first message of this type whose id byte is id. */
static const hmsg_t *km_to(const hdir_t *d, uint8_t type, uint8_t id)
{
    for (size_t i = 0; i < d->npre; i++) {
        if (d->pre[i].type == type && d->pre[i].body[0] == id) {
            return &d->pre[i];
        }
    }
    fail_msg("message %u for/from %u not found", type, id);
    return NULL;
}

/* 5.5, 5.6, 6.7 on the wire: both endpoints' KeyMaterial, every KeyConfirmation, both checks. */
static void ckey_material(csess_t *s)
{
    const hdir_t *c_up = &s->c2s[0], *c_down = &s->s2c[0];
    const hdir_t *s_up = &s->c2s[s->nhops - 1], *s_down = &s->s2c[s->nhops - 1];
    copen(s, km_to(c_up, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, S), C, S, 0, s->client);
    copen(s, km_to(s_down, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, C), S, C, 0, s->server);
    same_as_full(s, s->client, s->client, NULL);
    same_as_full(s, s->server, s->server, NULL);
    const msp_tlmsp_contrib_t *conf_c[MAX_MB], *conf_s[MAX_MB];
    uint8_t access[MAX_MB][256];
    for (size_t i = 0; i < s->nmbox; i++) {
        cmbox_t *m = &s->mb[i];
        copen(s, km_to(c_up, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, m->id), C, m->id, 0, m->from_client);
        copen(s, km_to(s_down, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, m->id), S, m->id, 0, m->from_server);
        same_as_full(s, m->from_client, s->client, m->access);
        same_as_full(s, m->from_server, s->server, m->access);
        copen(s, km_to(c_down, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, m->id), m->id, C, 1, m->conf_client);
        copen(s, km_to(s_up, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, m->id), m->id, S, 1, m->conf_server);
        same_as_full(s, m->conf_client, s->server, m->access);
        same_as_full(s, m->conf_server, s->client, m->access);
        conf_c[i] = m->conf_client;
        conf_s[i] = m->conf_server;
        memcpy(access[i], m->access, 256);
    }
    assert_int_equal(msp_tlmsp_key_confirmation_check(s->present, s->server, conf_c, access, s->nmbox), MSP_OK);
    assert_int_equal(msp_tlmsp_key_confirmation_check(s->present, s->client, conf_s, access, s->nmbox), MSP_OK);
    if (s->nmbox > 0) {
        assert_int_equal(msp_tlmsp_key_confirmation_check(s->present, s->client, conf_c, access, s->nmbox),
                         MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    }
}

/* 6.8: every present context's keys; the middleboxes get the same ones where they have access. */
static void ccontext_keys(csess_t *s, msp_tlmsp_randoms_t *r)
{
    *r = (msp_tlmsp_randoms_t){s->client_random, s->server_random, s->to_server, s->to_client, s->nmbox};
    assert_int_equal(msp_tlmsp_derive_context_keys(0, s->client, s->server, r, &s->ctx0), MSP_OK);
    for (int c = 0; c < 256; c++) {
        if (c != 0 && !s->present[c]) {
            continue;
        }
        msp_tlmsp_context_keys_t k, mk;
        assert_int_equal(msp_tlmsp_derive_context_keys((uint8_t)c, s->client, s->server, r, &k), MSP_OK);
        for (size_t i = 0; i < s->nmbox; i++) {
            cmbox_t *m = &s->mb[i];
            assert_int_equal(msp_tlmsp_derive_context_keys((uint8_t)c, m->from_client, m->from_server, r, &mk), MSP_OK);
            int rd = c == 0 || (m->access[c] & MSP_TLMSP_CAN_READ), wr = c == 0 || (m->access[c] & 2);
            assert_int_equal(memcmp(mk.client_reader_enc, k.client_reader_enc, 16) == 0, rd);
            assert_int_equal(memcmp(mk.server_reader_enc, k.server_reader_enc, 16) == 0, rd);
            assert_int_equal(memcmp(mk.client_writer_mac, k.client_writer_mac, 16) == 0, wr);
        }
    }
    uint8_t cs[16], ss[16], mcs[16], mss[16];
    assert_int_equal(msp_tlmsp_derive_synch_keys(s->client, s->server, r, cs, ss), MSP_OK);
    for (size_t i = 0; i < s->nmbox; i++) {
        assert_int_equal(msp_tlmsp_derive_synch_keys(s->mb[i].from_client, s->mb[i].from_server, r, mcs, mss), MSP_OK);
        assert_memory_equal(mcs, cs, 16);
        assert_memory_equal(mss, ss, 16);
    }
}

/*
 * Context-0 records after ChangeCipherSpec (tlmsp-records.md 3): nonce |
 * ciphertext | tag, AAD = seq(8) | 22 | 0303 | length(2) | sid(4), under the
 * context-0 reader key of the direction. Returns the handshake messages.
 */
static size_t cdecrypt(csess_t *s, size_t k, int up, uint8_t *plain, size_t cap, hmsg_t *out, size_t max)
{
    const hdir_t *d = up ? &s->c2s[k] : &s->s2c[k];
    const uint8_t *key = up ? s->ctx0.client_reader_enc : s->ctx0.server_reader_enc;
    uint8_t author = up ? (k == 0 ? C : s->mb[k - 1].id) : (k == s->nmbox ? S : s->mb[k].id);
    size_t used = 0, n = 0;
    for (size_t i = 0; i < d->npost; i++) {
        size_t len = d->post_len[i] - 28;
        assert_true(d->post_len[i] > 28 && used + len <= cap);
        assert_int_equal(d->post[i][0], author); /* nonce[0] = the hop's author */
        uint8_t aad[17];
        msp_buf_t ab;
        msp_buf_init_fixed(&ab, aad, sizeof(aad));
        msp_buf_put_u64(&ab, i);
        msp_buf_put_u8(&ab, MSP_TLMSP_CT_HANDSHAKE);
        msp_buf_put_u16(&ab, MSP_TLMSP_WIRE_VERSION);
        msp_buf_put_u16(&ab, (uint16_t)len);
        msp_buf_put_u32(&ab, d->sid);
        assert_int_equal(ab.len, sizeof(aad));
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int ol = 0, fl = 0;
        assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, d->post[i]), 1);
        assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &ol, aad, sizeof(aad)), 1);
        assert_int_equal(EVP_DecryptUpdate(ctx, plain + used, &ol, d->post[i] + 12, (int)len), 1);
        assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(d->post[i] + 12 + len)), 1);
        assert_int_equal(EVP_DecryptFinal_ex(ctx, plain + used + ol, &fl), 1);
        EVP_CIPHER_CTX_free(ctx);
        msp_reader_t r, body;
        msp_reader_init(&r, plain + used, len);
        while (msp_reader_left(&r) > 0) {
            assert_true(n < max);
            assert_int_equal(msp_read_u8(&r, &out[n].type), MSP_OK);
            assert_int_equal(msp_read_block(&r, 3, &body), MSP_OK);
            out[n].len = msp_reader_left(&body);
            out[n].body = body.pos;
            n++;
        }
        used += len;
    }
    return n;
}

/* The verify_data of the MiddleboxFinished for/from id in a decrypted flight. */
static const uint8_t *mfin(const hmsg_t *m, size_t n, uint8_t id)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == MSP_TLMSP_HT_MIDDLEBOX_FINISHED && m[i].len == 13 && m[i].body[0] == id) {
            return m[i].body + 1;
        }
    }
    fail_msg("no MiddleboxFinished for %u", id);
    return NULL;
}

static const uint8_t *fin(const hmsg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].type == MSP_TLMSP_HT_FINISHED && m[i].len == 12) {
            return m[i].body;
        }
    }
    fail_msg("no Finished");
    return NULL;
}

/* One Finished on the wire checked with the kind msp_tlmsp_finished_kind gives for src -> dst. */
static void check_fin(uint8_t src, uint8_t dst, const uint8_t master[48], const th_t *t, const uint8_t *wire)
{
    msp_tlmsp_finished_kind_t kind;
    uint8_t h[32], vd[12];
    assert_int_equal(msp_tlmsp_finished_kind(src, dst, &kind), MSP_OK);
    th_peek(t, h);
    assert_int_equal(msp_tlmsp_finished(kind, master, h, vd), MSP_OK);
    assert_memory_equal(vd, wire, 12);
    assert_int_equal(msp_tlmsp_finished_check(kind, master, h, wire, 12), MSP_OK);
}

typedef struct cfinished {
    uint8_t endpoint_hash[32];
    uint8_t cfin[12], sfin[12];
    uint8_t mf[MAX_MB][4][12]; /* client->m, m->server, server->m, m->client */
    uint8_t lcontrib[MAX_MB][MSP_TLMSP_MAX_LCONTRIB];
    size_t lcontrib_len[MAX_MB];
} cfinished_t;

/* 6.10, 6.11: the endpoint transcript and every T_m built with our inclusion rules, checked on the wire. */
static void cfinished(csess_t *s, cfinished_t *out)
{
    static uint8_t plain[MAX_HOPS][2][4096];
    hmsg_t post[MAX_HOPS][2][MAX_POST];
    size_t npost[MAX_HOPS][2];
    for (size_t k = 0; k < s->nhops; k++) {
        npost[k][0] = cdecrypt(s, k, 1, plain[k][0], sizeof(plain[k][0]), post[k][0], MAX_POST);
        npost[k][1] = cdecrypt(s, k, 0, plain[k][1], sizeof(plain[k][1]), post[k][1], MAX_POST);
    }
    const uint8_t *cfin = fin(post[0][0], npost[0][0]), *sfin = fin(post[s->nhops - 1][1], npost[s->nhops - 1][1]);
    th_t t;
    th_init(&t);
    for (size_t i = 0; i < s->nview; i++) {
        const hmsg_t *m = s->view[i];
        if (msp_tlmsp_endpoint_transcript_includes(m->type, m->body, m->len)) {
            th_msg(&t, m->type, m->body, m->len);
        }
    }
    th_peek(&t, out->endpoint_hash);
    check_fin(C, S, s->ms_cs, &t, cfin);
    th_msg(&t, MSP_TLMSP_HT_FINISHED, cfin, 12);
    check_fin(S, C, s->ms_cs, &t, sfin);
    th_free(&t);
    memcpy(out->cfin, cfin, 12);
    memcpy(out->sfin, sfin, 12);
    for (size_t i = 0; i < s->nmbox; i++) {
        cmbox_t *m = &s->mb[i];
        th_t tc, ts;
        th_init(&tc);
        th_init(&ts);
        for (size_t j = 0; j < s->nview; j++) {
            const hmsg_t *v = s->view[j];
            if (msp_tlmsp_mbox_transcript_includes(v->type, v->body, v->len, m->id)) {
                th_msg(&tc, v->type, v->body, v->len);
                th_msg(&ts, v->type, v->body, v->len);
            }
        }
        /* The server side: Lcontrib(m) before the client Finished; the middlebox computes it alike. */
        out->lcontrib_len[i] = lcontrib(s->present, s->client, s->server, m->access, out->lcontrib[i]);
        static uint8_t mine[MSP_TLMSP_MAX_LCONTRIB];
        size_t n = lcontrib(s->present, m->from_client, m->from_server, m->access, mine);
        assert_int_equal(n, out->lcontrib_len[i]);
        assert_memory_equal(mine, out->lcontrib[i], n);
        th_bytes(&ts, out->lcontrib[i], out->lcontrib_len[i]);
        th_msg(&tc, MSP_TLMSP_HT_FINISHED, cfin, 12);
        th_msg(&ts, MSP_TLMSP_HT_FINISHED, cfin, 12);
        /* client -> m on hop i, m -> server and server -> m on hop i + 1, m -> client on hop i. */
        check_fin(C, m->id, m->ms_c, &tc, mfin(post[i][0], npost[i][0], m->id));
        check_fin(m->id, S, m->ms_s, &ts, mfin(post[i + 1][0], npost[i + 1][0], m->id));
        check_fin(S, m->id, m->ms_s, &ts, mfin(post[i + 1][1], npost[i + 1][1], m->id));
        th_msg(&tc, MSP_TLMSP_HT_FINISHED, sfin, 12);
        check_fin(m->id, C, m->ms_c, &tc, mfin(post[i][1], npost[i][1], m->id));
        memcpy(out->mf[i][0], mfin(post[i][0], npost[i][0], m->id), 12);
        memcpy(out->mf[i][1], mfin(post[i + 1][0], npost[i + 1][0], m->id), 12);
        memcpy(out->mf[i][2], mfin(post[i + 1][1], npost[i + 1][1], m->id), 12);
        memcpy(out->mf[i][3], mfin(post[i][1], npost[i][1], m->id), 12);
        th_free(&tc);
        th_free(&ts);
    }
}

/* A whole session from its capture; f gets the Finished-related values. */
static void replay(csess_t *s, const char *dir, const uint16_t *ports, size_t nports, cfinished_t *f)
{
    cload(s, dir, ports, nports);
    csecrets(s);
    ckey_material(s);
    msp_tlmsp_randoms_t r;
    ccontext_keys(s, &r);
    cfinished(s, f);
}

/* sample-1mbox: the capture agrees with every value of vectors-1mbox.txt it also yields. */
static void test_capture_1mbox(void **state)
{
    (void)state;
    static const uint16_t ports[] = {10481, 10482};
    static csess_t s;
    static cfinished_t f;
    replay(&s, "sample-1mbox", ports, 2, &f);
    vec_file_t v;
    assert_int_equal(vec_load(&v, VEC_FILE), 0);
    uint8_t want[48];
    hex(v.text, "idlist_hash", want, 32);
    assert_memory_equal(s.idlist, want, 32);
    uint8_t h[32];
    unsigned int hl = 0;
    assert_int_equal(EVP_Digest(s.server_cert, s.server_cert_len, h, &hl, EVP_sha256(), NULL), 1);
    hex(v.text, "SHA-256(server cert DER)", want, 32);
    assert_memory_equal(h, want, 32);
    hex(v.text, "endpoint transcript hash for client Finished", want, 32);
    assert_memory_equal(f.endpoint_hash, want, 32);
    /* The inputs the file states are the capture's too. */
    uint8_t sid[4] = {(uint8_t)(s.c2s[0].sid >> 24), (uint8_t)(s.c2s[0].sid >> 16), (uint8_t)(s.c2s[0].sid >> 8),
                      (uint8_t)s.c2s[0].sid};
    hex(v.text, "sid", want, 4);
    assert_memory_equal(sid, want, 4);
    hex(v.text, "client_random", want, 32);
    assert_memory_equal(s.client_random, want, 32);
    hex(v.text, "server_random", want, 32);
    assert_memory_equal(s.server_random, want, 32);
    hex(v.text, "client CKE public", want, 32);
    assert_memory_equal(s.cke_pub, want, 32);
    hex(v.text, "server SKE public", want, 32);
    assert_memory_equal(s.ske_pub, want, 32);
    static const struct {
        const char *label;
        int up, client_hello;
        uint16_t ext;
        uint8_t type;
    } same[] = {
        {"ClientHello TLMSP ext 0xff06 data", 1, 1, MSP_TLMSP_EXT_TLMSP, 0},
        {"ClientHello ContextList 0xff07 data", 1, 1, MSP_TLMSP_EXT_CONTEXT_LIST, 0},
        {"ServerHello TLMSP ext 0xff06 data", 0, 0, MSP_TLMSP_EXT_TLMSP, 0},
        {"MiddleboxHello(51) body", 0, 0, 0, MSP_TLMSP_HT_MIDDLEBOX_HELLO},
        {"MiddleboxKeyExchange(51) body", 0, 0, 0, MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE},
        {"MiddleboxHelloDone(51) body", 0, 0, 0, MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE},
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        static uint8_t buf[2048];
        size_t wn = hexv(v.text, same[i].label, buf, sizeof(buf)), n = 0;
        const hdir_t *d = same[i].up ? &s.c2s[0] : &s.s2c[0];
        const uint8_t *p = NULL;
        if (same[i].type == 0) {
            p = hello_ext(&d->pre[0], same[i].client_hello, same[i].ext, &n);
        } else {
            const hmsg_t *m = km_to(d, same[i].type, 51);
            p = m->body;
            n = m->len;
        }
        assert_non_null(p);
        assert_int_equal(n, wn);
        assert_memory_equal(p, buf, n);
    }
    hex(v.text, "client verify_data", want, 12);
    assert_memory_equal(f.cfin, want, 12);
    static const char *const mf[] = {
        "MiddleboxFinished client->m (m=51) verify_data", "MiddleboxFinished m->server (m=51) verify_data",
        "MiddleboxFinished server->m (m=51) verify_data", "MiddleboxFinished m->client (m=51) verify_data"};
    for (int i = 0; i < 4; i++) {
        hex(v.text, mf[i], want, 12);
        assert_memory_equal(f.mf[0][i], want, 12);
    }
    static uint8_t lc[MSP_TLMSP_MAX_LCONTRIB];
    size_t n = hexv(v.text, "Lcontrib(m=51)", lc, sizeof(lc));
    assert_int_equal(f.lcontrib_len[0], n);
    assert_memory_equal(f.lcontrib[0], lc, n);
    vec_free(&v);
    cfree(&s);
}

/* sample-2mbox: two middleboxes with different rights (rw+r, rw) and an unshared context. */
static void test_capture_2mbox(void **state)
{
    (void)state;
    static const uint16_t ports[] = {10411, 10412, 10465};
    static csess_t s;
    static cfinished_t f;
    replay(&s, "sample-2mbox", ports, 3, &f);
    assert_int_equal(s.nmbox, 2);
    cfree(&s);
}

/* sample-discovery: the post-discovery session, which runs with all 256 contexts (7.2 bug). */
static void test_capture_discovery(void **state)
{
    (void)state;
    static const uint16_t ports[] = {10441, 10442, 10468};
    static csess_t s;
    static cfinished_t f;
    replay(&s, "sample-discovery", ports, 3, &f);
    int n = 0;
    for (int c = 1; c < 256; c++) {
        n += s.present[c] != 0;
    }
    assert_int_equal(n, 255);
    cfree(&s);
}

/* -------------------------------------------------------- negative / units */

static void sample_contrib(msp_tlmsp_contrib_t *c, const uint8_t present[256])
{
    size_t n = 1;
    for (int i = 1; i < 256; i++) {
        n += present[i] != 0;
    }
    size_t len = 16 + 32 * n;
    uint8_t *rnd = malloc(len);
    assert_non_null(rnd);
    for (size_t i = 0; i < len; i++) {
        rnd[i] = (uint8_t)(i * 7 + 1);
    }
    assert_int_equal(msp_tlmsp_contrib_generate(c, present, rnd, len), MSP_OK);
    assert_int_equal(msp_tlmsp_contrib_generate(c, present, rnd, len - 1), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_contrib_generate(c, present, rnd, len), MSP_OK);
    free(rnd);
}

static void test_contrib_generate_layout(void **state)
{
    (void)state;
    uint8_t present[256] = {0};
    present[3] = present[200] = 1;
    uint8_t rnd[16 + 3 * 32];
    for (size_t i = 0; i < sizeof(rnd); i++) {
        rnd[i] = (uint8_t)i;
    }
    static msp_tlmsp_contrib_t c;
    assert_int_equal(msp_tlmsp_contrib_generate(&c, present, rnd, sizeof(rnd)), MSP_OK);
    /* synch, then reader and writer of contexts 0, 3, 200 (6.6) */
    assert_memory_equal(c.synch, rnd, 16);
    assert_memory_equal(c.reader[0], rnd + 16, 16);
    assert_memory_equal(c.writer[0], rnd + 32, 16);
    assert_memory_equal(c.reader[3], rnd + 48, 16);
    assert_memory_equal(c.writer[200], rnd + 96, 16);
    assert_true(c.present[0] && c.present[3] && c.present[200] && !c.present[1]);
    assert_true(c.has_reader[200] && c.has_writer[200] && !c.has_reader[4]);
    assert_int_equal(msp_tlmsp_contrib_generate(&c, present, rnd, sizeof(rnd) - 32), MSP_ERR_ARGUMENT);
}

/* A body sealed under a fixed key with these contributions. */
static size_t seal_sample(msp_tlmsp_gcm_t *g, const uint8_t key[16], const msp_tlmsp_contrib_t *c, uint8_t *out,
                          size_t cap)
{
    static const uint8_t suffix[11] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    msp_buf_t b;
    msp_buf_init_fixed(&b, out, cap);
    assert_int_equal(msp_tlmsp_key_material_seal(g, key, 0x42, C, suffix, c, NULL, &b), MSP_OK);
    return b.len;
}

static void test_key_material_tampering(void **state)
{
    (void)state;
    static const uint8_t key[16] = {7};
    uint8_t present[256] = {0};
    present[1] = present[9] = 1;
    static msp_tlmsp_contrib_t c, d;
    sample_contrib(&c, present);
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    uint8_t body[512];
    size_t len = seal_sample(&g, key, &c, body, sizeof(body));
    assert_int_equal(len, 29 + 51 + 2 * 35);
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, len, 0x42, present, &d), MSP_OK);
    assert_memory_equal(&d, &c, sizeof(c));
    uint8_t id = 0;
    assert_int_equal(msp_tlmsp_key_material_id(body, len, &id), MSP_OK);
    assert_int_equal(id, 0x42);
    assert_int_equal(msp_tlmsp_key_material_id(body, 0, &id), MSP_ALERT_DECODE_ERROR);
    /* Every single-bit flip: the id is checked first, everything else is under the tag. */
    for (size_t i = 0; i < len; i++) {
        body[i] ^= 0x10;
        int want = i == 0 ? MSP_ALERT_ILLEGAL_PARAMETER : MSP_ALERT_DECRYPT_ERROR;
        assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, len, 0x42, present, &d), want);
        assert_int_equal(d.present[0], 0); /* wiped */
        body[i] ^= 0x10;
    }
    /* Truncation: a byte short breaks the tag, 29 bytes or fewer is not a body. */
    for (size_t n = 0; n < len; n++) {
        int want = n <= 29 ? MSP_ALERT_DECODE_ERROR : MSP_ALERT_DECRYPT_ERROR;
        assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, n, 0x42, present, &d), want);
    }
    /* A context the session does not have. */
    uint8_t fewer[256] = {0};
    fewer[1] = 1;
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, len, 0x42, fewer, &d), MSP_ALERT_UNKNOWN_CONTEXT);
    /* Oversized: beyond 5.5's limit, or a plaintext no contributions list can fill. */
    uint8_t *big = calloc(1, MSP_TLMSP_KEYMAT_MAX_BODY + 1);
    assert_non_null(big);
    big[0] = 0x42;
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, big, MSP_TLMSP_KEYMAT_MAX_BODY + 1, 0x42, present, &d),
                     MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, big, 29 + MSP_TLMSP_MAX_CONTRIB_LEN + 1, 0x42, present, &d),
                     MSP_ALERT_DECODE_ERROR);
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, big, 29 + MSP_TLMSP_MAX_CONTRIB_LEN, 0x42, present, &d),
                     MSP_ALERT_DECRYPT_ERROR);
    free(big);
    msp_tlmsp_gcm_free(&g);
}

/* Properly sealed bodies whose contributions list is malformed: decode_error once the tag checks out. */
static void test_key_material_bad_contributions(void **state)
{
    (void)state;
    static const uint8_t key[16] = {9};
    static const uint8_t nonce[12] = {C, 1, 2, 3};
    uint8_t present[256] = {0};
    present[1] = 1;
    /* context 0: synch(16 x 01), reader(16 x 02), no writer; context 1: nothing */
    uint8_t ok[38];
    memset(ok, 0, sizeof(ok));
    memset(ok + 1, 1, 16);
    ok[17] = 16;
    memset(ok + 18, 2, 16);
    ok[35] = 1;
    static const struct {
        size_t at;     /* the byte to change */
        uint8_t value; /* its new value */
        size_t len;    /* the plaintext length used */
        int want;
    } cases[] = {
        {0, 0, 38, MSP_OK},
        {17, 15, 38, MSP_ALERT_DECODE_ERROR},   /* a reader of 15 bytes */
        {17, 17, 38, MSP_ALERT_DECODE_ERROR},   /* a reader of 17 bytes */
        {34, 2, 38, MSP_ALERT_DECODE_ERROR},    /* a writer of 2 bytes */
        {35, 0, 38, MSP_ALERT_DECODE_ERROR},    /* context 0 twice */
        {35, 1, 36, MSP_ALERT_DECODE_ERROR},    /* cut inside the last entry */
        {35, 1, 10, MSP_ALERT_DECODE_ERROR},    /* cut inside the synch */
        {35, 5, 38, MSP_ALERT_UNKNOWN_CONTEXT}, /* not a context of the session */
    };
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    static msp_tlmsp_contrib_t d;
    uint8_t plain[sizeof(ok)], body[128];
    msp_buf_t b;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(plain, ok, sizeof(ok));
        plain[cases[i].at] = cases[i].value;
        msp_buf_init_fixed(&b, body, sizeof(body));
        assert_int_equal(msp_tlmsp_keymat_seal(&g, key, S, nonce, plain, cases[i].len, &b), MSP_OK);
        assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, b.len, S, present, &d), cases[i].want);
    }
    /* No context 0 at all. */
    static const uint8_t no_ctx0[] = {1, 0, 0};
    msp_buf_init_fixed(&b, body, sizeof(body));
    assert_int_equal(msp_tlmsp_keymat_seal(&g, key, S, nonce, no_ctx0, sizeof(no_ctx0), &b), MSP_OK);
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, b.len, S, present, &d), MSP_ALERT_DECODE_ERROR);
    msp_tlmsp_gcm_free(&g);
}

/* Seal filters by rights; write implies read; context 0 always complete. */
static void test_key_material_access_filter(void **state)
{
    (void)state;
    static const uint8_t key[16] = {5};
    uint8_t present[256] = {0};
    present[1] = present[2] = present[3] = 1;
    static msp_tlmsp_contrib_t c, d;
    sample_contrib(&c, present);
    uint8_t access[256] = {0};
    access[0] = 0;                   /* ignored: context 0 is always full */
    access[1] = MSP_TLMSP_CAN_WRITE; /* write alone still grants read */
    access[2] = MSP_TLMSP_CAN_READ;
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    static const uint8_t suffix[11] = {0};
    uint8_t body[512];
    msp_buf_t b;
    msp_buf_init_fixed(&b, body, sizeof(body));
    assert_int_equal(msp_tlmsp_key_material_seal(&g, key, 0x10, C, suffix, &c, access, &b), MSP_OK);
    /* 5.5 example sizes: 51 for context 0, 35 rw, 19 r, 3 none. */
    assert_int_equal(b.len, 29 + 51 + 35 + 19 + 3);
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, b.len, 0x10, present, &d), MSP_OK);
    assert_true(d.has_reader[0] && d.has_writer[0] && d.has_reader[1] && d.has_writer[1]);
    assert_true(d.has_reader[2] && !d.has_writer[2] && !d.has_reader[3] && !d.has_writer[3] && d.present[3]);
    /* Too small an output buffer is the buffer's error. */
    uint8_t small[40];
    msp_buf_init_fixed(&b, small, sizeof(small));
    assert_int_equal(msp_tlmsp_key_material_seal(&g, key, 0x10, C, suffix, &c, access, &b), MSP_ERR_LIMIT);
    msp_tlmsp_gcm_free(&g);
}

/*
 * The length checks of msp_tlmsp_key_material_open come before the id check (msp/tlmsp_keys.h), so a body of a
 * length it refuses is decode_error whatever its id byte: 29 bytes or fewer (no plaintext), longer than the largest
 * contributions list (29 + MSP_TLMSP_MAX_CONTRIB_LEN) up to 5.5's limit, and beyond that limit. The shortest and the
 * longest lengths it takes get to the id check.
 */
static void test_key_material_length_before_id(void **state)
{
    (void)state;
    static const uint8_t key[16] = {3};
    uint8_t present[256] = {0};
    present[1] = 1;
    msp_tlmsp_gcm_t g;
    assert_int_equal(msp_tlmsp_gcm_init(&g), MSP_OK);
    static msp_tlmsp_contrib_t d;
    uint8_t *body = calloc(1, MSP_TLMSP_KEYMAT_MAX_BODY + 1);
    assert_non_null(body);
    body[0] = 0x43; /* 0x42 is expected */
    static const size_t refused[] = {0,
                                     1,
                                     MSP_TLMSP_KEYMAT_OVERHEAD - 1,
                                     MSP_TLMSP_KEYMAT_OVERHEAD,
                                     MSP_TLMSP_KEYMAT_OVERHEAD + MSP_TLMSP_MAX_CONTRIB_LEN + 1,
                                     MSP_TLMSP_KEYMAT_OVERHEAD + MSP_TLMSP_MAX_CONTRIB_LEN + 2,
                                     MSP_TLMSP_KEYMAT_MAX_BODY - 1,
                                     MSP_TLMSP_KEYMAT_MAX_BODY,
                                     MSP_TLMSP_KEYMAT_MAX_BODY + 1};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, refused[i], 0x42, present, &d),
                         MSP_ALERT_DECODE_ERROR);
    }
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, MSP_TLMSP_KEYMAT_OVERHEAD + 1, 0x42, present, &d),
                     MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(msp_tlmsp_key_material_open(&g, key, body, MSP_TLMSP_KEYMAT_OVERHEAD + MSP_TLMSP_MAX_CONTRIB_LEN,
                                                 0x42, present, &d),
                     MSP_ALERT_ILLEGAL_PARAMETER);
    free(body);
    msp_tlmsp_gcm_free(&g);
}

/*
 * msp_tlmsp_key_confirmation_check (6.7) at its edges, on crafted contributions: its arguments (NULLs, and 251
 * middleboxes, the most a session has, taken while 252 are not); a session of context 0 alone, where only the synch
 * contribution can tell a wrong echo; a peer contribution that lists a present context but lacks its reader or its
 * writer part, a fault even without middleboxes.
 */
static void test_confirmation_check_edges(void **state)
{
    (void)state;
    enum { N = MSP_TLMSP_MAX_MIDDLEBOXES + 1 };
    uint8_t present[256] = {0};
    present[4] = 1;
    static msp_tlmsp_contrib_t peer, echo, partial;
    sample_contrib(&peer, present);
    echo = peer; /* a confirmation echoing everything, as one from a middlebox with full access */
    static const msp_tlmsp_contrib_t *conf[N];
    static uint8_t access[N][256];
    for (size_t i = 0; i < N; i++) {
        conf[i] = &echo;
        access[i][4] = MSP_TLMSP_CAN_READ | MSP_TLMSP_CAN_WRITE;
    }
    /* Arguments. */
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, &peer, conf, access, MSP_TLMSP_MAX_MIDDLEBOXES), MSP_OK);
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, &peer, conf, access, MSP_TLMSP_MAX_MIDDLEBOXES + 1),
                     MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, &peer, conf, access, 1), MSP_OK);
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, &peer, conf, NULL, 1), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, &peer, NULL, access, 1), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, &peer, NULL, NULL, 0), MSP_OK);
    partial = peer;
    partial.present[0] = 0; /* a fault the check would find before it reads present[1] */
    assert_int_equal(msp_tlmsp_key_confirmation_check(NULL, &partial, NULL, NULL, 0), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(NULL, &peer, conf, access, 1), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(NULL, &peer, NULL, NULL, 0), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, NULL, conf, access, 1), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_key_confirmation_check(present, NULL, NULL, NULL, 0), MSP_ERR_ARGUMENT);
    /* Context 0 alone: the synch echo is compared. */
    static const uint8_t only0[256] = {0};
    static msp_tlmsp_contrib_t peer0, echo0;
    sample_contrib(&peer0, only0);
    echo0 = peer0;
    const msp_tlmsp_contrib_t *conf0[] = {&echo0};
    assert_int_equal(msp_tlmsp_key_confirmation_check(only0, &peer0, conf0, access, 1), MSP_OK);
    echo0.synch[15] ^= 1;
    assert_int_equal(msp_tlmsp_key_confirmation_check(only0, &peer0, conf0, access, 1),
                     MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    /* The peer lists every present context but one part of one is missing. */
    for (int c = 0; c <= 4; c += 4) {
        partial = peer;
        partial.has_reader[c] = 0;
        assert_int_equal(msp_tlmsp_key_confirmation_check(present, &partial, NULL, NULL, 0),
                         MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
        partial = peer;
        partial.has_writer[c] = 0;
        assert_int_equal(msp_tlmsp_key_confirmation_check(present, &partial, NULL, NULL, 0),
                         MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
        partial = peer;
        partial.present[c] = 0;
        assert_int_equal(msp_tlmsp_key_confirmation_check(present, &partial, NULL, NULL, 0),
                         MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT);
    }
}

static void test_pair_key_rules(void **state)
{
    (void)state;
    msp_tlmsp_key_block_t kb;
    memset(&kb, 0, sizeof(kb));
    const uint8_t *k = NULL;
    /* 6.5 table: from the endpoint A of the pair A_to_B, towards it B_to_A; the client is A of (C,S). */
    static const struct {
        uint8_t src, dst;
        int a_to_b;
    } ok[] = {{C, S, 1}, {S, C, 0}, {C, 0x33, 1}, {0x33, C, 0}, {S, 0x33, 1}, {0x33, S, 0}, {C, 2, 1}, {0xfd, S, 0}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(msp_tlmsp_pair_key(&kb, ok[i].src, ok[i].dst, &k), MSP_OK);
        assert_ptr_equal(k, ok[i].a_to_b ? kb.a_to_b_enc : kb.b_to_a_enc);
    }
    static const uint8_t bad[][2] = {{C, C}, {0x33, 0x33}, {0x33, 0x44}, {0, C}, {C, 0}, {0xff, S}, {S, 0xff}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(msp_tlmsp_pair_key(&kb, bad[i][0], bad[i][1], &k), MSP_ERR_ARGUMENT);
    }
    assert_int_equal(msp_tlmsp_pair_key(NULL, C, S, &k), MSP_ERR_ARGUMENT);
}

static void test_finished_kinds(void **state)
{
    (void)state;
    static const struct {
        uint8_t src, dst;
        msp_tlmsp_finished_kind_t kind;
    } ok[] = {
        {C, S, MSP_TLMSP_FIN_CLIENT},
        {S, C, MSP_TLMSP_FIN_SERVER},
        {C, 0x33, MSP_TLMSP_FIN_CLIENT_TO_MBOX},
        {0x33, S, MSP_TLMSP_FIN_MBOX_TO_SERVER},
        {S, 0x33, MSP_TLMSP_FIN_SERVER_TO_MBOX},
        {0x33, C, MSP_TLMSP_FIN_MBOX_TO_CLIENT},
    };
    msp_tlmsp_finished_kind_t kind;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(msp_tlmsp_finished_kind(ok[i].src, ok[i].dst, &kind), MSP_OK);
        assert_int_equal(kind, ok[i].kind);
    }
    assert_int_equal(msp_tlmsp_finished_kind(0x33, 0x44, &kind), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_finished_kind(C, C, &kind), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_tlmsp_finished_kind(0, S, &kind), MSP_ERR_ARGUMENT);
    uint8_t m[48] = {0}, h[32] = {0}, out[12];
    assert_int_equal(msp_tlmsp_finished((msp_tlmsp_finished_kind_t)6, m, h, out), MSP_ERR_ARGUMENT);
    /* Different labels give different verify_data. */
    uint8_t a[12], b[12];
    assert_int_equal(msp_tlmsp_finished(MSP_TLMSP_FIN_MBOX_TO_SERVER, m, h, a), MSP_OK);
    assert_int_equal(msp_tlmsp_finished(MSP_TLMSP_FIN_SERVER_TO_MBOX, m, h, b), MSP_OK);
    assert_memory_not_equal(a, b, 12);
}

static void test_transcript_rules(void **state)
{
    (void)state;
    static const uint8_t to_c[] = {C, 0}, to_s[] = {S, 0}, to_m[] = {0x33, 0}, other[] = {0x44, 0};
    /* 6.10 */
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_CLIENT_HELLO, to_c, 2), 1);
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE, to_m, 2), 1);
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(4, to_m, 2), 1); /* NewSessionTicket */
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, to_c, 2), 1);
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, to_s, 2), 1);
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, to_m, 2), 0);
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, to_c, 0), 0);
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, to_m, 2), 0);
    assert_int_equal(msp_tlmsp_endpoint_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_FINISHED, to_m, 2), 0);
    /* 6.11 */
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_SERVER_KEY_EXCHANGE, to_c, 2, 0x33), 1);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_HELLO, to_m, 2, 0x33), 1);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_CERT, other, 2, 0x33), 0);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE, to_m, 1, 0x33), 1);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE, to_m, 0, 0x33), 0);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE, to_m, 2, 0x33), 0);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, to_m, 2, 0x33), 0);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, to_s, 2, 0x33), 1);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_CERTIFICATE_REQUEST, to_c, 2, 0x33), 0);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_CERTIFICATE_VERIFY, to_c, 2, 0x33), 0);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(4, to_c, 2, 0x33), 0);
    assert_int_equal(msp_tlmsp_mbox_transcript_includes(MSP_TLMSP_HT_FINISHED, to_c, 2, 0x33), 1);
}

static void test_lcontrib_rules(void **state)
{
    (void)state;
    uint8_t present[256] = {0};
    present[1] = present[2] = present[5] = 1;
    static msp_tlmsp_contrib_t cl, sv;
    sample_contrib(&cl, present);
    sample_contrib(&sv, present);
    for (int i = 0; i < 256; i++) {
        sv.reader[i][0] ^= 0xff; /* tell the server's from the client's */
    }
    uint8_t access[256] = {0};
    access[1] = MSP_TLMSP_CAN_READ | MSP_TLMSP_CAN_WRITE;
    access[2] = MSP_TLMSP_CAN_READ;
    access[9] = MSP_TLMSP_CAN_READ; /* not a present context: ignored */
    static uint8_t out[MSP_TLMSP_MAX_LCONTRIB];
    size_t n = lcontrib(present, &cl, &sv, access, out);
    /* synch pair, ctx 0 r and w pairs, ctx 1 r and w pairs, ctx 2 r pair */
    assert_int_equal(n, 32 * 6);
    assert_memory_equal(out, cl.synch, 16);
    assert_memory_equal(out + 16, sv.synch, 16);
    assert_memory_equal(out + 32, cl.reader[0], 16);
    assert_memory_equal(out + 48, sv.reader[0], 16);
    assert_memory_equal(out + 160, cl.reader[2], 16);
    assert_memory_equal(out + 176, sv.reader[2], 16);
    uint8_t tiny[8];
    msp_buf_t b;
    msp_buf_init_fixed(&b, tiny, sizeof(tiny));
    assert_int_equal(msp_tlmsp_lcontrib(present, &cl, &sv, access, &b), MSP_ERR_LIMIT);
}

/* P-256 premaster: both sides agree; the peer key rebuilt through an independent path gives the same. */
static void test_premaster_p256(void **state)
{
    (void)state;
    EVP_PKEY *a = EVP_EC_gen("P-256"), *b = EVP_EC_gen("P-256");
    assert_non_null(a);
    assert_non_null(b);
    static uint8_t pm[MSP_TLMSP_MAX_PREMASTER];
    size_t n = premaster_both(a, b, pm);
    assert_int_equal(n, 32);
    uint8_t *spki = NULL;
    int sl = i2d_PUBKEY(b, &spki);
    assert_true(sl > 0);
    const uint8_t *p = spki;
    EVP_PKEY *bpub = d2i_PUBKEY(NULL, &p, sl);
    OPENSSL_free(spki);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(a, NULL);
    uint8_t ref[64];
    size_t rl = sizeof(ref);
    assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(ctx, bpub), 1);
    assert_int_equal(EVP_PKEY_derive(ctx, ref, &rl), 1);
    assert_int_equal(rl, n);
    assert_memory_equal(ref, pm, n);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(bpub);
    /* A point off the curve is the peer's fault. */
    uint8_t bad[65] = {4, 1, 2, 3};
    size_t bn = 0;
    assert_int_equal(msp_tlmsp_premaster(a, bad, sizeof(bad), pm, &bn), MSP_ALERT_ILLEGAL_PARAMETER);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static EVP_PKEY *ffdhe2048(void)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"ffdhe2048", 0),
                           OSSL_PARAM_construct_end()};
    EVP_PKEY *k = NULL;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
    assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

static BIGNUM *bn_param(EVP_PKEY *k, const char *name)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    return bn;
}

/* DHE: agreement, and the secret equals y_peer^x mod p with leading zeros stripped (computed with BN). */
static void test_premaster_dhe(void **state)
{
    (void)state;
    EVP_PKEY *a = ffdhe2048(), *b = ffdhe2048();
    uint8_t ya[256], yb[256];
    BIGNUM *p = bn_param(a, OSSL_PKEY_PARAM_FFC_P), *xa = bn_param(a, OSSL_PKEY_PARAM_PRIV_KEY);
    BIGNUM *pa = bn_param(a, OSSL_PKEY_PARAM_PUB_KEY), *pb = bn_param(b, OSSL_PKEY_PARAM_PUB_KEY);
    int la = BN_bn2bin(pa, ya), lb = BN_bn2bin(pb, yb);
    static uint8_t s1[MSP_TLMSP_MAX_DHE_PREMASTER], s2[MSP_TLMSP_MAX_DHE_PREMASTER];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(msp_tlmsp_premaster_dhe(a, yb, (size_t)lb, s1, sizeof(s1), &n1), MSP_OK);
    assert_int_equal(msp_tlmsp_premaster_dhe(b, ya, (size_t)la, s2, sizeof(s2), &n2), MSP_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(s1, s2, n1);
    BN_CTX *bctx = BN_CTX_new();
    BIGNUM *z = BN_new();
    assert_int_equal(BN_mod_exp(z, pb, xa, p, bctx), 1);
    uint8_t ref[256];
    int zl = BN_bn2bin(z, ref); /* minimal big-endian: no leading zeros */
    assert_int_equal((size_t)zl, n1);
    assert_memory_equal(ref, s1, n1);
    assert_int_not_equal(s1[0], 0);
    /* Bad peer values: 0, 1, p - 1, p; and bad arguments. */
    uint8_t pbytes[256], v[256];
    int pl = BN_bn2bin(p, pbytes);
    uint8_t zero[1] = {0}, one[1] = {1};
    assert_int_equal(msp_tlmsp_premaster_dhe(a, zero, 1, s1, sizeof(s1), &n1), MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(msp_tlmsp_premaster_dhe(a, one, 1, s1, sizeof(s1), &n1), MSP_ALERT_ILLEGAL_PARAMETER);
    memcpy(v, pbytes, (size_t)pl);
    v[pl - 1] -= 1;
    assert_int_equal(msp_tlmsp_premaster_dhe(a, v, (size_t)pl, s1, sizeof(s1), &n1), MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(msp_tlmsp_premaster_dhe(a, pbytes, (size_t)pl, s1, sizeof(s1), &n1), MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(msp_tlmsp_premaster_dhe(a, yb, 0, s1, sizeof(s1), &n1), MSP_ALERT_ILLEGAL_PARAMETER);
    assert_int_equal(msp_tlmsp_premaster_dhe(a, yb, (size_t)lb, s1, 100, &n1), MSP_ERR_ARGUMENT);
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_int_equal(msp_tlmsp_premaster_dhe(x, yb, (size_t)lb, s1, sizeof(s1), &n1), MSP_ERR_ARGUMENT);
    EVP_PKEY_free(x);
    BN_free(z);
    BN_CTX_free(bctx);
    BN_free(p);
    BN_clear_free(xa);
    BN_free(pa);
    BN_free(pb);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_secrets_and_key_blocks),
        cmocka_unit_test(test_vectors_key_material),
        cmocka_unit_test(test_vectors_context_keys_and_lcontrib),
        cmocka_unit_test(test_vectors_confirmation_check),
        cmocka_unit_test(test_vectors_client_finished),
        cmocka_unit_test(test_capture_1mbox),
        cmocka_unit_test(test_capture_2mbox),
        cmocka_unit_test(test_capture_discovery),
        cmocka_unit_test(test_contrib_generate_layout),
        cmocka_unit_test(test_key_material_tampering),
        cmocka_unit_test(test_key_material_bad_contributions),
        cmocka_unit_test(test_key_material_access_filter),
        cmocka_unit_test(test_key_material_length_before_id),
        cmocka_unit_test(test_confirmation_check_edges),
        cmocka_unit_test(test_pair_key_rules),
        cmocka_unit_test(test_finished_kinds),
        cmocka_unit_test(test_transcript_rules),
        cmocka_unit_test(test_lcontrib_rules),
        cmocka_unit_test(test_premaster_p256),
        cmocka_unit_test(test_premaster_dhe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
