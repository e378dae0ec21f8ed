/* Internal to the key manager (keymgr.c, keymgr_get.c): the manager's state and the lookups both use. */
#ifndef MSP_ETS_KEYMGR_INTERNAL_H
#define MSP_ETS_KEYMGR_INTERNAL_H

#include "msp/ets_keymgr.h"
#include "msp/ets_keypkg.h"

typedef struct km_key {
    EVP_PKEY *key;
    unsigned group; /* MSP_ETS_KEYMGR_X25519 or MSP_ETS_KEYMGR_P256 */
    int64_t not_before, not_after;
    uint8_t fp[MSP_ETS_FINGERPRINT_LEN];
} km_key_t;

struct msp_ets_keymgr {
    unsigned groups;
    int64_t rotate, lifetime, retention;
    int64_t next_rotation; /* 0: no key made yet */
    size_t max_keys, n_keys;
    km_key_t *keys; /* max_keys of them */
    msp_ets_keymgr_store_t store;
    X509 *ca_cert;
    EVP_PKEY *ca_key;
    char *access;
    void (*on_event)(void *user, const msp_ets_keymgr_event_t *ev);
    void *event_user;
};

/* Not yet retired: findable by fingerprint. */
int keymgr_findable(const msp_ets_keymgr_t *km, const km_key_t *k, int64_t now);

/* The newest key of group valid at now, or NULL. */
const km_key_t *keymgr_current(const msp_ets_keymgr_t *km, unsigned group, int64_t now);

/* "x25519" or "p256". */
const char *keymgr_group_name(unsigned group);

/* The package DER of these keys and signers, appended to out. */
int keymgr_encode(const km_key_t *const *keys, size_t n, const msp_ets_kp_signer_t *signers, size_t n_signers,
                  msp_buf_t *out, msp_error_t *err);

#endif
