/*
 * TLMSP containers and their protection (ETSI TS 103 523-2). The write-up gives no clause numbers of the
 * standard here except for the size limits (4.2.1.3, tlmsp-records.md 1); the bare section numbers below
 * are tlmsp-records.md's.
 */
#include "tlmsp_container.h"

#include <stddef.h>
#include <string.h>

#include <openssl/crypto.h>

#include "msp/error.h"
#include "../common/guard.h"

/* ---- parsing (tlmsp-records.md 4.1 layout) ---- */

/*
 * M_INFO (4.3): m_id | n | n x (source_ID | delete_count(2)), present iff INSERTED or DELETED (4.1); kept
 * verbatim because "M_INFO is copied verbatim into every MAC/AAD input" (4.3).
 */
static int parse_m_info(msp_reader_t *r, msp_tlmsp_container_t *c)
{
    msp_reader_t start = *r;
    uint8_t m_id, n;
    const uint8_t *entries;
    int ret = msp_read_u8(r, &m_id);
    if (ret == MSP_OK) {
        ret = msp_read_u8(r, &n);
    }
    if (ret == MSP_OK) {
        ret = msp_read_bytes(r, (size_t)n * 3, &entries);
    }
    if (ret == MSP_OK) {
        c->m_info = start.pos;
        c->m_info_len = (size_t)(r->pos - start.pos);
    }
    return ret;
}

/* forwardingMAC (4.6): id | order | flags | outboundReaderCheckMAC(16) | nonce(12) | checkMAC(16). */
static int parse_fmac(msp_reader_t *r, msp_tlmsp_fmac_t *fm)
{
    int ret = msp_read_u8(r, &fm->id);
    if (ret == MSP_OK) {
        ret = msp_read_u8(r, &fm->order);
    }
    if (ret == MSP_OK) {
        ret = msp_read_u8(r, &fm->flags);
    }
    if (ret == MSP_OK) {
        ret = msp_read_bytes(r, MSP_TLMSP_MAC_LEN, &fm->reader_check);
    }
    if (ret == MSP_OK) {
        ret = msp_read_bytes(r, MSP_TLMSP_GCM_NONCE_LEN, &fm->nonce);
    }
    if (ret == MSP_OK) {
        ret = msp_read_bytes(r, MSP_TLMSP_MAC_LEN, &fm->check);
    }
    return ret;
}

/* The mandatory forwarding MAC, then nAF more iff the container is audited (flag 0x1000, 4.1). */
static int parse_fmacs(msp_reader_t *r, msp_tlmsp_container_t *c)
{
    int ret = parse_fmac(r, &c->fmacs[0]);
    c->nfmacs = 1;
    if (ret != MSP_OK || !(c->flags & MSP_TLMSP_CF_ADDITIONAL_FORWARDING_MACS)) {
        return ret;
    }
    uint8_t naf;
    ret = msp_read_u8(r, &naf);
    for (size_t i = 0; ret == MSP_OK && i < naf; i++) {
        ret = parse_fmac(r, &c->fmacs[c->nfmacs++]);
    }
    return ret;
}

/*
 * contextId | flags | [M_INFO] | v16<fragment> | writerMAC | forwarding MACs (4.1); before keys only an
 * alert container, whose fragment is the 2-byte alert and which has no MACs (4.7).
 */
int msp_tlmsp_container_parse(msp_reader_t *r, int protected_, msp_tlmsp_container_t *c)
{
    msp_reader_t save = *r;
    memset(c, 0, offsetof(msp_tlmsp_container_t, fmacs));
    msp_reader_t frag;
    int ret = msp_read_u8(r, &c->context);
    if (ret == MSP_OK) {
        ret = msp_read_u16(r, &c->flags);
    }
    if (ret == MSP_OK && (c->flags & (MSP_TLMSP_CF_INSERTED | MSP_TLMSP_CF_DELETED))) {
        ret = parse_m_info(r, c);
    }
    if (ret == MSP_OK) {
        ret = msp_read_block(r, 2, &frag);
    }
    if (ret == MSP_OK) {
        c->fragment = frag.pos;
        c->fragment_len = msp_reader_left(&frag);
        /* A protected fragment holds at least its nonce and tag; an unprotected one is a 2-byte alert. */
        if (protected_ ? c->fragment_len < MSP_TLMSP_FRAGMENT_OVERHEAD : c->fragment_len != 2) {
            ret = MSP_ALERT_DECODE_ERROR;
        }
    }
    if (ret == MSP_OK && protected_) {
        ret = msp_read_bytes(r, MSP_TLMSP_MAC_LEN, &c->writer_mac);
    }
    if (ret == MSP_OK && protected_) {
        ret = parse_fmacs(r, c);
    }
    if (ret != MSP_OK) {
        *r = save;
    }
    return ret;
}

/* ---- the GCM engine ---- */

int msp_tlmsp_gcm_init(msp_tlmsp_gcm_t *g)
{
    memset(g, 0, sizeof(*g));
    g->ctx = EVP_CIPHER_CTX_new();
    g->md = EVP_MD_CTX_new();
    g->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_CIPHER *aes = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    /* Bind the cipher once per context; later calls pass only the IV (and a key on a cache miss). */
    int ok = g->ctx != NULL && g->md != NULL && g->sha256 != NULL && aes != NULL &&
             EVP_EncryptInit_ex(g->ctx, aes, NULL, NULL, NULL);
    for (int i = 0; ok && i < MSP_TLMSP_GCM_KEY_SLOTS; i++) {
        g->slot[i].ctx = EVP_CIPHER_CTX_new();
        ok = g->slot[i].ctx != NULL && EVP_EncryptInit_ex(g->slot[i].ctx, aes, NULL, NULL, NULL);
    }
    EVP_CIPHER_free(aes); /* the contexts keep their own references */
    if (!ok) {
        msp_tlmsp_gcm_free(g);
        return MSP_ERR_NO_MEMORY;
    }
    return MSP_OK;
}

void msp_tlmsp_gcm_free(msp_tlmsp_gcm_t *g)
{
    for (int i = 0; i < MSP_TLMSP_GCM_KEY_SLOTS; i++) {
        EVP_CIPHER_CTX_free(g->slot[i].ctx);
        OPENSSL_cleanse(g->slot[i].key, sizeof(g->slot[i].key));
        g->slot[i].ctx = NULL;
        g->slot[i].used = 0;
    }
    EVP_CIPHER_CTX_free(g->ctx);
    EVP_MD_CTX_free(g->md);
    EVP_MD_free(g->sha256);
    msp_tlmsp_sha_mb_free(g);
    g->ctx = NULL;
    g->md = NULL;
    g->sha256 = NULL;
}

/* The fixed head of every container MAC input (5.4): type | 0303 | sid | seq | flags | M_INFO. */
static size_t mac_head(const msp_tlmsp_mac_in_t *in, uint8_t out[17])
{
    out[0] = in->type;
    out[1] = 0x03;
    out[2] = 0x03;
    for (int i = 0; i < 4; i++) {
        out[3 + i] = (uint8_t)(in->sid >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++) {
        out[7 + i] = (uint8_t)(in->seq >> (56 - 8 * i));
    }
    out[15] = (uint8_t)(in->flags >> 8);
    out[16] = (uint8_t)in->flags;
    return 17;
}

typedef struct piece {
    const uint8_t *p;
    size_t n;
} piece_t;

/* mac_input(in, L, frag) as pieces, so the fragment is fed in place (5.4). */
static size_t mac_input(const msp_tlmsp_mac_in_t *in, size_t L, const uint8_t *frag, size_t frag_len, uint8_t head[17],
                        uint8_t len[2], piece_t out[4])
{
    len[0] = (uint8_t)(L >> 8);
    len[1] = (uint8_t)L;
    out[0] = (piece_t){head, mac_head(in, head)};
    out[1] = (piece_t){in->m_info, in->m_info != NULL ? in->m_info_len : 0};
    out[2] = (piece_t){len, 2};
    out[3] = (piece_t){frag, frag != NULL ? frag_len : 0};
    return 4;
}

static int aad(EVP_CIPHER_CTX *ctx, const piece_t *pieces, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int outl;
        if (pieces[i].n > 0 && !EVP_CipherUpdate(ctx, NULL, &outl, pieces[i].p, (int)pieces[i].n)) {
            return 0;
        }
    }
    return 1;
}

/* The context holding key, expanded once; a miss replaces the oldest slot. */
static EVP_CIPHER_CTX *keyed(msp_tlmsp_gcm_t *g, const uint8_t key[16], const uint8_t nonce[12], int enc)
{
    for (int i = 0; i < MSP_TLMSP_GCM_KEY_SLOTS; i++) {
        msp_tlmsp_gcm_slot_t *s = &g->slot[i];
        if (s->used && CRYPTO_memcmp(s->key, key, 16) == 0) {
            return EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, nonce, enc) ? s->ctx : NULL;
        }
    }
    msp_tlmsp_gcm_slot_t *s = &g->slot[g->next];
    g->next = (g->next + 1) % MSP_TLMSP_GCM_KEY_SLOTS;
    memcpy(s->key, key, 16);
    s->used = 1;
    return EVP_CipherInit_ex(s->ctx, NULL, NULL, key, nonce, enc) ? s->ctx : NULL;
}

/* AES-128-GCM with the 12 explicit nonce bytes as the whole IV (3, 5.3: no implicit part, no XOR). */
static int gcm(msp_tlmsp_gcm_t *g, int enc, const uint8_t key[16], const uint8_t nonce[12], const piece_t *pieces,
               size_t npieces, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16])
{
    int outl = 0, fin = 0;
    uint8_t none[1];
    if (out == NULL) {
        out = none; /* GMAC writes no output; keep the pointer arithmetic below defined */
    }
    EVP_CIPHER_CTX *ctx = len <= INT32_MAX ? keyed(g, key, nonce, enc) : NULL;
    if (ctx == NULL || !aad(ctx, pieces, npieces) || (len > 0 && !EVP_CipherUpdate(ctx, out, &outl, in, (int)len))) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    if (!enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag)) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    if (!EVP_CipherFinal_ex(ctx, out + outl, &fin)) {
        return enc ? MSP_ALERT_INTERNAL_ERROR : MSP_ALERT_BAD_RECORD_MAC;
    }
    if (enc && !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag)) {
        return MSP_ALERT_INTERNAL_ERROR;
    }
    return MSP_OK;
}

/* ---- the container MACs (5.5-5.8) ---- */

/*
 * Fragment encryption (5.5): key ctx c reader_enc, IV = the nonce, AAD = mac_input(author, no frag,
 * L = plaintext length). 2.4: the fragment "must also be <= 16383" on write (TS 103 523-2 4.2.1.3).
 */
int msp_tlmsp_fragment_seal(msp_tlmsp_gcm_t *g, const uint8_t key[16], const msp_tlmsp_mac_in_t *in,
                            const uint8_t nonce[12], const uint8_t *plain, size_t len, uint8_t *out)
{
    if (len + MSP_TLMSP_FRAGMENT_OVERHEAD > MSP_TLMSP_MAX_CONTAINER_PLAINTEXT) {
        return MSP_ERR_LIMIT;
    }
    uint8_t head[17], l[2];
    piece_t p[4];
    size_t np = mac_input(in, len, NULL, 0, head, l, p);
    memcpy(out, nonce, MSP_TLMSP_GCM_NONCE_LEN);
    return gcm(g, 1, key, nonce, p, np, plain, len, out + MSP_TLMSP_GCM_NONCE_LEN, out + MSP_TLMSP_GCM_NONCE_LEN + len);
}

/* 5.5 receiver: L = fragment_length - 28 and the author is nonce[0]; a bad tag is fatal (8). */
int msp_tlmsp_fragment_open(msp_tlmsp_gcm_t *g, const uint8_t key[16], const msp_tlmsp_mac_in_t *in,
                            const uint8_t *fragment, size_t fragment_len, uint8_t *plain)
{
    if (fragment_len < MSP_TLMSP_FRAGMENT_OVERHEAD) {
        return MSP_ALERT_DECODE_ERROR;
    }
    size_t len = fragment_len - MSP_TLMSP_FRAGMENT_OVERHEAD;
    uint8_t head[17], l[2], tag[16];
    piece_t p[4];
    size_t np = mac_input(in, len, NULL, 0, head, l, p);
    memcpy(tag, fragment + fragment_len - 16, 16);
    return gcm(g, 0, key, fragment, p, np, fragment + MSP_TLMSP_GCM_NONCE_LEN, len, plain, tag);
}

/* GMAC = AES-128-GCM over an empty message, the input as AAD (5.6). */
static int gmac(msp_tlmsp_gcm_t *g, const uint8_t key[16], const uint8_t nonce[12], const piece_t *p, size_t np,
                uint8_t out[16])
{
    return gcm(g, 1, key, nonce, p, np, NULL, 0, NULL, out);
}

/* Writer MAC (5.6): GMAC(ctx c writer_MAC, IV = fragment nonce, mac_input(author, whole fragment)). */
int msp_tlmsp_writer_mac(msp_tlmsp_gcm_t *g, const uint8_t key[16], const msp_tlmsp_mac_in_t *in,
                         const uint8_t *fragment, size_t fragment_len, uint8_t out[16])
{
    uint8_t head[17], l[2];
    piece_t p[4];
    size_t np = mac_input(in, fragment_len, fragment, fragment_len, head, l, p);
    return gmac(g, key, fragment, p, np, out);
}

size_t msp_tlmsp_mac_input_flat(const msp_tlmsp_mac_in_t *in, const uint8_t *fragment, size_t fragment_len,
                                uint8_t *out)
{
    uint8_t head[17], l[2];
    piece_t p[4];
    size_t np = mac_input(in, fragment_len, fragment, fragment_len, head, l, p), n = 0;
    for (size_t i = 0; i < np; i++) {
        if (p[i].n > 0) {
            memcpy(out + n, p[i].p, p[i].n);
            n += p[i].n;
        }
    }
    return n;
}

/* Reader-check MAC (5.7), first half: h = SHA-256(mac_input(fm.id, whole fragment)), seq of the generator. */
int msp_tlmsp_reader_check_hash(msp_tlmsp_gcm_t *g, const msp_tlmsp_mac_in_t *in, const uint8_t *fragment,
                                size_t fragment_len, uint8_t hash[32])
{
    uint8_t head[17], l[2];
    piece_t p[4];
    size_t np = mac_input(in, fragment_len, fragment, fragment_len, head, l, p);
    int ok = EVP_DigestInit_ex(g->md, g->sha256, NULL);
    for (size_t i = 0; ok && i < np; i++) {
        ok = p[i].n == 0 || EVP_DigestUpdate(g->md, p[i].p, p[i].n);
    }
    return ok && EVP_DigestFinal_ex(g->md, hash, NULL) ? MSP_OK : MSP_ALERT_INTERNAL_ERROR;
}

/* 5.7, second half: GMAC(key = synch_MAC of the direction, IV = fm.nonce, AAD = h). */
int msp_tlmsp_reader_check_gmac(msp_tlmsp_gcm_t *g, const uint8_t synch_key[16], const uint8_t nonce[12],
                                const uint8_t hash[32], uint8_t out[16])
{
    piece_t hp = {hash, 32};
    return gmac(g, synch_key, nonce, &hp, 1, out);
}

int msp_tlmsp_reader_check_mac(msp_tlmsp_gcm_t *g, const uint8_t synch_key[16], const msp_tlmsp_mac_in_t *in,
                               const uint8_t *fragment, size_t fragment_len, const uint8_t nonce[12], uint8_t out[16])
{
    uint8_t h[32];
    MSP_GUARD(msp_tlmsp_reader_check_hash(g, in, fragment, fragment_len, h));
    return msp_tlmsp_reader_check_gmac(g, synch_key, nonce, h, out);
}

/*
 * Check MAC (5.8): GMAC(A-B enc key, fm.nonce, head | M_INFO | len | id | order | flags | [inbound] |
 * outbound), len 19 or 35; the inbound reader-check MAC only if order != 0.
 */
int msp_tlmsp_check_mac(msp_tlmsp_gcm_t *g, const uint8_t ab_key[16], const msp_tlmsp_mac_in_t *in,
                        const msp_tlmsp_fmac_t *fm, const uint8_t *inbound, uint8_t out[16])
{
    if ((fm->order != 0) != (inbound != NULL)) {
        return MSP_ERR_ARGUMENT;
    }
    uint8_t head[17], tail[4] = {(uint8_t)(inbound != NULL ? 35 : 19), fm->id, fm->order, fm->flags};
    piece_t p[] = {{head, mac_head(in, head)},
                   {in->m_info, in->m_info != NULL ? in->m_info_len : 0},
                   {tail, sizeof(tail)},
                   {inbound, inbound != NULL ? MSP_TLMSP_MAC_LEN : 0},
                   {fm->reader_check, MSP_TLMSP_MAC_LEN}};
    return gmac(g, ab_key, fm->nonce, p, sizeof(p) / sizeof(p[0]), out);
}

int msp_tlmsp_mac_verify(const uint8_t got[16], const uint8_t want[16], int fail_alert)
{
    return CRYPTO_memcmp(got, want, MSP_TLMSP_MAC_LEN) == 0 ? MSP_OK : fail_alert;
}

/* ---- context-0 records (3): Finished and MiddleboxFinished after CCS, protected hop by hop ---- */

/* seq(8) | type | 0x0303 | len(2) | sid(4): sequence first and sid last, unlike the container inputs. */
static void record0_aad(uint64_t seq, uint8_t type, uint32_t sid, size_t len, uint8_t out[17])
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    out[8] = type;
    out[9] = 0x03;
    out[10] = 0x03;
    out[11] = (uint8_t)(len >> 8);
    out[12] = (uint8_t)len;
    for (int i = 0; i < 4; i++) {
        out[13 + i] = (uint8_t)(sid >> (24 - 8 * i));
    }
}

/* 3: key = ctx0 reader_enc of the hop direction; record payload max 65535 (TS 103 523-2 4.2.1.3, 1). */
int msp_tlmsp_record0_seal(msp_tlmsp_gcm_t *g, const uint8_t key[16], uint64_t seq, uint8_t type, uint32_t sid,
                           const uint8_t nonce[12], const uint8_t *plain, size_t len, uint8_t *out)
{
    if (len > MSP_TLMSP_MAX_RECORD_PAYLOAD) {
        return MSP_ERR_LIMIT;
    }
    uint8_t a[17];
    record0_aad(seq, type, sid, len, a);
    piece_t p = {a, sizeof(a)};
    memcpy(out, nonce, MSP_TLMSP_GCM_NONCE_LEN);
    return gcm(g, 1, key, nonce, &p, 1, plain, len, out + MSP_TLMSP_GCM_NONCE_LEN, out + MSP_TLMSP_GCM_NONCE_LEN + len);
}

int msp_tlmsp_record0_open(msp_tlmsp_gcm_t *g, const uint8_t key[16], uint64_t seq, uint8_t type, uint32_t sid,
                           const uint8_t *payload, size_t len, uint8_t *plain)
{
    if (len < MSP_TLMSP_FRAGMENT_OVERHEAD) {
        return MSP_ALERT_DECODE_ERROR;
    }
    size_t n = len - MSP_TLMSP_FRAGMENT_OVERHEAD;
    uint8_t a[17], tag[16];
    record0_aad(seq, type, sid, n, a);
    piece_t p = {a, sizeof(a)};
    memcpy(tag, payload + len - 16, 16);
    return gcm(g, 0, key, payload, &p, 1, payload + MSP_TLMSP_GCM_NONCE_LEN, n, plain, tag);
}
