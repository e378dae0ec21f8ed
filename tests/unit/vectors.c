#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vec_load(vec_file_t *f, const char *relpath)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", MSP_VECTORS_DIR, relpath);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "vectors: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 1u << 24;
    f->text = malloc(cap + 1);
    f->len = f->text != NULL ? fread(f->text, 1, cap, fp) : 0;
    int bad = f->text == NULL || ferror(fp) || f->len == cap;
    fclose(fp);
    if (bad) {
        fprintf(stderr, "vectors: cannot read %s\n", path);
        free(f->text);
        f->text = NULL;
        return -1;
    }
    f->text[f->len] = '\0';
    return 0;
}

void vec_free(vec_file_t *f)
{
    free(f->text);
    f->text = NULL;
}

const char *vec_section(const vec_file_t *f, const char *heading)
{
    if (heading == NULL) {
        return f->text;
    }
    size_t n = strlen(heading);
    for (const char *p = f->text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, heading, n) == 0) {
            return p;
        }
    }
    return NULL;
}

/* The text after label's separator on the first matching line, and its length to the end of line. */
static const char *find_value(const char *from, const char *label, size_t *len)
{
    size_t n = strlen(label);
    int first = 1;
    for (const char *p = from; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!first && strncmp(p, "### ", 4) == 0) {
            return NULL;
        }
        first = 0;
        const char *s = p + strspn(p, " ");
        if (strncmp(s, label, n) != 0) {
            continue;
        }
        const char *eol = s + strcspn(s, "\n");
        const char *colon = strstr(s + n, ": ");
        const char *equals = strstr(s + n, " = ");
        const char *sep = colon;
        size_t skip = 2;
        if (sep == NULL || sep > eol) {
            sep = equals;
            skip = 3;
        }
        if (sep == NULL || sep > eol) {
            continue;
        }
        const char *v = sep + skip;
        v += strspn(v, " ");
        *len = (size_t)(eol - v);
        return v;
    }
    return NULL;
}

long vec_unhex(const char *hex, size_t hexlen, uint8_t *out, size_t max)
{
    if (hexlen % 2 != 0 || hexlen / 2 > max) {
        return -1;
    }
    for (size_t i = 0; i < hexlen / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 || strchr("0123456789abcdefABCDEF", hex[2 * i]) == NULL ||
            strchr("0123456789abcdefABCDEF", hex[2 * i + 1]) == NULL) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return (long)(hexlen / 2);
}

long vec_hex(const char *from, const char *label, uint8_t *out, size_t max)
{
    size_t len;
    const char *v = find_value(from, label, &len);
    if (v == NULL) {
        return -1;
    }
    size_t n = strspn(v, "0123456789abcdefABCDEF");
    return vec_unhex(v, n < len ? n : len, out, max);
}

long vec_text(const char *from, const char *label, char *out, size_t max)
{
    size_t len;
    const char *v = find_value(from, label, &len);
    if (v == NULL || len + 1 > max) {
        return -1;
    }
    memcpy(out, v, len);
    out[len] = '\0';
    return (long)len;
}
