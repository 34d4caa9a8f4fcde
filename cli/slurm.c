/*
 * slurm.c - `detrun slurm`: an experiment's grid as a Slurm job array.
 *
 *   detrun slurm [slurm options] [options] [-- SBATCH-OPTIONS] SCRIPT [ARGS]
 *
 * Plans the experiment here, building its model once without training (so
 * that a broken script or model fails now, not in every task), writes two
 * job scripts into OUT/slurm/, and submits them with
 * sbatch: an array of N tasks, task K running `detrun --shard K/N` (from
 * SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT), and a merge job that runs
 * `detrun merge OUT` once every task has succeeded (afterok). Rerunning the
 * same command after a failure redoes only the missing cells. See
 * docs/cluster.md.
 */
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

extern char **environ;

const char detrun_slurm_usage[] =
    "usage: detrun slurm [slurm options] [options] [-- SBATCH-OPTIONS] SCRIPT [script args...]\n"
    "Runs the experiment's grid as a Slurm job array (one shard per task) and a merge job.\n"
    "It plans first: runs the script without training and builds its model once, so\n"
    "that an error stops here, before anything is submitted. Slurm options (first):\n"
    "      --shards N       split the grid into N array tasks (default: one per cell)\n"
    "      --wait           wait for the merge job; exit 0 only if it succeeded\n"
    "      --dry-run        plan and write the job scripts, print the sbatch commands,\n"
    "                       submit nothing\n"
    "      --partition P    #SBATCH --partition=P in both job scripts\n"
    "      --time T         #SBATCH --time=T (e.g. 2:00:00) in both job scripts\n"
    "      --cpus-per-task N\n"
    "                       #SBATCH --cpus-per-task=N for the array tasks (detrun -t\n"
    "                       follows it unless the options give -t)\n"
    "      --gres G         #SBATCH --gres=G (e.g. gpu:1) for the array tasks\n"
    "  -h, --help           print this help and exit\n"
    "Then detrun's options (detrun --help), given to every task as they are. Words\n"
    "after -- (one word each: --account=me) go to both sbatch calls and win over the\n"
    "#SBATCH lines. The plan, job scripts and logs go to OUT/shards and OUT/slurm\n"
    "(-o OUT, default ./results), which must be on a folder every node sees.\n"
    "See docs/cluster.md.\n";

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "detrun slurm: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

/* Appends s to f as one shell word. */
static void put_word(FILE *f, const char *s)
{
    fputs(" '", f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* Writes an executable file whole or not at all. */
static int write_script(const char *path, const char *text)
{
    char tmp[3 * PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return fail("%s: cannot write: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    bad = bad || chmod(tmp, 0755) != 0 || rename(tmp, path) != 0;
    if (bad) {
        int e = errno;
        remove(tmp);
        return fail("%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

/* Runs sbatch with args (NULL-terminated, args[0] == "sbatch"); puts the job
 * id it prints (--parsable: "ID" or "ID;CLUSTER") into id. Returns sbatch's
 * exit status, or -1 if it could not run. */
static int sbatch(char **args, char *id, size_t idlen)
{
    int fd[2];
    if (pipe(fd) != 0)
        return fail("cannot run sbatch: %s%s", strerror(errno), ""), -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    pid_t pid;
    int e = posix_spawnp(&pid, "sbatch", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (e != 0) {
        close(fd[0]);
        fail("cannot run sbatch: %s%s", strerror(e),
             e == ENOENT ? " (detrun slurm runs where Slurm's sbatch is on the PATH)" : "");
        return -1;
    }
    char buf[256];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            n += (size_t)r;
    close(fd[0]);
    buf[n] = '\0';
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    size_t k = strspn(buf, "0123456789");
    if (k == 0 || k >= idlen)
        id[0] = '\0';
    else {
        memcpy(id, buf, k);
        id[k] = '\0';
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The number of cells and the experiment's name from OUT/shards/plan.json. */
static int read_plan(const char *out, int *cells, char *name, size_t namelen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/shards/plan.json", out);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail("%s: cannot open: %s", path, strerror(errno));
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "cells");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "grid");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(g, "experiment");
    int ok = cJSON_IsNumber(c) && c->valueint > 0 && cJSON_IsString(e);
    if (ok) {
        *cells = c->valueint;
        snprintf(name, namelen, "%s", e->valuestring);
    }
    cJSON_Delete(root);
    return ok ? 0 : fail("%s: not a plan written by this detrun%s", path, "");
}

/* Plans the experiment: runs the script with shard -1, which validates it
 * and writes OUT/shards/plan.json without training. */
static int plan(const detrun_options *ro, const detrun_script_options *so, int argc, char **argv)
{
    detrun_script_options po = *so;
    po.shard = -1;
    po.shards = 1;
    po.verbosity = 0;
    po.argc = argc;
    po.argv = argv;
    detrun_runtime *rt = NULL;
    detrun_script *sc = NULL;
    int status = 0;
    if (detrun_open(&rt, ro) != DETRUN_OK)
        status = fail("%s: %s", argv[0], detrun_errmsg(rt));
    else if (detrun_script_open(&sc, rt) != DETRUN_OK ||
             detrun_script_set_options(sc, &po) != DETRUN_OK ||
             detrun_script_run_file(sc, argv[0], NULL) != DETRUN_OK) {
        const char *msg = detrun_script_errmsg(sc);   /* it names the script when it can */
        status = strncmp(msg, argv[0], strlen(argv[0])) == 0 ? fail("%s%s", msg, "")
                                                             : fail("%s: %s", argv[0], msg);
    }
    detrun_script_close(sc);
    detrun_close(rt);
    return status;
}

/* Identifies the version of a file (0 when there is none): merge replaces
 * the results by rename, so a merge that ran changes it. */
static unsigned long long file_version(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return ((unsigned long long)st.st_dev << 40) ^ (unsigned long long)st.st_ino ^
           ((unsigned long long)st.st_mtim.tv_nsec << 20) ^ (unsigned long long)st.st_mtim.tv_sec;
}

/* How many words a slurm option at a takes (1 or 2), or 0 when a is not one. */
static int slurm_option_words(const char *a)
{
    static const char *const flags[] = { "--wait", "--dry-run", NULL };
    static const char *const valued[] = { "--shards", "--partition", "--time", "--cpus-per-task",
                                          "--gres", NULL };
    for (int i = 0; flags[i] != NULL; i++)
        if (strcmp(a, flags[i]) == 0)
            return 1;
    for (int i = 0; valued[i] != NULL; i++) {
        size_t n = strlen(valued[i]);
        if (strncmp(a, valued[i], n) == 0 && (a[n] == '\0' || a[n] == '='))
            return a[n] == '\0' ? 2 : 1;
    }
    return 0;
}

/* Where things are: the command line's parts, the experiment and the folders. */
typedef struct job {
    int argc;
    char **argv;
    int first, end, dashdash, script;   /* detrun's options: argv[first .. end - dashdash) */
    const char *out;
    const detrun_slurm_opts *opt;
    int cells, shards;
    char name[256];
    char exe[PATH_MAX], cwd[PATH_MAX], outabs[2 * PATH_MAX], dir[2 * PATH_MAX + 16];
    char shard_sh[2 * PATH_MAX + 316], merge_sh[2 * PATH_MAX + 316];
} job;

/* Splits the command line: slurm's options, detrun's, sbatch's after --, the
 * script. 0, or the exit status. */
static int split_args(job *j)
{
    /* argv[0] is "slurm"; its own options come first, then detrun's options
     * up to argv[end] (getopt's optind), which the tasks get as they are. */
    char **argv = j->argv;
    j->first = 1;
    while (j->first < j->end && slurm_option_words(argv[j->first]) > 0)
        j->first += slurm_option_words(argv[j->first]);
    j->dashdash = j->end > j->first && strcmp(argv[j->end - 1], "--") == 0;
    for (int i = j->first; i < j->end - j->dashdash; i++)
        if (slurm_option_words(argv[i]) > 0)
            return fprintf(stderr, "detrun slurm: %s goes right after 'slurm'\n", argv[i]), 2;
    int s = j->end;
    while (j->dashdash && s < j->argc && argv[s][0] == '-')
        s++;
    if (s >= j->argc)
        return fprintf(stderr, "detrun slurm: no SCRIPT given\n"), 2;
    j->script = s;
    if (access(argv[s], R_OK) != 0)
        return fail("%s: cannot read: %s", argv[s],
                    j->dashdash ? "(sbatch options after -- are single words: --partition=gpu, "
                                  "not -p gpu)" : strerror(errno));
    return 0;
}

/* The executable, the working folder and OUT/slurm. */
static int find_places(job *j)
{
    ssize_t len_exe = readlink("/proc/self/exe", j->exe, sizeof j->exe - 1);
    if (len_exe <= 0)
        return fail("cannot find the detrun executable: /proc/self/exe: %s%s", strerror(errno), "");
    j->exe[len_exe] = '\0';
    if (getcwd(j->cwd, sizeof j->cwd) == NULL)
        return fail("cannot get the working folder: %s%s", strerror(errno), "");
    const char *out = j->out;
    snprintf(j->outabs, sizeof j->outabs, "%s%s%s", out[0] == '/' ? "" : j->cwd,
             out[0] == '/' ? "" : "/", out);
    snprintf(j->dir, sizeof j->dir, "%s/slurm", j->outabs);
    if (mkdir(j->dir, 0777) != 0 && errno != EEXIST)
        return fail("%s: cannot create folder: %s", j->dir, strerror(errno));
    return 0;
}

/* The #SBATCH lines of the options given; the array's tasks (task) also get
 * the CPUs and generic resources, which the merge does not need. */
static void sbatch_lines(FILE *f, const detrun_slurm_opts *o, int task)
{
    if (o->partition != NULL)
        fprintf(f, "#SBATCH --partition=%s\n", o->partition);
    if (o->time != NULL)
        fprintf(f, "#SBATCH --time=%s\n", o->time);
    if (task && o->cpus_per_task > 0)
        fprintf(f, "#SBATCH --cpus-per-task=%d\n", o->cpus_per_task);
    if (task && o->gres != NULL)
        fprintf(f, "#SBATCH --gres=%s\n", o->gres);
}

/* The two job scripts: the array's task and the merge. */
static int write_jobs(job *j)
{
    /* The tasks run where this command ran, with its options; -t follows
     * the CPUs Slurm gives each task unless the options set it. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return fail("out of memory%s%s", "", "");
    fprintf(f, "#!/bin/sh\n# Written by detrun slurm: array task K runs shard K of %s's %d cells.\n",
            j->name, j->cells);
    sbatch_lines(f, j->opt, 1);
    fputs("cd", f);
    put_word(f, j->cwd);
    fputs(" || exit 1\nexec", f);
    put_word(f, j->exe);
    fputs(" --shard \"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\""
          " -t \"${SLURM_CPUS_PER_TASK:-1}\"", f);
    for (int i = j->first; i < j->end - j->dashdash; i++)
        put_word(f, j->argv[i]);
    for (int i = j->script; i < j->argc; i++)
        put_word(f, j->argv[i]);
    fputc('\n', f);
    fclose(f);
    snprintf(j->shard_sh, sizeof j->shard_sh, "%s/%s-shards.sh", j->dir, j->name);
    int bad = write_script(j->shard_sh, text);
    free(text);
    if (bad)
        return 1;

    f = open_memstream(&text, &len);
    if (f == NULL)
        return fail("out of memory%s%s", "", "");
    fputs("#!/bin/sh\n# Written by detrun slurm: merges the shards once all have succeeded.\n", f);
    sbatch_lines(f, j->opt, 0);
    fputs("cd", f);
    put_word(f, j->cwd);
    fputs(" || exit 1\nexec", f);
    put_word(f, j->exe);
    fputs(" merge", f);
    put_word(f, j->outabs);
    fputc('\n', f);
    fclose(f);
    snprintf(j->merge_sh, sizeof j->merge_sh, "%s/%s-merge.sh", j->dir, j->name);
    bad = write_script(j->merge_sh, text);
    free(text);
    return bad;
}

/* Prints a command line (args NULL-terminated) as words a shell reads back. */
static void print_command(char **args)
{
    fputs(args[0], stdout);
    for (int i = 1; args[i] != NULL; i++) {
        if (args[i][strspn(args[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789-_=:/.,%+@")] == '\0')
            printf(" %s", args[i]);
        else
            put_word(stdout, args[i]);
    }
    putchar('\n');
}

/* sbatch [ours] [the user's] SCRIPT: the user's options come later and win.
 * args has room for them and 12 more. */
static int submit_array(const job *j, char **args, char *id, size_t idlen)
{
    char array[64], jobname[300], output[sizeof j->dir + 32];
    snprintf(array, sizeof array, "--array=0-%d", j->shards - 1);
    snprintf(jobname, sizeof jobname, "--job-name=detrun-%s", j->name);
    snprintf(output, sizeof output, "--output=%s/shard-%%a.out", j->dir);
    int k = 0;
    args[k++] = "sbatch";
    args[k++] = "--parsable";
    args[k++] = array;
    args[k++] = jobname;
    args[k++] = output;
    for (int i = 0; i < j->script - j->end; i++)
        args[k++] = j->argv[j->end + i];
    args[k++] = (char *)j->shard_sh;
    args[k] = NULL;
    if (j->opt->dry_run) {   /* the merge's dependency names the array's id */
        print_command(args);
        snprintf(id, idlen, "%s", "ARRAY_JOB_ID");
        return 0;
    }
    int rc = sbatch(args, id, idlen);
    if (rc != 0 || id[0] == '\0')
        return rc < 0 ? 1 : fail("sbatch refused the array (exit %s)%s",
                                 rc == 0 ? "0, no job id" : "non-zero", "");
    return 0;
}

/* The merge job, after the array (afterok); with wait, until it is done. */
static int submit_merge(const job *j, char **args, const char *id, int wait)
{
    char dep[96], mjobname[320], moutput[sizeof j->dir + 32], mid[64];
    snprintf(dep, sizeof dep, "--dependency=afterok:%s", id);
    snprintf(mjobname, sizeof mjobname, "--job-name=detrun-%s-merge", j->name);
    snprintf(moutput, sizeof moutput, "--output=%s/merge.out", j->dir);
    int k = 0;
    args[k++] = "sbatch";
    args[k++] = "--parsable";
    args[k++] = dep;
    args[k++] = "--kill-on-invalid-dep=yes";
    args[k++] = mjobname;
    args[k++] = moutput;
    for (int i = 0; i < j->script - j->end; i++)
        args[k++] = j->argv[j->end + i];
    if (wait)
        args[k++] = "--wait";
    args[k++] = (char *)j->merge_sh;
    args[k] = NULL;
    const char *name = j->name, *outabs = j->outabs;
    if (j->opt->dry_run) {
        print_command(args);
        printf("%s: dry run: %d cells in %d shards; plan in %s/shards, job scripts in %s; "
               "nothing submitted\n", name, j->cells, j->shards, outabs, j->dir);
        return 0;
    }
    printf("%s: %d cells in %d shards: job %s (array 0-%d), logs in %s\n", name, j->cells,
           j->shards, id, j->shards - 1, j->dir);
    fflush(stdout);
    char results[sizeof j->outabs + 300];
    snprintf(results, sizeof results, "%s/%s.json", outabs, name);
    unsigned long long before = file_version(results);
    int rc = sbatch(args, mid, sizeof mid);
    if (rc < 0 || mid[0] == '\0')
        return fail("the merge job was not submitted: once job %s is done, run detrun merge %s",
                    id, outabs);
    if (!wait) {
        printf("%s: merge job %s runs after it; results in %s/%s.json\n", name, mid, outabs, name);
        return 0;
    }
    /* sbatch --wait says 0 for a merge job cancelled because a task failed:
     * only new results show that the merge ran. */
    if (rc != 0 || file_version(results) == before) {
        fprintf(stderr, "detrun slurm: merge job %s did not succeed (did a task fail? see %s); "
                        "detrun merge %s names the missing cells, and rerunning this command "
                        "runs only those\n", mid, j->dir, outabs);
        return 1;
    }
    printf("%s: merged by job %s: %s/%s.json, %s/%s.csv, report in %s/merge.out\n", name, mid,
           outabs, name, outabs, name, j->dir);
    return 0;
}

int detrun_slurm_main(int argc, char **argv, int end, const detrun_options *ro,
                      const detrun_script_options *so, const detrun_slurm_opts *sopt)
{
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return fail("out of memory%s%s", "", "");
    j->argc = argc;
    j->argv = argv;
    j->end = end;
    j->opt = sopt;
    int shards = sopt->shards, wait = sopt->wait;
    j->out = so->out_dir != NULL ? so->out_dir : "results";
    int status = split_args(j);
    if (status == 0)
        status = plan(ro, so, argc - j->script, argv + j->script) != 0 ||
                 read_plan(j->out, &j->cells, j->name, sizeof j->name) != 0;
    if (status == 0) {
        j->shards = shards > 0 && shards < j->cells ? shards : j->cells;
        status = find_places(j) != 0 || write_jobs(j) != 0;
    }
    char **args = status == 0 ? calloc((size_t)(j->script - end) + 12, sizeof *args) : NULL;
    if (status == 0 && args == NULL)
        status = fail("out of memory%s%s", "", "");
    char id[64];
    if (status == 0)
        status = submit_array(j, args, id, sizeof id);
    if (status == 0)
        status = submit_merge(j, args, id, wait);
    free(args);
    free(j);
    return status;
}
