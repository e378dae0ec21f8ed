/*
 * ETS key packages (ets.md 3.4 ETS-KP-1): whatever decodes must encode again
 * into a package that decodes to the same keys and validity periods.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "msp/ets_keypkg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static msp_ets_keypkg_t pkg, back;
    if (msp_ets_keypkg_decode(data, size, &pkg, NULL) != MSP_OK) {
        return 0;
    }
    msp_buf_t b;
    msp_buf_init(&b, MSP_ETS_KP_MAX_SIZE);
    if (msp_ets_keypkg_encode(pkg.statics, pkg.n_static, pkg.signers, pkg.n_signer, &b, NULL) != MSP_OK ||
        msp_ets_keypkg_decode(b.base, b.len, &back, NULL) != MSP_OK || back.n_static != pkg.n_static ||
        back.n_signer != pkg.n_signer) {
        abort();
    }
    for (size_t i = 0; i < pkg.n_static; i++) {
        if (EVP_PKEY_eq(pkg.statics[i].key, back.statics[i].key) != 1 ||
            pkg.statics[i].not_before != back.statics[i].not_before ||
            pkg.statics[i].has_not_after != back.statics[i].has_not_after ||
            (pkg.statics[i].has_not_after && pkg.statics[i].not_after != back.statics[i].not_after)) {
            abort();
        }
    }
    msp_ets_keypkg_free(&back);
    msp_ets_keypkg_free(&pkg);
    msp_buf_free(&b);
    return 0;
}
