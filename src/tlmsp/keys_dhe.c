/*
 * The DHE premaster secret (tlmsp-handshake.md 6.2): the peer's public value
 * is put into a key with our group's parameters, the way OpenSSL 3's own
 * TLS 1.2 code does (EVP_PKEY_copy_parameters + set1_encoded_public_key),
 * and the derive strips leading zero bytes (DH padding off, the default),
 * as OpenSSL 1.1.1's DH_compute_key does for the reference.
 */
#include "tlmsp_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "msp/error.h"

static EVP_PKEY *peer_dh_key(EVP_PKEY *own, const uint8_t *peer_y, size_t peer_len)
{
    EVP_PKEY *peer = EVP_PKEY_new();
    if (peer == NULL || EVP_PKEY_copy_parameters(peer, own) <= 0 ||
        EVP_PKEY_set1_encoded_public_key(peer, peer_y, peer_len) <= 0) {
        EVP_PKEY_free(peer);
        return NULL;
    }
    return peer;
}

/* DHE premaster (tlmsp-handshake.md 6.2: "leading zero bytes stripped as OpenSSL does"); no TS clause given. */
int msp_tlmsp_premaster_dhe(EVP_PKEY *own, const uint8_t *peer_y, size_t peer_len, uint8_t *out, size_t out_cap,
                            size_t *out_len)
{
    if (own == NULL || EVP_PKEY_get_base_id(own) != EVP_PKEY_DH || (size_t)EVP_PKEY_get_size(own) > out_cap) {
        return MSP_ERR_ARGUMENT;
    }
    if (peer_y == NULL || peer_len == 0) {
        return MSP_ALERT_ILLEGAL_PARAMETER;
    }
    EVP_PKEY *peer = peer_dh_key(own, peer_y, peer_len);
    EVP_PKEY_CTX *ctx = peer != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL) : NULL;
    size_t n = out_cap;
    /* The derive checks 1 < y < p - 1 (RFC 7919 5.1) and refuses otherwise: the peer's fault. */
    int ret = ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, peer) > 0 &&
                      EVP_PKEY_derive(ctx, out, &n) > 0
                  ? MSP_OK
                  : MSP_ALERT_ILLEGAL_PARAMETER;
    if (ret == MSP_OK) {
        *out_len = n;
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    return ret;
}
