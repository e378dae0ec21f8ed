/*
 * The passive ETS middlebox (ets.md 7), sans-IO: captured packets in, per
 * flow decrypted TLS 1.3 out. It chains the TCP layer (ets_tcp.h: decoding,
 * flow table, reassembly) into one decryptor per connection (ets_dec.h) and
 * checks each server certificate's visibility information against the key
 * share the server sent (ets_probe.h), parsing a certificate once while the
 * next connection shows the same one.
 *
 *   msp_ets_passive_cfg_t cfg;
 *   msp_ets_passive_cfg_default(&cfg);
 *   cfg.cb = &my_callbacks;  cfg.arg = me;
 *   msp_ets_passive_t *p;
 *   msp_ets_passive_new(&cfg, &p);
 *   msp_ets_passive_add_key(p, static_key, &err);          // or msp_ets_passive_add_keypkg
 *   for each captured packet:
 *       msp_ets_passive_packet(p, ts_us, link, bytes, caplen, len);
 *   msp_ets_passive_finish(p);                               // end of input: every flow ends
 *   ... msp_ets_passive_counts(p), msp_ets_passive_tcp_stats(p), msp_ets_passive_error(p, &err) ...
 *   msp_ets_passive_free(p);
 *
 * Time is the packets' timestamps, never the wall clock. Callbacks run
 * inside packet/finish (or a driver feeding msp_ets_passive_tcp); they must
 * not call packet, finish or free. Everything a callback gets is valid only
 * during the call, except the flow, which lives until its flow_end returns.
 * Bounds: the TCP limits of cfg.tcp, MSP_ETS_DEC_* per connection,
 * cfg.max_tickets PSKs, MSP_ETS_DEC_MAX_KEYS static keys, one certificate
 * (at most MSP_ETS_DEC_MAX_CERT_MSG bytes) remembered.
 */
#ifndef MSP_ETS_PASSIVE_H
#define MSP_ETS_PASSIVE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "msp/api.h"
#include "msp/buf.h"
#include "msp/error.h"
#include "msp/ets_dec.h"
#include "msp/ets_keypkg.h"
#include "msp/ets_probe.h"
#include "msp/ets_tcp.h"

#define MSP_ETS_PASSIVE_TICKETS_DEFAULT 65536u /* PSKs kept for resumptions */
#define MSP_ETS_PASSIVE_MAX_KEYLOG 256         /* bytes of one key log line, newline included */

typedef struct msp_ets_passive msp_ets_passive_t;

/** One TCP connection as the pipeline sees it; owned by the pipeline. */
typedef struct msp_ets_passive_flow msp_ets_passive_flow_t;

/** How a flow ended up. */
typedef enum msp_ets_flow_status {
    MSP_ETS_FLOW_EMPTY = 0,     /* no TLS 1.3 handshake completed, nothing undecryptable either */
    MSP_ETS_FLOW_DECRYPTED,     /* the handshake was followed: everything after it decrypts */
    MSP_ETS_FLOW_UNDECRYPTABLE, /* an MSP_ETS_EV_UNDECRYPTABLE event said why */
} msp_ets_flow_status_t;

/** "empty", "decrypted", "undecryptable". */
MSP_API const char *msp_ets_flow_status_name(msp_ets_flow_status_t s);

/** The visibility check of a handshake's server certificate. */
typedef struct msp_ets_passive_vis {
    const msp_ets_visibility_t *vis; /* entries matched against the handshake's key share; empty on error */
    int error;                       /* MSP_OK, or why the entries could not be read (msp_ets_visibility_read) */
    const char *error_text;          /* "" or one line */
} msp_ets_passive_vis_t;

typedef struct msp_ets_passive_cb {
    /* a new TCP connection (msp_ets_passive_flow_info says which) */
    void (*flow_open)(void *arg, msp_ets_passive_flow_t *flow);
    /* decrypted application data of direction dir (0: client to server), from the packet at ts_us */
    void (*plaintext)(void *arg, msp_ets_passive_flow_t *flow, int dir, const uint8_t *p, size_t n, uint64_t ts_us);
    /*
     * A decryptor event (ets_dec.h): HANDSHAKE, KEY_UPDATE, TICKET, ALERT,
     * UNDECRYPTABLE (the flow's error; nothing more is decrypted of it).
     * A flow whose start was not seen (no SYN: msp_tcp_flow_info_t
     * initiator_guessed) that fails before any ClientHello gets reason
     * MSP_ETS_R_MIDSTREAM, "capture began mid-connection" and the
     * decryptor's own words: it was never decryptable from this capture,
     * which is no fault of the keys or of the decryptor (counts.midstream).
     * vis: for a HANDSHAKE with a server certificate (a full handshake),
     * its visibility check. For a resumption whose ticket a flow of this
     * pipeline issued (ev->issuer_tag is that flow's id), that connection's
     * verdict, inherited (for a resumption of a resumption, the full
     * handshake's at the start of the chain); error MSP_ERR_NOT_FOUND with
     * no entries when it was not kept with the ticket. NULL otherwise.
     */
    void (*event)(void *arg, msp_ets_passive_flow_t *flow, const msp_ets_event_t *ev, const msp_ets_passive_vis_t *vis);
    /* one NSS key log (SSLKEYLOGFILE) line, "LABEL <client_random> <secret>\n", len bytes */
    void (*keylog)(void *arg, msp_ets_passive_flow_t *flow, const char *line, size_t len);
    /* the connection is over (status, byte counts final); the flow is freed when this returns */
    void (*flow_end)(void *arg, msp_ets_passive_flow_t *flow, msp_tcp_close_reason_t reason);
} msp_ets_passive_cb_t;

typedef struct msp_ets_passive_cfg {
    msp_tcp_config_t tcp;           /* flow table and reassembly limits */
    size_t max_tickets;             /* PSKs kept; 0: none (resumptions are then undecryptable) */
    const msp_ets_passive_cb_t *cb; /* any member may be NULL; cb may be NULL */
    void *arg;
} msp_ets_passive_cfg_t;

/** TCP defaults (msp_tcp_config_default), MSP_ETS_PASSIVE_TICKETS_DEFAULT tickets, no callbacks. */
MSP_API void msp_ets_passive_cfg_default(msp_ets_passive_cfg_t *cfg);

/** MSP_OK; MSP_ERR_ARGUMENT for a bad config; MSP_ERR_NO_MEMORY. */
MSP_API int msp_ets_passive_new(const msp_ets_passive_cfg_t *cfg, msp_ets_passive_t **out);
/** NULL is ignored. */
MSP_API void msp_ets_passive_free(msp_ets_passive_t *p);

/**
 * Adds a static X25519 or P-256 private key (up-referenced). A key already
 * held (same key share) is skipped with MSP_OK. MSP_ERR_ARGUMENT for another
 * kind of key, MSP_ERR_LIMIT beyond MSP_ETS_DEC_MAX_KEYS.
 */
MSP_API int msp_ets_passive_add_key(msp_ets_passive_t *p, EVP_PKEY *key, msp_error_t *err);

/** Adds every static (Type A) key of a decoded key package (ets_keypkg.h), as msp_ets_passive_add_key. */
MSP_API int msp_ets_passive_add_keypkg(msp_ets_passive_t *p, const msp_ets_keypkg_t *pkg, msp_error_t *err);

/** Static keys held. */
MSP_API size_t msp_ets_passive_key_count(const msp_ets_passive_t *p);

/**
 * Feeds one captured packet (link type as ets_tcp.h, caplen bytes at
 * bytes, len on the wire). Packets that are not TCP are counted and
 * skipped with MSP_OK; MSP_ERR_ARGUMENT for an unsupported link type;
 * MSP_ERR_NO_MEMORY (the packet is lost, see msp_ets_passive_error).
 */
MSP_API int msp_ets_passive_packet(msp_ets_passive_t *p, uint64_t ts_us, int link, const uint8_t *bytes, size_t caplen,
                                   size_t len);

/** The TCP table packets go into, for a driver that feeds it itself (msp_pcap_in_run): same as packet(). */
MSP_API msp_tcp_t *msp_ets_passive_tcp(msp_ets_passive_t *p);

/** End of input: every open flow ends (holes reported, handshakes cut short reported). */
MSP_API void msp_ets_passive_finish(msp_ets_passive_t *p);

typedef struct msp_ets_passive_counts {
    uint64_t flows;             /* opened */
    uint64_t decrypted;         /* ended with status decrypted */
    uint64_t undecryptable;     /* ended with status undecryptable */
    uint64_t empty;             /* ended with status empty */
    uint64_t plaintext;         /* application data bytes handed out */
    uint64_t visibility_errors; /* handshakes whose certificate's visibility information could not be read */
    uint64_t midstream;         /* of undecryptable: the capture began mid-connection (reason MSP_ETS_R_MIDSTREAM) */
} msp_ets_passive_counts_t;

MSP_API const msp_ets_passive_counts_t *msp_ets_passive_counts(const msp_ets_passive_t *p);
MSP_API const msp_tcp_stats_t *msp_ets_passive_tcp_stats(const msp_ets_passive_t *p);

/**
 * MSP_OK, or the first failure of the pipeline itself (no memory for a
 * flow or a decryptor: that connection was not followed), with err filled.
 */
MSP_API int msp_ets_passive_error(const msp_ets_passive_t *p, msp_error_t *err);

/* ---- a flow, inside the callbacks ---- */

/** Id (1, 2, ... in order of opening), addresses, ports, times, bytes lost per direction. */
MSP_API const msp_tcp_flow_info_t *msp_ets_passive_flow_info(const msp_ets_passive_flow_t *f);
MSP_API msp_ets_flow_status_t msp_ets_passive_flow_status(const msp_ets_passive_flow_t *f);
/** Application data bytes handed out for direction dir so far. */
MSP_API uint64_t msp_ets_passive_flow_plaintext(const msp_ets_passive_flow_t *f, int dir);
/** Nonzero when the handshake's certificate carried visibility information that could not be read. */
MSP_API int msp_ets_passive_flow_visibility_error(const msp_ets_passive_flow_t *f);
/** The caller's own pointer for this flow (NULL until set). */
MSP_API void msp_ets_passive_flow_set_user(msp_ets_passive_flow_t *f, void *user);
MSP_API void *msp_ets_passive_flow_user(const msp_ets_passive_flow_t *f);

/* ---- the reports as JSON lines (what `msp ets decrypt --events` writes) ----
 *
 * Each call appends one line, a JSON object and "\n", to out and returns
 * MSP_OK or out's (sticky) error. Every object starts with
 * {"event":"NAME","flow":ID (summary: no flow), then "time" (RFC 3339 UTC,
 * microseconds) and "ts" (the same instant, epoch seconds): capture time,
 * never the clock. Every member is documented in docs/ets-events.md and
 * docs/ets-events.schema.json. Call them from the callbacks of the same
 * name; they only read what they are given.
 */

#define MSP_ETS_PASSIVE_ADDR_TEXT 64 /* "[IPv6]:port" and its NUL */

/** "10.0.0.1:443" or "[2001:db8::1]:443": the address and port of direction dir's sender (0: the client). */
MSP_API void msp_ets_passive_addr_text(const msp_tcp_flow_info_t *info, int dir, char out[MSP_ETS_PASSIVE_ADDR_TEXT]);

/** "flow": addresses, first timestamp, whether the initiator was guessed (flow_open). */
MSP_API int msp_ets_passive_flow_json(const msp_tcp_flow_info_t *info, msp_buf_t *out);

/**
 * "handshake" (with vis: the certificate's visibility entries; a resumption
 * with ev->issuer_tag set: "resumed_from", the issuing flow), "key_update",
 * "ticket", "alert", "undecryptable" (event), for flow flow_id. A kind
 * without a line appends nothing.
 */
MSP_API int msp_ets_passive_event_json(uint64_t flow_id, const msp_ets_event_t *ev, const msp_ets_passive_vis_t *vis,
                                       msp_buf_t *out);

/** "flow_end": why, the flow's status, plaintext and lost bytes per direction (flow_end). */
MSP_API int msp_ets_passive_flow_end_json(const msp_ets_passive_flow_t *f, msp_tcp_close_reason_t reason,
                                          msp_buf_t *out);

/**
 * "summary": packet, flow and byte counts of the pipeline (after
 * msp_ets_passive_finish); capture_error (NULL or "": none) says why the
 * input ended early.
 */
MSP_API int msp_ets_passive_summary_json(const msp_ets_passive_t *p, const char *capture_error, msp_buf_t *out);

/**
 * Adds the counts, TCP statistics and first failure of from into into: pipelines fed side by side (the
 * workers of ets_workers.h, each given its share of the flows) summed for one summary. Every count is a
 * sum (buffered_peak too: the most the pipelines may have held together). into is usually one that was never
 * fed; from is not changed.
 */
MSP_API void msp_ets_passive_add_counts(msp_ets_passive_t *into, const msp_ets_passive_t *from);

/* ---- the run in words, for an operator (what `msp ets decrypt` prints on stderr) ---- */

#define MSP_ETS_PASSIVE_REASONS 32 /* room for every msp_ets_reason_t */

/** What a run's summary says: the caller fills it (counts, bytes, its own clock) and tallies the reasons. */
typedef struct msp_ets_passive_report {
    msp_ets_passive_counts_t counts;                 /* msp_ets_passive_counts (summed over pipelines) */
    uint64_t undecryptable[MSP_ETS_PASSIVE_REASONS]; /* flows per msp_ets_reason_t (msp_ets_passive_report_event) */
    uint64_t captured;                               /* captured bytes read (msp_tcp_stats_t.bytes) */
    uint64_t elapsed_us;                             /* how long the run took, by the caller's clock */
    uint64_t dropped; /* packets lost before the pipeline saw them (a live capture's kernel drops) */
} msp_ets_passive_report_t;

/** Counts an UNDECRYPTABLE event's reason in r (other events: nothing); call it from the event callback. */
MSP_API void msp_ets_passive_report_event(msp_ets_passive_report_t *r, const msp_ets_event_t *ev);

/**
 * Appends one line and "\n": "408 flows, 400 decrypted, 8 undecryptable
 * (no_static_key 5, gap 3), 1.2 GB plaintext, 1.3 GB captured in 3.1 s
 * (419.4 MB/s)"; ", N without a TLS 1.3 handshake" after the reasons when
 * there were such flows; "; 12 packets dropped by the capture" at the end
 * when dropped is not 0. MSP_OK or out's (sticky) error.
 */
MSP_API int msp_ets_passive_summary_text(const msp_ets_passive_report_t *r, msp_buf_t *out);

/**
 * Appends a progress line without newline: "512.0 MB of 1.3 GB (39 %),
 * 410.2 MB/s, 120 flows" (done of total bytes, elapsed_us by the caller's
 * clock, flows so far). MSP_OK or out's error.
 */
MSP_API int msp_ets_passive_progress_text(uint64_t done, uint64_t total, uint64_t elapsed_us, uint64_t flows,
                                          msp_buf_t *out);

#endif
