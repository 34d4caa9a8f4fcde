/*
 * fuzz_golden.c - fuzz target of the golden file reader (cli/golden.c) and
 * of the comparison of a golden file's options line (cli/golden_options.c).
 *
 * A golden file is checked against one fixed run (two folds, two epochs,
 * the fingerprints of the seed corpus's file): the check either completes
 * with a match or a mismatch, or fails with a message that names the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The run the golden files are checked against. */
static const char run[] =
    "local core = require 'detrun.core'\n"
    "local function fold(f, e0, e1)\n"
    "  return { fold = f, fingerprint = e1, epochs = { { epoch = 0, fingerprint = e0 },\n"
    "                                                  { epoch = 1, fingerprint = e1 } } }\n"
    "end\n"
    "return core._results { experiment = 'synthetic', modes = {\n"
    "  { mode = 'deterministic', repeats = { { ['repeat'] = 0,\n"
    "    fingerprint = '462c026075ef8f388fe64ca71b8df8c4', folds = {\n"
    "      fold(0, '04dc16ffa77f844f26cd2ebb4c2f1a45', '92ddc819f795fbdd1d53572825940416'),\n"
    "      fold(1, '21bdb589057c260c95b978a3a0e20406', '21c13941c679be6adfb5017cb2988eaf') } } } },\n"
    "  { mode = 'fast', repeats = { { ['repeat'] = 0, fingerprint = "
    "'00000000000000000000000000000000' } } } } }\n";

static const char options[] = "-q -t 1 -j 1 --repeats 1 --folds 2 --epochs 2 --limit 60 "
                              "-o run1 --check golden.txt";

static detrun_results *results(void)
{
    static detrun_results *res;
    if (res == NULL) {
        detrun_script *sc = NULL;
        if (detrun_script_open(&sc, fuzz_runtime()) != DETRUN_OK ||
            detrun_script_run_string(sc, "=fuzz_golden", run, &res) != DETRUN_OK || res == NULL)
            fuzz_fail("golden", "cannot make the run's results", detrun_script_errmsg(sc));
        detrun_script_close(sc);
    }
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (sink == NULL && (sink = fopen("/dev/null", "w")) == NULL)
        fuzz_fail("golden", "cannot open /dev/null", NULL);
    detrun_results *res = results();
    const char *path = fuzz_input_file(data, size);
    char err[DETRUN_GOLDEN_ERR_MAX] = "";
    int mismatch = -1;
    detrun_status st = detrun_golden_check(res, path, options, sink, sink, &mismatch, err);
    if (st == DETRUN_OK && mismatch != 0 && mismatch != 1)
        fuzz_fail("golden", "a check that neither matches nor mismatches", NULL);
    if (st != DETRUN_OK && st != DETRUN_ERR_MEMORY && strstr(err, path) == NULL)
        fuzz_fail("golden", "an error that does not name the file", err);
    return 0;
}
