/* Shared between the files of the configuration loader; not installed. */
#ifndef MSP_CFG_INTERNAL_H
#define MSP_CFG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msp/tlmsp_cfg.h"
#include "msp/ucl.h"

/* One load in progress: the model being built and where to report. */
typedef struct cfg_ld {
    msp_tlmsp_cfg_t *cfg;
    const char *name;
    msp_error_t *err;
    bool id_used[256]; /* context ids taken so far */
} cfg_ld_t;

/* An allowed key of a block; repeat: may appear more than once (the reference's arrays). */
typedef struct cfg_key {
    const char *name;
    bool repeat;
} cfg_key_t;

/* ---- load.c ---- */
int cfg_fail(cfg_ld_t *ld, int code, const msp_ucl_t *at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int cfg_new(cfg_ld_t *ld, const msp_ucl_t *at, size_t count, size_t size, void *out);
int cfg_strdup(cfg_ld_t *ld, const msp_ucl_t *at, const char *s, size_t len, const char **out);

/* ---- values.c ---- */
/* The value `item` of a repeatable key, one at a time. */
typedef int (*cfg_visit_fn)(cfg_ld_t *ld, const msp_ucl_t *item, void *arg);

bool cfg_key_is(const msp_ucl_t *node, const char *key);
const msp_ucl_t *cfg_find(const msp_ucl_t *obj, const char *key);
size_t cfg_count_items(const msp_ucl_t *obj, const char *key);
int cfg_each(cfg_ld_t *ld, const msp_ucl_t *obj, const char *key, const char *in, cfg_visit_fn fn, void *arg);
int cfg_list(cfg_ld_t *ld, const msp_ucl_t *root, const char *key, size_t max, size_t size, void *out, cfg_visit_fn fn,
             void *arg);
int cfg_check_keys(cfg_ld_t *ld, const msp_ucl_t *obj, const cfg_key_t *keys, size_t n, const char *in);
int cfg_need_object(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in);
int cfg_get_string(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, const char **out);
int cfg_get_name(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, const char **out);
int cfg_get_bool(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, bool *out);
int cfg_get_int(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, int64_t min, int64_t max,
                int64_t *out);
int cfg_get_ms(cfg_ld_t *ld, const msp_ucl_t *node, const char *key, const char *in, uint32_t min, uint32_t *out);
int cfg_decode(cfg_ld_t *ld, const msp_ucl_t *at, const char *s, msp_tlmsp_cfg_bytes_t *out);

/* ---- contexts.c ---- */
int cfg_contexts(cfg_ld_t *ld, const msp_ucl_t *root);
/* A context named by id (0 too when zero_ok) or by a tag only one context has. */
int cfg_context_ref(cfg_ld_t *ld, const msp_ucl_t *node, bool zero_ok, const char *in, uint8_t *id);

/* The contexts the `which` keys of a block name: ids in order, no repeats. */
typedef struct cfg_which {
    bool strict; /* a context named twice is an error (middlebox grants), not ignored (matches) */
    bool seen[256];
    uint8_t ids[MSP_TLMSP_CFG_MAX_CONTEXTS];
    size_t n;
    bool all;
} cfg_which_t;
int cfg_which(cfg_ld_t *ld, const msp_ucl_t *obj, const char *in, cfg_which_t *w);

/* ---- activities.c, actions.c, alerts.c ---- */
int cfg_activities(cfg_ld_t *ld, const msp_ucl_t *root);
int cfg_actions(cfg_ld_t *ld, const msp_ucl_t *activity, const char *in, msp_tlmsp_cfg_activity_t *a);
int cfg_alert_by_name(const char *name);

/* ---- entities.c, middlebox.c ---- */
int cfg_endpoint(cfg_ld_t *ld, const msp_ucl_t *node, msp_tlmsp_cfg_entity_t *e);
int cfg_middleboxes(cfg_ld_t *ld, const msp_ucl_t *root);
int cfg_entity_files(cfg_ld_t *ld, const msp_ucl_t *node, const char *in, msp_tlmsp_cfg_entity_t *e);
/* Checks one activity a middlebox lists; item is the list element. */
typedef int (*cfg_fn_check)(cfg_ld_t *ld, const msp_ucl_t *item, size_t activity, void *arg);
int cfg_fnlist(cfg_ld_t *ld, const msp_ucl_t *obj, const char *key, const char *in, cfg_fn_check check, void *arg,
               msp_tlmsp_cfg_fnlist_t *out);

/* ---- address.c ---- */
int cfg_address(cfg_ld_t *ld, const msp_ucl_t *node, bool mac_ok, const char *in, msp_tlmsp_cfg_address_t *out);

#endif
