/*
 * The threat model and assumptions a profile declares (ETSI TS 103 523-1
 * B.2.1: "ETS.TM.0" ...) and the ids its analysis cites: a justification
 * that rests on an assumption the profile does not define has no referent.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "fw.h"

#define ID_MAX 48

static int name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-';
}

/* Length of an id NAME.TM.N or NAME.A.N starting at s (0 if none), NAME a capital then [A-Za-z0-9-]
 * ("ETS", "Annex-C"); *kind receives which. */
static size_t id_at(const char *s, msp_fw_note_kind_t *kind)
{
    size_t n = 0;
    while (n < ID_MAX && (n == 0 ? isupper((unsigned char)s[n]) : name_char(s[n]))) {
        n++;
    }
    if (n == 0 || s[n] != '.') {
        return 0;
    }
    n++;
    if (strncmp(s + n, "TM.", 3) == 0) {
        *kind = MSP_FW_THREAT;
        n += 3;
    } else if (strncmp(s + n, "A.", 2) == 0) {
        *kind = MSP_FW_ASSUMPTION;
        n += 2;
    } else {
        return 0;
    }
    size_t d = strspn(s + n, "0123456789");
    return d > 0 && n + d < ID_MAX ? n + d : 0;
}

int fw_note_id_ok(const char *id, msp_fw_note_kind_t kind)
{
    msp_fw_note_kind_t k;
    size_t n = id_at(id, &k);
    return n > 0 && id[n] == '\0' && k == kind;
}

static int defined(const msp_fw_profile_t *p, const char *id, size_t n)
{
    for (size_t i = 0; i < p->nnotes; i++) {
        if (strlen(p->notes[i].id) == n && strncmp(p->notes[i].id, id, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Each undefined id once per text; an id is cited where it does not continue a longer word. */
static void scan_ids(msp_fw_profile_t *p, const char *ref, const char *text, msp_fw_severity_t sev, const char *where)
{
    char seen[512] = "";
    for (size_t i = 0; text != NULL && text[i] != '\0'; i++) {
        msp_fw_note_kind_t kind;
        size_t n = (i == 0 || !(name_char(text[i - 1]) || text[i - 1] == '.')) ? id_at(text + i, &kind) : 0;
        if (n == 0 || name_char(text[i + n]) || defined(p, text + i, n)) {
            continue;
        }
        char id[ID_MAX + 2];
        snprintf(id, sizeof(id), "%.*s;", (int)n, text + i);
        if (strstr(seen, id) == NULL && strlen(seen) + strlen(id) < sizeof(seen)) {
            strcat(seen, id);
            id[n] = '\0';
            fw_add(p, "citation", ref, sev,
                   "%s cites %s, which the profile does not define (%s \"%s\" { text = ...; })", where, id,
                   kind == MSP_FW_THREAT ? "threat" : "assumption", id);
        }
        i += n - 1;
    }
}

static void scan(msp_fw_profile_t *p, const char *ref, const char *text, msp_fw_severity_t sev, const char *where)
{
    if (sev == MSP_FW_ERROR && p->nnotes == 0) {
        sev = MSP_FW_WARNING; /* no threat model declared: the ids may refer to another document */
    }
    scan_ids(p, ref, text, sev, where);
}

void fw_check_citations(msp_fw_profile_t *p)
{
    for (size_t i = 0; i < p->cat->count; i++) {
        if (p->rows[i].present) {
            scan(p, p->cat->reqs[i].ref, p->rows[i].justification, MSP_FW_ERROR, "the justification");
        }
    }
    /* The printed prose of a corrected clause is the source's error, not ours: an erratum-level finding. */
    for (size_t e = 0; e < p->nerrata; e++) {
        scan(p, p->errata[e].clause, p->errata[e].printed, MSP_FW_ERRATUM, "the printed text");
        scan(p, p->errata[e].clause, p->errata[e].should_be, MSP_FW_ERROR, "the corrected text");
    }
}
