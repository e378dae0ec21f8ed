/*
 * The TLMSP key schedule and key material as one API for the handshake
 * state machines (tlmsp-handshake.md 2, 5.5-5.7, 6). Include this header
 * only: it pulls in the primitives of msp/tlmsp_kdf.h (the reference's PRF,
 * ECDHE premaster, IDList hash, master secrets, key blocks, context keys)
 * and msp/tlmsp_keymat.h (the contributions list and its AES-GCM envelope),
 * and adds what a state machine needs on top of them:
 *
 *   - which key of a pair's key block protects a message src -> dst (6.5);
 *   - contributions laid out from caller-supplied random bytes (6.6);
 *   - MiddleboxKeyMaterial / MiddleboxKeyConfirmation bodies sealed from and
 *     opened into contributions, with the receiver's checks (5.5, 5.6);
 *   - the endpoint's key-confirmation check over the present contexts (6.7);
 *   - context and synch keys from the two endpoints' contributions (6.8);
 *   - Lcontrib, the transcript inclusion rules, and the Finished /
 *     MiddleboxFinished verify_data (6.10, 6.11);
 *   - a DHE premaster secret (6.2).
 *
 * Every function is pure: no state, no clock, no randomness drawn inside
 * (nonces and contributions come from the caller), no printing. Secrets on
 * the stack are wiped before returning.
 *
 * Access masks: per context id, MSP_TLMSP_CAN_READ (1) | MSP_TLMSP_CAN_WRITE
 * (2), as the sender sees the target's rights. Write implies read here, as
 * in the reference (ssl/tlmsp_ctx.c: tlmsp_context_access()), so 2 and 3
 * mean the same; msp_tlmsp_mbox_info_t.access of msp/tlmsp_hello.h (R = 1,
 * RW = 3) can be passed as is. Context 0 always counts as fully accessible.
 * Where an access pointer may be NULL it means "everything" (an endpoint).
 *
 * Present sets (never NULL): present[c] != 0 for every user context c of
 * the session (msp_tlmsp_context_list_t.present can be passed as is);
 * context 0 is always present whatever present[0] says.
 */
#ifndef MSP_TLMSP_KEYS_H
#define MSP_TLMSP_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/buf.h"
#include "msp/tlmsp.h"
#include "tlmsp_container.h"
#include "tlmsp_kdf.h"
#include "tlmsp_keymat.h"

#define MSP_TLMSP_NONCE_SUFFIX_LEN 11 /* a nonce is sender id | 11 random bytes (5.5, 6.8) */
#define MSP_TLMSP_KEYMAT_OVERHEAD 29  /* id(1) | nonce(12) | ... | tag(16) */
/* The longest contributions list: synch plus 256 contexts of c | v8<16> | v8<16> (5.5). */
#define MSP_TLMSP_MAX_CONTRIB_LEN (MSP_TLMSP_CONTRIB_LEN + 256 * (1 + 2 * (1 + MSP_TLMSP_CONTRIB_LEN)))
/* The longest Lcontrib: both synchs plus both readers and both writers of 256 contexts (6.11). */
#define MSP_TLMSP_MAX_LCONTRIB (2 * MSP_TLMSP_CONTRIB_LEN + 256 * 4 * MSP_TLMSP_CONTRIB_LEN)
#define MSP_TLMSP_MAX_DHE_PREMASTER 1024 /* an 8192-bit group */

/**
 * The AES-GCM key of the pair's key block kb that protects a message from
 * src to dst (6.5 table; "MAC" requests map to the same key with AEAD):
 * a message from the endpoint A of the pair uses A_to_B, one towards it
 * B_to_A; the client is A of the client-server pair. kb must be the block
 * of the pair {src, dst}; *key points into it.
 * MSP_OK, or MSP_ERR_ARGUMENT when src -> dst is not a pair that has a key
 * block (two middleboxes, an id twice, or an id outside 0x01..0xfe).
 */
int msp_tlmsp_pair_key(const msp_tlmsp_key_block_t *kb, uint8_t src, uint8_t dst, const uint8_t **key);

/**
 * Lays out an endpoint's contributions (6.6) from caller-supplied random
 * bytes, consumed in this order: synch, then reader and writer of every
 * present context ascending (context 0 first). rnd_len must be exactly
 * 16 + 32 * (number of present contexts, context 0 included), else
 * MSP_ERR_ARGUMENT. c is cleared first; every present context gets both
 * contributions.
 */
int msp_tlmsp_contrib_generate(msp_tlmsp_contrib_t *c, const uint8_t present[256], const uint8_t *rnd, size_t rnd_len);

/**
 * Seals a MiddleboxKeyMaterial or MiddleboxKeyConfirmation body (5.5, 5.6)
 * and appends it to out: id | sender | suffix | AES-GCM(contributions) |
 * tag, AAD = the first 13 bytes, IV = sender | suffix.
 *   KeyMaterial:      id = the target, sender = the sending endpoint, key =
 *                     msp_tlmsp_pair_key(sender -> target), access = the
 *                     target's rights (NULL for an endpoint target: all).
 *   KeyConfirmation:  id = sender = the middlebox, key = pair key towards
 *                     the other endpoint, c = what it received, access = its
 *                     own list entry (the reference filters by it).
 * Contexts are those c lists (c->present), ascending; a reader / writer
 * contribution is written when the access grants it and c holds it.
 * g is a caller-owned engine (msp_tlmsp_gcm_init). MSP_OK, a buffer error
 * of out (MSP_ERR_LIMIT, MSP_ERR_NO_MEMORY), or MSP_ALERT_INTERNAL_ERROR
 * when the cipher fails.
 */
int msp_tlmsp_key_material_seal(msp_tlmsp_gcm_t *g, const uint8_t key[MSP_TLMSP_KEY_LEN], uint8_t id, uint8_t sender,
                                const uint8_t suffix[MSP_TLMSP_NONCE_SUFFIX_LEN], const msp_tlmsp_contrib_t *c,
                                const uint8_t *access, msp_buf_t *out);

/**
 * The id byte of a KeyMaterial (target) or KeyConfirmation (middlebox)
 * body, which selects the key to open it with. MSP_ALERT_DECODE_ERROR for
 * an empty body.
 */
int msp_tlmsp_key_material_id(const uint8_t *body, size_t len, uint8_t *id);

/**
 * Opens a KeyMaterial / KeyConfirmation body (5.5, 5.6) into c. The checks,
 * in order, and what each failure returns:
 *   - 30 <= len <= MSP_TLMSP_KEYMAT_MAX_BODY and the plaintext no longer
 *     than MSP_TLMSP_MAX_CONTRIB_LEN, else MSP_ALERT_DECODE_ERROR;
 *   - body[0] == expect_id (our own id for a KeyMaterial, the middlebox the
 *     key belongs to for a KeyConfirmation), else MSP_ALERT_ILLEGAL_PARAMETER;
 *   - the GCM tag under key, else MSP_ALERT_DECRYPT_ERROR;
 *   - the contributions list (msp_tlmsp_contrib_decode: context 0 with its
 *     synch, 16-byte or empty parts, no context twice), else
 *     MSP_ALERT_DECODE_ERROR;
 *   - every listed context present in the session, else
 *     MSP_ALERT_UNKNOWN_CONTEXT.
 * (The reference answers internal_error to all of these, tlmsp-handshake.md
 * 9.11; we send the alert that names the fault.) Completeness is not
 * required, as in the reference; msp_tlmsp_key_confirmation_check catches a
 * missing context. On failure c is wiped.
 */
int msp_tlmsp_key_material_open(msp_tlmsp_gcm_t *g, const uint8_t key[MSP_TLMSP_KEY_LEN], const uint8_t *body,
                                size_t len, uint8_t expect_id, const uint8_t present[256], msp_tlmsp_contrib_t *c);

/**
 * The key-confirmation check of an endpoint (6.7), as the reference runs it
 * when the other endpoint's KeyMaterial arrives: for every present context
 * c and every middlebox i (list order, nmbox <= 251), confirm[i] (the
 * decoded KeyConfirmation of middlebox i, or NULL if none came) must list
 * c; for c = 0 echo peer's synch; echo peer's reader contribution when
 * access[i] grants read of c and its writer contribution when it grants
 * write. peer must list every present context with both contributions
 * (a complete KeyMaterial to an endpoint; with the reference, a context
 * left out ends in 179 too, through the missing confirmation). nmbox may be
 * 0 (confirm and access may then be NULL). MSP_OK,
 * MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT (179), or MSP_ERR_ARGUMENT.
 */
int msp_tlmsp_key_confirmation_check(const uint8_t present[256], const msp_tlmsp_contrib_t *peer,
                                     const msp_tlmsp_contrib_t *const *confirm, const uint8_t (*access)[256],
                                     size_t nmbox);

/**
 * The keys of context id (6.8) from the client's and the server's
 * contributions (the secret is server | client; a contribution an entity
 * never received is taken as zeros, as the reference does).
 */
int msp_tlmsp_derive_context_keys(uint8_t id, const msp_tlmsp_contrib_t *client, const msp_tlmsp_contrib_t *server,
                                  const msp_tlmsp_randoms_t *r, msp_tlmsp_context_keys_t *keys);

/** The synch keys (6.8) from the two endpoints' synch contributions. */
int msp_tlmsp_derive_synch_keys(const msp_tlmsp_contrib_t *client, const msp_tlmsp_contrib_t *server,
                                const msp_tlmsp_randoms_t *r, uint8_t client_synch[MSP_TLMSP_KEY_LEN],
                                uint8_t server_synch[MSP_TLMSP_KEY_LEN]);

/**
 * Appends Lcontrib(m) (6.11) to out: for every present context ascending,
 * [c = 0: C_s | S_s], then C_r | S_r if access (m's rights) grants read,
 * then C_w | S_w if it grants write; client first. A contribution never
 * received counts as zeros (the reference's stored value). At most
 * MSP_TLMSP_MAX_LCONTRIB bytes. MSP_OK or out's buffer error.
 */
int msp_tlmsp_lcontrib(const uint8_t present[256], const msp_tlmsp_contrib_t *client, const msp_tlmsp_contrib_t *server,
                       const uint8_t access[256], msp_buf_t *out);

/**
 * Transcript membership of one handshake message (type, body without the
 * 4-byte header). Endpoint Finished (6.10): everything except
 * KeyConfirmation, MiddleboxFinished, and KeyMaterial not addressed to an
 * endpoint. T_m of middlebox m (6.11): ClientHello, ServerHello,
 * Certificate, ServerKeyExchange, ServerHelloDone, ClientKeyExchange,
 * KeyMaterial addressed to an endpoint, m's own MiddleboxHello /
 * MiddleboxCert / MiddleboxHelloDone, and Finished. Which Finished go into
 * which T_m, and where Lcontrib(m) goes, depends on the role (6.11): the
 * client adds both endpoint Finished; the server adds Lcontrib(m) then the
 * client Finished, never its own; a middlebox adds Lcontrib(self) before
 * the client Finished on its server-facing side, and the server Finished
 * only on its client-facing side. Returns 1 (include) or 0.
 */
int msp_tlmsp_endpoint_transcript_includes(uint8_t type, const uint8_t *body, size_t len);
int msp_tlmsp_mbox_transcript_includes(uint8_t type, const uint8_t *body, size_t len, uint8_t mbox);

/** The six Finished computations (6.10, 6.11). */
typedef enum msp_tlmsp_finished_kind {
    MSP_TLMSP_FIN_CLIENT,         /* master(C,S), "client finished", stock TLS 1.2 PRF */
    MSP_TLMSP_FIN_SERVER,         /* master(C,S), "server finished", stock TLS 1.2 PRF */
    MSP_TLMSP_FIN_CLIENT_TO_MBOX, /* master(C,m), "client-middlebox finished" */
    MSP_TLMSP_FIN_MBOX_TO_SERVER, /* master(S,m), "middlebox-server finished" */
    MSP_TLMSP_FIN_SERVER_TO_MBOX, /* master(S,m), "server-middlebox finished" */
    MSP_TLMSP_FIN_MBOX_TO_CLIENT, /* master(C,m), "middlebox-client finished" */
} msp_tlmsp_finished_kind_t;

/**
 * The kind of a Finished sent from src to dst (ids): client<->server are the
 * endpoint Finished, the others MiddleboxFinished (ssl/tlmsp_fin.c:
 * tlmsp_finish_verify_label()). MSP_ERR_ARGUMENT for middlebox<->middlebox
 * or an id outside 0x01..0xfe.
 */
int msp_tlmsp_finished_kind(uint8_t src, uint8_t dst, msp_tlmsp_finished_kind_t *kind);

/**
 * verify_data = PRF(master, label(kind), transcript_hash)[0:12]: the stock
 * TLS 1.2 PRF (OpenSSL's TLS1-PRF) for the endpoint Finished, the TLMSP PRF
 * for MiddleboxFinished (they agree on these 12 bytes, tlmsp-handshake.md
 * 2). master is the pair's master secret named by the kind; transcript_hash
 * is SHA-256 of the transcript. MSP_OK, MSP_ERR_ARGUMENT (unknown kind), or
 * MSP_ERR_NO_MEMORY.
 */
int msp_tlmsp_finished(msp_tlmsp_finished_kind_t kind, const uint8_t master[MSP_TLMSP_MASTER_LEN],
                       const uint8_t transcript_hash[MSP_TLMSP_HASH_LEN], uint8_t out[MSP_TLMSP_VERIFY_LEN]);

/**
 * Checks received verify_data in constant time: MSP_OK, MSP_ALERT_DECODE_ERROR
 * when got_len != 12, MSP_ALERT_DECRYPT_ERROR when it differs (RFC 5246
 * 7.4.9; the reference sends internal_error for a MiddleboxFinished).
 */
int msp_tlmsp_finished_check(msp_tlmsp_finished_kind_t kind, const uint8_t master[MSP_TLMSP_MASTER_LEN],
                             const uint8_t transcript_hash[MSP_TLMSP_HASH_LEN], const uint8_t *got, size_t got_len);

/**
 * A DHE premaster secret (6.2): own is our DH key (its group is the
 * session's), peer_y the other side's public value (big-endian, as in
 * ClientKeyExchange / ServerDHParams.dh_Ys). Leading zero bytes of the
 * shared secret are stripped, as OpenSSL does for TLS 1.2. out has room for
 * out_cap bytes (MSP_TLMSP_MAX_DHE_PREMASTER is enough); *out_len receives
 * the length. MSP_ALERT_ILLEGAL_PARAMETER when peer_y is not in 2..p-2,
 * MSP_ERR_ARGUMENT when own is not a DH key or out is too small.
 */
int msp_tlmsp_premaster_dhe(EVP_PKEY *own, const uint8_t *peer_y, size_t peer_len, uint8_t *out, size_t out_cap,
                            size_t *out_len);

#endif
