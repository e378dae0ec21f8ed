/* What the msp ets commands share: reading keys and certificates, fingerprints. */
#ifndef MSP_ETS_CLI_H
#define MSP_ETS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/buf.h"
#include "msp/ets.h"

#define ETS_CLI_MAX_SHARE 65 /* the longest key_share we serve: an uncompressed P-256 point */

/** A private key from a PEM or DER file, or NULL after one line on stderr. */
EVP_PKEY *ets_cli_load_key(const char *cmd, const char *path);

/** A certificate from a PEM or DER file, or NULL after one line on stderr. */
X509 *ets_cli_load_cert(const char *cmd, const char *path);

/** "x25519" or "p256", or NULL for a key of another kind. */
const char *ets_cli_group_name(EVP_PKEY *key);

/** The fingerprint (and, unless share_hex is NULL, the key_share in hex) of a static key; CLI_USAGE after one line. */
int ets_cli_fingerprint(const char *cmd, const char *path, EVP_PKEY *key, uint8_t fp[MSP_ETS_FINGERPRINT_LEN],
                        char share_hex[2 * ETS_CLI_MAX_SHARE + 1]);

#endif
