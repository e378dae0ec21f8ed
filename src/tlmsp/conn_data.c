/*
 * Containers on a hop (tlmsp-records.md 4-9): originate, insert, forward,
 * modify and delete on the way out; on the way in, the sequence steps and
 * every check the receiver's access allows, in the reference's order (8).
 * Nothing is allocated: containers are written straight into the hop's
 * output buffer.
 */
#include "conn.h"

#include <string.h>

#include "msp/error.h"

#define FM_ENDPOINT 0x00 /* forwarding-MAC flags byte as the reference writes it (7.7) */
#define FM_MBOX 0x80
#define FM_DELETE 0xc0

static int is_endpoint(uint8_t id)
{
    return id == MSP_TLMSP_ID_CLIENT || id == MSP_TLMSP_ID_SERVER;
}

static const uint8_t *reader_key(const sess_t *s, uint8_t ctx, int dir)
{
    return dir == DIR_C2S ? s->keys[s->key_at[ctx]].client_reader_enc : s->keys[s->key_at[ctx]].server_reader_enc;
}

static const uint8_t *writer_key(const sess_t *s, uint8_t ctx, int dir)
{
    return dir == DIR_C2S ? s->keys[s->key_at[ctx]].client_writer_mac : s->keys[s->key_at[ctx]].server_writer_mac;
}

static uint8_t dest_endpoint(int dir)
{
    return dir == DIR_C2S ? MSP_TLMSP_ID_SERVER : MSP_TLMSP_ID_CLIENT;
}

static int confirmed(const sess_t *s, uint8_t ctx)
{
    return ctx != 0 && s->ctx.audit[ctx];
}

/* The total of M_INFO's delete counts (4.3); a malformed M_INFO never gets here (the parser checked it). */
static uint64_t delete_total(const uint8_t *m_info, size_t len)
{
    uint64_t d = 0;
    for (size_t i = 2; m_info != NULL && i + 3 <= len; i += 3) {
        d += (uint64_t)m_info[i + 1] << 8 | m_info[i + 2];
    }
    return d;
}

/* The reader-check hash (5.7): from the batch computed ahead when every input matches, else now. */
static int rc_hash(sess_t *s, const msp_tlmsp_mac_in_t *in, const uint8_t *frag, size_t len, uint8_t hash[32])
{
    size_t m_info_len = in->m_info != NULL ? in->m_info_len : 0;
    for (size_t i = 0; i < s->nrc; i++) {
        const rc_entry_t *e = &s->rc[i];
        if (e->frag == frag && e->frag_len == len && e->seq == in->seq && e->sid == in->sid && e->flags == in->flags &&
            e->type == in->type && e->m_info == in->m_info && e->m_info_len == m_info_len) {
            memcpy(hash, e->hash, 32);
            return MSP_OK;
        }
    }
    return msp_tlmsp_reader_check_hash(&s->g, in, frag, len, hash);
}

/* A new forwarding MAC by us (4.6, 5.7, 5.8), appended to out. inbound: the previous highest entry's reader check. */
static int put_new_fmac(hop_t *h, const msp_tlmsp_mac_in_t *in, const uint8_t *frag, size_t frag_len, uint8_t order,
                        uint8_t fm_flags, const uint8_t *inbound)
{
    sess_t *s = h->s;
    uint8_t nonce[12], rc[16], check[16], hash[32];
    const uint8_t *ab;
    sess_nonce(s, nonce);
    int ret = rc_hash(s, in, frag, frag_len, hash);
    if (ret == MSP_OK) {
        ret = msp_tlmsp_reader_check_gmac(&s->g, s->synch[h->dir_tx], nonce, hash, rc);
    }
    if (ret == MSP_OK) {
        ret = sess_pair_key(s, s->self, dest_endpoint(h->dir_tx), &ab);
    }
    msp_tlmsp_fmac_t fm = {s->self, order, fm_flags, rc, nonce, check};
    if (ret == MSP_OK) {
        ret = msp_tlmsp_check_mac(&s->g, ab, in, &fm, inbound, check);
    }
    msp_buf_put_u8(h->out, s->self);
    msp_buf_put_u8(h->out, order);
    msp_buf_put_u8(h->out, fm_flags);
    msp_buf_put(h->out, rc, 16);
    msp_buf_put(h->out, nonce, 12);
    msp_buf_put(h->out, check, 16);
    MSP_GUARD(ret);
    return msp_buf_error(h->out);
}

static void put_old_fmac(msp_buf_t *out, const msp_tlmsp_fmac_t *fm)
{
    msp_buf_put_u8(out, fm->id);
    msp_buf_put_u8(out, fm->order);
    msp_buf_put_u8(out, fm->flags);
    msp_buf_put(out, fm->reader_check, 16);
    msp_buf_put(out, fm->nonce, 12);
    msp_buf_put(out, fm->check, 16);
}

/* Record header with Sid, then contextId | flags | [M_INFO]; *mark is where the record length goes. */
static void put_head(hop_t *h, uint8_t type, uint8_t ctx, uint16_t flags, const uint8_t *m_info, size_t m_info_len,
                     size_t *mark)
{
    msp_buf_put_u8(h->out, type);
    msp_buf_put_u16(h->out, MSP_TLMSP_WIRE_VERSION);
    msp_buf_block_begin(h->out, 2, mark);
    msp_buf_put_u32(h->out, h->s->sid);
    msp_buf_put_u8(h->out, ctx);
    msp_buf_put_u16(h->out, flags);
    msp_buf_put(h->out, m_info, m_info_len);
}

typedef struct fresh {
    uint8_t type, ctx;
    uint16_t flags;
    const uint8_t *m_info;
    size_t m_info_len;
    uint8_t fm_flags;
    uint64_t deletes;
} fresh_t;

/* A container of ours between writing its fragment and its forwarding MAC, whose hash may come in a batch. */
typedef struct unsent {
    msp_tlmsp_mac_in_t in;
    uint8_t m_info[8]; /* in.m_info points here: an insert's or a delete's */
    size_t frag_off, flen, fm_off;
    uint8_t fm_flags;
} unsent_t;

/* A container authored by us (7.1, 7.4, 7.5) up to its forwarding MAC, whose 47 bytes are left for fresh_close(). */
static int fresh_open(hop_t *h, const fresh_t *f, const uint8_t *p, size_t len, unsent_t *u)
{
    sess_t *s = h->s;
    if (len > MAX_CONTAINER_DATA || f->m_info_len > sizeof(u->m_info)) {
        return MSP_ERR_LIMIT;
    }
    if (f->m_info_len > 0) {
        memcpy(u->m_info, f->m_info, f->m_info_len);
    }
    uint64_t q = msp_tlmsp_seq_tx(&h->seq, f->deletes);
    u->in = (msp_tlmsp_mac_in_t){f->type, s->sid, q, f->flags, f->m_info_len > 0 ? u->m_info : NULL, f->m_info_len};
    u->fm_flags = f->fm_flags;
    uint8_t nonce[12];
    size_t mark, flen = len + MSP_TLMSP_FRAGMENT_OVERHEAD;
    sess_nonce(s, nonce);
    put_head(h, f->type, f->ctx, f->flags, f->m_info, f->m_info_len, &mark);
    msp_buf_put_u16(h->out, (uint16_t)flen);
    MSP_GUARD(msp_buf_reserve(h->out, flen + 16 + MSP_TLMSP_FMAC_LEN + 1));
    uint8_t *frag = h->out->base + h->out->len;
    MSP_GUARD(msp_tlmsp_fragment_seal(&s->g, reader_key(s, f->ctx, h->dir_tx), &u->in, nonce, p, len, frag));
    u->frag_off = h->out->len;
    u->flen = flen;
    h->out->len += flen;
    uint8_t *w = h->out->base + h->out->len;
    /* An alert from a writer without write access carries a zero writer MAC (4.5). */
    memset(w, 0, 16);
    int ret = MSP_OK;
    if (sess_access(s, s->self, f->ctx) == MSP_TLMSP_ACCESS_RW) {
        ret = msp_tlmsp_writer_mac(&s->g, writer_key(s, f->ctx, h->dir_tx), &u->in, frag, flen, w);
    }
    h->out->len += 16;
    u->fm_off = h->out->len;
    memset(h->out->base + h->out->len, 0, MSP_TLMSP_FMAC_LEN);
    h->out->len += MSP_TLMSP_FMAC_LEN;
    if (confirmed(s, f->ctx)) {
        msp_buf_put_u8(h->out, 0);
    }
    msp_buf_block_end(h->out, 2, mark);
    MSP_GUARD(ret);
    return msp_buf_error(h->out);
}

/* The forwarding MAC of order 0 (4.6, 5.7, 5.8) into the bytes fresh_open() left, from the fragment's hash. */
static int fresh_close(hop_t *h, const unsent_t *u, const uint8_t hash[32])
{
    sess_t *s = h->s;
    uint8_t nonce[12], rc[16], check[16];
    const uint8_t *ab;
    sess_nonce(s, nonce);
    int ret = msp_tlmsp_reader_check_gmac(&s->g, s->synch[h->dir_tx], nonce, hash, rc);
    if (ret == MSP_OK) {
        ret = sess_pair_key(s, s->self, dest_endpoint(h->dir_tx), &ab);
    }
    msp_tlmsp_fmac_t fm = {s->self, 0, u->fm_flags, rc, nonce, check};
    if (ret == MSP_OK) {
        ret = msp_tlmsp_check_mac(&s->g, ab, &u->in, &fm, NULL, check);
    }
    uint8_t *o = h->out->base + u->fm_off;
    o[0] = s->self;
    o[1] = 0;
    o[2] = u->fm_flags;
    memcpy(o + 3, rc, 16);
    memcpy(o + 19, nonce, 12);
    memcpy(o + 31, check, 16);
    return ret;
}

static int fresh(hop_t *h, const fresh_t *f, const uint8_t *p, size_t len)
{
    unsent_t u;
    uint8_t hash[32];
    MSP_GUARD(fresh_open(h, f, p, len, &u));
    MSP_GUARD(msp_tlmsp_reader_check_hash(&h->s->g, &u.in, h->out->base + u.frag_off, u.flen, hash));
    return fresh_close(h, &u, hash);
}

/* Originate (endpoint) or insert (middlebox) one container of at most MAX_CONTAINER_DATA bytes. */
static void fresh_of(const sess_t *s, uint8_t type, uint8_t ctx, const uint8_t *m_info, fresh_t *f)
{
    *f = (fresh_t){type, ctx, confirmed(s, ctx) ? MSP_TLMSP_CF_ADDITIONAL_FORWARDING_MACS : 0, NULL, 0, FM_ENDPOINT, 0};
    if (!is_endpoint(s->self)) {
        f->flags |= MSP_TLMSP_CF_INSERTED;
        f->m_info = m_info;
        f->m_info_len = 2;
        f->fm_flags = FM_MBOX;
    }
}

/*
 * Data of any length, in containers of at most MAX_CONTAINER_DATA bytes, their reader-check hashes computed a batch
 * at a time (sha_mb.c): a sender hashes every fragment once, and SHA-256 is the slowest step of its path.
 */
/*
 * The most bytes data_send_many writes for len bytes: per container its record header, Sid, contextId, flags,
 * M_INFO (2), fragment length, the fragment's nonce and tag, writer MAC, forwarding MAC and the empty additional list.
 */
static size_t wire_bound(size_t len)
{
    size_t n = len == 0 ? 1 : (len + MAX_CONTAINER_DATA - 1) / MAX_CONTAINER_DATA;
    return len + n * (5 + 4 + 1 + 2 + 2 + 2 + MSP_TLMSP_FRAGMENT_OVERHEAD + 16 + MSP_TLMSP_FMAC_LEN + 1);
}

/* Room for the whole send, or nothing: a send cut short would leave sequence numbers used for containers never sent,
 * and a partial container in the queue (the reader's MAC check fails on it). The buffer's error is not set. */
static int room_for(msp_buf_t *out, size_t len)
{
    if (out->err != MSP_OK) {
        return out->err;
    }
    size_t need = wire_bound(len);
    size_t room = out->owned ? out->limit : out->cap;
    if (len > room || need > room - out->len) {
        return MSP_ERR_LIMIT;
    }
    return msp_buf_reserve(out, need);
}

int data_send_many(hop_t *h, uint8_t type, uint8_t ctx, const uint8_t *p, size_t len)
{
    uint8_t m_info[2] = {h->s->self, 0};
    fresh_t f;
    fresh_of(h->s, type, ctx, m_info, &f);
    int ret = room_for(h->out, len);
    do {
        unsent_t u[MSP_TLMSP_HASH_BATCH / 2];
        msp_tlmsp_mac_in_t in[MSP_TLMSP_HASH_BATCH / 2];
        const uint8_t *frag[MSP_TLMSP_HASH_BATCH / 2];
        size_t flen[MSP_TLMSP_HASH_BATCH / 2], k = 0;
        uint8_t hash[MSP_TLMSP_HASH_BATCH / 2][32];
        for (; ret == MSP_OK && k < MSP_TLMSP_HASH_BATCH / 2 && (len > 0 || k == 0); k++) {
            size_t n = len < MAX_CONTAINER_DATA ? len : MAX_CONTAINER_DATA;
            ret = fresh_open(h, &f, p, n, &u[k]);
            p += n;
            len -= n;
        }
        for (size_t i = 0; ret == MSP_OK && i < k; i++) {
            in[i] = u[i].in;
            frag[i] = h->out->base + u[i].frag_off; /* stable now: nothing is appended until the MACs are in */
            flen[i] = u[i].flen;
        }
        if (ret == MSP_OK) {
            ret = msp_tlmsp_reader_check_hashes(&h->s->g, k, in, frag, flen, hash);
        }
        for (size_t i = 0; ret == MSP_OK && i < k; i++) {
            ret = fresh_close(h, &u[i], hash[i]);
        }
    } while (ret == MSP_OK && len > 0);
    return ret;
}

int data_send(hop_t *h, uint8_t type, uint8_t ctx, const uint8_t *p, size_t len)
{
    uint8_t m_info[2] = {h->s->self, 0};
    fresh_t f;
    fresh_of(h->s, type, ctx, m_info, &f);
    return fresh(h, &f, p, len);
}

/* The entry with the highest order (the chain's head, 9). */
static const msp_tlmsp_fmac_t *highest(const msp_tlmsp_container_t *c)
{
    const msp_tlmsp_fmac_t *best = &c->fmacs[0];
    for (size_t i = 1; i < c->nfmacs; i++) {
        if (c->fmacs[i].order > best->order) {
            best = &c->fmacs[i];
        }
    }
    return best;
}

/*
 * The forwarding MACs of a container we pass on (7.2, 7.3). Unconfirmed: a new mandatory entry of order 0 replaces
 * the old. Confirmed: forwarding keeps the mandatory entry and appends ours; modifying moves the received mandatory
 * entry to the additional list and puts ours first; either way ours has order highest + 1 and chains to it.
 */
static int put_chain(hop_t *h, const msp_tlmsp_container_t *c, const msp_tlmsp_mac_in_t *in, const uint8_t *frag,
                     size_t flen, int modified)
{
    if (!confirmed(h->s, c->context)) {
        return put_new_fmac(h, in, frag, flen, 0, FM_MBOX, NULL);
    }
    const msp_tlmsp_fmac_t *top = highest(c);
    if (top->order >= 254 || c->nfmacs >= MSP_TLMSP_MAX_FMACS) {
        return MSP_ALERT_ILLEGAL_PARAMETER; /* 255 is reserved (records 1) */
    }
    int ret;
    if (modified) {
        ret = put_new_fmac(h, in, frag, flen, (uint8_t)(top->order + 1), FM_MBOX, top->reader_check);
        msp_buf_put_u8(h->out, (uint8_t)c->nfmacs);
        for (size_t i = 1; i < c->nfmacs; i++) {
            put_old_fmac(h->out, &c->fmacs[i]);
        }
        put_old_fmac(h->out, &c->fmacs[0]);
        return ret;
    }
    put_old_fmac(h->out, &c->fmacs[0]);
    msp_buf_put_u8(h->out, (uint8_t)c->nfmacs);
    for (size_t i = 1; i < c->nfmacs; i++) {
        put_old_fmac(h->out, &c->fmacs[i]);
    }
    ret = put_new_fmac(h, in, frag, flen, (uint8_t)(top->order + 1), FM_MBOX, top->reader_check);
    return ret;
}

/* Pass a container on unchanged (7.2): everything verbatim but the forwarding MACs. */
int data_forward(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c)
{
    if (!h->tx_keyed) {
        /* An unprotected alert container before the keys, forwarded as it came (records 4.7). */
        size_t mark;
        put_head(h, type, c->context, c->flags, c->m_info, c->m_info_len, &mark);
        msp_buf_put_u16(h->out, (uint16_t)c->fragment_len);
        msp_buf_put(h->out, c->fragment, c->fragment_len);
        msp_buf_block_end(h->out, 2, mark);
        msp_tlmsp_seq_tx(&h->seq, 0);
        return msp_buf_error(h->out);
    }
    uint64_t q = msp_tlmsp_seq_tx(&h->seq, delete_total(c->m_info, c->m_info_len));
    msp_tlmsp_mac_in_t in = {type, h->s->sid, q, c->flags, c->m_info, c->m_info_len};
    size_t mark;
    put_head(h, type, c->context, c->flags, c->m_info, c->m_info_len, &mark);
    msp_buf_put_u16(h->out, (uint16_t)c->fragment_len);
    msp_buf_put(h->out, c->fragment, c->fragment_len);
    msp_buf_put(h->out, c->writer_mac, 16);
    int ret = put_chain(h, c, &in, c->fragment, c->fragment_len, 0);
    msp_buf_block_end(h->out, 2, mark);
    MSP_GUARD(ret);
    return msp_buf_error(h->out);
}

/* Modify (7.3): flags and M_INFO unchanged, fragment and writer MAC ours. */
int data_replace(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c, const uint8_t *p, size_t len)
{
    sess_t *s = h->s;
    if (len > MAX_CONTAINER_DATA) {
        return MSP_ERR_LIMIT;
    }
    uint64_t q = msp_tlmsp_seq_tx(&h->seq, delete_total(c->m_info, c->m_info_len));
    msp_tlmsp_mac_in_t in = {type, s->sid, q, c->flags, c->m_info, c->m_info_len};
    uint8_t nonce[12];
    size_t mark, flen = len + MSP_TLMSP_FRAGMENT_OVERHEAD;
    sess_nonce(s, nonce);
    put_head(h, type, c->context, c->flags, c->m_info, c->m_info_len, &mark);
    msp_buf_put_u16(h->out, (uint16_t)flen);
    MSP_GUARD(msp_buf_reserve(h->out, flen + 16));
    size_t frag_at = h->out->len;
    /* records 7.3: a writer re-encrypts the new plaintext (5.5) and signs it with its writer MAC (5.6) */
    MSP_GUARD(msp_tlmsp_fragment_seal(&s->g, reader_key(s, c->context, h->dir_tx), &in, nonce, p, len,
                                      h->out->base + frag_at));
    MSP_GUARD(msp_tlmsp_writer_mac(&s->g, writer_key(s, c->context, h->dir_tx), &in, h->out->base + frag_at, flen,
                                   h->out->base + frag_at + flen));
    h->out->len += flen + 16;
    int ret = put_chain(h, c, &in, h->out->base + frag_at, flen, 1);
    msp_buf_block_end(h->out, 2, mark);
    MSP_GUARD(ret);
    return msp_buf_error(h->out);
}

/* Delete (7.4): a fresh empty container from us with one delete indicator for the original's origin. */
int data_delete(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c, uint8_t source)
{
    if (c->m_info != NULL && c->m_info_len > 2) {
        return MSP_ERR_ARGUMENT; /* a container that already carries indicators is not deleted again (7.4) */
    }
    uint8_t m_info[5] = {h->s->self, 1, source, 0, 1};
    fresh_t f = {type, c->context, (uint16_t)(c->flags | MSP_TLMSP_CF_DELETED), m_info, sizeof(m_info), FM_DELETE, 1};
    return fresh(h, &f, NULL, 0);
}

/* ---- receiving ---- */

static int check_writer(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c, const msp_tlmsp_mac_in_t *in,
                        uint8_t author)
{
    uint8_t a = sess_access(h->s, author, c->context);
    if (type == MSP_TLMSP_CT_ALERT && a != MSP_TLMSP_ACCESS_NONE && a != MSP_TLMSP_ACCESS_RW) {
        return MSP_OK; /* an alert needs only read access, and then its writer MAC is zeros (8) */
    }
    if (a != MSP_TLMSP_ACCESS_RW) {
        return MSP_ALERT_BAD_WRITER_MAC; /* written by an entity that may not write this context */
    }
    uint8_t w[16];
    MSP_GUARD(
        msp_tlmsp_writer_mac(&h->s->g, writer_key(h->s, c->context, !h->dir_tx), in, c->fragment, c->fragment_len, w));
    return msp_tlmsp_mac_verify(w, c->writer_mac, MSP_ALERT_BAD_WRITER_MAC);
}

static int check_reader_check(hop_t *h, const msp_tlmsp_container_t *c, msp_tlmsp_mac_in_t in,
                              const msp_tlmsp_fmac_t *fm)
{
    uint8_t rc[16], hash[32];
    if (msp_tlmsp_seq_of(&h->seq, fm->id, &in.seq) != MSP_OK) {
        return MSP_ALERT_BAD_READER_MAC; /* generated by an entity that is not upstream of us */
    }
    MSP_GUARD(rc_hash(h->s, &in, c->fragment, c->fragment_len, hash));
    MSP_GUARD(msp_tlmsp_reader_check_gmac(&h->s->g, h->s->synch[!h->dir_tx], fm->nonce, hash, rc));
    return msp_tlmsp_mac_verify(rc, fm->reader_check, MSP_ALERT_BAD_READER_MAC);
}

static const msp_tlmsp_fmac_t *with_order(const msp_tlmsp_container_t *c, unsigned order)
{
    for (size_t i = 0; i < c->nfmacs; i++) {
        if (c->fmacs[i].order == order) {
            return &c->fmacs[i];
        }
    }
    return NULL;
}

static int check_check_mac(hop_t *h, const msp_tlmsp_container_t *c, msp_tlmsp_mac_in_t in, const msp_tlmsp_fmac_t *fm)
{
    const uint8_t *ab, *inbound = NULL;
    uint8_t got[16];
    if (fm->order != 0) {
        const msp_tlmsp_fmac_t *prev = with_order(c, fm->order - 1u);
        if (prev == NULL) {
            return MSP_ALERT_BAD_READER_MAC;
        }
        inbound = prev->reader_check;
    }
    int ret = msp_tlmsp_seq_of(&h->seq, fm->id, &in.seq) == MSP_OK ? sess_pair_key(h->s, fm->id, h->s->self, &ab)
                                                                   : MSP_ALERT_BAD_READER_MAC;
    if (ret == MSP_OK) {
        ret = msp_tlmsp_check_mac(&h->s->g, ab, &in, fm, inbound, got);
    }
    return ret != MSP_OK ? MSP_ALERT_BAD_READER_MAC : msp_tlmsp_mac_verify(got, fm->check, MSP_ALERT_BAD_READER_MAC);
}

/* Audit order (8, 9): order 0 from some entity, then each following middlebox toward us in turn. */
static int check_audit_order(hop_t *h, const msp_tlmsp_container_t *c)
{
    const sess_t *s = h->s;
    const msp_tlmsp_fmac_t *first = with_order(c, 0);
    if (first == NULL) {
        /* equivalent mutant: return MSP_ALERT_BAD_READER_MAC -> return MSP_OK: unreachable, order k needs k-1 */
        return MSP_ALERT_BAD_READER_MAC;
    }
    int dir = !h->dir_tx, n = (int)s->list->n;
    int at = is_endpoint(first->id) ? (dir == DIR_C2S ? -1 : n) : sess_mbox_index(s, first->id);
    unsigned k = 0;
    for (int i = at + (dir == DIR_C2S ? 1 : -1); i >= 0 && i < n; i += dir == DIR_C2S ? 1 : -1) {
        const msp_tlmsp_fmac_t *e = with_order(c, ++k);
        if (e == NULL || e->id != s->list->m[i].id) {
            return MSP_ALERT_BAD_READER_MAC;
        }
    }
    return highest(c)->order == k && c->nfmacs == k + 1 ? MSP_OK : MSP_ALERT_BAD_READER_MAC;
}

static int check_fmacs(hop_t *h, const msp_tlmsp_container_t *c, const msp_tlmsp_mac_in_t *in)
{
    int conf = confirmed(h->s, c->context);
    int ret = check_reader_check(h, c, *in, &c->fmacs[0]);
    const msp_tlmsp_fmac_t *top = highest(c);
    if (ret == MSP_OK && conf && top != &c->fmacs[0]) {
        ret = check_reader_check(h, c, *in, top);
    }
    if (!is_endpoint(h->s->self)) {
        return ret;
    }
    for (size_t i = 0; ret == MSP_OK && i < (conf ? c->nfmacs : 1); i++) {
        ret = check_check_mac(h, c, *in, &c->fmacs[i]);
    }
    return ret == MSP_OK && conf ? check_audit_order(h, c) : ret;
}

static int check_envelope(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c)
{
    const sess_t *s = h->s;
    if (c->context == 0 ? type != MSP_TLMSP_CT_ALERT : !s->ctx.present[c->context]) {
        return MSP_ALERT_UNKNOWN_CONTEXT; /* records 4.2: data never in context 0 */
    }
    if (!(c->flags & MSP_TLMSP_CF_ADDITIONAL_FORWARDING_MACS) != !confirmed(s, c->context)) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    if ((c->flags & (MSP_TLMSP_CF_INSERTED | MSP_TLMSP_CF_DELETED)) && c->m_info == NULL) {
        /* equivalent mutant: return MSP_ALERT_DECODE_ERROR -> return MSP_OK: unreachable, the parser read M_INFO */
        return MSP_ALERT_DECODE_ERROR;
    }
    return MSP_OK;
}

/*
 * Every check of section 8 this entity can make, after the sequence steps of 6.4. The plaintext goes to plain when
 * we may read the context (at most 16383 bytes).
 */
int data_check(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c, uint8_t *plain, size_t *plain_len,
               uint8_t *author)
{
    sess_t *s = h->s;
    int ret = check_envelope(h, type, c);
    uint8_t origin = (c->flags & (MSP_TLMSP_CF_INSERTED | MSP_TLMSP_CF_DELETED)) ? c->m_info[0] : h->peer_ep;
    if (ret == MSP_OK && msp_tlmsp_seq_rx_container(&h->seq, origin, c->m_info, c->m_info_len) != MSP_OK) {
        ret = MSP_ALERT_ILLEGAL_PARAMETER;
    }
    if (ret != MSP_OK || !h->rx_keyed) {
        /* Before the keys only unprotected alert containers exist (records 4.7). */
        /* equivalent mutant: '||' -> '&&': unkeyed, only alerts get here (record()), parsed as 2 bytes */
        if (ret == MSP_OK && (type != MSP_TLMSP_CT_ALERT || c->fragment_len != 2)) {
            ret = MSP_ALERT_UNEXPECTED_MESSAGE;
        }
        if (ret == MSP_OK) {
            memcpy(plain, c->fragment, 2);
            *plain_len = 2;
            *author = origin;
        }
        return ret;
    }
    *author = c->fragment[0];
    msp_tlmsp_mac_in_t in = {type, s->sid, 0, c->flags, c->m_info, c->m_info_len};
    if (msp_tlmsp_seq_of(&h->seq, *author, &in.seq) != MSP_OK) {
        return MSP_ALERT_BAD_READER_MAC;
    }
    uint8_t mine = sess_access(s, s->self, c->context);
    *plain_len = 0;
    if (mine != MSP_TLMSP_ACCESS_NONE) {
        ret = msp_tlmsp_fragment_open(&s->g, reader_key(s, c->context, !h->dir_tx), &in, c->fragment, c->fragment_len,
                                      plain);
        if (ret != MSP_OK) {
            return MSP_ALERT_BAD_READER_MAC;
        }
        *plain_len = c->fragment_len - MSP_TLMSP_FRAGMENT_OVERHEAD;
        if (type == MSP_TLMSP_CT_ALERT && *plain_len != 2) {
            return MSP_ALERT_DECODE_ERROR; /* an alert's plaintext is level | description (10.2) */
        }
    }
    if (mine == MSP_TLMSP_ACCESS_RW) {
        ret = check_writer(h, type, c, &in, *author);
    }
    if (ret == MSP_OK) {
        ret = check_fmacs(h, c, &in);
    }
    return ret;
}

/* ---- hashing ahead ---- */

typedef struct batch {
    msp_tlmsp_mac_in_t in[MSP_TLMSP_HASH_BATCH];
    const uint8_t *frag[MSP_TLMSP_HASH_BATCH];
    size_t len[MSP_TLMSP_HASH_BATCH];
    size_t n;
} batch_t;

static void add_job(batch_t *b, uint8_t type, uint32_t sid, uint64_t seq, const msp_tlmsp_container_t *c)
{
    b->in[b->n] = (msp_tlmsp_mac_in_t){type, sid, seq, c->flags, c->m_info, c->m_info_len};
    b->frag[b->n] = c->fragment;
    b->len[b->n++] = c->fragment_len;
}

/* One container's jobs: the reader checks we will verify and, on a middlebox, the one we will write when forwarding
 * it unchanged; the sequence numbers are those the steps of 6.3 and 6.4 will give. */
static int container_jobs(hop_t *h, uint8_t type, const msp_tlmsp_container_t *c, msp_tlmsp_seq_t *rx,
                          msp_tlmsp_seq_t *tx, batch_t *b)
{
    uint8_t origin = h->peer_ep;
    if (c->flags & (MSP_TLMSP_CF_INSERTED | MSP_TLMSP_CF_DELETED)) {
        origin = c->m_info != NULL ? c->m_info[0] : 0;
    }
    uint64_t seq;
    if (c->nfmacs == 0 || msp_tlmsp_seq_rx_container(rx, origin, c->m_info, c->m_info_len) != MSP_OK ||
        msp_tlmsp_seq_of(rx, c->fmacs[0].id, &seq) != MSP_OK) {
        return -1;
    }
    add_job(b, type, h->s->sid, seq, c);
    const msp_tlmsp_fmac_t *top = highest(c);
    if (top != &c->fmacs[0] && msp_tlmsp_seq_of(rx, top->id, &seq) == MSP_OK) {
        add_job(b, type, h->s->sid, seq, c);
    }
    if (tx != NULL) {
        add_job(b, type, h->s->sid, msp_tlmsp_seq_tx(tx, delete_total(c->m_info, c->m_info_len)), c);
    }
    return 0;
}

/* The jobs of the complete application-data records at in, whole records only; returns the bytes they span. */
static size_t collect(hop_t *h, const uint8_t *in, size_t n, msp_tlmsp_seq_t *rx, msp_tlmsp_seq_t *tx, batch_t *b)
{
    const size_t hdr = 5, sid = 4;
    size_t off = 0;
    while (off + hdr + sid <= n && b->n + 3 <= MSP_TLMSP_HASH_BATCH) {
        size_t len = (size_t)in[off + 3] << 8 | in[off + 4];
        if (in[off] != MSP_TLMSP_CT_APPLICATION_DATA || !h->rx_sid || len < sid || off + hdr + len > n) {
            break;
        }
        size_t before = b->n;
        msp_reader_t r;
        msp_reader_init(&r, in + off + hdr + sid, len - sid);
        while (msp_reader_left(&r) > 0 && b->n + 3 <= MSP_TLMSP_HASH_BATCH) {
            if (msp_tlmsp_container_parse(&r, 1, &h->s->pre) != MSP_OK ||
                container_jobs(h, in[off], &h->s->pre, rx, tx, b) != 0) {
                b->n = before; /* the real pass will say what is wrong */
                return off;
            }
        }
        if (msp_reader_left(&r) > 0) {
            b->n = before; /* a record is taken whole or not at all: the next batch starts with it */
            break;
        }
        off += hdr + len;
    }
    return off;
}

/*
 * Before the records at in are processed: the reader-check hashes their containers will need, in one
 * multi-buffer batch. Only a prediction: rc_hash() uses an entry only when every input of the hash matches, so a
 * wrong guess (a container modified or deleted) costs a hash, never a wrong result.
 */
void data_prefetch(hop_t *h, const uint8_t *in, size_t n)
{
    sess_t *s = h->s;
    batch_t b;
    b.n = 0;
    msp_tlmsp_seq_t rx = h->seq, tx;
    int fwd = h->other != NULL && h->other->tx_keyed;
    if (fwd) {
        tx = h->other->seq;
    }
    s->nrc = 0;
    size_t span = collect(h, in, n, &rx, fwd ? &tx : NULL, &b);
    s->rc_end = in + (span > 0 ? span : 1);
    uint8_t hashes[MSP_TLMSP_HASH_BATCH][32];
    /* a small batch is left to rc_hash(), one hash at a time and only those really needed */
    if (b.n < MSP_TLMSP_HASH_BATCH_MIN ||
        msp_tlmsp_reader_check_hashes(&s->g, b.n, b.in, b.frag, b.len, hashes) != MSP_OK) {
        return;
    }
    for (size_t i = 0; i < b.n; i++) {
        const msp_tlmsp_mac_in_t *x = &b.in[i];
        rc_entry_t *e = &s->rc[i];
        *e = (rc_entry_t){b.frag[i], x->m_info, b.len[i], x->m_info != NULL ? x->m_info_len : 0, x->seq, x->sid,
                          x->flags,  x->type,   {0}};
        memcpy(e->hash, hashes[i], 32);
    }
    s->nrc = b.n;
}
