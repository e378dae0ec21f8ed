/* msp framework: the MSP Framework of ETSI TS 103 523-1 on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "msp/framework.h"
#include "msp/version.h"

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
    "  check PROFILE... [--require-series] [--no-errata] [--format text|json|sarif]\n"
    "                                  check a profile against the rules of clause 6.1;\n"
    "                                  one line per finding: PROFILE:REF: error|warning|erratum: ...,\n"
    "                                  then the verdict as printed and after errata\n"
    "  report PROFILE [--format F] [--no-errata]\n"
    "                                  the Conformance Analysis: per principle the table and\n"
    "                                  the MM/PM/PO/PNA/PR sections with justifications;\n"
    "                                  both verdicts and the errata\n"
    "  compare PROFILE... [--format F] [--no-errata]\n"
    "                                  one matrix, a column per profile\n"
    "  conform PROFILE --results FILE [--format F] [--no-errata]\n"
    "                                  every met claim against CTest's JUnit results\n"
    "                                  (ctest --output-junit FILE): proven (all its evidence\n"
    "                                  passed), unproven (no evidence, or evidence not run) or\n"
    "                                  contradicted (evidence failed)\n"
    "  diff OLD NEW [--format text|md|json]\n"
    "                                  what changed between two versions of a profile: per\n"
    "                                  requirement label, met, text, justification, erratum,\n"
    "                                  evidence; the threat model and Stage 3 notes\n"
    "  export (catalog | PROFILE) --format oscal [--kind K] [--results FILE] [--no-errata]\n"
    "                                  an OSCAL 1.1 JSON document (docs/oscal.md): K is catalog\n"
    "                                  (for catalog), profile (the default for a PROFILE: its\n"
    "                                  selection, labels, may->shall/should alterations),\n"
    "                                  component-definition (its Conformance Analysis) or\n"
    "                                  assessment-results (conform's verdicts on the JUnit\n"
    "                                  results of --results FILE: a finding per claim, its\n"
    "                                  evidence as observations); last-modified is\n"
    "                                  $SOURCE_DATE_EPOCH, else now\n"
    "\n"
    "PROFILE is a path to a .ucl file or the name of a shipped profile (ets,\n"
    "split-proxy). F is text (default), md, json or html. --no-errata takes\n"
    "every profile as printed: its errata are ignored by the rules and the verdict.\n"
    "Reports carry their provenance: msp version, catalog version, SHA-256 of the\n"
    "profile input and the date (SOURCE_DATE_EPOCH when set, else now).\n"
    "\n"
    "exit status: 0 no error; 1 an error was found (check: a rule is broken, or\n"
    "with --require-series an MSP-Mandatory requirement is not met after errata,\n"
    "or as printed with --no-errata; conform: a claim is unproven or contradicted;\n"
    "diff: the profiles differ); 2 bad arguments or unreadable input.\n";

#define CMD "msp framework"

typedef struct args {
    const char *positional[64];
    int npositional;
    msp_fw_format_t format;
    int require_series;
    int no_errata;
    const char *results;
    const char *kind; /* export --kind */
} args_t;

/* Which options a subcommand takes. */
typedef struct sub_opts {
    const char *formats; /* the --format values it takes, as a message fragment; NULL: no --format */
    int series;          /* --require-series */
    int no_errata;       /* --no-errata */
    int results;         /* --results FILE */
} sub_opts_t;

static int format_ok(const sub_opts_t *o, int f)
{
    static const char *const names[] = {"text", "md", "json", "html", "sarif"};
    return f >= 0 && f < 5 && strstr(o->formats, names[f]) != NULL;
}

static int parse_format(const char *sub, const sub_opts_t *o, const char *v, args_t *a)
{
    if (o->formats == NULL) {
        cli_error(CMD, "%s takes no --format", sub);
        return -1;
    }
    int f = v != NULL ? msp_fw_format_parse(v) : -1;
    if (strcmp(o->formats, "oscal") == 0) { /* export: one format, OSCAL JSON */
        f = v != NULL && strcmp(v, "oscal") == 0 ? MSP_FW_JSON : -1;
    }
    if (f < 0 || (strcmp(o->formats, "oscal") != 0 && !format_ok(o, f))) {
        cli_error(CMD, "--format takes %s%s%s", o->formats, v ? ", not " : "", v ? v : "");
        return -1;
    }
    a->format = (msp_fw_format_t)f;
    return 0;
}

/* Options may come before or after the operands; "--" ends options. */
static int parse_args(int argc, char **argv, const sub_opts_t *o, args_t *a)
{
    memset(a, 0, sizeof(*a));
    int options = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (options && strcmp(s, "--") == 0) {
            options = 0;
        } else if (options && (strcmp(s, "--format") == 0 || strncmp(s, "--format=", 9) == 0 || strcmp(s, "-f") == 0)) {
            const char *v = s[2] == 'f' && s[8] == '=' ? s + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (parse_format(argv[0], o, v, a) != 0) {
                return -1;
            }
        } else if (options && o->series && strcmp(s, "--require-series") == 0) {
            a->require_series = 1;
        } else if (options && o->no_errata && strcmp(s, "--no-errata") == 0) {
            a->no_errata = 1;
        } else if (options && o->results && strcmp(s, "--results") == 0) {
            if (i + 1 >= argc) {
                cli_error(CMD, "--results needs a FILE");
                return -1;
            }
            a->results = argv[++i];
        } else if (options && o->formats != NULL && strcmp(o->formats, "oscal") == 0 &&
                   (strcmp(s, "--kind") == 0 || strncmp(s, "--kind=", 7) == 0)) {
            a->kind = s[6] == '=' ? s + 7 : i + 1 < argc ? argv[++i] : "";
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

/* The date a report states: SOURCE_DATE_EPOCH (reproducible builds) when set and valid, else now. */
static int64_t report_time(void)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    char *end = NULL;
    long long v = s != NULL && s[0] != '\0' ? strtoll(s, &end, 10) : -1;
    return end != NULL && *end == '\0' && v >= 0 ? (int64_t)v : (int64_t)time(NULL);
}

/* Loads and checks; CLI_USAGE when unreadable (already printed). */
static int load_checked(const msp_fw_catalog_t *cat, const char *arg, int no_errata, msp_fw_profile_t **p)
{
    msp_error_t err;
    msp_error_clear(&err);
    if (msp_fw_profile_load(cat, arg, p, &err) != MSP_OK) {
        cli_print_error(CMD, &err);
        return CLI_USAGE;
    }
    if (no_errata) {
        msp_fw_ignore_errata(*p);
    }
    msp_fw_check(*p);
    msp_fw_set_provenance(*p, msp_version(), report_time());
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

/* The verdict --require-series asks for: after errata, or as printed when they are ignored. */
static int fails_series(const msp_fw_profile_t *p)
{
    return p->errata_ignored ? !msp_fw_in_series_as_printed(p) : !msp_fw_in_series(p);
}

static int sub_check(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional == 0) {
        cli_error(CMD, "check needs at least one PROFILE");
        return CLI_USAGE;
    }
    /* Unreadable profiles are reported on stderr and left out; the rest are checked and printed together. */
    msp_fw_profile_t *ps[64] = {0};
    size_t n = 0;
    int worst = CLI_OK;
    for (int i = 0; i < a->npositional; i++) {
        int ret = load_checked(cat, a->positional[i], a->no_errata, &ps[n]);
        if (ret != CLI_OK) {
            worst = ret > worst ? ret : worst;
            continue;
        }
        if (msp_fw_count(ps[n], MSP_FW_ERROR) > 0 || (a->require_series && fails_series(ps[n]))) {
            worst = worst > CLI_FAIL ? worst : CLI_FAIL;
        }
        n++;
    }
    if (n > 0) {
        msp_buf_t b;
        msp_buf_init(&b, CLI_OUTPUT_LIMIT);
        msp_fw_render_check((const msp_fw_profile_t *const *)ps, n, a->format, &b);
        int ret = cli_write_stdout(CMD, &b);
        msp_buf_free(&b);
        worst = ret > worst ? ret : worst;
    }
    for (size_t i = 0; i < n; i++) {
        msp_fw_profile_free(ps[i]);
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
    int ret = load_checked(cat, a->positional[0], a->no_errata, &p);
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
        ret = load_checked(cat, a->positional[i], a->no_errata, &ps[i]);
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

static int sub_conform(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional != 1 || a->results == NULL) {
        cli_error(CMD, "conform takes one PROFILE and --results FILE");
        return CLI_USAGE;
    }
    msp_error_t err;
    msp_error_clear(&err);
    msp_fw_junit_t *j;
    if (msp_fw_junit_load(a->results, &j, &err) != MSP_OK) {
        cli_print_error(CMD, &err);
        return CLI_USAGE;
    }
    msp_fw_profile_t *p;
    int ret = load_checked(cat, a->positional[0], a->no_errata, &p);
    if (ret == CLI_OK) {
        ret = refuse_if_errors(p);
    }
    if (ret == CLI_OK) {
        msp_buf_t b;
        msp_buf_init(&b, CLI_OUTPUT_LIMIT);
        size_t bad = 0;
        msp_fw_render_conform(p, j, a->format, &b, &bad);
        ret = cli_write_stdout(CMD, &b);
        ret = ret == CLI_OK && bad > 0 ? CLI_FAIL : ret;
        msp_buf_free(&b);
    }
    msp_fw_profile_free(p);
    msp_fw_junit_free(j);
    return ret;
}

static int sub_diff(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional != 2) {
        cli_error(CMD, "diff takes two profiles: OLD NEW");
        return CLI_USAGE;
    }
    msp_fw_profile_t *ps[2] = {NULL, NULL};
    int ret = CLI_OK;
    for (int i = 0; i < 2 && ret == CLI_OK; i++) {
        ret = load_checked(cat, a->positional[i], 0, &ps[i]);
    }
    if (ret == CLI_OK) {
        msp_buf_t b;
        msp_buf_init(&b, CLI_OUTPUT_LIMIT);
        size_t changes = 0;
        msp_fw_render_diff(ps[0], ps[1], a->format, &b, &changes);
        ret = cli_write_stdout(CMD, &b);
        ret = ret == CLI_OK && changes > 0 ? CLI_FAIL : ret;
        msp_buf_free(&b);
    }
    msp_fw_profile_free(ps[0]);
    msp_fw_profile_free(ps[1]);
    return ret;
}

/* The documents' time: $SOURCE_DATE_EPOCH for reproducible builds, else now. -1 when it is not a number. */
static int64_t export_time(void)
{
    const char *e = getenv("SOURCE_DATE_EPOCH");
    if (e == NULL || e[0] == '\0') {
        return (int64_t)time(NULL);
    }
    char *end;
    long long v = strtoll(e, &end, 10);
    return *end == '\0' && e[0] != '-' && v < 253402300800LL ? (int64_t)v : -1;
}

static int sub_export(const args_t *a, const msp_fw_catalog_t *cat)
{
    if (a->npositional != 1 || a->format != MSP_FW_JSON) {
        cli_error(CMD, "export takes one operand, catalog or a PROFILE, and --format oscal");
        return CLI_USAGE;
    }
    int is_cat = strcmp(a->positional[0], "catalog") == 0;
    const char *kind = a->kind != NULL ? a->kind : is_cat ? "catalog" : "profile";
    int is_ar = strcmp(kind, "assessment-results") == 0;
    if (is_cat ? strcmp(kind, "catalog") != 0
               : strcmp(kind, "profile") != 0 && strcmp(kind, "component-definition") != 0 && !is_ar) {
        cli_error(CMD, "--kind takes %s, not '%s'",
                  is_cat ? "catalog for the catalog" : "profile, component-definition or assessment-results", kind);
        return CLI_USAGE;
    }
    if (is_ar != (a->results != NULL)) {
        cli_error(CMD, is_ar ? "--kind assessment-results needs --results FILE"
                             : "--results goes with --kind assessment-results");
        return CLI_USAGE;
    }
    int64_t when = export_time();
    if (when < 0) {
        cli_error(CMD, "SOURCE_DATE_EPOCH: not a number of seconds since 1970");
        return CLI_USAGE;
    }
    msp_error_t err;
    msp_error_clear(&err);
    msp_fw_junit_t *j = NULL;
    if (is_ar && msp_fw_junit_load(a->results, &j, &err) != MSP_OK) {
        cli_print_error(CMD, &err);
        return CLI_USAGE;
    }
    msp_fw_profile_t *p = NULL;
    int ret = is_cat ? CLI_OK : load_checked(cat, a->positional[0], a->no_errata, &p);
    ret = ret == CLI_OK && p != NULL ? refuse_if_errors(p) : ret;
    if (ret == CLI_OK) {
        msp_buf_t b;
        msp_buf_init(&b, CLI_OUTPUT_LIMIT);
        int rc = MSP_OK;
        if (is_cat) {
            rc = msp_fw_oscal_catalog(cat, when, &b);
        } else if (strcmp(kind, "profile") == 0) {
            rc = msp_fw_oscal_profile(p, when, &b);
        } else if (!is_ar) {
            rc = msp_fw_oscal_component(p, when, &b);
        } else {
            rc = msp_fw_oscal_conform(p, j, when, when, &b, &err); /* the run's time is the export's */
        }
        if (rc != MSP_OK) {
            err.code = rc;
            cli_print_error(CMD, &err);
            ret = CLI_FAIL;
        } else {
            ret = cli_write_stdout(CMD, &b);
        }
        msp_buf_free(&b);
    }
    msp_fw_profile_free(p);
    msp_fw_junit_free(j);
    return ret;
}

int cmd_framework(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    /* Each subcommand and the options it takes: --format values, --require-series, --no-errata. */
    static const struct {
        const char *name;
        sub_opts_t opts;
    } subs[] = {
        {"catalog", {"text, md, json or html", 0, 0, 0}},
        {"list", {NULL, 0, 0, 0}},
        {"new", {NULL, 0, 0, 0}},
        {"check", {"text, json or sarif", 1, 1, 0}},
        {"report", {"text, md, json or html", 0, 1, 0}},
        {"compare", {"text, md, json or html", 0, 1, 0}},
        {"conform", {"text, md, json or html", 0, 1, 1}},
        {"diff", {"text, md or json", 0, 0, 0}},
        {"export", {"oscal", 0, 1, 1}}, /* and --kind */
    };
    const sub_opts_t *opts = NULL;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        opts = strcmp(sub, subs[i].name) == 0 ? &subs[i].opts : opts;
    }
    if (opts == NULL) {
        cli_error(CMD, "unknown subcommand '%s' (see '%s --help')", sub, CMD);
        return CLI_USAGE;
    }
    if (cli_wants_help(argc - 1, argv + 1)) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    args_t a;
    if (parse_args(argc - 1, argv + 1, opts, &a) != 0) {
        return CLI_USAGE;
    }
    if (strcmp(sub, "list") == 0) {
        return sub_list(&a);
    }
    msp_fw_catalog_t *cat;
    if (load_catalog(&cat) != CLI_OK) {
        return CLI_FAIL;
    }
    int ret = strcmp(sub, "catalog") == 0   ? sub_catalog(&a, cat)
              : strcmp(sub, "new") == 0     ? sub_new(&a, cat)
              : strcmp(sub, "check") == 0   ? sub_check(&a, cat)
              : strcmp(sub, "report") == 0  ? sub_report(&a, cat)
              : strcmp(sub, "conform") == 0 ? sub_conform(&a, cat)
              : strcmp(sub, "diff") == 0    ? sub_diff(&a, cat)
              : strcmp(sub, "export") == 0  ? sub_export(&a, cat)
                                            : sub_compare(&a, cat);
    msp_fw_catalog_free(cat);
    return ret;
}
