/*
 * The new TLMSP handshake messages of ETSI TS 103 523-2 (types 41-51). The write-up gives no clause numbers
 * of the standard for them; the bare section numbers below are tlmsp-handshake.md's (5.1-5.7).
 */
#include "tlmsp_mbox_msg.h"

#include <string.h>

#include "msp/error.h"
#include "reader.h"
#include "tlmsp_tls12.h"
#include "sigalg.h"
#include "../common/guard.h"

#define CURVE_TYPE_NAMED 3

/* A middlebox id is 0x02..0xFD (1.6). */
static int read_mbox_id(msp_reader_t *r, uint8_t *id)
{
    int ret = msp_read_u8(r, id);
    if (ret == MSP_OK && (*id < MSP_TLMSP_ID_FIRST_MIDDLEBOX || *id > MSP_TLMSP_ID_LAST_MIDDLEBOX)) {
        ret = MSP_ALERT_DECODE_ERROR;
    }
    return ret;
}

/* An empty vector of the given prefix length (5.1: session_id, cipher_suites, compression). */
static int read_empty(msp_reader_t *r, size_t prefix)
{
    msp_reader_t v;
    int ret = msp_read_block(r, prefix, &v);
    return ret == MSP_OK && msp_reader_left(&v) != 0 ? MSP_ALERT_DECODE_ERROR : ret;
}

/*
 * MiddleboxHello (41, 5.1): id | version | to_client_random | to_server_random; session_id, cipher_suites and
 * compression "must be empty"; no extensions, no trailing bytes.
 */
int msp_tlmsp_mbox_hello_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_hello_t *m)
{
    msp_reader_t r;
    uint16_t version;
    msp_reader_init(&r, p, len);
    /* The version is written as 0x0303 but not checked on receipt (5.1); we do the same. */
    MSP_GUARD(read_mbox_id(&r, &m->id));
    MSP_GUARD(msp_read_u16(&r, &version));
    MSP_GUARD(msp_read_copy(&r, m->to_client_random, 32));
    MSP_GUARD(msp_read_copy(&r, m->to_server_random, 32));
    MSP_GUARD(read_empty(&r, 1));
    MSP_GUARD(read_empty(&r, 2));
    MSP_GUARD(read_empty(&r, 1));
    return msp_reader_expect_end(&r);
}

/* 5.1: body length 71, version 0x0303. */
int msp_tlmsp_mbox_hello_build(const msp_tlmsp_mbox_hello_t *m, msp_buf_t *out)
{
    msp_buf_put_u8(out, m->id);
    msp_buf_put_u16(out, MSP_TLMSP_WIRE_VERSION);
    msp_buf_put(out, m->to_client_random, 32);
    msp_buf_put(out, m->to_server_random, 32);
    msp_buf_put_u8(out, 0);
    msp_buf_put_u16(out, 0);
    msp_buf_put_u8(out, 0);
    return msp_buf_error(out);
}

_Static_assert(MSP_TLMSP_MAX_CERTS == MSP_TLS12_MAX_CERTS, "a middlebox chain fits a TLS chain");

/* 5.2: id | a TLS Certificate body; the two chain structs share one layout and one parser. */
int msp_tlmsp_mbox_cert_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_cert_t *m)
{
    msp_reader_t r;
    msp_tls12_certificate_t chain;
    msp_reader_init(&r, p, len);
    m->ncerts = 0;
    int ret = read_mbox_id(&r, &m->id);
    if (ret == MSP_OK) {
        ret = msp_tls12_certificate_parse(r.pos, msp_reader_left(&r), &chain);
    }
    if (ret == MSP_OK && chain.ncerts == 0) {
        ret = MSP_ALERT_DECODE_ERROR; /* 5.2: the list must be non-empty */
    }
    for (size_t i = 0; ret == MSP_OK && i < chain.ncerts; i++) {
        m->der[i] = chain.der[i];
        m->der_len[i] = chain.der_len[i];
    }
    m->ncerts = ret == MSP_OK ? chain.ncerts : 0;
    return ret;
}

/* MiddleboxCert (42, 5.2). */
int msp_tlmsp_mbox_cert_build(const msp_tlmsp_mbox_cert_t *m, msp_buf_t *out)
{
    msp_tls12_certificate_t chain;
    chain.ncerts = m->ncerts < MSP_TLS12_MAX_CERTS ? m->ncerts : MSP_TLS12_MAX_CERTS;
    for (size_t i = 0; i < chain.ncerts; i++) {
        chain.der[i] = m->der[i];
        chain.der_len[i] = m->der_len[i];
    }
    msp_buf_put_u8(out, m->id);
    return msp_tls12_certificate_build(&chain, out);
}

/* ServerECDHParams | sigalg | v16<signature>: the params bytes are kept whole because they are signed. */
static int parse_half(msp_reader_t *r, msp_tlmsp_kex_half_t *h)
{
    const uint8_t *start = r->pos;
    uint8_t curve_type;
    msp_reader_t point, sig;
    int ret = msp_read_u8(r, &curve_type);
    if (ret == MSP_OK && curve_type != CURVE_TYPE_NAMED) {
        ret = MSP_ALERT_DECODE_ERROR;
    }
    if (ret == MSP_OK) {
        ret = msp_read_u16(r, &h->group);
    }
    if (ret == MSP_OK) {
        ret = msp_read_block(r, 1, &point);
    }
    if (ret == MSP_OK && msp_reader_left(&point) == 0) {
        ret = MSP_ALERT_DECODE_ERROR;
    }
    if (ret == MSP_OK) {
        h->params = start;
        h->params_len = (size_t)(r->pos - start);
        h->point = point.pos;
        h->point_len = msp_reader_left(&point);
        ret = msp_read_u16(r, &h->sigalg);
    }
    if (ret == MSP_OK) {
        ret = msp_read_block(r, 2, &sig);
    }
    if (ret == MSP_OK) {
        h->signature = sig.pos;
        h->signature_len = msp_reader_left(&sig);
    }
    return ret;
}

/* MiddleboxKeyExchange (45, 5.3): id | params_to_client | sig | params_to_server | sig. */
int msp_tlmsp_mbox_kex_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_kex_t *m)
{
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    MSP_GUARD(read_mbox_id(&r, &m->id));
    MSP_GUARD(parse_half(&r, &m->to_client));
    MSP_GUARD(parse_half(&r, &m->to_server));
    return msp_reader_expect_end(&r);
}

/* ServerECDHParams: curve_type | group | v8<point>, the bytes that are also signed. */
static void put_params(msp_buf_t *out, const msp_tlmsp_kex_half_t *h)
{
    msp_tls12_ecdh_params(h->group, h->point, h->point_len, out);
}

/* A half as a ServerKeyExchange body: params | sigalg | v16<signature>. */
static void put_half(msp_buf_t *out, const msp_tlmsp_kex_half_t *h)
{
    put_params(out, h);
    msp_buf_put_u16(out, h->sigalg);
    msp_tls12_put_vec(out, 2, h->signature, h->signature_len);
}

int msp_tlmsp_mbox_kex_build(const msp_tlmsp_mbox_kex_t *m, msp_buf_t *out)
{
    msp_buf_put_u8(out, m->id);
    put_half(out, &m->to_client);
    put_half(out, &m->to_server);
    return msp_buf_error(out);
}

int msp_tlmsp_mbox_kex_signed_data(const msp_tlmsp_mbox_hello_t *hello, const msp_tlmsp_kex_half_t *half,
                                   msp_buf_t *out)
{
    /* 5.3: both halves are signed over the same randoms, to_client first. */
    msp_buf_put(out, hello->to_client_random, 32);
    msp_buf_put(out, hello->to_server_random, 32);
    put_params(out, half);
    return msp_buf_error(out);
}

/* MiddleboxHelloDone (46, 5.4): body = id. */
int msp_tlmsp_mbox_hello_done_parse(const uint8_t *p, size_t len, uint8_t *id)
{
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    MSP_GUARD(read_mbox_id(&r, id));
    return msp_reader_expect_end(&r);
}

int msp_tlmsp_mbox_hello_done_build(uint8_t id, msp_buf_t *out)
{
    return msp_buf_put_u8(out, id);
}

/* MiddleboxFinished (51, 5.7): mbox_id | verify_data; "verify_data length must be 12". */
int msp_tlmsp_mbox_finished_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_finished_t *m)
{
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    MSP_GUARD(read_mbox_id(&r, &m->id));
    MSP_GUARD(msp_read_copy(&r, m->verify_data, sizeof(m->verify_data)));
    return msp_reader_expect_end(&r);
}

int msp_tlmsp_mbox_finished_build(const msp_tlmsp_mbox_finished_t *m, msp_buf_t *out)
{
    msp_buf_put_u8(out, m->id);
    msp_buf_put(out, m->verify_data, sizeof(m->verify_data));
    return msp_buf_error(out);
}

/* ---- signatures (5.3): the shared sigalg table and core ---- */

int msp_tlmsp_mbox_kex_sign(EVP_PKEY *key, uint16_t sigalg, const msp_tlmsp_mbox_hello_t *hello,
                            const msp_tlmsp_kex_half_t *half, uint8_t *sig, size_t *sig_len)
{
    if (!msp_sigalg_fits(key, sigalg)) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    uint8_t tbs[64 + 4 + 256];
    msp_buf_t b;
    msp_buf_init_fixed(&b, tbs, sizeof(tbs));
    if (msp_tlmsp_mbox_kex_signed_data(hello, half, &b) != MSP_OK) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    const msp_iov_t part = {tbs, b.len};
    return msp_sigalg_sign(key, sigalg, &part, 1, sig, sig_len);
}

/*
 * 5.3: endpoints accept any sigalg that matches the certificate key; "a new implementation talking to reference
 * middleboxes must accept SHA-1 signatures here".
 */
int msp_tlmsp_mbox_kex_verify(EVP_PKEY *key, const msp_tlmsp_mbox_hello_t *hello, const msp_tlmsp_kex_half_t *half)
{
    if (!msp_sigalg_fits(key, half->sigalg)) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    uint8_t tbs[64 + 4 + 256];
    msp_buf_t b;
    msp_buf_init_fixed(&b, tbs, sizeof(tbs));
    if (msp_tlmsp_mbox_kex_signed_data(hello, half, &b) != MSP_OK) {
        return MSP_ALERT_DECODE_ERROR; /* a point longer than any group's */
    }
    const msp_iov_t part = {tbs, b.len};
    return msp_sigalg_verify(key, half->sigalg, &part, 1, half->signature, half->signature_len);
}
