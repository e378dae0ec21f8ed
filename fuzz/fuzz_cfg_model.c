/* The .ucl configuration model: any bytes must load or fail cleanly, and a loaded model must be whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/tlmsp_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every index and id the model hands out must point inside it. */
static void check(const msp_tlmsp_cfg_t *cfg)
{
    for (size_t i = 0; i < cfg->n_activities; i++) {
        const msp_tlmsp_cfg_activity_t *a = &cfg->activities[i];
        for (size_t j = 0; j < a->match.n_which; j++) {
            if (msp_tlmsp_cfg_context_by_id(cfg, a->match.which[j]) == NULL) {
                abort();
            }
        }
        for (size_t j = 0; j < a->n_actions; j++) {
            for (size_t k = 0; k < a->actions[j].n_segments; k++) {
                volatile size_t len = a->actions[j].segments[k].data.len;
                (void)len;
            }
        }
    }
    const msp_tlmsp_cfg_fnlist_t *lists[] = {&cfg->client.to_server, &cfg->server.to_client};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l]->n; i++) {
            if (lists[l]->activity[i] >= cfg->n_activities) {
                abort();
            }
        }
    }
    for (size_t i = 0; i < cfg->n_middleboxes; i++) {
        if (msp_tlmsp_cfg_middlebox_by_tag(cfg, cfg->middleboxes[i].tag) != &cfg->middleboxes[i]) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msp_tlmsp_cfg_t *cfg = NULL;
    msp_error_t err;
    if (msp_tlmsp_cfg_load_mem((const char *)data, size, "fuzz", &cfg, &err) != MSP_OK) {
        if (cfg != NULL || err.where[0] == '\0' || err.detail[0] == '\0') {
            abort(); /* a failure returns nothing and always says where and why */
        }
        return 0;
    }
    check(cfg);
    msp_tlmsp_cfg_free(cfg);
    return 0;
}
