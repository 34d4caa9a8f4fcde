/*
 * write_atomic.c - detrun_write_atomic: the core's whole-or-nothing file
 * writer (the one checkpoints use), offered to hosts and the front end.
 */
#include "checkpoint.h"
#include "internal.h"

detrun_status detrun_write_atomic(detrun_runtime *rt, const char *path, const void *const *parts,
                                  const size_t *lens, int nparts)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (path == NULL || nparts < 0 || (nparts > 0 && (parts == NULL || lens == NULL)))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "detrun_write_atomic: NULL argument");
    return detrun_write_file_atomic(rt, path, parts, lens, nparts);
}
