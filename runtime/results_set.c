/*
 * results_set.c - a run's results files as one set that a reader never sees
 * mixed with another run's (docs/regression.md, "Results files").
 *
 * The files of a set go into a folder of their own, dir/sets/<id>/, written
 * whole (detrun_write_set) before anything else changes; then one rename
 * switches the link dir/current to that folder, which is the only moment a
 * reader can tell, and it sees either set whole. The familiar names
 * dir/<file> are links through current/. A set folder is never written
 * after its switch; it is removed at the second switch after it, so that a
 * reader who resolved current just before a switch still finds its set.
 * A failure before the switch removes the new folder and leaves the current
 * set as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define PATH_BYTES 4096

/* A name that stays in its folder: no '/', not "." or "..", not empty. */
static int plain_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < 256 && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

/* dir/sets, made when missing; a link or a file there is refused, so that
 * the set cannot be written outside dir. */
static detrun_status sets_folder(detrun_runtime *rt, const char *dir, char *sets)
{
    snprintf(sets, PATH_BYTES, "%s/sets", dir);
    if (mkdir(sets, 0777) != 0 && errno != EEXIST)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create folder: %s", sets,
                             strerror(errno));
    struct stat sb;
    if (lstat(sets, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: not a folder", sets);
    return DETRUN_OK;
}

/* Removes a set folder and the files in it (sets hold no folders). */
static void remove_set(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        char file[PATH_BYTES + 260];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(file, sizeof file, "%s/%s", path, e->d_name);
            unlink(file);
        }
        closedir(d);
    }
    rmdir(path);
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Points the link path at target in one rename (a new link beside it
 * first), whatever path was before: a link, a file, or nothing. */
static detrun_status relink(detrun_runtime *rt, const char *path, const char *target)
{
    char have[PATH_BYTES];
    ssize_t n = readlink(path, have, sizeof have - 1);
    if (n >= 0) {
        have[n] = '\0';
        if (strcmp(have, target) == 0)
            return DETRUN_OK;
    }
    static _Atomic unsigned counter;
    char tmp[PATH_BYTES + 64];
    snprintf(tmp, sizeof tmp, "%s.%ld.%u.tmp", path, (long)getpid(),
             atomic_fetch_add(&counter, 1u));
    if (symlink(target, tmp) != 0)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create a link: %s", tmp,
                             strerror(errno));
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot rename to %s: %s", tmp, path,
                             strerror(e));
    }
    return DETRUN_OK;
}

/* Every set but keep_a and keep_b (names in dir/sets) removed. */
static void remove_old_sets(const char *sets, const char *keep_a, const char *keep_b)
{
    DIR *d = opendir(sets);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[PATH_BYTES + 260];
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strcmp(s, keep_a) == 0 ||
            (keep_b != NULL && strcmp(s, keep_b) == 0))
            continue;
        snprintf(path, sizeof path, "%s/%s", sets, s);
        remove_set(path);
    }
    closedir(d);
}

static detrun_status check_args(detrun_runtime *rt, const char *dir, const char *id, int n,
                                const char *const *names, const void *const *texts,
                                const size_t *lens)
{
    if (dir == NULL || dir[0] == '\0' || id == NULL || n < 1 || n > 64 || names == NULL ||
        texts == NULL || lens == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_write_results_set: %s",
                             dir == NULL || dir[0] == '\0' ? "no folder"
                             : id == NULL ? "no set id"
                             : n < 1 || n > 64 ? "1 to 64 files" : "NULL argument");
    if (!plain_name(id) || strlen(id) > 128)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_write_results_set: set id \"%s\" is "
                             "not a plain file name", id);
    if (strlen(dir) > PATH_BYTES - 512)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: path too long", dir);
    for (int i = 0; i < n; i++)
        if (names[i] == NULL || texts[i] == NULL || !plain_name(names[i]) ||
            strcmp(names[i], "current") == 0 || strcmp(names[i], "sets") == 0)
            return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_write_results_set: file %d is "
                                 "NULL or not a plain file name of the folder", i);
    return DETRUN_OK;
}

/* The files into dir/sets/id/, whole; on failure the folder is gone. */
static detrun_status write_files(detrun_runtime *rt, const char *setdir, int n,
                                 const char *const *names, const void *const *texts,
                                 const size_t *lens)
{
    if (mkdir(setdir, 0777) != 0)
        return detrun_seterr(rt, DETRUN_ERR_IO, "%s: cannot create the set's folder: %s",
                             setdir, strerror(errno));
    char *block = detrun_malloc(rt, (size_t)n * (PATH_BYTES + 260));
    const char *paths[64];
    if (block == NULL) {
        rmdir(setdir);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory", setdir);
    }
    for (int i = 0; i < n; i++) {
        char *p = block + (size_t)i * (PATH_BYTES + 260);
        snprintf(p, PATH_BYTES + 260, "%.3800s/%.255s", setdir, names[i]);
        paths[i] = p;
    }
    detrun_status st = detrun_write_set(rt, n, paths, texts, lens);
    detrun_free(rt, block, (size_t)n * (PATH_BYTES + 260));
    if (st != DETRUN_OK)
        remove_set(setdir);
    else
        sync_dir(setdir);
    return st;
}

detrun_status detrun_write_results_set(detrun_runtime *rt, const char *dir, const char *id,
                                       int n, const char *const *names,
                                       const void *const *texts, const size_t *lens)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    detrun_status st = check_args(rt, dir, id, n, names, texts, lens);
    char sets[PATH_BYTES], setdir[PATH_BYTES + 260], current[PATH_BYTES], target[400];
    if (st == DETRUN_OK)
        st = sets_folder(rt, dir, sets);
    if (st != DETRUN_OK)
        return st;
    snprintf(setdir, sizeof setdir, "%s/%s", sets, id);
    if ((st = write_files(rt, setdir, n, names, texts, lens)) != DETRUN_OK)
        return st;
    /* The set it replaces stays for readers who resolved current before. */
    snprintf(current, sizeof current, "%s/current", dir);
    char old[PATH_BYTES];
    ssize_t len = readlink(current, old, sizeof old - 1);
    const char *old_id = NULL;
    if (len > 5) {
        old[len] = '\0';
        if (strncmp(old, "sets/", 5) == 0 && plain_name(old + 5))
            old_id = old + 5;
    }
    snprintf(target, sizeof target, "sets/%s", id);
    if ((st = relink(rt, current, target)) != DETRUN_OK) {
        remove_set(setdir);
        return st;
    }
    sync_dir(dir);
    /* The familiar names, as links through current/: a reader of one file
     * may open them; one of several files reads them from one set. */
    for (int i = 0; i < n && st == DETRUN_OK; i++) {
        char path[PATH_BYTES + 260];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(target, sizeof target, "current/%s", names[i]);
        st = relink(rt, path, target);
    }
    sync_dir(dir);
    remove_old_sets(sets, id, old_id);
    return st;
}

void detrun_results_set_id(char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y%m%dT%H%M%S", &tm);
    snprintf(buf, len, "%s.%09ldZ-%ld", when, (long)ts.tv_nsec, (long)getpid());
}
