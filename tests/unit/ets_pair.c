/* An in-process TLS 1.3 client/server pair over memory BIOs that records the wire (see ets_pair.h). */
#include "ets_pair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "msp/reader.h"

#define PUMP_ROUNDS 64 /* a handshake that needs more round trips than this is stuck */

static const uint8_t hrr_random[32] = {0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
                                       0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
                                       0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

static int keylog_idx = -1; /* ex_data slot of the client SSL pointing at its pair */

static void on_keylog(const SSL *ssl, const char *line)
{
    ets_pair_t *p = SSL_get_ex_data(ssl, keylog_idx);
    size_t n = strlen(line);
    if (p == NULL || p->keylog_len + n + 2 > ETS_PAIR_MAX_KEYLOG) {
        return;
    }
    memcpy(p->keylog + p->keylog_len, line, n);
    p->keylog_len += n;
    p->keylog[p->keylog_len++] = '\n';
    p->keylog[p->keylog_len] = '\0';
}

SSL_CTX *ets_pair_client_ctx(void)
{
    if (keylog_idx < 0) {
        keylog_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (c == NULL || !SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION)) {
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_keylog_callback(c, on_keylog);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT);
    return c;
}

int ets_pair_make_cert(int kind, EVP_PKEY **key, X509 **cert)
{
    *key = kind == ETS_CERT_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    if (*key == NULL || x == NULL) {
        X509_free(x);
        return -1;
    }
    X509_NAME *name = X509_get_subject_name(x);
    int ok = X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) && X509_gmtime_adj(X509_getm_notAfter(x), 86400) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ets.test", -1, -1, 0) &&
             X509_set_issuer_name(x, name) && X509_set_pubkey(x, *key) && X509_sign(x, *key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        return -1;
    }
    *cert = x;
    return 0;
}

int ets_pair_server_setup(SSL_CTX *sctx, EVP_PKEY *key, X509 *cert)
{
    if (!SSL_CTX_use_certificate(sctx, cert) || !SSL_CTX_use_PrivateKey(sctx, key) ||
        !SSL_CTX_set_max_early_data(sctx, 16384)) {
        return -1;
    }
    return 0;
}

/* --- recording --- */

static int fail(ets_pair_t *p, const char *what)
{
    if (p->error[0] == '\0') {
        char e[256] = "";
        unsigned long code = ERR_peek_error();
        if (code != 0) {
            ERR_error_string_n(code, e, sizeof(e));
        }
        snprintf(p->error, sizeof(p->error), "%s%s%s", what, e[0] ? ": " : "", e);
    }
    return -1;
}

/* Moves what one side wrote to the other side, keeping a copy. */
static int shuttle(ets_pair_t *p, int dir)
{
    SSL *from = dir == ETS_C2S ? p->client : p->server;
    SSL *to = dir == ETS_C2S ? p->server : p->client;
    BIO *out = SSL_get_wbio(from), *in = SSL_get_rbio(to);
    size_t n = (size_t)BIO_ctrl_pending(out);
    if (n == 0) {
        return 0;
    }
    if (p->len[dir] + n > ETS_PAIR_MAX_BYTES || p->nchunks == ETS_PAIR_MAX_CHUNKS) {
        return fail(p, "recording limit");
    }
    uint8_t *dst = p->bytes[dir] + p->len[dir];
    if (BIO_read(out, dst, (int)n) != (int)n || BIO_write(in, dst, (int)n) != (int)n) {
        return fail(p, "memory BIO");
    }
    p->chunks[p->nchunks++] = (ets_chunk_t){.dir = dir, .off = p->len[dir], .len = n};
    p->len[dir] += n;
    return 0;
}

static int shuttle_both(ets_pair_t *p)
{
    return shuttle(p, ETS_C2S) == 0 && shuttle(p, ETS_S2C) == 0 ? 0 : -1;
}

/* 1 when ret is only "need more bytes" */
static int wants_io(SSL *s, int ret)
{
    int e = SSL_get_error(s, ret);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

static int handshake(ets_pair_t *p)
{
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        int rc = SSL_do_handshake(p->client);
        if (rc <= 0 && !wants_io(p->client, rc)) {
            return fail(p, "client handshake");
        }
        if (shuttle(p, ETS_C2S) != 0) {
            return -1;
        }
        int rs = SSL_do_handshake(p->server);
        if (rs <= 0 && !wants_io(p->server, rs)) {
            return fail(p, "server handshake");
        }
        if (shuttle(p, ETS_S2C) != 0) {
            return -1;
        }
        if (rc == 1 && rs == 1) {
            return 0;
        }
    }
    return fail(p, "handshake does not finish");
}

static void keep_app(ets_pair_t *p, int dir, const uint8_t *b, size_t n)
{
    if (p->app_len[dir] + n <= ETS_PAIR_MAX_APP) {
        memcpy(p->app[dir] + p->app_len[dir], b, n);
        p->app_len[dir] += n;
        p->app[dir][p->app_len[dir]] = '\0';
    }
}

/* 0-RTT: the client writes early data with its ClientHello; the server reads it before finishing. */
static int early(ets_pair_t *p, const char *data)
{
    size_t w = 0;
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        int r = SSL_write_early_data(p->client, data, strlen(data), &w);
        if (r == 1) {
            break;
        }
        if (!wants_io(p->client, r)) {
            return fail(p, "client early data");
        }
        if (shuttle_both(p) != 0) {
            return -1;
        }
    }
    if (shuttle(p, ETS_C2S) != 0) {
        return -1;
    }
    uint8_t buf[4096];
    for (int i = 0; i < PUMP_ROUNDS; i++) {
        size_t got = 0;
        int r = SSL_read_early_data(p->server, buf, sizeof(buf), &got);
        if (r == SSL_READ_EARLY_DATA_SUCCESS) {
            keep_app(p, ETS_C2S, buf, got);
            continue;
        }
        if (r == SSL_READ_EARLY_DATA_FINISH) {
            return 0;
        }
        if (!wants_io(p->server, 0)) {
            return fail(p, "server early data");
        }
        /* the server's flight to the client, the client's EndOfEarlyData and Finished back */
        if (shuttle(p, ETS_S2C) != 0) {
            return -1;
        }
        int rc = SSL_do_handshake(p->client);
        if (rc <= 0 && !wants_io(p->client, rc)) {
            return fail(p, "client handshake after early data");
        }
        if (shuttle(p, ETS_C2S) != 0) {
            return -1;
        }
    }
    return fail(p, "early data does not finish");
}

/* One message from one side to the other, through all records it takes. */
static int send_app(ets_pair_t *p, int dir, const char *msg)
{
    SSL *from = dir == ETS_C2S ? p->client : p->server;
    SSL *to = dir == ETS_C2S ? p->server : p->client;
    size_t n = strlen(msg), w = 0;
    if (SSL_write_ex(from, msg, n, &w) != 1 || w != n) {
        return fail(p, "SSL_write");
    }
    if (shuttle(p, dir) != 0) {
        return -1;
    }
    size_t want = p->app_len[dir] + n;
    uint8_t buf[4096];
    for (int i = 0; i < PUMP_ROUNDS && p->app_len[dir] < want; i++) {
        size_t got = 0;
        if (SSL_read_ex(to, buf, sizeof(buf), &got) == 1) {
            keep_app(p, dir, buf, got);
        } else if (!wants_io(to, 0)) {
            return fail(p, "SSL_read");
        } else if (shuttle_both(p) != 0) {
            return -1;
        }
    }
    /* the reader may have answered (KeyUpdate, tickets); pass it on */
    return p->app_len[dir] >= want ? shuttle_both(p) : fail(p, "application data lost");
}

/* Lets the client take in what the server sent last (NewSessionTicket) without blocking. */
static void drain_client(ets_pair_t *p)
{
    uint8_t buf[256];
    size_t got = 0;
    while (SSL_read_ex(p->client, buf, sizeof(buf), &got) == 1) {
        keep_app(p, ETS_S2C, buf, got);
    }
    ERR_clear_error();
}

static int exchange(ets_pair_t *p, const ets_pair_opts_t *o)
{
    return send_app(p, ETS_C2S, o->c2s ? o->c2s : "hello server") == 0 &&
                   send_app(p, ETS_S2C, o->s2c ? o->s2c : "hello client") == 0
               ? 0
               : -1;
}

static int setup(ets_pair_t *p, SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o)
{
    p->bytes[0] = malloc(ETS_PAIR_MAX_BYTES);
    p->bytes[1] = malloc(ETS_PAIR_MAX_BYTES);
    p->chunks = calloc(ETS_PAIR_MAX_CHUNKS, sizeof(*p->chunks));
    p->keylog = calloc(1, ETS_PAIR_MAX_KEYLOG);
    p->app[0] = calloc(1, ETS_PAIR_MAX_APP + 1);
    p->app[1] = calloc(1, ETS_PAIR_MAX_APP + 1);
    p->client = SSL_new(cctx);
    p->server = SSL_new(sctx);
    if (!p->bytes[0] || !p->bytes[1] || !p->chunks || !p->keylog || !p->app[0] || !p->app[1] || !p->client ||
        !p->server) {
        return fail(p, "setup");
    }
    BIO *cin = BIO_new(BIO_s_mem()), *cout = BIO_new(BIO_s_mem());
    BIO *sin = BIO_new(BIO_s_mem()), *sout = BIO_new(BIO_s_mem());
    if (!cin || !cout || !sin || !sout) {
        BIO_free(cin), BIO_free(cout), BIO_free(sin), BIO_free(sout);
        return fail(p, "BIO");
    }
    /* an empty memory BIO means "try again", not end of file */
    BIO_set_mem_eof_return(cin, -1);
    BIO_set_mem_eof_return(sin, -1);
    SSL_set_bio(p->client, cin, cout);
    SSL_set_bio(p->server, sin, sout);
    SSL_set_ex_data(p->client, keylog_idx, p);
    SSL_set_connect_state(p->client);
    SSL_set_accept_state(p->server);
    if ((o->groups && !SSL_set1_groups_list(p->client, o->groups)) ||
        (o->ciphersuites && !SSL_set_ciphersuites(p->client, o->ciphersuites)) ||
        (o->session && !SSL_set_session(p->client, o->session))) {
        return fail(p, "client options");
    }
    return 0;
}

int ets_pair_run(ets_pair_t *p, SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o)
{
    static const ets_pair_opts_t none = {0};
    memset(p, 0, sizeof(*p));
    o = o ? o : &none;
    ERR_clear_error();
    if (setup(p, sctx, cctx, o) != 0) {
        return -1;
    }
    if (o->early_data && o->session && SSL_SESSION_get_max_early_data(o->session) > 0 && early(p, o->early_data) != 0) {
        return -1;
    }
    if (handshake(p) != 0 || exchange(p, o) != 0) {
        return -1;
    }
    if (o->key_update) {
        if (!SSL_key_update(p->client, SSL_KEY_UPDATE_REQUESTED)) {
            return fail(p, "SSL_key_update");
        }
        if (exchange(p, o) != 0) {
            return -1;
        }
    }
    drain_client(p);
    p->early_accepted = SSL_get_early_data_status(p->server) == SSL_EARLY_DATA_ACCEPTED;
    p->resumed = SSL_session_reused(p->client);
    p->session = SSL_get1_session(p->client);
    /* close_notify both ways, so the recording ends like a real connection */
    SSL_shutdown(p->client);
    shuttle(p, ETS_C2S);
    drain_client(p);
    uint8_t buf[64];
    size_t got;
    SSL_read_ex(p->server, buf, sizeof(buf), &got);
    SSL_shutdown(p->server);
    shuttle(p, ETS_S2C);
    ERR_clear_error();
    return 0;
}

void ets_pair_free(ets_pair_t *p)
{
    SSL_free(p->client);
    SSL_free(p->server);
    SSL_SESSION_free(p->session);
    free(p->bytes[0]);
    free(p->bytes[1]);
    free(p->chunks);
    free(p->keylog);
    free(p->app[0]);
    free(p->app[1]);
    memset(p, 0, sizeof(*p));
}

/* --- reading the recording --- */

/* The plaintext handshake bytes at the start of the server's direction (before encryption starts). */
static size_t server_handshake(const ets_pair_t *p, uint8_t *out, size_t cap)
{
    msp_reader_t r;
    size_t n = 0;
    msp_reader_init(&r, p->bytes[ETS_S2C], p->len[ETS_S2C]);
    uint8_t type;
    uint16_t version;
    msp_reader_t body;
    while (msp_read_u8(&r, &type) == 0 && msp_read_u16(&r, &version) == 0 && msp_read_block(&r, 2, &body) == 0) {
        if (type == 23) {
            break; /* encrypted from here on */
        }
        if (type == 22) {
            size_t len = msp_reader_left(&body);
            if (n + len > cap) {
                break;
            }
            memcpy(out + n, body.pos, len);
            n += len;
        }
    }
    return n;
}

/* The key_share of one ServerHello body; hello_retry: only the group is there. */
static int parse_sh(msp_reader_t *sh, uint16_t *group, uint8_t *share, size_t cap, size_t *len, int *is_hrr)
{
    uint16_t version, suite;
    const uint8_t *random;
    msp_reader_t sid, exts, ext;
    uint8_t comp;
    if (msp_read_u16(sh, &version) || msp_read_bytes(sh, 32, &random) || msp_read_block(sh, 1, &sid) ||
        msp_read_u16(sh, &suite) || msp_read_u8(sh, &comp) || msp_read_block(sh, 2, &exts)) {
        return -1;
    }
    *is_hrr = memcmp(random, hrr_random, 32) == 0;
    uint16_t etype;
    while (msp_read_u16(&exts, &etype) == 0 && msp_read_block(&exts, 2, &ext) == 0) {
        if (etype != 0x0033) {
            continue;
        }
        msp_reader_t ke;
        if (msp_read_u16(&ext, group)) {
            return -1;
        }
        if (*is_hrr) {
            return 0;
        }
        if (msp_read_block(&ext, 2, &ke) || msp_reader_left(&ke) > cap) {
            return -1;
        }
        *len = msp_reader_left(&ke);
        memcpy(share, ke.pos, *len);
        return 0;
    }
    return -1;
}

int ets_pair_server_share(const ets_pair_t *p, uint16_t *group, uint8_t *share, size_t cap, size_t *len, int *hrr)
{
    uint8_t hs[16384];
    msp_reader_t r, msg;
    msp_reader_init(&r, hs, server_handshake(p, hs, sizeof(hs)));
    uint8_t type;
    int seen_hrr = 0;
    while (msp_read_u8(&r, &type) == 0 && msp_read_block(&r, 3, &msg) == 0) {
        int is_hrr = 0;
        if (type != 2 || parse_sh(&msg, group, share, cap, len, &is_hrr) != 0) {
            continue;
        }
        if (is_hrr) {
            seen_hrr = 1;
            continue;
        }
        if (hrr != NULL) {
            *hrr = seen_hrr;
        }
        return 0;
    }
    return -1;
}

int ets_pair_keylog_get(const ets_pair_t *p, const char *label, char *out, size_t cap)
{
    size_t l = strlen(label);
    for (const char *line = p->keylog; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n > l && strncmp(line, label, l) == 0 && line[l] == ' ') {
            const char *sec = memchr(line + l + 1, ' ', n - l - 1);
            if (sec != NULL && (size_t)(line + n - sec - 1) < cap) {
                size_t sl = (size_t)(line + n - sec - 1);
                memcpy(out, sec + 1, sl);
                out[sl] = '\0';
                return 0;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}
