#include <stdio.h>
#include <string.h>

#include "fw.h"

/* "MM Y", with a '*' when an erratum corrected the row (label, Met or text). */
static void cell(const msp_fw_row_t *r, char *out, size_t n)
{
    if (!r->present) {
        snprintf(out, n, "-");
        return;
    }
    snprintf(out, n, "%s %s%s", msp_fw_label_code(msp_fw_row_label(r)), msp_fw_row_met(r) == 1 ? "Y" : "N",
             r->has_erratum ? "*" : "");
}

static int unmet_mm(const msp_fw_row_t *r)
{
    return r->present && msp_fw_row_label(r) == MSP_FW_MM && msp_fw_row_met(r) != 1;
}

/* A column heading per profile, in Markdown or HTML. */
static void name_cells(const msp_fw_profile_t *const *ps, size_t n, msp_fw_format_t fmt, msp_buf_t *b)
{
    for (size_t k = 0; k < n; k++) {
        msp_buf_puts(b, fmt == MSP_FW_HTML ? "<th>" : " ");
        fw_put_escaped(b, fmt, ps[k]->name);
        msp_buf_puts(b, fmt == MSP_FW_HTML ? "</th>" : " |");
    }
}

/* A provenance line per profile, under the matrix (text, md or html). */
static void provenance_lines(const msp_fw_profile_t *const *ps, size_t n, msp_fw_format_t fmt, msp_buf_t *b)
{
    static const char *const open[] = {"Provenance: ", "\nProvenance: ", "", "<p class=\"provenance\">Provenance: "};
    static const char *const close[] = {"\n", "\n", "", "</p>\n"};
    for (size_t k = 0; k < n; k++) {
        msp_buf_puts(b, open[fmt]);
        fw_provenance(ps[k], fmt, b);
        msp_buf_puts(b, close[fmt]);
    }
}

static void render_text(const msp_fw_profile_t *const *ps, size_t n, msp_buf_t *b)
{
    const msp_fw_catalog_t *cat = ps[0]->cat;
    msp_buf_printf(b, "%-11s %-3s", "Ref", "M/O");
    for (size_t k = 0; k < n; k++) {
        msp_buf_printf(b, " %-14.14s", ps[k]->name);
    }
    msp_buf_puts(b, "\n");
    for (size_t i = 0; i < cat->count; i++) {
        msp_buf_printf(b, "%-11s %-3s", cat->reqs[i].ref, cat->reqs[i].mandatory ? "M" : "O");
        for (size_t k = 0; k < n; k++) {
            char c[32];
            cell(&ps[k]->rows[i], c, sizeof(c));
            /* The unmet MSP-Mandatory cells are what decides a verdict: make them stand out. */
            if (unmet_mm(&ps[k]->rows[i])) {
                strcat(c, " !!");
            }
            msp_buf_printf(b, " %-14s", c);
        }
        msp_buf_puts(b, "\n");
    }
    msp_buf_printf(b, "%-15s", "MSP series");
    for (size_t k = 0; k < n; k++) {
        msp_buf_printf(b, " %-14s", msp_fw_in_series(ps[k]) ? "yes" : "NO");
    }
    msp_buf_puts(b, "\n\n!! an MSP-Mandatory requirement that is not met; * corrected by an erratum\n");
    provenance_lines(ps, n, MSP_FW_TEXT, b);
}

static void render_md(const msp_fw_profile_t *const *ps, size_t n, msp_buf_t *b)
{
    const msp_fw_catalog_t *cat = ps[0]->cat;
    msp_buf_puts(b, "| Ref | M/O |");
    name_cells(ps, n, MSP_FW_MD, b);
    msp_buf_puts(b, "\n|---|---|");
    for (size_t k = 0; k < n; k++) {
        msp_buf_puts(b, "---|");
    }
    msp_buf_puts(b, "\n");
    for (size_t i = 0; i < cat->count; i++) {
        msp_buf_printf(b, "| %s | %s |", cat->reqs[i].ref, cat->reqs[i].mandatory ? "M" : "O");
        for (size_t k = 0; k < n; k++) {
            char c[32];
            cell(&ps[k]->rows[i], c, sizeof(c));
            int u = unmet_mm(&ps[k]->rows[i]);
            msp_buf_printf(b, " %s", u ? "**" : "");
            fw_put_md(b, c);
            msp_buf_printf(b, "%s |", u ? "**" : "");
        }
        msp_buf_puts(b, "\n");
    }
    msp_buf_puts(b, "| **MSP series** | |");
    for (size_t k = 0; k < n; k++) {
        msp_buf_printf(b, " %s |", msp_fw_in_series(ps[k]) ? "yes" : "**no**");
    }
    msp_buf_puts(b, "\n\nBold: an MSP-Mandatory requirement that is not met. \\* corrected by an erratum.\n");
    provenance_lines(ps, n, MSP_FW_MD, b);
}

static void render_html(const msp_fw_profile_t *const *ps, size_t n, msp_buf_t *b)
{
    const msp_fw_catalog_t *cat = ps[0]->cat;
    fw_html_begin(b, "MSP profiles compared");
    msp_buf_puts(b, "<h1>MSP profiles compared</h1>\n<table>\n<tr><th>Ref</th><th>M/O</th>");
    name_cells(ps, n, MSP_FW_HTML, b);
    msp_buf_puts(b, "</tr>\n");
    for (size_t i = 0; i < cat->count; i++) {
        msp_buf_printf(b, "<tr><td title=\"");
        fw_put_html(b, cat->reqs[i].text);
        msp_buf_printf(b, "\">%s</td><td>%s</td>", cat->reqs[i].ref, cat->reqs[i].mandatory ? "M" : "O");
        for (size_t k = 0; k < n; k++) {
            char c[32];
            cell(&ps[k]->rows[i], c, sizeof(c));
            msp_buf_printf(b, "<td%s>%s</td>", unmet_mm(&ps[k]->rows[i]) ? " class=\"unmet\"" : "", c);
        }
        msp_buf_puts(b, "</tr>\n");
    }
    msp_buf_puts(b, "<tr><th colspan=\"2\">MSP series</th>");
    for (size_t k = 0; k < n; k++) {
        int yes = msp_fw_in_series(ps[k]);
        msp_buf_printf(b, "<td class=\"verdict-%s\">%s</td>", yes ? "yes" : "no", yes ? "yes" : "no");
    }
    msp_buf_puts(b, "</tr>\n</table>\n<p>Red: an MSP-Mandatory requirement that is not met. "
                    "* corrected by an erratum.</p>\n");
    provenance_lines(ps, n, MSP_FW_HTML, b);
    fw_html_end(b);
}

static void render_json(const msp_fw_profile_t *const *ps, size_t n, msp_buf_t *b)
{
    const msp_fw_catalog_t *cat = ps[0]->cat;
    msp_json_t j;
    msp_json_init(&j, b, 1);
    msp_json_object_begin(&j);
    msp_json_key(&j, "profiles");
    msp_json_array_begin(&j);
    for (size_t k = 0; k < n; k++) {
        msp_json_object_begin(&j);
        msp_json_key(&j, "profile");
        msp_json_string(&j, ps[k]->name);
        msp_json_key(&j, "msp_series");
        msp_json_bool(&j, msp_fw_in_series(ps[k]));
        fw_json_provenance(ps[k], &j);
        msp_json_object_end(&j);
    }
    msp_json_array_end(&j);
    msp_json_key(&j, "rows");
    msp_json_array_begin(&j);
    for (size_t i = 0; i < cat->count; i++) {
        msp_json_object_begin(&j);
        msp_json_key(&j, "ref");
        msp_json_string(&j, cat->reqs[i].ref);
        msp_json_key(&j, "template");
        msp_json_string(&j, cat->reqs[i].mandatory ? "M" : "O");
        msp_json_key(&j, "cells");
        msp_json_array_begin(&j);
        for (size_t k = 0; k < n; k++) {
            const msp_fw_row_t *r = &ps[k]->rows[i];
            msp_json_object_begin(&j);
            msp_json_key(&j, "label");
            msp_json_string(&j, msp_fw_label_code(msp_fw_row_label(r)));
            msp_json_key(&j, "met");
            msp_json_bool(&j, msp_fw_row_met(r) == 1);
            msp_json_key(&j, "erratum");
            msp_json_bool(&j, r->has_erratum);
            msp_json_key(&j, "unmet_mandatory");
            msp_json_bool(&j, unmet_mm(r));
            msp_json_object_end(&j);
        }
        msp_json_array_end(&j);
        msp_json_object_end(&j);
    }
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    msp_json_finish(&j);
}

int msp_fw_render_compare(const msp_fw_profile_t *const *ps, size_t n, msp_fw_format_t fmt, msp_buf_t *out)
{
    if (n == 0) {
        return MSP_ERR_ARGUMENT;
    }
    static void (*const render[])(const msp_fw_profile_t *const *, size_t, msp_buf_t *) = {render_text, render_md,
                                                                                           render_json, render_html};
    if ((unsigned)fmt >= sizeof(render) / sizeof(render[0])) {
        return MSP_ERR_ARGUMENT;
    }
    render[fmt](ps, n, out);
    return msp_buf_error(out);
}
