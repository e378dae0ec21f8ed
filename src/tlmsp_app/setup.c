/* Configuration to engine (msp/tlmsp_setup.h). */
#include "msp/tlmsp_setup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

struct msp_tlmsp_setup {
    msp_tlmsp_setup_cfg_t cfg;
    const msp_tlmsp_cfg_entity_t *entity;
    msp_tlmsp_context_list_t contexts;
    msp_tlmsp_mbox_list_t middleboxes;
    X509_STORE *trust;
    msp_tlmsp_shared_t *shared; /* built once, given to every connection made from this setup */
    EVP_PKEY *key;
    size_t ncerts;
    uint8_t *der[MSP_TLMSP_SETUP_MAX_CERTS];
    size_t der_len[MSP_TLMSP_SETUP_MAX_CERTS];
    const uint8_t *ders[MSP_TLMSP_SETUP_MAX_CERTS];
};

void msp_tlmsp_setup_random(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    if (RAND_bytes(buf, (int)len) != 1) {
        abort(); /* no randomness: nothing safe can be done */
    }
}

void msp_tlmsp_setup_address(const msp_tlmsp_cfg_address_t *a, msp_tlmsp_address_t *out)
{
    uint8_t buf[16];
    out->bytes = (const uint8_t *)a->text;
    out->len = strlen(a->text);
    if (strstr(a->text, "://") != NULL) {
        out->type = MSP_TLMSP_ADDR_URL;
    } else if (a->kind == MSP_TLMSP_CFG_ADDR_MAC) {
        out->type = MSP_TLMSP_ADDR_MAC;
    } else if (inet_pton(AF_INET, a->text, buf) == 1) {
        out->type = MSP_TLMSP_ADDR_IPV4;
    } else if (inet_pton(AF_INET6, a->text, buf) == 1) {
        out->type = MSP_TLMSP_ADDR_IPV6;
    } else {
        out->type = MSP_TLMSP_ADDR_FQDN;
    }
}

void msp_tlmsp_setup_contexts(const msp_tlmsp_cfg_t *cfg, msp_tlmsp_context_list_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < cfg->n_contexts; i++) {
        const msp_tlmsp_cfg_context_t *c = &cfg->contexts[i];
        out->present[c->id] = 1;
        out->audit[c->id] = c->audit;
        out->purpose[c->id] = (const uint8_t *)c->purpose;
        out->purpose_len[c->id] = (uint8_t)strlen(c->purpose);
    }
}

uint8_t msp_tlmsp_setup_access(msp_tlmsp_cfg_access_t access)
{
    return access == MSP_TLMSP_CFG_ACCESS_RW  ? MSP_TLMSP_ACCESS_RW
           : access == MSP_TLMSP_CFG_ACCESS_R ? MSP_TLMSP_ACCESS_R
                                              : MSP_TLMSP_ACCESS_NONE;
}

/* A random byte in 0x02..0xfd not yet used, as tlmsp_middlebox_free_id() draws them. */
static uint8_t free_id(const msp_tlmsp_mbox_list_t *l, msp_tlmsp_random_fn random, void *user)
{
    for (;;) {
        uint8_t b;
        random(user, &b, 1);
        bool used = b < MSP_TLMSP_ID_FIRST_MIDDLEBOX || b > MSP_TLMSP_ID_LAST_MIDDLEBOX;
        for (size_t i = 0; !used && i < l->n; i++) {
            used = l->m[i].id == b;
        }
        if (!used) {
            return b;
        }
    }
}

void msp_tlmsp_setup_middleboxes(const msp_tlmsp_cfg_t *cfg, bool server, msp_tlmsp_random_fn random, void *random_user,
                                 msp_tlmsp_mbox_list_t *out)
{
    out->n = 0;
    for (size_t i = 0; i < cfg->n_middleboxes && out->n < MSP_TLMSP_MAX_MIDDLEBOXES; i++) {
        const msp_tlmsp_cfg_entity_t *e = &cfg->middleboxes[i];
        /* the client names the static ones; the server also inserts the discovered ones (everything.ucl, 7.2) */
        if (e->transparent || (e->discovered && !server)) {
            continue;
        }
        msp_tlmsp_mbox_info_t *m = &out->m[out->n];
        memset(m, 0, sizeof(*m));
        m->inserted = server && e->forbidden ? 2 : e->discovered;
        m->id = server ? (uint8_t)(MSP_TLMSP_ID_FIRST_MIDDLEBOX + out->n)
                       : free_id(out, random != NULL ? random : msp_tlmsp_setup_random, random_user);
        msp_tlmsp_setup_address(&e->address, &m->address);
        for (int c = 1; c < 256; c++) {
            m->access[c] = msp_tlmsp_setup_access(e->access[c]);
        }
        out->n++;
    }
}

/* ---- PEM files ---- */

/* A relative name is looked up in the PKI folder, then in its private/ folder (the reference's layout). */
static FILE *open_pki(const char *dir, const char *name, char *path, size_t cap)
{
    if (name[0] == '/') {
        snprintf(path, cap, "%s", name);
        return fopen(path, "r");
    }
    snprintf(path, cap, "%s/%s", dir != NULL ? dir : ".", name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        char alt[PATH_MAX + 16];
        snprintf(alt, sizeof(alt), "%s/private/%s", dir != NULL ? dir : ".", name);
        f = fopen(alt, "r");
        if (f != NULL) {
            snprintf(path, cap, "%s", alt);
        }
    }
    return f;
}

static int read_chain(msp_tlmsp_setup_t *s, const char *name, msp_error_t *err)
{
    char path[PATH_MAX + 32];
    FILE *f = open_pki(s->cfg.pki_dir, name, path, sizeof(path));
    if (f == NULL) {
        return msp_error_set(err, MSP_ERR_IO, path, "%s", strerror(errno));
    }
    X509 *x;
    while (s->ncerts < MSP_TLMSP_SETUP_MAX_CERTS && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        X509_free(x);
        if (len > 0) {
            s->der[s->ncerts] = der;
            s->der_len[s->ncerts] = (size_t)len;
            s->ders[s->ncerts] = der;
            s->ncerts++;
        }
    }
    fclose(f);
    return s->ncerts > 0 ? MSP_OK : msp_error_set(err, MSP_ERR_IO, path, "no PEM certificate in it");
}

static int read_key(msp_tlmsp_setup_t *s, const char *name, msp_error_t *err)
{
    char path[PATH_MAX + 32];
    FILE *f = open_pki(s->cfg.pki_dir, name, path, sizeof(path));
    if (f == NULL) {
        return msp_error_set(err, MSP_ERR_IO, path, "%s", strerror(errno));
    }
    s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (s->key == NULL) {
        return msp_error_set(err, MSP_ERR_IO, path, "no PEM private key in it");
    }
    /* A key that is not the leaf certificate's would let the program start and then fail every handshake
     * (decrypt_error at the peers): refuse it here, where the operator sees why. */
    const unsigned char *p = s->der[0];
    X509 *leaf = d2i_X509(NULL, &p, (long)s->der_len[0]);
    int match = leaf != NULL && X509_check_private_key(leaf, s->key) == 1;
    X509_free(leaf);
    ERR_clear_error();
    return match ? MSP_OK
                 : msp_error_set(err, MSP_ERR_INVALID, path, "this private key does not match the certificate %s",
                                 s->entity->cert_file);
}

static int read_trust(msp_tlmsp_setup_t *s, msp_error_t *err)
{
    if (s->cfg.trust_file == NULL) {
        return MSP_OK;
    }
    s->trust = X509_STORE_new();
    if (s->trust == NULL || X509_STORE_load_file(s->trust, s->cfg.trust_file) != 1) {
        return msp_error_set(err, MSP_ERR_IO, s->cfg.trust_file, "no PEM certificate could be read from it");
    }
    return MSP_OK;
}

/* ---- the setup ---- */

static int find_entity(msp_tlmsp_setup_t *s, msp_error_t *err)
{
    const msp_tlmsp_cfg_t *cfg = s->cfg.cfg;
    switch (s->cfg.role) {
    case MSP_TLMSP_CFG_CLIENT:
        s->entity = &cfg->client;
        return cfg->client.defined && cfg->server.defined
                   ? MSP_OK
                   : msp_error_set(err, MSP_ERR_INVALID, cfg->name,
                                   "the configuration needs a client and a server block");
    case MSP_TLMSP_CFG_SERVER:
        s->entity = &cfg->server;
        return cfg->server.defined
                   ? MSP_OK
                   : msp_error_set(err, MSP_ERR_INVALID, cfg->name, "the configuration has no server block");
    default:
        s->entity = s->cfg.tag != NULL ? msp_tlmsp_cfg_middlebox_by_tag(cfg, s->cfg.tag) : NULL;
        return s->entity != NULL ? MSP_OK
                                 : msp_error_set(err, MSP_ERR_NOT_FOUND, cfg->name, "no middlebox tagged '%s'",
                                                 s->cfg.tag != NULL ? s->cfg.tag : "");
    }
}

int msp_tlmsp_setup_new(const msp_tlmsp_setup_cfg_t *cfg, msp_tlmsp_setup_t **out, msp_error_t *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->cfg == NULL) {
        return msp_error_set(err, MSP_ERR_ARGUMENT, NULL, "no configuration");
    }
    msp_tlmsp_setup_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "out of memory");
    }
    s->cfg = *cfg;
    if (s->cfg.random == NULL) {
        s->cfg.random = msp_tlmsp_setup_random;
    }
    int rc = find_entity(s, err);
    if (rc == MSP_OK && msp_tlmsp_shared_new(NULL, &s->shared) != MSP_OK) {
        rc = msp_error_set(err, MSP_ERR_NO_MEMORY, NULL, "out of memory");
    }
    if (rc == MSP_OK) {
        rc = read_trust(s, err);
    }
    if (rc == MSP_OK && cfg->role != MSP_TLMSP_CFG_CLIENT) {
        rc = read_chain(s, s->entity->cert_file, err);
        rc = rc == MSP_OK ? read_key(s, s->entity->cert_key_file, err) : rc;
    }
    if (rc != MSP_OK) {
        msp_tlmsp_setup_free(s);
        return rc;
    }
    msp_tlmsp_setup_contexts(cfg->cfg, &s->contexts);
    if (cfg->role != MSP_TLMSP_CFG_MIDDLEBOX) {
        msp_tlmsp_setup_middleboxes(cfg->cfg, cfg->role == MSP_TLMSP_CFG_SERVER, s->cfg.random, s->cfg.random_user,
                                    &s->middleboxes);
    }
    *out = s;
    return MSP_OK;
}

void msp_tlmsp_setup_free(msp_tlmsp_setup_t *s)
{
    if (s == NULL) {
        return;
    }
    X509_STORE_free(s->trust);
    msp_tlmsp_shared_free(s->shared);
    EVP_PKEY_free(s->key);
    for (size_t i = 0; i < s->ncerts; i++) {
        OPENSSL_free(s->der[i]);
    }
    free(s);
}

const msp_tlmsp_cfg_entity_t *msp_tlmsp_setup_entity(const msp_tlmsp_setup_t *s)
{
    return s->entity;
}

X509_STORE *msp_tlmsp_setup_trust(const msp_tlmsp_setup_t *s)
{
    return s->trust;
}

static msp_tlmsp_identity_t identity(const msp_tlmsp_setup_t *s)
{
    return (msp_tlmsp_identity_t){s->key, s->ders, s->der_len, s->ncerts};
}

void msp_tlmsp_setup_endpoint(const msp_tlmsp_setup_t *s, const msp_tlmsp_events_t *ev, msp_tlmsp_endpoint_cfg_t *out)
{
    const msp_tlmsp_cfg_t *cfg = s->cfg.cfg;
    memset(out, 0, sizeof(*out));
    out->random = s->cfg.random;
    out->random_user = s->cfg.random_user;
    out->middleboxes = &s->middleboxes;
    out->trust = s->trust;
    out->shared = s->shared;
    if (ev != NULL) {
        out->events = *ev;
    }
    if (s->cfg.role == MSP_TLMSP_CFG_CLIENT) {
        msp_tlmsp_setup_address(&cfg->client.address, &out->client_address);
        msp_tlmsp_setup_address(&cfg->server.address, &out->server_address);
        out->contexts = &s->contexts;
    } else {
        out->identity = identity(s);
    }
}

void msp_tlmsp_setup_mbox(const msp_tlmsp_setup_t *s, msp_tlmsp_container_fn container, void *user,
                          msp_tlmsp_mbox_cfg_t *out)
{
    memset(out, 0, sizeof(*out));
    out->random = s->cfg.random;
    out->random_user = s->cfg.random_user;
    msp_tlmsp_setup_address(&s->entity->address, &out->address);
    out->identity = identity(s);
    out->trust = s->trust;
    out->shared = s->shared;
    out->container = container;
    out->user = user;
}

/* ---- a throwaway identity ---- */

static int pem_out(msp_buf_t *b, X509 *x, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = bio != NULL && (x != NULL ? PEM_write_bio_X509(bio, x)
                                       : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) == 1;
    char *p = NULL;
    long n = ok ? BIO_get_mem_data(bio, &p) : 0;
    int rc = ok && n > 0 ? msp_buf_put(b, p, (size_t)n) : MSP_ERR_NO_MEMORY;
    BIO_free(bio);
    return rc;
}

int msp_tlmsp_setup_selfsigned(const char *cn, unsigned days, msp_buf_t *cert_pem, msp_buf_t *key_pem)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    int ok = key != NULL && x != NULL && n != NULL && X509_set_version(x, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), 1) && X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_subject_name(x, n) && X509_set_issuer_name(x, n) && X509_set_pubkey(x, key) &&
             X509_sign(x, key, EVP_sha256()) > 0;
    int rc = ok ? pem_out(cert_pem, x, NULL) : MSP_ERR_NO_MEMORY;
    rc = rc == MSP_OK ? pem_out(key_pem, NULL, key) : rc;
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
