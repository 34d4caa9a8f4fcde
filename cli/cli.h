/*
 * cli.h - the `detrun` command's own parts (docs/regression.md,
 * docs/cluster.md): golden fingerprint files and the subcommands.
 */
#ifndef DETRUN_CLI_H
#define DETRUN_CLI_H

#include <stdio.h>

#include "detrun_script.h"

/* Exit status of `--check` and `diff` when the bits differ. */
#define DETRUN_EXIT_MISMATCH 3

/* Size of the err buffers below, which get the message of a failure. */
#define DETRUN_GOLDEN_ERR_MAX 2048

/* Writes the deterministic-mode fingerprints of res (per mode, repeat, fold
 * and epoch, and the final ones) to path, atomically, under a header naming
 * the detrun version, the script, the options and the machine. */
detrun_status detrun_golden_write(detrun_runtime *rt, const detrun_results *res,
                                  const char *path, const char *script, const char *options,
                                  char *err);
/* Compares res with the golden file at path. *mismatch is set to 1 when a
 * fingerprint differs, is missing or is new. A match is said on report; a
 * mismatch on mismatch_report: which (mode, repeat, fold, epoch) differs
 * first, expected and got, and which of options (this run's, as the golden
 * header spells them) differ from the golden's. */
detrun_status detrun_golden_check(const detrun_results *res, const char *path,
                                  const char *options, FILE *report, FILE *mismatch_report,
                                  int *mismatch, char *err);

/* Says on out which options that decide the bits differ between a golden
 * file's recorded options line (NULL: none recorded) and this run's
 * (golden_options.c); for a failed check. */
void detrun_golden_compare_options(const char *golden, const char *options, FILE *out);

/* `detrun diff [--dump PREFIX] A B`: argv[0] is "diff". Returns the exit
 * status: 0 the traces agree, 3 they differ, 1 an error, 2 a usage error. */
int detrun_diff_main(int argc, char **argv);
/* `detrun merge [--partial] [-q] OUT` (merge.c); argv[0] is "merge". */
int detrun_merge_main(int argc, char **argv);
/* The options of `detrun slurm` itself (docs/cluster.md). */
typedef struct detrun_slurm_opts {
    int shards;                   /* 0: one per cell */
    int wait, dry_run;
    const char *partition, *time, *gres;   /* NULL: not given; else #SBATCH lines */
    int cpus_per_task;            /* 0: not given */
} detrun_slurm_opts;

/* `detrun slurm --help`. */
extern const char detrun_slurm_usage[];

/* `detrun report RESULTS.json [-o FILE.html]` (report.c); argv[0] is "report". */
int detrun_report_main(int argc, char **argv);
/* `detrun slurm ...` (slurm.c): argv[0] is "slurm", argv[end] the first word
 * after detrun's options; ro and so are those options, parsed by main. */
int detrun_slurm_main(int argc, char **argv, int end, const detrun_options *ro,
                      const detrun_script_options *so, const detrun_slurm_opts *sopt);

#endif
