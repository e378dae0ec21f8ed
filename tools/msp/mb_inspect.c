/*
 * msp middlebox --icap / --out-pcap (mb_inspect.h).
 *
 * ICAP, byte-stream mode: the containers of a direction that the middlebox
 * can read are held; a message is what the direction carries until it
 * pauses for MSG_IDLE, or MSG_MAX_BYTES / MSG_MAX_CONTAINERS, whichever
 * comes first. Its plaintext goes to the service as the body of a
 * synthetic HTTP message (REQMOD: a POST toward the server; RESPMOD: a 200
 * response toward the client), and the held containers are released on the
 * answer. Longer messages are scanned in parts of MSG_MAX_BYTES (logged
 * once per direction). While a part is with the service, the next one is
 * held behind it, within the engine's bounds (MSP_TLMSP_HOLD_MAX_*: past
 * them the engine ends the session, which fails closed).
 *
 * HTTP mode, when the configuration has contexts tagged `header` and `body`
 * (the endpoints' `--contexts http`) and this middlebox reads both: the
 * framer (msp/tlmsp_http.h) finds the messages in them; a message goes to
 * the service with its own header block as soon as it is complete (a pause
 * or a bound cuts it into parts, each sent with the message's header).
 * A replacement is inserted as a whole message: its header (its length
 * fixed) in `header`, its body in `body`.
 */
#include "mb_inspect.h"

#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "msp/buf.h"
#include "msp/error.h"
#include "msp/ets_pcap.h"
#include "msp/tlmsp_http.h"
#include "msp/tlmsp_icap.h"

#define MSG_IDLE 0.1                    /* s: a pause that ends a message (the activities' hold idle) */
#define MSG_MAX_BYTES ((size_t)1 << 20) /* a part scanned on its own */
#define MSG_MAX_CONTAINERS 1024
#define ICAP_TIMEOUT 10.0 /* s: connect and answer */
#define MAX_CONTAINER 16355

struct insp_site {
    struct ev_loop *loop;
    int icap;
    msp_icap_url_t url;
    const char *url_text;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    long preview;
    int allow204;
    uint8_t hctx, bctx; /* the contexts tagged header and body; 0: no HTTP mode */
    msp_pcap_out_t *pcap;
    const char *pcap_path;
    ev_signal sigint, sigterm;
};

/* The containers of one part, in the order they were held. */
typedef struct part {
    msp_buf_t data; /* byte stream: every byte; HTTP: the body bytes */
    msp_buf_t hdr;  /* HTTP: the header block's bytes, when the part has them */
    int http;
    size_t n;
    uint8_t ctx;   /* the first container's context: where a replacement goes */
    int read_only; /* a container in a context this middlebox may not write */
    size_t *lens;  /* each container's plaintext length */
    size_t cap;
} part_t;

typedef struct insp_dir {
    insp_t *i;
    int to_server;
    part_t scan, next; /* with the service; held behind it */
    msp_io_icap_t *t;
    int next_ready; /* next ended (pause or bound) while scan was with the service */
    int cut_logged;
    ev_timer idle;
    int stream;        /* HTTP framing given up (not HTTP, or a tunnel): a byte stream from now on */
    int msg_done;      /* the framer ended a message in the container being fed */
    int tunnel;        /* the framer said the rest is a tunnel */
    msp_buf_t msg_hdr; /* the header block of the message being held, for its later parts */
} insp_dir_t;

struct insp {
    insp_site_t *s;
    const char *tag;
    msp_io_mb_t **mb;
    struct sockaddr_storage client, server;
    int have_server, blocked, capture_failed;
    int http_off; /* HTTP mode does not apply to this session */
    char peers[176];
    insp_dir_t dir[2]; /* [1]: toward the server */
    msp_http_t *http;  /* HTTP mode: the framer of both directions */
    msp_pcap_out_flow_t *flow;
};

/* ---- the site ---- */

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL); /* the capture is finished and renamed into place on the way out */
}

typedef struct options_wait {
    int done, err;
    char detail[352];
    long preview;
    int allow204, status;
} options_wait_t;

static void options_done(void *user, int err, const msp_icap_resp_info_t *info, const char *detail)
{
    options_wait_t *w = user;
    w->done = 1;
    w->err = err;
    snprintf(w->detail, sizeof(w->detail), "%s", detail);
    if (info != NULL) {
        w->status = info->status;
        w->preview = info->preview;
        w->allow204 = info->allow204;
    }
}

/* OPTIONS at start: the service must answer 200 before any session is taken (fail closed from the start). */
static int icap_options(insp_site_t *s)
{
    options_wait_t w = {0, 0, "", -1, 0, 0};
    msp_io_icap_cfg_t c = {&s->url, (const struct sockaddr *)&s->addr, s->addrlen, ICAP_TIMEOUT, -1, 0};
    msp_io_icap_t *t;
    if (msp_io_icap_new(s->loop, &c, MSP_ICAP_OPTIONS, NULL, 0, NULL, 0, NULL, 0, options_done, &w, &t) != MSP_OK) {
        prog_error("middlebox", "%s: out of memory", s->url_text);
        return 1;
    }
    while (!w.done) {
        ev_run(s->loop, EVRUN_ONCE);
    }
    msp_io_icap_free(t);
    if (w.err != MSP_OK) {
        prog_error("middlebox", "--icap: %s", w.detail);
        return 1;
    }
    if (w.status != 200) {
        prog_error("middlebox", "--icap: %s: OPTIONS answered with ICAP status %d", s->url_text, w.status);
        return 1;
    }
    s->preview = w.preview;
    s->allow204 = w.allow204;
    return 0;
}

/* HTTP mode needs both contexts: the tags `--contexts http` uses. */
static void http_contexts(insp_site_t *s, const msp_tlmsp_cfg_t *cfg)
{
    for (size_t k = 0; k < cfg->n_contexts; k++) {
        if (strcmp(cfg->contexts[k].tag, "header") == 0 && s->hctx == 0) {
            s->hctx = cfg->contexts[k].id;
        } else if (strcmp(cfg->contexts[k].tag, "body") == 0 && s->bctx == 0) {
            s->bctx = cfg->contexts[k].id;
        }
    }
    if (s->hctx == 0 || s->bctx == 0) {
        s->hctx = s->bctx = 0;
    }
}

int insp_site_open(const prog_opts_t *o, const msp_tlmsp_cfg_t *cfg, struct ev_loop *loop, insp_site_t **out)
{
    *out = NULL;
    if (o->icap == NULL && o->out_pcap == NULL) {
        return 0;
    }
    insp_site_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        prog_error("middlebox", "out of memory");
        return 1;
    }
    s->loop = loop;
    http_contexts(s, cfg);
    msp_error_t err;
    msp_error_clear(&err);
    int rc = 0;
    if (o->icap != NULL) {
        s->icap = 1;
        s->url_text = o->icap;
        if (msp_icap_url_parse(o->icap, &s->url, &err) != MSP_OK) {
            prog_error("middlebox", "--icap: %s", err.detail);
            rc = 2;
        } else if (msp_io_icap_resolve(&s->url, &s->addr, &s->addrlen, &err) != MSP_OK) {
            prog_error("middlebox", "--icap: %s", err.detail);
            rc = 1;
        } else {
            rc = icap_options(s);
        }
    }
    if (rc == 0 && o->out_pcap != NULL) {
        s->pcap_path = o->out_pcap;
        if (msp_pcap_out_open(o->out_pcap, &s->pcap, &err) != MSP_OK) {
            prog_error("middlebox", "--out-pcap: %s", err.detail);
            rc = 2;
        } else {
            /* the capture is written when the middlebox stops: SIGINT and SIGTERM stop it cleanly */
            ev_signal_init(&s->sigint, on_stop_signal, SIGINT);
            ev_signal_init(&s->sigterm, on_stop_signal, SIGTERM);
            ev_signal_start(loop, &s->sigint);
            ev_signal_start(loop, &s->sigterm);
        }
    }
    if (rc != 0) {
        insp_site_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void insp_site_close(insp_site_t *s)
{
    if (s == NULL) {
        return;
    }
    msp_error_t err;
    msp_error_clear(&err);
    if (s->pcap != NULL) {
        ev_signal_stop(s->loop, &s->sigint);
        ev_signal_stop(s->loop, &s->sigterm);
        if (msp_pcap_out_close(s->pcap, &err) != MSP_OK) {
            prog_error("middlebox", "--out-pcap: %s", err.detail);
        }
    }
    free(s);
}

/* ---- parts ---- */

static void part_init(part_t *p)
{
    memset(p, 0, sizeof(*p));
    msp_buf_init(&p->data, MSP_TLMSP_HOLD_MAX_BYTES);
    msp_buf_init(&p->hdr, MSP_HTTP_DEFAULT_MAX_HEADER);
}

static void part_clear(part_t *p)
{
    p->data.len = 0;
    p->hdr.len = 0;
    p->http = 0;
    p->n = 0;
    p->read_only = 0;
}

static void part_free(part_t *p)
{
    msp_buf_free(&p->data);
    msp_buf_free(&p->hdr);
    free(p->lens);
}

static int part_add(part_t *p, uint8_t ctx, int rw, const uint8_t *d, size_t len)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        size_t *l = cap <= MSP_TLMSP_HOLD_MAX_CONTAINERS ? realloc(p->lens, cap * sizeof(*l)) : NULL;
        if (l == NULL) {
            return -1;
        }
        p->lens = l;
        p->cap = cap;
    }
    if (d != NULL && msp_buf_put(&p->data, d, len) != MSP_OK) {
        return -1;
    }
    if (p->n == 0) {
        p->ctx = ctx;
    }
    p->read_only |= !rw;
    p->lens[p->n++] = len;
    return 0;
}

static void part_swap(part_t *a, part_t *b)
{
    part_t t = *a;
    *a = *b;
    *b = t;
}

/* ---- sessions ---- */

static const char *dir_name(int to_server)
{
    return to_server ? "client->server" : "server->client";
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t size)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, size, "?");
    } else {
        snprintf(out, size, ss->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    }
}

static const char *peers(insp_t *i)
{
    char c[80], s[80] = "?";
    format_addr(&i->client, c, sizeof(c));
    if (i->have_server) {
        format_addr(&i->server, s, sizeof(s));
    }
    snprintf(i->peers, sizeof(i->peers), "%s -> %s", c, s);
    return i->peers;
}

/* The session ends with a fatal alert both endpoints see; what is held never goes out. */
static void end_session(insp_t *i, uint8_t desc)
{
    i->blocked = 1;
    for (int to_server = 1; to_server >= 0 && *i->mb != NULL; to_server--) {
        msp_io_mb_alert(*i->mb, to_server, 0, 2, desc);
    }
}

static void start_scan(insp_dir_t *d);

static void release(insp_dir_t *d, const msp_tlmsp_verdict_t *v, const uint8_t *const *data, const size_t *len)
{
    if (*d->i->mb != NULL && msp_io_mb_release(*d->i->mb, d->to_server, d->scan.n, v, data, len) != MSP_OK) {
        prog_error("middlebox", "%s: %s: cannot release %zu held containers", d->i->tag, peers(d->i), d->scan.n);
    }
}

static void release_all(insp_dir_t *d, msp_tlmsp_verdict_t verdict)
{
    msp_tlmsp_verdict_t *v = calloc(d->scan.n, sizeof(*v));
    if (v == NULL) {
        prog_error("middlebox", "%s: %s: out of memory: session ended", d->i->tag, peers(d->i));
        end_session(d->i, MSP_ALERT_INTERNAL_ERROR);
        return;
    }
    for (size_t k = 0; k < d->scan.n; k++) {
        v[k] = verdict;
    }
    release(d, v, NULL, NULL);
    free(v);
}

/*
 * The service's message replaces the part, as this middlebox's modification: its bytes fill the held
 * containers in turn (REPLACE, at most MAX_CONTAINER each), containers left over are deleted, and what
 * does not fit is inserted after them (toward_client: the part is deleted and the message goes back to
 * the client, as a blocked request's answer does).
 */
static void replace_part(insp_dir_t *d, const uint8_t *p, size_t len, int toward_client)
{
    size_t n = d->scan.n;
    msp_tlmsp_verdict_t *v = calloc(n, sizeof(*v));
    const uint8_t **data = calloc(n, sizeof(*data));
    size_t *dl = calloc(n, sizeof(*dl));
    if (v == NULL || data == NULL || dl == NULL) {
        prog_error("middlebox", "%s: %s: out of memory: session ended", d->i->tag, peers(d->i));
        end_session(d->i, MSP_ALERT_INTERNAL_ERROR);
    } else {
        size_t off = 0;
        for (size_t k = 0; k < n; k++) {
            size_t take = toward_client ? 0 : len - off < MAX_CONTAINER ? len - off : MAX_CONTAINER;
            v[k] = take > 0 ? MSP_TLMSP_REPLACE : MSP_TLMSP_DELETE;
            data[k] = p + off;
            dl[k] = take;
            off += take;
        }
        uint8_t ctx = d->scan.ctx;
        release(d, v, (const uint8_t *const *)data, dl);
        if (off < len && *d->i->mb != NULL) {
            msp_io_mb_send(*d->i->mb, toward_client ? 0 : d->to_server, ctx, p + off, len - off);
        }
    }
    free(v);
    free(data);
    free(dl);
}

/*
 * HTTP mode: the part's containers are deleted and the service's message is inserted whole, its header (with a
 * Content-Length for the body as it is) in `header` and its body in `body`; a part that carried no header (a
 * later part of a message) gets only the body.
 */
static void replace_http(insp_dir_t *d, const msp_icap_resp_info_t *r, int toward_client)
{
    insp_t *i = d->i;
    int to_server = toward_client ? 0 : d->to_server;
    msp_buf_t h;
    msp_buf_init(&h, MSP_HTTP_DEFAULT_MAX_HEADER + 64);
    size_t blen = r->has_body ? r->body_len : 0;
    if (r->http_hdr != NULL && (d->scan.hdr.len > 0 || toward_client) &&
        msp_icap_http_set_length(r->http_hdr, r->http_hdr_len, blen, &h) != MSP_OK) {
        prog_error("middlebox", "%s: %s: the ICAP answer's header is too long: session ended", i->tag, peers(i));
        end_session(i, MSP_ALERT_INTERNAL_ERROR);
        msp_buf_free(&h);
        return;
    }
    release_all(d, MSP_TLMSP_DELETE);
    if (h.len > 0 && *i->mb != NULL) {
        msp_io_mb_send(*i->mb, to_server, i->s->hctx, h.base, h.len);
    }
    if (blen > 0 && *i->mb != NULL) {
        msp_io_mb_send(*i->mb, to_server, i->s->bctx, r->body, blen);
    }
    msp_buf_free(&h);
}

/* A verdict that only blocking can honour on a context this middlebox may not write. */
static void block(insp_dir_t *d, const msp_icap_resp_info_t *r, const char *why)
{
    insp_t *i = d->i;
    prog_error("middlebox",
               "%s: %s: blocked %s data in context %u: ICAP %d%s%.0d%s%s%s%s%s from %s (%s); session ended with "
               "access_denied",
               i->tag, peers(i), dir_name(d->to_server), d->scan.ctx, r->status, r->http_status ? " HTTP " : "",
               r->http_status, r->infection[0] ? ", X-Infection-Found: " : "", r->infection,
               r->virus_id[0] ? ", X-Virus-ID: " : "", r->virus_id, "", i->s->url_text, why);
    end_session(i, MSP_ALERT_ACCESS_DENIED);
}

static void verdict(insp_dir_t *d, const msp_icap_resp_info_t *r)
{
    int same = (r->is_response != d->to_server) &&
               (r->has_body ? r->body_len == d->scan.data.len && memcmp(r->body, d->scan.data.base, r->body_len) == 0
                            : d->scan.data.len == 0);
    if (r->status == 204 || (r->status == 200 && same && r->infection[0] == '\0' && r->virus_id[0] == '\0')) {
        release_all(d, MSP_TLMSP_FORWARD);
        return;
    }
    if (r->status != 200) {
        prog_error("middlebox", "%s: %s: ICAP %s answered %d for %s data: session ended (fail closed)", d->i->tag,
                   peers(d->i), d->i->s->url_text, r->status, dir_name(d->to_server));
        end_session(d->i, MSP_ALERT_INTERNAL_ERROR);
        return;
    }
    if (d->scan.read_only) {
        block(d, r, "the context is read-only here");
        return;
    }
    /* a request answered with a response: the request stops here, the answer goes back to the client */
    int toward_client = d->to_server && r->is_response;
    prog_error("middlebox", "%s: %s: %s data in context %u replaced by the ICAP answer (%zu bytes%s%s%s%s) from %s",
               d->i->tag, peers(d->i), dir_name(d->to_server), d->scan.ctx, r->body_len,
               r->infection[0] ? ", X-Infection-Found: " : "", r->infection, r->virus_id[0] ? ", X-Virus-ID: " : "",
               r->virus_id, d->i->s->url_text);
    if (d->scan.http) {
        replace_http(d, r, toward_client);
    } else {
        replace_part(d, r->has_body ? r->body : NULL, r->has_body ? r->body_len : 0, toward_client);
    }
}

static void scan_done(void *user, int err, const msp_icap_resp_info_t *info, const char *detail)
{
    insp_dir_t *d = user;
    msp_io_icap_t *t = d->t;
    d->t = NULL; /* freed below, after info (which it owns) is used */
    if (d->i->blocked) {
        /* nothing more goes out of this session */
    } else if (err != MSP_OK) {
        prog_error("middlebox", "%s: %s: ICAP: %s: session ended (fail closed)", d->i->tag, peers(d->i), detail);
        end_session(d->i, MSP_ALERT_INTERNAL_ERROR);
    } else {
        verdict(d, info);
    }
    msp_io_icap_free(t);
    part_clear(&d->scan);
    if (!d->i->blocked && *d->i->mb != NULL && d->next_ready) {
        start_scan(d);
    }
}

/* The part being scanned goes to the service with these HTTP headers (res: RESPMOD only). */
static void icap_start(insp_dir_t *d, const void *req, size_t req_len, const void *res, size_t res_len)
{
    insp_t *i = d->i;
    msp_io_icap_cfg_t c = {
        &i->s->url, (const struct sockaddr *)&i->s->addr, i->s->addrlen, ICAP_TIMEOUT, i->s->preview, i->s->allow204};
    if (msp_io_icap_new(i->s->loop, &c, d->to_server ? MSP_ICAP_REQMOD : MSP_ICAP_RESPMOD, req, req_len, res, res_len,
                        d->scan.data.base, d->scan.data.len, scan_done, d, &d->t) != MSP_OK) {
        prog_error("middlebox", "%s: %s: ICAP: out of memory: session ended (fail closed)", i->tag, peers(i));
        end_session(i, MSP_ALERT_INTERNAL_ERROR);
    }
}

/*
 * HTTP mode: the message's own header block (a later part of a message: the one its first part had); a
 * response goes with the last request header seen toward the server (exact unless requests are pipelined).
 */
static void start_scan_http(insp_dir_t *d)
{
    static const char get[] = "GET / HTTP/1.1\r\nHost: tlmsp\r\n\r\n";
    const msp_buf_t *hdr = d->scan.hdr.len > 0 ? &d->scan.hdr : &d->msg_hdr;
    const msp_buf_t *req = &d->i->dir[1].msg_hdr;
    if (d->to_server) {
        icap_start(d, hdr->base, hdr->len, NULL, 0);
    } else if (req->len == 0) {
        icap_start(d, get, sizeof(get) - 1, hdr->base, hdr->len);
    } else {
        icap_start(d, req->base, req->len, hdr->base, hdr->len);
    }
}

/* The part held so far goes to the service (the next one collects behind it). */
static void start_scan(insp_dir_t *d)
{
    d->next_ready = 0;
    if (d->next.n == 0) {
        return;
    }
    part_swap(&d->scan, &d->next);
    if (d->scan.http) {
        start_scan_http(d);
        return;
    }
    char req[160], res[160];
    int ql = snprintf(req, sizeof(req), "%s /tlmsp/context-%u HTTP/1.1\r\nHost: tlmsp\r\n%s",
                      d->to_server ? "POST" : "GET", d->scan.ctx, d->to_server ? "" : "\r\n");
    int rl = 0;
    if (d->to_server) {
        ql += snprintf(req + ql, sizeof(req) - (size_t)ql,
                       "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n", d->scan.data.len);
    } else {
        rl = snprintf(res, sizeof(res),
                      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                      d->scan.data.len);
    }
    icap_start(d, req, (size_t)ql, res, (size_t)rl);
}

/* The part ends (a pause, or a bound): scanned now, or after the one with the service. */
static void part_ready(insp_dir_t *d)
{
    ev_timer_stop(d->i->s->loop, &d->idle);
    if (d->t == NULL) {
        start_scan(d);
    } else {
        d->next_ready = 1;
    }
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    part_ready(w->data);
}

insp_t *insp_new(insp_site_t *s, const char *tag, msp_io_mb_t **mb, int client_fd)
{
    if (s == NULL) {
        return NULL;
    }
    insp_t *i = calloc(1, sizeof(*i));
    if (i == NULL) {
        prog_error("middlebox", "%s: out of memory", tag);
        return NULL;
    }
    i->s = s;
    i->tag = tag;
    i->mb = mb;
    socklen_t sl = sizeof(i->client);
    if (getpeername(client_fd, (struct sockaddr *)&i->client, &sl) != 0) {
        i->client.ss_family = AF_UNSPEC;
    }
    for (int k = 0; k < 2; k++) {
        insp_dir_t *d = &i->dir[k];
        d->i = i;
        d->to_server = k;
        part_init(&d->scan);
        part_init(&d->next);
        msp_buf_init(&d->msg_hdr, MSP_HTTP_DEFAULT_MAX_HEADER);
        ev_timer_init(&d->idle, on_idle, MSG_IDLE, 0);
        d->idle.data = d;
    }
    return i;
}

void insp_next_hop(insp_t *i, int fd)
{
    if (i == NULL || fd < 0) {
        return;
    }
    socklen_t sl = sizeof(i->server);
    i->have_server = getpeername(fd, (struct sockaddr *)&i->server, &sl) == 0;
}

static uint64_t now_us(insp_t *i)
{
    return (uint64_t)(ev_now(i->s->loop) * 1e6);
}

/* The capture: one TCP flow per session, both directions, every readable context in the order it passed. */
static void capture(insp_t *i, int to_server, const uint8_t *p, size_t len)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (i->flow == NULL && (!i->have_server || i->capture_failed)) {
        return; /* without the server's address there is no flow to write (logged once) */
    }
    if (i->flow == NULL &&
        msp_pcap_out_flow_begin_peers(i->s->pcap, (const struct sockaddr *)&i->client,
                                      (const struct sockaddr *)&i->server, now_us(i), &i->flow, &err) != MSP_OK) {
        prog_error("middlebox", "%s: %s: --out-pcap: %s", i->tag, peers(i), err.detail);
        i->flow = NULL;
        i->capture_failed = 1; /* the session goes on; its flow is missing from the capture */
        return;
    }
    if (msp_pcap_out_data(i->s->pcap, i->flow, to_server ? 0 : 1, p, len, now_us(i), &err) != MSP_OK) {
        prog_error("middlebox", "%s: %s: --out-pcap: %s", i->tag, peers(i), err.detail);
    }
}

/* HTTP mode for the session, decided at its first container: both contexts exist and this middlebox reads both. */
static int http_mode(insp_t *i)
{
    if (i->s->hctx == 0 || i->http_off) {
        return 0;
    }
    msp_tlmsp_mbox_t *m = *i->mb != NULL ? msp_io_mb_mbox(*i->mb) : NULL;
    if (i->http == NULL &&
        (m == NULL || msp_tlmsp_mbox_access(m, i->s->hctx) == MSP_TLMSP_ACCESS_NONE ||
         msp_tlmsp_mbox_access(m, i->s->bctx) == MSP_TLMSP_ACCESS_NONE || msp_http_new(NULL, &i->http) != MSP_OK)) {
        i->http_off = 1;
        return 0;
    }
    return 1;
}

/* The framer's segments: header bytes and body bytes into the part, the message's end noted. */
static int on_segment(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg)
{
    insp_dir_t *d = user;
    (void)dir;
    part_t *p = &d->next;
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
 * A container of the header or body context through the framer. What is not HTTP/1.x (or becomes a tunnel) is
 * scanned as a byte stream from then on, said once: the whole container is added, so no byte escapes the scan.
 */
static int http_feed(insp_dir_t *d, const uint8_t *p, size_t len)
{
    insp_t *i = d->i;
    msp_error_t err;
    msp_error_clear(&err);
    int rc = msp_http_feed(i->http, d->to_server ? MSP_HTTP_REQUESTS : MSP_HTTP_RESPONSES, p, len, on_segment, d, &err);
    if (rc == MSP_ERR_LIMIT && err.detail[0] == '\0') {
        return -1; /* our own buffers: too much held */
    }
    if (rc != MSP_OK || d->tunnel) {
        prog_error("middlebox", "%s: %s: %s data %s: scanned as a byte stream from here", i->tag, peers(i),
                   dir_name(d->to_server), rc != MSP_OK ? err.detail : "became a tunnel (upgrade or CONNECT)");
        d->stream = 1;
        d->next.http = 0;
        d->next.hdr.len = 0;
        if (rc != MSP_OK) {
            d->next.data.len = 0; /* the part's bytes again, whole, as a stream */
            return msp_buf_put(&d->next.data, p, len) == MSP_OK ? 0 : -1;
        }
    }
    return 0;
}

int insp_container(insp_t *i, int to_server, msp_tlmsp_kind_t kind, uint8_t ctx, uint8_t access, const uint8_t *p,
                   size_t len, msp_tlmsp_verdict_t *v)
{
    if (i == NULL || kind != MSP_TLMSP_DATA || p == NULL) {
        return 0;
    }
    if (i->s->pcap != NULL) {
        capture(i, to_server, p, len);
    }
    if (!i->s->icap) {
        return 0;
    }
    insp_dir_t *d = &i->dir[to_server ? 1 : 0];
    *v = MSP_TLMSP_HOLD;
    if (i->blocked) {
        return 1; /* held for good: the session is ending */
    }
    int http = http_mode(i) && !d->stream && (ctx == i->s->hctx || ctx == i->s->bctx);
    if (part_add(&d->next, ctx, access == MSP_TLMSP_ACCESS_RW, http ? NULL : p, len) != 0 ||
        (http && http_feed(d, p, len) != 0)) {
        prog_error("middlebox", "%s: %s: too much held: session ended (fail closed)", i->tag, peers(i));
        end_session(i, MSP_ALERT_INTERNAL_ERROR);
        return 1;
    }
    if (d->msg_done) {
        d->msg_done = 0;
        part_ready(d); /* a whole HTTP message: no need to wait for a pause */
    } else if (d->next.data.len >= MSG_MAX_BYTES || d->next.n >= MSG_MAX_CONTAINERS) {
        if (!d->cut_logged) {
            prog_error("middlebox",
                       "%s: %s: %s data over %zu bytes (or %d containers) without a pause: scanned in parts of that "
                       "size (a signature across two parts can be missed)",
                       i->tag, peers(i), dir_name(to_server), MSG_MAX_BYTES, MSG_MAX_CONTAINERS);
            d->cut_logged = 1;
        }
        part_ready(d);
    } else if (!d->next_ready) {
        ev_timer_stop(i->s->loop, &d->idle);
        ev_timer_set(&d->idle, MSG_IDLE, 0);
        ev_timer_start(i->s->loop, &d->idle);
    }
    return 1;
}

void insp_closed(insp_t *i)
{
    if (i == NULL) {
        return;
    }
    for (int k = 0; k < 2; k++) {
        ev_timer_stop(i->s->loop, &i->dir[k].idle);
        msp_io_icap_free(i->dir[k].t);
        i->dir[k].t = NULL;
    }
    if (i->flow != NULL) {
        msp_error_t err;
        msp_error_clear(&err);
        if (msp_pcap_out_flow_end(i->s->pcap, i->flow, now_us(i), &err) != MSP_OK) {
            prog_error("middlebox", "%s: --out-pcap: %s", i->tag, err.detail);
        }
        i->flow = NULL;
    }
}

void insp_free(insp_t *i)
{
    if (i == NULL) {
        return;
    }
    insp_closed(i);
    for (int k = 0; k < 2; k++) {
        part_free(&i->dir[k].scan);
        part_free(&i->dir[k].next);
        msp_buf_free(&i->dir[k].msg_hdr);
    }
    msp_http_free(i->http);
    free(i);
}
