#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include "embedded.h"
#include "fw.h"

static const char *const label_codes[] = {"", "MM", "PM", "PO", "PNA", "PR"};
static const char *const label_names[] = {
    "", "MSP-Mandatory", "Profile-Mandatory", "Profile-Optional", "Profile-Not-Applicable", "Profile-Rejected"};

const char *msp_fw_label_code(msp_fw_label_t l)
{
    return (unsigned)l <= MSP_FW_PR ? label_codes[l] : "?";
}

const char *msp_fw_label_name(msp_fw_label_t l)
{
    return (unsigned)l <= MSP_FW_PR ? label_names[l] : "?";
}

msp_fw_label_t msp_fw_row_label(const msp_fw_row_t *r)
{
    return r->fix_label != MSP_FW_NONE ? r->fix_label : r->label;
}

int msp_fw_row_met(const msp_fw_row_t *r)
{
    return r->fix_met >= 0 ? r->fix_met : r->met;
}

const char *msp_fw_row_text(const msp_fw_row_t *r)
{
    return r->fix_text != NULL ? r->fix_text : r->text;
}

__attribute__((format(printf, 5, 0))) static void add_v(msp_fw_profile_t *p, const char *rule, const char *ref,
                                                        msp_fw_severity_t sev, const char *fmt, va_list ap)
{
    if (p->nfindings >= MSP_FW_MAX_FINDINGS) {
        p->dropped_findings++;
        return;
    }
    msp_fw_finding_t *f = &p->findings[p->nfindings++];
    snprintf(f->ref, sizeof(f->ref), "%s", ref);
    f->severity = sev;
    f->rule = rule;
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
}

/* The loader's findings are about the file's shape: rule "format". */
void msp_fw_add_finding(msp_fw_profile_t *p, const char *ref, msp_fw_severity_t sev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_v(p, "format", ref, sev, fmt, ap);
    va_end(ap);
}

void fw_add(msp_fw_profile_t *p, const char *rule, const char *ref, msp_fw_severity_t sev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_v(p, rule, ref, sev, fmt, ap);
    va_end(ap);
}

size_t msp_fw_count(const msp_fw_profile_t *p, msp_fw_severity_t sev)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nfindings; i++) {
        n += p->findings[i].severity == sev;
    }
    /* Dropped findings are counted as errors: the report is incomplete. */
    return n + (sev == MSP_FW_ERROR ? p->dropped_findings : 0);
}

/* ---- field readers: each reports its own problem as a finding ---- */

static int field_once(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *obj, const msp_ucl_t *v)
{
    if (msp_ucl_count_key(obj, v->key) > 1) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "'%s' given more than once (line %u)", v->key, (unsigned)v->line);
        return 0;
    }
    return 1;
}

static const char *get_string(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *obj, const char *key)
{
    const msp_ucl_t *v = msp_ucl_lookup(obj, key);
    if (v == NULL || !field_once(p, ref, obj, v)) {
        return NULL;
    }
    if (v->type != MSP_UCL_STRING) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "'%s' must be a string, not %s (line %u)", key,
                           fw_type_article(v->type), (unsigned)v->line);
        return NULL;
    }
    if (strlen(v->v.str.s) != v->v.str.len) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "'%s' contains a NUL character (line %u)", key, (unsigned)v->line);
        return NULL;
    }
    return v->v.str.s;
}

/* -1: absent or wrong (wrong is reported), else 0/1. */
static int get_bool(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *obj, const char *key)
{
    const msp_ucl_t *v = msp_ucl_lookup(obj, key);
    if (v == NULL || !field_once(p, ref, obj, v)) {
        return -1;
    }
    if (v->type != MSP_UCL_BOOL) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "'%s' must be true or false, not %s (line %u)", key,
                           fw_type_article(v->type), (unsigned)v->line);
        return -1;
    }
    return v->v.b != 0;
}

/* NULL: absent or wrong (wrong is reported). The entries are checked by msp_fw_check (rule "evidence"). */
static const msp_ucl_t *get_array(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *obj, const char *key)
{
    const msp_ucl_t *v = msp_ucl_lookup(obj, key);
    if (v == NULL || !field_once(p, ref, obj, v)) {
        return NULL;
    }
    if (v->type != MSP_UCL_ARRAY) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "'%s' must be a list [ \"...\", ... ], not %s (line %u)", key,
                           fw_type_article(v->type), (unsigned)v->line);
        return NULL;
    }
    return v;
}

static msp_fw_label_t get_label(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *obj, const char *key)
{
    const char *s = get_string(p, ref, obj, key);
    if (s == NULL || s[0] == '\0') {
        return MSP_FW_NONE;
    }
    for (int l = MSP_FW_MM; l <= MSP_FW_PR; l++) {
        if (strcmp(s, label_codes[l]) == 0) {
            return (msp_fw_label_t)l;
        }
    }
    msp_fw_add_finding(p, ref, MSP_FW_ERROR, "'%s' is \"%s\"; it must be one of MM, PM, PO, PNA, PR (line %u)", key, s,
                       (unsigned)msp_ucl_lookup(obj, key)->line);
    return MSP_FW_NONE;
}

/* Reports every key of obj that is not in allowed (a NULL-terminated list). */
static void only_keys(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *obj, const char *const *allowed)
{
    for (const msp_ucl_t *f = obj->v.kids.first; f != NULL; f = f->next) {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], f->key) != 0) {
            i++;
        }
        if (allowed[i] == NULL) {
            msp_fw_add_finding(p, ref, MSP_FW_ERROR, "unknown key '%s' (line %u)", f->key, (unsigned)f->line);
        }
    }
}

static int want_object(msp_fw_profile_t *p, const char *ref, const msp_ucl_t *v)
{
    if (v->type != MSP_UCL_OBJECT) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "'%s' must be a block { ... }, not %s (line %u)", v->key,
                           fw_type_article(v->type), (unsigned)v->line);
        return 0;
    }
    return 1;
}

/* ---- the blocks ---- */

static void read_erratum(msp_fw_profile_t *p, msp_fw_row_t *row, const char *ref, const msp_ucl_t *e)
{
    static const char *const keys[] = {"label", "met", "text", "why", NULL};
    if (!want_object(p, ref, e)) {
        return;
    }
    only_keys(p, ref, e, keys);
    row->has_erratum = 1;
    row->fix_label = get_label(p, ref, e, "label");
    row->fix_met = get_bool(p, ref, e, "met");
    row->fix_text = get_string(p, ref, e, "text");
    row->why = get_string(p, ref, e, "why");
    if (row->why == NULL || row->why[0] == '\0') {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "erratum without 'why' (line %u)", (unsigned)e->line);
    }
    if (row->fix_label == MSP_FW_NONE && row->fix_met < 0 && row->fix_text == NULL) {
        msp_fw_add_finding(p, ref, MSP_FW_ERROR, "erratum corrects nothing: give label, met or text (line %u)",
                           (unsigned)e->line);
    }
}

static void read_requirement(msp_fw_profile_t *p, const msp_ucl_t *r)
{
    static const char *const keys[] = {"label", "met", "text", "justification", "erratum", "evidence", NULL};
    int i = msp_fw_catalog_find(p->cat, r->key);
    if (i < 0) {
        msp_fw_add_finding(p, r->key, MSP_FW_ERROR, "unknown requirement: not in Tables 6.2-6.5 (line %u)",
                           (unsigned)r->line);
        return;
    }
    msp_fw_row_t *row = &p->rows[i];
    if (row->present) {
        msp_fw_add_finding(p, r->key, MSP_FW_ERROR,
                           "labelled twice (lines %u and %u); the Selection Process labels each once (clause 6.1.2)",
                           (unsigned)row->line, (unsigned)r->line);
        return;
    }
    row->present = 1;
    row->line = r->line;
    if (!want_object(p, r->key, r)) {
        return;
    }
    only_keys(p, r->key, r, keys);
    row->label = get_label(p, r->key, r, "label");
    row->met = get_bool(p, r->key, r, "met");
    row->text = get_string(p, r->key, r, "text");
    row->justification = get_string(p, r->key, r, "justification");
    row->evidence = get_array(p, r->key, r, "evidence");
    const msp_ucl_t *e = msp_ucl_lookup(r, "erratum");
    if (e != NULL && field_once(p, r->key, r, e)) {
        read_erratum(p, row, r->key, e);
    }
}

static void read_clause_erratum(msp_fw_profile_t *p, const msp_ucl_t *e)
{
    static const char *const keys[] = {"printed", "should_be", "why", NULL};
    if (!want_object(p, e->key, e)) {
        return;
    }
    only_keys(p, e->key, e, keys);
    msp_fw_clause_erratum_t *c = &p->errata[p->nerrata++];
    c->clause = e->key;
    c->line = e->line;
    c->printed = get_string(p, e->key, e, "printed");
    c->should_be = get_string(p, e->key, e, "should_be");
    c->why = get_string(p, e->key, e, "why");
    if (c->printed == NULL || c->should_be == NULL || c->why == NULL) {
        msp_fw_add_finding(p, e->key, MSP_FW_ERROR, "a clause erratum needs printed, should_be and why (line %u)",
                           (unsigned)e->line);
    }
}

static void read_header(msp_fw_profile_t *p, const msp_ucl_t *h)
{
    static const char *const keys[] = {"name", "title", "source", "annex", "evidence_required", NULL};
    if (!want_object(p, "profile", h)) {
        return;
    }
    only_keys(p, "profile", h, keys);
    p->name = get_string(p, "profile", h, "name");
    p->title = get_string(p, "profile", h, "title");
    p->source = get_string(p, "profile", h, "source");
    p->annex = get_string(p, "profile", h, "annex");
    p->evidence_required = get_bool(p, "profile", h, "evidence_required") == 1;
    if (p->annex != NULL && (strlen(p->annex) != 1 || p->annex[0] < 'A' || p->annex[0] > 'Z')) {
        msp_fw_add_finding(p, "profile", MSP_FW_ERROR, "annex is one capital letter, such as \"B\" (line %u)",
                           (unsigned)msp_ucl_lookup(h, "annex")->line);
        p->annex = NULL;
    }
    if (p->name == NULL || p->name[0] == '\0' ||
        strspn(p->name, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(p->name)) {
        msp_fw_add_finding(p, "profile", MSP_FW_ERROR, "name must be given, in [a-z0-9-] (line %u)", (unsigned)h->line);
        p->name = NULL;
    }
}

static void add_note(msp_fw_profile_t *p, msp_fw_note_kind_t kind, const char *id, const msp_ucl_t *b)
{
    static const char *const keys[] = {"text", NULL};
    if (!want_object(p, "profile", b)) {
        return;
    }
    if (p->nnotes >= MSP_FW_MAX_NOTES) {
        msp_fw_add_finding(p, "profile", MSP_FW_ERROR, "more than %u threat, assumption and stage3 blocks (line %u)",
                           MSP_FW_MAX_NOTES, (unsigned)b->line);
        return;
    }
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strcmp(p->notes[i].id, id) == 0) {
            msp_fw_add_finding(p, "profile", MSP_FW_ERROR, "'%s' defined twice (lines %u and %u)", id,
                               (unsigned)p->notes[i].line, (unsigned)b->line);
            return;
        }
    }
    only_keys(p, id, b, keys);
    msp_fw_note_t *n = &p->notes[p->nnotes++];
    n->kind = kind;
    n->id = id;
    n->line = b->line;
    n->text = get_string(p, id, b, "text");
    if (n->text == NULL || n->text[0] == '\0') {
        msp_fw_add_finding(p, id, MSP_FW_ERROR, "'%s' without text (line %u)", id, (unsigned)b->line);
    }
}

/* threat "ETS.TM.1" { text } and assumption "ETS.A.1" { text } (B.2.1); stage3 { text } (6.1.4). */
static void read_notes(msp_fw_profile_t *p, const msp_ucl_t *t)
{
    if (t->key[0] == 's') {
        add_note(p, MSP_FW_STAGE3, "stage3", t);
        return;
    }
    if (!want_object(p, "profile", t)) {
        return;
    }
    msp_fw_note_kind_t kind = t->key[0] == 't' ? MSP_FW_THREAT : MSP_FW_ASSUMPTION;
    for (const msp_ucl_t *c = t->v.kids.first; c != NULL; c = c->next) {
        if (!fw_note_id_ok(c->key, kind)) {
            msp_fw_add_finding(p, "profile", MSP_FW_ERROR, "%s id '%s' is not of the form %s (line %u)", t->key, c->key,
                               kind == MSP_FW_THREAT ? "NAME.TM.N" : "NAME.A.N", (unsigned)c->line);
            continue;
        }
        add_note(p, kind, c->key, c);
    }
}

/* Top-level blocks appear once each as a key (repeated sections merge), but a
 * repeated non-block key is an implicit array: visit every child. */
static void read_top(msp_fw_profile_t *p, const msp_ucl_t *root)
{
    for (const msp_ucl_t *t = root->v.kids.first; t != NULL; t = t->next) {
        if (strcmp(t->key, "requirement") == 0 || strcmp(t->key, "erratum") == 0) {
            if (!want_object(p, "profile", t)) {
                continue;
            }
            for (const msp_ucl_t *c = t->v.kids.first; c != NULL; c = c->next) {
                if (t->key[0] == 'r') {
                    read_requirement(p, c);
                } else if (p->nerrata < MSP_FW_MAX_FINDINGS) {
                    read_clause_erratum(p, c);
                }
            }
        } else if (strcmp(t->key, "threat") == 0 || strcmp(t->key, "assumption") == 0 ||
                   strcmp(t->key, "stage3") == 0) {
            read_notes(p, t);
        } else if (strcmp(t->key, "profile") == 0) {
            if (field_once(p, "profile", root, t)) {
                read_header(p, t);
            }
        } else {
            msp_fw_add_finding(p, "profile", MSP_FW_ERROR,
                               "unknown top-level key '%s' (line %u); expected profile, requirement, erratum, threat, "
                               "assumption or stage3",
                               t->key, (unsigned)t->line);
        }
    }
}

static void require_all(msp_fw_profile_t *p)
{
    if (p->name == NULL && msp_fw_count(p, MSP_FW_ERROR) == 0) {
        msp_fw_add_finding(p, "profile", MSP_FW_ERROR, "no profile { name = ...; } block");
    }
    for (size_t i = 0; i < p->cat->count; i++) {
        if (!p->rows[i].present) {
            msp_fw_add_finding(p, p->cat->reqs[i].ref, MSP_FW_ERROR,
                               "missing: the Selection Process labels every template requirement (clause 6.1.2)");
        }
    }
}

static int is_empty(const msp_ucl_t *root)
{
    return root->type == MSP_UCL_OBJECT && root->v.kids.count == 0;
}

static void sha256_hex(const char *text, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    out[0] = '\0';
    if (EVP_Digest(text, len, md, &n, EVP_sha256(), NULL) == 1 && n == sizeof(md)) {
        msp_hex(out, md, sizeof(md));
    }
}

const char *msp_fw_catalog_version(void)
{
    return "ETSI TS 103 523-1 V1.1.1";
}

void msp_fw_set_provenance(msp_fw_profile_t *p, const char *msp_version, int64_t unix_time)
{
    snprintf(p->msp_version, sizeof(p->msp_version), "%s", msp_version != NULL ? msp_version : "");
    time_t t = (time_t)unix_time;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(p->date, sizeof(p->date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        p->date[0] = '\0';
    }
}

int msp_fw_profile_parse(const msp_fw_catalog_t *cat, const char *source_name, const char *text, size_t len,
                         msp_fw_profile_t **out, msp_error_t *err)
{
    *out = NULL;
    if (len > FW_MAX_INPUT) {
        return msp_error_set(err, MSP_ERR_LIMIT, "1", "a profile is at most %u bytes", FW_MAX_INPUT);
    }
    msp_fw_profile_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "profile");
    }
    snprintf(p->source_name, sizeof(p->source_name), "%s", source_name);
    p->cat = cat;
    int ret = msp_ucl_parse(text, len, NULL, &p->doc, err);
    if (ret == MSP_OK && is_empty(msp_ucl_root(p->doc))) {
        /* Nothing to check: one line that says so beats 84 "missing" findings. */
        ret = msp_error_set(err, MSP_ERR_INVALID, "1", "empty profile: no profile, requirement or erratum block");
    }
    if (ret != MSP_OK) {
        msp_fw_profile_free(p);
        return ret;
    }
    sha256_hex(text, len, p->sha256);
    p->notes = calloc(MSP_FW_MAX_NOTES, sizeof(*p->notes));
    p->rows = calloc(cat->count, sizeof(*p->rows));
    p->findings = calloc(MSP_FW_MAX_FINDINGS, sizeof(*p->findings));
    p->errata = calloc(MSP_FW_MAX_FINDINGS, sizeof(*p->errata));
    if (p->rows == NULL || p->findings == NULL || p->errata == NULL || p->notes == NULL) {
        msp_fw_profile_free(p);
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "profile");
    }
    for (size_t i = 0; i < cat->count; i++) {
        p->rows[i].met = -1;
        p->rows[i].fix_met = -1;
    }
    const msp_ucl_t *root = msp_ucl_root(p->doc);
    if (root->type != MSP_UCL_OBJECT) {
        msp_fw_add_finding(p, "profile", MSP_FW_ERROR, "the file must hold profile, requirement and erratum blocks");
    } else {
        read_top(p, root);
    }
    require_all(p);
    *out = p;
    return MSP_OK;
}

void msp_fw_ignore_errata(msp_fw_profile_t *p)
{
    for (size_t i = 0; i < p->cat->count; i++) {
        msp_fw_row_t *r = &p->rows[i];
        r->has_erratum = 0;
        r->fix_label = MSP_FW_NONE;
        r->fix_met = -1;
        r->fix_text = NULL;
        r->why = NULL;
    }
    p->nerrata = 0;
    p->errata_ignored = 1;
}

void msp_fw_profile_free(msp_fw_profile_t *p)
{
    if (p == NULL) {
        return;
    }
    free(p->rows);
    free(p->findings);
    free(p->errata);
    free(p->notes);
    msp_ucl_free(p->doc);
    free(p);
}

/* ---- evidence: the entries as written, for msp_fw_check and the readers of a checked profile ---- */

/* The k-th string entry of a row's evidence (NULL past the last): non-strings are skipped, check reports them. */
static const char *evidence_at(const msp_ucl_t *ev, size_t k)
{
    for (const msp_ucl_t *e = ev != NULL ? ev->v.kids.first : NULL; e != NULL; e = e->next) {
        if (e->type == MSP_UCL_STRING && k-- == 0) {
            return e->v.str.s;
        }
    }
    return NULL;
}

size_t msp_fw_evidence_count(const msp_fw_profile_t *p, size_t req_index)
{
    const msp_ucl_t *ev = req_index < p->cat->count ? p->rows[req_index].evidence : NULL;
    size_t n = 0;
    for (const msp_ucl_t *e = ev != NULL ? ev->v.kids.first : NULL; e != NULL; e = e->next) {
        n += e->type == MSP_UCL_STRING;
    }
    return n;
}

const char *msp_fw_evidence(const msp_fw_profile_t *p, size_t req_index, size_t k)
{
    return req_index < p->cat->count ? evidence_at(p->rows[req_index].evidence, k) : NULL;
}

/* ---- loading by name or path ---- */

const char *msp_fw_shipped_name(size_t i)
{
    for (size_t n = 0; msp_fw_profile_data[n].name != NULL; n++) {
        if (n == i) {
            return msp_fw_profile_data[n].name;
        }
    }
    return NULL;
}

static int read_file(const char *path, char **text, size_t *len, msp_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return msp_error_set(err, MSP_ERR_IO, path, "cannot open: %s", strerror(errno));
    }
    char *buf = malloc(FW_MAX_INPUT + 1);
    size_t n = buf != NULL ? fread(buf, 1, FW_MAX_INPUT + 1, f) : 0;
    int bad = buf == NULL || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return msp_error_set(err, buf == NULL ? MSP_ERR_NO_MEMORY : MSP_ERR_IO, path, "cannot read");
    }
    if (n > FW_MAX_INPUT) {
        free(buf);
        return msp_error_set(err, MSP_ERR_LIMIT, path, "larger than %u bytes", FW_MAX_INPUT);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return MSP_OK;
}

static const msp_embedded_t *shipped(const char *name)
{
    for (const msp_embedded_t *e = msp_fw_profile_data; e->name != NULL; e++) {
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }
    return NULL;
}

/* A parse error's where is the line; prefix it with the source for one line of output. */
static int parse_named(const msp_fw_catalog_t *cat, const char *name, const char *text, size_t len,
                       msp_fw_profile_t **out, msp_error_t *err)
{
    int ret = msp_fw_profile_parse(cat, name, text, len, out, err);
    if (ret != MSP_OK && err != NULL) {
        char line[sizeof(err->where)];
        snprintf(line, sizeof(line), "%s", err->where);
        snprintf(err->where, sizeof(err->where), "%.100s:%.40s", name, line);
    }
    return ret;
}

int msp_fw_profile_load(const msp_fw_catalog_t *cat, const char *arg, msp_fw_profile_t **out, msp_error_t *err)
{
    *out = NULL;
    struct stat st;
    size_t alen = strlen(arg);
    int is_path = strchr(arg, '/') != NULL || (alen > 4 && strcmp(arg + alen - 4, ".ucl") == 0) || stat(arg, &st) == 0;
    const msp_embedded_t *e = is_path ? NULL : shipped(arg);
    if (e != NULL) {
        int ret = parse_named(cat, arg, e->data, e->len, out, err);
        if (ret == MSP_OK) {
            (*out)->shipped = 1;
        }
        return ret;
    }
    if (!is_path) {
        return msp_error_set(err, MSP_ERR_NOT_FOUND, arg,
                             "no such file, and not a shipped profile (see 'msp framework list')");
    }
    char *text = NULL;
    size_t len = 0;
    int ret = read_file(arg, &text, &len, err);
    if (ret == MSP_OK) {
        ret = parse_named(cat, arg, text, len, out, err);
        free(text);
    }
    return ret;
}
