/*
 * The record layer of one TLMSP hop (tlmsp-records.md 2, 3, 10): framing,
 * the Sid, context-0 protection after ChangeCipherSpec, handshake message
 * reassembly, alerts in the three framings of tlmsp-handshake.md 7.5, and
 * the sequence counters.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "msp/error.h"
#include "reader.h"

#define HDR 5

void hop_init(hop_t *h, sess_t *s, const hop_ops_t *ops, void *owner, int dir_tx, uint8_t peer_ep)
{
    memset(h, 0, sizeof(*h));
    h->s = s;
    h->ops = ops;
    h->owner = owner;
    h->dir_tx = dir_tx;
    h->peer_ep = peer_ep;
    h->rx_len = 0;
    /* Every TLMSP entity writes one handshake message per record, and middleboxes cannot take anything else
     * (1.10, 4.2): a message that does not end in its record is cut, never a fragment. */
    h->whole = 1;
    msp_buf_init(&h->hs, MAX_HS_MSG);
}

/* Buffers an idle hop need not keep: the partial-record buffer once empty, the reassembly buffer's memory. */
static void hop_trim(hop_t *h)
{
    if (h->rx != NULL && h->rx_len == 0) {
        free(h->rx); /* records as they came over the wire: nothing to wipe */
        h->rx = NULL;
    }
    if (h->hs.len == 0 && h->hs.base != NULL) {
        msp_buf_free(&h->hs);
        msp_buf_init(&h->hs, MAX_HS_MSG);
    }
}

void hop_free(hop_t *h)
{
    h->rx_len = 0;
    hop_trim(h);
    msp_buf_free(&h->hs);
}

/* The receive path of this hop: the entities between us and the peer endpoint, neighbour first (6.4). */
int hop_seq_path(hop_t *h, const uint8_t *path, size_t n)
{
    return msp_tlmsp_seq_init(&h->seq, h->s->self, path, n);
}

static const uint8_t *ctx0_key(const sess_t *s, int dir)
{
    return dir == DIR_C2S ? s->keys[s->key_at[0]].client_reader_enc : s->keys[s->key_at[0]].server_reader_enc;
}

/* One record: header, Sid once this hop has one, payload (sealed for a keyed context-0 record). */
int hop_write(hop_t *h, uint8_t type, const uint8_t *p, size_t len)
{
    int seal = h->tx_keyed && (type == MSP_TLMSP_CT_HANDSHAKE || type == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC);
    size_t body = len + (h->tx_sid ? 4 : 0) + (seal ? MSP_TLMSP_FRAGMENT_OVERHEAD : 0);
    if (body > MSP_TLMSP_MAX_RECORD_PAYLOAD) {
        return MSP_ERR_LIMIT;
    }
    uint64_t seq = msp_tlmsp_seq_tx(&h->seq, 0);
    msp_buf_put_u8(h->out, type);
    msp_buf_put_u16(h->out, MSP_TLMSP_WIRE_VERSION);
    msp_buf_put_u16(h->out, (uint16_t)body);
    if (h->tx_sid) {
        msp_buf_put_u32(h->out, h->s->sid);
    }
    if (!seal) {
        msp_buf_put(h->out, p, len);
        return msp_buf_error(h->out);
    }
    uint8_t nonce[12];
    sess_nonce(h->s, nonce);
    if (msp_buf_reserve(h->out, len + MSP_TLMSP_FRAGMENT_OVERHEAD) != MSP_OK) {
        return msp_buf_error(h->out);
    }
    int ret = msp_tlmsp_record0_seal(&h->s->g, ctx0_key(h->s, h->dir_tx), seq, type, h->s->sid, nonce, p, len,
                                     h->out->base + h->out->len);
    if (ret == MSP_OK) {
        h->out->len += len + MSP_TLMSP_FRAGMENT_OVERHEAD;
    }
    return ret;
}

/* Every handshake message in its own record, as the reference writes and as its middleboxes need (4.2, 1.10). */
int hop_write_msg(hop_t *h, const uint8_t *msg, size_t len)
{
    return hop_write(h, MSP_TLMSP_CT_HANDSHAKE, msg, len);
}

/* ChangeCipherSpec, then this direction is keyed and its counter restarts (6.5, 10.1). */
int hop_write_ccs(hop_t *h)
{
    static const uint8_t one = 1;
    int ret = hop_write(h, MSP_TLMSP_CT_CHANGE_CIPHER_SPEC, &one, 1);
    h->tx_keyed = 1;
    msp_tlmsp_seq_reset_tx(&h->seq);
    return ret;
}

/* An alert in whatever framing the hop is ready for (7.5, records 4.7 and 10.2). */
int hop_alert(hop_t *h, uint8_t ctx, uint8_t level, uint8_t desc)
{
    if (h->tx_keyed) {
        uint8_t a[2] = {level, desc};
        return data_send(h, MSP_TLMSP_CT_ALERT, ctx, a, 2);
    }
    uint8_t rec[16];
    size_t n = 0;
    if (h->alert_container) {
        int mbox = h->s->self != MSP_TLMSP_ID_CLIENT && h->s->self != MSP_TLMSP_ID_SERVER;
        rec[n++] = 0;
        rec[n++] = mbox ? 0x80 : 0; /* a middlebox's own container is INSERTED with M_INFO (records 4.2) */
        rec[n++] = 0;
        if (mbox) {
            rec[n++] = h->s->self;
            rec[n++] = 0;
        }
        rec[n++] = 0;
        rec[n++] = 2;
    }
    rec[n++] = level;
    rec[n++] = desc;
    return hop_write(h, MSP_TLMSP_CT_ALERT, rec, n);
}

/* Sends the alert an error stands for (local errors go out as internal_error) and kills the hop. */
int hop_fail(hop_t *h, int err)
{
    if (h->dead) {
        return err;
    }
    h->dead = 1;
    h->closed = 1;
    if (!MSP_ERR_IS_PEER_ALERT(err) && h->out != NULL) {
        int desc = err > 0 && err < 256 ? err : MSP_ALERT_INTERNAL_ERROR;
        hop_alert(h, 0, 2, (uint8_t)desc);
    }
    return err;
}

/* ---- receiving ---- */

static int handshake_bytes(hop_t *h, const uint8_t *p, size_t n)
{
    int ret = msp_buf_put(&h->hs, p, n) == MSP_OK ? MSP_OK : MSP_ALERT_RECORD_OVERFLOW;
    while (ret == MSP_OK && h->hs.len >= 4) {
        size_t body = (size_t)h->hs.base[1] << 16 | (size_t)h->hs.base[2] << 8 | h->hs.base[3];
        if (4 + body > MAX_HS_MSG) {
            return MSP_ALERT_RECORD_OVERFLOW;
        }
        if (h->hs.len < 4 + body) {
            break;
        }
        ret = h->ops->handshake(h, h->hs.base[0], h->hs.base + 4, body, h->hs.base, 4 + body);
        if (h->dead) {
            return ret;
        }
        memmove(h->hs.base, h->hs.base + 4 + body, h->hs.len - 4 - body);
        h->hs.len -= 4 + body;
    }
    /* See hop_init: a message that does not end in its record was cut. */
    return ret == MSP_OK && h->whole && h->hs.len > 0 ? MSP_ALERT_DECODE_ERROR : ret;
}

/* Alerts before alert_container is set are plain (2 bytes); the 3-byte TLMSPAlert is accepted (10.2). */
int plain_alert(hop_t *h, const uint8_t *p, size_t n)
{
    if (n != 2 && n != 3) {
        return MSP_ALERT_DECODE_ERROR;
    }
    uint8_t level = p[n - 2], desc = p[n - 1];
    h->closed = 1;
    if (level == 1 && desc != 0) {
        return MSP_OK;
    }
    return MSP_ERR_CLASS_PEER_ALERT + desc;
}

static int containers(hop_t *h, uint8_t type, const uint8_t *p, size_t n)
{
    msp_reader_t r;
    msp_reader_init(&r, p, n);
    int ret = MSP_OK;
    while (ret == MSP_OK && msp_reader_left(&r) > 0 && !h->dead) {
        msp_tlmsp_container_t *c = &h->s->cont;
        ret = msp_tlmsp_container_parse(&r, h->rx_keyed, c);
        if (ret != MSP_OK) {
            break;
        }
        size_t plain_len = 0;
        uint8_t author = 0;
        uint8_t *plain = sess_scratch(h->s, c->fragment_len); /* the plaintext is shorter than its fragment */
        if (plain == NULL) {
            return MSP_ERR_NO_MEMORY;
        }
        ret = data_check(h, type, c, plain, &plain_len, &author);
        if (ret == MSP_OK) {
            ret = h->ops->container(h, type, c, plain, plain_len, author);
        }
    }
    return ret;
}

static int ccs(hop_t *h, const uint8_t *p, size_t n)
{
    /* equivalent mutant: '||' -> '&&' #3: context0() calls ccs() only unkeyed; a leftover in hs kills the hop */
    if (n != 1 || p[0] != 1 || h->rx_keyed || h->hs.len != 0) {
        return MSP_ALERT_UNEXPECTED_MESSAGE;
    }
    int ret = h->ops->ccs(h);
    if (ret == MSP_OK) {
        h->rx_keyed = 1;
        msp_tlmsp_seq_reset_rx(&h->seq);
    }
    return ret;
}

static int context0(hop_t *h, uint8_t type, const uint8_t *p, size_t n)
{
    msp_tlmsp_seq_rx_record(&h->seq);
    if (!h->rx_keyed) {
        return type == MSP_TLMSP_CT_HANDSHAKE ? handshake_bytes(h, p, n) : ccs(h, p, n);
    }
    if (type != MSP_TLMSP_CT_HANDSHAKE || n < MSP_TLMSP_FRAGMENT_OVERHEAD) {
        return MSP_ALERT_UNEXPECTED_MESSAGE;
    }
    uint64_t seq;
    if (msp_tlmsp_seq_of(&h->seq, p[0], &seq) != MSP_OK) {
        return MSP_ALERT_ILLEGAL_PARAMETER; /* the author byte names nobody on our path (records 5.3) */
    }
    uint8_t *plain = sess_scratch(h->s, n);
    MSP_ENSURE(plain != NULL, MSP_ERR_NO_MEMORY);
    /* records 3.3: a context-0 record that does not open is bad_record_mac (RFC 5246 7.2.2) */
    MSP_ENSURE(msp_tlmsp_record0_open(&h->s->g, ctx0_key(h->s, !h->dir_tx), seq, type, h->s->sid, p, n, plain) ==
                   MSP_OK,
               MSP_ALERT_BAD_RECORD_MAC);
    return handshake_bytes(h, plain, n - MSP_TLMSP_FRAGMENT_OVERHEAD);
}

static int record(hop_t *h, uint8_t type, const uint8_t *p, size_t n)
{
    if (h->rx_sid) {
        if (n < 4) {
            return MSP_ALERT_DECODE_ERROR;
        }
        uint32_t sid = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (sid != h->s->sid) {
            return MSP_ALERT_DECODE_ERROR; /* records 2.2 */
        }
        p += 4;
        n -= 4;
    }
    switch (type) {
    case MSP_TLMSP_CT_HANDSHAKE:
    case MSP_TLMSP_CT_CHANGE_CIPHER_SPEC:
        return context0(h, type, p, n);
    case MSP_TLMSP_CT_ALERT:
        if (!h->alert_container || n == 2 || n == 3) {
            return h->ops->alert != NULL ? h->ops->alert(h, p, n) : plain_alert(h, p, n);
        }
        return containers(h, type, p, n);
    case MSP_TLMSP_CT_APPLICATION_DATA:
        return h->rx_keyed && h->hs.len == 0 ? containers(h, type, p, n) : MSP_ALERT_UNEXPECTED_MESSAGE;
    default:
        return MSP_ALERT_UNEXPECTED_MESSAGE;
    }
}

/* A whole record at p (at least HDR bytes): its total length, 0 if incomplete, or an alert. */
static int record_len(const uint8_t *p, size_t avail, size_t *total)
{
    if (avail < HDR) {
        *total = 0;
        return MSP_OK;
    }
    if (p[1] != 0x03 || p[2] > 0x03) {
        return MSP_ALERT_PROTOCOL_VERSION;
    }
    size_t n = (size_t)p[3] << 8 | p[4];
    *total = avail >= HDR + n ? HDR + n : 0;
    return MSP_OK;
}

/* Takes as much of in as completes the buffered partial record; *used says how much. */
static int fill(hop_t *h, const uint8_t *in, size_t n, size_t *used)
{
    if (h->rx == NULL && (h->rx = malloc(HDR + 65535)) == NULL) {
        *used = 0;
        return MSP_ERR_NO_MEMORY;
    }
    size_t want = HDR;
    if (h->rx_len >= HDR) {
        want = HDR + ((size_t)h->rx[3] << 8 | h->rx[4]);
    }
    size_t take = want - h->rx_len < n ? want - h->rx_len : n;
    memcpy(h->rx + h->rx_len, in, take);
    h->rx_len += take;
    *used = take;
    return MSP_OK;
}

int hop_input(hop_t *h, const uint8_t *in, size_t *inlen)
{
    size_t off = 0, n = *inlen;
    int ret = h->dead ? MSP_ALERT_UNEXPECTED_MESSAGE : MSP_OK;
    while (ret == MSP_OK && off < n && !h->dead) {
        size_t total, used;
        if (h->rx_len > 0 || n - off < HDR) {
            MSP_GUARD_GOTO(ret, fill(h, in + off, n - off, &used), out);
            off += used;
            ret = record_len(h->rx, h->rx_len, &total);
            if (ret == MSP_OK && h->rx_len == HDR && total == 0) {
                continue; /* header complete: fill again for the body */
            }
            if (ret == MSP_OK && total > 0) {
                h->rx_len = 0;
                ret = record(h, h->rx[0], h->rx + HDR, total - HDR);
            }
            continue;
        }
        ret = record_len(in + off, n - off, &total);
        if (ret == MSP_OK && total == 0) {
            MSP_GUARD_GOTO(ret, fill(h, in + off, n - off, &used), out);
            off += used;
            continue;
        }
        if (ret == MSP_OK) {
            const uint8_t *rec = in + off;
            if (h->rx_keyed && (h->s->rc_end == NULL || rec >= h->s->rc_end)) {
                data_prefetch(h, rec, n - off); /* the hashes of the records ahead, in one batch */
            }
            off += total;
            ret = record(h, rec[0], rec + HDR, total - HDR);
        }
    }
out:
    *inlen = off;
    h->s->nrc = 0; /* the batch pointed into this input */
    h->s->rc_end = NULL;
    hop_trim(h);
    sess_scratch_drop(h->s); /* an idle session keeps neither */
    return ret == MSP_OK || h->dead ? ret : hop_fail(h, ret);
}
