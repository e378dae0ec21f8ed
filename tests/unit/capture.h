/*
 * Test helper: the TCP byte streams of a capture file (pcap or pcapng,
 * read with libpcap), one per direction of each connection, reassembled
 * by sequence number. Used to check our decoders against the reference's
 * own traffic in ../shared/spec (the -verify folders).
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

/** Loads MSP_SPEC_DIR/relpath; 0 on success, -1 with a message on stderr. */
int cap_load(const char *relpath, cap_file_t *cap);
void cap_free(cap_file_t *cap);

/** The last stream from sport to dport (the last connection, as hsverify.py uses), or NULL. */
const cap_stream_t *cap_find(const cap_file_t *cap, uint16_t sport, uint16_t dport);

#endif
