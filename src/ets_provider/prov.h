/*
 * The msp-ets OpenSSL 3 provider (ets.md 8): X25519 and EC key management
 * that wraps the `default` provider's and, when libssl asks for the TLS 1.3
 * server key share, hands out the configured static key instead of a fresh
 * one. Key exchange and signatures stay in `default`.
 *
 * Only libcrypto here: these files are also linked into the loadable module
 * msp-ets.so, which is loaded into programs that are not ours.
 *
 * Every piece of state lives in the provider context (one per library
 * context that loaded us), so several library contexts in one process are
 * independent.
 */
#ifndef MSP_ETS_PROV_H
#define MSP_ETS_PROV_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define PROV_NAME "msp-ets"
#define PROV_VERSION "1.0"

/* openssl.cnf keys of the provider's section (docs/ets-provider.md) */
#define PROV_CONF_X25519 "x25519_key"
#define PROV_CONF_P256 "p256_key"

#define PROV_MAX_PATH 4096      /* a configured key path longer than this is ignored (refused at keygen) */
#define PROV_MAX_KEY_FILE 65536 /* a key file larger than this is not read */
#define PROV_REASON_NO_STATIC 1 /* our one error reason: ERR_GET_REASON of "no static key for group" */
#define PROV_REASON_BAD_KEY 2   /* a static key given to us is not for the group */

/* The groups that can have a static key. */
enum prov_group { PROV_G_X25519 = 0, PROV_G_P256 = 1, PROV_NGROUPS = 2 };

/* The key managers we serve; their index is the group's (one group each). */
typedef struct prov_inner {
    OSSL_FUNC_keymgmt_new_fn *new_key;
    OSSL_FUNC_keymgmt_free_fn *free_key;
    OSSL_FUNC_keymgmt_gen_init_fn *gen_init;
    OSSL_FUNC_keymgmt_gen_set_template_fn *gen_set_template;
    OSSL_FUNC_keymgmt_gen_set_params_fn *gen_set_params;
    OSSL_FUNC_keymgmt_gen_settable_params_fn *gen_settable_params;
    OSSL_FUNC_keymgmt_gen_fn *gen;
    OSSL_FUNC_keymgmt_gen_cleanup_fn *gen_cleanup;
    OSSL_FUNC_keymgmt_get_params_fn *get_params;
    OSSL_FUNC_keymgmt_gettable_params_fn *gettable_params;
    OSSL_FUNC_keymgmt_set_params_fn *set_params;
    OSSL_FUNC_keymgmt_settable_params_fn *settable_params;
    OSSL_FUNC_keymgmt_has_fn *has;
    OSSL_FUNC_keymgmt_validate_fn *validate;
    OSSL_FUNC_keymgmt_match_fn *match;
    OSSL_FUNC_keymgmt_import_fn *import;
    OSSL_FUNC_keymgmt_export_fn *export_key;
    OSSL_FUNC_keymgmt_dup_fn *dup;
} prov_inner_t;

/* One static key: the inner (default-provider) key data and what identifies its file. */
typedef struct prov_static {
    void *inner;     /* owned; NULL: none loaded */
    char *path;      /* module route: the configured file, owned; NULL in-process */
    int loaded_once; /* a file signature below is valid */
    dev_t dev;       /* signature of the file the key came from, or that failed last */
    ino_t ino;
    off_t size;
    struct timespec mtime;
} prov_static_t;

typedef struct prov_ctx {
    const OSSL_CORE_HANDLE *handle;
    OSSL_FUNC_core_new_error_fn *new_error;
    OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
    OSSL_FUNC_core_vset_error_fn *vset_error;
    CRYPTO_RWLOCK *lock;     /* guards everything below */
    int ready;               /* inner set up (lazily: never during provider init) */
    int broken;              /* setting up failed once; do not retry on every call */
    OSSL_LIB_CTX *inner_lib; /* private: `default` only, so no lookup can come back to us */
    OSSL_PROVIDER *inner_prov;
    void *inner_provctx;
    prov_inner_t inner[PROV_NGROUPS];
    prov_static_t keys[PROV_NGROUPS];
} prov_ctx_t;

/* Our key data: a wrapper around a default-provider key. */
typedef struct prov_key {
    prov_ctx_t *ctx;
    int group;     /* enum prov_group: which key manager */
    void *inner;   /* owned */
    int is_static; /* shared by every connection: refuse to change it */
} prov_key_t;

/** The provider entry point (both routes). */
OSSL_provider_init_fn prov_init;

/** Sets up the private `default` library context; 1 on success. Thread-safe, idempotent. */
int prov_ready(prov_ctx_t *ctx);

/**
 * In-process route: installs a static key (an X25519 or P-256 private
 * EVP_PKEY from any library context; copied, not kept). 1 on success; 0 and
 * an error on the queue for another kind of key.
 */
int prov_set_static(prov_ctx_t *ctx, EVP_PKEY *key);

/** 1 when group has a static key or a configured key file. */
int prov_serves(const prov_ctx_t *ctx, int group);

/**
 * A copy of the static inner key of group for one server share, reloading
 * the configured file when it changed; NULL with an error on the queue
 * naming the group when there is none.
 */
void *prov_static_dup(prov_ctx_t *ctx, int group);

/** Puts "msp-ets: ..." on the OpenSSL error queue through the core. */
void prov_error(const prov_ctx_t *ctx, int reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** The TLS group name of a group ("x25519", "secp256r1"). */
const char *prov_group_name(int group);

/** The keymgmt algorithm table (only the groups served by ctx). */
const OSSL_ALGORITHM *prov_keymgmt_algs(const prov_ctx_t *ctx);

#endif
