/*
 * The JSON report of each shipped profile against Tables B.1-B.4 and
 * C.1-C.4 of the seed as printed: ref, label, Met and text of every row,
 * table by table, and the verdict the seed concludes.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/framework.h"
#include "msp/ucl.h"
#include "seed.h"

typedef struct table {
    const char *from, *to;
    msp_fw_principle_t principle;
} table_t;

static const char *str(const msp_ucl_t *obj, const char *key)
{
    const msp_ucl_t *v = msp_ucl_lookup(obj, key);
    assert_non_null(v);
    assert_int_equal(v->type, MSP_UCL_STRING);
    return v->v.str.s;
}

static int boolean(const msp_ucl_t *obj, const char *key)
{
    const msp_ucl_t *v = msp_ucl_lookup(obj, key);
    assert_non_null(v);
    assert_int_equal(v->type, MSP_UCL_BOOL);
    return v->v.b;
}

/* Renders the profile's JSON report and parses it back (JSON is UCL). */
static msp_ucl_doc_t *report_json(const char *name)
{
    msp_fw_catalog_t *cat;
    assert_int_equal(msp_fw_catalog_builtin(&cat, NULL), MSP_OK);
    msp_fw_profile_t *p;
    assert_int_equal(msp_fw_profile_load(cat, name, &p, NULL), MSP_OK);
    msp_fw_check(p);
    msp_buf_t b;
    msp_buf_init(&b, 1u << 24);
    assert_int_equal(msp_fw_render_report(p, MSP_FW_JSON, &b), MSP_OK);
    msp_ucl_doc_t *doc;
    msp_error_t err;
    if (msp_ucl_parse((const char *)b.base, b.len, NULL, &doc, &err) != MSP_OK) {
        fail_msg("report JSON does not parse: line %s: %s", err.where, err.detail);
    }
    msp_buf_free(&b);
    msp_fw_profile_free(p);
    msp_fw_catalog_free(cat);
    return doc;
}

static const msp_ucl_t *find_req(const msp_ucl_t *reqs, const char *ref)
{
    for (const msp_ucl_t *r = reqs->v.kids.first; r != NULL; r = r->next) {
        if (strcmp(str(r, "ref"), ref) == 0) {
            return r;
        }
    }
    return NULL;
}

static void compare_tables(const char *profile, const table_t *tables, int expect_series)
{
    msp_ucl_doc_t *doc = report_json(profile);
    const msp_ucl_t *root = msp_ucl_root(doc);
    assert_string_equal(str(root, "profile"), profile);
    const msp_ucl_t *reqs = msp_ucl_lookup(root, "requirements");
    assert_non_null(reqs);
    assert_int_equal(reqs->type, MSP_UCL_ARRAY);
    static seed_row_t rows[SEED_MAX_ROWS];
    size_t total = 0;
    for (int t = 0; t < MSP_FW_PRINCIPLES; t++) {
        int n = seed_rows(tables[t].from, tables[t].to, rows, SEED_MAX_ROWS);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            const msp_ucl_t *r = find_req(reqs, rows[i].ref);
            if (r == NULL) {
                fail_msg("%s: %s of %s is not in the report", profile, rows[i].ref, tables[t].from);
            }
            assert_string_equal(str(r, "principle"), msp_fw_principle_code(tables[t].principle));
            if (strcmp(str(r, "label_as_printed"), rows[i].col3) != 0 ||
                strcmp(str(r, "text_as_printed"), rows[i].text) != 0 ||
                boolean(r, "met_as_printed") != (strcmp(rows[i].col4, "Y") == 0)) {
                fail_msg("%s %s: report %s %s \"%s\", seed %s %s \"%s\"", profile, rows[i].ref,
                         str(r, "label_as_printed"), boolean(r, "met_as_printed") ? "Y" : "N",
                         str(r, "text_as_printed"), rows[i].col3, rows[i].col4, rows[i].text);
            }
        }
        total += (size_t)n;
    }
    assert_int_equal(total, reqs->v.kids.count);
    assert_int_equal(total, 83);
    const msp_ucl_t *verdict = msp_ucl_lookup(root, "verdict");
    assert_non_null(verdict);
    assert_int_equal(boolean(verdict, "msp_series"), expect_series);
    msp_ucl_free(doc);
}

static void test_ets_matches_annex_b(void **state)
{
    (void)state;
    static const table_t tables[] = {
        {"Table B.1:", "Table B.2:", MSP_FW_DP},
        {"Table B.2:", "Table B.3:", MSP_FW_T},
        {"Table B.3:", "Table B.4:", MSP_FW_AC},
        {"Table B.4:", "## Annex C", MSP_FW_GC},
    };
    compare_tables("ets", tables, 1);
}

static void test_split_proxy_matches_annex_c(void **state)
{
    (void)state;
    static const table_t tables[] = {
        {"Table C.1:", "Table C.2:", MSP_FW_DP},
        {"Table C.2:", "Table C.3:", MSP_FW_T},
        {"Table C.3:", "Table C.4:", MSP_FW_AC},
        {"Table C.4:", "## C.4 Summary", MSP_FW_GC},
    };
    compare_tables("split-proxy", tables, 0);
}

/*
 * The unmet MSP-Mandatory list of the split proxy is exactly the MM rows
 * printed N in Annex C (no erratum there touches an MM row).
 */
static void test_split_proxy_unmet_list(void **state)
{
    (void)state;
    static seed_row_t rows[SEED_MAX_ROWS];
    int n = seed_rows("Table C.1:", "## C.4 Summary", rows, SEED_MAX_ROWS);
    assert_int_equal(n, 83);
    msp_ucl_doc_t *doc = report_json("split-proxy");
    const msp_ucl_t *unmet = msp_ucl_lookup(msp_ucl_lookup(msp_ucl_root(doc), "verdict"), "unmet_mandatory");
    assert_non_null(unmet);
    const msp_ucl_t *u = unmet->v.kids.first;
    size_t expected = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(rows[i].col3, "MM") == 0 && strcmp(rows[i].col4, "N") == 0) {
            assert_non_null(u);
            assert_string_equal(u->v.str.s, rows[i].ref);
            u = u->next;
            expected++;
        }
    }
    assert_null(u);
    assert_int_equal(unmet->v.kids.count, expected);
    assert_true(expected >= 10);
    msp_ucl_free(doc);
}

/* ETS is in the series only through the M.AC.1 erratum: the printed N would exclude it. */
static void test_ets_verdict_rests_on_erratum(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = report_json("ets");
    const msp_ucl_t *reqs = msp_ucl_lookup(msp_ucl_root(doc), "requirements");
    const msp_ucl_t *mac1 = find_req(reqs, "M.AC.1");
    assert_non_null(mac1);
    assert_false(boolean(mac1, "met_as_printed"));
    assert_true(boolean(mac1, "met"));
    const msp_ucl_t *e = msp_ucl_lookup(mac1, "erratum");
    assert_non_null(e);
    assert_int_equal(e->type, MSP_UCL_STRING);
    assert_non_null(strstr(e->v.str.s, "Met printed N, should be Y"));
    const msp_ucl_t *dp1 = find_req(reqs, "E.DP.1");
    assert_int_equal(msp_ucl_lookup(dp1, "erratum")->type, MSP_UCL_NULL);
    msp_ucl_free(doc);
}

/* ---- the analysis sections against the seed's clauses B.3.x.y and C.3.x.y ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strdup(buf);
    assert_non_null(s);
    return s;
}

/* Length of a requirement ref at s ("E.T.5.1.1"), without a trailing full stop; 0 if none. */
static size_t ref_len(const char *s)
{
    if ((s[0] != 'E' && s[0] != 'M') || s[1] != '.') {
        return 0;
    }
    size_t i = 2 + strspn(s + 2, "DPTACG");
    if (i == 2) {
        return 0;
    }
    while (s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
        }
    }
    return i;
}

/* The text of the section headed by a line starting with head, to the next line starting with next. */
static char *section(const char *text, const char *head, const char *next)
{
    const char *a = strstr(text, head);
    if (a == NULL) {
        fail_msg("no section \"%s\"", head);
    }
    a += strlen(head);
    const char *b = strstr(a, next);
    size_t n = b != NULL ? (size_t)(b - a) : strlen(a);
    char *s = strndup(a, n);
    assert_non_null(s);
    return s;
}

/*
 * Every requirement the seed's section names at the head of a bullet ("- E.T.2
 * and E.T.3 is satisfied ...") is in the report's section of the same number.
 */
static void seed_section_in_report(const char *seed, const char *report, const char *num)
{
    char head[64];
    snprintf(head, sizeof(head), "\n### %s ", num);
    char *theirs = section(seed, head, "\n#");
    snprintf(head, sizeof(head), "\n%s ", num);
    char *ours = section(report, head, "\n\n");
    for (char *line = strtok(theirs, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        line += strspn(line, " ");
        if (line[0] != '-' || line[1] != ' ') {
            continue;
        }
        const char *end = strstr(line, " is ");
        const char *are = strstr(line, " are ");
        end = end == NULL || (are != NULL && are < end) ? are : end;
        for (const char *s = line + 2; end != NULL && s < end; s++) {
            size_t n = ref_len(s);
            if (n == 0 || (s > line && isalnum((unsigned char)s[-1]))) {
                continue;
            }
            char want[40];
            snprintf(want, sizeof(want), "\n  %.*s (", (int)n, s);
            if (strstr(ours, want) == NULL && strncmp(ours, want + 1, strlen(want + 1)) != 0) {
                fail_msg("%s: the seed names %.*s, the report's section does not:\n%s", num, (int)n, s, ours);
            }
            s += n - 1;
        }
    }
    free(theirs);
    free(ours);
}

static void sections_match(const char *profile, char annex)
{
    msp_fw_catalog_t *cat;
    assert_int_equal(msp_fw_catalog_builtin(&cat, NULL), MSP_OK);
    msp_fw_profile_t *p;
    assert_int_equal(msp_fw_profile_load(cat, profile, &p, NULL), MSP_OK);
    msp_fw_check(p);
    msp_buf_t b;
    msp_buf_init(&b, 1u << 24);
    assert_int_equal(msp_fw_render_report(p, MSP_FW_TEXT, &b), MSP_OK);
    char *seed = slurp(MSP_SEED_FILE);
    /* The seed numbers label sections for three principles; B.3.4 and C.3.4 (Good Citizen) are one clause. */
    for (int pr = 1; pr <= 3; pr++) {
        for (int k = 2; k <= 6; k++) {
            char num[32];
            snprintf(num, sizeof(num), "%c.3.%d.%d", annex, pr, k);
            seed_section_in_report(seed, msp_buf_cstr(&b), num);
        }
    }
    free(seed);
    msp_buf_free(&b);
    msp_fw_profile_free(p);
    msp_fw_catalog_free(cat);
}

static void test_ets_sections_match_annex_b(void **state)
{
    (void)state;
    sections_match("ets", 'B');
}

static void test_split_proxy_sections_match_annex_c(void **state)
{
    (void)state;
    sections_match("split-proxy", 'C');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ets_matches_annex_b),        cmocka_unit_test(test_split_proxy_matches_annex_c),
        cmocka_unit_test(test_split_proxy_unmet_list),     cmocka_unit_test(test_ets_verdict_rests_on_erratum),
        cmocka_unit_test(test_ets_sections_match_annex_b), cmocka_unit_test(test_split_proxy_sections_match_annex_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
