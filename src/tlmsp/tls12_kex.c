/*
 * Certificate, the ECDHE ServerKeyExchange and ClientKeyExchange (RFC 5246
 * 7.4.2-3, 7.4.7; RFC 8422 5.4, 5.7), their signatures through the one
 * sigalg table (sigalg.h), ephemeral keys and the choice of a sigalg
 * (tlmsp-handshake.md 1.9). The write-up gives no ETSI TS 103 523-2 clause
 * for these TLS 1.2 messages.
 */
#include "tlmsp_tls12.h"

#include <string.h>

#include <openssl/core_names.h>

#include "msp/error.h"
#include "sigalg.h"
#include "../common/guard.h"

#define CURVE_TYPE_NAMED 3

int msp_tls12_certificate_parse(const uint8_t *p, size_t len, msp_tls12_certificate_t *m)
{
    msp_reader_t r, list, cert;
    msp_reader_init(&r, p, len);
    m->ncerts = 0;
    int ret = msp_read_block(&r, 3, &list);
    while (ret == MSP_OK && msp_reader_left(&list) > 0) {
        ret = m->ncerts < MSP_TLS12_MAX_CERTS ? msp_read_block(&list, 3, &cert) : MSP_ALERT_DECODE_ERROR;
        if (ret == MSP_OK && msp_reader_left(&cert) == 0) {
            ret = MSP_ALERT_DECODE_ERROR;
        }
        if (ret == MSP_OK) {
            m->der[m->ncerts] = cert.pos;
            m->der_len[m->ncerts++] = msp_reader_left(&cert);
        }
    }
    MSP_GUARD(ret);
    return msp_reader_expect_end(&r);
}

int msp_tls12_certificate_build(const msp_tls12_certificate_t *m, msp_buf_t *out)
{
    size_t list;
    msp_buf_block_begin(out, 3, &list);
    for (size_t i = 0; i < m->ncerts; i++) {
        msp_tls12_put_vec(out, 3, m->der[i], m->der_len[i]);
    }
    msp_buf_block_end(out, 3, list);
    return msp_buf_error(out);
}

/* v8<point>, non-empty: the public value of both key exchange messages. */
static int read_point(msp_reader_t *r, const uint8_t **point, size_t *point_len)
{
    msp_reader_t pt;
    int ret = msp_read_block(r, 1, &pt);
    if (ret != MSP_OK) {
        return ret;
    }
    *point = pt.pos;
    *point_len = msp_reader_left(&pt);
    return *point_len > 0 ? MSP_OK : MSP_ALERT_DECODE_ERROR;
}

/* ServerECDHParams: curve_type(3) | group | v8<point>; the bytes are kept whole because they are signed. */
static int read_params(msp_reader_t *r, msp_tls12_server_kex_t *m)
{
    const uint8_t *start = r->pos;
    uint8_t curve_type;
    int ret = msp_read_u8(r, &curve_type);
    if (ret == MSP_OK && curve_type != CURVE_TYPE_NAMED) {
        ret = MSP_ALERT_DECODE_ERROR;
    }
    if (ret == MSP_OK) {
        ret = msp_read_u16(r, &m->group);
    }
    if (ret == MSP_OK) {
        ret = read_point(r, &m->point, &m->point_len);
    }
    if (ret == MSP_OK) {
        m->params = start;
        m->params_len = (size_t)(r->pos - start);
    }
    return ret;
}

int msp_tls12_server_kex_parse(const uint8_t *p, size_t len, msp_tls12_server_kex_t *m)
{
    msp_reader_t r, sig;
    msp_reader_init(&r, p, len);
    int ret = read_params(&r, m);
    if (ret == MSP_OK) {
        ret = msp_read_u16(&r, &m->sigalg);
    }
    if (ret == MSP_OK) {
        ret = msp_read_block(&r, 2, &sig);
    }
    if (ret != MSP_OK) {
        return ret;
    }
    m->signature = sig.pos;
    m->signature_len = msp_reader_left(&sig);
    return msp_reader_expect_end(&r);
}

int msp_tls12_ecdh_params(uint16_t group, const uint8_t *point, size_t point_len, msp_buf_t *out)
{
    msp_buf_put_u8(out, CURVE_TYPE_NAMED);
    msp_buf_put_u16(out, group);
    msp_tls12_put_vec(out, 1, point, point_len);
    return msp_buf_error(out);
}

int msp_tls12_server_kex_build(const msp_tls12_server_kex_t *m, msp_buf_t *out)
{
    msp_tls12_ecdh_params(m->group, m->point, m->point_len, out);
    msp_buf_put_u16(out, m->sigalg);
    msp_tls12_put_vec(out, 2, m->signature, m->signature_len);
    return msp_buf_error(out);
}

int msp_tls12_server_kex_sign(EVP_PKEY *key, uint16_t sigalg, const uint8_t client_random[32],
                              const uint8_t server_random[32], const uint8_t *params, size_t params_len, uint8_t *sig,
                              size_t *sig_len)
{
    /* RFC 5246 7.4.3: client_random | server_random | ServerECDHParams. */
    const msp_iov_t tbs[] = {{client_random, 32}, {server_random, 32}, {params, params_len}};
    return msp_sigalg_sign(key, sigalg, tbs, 3, sig, sig_len);
}

int msp_tls12_server_kex_verify(EVP_PKEY *key, const uint8_t client_random[32], const uint8_t server_random[32],
                                const msp_tls12_server_kex_t *m)
{
    const msp_iov_t tbs[] = {{client_random, 32}, {server_random, 32}, {m->params, m->params_len}};
    return msp_sigalg_verify(key, m->sigalg, tbs, 3, m->signature, m->signature_len);
}

int msp_tls12_client_kex_parse(const uint8_t *p, size_t len, const uint8_t **point, size_t *point_len)
{
    msp_reader_t r;
    msp_reader_init(&r, p, len);
    MSP_GUARD(read_point(&r, point, point_len));
    return msp_reader_expect_end(&r);
}

int msp_tls12_client_kex_build(const uint8_t *point, size_t point_len, msp_buf_t *out)
{
    msp_tls12_put_vec(out, 1, point, point_len);
    return msp_buf_error(out);
}

/* X25519 and P-256, the groups verified end to end with the reference (tlmsp-handshake.md 1.9). */
int msp_tls12_ecdhe_keygen(uint16_t group, EVP_PKEY **key)
{
    switch (group) {
    case MSP_TLS12_GROUP_X25519:
        *key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        break;
    case MSP_TLS12_GROUP_P256:
        *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    default:
        *key = NULL;
        return MSP_ALERT_HANDSHAKE_FAILURE;
    }
    return *key != NULL ? MSP_OK : MSP_ALERT_INTERNAL_ERROR;
}

/* tlmsp-handshake.md 1.9: "EC points are always sent uncompressed (X25519: 32 raw bytes)". */
int msp_tls12_ecdhe_public(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len)
{
    /* The encoded public key is what goes on the wire: raw for X25519, uncompressed for EC keys. */
    size_t need = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0, &need) != 1) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    if (need > cap) {
        return MSP_ERR_LIMIT;
    }
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, cap, len) != 1) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    return MSP_OK;
}

static int is_p256(EVP_PKEY *key)
{
    char name[32];
    if (EVP_PKEY_get_group_name(key, name, sizeof(name), NULL) != 1) {
        return 0;
    }
    return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0;
}

int msp_tls12_choose_sigalg(EVP_PKEY *key, const uint8_t *peer_list, size_t peer_len, uint16_t *sigalg)
{
    static const uint16_t rsa[] = {0x0804, 0x0401, 0x0201, 0}, p256[] = {0x0403, 0x0203, 0}, none[] = {0};
    int type = EVP_PKEY_get_base_id(key);
    const uint16_t *c = type == EVP_PKEY_RSA ? rsa : type == EVP_PKEY_EC && is_p256(key) ? p256 : none;
    /* Without the extension the peer takes {sha1, key type} (RFC 5246 7.4.1.4.1): the last candidate. */
    for (size_t i = 0; c[i] != 0; i++) {
        int offered = peer_list != NULL ? msp_tls12_u16_list_has(peer_list, peer_len, c[i]) : c[i + 1] == 0;
        if (offered && msp_sigalg_fits(key, c[i])) {
            *sigalg = c[i];
            return MSP_OK;
        }
    }
    return MSP_ALERT_HANDSHAKE_FAILURE;
}
