/*
 * A passive ETS middlebox (TS 103 523-3): read a capture, decrypt every TLS
 * 1.3 connection whose server used the static key we were given, and write
 * each direction's plaintext to a file. The library does the TCP reassembly,
 * the decryption and the visibility check; this program opens files.
 *
 *   ets_decrypt STATIC_KEY.pem CAPTURE.pcap OUT_DIR
 *
 * writes OUT_DIR/flow-N.c2s and OUT_DIR/flow-N.s2c and prints one line per
 * connection. Exit status: 0 every connection decrypted; 1 some could not be;
 * 2 bad arguments or unreadable input.
 * Built against the installed libmsp: cc ets_decrypt.c $(pkg-config --cflags --libs msp)
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include <msp/ets_passive.h>
#include <msp/ets_pcap.h>

struct files {
    FILE *dir[2]; /* 0: client to server */
};

static const char *out_dir;
static int write_failed;

static void on_flow_open(void *arg, msp_ets_passive_flow_t *flow)
{
    (void)arg;
    msp_ets_passive_flow_set_user(flow, calloc(1, sizeof(struct files)));
}

static void on_plaintext(void *arg, msp_ets_passive_flow_t *flow, int dir, const uint8_t *p, size_t n, uint64_t ts_us)
{
    (void)arg, (void)ts_us;
    struct files *f = msp_ets_passive_flow_user(flow);
    if (f == NULL) {
        write_failed = 1;
        return;
    }
    if (f->dir[dir] == NULL) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/flow-%llu.%s", out_dir,
                 (unsigned long long)msp_ets_passive_flow_info(flow)->id, dir == 0 ? "c2s" : "s2c");
        f->dir[dir] = fopen(path, "wb");
    }
    if (f->dir[dir] == NULL || fwrite(p, 1, n, f->dir[dir]) != n) {
        write_failed = 1;
    }
}

static void on_flow_end(void *arg, msp_ets_passive_flow_t *flow, msp_tcp_close_reason_t reason)
{
    (void)arg, (void)reason;
    struct files *f = msp_ets_passive_flow_user(flow);
    for (int d = 0; f != NULL && d < 2; d++) {
        if (f->dir[d] != NULL && fclose(f->dir[d]) != 0) {
            write_failed = 1;
        }
    }
    free(f);
    printf("flow %llu: %s, %llu bytes to the server, %llu to the client\n",
           (unsigned long long)msp_ets_passive_flow_info(flow)->id,
           msp_ets_flow_status_name(msp_ets_passive_flow_status(flow)),
           (unsigned long long)msp_ets_passive_flow_plaintext(flow, 0),
           (unsigned long long)msp_ets_passive_flow_plaintext(flow, 1));
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    return k;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s STATIC_KEY.pem CAPTURE.pcap OUT_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[3];
    if (mkdir(out_dir, 0700) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 2;
    }
    EVP_PKEY *key = read_key(argv[1]);
    if (key == NULL) {
        fprintf(stderr, "ets_decrypt: %s: not a PEM private key\n", argv[1]);
        return 2;
    }

    static const msp_ets_passive_cb_t cb = {
        .flow_open = on_flow_open, .plaintext = on_plaintext, .flow_end = on_flow_end};
    msp_ets_passive_cfg_t cfg;
    msp_ets_passive_cfg_default(&cfg);
    cfg.cb = &cb;
    msp_ets_passive_t *p = NULL;
    msp_pcap_in_t *in = NULL;
    msp_error_t err = {0};
    int ret = msp_ets_passive_new(&cfg, &p);
    if (ret == MSP_OK) {
        ret = msp_ets_passive_add_key(p, key, &err);
    }
    if (ret == MSP_OK) {
        ret = msp_pcap_in_open_file(argv[2], NULL, &in, &err);
    }
    uint64_t packets = 0;
    if (ret == MSP_OK) {
        ret = msp_pcap_in_run(in, msp_ets_passive_tcp(p), 0, &packets, &err);
    }
    EVP_PKEY_free(key); /* the pipeline holds its own reference */
    if (ret != MSP_OK) {
        fprintf(stderr, "ets_decrypt: %s: %s\n", msp_error_name(ret), err.detail);
        msp_pcap_in_close(in);
        msp_ets_passive_free(p);
        return 2;
    }
    msp_ets_passive_finish(p);

    const msp_ets_passive_counts_t *n = msp_ets_passive_counts(p);
    printf("%llu packets, %llu connections: %llu decrypted, %llu undecryptable\n", (unsigned long long)packets,
           (unsigned long long)n->flows, (unsigned long long)n->decrypted, (unsigned long long)n->undecryptable);
    int status = n->undecryptable == 0 && msp_ets_passive_error(p, &err) == MSP_OK && !write_failed ? 0 : 1;
    msp_pcap_in_close(in);
    msp_ets_passive_free(p);
    return status;
}
