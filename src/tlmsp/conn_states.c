/*
 * The handshake as data: every role's handshake is a table of rows (state,
 * content type, message type, handler, next state), in the manner of s2n-tls
 * (tls/s2n_handshake_io.c). Dispatch looks the received message up in the
 * table of the current state; handlers do the work. A message without a row
 * is unexpected_message: "any other order is unexpected_message"
 * (tlmsp-handshake.md 4.3 step 3, for the middlebox messages; RFC 5246
 * 7.2.2, "An inappropriate message was received", for the TLS 1.2 ones).
 * Clauses are the write-up's (H = tlmsp-handshake.md): it cites the
 * reference code, which is what ETSI TS 103 523-2 runs as.
 *
 * The same tables print the flow in docs/tlmsp.md (hs_flow; tests/unit/
 * tlmsp_flow.c checks the document against it).
 */
#include "conn.h"

#include <stdio.h>
#include <string.h>

#include "msp/error.h"

const hs_row_t *hs_find(const hs_table_t *t, int state, uint8_t ct, uint8_t type)
{
    for (size_t i = 0; i < t->nrows; i++) {
        const hs_row_t *r = &t->rows[i];
        if (r->state == state && r->ct == ct && r->type == type) {
            return r;
        }
    }
    return NULL;
}

int hs_dispatch(const hs_table_t *t, int *state, hop_t *h, uint8_t ct, const hs_msg_t *m)
{
    const hs_row_t *r = hs_find(t, *state, ct, m->type);
    MSP_ENSURE(r != NULL, MSP_ALERT_UNEXPECTED_MESSAGE);
    /* Set before the handler, which may move on to r->alt; after a failure the hop is dead and the state moot. */
    *state = r->next;
    return r->fn(h, m);
}

const char *hs_type_name(uint8_t ct, uint8_t type)
{
    if (ct == HS_CT_START) {
        return "(start)";
    }
    if (ct == MSP_TLMSP_CT_CHANGE_CIPHER_SPEC) {
        return "ChangeCipherSpec";
    }
    switch (type) {
    case MSP_TLMSP_HT_CLIENT_HELLO:
        return "ClientHello";
    case MSP_TLMSP_HT_SERVER_HELLO:
        return "ServerHello";
    case MSP_TLMSP_HT_CERTIFICATE:
        return "Certificate";
    case MSP_TLMSP_HT_SERVER_KEY_EXCHANGE:
        return "ServerKeyExchange";
    case MSP_TLMSP_HT_CERTIFICATE_REQUEST:
        return "CertificateRequest";
    case MSP_TLMSP_HT_SERVER_HELLO_DONE:
        return "ServerHelloDone";
    case MSP_TLMSP_HT_CERTIFICATE_VERIFY:
        return "CertificateVerify";
    case MSP_TLMSP_HT_CLIENT_KEY_EXCHANGE:
        return "ClientKeyExchange";
    case MSP_TLMSP_HT_FINISHED:
        return "Finished";
    case MSP_TLMSP_HT_MIDDLEBOX_HELLO:
        return "MiddleboxHello";
    case MSP_TLMSP_HT_MIDDLEBOX_CERT:
        return "MiddleboxCert";
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_EXCHANGE:
        return "MiddleboxKeyExchange";
    case MSP_TLMSP_HT_MIDDLEBOX_HELLO_DONE:
        return "MiddleboxHelloDone";
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_MATERIAL:
        return "MiddleboxKeyMaterial";
    case MSP_TLMSP_HT_MIDDLEBOX_KEY_CONFIRMATION:
        return "MiddleboxKeyConfirmation";
    case MSP_TLMSP_HT_MIDDLEBOX_FINISHED:
        return "MiddleboxFinished";
    default:
        return "?";
    }
}

static void flow_table(const hs_table_t *t, msp_buf_t *out)
{
    msp_buf_printf(out, "%s (%s), from %s to %s:\n", t->role, t->ref, t->states[t->initial], t->states[t->terminal]);
    for (size_t i = 0; i < t->nrows; i++) {
        const hs_row_t *r = &t->rows[i];
        char next[64];
        if (r->alt != r->next) {
            snprintf(next, sizeof(next), "%s | %s", t->states[r->next], t->states[r->alt]);
        } else {
            snprintf(next, sizeof(next), "%s", t->states[r->next]);
        }
        msp_buf_printf(out, "  %-16s %s %-24s -> %-30s %s\n", t->states[r->state], r->ct == HS_CT_START ? "  " : "<-",
                       hs_type_name(r->ct, r->type), next, r->ref);
        if (r->sends[0] != '\0') {
            msp_buf_printf(out, "  %-16s -> %s\n", "", r->sends);
        }
    }
}

int hs_flow(msp_buf_t *out)
{
    const hs_table_t *all[] = {&client_table, &server_table, &mbox_client_table, &mbox_server_table};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (i > 0) {
            msp_buf_puts(out, "\n");
        }
        flow_table(all[i], out);
    }
    return msp_buf_error(out);
}
