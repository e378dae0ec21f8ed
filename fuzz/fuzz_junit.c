/*
 * The JUnit reader end to end: XML -> results -> every evidence lookup a
 * profile can make -> conform in every format, against the shipped ets
 * profile (parsed once). Evidence names are taken from the input too, so
 * the "test:case" lookups walk the test output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/framework.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static msp_fw_catalog_t *cat;
    static msp_fw_profile_t *ets;
    if (cat == NULL &&
        (msp_fw_catalog_builtin(&cat, NULL) != MSP_OK || msp_fw_profile_load(cat, "ets", &ets, NULL) != MSP_OK)) {
        abort();
    }
    msp_fw_junit_t *j;
    if (msp_fw_junit_parse((const char *)data, size, &j, NULL) != MSP_OK) {
        return 0;
    }
    /* A name from the input's first 64 bytes, as a test and as test:case. */
    char name[65];
    size_t n = size < 64 ? size : 64;
    memcpy(name, data, n);
    name[n] = '\0';
    (void)msp_fw_junit_result(j, name);
    (void)msp_fw_junit_result(j, "a:b");
    msp_buf_t b;
    msp_buf_init(&b, 1u << 24);
    for (int f = MSP_FW_TEXT; f <= MSP_FW_HTML; f++) {
        b.len = 0;
        msp_fw_render_conform(ets, j, (msp_fw_format_t)f, &b, NULL);
    }
    msp_buf_free(&b);
    msp_fw_junit_free(j);
    return 0;
}
