/*
 * msp demo: client -> middlebox -> server on loopback, with certificates
 * generated on the spot. It writes a pingpong configuration shaped like
 * the reference's examples/pingpong.1mbox.ucl into a scratch folder and runs
 * the three real programs (this binary's client, middlebox and server) on
 * it: the middlebox rewrites "client-ping" to "PING" toward the server and
 * "PONG" to "server-pong" toward the client; the client closes after three
 * rounds.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "msp/buf.h"
#include "msp/tlmsp_setup.h"
#include "prog.h"

static const char demo_cfg[] =
    "# Written by msp demo: the reference's pingpong.1mbox.ucl, on free ports.\n"
    "context { id = 1; tag = context-1; purpose = \"demo\" }\n"
    "activity { tag = send-ping; match { at = 100; every = 300 } action { send { context = context-1; data = "
    "\"client-ping\" } } }\n"
    "activity { tag = stop; match { which = *; container = %d } action { shutdown = yes } }\n"
    "activity { tag = report-pong; match { which = *; data = \"server-pong\" } action { } }\n"
    "activity { tag = mbox1-ping; match { which = context-1; data = \"client-ping\" } action { send { context = "
    "context-1; data = \"PING\" } } }\n"
    "activity { tag = mbox1-pong; match { which = context-1; data = \"PONG\" } action { send { context = "
    "context-1; data = \"server-pong\" } } }\n"
    "activity { tag = reply-pong; match { which = *; data = \"PING\" } action { send { context = context-1; data = "
    "\"PONG\" } } }\n"
    "client { address = \"tlmsp://localhost\"; function = [ send-ping, stop, report-pong ] }\n"
    "middlebox { tag = mbox1; address = \"tlmsp://localhost:%u\"; context { which = context-1; access = rw }\n"
    "            function-to-server = mbox1-ping; function-to-client = mbox1-pong }\n"
    "server { address = \"tlmsp://localhost:%u\"; function = reply-pong }\n";

static int write_file(const char *dir, const char *name, const char *suffix, const msp_buf_t *b)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffix);
    FILE *f = fopen(path, "w");
    int ok = f != NULL && fwrite(b->base, 1, b->len, f) == b->len;
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    return ok ? 0 : -1;
}

static int write_identity(const char *dir, const char *name)
{
    msp_buf_t cert, key;
    msp_buf_init(&cert, 1u << 20);
    msp_buf_init(&key, 1u << 20);
    int rc = msp_tlmsp_setup_selfsigned(name, 1, &cert, &key) == MSP_OK &&
                     write_file(dir, name, "-cert.pem", &cert) == 0 && write_file(dir, name, "-key.pem", &key) == 0
                 ? 0
                 : -1;
    msp_buf_free(&cert);
    msp_buf_free(&key);
    return rc;
}

/* A port the kernel says is free now (a race with other programs is possible but harmless here). */
static unsigned free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static pid_t spawn(const char *self, char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(self, argv);
        _exit(127);
    }
    return pid;
}

static int usage(FILE *f, int code)
{
    fputs("usage: msp demo [--rounds N] [--keep]\n\n"
          "Runs msp client -> msp middlebox -> msp server on loopback with freshly generated\n"
          "certificates, on a pingpong configuration like the reference's examples/pingpong.1mbox.ucl.\n"
          "The middlebox rewrites the client's ping and the server's pong; the client closes after N\n"
          "rounds (default 3) and the demo exits 0 when it closed cleanly.\n\n"
          "options:\n"
          "  --rounds N   ping/pong rounds (1..1000)\n"
          "  --keep       keep the scratch folder (configuration, certificates) and print its path\n",
          f);
    return code;
}

static int prepare(char *dir, int rounds, unsigned *mport, unsigned *sport, char *cfg_path, size_t cap)
{
    *mport = free_port();
    *sport = free_port();
    if (mkdtemp(dir) == NULL || *mport == 0 || *sport == 0) {
        cli_error("msp demo", "error: cannot prepare a scratch folder or ports: %s", strerror(errno));
        return -1;
    }
    snprintf(cfg_path, cap, "%s/pingpong-1mbox.ucl", dir);
    FILE *f = fopen(cfg_path, "w");
    int ok = f != NULL && fprintf(f, demo_cfg, rounds, *mport, *sport) > 0;
    if (f != NULL && fclose(f) != 0) {
        ok = 0;
    }
    if (!ok || write_identity(dir, "server") != 0 || write_identity(dir, "mbox1") != 0) {
        cli_error("msp demo", "error: cannot write the configuration or certificates in %s", dir);
        return -1;
    }
    return 0;
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"pingpong-1mbox.ucl", "server-cert.pem", "server-key.pem", "mbox1-cert.pem",
                                        "mbox1-key.pem"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int cmd_tlmsp_demo(int argc, char **argv)
{
    int rounds = 3, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return usage(stdout, CLI_OK);
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = 1;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1 || rounds > 1000) {
                cli_error("msp demo", "error: --rounds wants 1..1000, not '%s'", argv[i]);
                return CLI_USAGE;
            }
        } else {
            cli_error("msp demo", "error: unknown argument '%s' (see 'msp demo --help')", argv[i]);
            return CLI_USAGE;
        }
    }
    char dir[] = "/tmp/msp-demo-XXXXXX", cfg[PATH_MAX], self[PATH_MAX];
    unsigned mport, sport;
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0 || prepare(dir, rounds, &mport, &sport, cfg, sizeof(cfg)) != 0) {
        return CLI_FAIL;
    }
    self[n] = '\0';
    printf("msp demo: client -> mbox1 (127.0.0.1:%u) -> server (127.0.0.1:%u), %d rounds\n", mport, sport, rounds);
    fflush(stdout);
    char *server_argv[] = {"msp", "server", "-c", cfg, "-P", NULL};
    char *mbox_argv[] = {"msp", "middlebox", "-c", cfg, "-a", "-P", NULL};
    char *client_argv[] = {"msp", "client", "-c", cfg, "-P", "-v", NULL};
    pid_t server = spawn(self, server_argv);
    usleep(200000);
    pid_t mbox = spawn(self, mbox_argv);
    usleep(200000);
    pid_t client = spawn(self, client_argv);
    int status = -1;
    if (client > 0) {
        waitpid(client, &status, 0);
    }
    kill(mbox, SIGTERM);
    kill(server, SIGTERM);
    waitpid(mbox, NULL, 0);
    waitpid(server, NULL, 0);
    int ok = client > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("msp demo: %s\n", ok ? "the client closed cleanly after the last pong" : "FAILED (see above)");
    if (keep) {
        printf("msp demo: configuration and certificates kept in %s\n", dir);
    } else {
        remove_dir(dir);
    }
    return ok ? CLI_OK : CLI_FAIL;
}
