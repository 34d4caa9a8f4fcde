/*
 * machine.c - a one-line description of where a run gives its bits, for the
 * headers of golden files and traces. Deterministic mode promises the same
 * bits everywhere; when that promise is broken, this line says where.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (v == NULL)
            break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(buf, len, "%s", v);
        buf[strcspn(buf, "\r\n")] = '\0';
        break;
    }
    fclose(f);
}

void detrun_machine(detrun_runtime *rt, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    char model[160];
    cpu_model(model, sizeof model);
    char isa[32] = "-";
    if (rt != NULL && rt->backend != NULL)
        rt->backend->ops->describe(rt->backend, DETRUN_INFO_ISA, isa, sizeof isa);
    snprintf(buf, len, "cpu \"%s\"; isa %s; threads %d; device %s", model, isa,
             rt != NULL ? rt->threads : 0, rt != NULL ? rt->device_name : "-");
}
