/*
 * ClientHello and ServerHello (RFC 5246 7.4.1.2-3, tlmsp-handshake.md 3.1,
 * 3.4), their extension lists, and the handshake message header. TLMSP
 * (ETSI TS 103 523-2) keeps the TLS 1.2 hellos; the write-up gives no clause
 * of the standard for them.
 */
#include "tlmsp_tls12.h"

#include "msp/error.h"
#include "../common/guard.h"

#define MAX_SESSION_ID 32

/* A view of a whole sub-reader (the field it was split off for). */
static void view(const msp_reader_t *sub, const uint8_t **p, size_t *len)
{
    *p = sub->pos;
    *len = msp_reader_left(sub);
}

/* version | random(32) | v8<session_id>, the start both hellos share. */
static int read_head(msp_reader_t *r, uint16_t *version, uint8_t random[32], const uint8_t **sid, size_t *sid_len)
{
    msp_reader_t s;
    int ret = msp_read_u16(r, version);
    if (ret == MSP_OK) {
        ret = msp_read_copy(r, random, 32);
    }
    if (ret == MSP_OK) {
        ret = msp_read_block(r, 1, &s);
    }
    if (ret != MSP_OK) {
        return ret;
    }
    view(&s, sid, sid_len);
    return *sid_len <= MAX_SESSION_ID ? MSP_OK : MSP_ALERT_DECODE_ERROR;
}

static int read_one_ext(msp_reader_t *list, msp_tls12_ext_t *ext, size_t next)
{
    msp_reader_t data;
    msp_tls12_ext_t *e = &ext[next];
    int ret = next < MSP_TLS12_MAX_EXTENSIONS ? msp_read_u16(list, &e->type) : MSP_ALERT_DECODE_ERROR;
    if (ret == MSP_OK) {
        ret = msp_read_block(list, 2, &data);
    }
    if (ret != MSP_OK) {
        return ret;
    }
    view(&data, &e->data, &e->len);
    /* RFC 5246 7.4.1.4: an extension type must not appear twice. */
    return msp_tls12_find_ext(ext, next, e->type) == NULL ? MSP_OK : MSP_ALERT_DECODE_ERROR;
}

/* The optional extensions block: absent (nothing left) or v16< ext* > ending the body. */
static int read_extensions(msp_reader_t *r, msp_tls12_ext_t *ext, size_t *next)
{
    msp_reader_t list;
    *next = 0;
    if (msp_reader_left(r) == 0) {
        return MSP_OK;
    }
    int ret = msp_read_block(r, 2, &list);
    while (ret == MSP_OK && msp_reader_left(&list) > 0) {
        ret = read_one_ext(&list, ext, *next);
        if (ret == MSP_OK) {
            (*next)++;
        }
    }
    MSP_GUARD(ret);
    return msp_reader_expect_end(r);
}

static int read_suites(msp_reader_t *r, msp_tls12_client_hello_t *m)
{
    msp_reader_t s;
    int ret = msp_read_block(r, 2, &s);
    if (ret != MSP_OK) {
        return ret;
    }
    view(&s, &m->cipher_suites, &m->cipher_suites_len);
    return m->cipher_suites_len > 0 && m->cipher_suites_len % 2 == 0 ? MSP_OK : MSP_ALERT_DECODE_ERROR;
}

/* The compression methods must offer null (0), as OpenSSL demands (decode_error there too). */
static int read_compression(msp_reader_t *r, msp_tls12_client_hello_t *m)
{
    msp_reader_t c;
    int ret = msp_read_block(r, 1, &c);
    if (ret != MSP_OK) {
        return ret;
    }
    view(&c, &m->compression, &m->compression_len);
    for (size_t i = 0; i < m->compression_len; i++) {
        if (m->compression[i] == 0) {
            return MSP_OK;
        }
    }
    return MSP_ALERT_DECODE_ERROR;
}

/* RFC 5246 7.4.1.2; under TLMSP client_version 0x0303, no supported_versions (tlmsp-handshake.md 1.1, 3.1). */
int msp_tls12_client_hello_parse(const uint8_t *p, size_t len, msp_tls12_client_hello_t *m)
{
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    m->next = 0;
    MSP_GUARD(read_head(&r, &m->version, m->random, &m->session_id, &m->session_id_len));
    MSP_GUARD(read_suites(&r, m));
    MSP_GUARD(read_compression(&r, m));
    return read_extensions(&r, m->ext, &m->next);
}

/* RFC 5246 7.4.1.3; its 0xff06 extension is tlmsp-handshake.md 3.4. */
int msp_tls12_server_hello_parse(const uint8_t *p, size_t len, msp_tls12_server_hello_t *m)
{
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    m->next = 0;
    MSP_GUARD(read_head(&r, &m->version, m->random, &m->session_id, &m->session_id_len));
    MSP_GUARD(msp_read_u16(&r, &m->cipher_suite));
    MSP_GUARD(msp_read_u8(&r, &m->compression));
    return read_extensions(&r, m->ext, &m->next);
}

void msp_tls12_put_vec(msp_buf_t *out, size_t prefix, const uint8_t *p, size_t len)
{
    size_t mark;
    msp_buf_block_begin(out, prefix, &mark);
    msp_buf_put(out, p, len);
    msp_buf_block_end(out, prefix, mark);
}

static void put_head(msp_buf_t *out, uint16_t version, const uint8_t random[32], const uint8_t *sid, size_t sid_len)
{
    msp_buf_put_u16(out, version);
    msp_buf_put(out, random, 32);
    msp_tls12_put_vec(out, 1, sid, sid_len);
}

static void put_extensions(msp_buf_t *out, const msp_tls12_ext_t *ext, size_t n)
{
    size_t mark;
    if (n == 0) {
        return; /* no block at all, so that an extension-less hello rebuilds as it came */
    }
    msp_buf_block_begin(out, 2, &mark);
    for (size_t i = 0; i < n; i++) {
        msp_buf_put_u16(out, ext[i].type);
        msp_tls12_put_vec(out, 2, ext[i].data, ext[i].len);
    }
    msp_buf_block_end(out, 2, mark);
}

int msp_tls12_client_hello_build(const msp_tls12_client_hello_t *m, msp_buf_t *out)
{
    put_head(out, m->version, m->random, m->session_id, m->session_id_len);
    msp_tls12_put_vec(out, 2, m->cipher_suites, m->cipher_suites_len);
    msp_tls12_put_vec(out, 1, m->compression, m->compression_len);
    put_extensions(out, m->ext, m->next);
    return msp_buf_error(out);
}

int msp_tls12_server_hello_build(const msp_tls12_server_hello_t *m, msp_buf_t *out)
{
    put_head(out, m->version, m->random, m->session_id, m->session_id_len);
    msp_buf_put_u16(out, m->cipher_suite);
    msp_buf_put_u8(out, m->compression);
    put_extensions(out, m->ext, m->next);
    return msp_buf_error(out);
}

const msp_tls12_ext_t *msp_tls12_find_ext(const msp_tls12_ext_t *ext, size_t n, uint16_t type)
{
    for (size_t i = 0; i < n; i++) {
        if (ext[i].type == type) {
            return &ext[i];
        }
    }
    return NULL;
}

int msp_tls12_u16_list_has(const uint8_t *list, size_t len, uint16_t v)
{
    for (size_t i = 0; i + 1 < len; i += 2) {
        if (((uint16_t)(list[i] << 8) | list[i + 1]) == v) {
            return 1;
        }
    }
    return 0;
}

int msp_tls12_ext_u16_list(const msp_tls12_ext_t *e, const uint8_t **list, size_t *list_len)
{
    msp_reader_t r, l;
    msp_reader_init(&r, e->data, e->len);
    int ret = msp_read_block(&r, 2, &l);
    if (ret == MSP_OK) {
        ret = msp_reader_expect_end(&r);
    }
    if (ret != MSP_OK) {
        return ret;
    }
    view(&l, list, list_len);
    return *list_len > 0 && *list_len % 2 == 0 ? MSP_OK : MSP_ALERT_DECODE_ERROR;
}

int msp_tls12_hs_begin(msp_buf_t *out, uint8_t type, size_t *mark)
{
    msp_buf_put_u8(out, type);
    msp_buf_block_begin(out, 3, mark);
    return msp_buf_error(out);
}

int msp_tls12_hs_end(msp_buf_t *out, size_t mark)
{
    msp_buf_block_end(out, 3, mark);
    return msp_buf_error(out);
}
