/*
 * dataset.h - what the runtime's own files know of data sets beyond detrun.h.
 */
#ifndef DETRUN_DATASET_H
#define DETRUN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "detrun.h"

/* A data set from arrays in memory (copied): count images of c*h*w bytes,
 * count labels in 0..classes-1. */
detrun_status detrun_dataset_from_memory(detrun_runtime *rt, const uint8_t *images, const uint8_t *labels, size_t count, int c, int h, int w, int classes, detrun_dataset **out);

/* An identity no other data set of this process shares, even one allocated
 * later at the same address: what a model's device copy of the data is keyed by. */
uint64_t detrun_dataset_identity(const detrun_dataset *ds);

/* Marks ds as trained on by a fit of rt until the matching unuse: while
 * marked, detrun_dataset_limit refuses (DETRUN_ERR_BUSY). Thread-safe. */
void detrun_dataset_use(const detrun_dataset *ds, detrun_runtime *rt);
void detrun_dataset_unuse(const detrun_dataset *ds);

#endif
