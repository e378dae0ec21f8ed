/* The OSCAL export (docs/oscal.md): the catalog, the shipped profiles, their Conformance Analysis, verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fw.h"
#include "fwtest.h"
#include "msp/framework.h"

#define WHEN 1765152000 /* 2025-12-08T00:00:00Z */

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static msp_fw_profile_t *shipped(const char *name)
{
    msp_fw_profile_t *p;
    assert_int_equal(msp_fw_profile_load(cat, name, &p, NULL), MSP_OK);
    msp_fw_check(p);
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 0);
    return p;
}

/* The principle-and-role groups the catalog has: the ones with at least one requirement. */
static size_t role_groups(void)
{
    size_t n = 0;
    for (int pr = 0; pr < MSP_FW_PRINCIPLES; pr++) {
        for (int mb = 0; mb <= 1; mb++) {
            int any = 0;
            for (size_t i = 0; i < cat->count; i++) {
                any |= (int)cat->reqs[i].principle == pr && cat->reqs[i].middlebox == mb;
            }
            n += (size_t)any;
        }
    }
    return n;
}

typedef int (*render_fn)(const msp_fw_profile_t *p, int64_t when, msp_buf_t *out);

/* Renders twice into fresh buffers; the bytes must be the same. Returns the first (caller frees). */
static void render_twice(const msp_fw_profile_t *p, render_fn fn, msp_buf_t *b)
{
    msp_buf_t again;
    msp_buf_init(b, 1u << 24);
    msp_buf_init(&again, 1u << 24);
    assert_int_equal(p != NULL ? fn(p, WHEN, b) : msp_fw_oscal_catalog(cat, WHEN, b), MSP_OK);
    assert_int_equal(p != NULL ? fn(p, WHEN, &again) : msp_fw_oscal_catalog(cat, WHEN, &again), MSP_OK);
    assert_int_equal(b->len, again.len);
    assert_memory_equal(b->base, again.base, b->len);
    msp_buf_free(&again);
    assert_non_null(msp_buf_cstr(b));
}

static void test_catalog(void **state)
{
    (void)state;
    msp_buf_t b;
    render_twice(NULL, NULL, &b);
    const char *s = msp_buf_cstr(&b);
    assert_int_equal(cat->count, 83);
    assert_int_equal(count(s, "\"class\": \"template-requirement\""), 83);
    assert_int_equal(count(s, "\"name\": \"statement\""), 83);
    assert_int_equal(count(s, "\"class\": \"principle\""), 4);
    size_t mandatory = 0;
    for (size_t i = 0; i < cat->count; i++) {
        mandatory += (size_t)cat->reqs[i].mandatory;
    }
    assert_int_equal(count(s, "\"value\": \"mandatory\""), mandatory);
    assert_int_equal(count(s, "\"class\": \"role\""), role_groups());
    /* grouped: Data Protection's endpoint group holds E.DP.1, and a child sits inside its parent */
    const char *dp_e = strstr(s, "\"id\": \"DP-E\"");
    const char *t_e = strstr(s, "\"id\": \"T-E\"");
    const char *edp1 = strstr(s, "\"id\": \"E.DP.1\"");
    assert_non_null(dp_e);
    assert_non_null(t_e);
    assert_true(dp_e < edp1 && edp1 < t_e);
    assert_non_null(strstr(s, "\"last-modified\": \"2025-12-08T00:00:00Z\""));
    assert_non_null(strstr(s, "\"oscal-version\": \"" MSP_FW_OSCAL_VERSION "\""));
    /* known answer: uuid5(uuid5(NAMESPACE_URL, "urn:msp:oscal"), "catalog"), Python's uuid module */
    assert_non_null(strstr(s, "\"uuid\": \"2892ac8c-977e-51cd-88ad-90c5bc7b50bc\""));
    msp_buf_free(&b);
}

/* Nested children: every control with children has them in a "controls" array after its own parts. */
static void test_catalog_nesting(void **state)
{
    (void)state;
    msp_buf_t b;
    render_twice(NULL, NULL, &b);
    const char *s = msp_buf_cstr(&b);
    size_t parents = 0;
    for (size_t i = 0; i < cat->count; i++) {
        int has_child = 0;
        for (size_t k = 0; k < cat->count; k++) {
            has_child |= cat->reqs[k].parent == (int)i;
        }
        parents += (size_t)has_child;
        if (cat->reqs[i].parent >= 0) {
            char want[64];
            snprintf(want, sizeof(want), "\"id\": \"%s\"", cat->reqs[i].ref);
            char up[64];
            snprintf(up, sizeof(up), "\"id\": \"%s\"", cat->reqs[cat->reqs[i].parent].ref);
            assert_true(strstr(s, up) < strstr(s, want));
        }
    }
    assert_true(parents > 0);
    assert_int_equal(count(s, "\"controls\": ["), role_groups() + parents);
    msp_buf_free(&b);
}

/* The profile: the MM/PM/PO rows selected, one alteration each, the text changes as statement replacements. */
static void check_profile(const char *name, size_t min_changes)
{
    msp_fw_profile_t *p = shipped(name);
    msp_buf_t b;
    render_twice(p, msp_fw_oscal_profile, &b);
    const char *s = msp_buf_cstr(&b);
    size_t sel = 0, changes = 0, shall = 0, should = 0;
    for (size_t i = 0; i < cat->count; i++) {
        msp_fw_label_t l = msp_fw_row_label(&p->rows[i]);
        if (l != MSP_FW_MM && l != MSP_FW_PM && l != MSP_FW_PO) {
            continue;
        }
        sel++;
        const char *text = msp_fw_row_text(&p->rows[i]);
        msp_fw_textdiff_t d = text ? msp_fw_text_diff(cat->reqs[i].text, text, NULL, NULL, 0) : MSP_FW_TEXT_SAME;
        changes += d != MSP_FW_TEXT_SAME;
        shall += d == MSP_FW_TEXT_MAY_SHALL;
        should += d == MSP_FW_TEXT_MAY_SHOULD;
        char alter[96];
        snprintf(alter, sizeof(alter), "\"control-id\": \"%s\",\n%s", cat->reqs[i].ref,
                 d != MSP_FW_TEXT_SAME ? "          \"removes\"" : "          \"adds\"");
        assert_non_null(strstr(s, alter));
        if (l == MSP_FW_PM || l == MSP_FW_PO) {
            /* PM text is the template's or may -> shall; PO the template's or may -> should (clause 6.1.2.3) */
            assert_true(d == MSP_FW_TEXT_SAME ||
                        d == (l == MSP_FW_PM ? MSP_FW_TEXT_MAY_SHALL : MSP_FW_TEXT_MAY_SHOULD));
        }
    }
    assert_int_equal(count(s, "\"control-id\""), sel);
    assert_int_equal(count(s, "\"name\": \"profile-label\""), sel);
    assert_int_equal(count(s, "\"removes\""), changes);
    assert_int_equal(count(s, "\"value\": \"may-shall\""), shall);
    assert_int_equal(count(s, "\"value\": \"may-should\""), should);
    assert_true(changes >= min_changes);
    /* the selection lists exactly the selected refs */
    const char *ids = strstr(s, "\"with-ids\": [");
    const char *ids_end = ids ? strchr(ids, ']') : NULL;
    assert_non_null(ids_end);
    size_t quotes = 0;
    for (const char *q = ids + strlen("\"with-ids\""); q < ids_end; q++) {
        quotes += *q == '"';
    }
    assert_int_equal(quotes, 2 * sel);
    msp_buf_free(&b);
    msp_fw_profile_free(p);
}

static void test_profile_ets(void **state)
{
    (void)state;
    check_profile("ets", 1);
}

static void test_profile_split_proxy(void **state)
{
    (void)state;
    check_profile("split-proxy", 1);
}

/* The component-definition: every row, its label and Met, its justification verbatim. */
static void check_component(const char *name)
{
    msp_fw_profile_t *p = shipped(name);
    msp_buf_t b;
    render_twice(p, msp_fw_oscal_component, &b);
    const char *s = msp_buf_cstr(&b);
    size_t rows = 0, met = 0, unmet = 0;
    for (size_t i = 0; i < cat->count; i++) {
        if (!p->rows[i].present) {
            continue;
        }
        rows++;
        met += msp_fw_row_met(&p->rows[i]) == 1;
        unmet += msp_fw_row_met(&p->rows[i]) == 0;
    }
    assert_int_equal(rows, 83);
    assert_int_equal(count(s, "\"control-id\""), rows);
    assert_int_equal(count(s, "\"name\": \"met\",\n"), met + unmet);
    assert_int_equal(count(s, "\"value\": \"yes\""), met + (size_t)msp_fw_in_series(p));
    /* the UUIDs of the rows, the component's and implementation's, the document's and the resource's */
    assert_int_equal(count(s, "\"uuid\""), rows + 4);
    msp_buf_free(&b);
    msp_fw_profile_free(p);
}

static void test_component_ets(void **state)
{
    (void)state;
    check_component("ets");
}

static void test_component_split_proxy(void **state)
{
    (void)state;
    check_component("split-proxy");
}

static void test_results(void **state)
{
    (void)state;
    msp_fw_profile_t *p = shipped("ets");
    const msp_fw_evidence_t ev1[] = {{"handshake completed with a static key share", 1}, {"key log matched", 1}};
    const msp_fw_evidence_t ev2[] = {{"visibility information absent from the certificate", 0}};
    const msp_fw_verdict_t v[] = {
        {"E.DP.1", MSP_FW_VERDICT_PASS, ev1, 2},
        {"E.T.4.1", MSP_FW_VERDICT_FAIL, ev2, 1},
        {"M.AC.3", MSP_FW_VERDICT_OTHER, NULL, 0},
    };
    msp_buf_t b, again;
    msp_buf_init(&b, 1u << 20);
    msp_buf_init(&again, 1u << 20);
    assert_int_equal(msp_fw_oscal_results(p, v, 3, WHEN - 60, WHEN, &b, NULL), MSP_OK);
    assert_int_equal(msp_fw_oscal_results(p, v, 3, WHEN - 60, WHEN, &again, NULL), MSP_OK);
    assert_int_equal(b.len, again.len);
    assert_memory_equal(b.base, again.base, b.len);
    const char *s = msp_buf_cstr(&b);
    assert_int_equal(count(s, "\"target-id\""), 3);
    assert_int_equal(count(s, "\"state\": \"satisfied\""), 1);
    assert_int_equal(count(s, "\"state\": \"not-satisfied\""), 2);
    assert_int_equal(count(s, "\"reason\": \"other\""), 1);
    assert_int_equal(count(s, "\"methods\""), 3);
    assert_int_equal(count(s, "\"observation-uuid\""), 3);
    assert_int_equal(count(s, "\"value\": \"fail\""), 1);
    assert_non_null(strstr(s, "\"target-id\": \"E.T.4.1_smt\""));
    assert_non_null(strstr(s, "\"start\": \"2025-12-07T23:59:00Z\""));
    /* known answer: the first observation of E.DP.1 */
    assert_non_null(strstr(s, "\"uuid\": \"f0cf12b9-0dca-54f7-84fc-a2e392a7fc03\""));
    msp_buf_free(&again);
    msp_buf_free(&b);

    /* a ref the catalog does not have is refused, and nothing is written */
    const msp_fw_verdict_t unknown[] = {{"E.DP.99", MSP_FW_VERDICT_PASS, NULL, 0}};
    msp_error_t err;
    msp_error_clear(&err);
    msp_buf_init(&b, 1u << 20);
    assert_int_equal(msp_fw_oscal_results(p, unknown, 1, WHEN, WHEN, &b, &err), MSP_ERR_INVALID);
    assert_string_equal(err.where, "E.DP.99");
    assert_int_equal(b.len, 0);
    const msp_fw_verdict_t twice[] = {{"E.DP.1", MSP_FW_VERDICT_PASS, NULL, 0},
                                      {"E.DP.1", MSP_FW_VERDICT_FAIL, NULL, 0}};
    assert_int_equal(msp_fw_oscal_results(p, twice, 2, WHEN, WHEN, &b, &err), MSP_ERR_INVALID);
    assert_string_equal(err.where, "E.DP.1");
    assert_int_equal(b.len, 0);
    /* no verdict: the reviewed controls would be an empty list, which OSCAL does not allow */
    assert_int_equal(msp_fw_oscal_results(p, twice, 0, WHEN, WHEN, &b, &err), MSP_ERR_INVALID);
    assert_int_equal(b.len, 0);
    msp_buf_free(&b);
    msp_fw_profile_free(p);
}

/* A buffer too small fails with the buffer's error, never a truncated success. */
static void test_limit(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 4096);
    assert_int_equal(msp_fw_oscal_catalog(cat, WHEN, &b), MSP_ERR_LIMIT);
    msp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog),       cmocka_unit_test(test_catalog_nesting),
        cmocka_unit_test(test_profile_ets),   cmocka_unit_test(test_profile_split_proxy),
        cmocka_unit_test(test_component_ets), cmocka_unit_test(test_component_split_proxy),
        cmocka_unit_test(test_results),       cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, fwtest_setup, fwtest_teardown);
}
