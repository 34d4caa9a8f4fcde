/* What the regression tests share beyond ../common.h: file helpers and a
 * runtime to carry error messages. */
#ifndef DETRUN_REGRESS_UTIL_H
#define DETRUN_REGRESS_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "detrun.h"

#include "../common.h"

static inline detrun_runtime *test_runtime(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        printf("FAIL: detrun_open: %s\n", detrun_errmsg(rt));
        exit(1);
    }
    return rt;
}

static inline unsigned char *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            unsigned char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

static inline void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len) {
        printf("FAIL: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* Recomputes a checkpoint's trailing checksum after a deliberate edit, so
 * that the test reaches the checks behind it. */
static inline void rechecksum(unsigned char *buf, size_t len)
{
    XXH128_canonical_t sum;
    XXH128_canonicalFromHash(&sum, XXH3_128bits(buf, len - 16));
    memcpy(buf + len - 16, sum.digest, 16);
}

static inline char *find(char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

#endif
