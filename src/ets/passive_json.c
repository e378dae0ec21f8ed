/*
 * The passive pipeline's reports as JSON lines (msp/ets_passive.h): one
 * object per line, what `msp ets decrypt --events` writes and an IDS reads.
 * The shapes are pinned by tests/integration (cli_ets.sh, ets_e2e.sh,
 * ets_visibility.sh) and tests/unit/test_ets_render.c: a change here is a
 * change of the output format.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "msp/ets_passive.h"
#include "msp/json.h"

void msp_ets_passive_addr_text(const msp_tcp_flow_info_t *info, int dir, char out[MSP_ETS_PASSIVE_ADDR_TEXT])
{
    char ip[INET6_ADDRSTRLEN] = "";
    inet_ntop(info->ip_version == 6 ? AF_INET6 : AF_INET, info->addr[dir != 0], ip, sizeof(ip));
    snprintf(out, MSP_ETS_PASSIVE_ADDR_TEXT, info->ip_version == 6 ? "[%s]:%u" : "%s:%u", ip, info->port[dir != 0]);
}

/* The last second RFC 3339 can write (9999-12-31T23:59:59Z); a capture claiming later is clamped, never wrapped. */
#define TIME_MAX_S 253402300799ull

/*
 * ,"time":"2026-12-07T23:38:14.085123Z","ts":1796686694.085123 -- the same
 * instant twice, capture time in microseconds: RFC 3339 UTC for a SIEM's
 * date parser, epoch seconds for arithmetic. A conversion, not a clock.
 */
static void put_time(msp_buf_t *out, uint64_t ts_us)
{
    uint64_t sec = ts_us / 1000000, usec = ts_us % 1000000;
    if (sec > TIME_MAX_S) {
        sec = TIME_MAX_S;
        usec = 999999;
    }
    time_t s = (time_t)sec;
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL) {
        memset(&tm, 0, sizeof tm); /* cannot happen below TIME_MAX_S with a 64-bit time_t */
    }
    msp_buf_printf(out, ",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06lluZ\",\"ts\":%llu.%06llu", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned long long)usec,
                   (unsigned long long)sec, (unsigned long long)usec);
}

/*
 * The common start of every line: {"event":"NAME", for a flow's event
 * ,"flow":ID, then the time (put_time). "event" always comes first, so a
 * line can be routed by its prefix.
 */
static void line_begin(msp_buf_t *out, const char *event, uint64_t flow, uint64_t ts_us)
{
    msp_buf_printf(out, "{\"event\":\"%s\"", event);
    if (flow != 0) {
        msp_buf_printf(out, ",\"flow\":%llu", (unsigned long long)flow);
    }
    put_time(out, ts_us);
}

static int line_end(msp_buf_t *out)
{
    msp_buf_puts(out, "}\n");
    return msp_buf_error(out);
}

/* ,"key":"escaped value" */
static void put_str(msp_buf_t *out, const char *key, const char *s, size_t n)
{
    msp_json_t j;
    msp_buf_printf(out, ",\"%s\":", key);
    msp_json_init(&j, out, 0);
    msp_json_string_n(&j, s, n);
}

static const char *dir_name(int dir)
{
    return dir == 0 ? "client" : "server";
}

static const char *suite_name(uint16_t s)
{
    static const char *names[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                                  "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"};
    return s >= 0x1301 && s <= 0x1305 ? names[s - 0x1301] : "unknown";
}

/* The groups a static key can be served for; the probe's msp_ets_group_name knows more, the format knows these. */
static const char *group_name(uint16_t g)
{
    return g == 0x001d ? "x25519" : g == 0x0017 ? "secp256r1" : g == 0 ? "none (psk_ke)" : "other";
}

int msp_ets_passive_flow_json(const msp_tcp_flow_info_t *info, msp_buf_t *out)
{
    char c[MSP_ETS_PASSIVE_ADDR_TEXT], s[MSP_ETS_PASSIVE_ADDR_TEXT];
    msp_ets_passive_addr_text(info, 0, c);
    msp_ets_passive_addr_text(info, 1, s);
    line_begin(out, "flow", info->id, info->first_ts_us); /* "ts" is the first packet's, as it always was */
    msp_buf_printf(out, ",\"client\":\"%s\",\"server\":\"%s\",\"initiator_guessed\":%s", c, s,
                   info->initiator_guessed ? "true" : "false");
    return line_end(out);
}

/* The certificate's visibility information, each entry matched against the key share sent; an entry that cannot be
 * read is said so after the (then empty) list. */
static void put_visibility(msp_buf_t *out, const msp_ets_passive_vis_t *pv)
{
    const msp_ets_visibility_t *vis = pv->vis;
    msp_buf_puts(out, ",\"visibility\":[");
    for (size_t k = 0; k < vis->n_vi; k++) {
        char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
        msp_hex(fp, vis->vi[k].fingerprint, MSP_ETS_FINGERPRINT_LEN);
        msp_buf_printf(out, "%s{\"fingerprint\":\"%s\"", k > 0 ? "," : "", fp);
        put_str(out, "access", vis->vi[k].access, vis->vi[k].access_len);
        msp_buf_printf(out, ",\"matches\":%s}", vis->match[k] ? "true" : "false");
    }
    msp_buf_printf(out, "],\"visibility_matches\":%s", vis->matches ? "true" : "false");
    if (pv->error != MSP_OK) {
        put_str(out, "visibility_error", pv->error_text, strlen(pv->error_text));
    }
}

static void put_handshake(msp_buf_t *out, const msp_ets_event_t *ev, const msp_ets_passive_vis_t *vis)
{
    char fp[2 * MSP_ETS_FINGERPRINT_LEN + 1];
    msp_hex(fp, ev->fingerprint, MSP_ETS_FINGERPRINT_LEN);
    msp_buf_printf(out, ",\"suite\":\"%s\",\"group\":\"%s\"", suite_name(ev->suite), group_name(ev->group));
    put_str(out, "sni", ev->sni, strlen(ev->sni));
    put_str(out, "alpn", ev->alpn, strlen(ev->alpn));
    msp_buf_printf(out, ",\"resumed\":%s,\"hrr\":%s,\"early_data\":\"%s\",\"fingerprint\":\"%s\"",
                   ev->resumed ? "true" : "false", ev->hrr ? "true" : "false",
                   !ev->early_offered   ? "none"
                   : ev->early_accepted ? "accepted"
                                        : "rejected",
                   fp);
    if (vis != NULL && vis->vis != NULL) {
        put_visibility(out, vis);
    }
    if (ev->resumed && ev->issuer_tag != 0) {
        /* the pipeline tags each decryptor with its flow id: the visibility fields above are that flow's */
        msp_buf_printf(out, ",\"resumed_from\":%llu", (unsigned long long)ev->issuer_tag);
    }
}

static const char *event_name(msp_ets_event_kind_t kind)
{
    switch (kind) {
    case MSP_ETS_EV_HANDSHAKE:
        return "handshake";
    case MSP_ETS_EV_KEY_UPDATE:
        return "key_update";
    case MSP_ETS_EV_TICKET:
        return "ticket";
    case MSP_ETS_EV_ALERT:
        return "alert";
    case MSP_ETS_EV_UNDECRYPTABLE:
        return "undecryptable";
    case MSP_ETS_EV_GAP:
        return "gap";
    default:
        return NULL;
    }
}

int msp_ets_passive_event_json(uint64_t flow_id, const msp_ets_event_t *ev, const msp_ets_passive_vis_t *vis,
                               msp_buf_t *out)
{
    const char *name = event_name(ev->kind);
    if (name == NULL) {
        return msp_buf_error(out); /* a kind this format has no line for */
    }
    line_begin(out, name, flow_id, ev->ts_us);
    switch (ev->kind) {
    case MSP_ETS_EV_HANDSHAKE:
        put_handshake(out, ev, vis);
        break;
    case MSP_ETS_EV_KEY_UPDATE:
        msp_buf_printf(out, ",\"dir\":\"%s\",\"generation\":%u", dir_name(ev->dir), ev->generation);
        break;
    case MSP_ETS_EV_TICKET:
        msp_buf_printf(out, ",\"lifetime\":%u,\"max_early_data\":%u,\"ticket_len\":%zu", ev->lifetime,
                       ev->max_early_data, ev->ticket_len);
        break;
    case MSP_ETS_EV_ALERT:
        msp_buf_printf(out, ",\"dir\":\"%s\",\"level\":%u,\"description\":%u", dir_name(ev->dir), ev->alert_level,
                       ev->alert_desc);
        break;
    case MSP_ETS_EV_GAP:
        msp_buf_printf(out,
                       ",\"dir\":\"%s\",\"from\":%llu,\"to\":%llu,\"lost\":%llu,\"gaps\":%u,\"partial\":%llu,"
                       "\"skipped\":%llu,\"records_lost\":%llu,\"records_exact\":%s,\"recovered\":%s",
                       dir_name(ev->dir), (unsigned long long)ev->gap_from, (unsigned long long)ev->gap_to,
                       (unsigned long long)ev->gap_lost, ev->gap_count, (unsigned long long)ev->gap_partial,
                       (unsigned long long)ev->gap_skipped, (unsigned long long)ev->records_lost,
                       ev->records_exact ? "true" : "false", ev->recovered ? "true" : "false");
        break;
    default: /* MSP_ETS_EV_UNDECRYPTABLE */
        msp_buf_printf(out, ",\"reason\":\"%s\"", msp_ets_reason_name(ev->reason));
        put_str(out, "detail", ev->text, strlen(ev->text));
        break;
    }
    return line_end(out);
}

int msp_ets_passive_flow_end_json(const msp_ets_passive_flow_t *f, msp_tcp_close_reason_t reason, msp_buf_t *out)
{
    const msp_tcp_flow_info_t *info = msp_ets_passive_flow_info(f);
    line_begin(out, "flow_end", info->id, info->last_ts_us);
    msp_buf_printf(out, ",\"reason\":\"%s\",\"status\":\"%s\",\"plaintext\":[%llu,%llu],\"lost\":[%llu,%llu]",
                   msp_tcp_close_reason_name(reason), msp_ets_flow_status_name(msp_ets_passive_flow_status(f)),
                   (unsigned long long)msp_ets_passive_flow_plaintext(f, 0),
                   (unsigned long long)msp_ets_passive_flow_plaintext(f, 1), (unsigned long long)info->lost[0],
                   (unsigned long long)info->lost[1]);
    return line_end(out);
}

int msp_ets_passive_summary_json(const msp_ets_passive_t *p, const char *capture_error, msp_buf_t *out)
{
    const msp_tcp_stats_t *st = msp_ets_passive_tcp_stats(p);
    const msp_ets_passive_counts_t *n = msp_ets_passive_counts(p);
    line_begin(out, "summary", 0, st->last_ts_us);
    msp_buf_printf(out,
                   ",\"packets\":%llu,\"bytes\":%llu,\"flows\":%llu,\"decrypted\":%llu,\"undecryptable\":%llu,"
                   "\"empty\":%llu,\"plaintext\":%llu,\"non_tcp\":%llu,\"fragments\":%llu,\"truncated\":%llu,"
                   "\"gaps\":%llu,\"evicted\":%llu,\"midstream\":%llu,\"late\":%llu",
                   (unsigned long long)st->packets, (unsigned long long)st->bytes, (unsigned long long)n->flows,
                   (unsigned long long)n->decrypted, (unsigned long long)n->undecryptable, (unsigned long long)n->empty,
                   (unsigned long long)n->plaintext, (unsigned long long)st->non_tcp, (unsigned long long)st->fragments,
                   (unsigned long long)st->truncated, (unsigned long long)st->gaps, (unsigned long long)st->evicted,
                   (unsigned long long)n->midstream, (unsigned long long)st->late);
    if (capture_error != NULL && capture_error[0] != '\0') {
        put_str(out, "capture_error", capture_error, strlen(capture_error));
    }
    return line_end(out);
}
