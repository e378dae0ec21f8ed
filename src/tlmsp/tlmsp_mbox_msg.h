/*
 * The middlebox handshake messages of TLMSP as the ETSI reference sends
 * them (tlmsp-handshake.md 5.1-5.4, 5.7): MiddleboxHello (41),
 * MiddleboxCert (42), MiddleboxKeyExchange (45), MiddleboxHelloDone (46)
 * and MiddleboxFinished (51). Bodies only (without the 4-byte handshake
 * header); parsing gives views into the body.
 */
#ifndef MSP_TLMSP_MBOX_MSG_H
#define MSP_TLMSP_MBOX_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/buf.h"
#include "msp/tlmsp.h"

#define MSP_TLMSP_MAX_CERTS 16 /* a chain longer than this is refused */

/** MiddleboxHello (5.1): id | 0x0303 | to_client_random | to_server_random | 00 | 0000 | 00. */
typedef struct msp_tlmsp_mbox_hello {
    uint8_t id;
    uint8_t to_client_random[32];
    uint8_t to_server_random[32];
} msp_tlmsp_mbox_hello_t;

/** MiddleboxCert (5.2): id | v24< v24<DER>* >, non-empty. */
typedef struct msp_tlmsp_mbox_cert {
    uint8_t id;
    size_t ncerts;
    const uint8_t *der[MSP_TLMSP_MAX_CERTS];
    size_t der_len[MSP_TLMSP_MAX_CERTS];
} msp_tlmsp_mbox_cert_t;

/** One signed key-exchange half of 5.3: ServerECDHParams | sigalg | v16<signature>. */
typedef struct msp_tlmsp_kex_half {
    const uint8_t *params; /* curve_type(3) | group(2) | v8<point>, exactly as on the wire (signed) */
    size_t params_len;
    uint16_t group;
    const uint8_t *point;
    size_t point_len;
    uint16_t sigalg;
    const uint8_t *signature;
    size_t signature_len;
} msp_tlmsp_kex_half_t;

/** MiddleboxKeyExchange (5.3): id | to_client half | to_server half (ECDHE; DHE is not supported). */
typedef struct msp_tlmsp_mbox_kex {
    uint8_t id;
    msp_tlmsp_kex_half_t to_client;
    msp_tlmsp_kex_half_t to_server;
} msp_tlmsp_mbox_kex_t;

/** MiddleboxFinished (5.7): id | verify_data(12). */
typedef struct msp_tlmsp_mbox_finished {
    uint8_t id;
    uint8_t verify_data[12];
} msp_tlmsp_mbox_finished_t;

/*
 * Parsers: the body must be consumed exactly; a middlebox id outside
 * 0x02..0xfd, a non-empty session_id/cipher_suites/compression in a
 * MiddleboxHello, an empty certificate list, a curve_type other than 3
 * (named_curve) are MSP_ALERT_DECODE_ERROR (where the reference answers
 * internal_error, we send the alert that says what is wrong).
 */
int msp_tlmsp_mbox_hello_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_hello_t *m);
int msp_tlmsp_mbox_cert_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_cert_t *m);
int msp_tlmsp_mbox_kex_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_kex_t *m);
int msp_tlmsp_mbox_hello_done_parse(const uint8_t *p, size_t len, uint8_t *id);
int msp_tlmsp_mbox_finished_parse(const uint8_t *p, size_t len, msp_tlmsp_mbox_finished_t *m);

int msp_tlmsp_mbox_hello_build(const msp_tlmsp_mbox_hello_t *m, msp_buf_t *out);
int msp_tlmsp_mbox_cert_build(const msp_tlmsp_mbox_cert_t *m, msp_buf_t *out);
int msp_tlmsp_mbox_kex_build(const msp_tlmsp_mbox_kex_t *m, msp_buf_t *out);
int msp_tlmsp_mbox_hello_done_build(uint8_t id, msp_buf_t *out);
int msp_tlmsp_mbox_finished_build(const msp_tlmsp_mbox_finished_t *m, msp_buf_t *out);

/**
 * The bytes a middlebox signs for one half of its key exchange (5.3):
 * to_client_random | to_server_random | params, both halves over the same
 * randoms. Appended to out.
 */
int msp_tlmsp_mbox_kex_signed_data(const msp_tlmsp_mbox_hello_t *hello, const msp_tlmsp_kex_half_t *half,
                                   msp_buf_t *out);

/**
 * Signs / verifies one half of a MiddleboxKeyExchange (5.3) with the
 * middlebox's certificate key and the TLS 1.2 signature algorithm sigalg
 * (rsa_pkcs1_sha1 0x0201 and ecdsa_sha1 0x0203, which the reference's
 * middleboxes use, and the SHA-2 PKCS#1, ECDSA and RSA-PSS ones; PSS with
 * salt = digest length). verify: MSP_ALERT_DECRYPT_ERROR for a bad
 * signature, MSP_ALERT_ILLEGAL_PARAMETER for an algorithm that does not
 * fit the key.
 */
int msp_tlmsp_mbox_kex_sign(EVP_PKEY *key, uint16_t sigalg, const msp_tlmsp_mbox_hello_t *hello,
                            const msp_tlmsp_kex_half_t *half, uint8_t *sig, size_t *sig_len);
int msp_tlmsp_mbox_kex_verify(EVP_PKEY *key, const msp_tlmsp_mbox_hello_t *hello, const msp_tlmsp_kex_half_t *half);

#endif
