/*
 * A TLMSP middlebox: two hops, client-facing (A) and server-facing (B)
 * (tlmsp-handshake.md 4.5). Handshake messages are forwarded one per
 * record, verbatim except for those addressed to us; containers are checked
 * as far as our access allows and forwarded, modified or deleted
 * (tlmsp-records.md 7).
 */
#include "conn.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "tlmsp_mbox_msg.h"
#include "tlmsp_tls12.h"

static hop_t *other(msp_tlmsp_mbox_t *m, hop_t *h)
{
    return h == &m->a ? &m->b : &m->a;
}

/* Our transcript takes what T_m of 6.11 takes, in the order we pass it on. */
static int note(msp_tlmsp_mbox_t *m, const uint8_t *msg, size_t len)
{
    if (m->s.t == NULL || !msp_tlmsp_mbox_transcript_includes(msg[0], msg + 4, len - 4, m->s.self)) {
        return MSP_OK;
    }
    return sess_hash_add(m->s.t, msg, len);
}

static int pass(msp_tlmsp_mbox_t *m, hop_t *from, const uint8_t *msg, size_t len)
{
    MSP_GUARD(note(m, msg, len));
    return hop_write_msg(other(m, from), msg, len);
}

/* ---- ClientHello (3.6) ---- */

static int find_self(msp_tlmsp_mbox_t *m)
{
    const msp_tlmsp_address_t *a = &m->cfg.address;
    for (size_t i = 0; i < m->s.list->n; i++) {
        if (sess_same_address(&m->s.list->m[i].address, a)) {
            m->me = (int)i;
            m->s.self = m->s.list->m[i].id;
            return MSP_OK;
        }
    }
    return MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE; /* a list that does not name us was routed through us */
}

static int paths(msp_tlmsp_mbox_t *m)
{
    uint8_t pa[MSP_TLMSP_MAX_PATH], pb[MSP_TLMSP_MAX_PATH];
    size_t na = 0, nb = 0, n = m->s.list->n;
    for (int i = m->me - 1; i >= 0; i--) {
        pa[na++] = m->s.list->m[i].id;
    }
    pa[na++] = MSP_TLMSP_ID_CLIENT;
    for (size_t i = (size_t)m->me + 1; i < n; i++) {
        pb[nb++] = m->s.list->m[i].id;
    }
    pb[nb++] = MSP_TLMSP_ID_SERVER;
    MSP_GUARD(hop_seq_path(&m->a, pa, na));
    return hop_seq_path(&m->b, pb, nb);
}

static void choose_next(msp_tlmsp_mbox_t *m)
{
    m->next = m->s.server_address;
    for (size_t i = (size_t)m->me + 1; i < m->s.list->n; i++) {
        if (!m->s.list->m[i].transparent) {
            m->next = m->s.list->m[i].address;
            return;
        }
    }
}

static int adopt(msp_tlmsp_mbox_t *m, const msp_tls12_client_hello_t *ch)
{
    sess_t *s = &m->s;
    const msp_tls12_ext_t *x = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLMSP_EXT_TLMSP);
    const msp_tls12_ext_t *l = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLMSP_EXT_CONTEXT_LIST);
    const msp_tls12_ext_t *g = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLS12_EXT_SUPPORTED_GROUPS);
    const msp_tls12_ext_t *a = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLS12_EXT_SIGNATURE_ALGORITHMS);
    /* H 3.6: a TLMSP ClientHello (0xff06, 0xff07) with the groups our key share must come from (5.3) */
    MSP_ENSURE(x != NULL && l != NULL && g != NULL, MSP_ALERT_HANDSHAKE_FAILURE);
    msp_tlmsp_ext_client_t *e = calloc(1, sizeof(*e));
    const uint8_t *list, *algs = NULL;
    size_t list_len, algs_len = 0;
    int ret;
    MSP_ENSURE(e != NULL, MSP_ERR_NO_MEMORY);
    MSP_GUARD_GOTO(ret, msp_tlmsp_ext_client_parse(x->data, x->len, e), out);
    MSP_GUARD_GOTO(ret, msp_tls12_ext_u16_list(g, &list, &list_len), out);
    if (a != NULL) {
        MSP_GUARD_GOTO(ret, msp_tls12_ext_u16_list(a, &algs, &algs_len), out);
    }
    MSP_GUARD_GOTO(ret, msp_tls12_choose_sigalg(m->cfg.identity.key, algs, algs_len, &m->sigalg), out);
    /* after discovery the route is the discovered list (7.2) */
    ret = hs_adopt(s, e, e->discovery_ack ? &e->discovered : &e->middleboxes, l);
out:
    free(e);
    MSP_GUARD(ret);
    return find_self(m);
}

static int on_client_hello(msp_tlmsp_mbox_t *m, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    msp_tls12_client_hello_t *ch = calloc(1, sizeof(*ch));
    int ret;
    MSP_ENSURE(ch != NULL, MSP_ERR_NO_MEMORY);
    MSP_GUARD_GOTO(ret, msp_tls12_client_hello_parse(body, len, ch), out);
    MSP_GUARD_GOTO(ret, adopt(m, ch), out);
    memcpy(m->s.client_random, ch->random, 32);
    ret = sess_dup(&m->s.ch, &m->s.ch_len, msg, msg_len);
out:
    free(ch);
    MSP_GUARD(ret);
    MSP_GUARD(paths(m));
    choose_next(m);
    m->state_b = MB_SERVER_HELLO; /* the server side opens with the ClientHello on its way */
    /* Forwarded as received: with a canonical client it is what the reference rebuilds anyway (3.6). */
    ret = hop_write_msg(&m->b, msg, msg_len);
    m->b.alert_container = 1;
    return ret;
}

/* ---- from the server side before our own messages ---- */

static int server_hello(msp_tlmsp_mbox_t *m, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    sess_t *s = &m->s;
    msp_tls12_server_hello_t sh;
    MSP_GUARD(msp_tls12_server_hello_parse(body, len, &sh));
    const msp_tls12_ext_t *x = msp_tls12_find_ext(sh.ext, sh.next, MSP_TLMSP_EXT_TLMSP);
    /* H 4.5: "compression must be 0, parse 0xff06 (basic validation), 0xff07 -> decode_error"; we refuse both,
     * and any suite but the two of H 1.9, as handshake_failure */
    MSP_ENSURE(x != NULL && sh.compression == 0 &&
                   msp_tls12_find_ext(sh.ext, sh.next, MSP_TLMSP_EXT_CONTEXT_LIST) == NULL &&
                   (sh.cipher_suite == MSP_TLS12_ECDHE_RSA_AES128_GCM_SHA256 ||
                    sh.cipher_suite == MSP_TLS12_ECDHE_ECDSA_AES128_GCM_SHA256),
               MSP_ALERT_HANDSHAKE_FAILURE);
    msp_tlmsp_ext_server_t *e = calloc(1, sizeof(*e));
    MSP_ENSURE(e != NULL, MSP_ERR_NO_MEMORY);
    int ret = msp_tlmsp_ext_server_parse(x->data, x->len, e);
    /* A list the server changed (discovery, 7.2) only concerns the client, which will reconnect: passed on. */
    if (ret == MSP_OK) {
        s->sid = e->sid;
    }
    free(e);
    MSP_GUARD(ret);
    memcpy(s->server_random, sh.random, 32);
    MSP_GUARD(sess_dup(&s->sh, &s->sh_len, msg, msg_len));
    MSP_GUARD(sess_transcripts_start(s, 0));
    return hop_write_msg(&m->a, msg, msg_len);
}

static int on_server_hello(msp_tlmsp_mbox_t *m, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    int ret = server_hello(m, body, len, msg, msg_len);
    /* records 2.2/2.3: both hops carry the Sid from here on (an alert about this message too), and alerts are
     * containers */
    m->b.rx_sid = m->b.tx_sid = m->a.tx_sid = m->a.rx_sid = 1;
    m->a.alert_container = 1;
    return ret;
}

/* ---- our own four messages, in both directions (4.1) ---- */

static int write_both(msp_tlmsp_mbox_t *m, const uint8_t *p, size_t n)
{
    MSP_GUARD(note(m, p, n));
    MSP_GUARD(hop_write_msg(&m->a, p, n));
    return hop_write_msg(&m->b, p, n);
}

static int both(msp_tlmsp_mbox_t *m, msp_buf_t *msg)
{
    int ret = write_both(m, msg->base, msg->len);
    msg->len = 0;
    return ret;
}

static int kex_half(msp_tlmsp_mbox_t *m, EVP_PKEY **key, const msp_tlmsp_mbox_hello_t *hello, uint8_t *point,
                    uint8_t *sig, msp_tlmsp_kex_half_t *half)
{
    size_t point_len = 0, sig_len = 1024;
    MSP_GUARD(msp_tls12_ecdhe_keygen(m->s.group, key));
    MSP_GUARD(msp_tls12_ecdhe_public(*key, point, MAX_POINT, &point_len));
    *half = (msp_tlmsp_kex_half_t){NULL, 0, m->s.group, point, point_len, m->sigalg, NULL, 0};
    MSP_GUARD(msp_tlmsp_mbox_kex_sign(m->cfg.identity.key, m->sigalg, hello, half, sig, &sig_len));
    half->signature = sig;
    half->signature_len = sig_len;
    return MSP_OK;
}

static int own_kex(msp_tlmsp_mbox_t *m, const msp_tlmsp_mbox_hello_t *hello, msp_buf_t *msg)
{
    uint8_t pc[MAX_POINT], ps[MAX_POINT], sc[1024], ss[1024];
    msp_tlmsp_mbox_kex_t k = {hello->id, {0}, {0}};
    /* H 5.3: two key shares, to_client and to_server, each signed */
    MSP_GUARD(kex_half(m, &m->s.eph, hello, pc, sc, &k.to_client));
    MSP_GUARD(kex_half(m, &m->s.eph2, hello, ps, ss, &k.to_server));
    size_t mark;
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE, &mark);
    int ret = msp_tlmsp_mbox_kex_build(&k, msg);
    msp_tls12_hs_end(msg, mark);
    return ret;
}

static int own_cert(msp_tlmsp_mbox_t *m, msp_buf_t *msg)
{
    msp_tlmsp_mbox_cert_t c = {m->s.self, 0, {NULL}, {0}};
    const msp_tlmsp_identity_t *id = &m->cfg.identity;
    c.ncerts = id->ncerts < MSP_TLMSP_MAX_CERTS ? id->ncerts : MSP_TLMSP_MAX_CERTS;
    for (size_t i = 0; i < c.ncerts; i++) {
        c.der[i] = id->der[i];
        c.der_len[i] = id->der_len[i];
    }
    size_t mark;
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_MIDDLEBOX_CERT, &mark);
    int ret = msp_tlmsp_mbox_cert_build(&c, msg);
    msp_tls12_hs_end(msg, mark);
    mbox_peer_t *me = &m->s.mb[m->me];
    me->got = GOT_HELLO | GOT_CERT | GOT_KEX | GOT_DONE;
    MSP_GUARD(ret);
    return sess_dup(&me->cert, &me->cert_len, id->der[0], id->der_len[0]);
}

/* H 4.1, 4.5: MiddleboxHello, MiddleboxCert, MiddleboxKeyExchange, MiddleboxHelloDone, in both directions. */
static int own_four(msp_tlmsp_mbox_t *m, msp_buf_t *msg)
{
    sess_t *s = &m->s;
    msp_tlmsp_mbox_hello_t hello = {s->self, {0}, {0}};
    sess_random(s, hello.to_client_random, 32);
    sess_random(s, hello.to_server_random, 32);
    memcpy(s->mb_to_client[m->me], hello.to_client_random, 32);
    memcpy(s->mb_to_server[m->me], hello.to_server_random, 32);
    size_t mark;
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_MIDDLEBOX_HELLO, &mark);
    msp_tlmsp_mbox_hello_build(&hello, msg);
    msp_tls12_hs_end(msg, mark);
    MSP_GUARD(both(m, msg));
    MSP_GUARD(own_cert(m, msg));
    MSP_GUARD(both(m, msg));
    MSP_GUARD(own_kex(m, &hello, msg));
    MSP_GUARD(both(m, msg));
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE, &mark);
    msp_tlmsp_mbox_hello_done_build(s->self, msg);
    msp_tls12_hs_end(msg, mark);
    return both(m, msg);
}

static int send_own(msp_tlmsp_mbox_t *m)
{
    msp_buf_t msg;
    msp_buf_init(&msg, MAX_HS_MSG);
    int ret = own_four(m, &msg);
    msp_buf_free(&msg);
    m->sent = 1;
    return ret;
}

/* ---- key material (5.5, 5.6) ---- */

static int pairs(msp_tlmsp_mbox_t *m)
{
    sess_t *s = &m->s;
    uint8_t pms[MSP_TLMSP_MAX_PREMASTER];
    size_t pms_len = sizeof(pms);
    if (m->keyed) {
        return MSP_OK;
    }
    /* the KeyMaterial follows the ClientKeyExchange (H 4.2) */
    MSP_ENSURE(s->cke_point_len > 0, MSP_ALERT_UNEXPECTED_MESSAGE);
    int ret;
    MSP_GUARD_GOTO(ret, sess_idlist(s), out);
    /* H 6.4: with the client over our to_client key, with the server over our to_server key */
    MSP_GUARD_GOTO(ret, msp_tlmsp_premaster(s->eph, s->cke_point, s->cke_point_len, pms, &pms_len), out);
    MSP_GUARD_GOTO(
        ret, msp_tlmsp_master_secret(pms, pms_len, s->idlist, s->client_random, s->mb_to_client[m->me], s->master_c),
        out);
    MSP_GUARD_GOTO(ret, msp_tlmsp_key_block(s->master_c, s->client_random, s->mb_to_client[m->me], &s->kb_c), out);
    pms_len = sizeof(pms);
    MSP_GUARD_GOTO(ret, msp_tlmsp_premaster(s->eph2, s->ske_point, s->ske_point_len, pms, &pms_len), out);
    MSP_GUARD_GOTO(
        ret, msp_tlmsp_master_secret(pms, pms_len, s->idlist, s->server_random, s->mb_to_server[m->me], s->master_s),
        out);
    ret = msp_tlmsp_key_block(s->master_s, s->server_random, s->mb_to_server[m->me], &s->kb_s);
out:
    OPENSSL_cleanse(pms, sizeof(pms));
    m->keyed = ret == MSP_OK;
    return ret;
}

/* The KeyMaterial addressed to us: keep the contributions, confirm them toward the other endpoint (5.6). */
static int on_own_material(msp_tlmsp_mbox_t *m, hop_t *from, const uint8_t *body, size_t len)
{
    sess_t *s = &m->s;
    int from_client = from == &m->a;
    uint8_t src = from_client ? MSP_TLMSP_ID_CLIENT : MSP_TLMSP_ID_SERVER;
    uint8_t dst = from_client ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT;
    msp_tlmsp_contrib_t *c = from_client ? s->cc : s->sc;
    const uint8_t *key;
    uint8_t suffix[MSP_TLMSP_NONCE_SUFFIX_LEN];
    MSP_GUARD(pairs(m));
    MSP_GUARD(sess_pair_key(s, src, s->self, &key));
    MSP_GUARD(msp_tlmsp_key_material_open(&s->g, key, body, len, s->self, s->present, c));
    MSP_GUARD(sess_pair_key(s, s->self, dst, &key));
    sess_random(s, suffix, sizeof(suffix));
    msp_buf_t msg;
    msp_buf_init(&msg, MSP_TLMSP_KEYMAT_MAX_BODY + 4);
    size_t mark;
    msp_tls12_hs_begin(&msg, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, &mark);
    int ret = msp_tlmsp_key_material_seal(&s->g, key, s->self, s->self, suffix, c, s->list->m[m->me].access, &msg);
    msp_tls12_hs_end(&msg, mark);
    if (ret == MSP_OK) {
        ret = hop_write_msg(other(m, from), msg.base, msg.len);
    }
    msp_buf_free(&msg);
    return ret;
}

/* ---- Finished and MiddleboxFinished (6.11) ---- */

static int fork_transcripts(msp_tlmsp_mbox_t *m, const uint8_t *fin, size_t len)
{
    sess_t *s = &m->s;
    m->tc = EVP_MD_CTX_new();
    m->ts = EVP_MD_CTX_new();
    MSP_ENSURE(m->tc != NULL && m->ts != NULL && EVP_MD_CTX_copy_ex(m->tc, s->t) == 1 &&
                   EVP_MD_CTX_copy_ex(m->ts, s->t) == 1,
               MSP_ERR_NO_MEMORY);
    msp_buf_t l;
    uint8_t *scratch = sess_scratch(s, SCRATCH_LEN);
    MSP_ENSURE(scratch != NULL, MSP_ERR_NO_MEMORY);
    msp_buf_init_fixed(&l, scratch, SCRATCH_LEN);
    /* H 6.11: toward the server, Lcontrib(m) goes in before the client Finished */
    MSP_GUARD(msp_tlmsp_lcontrib(s->present, s->cc, s->sc, s->list->m[m->me].access, &l));
    MSP_GUARD(sess_hash_add(m->ts, l.base, l.len));
    MSP_GUARD(sess_hash_add(m->ts, fin, len));
    return sess_hash_add(m->tc, fin, len);
}

static int replace_finished(msp_tlmsp_mbox_t *m, hop_t *from, const uint8_t *body, size_t len)
{
    sess_t *s = &m->s;
    int from_client = from == &m->a;
    msp_tlmsp_mbox_finished_t f;
    uint8_t hin[32], hout[32];
    MSP_GUARD(msp_tlmsp_mbox_finished_parse(body, len, &f));
    /* H 6.11: "verify against the sending endpoint and replace it with its own MiddleboxFinished" */
    MSP_GUARD(sess_hash_peek(from_client ? m->tc : m->ts, NULL, 0, hin));
    MSP_GUARD(msp_tlmsp_finished_check(from_client ? MSP_TLMSP_FIN_CLIENT_TO_MBOX : MSP_TLMSP_FIN_SERVER_TO_MBOX,
                                       from_client ? s->master_c : s->master_s, hin, f.verify_data, 12));
    MSP_GUARD(sess_hash_peek(from_client ? m->ts : m->tc, NULL, 0, hout));
    MSP_GUARD(msp_tlmsp_finished(from_client ? MSP_TLMSP_FIN_MBOX_TO_SERVER : MSP_TLMSP_FIN_MBOX_TO_CLIENT,
                                 from_client ? s->master_s : s->master_c, hout, f.verify_data));
    uint8_t store[4 + 13];
    msp_buf_t msg;
    msp_buf_init_fixed(&msg, store, sizeof(store));
    size_t mark;
    msp_tls12_hs_begin(&msg, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, &mark);
    msp_tlmsp_mbox_finished_build(&f, &msg);
    msp_tls12_hs_end(&msg, mark);
    return hop_write_msg(other(m, from), msg.base, msg.len);
}

static int on_finished(msp_tlmsp_mbox_t *m, hop_t *from, const uint8_t *msg, size_t len)
{
    MSP_GUARD(from == &m->a ? fork_transcripts(m, msg, len) : sess_hash_add(m->tc, msg, len));
    return hop_write_msg(other(m, from), msg, len);
}

static int on_mbox_finished(msp_tlmsp_mbox_t *m, hop_t *from, const uint8_t *body, size_t len, const uint8_t *msg,
                            size_t msg_len)
{
    /* equivalent mutant: '==' -> '!=': each side still has a counter of its own; ready() wants both at n */
    size_t *seen = from == &m->a ? &m->fin_a : &m->fin_b;
    MSP_ENSURE(len >= 1 && *seen < m->s.list->n, MSP_ALERT_UNEXPECTED_MESSAGE);
    (*seen)++;
    return body[0] == m->s.self ? replace_finished(m, from, body, len) : hop_write_msg(other(m, from), msg, msg_len);
}

/* ---- the rows' handlers (H 4.5, its table of what a middlebox forwards and processes) ---- */

static msp_tlmsp_mbox_t *owner(hop_t *h)
{
    return h->owner;
}

/* ClientHello from C: adopt list and contexts, find self, forward it (H 3.6). */
static int mb_client_hello(hop_t *h, const hs_msg_t *m)
{
    return on_client_hello(owner(h), m->body, m->len, m->msg, m->msg_len);
}

/* ServerHello: verbatim, first; Sid and server_random kept (H 4.5). */
static int mb_server_hello(hop_t *h, const hs_msg_t *m)
{
    return on_server_hello(owner(h), m->body, m->len, m->msg, m->msg_len);
}

/* Certificate: kept for the IDList (6.3) and the ServerKeyExchange signature, then forwarded (H 4.5). */
static int mb_certificate(hop_t *h, const hs_msg_t *m)
{
    MSP_GUARD(hs_server_cert(&owner(h)->s, m->body, m->len));
    return pass(owner(h), h, m->msg, m->msg_len);
}

/* ServerKeyExchange: the server's signature verified, its key share kept (H 4.5). */
static int mb_server_kex(hop_t *h, const hs_msg_t *m)
{
    MSP_GUARD(hs_server_kex(&owner(h)->s, m->body, m->len));
    return pass(owner(h), h, m->msg, m->msg_len);
}

/*
 * ServerHelloDone (H 4.5): "if self is the last middlebox (mN), send own MiddleboxHello, MiddleboxCert,
 * MiddleboxKeyExchange, MiddleboxHelloDone in both directions". One with a body is refused as unexpected. A
 * repeated one is passed on: the client refuses it.
 */
static int mb_hello_done(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_mbox_t *mb = owner(h);
    MSP_ENSURE(m->len == 0, MSP_ALERT_UNEXPECTED_MESSAGE);
    MSP_GUARD(pass(mb, h, m->msg, m->msg_len));
    return (size_t)mb->me + 1 == mb->s.list->n && !mb->sent ? send_own(mb) : MSP_OK;
}

/*
 * Another middlebox's Hello, Cert, KeyExchange, HelloDone: kept (randoms, certificate, 5.1-5.4) and forwarded;
 * ours follow our successor's MiddleboxHelloDone toward the client (H 4.1, 4.5).
 */
static int mb_other_mbox(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_mbox_t *mb = owner(h);
    uint8_t index;
    MSP_GUARD(hs_mbox_msg(&mb->s, m->type, m->body, m->len, &index));
    int successor = h == &mb->b && m->type == MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE && index == mb->me + 1;
    MSP_GUARD(pass(mb, h, m->msg, m->msg_len));
    return successor && !mb->sent ? send_own(mb) : MSP_OK;
}

/* ClientKeyExchange: the client's key share kept (H 4.5), only once ours are out (the client answers them). */
static int mb_client_kex(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_mbox_t *mb = owner(h);
    const uint8_t *p;
    size_t n;
    MSP_ENSURE(mb->sent, MSP_ALERT_UNEXPECTED_MESSAGE);
    MSP_GUARD(msp_tls12_client_kex_parse(m->body, m->len, &p, &n));
    MSP_ENSURE(n <= MAX_POINT, MSP_ALERT_ILLEGAL_PARAMETER);
    memcpy(mb->s.cke_point, p, n);
    mb->s.cke_point_len = n;
    return pass(mb, h, m->msg, m->msg_len);
}

/* MiddleboxKeyMaterial (H 4.5, 5.5): "if addressed to self: decrypt, ... emit MiddleboxKeyConfirmation toward the
 * other endpoint; the KeyMaterial is not forwarded"; addressed to another id: verbatim. */
static int mb_key_material(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_mbox_t *mb = owner(h);
    if (m->len >= 1 && m->body[0] == mb->s.self) {
        return on_own_material(mb, h, m->body, m->len);
    }
    return pass(mb, h, m->msg, m->msg_len);
}

/* KeyConfirmation of another middlebox, CertificateRequest: "verbatim, not processed" (H 4.5). */
static int mb_pass(hop_t *h, const hs_msg_t *m)
{
    return pass(owner(h), h, m->msg, m->msg_len);
}

/* ChangeCipherSpec (H 4.5, 6.9): only once our pairs exist; passed on, which keys the other hop's direction. */
static int mb_ccs(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_mbox_t *mb = owner(h);
    (void)m;
    MSP_ENSURE(mb->keyed, MSP_ALERT_UNEXPECTED_MESSAGE);
    MSP_GUARD(sess_derive_context_keys(&mb->s));
    return hop_write_ccs(other(mb, h));
}

/* The client's Finished: re-protected toward the server; the transcripts fork here (6.11). */
static int mb_client_finished(hop_t *h, const hs_msg_t *m)
{
    return on_finished(owner(h), h, m->msg, m->msg_len);
}

/* The server's Finished: it answers the client's, so that one went through first. */
static int mb_server_finished(hop_t *h, const hs_msg_t *m)
{
    MSP_ENSURE(owner(h)->tc != NULL, MSP_ALERT_UNEXPECTED_MESSAGE);
    return on_finished(owner(h), h, m->msg, m->msg_len);
}

/* MiddleboxFinished (H 4.5, 6.11): ours verified and replaced, the others forwarded; one per middlebox. */
static int mb_mbox_finished(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_mbox_t *mb = owner(h);
    MSP_GUARD(on_mbox_finished(mb, h, m->body, m->len, m->msg, m->msg_len));
    if ((h == &mb->a ? mb->fin_a : mb->fin_b) == mb->s.list->n) {
        *(h == &mb->a ? &mb->state_a : &mb->state_b) = MB_DONE;
    }
    return MSP_OK;
}

static const char *const mb_state_names[] = {"IDLE",          "CLIENT_HELLO", "SERVER_HELLO", "CERTIFICATE",
                                             "SERVER_KEX",    "HELLO_DONE",   "RELAY",        "FINISHED",
                                             "MBOX_FINISHED", "DONE"};

#define HS MSP_TLMSP_CT_HANDSHAKE
#define CCS MSP_TLMSP_CT_CHANGE_CIPHER_SPEC
#define FWD "it, forwarded"
#define OWN_FOUR "it, forwarded; after our successor's HelloDone: our own four, both ways"
#define ROW(state, ct, type, next, fn, sends, ref)                                                                     \
    {                                                                                                                  \
        state, ct, type, next, next, fn, sends, ref                                                                    \
    }
#define RELAY_ROWS(state, next, dir)                                                                                   \
    ROW(state, HS, MSP_TLMSP_HT_MIDDLEBOX_HELLO, next, mb_other_mbox, FWD, "H 4.5, 5.1"),                              \
        ROW(state, HS, MSP_TLMSP_HT_MIDDLEBOX_CERT, next, mb_other_mbox, FWD, "H 4.5, 5.2"),                           \
        ROW(state, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE, next, mb_other_mbox, FWD, "H 4.5, 5.3"),                   \
        ROW(state, HS, MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE, next, mb_other_mbox, dir, "H 4.1, 4.5, 5.4")

/* Hop A, facing the client: what the client and the middleboxes on its side send. */
static const hs_row_t mbox_client_rows[] = {
    ROW(MB_CLIENT_HELLO, HS, MSP_TLMSP_HT_CLIENT_HELLO, MB_RELAY, mb_client_hello, "it, on to the next hop",
        "H 3.6, 4.5"),
    RELAY_ROWS(MB_RELAY, MB_RELAY, FWD),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE, MB_RELAY, mb_client_kex, FWD, "H 4.5"),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, MB_RELAY, mb_key_material,
        "ours: a KeyConfirmation toward S; another's: it, forwarded", "H 4.5, 5.5, 5.6"),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, MB_RELAY, mb_pass, FWD, "H 4.5"),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_CERTIFICATE_REQUEST, MB_RELAY, mb_pass, FWD, "H 4.5"),
    ROW(MB_RELAY, CCS, 1, MB_FINISHED, mb_ccs, "ChangeCipherSpec toward S", "H 4.5, 6.9"),
    ROW(MB_FINISHED, HS, MSP_TLMSP_HT_FINISHED, MB_MBOX_FINISHED, mb_client_finished, "it, re-protected",
        "H 4.5, 6.11"),
    {MB_MBOX_FINISHED, HS, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, MB_MBOX_FINISHED, MB_DONE, mb_mbox_finished,
     "ours: verified, our own toward S; another's: it, forwarded", "H 4.5, 6.11"},
};

/* Hop B, facing the server: the server's flight in order, then what the server and its side's middleboxes send. */
static const hs_row_t mbox_server_rows[] = {
    ROW(MB_SERVER_HELLO, HS, MSP_TLMSP_HT_SERVER_HELLO, MB_CERTIFICATE, mb_server_hello, FWD, "H 4.5, 3.4"),
    /* H 4.5: "anything else (CertificateRequest, ...) verbatim, not processed": the client judges where it is */
    ROW(MB_SERVER_HELLO, HS, MSP_TLMSP_HT_CERTIFICATE_REQUEST, MB_SERVER_HELLO, mb_pass, FWD, "H 4.5"),
    ROW(MB_CERTIFICATE, HS, MSP_TLMSP_HT_CERTIFICATE, MB_SERVER_KEX, mb_certificate, FWD, "H 4.5"),
    ROW(MB_CERTIFICATE, HS, MSP_TLMSP_HT_CERTIFICATE_REQUEST, MB_CERTIFICATE, mb_pass, FWD, "H 4.5"),
    ROW(MB_SERVER_KEX, HS, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE, MB_HELLO_DONE, mb_server_kex, FWD, "H 4.5"),
    ROW(MB_SERVER_KEX, HS, MSP_TLMSP_HT_CERTIFICATE_REQUEST, MB_SERVER_KEX, mb_pass, FWD, "H 4.5"),
    ROW(MB_HELLO_DONE, HS, MSP_TLMSP_HT_SERVER_HELLO_DONE, MB_RELAY, mb_hello_done,
        "it, forwarded; when we are mN: our own four, both ways", "H 4.1, 4.5"),
    ROW(MB_HELLO_DONE, HS, MSP_TLMSP_HT_CERTIFICATE_REQUEST, MB_HELLO_DONE, mb_pass, FWD, "H 4.1, 4.5"),
    /* a missing ServerHelloDone is the client's to notice (H 4.3 step 2): the middlebox messages are passed on */
    RELAY_ROWS(MB_HELLO_DONE, MB_RELAY, OWN_FOUR),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_SERVER_HELLO_DONE, MB_RELAY, mb_hello_done, FWD, "H 4.5"),
    RELAY_ROWS(MB_RELAY, MB_RELAY, OWN_FOUR),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, MB_RELAY, mb_key_material,
        "ours: a KeyConfirmation toward C; another's: it, forwarded", "H 4.5, 5.5, 5.6"),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, MB_RELAY, mb_pass, FWD, "H 4.5"),
    ROW(MB_RELAY, HS, MSP_TLMSP_HT_CERTIFICATE_REQUEST, MB_RELAY, mb_pass, FWD, "H 4.5"),
    ROW(MB_RELAY, CCS, 1, MB_FINISHED, mb_ccs, "ChangeCipherSpec toward C", "H 4.5, 6.9"),
    ROW(MB_FINISHED, HS, MSP_TLMSP_HT_FINISHED, MB_MBOX_FINISHED, mb_server_finished, "it, re-protected",
        "H 4.5, 6.11"),
    {MB_MBOX_FINISHED, HS, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, MB_MBOX_FINISHED, MB_DONE, mb_mbox_finished,
     "ours: verified, our own toward C; another's: it, forwarded", "H 4.5, 6.11"},
};

const hs_table_t mbox_client_table = {"middlebox, client-facing hop",
                                      "tlmsp-handshake.md 4.5",
                                      mbox_client_rows,
                                      sizeof(mbox_client_rows) / sizeof(mbox_client_rows[0]),
                                      mb_state_names,
                                      sizeof(mb_state_names) / sizeof(mb_state_names[0]),
                                      MB_CLIENT_HELLO,
                                      MB_DONE};
const hs_table_t mbox_server_table = {"middlebox, server-facing hop",
                                      "tlmsp-handshake.md 4.5",
                                      mbox_server_rows,
                                      sizeof(mbox_server_rows) / sizeof(mbox_server_rows[0]),
                                      mb_state_names,
                                      sizeof(mb_state_names) / sizeof(mb_state_names[0]),
                                      MB_SERVER_HELLO,
                                      MB_DONE};

static int mb_dispatch(hop_t *h, uint8_t ct, const hs_msg_t *msg)
{
    msp_tlmsp_mbox_t *m = h->owner;
    if (h == &m->a) {
        return hs_dispatch(&mbox_client_table, &m->state_a, h, ct, msg);
    }
    return hs_dispatch(&mbox_server_table, &m->state_b, h, ct, msg);
}

static int mbox_handshake(hop_t *h, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    hs_msg_t m = {type, body, len, msg, msg_len};
    return mb_dispatch(h, MSP_TLMSP_CT_HANDSHAKE, &m);
}

static int mbox_ccs(hop_t *h)
{
    hs_msg_t m = {1, NULL, 0, NULL, 0};
    return mb_dispatch(h, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, &m);
}

/* ---- containers, and those held (msp_tlmsp_mbox_release) ---- */

/* Whether v may be applied to a container of type in a context we have access to (7.2-7.4). */
static int verdict_ok(msp_tlmsp_verdict_t v, uint8_t type, uint8_t access)
{
    if (v == MSP_TLMSP_FORWARD) {
        return 1;
    }
    /* only writers change data, and alerts are never changed (7.4) */
    return (v == MSP_TLMSP_REPLACE || v == MSP_TLMSP_DELETE) && access == MSP_TLMSP_ACCESS_RW &&
           type == MSP_TLMSP_CT_APPLICATION_DATA;
}

/* Sends container c from hop `in` out of the other hop as v says; a closing alert closes both. */
static int emit(msp_tlmsp_mbox_t *m, hop_t *in, uint8_t type, const msp_tlmsp_container_t *c, msp_tlmsp_verdict_t v,
                const uint8_t *data, size_t data_len, uint8_t source, int closes)
{
    hop_t *out = other(m, in);
    int ret;
    if (v == MSP_TLMSP_REPLACE) {
        ret = data_replace(out, type, c, data, data_len);
    } else if (v == MSP_TLMSP_DELETE) {
        ret = data_delete(out, type, c, source);
    } else {
        ret = data_forward(out, type, c);
    }
    if (ret == MSP_OK && closes) {
        in->closed = out->closed = 1;
    }
    return ret;
}

static size_t held_size(const msp_tlmsp_container_t *c, size_t data_len)
{
    return (c->m_info != NULL ? c->m_info_len : 0) + c->fragment_len + (c->writer_mac != NULL ? 16 : 0) +
           c->nfmacs * MSP_TLMSP_FMAC_LEN + data_len;
}

/* Copies c (and a replacement) to the end of q; MSP_ERR_LIMIT past the bounds. */
static int hold(held_q_t *q, uint8_t type, const msp_tlmsp_container_t *c, msp_tlmsp_verdict_t v, const uint8_t *data,
                size_t data_len, uint8_t source, int closes)
{
    size_t size = held_size(c, v == MSP_TLMSP_REPLACE ? data_len : 0);
    if (q->n >= MSP_TLMSP_HOLD_MAX_CONTAINERS || size > MSP_TLMSP_HOLD_MAX_BYTES - q->bytes) {
        return MSP_ERR_LIMIT;
    }
    held_t *e = malloc(sizeof(*e) + size);
    MSP_ENSURE(e != NULL, MSP_ERR_NO_MEMORY);
    size_t m_info_len = c->m_info != NULL ? c->m_info_len : 0;
    *e = (held_t){.type = type,
                  .pending = v == MSP_TLMSP_HOLD,
                  .closes = (uint8_t)closes,
                  .source = source,
                  .v = v,
                  .context = c->context,
                  .flags = c->flags,
                  .has_m_info = c->m_info != NULL,
                  .has_writer_mac = c->writer_mac != NULL,
                  .m_info_len = m_info_len,
                  .fragment_len = c->fragment_len,
                  .nfmacs = c->nfmacs,
                  .data_len = v == MSP_TLMSP_REPLACE ? data_len : 0,
                  .size = size};
    uint8_t *p = e->bytes;
    if (m_info_len > 0) {
        memcpy(p, c->m_info, m_info_len);
        p += m_info_len;
    }
    memcpy(p, c->fragment, c->fragment_len);
    p += c->fragment_len;
    if (c->writer_mac != NULL) {
        memcpy(p, c->writer_mac, 16);
        p += 16;
    }
    for (size_t i = 0; i < c->nfmacs; i++, p += MSP_TLMSP_FMAC_LEN) {
        const msp_tlmsp_fmac_t *f = &c->fmacs[i];
        p[0] = f->id;
        p[1] = f->order;
        p[2] = f->flags;
        memcpy(p + 3, f->reader_check, 16);
        memcpy(p + 19, f->nonce, 12);
        memcpy(p + 31, f->check, 16);
    }
    if (e->data_len > 0) {
        memcpy(p, data, e->data_len);
    }
    *(q->tail != NULL ? &q->tail->next : &q->head) = e;
    q->tail = e;
    q->n++;
    q->pending += e->pending;
    q->bytes += size;
    return MSP_OK;
}

/* The container e holds, as views into e (c: the session's look-ahead, unused outside an input). */
static void held_view(const held_t *e, msp_tlmsp_container_t *c)
{
    const uint8_t *p = e->bytes;
    c->context = e->context;
    c->flags = e->flags;
    c->m_info = e->has_m_info ? p : NULL;
    c->m_info_len = e->m_info_len;
    p += e->m_info_len;
    c->fragment = p;
    c->fragment_len = e->fragment_len;
    p += e->fragment_len;
    c->writer_mac = e->has_writer_mac ? p : NULL;
    p += e->has_writer_mac ? 16 : 0;
    c->nfmacs = e->nfmacs;
    for (size_t i = 0; i < e->nfmacs; i++, p += MSP_TLMSP_FMAC_LEN) {
        c->fmacs[i] = (msp_tlmsp_fmac_t){p[0], p[1], p[2], p + 3, p + 19, p + 31};
    }
}

static held_t *held_pop(held_q_t *q)
{
    held_t *e = q->head;
    q->head = e->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    q->n--;
    q->pending -= e->pending;
    q->bytes -= e->size;
    return e;
}

static void held_clear(held_q_t *q)
{
    while (q->head != NULL) {
        held_t *e = held_pop(q);
        OPENSSL_clear_free(e, sizeof(*e) + e->size);
    }
}

static int mbox_container(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c, const uint8_t *plain,
                          size_t plain_len, uint8_t author)
{
    msp_tlmsp_mbox_t *m = h->owner;
    const uint8_t *data = NULL;
    size_t data_len = 0;
    uint8_t access = sess_access(&m->s, m->s.self, c->context);
    msp_tlmsp_verdict_t v = MSP_TLMSP_FORWARD;
    held_q_t *q = &m->held[h == &m->a];
    (void)author;
    if (h->rx_keyed && m->cfg.container != NULL) {
        m->in_callback = 1;
        v = m->cfg.container(m->cfg.user, h == &m->a, (msp_tlmsp_kind_t)type, c->context, access,
                             access != MSP_TLMSP_ACCESS_NONE ? plain : NULL, plain_len, &data, &data_len);
        m->in_callback = 0;
    }
    int closes = type == MSP_TLMSP_CT_ALERT && plain_len == 2 && access != MSP_TLMSP_ACCESS_NONE &&
                 (plain[0] == 2 || plain[1] == 0);
    uint8_t source = c->m_info != NULL ? c->m_info[0] : h->peer_ep;
    if (v == MSP_TLMSP_HOLD) {
        /* holding is for what the middlebox reads (the reference's read queue); a reader that may not write
         * still forwards it unchanged in the end, so for it HOLD only delays */
        if (type != MSP_TLMSP_CT_APPLICATION_DATA || access == MSP_TLMSP_ACCESS_NONE) {
            return MSP_ERR_ARGUMENT;
        }
        return hold(q, type, c, v, NULL, 0, source, 0);
    }
    if (!verdict_ok(v, type, access)) {
        return MSP_ERR_ARGUMENT;
    }
    if (v == MSP_TLMSP_REPLACE && data_len > MAX_CONTAINER_DATA) {
        return MSP_ERR_LIMIT;
    }
    if (q->head != NULL) {
        return hold(q, type, c, v, data, data_len, source, closes); /* nothing overtakes a held container */
    }
    return emit(m, h, type, c, v, data, data_len, source, closes);
}

/* Plain alerts are passed on before the hop dies (7.5). */
static int mbox_alert(hop_t *h, const uint8_t *p, size_t n)
{
    msp_tlmsp_mbox_t *m = h->owner;
    hop_t *out = other(m, h);
    if (out->out != NULL && !out->dead) {
        hop_write(out, MSP_TLMSP_CT_ALERT, p, n);
    }
    int ret = plain_alert(h, p, n);
    if (ret != MSP_OK) {
        out->dead = out->closed = 1;
    }
    return ret;
}

static const hop_ops_t mbox_ops = {mbox_handshake, mbox_ccs, mbox_container, mbox_alert};

/* ---- public API ---- */

/*
 * A middlebox is about 200 KB, nearly all of it the two hops' receive buffers and the session's scratch record,
 * which are always written before they are read: zeroing them (calloc) cost about 1% of a handshake. Everything
 * else starts zero; sess_init and hop_init zero their own parts again, up to those buffers.
 */
static msp_tlmsp_mbox_t *mbox_alloc(void)
{
    msp_tlmsp_mbox_t *m = malloc(sizeof(*m));
    if (m != NULL) {
        uint8_t *p = (uint8_t *)m;
        size_t held = offsetof(msp_tlmsp_mbox_t, held), a = offsetof(msp_tlmsp_mbox_t, a);
        size_t after = offsetof(msp_tlmsp_mbox_t, state_a);
        memset(p, 0, offsetof(msp_tlmsp_mbox_t, s) + offsetof(sess_t, scratch));
        memset(p + held, 0, a - held);
        memset(p + a, 0, offsetof(hop_t, rx));
        memset(p + offsetof(msp_tlmsp_mbox_t, b), 0, offsetof(hop_t, rx));
        memset(p + after, 0, sizeof(*m) - after);
    }
    return m;
}

int msp_tlmsp_mbox_new(const msp_tlmsp_mbox_cfg_t *cfg, msp_tlmsp_mbox_t **out)
{
    MSP_ENSURE(out != NULL, MSP_ERR_ARGUMENT);
    *out = NULL;
    MSP_ENSURE(cfg != NULL && cfg->random != NULL && cfg->identity.key != NULL && cfg->identity.ncerts != 0 &&
                   cfg->address.len != 0,
               MSP_ERR_ARGUMENT);
    msp_tlmsp_mbox_t *m = mbox_alloc();
    MSP_ENSURE(m != NULL, MSP_ERR_NO_MEMORY);
    m->cfg = *cfg;
    m->me = -1;
    m->state_a = MB_CLIENT_HELLO;
    m->state_b = MB_IDLE;
    int ret = sess_init(&m->s, MSP_TLMSP_ID_NONE, cfg->random, cfg->random_user);
    m->s.trust = cfg->trust;
    m->s.shared = cfg->shared;
    m->s.identity = cfg->identity;
    hop_init(&m->a, &m->s, &mbox_ops, m, DIR_S2C, MSP_TLMSP_ID_CLIENT);
    hop_init(&m->b, &m->s, &mbox_ops, m, DIR_C2S, MSP_TLMSP_ID_SERVER);
    m->a.other = &m->b;
    m->b.other = &m->a;
    if (ret != MSP_OK) {
        msp_tlmsp_mbox_free(m);
        return ret;
    }
    *out = m;
    return MSP_OK;
}

void msp_tlmsp_mbox_free(msp_tlmsp_mbox_t *m)
{
    if (m == NULL) {
        return;
    }
    hop_free(&m->a);
    hop_free(&m->b);
    held_clear(&m->held[0]);
    held_clear(&m->held[1]);
    EVP_MD_CTX_free(m->tc);
    EVP_MD_CTX_free(m->ts);
    sess_free(&m->s);
    OPENSSL_clear_free(m, sizeof(*m));
}

int msp_tlmsp_mbox_input(msp_tlmsp_mbox_t *m, int from_server, const uint8_t *in, size_t *inlen, msp_buf_t *to_client,
                         msp_buf_t *to_server)
{
    hop_t *h = from_server ? &m->b : &m->a;
    m->a.out = to_client;
    m->b.out = to_server;
    int ret = hop_input(h, in, inlen);
    if (ret != MSP_OK && !MSP_ERR_IS_PEER_ALERT(ret)) {
        hop_fail(other(m, h), ret); /* our own failure goes both ways */
    }
    m->a.out = m->b.out = NULL;
    if (msp_tlmsp_mbox_ready(m)) {
        sess_handshake_done(&m->s);
    }
    return ret;
}

const msp_tlmsp_address_t *msp_tlmsp_mbox_next_hop(const msp_tlmsp_mbox_t *m)
{
    return m->state_a != MB_CLIENT_HELLO ? &m->next : NULL;
}

int msp_tlmsp_mbox_ready(const msp_tlmsp_mbox_t *m)
{
    size_t n = m->s.list->n;
    return m->state_a != MB_CLIENT_HELLO && m->fin_a == n && m->fin_b == n && m->a.tx_keyed && m->b.tx_keyed &&
           !m->a.dead && !m->b.dead;
}

uint8_t msp_tlmsp_mbox_id(const msp_tlmsp_mbox_t *m)
{
    return m->s.self;
}

uint8_t msp_tlmsp_mbox_access(const msp_tlmsp_mbox_t *m, uint8_t ctx)
{
    return m->me < 0 ? MSP_TLMSP_ACCESS_NONE : sess_access(&m->s, m->s.self, ctx);
}

/* The first n verdicts can all be applied to the first n held containers of q. */
static int release_ok(msp_tlmsp_mbox_t *m, const held_q_t *q, size_t n, const msp_tlmsp_verdict_t *verdicts,
                      const uint8_t *const *data, const size_t *data_len)
{
    size_t k = 0;
    for (const held_t *e = q->head; e != NULL && k < n; e = e->next) {
        if (!e->pending) {
            continue;
        }
        msp_tlmsp_verdict_t v = verdicts[k];
        if (!verdict_ok(v, e->type, sess_access(&m->s, m->s.self, e->context)) ||
            (v == MSP_TLMSP_REPLACE && (data == NULL || data_len == NULL || data_len[k] > MAX_CONTAINER_DATA ||
                                        (data[k] == NULL && data_len[k] > 0)))) {
            return 0;
        }
        k++;
    }
    return k == n;
}

/* Sends from the head of q until a container still held; the k-th held one gets verdicts[k]. */
static int release_run(msp_tlmsp_mbox_t *m, hop_t *in, held_q_t *q, size_t n, const msp_tlmsp_verdict_t *verdicts,
                       const uint8_t *const *data, const size_t *data_len)
{
    size_t k = 0;
    int ret = MSP_OK;
    m->s.nrc = 0; /* the hashes computed ahead were for an input long gone */
    while (ret == MSP_OK && q->head != NULL && (!q->head->pending || k < n)) {
        held_t *e = held_pop(q);
        msp_tlmsp_verdict_t v = e->v;
        const uint8_t *p = e->bytes + e->size - e->data_len;
        size_t len = e->data_len;
        if (e->pending) {
            v = verdicts[k];
            p = v == MSP_TLMSP_REPLACE ? data[k] : NULL;
            len = v == MSP_TLMSP_REPLACE ? data_len[k] : 0;
            k++;
        }
        held_view(e, &m->s.pre);
        ret = emit(m, in, e->type, &m->s.pre, v, p, len, e->source, e->closes);
        OPENSSL_clear_free(e, sizeof(*e) + e->size);
    }
    return ret;
}

int msp_tlmsp_mbox_release(msp_tlmsp_mbox_t *m, int to_server, size_t n, const msp_tlmsp_verdict_t *verdicts,
                           const uint8_t *const *data, const size_t *data_len, msp_buf_t *out)
{
    held_q_t *q = &m->held[to_server != 0];
    hop_t *in = to_server ? &m->a : &m->b, *h = other(m, in);
    if (m->in_callback || n > q->pending || (n > 0 && verdicts == NULL) || h->dead || out == NULL ||
        !release_ok(m, q, n, verdicts, data, data_len)) {
        return MSP_ERR_ARGUMENT;
    }
    h->out = out;
    int ret = release_run(m, in, q, n, verdicts, data, data_len);
    if (ret != MSP_OK) {
        hop_fail(h, ret);
        in->dead = in->closed = 1;
    }
    h->out = NULL;
    return ret;
}

size_t msp_tlmsp_mbox_held(const msp_tlmsp_mbox_t *m, int to_server)
{
    return m->held[to_server != 0].pending;
}

int msp_tlmsp_mbox_send(msp_tlmsp_mbox_t *m, int to_server, uint8_t ctx, const uint8_t *p, size_t len, msp_buf_t *out)
{
    hop_t *h = to_server ? &m->b : &m->a;
    if (!msp_tlmsp_mbox_ready(m) || ctx == 0 || !m->s.ctx.present[ctx] ||
        sess_access(&m->s, m->s.self, ctx) != MSP_TLMSP_ACCESS_RW) {
        return MSP_ERR_ARGUMENT;
    }
    h->out = out;
    int ret = data_send_many(h, MSP_TLMSP_CT_APPLICATION_DATA, ctx, p, len);
    h->out = NULL;
    return ret;
}

int msp_tlmsp_mbox_alert(msp_tlmsp_mbox_t *m, int to_server, uint8_t ctx, uint8_t level, uint8_t desc, msp_buf_t *out)
{
    hop_t *h = to_server ? &m->b : &m->a;
    if (m->state_a == MB_CLIENT_HELLO || h->dead ||
        (ctx != 0 && (!m->s.ctx.present[ctx] || sess_access(&m->s, m->s.self, ctx) == MSP_TLMSP_ACCESS_NONE))) {
        return MSP_ERR_ARGUMENT; /* an alert goes in a context the sender can read (records 10.2) */
    }
    h->out = out;
    int ret = hop_alert(h, ctx, level, desc);
    h->out = NULL;
    if (level == 2 || desc == 0) {
        h->closed = 1;
    }
    return ret;
}
