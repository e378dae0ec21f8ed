/*
 * Alert descriptions by name (RFC 5246 section 7.2, ETSI TS 103 523-2) and
 * the access names. The reference's spellings are accepted beside the
 * specification's where the two differ. The TLMSP alerts 170-180 are
 * tlmsp-handshake.md 1.5 (the write-up gives no clause of the standard).
 */
#include <stddef.h>
#include <string.h>

#include "cfg_internal.h"

typedef struct alert_name {
    const char *name;
    uint8_t value;
} alert_name_t;

/* The first spelling of each value is the one msp_tlmsp_cfg_alert_name() gives. */
static const alert_name_t alert_names[] = {
    {"close_notify", 0},
    {"unexpected_message", 10},
    {"bad_record_mac", 20},
    {"record_overflow", 22},
    {"decompression_failure", 30},
    {"handshake_failure", 40},
    {"bad_certificate", 42},
    {"unsupported_certificate", 43},
    {"certificate_revoked", 44},
    {"certificate_expired", 45},
    {"certificate_unknown", 46},
    {"illegal_parameter", 47},
    {"unknown_ca", 48},
    {"access_denied", 49},
    {"decode_error", 50},
    {"decrypt_error", 51},
    {"protocol_version", 70},
    {"insufficient_security", 71},
    {"internal_error", 80},
    {"user_canceled", 90},
    {"no_renegotiation", 100},
    {"unsupported_extension", 110},
    {"middlebox_route_failure", 170},
    {"middlebox_authorization_failure", 171},
    {"middlebox_auth_failure", 171}, /* the reference's spelling */
    {"middlebox_required", 172},
    {"discovery_ack", 173}, /* TS 103 523-2; missing from the reference */
    {"unknown_context", 174},
    {"unsupported_context", 175},
    {"middlebox_key_verify_failure", 176},
    {"bad_reader_mac", 177},
    {"bad_writer_mac", 178},
    {"middlebox_keyconfirmation_fault", 179},
    {"middlebox_key_confirmation_fault", 179}, /* the reference's spelling */
    {"authentication_required", 180},
};

#define N_ALERT_NAMES (sizeof(alert_names) / sizeof(alert_names[0]))

int cfg_alert_by_name(const char *name)
{
    for (size_t i = 0; i < N_ALERT_NAMES; i++) {
        if (strcmp(alert_names[i].name, name) == 0) {
            return alert_names[i].value;
        }
    }
    return -1;
}

const char *msp_tlmsp_cfg_alert_name(unsigned description)
{
    for (size_t i = 0; i < N_ALERT_NAMES; i++) {
        if (alert_names[i].value == description) {
            return alert_names[i].name;
        }
    }
    return NULL;
}

const char *msp_tlmsp_cfg_access_name(msp_tlmsp_cfg_access_t access)
{
    switch (access) {
    case MSP_TLMSP_CFG_ACCESS_NONE:
        return "none";
    case MSP_TLMSP_CFG_ACCESS_R:
        return "r";
    case MSP_TLMSP_CFG_ACCESS_RW:
        return "rw";
    }
    return "?";
}
