/*
 * train.c - fit, evaluate and predict.
 *
 * Per-sample losses and hits stay in backend memory for the whole epoch and
 * come back to the host once at its end, so a GPU is not synchronised per
 * batch; their means are taken in double, samples in row order
 * (docs/determinism.md, "softmax + sparse categorical cross-entropy").
 *
 * Over 600 lines: the epoch loop, its cancel and resume inside an epoch and
 * evaluate share the fit's static state and per-sample results.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch_step.h"
#include "checkpoint.h"
#include "dataset.h"
#include "trace.h"
#include "model.h"
#include "philox.h"

/* Streams are 24 bits (philox.h: the key word is purpose << 24 | stream). */
#define STREAM_LIMIT (1u << 24)

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Keeps one device copy of the data set per model: uploading 47 MB per fit
 * would cost more than a short fit. The key is the data set's address, its
 * identity and its size, so a freed data set whose address is reused is never
 * mistaken for the old one, and a bound one costs nothing to bind again. */
static detrun_status bind_dataset(detrun_model *m, const detrun_dataset *ds, const char *what)
{
    detrun_runtime *rt = m->rt;
    detrun_backend *be = rt->backend;
    int c, h, w;
    detrun_dataset_shape(ds, &c, &h, &w);
    if (c != m->c || h != m->h || w != m->w)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "%s: the data set's images are %dx%dx%d but the model takes %dx%dx%d",
                             what, c, h, w, m->c, m->h, m->w);
    int classes = detrun_model_classes(m);
    const char *last = m->layers[m->nlayers - 1].name;
    if (detrun_dataset_classes(ds) > classes)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "%s: the data set has %d classes but %s gives only %d logits", what,
                             detrun_dataset_classes(ds), last, classes);
    size_t count = detrun_dataset_count(ds);
    size_t pixels = (size_t)c * h * w;
    const uint8_t *images = detrun_dataset_images(ds);
    const uint8_t *labels = detrun_dataset_labels(ds);
    uint64_t identity = detrun_dataset_identity(ds);
    if (m->ds_key == (const void *)ds && m->ds_identity == identity && m->ds_count == count &&
        m->ds_pixels == pixels && m->ds_images != NULL)
        return DETRUN_OK;
    for (size_t i = 0; i < count; i++)
        if (labels[i] >= classes)
            return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                                 "%s: label %d of row %zu is not below the %d logits of %s",
                                 what, labels[i], i, classes, last);
    if (!m->ds_borrowed) {
        be->ops->free(be, m->ds_images);
        be->ops->free(be, m->ds_labels);
    }
    m->ds_key = NULL;
    m->ds_borrowed = 0;
    /* The CPU backend's memory is host memory: it reads the data set where
     * it is, so that processes forked after loading it share its pages
     * instead of each holding a copy (docs/architecture.md). */
    if (strcmp(be->name, "cpu") == 0) {
        m->ds_images = (uint8_t *)images;
        m->ds_labels = (uint8_t *)labels;
        m->ds_borrowed = 1;
        m->ds_key = ds;
        m->ds_count = count;
        m->ds_pixels = pixels;
        m->ds_identity = identity;
        return DETRUN_OK;
    }
    m->ds_images = be->ops->alloc(be, count * pixels);
    m->ds_labels = be->ops->alloc(be, count);
    if (m->ds_images == NULL || m->ds_labels == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: no memory on %s for %zu images", what,
                             rt->device_name, count);
    detrun_status st = be->ops->upload(be, m->ds_images, images, count * pixels);
    if (st == DETRUN_OK)
        st = be->ops->upload(be, m->ds_labels, labels, count);
    if (st != DETRUN_OK)
        return detrun_seterr(rt, st, "%s: could not upload the data set to %s", what,
                             rt->device_name);
    m->ds_key = ds;
    m->ds_count = count;
    m->ds_pixels = pixels;
    m->ds_identity = identity;
    return DETRUN_OK;
}

static detrun_status check_rows(detrun_model *m, const uint32_t *rows, size_t nrows,
                                size_t count, const char *what)
{
    for (size_t i = 0; i < nrows; i++)
        if (rows[i] >= count)
            return detrun_seterr(m->rt, DETRUN_ERR_ARG,
                                 "%s: rows[%zu] = %u is past the data set's %zu rows", what, i,
                                 rows[i], count);
    return DETRUN_OK;
}

/* rows, or 0..count-1 in a new host array (*owned) when rows is NULL. */
static detrun_status resolve_rows(detrun_model *m, const detrun_dataset *ds,
                                  const uint32_t **rows, size_t *nrows, uint32_t **owned,
                                  const char *what)
{
    *owned = NULL;
    size_t count = detrun_dataset_count(ds);
    if (*rows != NULL)
        return check_rows(m, *rows, *nrows, count, what);
    if (count > UINT32_MAX)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: too many rows", what);
    uint32_t *all = detrun_calloc(m->rt, count, sizeof *all);
    if (all == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_MEMORY, "%s: out of memory", what);
    for (size_t i = 0; i < count; i++)
        all[i] = (uint32_t)i;
    *owned = all;
    *rows = all;
    *nrows = count;
    return DETRUN_OK;
}

/* Scratch for per-sample results: backend arrays and their host copies. */
typedef struct sample_results {
    size_t n;
    float *loss, *correct;          /* backend */
    float *hloss, *hcorrect;        /* host */
} sample_results;

static detrun_status results_new(detrun_model *m, sample_results *r, size_t n, const char *what)
{
    detrun_backend *be = m->rt->backend;
    memset(r, 0, sizeof *r);
    r->n = n;
    r->loss = be->ops->alloc(be, n * sizeof(float));
    r->correct = be->ops->alloc(be, n * sizeof(float));
    r->hloss = detrun_calloc(m->rt, n, sizeof(float));
    r->hcorrect = detrun_calloc(m->rt, n, sizeof(float));
    if (r->loss == NULL || r->correct == NULL || r->hloss == NULL || r->hcorrect == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_MEMORY,
                             "%s: no memory for the results of %zu samples", what, n);
    return DETRUN_OK;
}

static void results_free(detrun_model *m, sample_results *r)
{
    detrun_backend *be = m->rt->backend;
    be->ops->free(be, r->loss);
    be->ops->free(be, r->correct);
    detrun_free(m->rt, r->hloss, r->n * sizeof(float));
    detrun_free(m->rt, r->hcorrect, r->n * sizeof(float));
    memset(r, 0, sizeof *r);
}

static detrun_status results_download(detrun_model *m, sample_results *r, const char *what)
{
    detrun_backend *be = m->rt->backend;
    detrun_status st = be->ops->download(be, r->hloss, r->loss, r->n * sizeof(float));
    if (st == DETRUN_OK)
        st = be->ops->download(be, r->hcorrect, r->correct, r->n * sizeof(float));
    if (st != DETRUN_OK)
        return detrun_seterr(m->rt, st, "%s: could not download the losses", what);
    return DETRUN_OK;
}

static void results_mean(const sample_results *r, double *loss, double *accuracy)
{
    double sl = 0.0, sa = 0.0;
    for (size_t i = 0; i < r->n; i++) {
        sl += (double)r->hloss[i];
        sa += (double)r->hcorrect[i];
    }
    *loss = r->n ? sl / (double)r->n : NAN;
    *accuracy = r->n ? sa / (double)r->n : NAN;
}

/* Forward only, dropout off, over rows in batches; the data set is bound. */
static detrun_status eval_rows(detrun_model *m, const uint32_t *rows, size_t nrows, int batch,
                               double *loss, double *accuracy, const char *what)
{
    detrun_backend *be = m->rt->backend;
    int classes = detrun_model_classes(m);
    int nb_max = (size_t)batch < nrows ? batch : (int)nrows;
    detrun_status st = detrun_model_reserve(m, nb_max > 0 ? nb_max : 1);
    if (st != DETRUN_OK)
        return st;
    sample_results r;
    st = results_new(m, &r, nrows, what);
    if (st == DETRUN_OK) {
        for (size_t off = 0; off < nrows && st == DETRUN_OK; off += (size_t)batch) {
            int nb = nrows - off < (size_t)batch ? (int)(nrows - off) : batch;
            if ((st = detrun_check_cancel(m->rt, what, off / (size_t)batch)) != DETRUN_OK)
                break;
            be->ops->gather(be, m->x, m->y, m->ds_images, m->ds_labels, m->ds_pixels, rows + off, nb);
            const float *logits = detrun_model_forward(m, nb, 0, NULL);
            be->ops->softmax_xent(be, NULL, r.loss + off, r.correct + off, logits, m->y, nb, classes);
        }
        if (st == DETRUN_OK)
            st = results_download(m, &r, what);
        if (st == DETRUN_OK)
            results_mean(&r, loss, accuracy);
    }
    results_free(m, &r);
    return st;
}

detrun_status detrun_model_evaluate(detrun_model *m, const detrun_dataset *ds,
                                    const uint32_t *rows, size_t nrows, int batch, double *loss,
                                    double *accuracy)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    const char *what = "evaluate";
    if (ds == NULL || loss == NULL || accuracy == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: NULL data set or result pointer", what);
    if (!m->compiled)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: the model is not compiled yet", what);
    if (batch <= 0)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: batch %d must be positive", what, batch);
    uint32_t *owned = NULL;
    detrun_status st = resolve_rows(m, ds, &rows, &nrows, &owned, what);
    if (st == DETRUN_OK && nrows == 0)
        st = detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: no rows to evaluate", what);
    if (st == DETRUN_OK)
        st = bind_dataset(m, ds, what);
    if (st == DETRUN_OK)
        st = eval_rows(m, rows, nrows, batch, loss, accuracy, what);
    if (owned != NULL)
        detrun_free(m->rt, owned, nrows * sizeof *owned);
    return st;
}

detrun_status detrun_model_predict(detrun_model *m, const float *x, size_t n, float *logits)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    if (x == NULL || logits == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "predict: NULL input or output");
    if (!m->compiled)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "predict: the model is not compiled yet");
    detrun_backend *be = m->rt->backend;
    size_t in_size = (size_t)m->c * m->h * m->w;
    size_t classes = (size_t)detrun_model_classes(m);
    /* Any chunk size gives the same per-sample logits (R7). */
    int chunk = m->cap_batch > 0 ? m->cap_batch : 256;
    if ((size_t)chunk > n)
        chunk = n > 0 ? (int)n : 1;
    detrun_status st = detrun_model_reserve(m, chunk);
    if (st != DETRUN_OK)
        return st;
    for (size_t off = 0; off < n; off += (size_t)chunk) {
        int nb = n - off < (size_t)chunk ? (int)(n - off) : chunk;
        st = be->ops->upload(be, m->x, x + off * in_size, (size_t)nb * in_size * sizeof(float));
        if (st != DETRUN_OK)
            return detrun_seterr(m->rt, st, "predict: could not upload the images");
        const float *out = detrun_model_forward(m, nb, 0, NULL);
        st = be->ops->download(be, logits + off * classes, out, (size_t)nb * classes * sizeof(float));
        if (st != DETRUN_OK)
            return detrun_seterr(m->rt, st, "predict: could not download the logits");
    }
    return DETRUN_OK;
}

/* The largest per-sample loss training accepts. Cross-entropy starts near
 * ln(classes) and falls; a sample loss of 1e6 means the logits differ by a
 * million, that is the weights diverged (an lr of 1e30 gives 1e32 while
 * every value stays finite). DETRUN_MAX_LOSS raises it (docs/c-api.md). */
#define DEFAULT_MAX_LOSS 1e6

static double max_loss(void)
{
    const char *env = getenv("DETRUN_MAX_LOSS");
    char *end;
    double v = env != NULL ? strtod(env, &end) : 0.0;
    return env != NULL && end != env && *end == '\0' && v > 0.0 ? v : DEFAULT_MAX_LOSS;
}

/* The first non-finite or diverged per-sample loss of the epoch, as an error
 * naming it; the layer is also kept as data (detrun_error_layer). */
static detrun_status check_epoch_losses(detrun_model *m, const sample_results *r, int epoch,
                                        uint64_t first_step, int batch)
{
    double limit = max_loss();
    for (size_t i = 0; i < r->n; i++) {
        float v = r->hloss[i];
        if (v == v && v - v == 0.0f && (double)v > limit) {
            size_t b = i / (size_t)batch;
            int layer = m->nlayers - 1;
            const char *name = m->layers[layer].name;
            detrun_status st = detrun_seterr(
                m->rt, DETRUN_ERR_NUMERIC,
                "fit: the loss diverged to %g (above %g) at epoch %d, step %llu (batch %zu of "
                "the epoch, sample %zu of the batch; layer %d, %s): lower the learning rate, "
                "or raise the limit with DETRUN_MAX_LOSS", (double)v, limit, epoch,
                (unsigned long long)(first_step + b), b, i % (size_t)batch, layer, name);
            m->rt->err_layer = layer;
            snprintf(m->rt->err_layer_name, sizeof m->rt->err_layer_name, "%s", name);
            return st;
        }
        if (v != v || v - v != 0.0f) {
            size_t b = i / (size_t)batch;
            /* The loss is where the value was seen: the last layer's output.
             * (By the epoch's end every layer's weights may carry it.) */
            int layer = m->nlayers - 1;
            const char *name = m->layers[layer].name;
            detrun_status st = detrun_seterr(
                m->rt, DETRUN_ERR_NUMERIC,
                "fit: the loss became %s at epoch %d, step %llu (batch %zu of the epoch, "
                "sample %zu of the batch; layer %d, %s)",
                v != v ? "NaN" : "infinite", epoch, (unsigned long long)(first_step + b), b,
                i % (size_t)batch, layer, name);
            m->rt->err_layer = layer;
            snprintf(m->rt->err_layer_name, sizeof m->rt->err_layer_name, "%s", name);
            return st;
        }
    }
    return DETRUN_OK;
}

/* The options' ranges, checked here so that every host gets the same answer. */
static detrun_status check_fit_options(detrun_runtime *rt, const detrun_fit_options *opt)
{
    if (opt->epochs < 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "fit: epochs %d is negative", opt->epochs);
    if (opt->batch <= 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "fit: batch %d must be positive", opt->batch);
    if (!(opt->validation_split >= 0.0 && opt->validation_split < 1.0))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "fit: validation_split %g is not in [0, 1)",
                             opt->validation_split);
    if (opt->shuffle != 0 && opt->shuffle != 1)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "fit: shuffle %d is neither 0 nor 1",
                             opt->shuffle);
    /* Philox's key word is purpose << 24 | stream: a wider stream would
     * alias another purpose's draws (stream 1 << 24 would be stream 0). */
    if (opt->stream >= STREAM_LIMIT)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "fit: stream %lu is out of range (streams are 24 bits: 0 to %lu)",
                             (unsigned long)opt->stream, (unsigned long)STREAM_LIMIT - 1);
    if (opt->checkpoint != NULL && opt->checkpoint[0] == '\0')
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "fit: checkpoint is an empty path (NULL for no checkpoint)");
    if (opt->resume != 0 && opt->resume != 1)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "fit: resume %d is neither 0 nor 1",
                             opt->resume);
    return DETRUN_OK;
}

/* What one fit carries from epoch to epoch. */
typedef struct fit_run {
    detrun_model *m;
    const detrun_dataset *ds;
    const detrun_fit_options *opt;
    const uint32_t *rows;       /* training rows first, then validation rows */
    size_t ntrain, nval;
    uint32_t *order;            /* this epoch's training rows */
    sample_results r;
    uint64_t fit_step;
    detrun_fit_ckpt *ckpt;      /* NULL: no checkpoint */
    double t0;                  /* when this epoch started (less its time before a resume) */
    /* A fit resumed inside an epoch: its batches and samples already run,
     * and that part's seconds; all zero once that epoch has begun. */
    int start_batch;
    size_t start_off;
    double start_seconds;
} fit_run;

/* The per-step callback. Only while one is set do the step's per-sample
 * losses come to the host at once; they join the epoch's running sum in row
 * order, the order results_mean adds them in. */
static detrun_status batch_callback(fit_run *f, int epoch, size_t off, int nb, double *sum,
                                    int *stop)
{
    const detrun_fit_options *opt = f->opt;
    detrun_backend *be = f->m->rt->backend;
    detrun_status st = be->ops->download(be, f->r.hloss + off, f->r.loss + off,
                                         (size_t)nb * sizeof(float));
    if (st != DETRUN_OK)
        return detrun_seterr(f->m->rt, st, "fit: could not download the losses");
    for (int i = 0; i < nb; i++)
        *sum += (double)f->r.hloss[off + (size_t)i];
    size_t batches = (f->ntrain + (size_t)opt->batch - 1) / (size_t)opt->batch;
    *stop = opt->on_batch(opt->batch_ud, epoch, (int)(off / (size_t)opt->batch), (int)batches,
                          *sum / (double)(off + (size_t)nb)) != 0;
    return DETRUN_OK;
}

/* A fit cancelled inside epoch `epoch` after its first n training samples
 * (whole batches): with a checkpoint, that position is saved (weights,
 * optimiser, counters and the epoch's per-sample results so far), so that a
 * resume goes on from this very step. Returns the cancellation (why), or
 * the error that kept the checkpoint from being written. */
static detrun_status cancelled_inside(fit_run *f, int epoch, size_t n, detrun_status why)
{
    if (f->ckpt == NULL || n == 0)
        return why;
    detrun_model *m = f->m;
    detrun_backend *be = m->rt->backend;
    detrun_status st = be->ops->download(be, f->r.hloss, f->r.loss, n * sizeof(float));
    if (st == DETRUN_OK)
        st = be->ops->download(be, f->r.hcorrect, f->r.correct, n * sizeof(float));
    if (st != DETRUN_OK)
        return detrun_seterr(m->rt, st, "fit: could not download the losses");
    size_t batch = (size_t)f->opt->batch;
    int batches = (int)((n + batch - 1) / batch);
    st = detrun_fit_ckpt_inside(f->ckpt, m, epoch, batches, f->r.hloss, f->r.hcorrect, n,
                                now_seconds() - f->t0);
    if (st != DETRUN_OK)
        return st;
    return detrun_seterr(m->rt, DETRUN_ERR_CANCELLED,
                         "fit: cancelled before step %llu (epoch %d, after batch %d of the "
                         "epoch); %s holds the fit there: resume to go on",
                         (unsigned long long)f->fit_step, epoch, batches, f->opt->checkpoint);
}

/* The part of an epoch that a checkpoint inside it holds, put back: its
 * per-sample results, where the rest of the epoch adds to them. */
static detrun_status restore_inside(fit_run *f, const detrun_fit_start *at)
{
    detrun_backend *be = f->m->rt->backend;
    size_t bytes = at->nsamples * sizeof(float);
    memcpy(f->r.hloss, at->loss, bytes);
    memcpy(f->r.hcorrect, at->hit, bytes);
    detrun_status st = be->ops->upload(be, f->r.loss, at->loss, bytes);
    if (st == DETRUN_OK)
        st = be->ops->upload(be, f->r.correct, at->hit, bytes);
    if (st != DETRUN_OK)
        return detrun_seterr(f->m->rt, st, "fit: could not upload the epoch's losses so far");
    f->start_batch = at->batch;
    f->start_off = at->nsamples;
    f->start_seconds = at->seconds;
    return DETRUN_OK;
}

/* The optimiser steps of one epoch (from where a resume left it), then its
 * per-sample losses checked. *stop is set when the per-step callback asks to
 * stop (the epoch is then left unfinished). */
static detrun_status train_epoch(fit_run *f, int epoch, int *stop)
{
    detrun_model *m = f->m;
    detrun_runtime *rt = m->rt;
    const detrun_fit_options *opt = f->opt;
    int batch = opt->batch;
    size_t start = f->start_off;
    uint64_t first_step = f->fit_step - (uint64_t)f->start_batch;
    f->start_off = 0;
    f->start_batch = 0;
    /* The running loss adds the samples in row order from the epoch's
     * first: those of a resumed part first, one by one as batch_callback
     * would have. */
    double running = 0.0;
    for (size_t i = 0; opt->on_batch != NULL && i < start; i++)
        running += (double)f->r.hloss[i];
    detrun_status st;
    /* Each epoch shuffles the rows in their given order, so epoch e's order
     * depends on (seed, stream, e) alone. */
    memcpy(f->order, f->rows, f->ntrain * sizeof *f->order);
    if (opt->shuffle)
        detrun_shuffle(f->order, f->ntrain, opt->seed, DETRUN_RNG_SHUFFLE, opt->stream,
                       (uint32_t)epoch);
    for (size_t off = start; off < f->ntrain; off += (size_t)batch) {
        int nb = f->ntrain - off < (size_t)batch ? (int)(f->ntrain - off) : batch;
        if ((st = detrun_check_cancel(rt, "fit", f->fit_step)) != DETRUN_OK)
            return cancelled_inside(f, epoch, off, st);
        detrun_rng_addr addr = { opt->seed, opt->stream, 0, (uint32_t)f->fit_step };
        st = detrun_batch_step(m, f->order + off, nb, &addr, f->r.loss + off, f->r.correct + off);
        if (st != DETRUN_OK)
            return st;
        if (detrun_trace_wants(rt->trace, f->fit_step) &&
            (st = detrun_trace_model(rt->trace, m, nb, epoch, f->fit_step)) != DETRUN_OK)
            return st;
        f->fit_step++;
        if (opt->on_batch != NULL &&
            ((st = batch_callback(f, epoch, off, nb, &running, stop)) != DETRUN_OK || *stop))
            return st;
    }
    if ((st = results_download(m, &f->r, "fit")) != DETRUN_OK)
        return st;
    return check_epoch_losses(m, &f->r, epoch, first_step, batch);
}

/* One epoch and its report: statistics, validation, fingerprint, callback
 * and checkpoint. *stop is set when the callback asks to stop. */
static detrun_status run_epoch(fit_run *f, int epoch, detrun_epoch_fn cb, void *ud,
                               detrun_fit_ckpt *ckpt, int *stop)
{
    detrun_model *m = f->m;
    detrun_status st;
    /* The callback may have evaluated the model on another data set, which
     * took the model's device copy: bound again (a no-op when it is still
     * this data set's, which cannot have changed: the fit holds it). */
    if ((st = bind_dataset(m, f->ds, "fit")) != DETRUN_OK)
        return st;
    f->t0 = now_seconds() - f->start_seconds;
    f->start_seconds = 0.0;
    if ((st = train_epoch(f, epoch, stop)) != DETRUN_OK || *stop)
        return st;
    detrun_epoch_stats s;
    memset(&s, 0, sizeof s);
    s.epoch = epoch;
    results_mean(&f->r, &s.loss, &s.accuracy);
    s.val_loss = s.val_accuracy = NAN;
    /* Cancelled while validating: every step of the epoch is kept. */
    if (f->nval > 0 &&
        (st = eval_rows(m, f->rows + f->ntrain, f->nval, f->opt->batch, &s.val_loss,
                        &s.val_accuracy, "fit (validation)")) != DETRUN_OK)
        return st == DETRUN_ERR_CANCELLED ? cancelled_inside(f, epoch, f->ntrain, st) : st;
    if ((st = detrun_model_fingerprint(m, s.fingerprint)) != DETRUN_OK)
        return st;
    s.seconds = now_seconds() - f->t0;
    *stop = cb != NULL && cb(ud, &s) != 0;
    if (ckpt != NULL && (st = detrun_fit_ckpt_epoch(ckpt, m, &s)) != DETRUN_OK)
        return st;
    return DETRUN_OK;
}

/* The rows split, the data bound, the buffers made: everything but epochs. */
static detrun_status fit_prepare(fit_run *f, size_t nrows)
{
    detrun_model *m = f->m;
    detrun_runtime *rt = m->rt;
    const detrun_fit_options *opt = f->opt;
    f->ntrain = detrun_validation_split(nrows, opt->validation_split);
    f->nval = nrows - f->ntrain;
    if (f->ntrain == 0)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "fit: no training rows (%zu rows, validation_split %g)", nrows,
                             opt->validation_split);
    detrun_status st = bind_dataset(m, f->ds, "fit");
    if (st != DETRUN_OK)
        return st;
    int nb_max = (size_t)opt->batch < f->ntrain ? opt->batch : (int)f->ntrain;
    if ((st = detrun_model_reserve(m, nb_max)) != DETRUN_OK)
        return st;
    if ((st = results_new(m, &f->r, f->ntrain, "fit")) != DETRUN_OK)
        return st;
    f->order = detrun_calloc(rt, f->ntrain, sizeof *f->order);
    if (f->order == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "fit: out of memory");
    return DETRUN_OK;
}

detrun_status detrun_model_fit(detrun_model *m, const detrun_dataset *ds, const uint32_t *rows,
                               size_t nrows, const detrun_fit_options *opt, detrun_epoch_fn cb,
                               void *ud)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    detrun_runtime *rt = m->rt;
    detrun_fit_options defaults = DETRUN_FIT_OPTIONS_INIT;
    if (opt == NULL)
        opt = &defaults;
    rt->err_layer = -1;
    if (ds == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "fit: no data set");
    if (!m->compiled)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "fit: the model is not compiled yet");
    detrun_status st = check_fit_options(rt, opt);
    if (st != DETRUN_OK)
        return st;

    fit_run f;
    memset(&f, 0, sizeof f);
    f.m = m;
    f.ds = ds;
    f.opt = opt;
    uint32_t *owned = NULL;
    detrun_fit_ckpt *ckpt = NULL;
    detrun_dataset_use(ds, rt);
    if ((st = resolve_rows(m, ds, &rows, &nrows, &owned, "fit")) != DETRUN_OK)
        goto done;
    f.rows = rows;
    if ((st = fit_prepare(&f, nrows)) != DETRUN_OK)
        goto done;
    detrun_fit_start at;
    memset(&at, 0, sizeof at);
    int finished = 0;
    if (opt->checkpoint != NULL) {
        st = detrun_fit_ckpt_begin(m, rows, nrows, f.ntrain, opt, cb, ud, &ckpt, &at, &finished);
        if (st != DETRUN_OK || finished)
            goto done;
        if (at.batch > 0 && (st = restore_inside(&f, &at)) != DETRUN_OK)
            goto done;
    }
    f.ckpt = ckpt;
    if (rt->trace != NULL &&
        (st = detrun_trace_fit(rt->trace, rt->mode, opt->seed, opt->stream, NULL)) != DETRUN_OK)
        goto done;
    uint64_t steps_per_epoch = (f.ntrain + (size_t)opt->batch - 1) / (size_t)opt->batch;
    f.fit_step = (uint64_t)at.epoch * steps_per_epoch + (uint64_t)at.batch;
    for (int epoch = at.epoch, stop = 0; epoch < opt->epochs && !stop; epoch++)
        if ((st = run_epoch(&f, epoch, cb, ud, ckpt, &stop)) != DETRUN_OK)
            goto done;

done:
    detrun_dataset_unuse(ds);
    detrun_fit_ckpt_end(ckpt);
    results_free(m, &f.r);
    if (f.order != NULL)
        detrun_free(rt, f.order, f.ntrain * sizeof *f.order);
    if (owned != NULL)
        detrun_free(rt, owned, nrows * sizeof *owned);
    return st;
}
