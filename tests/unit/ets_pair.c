/* An in-process TLS 1.3 client/server pair over memory BIOs that records the wire (see ets_pair.h). */
#include "ets_pair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "msp/ets.h"
#include "reader.h"

#define PUMP_ROUNDS 64 /* a handshake that needs more round trips than this is stuck */

static const uint8_t hrr_random[32] = {0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
                                       0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
                                       0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

static int keylog_idx = -1; /* ex_data slot of the client SSL pointing at its pair */

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

/*
 * buf with room for want elements of size elem, grown geometrically up to
 * max; NULL (buf untouched, still owned by the caller) when that is more.
 */
static void *reserve(void *buf, size_t *cap, size_t want, size_t max, size_t elem)
{
    if (want <= *cap) {
        return buf;
    }
    if (want > max) {
        return NULL;
    }
    size_t c = *cap > 0 ? *cap : 256;
    while (c < want) {
        c *= 2;
    }
    c = c < max ? c : max;
    void *b = realloc(buf, c * elem);
    *cap = b != NULL ? c : *cap;
    return b;
}

/* *field grown to hold want bytes, at most max; 0 or -1 */
static int reserve_bytes(char **field, size_t *cap, size_t want, size_t max)
{
    char *b = reserve(*field, cap, want, max, 1);
    *field = b != NULL ? b : *field;
    return b != NULL ? 0 : -1;
}

static void on_keylog(const SSL *ssl, const char *line)
{
    ets_pair_t *p = SSL_get_ex_data(ssl, keylog_idx);
    size_t n = strlen(line);
    if (p == NULL) {
        return;
    }
    if (reserve_bytes(&p->keylog, &p->keylog_cap, p->keylog_len + n + 2, ETS_PAIR_MAX_KEYLOG) != 0) {
        fail(p, "key log limit");
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

static SSL *side(const ets_pair_t *p, int dir)
{
    return dir == ETS_C2S ? p->client : p->server;
}

static SSL *peer(const ets_pair_t *p, int dir)
{
    return dir == ETS_C2S ? p->server : p->client;
}

/* Where the next n bytes of dir go: the recording, or the move buffer in callback mode. */
static uint8_t *landing(ets_pair_t *p, int dir, size_t n)
{
    if (p->on_write != NULL) {
        return p->move_buf;
    }
    uint8_t *b = reserve(p->bytes[dir], &p->cap[dir], p->len[dir] + n, p->max_bytes, 1);
    p->bytes[dir] = b != NULL ? b : p->bytes[dir];
    ets_chunk_t *c = reserve(p->chunks, &p->chunks_cap, p->nchunks + 1, p->max_chunks, sizeof(*p->chunks));
    p->chunks = c != NULL ? c : p->chunks;
    return b != NULL && c != NULL ? b + p->len[dir] : NULL;
}

/* Moves what one side wrote to the other side (unless one-way), keeping a copy or handing it on. */
static int shuttle(ets_pair_t *p, int dir)
{
    if (p->error[0] != '\0') {
        return -1;
    }
    BIO *out = SSL_get_wbio(side(p, dir));
    BIO *in = p->one_way[dir] ? NULL : SSL_get_rbio(peer(p, dir));
    size_t n;
    while ((n = (size_t)BIO_ctrl_pending(out)) > 0) {
        n = p->on_write != NULL && n > ETS_PAIR_MOVE ? ETS_PAIR_MOVE : n;
        uint8_t *dst = landing(p, dir, n);
        if (dst == NULL) {
            return fail(p, "recording limit");
        }
        if (BIO_read(out, dst, (int)n) != (int)n || (in != NULL && BIO_write(in, dst, (int)n) != (int)n)) {
            return fail(p, "memory BIO");
        }
        if (p->on_write != NULL) {
            p->on_write(p->arg, dir, dst, n);
        } else {
            p->chunks[p->nchunks++] = (ets_chunk_t){.dir = dir, .off = p->len[dir], .len = n};
        }
        p->len[dir] += n;
    }
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

/* Keeps what dir's receiver read, up to max_app; the rest is dropped (it was checked on arrival). */
static void keep_app(ets_pair_t *p, int dir, const uint8_t *b, size_t n)
{
    if (p->app_len[dir] + n <= p->max_app &&
        reserve_bytes(&p->app[dir], &p->app_cap[dir], p->app_len[dir] + n + 1, p->max_app + 1) == 0) {
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

/*
 * One SSL_write of all of data. What the other side left pending (one-way
 * writes) goes out first, so the recording keeps wire order; dir's own
 * pending bytes stay, to leave with these in one move.
 */
static int write_all(ets_pair_t *p, int dir, const void *data, size_t n)
{
    size_t w = 0;
    if (shuttle(p, !dir) != 0) {
        return -1;
    }
    if (SSL_write_ex(side(p, dir), data, n, &w) != 1 || w != n) {
        return fail(p, "SSL_write");
    }
    return 0;
}

int ets_pair_send(ets_pair_t *p, int dir, const void *data, size_t n)
{
    if (p->one_way[dir]) {
        return fail(p, "send on a one-way direction");
    }
    if (write_all(p, dir, data, n) != 0 || shuttle(p, dir) != 0) {
        return -1;
    }
    SSL *to = peer(p, dir);
    uint8_t buf[16384];
    size_t have = 0;
    for (int idle = 0; have < n;) {
        size_t got = 0, want = n - have < sizeof(buf) ? n - have : sizeof(buf);
        if (SSL_read_ex(to, buf, want, &got) == 1) {
            if (memcmp(buf, (const uint8_t *)data + have, got) != 0) {
                return fail(p, "application data differs from what was sent");
            }
            keep_app(p, dir, buf, got);
            have += got;
            idle = 0;
        } else if (!wants_io(to, 0)) {
            return fail(p, "SSL_read");
        } else if (++idle > PUMP_ROUNDS) {
            return fail(p, "application data lost");
        } else if (shuttle_both(p) != 0) {
            return -1;
        }
    }
    /* the reader may have answered (KeyUpdate, tickets); pass it on */
    return shuttle_both(p);
}

int ets_pair_write(ets_pair_t *p, int dir, const void *data, size_t n)
{
    if (write_all(p, dir, data, n) != 0) {
        return -1;
    }
    p->one_way[dir] = 1;
    return BIO_ctrl_pending(SSL_get_wbio(side(p, dir))) >= ETS_PAIR_ONE_WAY_BATCH ? shuttle(p, dir) : 0;
}

int ets_pair_key_update(ets_pair_t *p, int dir, int requested)
{
    SSL *s = side(p, dir);
    if (shuttle_both(p) != 0) {
        return -1;
    }
    if (!SSL_key_update(s, requested ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED)) {
        return fail(p, "SSL_key_update");
    }
    int r = SSL_do_handshake(s); /* sends it now rather than with the next write */
    if (r <= 0 && !wants_io(s, r)) {
        return fail(p, "KeyUpdate");
    }
    return shuttle(p, dir);
}

int ets_pair_finish(ets_pair_t *p)
{
    if (shuttle_both(p) != 0) {
        return -1;
    }
    /* as a server closing after its response */
    SSL_shutdown(p->server);
    int rc = shuttle(p, ETS_S2C);
    SSL_shutdown(p->client);
    rc |= shuttle(p, ETS_C2S);
    ERR_clear_error(); /* a half-closed shutdown is not an error here */
    return rc == 0 ? 0 : -1;
}

/* Lets the client take in what the server sent last (NewSessionTicket, KeyUpdate) without blocking. */
static void drain_client(ets_pair_t *p)
{
    uint8_t buf[256];
    size_t got = 0;
    while (SSL_read_ex(p->client, buf, sizeof(buf), &got) == 1) {
        keep_app(p, ETS_S2C, buf, got);
    }
    ERR_clear_error();
}

static int limits(ets_pair_t *p, const ets_pair_opts_t *o)
{
    p->max_bytes = o->max_bytes ? o->max_bytes : ETS_PAIR_MAX_BYTES;
    p->max_chunks = o->max_chunks ? o->max_chunks : ETS_PAIR_MAX_CHUNKS;
    p->max_app = o->max_app ? o->max_app : ETS_PAIR_MAX_APP;
    if (p->max_bytes > ETS_PAIR_LIMIT || p->max_chunks > ETS_PAIR_LIMIT || p->max_app > ETS_PAIR_LIMIT) {
        return fail(p, "limit above ETS_PAIR_LIMIT");
    }
    p->on_write = o->on_write;
    p->arg = o->arg;
    if ((p->on_write != NULL && (p->move_buf = malloc(ETS_PAIR_MOVE)) == NULL) ||
        reserve_bytes(&p->keylog, &p->keylog_cap, 1, ETS_PAIR_MAX_KEYLOG) != 0 ||
        reserve_bytes(&p->app[0], &p->app_cap[0], 1, p->max_app + 1) != 0 ||
        reserve_bytes(&p->app[1], &p->app_cap[1], 1, p->max_app + 1) != 0) {
        return fail(p, "out of memory");
    }
    p->keylog[0] = p->app[0][0] = p->app[1][0] = '\0';
    return 0;
}

static int client_options(ets_pair_t *p, const ets_pair_opts_t *o)
{
    uint8_t alpn[ETS_PAIR_MAX_ALPN + 1];
    size_t alen = o->alpn ? strlen(o->alpn) : 0;
    if (alen > ETS_PAIR_MAX_ALPN) {
        return fail(p, "ALPN too long");
    }
    alpn[0] = (uint8_t)alen;
    memcpy(alpn + 1, o->alpn ? o->alpn : "", alen);
    if ((o->groups && !SSL_set1_groups_list(p->client, o->groups)) ||
        (o->ciphersuites && !SSL_set_ciphersuites(p->client, o->ciphersuites)) ||
        (o->sni && !SSL_set_tlsext_host_name(p->client, o->sni)) ||
        (alen > 0 && SSL_set_alpn_protos(p->client, alpn, (unsigned)alen + 1) != 0) ||
        (o->session && !SSL_set_session(p->client, o->session))) {
        return fail(p, "client options");
    }
    return 0;
}

static int setup(ets_pair_t *p, SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o)
{
    if (limits(p, o) != 0) {
        return -1;
    }
    p->client = SSL_new(cctx);
    p->server = SSL_new(sctx);
    if (!p->client || !p->server) {
        return fail(p, "SSL_new");
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
    return client_options(p, o);
}

int ets_pair_start(ets_pair_t *p, SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o)
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
    if (handshake(p) != 0) {
        return -1;
    }
    p->early_accepted = SSL_get_early_data_status(p->server) == SSL_EARLY_DATA_ACCEPTED;
    p->resumed = SSL_session_reused(p->client);
    return 0;
}

static int exchange(ets_pair_t *p, const ets_pair_opts_t *o)
{
    const char *c2s = o->c2s ? o->c2s : "hello server", *s2c = o->s2c ? o->s2c : "hello client";
    return ets_pair_send(p, ETS_C2S, c2s, strlen(c2s)) == 0 && ets_pair_send(p, ETS_S2C, s2c, strlen(s2c)) == 0 ? 0
                                                                                                                : -1;
}

int ets_pair_run(ets_pair_t *p, SSL_CTX *sctx, SSL_CTX *cctx, const ets_pair_opts_t *o)
{
    static const ets_pair_opts_t none = {0};
    o = o ? o : &none;
    if (ets_pair_start(p, sctx, cctx, o) != 0 || exchange(p, o) != 0) {
        return -1;
    }
    if (o->key_update && (ets_pair_key_update(p, ETS_C2S, 1) != 0 || exchange(p, o) != 0)) {
        return -1;
    }
    drain_client(p);
    p->session = SSL_get1_session(p->client);
    return ets_pair_finish(p);
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
    free(p->move_buf);
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

int ets_pair_add_bad_visibility(X509 *cert)
{
    static const uint8_t bad[] = {0x30, 0x06, 0x04, 0x01, 0xaa, 0x0c, 0x01, 'x'};
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_TYPE *value = ASN1_TYPE_new();
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    int ok = names != NULL && gen != NULL && value != NULL && seq != NULL && ASN1_STRING_set(seq, bad, sizeof bad);
    if (ok) {
        ASN1_TYPE_set(value, V_ASN1_SEQUENCE, seq); /* value owns seq now */
        seq = NULL;
        ok = GENERAL_NAME_set0_othername(gen, OBJ_txt2obj(MSP_ETS_VI_OID, 1), value); /* gen owns value */
        value = ok ? NULL : value;
    }
    if (ok && sk_GENERAL_NAME_push(names, gen) > 0) {
        gen = NULL; /* names owns gen */
        ok = X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_REPLACE) == 1;
    } else {
        ok = 0;
    }
    ASN1_STRING_free(seq);
    ASN1_TYPE_free(value);
    GENERAL_NAME_free(gen);
    GENERAL_NAMES_free(names);
    return ok ? 0 : -1;
}
