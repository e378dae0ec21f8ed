/*
 * MiddleboxKeyMaterial / KeyConfirmation bodies (tlmsp-handshake.md 5.5,
 * 5.6, 6.7, 6.11). The fuzzer cannot forge a GCM tag, so the input is used
 * three ways:
 *   - as a body, opened under a fixed key (envelope and length checks; a
 *     body that opens must re-seal byte-identically);
 *   - as a decrypted contributions list, decoded directly and re-encoded
 *     (everything decoded re-encodes to as many bytes);
 *   - when it decodes, as contributions sealed under the fixed key with
 *     rights taken from the input, then opened again: the round trip must
 *     give back exactly what the rights allow, and the 6.7 check and
 *     Lcontrib must agree with what the contributions hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "tlmsp_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static msp_tlmsp_gcm_t g;
static const uint8_t key[16] = {3};
static msp_tlmsp_contrib_t c, d;
static uint8_t plain[MSP_TLMSP_KEYMAT_MAX_BODY];
static uint8_t body[MSP_TLMSP_MAX_CONTRIB_LEN + MSP_TLMSP_KEYMAT_OVERHEAD];
static uint8_t lc[MSP_TLMSP_MAX_LCONTRIB];

/*
 * The input as a body: it opens only if it was sealed under the fixed key
 * (corpus entries are), and then it must re-seal to the same bytes.
 */
static void as_body(const uint8_t *data, size_t size)
{
    uint8_t id = 0;
    size_t n;
    msp_tlmsp_keymat_open(&g, key, data, size, &id, plain, &n);
    uint8_t all[256];
    memset(all, 1, sizeof(all));
    if (msp_tlmsp_key_material_id(data, size, &id) != MSP_OK ||
        msp_tlmsp_key_material_open(&g, key, data, size, id, all, &d) != MSP_OK) {
        return;
    }
    msp_buf_t b;
    msp_buf_init_fixed(&b, body, sizeof(body));
    if (msp_tlmsp_key_material_seal(&g, key, id, data[1], data + 2, &d, NULL, &b) != MSP_OK || b.len != size ||
        memcmp(body, data, size) != 0) {
        abort();
    }
}

/* What a target with rights acc must get back from c (5.5): the parts it may hold, nothing else. */
static void check_filtered(const uint8_t acc[256])
{
    if (memcmp(d.synch, c.synch, sizeof(c.synch)) != 0 || memcmp(d.present, c.present, sizeof(c.present)) != 0) {
        abort();
    }
    for (int i = 0; i < 256; i++) {
        uint8_t a = i == 0 || (acc[i] & MSP_TLMSP_CAN_WRITE) ? MSP_TLMSP_CAN_ALL : acc[i];
        int r = c.has_reader[i] && (a & MSP_TLMSP_CAN_READ), w = c.has_writer[i] && (a & MSP_TLMSP_CAN_WRITE);
        if (d.has_reader[i] != r || d.has_writer[i] != w || (r && memcmp(d.reader[i], c.reader[i], 16) != 0) ||
            (w && memcmp(d.writer[i], c.writer[i], 16) != 0)) {
            abort();
        }
    }
}

/* The 6.7 check of c against itself passes exactly when c is complete; Lcontrib always fits. */
static void check_confirmation(const uint8_t acc[256])
{
    int complete = 1;
    for (int i = 0; i < 256; i++) {
        complete &= !c.present[i] || (c.has_reader[i] && c.has_writer[i]);
    }
    uint8_t access[1][256];
    memcpy(access[0], acc, 256);
    const msp_tlmsp_contrib_t *confirm[] = {&c};
    int want = complete ? MSP_OK : MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT;
    if (msp_tlmsp_key_confirmation_check(c.present, &c, confirm, access, 1) != want) {
        abort();
    }
    msp_buf_t b;
    msp_buf_init_fixed(&b, lc, sizeof(lc));
    if (msp_tlmsp_lcontrib(c.present, &c, &c, acc, &b) != MSP_OK || b.len < 2 * MSP_TLMSP_CONTRIB_LEN) {
        abort();
    }
}

static void round_trip(const uint8_t *data, size_t size)
{
    uint8_t acc[256];
    for (size_t i = 0; i < 256; i++) {
        acc[i] = data[i % size] & MSP_TLMSP_CAN_ALL;
    }
    static const uint8_t suffix[MSP_TLMSP_NONCE_SUFFIX_LEN] = {1, 2, 3};
    msp_buf_t b;
    msp_buf_init_fixed(&b, body, sizeof(body));
    if (msp_tlmsp_key_material_seal(&g, key, 0x33, MSP_TLMSP_ID_CLIENT, suffix, &c, acc, &b) != MSP_OK ||
        msp_tlmsp_key_material_open(&g, key, body, b.len, 0x33, c.present, &d) != MSP_OK) {
        abort();
    }
    check_filtered(acc);
    check_confirmation(acc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g.ctx == NULL && msp_tlmsp_gcm_init(&g) != MSP_OK) {
        abort();
    }
    as_body(data, size);
    if (msp_tlmsp_contrib_decode(data, size, &c) != MSP_OK) {
        return 0;
    }
    uint8_t all[256];
    memset(all, MSP_TLMSP_CAN_ALL, sizeof(all));
    msp_buf_t b;
    msp_buf_init_fixed(&b, plain, sizeof(plain));
    /* Everything decoded re-encodes to as many bytes when nothing is filtered out. */
    if (msp_tlmsp_contrib_encode(&c, all, &b) != MSP_OK || b.len != size) {
        abort();
    }
    round_trip(data, size);
    return 0;
}
