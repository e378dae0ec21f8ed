/*
 * The profile loader end to end: UCL text -> profile -> rule checks -> every
 * renderer, check's outputs (text, JSON, SARIF) included. The catalog is the
 * built-in one, parsed once. An input whose length is odd is also taken as
 * printed (msp_fw_ignore_errata), as `--no-errata` does.
 */
#include <stdint.h>
#include <stdlib.h>

#include "msp/framework.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The OSCAL documents, and conform's verdicts on results where one evidence name passed (the others not run). */
static void export_all(const msp_fw_profile_t *p, msp_buf_t *b)
{
    static msp_fw_junit_t *j;
    static const char xml[] = "<testsuite><testcase name=\"t\" status=\"run\"><system-out>[       OK ] c\n"
                              "</system-out></testcase></testsuite>";
    if (j == NULL && msp_fw_junit_parse(xml, sizeof(xml) - 1, &j, NULL) != MSP_OK) {
        abort();
    }
    b->len = 0;
    msp_fw_oscal_profile(p, 0, b);
    b->len = 0;
    msp_fw_oscal_component(p, 0, b);
    b->len = 0;
    msp_fw_oscal_conform(p, j, 0, 0, b, NULL);
    for (int f = MSP_FW_TEXT; f <= MSP_FW_HTML; f++) {
        b->len = 0;
        msp_fw_render_conform(p, j, (msp_fw_format_t)f, b, NULL);
    }
    b->len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static msp_fw_catalog_t *cat;
    if (cat == NULL && msp_fw_catalog_builtin(&cat, NULL) != MSP_OK) {
        abort();
    }
    msp_fw_profile_t *p;
    if (msp_fw_profile_parse(cat, "fuzz", (const char *)data, size, &p, NULL) != MSP_OK) {
        return 0;
    }
    if (size % 2 == 1) {
        msp_fw_ignore_errata(p);
    }
    msp_fw_check(p);
    msp_buf_t b;
    msp_buf_init(&b, 1u << 24);
    msp_fw_render_findings(p, &b);
    msp_fw_render_verdicts(p, "fuzz: ", &b);
    const msp_fw_profile_t *self[1] = {p};
    static const msp_fw_format_t check_formats[] = {MSP_FW_TEXT, MSP_FW_JSON, MSP_FW_SARIF};
    for (size_t f = 0; f < sizeof(check_formats) / sizeof(check_formats[0]); f++) {
        b.len = 0;
        msp_fw_render_check(self, 1, check_formats[f], &b);
    }
    b.len = 0;
    if (p->name != NULL) {
        for (int f = MSP_FW_TEXT; f <= MSP_FW_HTML; f++) {
            msp_fw_render_report(p, (msp_fw_format_t)f, &b);
            const msp_fw_profile_t *one[1] = {p};
            msp_fw_render_compare(one, 1, (msp_fw_format_t)f, &b);
            b.len = 0;
        }
        msp_fw_render_diff(p, p, MSP_FW_TEXT, &b, NULL);
        export_all(p, &b);
    }
    msp_buf_free(&b);
    msp_fw_profile_free(p);
    return 0;
}
