/*
 * The configuration model of the ETSI TLMSP reference tools (tlmsp-tools,
 * libtlmsp-cfg): the .ucl file that sets up the client, middlebox and server
 * example programs, read into plain C structs.
 *
 * The semantics are the reference parser's (defaults, required keys, the
 * auto-assigned context ids, tag rules, '*' for all contexts, the middlebox
 * access checks), except that what it accepts silently but cannot mean is
 * refused here with the file and line; docs/tlmsp-config.md lists both.
 *
 * A loaded model owns every byte it points to; msp_tlmsp_cfg_free() releases
 * all of it at once. Nothing in it is compiled or resolved beyond the file:
 * regexes stay text, files are names, addresses are not looked up.
 */
#ifndef MSP_TLMSP_CFG_H
#define MSP_TLMSP_CFG_H

#include "msp/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msp/error.h"

#define MSP_TLMSP_CFG_MAX_FILE ((size_t)1 << 20) /* bytes of .ucl text */
#define MSP_TLMSP_CFG_CONTEXT_ID_MIN 1
#define MSP_TLMSP_CFG_CONTEXT_ID_MAX 255
#define MSP_TLMSP_CFG_MAX_CONTEXTS 255    /* every id in 1..255 */
#define MSP_TLMSP_CFG_MAX_MIDDLEBOXES 251 /* the reference's example ceiling */
#define MSP_TLMSP_CFG_MAX_ACTIVITIES 1024
#define MSP_TLMSP_CFG_MAX_ACTIONS 256         /* per activity */
#define MSP_TLMSP_CFG_MAX_TIME_MS 1209600000u /* two weeks, as in the reference */
#define MSP_TLMSP_CFG_MAX_TEMPLATE_REF 255    /* highest ${n} */
#define MSP_TLMSP_CFG_DEFAULT_PORT 443        /* the reference's default when a URL has none */
#define MSP_TLMSP_CFG_VERSION_1_0 0x0100      /* (major << 8) | minor */

/** A byte string that may hold any byte (percent-decoded text). */
typedef struct msp_tlmsp_cfg_bytes {
    const uint8_t *p;
    size_t len;
} msp_tlmsp_cfg_bytes_t;

typedef struct msp_tlmsp_cfg_context {
    uint8_t id;          /* 1..255 */
    bool id_auto;        /* no `id` key: the lowest free id when the block ended */
    const char *tag;     /* "" when absent; several contexts may share a tag */
    const char *comment; /* "" when absent */
    const char *purpose; /* "" when absent; goes on the wire */
    bool audit;          /* default false (audit=unconfirmed) */
    uint32_t line;
} msp_tlmsp_cfg_context_t;

typedef enum msp_tlmsp_cfg_container {
    MSP_TLMSP_CFG_CONTAINER_NONE,
    MSP_TLMSP_CFG_CONTAINER_NTH,         /* container = n, n >= 1 */
    MSP_TLMSP_CFG_CONTAINER_PROBABILITY, /* container = p, 0 < p < 1 */
    MSP_TLMSP_CFG_CONTAINER_ALL,         /* container = * | all */
} msp_tlmsp_cfg_container_t;

typedef enum msp_tlmsp_cfg_pattern {
    MSP_TLMSP_CFG_PATTERN_NONE,
    MSP_TLMSP_CFG_PATTERN_DATA,  /* .data: the percent-decoded bytes */
    MSP_TLMSP_CFG_PATTERN_FILE,  /* .text: a file name */
    MSP_TLMSP_CFG_PATTERN_REGEX, /* .text: the pattern, not compiled */
} msp_tlmsp_cfg_pattern_t;

/** A match is time-driven (at/every), container-driven, or pattern-driven: exactly one. */
typedef struct msp_tlmsp_cfg_match {
    bool has_at;
    uint32_t at_ms; /* has_at && at_ms == 0: act once as the connection comes up */
    bool has_every;
    uint32_t every_ms; /* 1..MSP_TLMSP_CFG_MAX_TIME_MS */
    bool which_all;    /* `which` named '*' */
    size_t n_which;    /* context ids to look in, file order, no repeats ('*' expanded) */
    const uint8_t *which;
    msp_tlmsp_cfg_container_t container;
    uint64_t container_n;
    double container_p;
    msp_tlmsp_cfg_pattern_t pattern;
    const char *text; /* the pattern as written (data, file name or regex); NULL for none */
    msp_tlmsp_cfg_bytes_t data;
    bool forward; /* match without deleting: a middlebox then needs only r access */
    uint32_t line;
} msp_tlmsp_cfg_match_t;

typedef enum msp_tlmsp_cfg_action_kind {
    MSP_TLMSP_CFG_ACTION_SEND,  /* endpoint: send; middlebox: same direction as the match */
    MSP_TLMSP_CFG_ACTION_REPLY, /* endpoint: send; middlebox: the opposite direction */
    MSP_TLMSP_CFG_ACTION_ALERT,
    MSP_TLMSP_CFG_ACTION_LOG,         /* log { handler } */
    MSP_TLMSP_CFG_ACTION_SHUTDOWN,    /* shutdown = yes */
    MSP_TLMSP_CFG_ACTION_RENEGOTIATE, /* renegotiate = yes (endpoints only) */
} msp_tlmsp_cfg_action_kind_t;

typedef enum msp_tlmsp_cfg_payload {
    MSP_TLMSP_CFG_PAYLOAD_NONE,
    MSP_TLMSP_CFG_PAYLOAD_DATA,     /* .data */
    MSP_TLMSP_CFG_PAYLOAD_FILE,     /* .text: file name */
    MSP_TLMSP_CFG_PAYLOAD_TEMPLATE, /* .segments (and .text as written) */
    MSP_TLMSP_CFG_PAYLOAD_HANDLER,  /* .text: command for /bin/sh */
} msp_tlmsp_cfg_payload_t;

#define MSP_TLMSP_CFG_TEMPLATE_END UINT32_MAX

/** Literal bytes, then the match reference ${ref} (or nothing when ref is MSP_TLMSP_CFG_TEMPLATE_END). */
typedef struct msp_tlmsp_cfg_segment {
    msp_tlmsp_cfg_bytes_t data;
    uint32_t ref;
} msp_tlmsp_cfg_segment_t;

typedef enum msp_tlmsp_cfg_alert_level {
    MSP_TLMSP_CFG_ALERT_NONE = 0,
    MSP_TLMSP_CFG_ALERT_WARNING = 1, /* RFC 5246 values */
    MSP_TLMSP_CFG_ALERT_FATAL = 2,
} msp_tlmsp_cfg_alert_level_t;

typedef struct msp_tlmsp_cfg_action {
    msp_tlmsp_cfg_action_kind_t kind;
    uint8_t context_id; /* send/reply: 1..255; alert: 0..255 (0 = context zero); else 0 */
    msp_tlmsp_cfg_payload_t payload;
    const char *text;
    msp_tlmsp_cfg_bytes_t data;
    size_t n_segments; /* an empty template has none */
    const msp_tlmsp_cfg_segment_t *segments;
    msp_tlmsp_cfg_alert_level_t level;
    uint8_t description; /* alert description, 0..255 */
    uint32_t line;
} msp_tlmsp_cfg_action_t;

typedef struct msp_tlmsp_cfg_activity {
    const char *tag; /* unique, non-empty */
    msp_tlmsp_cfg_match_t match;
    size_t n_actions; /* file order; zero: the matched data is only deleted (and logged) */
    const msp_tlmsp_cfg_action_t *actions;
    bool present;
    uint32_t line;
} msp_tlmsp_cfg_activity_t;

typedef enum msp_tlmsp_cfg_addr_kind {
    MSP_TLMSP_CFG_ADDR_URL,  /* scheme://host[:port] (scheme ignored) */
    MSP_TLMSP_CFG_ADDR_HOST, /* a bare name, fqdn or IPv4/IPv6 literal */
    MSP_TLMSP_CFG_ADDR_MAC,  /* six hex pairs: only for the client, never resolvable */
} msp_tlmsp_cfg_addr_kind_t;

typedef struct msp_tlmsp_cfg_address {
    const char *text; /* as written; "" when the entity was not configured */
    msp_tlmsp_cfg_addr_kind_t kind;
    const char *host; /* without IPv6 brackets; "" for a MAC address */
    uint16_t port;    /* MSP_TLMSP_CFG_DEFAULT_PORT when not given; 0 for a MAC address */
} msp_tlmsp_cfg_address_t;

typedef enum msp_tlmsp_cfg_access {
    MSP_TLMSP_CFG_ACCESS_NONE = 0,
    MSP_TLMSP_CFG_ACCESS_R,
    MSP_TLMSP_CFG_ACCESS_RW,
} msp_tlmsp_cfg_access_t;

/** Activities by index into msp_tlmsp_cfg_t.activities, in the order listed. */
typedef struct msp_tlmsp_cfg_fnlist {
    size_t n;
    const size_t *activity;
} msp_tlmsp_cfg_fnlist_t;

typedef enum msp_tlmsp_cfg_role {
    MSP_TLMSP_CFG_CLIENT,
    MSP_TLMSP_CFG_SERVER,
    MSP_TLMSP_CFG_MIDDLEBOX,
} msp_tlmsp_cfg_role_t;

/*
 * The client, the server and each middlebox. Like the reference, the
 * client's `function` is its to-server list and the server's `function` its
 * to-client list; a middlebox has both.
 */
typedef struct msp_tlmsp_cfg_entity {
    msp_tlmsp_cfg_role_t role;
    bool defined;    /* the block is in the file (client and server are optional) */
    const char *tag; /* middleboxes: unique, required; "" for client and server */
    msp_tlmsp_cfg_address_t address;
    const char *cert_file;                   /* server: "server-cert.pem"; middlebox: "<tag>-cert.pem"; client: "" */
    const char *cert_key_file;               /* server: "server-key.pem"; middlebox: "<tag>-key.pem"; client: "" */
    bool transparent, discovered, forbidden; /* middleboxes; default false */
    size_t n_contexts;                       /* middleboxes: ids granted, in the order given */
    uint8_t context_ids[MSP_TLMSP_CFG_MAX_CONTEXTS];
    msp_tlmsp_cfg_access_t access[256]; /* by context id; NONE for ids not granted */
    uint16_t version_min, version_max;  /* default v1.0 .. v1.0 */
    msp_tlmsp_cfg_fnlist_t to_server;
    msp_tlmsp_cfg_fnlist_t to_client;
    uint32_t line;
} msp_tlmsp_cfg_entity_t;

typedef struct msp_tlmsp_cfg {
    const char *name; /* the file name or the name given to load_mem */
    size_t n_contexts;
    msp_tlmsp_cfg_context_t *contexts; /* file order */
    size_t n_activities;
    msp_tlmsp_cfg_activity_t *activities;
    msp_tlmsp_cfg_entity_t client;
    msp_tlmsp_cfg_entity_t server;
    size_t n_middleboxes;
    msp_tlmsp_cfg_entity_t *middleboxes; /* network order, client side first */
    struct msp_tlmsp_cfg_pool *pool;     /* private: every allocation above */
} msp_tlmsp_cfg_t;

/**
 * Reads and checks a configuration. On success *out owns the model; on
 * failure *out is NULL and the code is MSP_ERR_SYNTAX (not UCL),
 * MSP_ERR_INVALID (a rule broken), MSP_ERR_LIMIT (too big), MSP_ERR_IO or
 * MSP_ERR_NO_MEMORY, with err->where = "FILE:LINE" and err->detail one
 * lower-case sentence.
 */
MSP_API int msp_tlmsp_cfg_load_file(const char *path, msp_tlmsp_cfg_t **out, msp_error_t *err);

/** The same from len bytes of text; name (may be NULL) stands for the file in err->where. */
MSP_API int msp_tlmsp_cfg_load_mem(const char *text, size_t len, const char *name, msp_tlmsp_cfg_t **out,
                                   msp_error_t *err);

/** Frees the model and everything it points to. NULL is fine. */
MSP_API void msp_tlmsp_cfg_free(msp_tlmsp_cfg_t *cfg);

/** The context with this id, or NULL. */
MSP_API const msp_tlmsp_cfg_context_t *msp_tlmsp_cfg_context_by_id(const msp_tlmsp_cfg_t *cfg, unsigned id);

/** The one context with this tag; NULL when none has it or several share it. */
MSP_API const msp_tlmsp_cfg_context_t *msp_tlmsp_cfg_context_by_tag(const msp_tlmsp_cfg_t *cfg, const char *tag);

/** The middlebox with this tag, or NULL. */
MSP_API const msp_tlmsp_cfg_entity_t *msp_tlmsp_cfg_middlebox_by_tag(const msp_tlmsp_cfg_t *cfg, const char *tag);

/** The activity with this tag, or NULL; *index (may be NULL) gets its index. */
MSP_API const msp_tlmsp_cfg_activity_t *msp_tlmsp_cfg_activity_by_tag(const msp_tlmsp_cfg_t *cfg, const char *tag,
                                                                      size_t *index);

/**
 * Splits an address as the reference does: "scheme://host[:port]" with the
 * scheme ignored and the host of an IPv6 address in brackets
 * ("tlmsp://[::1]:4443"), or a bare host name / IPv4 / IPv6 literal. The
 * port defaults to 443. host gets the name without brackets.
 * Returns MSP_OK, MSP_ERR_SYNTAX (not an address, or a MAC address, which
 * has no host), or MSP_ERR_LIMIT (host does not fit host_cap).
 */
MSP_API int msp_tlmsp_cfg_address_parse(const char *url, char *host, size_t host_cap, uint16_t *port);

/** Name of an alert description (RFC 5246, TS 103 523-2), or NULL for an unnamed number. */
MSP_API const char *msp_tlmsp_cfg_alert_name(unsigned description);

/** "none", "r" or "rw". */
MSP_API const char *msp_tlmsp_cfg_access_name(msp_tlmsp_cfg_access_t access);

#endif
