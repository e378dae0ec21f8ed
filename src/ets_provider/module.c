/*
 * The loadable module msp-ets.so: OpenSSL's configuration loader calls
 * OSSL_provider_init with our section's keys (x25519_key, p256_key) behind
 * core_get_params. Everything else is prov_main.c.
 */
#include "prov.h"

__attribute__((visibility("default"))) OSSL_provider_init_fn OSSL_provider_init;

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx)
{
    return prov_init(handle, in, out, provctx);
}
