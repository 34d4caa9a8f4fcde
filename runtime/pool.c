/*
 * pool.c - a persistent pool of POSIX threads (runtime/pool.h).
 *
 * A training step runs 10-20 short jobs, so starting threads per job or
 * always sleeping between jobs would cost more than the work. Workers spin
 * briefly after each job, then block on a condition variable.
 *
 * Claiming: one 64-bit atomic holds (generation << 32 | next task). A worker
 * claims task i of generation g with a compare-and-swap from (g, i) to
 * (g, i + 1), so a worker that wakes late from an earlier job can never take a
 * task of the current one with the old job's function. The caller counts
 * finished tasks and returns when all have finished.
 *
 * Publishing a job first closes the counter, (g, CLOSED), then writes the
 * job, then opens it at (g, 0). Without the closed step a worker could read
 * the counter of the finished job (g - 1, n), then the new job's function and
 * larger task count, and still win its compare-and-swap on the old counter:
 * it would run a task of the new job that counts as finished twice.
 */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SPIN_CHECKS 4000     /* ~tens of microseconds before blocking */
#define CLOSED 0xffffffffu   /* task field while a job is being written */

typedef struct worker_arg {
    detrun_pool *p;
    int thread;
} worker_arg;

struct detrun_pool {
    int threads;
    pthread_t *workers;
    worker_arg *args;              /* each worker's (pool, thread) */
    int nworkers;
    detrun_alloc_fn alloc;         /* the runtime's allocator */
    void *alloc_ud;

    /* The current job. fn/arg/ntasks are atomics because a late worker may
     * read them while the caller writes the next job; the CAS on ctr then
     * rejects whatever it read. */
    _Atomic(detrun_task_fn) fn;
    _Atomic(void *) arg;
    atomic_int ntasks;
    _Atomic uint64_t ctr;          /* generation << 32 | next task */
    atomic_int done;               /* tasks finished in this generation */
    atomic_int stop;
    atomic_int sleepers;           /* workers blocked on work_cv */
    atomic_int caller_sleeps;      /* the caller is (about to be) blocked on done_cv */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;        /* a new job or stop */
    pthread_cond_t done_cv;        /* the last task of a job finished */
};

/* One spin-wait step. Every 64th step gives the core away (sched_yield):
 * when more threads want the cores than there are (cells in parallel
 * processes, each with its own pool), the thread being waited for may be
 * queued behind the spinner; alone on its core, the call returns at once. */
static void spin_step(int i)
{
    if ((i & 63) == 63) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");   /* the spin-wait hint of Arm */
#endif
}

/* Claims and runs tasks of generation gen until none is left. */
static void run_tasks(detrun_pool *p, uint32_t gen, int thread)
{
    for (;;) {
        uint64_t c = atomic_load(&p->ctr);
        if ((uint32_t)(c >> 32) != gen)
            return;
        if ((uint32_t)c == CLOSED) {
            spin_step(0);
            continue;
        }
        detrun_task_fn fn = atomic_load(&p->fn);
        void *arg = atomic_load(&p->arg);
        int ntasks = atomic_load(&p->ntasks);
        uint32_t task = (uint32_t)c;
        if (task >= (uint32_t)ntasks)
            return;
        /* A few tasks per claim when there are many: fewer trips of the
         * counter's cache line between cores. */
        uint32_t step = (uint32_t)ntasks / (uint32_t)(8 * p->threads);
        if (step < 1)
            step = 1;
        uint32_t end = task + step < (uint32_t)ntasks ? task + step : (uint32_t)ntasks;
        if (!atomic_compare_exchange_weak(&p->ctr, &c, c + (end - task)))
            continue;
        for (uint32_t t = task; t < end; t++)
            fn(arg, (int)t, thread);
        int count = (int)(end - task);
        /* The caller usually spins for the last task: only a sleeping one
         * needs the mutex and the signal. */
        if (atomic_fetch_add(&p->done, count) + count == ntasks &&
            atomic_load(&p->caller_sleeps)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *worker_main(void *va)
{
    worker_arg *wa = va;
    detrun_pool *p = wa->p;
    int thread = wa->thread;
    uint32_t seen = (uint32_t)(atomic_load(&p->ctr) >> 32);
    for (;;) {
        uint32_t gen = seen;
        for (int i = 0; i < SPIN_CHECKS && gen == seen && !atomic_load(&p->stop); i++) {
            spin_step(i);
            gen = (uint32_t)(atomic_load(&p->ctr) >> 32);
        }
        if (gen == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((uint32_t)(atomic_load(&p->ctr) >> 32) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->work_cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            break;
        seen = (uint32_t)(atomic_load(&p->ctr) >> 32);
        run_tasks(p, seen, thread);
    }
    return NULL;
}

detrun_pool *detrun_pool_new(int threads, detrun_alloc_fn alloc, void *ud)
{
    if (threads < 1 || alloc == NULL)
        return NULL;
    detrun_pool *p = alloc(ud, NULL, 0, sizeof *p);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->alloc = alloc;
    p->alloc_ud = ud;
    p->threads = threads;
    atomic_init(&p->fn, NULL);
    atomic_init(&p->arg, NULL);
    atomic_init(&p->ntasks, 0);
    atomic_init(&p->ctr, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeps, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        alloc(ud, p, sizeof *p, 0);
        return NULL;
    }
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (threads > 1) {
        size_t n = (size_t)threads - 1;
        p->workers = alloc(ud, NULL, 0, n * sizeof *p->workers);
        p->args = alloc(ud, NULL, 0, n * sizeof *p->args);
        if (!p->workers || !p->args) {
            detrun_pool_free(p);
            return NULL;
        }
        for (int t = 1; t < threads; t++) {
            worker_arg *wa = &p->args[t - 1];
            wa->p = p;
            wa->thread = t;
            if (pthread_create(&p->workers[p->nworkers], NULL, worker_main, wa) != 0) {
                detrun_pool_free(p);
                return NULL;
            }
            p->nworkers++;
        }
    }
    return p;
}

void detrun_pool_free(detrun_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);
    size_t n = p->threads > 1 ? (size_t)p->threads - 1 : 0;
    if (p->workers)
        p->alloc(p->alloc_ud, p->workers, n * sizeof *p->workers, 0);
    if (p->args)
        p->alloc(p->alloc_ud, p->args, n * sizeof *p->args, 0);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    p->alloc(p->alloc_ud, p, sizeof *p, 0);
}

int detrun_pool_threads(const detrun_pool *p)
{
    return p ? p->threads : 1;
}

void detrun_pool_run(detrun_pool *p, int ntasks, detrun_task_fn fn, void *arg)
{
    if (ntasks <= 0)
        return;
    if (p->nworkers == 0 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    uint32_t gen = (uint32_t)(atomic_load(&p->ctr) >> 32) + 1;
    atomic_store(&p->ctr, (uint64_t)gen << 32 | CLOSED);
    atomic_store(&p->fn, fn);
    atomic_store(&p->arg, arg);
    atomic_store(&p->ntasks, ntasks);
    atomic_store(&p->done, 0);
    atomic_store(&p->ctr, (uint64_t)gen << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, gen, 0);
    for (int i = 0; i < SPIN_CHECKS && atomic_load(&p->done) < ntasks; i++)
        spin_step(i);
    if (atomic_load(&p->done) < ntasks) {
        /* caller_sleeps is set before done is read again (both sequentially
         * consistent), so the last finisher either sees it and signals under
         * the mutex, or finished before the read below. */
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeps, 1);
        while (atomic_load(&p->done) < ntasks)
            pthread_cond_wait(&p->done_cv, &p->mu);
        atomic_store(&p->caller_sleeps, 0);
        pthread_mutex_unlock(&p->mu);
    }
}
