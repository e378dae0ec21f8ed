#include <stdio.h>
#include <string.h>

#include "fw.h"

/* The erratum itself is a finding: the printed value is never hidden. */
static void report_erratum(msp_fw_profile_t *p, const msp_fw_template_t *t, const msp_fw_row_t *r)
{
    char what[sizeof(p->findings[0].message)];
    fw_describe_erratum(r, what, sizeof(what));
    fw_add(p, "erratum", t->ref, MSP_FW_ERRATUM, "%s", what);
    if ((r->fix_label != MSP_FW_NONE && r->fix_label == r->label) || (r->fix_met >= 0 && r->fix_met == r->met) ||
        (r->fix_text != NULL && r->text != NULL && strcmp(r->fix_text, r->text) == 0)) {
        fw_add(p, "erratum", t->ref, MSP_FW_ERROR, "the erratum repeats a printed value instead of correcting it");
    }
}

static void check_label(msp_fw_profile_t *p, const msp_fw_template_t *t, msp_fw_label_t l)
{
    if (l == MSP_FW_NONE) {
        fw_add(p, "label", t->ref, MSP_FW_ERROR, "no label; %s",
               t->mandatory ? "a Mandatory template requirement is MM" : "choose PM, PO, PNA or PR (clause 6.1.2.3)");
    } else if (t->mandatory && l != MSP_FW_MM) {
        fw_add(p, "label", t->ref, MSP_FW_ERROR,
               "labelled %s, but it is a Mandatory template requirement: it must be MM (Table 6.2)",
               msp_fw_label_code(l));
    } else if (!t->mandatory && l == MSP_FW_MM) {
        fw_add(p, "label", t->ref, MSP_FW_ERROR,
               "labelled MM, but it is an Optional template requirement: choose PM, PO, PNA or PR "
               "(Table 6.2)");
    }
}

static void check_text(msp_fw_profile_t *p, const msp_fw_template_t *t, msp_fw_label_t l, const char *text)
{
    if (text == NULL) {
        fw_add(p, "text", t->ref, MSP_FW_ERROR, "no text; the profile requirement text is copied from the template");
        return;
    }
    char where[200];
    msp_fw_textdiff_t d = msp_fw_text_diff(t->text, text, NULL, where, sizeof(where));
    /* The rules compare words, and the reports print the words with single
     * spaces; a spacing change is no change of wording, but it is not the
     * template copied either: say so without failing the check. */
    char gap[200];
    if (d != MSP_FW_TEXT_OTHER && fw_spacing_differs(t->text, text, gap, sizeof(gap))) {
        fw_add(p, "text-spacing", t->ref, MSP_FW_WARNING,
               "text differs from the template in spacing only (%s); the words are compared, so it counts as copied",
               gap);
    }
    switch (l) {
    case MSP_FW_PM:
        if (d == MSP_FW_TEXT_SAME || d == MSP_FW_TEXT_MAY_SHOULD) {
            fw_add(p, "text", t->ref, MSP_FW_ERROR,
                   "PM text must change \"may\" into \"shall\" (clause 6.1.2.3), and it %s",
                   d == MSP_FW_TEXT_SAME ? "keeps \"may\"" : "has \"should\"");
        } else if (d == MSP_FW_TEXT_OTHER) {
            fw_add(p, "text", t->ref, MSP_FW_ERROR,
                   "PM text may differ from the template only by \"may\" -> \"shall\" (clause 6.1.2.3); %s", where);
        }
        break;
    case MSP_FW_PO:
        if (d != MSP_FW_TEXT_SAME && d != MSP_FW_TEXT_MAY_SHOULD) {
            fw_add(p, "text", t->ref, MSP_FW_ERROR,
                   "PO text is the template text, or with \"may\" -> \"should\" only (clause 6.1.2.3); %s",
                   d == MSP_FW_TEXT_MAY_SHALL ? "it has \"shall\"" : where);
        }
        break;
    case MSP_FW_MM:
    case MSP_FW_PNA:
    case MSP_FW_PR:
        if (d != MSP_FW_TEXT_SAME) {
            fw_add(p, "text", t->ref, MSP_FW_ERROR, "%s text is copied without changes (clause 6.1.2.3); %s",
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
        fw_add(p, "met", t->ref, MSP_FW_ERROR, "no 'met'; say whether the profile meets it (true or false)");
    } else if (l == MSP_FW_PR && met) {
        fw_add(p, "met", t->ref, MSP_FW_ERROR, "PR is never met: a rejected requirement is not selected (Table 6.2)");
    } else if (l == MSP_FW_PNA && met) {
        fw_add(p, "met", t->ref, MSP_FW_ERROR,
               "PNA is not claimed as met: selection was precluded (Table 6.2); use PO or PM if it is met");
    } else if (l == MSP_FW_PM && !met) {
        fw_add(p, "met", t->ref, MSP_FW_ERROR, "PM is always met by the profile (Table 6.2), but met is false");
    } else if (l == MSP_FW_PO && !met) {
        fw_add(p, "met", t->ref, MSP_FW_ERROR,
               "PO is provided by the profile for use when desired (clause 6.1.3), but met is false; "
               "an optional requirement the profile does not provide is PNA or PR");
    }
}

static void check_justification(msp_fw_profile_t *p, const msp_fw_template_t *t, msp_fw_label_t l, const char *j)
{
    int needed = l == MSP_FW_MM || l == MSP_FW_PM || l == MSP_FW_PO;
    if (needed && (j == NULL || j[strspn(j, " \t\r\n")] == '\0')) {
        fw_add(p, "justification", t->ref, MSP_FW_ERROR,
               "no justification; the Conformance Analysis covers every MM, PM and PO (clause 6.1.3)");
    }
}

/* A test or case name: what CTest and cmocka print it as, and nothing a JUnit file would escape. */
static int evidence_name_ok(const char *s, size_t n)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    size_t i = 0;
    while (i < n && s[i] != '\0' && strchr(ok, s[i]) != NULL) {
        i++;
    }
    return n > 0 && i == n;
}

/* "TEST" or "TEST:CASE" (docs/profile-format.md, "Evidence"). */
static int evidence_entry_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL) {
        return evidence_name_ok(s, strlen(s));
    }
    return evidence_name_ok(s, (size_t)(colon - s)) && evidence_name_ok(colon + 1, strlen(colon + 1));
}

static int evidence_repeated(const msp_ucl_t *ev, const msp_ucl_t *e)
{
    for (const msp_ucl_t *o = ev->v.kids.first; o != e; o = o->next) {
        if (o->type == MSP_UCL_STRING && strcmp(o->v.str.s, e->v.str.s) == 0) {
            return 1;
        }
    }
    return 0;
}

static void check_evidence_entries(msp_fw_profile_t *p, const msp_fw_template_t *t, const msp_ucl_t *ev)
{
    if (ev->v.kids.first == NULL) {
        fw_add(p, "evidence", t->ref, MSP_FW_ERROR, "the evidence list is empty (line %u); leave it out or name a test",
               (unsigned)ev->line);
    }
    for (const msp_ucl_t *e = ev->v.kids.first; e != NULL; e = e->next) {
        if (e->type != MSP_UCL_STRING) {
            fw_add(p, "evidence", t->ref, MSP_FW_ERROR, "an evidence entry must be a string, not %s (line %u)",
                   fw_type_article(e->type), (unsigned)e->line);
        } else if (strlen(e->v.str.s) != e->v.str.len || !evidence_entry_ok(e->v.str.s)) {
            fw_add(p, "evidence", t->ref, MSP_FW_ERROR,
                   "evidence \"%.200s\" is not TEST or TEST:CASE, names of letters, digits, '_', '.' and '-' "
                   "(line %u)",
                   e->v.str.s, (unsigned)e->line);
        } else if (evidence_repeated(ev, e)) {
            fw_add(p, "evidence", t->ref, MSP_FW_ERROR, "evidence \"%.200s\" is listed twice (line %u)", e->v.str.s,
                   (unsigned)e->line);
        }
    }
}

/* Evidence backs a claim: only a met MM, PM or PO row makes one, and with evidence_required each must. */
static void check_evidence(msp_fw_profile_t *p, const msp_fw_template_t *t, const msp_fw_row_t *r, msp_fw_label_t l)
{
    int claims = (l == MSP_FW_MM || l == MSP_FW_PM || l == MSP_FW_PO) && msp_fw_row_met(r) == 1;
    if (r->evidence != NULL) {
        check_evidence_entries(p, t, r->evidence);
        if (!claims) {
            /* a warning: nothing reads it (conform checks claims only), and a profile generated for every row
             * stays usable */
            fw_add(p, "evidence", t->ref, MSP_FW_WARNING,
                   "evidence on a row that claims nothing (%s, met %s, line %u); only a met MM, PM or PO row's "
                   "evidence is used",
                   msp_fw_label_code(l), msp_fw_row_met(r) == 1 ? "true" : "false", (unsigned)r->evidence->line);
        }
    } else if (claims && p->evidence_required) {
        fw_add(p, "evidence", t->ref, MSP_FW_ERROR,
               "%s and met, but no evidence; the profile sets evidence_required, so every met MM, PM and PO row "
               "names the tests that show it",
               msp_fw_label_code(l));
    }
}

/*
 * Clause 6.1.3: a parent is satisfied when all its leaves are (EXAMPLE 2),
 * and the seed's analyses satisfy a parent through its Mandatory children
 * (B.3.3.2: "E.AC.1 is satisfied as E.AC.1.1, E.AC.1.2 and E.AC.1.5 are all
 * satisfied"). So if the children that count are all met, the parent must
 * be met too.
 */
static void check_branch_unmet(msp_fw_profile_t *p, size_t i, int has_mandatory)
{
    const msp_fw_catalog_t *cat = p->cat;
    for (size_t c = i + 1; c < cat->count; c++) {
        const msp_fw_row_t *r = &p->rows[c];
        if (cat->reqs[c].parent == (int)i && (cat->reqs[c].mandatory || !has_mandatory) &&
            (!r->present || msp_fw_row_met(r) != 1)) {
            return;
        }
    }
    fw_add(p, "branch", cat->reqs[i].ref, MSP_FW_ERROR,
           "not met, yet all its %s are met; a parent is satisfied by them (clause 6.1.3)",
           has_mandatory ? "Mandatory children" : "children");
}

/*
 * The other direction: a parent met outright stands for its leaves (clause
 * 6.1.3, EXAMPLE 3), so a Mandatory child marked unmet contradicts it. An
 * Optional child may be left unmet (PNA, PR) under a met parent.
 */
static void check_branch_met(msp_fw_profile_t *p, size_t i)
{
    const msp_fw_catalog_t *cat = p->cat;
    for (size_t c = i + 1; c < cat->count; c++) {
        const msp_fw_row_t *r = &p->rows[c];
        if (cat->reqs[c].parent == (int)i && cat->reqs[c].mandatory && r->present && msp_fw_row_met(r) == 0) {
            fw_add(p, "branch", cat->reqs[i].ref, MSP_FW_ERROR,
                   "met, yet its Mandatory child %s is not met; a satisfied parent stands for its "
                   "leaves (clause 6.1.3), so one of the two is wrong",
                   cat->reqs[c].ref);
        }
    }
}

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
    if (children == 0) {
        return;
    }
    int met = msp_fw_row_met(&p->rows[i]);
    if (met == 0) {
        check_branch_unmet(p, i, has_mandatory);
    } else if (met == 1) {
        check_branch_met(p, i);
    }
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
        check_evidence(p, t, r, l);
    }
    for (size_t e = 0; e < p->nerrata; e++) {
        const msp_fw_clause_erratum_t *c = &p->errata[e];
        if (c->printed != NULL && c->should_be != NULL && c->why != NULL) {
            fw_add(p, "erratum", c->clause, MSP_FW_ERRATUM, "printed \"%s\", should be \"%s\"; %s", c->printed,
                   c->should_be, c->why);
        }
    }
    fw_check_citations(p);
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

int msp_fw_in_series_as_printed(const msp_fw_profile_t *p)
{
    for (size_t i = 0; i < p->cat->count; i++) {
        const msp_fw_row_t *r = &p->rows[i];
        if (p->cat->reqs[i].mandatory && (!r->present || r->met != 1)) {
            return 0;
        }
    }
    return 1;
}

size_t msp_fw_deciding_errata(const msp_fw_profile_t *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->cat->count; i++) {
        const msp_fw_row_t *r = &p->rows[i];
        n += p->cat->reqs[i].mandatory && r->present && (r->met == 1) != (msp_fw_row_met(r) == 1);
    }
    return n;
}

static const struct {
    const char *rule;
    const char *what;
} rules[] = {
    {"format", "The profile is well formed: every template requirement once, known keys, fields of the right type "
               "(clause 6.1.2)."},
    {"label", "A Mandatory template requirement is MM; an Optional one is PM, PO, PNA or PR (clause 6.1.2.3, "
              "Table 6.2)."},
    {"text", "The profile requirement text is the template text with only the change its label allows: PM \"may\" "
             "-> \"shall\", PO \"may\" -> \"should\" (clause 6.1.2.3)."},
    {"text-spacing", "The profile requirement text keeps the template's spacing (words are compared; a spacing change "
                     "is a warning)."},
    {"met", "Met agrees with the label: PM and PO are met, PNA and PR are not (Table 6.2)."},
    {"justification", "The Conformance Analysis justifies every MM, PM and PO requirement (clause 6.1.3)."},
    {"branch", "A parent and its children agree: a parent whose children are met is met, and a met parent has no "
               "unmet Mandatory child (clause 6.1.3)."},
    {"evidence", "A met MM, PM or PO row may name its evidence, CTest tests or cases in them, and must when the "
                 "profile sets evidence_required; no other row lists evidence."},
    {"erratum", "A printed value is corrected by an erratum; the correction decides the verdict."},
    {"citation", "Every threat-model item or assumption (NAME.TM.N, NAME.A.N) the analysis cites is declared in the "
                 "profile (Annex B.2.1)."},
};

const char *msp_fw_rule_describe(const char *rule)
{
    for (size_t i = 0; rule != NULL && i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (strcmp(rules[i].rule, rule) == 0) {
            return rules[i].what;
        }
    }
    return NULL;
}
