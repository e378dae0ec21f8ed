/*
 * An ETS key manager (TS 103 523-3 V1.3.1 clauses 4.3.5-4.3.8; ets.md 3.4
 * ETS-KT-1..4, 3.5): static (EC)DH keys per group, rotated, expired and
 * retired, handed out as RFC 5958 key packages (msp/ets_keypkg.h), with
 * server certificates issued on request (msp/ets_cert.h).
 *
 * Sans-IO: time is a parameter of every call; storage is a small callback
 * interface the caller supplies (msp_ets_keymgr_dir_store() is a ready one
 * for a directory); HTTP and TLS stay with the caller, who passes the query
 * string of GET /.well-known/enterprise-transport-security/keys and maps
 * the returned code to an HTTP status (msp_ets_keymgr_http_status()).
 *
 * Lifetimes: a key made at T is valid [T, T + lifetime) and is the current
 * key of its group while valid (the newest one wins); it stays findable by
 * fingerprint until T + lifetime + retention, when it is retired: no lookup
 * finds it any more (whether or not msp_ets_keymgr_tick ran) and its store
 * record is removed at the next tick.
 *
 * Not thread-safe: one manager, one caller at a time.
 */
#ifndef MSP_ETS_KEYMGR_H
#define MSP_ETS_KEYMGR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "msp/api.h"
#include "msp/buf.h"
#include "msp/error.h"
#include "msp/ets.h"
#include "msp/ets_keypkg.h"

#define MSP_ETS_KEYMGR_KEYS_PATH "/.well-known/enterprise-transport-security/keys" /* GET (ETS-KT-3) */
#define MSP_ETS_KEYMGR_PUSH_PATH "/enterprise-transport-security/keys"             /* PUT (ETS-KT-2) */

#define MSP_ETS_KEYMGR_X25519 0x1u /* groups */
#define MSP_ETS_KEYMGR_P256 0x2u

#define MSP_ETS_KEYMGR_MAX_KEYS 1024                  /* default and upper bound of cfg.max_keys */
#define MSP_ETS_KEYMGR_MAX_RECORD 16384               /* bytes of one store record */
#define MSP_ETS_KEYMGR_MAX_NAME 64                    /* bytes of a record name, NUL included */
#define MSP_ETS_KEYMGR_MAX_CERTS 4                    /* certs= pairs in one request */
#define MSP_ETS_KEYMGR_MAX_QUERY 4096                 /* bytes of one query string */
#define MSP_ETS_KEYMGR_MAX_TIME (100LL * 365 * 86400) /* rotate, lifetime, retention */

/**
 * The caller's storage of key records: small named blobs (names like
 * "x25519-0123456789abcdef0123.pem", [a-z0-9.-] only). Each callback returns
 * MSP_OK or an error code (MSP_ERR_IO ...), which the manager passes on.
 */
typedef struct msp_ets_keymgr_store {
    void *user;
    /** Stores name = data, replacing it atomically (never half a record). */
    int (*save)(void *user, const char *name, const uint8_t *data, size_t len);
    /** Removes name; a name that is not there is no error. */
    int (*remove)(void *user, const char *name);
    /** Calls each(ctx, name, data, len) once per record; stops and returns what each returns if not MSP_OK. */
    int (*list)(void *user, int (*each)(void *ctx, const char *name, const uint8_t *data, size_t len), void *ctx);
} msp_ets_keymgr_store_t;

typedef enum msp_ets_keymgr_event_kind {
    MSP_ETS_KEYMGR_NEW_KEY,     /* a key was made and stored */
    MSP_ETS_KEYMGR_RETIRED_KEY, /* a key passed not_after + retention; its record was removed */
    MSP_ETS_KEYMGR_SKIPPED,     /* a store record is not a key record (name says which) */
    MSP_ETS_KEYMGR_STORE_ERROR, /* removing a retired key's record failed (it is tried again at the next tick) */
} msp_ets_keymgr_event_kind_t;

/** What happened, for the caller's log. Valid during the callback only. */
typedef struct msp_ets_keymgr_event {
    msp_ets_keymgr_event_kind_t kind;
    const char *group; /* "x25519", "p256"; NULL for SKIPPED */
    uint8_t fingerprint[MSP_ETS_FINGERPRINT_LEN];
    int64_t not_before, not_after;
    const char *name; /* the store record */
} msp_ets_keymgr_event_t;

typedef struct msp_ets_keymgr_cfg {
    unsigned groups;                     /* MSP_ETS_KEYMGR_X25519 | MSP_ETS_KEYMGR_P256, not 0 */
    int64_t rotate;                      /* seconds between new keys; 0: 86400 */
    int64_t lifetime;                    /* validity of a key; 0: 2 * rotate */
    int64_t retention;                   /* findable after expiry; 0: lifetime */
    size_t max_keys;                     /* keys on record; 0: MSP_ETS_KEYMGR_MAX_KEYS */
    const msp_ets_keymgr_store_t *store; /* required; copied */
    /* certificates for certs= (both or neither; up-referenced, freed with the manager) */
    X509 *ca_cert;
    EVP_PKEY *ca_key;
    const char *access; /* accessDescription of issued certificates; NULL: a default text; copied */
    void (*on_event)(void *user, const msp_ets_keymgr_event_t *ev);
    void *event_user;
} msp_ets_keymgr_cfg_t;

typedef struct msp_ets_keymgr msp_ets_keymgr_t;

/**
 * A manager holding the keys the store already has (records that are not
 * key records are skipped with an event). Makes no key: the first
 * msp_ets_keymgr_tick does. MSP_ERR_ARGUMENT for a bad cfg, MSP_ERR_LIMIT
 * when the store holds more than max_keys keys, the store's code when
 * listing fails, MSP_ERR_NO_MEMORY.
 */
MSP_API int msp_ets_keymgr_new(const msp_ets_keymgr_cfg_t *cfg, msp_ets_keymgr_t **out);

/** Frees the manager and its keys (the store's records stay). NULL is fine. */
MSP_API void msp_ets_keymgr_free(msp_ets_keymgr_t *km);

/** What a tick did and when to call again. */
typedef struct msp_ets_keymgr_tick {
    int rotated;  /* new keys were made (push them: msp_ets_keymgr_current) */
    int64_t next; /* the time of the next rotation or retirement */
} msp_ets_keymgr_tick_t;

/**
 * Makes a key per group when a rotation is due (the first call always),
 * retires keys past not_after + retention (record removed). MSP_ERR_LIMIT
 * when max_keys keys are on record, the store's code when saving fails (no
 * key is added then; the next tick tries again), MSP_ERR_NO_MEMORY.
 */
MSP_API int msp_ets_keymgr_tick(msp_ets_keymgr_t *km, int64_t now, msp_ets_keymgr_tick_t *out, msp_error_t *err);

/**
 * Answers GET MSP_ETS_KEYMGR_KEYS_PATH?query (query without the '?', may be
 * ""): fingerprints=HEX,... or groups=0x001d,0x0017[&certs=IS:SS,...]
 * [&context=DNSNAME], percent-encoding allowed. Appends the key package DER
 * to out on MSP_OK; otherwise err->detail is a one-line reason for the
 * client. MSP_ERR_SYNTAX / MSP_ERR_ARGUMENT (the client's fault: 400),
 * MSP_ERR_NOT_FOUND (no such key, or none current: 404), MSP_ALERT_INTERNAL_ERROR
 * (a package or certificate of our own failed), MSP_ERR_NO_MEMORY (500).
 */
MSP_API int msp_ets_keymgr_get(msp_ets_keymgr_t *km, const char *query, int64_t now, msp_buf_t *out, msp_error_t *err);

/**
 * The package to push (ETS-KT-2): the current key of every group, Type A
 * only. MSP_ERR_NOT_FOUND when no key is current.
 */
MSP_API int msp_ets_keymgr_current(msp_ets_keymgr_t *km, int64_t now, msp_buf_t *out, msp_error_t *err);

/* ---- the consumer's side (ets.md 3.4 ETS-KT-3, 3.5) ---- */

/**
 * Appends the target of a GET to a key manager: MSP_ETS_KEYMGR_KEYS_PATH
 * then either ?fingerprints=LIST (hex, comma-separated, as given) or
 * ?groups= the NamedGroups of the MSP_ETS_KEYMGR_* bits in groups, with
 * &certs=LIST ("ISSUER:SUBJECT,...") and &context=NAME when not NULL.
 * Values are percent-encoded where they hold anything but letters, digits
 * and "-._~,:". MSP_ERR_ARGUMENT unless exactly one of fingerprints and
 * groups is given, MSP_ERR_LIMIT past MSP_ETS_KEYMGR_MAX_QUERY.
 */
MSP_API int msp_ets_keymgr_target(const char *fingerprints, unsigned groups, const char *certs, const char *context,
                                  msp_buf_t *out, msp_error_t *err);

/**
 * The index in statics[0..n) of the newest key of group (0x001d, 0x0017)
 * valid at now (the one a consumer installs as its current key), or -1.
 */
MSP_API int msp_ets_keymgr_newest(const msp_ets_kp_static_t *statics, size_t n, uint16_t group, int64_t now);

/* ---- media types (ets.md 3.4 ETS-KT-1, ETS-KP-2) ---- */

#define MSP_ETS_KEYMGR_TYPE_PKCS8 "application/pkcs8"    /* a plain package */
#define MSP_ETS_KEYMGR_TYPE_CMS "application/pkcs7-mime" /* a CMS-wrapped one (msp_ets_keypkg_cms_wrap) */

#define MSP_ETS_KEYMGR_ACCEPT_PKCS8 0x1u
#define MSP_ETS_KEYMGR_ACCEPT_CMS 0x2u

/**
 * What an HTTP Accept header value asks for: MSP_ETS_KEYMGR_ACCEPT_CMS when
 * it names application/pkcs7-mime or application/cms (the spec's pull
 * example says application/cms, 4.3.8.1 application/pkcs7-mime: both are
 * taken), MSP_ETS_KEYMGR_ACCEPT_PKCS8 when it names application/pkcs8, a
 * wildcard (any subtype of application, or any type at all), or accept
 * is NULL or blank (no header:
 * the plain package, as before CMS). A range with q=0 is refused, not
 * accepted; case does not matter; parameters other than q are ignored. A
 * wildcard never asks for CMS: a client that wants it says so.
 */
MSP_API unsigned msp_ets_keymgr_accept(const char *accept);

/**
 * The media type of a Content-Type header value: MSP_ETS_KEYMGR_ACCEPT_CMS
 * for application/pkcs7-mime or application/cms, MSP_ETS_KEYMGR_ACCEPT_PKCS8
 * for application/pkcs8, 0 for anything else or NULL (parameters ignored).
 */
MSP_API unsigned msp_ets_keymgr_content_type(const char *content_type);

/** What a consumer opens CMS-wrapped packages with (all borrowed). */
typedef struct msp_ets_keymgr_cms {
    X509 *cert;           /* ours, the recipient: the certificate the consumer authenticates with */
    EVP_PKEY *key;        /* its key */
    X509 *const *trusted; /* the signers trusted (the key manager's certificate, or its CA) */
    size_t n_trusted;     /* 1..MSP_ETS_KP_MAX_TRUSTED */
} msp_ets_keymgr_cms_t;

/**
 * A key package as a consumer received it (a GET's response body or a
 * PUT's), typed by its Content-Type header value, into the package DER
 * appended to out (for msp_ets_keypkg_decode). CMS
 * (msp_ets_keymgr_content_type) is unwrapped and verified at now with cms
 * (msp_ets_keypkg_cms_unwrap and its codes; cms NULL: MSP_ERR_ARGUMENT). A
 * body of any other type is taken as the plain package, unless require_cms:
 * then it is refused with MSP_ERR_INVALID (never a silent fall-back to a
 * package no one signed). Nothing is appended on failure; err->detail says
 * why in one line.
 */
MSP_API int msp_ets_keymgr_receive(const uint8_t *body, size_t len, const char *content_type,
                                   const msp_ets_keymgr_cms_t *cms, int require_cms, int64_t now, msp_buf_t *out,
                                   msp_error_t *err);

/** The HTTP status for a code of msp_ets_keymgr_get: 200, 400, 404 or 500. */
MSP_API int msp_ets_keymgr_http_status(int code);

/** Keys on record (findable or awaiting removal). */
MSP_API size_t msp_ets_keymgr_count(const msp_ets_keymgr_t *km);

/**
 * A store on a directory: one file per record (mode 0600, written to a
 * temporary file, fsynced and renamed), files ending in ".pem" listed,
 * temporary files ("*.tmp.*") and files over MSP_ETS_KEYMGR_MAX_RECORD
 * skipped. dir is borrowed and must outlive the store. MSP_ERR_IO with the
 * reason when dir is not an accessible directory.
 */
MSP_API int msp_ets_keymgr_dir_store(const char *dir, msp_ets_keymgr_store_t *store, msp_error_t *err);

#endif
