/*
 * The .ucl configuration model (libtlmsp-cfg semantics): every keyword,
 * every default, and one test per refusal, checking the code and the line.
 * The configurations are written here (and in data/tlmsp/), not taken from
 * the reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msp/tlmsp_cfg.h"

static msp_tlmsp_cfg_t *load_ok(const char *text)
{
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_error_t err;
    if (msp_tlmsp_cfg_load_mem(text, strlen(text), "t.ucl", &cfg, &err) != MSP_OK) {
        fail_msg("load failed at %s: %s\n%s", err.where, err.detail, text);
    }
    return cfg;
}

static void load_bad(const char *text, int code, unsigned line, const char *part)
{
    msp_tlmsp_cfg_t *cfg = (msp_tlmsp_cfg_t *)1;
    msp_error_t err;
    char where[32];
    int rc = msp_tlmsp_cfg_load_mem(text, strlen(text), "t.ucl", &cfg, &err);
    if (rc != code) {
        fail_msg("code %s, expected %s (%s: %s)\n%s", msp_error_name(rc), msp_error_name(code), err.where, err.detail,
                 text);
    }
    assert_null(cfg);
    snprintf(where, sizeof(where), "t.ucl:%u", line);
    if (strcmp(err.where, where) != 0 || strstr(err.detail, part) == NULL) {
        fail_msg("got %s: %s\nexpected %s: ...%s...", err.where, err.detail, where, part);
    }
}

static void assert_bytes(msp_tlmsp_cfg_bytes_t b, const char *s, size_t len)
{
    assert_int_equal(b.len, len);
    assert_memory_equal(b.p, s, len);
}

/* ---- every keyword ---- */

static const char everything[] = "context {\n"                                                  /* 1 */
                                 "    id = 7\n"                                                 /* 2 */
                                 "    tag = \"header\"\n"                                       /* 3 */
                                 "    comment = \"for us\"\n"                                   /* 4 */
                                 "    purpose = \"on the wire\"\n"                              /* 5 */
                                 "    audit = yes\n"                                            /* 6 */
                                 "}\n"                                                          /* 7 */
                                 "context { tag = body } context { id = 9 }\n"                  /* 8 */
                                 "activity {\n"                                                 /* 9 */
                                 "    tag = timed\n"                                            /* 10 */
                                 "    match { at = 0\n every = 500 }\n"                         /* 11-12 */
                                 "    action {\n"                                               /* 13 */
                                 "        send { context = 7\n data = \"a%41%zz\" }\n"          /* 14-15 */
                                 "    }\n"                                                      /* 16 */
                                 "    action { reply { context = body\n file = \"f.bin\" } }\n" /* 17-18 */
                                 "    action { send { context = header\n handler = \"cat -\" } }\n"
                                 "    action { reply { context = 1\n template = \"<${1}>${0}\" } }\n"
                                 "    action { alert { context = 0\n level = warning\n description = close_notify } }\n"
                                 "    action { alert { context = body\n level = fatal\n description = 174 } }\n"
                                 "    action { log { handler = \"logger\" } }\n"
                                 "    action { shutdown = yes }\n"
                                 "    action { renegotiate = true }\n"
                                 "    present = yes\n"
                                 "}\n"
                                 "activity {\n"
                                 "    tag = pat\n"
                                 "    match { which = [ header, 1 ]\n regex = \"a(b+)\"\n forward = yes }\n"
                                 "    action { }\n"
                                 "}\n"
                                 "activity { tag = cnt\n match { which = *\n container = 3 }\n action { } }\n"
                                 "activity { tag = prob\n match { which = 7\n container = 0.25 }\n action { } }\n"
                                 "activity { tag = all\n match { which = body\n container = all }\n action { } }\n"
                                 "activity { tag = star\n match { which = body\n container = \"*\" }\n action { } }\n"
                                 "activity { tag = fil\n match { which = body\n file = \"m.bin\" }\n action { } }\n"
                                 "client {\n"
                                 "    version = v1.0\n"
                                 "    address = \"tlmsp://client.example:4000\"\n"
                                 "    function = timed\n"
                                 "    function = [ pat ]\n"
                                 "}\n"
                                 "server {\n"
                                 "    version { min = v1.0\n max = v1.0 }\n"
                                 "    address = \"tlmsp://[::1]:4443\"\n"
                                 "    cert-file = s.pem\n"
                                 "    cert-key-file = s.key\n"
                                 "    function = [ cnt, prob ]\n"
                                 "}\n"
                                 "middlebox {\n"
                                 "    tag = \"mbox1\"\n"
                                 "    address = tlmsp://10.0.0.2:10001\n"
                                 "    cert-file = m.pem\n"
                                 "    cert-key-file = m.key\n"
                                 "    transparent = no\n"
                                 "    discovered = no\n"
                                 "    forbidden = yes\n"
                                 "    context { which = [ \"header\", 1 ]\n access = rw }\n"
                                 "    context { which = 9\n access = none }\n"
                                 "    function-to-client = pat\n"
                                 "    function-to-server = [ pat ]\n"
                                 "}\n";

static void test_everything_contexts(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok(everything);
    assert_string_equal(cfg->name, "t.ucl");
    assert_int_equal(cfg->n_contexts, 3);
    const msp_tlmsp_cfg_context_t *c = &cfg->contexts[0];
    assert_int_equal(c->id, 7);
    assert_false(c->id_auto);
    assert_string_equal(c->tag, "header");
    assert_string_equal(c->comment, "for us");
    assert_string_equal(c->purpose, "on the wire");
    assert_true(c->audit);
    assert_int_equal(c->line, 1);
    c = &cfg->contexts[1];
    assert_int_equal(c->id, 1); /* the lowest free id */
    assert_true(c->id_auto);
    assert_string_equal(c->tag, "body");
    assert_string_equal(c->comment, "");
    assert_false(c->audit);
    assert_ptr_equal(msp_tlmsp_cfg_context_by_id(cfg, 1), &cfg->contexts[1]);
    assert_ptr_equal(msp_tlmsp_cfg_context_by_tag(cfg, "header"), &cfg->contexts[0]);
    assert_null(msp_tlmsp_cfg_context_by_id(cfg, 2));
    assert_null(msp_tlmsp_cfg_context_by_tag(cfg, "nope"));
    msp_tlmsp_cfg_free(cfg);
}

static void test_everything_actions(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok(everything);
    assert_int_equal(cfg->n_activities, 7);
    const msp_tlmsp_cfg_activity_t *a = &cfg->activities[0];
    assert_string_equal(a->tag, "timed");
    assert_true(a->present);
    assert_true(a->match.has_at);
    assert_int_equal(a->match.at_ms, 0);
    assert_true(a->match.has_every);
    assert_int_equal(a->match.every_ms, 500);
    assert_int_equal(a->match.n_which, 0);
    assert_int_equal(a->n_actions, 9);
    const msp_tlmsp_cfg_action_t *x = a->actions;
    assert_int_equal(x[0].kind, MSP_TLMSP_CFG_ACTION_SEND);
    assert_int_equal(x[0].context_id, 7);
    assert_int_equal(x[0].payload, MSP_TLMSP_CFG_PAYLOAD_DATA);
    assert_bytes(x[0].data, "aA%zz", 5);
    assert_int_equal(x[0].line, 14);
    assert_int_equal(x[1].kind, MSP_TLMSP_CFG_ACTION_REPLY);
    assert_int_equal(x[1].context_id, 1);
    assert_int_equal(x[1].payload, MSP_TLMSP_CFG_PAYLOAD_FILE);
    assert_string_equal(x[1].text, "f.bin");
    assert_int_equal(x[2].payload, MSP_TLMSP_CFG_PAYLOAD_HANDLER);
    assert_string_equal(x[2].text, "cat -");
    assert_int_equal(x[2].context_id, 7);
    assert_int_equal(x[3].payload, MSP_TLMSP_CFG_PAYLOAD_TEMPLATE);
    assert_int_equal(x[3].n_segments, 2);
    assert_bytes(x[3].segments[0].data, "<", 1);
    assert_int_equal(x[3].segments[0].ref, 1);
    assert_bytes(x[3].segments[1].data, ">", 1);
    assert_int_equal(x[3].segments[1].ref, 0);
    assert_int_equal(x[4].kind, MSP_TLMSP_CFG_ACTION_ALERT);
    assert_int_equal(x[4].context_id, 0);
    assert_int_equal(x[4].level, MSP_TLMSP_CFG_ALERT_WARNING);
    assert_int_equal(x[4].description, 0);
    assert_int_equal(x[5].context_id, 1);
    assert_int_equal(x[5].level, MSP_TLMSP_CFG_ALERT_FATAL);
    assert_int_equal(x[5].description, 174);
    assert_int_equal(x[6].kind, MSP_TLMSP_CFG_ACTION_LOG);
    assert_string_equal(x[6].text, "logger");
    assert_int_equal(x[7].kind, MSP_TLMSP_CFG_ACTION_SHUTDOWN);
    assert_int_equal(x[8].kind, MSP_TLMSP_CFG_ACTION_RENEGOTIATE);
    msp_tlmsp_cfg_free(cfg);
}

static void test_everything_matches(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok(everything);
    size_t idx;
    const msp_tlmsp_cfg_activity_t *a = msp_tlmsp_cfg_activity_by_tag(cfg, "pat", &idx);
    assert_non_null(a);
    assert_int_equal(idx, 1);
    assert_int_equal(a->n_actions, 0);
    assert_false(a->present);
    assert_int_equal(a->match.pattern, MSP_TLMSP_CFG_PATTERN_REGEX);
    assert_string_equal(a->match.text, "a(b+)");
    assert_true(a->match.forward);
    assert_int_equal(a->match.n_which, 2);
    assert_int_equal(a->match.which[0], 7);
    assert_int_equal(a->match.which[1], 1);
    assert_false(a->match.which_all);
    a = &cfg->activities[2];
    assert_int_equal(a->match.container, MSP_TLMSP_CFG_CONTAINER_NTH);
    assert_int_equal(a->match.container_n, 3);
    assert_true(a->match.which_all);
    assert_int_equal(a->match.n_which, 3);
    a = &cfg->activities[3];
    assert_int_equal(a->match.container, MSP_TLMSP_CFG_CONTAINER_PROBABILITY);
    assert_true(a->match.container_p == 0.25);
    assert_int_equal(cfg->activities[4].match.container, MSP_TLMSP_CFG_CONTAINER_ALL);
    assert_int_equal(cfg->activities[5].match.container, MSP_TLMSP_CFG_CONTAINER_ALL);
    a = &cfg->activities[6];
    assert_int_equal(a->match.pattern, MSP_TLMSP_CFG_PATTERN_FILE);
    assert_string_equal(a->match.text, "m.bin");
    assert_null(msp_tlmsp_cfg_activity_by_tag(cfg, "none", NULL));
    msp_tlmsp_cfg_free(cfg);
}

static void test_everything_entities(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok(everything);
    const msp_tlmsp_cfg_entity_t *e = &cfg->client;
    assert_true(e->defined);
    assert_int_equal(e->role, MSP_TLMSP_CFG_CLIENT);
    assert_int_equal(e->address.kind, MSP_TLMSP_CFG_ADDR_URL);
    assert_string_equal(e->address.host, "client.example");
    assert_int_equal(e->address.port, 4000);
    assert_int_equal(e->version_min, 0x0100);
    assert_int_equal(e->version_max, 0x0100);
    assert_int_equal(e->to_server.n, 2);
    assert_int_equal(e->to_server.activity[0], 0);
    assert_int_equal(e->to_server.activity[1], 1);
    assert_int_equal(e->to_client.n, 0);
    e = &cfg->server;
    assert_string_equal(e->address.host, "::1");
    assert_int_equal(e->address.port, 4443);
    assert_string_equal(e->cert_file, "s.pem");
    assert_string_equal(e->cert_key_file, "s.key");
    assert_int_equal(e->to_client.n, 2);
    assert_int_equal(e->to_client.activity[1], 3);
    assert_int_equal(cfg->n_middleboxes, 1);
    e = msp_tlmsp_cfg_middlebox_by_tag(cfg, "mbox1");
    assert_ptr_equal(e, &cfg->middleboxes[0]);
    assert_int_equal(e->role, MSP_TLMSP_CFG_MIDDLEBOX);
    assert_string_equal(e->address.host, "10.0.0.2");
    assert_int_equal(e->address.port, 10001);
    assert_string_equal(e->cert_file, "m.pem");
    assert_string_equal(e->cert_key_file, "m.key");
    assert_false(e->transparent);
    assert_false(e->discovered);
    assert_true(e->forbidden);
    assert_int_equal(e->n_contexts, 3);
    assert_int_equal(e->context_ids[0], 7);
    assert_int_equal(e->context_ids[1], 1);
    assert_int_equal(e->context_ids[2], 9);
    assert_int_equal(e->access[7], MSP_TLMSP_CFG_ACCESS_RW);
    assert_int_equal(e->access[1], MSP_TLMSP_CFG_ACCESS_RW);
    assert_int_equal(e->access[9], MSP_TLMSP_CFG_ACCESS_NONE);
    assert_int_equal(e->access[2], MSP_TLMSP_CFG_ACCESS_NONE);
    assert_int_equal(e->to_client.n, 1);
    assert_int_equal(e->to_server.n, 1);
    assert_null(msp_tlmsp_cfg_middlebox_by_tag(cfg, "mbox2"));
    msp_tlmsp_cfg_free(cfg);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok("context { }\n"
                                   "activity { tag = t\n match { at = 10 }\n action { } }\n"
                                   "middlebox { tag = mb\n address = mb.example\n"
                                   " context { which = 1 } }\n");
    assert_int_equal(cfg->contexts[0].id, 1);
    assert_string_equal(cfg->contexts[0].tag, "");
    assert_string_equal(cfg->contexts[0].purpose, "");
    assert_false(cfg->activities[0].present);
    assert_false(cfg->activities[0].match.has_every);
    assert_false(cfg->client.defined);
    assert_false(cfg->server.defined);
    assert_string_equal(cfg->client.address.text, "");
    assert_string_equal(cfg->client.cert_file, "");
    assert_string_equal(cfg->server.cert_file, "server-cert.pem");
    assert_string_equal(cfg->server.cert_key_file, "server-key.pem");
    assert_int_equal(cfg->server.version_min, MSP_TLMSP_CFG_VERSION_1_0);
    assert_int_equal(cfg->client.version_max, MSP_TLMSP_CFG_VERSION_1_0);
    const msp_tlmsp_cfg_entity_t *m = &cfg->middleboxes[0];
    assert_string_equal(m->cert_file, "mb-cert.pem");
    assert_string_equal(m->cert_key_file, "mb-key.pem");
    assert_int_equal(m->access[1], MSP_TLMSP_CFG_ACCESS_R);
    assert_int_equal(m->address.kind, MSP_TLMSP_CFG_ADDR_HOST);
    assert_int_equal(m->address.port, 443);
    assert_false(m->transparent || m->discovered || m->forbidden);
    msp_tlmsp_cfg_free(cfg);
}

static void test_auto_ids(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok("context { id = 1 }\ncontext { }\ncontext { id = 5 }\ncontext { }\n"
                                   "Context { ID = 4\n TAG = upper }\n");
    assert_int_equal(cfg->n_contexts, 5);
    assert_int_equal(cfg->contexts[1].id, 2);
    assert_true(cfg->contexts[1].id_auto);
    assert_int_equal(cfg->contexts[3].id, 3);
    assert_int_equal(cfg->contexts[4].id, 4);
    assert_string_equal(cfg->contexts[4].tag, "upper");
    msp_tlmsp_cfg_free(cfg);
}

static void test_shared_tags_and_star(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok("context { id = 2\n tag = x }\ncontext { id = 3\n tag = x }\n"
                                   "context { id = 4 }\n"
                                   "activity { tag = a\n match { which = [ x, 2, 3 ]\n which = 4\n data = d }\n"
                                   " action { } }\n"
                                   "middlebox { tag = m\n address = tlmsp://h\n context { which = * } }\n");
    const msp_tlmsp_cfg_match_t *m = &cfg->activities[0].match;
    assert_int_equal(m->n_which, 3);
    assert_int_equal(m->which[2], 4);
    assert_null(msp_tlmsp_cfg_context_by_tag(cfg, "x"));
    assert_int_equal(cfg->middleboxes[0].n_contexts, 3);
    assert_int_equal(cfg->middleboxes[0].access[3], MSP_TLMSP_CFG_ACCESS_R);
    msp_tlmsp_cfg_free(cfg);
}

static void test_templates(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok("context { }\n"
                                   "activity { tag = a\n match { which = 1\n regex = x }\n action {\n"
                                   " send { context = 1\n template = \"${0}${0}\" }\n"
                                   " send { context = 1\n template = \"%24{12}tail$x\" }\n"
                                   " send { context = 1\n template = ${0} } } }\n");
    const msp_tlmsp_cfg_action_t *x = cfg->activities[0].actions;
    assert_int_equal(x[0].n_segments, 2);
    assert_int_equal(x[0].segments[0].data.len, 0);
    assert_int_equal(x[0].segments[1].ref, 0);
    assert_int_equal(x[1].n_segments, 2);
    assert_int_equal(x[1].segments[0].ref, 12);
    assert_bytes(x[1].segments[1].data, "tail$x", 6);
    assert_int_equal(x[1].segments[1].ref, MSP_TLMSP_CFG_TEMPLATE_END);
    assert_string_equal(x[2].text, "${0}");
    assert_int_equal(x[2].n_segments, 1);
    msp_tlmsp_cfg_free(cfg);
}

static void test_alert_names(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok("context { }\n"
                                   "activity { tag = a\n match { at = 1 }\n action {\n"
                                   " alert { context = 1\n level = fatal\n description = middlebox_auth_failure }\n"
                                   " alert { context = 1\n level = fatal\n description = discovery_ack }\n"
                                   " alert { context = 1\n level = fatal\n description = 255 } } }\n");
    const msp_tlmsp_cfg_action_t *x = cfg->activities[0].actions;
    assert_int_equal(x[0].description, 171);
    assert_int_equal(x[1].description, 173);
    assert_int_equal(x[2].description, 255);
    assert_string_equal(msp_tlmsp_cfg_alert_name(171), "middlebox_authorization_failure");
    assert_string_equal(msp_tlmsp_cfg_alert_name(50), "decode_error");
    assert_null(msp_tlmsp_cfg_alert_name(255));
    assert_string_equal(msp_tlmsp_cfg_access_name(MSP_TLMSP_CFG_ACCESS_RW), "rw");
    msp_tlmsp_cfg_free(cfg);
}

static void test_client_mac_address(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_ok("context { }\nclient { address = \"00:1a:2B:3c:4d:5e\" }\n");
    assert_int_equal(cfg->client.address.kind, MSP_TLMSP_CFG_ADDR_MAC);
    assert_string_equal(cfg->client.address.host, "");
    msp_tlmsp_cfg_free(cfg);
}

static void test_address_parse(void **state)
{
    (void)state;
    char host[64];
    uint16_t port = 0;
    assert_int_equal(msp_tlmsp_cfg_address_parse("tlmsp://localhost:10255", host, sizeof(host), &port), MSP_OK);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 10255);
    assert_int_equal(msp_tlmsp_cfg_address_parse("other://h.example", host, sizeof(host), &port), MSP_OK);
    assert_string_equal(host, "h.example");
    assert_int_equal(port, 443);
    assert_int_equal(msp_tlmsp_cfg_address_parse("tlmsp://[fe80::1]:1", host, sizeof(host), &port), MSP_OK);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 1);
    assert_int_equal(msp_tlmsp_cfg_address_parse("2001:db8::2", host, sizeof(host), &port), MSP_OK);
    assert_string_equal(host, "2001:db8::2");
    assert_int_equal(msp_tlmsp_cfg_address_parse("192.0.2.1", host, sizeof(host), &port), MSP_OK);
    static const char *const bad[] = {
        "tlmsp://::1:80", "tlmsp://h:0", "tlmsp://h:65536",  "tlmsp://h:port", "tlmsp://h:80/x",    "tlmsp://",
        "://h",           "h:80",        "tlmsp://[::1",     "tlmsp://[h]:1",  "00:11:22:33:44:55", "",
        "tlmsp://h:",     "a b",         "tlmsp://h:123456",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (msp_tlmsp_cfg_address_parse(bad[i], host, sizeof(host), &port) != MSP_ERR_SYNTAX) {
            fail_msg("\"%s\" was accepted", bad[i]);
        }
    }
    assert_int_equal(msp_tlmsp_cfg_address_parse("tlmsp://averylonghostname", host, 8, &port), MSP_ERR_LIMIT);
    assert_int_equal(msp_tlmsp_cfg_address_parse(NULL, host, 8, &port), MSP_ERR_ARGUMENT);
}

/* ---- our data files ---- */

static msp_tlmsp_cfg_t *load_data(const char *file)
{
    char path[512];
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_error_t err;
    snprintf(path, sizeof(path), "%s/data/tlmsp/%s", MSP_SOURCE_DIR, file);
    if (msp_tlmsp_cfg_load_file(path, &cfg, &err) != MSP_OK) {
        fail_msg("%s: %s", err.where, err.detail);
    }
    return cfg;
}

static void assert_fn(const msp_tlmsp_cfg_t *cfg, const msp_tlmsp_cfg_fnlist_t *l, size_t i, const char *tag)
{
    assert_true(i < l->n);
    assert_string_equal(cfg->activities[l->activity[i]].tag, tag);
}

static void test_data_pingpong(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_data("pingpong.ucl");
    assert_int_equal(cfg->n_contexts, 1);
    assert_int_equal(cfg->contexts[0].id, 1);
    assert_int_equal(cfg->n_middleboxes, 0);
    assert_int_equal(cfg->client.to_server.n, 2);
    assert_fn(cfg, &cfg->client.to_server, 0, "client-ping");
    assert_fn(cfg, &cfg->server.to_client, 0, "server-pong");
    const msp_tlmsp_cfg_activity_t *a = &cfg->activities[0];
    assert_int_equal(a->match.at_ms, 2000);
    assert_int_equal(a->match.every_ms, 3000);
    assert_bytes(a->actions[0].data, "client-ping", 11);
    assert_int_equal(cfg->activities[1].n_actions, 0);
    assert_int_equal(cfg->server.address.port, 10455);
    msp_tlmsp_cfg_free(cfg);
}

static void test_data_pingpong_1mbox(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_data("pingpong-1mbox.ucl");
    assert_int_equal(cfg->n_middleboxes, 1);
    const msp_tlmsp_cfg_entity_t *m = &cfg->middleboxes[0];
    assert_string_equal(m->tag, "mbox1");
    assert_int_equal(m->address.port, 10401);
    assert_int_equal(m->access[1], MSP_TLMSP_CFG_ACCESS_RW);
    assert_fn(cfg, &m->to_server, 0, "mbox-ping");
    assert_fn(cfg, &m->to_client, 0, "mbox-pong");
    assert_string_equal(m->cert_file, "mbox1-cert.pem");
    msp_tlmsp_cfg_free(cfg);
}

static void test_data_pingpong_2mbox(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_data("pingpong-2mbox.ucl");
    assert_int_equal(cfg->n_contexts, 2);
    assert_true(cfg->contexts[1].audit);
    assert_int_equal(cfg->n_middleboxes, 2);
    const msp_tlmsp_cfg_entity_t *m1 = &cfg->middleboxes[0];
    const msp_tlmsp_cfg_entity_t *m2 = &cfg->middleboxes[1];
    assert_int_equal(m1->access[1], MSP_TLMSP_CFG_ACCESS_RW);
    assert_int_equal(m1->access[2], MSP_TLMSP_CFG_ACCESS_R);
    assert_int_equal(m2->access[1], MSP_TLMSP_CFG_ACCESS_R);
    assert_int_equal(m2->access[2], MSP_TLMSP_CFG_ACCESS_RW);
    assert_fn(cfg, &m1->to_server, 0, "mbox1-ping");
    assert_int_equal(m1->to_client.n, 0);
    assert_fn(cfg, &m2->to_client, 0, "mbox2-pong");
    assert_int_equal(m2->address.port, 10402);
    assert_int_equal(cfg->activities[4].actions[0].context_id, 2);
    msp_tlmsp_cfg_free(cfg);
}

/* ---- limits and I/O ---- */

enum { MANY_CONTEXTS, MANY_ACTIVITIES, MANY_MBOXES };

/* n blocks of one kind (after one context for the last two), one block per line group. */
static char *many(int kind, size_t n)
{
    size_t cap = 64 + n * 64;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t len = (size_t)snprintf(s, cap, "%s", kind == MANY_CONTEXTS ? "" : "context { }\n");
    for (size_t i = 0; i < n; i++) {
        if (kind == MANY_CONTEXTS) {
            len += (size_t)snprintf(s + len, cap - len, "context { comment = \"%zu\" }\n", i);
        } else if (kind == MANY_ACTIVITIES) {
            len += (size_t)snprintf(s + len, cap - len, "activity { tag = a%zu\nmatch { at = 1 }\naction { } }\n", i);
        } else {
            len += (size_t)snprintf(s + len, cap - len, "middlebox { tag = m%zu\naddress = h%zu }\n", i, i);
        }
    }
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    char *s = many(MANY_CONTEXTS, 256);
    load_bad(s, MSP_ERR_LIMIT, 256, "more than 255 contexts");
    free(s);
    s = many(MANY_ACTIVITIES, 1025);
    load_bad(s, MSP_ERR_LIMIT, 2 + 3 * 1024, "more than 1024 activities");
    free(s);
    s = many(MANY_MBOXES, 252);
    load_bad(s, MSP_ERR_LIMIT, 2 + 2 * 251, "more than 251 middleboxes");
    free(s);
    s = many(MANY_MBOXES, 251);
    msp_tlmsp_cfg_t *cfg = load_ok(s);
    assert_int_equal(cfg->n_middleboxes, 251);
    msp_tlmsp_cfg_free(cfg);
    free(s);
    size_t big = MSP_TLMSP_CFG_MAX_FILE + 1;
    s = malloc(big);
    assert_non_null(s);
    memset(s, '#', big);
    msp_error_t err;
    cfg = (msp_tlmsp_cfg_t *)1;
    assert_int_equal(msp_tlmsp_cfg_load_mem(s, big, "big", &cfg, &err), MSP_ERR_LIMIT);
    assert_null(cfg);
    free(s);
}

static void test_io(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = (msp_tlmsp_cfg_t *)1;
    msp_error_t err;
    assert_int_equal(msp_tlmsp_cfg_load_file("/nonexistent/x.ucl", &cfg, &err), MSP_ERR_IO);
    assert_null(cfg);
    assert_string_equal(err.where, "/nonexistent/x.ucl");
    assert_int_equal(msp_tlmsp_cfg_load_mem(NULL, 1, NULL, &cfg, &err), MSP_ERR_ARGUMENT);
    msp_tlmsp_cfg_free(NULL);
}

/* ---- refusals: one per rule ---- */

#define C1 "context { id = 1\n tag = one }\n" /* lines 1-2 */

static void test_bad_syntax(void **state)
{
    (void)state;
    load_bad("context {\n id = 1\n", MSP_ERR_SYNTAX, 3, "");
    load_bad("[ 1, 2 ]\n", MSP_ERR_INVALID, 1, "set of blocks");
    load_bad("", MSP_ERR_INVALID, 1, "at least one context");
}

static void test_bad_unknown_keys(void **state)
{
    (void)state;
    load_bad(C1 "contxt { }\n", MSP_ERR_INVALID, 3, "unknown key \"contxt\" in the configuration");
    load_bad("context {\n idd = 1 }\n", MSP_ERR_INVALID, 2, "unknown key \"idd\" in context");
    load_bad(C1 "middlebox { tag = mbox1\n address = h\n context { which = 1\n acess = rw } }\n", MSP_ERR_INVALID, 6,
             "unknown key \"acess\" in middlebox \"mbox1\"");
    load_bad(C1 "activity { tag = a\n match { at = 1\n wich = 1 }\n action { } }\n", MSP_ERR_INVALID, 5,
             "unknown key \"wich\" in the match of activity \"a\"");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { fault = drop } }\n", MSP_ERR_INVALID, 5,
             "unknown key \"fault\"");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { log { file = x } } }\n", MSP_ERR_INVALID, 5,
             "unknown key \"file\" in the log of activity \"a\"");
    load_bad(C1 "client { address = h\n cert-file = x }\n", MSP_ERR_INVALID, 4,
             "unknown key \"cert-file\" in the client");
    load_bad(C1 "server { address = h\n version { min = v1.0\n low = v1.0 } }\n", MSP_ERR_INVALID, 5,
             "unknown key \"low\"");
    load_bad("context { name \"x\" { } }\n", MSP_ERR_INVALID, 1, "unknown key \"name\" in context");
}

static void test_bad_repeated_key(void **state)
{
    (void)state;
    load_bad("context { id = 1\n id = 2 }\n", MSP_ERR_INVALID, 2, "\"id\" is given more than once in context");
    load_bad(C1 "client { address = a }\nclient { address = b }\n", MSP_ERR_INVALID, 4, "\"client\" is given more");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n match { at = 2 }\n action { } }\n", MSP_ERR_INVALID, 5,
             "\"match\" is given more");
}

static void test_bad_context_ids(void **state)
{
    (void)state;
    load_bad(C1 "context { id = 1 }\n", MSP_ERR_INVALID, 3, "context id 1 is already used by the context at line 1");
    load_bad("context { }\ncontext { id = 1 }\n", MSP_ERR_INVALID, 2, "got it automatically");
    load_bad("context { id = 0 }\n", MSP_ERR_INVALID, 1, "between 1 and 255, not 0");
    load_bad("context { id = 256 }\n", MSP_ERR_INVALID, 1, "between 1 and 255");
    load_bad("context { id = one }\n", MSP_ERR_INVALID, 1, "must be a whole number, not a string");
    load_bad("context { tag = \"*\" }\n", MSP_ERR_INVALID, 1, "cannot be tagged \"*\"");
    load_bad("context { tag = 1.5 }\n", MSP_ERR_INVALID, 1, "must be a string, not a float");
    load_bad("context { audit = \"yes\" }\n", MSP_ERR_INVALID, 1, "yes, no, true or false");
    load_bad("context = 5\n", MSP_ERR_INVALID, 1, "must be a block");
}

static void test_bad_purpose(void **state)
{
    (void)state;
    char text[400];
    char longp[300];
    memset(longp, 'p', 256);
    longp[256] = '\0';
    snprintf(text, sizeof(text), "context {\n purpose = \"%s\" }\n", longp);
    load_bad(text, MSP_ERR_INVALID, 2, "at most 255 bytes, not 256");
}

static void test_bad_context_order(void **state)
{
    (void)state;
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { } }\ncontext { }\n", MSP_ERR_INVALID, 6,
             "after the first activity or middlebox (line 3)");
}

static void test_bad_which(void **state)
{
    (void)state;
    load_bad(C1 "activity { tag = a\n match { which = two\n data = x }\n action { } }\n", MSP_ERR_INVALID, 4,
             "no context has the tag \"two\"");
    load_bad(C1 "activity { tag = a\n match { which = 9\n data = x }\n action { } }\n", MSP_ERR_INVALID, 4,
             "context 9 in \"which\" of the match of activity \"a\" is not defined");
    load_bad(C1 "activity { tag = a\n match { which = [ [ 1 ] ]\n data = x }\n action { } }\n", MSP_ERR_INVALID, 4,
             "array inside an array");
    load_bad(C1 "activity { tag = a\n match { which = 1.0\n data = x }\n action { } }\n", MSP_ERR_INVALID, 4,
             "whole number");
    load_bad(C1 "middlebox { tag = m\n address = h\n context { which = 1 }\n context { which = one } }\n",
             MSP_ERR_INVALID, 6, "context 1 is named more than once in middlebox \"m\"");
    load_bad(C1 "middlebox { tag = m\n address = h\n context { access = r } }\n", MSP_ERR_INVALID, 5,
             "has no \"which\"");
    load_bad(C1 "middlebox { tag = m\n address = h\n context { which = 7 } }\n", MSP_ERR_INVALID, 5,
             "context 7 in \"which\" of middlebox \"m\" is not defined");
}

static void test_bad_access(void **state)
{
    (void)state;
    load_bad(C1 "middlebox { tag = m\n address = h\n context { which = 1\n access = w } }\n", MSP_ERR_INVALID, 6,
             "must be none, r or rw");
    load_bad(C1 "activity { tag = a\n match { which = 1\n data = x }\n action { } }\n"
                "middlebox { tag = m\n address = h\n context { which = 1 }\n function-to-server = a }\n",
             MSP_ERR_INVALID, 10, "middlebox \"m\" needs rw access to context 1 for activity \"a\"");
    load_bad(C1
             "activity { tag = a\n match { which = 1\n data = x\n forward = yes }\n action { } }\n"
             "middlebox { tag = m\n address = h\n context { which = 1\n access = none }\n function-to-client = a }\n",
             MSP_ERR_INVALID, 12, "needs r access to context 1");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { send { context = 1\n data = x } } }\n"
                "middlebox { tag = m\n address = h\n function-to-client = a }\n",
             MSP_ERR_INVALID, 9, "needs rw access to context 1 for activity \"a\" (it sends there), but has none");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { renegotiate = yes } }\n"
                "middlebox { tag = m\n address = h\n function-to-client = a }\n",
             MSP_ERR_INVALID, 8, "only endpoints renegotiate");
}

static void test_bad_functions(void **state)
{
    (void)state;
    load_bad(C1 "client { address = h\n function = nope }\n", MSP_ERR_INVALID, 4,
             "no activity has the tag \"nope\" listed in \"function\" of the client");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { } }\nserver { address = h\n function = [ a, a ] }\n",
             MSP_ERR_INVALID, 7, "activity \"a\" is listed twice");
    load_bad(C1 "client { address = h\n function = 3 }\n", MSP_ERR_INVALID, 4, "lists activity tags, not a int");
}

static void test_bad_activity_shape(void **state)
{
    (void)state;
    load_bad(C1 "activity { match { at = 1 }\n action { } }\n", MSP_ERR_INVALID, 3, "an activity has no \"tag\"");
    load_bad(C1 "activity { tag = \"\"\n match { at = 1 } }\n", MSP_ERR_INVALID, 3, "\"tag\" in an activity is empty");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { } }\nactivity { tag = a\n match { at = 1 }\n"
                " action { } }\n",
             MSP_ERR_INVALID, 6, "the activity tag \"a\" is already used at line 3");
    load_bad(C1 "activity { tag = a\n action { } }\n", MSP_ERR_INVALID, 3, "has no \"match\"");
    load_bad(C1 "activity { tag = a\n match { at = 1 } }\n", MSP_ERR_INVALID, 3, "has no \"action\"");
    load_bad(C1 "activity { tag = a\n action { }\n match { at = 1 } }\n", MSP_ERR_INVALID, 4,
             "\"action\" comes before \"match\"");
    load_bad(C1 "activity { tag = a\n match { }\n action { } }\n", MSP_ERR_INVALID, 4, "needs at/every");
    load_bad(C1 "activity { tag = a\n match { at = 1\n data = x }\n action { } }\n", MSP_ERR_INVALID, 4,
             "mixes time, container and pattern");
    load_bad(C1 "activity { tag = a\n match { at = 1\n which = 1 }\n action { } }\n", MSP_ERR_INVALID, 5,
             "\"which\" does not apply to a time match");
    load_bad(C1 "activity { tag = a\n match { every = 1\n forward = no }\n action { } }\n", MSP_ERR_INVALID, 5,
             "\"forward\" does not apply");
    load_bad(C1 "activity { tag = a\n match { data = x }\n action { } }\n", MSP_ERR_INVALID, 4, "needs \"which\"");
    load_bad(C1 "activity { tag = a\n match { which = 1\n data = x\n regex = y }\n action { } }\n", MSP_ERR_INVALID, 6,
             "more than one of data, file and regex");
    load_bad(C1 "activity { tag = a\n match { which = 1\n data = \"\" }\n action { } }\n", MSP_ERR_INVALID, 5,
             "\"data\" in the match of activity \"a\" is empty");
    load_bad(C1 "activity { tag = a\n match { which = 1\n data = no }\n action { } }\n", MSP_ERR_INVALID, 5,
             "must be a string, not a bool");
    load_bad(C1 "activity { tag = a\n match { at = 1 }\n action { }\n present = 1 }\n", MSP_ERR_INVALID, 6,
             "\"present\"");
}

static void test_bad_time(void **state)
{
    (void)state;
    load_bad(C1 "activity { tag = a\n match { at = 2s\n }\n action { } }\n", MSP_ERR_INVALID, 4,
             "milliseconds without a unit (write 2000");
    load_bad(C1 "activity { tag = a\n match { every = 5s }\n action { } }\n", MSP_ERR_INVALID, 4,
             "milliseconds without a unit, not \"5s\"");
    load_bad(C1 "activity { tag = a\n match { at = 1.5 }\n action { } }\n", MSP_ERR_INVALID, 4, "whole number");
    load_bad(C1 "activity { tag = a\n match { at = -1 }\n action { } }\n", MSP_ERR_INVALID, 4, "between 0 and");
    load_bad(C1 "activity { tag = a\n match { every = 0 }\n action { } }\n", MSP_ERR_INVALID, 4, "between 1 and");
    load_bad(C1 "activity { tag = a\n match { every = 1209600001 }\n action { } }\n", MSP_ERR_INVALID, 4,
             "and 1209600000, not 1209600001");
}

static void test_bad_container(void **state)
{
    (void)state;
    load_bad(C1 "activity { tag = a\n match { which = 1\n container = 0 }\n action { } }\n", MSP_ERR_INVALID, 5,
             "between 1 and");
    load_bad(C1 "activity { tag = a\n match { which = 1\n container = 1.0 }\n action { } }\n", MSP_ERR_INVALID, 5,
             "strictly between 0 and 1");
    load_bad(C1 "activity { tag = a\n match { which = 1\n container = 0.0 }\n action { } }\n", MSP_ERR_INVALID, 5,
             "strictly between 0 and 1");
    load_bad(C1 "activity { tag = a\n match { which = 1\n container = some }\n action { } }\n", MSP_ERR_INVALID, 5,
             "a count n >= 1, a probability, * or all");
}

#define ACT(body) C1 "activity { tag = a\n match { at = 1 }\n action {\n" body " } }\n" /* body from line 6 */

static void test_bad_send(void **state)
{
    (void)state;
    load_bad(ACT("send { data = x }"), MSP_ERR_INVALID, 6, "the send of activity \"a\" has no \"context\"");
    load_bad(ACT("reply { context = 1 }"), MSP_ERR_INVALID, 6, "the reply of activity \"a\" needs one of data");
    load_bad(ACT("send { context = 1\n data = x\n file = y }"), MSP_ERR_INVALID, 8, "more than one of data, file");
    load_bad(ACT("send { context = 2\n data = x }"), MSP_ERR_INVALID, 6, "context 2 in the send of activity");
    load_bad(ACT("send { context = 0\n data = x }"), MSP_ERR_INVALID, 6, "between 1 and 255");
    load_bad(ACT("send { context = two\n data = x }"), MSP_ERR_INVALID, 6, "no context has the tag \"two\"");
    load_bad(C1 "context { tag = one }\nactivity { tag = a\n match { at = 1 }\n action {\n"
                "send { context = one\n data = x } } }\n",
             MSP_ERR_INVALID, 7, "names 2 contexts; give one context id");
    load_bad(ACT("send { context = 1\n data = \"\" }"), MSP_ERR_INVALID, 7, "is empty");
    load_bad(ACT("send { context = 1\n handler = \"\" }"), MSP_ERR_INVALID, 7, "is empty");
    load_bad(ACT("send { context = 1\n template = \"x${y}\" }"), MSP_ERR_INVALID, 7,
             "a \"${\" that is not a reference");
    load_bad(ACT("send { context = 1\n template = \"${256}\" }"), MSP_ERR_INVALID, 7, "not a reference ${0} to ${255}");
    load_bad(ACT("send { context = 1\n template = \"${1\" }"), MSP_ERR_INVALID, 7, "not a reference");
    load_bad(ACT("send = 3"), MSP_ERR_INVALID, 6, "must be a block");
}

static void test_bad_alert(void **state)
{
    (void)state;
    load_bad(ACT("alert { context = 1\n description = 10 }"), MSP_ERR_INVALID, 6, "has no \"level\"");
    load_bad(ACT("alert { level = fatal\n description = 10 }"), MSP_ERR_INVALID, 6, "has no \"context\"");
    load_bad(ACT("alert { context = 1\n level = fatal }"), MSP_ERR_INVALID, 6, "has no \"description\"");
    load_bad(ACT("alert { context = 1\n level = severe\n description = 10 }"), MSP_ERR_INVALID, 7,
             "must be warning or fatal");
    load_bad(ACT("alert { context = 1\n level = fatal\n description = bad_thing }"), MSP_ERR_INVALID, 8,
             "unknown alert description \"bad_thing\"");
    load_bad(ACT("alert { context = 1\n level = fatal\n description = 256 }"), MSP_ERR_INVALID, 8, "between 0 and 255");
    load_bad(ACT("alert { context = 256\n level = fatal\n description = 1 }"), MSP_ERR_INVALID, 6, "between 0 and 255");
}

static void test_bad_other_actions(void **state)
{
    (void)state;
    load_bad(ACT("shutdown = no"), MSP_ERR_INVALID, 6, "\"shutdown = no\" in activity \"a\" does nothing");
    load_bad(ACT("renegotiate = 1"), MSP_ERR_INVALID, 6, "yes, no, true or false");
    load_bad(ACT("log { }"), MSP_ERR_INVALID, 6, "has no \"handler\"");
    load_bad(ACT("send { context = 1\n data = x }\n alert { context = 1\n level = fatal\n description = 0 }\n"
                 " send { context = 1\n data = y }"),
             MSP_ERR_INVALID, 11, "\"send\" comes again after other actions");
}

static void test_bad_entities(void **state)
{
    (void)state;
    load_bad(C1 "client { function = [ ] }\n", MSP_ERR_INVALID, 3, "the client has no \"address\"");
    load_bad(C1 "server { }\n", MSP_ERR_INVALID, 3, "the server has no \"address\"");
    load_bad(C1 "middlebox { tag = m }\n", MSP_ERR_INVALID, 3, "middlebox \"m\" has no \"address\"");
    load_bad(C1 "middlebox { address = h }\n", MSP_ERR_INVALID, 3, "a middlebox has no \"tag\"");
    load_bad(C1 "middlebox { tag = m\n address = h }\nmiddlebox { tag = m\n address = i }\n", MSP_ERR_INVALID, 5,
             "the middlebox tag \"m\" is already used at line 3");
    load_bad(C1 "middlebox { tag = m\n address = h\n discovered = yes\n forbidden = yes }\n", MSP_ERR_INVALID, 6,
             "cannot also be forbidden");
    load_bad(C1 "middlebox { tag = m\n address = h\n transparent = 1 }\n", MSP_ERR_INVALID, 5, "\"transparent\"");
    load_bad(C1 "server { address = h\n cert-file = \"\" }\n", MSP_ERR_INVALID, 4,
             "\"cert-file\" in the server is empty");
}

static void test_bad_addresses(void **state)
{
    (void)state;
    load_bad(C1 "server {\n address = tlmsp://server:port }\n", MSP_ERR_INVALID, 4, "bad \"address\"");
    load_bad(C1 "server {\n address = \"tlmsp://::1:80\" }\n", MSP_ERR_INVALID, 4, "IPv6 address in brackets");
    load_bad(C1 "server {\n address = \"tlmsp://h:80/path\" }\n", MSP_ERR_INVALID, 4, "the port must be");
    load_bad(C1 "server {\n address = \"00:11:22:33:44:55\" }\n", MSP_ERR_INVALID, 4, "a MAC address has no host");
    load_bad(C1 "middlebox { tag = m\n address = \"h:80\" }\n", MSP_ERR_INVALID, 4, "needs the url form");
    load_bad(C1 "client {\n address = yes }\n", MSP_ERR_INVALID, 4, "must be a string, not a bool");
    load_bad(C1 "client {\n address = \"a b\" }\n", MSP_ERR_INVALID, 4, "bad \"address\" \"a b\"");
}

static void test_bad_versions(void **state)
{
    (void)state;
    load_bad(C1 "client { address = h\n version = v1.1 }\n", MSP_ERR_INVALID, 4, "version v1.1 in the client is not");
    load_bad(C1 "client { address = h\n version = 1.0 }\n", MSP_ERR_INVALID, 4, "is written v1.0");
    load_bad(C1 "client { address = h\n version = v01.0 }\n", MSP_ERR_INVALID, 4, "is written v1.0");
    load_bad(C1 "server { address = h\n version { max = v2.0 } }\n", MSP_ERR_INVALID, 4, "only v1.0 is defined");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everything_contexts),
        cmocka_unit_test(test_everything_actions),
        cmocka_unit_test(test_everything_matches),
        cmocka_unit_test(test_everything_entities),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_auto_ids),
        cmocka_unit_test(test_shared_tags_and_star),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_alert_names),
        cmocka_unit_test(test_client_mac_address),
        cmocka_unit_test(test_address_parse),
        cmocka_unit_test(test_data_pingpong),
        cmocka_unit_test(test_data_pingpong_1mbox),
        cmocka_unit_test(test_data_pingpong_2mbox),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_bad_syntax),
        cmocka_unit_test(test_bad_unknown_keys),
        cmocka_unit_test(test_bad_repeated_key),
        cmocka_unit_test(test_bad_context_ids),
        cmocka_unit_test(test_bad_purpose),
        cmocka_unit_test(test_bad_context_order),
        cmocka_unit_test(test_bad_which),
        cmocka_unit_test(test_bad_access),
        cmocka_unit_test(test_bad_functions),
        cmocka_unit_test(test_bad_activity_shape),
        cmocka_unit_test(test_bad_time),
        cmocka_unit_test(test_bad_container),
        cmocka_unit_test(test_bad_send),
        cmocka_unit_test(test_bad_alert),
        cmocka_unit_test(test_bad_other_actions),
        cmocka_unit_test(test_bad_entities),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_bad_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
