/*
 * The verdict of an ETS-aware client (TS 103 523-3 Annex B, ets.md 6), sans-IO:
 * what `msp ets probe` concludes from a few full TLS 1.3 handshakes with one
 * server. The caller runs the connections; per connection it hands over the
 * ServerHello handshake messages it received (a HelloRetryRequest and the
 * real ServerHello), and once the server certificate (DER). Out comes:
 *
 *   - whether the key share repeated over the connections (a static or
 *     long-lived key: the only signal an Annex A server gives);
 *   - the certificate's visibility information (ets.h) and, per entry,
 *     whether its fingerprint is that of the key share actually sent;
 *   - one verdict sentence, and whether the caller's policy refuses the server.
 *
 *   msp_ets_probe_conn_t conn[2] = {0};
 *   ... for every ServerHello message msg of connection i:
 *       msp_ets_probe_server_hello(&conn[i], msg, len, &err);
 *   msp_ets_probe_facts_t f = {conn, 2, cert_der, cert_len, {.require_visibility = 1}};
 *   msp_ets_probe_verdict_t *v = malloc(sizeof *v);   // large: the entries' text
 *   if (msp_ets_probe_judge(&f, v, &err) == MSP_OK && v->refused) ...
 *
 * The ServerHello is read by the passive decryptor's own parser.
 */
#ifndef MSP_ETS_PROBE_H
#define MSP_ETS_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "msp/api.h"
#include "msp/buf.h"
#include "msp/error.h"
#include "msp/ets.h"

#define MSP_ETS_PROBE_MAX_CONN 16   /* connections judged together */
#define MSP_ETS_PROBE_MAX_SHARE 133 /* key_exchange bytes kept (P-521 would be 133); longer ones are cut */

/** What one connection showed of the server's key share. */
typedef struct msp_ets_probe_conn {
    uint16_t group; /* NamedGroup of the ServerHello's key_share */
    uint8_t share[MSP_ETS_PROBE_MAX_SHARE];
    size_t share_len;
    uint8_t fingerprint[MSP_ETS_FINGERPRINT_LEN]; /* of share (ETS-VI-3), when have_share */
    int have_share;                               /* a ServerHello with a key_share was seen */
    int hrr;                                      /* a HelloRetryRequest came first */
    /* what the connection reported besides the key share, for the renderings (the verdict does not read them) */
    char suite[64];        /* the negotiated suite's name, "TLS_AES_128_GCM_SHA256"; "" unknown */
    char certificate[128]; /* the certificate check: "verified", "not verified (no --ca)", OpenSSL's reason */
} msp_ets_probe_conn_t;

/**
 * Records one received ServerHello or HelloRetryRequest handshake message
 * (type, 3-byte length and body; len exactly that) into c, which starts
 * zeroed. MSP_OK; MSP_ERR_SYNTAX when it does not parse (c unchanged).
 */
MSP_API int msp_ets_probe_server_hello(msp_ets_probe_conn_t *c, const uint8_t *msg, size_t len, msp_error_t *err);

/** What the caller requires of the server (both 0: report only). */
typedef struct msp_ets_probe_policy {
    int refuse_ets;         /* refuse a repeated key share or any visibility information */
    int require_visibility; /* refuse a repeated key share without matching visibility information, and
                               visibility information that does not match the key share sent */
} msp_ets_probe_policy_t;

/** Everything the verdict is made of. */
typedef struct msp_ets_probe_facts {
    const msp_ets_probe_conn_t *conn; /* the connections, in order; the first one's share is judged */
    size_t n_conn;                    /* 1 .. MSP_ETS_PROBE_MAX_CONN */
    const uint8_t *cert;              /* DER of the server's end-entity certificate; NULL: none seen */
    size_t cert_len;
    msp_ets_probe_policy_t policy;
} msp_ets_probe_facts_t;

/** A server certificate's visibility information, judged against one key share. */
typedef struct msp_ets_visibility {
    msp_ets_vi_t vi[MSP_ETS_MAX_VI]; /* in subjectAltName order */
    size_t n_vi;
    int match[MSP_ETS_MAX_VI]; /* vi[k] names the key share (msp_ets_visibility_match) */
    int matches;               /* some match[k] */
    int misplaced;             /* an extension with the ETS OID outside subjectAltName */
} msp_ets_visibility_t;

/**
 * Reads the visibility information of a certificate (DER) into *vis,
 * matches all cleared. MSP_OK (n_vi 0: none); MSP_ERR_SYNTAX when the
 * certificate does not parse or an entry is malformed (ets.h: reported,
 * never skipped), MSP_ERR_LIMIT for more than MSP_ETS_MAX_VI entries:
 * *vis is then empty and err says which.
 */
MSP_API int msp_ets_visibility_read(const uint8_t *cert, size_t cert_len, msp_ets_visibility_t *vis, msp_error_t *err);

/** Sets vis->match[] and vis->matches for the key share with fingerprint fp. */
MSP_API void msp_ets_visibility_match(msp_ets_visibility_t *vis, const uint8_t fp[MSP_ETS_FINGERPRINT_LEN]);

typedef struct msp_ets_probe_verdict {
    msp_ets_visibility_t vis; /* the certificate's, matched against the first connection's key share */
    int repeated;             /* some connection sent the first one's key share again */
    int comparable;           /* every connection had a share of the same group */
    int visible;              /* vis.n_vi > 0 */
    int refused;              /* the policy refuses the server */
    const char *text;         /* the verdict, one static sentence */
} msp_ets_probe_verdict_t;

/**
 * Judges the facts into *v. MSP_OK; MSP_ERR_ARGUMENT for no or too many
 * connections; MSP_ERR_SYNTAX when the certificate does not parse or
 * carries a malformed visibility information entry, MSP_ERR_LIMIT when it
 * carries more than MSP_ETS_MAX_VI (no verdict then: err says why).
 */
MSP_API int msp_ets_probe_judge(const msp_ets_probe_facts_t *facts, msp_ets_probe_verdict_t *v, msp_error_t *err);

/** The name of a TLS NamedGroup: "x25519", "secp256r1", "secp384r1", "secp521r1", "x448", or "other". */
MSP_API const char *msp_ets_group_name(uint16_t group);

/*
 * The verdict as `msp ets probe` prints it, appended to out; MSP_OK or out's
 * (sticky) error. target names the server ("HOST:PORT"); f the connections
 * (with their suite and certificate texts) the verdict v was judged from.
 *
 * Text: per connection "TARGET: connection N: SUITE, group G[ (after
 * HelloRetryRequest)], key share fingerprint FP, certificate CHECK", per
 * visibility entry "TARGET: visibility K: fingerprint FP (matches the key
 * share sent|another key: not the key share sent), access "TEXT"" (the
 * description escaped as msp_ets_access_text), a warning line for a
 * misplaced extension, "TARGET: key share: ..." and "TARGET: verdict: ...".
 * JSON: one object and "\n": target, connections [{suite, group,
 * hello_retry_request, key_share, fingerprint, certificate}], visibility
 * [{fingerprint, access, matches_key_share}], misplaced_extension,
 * static_key_share, comparable, verdict.
 */
MSP_API int msp_ets_probe_render_text(const char *target, const msp_ets_probe_facts_t *f,
                                      const msp_ets_probe_verdict_t *v, msp_buf_t *out);
MSP_API int msp_ets_probe_render_json(const char *target, const msp_ets_probe_facts_t *f,
                                      const msp_ets_probe_verdict_t *v, msp_buf_t *out);

/* ---- the connections (a driver: blocking sockets and OpenSSL, src/io/ets_probe_conn.c) ---- */

#define MSP_ETS_PROBE_GROUPS_DEFAULT "X25519:P-256"

typedef struct msp_ets_probe_client_cfg {
    const char *host;       /* name or address to connect to */
    const char *port;       /* service name or number */
    const char *servername; /* server_name sent, and the name verified with ca; NULL: host */
    const char *groups;     /* OpenSSL group list offered, in order; NULL: MSP_ETS_PROBE_GROUPS_DEFAULT */
    const char *ca;         /* PEM file of CAs to check the chain and name against (reported in the conn's
                               certificate text, never enforced: the probe wants to see the server); NULL: no check */
    int timeout_s;          /* seconds for the connect and for each wait of the handshake; 0: 10 */
} msp_ets_probe_client_cfg_t;

/** Fresh full TLS 1.3 handshakes with one server: no tickets, no session cache, so nothing is resumed. */
typedef struct msp_ets_probe_client msp_ets_probe_client_t;

/**
 * MSP_OK; MSP_ERR_ARGUMENT when cfg has no host or port or OpenSSL does not
 * know the group list; MSP_ERR_IO when the CA file cannot be read;
 * MSP_ERR_NO_MEMORY. The strings of cfg are copied.
 */
MSP_API int msp_ets_probe_client_new(const msp_ets_probe_client_cfg_t *cfg, msp_ets_probe_client_t **out,
                                     msp_error_t *err);
/** NULL is ignored. */
MSP_API void msp_ets_probe_client_free(msp_ets_probe_client_t *c);

/**
 * One connection, blocking up to the timeout per step: resolve, connect,
 * TLS 1.3 handshake, close_notify. *out (zeroed first) gets the key share
 * of the ServerHello (msp_ets_probe_server_hello), the suite and the
 * certificate check; with cert non-NULL, *cert and *cert_len get the DER
 * of the server's certificate (free it with OPENSSL_free; NULL when it sent
 * none). MSP_OK; MSP_ERR_IO when the name does not resolve, the connection
 * or the handshake fails, err->detail saying why in one line ("cannot
 * connect: Connection refused", "TLS 1.3 handshake failed: ...");
 * MSP_ERR_NO_MEMORY.
 */
MSP_API int msp_ets_probe_client_connect(msp_ets_probe_client_t *c, msp_ets_probe_conn_t *out, uint8_t **cert,
                                         size_t *cert_len, msp_error_t *err);

#endif
