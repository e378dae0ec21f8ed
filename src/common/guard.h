/*
 * One error idiom for library code (after s2n-tls's utils/s2n_safety_macros.h).
 *
 * A function returns an msp/error.h code; a check either passes or returns
 * the code that names what failed, which for a protocol check is the alert
 * the connection sends (tlmsp-handshake.md 7.5: "every failure is the alert
 * that names it"). So:
 *
 *   MSP_GUARD(f(x));                          propagate a non-zero code
 *   MSP_ENSURE(n <= MAX, MSP_ALERT_DECODE_ERROR); a rule: return that alert when broken
 *   MSP_ENSURE_ERR(err, ok, MSP_ERR_INVALID, "bad %s", what);  and say why in an msp_error_t
 *
 * and, where something must be released on every path, the _GOTO forms that
 * keep the code in ret and jump to one cleanup label:
 *
 *   MSP_GUARD_GOTO(ret, f(x), out);
 *   MSP_ENSURE_GOTO(ret, p != NULL, MSP_ERR_NO_MEMORY, out);
 *
 * Internal header (not part of the public API): include it from src/ only.
 */
#ifndef MSP_COMMON_GUARD_H
#define MSP_COMMON_GUARD_H

#include "msp/error.h"

#define MSP_GUARD_STR2(x) #x
#define MSP_GUARD_STR(x) MSP_GUARD_STR2(x)
/** "file:line" of the check, for msp_error_t.where. */
#define MSP_WHERE __FILE__ ":" MSP_GUARD_STR(__LINE__)

/** Evaluates expr once; a non-zero code is returned to the caller as it is. */
#define MSP_GUARD(expr)                                                                                                \
    do {                                                                                                               \
        int msp_guard_rc_ = (expr);                                                                                    \
        if (msp_guard_rc_ != MSP_OK) {                                                                                 \
            return msp_guard_rc_;                                                                                      \
        }                                                                                                              \
    } while (0)

/** When cond is false, returns code (an alert 1..255 is the alert that is sent). */
#define MSP_ENSURE(cond, code)                                                                                         \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            return (code);                                                                                             \
        }                                                                                                              \
    } while (0)

/** MSP_ENSURE that also records code, the place and a printf-style reason in err (which may be NULL). */
#define MSP_ENSURE_ERR(err, cond, code, ...)                                                                           \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            return msp_error_set((err), (code), MSP_WHERE, __VA_ARGS__);                                               \
        }                                                                                                              \
    } while (0)

/** MSP_GUARD that keeps the code in rc and jumps to label (the function's cleanup). */
#define MSP_GUARD_GOTO(rc, expr, label)                                                                                \
    do {                                                                                                               \
        (rc) = (expr);                                                                                                 \
        if ((rc) != MSP_OK) {                                                                                          \
            goto label;                                                                                                \
        }                                                                                                              \
    } while (0)

/** MSP_ENSURE that keeps code in rc and jumps to label. */
#define MSP_ENSURE_GOTO(rc, cond, code, label)                                                                         \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            (rc) = (code);                                                                                             \
            goto label;                                                                                                \
        }                                                                                                              \
    } while (0)

#endif
