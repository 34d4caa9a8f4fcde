/*
 * main.c - the `detrun` command: runs an experiment script.
 *
 * Exit status: 0 success; 1 an error in the script or the data; 2 a usage
 * error. Only this file exits; the library reports through statuses.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "detrun.h"
#include "golden.h"

/* From lua/merge.c and lua/slurm.c: detrun merge, detrun slurm (docs/cluster.md). */
extern int detrun_merge_main(int argc, char **argv);
extern int detrun_slurm_main(int argc, char **argv, int end, const detrun_options *ro,
                             const detrun_script_options *so, int shards, int wait);

static const char usage_text[] =
    "usage: detrun [options] SCRIPT [script args...]\n"
    "  -t, --threads N      worker threads (default: all cores)\n"
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
    "      --shard K/N      run only shard K of N of the grid's cells (docs/cluster.md)\n"
    "      --version        print the version and exit\n"
    "  -h, --help           print this help and exit\n"
    "   or: detrun diff [--dump PREFIX] A.trace B.trace   (detrun diff --help)\n"
    "   or: detrun merge [--partial] [-q] OUT            (detrun merge --help)\n"
    "   or: detrun slurm [--shards N] [--wait] [options] [-- SBATCH-OPTIONS] SCRIPT [args]\n"
    "Exit status: 0 success, 1 an error in the script or the data, 2 a usage error,\n"
    "3 fingerprints that differ from the golden file (--check).\n";

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
       OPT_TRACE_EVERY, OPT_TRACE_VALUES, OPT_RESUME, OPT_SHARD, OPT_SHARDS, OPT_WAIT };

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

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "threads", required_argument, NULL, 't' },
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
        { "shard", required_argument, NULL, OPT_SHARD },
        { "shards", required_argument, NULL, OPT_SHARDS },
        { "wait", no_argument, NULL, OPT_WAIT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    if (argc >= 2 && strcmp(argv[1], "diff") == 0)
        return detrun_diff_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "merge") == 0)
        return detrun_merge_main(argc - 1, argv + 1);
    int slurm = argc >= 2 && strcmp(argv[1], "slurm") == 0, shards = 0, wait = 0;
    if (slurm) {   /* the same options, parsed here, handed on to each task */
        argc--;
        argv++;
    }
    const char *record = NULL, *check = NULL, *trace = NULL;
    int trace_every = 1, trace_values = 0;
    detrun_options ro = DETRUN_OPTIONS_INIT;
    detrun_script_options so = DETRUN_SCRIPT_OPTIONS_INIT;
    so.out_dir = "results";
    so.verbosity = 2;
    long long v;
    int c;
    opterr = 0;
    /* '+': options end at the script; what follows belongs to it. */
    while ((c = getopt_long(argc, argv, "+t:m:s:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (parse_num(optarg, 0, 4096, &v) != 0)
                return usage_error("--threads: '%s' is not a thread count (0 to 4096)", optarg);
            ro.threads = (int)v;
            break;
        case 'm':
            if (strcmp(optarg, "deterministic") != 0 && strcmp(optarg, "fast") != 0)
                return usage_error("--mode: '%s' is neither deterministic nor fast", optarg);
            so.mode = optarg;
            break;
        case 's':
            if (parse_num(optarg, 0, LLONG_MAX, &v) != 0)
                return usage_error("--seed: '%s' is not a non-negative integer", optarg);
            so.seed_set = 1;
            so.seed = (uint64_t)v;
            ro.seed = (uint64_t)v;
            break;
        case OPT_REPEATS:
        case OPT_FOLDS:
        case OPT_EPOCHS: {
            const char *name = c == OPT_REPEATS ? "--repeats" : c == OPT_FOLDS ? "--folds" : "--epochs";
            if (parse_num(optarg, c == OPT_FOLDS ? 2 : 1, 1000000, &v) != 0) {
                fprintf(stderr, "detrun: %s: '%s' is not a valid count%s\nTry 'detrun --help'.\n",
                        name, optarg, c == OPT_FOLDS ? " (at least 2)" : "");
                return 2;
            }
            *(c == OPT_REPEATS ? &so.repeats : c == OPT_FOLDS ? &so.folds : &so.epochs) = (int)v;
            break;
        }
        case OPT_LIMIT:
            if (parse_num(optarg, 1, LLONG_MAX, &v) != 0)
                return usage_error("--limit: '%s' is not a positive row count", optarg);
            so.limit = (size_t)v;
            break;
        case OPT_DATA: so.data_dir = optarg; break;
        case 'o': so.out_dir = optarg; break;
        case 'q': so.verbosity = 1; break;
        case OPT_DEVICE:
            if (strcmp(optarg, "cpu") != 0 && strncmp(optarg, "cuda", 4) != 0)
                return usage_error("--device: '%s' is not cpu, cuda or cuda:N", optarg);
            ro.device = optarg;
            break;
        case OPT_GPU_KERNELS:
            if (strcmp(optarg, "cudnn") != 0 && strcmp(optarg, "portable") != 0)
                return usage_error("--gpu-kernels: '%s' is neither cudnn nor portable", optarg);
            ro.backend_options = strcmp(optarg, "portable") == 0 ? "kernels=portable" : "kernels=cudnn";
            break;
        case OPT_DEVICES: {
            char buf[8192];
            detrun_list_devices(buf, sizeof buf);
            fputs(buf, stdout);
            return 0;
        }
        case OPT_RECORD: record = optarg; break;
        case OPT_CHECK: check = optarg; break;
        case OPT_TRACE: trace = optarg; break;
        case OPT_TRACE_EVERY:
            if (parse_num(optarg, 1, INT_MAX, &v) != 0)
                return usage_error("--trace-every: '%s' is not a positive step count", optarg);
            trace_every = (int)v;
            break;
        case OPT_TRACE_VALUES: trace_values = 1; break;
        case OPT_RESUME: so.resume = 1; break;
        case OPT_SHARD:
            if (slurm || parse_shard(optarg, &so.shard, &so.shards) != 0)
                return usage_error(slurm ? "--shard %s: detrun slurm gives each task its shard"
                                         : "--shard: '%s' is not K/N with 0 <= K < N", optarg);
            break;
        case OPT_SHARDS:
            if (!slurm || parse_num(optarg, 1, INT_MAX, &v) != 0)
                return usage_error(slurm ? "--shards: '%s' is not a positive count"
                                         : "--shards %s: an option of detrun slurm", optarg);
            shards = (int)v;
            break;
        case OPT_WAIT:
            if (!slurm)
                return usage_error("%s: an option of detrun slurm", "--wait");
            wait = 1;
            break;
        case OPT_VERSION:
            printf("detrun %s (%s)\n", detrun_version(), LUA_RELEASE);
            return 0;
        case 'h':
            printf(usage_text, detrun_default_data_dir());
            return 0;
        default:
            if (optopt != 0 && optopt < 256)
                fprintf(stderr, "detrun: option -%c: %s\n", optopt,
                        strchr("tmso", optopt) ? "needs an argument" : "unknown option");
            else
                fprintf(stderr, "detrun: %s: unknown option or missing argument\n",
                        argv[optind - 1]);
            fprintf(stderr, "Try 'detrun --help'.\n");
            return 2;
        }
    }
    if (optind >= argc)
        return usage_error("%s", "no SCRIPT given");
    if (so.shards > 0 && (record != NULL || check != NULL))
        return usage_error("%s: golden files are of whole runs, not of one shard", "--shard");
    if (slurm)
        return detrun_slurm_main(argc, argv, optind, &ro, &so, shards, wait);
    so.argc = argc - optind;
    so.argv = argv + optind;
    char options[1024];
    join_options(optind, argv, options, sizeof options);

    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &ro) != DETRUN_OK) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 1;
    }
    int status = 0;
    detrun_results *res = NULL;
    if (trace != NULL && detrun_trace_start(rt, trace, trace_every, trace_values) != DETRUN_OK) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 1;
    }
    if (detrun_set_script_options(rt, &so) != DETRUN_OK ||
        detrun_run_file(rt, argv[optind], &res) != DETRUN_OK) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        status = 1;
    }
    if (trace != NULL && detrun_trace_stop(rt) != DETRUN_OK && status == 0) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        status = 1;
    }
    if (status == 0 && record != NULL &&
        detrun_golden_write(rt, res, record, argv[optind], options) != DETRUN_OK) {
        fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
        status = 1;
    }
    int mismatch = 0;
    if (status == 0 && check != NULL) {
        if (detrun_golden_check(rt, res, check, stdout, &mismatch) != DETRUN_OK) {
            fprintf(stderr, "detrun: %s\n", detrun_errmsg(rt));
            status = 1;
        } else if (mismatch) {
            status = DETRUN_EXIT_MISMATCH;
        }
    }
    detrun_results_free(res);
    detrun_close(rt);
    return status;
}
