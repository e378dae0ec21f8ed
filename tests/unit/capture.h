/*
 * Test helper: the TCP byte streams of a capture file (pcap or pcapng,
 * read with libpcap), one per direction of each connection, reassembled
 * by sequence number. Used to check our decoders against the reference's
 * own traffic in tests/vectors/ (captures of the reference programs).
 */
#ifndef MSP_TEST_CAPTURE_H
#define MSP_TEST_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#define CAP_MAX_STREAMS 64

typedef struct cap_stream {
    uint16_t sport, dport;
    uint8_t *data; /* owned */
    size_t len;
} cap_stream_t;

typedef struct cap_file {
    cap_stream_t s[CAP_MAX_STREAMS];
    size_t n;
} cap_file_t;

/** Loads MSP_VECTORS_DIR/relpath; 0 on success, -1 with a message on stderr. */
int cap_load(const char *relpath, cap_file_t *cap);
void cap_free(cap_file_t *cap);

/** The last stream from sport to dport (the last connection, as hsverify.py uses), or NULL. */
const cap_stream_t *cap_find(const cap_file_t *cap, uint16_t sport, uint16_t dport);

/** The stream leaving sport / arriving at dport (any other port), last connection first; NULL if none. */
const cap_stream_t *cap_from(const cap_file_t *cap, uint16_t sport);
const cap_stream_t *cap_to(const cap_file_t *cap, uint16_t dport);

/** A TLS handshake message seen in a stream, viewed in place. */
typedef struct cap_msg {
    uint8_t type;
    const uint8_t *body;
    size_t len;
} cap_msg_t;

/**
 * The plaintext handshake messages of one direction of a TLMSP hop, up to
 * its ChangeCipherSpec. Every record after the direction's first one
 * carries the 4-byte Sid (tlmsp-records.md 2.2), which is skipped. Returns
 * the count, at most max.
 */
size_t cap_handshake_messages(const cap_stream_t *s, cap_msg_t *out, size_t max);

/** The first message of this type, or NULL. */
const cap_msg_t *cap_find_msg(const cap_msg_t *m, size_t n, uint8_t type);

#endif
