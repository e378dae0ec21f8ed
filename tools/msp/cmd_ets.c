/* msp ets: ETS (TS 103 523-3). The dispatcher, and show: the visibility information of a certificate, read and
 * rendered by the library (msp_ets_cert_read, msp_ets_cert_render_text/json). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "msp/ets.h"

static const char usage[] =
    "usage: msp ets COMMAND [ARGS]   (msp ets COMMAND --help for each)\n"
    "\n"
    "  keygen   a static (EC)DH key pair for an ETS server and its middleboxes\n"
    "  cert     issue or re-sign a server certificate with visibility information\n"
    "  show     the visibility information of a certificate\n"
    "  probe    the client's view of a server: static key share? visibility information?\n"
    "  keymgr   the key manager: serve key packages over mutually authenticated HTTPS, or fetch them\n"
    "  decrypt  passive decryption of TLS 1.3 captures knowing only the static keys\n"
    "\n";

static const char show_usage[] =
    "usage: msp ets show CERT [--format text|json]\n"
    "\n"
    "Prints the ETS visibility information of a certificate (PEM or DER): one entry per\n"
    "static key pair, its fingerprint (the first 10 bytes of SHA-256 over the key_share) and\n"
    "its access description (TS 103 523-3 clause 4.3.3, subjectAltName otherName\n"
    "0.4.0.3523.3.1).\n"
    "\n"
    "exit status: 0 when the certificate carries visibility information, 1 when it carries\n"
    "none (not an ETS certificate, or Annex A), 2 when it cannot be read or an entry is\n"
    "malformed.\n";

static X509 *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cli_error("msp ets", "%s: error: %s", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    if (x == NULL) {
        rewind(f);
        x = d2i_X509_fp(f, NULL);
    }
    fclose(f);
    if (x == NULL) {
        cli_error("msp ets", "%s: error: not a PEM or DER certificate", path);
    }
    return x;
}

static int show(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
            (strcmp(argv[i + 1], "json") == 0 || strcmp(argv[i + 1], "text") == 0)) {
            json = strcmp(argv[++i], "json") == 0;
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            cli_error("msp ets", "error: unexpected argument '%s' (see 'msp ets --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    if (path == NULL) {
        cli_error("msp ets", "error: no certificate given (see 'msp ets --help')");
        return CLI_USAGE;
    }
    X509 *x = load(path);
    if (x == NULL) {
        return CLI_USAGE;
    }
    msp_ets_vi_t vi[MSP_ETS_MAX_VI];
    size_t n = 0;
    int misplaced = 0, ret = msp_ets_cert_read(x, vi, MSP_ETS_MAX_VI, &n, &misplaced);
    X509_free(x);
    if (ret != MSP_OK) {
        cli_error("msp ets", "%s: error: %s", path,
                  ret == MSP_ERR_LIMIT ? "more visibility information entries than msp reads (16)"
                                       : "an ETS subjectAltName entry is not a valid VisibilityInformation");
        return CLI_USAGE;
    }
    msp_buf_t out;
    msp_buf_init(&out, CLI_OUTPUT_LIMIT);
    (json ? msp_ets_cert_render_json : msp_ets_cert_render_text)(path, vi, n, misplaced, &out);
    int status = cli_write_stdout("msp ets", &out);
    msp_buf_free(&out);
    return status != CLI_OK ? status : n > 0 ? CLI_OK : CLI_FAIL;
}

int cmd_ets(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(2, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "show") == 0) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            fputs(show_usage, stdout);
            return CLI_OK;
        }
        return show(argc - 1, argv + 1);
    }
    if (strcmp(verb, "keygen") == 0 || strcmp(verb, "cert") == 0) {
        return cmd_ets_keys(argc - 1, argv + 1, verb);
    }
    if (strcmp(verb, "probe") == 0) {
        return cmd_ets_probe(argc - 1, argv + 1);
    }
    if (strcmp(verb, "keymgr") == 0) {
        return cmd_ets_keymgr(argc - 1, argv + 1);
    }
    if (strcmp(verb, "decrypt") == 0) {
        return cmd_ets_decrypt(argc - 1, argv + 1);
    }
    cli_error("msp ets", "error: unknown command '%s' (see 'msp ets --help')", argv[1]);
    return CLI_USAGE;
}
