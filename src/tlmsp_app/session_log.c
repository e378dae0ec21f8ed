/* The operator's log lines (msp/tlmsp_log.h): text or JSON, one per event. */
#include "msp/tlmsp_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "msp/error.h"
#include "msp/json.h"

void msp_tlmsp_log_record_init(msp_tlmsp_log_record_t *r)
{
    memset(r, 0, sizeof(*r));
    r->duration = -1;
    r->count = -1;
}

const char *msp_tlmsp_log_time(double t, char *out, size_t size)
{
    time_t s = t > 0 ? (time_t)t : 0; /* times before 1970 are not ours to log */
    int ms = t > 0 ? (int)((t - (double)s) * 1000.0) : 0;
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL) {
        memset(&tm, 0, sizeof(tm));
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ms > 999 ? 999 : ms);
    return out;
}

const char *msp_tlmsp_log_outcome(int err, const char **detail)
{
    *detail = NULL;
    if (err == MSP_OK) {
        return "close";
    }
    *detail = msp_error_name(err);
    if (err > 0 && err < 256) {
        return "alert"; /* one we sent */
    }
    return MSP_ERR_IS_PEER_ALERT(err) ? "alert" : "error";
}

int msp_tlmsp_log_format_parse(const char *s, msp_tlmsp_log_format_t *out)
{
    if (s != NULL && strcmp(s, "text") == 0) {
        *out = MSP_TLMSP_LOG_TEXT;
    } else if (s != NULL && strcmp(s, "json") == 0) {
        *out = MSP_TLMSP_LOG_JSON;
    } else {
        return MSP_ERR_ARGUMENT;
    }
    return MSP_OK;
}

static long long millis(double seconds)
{
    return (long long)(seconds * 1000.0 + 0.5);
}

/* ---- text: key=value, quoted when a value has a space, a quote or a backslash ---- */

static void text_str(msp_buf_t *b, const char *key, const char *v)
{
    if (v == NULL) {
        return;
    }
    size_t n = strnlen(v, 1024); /* a line stays within MSP_TLMSP_LOG_LINE_MAX */
    int quote = n == 0 || strcspn(v, " \"\\=") < n;
    msp_buf_printf(b, " %s=%s", key, quote ? "\"" : "");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            msp_buf_printf(b, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            msp_buf_printf(b, "\\x%02x", c);
        } else {
            msp_buf_put_u8(b, c);
        }
    }
    if (quote) {
        msp_buf_puts(b, "\"");
    }
}

static void text_contexts(msp_buf_t *b, const msp_tlmsp_log_record_t *r)
{
    if (r->contexts == NULL) {
        return;
    }
    msp_buf_puts(b, " contexts=");
    for (size_t i = 0; i < r->n_contexts && i < MSP_TLMSP_LOG_MAX_CONTEXTS; i++) {
        msp_buf_printf(b, "%s%u:%s", i > 0 ? "," : "", r->contexts[i].id,
                       r->contexts[i].access != NULL ? r->contexts[i].access : "none");
    }
    if (r->n_contexts == 0) {
        msp_buf_puts(b, "-");
    }
}

static void format_text(const msp_tlmsp_log_record_t *r, msp_buf_t *b)
{
    char ts[32];
    msp_buf_printf(b, "%s msp %s[%ld]: %s", msp_tlmsp_log_time(r->time, ts, sizeof(ts)), r->role, r->pid, r->event);
    if (r->worker > 0) {
        msp_buf_printf(b, " worker=%u", r->worker);
    }
    if (r->id > 0) {
        msp_buf_printf(b, " id=%llu", (unsigned long long)r->id);
    }
    text_str(b, "tag", r->tag);
    text_str(b, "peer", r->peer);
    text_str(b, "next", r->next);
    text_contexts(b, r);
    if (r->has_bytes) {
        msp_buf_printf(b, " bytes_in=%llu bytes_out=%llu", (unsigned long long)r->bytes_in,
                       (unsigned long long)r->bytes_out);
    }
    if (r->duration >= 0) {
        msp_buf_printf(b, " duration_ms=%lld", millis(r->duration));
    }
    if (r->count >= 0) {
        msp_buf_printf(b, " count=%ld", r->count);
    }
    text_str(b, "outcome", r->outcome);
    text_str(b, "detail", r->detail);
    msp_buf_puts(b, "\n");
}

/* ---- JSON: one object per line ---- */

static void json_str(msp_json_t *j, const char *key, const char *v)
{
    if (v != NULL) {
        msp_json_key(j, key);
        msp_json_string_n(j, v, strnlen(v, 1024));
    }
}

static void json_int(msp_json_t *j, const char *key, int64_t v)
{
    msp_json_key(j, key);
    msp_json_int(j, v);
}

static void json_contexts(msp_json_t *j, const msp_tlmsp_log_record_t *r)
{
    if (r->contexts == NULL) {
        return;
    }
    msp_json_key(j, "contexts");
    msp_json_array_begin(j);
    for (size_t i = 0; i < r->n_contexts && i < MSP_TLMSP_LOG_MAX_CONTEXTS; i++) {
        msp_json_object_begin(j);
        json_int(j, "id", r->contexts[i].id);
        json_str(j, "tag", r->contexts[i].tag);
        json_str(j, "access", r->contexts[i].access != NULL ? r->contexts[i].access : "none");
        msp_json_object_end(j);
    }
    msp_json_array_end(j);
}

static int format_json(const msp_tlmsp_log_record_t *r, msp_buf_t *b)
{
    char ts[32];
    msp_json_t j;
    msp_json_init(&j, b, 0);
    msp_json_object_begin(&j);
    json_str(&j, "time", msp_tlmsp_log_time(r->time, ts, sizeof(ts)));
    json_str(&j, "role", r->role);
    json_int(&j, "pid", r->pid);
    if (r->worker > 0) {
        json_int(&j, "worker", r->worker);
    }
    json_str(&j, "event", r->event);
    if (r->id > 0) {
        json_int(&j, "id", (int64_t)r->id);
    }
    json_str(&j, "tag", r->tag);
    json_str(&j, "peer", r->peer);
    json_str(&j, "next", r->next);
    json_contexts(&j, r);
    if (r->has_bytes) {
        json_int(&j, "bytes_in", (int64_t)r->bytes_in);
        json_int(&j, "bytes_out", (int64_t)r->bytes_out);
    }
    if (r->duration >= 0) {
        json_int(&j, "duration_ms", millis(r->duration));
    }
    if (r->count >= 0) {
        json_int(&j, "count", r->count);
    }
    json_str(&j, "outcome", r->outcome);
    json_str(&j, "detail", r->detail);
    msp_json_object_end(&j);
    return msp_json_finish(&j);
}

int msp_tlmsp_log_format(const msp_tlmsp_log_record_t *r, msp_tlmsp_log_format_t format, msp_buf_t *out)
{
    if (r == NULL || r->role == NULL || r->event == NULL || out == NULL) {
        return MSP_ERR_ARGUMENT;
    }
    if (format == MSP_TLMSP_LOG_JSON) {
        return format_json(r, out);
    }
    format_text(r, out);
    return msp_buf_error(out);
}
