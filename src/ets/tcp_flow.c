/*
 * The flow table and per-direction reassembly (policy in ets_tcp.h).
 *
 * Flows live in a hash table (chained, key-independent of direction) and on
 * one list ordered by last activity, so idle expiry and eviction look at the
 * head only. Out-of-order data of a direction is a sorted list of
 * non-overlapping segments, all strictly ahead of the next byte to deliver
 * and within the window of it; offsets from that byte therefore compare as
 * plain unsigned numbers.
 *
 * ETSI TS 103 523-3 4.1-4.2: the middlebox "gets a passive copy of the packets"
 * (ets.md 2); decrypting needs "both TCP directions reassembled" (ets.md 7).
 * The standard says nothing about TCP itself: no clause applies below.
 *
 * Two small memories serve flows whose beginning was not seen: the
 * connections closed by FIN or RST shortly before (a direct-mapped cache
 * indexed by the same hash as the table: one slot looked at, only for a
 * segment with data that found no flow), and the ports seen listening (a
 * bitmap of the 65,536 ports, set by SYNs and SYN-ACKs).
 */
#include "msp/ets_tcp.h"

#include <stdlib.h>
#include <string.h>

#include "msp/error.h"

#define MAX_SEGMENT_LEN (1u << 24) /* one segment's payload: far above any IP packet, far below 2^31 */
#define MIN_BUCKETS 16u

typedef struct seg {
    struct seg *prev, *next;
    uint32_t seq;
    uint32_t len;
    uint8_t data[];
} seg_t;

typedef struct half {
    int have_next; /* the stream's position is known */
    int syn;
    int fin;
    uint32_t isn;
    uint32_t next; /* the next byte to deliver */
    uint32_t fin_seq;
    seg_t *head, *tail;
    size_t nsegs;
    size_t buffered;
} half_t;

struct msp_tcp_flow {
    msp_tcp_flow_t *hnext;
    msp_tcp_flow_t *lprev, *lnext;
    size_t bucket;
    uint64_t seen; /* table clock at the last packet: keeps the activity list sorted */
    msp_tcp_flow_info_t info;
    half_t half[2];
    void *user;
    int ignored;
};

/* A connection closed by FIN or RST, for its late segments. */
typedef struct closed {
    uint64_t at; /* t->now when it closed */
    uint8_t used;
    uint8_t ip_version;
    uint8_t have_next[2];
    uint8_t addr[2][16]; /* addr[0] the client, as in its info */
    uint16_t port[2];
    uint32_t next[2]; /* where each direction stood */
} closed_t;

struct msp_tcp {
    msp_tcp_config_t cfg;
    msp_tcp_callbacks_t cb;
    void *ctx;
    msp_tcp_flow_t **buckets;
    size_t nbuckets; /* a power of two */
    msp_tcp_flow_t *lru_head, *lru_tail;
    uint64_t now; /* the latest packet timestamp seen */
    msp_tcp_stats_t st;
    closed_t *closed; /* NULL when max_closed or late_us is 0 */
    size_t nclosed;   /* a power of two */
    uint8_t listening[65536 / 8];
};

/* A segment being delivered straight from the packet: [seq, seq+clen) captured, up to seq+wlen announced. */
typedef struct cur {
    uint32_t seq;
    const uint8_t *p;
    uint32_t clen;
    uint32_t wlen;
} cur_t;

/* The id of the n-th flow opened (n >= 1). */
static uint64_t flow_id(const msp_tcp_config_t *cfg, uint64_t n)
{
    return (cfg->id_first != 0 ? cfg->id_first : 1) + (n - 1) * (cfg->id_step != 0 ? cfg->id_step : 1);
}

void msp_tcp_config_default(msp_tcp_config_t *cfg)
{
    cfg->max_flows = MSP_TCP_MAX_FLOWS_DEFAULT;
    cfg->window = MSP_TCP_WINDOW_DEFAULT;
    cfg->budget = MSP_TCP_BUDGET_DEFAULT;
    cfg->max_segs = MSP_TCP_MAX_SEGS_DEFAULT;
    cfg->idle_us = MSP_TCP_IDLE_DEFAULT_US;
    cfg->hash_key = 0;
    cfg->max_closed = MSP_TCP_CLOSED_DEFAULT;
    cfg->late_us = MSP_TCP_LATE_DEFAULT_US;
    cfg->id_first = 1;
    cfg->id_step = 1;
}

const char *msp_tcp_close_reason_name(msp_tcp_close_reason_t r)
{
    static const char *const names[] = {"fin", "rst", "idle", "end_of_input", "evicted", "reused"};
    return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

const msp_tcp_flow_info_t *msp_tcp_flow_info(const msp_tcp_flow_t *flow)
{
    return &flow->info;
}

void msp_tcp_flow_set_user(msp_tcp_flow_t *flow, void *user)
{
    flow->user = user;
}

void *msp_tcp_flow_user(const msp_tcp_flow_t *flow)
{
    return flow->user;
}

const msp_tcp_stats_t *msp_tcp_stats(const msp_tcp_t *t)
{
    return &t->st;
}

int msp_tcp_new(const msp_tcp_config_t *cfg, const msp_tcp_callbacks_t *cb, void *ctx, msp_tcp_t **out)
{
    *out = NULL;
    msp_tcp_config_t def;
    if (cfg == NULL) {
        msp_tcp_config_default(&def);
        cfg = &def;
    }
    if (cfg->max_flows < 1 || cfg->window < 1 || cfg->window > (1u << 30) || cfg->max_segs < 1 ||
        cfg->max_closed > MSP_TCP_MAX_CLOSED) {
        return MSP_ERR_ARGUMENT;
    }
    msp_tcp_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    t->cfg = *cfg;
    if (cb != NULL) {
        t->cb = *cb;
    }
    t->ctx = ctx;
    t->nbuckets = MIN_BUCKETS;
    while (t->nbuckets < cfg->max_flows && t->nbuckets < MSP_TCP_MAX_BUCKETS) {
        t->nbuckets <<= 1;
    }
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    if (cfg->max_closed > 0 && cfg->late_us > 0) {
        t->nclosed = 1;
        while (t->nclosed < cfg->max_closed) {
            t->nclosed <<= 1;
        }
        t->closed = calloc(t->nclosed, sizeof(*t->closed));
    }
    if (t->buckets == NULL || (t->nclosed > 0 && t->closed == NULL)) {
        free(t->buckets);
        free(t->closed);
        free(t);
        return MSP_ERR_NO_MEMORY;
    }
    *out = t;
    return MSP_OK;
}

/* ---- hashing: the same value for both directions ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t endpoint_hash(uint64_t key, const uint8_t *addr, size_t alen, uint16_t port)
{
    uint64_t h = key ^ ((uint64_t)port << 8) ^ alen;
    for (size_t i = 0; i < alen; i += 8) {
        uint64_t w = 0;
        memcpy(&w, addr + i, alen - i < 8 ? alen - i : 8);
        h = mix(h ^ w);
    }
    return mix(h);
}

static size_t alen_of(int ip)
{
    return ip == 4 ? 4 : 16;
}

static uint64_t pair_hash(const msp_tcp_t *t, int ip, const uint8_t *a, uint16_t pa, const uint8_t *b, uint16_t pb)
{
    size_t alen = alen_of(ip);
    return mix(endpoint_hash(t->cfg.hash_key, a, alen, pa) + endpoint_hash(t->cfg.hash_key, b, alen, pb));
}

static uint64_t hash_of(const msp_tcp_t *t, const msp_tcp_pkt_t *pkt)
{
    return pair_hash(t, pkt->ip_version, pkt->src, pkt->sport, pkt->dst, pkt->dport);
}

/* The direction of pkt in f, or -1 when it is another flow. */
static int match(const msp_tcp_flow_t *f, const msp_tcp_pkt_t *pkt)
{
    const msp_tcp_flow_info_t *in = &f->info;
    if (in->ip_version != pkt->ip_version) {
        return -1;
    }
    size_t alen = alen_of(pkt->ip_version);
    for (int d = 0; d < 2; d++) {
        if (in->port[d] == pkt->sport && in->port[1 - d] == pkt->dport && memcmp(in->addr[d], pkt->src, alen) == 0 &&
            memcmp(in->addr[1 - d], pkt->dst, alen) == 0) {
            return d;
        }
    }
    return -1;
}

static msp_tcp_flow_t *lookup(const msp_tcp_t *t, const msp_tcp_pkt_t *pkt, size_t bucket, int *dir)
{
    for (msp_tcp_flow_t *f = t->buckets[bucket]; f != NULL; f = f->hnext) {
        *dir = match(f, pkt);
        if (*dir >= 0) {
            return f;
        }
    }
    return NULL;
}

/* ---- the activity list ---- */

static void lru_unlink(msp_tcp_t *t, msp_tcp_flow_t *f)
{
    if (f->lprev != NULL) {
        f->lprev->lnext = f->lnext;
    } else {
        t->lru_head = f->lnext;
    }
    if (f->lnext != NULL) {
        f->lnext->lprev = f->lprev;
    } else {
        t->lru_tail = f->lprev;
    }
    f->lprev = f->lnext = NULL;
}

static void lru_append(msp_tcp_t *t, msp_tcp_flow_t *f)
{
    f->lprev = t->lru_tail;
    f->lnext = NULL;
    if (t->lru_tail != NULL) {
        t->lru_tail->lnext = f;
    } else {
        t->lru_head = f;
    }
    t->lru_tail = f;
}

static void touch(msp_tcp_t *t, msp_tcp_flow_t *f, uint64_t ts)
{
    f->seen = t->now;
    f->info.last_ts_us = ts;
    if (t->lru_tail != f) {
        lru_unlink(t, f);
        lru_append(t, f);
    }
}

/* ---- delivery ---- */

static void deliver(msp_tcp_t *t, msp_tcp_flow_t *f, int dir, const uint8_t *p, uint32_t n, uint64_t ts)
{
    f->half[dir].next += n;
    if (f->ignored || n == 0) {
        return;
    }
    t->st.delivered += n;
    f->info.bytes[dir] += n;
    if (t->cb.data != NULL) {
        t->cb.data(t->ctx, f, dir, p, n, ts);
    }
}

static void report_gap(msp_tcp_t *t, msp_tcp_flow_t *f, int dir, uint32_t n, uint64_t ts)
{
    f->half[dir].next += n;
    if (f->ignored || n == 0) {
        return;
    }
    t->st.gaps++;
    t->st.gap_bytes += n;
    f->info.lost[dir] += n;
    if (t->cb.gap != NULL) {
        t->cb.gap(t->ctx, f, dir, n, ts);
    }
}

static void seg_unlink_free(msp_tcp_t *t, half_t *h, seg_t *x)
{
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        h->head = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    } else {
        h->tail = x->prev;
    }
    h->nsegs--;
    h->buffered -= x->len;
    t->st.buffered -= x->len;
    free(x);
}

static void drop_segments(msp_tcp_t *t, half_t *h)
{
    while (h->head != NULL) {
        seg_unlink_free(t, h, h->head);
    }
}

/*
 * Delivers everything contiguous at the stream's position: buffered
 * segments first where they start (they arrived first, so they win), the
 * current packet's bytes (or its uncaptured tail, as a gap) in between.
 */
static void advance(msp_tcp_t *t, msp_tcp_flow_t *f, int dir, const cur_t *c, uint64_t ts)
{
    half_t *h = &f->half[dir];
    for (;;) {
        if (f->ignored) { /* the data callback may have lost interest */
            drop_segments(t, h);
            return;
        }
        seg_t *x = h->head;
        if (x != NULL && (int32_t)(x->seq - h->next) <= 0) {
            uint32_t skip = h->next - x->seq;
            if (skip < x->len) {
                deliver(t, f, dir, x->data + skip, x->len - skip, ts);
            }
            seg_unlink_free(t, h, x);
            continue;
        }
        uint32_t off = c != NULL ? h->next - c->seq : 0;
        if (c == NULL || (int32_t)off < 0 || off >= c->wlen) {
            return;
        }
        uint32_t room = x != NULL ? x->seq - h->next : UINT32_MAX;
        if (off < c->clen) {
            uint32_t n = c->clen - off;
            deliver(t, f, dir, c->p + off, n < room ? n : room, ts);
        } else {
            uint32_t n = c->wlen - off;
            report_gap(t, f, dir, n < room ? n : room, ts);
        }
    }
}

/* Gives up the first hole of a direction: reports it and delivers what follows it. */
static void skip_hole(msp_tcp_t *t, msp_tcp_flow_t *f, int dir, uint32_t upto, uint64_t ts)
{
    half_t *h = &f->half[dir];
    uint32_t to = h->head != NULL ? h->head->seq : upto;
    report_gap(t, f, dir, to - h->next, ts);
    advance(t, f, dir, NULL, ts);
}

/* Everything held and every known hole up to the FIN, reported at close. */
static void flush(msp_tcp_t *t, msp_tcp_flow_t *f, int dir)
{
    half_t *h = &f->half[dir];
    uint64_t ts = f->info.last_ts_us;
    while (h->head != NULL) {
        skip_hole(t, f, dir, 0, ts);
    }
    if (h->fin && h->have_next && (int32_t)(h->fin_seq - h->next) > 0) {
        report_gap(t, f, dir, h->fin_seq - h->next, ts);
    }
}

/*
 * Places [seq, seq+len) where it is not covered yet (first copy wins). With
 * commit 0 it only counts the pieces and bytes it would add.
 */
static int place(msp_tcp_t *t, half_t *h, uint32_t seq, const uint8_t *p, uint32_t len, int commit, size_t *pieces,
                 size_t *bytes)
{
    uint32_t base = h->next;
    uint32_t cur = seq - base, end = cur + len;
    seg_t *x = h->head;
    if (h->tail != NULL && h->tail->seq - base + h->tail->len <= cur) {
        x = NULL; /* the usual case: beyond everything held */
    }
    *pieces = 0;
    *bytes = 0;
    while (cur < end) {
        uint32_t xs = x != NULL ? x->seq - base : end;
        uint32_t xe = x != NULL ? xs + x->len : end;
        if (x != NULL && xe <= cur) {
            x = x->next;
            continue;
        }
        if (xs > cur) {
            uint32_t n = (xs < end ? xs : end) - cur;
            (*pieces)++;
            *bytes += n;
            if (commit) {
                seg_t *s = malloc(sizeof(*s) + n);
                if (s == NULL) {
                    return MSP_ERR_NO_MEMORY;
                }
                s->seq = base + cur;
                s->len = n;
                memcpy(s->data, p + (cur - (seq - base)), n);
                s->next = x;
                s->prev = x != NULL ? x->prev : h->tail;
                *(s->prev != NULL ? &s->prev->next : &h->head) = s;
                *(x != NULL ? &x->prev : &h->tail) = s;
                h->nsegs++;
                h->buffered += n;
                t->st.buffered += n;
            }
        }
        cur = xe;
        if (x != NULL) {
            x = x->next;
        }
    }
    if (t->st.buffered > t->st.buffered_peak) {
        t->st.buffered_peak = t->st.buffered;
    }
    return MSP_OK;
}

static int fits(msp_tcp_t *t, half_t *h, uint32_t seq, uint32_t len)
{
    if ((uint64_t)(uint32_t)(seq - h->next) + len > t->cfg.window) {
        return 0;
    }
    size_t pieces, bytes;
    place(t, h, seq, NULL, len, 0, &pieces, &bytes);
    return h->nsegs + pieces <= t->cfg.max_segs && t->st.buffered + bytes <= t->cfg.budget;
}

static int add_data(msp_tcp_t *t, msp_tcp_flow_t *f, int dir, cur_t c, uint64_t ts)
{
    half_t *h = &f->half[dir];
    if ((int32_t)(c.seq + c.wlen - h->next) <= 0) {
        t->st.duplicate += c.clen; /* old: a retransmission or a keep-alive */
        return MSP_OK;
    }
    if ((int32_t)(c.seq - h->next) < 0) {
        uint32_t skip = h->next - c.seq;
        uint32_t cut = skip < c.clen ? skip : c.clen;
        t->st.duplicate += cut;
        c.p += cut;
        c.clen -= cut;
        c.wlen -= skip;
        c.seq = h->next;
    }
    while (c.seq != h->next && !f->ignored && !fits(t, h, c.seq, c.clen)) {
        skip_hole(t, f, dir, c.seq, ts);
        if ((int32_t)(c.seq - h->next) < 0) {
            /* what we just delivered from the buffer overlapped this segment's start: first copy won */
            return add_data(t, f, dir, c, ts);
        }
    }
    if (f->ignored) {
        return MSP_OK;
    }
    if (c.seq == h->next) {
        advance(t, f, dir, &c, ts);
        return MSP_OK;
    }
    size_t pieces, bytes;
    return place(t, h, c.seq, c.p, c.clen, 1, &pieces, &bytes);
}

/* ---- flows ---- */

/* The slot of a closed connection with these endpoints (the hash's high bits: the low ones pick the bucket). */
static closed_t *closed_slot(const msp_tcp_t *t, uint64_t h)
{
    return &t->closed[(h >> 32) & (t->nclosed - 1)];
}

/* A connection that ended by FIN or RST: its late segments are to be recognised (ets_tcp.h, late segments). */
static void remember_closed(msp_tcp_t *t, const msp_tcp_flow_t *f)
{
    const msp_tcp_flow_info_t *in = &f->info;
    closed_t *c = closed_slot(t, pair_hash(t, in->ip_version, in->addr[0], in->port[0], in->addr[1], in->port[1]));
    c->used = 1;
    c->at = t->now;
    c->ip_version = in->ip_version;
    memcpy(c->addr, in->addr, sizeof(c->addr));
    memcpy(c->port, in->port, sizeof(c->port));
    for (int d = 0; d < 2; d++) {
        c->have_next[d] = (uint8_t)f->half[d].have_next;
        c->next[d] = f->half[d].next;
    }
}

/*
 * Whether pkt belongs to a connection closed shortly before: same endpoints,
 * within late_us, and its sequence number within the window of where that
 * direction stood (a direction never seen cannot be checked: the endpoints
 * decide).
 */
static int is_late(const msp_tcp_t *t, const msp_tcp_pkt_t *pkt, uint64_t h)
{
    const closed_t *c = closed_slot(t, h);
    if (!c->used || c->ip_version != pkt->ip_version || t->now - c->at > t->cfg.late_us) {
        return 0;
    }
    size_t alen = alen_of(pkt->ip_version);
    for (int d = 0; d < 2; d++) {
        if (c->port[d] == pkt->sport && c->port[1 - d] == pkt->dport && memcmp(c->addr[d], pkt->src, alen) == 0 &&
            memcmp(c->addr[1 - d], pkt->dst, alen) == 0) {
            int32_t off = (int32_t)(pkt->seq - c->next[d]);
            return !c->have_next[d] || (off > -(int32_t)t->cfg.window && off < (int32_t)t->cfg.window);
        }
    }
    return 0;
}

static void close_flow(msp_tcp_t *t, msp_tcp_flow_t *f, msp_tcp_close_reason_t reason)
{
    for (int d = 0; d < 2; d++) {
        if (!f->ignored) {
            flush(t, f, d);
        }
        drop_segments(t, &f->half[d]);
    }
    if (reason == MSP_TCP_CLOSE_EVICTED) {
        t->st.evicted++;
    } else if (reason == MSP_TCP_CLOSE_IDLE) {
        t->st.idle++;
    }
    if (t->closed != NULL && (reason == MSP_TCP_CLOSE_FIN || reason == MSP_TCP_CLOSE_RST)) {
        remember_closed(t, f);
    }
    if (t->cb.flow_close != NULL) {
        t->cb.flow_close(t->ctx, f, reason);
    }
    msp_tcp_flow_t **pp = &t->buckets[f->bucket];
    while (*pp != f) {
        pp = &(*pp)->hnext;
    }
    *pp = f->hnext;
    lru_unlink(t, f);
    t->st.flows_open--;
    free(f);
}

void msp_tcp_flow_ignore(msp_tcp_flow_t *flow)
{
    flow->ignored = 1; /* its segments go at the next packet or at close: a callback may be iterating them */
}

/* How a flow's roles were decided (ets_tcp.h: direction 0). */
enum { ROLES_SYN, ROLES_FIRST_SENDER, ROLES_PORT };

static msp_tcp_flow_t *open_flow(msp_tcp_t *t, const msp_tcp_pkt_t *pkt, size_t bucket, int sender_is_client, int roles,
                                 uint64_t ts)
{
    if (t->st.flows_open >= t->cfg.max_flows) {
        close_flow(t, t->lru_head, MSP_TCP_CLOSE_EVICTED);
    }
    msp_tcp_flow_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    size_t alen = alen_of(pkt->ip_version);
    int c = sender_is_client ? 0 : 1;
    f->bucket = bucket;
    f->info.id = flow_id(&t->cfg, ++t->st.flows);
    f->info.ip_version = pkt->ip_version;
    memcpy(f->info.addr[c], pkt->src, alen);
    memcpy(f->info.addr[1 - c], pkt->dst, alen);
    f->info.port[c] = pkt->sport;
    f->info.port[1 - c] = pkt->dport;
    f->info.first_ts_us = ts;
    f->info.initiator_guessed = roles != ROLES_SYN;
    f->info.roles_from_port = roles == ROLES_PORT;
    f->hnext = t->buckets[bucket];
    t->buckets[bucket] = f;
    lru_append(t, f);
    t->st.flows_open++;
    if (t->cb.flow_open != NULL) {
        t->cb.flow_open(t->ctx, f, &f->info);
    }
    return f;
}

static void expire_idle(msp_tcp_t *t, uint64_t ts)
{
    if (ts > t->now) {
        t->now = ts;
        t->st.last_ts_us = ts; /* the summary line's time */
    }
    while (t->cfg.idle_us != 0 && t->lru_head != NULL && t->now - t->lru_head->seen > t->cfg.idle_us) {
        close_flow(t, t->lru_head, MSP_TCP_CLOSE_IDLE);
    }
}

static int listening(const msp_tcp_t *t, uint16_t port)
{
    return (t->listening[port >> 3] >> (port & 7)) & 1;
}

/*
 * A SYN goes to a listening port, a SYN-ACK comes from one. A SYN alone
 * counts too (a tap may see one direction only); a port scan in the capture
 * marks the ports it probed, and where both sides of a flow then "listen"
 * the first sender decides, as without this memory.
 */
static void note_listener(msp_tcp_t *t, const msp_tcp_pkt_t *pkt)
{
    uint16_t port = pkt->flags & MSP_TCP_ACK ? pkt->sport : pkt->dport;
    t->listening[port >> 3] |= (uint8_t)(1u << (port & 7));
}

/* A flow whose start was not seen: its server is the side whose port listens, if exactly one does. */
static msp_tcp_flow_t *open_guessed(msp_tcp_t *t, const msp_tcp_pkt_t *pkt, size_t bucket, uint64_t ts, int *dir)
{
    int src = listening(t, pkt->sport), dst = listening(t, pkt->dport);
    int roles = src != dst ? ROLES_PORT : ROLES_FIRST_SENDER;
    *dir = src && !dst ? 1 : 0;
    return open_flow(t, pkt, bucket, *dir == 0, roles, ts);
}

/* Finds the packet's flow, opening or replacing one as SYNs and payload dictate; NULL: nothing to do. */
static msp_tcp_flow_t *flow_for(msp_tcp_t *t, const msp_tcp_pkt_t *pkt, size_t wlen, uint64_t ts, int *dir, int *nomem)
{
    uint64_t h = hash_of(t, pkt);
    size_t bucket = (size_t)(h & (t->nbuckets - 1));
    msp_tcp_flow_t *f = lookup(t, pkt, bucket, dir);
    int syn = (pkt->flags & MSP_TCP_SYN) != 0, ack = (pkt->flags & MSP_TCP_ACK) != 0;
    if (syn) {
        note_listener(t, pkt);
    }
    if (f != NULL && syn && !ack && !(f->half[*dir].syn && f->half[*dir].isn == pkt->seq)) {
        close_flow(t, f, MSP_TCP_CLOSE_REUSED); /* a new connection on the same ports */
        f = NULL;
    }
    if (f != NULL) {
        return f;
    }
    if (pkt->flags & MSP_TCP_RST) {
        t->st.no_flow++;
        return NULL;
    }
    if (syn) {
        f = open_flow(t, pkt, bucket, !ack, ROLES_SYN, ts); /* a SYN-ACK's receiver is the client */
        *dir = ack ? 1 : 0;
    } else if (wlen > 0 && t->closed != NULL && is_late(t, pkt, h)) {
        t->st.late++;
        return NULL;
    } else if (wlen > 0) {
        f = open_guessed(t, pkt, bucket, ts, dir);
    } else {
        t->st.no_flow++;
        return NULL;
    }
    *nomem = f == NULL;
    return f;
}

int msp_tcp_segment(msp_tcp_t *t, const msp_tcp_pkt_t *pkt, uint64_t ts_us)
{
    size_t wlen = pkt->wire_len > pkt->payload_len ? pkt->wire_len : pkt->payload_len;
    if ((pkt->ip_version != 4 && pkt->ip_version != 6) || wlen > MAX_SEGMENT_LEN) {
        return MSP_ERR_ARGUMENT;
    }
    t->st.tcp++;
    expire_idle(t, ts_us);
    int dir = 0, nomem = 0;
    msp_tcp_flow_t *f = flow_for(t, pkt, wlen, ts_us, &dir, &nomem);
    if (f == NULL) {
        return nomem ? MSP_ERR_NO_MEMORY : MSP_OK;
    }
    touch(t, f, ts_us);
    half_t *h = &f->half[dir];
    uint32_t data_seq = pkt->seq;
    if (pkt->flags & MSP_TCP_SYN) {
        if (!h->syn) {
            h->syn = 1;
            h->isn = pkt->seq;
        }
        data_seq++; /* the SYN takes one sequence number */
        if (!h->have_next) {
            h->have_next = 1;
            h->next = data_seq;
        }
    }
    if (pkt->flags & MSP_TCP_RST) {
        close_flow(t, f, MSP_TCP_CLOSE_RST);
        return MSP_OK;
    }
    int ret = MSP_OK;
    if (wlen > 0) {
        if (!h->have_next) {
            h->have_next = 1;
            h->next = data_seq;
        }
        if (f->ignored) {
            drop_segments(t, h);
        } else {
            cur_t c = {data_seq, pkt->payload, (uint32_t)pkt->payload_len, (uint32_t)wlen};
            ret = add_data(t, f, dir, c, ts_us);
        }
    }
    if (pkt->flags & MSP_TCP_FIN) {
        h->fin = 1;
        h->fin_seq = data_seq + (uint32_t)wlen;
        if (!h->have_next) {
            h->have_next = 1;
            h->next = h->fin_seq;
        }
    }
    if (f->half[0].fin && f->half[1].fin) {
        close_flow(t, f, MSP_TCP_CLOSE_FIN);
    }
    return ret;
}

int msp_tcp_packet(msp_tcp_t *t, int link, const uint8_t *p, size_t caplen, size_t len, uint64_t ts_us)
{
    msp_tcp_pkt_t pkt;
    t->st.packets++;
    t->st.bytes += caplen;
    if (caplen < len) {
        t->st.truncated++;
    }
    switch (msp_tcp_decode(link, p, caplen, len, &pkt)) {
    case MSP_TCP_OK:
        return msp_tcp_segment(t, &pkt, ts_us);
    case MSP_TCP_NOT_TCP:
        t->st.non_tcp++;
        return MSP_OK;
    case MSP_TCP_FRAGMENT:
        t->st.fragments++;
        return MSP_OK;
    case MSP_TCP_UNKNOWN_LINK:
        return MSP_ERR_ARGUMENT;
    default:
        t->st.malformed++;
        return MSP_OK;
    }
}

void msp_tcp_finish(msp_tcp_t *t)
{
    while (t->lru_head != NULL) {
        close_flow(t, t->lru_head, MSP_TCP_CLOSE_END);
    }
}

void msp_tcp_free(msp_tcp_t *t)
{
    if (t == NULL) {
        return;
    }
    while (t->lru_head != NULL) {
        msp_tcp_flow_t *f = t->lru_head;
        lru_unlink(t, f);
        drop_segments(t, &f->half[0]);
        drop_segments(t, &f->half[1]);
        free(f);
    }
    free(t->buckets);
    free(t->closed);
    free(t);
}
