/*
 * What the connections of a process share (msp_tlmsp_shared_t, msp/tlmsp_conn.h): peer certificates parsed
 * once and kept by their exact DER bytes. Internal to msp_tlmsp.
 */
#ifndef MSP_TLMSP_SHARED_H
#define MSP_TLMSP_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "msp/tlmsp_conn.h"

/**
 * The certificate der encodes, parsed (every byte of der must be the certificate's): *x holds a reference the
 * caller frees. With sh, a certificate of the same bytes parsed before is taken from sh, and one parsed now is
 * kept there (up to MSP_TLMSP_SHARED_CERT_MAX bytes); sh may be NULL. MSP_OK, or MSP_ALERT_BAD_CERTIFICATE
 * when it does not parse (OpenSSL out of memory included, as without sh).
 */
int msp_tlmsp_shared_x509(msp_tlmsp_shared_t *sh, const uint8_t *der, size_t len, X509 **x);

#endif
