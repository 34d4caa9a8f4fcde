/*
 * golden.h - golden fingerprint files and trace comparison for the `detrun`
 * command (docs/regression.md).
 */
#ifndef DETRUN_GOLDEN_H
#define DETRUN_GOLDEN_H

#include <stdio.h>

#include "detrun.h"

/* Exit status of `--check` and `diff` when the bits differ. */
#define DETRUN_EXIT_MISMATCH 3

/* Writes the deterministic-mode fingerprints of res (per mode, repeat, fold
 * and epoch, and the final ones) to path, atomically, under a header naming
 * the detrun version, the script, the options and the machine. */
detrun_status detrun_golden_write(detrun_runtime *rt, const detrun_results *res,
                                  const char *path, const char *script, const char *options);
/* Compares res with the golden file at path. *mismatch is set to 1 when a
 * fingerprint differs, is missing or is new; report gets which (mode,
 * repeat, fold, epoch) differs first, expected and got. */
detrun_status detrun_golden_check(detrun_runtime *rt, const detrun_results *res,
                                  const char *path, FILE *report, int *mismatch);

/* `detrun diff [--dump PREFIX] A B`: argv[0] is "diff". Returns the exit
 * status: 0 the traces agree, 3 they differ, 1 an error, 2 a usage error. */
int detrun_diff_main(int argc, char **argv);

#endif
