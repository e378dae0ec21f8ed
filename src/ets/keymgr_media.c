/*
 * The media types of key packages (include/msp/ets_keymgr.h; ets.md 3.4
 * ETS-KT-1, ETS-KP-2): what an Accept header asks for, what a Content-Type
 * says. RFC 9110 12.5.1 and 8.3.1, read as far as a key package needs:
 * comma-separated ranges, parameters after ';', q=0 meaning "not this".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msp/error.h"
#include "msp/ets_keymgr.h"

#define OWS " \t"

/* One media range [p, end): its flag, or 0. *refused when its q is 0. */
static unsigned range_flag(const char *p, const char *end, int *refused)
{
    p += strspn(p, OWS);
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *type_end = semi != NULL ? semi : end;
    while (type_end > p && strchr(OWS, type_end[-1]) != NULL) {
        type_end--;
    }
    size_t n = (size_t)(type_end - p);
    *refused = 0;
    for (const char *q = semi; q != NULL && q < end; q = memchr(q + 1, ';', (size_t)(end - q - 1))) {
        const char *v = q + 1 + strspn(q + 1, OWS);
        if (end - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
            char num[8] = "";
            size_t k = strcspn(v + 2, ";," OWS);
            memcpy(num, v + 2, k < sizeof num - 1 ? k : sizeof num - 1);
            *refused = strtod(num, NULL) <= 0.0; /* "0", "0.0", "0.000"; garbage reads as 0 too */
        }
    }
    static const struct {
        const char *type;
        unsigned flag;
    } known[] = {{"application/pkcs7-mime", MSP_ETS_KEYMGR_ACCEPT_CMS},
                 {"application/cms", MSP_ETS_KEYMGR_ACCEPT_CMS},
                 {"application/pkcs8", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
                 {"application/*", MSP_ETS_KEYMGR_ACCEPT_PKCS8},
                 {"*/*", MSP_ETS_KEYMGR_ACCEPT_PKCS8}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strlen(known[i].type) == n && strncasecmp(p, known[i].type, n) == 0) {
            return known[i].flag;
        }
    }
    return 0;
}

unsigned msp_ets_keymgr_accept(const char *accept)
{
    if (accept == NULL || accept[strspn(accept, OWS)] == '\0') {
        return MSP_ETS_KEYMGR_ACCEPT_PKCS8;
    }
    unsigned yes = 0, no = 0;
    for (const char *p = accept; *p != '\0';) {
        const char *end = p + strcspn(p, ",");
        int refused = 0;
        unsigned f = range_flag(p, end, &refused);
        if (refused) {
            no |= f;
        } else {
            yes |= f;
        }
        p = *end == ',' ? end + 1 : end;
    }
    return yes & ~no;
}

unsigned msp_ets_keymgr_content_type(const char *content_type)
{
    if (content_type == NULL) {
        return 0;
    }
    int refused = 0;
    unsigned f = range_flag(content_type, content_type + strlen(content_type), &refused);
    return f == MSP_ETS_KEYMGR_ACCEPT_CMS || (f == MSP_ETS_KEYMGR_ACCEPT_PKCS8 && strchr(content_type, '*') == NULL)
               ? f
               : 0;
}

int msp_ets_keymgr_receive(const uint8_t *body, size_t len, const char *content_type, const msp_ets_keymgr_cms_t *cms,
                           int require_cms, int64_t now, msp_buf_t *out, msp_error_t *err)
{
    if (body == NULL || out == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "body and out are required");
    }
    if (msp_ets_keymgr_content_type(content_type) != MSP_ETS_KEYMGR_ACCEPT_CMS) {
        if (require_cms) {
            return msp_error_set(err, MSP_ERR_INVALID, NULL, "the key package is not CMS-wrapped (Content-Type %.64s)",
                                 content_type != NULL && content_type[0] != '\0' ? content_type : "none");
        }
        if (len > MSP_ETS_KP_MAX_SIZE) {
            return msp_error_set(err, MSP_ERR_LIMIT, NULL, "a package holds at most %u bytes", MSP_ETS_KP_MAX_SIZE);
        }
        int ret = msp_buf_put(out, body, len);
        return ret == MSP_OK ? MSP_OK : msp_error_set(err, ret, NULL, "the key package does not fit the output");
    }
    if (cms == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "a CMS-wrapped package, and no key to open it with");
    }
    int ret = msp_ets_keypkg_cms_unwrap(body, len, cms->cert, cms->key, cms->trusted, cms->n_trusted, now, out, err);
    if (ret != MSP_OK && err != NULL) {
        char why[sizeof err->detail];
        snprintf(why, sizeof why, "%s", err->detail);
        msp_error_set(err, ret, NULL, "the CMS-wrapped key package is refused: %.300s", why);
    }
    return ret;
}
