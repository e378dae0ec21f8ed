/* The UCL parser alone: any bytes must parse or fail cleanly, within the limits. */
#include <stdint.h>
#include <stdlib.h>

#include "msp/ucl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks the whole tree so that every node the parser built is touched. */
static size_t walk(const msp_ucl_t *n)
{
    size_t count = 1;
    if (n->type == MSP_UCL_OBJECT || n->type == MSP_UCL_ARRAY) {
        for (const msp_ucl_t *c = n->v.kids.first; c != NULL; c = c->next) {
            count += walk(c);
        }
    } else if (n->type == MSP_UCL_STRING && n->v.str.s[n->v.str.len] != '\0') {
        abort(); /* strings are NUL-terminated */
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const msp_ucl_limits_t lim = {.max_input = 1u << 16, .max_depth = 32, .max_nodes = 4096};
    msp_ucl_doc_t *doc;
    if (msp_ucl_parse((const char *)data, size, &lim, &doc, NULL) != MSP_OK) {
        return 0;
    }
    if (walk(msp_ucl_root(doc)) > lim.max_nodes + 1) {
        abort();
    }
    msp_ucl_free(doc);
    return 0;
}
