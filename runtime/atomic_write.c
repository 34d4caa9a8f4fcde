/*
 * atomic_write.c - a file written whole or not at all: temp file, fsync,
 * rename, then fsync of the folder (DESIGN.md, "Errors and data"). Results,
 * goldens, traces and checkpoints all go through it; a results set (JSON,
 * CSV, report) through detrun_write_set; hosts and the front end through
 * detrun_write_atomic.
 */
#include <errno.h>
#include <stdatomic.h>
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

/* "<path>.<pid>.<n>.tmp": unique per process and per call, so two writers of
 * the same file (two runs on one folder, two threads) never share, truncate
 * or rename each other's temporary. */
static char *temp_name(detrun_runtime *rt, const char *path, size_t *len)
{
    static _Atomic unsigned counter;
    unsigned n = atomic_fetch_add(&counter, 1u);
    *len = strlen(path) + 48;
    char *tmp = detrun_malloc(rt, *len);
    if (tmp != NULL)
        snprintf(tmp, *len, "%s.%ld.%u.tmp", path, (long)getpid(), n);
    return tmp;
}

/* The parts into a new temporary beside path, flushed to disk; *tmp names it
 * (the caller frees it, tlen bytes, and removes the file on failure). */
static detrun_status write_temp(detrun_runtime *rt, const char *path, const void *const *parts,
                                const size_t *lens, int nparts, char **tmp, size_t *tlen)
{
    *tmp = temp_name(rt, path, tlen);
    if (*tmp == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", path);
    detrun_status s = DETRUN_OK;
    int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create: %s", *tmp, strerror(errno));
    for (int i = 0; i < nparts && s == DETRUN_OK; i++)
        s = write_all(rt, fd, *tmp, parts[i], lens[i]);
    if (s == DETRUN_OK && fsync(fd) != 0)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot sync: %s", *tmp, strerror(errno));
    if (close(fd) != 0 && s == DETRUN_OK)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot close: %s", *tmp, strerror(errno));
    return s;
}

detrun_status detrun_write_file_atomic(detrun_runtime *rt, const char *path,
                                       const void *const *parts, const size_t *lens, int nparts)
{
    if (rt == NULL || path == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "write: no runtime or no path");
    char *tmp = NULL;
    size_t tlen = 0;
    detrun_status s = write_temp(rt, path, parts, lens, nparts, &tmp, &tlen);
    if (s == DETRUN_OK && rename(tmp, path) != 0)
        s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot rename to %s: %s", tmp, path,
                          strerror(errno));
    if (s != DETRUN_OK && tmp != NULL)
        unlink(tmp);
    if (tmp != NULL)
        detrun_free(rt, tmp, tlen);
    if (s == DETRUN_OK)
        sync_folder(rt, path);
    return s;
}

/* Every file is written to its temporary first; only when all of them are
 * on disk are they renamed, in the order given. A failure before the renames
 * (a full disk, a bad folder) removes the temporaries and leaves every old
 * file as it was; renames within one folder need no space. */
detrun_status detrun_write_set(detrun_runtime *rt, int n, const char *const *paths,
                               const void *const *texts, const size_t *lens)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (n < 0 || (n > 0 && (paths == NULL || texts == NULL || lens == NULL)))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_write_set: NULL argument");
    char **tmp = detrun_calloc(rt, n > 0 ? (size_t)n : 1, sizeof *tmp);
    size_t *tlen = detrun_calloc(rt, n > 0 ? (size_t)n : 1, sizeof *tlen);
    detrun_status s = tmp == NULL || tlen == NULL
                          ? detrun_seterr(rt, DETRUN_ERR_MEMORY, "write: out of memory")
                          : DETRUN_OK;
    for (int i = 0; i < n && s == DETRUN_OK; i++)
        if (paths[i] == NULL || texts[i] == NULL)
            s = detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_write_set: file %d is NULL", i);
        else
            s = write_temp(rt, paths[i], &texts[i], &lens[i], 1, &tmp[i], &tlen[i]);
    for (int i = 0; i < n && s == DETRUN_OK; i++)
        if (rename(tmp[i], paths[i]) != 0)
            s = detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot rename to %s: %s", tmp[i], paths[i],
                              strerror(errno));
    for (int i = 0; tmp != NULL && tlen != NULL && i < n; i++)
        if (tmp[i] != NULL) {
            if (s != DETRUN_OK)
                unlink(tmp[i]);
            detrun_free(rt, tmp[i], tlen[i]);
        }
    if (s == DETRUN_OK && n > 0)
        sync_folder(rt, paths[0]);
    detrun_free(rt, tmp, (n > 0 ? (size_t)n : 1) * sizeof *tmp);
    detrun_free(rt, tlen, (n > 0 ? (size_t)n : 1) * sizeof *tlen);
    return s;
}

/* The public face of detrun_write_file_atomic, its arguments checked first. */
detrun_status detrun_write_atomic(detrun_runtime *rt, const char *path, const void *const *parts,
                                  const size_t *lens, int nparts)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (path == NULL || nparts < 0 || (nparts > 0 && (parts == NULL || lens == NULL)))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_write_atomic: NULL argument");
    return detrun_write_file_atomic(rt, path, parts, lens, nparts);
}
