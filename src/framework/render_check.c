/* What `check` prints: the finding lines and verdicts, one JSON document, or a SARIF 2.1.0 log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw.h"

/* The rules a finding can name, in the order SARIF lists them (ruleIndex). */
static const char *const rule_ids[] = {"format", "label",         "text",   "text-spacing",
                                       "met",    "justification", "branch", "erratum"};
#define NRULES (sizeof(rule_ids) / sizeof(rule_ids[0]))

uint32_t fw_finding_line(const msp_fw_profile_t *p, const msp_fw_finding_t *f)
{
    /* The loader's messages end in "(line N)", which is more precise than the block. */
    const char *l = strstr(f->message, "(line ");
    if (l != NULL) {
        unsigned long n = strtoul(l + 6, NULL, 10);
        if (n > 0 && n <= UINT32_MAX) {
            return (uint32_t)n;
        }
    }
    int i = msp_fw_catalog_find(p->cat, f->ref);
    if (i >= 0 && p->rows[i].present) {
        return p->rows[i].line;
    }
    for (size_t e = 0; e < p->nerrata; e++) {
        if (strcmp(p->errata[e].clause, f->ref) == 0) {
            return p->errata[e].line;
        }
    }
    return 0;
}

/* ---- text: today's lines, then the verdicts of a profile without errors ---- */

static void render_text(const msp_fw_profile_t *const *ps, size_t n, msp_buf_t *b)
{
    for (size_t k = 0; k < n; k++) {
        msp_fw_render_findings(ps[k], b);
        if (msp_fw_count(ps[k], MSP_FW_ERROR) == 0) {
            char prefix[160];
            snprintf(prefix, sizeof(prefix), "%s: ", ps[k]->source_name);
            msp_fw_render_verdicts(ps[k], prefix, b);
        }
    }
}

/* ---- json ---- */

static void json_findings(const msp_fw_profile_t *p, msp_json_t *j)
{
    msp_json_array_begin(j);
    for (size_t i = 0; i < p->nfindings; i++) {
        const msp_fw_finding_t *f = &p->findings[i];
        msp_json_object_begin(j);
        msp_json_key(j, "ref");
        msp_json_string(j, f->ref);
        msp_json_key(j, "severity");
        msp_json_string(j, fw_severity_name(f->severity));
        msp_json_key(j, "rule");
        msp_json_string(j, f->rule);
        msp_json_key(j, "line");
        msp_json_int(j, fw_finding_line(p, f));
        msp_json_key(j, "message");
        msp_json_string(j, f->message);
        msp_json_object_end(j);
    }
    msp_json_array_end(j);
}

/* A profile with errors has no verdict: its values cannot be trusted. */
static void json_verdict_or_null(const msp_fw_profile_t *p, msp_json_t *j)
{
    msp_json_key(j, "verdict");
    if (msp_fw_count(p, MSP_FW_ERROR) == 0) {
        fw_json_verdict(p, j);
    } else {
        msp_json_null(j);
    }
}

static void render_json(const msp_fw_profile_t *const *ps, size_t n, msp_buf_t *b)
{
    msp_json_t j;
    msp_json_init(&j, b, 1);
    msp_json_object_begin(&j);
    msp_json_key(&j, "profiles");
    msp_json_array_begin(&j);
    for (size_t k = 0; k < n; k++) {
        const msp_fw_profile_t *p = ps[k];
        msp_json_object_begin(&j);
        msp_json_key(&j, "source");
        msp_json_string(&j, p->source_name);
        msp_json_key(&j, "profile");
        msp_json_string(&j, p->name);
        msp_json_key(&j, "errors");
        msp_json_int(&j, (int64_t)msp_fw_count(p, MSP_FW_ERROR));
        msp_json_key(&j, "warnings");
        msp_json_int(&j, (int64_t)msp_fw_count(p, MSP_FW_WARNING));
        msp_json_key(&j, "errata");
        msp_json_int(&j, (int64_t)msp_fw_count(p, MSP_FW_ERRATUM));
        msp_json_key(&j, "findings");
        json_findings(p, &j);
        msp_json_key(&j, "findings_not_shown");
        msp_json_int(&j, (int64_t)p->dropped_findings);
        json_verdict_or_null(p, &j);
        msp_json_object_end(&j);
    }
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    msp_json_finish(&j);
}

/* ---- SARIF 2.1.0 ---- */

/* The artifact a profile came from as a URI reference: shipped profiles by their path in the source tree. */
static void artifact_uri(const msp_fw_profile_t *p, char *out, size_t n)
{
    char path[192];
    if (p->shipped) {
        snprintf(path, sizeof(path), "data/framework/profiles/%s.ucl", p->source_name);
    } else {
        snprintf(path, sizeof(path), "%s", p->source_name);
    }
    msp_buf_t b;
    msp_buf_init_fixed(&b, out, n);
    if (path[0] == '/') {
        msp_buf_puts(&b, "file://");
    }
    for (const char *s = path; *s != '\0'; s++) {
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/", *s) != NULL) {
            msp_buf_put_u8(&b, (uint8_t)*s);
        } else {
            msp_buf_printf(&b, "%%%02X", (unsigned)(unsigned char)*s);
        }
    }
    out[b.len < n ? b.len : n - 1] = '\0';
}

static size_t rule_index(const char *rule)
{
    for (size_t i = 0; i < NRULES; i++) {
        if (rule != NULL && strcmp(rule_ids[i], rule) == 0) {
            return i;
        }
    }
    return 0;
}

static void sarif_rules(msp_json_t *j)
{
    msp_json_array_begin(j);
    for (size_t i = 0; i < NRULES; i++) {
        msp_json_object_begin(j);
        msp_json_key(j, "id");
        msp_json_string(j, rule_ids[i]);
        msp_json_key(j, "shortDescription");
        msp_json_object_begin(j);
        msp_json_key(j, "text");
        msp_json_string(j, msp_fw_rule_describe(rule_ids[i]));
        msp_json_object_end(j);
        msp_json_object_end(j);
    }
    msp_json_array_end(j);
}

static void sarif_location(const msp_fw_profile_t *p, const msp_fw_finding_t *f, msp_json_t *j)
{
    char uri[600];
    artifact_uri(p, uri, sizeof(uri));
    uint32_t line = fw_finding_line(p, f);
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    msp_json_key(j, "physicalLocation");
    msp_json_object_begin(j);
    msp_json_key(j, "artifactLocation");
    msp_json_object_begin(j);
    msp_json_key(j, "uri");
    msp_json_string(j, uri);
    msp_json_object_end(j);
    if (line > 0) {
        msp_json_key(j, "region");
        msp_json_object_begin(j);
        msp_json_key(j, "startLine");
        msp_json_int(j, line);
        msp_json_object_end(j);
    }
    msp_json_object_end(j);
    msp_json_key(j, "logicalLocations");
    msp_json_array_begin(j);
    msp_json_object_begin(j);
    msp_json_key(j, "name");
    msp_json_string(j, f->ref);
    msp_json_object_end(j);
    msp_json_array_end(j);
    msp_json_object_end(j);
    msp_json_array_end(j);
}

static void sarif_result(const msp_fw_profile_t *p, const msp_fw_finding_t *f, msp_json_t *j)
{
    static const char *const levels[] = {"error", "warning", "note"};
    msp_json_object_begin(j);
    msp_json_key(j, "ruleId");
    msp_json_string(j, rule_ids[rule_index(f->rule)]);
    msp_json_key(j, "ruleIndex");
    msp_json_int(j, (int64_t)rule_index(f->rule));
    msp_json_key(j, "level");
    msp_json_string(j, (unsigned)f->severity <= MSP_FW_ERRATUM ? levels[f->severity] : "error");
    msp_json_key(j, "message");
    msp_json_object_begin(j);
    msp_json_key(j, "text");
    char text[sizeof(f->message) + 64];
    snprintf(text, sizeof(text), "%s: %s", f->ref, f->message);
    msp_json_string(j, text);
    msp_json_object_end(j);
    msp_json_key(j, "locations");
    sarif_location(p, f, j);
    msp_json_object_end(j);
}

static void sarif_verdicts(const msp_fw_profile_t *const *ps, size_t n, msp_json_t *j)
{
    msp_json_key(j, "properties");
    msp_json_object_begin(j);
    msp_json_key(j, "verdicts");
    msp_json_array_begin(j);
    for (size_t k = 0; k < n; k++) {
        msp_json_object_begin(j);
        msp_json_key(j, "source");
        msp_json_string(j, ps[k]->source_name);
        json_verdict_or_null(ps[k], j);
        msp_json_object_end(j);
    }
    msp_json_array_end(j);
    msp_json_object_end(j);
}

static void render_sarif(const msp_fw_profile_t *const *ps, size_t n, msp_buf_t *b)
{
    msp_json_t j;
    msp_json_init(&j, b, 1);
    msp_json_object_begin(&j);
    msp_json_key(&j, "version");
    msp_json_string(&j, "2.1.0");
    msp_json_key(&j, "$schema");
    msp_json_string(&j, "https://json.schemastore.org/sarif-2.1.0.json");
    msp_json_key(&j, "runs");
    msp_json_array_begin(&j);
    msp_json_object_begin(&j);
    msp_json_key(&j, "tool");
    msp_json_object_begin(&j);
    msp_json_key(&j, "driver");
    msp_json_object_begin(&j);
    msp_json_key(&j, "name");
    msp_json_string(&j, "msp framework check");
    msp_json_key(&j, "informationUri");
    msp_json_string(&j, "https://www.etsi.org/deliver/etsi_ts/103500_103599/10352301/");
    msp_json_key(&j, "rules");
    sarif_rules(&j);
    msp_json_object_end(&j);
    msp_json_object_end(&j);
    msp_json_key(&j, "results");
    msp_json_array_begin(&j);
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < ps[k]->nfindings; i++) {
            sarif_result(ps[k], &ps[k]->findings[i], &j);
        }
        if (ps[k]->dropped_findings > 0) {
            /* Past MSP_FW_MAX_FINDINGS: one more result says how many, so CI does not pass a truncated log. */
            msp_fw_finding_t more = {.severity = MSP_FW_ERROR, .rule = "format"};
            snprintf(more.ref, sizeof(more.ref), "profile");
            snprintf(more.message, sizeof(more.message), "%zu more findings not shown", ps[k]->dropped_findings);
            sarif_result(ps[k], &more, &j);
        }
    }
    msp_json_array_end(&j);
    sarif_verdicts(ps, n, &j);
    msp_json_object_end(&j);
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    msp_json_finish(&j);
}

int msp_fw_render_check(const msp_fw_profile_t *const *ps, size_t n, msp_fw_format_t fmt, msp_buf_t *out)
{
    switch (fmt) {
    case MSP_FW_TEXT:
        render_text(ps, n, out);
        break;
    case MSP_FW_JSON:
        render_json(ps, n, out);
        break;
    case MSP_FW_SARIF:
        render_sarif(ps, n, out);
        break;
    default:
        return MSP_ERR_ARGUMENT;
    }
    return msp_buf_error(out);
}
