#include "seed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_ref_start(const char *line)
{
    return (line[0] == 'E' || line[0] == 'M') && line[1] == '.' && strchr(line, '\t') != NULL;
}

static void strip_bold(char *s)
{
    static const char *const tags[] = {"<b>", "</b>"};
    for (int t = 0; t < 2; t++) {
        char *p;
        size_t n = strlen(tags[t]);
        while ((p = strstr(s, tags[t])) != NULL) {
            memmove(p, p + n, strlen(p + n) + 1);
        }
    }
}

/* Copies src into dst of n bytes; 0 if it does not fit (then the row is not one of ours). */
static int put(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n) {
        return 0;
    }
    memcpy(dst, src, len + 1);
    return 1;
}

/* Splits "ref\ttext\tcol3[\tcol4]" into a row; 0 if the shape is wrong. */
static int split_row(char *line, seed_row_t *r)
{
    char *f[4] = {0};
    int n = 0;
    for (char *tok = line; tok != NULL && n < 4; n++) {
        f[n] = tok;
        tok = strchr(tok, '\t');
        if (tok != NULL) {
            *tok++ = '\0';
        }
    }
    if (n < 3) {
        return 0;
    }
    memset(r, 0, sizeof(*r));
    if (!put(r->ref, sizeof(r->ref), f[0]) || !put(r->text, sizeof(r->text), f[1]) ||
        !put(r->col3, sizeof(r->col3), f[2]) || !put(r->col4, sizeof(r->col4), n > 3 ? f[3] : "")) {
        return 0;
    }
    strip_bold(r->text);
    return 1;
}

int seed_rows(const char *from, const char *to, seed_row_t *rows, int max)
{
    FILE *f = fopen(MSP_SEED_FILE, "r");
    if (f == NULL) {
        fprintf(stderr, "seed: cannot open %s\n", MSP_SEED_FILE);
        return -1;
    }
    char line[4096];
    int state = 0, n = 0; /* 0 before from, 1 inside, 2 reached to */
    while (state < 2 && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (state == 0) {
            state = strstr(line, from) != NULL;
        } else if (strstr(line, to) != NULL) {
            state = 2;
        } else if (is_ref_start(line) && n < max && split_row(line, &rows[n])) {
            n++;
        }
    }
    fclose(f);
    if (state != 2) {
        fprintf(stderr, "seed: markers '%s' .. '%s' not found\n", from, to);
        return -1;
    }
    return n;
}
