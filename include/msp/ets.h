/*
 * ETS (ETSI TS 103 523-3 V1.3.1) visibility information, clause 4.3.3
 * (../shared/spec/ets.md 3.3):
 *
 *   VisibilityInformation ::= SEQUENCE {
 *       fingerprint       OCTET STRING (SIZE(10)),
 *       accessDescription UTF8String }
 *
 * carried as an otherName of the server certificate's subjectAltName with
 * type-id 0.4.0.3523.3.1, one per static key pair; fingerprint = the first
 * 10 bytes of SHA-256 over the static public key exactly as the ServerHello
 * key_share sends it.
 */
#ifndef MSP_ETS_H
#define MSP_ETS_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/buf.h"

#define MSP_ETS_FINGERPRINT_LEN 10
#define MSP_ETS_VI_OID "0.4.0.3523.3.1"
#define MSP_ETS_MAX_ACCESS 4096 /* an accessDescription longer than this is refused */
#define MSP_ETS_MAX_VI 16       /* visibility informations read from one certificate */

/** The fingerprint of a key_share's key_exchange bytes (ETS-VI-3). */
MSP_API int msp_ets_fingerprint(const uint8_t *key_share, size_t len, uint8_t fp[MSP_ETS_FINGERPRINT_LEN]);

/**
 * The key_share bytes of a static key (X25519: 32 raw bytes; P-256: the
 * 65-byte uncompressed point). MSP_ERR_ARGUMENT for another kind of key,
 * MSP_ERR_LIMIT when cap is too small.
 */
MSP_API int msp_ets_key_share(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len);

/** DER of a VisibilityInformation (access: UTF-8, at most MSP_ETS_MAX_ACCESS bytes), appended to out. */
MSP_API int msp_ets_vi_encode(const uint8_t fp[MSP_ETS_FINGERPRINT_LEN], const char *access, size_t access_len,
                              msp_buf_t *out);

/**
 * Parses the DER of a VisibilityInformation; the whole input must be it
 * (DER: definite minimal lengths), the fingerprint exactly 10 bytes, the
 * description valid UTF-8. *access points into der. MSP_OK or
 * MSP_ERR_SYNTAX.
 */
MSP_API int msp_ets_vi_decode(const uint8_t *der, size_t len, uint8_t fp[MSP_ETS_FINGERPRINT_LEN],
                              const uint8_t **access, size_t *access_len);

/** Adds one VisibilityInformation otherName to the certificate's subjectAltName (created if absent). */
MSP_API int msp_ets_cert_add(X509 *x, const uint8_t fp[MSP_ETS_FINGERPRINT_LEN], const char *access, size_t access_len);

/**
 * Removes every VisibilityInformation otherName from the certificate's
 * subjectAltName (the extension goes when nothing else is left in it), for
 * re-signing a certificate with the visibility information of new keys.
 */
MSP_API int msp_ets_cert_clear(X509 *x, size_t *removed);

typedef struct msp_ets_vi {
    uint8_t fingerprint[MSP_ETS_FINGERPRINT_LEN];
    char access[MSP_ETS_MAX_ACCESS + 1]; /* NUL-terminated copy */
    size_t access_len;
} msp_ets_vi_t;

/**
 * The visibility informations of a certificate, in subjectAltName order (at
 * most max; *n gets the count). A subjectAltName otherName with the ETS
 * type-id whose value is not a valid VisibilityInformation is MSP_ERR_SYNTAX,
 * never skipped. *misplaced is set when the certificate also carries a
 * stand-alone extension with the ETS OID (non-conformant placement, ets.md
 * 3.3 note).
 */
MSP_API int msp_ets_cert_read(X509 *x, msp_ets_vi_t *vi, size_t max, size_t *n, int *misplaced);

/**
 * Appends an access description (free text from a certificate) as one
 * quoted line: quotes and backslashes escaped with a backslash, control
 * characters as \xNN, so that one entry stays one line and cannot pass for
 * another. UTF-8 passes through. MSP_OK or out's error.
 */
MSP_API int msp_ets_access_text(msp_buf_t *out, const char *s, size_t len);

/**
 * The fingerprint of a static key's key_share (msp_ets_key_share, then
 * msp_ets_fingerprint). MSP_ERR_ARGUMENT for a key that is not X25519 or P-256.
 */
MSP_API int msp_ets_key_fingerprint(EVP_PKEY *key, uint8_t fp[MSP_ETS_FINGERPRINT_LEN]);

/**
 * Appends "GROUP static key, fingerprint FP, key_share HEX" (GROUP x25519 or
 * p256, FP and HEX lower-case hex), what `msp ets keygen` prints after the
 * file name. MSP_ERR_ARGUMENT for another kind of key; or out's error.
 */
MSP_API int msp_ets_key_describe(EVP_PKEY *key, msp_buf_t *out);

/**
 * Appends one line "NAME: visibility K: fingerprint FP\n" (K from 1) per
 * visibility information of the certificate, what `msp ets cert` prints.
 * MSP_OK; msp_ets_cert_read's error (nothing appended); out's error.
 */
MSP_API int msp_ets_cert_vi_lines(X509 *x, const char *name, msp_buf_t *out);

/**
 * A certificate's visibility information (msp_ets_cert_read: n entries,
 * misplaced) as `msp ets show` prints it, appended to out; name says which
 * certificate (a path). Text: "NAME: visibility K: fingerprint FP, access
 * "TEXT"" per entry (msp_ets_access_text), "NAME: no ETS visibility
 * information" when there is none, a warning line for a misplaced
 * extension. JSON: one object and "\n": certificate, misplaced_extension,
 * visibility [{fingerprint, access}]. MSP_OK or out's error.
 */
MSP_API int msp_ets_cert_render_text(const char *name, const msp_ets_vi_t *vi, size_t n, int misplaced, msp_buf_t *out);
MSP_API int msp_ets_cert_render_json(const char *name, const msp_ets_vi_t *vi, size_t n, int misplaced, msp_buf_t *out);

#endif
