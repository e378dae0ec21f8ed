#include <stdio.h>
#include <string.h>

#include "fw.h"

/* Next whitespace-separated word at *s: sets *w and *n, advances *s; 0 at the end. */
static int next_word(const char **s, const char **w, size_t *n)
{
    const char *p = *s + strspn(*s, " \t\r\n");
    if (*p == '\0') {
        return 0;
    }
    size_t len = strcspn(p, " \t\r\n");
    *w = p;
    *n = len;
    *s = p + len;
    return 1;
}

static int word_is(const char *w, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

static void mark(msp_fw_wordmap_t *m, size_t i)
{
    if (m != NULL && i < 256) {
        m->bits[i / 64] |= (uint64_t)1 << (i % 64);
    }
}

static void describe(char *where, size_t where_len, size_t i, const char *tw, size_t tn, const char *pw, size_t pn)
{
    if (where == NULL || where_len == 0) {
        return;
    }
    snprintf(where, where_len, "at word %zu the template has \"%.*s\", the profile \"%.*s\"", i + 1,
             tw != NULL ? (int)(tn > 40 ? 40 : tn) : 5, tw != NULL ? tw : "(end)",
             pw != NULL ? (int)(pn > 40 ? 40 : pn) : 5, pw != NULL ? pw : "(end)");
}

/*
 * Clause 6.1.2.3 allows exactly one kind of change per label: PM turns "may"
 * into "shall", PO may turn it into "should". So the comparison is word by
 * word, and the only difference it tolerates is a template "may" replaced by
 * one of those two words, the same one throughout.
 */
msp_fw_textdiff_t msp_fw_text_diff(const char *tmpl, const char *text, msp_fw_wordmap_t *changed, char *where,
                                   size_t where_len)
{
    if (changed != NULL) {
        memset(changed, 0, sizeof(*changed));
    }
    if (where != NULL && where_len > 0) {
        where[0] = '\0';
    }
    if (tmpl == NULL || text == NULL) {
        return MSP_FW_TEXT_OTHER;
    }
    msp_fw_textdiff_t kind = MSP_FW_TEXT_SAME;
    const char *ts = tmpl, *ps = text;
    for (size_t i = 0;; i++) {
        const char *tw = NULL, *pw = NULL;
        size_t tn = 0, pn = 0;
        int th = next_word(&ts, &tw, &tn);
        int ph = next_word(&ps, &pw, &pn);
        if (!th && !ph) {
            return kind;
        }
        if (th && ph && tn == pn && memcmp(tw, pw, tn) == 0) {
            continue;
        }
        msp_fw_textdiff_t step = MSP_FW_TEXT_OTHER;
        if (th && ph && word_is(tw, tn, "may")) {
            step = word_is(pw, pn, "shall")    ? MSP_FW_TEXT_MAY_SHALL
                   : word_is(pw, pn, "should") ? MSP_FW_TEXT_MAY_SHOULD
                                               : MSP_FW_TEXT_OTHER;
        }
        if (step == MSP_FW_TEXT_OTHER || (kind != MSP_FW_TEXT_SAME && kind != step)) {
            describe(where, where_len, i, th ? tw : NULL, tn, ph ? pw : NULL, pn);
            return MSP_FW_TEXT_OTHER;
        }
        kind = step;
        mark(changed, i);
    }
}

/* Describes a spacing run for a message: "two spaces", "a line break", ... */
static const char *spacing_name(const char *s, size_t n)
{
    if (n == 0) {
        return "nothing";
    }
    if (memchr(s, '\n', n) != NULL || memchr(s, '\r', n) != NULL) {
        return "a line break";
    }
    if (memchr(s, '\t', n) != NULL) {
        return "a tab";
    }
    return n == 1 ? "a space" : "several spaces";
}

int fw_spacing_differs(const char *tmpl, const char *s, char *where, size_t where_len)
{
    for (size_t i = 0;; i++) {
        size_t tg = strspn(tmpl, " \t\r\n"), sg = strspn(s, " \t\r\n");
        if (tg != sg || memcmp(tmpl, s, tg) != 0) {
            const char *pos = tmpl[tg] == '\0' ? "after the last word" : i == 0 ? "before the first word" : NULL;
            if (where != NULL && where_len > 0) {
                if (pos != NULL) {
                    snprintf(where, where_len, "%s the template has %s, the profile %s", pos, spacing_name(tmpl, tg),
                             spacing_name(s, sg));
                } else {
                    snprintf(where, where_len, "before word %zu the template has %s, the profile %s", i + 1,
                             spacing_name(tmpl, tg), spacing_name(s, sg));
                }
            }
            return 1;
        }
        tmpl += tg;
        s += sg;
        if (*tmpl == '\0' || *s == '\0') {
            return 0; /* same spacing to the end, or a word missing: the word rule reports that */
        }
        tmpl += strcspn(tmpl, " \t\r\n");
        s += strcspn(s, " \t\r\n");
    }
}
