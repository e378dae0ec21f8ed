/*
 * Loss recovery (docs/ets.md "Loss recovery"): a direction that lost bytes
 * after the handshake finds its records again.
 *
 * A gap loses the record framing and the sequence number, not the keys.
 * After it, every offset whose bytes look like a TLS 1.3 record header
 * (23 3 3, a length a record can have) is a candidate; each candidate is
 * opened under sequence numbers around the estimate the bytes since the
 * first record not decrypted give (that span divided by the direction's
 * average record, tried nearest first, within what record sizes allow).
 * The first tag that verifies fixes both framing and sequence number: a
 * verified tag is the only proof, so nothing is handed out that did not
 * authenticate. Then the direction goes back to ordinary framing.
 *
 * The work is bounded per gap (MSP_ETS_DEC_RESYNC_*): candidates tried,
 * AEAD input spent on trials, bytes looked through. Over a bound the
 * connection is undecryptable, reason gap. A candidate followed by another
 * header exactly where its record ends is a real record (two false headers
 * in a row: about 2^-52): when no sequence number opens it, the key changed
 * inside the gap. The next generation's key (RFC 8446 7.2, derived from the
 * current secret) is tried on it; if that does not open it either, the
 * reason is key_update_in_gap.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dec.h"

#define HDR 5
#define REC_APPDATA 23
#define RESYNC_HOLD (2 * (HDR + MSP_ETS_DEC_MAX_RECORD)) /* bytes held while searching: a whole candidate fits */

struct dec_resync {
    uint64_t seq0;      /* sequence number of the first record not decrypted */
    uint64_t records0;  /* d->records then */
    uint64_t rec_start; /* its stream offset (before the gap when the gap cut it) */
    uint64_t known_end; /* where it ends when its header came before the gap, else rec_start */
    uint64_t from, to;  /* first lost byte, end of the last gap */
    uint64_t lost, partial, skipped;
    unsigned gaps;
    uint64_t base;                             /* stream offset of d->in.base[0] */
    size_t scan;                               /* the next offset of d->in to look at */
    unsigned candidates;                       /* tried */
    uint64_t work;                             /* AEAD input bytes spent on trials */
    uint64_t tried;                            /* stream offset + 1 of the candidate the current key failed on last */
    uint8_t rec[HDR + MSP_ETS_DEC_MAX_RECORD]; /* a trial opens a copy: decryption is in place */
};

static const char *stream_name(int dir)
{
    return dir == 0 ? "client->server" : "server->client";
}

void dec_resync_free(dec_dir_t *d)
{
    if (d->rs != NULL) {
        OPENSSL_cleanse(d->rs->rec, sizeof d->rs->rec);
        free(d->rs);
        d->rs = NULL;
    }
}

/* Drops the first n held bytes (looked through, not part of a verified record). */
static void discard(dec_dir_t *d, size_t n)
{
    dec_resync_t *rs = d->rs;
    memmove(d->in.base, d->in.base + n, d->in.len - n);
    d->in.len -= n;
    rs->base += n;
    rs->skipped += n;
    rs->scan = rs->scan > n ? rs->scan - n : 0;
}

void dec_resync_gap(msp_ets_conn_t *c, int dir, uint64_t lost)
{
    dec_dir_t *d = &c->d[dir];
    if (c->phase != PH_DONE || !d->aead.on) {
        /* inside the handshake the transcript is lost with the bytes */
        dec_fail(c, dir, MSP_ETS_R_GAP, "gap of %llu bytes in %s stream", (unsigned long long)lost, stream_name(dir));
        return;
    }
    dec_resync_t *rs = d->rs;
    if (rs == NULL) {
        rs = calloc(1, sizeof *rs);
        if (rs == NULL) {
            dec_fail(c, dir, MSP_ETS_R_INTERNAL, "out of memory");
            return;
        }
        d->rs = rs;
        rs->seq0 = d->aead.seq;
        rs->records0 = d->records;
        rs->partial = d->in.len - d->off; /* drain left at most the start of one record */
        rs->rec_start = d->stream - rs->partial;
        rs->known_end = rs->rec_start;
        if (rs->partial >= HDR) {
            const uint8_t *h = d->in.base + d->off;
            rs->known_end += HDR + ((size_t)h[3] << 8 | h[4]);
        }
        rs->from = d->stream;
        rs->skipped = 0;
    } else {
        rs->skipped += d->in.len; /* held bytes can no longer complete a record across this gap */
    }
    d->in.len = 0;
    d->off = 0;
    rs->gaps++;
    rs->lost += lost;
    d->stream += lost;
    rs->to = d->stream;
    rs->base = d->stream;
    rs->scan = 0;
}

/* Ends the search: dir is undecryptable from here on (the text says why the search gave up); the other goes on. */
static void give_up(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void give_up(msp_ets_conn_t *c, int dir, msp_ets_reason_t reason, const char *fmt, ...)
{
    dec_resync_t *rs = c->d[dir].rs;
    char why[MSP_ETS_DEC_MAX_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    dec_fail_dir(c, dir, reason, "gap of %llu bytes in %s stream at byte %llu: %s", (unsigned long long)rs->lost,
                 stream_name(dir), (unsigned long long)rs->from, why);
}

static void report(msp_ets_conn_t *c, int dir, uint64_t records, int exact, int recovered)
{
    dec_dir_t *d = &c->d[dir];
    dec_resync_t *rs = d->rs;
    char text[MSP_ETS_DEC_MAX_TEXT];
    snprintf(text, sizeof text, "gap of %llu bytes in %s stream at byte %llu: %s%llu record%s lost, %s",
             (unsigned long long)rs->lost, stream_name(dir), (unsigned long long)rs->from, exact ? "" : "at least ",
             (unsigned long long)records, records == 1 ? "" : "s",
             recovered ? "records found again" : "the stream ended before a record followed");
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_GAP,
                          .dir = dir,
                          .text = text,
                          .gap_from = rs->from,
                          .gap_to = rs->to,
                          .gap_lost = rs->lost,
                          .gap_partial = rs->partial,
                          .gap_skipped = rs->skipped,
                          .gap_count = rs->gaps,
                          .records_lost = records,
                          .records_exact = exact,
                          .recovered = recovered};
    d->records_lost += records;
    d->records = rs->records0 + records;
    dec_event(c, &ev);
}

/* Does the record at rec (len bytes, in d->in) authenticate under a with sequence number seq? */
static int opens(msp_ets_conn_t *c, dec_resync_t *rs, const dec_aead_t *a, uint64_t seq, const uint8_t *rec, size_t len)
{
    dec_aead_t t = *a;
    t.seq = seq;
    uint8_t *inner = NULL, type = 0;
    size_t n = 0;
    memcpy(rs->rec, rec, len);
    rs->work += len;
    /* all padding (no content type) still authenticated: framing is found, ordinary handling reports it */
    return dec_aead_open(c->suite, &t, rs->rec, len, &inner, &n, &type) != MSP_ALERT_BAD_RECORD_MAC;
}

/*
 * The k-th try nearest first around the estimate e: e, e+1, e-1, e+2, ... within [lo, hi]; 0 when the tries ran out.
 * lo and hi are what record sizes allow: span is k records of 1 + taglen + HDR .. HDR + max bytes each.
 */
static int nth_seq(uint64_t e, uint64_t lo, uint64_t hi, unsigned k, uint64_t *out)
{
    unsigned tried = 0;
    for (uint64_t step = 0; step <= hi - lo; step++) {
        for (int side = 0; side < (step == 0 ? 1 : 2); side++) {
            uint64_t v = side == 0 ? e + step : e - step;
            int in = side == 0 ? e + step <= hi && e + step >= lo : e >= lo + step;
            if (in && tried++ == k) {
                *out = v;
                return 1;
            }
        }
        if (e + step >= hi && e <= lo + step) {
            break;
        }
    }
    return 0;
}

/* Records the span [rs->rec_start, pos) can hold: the bounds, and the estimate from the average record. */
static void seq_bounds(const msp_ets_conn_t *c, const dec_dir_t *d, uint64_t span, uint64_t *lo, uint64_t *hi,
                       uint64_t *e)
{
    uint64_t min = HDR + 1 + c->suite->taglen, max = HDR + MSP_ETS_DEC_MAX_RECORD;
    uint64_t avg = d->enc_records > 0 ? d->enc_bytes / d->enc_records : max;
    avg = avg < min ? min : avg;
    *lo = (span + max - 1) / max;
    *hi = span / min;
    *e = (span + avg / 2) / avg;
    *e = *e < *lo ? *lo : *e > *hi ? *hi : *e;
}

/*
 * Tries one candidate under a: 1 with *seq when one verifies, 0 not, -1 over budget. Sequence numbers nearest the
 * estimate from the average record alternate with the fewest records the span can hold (a bulk transfer after small
 * records: the average says many, the truth is a few full ones).
 */
static int try_candidate(msp_ets_conn_t *c, dec_dir_t *d, const dec_aead_t *a, uint64_t base_seq, uint64_t span,
                         int from_zero, const uint8_t *rec, size_t len, uint64_t *seq)
{
    dec_resync_t *rs = d->rs;
    uint64_t lo, hi, e;
    seq_bounds(c, d, span, &lo, &hi, &e);
    if (from_zero) { /* under the next key the count restarts at the KeyUpdate somewhere in the gap */
        lo = 0;
        e = 0;
    }
    uint64_t tried[MSP_ETS_DEC_RESYNC_SEQS];
    size_t ntried = 0;
    for (unsigned k = 0; k < 2 * MSP_ETS_DEC_RESYNC_SEQS && ntried < MSP_ETS_DEC_RESYNC_SEQS; k++) {
        uint64_t n = lo + k / 2;
        if (k % 2 == 0 ? !nth_seq(e, lo, hi, k / 2, &n) : n > hi) {
            continue;
        }
        int again = 0;
        for (size_t j = 0; j < ntried && !again; j++) {
            again = tried[j] == n;
        }
        if (again) {
            continue;
        }
        tried[ntried++] = n;
        if (rs->work + len > MSP_ETS_DEC_RESYNC_WORK) {
            return -1;
        }
        if (opens(c, rs, a, base_seq + n, rec, len)) {
            *seq = base_seq + n;
            return 1;
        }
    }
    return 0;
}

/* The key after the one in use (RFC 8446 7.2): does it open the candidate? Then it becomes the direction's key. */
static int next_generation(msp_ets_conn_t *c, int dir, uint64_t span, const uint8_t *rec, size_t len, uint64_t *seq)
{
    dec_dir_t *d = &c->d[dir];
    uint8_t secret[DEC_MAX_HASH];
    dec_aead_t a = {0};
    int rc = -2;
    if (dec_expand_label(c, d->secret, "traffic upd", NULL, 0, secret, c->suite->hlen) == MSP_OK &&
        dec_aead_set(c, &a, secret) == MSP_OK) {
        rc = try_candidate(c, d, &a, 0, span, 1, rec, len, seq);
    }
    if (rc == 1) {
        memcpy(d->secret, secret, c->suite->hlen);
        EVP_CIPHER_CTX_free(d->aead.ctx);
        d->aead = a;
        d->generation++;
        char text[96];
        snprintf(text, sizeof text, "%s key update %u (inside a gap: found by trial)", dir == 0 ? "client" : "server",
                 d->generation);
        msp_ets_event_t ev = {.kind = MSP_ETS_EV_KEY_UPDATE, .dir = dir, .text = text, .generation = d->generation};
        dec_event(c, &ev);
    } else {
        EVP_CIPHER_CTX_free(a.ctx);
    }
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
}

/* The record at the start of d->in verified with sequence number seq: report the gap, go back to framing. */
static void found(msp_ets_conn_t *c, int dir, uint64_t seq, int new_key)
{
    dec_dir_t *d = &c->d[dir];
    dec_resync_t *rs = d->rs;
    /* under a new key the records before the KeyUpdate are not counted: at least the KeyUpdate and those after */
    report(c, dir, new_key ? seq + 1 : seq - rs->seq0, !new_key, 1);
    d->aead.seq = seq;
    dec_resync_free(d);
}

/* Offset of the next candidate header at or after from in d->in, or where the unscanned tail starts. */
static size_t next_candidate(const dec_dir_t *d, size_t from, size_t min_len)
{
    const uint8_t *b = d->in.base;
    size_t n = d->in.len;
    for (size_t i = from; i < n; i++) {
        const uint8_t *h = memchr(b + i, REC_APPDATA, n - i);
        if (h == NULL) {
            return n;
        }
        i = (size_t)(h - b);
        if (n - i < HDR) {
            return i; /* wait for the rest of the header */
        }
        size_t len = (size_t)h[3] << 8 | h[4];
        if (h[1] == 3 && h[2] == 3 && len >= min_len && len <= MSP_ETS_DEC_MAX_RECORD) {
            return i;
        }
    }
    return n;
}

/* Is there a plausible record header at b (n bytes held from there)? -1 when fewer than HDR bytes are held. */
static int header_at(const uint8_t *b, size_t n, size_t min_len)
{
    if (n < HDR) {
        return -1;
    }
    size_t len = (size_t)b[3] << 8 | b[4];
    return b[0] == REC_APPDATA && b[1] == 3 && b[2] == 3 && len >= min_len && len <= MSP_ETS_DEC_MAX_RECORD;
}

/*
 * The complete candidate at the start of d->in (len bytes): 1 found, 0 not this one, 2 wait for more bytes
 * (is the next header where this record ends?), -1 the search is over (failed).
 */
static int candidate(msp_ets_conn_t *c, int dir, size_t len, size_t min_len)
{
    dec_dir_t *d = &c->d[dir];
    dec_resync_t *rs = d->rs;
    const uint8_t *rec = d->in.base;
    /* after a record whose header came before the gap, count from its end: one record fewer to guess */
    int known = rs->known_end > rs->rec_start;
    uint64_t pos = rs->base, first = rs->seq0 + (uint64_t)known, seq = 0;
    uint64_t span = pos - (known ? rs->known_end : rs->rec_start);
    int rc = 0;
    if (rs->tried != pos + 1) { /* not yet tried under the current key (a wait for the next header comes back here) */
        if (++rs->candidates > MSP_ETS_DEC_RESYNC_CANDIDATES) {
            give_up(c, dir, MSP_ETS_R_GAP, "no record found again within %d candidate headers",
                    MSP_ETS_DEC_RESYNC_CANDIDATES);
            return -1;
        }
        rc = try_candidate(c, d, &d->aead, first, span, 0, rec, len, &seq);
        if (rc == 1) {
            found(c, dir, seq, 0);
            return 1;
        }
        rs->tried = pos + 1;
    }
    int framed = rc == 0 ? header_at(rec + len, d->in.len - len, min_len) : 0;
    if (framed < 0) {
        return 2;
    }
    if (framed) { /* two headers in a row are records: no sequence number opens this one, so the key changed */
        rc = next_generation(c, dir, span, rec, len, &seq);
        if (rc == 1) {
            found(c, dir, seq, 1);
            return 1;
        }
        if (rc == 0) {
            give_up(c, dir, MSP_ETS_R_KEY_UPDATE_LOST,
                    "records found again, but neither the current key (%d sequence numbers near the estimate) nor the "
                    "next generation's opens them: a KeyUpdate inside the gap, or not TLS",
                    MSP_ETS_DEC_RESYNC_SEQS);
            return -1;
        }
    }
    if (rc < 0) {
        give_up(c, dir, rc == -1 ? MSP_ETS_R_GAP : MSP_ETS_R_INTERNAL, "%s",
                rc == -1 ? "no record found again within the trial budget" : "key derivation failed");
        return -1;
    }
    return 0;
}

/* Looks through what is held; stops when a record verified, the search failed, or more bytes are needed. */
static void search(msp_ets_conn_t *c, int dir)
{
    dec_dir_t *d = &c->d[dir];
    size_t min_len = 1 + c->suite->taglen;
    while (d->rs != NULL && !c->failed && !d->dead) {
        dec_resync_t *rs = d->rs;
        if (rs->base < rs->known_end) { /* the rest of the record whose header came before the gap */
            uint64_t rest = rs->known_end - rs->base;
            discard(d, rest < d->in.len ? (size_t)rest : d->in.len);
        }
        size_t i = next_candidate(d, rs->scan, min_len);
        discard(d, i); /* nothing before i can start a record */
        if (rs->skipped > MSP_ETS_DEC_RESYNC_SCAN) {
            give_up(c, dir, MSP_ETS_R_GAP, "no record found again in the %u bytes after it", MSP_ETS_DEC_RESYNC_SCAN);
            return;
        }
        if (d->in.len < HDR) {
            return;
        }
        size_t len = HDR + ((size_t)d->in.base[3] << 8 | d->in.base[4]);
        if (d->in.len < len) {
            return; /* the earliest candidate decides first: a real record there would hide any later one */
        }
        int rc = candidate(c, dir, len, min_len);
        if (rc == 2) {
            return;
        }
        if (rc == 0) {
            rs->scan = 1;
        }
    }
}

size_t dec_resync_feed(msp_ets_conn_t *c, int dir, const uint8_t *p, size_t n)
{
    dec_dir_t *d = &c->d[dir];
    size_t room = RESYNC_HOLD - d->in.len, take = n < room ? n : room;
    if (msp_buf_put(&d->in, p, take) != MSP_OK) {
        dec_fail(c, dir, MSP_ETS_R_INTERNAL, "out of memory");
        return n;
    }
    search(c, dir);
    return take;
}

void dec_resync_end(msp_ets_conn_t *c, int dir)
{
    dec_dir_t *d = &c->d[dir];
    dec_resync_t *rs = d->rs;
    if (rs->candidates > 0) {
        give_up(c, dir, MSP_ETS_R_GAP, "the stream ended before a record after it authenticated");
        return;
    }
    /* nothing after the gap could be tried: what is held is the end of a lost record, or the start of one cut off */
    uint64_t span = d->stream - rs->rec_start, max = HDR + MSP_ETS_DEC_MAX_RECORD;
    rs->skipped += d->in.len;
    d->in.len = 0;
    report(c, dir, span > 0 ? (span + max - 1) / max : 0, 0, 0);
    dec_resync_free(d);
}
