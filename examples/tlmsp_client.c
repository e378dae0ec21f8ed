/*
 * A TLMSP client (TS 103 523-2) over a plain blocking socket, through the
 * sans-IO API: the connection object takes the bytes the socket received and
 * gives the bytes to send; the program owns the socket and the randomness.
 * It offers one context, sends one message in it once the handshake with the
 * server (and every middlebox the server names) is done, prints the first
 * reply and closes with close_notify.
 *
 *   tlmsp_client HOST PORT SERVER_URL CONTEXT_ID MESSAGE
 *
 * e.g. against `msp server -c pingpong.ucl`:
 *   tlmsp_client 127.0.0.1 10455 tlmsp://localhost:10455 1 client-ping
 *
 * Exit status: 0 a reply came and the session closed cleanly; 1 otherwise.
 * Built against the installed libmsp: cc tlmsp_client.c $(pkg-config --cflags --libs msp)
 */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <msp/buf.h>
#include <msp/error.h>
#include <msp/tlmsp_conn.h>

struct session {
    int replied;
};

static void on_data(void *user, uint8_t ctx, const uint8_t *p, size_t len)
{
    struct session *s = user;
    printf("context %u: %.*s\n", ctx, (int)len, (const char *)p);
    s->replied = 1;
}

static void on_alert(void *user, uint8_t ctx, uint8_t level, uint8_t desc)
{
    (void)user;
    fprintf(stderr, "tlmsp_client: alert level %u description %u in context %u\n", level, desc, ctx);
}

static void random_bytes(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    if (RAND_bytes(buf, (int)len) != 1) {
        abort(); /* the callback must not fail: without randomness there is no session */
    }
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Writes out to the socket and empties it. */
static int flush(int fd, msp_buf_t *out)
{
    for (size_t off = 0; off < out->len;) {
        ssize_t n = write(fd, out->base + off, out->len - off);
        if (n <= 0) {
            return -1;
        }
        off += (size_t)n;
    }
    out->len = 0;
    return msp_buf_error(out) == MSP_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT SERVER_URL CONTEXT_ID MESSAGE\n", argv[0]);
        return 1;
    }
    int ctx = atoi(argv[4]);
    if (ctx < 1 || ctx > 255) {
        fprintf(stderr, "tlmsp_client: CONTEXT_ID must be 1..255\n");
        return 1;
    }
    static msp_tlmsp_context_list_t contexts; /* large: not on the stack */
    contexts.present[ctx] = 1;
    static const msp_tlmsp_mbox_list_t no_middleboxes; /* the server may still insert some (discovery) */

    struct session s = {0};
    static const char client_url[] = "tlmsp://localhost";
    msp_tlmsp_endpoint_cfg_t cfg = {
        .random = random_bytes,
        .client_address = {MSP_TLMSP_ADDR_URL, (const uint8_t *)client_url, sizeof(client_url) - 1},
        .server_address = {MSP_TLMSP_ADDR_URL, (const uint8_t *)argv[3], strlen(argv[3])},
        .contexts = &contexts,
        .middleboxes = &no_middleboxes,
        .events = {.user = &s, .data = on_data, .alert = on_alert},
    };
    msp_tlmsp_conn_t *c = NULL;
    int ret = msp_tlmsp_conn_new(MSP_TLMSP_ID_CLIENT, &cfg, &c);
    if (ret != MSP_OK) {
        fprintf(stderr, "tlmsp_client: %s\n", msp_error_name(ret));
        return 1;
    }
    int fd = dial(argv[1], argv[2]);
    if (fd < 0) {
        fprintf(stderr, "tlmsp_client: cannot connect to %s:%s\n", argv[1], argv[2]);
        msp_tlmsp_conn_free(c);
        return 1;
    }

    msp_buf_t out;
    msp_buf_init(&out, 1u << 20);
    ret = msp_tlmsp_conn_start(c, &out);
    int sent = 0;
    uint8_t in[16384];
    while (ret == MSP_OK && flush(fd, &out) == 0) {
        if (s.replied) {
            ret = msp_tlmsp_conn_alert(c, 0, 1, 0, &out); /* close_notify */
            flush(fd, &out);
            break;
        }
        if (!sent && msp_tlmsp_conn_ready(c)) {
            ret = msp_tlmsp_conn_send(c, (uint8_t)ctx, (const uint8_t *)argv[5], strlen(argv[5]), &out);
            sent = 1;
            continue;
        }
        ssize_t n = read(fd, in, sizeof(in));
        if (n <= 0) {
            fprintf(stderr, "tlmsp_client: the server closed the connection\n");
            ret = MSP_ERR_IO;
            break;
        }
        size_t len = (size_t)n;
        ret = msp_tlmsp_conn_input(c, in, &len, &out);
    }
    if (ret != MSP_OK) {
        flush(fd, &out); /* the alert that names the failure */
        fprintf(stderr, "tlmsp_client: %s\n", msp_error_name(ret));
    }
    msp_buf_free(&out);
    msp_tlmsp_conn_free(c);
    close(fd);
    return ret == MSP_OK && s.replied ? 0 : 1;
}
