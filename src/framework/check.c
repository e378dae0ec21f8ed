#include <stdio.h>
#include <string.h>

#include "fw.h"

/* The erratum itself is a finding: the printed value is never hidden. */
static void report_erratum(msp_fw_profile_t *p, const msp_fw_template_t *t, const msp_fw_row_t *r)
{
    char what[sizeof(p->findings[0].message)];
    fw_describe_erratum(r, what, sizeof(what));
    msp_fw_add_finding(p, t->ref, MSP_FW_ERRATUM, "%s", what);
    if ((r->fix_label != MSP_FW_NONE && r->fix_label == r->label) || (r->fix_met >= 0 && r->fix_met == r->met) ||
        (r->fix_text != NULL && r->text != NULL && strcmp(r->fix_text, r->text) == 0)) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR, "the erratum repeats a printed value instead of correcting it");
    }
}

static void check_label(msp_fw_profile_t *p, const msp_fw_template_t *t, msp_fw_label_t l)
{
    if (l == MSP_FW_NONE) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR, "no label; %s",
                           t->mandatory ? "a Mandatory template requirement is MM"
                                        : "choose PM, PO, PNA or PR (clause 6.1.2.3)");
    } else if (t->mandatory && l != MSP_FW_MM) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                           "labelled %s, but it is a Mandatory template requirement: it must be MM (Table 6.2)",
                           msp_fw_label_code(l));
    } else if (!t->mandatory && l == MSP_FW_MM) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                           "labelled MM, but it is an Optional template requirement: choose PM, PO, PNA or PR "
                           "(Table 6.2)");
    }
}

static void check_text(msp_fw_profile_t *p, const msp_fw_template_t *t, msp_fw_label_t l, const char *text)
{
    if (text == NULL) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                           "no text; the profile requirement text is copied from the template");
        return;
    }
    char where[200];
    msp_fw_textdiff_t d = msp_fw_text_diff(t->text, text, NULL, where, sizeof(where));
    switch (l) {
    case MSP_FW_PM:
        if (d == MSP_FW_TEXT_SAME || d == MSP_FW_TEXT_MAY_SHOULD) {
            msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                               "PM text must change \"may\" into \"shall\" (clause 6.1.2.3), and it %s",
                               d == MSP_FW_TEXT_SAME ? "keeps \"may\"" : "has \"should\"");
        } else if (d == MSP_FW_TEXT_OTHER) {
            msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                               "PM text may differ from the template only by \"may\" -> \"shall\" (clause 6.1.2.3); %s",
                               where);
        }
        break;
    case MSP_FW_PO:
        if (d != MSP_FW_TEXT_SAME && d != MSP_FW_TEXT_MAY_SHOULD) {
            msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                               "PO text is the template text, or with \"may\" -> \"should\" only (clause 6.1.2.3); %s",
                               d == MSP_FW_TEXT_MAY_SHALL ? "it has \"shall\"" : where);
        }
        break;
    case MSP_FW_MM:
    case MSP_FW_PNA:
    case MSP_FW_PR:
        if (d != MSP_FW_TEXT_SAME) {
            msp_fw_add_finding(p, t->ref, MSP_FW_ERROR, "%s text is copied without changes (clause 6.1.2.3); %s",
                               msp_fw_label_code(l), d == MSP_FW_TEXT_OTHER ? where : "\"may\" was changed");
        }
        break;
    case MSP_FW_NONE:
        break;
    }
}

static void check_met(msp_fw_profile_t *p, const msp_fw_template_t *t, msp_fw_label_t l, int met)
{
    if (met < 0) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR, "no 'met'; say whether the profile meets it (true or false)");
    } else if (l == MSP_FW_PR && met) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                           "PR is never met: a rejected requirement is not selected (Table 6.2)");
    } else if (l == MSP_FW_PNA && met) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                           "PNA is not claimed as met: selection was precluded (Table 6.2); use PO or PM if it is met");
    } else if (l == MSP_FW_PM && !met) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR, "PM is always met by the profile (Table 6.2), but met is false");
    } else if (l == MSP_FW_PO && !met) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                           "PO is provided by the profile for use when desired (clause 6.1.3), but met is false; "
                           "an optional requirement the profile does not provide is PNA or PR");
    }
}

static void check_justification(msp_fw_profile_t *p, const msp_fw_template_t *t, msp_fw_label_t l, const char *j)
{
    int needed = l == MSP_FW_MM || l == MSP_FW_PM || l == MSP_FW_PO;
    if (needed && (j == NULL || j[strspn(j, " \t\r\n")] == '\0')) {
        msp_fw_add_finding(p, t->ref, MSP_FW_ERROR,
                           "no justification; the Conformance Analysis covers every MM, PM and PO (clause 6.1.3)");
    }
}

/*
 * Clause 6.1.3: a parent is satisfied when all its leaves are (EXAMPLE 2),
 * and the seed's analyses satisfy a parent through its Mandatory children
 * (B.3.3.2: "E.AC.1 is satisfied as E.AC.1.1, E.AC.1.2 and E.AC.1.5 are all
 * satisfied"). So if the children that count are all met, the parent must
 * be met too; a parent may also be met outright, so the converse is not
 * checked.
 */
static void check_branch(msp_fw_profile_t *p, size_t i)
{
    const msp_fw_catalog_t *cat = p->cat;
    int has_mandatory = 0, children = 0;
    for (size_t c = i + 1; c < cat->count; c++) {
        if (cat->reqs[c].parent == (int)i) {
            children++;
            has_mandatory |= cat->reqs[c].mandatory;
        }
    }
    if (children == 0 || msp_fw_row_met(&p->rows[i]) != 0) {
        return;
    }
    for (size_t c = i + 1; c < cat->count; c++) {
        const msp_fw_row_t *r = &p->rows[c];
        if (cat->reqs[c].parent == (int)i && (cat->reqs[c].mandatory || !has_mandatory) &&
            (!r->present || msp_fw_row_met(r) != 1)) {
            return;
        }
    }
    msp_fw_add_finding(p, cat->reqs[i].ref, MSP_FW_ERROR,
                       "not met, yet all its %s are met; a parent is satisfied by them (clause 6.1.3)",
                       has_mandatory ? "Mandatory children" : "children");
}

void msp_fw_check(msp_fw_profile_t *p)
{
    for (size_t i = 0; i < p->cat->count; i++) {
        const msp_fw_template_t *t = &p->cat->reqs[i];
        const msp_fw_row_t *r = &p->rows[i];
        if (!r->present) {
            continue; /* already reported as missing */
        }
        if (r->has_erratum) {
            report_erratum(p, t, r);
        }
        msp_fw_label_t l = msp_fw_row_label(r);
        check_label(p, t, l);
        check_text(p, t, l, msp_fw_row_text(r));
        check_met(p, t, l, msp_fw_row_met(r));
        check_justification(p, t, l, r->justification);
        check_branch(p, i);
    }
    for (size_t e = 0; e < p->nerrata; e++) {
        const msp_fw_clause_erratum_t *c = &p->errata[e];
        if (c->printed != NULL && c->should_be != NULL && c->why != NULL) {
            msp_fw_add_finding(p, c->clause, MSP_FW_ERRATUM, "printed \"%s\", should be \"%s\"; %s", c->printed,
                               c->should_be, c->why);
        }
    }
}

int msp_fw_in_series(const msp_fw_profile_t *p)
{
    for (size_t i = 0; i < p->cat->count; i++) {
        const msp_fw_row_t *r = &p->rows[i];
        if (p->cat->reqs[i].mandatory && (!r->present || msp_fw_row_met(r) != 1)) {
            return 0;
        }
    }
    return 1;
}
