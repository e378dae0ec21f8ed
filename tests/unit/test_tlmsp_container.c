/*
 * Containers and their MACs against the reference's records
 * (tests/vectors/tlmsp-records/vectors.txt, V1-V5): parse each
 * record, decrypt with the key given there, recompute the writer MAC, every
 * reader-check MAC that the vectors mark as verifying and every check MAC,
 * re-seal byte-identically, and make every tampered field fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "msp/error.h"
#include "tlmsp_container.h"
#include "vectors.h"

#define VEC_FILE "tlmsp-records/vectors.txt"

static vec_file_t f;
static msp_tlmsp_gcm_t g;

static int setup(void **state)
{
    (void)state;
    return vec_load(&f, VEC_FILE) == 0 && msp_tlmsp_gcm_init(&g) == MSP_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    vec_free(&f);
    msp_tlmsp_gcm_free(&g);
    return 0;
}

static size_t hex(const char *from, const char *label, uint8_t *out, size_t max)
{
    long n = from != NULL ? vec_hex(from, label, out, max) : -1;
    if (n < 0) {
        fail_msg("vector '%s' missing", label);
    }
    return (size_t)n;
}

/* The number after "label" on its line (e.g. "seq(author) = 2"). */
static unsigned long number(const char *from, const char *label)
{
    const char *p = strstr(from, label);
    assert_non_null(p);
    return strtoul(p + strlen(label), NULL, 10);
}

typedef struct rec {
    uint8_t bytes[1024];
    size_t len;
    uint8_t type;
    uint32_t sid;
    msp_reader_t body; /* after header and sid */
} rec_t;

static void record(const char *sec, rec_t *r)
{
    r->len = hex(sec, "record (hex, full incl. 5-byte header)", r->bytes, sizeof(r->bytes));
    msp_reader_t rd, payload;
    uint16_t version;
    msp_reader_init(&rd, r->bytes, r->len);
    assert_int_equal(msp_read_u8(&rd, &r->type), MSP_OK);
    assert_int_equal(msp_read_u16(&rd, &version), MSP_OK);
    assert_int_equal(version, MSP_TLMSP_WIRE_VERSION);
    assert_int_equal(msp_read_block(&rd, 2, &payload), MSP_OK);
    assert_int_equal(msp_reader_expect_end(&rd), MSP_OK);
    assert_int_equal(msp_read_u32(&payload, &r->sid), MSP_OK);
    r->body = payload;
}

static void test_context0_record(void **state)
{
    (void)state;
    const char *sec = vec_section(&f, "### V1");
    rec_t r;
    record(sec, &r);
    uint8_t key[16], plain[64], want[64], nonce[12];
    hex(sec, "key (ctx0 client_reader_enc)", key, 16);
    size_t wn = hex(sec, "plaintext", want, sizeof(want));
    uint64_t seq = number(sec, "seq(author=1)      : ");
    size_t len = msp_reader_left(&r.body);
    assert_int_equal(r.type, MSP_TLMSP_CT_HANDSHAKE);
    assert_int_equal(msp_tlmsp_record0_open(&g, key, seq, r.type, r.sid, r.body.pos, len, plain), MSP_OK);
    assert_int_equal(len - 28, wn);
    assert_memory_equal(plain, want, wn);
    /* Sealing with the same nonce gives the same bytes. */
    uint8_t again[128];
    hex(sec, "explicit nonce", nonce, 12);
    assert_memory_equal(nonce, r.body.pos, 12);
    assert_int_equal(msp_tlmsp_record0_seal(&g, key, seq, r.type, r.sid, nonce, plain, wn, again), MSP_OK);
    assert_memory_equal(again, r.body.pos, len);
    /* A wrong sequence number or a flipped bit fails the tag. */
    assert_int_equal(msp_tlmsp_record0_open(&g, key, seq + 1, r.type, r.sid, r.body.pos, len, plain),
                     MSP_ALERT_BAD_RECORD_MAC);
    again[20] ^= 1;
    assert_int_equal(msp_tlmsp_record0_open(&g, key, seq, r.type, r.sid, again, len, plain), MSP_ALERT_BAD_RECORD_MAC);
}

/* Checks one container section: decryption, writer MAC, reader-check and check MACs. */
static void check_container(const char *name)
{
    const char *sec = vec_section(&f, name);
    assert_non_null(sec);
    rec_t r;
    record(sec, &r);
    static msp_tlmsp_container_t c;
    assert_int_equal(msp_tlmsp_container_parse(&r.body, 1, &c), MSP_OK);
    assert_int_equal(msp_reader_expect_end(&r.body), MSP_OK);
    msp_tlmsp_mac_in_t in = {r.type, r.sid, number(sec, "seq(author) = "), c.flags, c.m_info, c.m_info_len};
    uint8_t key[16], plain[512], want[512], mac[16], want_mac[16];
    hex(sec, "reader enc key", key, 16);
    size_t wn = vec_hex(sec, "plaintext", want, sizeof(want)) > 0 ? hex(sec, "plaintext", want, sizeof(want)) : 0;
    assert_int_equal(msp_tlmsp_fragment_open(&g, key, &in, c.fragment, c.fragment_len, plain), MSP_OK);
    assert_int_equal(c.fragment_len - 28, wn);
    assert_memory_equal(plain, want, wn);
    uint8_t sealed[512];
    assert_int_equal(msp_tlmsp_fragment_seal(&g, key, &in, c.fragment, plain, wn, sealed), MSP_OK);
    assert_memory_equal(sealed, c.fragment, c.fragment_len);

    hex(sec, "writer MAC key", key, 16);
    hex(sec, "writer MAC         ", want_mac, 16);
    assert_int_equal(msp_tlmsp_writer_mac(&g, key, &in, c.fragment, c.fragment_len, mac), MSP_OK);
    assert_memory_equal(mac, want_mac, 16);
    assert_memory_equal(c.writer_mac, want_mac, 16);
    assert_int_equal(msp_tlmsp_mac_verify(mac, c.writer_mac, MSP_ALERT_BAD_WRITER_MAC), MSP_OK);

    /* Each forwarding MAC: "forwarding MAC #k" sections in order. */
    const char *fm_sec = sec;
    for (size_t k = 0; k < c.nfmacs; k++) {
        char label[48];
        snprintf(label, sizeof(label), "forwarding MAC #%u", (unsigned)k);
        fm_sec = strstr(fm_sec, label);
        assert_non_null(fm_sec);
        const msp_tlmsp_fmac_t *fm = &c.fmacs[k];
        assert_int_equal(fm->id, number(fm_sec, "id="));
        assert_int_equal(fm->order, number(fm_sec, "order="));
        /* seq(fm.id): for a stale entry the vectors give it in the reader-check input itself. */
        uint8_t rc_input[600];
        size_t rc_len = hex(fm_sec, "reader-check input (before SHA-256)", rc_input, sizeof(rc_input));
        assert_true(rc_len > 15);
        uint64_t fm_seq = 0;
        for (int i = 7; i < 15; i++) {
            fm_seq = fm_seq << 8 | rc_input[i];
        }
        msp_tlmsp_mac_in_t fin = in;
        fin.seq = fm_seq;
        uint8_t synch[16];
        hex(fm_sec, "synch key", synch, 16);
        assert_int_equal(msp_tlmsp_reader_check_mac(&g, synch, &fin, c.fragment, c.fragment_len, fm->nonce, mac),
                         MSP_OK);
        int verifies =
            strstr(fm_sec, "(verifies)") != NULL && strstr(fm_sec, "(verifies)") < strstr(fm_sec, "checkMAC");
        assert_int_equal(memcmp(mac, fm->reader_check, 16) == 0, verifies);
        /* The check MAC chains to the reader-check MAC of the entry with order - 1. */
        const uint8_t *inbound = NULL;
        for (size_t j = 0; fm->order != 0 && j < c.nfmacs; j++) {
            if (c.fmacs[j].order == fm->order - 1) {
                inbound = c.fmacs[j].reader_check;
            }
        }
        uint8_t ab[16];
        hex(fm_sec, "check-MAC key", ab, 16);
        hex(fm_sec, "checkMAC", want_mac, 16);
        assert_int_equal(msp_tlmsp_check_mac(&g, ab, &fin, fm, inbound, mac), MSP_OK);
        assert_memory_equal(mac, want_mac, 16);
        assert_memory_equal(fm->check, want_mac, 16);
        fm_sec += strlen(label);
    }
}

static void test_client_container(void **state)
{
    (void)state;
    check_container("### V2");
}

static void test_inserted_container(void **state)
{
    (void)state;
    check_container("### V3");
}

static void test_deleted_container(void **state)
{
    (void)state;
    check_container("### V4");
}

static void test_audited_chain(void **state)
{
    (void)state;
    check_container("### V5");
}

/* Every field a MAC covers, flipped, fails the MAC that covers it. */
static void test_tamper_each_field(void **state)
{
    (void)state;
    const char *sec = vec_section(&f, "### V2");
    rec_t r;
    record(sec, &r);
    static msp_tlmsp_container_t c;
    assert_int_equal(msp_tlmsp_container_parse(&r.body, 1, &c), MSP_OK);
    msp_tlmsp_mac_in_t in = {r.type, r.sid, 2, c.flags, c.m_info, c.m_info_len};
    uint8_t rkey[16], wkey[16], plain[64], mac[16];
    hex(sec, "reader enc key", rkey, 16);
    hex(sec, "writer MAC key", wkey, 16);
    uint8_t frag[128];
    memcpy(frag, c.fragment, c.fragment_len);
    for (size_t i = 0; i < c.fragment_len; i++) {
        frag[i] ^= 0x40;
        int open = msp_tlmsp_fragment_open(&g, rkey, &in, frag, c.fragment_len, plain);
        assert_int_equal(open, MSP_ALERT_BAD_RECORD_MAC);
        assert_int_equal(msp_tlmsp_writer_mac(&g, wkey, &in, frag, c.fragment_len, mac), MSP_OK);
        assert_int_equal(msp_tlmsp_mac_verify(mac, c.writer_mac, MSP_ALERT_BAD_WRITER_MAC), MSP_ALERT_BAD_WRITER_MAC);
        frag[i] ^= 0x40;
    }
    /* The header fields bound through the MAC input: type, sid, sequence number, flags. */
    msp_tlmsp_mac_in_t bad[] = {in, in, in, in};
    bad[0].type = MSP_TLMSP_CT_ALERT;
    bad[1].sid ^= 1;
    bad[2].seq = 3;
    bad[3].flags ^= MSP_TLMSP_CF_INSERTED;
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(msp_tlmsp_fragment_open(&g, rkey, &bad[k], c.fragment, c.fragment_len, plain),
                         MSP_ALERT_BAD_RECORD_MAC);
        assert_int_equal(msp_tlmsp_writer_mac(&g, wkey, &bad[k], c.fragment, c.fragment_len, mac), MSP_OK);
        assert_int_equal(msp_tlmsp_mac_verify(mac, c.writer_mac, MSP_ALERT_BAD_WRITER_MAC), MSP_ALERT_BAD_WRITER_MAC);
    }
}

/* Truncated or inconsistent containers are decode errors, and the reader does not move. */
static void test_parse_errors(void **state)
{
    (void)state;
    const char *sec = vec_section(&f, "### V3");
    rec_t r;
    record(sec, &r);
    static msp_tlmsp_container_t c;
    size_t len = msp_reader_left(&r.body);
    for (size_t cut = 0; cut < len; cut++) {
        msp_reader_t part;
        msp_reader_init(&part, r.body.pos, cut);
        assert_int_equal(msp_tlmsp_container_parse(&part, 1, &c), MSP_ALERT_DECODE_ERROR);
        assert_int_equal(msp_reader_left(&part), cut);
    }
    /* An audited container (flag 0x1000) whose nAF promises more MACs than there are. */
    uint8_t buf[256];
    memcpy(buf, r.body.pos, len);
    buf[1] |= 0x10;
    buf[len] = 2;
    msp_reader_t rd;
    msp_reader_init(&rd, buf, len + 1);
    assert_int_equal(msp_tlmsp_container_parse(&rd, 1, &c), MSP_ALERT_DECODE_ERROR);
    /* An unprotected alert container (4.7): 00 0000 0002 02 28, as the reference sends it. */
    static const uint8_t alert[] = {0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x28};
    msp_reader_init(&rd, alert, sizeof(alert));
    assert_int_equal(msp_tlmsp_container_parse(&rd, 0, &c), MSP_OK);
    assert_int_equal(c.fragment_len, 2);
    assert_int_equal(c.fragment[1], 40);
    assert_null(c.writer_mac);
    assert_int_equal(c.nfmacs, 0);
    msp_reader_init(&rd, alert, sizeof(alert));
    assert_int_equal(msp_tlmsp_container_parse(&rd, 1, &c), MSP_ALERT_DECODE_ERROR);
}

static void test_limits(void **state)
{
    (void)state;
    static uint8_t big[MSP_TLMSP_MAX_CONTAINER_PLAINTEXT + 64];
    uint8_t key[16] = {0}, nonce[12] = {1};
    msp_tlmsp_mac_in_t in = {23, 1, 0, 0, NULL, 0};
    size_t max = MSP_TLMSP_MAX_CONTAINER_PLAINTEXT - MSP_TLMSP_FRAGMENT_OVERHEAD;
    assert_int_equal(msp_tlmsp_fragment_seal(&g, key, &in, nonce, big, max, big), MSP_OK);
    assert_int_equal(msp_tlmsp_fragment_seal(&g, key, &in, nonce, big, max + 1, big), MSP_ERR_LIMIT);
    msp_tlmsp_fmac_t fm = {1, 1, 0, key, nonce, key};
    uint8_t mac[16];
    assert_int_equal(msp_tlmsp_check_mac(&g, key, &in, &fm, NULL, mac), MSP_ERR_ARGUMENT);
}

/*
 * The openers' lower bound, whatever their callers check first (the record layer does): nonce and tag (28 bytes)
 * are an empty plaintext, which opens; anything shorter is a decode error, and is not read.
 */
static void test_open_bounds(void **state)
{
    (void)state;
    uint8_t key[16] = {7}, nonce[12] = {1, 2, 3}, sealed[MSP_TLMSP_FRAGMENT_OVERHEAD], plain[16];
    msp_tlmsp_mac_in_t in = {MSP_TLMSP_CT_ALERT, 1, 5, 0, NULL, 0};
    assert_int_equal(msp_tlmsp_fragment_seal(&g, key, &in, nonce, NULL, 0, sealed), MSP_OK);
    assert_int_equal(msp_tlmsp_fragment_open(&g, key, &in, sealed, sizeof(sealed), plain), MSP_OK);
    for (size_t len = 0; len < sizeof(sealed); len++) {
        assert_int_equal(msp_tlmsp_fragment_open(&g, key, &in, sealed, len, plain), MSP_ALERT_DECODE_ERROR);
    }
    assert_int_equal(msp_tlmsp_record0_seal(&g, key, 5, MSP_TLMSP_CT_HANDSHAKE, 1, nonce, NULL, 0, sealed), MSP_OK);
    assert_int_equal(msp_tlmsp_record0_open(&g, key, 5, MSP_TLMSP_CT_HANDSHAKE, 1, sealed, sizeof(sealed), plain),
                     MSP_OK);
    for (size_t len = 0; len < sizeof(sealed); len++) {
        assert_int_equal(msp_tlmsp_record0_open(&g, key, 5, MSP_TLMSP_CT_HANDSHAKE, 1, sealed, len, plain),
                         MSP_ALERT_DECODE_ERROR);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_context0_record),    cmocka_unit_test(test_client_container),
        cmocka_unit_test(test_inserted_container), cmocka_unit_test(test_deleted_container),
        cmocka_unit_test(test_audited_chain),      cmocka_unit_test(test_tamper_each_field),
        cmocka_unit_test(test_parse_errors),       cmocka_unit_test(test_limits),
        cmocka_unit_test(test_open_bounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
