/*
 * registry.c - the backends of this build, opened by device name.
 *
 * The build writes the list (backends.c, generated at configure time from
 * the backends it compiles): entry points, not constructors, because a static
 * archive drops an object that nothing references, constructor or not. The
 * core knows backends only as names in that list.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#define MAX_INDEX 1023

const detrun_backend_reg *detrun_backend_reg_get(size_t i)
{
    for (size_t k = 0; detrun_backends_built[k] != NULL; k++)
        if (k == i)
            return detrun_backends_built[k]();
    return NULL;
}

const detrun_backend_reg *detrun_backend_reg_find(const char *name)
{
    const detrun_backend_reg *r;
    for (size_t i = 0; name != NULL && (r = detrun_backend_reg_get(i)) != NULL; i++)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

const char *detrun_backend_absent(const char *name)
{
    for (size_t i = 0; name != NULL && detrun_backends_missing[i].name != NULL; i++)
        if (strcmp(detrun_backends_missing[i].name, name) == 0)
            return detrun_backends_missing[i].why;
    return NULL;
}

static detrun_status fail(detrun_status st, char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static detrun_status fail(detrun_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* "a, b, c": the names registered, for messages. */
static void built_names(char *buf, size_t len)
{
    const detrun_backend_reg *r;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; (r = detrun_backend_reg_get(i)) != NULL && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", r->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Splits "name" or "name:N" into name (NUL-terminated copy) and index. */
static detrun_status split_device(const char *device, char *name, size_t namelen, int *index,
                                  char *err, size_t errlen)
{
    size_t n = strcspn(device, ":");
    if (n == 0 || n >= namelen)
        return fail(DETRUN_ERR_DEVICE, err, errlen,
                    "not a device name (expected NAME or NAME:N, e.g. cpu or cuda:0)");
    memcpy(name, device, n);
    name[n] = '\0';
    *index = 0;
    if (device[n] == '\0')
        return DETRUN_OK;
    const char *digits = device + n + 1;
    char *end = NULL;
    errno = 0;
    long v = strtol(digits, &end, 10);
    if (*digits < '0' || *digits > '9' || errno != 0 || *end != '\0' || v > MAX_INDEX)
        return fail(DETRUN_ERR_DEVICE, err, errlen,
                    "'%s' is not a device index (expected %s or %s:N, N from 0 to %d)", digits,
                    name, name, MAX_INDEX);
    *index = (int)v;
    return DETRUN_OK;
}

detrun_status detrun_backend_open(const char *device, const detrun_backend_params *p,
                                  detrun_backend **out, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || p == NULL || device == NULL)
        return fail(DETRUN_ERR_ARG, err, errlen, "no device name, parameters or result pointer");
    *out = NULL;
    char name[32];
    int index = 0;
    detrun_status st = split_device(device, name, sizeof name, &index, err, errlen);
    if (st != DETRUN_OK)
        return st;
    if (detrun_backend_option(p->options, NULL, NULL, 0, err, errlen) < 0)
        return DETRUN_ERR_ARG;
    const detrun_backend_reg *reg = detrun_backend_reg_find(name);
    if (reg == NULL) {
        const char *why = detrun_backend_absent(name);
        if (why != NULL)
            return fail(DETRUN_ERR_UNSUPPORTED, err, errlen, "no backend '%s' in this build (%s)",
                        name, why);
        char names[256];
        built_names(names, sizeof names);
        return fail(DETRUN_ERR_DEVICE, err, errlen, "no backend '%s' (this build has: %s)", name,
                    names);
    }
    detrun_backend_params q = *p;
    q.device = index;
    return reg->open(out, &q, err, errlen);
}

/* One item of an options string: [s, comma) split at '='. */
static int option_item(const char *s, size_t n, const char *key, char *val, size_t vallen,
                       char *err, size_t errlen)
{
    const char *eq = memchr(s, '=', n);
    if (eq == NULL || eq == s) {
        fail(DETRUN_ERR_ARG, err, errlen,
             "backend options: '%.*s' is not key=value (items are separated by commas)",
             (int)(n > 64 ? 64 : n), s);
        return -1;
    }
    size_t klen = (size_t)(eq - s);
    if (key == NULL || strlen(key) != klen || strncmp(s, key, klen) != 0)
        return 0;
    if (val != NULL && vallen > 0)
        snprintf(val, vallen, "%.*s", (int)(n - klen - 1), eq + 1);
    return 1;
}

int detrun_backend_option(const char *options, const char *key, char *val, size_t vallen,
                          char *err, size_t errlen)
{
    int found = 0;
    for (const char *s = options; s != NULL && *s != '\0';) {
        size_t n = strcspn(s, ",");
        int r = option_item(s, n, key, val, vallen, err, errlen);
        if (r < 0)
            return -1;
        found |= r;   /* the last one given wins */
        s += n;
        if (*s == ',')
            s++;
    }
    return found;
}

detrun_status detrun_list_devices(char *buf, size_t len, int *ndevices)
{
    if (ndevices != NULL)
        *ndevices = 0;
    if (buf == NULL || len == 0)
        return DETRUN_ERR_ARG;
    buf[0] = '\0';
    int count = 0;
    size_t used = 0;
    const detrun_backend_reg *r;
    for (size_t i = 0; (r = detrun_backend_reg_get(i)) != NULL; i++)
        if (r->list_devices != NULL && used + 1 < len) {
            count += r->list_devices(buf + used, len - used);
            used += strlen(buf + used);
        }
    for (size_t i = 0; detrun_backends_missing[i].name != NULL && used + 1 < len; i++) {
        snprintf(buf + used, len - used, "no %s device: %s\n", detrun_backends_missing[i].name,
                 detrun_backends_missing[i].why);
        used += strlen(buf + used);
    }
    if (ndevices != NULL)
        *ndevices = count;
    return DETRUN_OK;
}
