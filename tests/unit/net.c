#include "net.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "msp/error.h"

int net_identity_make(net_identity_t *id, const char *cn, int rsa)
{
    memset(id, 0, sizeof(*id));
    id->key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = id->key != NULL && x != NULL && name != NULL && X509_set_version(x, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), 1) && X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) && X509_set_pubkey(x, id->key) &&
             X509_sign(x, id->key, EVP_sha256()) > 0;
    unsigned char *der = NULL;
    int len = ok ? i2d_X509(x, &der) : -1;
    X509_NAME_free(name);
    X509_free(x);
    if (len <= 0) {
        return -1;
    }
    id->der = der;
    id->der_len = (size_t)len;
    id->ders[0] = der;
    id->lens[0] = (size_t)len;
    return 0;
}

void net_identity_free(net_identity_t *id)
{
    EVP_PKEY_free(id->key);
    OPENSSL_free(id->der);
    memset(id, 0, sizeof(*id));
}

/* Reproducible randomness: splitmix64. The tests check behaviour, not unpredictability. */
static void rng(void *user, uint8_t *buf, size_t len)
{
    uint64_t *s = user;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            *s += 0x9e3779b97f4a7c15ull;
        }
        uint64_t z = *s + i / 8;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        buf[i] = (uint8_t)(z >> (8 * (i % 8)));
    }
}

static void on_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    net_sink_t *s = user;
    msp_buf_put(&s->data[ctx], p, len);
}

static void on_alert(void *user, uint8_t ctx, uint8_t level, uint8_t desc)
{
    net_sink_t *s = user;
    s->alerts++;
    s->last_ctx = ctx;
    s->last_level = level;
    s->last_desc = desc;
}

static msp_tlmsp_verdict_t on_container(void *user, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx, uint8_t access,
                                        const uint8_t *p, size_t len, const uint8_t **data, size_t *data_len)
{
    net_mbox_seen_t *s = user;
    (void)ctx;
    (void)to_server;
    s->containers++;
    if (p == NULL || kind != MSP_TLMSP_DATA) {
        return MSP_TLMSP_FORWARD;
    }
    s->with_plaintext++;
    msp_buf_put(&s->plain, p, len);
    if (s->match == NULL || access != MSP_TLMSP_ACCESS_RW || len != strlen(s->match) || memcmp(p, s->match, len) != 0) {
        return MSP_TLMSP_FORWARD;
    }
    if (s->delete_match) {
        return MSP_TLMSP_DELETE;
    }
    *data = (const uint8_t *)s->with;
    *data_len = strlen(s->with);
    return MSP_TLMSP_REPLACE;
}

static void address(msp_tlmsp_address_t *a, const char *s)
{
    a->type = MSP_TLMSP_ADDR_URL;
    a->bytes = (const uint8_t *)s;
    a->len = strlen(s);
}

static const char *const mbox_addr[NET_MAX_MBOX] = {
    "tlmsp://m1:10001", "tlmsp://m2:10002", "tlmsp://m3:10003", "tlmsp://m4:10004",
    "tlmsp://m5:10005", "tlmsp://m6:10006", "tlmsp://m7:10007", "tlmsp://m8:10008",
};

static int open_endpoints(net_t *net, const net_setup_t *setup, msp_tlmsp_mbox_list_t *list)
{
    msp_tlmsp_endpoint_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.random = rng;
    cfg.random_user = &net->rng;
    address(&cfg.client_address, "tlmsp://client");
    address(&cfg.server_address, "tlmsp://server:10255");
    cfg.contexts = &setup->contexts;
    cfg.middleboxes = list;
    cfg.half_close = setup->half_close;
    cfg.events = (msp_tlmsp_events_t){&net->at_client, on_data, on_alert};
    int ret = msp_tlmsp_conn_new(MSP_TLMSP_ID_CLIENT, &cfg, &net->client);
    cfg.identity = (msp_tlmsp_identity_t){setup->server_id->key, setup->server_id->ders, setup->server_id->lens, 1};
    cfg.events = (msp_tlmsp_events_t){&net->at_server, on_data, on_alert};
    if (ret == MSP_OK) {
        ret = msp_tlmsp_conn_new(MSP_TLMSP_ID_SERVER, &cfg, &net->server);
    }
    return ret;
}

int net_open(net_t *net, const net_setup_t *setup)
{
    memset(net, 0, sizeof(*net));
    net->n = setup->n;
    net->rng = 42;
    for (size_t i = 0; i <= NET_MAX_MBOX; i++) {
        msp_buf_init(&net->c2s[i], 1u << 26);
        msp_buf_init(&net->s2c[i], 1u << 26);
    }
    for (size_t i = 0; i < 256; i++) {
        msp_buf_init(&net->at_client.data[i], 1u << 30);
        msp_buf_init(&net->at_server.data[i], 1u << 30);
    }
    msp_tlmsp_mbox_list_t *list = calloc(1, sizeof(*list));
    if (list == NULL) {
        return -1;
    }
    list->n = setup->n;
    for (size_t i = 0; i < setup->n; i++) {
        list->m[i].id = (uint8_t)(0x30 + 7 * i); /* arbitrary, as the reference's random ids */
        address(&list->m[i].address, mbox_addr[i]);
        memcpy(list->m[i].access, setup->access[i], 256);
        list->m[i].access[0] = 0;
    }
    int ret = open_endpoints(net, setup, list);
    for (size_t i = 0; ret == MSP_OK && i < setup->n; i++) {
        msp_tlmsp_mbox_cfg_t mc;
        memset(&mc, 0, sizeof(mc));
        mc.random = rng;
        mc.random_user = &net->rng;
        address(&mc.address, mbox_addr[i]);
        net_identity_t *id = setup->mbox_id[i];
        mc.identity = (msp_tlmsp_identity_t){id->key, id->ders, id->lens, 1};
        mc.container = on_container;
        mc.user = &net->seen[i];
        msp_buf_init(&net->seen[i].plain, 1u << 30);
        ret = msp_tlmsp_mbox_new(&mc, &net->m[i]);
    }
    free(list);
    if (ret == MSP_OK) {
        ret = msp_tlmsp_conn_start(net->client, &net->c2s[0]);
    }
    return ret == MSP_OK ? 0 : -1;
}

void net_close(net_t *net)
{
    msp_tlmsp_conn_free(net->client);
    msp_tlmsp_conn_free(net->server);
    for (size_t i = 0; i < net->n; i++) {
        msp_tlmsp_mbox_free(net->m[i]);
        msp_buf_free(&net->seen[i].plain);
    }
    for (size_t i = 0; i <= NET_MAX_MBOX; i++) {
        msp_buf_free(&net->c2s[i]);
        msp_buf_free(&net->s2c[i]);
    }
    for (size_t i = 0; i < 256; i++) {
        msp_buf_free(&net->at_client.data[i]);
        msp_buf_free(&net->at_server.data[i]);
    }
}

/* Node k receives bytes; link is the link they came over. */
static int deliver(net_t *net, size_t node, int from_client_side, const uint8_t *p, size_t len)
{
    size_t used = len;
    if (node == 0) {
        int ret = net->client_err != 0 ? 0 : msp_tlmsp_conn_input(net->client, p, &used, &net->c2s[0]);
        net->client_err = net->client_err != 0 ? net->client_err : ret;
        return ret;
    }
    if (node == net->n + 1) {
        int ret = net->server_err != 0 ? 0 : msp_tlmsp_conn_input(net->server, p, &used, &net->s2c[net->n]);
        net->server_err = net->server_err != 0 ? net->server_err : ret;
        return ret;
    }
    int *err = &net->mbox_err[node - 1];
    int ret = *err != 0 ? 0
                        : msp_tlmsp_mbox_input(net->m[node - 1], !from_client_side, p, &used, &net->s2c[node - 1],
                                               &net->c2s[node]);
    *err = *err != 0 ? *err : ret;
    return ret;
}

static void echo(net_t *net)
{
    if (!net->echo || !msp_tlmsp_conn_ready(net->server)) {
        return;
    }
    for (size_t c = 1; c < 256; c++) {
        msp_buf_t *b = &net->at_server.data[c];
        if (b->len > net->echoed[c]) {
            msp_tlmsp_conn_send(net->server, (uint8_t)c, b->base + net->echoed[c], b->len - net->echoed[c],
                                &net->s2c[net->n]);
            net->echoed[c] = b->len;
        }
    }
}

static size_t move(net_t *net, msp_buf_t *link, size_t l, int to_server)
{
    if (link->len == 0) {
        return 0;
    }
    size_t n = link->len, take = net->chunk > 0 && net->chunk < n ? net->chunk : n;
    msp_buf_t chunk;
    msp_buf_init(&chunk, 1u << 26);
    msp_buf_put(&chunk, link->base, take);
    memmove(link->base, link->base + take, n - take);
    link->len = n - take;
    if (net->tamper != NULL) {
        net->tamper(net->tamper_user, l, to_server, &chunk);
    }
    deliver(net, to_server ? l + 1 : l, to_server, chunk.base, chunk.len);
    msp_buf_free(&chunk);
    return 1;
}

size_t net_pump(net_t *net)
{
    size_t total = 0, moved;
    do {
        moved = 0;
        for (size_t l = 0; l <= net->n; l++) {
            moved += move(net, &net->c2s[l], l, 1);
            moved += move(net, &net->s2c[l], l, 0);
        }
        echo(net);
        total += moved;
    } while (moved > 0);
    return total;
}

int net_ready(const net_t *net)
{
    int ok = msp_tlmsp_conn_ready(net->client) && msp_tlmsp_conn_ready(net->server);
    for (size_t i = 0; i < net->n; i++) {
        ok = ok && msp_tlmsp_mbox_ready(net->m[i]);
    }
    return ok;
}

net_identity_t net_server_id, net_mbox_ids[2];

void net_two_mbox_setup(net_setup_t *s)
{
    memset(s, 0, sizeof(*s));
    s->n = 2;
    s->server_id = &net_server_id;
    s->mbox_id[0] = &net_mbox_ids[0];
    s->mbox_id[1] = &net_mbox_ids[1];
    s->contexts.present[1] = s->contexts.present[2] = 1;
    s->contexts.audit[2] = 1;
    s->access[0][1] = MSP_TLMSP_ACCESS_RW;
    s->access[0][2] = MSP_TLMSP_ACCESS_R;
    s->access[1][1] = MSP_TLMSP_ACCESS_R;
    s->access[1][2] = MSP_TLMSP_ACCESS_RW;
}

int net_two_mbox_ids_make(void **state)
{
    (void)state;
    return net_identity_make(&net_server_id, "server", 1) | net_identity_make(&net_mbox_ids[0], "m1", 1) |
           net_identity_make(&net_mbox_ids[1], "m2", 1);
}

int net_two_mbox_ids_free(void **state)
{
    (void)state;
    net_identity_free(&net_server_id);
    net_identity_free(&net_mbox_ids[0]);
    net_identity_free(&net_mbox_ids[1]);
    return 0;
}

size_t net_record_len(const uint8_t *p)
{
    return 5 + ((size_t)p[3] << 8 | p[4]);
}

void net_expect_refused(const net_t *net, size_t who, int alert)
{
    int err[4] = {net->client_err, net->mbox_err[0], net->mbox_err[1], net->server_err};
    assert_int_equal(err[who], alert);
    for (size_t i = 0; i < 4; i++) {
        if (i != who) {
            assert_true(err[i] == MSP_OK || err[i] == MSP_ERR_CLASS_PEER_ALERT + alert);
        }
    }
    if (who != 0) {
        assert_int_equal(net->client_err, MSP_ERR_CLASS_PEER_ALERT + alert);
    }
    if (who != 3) {
        assert_int_equal(net->server_err, MSP_ERR_CLASS_PEER_ALERT + alert);
    }
    assert_false(net_ready(net));
    for (size_t c = 1; c <= 2; c++) {
        assert_int_equal(net->at_server.data[c].len, 0);
        assert_int_equal(net->at_client.data[c].len, 0);
    }
}
