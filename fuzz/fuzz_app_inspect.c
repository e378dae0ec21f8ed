/*
 * Inspection at a middlebox (src/tlmsp_app/inspect.c) driven by a script
 * in the input: containers (HTTP mode in contexts 3 and 4), pauses, scans
 * and answers made of input bytes. Invariants: a request stands for at
 * least one container and carries at most what was held; an outcome
 * releases exactly the containers its request stood for, every REPLACE
 * fits a container, and no verdict is HOLD.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/tlmsp_inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct script {
    const uint8_t *p;
    size_t n;
} script_t;

static size_t take(script_t *s, size_t want, const uint8_t **out)
{
    size_t k = want < s->n ? want : s->n;
    *out = s->p;
    s->p += k;
    s->n -= k;
    return k;
}

static uint8_t byte(script_t *s)
{
    const uint8_t *b;
    return take(s, 1, &b) == 1 ? b[0] : 0;
}

static void check(const msp_inspect_outcome_t *o, size_t containers)
{
    if (o->kind == MSP_INSPECT_PASS || o->kind == MSP_INSPECT_REPLACE) {
        if (o->n != containers) {
            abort();
        }
        for (size_t k = 0; k < o->n; k++) {
            if (o->verdicts[k] == MSP_TLMSP_HOLD ||
                (o->verdicts[k] == MSP_TLMSP_REPLACE && (o->data_len[k] == 0 || o->data_len[k] > 16355))) {
                abort();
            }
        }
    }
}

static void answer(msp_inspect_t *x, script_t *s, int dir, size_t containers)
{
    static const int statuses[] = {204, 200, 200, 500, 100};
    msp_icap_resp_info_t r;
    memset(&r, 0, sizeof(r));
    uint8_t b = byte(s);
    r.status = statuses[b % 5];
    r.is_response = (b >> 3) & 1;
    r.has_body = (b >> 4) & 1;
    if (b & 0x20) {
        strcpy(r.infection, "Threat=x;");
    }
    const uint8_t *p;
    r.http_hdr_len = (b & 0x40) ? take(s, byte(s), &p) : 0;
    r.http_hdr = r.http_hdr_len > 0 ? p : NULL;
    r.body_len = r.has_body ? take(s, (size_t)byte(s) * 97, &p) : 0;
    r.body = r.has_body ? p : NULL;
    msp_inspect_outcome_t o;
    unsigned f;
    if (msp_inspect_answer(x, dir, &r, &o, &f) == MSP_OK) {
        check(&o, containers);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t ctxs[] = {1, 3, 4, 4};
    script_t s = {data, size};
    msp_inspect_cfg_t c = {3, 4};
    msp_inspect_t *x;
    if (msp_inspect_new(size > 0 && (data[0] & 1) ? &c : NULL, &x) != MSP_OK) {
        abort();
    }
    size_t scanning[2] = {0, 0}, held[2] = {0, 0};
    while (s.n > 0) {
        uint8_t op = byte(&s);
        int dir = (op >> 3) & 1;
        unsigned f;
        const uint8_t *p;
        msp_inspect_request_t r;
        switch (op % 4) {
        case 0: {
            size_t len = take(&s, byte(&s), &p);
            if (len > 0 && msp_inspect_input(x, dir, ctxs[(op >> 4) & 3], (op >> 6) & 1, p, len, &f, NULL) == MSP_OK) {
                held[dir] += len;
            }
            break;
        }
        case 1:
            msp_inspect_pause(x, dir, &f);
            break;
        case 2:
            if (msp_inspect_scan(x, dir, &r) == 1) {
                if (r.containers == 0 || r.body_len > held[dir] || scanning[dir] != 0) {
                    abort();
                }
                scanning[dir] = r.containers;
            }
            break;
        default:
            if (scanning[dir] != 0) {
                answer(x, &s, dir, scanning[dir]);
                scanning[dir] = 0;
            }
            break;
        }
    }
    msp_inspect_free(x);
    return 0;
}
