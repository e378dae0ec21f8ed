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

/** "Y" or "N". */
const char *fw_yn(int met);

/** "error", "warning", "erratum". */
const char *fw_severity_name(msp_fw_severity_t s);

/** What an erratum corrects and why, as one line ("Met printed N, should be Y; why"). */
void fw_describe_erratum(const msp_fw_row_t *r, char *out, size_t n);

/* ---- rendering helpers (render.c) ---- */

/** Appends text with the words that differ from tmpl emphasised in the format's way. */
void fw_put_emphasised(msp_buf_t *b, msp_fw_format_t fmt, const char *tmpl, const char *text);

/** Appends s escaped for HTML text and attributes. */
void fw_put_html(msp_buf_t *b, const char *s);

/** Appends s escaped for a Markdown table cell. */
void fw_put_md(msp_buf_t *b, const char *s);

/**
 * Appends s word-wrapped to width columns; continuation lines start with
 * indent spaces. The first line is assumed to start at column indent.
 */
void fw_put_wrapped(msp_buf_t *b, const char *s, size_t indent, size_t width);

/** Writes a complete HTML page head with the title, and the shared style. */
void fw_html_begin(msp_buf_t *b, const char *title);
void fw_html_end(msp_buf_t *b);

#endif
