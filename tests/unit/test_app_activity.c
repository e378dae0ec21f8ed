/*
 * The activity matcher (msp/tlmsp_activity.h): the reference's semantics
 * (every occurrence matched and consumed, the rest searched again, across
 * the containers an endpoint holds), each action kind, a middlebox's
 * in-place rewrite, container and time-driven matches. The configurations
 * are written here and in tests/vectors/; none is taken from the reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "msp/tlmsp_activity.h"

static msp_tlmsp_cfg_t *load(const char *text)
{
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_error_t err;
    if (msp_tlmsp_cfg_load_mem(text, strlen(text), "t.ucl", &cfg, &err) != MSP_OK) {
        fail_msg("load failed at %s: %s\n%s", err.where, err.detail, text);
    }
    return cfg;
}

static msp_tlmsp_activity_t *matcher(const msp_tlmsp_cfg_t *cfg, const msp_tlmsp_cfg_fnlist_t *fns, bool middlebox,
                                     bool to_server, size_t max_queue)
{
    msp_tlmsp_activity_cfg_t ac = {cfg, fns, middlebox, to_server, max_queue, false};
    msp_tlmsp_activity_t *a = NULL;
    msp_error_t err;
    if (msp_tlmsp_activity_new(&ac, &a, &err) != MSP_OK) {
        fail_msg("matcher: %s: %s", err.where, err.detail);
    }
    return a;
}

static void feed(msp_tlmsp_activity_t *a, uint8_t ctx, const char *s)
{
    assert_int_equal(
        msp_tlmsp_activity_input(a, ctx, MSP_TLMSP_ACCESS_RW, (const uint8_t *)s, strlen(s), NULL, NULL, NULL), MSP_OK);
}

/* The actions taken, one line each: "kind ctx dir bytes". */
static void drain(msp_tlmsp_activity_t *a, char *out, size_t cap)
{
    static const char *const names[] = {"?", "matched", "send", "alert", "shutdown", "handler"};
    msp_tlmsp_action_t x;
    size_t n = 0;
    out[0] = '\0';
    while (msp_tlmsp_activity_next(a, &x)) {
        n += (size_t)snprintf(out + n, cap - n, "%s %u %c %.*s%s%s%s;", names[x.kind], x.context,
                              x.to_server ? 's' : 'c', (int)x.len, (const char *)x.p, x.applied ? " (applied)" : "",
                              x.command != NULL ? " $ " : "", x.command != NULL ? x.command : "");
        assert_true(n < cap);
    }
}

/* ---- the reference's growth (test/tmi.ucl): every occurrence answered ---- */

typedef struct wire {
    size_t n;
    char *data[512];
    size_t len[512];
} wire_t;

/* Takes a's sends onto the wire (one container each), returns their bytes. */
static size_t collect(msp_tlmsp_activity_t *a, wire_t *w)
{
    msp_tlmsp_action_t x;
    size_t bytes = 0;
    while (msp_tlmsp_activity_next(a, &x)) {
        if (x.kind == MSP_TLMSP_ACTION_SEND) {
            assert_true(w->n < 512);
            w->data[w->n] = malloc(x.len);
            memcpy(w->data[w->n], x.p, x.len);
            w->len[w->n++] = x.len;
            bytes += x.len;
        }
    }
    return bytes;
}

static void deliver(wire_t *w, msp_tlmsp_activity_t *to)
{
    for (size_t i = 0; i < w->n; i++) {
        assert_int_equal(
            msp_tlmsp_activity_input(to, 1, MSP_TLMSP_ACCESS_RW, (uint8_t *)w->data[i], w->len[i], NULL, NULL, NULL),
            MSP_OK);
        free(w->data[i]);
    }
    w->n = 0;
}

static msp_tlmsp_cfg_t *load_file(const char *name)
{
    char path[1024];
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_error_t err;
    snprintf(path, sizeof(path), "%s/tests/vectors/%s", MSP_SOURCE_DIR, name);
    if (msp_tlmsp_cfg_load_file(path, &cfg, &err) != MSP_OK) {
        fail_msg("%s: %s", err.where, err.detail);
    }
    return cfg;
}

static void test_growth(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_file("activity-growth.ucl");
    msp_tlmsp_activity_t *client = matcher(cfg, &cfg->client.to_server, false, true, 0);
    msp_tlmsp_activity_t *server = matcher(cfg, &cfg->server.to_client, false, false, 0);
    wire_t w = {0};
    msp_tlmsp_activity_start(client, 5000);
    msp_tlmsp_activity_start(server, 5000);
    assert_int_equal(msp_tlmsp_activity_next_due(client), 5000); /* at = 0: as the connection comes up */
    assert_int_equal(msp_tlmsp_activity_next_due(server), MSP_TLMSP_ACTIVITY_NO_TIME);
    assert_int_equal(msp_tlmsp_activity_advance(client, 5000), MSP_OK);
    assert_int_equal(msp_tlmsp_activity_next_due(client), MSP_TLMSP_ACTIVITY_NO_TIME); /* once */
    assert_int_equal(collect(client, &w), 11);
    /* each hop answers every "information" with two: 22, 44, 88 ... bytes (one match per container: 22 forever) */
    size_t expect = 11;
    for (int round = 1; round <= 8; round++) {
        msp_tlmsp_activity_t *to = round % 2 == 1 ? server : client;
        size_t containers = w.n;
        deliver(&w, to);
        expect *= 2;
        assert_int_equal(collect(to, &w), expect);
        assert_int_equal(w.n, expect / 22); /* each answer is one container of 22 bytes */
        assert_true(w.n >= containers);
        assert_int_equal(msp_tlmsp_activity_held(to), 0);
    }
    assert_int_equal(expect, 11 << 8);
    for (size_t i = 0; i < w.n; i++) {
        free(w.data[i]);
    }
    msp_tlmsp_activity_free(client);
    msp_tlmsp_activity_free(server);
    msp_tlmsp_cfg_free(cfg);
}

/* The same pattern split across containers: it matches when its last part arrives, the rest is held. */
static void test_split_across_containers(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load_file("activity-growth.ucl");
    msp_tlmsp_activity_t *server = matcher(cfg, &cfg->server.to_client, false, false, 0);
    char out[4096];
    feed(server, 1, "infor");
    drain(server, out, sizeof(out));
    assert_string_equal(out, "");
    assert_int_equal(msp_tlmsp_activity_held(server), 5);
    feed(server, 1, "mationinfo");
    drain(server, out, sizeof(out));
    assert_string_equal(out, "matched 1 c information;send 1 c informationinformation;");
    assert_int_equal(msp_tlmsp_activity_held(server), 4);
    feed(server, 1, "rmation--information");
    drain(server, out, sizeof(out));
    assert_string_equal(out, "matched 1 c information;send 1 c informationinformation;"
                             "matched 1 c information;send 1 c informationinformation;");
    assert_int_equal(msp_tlmsp_activity_held(server), 0);
    /* what never matches is held up to the limit, oldest bytes dropped first */
    msp_tlmsp_activity_free(server);
    server = matcher(cfg, &cfg->server.to_client, false, false, 16);
    feed(server, 1, "0123456789");
    feed(server, 1, "abcdefghij");
    assert_int_equal(msp_tlmsp_activity_held(server), 16);
    feed(server, 1, "information");
    drain(server, out, sizeof(out));
    assert_string_equal(out, "matched 1 c information;send 1 c informationinformation;");
    msp_tlmsp_activity_free(server);
    msp_tlmsp_cfg_free(cfg);
}

/* However the sender splits a stream into containers, an endpoint sees the same matches. */
static void test_any_split(void **state)
{
    (void)state;
    static const char stream[] = "xinformationinfoinformationyyinformationinformatio";
    size_t n = sizeof(stream) - 1;
    msp_tlmsp_cfg_t *cfg = load_file("activity-growth.ucl");
    msp_tlmsp_activity_t *a = matcher(cfg, &cfg->server.to_client, false, false, 0);
    char whole[1024], split[1024];
    feed(a, 1, stream);
    drain(a, whole, sizeof(whole));
    assert_non_null(strstr(whole, "matched 1 c information;send 1 c informationinformation;matched"));
    msp_tlmsp_activity_free(a);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j < n; j += 7) {
            a = matcher(cfg, &cfg->server.to_client, false, false, 0);
            const size_t cuts[] = {0, i, j, n};
            for (size_t k = 0; k + 1 < 4; k++) {
                assert_int_equal(msp_tlmsp_activity_input(a, 1, MSP_TLMSP_ACCESS_RW, (const uint8_t *)stream + cuts[k],
                                                          cuts[k + 1] - cuts[k], NULL, NULL, NULL),
                                 MSP_OK);
            }
            drain(a, split, sizeof(split));
            assert_string_equal(split, whole);
            assert_int_equal(msp_tlmsp_activity_held(a), 10); /* "informatio" waits for its last byte */
            msp_tlmsp_activity_free(a);
        }
    }
    msp_tlmsp_cfg_free(cfg);
}

/* A pattern searches one run of consecutive containers in its contexts, not across another context. */
static const char two_contexts[] = "context { id = 1 } context { id = 2 }\n"
                                   "activity { tag = one; match { which = 1; data = \"abcdef\" } action { } }\n"
                                   "activity { tag = two; match { which = 2; regex = \"z+\" } action { } }\n"
                                   "client { address = tlmsp://localhost; function = [ one ] }\n"
                                   "server { address = tlmsp://localhost:1; function = [ one, two ] }\n";

static void test_runs_of_contexts(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(two_contexts);
    msp_tlmsp_activity_t *a = matcher(cfg, &cfg->client.to_server, false, true, 0);
    char out[1024];
    feed(a, 1, "abc");
    feed(a, 2, "def");
    feed(a, 1, "def");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "");
    msp_tlmsp_activity_free(a);
    a = matcher(cfg, &cfg->client.to_server, false, true, 0);
    feed(a, 1, "abc");
    feed(a, 1, "def");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s abcdef;");
    msp_tlmsp_activity_free(a);
    /* the earliest match wins, whichever activity has it; each match's context is its first container's */
    a = matcher(cfg, &cfg->server.to_client, false, false, 0);
    feed(a, 2, "zz");
    feed(a, 1, "abcdef");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 2 c zz;matched 1 c abcdef;");
    feed(a, 1, "abc");
    feed(a, 1, "def");
    feed(a, 2, "z");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 c abcdef;matched 2 c z;");
    msp_tlmsp_activity_free(a);
    msp_tlmsp_cfg_free(cfg);
}

/* ---- every action kind ---- */

static const char kinds[] = "context { id = 1 } context { id = 2 }\n"
                            "activity { tag = all-kinds\n"
                            "  match { which = *; regex = \"k(e)(y)\" }\n"
                            "  action { send { context = 2; template = \"<${2}${1}>\" } }\n"
                            "  action { reply { context = 1; data = \"back\" } }\n"
                            "  action { alert { context = 2; level = fatal; description = 174 } }\n"
                            "  action { log { handler = \"wc -c\" } }\n"
                            "  action { send { context = 1; handler = \"tr a-z A-Z\" } }\n"
                            "  action { shutdown = yes }\n"
                            "}\n"
                            "activity { tag = gone; match { which = 1; data = \"drop\" } action { } }\n"
                            "activity { tag = kept; match { which = 1; data = \"look\"; forward = yes }\n"
                            "  action { send { context = 1; data = \"seen\" } } }\n"
                            "activity { tag = swap; match { which = 1; data = \"ping\" }\n"
                            "  action { send { context = 1; data = \"PONG\" } } }\n"
                            "client { address = tlmsp://localhost; function = [ all-kinds ] }\n"
                            "middlebox { tag = mb; address = tlmsp://localhost:2\n"
                            "  context { which = [ 1, 2 ]; access = rw }\n"
                            "  function-to-server = [ all-kinds, gone, kept, swap ] }\n"
                            "server { address = tlmsp://localhost:1 }\n";

static void test_action_kinds_endpoint(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(kinds);
    msp_tlmsp_activity_t *a = matcher(cfg, &cfg->client.to_server, false, true, 0);
    char out[2048];
    feed(a, 2, "a key");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 2 s key;send 2 s <ye>;send 1 s back;alert 2 s ;"
                             "handler 0 s key $ wc -c;handler 1 s key $ tr a-z A-Z;shutdown 0 s ;");
    feed(a, 2, "key");
    msp_tlmsp_action_t x;
    int alerts = 0, logged = 0;
    while (msp_tlmsp_activity_next(a, &x)) {
        if (x.kind == MSP_TLMSP_ACTION_ALERT) {
            assert_int_equal(x.level, 2);
            assert_int_equal(x.description, 174);
            alerts++;
        }
        if (x.kind == MSP_TLMSP_ACTION_HANDLER) {
            logged += x.log;
            assert_string_equal(x.activity->tag, "all-kinds");
            assert_true(x.line > 0);
        }
    }
    assert_int_equal(alerts, 1);
    assert_int_equal(logged, 1);
    msp_tlmsp_activity_free(a);
    /* reflect: every container goes back as it came, before what the activities do with it */
    msp_tlmsp_activity_cfg_t ac = {cfg, &cfg->client.to_server, false, true, 0, true};
    msp_error_t err;
    assert_int_equal(msp_tlmsp_activity_new(&ac, &a, &err), MSP_OK);
    feed(a, 1, "ke");
    feed(a, 2, "y");
    assert_true(msp_tlmsp_activity_next(a, &x));
    assert_null(x.activity);
    assert_int_equal(x.kind, MSP_TLMSP_ACTION_SEND);
    assert_int_equal(x.context, 1);
    drain(a, out, sizeof(out));
    assert_string_equal(out, "send 2 s y;matched 1 s key;send 2 s <ye>;send 1 s back;alert 2 s ;"
                             "handler 0 s key $ wc -c;handler 1 s key $ tr a-z A-Z;shutdown 0 s ;");
    msp_tlmsp_activity_free(a);
    msp_tlmsp_cfg_free(cfg);
}

static msp_tlmsp_verdict_t pass(msp_tlmsp_activity_t *a, uint8_t ctx, uint8_t access, const char *s, char *data,
                                size_t cap)
{
    msp_tlmsp_verdict_t v = (msp_tlmsp_verdict_t)-1;
    const uint8_t *d = NULL;
    size_t n = 0;
    assert_int_equal(msp_tlmsp_activity_input(a, ctx, access, (const uint8_t *)s, strlen(s), &v, &d, &n), MSP_OK);
    data[0] = '\0';
    if (v == MSP_TLMSP_REPLACE) {
        assert_true(n < cap);
        memcpy(data, d, n);
        data[n] = '\0';
    }
    return v;
}

static void test_action_kinds_middlebox(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(kinds);
    const msp_tlmsp_cfg_entity_t *mb = msp_tlmsp_cfg_middlebox_by_tag(cfg, "mb");
    msp_tlmsp_activity_t *a = matcher(cfg, &mb->to_server, true, true, 0);
    char out[2048], data[256];
    /* the same context's send takes the match's place; a reply goes the other way; handlers are the caller's */
    assert_int_equal(pass(a, 2, MSP_TLMSP_ACCESS_RW, "a key!", data, sizeof(data)), MSP_TLMSP_REPLACE);
    assert_string_equal(data, "a <ye>!");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 2 s key;send 2 s <ye> (applied);send 1 c back;alert 2 s ;"
                             "handler 0 s key $ wc -c;handler 1 s key $ tr a-z A-Z;shutdown 0 s ;");
    /* every occurrence in the container: the same-context sends take each match's place */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "ping-ping.ping", data, sizeof(data)), MSP_TLMSP_REPLACE);
    assert_string_equal(data, "PONG-PONG.PONG");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s ping;send 1 s PONG (applied);matched 1 s ping;send 1 s PONG (applied);"
                             "matched 1 s ping;send 1 s PONG (applied);");
    /* a match with no action, all of the container: deleted */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "dropdrop", data, sizeof(data)), MSP_TLMSP_DELETE);
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s drop;matched 1 s drop;");
    /* forward = yes: the container goes on unchanged (with what was rewritten before the match), the actions run */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "ping look ping", data, sizeof(data)), MSP_TLMSP_REPLACE);
    assert_string_equal(data, "PONG look ping");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s ping;send 1 s PONG (applied);matched 1 s look;send 1 s seen;");
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "look", data, sizeof(data)), MSP_TLMSP_FORWARD);
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s look;send 1 s seen;");
    /* nothing matched, or no read access: forwarded, nothing held */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "nothing", data, sizeof(data)), MSP_TLMSP_FORWARD);
    msp_tlmsp_verdict_t v = (msp_tlmsp_verdict_t)-1;
    assert_int_equal(msp_tlmsp_activity_input(a, 1, MSP_TLMSP_ACCESS_NONE, NULL, 9, &v, NULL, NULL), MSP_OK);
    assert_int_equal(v, MSP_TLMSP_FORWARD);
    assert_false(msp_tlmsp_activity_next(a, &(msp_tlmsp_action_t){0}));
    assert_int_equal(msp_tlmsp_activity_held(a), 0);
    msp_tlmsp_activity_free(a);
    msp_tlmsp_cfg_free(cfg);
}

/* ---- a middlebox that holds (msp_tlmsp_activity_hold) ---- */

static const char holding[] = "context { id = 1 } context { id = 2 }\n"
                              "activity { tag = swap; match { which = 1; data = \"ping\" }\n"
                              "  action { send { context = 1; data = \"PONG\" } } }\n"
                              "activity { tag = gone; match { which = 1; regex = \"dr(o+)p\" } action { } }\n"
                              "activity { tag = seen; match { which = 2; data = \"look\"; forward = yes }\n"
                              "  action { send { context = 2; data = \"seen\" } } }\n"
                              "activity { tag = nth; match { which = 1; container = 2 } action { } }\n"
                              "client { address = tlmsp://localhost }\n"
                              "middlebox { tag = mb; address = tlmsp://localhost:2\n"
                              "  context { which = [ 1, 2 ]; access = rw }\n"
                              "  function-to-server = [ swap, gone, seen ]; function-to-client = [ nth ] }\n"
                              "server { address = tlmsp://localhost:1 }\n";

/* The released verdicts as text: "F;", "D;", "R:data;" each. */
static void taken(msp_tlmsp_activity_t *a, char *out, size_t cap)
{
    const msp_tlmsp_verdict_t *v;
    const uint8_t *const *d;
    const size_t *n;
    size_t k = msp_tlmsp_activity_take_released(a, &v, &d, &n), w = 0;
    out[0] = '\0';
    for (size_t i = 0; i < k; i++) {
        if (v[i] == MSP_TLMSP_REPLACE) {
            w += (size_t)snprintf(out + w, cap - w, "R:%.*s;", (int)n[i], (const char *)d[i]);
        } else {
            w += (size_t)snprintf(out + w, cap - w, "%s;", v[i] == MSP_TLMSP_FORWARD ? "F" : "D");
        }
        assert_true(w < cap);
    }
}

static void test_middlebox_hold(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(holding);
    const msp_tlmsp_cfg_entity_t *mb = msp_tlmsp_cfg_middlebox_by_tag(cfg, "mb");
    msp_tlmsp_activity_t *a = matcher(cfg, &mb->to_server, true, true, 0);
    char out[2048], data[256], rel[512];
    assert_int_equal(msp_tlmsp_activity_hold(a), MSP_OK);
    /* a pattern across two containers: the first held, then both replaced around the match */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "hello pi", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(msp_tlmsp_activity_held(a), 2);
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "");
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "ng there", data, sizeof(data)), MSP_TLMSP_REPLACE);
    assert_string_equal(data, " there");
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "R:hello PONG;");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s ping;send 1 s PONG (applied);");
    assert_int_equal(msp_tlmsp_activity_held(a), 0);
    /* a single-container match is as without holding */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "ping-ping.ping", data, sizeof(data)), MSP_TLMSP_REPLACE);
    assert_string_equal(data, "PONG-PONG.PONG");
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "nothing", data, sizeof(data)), MSP_TLMSP_FORWARD);
    drain(a, out, sizeof(out));
    /* over three containers, the middle one all match (deleted), a regex that could go on (o+) held */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "a ping d", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "roo", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "p!", data, sizeof(data)), MSP_TLMSP_REPLACE);
    assert_string_equal(data, "!");
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "R:a PONG ;D;");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s ping;send 1 s PONG (applied);matched 1 s droop;");
    /* empty containers: forwarded when nothing is held, held within a run */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "", data, sizeof(data)), MSP_TLMSP_FORWARD);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "pi", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "ng", data, sizeof(data)), MSP_TLMSP_DELETE);
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "R:PONG;D;");
    drain(a, out, sizeof(out));
    /* a possible start that does not go on: released unchanged when the next container says so */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "xx pi", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "zza", data, sizeof(data)), MSP_TLMSP_FORWARD);
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "F;");
    /* another context decides what was held as it stands */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "ping p", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(pass(a, 2, MSP_TLMSP_ACCESS_RW, "a look", data, sizeof(data)), MSP_TLMSP_FORWARD);
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "R:PONG p;");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s ping;send 1 s PONG (applied);matched 2 s look;send 2 s seen;");
    /* idle: flushed as it stands; read-only: matches across containers, changes nothing */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_R, "pin", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(msp_tlmsp_activity_flush(a), MSP_OK);
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "F;");
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_R, "pi", data, sizeof(data)), MSP_TLMSP_HOLD);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_R, "ng pi", data, sizeof(data)), MSP_TLMSP_FORWARD);
    taken(a, rel, sizeof(rel));
    assert_string_equal(rel, "F;");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s ping;send 1 s PONG;");
    /* no read access: nothing held */
    msp_tlmsp_verdict_t v = MSP_TLMSP_HOLD;
    assert_int_equal(msp_tlmsp_activity_input(a, 1, MSP_TLMSP_ACCESS_NONE, NULL, 4, &v, NULL, NULL), MSP_OK);
    assert_int_equal(v, MSP_TLMSP_FORWARD);
    assert_int_equal(msp_tlmsp_activity_held(a), 0);
    /* the bound: past it what is held is decided as it stands (a match that keeps going, "dro...") */
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "dr", data, sizeof(data)), MSP_TLMSP_HOLD);
    for (size_t i = 1; i < MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS; i++) {
        assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "o", data, sizeof(data)), MSP_TLMSP_HOLD);
        taken(a, rel, sizeof(rel));
        assert_string_equal(rel, "");
    }
    assert_int_equal(msp_tlmsp_activity_held(a), MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS + 1);
    assert_int_equal(pass(a, 1, MSP_TLMSP_ACCESS_RW, "o", data, sizeof(data)), MSP_TLMSP_FORWARD);
    const msp_tlmsp_verdict_t *rv;
    const uint8_t *const *rd;
    const size_t *rn;
    assert_int_equal(msp_tlmsp_activity_take_released(a, &rv, &rd, &rn), MSP_TLMSP_ACTIVITY_HOLD_CONTAINERS);
    assert_int_equal(msp_tlmsp_activity_held(a), 0);
    msp_tlmsp_activity_free(a);
    /* container matches count containers one by one: no holding there, nor at an endpoint */
    a = matcher(cfg, &mb->to_client, true, false, 0);
    assert_int_equal(msp_tlmsp_activity_hold(a), MSP_ERR_ARGUMENT);
    msp_tlmsp_activity_free(a);
    a = matcher(cfg, &mb->to_server, false, true, 0);
    assert_int_equal(msp_tlmsp_activity_hold(a), MSP_ERR_ARGUMENT);
    msp_tlmsp_activity_free(a);
    msp_tlmsp_cfg_free(cfg);
}

/* ---- container and time-driven matches ---- */

static const char counted[] = "context { id = 1 } context { id = 2 }\n"
                              "activity { tag = third; match { which = *; container = 3 } action { shutdown = yes } }\n"
                              "activity { tag = half; match { which = 2; container = 0.5 } action { } }\n"
                              "activity { tag = pong; match { which = *; data = \"pong\" } action { } }\n"
                              "activity { tag = tick; match { at = 100; every = 300 }\n"
                              "  action { send { context = 1; template = \"t${0}\" } } }\n"
                              "client { address = tlmsp://localhost; function = [ third, pong ] }\n"
                              "server { address = tlmsp://localhost:1; function = [ half, tick ] }\n";

static void test_container_match(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(counted);
    msp_tlmsp_activity_t *a = matcher(cfg, &cfg->client.to_server, false, true, 0);
    char out[1024];
    feed(a, 1, "pong");
    feed(a, 2, "pong");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s pong;matched 2 s pong;");
    /* the third container: both match at its start, the first listed wins and takes the whole container */
    feed(a, 1, "pong");
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s pong;shutdown 0 s ;");
    msp_tlmsp_activity_free(a);
    /* a probability: matched while matched < p * inspected, what does not match is held */
    a = matcher(cfg, &cfg->server.to_client, false, false, 0);
    feed(a, 2, "a");
    feed(a, 2, "b");
    feed(a, 2, "c");
    drain(a, out, sizeof(out));
    /* "b" did not match and lay before the match: an endpoint drops it with the match (the reference) */
    assert_string_equal(out, "matched 2 c a;matched 2 c c;");
    assert_int_equal(msp_tlmsp_activity_held(a), 0);
    msp_tlmsp_activity_free(a);
    msp_tlmsp_cfg_free(cfg);
}

static void test_time(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(counted);
    msp_tlmsp_activity_t *a = matcher(cfg, &cfg->server.to_client, false, false, 0);
    char out[1024];
    assert_int_equal(msp_tlmsp_activity_next_due(a), MSP_TLMSP_ACTIVITY_NO_TIME); /* not started */
    /* a list of timers only holds nothing */
    size_t tick;
    assert_non_null(msp_tlmsp_cfg_activity_by_tag(cfg, "tick", &tick));
    msp_tlmsp_cfg_fnlist_t timers = {1, &tick};
    msp_tlmsp_activity_t *t = matcher(cfg, &timers, false, false, 0);
    feed(t, 1, "data no activity looks at");
    assert_int_equal(msp_tlmsp_activity_held(t), 0);
    msp_tlmsp_activity_free(t);
    feed(a, 1, "held: half looks at context 2 only");
    assert_int_equal(msp_tlmsp_activity_held(a), 34);
    msp_tlmsp_activity_start(a, 1000);
    assert_int_equal(msp_tlmsp_activity_next_due(a), 1100);
    assert_int_equal(msp_tlmsp_activity_advance(a, 1099), MSP_OK);
    drain(a, out, sizeof(out));
    assert_string_equal(out, "");
    assert_int_equal(msp_tlmsp_activity_advance(a, 1100), MSP_OK);
    drain(a, out, sizeof(out));
    assert_string_equal(out, "send 1 c t;"); /* no match: ${0} is empty */
    assert_int_equal(msp_tlmsp_activity_next_due(a), 1400);
    /* late by more than a period: once, and the next one a period from now */
    assert_int_equal(msp_tlmsp_activity_advance(a, 5000), MSP_OK);
    drain(a, out, sizeof(out));
    assert_string_equal(out, "send 1 c t;");
    assert_int_equal(msp_tlmsp_activity_next_due(a), 5300);
    msp_tlmsp_activity_stop(a);
    assert_int_equal(msp_tlmsp_activity_next_due(a), MSP_TLMSP_ACTIVITY_NO_TIME);
    msp_tlmsp_activity_free(a);
    msp_tlmsp_cfg_free(cfg);
}

/* Pattern and payload files are read once, when the matcher is made. */
static void test_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/msp-test-act-XXXXXX", pat[64], pay[64], text[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(pat, sizeof(pat), "%s/pattern", dir);
    snprintf(pay, sizeof(pay), "%s/payload", dir);
    FILE *f = fopen(pat, "wb");
    assert_non_null(f);
    fwrite("a\0b", 1, 3, f); /* any byte, NUL included */
    fclose(f);
    f = fopen(pay, "wb");
    assert_non_null(f);
    fputs("from a file", f);
    fclose(f);
    snprintf(text, sizeof(text),
             "context { id = 1 }\nactivity { tag = f; match { which = 1; file = \"%s\" }\n"
             "  action { send { context = 1; file = \"%s\" } } }\n"
             "client { address = tlmsp://h; function = f }\nserver { address = tlmsp://h:1 }\n",
             pat, pay);
    msp_tlmsp_cfg_t *cfg = load(text);
    msp_tlmsp_activity_t *a = matcher(cfg, &cfg->client.to_server, false, true, 0);
    unlink(pat);
    unlink(pay);
    rmdir(dir);
    char out[256];
    assert_int_equal(msp_tlmsp_activity_input(a, 1, MSP_TLMSP_ACCESS_RW, (const uint8_t *)"xa", 2, NULL, NULL, NULL),
                     MSP_OK);
    assert_int_equal(msp_tlmsp_activity_input(a, 1, MSP_TLMSP_ACCESS_RW, (const uint8_t *)"\0b", 2, NULL, NULL, NULL),
                     MSP_OK);
    drain(a, out, sizeof(out));
    assert_string_equal(out, "matched 1 s a;send 1 s from a file;"); /* %.*s stops at the NUL */
    msp_tlmsp_activity_free(a);
    msp_tlmsp_cfg_free(cfg);
}

/* A payload file over 16 MiB: an endpoint sends it in chunks (SEND_FILE names it), a middlebox refuses it. */
static void test_big_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/msp-test-big-XXXXXX", pay[64], text[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(pay, sizeof(pay), "%s/big", dir);
    FILE *f = fopen(pay, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)MSP_TLMSP_ACTIVITY_MAX_FILE + 1), 0); /* sparse: no disk used */
    fclose(f);
    snprintf(
        text, sizeof(text),
        "context { id = 1 }\nactivity { tag = f; match { which = 1; data = \"go\" }\n"
        "  action { send { context = 1; file = \"%s\" }\n send { context = 1; data = \"after\" } } }\n"
        "middlebox { tag = m; address = tlmsp://m:1; function-to-server = f\n context { which = 1; access = rw } }\n"
        "client { address = tlmsp://h; function = f }\nserver { address = tlmsp://h:1 }\n",
        pay);
    msp_tlmsp_cfg_t *cfg = load(text);
    msp_tlmsp_activity_t *a = matcher(cfg, &cfg->client.to_server, false, true, 0);
    assert_int_equal(msp_tlmsp_activity_input(a, 1, MSP_TLMSP_ACCESS_RW, (const uint8_t *)"go", 2, NULL, NULL, NULL),
                     MSP_OK);
    msp_tlmsp_action_t x;
    assert_true(msp_tlmsp_activity_next(a, &x));
    assert_int_equal(x.kind, MSP_TLMSP_ACTION_MATCHED);
    assert_true(msp_tlmsp_activity_next(a, &x));
    assert_int_equal(x.kind, MSP_TLMSP_ACTION_SEND_FILE);
    assert_string_equal(x.file, pay);
    assert_int_equal(x.context, 1);
    assert_int_equal(x.len, 0);
    assert_true(msp_tlmsp_activity_next(a, &x));
    assert_int_equal(x.kind, MSP_TLMSP_ACTION_SEND);
    assert_int_equal(x.len, 5);
    msp_tlmsp_activity_free(a);

    msp_tlmsp_activity_cfg_t ac = {cfg, &cfg->middleboxes[0].to_server, true, true, 0, false};
    msp_error_t err;
    assert_int_equal(msp_tlmsp_activity_new(&ac, &a, &err), MSP_ERR_LIMIT);
    assert_non_null(strstr(err.detail, "larger than 16 MiB"));
    unlink(pay);
    rmdir(dir);
    msp_tlmsp_cfg_free(cfg);
}

/* ---- what cannot run ---- */

static void refused(const char *text, int code, const char *where, const char *part)
{
    msp_tlmsp_cfg_t *cfg = load(text);
    msp_tlmsp_activity_cfg_t ac = {cfg, &cfg->client.to_server, false, true, 0, false};
    msp_tlmsp_activity_t *a = (msp_tlmsp_activity_t *)1;
    msp_error_t err;
    assert_int_equal(msp_tlmsp_activity_new(&ac, &a, &err), code);
    assert_null(a);
    assert_string_equal(err.where, where);
    if (strstr(err.detail, part) == NULL) {
        fail_msg("'%s' lacks '%s'", err.detail, part);
    }
    msp_tlmsp_cfg_free(cfg);
}

static void test_refused(void **state)
{
    (void)state;
    refused("context { id = 1 }\nactivity { tag = r\n match { which = 1; regex = \"a(\" }\n action { } }\n"
            "client { address = tlmsp://h; function = r }\nserver { address = tlmsp://h:1 }\n",
            MSP_ERR_INVALID, "t.ucl:3", "regex of activity r");
    refused("context { id = 1 }\nactivity { tag = r\n match { at = 1 }\n action { renegotiate = yes } }\n"
            "client { address = tlmsp://h; function = r }\nserver { address = tlmsp://h:1 }\n",
            MSP_ERR_INVALID, "t.ucl:4", "renegotiate");
    refused("context { id = 1 }\nactivity { tag = r\n match { which = 1; file = \"/nonexistent/p\" }\n action { } }\n"
            "client { address = tlmsp://h; function = r }\nserver { address = tlmsp://h:1 }\n",
            MSP_ERR_IO, "t.ucl:3", "/nonexistent/p");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_split_across_containers),
        cmocka_unit_test(test_any_split),
        cmocka_unit_test(test_runs_of_contexts),
        cmocka_unit_test(test_action_kinds_endpoint),
        cmocka_unit_test(test_action_kinds_middlebox),
        cmocka_unit_test(test_middlebox_hold),
        cmocka_unit_test(test_container_match),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_big_file),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
