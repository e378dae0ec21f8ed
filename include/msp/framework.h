/*
 * The MSP Framework of ETSI TS 103 523-1 (Part 1): the catalog of MSP
 * Template Requirements (clause 6, Tables 6.2-6.5), profiles that record a
 * Selection Process and Conformance Analysis (clause 6.1), the rules a
 * profile is checked against, and the renderers for its tables.
 *
 * Ownership: a catalog and a profile each own everything they point to
 * (strings point into their parsed UCL document); free them with their
 * _free function. A profile keeps a pointer to its catalog, which must
 * outlive it.
 */
#ifndef MSP_FRAMEWORK_H
#define MSP_FRAMEWORK_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/buf.h"
#include "msp/error.h"
#include "msp/ucl.h"

/* ---- catalog ---------------------------------------------------------- */

typedef enum msp_fw_principle {
    MSP_FW_DP, /* Data Protection (Table 6.2) */
    MSP_FW_T,  /* Transparency (Table 6.3) */
    MSP_FW_AC, /* Access Control (Table 6.4) */
    MSP_FW_GC, /* Good Citizen (Table 6.5) */
    MSP_FW_PRINCIPLES
} msp_fw_principle_t;

typedef struct msp_fw_template {
    const char *ref;  /* "E.DP.3.1" */
    const char *text; /* normative text as printed */
    int parent;       /* catalog index of the parent, -1 for a top-level requirement */
    msp_fw_principle_t principle;
    int middlebox; /* 0: an endpoint requirement (E.), 1: a middlebox one (M.) */
    int mandatory; /* 1: Mandatory, 0: Optional (Table 6.1) */
} msp_fw_template_t;

typedef struct msp_fw_catalog {
    msp_fw_template_t *reqs; /* in table order */
    size_t count;
    msp_ucl_doc_t *doc;
} msp_fw_catalog_t;

/** Parses a catalog (data/framework/catalog.ucl). err->where is "LINE" or a ref. */
MSP_API int msp_fw_catalog_parse(const char *text, size_t len, msp_fw_catalog_t **out, msp_error_t *err);

/** The catalog compiled into msp. */
MSP_API int msp_fw_catalog_builtin(msp_fw_catalog_t **out, msp_error_t *err);

/** NULL is ignored. */
MSP_API void msp_fw_catalog_free(msp_fw_catalog_t *cat);

/** Index of ref in the catalog, or -1. */
MSP_API int msp_fw_catalog_find(const msp_fw_catalog_t *cat, const char *ref);

/** "Data Protection", "Transparency", ... */
MSP_API const char *msp_fw_principle_name(msp_fw_principle_t p);
/** "DP", "T", "AC", "GC" */
MSP_API const char *msp_fw_principle_code(msp_fw_principle_t p);

/* ---- profiles --------------------------------------------------------- */

typedef enum msp_fw_label {
    MSP_FW_NONE = 0, /* not given (yet) */
    MSP_FW_MM,       /* MSP-Mandatory */
    MSP_FW_PM,       /* Profile-Mandatory */
    MSP_FW_PO,       /* Profile-Optional */
    MSP_FW_PNA,      /* Profile-Not-Applicable */
    MSP_FW_PR,       /* Profile-Rejected */
} msp_fw_label_t;

/** "MM", ...; "" for MSP_FW_NONE. */
MSP_API const char *msp_fw_label_code(msp_fw_label_t l);
/** "MSP-Mandatory", ... */
MSP_API const char *msp_fw_label_name(msp_fw_label_t l);

/** One row of a profile: the values as printed, and the correction if any. */
typedef struct msp_fw_row {
    int present;               /* the profile has a block for this requirement */
    uint32_t line;             /* where that block starts */
    msp_fw_label_t label;      /* as printed */
    int met;                   /* as printed; -1 when not given */
    const char *text;          /* as printed; NULL when not given */
    const char *justification; /* NULL when not given */
    int has_erratum;
    msp_fw_label_t fix_label; /* MSP_FW_NONE: label not corrected */
    int fix_met;              /* -1: met not corrected */
    const char *fix_text;     /* NULL: text not corrected */
    const char *why;
    const msp_ucl_t *evidence; /* the 'evidence' array as given (entries checked by msp_fw_check), or NULL */
} msp_fw_row_t;

/** The label, met and text after errata. */
MSP_API msp_fw_label_t msp_fw_row_label(const msp_fw_row_t *r);
MSP_API int msp_fw_row_met(const msp_fw_row_t *r);
MSP_API const char *msp_fw_row_text(const msp_fw_row_t *r);

/** An erratum in the analysis prose, recorded against its clause. */
typedef struct msp_fw_clause_erratum {
    const char *clause;
    const char *printed;
    const char *should_be;
    const char *why;
    uint32_t line;
} msp_fw_clause_erratum_t;

typedef enum msp_fw_severity {
    MSP_FW_ERROR,
    MSP_FW_WARNING,
    MSP_FW_ERRATUM,
} msp_fw_severity_t;

#define MSP_FW_MAX_FINDINGS 1000

typedef struct msp_fw_finding {
    char ref[32]; /* a requirement ref, a clause, or "profile" */
    msp_fw_severity_t severity;
    const char *rule; /* the rule broken, a static string: "format", "label", ... (msp_fw_rule_describe) */
    char message[1024];
} msp_fw_finding_t;

/** A threat-model item, an assumption (B.2.1) or the Stage 3 notes (6.1.4) a profile declares. */
typedef enum msp_fw_note_kind {
    MSP_FW_THREAT,     /* threat "ETS.TM.1" { text = "..." } */
    MSP_FW_ASSUMPTION, /* assumption "ETS.A.1" { text = "..." } */
    MSP_FW_STAGE3,     /* stage3 { text = "..." }: id "stage3" */
} msp_fw_note_kind_t;

typedef struct msp_fw_note {
    msp_fw_note_kind_t kind;
    const char *id;
    const char *text;
    uint32_t line;
} msp_fw_note_t;

#define MSP_FW_MAX_NOTES 256

typedef struct msp_fw_profile {
    const msp_fw_catalog_t *cat;
    char source_name[128]; /* what the user named it by: a path or a shipped name */
    const char *name;      /* profile.name */
    const char *title;
    const char *source;
    const char *annex;  /* the annex letter its analysis is numbered under ("B": B.3.1.2, Table B.1), or NULL */
    msp_fw_row_t *rows; /* cat->count rows, indexed like the catalog */
    msp_fw_clause_erratum_t *errata;
    size_t nerrata;
    msp_fw_finding_t *findings;
    size_t nfindings;
    size_t dropped_findings; /* past MSP_FW_MAX_FINDINGS */
    int errata_ignored;      /* msp_fw_ignore_errata was called: everything is as printed */
    int shipped;             /* loaded by name from the profiles compiled in (data/framework/profiles/) */
    int evidence_required;   /* profile.evidence_required: every met MM, PM and PO row lists its evidence */
    msp_ucl_doc_t *doc;
    char sha256[65];      /* of the profile's input bytes, lowercase hex */
    char msp_version[32]; /* msp_fw_set_provenance; "" until set */
    char date[32];        /* "2026-12-08T01:30:00Z"; "" until set */
    msp_fw_note_t *notes; /* the threat model, assumptions and Stage 3 notes (B.2.1, 6.1.4) */
    size_t nnotes;
} msp_fw_profile_t;

/**
 * Reads a profile. Structural problems (unknown ref, duplicate, missing
 * field, wrong type, unknown key) become error findings and the call still
 * succeeds, so that one run reports all of them. Only input that cannot be
 * read as UCL at all fails: MSP_ERR_SYNTAX / MSP_ERR_LIMIT with err->where
 * the line number. source_name prefixes the findings.
 */
MSP_API int msp_fw_profile_parse(const msp_fw_catalog_t *cat, const char *source_name, const char *text, size_t len,
                                 msp_fw_profile_t **out, msp_error_t *err);

/**
 * Loads a profile by what a user typed: a path (anything with a '/' or
 * ending in ".ucl", or an existing file), else a shipped profile name.
 */
MSP_API int msp_fw_profile_load(const msp_fw_catalog_t *cat, const char *arg, msp_fw_profile_t **out, msp_error_t *err);

/** NULL is ignored. */
MSP_API void msp_fw_profile_free(msp_fw_profile_t *p);

/**
 * The evidence a requirement's met claim rests on (docs/profile-format.md):
 * each entry is "TEST" (a CTest test name) or "TEST:CASE" (a case the
 * test's output names). req_index is the catalog index, as for p->rows.
 * The count is 0 for a row without evidence or an index past the catalog;
 * an entry that is not a string is skipped (msp_fw_check reports it), and
 * k past the count gives NULL.
 */
MSP_API size_t msp_fw_evidence_count(const msp_fw_profile_t *p, size_t req_index);
MSP_API const char *msp_fw_evidence(const msp_fw_profile_t *p, size_t req_index, size_t k);

/** The name of the i-th shipped profile (0-based), or NULL past the last. */
MSP_API const char *msp_fw_shipped_name(size_t i);

/**
 * Forgets every erratum (row and clause), so that the checks, the verdict
 * and the reports take the profile as printed. Call it before msp_fw_check.
 */
MSP_API void msp_fw_ignore_errata(msp_fw_profile_t *p);

/** Applies the Selection Process and Conformance Analysis rules; adds findings. */
MSP_API void msp_fw_check(msp_fw_profile_t *p);

/** What a finding's rule checks, with the clause, as one sentence; NULL for an unknown rule. */
MSP_API const char *msp_fw_rule_describe(const char *rule);

/** Adds a finding (the message is printf-formatted). */
MSP_API void msp_fw_add_finding(msp_fw_profile_t *p, const char *ref, msp_fw_severity_t sev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Number of findings of this severity. */
MSP_API size_t msp_fw_count(const msp_fw_profile_t *p, msp_fw_severity_t sev);

/** 1 when every MM requirement is met after errata (the profile may be in the MSP series). */
MSP_API int msp_fw_in_series(const msp_fw_profile_t *p);

/** 1 when every MM requirement is met as printed, errata aside. */
MSP_API int msp_fw_in_series_as_printed(const msp_fw_profile_t *p);

/**
 * Number of row errata that change whether a Mandatory requirement is met:
 * the errata the verdict after errata rests on.
 */
MSP_API size_t msp_fw_deciding_errata(const msp_fw_profile_t *p);

/* ---- text rules --------------------------------------------------------- */

/**
 * Compares a profile text with its template text word by word. *changed
 * (may be NULL) receives a bitmap of the profile's words that differ, for
 * emphasis, up to 256 words. Returns the kind of change:
 */
typedef enum msp_fw_textdiff {
    MSP_FW_TEXT_SAME,       /* identical (whitespace aside) */
    MSP_FW_TEXT_MAY_SHALL,  /* only "may" -> "shall" */
    MSP_FW_TEXT_MAY_SHOULD, /* only "may" -> "should" */
    MSP_FW_TEXT_OTHER,      /* anything else */
} msp_fw_textdiff_t;

typedef struct msp_fw_wordmap {
    uint64_t bits[4];
} msp_fw_wordmap_t;

MSP_API msp_fw_textdiff_t msp_fw_text_diff(const char *tmpl, const char *text, msp_fw_wordmap_t *changed, char *where,
                                           size_t where_len);

/* ---- rendering ---------------------------------------------------------- */

typedef enum msp_fw_format {
    MSP_FW_TEXT,
    MSP_FW_MD,
    MSP_FW_JSON,
    MSP_FW_HTML,
    MSP_FW_SARIF, /* SARIF 2.1.0, for check only */
} msp_fw_format_t;

/** Parses "text", "md", "json", "html", "sarif"; -1 otherwise. */
MSP_API int msp_fw_format_parse(const char *s);

/** The verdict after errata as one sentence: "may be part of the MSP series: ..." or "not part of ...: REFS." */
MSP_API void msp_fw_render_verdict(const msp_fw_profile_t *p, msp_buf_t *out);

/** The verdict as printed (errata aside), as one sentence like msp_fw_render_verdict. */
MSP_API void msp_fw_render_verdict_as_printed(const msp_fw_profile_t *p, msp_buf_t *out);

/**
 * Both verdicts, one line each, every line starting with prefix:
 * "verdict as printed: ..." and "verdict after errata: ...; N errata decide
 * it: REFS." (one line "verdict as printed (errata ignored): ..." after
 * msp_fw_ignore_errata).
 */
MSP_API void msp_fw_render_verdicts(const msp_fw_profile_t *p, const char *prefix, msp_buf_t *out);

/** Findings as lines "SOURCE:REF: severity: message\n". */
MSP_API int msp_fw_render_findings(const msp_fw_profile_t *p, msp_buf_t *out);
/**
 * check's output for n profiles: MSP_FW_TEXT is each profile's findings
 * (msp_fw_render_findings) and, without errors, its verdicts; MSP_FW_JSON
 * one document; MSP_FW_SARIF a SARIF 2.1.0 log, a result per finding.
 */
MSP_API int msp_fw_render_check(const msp_fw_profile_t *const *ps, size_t n, msp_fw_format_t fmt, msp_buf_t *out);

/**
 * The Conformance Analysis in the shape of Annex B: per principle the table
 * (Table B.1 ...) and the MSP-Mandatory ... Profile-Rejected sections with
 * each requirement's label, Met, justification and cited clauses; then both
 * verdicts and the errata. MSP_FW_JSON gives the rows with both values.
 */
MSP_API int msp_fw_render_report(const msp_fw_profile_t *p, msp_fw_format_t fmt, msp_buf_t *out);
/** The template requirements (Tables 6.2-6.5). */
MSP_API int msp_fw_render_catalog(const msp_fw_catalog_t *cat, msp_fw_format_t fmt, msp_buf_t *out);
/** One matrix, a column per profile. */
MSP_API int msp_fw_render_compare(const msp_fw_profile_t *const *ps, size_t n, msp_fw_format_t fmt, msp_buf_t *out);
/** A profile skeleton with every requirement and its template text, labels to fill in. */
MSP_API int msp_fw_render_new(const msp_fw_catalog_t *cat, const char *name, msp_buf_t *out);

/* ---- provenance --------------------------------------------------------- */

/** The catalog the built-in Tables 6.2-6.5 come from: "ETSI TS 103 523-1 V1.1.1". */
MSP_API const char *msp_fw_catalog_version(void);

/**
 * Records what every report (report, compare, conform, diff) states about
 * where it comes from: the msp version (msp_version(), passed in because the
 * framework layer has no link to it) and the date, unix seconds (the library
 * has no clock: the caller passes it in). The profile's SHA-256 is taken by
 * msp_fw_profile_parse from its input bytes.
 */
MSP_API void msp_fw_set_provenance(msp_fw_profile_t *p, const char *msp_version, int64_t unix_time);

/* ---- CTest results (`ctest --output-junit FILE`) ------------------------ */

typedef struct msp_fw_junit msp_fw_junit_t;

/** At most this many bytes of JUnit XML, and this many test cases. */
#define MSP_FW_JUNIT_MAX_INPUT (64u << 20)
#define MSP_FW_JUNIT_MAX_TESTS 100000u

/**
 * Reads CTest's JUnit XML. MSP_ERR_SYNTAX for XML that is not well formed
 * or not a <testsuite> (err->where "LINE"), MSP_ERR_LIMIT past the limits.
 * No network, no external entities.
 */
MSP_API int msp_fw_junit_parse(const char *xml, size_t len, msp_fw_junit_t **out, msp_error_t *err);
/** Reads and parses a JUnit file; err->where is "PATH" or "PATH:LINE". */
MSP_API int msp_fw_junit_load(const char *path, msp_fw_junit_t **out, msp_error_t *err);
/** NULL is ignored. */
MSP_API void msp_fw_junit_free(msp_fw_junit_t *j);
/** Number of test cases read. */
MSP_API size_t msp_fw_junit_count(const msp_fw_junit_t *j);

typedef enum msp_fw_result {
    MSP_FW_PASSED,
    MSP_FW_FAILED,
    MSP_FW_NOT_RUN, /* not in the results, skipped, disabled, or its case not in its output */
} msp_fw_result_t;

/** "passed", "failed", "not run". */
MSP_API const char *msp_fw_result_name(msp_fw_result_t r);

/**
 * The result of one evidence entry: "test" is the CTest test's result;
 * "test:case" is FAILED when the test failed or its output has
 * "[  FAILED  ] case", PASSED when the test passed and its output has
 * "[       OK ] case" (cmocka's lines; tests/integration/lib.sh prints the
 * same), NOT_RUN otherwise.
 */
MSP_API msp_fw_result_t msp_fw_junit_result(const msp_fw_junit_t *j, const char *evidence);

/* ---- conform: every met claim against the test results ------------------ */

typedef enum msp_fw_claim {
    MSP_FW_NO_CLAIM,     /* not claimed met: nothing to prove */
    MSP_FW_PROVEN,       /* claimed met, all its evidence passed */
    MSP_FW_UNPROVEN,     /* claimed met, no evidence or some not run */
    MSP_FW_CONTRADICTED, /* claimed met, some evidence failed */
} msp_fw_claim_t;

/** "-", "proven", "unproven", "contradicted". */
MSP_API const char *msp_fw_claim_name(msp_fw_claim_t c);

/** The status of requirement i: a claim is a row met after errata (as printed after msp_fw_ignore_errata). */
MSP_API msp_fw_claim_t msp_fw_claim(const msp_fw_profile_t *p, const msp_fw_junit_t *j, size_t i);

/**
 * Every requirement with its claim and each evidence entry's result; HTML
 * links each requirement to its evidence. Returns the number of claims
 * unproven or contradicted in *bad (may be NULL).
 */
MSP_API int msp_fw_render_conform(const msp_fw_profile_t *p, const msp_fw_junit_t *j, msp_fw_format_t fmt,
                                  msp_buf_t *out, size_t *bad);

/* ---- diff: what changed between two versions of a profile ---------------- */

/**
 * Per requirement what changed between old and new (label, met, text,
 * justification, erratum, evidence), and the threat model and Stage 3 notes.
 * *changes (may be NULL) receives the number of changes. fmt is text, md or json.
 */
MSP_API int msp_fw_render_diff(const msp_fw_profile_t *old_p, const msp_fw_profile_t *new_p, msp_fw_format_t fmt,
                               msp_buf_t *out, size_t *changes);

/* ---- OSCAL export (docs/oscal.md) ---------------------------------------- */

/*
 * OSCAL 1.1 JSON documents for compliance tools (NIST OSCAL, e.g.
 * compliance-trestle). Every UUID is derived (version 5, SHA-1) from a fixed
 * namespace and the ids it stands for, so one input gives the same bytes on
 * every run; when is the document's last-modified time (seconds since the
 * epoch, UTC), passed in because the library has no clock.
 */

/** The OSCAL version the documents declare. */
#define MSP_FW_OSCAL_VERSION "1.1.3"

/**
 * The namespace of msp's own properties (profile-label, met, obligation, ...):
 * an https URI because tools (compliance-trestle) read ns as a URL, under the
 * reserved .invalid (RFC 2606) so that it cannot name anyone else's.
 */
#define MSP_FW_OSCAL_NS "https://msp.invalid/ns/oscal/ts-103-523-1"

/** The catalog: the template requirements as controls, grouped by principle, then by role. */
MSP_API int msp_fw_oscal_catalog(const msp_fw_catalog_t *cat, int64_t when, msp_buf_t *out);

/**
 * A profile's selection as an OSCAL profile: it imports the catalog, selects
 * the MM, PM and PO requirements, and alters each with its label as a
 * property and, where the profile's text differs from the template's (may ->
 * shall/should), the changed statement. Values are after errata unless
 * msp_fw_ignore_errata was called.
 */
MSP_API int msp_fw_oscal_profile(const msp_fw_profile_t *p, int64_t when, msp_buf_t *out);

/**
 * A profile's Conformance Analysis as an OSCAL component-definition: one
 * component, an implemented-requirement per requirement with its label and
 * Met as properties and its justification as the description.
 */
MSP_API int msp_fw_oscal_component(const msp_fw_profile_t *p, int64_t when, msp_buf_t *out);

/** One piece of evidence behind a verdict: what was checked, and whether it passed. */
typedef struct msp_fw_evidence {
    const char *description;
    int pass;
} msp_fw_evidence_t;

typedef enum msp_fw_verdict_state {
    MSP_FW_VERDICT_PASS,  /* satisfied */
    MSP_FW_VERDICT_FAIL,  /* not satisfied */
    MSP_FW_VERDICT_OTHER, /* not decided (not tested, inconclusive): not satisfied, reason "other" */
} msp_fw_verdict_state_t;

/** A verdict on one requirement, as a conformance run gives it. */
typedef struct msp_fw_verdict {
    const char *ref; /* a catalog ref */
    msp_fw_verdict_state_t state;
    const msp_fw_evidence_t *evidence;
    size_t nevidence;
} msp_fw_verdict_t;

/**
 * Verdicts as OSCAL assessment-results: one result, a finding per verdict
 * (its target the requirement's statement) and an observation per piece of
 * evidence. start and end bound the run. MSP_ERR_INVALID (err->where the
 * ref) for a ref the profile's catalog does not have, or one given twice.
 */
MSP_API int msp_fw_oscal_results(const msp_fw_profile_t *p, const msp_fw_verdict_t *v, size_t n, int64_t start,
                                 int64_t end, msp_buf_t *out, msp_error_t *err);

/**
 * A conformance run (msp_fw_claim) as assessment-results: a verdict per
 * claim, proven -> satisfied, contradicted -> not satisfied, unproven ->
 * not satisfied with reason "other"; each evidence entry an observation
 * ("TEST: passed", "TEST:CASE: not run", ...). Rows that claim nothing have
 * no finding. MSP_ERR_NO_MEMORY, else as msp_fw_oscal_results.
 */
MSP_API int msp_fw_oscal_conform(const msp_fw_profile_t *p, const msp_fw_junit_t *j, int64_t start, int64_t end,
                                 msp_buf_t *out, msp_error_t *err);

#endif
