/*
 * trace_format.h - the trace file's layout, shared by the writer (trace.c)
 * and the reader (trace_read.c).
 *
 * Little-endian:
 *   0   8  magic "DRTRACE\n"
 *   8   4  version (1)
 *   12  4  flags (1: tensor records carry their values)
 *   16  4  every: steps between recorded steps
 *   20  4  J: length of the header JSON
 *   24  J  header JSON: detrun version, machine, options
 *   then records, each a type byte and its fields:
 *   'F' fit     u32 index, u8 mode, u64 seed, u32 stream, u16 length, label
 *   'S' step    i32 epoch, u64 step (from 0 within the fit)
 *   'N' name    u32 id, u8 kind, i32 layer, u8 ndims, ndims x u32 per-sample
 *               dims (the batch dim of outputs is in each tensor record),
 *               u16 length, name; defines id before its first use
 *   'T' tensor  u32 id, 16 bytes XXH3-128 fingerprint (canonical), u64
 *               count, [count float32 when flag 1]
 *   'E' end     u64 number of records before it
 * Names are defined once and referred to by id, so that a step costs about
 * 29 bytes per tensor.
 */
#ifndef DETRUN_TRACE_FORMAT_H
#define DETRUN_TRACE_FORMAT_H

#include <stdint.h>

#include "trace.h"

#define DETRUN_TRACE_HEADER_BYTES 24
#define DETRUN_TRACE_MAX_JSON (1u << 20)
#define DETRUN_TRACE_MAX_NAMES 65536

/* What a name record defines. */
typedef struct detrun_trace_name {
    detrun_trace_kind kind;
    int layer;
    int ndims;
    uint32_t dims[4];
    char name[DETRUN_TRACE_NAME_MAX];
} detrun_trace_name;

#endif
