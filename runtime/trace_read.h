/*
 * trace_read.h - a trace read record by record (trace_read.c), for the
 * search of the first divergence (trace_compare.c).
 */
#ifndef DETRUN_TRACE_READ_H
#define DETRUN_TRACE_READ_H

#include <stdint.h>
#include <stdio.h>

#include "trace_format.h"

typedef struct detrun_trace_reader {
    detrun_runtime *rt;       /* messages and allocations */
    const char *path;
    FILE *f;
    uint64_t offset;          /* of the next byte */
    uint64_t records;         /* read so far, names included */
    unsigned flags;
    int every;
    char *json;
    size_t json_bytes;
    detrun_trace_name *names;
    uint32_t nnames, cap;
    /* the record just read */
    int type;
    uint64_t at;              /* its offset */
    uint32_t fit;
    detrun_mode mode;
    uint64_t seed;
    uint32_t stream;
    char label[DETRUN_TRACE_NAME_MAX];
    int epoch;
    uint64_t step;
    uint32_t id;
    unsigned char fp[16];
    uint64_t count;
    long values_at;           /* file offset of the values, when the flag is set */
} detrun_trace_reader;

/* Opens path and reads its header; r is to be closed whatever this returns. */
detrun_status detrun_trace_reader_open(detrun_runtime *rt, const char *path,
                                       detrun_trace_reader *r);
/* Reads the next fit, step, tensor or end record into r; name records are
 * taken in on the way. A tensor's values are skipped (values_at says where). */
detrun_status detrun_trace_reader_next(detrun_trace_reader *r);
/* The values of the tensor just read: count floats allocated through r->rt,
 * given back with detrun_trace_values_free; NULL on failure. */
float *detrun_trace_reader_values(detrun_trace_reader *r);
void detrun_trace_values_free(detrun_runtime *rt, float *v, size_t count);
void detrun_trace_reader_close(detrun_trace_reader *r);

#endif
