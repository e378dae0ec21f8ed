/*
 * CMS-wrapped ETS key packages (ets.md 3.4 ETS-KP-2): msp_ets_keypkg_cms_unwrap
 * on any input, as the consumer below trusting the key manager below (fixed
 * keys, so that the committed corpus reaches decryption and verification).
 * Whatever unwraps is a package of at most MSP_ETS_KP_MAX_SIZE bytes and goes
 * on to msp_ets_keypkg_decode; a refusal hands out nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "msp/error.h"
#include "msp/ets_keypkg.h"

#define NOW 1800000000 /* 2027-01-15: inside both certificates' validity (2026-12-08 + 100 years) */

/* the key manager's (signer's) certificate, trusted as it is; the key signs the corpus seeds only */
static const char KM_CERT[] = "-----BEGIN CERTIFICATE-----\n"
                              "MIIBjTCCATOgAwIBAgIUBwu75ejVbtWWLJkLZhGI/1dw+LMwCgYIKoZIzj0EAwIw\n"
                              "GzEZMBcGA1UEAwwQZnV6ei1rZXktbWFuYWdlcjAgFw0yNjEyMDgwMDA2NTFaGA8y\n"
                              "MTI2MTExNDAwMDY1MVowGzEZMBcGA1UEAwwQZnV6ei1rZXktbWFuYWdlcjBZMBMG\n"
                              "ByqGSM49AgEGCCqGSM49AwEHA0IABIF+p2WXqcjHusSaho07P+E1dnmJGw0GlcXF\n"
                              "6dGAEGwjpeQmRikBRhZ7yMRMYsXGrAOiN8MVTBp3lUQkLmnSaV6jUzBRMB0GA1Ud\n"
                              "DgQWBBR6XKCCE80XQ2/gxpha7SyRC48VHjAfBgNVHSMEGDAWgBR6XKCCE80XQ2/g\n"
                              "xpha7SyRC48VHjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIDKL\n"
                              "wQOVTEZ1T6AxC8oFsio10uH7yymtEcCxGF0LU/IIAiEAzwQlL05n3DfexDk6Sgwc\n"
                              "wHOX/cwVi0204unAjDxf3VU=\n"
                              "-----END CERTIFICATE-----\n";
static const char KM_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgW+9fprTIYxW7CTwg\n"
                             "LhSeqtVooYulW2gEwIyviVRMCaShRANCAASBfqdll6nIx7rEmoaNOz/hNXZ5iRsN\n"
                             "BpXFxenRgBBsI6XkJkYpAUYWe8jETGLFxqwDojfDFUwad5VEJC5p0mle\n"
                             "-----END PRIVATE KEY-----\n";
/* the consumer's (recipient's) certificate and key */
static const char MB_CERT[] = "-----BEGIN CERTIFICATE-----\n"
                              "MIIBiTCCAS+gAwIBAgIUF2AYYTF0ev5keluqIV8g7vOhdyQwCgYIKoZIzj0EAwIw\n"
                              "GTEXMBUGA1UEAwwOZnV6ei1taWRkbGVib3gwIBcNMjYxMjA4MDAwNjUxWhgPMjEy\n"
                              "NjExMTQwMDA2NTFaMBkxFzAVBgNVBAMMDmZ1enotbWlkZGxlYm94MFkwEwYHKoZI\n"
                              "zj0CAQYIKoZIzj0DAQcDQgAE372rhGdtPdlTrTLbOadpuTjZLW4AllkR0os0HtiX\n"
                              "z6xCGgaURRmyx2jqm8tlOGyLIneE8Xtv/krhp0/BRLq0M6NTMFEwHQYDVR0OBBYE\n"
                              "FBmGGWD4n9q6h/Xn0TMzPblykFjKMB8GA1UdIwQYMBaAFBmGGWD4n9q6h/Xn0TMz\n"
                              "PblykFjKMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgBY19jYSN\n"
                              "pBkgmVh8WHSD8/YyVMT4seKiRg1aIzoRPxECIQDpjKoca7N9HAYw96CPmdd5RFA+\n"
                              "e8vRXhAsyRoZWdM3zQ==\n"
                              "-----END CERTIFICATE-----\n";
static const char MB_KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKDjG9V19qBCUURlO\n"
                             "xku8pZ2Igc1wGLFsAT0Fs7pftnehRANCAATfvauEZ2092VOtMts5p2m5ONktbgCW\n"
                             "WRHSizQe2JfPrEIaBpRFGbLHaOqby2U4bIsid4Txe2/+SuGnT8FEurQz\n"
                             "-----END PRIVATE KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *pem(const char *text, int key)
{
    BIO *b = BIO_new_mem_buf(text, -1);
    void *x =
        key ? (void *)PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : (void *)PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (x == NULL) {
        abort();
    }
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static X509 *km, *mb;
    static EVP_PKEY *mb_key;
    if (km == NULL) {
        km = pem(KM_CERT, 0);
        mb = pem(MB_CERT, 0);
        mb_key = pem(MB_KEY, 1);
        (void)KM_KEY;
    }
    msp_buf_t out;
    msp_buf_init(&out, MSP_ETS_KP_MAX_SIZE);
    int ret = msp_ets_keypkg_cms_unwrap(data, size, mb, mb_key, &km, 1, NOW, &out, NULL);
    if ((ret == MSP_OK) != (out.len > 0) || out.len > MSP_ETS_KP_MAX_SIZE) {
        abort();
    }
    if (ret == MSP_OK) {
        msp_ets_keypkg_t pkg;
        if (msp_ets_keypkg_decode(out.base, out.len, &pkg, NULL) == MSP_OK) {
            msp_ets_keypkg_free(&pkg);
        }
    }
    msp_buf_free(&out);
    return 0;
}
