/*
 * Configuration to engine (msp/tlmsp_setup.h): addresses as typed on the
 * wire, the contexts offered, the client's and the server's middlebox
 * lists, and the identity and trust read from PEM files (written here with
 * msp_tlmsp_setup_selfsigned).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "msp/tlmsp_setup.h"

static msp_tlmsp_cfg_t *load(const char *text)
{
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_error_t err;
    if (msp_tlmsp_cfg_load_mem(text, strlen(text), "t.ucl", &cfg, &err) != MSP_OK) {
        fail_msg("load failed at %s: %s\n%s", err.where, err.detail, text);
    }
    return cfg;
}

static void test_address(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        msp_tlmsp_cfg_addr_kind_t kind;
        uint8_t type;
    } cases[] = {
        {"tlmsp://mbox.example:10001", MSP_TLMSP_CFG_ADDR_URL, MSP_TLMSP_ADDR_URL},
        {"10.0.0.2", MSP_TLMSP_CFG_ADDR_HOST, MSP_TLMSP_ADDR_IPV4},
        {"fe80::1", MSP_TLMSP_CFG_ADDR_HOST, MSP_TLMSP_ADDR_IPV6},
        {"mbox.example", MSP_TLMSP_CFG_ADDR_HOST, MSP_TLMSP_ADDR_FQDN},
        {"00:11:22:33:44:55", MSP_TLMSP_CFG_ADDR_MAC, MSP_TLMSP_ADDR_MAC},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msp_tlmsp_cfg_address_t a = {cases[i].text, cases[i].kind, "", 0};
        msp_tlmsp_address_t w;
        msp_tlmsp_setup_address(&a, &w);
        assert_int_equal(w.type, cases[i].type);
        assert_ptr_equal(w.bytes, cases[i].text); /* the configured text, as the reference sends it */
        assert_int_equal(w.len, strlen(cases[i].text));
    }
    assert_int_equal(msp_tlmsp_setup_access(MSP_TLMSP_CFG_ACCESS_RW), MSP_TLMSP_ACCESS_RW);
    assert_int_equal(msp_tlmsp_setup_access(MSP_TLMSP_CFG_ACCESS_R), MSP_TLMSP_ACCESS_R);
    assert_int_equal(msp_tlmsp_setup_access(MSP_TLMSP_CFG_ACCESS_NONE), MSP_TLMSP_ACCESS_NONE);
}

static const char four[] =
    "context { id = 1; purpose = \"pings\" } context { id = 3; audit = yes }\n"
    "client { address = tlmsp://localhost }\n"
    "middlebox { tag = a; address = tlmsp://localhost:11; context { which = 1; access = rw } }\n"
    "middlebox { tag = b; address = tlmsp://localhost:12; discovered = yes\n"
    "  context { which = 3; access = r } }\n"
    "middlebox { tag = c; address = tlmsp://localhost:13; transparent = yes }\n"
    "middlebox { tag = d; address = 10.1.1.1; forbidden = yes; context { which = 1; access = r } }\n"
    "server { address = tlmsp://localhost:14 }\n";

/* Draws 0x00 (out of range), 0x05, 0x05 again (taken), then 0x07. */
static void scripted(void *user, uint8_t *buf, size_t len)
{
    static const uint8_t seq[] = {0x00, 0x05, 0x05, 0x07};
    size_t *at = user;
    for (size_t i = 0; i < len; i++) {
        buf[i] = seq[*at % sizeof(seq)];
        (*at)++;
    }
}

static void test_lists(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(four);
    msp_tlmsp_context_list_t cl;
    msp_tlmsp_setup_contexts(cfg, &cl);
    assert_true(cl.present[1] && cl.present[3] && !cl.present[2]);
    assert_true(cl.audit[3] && !cl.audit[1]);
    assert_int_equal(cl.purpose_len[1], 5);
    assert_memory_equal(cl.purpose[1], "pings", 5);
    /* the client names the static, non-transparent ones; ids drawn at random, never reused */
    static msp_tlmsp_mbox_list_t l;
    size_t at = 0;
    msp_tlmsp_setup_middleboxes(cfg, false, scripted, &at, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.m[0].id, 0x05);
    assert_int_equal(l.m[1].id, 0x07);
    assert_memory_equal(l.m[0].address.bytes, "tlmsp://localhost:11", 20);
    assert_int_equal(l.m[1].address.type, MSP_TLMSP_ADDR_IPV4);
    assert_int_equal(l.m[0].access[1], MSP_TLMSP_ACCESS_RW);
    assert_int_equal(l.m[0].access[3], MSP_TLMSP_ACCESS_NONE);
    assert_int_equal(l.m[0].inserted, 0);
    /* the server accepts them, inserts the discovered one, refuses the forbidden one */
    msp_tlmsp_setup_middleboxes(cfg, true, scripted, &at, &l);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.m[0].inserted, 0);
    assert_int_equal(l.m[1].inserted, 1);
    assert_int_equal(l.m[1].access[3], MSP_TLMSP_ACCESS_R);
    assert_int_equal(l.m[2].inserted, 2);
    assert_int_equal(l.m[2].id, MSP_TLMSP_ID_FIRST_MIDDLEBOX + 2);
    msp_tlmsp_cfg_free(cfg);
}

static void refused(const msp_tlmsp_cfg_t *cfg, msp_tlmsp_cfg_role_t role, const char *tag, const char *dir,
                    const char *trust, int code, const char *where, const char *part)
{
    msp_tlmsp_setup_cfg_t sc = {cfg, role, tag, dir, trust, NULL, NULL};
    msp_tlmsp_setup_t *s = (msp_tlmsp_setup_t *)1;
    msp_error_t err;
    assert_int_equal(msp_tlmsp_setup_new(&sc, &s, &err), code);
    assert_null(s);
    if (strstr(err.where, where) == NULL || strstr(err.detail, part) == NULL) {
        fail_msg("got '%s: %s', expected '%s' and '%s'", err.where, err.detail, where, part);
    }
}

static void write_pem(const char *dir, const char *name, const msp_buf_t *b)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(b->base, 1, b->len, f), b->len);
    assert_int_equal(fclose(f), 0);
}

static void test_setup(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load(four);
    char dir[] = "/tmp/msp-test-setup-XXXXXX", priv[64], path[128];
    assert_non_null(mkdtemp(dir));
    snprintf(priv, sizeof(priv), "%s/private", dir);
    assert_int_equal(mkdir(priv, 0700), 0);
    refused(cfg, MSP_TLMSP_CFG_SERVER, NULL, dir, NULL, MSP_ERR_IO, "server-cert.pem", "No such file");
    refused(cfg, MSP_TLMSP_CFG_MIDDLEBOX, "z", dir, NULL, MSP_ERR_NOT_FOUND, "t.ucl", "no middlebox tagged 'z'");
    refused(cfg, MSP_TLMSP_CFG_CLIENT, NULL, dir, "/nonexistent.pem", MSP_ERR_IO, "/nonexistent.pem",
            "no PEM certificate");
    /* the chains in the folder, the keys in its private/ folder (the reference's layout) */
    msp_buf_t cert, key;
    msp_buf_init(&cert, 1 << 20);
    msp_buf_init(&key, 1 << 20);
    assert_int_equal(msp_tlmsp_setup_selfsigned("server", 1, &cert, &key), MSP_OK);
    write_pem(dir, "server-cert.pem", &cert);
    refused(cfg, MSP_TLMSP_CFG_SERVER, NULL, dir, NULL, MSP_ERR_IO, "server-key.pem", "No such file");
    write_pem(priv, "server-key.pem", &cert);
    refused(cfg, MSP_TLMSP_CFG_SERVER, NULL, dir, NULL, MSP_ERR_IO, "private/server-key.pem", "no PEM private key");
    /* another pair's key: refused at setup, not at every handshake */
    msp_buf_t other_cert, other_key;
    msp_buf_init(&other_cert, 1 << 20);
    msp_buf_init(&other_key, 1 << 20);
    assert_int_equal(msp_tlmsp_setup_selfsigned("server", 1, &other_cert, &other_key), MSP_OK);
    write_pem(priv, "server-key.pem", &other_key);
    refused(cfg, MSP_TLMSP_CFG_SERVER, NULL, dir, NULL, MSP_ERR_INVALID, "private/server-key.pem",
            "this private key does not match the certificate server-cert.pem");
    msp_buf_free(&other_cert);
    msp_buf_free(&other_key);
    write_pem(priv, "server-key.pem", &key);
    write_pem(dir, "a-cert.pem", &cert);
    write_pem(dir, "a-key.pem", &key);
    write_pem(dir, "trust.pem", &cert);
    snprintf(path, sizeof(path), "%s/trust.pem", dir);

    msp_tlmsp_setup_cfg_t sc = {cfg, MSP_TLMSP_CFG_SERVER, NULL, dir, path, NULL, NULL};
    msp_tlmsp_setup_t *s = NULL;
    msp_error_t err;
    assert_int_equal(msp_tlmsp_setup_new(&sc, &s, &err), MSP_OK);
    assert_ptr_equal(msp_tlmsp_setup_entity(s), &cfg->server);
    assert_non_null(msp_tlmsp_setup_trust(s));
    msp_tlmsp_endpoint_cfg_t ec;
    msp_tlmsp_events_t ev = {(void *)&ec, NULL, NULL};
    msp_tlmsp_setup_endpoint(s, &ev, &ec);
    assert_non_null(ec.identity.key);
    assert_int_equal(ec.identity.ncerts, 1);
    assert_ptr_equal(ec.events.user, &ec);
    assert_int_equal(ec.middleboxes->n, 3);
    assert_non_null(ec.random);
    msp_tlmsp_setup_free(s);

    sc = (msp_tlmsp_setup_cfg_t){cfg, MSP_TLMSP_CFG_MIDDLEBOX, "a", dir, NULL, NULL, NULL};
    assert_int_equal(msp_tlmsp_setup_new(&sc, &s, &err), MSP_OK);
    msp_tlmsp_mbox_cfg_t mc;
    msp_tlmsp_setup_mbox(s, NULL, &mc, &mc);
    assert_memory_equal(mc.address.bytes, "tlmsp://localhost:11", 20);
    assert_non_null(mc.identity.key);
    assert_null(mc.trust);
    assert_ptr_equal(mc.user, &mc);
    msp_tlmsp_setup_free(s);

    sc = (msp_tlmsp_setup_cfg_t){cfg, MSP_TLMSP_CFG_CLIENT, NULL, dir, NULL, NULL, NULL};
    assert_int_equal(msp_tlmsp_setup_new(&sc, &s, &err), MSP_OK);
    msp_tlmsp_setup_endpoint(s, NULL, &ec);
    assert_null(ec.identity.key);
    assert_true(ec.contexts->present[3]);
    assert_int_equal(ec.middleboxes->n, 2);
    assert_memory_equal(ec.server_address.bytes, "tlmsp://localhost:14", 20);
    assert_int_equal(ec.client_address.type, MSP_TLMSP_ADDR_URL);
    msp_tlmsp_setup_free(s);

    const char *files[] = {"server-cert.pem", "private/server-key.pem", "a-cert.pem", "a-key.pem", "trust.pem"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(priv);
    rmdir(dir);
    msp_buf_free(&cert);
    msp_buf_free(&key);
    msp_tlmsp_cfg_free(cfg);
}

static void test_roles_need_blocks(void **state)
{
    (void)state;
    msp_tlmsp_cfg_t *cfg = load("context { id = 1 }\nclient { address = tlmsp://localhost }\n");
    refused(cfg, MSP_TLMSP_CFG_CLIENT, NULL, NULL, NULL, MSP_ERR_INVALID, "t.ucl", "a client and a server block");
    refused(cfg, MSP_TLMSP_CFG_SERVER, NULL, NULL, NULL, MSP_ERR_INVALID, "t.ucl", "no server block");
    msp_tlmsp_cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_setup),
        cmocka_unit_test(test_roles_need_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
