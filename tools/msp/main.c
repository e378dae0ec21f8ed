/* msp: one binary, one subcommand per part of ETSI TS 103 523. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "prog.h"

static const char usage[] =
    "usage: msp [--version] [--help] COMMAND [ARGS]\n"
    "\n"
    "msp implements the ETSI Middlebox Security Protocol series (TS 103 523).\n"
    "\n"
    "commands:\n"
    "  framework   MSP Framework (Part 1): template requirements, profile checks,\n"
    "              conformance reports and comparisons\n"
    "  client      TLMSP (Part 2) client, with the ETSI reference's flags and .ucl files\n"
    "  middlebox   TLMSP middlebox (one or more of a configuration's)\n"
    "  server      TLMSP server\n"
    "  demo        client -> middlebox -> server on loopback with generated certificates\n"
    "  ets         ETS (Part 3): static keys, visibility certificates, probe, key manager, decrypt\n"
    "\n"
    "Run 'msp COMMAND --help' for a command's own options.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("msp %s\n", MSP_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "framework") == 0) {
        return cmd_framework(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "client") == 0) {
        return cmd_tlmsp_client(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "server") == 0) {
        return cmd_tlmsp_server(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "middlebox") == 0) {
        return cmd_tlmsp_middlebox(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "demo") == 0) {
        return cmd_tlmsp_demo(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "ets") == 0) {
        return cmd_ets(argc - 1, argv + 1);
    }
    cli_error("msp", "unknown command '%s' (see 'msp --help')", cmd);
    return CLI_USAGE;
}
