/*
 * The msp-ets provider: entry point, configuration, TLS-GROUP capabilities and the static key store (ets.md 8.3).
 * It makes an OpenSSL 3 server the ETS server of ETSI TS 103 523-3 4.3.1-4.3.2 (ets.md 3.1): ordinary TLS 1.3
 * but for a static key share, one static key pair per group.
 */
#include "prov.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/prov_ssl.h>
#include <openssl/provider.h>

static const char *const group_names[PROV_NGROUPS] = {"x25519", "secp256r1"};

const char *prov_group_name(int group)
{
    return group >= 0 && group < PROV_NGROUPS ? group_names[group] : "?";
}

void prov_error(const prov_ctx_t *ctx, int reason, const char *fmt, ...)
{
    if (ctx->new_error == NULL || ctx->vset_error == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    ctx->new_error(ctx->handle);
    if (ctx->set_error_debug != NULL) {
        ctx->set_error_debug(ctx->handle, __FILE__, __LINE__, "msp-ets");
    }
    ctx->vset_error(ctx->handle, reason, fmt, ap);
    va_end(ap);
}

int prov_serves(const prov_ctx_t *ctx, int group)
{
    return ctx->keys[group].inner != NULL || ctx->keys[group].path != NULL;
}

/* --- the private `default` library context --- */

static const char *const inner_alg[PROV_NGROUPS] = {"X25519", "EC"};

/* The first name of "X25519:1.3.101.110" is the one we compare. */
static int first_name_is(const char *names, const char *want)
{
    size_t n = strlen(want);
    return strncmp(names, want, n) == 0 && (names[n] == '\0' || names[n] == ':');
}

static void inner_fill(prov_inner_t *in, const OSSL_DISPATCH *d)
{
    for (; d->function_id != 0; d++) {
        switch (d->function_id) {
        case OSSL_FUNC_KEYMGMT_NEW:
            in->new_key = OSSL_FUNC_keymgmt_new(d);
            break;
        case OSSL_FUNC_KEYMGMT_FREE:
            in->free_key = OSSL_FUNC_keymgmt_free(d);
            break;
        case OSSL_FUNC_KEYMGMT_GEN_INIT:
            in->gen_init = OSSL_FUNC_keymgmt_gen_init(d);
            break;
        case OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE:
            in->gen_set_template = OSSL_FUNC_keymgmt_gen_set_template(d);
            break;
        case OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS:
            in->gen_set_params = OSSL_FUNC_keymgmt_gen_set_params(d);
            break;
        case OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS:
            in->gen_settable_params = OSSL_FUNC_keymgmt_gen_settable_params(d);
            break;
        case OSSL_FUNC_KEYMGMT_GEN:
            in->gen = OSSL_FUNC_keymgmt_gen(d);
            break;
        case OSSL_FUNC_KEYMGMT_GEN_CLEANUP:
            in->gen_cleanup = OSSL_FUNC_keymgmt_gen_cleanup(d);
            break;
        case OSSL_FUNC_KEYMGMT_GET_PARAMS:
            in->get_params = OSSL_FUNC_keymgmt_get_params(d);
            break;
        case OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS:
            in->gettable_params = OSSL_FUNC_keymgmt_gettable_params(d);
            break;
        case OSSL_FUNC_KEYMGMT_SET_PARAMS:
            in->set_params = OSSL_FUNC_keymgmt_set_params(d);
            break;
        case OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS:
            in->settable_params = OSSL_FUNC_keymgmt_settable_params(d);
            break;
        case OSSL_FUNC_KEYMGMT_HAS:
            in->has = OSSL_FUNC_keymgmt_has(d);
            break;
        case OSSL_FUNC_KEYMGMT_VALIDATE:
            in->validate = OSSL_FUNC_keymgmt_validate(d);
            break;
        case OSSL_FUNC_KEYMGMT_MATCH:
            in->match = OSSL_FUNC_keymgmt_match(d);
            break;
        case OSSL_FUNC_KEYMGMT_IMPORT:
            in->import = OSSL_FUNC_keymgmt_import(d);
            break;
        case OSSL_FUNC_KEYMGMT_EXPORT:
            in->export_key = OSSL_FUNC_keymgmt_export(d);
            break;
        case OSSL_FUNC_KEYMGMT_DUP:
            in->dup = OSSL_FUNC_keymgmt_dup(d);
            break;
        default:
            break;
        }
    }
}

/* The functions every wrapper relies on without checking. */
static int inner_complete(const prov_inner_t *in)
{
    return in->new_key && in->free_key && in->gen_init && in->gen && in->gen_cleanup && in->get_params && in->has &&
           in->import && in->export_key && in->dup;
}

/*
 * Our own library context with `default` alone: the inner keys come from
 * there, so no fetch we make can select msp-ets again (no recursion, whatever
 * default_properties the host configured).
 */
static int inner_setup(prov_ctx_t *ctx)
{
    ctx->inner_lib = OSSL_LIB_CTX_new();
    if (ctx->inner_lib == NULL) {
        return 0;
    }
    ctx->inner_prov = OSSL_PROVIDER_load(ctx->inner_lib, "default");
    if (ctx->inner_prov == NULL) {
        return 0;
    }
    ctx->inner_provctx = OSSL_PROVIDER_get0_provider_ctx(ctx->inner_prov);
    int no_cache = 0;
    const OSSL_ALGORITHM *algs = OSSL_PROVIDER_query_operation(ctx->inner_prov, OSSL_OP_KEYMGMT, &no_cache);
    for (const OSSL_ALGORITHM *a = algs; a != NULL && a->algorithm_names != NULL; a++) {
        for (int g = 0; g < PROV_NGROUPS; g++) {
            if (first_name_is(a->algorithm_names, inner_alg[g]) && ctx->inner[g].new_key == NULL) {
                inner_fill(&ctx->inner[g], a->implementation);
            }
        }
    }
    OSSL_PROVIDER_unquery_operation(ctx->inner_prov, OSSL_OP_KEYMGMT, algs);
    for (int g = 0; g < PROV_NGROUPS; g++) {
        if (!inner_complete(&ctx->inner[g])) {
            return 0;
        }
    }
    return 1;
}

int prov_ready(prov_ctx_t *ctx)
{
    if (!CRYPTO_THREAD_read_lock(ctx->lock)) {
        return 0;
    }
    int ready = ctx->ready;
    CRYPTO_THREAD_unlock(ctx->lock);
    if (ready) {
        return 1;
    }
    if (!CRYPTO_THREAD_write_lock(ctx->lock)) {
        return 0;
    }
    if (!ctx->ready && !ctx->broken) {
        ctx->ready = inner_setup(ctx);
        ctx->broken = !ctx->ready;
    }
    ready = ctx->ready;
    CRYPTO_THREAD_unlock(ctx->lock);
    if (!ready) {
        prov_error(ctx, PROV_REASON_NO_STATIC, "msp-ets: cannot use the default provider's X25519/EC key management");
    }
    return ready;
}

/* --- static keys --- */

static int key_fits(EVP_PKEY *pk, int group)
{
    if (group == PROV_G_X25519) {
        return EVP_PKEY_is_a(pk, "X25519");
    }
    char name[32];
    return EVP_PKEY_is_a(pk, "EC") &&
           EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), NULL) == 1 &&
           strcmp(name, "prime256v1") == 0;
}

/* OSSL_PARAM_clear_free arrived after 3.0: the private key must not stay in freed memory. */
static void params_clear_free(OSSL_PARAM *params)
{
    for (OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++) {
        if (p->data != NULL && p->data_size > 0) {
            OPENSSL_cleanse(p->data, p->data_size);
        }
    }
    OSSL_PARAM_free(params);
}

/* The inner key data of pk (which may live in any library context), or NULL. */
static void *inner_from_pkey(prov_ctx_t *ctx, int group, EVP_PKEY *pk)
{
    OSSL_PARAM *params = NULL;
    if (EVP_PKEY_todata(pk, EVP_PKEY_KEYPAIR, &params) != 1) {
        return NULL;
    }
    const prov_inner_t *in = &ctx->inner[group];
    void *k = in->new_key(ctx->inner_provctx);
    if (k != NULL && !in->import(k, OSSL_KEYMGMT_SELECT_ALL, params)) {
        in->free_key(k);
        k = NULL;
    }
    params_clear_free(params);
    return k;
}

static int group_of_pkey(EVP_PKEY *pk)
{
    for (int g = 0; g < PROV_NGROUPS; g++) {
        if (key_fits(pk, g)) {
            return g;
        }
    }
    return -1;
}

/* "one static key pair per elliptic curve / finite field size it supports" (4.3.2, ets.md 3.1 ETS-KX-2). */
int prov_set_static(prov_ctx_t *ctx, EVP_PKEY *key)
{
    int g = key != NULL ? group_of_pkey(key) : -1;
    if (g < 0) {
        prov_error(ctx, PROV_REASON_BAD_KEY, "msp-ets: a static key must be an X25519 or P-256 private key");
        return 0;
    }
    if (!prov_ready(ctx)) {
        return 0;
    }
    void *k = inner_from_pkey(ctx, g, key);
    if (k == NULL || !ctx->inner[g].has(k, OSSL_KEYMGMT_SELECT_PRIVATE_KEY)) {
        if (k != NULL) {
            ctx->inner[g].free_key(k);
        }
        prov_error(ctx, PROV_REASON_BAD_KEY, "msp-ets: the static %s key has no private part", group_names[g]);
        return 0;
    }
    if (!CRYPTO_THREAD_write_lock(ctx->lock)) {
        ctx->inner[g].free_key(k);
        return 0;
    }
    void *old = ctx->keys[g].inner;
    ctx->keys[g].inner = k;
    CRYPTO_THREAD_unlock(ctx->lock);
    if (old != NULL) {
        ctx->inner[g].free_key(old);
    }
    return 1;
}

/* Never prompt on a terminal from inside somebody's server: encrypted key files are refused. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int same_file(const prov_static_t *st, const struct stat *sb)
{
    return st->loaded_once && st->dev == sb->st_dev && st->ino == sb->st_ino && st->size == sb->st_size &&
           st->mtime.tv_sec == sb->st_mtim.tv_sec && st->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

/*
 * Reads the key file when its stat signature differs from the one last
 * seen. The signature is taken from the open descriptor, so it describes the
 * bytes we read even when the file is replaced meanwhile. A file that fails
 * keeps the previous key (rotation must not take a running server down) and
 * is not retried until it changes again. Called with the write lock held.
 * TS 103 523-3 4.3.2 (ets.md 3.1 ETS-KX-3): an installed key pair is "rotated
 * as necessary".
 */
static void reload_if_changed(prov_ctx_t *ctx, prov_static_t *st, int group)
{
    struct stat sb;
    if (stat(st->path, &sb) != 0 || same_file(st, &sb)) {
        return; /* gone for a moment (rename in progress) or unchanged: keep what we have */
    }
    FILE *f = fopen(st->path, "r");
    if (f == NULL) {
        return;
    }
    void *k = NULL;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size <= PROV_MAX_KEY_FILE) {
        BIO *bio = BIO_new_fp(f, BIO_NOCLOSE);
        EVP_PKEY *pk =
            bio != NULL ? PEM_read_bio_PrivateKey_ex(bio, NULL, no_password, NULL, ctx->inner_lib, "provider=default")
                        : NULL;
        if (pk != NULL && key_fits(pk, group)) {
            k = inner_from_pkey(ctx, group, pk);
        }
        EVP_PKEY_free(pk);
        BIO_free(bio);
    }
    fclose(f);
    st->loaded_once = 1;
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
    st->mtime = sb.st_mtim;
    if (k != NULL) {
        if (st->inner != NULL) {
            ctx->inner[group].free_key(st->inner);
        }
        st->inner = k;
    }
}

void *prov_static_dup(prov_ctx_t *ctx, int group)
{
    if (!prov_ready(ctx)) {
        return NULL;
    }
    if (!CRYPTO_THREAD_write_lock(ctx->lock)) {
        return NULL;
    }
    prov_static_t *st = &ctx->keys[group];
    if (st->path != NULL) {
        /* the decoder's complaints about a bad new file are not the handshake's error */
        ERR_set_mark();
        reload_if_changed(ctx, st, group);
        ERR_pop_to_mark();
    }
    void *k = st->inner != NULL ? ctx->inner[group].dup(st->inner, OSSL_KEYMGMT_SELECT_ALL) : NULL;
    int had = st->inner != NULL;
    CRYPTO_THREAD_unlock(ctx->lock);
    if (k == NULL) {
        prov_error(ctx, PROV_REASON_NO_STATIC, "msp-ets: no static key for group %s%s%s", group_names[group],
                   had                ? " (copy failed)"
                   : st->path != NULL ? ": cannot load "
                                      : "",
                   had || st->path == NULL ? "" : st->path);
    }
    return k;
}

/* --- provider functions --- */

/* TLS-GROUP entries as the default provider of 3.0 gives them (providers/common/capabilities.c). */
static const unsigned int x25519_id = 0x001d, p256_id = 0x0017, secbits = 128, not_kem = 0;
static const int tls1 = TLS1_VERSION, dtls1 = DTLS1_VERSION, unlimited = 0, unsupported = -1;

#define GROUP_ENTRY(tlsname, internal, alg, id, mindtls, maxdtls)                                                      \
    {                                                                                                                  \
        OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME, (char *)tlsname, sizeof(tlsname)),                      \
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_NAME_INTERNAL, (char *)internal, sizeof(internal)),       \
            OSSL_PARAM_utf8_string(OSSL_CAPABILITY_TLS_GROUP_ALG, (char *)alg, sizeof(alg)),                           \
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_ID, (unsigned int *)&id),                                        \
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_SECURITY_BITS, (unsigned int *)&secbits),                        \
            OSSL_PARAM_uint(OSSL_CAPABILITY_TLS_GROUP_IS_KEM, (unsigned int *)&not_kem),                               \
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_TLS, (int *)&tls1),                                           \
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_TLS, (int *)&unlimited),                                      \
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MIN_DTLS, (int *)&mindtls),                                       \
            OSSL_PARAM_int(OSSL_CAPABILITY_TLS_GROUP_MAX_DTLS, (int *)&maxdtls), OSSL_PARAM_END                        \
    }

static const OSSL_PARAM cap_x25519[] = GROUP_ENTRY("x25519", "X25519", "X25519", x25519_id, unsupported, unsupported);
static const OSSL_PARAM cap_secp256r1[] = GROUP_ENTRY("secp256r1", "prime256v1", "EC", p256_id, dtls1, unlimited);
static const OSSL_PARAM cap_p256[] = GROUP_ENTRY("P-256", "prime256v1", "EC", p256_id, dtls1, unlimited);

static int prov_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb, void *arg)
{
    const prov_ctx_t *ctx = provctx;
    if (OPENSSL_strcasecmp(capability, "TLS-GROUP") != 0) {
        return 0;
    }
    /* only groups with a static key: anything else stays with `default` (ets.md 8.3.4) */
    if (prov_serves(ctx, PROV_G_X25519) && !cb(cap_x25519, arg)) {
        return 0;
    }
    if (prov_serves(ctx, PROV_G_P256) && (!cb(cap_secp256r1, arg) || !cb(cap_p256, arg))) {
        return 0;
    }
    return 1;
}

static const OSSL_PARAM *prov_gettable_params(void *provctx)
{
    (void)provctx;
    static const OSSL_PARAM table[] = {OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
                                       OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL, 0),
                                       OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL, 0),
                                       OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
                                       OSSL_PARAM_END};
    return table;
}

static int prov_get_params(void *provctx, OSSL_PARAM params[])
{
    (void)provctx;
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL && !OSSL_PARAM_set_utf8_ptr(p, PROV_NAME)) {
        return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL && !OSSL_PARAM_set_utf8_ptr(p, PROV_VERSION)) {
        return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, "msp " PROV_VERSION)) {
        return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL && !OSSL_PARAM_set_int(p, 1)) {
        return 0;
    }
    return 1;
}

static const OSSL_ALGORITHM *prov_query(void *provctx, int operation_id, int *no_cache)
{
    *no_cache = 0;
    return operation_id == OSSL_OP_KEYMGMT ? prov_keymgmt_algs(provctx) : NULL;
}

static const OSSL_ITEM *prov_reasons(void *provctx)
{
    (void)provctx;
    static const OSSL_ITEM reasons[] = {
        {PROV_REASON_NO_STATIC, "no static key"}, {PROV_REASON_BAD_KEY, "unusable static key"}, {0, NULL}};
    return reasons;
}

static void prov_teardown(void *provctx)
{
    prov_ctx_t *ctx = provctx;
    for (int g = 0; g < PROV_NGROUPS; g++) {
        if (ctx->keys[g].inner != NULL) {
            ctx->inner[g].free_key(ctx->keys[g].inner);
        }
        OPENSSL_free(ctx->keys[g].path);
    }
    /* freeing a library context alone leaves a loaded provider's memory behind (3.0) */
    OSSL_PROVIDER_unload(ctx->inner_prov);
    OSSL_LIB_CTX_free(ctx->inner_lib);
    CRYPTO_THREAD_lock_free(ctx->lock);
    OPENSSL_free(ctx);
}

static const OSSL_DISPATCH prov_dispatch[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))prov_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))prov_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))prov_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))prov_query},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))prov_reasons},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))prov_get_capabilities},
    {0, NULL}};

/*
 * The key file paths of our openssl.cnf section; absent keys are simply not served. Loading the module with them
 * is the explicit enabling that TS 103 523-3 clause 5 requires (ets.md 3.1 ETS-KX-4).
 */
static int read_config(prov_ctx_t *ctx, OSSL_FUNC_core_get_params_fn *get_params)
{
    char *paths[PROV_NGROUPS] = {NULL, NULL};
    OSSL_PARAM req[] = {OSSL_PARAM_utf8_ptr(PROV_CONF_X25519, &paths[PROV_G_X25519], 0),
                        OSSL_PARAM_utf8_ptr(PROV_CONF_P256, &paths[PROV_G_P256], 0), OSSL_PARAM_END};
    if (get_params == NULL || !get_params(ctx->handle, req)) {
        return 1;
    }
    for (int g = 0; g < PROV_NGROUPS; g++) {
        if (paths[g] != NULL && paths[g][0] != '\0' && strlen(paths[g]) <= PROV_MAX_PATH) {
            ctx->keys[g].path = OPENSSL_strdup(paths[g]);
            if (ctx->keys[g].path == NULL) {
                return 0;
            }
        }
    }
    return 1;
}

int prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out, void **provctx)
{
    prov_ctx_t *ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx == NULL) {
        return 0;
    }
    ctx->handle = handle;
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    for (; in != NULL && in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            ctx->new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            ctx->set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            ctx->vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        default:
            break;
        }
    }
    ctx->lock = CRYPTO_THREAD_lock_new();
    if (ctx->lock == NULL || !read_config(ctx, get_params)) {
        prov_teardown(ctx);
        return 0;
    }
    /* nothing is loaded here: we may be inside the host's configuration loading (ets.md 8.3.9) */
    *out = prov_dispatch;
    *provctx = ctx;
    return 1;
}
