#include "msp/log.h"

#include <stdarg.h>
#include <stdio.h>

void msp_log(const msp_logger_t *lg, msp_log_level_t level, const char *fmt, ...)
{
    if (lg == NULL || lg->emit == NULL || level > lg->max_level) {
        return;
    }
    /* One bounded line: a log message is for a person, never a data dump. */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    lg->emit(lg->ctx, level, msg);
}

void msp_log_stderr(void *ctx, msp_log_level_t level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)ctx;
    const char *name = (unsigned)level < sizeof(names) / sizeof(names[0]) ? names[level] : "log";
    fprintf(stderr, "msp: %s: %s\n", name, msg);
}
