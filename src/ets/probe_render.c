/*
 * The ETS-aware client's verdict as text and JSON (msp/ets_probe.h), what
 * `msp ets probe` prints; the shapes are pinned by tests/integration
 * (cli_ets.sh, ets_e2e.sh, ets_visibility.sh) and test_ets_render.c.
 */
#include <stdio.h>
#include <stdlib.h>

#include "msp/ets.h"
#include "msp/ets_probe.h"
#include "msp/json.h"

const char *msp_ets_group_name(uint16_t g)
{
    switch (g) {
    case 0x0017:
        return "secp256r1";
    case 0x0018:
        return "secp384r1";
    case 0x0019:
        return "secp521r1";
    case 0x001d:
        return "x25519";
    case 0x001e:
        return "x448";
    default:
        return "other";
    }
}

/* The description is free text from the certificate: quotes, backslashes and control characters are escaped so
 * that one entry stays one line and cannot pass for another. */
int msp_ets_access_text(msp_buf_t *b, const char *s, size_t len)
{
    msp_buf_put_u8(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            msp_buf_printf(b, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            msp_buf_printf(b, "\\x%02x", c);
        } else {
            msp_buf_put_u8(b, c); /* UTF-8 passes through: the decoder checked it */
        }
    }
    msp_buf_put_u8(b, '"');
    return msp_buf_error(b);
}

static const char *share_text(const msp_ets_probe_verdict_t *v)
{
    return v->repeated ? "repeated (static)" : v->comparable ? "fresh on every connection" : "not comparable";
}

int msp_ets_probe_render_text(const char *target, const msp_ets_probe_facts_t *f, const msp_ets_probe_verdict_t *v,
                              msp_buf_t *b)
{
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    for (size_t i = 0; i < f->n_conn; i++) {
        const msp_ets_probe_conn_t *c = &f->conn[i];
        msp_hex(fp, c->fingerprint, sizeof c->fingerprint);
        msp_buf_printf(b, "%s: connection %zu: %s, group %s%s, key share fingerprint %s, certificate %s\n", target,
                       i + 1, c->suite, msp_ets_group_name(c->group), c->hrr ? " (after HelloRetryRequest)" : "", fp,
                       c->certificate);
    }
    for (size_t k = 0; k < v->vis.n_vi; k++) {
        msp_hex(fp, v->vis.vi[k].fingerprint, MSP_ETS_FINGERPRINT_LEN);
        msp_buf_printf(b, "%s: visibility %zu: fingerprint %s (%s), access ", target, k + 1, fp,
                       v->vis.match[k] ? "matches the key share sent" : "another key: not the key share sent");
        msp_ets_access_text(b, v->vis.vi[k].access, v->vis.vi[k].access_len);
        msp_buf_put_u8(b, '\n');
    }
    if (v->vis.misplaced) {
        msp_buf_printf(b, "%s: warning: an extension with the ETS OID outside subjectAltName\n", target);
    }
    msp_buf_printf(b, "%s: key share: %s\n", target, share_text(v));
    msp_buf_printf(b, "%s: verdict: %s\n", target, v->text);
    return msp_buf_error(b);
}

static void json_conn(msp_json_t *j, const msp_ets_probe_conn_t *c)
{
    char hex[2 * MSP_ETS_PROBE_MAX_SHARE + 1], fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    msp_hex(fp, c->fingerprint, sizeof c->fingerprint);
    msp_hex(hex, c->share, c->share_len < sizeof c->share ? c->share_len : sizeof c->share);
    msp_json_object_begin(j);
    msp_json_key(j, "suite");
    msp_json_string(j, c->suite);
    msp_json_key(j, "group");
    msp_json_string(j, msp_ets_group_name(c->group));
    msp_json_key(j, "hello_retry_request");
    msp_json_bool(j, c->hrr);
    msp_json_key(j, "key_share");
    msp_json_string(j, hex);
    msp_json_key(j, "fingerprint");
    msp_json_string(j, fp);
    msp_json_key(j, "certificate");
    msp_json_string(j, c->certificate);
    msp_json_object_end(j);
}

static void json_vis(msp_json_t *j, const msp_ets_visibility_t *vis)
{
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    msp_json_key(j, "visibility");
    msp_json_array_begin(j);
    for (size_t k = 0; k < vis->n_vi; k++) {
        msp_hex(fp, vis->vi[k].fingerprint, MSP_ETS_FINGERPRINT_LEN);
        msp_json_object_begin(j);
        msp_json_key(j, "fingerprint");
        msp_json_string(j, fp);
        msp_json_key(j, "access");
        msp_json_string_n(j, vis->vi[k].access, vis->vi[k].access_len);
        msp_json_key(j, "matches_key_share");
        msp_json_bool(j, vis->match[k]);
        msp_json_object_end(j);
    }
    msp_json_array_end(j);
}

int msp_ets_probe_render_json(const char *target, const msp_ets_probe_facts_t *f, const msp_ets_probe_verdict_t *v,
                              msp_buf_t *b)
{
    msp_json_t j;
    msp_json_init(&j, b, 0);
    msp_json_object_begin(&j);
    msp_json_key(&j, "target");
    msp_json_string(&j, target);
    msp_json_key(&j, "connections");
    msp_json_array_begin(&j);
    for (size_t i = 0; i < f->n_conn; i++) {
        json_conn(&j, &f->conn[i]);
    }
    msp_json_array_end(&j);
    json_vis(&j, &v->vis);
    msp_json_key(&j, "misplaced_extension");
    msp_json_bool(&j, v->vis.misplaced);
    msp_json_key(&j, "static_key_share");
    msp_json_bool(&j, v->repeated);
    msp_json_key(&j, "comparable");
    msp_json_bool(&j, v->comparable);
    msp_json_key(&j, "verdict");
    msp_json_string(&j, v->text);
    msp_json_object_end(&j);
    msp_buf_puts(b, "\n");
    return msp_buf_error(b);
}

int msp_ets_cert_vi_lines(X509 *x, const char *name, msp_buf_t *out)
{
    msp_ets_vi_t *vi = calloc(MSP_ETS_MAX_VI, sizeof *vi); /* large: the descriptions */
    size_t n = 0;
    int misplaced = 0;
    if (vi == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    int rc = msp_ets_cert_read(x, vi, MSP_ETS_MAX_VI, &n, &misplaced);
    for (size_t k = 0; rc == MSP_OK && k < n; k++) {
        char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
        msp_hex(fp, vi[k].fingerprint, MSP_ETS_FINGERPRINT_LEN);
        msp_buf_printf(out, "%s: visibility %zu: fingerprint %s\n", name, k + 1, fp);
    }
    free(vi);
    return rc != MSP_OK ? rc : msp_buf_error(out);
}

/* ---- a certificate's visibility information, as `msp ets show` prints it ---- */

int msp_ets_cert_render_json(const char *path, const msp_ets_vi_t *vi, size_t n, int misplaced, msp_buf_t *b)
{
    msp_json_t j;
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    msp_json_init(&j, b, 0);
    msp_json_object_begin(&j);
    msp_json_key(&j, "certificate");
    msp_json_string(&j, path);
    msp_json_key(&j, "misplaced_extension");
    msp_json_bool(&j, misplaced);
    msp_json_key(&j, "visibility");
    msp_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        msp_hex(fp, vi[i].fingerprint, MSP_ETS_FINGERPRINT_LEN);
        msp_json_object_begin(&j);
        msp_json_key(&j, "fingerprint");
        msp_json_string(&j, fp);
        msp_json_key(&j, "access");
        msp_json_string_n(&j, vi[i].access, vi[i].access_len);
        msp_json_object_end(&j);
    }
    msp_json_array_end(&j);
    msp_json_object_end(&j);
    msp_buf_puts(b, "\n");
    return msp_buf_error(b);
}

int msp_ets_cert_render_text(const char *path, const msp_ets_vi_t *vi, size_t n, int misplaced, msp_buf_t *b)
{
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        msp_hex(fp, vi[i].fingerprint, MSP_ETS_FINGERPRINT_LEN);
        msp_buf_printf(b, "%s: visibility %zu: fingerprint %s, access ", path, i + 1, fp);
        msp_ets_access_text(b, vi[i].access, vi[i].access_len);
        msp_buf_put_u8(b, '\n');
    }
    if (n == 0) {
        msp_buf_printf(b, "%s: no ETS visibility information\n", path);
    }
    if (misplaced) {
        msp_buf_printf(b, "%s: warning: an extension with the ETS OID outside subjectAltName (not V1.3.1's place)\n",
                       path);
    }
    return msp_buf_error(b);
}
