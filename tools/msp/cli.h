/* What every msp command shares: output in one piece, one-line errors. */
#ifndef MSP_CLI_H
#define MSP_CLI_H

#include <sys/types.h>

#include "msp/buf.h"
#include "msp/error.h"

/* Exit statuses, the same for every command. */
enum {
    CLI_OK = 0,
    CLI_FAIL = 1,  /* the input was read and found wanting */
    CLI_USAGE = 2, /* bad arguments, or input that could not be read at all */
};

#define CLI_OUTPUT_LIMIT (64u << 20)

/** Prints "msp CMD: message" on stderr as one line. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Prints an msp_error_t as "WHERE: error: DETAIL" (or "CMD: error: ..." without a place). */
void cli_print_error(const char *cmd, const msp_error_t *err);

/**
 * Writes the buffer to stdout in one piece. Output is only ever written
 * whole, after it has been rendered completely, so a failure never leaves
 * half a report behind. Returns CLI_OK or CLI_FAIL (with a message).
 */
int cli_write_stdout(const char *cmd, msp_buf_t *b);

/**
 * Writes a file whole or not at all (temporary file in the same folder,
 * fsync, rename), with the given permissions. Prints one line and returns
 * CLI_USAGE on failure.
 */
int cli_write_file(const char *cmd, const char *path, const void *p, size_t n, mode_t mode);

/**
 * mkdir -p: creates path and the folders above it that are missing, with
 * mode. 0, or -1 with errno (ENOTDIR for a file in the way). *created gets
 * how many levels were made (for cli_rmdirs), also on failure.
 */
int cli_mkdirs(const char *path, mode_t mode, int *created);

/** Removes the created innermost levels of path again (as far as they are empty). */
void cli_rmdirs(const char *path, int created);

/** True when argv holds -h or --help before any "--". */
int cli_wants_help(int argc, char **argv);

int cmd_framework(int argc, char **argv);
int cmd_ets(int argc, char **argv);
/* msp ets subcommands in cmd_ets_*.c, dispatched by cmd_ets() */
int cmd_ets_keymgr(int argc, char **argv);
int cmd_ets_decrypt(int argc, char **argv);
int cmd_ets_probe(int argc, char **argv);
int cmd_ets_keys(int argc, char **argv, const char *verb);

#endif
