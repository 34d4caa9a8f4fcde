/*
 * cancel.c - a request to stop, from another thread or a signal handler.
 *
 * The flag is a lock-free atomic int: a store to it is async-signal-safe,
 * so the command's SIGINT handler can call detrun_cancel directly. Training
 * reads it once per optimiser step, at the step boundary, so a cancelled fit
 * never leaves a half-applied update.
 */
#include <stdatomic.h>

#include "internal.h"

#if ATOMIC_INT_LOCK_FREE != 2
#error "detrun_cancel needs a lock-free atomic int to be callable from a signal handler"
#endif

void detrun_cancel(detrun_runtime *rt)
{
    if (rt != NULL)
        atomic_store(&rt->cancel, 1);
}

int detrun_cancel_requested(const detrun_runtime *rt)
{
    return rt != NULL && atomic_load(&((detrun_runtime *)rt)->cancel) != 0;
}

void detrun_cancel_reset(detrun_runtime *rt)
{
    if (rt != NULL)
        atomic_store(&rt->cancel, 0);
}

detrun_status detrun_check_cancel(detrun_runtime *rt, const char *what, uint64_t step)
{
    if (atomic_load(&rt->cancel) == 0)
        return DETRUN_OK;
    return detrun_seterr(rt, DETRUN_ERR_CANCELLED, "%s: cancelled before step %llu", what,
                         (unsigned long long)step);
}
