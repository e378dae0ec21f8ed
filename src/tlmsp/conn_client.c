/* The client's handshake (tlmsp-handshake.md 3.1, 4.3). */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "msp/tlmsp_tls12.h"

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
    memcpy(&e->middleboxes, c->attempt2 ? c->initial : s->list, sizeof(*s->list));
    if (c->attempt2) {
        /* 7.2: the first list, the first Sid, the hash of the first attempt, and the list to use now */
        e->discovery_ack = 1;
        e->sid = s->sid;
        e->handshake_hash = c->dhash;
        e->handshake_hash_len = sizeof(c->dhash);
        memcpy(&e->discovered, s->list, sizeof(*s->list));
    }
    int ret = msp_tlmsp_ext_client_build(e, ff06);
    free(e);
    return ret == MSP_OK ? msp_tlmsp_context_list_build(&s->ctx, ff07) : ret;
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
    int ret = h != NULL ? tlmsp_exts(c, &ff06, &ff07) : MSP_ERR_NO_MEMORY;
    if (ret == MSP_OK) {
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
    }
    if (ret == MSP_OK) {
        ret = keep_hello(&s->ch, &s->ch_len, msg.base, msg.len);
    }
    if (ret == MSP_OK) {
        ret = hop_write_msg(&c->h, msg.base, msg.len);
    }
    free(h);
    msp_buf_free(&ff06);
    msp_buf_free(&ff07);
    msp_buf_free(&msg);
    c->state = EP_SERVER_HELLO;
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
    int ret = e != NULL ? msp_tlmsp_ext_server_parse(x->data, x->len, e) : MSP_ERR_NO_MEMORY;
    if (ret == MSP_OK &&
        (!sess_same_address(&e->client, &s->client_address) || !sess_same_address(&e->server, &s->server_address))) {
        ret = MSP_ALERT_DECODE_ERROR; /* 3.4 */
    }
    int changed = 0;
    if (ret == MSP_OK) {
        ret = compare_lists(s->list, &e->middleboxes, c->attempt2, &changed);
    }
    if (ret == MSP_OK && c->attempt2 && e->sid != s->sid) {
        ret = MSP_ALERT_DECODE_ERROR; /* the Sid of the first attempt is reused (3.4) */
    }
    if (ret == MSP_OK && changed) {
        /* keep the new list (its address bytes are in s->sh, kept for the connection's life) */
        c->reconnect = 1;
        c->discovered = malloc(sizeof(*c->discovered));
        ret = c->discovered != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
        if (ret == MSP_OK) {
            memcpy(c->discovered, &e->middleboxes, sizeof(*c->discovered));
        }
    }
    if (ret == MSP_OK) {
        s->sid = e->sid;
    }
    free(e);
    return ret;
}

static int on_server_hello(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    sess_t *s = &c->s;
    msp_tls12_server_hello_t sh;
    (void)body;
    /* parsed from our copy: a discovered list points into it (7.2) */
    int ret = keep_hello(&s->sh, &s->sh_len, msg, msg_len);
    if (ret == MSP_OK) {
        ret = msp_tls12_server_hello_parse(s->sh + 4, len, &sh);
    }
    if (ret == MSP_OK && sh.version != MSP_TLMSP_WIRE_VERSION) {
        ret = MSP_ALERT_PROTOCOL_VERSION;
    }
    if (ret == MSP_OK && ((sh.cipher_suite != MSP_TLS12_ECDHE_RSA_AES128_GCM_SHA256 &&
                           sh.cipher_suite != MSP_TLS12_ECDHE_ECDSA_AES128_GCM_SHA256) ||
                          sh.compression != 0)) {
        ret = MSP_ALERT_ILLEGAL_PARAMETER;
    }
    if (ret == MSP_OK) {
        ret = check_tlmsp_ext(c, &sh);
    }
    if (ret == MSP_OK) {
        memcpy(s->server_random, sh.random, 32);
        c->h.tx_sid = c->h.rx_sid = c->h.alert_container = 1; /* records 2.2, 2.3 */
    }
    if (ret == MSP_OK) {
        ret = sess_transcripts_start(s, 1);
    }
    return ret == MSP_OK ? path_to_server(c) : ret;
}

/* ClientKeyExchange, the secrets, the contributions and every KeyMaterial (4.3 step 4). */
static int key_exchange(msp_tlmsp_conn_t *c)
{
    sess_t *s = &c->s;
    uint8_t point[MAX_POINT];
    size_t point_len = 0;
    int ret = msp_tls12_ecdhe_keygen(s->group, &s->eph);
    if (ret == MSP_OK) {
        ret = msp_tls12_ecdhe_public(s->eph, point, sizeof(point), &point_len);
    }
    uint8_t store[4 + 1 + MAX_POINT];
    msp_buf_t msg;
    msp_buf_init_fixed(&msg, store, sizeof(store));
    size_t mark;
    msp_tls12_hs_begin(&msg, MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE, &mark);
    if (ret == MSP_OK) {
        ret = msp_tls12_client_kex_build(point, point_len, &msg);
    }
    msp_tls12_hs_end(&msg, mark);
    if (ret == MSP_OK) {
        ret = ep_send_msg(c, msg.base, msg.len);
    }
    if (ret == MSP_OK) {
        ret = hs_endpoint_masters(s);
    }
    if (ret == MSP_OK) {
        ret = ep_key_materials(c);
    }
    c->state = EP_KEY_MATERIAL;
    return ret;
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

static int expect(uint8_t type, uint8_t want)
{
    return type == want ? MSP_OK : MSP_ALERT_UNEXPECTED_MESSAGE;
}

int client_handshake(hop_t *h, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    msp_tlmsp_conn_t *c = h->owner;
    uint8_t index;
    int ret;
    switch (c->state) {
    case EP_SERVER_HELLO:
        ret = expect(type, MSP_TLMSP_HT_SERVER_HELLO);
        ret = ret == MSP_OK ? on_server_hello(c, body, len, msg, msg_len) : ret;
        c->state = EP_CERTIFICATE;
        return ret;
    case EP_CERTIFICATE:
        ret = expect(type, MSP_TLMSP_HT_CERTIFICATE);
        ret = ret == MSP_OK ? hs_server_cert(&c->s, body, len) : ret;
        c->state = EP_SERVER_KEX;
        return ret == MSP_OK ? ep_transcript(c, msg, msg_len) : ret;
    case EP_SERVER_KEX:
        ret = expect(type, MSP_TLMSP_HT_SERVER_KEY_EXCHANGE);
        ret = ret == MSP_OK ? hs_server_kex(&c->s, body, len) : ret;
        c->state = EP_HELLO_DONE;
        return ret == MSP_OK ? ep_transcript(c, msg, msg_len) : ret;
    case EP_HELLO_DONE:
        /* No CertificateRequest: we have no client certificate to give, and the reference never asks (8). */
        ret = expect(type, MSP_TLMSP_HT_SERVER_HELLO_DONE);
        ret = ret == MSP_OK && len != 0 ? MSP_ALERT_DECODE_ERROR : ret;
        ret = ret == MSP_OK ? ep_transcript(c, msg, msg_len) : ret;
        c->state = EP_MBOX_MSGS;
        if (ret == MSP_OK && c->reconnect) {
            return discovery_abort(c);
        }
        return ret == MSP_OK && c->s.list->n == 0 ? key_exchange(c) : ret;
    case EP_MBOX_MSGS:
        ret = ep_mbox_msg(c, type, body, len, msg, msg_len, &index);
        /* The MiddleboxHelloDone of m1 is the last (4.2). */
        if (ret == MSP_OK && type == MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE && index == 0) {
            ret = key_exchange(c);
        }
        return ret;
    case EP_KEY_MATERIAL:
        ret = ep_on_key_material(c, type, body, len, msg, msg_len);
        if (ret == MSP_OK && type == MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL) {
            ret = ep_send_finished(c);
            c->state = EP_CCS;
        }
        return ret;
    default:
        return MSP_ALERT_UNEXPECTED_MESSAGE;
    }
}

int msp_tlmsp_conn_reconnect(const msp_tlmsp_conn_t *old, const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out)
{
    *out = NULL;
    if (old->s.self != MSP_TLMSP_ID_CLIENT || !old->reconnect || old->discovered == NULL) {
        return MSP_ERR_ARGUMENT;
    }
    msp_tlmsp_conn_t *c;
    int ret = msp_tlmsp_conn_new(MSP_TLMSP_ID_CLIENT, cfg, &c);
    if (ret != MSP_OK) {
        return ret;
    }
    /* the first list keeps the ids the first attempt gave it; the route is the discovered list */
    ret = sess_list_dup(old->s.list, &c->initial, &c->initial_store);
    if (ret == MSP_OK) {
        ret = sess_set_list(&c->s, old->discovered);
    }
    if (ret != MSP_OK) {
        msp_tlmsp_conn_free(c);
        return ret;
    }
    c->attempt2 = 1;
    c->s.sid = old->s.sid;
    memcpy(c->dhash, old->dhash, sizeof(c->dhash));
    *out = c;
    return MSP_OK;
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
