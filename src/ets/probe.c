/* The ETS-aware client's verdict (msp/ets_probe.h; TS 103 523-3 Annex B, ets.md 6). */
#include <limits.h>
#include <string.h>

#include <openssl/x509.h>

#include "dec.h"
#include "msp/ets_probe.h"

int msp_ets_probe_server_hello(msp_ets_probe_conn_t *c, const uint8_t *msg, size_t len, msp_error_t *err)
{
    dec_server_hello_t sh;
    if (msg == NULL || dec_server_hello_parse(msg, len, &sh) != MSP_OK) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "malformed ServerHello");
    }
    c->hrr |= sh.hrr;
    if (sh.hrr || !sh.has_share || sh.share == NULL) {
        return MSP_OK; /* an HRR names a group, not a share: the real ServerHello follows */
    }
    c->group = sh.group;
    c->share_len = sh.share_len < sizeof c->share ? sh.share_len : sizeof c->share;
    memcpy(c->share, sh.share, c->share_len);
    c->have_share = 1;
    /* the fingerprint is over the whole share as sent, even when only its start is kept */
    if (msp_ets_fingerprint(sh.share, sh.share_len, c->fingerprint) != MSP_OK) {
        return msp_error_set(err, MSP_ERR_INVALID, NULL, "cannot compute the key share fingerprint");
    }
    return MSP_OK;
}

int msp_ets_visibility_read(const uint8_t *cert, size_t cert_len, msp_ets_visibility_t *vis, msp_error_t *err)
{
    memset(vis, 0, sizeof *vis);
    if (cert == NULL || cert_len == 0) {
        return MSP_OK;
    }
    const unsigned char *p = cert;
    X509 *x = cert_len <= (size_t)LONG_MAX ? d2i_X509(NULL, &p, (long)cert_len) : NULL;
    if (x == NULL || p != cert + cert_len) {
        X509_free(x);
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "the server certificate does not parse");
    }
    int rc = msp_ets_cert_read(x, vis->vi, MSP_ETS_MAX_VI, &vis->n_vi, &vis->misplaced);
    X509_free(x);
    if (rc == MSP_OK) {
        return MSP_OK;
    }
    int misplaced = vis->misplaced;
    memset(vis, 0, sizeof *vis);
    vis->misplaced = misplaced;
    if (rc == MSP_ERR_LIMIT) {
        return msp_error_set(err, rc, NULL, "the certificate carries more than %d visibility information entries",
                             MSP_ETS_MAX_VI);
    }
    return msp_error_set(err, rc == MSP_ERR_NO_MEMORY ? rc : MSP_ERR_SYNTAX, NULL,
                         "the certificate carries a malformed visibility information entry");
}

void msp_ets_visibility_match(msp_ets_visibility_t *vis, const uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    vis->matches = 0;
    for (size_t k = 0; k < vis->n_vi; k++) {
        vis->match[k] = memcmp(vis->vi[k].fingerprint, fp, MSP_ETS_FINGERPRINT_LEN) == 0;
        vis->matches |= vis->match[k];
    }
}

/* Did the first connection's share come again; were the shares of one group throughout. */
static void compare_shares(const msp_ets_probe_facts_t *f, msp_ets_probe_verdict_t *v)
{
    const msp_ets_probe_conn_t *c0 = &f->conn[0];
    v->comparable = c0->have_share;
    for (size_t i = 1; i < f->n_conn; i++) {
        const msp_ets_probe_conn_t *c = &f->conn[i];
        if (!c->have_share || c->group != c0->group) {
            v->comparable = 0;
        } else if (c->share_len == c0->share_len && memcmp(c->share, c0->share, c->share_len) == 0) {
            v->repeated = 1;
        }
    }
}

static const char *verdict_text(const msp_ets_probe_verdict_t *v)
{
    int matches = v->vis.matches;
    if (v->repeated && matches) {
        return "ETS server: static key share, disclosed by accurate visibility information";
    }
    if (v->repeated && v->visible) {
        return "ETS server: static key share, but the visibility information does not match it";
    }
    if (v->repeated) {
        return "static key share without visibility information (ETS Annex A, or an undisclosed reused key)";
    }
    if (v->visible && !matches) {
        return "visibility information that does not match the key share sent";
    }
    if (v->visible) {
        return "visibility information matching the key share, which did not repeat (key rotated between "
               "connections?)";
    }
    return v->comparable ? "no sign of ETS: a fresh key share on every connection, no visibility information"
                         : "no visibility information; key shares not comparable (groups differed)";
}

static int refused(const msp_ets_probe_policy_t *p, const msp_ets_probe_verdict_t *v)
{
    int ets = v->repeated || v->visible;
    int undisclosed = (v->repeated || v->visible) && !v->vis.matches;
    return (p->refuse_ets && ets) || (p->require_visibility && undisclosed);
}

int msp_ets_probe_judge(const msp_ets_probe_facts_t *f, msp_ets_probe_verdict_t *v, msp_error_t *err)
{
    memset(v, 0, sizeof *v);
    if (f->conn == NULL || f->n_conn == 0 || f->n_conn > MSP_ETS_PROBE_MAX_CONN) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "1 to %d connections are judged, not %zu",
                             MSP_ETS_PROBE_MAX_CONN, f->n_conn);
    }
    int rc = msp_ets_visibility_read(f->cert, f->cert_len, &v->vis, err);
    if (rc != MSP_OK) {
        return rc;
    }
    compare_shares(f, v);
    v->visible = v->vis.n_vi > 0;
    if (f->conn[0].have_share) {
        msp_ets_visibility_match(&v->vis, f->conn[0].fingerprint);
    }
    v->text = verdict_text(v);
    v->refused = refused(&f->policy, v);
    return MSP_OK;
}
