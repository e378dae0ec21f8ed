/*
 * The TLMSP hello extensions as the ETSI reference encodes them
 * (tlmsp-handshake.md 3.2-3.4): 0xff06 in the ClientHello and the
 * ServerHello, and the ContextList 0xff07. Parsing gives views into the
 * extension bytes; building writes the reference's canonical encoding
 * (middleboxes in list order, access entries and contexts ascending),
 * which the Finished transcripts of every hop depend on (3.6).
 */
#ifndef MSP_TLMSP_HELLO_H
#define MSP_TLMSP_HELLO_H

#include "msp/api.h"

#include <stddef.h>
#include <stdint.h>

#include "msp/buf.h"
#include "msp/tlmsp.h"

/* Per-context access of a middlebox: none, read, or read and write (1.7). */
#define MSP_TLMSP_ACCESS_NONE 0
#define MSP_TLMSP_ACCESS_R 1
#define MSP_TLMSP_ACCESS_RW 3

typedef struct msp_tlmsp_address {
    uint8_t type; /* MSP_TLMSP_ADDR_URL ... MSP_TLMSP_ADDR_MAC */
    const uint8_t *bytes;
    size_t len; /* at most MSP_TLMSP_MAX_ADDRESS */
} msp_tlmsp_address_t;

typedef struct msp_tlmsp_mbox_info {
    uint8_t id; /* 0x02..0xfd */
    msp_tlmsp_address_t address;
    uint8_t inserted;    /* 0 static, 1 dynamic (2 = forbidden is rejected on receipt) */
    uint8_t transparent; /* 0 / 1 */
    uint8_t access[256]; /* MSP_TLMSP_ACCESS_* per context; context 0 is implicit and never listed */
} msp_tlmsp_mbox_info_t;

typedef struct msp_tlmsp_mbox_list {
    size_t n;
    msp_tlmsp_mbox_info_t m[MSP_TLMSP_MAX_MIDDLEBOXES];
} msp_tlmsp_mbox_list_t;

/** 0xff06 in the ClientHello (3.2). */
typedef struct msp_tlmsp_ext_client {
    msp_tlmsp_address_t client;
    msp_tlmsp_address_t server;
    uint8_t discovery_ack;
    msp_tlmsp_mbox_list_t middleboxes;
    /* only when discovery_ack == 1 (7.2) */
    uint32_t sid;
    const uint8_t *handshake_hash;
    size_t handshake_hash_len;
    msp_tlmsp_mbox_list_t discovered;
} msp_tlmsp_ext_client_t;

/** 0xff06 in the ServerHello (3.4). */
typedef struct msp_tlmsp_ext_server {
    uint32_t sid;
    msp_tlmsp_address_t client;
    msp_tlmsp_address_t server;
    msp_tlmsp_mbox_list_t middleboxes;
} msp_tlmsp_ext_server_t;

/** The ContextList 0xff07 (3.3). */
typedef struct msp_tlmsp_context_list {
    uint8_t present[256]; /* context 0 is never listed */
    uint8_t audit[256];   /* 0 unconfirmed, 1 confirmed */
    const uint8_t *purpose[256];
    uint8_t purpose_len[256];
} msp_tlmsp_context_list_t;

/**
 * Parsers: the whole extension_data must be consumed. Every rule of 3.2-3.3
 * (version 1.0, ids 0x02..0xfd and unique, address type 0..4 without NUL
 * bytes and at most 2048 long, inserted 0/1, transparent 0/1, empty ticket,
 * auth 0/1 with no conflicting repeats, context 0 never listed, audit 0/1,
 * origin_verification 0, no context twice) fails with MSP_ALERT_DECODE_ERROR.
 */
MSP_API int msp_tlmsp_ext_client_parse(const uint8_t *p, size_t len, msp_tlmsp_ext_client_t *e);
MSP_API int msp_tlmsp_ext_server_parse(const uint8_t *p, size_t len, msp_tlmsp_ext_server_t *e);
MSP_API int msp_tlmsp_context_list_parse(const uint8_t *p, size_t len, msp_tlmsp_context_list_t *c);

/** Builders: the extension_data (without type and length), appended to out. */
MSP_API int msp_tlmsp_ext_client_build(const msp_tlmsp_ext_client_t *e, msp_buf_t *out);
MSP_API int msp_tlmsp_ext_server_build(const msp_tlmsp_ext_server_t *e, msp_buf_t *out);
MSP_API int msp_tlmsp_context_list_build(const msp_tlmsp_context_list_t *c, msp_buf_t *out);

#endif
