/*
 * ETS server certificates (TS 103 523-3 V1.3.1 clause 4.3.3, ets.md 3.3):
 * the one certificate issuer behind `msp ets cert` and the key manager's
 * `certs=` pairs (ets.md 3.4 ETS-KT-3). Next to msp/ets.h, which reads and
 * writes the VisibilityInformation itself, this header makes whole
 * certificates: a TLS 1.3 server certificate for a signing key, bound to
 * the static (EC)DH keys of the server by one VisibilityInformation each.
 *
 * Every new certificate carries, and only these (RFC 5280 4.2.1):
 *   basicConstraints  critical, CA:FALSE
 *   keyUsage          critical, digitalSignature (TLS 1.3 signs
 *                     CertificateVerify with the subject key; the static
 *                     (EC)DH keys are not the subject key, ETS-VI-1, so no
 *                     keyAgreement, and no keyEncipherment: TLS 1.3 has no
 *                     RSA key transport)
 *   extKeyUsage       serverAuth
 *   subjectKeyIdentifier   hash
 *   authorityKeyIdentifier keyid (not when self-signed)
 *   subjectAltName    the DNS names, then one otherName 0.4.0.3523.3.1 per
 *                     static key (ets.md 3.3 ETS-VI-4)
 * A re-issued certificate (base) keeps its subject, key, validity and
 * extensions; its visibility information, serial, issuer name and
 * authorityKeyIdentifier are replaced.
 */
#ifndef MSP_ETS_CERT_H
#define MSP_ETS_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/api.h"
#include "msp/error.h"
#include "msp/ets.h"

#define MSP_ETS_CERT_MAX_DNS 32 /* DNS names in one certificate */

/** What to certify and who signs. Everything is borrowed for the call. */
typedef struct msp_ets_cert_cfg {
    EVP_PKEY *subject_key; /* the certified signing key; NULL with base */
    const char *subject;   /* "/CN=NAME[/O=ORG...]" as openssl req -subj takes it; NULL with base */
    const char *const *dns;
    size_t n_dns;
    /* validity in seconds since 1970; with base, not_after == 0 keeps base's validity */
    int64_t not_before, not_after;
    const uint8_t (*fingerprints)[MSP_ETS_FINGERPRINT_LEN]; /* one VisibilityInformation each, in order */
    size_t n_fingerprints;                                  /* 1..MSP_ETS_MAX_VI */
    const char *access;                                     /* accessDescription, UTF-8 */
    X509 *issuer_cert;                                      /* NULL: self-signed by issuer_key */
    EVP_PKEY *issuer_key;                                   /* must match issuer_cert (or subject_key) */
    uint16_t scheme;  /* TLS SignatureScheme to sign with; 0: SHA-256 (Ed25519/Ed448: pure) */
    const X509 *base; /* re-issue this certificate instead of making a new one */
} msp_ets_cert_cfg_t;

/**
 * A signed certificate in *out (the caller frees it with X509_free).
 * MSP_ERR_ARGUMENT for a missing or unusable part (a subject OpenSSL does not
 * know, an issuer key that is not the issuer certificate's, a scheme the
 * issuer key cannot sign with), MSP_ERR_INVALID when a fingerprint is the
 * subject key's own (ETS-VI-1) or the access text is not valid UTF-8 within
 * MSP_ETS_MAX_ACCESS, MSP_ERR_LIMIT past the limits.
 */
MSP_API int msp_ets_cert_issue(const msp_ets_cert_cfg_t *cfg, X509 **out, msp_error_t *err);

/** 1 when fp is the fingerprint of key itself (ETS-VI-1 forbids naming it), else 0. */
MSP_API int msp_ets_cert_is_own_key(EVP_PKEY *key, const uint8_t fp[MSP_ETS_FINGERPRINT_LEN]);

/**
 * 1 when issuer_key can sign a certificate with the TLS SignatureScheme
 * (0x0403 P-256, 0x0401/0x0804 RSA, 0x0807 Ed25519), else 0.
 */
MSP_API int msp_ets_cert_scheme_ok(EVP_PKEY *issuer_key, uint16_t scheme);

#endif
