/*
 * idx.h - the IDX file reader (LeCun's MNIST format), raw or gzip.
 *
 * An IDX file is the magic 00 00 <type> <ndims>, ndims big-endian uint32
 * dimensions, then the elements in row-major order, big-endian. The reader
 * returns them as a typed n-d array in host byte order. gzip is recognised by
 * its magic bytes, never by the file name.
 *
 * The header is never trusted for an allocation: the buffer grows with the
 * data actually read, so a lying header costs at most one bounded chunk.
 */
#ifndef DETRUN_IDX_H
#define DETRUN_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "detrun.h"

#define DETRUN_IDX_MAX_DIMS 4

enum {
    DETRUN_IDX_U8 = 0x08,
    DETRUN_IDX_I8 = 0x09,
    DETRUN_IDX_I16 = 0x0B,
    DETRUN_IDX_I32 = 0x0C,
    DETRUN_IDX_F32 = 0x0D,
    DETRUN_IDX_F64 = 0x0E
};

typedef struct detrun_idx {
    int type;                 /* DETRUN_IDX_* */
    int ndims;                /* 1 .. DETRUN_IDX_MAX_DIMS */
    uint32_t dims[DETRUN_IDX_MAX_DIMS];
    size_t count;             /* elements: the product of dims */
    size_t bytes;             /* count * element size */
    void *data;               /* uint8_t, int8_t, int16_t, int32_t, float or double */
    detrun_alloc_fn alloc;    /* frees data; kept so that no runtime is needed then */
    void *alloc_ud;
} detrun_idx;

/* Reads an IDX file. On failure *out holds no memory and the runtime's
 * message names the file and what is wrong with it. rt may be NULL. */
detrun_status detrun_idx_read(detrun_runtime *rt, const char *path, detrun_idx *out);
/* The same reader on a buffer (raw or gzip); name is used in messages. */
detrun_status detrun_idx_read_memory(detrun_runtime *rt, const char *name, const void *buf,
                                     size_t len, detrun_idx *out);
void detrun_idx_free(detrun_idx *a);

/* "uint8", "int8", "int16", "int32", "float32", "float64"; NULL if unknown. */
const char *detrun_idx_type_name(int type);
/* Bytes per element; 0 if unknown. */
size_t detrun_idx_type_size(int type);

/* The allocator data is made with: the runtime's, or malloc's when rt is NULL. */
void detrun_data_allocator(const detrun_runtime *rt, detrun_alloc_fn *fn, void **ud);

#endif
