/*
 * diff: what changed between two versions of a profile, for review: per
 * requirement its label, met, text and justification as printed, its
 * erratum and its evidence; then the threat model, assumptions and Stage 3
 * notes. Values are compared as written, errata aside (an erratum is a
 * field of its own).
 */
#include <stdio.h>
#include <string.h>

#include "fw.h"

typedef struct diff_out {
    msp_fw_format_t fmt;
    msp_buf_t *b;
    msp_json_t j;
    size_t n;
} diff_out_t;

static const char *or_none(const char *s)
{
    return s != NULL ? s : "(none)";
}

static void emit(diff_out_t *d, const char *ref, const char *field, const char *old_v, const char *new_v)
{
    d->n++;
    if (d->fmt == MSP_FW_JSON) {
        msp_json_object_begin(&d->j);
        msp_json_key(&d->j, "ref");
        msp_json_string(&d->j, ref);
        msp_json_key(&d->j, "field");
        msp_json_string(&d->j, field);
        msp_json_key(&d->j, "old");
        old_v != NULL ? msp_json_string(&d->j, old_v) : msp_json_null(&d->j);
        msp_json_key(&d->j, "new");
        new_v != NULL ? msp_json_string(&d->j, new_v) : msp_json_null(&d->j);
        msp_json_object_end(&d->j);
    } else if (d->fmt == MSP_FW_MD) {
        msp_buf_printf(d->b, "| %s | %s | ", ref, field);
        fw_put_md(d->b, or_none(old_v));
        msp_buf_puts(d->b, " | ");
        fw_put_md(d->b, or_none(new_v));
        msp_buf_puts(d->b, " |\n");
    } else {
        msp_buf_printf(d->b, "%s: %s:\n  - %s\n  + %s\n", ref, field, or_none(old_v), or_none(new_v));
    }
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void field(diff_out_t *d, const char *ref, const char *name, const char *a, const char *b)
{
    if (!same(a, b)) {
        emit(d, ref, name, a, b);
    }
}

static const char *met_word(int met)
{
    return met < 0 ? NULL : met ? "true" : "false";
}

static const char *label_word(msp_fw_label_t l)
{
    return l == MSP_FW_NONE ? NULL : msp_fw_label_code(l);
}

static void erratum_text(const msp_fw_row_t *r, char *out, size_t n)
{
    out[0] = '\0';
    if (r->has_erratum) {
        fw_describe_erratum(r, out, n);
    }
}

static void diff_row(diff_out_t *d, const msp_fw_profile_t *a, const msp_fw_profile_t *b, size_t i)
{
    const char *ref = a->cat->reqs[i].ref;
    const msp_fw_row_t *x = &a->rows[i], *y = &b->rows[i];
    if (x->present != y->present) {
        emit(d, ref, "requirement", x->present ? "present" : NULL, y->present ? "present" : NULL);
        return;
    }
    field(d, ref, "label", label_word(x->label), label_word(y->label));
    field(d, ref, "met", met_word(x->met), met_word(y->met));
    field(d, ref, "text", x->text, y->text);
    field(d, ref, "justification", x->justification, y->justification);
    char ea[FW_ERRATUM_LEN], eb[FW_ERRATUM_LEN];
    erratum_text(x, ea, sizeof(ea));
    erratum_text(y, eb, sizeof(eb));
    field(d, ref, "erratum", ea[0] ? ea : NULL, eb[0] ? eb : NULL);
    msp_buf_t va, vb;
    const char *ov = fw_evidence_join(a, i, &va) == MSP_OK ? (const char *)va.base : "";
    const char *nv = fw_evidence_join(b, i, &vb) == MSP_OK ? (const char *)vb.base : "";
    field(d, ref, "evidence", ov[0] ? ov : NULL, nv[0] ? nv : NULL);
    msp_buf_free(&va);
    msp_buf_free(&vb);
}

static const msp_fw_note_t *note(const msp_fw_profile_t *p, const char *id)
{
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strcmp(p->notes[i].id, id) == 0) {
            return &p->notes[i];
        }
    }
    return NULL;
}

/* Notes in old's order (changed or removed), then those only new has. */
static void diff_notes(diff_out_t *d, const msp_fw_profile_t *a, const msp_fw_profile_t *b)
{
    for (size_t i = 0; i < a->nnotes; i++) {
        const msp_fw_note_t *y = note(b, a->notes[i].id);
        field(d, a->notes[i].id, "text", a->notes[i].text, y != NULL ? y->text : NULL);
    }
    for (size_t i = 0; i < b->nnotes; i++) {
        if (note(a, b->notes[i].id) == NULL) {
            emit(d, b->notes[i].id, "text", NULL, b->notes[i].text);
        }
    }
}

static void clause_errata(diff_out_t *d, const msp_fw_profile_t *a, const msp_fw_profile_t *b)
{
    for (size_t i = 0; i < a->nerrata; i++) {
        const char *now = NULL;
        for (size_t k = 0; k < b->nerrata; k++) {
            now = strcmp(b->errata[k].clause, a->errata[i].clause) == 0 ? b->errata[k].should_be : now;
        }
        field(d, a->errata[i].clause, "erratum", a->errata[i].should_be, now);
    }
    for (size_t k = 0; k < b->nerrata; k++) {
        int known = 0;
        for (size_t i = 0; i < a->nerrata; i++) {
            known |= strcmp(b->errata[k].clause, a->errata[i].clause) == 0;
        }
        if (!known) {
            emit(d, b->errata[k].clause, "erratum", NULL, b->errata[k].should_be);
        }
    }
}

static void head(diff_out_t *d, const msp_fw_profile_t *a, const msp_fw_profile_t *b)
{
    if (d->fmt == MSP_FW_JSON) {
        msp_json_init(&d->j, d->b, 1);
        msp_json_object_begin(&d->j);
        msp_json_key(&d->j, "old");
        msp_json_object_begin(&d->j);
        fw_json_provenance(a, &d->j);
        msp_json_object_end(&d->j);
        msp_json_key(&d->j, "new");
        msp_json_object_begin(&d->j);
        fw_json_provenance(b, &d->j);
        msp_json_object_end(&d->j);
        msp_json_key(&d->j, "changes");
        msp_json_array_begin(&d->j);
        return;
    }
    const char *pre = d->fmt == MSP_FW_MD ? "- " : "";
    msp_buf_printf(d->b, "%s%sold: ", d->fmt == MSP_FW_MD ? "# Profile changes\n\n" : "", pre);
    fw_provenance(a, d->fmt, d->b);
    msp_buf_printf(d->b, "\n%snew: ", pre);
    fw_provenance(b, d->fmt, d->b);
    msp_buf_puts(d->b, d->fmt == MSP_FW_MD ? "\n\n| Ref | Field | Old | New |\n|---|---|---|---|\n" : "\n\n");
}

static void tail(diff_out_t *d)
{
    if (d->fmt == MSP_FW_JSON) {
        msp_json_array_end(&d->j);
        msp_json_key(&d->j, "count");
        msp_json_int(&d->j, (int64_t)d->n);
        msp_json_object_end(&d->j);
        msp_json_finish(&d->j);
        return;
    }
    msp_buf_printf(d->b, "%s%zu change%s\n", d->fmt == MSP_FW_MD ? "\n" : "", d->n, d->n == 1 ? "" : "s");
}

int msp_fw_render_diff(const msp_fw_profile_t *old_p, const msp_fw_profile_t *new_p, msp_fw_format_t fmt,
                       msp_buf_t *out, size_t *changes)
{
    if ((fmt != MSP_FW_TEXT && fmt != MSP_FW_MD && fmt != MSP_FW_JSON) || old_p->cat != new_p->cat) {
        return MSP_ERR_ARGUMENT;
    }
    diff_out_t d = {.fmt = fmt, .b = out};
    head(&d, old_p, new_p);
    field(&d, "profile", "name", old_p->name, new_p->name);
    field(&d, "profile", "title", old_p->title, new_p->title);
    field(&d, "profile", "source", old_p->source, new_p->source);
    for (size_t i = 0; i < old_p->cat->count; i++) {
        diff_row(&d, old_p, new_p, i);
    }
    clause_errata(&d, old_p, new_p);
    diff_notes(&d, old_p, new_p);
    tail(&d);
    if (changes != NULL) {
        *changes = d.n;
    }
    return msp_buf_error(out);
}
