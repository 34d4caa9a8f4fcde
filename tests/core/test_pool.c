/*
 * test_pool.c - the thread pool runs every task exactly once per job, with
 * thread ids in range, across many back-to-back jobs and thread counts.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "pool.h"

#include "../common.h"

typedef struct job {
    atomic_int *hits;
    atomic_int bad_thread;
    int threads;
    long long *sums;      /* per task, written by whoever runs it */
} job;

static void task(void *arg, int t, int thread)
{
    job *j = arg;
    atomic_fetch_add(&j->hits[t], 1);
    if (thread < 0 || thread >= j->threads)
        atomic_store(&j->bad_thread, 1);
    long long s = 0;
    for (int i = 0; i <= t % 97; i++)
        s += i;
    j->sums[t] = s;
}

static void check_job(detrun_pool *p, int threads, int ntasks)
{
    job j;
    j.hits = calloc((size_t)ntasks + 1, sizeof *j.hits);
    j.sums = calloc((size_t)ntasks + 1, sizeof *j.sums);
    atomic_init(&j.bad_thread, 0);
    j.threads = threads;
    detrun_pool_run(p, ntasks, task, &j);
    int wrong = 0;
    for (int t = 0; t < ntasks; t++) {
        int m = t % 97;
        if (atomic_load(&j.hits[t]) != 1 || j.sums[t] != (long long)m * (m + 1) / 2)
            wrong++;
    }
    CHECK(wrong == 0, "threads %d, %d tasks: %d tasks not run exactly once or not finished",
          threads, ntasks, wrong);
    CHECK(!atomic_load(&j.bad_thread), "threads %d: a thread id out of range", threads);
    free(j.hits);
    free(j.sums);
}

int main(void)
{
    CHECK(detrun_pool_new(0, detrun_default_alloc, NULL) == NULL, "a pool of 0 threads must be refused");
    for (int threads = 1; threads <= 4; threads++) {
        detrun_pool *p = detrun_pool_new(threads, detrun_default_alloc, NULL);
        CHECK(p != NULL, "pool of %d threads", threads);
        if (!p)
            continue;
        CHECK(detrun_pool_threads(p) == threads, "threads reported");
        detrun_pool_run(p, 0, task, NULL);   /* no tasks: returns at once */
        int sizes[] = { 1, 2, 3, 7, 64, 1000 };
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            check_job(p, threads, sizes[s]);
        /* Many short jobs back to back: a late worker must never run a task
         * of the next job with the previous job's function. */
        for (int rep = 0; rep < 3000; rep++)
            check_job(p, threads, 1 + rep % 9);
        detrun_pool_free(p);
    }
    detrun_pool_free(NULL);
    return test_report("test_pool");
}
