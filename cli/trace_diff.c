/*
 * trace_diff.c - `detrun diff [--dump PREFIX] A B`: the first step, layer
 * and tensor where two traces differ (docs/regression.md, "Traces").
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: detrun diff [--dump PREFIX] A.trace B.trace\n"
    "  names the first fit, step, layer and tensor where the traces differ;\n"
    "  --dump PREFIX also writes the two tensors there to PREFIX.a.f32 and PREFIX.b.f32\n"
    "  (traces recorded with --trace-values) and prints their largest differences.\n"
    "Exit status: 0 the traces agree, 3 they differ, 1 an error, 2 a usage error.\n";

int detrun_diff_main(int argc, char **argv)
{
    const char *dump = NULL, *files[2] = { NULL, NULL };
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dump") == 0) {
            if (++i == argc) {
                fprintf(stderr, "detrun diff: --dump needs a PREFIX\n%s", usage);
                return 2;
            }
            dump = argv[i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "detrun diff: unknown option %s\n%s", argv[i], usage);
            return 2;
        } else if (nfiles < 2) {
            files[nfiles++] = argv[i];
        } else {
            fprintf(stderr, "detrun diff: more than two traces\n%s", usage);
            return 2;
        }
    }
    if (nfiles != 2) {
        fprintf(stderr, "detrun diff: two traces needed\n%s", usage);
        return 2;
    }
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 1;
    }
    int differ = 0;
    int status = 0;
    if (detrun_trace_compare(rt, files[0], files[1], dump, stdout, &differ) != DETRUN_OK) {
        fprintf(stderr, "detrun diff: %s\n", detrun_errmsg(rt));
        status = 1;
    } else if (differ) {
        status = DETRUN_EXIT_MISMATCH;
    }
    detrun_close(rt);
    return status;
}
