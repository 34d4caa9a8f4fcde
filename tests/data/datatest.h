/*
 * datatest.h - what the data tests share: CHECK (../common.h) and their own IDX
 * writer, written from the format's description rather than from the reader
 * (big-endian by shifts, gzip by zlib's gz* functions).
 */
#ifndef DETRUN_TEST_DATATEST_H
#define DETRUN_TEST_DATATEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../common.h"

typedef struct blob {
    uint8_t *p;
    size_t n;
    size_t cap;   /* 0 for a view into another blob */
} blob;

static inline void blob_put(blob *b, const void *src, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = 2 * (b->n + n + 1);
        uint8_t *q = realloc(b->p, cap);
        if (q == NULL) {
            fprintf(stderr, "test: out of memory\n");
            exit(2);
        }
        b->p = q;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->n, src, n);
    b->n += n;
}

static inline void blob_be(blob *b, uint64_t v, int bytes)
{
    uint8_t t[8];
    for (int i = 0; i < bytes; i++)
        t[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    blob_put(b, t, (size_t)bytes);
}

static inline void blob_header(blob *b, int type, int ndims, const uint32_t *dims)
{
    uint8_t m[4] = { 0, 0, (uint8_t)type, (uint8_t)ndims };
    blob_put(b, m, 4);
    for (int i = 0; i < ndims; i++)
        blob_be(b, dims[i], 4);
}

static inline void blob_free(blob *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
    b->cap = 0;
}

static inline void write_raw(const char *path, const blob *b)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (b->n > 0 && fwrite(b->p, 1, b->n, f) != b->n) || fclose(f) != 0) {
        fprintf(stderr, "test: cannot write %s\n", path);
        exit(2);
    }
}

static inline void write_gz(const char *path, const blob *b)
{
    gzFile g = gzopen(path, "wb6");
    if (g == NULL || (b->n > 0 && gzwrite(g, b->p, (unsigned)b->n) != (int)b->n) ||
        gzclose(g) != Z_OK) {
        fprintf(stderr, "test: cannot write %s\n", path);
        exit(2);
    }
}

/* The bytes of a whole file. */
static inline blob slurp(const char *path)
{
    blob b = { NULL, 0, 0 };
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "test: cannot read %s\n", path);
        exit(2);
    }
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        blob_put(&b, buf, n);
    fclose(f);
    return b;
}

/* A fresh temporary directory for one test program. */
static inline const char *make_tmpdir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, size, "%s/detrun-data-XXXXXX", base != NULL && base[0] ? base : "/tmp");
    if (mkdtemp(buf) == NULL) {
        fprintf(stderr, "test: cannot create a temporary directory\n");
        exit(2);
    }
    return buf;
}

#endif
