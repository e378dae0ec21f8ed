#include <stdio.h>
#include <string.h>

#include "fw.h"

#define TEXT_WIDTH 100
#define COL_TEXT 11  /* where the requirement text starts */
#define COL_LABEL 75 /* where the label starts; Met follows */

/* "PR" or "PR->PO": the printed label, and the correction when there is one. */
static void label_cell(const msp_fw_row_t *r, const char *arrow, char *out, size_t n)
{
    if (r->fix_label != MSP_FW_NONE) {
        snprintf(out, n, "%s%s%s", msp_fw_label_code(r->label), arrow, msp_fw_label_code(r->fix_label));
    } else {
        snprintf(out, n, "%s", msp_fw_label_code(r->label));
    }
}

static void met_cell(const msp_fw_row_t *r, const char *arrow, char *out, size_t n)
{
    if (r->fix_met >= 0) {
        snprintf(out, n, "%s%s%s", fw_yn(r->met), arrow, fw_yn(r->fix_met));
    } else {
        snprintf(out, n, "%s", fw_yn(r->met));
    }
}

/* Whether row i counts as met for the verdict, as printed or after errata. */
static int counts_met(const msp_fw_profile_t *p, size_t i, int printed)
{
    const msp_fw_row_t *r = &p->rows[i];
    return r->present && (printed ? r->met : msp_fw_row_met(r)) == 1;
}

static size_t unmet_count(const msp_fw_profile_t *p, int printed)
{
    size_t n = 0;
    for (size_t i = 0; i < p->cat->count; i++) {
        n += p->cat->reqs[i].mandatory && !counts_met(p, i, printed);
    }
    return n;
}

static void verdict_sentence(const msp_fw_profile_t *p, int printed, msp_buf_t *b)
{
    size_t n = unmet_count(p, printed);
    if (n == 0) {
        msp_buf_puts(b, "may be part of the MSP series: every MSP-Mandatory requirement is met (clause 6.1.1).");
        return;
    }
    msp_buf_printf(b, "not part of the MSP series: %zu MSP-Mandatory requirement%s not met (clause 6.1.1): ", n,
                   n == 1 ? " is" : "s are");
    const char *sep = "";
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->cat->reqs[i].mandatory && !counts_met(p, i, printed)) {
            msp_buf_printf(b, "%s%s", sep, p->cat->reqs[i].ref);
            sep = ", ";
        }
    }
    msp_buf_puts(b, ".");
}

void msp_fw_render_verdict(const msp_fw_profile_t *p, msp_buf_t *b)
{
    verdict_sentence(p, 0, b);
}

void msp_fw_render_verdict_as_printed(const msp_fw_profile_t *p, msp_buf_t *b)
{
    verdict_sentence(p, 1, b);
}

/* What the errata do to the verdict: "1 erratum decides it: M.AC.1." */
static void deciding_note(const msp_fw_profile_t *p, msp_buf_t *b)
{
    size_t n = msp_fw_deciding_errata(p);
    if (n == 0) {
        msp_buf_puts(b, "No erratum changes a Mandatory requirement's Met.");
        return;
    }
    if (msp_fw_in_series(p) != msp_fw_in_series_as_printed(p)) {
        msp_buf_printf(b, "%zu errat%s decide%s it: ", n, n == 1 ? "um" : "a", n == 1 ? "s" : "");
    } else {
        msp_buf_printf(b, "%zu errat%s change%s a Mandatory requirement's Met, not the verdict: ", n,
                       n == 1 ? "um" : "a", n == 1 ? "s" : "");
    }
    const char *sep = "";
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->cat->reqs[i].mandatory && counts_met(p, i, 1) != counts_met(p, i, 0)) {
            msp_buf_printf(b, "%s%s", sep, p->cat->reqs[i].ref);
            sep = ", ";
        }
    }
    msp_buf_puts(b, ".");
}

/*
 * The two verdict lines, each start "Verdict as printed:" mid SENTENCE end:
 * start/mid/end make it a Markdown or HTML paragraph with a bold label; cap
 * capitalises "Verdict".
 */
static void verdict_lines(const msp_fw_profile_t *p, const char *start, const char *mid, const char *end, int cap,
                          msp_buf_t *b)
{
    const char *v = cap ? "Verdict" : "verdict";
    if (p->errata_ignored) {
        msp_buf_printf(b, "%s%s as printed (errata ignored):%s", start, v, mid);
        verdict_sentence(p, 1, b);
        msp_buf_printf(b, "%s", end);
        return;
    }
    msp_buf_printf(b, "%s%s as printed:%s", start, v, mid);
    verdict_sentence(p, 1, b);
    msp_buf_printf(b, "%s%s%s after errata:%s", end, start, v, mid);
    verdict_sentence(p, 0, b);
    msp_buf_puts(b, " ");
    deciding_note(p, b);
    msp_buf_printf(b, "%s", end);
}

void msp_fw_render_verdicts(const msp_fw_profile_t *p, const char *prefix, msp_buf_t *b)
{
    verdict_lines(p, prefix, " ", "\n", 0, b);
}

static size_t erratum_count(const msp_fw_profile_t *p)
{
    size_t n = p->nerrata;
    for (size_t i = 0; i < p->cat->count; i++) {
        n += p->rows[i].has_erratum;
    }
    return n;
}

/*
 * The k-th erratum of the profile, rows first (in table order), then the
 * clause errata: its ref or clause and what it says. 0 past the last.
 */
static int erratum_at(const msp_fw_profile_t *p, size_t k, const char **ref, char *what, size_t n)
{
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->rows[i].has_erratum && k-- == 0) {
            *ref = p->cat->reqs[i].ref;
            fw_describe_erratum(&p->rows[i], what, n);
            return 1;
        }
    }
    if (k >= p->nerrata) {
        return 0;
    }
    const msp_fw_clause_erratum_t *c = &p->errata[k];
    *ref = c->clause;
    snprintf(what, n, "printed \"%s\", should be \"%s\"; %s", c->printed, c->should_be, c->why);
    return 1;
}

/* ---- text ---- */

static void text_row(const msp_fw_profile_t *p, size_t i, msp_buf_t *b)
{
    const msp_fw_template_t *t = &p->cat->reqs[i];
    const msp_fw_row_t *r = &p->rows[i];
    char label[16], met[16];
    label_cell(r, "->", label, sizeof(label));
    met_cell(r, "->", met, sizeof(met));
    msp_buf_t tb;
    msp_buf_init(&tb, 1 << 16);
    fw_put_emphasised(&tb, MSP_FW_TEXT, t->text, msp_fw_row_text(r));
    if (r->fix_text != NULL) {
        msp_buf_puts(&tb, " [text corrected]");
    }
    msp_buf_t wb;
    msp_buf_init(&wb, 1 << 16);
    fw_put_wrapped(&wb, msp_buf_cstr(&tb) != NULL ? (const char *)tb.base : "", COL_TEXT, COL_LABEL - 2);
    const char *wrapped = msp_buf_cstr(&wb) != NULL ? (const char *)wb.base : "";
    /* The label and Met go on the first line of the wrapped text. */
    size_t first = strcspn(wrapped, "\n");
    msp_buf_printf(b, "%-*s%-*.*s  %-8s %s\n", COL_TEXT, t->ref, COL_LABEL - COL_TEXT - 2, (int)first, wrapped, label,
                   met);
    if (wrapped[first] == '\n') {
        msp_buf_printf(b, "%s\n", wrapped + first + 1);
    }
    msp_buf_free(&tb);
    msp_buf_free(&wb);
}

static void text_errata(const msp_fw_profile_t *p, msp_buf_t *b)
{
    if (erratum_count(p) == 0) {
        return;
    }
    msp_buf_printf(b, "\nErrata (the printed value stays in the tables; the correction decides the verdict)\n");
    const char *ref;
    char what[FW_ERRATUM_LEN];
    for (size_t k = 0; erratum_at(p, k, &ref, what, sizeof(what)); k++) {
        msp_buf_printf(b, "  %-10s ", ref);
        fw_put_wrapped(b, what, 13, TEXT_WIDTH);
        msp_buf_puts(b, "\n");
    }
}

/* A principle's name and the numbers its heading, its overview and its table carry, the same in every format. */
typedef struct {
    const char *name;
    char num[32], overview[32], table[32];
} heads_t;

static void principle_heads(const msp_fw_profile_t *p, int pr, heads_t *h)
{
    h->name = msp_fw_principle_name((msp_fw_principle_t)pr);
    fw_section_number(p, pr, 0, h->num, sizeof(h->num));
    fw_section_number(p, pr, 1, h->overview, sizeof(h->overview));
    fw_table_number(p, pr, h->table, sizeof(h->table));
}

static void text_principle(const msp_fw_profile_t *p, int pr, msp_buf_t *b)
{
    heads_t h;
    principle_heads(p, pr, &h);
    const char *name = h.name;
    msp_buf_printf(b, "\n%s %s\n\n%s Overview\n%s: %s Profile Requirements\n%-*s%-*s  %-8s %s\n", h.num, name,
                   h.overview, h.table, name, COL_TEXT, "Ref", COL_LABEL - COL_TEXT - 2, "Profile Requirement", "Label",
                   "Met");
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->cat->reqs[i].principle == (msp_fw_principle_t)pr && p->rows[i].present) {
            text_row(p, i, b);
        }
    }
    fw_render_sections(p, MSP_FW_TEXT, pr, b);
}

/* ---- the threat model, assumptions and Stage 3 notes (B.2.1, 6.1.4) ---- */

static const char *note_kind(msp_fw_note_kind_t k)
{
    return k == MSP_FW_THREAT ? "threat" : k == MSP_FW_ASSUMPTION ? "assumption" : "stage3";
}

static void text_notes(const msp_fw_profile_t *p, msp_buf_t *b)
{
    if (p->nnotes > 0) {
        msp_buf_puts(b, "\nThreat model, assumptions and further analysis\n");
    }
    for (size_t i = 0; i < p->nnotes; i++) {
        const msp_fw_note_t *n = &p->notes[i];
        msp_buf_printf(b, "  %s:\n    ", n->kind == MSP_FW_STAGE3 ? "Stage 3" : n->id);
        fw_put_wrapped(b, n->text ? n->text : "", 4, 78);
        msp_buf_puts(b, "\n");
    }
}

/* A list item in Markdown or HTML: "- **NAME**: WHAT" or "<li><b>NAME</b>: WHAT</li>", escaped. */
static void marked_item(msp_buf_t *b, msp_fw_format_t fmt, const char *name, const char *what)
{
    int html = fmt == MSP_FW_HTML;
    msp_buf_puts(b, html ? "<li><b>" : "- **");
    fw_put_escaped(b, fmt, name);
    msp_buf_puts(b, html ? "</b>: " : "**: ");
    fw_put_escaped(b, fmt, what);
    msp_buf_puts(b, html ? "</li>\n" : "\n");
}

static void marked_notes(const msp_fw_profile_t *p, msp_fw_format_t fmt, msp_buf_t *b)
{
    int html = fmt == MSP_FW_HTML;
    if (p->nnotes == 0) {
        return;
    }
    msp_buf_puts(b, html ? "<h2>Threat model, assumptions and further analysis</h2>\n<ul>\n"
                         : "## Threat model, assumptions and further analysis\n\n");
    for (size_t i = 0; i < p->nnotes; i++) {
        const msp_fw_note_t *n = &p->notes[i];
        marked_item(b, fmt, n->kind == MSP_FW_STAGE3 ? "Stage 3" : n->id, n->text ? n->text : "");
    }
    msp_buf_puts(b, html ? "</ul>\n" : "\n");
}

static void json_notes(const msp_fw_profile_t *p, msp_json_t *j)
{
    msp_json_key(j, "threat_model");
    msp_json_array_begin(j);
    for (size_t i = 0; i < p->nnotes; i++) {
        msp_json_object_begin(j);
        msp_json_key(j, "id");
        msp_json_string(j, p->notes[i].id);
        msp_json_key(j, "kind");
        msp_json_string(j, note_kind(p->notes[i].kind));
        msp_json_key(j, "text");
        msp_json_string(j, p->notes[i].text);
        msp_json_object_end(j);
    }
    msp_json_array_end(j);
}

static void render_text(const msp_fw_profile_t *p, msp_buf_t *b)
{
    msp_buf_printf(b, "Profile %s: %s\nSource: %s\nProvenance: ", p->name, p->title ? p->title : "",
                   p->source ? p->source : "");
    fw_provenance_line(p, b);
    msp_buf_puts(b, "\n");
    text_notes(p, b);
    for (int pr = 0; pr < MSP_FW_PRINCIPLES; pr++) {
        text_principle(p, pr, b);
    }
    msp_buf_puts(b, "\n");
    verdict_lines(p, "", " ", "\n", 1, b);
    text_errata(p, b);
}

/* ---- markdown and html ---- */

/* The profile's name and title, its source and the provenance. */
static void marked_head(const msp_fw_profile_t *p, msp_fw_format_t fmt, msp_buf_t *b)
{
    int html = fmt == MSP_FW_HTML;
    msp_buf_puts(b, html ? "<h1>Profile " : "# Profile ");
    fw_put_escaped(b, fmt, p->name);
    msp_buf_puts(b, ": ");
    fw_put_escaped(b, fmt, p->title ? p->title : "");
    msp_buf_puts(b, html ? "</h1>\n<p>Source: " : "\n\nSource: ");
    fw_put_escaped(b, fmt, p->source ? p->source : "");
    msp_buf_puts(b, html ? "</p>\n<p class=\"provenance\">Provenance: " : "\n\nProvenance: ");
    fw_provenance(p, fmt, b);
    msp_buf_puts(b, html ? "</p>\n" : "\n\n");
}

static void marked_errata(const msp_fw_profile_t *p, msp_fw_format_t fmt, msp_buf_t *b)
{
    int html = fmt == MSP_FW_HTML;
    if (erratum_count(p) == 0) {
        return;
    }
    msp_buf_puts(
        b, html ? "<h2>Errata</h2>\n<p>The printed value stays in the tables; the correction decides the "
                  "verdict.</p>\n<ul>\n"
                : "\n## Errata\n\nThe printed value stays in the tables; the correction decides the verdict.\n\n");
    const char *ref;
    char what[FW_ERRATUM_LEN];
    for (size_t k = 0; erratum_at(p, k, &ref, what, sizeof(what)); k++) {
        marked_item(b, fmt, ref, what);
    }
    msp_buf_puts(b, html ? "</ul>\n" : "");
}

static void md_principle(const msp_fw_profile_t *p, int pr, msp_buf_t *b)
{
    heads_t h;
    principle_heads(p, pr, &h);
    const char *name = h.name;
    msp_buf_printf(b,
                   "\n## %s %s\n\n### %s Overview\n\n**%s: %s Profile Requirements**\n\n"
                   "| Ref | %s Profile Requirement | MM / PM / PO / PNA / PR | Met? |\n|---|---|---|---|\n",
                   h.num, name, h.overview, h.table, name, name);
    for (size_t i = 0; i < p->cat->count; i++) {
        const msp_fw_row_t *r = &p->rows[i];
        if (p->cat->reqs[i].principle != (msp_fw_principle_t)pr || !r->present) {
            continue;
        }
        char label[16], met[16];
        label_cell(r, " → ", label, sizeof(label));
        met_cell(r, " → ", met, sizeof(met));
        msp_buf_printf(b, "| %s | ", p->cat->reqs[i].ref);
        fw_put_emphasised(b, MSP_FW_MD, p->cat->reqs[i].text, msp_fw_row_text(r));
        msp_buf_printf(b, "%s | %s | %s |\n", r->fix_text != NULL ? " (text corrected)" : "", label, met);
    }
    fw_render_sections(p, MSP_FW_MD, pr, b);
}

static void render_md(const msp_fw_profile_t *p, msp_buf_t *b)
{
    marked_head(p, MSP_FW_MD, b);
    verdict_lines(p, "**", "** ", "\n\n", 1, b);
    marked_notes(p, MSP_FW_MD, b);
    for (int pr = 0; pr < MSP_FW_PRINCIPLES; pr++) {
        md_principle(p, pr, b);
    }
    marked_errata(p, MSP_FW_MD, b);
}

/* ---- html ---- */

static void html_row(const msp_fw_profile_t *p, size_t i, msp_buf_t *b)
{
    const msp_fw_template_t *t = &p->cat->reqs[i];
    const msp_fw_row_t *r = &p->rows[i];
    char label[16], met[16];
    label_cell(r, " → ", label, sizeof(label));
    met_cell(r, " → ", met, sizeof(met));
    int unmet = msp_fw_row_label(r) == MSP_FW_MM && msp_fw_row_met(r) != 1;
    msp_buf_printf(b, "<tr id=\"%s\"><td>%s</td><td>", t->ref, t->ref);
    fw_put_emphasised(b, MSP_FW_HTML, t->text, msp_fw_row_text(r));
    msp_buf_printf(b, "%s</td><td%s>%s</td><td%s>%s</td></tr>\n", r->fix_text != NULL ? " (text corrected)" : "",
                   r->fix_label != MSP_FW_NONE ? " class=\"erratum\"" : "", label,
                   unmet             ? " class=\"unmet\""
                   : r->fix_met >= 0 ? " class=\"erratum\""
                                     : "",
                   met);
}

static void html_principle(const msp_fw_profile_t *p, int pr, msp_buf_t *b)
{
    heads_t h;
    principle_heads(p, pr, &h);
    const char *name = h.name;
    msp_buf_printf(b,
                   "<h2 id=\"%s\">%s %s</h2>\n<h3 id=\"%s\">%s Overview</h3>\n<table>\n<caption>%s: %s Profile "
                   "Requirements</caption>\n<colgroup><col class=\"ref\"><col><col class=\"label\"><col "
                   "class=\"met\"></colgroup>\n<thead><tr><th>Ref</th><th>%s Profile Requirement</th>"
                   "<th>MM / PM / PO / PNA / PR</th><th>Met?</th></tr></thead>\n<tbody>\n",
                   h.num, h.num, name, h.overview, h.overview, h.table, name, name);
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->cat->reqs[i].principle == (msp_fw_principle_t)pr && p->rows[i].present) {
            html_row(p, i, b);
        }
    }
    msp_buf_puts(b, "</tbody>\n</table>\n");
    fw_render_sections(p, MSP_FW_HTML, pr, b);
}

static void render_html(const msp_fw_profile_t *p, msp_buf_t *b)
{
    char title[256];
    snprintf(title, sizeof(title), "MSP profile %s", p->name);
    fw_html_begin(b, title);
    marked_head(p, MSP_FW_HTML, b);
    char start[64];
    snprintf(start, sizeof(start), "<p class=\"verdict-%s\"><b>", msp_fw_in_series(p) ? "yes" : "no");
    verdict_lines(p, start, "</b> ", "</p>\n", 1, b);
    marked_notes(p, MSP_FW_HTML, b);
    for (int pr = 0; pr < MSP_FW_PRINCIPLES; pr++) {
        html_principle(p, pr, b);
    }
    marked_errata(p, MSP_FW_HTML, b);
    fw_html_end(b);
}

/* ---- json ---- */

static void json_row(const msp_fw_profile_t *p, size_t i, msp_json_t *j)
{
    const msp_fw_template_t *t = &p->cat->reqs[i];
    const msp_fw_row_t *r = &p->rows[i];
    msp_json_object_begin(j);
    msp_json_key(j, "ref");
    msp_json_string(j, t->ref);
    msp_json_key(j, "principle");
    msp_json_string(j, msp_fw_principle_code(t->principle));
    msp_json_key(j, "role");
    msp_json_string(j, t->middlebox ? "middlebox" : "endpoint");
    msp_json_key(j, "template");
    msp_json_string(j, t->mandatory ? "M" : "O");
    /* The unsuffixed fields are the values that count (after errata); the
     * _as_printed ones are what the profile's tables print. */
    msp_json_key(j, "label");
    msp_json_string(j, msp_fw_label_code(msp_fw_row_label(r)));
    msp_json_key(j, "text");
    msp_json_string(j, msp_fw_row_text(r));
    msp_json_key(j, "met");
    msp_json_bool(j, msp_fw_row_met(r) == 1);
    msp_json_key(j, "label_as_printed");
    msp_json_string(j, msp_fw_label_code(r->label));
    msp_json_key(j, "text_as_printed");
    msp_json_string(j, r->text);
    msp_json_key(j, "met_as_printed");
    msp_json_bool(j, r->met == 1);
    msp_json_key(j, "justification");
    msp_json_string(j, r->justification);
    msp_json_key(j, "cites");
    msp_json_array_begin(j);
    char cites[512];
    fw_cited(r->justification, cites, sizeof(cites));
    for (char *c = cites; *c != '\0'; c += strcspn(c, "\n") + 1) {
        msp_json_string_n(j, c, strcspn(c, "\n"));
    }
    msp_json_array_end(j);
    msp_json_key(j, "evidence"); /* the tests the claim names ([] for none): conform says whether they passed */
    msp_json_array_begin(j);
    for (size_t k = 0; k < msp_fw_evidence_count(p, i); k++) {
        msp_json_string(j, msp_fw_evidence(p, i, k));
    }
    msp_json_array_end(j);
    msp_json_key(j, "erratum");
    if (r->has_erratum) {
        char what[FW_ERRATUM_LEN];
        fw_describe_erratum(r, what, sizeof(what));
        msp_json_string(j, what);
    } else {
        msp_json_null(j);
    }
    msp_json_object_end(j);
}

static void json_refs(const msp_fw_profile_t *p, msp_json_t *j, int printed, int changed)
{
    msp_json_array_begin(j);
    for (size_t i = 0; i < p->cat->count; i++) {
        int met = counts_met(p, i, printed);
        if (p->cat->reqs[i].mandatory && (changed ? met != counts_met(p, i, 0) : !met)) {
            msp_json_string(j, p->cat->reqs[i].ref);
        }
    }
    msp_json_array_end(j);
}

/* msp_series and unmet_mandatory after errata, the same as printed, and the errata that change them. */
static void json_verdict(const msp_fw_profile_t *p, msp_json_t *j)
{
    msp_json_object_begin(j);
    msp_json_key(j, "msp_series");
    msp_json_bool(j, msp_fw_in_series(p));
    msp_json_key(j, "unmet_mandatory");
    json_refs(p, j, 0, 0);
    msp_json_key(j, "msp_series_as_printed");
    msp_json_bool(j, msp_fw_in_series_as_printed(p));
    msp_json_key(j, "unmet_mandatory_as_printed");
    json_refs(p, j, 1, 0);
    msp_json_key(j, "deciding_errata");
    json_refs(p, j, 1, 1);
    msp_json_key(j, "errata_ignored");
    msp_json_bool(j, p->errata_ignored);
    msp_json_object_end(j);
}

void fw_json_verdict(const msp_fw_profile_t *p, msp_json_t *j)
{
    json_verdict(p, j);
}

static void render_json(const msp_fw_profile_t *p, msp_buf_t *b)
{
    msp_json_t j;
    msp_json_init(&j, b, 1);
    msp_json_object_begin(&j);
    msp_json_key(&j, "profile");
    msp_json_string(&j, p->name);
    msp_json_key(&j, "title");
    msp_json_string(&j, p->title);
    msp_json_key(&j, "source");
    msp_json_string(&j, p->source);
    msp_json_key(&j, "annex");
    msp_json_string(&j, p->annex);
    fw_json_provenance(p, &j);
    json_notes(p, &j);
    msp_json_key(&j, "verdict");
    json_verdict(p, &j);
    msp_json_key(&j, "requirements");
    msp_json_array_begin(&j);
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->rows[i].present) {
            json_row(p, i, &j);
        }
    }
    msp_json_array_end(&j);
    msp_json_key(&j, "clause_errata");
    msp_json_array_begin(&j);
    for (size_t e = 0; e < p->nerrata; e++) {
        msp_json_object_begin(&j);
        msp_json_key(&j, "clause");
        msp_json_string(&j, p->errata[e].clause);
        msp_json_key(&j, "printed");
        msp_json_string(&j, p->errata[e].printed);
        msp_json_key(&j, "should_be");
        msp_json_string(&j, p->errata[e].should_be);
        msp_json_key(&j, "why");
        msp_json_string(&j, p->errata[e].why);
        msp_json_object_end(&j);
    }
    msp_json_array_end(&j);
    msp_json_key(&j, "findings");
    msp_json_array_begin(&j);
    for (size_t i = 0; i < p->nfindings; i++) {
        msp_json_object_begin(&j);
        msp_json_key(&j, "ref");
        msp_json_string(&j, p->findings[i].ref);
        msp_json_key(&j, "severity");
        msp_json_string(&j, fw_severity_name(p->findings[i].severity));
        msp_json_key(&j, "rule");
        msp_json_string(&j, p->findings[i].rule);
        msp_json_key(&j, "message");
        msp_json_string(&j, p->findings[i].message);
        msp_json_object_end(&j);
    }
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    msp_json_finish(&j);
}

int msp_fw_render_report(const msp_fw_profile_t *p, msp_fw_format_t fmt, msp_buf_t *out)
{
    static void (*const render[])(const msp_fw_profile_t *, msp_buf_t *) = {render_text, render_md, render_json,
                                                                            render_html};
    if ((unsigned)fmt >= sizeof(render) / sizeof(render[0])) {
        return MSP_ERR_ARGUMENT;
    }
    render[fmt](p, out);
    return msp_buf_error(out);
}
