/* The ICAP client codec (RFC 3507), sans-IO: see msp/tlmsp_icap.h. */
#include "msp/tlmsp_icap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reader.h"

int msp_icap_url_parse(const char *url, msp_icap_url_t *out, msp_error_t *err)
{
    memset(out, 0, sizeof(*out));
    out->port = MSP_ICAP_DEFAULT_PORT;
    if (strncasecmp(url, "icap://", 7) != 0) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "'%s': not an icap:// URL", url);
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    if (slash == NULL || slash[1] == '\0') {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "'%s': no service (icap://HOST:PORT/SERVICE)", url);
    }
    /* the host ends at the last ':' before the service, or at ']' for an IPv6 literal */
    const char *end = slash, *colon = NULL;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(slash - h));
        if (rb == NULL) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "'%s': an unclosed '['", url);
        }
        colon = rb[1] == ':' ? rb + 1 : NULL;
        h++;
        end = rb;
    } else {
        colon = memchr(h, ':', (size_t)(slash - h));
        end = colon != NULL ? colon : slash;
    }
    size_t hl = (size_t)(end - h), sl = strlen(slash + 1);
    if (hl == 0 || hl >= sizeof(out->host) || sl >= sizeof(out->service)) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "'%s': an empty or too long host or service", url);
    }
    if (colon != NULL) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != slash || port < 1 || port > 65535) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "'%s': not a port", url);
        }
        out->port = (uint16_t)port;
    }
    memcpy(out->host, h, hl);
    memcpy(out->service, slash + 1, sl);
    return MSP_OK;
}

static int put_start(const msp_icap_url_t *u, const char *method, msp_buf_t *out)
{
    int v6 = strchr(u->host, ':') != NULL;
    msp_buf_printf(out, "%s icap://%s%s%s:%u/%s ICAP/1.0\r\nHost: %s%s%s\r\nUser-Agent: msp\r\n", method, v6 ? "[" : "",
                   u->host, v6 ? "]" : "", u->port, u->service, v6 ? "[" : "", u->host, v6 ? "]" : "");
    return msp_buf_error(out);
}

int msp_icap_options_request(const msp_icap_url_t *u, msp_buf_t *out)
{
    put_start(u, "OPTIONS", out);
    msp_buf_puts(out, "Encapsulated: null-body=0\r\n\r\n");
    return msp_buf_error(out);
}

static void put_chunk(msp_buf_t *out, const uint8_t *p, size_t n)
{
    if (n > 0) {
        msp_buf_printf(out, "%zx\r\n", n);
        msp_buf_put(out, p, n);
        msp_buf_puts(out, "\r\n");
    }
}

int msp_icap_request(const msp_icap_url_t *u, msp_icap_method_t method, const uint8_t *req_hdr, size_t req_hdr_len,
                     const uint8_t *res_hdr, size_t res_hdr_len, const uint8_t *body, size_t body_len, long preview,
                     int allow204, msp_buf_t *out, size_t *sent)
{
    int resp = method == MSP_ICAP_RESPMOD;
    size_t now = preview >= 0 && (size_t)preview < body_len ? (size_t)preview : body_len;
    put_start(u, resp ? "RESPMOD" : "REQMOD", out);
    if (allow204) {
        msp_buf_puts(out, "Allow: 204\r\n");
    }
    if (preview >= 0) {
        msp_buf_printf(out, "Preview: %zu\r\n", now);
    }
    msp_buf_printf(out, "Encapsulated: req-hdr=0");
    if (resp && res_hdr_len > 0) {
        msp_buf_printf(out, ", res-hdr=%zu", req_hdr_len);
    }
    /* a message without a body (a GET, a 304) is sent as one: null-body, no chunks */
    const char *sec = body_len == 0 ? "null-body" : resp ? "res-body" : "req-body";
    msp_buf_printf(out, ", %s=%zu\r\n\r\n", sec, req_hdr_len + (resp ? res_hdr_len : 0));
    msp_buf_put(out, req_hdr, req_hdr_len);
    if (resp) {
        msp_buf_put(out, res_hdr, res_hdr_len);
    }
    *sent = preview >= 0 ? now : body_len;
    if (body_len == 0) {
        return msp_buf_error(out);
    }
    put_chunk(out, body, now);
    /* the whole body in the preview: "ieof" tells the server no 100 Continue is needed */
    msp_buf_puts(out, preview >= 0 && now == body_len ? "0; ieof\r\n\r\n" : "0\r\n\r\n");
    return msp_buf_error(out);
}

int msp_icap_http_set_length(const uint8_t *hdr, size_t len, size_t body_len, msp_buf_t *out)
{
    const uint8_t *p = hdr, *end = hdr + len;
    while (p < end) {
        const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol != NULL ? (size_t)(eol - p) + 1 : (size_t)(end - p);
        size_t text = n - (n > 0 && p[n - 1] == '\n') - (n > 1 && p[n - 2] == '\r');
        if (text == 0) {
            break; /* the blank line: the header block ends here */
        }
        if (!(text >= 15 && strncasecmp((const char *)p, "Content-Length:", 15) == 0) &&
            !(text >= 18 && strncasecmp((const char *)p, "Transfer-Encoding:", 18) == 0)) {
            msp_buf_put(out, p, text);
            msp_buf_puts(out, "\r\n");
        }
        p += n;
    }
    msp_buf_printf(out, "Content-Length: %zu\r\n\r\n", body_len);
    return msp_buf_error(out);
}

int msp_icap_request_rest(const uint8_t *rest, size_t len, msp_buf_t *out)
{
    put_chunk(out, rest, len);
    msp_buf_puts(out, "0\r\n\r\n");
    return msp_buf_error(out);
}

/* ---- responses ---- */

enum { SEC_REQ_HDR, SEC_RES_HDR, SEC_BODY, SEC_NULL, SEC_N };

struct msp_icap_resp {
    msp_buf_t in;   /* everything received of this response */
    msp_buf_t body; /* the de-chunked body */
    size_t limit;
    size_t head;     /* the ICAP header block's length (0: not complete yet) */
    size_t body_pos; /* the next chunk's offset in in */
    size_t end;      /* the response's length once done */
    size_t hdr_off;  /* where the encapsulated HTTP header starts in in (in moves as it grows: no pointer kept) */
    long off[SEC_N]; /* Encapsulated offsets, -1 when absent */
    int done;
    msp_icap_resp_info_t info;
};

int msp_icap_resp_new(size_t limit, msp_icap_resp_t **out)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    (*out)->limit = limit != 0 ? limit : MSP_ICAP_MAX_RESPONSE;
    msp_buf_init(&(*out)->in, (*out)->limit + MSP_ICAP_MAX_HEADERS);
    msp_buf_init(&(*out)->body, (*out)->limit);
    msp_icap_resp_reset(*out);
    return MSP_OK;
}

void msp_icap_resp_free(msp_icap_resp_t *r)
{
    if (r == NULL) {
        return;
    }
    msp_buf_free(&r->in);
    msp_buf_free(&r->body);
    free(r);
}

void msp_icap_resp_reset(msp_icap_resp_t *r)
{
    r->in.len = 0;
    r->body.len = 0;
    r->head = r->body_pos = r->end = 0;
    r->done = 0;
    for (int i = 0; i < SEC_N; i++) {
        r->off[i] = -1;
    }
    memset(&r->info, 0, sizeof(r->info));
    r->info.preview = -1;
}

/* The offset of the first CRLF CRLF in p[0..n) plus 4, or 0. */
static size_t find_blank(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            return i + 4;
        }
    }
    return 0;
}

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    snprintf(dst, size, "%.*s", (int)(n < size ? n : size - 1), v);
}

static int parse_encapsulated(msp_icap_resp_t *r, const char *v, msp_error_t *err)
{
    static const char *const names[] = {"req-hdr", "res-hdr", "req-body", "res-body", "opt-body", "null-body"};
    static const int sec[] = {SEC_REQ_HDR, SEC_RES_HDR, SEC_BODY, SEC_BODY, SEC_BODY, SEC_NULL};
    long last = -1;
    while (*v != '\0') {
        while (*v == ' ' || *v == ',') {
            v++;
        }
        if (*v == '\0') {
            break;
        }
        size_t i = 0;
        while (i < 6 && !(strncasecmp(v, names[i], strlen(names[i])) == 0 && v[strlen(names[i])] == '=')) {
            i++;
        }
        char *e;
        long off = i < 6 ? strtol(v + strlen(names[i]) + 1, &e, 10) : -1;
        if (i == 6 || off < 0 || off <= last || off > (long)r->limit || (*e != '\0' && *e != ',' && *e != ' ')) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "ICAP response: a bad Encapsulated header");
        }
        r->off[sec[i]] = off;
        last = off;
        v = e;
    }
    return MSP_OK;
}

static int header_line(msp_icap_resp_t *r, const char *line, size_t n, msp_error_t *err)
{
    const char *colon = memchr(line, ':', n);
    if (colon == NULL) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "ICAP response: a header line without ':'");
    }
    size_t nl = (size_t)(colon - line), vl = n - nl - 1;
    const char *v = colon + 1;
    msp_icap_resp_info_t *in = &r->info;
    char tmp[512];
    if (nl == 5 && strncasecmp(line, "ISTag", 5) == 0) {
        copy_value(in->istag, sizeof(in->istag), v, vl);
    } else if (nl == 17 && strncasecmp(line, "X-Infection-Found", 17) == 0) {
        copy_value(in->infection, sizeof(in->infection), v, vl);
    } else if (nl == 10 && strncasecmp(line, "X-Virus-ID", 10) == 0) {
        copy_value(in->virus_id, sizeof(in->virus_id), v, vl);
    } else if (nl == 7 && strncasecmp(line, "Preview", 7) == 0) {
        copy_value(tmp, sizeof(tmp), v, vl);
        char *e;
        long p = strtol(tmp, &e, 10);
        in->preview = e != tmp && *e == '\0' && p >= 0 && p <= (long)r->limit ? p : -1;
    } else if (nl == 5 && strncasecmp(line, "Allow", 5) == 0) {
        copy_value(tmp, sizeof(tmp), v, vl);
        in->allow204 = strstr(tmp, "204") != NULL;
    } else if (nl == 12 && strncasecmp(line, "Encapsulated", 12) == 0) {
        copy_value(tmp, sizeof(tmp), v, vl);
        return parse_encapsulated(r, tmp, err);
    }
    return MSP_OK;
}

/* The first line of p[0..n) as a C string (cut to size), for sscanf: the input is not NUL-terminated. */
static const char *first_line(const uint8_t *p, size_t n, char *out, size_t size)
{
    const uint8_t *eol = memchr(p, '\n', n);
    size_t l = eol != NULL ? (size_t)(eol - p) : n;
    l = l < size - 1 ? l : size - 1;
    memcpy(out, p, l);
    out[l] = '\0';
    return out;
}

/* The status line and the headers, folded lines joined (a line starting with a space or tab continues the last). */
static int parse_head(msp_icap_resp_t *r, const char *p, size_t n, msp_error_t *err)
{
    int major, minor, status;
    char start[64];
    if (n < 12 ||
        sscanf(first_line((const uint8_t *)p, n, start, sizeof(start)), "ICAP/%d.%d %3d", &major, &minor, &status) !=
            3 ||
        status < 100 || status > 599) {
        return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "ICAP response: not an ICAP status line");
    }
    r->info.status = status;
    const char *line = memchr(p, '\n', n);
    char joined[2048];
    size_t jl = 0;
    int ret = MSP_OK;
    for (line++; ret == MSP_OK && line < p + n; line = memchr(line, '\n', (size_t)(p + n - line)) + 1) {
        const char *eol = memchr(line, '\n', (size_t)(p + n - line));
        size_t ll = (size_t)(eol - line);
        ll -= ll > 0 && line[ll - 1] == '\r';
        if (ll > 0 && (line[0] == ' ' || line[0] == '\t')) {
            size_t add = ll < sizeof(joined) - jl ? ll : sizeof(joined) - jl;
            memcpy(joined + jl, line, add);
            jl += add;
            continue;
        }
        if (jl > 0) {
            ret = header_line(r, joined, jl, err);
        }
        jl = ll < sizeof(joined) ? ll : sizeof(joined);
        memcpy(joined, line, jl);
    }
    return ret;
}

/* The encapsulated HTTP header, once the bytes up to the body's offset are in (*ready; else wait). */
static int take_http_header(msp_icap_resp_t *r, int *ready, msp_error_t *err)
{
    *ready = 0;
    long body = r->off[SEC_BODY] >= 0 ? r->off[SEC_BODY] : r->off[SEC_NULL];
    if (body < 0) {
        /* no Encapsulated (an error status): nothing follows the headers */
        if (r->off[SEC_REQ_HDR] >= 0 || r->off[SEC_RES_HDR] >= 0) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "ICAP response: no body or null-body offset");
        }
        r->body_pos = r->head;
        *ready = 1;
        return MSP_OK;
    }
    if (r->in.len < r->head + (size_t)body) {
        return MSP_OK;
    }
    int res = r->off[SEC_RES_HDR] >= 0;
    long from = res ? r->off[SEC_RES_HDR] : r->off[SEC_REQ_HDR];
    if (from >= 0) {
        long to = res || r->off[SEC_RES_HDR] < 0 ? body : r->off[SEC_RES_HDR];
        msp_reader_t rd;
        msp_reader_init(&rd, r->in.base + r->head, (size_t)body);
        const uint8_t *skip;
        const uint8_t *hdr;
        if (msp_read_bytes(&rd, (size_t)from, &skip) != MSP_OK ||
            msp_read_bytes(&rd, (size_t)(to - from), &hdr) != MSP_OK) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "ICAP response: a bad Encapsulated offset");
        }
        r->hdr_off = (size_t)(hdr - r->in.base);
        r->info.http_hdr = hdr; /* set again once done */
        r->info.http_hdr_len = (size_t)(to - from);
        r->info.is_response = res;
        int code;
        char start[64];
        if (res && sscanf(first_line(r->info.http_hdr, r->info.http_hdr_len, start, sizeof(start)), "HTTP/%*d.%*d %3d",
                          &code) == 1) {
            r->info.http_status = code;
        }
    }
    r->body_pos = r->head + (size_t)body;
    r->info.has_body = r->off[SEC_BODY] >= 0;
    *ready = 1;
    return MSP_OK;
}

/* Chunks from body_pos on: *last after the last chunk, else wait for more bytes. */
static int take_chunks(msp_icap_resp_t *r, int *last, msp_error_t *err)
{
    *last = 0;
    for (;;) {
        msp_reader_t rd;
        msp_reader_init(&rd, r->in.base + r->body_pos, r->in.len - r->body_pos);
        const uint8_t *line = r->in.base + r->body_pos, *eol = memchr(line, '\n', msp_reader_left(&rd));
        if (eol == NULL) {
            return msp_reader_left(&rd) > 1024 ? msp_error_set(err, MSP_ERR_SYNTAX, NULL, "ICAP response: a bad chunk")
                                               : MSP_OK;
        }
        size_t size = 0, digits = 0;
        for (const uint8_t *q = line; q < eol && digits <= 15; q++, digits++) {
            int d = *q >= '0' && *q <= '9'                     ? *q - '0'
                    : (*q | 0x20) >= 'a' && (*q | 0x20) <= 'f' ? (*q | 0x20) - 'a' + 10
                                                               : -1;
            if (d < 0) {
                break;
            }
            size = size * 16 + (size_t)d;
        }
        if (digits == 0 || digits > 15 || size > r->limit) {
            return msp_error_set(err, MSP_ERR_SYNTAX, NULL, "ICAP response: a bad chunk size");
        }
        const uint8_t *skip, *data, *crlf;
        msp_read_bytes(&rd, (size_t)(eol - line) + 1, &skip);
        if (size == 0) {
            /* the last chunk: no trailers from an ICAP server we know; its blank line ends the response */
            if (msp_read_bytes(&rd, 2, &crlf) != MSP_OK) {
                return MSP_OK;
            }
            r->end = r->in.len - msp_reader_left(&rd);
            *last = 1;
            return MSP_OK;
        }
        if (msp_read_bytes(&rd, size, &data) != MSP_OK || msp_read_bytes(&rd, 2, &crlf) != MSP_OK) {
            return MSP_OK;
        }
        if (msp_buf_put(&r->body, data, size) != MSP_OK) {
            return msp_error_set(err, MSP_ERR_LIMIT, NULL, "ICAP response: a body over %zu bytes", r->limit);
        }
        r->body_pos = r->in.len - msp_reader_left(&rd);
    }
}

static int parse(msp_icap_resp_t *r, msp_error_t *err)
{
    if (r->head == 0) {
        size_t h = find_blank(r->in.base, r->in.len);
        if (h == 0) {
            return r->in.len > MSP_ICAP_MAX_HEADERS
                       ? msp_error_set(err, MSP_ERR_LIMIT, NULL, "ICAP response: headers over %zu bytes",
                                       MSP_ICAP_MAX_HEADERS)
                       : MSP_OK;
        }
        int ret = parse_head(r, (const char *)r->in.base, h, err);
        if (ret != MSP_OK) {
            return ret;
        }
        r->head = h;
        if (r->info.status == 100 || r->info.status == 204) {
            r->end = h;
            r->done = 1;
            return MSP_OK;
        }
    }
    if (r->body_pos == 0) {
        int ready, ret = take_http_header(r, &ready, err);
        if (ret != MSP_OK || !ready) {
            return ret;
        }
        if (!r->info.has_body) {
            r->end = r->body_pos;
            r->done = 1;
            return MSP_OK;
        }
    }
    int last, ret = take_chunks(r, &last, err);
    r->done = ret == MSP_OK && last;
    return ret;
}

int msp_icap_resp_input(msp_icap_resp_t *r, const uint8_t *p, size_t len, int *done, msp_error_t *err)
{
    *done = r->done;
    if (r->done) {
        return MSP_OK;
    }
    if (msp_buf_put(&r->in, p, len) != MSP_OK) {
        return msp_error_set(err, MSP_ERR_LIMIT, NULL, "ICAP response: over %zu bytes", r->limit);
    }
    int ret = parse(r, err);
    if (ret != MSP_OK) {
        return ret;
    }
    if (r->done) {
        /* pointers only now: the buffers moved while they grew */
        r->info.body = r->body.base;
        r->info.body_len = r->body.len;
        r->info.http_hdr = r->info.http_hdr != NULL ? r->in.base + r->hdr_off : NULL;
    }
    *done = r->done;
    return MSP_OK;
}

const msp_icap_resp_info_t *msp_icap_resp_info(const msp_icap_resp_t *r)
{
    return &r->info;
}

size_t msp_icap_resp_extra(const msp_icap_resp_t *r, const uint8_t **p)
{
    *p = r->done ? r->in.base + r->end : NULL;
    return r->done ? r->in.len - r->end : 0;
}
