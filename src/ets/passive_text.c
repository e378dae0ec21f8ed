/*
 * The passive pipeline's run in words, for the operator's terminal
 * (msp/ets_passive.h): the one-line summary `msp ets decrypt` ends with and
 * the progress line it redraws while it reads a capture file. Sizes and
 * rates in decimal units (kB, MB, GB: what link rates are quoted in).
 */
#include <stdio.h>

#include "msp/ets_passive.h"

void msp_ets_passive_report_event(msp_ets_passive_report_t *r, const msp_ets_event_t *ev)
{
    if (ev->kind == MSP_ETS_EV_UNDECRYPTABLE) {
        unsigned k = (unsigned)ev->reason;
        r->undecryptable[k < MSP_ETS_PASSIVE_REASONS ? k : 0]++;
    }
}

/* "0 B", "512 B", "12.3 kB", "1.2 GB" */
static void put_size(msp_buf_t *out, uint64_t n)
{
    static const char *const units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
    if (n < 1000) {
        msp_buf_printf(out, "%llu B", (unsigned long long)n);
        return;
    }
    double v = (double)n / 1000.0;
    size_t u = 0;
    while (v >= 999.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        u++;
    }
    msp_buf_printf(out, "%.1f %s", v, units[u]);
}

/* ", 12.3 MB/s" of n bytes in us microseconds; nothing when no time passed */
static void put_rate(msp_buf_t *out, const char *sep, uint64_t n, uint64_t us)
{
    if (us == 0) {
        return;
    }
    msp_buf_puts(out, sep);
    put_size(out, (uint64_t)((double)n * 1e6 / (double)us));
    msp_buf_puts(out, "/s");
}

/* " (no_static_key 5, gap 3)": the reasons in their enum order, which is also the order they are documented in */
static void put_reasons(msp_buf_t *out, const msp_ets_passive_report_t *r)
{
    const char *sep = " (";
    for (unsigned k = 0; k < MSP_ETS_PASSIVE_REASONS; k++) {
        if (r->undecryptable[k] != 0) {
            msp_buf_printf(out, "%s%s %llu", sep, msp_ets_reason_name((msp_ets_reason_t)k),
                           (unsigned long long)r->undecryptable[k]);
            sep = ", ";
        }
    }
    if (sep[0] == ',') {
        msp_buf_puts(out, ")");
    }
}

int msp_ets_passive_summary_text(const msp_ets_passive_report_t *r, msp_buf_t *out)
{
    const msp_ets_passive_counts_t *n = &r->counts;
    msp_buf_printf(out, "%llu flow%s, %llu decrypted, %llu undecryptable", (unsigned long long)n->flows,
                   n->flows == 1 ? "" : "s", (unsigned long long)n->decrypted, (unsigned long long)n->undecryptable);
    put_reasons(out, r);
    if (n->empty != 0) {
        msp_buf_printf(out, ", %llu without a TLS 1.3 handshake", (unsigned long long)n->empty);
    }
    msp_buf_puts(out, ", ");
    put_size(out, n->plaintext);
    msp_buf_puts(out, " plaintext, ");
    put_size(out, r->captured);
    msp_buf_printf(out, r->elapsed_us < 1000000u ? " captured in %.2f s" : " captured in %.1f s",
                   (double)r->elapsed_us / 1e6);
    if (r->elapsed_us != 0) {
        put_rate(out, " (", r->captured, r->elapsed_us);
        msp_buf_puts(out, ")");
    }
    if (r->dropped != 0) {
        msp_buf_printf(out, "; %llu packet%s dropped by the capture", (unsigned long long)r->dropped,
                       r->dropped == 1 ? "" : "s");
    }
    msp_buf_puts(out, "\n");
    return msp_buf_error(out);
}

int msp_ets_passive_progress_text(uint64_t done, uint64_t total, uint64_t elapsed_us, uint64_t flows, msp_buf_t *out)
{
    put_size(out, done);
    msp_buf_puts(out, " of ");
    put_size(out, total);
    unsigned pct = total == 0 ? 100u : (unsigned)(done >= total ? 100u : done * 100u / total);
    msp_buf_printf(out, " (%u %%)", pct);
    put_rate(out, ", ", done, elapsed_us);
    msp_buf_printf(out, ", %llu flow%s", (unsigned long long)flows, flows == 1 ? "" : "s");
    return msp_buf_error(out);
}
