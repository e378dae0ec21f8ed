/*
 * The msp-ets provider inside our own programs (ets.md 8; docs/ets-provider.md):
 * a dedicated OSSL_LIB_CTX with `default` and msp-ets, whose TLS 1.3 server
 * key share is the configured static key of the negotiated group.
 *
 *   OSSL_LIB_CTX *lib;
 *   SSL_CTX *ctx;
 *   if (msp_ets_libctx_new(keys, n, &lib, &err) != MSP_OK ||
 *       msp_ets_server_ctx_new(lib, &ctx, &err) != MSP_OK) ...
 *   ... SSL_CTX_use_certificate / SSL_CTX_use_PrivateKey, SSL_new, handshakes ...
 *   SSL_CTX_free(ctx);
 *   msp_ets_libctx_free(lib);
 *
 * Keys are fixed for the life of the library context: rotate by building a
 * new library context and SSL_CTX (with the certificate whose visibility
 * information matches) and switching new connections to it.
 */
#ifndef MSP_ETS_PROVIDER_H
#define MSP_ETS_PROVIDER_H

#include "msp/api.h"

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "msp/error.h"

#define MSP_ETS_PROVIDER_NAME "msp-ets"
#define MSP_ETS_PROPQ "?provider=msp-ets"
#define MSP_ETS_MAX_KEYS 2 /* one per group: X25519 and P-256 */

/**
 * A library context with `default` and msp-ets holding the static keys
 * (X25519 and/or P-256 private EVP_PKEYs from any library context, at most
 * one per group; copied, the caller keeps its own), for
 * SSL_CTX_new_ex(lib, MSP_ETS_PROPQ, ...); *out gets it (free it with
 * msp_ets_libctx_free). MSP_ERR_ARGUMENT for no key, more than
 * MSP_ETS_MAX_KEYS, a key of another kind, a public-only key or two keys of
 * one group; MSP_ERR_NO_MEMORY when the context or a provider cannot be
 * made; MSP_ERR_NOT_FOUND if msp-ets is not found once loaded. *out is NULL
 * on failure.
 */
MSP_API int msp_ets_libctx_new(EVP_PKEY *const *keys, size_t n, OSSL_LIB_CTX **out, msp_error_t *err);

/**
 * A TLS 1.3-only server SSL_CTX in lib whose groups list is exactly the
 * static groups (x25519 before secp256r1), so a client offering only other
 * key shares gets a HelloRetryRequest towards them, or handshake_failure
 * when it supports none. The certificate is the caller's to set. *out gets
 * it (free it with SSL_CTX_free). MSP_ERR_ARGUMENT when lib is not a
 * context of msp_ets_libctx_new, MSP_ERR_NO_MEMORY when OpenSSL cannot make
 * or set up the SSL_CTX; *out is NULL on failure.
 */
MSP_API int msp_ets_server_ctx_new(OSSL_LIB_CTX *lib, SSL_CTX **out, msp_error_t *err);

/** Frees a context of msp_ets_libctx_new (after every SSL_CTX made in it). NULL is ignored. */
MSP_API void msp_ets_libctx_free(OSSL_LIB_CTX *lib);

#endif
