/*
 * The msp-ets provider in a dedicated library context of our own programs (ets.md 8.1 route 1): ETS is on only
 * in a context made for it, as ETSI TS 103 523-3 clause 5 wants: "ETS mode shall be explicitly enabled" (ets.md
 * 3.1 ETS-KX-4).
 */
#include "msp/ets_provider.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/provider.h>

#include "prov.h"

#define MSP_ETS_MAX_PROVIDERS 4 /* default and msp-ets, with room */

/* The OpenSSL reason, if any, for the one-line message. */
static int fail(msp_error_t *err, int code, const char *what)
{
    char why[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        ERR_error_string_n(e, why, sizeof(why));
    }
    return msp_error_set(err, code, "ets_provider", "%s%s%s", what, why[0] ? ": " : "", why);
}

static int find_ours(OSSL_PROVIDER *p, void *arg)
{
    if (strcmp(OSSL_PROVIDER_get0_name(p), MSP_ETS_PROVIDER_NAME) == 0) {
        *(OSSL_PROVIDER **)arg = p;
        return 0;
    }
    return 1;
}

static prov_ctx_t *ours(OSSL_LIB_CTX *lib)
{
    OSSL_PROVIDER *p = NULL;
    OSSL_PROVIDER_do_all(lib, find_ours, &p);
    return p != NULL ? OSSL_PROVIDER_get0_provider_ctx(p) : NULL;
}

static int install(OSSL_LIB_CTX *lib, EVP_PKEY *const *keys, size_t n, msp_error_t *err)
{
    if (OSSL_PROVIDER_load(lib, "default") == NULL) {
        return fail(err, MSP_ERR_NO_MEMORY, "cannot load the default provider");
    }
    if (!OSSL_PROVIDER_add_builtin(lib, MSP_ETS_PROVIDER_NAME, prov_init) ||
        OSSL_PROVIDER_load(lib, MSP_ETS_PROVIDER_NAME) == NULL) {
        return fail(err, MSP_ERR_NO_MEMORY, "cannot load the msp-ets provider");
    }
    prov_ctx_t *ctx = ours(lib);
    if (ctx == NULL) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, "ets_provider", "msp-ets is not in its library context");
    }
    for (size_t i = 0; i < n; i++) {
        int before = prov_serves(ctx, PROV_G_X25519) + prov_serves(ctx, PROV_G_P256);
        if (keys[i] == NULL || !prov_set_static(ctx, keys[i])) {
            return fail(err, MSP_ERR_ARGUMENT, "static key");
        }
        if (prov_serves(ctx, PROV_G_X25519) + prov_serves(ctx, PROV_G_P256) == before) {
            return msp_error_set(err, MSP_ERR_ARGUMENT, "ets_provider", "two static keys for one group");
        }
    }
    return MSP_OK;
}

int msp_ets_libctx_new(EVP_PKEY *const *keys, size_t n, OSSL_LIB_CTX **out, msp_error_t *err)
{
    *out = NULL;
    if (n == 0 || n > MSP_ETS_MAX_KEYS || keys == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, "ets_provider", "between 1 and %d static keys expected",
                             MSP_ETS_MAX_KEYS);
    }
    OSSL_LIB_CTX *lib = OSSL_LIB_CTX_new();
    if (lib == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, "ets_provider", "no library context");
    }
    int ret = install(lib, keys, n, err);
    if (ret != MSP_OK) {
        msp_ets_libctx_free(lib);
        return ret;
    }
    *out = lib;
    return MSP_OK;
}

/*
 * An ETS server context: TLS 1.3 with only the groups that have a static key (4.3.2, ets.md 3.1 ETS-KX-2: "a group
 * without a static key must not be negotiated"; clients get a HelloRetryRequest towards them, ets.md 8.3.6).
 */
int msp_ets_server_ctx_new(OSSL_LIB_CTX *lib, SSL_CTX **out, msp_error_t *err)
{
    *out = NULL;
    prov_ctx_t *ctx = lib != NULL ? ours(lib) : NULL;
    if (ctx == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, "ets_provider", "not a library context of msp_ets_libctx_new");
    }
    char groups[32] = "";
    if (prov_serves(ctx, PROV_G_X25519)) {
        strcat(groups, "x25519");
    }
    if (prov_serves(ctx, PROV_G_P256)) {
        strcat(groups, groups[0] ? ":secp256r1" : "secp256r1");
    }
    SSL_CTX *sctx = SSL_CTX_new_ex(lib, MSP_ETS_PROPQ, TLS_server_method());
    /* TLS 1.2 ECDHE would take a fresh key (no template), silently not ETS: 1.3 only (ets.md 8.3.5) */
    if (sctx == NULL || !SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(sctx, TLS1_3_VERSION) || !SSL_CTX_set1_groups_list(sctx, groups)) {
        int ret = fail(err, MSP_ERR_NO_MEMORY, "server SSL_CTX");
        SSL_CTX_free(sctx);
        return ret;
    }
    *out = sctx;
    return MSP_OK;
}

typedef struct loaded {
    OSSL_PROVIDER *p[MSP_ETS_MAX_PROVIDERS];
    size_t n;
} loaded_t;

static int collect(OSSL_PROVIDER *p, void *arg)
{
    loaded_t *l = arg;
    if (l->n < MSP_ETS_MAX_PROVIDERS) {
        l->p[l->n++] = p;
    }
    return 1;
}

void msp_ets_libctx_free(OSSL_LIB_CTX *lib)
{
    if (lib == NULL) {
        return;
    }
    /* OSSL_LIB_CTX_free alone leaves loaded providers' memory behind (3.0): unload ours first */
    loaded_t l = {.n = 0};
    OSSL_PROVIDER_do_all(lib, collect, &l);
    for (size_t i = l.n; i-- > 0;) {
        OSSL_PROVIDER_unload(l.p[i]);
    }
    OSSL_LIB_CTX_free(lib);
}
