/*
 * The HTTP/1.x framer (msp/tlmsp_http.h) on Debian's libhttp-parser.
 *
 * http_parser reports where a message ends exactly: every message_complete
 * is a CALLBACK_NOTIFY on the message's last byte, so pausing there makes
 * http_parser_execute return the message's length. It does not say where
 * the header block ends (headers_complete cannot pause), but that is always
 * on an LF byte: in the header phase we feed up to the next LF at a time,
 * and the block ends with the feed during which headers_complete ran.
 */
#include "msp/tlmsp_http.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

enum { ANSWER_OTHER = 0, ANSWER_HEAD, ANSWER_CONNECT };

typedef struct dir_state {
    http_parser parser;
    struct msp_http *h;
    int in_body;       /* the current message's header block is complete */
    int tunnel;        /* after an upgrade: everything is body */
    int failed;        /* sticky error code */
    size_t header_len; /* bytes of the current header block so far */
    int headers_done;  /* set by the callbacks during one execute */
    int message_done;
    int status;
    const char *method;
} dir_state_t;

struct msp_http {
    http_parser_settings settings;
    dir_state_t dir[2];
    size_t max_header;
    uint8_t *ring; /* what each request fed and not yet answered expects (ANSWER_*) */
    size_t ring_cap, ring_head, ring_count;
};

static int push_request(struct msp_http *h, uint8_t kind)
{
    if (h->ring_count == h->ring_cap) {
        return -1;
    }
    h->ring[(h->ring_head + h->ring_count) % h->ring_cap] = kind;
    h->ring_count++;
    return 0;
}

static uint8_t pop_request(struct msp_http *h)
{
    if (h->ring_count == 0) {
        return ANSWER_OTHER; /* the request was not fed: taken as a GET */
    }
    uint8_t kind = h->ring[h->ring_head];
    h->ring_head = (h->ring_head + 1) % h->ring_cap;
    h->ring_count--;
    return kind;
}

/* Returns 1 for a message without body (HEAD's answer), 2 for one after which the protocol changes. */
static int on_headers_complete(http_parser *p)
{
    dir_state_t *d = p->data;
    d->headers_done = 1;
    if (p->type == HTTP_REQUEST) {
        d->method = http_method_str((enum http_method)p->method);
        uint8_t kind = p->method == HTTP_HEAD ? ANSWER_HEAD : p->method == HTTP_CONNECT ? ANSWER_CONNECT : ANSWER_OTHER;
        return push_request(d->h, kind) ? -1 : 0;
    }
    d->status = (int)p->status_code;
    if (p->status_code < 200 && p->status_code != 101) {
        return 0; /* an interim answer: the final one follows for the same request */
    }
    uint8_t kind = pop_request(d->h);
    if (kind == ANSWER_HEAD) {
        return 1;
    }
    if (kind == ANSWER_CONNECT && p->status_code < 300) {
        return 2;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    dir_state_t *d = p->data;
    d->message_done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static void dir_init(struct msp_http *h, int i)
{
    dir_state_t *d = &h->dir[i];
    memset(d, 0, sizeof(*d));
    http_parser_init(&d->parser, i == MSP_HTTP_REQUESTS ? HTTP_REQUEST : HTTP_RESPONSE);
    d->parser.data = d;
    d->h = h;
}

int msp_http_new(const msp_http_cfg_t *cfg, msp_http_t **out)
{
    *out = NULL;
    msp_http_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return MSP_ERR_NO_MEMORY;
    }
    h->max_header = cfg != NULL && cfg->max_header != 0 ? cfg->max_header : MSP_HTTP_DEFAULT_MAX_HEADER;
    h->ring_cap = cfg != NULL && cfg->max_pipeline != 0 ? cfg->max_pipeline : MSP_HTTP_DEFAULT_MAX_PIPELINE;
    h->ring = malloc(h->ring_cap);
    if (h->ring == NULL) {
        free(h);
        return MSP_ERR_NO_MEMORY;
    }
    http_parser_settings_init(&h->settings);
    h->settings.on_headers_complete = on_headers_complete;
    h->settings.on_message_complete = on_message_complete;
    dir_init(h, MSP_HTTP_REQUESTS);
    dir_init(h, MSP_HTTP_RESPONSES);
    *out = h;
    return MSP_OK;
}

void msp_http_free(msp_http_t *h)
{
    if (h == NULL) {
        return;
    }
    free(h->ring);
    free(h);
}

static const char *dir_name(msp_http_dir_t dir)
{
    return dir == MSP_HTTP_REQUESTS ? "request" : "response";
}

/* The parser stopped on something other than our pause: the direction fails for good. */
static int parse_failed(dir_state_t *d, msp_http_dir_t dir, msp_error_t *err)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&d->parser);
    if (e == HPE_CB_headers_complete) {
        d->failed = MSP_ERR_LIMIT;
        return msp_error_set(err, d->failed, "http", "more than %zu requests waiting for their answers",
                             d->h->ring_cap);
    }
    d->failed = MSP_ERR_SYNTAX;
    return msp_error_set(err, d->failed, "http", "not an HTTP/1.x %s: %s", dir_name(dir), http_errno_description(e));
}

/* After a message: ready for the next one, or a tunnel when the protocol changes. */
static void message_finished(dir_state_t *d)
{
    d->in_body = 0;
    d->header_len = 0;
    if (d->parser.upgrade) {
        d->tunnel = 1;
    }
    http_parser_pause(&d->parser, 0);
}

static int emit(msp_http_seg_fn fn, void *user, msp_http_dir_t dir, dir_state_t *d, msp_http_kind_t kind,
                const uint8_t *p, size_t len, unsigned flags)
{
    msp_http_seg_t seg = {.kind = kind, .p = p, .len = len, .flags = flags};
    if (flags & MSP_HTTP_HEADERS_DONE) {
        seg.status = d->status;
        seg.method = d->method;
    }
    int rc = fn(user, dir, &seg);
    if (rc != MSP_OK) {
        d->failed = rc;
    }
    return rc;
}

/* Feeds one line (up to the next LF) of a header block: *n its length. */
static int header_line(dir_state_t *d, msp_http_dir_t dir, const uint8_t *p, size_t len, size_t *n, msp_error_t *err)
{
    const uint8_t *lf = memchr(p, '\n', len);
    *n = lf != NULL ? (size_t)(lf - p) + 1 : len;
    if (*n > d->h->max_header - d->header_len) {
        d->failed = MSP_ERR_LIMIT;
        return msp_error_set(err, d->failed, "http", "%s header block larger than %zu bytes", dir_name(dir),
                             d->h->max_header);
    }
    size_t got = http_parser_execute(&d->parser, &d->h->settings, (const char *)p, *n);
    if (HTTP_PARSER_ERRNO(&d->parser) != HPE_OK && !d->message_done) {
        return parse_failed(d, dir, err);
    }
    if (got != *n) { /* not expected: a message always ends on the LF we stopped at */
        d->failed = MSP_ERR_SYNTAX;
        return msp_error_set(err, d->failed, "http", "%s: the parser stopped inside a line", dir_name(dir));
    }
    d->header_len += *n;
    return MSP_OK;
}

/* Feeds header lines until the block ends or the input does, as one segment; *used says how much. */
static int feed_header(dir_state_t *d, msp_http_dir_t dir, const uint8_t *p, size_t len, size_t *used,
                       msp_http_seg_fn fn, void *user, msp_error_t *err)
{
    d->headers_done = d->message_done = 0;
    d->status = 0;
    d->method = NULL;
    size_t off = 0;
    while (off < len && !d->headers_done) {
        size_t n;
        int rc = header_line(d, dir, p + off, len - off, &n, err);
        if (rc != MSP_OK) {
            return rc;
        }
        off += n;
    }
    unsigned flags = 0;
    if (d->headers_done) {
        flags |= MSP_HTTP_HEADERS_DONE;
        d->in_body = 1;
    }
    if (d->message_done) {
        flags |= MSP_HTTP_MESSAGE_DONE;
        message_finished(d);
    }
    *used = off;
    return emit(fn, user, dir, d, MSP_HTTP_HEADER, p, off, flags);
}

static int feed_body(dir_state_t *d, msp_http_dir_t dir, const uint8_t *p, size_t len, size_t *used, msp_http_seg_fn fn,
                     void *user, msp_error_t *err)
{
    d->message_done = 0;
    size_t got = http_parser_execute(&d->parser, &d->h->settings, (const char *)p, len);
    if (HTTP_PARSER_ERRNO(&d->parser) != HPE_OK && !d->message_done) {
        return parse_failed(d, dir, err);
    }
    unsigned flags = 0;
    if (d->message_done) {
        flags |= MSP_HTTP_MESSAGE_DONE;
        message_finished(d);
    } else if (got != len) {
        d->failed = MSP_ERR_SYNTAX;
        return msp_error_set(err, d->failed, "http", "%s: the parser stopped inside a body", dir_name(dir));
    }
    *used = got;
    return emit(fn, user, dir, d, MSP_HTTP_BODY, p, got, flags);
}

int msp_http_feed(msp_http_t *h, msp_http_dir_t dir, const uint8_t *p, size_t len, msp_http_seg_fn fn, void *user,
                  msp_error_t *err)
{
    if (h == NULL || (dir != MSP_HTTP_REQUESTS && dir != MSP_HTTP_RESPONSES) || fn == NULL || (p == NULL && len != 0)) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, "http", "msp_http_feed: bad arguments");
    }
    dir_state_t *d = &h->dir[dir];
    if (d->failed != MSP_OK) {
        return msp_error_set(err, d->failed, "http", "%s direction failed earlier", dir_name(dir));
    }
    while (len > 0) {
        if (d->tunnel) {
            return emit(fn, user, dir, d, MSP_HTTP_BODY, p, len, MSP_HTTP_TUNNEL);
        }
        size_t used = 0;
        int rc = d->in_body ? feed_body(d, dir, p, len, &used, fn, user, err)
                            : feed_header(d, dir, p, len, &used, fn, user, err);
        if (rc != MSP_OK) {
            return rc;
        }
        p += used;
        len -= used;
    }
    return MSP_OK;
}

int msp_http_eof(msp_http_t *h, msp_http_dir_t dir, msp_http_seg_fn fn, void *user, msp_error_t *err)
{
    if (h == NULL || (dir != MSP_HTTP_REQUESTS && dir != MSP_HTTP_RESPONSES) || fn == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, "http", "msp_http_eof: bad arguments");
    }
    dir_state_t *d = &h->dir[dir];
    if (d->failed != MSP_OK) {
        return msp_error_set(err, d->failed, "http", "%s direction failed earlier", dir_name(dir));
    }
    if (d->tunnel) {
        return MSP_OK;
    }
    d->message_done = 0;
    http_parser_execute(&d->parser, &h->settings, NULL, 0);
    if (!d->message_done && HTTP_PARSER_ERRNO(&d->parser) == HPE_OK) {
        return MSP_OK; /* between messages */
    }
    if (!d->message_done) {
        d->failed = MSP_ERR_SYNTAX;
        return msp_error_set(err, d->failed, "http", "the %s ended inside a message (%s)", dir_name(dir),
                             d->in_body ? "body" : "header block");
    }
    message_finished(d);
    return emit(fn, user, dir, d, MSP_HTTP_BODY, NULL, 0, MSP_HTTP_MESSAGE_DONE);
}
