/* What the msp ets commands share: reading keys and certificates from files. */
#ifndef MSP_ETS_CLI_H
#define MSP_ETS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/buf.h"
#include "msp/ets.h"

/** A private key from a PEM or DER file, or NULL after one line on stderr. */
EVP_PKEY *ets_cli_load_key(const char *cmd, const char *path);

/** A certificate from a PEM or DER file, or NULL after one line on stderr. */
X509 *ets_cli_load_cert(const char *cmd, const char *path);

#endif
