#include "msp/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void msp_error_clear(msp_error_t *err)
{
    if (err == NULL) {
        return;
    }
    err->code = MSP_OK;
    err->where[0] = '\0';
    err->detail[0] = '\0';
}

int msp_error_set(msp_error_t *err, int code, const char *where, const char *fmt, ...)
{
    if (err == NULL) {
        return code;
    }
    err->code = code;
    snprintf(err->where, sizeof(err->where), "%s", where != NULL ? where : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
    va_end(ap);
    return code;
}

/* TS 103 523-2 alerts 170..180 (msp/tlmsp.h), by number: common/ does not depend on the TLMSP headers. */
static const char *tlmsp_alert_name(int alert)
{
    static const char *const names[] = {
        "middlebox_route_failure",
        "middlebox_authorization_failure",
        "middlebox_required",
        "discovery_ack",
        "unknown_context",
        "unsupported_context",
        "middlebox_key_verify_failure",
        "bad_reader_mac",
        "bad_writer_mac",
        "middlebox_keyconfirmation_fault",
        "authentication_required",
    };
    return alert >= 170 && alert <= 180 ? names[alert - 170] : "alert";
}

static const char *alert_name(int alert)
{
    switch (alert) {
    case MSP_ALERT_UNEXPECTED_MESSAGE:
        return "unexpected_message";
    case MSP_ALERT_BAD_RECORD_MAC:
        return "bad_record_mac";
    case MSP_ALERT_RECORD_OVERFLOW:
        return "record_overflow";
    case MSP_ALERT_HANDSHAKE_FAILURE:
        return "handshake_failure";
    case MSP_ALERT_BAD_CERTIFICATE:
        return "bad_certificate";
    case MSP_ALERT_ILLEGAL_PARAMETER:
        return "illegal_parameter";
    case MSP_ALERT_ACCESS_DENIED:
        return "access_denied";
    case MSP_ALERT_DECODE_ERROR:
        return "decode_error";
    case MSP_ALERT_DECRYPT_ERROR:
        return "decrypt_error";
    case MSP_ALERT_PROTOCOL_VERSION:
        return "protocol_version";
    case MSP_ALERT_INTERNAL_ERROR:
        return "internal_error";
    default:
        return tlmsp_alert_name(alert);
    }
}

static const char *local_name(int code)
{
    switch (code) {
    case MSP_ERR_NO_MEMORY:
        return "out of memory";
    case MSP_ERR_LIMIT:
        return "limit exceeded";
    case MSP_ERR_SYNTAX:
        return "syntax error";
    case MSP_ERR_INVALID:
        return "invalid";
    case MSP_ERR_IO:
        return "i/o error";
    case MSP_ERR_ARGUMENT:
        return "bad argument";
    case MSP_ERR_RECONNECT:
        return "reconnect needed (middleboxes discovered)";
    case MSP_ERR_NOT_FOUND:
        return "not found";
    case MSP_ERR_AGAIN:
        return "output queue full (try again once drained)";
    case MSP_ERR_TIMEOUT:
        return "timed out";
    default:
        return "unknown error";
    }
}

const char *msp_error_name(int code)
{
    if (code == MSP_OK) {
        return "ok";
    }
    if (code > 0 && code < MSP_ERR_CLASS_PEER_ALERT) {
        return alert_name(code);
    }
    if (MSP_ERR_IS_PEER_ALERT(code)) {
        return alert_name(code - MSP_ERR_CLASS_PEER_ALERT);
    }
    return local_name(code);
}
