/* msp framework: the MSP Framework of ETSI TS 103 523-1 on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "msp/framework.h"

static const char usage[] =
    "usage: msp framework SUBCOMMAND [OPTIONS]\n"
    "\n"
    "The MSP Framework of ETSI TS 103 523-1: the template requirements of\n"
    "Tables 6.2-6.5, and profiles that record a Selection Process and a\n"
    "Conformance Analysis (clause 6.1).\n"
    "\n"
    "subcommands:\n"
    "  catalog [--format F]            the template requirements\n"
    "  list                            the shipped profiles\n"
    "  new NAME                        print a profile skeleton to fill in\n"
    "  check PROFILE... [--require-series]\n"
    "                                  check a profile against the rules of clause 6.1;\n"
    "                                  one line per finding: PROFILE:REF: error|warning|erratum: ...\n"
    "  report PROFILE [--format F]     the four tables, verdict and errata\n"
    "  compare PROFILE... [--format F] one matrix, a column per profile\n"
    "\n"
    "PROFILE is a path to a .ucl file or the name of a shipped profile (ets,\n"
    "split-proxy). F is text (default), md, json or html.\n"
    "\n"
    "exit status: 0 no error; 1 an error was found (check: a rule is broken, or\n"
    "with --require-series an MSP-Mandatory requirement is not met); 2 bad\n"
    "arguments or unreadable input.\n";

#define CMD "msp framework"

typedef struct args {
    const char *positional[64];
    int npositional;
    msp_fw_format_t format;
    int require_series;
} args_t;

/* Options may come before or after the operands; "--" ends options. */
static int parse_args(int argc, char **argv, int allow_series, args_t *a)
{
    memset(a, 0, sizeof(*a));
    int options = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (options && strcmp(s, "--") == 0) {
            options = 0;
        } else if (options && (strcmp(s, "--format") == 0 || strncmp(s, "--format=", 9) == 0 || strcmp(s, "-f") == 0)) {
            const char *v = s[2] == 'f' && s[8] == '=' ? s + 9 : (i + 1 < argc ? argv[++i] : NULL);
            int f = v != NULL ? msp_fw_format_parse(v) : -1;
            if (f < 0) {
                cli_error(CMD, "--format takes text, md, json or html%s%s", v ? ", not " : "", v ? v : "");
                return -1;
            }
            a->format = (msp_fw_format_t)f;
        } else if (options && allow_series && strcmp(s, "--require-series") == 0) {
            a->require_series = 1;
        } else if (options && s[0] == '-' && s[1] != '\0') {
            cli_error(CMD, "unknown option '%s' (see '%s %s --help')", s, CMD, argv[0]);
            return -1;
        } else if (a->npositional < (int)(sizeof(a->positional) / sizeof(a->positional[0]))) {
            a->positional[a->npositional++] = s;
        } else {
            cli_error(CMD, "too many operands");
            return -1;
        }
    }
    return 0;
}

static int load_catalog(msp_fw_catalog_t **cat)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_fw_catalog_builtin(cat, &err) != MSP_OK) {
        cli_print_error(CMD " catalog", &err);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Loads and checks; CLI_USAGE when unreadable (already printed). */
static int load_checked(const msp_fw_catalog_t *cat, const char *arg, msp_fw_profile_t **p)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_fw_profile_load(cat, arg, p, &err) != MSP_OK) {
        cli_print_error(CMD, &err);
        return CLI_USAGE;
    }
    msp_fw_check(*p);
    return CLI_OK;
}

/* report and compare render only well-formed profiles: their errors go to stderr. */
static int refuse_if_errors(const msp_fw_profile_t *p)
{
    if (msp_fw_count(p, MSP_FW_ERROR) == 0) {
        return CLI_OK;
    }
    for (size_t i = 0; i < p->nfindings; i++) {
        if (p->findings[i].severity == MSP_FW_ERROR) {
            fprintf(stderr, "%s:%s: error: %s\n", p->source_name, p->findings[i].ref, p->findings[i].message);
        }
    }
    cli_error(CMD, "%s: %zu error%s; fix them first ('%s check %s')", p->source_name, msp_fw_count(p, MSP_FW_ERROR),
              msp_fw_count(p, MSP_FW_ERROR) == 1 ? "" : "s", CMD, p->source_name);
    return CLI_FAIL;
}

static int sub_catalog(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional != 0) {
        cli_error(CMD, "catalog takes no operands");
        return CLI_USAGE;
    }
    msp_buf_t b;
    msp_buf_init(&b, CLI_OUTPUT_LIMIT);
    msp_fw_render_catalog(cat, a->format, &b);
    int ret = cli_write_stdout(CMD, &b);
    msp_buf_free(&b);
    return ret;
}

static int sub_list(const args_t *a)
{
    if (a->npositional != 0) {
        cli_error(CMD, "list takes no operands");
        return CLI_USAGE;
    }
    for (size_t i = 0; msp_fw_shipped_name(i) != NULL; i++) {
        printf("%s\n", msp_fw_shipped_name(i));
    }
    return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}

static int sub_new(const args_t *a, const msp_fw_catalog_t *cat)
{
    const char *name = a->npositional == 1 ? a->positional[0] : NULL;
    if (name == NULL || name[0] == '\0' || strlen(name) > 64 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(name)) {
        cli_error(CMD, "new takes one NAME of 1-64 characters in [a-z0-9-]");
        return CLI_USAGE;
    }
    msp_buf_t b;
    msp_buf_init(&b, CLI_OUTPUT_LIMIT);
    msp_fw_render_new(cat, name, &b);
    int ret = cli_write_stdout(CMD, &b);
    msp_buf_free(&b);
    return ret;
}

static int check_one(const msp_fw_catalog_t *cat, const char *arg, int require_series)
{
    msp_fw_profile_t *p;
    int ret = load_checked(cat, arg, &p);
    if (ret != CLI_OK) {
        return ret;
    }
    msp_buf_t b;
    msp_buf_init(&b, CLI_OUTPUT_LIMIT);
    msp_fw_render_findings(p, &b);
    size_t errors = msp_fw_count(p, MSP_FW_ERROR);
    int series = msp_fw_in_series(p);
    if (errors == 0) {
        msp_buf_printf(&b, "%s: verdict: ", p->source_name);
        msp_fw_render_verdict(p, &b);
        msp_buf_puts(&b, "\n");
    }
    ret = cli_write_stdout(CMD, &b);
    msp_buf_free(&b);
    if (ret == CLI_OK && (errors > 0 || (require_series && !series))) {
        ret = CLI_FAIL;
    }
    msp_fw_profile_free(p);
    return ret;
}

static int sub_check(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional == 0) {
        cli_error(CMD, "check needs at least one PROFILE");
        return CLI_USAGE;
    }
    int worst = CLI_OK;
    for (int i = 0; i < a->npositional; i++) {
        int ret = check_one(cat, a->positional[i], a->require_series);
        worst = ret > worst ? ret : worst;
    }
    return worst;
}

static int sub_report(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional != 1) {
        cli_error(CMD, "report takes exactly one PROFILE");
        return CLI_USAGE;
    }
    msp_fw_profile_t *p;
    int ret = load_checked(cat, a->positional[0], &p);
    if (ret != CLI_OK) {
        return ret;
    }
    ret = refuse_if_errors(p);
    if (ret == CLI_OK) {
        msp_buf_t b;
        msp_buf_init(&b, CLI_OUTPUT_LIMIT);
        msp_fw_render_report(p, a->format, &b);
        ret = cli_write_stdout(CMD, &b);
        msp_buf_free(&b);
    }
    msp_fw_profile_free(p);
    return ret;
}

static int sub_compare(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional < 1) {
        cli_error(CMD, "compare needs at least one PROFILE");
        return CLI_USAGE;
    }
    msp_fw_profile_t *ps[64] = {0};
    int ret = CLI_OK;
    for (int i = 0; i < a->npositional && ret == CLI_OK; i++) {
        ret = load_checked(cat, a->positional[i], &ps[i]);
        if (ret == CLI_OK) {
            ret = refuse_if_errors(ps[i]);
        }
    }
    if (ret == CLI_OK) {
        msp_buf_t b;
        msp_buf_init(&b, CLI_OUTPUT_LIMIT);
        msp_fw_render_compare((const msp_fw_profile_t *const *)ps, (size_t)a->npositional, a->format, &b);
        ret = cli_write_stdout(CMD, &b);
        msp_buf_free(&b);
    }
    for (int i = 0; i < a->npositional; i++) {
        msp_fw_profile_free(ps[i]);
    }
    return ret;
}

int cmd_framework(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    static const char *const subs[] = {"catalog", "list", "new", "check", "report", "compare", NULL};
    int known = 0;
    for (int i = 0; subs[i] != NULL; i++) {
        known |= strcmp(sub, subs[i]) == 0;
    }
    if (!known) {
        cli_error(CMD, "unknown subcommand '%s' (see '%s --help')", sub, CMD);
        return CLI_USAGE;
    }
    if (cli_wants_help(argc - 1, argv + 1)) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    args_t a;
    if (parse_args(argc - 1, argv + 1, strcmp(sub, "check") == 0, &a) != 0) {
        return CLI_USAGE;
    }
    if (strcmp(sub, "list") == 0) {
        return sub_list(&a);
    }
    msp_fw_catalog_t *cat;
    if (load_catalog(&cat) != CLI_OK) {
        return CLI_FAIL;
    }
    int ret = strcmp(sub, "catalog") == 0  ? sub_catalog(&a, cat)
              : strcmp(sub, "new") == 0    ? sub_new(&a, cat)
              : strcmp(sub, "check") == 0  ? sub_check(&a, cat)
              : strcmp(sub, "report") == 0 ? sub_report(&a, cat)
                                           : sub_compare(&a, cat);
    msp_fw_catalog_free(cat);
    return ret;
}
