#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
