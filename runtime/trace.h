/*
 * trace.h - per-step fingerprints of every parameter, gradient and layer
 * output of a training run, and the search for the first step, layer and
 * tensor where two runs part (docs/regression.md, "Traces").
 *
 * A trace is a binary file: a header (magic, version, flags, a JSON
 * description of the run), then records. Records come in the causal order of
 * a step: layer outputs in forward order, gradients in backward order (last
 * layer first), then the updated parameters; so the first record where two
 * traces differ is the first place a bit moved, not a consequence of it.
 *
 * The trace hangs off the runtime (rt->trace): the command starts it, every
 * detrun_model_fit on that runtime writes into it, one "fit" record per fit.
 * The file is written to a temporary name and renamed when the trace stops.
 */
#ifndef DETRUN_TRACE_H
#define DETRUN_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "detrun.h"

#define DETRUN_TRACE_MAGIC "DRTRACE\n"   /* 8 bytes */
#define DETRUN_TRACE_VERSION 1u
#define DETRUN_TRACE_NAME_MAX 96

/* Header flags. */
#define DETRUN_TRACE_VALUES 1u          /* tensor records also hold the float32 values */

typedef enum detrun_trace_kind {
    DETRUN_TRACE_OUTPUT = 1,            /* a layer's output (forward) */
    DETRUN_TRACE_GRAD = 2,              /* a parameter's gradient (backward) */
    DETRUN_TRACE_PARAM = 3              /* a parameter after the optimiser step */
} detrun_trace_kind;

typedef struct detrun_trace detrun_trace;

/* Opens a trace writer: every-th optimiser step (counted from 0 in each fit)
 * is recorded; every >= 1. flags: DETRUN_TRACE_VALUES or 0. header_json: a
 * JSON object describing the run (version, mode, threads, machine), or NULL. */
detrun_status detrun_trace_open(detrun_runtime *rt, const char *path, int every, unsigned flags,
                                const char *header_json, detrun_trace **out);
/* Finishes the file (end record, flush, fsync, rename). Frees tr. */
detrun_status detrun_trace_close(detrun_runtime *rt, detrun_trace *tr);
/* Drops an unfinished trace: the temporary file is removed. Frees tr. */
void detrun_trace_discard(detrun_trace *tr);

/* A fit starts: its mode, seed, stream and the label the caller set (may be
 * NULL), e.g. "deterministic repeat 0 fold 3". */
detrun_status detrun_trace_fit(detrun_trace *tr, detrun_mode mode, uint64_t seed,
                               uint32_t stream, const char *label);
/* The label of the next fits (copied; NULL clears it). */
void detrun_trace_set_label(detrun_trace *tr, const char *label);
/* Whether optimiser step `step` (from 0 within the fit) is to be recorded. */
int detrun_trace_wants(const detrun_trace *tr, uint64_t step);
/* A recorded step starts. */
detrun_status detrun_trace_step(detrun_trace *tr, int epoch, uint64_t step);
/* One tensor of the current step: data is count float32 in host memory. */
detrun_status detrun_trace_tensor(detrun_trace *tr, detrun_trace_kind kind, int layer,
                                  const char *name, int ndims, const int *dims,
                                  const float *data, size_t count);

/* The hook detrun_model_fit calls after the optimiser step of every step
 * that detrun_trace_wants: records the step, then the outputs (n samples),
 * gradients and parameters of m (downloading them from the backend). */
detrun_status detrun_trace_model(detrun_trace *tr, detrun_model *m, int n, int epoch,
                                 uint64_t step);

/* ---- reading and comparing --------------------------------------------- */

typedef struct detrun_trace_divergence {
    int differ;              /* 0: the traces agree record for record */
    int structural;          /* 1: they differ in shape (other fits, steps or tensors) */
    char what[400];          /* for structural differences: what each side had */
    /* where (valid when differ) */
    uint32_t fit;            /* fit index, from 0 */
    char label[DETRUN_TRACE_NAME_MAX];
    detrun_mode mode;
    uint32_t stream;
    int epoch;
    uint64_t step;
    detrun_trace_kind kind;
    int layer;
    char name[DETRUN_TRACE_NAME_MAX];
    char fingerprint_a[33], fingerprint_b[33];
    uint64_t records;        /* records that agreed before it */
    /* with values in both traces (DETRUN_TRACE_VALUES) */
    int have_values;
    size_t count;
    size_t differing;        /* elements whose bits differ */
    double max_abs;          /* largest |a - b| and where */
    size_t max_abs_at;
    double max_rel;          /* largest |a - b| / max(|a|, |b|) and where */
    size_t max_rel_at;
} detrun_trace_divergence;

/* Reads traces a and b and finds the first record where they differ. When
 * dump_prefix is not NULL and both traces hold values there, writes the two
 * tensors to "<dump_prefix>.a.f32" and "<dump_prefix>.b.f32" (raw float32
 * little-endian, atomically). A file that is not a trace, of another
 * version, or cut short is an error naming the file and the byte offset. */
detrun_status detrun_trace_diff(detrun_runtime *rt, const char *a, const char *b,
                                const char *dump_prefix, detrun_trace_divergence *out);
/* Writes a human-readable account of d (several lines) to f. */
void detrun_trace_divergence_print(FILE *f, const char *a, const char *b,
                                   const detrun_trace_divergence *d);

/* "output", "gradient", "parameter". */
const char *detrun_trace_kind_name(detrun_trace_kind kind);

#endif
