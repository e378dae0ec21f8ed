/*
 * What client and server share (tlmsp-handshake.md 4.3, 4.4): the
 * transcripts, the middlebox messages, KeyMaterial / KeyConfirmation with
 * the 6.7 check, ChangeCipherSpec, Finished and MiddleboxFinished, and the
 * public endpoint API.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "msp/tlmsp_mbox_msg.h"
#include "msp/tlmsp_tls12.h"

/* Every message sent or received after the ServerHello, into the transcripts it belongs to (6.10, 6.11). */
int ep_transcript(msp_tlmsp_conn_t *c, const uint8_t *msg, size_t len)
{
    sess_t *s = &c->s;
    int ret = MSP_OK;
    if (msp_tlmsp_endpoint_transcript_includes(msg[0], msg + 4, len - 4)) {
        ret = sess_hash_add(s->t, msg, len);
    }
    for (size_t i = 0; ret == MSP_OK && i < s->list->n; i++) {
        if (msp_tlmsp_mbox_transcript_includes(msg[0], msg + 4, len - 4, s->list->m[i].id)) {
            ret = sess_hash_add(s->mb[i].t, msg, len);
        }
    }
    return ret;
}

int ep_send_msg(msp_tlmsp_conn_t *c, const uint8_t *msg, size_t len)
{
    int ret = ep_transcript(c, msg, len);
    return ret == MSP_OK ? hop_write_msg(&c->h, msg, len) : ret;
}

int ep_mbox_msg(msp_tlmsp_conn_t *c, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len,
                uint8_t *index)
{
    int ret = hs_mbox_msg(&c->s, type, body, len, index);
    return ret == MSP_OK ? ep_transcript(c, msg, msg_len) : ret;
}

/* Contributions (6.6) and KeyMaterial to m1..mN, then to the other endpoint (4.3 step 4, 4.4 step 6). */
int ep_key_materials(msp_tlmsp_conn_t *c)
{
    sess_t *s = &c->s;
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    size_t nctx = 1;
    for (int i = 1; i < 256; i++) {
        nctx += s->ctx.present[i] != 0;
    }
    uint8_t *rnd = s->scratch; /* 16 + 32 per context: at most 8208 bytes */
    sess_random(s, rnd, 16 + 32 * nctx);
    int ret = msp_tlmsp_contrib_generate(client ? s->cc : s->sc, s->present, rnd, 16 + 32 * nctx);
    OPENSSL_cleanse(rnd, 16 + 32 * nctx);
    msp_buf_t msg;
    msp_buf_init(&msg, MSP_TLMSP_KEYMAT_MAX_BODY + 4);
    for (size_t i = 0; ret == MSP_OK && i <= s->list->n; i++) {
        uint8_t target = i < s->list->n ? s->list->m[i].id : (client ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT);
        msg.len = 0;
        ret = hs_key_material(s, target, &msg);
        if (ret == MSP_OK) {
            ret = ep_send_msg(c, msg.base, msg.len);
        }
    }
    msp_buf_free(&msg);
    return ret;
}

/* A KeyConfirmation from a middlebox (5.6), kept for the 6.7 check. */
static int on_confirmation(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len)
{
    sess_t *s = &c->s;
    uint8_t id;
    const uint8_t *key;
    int ret = msp_tlmsp_key_material_id(body, len, &id);
    int i = ret == MSP_OK ? sess_mbox_index(s, id) : -1;
    if (ret == MSP_OK && (i < 0 || s->mb[i].confirm != NULL)) {
        ret = MSP_ALERT_ILLEGAL_PARAMETER;
    }
    if (ret == MSP_OK) {
        ret = sess_pair_key(s, id, s->self, &key);
    }
    if (ret == MSP_OK) {
        s->mb[i].confirm = calloc(1, sizeof(*s->mb[i].confirm));
        ret = s->mb[i].confirm != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
    }
    if (ret == MSP_OK) {
        ret = msp_tlmsp_key_material_open(&s->g, key, body, len, id, s->present, s->mb[i].confirm);
    }
    return ret;
}

/* The other endpoint's KeyMaterial, then the 6.7 check against every confirmation. */
static int on_peer_material(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len)
{
    sess_t *s = &c->s;
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    uint8_t peer = client ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT;
    msp_tlmsp_contrib_t *pc = client ? s->sc : s->cc;
    const uint8_t *key;
    int ret = sess_pair_key(s, peer, s->self, &key);
    if (ret == MSP_OK) {
        ret = msp_tlmsp_key_material_open(&s->g, key, body, len, s->self, s->present, pc);
    }
    if (ret != MSP_OK || s->list->n == 0) {
        return ret;
    }
    const msp_tlmsp_contrib_t **confirm = calloc(s->list->n, sizeof(*confirm));
    uint8_t(*access)[256] = calloc(s->list->n, 256);
    ret = confirm != NULL && access != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
    for (size_t i = 0; ret == MSP_OK && i < s->list->n; i++) {
        confirm[i] = s->mb[i].confirm;
        memcpy(access[i], s->list->m[i].access, 256);
    }
    if (ret == MSP_OK) {
        ret = msp_tlmsp_key_confirmation_check(s->present, pc, confirm, (const uint8_t(*)[256])access, s->list->n);
    }
    free(confirm);
    free(access);
    return ret;
}

/* KeyConfirmations (one per middlebox, any order) then the other endpoint's KeyMaterial (4.3 step 5, 4.4 step 5). */
int ep_on_key_material(msp_tlmsp_conn_t *c, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg,
                       size_t msg_len)
{
    int ret = MSP_ALERT_UNEXPECTED_MESSAGE;
    if (type == MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION && c->confirmations < c->s.list->n) {
        ret = on_confirmation(c, body, len);
        c->confirmations++;
    } else if (type == MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL) {
        ret = on_peer_material(c, body, len);
    }
    if (ret == MSP_OK) {
        ret = ep_transcript(c, msg, msg_len);
    }
    return ret;
}

static void fin_msg(uint8_t out[16], const uint8_t verify[12])
{
    out[0] = MSP_TLMSP_HT_FINISHED;
    out[1] = out[2] = 0;
    out[3] = 12;
    memcpy(out + 4, verify, 12);
}

static int mbox_fin(sess_t *s, size_t i, msp_tlmsp_finished_kind_t kind, msp_buf_t *out)
{
    uint8_t h[32];
    msp_tlmsp_mbox_finished_t f = {s->list->m[i].id, {0}};
    int ret = sess_hash_peek(s->mb[i].t, NULL, 0, h);
    if (ret == MSP_OK) {
        ret = msp_tlmsp_finished(kind, s->mb[i].master, h, f.verify_data);
    }
    size_t mark;
    msp_tls12_hs_begin(out, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, &mark);
    msp_tlmsp_mbox_finished_build(&f, out);
    msp_tls12_hs_end(out, mark);
    return ret != MSP_OK ? ret : msp_buf_error(out);
}

/* Lcontrib(m) into T_m just before the client Finished (server side, 6.11). */
static int add_lcontrib(sess_t *s)
{
    int ret = MSP_OK;
    for (size_t i = 0; ret == MSP_OK && i < s->list->n; i++) {
        msp_buf_t l;
        msp_buf_init_fixed(&l, s->scratch, sizeof(s->scratch));
        ret = msp_tlmsp_lcontrib(s->present, s->cc, s->sc, s->list->m[i].access, &l);
        if (ret == MSP_OK) {
            ret = sess_hash_add(s->mb[i].t, l.base, l.len);
        }
    }
    return ret;
}

static int add_to_all(sess_t *s, const uint8_t *msg, size_t len)
{
    int ret = MSP_OK;
    for (size_t i = 0; ret == MSP_OK && i < s->list->n; i++) {
        ret = sess_hash_add(s->mb[i].t, msg, len);
    }
    return ret;
}

/* ChangeCipherSpec, Finished, then MiddleboxFinished to m1..mN (4.3 step 6, 4.4 step 8). */
int ep_send_finished(msp_tlmsp_conn_t *c)
{
    sess_t *s = &c->s;
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    uint8_t h[32], v[12];
    int ret = sess_derive_context_keys(s);
    if (ret == MSP_OK) {
        ret = hop_write_ccs(&c->h);
    }
    if (ret == MSP_OK) {
        ret = sess_hash_peek(s->t, NULL, 0, h);
    }
    if (ret == MSP_OK) {
        ret = msp_tlmsp_finished(client ? MSP_TLMSP_FIN_CLIENT : MSP_TLMSP_FIN_SERVER, s->master_cs, h, v);
    }
    uint8_t *fin = client ? c->client_fin : c->server_fin;
    fin_msg(fin, v);
    if (ret == MSP_OK && client) {
        ret = sess_hash_add(s->t, fin, 16);
    }
    if (ret == MSP_OK && client) {
        ret = add_to_all(s, fin, 16);
    }
    if (ret == MSP_OK) {
        ret = hop_write_msg(&c->h, fin, 16);
    }
    msp_buf_t msg;
    uint8_t store[4 + 13];
    for (size_t i = 0; ret == MSP_OK && i < s->list->n; i++) {
        msp_buf_init_fixed(&msg, store, sizeof(store));
        ret = mbox_fin(s, i, client ? MSP_TLMSP_FIN_CLIENT_TO_MBOX : MSP_TLMSP_FIN_SERVER_TO_MBOX, &msg);
        if (ret == MSP_OK) {
            ret = hop_write_msg(&c->h, msg.base, msg.len);
        }
    }
    return ret;
}

static int on_peer_finished(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len, const uint8_t *msg)
{
    sess_t *s = &c->s;
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    uint8_t h[32];
    int ret = sess_hash_peek(s->t, NULL, 0, h);
    if (ret == MSP_OK) {
        ret =
            msp_tlmsp_finished_check(client ? MSP_TLMSP_FIN_SERVER : MSP_TLMSP_FIN_CLIENT, s->master_cs, h, body, len);
    }
    if (ret != MSP_OK) {
        return ret;
    }
    memcpy(client ? c->server_fin : c->client_fin, msg, 16);
    if (client) {
        return add_to_all(s, msg, 16); /* the client adds the server Finished to every T_m (6.11) */
    }
    ret = sess_hash_add(s->t, msg, 16);
    if (ret == MSP_OK) {
        ret = add_lcontrib(s);
    }
    return ret == MSP_OK ? add_to_all(s, msg, 16) : ret;
}

/* A MiddleboxFinished from each middlebox, each verified; the reference stops at mN's (9.10), we need them all. */
static int on_mbox_finished(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len)
{
    sess_t *s = &c->s;
    msp_tlmsp_mbox_finished_t f;
    uint8_t h[32];
    int ret = msp_tlmsp_mbox_finished_parse(body, len, &f);
    int i = ret == MSP_OK ? sess_mbox_index(s, f.id) : -1;
    if (ret == MSP_OK && (i < 0 || s->mb[i].finished)) {
        ret = MSP_ALERT_ILLEGAL_PARAMETER;
    }
    if (ret == MSP_OK) {
        ret = sess_hash_peek(s->mb[i].t, NULL, 0, h);
    }
    if (ret == MSP_OK) {
        ret = msp_tlmsp_finished_check(s->self == MSP_TLMSP_ID_CLIENT ? MSP_TLMSP_FIN_MBOX_TO_CLIENT
                                                                      : MSP_TLMSP_FIN_MBOX_TO_SERVER,
                                       s->mb[i].master, h, f.verify_data, 12);
    }
    if (ret == MSP_OK) {
        s->mb[i].finished = 1;
        c->mbox_finished++;
    }
    return ret;
}

/* Finished then every MiddleboxFinished; the server answers with its own once they are all in (4.4 step 8). */
int ep_on_finished(msp_tlmsp_conn_t *c, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg,
                   size_t msg_len)
{
    int ret = MSP_ALERT_UNEXPECTED_MESSAGE;
    if (c->state == EP_FINISHED && type == MSP_TLMSP_HT_FINISHED && msg_len == 16) {
        ret = on_peer_finished(c, body, len, msg);
        c->state = EP_MBOX_FINISHED;
    } else if (c->state == EP_FINISHED && type == MSP_TLMSP_HT_FINISHED) {
        ret = MSP_ALERT_DECODE_ERROR;
    } else if (c->state == EP_MBOX_FINISHED && type == MSP_TLMSP_HT_MIDDLEBOX_FINISHED) {
        ret = on_mbox_finished(c, body, len);
    }
    if (ret != MSP_OK || c->state != EP_MBOX_FINISHED || c->mbox_finished < c->s.list->n) {
        return ret;
    }
    if (c->s.self == MSP_TLMSP_ID_SERVER) {
        ret = ep_send_finished(c);
    }
    c->state = EP_READY;
    return ret;
}

/* ---- hop callbacks ---- */

static int ep_ccs(hop_t *h)
{
    msp_tlmsp_conn_t *c = h->owner;
    if (c->state != EP_CCS) {
        return MSP_ALERT_UNEXPECTED_MESSAGE;
    }
    c->state = EP_FINISHED;
    return sess_derive_context_keys(&c->s);
}

static int ep_container(hop_t *h, uint8_t type, const msp_tlmsp_container_t *ct, const uint8_t *plain, size_t plain_len,
                        uint8_t author)
{
    msp_tlmsp_conn_t *c = h->owner;
    (void)author;
    if (type == MSP_TLMSP_CT_APPLICATION_DATA) {
        if (c->state != EP_READY) {
            return MSP_ALERT_UNEXPECTED_MESSAGE;
        }
        if (c->ev.data != NULL) {
            c->ev.data(c->ev.user, ct->context, plain, plain_len);
        }
        return MSP_OK;
    }
    uint8_t level = plain[0], desc = plain[1];
    if (c->ev.alert != NULL) {
        c->ev.alert(c->ev.user, ct->context, level, desc);
    }
    if (level == 1 && desc == 0 && ct->context != 0) {
        return MSP_ALERT_UNEXPECTED_MESSAGE; /* close_notify only in context 0 (10.2) */
    }
    if (level == 1 && desc != 0) {
        return MSP_OK;
    }
    h->closed = 1;
    return level == 1 || level == 2 ? MSP_ERR_CLASS_PEER_ALERT + desc : MSP_ALERT_ILLEGAL_PARAMETER;
}

static int ep_handshake(hop_t *h, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    msp_tlmsp_conn_t *c = h->owner;
    if (c->state == EP_FINISHED || c->state == EP_MBOX_FINISHED) {
        return ep_on_finished(c, type, body, len, msg, msg_len);
    }
    if (c->state == EP_READY || c->state == EP_CCS) {
        return MSP_ALERT_UNEXPECTED_MESSAGE; /* no renegotiation, no tickets with TLMSP (8) */
    }
    return c->s.self == MSP_TLMSP_ID_CLIENT ? client_handshake(h, type, body, len, msg, msg_len)
                                            : server_handshake(h, type, body, len, msg, msg_len);
}

static const hop_ops_t ep_ops = {ep_handshake, ep_ccs, ep_container, NULL};

/* ---- public API ---- */

static int copy_cfg(msp_tlmsp_conn_t *c, const msp_tlmsp_endpoint_cfg_t *cfg)
{
    sess_t *s = &c->s;
    s->trust = cfg->trust;
    s->identity = cfg->identity;
    c->ev = cfg->events;
    int ret = sess_store_addresses(s, &cfg->client_address, &cfg->server_address);
    if (ret == MSP_OK && s->self == MSP_TLMSP_ID_CLIENT) {
        ret = sess_set_contexts(s, cfg->contexts);
    }
    if (ret == MSP_OK && s->self == MSP_TLMSP_ID_CLIENT) {
        ret = sess_set_list(s, cfg->middleboxes);
    }
    if (ret == MSP_OK && s->self == MSP_TLMSP_ID_SERVER && cfg->middleboxes != NULL) {
        ret = sess_list_dup(cfg->middleboxes, &c->policy, &c->policy_store);
    }
    return ret;
}

int msp_tlmsp_conn_new(uint8_t role, const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out)
{
    *out = NULL;
    int client = role == MSP_TLMSP_ID_CLIENT;
    if ((!client && role != MSP_TLMSP_ID_SERVER) || cfg->random == NULL ||
        (client ? cfg->contexts == NULL || cfg->middleboxes == NULL
                : cfg->identity.key == NULL || cfg->identity.ncerts == 0)) {
        return MSP_ERR_ARGUMENT;
    }
    msp_tlmsp_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    int ret = sess_init(&c->s, role, cfg->random, cfg->random_user);
    if (ret == MSP_OK) {
        ret = copy_cfg(c, cfg);
    }
    hop_init(&c->h, &c->s, &ep_ops, c, client ? DIR_C2S : DIR_S2C, client ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT);
    c->state = client ? EP_START : EP_CLIENT_HELLO;
    if (ret != MSP_OK) {
        msp_tlmsp_conn_free(c);
        return ret;
    }
    *out = c;
    return MSP_OK;
}

void msp_tlmsp_conn_free(msp_tlmsp_conn_t *c)
{
    if (c == NULL) {
        return;
    }
    hop_free(&c->h);
    sess_free(&c->s);
    free(c->policy);
    free(c->policy_store);
    free(c->discovered);
    free(c->initial);
    free(c->initial_store);
    OPENSSL_clear_free(c, sizeof(*c));
}

int msp_tlmsp_conn_start(msp_tlmsp_conn_t *c, msp_buf_t *out)
{
    if (c->s.self != MSP_TLMSP_ID_CLIENT || c->state != EP_START) {
        return MSP_ERR_ARGUMENT;
    }
    c->h.out = out;
    int ret = client_hello(c);
    c->h.out = NULL;
    return ret;
}

int msp_tlmsp_conn_input(msp_tlmsp_conn_t *c, const uint8_t *in, size_t *inlen, msp_buf_t *out)
{
    c->h.out = out;
    int ret = hop_input(&c->h, in, inlen);
    c->h.out = NULL;
    return ret;
}

int msp_tlmsp_conn_ready(const msp_tlmsp_conn_t *c)
{
    return c->state == EP_READY && !c->h.dead;
}

int msp_tlmsp_conn_closed(const msp_tlmsp_conn_t *c)
{
    return c->h.closed || c->h.dead;
}

int msp_tlmsp_conn_send(msp_tlmsp_conn_t *c, uint8_t ctx, const uint8_t *p, size_t len, msp_buf_t *out)
{
    if (!msp_tlmsp_conn_ready(c) || c->h.closed) {
        return MSP_ERR_ARGUMENT;
    }
    if (ctx == 0 || !c->s.ctx.present[ctx]) {
        return MSP_ALERT_UNKNOWN_CONTEXT;
    }
    c->h.out = out;
    int ret = data_send_many(&c->h, MSP_TLMSP_CT_APPLICATION_DATA, ctx, p, len);
    c->h.out = NULL;
    return ret;
}

int msp_tlmsp_conn_alert(msp_tlmsp_conn_t *c, uint8_t ctx, uint8_t level, uint8_t desc, msp_buf_t *out)
{
    if (ctx != 0 && !c->s.ctx.present[ctx]) {
        return MSP_ALERT_UNKNOWN_CONTEXT;
    }
    c->h.out = out;
    int ret = hop_alert(&c->h, ctx, level, desc);
    c->h.out = NULL;
    if (level == 2 || desc == 0) {
        c->h.closed = 1;
    }
    return ret;
}

const msp_tlmsp_mbox_list_t *msp_tlmsp_conn_middleboxes(const msp_tlmsp_conn_t *c)
{
    return c->s.list;
}

const msp_tlmsp_context_list_t *msp_tlmsp_conn_contexts(const msp_tlmsp_conn_t *c)
{
    return &c->s.ctx;
}
