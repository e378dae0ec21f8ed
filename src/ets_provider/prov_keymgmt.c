/*
 * X25519 and EC key management of msp-ets: every call forwarded to the
 * default provider's key management (ets.md 8.3.1), except key generation
 * with a template, which is libssl asking for the TLS 1.3 server share
 * (ets.md 8.3.5): that one gets the static key. That is the one change ETSI
 * TS 103 523-3 4.3.1 makes to TLS 1.3: "the server's key_share comes from a
 * static key pair" (ets.md 3.1 ETS-KX-1).
 */
#include "prov.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

typedef struct prov_gen {
    prov_ctx_t *ctx;
    int group;
    void *inner;     /* the inner generation context, owned */
    int want_static; /* the template is a peer's public key: libssl's server share */
    char tgroup[32]; /* the template's curve (EC) */
} prov_gen_t;

static prov_key_t *wrap(prov_ctx_t *ctx, int group, void *inner, int is_static)
{
    if (inner == NULL) {
        return NULL;
    }
    prov_key_t *k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL) {
        ctx->inner[group].free_key(inner);
        return NULL;
    }
    k->ctx = ctx;
    k->group = group;
    k->inner = inner;
    k->is_static = is_static;
    return k;
}

static const prov_inner_t *in_of(const prov_key_t *k)
{
    return &k->ctx->inner[k->group];
}

/* --- functions on key data: the group travels with the key --- */

static void km_free(void *keydata)
{
    prov_key_t *k = keydata;
    if (k != NULL) {
        in_of(k)->free_key(k->inner);
        OPENSSL_free(k);
    }
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    prov_key_t *k = keydata;
    return in_of(k)->get_params(k->inner, params);
}

static int km_set_params(void *keydata, const OSSL_PARAM params[])
{
    prov_key_t *k = keydata;
    if (params == NULL || params[0].key == NULL) {
        return 1;
    }
    if (k->is_static || in_of(k)->set_params == NULL) {
        /* the server's share must stay the key the middleboxes hold (4.3.1, ets.md 8.3.1: refuse set_params) */
        return 0;
    }
    return in_of(k)->set_params(k->inner, params);
}

static int km_has(const void *keydata, int selection)
{
    const prov_key_t *k = keydata;
    return k != NULL && in_of(k)->has(k->inner, selection);
}

static int km_validate(const void *keydata, int selection, int checktype)
{
    const prov_key_t *k = keydata;
    /* the peer's share is checked here (point on curve...): never skip it */
    return in_of(k)->validate != NULL && in_of(k)->validate(k->inner, selection, checktype);
}

static int km_match(const void *keydata1, const void *keydata2, int selection)
{
    const prov_key_t *a = keydata1, *b = keydata2;
    return a->group == b->group && in_of(a)->match != NULL && in_of(a)->match(a->inner, b->inner, selection);
}

static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    prov_key_t *k = keydata;
    return !k->is_static && in_of(k)->import(k->inner, selection, params);
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    prov_key_t *k = keydata;
    return in_of(k)->export_key(k->inner, selection, cb, cbarg);
}

static void *km_dup(const void *keydata, int selection)
{
    const prov_key_t *k = keydata;
    return wrap(k->ctx, k->group, in_of(k)->dup(k->inner, selection), 0);
}

/* --- generation --- */

static int gen_set_template(void *genctx, void *templ)
{
    prov_gen_t *g = genctx;
    prov_key_t *t = templ;
    const prov_inner_t *in = &g->ctx->inner[g->group];
    if (t == NULL || t->group != g->group) {
        return 0;
    }
    if (in->gen_set_template != NULL && !in->gen_set_template(g->inner, t->inner)) {
        return 0;
    }
    /*
     * libssl passes the peer's share as template for the TLS 1.3 server
     * share; a parameters-only key (genpkey -paramfile) has no public key and
     * keeps getting fresh keys.
     */
    g->want_static = in->has(t->inner, OSSL_KEYMGMT_SELECT_PUBLIC_KEY);
    if (g->group == PROV_G_P256) {
        char *name = g->tgroup;
        OSSL_PARAM p[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(g->tgroup)), OSSL_PARAM_END};
        g->tgroup[0] = '\0';
        if (!in->get_params(t->inner, p)) {
            g->tgroup[0] = '\0';
        }
    }
    return 1;
}

static int gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    prov_gen_t *g = genctx;
    const prov_inner_t *in = &g->ctx->inner[g->group];
    return in->gen_set_params == NULL ? params == NULL || params[0].key == NULL : in->gen_set_params(g->inner, params);
}

static int is_p256(const char *name)
{
    return OPENSSL_strcasecmp(name, "prime256v1") == 0 || OPENSSL_strcasecmp(name, "P-256") == 0 ||
           OPENSSL_strcasecmp(name, "secp256r1") == 0;
}

/* The TLS 1.3 server share: the static key of the group (4.3.1-4.3.2, ETS-KX-1/2), or a refusal. */
static void *gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    prov_gen_t *g = genctx;
    if (!g->want_static) {
        return wrap(g->ctx, g->group, g->ctx->inner[g->group].gen(g->inner, cb, cbarg), 0);
    }
    if (g->group == PROV_G_P256 && !is_p256(g->tgroup)) {
        /* a curve negotiated without a static key: refuse rather than hand out a fresh share (ets.md 8.3.6) */
        prov_error(g->ctx, PROV_REASON_NO_STATIC, "msp-ets: no static key for group %s",
                   g->tgroup[0] != '\0' ? g->tgroup : "(unnamed curve)");
        return NULL;
    }
    return wrap(g->ctx, g->group, prov_static_dup(g->ctx, g->group), 1);
}

static void gen_cleanup(void *genctx)
{
    prov_gen_t *g = genctx;
    if (g != NULL) {
        g->ctx->inner[g->group].gen_cleanup(g->inner);
        OPENSSL_free(g);
    }
}

/* --- functions without key data: one copy per key manager --- */

static void *new_key(prov_ctx_t *ctx, int group)
{
    if (!prov_ready(ctx)) {
        return NULL;
    }
    return wrap(ctx, group, ctx->inner[group].new_key(ctx->inner_provctx), 0);
}

static void *gen_init(prov_ctx_t *ctx, int group, int selection, const OSSL_PARAM params[])
{
    if (!prov_ready(ctx)) {
        return NULL;
    }
    prov_gen_t *g = OPENSSL_zalloc(sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->ctx = ctx;
    g->group = group;
    g->inner = ctx->inner[group].gen_init(ctx->inner_provctx, selection, params);
    if (g->inner == NULL) {
        OPENSSL_free(g);
        return NULL;
    }
    return g;
}

static const OSSL_PARAM *gettable(prov_ctx_t *ctx, int group)
{
    const prov_inner_t *in = &ctx->inner[group];
    return prov_ready(ctx) && in->gettable_params != NULL ? in->gettable_params(ctx->inner_provctx) : NULL;
}

static const OSSL_PARAM *settable(prov_ctx_t *ctx, int group)
{
    const prov_inner_t *in = &ctx->inner[group];
    return prov_ready(ctx) && in->settable_params != NULL ? in->settable_params(ctx->inner_provctx) : NULL;
}

static const OSSL_PARAM *gen_settable(void *genctx, prov_ctx_t *ctx, int group)
{
    prov_gen_t *g = genctx;
    const prov_inner_t *in = &ctx->inner[group];
    if (!prov_ready(ctx) || in->gen_settable_params == NULL) {
        return NULL;
    }
    return in->gen_settable_params(g != NULL ? g->inner : NULL, ctx->inner_provctx);
}

/*
 * import_types/export_types get no provider context, so they cannot ask the
 * inner key manager: these are the default provider's lists (3.0).
 */
static const OSSL_PARAM ecx_types[] = {OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                                       OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0), OSSL_PARAM_END};

#define EC_DOMAIN_TYPES                                                                                                \
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),                                                       \
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),                                                  \
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),                                   \
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_FIELD_TYPE, NULL, 0), OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_P, NULL, 0),  \
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_A, NULL, 0), OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_B, NULL, 0),                    \
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_EC_GENERATOR, NULL, 0),                                                \
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_ORDER, NULL, 0), OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_COFACTOR, NULL, 0),         \
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_EC_SEED, NULL, 0),                                                     \
        OSSL_PARAM_int(OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS, NULL)

static const OSSL_PARAM ec_types[] = {EC_DOMAIN_TYPES,
                                      OSSL_PARAM_int(OSSL_PKEY_PARAM_USE_COFACTOR_ECDH, NULL),
                                      OSSL_PARAM_int(OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, NULL),
                                      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
                                      OSSL_PARAM_BN(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
                                      OSSL_PARAM_END};

static const OSSL_PARAM *x25519_types(int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0 ? ecx_types : NULL;
}

static const OSSL_PARAM *ec_types_of(int selection)
{
    return (selection & (OSSL_KEYMGMT_SELECT_KEYPAIR | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0 ? ec_types : NULL;
}

static const char *ec_operation_name(int operation_id)
{
    /* without these libcrypto looks for an "EC" exchange and signature (ets.md 8.3.2) */
    switch (operation_id) {
    case OSSL_OP_KEYEXCH:
        return "ECDH";
    case OSSL_OP_SIGNATURE:
        return "ECDSA";
    default:
        return NULL;
    }
}

#define PER_GROUP(pfx, G)                                                                                              \
    static void *pfx##_new(void *provctx)                                                                              \
    {                                                                                                                  \
        return new_key(provctx, G);                                                                                    \
    }                                                                                                                  \
    static void *pfx##_gen_init(void *provctx, int selection, const OSSL_PARAM params[])                               \
    {                                                                                                                  \
        return gen_init(provctx, G, selection, params);                                                                \
    }                                                                                                                  \
    static const OSSL_PARAM *pfx##_gettable(void *provctx)                                                             \
    {                                                                                                                  \
        return gettable(provctx, G);                                                                                   \
    }                                                                                                                  \
    static const OSSL_PARAM *pfx##_settable(void *provctx)                                                             \
    {                                                                                                                  \
        return settable(provctx, G);                                                                                   \
    }                                                                                                                  \
    static const OSSL_PARAM *pfx##_gen_settable(void *genctx, void *provctx)                                           \
    {                                                                                                                  \
        return gen_settable(genctx, provctx, G);                                                                       \
    }

PER_GROUP(x25519, PROV_G_X25519)
PER_GROUP(ec, PROV_G_P256)

#define COMMON_ENTRIES(pfx, types)                                                                                     \
    {OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))pfx##_new}, {OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))pfx##_gen_init},  \
        {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))pfx##_gettable},                                           \
        {OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))pfx##_settable},                                           \
        {OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))pfx##_gen_settable},                                   \
        {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))types},                                                       \
        {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))types}, {OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free},    \
        {OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params},                                                 \
        {OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))km_set_params},                                                 \
        {OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has}, {OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))km_validate},    \
        {OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match}, {OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import},    \
        {OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export}, {OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup},        \
        {OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))gen_set_template},                                        \
        {OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))gen_set_params},                                            \
        {OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))gen},                                                                  \
    {                                                                                                                  \
        OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))gen_cleanup                                                     \
    }

static const OSSL_DISPATCH x25519_km[] = {COMMON_ENTRIES(x25519, x25519_types), {0, NULL}};
static const OSSL_DISPATCH ec_km[] = {COMMON_ENTRIES(ec, ec_types_of),
                                      {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))ec_operation_name},
                                      {0, NULL}};

/*
 * The names the default provider uses, so that every lookup by name or OID
 * finds us; 3.0 does not add "provider=NAME" by itself, and without it
 * "?provider=msp-ets" never prefers us.
 */
#define X25519_ALG                                                                                                     \
    {                                                                                                                  \
        "X25519:1.3.101.110", "provider=" PROV_NAME, x25519_km, "msp-ets static X25519"                                \
    }
#define EC_ALG                                                                                                         \
    {                                                                                                                  \
        "EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=" PROV_NAME, ec_km, "msp-ets static P-256"                    \
    }

static const OSSL_ALGORITHM algs_both[] = {X25519_ALG, EC_ALG, {NULL, NULL, NULL, NULL}};
static const OSSL_ALGORITHM algs_x25519[] = {X25519_ALG, {NULL, NULL, NULL, NULL}};
static const OSSL_ALGORITHM algs_ec[] = {EC_ALG, {NULL, NULL, NULL, NULL}};
static const OSSL_ALGORITHM algs_none[] = {{NULL, NULL, NULL, NULL}};

const OSSL_ALGORITHM *prov_keymgmt_algs(const prov_ctx_t *ctx)
{
    /* an algorithm we override must have its group advertised, or libssl drops the group (ets.md 8.3.4) */
    int x = prov_serves(ctx, PROV_G_X25519), e = prov_serves(ctx, PROV_G_P256);
    return x && e ? algs_both : x ? algs_x25519 : e ? algs_ec : algs_none;
}
