/*
 * Logging through an injected sink: the library holds no global logger and
 * never writes to a stream by itself; the CLI passes msp_log_stderr.
 */
#ifndef MSP_LOG_H
#define MSP_LOG_H

#include "msp/api.h"

typedef enum msp_log_level {
    MSP_LOG_ERROR = 0,
    MSP_LOG_WARN = 1,
    MSP_LOG_INFO = 2,
    MSP_LOG_DEBUG = 3,
} msp_log_level_t;

typedef struct msp_logger {
    void (*emit)(void *ctx, msp_log_level_t level, const char *msg);
    void *ctx;
    msp_log_level_t max_level; /* messages above this are dropped unformatted */
} msp_logger_t;

/** Formats and emits one message; lg may be NULL (then nothing happens). */
MSP_API void msp_log(const msp_logger_t *lg, msp_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** A sink that writes "msp: LEVEL: msg\n" to stderr; ctx is unused. */
MSP_API void msp_log_stderr(void *ctx, msp_log_level_t level, const char *msg);

#endif
