/*
 * The standard TLS 1.2 handshake messages as TLMSP carries them
 * (tlmsp-handshake.md 1.3, 1.9, 3.1, 3.4): ClientHello, ServerHello,
 * Certificate, ServerKeyExchange (ECDHE), ClientKeyExchange (ECDHE) and the
 * handshake message header. Bodies only (without the 4-byte header) unless a
 * name says otherwise; parsing gives views into the input, which must
 * outlive the result.
 */
#ifndef MSP_TLMSP_TLS12_H
#define MSP_TLMSP_TLS12_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/buf.h"
#include "reader.h"

#define MSP_TLS12_MAX_EXTENSIONS 64 /* a hello with more is refused (decode_error) */
#define MSP_TLS12_MAX_CERTS 16      /* a chain longer than this is refused */

/* Cipher suites the TLMSP reference works with (1.9). */
#define MSP_TLS12_ECDHE_RSA_AES128_GCM_SHA256 0xc02f
#define MSP_TLS12_ECDHE_ECDSA_AES128_GCM_SHA256 0xc02b
#define MSP_TLS12_EMPTY_RENEGOTIATION_INFO_SCSV 0x00ff

/* Named groups (RFC 8422 / 7748). */
#define MSP_TLS12_GROUP_P256 0x0017
#define MSP_TLS12_GROUP_X25519 0x001d

/* Extension types used here. */
enum {
    MSP_TLS12_EXT_SUPPORTED_GROUPS = 10,
    MSP_TLS12_EXT_EC_POINT_FORMATS = 11,
    MSP_TLS12_EXT_SIGNATURE_ALGORITHMS = 13,
    MSP_TLS12_EXT_ENCRYPT_THEN_MAC = 22,
    MSP_TLS12_EXT_EXTENDED_MASTER_SECRET = 23,
    MSP_TLS12_EXT_SESSION_TICKET = 35,
    MSP_TLS12_EXT_RENEGOTIATION_INFO = 0xff01,
};

/** One extension, viewed in place. */
typedef struct msp_tls12_ext {
    uint16_t type;
    const uint8_t *data;
    size_t len;
} msp_tls12_ext_t;

/** ClientHello (RFC 5246 7.4.1.2). */
typedef struct msp_tls12_client_hello {
    uint16_t version; /* client_version; TLMSP requires 0x0303 */
    uint8_t random[32];
    const uint8_t *session_id; /* at most 32 bytes */
    size_t session_id_len;
    const uint8_t *cipher_suites; /* u16 list, big-endian, as on the wire (even length, non-empty) */
    size_t cipher_suites_len;
    const uint8_t *compression; /* must contain 0 (null) */
    size_t compression_len;
    size_t next; /* extensions, in wire order */
    msp_tls12_ext_t ext[MSP_TLS12_MAX_EXTENSIONS];
} msp_tls12_client_hello_t;

/** ServerHello (RFC 5246 7.4.1.3). */
typedef struct msp_tls12_server_hello {
    uint16_t version;
    uint8_t random[32];
    const uint8_t *session_id;
    size_t session_id_len;
    uint16_t cipher_suite;
    uint8_t compression;
    size_t next;
    msp_tls12_ext_t ext[MSP_TLS12_MAX_EXTENSIONS];
} msp_tls12_server_hello_t;

/**
 * Parsers: the body must be consumed exactly; an extensions block, when
 * present, must be consumed exactly too, no extension type may appear
 * twice, session_id at most 32 bytes, cipher_suites even and non-empty,
 * compression non-empty; else MSP_ALERT_DECODE_ERROR. A hello with no
 * extensions block at all parses with next = 0. The version is not checked
 * here (the state machines do).
 */
int msp_tls12_client_hello_parse(const uint8_t *p, size_t len, msp_tls12_client_hello_t *m);
int msp_tls12_server_hello_parse(const uint8_t *p, size_t len, msp_tls12_server_hello_t *m);

/**
 * Builders: append the body in the given field and extension order (ext[i]
 * written as type | v16<data>; an extensions block is written only when
 * next > 0). Return msp_buf_error(out).
 */
int msp_tls12_client_hello_build(const msp_tls12_client_hello_t *m, msp_buf_t *out);
int msp_tls12_server_hello_build(const msp_tls12_server_hello_t *m, msp_buf_t *out);

/** The extension of this type, or NULL. */
const msp_tls12_ext_t *msp_tls12_find_ext(const msp_tls12_ext_t *ext, size_t n, uint16_t type);

/** True when the u16 list (as on the wire) contains v. */
int msp_tls12_u16_list_has(const uint8_t *list, size_t len, uint16_t v);

/**
 * The inner u16 list of a supported_groups or signature_algorithms
 * extension: v16<u16*>, non-empty, even, consumed exactly; else
 * MSP_ALERT_DECODE_ERROR. *list / *list_len view the list bytes.
 */
int msp_tls12_ext_u16_list(const msp_tls12_ext_t *e, const uint8_t **list, size_t *list_len);

/** Certificate (7.4.2): v24< v24<DER>* >. Empty lists parse (ncerts = 0); an empty entry is decode_error. */
typedef struct msp_tls12_certificate {
    size_t ncerts;
    const uint8_t *der[MSP_TLS12_MAX_CERTS];
    size_t der_len[MSP_TLS12_MAX_CERTS];
} msp_tls12_certificate_t;

int msp_tls12_certificate_parse(const uint8_t *p, size_t len, msp_tls12_certificate_t *m);
int msp_tls12_certificate_build(const msp_tls12_certificate_t *m, msp_buf_t *out);

/**
 * ServerKeyExchange for ECDHE (RFC 8422 5.4): ServerECDHParams (curve_type
 * 3 | named_group | v8<point>, non-empty point) | sigalg(2) | v16<sig>.
 * curve_type other than 3 is decode_error.
 */
typedef struct msp_tls12_server_kex {
    const uint8_t *params; /* the ServerECDHParams bytes exactly as on the wire (they are signed) */
    size_t params_len;
    uint16_t group;
    const uint8_t *point;
    size_t point_len;
    uint16_t sigalg;
    const uint8_t *signature;
    size_t signature_len;
} msp_tls12_server_kex_t;

int msp_tls12_server_kex_parse(const uint8_t *p, size_t len, msp_tls12_server_kex_t *m);
/** Writes params from group/point (params/params_len are ignored), then sigalg and signature. */
int msp_tls12_server_kex_build(const msp_tls12_server_kex_t *m, msp_buf_t *out);

/**
 * Signs / verifies a ServerKeyExchange: the signed bytes are
 * client_random | server_random | ServerECDHParams (RFC 5246 7.4.3), the
 * algorithms those of msp_tlmsp_mbox_kex_sign (share its table: one
 * sigalg table in the tree). sign fills m->sigalg's signature into sig
 * (*sig_len in: capacity, out: length); m->params must be set (build the
 * params first with msp_tls12_ecdh_params). verify: MSP_OK,
 * MSP_ALERT_DECRYPT_ERROR for a bad signature, MSP_ALERT_ILLEGAL_PARAMETER
 * for a sigalg that does not fit the key.
 */
int msp_tls12_server_kex_sign(EVP_PKEY *key, uint16_t sigalg, const uint8_t client_random[32],
                              const uint8_t server_random[32], const uint8_t *params, size_t params_len, uint8_t *sig,
                              size_t *sig_len);
int msp_tls12_server_kex_verify(EVP_PKEY *key, const uint8_t client_random[32], const uint8_t server_random[32],
                                const msp_tls12_server_kex_t *m);

/** Appends ServerECDHParams (curve_type 3 | group | v8<point>) to out. */
int msp_tls12_ecdh_params(uint16_t group, const uint8_t *point, size_t point_len, msp_buf_t *out);

/** ClientKeyExchange for ECDHE: v8<point>, non-empty, consumed exactly. */
int msp_tls12_client_kex_parse(const uint8_t *p, size_t len, const uint8_t **point, size_t *point_len);
int msp_tls12_client_kex_build(const uint8_t *point, size_t point_len, msp_buf_t *out);

/**
 * Ephemeral ECDHE keys: a fresh key on group (X25519 or P-256; else
 * MSP_ALERT_HANDSHAKE_FAILURE), and its public value as sent on the wire
 * (X25519: 32 raw bytes; P-256: the 65-byte uncompressed point). The key
 * generator is OpenSSL's (the only randomness not injected: OpenSSL's
 * EVP_PKEY_keygen draws from its own DRBG).
 */
int msp_tls12_ecdhe_keygen(uint16_t group, EVP_PKEY **key);
int msp_tls12_ecdhe_public(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len);

/**
 * The sigalg an entity signs with for key, chosen from the peer's
 * signature_algorithms list (u16 list as on the wire; NULL = the TLS 1.2
 * default of RFC 5246 7.4.1.4.1, i.e. {sha1, key type}): for RSA
 * rsa_pss_rsae_sha256 (0x0804), then rsa_pkcs1_sha256 (0x0401), then
 * rsa_pkcs1_sha1 (0x0201); for a P-256 key ecdsa_secp256r1_sha256 (0x0403),
 * then ecdsa_sha1 (0x0203). MSP_ALERT_HANDSHAKE_FAILURE when none fits.
 */
int msp_tls12_choose_sigalg(EVP_PKEY *key, const uint8_t *peer_list, size_t peer_len, uint16_t *sigalg);

/**
 * A handshake message header: type(1) | length(3). msp_tls12_hs_begin
 * writes the header with a placeholder length and returns the mark;
 * msp_tls12_hs_end fills the length in.
 */
int msp_tls12_hs_begin(msp_buf_t *out, uint8_t type, size_t *mark);
int msp_tls12_hs_end(msp_buf_t *out, size_t mark);

/** Appends a vector: its length in prefix bytes (1-3, big-endian), then its len bytes; an error stays in out. */
void msp_tls12_put_vec(msp_buf_t *out, size_t prefix, const uint8_t *p, size_t len);

#endif
