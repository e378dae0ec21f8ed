#include "fwtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "embedded.h"

msp_fw_catalog_t *cat;

int fwtest_setup(void **state)
{
    (void)state;
    return msp_fw_catalog_builtin(&cat, NULL) == MSP_OK ? 0 : -1;
}

int fwtest_teardown(void **state)
{
    (void)state;
    msp_fw_catalog_free(cat);
    return 0;
}

const char *shipped_text(const char *name)
{
    for (const msp_embedded_t *e = msp_fw_profile_data; e->name != NULL; e++) {
        if (strcmp(e->name, name) == 0) {
            return e->data;
        }
    }
    fail_msg("no shipped profile %s", name);
    return NULL;
}

msp_fw_profile_t *checked(const char *text)
{
    msp_fw_profile_t *p;
    msp_error_t err;
    if (msp_fw_profile_parse(cat, "t.ucl", text, strlen(text), &p, &err) != MSP_OK) {
        fail_msg("parse failed: %s: %s", err.where, err.detail);
    }
    msp_fw_check(p);
    return p;
}
