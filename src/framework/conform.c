/*
 * conform: a profile's claims against the test results. A claim is a
 * requirement the profile says is met; it is proven when every test it
 * names as evidence passed, contradicted when one failed, and unproven
 * when it names none or one did not run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw.h"

const char *msp_fw_claim_name(msp_fw_claim_t c)
{
    static const char *const names[] = {"-", "proven", "unproven", "contradicted"};
    return (unsigned)c <= MSP_FW_CONTRADICTED ? names[c] : "?";
}

msp_fw_claim_t msp_fw_claim(const msp_fw_profile_t *p, const msp_fw_junit_t *j, size_t i)
{
    const msp_fw_row_t *r = &p->rows[i];
    if (!r->present || msp_fw_row_met(r) != 1) {
        return MSP_FW_NO_CLAIM;
    }
    size_t n = msp_fw_evidence_count(p, i);
    msp_fw_claim_t c = n == 0 ? MSP_FW_UNPROVEN : MSP_FW_PROVEN;
    for (size_t k = 0; k < n; k++) {
        msp_fw_result_t res = msp_fw_junit_result(j, msp_fw_evidence(p, i, k));
        if (res == MSP_FW_FAILED) {
            return MSP_FW_CONTRADICTED;
        }
        c = res == MSP_FW_NOT_RUN ? MSP_FW_UNPROVEN : c;
    }
    return c;
}

typedef struct tally {
    size_t claims, proven, unproven, contradicted;
} tally_t;

static tally_t count(const msp_fw_profile_t *p, const msp_fw_junit_t *j)
{
    tally_t t = {0};
    for (size_t i = 0; i < p->cat->count; i++) {
        msp_fw_claim_t c = msp_fw_claim(p, j, i);
        t.claims += c != MSP_FW_NO_CLAIM;
        t.proven += c == MSP_FW_PROVEN;
        t.unproven += c == MSP_FW_UNPROVEN;
        t.contradicted += c == MSP_FW_CONTRADICTED;
    }
    return t;
}

static void summary(const tally_t *t, msp_buf_t *b)
{
    msp_buf_printf(b, "%zu claims met: %zu proven, %zu unproven, %zu contradicted", t->claims, t->proven, t->unproven,
                   t->contradicted);
}

/* ---- text and markdown ---- */

static void evidence_list(const msp_fw_profile_t *p, const msp_fw_junit_t *j, size_t i, msp_fw_format_t fmt,
                          msp_buf_t *b)
{
    size_t n = msp_fw_evidence_count(p, i);
    if (n == 0) {
        msp_buf_puts(b, "no evidence");
    }
    for (size_t k = 0; k < n; k++) {
        const char *e = msp_fw_evidence(p, i, k);
        msp_buf_puts(b, k > 0 ? ", " : "");
        fw_put_escaped(b, fmt, e);
        msp_buf_printf(b, " %s", msp_fw_result_name(msp_fw_junit_result(j, e)));
    }
}

/* A row per claim, then the summary: columns in text, a table in Markdown with a claim not proven in bold. */
static void claim_rows(const msp_fw_profile_t *p, const msp_fw_junit_t *j, const tally_t *t, msp_fw_format_t fmt,
                       msp_buf_t *b)
{
    int md = fmt == MSP_FW_MD;
    for (size_t i = 0; i < p->cat->count; i++) {
        msp_fw_claim_t c = msp_fw_claim(p, j, i);
        if (c == MSP_FW_NO_CLAIM) {
            continue;
        }
        const char *ref = p->cat->reqs[i].ref;
        const char *label = msp_fw_label_code(msp_fw_row_label(&p->rows[i]));
        const char *bold = c == MSP_FW_PROVEN ? "" : "**";
        if (md) {
            msp_buf_printf(b, "| %s | %s | %s%s%s | ", ref, label, bold, msp_fw_claim_name(c), bold);
        } else {
            msp_buf_printf(b, "%-11s %-3s %-12s ", ref, label, msp_fw_claim_name(c));
        }
        evidence_list(p, j, i, fmt, b);
        msp_buf_puts(b, md ? " |\n" : "\n");
    }
    msp_buf_puts(b, "\n");
    summary(t, b);
    msp_buf_puts(b, "\n");
}

static void render_text(const msp_fw_profile_t *p, const msp_fw_junit_t *j, const tally_t *t, msp_buf_t *b)
{
    msp_buf_printf(b, "Conformance of profile %s to %zu test results\nProvenance: ", p->name, msp_fw_junit_count(j));
    fw_provenance_line(p, b);
    msp_buf_puts(b, "\n\n");
    claim_rows(p, j, t, MSP_FW_TEXT, b);
}

static void render_md(const msp_fw_profile_t *p, const msp_fw_junit_t *j, const tally_t *t, msp_buf_t *b)
{
    msp_buf_puts(b, "# Conformance of profile ");
    fw_put_md(b, p->name);
    msp_buf_printf(b, " to %zu test results\n\nProvenance: ", msp_fw_junit_count(j));
    fw_provenance(p, MSP_FW_MD, b);
    msp_buf_puts(b, "\n\n| Ref | Label | Claim | Evidence |\n|---|---|---|---|\n");
    claim_rows(p, j, t, MSP_FW_MD, b);
}

/* ---- html: each requirement links to its evidence, each test back to the requirements it proves ---- */

static void html_anchor(msp_buf_t *b, const char *prefix, const char *id)
{
    msp_buf_puts(b, prefix);
    for (const char *s = id; *s != '\0'; s++) {
        /* Ids keep [A-Za-z0-9._-]; anything else becomes '_' (test names are plain in practice). */
        int plain = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                    strchr("._-", *s) != NULL;
        msp_buf_put_u8(b, plain ? (uint8_t)*s : '_');
    }
}

static void html_claims(const msp_fw_profile_t *p, const msp_fw_junit_t *j, msp_buf_t *b)
{
    msp_buf_puts(b, "<table>\n<thead><tr><th>Ref</th><th>Requirement</th><th>Label</th><th>Claim</th>"
                    "<th>Evidence</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < p->cat->count; i++) {
        msp_fw_claim_t c = msp_fw_claim(p, j, i);
        if (c == MSP_FW_NO_CLAIM) {
            continue;
        }
        msp_buf_puts(b, "<tr id=\"");
        html_anchor(b, "req-", p->cat->reqs[i].ref);
        msp_buf_printf(b, "\"><td>%s</td><td>", p->cat->reqs[i].ref);
        fw_put_html(b, msp_fw_row_text(&p->rows[i]) ? msp_fw_row_text(&p->rows[i]) : "");
        msp_buf_printf(b, "</td><td>%s</td><td class=\"claim-%s\">%s</td><td>",
                       msp_fw_label_code(msp_fw_row_label(&p->rows[i])), c == MSP_FW_PROVEN ? "yes" : "no",
                       msp_fw_claim_name(c));
        size_t n = msp_fw_evidence_count(p, i);
        msp_buf_puts(b, n == 0 ? "no evidence" : "");
        for (size_t k = 0; k < n; k++) {
            const char *e = msp_fw_evidence(p, i, k);
            msp_buf_puts(b, k > 0 ? "<br>\n<a href=\"#" : "<a href=\"#");
            html_anchor(b, "ev-", e);
            msp_buf_puts(b, "\">");
            fw_put_html(b, e);
            msp_buf_printf(b, "</a> %s", msp_fw_result_name(msp_fw_junit_result(j, e)));
        }
        msp_buf_puts(b, "</td></tr>\n");
    }
    msp_buf_puts(b, "</tbody>\n</table>\n");
}

/* 1 when evidence e is first named by requirement i, entry k (so each is listed once). */
static int first_use(const msp_fw_profile_t *p, const char *e, size_t i, size_t k)
{
    for (size_t a = 0; a <= i; a++) {
        size_t n = a == i ? k : msp_fw_evidence_count(p, a);
        for (size_t m = 0; m < n; m++) {
            if (strcmp(msp_fw_evidence(p, a, m), e) == 0) {
                return 0;
            }
        }
    }
    return 1;
}

static void html_evidence(const msp_fw_profile_t *p, const msp_fw_junit_t *j, msp_buf_t *b)
{
    msp_buf_puts(b, "<h2>Evidence</h2>\n<table>\n<thead><tr><th>Test</th><th>Result</th><th>Backs</th></tr>"
                    "</thead>\n<tbody>\n");
    for (size_t i = 0; i < p->cat->count; i++) {
        for (size_t k = 0; k < msp_fw_evidence_count(p, i); k++) {
            const char *e = msp_fw_evidence(p, i, k);
            if (!first_use(p, e, i, k)) {
                continue;
            }
            msp_buf_puts(b, "<tr id=\"");
            html_anchor(b, "ev-", e);
            msp_buf_puts(b, "\"><td>");
            fw_put_html(b, e);
            msp_buf_printf(b, "</td><td>%s</td><td>", msp_fw_result_name(msp_fw_junit_result(j, e)));
            for (size_t a = i; a < p->cat->count; a++) {
                for (size_t m = 0; m < msp_fw_evidence_count(p, a); m++) {
                    if (strcmp(msp_fw_evidence(p, a, m), e) == 0) {
                        msp_buf_puts(b, "<a href=\"#");
                        html_anchor(b, "req-", p->cat->reqs[a].ref);
                        msp_buf_printf(b, "\">%s</a> ", p->cat->reqs[a].ref);
                        break;
                    }
                }
            }
            msp_buf_puts(b, "</td></tr>\n");
        }
    }
    msp_buf_puts(b, "</tbody>\n</table>\n");
}

static void render_html(const msp_fw_profile_t *p, const msp_fw_junit_t *j, const tally_t *t, msp_buf_t *b)
{
    char title[256];
    snprintf(title, sizeof(title), "Conformance of MSP profile %s", p->name);
    fw_html_begin(b, title);
    msp_buf_puts(b, "<h1>");
    fw_put_html(b, title);
    msp_buf_printf(b, "</h1>\n<p>%zu test results.</p>\n<p class=\"provenance\">Provenance: ", msp_fw_junit_count(j));
    fw_provenance(p, MSP_FW_HTML, b);
    msp_buf_printf(b, "</p>\n<p class=\"verdict-%s\"><b>", t->claims == t->proven ? "yes" : "no");
    summary(t, b);
    msp_buf_puts(b, "</b></p>\n");
    html_claims(p, j, b);
    html_evidence(p, j, b);
    fw_html_end(b);
}

/* ---- json ---- */

static void render_json(const msp_fw_profile_t *p, const msp_fw_junit_t *j, const tally_t *t, msp_buf_t *b)
{
    msp_json_t js;
    msp_json_init(&js, b, 1);
    msp_json_object_begin(&js);
    msp_json_key(&js, "profile");
    msp_json_string(&js, p->name);
    fw_json_provenance(p, &js);
    msp_json_key(&js, "test_results");
    msp_json_int(&js, (int64_t)msp_fw_junit_count(j));
    msp_json_key(&js, "claims");
    msp_json_array_begin(&js);
    for (size_t i = 0; i < p->cat->count; i++) {
        msp_fw_claim_t c = msp_fw_claim(p, j, i);
        if (c == MSP_FW_NO_CLAIM) {
            continue;
        }
        msp_json_object_begin(&js);
        msp_json_key(&js, "ref");
        msp_json_string(&js, p->cat->reqs[i].ref);
        msp_json_key(&js, "label");
        msp_json_string(&js, msp_fw_label_code(msp_fw_row_label(&p->rows[i])));
        msp_json_key(&js, "status");
        msp_json_string(&js, msp_fw_claim_name(c));
        msp_json_key(&js, "evidence");
        msp_json_array_begin(&js);
        for (size_t k = 0; k < msp_fw_evidence_count(p, i); k++) {
            const char *e = msp_fw_evidence(p, i, k);
            msp_json_object_begin(&js);
            msp_json_key(&js, "id");
            msp_json_string(&js, e);
            msp_json_key(&js, "result");
            msp_json_string(&js, msp_fw_result_name(msp_fw_junit_result(j, e)));
            msp_json_object_end(&js);
        }
        msp_json_array_end(&js);
        msp_json_object_end(&js);
    }
    msp_json_array_end(&js);
    static const char *const keys[] = {"claims", "proven", "unproven", "contradicted"};
    const size_t vals[] = {t->claims, t->proven, t->unproven, t->contradicted};
    msp_json_key(&js, "summary");
    msp_json_object_begin(&js);
    for (size_t k = 0; k < 4; k++) {
        msp_json_key(&js, keys[k]);
        msp_json_int(&js, (int64_t)vals[k]);
    }
    msp_json_object_end(&js);
    msp_json_object_end(&js);
    msp_json_finish(&js);
}

int msp_fw_render_conform(const msp_fw_profile_t *p, const msp_fw_junit_t *j, msp_fw_format_t fmt, msp_buf_t *out,
                          size_t *bad)
{
    static void (*const render[])(const msp_fw_profile_t *, const msp_fw_junit_t *, const tally_t *,
                                  msp_buf_t *) = {render_text, render_md, render_json, render_html};
    if ((unsigned)fmt >= sizeof(render) / sizeof(render[0])) {
        return MSP_ERR_ARGUMENT;
    }
    tally_t t = count(p, j);
    if (bad != NULL) {
        *bad = t.unproven + t.contradicted;
    }
    render[fmt](p, j, &t, out);
    return msp_buf_error(out);
}

/* ---- OSCAL assessment-results: the claims as verdicts ---- */

/* The verdicts of a conformance run, and the memory their evidence lines take. */
typedef struct run {
    msp_fw_verdict_t *v;
    msp_fw_evidence_t *ev;
    char *text; /* the evidence descriptions, one after another */
    size_t n;
} run_t;

static void run_free(run_t *r)
{
    free(r->v);
    free(r->ev);
    free(r->text);
}

static msp_fw_verdict_state_t verdict_of(msp_fw_claim_t c)
{
    return c == MSP_FW_PROVEN         ? MSP_FW_VERDICT_PASS
           : c == MSP_FW_CONTRADICTED ? MSP_FW_VERDICT_FAIL
                                      : MSP_FW_VERDICT_OTHER;
}

/* Sizes first, so that every pointer into ev and text is taken after the last allocation. */
static int run_alloc(const msp_fw_profile_t *p, const msp_fw_junit_t *j, run_t *r)
{
    size_t nev = 0, ntext = 0;
    for (size_t i = 0; i < p->cat->count; i++) {
        if (msp_fw_claim(p, j, i) == MSP_FW_NO_CLAIM) {
            continue;
        }
        r->n++;
        for (size_t k = 0; k < msp_fw_evidence_count(p, i); k++) {
            nev++;
            ntext += strlen(msp_fw_evidence(p, i, k)) + sizeof(": not run");
        }
    }
    r->v = calloc(r->n + 1, sizeof(*r->v));
    r->ev = calloc(nev + 1, sizeof(*r->ev));
    r->text = malloc(ntext + 1);
    return r->v != NULL && r->ev != NULL && r->text != NULL ? MSP_OK : MSP_ERR_NO_MEMORY;
}

/* Each claim a verdict: proven passes, contradicted fails, unproven is undecided ("other"). */
static void run_fill(const msp_fw_profile_t *p, const msp_fw_junit_t *j, run_t *r)
{
    msp_fw_evidence_t *ev = r->ev;
    char *t = r->text;
    size_t n = 0;
    for (size_t i = 0; i < p->cat->count; i++) {
        msp_fw_claim_t c = msp_fw_claim(p, j, i);
        if (c == MSP_FW_NO_CLAIM) {
            continue;
        }
        r->v[n] = (msp_fw_verdict_t){p->cat->reqs[i].ref, verdict_of(c), ev, msp_fw_evidence_count(p, i)};
        for (size_t k = 0; k < r->v[n].nevidence; k++) {
            const char *e = msp_fw_evidence(p, i, k);
            msp_fw_result_t res = msp_fw_junit_result(j, e);
            int len = sprintf(t, "%s: %s", e, msp_fw_result_name(res));
            *ev++ = (msp_fw_evidence_t){t, res == MSP_FW_PASSED};
            t += len + 1;
        }
        n++;
    }
}

int msp_fw_oscal_conform(const msp_fw_profile_t *p, const msp_fw_junit_t *j, int64_t start, int64_t end, msp_buf_t *out,
                         msp_error_t *err)
{
    run_t r = {0};
    int ret = run_alloc(p, j, &r);
    if (ret != MSP_OK) {
        run_free(&r);
        return msp_error_set(err, ret, "conform", "out of memory");
    }
    run_fill(p, j, &r);
    if (r.n == 0) {
        run_free(&r);
        return msp_error_set(err, MSP_ERR_INVALID, p->name, "no requirement is claimed met: nothing to assess");
    }
    ret = msp_fw_oscal_results(p, r.v, r.n, start, end, out, err);
    run_free(&r);
    return ret;
}
