/*
 * merge.c - `detrun merge [--partial] [-q] OUT`: the command's side of
 * lua/merge.lua, which does the work in a script state like any experiment.
 *
 * Exit status: 0 merged; 1 cells missing or failed, or an error; 2 a usage
 * error.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char merge_usage[] =
    "usage: detrun merge [--partial] [-q] OUT\n"
    "  combines the shards in OUT/shards into OUT/NAME.json, OUT/NAME.csv and the report\n"
    "      --partial   write the results even if cells are missing or failed\n"
    "  -q, --quiet     no report on stdout\n";

int detrun_merge_main(int argc, char **argv)
{
    int partial = 0, verbosity = 1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--partial") == 0)
            partial = 1;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            verbosity = 0;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(merge_usage, stdout);
            return 0;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "detrun merge: %s: unknown option\n%s", a, merge_usage);
            return 2;
        } else if (out != NULL) {
            fprintf(stderr, "detrun merge: one results folder, not '%s' and '%s'\n%s", out, a,
                    merge_usage);
            return 2;
        } else
            out = a;
    }
    if (out == NULL) {
        fprintf(stderr, "detrun merge: no results folder given\n%s", merge_usage);
        return 2;
    }

    detrun_options ro = DETRUN_OPTIONS_INIT;
    ro.threads = 1;   /* merging trains nothing */
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.out_dir = out;
    so.verbosity = verbosity;
    char *args[] = { "merge", partial ? "partial" : "complete" };
    so.argc = 2;
    so.argv = args;
    detrun_runtime *rt = NULL;
    detrun_script *sc = NULL;
    int status = 0;
    if (detrun_open(&rt, &ro) != DETRUN_OK) {
        fprintf(stderr, "detrun merge: %s\n", detrun_errmsg(rt));
        status = 1;
    } else if (detrun_script_open(&sc, rt) != DETRUN_OK) {
        fprintf(stderr, "detrun merge: %s\n", detrun_script_errmsg(sc));
        status = 1;
    } else if (detrun_script_set_options(sc, &so) != DETRUN_OK ||
               detrun_script_run_string(sc, "=merge", "return require('detrun.merge').main(...)",
                                        NULL) != DETRUN_OK) {
        fprintf(stderr, "detrun merge: %s\n", detrun_script_errmsg(sc));
        status = 1;
    }
    detrun_script_close(sc);
    detrun_close(rt);
    return status;
}
