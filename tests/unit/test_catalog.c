/* The catalog under data/framework/ against Tables 6.2-6.5 of the seed, row by row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "msp/framework.h"
#include "seed.h"

static seed_row_t rows[SEED_MAX_ROWS];

static void test_catalog_matches_seed(void **state)
{
    (void)state;
    int n = seed_rows("## 6.2 MSP Template Requirements", "# Annex A", rows, SEED_MAX_ROWS);
    assert_int_equal(n, 83);
    msp_fw_catalog_t *cat;
    assert_int_equal(msp_fw_catalog_builtin(&cat, NULL), MSP_OK);
    assert_int_equal(cat->count, (size_t)n);
    for (int i = 0; i < n; i++) {
        const msp_fw_template_t *t = &cat->reqs[i];
        if (strcmp(t->ref, rows[i].ref) != 0 || strcmp(t->text, rows[i].text) != 0 ||
            t->mandatory != (strcmp(rows[i].col3, "Mandatory") == 0)) {
            fail_msg("row %d: catalog %s \"%s\" %c, seed %s \"%s\" %s", i, t->ref, t->text, t->mandatory ? 'M' : 'O',
                     rows[i].ref, rows[i].text, rows[i].col3);
        }
        assert_true(strcmp(rows[i].col3, "Mandatory") == 0 || strcmp(rows[i].col3, "Optional") == 0);
    }
    msp_fw_catalog_free(cat);
}

/* The seed's own rule for Table 6.x: a Mandatory requirement says "shall", an Optional one "may". */
static void test_catalog_modal_verbs(void **state)
{
    (void)state;
    msp_fw_catalog_t *cat;
    assert_int_equal(msp_fw_catalog_builtin(&cat, NULL), MSP_OK);
    for (size_t i = 0; i < cat->count; i++) {
        const msp_fw_template_t *t = &cat->reqs[i];
        if (t->mandatory) {
            assert_non_null(strstr(t->text, "shall"));
        } else {
            assert_non_null(strstr(t->text, " may "));
        }
    }
    msp_fw_catalog_free(cat);
}

static void test_catalog_derived_fields(void **state)
{
    (void)state;
    msp_fw_catalog_t *cat;
    assert_int_equal(msp_fw_catalog_builtin(&cat, NULL), MSP_OK);
    int i = msp_fw_catalog_find(cat, "M.T.5.1.2");
    assert_true(i >= 0);
    const msp_fw_template_t *t = &cat->reqs[i];
    assert_int_equal(t->principle, MSP_FW_T);
    assert_int_equal(t->middlebox, 1);
    assert_int_equal(t->mandatory, 0);
    assert_string_equal(cat->reqs[t->parent].ref, "M.T.5.1");
    assert_string_equal(cat->reqs[cat->reqs[t->parent].parent].ref, "M.T.5");
    assert_int_equal(cat->reqs[cat->reqs[t->parent].parent].parent, -1);
    i = msp_fw_catalog_find(cat, "E.GC.2.1");
    assert_int_equal(cat->reqs[i].principle, MSP_FW_GC);
    assert_int_equal(cat->reqs[i].middlebox, 0);
    assert_int_equal(msp_fw_catalog_find(cat, "E.GC.9"), -1);
    /* Per principle and role, as the four tables count them. */
    size_t count[MSP_FW_PRINCIPLES] = {0};
    for (size_t k = 0; k < cat->count; k++) {
        count[cat->reqs[k].principle]++;
    }
    assert_int_equal(count[MSP_FW_DP], 21);
    assert_int_equal(count[MSP_FW_T], 37);
    assert_int_equal(count[MSP_FW_AC], 16);
    assert_int_equal(count[MSP_FW_GC], 9);
    msp_fw_catalog_free(cat);
}

static void expect_bad_catalog(const char *text, const char *detail_part)
{
    msp_fw_catalog_t *cat = NULL;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_not_equal(msp_fw_catalog_parse(text, strlen(text), &cat, &err), MSP_OK);
    assert_null(cat);
    if (strstr(err.detail, detail_part) == NULL) {
        fail_msg("detail \"%s\" lacks \"%s\"", err.detail, detail_part);
    }
}

static void test_catalog_rejects_bad_data(void **state)
{
    (void)state;
    expect_bad_catalog("requirement \"E.DP.1.1\" { template = \"M\"; text = \"x\"; }", "parent E.DP.1 must come first");
    expect_bad_catalog("requirement \"X.DP.1\" { template = \"M\"; text = \"x\"; }", "not a requirement block");
    expect_bad_catalog("requirement \"E.DP.1\" { template = \"Q\"; text = \"x\"; }", "template must be");
    expect_bad_catalog("requirement \"E.DP.1\" { template = \"M\"; }", "'text' must be");
    expect_bad_catalog("requirement \"E.DP.1\" { template = \"M\"; text = \"x\"; colour = 1; }", "unknown key");
    expect_bad_catalog("other = 1;", "requirement blocks and nothing else");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_matches_seed),
        cmocka_unit_test(test_catalog_modal_verbs),
        cmocka_unit_test(test_catalog_derived_fields),
        cmocka_unit_test(test_catalog_rejects_bad_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
