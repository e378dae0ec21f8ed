/*
 * The ICAP response parser (src/tlmsp_app/icap.c): the bytes after the first
 * go in whole and, again, in two feeds cut where the first byte says; both
 * must agree (done, status, headers' values, body), and a parsed body never
 * exceeds the parser's limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/tlmsp_icap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 4096

static int feed(const uint8_t *p, size_t n, size_t cut, msp_icap_resp_t *r, int *done)
{
    int rc = msp_icap_resp_input(r, p, cut, done, NULL);
    if (rc == MSP_OK && !*done) {
        rc = msp_icap_resp_input(r, p + cut, n - cut, done, NULL);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1, cut = n > 0 ? data[0] % (n + 1) : 0;
    msp_icap_resp_t *a, *b;
    if (msp_icap_resp_new(LIMIT, &a) != MSP_OK || msp_icap_resp_new(LIMIT, &b) != MSP_OK) {
        abort();
    }
    int da = 0, db = 0;
    int ra = msp_icap_resp_input(a, p, n, &da, NULL), rb = feed(p, n, cut, b, &db);
    /* a split feed may stop at the first response, where the whole one stopped too: compare what both saw */
    if ((ra == MSP_OK) != (rb == MSP_OK) || da != db) {
        abort();
    }
    if (ra == MSP_OK && da) {
        const msp_icap_resp_info_t *x = msp_icap_resp_info(a), *y = msp_icap_resp_info(b);
        if (x->status != y->status || x->body_len != y->body_len || x->body_len > LIMIT ||
            (x->body_len > 0 && memcmp(x->body, y->body, x->body_len) != 0) ||
            strcmp(x->infection, y->infection) != 0 || x->http_hdr_len != y->http_hdr_len ||
            (x->http_hdr_len > 0 && memcmp(x->http_hdr, y->http_hdr, x->http_hdr_len) != 0)) {
            abort();
        }
    }
    msp_icap_resp_free(a);
    msp_icap_resp_free(b);
    return 0;
}
