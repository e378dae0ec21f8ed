/*
 * Runs a libFuzzer target over files and directories without libFuzzer, so
 * the committed corpora replay under gcc and the sanitizers in CTest.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    /* Corpus files are small; 4 MiB is far above any of them. */
    size_t cap = 4u << 20;
    uint8_t *buf = malloc(cap);
    size_t n = buf != NULL ? fread(buf, 1, cap, f) : 0;
    int bad = buf == NULL || ferror(f) || n == cap;
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: cannot read %s (or it is over 4 MiB)\n", path);
        free(buf);
        return 1;
    }
    /* Exact-size copy, so ASan sees reads past the end of the input. */
    uint8_t *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        free(buf);
        return 1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open directory %s\n", dir);
        return 1;
    }
    char *names[4096];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 4096) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp);
    int fails = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        fails += run_file(path);
        (*count)++;
        free(names[i]);
    }
    return fails;
}

int main(int argc, char **argv)
{
    int fails = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            fails += run_dir(argv[i], &count);
        } else {
            fails += run_file(argv[i]);
            count++;
        }
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs\n");
        return 1;
    }
    printf("replayed %d inputs, %d unreadable\n", count, fails);
    return fails != 0;
}
