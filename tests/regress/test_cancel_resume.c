/* A fit cancelled inside an epoch (docs/regression.md, "Checkpoints"):
 * detrun_cancel from the per-step callback, at chosen steps, stops the fit
 * at the next step boundary with DETRUN_ERR_CANCELLED and a checkpoint of
 * that very step (format version 2); the resumed fit ends with the weights
 * of an uninterrupted one and shows the same epochs and the same running
 * losses, bit for bit, at 1 and 2 threads. A fit cancelled twice resumes
 * twice; a cancel while validating keeps every step of the epoch; a
 * checkpoint of an unknown version is refused naming it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regress_util.h"

#define ROWS 400
#define EPOCHS 3
#define BATCHES 6      /* 300 training rows in batches of 50 */

static detrun_runtime *rt;
static detrun_dataset *ds;

typedef struct watch {
    detrun_runtime *rt;
    int n;
    detrun_epoch_stats st[EPOCHS];
    double loss[EPOCHS][BATCHES];   /* running losses seen, by (epoch, batch) */
    int seen[EPOCHS][BATCHES];
    int cancel_epoch, cancel_batch; /* cancel after this step; -1: never */
} watch;

static int on_epoch(void *ud, const detrun_epoch_stats *st)
{
    watch *w = ud;
    if (w->n < EPOCHS)
        w->st[w->n++] = *st;
    return 0;
}

static int on_batch(void *ud, int epoch, int batch, int batches, double loss)
{
    watch *w = ud;
    if (epoch < EPOCHS && batch < BATCHES && batches == BATCHES) {
        w->loss[epoch][batch] = loss;
        w->seen[epoch][batch] = 1;
    }
    if (epoch == w->cancel_epoch && batch == w->cancel_batch)
        detrun_cancel(w->rt);
    return 0;
}

static detrun_model *network(void)
{
    detrun_model *m = test_reference_network(rt, 32);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    if (m == NULL || detrun_model_compile(m, &adam, 3, 2) != DETRUN_OK) {
        printf("FAIL network: %s\n", detrun_errmsg(rt));
        exit(1);
    }
    return m;
}

static detrun_status fit(const char *ckpt, int resume, watch *w, char fp[33])
{
    detrun_fit_options o = DETRUN_FIT_OPTIONS_INIT;
    o.epochs = EPOCHS;
    o.batch = 50;
    o.validation_split = 0.25;
    o.seed = 11;
    o.stream = 2;
    o.checkpoint = ckpt;
    o.resume = resume;
    o.on_batch = on_batch;
    o.batch_ud = w;
    w->rt = rt;
    detrun_model *m = network();
    detrun_status st = detrun_model_fit(m, ds, NULL, 0, &o, on_epoch, w);
    if (detrun_model_fingerprint(m, fp) != DETRUN_OK)
        snprintf(fp, 33, "error");
    detrun_model_free(m);
    return st;
}

static uint32_t file_version(const char *path)
{
    size_t len;
    unsigned char *b = slurp(path, &len);
    uint32_t v = b != NULL && len > 12 ? (uint32_t)b[8] | (uint32_t)b[9] << 8 : 0;
    free(b);
    return v;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The epochs and running losses of w agree with those of the full fit. */
static void same_as_full(const watch *full, const watch *w, const char *why)
{
    CHECK(w->n == EPOCHS, "%s: %d epochs seen", why, w->n);
    for (int i = 0; i < w->n && i < EPOCHS; i++) {
        const detrun_epoch_stats *x = &full->st[i], *y = &w->st[i];
        CHECK(x->epoch == y->epoch && strcmp(x->fingerprint, y->fingerprint) == 0 &&
              same_bits(x->loss, y->loss) && same_bits(x->accuracy, y->accuracy) &&
              same_bits(x->val_loss, y->val_loss) && same_bits(x->val_accuracy, y->val_accuracy),
              "%s: epoch %d differs (loss %.17g vs %.17g)", why, i, x->loss, y->loss);
    }
    for (int e = 0; e < EPOCHS; e++)
        for (int b = 0; b < BATCHES; b++)
            CHECK(!w->seen[e][b] || same_bits(w->loss[e][b], full->loss[e][b]),
                  "%s: running loss of epoch %d batch %d is %.17g, want %.17g", why, e, b,
                  w->loss[e][b], full->loss[e][b]);
}

/* Cancelled after step (e1, b1), resumed, and (with e2 >= 0) cancelled
 * again after (e2, b2) and resumed again. */
static void cancel_and_resume(const char *ckpt, const watch *full, const char *want, int e1,
                              int b1, int e2, int b2)
{
    char why[96], fp[33];
    snprintf(why, sizeof why, "cancelled after epoch %d batch %d (then %d %d) at %d threads", e1,
             b1, e2, b2, detrun_get_threads(rt));
    unlink(ckpt);
    watch w;
    memset(&w, 0, sizeof w);
    w.cancel_epoch = e1;
    w.cancel_batch = b1;
    detrun_status st = fit(ckpt, 1, &w, fp);
    CHECK(st == DETRUN_ERR_CANCELLED, "%s: status %d: %s", why, st, detrun_errmsg(rt));
    CHECK(strstr(detrun_errmsg(rt), "resume to go on") != NULL, "%s: message '%s'", why,
          detrun_errmsg(rt));
    CHECK(file_version(ckpt) == 2, "%s: checkpoint version %u, want 2 (inside an epoch)", why,
          file_version(ckpt));
    detrun_cancel_reset(rt);
    watch rest;
    memset(&rest, 0, sizeof rest);
    rest.cancel_epoch = e2;
    rest.cancel_batch = b2;
    st = fit(ckpt, 1, &rest, fp);
    if (e2 >= 0) {
        CHECK(st == DETRUN_ERR_CANCELLED, "%s: second status %d", why, st);
        detrun_cancel_reset(rt);
        memset(&rest, 0, sizeof rest);
        rest.cancel_epoch = -1;
        st = fit(ckpt, 1, &rest, fp);
    }
    CHECK(st == DETRUN_OK, "%s: resume: %s", why, detrun_errmsg(rt));
    CHECK(strcmp(fp, want) == 0, "%s: %s, want %s", why, fp, want);
    CHECK(file_version(ckpt) == 1, "%s: the finished fit's checkpoint is version %u", why,
          file_version(ckpt));
    /* The resumed part reports the running losses of the full fit; the
     * replayed epochs and the finished one are the full fit's. */
    for (int b = 0; b <= b1 && b < BATCHES; b++)
        rest.seen[e1][b] = 0;   /* not reported again: the resume starts after them */
    same_as_full(full, &rest, why);
    int later = 0;
    for (int b = b1 + 1; b < BATCHES; b++)
        later += rest.seen[e1][b];
    CHECK(e2 >= 0 || later == BATCHES - 1 - b1, "%s: %d later steps of epoch %d reported", why,
          later, e1);
}

/* A file of a version this detrun does not know is refused, naming it. */
static void unknown_version(const char *ckpt)
{
    size_t len;
    unsigned char *b = slurp(ckpt, &len);
    CHECK(b != NULL && len > 40, "read %s", ckpt);
    if (b == NULL)
        return;
    b[8] = 3;
    rechecksum(b, len);
    spit(ckpt, b, len);
    free(b);
    watch w;
    memset(&w, 0, sizeof w);
    w.cancel_epoch = -1;
    char fp[33];
    detrun_status st = fit(ckpt, 1, &w, fp);
    CHECK(st == DETRUN_ERR_FORMAT && strstr(detrun_errmsg(rt), "version 3") != NULL &&
          strstr(detrun_errmsg(rt), ckpt) != NULL, "version 3: %d '%s'", st, detrun_errmsg(rt));
}

int main(void)
{
    char dir[] = "/tmp/detrun-cancel-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char ckpt[256];
    snprintf(ckpt, sizeof ckpt, "%s/fit.ckpt", dir);
    for (int threads = 1; threads <= 2; threads++) {
        detrun_options o = DETRUN_OPTIONS_INIT;
        o.threads = threads;
        if (detrun_open(&rt, &o) != DETRUN_OK ||
            detrun_dataset_load_mnist(rt, getenv("DETRUN_TEST_DATA"), "train", &ds) != DETRUN_OK) {
            printf("FAIL open: %s\n", detrun_errmsg(rt));
            return 1;
        }
        detrun_dataset_limit(ds, ROWS);
        watch full;
        memset(&full, 0, sizeof full);
        full.cancel_epoch = -1;
        char want[33];
        unlink(ckpt);
        CHECK(fit(ckpt, 0, &full, want) == DETRUN_OK, "full fit: %s", detrun_errmsg(rt));
        CHECK(full.n == EPOCHS, "full fit: %d epochs", full.n);
        cancel_and_resume(ckpt, &full, want, 0, 0, -1, -1);   /* after the first step */
        cancel_and_resume(ckpt, &full, want, 0, 2, -1, -1);
        cancel_and_resume(ckpt, &full, want, 1, 3, -1, -1);
        cancel_and_resume(ckpt, &full, want, 2, 4, -1, -1);
        cancel_and_resume(ckpt, &full, want, 1, 5, -1, -1);   /* while validating */
        cancel_and_resume(ckpt, &full, want, 0, 1, 1, 4);     /* twice */
        cancel_and_resume(ckpt, &full, want, 1, 1, 1, 2);     /* twice in one epoch */
        if (threads == 2)
            unknown_version(ckpt);
        detrun_dataset_free(ds);
        detrun_close(rt);
    }
    unlink(ckpt);
    rmdir(dir);
    return test_report("test_cancel_resume");
}
