/*
 * The one table of TLS 1.2 signature algorithms (RFC 5246 7.4.1.4.1, RFC
 * 8446 4.2.3 for RSA-PSS) and the EVP sign/verify core that the
 * ServerKeyExchange (tlmsp-handshake.md 1.9) and the MiddleboxKeyExchange
 * (5.3) share. Internal to msp_tlmsp.
 */
#ifndef MSP_TLMSP_SIGALG_H
#define MSP_TLMSP_SIGALG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tlmsp_kdf.h"

/** True when sigalg is in the table and fits key's type (RSA or EC). */
int msp_sigalg_fits(EVP_PKEY *key, uint16_t sigalg);

/**
 * Signs the concatenation of the n parts with key under sigalg (PSS with
 * salt = digest length). *sig_len in: capacity of sig, out: length.
 * MSP_ALERT_ILLEGAL_PARAMETER for a sigalg that does not fit the key,
 * MSP_ALERT_INTERNAL_ERROR when OpenSSL fails (a too small sig included).
 */
int msp_sigalg_sign(EVP_PKEY *key, uint16_t sigalg, const msp_iov_t *parts, size_t n, uint8_t *sig, size_t *sig_len);

/**
 * Verifies sig over the concatenation of the n parts: MSP_OK,
 * MSP_ALERT_DECRYPT_ERROR for a bad signature, MSP_ALERT_ILLEGAL_PARAMETER
 * for a sigalg that does not fit the key, MSP_ALERT_INTERNAL_ERROR when
 * OpenSSL cannot set up.
 */
int msp_sigalg_verify(EVP_PKEY *key, uint16_t sigalg, const msp_iov_t *parts, size_t n, const uint8_t *sig,
                      size_t sig_len);

#endif
