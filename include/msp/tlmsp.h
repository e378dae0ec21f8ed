/*
 * TLMSP (ETSI TS 103 523-2) wire constants, as the ETSI reference
 * (tlmsp-openssl master-tlmsp) puts them on the wire. Sources: the spec
 * write-ups ../shared/spec/tlmsp-handshake.md section 1 and
 * tlmsp-records.md section 1, which cite the reference's own files.
 */
#ifndef MSP_TLMSP_H
#define MSP_TLMSP_H

/* Versions (tlmsp-handshake.md 1.1) */
#define MSP_TLMSP_WIRE_VERSION 0x0303 /* records, ClientHello, ServerHello, MAC inputs */
#define MSP_TLMSP_EXT_MAJOR 1
#define MSP_TLMSP_EXT_MINOR 0

/* Record content types (1.2): TLMSP adds none. */
enum {
    MSP_TLMSP_CT_CHANGE_CIPHER_SPEC = 20,
    MSP_TLMSP_CT_ALERT = 21,
    MSP_TLMSP_CT_HANDSHAKE = 22,
    MSP_TLMSP_CT_APPLICATION_DATA = 23,
};

/* Handshake message types (1.3) */
enum {
    MSP_TLMSP_HT_CLIENT_HELLO = 1,
    MSP_TLMSP_HT_SERVER_HELLO = 2,
    MSP_TLMSP_HT_CERTIFICATE = 11,
    MSP_TLMSP_HT_SERVER_KEY_EXCHANGE = 12,
    MSP_TLMSP_HT_CERTIFICATE_REQUEST = 13,
    MSP_TLMSP_HT_SERVER_HELLO_DONE = 14,
    MSP_TLMSP_HT_CERTIFICATE_VERIFY = 15,
    MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE = 16,
    MSP_TLMSP_HT_FINISHED = 20,
    MSP_TLMSP_HT_MIDDLEBOX_HELLO = 41,
    MSP_TLMSP_HT_MIDDLEBOX_CERT = 42,
    MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE = 45,
    MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE = 46,
    MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL = 48,
    MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION = 49,
    MSP_TLMSP_HT_MIDDLEBOX_FINISHED = 51,
};

/* Extension types (1.4) */
enum {
    MSP_TLMSP_EXT_TLMSP = 0xff06,        /* ClientHello and ServerHello */
    MSP_TLMSP_EXT_CONTEXT_LIST = 0xff07, /* ClientHello only */
};

/* Alert descriptions (1.5); the TLS ones are in msp/error.h. */
enum {
    MSP_ALERT_MIDDLEBOX_ROUTE_FAILURE = 170,
    MSP_ALERT_MIDDLEBOX_AUTHORIZATION_FAILURE = 171,
    MSP_ALERT_MIDDLEBOX_REQUIRED = 172,
    MSP_ALERT_DISCOVERY_ACK = 173,
    MSP_ALERT_UNKNOWN_CONTEXT = 174,
    MSP_ALERT_UNSUPPORTED_CONTEXT = 175,
    MSP_ALERT_MIDDLEBOX_KEY_VERIFY_FAILURE = 176,
    MSP_ALERT_BAD_READER_MAC = 177,
    MSP_ALERT_BAD_WRITER_MAC = 178,
    MSP_ALERT_MIDDLEBOX_KEYCONFIRMATION_FAULT = 179,
    MSP_ALERT_AUTHENTICATION_REQUIRED = 180,
};

/* Entity ids (1.6) */
enum {
    MSP_TLMSP_ID_NONE = 0x00,
    MSP_TLMSP_ID_CLIENT = 0x01,
    MSP_TLMSP_ID_FIRST_MIDDLEBOX = 0x02,
    MSP_TLMSP_ID_LAST_MIDDLEBOX = 0xfd,
    MSP_TLMSP_ID_SERVER = 0xfe,
};

/* Contexts and access (1.7) */
#define MSP_TLMSP_CONTEXT_CONTROL 0
#define MSP_TLMSP_ACCESS_WIRE_READ 0  /* on the wire, per middlebox and context */
#define MSP_TLMSP_ACCESS_WIRE_WRITE 1 /* write implies read */

/* Address types (1.8) */
enum {
    MSP_TLMSP_ADDR_URL = 0,
    MSP_TLMSP_ADDR_FQDN = 1,
    MSP_TLMSP_ADDR_IPV4 = 2,
    MSP_TLMSP_ADDR_IPV6 = 3,
    MSP_TLMSP_ADDR_MAC = 4,
};

/* Limits (1.10; tlmsp-records.md 1) */
#define MSP_TLMSP_MAX_MIDDLEBOXES 251
#define MSP_TLMSP_MAX_PURPOSE 255
#define MSP_TLMSP_MAX_ADDRESS 2048
#define MSP_TLMSP_MAX_CONTAINER_PLAINTEXT 16383
#define MSP_TLMSP_MAX_RECORD_PAYLOAD 65535

/* Container and forwarding-MAC flags (tlmsp-records.md 1) */
#define MSP_TLMSP_CF_INSERTED 0x8000
#define MSP_TLMSP_CF_DELETED 0x4000
#define MSP_TLMSP_CF_AUDIT_CONTENT 0x2000
#define MSP_TLMSP_CF_ADDITIONAL_FORWARDING_MACS 0x1000
#define MSP_TLMSP_FF_INSERTED 0x80
#define MSP_TLMSP_FF_DELETED 0x40
#define MSP_TLMSP_FF_AUDIT_CONTENT 0x20

/* Crypto sizes (tlmsp-records.md 1): every TLMSP symmetric key is 16 bytes in the reference. */
#define MSP_TLMSP_KEY_LEN 16
#define MSP_TLMSP_GCM_NONCE_LEN 12
#define MSP_TLMSP_TAG_LEN 16

#endif
