/*
 * The TLMSP container parser (tlmsp-records.md 4): first byte selects the
 * protected or unprotected form, the rest is a record body holding
 * containers back to back. With a fixed key every parsed container also
 * goes through the fragment and MAC code, so lengths reach the crypto.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "tlmsp_container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static msp_tlmsp_gcm_t g;
    static msp_tlmsp_container_t c;
    static uint8_t plain[MSP_TLMSP_MAX_RECORD_PAYLOAD];
    static const uint8_t key[16] = {7};
    if (g.ctx == NULL && msp_tlmsp_gcm_init(&g) != MSP_OK) {
        abort();
    }
    if (size < 1) {
        return 0;
    }
    msp_reader_t r;
    msp_reader_init(&r, data + 1, size - 1);
    int protected_ = data[0] & 1;
    while (msp_reader_left(&r) > 0 && msp_tlmsp_container_parse(&r, protected_, &c) == MSP_OK) {
        if (!protected_) {
            continue;
        }
        msp_tlmsp_mac_in_t in = {23, 1, 0, c.flags, c.m_info, c.m_info_len};
        uint8_t mac[16];
        msp_tlmsp_fragment_open(&g, key, &in, c.fragment, c.fragment_len, plain);
        msp_tlmsp_writer_mac(&g, key, &in, c.fragment, c.fragment_len, mac);
        for (size_t i = 0; i < c.nfmacs; i++) {
            msp_tlmsp_reader_check_mac(&g, key, &in, c.fragment, c.fragment_len, c.fmacs[i].nonce, mac);
            msp_tlmsp_check_mac(&g, key, &in, &c.fmacs[i], c.fmacs[i].order ? c.fmacs[0].reader_check : NULL, mac);
        }
    }
    return 0;
}
