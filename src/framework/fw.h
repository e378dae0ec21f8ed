/* Internals shared by the framework's files. */
#ifndef MSP_FW_INTERNAL_H
#define MSP_FW_INTERNAL_H

#include "msp/framework.h"
#include "msp/json.h"

/* Limits on what a catalog or profile may hold; every allocation is bounded by them. */
#define FW_MAX_INPUT (1u << 20)
#define FW_MAX_REF 24

/**
 * Splits a ref such as "M.T.5.1.2" into role and principle; 0 if it is not
 * of the shape [EM].(DP|T|AC|GC)(.N)+ with at most FW_MAX_REF characters.
 */
int fw_ref_parse(const char *ref, int *middlebox, msp_fw_principle_t *principle);

/** Length of the ref's parent prefix ("E.DP.3" for "E.DP.3.1"), 0 if top level. */
size_t fw_ref_parent_len(const char *ref);

/** A short description of a UCL value's type for messages ("a string", ...). */
const char *fw_type_article(msp_ucl_type_t t);

/** Adds a finding of a check rule (msp_fw_add_finding's are rule "format"). rule is a static string. */
void fw_add(msp_fw_profile_t *p, const char *rule, const char *ref, msp_fw_severity_t sev, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** 1 when s and tmpl have the same words but not the same spacing; where says where. */
int fw_spacing_differs(const char *tmpl, const char *s, char *where, size_t where_len);

/** The line a finding points at: its "(line N)" if it has one, else its row's or clause erratum's; 0 unknown. */
uint32_t fw_finding_line(const msp_fw_profile_t *p, const msp_fw_finding_t *f);

/** "Y" or "N". */
const char *fw_yn(int met);

/** "error", "warning", "erratum". */
const char *fw_severity_name(msp_fw_severity_t s);

/** What an erratum corrects and why, as one line ("Met printed N, should be Y; why"). */
/* Room for an erratum's description: what it corrects and why, whole (a longer one ends in "..."). */
#define FW_ERRATUM_LEN 1024
void fw_describe_erratum(const msp_fw_row_t *r, char *out, size_t n);

/* ---- threat model, assumptions, Stage 3 (threat.c) ---- */

/** 1 when id is NAME.TM.N (a threat-model item) or NAME.A.N (an assumption), as kind asks: [A-Z]+ . TM|A . [0-9]+. */
int fw_note_id_ok(const char *id, msp_fw_note_kind_t kind);

/** Rule "citation": every NAME.TM.N / NAME.A.N a justification or printed clause cites is declared. */
void fw_check_citations(msp_fw_profile_t *p);

/* ---- provenance (render.c) ---- */

/** One line "msp VERSION, catalog ..., profile sha256 ..., date ..." (no newline). */
void fw_provenance_line(const msp_fw_profile_t *p, msp_buf_t *b);

/** The provenance line in the format: escaped for Markdown or HTML, else as fw_provenance_line() writes it. */
void fw_provenance(const msp_fw_profile_t *p, msp_fw_format_t fmt, msp_buf_t *b);

/** The "provenance" member of a JSON report (the key included). */
void fw_json_provenance(const msp_fw_profile_t *p, msp_json_t *j);

/* ---- rendering helpers (render.c) ---- */

/** Appends text with the words that differ from tmpl emphasised in the format's way. */
void fw_put_emphasised(msp_buf_t *b, msp_fw_format_t fmt, const char *tmpl, const char *text);

/** Appends s escaped for HTML text and attributes. */
void fw_put_html(msp_buf_t *b, const char *s);

/** Appends s escaped for a Markdown table cell. */
void fw_put_md(msp_buf_t *b, const char *s);

/** Appends s escaped for the format: fw_put_html() for HTML, fw_put_md() for Markdown, else as it is. */
void fw_put_escaped(msp_buf_t *b, msp_fw_format_t fmt, const char *s);

/**
 * Appends s word-wrapped to width columns; continuation lines start with
 * indent spaces. The first line is assumed to start at column indent.
 */
void fw_put_wrapped(msp_buf_t *b, const char *s, size_t indent, size_t width);
/*
 * Requirement i's evidence entries joined by ", " and NUL-terminated, in out (initialised here, freed by the caller);
 * "" for none. The list is never longer than the profile it was read from (each entry costs at least its quotes and
 * a comma there), so only a failed allocation makes it fail.
 */
int fw_evidence_join(const msp_fw_profile_t *p, size_t i, msp_buf_t *out);

/* ---- the Conformance Analysis (render_analysis.c) ---- */

/** "B.3.1" (k 0) or "B.3.1.2" for principle 0, k 2; "1", "1.2" without an annex. */
void fw_section_number(const msp_fw_profile_t *p, int principle, int k, char *out, size_t n);

/** "Table B.1", or "Table 1" without an annex. */
void fw_table_number(const msp_fw_profile_t *p, int principle, char *out, size_t n);

/** The clauses, tables and threat-model assumptions a justification cites, one per line, first use first. */
size_t fw_cited(const char *justification, char *out, size_t n);

/** The MSP-Mandatory ... Profile-Rejected sections of one principle (text, md or html). */
void fw_render_sections(const msp_fw_profile_t *p, msp_fw_format_t fmt, int pr, msp_buf_t *b);

/** The verdict object of the JSON outputs (report, check). */
void fw_json_verdict(const msp_fw_profile_t *p, msp_json_t *j);

/** Writes a complete HTML page head with the title, and the shared style. */
void fw_html_begin(msp_buf_t *b, const char *title);
void fw_html_end(msp_buf_t *b);

#endif
