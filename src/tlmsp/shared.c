/*
 * The per-process part of the handshake (msp_tlmsp_shared_t). Parsing a certificate costs as much as an X25519
 * key exchange in OpenSSL 3.0 (its key goes through the provider decoders, which are set up anew at every
 * parse); a middlebox parses the server's certificate in every session, and it is nearly always the same one.
 * Keeping the parsed X509 by its exact DER bytes gives the same object a fresh parse would, without the cost.
 */
#include "tlmsp_shared.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "msp/error.h"
#include "../common/guard.h"

typedef struct cert_entry {
    uint8_t *der;
    size_t len;
    X509 *x;
} cert_entry_t;

struct msp_tlmsp_shared {
    CRYPTO_RWLOCK *lock; /* guards the certificates: connections on several threads share one */
    cert_entry_t *certs;
    size_t max, n, next; /* next: the slot replaced when all max are taken (the oldest) */
};

int msp_tlmsp_shared_new(const msp_tlmsp_shared_cfg_t *cfg, msp_tlmsp_shared_t **out)
{
    MSP_ENSURE(out != NULL, MSP_ERR_ARGUMENT);
    *out = NULL;
    msp_tlmsp_shared_t *sh = calloc(1, sizeof(*sh));
    MSP_ENSURE(sh != NULL, MSP_ERR_NO_MEMORY);
    sh->max = cfg != NULL && cfg->max_certs > 0 ? cfg->max_certs : MSP_TLMSP_SHARED_CERTS;
    sh->lock = CRYPTO_THREAD_lock_new();
    sh->certs = calloc(sh->max, sizeof(*sh->certs));
    if (sh->lock == NULL || sh->certs == NULL) {
        msp_tlmsp_shared_free(sh);
        return MSP_ERR_NO_MEMORY;
    }
    *out = sh;
    return MSP_OK;
}

void msp_tlmsp_shared_free(msp_tlmsp_shared_t *sh)
{
    if (sh == NULL) {
        return;
    }
    for (size_t i = 0; sh->certs != NULL && i < sh->n; i++) {
        free(sh->certs[i].der);
        X509_free(sh->certs[i].x);
    }
    free(sh->certs);
    CRYPTO_THREAD_lock_free(sh->lock);
    free(sh);
}

static X509 *parse(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    X509 *x = len <= (size_t)LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (x != NULL && p != der + len) { /* trailing bytes: not the certificate's encoding */
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* A referenced X509 for exactly these bytes, or NULL; under the read lock. */
static X509 *find(msp_tlmsp_shared_t *sh, const uint8_t *der, size_t len)
{
    X509 *x = NULL;
    if (!CRYPTO_THREAD_read_lock(sh->lock)) {
        return NULL;
    }
    for (size_t i = 0; i < sh->n && x == NULL; i++) {
        const cert_entry_t *e = &sh->certs[i];
        if (e->len == len && memcmp(e->der, der, len) == 0 && X509_up_ref(e->x) == 1) {
            x = e->x;
        }
    }
    CRYPTO_THREAD_unlock(sh->lock);
    return x;
}

/* Keeps x (a reference of its own) for der; a failure to keep it only costs the next session a parse. */
static void keep(msp_tlmsp_shared_t *sh, const uint8_t *der, size_t len, X509 *x)
{
    uint8_t *copy = malloc(len);
    if (copy == NULL || X509_up_ref(x) != 1) {
        free(copy);
        return;
    }
    memcpy(copy, der, len);
    if (!CRYPTO_THREAD_write_lock(sh->lock)) {
        free(copy);
        X509_free(x);
        return;
    }
    cert_entry_t *e = &sh->certs[sh->n < sh->max ? sh->n++ : sh->next];
    if (e->x != NULL) { /* all slots taken: the oldest goes */
        free(e->der);
        X509_free(e->x);
        sh->next = (sh->next + 1) % sh->max;
    }
    *e = (cert_entry_t){copy, len, x};
    CRYPTO_THREAD_unlock(sh->lock);
}

int msp_tlmsp_shared_x509(msp_tlmsp_shared_t *sh, const uint8_t *der, size_t len, X509 **x)
{
    *x = sh != NULL ? find(sh, der, len) : NULL;
    if (*x != NULL) {
        return MSP_OK;
    }
    *x = parse(der, len);
    if (*x == NULL) {
        return MSP_ALERT_BAD_CERTIFICATE;
    }
    if (sh != NULL && len <= MSP_TLMSP_SHARED_CERT_MAX) {
        keep(sh, der, len, *x);
    }
    return MSP_OK;
}
