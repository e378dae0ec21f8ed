#include <stdio.h>
#include <string.h>

#include "fw.h"

static void render_text(const msp_fw_catalog_t *cat, msp_buf_t *b)
{
    for (int pr = 0; pr < MSP_FW_PRINCIPLES; pr++) {
        msp_buf_printf(b, "%s%s Template Requirements (Table 6.%d)\n%-11s%-10s %-10s %s\n", pr ? "\n" : "",
                       msp_fw_principle_name((msp_fw_principle_t)pr), pr + 2, "Ref", "Type", "Role", "Requirement");
        for (size_t i = 0; i < cat->count; i++) {
            const msp_fw_template_t *t = &cat->reqs[i];
            if (t->principle != (msp_fw_principle_t)pr) {
                continue;
            }
            msp_buf_printf(b, "%-11s%-10s %-10s ", t->ref, t->mandatory ? "Mandatory" : "Optional",
                           t->middlebox ? "middlebox" : "endpoint");
            fw_put_wrapped(b, t->text, 33, 100);
            msp_buf_puts(b, "\n");
        }
    }
}

/* A table per principle, in Markdown or HTML. */
static void marked_tables(const msp_fw_catalog_t *cat, msp_fw_format_t fmt, msp_buf_t *b)
{
    int html = fmt == MSP_FW_HTML;
    for (int pr = 0; pr < MSP_FW_PRINCIPLES; pr++) {
        const char *name = msp_fw_principle_name((msp_fw_principle_t)pr);
        msp_buf_printf(b,
                       html ? "<h2>%s (Table 6.%d)</h2>\n<table>\n<tr><th>Ref</th><th>%s Template Requirement</th>"
                              "<th>Mandatory / Optional</th></tr>\n"
                            : "\n## %s (Table 6.%d)\n\n| Ref | %s Template Requirement | Mandatory / Optional |\n"
                              "|---|---|---|\n",
                       name, pr + 2, name);
        for (size_t i = 0; i < cat->count; i++) {
            const msp_fw_template_t *t = &cat->reqs[i];
            if (t->principle != (msp_fw_principle_t)pr) {
                continue;
            }
            if (html) {
                msp_buf_printf(b, "<tr id=\"%s\"><td>%s</td><td>", t->ref, t->ref);
            } else {
                msp_buf_printf(b, "| %s | ", t->ref);
            }
            fw_put_escaped(b, fmt, t->text);
            msp_buf_printf(b, html ? "</td><td>%s</td></tr>\n" : " | %s |\n", t->mandatory ? "Mandatory" : "Optional");
        }
        msp_buf_puts(b, html ? "</table>\n" : "");
    }
}

static void render_md(const msp_fw_catalog_t *cat, msp_buf_t *b)
{
    msp_buf_puts(b, "# MSP Template Requirements (ETSI TS 103 523-1, clause 6)\n");
    marked_tables(cat, MSP_FW_MD, b);
}

static void render_html(const msp_fw_catalog_t *cat, msp_buf_t *b)
{
    fw_html_begin(b, "MSP Template Requirements");
    msp_buf_puts(b, "<h1>MSP Template Requirements (ETSI TS 103 523-1, clause 6)</h1>\n");
    marked_tables(cat, MSP_FW_HTML, b);
    fw_html_end(b);
}

static void render_json(const msp_fw_catalog_t *cat, msp_buf_t *b)
{
    msp_json_t j;
    msp_json_init(&j, b, 1);
    msp_json_object_begin(&j);
    msp_json_key(&j, "requirements");
    msp_json_array_begin(&j);
    for (size_t i = 0; i < cat->count; i++) {
        const msp_fw_template_t *t = &cat->reqs[i];
        msp_json_object_begin(&j);
        msp_json_key(&j, "ref");
        msp_json_string(&j, t->ref);
        msp_json_key(&j, "parent");
        msp_json_string(&j, t->parent >= 0 ? cat->reqs[t->parent].ref : NULL);
        msp_json_key(&j, "principle");
        msp_json_string(&j, msp_fw_principle_code(t->principle));
        msp_json_key(&j, "role");
        msp_json_string(&j, t->middlebox ? "middlebox" : "endpoint");
        msp_json_key(&j, "template");
        msp_json_string(&j, t->mandatory ? "M" : "O");
        msp_json_key(&j, "text");
        msp_json_string(&j, t->text);
        msp_json_object_end(&j);
    }
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    msp_json_finish(&j);
}

int msp_fw_render_catalog(const msp_fw_catalog_t *cat, msp_fw_format_t fmt, msp_buf_t *out)
{
    static void (*const render[])(const msp_fw_catalog_t *, msp_buf_t *) = {render_text, render_md, render_json,
                                                                            render_html};
    if ((unsigned)fmt >= sizeof(render) / sizeof(render[0])) {
        return MSP_ERR_ARGUMENT;
    }
    render[fmt](cat, out);
    return msp_buf_error(out);
}

/* UCL double-quoted string: the catalog texts hold no control characters, but escape anyway. */
static void put_ucl_string(msp_buf_t *b, const char *s)
{
    msp_buf_put_u8(b, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            msp_buf_put_u8(b, '\\');
        }
        msp_buf_put_u8(b, (uint8_t)*s);
    }
    msp_buf_put_u8(b, '"');
}

int msp_fw_render_new(const msp_fw_catalog_t *cat, const char *name, msp_buf_t *out)
{
    msp_buf_printf(out,
                   "# MSP profile skeleton made by 'msp framework new %s'.\n"
                   "# Fill in every label (MM | PM | PO | PNA | PR), met (true | false) and\n"
                   "# justification; 'msp framework check %s.ucl' says what is still missing.\n"
                   "# A Mandatory requirement is MM with its text unchanged. PM changes \"may\"\n"
                   "# into \"shall\"; PO keeps the text or changes \"may\" into \"should\".\n\n"
                   "profile {\n    name = \"%s\";\n    title = \"\";\n    source = \"\";\n}\n",
                   name, name, name);
    for (size_t i = 0; i < cat->count; i++) {
        const msp_fw_template_t *t = &cat->reqs[i];
        msp_buf_printf(out, "\nrequirement \"%s\" {\n    # %s template requirement: %s\n    label = \"\";\n", t->ref,
                       t->mandatory ? "Mandatory" : "Optional", t->mandatory ? "MM" : "PM, PO, PNA or PR");
        msp_buf_puts(out, "    text = ");
        put_ucl_string(out, t->text);
        msp_buf_puts(out, ";\n    justification = \"\";\n}\n");
    }
    return msp_buf_error(out);
}
