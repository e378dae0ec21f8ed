/* What the framework's unit tests share: the built-in catalog as their group fixture, and the shipped profiles. */
#ifndef MSP_TEST_FWTEST_H
#define MSP_TEST_FWTEST_H

#include "msp/framework.h"

/* The built-in catalog: fwtest_setup loads it, fwtest_teardown frees it (cmocka group set-up and tear-down). */
extern msp_fw_catalog_t *cat;
int fwtest_setup(void **state);
int fwtest_teardown(void **state);

/* The text of the shipped profile name; fails the test if there is none. */
const char *shipped_text(const char *name);

/* text parsed against cat (as "t.ucl") and checked; fails the test if it does not parse. */
msp_fw_profile_t *checked(const char *text);

#endif
