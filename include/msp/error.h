/*
 * One error space for all of msp.
 *
 * The code is an int, shaped after picotls so that a failure *is* the alert
 * that goes on the wire:
 *   0           success
 *   1..255      an alert we send (TLS AlertDescription, TLMSP 170..180)
 *   0x100 + n   alert n received from the peer
 *   0x200 + n   a local condition that never reaches the wire as itself
 *               (it maps to internal_error if it has to)
 *
 * A function returns the code; the optional msp_error_t carries where and
 * why, for the CLI to print as one line. The library never prints.
 */
#ifndef MSP_ERROR_H
#define MSP_ERROR_H

#include "msp/api.h"

#include <stddef.h>

enum {
    MSP_OK = 0,

    /* alerts we send (RFC 5246 7.2) */
    MSP_ALERT_UNEXPECTED_MESSAGE = 10,
    MSP_ALERT_BAD_RECORD_MAC = 20,
    MSP_ALERT_RECORD_OVERFLOW = 22,
    MSP_ALERT_HANDSHAKE_FAILURE = 40,
    MSP_ALERT_BAD_CERTIFICATE = 42,
    MSP_ALERT_ILLEGAL_PARAMETER = 47,
    MSP_ALERT_ACCESS_DENIED = 49, /* a middlebox's inspection blocked the data (ICAP) */
    MSP_ALERT_DECODE_ERROR = 50,
    MSP_ALERT_DECRYPT_ERROR = 51,
    MSP_ALERT_PROTOCOL_VERSION = 70,
    MSP_ALERT_INTERNAL_ERROR = 80,

    MSP_ERR_CLASS_PEER_ALERT = 0x100,
    MSP_ERR_CLASS_LOCAL = 0x200,

    MSP_ERR_NO_MEMORY = 0x201, /* an allocation failed */
    MSP_ERR_LIMIT = 0x202,     /* a stated upper bound would be exceeded */
    MSP_ERR_SYNTAX = 0x203,    /* text input is not well formed */
    MSP_ERR_INVALID = 0x204,   /* well formed, but breaks a rule */
    MSP_ERR_IO = 0x205,        /* the operating system refused a read or write */
    MSP_ERR_ARGUMENT = 0x206,  /* the caller passed something unusable */
    MSP_ERR_NOT_FOUND = 0x207, /* a named thing does not exist */
    MSP_ERR_RECONNECT = 0x208, /* TLMSP discovery: the path changed, connect again (tlmsp-handshake.md 7.2) */
    MSP_ERR_AGAIN = 0x209,     /* nothing done: an output queue is full; try again after its drained event */
    MSP_ERR_TIMEOUT = 0x20a,   /* a time-out expired (handshake, idle, close, connect) */
};

/** True when code is an alert the peer sent us. */
#define MSP_ERR_IS_PEER_ALERT(code) (((code) & ~0xff) == MSP_ERR_CLASS_PEER_ALERT)

/** Where and why a call failed. Owned by the caller; fixed size, no allocation. */
typedef struct msp_error {
    int code;
    char where[160]; /* "file:line", "file:REF" or "" */
    char detail[352];
} msp_error_t;

/**
 * Records code, place and a printf-style reason in err (which may be NULL)
 * and returns code, so that callers can write `return msp_error_set(...)`.
 * where may be NULL. Text that does not fit is cut, never overflowed.
 */
MSP_API int msp_error_set(msp_error_t *err, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Clears err to MSP_OK with empty strings. */
MSP_API void msp_error_clear(msp_error_t *err);

/** A static, lower-case name for code ("decode_error", "no memory", ...). Never NULL. */
MSP_API const char *msp_error_name(int code);

#endif
