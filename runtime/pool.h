/*
 * pool.h - a fixed pool of worker threads.
 *
 * A job is ntasks numbered tasks; workers (and the caller) claim them with an
 * atomic counter. In deterministic mode each task owns its outputs, so which
 * thread runs which task never changes a bit; in fast mode the claiming order
 * is what varies.
 */
#ifndef DETRUN_POOL_H
#define DETRUN_POOL_H

#include "detrun.h"

typedef struct detrun_pool detrun_pool;

/* fn(arg, task, thread): thread is in [0, threads) and identifies a worker's
 * scratch space; task is in [0, ntasks). */
typedef void (*detrun_task_fn)(void *arg, int task, int thread);

/* threads >= 1 (the caller counts as one: threads - 1 workers are started);
 * the pool's blocks come from alloc. */
detrun_pool *detrun_pool_new(int threads, detrun_alloc_fn alloc, void *ud);
void detrun_pool_free(detrun_pool *p);
int detrun_pool_threads(const detrun_pool *p);
/* Runs all tasks and returns when every one has finished. */
void detrun_pool_run(detrun_pool *p, int ntasks, detrun_task_fn fn, void *arg);

#endif
