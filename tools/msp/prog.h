/* What msp client, server, middlebox and demo share: options, certificates, sockets, config to engine. */
#ifndef MSP_TOOLS_PROG_H
#define MSP_TOOLS_PROG_H

#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include "msp/tlmsp_cfg.h"
#include "msp/tlmsp_conn.h"

#define PROG_MAX_TAGS 251

typedef struct prog_opts {
    const char *config;
    const char *errors; /* -e FILE, "-" = stdout */
    const char *pki;    /* --pki DIR: where certificate files are looked up */
    const char *trust;  /* --trust FILE: PEM certificates the peers' certificates must chain to */
    int presentation;   /* -P */
    int port_shift;     /* -p */
    int verbose;        /* -v, repeatable */
    int reflect;        /* -r (server) */
    int all;            /* -a (middlebox) */
    size_t ntags;
    const char *tags[PROG_MAX_TAGS];
} prog_opts_t;

/* A certificate chain and key read from PEM files. */
typedef struct prog_identity {
    EVP_PKEY *key;
    size_t n;
    uint8_t *der[16];
    size_t der_len[16];
    const uint8_t *ders[16];
} prog_identity_t;

/** The --trust store (NULL without the option); errors printed. *store owned by the caller. 0 or -1. */
int prog_trust(const char *role, const prog_opts_t *o, X509_STORE **store);

/** Where errors go (-e). */
extern FILE *prog_err;

/** One line on the error stream: "msp ROLE: ...". */
void prog_error(const char *role, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Parses the reference's flags for role ("client", "server", "middlebox"). 0, 1 (--help printed) or 2 (usage). */
int prog_parse(const char *role, int argc, char **argv, prog_opts_t *o);

/** Loads the configuration (errors printed). */
int prog_load(const char *role, const prog_opts_t *o, msp_tlmsp_cfg_t **cfg);

/** Reads cert_file (chain) and key_file, relative names from the PKI directory. 0 or -1 (printed). */
int prog_identity_load(const char *role, const prog_opts_t *o, const char *cert_file, const char *key_file,
                       prog_identity_t *id);
void prog_identity_free(prog_identity_t *id);

/** The address as it goes on the wire: the configured text, typed as the reference types it (1.8). */
void prog_address(const msp_tlmsp_cfg_address_t *a, msp_tlmsp_address_t *out);

/** The contexts of the configuration, as the client offers them. */
void prog_contexts(const msp_tlmsp_cfg_t *cfg, msp_tlmsp_context_list_t *out);

/**
 * The middlebox list the client names (static, non-transparent entries, in
 * order; ids drawn at random in 0x02..0xfd as the reference does) or, with
 * server set, the list the server accepts: the same plus the discovered
 * ones, marked inserted = 1, which it inserts (ids ignored).
 */
void prog_middleboxes(const msp_tlmsp_cfg_t *cfg, msp_tlmsp_mbox_list_t *out, int server);

/** Non-blocking sockets: a listener on host:port, a connection to host:port. -1 (printed) on failure. */
int prog_listen(const char *role, const char *host, uint16_t port);
int prog_connect(const char *role, const char *host, uint16_t port);

/** Connects to an address from the wire (a URL), with the port shift. */
int prog_connect_address(const char *role, const msp_tlmsp_address_t *a, int port_shift);

/** Fills buf from OpenSSL's DRBG (the callback the engine takes). */
void prog_random(void *user, uint8_t *buf, size_t len);

int cmd_tlmsp_client(int argc, char **argv);
int cmd_tlmsp_server(int argc, char **argv);
int cmd_tlmsp_middlebox(int argc, char **argv);
int cmd_tlmsp_demo(int argc, char **argv);

#endif
