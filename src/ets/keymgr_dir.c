/*
 * A directory as the key manager's store (msp_ets_keymgr_dir_store in
 * include/msp/ets_keymgr.h): the one part of the key manager that touches
 * the file system, kept apart so that the manager itself stays sans-IO.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "msp/ets_keymgr.h"

#define MAX_PATH 4096

static int path_of(const char *dir, const char *name, char *out, size_t cap)
{
    /* names come from the manager, but a store must not be led out of its directory */
    if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL) {
        return MSP_ERR_ARGUMENT;
    }
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap ? MSP_OK : MSP_ERR_LIMIT;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

/* A temporary file beside the target, renamed over it once complete: never half a record, a failure keeps the old. */
static int dir_save(void *user, const char *name, const uint8_t *data, size_t len)
{
    char path[MAX_PATH], tmp[MAX_PATH + 16];
    int ret = path_of(user, name, path, sizeof(path));
    if (ret != MSP_OK) {
        return ret;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        return MSP_ERR_IO;
    }
    int ok = write_all(fd, data, len) == 0 && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok && rename(tmp, path) == 0;
    if (!ok) {
        unlink(tmp);
        return MSP_ERR_IO;
    }
    return MSP_OK;
}

static int dir_remove(void *user, const char *name)
{
    char path[MAX_PATH];
    int ret = path_of(user, name, path, sizeof(path));
    if (ret != MSP_OK) {
        return ret;
    }
    return unlink(path) == 0 || errno == ENOENT ? MSP_OK : MSP_ERR_IO;
}

/* The file's bytes into buf (at most cap); *len 0 when it cannot be read or is larger. */
static void read_small(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (f == NULL) {
        return;
    }
    size_t n = fread(buf, 1, cap, f);
    /* one byte more than the limit marks a file too large to be a record */
    *len = ferror(f) || n == cap ? 0 : n;
    fclose(f);
}

static int dir_list(void *user, int (*each)(void *ctx, const char *name, const uint8_t *data, size_t len), void *ctx)
{
    DIR *d = opendir(user);
    uint8_t *buf = malloc(MSP_ETS_KEYMGR_MAX_RECORD + 1);
    int ret = d == NULL ? MSP_ERR_IO : buf == NULL ? MSP_ERR_NO_MEMORY : MSP_OK;
    for (struct dirent *de; ret == MSP_OK && (de = readdir(d)) != NULL;) {
        size_t l = strlen(de->d_name), len = 0;
        char path[MAX_PATH];
        if (l <= 4 || strcmp(de->d_name + l - 4, ".pem") != 0 || strstr(de->d_name, ".tmp.") != NULL ||
            de->d_name[0] == '.' || path_of(user, de->d_name, path, sizeof(path)) != MSP_OK) {
            continue;
        }
        read_small(path, buf, MSP_ETS_KEYMGR_MAX_RECORD + 1, &len);
        ret = each(ctx, de->d_name, buf, len);
        OPENSSL_cleanse(buf, len);
    }
    if (d != NULL) {
        closedir(d);
    }
    free(buf);
    return ret;
}

int msp_ets_keymgr_dir_store(const char *dir, msp_ets_keymgr_store_t *store, msp_error_t *err)
{
    struct stat st;
    memset(store, 0, sizeof(*store));
    if (stat(dir, &st) != 0) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "%s", strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "not a directory");
    }
    if (access(dir, R_OK | W_OK | X_OK) != 0) {
        return msp_error_set(err, MSP_ERR_IO, NULL, "%s", strerror(errno));
    }
    store->user = (void *)dir;
    store->save = dir_save;
    store->remove = dir_remove;
    store->list = dir_list;
    return MSP_OK;
}
