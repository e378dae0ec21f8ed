/*
 * Handshake pieces every role uses: the middlebox messages as an endpoint
 * (or another middlebox) receives them (tlmsp-handshake.md 4.3 step 3, 5.1-5.4),
 * the endpoints' master secrets and key blocks (6.2-6.5), and
 * MiddleboxKeyMaterial (5.5).
 */
#include "conn.h"

#include <string.h>

#include "msp/error.h"
#include "tlmsp_mbox_msg.h"
#include "tlmsp_tls12.h"

/*
 * Closes the handshake message begun at mark (msp_tls12_hs_begin) once its
 * body is written; ret is the body builder's result, which comes first: its
 * alert says more than the buffer's error.
 */
int hs_close(msp_buf_t *msg, size_t mark, int ret)
{
    msp_tls12_hs_end(msg, mark);
    MSP_GUARD(ret);
    return msp_buf_error(msg);
}

/* The server's Certificate (client and middlebox): its leaf for the IDList and its key for the key exchange. */
int hs_server_cert(sess_t *s, const uint8_t *body, size_t len)
{
    msp_tls12_certificate_t m;
    MSP_GUARD(msp_tls12_certificate_parse(body, len, &m));
    /* RFC 5246 7.4.2: the server's certificate is required with ECDHE_RSA / ECDHE_ECDSA (H 1.9) */
    MSP_ENSURE(m.ncerts > 0, MSP_ALERT_BAD_CERTIFICATE);
    MSP_GUARD(sess_dup(&s->server_cert, &s->server_cert_len, m.der[0], m.der_len[0]));
    return sess_cert_key(s, m.der[0], m.der_len[0], &s->server_pub);
}

/* The ServerKeyExchange (client and middlebox): signed by the server's key, on a group we support. */
int hs_server_kex(sess_t *s, const uint8_t *body, size_t len)
{
    msp_tls12_server_kex_t k;
    MSP_GUARD(msp_tls12_server_kex_parse(body, len, &k));
    /* H 1.9: X25519 or P-256, the groups we offered */
    MSP_ENSURE((k.group == MSP_TLS12_GROUP_X25519 || k.group == MSP_TLS12_GROUP_P256) && k.point_len <= MAX_POINT,
               MSP_ALERT_ILLEGAL_PARAMETER);
    MSP_GUARD(msp_tls12_server_kex_verify(s->server_pub, s->client_random, s->server_random, &k));
    s->group = k.group;
    memcpy(s->ske_point, k.point, k.point_len);
    s->ske_point_len = k.point_len;
    return MSP_OK;
}

/* What a ClientHello's TLMSP extensions give the server and every middlebox: contexts, addresses, the list. */
int hs_adopt(sess_t *s, const msp_tlmsp_ext_client_t *e, const msp_tlmsp_mbox_list_t *list,
             const msp_tls12_ext_t *context_list)
{
    msp_tlmsp_context_list_t ctx;
    MSP_GUARD(msp_tlmsp_context_list_parse(context_list->data, context_list->len, &ctx));
    MSP_GUARD(sess_set_contexts(s, &ctx));
    MSP_GUARD(sess_store_addresses(s, &e->client, &e->server));
    return sess_set_list(s, list);
}

/* The index of a middlebox message's sender: a listed middlebox other than ourselves (5.1). */
static int sender(const sess_t *s, uint8_t id, int *i)
{
    *i = sess_mbox_index(s, id);
    MSP_ENSURE(*i >= 0 && id != s->self, MSP_ALERT_ILLEGAL_PARAMETER);
    return MSP_OK;
}

/* Each middlebox sends Hello, Cert, KeyExchange, HelloDone in that order, once (4.3). */
static int in_order(mbox_peer_t *m, uint8_t bit)
{
    /* H 4.3 step 3: "MiddleboxHello -> MiddleboxCert -> MiddleboxKeyExchange -> MiddleboxHelloDone (any other
     * order is unexpected_message)" */
    MSP_ENSURE(m->got == bit - 1, MSP_ALERT_UNEXPECTED_MESSAGE);
    m->got |= bit;
    return MSP_OK;
}

static int on_hello(sess_t *s, const uint8_t *body, size_t len, int *i)
{
    msp_tlmsp_mbox_hello_t h;
    MSP_GUARD(msp_tlmsp_mbox_hello_parse(body, len, &h));
    MSP_GUARD(sender(s, h.id, i));
    MSP_GUARD(in_order(&s->mb[*i], GOT_HELLO));
    memcpy(s->mb_to_client[*i], h.to_client_random, 32);
    memcpy(s->mb_to_server[*i], h.to_server_random, 32);
    return MSP_OK;
}

static int on_cert(sess_t *s, const uint8_t *body, size_t len, int *i)
{
    msp_tlmsp_mbox_cert_t c;
    MSP_GUARD(msp_tlmsp_mbox_cert_parse(body, len, &c));
    MSP_GUARD(sender(s, c.id, i));
    MSP_GUARD(in_order(&s->mb[*i], GOT_CERT));
    MSP_GUARD(sess_dup(&s->mb[*i].cert, &s->mb[*i].cert_len, c.der[0], c.der_len[0]));
    return sess_cert_key(s, c.der[0], c.der_len[0], &s->mb[*i].pub);
}

static int keep_point(const msp_tlmsp_kex_half_t *h, uint16_t group, uint8_t *dst, size_t *dst_len)
{
    /* Every middlebox key must be on the ServerKeyExchange group: the endpoints use one key with all (5.3). */
    MSP_ENSURE(h->group == group && h->point_len <= MAX_POINT, MSP_ALERT_ILLEGAL_PARAMETER);
    memcpy(dst, h->point, h->point_len);
    *dst_len = h->point_len;
    return MSP_OK;
}

static int on_kex(sess_t *s, const uint8_t *body, size_t len, int *i)
{
    msp_tlmsp_mbox_kex_t k;
    MSP_GUARD(msp_tlmsp_mbox_kex_parse(body, len, &k));
    MSP_GUARD(sender(s, k.id, i));
    MSP_GUARD(in_order(&s->mb[*i], GOT_KEX));
    msp_tlmsp_mbox_hello_t h = {k.id, {0}, {0}};
    memcpy(h.to_client_random, s->mb_to_client[*i], 32);
    memcpy(h.to_server_random, s->mb_to_server[*i], 32);
    /* H 5.3: both halves signed by the middlebox's certified key */
    MSP_GUARD(msp_tlmsp_mbox_kex_verify(s->mb[*i].pub, &h, &k.to_client));
    MSP_GUARD(msp_tlmsp_mbox_kex_verify(s->mb[*i].pub, &h, &k.to_server));
    MSP_GUARD(keep_point(&k.to_client, s->group, s->mb[*i].to_client_point, &s->mb[*i].to_client_point_len));
    return keep_point(&k.to_server, s->group, s->mb[*i].to_server_point, &s->mb[*i].to_server_point_len);
}

static int on_done(sess_t *s, const uint8_t *body, size_t len, int *i)
{
    uint8_t id;
    MSP_GUARD(msp_tlmsp_mbox_hello_done_parse(body, len, &id));
    MSP_GUARD(sender(s, id, i));
    return in_order(&s->mb[*i], GOT_DONE);
}

/* One of another middlebox's four messages; returns its list index through *index. */
int hs_mbox_msg(sess_t *s, uint8_t type, const uint8_t *body, size_t len, uint8_t *index)
{
    int i = -1, ret;
    switch (type) {
    case MSP_TLMSP_HT_MIDDLEBOX_HELLO:
        ret = on_hello(s, body, len, &i);
        break;
    case MSP_TLMSP_HT_MIDDLEBOX_CERT:
        ret = on_cert(s, body, len, &i);
        break;
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE:
        ret = on_kex(s, body, len, &i);
        break;
    case MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE:
        ret = on_done(s, body, len, &i);
        break;
    default:
        ret = MSP_ALERT_UNEXPECTED_MESSAGE;
    }
    *index = (uint8_t)(i < 0 ? 0 : i);
    return ret;
}

static int master_and_block(EVP_PKEY *own, const uint8_t *peer, size_t peer_len, const uint8_t *idlist,
                            const uint8_t *a_random, const uint8_t *b_random, uint8_t master[48],
                            msp_tlmsp_key_block_t *kb)
{
    uint8_t pms[MSP_TLMSP_MAX_PREMASTER];
    size_t pms_len = sizeof(pms);
    int ret;
    MSP_GUARD_GOTO(ret, msp_tlmsp_premaster(own, peer, peer_len, pms, &pms_len), out);
    MSP_GUARD_GOTO(ret, msp_tlmsp_master_secret(pms, pms_len, idlist, a_random, b_random, master), out);
    ret = msp_tlmsp_key_block(master, a_random, b_random, kb);
out:
    OPENSSL_cleanse(pms, sizeof(pms));
    /* a share that gives no secret (a low-order point, 6.2) is the peer's bad parameter */
    return ret == MSP_OK ? MSP_OK : MSP_ALERT_ILLEGAL_PARAMETER;
}

/*
 * An endpoint's secrets once the other endpoint's key share is known (6.2-6.5): client-server, and one pair per
 * middlebox with the same ephemeral key. Every middlebox must have sent all four messages by now.
 */
int hs_endpoint_masters(sess_t *s)
{
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    for (size_t i = 0; i < s->list->n; i++) {
        /* H 4.3 step 3: "(Nothing checks that every middlebox sent its four messages.)" We do: the reference
         * only notices later (9.10). */
        MSP_ENSURE(s->mb[i].got == (GOT_HELLO | GOT_CERT | GOT_KEX | GOT_DONE), MSP_ALERT_UNEXPECTED_MESSAGE);
    }
    MSP_GUARD(sess_idlist(s));
    const uint8_t *peer = client ? s->ske_point : s->cke_point;
    size_t peer_len = client ? s->ske_point_len : s->cke_point_len;
    MSP_GUARD(master_and_block(s->eph, peer, peer_len, s->idlist, s->client_random, s->server_random, s->master_cs,
                               &s->kb_cs));
    for (size_t i = 0; i < s->list->n; i++) {
        mbox_peer_t *m = &s->mb[i];
        MSP_GUARD(master_and_block(s->eph, client ? m->to_client_point : m->to_server_point,
                                   client ? m->to_client_point_len : m->to_server_point_len, s->idlist,
                                   client ? s->client_random : s->server_random,
                                   client ? s->mb_to_client[i] : s->mb_to_server[i], m->master, &m->kb));
    }
    return MSP_OK;
}

/* MiddleboxKeyMaterial to target (5.5): everything to the other endpoint, a middlebox what its entry grants. */
int hs_key_material(sess_t *s, uint8_t target, msp_buf_t *msg)
{
    const uint8_t *key, *access = NULL;
    uint8_t suffix[MSP_TLMSP_NONCE_SUFFIX_LEN];
    int i = sess_mbox_index(s, target);
    if (i >= 0) {
        access = s->list->m[i].access;
    }
    MSP_GUARD(sess_pair_key(s, s->self, target, &key));
    sess_random(s, suffix, sizeof(suffix));
    size_t mark;
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, &mark);
    int ret = msp_tlmsp_key_material_seal(&s->g, key, target, s->self, suffix,
                                          s->self == MSP_TLMSP_ID_CLIENT ? s->cc : s->sc, access, msg);
    return hs_close(msg, mark, ret);
}
