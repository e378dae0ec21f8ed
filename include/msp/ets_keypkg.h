/*
 * ETS key packages (TS 103 523-3 V1.3.1 clause 4.3.6; ets.md 3.4 ETS-KP-1):
 * an RFC 5958 AsymmetricKeyPackage ::= SEQUENCE SIZE(1..MAX) OF
 * OneAsymmetricKey, with
 *
 *   Type A, a static (EC)DH key pair: version v2 (1), privateKeyAlgorithm,
 *     privateKey, publicKey [1] IMPLICIT BIT STRING, attributes [0] holding
 *     the RFC 7906 key validity period (id-kma-keyValidityPeriod
 *     2.16.840.1.101.2.1.13.6: SEQUENCE { doNotUseBefore BinaryTime,
 *     doNotUseAfter BinaryTime OPTIONAL }, BinaryTime = INTEGER seconds since
 *     1970). P-256: id-ecDH 1.3.132.1.12 + namedCurve prime256v1, privateKey
 *     an RFC 5915 ECPrivateKey, publicKey the uncompressed point (on input
 *     id-ecPublicKey is accepted too). X25519 (not in the spec, a gap):
 *     RFC 8410 id-X25519 1.3.101.110, privateKey an OCTET STRING wrapping the
 *     32 bytes (CurvePrivateKey), publicKey the 32 bytes.
 *   Type B, a server signing key and its certificate, after every Type A:
 *     version v1 (0), the algorithm of the *subject key* (the PKCS#8 one;
 *     ets.md 3.4 reads literally as the certificate's signatureAlgorithm, a
 *     slip: on input that reading is accepted too), privateKey as PKCS#8
 *     has it, no publicKey, attributes holding userCertificate 2.5.4.36 with
 *     the certificate DER. The certificate must carry one
 *     VisibilityInformation per Type A key of the package.
 *
 * Sans-IO: DER in, EVP_PKEY/X509 out and back. Strict DER: the package's
 * SEQUENCE OF is framed through the reader API (definite, minimal lengths);
 * each element, and what its OCTET STRINGs and attribute values hold, is
 * decoded by OpenSSL ASN.1 templates and must encode back to the very same
 * bytes, so that no BER form (long or indefinite lengths, constructed
 * strings, high-tag-number forms, unsorted SET OF) passes. The certificate
 * is checked the same way at its outer level (its tbsCertificate is OpenSSL's
 * X.509 decoder's). OpenSSL's own PKCS#8 decoder is not used for Type A
 * (ets.md 7: it refuses v2 with a publicKey and id-ecDH).
 */
#ifndef MSP_ETS_KEYPKG_H
#define MSP_ETS_KEYPKG_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/buf.h"
#include "msp/error.h"

#define MSP_ETS_KP_MAX_ELEMENTS 64     /* OneAsymmetricKeys in one package */
#define MSP_ETS_KP_MAX_SIGNERS 8       /* Type B elements in one package */
#define MSP_ETS_KP_MAX_SIZE (1u << 20) /* bytes of one package */
#define MSP_ETS_KP_MAX_CERT 16384      /* bytes of one certificate */
#define MSP_ETS_KP_MAX_ATTRS 16        /* attributes of one element */

#define MSP_ETS_KP_OID_VALIDITY "2.16.840.1.101.2.1.13.6"
#define MSP_ETS_KP_OID_USER_CERT "2.5.4.36"
#define MSP_ETS_KP_OID_ECDH "1.3.132.1.12"
#define MSP_ETS_KP_OID_X25519 "1.3.101.110"

/** A Type A element: a static X25519 or P-256 key pair and its validity. */
typedef struct msp_ets_kp_static {
    EVP_PKEY *key;
    int64_t not_before; /* doNotUseBefore */
    int64_t not_after;  /* doNotUseAfter, when has_not_after */
    int has_not_after;
} msp_ets_kp_static_t;

/** A Type B element: the server's signing key and its certificate. */
typedef struct msp_ets_kp_signer {
    EVP_PKEY *key;
    X509 *cert;
} msp_ets_kp_signer_t;

/** A decoded package; owns its keys and certificates (msp_ets_keypkg_free). */
typedef struct msp_ets_keypkg {
    msp_ets_kp_static_t statics[MSP_ETS_KP_MAX_ELEMENTS];
    size_t n_static;
    msp_ets_kp_signer_t signers[MSP_ETS_KP_MAX_SIGNERS];
    size_t n_signer;
} msp_ets_keypkg_t;

/**
 * Appends the DER of a package: the static keys (Type A, in order; each
 * X25519 or P-256 with a private key, not_before >= 0) then the signers
 * (Type B). n_static + n_signer must be 1..MSP_ETS_KP_MAX_ELEMENTS.
 * MSP_ERR_ARGUMENT for an unusable key, MSP_ERR_LIMIT when out is too small.
 */
MSP_API int msp_ets_keypkg_encode(const msp_ets_kp_static_t *statics, size_t n_static,
                                  const msp_ets_kp_signer_t *signers, size_t n_signer, msp_buf_t *out,
                                  msp_error_t *err);

/**
 * Parses a whole package into pkg (zeroed first; on failure nothing is
 * left to free). Refused: anything but strict DER, trailing bytes, more
 * than the limits (and an element over MSP_ETS_KP_MAX_CERT + 8192 bytes,
 * checked before it is decoded), a version other than v2 for Type A / v1
 * for Type B, a
 * Type A without validity or publicKey, a public key that does not belong
 * to the private key, a Type B before a Type A, a certificate whose key is
 * not the signer's or that lacks the fingerprint of a Type A key.
 * MSP_ERR_SYNTAX (malformed; an element is checked whole, so a malformed
 * element is MSP_ERR_SYNTAX even when it also breaks a rule), MSP_ERR_INVALID
 * (well formed, breaks a rule), MSP_ERR_LIMIT, MSP_ERR_NO_MEMORY.
 */
MSP_API int msp_ets_keypkg_decode(const uint8_t *der, size_t len, msp_ets_keypkg_t *pkg, msp_error_t *err);

/** Frees what a package owns and zeroes it. */
MSP_API void msp_ets_keypkg_free(msp_ets_keypkg_t *pkg);

/* ---- CMS-wrapped packages (ets.md 3.4 ETS-KP-2; RFC 5652, RFC 5083) ----
 *
 * A package travels as ContentInfo AuthEnvelopedData (AES-256-GCM, the
 * content-encryption key to the consumer's certificate: RSA key transport
 * or ECDH key agreement) whose content is a ContentInfo SignedData
 * (SHA-256, the key manager's certificate included) whose eContentType is
 * id-ct-KP-aKeyPackage (RFC 5958 2: 2.16.840.1.101.2.1.2.78.5) and whose
 * eContent is the package DER: signed for authentication and integrity,
 * then encrypted for confidentiality, end to end whatever carried it.
 * HTTP Content-Type application/pkcs7-mime (ets.md 3.4 ETS-KT-1).
 */

#define MSP_ETS_KP_OID_AKEYPACKAGE "2.16.840.1.101.2.1.2.78.5" /* id-ct-KP-aKeyPackage */
#define MSP_ETS_KP_MAX_CMS (MSP_ETS_KP_MAX_SIZE + 65536)       /* bytes of one wrapped package */
#define MSP_ETS_KP_MAX_TRUSTED 16                              /* trusted signer certificates */

/**
 * Appends the wrapped package: der (a package, not re-checked) signed with
 * signer_key / signer_cert (signingTime = now, seconds since 1970: the
 * library has no clock), encrypted to recipient (RSA or EC P-256/P-384/P-521
 * public key; X25519 and Ed25519 certificates cannot receive CMS here).
 * Borrowed, nothing kept. MSP_ERR_ARGUMENT (a NULL, a key not the
 * certificate's, a recipient key CMS cannot encrypt to), MSP_ERR_LIMIT (der
 * over MSP_ETS_KP_MAX_SIZE, out too small), MSP_ALERT_INTERNAL_ERROR
 * (OpenSSL failed).
 */
MSP_API int msp_ets_keypkg_cms_wrap(const uint8_t *der, size_t len, X509 *signer_cert, EVP_PKEY *signer_key,
                                    X509 *recipient, int64_t now, msp_buf_t *out, msp_error_t *err);

/**
 * Unwraps what msp_ets_keypkg_cms_wrap made: decrypts with key (cert names
 * the RecipientInfo), verifies the signature and the signer's certificate
 * at time now against trusted[0..n_trusted) (each a trust anchor: a CA or
 * the key manager's own certificate; any key usage), and appends the
 * package DER (for msp_ets_keypkg_decode) to out. Nothing is appended on
 * failure. Each refusal has its own code:
 *   MSP_ERR_SYNTAX          not a DER CMS ContentInfo (outer or inner), trailing bytes;
 *   MSP_ERR_INVALID         a content type other than AuthEnvelopedData or EnvelopedData
 *                           holding SignedData holding id-ct-KP-aKeyPackage, or no content;
 *   MSP_ERR_NOT_FOUND       no RecipientInfo for cert (encrypted to someone else);
 *   MSP_ALERT_BAD_RECORD_MAC the content does not decrypt or authenticate (tampered);
 *   MSP_ALERT_DECRYPT_ERROR  a signature does not verify (or no signer);
 *   MSP_ALERT_BAD_CERTIFICATE the signer's certificate does not chain to a trusted one at now;
 *   MSP_ERR_LIMIT           over MSP_ETS_KP_MAX_CMS, out too small, more than MSP_ETS_KP_MAX_TRUSTED;
 *   MSP_ERR_ARGUMENT        a NULL, no trusted certificate, key not cert's.
 */
MSP_API int msp_ets_keypkg_cms_unwrap(const uint8_t *cms, size_t len, X509 *cert, EVP_PKEY *key, X509 *const *trusted,
                                      size_t n_trusted, int64_t now, msp_buf_t *out, msp_error_t *err);

/** "x25519", "p256", or NULL for another kind of key. */
MSP_API const char *msp_ets_kp_group_name(EVP_PKEY *key);

/** The RFC 8446 NamedGroup of a static key (0x001d, 0x0017), or 0. */
MSP_API uint16_t msp_ets_kp_group_id(EVP_PKEY *key);

#endif
