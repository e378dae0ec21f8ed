#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_print_error(const char *cmd, const msp_error_t *err)
{
    const char *detail = err->detail[0] != '\0' ? err->detail : msp_error_name(err->code);
    if (err->where[0] != '\0') {
        fprintf(stderr, "%s: error: %s\n", err->where, detail);
    } else {
        fprintf(stderr, "%s: error: %s\n", cmd, detail);
    }
}

int cli_write_stdout(const char *cmd, msp_buf_t *b)
{
    if (msp_buf_error(b) != MSP_OK) {
        cli_error(cmd, "error: cannot render the output: %s", msp_error_name(msp_buf_error(b)));
        return CLI_FAIL;
    }
    if ((b->len > 0 && fwrite(b->base, 1, b->len, stdout) != b->len) || fflush(stdout) != 0) {
        cli_error(cmd, "error: cannot write to standard output: %s", strerror(errno));
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            return 0;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            return 1;
        }
    }
    return 0;
}

int cli_write_file(const char *cmd, const char *path, const void *p, size_t n, mode_t mode)
{
    /* A temporary file beside the target, renamed over it only once complete: readers (a provider
     * re-reading a rotated key, say) never see half a file, and a failure leaves the old one. */
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp) {
        cli_error(cmd, "%s: error: path too long", path);
        return CLI_USAGE;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cli_error(cmd, "%s: error: %s", path, strerror(errno));
        return CLI_USAGE;
    }
    const uint8_t *b = p;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, b + done, n - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        done += (size_t)w;
    }
    int saved = errno;
    if (done != n || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(tmp);
        cli_error(cmd, "%s: error: %s", path, strerror(saved));
        return CLI_USAGE;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        cli_error(cmd, "%s: error: %s", path, strerror(saved));
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_mkdirs(const char *path, mode_t mode, int *created)
{
    char p[4096];
    *created = 0;
    if ((size_t)snprintf(p, sizeof p, "%s", path) >= sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') {
            continue;
        }
        char c = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(p, mode) == 0) {
            (*created)++;
        } else if (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            errno = errno == EEXIST ? ENOTDIR : errno;
            return -1;
        }
        *s = c;
        if (c == '\0') {
            return 0;
        }
    }
}

void cli_rmdirs(const char *path, int created)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') {
        p[--n] = '\0';
    }
    for (; created > 0 && rmdir(p) == 0; created--) {
        char *slash = strrchr(p, '/');
        if (slash == NULL) {
            break;
        }
        *slash = '\0';
    }
}
