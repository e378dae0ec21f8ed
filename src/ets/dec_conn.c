/*
 * The decryptor's connection: record framing per direction and the order in
 * which the two directions may be consumed (ets.md 7).
 *
 * Each direction is an independent byte stream, but its records can need
 * what the other direction carries: the ServerHello needs the ClientHello,
 * the client's encrypted records need the server's whole first flight
 * (EncryptedExtensions says whether 0-RTT was accepted, the server Finished
 * completes the transcript of the application keys), and a server
 * NewSessionTicket needs the client Finished (resumption_master_secret).
 * A direction whose next record cannot be handled yet keeps its bytes (up
 * to MSP_ETS_DEC_MAX_PENDING) and is drained whenever the other one moves.
 *
 * This is the ETS middlebox of ETSI TS 103 523-3 4.1-4.2: a passive
 * decryptor, real time or store-then-decrypt, holding the server's static key
 * pair (ets.md 2). Nothing of TLS 1.3 changes under ETS (4.3.1, ets.md 3.1
 * ETS-KX-1), so the framing rules cited below are RFC 8446's (ets.md 7).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dec.h"

#define REC_CCS 20
#define REC_ALERT 21
#define REC_HANDSHAKE 22
#define REC_APPDATA 23

enum { GO, WAIT, SKIP };

static const char *const reason_names[] = {
    "none",          "no_static_key", "psk_unknown", "psk_ke_unknown", "not_tls13",
    "gap",           "aead",          "finished",    "malformed",      "truncated",
    "pending_limit", "unsupported",   "internal",    "midstream",      "key_update_in_gap",
};

const char *msp_ets_reason_name(msp_ets_reason_t r)
{
    return (size_t)r < sizeof(reason_names) / sizeof(reason_names[0]) ? reason_names[r] : "unknown";
}

void dec_event(msp_ets_conn_t *c, msp_ets_event_t *ev)
{
    if (ev->text == NULL) {
        ev->text = "";
    }
    if (ev->client_random == NULL && c->phase > PH_CH1) {
        ev->client_random = c->client_random;
    }
    if (c->cb.event != NULL) {
        c->cb.event(c->arg, ev);
    }
}

/* From now on dir's input is only counted, never kept. */
static void dir_drop(dec_dir_t *d)
{
    msp_buf_free(&d->in);
    msp_buf_free(&d->hs);
    d->off = 0;
    dec_resync_free(d);
}

static void undecryptable(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void undecryptable(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, va_list ap)
{
    char text[MSP_ETS_DEC_MAX_TEXT];
    vsnprintf(text, sizeof(text), fmt, ap);
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_UNDECRYPTABLE, .dir = dir, .reason = reason, .text = text};
    dec_event(c, &ev);
}

void dec_fail(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, ...)
{
    if (c->failed) {
        return;
    }
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    undecryptable(c, dir, reason, fmt, ap);
    va_end(ap);
    dir_drop(&c->d[0]);
    dir_drop(&c->d[1]);
}

void dec_fail_dir(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, ...)
{
    dec_dir_t *d = &c->d[dir];
    if (c->failed || d->dead) {
        return;
    }
    d->dead = 1;
    c->failed = c->d[!dir].dead; /* both directions gone: nothing left to decrypt */
    va_list ap;
    va_start(ap, fmt);
    undecryptable(c, dir, reason, fmt, ap);
    va_end(ap);
    dir_drop(d);
}

void dec_keylog(msp_ets_conn_t *c, const char *label, const uint8_t *secret)
{
    if (c->cb.keylog != NULL) {
        c->cb.keylog(c->arg, label, c->client_random, secret, c->suite->hlen);
    }
}

int msp_ets_conn_new(const msp_ets_keys_t *keys, msp_ets_tickets_t *tickets, const msp_ets_conn_cb_t *cb, void *arg,
                     msp_ets_conn_t **out)
{
    *out = NULL;
    if (keys == NULL) {
        return MSP_ERR_ARGUMENT;
    }
    msp_ets_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    c->keys = keys;
    c->cr = &keys->crypto;
    c->tickets = tickets;
    if (cb != NULL) {
        c->cb = *cb;
    }
    c->arg = arg;
    for (int i = 0; i < 2; i++) {
        msp_buf_init(&c->d[i].in, MSP_ETS_DEC_MAX_PENDING + 5 + MSP_ETS_DEC_MAX_RECORD);
        msp_buf_init(&c->d[i].hs, 4 + MSP_ETS_DEC_MAX_CERT_MSG + MSP_ETS_DEC_MAX_RECORD);
    }
    msp_buf_init(&c->ch, 4 + MSP_ETS_DEC_MAX_HS_MSG);
    msp_buf_init(&c->cert, MSP_ETS_DEC_MAX_CERT_MSG);
    *out = c;
    return MSP_OK;
}

void msp_ets_conn_free(msp_ets_conn_t *c)
{
    if (c == NULL) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        msp_buf_free(&c->d[i].in);
        msp_buf_free(&c->d[i].hs);
        for (int k = 0; k < DEC_CIPHERS; k++) {
            EVP_CIPHER_CTX_free(c->d[i].aead.by[k]);
        }
        dec_resync_free(&c->d[i]);
    }
    msp_buf_free(&c->ch);
    msp_buf_free(&c->cert);
    EVP_MAC_CTX_free(c->hmac_by[0]);
    EVP_MAC_CTX_free(c->hmac_by[1]);
    EVP_MD_CTX_free(c->th);
    EVP_MD_CTX_free(c->th_tmp);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}

/* Buffers a recycled connection keeps: up to this size they serve the next one without growing again. */
#define DEC_KEEP_BUF (64 * 1024)

static void buf_recycle(msp_buf_t *b)
{
    if (b->err != MSP_OK || b->cap > DEC_KEEP_BUF) {
        size_t limit = b->limit;
        msp_buf_free(b);
        msp_buf_init(b, limit);
        return;
    }
    if (b->base != NULL) {
        OPENSSL_cleanse(b->base, b->cap); /* as msp_buf_free would: records are decrypted in place */
    }
    b->len = 0;
}

/*
 * Every per-connection field is wiped; what is kept is what a new
 * connection would allocate again: the buffers (their bytes wiped), the
 * AEAD, HMAC and digest contexts (re-keyed or re-initialised before any
 * use: aead.on and hmac_key_len are 0). The contexts still hold the last
 * keys until then, as a freed one would until OpenSSL wipes it.
 */
void dec_conn_recycle(msp_ets_conn_t *c)
{
    msp_ets_conn_t keep = {.keys = c->keys,
                           .cr = c->cr,
                           .tickets = c->tickets,
                           .cb = c->cb,
                           .arg = c->arg,
                           .hmac_by = {c->hmac_by[0], c->hmac_by[1]},
                           .th = c->th,
                           .th_tmp = c->th_tmp,
                           .ch = c->ch,
                           .cert = c->cert};
    buf_recycle(&keep.ch);
    buf_recycle(&keep.cert);
    for (int i = 0; i < 2; i++) {
        dec_resync_free(&c->d[i]); /* a search after a gap is the old connection's */
        keep.d[i].in = c->d[i].in;
        keep.d[i].hs = c->d[i].hs;
        memcpy(keep.d[i].aead.by, c->d[i].aead.by, sizeof(keep.d[i].aead.by));
        buf_recycle(&keep.d[i].in);
        buf_recycle(&keep.d[i].hs);
    }
    OPENSSL_cleanse(c, sizeof(*c));
    *c = keep;
}

int msp_ets_conn_failed(const msp_ets_conn_t *c)
{
    return c == NULL || c->failed;
}

uint64_t msp_ets_conn_records_lost(const msp_ets_conn_t *c, int dir)
{
    return c != NULL && (dir == 0 || dir == 1) ? c->d[dir].records_lost : 0;
}

/* Whole handshake messages out of a record's handshake bytes (RFC 8446 5.1: fragmented or coalesced). */
static void hs_input(msp_ets_conn_t *c, int dir, const uint8_t *p, size_t n)
{
    msp_buf_t *hs = &c->d[dir].hs;
    if (n == 0) {
        dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed handshake: a zero-length handshake record (RFC 8446 5.1)");
        return;
    }
    if (hs->len > 0 || n < 4) {
        if (msp_buf_put(hs, p, n) != MSP_OK) {
            dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed handshake: message over the size limit");
            return;
        }
        p = hs->base;
        n = hs->len;
    }
    size_t used = 0;
    while (!c->failed && n - used >= 4) {
        const uint8_t *m = p + used;
        size_t len = (size_t)m[1] << 16 | (size_t)m[2] << 8 | m[3];
        size_t max = m[0] == 11 ? MSP_ETS_DEC_MAX_CERT_MSG : MSP_ETS_DEC_MAX_HS_MSG;
        if (len > max) {
            dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed handshake: message type %u of %zu bytes (limit %zu)", m[0],
                     len, max);
            return;
        }
        if (n - used < 4 + len) {
            break;
        }
        used += 4 + len;
        if (dec_handshake(c, dir, m, 4 + len) != MSP_OK) {
            return;
        }
    }
    if (c->failed) {
        return;
    }
    if (p == hs->base) {
        memmove(hs->base, hs->base + used, n - used);
        hs->len = n - used;
    } else if (used < n && msp_buf_put(hs, p + used, n - used) != MSP_OK) {
        dec_fail(c, dir, MSP_ETS_R_INTERNAL, "out of memory");
    }
}

static void alert(msp_ets_conn_t *c, int dir, const uint8_t *p, size_t n)
{
    if (n != 2) {
        dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed alert of %zu bytes", n);
        return;
    }
    if (c->cb.plaintext != NULL) {
        c->cb.plaintext(c->arg, dir, REC_ALERT, p, n);
    }
    char text[64];
    snprintf(text, sizeof(text), "alert %u/%u from the %s", p[0], p[1], dir == 0 ? "client" : "server");
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_ALERT, .dir = dir, .text = text, .alert_level = p[0], .alert_desc = p[1]};
    dec_event(c, &ev);
}

static void encrypted(msp_ets_conn_t *c, int dir, uint8_t *rec, size_t len)
{
    dec_dir_t *d = &c->d[dir];
    uint8_t *inner = NULL, type = 0;
    size_t n = 0;
    int rc = d->aead.on ? dec_aead_open(c->suite, &d->aead, rec, len, &inner, &n, &type) : MSP_ALERT_BAD_RECORD_MAC;
    if (rc == MSP_ALERT_BAD_RECORD_MAC && dir == 0 && c->early == EARLY_SKIP) {
        return; /* 0-RTT the server rejected: it skips these records too (RFC 8446 4.2.10) */
    }
    if (rc == MSP_ALERT_BAD_RECORD_MAC) {
        dec_fail(c, dir, MSP_ETS_R_AEAD, "AEAD failure on record %llu of the %s (wrong key?)",
                 (unsigned long long)d->records, dir == 0 ? "client" : "server");
        return;
    }
    if (rc != MSP_OK) {
        dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed record %llu: no content type", (unsigned long long)d->records);
        return;
    }
    if (dir == 0 && c->early == EARLY_SKIP) {
        c->early = EARLY_NONE;
    }
    d->enc_bytes += len;
    d->enc_records++;
    if (type == REC_HANDSHAKE && n > 0) {
        hs_input(c, dir, inner, n);
    } else if (type == REC_APPDATA) {
        if (c->cb.plaintext != NULL) {
            c->cb.plaintext(c->arg, dir, REC_APPDATA, inner, n);
        }
    } else if (type == REC_ALERT) {
        alert(c, dir, inner, n);
    } else {
        dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed record %llu: inner content type %u",
                 (unsigned long long)d->records, type);
    }
}

/* May dir's next record, of outer type, be handled now? */
static int may(msp_ets_conn_t *c, int dir, uint8_t type)
{
    int ph = c->phase;
    if (type == REC_CCS || (type == REC_ALERT && !c->d[dir].aead.on)) {
        return GO;
    }
    if (dir == 0 && type == REC_HANDSHAKE) {
        return ph == PH_CH1 || ph == PH_CH2 ? GO : ph == PH_SH1 || ph == PH_SH2 ? WAIT : SKIP;
    }
    if (dir == 0) {
        /* 0-RTT sent before a HelloRetryRequest is dropped by the server as well */
        return ph >= PH_CFLIGHT ? GO : ph == PH_CH2 ? SKIP : ph == PH_CH1 ? SKIP + 1 : WAIT;
    }
    if (type == REC_HANDSHAKE) {
        return ph == PH_SH1 || ph == PH_SH2 ? GO : ph == PH_CH1 || ph == PH_CH2 ? WAIT : SKIP;
    }
    return ph == PH_SFLIGHT || ph == PH_DONE ? GO : ph == PH_CFLIGHT ? WAIT : SKIP + 1;
}

/* ets.md 7 "Inputs": dummy change_cipher_spec records can appear between handshake records: ignore. */
static void record(msp_ets_conn_t *c, int dir, uint8_t *rec, size_t len)
{
    c->d[dir].records++;
    switch (rec[0]) {
    case REC_CCS:
        break; /* middlebox compatibility (RFC 8446 D.4) */
    case REC_ALERT:
        alert(c, dir, rec + 5, len - 5);
        break;
    case REC_HANDSHAKE:
        hs_input(c, dir, rec + 5, len - 5);
        break;
    default:
        encrypted(c, dir, rec, len);
        break;
    }
}

/* Handles dir's complete records as far as the other direction allows; nonzero when something moved. */
static int drain(msp_ets_conn_t *c, int dir)
{
    dec_dir_t *d = &c->d[dir];
    int moved = 0;
    if (d->rs != NULL || d->dead) {
        return 0; /* no framing until the search after a gap finds a record, none after it gave up */
    }
    while (!c->failed && d->in.len - d->off >= 5) {
        uint8_t *rec = d->in.base + d->off;
        size_t len = 5 + ((size_t)rec[3] << 8 | rec[4]);
        if (rec[0] < REC_CCS || rec[0] > REC_APPDATA || len > 5 + MSP_ETS_DEC_MAX_RECORD) {
            dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed record %llu: type %u, length %zu (not TLS?)",
                     (unsigned long long)d->records, rec[0], len - 5);
            break;
        }
        if (d->in.len - d->off < len) {
            break;
        }
        int m = may(c, dir, rec[0]);
        if (m == WAIT) {
            break;
        }
        if (m == SKIP + 1) {
            dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed: encrypted record %llu before the %s",
                     (unsigned long long)d->records, dir == 0 ? "ClientHello" : "ServerHello");
            break;
        }
        if (m == SKIP && rec[0] == REC_HANDSHAKE) {
            dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed: plaintext handshake record %llu out of order",
                     (unsigned long long)d->records);
            break;
        }
        if (m == GO) {
            record(c, dir, rec, len);
        } else {
            d->records++;
        }
        d->off += len;
        moved = 1;
    }
    if (c->failed) {
        d->off = 0;
    } else if (d->off > 0) {
        memmove(d->in.base, d->in.base + d->off, d->in.len - d->off);
        d->in.len -= d->off;
        d->off = 0;
    }
    return moved;
}

static void pump(msp_ets_conn_t *c)
{
    int moved;
    do {
        moved = drain(c, 0);
        moved |= drain(c, 1);
    } while (moved && !c->failed);
}

/* Bytes still missing for the next record of d (at least 1). */
static size_t want(const dec_dir_t *d)
{
    size_t have = d->in.len - d->off;
    if (have < 5) {
        return 5 - have;
    }
    const uint8_t *h = d->in.base + d->off;
    size_t len = 5 + ((size_t)h[3] << 8 | h[4]);
    return len > have ? len - have : 0;
}

int msp_ets_conn_feed(msp_ets_conn_t *c, int dir, const uint8_t *p, size_t n)
{
    if (c == NULL || (dir != 0 && dir != 1) || (p == NULL && n > 0)) {
        return MSP_ERR_ARGUMENT;
    }
    dec_dir_t *d = &c->d[dir];
    d->stream += n;
    while (n > 0 && !c->failed && !d->dead) {
        if (d->rs != NULL) {
            size_t used = dec_resync_feed(c, dir, p, n);
            p += used;
            n -= used;
            if (d->rs == NULL) {
                pump(c); /* found: the record that verified and what follows it */
            }
            continue;
        }
        size_t w = want(d);
        /* a whole record still there means it waits for the other direction: keep everything (bounded) */
        size_t take = w == 0 ? n : w < n ? w : n;
        if (w == 0 && d->in.len + take > MSP_ETS_DEC_MAX_PENDING) {
            dec_fail(c, dir, MSP_ETS_R_PENDING_LIMIT, "more than %d bytes of the %s wait for the other direction",
                     MSP_ETS_DEC_MAX_PENDING, dir == 0 ? "client" : "server");
            break;
        }
        if (msp_buf_put(&d->in, p, take) != MSP_OK) {
            dec_fail(c, dir, MSP_ETS_R_INTERNAL, "out of memory");
            return MSP_ERR_NO_MEMORY;
        }
        p += take;
        n -= take;
        pump(c);
    }
    return MSP_OK;
}

int msp_ets_conn_gap(msp_ets_conn_t *c, int dir, uint64_t lost)
{
    if (c == NULL || (dir != 0 && dir != 1)) {
        return MSP_ERR_ARGUMENT;
    }
    if (lost > 0 && !c->failed && !c->d[dir].dead) {
        dec_resync_gap(c, dir, lost);
    }
    return MSP_OK;
}

int msp_ets_conn_end(msp_ets_conn_t *c)
{
    if (c == NULL) {
        return MSP_ERR_ARGUMENT;
    }
    if (c->phase < PH_DONE) {
        dec_fail(c, -1, MSP_ETS_R_TRUNCATED, "truncated: connection ended inside the handshake");
    }
    for (int i = 0; i < 2; i++) {
        if (c->d[i].rs != NULL) {
            dec_resync_end(c, i);
        }
        if (!c->failed && c->d[i].in.len - c->d[i].off > 0) {
            dec_fail(c, i, MSP_ETS_R_TRUNCATED, "truncated: the %s stream ended inside a record",
                     i == 0 ? "client" : "server");
        }
    }
    return MSP_OK;
}
