/* An allocator hook that fails the N-th allocation, for every N until a whole
 * session (open, load IDX files, build, compile, fit with validation, a
 * callback, a trace and a checkpoint, resume from that checkpoint, compare
 * the trace with itself, evaluate, predict, fingerprint, close) needs fewer:
 * every call
 * returns DETRUN_OK or DETRUN_ERR_MEMORY with a message, every block is given
 * back with the size it was made with, and nothing is left allocated.
 *
 * Two passes: the allocator keeps failing from the N-th allocation on (the
 * session stops at the first failure and cleans up), and it fails only the
 * N-th (the failed call is retried once and must then succeed, and when the
 * failure came before training the final fingerprint must be the one of an
 * undisturbed session). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "detrun.h"

#include "../common.h"

/* ---- the counting allocator ------------------------------------------------ */

typedef struct counter {
    long calls;        /* allocations asked for (new blocks and growths) */
    long fail_at;      /* the call that fails (from 1); 0: none */
    int sticky;        /* keep failing after fail_at */
    long failed;       /* how many were refused */
    long live;         /* blocks allocated and not freed */
    size_t live_bytes;
    int bad_osize;     /* a free or realloc said another size than the block's */
} counter;

/* Each block carries its size in front of it, to check osize. */
#define HDR 16

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counter *c = ud;
    unsigned char *base = ptr != NULL ? (unsigned char *)ptr - HDR : NULL;
    if (base != NULL) {
        size_t have;
        memcpy(&have, base, sizeof have);
        if (have != osize)
            c->bad_osize++;
    }
    if (nsize == 0) {
        if (base != NULL) {
            size_t have;
            memcpy(&have, base, sizeof have);
            c->live--;
            c->live_bytes -= have;
            free(base);
        }
        return NULL;
    }
    if (base == NULL || nsize > osize) {
        c->calls++;
        if (c->fail_at > 0 && (c->calls == c->fail_at || (c->sticky && c->calls > c->fail_at))) {
            c->failed++;
            return NULL;
        }
    }
    size_t old = 0;
    if (base != NULL)
        memcpy(&old, base, sizeof old);
    unsigned char *nb = realloc(base, nsize + HDR);
    if (nb == NULL)
        return NULL;
    memcpy(nb, &nsize, sizeof nsize);
    if (base == NULL)
        c->live++;
    c->live_bytes = c->live_bytes - old + nsize;
    return nb + HDR;
}

/* ---- a small data set as IDX files (raw images, gzip labels) ---------------- */

enum { ROWS = 48, SIDE = 10, CLASSES = 3 };
static char images_path[256], labels_path[256], trace_path[256], ckpt_path[256];

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int write_data(const char *dir)
{
    snprintf(images_path, sizeof images_path, "%s/qa-images-idx3-ubyte", dir);
    snprintf(labels_path, sizeof labels_path, "%s/qa-labels-idx1-ubyte.gz", dir);
    snprintf(trace_path, sizeof trace_path, "%s/qa.trace", dir);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/qa.ckpt", dir);
    unsigned char hdr[16];
    put_be32(hdr, 0x00000803);
    put_be32(hdr + 4, ROWS);
    put_be32(hdr + 8, SIDE);
    put_be32(hdr + 12, SIDE);
    FILE *f = fopen(images_path, "wb");
    if (f == NULL)
        return -1;
    fwrite(hdr, 1, 16, f);
    for (int i = 0; i < ROWS * SIDE * SIDE; i++)
        fputc((i * 37 + i / 7) & 0xff, f);
    if (fclose(f) != 0)
        return -1;
    gzFile g = gzopen(labels_path, "wb");
    if (g == NULL)
        return -1;
    put_be32(hdr, 0x00000801);
    put_be32(hdr + 4, ROWS);
    gzwrite(g, hdr, 8);
    for (int i = 0; i < ROWS; i++) {
        unsigned char l = (unsigned char)(i % CLASSES);
        gzwrite(g, &l, 1);
    }
    return gzclose(g) == Z_OK ? 0 : -1;
}

/* ---- one session ------------------------------------------------------------ */

typedef struct outcome {
    int completed;          /* every step succeeded (possibly after a retry) */
    long calls_before_fit;  /* allocations made before fit started */
    int failed_step;        /* the step of the first failure, -1 none */
    char fp[33];
} outcome;

static int on_epoch(void *ud, const detrun_epoch_stats *st)
{
    (void)st;
    (*(int *)ud)++;
    return 0;
}

/* Runs step `expr` (a status), which must give OK or MEMORY; on MEMORY with
 * retry, runs it again once (it must then succeed), else stops the session. */
#define STEP(n, expr)                                                                  \
    do {                                                                               \
        detrun_status st_ = (expr);                                                    \
        if (st_ != DETRUN_OK) {                                                        \
            CHECK(st_ == DETRUN_ERR_MEMORY, "fail_at %ld, step %d (%s): status %d: %s", \
                  c->fail_at, n, #expr, (int)st_, detrun_errmsg(rt));                  \
            CHECK(rt == NULL || detrun_errmsg(rt)[0] != '\0',                          \
                  "fail_at %ld, step %d: no message", c->fail_at, n);                  \
            if (o->failed_step < 0)                                                    \
                o->failed_step = n;                                                    \
            if (!retry)                                                                \
                goto out;                                                              \
            st_ = (expr);                                                              \
            CHECK(st_ == DETRUN_OK, "fail_at %ld, step %d (%s) retried: status %d: %s", \
                  c->fail_at, n, #expr, (int)st_, detrun_errmsg(rt));                  \
            if (st_ != DETRUN_OK)                                                      \
                goto out;                                                              \
        }                                                                              \
    } while (0)

static void session(counter *c, int retry, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->failed_step = -1;
    detrun_runtime *rt = NULL;
    detrun_dataset *ds = NULL;
    detrun_model *m = NULL;
    uint32_t perm[ROWS];
    size_t bounds[4];
    float x[2 * SIDE * SIDE], logits[2 * CLASSES];
    double loss = 0, acc = 0;
    int epochs_seen = 0, differ = 0;
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 2;
    opt.alloc = counting_alloc;
    opt.alloc_ud = c;

    detrun_status st = detrun_open(&rt, &opt);
    if (st != DETRUN_OK) {
        CHECK(st == DETRUN_ERR_MEMORY, "fail_at %ld: open: status %d", c->fail_at, (int)st);
        o->failed_step = 0;
        detrun_close(rt);   /* a handle that failed to open is closed like any other */
        rt = NULL;
        if (!retry)
            goto out;
        st = detrun_open(&rt, &opt);
        CHECK(st == DETRUN_OK, "fail_at %ld: open retried: %s", c->fail_at, detrun_errmsg(rt));
        if (st != DETRUN_OK)
            goto out;
    }
    STEP(1, detrun_dataset_load_idx(rt, images_path, labels_path, &ds));
    STEP(2, detrun_model_new(rt, 1, SIDE, SIDE, &m));
    STEP(3, detrun_model_add_conv2d(m, 4, 3, 3, 1, DETRUN_PAD_SAME, DETRUN_ACT_RELU));
    STEP(4, detrun_model_add_maxpool(m, 2, 2));
    STEP(5, detrun_model_add_flatten(m));
    STEP(6, detrun_model_add_dense(m, 8, DETRUN_ACT_RELU));
    STEP(7, detrun_model_add_dropout(m, 0.25f));
    STEP(8, detrun_model_add_dense(m, CLASSES, DETRUN_ACT_SOFTMAX));
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    STEP(9, detrun_model_compile(m, &adam, 7, 0));
    STEP(10, detrun_kfold(rt, ROWS, 3, 7, perm, bounds));
    o->calls_before_fit = c->calls;
    detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
    fo.epochs = 2;
    fo.batch = 8;
    fo.validation_split = 0.25;
    fo.seed = 7;
    fo.checkpoint = ckpt_path;
    STEP(11, detrun_trace_start(rt, trace_path, 2, 1));
    STEP(12, detrun_model_fit(m, ds, perm, bounds[2], &fo, on_epoch, &epochs_seen));
    STEP(13, detrun_trace_stop(rt));
    fo.resume = 1;   /* the fit is finished: reads the checkpoint and changes nothing */
    STEP(14, detrun_model_fit(m, ds, perm, bounds[2], &fo, on_epoch, &epochs_seen));
    STEP(15, detrun_trace_compare(rt, trace_path, trace_path, NULL, NULL, &differ));
    CHECK(!differ, "fail_at %ld: a trace differs from itself", c->fail_at);
    STEP(16, detrun_model_evaluate(m, ds, perm + bounds[2], bounds[3] - bounds[2], 5, &loss, &acc));
    STEP(17, detrun_model_evaluate(m, ds, NULL, 0, 100, &loss, &acc));
    for (int i = 0; i < 2 * SIDE * SIDE; i++)
        x[i] = (float)(i % 11) / 11.0f;
    STEP(18, detrun_model_predict(m, x, 2, logits));
    STEP(19, detrun_model_fingerprint(m, o->fp));
    o->completed = 1;
out:
    detrun_model_free(m);
    detrun_close(rt);
    detrun_dataset_free(ds);   /* a data set outlives its runtime */
}

int main(void)
{
    char dir[] = "/tmp/detrun-qa-alloc-XXXXXX";
    if (mkdtemp(dir) == NULL || write_data(dir) != 0) {
        printf("FAIL: cannot write the test data in %s\n", dir);
        return 1;
    }

    counter ref = { 0 };
    outcome want;
    session(&ref, 0, &want);
    CHECK(want.completed, "the session fails without an injected failure");
    CHECK(ref.live == 0 && ref.live_bytes == 0, "%ld blocks (%zu bytes) left after a clean session",
          ref.live, ref.live_bytes);
    CHECK(ref.bad_osize == 0, "%d frees or reallocs with a wrong old size", ref.bad_osize);
    long total = ref.calls;
    printf("a clean session makes %ld allocations (%ld before fit)\n", total, want.calls_before_fit);
    CHECK(total > 20, "only %ld allocations go through the hook", total);

    for (int retry = 0; retry <= 1; retry++) {
        long refused = 0;
        for (long n = 1; n <= total + 1; n++) {
            counter c = { 0 };
            c.fail_at = n;
            c.sticky = !retry;
            outcome got;
            session(&c, retry, &got);
            refused += c.failed;
            CHECK(c.live == 0 && c.live_bytes == 0,
                  "%s at %ld: %ld blocks (%zu bytes) left after close (failed step %d)",
                  retry ? "one failure" : "failures", n, c.live, c.live_bytes, got.failed_step);
            CHECK(c.bad_osize == 0, "%s at %ld: %d frees or reallocs with a wrong old size",
                  retry ? "one failure" : "failures", n, c.bad_osize);
            if (n <= total && !retry)
                CHECK(!got.completed, "failures from allocation %ld: the session still completed", n);
            if (retry) {
                CHECK(got.completed, "one failure at %ld (step %d): the retried session did not "
                      "complete", n, got.failed_step);
                if (got.completed && n <= want.calls_before_fit)
                    CHECK(strcmp(got.fp, want.fp) == 0,
                          "one failure at %ld (step %d): fingerprint %s, not %s", n,
                          got.failed_step, got.fp, want.fp);
            }
        }
        CHECK(refused >= total, "only %ld allocations were refused", refused);
    }

    unlink(images_path);
    unlink(labels_path);
    unlink(trace_path);
    unlink(ckpt_path);
    rmdir(dir);
    return test_report("test_alloc_fail");
}
