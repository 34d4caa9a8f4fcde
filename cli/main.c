/*
 * main.c - the `detrun` command: runs an experiment script.
 *
 * Exit status: 0 success; 1 an error in the script or the data; 2 a usage
 * error. Only this file exits; the library reports through statuses.
 */
#define _GNU_SOURCE   /* sched_getaffinity */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>

#include "cli.h"

static const char usage_text[] =
    "usage: detrun [options] SCRIPT [script args...]\n"
    "Options go before SCRIPT: what follows SCRIPT is the script's (its arg table).\n"
    "  -t, --threads N      worker threads (default: all cores)\n"
    "  -j, --jobs N|auto    grid cells run at once, each in its own process with\n"
    "                       threads / N threads (default auto: one per core;\n"
    "                       -j 1: one cell at a time on all threads)\n"
    "  -m, --mode MODE      deterministic | fast: run only this mode\n"
    "  -s, --seed N         override the experiment's seed\n"
    "      --repeats N      override the experiment's repeats\n"
    "      --folds N        override the experiment's folds\n"
    "      --epochs N       override the experiment's epochs\n"
    "      --limit N        use only the first N training rows\n"
    "      --data DIR       folder with the four MNIST-format files\n"
    "                       (default: $DETRUN_DATA, else %s)\n"
    "  -o, --out DIR        results folder (default ./results)\n"
    "  -q, --quiet          no progress output\n"
    "      --device DEV     cpu | cuda | cuda:N (default cpu)\n"
    "      --gpu-kernels K  cudnn | portable (default cudnn)\n"
    "      --devices        list the CUDA devices and exit\n"
    "      --record FILE    write the run's deterministic fingerprints to a golden FILE\n"
    "      --check FILE     compare them with a golden FILE; exit 3 when they differ\n"
    "      --trace FILE     record per-step fingerprints of every tensor to FILE\n"
    "      --trace-every K  trace every K-th step only (default 1)\n"
    "      --trace-values   keep the tensors' values in the trace too (for diff --dump)\n"
    "      --resume         continue the run found in the results folder (-o DIR)\n"
    "      --no-checkpoint  keep no per-cell checkpoints (less disk; gives up --resume)\n"
    "      --shard K/N      run only shard K of N of the grid's cells (docs/cluster.md)\n"
    "      --traceback      add a Lua traceback to every script error (by default only\n"
    "                       errors inside detrun's own Lua code have one)\n"
    "      --no-report      write no OUT/NAME.html and OUT/NAME.epochs.csv\n"
    "      --sandbox[=memory=BYTES,instructions=N]\n"
    "                       run an untrusted script: safe libraries only, files only in\n"
    "                       --data and -o, a Lua heap and instruction budget (docs/lua.md)\n"
    "      --version        print the version and exit\n"
    "  -h, --help           print this help and exit\n"
    "   or: detrun diff [--dump PREFIX] A.trace B.trace   (detrun diff --help)\n"
    "   or: detrun merge [--partial] [-q] OUT            (detrun merge --help)\n"
    "   or: detrun report RESULTS.json [-o FILE.html]    (detrun report --help)\n"
    "   or: detrun slurm [slurm options] [options] [-- SBATCH-OPTIONS] SCRIPT [args]\n"
    "                                                   (detrun slurm --help)\n"
    "Exit status: 0 success, 1 an error in the script or the data, 2 a usage error,\n"
    "3 fingerprints that differ from the golden file (--check), 130 (143) stopped by\n"
    "SIGINT (SIGTERM) at a step boundary: rerun with --resume to continue.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "detrun: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'detrun --help'.\n");
    return 2;
}

/* Parses a whole decimal number in [lo, hi]; 0 on success. */
static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

enum { OPT_REPEATS = 256, OPT_FOLDS, OPT_EPOCHS, OPT_LIMIT, OPT_DATA, OPT_DEVICE,
       OPT_GPU_KERNELS, OPT_DEVICES, OPT_VERSION, OPT_RECORD, OPT_CHECK, OPT_TRACE,
       OPT_TRACE_EVERY, OPT_TRACE_VALUES, OPT_RESUME, OPT_SHARD, OPT_SHARDS, OPT_WAIT,
       OPT_TRACEBACK, OPT_DRY_RUN, OPT_PARTITION, OPT_TIME, OPT_CPUS, OPT_GRES, OPT_NO_REPORT,
       OPT_SANDBOX, OPT_NO_CHECKPOINT };

/* "auto" (one per CPU this process may run on) or a count of jobs; 0 on
 * success. */
static int parse_jobs(const char *s, int *jobs)
{
    long long v;
    if (strcmp(s, "auto") == 0) {
        cpu_set_t set;
        long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
        if (n < 1)
            n = sysconf(_SC_NPROCESSORS_ONLN);
        *jobs = n > 0 ? (int)n : 1;
        return 0;
    }
    if (parse_num(s, 1, 4096, &v) != 0)
        return -1;
    *jobs = (int)v;
    return 0;
}

/* "K/N" with 0 <= K < N; 0 on success. */
static int parse_shard(const char *s, int *k, int *n)
{
    char head[32];
    const char *slash = strchr(s, '/');
    long long a, b;
    if (slash == NULL || (size_t)(slash - s) >= sizeof head)
        return -1;
    memcpy(head, s, (size_t)(slash - s));
    head[slash - s] = '\0';
    if (parse_num(head, 0, INT_MAX, &a) != 0 || parse_num(slash + 1, 1, INT_MAX, &b) != 0 || a >= b)
        return -1;
    *k = (int)a;
    *n = (int)b;
    return 0;
}

/* The options as given, for the header of a golden file. */
static void join_options(int argc, char **argv, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 1; i < argc && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i > 1 ? " " : "", argv[i]);
}

static const struct option longopts[] = {
    { "threads", required_argument, NULL, 't' },
    { "jobs", required_argument, NULL, 'j' },
    { "mode", required_argument, NULL, 'm' },
    { "seed", required_argument, NULL, 's' },
    { "repeats", required_argument, NULL, OPT_REPEATS },
    { "folds", required_argument, NULL, OPT_FOLDS },
    { "epochs", required_argument, NULL, OPT_EPOCHS },
    { "limit", required_argument, NULL, OPT_LIMIT },
    { "data", required_argument, NULL, OPT_DATA },
    { "out", required_argument, NULL, 'o' },
    { "quiet", no_argument, NULL, 'q' },
    { "device", required_argument, NULL, OPT_DEVICE },
    { "gpu-kernels", required_argument, NULL, OPT_GPU_KERNELS },
    { "devices", no_argument, NULL, OPT_DEVICES },
    { "version", no_argument, NULL, OPT_VERSION },
    { "record", required_argument, NULL, OPT_RECORD },
    { "check", required_argument, NULL, OPT_CHECK },
    { "trace", required_argument, NULL, OPT_TRACE },
    { "trace-every", required_argument, NULL, OPT_TRACE_EVERY },
    { "trace-values", no_argument, NULL, OPT_TRACE_VALUES },
    { "resume", no_argument, NULL, OPT_RESUME },
    { "no-checkpoint", no_argument, NULL, OPT_NO_CHECKPOINT },
    { "shard", required_argument, NULL, OPT_SHARD },
    { "shards", required_argument, NULL, OPT_SHARDS },
    { "wait", no_argument, NULL, OPT_WAIT },
    { "dry-run", no_argument, NULL, OPT_DRY_RUN },
    { "partition", required_argument, NULL, OPT_PARTITION },
    { "time", required_argument, NULL, OPT_TIME },
    { "cpus-per-task", required_argument, NULL, OPT_CPUS },
    { "gres", required_argument, NULL, OPT_GRES },
    { "traceback", no_argument, NULL, OPT_TRACEBACK },
    { "no-report", no_argument, NULL, OPT_NO_REPORT },
    { "sandbox", optional_argument, NULL, OPT_SANDBOX },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
};

/* Everything the command line says. */
typedef struct args {
    detrun_options ro;
    detrun_script_options so;
    const char *record, *check, *trace;
    int trace_every, trace_values;
    int slurm;                 /* detrun slurm, and its own options: */
    detrun_slurm_opts sl;
} args;

enum { PARSED = -1 };   /* parsing goes on; any other value is the exit status */

/* The options that take a number. */
static int number_option(int c, const char *arg, args *a)
{
    long long v;
    switch (c) {
    case 't':
        if (parse_num(arg, 0, 4096, &v) != 0)
            return usage_error("--threads: '%s' is not a thread count (0 to 4096)", arg);
        a->ro.threads = (int)v;
        return PARSED;
    case 's':
        if (parse_num(arg, 0, LLONG_MAX, &v) != 0)
            return usage_error("--seed: '%s' is not a non-negative integer", arg);
        a->so.seed_set = 1;
        a->so.seed = (uint64_t)v;
        a->ro.seed = (uint64_t)v;
        return PARSED;
    case OPT_LIMIT:
        if (parse_num(arg, 1, LLONG_MAX, &v) != 0)
            return usage_error("--limit: '%s' is not a positive row count", arg);
        a->so.limit = (size_t)v;
        return PARSED;
    case OPT_TRACE_EVERY:
        if (parse_num(arg, 1, INT_MAX, &v) != 0)
            return usage_error("--trace-every: '%s' is not a positive step count", arg);
        a->trace_every = (int)v;
        return PARSED;
    case OPT_SHARD:
        if (a->slurm || parse_shard(arg, &a->so.shard, &a->so.shards) != 0)
            return usage_error(a->slurm ? "--shard %s: detrun slurm gives each task its shard"
                                        : "--shard: '%s' is not K/N with 0 <= K < N", arg);
        return PARSED;
    case OPT_SHARDS:
        if (!a->slurm || parse_num(arg, 1, INT_MAX, &v) != 0)
            return usage_error(a->slurm ? "--shards: '%s' is not a positive count"
                                        : "--shards %s: an option of detrun slurm", arg);
        a->sl.shards = (int)v;
        return PARSED;
    case OPT_CPUS:
        if (!a->slurm || parse_num(arg, 1, 100000, &v) != 0)
            return usage_error(a->slurm ? "--cpus-per-task: '%s' is not a positive count"
                                        : "--cpus-per-task %s: an option of detrun slurm", arg);
        a->sl.cpus_per_task = (int)v;
        return PARSED;
    }
    /* --repeats, --folds, --epochs */
    const char *name = c == OPT_REPEATS ? "--repeats" : c == OPT_FOLDS ? "--folds" : "--epochs";
    if (parse_num(arg, c == OPT_FOLDS ? 2 : 1, 1000000, &v) != 0) {
        fprintf(stderr, "detrun: %s: '%s' is not a valid count%s\nTry 'detrun --help'.\n", name,
                arg, c == OPT_FOLDS ? " (at least 2)" : "");
        return 2;
    }
    *(c == OPT_REPEATS ? &a->so.repeats : c == OPT_FOLDS ? &a->so.folds : &a->so.epochs) = (int)v;
    return PARSED;
}

/* --sandbox[=memory=BYTES,instructions=N]: PARSED or the exit status. */
static int sandbox_option(const char *arg, args *a)
{
    char buf[256], *save = NULL;
    a->so.sandbox = 1;
    if (arg == NULL)
        return PARSED;
    if (snprintf(buf, sizeof buf, "%s", arg) >= (int)sizeof buf)
        return usage_error("--sandbox: '%s' is too long", arg);
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        long long v;
        if (eq == NULL || parse_num(eq + 1, 1, LLONG_MAX, &v) != 0)
            return usage_error("--sandbox: '%s' is not memory=BYTES,instructions=N (positive "
                               "whole numbers)", arg);
        *eq = '\0';
        if (strcmp(tok, "memory") == 0)
            a->so.memory_limit = (size_t)v;
        else if (strcmp(tok, "instructions") == 0)
            a->so.instruction_limit = (uint64_t)v;
        else
            return usage_error("--sandbox: '%s' is neither memory nor instructions", tok);
    }
    return PARSED;
}

/* The options that end the command at once: help, version, device list,
 * and getopt's complaints. */
static int final_option(int c, char **argv)
{
    char buf[8192];
    switch (c) {
    case OPT_DEVICES:
        detrun_list_devices(buf, sizeof buf, NULL);
        fputs(buf, stdout);
        return 0;
    case OPT_VERSION:
        printf("detrun %s (%s)\n", detrun_version(), LUA_RELEASE);
        return 0;
    case 'h':
        printf(usage_text, detrun_default_data_dir());
        return 0;
    }
    if (optopt != 0 && optopt < 256)
        fprintf(stderr, "detrun: option -%c: %s\n", optopt,
                strchr("tjmso", optopt) ? "needs an argument" : "unknown option");
    else
        fprintf(stderr, "detrun: %s: unknown option or missing argument\n", argv[optind - 1]);
    fprintf(stderr, "Try 'detrun --help'.\n");
    return 2;
}

/* The options of detrun slurm that are words: #SBATCH lines, so one line
 * each, without spaces. */
static int slurm_option(int c, const char *arg, args *a)
{
    const char *name = c == OPT_WAIT ? "--wait" : c == OPT_DRY_RUN ? "--dry-run"
                     : c == OPT_PARTITION ? "--partition" : c == OPT_TIME ? "--time" : "--gres";
    if (!a->slurm)
        return usage_error("%s: an option of detrun slurm (detrun slurm --help)", name);
    if (arg != NULL && (arg[0] == '\0' || strpbrk(arg, " \t\r\n'\"\\") != NULL)) {
        fprintf(stderr, "detrun slurm: %s: '%s' is not one word\nTry 'detrun slurm --help'.\n",
                name, arg);
        return 2;
    }
    switch (c) {
    case OPT_WAIT: a->sl.wait = 1; break;
    case OPT_DRY_RUN: a->sl.dry_run = 1; break;
    case OPT_PARTITION: a->sl.partition = arg; break;
    case OPT_TIME: a->sl.time = arg; break;
    default: a->sl.gres = arg; break;
    }
    return PARSED;
}

/* One option of getopt_long's: PARSED or an exit status. */
static int option(int c, const char *arg, args *a, char **argv)
{
    switch (c) {
    case 'm':
        if (strcmp(arg, "deterministic") != 0 && strcmp(arg, "fast") != 0)
            return usage_error("--mode: '%s' is neither deterministic nor fast", arg);
        a->so.mode = arg;
        return PARSED;
    case OPT_DATA: a->so.data_dir = arg; return PARSED;
    case 'o': a->so.out_dir = arg; return PARSED;
    case 'q': a->so.verbosity = 1; return PARSED;
    case OPT_DEVICE:
        if (strcmp(arg, "cpu") != 0 && strncmp(arg, "cuda", 4) != 0)
            return usage_error("--device: '%s' is not cpu, cuda or cuda:N", arg);
        a->ro.device = arg;
        return PARSED;
    case OPT_GPU_KERNELS:
        if (strcmp(arg, "cudnn") != 0 && strcmp(arg, "portable") != 0)
            return usage_error("--gpu-kernels: '%s' is neither cudnn nor portable", arg);
        a->ro.backend_options = strcmp(arg, "portable") == 0 ? "kernels=portable" : "kernels=cudnn";
        return PARSED;
    case 'j':
        if (parse_jobs(arg, &a->so.jobs) != 0)
            return usage_error("--jobs: '%s' is neither auto nor a count of jobs (1 to 4096)", arg);
        return PARSED;
    case OPT_RECORD: a->record = arg; return PARSED;
    case OPT_CHECK: a->check = arg; return PARSED;
    case OPT_TRACE: a->trace = arg; return PARSED;
    case OPT_TRACE_VALUES: a->trace_values = 1; return PARSED;
    case OPT_RESUME: a->so.resume = 1; return PARSED;
    case OPT_TRACEBACK: a->so.traceback = 1; return PARSED;
    case OPT_NO_REPORT: a->so.no_report = 1; return PARSED;
    case OPT_SANDBOX: return sandbox_option(arg, a);
    case OPT_NO_CHECKPOINT: a->so.no_checkpoint = 1; return PARSED;
    case 'h':
        if (a->slurm) {
            fputs(detrun_slurm_usage, stdout);
            return 0;
        }
        break;
    case OPT_WAIT: case OPT_DRY_RUN: case OPT_PARTITION: case OPT_TIME: case OPT_GRES:
        return slurm_option(c, arg, a);
    case 't': case 's': case OPT_REPEATS: case OPT_FOLDS: case OPT_EPOCHS: case OPT_LIMIT:
    case OPT_TRACE_EVERY: case OPT_SHARD: case OPT_SHARDS: case OPT_CPUS:
        return number_option(c, arg, a);
    }
    return final_option(c, argv);
}

/* Whether word is one of detrun's own options ("-o", "--epochs", "--epochs=3"). */
static int is_detrun_option(const char *word)
{
    if (word[0] != '-' || word[1] == '\0')
        return 0;
    if (word[1] != '-')
        return word[2] == '\0' && strchr("tmsoqh", word[1]) != NULL;
    size_t n = strcspn(word + 2, "=");
    for (const struct option *o = longopts; o->name != NULL; o++)
        if (n > 0 && strlen(o->name) == n && strncmp(o->name, word + 2, n) == 0)
            return 1;
    return 0;
}

/* Words after SCRIPT are the script's arguments (as with lua and python):
 * one that is also an option of detrun's was most likely meant for detrun. */
static void warn_late_options(int argc, char **argv, int script)
{
    for (int i = script + 1; i < argc; i++)
        if (is_detrun_option(argv[i]))
            fprintf(stderr, "detrun: warning: %s comes after %s, so it goes to the script as an "
                            "argument; put detrun's options before the script\n",
                    argv[i], argv[script]);
}

/* The same file, by name or by device and inode. */
static int same_file(const char *x, const char *y)
{
    struct stat sx, sy;
    if (strcmp(x, y) == 0)
        return 1;
    return stat(x, &sx) == 0 && stat(y, &sy) == 0 && sx.st_dev == sy.st_dev &&
           sx.st_ino == sy.st_ino;
}

/* What the options say together, checked before any work: nothing is
 * trained for a run that would fail at its end. */
static int check_args(const args *a)
{
    if (a->record != NULL && a->check != NULL && same_file(a->record, a->check))
        return usage_error("--record and --check name the same file '%s': recording would "
                           "overwrite the golden file it is checked against", a->record);
    if (a->so.resume && a->so.no_checkpoint)
        return usage_error("%s: --resume needs the checkpoints that --no-checkpoint gives up",
                           "--no-checkpoint");
    const char *out = a->so.out_dir;
    struct stat sb;
    if (out != NULL && out[0] == '\0')
        return usage_error("-o: '%s' is not a results folder (an empty path)", out);
    if (out != NULL && stat(out, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return usage_error("-o: '%s' exists and is not a folder", out);
    if (out != NULL && stat(out, &sb) == 0 && access(out, W_OK | X_OK) != 0)
        return usage_error("-o: the results folder '%s' is not writable", out);
    return PARSED;
}

/* Parses the options up to the script (optind then names it). */
static int parse(int argc, char **argv, args *a)
{
    int c, status;
    opterr = 0;
    /* '+': options end at the script; what follows belongs to it. */
    while ((c = getopt_long(argc, argv, "+t:j:m:s:o:qh", longopts, NULL)) != -1)
        if ((status = option(c, optarg, a, argv)) != PARSED)
            return status;
    if (optind >= argc)
        return usage_error("%s", "no SCRIPT given");
    if (a->so.shards > 0 && (a->record != NULL || a->check != NULL))
        return usage_error("%s: golden files are of whole runs, not of one shard", "--shard");
    /* A trace is one file of every fit in plan order, written by this
     * process: its cells run here, one at a time. */
    if (a->trace != NULL)
        a->so.jobs = 1;
    return check_args(a);
}

/* After the run: the golden file to write or to compare with. */
static int goldens(const args *a, detrun_runtime *rt, const detrun_results *res, int argc,
                   char **argv)
{
    char err[DETRUN_GOLDEN_ERR_MAX], options[1024];
    join_options(argc, argv, options, sizeof options);
    if (a->record != NULL &&
        detrun_golden_write(rt, res, a->record, argv[argc], options, err) != DETRUN_OK) {
        fprintf(stderr, "detrun: %s\n", err);
        return 1;
    }
    int mismatch = 0;
    if (a->check != NULL) {
        if (detrun_golden_check(res, a->check, options, stdout, stderr, &mismatch, err) !=
            DETRUN_OK) {
            fprintf(stderr, "detrun: %s\n", err);
            return 1;
        }
        if (mismatch)
            return DETRUN_EXIT_MISMATCH;
    }
    return 0;
}

/* SIGINT and SIGTERM: the first asks the runtime to stop at the next step
 * boundary (detrun_cancel is async-signal-safe), the second kills at once.
 * A worker process of -j (a fork of the command, which inherits this
 * handler) only ever cancels: the command forwards its stop to the workers
 * as SIGTERM, which must not count as the second signal of a Ctrl-C that
 * also reached them; each keeps the checkpoint of the step it stopped at.
 * When the command dies, its workers are killed (lua/lworker.c). */
static detrun_runtime *signal_rt;
static volatile sig_atomic_t signal_seen;
static pid_t signal_pid;

static void on_signal(int sig)
{
    if (getpid() != signal_pid) {
        detrun_cancel(signal_rt);
        return;
    }
    if (signal_seen != 0) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    signal_seen = sig;
    detrun_cancel(signal_rt);
    static const char msg[] = "\ndetrun: stopping at the next step (again to stop at once)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

static void catch_signals(detrun_runtime *rt)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    signal_rt = rt;
    signal_pid = getpid();
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The exit status of a run stopped by a signal: 128 + its number. */
static int interrupted(void)
{
    fprintf(stderr, "detrun: interrupted: rerun with --resume to continue\n");
    return 128 + (signal_seen != 0 ? signal_seen : SIGINT);
}

/* Runs the script argv[first] with its arguments after it. */
static int run(args *a, int argc, char **argv, int first)
{
    a->so.argc = argc - first;
    a->so.argv = argv + first;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &a->ro) != DETRUN_OK ||
        (a->trace != NULL &&
         detrun_trace_start(rt, a->trace, a->trace_every, a->trace_values) != DETRUN_OK)) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 1;
    }
    int status = 0;
    detrun_script *sc = NULL;
    detrun_results *res = NULL;
    catch_signals(rt);
    detrun_status st = detrun_script_open(&sc, rt);
    if (st == DETRUN_OK)
        st = detrun_script_set_options(sc, &a->so);
    if (st == DETRUN_OK)
        st = detrun_script_run_file(sc, argv[first], &res);
    if (st == DETRUN_ERR_CANCELLED || (st != DETRUN_OK && signal_seen != 0)) {
        status = interrupted();
    } else if (st != DETRUN_OK) {
        fprintf(stderr, "detrun: %s\n", detrun_script_errmsg(sc));
        status = 1;
    }
    if (a->trace != NULL && detrun_trace_stop(rt) != DETRUN_OK && status == 0) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        status = 1;
    }
    if (status == 0)
        status = goldens(a, rt, res, first, argv);
    detrun_results_free(res);
    detrun_script_close(sc);
    signal_rt = NULL;
    detrun_close(rt);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "diff") == 0)
        return detrun_diff_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "merge") == 0)
        return detrun_merge_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "report") == 0)
        return detrun_report_main(argc - 1, argv + 1);
    detrun_options ro = DETRUN_OPTIONS_INIT;
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    args a = { .ro = ro, .so = so, .trace_every = 1 };
    a.so.out_dir = "results";
    a.so.verbosity = 2;
    a.so.jobs = DETRUN_SCRIPT_JOBS_AUTO;   /* unless -j or the experiment says otherwise */
    a.slurm = argc >= 2 && strcmp(argv[1], "slurm") == 0;
    if (a.slurm) {   /* the same options, parsed here, handed on to each task */
        argc--;
        argv++;
    }
    int status = parse(argc, argv, &a);
    if (status != PARSED)
        return status;
    if (!a.slurm)   /* detrun slurm: sbatch's options come between -- and the script */
        warn_late_options(argc, argv, optind);
    if (a.slurm)
        return detrun_slurm_main(argc, argv, optind, &a.ro, &a.so, &a.sl);
    return run(&a, argc, argv, optind);
}
