/*
 * golden_options.c - what differs between the options a golden file was
 * recorded with (its "# options" header line) and this run's, said when a
 * check fails: a changed --epochs explains a mismatch that is no regression.
 *
 * Options that cannot change the deterministic bits are left out: where the
 * results go, the golden and trace files, verbosity and the thread count
 * (docs/determinism.md: the bits do not depend on it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define OPTS_MAX 64

typedef struct opt {
    char name[32];
    const char *value;   /* "" for a flag */
} opt;

/* The long name of an option word, and whether it takes a value. */
static const char *long_name(const char *w, int *takes)
{
    static const char *const with_value[] = { "threads", "mode", "seed", "repeats", "folds",
        "epochs", "limit", "data", "out", "device", "gpu-kernels", "record", "check", "trace",
        "trace-every", "shard", NULL };
    static const char shorts[] = "tmso";
    static const char *const short_long[] = { "threads", "mode", "seed", "out" };
    *takes = 0;
    if (w[0] == '-' && w[1] != '-' && w[1] != '\0' && w[2] == '\0') {
        const char *p = strchr(shorts, w[1]);
        if (p != NULL) {
            *takes = 1;
            return short_long[p - shorts];
        }
        return w[1] == 'q' ? "quiet" : w + 1;
    }
    if (strncmp(w, "--", 2) != 0)
        return NULL;
    for (int i = 0; with_value[i] != NULL; i++)
        if (strcmp(w + 2, with_value[i]) == 0)
            *takes = 1;
    return w + 2;
}

static int ignored(const char *name)
{
    static const char *const names[] = { "out", "record", "check", "trace", "trace-every",
        "trace-values", "quiet", "threads", "traceback", NULL };
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* Splits text (words joined by single spaces; text is modified) into options. */
static int parse(char *text, opt *v)
{
    int n = 0;
    char *save = NULL;
    for (char *w = strtok_r(text, " ", &save); w != NULL && n < OPTS_MAX;
         w = strtok_r(NULL, " ", &save)) {
        int takes;
        char *eq = strncmp(w, "--", 2) == 0 ? strchr(w, '=') : NULL;
        if (eq != NULL)
            *eq = '\0';
        const char *name = long_name(w, &takes);
        if (name == NULL)
            continue;
        snprintf(v[n].name, sizeof v[n].name, "%s", name);
        v[n].value = eq != NULL ? eq + 1 : "";
        if (eq == NULL && takes) {
            char *val = strtok_r(NULL, " ", &save);
            v[n].value = val != NULL ? val : "";
        }
        if (!ignored(v[n].name))
            n++;
    }
    return n;
}

static const char *find(const opt *v, int n, const char *name)
{
    const char *found = NULL;
    for (int i = 0; i < n; i++)   /* the last one wins, as on the command line */
        if (strcmp(v[i].name, name) == 0)
            found = v[i].value;
    return found;
}

/* One option's two values, when they differ; returns 1 if it said so. */
static int say(FILE *out, const char *name, const char *was, const char *now, int said)
{
    if (was != NULL && now != NULL && strcmp(was, now) == 0)
        return 0;
    fprintf(out, "%s--%s %s in the golden, %s here",
            said ? "; " : "  options that differ from the golden's: ", name,
            was == NULL ? "absent" : was[0] ? was : "given", now == NULL ? "absent" : now[0] ? now : "given");
    return 1;
}

void detrun_golden_compare_options(const char *golden, const char *options, FILE *out)
{
    if (golden == NULL) {
        fprintf(out, "  the golden file records no options to compare with\n");
        return;
    }
    char *a = strdup(golden), *b = strdup(options != NULL ? options : "");
    opt *va = malloc(2 * OPTS_MAX * sizeof *va);
    if (a == NULL || b == NULL || va == NULL) {
        free(a), free(b), free(va);
        return;
    }
    opt *vb = va + OPTS_MAX;
    int na = parse(a, va), nb = parse(b, vb), said = 0;
    for (int i = 0; i < na; i++)
        if (find(va, i, va[i].name) == NULL)   /* each name once, in the golden's order */
            said += say(out, va[i].name, find(va, na, va[i].name), find(vb, nb, va[i].name),
                        said);
    for (int i = 0; i < nb; i++)
        if (find(vb, i, vb[i].name) == NULL && find(va, na, vb[i].name) == NULL)
            said += say(out, vb[i].name, NULL, find(vb, nb, vb[i].name), said);
    fputs(said ? "\n" : "", out);
    if (!said)
        fprintf(out, "  the options that decide the bits are the golden's (recorded: %s)\n", golden);
    free(a), free(b), free(va);
}
