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
#include "tlmsp_mbox_msg.h"
#include "tlmsp_tls12.h"

/* Every message sent or received after the ServerHello, into the transcripts it belongs to (6.10, 6.11). */
int ep_transcript(msp_tlmsp_conn_t *c, const uint8_t *msg, size_t len)
{
    sess_t *s = &c->s;
    if (msp_tlmsp_endpoint_transcript_includes(msg[0], msg + 4, len - 4)) {
        MSP_GUARD(sess_hash_add(s->t, msg, len));
    }
    for (size_t i = 0; i < s->list->n; i++) {
        if (msp_tlmsp_mbox_transcript_includes(msg[0], msg + 4, len - 4, s->list->m[i].id)) {
            MSP_GUARD(sess_hash_add(s->mb[i].t, msg, len));
        }
    }
    return MSP_OK;
}

int ep_send_msg(msp_tlmsp_conn_t *c, const uint8_t *msg, size_t len)
{
    MSP_GUARD(ep_transcript(c, msg, len));
    return hop_write_msg(&c->h, msg, len);
}

int ep_mbox_msg(msp_tlmsp_conn_t *c, const hs_msg_t *m, uint8_t *index)
{
    MSP_GUARD(hs_mbox_msg(&c->s, m->type, m->body, m->len, index));
    return ep_transcript(c, m->msg, m->msg_len);
}

/* MiddleboxHello, Cert, KeyExchange (and the server's HelloDone): H 4.3 step 3, 4.4 step 3. */
int ep_on_mbox_msg(hop_t *h, const hs_msg_t *m)
{
    uint8_t index;
    return ep_mbox_msg(h->owner, m, &index);
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
    uint8_t *rnd = sess_scratch(s, 16 + 32 * nctx); /* 16 + 32 per context: at most 8208 bytes */
    MSP_ENSURE(rnd != NULL, MSP_ERR_NO_MEMORY);
    sess_random(s, rnd, 16 + 32 * nctx);
    int ret = msp_tlmsp_contrib_generate(client ? s->cc : s->sc, s->present, rnd, 16 + 32 * nctx);
    OPENSSL_cleanse(rnd, 16 + 32 * nctx);
    MSP_GUARD(ret);
    msp_buf_t msg;
    msp_buf_init(&msg, MSP_TLMSP_KEYMAT_MAX_BODY + 4);
    for (size_t i = 0; i <= s->list->n; i++) {
        uint8_t target = i < s->list->n ? s->list->m[i].id : (client ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT);
        msg.len = 0;
        MSP_GUARD_GOTO(ret, hs_key_material(s, target, &msg), out);
        MSP_GUARD_GOTO(ret, ep_send_msg(c, msg.base, msg.len), out);
    }
out:
    msp_buf_free(&msg);
    return ret;
}

/* A KeyConfirmation from a middlebox (5.6), kept for the 6.7 check. */
static int on_confirmation(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len)
{
    sess_t *s = &c->s;
    uint8_t id;
    const uint8_t *key;
    MSP_GUARD(msp_tlmsp_key_material_id(body, len, &id));
    int i = sess_mbox_index(s, id);
    /* H 5.6: one confirmation per listed middlebox, from that middlebox */
    MSP_ENSURE(i >= 0 && s->mb[i].confirm == NULL, MSP_ALERT_ILLEGAL_PARAMETER);
    MSP_GUARD(sess_pair_key(s, id, s->self, &key));
    s->mb[i].confirm = calloc(1, sizeof(*s->mb[i].confirm));
    MSP_ENSURE(s->mb[i].confirm != NULL, MSP_ERR_NO_MEMORY);
    return msp_tlmsp_key_material_open(&s->g, key, body, len, id, s->present, s->mb[i].confirm);
}

/* The other endpoint's KeyMaterial, then the 6.7 check against every confirmation. */
static int on_peer_material(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len)
{
    sess_t *s = &c->s;
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    uint8_t peer = client ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT;
    msp_tlmsp_contrib_t *pc = client ? s->sc : s->cc;
    const uint8_t *key;
    MSP_GUARD(sess_pair_key(s, peer, s->self, &key));
    MSP_GUARD(msp_tlmsp_key_material_open(&s->g, key, body, len, s->self, s->present, pc));
    if (s->list->n == 0) {
        return MSP_OK;
    }
    const msp_tlmsp_contrib_t **confirm = calloc(s->list->n, sizeof(*confirm));
    uint8_t(*access)[256] = calloc(s->list->n, 256);
    int ret = confirm != NULL && access != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
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

/*
 * KeyConfirmations (one per middlebox, any order: H 4.3 step 5, 4.4 step 5 "one or more
 * MiddleboxKeyConfirmation then MiddleboxKeyMaterial"); one more than there are middleboxes is unexpected.
 */
int ep_on_confirmation(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_ENSURE(c->confirmations < c->s.list->n, MSP_ALERT_UNEXPECTED_MESSAGE);
    c->confirmations++;
    MSP_GUARD(on_confirmation(c, m->body, m->len));
    return ep_transcript(c, m->msg, m->msg_len);
}

/* The other endpoint's KeyMaterial and the 6.7 check (H 4.3 step 5, 4.4 step 5); the caller answers. */
int ep_on_peer_material(msp_tlmsp_conn_t *c, const hs_msg_t *m)
{
    MSP_GUARD(on_peer_material(c, m->body, m->len));
    return ep_transcript(c, m->msg, m->msg_len);
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
    MSP_GUARD(sess_hash_peek(s->mb[i].t, NULL, 0, h));
    MSP_GUARD(msp_tlmsp_finished(kind, s->mb[i].master, h, f.verify_data));
    size_t mark;
    msp_tls12_hs_begin(out, MSP_TLMSP_HT_MIDDLEBOX_FINISHED, &mark);
    msp_tlmsp_mbox_finished_build(&f, out);
    msp_tls12_hs_end(out, mark);
    return msp_buf_error(out);
}

/* Lcontrib(m) into T_m just before the client Finished (server side, 6.11). */
static int add_lcontrib(sess_t *s)
{
    for (size_t i = 0; i < s->list->n; i++) {
        msp_buf_t l;
        uint8_t *scratch = sess_scratch(s, SCRATCH_LEN);
        MSP_ENSURE(scratch != NULL, MSP_ERR_NO_MEMORY);
        msp_buf_init_fixed(&l, scratch, SCRATCH_LEN);
        MSP_GUARD(msp_tlmsp_lcontrib(s->present, s->cc, s->sc, s->list->m[i].access, &l));
        MSP_GUARD(sess_hash_add(s->mb[i].t, l.base, l.len));
    }
    return MSP_OK;
}

static int add_to_all(sess_t *s, const uint8_t *msg, size_t len)
{
    for (size_t i = 0; i < s->list->n; i++) {
        MSP_GUARD(sess_hash_add(s->mb[i].t, msg, len));
    }
    return MSP_OK;
}

/* ChangeCipherSpec, Finished, then MiddleboxFinished to m1..mN (4.3 step 6, 4.4 step 8). */
int ep_send_finished(msp_tlmsp_conn_t *c)
{
    sess_t *s = &c->s;
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    uint8_t h[32], v[12];
    MSP_GUARD(sess_derive_context_keys(s));
    MSP_GUARD(hop_write_ccs(&c->h));
    MSP_GUARD(sess_hash_peek(s->t, NULL, 0, h));
    MSP_GUARD(msp_tlmsp_finished(client ? MSP_TLMSP_FIN_CLIENT : MSP_TLMSP_FIN_SERVER, s->master_cs, h, v));
    uint8_t *fin = client ? c->client_fin : c->server_fin;
    fin_msg(fin, v);
    if (client) {
        MSP_GUARD(sess_hash_add(s->t, fin, 16));
        MSP_GUARD(add_to_all(s, fin, 16));
    }
    MSP_GUARD(hop_write_msg(&c->h, fin, 16));
    msp_buf_t msg;
    uint8_t store[4 + 13];
    for (size_t i = 0; i < s->list->n; i++) {
        msp_buf_init_fixed(&msg, store, sizeof(store));
        MSP_GUARD(mbox_fin(s, i, client ? MSP_TLMSP_FIN_CLIENT_TO_MBOX : MSP_TLMSP_FIN_SERVER_TO_MBOX, &msg));
        MSP_GUARD(hop_write_msg(&c->h, msg.base, msg.len));
    }
    return MSP_OK;
}

static int on_peer_finished(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len, const uint8_t *msg)
{
    sess_t *s = &c->s;
    int client = s->self == MSP_TLMSP_ID_CLIENT;
    uint8_t h[32];
    MSP_GUARD(sess_hash_peek(s->t, NULL, 0, h));
    MSP_GUARD(
        msp_tlmsp_finished_check(client ? MSP_TLMSP_FIN_SERVER : MSP_TLMSP_FIN_CLIENT, s->master_cs, h, body, len));
    memcpy(client ? c->server_fin : c->client_fin, msg, 16);
    if (client) {
        return add_to_all(s, msg, 16); /* the client adds the server Finished to every T_m (6.11) */
    }
    MSP_GUARD(sess_hash_add(s->t, msg, 16));
    MSP_GUARD(add_lcontrib(s));
    return add_to_all(s, msg, 16);
}

/* A MiddleboxFinished from each middlebox, each verified; the reference stops at mN's (9.10), we need them all. */
static int on_mbox_finished(msp_tlmsp_conn_t *c, const uint8_t *body, size_t len)
{
    sess_t *s = &c->s;
    msp_tlmsp_mbox_finished_t f;
    uint8_t h[32];
    MSP_GUARD(msp_tlmsp_mbox_finished_parse(body, len, &f));
    int i = sess_mbox_index(s, f.id);
    /* H 5.7: from a listed middlebox, once */
    MSP_ENSURE(i >= 0 && !s->mb[i].finished, MSP_ALERT_ILLEGAL_PARAMETER);
    MSP_GUARD(sess_hash_peek(s->mb[i].t, NULL, 0, h));
    MSP_GUARD(msp_tlmsp_finished_check(s->self == MSP_TLMSP_ID_CLIENT ? MSP_TLMSP_FIN_MBOX_TO_CLIENT
                                                                      : MSP_TLMSP_FIN_MBOX_TO_SERVER,
                                       s->mb[i].master, h, f.verify_data, 12));
    s->mb[i].finished = 1;
    c->mbox_finished++;
    return MSP_OK;
}

/* Once every MiddleboxFinished is in, the server answers with its own flight (4.4 step 8) and both are ready. */
static int finish_if_all(msp_tlmsp_conn_t *c)
{
    if (c->mbox_finished < c->s.list->n) {
        return MSP_OK;
    }
    c->state = EP_READY;
    return c->s.self == MSP_TLMSP_ID_SERVER ? ep_send_finished(c) : MSP_OK;
}

/* The peer's Finished (6.10): 12 bytes of verify_data, else decode_error (RFC 5246 7.4.9). */
int ep_on_finished(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_ENSURE(m->msg_len == 16, MSP_ALERT_DECODE_ERROR);
    MSP_GUARD(on_peer_finished(c, m->body, m->len, m->msg));
    return finish_if_all(c);
}

/*
 * A MiddleboxFinished from each middlebox, each verified (6.11); the reference stops at mN's
 * (H 4.3 step 7 "until the one from the last middlebox", 9.10), we need them all.
 */
int ep_on_mbox_finished(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    MSP_GUARD(on_mbox_finished(c, m->body, m->len));
    return finish_if_all(c);
}

/* ChangeCipherSpec (6.9): the context keys are derived from the contributions now complete (6.8). */
int ep_on_ccs(hop_t *h, const hs_msg_t *m)
{
    msp_tlmsp_conn_t *c = h->owner;
    (void)m;
    return sess_derive_context_keys(&c->s);
}

const char *const ep_state_names[EP_NSTATES] = {"START",      "SERVER_HELLO", "CERTIFICATE",   "SERVER_KEX",
                                                "HELLO_DONE", "MBOX_MSGS",    "CLIENT_HELLO",  "KEY_MATERIAL",
                                                "CCS",        "FINISHED",     "MBOX_FINISHED", "READY"};

/* ---- hop callbacks ---- */

static const hs_table_t *ep_table(const msp_tlmsp_conn_t *c)
{
    return c->s.self == MSP_TLMSP_ID_CLIENT ? &client_table : &server_table;
}

static int ep_ccs(hop_t *h)
{
    msp_tlmsp_conn_t *c = h->owner;
    hs_msg_t m = {1, NULL, 0, NULL, 0};
    return hs_dispatch(ep_table(c), &c->state, h, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, &m);
}

static int ep_container(hop_t *h, uint8_t type, const msp_tlmsp_container_t *ct, const uint8_t *plain, size_t plain_len,
                        uint8_t author)
{
    msp_tlmsp_conn_t *c = h->owner;
    (void)author;
    if (type == MSP_TLMSP_CT_APPLICATION_DATA) {
        if (c->state != EP_READY || c->peer_close) {
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
    if (level == 1 && c->half_close && !c->sent_close) {
        c->peer_close = 1; /* only the peer's direction ends: ours stays open until we close it */
        return MSP_OK;
    }
    return level == 1 || level == 2 ? MSP_ERR_CLASS_PEER_ALERT + desc : MSP_ALERT_ILLEGAL_PARAMETER;
}

/* No renegotiation, no tickets with TLMSP (H 8): READY has no rows. */
static int ep_handshake(hop_t *h, uint8_t type, const uint8_t *body, size_t len, const uint8_t *msg, size_t msg_len)
{
    msp_tlmsp_conn_t *c = h->owner;
    hs_msg_t m = {type, body, len, msg, msg_len};
    return hs_dispatch(ep_table(c), &c->state, h, MSP_TLMSP_CT_HANDSHAKE, &m);
}

static const hop_ops_t ep_ops = {ep_handshake, ep_ccs, ep_container, NULL};

/* ---- public API ---- */

static int copy_cfg(msp_tlmsp_conn_t *c, const msp_tlmsp_endpoint_cfg_t *cfg)
{
    sess_t *s = &c->s;
    s->trust = cfg->trust;
    s->shared = cfg->shared;
    s->identity = cfg->identity;
    c->ev = cfg->events;
    c->half_close = cfg->half_close;
    MSP_GUARD(sess_store_addresses(s, &cfg->client_address, &cfg->server_address));
    if (s->self == MSP_TLMSP_ID_CLIENT) {
        MSP_GUARD(sess_set_contexts(s, cfg->contexts));
        return sess_set_list(s, cfg->middleboxes);
    }
    return cfg->middleboxes != NULL ? sess_list_dup(cfg->middleboxes, &c->policy, &c->policy_store) : MSP_OK;
}

int msp_tlmsp_conn_new(uint8_t role, const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out)
{
    MSP_ENSURE(out != NULL, MSP_ERR_ARGUMENT);
    *out = NULL;
    int client = role == MSP_TLMSP_ID_CLIENT;
    MSP_ENSURE(cfg != NULL && (client || role == MSP_TLMSP_ID_SERVER) && cfg->random != NULL, MSP_ERR_ARGUMENT);
    MSP_ENSURE(client ? cfg->contexts != NULL && cfg->middleboxes != NULL
                      : cfg->identity.key != NULL && cfg->identity.ncerts != 0,
               MSP_ERR_ARGUMENT);
    msp_tlmsp_conn_t *c = calloc(1, sizeof(*c));
    MSP_ENSURE(c != NULL, MSP_ERR_NO_MEMORY);
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

int msp_tlmsp_client_new(const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out)
{
    return msp_tlmsp_conn_new(MSP_TLMSP_ID_CLIENT, cfg, out);
}

int msp_tlmsp_server_new(const msp_tlmsp_endpoint_cfg_t *cfg, msp_tlmsp_conn_t **out)
{
    return msp_tlmsp_conn_new(MSP_TLMSP_ID_SERVER, cfg, out);
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
    hs_msg_t m = {0, NULL, 0, NULL, 0};
    int ret = hs_dispatch(&client_table, &c->state, &c->h, HS_CT_START, &m);
    c->h.out = NULL;
    return ret;
}

int msp_tlmsp_conn_input(msp_tlmsp_conn_t *c, const uint8_t *in, size_t *inlen, msp_buf_t *out)
{
    c->h.out = out;
    int ret = hop_input(&c->h, in, inlen);
    c->h.out = NULL;
    if (msp_tlmsp_conn_ready(c)) {
        sess_handshake_done(&c->s);
    }
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
    if (!msp_tlmsp_conn_ready(c) || (c->half_close ? c->sent_close : c->h.closed)) {
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
        c->sent_close = 1;
    }
    return ret;
}

int msp_tlmsp_conn_peer_closed(const msp_tlmsp_conn_t *c)
{
    return c->peer_close || c->h.dead;
}

const msp_tlmsp_mbox_list_t *msp_tlmsp_conn_middleboxes(const msp_tlmsp_conn_t *c)
{
    return c->s.list;
}

const msp_tlmsp_context_list_t *msp_tlmsp_conn_contexts(const msp_tlmsp_conn_t *c)
{
    return &c->s.ctx;
}
