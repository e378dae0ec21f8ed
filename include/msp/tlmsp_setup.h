/*
 * From the reference's .ucl configuration (msp/tlmsp_cfg.h) to the engine
 * (msp/tlmsp_conn.h): what the reference's client, server and middlebox
 * programs derive from the file before they open a socket. Addresses as
 * they go on the wire, the contexts the client offers, the middlebox lists
 * of the client and of the server, access, ids, and the identity and trust
 * read from the configured PEM files.
 *
 * A setup owns everything the engine configurations it fills in point to
 * (lists, key, certificates, trust store, and the msp_tlmsp_shared_t its
 * connections share: built once per setup, not per session), so those stay
 * valid while it lives. No sockets: where to listen and connect is left to the caller
 * (msp_tlmsp_setup_entity() and msp_tlmsp_conn_first_hop()).
 */
#ifndef MSP_TLMSP_SETUP_H
#define MSP_TLMSP_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509_vfy.h>

#include "msp/api.h"
#include "msp/buf.h"
#include "msp/error.h"
#include "msp/tlmsp_cfg.h"
#include "msp/tlmsp_conn.h"

#define MSP_TLMSP_SETUP_MAX_CERTS 16 /* certificates read from one chain file */

/**
 * The address as it goes on the wire: the configured text, typed as the
 * reference types it (tlmsp-tools libtlmsp-util/address.c): a URL when it
 * has "://", else a MAC, an IPv4 or IPv6 literal, or a name. out->bytes
 * points into a.
 */
MSP_API void msp_tlmsp_setup_address(const msp_tlmsp_cfg_address_t *a, msp_tlmsp_address_t *out);

/** The contexts of the configuration, as the client offers them; points into cfg. */
MSP_API void msp_tlmsp_setup_contexts(const msp_tlmsp_cfg_t *cfg, msp_tlmsp_context_list_t *out);

/** MSP_TLMSP_ACCESS_* for a configured access. */
MSP_API uint8_t msp_tlmsp_setup_access(msp_tlmsp_cfg_access_t access);

/**
 * The middlebox list the client names (static, non-transparent entries, in
 * order, ids drawn with random in 0x02..0xfd as the reference's
 * tlmsp_middlebox_free_id() draws them) or, with server set, the list the
 * server accepts: the same plus the discovered ones (inserted = 1), which it
 * inserts, and the forbidden ones (inserted = 2), which it refuses; ids in
 * order from 0x02. Addresses point into cfg.
 */
MSP_API void msp_tlmsp_setup_middleboxes(const msp_tlmsp_cfg_t *cfg, bool server, msp_tlmsp_random_fn random,
                                         void *random_user, msp_tlmsp_mbox_list_t *out);

/** Fills buf from OpenSSL's DRBG; aborts when it has no randomness (nothing safe could follow). */
MSP_API void msp_tlmsp_setup_random(void *user, uint8_t *buf, size_t len);

typedef struct msp_tlmsp_setup_cfg {
    const msp_tlmsp_cfg_t *cfg; /* borrowed for the setup's life */
    msp_tlmsp_cfg_role_t role;
    const char *tag;            /* MSP_TLMSP_CFG_MIDDLEBOX: which middlebox */
    const char *pki_dir;        /* relative cert_file / cert_key_file: DIR/name, else DIR/private/name; NULL: "." */
    const char *trust_file;     /* PEM certificates every peer's must chain to; NULL: nothing verified */
    msp_tlmsp_random_fn random; /* NULL: msp_tlmsp_setup_random */
    void *random_user;
} msp_tlmsp_setup_cfg_t;

typedef struct msp_tlmsp_setup msp_tlmsp_setup_t;

/**
 * Checks the configuration has what the role needs (client: client and
 * server blocks; server: a server block; middlebox: one tagged tag), reads
 * the trust file and (server, middlebox) the certificate chain and key,
 * and builds the lists. MSP_OK, or MSP_ERR_INVALID / MSP_ERR_NOT_FOUND
 * (err->where the configuration), MSP_ERR_IO (err->where the file),
 * MSP_ERR_NO_MEMORY.
 */
MSP_API int msp_tlmsp_setup_new(const msp_tlmsp_setup_cfg_t *cfg, msp_tlmsp_setup_t **out, msp_error_t *err);
/** NULL is ignored. */
MSP_API void msp_tlmsp_setup_free(msp_tlmsp_setup_t *s);

/** The configuration block of the role: where it listens (server, middlebox) and what it runs. */
MSP_API const msp_tlmsp_cfg_entity_t *msp_tlmsp_setup_entity(const msp_tlmsp_setup_t *s);

/** The trust store (NULL without a trust file); owned by s. */
MSP_API X509_STORE *msp_tlmsp_setup_trust(const msp_tlmsp_setup_t *s);

/** A client's or server's engine configuration, with ev; every pointer in it is valid while s lives. */
MSP_API void msp_tlmsp_setup_endpoint(const msp_tlmsp_setup_t *s, const msp_tlmsp_events_t *ev,
                                      msp_tlmsp_endpoint_cfg_t *out);

/** A middlebox's engine configuration, with its container callback; valid while s lives. */
MSP_API void msp_tlmsp_setup_mbox(const msp_tlmsp_setup_t *s, msp_tlmsp_container_fn container, void *user,
                                  msp_tlmsp_mbox_cfg_t *out);

/**
 * A self-signed RSA-2048 certificate for common name cn, valid for days
 * days, and its key, both PEM, appended to cert_pem and key_pem: what
 * demos and tests use as a server's or middlebox's identity. MSP_OK or
 * MSP_ERR_NO_MEMORY (OpenSSL failed).
 */
MSP_API int msp_tlmsp_setup_selfsigned(const char *cn, unsigned days, msp_buf_t *cert_pem, msp_buf_t *key_pem);

#endif
