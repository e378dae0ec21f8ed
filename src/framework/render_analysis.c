/*
 * The Conformance Analysis in the shape of Annexes B and C: per principle
 * an Overview with the table, then one section per label (MSP-Mandatory ...
 * Profile-Rejected), each requirement with its label, Met, justification
 * and the clauses the justification cites.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fw.h"

void fw_section_number(const msp_fw_profile_t *p, int principle, int k, char *out, size_t n)
{
    const char *annex = p->annex != NULL ? p->annex : "";
    const char *sep = p->annex != NULL ? ".3." : "";
    if (k == 0) {
        snprintf(out, n, "%s%s%d", annex, sep, principle + 1);
    } else {
        snprintf(out, n, "%s%s%d.%d", annex, sep, principle + 1, k);
    }
}

void fw_table_number(const msp_fw_profile_t *p, int principle, char *out, size_t n)
{
    snprintf(out, n, "Table %s%s%d", p->annex != NULL ? p->annex : "", p->annex != NULL ? "." : "", principle + 1);
}

/* Length of a clause number at s ("B.3.1.2", "6.1.3", "C.3.4"), 0 if none: at least one dot between digits. */
static size_t clause_len(const char *s)
{
    size_t i = 0;
    if (s[0] >= 'A' && s[0] <= 'Z' && s[1] == '.') {
        i = 2;
    }
    if (!isdigit((unsigned char)s[i])) {
        return 0;
    }
    int groups = i > 0;
    for (;;) {
        while (isdigit((unsigned char)s[i])) {
            i++;
        }
        if (s[i] != '.' || !isdigit((unsigned char)s[i + 1])) {
            break;
        }
        i++;
        groups++;
    }
    return groups > 0 ? i : 0;
}

/* Length of a threat-model assumption at s ("ETS.TM.0", "Annex-C.TM.4"), 0 if none. */
static size_t assumption_len(const char *s)
{
    size_t i = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-");
    if (i == 0 || strncmp(s + i, ".TM.", 4) != 0 || !isdigit((unsigned char)s[i + 4])) {
        return 0;
    }
    i += 4;
    while (isdigit((unsigned char)s[i])) {
        i++;
    }
    return i;
}

/*
 * A number such as "6.1.3" is a clause of the present document when it has
 * three parts or follows "clause"; "TLS 1.3" is a version, not a citation.
 */
static int bare_clause(const char *start, const char *s, size_t len)
{
    size_t dots = 0;
    for (size_t i = 0; i < len; i++) {
        dots += s[i] == '.';
    }
    return dots >= 2 || (s - start >= 7 && strncasecmp(s - 7, "clause ", 7) == 0);
}

static int seen(const char *list, const char *item, size_t n)
{
    for (const char *s = list; (s = strstr(s, item)) != NULL; s++) {
        int start = s == list || s[-1] == '\n';
        if (start && strncmp(s, item, n) == 0 && s[n] == '\n') {
            return 1;
        }
    }
    return 0;
}

size_t fw_cited(const char *justification, char *out, size_t n)
{
    size_t count = 0, used = 0;
    out[0] = '\0';
    for (const char *s = justification; s != NULL && *s != '\0'; s++) {
        if (s != justification && (isalnum((unsigned char)s[-1]) || s[-1] == '.' || s[-1] == '-')) {
            continue;
        }
        size_t len = 0;
        const char *from = s;
        if (strncmp(s, "Table ", 6) == 0 && clause_len(s + 6) > 0) {
            len = 6 + clause_len(s + 6);
        } else if ((len = assumption_len(s)) == 0) {
            len = clause_len(s);
            if (len > 0 && isdigit((unsigned char)s[0]) && !bare_clause(justification, s, len)) {
                len = 0;
            }
        }
        char item[64];
        if (len == 0 || len >= sizeof(item)) {
            continue;
        }
        memcpy(item, from, len);
        item[len] = '\0';
        if (!seen(out, item, len) && used + len + 2 <= n) {
            memcpy(out + used, item, len);
            used += len;
            out[used++] = '\n';
            out[used] = '\0';
            count++;
        }
        s += len - 1;
    }
    return count;
}

/* ---- one requirement in its section ---- */

/* "PR->PO, Met N->Y, corrected by an erratum"; arrow is "->" in text, " → " in Markdown and HTML. */
static void label_met(const msp_fw_row_t *r, const char *arrow, char *out, size_t n)
{
    char label[24], met[24];
    if (r->fix_label != MSP_FW_NONE) {
        snprintf(label, sizeof(label), "%s%s%s", msp_fw_label_code(r->label), arrow, msp_fw_label_code(r->fix_label));
    } else {
        snprintf(label, sizeof(label), "%s", msp_fw_label_code(r->label));
    }
    if (r->fix_met >= 0) {
        snprintf(met, sizeof(met), "%s%s%s", fw_yn(r->met), arrow, fw_yn(r->fix_met));
    } else {
        snprintf(met, sizeof(met), "%s", fw_yn(r->met));
    }
    snprintf(out, n, "%s, Met %s%s", label, met, r->has_erratum ? ", corrected by an erratum" : "");
}

/* The cited clauses joined by ", ", or "" when there are none. */
static void cites_line(const msp_fw_row_t *r, char *out, size_t n)
{
    char list[512];
    fw_cited(r->justification, list, sizeof(list));
    msp_buf_t b;
    msp_buf_init_fixed(&b, out, n);
    const char *sep = "";
    for (char *s = list; *s != '\0';) {
        size_t len = strcspn(s, "\n");
        msp_buf_printf(&b, "%s%.*s", sep, (int)len, s);
        sep = ", ";
        s += len + (s[len] == '\n');
    }
    out[b.len < n ? b.len : n - 1] = '\0';
}

/*
 * The tests a met claim names as its evidence (docs/profile-format.md), in text, Markdown or HTML: an auditor reads
 * the proof beside the claim. Nothing for a row without evidence (Annexes B and C name none).
 */
static void evidence_part(const msp_fw_profile_t *p, size_t i, msp_fw_format_t fmt, msp_buf_t *b)
{
    if (msp_fw_evidence_count(p, i) == 0) {
        return;
    }
    msp_buf_t list;
    const char *text = fw_evidence_join(p, i, &list) == MSP_OK ? (const char *)list.base : "(out of memory)";
    if (fmt == MSP_FW_TEXT) {
        msp_buf_puts(b, "    Evidence: ");
        fw_put_wrapped(b, text, 14, 100);
        msp_buf_puts(b, "\n");
    } else {
        msp_buf_puts(b, fmt == MSP_FW_HTML ? " <span class=\"evidence\">Evidence: " : " Evidence: ");
        fw_put_escaped(b, fmt, text);
        msp_buf_puts(b, fmt == MSP_FW_HTML ? "</span>" : "");
    }
    msp_buf_free(&list);
}

static void entry_text(const msp_fw_profile_t *p, size_t i, msp_buf_t *b)
{
    const msp_fw_row_t *r = &p->rows[i];
    char lm[96], cites[600];
    label_met(r, "->", lm, sizeof(lm));
    cites_line(r, cites, sizeof(cites));
    msp_buf_printf(b, "  %s (%s)\n    Justification: ", p->cat->reqs[i].ref, lm);
    fw_put_wrapped(b, r->justification != NULL ? r->justification : "(none)", 19, 100);
    msp_buf_printf(b, "\n    Cites: %s\n", cites[0] != '\0' ? cites : "(no clause)");
    evidence_part(p, i, MSP_FW_TEXT, b);
}

/* Markdown a list item, HTML one with an anchor; the same words in both. */
static void entry_marked(const msp_fw_profile_t *p, size_t i, msp_fw_format_t fmt, msp_buf_t *b)
{
    const msp_fw_template_t *t = &p->cat->reqs[i];
    const msp_fw_row_t *r = &p->rows[i];
    int html = fmt == MSP_FW_HTML;
    char lm[96], cites[600];
    label_met(r, " → ", lm, sizeof(lm));
    cites_line(r, cites, sizeof(cites));
    if (html) {
        msp_buf_printf(b, "<li id=\"analysis-%s\"><b>%s</b> (", t->ref, t->ref);
    } else {
        msp_buf_printf(b, "- **%s** (", t->ref);
    }
    fw_put_escaped(b, fmt, lm);
    msp_buf_puts(b, "): ");
    fw_put_escaped(b, fmt, r->justification != NULL ? r->justification : "(no justification)");
    msp_buf_puts(b, html ? " <span class=\"cites\">Cites: " : " *Cites: ");
    fw_put_escaped(b, fmt, cites[0] != '\0' ? cites : "(no clause)");
    msp_buf_puts(b, html ? "</span>" : "*");
    evidence_part(p, i, fmt, b);
    msp_buf_puts(b, html ? "</li>\n" : "\n");
}

/* ---- the label sections of one principle ---- */

static void section_head(const msp_fw_profile_t *p, msp_fw_format_t fmt, int pr, msp_fw_label_t l, msp_buf_t *b)
{
    char num[32];
    fw_section_number(p, pr, (int)l + 1, num, sizeof(num));
    const char *name = msp_fw_label_name(l);
    if (fmt == MSP_FW_MD) {
        msp_buf_printf(b, "\n### %s %s Profile Requirements\n\n", num, name);
    } else if (fmt == MSP_FW_HTML) {
        msp_buf_printf(b, "<h3 id=\"%s\">%s %s Profile Requirements</h3>\n", num, num, name);
    } else {
        msp_buf_printf(b, "\n%s %s Profile Requirements\n", num, name);
    }
}

static void section_none(msp_fw_format_t fmt, int pr, msp_fw_label_t l, msp_buf_t *b)
{
    const char *pname = msp_fw_principle_name((msp_fw_principle_t)pr);
    const char *open = fmt == MSP_FW_HTML ? "<p>" : fmt == MSP_FW_MD ? "" : "  ";
    const char *close = fmt == MSP_FW_HTML ? "</p>\n" : "\n";
    msp_buf_printf(b, "%sThere are no Profile Requirements of the type \"%s\" for %s.%s", open, msp_fw_label_name(l),
                   pname, close);
}

void fw_render_sections(const msp_fw_profile_t *p, msp_fw_format_t fmt, int pr, msp_buf_t *b)
{
    for (msp_fw_label_t l = MSP_FW_MM; l <= MSP_FW_PR; l++) {
        section_head(p, fmt, pr, l, b);
        int any = 0;
        for (size_t i = 0; i < p->cat->count; i++) {
            const msp_fw_template_t *t = &p->cat->reqs[i];
            const msp_fw_row_t *r = &p->rows[i];
            if (t->principle != (msp_fw_principle_t)pr || !r->present || msp_fw_row_label(r) != l) {
                continue;
            }
            if (!any && fmt == MSP_FW_HTML) {
                msp_buf_puts(b, "<ul class=\"analysis\">\n");
            }
            any = 1;
            if (fmt == MSP_FW_MD || fmt == MSP_FW_HTML) {
                entry_marked(p, i, fmt, b);
            } else {
                entry_text(p, i, b);
            }
        }
        if (!any) {
            section_none(fmt, pr, l, b);
        } else if (fmt == MSP_FW_HTML) {
            msp_buf_puts(b, "</ul>\n");
        }
    }
}
