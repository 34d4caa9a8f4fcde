/*
 * bench_load.c - time to load the 60000 training images and labels, from
 * the gzip files of the data folder and from raw copies of them.
 *
 *     bench_load [repeats (5)] [data dir (the default data folder)]
 *
 * Prints each load's wall and CPU seconds and the medians.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "detrun.h"

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Decompresses src into dst, so that the raw path can be timed too. */
static int gunzip_to(const char *src, const char *dst)
{
    gzFile g = gzopen(src, "rb");
    FILE *f = fopen(dst, "wb");
    static char buf[1 << 16];
    int n, ok = g != NULL && f != NULL;
    while (ok && (n = gzread(g, buf, sizeof buf)) > 0)
        ok = fwrite(buf, 1, (size_t)n, f) == (size_t)n;
    if (g != NULL)
        gzclose(g);
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    return ok;
}

static int bench(detrun_runtime *rt, const char *dir, const char *what, int repeats)
{
    double wall[64], cpu[64];
    for (int r = 0; r < repeats; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        detrun_dataset *ds = NULL;
        if (detrun_dataset_load_mnist(rt, dir, "train", &ds) != DETRUN_OK) {
            fprintf(stderr, "bench_load: %s\n", detrun_errmsg(rt));
            return 1;
        }
        wall[r] = now(CLOCK_MONOTONIC) - w0;
        cpu[r] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        printf("%s load %d: %zu images, %.3f s wall, %.3f s cpu\n", what, r + 1,
               detrun_dataset_count(ds), wall[r], cpu[r]);
        detrun_dataset_free(ds);
    }
    double mw = median(wall, repeats), mc = median(cpu, repeats);
    printf("%s: median of %d: %.3f s wall, %.3f s cpu\n", what, repeats, mw, mc);
    return 0;
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 5;
    const char *dir = argc > 2 ? argv[2] : detrun_default_data_dir();
    if (repeats < 1 || repeats > 64) {
        fprintf(stderr, "usage: bench_load [repeats 1..64] [data dir]\n");
        return 2;
    }
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "bench_load: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 1;
    }
    int rc = bench(rt, dir, "gzip", repeats);

    const char *tmp = getenv("TMPDIR");
    char raw[512], src[1024], dst[1024];
    snprintf(raw, sizeof raw, "%s/bench-load-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (rc == 0 && mkdtemp(raw) != NULL) {
        const char *files[2] = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte" };
        int ok = 1;
        for (int i = 0; i < 2 && ok; i++) {
            snprintf(src, sizeof src, "%s/%s.gz", dir, files[i]);
            snprintf(dst, sizeof dst, "%s/%s", raw, files[i]);
            ok = gunzip_to(src, dst);
        }
        if (ok)
            rc = bench(rt, raw, "raw", repeats);
        for (int i = 0; i < 2; i++) {
            snprintf(dst, sizeof dst, "%s/%s", raw, files[i]);
            remove(dst);
        }
        rmdir(raw);
    }
    detrun_close(rt);
    return rc;
}
