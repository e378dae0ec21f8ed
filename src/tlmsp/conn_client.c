/* The client's handshake (tlmsp-handshake.md 3.1, 4.3). */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "tlmsp_tls12.h"

/* What we offer: the suites the reference works with (1.9), both groups, and every sigalg we verify, SHA-1 included
 * because the reference's middleboxes sign with it (5.3). */
static const uint8_t suites[] = {0xc0, 0x2f, 0xc0, 0x2b, 0x00, 0xff};
static const uint8_t null_compression[] = {0};
static const uint8_t point_formats[] = {0x01, 0x00};
static const uint8_t groups[] = {0x00, 0x04, 0x00, 0x1d, 0x00, 0x17};
static const uint8_t sigalgs[] = {0x00, 0x16, 0x08, 0x04, 0x04, 0x03, 0x04, 0x01, 0x08, 0x05, 0x05, 0x03,
                                  0x05, 0x01, 0x08, 0x06, 0x06, 0x03, 0x06, 0x01, 0x02, 0x01, 0x02, 0x03};

static int tlmsp_exts(msp_tlmsp_conn_t *c, msp_buf_t *ff06, msp_buf_t *ff07)
{
    sess_t *s = &c->s;
    msp_tlmsp_ext_client_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    e->client = s->client_address;
    e->server = s->server_address;
    const msp_tlmsp_mbox_list_t *named = c->attempt2 ? c->initial : s->list;
    memcpy(&e->middleboxes, named, sess_list_size(named->n));
    if (c->attempt2) {
        /* 7.2: the first list, the first Sid, the hash of the first attempt, and the list to use now */
        e->discovery_ack = 1;
        e->sid = s->sid;
        e->handshake_hash = c->dhash;
        e->handshake_hash_len = sizeof(c->dhash);
        memcpy(&e->discovered, s->list, sess_list_size(s->list->n));
    }
    int ret = msp_tlmsp_ext_client_build(e, ff06);
    free(e);
    MSP_GUARD(ret);
    return msp_tlmsp_context_list_build(&s->ctx, ff07);
}

static int keep_hello(uint8_t **dst, size_t *dst_len, const uint8_t *msg, size_t len)
{
    return sess_dup(dst, dst_len, msg, len);
}

int client_hello(msp_tlmsp_conn_t *c)
{
    sess_t *s = &c->s;
    msp_buf_t ff06, ff07, msg;
    msp_buf_init(&ff06, 65535);
    msp_buf_init(&ff07, 65535);
    msp_buf_init(&msg, 3 * 65536);
    msp_tls12_client_hello_t *h = calloc(1, sizeof(*h));
    int ret;
    MSP_ENSURE_GOTO(ret, h != NULL, MSP_ERR_NO_MEMORY, out);
    MSP_GUARD_GOTO(ret, tlmsp_exts(c, &ff06, &ff07), out);
    sess_random(s, s->client_random, 32);
    h->version = MSP_TLMSP_WIRE_VERSION;
    memcpy(h->random, s->client_random, 32);
    h->cipher_suites = suites;
    h->cipher_suites_len = sizeof(suites);
    h->compression = null_compression;
    h->compression_len = 1;
    h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLS12_EXT_EC_POINT_FORMATS, point_formats, sizeof(point_formats)};
    h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLS12_EXT_SUPPORTED_GROUPS, groups, sizeof(groups)};
    h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLS12_EXT_SIGNATURE_ALGORITHMS, sigalgs, sizeof(sigalgs)};
    h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLMSP_EXT_TLMSP, ff06.base, ff06.len};
    h->ext[h->next++] = (msp_tls12_ext_t){MSP_TLMSP_EXT_CONTEXT_LIST, ff07.base, ff07.len};
    size_t mark;
    msp_tls12_hs_begin(&msg, MSP_TLMSP_HT_CLIENT_HELLO, &mark);
    ret = msp_tls12_client_hello_build(h, &msg);
    msp_tls12_hs_end(&msg, mark);
    if (ret == MSP_OK) {
        MSP_GUARD_GOTO(ret, keep_hello(&s->ch, &s->ch_len, msg.base, msg.len), out);
        ret = hop_write_msg(&c->h, msg.base, msg.len);
    }
out:
    free(h);
    msp_buf_free(&ff06);
    msp_buf_free(&ff07);
    msp_buf_free(&msg);
    return ret;
}

static int same_entry(const msp_tlmsp_mbox_info_t *a, const msp_tlmsp_mbox_info_t *b)
{
    return a->id == b->id && sess_same_address(&a->address, &b->address) && a->inserted == b->inserted &&
           a->transparent == b->transparent && memcmp(a->access, b->access, sizeof(a->access)) == 0;
}

static const msp_tlmsp_mbox_info_t *by_id(const msp_tlmsp_mbox_list_t *l, uint8_t id)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->m[i].id == id) {
            return &l->m[i];
        }
    }
    return NULL;
}

/*
 * 7.1: the ServerHello's list against ours. An entry in both must be identical (decode_error); a non-transparent
 * entry in only one of them changes the path, and one only the server has must be one it inserted. A changed path
 * means a second connection (7.2). After discovery the comparison is strict.
 */
static int compare_lists(const msp_tlmsp_mbox_list_t *ours, const msp_tlmsp_mbox_list_t *theirs, int strict,
                         int *changed)
{
    *changed = 0;
    if (strict) {
        for (size_t i = 0; i < ours->n && theirs->n == ours->n; i++) {
            if (!same_entry(&ours->m[i], &theirs->m[i])) {
                return MSP_ALERT_DECODE_ERROR;
            }
        }
        return theirs->n == ours->n ? MSP_OK : MSP_ALERT_DECODE_ERROR;
    }
    for (size_t i = 0; i < ours->n; i++) {
        const msp_tlmsp_mbox_info_t *t = by_id(theirs, ours->m[i].id);
        if (t != NULL && !same_entry(&ours->m[i], t)) {
            return MSP_ALERT_DECODE_ERROR;
        }
        *changed |= t == NULL && !ours->m[i].transparent;
    }
    for (size_t i = 0; i < theirs->n; i++) {
        const msp_tlmsp_mbox_info_t *t = &theirs->m[i];
        if (by_id(ours, t->id) == NULL && !t->inserted) {
            return MSP_ALERT_DECODE_ERROR; /* a static entry we never named */
        }
        *changed |= by_id(ours, t->id) == NULL && !t->transparent;
    }
    /* the same entries in another order is another path too */
    for (size_t i = 0; !*changed && i < ours->n && ours->n == theirs->n; i++) {
        *changed = ours->m[i].id != theirs->m[i].id;
    }
    return MSP_OK;
}

static int path_to_server(msp_tlmsp_conn_t *c)
{
    uint8_t path[MSP_TLMSP_MAX_PATH];
    size_t n = 0;
    for (size_t i = 0; i < c->s.list->n; i++) {
        path[n++] = c->s.list->m[i].id;
    }
    path[n++] = MSP_TLMSP_ID_SERVER;
    return hop_seq_path(&c->h, path, n);
}

static int check_tlmsp_ext(msp_tlmsp_conn_t *c, const msp_tls12_server_hello_t *sh)
{
    sess_t *s = &c->s;
    const msp_tls12_ext_t *x = msp_tls12_find_ext(sh->ext, sh->next, MSP_TLMSP_EXT_TLMSP);
    if (x == NULL || msp_tls12_find_ext(sh->ext, sh->next, MSP_TLMSP_EXT_CONTEXT_LIST) != NULL) {
        return MSP_ALERT_HANDSHAKE_FAILURE; /* no silent fallback to TLS 1.2 (unlike 7.6) */
    }
    msp_tlmsp_ext_server_t *e = calloc(1, sizeof(*e));
    int ret, changed = 0;
    MSP_ENSURE(e != NULL, MSP_ERR_NO_MEMORY);
    MSP_GUARD_GOTO(ret, msp_tlmsp_ext_server_parse(x->data, x->len, e), out);
    /* H 3.4: the addresses come back as the client sent them */
    MSP_ENSURE_GOTO(
        ret, sess_same_address(&e->client, &s->client_address) && sess_same_address(&e->server, &s->server_address),
        MSP_ALERT_DECODE_ERROR, out);
    MSP_GUARD_GOTO(ret, compare_lists(s->list, &e->middleboxes, c->attempt2, &changed), out);
    /* H 7.2: the second attempt reuses the Sid of the first */
    MSP_ENSURE_GOTO(ret, !c->attempt2 || e->sid == s->sid, MSP_ALERT_DECODE_ERROR, out);
    if (changed) {
        /* keep the new list (its address bytes are in s->sh, kept for the connection's life) */
        c->reconnect = 1;
        c->discovered = malloc(sizeof(*c->discovered));
        MSP_ENSURE_GOTO(ret, c->discovered != NULL, MSP_ERR_NO_MEMORY, out);
        memcpy(c->discovered, &e->middleboxes, sizeof(*c->discovered));
    }
    s->sid = e->sid;
out:
    free(e);
    return ret;
}

/* ---- the rows' handlers ---- */

/* H 4.3 step 1: the ClientHello (3.1). */
static int on_start(hop_t *h, const hs_msg_t *m)
{
    (void)m;
    return client_hello(h->owner);
}

/* H 4.3 step 2: the ServerHello, its 0xff06 (3.4) and the list comparison (7.1). */
static int on_server_hello(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    sess_t *s = &c->s;
    msp_tls12_server_hello_t sh;
    /* parsed from our copy: a discovered list points into it (7.2) */
    MSP_GUARD(keep_hello(&s->sh, &s->sh_len, m->msg, m->msg_len));
    MSP_GUARD(msp_tls12_server_hello_parse(s->sh + 4, m->len, &sh));
    /* H 1.1: "TLMSP ... wire version 0x0303" */
    MSP_ENSURE(sh.version == MSP_TLMSP_WIRE_VERSION, MSP_ALERT_PROTOCOL_VERSION);
    /* H 1.9: one of the suites we offered, no compression */
    MSP_ENSURE((sh.cipher_suite == MSP_TLS12_ECDHE_RSA_AES128_GCM_SHA256 ||
                sh.cipher_suite == MSP_TLS12_ECDHE_ECDSA_AES128_GCM_SHA256) &&
                   sh.compression == 0,
               MSP_ALERT_ILLEGAL_PARAMETER);
    MSP_GUARD(check_tlmsp_ext(c, &sh));
    memcpy(s->server_random, sh.random, 32);
    c->h.tx_sid = c->h.rx_sid = c->h.alert_container = 1; /* records 2.2, 2.3 */
    MSP_GUARD(sess_transcripts_start(s, 1));
    return path_to_server(c);
}

/* H 4.3 step 2: the server's Certificate (its leaf ends the IDList, 6.3). */
static int on_certificate(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_GUARD(hs_server_cert(&c->s, m->body, m->len));
    return ep_transcript(c, m->msg, m->msg_len);
}

/* H 4.3 step 2: the ServerKeyExchange, signed by the server (RFC 5246 7.4.3). */
static int on_server_kex(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_GUARD(hs_server_kex(&c->s, m->body, m->len));
    return ep_transcript(c, m->msg, m->msg_len);
}

/* ClientKeyExchange, the secrets, the contributions and every KeyMaterial (4.3 step 4). */
static int key_exchange(msp_tlmsp_conn_t *c)
{
    sess_t *s = &c->s;
    uint8_t point[MAX_POINT];
    size_t point_len = 0;
    c->state = EP_KEY_MATERIAL;
    MSP_GUARD(msp_tls12_ecdhe_keygen(s->group, &s->eph));
    MSP_GUARD(msp_tls12_ecdhe_public(s->eph, point, sizeof(point), &point_len));
    uint8_t store[4 + 1 + MAX_POINT];
    msp_buf_t msg;
    msp_buf_init_fixed(&msg, store, sizeof(store));
    size_t mark;
    msp_tls12_hs_begin(&msg, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE, &mark);
    MSP_GUARD(hs_close(&msg, mark, msp_tls12_client_kex_build(point, point_len, &msg)));
    MSP_GUARD(ep_send_msg(c, msg.base, msg.len));
    MSP_GUARD(hs_endpoint_masters(s));
    return ep_key_materials(c);
}

/*
 * 7.2, as the reference does it: after the ServerHelloDone, a fatal close_notify (an unprotected alert container by
 * now), and the hash of ClientHello..ServerHelloDone for the second ClientHello; the caller reconnects.
 */
static int discovery_abort(msp_tlmsp_conn_t *c)
{
    int ret = sess_hash_peek(c->s.t, NULL, 0, c->dhash);
    if (ret == MSP_OK) {
        ret = hop_alert(&c->h, 0, 2, 0);
    }
    c->h.dead = c->h.closed = 1;
    return ret == MSP_OK ? MSP_ERR_RECONNECT : ret;
}

/*
 * H 4.3 step 2: the ServerHelloDone ends the server's flight (empty: RFC 5246 7.4.5, else decode_error). No
 * CertificateRequest: we have no client certificate to give, and the reference never asks (8). Then discovery
 * (7.2), or, without middleboxes, our key exchange (step 4).
 */
static int on_hello_done(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_ENSURE(m->len == 0, MSP_ALERT_DECODE_ERROR);
    MSP_GUARD(ep_transcript(c, m->msg, m->msg_len));
    if (c->reconnect) {
        return discovery_abort(c);
    }
    return c->s.list->n == 0 ? key_exchange(c) : MSP_OK;
}

/* H 4.3 step 3: "stop after the MiddleboxHelloDone whose id is the first middlebox of the list (m1)" (4.2). */
static int on_mbox_done(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    uint8_t index;
    MSP_GUARD(ep_mbox_msg(c, m, &index));
    return index == 0 ? key_exchange(c) : MSP_OK;
}

/* H 4.3 step 5, 6: the server's KeyMaterial (6.7 check), then ChangeCipherSpec, Finished, MiddleboxFinished. */
static int on_key_material(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_GUARD(ep_on_peer_material(c, m));
    return ep_send_finished(c);
}

#define HS MSP_TLMSP_CT_HANDSHAKE
#define CCS MSP_TLMSP_CT_CHANGE_CIPHER_SPEC
static const hs_row_t client_rows[] = {
    {EP_START, HS_CT_START, 0, EP_SERVER_HELLO, EP_SERVER_HELLO, on_start, "ClientHello", "H 4.3 step 1, 3.1"},
    {EP_SERVER_HELLO, HS, MSP_TLMSP_HT_SERVER_HELLO, EP_CERTIFICATE, EP_CERTIFICATE, on_server_hello, "",
     "H 4.3 step 2, 3.4, 7.1"},
    {EP_CERTIFICATE, HS, MSP_TLMSP_HT_CERTIFICATE, EP_SERVER_KEX, EP_SERVER_KEX, on_certificate, "", "H 4.3 step 2"},
    {EP_SERVER_KEX, HS, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE, EP_HELLO_DONE, EP_HELLO_DONE, on_server_kex, "",
     "H 4.3 step 2"},
    {EP_HELLO_DONE, HS, MSP_TLMSP_HT_SERVER_HELLO_DONE, EP_MBOX_MSGS, EP_KEY_MATERIAL, on_hello_done,
     "no middleboxes: ClientKeyExchange, MiddleboxKeyMaterial(->S); discovery: fatal close_notify (7.2)",
     "H 4.3 step 2, 4"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_HELLO, EP_MBOX_MSGS, EP_MBOX_MSGS, ep_on_mbox_msg, "",
     "H 4.3 step 3, 5.1"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_CERT, EP_MBOX_MSGS, EP_MBOX_MSGS, ep_on_mbox_msg, "",
     "H 4.3 step 3, 5.2"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE, EP_MBOX_MSGS, EP_MBOX_MSGS, ep_on_mbox_msg, "",
     "H 4.3 step 3, 5.3"},
    {EP_MBOX_MSGS, HS, MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE, EP_MBOX_MSGS, EP_KEY_MATERIAL, on_mbox_done,
     "after m1's: ClientKeyExchange, MiddleboxKeyMaterial(->m1..mN, ->S)", "H 4.3 step 3, 4"},
    {EP_KEY_MATERIAL, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION, EP_KEY_MATERIAL, EP_KEY_MATERIAL, ep_on_confirmation,
     "", "H 4.3 step 5, 5.6"},
    {EP_KEY_MATERIAL, HS, MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL, EP_CCS, EP_CCS, on_key_material,
     "ChangeCipherSpec, Finished, MiddleboxFinished(m1..mN)", "H 4.3 step 5, 6, 6.7"},
    {EP_CCS, CCS, 1, EP_FINISHED, EP_FINISHED, ep_on_ccs, "", "H 4.3 step 7, 6.9"},
    {EP_FINISHED, HS, MSP_TLMSP_HT_FINISHED, EP_MBOX_FINISHED, EP_READY, ep_on_finished, "", "H 4.3 step 7, 6.10"},
    {EP_MBOX_FINISHED, HS, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, EP_MBOX_FINISHED, EP_READY, ep_on_mbox_finished, "",
     "H 4.3 step 7, 6.11"},
};

const hs_table_t client_table = {"client",       "tlmsp-handshake.md 4.3",
                                 client_rows,    sizeof(client_rows) / sizeof(client_rows[0]),
                                 ep_state_names, EP_NSTATES,
                                 EP_START,       EP_READY};

int msp_tlmsp_conn_reconnect(const msp_tlmsp_conn_t *old, const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out)
{
    MSP_ENSURE(out != NULL, MSP_ERR_ARGUMENT);
    *out = NULL;
    /* H 7.2: only a client whose first ServerHello changed the path reconnects */
    MSP_ENSURE(old != NULL && old->s.self == MSP_TLMSP_ID_CLIENT && old->reconnect && old->discovered != NULL,
               MSP_ERR_ARGUMENT);
    msp_tlmsp_conn_t *c;
    MSP_GUARD(msp_tlmsp_client_new(cfg, &c));
    int ret;
    /* the first list keeps the ids the first attempt gave it; the route is the discovered list */
    MSP_GUARD_GOTO(ret, sess_list_dup(old->s.list, &c->initial, &c->initial_store), fail);
    MSP_GUARD_GOTO(ret, sess_set_list(&c->s, old->discovered), fail);
    c->attempt2 = 1;
    c->s.sid = old->s.sid;
    memcpy(c->dhash, old->dhash, sizeof(c->dhash));
    *out = c;
    return MSP_OK;
fail:
    msp_tlmsp_conn_free(c);
    return ret;
}

const msp_tlmsp_address_t *msp_tlmsp_conn_first_hop(const msp_tlmsp_conn_t *c)
{
    for (size_t i = 0; i < c->s.list->n; i++) {
        if (!c->s.list->m[i].transparent) {
            return &c->s.list->m[i].address;
        }
    }
    return &c->s.server_address;
}
