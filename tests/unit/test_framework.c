/* The Selection Process and Conformance Analysis rules, on the shipped profiles and on broken ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fw.h"
#include "fwtest.h"
#include "msp/framework.h"

/* The finding for ref with this severity whose message contains part, or NULL. */
static const msp_fw_finding_t *finding(const msp_fw_profile_t *p, const char *ref, msp_fw_severity_t sev,
                                       const char *part)
{
    for (size_t i = 0; i < p->nfindings; i++) {
        const msp_fw_finding_t *f = &p->findings[i];
        if (strcmp(f->ref, ref) == 0 && f->severity == sev && strstr(f->message, part) != NULL) {
            return f;
        }
    }
    return NULL;
}

static void dump(const msp_fw_profile_t *p)
{
    for (size_t i = 0; i < p->nfindings; i++) {
        fprintf(stderr, "  finding %s %d %s\n", p->findings[i].ref, p->findings[i].severity, p->findings[i].message);
    }
}

static void expect_finding(const msp_fw_profile_t *p, const char *ref, msp_fw_severity_t sev, const char *part)
{
    if (finding(p, ref, sev, part) == NULL) {
        dump(p);
        fail_msg("no finding %s (%d) containing \"%s\"", ref, sev, part);
    }
}

/* ---- text editing helpers for making broken profiles ---- */

static char *dup_text(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* Replaces the first occurrence of from, which must exist, after the start of the ref's block (or anywhere). */
static char *replace_in(char *text, const char *ref, const char *from, const char *to)
{
    char head[64];
    snprintf(head, sizeof(head), "requirement \"%s\" {", ref);
    char *start = ref != NULL ? strstr(text, head) : text;
    assert_non_null(start);
    char *at = strstr(start, from);
    assert_non_null(at);
    size_t pre = (size_t)(at - text), fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
    char *out = malloc(pre + tl + rest + 1);
    assert_non_null(out);
    memcpy(out, text, pre);
    memcpy(out + pre, to, tl);
    memcpy(out + pre + tl, at + fl, rest + 1);
    free(text);
    return out;
}

/* Removes the whole block of ref. */
static char *remove_block(char *text, const char *ref)
{
    char head[64];
    snprintf(head, sizeof(head), "requirement \"%s\" {", ref);
    char *start = strstr(text, head);
    assert_non_null(start);
    char *end = strstr(start, "\n}\n");
    assert_non_null(end);
    memmove(start, end + 3, strlen(end + 3) + 1);
    return text;
}

/* Drops every erratum { ... } block inside requirements, leaving the printed values alone. */
static char *remove_row_errata(char *text)
{
    char *e;
    while ((e = strstr(text, "    erratum {")) != NULL) {
        char *end = strstr(e, "\n    }\n");
        assert_non_null(end);
        memmove(e, end + 7, strlen(end + 7) + 1);
    }
    return text;
}

static char *appended(char *text, const char *more)
{
    size_t a = strlen(text), b = strlen(more);
    char *out = realloc(text, a + b + 1);
    assert_non_null(out);
    memcpy(out + a, more, b + 1);
    return out;
}

/* ---- the word rule ---- */

static void test_text_diff(void **state)
{
    (void)state;
    char where[200];
    msp_fw_wordmap_t m;
    assert_int_equal(msp_fw_text_diff("A may b.", "A  may b.", &m, where, sizeof(where)), MSP_FW_TEXT_SAME);
    assert_int_equal(m.bits[0], 0);
    assert_int_equal(msp_fw_text_diff("A may b.", "A shall b.", &m, where, sizeof(where)), MSP_FW_TEXT_MAY_SHALL);
    assert_int_equal(m.bits[0], 2);
    assert_int_equal(msp_fw_text_diff("A may b.", "A should b.", &m, NULL, 0), MSP_FW_TEXT_MAY_SHOULD);
    assert_int_equal(msp_fw_text_diff("A may b may.", "A shall b should.", NULL, where, sizeof(where)),
                     MSP_FW_TEXT_OTHER);
    assert_int_equal(msp_fw_text_diff("A may b may c", "A shall b should c", NULL, where, sizeof(where)),
                     MSP_FW_TEXT_OTHER);
    assert_string_equal(where, "at word 4 the template has \"may\", the profile \"should\"");
    assert_int_equal(msp_fw_text_diff("A may b.", "A may b", NULL, where, sizeof(where)), MSP_FW_TEXT_OTHER);
    assert_string_equal(where, "at word 3 the template has \"b.\", the profile \"b\"");
    assert_int_equal(msp_fw_text_diff("A may b.", "A may b. c", NULL, where, sizeof(where)), MSP_FW_TEXT_OTHER);
    assert_string_equal(where, "at word 4 the template has \"(end)\", the profile \"c\"");
    assert_int_equal(msp_fw_text_diff("A must b.", "A shall b.", NULL, where, sizeof(where)), MSP_FW_TEXT_OTHER);
}

/* ---- the shipped profiles ---- */

static void test_ets_checks_clean(void **state)
{
    (void)state;
    msp_fw_profile_t *p = checked(shipped_text("ets"));
    if (msp_fw_count(p, MSP_FW_ERROR) + msp_fw_count(p, MSP_FW_WARNING) != 0) {
        dump(p);
        fail_msg("ets has errors or warnings");
    }
    expect_finding(p, "M.AC.1", MSP_FW_ERRATUM, "Met printed N, should be Y");
    expect_finding(p, "M.AC.3", MSP_FW_ERRATUM, "Met printed Y, should be N");
    expect_finding(p, "B.3.4", MSP_FW_ERRATUM, "printed");
    assert_true(msp_fw_in_series(p));
    assert_string_equal(p->name, "ets");
    msp_fw_profile_free(p);
}

/* Without its errata, the printed Annex B breaks the rules where the errata say it does. */
static void test_ets_as_printed_breaks_rules(void **state)
{
    (void)state;
    char *text = remove_row_errata(dup_text(shipped_text("ets")));
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "M.AC.3", MSP_FW_ERROR, "PNA is not claimed as met");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    assert_false(msp_fw_in_series(p)); /* M.AC.1 printed N */
    msp_fw_profile_free(p);
    free(text);
}

static void test_split_proxy_checks_clean(void **state)
{
    (void)state;
    msp_fw_profile_t *p = checked(shipped_text("split-proxy"));
    if (msp_fw_count(p, MSP_FW_ERROR) + msp_fw_count(p, MSP_FW_WARNING) != 0) {
        dump(p);
        fail_msg("split-proxy has errors or warnings");
    }
    expect_finding(p, "E.DP.2", MSP_FW_ERRATUM, "Met printed Y, should be N");
    expect_finding(p, "M.AC.2.1", MSP_FW_ERRATUM, "text printed");
    assert_false(msp_fw_in_series(p));
    msp_fw_profile_free(p);
}

static void test_split_proxy_as_printed_breaks_rules(void **state)
{
    (void)state;
    char *text = remove_row_errata(dup_text(shipped_text("split-proxy")));
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.2", MSP_FW_ERROR, "PR is never met");
    expect_finding(p, "M.AC.2.1", MSP_FW_ERROR, "PO text is the template text");
    expect_finding(p, "M.AC.2.3", MSP_FW_ERROR, "PM text may differ");
    msp_fw_profile_free(p);
    free(text);
}

/* ---- broken profiles: each gets its one-line error ---- */

static void test_unknown_ref(void **state)
{
    (void)state;
    char *text = appended(dup_text(shipped_text("ets")),
                          "requirement \"E.DP.9\" { label = \"PR\"; met = false; text = \"x\"; }\n");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.9", MSP_FW_ERROR, "unknown requirement: not in Tables 6.2-6.5");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    msp_fw_profile_free(p);
    free(text);
}

static void test_missing_row(void **state)
{
    (void)state;
    char *text = remove_block(dup_text(shipped_text("ets")), "E.T.3");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.T.3", MSP_FW_ERROR, "missing");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    assert_false(msp_fw_in_series(p));
    msp_fw_profile_free(p);
    free(text);
}

static void test_duplicate_row(void **state)
{
    (void)state;
    char *text = appended(dup_text(shipped_text("ets")),
                          "requirement \"E.DP.1\" {\n label = \"MM\"; met = true; text = \"x\"; }\n");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.1", MSP_FW_ERROR, "labelled twice");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    msp_fw_profile_free(p);
    free(text);
}

static void test_mandatory_not_mm(void **state)
{
    (void)state;
    char *text = replace_in(dup_text(shipped_text("ets")), "E.DP.1", "label = \"MM\"", "label = \"PM\"");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.1", MSP_FW_ERROR, "Mandatory template requirement: it must be MM");
    msp_fw_profile_free(p);
    free(text);
}

static void test_optional_as_mm(void **state)
{
    (void)state;
    char *text = replace_in(dup_text(shipped_text("ets")), "E.DP.2", "label = \"PR\"", "label = \"MM\"");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.2", MSP_FW_ERROR, "Optional template requirement");
    msp_fw_profile_free(p);
    free(text);
}

static void test_pm_text_changed(void **state)
{
    (void)state;
    /* E.T.4.1 is PM in Annex B: "may" -> "shall" is fine, anything more is not. */
    char *text = replace_in(dup_text(shipped_text("ets")), "E.T.4.1", "the identity of the responder",
                            "the name of the responder");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.T.4.1", MSP_FW_ERROR, "PM text may differ from the template only by");
    expect_finding(p, "E.T.4.1", MSP_FW_ERROR, "\"identity\", the profile \"name\"");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    msp_fw_profile_free(p);
    free(text);
}

static void test_pm_keeps_may(void **state)
{
    (void)state;
    char *text = replace_in(dup_text(shipped_text("ets")), "E.T.4.1", "endpoint shall authenticate",
                            "endpoint may authenticate");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.T.4.1", MSP_FW_ERROR, "keeps \"may\"");
    msp_fw_profile_free(p);
    free(text);
}

static void test_mm_text_changed(void **state)
{
    (void)state;
    char *text = replace_in(dup_text(shipped_text("ets")), "E.DP.1", "shall protect", "should protect");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.1", MSP_FW_ERROR, "MM text is copied without changes");
    msp_fw_profile_free(p);
    free(text);
}

static void test_met_rules(void **state)
{
    (void)state;
    char *text = dup_text(shipped_text("ets"));
    text = replace_in(text, "E.DP.2", "met = false", "met = true");   /* PR */
    text = replace_in(text, "E.T.1.2", "met = false", "met = true");  /* PNA */
    text = replace_in(text, "E.T.4.1", "met = true", "met = false");  /* PM */
    text = replace_in(text, "E.DP.3.3", "met = true", "met = false"); /* PO */
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.2", MSP_FW_ERROR, "PR is never met");
    expect_finding(p, "E.T.1.2", MSP_FW_ERROR, "PNA is not claimed as met");
    expect_finding(p, "E.T.4.1", MSP_FW_ERROR, "PM is always met");
    expect_finding(p, "E.DP.3.3", MSP_FW_ERROR, "PO is provided by the profile");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 4);
    msp_fw_profile_free(p);
    free(text);
}

static void test_branch_rule(void **state)
{
    (void)state;
    /* E.AC.1's Mandatory children (1.1, 1.2, 1.5) are met in Annex B, so E.AC.1 cannot be unmet. */
    char *text = replace_in(dup_text(shipped_text("ets")), "E.AC.1", "met = true", "met = false");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.AC.1", MSP_FW_ERROR, "all its Mandatory children are met");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    assert_false(msp_fw_in_series(p));
    msp_fw_profile_free(p);
    free(text);
}

static void test_branch_rule_optional_children(void **state)
{
    (void)state;
    /* E.T.4 has only Optional children, all met in Annex B: it must be met too. */
    char *text = replace_in(dup_text(shipped_text("ets")), "E.T.4", "met = true", "met = false");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.T.4", MSP_FW_ERROR, "all its children are met");
    msp_fw_profile_free(p);
    free(text);
}

static void test_missing_justification(void **state)
{
    (void)state;
    char *text = dup_text(shipped_text("ets"));
    char *j = strstr(strstr(text, "requirement \"E.DP.3.1\" {"), "justification = \"");
    assert_non_null(j);
    memcpy(j, "comment      ", 13); /* becomes an unknown key... */
    text = replace_in(text, "E.DP.3.1", "comment      ", "#");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.3.1", MSP_FW_ERROR, "no justification");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    msp_fw_profile_free(p);
    free(text);
}

static void test_types_and_keys(void **state)
{
    (void)state;
    char *text = dup_text(shipped_text("ets"));
    text = replace_in(text, "E.DP.1", "met = true", "met = \"yes\"");
    text = replace_in(text, "E.DP.3", "label = \"MM\"", "label = \"MMM\"");
    text = replace_in(text, "E.DP.4", "met = true", "met = true; colour = \"red\"");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.1", MSP_FW_ERROR, "'met' must be true or false, not a string");
    expect_finding(p, "E.DP.3", MSP_FW_ERROR, "it must be one of MM, PM, PO, PNA, PR");
    expect_finding(p, "E.DP.4", MSP_FW_ERROR, "unknown key 'colour'");
    msp_fw_profile_free(p);
    free(text);
}

static void test_erratum_rules(void **state)
{
    (void)state;
    char *text = appended(remove_block(dup_text(shipped_text("ets")), "E.DP.2"),
                          "requirement \"E.DP.2\" {\n label = \"PR\"; met = false;\n"
                          " text = \"Endpoints may add protection to externally visible characteristics of application "
                          "data to protect confidentiality of sensitive information about application activity. (This "
                          "is commonly referred to as Traffic Analysis Protection).\";\n"
                          " erratum { met = false; }\n}\n");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.2", MSP_FW_ERROR, "erratum without 'why'");
    expect_finding(p, "E.DP.2", MSP_FW_ERROR, "repeats a printed value");
    msp_fw_profile_free(p);
    free(text);
}

static void test_syntax_error_has_line(void **state)
{
    (void)state;
    const char *text = "profile {\n  name = \"x\";\n}\nrequirement \"E.DP.1\" {\n  label = \"MM;\n";
    msp_fw_profile_t *p = NULL;
    msp_error_t err;
    assert_int_equal(msp_fw_profile_parse(cat, "t.ucl", text, strlen(text), &p, &err), MSP_ERR_SYNTAX);
    assert_null(p);
    assert_string_equal(err.where, "5");
    assert_true(err.detail[0] != '\0');
}

static void test_load_by_name_and_path(void **state)
{
    (void)state;
    msp_fw_profile_t *p = NULL;
    msp_error_t err;
    assert_int_equal(msp_fw_profile_load(cat, "split-proxy", &p, &err), MSP_OK);
    assert_string_equal(p->source_name, "split-proxy");
    msp_fw_profile_free(p);
    assert_int_equal(msp_fw_profile_load(cat, "no-such-profile", &p, &err), MSP_ERR_NOT_FOUND);
    assert_string_equal(err.where, "no-such-profile");
    assert_int_equal(msp_fw_profile_load(cat, "/nonexistent/x.ucl", &p, &err), MSP_ERR_IO);
    assert_string_equal(err.where, "/nonexistent/x.ucl");
    assert_int_equal(msp_fw_profile_load(cat, MSP_SOURCE_DIR "/data/framework/profiles/ets.ucl", &p, &err), MSP_OK);
    msp_fw_profile_free(p);
    assert_string_equal(msp_fw_shipped_name(0), "ets");
    assert_string_equal(msp_fw_shipped_name(1), "msp-ets");
    assert_string_equal(msp_fw_shipped_name(2), "split-proxy");
    assert_string_equal(msp_fw_shipped_name(3), "tlmsp");
    assert_null(msp_fw_shipped_name(4));
}

/* The skeleton from 'new' parses, lists every requirement, and check says what is missing. */
static void test_new_skeleton(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 20);
    assert_int_equal(msp_fw_render_new(cat, "mine", &b), MSP_OK);
    msp_fw_profile_t *p = checked(msp_buf_cstr(&b));
    assert_string_equal(p->name, "mine");
    for (size_t i = 0; i < cat->count; i++) {
        assert_true(p->rows[i].present);
        assert_string_equal(p->rows[i].text, cat->reqs[i].text);
        expect_finding(p, cat->reqs[i].ref, MSP_FW_ERROR, "no label");
        expect_finding(p, cat->reqs[i].ref, MSP_FW_ERROR, "no 'met'");
    }
    assert_null(finding(p, "E.DP.1", MSP_FW_ERROR, "missing"));
    msp_fw_profile_free(p);
    msp_buf_free(&b);
}

/* ---- the rules one row at a time, on a profile that is otherwise clean ---- */

/* Appends a UCL string literal; control characters are escaped as UCL wants them. */
static void put_ucl_string(msp_buf_t *b, const char *s)
{
    msp_buf_puts(b, "\"");
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20) {
            msp_buf_printf(b, "\\u%04x", (unsigned)*s);
            continue;
        }
        if (*s == '"' || *s == '\\') {
            msp_buf_puts(b, "\\");
        }
        msp_buf_put(b, s, 1);
    }
    msp_buf_puts(b, "\"");
}

/* One requirement block; met < 0 and a NULL justification leave that key out. */
static void put_row(msp_buf_t *b, const char *ref, const char *label, int met, const char *text, const char *just)
{
    msp_buf_printf(b, "requirement \"%s\" {\n    label = \"%s\";\n", ref, label);
    if (met >= 0) {
        msp_buf_printf(b, "    met = %s;\n", met ? "true" : "false");
    }
    msp_buf_puts(b, "    text = ");
    put_ucl_string(b, text);
    msp_buf_puts(b, ";\n");
    if (just != NULL) {
        msp_buf_puts(b, "    justification = ");
        put_ucl_string(b, just);
        msp_buf_puts(b, ";\n");
    }
    msp_buf_puts(b, "}\n");
}

/*
 * A profile that checks without a finding: every Mandatory template
 * requirement MM, every Optional one PO, all met, template texts, each with a
 * justification. The row of ref (when not NULL) is the one given instead.
 * The result ends with a newline; free it.
 */
static char *clean_profile_with(const char *ref, const char *label, int met, const char *text, const char *just)
{
    msp_buf_t b;
    msp_buf_init(&b, 1u << 20);
    msp_buf_puts(&b, "profile {\n    name = \"clean\";\n}\n");
    for (size_t i = 0; i < cat->count; i++) {
        const msp_fw_template_t *t = &cat->reqs[i];
        if (ref != NULL && strcmp(t->ref, ref) == 0) {
            put_row(&b, ref, label, met, text, just);
        } else {
            put_row(&b, t->ref, t->mandatory ? "MM" : "PO", 1, t->text, "Met by the mechanism of clause X.");
        }
    }
    assert_int_equal(msp_buf_error(&b), MSP_OK);
    char *out = dup_text(msp_buf_cstr(&b));
    msp_buf_free(&b);
    return out;
}

static uint32_t line_count(const char *s)
{
    uint32_t n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

static void expect_no_findings(const msp_fw_profile_t *p)
{
    if (p->nfindings != 0 || p->dropped_findings != 0) {
        dump(p);
        fail_msg("expected no finding, got %zu (%zu dropped)", p->nfindings, p->dropped_findings);
    }
}

/* The profile has exactly one finding, and it is this one, word for word. */
static void expect_only(const msp_fw_profile_t *p, const char *ref, msp_fw_severity_t sev, const char *message)
{
    if (p->nfindings != 1 || p->dropped_findings != 0 || strcmp(p->findings[0].ref, ref) != 0 ||
        p->findings[0].severity != sev || strcmp(p->findings[0].message, message) != 0) {
        dump(p);
        fail_msg("expected exactly one finding %s (%d): %s", ref, sev, message);
    }
}

static const char e_dp_2_shall[] =
    "Endpoints shall add protection to externally visible characteristics of application data to protect "
    "confidentiality of sensitive information about application activity. (This is commonly referred to as Traffic "
    "Analysis Protection).";
static const char e_dp_2_should[] =
    "Endpoints should add protection to externally visible characteristics of application data to protect "
    "confidentiality of sensitive information about application activity. (This is commonly referred to as Traffic "
    "Analysis Protection).";
/* Word 10, "application", changed into "all". */
static const char e_dp_2_other[] =
    "Endpoints may add protection to externally visible characteristics of all data to protect "
    "confidentiality of sensitive information about application activity. (This is commonly referred to as Traffic "
    "Analysis Protection).";

static void test_clean_profile_has_no_findings(void **state)
{
    (void)state;
    char *text = clean_profile_with(NULL, NULL, -1, NULL, NULL);
    msp_fw_profile_t *p = checked(text);
    expect_no_findings(p);
    assert_true(msp_fw_in_series(p));
    msp_fw_profile_free(p);
    free(text);
}

/*
 * Clause 6.1.1 and 6.1.3: the Conformance Analysis "shall be completed" for
 * every MM, PM and PO, and "may be completed" for PNA and PR. Every label must
 * say whether it is met. Each label, with and without a justification, and
 * with and without 'met'.
 */
static void test_justification_and_met_per_label(void **state)
{
    (void)state;
    const char *tmpl_dp1 = cat->reqs[msp_fw_catalog_find(cat, "E.DP.1")].text;
    const char *tmpl_dp2 = cat->reqs[msp_fw_catalog_find(cat, "E.DP.2")].text;
    const struct {
        const char *ref, *label;
        int met;
        const char *text;
        int needs_justification;
    } rows[] = {
        {"E.DP.1", "MM", 1, tmpl_dp1, 1},      {"E.DP.2", "PM", 1, e_dp_2_shall, 1}, {"E.DP.2", "PO", 1, tmpl_dp2, 1},
        {"E.DP.2", "PO", 1, e_dp_2_should, 1}, {"E.DP.2", "PNA", 0, tmpl_dp2, 0},    {"E.DP.2", "PR", 0, tmpl_dp2, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("%s labelled %s\n", rows[i].ref, rows[i].label);
        /* with a justification and met: clean */
        char *text = clean_profile_with(rows[i].ref, rows[i].label, rows[i].met, rows[i].text, "Because.");
        msp_fw_profile_t *p = checked(text);
        expect_no_findings(p);
        msp_fw_profile_free(p);
        free(text);

        /* without a justification, or with only white space */
        const char *none[] = {NULL, " \t\r\n"};
        for (size_t k = 0; k < 2; k++) {
            text = clean_profile_with(rows[i].ref, rows[i].label, rows[i].met, rows[i].text, none[k]);
            p = checked(text);
            if (rows[i].needs_justification) {
                expect_only(p, rows[i].ref, MSP_FW_ERROR,
                            "no justification; the Conformance Analysis covers every MM, PM and PO (clause 6.1.3)");
            } else {
                expect_no_findings(p);
            }
            msp_fw_profile_free(p);
            free(text);
        }

        /* without 'met', whatever the label */
        text = clean_profile_with(rows[i].ref, rows[i].label, -1, rows[i].text, "Because.");
        p = checked(text);
        expect_only(p, rows[i].ref, MSP_FW_ERROR, "no 'met'; say whether the profile meets it (true or false)");
        msp_fw_profile_free(p);
        free(text);
    }
}

/* The message of a text finding names the change that was made, per label (clause 6.1.2.3). */
static void test_text_messages_per_label(void **state)
{
    (void)state;
    const struct {
        const char *ref, *label;
        int met;
        const char *text, *message;
    } rows[] = {
        {"E.DP.2", "PO", 1, e_dp_2_shall,
         "PO text is the template text, or with \"may\" -> \"should\" only (clause 6.1.2.3); it has \"shall\""},
        {"E.DP.2", "PO", 1, e_dp_2_other,
         "PO text is the template text, or with \"may\" -> \"should\" only (clause 6.1.2.3); at word 10 the template "
         "has \"application\", the profile \"all\""},
        {"E.DP.2", "PNA", 0, e_dp_2_shall, "PNA text is copied without changes (clause 6.1.2.3); \"may\" was changed"},
        {"E.DP.2", "PR", 0, e_dp_2_should, "PR text is copied without changes (clause 6.1.2.3); \"may\" was changed"},
        {"E.DP.2", "PR", 0, e_dp_2_other,
         "PR text is copied without changes (clause 6.1.2.3); at word 10 the template has \"application\", the "
         "profile \"all\""},
        {"E.DP.1", "MM", 1, "Endpoints shall protect confidentiality of all data that they send.",
         "MM text is copied without changes (clause 6.1.2.3); at word 6 the template has \"sensitive\", the profile "
         "\"all\""},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        print_message("%s labelled %s\n", rows[i].ref, rows[i].label);
        char *text = clean_profile_with(rows[i].ref, rows[i].label, rows[i].met, rows[i].text, "Because.");
        msp_fw_profile_t *p = checked(text);
        expect_only(p, rows[i].ref, MSP_FW_ERROR, rows[i].message);
        msp_fw_profile_free(p);
        free(text);
    }
}

/* A clause erratum is reported as an erratum only when it has printed, should_be and why; else it is an error. */
static void test_clause_erratum_needs_all_three(void **state)
{
    (void)state;
    const char *blocks[] = {
        "erratum \"B.9\" {\n    should_be = \"b\";\n    why = \"c\";\n}\n",
        "erratum \"B.9\" {\n    printed = \"a\";\n    why = \"c\";\n}\n",
        "erratum \"B.9\" {\n    printed = \"a\";\n    should_be = \"b\";\n}\n",
    };
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        char *text = clean_profile_with(NULL, NULL, -1, NULL, NULL);
        char message[128];
        snprintf(message, sizeof(message), "a clause erratum needs printed, should_be and why (line %u)",
                 (unsigned)line_count(text) + 1);
        text = appended(text, blocks[i]);
        msp_fw_profile_t *p = checked(text);
        expect_only(p, "B.9", MSP_FW_ERROR, message);
        msp_fw_profile_free(p);
        free(text);
    }
    /* the control: all three, one erratum finding */
    char *text = appended(clean_profile_with(NULL, NULL, -1, NULL, NULL),
                          "erratum \"B.9\" {\n    printed = \"a\";\n    should_be = \"b\";\n    why = \"c\";\n}\n");
    msp_fw_profile_t *p = checked(text);
    expect_only(p, "B.9", MSP_FW_ERRATUM, "printed \"a\", should be \"b\"; c");
    msp_fw_profile_free(p);
    free(text);
}

/*
 * As many clause errata as the profile holds (MSP_FW_MAX_FINDINGS): the
 * array is full, each is reported once, and nothing is read past the last
 * (under ASan, a read past it is an overflow).
 */
static void test_clause_errata_fill_the_array(void **state)
{
    (void)state;
    msp_buf_t b;
    msp_buf_init(&b, 1u << 20);
    char *clean = clean_profile_with(NULL, NULL, -1, NULL, NULL);
    msp_buf_puts(&b, clean);
    free(clean);
    for (unsigned i = 0; i < MSP_FW_MAX_FINDINGS; i++) {
        msp_buf_printf(&b, "erratum \"C.%u\" { printed = \"p%u\"; should_be = \"s\"; why = \"w\"; }\n", i, i);
    }
    assert_int_equal(msp_buf_error(&b), MSP_OK);
    msp_fw_profile_t *p = checked(msp_buf_cstr(&b));
    assert_int_equal(p->nerrata, MSP_FW_MAX_FINDINGS);
    assert_int_equal(p->nfindings, MSP_FW_MAX_FINDINGS);
    assert_int_equal(p->dropped_findings, 0);
    assert_int_equal(msp_fw_count(p, MSP_FW_ERRATUM), MSP_FW_MAX_FINDINGS);
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 0);
    const msp_fw_finding_t *last = &p->findings[MSP_FW_MAX_FINDINGS - 1];
    assert_string_equal(last->ref, "C.999");
    assert_string_equal(last->message, "printed \"p999\", should be \"s\"; w");
    msp_fw_profile_free(p);
    msp_buf_free(&b);
}

/* ---- issue 14: the findings of the Part 1 audit ---- */

/* Finding 1: a met parent stands for its leaves (clause 6.1.3), so an unmet Mandatory child contradicts it. */
static void test_branch_rule_met_parent(void **state)
{
    (void)state;
    char *text = replace_in(dup_text(shipped_text("ets")), "E.AC.1.1", "met = true", "met = false");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.AC.1", MSP_FW_ERROR, "met, yet its Mandatory child E.AC.1.1 is not met");
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 1);
    assert_string_equal(finding(p, "E.AC.1", MSP_FW_ERROR, "Mandatory child")->rule, "branch");
    msp_fw_profile_free(p);
    free(text);
    /* An Optional child may stay unmet under a met parent: E.DP.3 is met, its E.DP.3.2 is PR. */
    p = checked(shipped_text("ets"));
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 0);
    msp_fw_profile_free(p);
}

/* Finding 4: an empty profile is one error, not a finding per missing requirement. */
static void test_empty_profile(void **state)
{
    (void)state;
    static const char *const empties[] = {"", "\n\n", "# nothing yet\n", "/* c */"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        msp_fw_profile_t *p = (msp_fw_profile_t *)1;
        msp_error_t err;
        msp_error_clear(&err);
        assert_int_equal(msp_fw_profile_parse(cat, "e.ucl", empties[i], strlen(empties[i]), &p, &err), MSP_ERR_INVALID);
        assert_null(p);
        assert_string_equal(err.where, "1");
        assert_non_null(strstr(err.detail, "empty profile"));
    }
}

/* Finding 4: a spacing change in a copied text is a warning (the words are compared), for MM and for PM. */
static void test_spacing_is_a_warning(void **state)
{
    (void)state;
    char *text = replace_in(dup_text(shipped_text("ets")), "E.DP.1", "shall protect confidentiality",
                            "shall protect\\n  confidentiality");
    text = replace_in(text, "E.T.4.1", "The initiator endpoint shall", "The  initiator endpoint shall");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.DP.1", MSP_FW_WARNING, "before word 4 the template has a space, the profile a line break");
    expect_finding(p, "E.T.4.1", MSP_FW_WARNING, "in spacing only");
    assert_int_equal(msp_fw_count(p, MSP_FW_WARNING), 2);
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 0);
    assert_string_equal(finding(p, "E.DP.1", MSP_FW_WARNING, "spacing")->rule, "text-spacing");
    msp_fw_profile_free(p);
    free(text);
    char where[200];
    assert_false(fw_spacing_differs("a may b.", "a shall b.", where, sizeof(where)));
    assert_true(fw_spacing_differs("a b.", "a b. ", where, sizeof(where)));
    assert_non_null(strstr(where, "after the last word"));
    assert_true(fw_spacing_differs("a b.", " a b.", where, sizeof(where)));
    assert_non_null(strstr(where, "before the first word"));
}

/* Finding 3: both verdicts, and what the errata decide. */
static void test_verdict_as_printed_and_after_errata(void **state)
{
    (void)state;
    msp_fw_profile_t *p = checked(shipped_text("ets"));
    assert_true(msp_fw_in_series(p));
    assert_false(msp_fw_in_series_as_printed(p));
    assert_int_equal(msp_fw_deciding_errata(p), 1);
    msp_buf_t b;
    msp_buf_init(&b, 1 << 16);
    msp_fw_render_verdicts(p, "ets: ", &b);
    const char *out = msp_buf_cstr(&b);
    assert_non_null(strstr(out, "ets: verdict as printed: not part of the MSP series: 1 MSP-Mandatory requirement is "
                                "not met (clause 6.1.1): M.AC.1.\n"));
    assert_non_null(strstr(out, "ets: verdict after errata: may be part of the MSP series: every MSP-Mandatory "
                                "requirement is met (clause 6.1.1). 1 erratum decides it: M.AC.1.\n"));
    msp_buf_free(&b);
    msp_fw_profile_free(p);
    p = checked(shipped_text("split-proxy"));
    assert_int_equal(msp_fw_deciding_errata(p), 0);
    assert_int_equal(msp_fw_in_series(p), msp_fw_in_series_as_printed(p));
    msp_fw_profile_free(p);
}

/* Finding 3: --no-errata takes the profile as printed. */
static void test_ignore_errata(void **state)
{
    (void)state;
    msp_fw_profile_t *p;
    const char *text = shipped_text("ets");
    assert_int_equal(msp_fw_profile_parse(cat, "ets", text, strlen(text), &p, NULL), MSP_OK);
    msp_fw_ignore_errata(p);
    msp_fw_check(p);
    assert_int_equal(msp_fw_count(p, MSP_FW_ERRATUM), 0);
    expect_finding(p, "M.AC.3", MSP_FW_ERROR, "PNA is not claimed as met");
    assert_false(msp_fw_in_series(p));
    assert_int_equal(msp_fw_deciding_errata(p), 0);
    msp_buf_t b;
    msp_buf_init(&b, 1 << 16);
    msp_fw_render_verdicts(p, "", &b);
    assert_non_null(strstr(msp_buf_cstr(&b), "verdict as printed (errata ignored): not part"));
    assert_null(strstr(msp_buf_cstr(&b), "after errata"));
    msp_buf_free(&b);
    msp_fw_profile_free(p);
}

/* Finding 4: every finding names a rule SARIF can list, and points at a line. */
static void test_findings_have_rules_and_lines(void **state)
{
    (void)state;
    char *text = replace_in(dup_text(shipped_text("ets")), "E.DP.1", "label = \"MM\"", "label = \"PO\"");
    text = replace_in(text, "E.T.4", "met = true", "met = 3");
    text = appended(text, "requirement \"E.DP.9\" { label = \"MM\"; }\n");
    msp_fw_profile_t *p = checked(text);
    assert_true(p->nfindings > 8);
    for (size_t i = 0; i < p->nfindings; i++) {
        assert_non_null(p->findings[i].rule);
        assert_non_null(msp_fw_rule_describe(p->findings[i].rule));
        assert_true(fw_finding_line(p, &p->findings[i]) > 0);
    }
    const msp_fw_finding_t *f = finding(p, "E.T.4", MSP_FW_ERROR, "must be true or false");
    assert_non_null(f);
    assert_string_equal(f->rule, "format");
    assert_null(msp_fw_rule_describe("no-such-rule"));
    msp_fw_profile_free(p);
    free(text);
}

/* Finding 4: check's JSON and SARIF parse (JSON is UCL) and carry every finding. */
static void test_render_check_formats(void **state)
{
    (void)state;
    msp_fw_profile_t *p = checked(shipped_text("ets"));
    p->shipped = 1;
    const msp_fw_profile_t *one[1] = {p};
    msp_buf_t b;
    msp_buf_init(&b, 1 << 22);
    assert_int_equal(msp_fw_render_check(one, 1, MSP_FW_SARIF, &b), MSP_OK);
    msp_ucl_doc_t *doc;
    assert_int_equal(msp_ucl_parse((const char *)b.base, b.len, NULL, &doc, NULL), MSP_OK);
    const msp_ucl_t *root = msp_ucl_root(doc);
    assert_string_equal(msp_ucl_lookup(root, "version")->v.str.s, "2.1.0");
    const msp_ucl_t *run = msp_ucl_lookup(root, "runs")->v.kids.first;
    assert_int_equal(msp_ucl_lookup(run, "results")->v.kids.count, p->nfindings);
    msp_ucl_free(doc);
    b.len = 0;
    assert_int_equal(msp_fw_render_check(one, 1, MSP_FW_JSON, &b), MSP_OK);
    assert_int_equal(msp_ucl_parse((const char *)b.base, b.len, NULL, &doc, NULL), MSP_OK);
    msp_ucl_free(doc);
    b.len = 0;
    assert_int_equal(msp_fw_render_check(one, 1, MSP_FW_MD, &b), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_fw_render_report(p, MSP_FW_SARIF, &b), MSP_ERR_ARGUMENT);
    assert_int_equal(msp_fw_format_parse("sarif"), MSP_FW_SARIF);
    msp_fw_profile_free(p);
    /* Findings past MSP_FW_MAX_FINDINGS are one more result, not silently missing. */
    char *many = dup_text("");
    for (int i = 0; i < 1100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "x%d = 1;\n", i);
        many = appended(many, key);
    }
    p = checked(many);
    assert_true(p->dropped_findings > 0);
    one[0] = p;
    b.len = 0;
    assert_int_equal(msp_fw_render_check(one, 1, MSP_FW_SARIF, &b), MSP_OK);
    assert_int_equal(msp_ucl_parse((const char *)b.base, b.len, NULL, &doc, NULL), MSP_OK);
    run = msp_ucl_lookup(msp_ucl_root(doc), "runs")->v.kids.first;
    assert_int_equal(msp_ucl_lookup(run, "results")->v.kids.count, MSP_FW_MAX_FINDINGS + 1);
    assert_non_null(strstr((const char *)b.base, "more findings not shown"));
    msp_ucl_free(doc);
    msp_buf_free(&b);
    msp_fw_profile_free(p);
    free(many);
}

/* Finding 2: the clauses, tables and assumptions a justification cites; versions are not clauses. */
static void test_cited_clauses(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(fw_cited("Met (B.3.1.2; ETS.TM.0, Annex-C.TM.4) over TLS 1.3 V1.1.1; see clause 6.1 and "
                              "Table B.3, and 6.1.2.3, B.3.1.2 again.",
                              out, sizeof(out)),
                     6);
    assert_string_equal(out, "B.3.1.2\nETS.TM.0\nAnnex-C.TM.4\n6.1\nTable B.3\n6.1.2.3\n");
    assert_int_equal(fw_cited(NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

/* Finding 2: the report renders every justification, in sections numbered as the annex. */
static void test_report_has_analysis(void **state)
{
    (void)state;
    msp_fw_profile_t *p = checked(shipped_text("split-proxy"));
    for (int fmt = MSP_FW_TEXT; fmt <= MSP_FW_HTML; fmt++) {
        if (fmt == MSP_FW_JSON) {
            continue;
        }
        msp_buf_t b;
        msp_buf_init(&b, 1 << 22);
        assert_int_equal(msp_fw_render_report(p, (msp_fw_format_t)fmt, &b), MSP_OK);
        const char *out = msp_buf_cstr(&b);
        assert_non_null(strstr(out, "C.3.2.6 Profile-Rejected Profile Requirements"));
        assert_non_null(strstr(out, "Table C.4: Good Citizen Profile Requirements"));
        /* The first few words of every justification (wrapping and escaping aside). */
        for (size_t i = 0; i < cat->count; i++) {
            char head[24];
            snprintf(head, sizeof(head), "%.20s", p->rows[i].justification);
            char *sp = strrchr(head, ' ');
            if (sp != NULL) {
                *sp = '\0';
            }
            if (strstr(out, head) == NULL) {
                fail_msg("format %d: no justification of %s (\"%s\")", fmt, cat->reqs[i].ref, head);
            }
        }
        msp_buf_free(&b);
    }
    /* Without an annex the sections are numbered from 1. */
    char *text = replace_in(dup_text(shipped_text("split-proxy")), NULL, "    annex = \"C\";", "");
    msp_fw_profile_free(p);
    p = checked(text);
    msp_buf_t b;
    msp_buf_init(&b, 1 << 22);
    assert_int_equal(msp_fw_render_report(p, MSP_FW_TEXT, &b), MSP_OK);
    assert_non_null(strstr(msp_buf_cstr(&b), "\n2.6 Profile-Rejected Profile Requirements\n"));
    assert_non_null(strstr(msp_buf_cstr(&b), "\nTable 4: Good Citizen"));
    msp_buf_free(&b);
    msp_fw_profile_free(p);
    free(text);
}

/* Finding 5: compare marks a text-only erratum as it marks the others. */
static void test_compare_marks_text_errata(void **state)
{
    (void)state;
    msp_fw_profile_t *p = checked(shipped_text("split-proxy"));
    const msp_fw_profile_t *one[1] = {p};
    msp_buf_t b;
    msp_buf_init(&b, 1 << 20);
    assert_int_equal(msp_fw_render_compare(one, 1, MSP_FW_TEXT, &b), MSP_OK);
    const char *row = strstr(msp_buf_cstr(&b), "\nM.AC.2.1 ");
    assert_non_null(row);
    assert_true(strncmp(row, "\nM.AC.2.1    O   PO Y* ", 23) == 0);
    msp_buf_free(&b);
    msp_fw_profile_free(p);
}

/* ---- evidence (docs/profile-format.md, "Evidence") ---- */

/* s with the first "find" replaced by "with"; free the result. */
static char *replaced(const char *s, const char *find, const char *with)
{
    const char *at = strstr(s, find);
    assert_non_null(at);
    size_t head = (size_t)(at - s), flen = strlen(find), wlen = strlen(with);
    char *out = malloc(strlen(s) - flen + wlen + 1);
    assert_non_null(out);
    memcpy(out, s, head);
    memcpy(out + head, with, wlen);
    strcpy(out + head + wlen, at + flen);
    return out;
}

/* The clean profile with ref's row as given and the line "evidence = EV;" in it (EV NULL: none). */
static char *evidence_profile(const char *ref, const char *label, int met, const char *ev)
{
    const char *tmpl = cat->reqs[msp_fw_catalog_find(cat, ref)].text;
    char *text = clean_profile_with(ref, label, met, tmpl, "Because.");
    if (ev == NULL) {
        return text;
    }
    char find[64], with[1024];
    snprintf(find, sizeof(find), "requirement \"%s\" {\n", ref);
    snprintf(with, sizeof(with), "%s    evidence = %s;\n", find, ev);
    char *out = replaced(text, find, with);
    free(text);
    return out;
}

static void test_evidence_parsed(void **state)
{
    (void)state;
    char *text =
        evidence_profile("E.DP.1", "MM", 1, "[ \"test_tlmsp_tamper\", \"test_tlmsp_forge:test_forged_writer_mac\" ]");
    msp_fw_profile_t *p = checked(text);
    expect_no_findings(p);
    size_t i = (size_t)msp_fw_catalog_find(cat, "E.DP.1");
    assert_int_equal(msp_fw_evidence_count(p, i), 2);
    assert_string_equal(msp_fw_evidence(p, i, 0), "test_tlmsp_tamper");
    assert_string_equal(msp_fw_evidence(p, i, 1), "test_tlmsp_forge:test_forged_writer_mac");
    assert_null(msp_fw_evidence(p, i, 2));
    assert_int_equal(msp_fw_evidence_count(p, i + 1), 0); /* a row without evidence */
    assert_null(msp_fw_evidence(p, i + 1, 0));
    assert_int_equal(msp_fw_evidence_count(p, cat->count), 0); /* past the catalog */
    assert_null(msp_fw_evidence(p, cat->count, 0));
    msp_fw_profile_free(p);
    free(text);
}

/* Each entry is TEST or TEST:CASE, names of [A-Za-z0-9_.-], listed once; the list is a list and not empty. */
static void test_evidence_syntax(void **state)
{
    (void)state;
    const struct {
        const char *ev, *rule, *part;
    } bad[] = {
        {"[ \"\" ]", "evidence", "evidence \"\" is not TEST or TEST:CASE"},
        {"[ \"cli ets\" ]", "evidence", "evidence \"cli ets\" is not TEST or TEST:CASE"},
        {"[ \"cli_ets:\" ]", "evidence", "is not TEST or TEST:CASE"},
        {"[ \":test_x\" ]", "evidence", "is not TEST or TEST:CASE"},
        {"[ \"a:b:c\" ]", "evidence", "is not TEST or TEST:CASE"},
        {"[ \"a/b\" ]", "evidence", "is not TEST or TEST:CASE"},
        {"[ 7 ]", "evidence", "an evidence entry must be a string, not a number"},
        {"[ \"cli_ets\", \"cli_ets\" ]", "evidence", "evidence \"cli_ets\" is listed twice"},
        {"[]", "evidence", "the evidence list is empty"},
        {"\"cli_ets\"", "format", "'evidence' must be a list"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        print_message("evidence = %s\n", bad[k].ev);
        char *text = evidence_profile("E.DP.1", "MM", 1, bad[k].ev);
        msp_fw_profile_t *p = checked(text);
        if (p->nfindings != 1 || strcmp(p->findings[0].rule, bad[k].rule) != 0 ||
            strstr(p->findings[0].message, bad[k].part) == NULL || strcmp(p->findings[0].ref, "E.DP.1") != 0) {
            dump(p);
            fail_msg("expected one %s finding: %s", bad[k].rule, bad[k].part);
        }
        msp_fw_profile_free(p);
        free(text);
    }
}

/* Only a met MM, PM or PO row claims anything, so only such a row lists evidence. */
static void test_evidence_only_on_claims(void **state)
{
    (void)state;
    const struct {
        const char *ref, *label;
        int met;
    } rows[] = {{"E.DP.2", "PR", 0}, {"E.DP.2", "PNA", 0}, {"M.GC.3", "PR", 0}};
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        char *text = evidence_profile(rows[k].ref, rows[k].label, rows[k].met, "[ \"cli_ets\" ]");
        msp_fw_profile_t *p = checked(text);
        char want[200];
        snprintf(want, sizeof(want), "evidence on a row that claims nothing (%s, met false", rows[k].label);
        expect_finding(p, rows[k].ref, MSP_FW_WARNING, want);
        assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), 0);
        msp_fw_profile_free(p);
        free(text);
    }
    /* An unmet MM row (the verdict says so) has nothing to prove either; E.GC.1.1 is a leaf, E.GC.1 its parent. */
    char *text = evidence_profile("E.GC.1.1", "MM", 0, "[ \"cli_ets\" ]");
    msp_fw_profile_t *p = checked(text);
    expect_finding(p, "E.GC.1.1", MSP_FW_WARNING, "evidence on a row that claims nothing (MM, met false");
    msp_fw_profile_free(p);
    free(text);
}

/* evidence_required: every met MM, PM and PO row names its evidence; without it, evidence is optional. */
static void test_evidence_required(void **state)
{
    (void)state;
    char *text = evidence_profile("E.DP.1", "MM", 1, "[ \"cli_ets\" ]");
    msp_fw_profile_t *p = checked(text);
    expect_no_findings(p);
    assert_false(p->evidence_required);
    msp_fw_profile_free(p);

    char *req = replaced(text, "name = \"clean\";\n", "name = \"clean\";\n    evidence_required = true;\n");
    p = checked(req);
    assert_true(p->evidence_required);
    /* every row but E.DP.1 is met (MM or PO) without evidence */
    assert_int_equal(msp_fw_count(p, MSP_FW_ERROR), cat->count - 1);
    expect_finding(p, "E.DP.2", MSP_FW_ERROR,
                   "PO and met, but no evidence; the profile sets evidence_required, so every met MM, PM and PO row "
                   "names the tests that show it");
    expect_finding(p, "E.DP.3", MSP_FW_ERROR, "MM and met, but no evidence");
    assert_null(finding(p, "E.DP.1", MSP_FW_ERROR, "evidence"));
    assert_string_equal(p->findings[0].rule, "evidence");
    msp_fw_profile_free(p);
    free(req);

    char *wrong = replaced(text, "name = \"clean\";\n", "name = \"clean\";\n    evidence_required = \"yes\";\n");
    p = checked(wrong);
    expect_only(p, "profile", MSP_FW_ERROR, "'evidence_required' must be true or false, not a string (line 3)");
    msp_fw_profile_free(p);
    free(wrong);
    free(text);
}

/* msp's own profiles: clean, evidence required, and every claim backed (the names are checked against ctest -N by
 * the framework_evidence test). */
static void test_own_profiles_check_clean(void **state)
{
    (void)state;
    const char *names[] = {"tlmsp", "msp-ets"};
    for (size_t k = 0; k < 2; k++) {
        msp_fw_profile_t *p = checked(shipped_text(names[k]));
        if (p->nfindings != 0) {
            dump(p);
            fail_msg("%s has findings", names[k]);
        }
        assert_string_equal(p->name, names[k]);
        assert_true(p->evidence_required);
        assert_true(msp_fw_in_series(p));
        for (size_t i = 0; i < cat->count; i++) {
            const msp_fw_row_t *r = &p->rows[i];
            int claims = msp_fw_row_met(r) == 1;
            assert_int_equal(msp_fw_evidence_count(p, i) > 0, claims);
            /* a row that falls short says why */
            assert_true(claims || strlen(r->justification) > 20);
        }
        msp_fw_profile_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_diff),
        cmocka_unit_test(test_ets_checks_clean),
        cmocka_unit_test(test_ets_as_printed_breaks_rules),
        cmocka_unit_test(test_split_proxy_checks_clean),
        cmocka_unit_test(test_split_proxy_as_printed_breaks_rules),
        cmocka_unit_test(test_unknown_ref),
        cmocka_unit_test(test_missing_row),
        cmocka_unit_test(test_duplicate_row),
        cmocka_unit_test(test_mandatory_not_mm),
        cmocka_unit_test(test_optional_as_mm),
        cmocka_unit_test(test_pm_text_changed),
        cmocka_unit_test(test_pm_keeps_may),
        cmocka_unit_test(test_mm_text_changed),
        cmocka_unit_test(test_met_rules),
        cmocka_unit_test(test_branch_rule),
        cmocka_unit_test(test_branch_rule_optional_children),
        cmocka_unit_test(test_missing_justification),
        cmocka_unit_test(test_types_and_keys),
        cmocka_unit_test(test_erratum_rules),
        cmocka_unit_test(test_syntax_error_has_line),
        cmocka_unit_test(test_load_by_name_and_path),
        cmocka_unit_test(test_new_skeleton),
        cmocka_unit_test(test_clean_profile_has_no_findings),
        cmocka_unit_test(test_justification_and_met_per_label),
        cmocka_unit_test(test_text_messages_per_label),
        cmocka_unit_test(test_clause_erratum_needs_all_three),
        cmocka_unit_test(test_clause_errata_fill_the_array),
        cmocka_unit_test(test_branch_rule_met_parent),
        cmocka_unit_test(test_empty_profile),
        cmocka_unit_test(test_spacing_is_a_warning),
        cmocka_unit_test(test_verdict_as_printed_and_after_errata),
        cmocka_unit_test(test_ignore_errata),
        cmocka_unit_test(test_findings_have_rules_and_lines),
        cmocka_unit_test(test_render_check_formats),
        cmocka_unit_test(test_cited_clauses),
        cmocka_unit_test(test_report_has_analysis),
        cmocka_unit_test(test_compare_marks_text_errata),
        cmocka_unit_test(test_evidence_parsed),
        cmocka_unit_test(test_evidence_syntax),
        cmocka_unit_test(test_evidence_only_on_claims),
        cmocka_unit_test(test_evidence_required),
        cmocka_unit_test(test_own_profiles_check_clean),
    };
    return cmocka_run_group_tests(tests, fwtest_setup, fwtest_teardown);
}
