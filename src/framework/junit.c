/*
 * CTest's JUnit XML (`ctest --output-junit FILE`), read with libxml2: one
 * <testsuite> of <testcase name=... status="run|notrun|disabled"> with a
 * <failure>, <error> or <skipped> child when the test did not pass, and its
 * output in <system-out>. Only what conform needs is kept: name, result,
 * output; the XML tree is freed before returning.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "fw.h"

typedef struct junit_case {
    char *name;
    msp_fw_result_t result;
    char *out; /* <system-out>, "" when none */
} junit_case_t;

struct msp_fw_junit {
    junit_case_t *cases;
    size_t count;
};

const char *msp_fw_result_name(msp_fw_result_t r)
{
    return r == MSP_FW_PASSED ? "passed" : r == MSP_FW_FAILED ? "failed" : "not run";
}

static int is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)name) == 0;
}

static msp_fw_result_t case_result(const xmlNode *tc)
{
    xmlChar *status = xmlGetProp(tc, (const xmlChar *)"status");
    /* CTest writes status="run" for a test it ran; older CTest writes none. */
    msp_fw_result_t r =
        status == NULL || xmlStrcmp(status, (const xmlChar *)"run") == 0 ? MSP_FW_PASSED : MSP_FW_NOT_RUN;
    xmlFree(status);
    for (const xmlNode *c = tc->children; c != NULL; c = c->next) {
        if (is(c, "failure") || is(c, "error")) {
            return MSP_FW_FAILED;
        }
        if (is(c, "skipped")) {
            r = MSP_FW_NOT_RUN;
        }
    }
    return r;
}

static char *case_output(const xmlNode *tc)
{
    for (const xmlNode *c = tc->children; c != NULL; c = c->next) {
        if (is(c, "system-out")) {
            xmlChar *s = xmlNodeGetContent(c);
            char *copy = strdup(s != NULL ? (const char *)s : "");
            xmlFree(s);
            return copy;
        }
    }
    return strdup("");
}

static int read_case(const xmlNode *tc, junit_case_t *out, msp_error_t *err)
{
    xmlChar *name = xmlGetProp(tc, (const xmlChar *)"name");
    if (name == NULL || name[0] == '\0') {
        xmlFree(name);
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "line %ld: <testcase> without a name", (long)xmlGetLineNo(tc));
    }
    out->name = strdup((const char *)name);
    xmlFree(name);
    out->result = case_result(tc);
    out->out = case_output(tc);
    if (out->name == NULL || out->out == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "JUnit test case");
    }
    return MSP_OK;
}

/* <testsuite> at the top, or <testsuites> holding several. */
static int read_suite(const xmlNode *suite, msp_fw_junit_t *j, msp_error_t *err)
{
    for (const xmlNode *c = suite->children; c != NULL; c = c->next) {
        int ret = MSP_OK;
        if (is(c, "testsuite")) {
            ret = read_suite(c, j, err);
        } else if (is(c, "testcase")) {
            if (j->count >= MSP_FW_JUNIT_MAX_TESTS) {
                return msp_error_set(err, MSP_ERR_LIMIT, NULL, "more than %u test cases", MSP_FW_JUNIT_MAX_TESTS);
            }
            ret = read_case(c, &j->cases[j->count], err);
            j->count++; /* counted even when partly read, so that free releases it */
        }
        if (ret != MSP_OK) {
            return ret;
        }
    }
    return MSP_OK;
}

static int parse_doc(const char *xml, size_t len, xmlDoc **doc, msp_error_t *err)
{
    xmlParserCtxt *ctx = xmlNewParserCtxt();
    if (ctx == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "XML parser");
    }
    /* No network, no entity substitution (no external entities), no printing; big text nodes are fine. */
    *doc = xmlCtxtReadMemory(ctx, xml, (int)len, "junit.xml", NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_HUGE);
    int ret = MSP_OK;
    if (*doc == NULL) {
        const xmlError *e = xmlCtxtGetLastError(ctx);
        char where[16];
        snprintf(where, sizeof(where), "%d", e != NULL ? e->line : 0);
        char msg[200];
        snprintf(msg, sizeof(msg), "%s", e != NULL && e->message != NULL ? e->message : "not XML");
        msg[strcspn(msg, "\n")] = '\0';
        ret = msp_error_set(err, MSP_ERR_SYNTAX, where, "not well-formed XML: %s", msg);
    }
    xmlFreeParserCtxt(ctx);
    return ret;
}

int msp_fw_junit_parse(const char *xml, size_t len, msp_fw_junit_t **out, msp_error_t *err)
{
    *out = NULL;
    if (len > MSP_FW_JUNIT_MAX_INPUT) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "JUnit XML is at most %u bytes", MSP_FW_JUNIT_MAX_INPUT);
    }
    xmlDoc *doc;
    int ret = parse_doc(xml, len, &doc, err);
    if (ret != MSP_OK) {
        return ret;
    }
    /* CTest writes no DTD; one could declare entities that expand without bound when the text is read. */
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        xmlFreeDoc(doc);
        return msp_error_set(err, MSP_ERR_SYNTAX, "1", "not JUnit: a <!DOCTYPE> (entity declarations) is refused");
    }
    const xmlNode *root = xmlDocGetRootElement(doc);
    msp_fw_junit_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        xmlFreeDoc(doc);
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "JUnit results");
    }
    if (root == NULL || !(is(root, "testsuite") || is(root, "testsuites"))) {
        ret = msp_error_set(err, MSP_ERR_SYNTAX, "1", "not JUnit: the root element is not <testsuite>");
    } else {
        /* A case takes at least 20 bytes of XML (<testcase name="a"/>): len/16 + 1 bounds the count before any is read.
         */
        size_t cap = len / 16 + 1 < MSP_FW_JUNIT_MAX_TESTS ? len / 16 + 1 : MSP_FW_JUNIT_MAX_TESTS;
        j->cases = calloc(cap + 1, sizeof(*j->cases));
        ret =
            j->cases == NULL ? msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "JUnit results") : read_suite(root, j, err);
    }
    xmlFreeDoc(doc);
    if (ret != MSP_OK) {
        msp_fw_junit_free(j);
        return ret;
    }
    *out = j;
    return MSP_OK;
}

void msp_fw_junit_free(msp_fw_junit_t *j)
{
    if (j == NULL) {
        return;
    }
    for (size_t i = 0; i < j->count; i++) {
        free(j->cases[i].name);
        free(j->cases[i].out);
    }
    free(j->cases);
    free(j);
}

size_t msp_fw_junit_count(const msp_fw_junit_t *j)
{
    return j->count;
}

static const junit_case_t *find(const msp_fw_junit_t *j, const char *name, size_t len)
{
    for (size_t i = 0; i < j->count; i++) {
        if (strlen(j->cases[i].name) == len && memcmp(j->cases[i].name, name, len) == 0) {
            return &j->cases[i];
        }
    }
    return NULL;
}

/* 1 when out has a line that is exactly tag followed by name (trailing spaces and a CR aside). */
static int has_line(const char *out, const char *tag, const char *name)
{
    size_t tl = strlen(tag), nl = strlen(name);
    for (const char *l = out; l != NULL && *l != '\0'; l = strchr(l, '\n'), l = l != NULL ? l + 1 : NULL) {
        if (strncmp(l, tag, tl) == 0 && strncmp(l + tl, name, nl) == 0) {
            const char *e = l + tl + nl;
            e += strspn(e, " \r\t");
            if (*e == '\n' || *e == '\0') {
                return 1;
            }
        }
    }
    return 0;
}

msp_fw_result_t msp_fw_junit_result(const msp_fw_junit_t *j, const char *evidence)
{
    const char *colon = strchr(evidence, ':');
    const junit_case_t *c = find(j, evidence, colon != NULL ? (size_t)(colon - evidence) : strlen(evidence));
    if (c == NULL) {
        return MSP_FW_NOT_RUN;
    }
    if (colon == NULL || c->result == MSP_FW_FAILED) {
        return c->result;
    }
    if (has_line(c->out, "[  FAILED  ] ", colon + 1)) {
        return MSP_FW_FAILED;
    }
    return c->result == MSP_FW_PASSED && has_line(c->out, "[       OK ] ", colon + 1) ? MSP_FW_PASSED : MSP_FW_NOT_RUN;
}

/* Reads at most MSP_FW_JUNIT_MAX_INPUT + 1 bytes: one more tells "too large" from "exactly the limit". */
static int slurp(FILE *f, const char *path, char **text, size_t *len, msp_error_t *err)
{
    size_t cap = 1u << 16, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) {
            free(buf);
            return msp_error_set(err, MSP_ERR_IO, path, "cannot read: %s", strerror(errno));
        }
        if (n < cap || cap > MSP_FW_JUNIT_MAX_INPUT) {
            break;
        }
        cap = cap * 2 > MSP_FW_JUNIT_MAX_INPUT + 1u ? MSP_FW_JUNIT_MAX_INPUT + 1u : cap * 2;
        char *grown = realloc(buf, cap);
        if (grown == NULL) {
            free(buf);
        }
        buf = grown;
    }
    if (buf == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, path, "cannot read");
    }
    if (n > MSP_FW_JUNIT_MAX_INPUT) {
        free(buf);
        return msp_error_set(err, MSP_ERR_LIMIT, path, "larger than %u bytes", MSP_FW_JUNIT_MAX_INPUT);
    }
    *text = buf;
    *len = n;
    return MSP_OK;
}

int msp_fw_junit_load(const char *path, msp_fw_junit_t **out, msp_error_t *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return msp_error_set(err, MSP_ERR_IO, path, "cannot open: %s", strerror(errno));
    }
    char *text = NULL;
    size_t len = 0;
    int ret = slurp(f, path, &text, &len, err);
    fclose(f);
    if (ret == MSP_OK) {
        ret = msp_fw_junit_parse(text, len, out, err);
        free(text);
        if (ret != MSP_OK && err != NULL) {
            char line[sizeof(err->where)];
            snprintf(line, sizeof(line), "%s", err->where);
            snprintf(err->where, sizeof(err->where), "%.100s%s%.40s", path, line[0] ? ":" : "", line);
        }
    }
    return ret;
}
