/* The UCL parser: libucl's syntax and semantics as the TLMSP configs and our profiles use them, and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "msp/ucl.h"

static msp_ucl_doc_t *parse_ok(const char *text)
{
    msp_ucl_doc_t *doc = NULL;
    msp_error_t err;
    if (msp_ucl_parse(text, strlen(text), NULL, &doc, &err) != MSP_OK) {
        fail_msg("parse failed at line %s: %s\n%s", err.where, err.detail, text);
    }
    return doc;
}

static void parse_bad(const char *text, int code, const char *line, const char *detail_part)
{
    msp_ucl_doc_t *doc = (msp_ucl_doc_t *)1;
    msp_error_t err;
    msp_error_clear(&err);
    assert_int_equal(msp_ucl_parse(text, strlen(text), NULL, &doc, &err), code);
    assert_null(doc);
    assert_string_equal(err.where, line);
    if (strstr(err.detail, detail_part) == NULL) {
        fail_msg("detail \"%s\" lacks \"%s\"", err.detail, detail_part);
    }
}

static const msp_ucl_t *get(const msp_ucl_t *obj, const char *key, msp_ucl_type_t type)
{
    const msp_ucl_t *v = msp_ucl_lookup(obj, key);
    if (v == NULL) {
        fail_msg("no key %s", key);
    }
    if (v->type != type) {
        fail_msg("%s is %s, expected %s", key, msp_ucl_type_name(v->type), msp_ucl_type_name(type));
    }
    return v;
}

static void test_scalars(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("a = 1; b: -42\nc 3.25;\nd = yes; e = off; f = true; g = null;\n"
                                  "h = bare-word; i = \"q\\\"uoted\\n\"; j = 'single'; k = 0x1F;\n"
                                  "l = 9223372036854775807; m = -9223372036854775808;\n");
    const msp_ucl_t *r = msp_ucl_root(doc);
    assert_int_equal(r->type, MSP_UCL_OBJECT);
    assert_int_equal(get(r, "a", MSP_UCL_INT)->v.i, 1);
    assert_int_equal(get(r, "b", MSP_UCL_INT)->v.i, -42);
    assert_true(get(r, "c", MSP_UCL_FLOAT)->v.f == 3.25);
    assert_int_equal(get(r, "d", MSP_UCL_BOOL)->v.b, 1);
    assert_int_equal(get(r, "e", MSP_UCL_BOOL)->v.b, 0);
    assert_int_equal(get(r, "f", MSP_UCL_BOOL)->v.b, 1);
    get(r, "g", MSP_UCL_NULL);
    assert_string_equal(get(r, "h", MSP_UCL_STRING)->v.str.s, "bare-word");
    assert_string_equal(get(r, "i", MSP_UCL_STRING)->v.str.s, "q\"uoted\n");
    assert_string_equal(get(r, "j", MSP_UCL_STRING)->v.str.s, "single");
    assert_int_equal(get(r, "k", MSP_UCL_INT)->v.i, 31);
    assert_true(get(r, "l", MSP_UCL_INT)->v.i == INT64_MAX);
    assert_true(get(r, "m", MSP_UCL_INT)->v.i == INT64_MIN);
    assert_int_equal(r->v.kids.count, 13);
    msp_ucl_free(doc);
}

static void test_suffixes(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("k = 2k; kb = 2kb; m = 1m; mb = 1mb; ms = 250ms; s = 3s; min = 2min; h = 1h;\n");
    const msp_ucl_t *r = msp_ucl_root(doc);
    assert_int_equal(get(r, "k", MSP_UCL_INT)->v.i, 2000);
    assert_int_equal(get(r, "kb", MSP_UCL_INT)->v.i, 2048);
    assert_int_equal(get(r, "m", MSP_UCL_INT)->v.i, 1000000);
    assert_int_equal(get(r, "mb", MSP_UCL_INT)->v.i, 1048576);
    assert_true(get(r, "ms", MSP_UCL_TIME)->v.f == 0.25);
    assert_true(get(r, "s", MSP_UCL_TIME)->v.f == 3.0);
    assert_true(get(r, "min", MSP_UCL_TIME)->v.f == 120.0);
    assert_true(get(r, "h", MSP_UCL_TIME)->v.f == 3600.0);
    msp_ucl_free(doc);
}

/* `key "name" { }` nests, repeated sections merge into one key object, repeated names stay separate. */
static void test_sections_and_duplicates(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("requirement \"E.DP.1\" { label = \"MM\"; }\n"
                                  "requirement \"E.DP.2\" { label = \"PR\"; }\n"
                                  "requirement \"E.DP.1\" { label = \"PM\"; }\n"
                                  "a b c { d = 1 }\n"
                                  "activity { tag = x }\nactivity { tag = y }\n");
    const msp_ucl_t *r = msp_ucl_root(doc);
    const msp_ucl_t *req = get(r, "requirement", MSP_UCL_OBJECT);
    assert_int_equal(msp_ucl_count_key(r, "requirement"), 1);
    assert_int_equal(req->v.kids.count, 3);
    assert_int_equal(msp_ucl_count_key(req, "E.DP.1"), 2);
    const msp_ucl_t *first = msp_ucl_lookup(req, "E.DP.1");
    assert_int_equal(first->line, 1);
    assert_string_equal(get(first, "label", MSP_UCL_STRING)->v.str.s, "MM");
    const msp_ucl_t *third = first->next->next;
    assert_string_equal(third->key, "E.DP.1");
    assert_int_equal(third->line, 3);
    const msp_ucl_t *c = get(get(get(r, "a", MSP_UCL_OBJECT), "b", MSP_UCL_OBJECT), "c", MSP_UCL_OBJECT);
    assert_int_equal(get(c, "d", MSP_UCL_INT)->v.i, 1);
    /* Plain repeated keys are libucl's implicit array: both kept, in order. */
    assert_int_equal(msp_ucl_count_key(r, "activity"), 2);
    const msp_ucl_t *act = msp_ucl_lookup(r, "activity");
    assert_string_equal(get(act, "tag", MSP_UCL_STRING)->v.str.s, "x");
    assert_int_equal(act->line, 5);
    msp_ucl_free(doc);
}

static void test_arrays_json_and_lines(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("{\n  \"list\": [1, \"two\",\n    {\"z\": false}, [] ],\n  \"o\": {}\n}\n");
    const msp_ucl_t *r = msp_ucl_root(doc);
    const msp_ucl_t *list = get(r, "list", MSP_UCL_ARRAY);
    assert_int_equal(list->line, 2);
    assert_int_equal(list->v.kids.count, 4);
    const msp_ucl_t *e = list->v.kids.first;
    assert_null(e->key);
    assert_int_equal(e->v.i, 1);
    e = e->next->next;
    assert_int_equal(e->type, MSP_UCL_OBJECT);
    assert_int_equal(e->line, 3);
    assert_int_equal(get(e, "z", MSP_UCL_BOOL)->v.b, 0);
    assert_int_equal(e->next->type, MSP_UCL_ARRAY);
    assert_int_equal(e->next->v.kids.count, 0);
    assert_int_equal(get(r, "o", MSP_UCL_OBJECT)->v.kids.count, 0);
    msp_ucl_free(doc);
}

static void test_strings(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("u = \"\\u00e9\\ud83d\\ude00\";\n"
                                  "z = \"a\\u0000b\";\n"
                                  "t = <<EOD\nline one\n  line two\nEOD\n"
                                  "v = $VAR; w = \"${X}\";\n");
    const msp_ucl_t *r = msp_ucl_root(doc);
    assert_string_equal(get(r, "u", MSP_UCL_STRING)->v.str.s, "\xc3\xa9\xf0\x9f\x98\x80");
    const msp_ucl_t *z = get(r, "z", MSP_UCL_STRING);
    assert_int_equal(z->v.str.len, 3);
    assert_memory_equal(z->v.str.s, "a\0b", 3);
    assert_string_equal(get(r, "t", MSP_UCL_STRING)->v.str.s, "line one\n  line two");
    /* libucl leaves unregistered variables as they are. */
    assert_string_equal(get(r, "v", MSP_UCL_STRING)->v.str.s, "$VAR");
    assert_string_equal(get(r, "w", MSP_UCL_STRING)->v.str.s, "${X}");
    assert_int_equal(get(r, "v", MSP_UCL_STRING)->line, 7);
    msp_ucl_free(doc);
}

static void test_comments(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("# a comment\na = 1; # trailing\n/* block /* nested */ still */ b = 2\n");
    const msp_ucl_t *r = msp_ucl_root(doc);
    assert_int_equal(r->v.kids.count, 2);
    assert_int_equal(get(r, "b", MSP_UCL_INT)->line, 3);
    msp_ucl_free(doc);
}

/* The shape of the ETSI reference's configuration files (tlmsp-tools examples), written anew. */
static void test_tlmsp_config_shape(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("context {\n  id = 1;\n  tag = context-1;\n  comment = \"first\";\n}\n"
                                  "client { address = \"tlmsp://localhost:10001\"; }\n"
                                  "middlebox {\n  tag = mbox1;\n  address = \"tlmsp://localhost:10002\";\n"
                                  "  context = [ { which = [ context-1 ]; access = rw; } ];\n}\n"
                                  "activity {\n  tag = send-ping;\n  match { at = 2; every = 3; }\n"
                                  "  action { send { context = context-1; data = \"client-ping\"; } }\n}\n");
    const msp_ucl_t *r = msp_ucl_root(doc);
    assert_int_equal(get(get(r, "context", MSP_UCL_OBJECT), "id", MSP_UCL_INT)->v.i, 1);
    const msp_ucl_t *mb = get(r, "middlebox", MSP_UCL_OBJECT);
    const msp_ucl_t *ctx = get(mb, "context", MSP_UCL_ARRAY)->v.kids.first;
    assert_string_equal(get(ctx, "access", MSP_UCL_STRING)->v.str.s, "rw");
    const msp_ucl_t *send =
        get(get(get(r, "activity", MSP_UCL_OBJECT), "action", MSP_UCL_OBJECT), "send", MSP_UCL_OBJECT);
    assert_string_equal(get(send, "data", MSP_UCL_STRING)->v.str.s, "client-ping");
    msp_ucl_free(doc);
}

static void test_errors_with_lines(void **state)
{
    (void)state;
    parse_bad("a = 1;\nb = \"open\n", MSP_ERR_SYNTAX, "2", "");
    parse_bad("a {\n b = 1;\n", MSP_ERR_SYNTAX, "3", "");
    parse_bad("a = [1, 2\n", MSP_ERR_SYNTAX, "2", "");
    parse_bad("a = \"bad \\q escape\";", MSP_ERR_SYNTAX, "1", "");
    parse_bad("/* never closed\n\n", MSP_ERR_SYNTAX, "1", "");
    parse_bad("x = 1;\n.include \"other.conf\"\n", MSP_ERR_SYNTAX, "2", "");
    parse_bad("a = }\n", MSP_ERR_SYNTAX, "1", "");
    parse_bad("a = \"\\ud800\";", MSP_ERR_SYNTAX, "1", "");
    parse_bad("t = <<EOD\nno end\n", MSP_ERR_SYNTAX, "1", "");
}

static void test_limits(void **state)
{
    (void)state;
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        deep[n++] = '[';
    }
    deep[n] = '\0';
    msp_ucl_doc_t *doc = (msp_ucl_doc_t *)1;
    msp_error_t err;
    assert_int_equal(msp_ucl_parse(deep, n, NULL, &doc, &err), MSP_ERR_LIMIT);
    assert_null(doc);
    msp_ucl_limits_t lim = {.max_input = 16, .max_depth = 8, .max_nodes = 4};
    const char *big = "a = 1; b = 2; c = 3;";
    assert_int_equal(msp_ucl_parse(big, strlen(big), &lim, &doc, &err), MSP_ERR_LIMIT);
    lim.max_input = 1000;
    const char *many = "a = 1; b = 2; c = 3; d = 4; e = 5;";
    assert_int_equal(msp_ucl_parse(many, strlen(many), &lim, &doc, &err), MSP_ERR_LIMIT);
    assert_null(doc);
    lim.max_nodes = 100;
    assert_int_equal(msp_ucl_parse(many, strlen(many), &lim, &doc, &err), MSP_OK);
    msp_ucl_free(doc);
    msp_ucl_free(NULL);
}

static void test_empty_input(void **state)
{
    (void)state;
    msp_ucl_doc_t *doc = parse_ok("");
    assert_int_equal(msp_ucl_root(doc)->type, MSP_UCL_OBJECT);
    assert_int_equal(msp_ucl_root(doc)->v.kids.count, 0);
    assert_null(msp_ucl_lookup(msp_ucl_root(doc), "x"));
    assert_int_equal(msp_ucl_count_key(msp_ucl_root(doc), "x"), 0);
    msp_ucl_free(doc);
    assert_string_equal(msp_ucl_type_name(MSP_UCL_STRING), "string");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_suffixes),
        cmocka_unit_test(test_sections_and_duplicates),
        cmocka_unit_test(test_arrays_json_and_lines),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_tlmsp_config_shape),
        cmocka_unit_test(test_errors_with_lines),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_empty_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
