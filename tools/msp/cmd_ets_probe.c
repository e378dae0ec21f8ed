/*
 * msp ets probe HOST:PORT: the client's view of an ETS server (TS 103 523-3
 * Annex B "ETS-aware client", ets.md 6): connect several times, compare the
 * ServerHello key shares (a repeat proves a static or long-lived key, the
 * only signal an Annex A server gives), read the certificate's visibility
 * information and check its fingerprint against the key share actually sent.
 * The library does all of it (ets_probe.h: the connections, the verdict and
 * its rendering); this file parses the arguments and prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "msp/ets.h"
#include "msp/ets_probe.h"

static const char usage[] =
    "usage: msp ets probe HOST:PORT [--servername NAME] [--groups LIST] [--ca FILE]\n"
    "                     [--connections N] [--timeout SECONDS] [--format text|json]\n"
    "                     [--refuse-ets] [--require-visibility]\n"
    "\n"
    "Connects N times (default 2) with TLS 1.3 and reports, as an ETS-aware client would:\n"
    "  - the key share of every ServerHello, and whether it repeats (a static key: no forward\n"
    "    secrecy; the only way to notice an ETS server that shows no visibility information);\n"
    "  - the certificate's visibility information (TS 103 523-3 4.3.3) and whether its fingerprint\n"
    "    matches the key share the server actually sent.\n"
    "--groups is OpenSSL's group list to offer (default X25519:P-256); --ca verifies the server's\n"
    "certificate chain and name (without it the certificate is read but not verified).\n"
    "\n"
    "exit status: 0; 1 when a policy refuses the server: --refuse-ets (a repeated key share or\n"
    "visibility information), --require-visibility (a repeated key share without visibility\n"
    "information matching it, or visibility information that does not match); 2 when a\n"
    "connection fails or the arguments are wrong.\n";

#define PROBE_MAX_CONN MSP_ETS_PROBE_MAX_CONN

typedef struct probe_args {
    const char *target, *servername, *groups, *ca;
    char host[256], port[16];
    int connections, timeout, json, refuse_ets, require_visibility;
} probe_args_t;

typedef struct probe_result {
    msp_ets_probe_conn_t conn[PROBE_MAX_CONN]; /* key share, suite and certificate check of each connection */
    uint8_t *cert;                             /* DER of the first connection's server certificate */
    size_t cert_len;
} probe_result_t;

static int parse_count(const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < lo || n > hi) {
        cli_error("msp ets probe", "error: %s wants a number from %d to %d, not '%s'", opt, lo, hi, v);
        return CLI_USAGE;
    }
    *out = (int)n;
    return CLI_OK;
}

static int parse_target(probe_args_t *a)
{
    /* HOST:PORT, [V6]:PORT */
    const char *t = a->target, *colon = strrchr(t, ':');
    size_t hl = colon != NULL ? (size_t)(colon - t) : 0;
    if (hl > 1 && t[0] == '[' && t[hl - 1] == ']') {
        t++;
        hl -= 2;
    }
    if (colon == NULL || hl == 0 || hl >= sizeof a->host || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof a->port || strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        cli_error("msp ets probe", "error: '%s' is not HOST:PORT", a->target);
        return CLI_USAGE;
    }
    memcpy(a->host, t, hl);
    a->host[hl] = '\0';
    snprintf(a->port, sizeof a->port, "%s", colon + 1);
    return CLI_OK;
}

static int parse_args(int argc, char **argv, probe_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->groups = "X25519:P-256";
    a->connections = 2;
    a->timeout = 10;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int st = CLI_OK, took = v != NULL;
        if (strcmp(o, "--servername") == 0 && v != NULL) {
            a->servername = v;
        } else if (strcmp(o, "--groups") == 0 && v != NULL) {
            a->groups = v;
        } else if (strcmp(o, "--ca") == 0 && v != NULL) {
            a->ca = v;
        } else if (strcmp(o, "--connections") == 0 && v != NULL) {
            st = parse_count(o, v, 2, PROBE_MAX_CONN, &a->connections);
        } else if (strcmp(o, "--timeout") == 0 && v != NULL) {
            st = parse_count(o, v, 1, 3600, &a->timeout);
        } else if (strcmp(o, "--format") == 0 && v != NULL && (strcmp(v, "json") == 0 || strcmp(v, "text") == 0)) {
            a->json = strcmp(v, "json") == 0;
        } else {
            took = 0;
            if (strcmp(o, "--refuse-ets") == 0) {
                a->refuse_ets = 1;
            } else if (strcmp(o, "--require-visibility") == 0) {
                a->require_visibility = 1;
            } else if (o[0] != '-' && a->target == NULL) {
                a->target = o;
            } else {
                cli_error("msp ets probe", "error: unexpected argument '%s' (see 'msp ets probe --help')", o);
                return CLI_USAGE;
            }
        }
        if (st != CLI_OK) {
            return st;
        }
        i += took;
    }
    if (a->target == NULL) {
        cli_error("msp ets probe", "error: no HOST:PORT given (see 'msp ets probe --help')");
        return CLI_USAGE;
    }
    return parse_target(a);
}

/* The connections' settings; the library checks the group list and reads the CA file now, before any connection. */
static int start_client(const probe_args_t *a, msp_ets_probe_client_t **client)
{
    msp_ets_probe_client_cfg_t cfg = {a->host, a->port, a->servername, a->groups, a->ca, a->timeout};
    msp_error_t err = {0};
    int rc = msp_ets_probe_client_new(&cfg, client, &err);
    if (rc == MSP_ERR_IO) {
        cli_error("msp ets probe", "%s: error: cannot read the CA certificates", a->ca);
    } else if (rc != MSP_OK) {
        cli_error("msp ets probe", "error: --groups '%s': OpenSSL does not know this group list", a->groups);
    }
    return rc == MSP_OK ? CLI_OK : CLI_USAGE;
}

int cmd_ets_probe(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    probe_args_t a;
    if (parse_args(argc, argv, &a) != CLI_OK) {
        return CLI_USAGE;
    }
    msp_ets_probe_client_t *client = NULL;
    int status = start_client(&a, &client);
    probe_result_t *res = calloc(1, sizeof *res);
    msp_ets_probe_verdict_t *v = calloc(1, sizeof *v);
    status = status == CLI_OK && res != NULL && v != NULL ? CLI_OK : CLI_USAGE;
    for (int i = 0; status == CLI_OK && i < a.connections; i++) {
        msp_error_t err = {0};
        if (msp_ets_probe_client_connect(client, &res->conn[i], i == 0 ? &res->cert : NULL, &res->cert_len, &err) !=
            MSP_OK) {
            cli_error("msp ets probe", "%s: error: %s", a.target, err.detail);
            status = CLI_USAGE;
        }
    }
    msp_ets_probe_client_free(client);
    msp_ets_probe_facts_t facts = {res != NULL ? res->conn : NULL,
                                   (size_t)a.connections,
                                   res != NULL ? res->cert : NULL,
                                   res != NULL ? res->cert_len : 0,
                                   {a.refuse_ets, a.require_visibility}};
    msp_error_t err = {0};
    if (status == CLI_OK && msp_ets_probe_judge(&facts, v, &err) != MSP_OK) {
        cli_error("msp ets probe", "%s: error: %s", a.target, err.detail);
        status = CLI_FAIL;
    }
    if (status == CLI_OK) {
        msp_buf_t out;
        msp_buf_init(&out, CLI_OUTPUT_LIMIT);
        (a.json ? msp_ets_probe_render_json : msp_ets_probe_render_text)(a.target, &facts, v, &out);
        status = cli_write_stdout("msp ets probe", &out);
        msp_buf_free(&out);
        if (status == CLI_OK && v->refused) {
            cli_error("msp ets probe", "%s: refused by policy: %s", a.target, v->text);
            status = CLI_FAIL;
        }
    }
    if (res != NULL) {
        OPENSSL_free(res->cert);
    }
    free(res);
    free(v);
    return status;
}
