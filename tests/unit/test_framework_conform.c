/* conform (JUnit results, evidence, claims), provenance, diff and the threat-model citations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "fw.h"
#include "fwtest.h"
#include "msp/framework.h"

/* base with insert put right after the first occurrence of after (malloc'ed). */
static char *with(const char *base, const char *after, const char *insert)
{
    const char *at = strstr(base, after);
    assert_non_null(at);
    size_t head = (size_t)(at - base) + strlen(after);
    char *s = malloc(strlen(base) + strlen(insert) + 1);
    assert_non_null(s);
    memcpy(s, base, head);
    strcpy(s + head, insert);
    strcat(s, base + head);
    return s;
}

static const char junit[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                            "<testsuite name=\"x\" tests=\"3\" failures=\"1\" disabled=\"1\">\n"
                            "<testcase name=\"t_pass\" classname=\"t_pass\" time=\"0.1\" status=\"run\">\n"
                            "<system-out>[ RUN      ] case_ok\n[       OK ] case_ok\n"
                            "[ RUN      ] case_bad\n[  FAILED  ] case_bad\n</system-out>\n</testcase>\n"
                            "<testcase name=\"t_fail\" classname=\"t_fail\" time=\"0.1\" status=\"run\">\n"
                            "<failure message=\"Failed\"/>\n<system-out>[       OK ] case_ok\n</system-out>\n"
                            "</testcase>\n"
                            "<testcase name=\"t_skip\" classname=\"t_skip\" time=\"0\" status=\"notrun\">\n"
                            "<skipped message=\"Disabled\"/>\n</testcase>\n"
                            "</testsuite>\n";

static msp_fw_junit_t *results(void)
{
    msp_fw_junit_t *j;
    msp_error_t err;
    if (msp_fw_junit_parse(junit, strlen(junit), &j, &err) != MSP_OK) {
        fail_msg("junit: %s: %s", err.where, err.detail);
    }
    return j;
}

static void test_junit_results(void **state)
{
    (void)state;
    msp_fw_junit_t *j = results();
    assert_int_equal(msp_fw_junit_count(j), 3);
    assert_int_equal(msp_fw_junit_result(j, "t_pass"), MSP_FW_PASSED);
    assert_int_equal(msp_fw_junit_result(j, "t_fail"), MSP_FW_FAILED);
    assert_int_equal(msp_fw_junit_result(j, "t_skip"), MSP_FW_NOT_RUN);
    assert_int_equal(msp_fw_junit_result(j, "t_none"), MSP_FW_NOT_RUN);
    assert_int_equal(msp_fw_junit_result(j, "t_pas"), MSP_FW_NOT_RUN);
    assert_int_equal(msp_fw_junit_result(j, "t_pass:case_ok"), MSP_FW_PASSED);
    assert_int_equal(msp_fw_junit_result(j, "t_pass:case_bad"), MSP_FW_FAILED);
    assert_int_equal(msp_fw_junit_result(j, "t_pass:case_o"), MSP_FW_NOT_RUN); /* whole lines only */
    assert_int_equal(msp_fw_junit_result(j, "t_pass:case_none"), MSP_FW_NOT_RUN);
    assert_int_equal(msp_fw_junit_result(j, "t_fail:case_ok"), MSP_FW_FAILED); /* the test failed */
    assert_string_equal(msp_fw_result_name(MSP_FW_NOT_RUN), "not run");
    msp_fw_junit_free(j);
    msp_fw_junit_free(NULL);
}

static void expect_error(const char *xml, size_t len, int code, const char *where)
{
    msp_fw_junit_t *j = (msp_fw_junit_t *)1;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_fw_junit_parse(xml, len, &j, &err), code);
    assert_null(j);
    assert_true(err.detail[0] != '\0');
    assert_null(strchr(err.detail, '\n'));
    if (where != NULL) {
        assert_string_equal(err.where, where);
    }
}

static void test_junit_errors(void **state)
{
    (void)state;
    static const char broken[] = "<testsuite>\n<testcase name=\"a\">\n</testsuite>";
    expect_error(broken, strlen(broken), MSP_ERR_SYNTAX, "3");
    static const char other[] = "<html><body/></html>";
    expect_error(other, strlen(other), MSP_ERR_SYNTAX, "1");
    static const char noname[] = "<testsuite><testcase status=\"run\"/></testsuite>";
    expect_error(noname, strlen(noname), MSP_ERR_SYNTAX, NULL);
    expect_error("", 0, MSP_ERR_SYNTAX, NULL);
    /* The limit is checked before a byte is read. */
    expect_error(junit, (size_t)MSP_FW_JUNIT_MAX_INPUT + 1, MSP_ERR_LIMIT, NULL);
    msp_error_t err;
    msp_fw_junit_t *j;
    assert_int_equal(msp_fw_junit_load("/nonexistent/junit.xml", &j, &err), MSP_ERR_IO);
    assert_string_equal(err.where, "/nonexistent/junit.xml");
}

/* A DTD (entity declarations: external files, exponential expansion) is refused outright. */
static void test_junit_no_dtd(void **state)
{
    (void)state;
    static const char xxe[] = "<?xml version=\"1.0\"?>\n<!DOCTYPE t [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n"
                              "<testsuite><testcase name=\"a\" status=\"run\"><system-out>&e;</system-out>"
                              "</testcase></testsuite>";
    expect_error(xxe, strlen(xxe), MSP_ERR_SYNTAX, "1");
    static const char laughs[] = "<!DOCTYPE t [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">"
                                 "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
                                 "<testsuite><testcase name=\"a\"><system-out>&c;</system-out></testcase></testsuite>";
    expect_error(laughs, strlen(laughs), MSP_ERR_SYNTAX, "1");
    /* The predefined entities are text, not declarations. */
    static const char amp[] = "<testsuite><testcase name=\"a&amp;b\" status=\"run\"/></testsuite>";
    msp_fw_junit_t *j;
    assert_int_equal(msp_fw_junit_parse(amp, strlen(amp), &j, NULL), MSP_OK);
    assert_int_equal(msp_fw_junit_result(j, "a&b"), MSP_FW_PASSED);
    msp_fw_junit_free(j);
}

/* E.DP.1 proven, E.DP.3.1 contradicted (test failed), M.DP.1 unproven (case missing), E.DP.3 unproven (no
 * evidence), M.DP.3.1 contradicted (case failed), E.DP.2 (PR, not met) no claim (check refuses evidence there). */
static char *with_evidence(void)
{
    char *a =
        with(shipped_text("ets"), "requirement \"E.DP.1\" {", "\n    evidence = [\"t_pass\", \"t_pass:case_ok\"];");
    char *b = with(a, "requirement \"E.DP.3.1\" {", "\n    evidence = [\"t_pass\", \"t_fail\"];");
    char *c = with(b, "requirement \"M.DP.1\" {", "\n    evidence = [\"t_pass:case_none\"];");
    char *d = with(c, "requirement \"M.DP.3.1\" {", "\n    evidence = [\"t_pass:case_bad\"];");
    free(a);
    free(b);
    free(c);
    return d;
}

static void test_claims(void **state)
{
    (void)state;
    char *text = with_evidence();
    msp_fw_profile_t *p = checked(text);
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 0);
    msp_fw_junit_t *j = results();
    size_t i = (size_t)msp_fw_catalog_find(cat, "E.DP.1");
    assert_int_equal(msp_fw_evidence_count(p, i), 2);
    assert_string_equal(msp_fw_evidence(p, i, 1), "t_pass:case_ok");
    assert_null(msp_fw_evidence(p, i, 2));
    assert_int_equal(msp_fw_claim(p, j, i), MSP_FW_PROVEN);
    assert_int_equal(msp_fw_claim(p, j, (size_t)msp_fw_catalog_find(cat, "E.DP.3.1")), MSP_FW_CONTRADICTED);
    assert_int_equal(msp_fw_claim(p, j, (size_t)msp_fw_catalog_find(cat, "M.DP.1")), MSP_FW_UNPROVEN);
    assert_int_equal(msp_fw_claim(p, j, (size_t)msp_fw_catalog_find(cat, "E.DP.3")), MSP_FW_UNPROVEN);
    assert_int_equal(msp_fw_claim(p, j, (size_t)msp_fw_catalog_find(cat, "M.DP.3.1")), MSP_FW_CONTRADICTED);
    assert_int_equal(msp_fw_claim(p, j, (size_t)msp_fw_catalog_find(cat, "E.DP.2")), MSP_FW_NO_CLAIM);
    /* M.AC.1 is met only after its erratum: a claim after errata, none as printed. */
    size_t mac1 = (size_t)msp_fw_catalog_find(cat, "M.AC.1");
    assert_int_equal(msp_fw_claim(p, j, mac1), MSP_FW_UNPROVEN);
    msp_fw_ignore_errata(p);
    assert_int_equal(msp_fw_claim(p, j, mac1), MSP_FW_NO_CLAIM);
    msp_fw_junit_free(j);
    msp_fw_profile_free(p);
    free(text);
}

static void test_render_conform(void **state)
{
    (void)state;
    char *text = with_evidence();
    msp_fw_profile_t *p = checked(text);
    msp_fw_set_provenance(p, "9.9.9", 0);
    msp_fw_junit_t *j = results();
    size_t claims = 0;
    for (size_t i = 0; i < cat->count; i++) {
        claims += msp_fw_claim(p, j, i) != MSP_FW_NO_CLAIM;
    }
    for (int f = MSP_FW_TEXT; f <= MSP_FW_HTML; f++) {
        msp_buf_t b;
        msp_buf_init(&b, 1u << 22);
        size_t bad = 0;
        assert_int_equal(msp_fw_render_conform(p, j, (msp_fw_format_t)f, &b, &bad), MSP_OK);
        assert_int_equal(bad, claims - 1); /* only E.DP.1 is proven */
        const char *s = msp_buf_cstr(&b);
        assert_non_null(strstr(s, "contradicted"));
        assert_non_null(strstr(s, "9.9.9"));
        assert_non_null(strstr(s, p->sha256));
        if (f == MSP_FW_TEXT) {
            assert_non_null(strstr(s, "E.DP.1      MM  proven       t_pass passed, t_pass:case_ok passed\n"));
            assert_non_null(strstr(s, "M.DP.1      MM  unproven     t_pass:case_none not run\n"));
        }
        if (f == MSP_FW_HTML) {
            /* the requirement links to its evidence, the evidence back to the requirement */
            assert_non_null(strstr(s, "<tr id=\"req-E.DP.1\">"));
            assert_non_null(strstr(s, "<a href=\"#ev-t_pass_case_ok\">t_pass:case_ok</a> passed"));
            assert_non_null(strstr(s, "<tr id=\"ev-t_pass_case_ok\">"));
            assert_non_null(strstr(s, "<a href=\"#req-E.DP.1\">E.DP.1</a>"));
        }
        if (f == MSP_FW_JSON) {
            assert_non_null(strstr(s, "\"profile_sha256\""));
        }
        msp_buf_free(&b);
    }
    msp_buf_t b;
    msp_buf_init(&b, 1024);
    assert_int_equal(msp_fw_render_conform(p, j, MSP_FW_SARIF, &b, NULL), MSP_ERR_ARGUMENT);
    msp_buf_free(&b);
    msp_fw_junit_free(j);
    msp_fw_profile_free(p);
    free(text);
}

static void test_provenance(void **state)
{
    (void)state;
    const char *text = shipped_text("ets");
    msp_fw_profile_t *p = checked(text);
    unsigned char md[32];
    unsigned int n;
    assert_int_equal(EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL), 1);
    char hex[65];
    msp_hex(hex, md, sizeof(md));
    assert_string_equal(p->sha256, hex);
    msp_fw_set_provenance(p, "1.2.3", 1796688000); /* 2026-12-08 */
    assert_string_equal(p->date, "2026-12-08T00:00:00Z");
    char want[256];
    snprintf(want, sizeof(want), "msp 1.2.3, catalog ETSI TS 103 523-1 V1.1.1, profile t.ucl sha256 %s, date %s", hex,
             "2026-12-08T00:00:00Z");
    const msp_fw_profile_t *ps[1] = {p};
    for (int f = MSP_FW_TEXT; f <= MSP_FW_HTML; f++) {
        msp_buf_t b;
        msp_buf_init(&b, 1u << 22);
        assert_int_equal(msp_fw_render_report(p, (msp_fw_format_t)f, &b), MSP_OK);
        const char *s = msp_buf_cstr(&b);
        assert_non_null(strstr(s, f == MSP_FW_JSON ? "\"2026-12-08T00:00:00Z\"" : want));
        assert_non_null(strstr(s, hex));
        b.len = 0;
        assert_int_equal(msp_fw_render_compare(ps, 1, (msp_fw_format_t)f, &b), MSP_OK);
        s = msp_buf_cstr(&b);
        assert_non_null(strstr(s, "1.2.3"));
        assert_non_null(strstr(s, hex));
        msp_buf_free(&b);
    }
    msp_fw_profile_free(p);
}

static size_t diff_count(const msp_fw_profile_t *a, const msp_fw_profile_t *b, msp_fw_format_t f, char **out)
{
    msp_buf_t buf;
    msp_buf_init(&buf, 1u << 22);
    size_t n = 99;
    assert_int_equal(msp_fw_render_diff(a, b, f, &buf, &n), MSP_OK);
    *out = strdup(msp_buf_cstr(&buf));
    msp_buf_free(&buf);
    return n;
}

static void test_diff(void **state)
{
    (void)state;
    msp_fw_profile_t *a = checked(shipped_text("ets"));
    msp_fw_profile_t *same = checked(shipped_text("ets"));
    char *out;
    assert_int_equal(diff_count(a, same, MSP_FW_TEXT, &out), 0);
    assert_non_null(strstr(out, "0 changes\n"));
    free(out);
    char *t1 = with(shipped_text("ets"), "requirement \"E.DP.1\" {", "\n    evidence = [\"t_pass\"];");
    char *t2 = with(t1, "threat \"ETS.TM.4\" {\n    text = \"", "Also: ");
    char *t3 = with(t2, "requirement \"M.DP.1\" {\n    label = \"MM\";\n    met = ", "false; #");
    msp_fw_profile_t *b = checked(t3);
    assert_int_equal(diff_count(a, b, MSP_FW_TEXT, &out), 3);
    assert_non_null(strstr(out, "E.DP.1: evidence:\n  - (none)\n  + t_pass\n"));
    assert_non_null(strstr(out, "M.DP.1: met:\n  - true\n  + false\n"));
    assert_non_null(strstr(out, "ETS.TM.4: text:\n"));
    assert_non_null(strstr(out, "3 changes\n"));
    free(out);
    assert_int_equal(diff_count(a, b, MSP_FW_JSON, &out), 3);
    assert_non_null(strstr(out, "\"field\": \"met\""));
    free(out);
    assert_int_equal(diff_count(a, b, MSP_FW_MD, &out), 3);
    assert_non_null(strstr(out, "| M.DP.1 | met | true | false |"));
    free(out);
    msp_buf_t buf;
    msp_buf_init(&buf, 1024);
    assert_int_equal(msp_fw_render_diff(a, b, MSP_FW_HTML, &buf, NULL), MSP_ERR_ARGUMENT);
    msp_buf_free(&buf);
    msp_fw_profile_free(a);
    msp_fw_profile_free(same);
    msp_fw_profile_free(b);
    free(t1);
    free(t2);
    free(t3);
}

static const msp_fw_finding_t *citation(const msp_fw_profile_t *p, const char *ref, const char *id)
{
    for (size_t i = 0; i < p->nfindings; i++) {
        const msp_fw_finding_t *f = &p->findings[i];
        if (strcmp(f->rule, "citation") == 0 && strcmp(f->ref, ref) == 0 && strstr(f->message, id) != NULL) {
            return f;
        }
    }
    return NULL;
}

static size_t citations(const msp_fw_profile_t *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nfindings; i++) {
        n += strcmp(p->findings[i].rule, "citation") == 0;
    }
    return n;
}

/* The shipped ets profile declares ETS.TM.0-4; Annex B's citation of ETS.TM.5 is an erratum-level finding. */
static void test_ets_threat_model(void **state)
{
    (void)state;
    msp_fw_profile_t *p = checked(shipped_text("ets"));
    assert_int_equal(p->nnotes, 5);
    assert_string_equal(p->notes[4].id, "ETS.TM.4");
    assert_int_equal(p->notes[4].kind, MSP_FW_THREAT);
    assert_int_equal(citations(p), 1);
    const msp_fw_finding_t *f = citation(p, "B.3.2.6", "ETS.TM.5");
    assert_non_null(f);
    assert_int_equal(f->severity, MSP_FW_ERRATUM);
    assert_non_null(msp_fw_rule_describe("citation"));
    /* report prints them before the analysis */
    msp_buf_t b;
    msp_buf_init(&b, 1u << 22);
    assert_int_equal(msp_fw_render_report(p, MSP_FW_TEXT, &b), MSP_OK);
    const char *s = msp_buf_cstr(&b);
    const char *tm4 = strstr(s, "  ETS.TM.4:\n    An ETS middlebox can see and verify the handshake");
    assert_non_null(tm4);
    assert_true(tm4 < strstr(s, "B.3.1 Data Protection"));
    b.len = 0;
    assert_int_equal(msp_fw_render_report(p, MSP_FW_JSON, &b), MSP_OK);
    assert_non_null(strstr(msp_buf_cstr(&b), "\"threat_model\""));
    msp_buf_free(&b);
    msp_fw_profile_free(p);
}

static void test_citation_rule(void **state)
{
    (void)state;
    /* A justification citing an undeclared id: an error when the profile declares a threat model... */
    static const char declared[] = "profile { name = \"x\"; }\nthreat \"X.TM.1\" { text = \"one\"; }\n"
                                   "requirement \"E.DP.1\" { label = \"MM\"; met = true; text = \"t\"; "
                                   "justification = \"per X.TM.1, X.TM.7 and X.A.2\"; }\n";
    msp_fw_profile_t *p = checked(declared);
    const msp_fw_finding_t *f = citation(p, "E.DP.1", "X.TM.7");
    assert_non_null(f);
    assert_int_equal(f->severity, MSP_FW_ERROR);
    assert_non_null(citation(p, "E.DP.1", "X.A.2"));
    assert_null(citation(p, "E.DP.1", "X.TM.1,"));
    assert_null(citation(p, "E.DP.1", "cites X.TM.1 "));
    msp_fw_profile_free(p);
    /* ... a warning when it declares none (the ids may point at another document). */
    static const char bare[] = "profile { name = \"x\"; }\nrequirement \"E.DP.1\" { label = \"MM\"; met = true; "
                               "text = \"t\"; justification = \"(X.TM.1; Annex-C.TM.4; not XETS.TM.1x)\"; }\n";
    p = checked(bare);
    f = citation(p, "E.DP.1", "X.TM.1");
    assert_non_null(f);
    assert_int_equal(f->severity, MSP_FW_WARNING);
    assert_non_null(citation(p, "E.DP.1", "Annex-C.TM.4"));
    assert_null(citation(p, "E.DP.1", "XETS"));
    msp_fw_profile_free(p);
}

static void test_note_syntax(void **state)
{
    (void)state;
    static const char text[] = "profile { name = \"x\"; }\n"
                               "threat \"X.TM.1\" { text = \"one\"; }\n"
                               "assumption \"X.A.1\" { text = \"two\"; }\n"
                               "stage3 { text = \"further analysis\"; }\n"
                               "threat \"X.A.2\" { text = \"wrong kind\"; }\n"
                               "assumption \"X.A.1\" { text = \"again\"; }\n"
                               "threat \"X.TM.3\" { note = \"no text\"; }\n";
    msp_fw_profile_t *p = checked(text);
    assert_int_equal(p->nnotes, 4); /* X.TM.1, X.TM.3 (without text), X.A.1, stage3 */
    const msp_fw_note_t *a1 = NULL, *s3 = NULL;
    for (size_t i = 0; i < p->nnotes; i++) {
        a1 = strcmp(p->notes[i].id, "X.A.1") == 0 ? &p->notes[i] : a1;
        s3 = strcmp(p->notes[i].id, "stage3") == 0 ? &p->notes[i] : s3;
    }
    assert_non_null(a1);
    assert_int_equal(a1->kind, MSP_FW_ASSUMPTION);
    assert_string_equal(a1->text, "two");
    assert_non_null(s3);
    assert_int_equal(s3->kind, MSP_FW_STAGE3);
    assert_string_equal(s3->text, "further analysis");
    size_t hits = 0;
    for (size_t i = 0; i < p->nfindings; i++) {
        const char *m = p->findings[i].message;
        hits += strstr(m, "'X.A.2' is not of the form NAME.TM.N") != NULL;
        hits += strstr(m, "'X.A.1' defined twice") != NULL;
        hits += strstr(m, "unknown key 'note'") != NULL;
        hits += strstr(m, "'X.TM.3' without text") != NULL;
    }
    assert_int_equal(hits, 4);
    assert_true(fw_note_id_ok("Annex-C.TM.4", MSP_FW_THREAT));
    assert_true(fw_note_id_ok("ETS.A.10", MSP_FW_ASSUMPTION));
    assert_false(fw_note_id_ok("ets.TM.1", MSP_FW_THREAT));
    assert_false(fw_note_id_ok("ETS.TM.", MSP_FW_THREAT));
    assert_false(fw_note_id_ok("ETS.TM.1x", MSP_FW_THREAT));
    assert_false(fw_note_id_ok("ETS.TM.1", MSP_FW_ASSUMPTION));
    msp_fw_profile_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_junit_results),  cmocka_unit_test(test_junit_errors),
        cmocka_unit_test(test_junit_no_dtd),   cmocka_unit_test(test_claims),
        cmocka_unit_test(test_render_conform), cmocka_unit_test(test_provenance),
        cmocka_unit_test(test_diff),           cmocka_unit_test(test_ets_threat_model),
        cmocka_unit_test(test_citation_rule),  cmocka_unit_test(test_note_syntax),
    };
    return cmocka_run_group_tests(tests, fwtest_setup, fwtest_teardown);
}
