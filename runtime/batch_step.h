/*
 * batch_step.h - one optimiser step of fit over one batch.
 */
#ifndef DETRUN_BATCH_STEP_H
#define DETRUN_BATCH_STEP_H

#include "model.h"

/* Gathers rows[0..nb) of the bound data set, runs forward (dropout keyed by
 * addr), the loss (per-sample results into loss[0..nb) and correct[0..nb),
 * backend memory), backward and the optimiser step. The backend runs it
 * through its run_step entry (a GPU may replay a recording of it). */
detrun_status detrun_batch_step(detrun_model *m, const uint32_t *rows, int nb,
                                const detrun_rng_addr *addr, float *loss, float *correct);

#endif
