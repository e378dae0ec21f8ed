/*
 * The HTTP/1.x framer of --contexts http (msp/tlmsp_http.h), which a
 * middlebox runs on what clients and servers send. The input is a list of
 * feeds: each starts with one control byte (bit 7: the direction, bits 0-6:
 * the feed's length; 0x7f: the end of that direction instead), then the
 * bytes. Whatever the framer answers, the segments it gave for a direction
 * must be exactly the bytes fed so far, in order (the framer's promise), up
 * to the first error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msp/error.h"
#include "msp/tlmsp_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    const uint8_t *fed; /* this feed */
    size_t fed_len, got;
    int bad;
} seen_t;

static int check(void *user, msp_http_dir_t dir, const msp_http_seg_t *seg)
{
    seen_t *s = user;
    (void)dir;
    /* each segment continues where the last one stopped, inside the bytes of this feed */
    if (seg->len > 0 && (seg->p != s->fed + s->got || seg->len > s->fed_len - s->got)) {
        s->bad = 1;
    }
    if (seg->len == 0 && !(seg->flags & MSP_HTTP_MESSAGE_DONE)) {
        s->bad = 1;
    }
    s->got += seg->len;
    return MSP_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msp_http_t *h = NULL;
    msp_http_cfg_t cfg = {.max_header = 512, .max_pipeline = 8};
    if (msp_http_new(&cfg, &h) != MSP_OK) {
        return 0;
    }
    int failed[2] = {0, 0};
    size_t off = 0;
    while (off < size) {
        uint8_t ctl = data[off++];
        msp_http_dir_t dir = (ctl & 0x80) ? MSP_HTTP_RESPONSES : MSP_HTTP_REQUESTS;
        size_t n = ctl & 0x7f;
        seen_t s = {0};
        int rc;
        if (n == 0x7f) {
            rc = msp_http_eof(h, dir, check, &s, NULL);
        } else {
            n = n < size - off ? n : size - off;
            s.fed = data + off;
            s.fed_len = n;
            rc = msp_http_feed(h, dir, data + off, n, check, &s, NULL);
            off += n;
            /* all of it, unless the framer stopped with an error */
            if (rc == MSP_OK && s.got != n) {
                abort();
            }
        }
        if (s.bad || (failed[dir] && rc == MSP_OK)) {
            abort(); /* errors are sticky */
        }
        failed[dir] |= rc != MSP_OK;
    }
    msp_http_free(h);
    return 0;
}
