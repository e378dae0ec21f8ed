/* Inspection at a middlebox, sans-IO: see msp/tlmsp_inspect.h. */
#include "msp/tlmsp_inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msp/buf.h"
#include "msp/tlmsp_http.h"

#define MAX_CONTAINER 16355 /* the largest plaintext a REPLACE verdict may carry */

/* The containers of one part, in the order they were held. */
typedef struct part {
    msp_buf_t data; /* byte stream: every byte; HTTP: the body bytes */
    msp_buf_t hdr;  /* HTTP: the header block's bytes, when the part has them */
    int http;
    size_t n;
    uint8_t ctx;   /* the first container's context */
    int read_only; /* a container in a context this middlebox may not write */
} part_t;

typedef struct dir {
    part_t scan, next; /* with the service; collecting behind it */
    int scanning;
    int next_ready; /* next is complete (a pause, a message's end, a bound) */
    int cut_said;
    int stream;        /* HTTP framing given up: a byte stream from now on */
    int msg_done;      /* the framer ended a message in the container being fed */
    int tunnel;        /* the framer said the rest is a tunnel */
    msp_buf_t msg_hdr; /* the header block of the message being held, for its later parts */
    char synth_req[160], synth_res[160];
    /* the outcome's arrays */
    msp_tlmsp_verdict_t *v;
    const uint8_t **vdata;
    size_t *vlen, vcap;
    msp_buf_t fixed; /* a replacement's header, its length fixed */
} dir_t;

struct msp_inspect {
    msp_inspect_cfg_t cfg;
    msp_http_t *http; /* HTTP mode: the framer of both directions */
    dir_t d[2];       /* [1]: toward the server */
};

static void part_init(part_t *p)
{
    memset(p, 0, sizeof(*p));
    msp_buf_init(&p->data, MSP_TLMSP_HOLD_MAX_BYTES);
    msp_buf_init(&p->hdr, MSP_HTTP_DEFAULT_MAX_HEADER);
}

static void part_clear(part_t *p)
{
    p->data.len = p->hdr.len = 0;
    p->http = p->read_only = 0;
    p->n = 0;
}

static void part_free(part_t *p)
{
    msp_buf_free(&p->data);
    msp_buf_free(&p->hdr);
}

static void part_swap(part_t *a, part_t *b)
{
    part_t t = *a;
    *a = *b;
    *b = t;
}

int msp_inspect_new(const msp_inspect_cfg_t *cfg, msp_inspect_t **out)
{
    msp_inspect_t *x = calloc(1, sizeof(*x));
    *out = NULL;
    if (x == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    if (cfg != NULL && cfg->header_ctx != 0 && cfg->body_ctx != 0) {
        x->cfg = *cfg;
    }
    for (int k = 0; k < 2; k++) {
        part_init(&x->d[k].scan);
        part_init(&x->d[k].next);
        msp_buf_init(&x->d[k].msg_hdr, MSP_HTTP_DEFAULT_MAX_HEADER);
        msp_buf_init(&x->d[k].fixed, MSP_HTTP_DEFAULT_MAX_HEADER + 64);
    }
    if (x->cfg.header_ctx != 0 && msp_http_new(NULL, &x->http) != MSP_OK) {
        msp_inspect_free(x);
        return MSP_ERR_NO_MEMORY;
    }
    *out = x;
    return MSP_OK;
}

void msp_inspect_free(msp_inspect_t *x)
{
    if (x == NULL) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        dir_t *d = &x->d[k];
        part_free(&d->scan);
        part_free(&d->next);
        msp_buf_free(&d->msg_hdr);
        msp_buf_free(&d->fixed);
        free(d->v);
        free(d->vdata);
        free(d->vlen);
    }
    msp_http_free(x->http);
    free(x);
}

/* The framer's segments: header and body bytes into the collecting part, a message's end noted. */
static int on_segment(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg)
{
    dir_t *d = user;
    part_t *p = &d->next;
    (void)dir;
    p->http = 1;
    if (seg->kind == MSP_HTTP_HEADER) {
        if (p->hdr.len == 0) {
            d->msg_hdr.len = 0; /* a new message */
        }
        msp_buf_put(&p->hdr, seg->p, seg->len);
        msp_buf_put(&d->msg_hdr, seg->p, seg->len);
    } else {
        msp_buf_put(&p->data, seg->p, seg->len);
    }
    d->msg_done |= (seg->flags & MSP_HTTP_MESSAGE_DONE) != 0;
    d->tunnel |= (seg->flags & MSP_HTTP_TUNNEL) != 0;
    return msp_buf_error(&p->hdr) != MSP_OK || msp_buf_error(&p->data) != MSP_OK ? MSP_ERR_LIMIT : MSP_OK;
}

/*
 * Through the framer. Not HTTP/1.x, or a tunnel: a byte stream from here; the part's bytes become its header,
 * its body and this whole container again (some bytes twice: none escapes the scan).
 */
static int http_feed(msp_inspect_t *x, dir_t *d, int to_server, const uint8_t *p, size_t len, unsigned *flags,
                     msp_error_t *err)
{
    msp_error_t ferr;
    msp_error_clear(&ferr);
    part_t *pt = &d->next;
    int rc = msp_http_feed(x->http, to_server ? MSP_HTTP_REQUESTS : MSP_HTTP_RESPONSES, p, len, on_segment, d, &ferr);
    if (rc == MSP_ERR_LIMIT && ferr.detail[0] == '\0') {
        return MSP_ERR_LIMIT; /* on_segment's: more than may be held */
    }
    if (rc == MSP_OK && !d->tunnel) {
        return MSP_OK;
    }
    d->stream = 1;
    *flags |= MSP_INSPECT_STREAM;
    msp_error_set(err, rc != MSP_OK ? rc : MSP_OK, NULL, "%s",
                  rc != MSP_OK ? ferr.detail : "became a tunnel (upgrade or CONNECT)");
    if (rc != MSP_OK && pt->hdr.len > 0) {
        msp_buf_t all;
        msp_buf_init(&all, MSP_TLMSP_HOLD_MAX_BYTES);
        msp_buf_put(&all, pt->hdr.base, pt->hdr.len);
        msp_buf_put(&all, pt->data.base, pt->data.len);
        msp_buf_free(&pt->data);
        pt->data = all;
    }
    pt->hdr.len = 0;
    pt->http = 0;
    if (rc != MSP_OK && msp_buf_put(&pt->data, p, len) != MSP_OK) {
        return MSP_ERR_LIMIT;
    }
    return msp_buf_error(&pt->data);
}

static void complete(dir_t *d, unsigned *flags)
{
    if (d->next.n > 0) {
        d->next_ready = 1;
    }
    if (d->next_ready && !d->scanning) {
        *flags |= MSP_INSPECT_READY;
    }
}

int msp_inspect_input(msp_inspect_t *x, int to_server, uint8_t ctx, int writable, const uint8_t *p, size_t len,
                      unsigned *flags, msp_error_t *err)
{
    dir_t *d = &x->d[to_server ? 1 : 0];
    part_t *pt = &d->next;
    *flags = 0;
    if (pt->n >= MSP_TLMSP_HOLD_MAX_CONTAINERS) {
        return MSP_ERR_LIMIT;
    }
    int http = x->http != NULL && !d->stream && (ctx == x->cfg.header_ctx || ctx == x->cfg.body_ctx);
    int rc = http ? http_feed(x, d, to_server, p, len, flags, err) : msp_buf_put(&pt->data, p, len);
    if (rc != MSP_OK) {
        return rc;
    }
    if (pt->n++ == 0) {
        pt->ctx = ctx;
    }
    pt->read_only |= !writable;
    if (d->msg_done) {
        d->msg_done = 0;
        complete(d, flags); /* a whole HTTP message: no need to wait for a pause */
    } else if (pt->data.len >= MSP_INSPECT_PART_BYTES || pt->n >= MSP_INSPECT_PART_CONTAINERS) {
        *flags |= d->cut_said ? 0 : MSP_INSPECT_CUT;
        d->cut_said = 1;
        complete(d, flags);
    } else if (!d->next_ready) {
        *flags |= MSP_INSPECT_OPEN;
    }
    return MSP_OK;
}

void msp_inspect_pause(msp_inspect_t *x, int to_server, unsigned *flags)
{
    *flags = 0;
    complete(&x->d[to_server ? 1 : 0], flags);
}

/* A response goes with the last request header seen toward the server (exact unless requests are pipelined). */
static void http_request(msp_inspect_t *x, dir_t *d, int to_server, msp_inspect_request_t *r)
{
    static const char get[] = "GET / HTTP/1.1\r\nHost: tlmsp\r\n\r\n";
    const msp_buf_t *own = d->scan.hdr.len > 0 ? &d->scan.hdr : &d->msg_hdr, *req = &x->d[1].msg_hdr;
    if (to_server) {
        r->req_hdr = own->base;
        r->req_hdr_len = own->len;
        return;
    }
    r->req_hdr = req->len > 0 ? req->base : (const uint8_t *)get;
    r->req_hdr_len = req->len > 0 ? req->len : sizeof(get) - 1;
    r->res_hdr = own->base;
    r->res_hdr_len = own->len;
}

static void stream_request(dir_t *d, int to_server, msp_inspect_request_t *r)
{
    size_t n = d->scan.data.len;
    int ql = snprintf(d->synth_req, sizeof(d->synth_req), "%s /tlmsp/context-%u HTTP/1.1\r\nHost: tlmsp\r\n%s",
                      to_server ? "POST" : "GET", d->scan.ctx, to_server ? "" : "\r\n");
    if (to_server) {
        ql += snprintf(d->synth_req + ql, sizeof(d->synth_req) - (size_t)ql,
                       "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", n);
    } else {
        r->res_hdr = (const uint8_t *)d->synth_res;
        r->res_hdr_len = (size_t)snprintf(
            d->synth_res, sizeof(d->synth_res),
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", n);
    }
    r->req_hdr = (const uint8_t *)d->synth_req;
    r->req_hdr_len = (size_t)ql;
}

int msp_inspect_scan(msp_inspect_t *x, int to_server, msp_inspect_request_t *req)
{
    dir_t *d = &x->d[to_server ? 1 : 0];
    memset(req, 0, sizeof(*req));
    if (d->scanning || !d->next_ready) {
        return 0;
    }
    part_swap(&d->scan, &d->next);
    part_clear(&d->next);
    d->next_ready = 0;
    d->scanning = 1;
    req->method = to_server ? MSP_ICAP_REQMOD : MSP_ICAP_RESPMOD;
    if (d->scan.http && (d->scan.hdr.len > 0 || d->msg_hdr.len > 0)) {
        http_request(x, d, to_server, req);
    } else {
        stream_request(d, to_server, req);
    }
    req->body = d->scan.data.base;
    req->body_len = d->scan.data.len;
    req->ctx = d->scan.ctx;
    req->containers = d->scan.n;
    return 1;
}

static int verdicts(dir_t *d, size_t n)
{
    if (n > d->vcap) {
        free(d->v);
        free(d->vdata);
        free(d->vlen);
        d->v = calloc(n, sizeof(*d->v));
        d->vdata = calloc(n, sizeof(*d->vdata));
        d->vlen = calloc(n, sizeof(*d->vlen));
        d->vcap = d->v != NULL && d->vdata != NULL && d->vlen != NULL ? n : 0;
        if (d->vcap == 0) {
            return MSP_ERR_NO_MEMORY;
        }
    }
    return MSP_OK;
}

/* Every held container the same verdict. */
static int all(dir_t *d, msp_tlmsp_verdict_t v, msp_inspect_outcome_t *out)
{
    int rc = verdicts(d, d->scan.n);
    for (size_t k = 0; rc == MSP_OK && k < d->scan.n; k++) {
        d->v[k] = v;
        d->vdata[k] = NULL;
        d->vlen[k] = 0;
    }
    out->n = d->scan.n;
    out->verdicts = d->v;
    return rc;
}

/* Byte stream: the answer's body refills the held containers in turn; what does not fit is inserted after them. */
static int refill(dir_t *d, int to_server, const uint8_t *p, size_t len, msp_inspect_outcome_t *out)
{
    int rc = all(d, MSP_TLMSP_DELETE, out);
    size_t off = 0;
    for (size_t k = 0; rc == MSP_OK && !out->toward_client && k < d->scan.n && off < len; k++) {
        size_t take = len - off < MAX_CONTAINER ? len - off : MAX_CONTAINER;
        d->v[k] = MSP_TLMSP_REPLACE;
        d->vdata[k] = p + off;
        d->vlen[k] = take;
        off += take;
    }
    out->data = (const uint8_t *const *)d->vdata;
    out->data_len = d->vlen;
    if (off < len) {
        out->insert[out->ninsert++] = (msp_inspect_insert_t){to_server, d->scan.ctx, p + off, len - off};
    }
    return rc;
}

/* HTTP: the held containers deleted, the answer inserted whole (a later part of a message: its body only). */
static int reinsert(msp_inspect_t *x, dir_t *d, int to_server, const msp_icap_resp_info_t *r,
                    msp_inspect_outcome_t *out)
{
    int rc = all(d, MSP_TLMSP_DELETE, out);
    size_t blen = r->has_body ? r->body_len : 0;
    d->fixed.len = 0;
    if (rc == MSP_OK && r->http_hdr != NULL && (d->scan.hdr.len > 0 || out->toward_client)) {
        rc = msp_icap_http_set_length(r->http_hdr, r->http_hdr_len, blen, &d->fixed);
        out->insert[out->ninsert++] = (msp_inspect_insert_t){to_server, x->cfg.header_ctx, d->fixed.base, d->fixed.len};
    }
    if (blen > 0) {
        out->insert[out->ninsert++] = (msp_inspect_insert_t){to_server, x->cfg.body_ctx, r->body, blen};
    }
    return rc;
}

static int decide(msp_inspect_t *x, dir_t *d, int to_server, const msp_icap_resp_info_t *r, msp_inspect_outcome_t *out)
{
    const part_t *pt = &d->scan;
    int same = (r->is_response != to_server) &&
               (r->has_body ? r->body_len == pt->data.len && memcmp(r->body, pt->data.base, r->body_len) == 0
                            : pt->data.len == 0);
    if (r->status == 204 || (r->status == 200 && same && r->infection[0] == '\0' && r->virus_id[0] == '\0')) {
        out->kind = MSP_INSPECT_PASS;
        return all(d, MSP_TLMSP_FORWARD, out);
    }
    if (r->status != 200) {
        out->kind = MSP_INSPECT_FAIL;
        out->alert = MSP_ALERT_INTERNAL_ERROR;
        out->why = "the service answered with an error status";
        return MSP_OK;
    }
    if (pt->read_only) {
        out->kind = MSP_INSPECT_BLOCK;
        out->alert = MSP_ALERT_ACCESS_DENIED;
        out->why = "the context is read-only here";
        return MSP_OK;
    }
    out->kind = MSP_INSPECT_REPLACE;
    out->toward_client = to_server && r->is_response;
    int target = out->toward_client ? 0 : to_server;
    if (pt->http) {
        return reinsert(x, d, target, r, out);
    }
    return refill(d, target, r->has_body ? r->body : NULL, r->has_body ? r->body_len : 0, out);
}

int msp_inspect_answer(msp_inspect_t *x, int to_server, const msp_icap_resp_info_t *r, msp_inspect_outcome_t *out,
                       unsigned *flags)
{
    dir_t *d = &x->d[to_server ? 1 : 0];
    memset(out, 0, sizeof(*out));
    *flags = 0;
    if (!d->scanning) {
        return MSP_ERR_ARGUMENT;
    }
    out->ctx = d->scan.ctx;
    int rc = decide(x, d, to_server, r, out);
    d->scanning = 0;
    /* the part's bytes stay until the next scan: the outcome may point into them */
    *flags = d->next_ready ? MSP_INSPECT_READY : 0;
    return rc;
}
