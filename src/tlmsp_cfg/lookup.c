/* Finding things in a loaded model by id or tag. */
#include <string.h>

#include "cfg_internal.h"

const msp_tlmsp_cfg_context_t *msp_tlmsp_cfg_context_by_id(const msp_tlmsp_cfg_t *cfg, unsigned id)
{
    for (size_t i = 0; cfg != NULL && i < cfg->n_contexts; i++) {
        if (cfg->contexts[i].id == id) {
            return &cfg->contexts[i];
        }
    }
    return NULL;
}

const msp_tlmsp_cfg_context_t *msp_tlmsp_cfg_context_by_tag(const msp_tlmsp_cfg_t *cfg, const char *tag)
{
    const msp_tlmsp_cfg_context_t *found = NULL;
    for (size_t i = 0; cfg != NULL && tag != NULL && i < cfg->n_contexts; i++) {
        if (strcmp(cfg->contexts[i].tag, tag) != 0) {
            continue;
        }
        if (found != NULL) {
            return NULL; /* a shared tag names no single context */
        }
        found = &cfg->contexts[i];
    }
    return found;
}

const msp_tlmsp_cfg_entity_t *msp_tlmsp_cfg_middlebox_by_tag(const msp_tlmsp_cfg_t *cfg, const char *tag)
{
    for (size_t i = 0; cfg != NULL && tag != NULL && i < cfg->n_middleboxes; i++) {
        if (strcmp(cfg->middleboxes[i].tag, tag) == 0) {
            return &cfg->middleboxes[i];
        }
    }
    return NULL;
}

const msp_tlmsp_cfg_activity_t *msp_tlmsp_cfg_activity_by_tag(const msp_tlmsp_cfg_t *cfg, const char *tag,
                                                              size_t *index)
{
    for (size_t i = 0; cfg != NULL && tag != NULL && i < cfg->n_activities; i++) {
        if (strcmp(cfg->activities[i].tag, tag) == 0) {
            if (index != NULL) {
                *index = i;
            }
            return &cfg->activities[i];
        }
    }
    return NULL;
}
