/*
 * A compliance tool's use of the MSP Framework (TS 103 523-1): load a
 * profile (a .ucl file or a shipped name such as "ets"), apply the rules of
 * clause 6.1, print the findings and say whether the profile may claim to be
 * in the MSP series.
 *
 *   profile_check PROFILE
 *
 * Exit status: 0 no error finding, 1 some, 2 the profile cannot be read.
 * Built against the installed libmsp: cc profile_check.c $(pkg-config --cflags --libs msp)
 */
#include <stdio.h>

#include <msp/buf.h>
#include <msp/framework.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PROFILE\n", argv[0]);
        return 2;
    }
    msp_error_t err;
    msp_fw_catalog_t *cat = NULL;
    msp_fw_profile_t *p = NULL;
    if (msp_fw_catalog_builtin(&cat, &err) != MSP_OK || msp_fw_profile_load(cat, argv[1], &p, &err) != MSP_OK) {
        fprintf(stderr, "profile_check: %s: %s: %s\n", argv[1], msp_error_name(err.code), err.detail);
        msp_fw_catalog_free(cat);
        return 2;
    }
    msp_fw_check(p);

    msp_buf_t out;
    msp_buf_init(&out, 1u << 20);
    msp_fw_render_findings(p, &out);
    fwrite(out.base, 1, out.len, stdout);
    msp_buf_free(&out);

    size_t errors = msp_fw_count(p, MSP_FW_ERROR);
    printf("%s: %zu error(s), %zu warning(s); %s\n", p->source_name, errors, msp_fw_count(p, MSP_FW_WARNING),
           msp_fw_in_series(p) ? "every MSP-Mandatory requirement is met" : "not in the MSP series");
    msp_fw_profile_free(p);
    msp_fw_catalog_free(cat);
    return errors == 0 ? 0 : 1;
}
