/*
 * msp ets keygen: a static key pair; msp ets cert: a server certificate that
 * carries the visibility information of its static keys (TS 103 523-3
 * 4.3.3), issued from a CA key or re-signed from an existing certificate.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cli.h"
#include "ets_cli.h"
#include "msp/ets.h"
#include "msp/ets_cert.h"

static const char keygen_usage[] =
    "usage: msp ets keygen --group x25519|p256 --out FILE [--force]\n"
    "\n"
    "Generates a static (EC)DH key pair for an ETS server and its authorised middleboxes and writes\n"
    "the private key as PEM (PKCS#8, mode 0600): the format of `openssl genpkey`, of the msp-ets\n"
    "provider and of `msp ets decrypt --key`. Prints the group, the fingerprint (first 10 bytes of\n"
    "SHA-256 over the key_share) and the key_share bytes. An existing FILE is kept unless --force.\n";

static const char cert_usage[] =
    "usage: msp ets cert --static KEY [--static KEY]... --access TEXT --out CERT\n"
    "                    (--key SUBJECT_KEY --subject /CN=NAME[/O=...] [--dns NAME]... | --resign CERT)\n"
    "                    (--ca-cert CA --ca-key CA_KEY | --self-signed) [--days N] [--force]\n"
    "\n"
    "Issues a server certificate carrying one VisibilityInformation per static key (subjectAltName\n"
    "otherName 0.4.0.3523.3.1: fingerprint of the key_share, and TEXT naming who may hold the key),\n"
    "signed by the CA key (or by the subject key with --self-signed). --resign CERT keeps the\n"
    "subject, subject key and extensions of CERT, replaces its visibility information with that of\n"
    "the given static keys (key rotation) and signs it again; its validity is kept unless --days is\n"
    "given. A static key equal to the certificate's own key is refused (ETS-VI-1). Defaults:\n"
    "--days 90 for new certificates. An existing CERT is kept unless --force.\n";

EVP_PKEY *ets_cli_load_key(const char *cmd, const char *path)
{
    BIO *in = BIO_new_file(path, "rb");
    if (in == NULL) {
        cli_error(cmd, "%s: error: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    if (key == NULL) {
        (void)BIO_reset(in);
        key = d2i_PrivateKey_bio(in, NULL);
    }
    BIO_free(in);
    ERR_clear_error();
    if (key == NULL) {
        cli_error(cmd, "%s: error: not a PEM or DER private key", path);
    }
    return key;
}

X509 *ets_cli_load_cert(const char *cmd, const char *path)
{
    BIO *in = BIO_new_file(path, "rb");
    if (in == NULL) {
        cli_error(cmd, "%s: error: %s", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_bio_X509(in, NULL, NULL, NULL);
    if (x == NULL) {
        (void)BIO_reset(in);
        x = d2i_X509_bio(in, NULL);
    }
    BIO_free(in);
    ERR_clear_error();
    if (x == NULL) {
        cli_error(cmd, "%s: error: not a PEM or DER certificate", path);
    }
    return x;
}

/* The fingerprint of a static key; CLI_USAGE after one line for a key ETS serves no key share for. */
static int fingerprint(const char *cmd, const char *path, EVP_PKEY *key, uint8_t fp[MSP_ETS_FINGERPRINT_LEN])
{
    if (msp_ets_key_fingerprint(key, fp) != MSP_OK) {
        cli_error(cmd, "%s: error: not an X25519 or P-256 key (the groups ETS static keys are served for)", path);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int exists(const char *cmd, const char *path, int force)
{
    struct stat st;
    if (!force && stat(path, &st) == 0) {
        cli_error(cmd, "%s: error: exists (use --force to replace it)", path);
        return 1;
    }
    return 0;
}

static EVP_PKEY *generate(const char *group)
{
    if (strcmp(group, "x25519") == 0) {
        return EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    }
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int write_key(const char *cmd, const char *path, EVP_PKEY *key)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n = 0;
    int ok = mem != NULL && PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) == 1;
    n = ok ? BIO_get_mem_data(mem, &p) : 0;
    int status = ok ? cli_write_file(cmd, path, p, (size_t)n, 0600) : CLI_FAIL;
    if (!ok) {
        cli_error(cmd, "%s: error: cannot encode the key", path);
    }
    BIO_free(mem);
    return status;
}

static int keygen(int argc, char **argv)
{
    const char *cmd = "msp ets keygen", *group = NULL, *out = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
            group = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else {
            cli_error(cmd, "error: unexpected argument '%s' (see 'msp ets keygen --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    if (group == NULL || (strcmp(group, "x25519") != 0 && strcmp(group, "p256") != 0) || out == NULL) {
        cli_error(cmd, "error: --group x25519|p256 and --out FILE are required (see 'msp ets keygen --help')");
        return CLI_USAGE;
    }
    if (exists(cmd, out, force)) {
        return CLI_USAGE;
    }
    EVP_PKEY *key = generate(group);
    msp_buf_t line;
    msp_buf_init(&line, CLI_OUTPUT_LIMIT);
    msp_buf_printf(&line, "%s: ", out);
    int status = key == NULL ? CLI_FAIL : msp_ets_key_describe(key, &line) == MSP_OK ? CLI_OK : CLI_USAGE;
    if (status == CLI_USAGE) {
        cli_error(cmd, "%s: error: not an X25519 or P-256 key (the groups ETS static keys are served for)", out);
    }
    if (status == CLI_OK) {
        status = write_key(cmd, out, key);
    }
    if (status == CLI_OK) {
        msp_buf_put_u8(&line, '\n');
        status = cli_write_stdout(cmd, &line);
    }
    msp_buf_free(&line);
    EVP_PKEY_free(key);
    return status;
}

/* What msp ets cert was asked to do. */
typedef struct cert_args {
    const char *statics[MSP_ETS_MAX_VI];
    size_t n_statics;
    const char *access, *out, *key, *subject, *resign, *ca_cert, *ca_key;
    const char *dns[MSP_ETS_CERT_MAX_DNS];
    size_t n_dns;
    int self_signed, force;
    long days; /* -1: not given */
} cert_args_t;

static int parse_value(const char *cmd, cert_args_t *a, const char *opt, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } single[] = {
        {"--access", offsetof(cert_args_t, access)}, {"--out", offsetof(cert_args_t, out)},
        {"--key", offsetof(cert_args_t, key)},       {"--subject", offsetof(cert_args_t, subject)},
        {"--resign", offsetof(cert_args_t, resign)}, {"--ca-cert", offsetof(cert_args_t, ca_cert)},
        {"--ca-key", offsetof(cert_args_t, ca_key)},
    };
    for (size_t k = 0; k < sizeof single / sizeof single[0]; k++) {
        if (strcmp(opt, single[k].name) == 0) {
            *(const char **)((char *)a + single[k].off) = v;
            return CLI_OK;
        }
    }
    if (strcmp(opt, "--static") == 0 && a->n_statics < MSP_ETS_MAX_VI) {
        a->statics[a->n_statics++] = v;
    } else if (strcmp(opt, "--dns") == 0 && a->n_dns < sizeof a->dns / sizeof a->dns[0]) {
        a->dns[a->n_dns++] = v;
    } else if (strcmp(opt, "--days") == 0) {
        char *end;
        a->days = strtol(v, &end, 10);
        if (*end != '\0' || a->days < 1 || a->days > 36500) {
            cli_error(cmd, "error: --days wants a number of days from 1 to 36500, not '%s'", v);
            return CLI_USAGE;
        }
    } else {
        cli_error(cmd, "error: unexpected or repeated too often: '%s' (see 'msp ets cert --help')", opt);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int parse_cert_args(int argc, char **argv, cert_args_t *a)
{
    const char *cmd = "msp ets cert";
    memset(a, 0, sizeof *a);
    a->days = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--self-signed") == 0) {
            a->self_signed = 1;
        } else if (strcmp(argv[i], "--force") == 0) {
            a->force = 1;
        } else if (strncmp(argv[i], "--", 2) == 0 && i + 1 < argc) {
            if (parse_value(cmd, a, argv[i], argv[i + 1]) != CLI_OK) {
                return CLI_USAGE;
            }
            i++;
        } else {
            cli_error(cmd, "error: unexpected argument '%s' (see 'msp ets cert --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    const char *missing = a->n_statics == 0   ? "--static KEY"
                          : a->access == NULL ? "--access TEXT"
                          : a->out == NULL    ? "--out CERT"
                          : (a->resign == NULL) == (a->key == NULL || a->subject == NULL)
                              ? "either --key with --subject, or --resign"
                          : a->self_signed == (a->ca_cert != NULL || a->ca_key != NULL) ||
                                  (!a->self_signed && (a->ca_cert == NULL || a->ca_key == NULL))
                              ? "either --ca-cert with --ca-key, or --self-signed"
                          : a->self_signed && a->resign != NULL ? "--key (a re-signed certificate needs a CA key)"
                                                                : NULL;
    if (missing != NULL) {
        cli_error(cmd, "error: %s is required (see 'msp ets cert --help')", missing);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* The fingerprints of the --static keys; ETS-VI-1 (a static key that is the certificate's own) named by file. */
static int static_fingerprints(const char *cmd, const cert_args_t *a, EVP_PKEY *own,
                               uint8_t fps[MSP_ETS_MAX_VI][MSP_ETS_FINGERPRINT_LEN])
{
    for (size_t k = 0; k < a->n_statics; k++) {
        EVP_PKEY *key = ets_cli_load_key(cmd, a->statics[k]);
        int status = key != NULL ? fingerprint(cmd, a->statics[k], key, fps[k]) : CLI_USAGE;
        EVP_PKEY_free(key);
        if (status == CLI_OK && msp_ets_cert_is_own_key(own, fps[k])) {
            cli_error(cmd, "%s: error: the static key is the certificate's own key (ETS-VI-1 wants them different)",
                      a->statics[k]);
            status = CLI_USAGE;
        }
        if (status != CLI_OK) {
            return status;
        }
    }
    return CLI_OK;
}

static int write_cert(const char *cmd, const char *out, X509 *x)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *p = NULL;
    int ok = mem != NULL && PEM_write_bio_X509(mem, x) == 1;
    long n = ok ? BIO_get_mem_data(mem, &p) : 0;
    int status = ok ? cli_write_file(cmd, out, p, (size_t)n, 0644) : CLI_FAIL;
    BIO_free(mem);
    return status;
}

static int print_visibility(const char *cmd, const char *out, X509 *x)
{
    msp_buf_t lines;
    msp_buf_init(&lines, CLI_OUTPUT_LIMIT);
    int status = msp_ets_cert_vi_lines(x, out, &lines) == MSP_OK ? cli_write_stdout(cmd, &lines) : CLI_FAIL;
    msp_buf_free(&lines);
    return status;
}

/* Issues (or re-issues) the certificate the arguments describe: all but the reading is msp_ets_cert_issue. */
static int issue(const char *cmd, const cert_args_t *a, EVP_PKEY *subject_key, EVP_PKEY *ca_key, X509 *ca, X509 *base)
{
    uint8_t fps[MSP_ETS_MAX_VI][MSP_ETS_FINGERPRINT_LEN];
    int status = static_fingerprints(cmd, a, base != NULL ? X509_get0_pubkey(base) : subject_key, fps);
    if (status != CLI_OK) {
        return status;
    }
    int64_t now = (int64_t)time(NULL);
    msp_ets_cert_cfg_t c = {
        .subject_key = subject_key,
        .subject = a->subject,
        .dns = a->dns,
        .n_dns = a->n_dns,
        .fingerprints = (const uint8_t(*)[MSP_ETS_FINGERPRINT_LEN])fps,
        .n_fingerprints = a->n_statics,
        .access = a->access,
        .issuer_cert = ca,
        .issuer_key = a->self_signed ? subject_key : ca_key,
        .base = base,
    };
    if (base == NULL || a->days > 0) {
        /* five minutes back: a peer whose clock is a little behind still accepts it */
        c.not_before = now - 300;
        c.not_after = now + 86400 * (int64_t)(a->days > 0 ? a->days : 90);
    }
    X509 *x = NULL;
    msp_error_t err;
    msp_error_clear(&err);
    int ret = msp_ets_cert_issue(&c, &x, &err);
    if (ret != MSP_OK) {
        cli_error(cmd, "error: %s", err.detail);
        return ret == MSP_ERR_ARGUMENT || ret == MSP_ERR_INVALID || ret == MSP_ERR_LIMIT ? CLI_USAGE : CLI_FAIL;
    }
    status = write_cert(cmd, a->out, x);
    if (status == CLI_OK) {
        status = print_visibility(cmd, a->out, x);
    }
    X509_free(x);
    return status;
}

static int cert(int argc, char **argv)
{
    const char *cmd = "msp ets cert";
    cert_args_t a;
    if (parse_cert_args(argc, argv, &a) != CLI_OK || exists(cmd, a.out, a.force)) {
        return CLI_USAGE;
    }
    EVP_PKEY *subject_key = a.key != NULL ? ets_cli_load_key(cmd, a.key) : NULL;
    EVP_PKEY *ca_key = a.ca_key != NULL ? ets_cli_load_key(cmd, a.ca_key) : NULL;
    X509 *ca = a.ca_cert != NULL ? ets_cli_load_cert(cmd, a.ca_cert) : NULL;
    X509 *base = a.resign != NULL ? ets_cli_load_cert(cmd, a.resign) : NULL;
    int status = CLI_USAGE;
    if ((a.key != NULL && subject_key == NULL) || (a.ca_key != NULL && ca_key == NULL) ||
        (a.ca_cert != NULL && ca == NULL) || (a.resign != NULL && base == NULL)) {
        /* said */
    } else if (ca != NULL && X509_check_private_key(ca, ca_key) != 1) {
        cli_error(cmd, "%s: error: --ca-key is not the key of this CA certificate", a.ca_key);
    } else {
        status = issue(cmd, &a, subject_key, ca_key, ca, base);
    }
    ERR_clear_error();
    X509_free(base);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(subject_key);
    return status;
}

int cmd_ets_keys(int argc, char **argv, const char *verb)
{
    int is_keygen = strcmp(verb, "keygen") == 0;
    if (cli_wants_help(argc, argv)) {
        fputs(is_keygen ? keygen_usage : cert_usage, stdout);
        return CLI_OK;
    }
    return is_keygen ? keygen(argc, argv) : cert(argc, argv);
}
