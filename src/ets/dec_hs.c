/* Handshake messages and the key schedule steps they trigger (RFC 8446 4, 7.1; ets.md 7). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dec.h"
#include "reader.h"

enum {
    HS_CLIENT_HELLO = 1,
    HS_SERVER_HELLO = 2,
    HS_NEW_SESSION_TICKET = 4,
    HS_END_OF_EARLY_DATA = 5,
    HS_ENCRYPTED_EXTENSIONS = 8,
    HS_CERTIFICATE = 11,
    HS_CERTIFICATE_REQUEST = 13,
    HS_CERTIFICATE_VERIFY = 15,
    HS_FINISHED = 20,
    HS_KEY_UPDATE = 24,
};

enum {
    EXT_SERVER_NAME = 0,
    EXT_ALPN = 16,
    EXT_PRE_SHARED_KEY = 41,
    EXT_EARLY_DATA = 42,
    EXT_SUPPORTED_VERSIONS = 43,
    EXT_KEY_SHARE = 51,
};

/* SHA-256("HelloRetryRequest"), RFC 8446 4.1.3 */
static const uint8_t hrr_random[32] = {0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
                                       0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
                                       0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

static int malformed(msp_ets_conn_t *c, int dir, const char *what)
{
    dec_fail(c, dir, MSP_ETS_R_MALFORMED, "malformed handshake: %s", what);
    return MSP_ALERT_DECODE_ERROR;
}

static int internal(msp_ets_conn_t *c, int dir)
{
    dec_fail(c, dir, MSP_ETS_R_INTERNAL, "key schedule failed (OpenSSL)");
    return MSP_ERR_INVALID;
}

static int add(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    return EVP_DigestUpdate(c->th, msg, len) == 1 ? MSP_OK : MSP_ERR_INVALID;
}

static void copy_name(char *dst, const uint8_t *p, size_t n)
{
    n = n > MSP_ETS_DEC_MAX_NAME ? MSP_ETS_DEC_MAX_NAME : n;
    for (size_t i = 0; i < n; i++) {
        dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?'; /* event text stays printable */
    }
    dst[n] = '\0';
}

/* ---- ClientHello ---- */

static int ch_ext(msp_ets_conn_t *c, uint16_t type, msp_reader_t *e)
{
    msp_reader_t l, x;
    uint16_t g;
    const uint8_t *p;
    switch (type) {
    case EXT_SERVER_NAME: {
        uint8_t kind;
        if (msp_read_block(e, 2, &l) || msp_read_u8(&l, &kind) || msp_read_block(&l, 2, &x)) {
            return MSP_ALERT_DECODE_ERROR;
        }
        copy_name(c->sni, x.pos, msp_reader_left(&x));
        return MSP_OK;
    }
    case EXT_KEY_SHARE:
        if (msp_read_block(e, 2, &l)) {
            return MSP_ALERT_DECODE_ERROR;
        }
        while (msp_reader_left(&l) > 0) {
            if (msp_read_u16(&l, &g) || msp_read_block(&l, 2, &x)) {
                return MSP_ALERT_DECODE_ERROR;
            }
            if (c->nshare < MSP_ETS_DEC_MAX_SHARES) {
                c->share[c->nshare++] = (dec_share_t){g, (size_t)(x.pos - c->ch.base), msp_reader_left(&x)};
            }
        }
        return msp_reader_expect_end(e);
    case EXT_PRE_SHARED_KEY:
        if (msp_read_block(e, 2, &l)) {
            return MSP_ALERT_DECODE_ERROR;
        }
        while (msp_reader_left(&l) > 0) {
            uint32_t age;
            if (msp_read_block(&l, 2, &x) || msp_read_u32(&l, &age)) {
                return MSP_ALERT_DECODE_ERROR;
            }
            if (c->npsk < MSP_ETS_DEC_MAX_PSK_IDS) {
                c->psk_id[c->npsk++] = (dec_psk_id_t){(size_t)(x.pos - c->ch.base), msp_reader_left(&x)};
            }
        }
        return msp_read_block(e, 2, &l) || msp_read_bytes(&l, msp_reader_left(&l), &p) ? MSP_ALERT_DECODE_ERROR
                                                                                       : MSP_OK;
    case EXT_EARLY_DATA:
        c->early_offered = c->phase == PH_CH1;
        return MSP_OK;
    default:
        return MSP_OK;
    }
}

static int client_hello(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    c->ch.len = 0;
    if (msp_buf_put(&c->ch, msg, len) != MSP_OK) {
        return malformed(c, 0, "ClientHello too long");
    }
    msp_reader_t r, s, e, x;
    const uint8_t *random;
    uint16_t ver, type;
    msp_reader_init(&r, c->ch.base + 4, len - 4);
    if (msp_read_u16(&r, &ver) || msp_read_bytes(&r, 32, &random) || msp_read_block(&r, 1, &s) ||
        msp_read_block(&r, 2, &s) || msp_read_block(&r, 1, &s) || msp_read_block(&r, 2, &e) ||
        msp_reader_expect_end(&r)) {
        return malformed(c, 0, "ClientHello");
    }
    c->nshare = c->npsk = 0;
    while (msp_reader_left(&e) > 0) {
        if (msp_read_u16(&e, &type) || msp_read_block(&e, 2, &x) || ch_ext(c, type, &x)) {
            return malformed(c, 0, "ClientHello extension");
        }
    }
    if (c->phase == PH_CH1) {
        memcpy(c->client_random, random, 32);
        c->phase = PH_SH1;
        return MSP_OK;
    }
    c->phase = PH_SH2;
    return add(c, msg, len) == MSP_OK ? MSP_OK : internal(c, 0);
}

/* ---- ServerHello ---- */

int dec_server_hello_parse(const uint8_t *msg, size_t len, dec_server_hello_t *sh)
{
    msp_reader_t r, s, e, x;
    uint8_t type, comp;
    uint16_t ext;
    uint32_t body;
    memset(sh, 0, sizeof(*sh));
    msp_reader_init(&r, msg, len);
    if (msp_read_u8(&r, &type) || type != HS_SERVER_HELLO || msp_read_u24(&r, &body) || body != msp_reader_left(&r)) {
        return MSP_ALERT_DECODE_ERROR; /* the decryptor's framing guarantees this; the probe's callers may not */
    }
    if (msp_read_u16(&r, &sh->legacy_version) || msp_read_bytes(&r, 32, &sh->random) || msp_read_block(&r, 1, &s) ||
        msp_read_u16(&r, &sh->suite) || msp_read_u8(&r, &comp)) {
        return MSP_ALERT_DECODE_ERROR;
    }
    if (msp_reader_left(&r) == 0) {
        return MSP_OK; /* TLS 1.2 without extensions */
    }
    if (msp_read_block(&r, 2, &e) || msp_reader_expect_end(&r)) {
        return MSP_ALERT_DECODE_ERROR;
    }
    sh->hrr = memcmp(sh->random, hrr_random, 32) == 0;
    while (msp_reader_left(&e) > 0) {
        if (msp_read_u16(&e, &ext) || msp_read_block(&e, 2, &x)) {
            return MSP_ALERT_DECODE_ERROR;
        }
        int rc = MSP_OK;
        if (ext == EXT_SUPPORTED_VERSIONS) {
            rc = msp_read_u16(&x, &sh->version);
        } else if (ext == EXT_PRE_SHARED_KEY) {
            sh->has_psk = 1;
            rc = msp_read_u16(&x, &sh->psk);
        } else if (ext == EXT_KEY_SHARE) {
            sh->has_share = 1;
            rc = msp_read_u16(&x, &sh->group);
            if (rc == MSP_OK && !sh->hrr) {
                rc = msp_read_block(&x, 2, &s);
                sh->share = s.pos;
                sh->share_len = msp_reader_left(&s);
            }
        }
        if (rc != MSP_OK) {
            return rc;
        }
    }
    return MSP_OK;
}

static int start_suite(msp_ets_conn_t *c, uint16_t id)
{
    if (c->suite != NULL) {
        return c->suite->id == id ? MSP_OK : malformed(c, 1, "ServerHello suite differs from HelloRetryRequest");
    }
    if ((c->suite = dec_suite_find(c->cr, id, &c->suite_store)) == NULL) {
        dec_fail(c, 1, MSP_ETS_R_UNSUPPORTED, "cipher suite 0x%04x is not supported", id);
        return MSP_ERR_INVALID;
    }
    if (c->th == NULL) {
        c->th = EVP_MD_CTX_new(); /* a recycled connection has one */
    }
    if (dec_kdf_start(c) != MSP_OK || c->th == NULL || EVP_DigestInit_ex(c->th, c->suite->md, NULL) != 1) {
        return internal(c, 1);
    }
    return MSP_OK;
}

/* message_hash replaces ClientHello1 (RFC 8446 4.4.1). */
static int hello_retry(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    uint8_t mh[4 + DEC_MAX_HASH] = {254, 0, 0, (uint8_t)c->suite->hlen};
    if (c->phase != PH_SH1) {
        return malformed(c, 1, "second HelloRetryRequest");
    }
    if (EVP_Digest(c->ch.base, c->ch.len, mh + 4, NULL, c->suite->md, NULL) != 1 ||
        add(c, mh, 4 + c->suite->hlen) != MSP_OK || add(c, msg, len) != MSP_OK) {
        return internal(c, 1);
    }
    c->hrr = 1;
    c->phase = PH_CH2;
    return MSP_OK;
}

static const uint8_t *psk_identity(const msp_ets_conn_t *c, size_t i, size_t *len)
{
    *len = c->psk_id[i].len;
    return c->ch.base + c->psk_id[i].off;
}

/* 0-RTT secrets from the first offered PSK over ClientHello1 (RFC 8446 4.2.10, 7.1). */
static int early_secrets(msp_ets_conn_t *c)
{
    size_t n;
    const uint8_t *id = psk_identity(c, 0, &n);
    const dec_ticket_t *t = dec_tickets_get(c->tickets, id, n);
    uint8_t es[DEC_MAX_HASH], h[DEC_MAX_HASH], exp[DEC_MAX_HASH];
    if (t == NULL || t->psk_len != c->suite->hlen) {
        return MSP_OK; /* cannot be accepted with this suite either */
    }
    if (dec_extract(c, NULL, t->psk, t->psk_len, es) ||
        EVP_Digest(c->ch.base, c->ch.len, h, NULL, c->suite->md, NULL) != 1 ||
        dec_derive_secret(c, es, "c e traffic", h, c->early_secret) ||
        dec_derive_secret(c, es, "e exp master", h, exp)) {
        return MSP_ERR_INVALID;
    }
    dec_keylog(c, "CLIENT_EARLY_TRAFFIC_SECRET", c->early_secret);
    dec_keylog(c, "EARLY_EXPORTER_SECRET", exp);
    OPENSSL_cleanse(es, sizeof(es));
    return MSP_OK;
}

/* The PSK the ServerHello selected, or a reported failure. */
static int selected_psk(msp_ets_conn_t *c, const dec_server_hello_t *sh, uint8_t *psk)
{
    size_t n;
    if (sh->psk >= c->npsk) {
        return malformed(c, 1, "ServerHello selects a PSK identity that was not offered");
    }
    const uint8_t *id = psk_identity(c, sh->psk, &n);
    const dec_ticket_t *t = dec_tickets_get(c->tickets, id, n);
    if (t == NULL || t->psk_len != c->suite->hlen) {
        if (sh->has_share) {
            dec_fail(c, 1, MSP_ETS_R_PSK_UNKNOWN,
                     "resumption with a PSK from a connection not seen (ticket of %zu bytes unknown)", n);
        } else {
            dec_fail(c, 1, MSP_ETS_R_PSK_KE_UNKNOWN, "PSK-only (psk_ke) resumption with an unknown ticket (%zu bytes)",
                     n);
        }
        return MSP_ERR_NOT_FOUND;
    }
    memcpy(psk, t->psk, t->psk_len);
    c->resumed = 1;
    c->issuer_tag = t->tag;
    c->psk_sel = sh->psk;
    return MSP_OK;
}

/* (EC)DHE with the static key whose public share the server sent (ets.md 7, key lookup). */
static int shared_secret(msp_ets_conn_t *c, const dec_server_hello_t *sh, uint8_t *out, size_t *out_len)
{
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    c->group = sh->group;
    const dec_key_t *k = dec_key_find(c->keys, sh->group, sh->share, sh->share_len);
    if (k != NULL) {
        memcpy(c->fp, k->fp, sizeof(c->fp)); /* the same share: its fingerprint was taken with the key */
    } else if (msp_ets_fingerprint(sh->share, sh->share_len, c->fp) != MSP_OK) {
        return internal(c, 1);
    }
    if (k == NULL) {
        msp_hex(fp, c->fp, MSP_ETS_FINGERPRINT_LEN);
        dec_fail(c, 1, MSP_ETS_R_NO_STATIC_KEY,
                 "no static key matches the ServerHello key_share (fingerprint %s, group 0x%04x)", fp, sh->group);
        return MSP_ERR_NOT_FOUND;
    }
    for (size_t i = 0; i < c->nshare; i++) {
        if (c->share[i].group == sh->group) {
            if (dec_key_derive(k, c->ch.base + c->share[i].off, c->share[i].len, out, out_len) != MSP_OK) {
                return malformed(c, 1, "the client's key_share is not a valid public key");
            }
            return MSP_OK;
        }
    }
    return malformed(c, 1, "ServerHello key_share group was not offered by the client");
}

/* Side dir's finished_key, right after an AEAD key from its secret (the HMAC still keyed with it). */
static int fin_key(msp_ets_conn_t *c, int dir, const uint8_t *secret)
{
    int rc = dec_expand_label(c, secret, "finished", NULL, 0, c->fin_key[dir], c->suite->hlen);
    c->have_fin_key[dir] = rc == MSP_OK;
    return rc;
}

static int handshake_secrets(msp_ets_conn_t *c, const uint8_t *psk, const uint8_t *dh, size_t dh_len)
{
    static const uint8_t zero[DEC_MAX_HASH];
    uint8_t es[DEC_MAX_HASH], h[DEC_MAX_HASH];
    size_t hl = c->suite->hlen;
    int rc = MSP_OK;
    if (psk != NULL) {
        rc = dec_extract(c, NULL, psk, hl, es);
        rc = rc ? rc : dec_derive_next(c, es);
    } else {
        memcpy(es, c->suite->derived, hl); /* no PSK: the same for every connection */
    }
    rc = rc ? rc : dec_extract(c, es, dh_len > 0 ? dh : zero, dh_len > 0 ? dh_len : hl, c->hs_secret);
    rc = rc ? rc : dec_transcript_hash(c, h);
    rc = rc ? rc : dec_derive_secret(c, c->hs_secret, "c hs traffic", h, c->chs);
    rc = rc ? rc : dec_derive_secret(c, c->hs_secret, "s hs traffic", h, c->shs);
    /*
     * The Master Secret needs no transcript: derived now, while the HMAC is
     * keyed with the Handshake Secret, rather than at the server Finished
     * (a key set-up less). Nothing needs the Handshake Secret after this.
     */
    rc = rc ? rc : dec_derive_next(c, c->hs_secret);
    rc = rc ? rc : dec_extract(c, c->hs_secret, zero, hl, c->hs_secret);
    rc = rc ? rc : dec_aead_set(c, &c->d[1].aead, c->shs);
    rc = rc ? rc : fin_key(c, 1, c->shs);
    OPENSSL_cleanse(es, sizeof(es));
    if (rc != MSP_OK) {
        return internal(c, 1);
    }
    dec_keylog(c, "CLIENT_HANDSHAKE_TRAFFIC_SECRET", c->chs);
    dec_keylog(c, "SERVER_HANDSHAKE_TRAFFIC_SECRET", c->shs);
    return MSP_OK;
}

static int server_hello(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    dec_server_hello_t sh;
    uint8_t psk[DEC_MAX_HASH], dh[MSP_ETS_DEC_MAX_SHARE];
    size_t dh_len = sizeof(dh);
    if (dec_server_hello_parse(msg, len, &sh) != MSP_OK) {
        return malformed(c, 1, "ServerHello");
    }
    if (sh.version != 0x0304) {
        dec_fail(c, 1, MSP_ETS_R_NOT_TLS13, "not TLS 1.3 (negotiated 0x%04x)",
                 sh.version != 0 ? sh.version : sh.legacy_version);
        return MSP_ERR_INVALID;
    }
    int rc = start_suite(c, sh.suite);
    if (rc != MSP_OK) {
        return rc;
    }
    if (sh.hrr) {
        return hello_retry(c, msg, len);
    }
    if ((c->phase == PH_SH1 && add(c, c->ch.base, c->ch.len) != MSP_OK) || add(c, msg, len) != MSP_OK) {
        return internal(c, 1);
    }
    if (!sh.has_share && !sh.has_psk) {
        return malformed(c, 1, "ServerHello with neither key_share nor pre_shared_key");
    }
    if (c->early_offered && !c->hrr && c->npsk > 0 && early_secrets(c) != MSP_OK) {
        return internal(c, 1);
    }
    if (sh.has_psk && (rc = selected_psk(c, &sh, psk)) != MSP_OK) {
        return rc;
    }
    if (sh.has_share && (rc = shared_secret(c, &sh, dh, &dh_len)) != MSP_OK) {
        return rc;
    }
    rc = handshake_secrets(c, sh.has_psk ? psk : NULL, dh, sh.has_share ? dh_len : 0);
    OPENSSL_cleanse(dh, sizeof(dh));
    OPENSSL_cleanse(psk, sizeof(psk));
    c->phase = PH_SFLIGHT;
    return rc;
}

/* ---- the server's encrypted flight ---- */

static int encrypted_extensions(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    msp_reader_t r, e, x, l, p;
    uint16_t type;
    int accepted = 0;
    msp_reader_init(&r, msg + 4, len - 4);
    if (msp_read_block(&r, 2, &e) || msp_reader_expect_end(&r)) {
        return malformed(c, 1, "EncryptedExtensions");
    }
    while (msp_reader_left(&e) > 0) {
        if (msp_read_u16(&e, &type) || msp_read_block(&e, 2, &x)) {
            return malformed(c, 1, "EncryptedExtensions");
        }
        if (type == EXT_EARLY_DATA) {
            accepted = 1;
        } else if (type == EXT_ALPN) {
            if (msp_read_block(&x, 2, &l) || msp_read_block(&l, 1, &p)) {
                return malformed(c, 1, "ALPN");
            }
            copy_name(c->alpn, p.pos, msp_reader_left(&p));
        }
    }
    if (accepted && (!c->early_offered || !c->resumed || c->hrr)) {
        return malformed(c, 1, "early_data accepted but not possible");
    }
    if (add(c, msg, len) != MSP_OK) {
        return internal(c, 1);
    }
    /* the client's next records: 0-RTT under the early key, or skipped 0-RTT, then its handshake key */
    c->ee = 1;
    c->early = accepted ? EARLY_ACCEPTED : c->early_offered && !c->hrr ? EARLY_SKIP : EARLY_NONE;
    if (dec_aead_set(c, &c->d[0].aead, accepted ? c->early_secret : c->chs) != MSP_OK ||
        (!accepted && fin_key(c, 0, c->chs) != MSP_OK)) {
        return internal(c, 1);
    }
    return MSP_OK;
}

static int server_certificate(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    msp_reader_t r, ctx, list, cert;
    msp_reader_init(&r, msg + 4, len - 4);
    if (msp_read_block(&r, 1, &ctx) || msp_read_block(&r, 3, &list) || msp_reader_expect_end(&r)) {
        return malformed(c, 1, "Certificate");
    }
    if (msp_reader_left(&list) > 0) {
        if (msp_read_block(&list, 3, &cert)) {
            return malformed(c, 1, "Certificate entry");
        }
        c->cert.len = 0;
        if (msp_buf_put(&c->cert, cert.pos, msp_reader_left(&cert)) != MSP_OK) {
            return malformed(c, 1, "certificate too long");
        }
    }
    return add(c, msg, len) == MSP_OK ? MSP_OK : internal(c, 1);
}

/* verify_data = HMAC(finished_key, Transcript-Hash) (RFC 8446 4.4.4); HKDF-Extract is that HMAC. */
static int finished_ok(msp_ets_conn_t *c, int dir, const uint8_t *secret, const uint8_t *msg, size_t len)
{
    uint8_t h[DEC_MAX_HASH], mac[DEC_MAX_HASH];
    size_t hl = c->suite->hlen;
    if ((!c->have_fin_key[dir] && fin_key(c, dir, secret)) || dec_transcript_hash(c, h) ||
        dec_extract(c, c->fin_key[dir], h, hl, mac)) {
        return -1;
    }
    return len == 4 + hl && CRYPTO_memcmp(mac, msg + 4, hl) == 0;
}

static int server_finished(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    uint8_t h[DEC_MAX_HASH], exp[DEC_MAX_HASH];
    int ok = finished_ok(c, 1, c->shs, msg, len);
    if (ok < 0) {
        return internal(c, 1);
    }
    if (!ok) {
        dec_fail(c, 1, MSP_ETS_R_FINISHED, "server Finished does not verify (wrong key or transcript)");
        return MSP_ERR_INVALID;
    }
    uint8_t *ms = c->hs_secret; /* the Master Secret since the ServerHello */
    int rc = add(c, msg, len);
    rc = rc ? rc : dec_transcript_hash(c, h);
    rc = rc ? rc : dec_derive_secret(c, ms, "c ap traffic", h, c->d[0].secret);
    rc = rc ? rc : dec_derive_secret(c, ms, "s ap traffic", h, c->d[1].secret);
    rc = rc ? rc : dec_derive_secret(c, ms, "exp master", h, exp);
    rc = rc ? rc : dec_aead_set(c, &c->d[1].aead, c->d[1].secret);
    if (rc != MSP_OK) {
        return internal(c, 1);
    }
    dec_keylog(c, "CLIENT_TRAFFIC_SECRET_0", c->d[0].secret);
    dec_keylog(c, "SERVER_TRAFFIC_SECRET_0", c->d[1].secret);
    dec_keylog(c, "EXPORTER_SECRET", exp);
    c->phase = PH_CFLIGHT;
    return MSP_OK;
}

static int server_flight(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    if (c->ee != (msg[0] != HS_ENCRYPTED_EXTENSIONS)) {
        return malformed(c, 1, "EncryptedExtensions must come first, once");
    }
    switch (msg[0]) {
    case HS_ENCRYPTED_EXTENSIONS:
        return encrypted_extensions(c, msg, len);
    case HS_CERTIFICATE:
        return server_certificate(c, msg, len);
    case HS_CERTIFICATE_REQUEST:
    case HS_CERTIFICATE_VERIFY:
        return add(c, msg, len) == MSP_OK ? MSP_OK : internal(c, 1);
    case HS_FINISHED:
        return server_finished(c, msg, len);
    default:
        return malformed(c, 1, "unexpected message in the server flight");
    }
}

/* ---- the client's second flight ---- */

/* A resumption's issuer, from its ticket, fetched again: the entry may have left the store since the ServerHello. */
static void issuer_of(msp_ets_conn_t *c, msp_ets_event_t *ev)
{
    size_t n;
    ev->issuer_tag = c->issuer_tag;
    if (!c->resumed || c->issuer_tag == 0) {
        return;
    }
    const uint8_t *id = psk_identity(c, c->psk_sel, &n);
    const dec_ticket_t *t = dec_tickets_get(c->tickets, id, n);
    if (t != NULL && t->tag == c->issuer_tag) {
        ev->issuer_info = t->info;
        ev->issuer_info_len = t->info_len;
    }
}

static void handshake_done(msp_ets_conn_t *c)
{
    char text[MSP_ETS_DEC_MAX_TEXT];
    snprintf(text, sizeof(text), "TLS 1.3 suite 0x%04x group 0x%04x%s%s%s", c->suite->id, c->group,
             c->resumed ? " resumed" : "", c->early_accepted ? " 0-RTT" : "", c->hrr ? " HRR" : "");
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_HANDSHAKE,
                          .dir = -1,
                          .text = text,
                          .suite = c->suite->id,
                          .group = c->group,
                          .sni = c->sni,
                          .alpn = c->alpn,
                          .resumed = c->resumed,
                          .early_offered = c->early_offered,
                          .early_accepted = c->early_accepted,
                          .hrr = c->hrr,
                          .cert = c->cert.len > 0 ? c->cert.base : NULL,
                          .cert_len = c->cert.len};
    memcpy(ev.fingerprint, c->fp, sizeof(ev.fingerprint));
    issuer_of(c, &ev);
    dec_event(c, &ev);
}

static int client_flight(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    uint8_t h[DEC_MAX_HASH];
    switch (msg[0]) {
    case HS_END_OF_EARLY_DATA:
        if (c->early != EARLY_ACCEPTED || len != 4) {
            return malformed(c, 0, "unexpected EndOfEarlyData");
        }
        c->early = EARLY_NONE;
        c->early_accepted = 1;
        return add(c, msg, len) || dec_aead_set(c, &c->d[0].aead, c->chs) || fin_key(c, 0, c->chs) ? internal(c, 0)
                                                                                                   : MSP_OK;
    case HS_CERTIFICATE:
    case HS_CERTIFICATE_VERIFY:
        return add(c, msg, len) == MSP_OK ? MSP_OK : internal(c, 0);
    case HS_FINISHED:
        break;
    default:
        return malformed(c, 0, "unexpected message in the client flight");
    }
    if (c->early == EARLY_ACCEPTED) {
        return malformed(c, 0, "client Finished before EndOfEarlyData");
    }
    int ok = finished_ok(c, 0, c->chs, msg, len);
    if (ok < 0 || add(c, msg, len) || dec_transcript_hash(c, h) ||
        dec_derive_secret(c, c->hs_secret, "res master", h, c->res) || dec_aead_set(c, &c->d[0].aead, c->d[0].secret)) {
        return internal(c, 0);
    }
    if (!ok) {
        dec_fail(c, 0, MSP_ETS_R_FINISHED, "client Finished does not verify");
        return MSP_ERR_INVALID;
    }
    c->early = EARLY_NONE;
    c->phase = PH_DONE;
    handshake_done(c);
    return MSP_OK;
}

/* ---- after the handshake ---- */

static int new_session_ticket(msp_ets_conn_t *c, const uint8_t *msg, size_t len)
{
    msp_reader_t r, nonce, ticket, ext, x;
    uint32_t lifetime, age_add, max_early = 0;
    uint16_t type;
    uint8_t psk[DEC_MAX_HASH];
    msp_reader_init(&r, msg + 4, len - 4);
    if (msp_read_u32(&r, &lifetime) || msp_read_u32(&r, &age_add) || msp_read_block(&r, 1, &nonce) ||
        msp_read_block(&r, 2, &ticket) || msp_read_block(&r, 2, &ext) || msp_reader_expect_end(&r) ||
        msp_reader_left(&ticket) == 0) {
        return malformed(c, 1, "NewSessionTicket");
    }
    while (msp_reader_left(&ext) > 0) {
        if (msp_read_u16(&ext, &type) || msp_read_block(&ext, 2, &x) ||
            (type == EXT_EARLY_DATA && msp_read_u32(&x, &max_early))) {
            return malformed(c, 1, "NewSessionTicket extension");
        }
    }
    size_t hl = c->suite->hlen;
    if (dec_expand_label(c, c->res, "resumption", nonce.pos, msp_reader_left(&nonce), psk, hl) != MSP_OK) {
        return internal(c, 1);
    }
    int rc = c->tickets != NULL ? dec_tickets_put_from(c->tickets, ticket.pos, msp_reader_left(&ticket), c->suite->id,
                                                       psk, hl, &c->self)
                                : MSP_ERR_ARGUMENT;
    OPENSSL_cleanse(psk, sizeof(psk));
    char text[96];
    snprintf(text, sizeof(text), "ticket of %zu bytes %s", msp_reader_left(&ticket),
             rc == MSP_OK ? "stored" : "not stored");
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_TICKET,
                          .dir = 1,
                          .text = text,
                          .lifetime = lifetime,
                          .max_early_data = max_early,
                          .ticket_len = msp_reader_left(&ticket)};
    dec_event(c, &ev);
    return MSP_OK;
}

/* Only the sender's direction moves (RFC 8446 4.6.3); update_requested concerns the peer's own message. */
static int key_update(msp_ets_conn_t *c, int dir, const uint8_t *msg, size_t len)
{
    dec_dir_t *d = &c->d[dir];
    if (len != 5 || msg[4] > 1) {
        return malformed(c, dir, "KeyUpdate");
    }
    if (dec_expand_label(c, d->secret, "traffic upd", NULL, 0, d->secret, c->suite->hlen) ||
        dec_aead_set(c, &d->aead, d->secret)) {
        return internal(c, dir);
    }
    d->generation++;
    char text[64];
    snprintf(text, sizeof(text), "%s key update %u", dir == 0 ? "client" : "server", d->generation);
    msp_ets_event_t ev = {.kind = MSP_ETS_EV_KEY_UPDATE, .dir = dir, .text = text, .generation = d->generation};
    dec_event(c, &ev);
    return MSP_OK;
}

static int post_handshake(msp_ets_conn_t *c, int dir, const uint8_t *msg, size_t len)
{
    switch (msg[0]) {
    case HS_KEY_UPDATE:
        return key_update(c, dir, msg, len);
    case HS_NEW_SESSION_TICKET:
        return dir == 1 ? new_session_ticket(c, msg, len) : malformed(c, dir, "NewSessionTicket from the client");
    case HS_CERTIFICATE_REQUEST:
    case HS_CERTIFICATE:
    case HS_CERTIFICATE_VERIFY:
    case HS_FINISHED:
        return MSP_OK; /* post-handshake authentication changes no key */
    default:
        return malformed(c, dir, "unexpected post-handshake message");
    }
}

void msp_ets_conn_set_issuer(msp_ets_conn_t *c, uint64_t tag, const uint8_t *info, size_t len)
{
    c->self = (dec_issuer_t){tag, info, info != NULL ? len : 0};
}

int dec_handshake(msp_ets_conn_t *c, int dir, const uint8_t *msg, size_t len)
{
    int ph = c->phase;
    if (ph == PH_DONE) {
        return post_handshake(c, dir, msg, len);
    }
    if (dir == 0) {
        if (ph == PH_CH1 || ph == PH_CH2) {
            return msg[0] == HS_CLIENT_HELLO ? client_hello(c, msg, len) : malformed(c, 0, "ClientHello expected");
        }
        return ph == PH_CFLIGHT ? client_flight(c, msg, len) : malformed(c, 0, "client message out of order");
    }
    if (ph == PH_SH1 || ph == PH_SH2) {
        return msg[0] == HS_SERVER_HELLO ? server_hello(c, msg, len) : malformed(c, 1, "ServerHello expected");
    }
    return ph == PH_SFLIGHT ? server_flight(c, msg, len) : malformed(c, 1, "server message out of order");
}
