/*
 * checkpoint.h - the whole training state of a fit, saved and restored bit for
 * bit (docs/regression.md, "Checkpoints").
 *
 * Philox draws are addressed by (seed, purpose, stream, layer, step), so the
 * random state of a fit is nothing but its counters: restoring the weights,
 * the optimiser moments, the optimiser step, the beta^t running products and
 * the epoch is enough for the rest of the fit to give the same bits as an
 * uninterrupted one.
 *
 * A file is written whole or not at all (temp file, fsync, rename) and is
 * read whole, checked (magic, version, length, XXH3-128 checksum, metadata
 * against the model) and only then applied: a damaged or foreign file is
 * refused with a message naming the file and what is wrong, never
 * half-loaded.
 */
#ifndef DETRUN_CHECKPOINT_H
#define DETRUN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "detrun.h"

#define DETRUN_CHECKPOINT_MAGIC "DRCKPT\r\n"   /* 8 bytes; \r\n catches text-mode mangling */
/* Version 1: a fit stopped at an epoch boundary. Version 2 adds what a fit
 * stopped inside an epoch needs (the epoch's per-sample results so far);
 * only such checkpoints are written as version 2, so end-of-epoch files stay
 * readable by every detrun, and one that cannot continue inside an epoch
 * refuses a version 2 file by its version. */
#define DETRUN_CHECKPOINT_VERSION_EPOCH 1u
#define DETRUN_CHECKPOINT_VERSION 2u
#define DETRUN_CHECKPOINT_NAME_MAX 64

/* One parameter tensor as the checkpoint knows it: its floats sit at
 * [offset, offset + count) of each block. */
typedef struct detrun_checkpoint_tensor {
    char name[DETRUN_CHECKPOINT_NAME_MAX];
    int ndims;
    int dims[4];
    size_t offset, count;
} detrun_checkpoint_tensor;

typedef struct detrun_checkpoint {
    /* where the fit stands */
    int epoch;                 /* epochs finished: the next epoch to run */
    int batch;                 /* batches of that epoch finished (0: at an epoch boundary) */
    /* Inside an epoch (batch > 0): the per-sample losses and hits (1 or 0)
     * of its first npartial training samples in the epoch's order, which its
     * statistics are summed from, and the seconds it has run so far. */
    size_t npartial;
    float *partial_loss, *partial_hit;
    double partial_seconds;
    uint64_t step;             /* optimiser steps so far */
    float beta1_t, beta2_t;    /* running products beta^step (1 before the first step) */
    /* what the fit is (checked on resume, so a checkpoint of another fit is refused) */
    detrun_mode mode;
    uint64_t seed;
    uint32_t stream;
    int epochs, batch_size;
    uint64_t data;             /* XXH3-64 of the fit's rows and validation split */
    detrun_optimizer optimizer;
    /* the epochs finished so far, replayed to the epoch callback on resume */
    int nstats;
    detrun_epoch_stats *stats;
    /* parameters and optimiser state: count floats each. Adam: m and v;
     * SGD: the velocity in m, v NULL. */
    int ntensors;
    detrun_checkpoint_tensor *tensors;
    size_t count;
    float *params, *m, *v;
    /* opaque bytes of the caller's own (e.g. a runner's results so far) */
    void *blob;
    size_t bloblen;
    /* the runtime whose allocator holds the blocks (set by read and
     * capture); NULL: they are the caller's own malloc blocks */
    detrun_runtime *rt;
} detrun_checkpoint;

/* Writes the parts, in order, to "<path>.<pid>.<n>.tmp", fsyncs it and renames it over
 * path: a reader sees the old file or the new one, whole. */
detrun_status detrun_write_file_atomic(detrun_runtime *rt, const char *path,
                                       const void *const *parts, const size_t *lens, int nparts);

/* Serialises c and writes it to path atomically. */
detrun_status detrun_checkpoint_write(detrun_runtime *rt, const char *path,
                                      const detrun_checkpoint *c);
/* Reads and checks path into *c (zeroed first). On failure *c holds no
 * memory and the message names the file and the fault. */
detrun_status detrun_checkpoint_read(detrun_runtime *rt, const char *path, detrun_checkpoint *c);
/* Frees what read or capture allocated (through c->rt's allocator), or, when
 * c->rt is NULL, the caller's own malloc blocks; leaves *c zeroed. */
void detrun_checkpoint_free(detrun_checkpoint *c);

/* Copies the model's parameters, optimiser moments, step and beta products
 * into *c (zeroed first; the fit fields are left for the caller). */
detrun_status detrun_checkpoint_capture(detrun_model *m, detrun_checkpoint *c);
/* Checks that c fits the compiled model m (same tensors, shapes, optimiser)
 * and only then restores parameters, moments, step and beta products. */
detrun_status detrun_checkpoint_apply(detrun_model *m, const detrun_checkpoint *c);

/* ---- the hooks detrun_model_fit calls (opt->checkpoint != NULL) ------------ */

typedef struct detrun_fit_ckpt detrun_fit_ckpt;

/* Where a resumed fit starts. The arrays belong to the detrun_fit_ckpt. */
typedef struct detrun_fit_start {
    int epoch;                 /* the first epoch to run */
    int batch;                 /* its batches already run (0: from its start) */
    size_t nsamples;           /* their samples: batch * batch size */
    const float *loss, *hit;   /* those samples' results, in the epoch's order */
    double seconds;            /* the epoch's time so far */
} detrun_fit_start;

/* Before the first epoch. When opt->resume is set and opt->checkpoint
 * exists, restores m from it (refusing a checkpoint of another fit),
 * replays cb for the epochs it holds and fills *at with where to go on
 * (ntrain: the fit's training rows, to check a mid-epoch position against);
 * otherwise *at is all zero. *done is set when the checkpoint says the fit
 * had already finished (or cb asked to stop). */
detrun_status detrun_fit_ckpt_begin(detrun_model *m, const uint32_t *rows, size_t nrows,
                                    size_t ntrain, const detrun_fit_options *opt,
                                    detrun_epoch_fn cb, void *ud, detrun_fit_ckpt **out,
                                    detrun_fit_start *at, int *done);
/* After each epoch (after its callback): records st and saves the state. */
detrun_status detrun_fit_ckpt_epoch(detrun_fit_ckpt *c, detrun_model *m,
                                    const detrun_epoch_stats *st);
/* A fit cancelled inside epoch `epoch` after `batch` of its batches: saves
 * the state with the first n samples' results (loss, hit) and the epoch's
 * seconds so far, so that a resume continues at that step. */
detrun_status detrun_fit_ckpt_inside(detrun_fit_ckpt *c, detrun_model *m, int epoch, int batch,
                                     const float *loss, const float *hit, size_t n,
                                     double seconds);
void detrun_fit_ckpt_end(detrun_fit_ckpt *c);

#endif
