/*
 * atomic_write.c - a file written whole or not at all: temp file, fsync,
 * rename, then fsync of the folder (DESIGN.md, "Errors and data"). Results,
 * goldens, traces and checkpoints all go through it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "internal.h"

static detrun_status write_all(detrun_runtime *rt, int fd, const char *path, const void *buf,
                               size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return DETRUN_OK;
}

/* The rename is only durable once the folder's entry is on disk. */
static void sync_folder(detrun_runtime *rt, const char *path)
{
    size_t len = strlen(path) + 1;
    char *dir = detrun_malloc(rt, len);
    if (dir == NULL)
        return;
    memcpy(dir, path, len);
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir)
        d = "/";
    else if (slash != NULL) {
        *slash = '\0';
        d = dir;
    }
    int dfd = open(d, O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    detrun_free(rt, dir, len);
}

detrun_status detrun_write_file_atomic(detrun_runtime *rt, const char *path,
                                       const void *const *parts, const size_t *lens, int nparts)
{
    if (rt == NULL || path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "write: no runtime or no path");
    size_t plen = strlen(path), tlen = plen + 5;
    char *tmp = detrun_malloc(rt, tlen);
    if (tmp == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    detrun_status s = DETRUN_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        detrun_free(rt, tmp, tlen);
        return s;
    }
    for (int i = 0; i < nparts && s == DETRUN_OK; i++)
        s = write_all(rt, fd, tmp, parts[i], lens[i]);
    if (s == DETRUN_OK && fsync(fd) != 0)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot sync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && s == DETRUN_OK)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot close: %s", tmp, strerror(errno));
    if (s == DETRUN_OK && rename(tmp, path) != 0)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot rename to %s: %s", tmp, path,
                          strerror(errno));
    if (s != DETRUN_OK)
        unlink(tmp);
    detrun_free(rt, tmp, tlen);
    if (s == DETRUN_OK)
        sync_folder(rt, path);
    return s;
}
