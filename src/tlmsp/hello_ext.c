/*
 * The TLMSP hello extensions of ETSI TS 103 523-2: 0xff06 TLMSP and 0xff07 ContextList (clause 4.3.5, as
 * tlmsp-handshake.md 1.4 cites it). The write-up gives no finer clause; the bare section numbers below are
 * tlmsp-handshake.md's.
 */
#include "reader.h"
#include "msp/tlmsp_hello.h"
#include "tlmsp_tls12.h"

#include <string.h>

#include "msp/error.h"
#include "../common/guard.h"

/* ---- parsing (tlmsp-handshake.md 3.2-3.4) ---- */

/* Address = type(1) | v16<bytes> (3.2): type 0..4, no NUL byte, at most 2048 bytes (1.8); empty is tolerated. */
static int parse_address(msp_reader_t *r, msp_tlmsp_address_t *a)
{
    msp_reader_t v;
    int ret = msp_read_u8(r, &a->type);
    if (ret == MSP_OK) {
        ret = msp_read_block(r, 2, &v);
    }
    if (ret != MSP_OK) {
        return ret;
    }
    a->bytes = v.pos;
    a->len = msp_reader_left(&v);
    if (a->type > MSP_TLMSP_ADDR_MAC || a->len > MSP_TLMSP_MAX_ADDRESS || memchr(a->bytes, 0, a->len) != NULL) {
        return MSP_ALERT_DECODE_ERROR;
    }
    return MSP_OK;
}

static int read_u8_max(msp_reader_t *r, uint8_t *v, uint8_t max)
{
    int ret = msp_read_u8(r, v);
    return ret == MSP_OK && *v > max ? MSP_ALERT_DECODE_ERROR : ret;
}

/*
 * n x (context_id | auth): auth 0 read, 1 write (1.7); 3.2 reader rules: "a repeated context id with a
 * different auth is an error" (TLMSP_context_access_add()).
 */
static int parse_access(msp_reader_t *r, uint8_t access[256])
{
    uint8_t n;
    int ret = msp_read_u8(r, &n);
    for (size_t i = 0; ret == MSP_OK && i < n; i++) {
        uint8_t ctx, auth;
        ret = msp_read_u8(r, &ctx);
        if (ret == MSP_OK) {
            ret = read_u8_max(r, &auth, MSP_TLMSP_ACCESS_WIRE_WRITE);
        }
        if (ret != MSP_OK) {
            break;
        }
        uint8_t a = auth == MSP_TLMSP_ACCESS_WIRE_WRITE ? MSP_TLMSP_ACCESS_RW : MSP_TLMSP_ACCESS_R;
        if (access[ctx] != MSP_TLMSP_ACCESS_NONE && access[ctx] != a) {
            ret = MSP_ALERT_DECODE_ERROR;
        }
        access[ctx] = a;
    }
    return ret;
}

/*
 * MiddleboxInfo (3.2): id in 0x02..0xFD (1.6), inserted 0 or 1 (2 = forbidden is rejected, 7.4),
 * transparent 0 or 1, and the ticket must be empty (resumption is not supported, 8).
 */
static int parse_info(msp_reader_t *r, msp_tlmsp_mbox_info_t *m)
{
    memset(m, 0, sizeof(*m));
    msp_reader_t ticket;
    int ret = msp_read_u8(r, &m->id);
    if (ret == MSP_OK && (m->id < MSP_TLMSP_ID_FIRST_MIDDLEBOX || m->id > MSP_TLMSP_ID_LAST_MIDDLEBOX)) {
        ret = MSP_ALERT_DECODE_ERROR;
    }
    if (ret == MSP_OK) {
        ret = parse_address(r, &m->address);
    }
    if (ret == MSP_OK) {
        ret = read_u8_max(r, &m->inserted, 1); /* 2 = forbidden is rejected on receipt */
    }
    if (ret == MSP_OK) {
        ret = read_u8_max(r, &m->transparent, 1);
    }
    if (ret == MSP_OK) {
        ret = msp_read_block(r, 2, &ticket);
    }
    if (ret == MSP_OK && msp_reader_left(&ticket) != 0) {
        ret = MSP_ALERT_DECODE_ERROR; /* resumption is not supported (8) */
    }
    MSP_GUARD(ret);
    return parse_access(r, m->access);
}

/* MiddleboxList = v16<MiddleboxInfo*> (3.2): ids unique within one list (1.6), at most 251 entries (1.10). */
static int parse_list(msp_reader_t *r, msp_tlmsp_mbox_list_t *l)
{
    msp_reader_t v;
    uint8_t seen[256] = {0};
    l->n = 0;
    int ret = msp_read_block(r, 2, &v);
    while (ret == MSP_OK && msp_reader_left(&v) > 0) {
        if (l->n == MSP_TLMSP_MAX_MIDDLEBOXES) {
            return MSP_ALERT_DECODE_ERROR;
        }
        msp_tlmsp_mbox_info_t *m = &l->m[l->n];
        ret = parse_info(&v, m);
        if (ret == MSP_OK && seen[m->id]++) {
            ret = MSP_ALERT_DECODE_ERROR;
        }
        l->n += ret == MSP_OK;
    }
    return ret;
}

/* Extension version 1.0: it "must match exactly on receipt, else decode_error" (1.1). */
static int parse_version(msp_reader_t *r)
{
    uint8_t major, minor;
    int ret = msp_read_u8(r, &major);
    if (ret == MSP_OK) {
        ret = msp_read_u8(r, &minor);
    }
    return ret == MSP_OK && (major != MSP_TLMSP_EXT_MAJOR || minor != MSP_TLMSP_EXT_MINOR) ? MSP_ALERT_DECODE_ERROR
                                                                                           : ret;
}

/* ClientHello 0xff06 (3.2): the sid, handshake_hash and discovered list only if discovery_ack = 1 (7.2). */
int msp_tlmsp_ext_client_parse(const uint8_t *p, size_t len, msp_tlmsp_ext_client_t *e)
{
    msp_reader_t r, hh;
    msp_reader_init(&r, p, len);
    e->discovered.n = 0;
    e->handshake_hash = NULL;
    e->handshake_hash_len = 0;
    e->sid = 0;
    int ret = parse_version(&r);
    if (ret == MSP_OK) {
        ret = parse_address(&r, &e->client);
    }
    if (ret == MSP_OK) {
        ret = parse_address(&r, &e->server);
    }
    if (ret == MSP_OK) {
        ret = read_u8_max(&r, &e->discovery_ack, 1);
    }
    if (ret == MSP_OK) {
        ret = parse_list(&r, &e->middleboxes);
    }
    if (ret == MSP_OK && e->discovery_ack) {
        ret = msp_read_u32(&r, &e->sid);
        if (ret == MSP_OK) {
            ret = msp_read_block(&r, 1, &hh);
        }
        if (ret == MSP_OK) {
            e->handshake_hash = hh.pos;
            e->handshake_hash_len = msp_reader_left(&hh);
            ret = parse_list(&r, &e->discovered);
        }
    }
    MSP_GUARD(ret);
    return msp_reader_expect_end(&r);
}

/* ServerHello 0xff06 (3.4): version, Sid, both addresses echoed, the server's list; no trailing bytes. */
int msp_tlmsp_ext_server_parse(const uint8_t *p, size_t len, msp_tlmsp_ext_server_t *e)
{
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    MSP_GUARD(parse_version(&r));
    MSP_GUARD(msp_read_u32(&r, &e->sid));
    MSP_GUARD(parse_address(&r, &e->client));
    MSP_GUARD(parse_address(&r, &e->server));
    MSP_GUARD(parse_list(&r, &e->middleboxes));
    return msp_reader_expect_end(&r);
}

/*
 * ContextDescription = id | audit | origin_verification (= 0) | v8<purpose> (3.3): context 0, a context
 * listed twice, audit not 0/1 or origin_verification not 0 is a decode_error.
 */
static int parse_description(msp_reader_t *r, msp_tlmsp_context_list_t *c)
{
    uint8_t id, audit, origin;
    msp_reader_t purpose;
    int ret = msp_read_u8(r, &id);
    if (ret == MSP_OK) {
        ret = read_u8_max(r, &audit, 1);
    }
    if (ret == MSP_OK) {
        ret = read_u8_max(r, &origin, 0);
    }
    if (ret == MSP_OK) {
        ret = msp_read_block(r, 1, &purpose);
    }
    if (ret == MSP_OK && (id == MSP_TLMSP_CONTEXT_CONTROL || c->present[id])) {
        ret = MSP_ALERT_DECODE_ERROR;
    }
    if (ret == MSP_OK) {
        c->present[id] = 1;
        c->audit[id] = audit;
        c->purpose[id] = purpose.pos;
        c->purpose_len[id] = (uint8_t)msp_reader_left(&purpose);
    }
    return ret;
}

/* 0xff07 ContextList = v16<ContextDescription*> (TS 103 523-2 4.3.5; 3.3). */
int msp_tlmsp_context_list_parse(const uint8_t *p, size_t len, msp_tlmsp_context_list_t *c)
{
    memset(c, 0, sizeof(*c));
    msp_reader_t r, v;
    msp_reader_init(&r, p, len);
    int ret = msp_read_block(&r, 2, &v);
    while (ret == MSP_OK && msp_reader_left(&v) > 0) {
        ret = parse_description(&v, c);
    }
    MSP_GUARD(ret);
    return msp_reader_expect_end(&r);
}

/*
 * ---- building ----
 * 3.6: emit canonical encodings (lists in order, contexts ascending), "because both the endpoint Finished
 * and the MiddleboxFinished transcripts assume identical bytes".
 */

static void put_address(msp_buf_t *b, const msp_tlmsp_address_t *a)
{
    msp_buf_put_u8(b, a->type);
    msp_tls12_put_vec(b, 2, a->bytes, a->len);
}

/* 3.2 writer rules: entries in list order, access entries in ascending context id, empty ticket. */
static void put_list(msp_buf_t *b, const msp_tlmsp_mbox_list_t *l)
{
    size_t mark;
    msp_buf_block_begin(b, 2, &mark);
    for (size_t i = 0; i < l->n; i++) {
        const msp_tlmsp_mbox_info_t *m = &l->m[i];
        msp_buf_put_u8(b, m->id);
        put_address(b, &m->address);
        msp_buf_put_u8(b, m->inserted);
        msp_buf_put_u8(b, m->transparent);
        msp_buf_put_u16(b, 0); /* empty ticket */
        /* Context 0 is implicit and a well-behaved list never sets it, but what was parsed is rebuilt. */
        size_t n = 0;
        for (int c = 0; c < 256; c++) {
            n += m->access[c] != MSP_TLMSP_ACCESS_NONE;
        }
        if (n > 255) {
            msp_buf_reserve(b, SIZE_MAX); /* the count is one byte: make the error sticky */
            return;
        }
        msp_buf_put_u8(b, (uint8_t)n);
        for (int c = 0; c < 256; c++) {
            if (m->access[c] != MSP_TLMSP_ACCESS_NONE) {
                msp_buf_put_u8(b, (uint8_t)c);
                msp_buf_put_u8(b, m->access[c] == MSP_TLMSP_ACCESS_RW ? MSP_TLMSP_ACCESS_WIRE_WRITE
                                                                      : MSP_TLMSP_ACCESS_WIRE_READ);
            }
        }
    }
    msp_buf_block_end(b, 2, mark);
}

/* ClientHello 0xff06 (3.2; the post-discovery fields, 7.2 step 4). */
int msp_tlmsp_ext_client_build(const msp_tlmsp_ext_client_t *e, msp_buf_t *out)
{
    msp_buf_put_u8(out, MSP_TLMSP_EXT_MAJOR);
    msp_buf_put_u8(out, MSP_TLMSP_EXT_MINOR);
    put_address(out, &e->client);
    put_address(out, &e->server);
    msp_buf_put_u8(out, e->discovery_ack);
    put_list(out, &e->middleboxes);
    if (e->discovery_ack) {
        msp_buf_put_u32(out, e->sid);
        msp_tls12_put_vec(out, 1, e->handshake_hash, e->handshake_hash_len);
        put_list(out, &e->discovered);
    }
    return msp_buf_error(out);
}

/* ServerHello 0xff06 (3.4). */
int msp_tlmsp_ext_server_build(const msp_tlmsp_ext_server_t *e, msp_buf_t *out)
{
    msp_buf_put_u8(out, MSP_TLMSP_EXT_MAJOR);
    msp_buf_put_u8(out, MSP_TLMSP_EXT_MINOR);
    msp_buf_put_u32(out, e->sid);
    put_address(out, &e->client);
    put_address(out, &e->server);
    put_list(out, &e->middleboxes);
    return msp_buf_error(out);
}

/* 0xff07 (3.3 writer): every present context except 0, ascending id. */
int msp_tlmsp_context_list_build(const msp_tlmsp_context_list_t *c, msp_buf_t *out)
{
    size_t mark;
    msp_buf_block_begin(out, 2, &mark);
    for (int id = 1; id < 256; id++) {
        if (!c->present[id]) {
            continue;
        }
        msp_buf_put_u8(out, (uint8_t)id);
        msp_buf_put_u8(out, c->audit[id]);
        msp_buf_put_u8(out, 0); /* origin_verification: always 0 in the reference */
        msp_tls12_put_vec(out, 1, c->purpose[id], c->purpose_len[id]);
    }
    msp_buf_block_end(out, 2, mark);
    return msp_buf_error(out);
}
