/*
 * MiddleboxKeyMaterial (48) and MiddleboxKeyConfirmation (49) as the ETSI
 * reference sends them (tlmsp-handshake.md 5.5, 5.6, 6.6, 6.7): the
 * contributions list, its AES-GCM envelope, and the endpoint's
 * key-confirmation check.
 */
#ifndef MSP_TLMSP_KEYMAT_H
#define MSP_TLMSP_KEYMAT_H

#include <stddef.h>
#include <stdint.h>

#include "msp/buf.h"
#include "tlmsp_container.h"

#define MSP_TLMSP_CONTRIB_LEN 16
#define MSP_TLMSP_KEYMAT_MAX_BODY 33697 /* 5.5: a body must be shorter than 33698 bytes */

/* Per-context access masks, as the sender sees the target's rights (5.5). */
#define MSP_TLMSP_CAN_READ 1
#define MSP_TLMSP_CAN_WRITE 2
#define MSP_TLMSP_CAN_ALL 3 /* endpoints, and every middlebox for context 0 */

/** One entity's contributions (6.6), indexed by context id. */
typedef struct msp_tlmsp_contrib {
    uint8_t present[256]; /* the context is listed */
    uint8_t has_reader[256];
    uint8_t has_writer[256];
    uint8_t synch[MSP_TLMSP_CONTRIB_LEN];
    uint8_t reader[256][MSP_TLMSP_CONTRIB_LEN];
    uint8_t writer[256][MSP_TLMSP_CONTRIB_LEN];
} msp_tlmsp_contrib_t;

/**
 * Encodes the contributions of every present context, ascending, for a
 * target with these access masks (access[c] & MSP_TLMSP_CAN_READ gives it
 * the reader contribution, & MSP_TLMSP_CAN_WRITE the writer one; context 0
 * always gets everything, 5.5): c | [synch if c = 0] | v8<reader> | v8<writer>.
 */
int msp_tlmsp_contrib_encode(const msp_tlmsp_contrib_t *c, const uint8_t access[256], msp_buf_t *out);

/**
 * Decodes a contributions list. Context 0 must be present and carries the
 * synch contribution; a non-empty reader or writer is exactly 16 bytes;
 * a context listed twice is a decode_error.
 */
int msp_tlmsp_contrib_decode(const uint8_t *p, size_t len, msp_tlmsp_contrib_t *c);

/**
 * The envelope (5.5/5.6): body = id | nonce(12) | AES-GCM(plain) | tag(16),
 * AAD = id | nonce, IV = nonce. id is the target (KeyMaterial) or the
 * middlebox itself (KeyConfirmation); nonce = sender id | 11 random bytes,
 * supplied by the caller.
 */
int msp_tlmsp_keymat_seal(msp_tlmsp_gcm_t *g, const uint8_t key[16], uint8_t id, const uint8_t nonce[12],
                          const uint8_t *plain, size_t len, msp_buf_t *out);

/**
 * Opens a body: *id its first byte, plain (len - 29 bytes) the
 * contributions. Short or oversized bodies are MSP_ALERT_DECODE_ERROR; a bad
 * tag MSP_ALERT_DECRYPT_ERROR.
 */
int msp_tlmsp_keymat_open(msp_tlmsp_gcm_t *g, const uint8_t key[16], const uint8_t *body, size_t len, uint8_t *id,
                          uint8_t *plain, size_t *plain_len);

#endif
