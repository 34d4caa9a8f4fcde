/*
 * folder_lock.c - one run at a time in a results folder, or one process at
 * a time in each part of a folder that parts share (the shards of a run).
 *
 * flock() on dir/.detrun.lock: the kernel drops the lock with the last
 * descriptor, so a run killed by SIGKILL never leaves a stale lock behind,
 * and a second lock from the same process (another open file) is refused
 * too. The file holds the owner's process id, which the refusal names.
 *
 * A part holds dir/.detrun.lock shared and dir/.detrun.<part>.lock
 * exclusive (with its pid): parts exclude each other only part by part,
 * and a whole-folder lock, exclusive, waits for all of them. When a part
 * keeps the whole folder from being locked, the refusal names that part's
 * file and process, found by probing the part files.
 */
#include <dirent.h>
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
    int part_fd;   /* -1: the whole folder */
    detrun_alloc_fn alloc;
    void *ud;
};

static detrun_status wrap(detrun_runtime *rt, int fd, int part_fd, detrun_folder_lock **out);

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

static void write_pid(int fd)
{
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The lock holds without the pid; only the refusal's message lacks it. */
    }
}

static detrun_status busy(detrun_runtime *rt, const char *dir, long pid, const char *path)
{
    return detrun_seterr(rt, DETRUN_ERR_BUSY,
                         "%s is in use by another run (process %ld holds %s): wait for it to "
                         "end, or give this run another results folder (-o DIR)",
                         dir, pid, path);
}

/* A part file of dir that another process holds: its path in path and its
 * holder's pid; 0 when none is held. */
static long busy_part(const char *dir, char *path, size_t size)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    long pid = 0;
    struct dirent *e;
    while (pid == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (strncmp(e->d_name, ".detrun.", 8) != 0 || n <= 13 ||
            strcmp(e->d_name + n - 5, ".lock") != 0)
            continue;
        snprintf(path, size, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
            pid = holder(fd);
            if (pid == 0)
                pid = -1;   /* held, its pid not yet written */
        }
        close(fd);   /* drops the probe's lock, if it got one */
    }
    closedir(d);
    return pid;
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
        /* Held shared, by parts: the pid in the file is an earlier owner's. */
        char part[4200];
        long ppid = busy_part(dir, part, sizeof part);
        return ppid != 0 ? busy(rt, dir, ppid, part) : busy(rt, dir, pid, path);
    }
    write_pid(fd);
    return wrap(rt, fd, -1, out);
}

/* The lock's handle, made through the runtime's allocator. */
static detrun_status wrap(detrun_runtime *rt, int fd, int part_fd, detrun_folder_lock **out)
{
    detrun_alloc_fn alloc = detrun_get_allocator(rt, NULL);
    void *ud = NULL;
    detrun_get_allocator(rt, &ud);
    detrun_folder_lock *l = alloc(ud, NULL, 0, sizeof *l);
    if (l == NULL) {
        close(fd);
        if (part_fd >= 0)
            close(part_fd);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "folder lock: out of memory");
    }
    l->fd = fd;
    l->part_fd = part_fd;
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
    if (l->part_fd >= 0)
        close(l->part_fd);
    l->alloc(l->ud, l, sizeof *l, 0);
}

/* A part name is one file name's worth of plain characters. */
static int valid_part(const char *part)
{
    size_t n = strlen(part);
    if (n == 0 || n > 64 || strcmp(part, "lock") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = part[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

detrun_status detrun_folder_lock_part(detrun_runtime *rt, const char *dir, const char *part,
                                      detrun_folder_lock **out)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (out == NULL || dir == NULL || dir[0] == '\0' || part == NULL || !valid_part(part))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "folder lock: %s",
                             out == NULL ? "out is NULL"
                             : dir == NULL || dir[0] == '\0' ? "no folder (an empty path)"
                             : "the part's name must be 1 to 64 letters, digits, '-' or '_'");
    *out = NULL;
    detrun_status st = make_folder(rt, dir);
    if (st != DETRUN_OK)
        return st;
    char path[4200], ppath[4300];
    snprintf(path, sizeof path, "%s/.detrun.lock", dir);
    snprintf(ppath, sizeof ppath, "%s/.detrun.%s.lock", dir, part);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        int e = errno;
        long pid = holder(fd);
        close(fd);
        return e == EWOULDBLOCK ? busy(rt, dir, pid, path)
                                : detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot lock: %s", path,
                                                strerror(e));
    }
    int pfd = open(ppath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (pfd < 0) {
        int e = errno;
        close(fd);
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot open: %s", ppath, strerror(e));
    }
    if (flock(pfd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = holder(pfd);
        close(pfd);
        close(fd);
        return e == EWOULDBLOCK ? busy(rt, dir, pid, ppath)
                                : detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot lock: %s", ppath,
                                                strerror(e));
    }
    write_pid(pfd);
    return wrap(rt, fd, pfd, out);
}
