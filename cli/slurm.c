/*
 * slurm.c - `detrun slurm`: an experiment's grid as a Slurm job array.
 *
 *   detrun slurm [--shards N] [--wait] [options] [-- SBATCH-OPTIONS] SCRIPT [ARGS]
 *
 * Plans the experiment here (so that a broken script fails now, not in every
 * task), writes two job scripts into OUT/slurm/, and submits them with
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
             detrun_script_run_file(sc, argv[0], NULL) != DETRUN_OK)
        status = fail("%s: %s", argv[0], detrun_script_errmsg(sc));
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

static int is_slurm_option(const char *a)
{
    return strcmp(a, "--wait") == 0 || strcmp(a, "--shards") == 0 ||
           strncmp(a, "--shards=", 9) == 0;
}

int detrun_slurm_main(int argc, char **argv, int end, const detrun_options *ro,
                      const detrun_script_options *so, int shards, int wait)
{
    /* argv[0] is "slurm"; its own options come first, then detrun's options
     * up to argv[end] (getopt's optind), which the tasks get as they are. */
    int first = 1;
    while (first < end && is_slurm_option(argv[first]))
        first += strcmp(argv[first], "--shards") == 0 ? 2 : 1;
    int dashdash = end > first && strcmp(argv[end - 1], "--") == 0;
    for (int i = first; i < end - dashdash; i++)
        if (is_slurm_option(argv[i]))
            return fprintf(stderr, "detrun slurm: %s goes right after 'slurm'\n", argv[i]), 2;
    int s = end;
    while (dashdash && s < argc && argv[s][0] == '-')
        s++;
    if (s >= argc)
        return fprintf(stderr, "detrun slurm: no SCRIPT given\n"), 2;
    const char *script = argv[s];
    if (access(script, R_OK) != 0)
        return fail("%s: cannot read: %s", script,
                    dashdash ? "(sbatch options after -- are single words: --partition=gpu, "
                               "not -p gpu)" : strerror(errno));
    const char *out = so->out_dir != NULL ? so->out_dir : "results";

    if (plan(ro, so, argc - s, argv + s) != 0)
        return 1;
    int cells = 0;
    char name[256];
    if (read_plan(out, &cells, name, sizeof name) != 0)
        return 1;
    int n = shards > 0 && shards < cells ? shards : cells;

    char exe[PATH_MAX], cwd[PATH_MAX], outabs[2 * PATH_MAX], dir[2 * PATH_MAX + 16];
    ssize_t len_exe = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len_exe <= 0)
        return fail("cannot find the detrun executable: /proc/self/exe: %s%s", strerror(errno), "");
    exe[len_exe] = '\0';
    if (getcwd(cwd, sizeof cwd) == NULL)
        return fail("cannot get the working folder: %s%s", strerror(errno), "");
    snprintf(outabs, sizeof outabs, "%s%s%s", out[0] == '/' ? "" : cwd, out[0] == '/' ? "" : "/", out);
    snprintf(dir, sizeof dir, "%s/slurm", outabs);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return fail("%s: cannot create folder: %s", dir, strerror(errno));

    /* The tasks run where this command ran, with its options; -t follows
     * the CPUs Slurm gives each task unless the options set it. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return fail("out of memory%s%s", "", "");
    fprintf(f, "#!/bin/sh\n# Written by detrun slurm: array task K runs shard K of %s's %d cells.\n"
               "cd", name, cells);
    put_word(f, cwd);
    fputs(" || exit 1\nexec", f);
    put_word(f, exe);
    fputs(" --shard \"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\""
          " -t \"${SLURM_CPUS_PER_TASK:-1}\"", f);
    for (int i = first; i < end - dashdash; i++)
        put_word(f, argv[i]);
    for (int i = s; i < argc; i++)
        put_word(f, argv[i]);
    fputc('\n', f);
    fclose(f);
    char shard_sh[sizeof dir + 300], merge_sh[sizeof dir + 300];
    snprintf(shard_sh, sizeof shard_sh, "%s/%s-shards.sh", dir, name);
    int bad = write_script(shard_sh, text);
    free(text);
    if (bad)
        return 1;

    f = open_memstream(&text, &len);
    if (f == NULL)
        return fail("out of memory%s%s", "", "");
    fputs("#!/bin/sh\n# Written by detrun slurm: merges the shards once all have succeeded.\ncd", f);
    put_word(f, cwd);
    fputs(" || exit 1\nexec", f);
    put_word(f, exe);
    fputs(" merge", f);
    put_word(f, outabs);
    fputc('\n', f);
    fclose(f);
    snprintf(merge_sh, sizeof merge_sh, "%s/%s-merge.sh", dir, name);
    bad = write_script(merge_sh, text);
    free(text);
    if (bad)
        return 1;

    /* sbatch [ours] [the user's] SCRIPT: the user's options come later and win. */
    int nuser = s - end;
    char **args = calloc((size_t)nuser + 12, sizeof *args);
    char array[64], jobname[300], output[sizeof dir + 32], dep[96], mjobname[320],
        moutput[sizeof dir + 32];
    if (args == NULL)
        return fail("out of memory%s%s", "", "");
    snprintf(array, sizeof array, "--array=0-%d", n - 1);
    snprintf(jobname, sizeof jobname, "--job-name=detrun-%s", name);
    snprintf(output, sizeof output, "--output=%s/shard-%%a.out", dir);
    int k = 0;
    args[k++] = "sbatch";
    args[k++] = "--parsable";
    args[k++] = array;
    args[k++] = jobname;
    args[k++] = output;
    for (int i = 0; i < nuser; i++)
        args[k++] = argv[end + i];
    args[k++] = shard_sh;
    args[k] = NULL;
    char id[64], mid[64];
    int rc = sbatch(args, id, sizeof id);
    if (rc != 0 || id[0] == '\0') {
        free(args);
        return rc < 0 ? 1 : fail("sbatch refused the array (exit %s)%s", rc == 0 ? "0, no job id" : "non-zero", "");
    }

    snprintf(dep, sizeof dep, "--dependency=afterok:%s", id);
    snprintf(mjobname, sizeof mjobname, "--job-name=detrun-%s-merge", name);
    snprintf(moutput, sizeof moutput, "--output=%s/merge.out", dir);
    k = 0;
    args[k++] = "sbatch";
    args[k++] = "--parsable";
    args[k++] = dep;
    args[k++] = "--kill-on-invalid-dep=yes";
    args[k++] = mjobname;
    args[k++] = moutput;
    for (int i = 0; i < nuser; i++)
        args[k++] = argv[end + i];
    if (wait)
        args[k++] = "--wait";
    args[k++] = merge_sh;
    args[k] = NULL;
    printf("%s: %d cells in %d shards: job %s (array 0-%d), logs in %s\n", name, cells, n, id,
           n - 1, dir);
    fflush(stdout);
    char results[sizeof outabs + 300];
    snprintf(results, sizeof results, "%s/%s.json", outabs, name);
    unsigned long long before = file_version(results);
    rc = sbatch(args, mid, sizeof mid);
    free(args);
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
                        "runs only those\n", mid, dir, outabs);
        return 1;
    }
    printf("%s: merged by job %s: %s/%s.json, %s/%s.csv, report in %s/merge.out\n", name, mid,
           outabs, name, outabs, name, dir);
    return 0;
}
