/*
 * internal.h - what the runtime's own files share; never installed.
 */
#ifndef DETRUN_INTERNAL_H
#define DETRUN_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "detrun.h"

#define DETRUN_ERRMSG_MAX 2048

struct detrun_runtime {
    detrun_alloc_fn alloc;
    void *alloc_ud;
    detrun_mode mode;
    int threads;              /* resolved: >= 1 */
    uint64_t seed;
    char device[64];          /* as given: "cpu", "cuda", "cuda:1" */
    char device_name[96];     /* for reports: "cpu", "cuda:0 (portable)" */
    detrun_backend *backend;
    char errmsg[DETRUN_ERRMSG_MAX];
    int err_layer;            /* the layer a numeric error names, -1 when none */
    char err_layer_name[32];

    /* The per-step trace every fit writes into (trace.c); NULL when off. */
    struct detrun_trace *trace;

    /* Set by detrun_cancel from any thread or a signal handler (cancel.c). */
    _Atomic int cancel;
};

/* DETRUN_ERR_CANCELLED with a message naming what stopped (what, step),
 * when a cancel was requested; DETRUN_OK otherwise. */
detrun_status detrun_check_cancel(detrun_runtime *rt, const char *what, uint64_t step);

/* The positive integer in the environment variable name, else dflt: the
 * caps on declared sizes that a user can raise (limit.c). */
long long detrun_limit(const char *name, long long dflt);

/* Sets the error message (printf-style) and returns status. */
detrun_status detrun_seterr(detrun_runtime *rt, detrun_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* malloc/realloc/free behind the Lua-style allocator signature. */
void *detrun_default_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Allocation through the runtime's allocator. */
void *detrun_malloc(detrun_runtime *rt, size_t bytes);
void *detrun_calloc(detrun_runtime *rt, size_t count, size_t size);   /* overflow-checked */
void *detrun_realloc(detrun_runtime *rt, void *p, size_t osize, size_t nsize);
void detrun_free(detrun_runtime *rt, void *p, size_t size);

/* Number of online CPUs (>= 1). */
int detrun_cpu_count(void);

#endif
