/*
 * folder_lock.c - one run at a time in a results folder.
 *
 * flock() on dir/.detrun.lock: the kernel drops the lock with the last
 * descriptor, so a run killed by SIGKILL never leaves a stale lock behind,
 * and a second lock from the same process (another open file) is refused
 * too. The file holds the owner's process id, which the refusal names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct detrun_folder_lock {
    int fd;
    detrun_alloc_fn alloc;
    void *ud;
};

/* mkdir -p of dir (the lock is taken before anything is written there). */
static detrun_status make_folder(detrun_runtime *rt, const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create folder: %s", path,
                                 strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: not a folder", dir);
    return DETRUN_OK;
}

/* The pid the holder wrote, or 0 when unreadable. */
static long holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

detrun_status detrun_folder_lock_acquire(detrun_runtime *rt, const char *dir,
                                         detrun_folder_lock **out)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (out == NULL || dir == NULL || dir[0] == '\0')
        return detrun_seterr(rt, DETRUN_ERR_ARG, "folder lock: %s",
                             out == NULL ? "out is NULL" : "no folder (an empty path)");
    *out = NULL;
    detrun_status st = make_folder(rt, dir);
    if (st != DETRUN_OK)
        return st;
    char path[4200];
    snprintf(path, sizeof path, "%s/.detrun.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = holder(fd);
        close(fd);
        if (e != EWOULDBLOCK)
            return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
        return detrun_seterr(rt, DETRUN_ERR_BUSY,
                             "%s is in use by another run (process %ld holds %s): wait for it to "
                             "end, or give this run another results folder (-o DIR)",
                             dir, pid, path);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds without the pid; only the refusal's message lacks it. */
    }
    detrun_alloc_fn alloc = detrun_get_allocator(rt, NULL);
    void *ud = NULL;
    detrun_get_allocator(rt, &ud);
    detrun_folder_lock *l = alloc(ud, NULL, 0, sizeof *l);
    if (l == NULL) {
        close(fd);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "folder lock: out of memory");
    }
    l->fd = fd;
    l->alloc = alloc;
    l->ud = ud;
    *out = l;
    return DETRUN_OK;
}

void detrun_folder_unlock(detrun_folder_lock *l)
{
    if (l == NULL)
        return;
    close(l->fd);   /* drops the flock */
    l->alloc(l->ud, l, sizeof *l, 0);
}
