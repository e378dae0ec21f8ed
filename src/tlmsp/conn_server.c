/* The server's handshake (tlmsp-handshake.md 3.2-3.4, 4.4). */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "tlmsp_tls12.h"

typedef struct offer {
    uint16_t suite;
    uint16_t sigalg;
    int secure_reneg, point_formats;
} offer_t;

/* The suite our key can serve, if the client offered it (1.9: ECDHE with AES-128-GCM). */
static int choose(sess_t *s, const msp_tls12_client_hello_t *ch, offer_t *o)
{
    int rsa = EVP_PKEY_get_base_id(s->identity.key) == EVP_PKEY_RSA;
    o->suite = rsa ? MSP_TLS12_ECDHE_RSA_AES128_GCM_SHA256 : MSP_TLS12_ECDHE_ECDSA_AES128_GCM_SHA256;
    if (!msp_tls12_u16_list_has(ch->cipher_suites, ch->cipher_suites_len, o->suite) ||
        memchr(ch->compression, 0, ch->compression_len) == NULL) {
        return MSP_ALERT_HANDSHAKE_FAILURE;
    }
    o->secure_reneg =
        msp_tls12_u16_list_has(ch->cipher_suites, ch->cipher_suites_len, MSP_TLS12_EMPTY_RENEGOTIATION_INFO_SCSV) ||
        msp_tls12_find_ext(ch->ext, ch->next, MSP_TLS12_EXT_RENEGOTIATION_INFO) != NULL;
    o->point_formats = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLS12_EXT_EC_POINT_FORMATS) != NULL;
    const msp_tls12_ext_t *g = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLS12_EXT_SUPPORTED_GROUPS);
    const msp_tls12_ext_t *a = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLS12_EXT_SIGNATURE_ALGORITHMS);
    const uint8_t *list = NULL, *algs = NULL;
    size_t list_len = 0, algs_len = 0;
    MSP_ENSURE(g != NULL, MSP_ALERT_HANDSHAKE_FAILURE);
    MSP_GUARD(msp_tls12_ext_u16_list(g, &list, &list_len));
    if (a != NULL) {
        MSP_GUARD(msp_tls12_ext_u16_list(a, &algs, &algs_len));
    }
    /* The client's preference decides the group, as the reference's middleboxes decide theirs (5.3). */
    s->group = 0;
    for (size_t i = 0; s->group == 0 && i + 1 < list_len; i += 2) {
        uint16_t v = (uint16_t)(list[i] << 8 | list[i + 1]);
        if (v == MSP_TLS12_GROUP_X25519 || v == MSP_TLS12_GROUP_P256) {
            s->group = v;
        }
    }
    /* H 1.9: X25519 or P-256, else handshake_failure (RFC 5246 7.4.1.3: no acceptable parameters) */
    MSP_ENSURE(s->group != 0, MSP_ALERT_HANDSHAKE_FAILURE);
    return msp_tls12_choose_sigalg(s->identity.key, algs, algs_len, &o->sigalg);
}

static int same_access(const msp_tlmsp_mbox_info_t *a, const msp_tlmsp_mbox_info_t *b)
{
    return memcmp(a->access + 1, b->access + 1, 255) == 0; /* context 0 is implicit */
}

/* A middlebox id in 0x02..0xfd that neither list uses (1.6). */
static uint8_t free_id(sess_t *s, const msp_tlmsp_mbox_list_t *a, const msp_tlmsp_mbox_list_t *b)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint8_t id;
        sess_random(s, &id, 1);
        int used = id < MSP_TLMSP_ID_FIRST_MIDDLEBOX || id > MSP_TLMSP_ID_LAST_MIDDLEBOX;
        for (size_t i = 0; !used && i < a->n; i++) {
            used = a->m[i].id == id;
        }
        for (size_t i = 0; !used && i < b->n; i++) {
            used = b->m[i].id == id;
        }
        if (!used) {
            return id;
        }
    }
    return 0;
}

/*
 * The demo server's rule (9.8, tlmsp-tools libtlmsp-cfg/openssl.c): the list must be the configured one, in order,
 * addresses and access equal; a configured middlebox marked discovered (inserted = 1 in the policy) that the list
 * does not have yet is inserted at its place with a fresh id and inserted = 1 (7.2); one marked forbidden
 * (inserted = 2) refuses the connection. NULL policy: any list.
 */
static int discover(sess_t *s, const msp_tlmsp_mbox_list_t *policy, const msp_tlmsp_mbox_list_t *got,
                    msp_tlmsp_mbox_list_t *out)
{
    if (policy == NULL) {
        memcpy(out, got, sizeof(*out));
        return MSP_OK;
    }
    size_t j = 0;
    out->n = 0;
    for (size_t i = 0; i < policy->n; i++) {
        const msp_tlmsp_mbox_info_t *p = &policy->m[i];
        msp_tlmsp_mbox_info_t *o = &out->m[out->n];
        if (p->inserted && !p->transparent && (j == got->n || !got->m[j].inserted)) {
            *o = *p;
            o->id = free_id(s, got, out);
        } else if (j < got->n && p->inserted == 2 && sess_same_address(&p->address, &got->m[j].address)) {
            /* a forbidden middlebox: the reference cannot mark it in the list (its TLMSP_middlebox_forbid() is a
             * stub, 7.4) and so refuses the connection; marked, the reference's parsers would refuse the list */
            return MSP_ALERT_MIDDLEBOX_AUTHORIZATION_FAILURE;
        } else if (j < got->n && sess_same_address(&p->address, &got->m[j].address) && same_access(p, &got->m[j])) {
            *o = got->m[j++];
        } else {
            return MSP_ALERT_MIDDLEBOX_AUTHORIZATION_FAILURE;
        }
        if (o->id == 0) {
            return MSP_ALERT_INTERNAL_ERROR;
        }
        out->n++;
    }
    return j == got->n ? MSP_OK : MSP_ALERT_MIDDLEBOX_AUTHORIZATION_FAILURE;
}

static int adopt_tlmsp(msp_tlmsp_conn_t *c, const msp_tls12_client_hello_t *ch)
{
    sess_t *s = &c->s;
    const msp_tls12_ext_t *x = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLMSP_EXT_TLMSP);
    const msp_tls12_ext_t *l = msp_tls12_find_ext(ch->ext, ch->next, MSP_TLMSP_EXT_CONTEXT_LIST);
    if (x == NULL || l == NULL) {
        return MSP_ALERT_HANDSHAKE_FAILURE; /* not a TLMSP client (7.6) */
    }
    msp_tlmsp_ext_client_t *e = calloc(1, sizeof(*e));
    msp_tlmsp_mbox_list_t *list = calloc(1, sizeof(*list));
    int ret;
    MSP_ENSURE_GOTO(ret, e != NULL && list != NULL, MSP_ERR_NO_MEMORY, out);
    MSP_GUARD_GOTO(ret, msp_tlmsp_ext_client_parse(x->data, x->len, e), out);
    /* After discovery the client names the discovered list (and the Sid it was given); the first list and the
     * handshake hash are only kept by the reference, never checked (7.2, 9.5): we do the same. */
    MSP_GUARD_GOTO(ret, discover(s, c->policy, e->discovery_ack ? &e->discovered : &e->middleboxes, list), out);
    MSP_GUARD_GOTO(ret, hs_adopt(s, e, list, l), out);
    if (e->discovery_ack) {
        s->sid = e->sid;
        c->attempt2 = 1;
    }
out:
    free(e);
    free(list);
    return ret;
}

static int server_hello_msg(msp_tlmsp_conn_t *c, const offer_t *o, msp_buf_t *msg)
{
    sess_t *s = &c->s;
    static const uint8_t empty_reneg[] = {0}, formats[] = {1, 0};
    msp_buf_t ff06;
    msp_buf_init(&ff06, 65535);
    msp_tlmsp_ext_server_t *e = calloc(1, sizeof(*e));
    msp_tls12_server_hello_t *h = calloc(1, sizeof(*h));
    int ret;
    MSP_ENSURE_GOTO(ret, e != NULL && h != NULL, MSP_ERR_NO_MEMORY, out);
    /* H 3.4: Sid, the addresses as the client sent them, the list as agreed */
    e->sid = s->sid;
    e->client = s->client_address;
    e->server = s->server_address;
    memcpy(&e->middleboxes, s->list, sess_list_size(s->list->n));
    MSP_GUARD_GOTO(ret, msp_tlmsp_ext_server_build(e, &ff06), out);
    h->version = MSP_TLMSP_WIRE_VERSION;
    memcpy(h->random, s->server_random, 32);
    h->cipher_suite = o->suite;
    if (o->secure_reneg) {
        h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLS12_EXT_RENEGOTIATION_INFO, empty_reneg, 1};
    }
    if (o->point_formats) {
        h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLS12_EXT_EC_POINT_FORMATS, formats, 2};
    }
    h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLMSP_EXT_TLMSP, ff06.base, ff06.len};
    size_t mark;
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_SERVER_HELLO, &mark);
    ret = msp_tls12_server_hello_build(h, msg);
    msp_tls12_hs_end(msg, mark);
out:
    free(e);
    free(h);
    msp_buf_free(&ff06);
    MSP_GUARD(ret);
    return msp_buf_error(msg);
}

static int certificate_msg(sess_t *s, msp_buf_t *msg)
{
    msp_tls12_certificate_t m;
    m.ncerts = s->identity.ncerts < MSP_TLS12_MAX_CERTS ? s->identity.ncerts : MSP_TLS12_MAX_CERTS;
    for (size_t i = 0; i < m.ncerts; i++) {
        m.der[i] = s->identity.der[i];
        m.der_len[i] = s->identity.der_len[i];
    }
    size_t mark;
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_CERTIFICATE, &mark);
    return hs_close(msg, mark, msp_tls12_certificate_build(&m, msg));
}

static int server_kex_msg(sess_t *s, uint16_t sigalg, msp_buf_t *msg)
{
    uint8_t point[MAX_POINT], params[4 + MAX_POINT], sig[1024];
    size_t point_len = 0, sig_len = sizeof(sig);
    msp_buf_t p;
    msp_buf_init_fixed(&p, params, sizeof(params));
    MSP_GUARD(msp_tls12_ecdhe_keygen(s->group, &s->eph));
    MSP_GUARD(msp_tls12_ecdhe_public(s->eph, point, sizeof(point), &point_len));
    MSP_GUARD(msp_tls12_ecdh_params(s->group, point, point_len, &p));
    MSP_GUARD(msp_tls12_server_kex_sign(s->identity.key, sigalg, s->client_random, s->server_random, p.base, p.len, sig,
                                        &sig_len));
    msp_tls12_server_kex_t k = {p.base, p.len, s->group, point, point_len, sigalg, sig, sig_len};
    size_t mark;
    msp_tls12_hs_begin(msg, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE, &mark);
    return hs_close(msg, mark, msp_tls12_server_kex_build(&k, msg));
}

static int send_server_hello(msp_tlmsp_conn_t *c, const offer_t *o, msp_buf_t *msg)
{
    MSP_GUARD(server_hello_msg(c, o, msg));
    MSP_GUARD(sess_dup(&c->s.sh, &c->s.sh_len, msg->base, msg->len));
    return hop_write_msg(&c->h, msg->base, msg->len);
}

/* ServerHello (no Sid on its record, 2.2), Certificate, ServerKeyExchange, ServerHelloDone (4.4 step 2). */
static int flight(msp_tlmsp_conn_t *c, const offer_t *o)
{
    sess_t *s = &c->s;
    msp_buf_t msg;
    msp_buf_init(&msg, MAX_HS_MSG);
    static const uint8_t done[4] = {MSP_TLMSP_HT_SERVER_HELLO_DONE, 0, 0, 0};
    int ret = send_server_hello(c, o, &msg);
    /* records 2.2: the ServerHello's record has no Sid, every later one (an alert about it too) has */
    c->h.tx_sid = c->h.rx_sid = 1;
    if (ret != MSP_OK) {
        goto out;
    }
    MSP_GUARD_GOTO(ret, sess_transcripts_start(s, 1), out);
    msg.len = 0;
    /* our own leaf ends the IDList (6.3) */
    MSP_GUARD_GOTO(ret, sess_dup(&s->server_cert, &s->server_cert_len, s->identity.der[0], s->identity.der_len[0]),
                   out);
    MSP_GUARD_GOTO(ret, certificate_msg(s, &msg), out);
    MSP_GUARD_GOTO(ret, ep_send_msg(c, msg.base, msg.len), out);
    msg.len = 0;
    MSP_GUARD_GOTO(ret, server_kex_msg(s, o->sigalg, &msg), out);
    MSP_GUARD_GOTO(ret, ep_send_msg(c, msg.base, msg.len), out);
    ret = ep_send_msg(c, done, sizeof(done));
out:
    msp_buf_free(&msg);
    return ret;
}

static int path_to_client(msp_tlmsp_conn_t *c)
{
    uint8_t path[MSP_TLMSP_MAX_PATH];
    size_t n = 0;
    for (size_t i = c->s.list->n; i > 0; i--) {
        path[n++] = c->s.list->m[i - 1].id;
    }
    path[n++] = MSP_TLMSP_ID_CLIENT;
    return hop_seq_path(&c->h, path, n);
}

/* ---- the rows' handlers ---- */

/* H 4.4 step 1, 2: the ClientHello (3.1-3.3), then our flight. */
static int on_client_hello(hop_t *hop, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = hop->owner;
    sess_t *s = &c->s;
    msp_tls12_client_hello_t *ch = calloc(1, sizeof(*ch));
    offer_t o;
    int ret;
    MSP_ENSURE(ch != NULL, MSP_ERR_NO_MEMORY);
    MSP_GUARD_GOTO(ret, msp_tls12_client_hello_parse(m->body, m->len, ch), out);
    /* H 1.1: TLMSP is wire version 0x0303; an older client cannot speak it */
    MSP_ENSURE_GOTO(ret, ch->version >= MSP_TLMSP_WIRE_VERSION, MSP_ALERT_PROTOCOL_VERSION, out);
    MSP_GUARD_GOTO(ret, adopt_tlmsp(c, ch), out);
    c->h.alert_container = 1; /* from here on alerts are containers (3.4) */
    MSP_GUARD_GOTO(ret, choose(s, ch, &o), out);
    memcpy(s->client_random, ch->random, 32);
    MSP_GUARD_GOTO(ret, sess_dup(&s->ch, &s->ch_len, m->msg, m->msg_len), out);
out:
    free(ch);
    MSP_GUARD(ret);
    MSP_GUARD(path_to_client(c));
    uint8_t sid[4];
    sess_random(s, sid, 4);
    if (!c->attempt2) {
        s->sid = (uint32_t)sid[0] << 24 | (uint32_t)sid[1] << 16 | (uint32_t)sid[2] << 8 | sid[3];
    }
    sess_random(s, s->server_random, 32);
    return flight(c, &o);
}

/* H 4.4 step 4: the ClientKeyExchange and the master secrets (6.4). */
static int on_client_kex(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    sess_t *s = &c->s;
    const uint8_t *point;
    size_t point_len = 0;
    MSP_GUARD(msp_tls12_client_kex_parse(m->body, m->len, &point, &point_len));
    MSP_ENSURE(point_len <= MAX_POINT, MSP_ALERT_ILLEGAL_PARAMETER);
    memcpy(s->cke_point, point, point_len);
    s->cke_point_len = point_len;
    MSP_GUARD(hs_endpoint_masters(s));
    return ep_transcript(c, m->msg, m->msg_len);
}

/* H 4.4 step 5, 6: the client's KeyMaterial (6.7 check), then ours to m1..mN and the client. */
static int on_key_material(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_GUARD(ep_on_peer_material(c, m));
    return ep_key_materials(c);
}

#define HS MSP_TLMSP_CT_HANDSHAKE
#define CCS MSP_TLMSP_CT_CHANGE_CIPHER_SPEC
#define OUR_FINISHED "once every MiddleboxFinished is in: ChangeCipherSpec, Finished, MiddleboxFinished(m1..mN)"
static const hs_row_t server_rows[] = {
    {EP_CLIENT_HELLO, HS, MSP_TLMSP_HT_CLIENT_HELLO, EP_MBOX_MSGS, EP_MBOX_MSGS, on_client_hello,
     "ServerHello, Certificate, ServerKeyExchange, ServerHelloDone", "H 4.4 step 1, 2, 3.2-3.4"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_HELLO, EP_MBOX_MSGS, EP_MBOX_MSGS, ep_on_mbox_msg, "",
     "H 4.4 step 3, 5.1"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_CERT, EP_MBOX_MSGS, EP_MBOX_MSGS, ep_on_mbox_msg, "",
     "H 4.4 step 3, 5.2"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE, EP_MBOX_MSGS, EP_MBOX_MSGS, ep_on_mbox_msg, "",
     "H 4.4 step 3, 5.3"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE, EP_MBOX_MSGS, EP_MBOX_MSGS, ep_on_mbox_msg, "",
     "H 4.4 step 3, 5.4"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE, EP_KEY_MATERIAL, EP_KEY_MATERIAL, on_client_kex, "",
     "H 4.4 step 4, 6.4"},
    {EP_KEY_MATERIAL, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, EP_KEY_MATERIAL, EP_KEY_MATERIAL, ep_on_confirmation,
     "", "H 4.4 step 5, 5.6"},
    {EP_KEY_MATERIAL, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, EP_CCS, EP_CCS, on_key_material,
     "MiddleboxKeyMaterial(->m1..mN, ->C)", "H 4.4 step 5, 6, 6.7"},
    {EP_CCS, CCS, 1, EP_FINISHED, EP_FINISHED, ep_on_ccs, "", "H 4.4 step 7, 6.9"},
    {EP_FINISHED, HS, MSP_TLMSP_HT_FINISHED, EP_MBOX_FINISHED, EP_READY, ep_on_finished, OUR_FINISHED,
     "H 4.4 step 7, 8, 6.10"},
    {EP_MBOX_FINISHED, HS, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, EP_MBOX_FINISHED, EP_READY, ep_on_mbox_finished,
     OUR_FINISHED, "H 4.4 step 7, 8, 6.11"},
};

const hs_table_t server_table = {
    "server",   "tlmsp-handshake.md 4.4", server_rows, sizeof(server_rows) / sizeof(server_rows[0]), ep_state_names,
    EP_NSTATES, EP_CLIENT_HELLO,          EP_READY};
