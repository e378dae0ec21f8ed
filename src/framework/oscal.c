/*
 * The framework as OSCAL 1.1 JSON (docs/oscal.md): the catalog, a profile's
 * selection, its Conformance Analysis as a component-definition, and a
 * conformance run's verdicts as assessment-results.
 *
 * Reproducible by construction: UUIDs are version 5 (SHA-1 of a fixed
 * namespace and a name made of the ids they stand for), the only time is the
 * one passed in, and the order is the catalog's.
 */
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "fw.h"

/*
 * The namespace of every UUID we derive: 0f3e1d1c-2ae4-5580-a4b6-6259d4417f8e,
 * itself uuid5(NAMESPACE_URL, "urn:msp:oscal"). Never change it: tools key
 * their history on these UUIDs.
 */
static const uint8_t uuid_ns[16] = {0x0f, 0x3e, 0x1d, 0x1c, 0x2a, 0xe4, 0x55, 0x80,
                                    0xa4, 0xb6, 0x62, 0x59, 0xd4, 0x41, 0x7f, 0x8e};

#define UUID_LEN 37

/* The edition of ETSI TS 103 523-1 data/framework/catalog.ucl transcribes. */
#define MSP_FW_OSCAL_TS_EDITION "V1.1.1"

/* RFC 9562 5.5: SHA-1 over namespace || name, version 5, variant 10. */
static void uuid5(char out[UUID_LEN], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void uuid5(char out[UUID_LEN], const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(name) ? (size_t)n : sizeof(name) - 1;
    uint8_t in[16 + sizeof(name)];
    memcpy(in, uuid_ns, 16);
    memcpy(in + 16, name, len);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(in, 16 + len, md, &mdlen, EVP_sha1(), NULL) != 1) {
        memset(md, 0, 16); /* cannot happen with the default provider; still a well-formed UUID */
    }
    md[6] = (uint8_t)((md[6] & 0x0f) | 0x50);
    md[8] = (uint8_t)((md[8] & 0x3f) | 0x80);
    char hex[33];
    msp_hex(hex, md, 16);
    snprintf(out, UUID_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* RFC 3339 in UTC, as OSCAL's date-time-with-timezone wants. */
static void format_time(char out[40], int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;
    snprintf(out, 40, "1970-01-01T00:00:00Z");
    if (gmtime_r(&t, &tm) != NULL) {
        strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
}

static void put_time(msp_json_t *j, int64_t when)
{
    char s[40];
    format_time(s, when);
    msp_json_string(j, s);
}

static void kv(msp_json_t *j, const char *key, const char *value)
{
    msp_json_key(j, key);
    msp_json_string(j, value);
}

/* One property; ours carry our namespace, OSCAL's own (label) none. */
/*
 * A property value is OSCAL's `string`: no leading or trailing whitespace and no line break (^\S(.*\S)?$).
 * Runs of whitespace become one space, the ends are trimmed (an erratum's reason may be written over lines).
 */
static void one_line(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (const char *s = in; *s != '\0' && k + 1 < n; s++) {
        int space = isspace((unsigned char)*s);
        if (!space || (k > 0 && out[k - 1] != ' ')) {
            out[k++] = space ? ' ' : *s;
        }
    }
    while (k > 0 && out[k - 1] == ' ') {
        k--;
    }
    out[k] = '\0';
}

static void prop(msp_json_t *j, const char *name, const char *value, int ours)
{
    char v[FW_ERRATUM_LEN]; /* the longest value is an erratum's description */
    one_line(value, v, sizeof(v));
    msp_json_object_begin(j);
    kv(j, "name", name);
    kv(j, "value", v[0] != '\0' ? v : "-");
    if (ours) {
        kv(j, "ns", MSP_FW_OSCAL_NS);
    }
    msp_json_object_end(j);
}

/* The catalog's version is the edition of the TS it transcribes; a profile's documents are versioned by their time. */
static void metadata(msp_json_t *j, const char *title, const char *version, int64_t when)
{
    char t[40];
    format_time(t, when);
    msp_json_key(j, "metadata");
    msp_json_object_begin(j);
    kv(j, "title", title);
    kv(j, "last-modified", t);
    kv(j, "version", version != NULL ? version : t);
    kv(j, "oscal-version", MSP_FW_OSCAL_VERSION);
    msp_json_object_end(j);
}

/*
 * Opens a document, {"KIND": {"uuid": ..., "metadata": ...; finish() closes it.
 * Its UUID's name is KIND, or KIND/NAME for a profile's documents.
 */
static void document_begin(msp_json_t *j, msp_buf_t *out, const char *kind, const char *name, const char *title,
                           const char *version, int64_t when)
{
    char u[UUID_LEN];
    if (name != NULL) {
        uuid5(u, "%s/%s", kind, name);
    } else {
        uuid5(u, "%s", kind);
    }
    msp_json_init(j, out, 1);
    msp_json_object_begin(j);
    msp_json_key(j, kind);
    msp_json_object_begin(j);
    kv(j, "uuid", u);
    metadata(j, title, version, when);
}

/* A back-matter resource the document points at ("#uuid"): the named file, and how msp writes it. */
typedef struct resource {
    const char *id; /* the UUID's name */
    const char *title;
    const char *how;
    const char *file;
    const char *media;
} resource_t;

static const resource_t catalog_res = {
    "resource/catalog", "ETSI TS 103 523-1 MSP Template Requirements (OSCAL catalog)",
    "msp framework export catalog --format oscal", "msp-catalog.json", "application/oscal.catalog+json"};

static const resource_t plan_res = {"resource/plan", "The assessment plan: the profile's selection (OSCAL profile)",
                                    "msp framework export PROFILE --format oscal --kind profile", "msp-profile.json",
                                    "application/oscal.profile+json"};

static void back_matter(msp_json_t *j, const resource_t *r)
{
    char u[UUID_LEN];
    uuid5(u, "%s", r->id);
    msp_json_key(j, "back-matter");
    msp_json_object_begin(j);
    msp_json_key(j, "resources");
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    kv(j, "uuid", u);
    kv(j, "title", r->title);
    kv(j, "description", r->how);
    msp_json_key(j, "rlinks");
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    kv(j, "href", r->file);
    kv(j, "media-type", r->media);
    msp_json_object_end(j);
    msp_json_array_end(j);
    msp_json_object_end(j);
    msp_json_array_end(j);
    msp_json_object_end(j);
}

static void resource_href(msp_json_t *j, const char *key, const resource_t *r)
{
    char u[UUID_LEN], href[UUID_LEN + 1];
    uuid5(u, "%s", r->id);
    snprintf(href, sizeof(href), "#%s", u);
    kv(j, key, href);
}

/* Closes what document_begin() opened. */
static int finish(msp_json_t *j, msp_buf_t *out)
{
    msp_json_object_end(j);
    msp_json_object_end(j);
    int rc = msp_json_finish(j);
    return rc != MSP_OK ? rc : msp_buf_error(out);
}

/* ---- catalog ---------------------------------------------------------- */

static void statement_part(msp_json_t *j, const char *ref, const char *prose)
{
    char id[FW_MAX_REF + 8];
    snprintf(id, sizeof(id), "%s_smt", ref);
    msp_json_object_begin(j);
    kv(j, "id", id);
    kv(j, "name", "statement");
    kv(j, "prose", prose);
    msp_json_object_end(j);
}

static void control(msp_json_t *j, const msp_fw_catalog_t *cat, size_t i)
{
    const msp_fw_template_t *t = &cat->reqs[i];
    msp_json_object_begin(j);
    kv(j, "id", t->ref);
    kv(j, "class", "template-requirement");
    kv(j, "title", t->ref);
    msp_json_key(j, "props");
    msp_json_array_begin(j);
    prop(j, "label", t->ref, 0);
    prop(j, "obligation", t->mandatory ? "mandatory" : "optional", 1);
    prop(j, "role", t->middlebox ? "middlebox" : "endpoint", 1);
    msp_json_array_end(j);
    msp_json_key(j, "parts");
    msp_json_array_begin(j);
    statement_part(j, t->ref, t->text);
    msp_json_array_end(j);
    int children = 0;
    for (size_t k = i + 1; k < cat->count; k++) {
        if (cat->reqs[k].parent != (int)i) {
            continue;
        }
        if (!children++) {
            msp_json_key(j, "controls");
            msp_json_array_begin(j);
        }
        control(j, cat, k);
    }
    if (children) {
        msp_json_array_end(j);
    }
    msp_json_object_end(j);
}

static void role_group(msp_json_t *j, const msp_fw_catalog_t *cat, msp_fw_principle_t pr, int middlebox)
{
    char id[16], title[64];
    snprintf(id, sizeof(id), "%s-%s", msp_fw_principle_code(pr), middlebox ? "M" : "E");
    snprintf(title, sizeof(title), "%s: %s requirements", msp_fw_principle_name(pr),
             middlebox ? "middlebox" : "endpoint");
    msp_json_object_begin(j);
    kv(j, "id", id);
    kv(j, "class", "role");
    kv(j, "title", title);
    msp_json_key(j, "controls");
    msp_json_array_begin(j);
    for (size_t i = 0; i < cat->count; i++) {
        const msp_fw_template_t *t = &cat->reqs[i];
        if (t->parent < 0 && t->principle == pr && t->middlebox == middlebox) {
            control(j, cat, i);
        }
    }
    msp_json_array_end(j);
    msp_json_object_end(j);
}

static int has_role(const msp_fw_catalog_t *cat, msp_fw_principle_t pr, int middlebox)
{
    for (size_t i = 0; i < cat->count; i++) {
        if (cat->reqs[i].principle == pr && cat->reqs[i].middlebox == middlebox) {
            return 1;
        }
    }
    return 0;
}

static void principle_group(msp_json_t *j, const msp_fw_catalog_t *cat, msp_fw_principle_t pr)
{
    char table[16];
    snprintf(table, sizeof(table), "6.%d", (int)pr + 2);
    msp_json_object_begin(j);
    kv(j, "id", msp_fw_principle_code(pr));
    kv(j, "class", "principle");
    kv(j, "title", msp_fw_principle_name(pr));
    msp_json_key(j, "props");
    msp_json_array_begin(j);
    prop(j, "table", table, 1);
    msp_json_array_end(j);
    msp_json_key(j, "groups");
    msp_json_array_begin(j);
    for (int mb = 0; mb <= 1; mb++) {
        if (has_role(cat, pr, mb)) {
            role_group(j, cat, pr, mb);
        }
    }
    msp_json_array_end(j);
    msp_json_object_end(j);
}

int msp_fw_oscal_catalog(const msp_fw_catalog_t *cat, int64_t when, msp_buf_t *out)
{
    msp_json_t j;
    document_begin(&j, out, "catalog", NULL, "ETSI TS 103 523-1 MSP Template Requirements (Tables 6.2-6.5)",
                   MSP_FW_OSCAL_TS_EDITION, when);
    msp_json_key(&j, "groups");
    msp_json_array_begin(&j);
    for (int pr = 0; pr < MSP_FW_PRINCIPLES; pr++) {
        principle_group(&j, cat, (msp_fw_principle_t)pr);
    }
    msp_json_array_end(&j);
    return finish(&j, out);
}

/* ---- profile ---------------------------------------------------------- */

static int selected(msp_fw_label_t l)
{
    return l == MSP_FW_MM || l == MSP_FW_PM || l == MSP_FW_PO;
}

static const char *title_of(const msp_fw_profile_t *p)
{
    return p->title != NULL ? p->title : p->name != NULL ? p->name : p->source_name;
}

static const char *name_of(const msp_fw_profile_t *p)
{
    return p->name != NULL ? p->name : p->source_name;
}

static const char *change_name(msp_fw_textdiff_t d)
{
    return d == MSP_FW_TEXT_MAY_SHALL ? "may-shall" : d == MSP_FW_TEXT_MAY_SHOULD ? "may-should" : "other";
}

/* The profile's row text against the template's; SAME when it gives none. */
static msp_fw_textdiff_t text_change(const msp_fw_profile_t *p, size_t i)
{
    const char *text = msp_fw_row_text(&p->rows[i]);
    if (text == NULL) {
        return MSP_FW_TEXT_SAME;
    }
    return msp_fw_text_diff(p->cat->reqs[i].text, text, NULL, NULL, 0);
}

static void alter(msp_json_t *j, const msp_fw_profile_t *p, size_t i)
{
    const char *ref = p->cat->reqs[i].ref;
    msp_fw_textdiff_t d = text_change(p, i);
    char smt[FW_MAX_REF + 8];
    snprintf(smt, sizeof(smt), "%s_smt", ref);
    msp_json_object_begin(j);
    kv(j, "control-id", ref);
    if (d != MSP_FW_TEXT_SAME) {
        msp_json_key(j, "removes");
        msp_json_array_begin(j);
        msp_json_object_begin(j);
        kv(j, "by-id", smt);
        msp_json_object_end(j);
        msp_json_array_end(j);
    }
    msp_json_key(j, "adds");
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    kv(j, "position", "ending");
    msp_json_key(j, "props");
    msp_json_array_begin(j);
    prop(j, "profile-label", msp_fw_label_code(msp_fw_row_label(&p->rows[i])), 1);
    if (d != MSP_FW_TEXT_SAME) {
        prop(j, "text-change", change_name(d), 1);
    }
    msp_json_array_end(j);
    if (d != MSP_FW_TEXT_SAME) {
        msp_json_key(j, "parts");
        msp_json_array_begin(j);
        statement_part(j, ref, msp_fw_row_text(&p->rows[i]));
        msp_json_array_end(j);
    }
    msp_json_object_end(j);
    msp_json_array_end(j);
    msp_json_object_end(j);
}

/* The one import: the catalog, and by id the requirements the profile selects. */
static void imports(msp_json_t *j, const msp_fw_profile_t *p)
{
    msp_json_key(j, "imports");
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    resource_href(j, "href", &catalog_res);
    msp_json_key(j, "include-controls");
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    msp_json_key(j, "with-ids");
    msp_json_array_begin(j);
    for (size_t i = 0; i < p->cat->count; i++) {
        if (selected(msp_fw_row_label(&p->rows[i]))) {
            msp_json_string(j, p->cat->reqs[i].ref);
        }
    }
    msp_json_array_end(j);
    msp_json_object_end(j);
    msp_json_array_end(j);
    msp_json_object_end(j);
    msp_json_array_end(j);
}

int msp_fw_oscal_profile(const msp_fw_profile_t *p, int64_t when, msp_buf_t *out)
{
    msp_json_t j;
    document_begin(&j, out, "profile", name_of(p), title_of(p), NULL, when);
    imports(&j, p);
    msp_json_key(&j, "merge");
    msp_json_object_begin(&j);
    msp_json_key(&j, "as-is");
    msp_json_bool(&j, 1);
    msp_json_object_end(&j);
    msp_json_key(&j, "modify");
    msp_json_object_begin(&j);
    msp_json_key(&j, "alters");
    msp_json_array_begin(&j);
    for (size_t i = 0; i < p->cat->count; i++) {
        if (selected(msp_fw_row_label(&p->rows[i]))) {
            alter(&j, p, i);
        }
    }
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    back_matter(&j, &catalog_res);
    return finish(&j, out);
}

/* ---- component-definition --------------------------------------------- */

static void implemented(msp_json_t *j, const msp_fw_profile_t *p, size_t i)
{
    const msp_fw_row_t *r = &p->rows[i];
    const char *ref = p->cat->reqs[i].ref;
    msp_fw_label_t l = msp_fw_row_label(r);
    int met = msp_fw_row_met(r);
    char u[UUID_LEN];
    uuid5(u, "component/%s/%s", name_of(p), ref);
    msp_json_object_begin(j);
    kv(j, "uuid", u);
    kv(j, "control-id", ref);
    kv(j, "description", r->justification != NULL ? r->justification : "No justification given.");
    msp_json_key(j, "props");
    msp_json_array_begin(j);
    if (l != MSP_FW_NONE) {
        prop(j, "profile-label", msp_fw_label_code(l), 1);
    }
    if (met >= 0) {
        prop(j, "met", met ? "yes" : "no", 1);
    }
    if (r->has_erratum && !p->errata_ignored) {
        char why[FW_ERRATUM_LEN];
        fw_describe_erratum(r, why, sizeof(why));
        prop(j, "erratum", why, 1);
    }
    msp_json_array_end(j);
    msp_json_object_end(j);
}

static void control_implementation(msp_json_t *j, const msp_fw_profile_t *p)
{
    char u[UUID_LEN], desc[256];
    uuid5(u, "component/%s/implementation", name_of(p));
    snprintf(desc, sizeof(desc), "The Conformance Analysis of %s (ETSI TS 103 523-1 clause 6.1).", title_of(p));
    msp_json_object_begin(j);
    kv(j, "uuid", u);
    resource_href(j, "source", &catalog_res);
    kv(j, "description", desc);
    msp_json_key(j, "props");
    msp_json_array_begin(j);
    prop(j, "msp-series", (p->errata_ignored ? msp_fw_in_series_as_printed(p) : msp_fw_in_series(p)) ? "yes" : "no", 1);
    prop(j, "errata", p->errata_ignored ? "ignored" : "applied", 1);
    msp_json_array_end(j);
    msp_json_key(j, "implemented-requirements");
    msp_json_array_begin(j);
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->rows[i].present) {
            implemented(j, p, i);
        }
    }
    msp_json_array_end(j);
    msp_json_object_end(j);
}

int msp_fw_oscal_component(const msp_fw_profile_t *p, int64_t when, msp_buf_t *out)
{
    msp_json_t j;
    char u[UUID_LEN], title[256];
    snprintf(title, sizeof(title), "%s: Conformance Analysis", title_of(p));
    document_begin(&j, out, "component-definition", name_of(p), title, NULL, when);
    msp_json_key(&j, "components");
    msp_json_array_begin(&j);
    msp_json_object_begin(&j);
    uuid5(u, "component/%s", name_of(p));
    kv(&j, "uuid", u);
    kv(&j, "type", "software");
    kv(&j, "title", title_of(p));
    kv(&j, "description", p->source != NULL ? p->source : title_of(p));
    msp_json_key(&j, "control-implementations");
    msp_json_array_begin(&j);
    control_implementation(&j, p);
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    msp_json_array_end(&j);
    back_matter(&j, &catalog_res);
    return finish(&j, out);
}

/* ---- assessment-results ----------------------------------------------- */

static void observations(msp_json_t *j, const msp_fw_profile_t *p, const msp_fw_verdict_t *v, size_t n, int64_t end)
{
    msp_json_key(j, "observations");
    msp_json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        for (size_t e = 0; e < v[i].nevidence; e++) {
            char u[UUID_LEN];
            uuid5(u, "results/%s/%s/%zu", name_of(p), v[i].ref, e);
            msp_json_object_begin(j);
            kv(j, "uuid", u);
            kv(j, "title", v[i].ref);
            kv(j, "description", v[i].evidence[e].description != NULL ? v[i].evidence[e].description : v[i].ref);
            msp_json_key(j, "props");
            msp_json_array_begin(j);
            prop(j, "result", v[i].evidence[e].pass ? "pass" : "fail", 1);
            msp_json_array_end(j);
            msp_json_key(j, "methods");
            msp_json_array_begin(j);
            msp_json_string(j, "TEST");
            msp_json_array_end(j);
            msp_json_key(j, "collected");
            put_time(j, end);
            msp_json_object_end(j);
        }
    }
    msp_json_array_end(j);
}

static void finding(msp_json_t *j, const msp_fw_profile_t *p, const msp_fw_verdict_t *v)
{
    static const char *const said[] = {"satisfied", "not satisfied", "not decided"};
    char u[UUID_LEN], smt[FW_MAX_REF + 8], desc[160];
    uuid5(u, "results/%s/%s", name_of(p), v->ref);
    snprintf(smt, sizeof(smt), "%s_smt", v->ref);
    snprintf(desc, sizeof(desc), "%s: %s (%zu piece%s of evidence).", v->ref, said[v->state], v->nevidence,
             v->nevidence == 1 ? "" : "s");
    msp_json_object_begin(j);
    kv(j, "uuid", u);
    kv(j, "title", v->ref);
    kv(j, "description", desc);
    msp_json_key(j, "target");
    msp_json_object_begin(j);
    kv(j, "type", "statement-id");
    kv(j, "target-id", smt);
    msp_json_key(j, "status");
    msp_json_object_begin(j);
    kv(j, "state", v->state == MSP_FW_VERDICT_PASS ? "satisfied" : "not-satisfied");
    kv(j, "reason", v->state == MSP_FW_VERDICT_PASS ? "pass" : v->state == MSP_FW_VERDICT_FAIL ? "fail" : "other");
    msp_json_object_end(j);
    msp_json_object_end(j);
    if (v->nevidence > 0) {
        msp_json_key(j, "related-observations");
        msp_json_array_begin(j);
        for (size_t e = 0; e < v->nevidence; e++) {
            uuid5(u, "results/%s/%s/%zu", name_of(p), v->ref, e);
            msp_json_object_begin(j);
            kv(j, "observation-uuid", u);
            msp_json_object_end(j);
        }
        msp_json_array_end(j);
    }
    msp_json_object_end(j);
}

static void result(msp_json_t *j, const msp_fw_profile_t *p, const msp_fw_verdict_t *v, size_t n, int64_t start,
                   int64_t end)
{
    char u[UUID_LEN], desc[256];
    uuid5(u, "results/%s", name_of(p));
    snprintf(desc, sizeof(desc), "A conformance run against %s: a finding per requirement tested.", title_of(p));
    msp_json_object_begin(j);
    kv(j, "uuid", u);
    kv(j, "title", title_of(p));
    kv(j, "description", desc);
    msp_json_key(j, "start");
    put_time(j, start);
    msp_json_key(j, "end");
    put_time(j, end);
    msp_json_key(j, "reviewed-controls");
    msp_json_object_begin(j);
    msp_json_key(j, "control-selections");
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    msp_json_key(j, "include-controls");
    msp_json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        msp_json_object_begin(j);
        kv(j, "control-id", v[i].ref);
        msp_json_object_end(j);
    }
    msp_json_array_end(j);
    msp_json_object_end(j);
    msp_json_array_end(j);
    msp_json_object_end(j);
    size_t nev = 0;
    for (size_t i = 0; i < n; i++) {
        nev += v[i].nevidence;
    }
    if (nev > 0) { /* an empty list is not valid OSCAL: none when no verdict has evidence */
        observations(j, p, v, n, end);
    }
    if (n > 0) {
        msp_json_key(j, "findings");
        msp_json_array_begin(j);
        for (size_t i = 0; i < n; i++) {
            finding(j, p, &v[i]);
        }
        msp_json_array_end(j);
    }
    msp_json_object_end(j);
}

int msp_fw_oscal_results(const msp_fw_profile_t *p, const msp_fw_verdict_t *v, size_t n, int64_t start, int64_t end,
                         msp_buf_t *out, msp_error_t *err)
{
    if (n == 0) { /* the reviewed controls would be an empty list, which OSCAL does not allow */
        return msp_error_set(err, MSP_ERR_INVALID, "verdicts", "no verdict to report");
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].ref == NULL || msp_fw_catalog_find(p->cat, v[i].ref) < 0 ||
            (unsigned)v[i].state > MSP_FW_VERDICT_OTHER || (v[i].nevidence > 0 && v[i].evidence == NULL)) {
            return msp_error_set(err, MSP_ERR_INVALID, v[i].ref != NULL ? v[i].ref : "verdict",
                                 "not a requirement of the catalog, or an unusable verdict");
        }
        /* one finding per requirement: a second would share its UUIDs */
        for (size_t k = 0; k < i; k++) {
            if (strcmp(v[k].ref, v[i].ref) == 0) {
                return msp_error_set(err, MSP_ERR_INVALID, v[i].ref, "two verdicts on one requirement");
            }
        }
    }
    msp_json_t j;
    char title[256];
    snprintf(title, sizeof(title), "%s: conformance results", title_of(p));
    document_begin(&j, out, "assessment-results", name_of(p), title, NULL, end);
    msp_json_key(&j, "import-ap");
    msp_json_object_begin(&j);
    resource_href(&j, "href", &plan_res);
    msp_json_object_end(&j);
    msp_json_key(&j, "results");
    msp_json_array_begin(&j);
    result(&j, p, v, n, start, end);
    msp_json_array_end(&j);
    back_matter(&j, &plan_res);
    return finish(&j, out);
}
