/*
 * test_script_jobs.c - the jobs option of the C API's script options: a host
 * that asks for 3 jobs gets every cell's fingerprint, loss and accuracy of a
 * host that runs one cell at a time, and bad values are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detrun_script.h"
#include "../common.h"

typedef struct cell {
    double loss, accuracy;
    char fingerprint[33];
} cell;

enum { REPEATS = 3, FOLDS = 3 };

/* Runs grid.lua with the given jobs and threads; 0 on success. */
static int run(const char *script, int jobs, int threads, cell out[REPEATS][FOLDS])
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = threads;
    detrun_runtime *rt = NULL;
    detrun_script *sc = NULL;
    detrun_results *res = NULL;
    int bad = 0;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.data_dir = getenv("DETRUN_TEST_DATA");
    so.jobs = jobs;
    if (detrun_script_open(&sc, rt) != DETRUN_OK ||
        detrun_script_set_options(sc, &so) != DETRUN_OK ||
        detrun_script_run_file(sc, script, &res) != DETRUN_OK) {
        fprintf(stderr, "jobs %d: %s\n", jobs, detrun_script_errmsg(sc));
        bad = 1;
    }
    for (int r = 0; !bad && r < REPEATS; r++)
        for (int f = 0; !bad && f < FOLDS; f++) {
            const char *fp = NULL;
            cell *c = &out[r][f];
            if (detrun_results_fold(res, "deterministic", r, f, &c->loss, &c->accuracy, &fp) !=
                    DETRUN_OK || fp == NULL) {
                fprintf(stderr, "jobs %d: no cell repeat %d fold %d\n", jobs, r, f);
                bad = 1;
            } else {
                snprintf(c->fingerprint, sizeof c->fingerprint, "%s", fp);
            }
        }
    detrun_results_free(res);
    detrun_script_close(sc);
    detrun_close(rt);
    return bad;
}

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: test_script_jobs GRID.lua");
    static cell one[REPEATS][FOLDS], three[REPEATS][FOLDS];
    CHECK(run(argv[1], 0, 2, one) == 0, "one cell at a time (jobs 0)");
    CHECK(run(argv[1], 3, 1, three) == 0, "three jobs");
    for (int r = 0; r < REPEATS; r++)
        for (int f = 0; f < FOLDS; f++) {
            const cell *a = &one[r][f], *b = &three[r][f];
            CHECK(strlen(a->fingerprint) == 32, "repeat %d fold %d: no fingerprint", r, f);
            CHECK(strcmp(a->fingerprint, b->fingerprint) == 0 && a->loss == b->loss &&
                      a->accuracy == b->accuracy,
                  "repeat %d fold %d: %s %.17g %.17g with 1 job, %s %.17g %.17g with 3", r, f,
                  a->fingerprint, a->loss, a->accuracy, b->fingerprint, b->loss, b->accuracy);
        }
    /* Another fold's cell differs: the comparison above can fail. */
    CHECK(strcmp(one[0][0].fingerprint, one[0][1].fingerprint) != 0, "folds 0 and 1 agree");

    detrun_options opt = DETRUN_OPTIONS_INIT;
    detrun_runtime *rt = NULL;
    detrun_script *sc = NULL;
    CHECK(detrun_open(&rt, &opt) == DETRUN_OK && detrun_script_open(&sc, rt) == DETRUN_OK, "open");
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.jobs = -2;
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_ERR_ARG, "jobs -2 was accepted");
    so.jobs = DETRUN_SCRIPT_JOBS_AUTO;
    CHECK(detrun_script_set_options(sc, &so) == DETRUN_OK, "jobs auto: %s",
          detrun_script_errmsg(sc));
    detrun_script_close(sc);
    detrun_close(rt);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("ok: 3 jobs give the cells of 1\n");
    return 0;
}
