/*
 * limit.c - the caps on declared sizes (data rows, model size, losses) that
 * a user raises through the environment, read once per check.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

long long detrun_limit(const char *name, long long dflt)
{
    const char *env = getenv(name);
    if (env == NULL)
        return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(env, &end, 10);
    return errno == 0 && end != env && *end == '\0' && v > 0 ? v : dflt;
}
