#include <stdio.h>
#include <string.h>

#include "fw.h"

int msp_fw_format_parse(const char *s)
{
    static const char *const names[] = {"text", "md", "json", "html", "sarif"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

const char *fw_yn(int met)
{
    return met > 0 ? "Y" : "N";
}

const char *fw_severity_name(msp_fw_severity_t s)
{
    static const char *const names[] = {"error", "warning", "erratum"};
    return (unsigned)s <= MSP_FW_ERRATUM ? names[s] : "?";
}

void fw_describe_erratum(const msp_fw_row_t *r, char *out, size_t n)
{
    msp_buf_t b;
    msp_buf_init_fixed(&b, out, n);
    const char *sep = ""; /* between the parts, none after the last: "; " at the end read as if something were cut */
    if (r->fix_label != MSP_FW_NONE) {
        msp_buf_printf(&b, "label printed %s, should be %s", msp_fw_label_code(r->label),
                       msp_fw_label_code(r->fix_label));
        sep = "; ";
    }
    if (r->fix_met >= 0) {
        msp_buf_printf(&b, "%sMet printed %s, should be %s", sep, fw_yn(r->met), fw_yn(r->fix_met));
        sep = "; ";
    }
    if (r->fix_text != NULL) {
        msp_buf_printf(&b, "%stext printed \"%s\", should be \"%s\"", sep, r->text != NULL ? r->text : "", r->fix_text);
        sep = "; ";
    }
    if (r->why != NULL && r->why[0] != '\0') {
        msp_buf_printf(&b, "%s%s", sep, r->why);
    }
    /* A fixed buffer that overflowed keeps what fitted; end it there. */
    size_t end = b.len < n ? b.len : n - 1;
    if (b.err != MSP_OK && n > 4) {
        end = n - 4;
        memcpy(out + end, "...", 3);
        end += 3;
    }
    out[end] = '\0';
}

int msp_fw_render_findings(const msp_fw_profile_t *p, msp_buf_t *out)
{
    for (size_t i = 0; i < p->nfindings; i++) {
        const msp_fw_finding_t *f = &p->findings[i];
        msp_buf_printf(out, "%s:%s: %s: %s\n", p->source_name, f->ref, fw_severity_name(f->severity), f->message);
    }
    if (p->dropped_findings > 0) {
        msp_buf_printf(out, "%s:profile: error: %zu more findings not shown\n", p->source_name, p->dropped_findings);
    }
    return msp_buf_error(out);
}

void fw_put_html(msp_buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            msp_buf_puts(b, "&amp;");
            break;
        case '<':
            msp_buf_puts(b, "&lt;");
            break;
        case '>':
            msp_buf_puts(b, "&gt;");
            break;
        case '"':
            msp_buf_puts(b, "&quot;");
            break;
        case '\'':
            msp_buf_puts(b, "&#39;");
            break;
        default:
            msp_buf_put_u8(b, (uint8_t)*s);
        }
    }
}

void fw_put_md(msp_buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (strchr("|\\*_`<>[]", *s) != NULL) {
            msp_buf_put_u8(b, '\\');
        }
        /* A newline would end the table row. */
        msp_buf_put_u8(b, *s == '\n' || *s == '\r' ? ' ' : (uint8_t)*s);
    }
}

void fw_put_escaped(msp_buf_t *b, msp_fw_format_t fmt, const char *s)
{
    if (fmt == MSP_FW_HTML) {
        fw_put_html(b, s);
    } else if (fmt == MSP_FW_MD) {
        fw_put_md(b, s);
    } else {
        msp_buf_puts(b, s);
    }
}

static void put_word(msp_buf_t *b, msp_fw_format_t fmt, const char *w, size_t n, int emphasise)
{
    static const char *const open[] = {"*", "**", "", "<b>"};
    static const char *const close[] = {"*", "**", "", "</b>"};
    char word[256];
    snprintf(word, sizeof(word), "%.*s", (int)n, w);
    if (emphasise) {
        msp_buf_puts(b, open[fmt]);
    }
    fw_put_escaped(b, fmt, word);
    if (emphasise) {
        msp_buf_puts(b, close[fmt]);
    }
}

void fw_put_emphasised(msp_buf_t *b, msp_fw_format_t fmt, const char *tmpl, const char *text)
{
    if (text == NULL) {
        return;
    }
    msp_fw_wordmap_t changed;
    msp_fw_textdiff_t d = msp_fw_text_diff(tmpl, text, &changed, NULL, 0);
    const char *s = text;
    for (size_t i = 0;; i++) {
        s += strspn(s, " \t\r\n");
        if (*s == '\0') {
            break;
        }
        size_t n = strcspn(s, " \t\r\n");
        int emph = d != MSP_FW_TEXT_OTHER && i < 256 && (changed.bits[i / 64] >> (i % 64) & 1);
        if (i > 0) {
            msp_buf_put_u8(b, ' ');
        }
        put_word(b, fmt, s, n, emph && fmt != MSP_FW_JSON);
        s += n;
    }
}

int fw_evidence_join(const msp_fw_profile_t *p, size_t i, msp_buf_t *out)
{
    msp_buf_init(out, FW_MAX_INPUT + 1);
    for (size_t k = 0; k < msp_fw_evidence_count(p, i); k++) {
        msp_buf_puts(out, k > 0 ? ", " : "");
        msp_buf_puts(out, msp_fw_evidence(p, i, k));
    }
    msp_buf_put_u8(out, 0);
    return msp_buf_error(out);
}

void fw_put_wrapped(msp_buf_t *b, const char *s, size_t indent, size_t width)
{
    size_t col = indent;
    int first = 1;
    for (;;) {
        s += strspn(s, " \t\r\n");
        if (*s == '\0') {
            return;
        }
        size_t n = strcspn(s, " \t\r\n");
        if (!first && col + 1 + n > width) {
            msp_buf_printf(b, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!first) {
            msp_buf_put_u8(b, ' ');
            col++;
        }
        msp_buf_put(b, s, n);
        col += n;
        first = 0;
        s += n;
    }
}

void fw_html_begin(msp_buf_t *b, const char *title)
{
    msp_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    fw_put_html(b, title);
    msp_buf_puts(b, "</title>\n<style>\n"
                    "body{font-family:sans-serif;margin:2em;max-width:75em}\n"
                    "table{border-collapse:collapse;margin-bottom:1.5em}\n"
                    "th,td{border:1px solid #999;padding:.3em .5em;vertical-align:top;text-align:left}\n"
                    "th{background:#eee}\n"
                    "td.unmet{background:#f8d0d0;font-weight:bold}\n"
                    "td.erratum{background:#fff3c0}\n"
                    ".verdict-yes{color:#060}.verdict-no{color:#a00}\n"
                    /* Printed (to PDF for an audit file) nothing may be cut or run off the page: tables take the
                     * page width, long words break, rows and headings stay with what follows them. */
                    "table{width:100%}\n"
                    "th,td{overflow-wrap:anywhere}\n"
                    "col.ref{width:7.5em}col.label{width:6.5em}col.met{width:4.5em}\n"
                    "caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}\n"
                    "thead{display:table-header-group}\n"
                    "tr,li{break-inside:avoid}\n"
                    "h2,h3,caption{break-after:avoid}\n"
                    "ul.analysis li{margin-bottom:.5em;overflow-wrap:anywhere}\n"
                    ".cites{color:#555;font-style:italic}\n"
                    ".evidence{color:#555;font-size:90%}\n"
                    "@page{size:A4;margin:15mm}\n"
                    "@media print{body{margin:0;max-width:none;font-size:10pt}h2{break-before:page}"
                    "h2:first-of-type{break-before:auto}}\n"
                    "</style>\n</head>\n<body>\n");
}

void fw_html_end(msp_buf_t *b)
{
    msp_buf_puts(b, "</body>\n</html>\n");
}

/* ---- provenance: what every report says about where it comes from ---- */

static const char *or_unknown(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "unknown";
}

void fw_provenance_line(const msp_fw_profile_t *p, msp_buf_t *b)
{
    msp_buf_printf(b, "msp %s, catalog %s, profile %s sha256 %s, date %s", or_unknown(p->msp_version),
                   msp_fw_catalog_version(), p->source_name, or_unknown(p->sha256), or_unknown(p->date));
}

void fw_json_provenance(const msp_fw_profile_t *p, msp_json_t *j)
{
    msp_json_key(j, "provenance");
    msp_json_object_begin(j);
    msp_json_key(j, "msp_version");
    msp_json_string(j, or_unknown(p->msp_version));
    msp_json_key(j, "catalog_version");
    msp_json_string(j, msp_fw_catalog_version());
    msp_json_key(j, "profile");
    msp_json_string(j, p->source_name);
    msp_json_key(j, "profile_sha256");
    msp_json_string(j, or_unknown(p->sha256));
    msp_json_key(j, "date");
    msp_json_string(j, or_unknown(p->date));
    msp_json_object_end(j);
}

/* Escaped for Markdown and HTML: the profile's path may hold any character. */
void fw_provenance(const msp_fw_profile_t *p, msp_fw_format_t fmt, msp_buf_t *b)
{
    if (fmt != MSP_FW_MD && fmt != MSP_FW_HTML) {
        fw_provenance_line(p, b);
        return;
    }
    char line[512];
    msp_buf_t tmp;
    msp_buf_init_fixed(&tmp, line, sizeof(line));
    fw_provenance_line(p, &tmp);
    fw_put_escaped(b, fmt, msp_buf_cstr(&tmp));
}
