/*
 * runtime.c - the runtime handle: open/close, settings, errors, allocation.
 *
 * Everything hangs off the handle (no process globals), like a lua_State: the
 * allocator hook, the backend, and the message of the last error.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* What errmsg reports for a handle that could not even be allocated. */
static const char no_handle_msg[] = "no runtime (detrun_open failed to allocate the handle)";

const char *detrun_version(void)
{
    return DETRUN_VERSION;
}

const char *detrun_status_string(detrun_status s)
{
    switch (s) {
    case DETRUN_OK: return "ok";
    case DETRUN_ERR_MEMORY: return "out of memory";
    case DETRUN_ERR_ARG: return "bad argument";
    case DETRUN_ERR_SHAPE: return "shape mismatch";
    case DETRUN_ERR_IO: return "input/output error";
    case DETRUN_ERR_FORMAT: return "bad file format";
    case DETRUN_ERR_NUMERIC: return "numeric error (NaN or infinity)";
    case DETRUN_ERR_SCRIPT: return "script error";
    case DETRUN_ERR_DEVICE: return "device error";
    case DETRUN_ERR_UNSUPPORTED: return "unsupported";
    case DETRUN_ERR_CANCELLED: return "cancelled";
    case DETRUN_ERR_BUSY: return "in use";
    }
    return "unknown status";
}

/* ---- errors ------------------------------------------------------------ */

detrun_status detrun_seterr(detrun_runtime *rt, detrun_status status, const char *fmt, ...)
{
    if (rt == NULL)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->errmsg, sizeof rt->errmsg, fmt, ap);
    va_end(ap);
    rt->err_layer = -1;
    rt->err_layer_name[0] = '\0';
    return status;
}

const char *detrun_errmsg(const detrun_runtime *rt)
{
    return rt != NULL ? rt->errmsg : no_handle_msg;
}

int detrun_error_layer(const detrun_runtime *rt, const char **name)
{
    int layer = rt != NULL ? rt->err_layer : -1;
    if (name != NULL)
        *name = layer >= 0 ? rt->err_layer_name : NULL;
    return layer;
}

detrun_alloc_fn detrun_get_allocator(const detrun_runtime *rt, void **ud)
{
    if (ud != NULL)
        *ud = rt != NULL ? rt->alloc_ud : NULL;
    return rt != NULL ? rt->alloc : NULL;
}

/* ---- allocation -------------------------------------------------------- */

void *detrun_default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

void *detrun_malloc(detrun_runtime *rt, size_t bytes)
{
    if (bytes == 0)
        bytes = 1;   /* a zero-size request must still give a block, not a free */
    return rt->alloc(rt->alloc_ud, NULL, 0, bytes);
}

void *detrun_calloc(detrun_runtime *rt, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    size_t bytes = count * size;
    void *p = detrun_malloc(rt, bytes);
    if (p != NULL)
        memset(p, 0, bytes == 0 ? 1 : bytes);
    return p;
}

void *detrun_realloc(detrun_runtime *rt, void *p, size_t osize, size_t nsize)
{
    if (nsize == 0)
        nsize = 1;
    return rt->alloc(rt->alloc_ud, p, p != NULL ? osize : 0, nsize);
}

void detrun_free(detrun_runtime *rt, void *p, size_t size)
{
    if (p != NULL)
        rt->alloc(rt->alloc_ud, p, size == 0 ? 1 : size, 0);
}

int detrun_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- open / close ------------------------------------------------------ */

/* Through the registry: the runtime knows the device only by its name. */
static detrun_status open_backend(detrun_runtime *rt, const char *options)
{
    char err[512] = "";
    detrun_backend_params p = { 0, options, rt->mode, rt->threads, rt->alloc, rt->alloc_ud };
    detrun_status st = detrun_backend_open(rt->device, &p, &rt->backend, err, sizeof err);
    if (st != DETRUN_OK)
        return detrun_seterr(rt, st, "device %s: %s", rt->device,
                             err[0] ? err : detrun_status_string(st));
    rt->backend->ops->describe(rt->backend, DETRUN_INFO_DEVICE, rt->device_name,
                               sizeof rt->device_name);
    return DETRUN_OK;
}

detrun_status detrun_open(detrun_runtime **out, const detrun_options *opt)
{
    if (out == NULL)
        return DETRUN_ERR_ARG;
    *out = NULL;
    detrun_options defaults = DETRUN_OPTIONS_INIT;
    if (opt == NULL)
        opt = &defaults;

    detrun_alloc_fn alloc = opt->alloc != NULL ? opt->alloc : detrun_default_alloc;
    void *ud = opt->alloc != NULL ? opt->alloc_ud : NULL;
    detrun_runtime *rt = alloc(ud, NULL, 0, sizeof *rt);
    if (rt == NULL)
        return DETRUN_ERR_MEMORY;
    memset(rt, 0, sizeof *rt);
    rt->err_layer = -1;
    rt->alloc = alloc;
    rt->alloc_ud = ud;
    rt->mode = opt->mode;
    rt->seed = opt->seed;
    *out = rt;

    if (opt->mode != DETRUN_DETERMINISTIC && opt->mode != DETRUN_FAST)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "options.mode: unknown mode %d", (int)opt->mode);
    if (opt->threads < 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "options.threads: %d is negative (0 means all cores)", opt->threads);
    rt->threads = opt->threads == 0 ? detrun_cpu_count() : opt->threads;

    const char *dev = opt->device != NULL ? opt->device : "cpu";
    if (strlen(dev) >= sizeof rt->device)
        return detrun_seterr(rt, DETRUN_ERR_DEVICE, "options.device: name too long");
    strcpy(rt->device, dev);
    snprintf(rt->device_name, sizeof rt->device_name, "%s", rt->device);

    return open_backend(rt, opt->backend_options);
}

void detrun_close(detrun_runtime *rt)
{
    if (rt == NULL)
        return;
    detrun_trace_stop(rt);
    if (rt->backend != NULL)
        rt->backend->ops->destroy(rt->backend);
    rt->backend = NULL;
    detrun_alloc_fn alloc = rt->alloc;
    void *ud = rt->alloc_ud;
    alloc(ud, rt, sizeof *rt, 0);
}

/* ---- settings ---------------------------------------------------------- */

detrun_status detrun_set_mode(detrun_runtime *rt, detrun_mode mode)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (mode != DETRUN_DETERMINISTIC && mode != DETRUN_FAST)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "set_mode: unknown mode %d", (int)mode);
    if (rt->backend == NULL)
        return detrun_seterr(rt, DETRUN_ERR_DEVICE, "set_mode: the runtime has no backend");
    detrun_status st = rt->backend->ops->set_mode(rt->backend, mode);
    if (st != DETRUN_OK)
        return detrun_seterr(rt, st, "set_mode: the %s backend refused mode %s",
                             rt->backend->name, mode == DETRUN_FAST ? "fast" : "deterministic");
    rt->mode = mode;
    return DETRUN_OK;
}

detrun_mode detrun_get_mode(const detrun_runtime *rt)
{
    return rt != NULL ? rt->mode : DETRUN_DETERMINISTIC;
}

detrun_status detrun_set_threads(detrun_runtime *rt, int threads)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (threads < 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "set_threads: %d is negative (0 means all cores)", threads);
    if (threads == 0)
        threads = detrun_cpu_count();
    if (rt->backend == NULL)
        return detrun_seterr(rt, DETRUN_ERR_DEVICE, "set_threads: the runtime has no backend");
    detrun_status st = rt->backend->ops->set_threads(rt->backend, threads);
    if (st != DETRUN_OK)
        return detrun_seterr(rt, st, "set_threads: the %s backend could not use %d threads",
                             rt->backend->name, threads);
    rt->threads = threads;
    return DETRUN_OK;
}

int detrun_get_threads(const detrun_runtime *rt)
{
    return rt != NULL ? rt->threads : 0;
}

void detrun_set_seed(detrun_runtime *rt, uint64_t seed)
{
    if (rt != NULL)
        rt->seed = seed;
}

uint64_t detrun_get_seed(const detrun_runtime *rt)
{
    return rt != NULL ? rt->seed : 0;
}

const char *detrun_device_name(const detrun_runtime *rt)
{
    return rt != NULL ? rt->device_name : "none";
}
