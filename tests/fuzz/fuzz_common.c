/*
 * fuzz_common.c - the input file, the counting runtime, the abort message.
 */
#define _GNU_SOURCE   /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

static char dir[512];
static char input[600];
static char other[8][600];
static int nother;

static void remove_files(void)
{
    unlink(input);
    for (int i = 0; i < nother; i++)
        unlink(other[i]);
    rmdir(dir);
}

static void make_dir(void)
{
    if (dir[0] != '\0')
        return;
    /* Memory rather than disk where there is a choice: ext4 flushes a file
     * truncated and written again when it is closed, once per input. */
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/detrun-fuzz-XXXXXX", tmp);
    if (mkdtemp(dir) == NULL)
        fuzz_fail("common", "cannot make a temporary folder", dir);
    snprintf(input, sizeof input, "%s/input", dir);
    atexit(remove_files);
}

const char *fuzz_input_file(const uint8_t *data, size_t size)
{
    make_dir();
    FILE *f = fopen(input, "wb");
    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        fuzz_fail("common", "cannot write the input file", input);
    return input;
}

const char *fuzz_path(const char *name)
{
    make_dir();
    for (int i = 0; i < nother; i++)
        if (strcmp(strrchr(other[i], '/') + 1, name) == 0)
            return other[i];
    if (nother == (int)(sizeof other / sizeof other[0]))
        fuzz_fail("common", "too many temporary files", name);
    snprintf(other[nother], sizeof other[nother], "%s/%s", dir, name);
    return other[nother++];
}

static size_t live, limit;

/* Counts what the runtime holds: osize is a block's size when it is freed
 * or grown, so live returns to where it was once an input is done with. */
static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        if (ptr != NULL)
            live -= osize;
        free(ptr);
        return NULL;
    }
    if (limit != 0 && nsize > limit) {
        char what[64];
        snprintf(what, sizeof what, "%zu bytes", nsize);
        fuzz_fail("common", "an allocation larger than the input can justify", what);
    }
    void *p = realloc(ptr, nsize);
    if (p != NULL)
        live += nsize - (ptr != NULL ? osize : 0);
    return p;
}

detrun_runtime *fuzz_runtime(void)
{
    static detrun_runtime *rt;
    if (rt == NULL) {
        detrun_options o = DETRUN_OPTIONS_INIT;
        o.threads = 1;
        o.alloc = counting_alloc;
        if (detrun_open(&rt, &o) != DETRUN_OK)
            fuzz_fail("common", "cannot open a runtime", detrun_errmsg(rt));
    }
    return rt;
}

size_t fuzz_live_bytes(void)
{
    return live;
}

void fuzz_set_alloc_limit(size_t l)
{
    limit = l;
}

void fuzz_fail(const char *target, const char *what, const char *detail)
{
    fprintf(stderr, "fuzz %s: %s%s%s\n", target, what, detail ? ": " : "", detail ? detail : "");
    abort();
}
