/*
 * checkpoint_fit.c - the hooks detrun_model_fit calls when a fit has a
 * checkpoint (docs/regression.md, "Checkpoints"): resume from it before the
 * first epoch, refusing a checkpoint of another fit, save after each, and
 * save inside an epoch when the fit is cancelled there.
 */
#include <string.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack: no allocation */
#include <xxhash.h>

#include "byteorder.h"
#include "checkpoint_meta.h"
#include "model.h"

struct detrun_fit_ckpt {
    detrun_runtime *rt;
    char *path;
    size_t pathlen;            /* bytes of path, its '\0' included */
    detrun_checkpoint fit;     /* the fit fields only; no tensors */
    detrun_epoch_stats *stats;
    int nstats, cap;
    detrun_checkpoint start;   /* a resumed mid-epoch position: its results so far */
};

/* Keys the rows (and the validation split, which picks the last of them) so
 * that a checkpoint of another fold is refused rather than continued. */
static uint64_t data_key(const uint32_t *rows, size_t nrows, double validation_split)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    unsigned char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < nrows; i++) {
        detrun_put_le32(buf + k, rows != NULL ? rows[i] : (uint32_t)i);
        k += 4;
        if (k == sizeof buf) {
            XXH3_64bits_update(&st, buf, k);
            k = 0;
        }
    }
    uint64_t bits;
    memcpy(&bits, &validation_split, 8);
    detrun_put_le64(buf + k, bits);
    detrun_put_le64(buf + k + 8, (uint64_t)nrows);
    XXH3_64bits_update(&st, buf, k + 16);
    return XXH3_64bits_digest(&st);
}

static detrun_status push_stats(detrun_fit_ckpt *c, const detrun_epoch_stats *st)
{
    if (c->nstats == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        detrun_epoch_stats *ns = detrun_realloc(c->rt, c->stats, (size_t)c->cap * sizeof *ns,
                                                (size_t)cap * sizeof *ns);
        if (ns == NULL)
            return detrun_seterr(c->rt, DETRUN_ERR_MEMORY, "checkpoint: out of memory");
        c->stats = ns;
        c->cap = cap;
    }
    c->stats[c->nstats++] = *st;
    return DETRUN_OK;
}

static detrun_status refuse(detrun_runtime *rt, const char *path, const char *what)
{
    return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: the checkpoint is of another fit (%s); "
                         "remove it to start over", path, what);
}

/* A position inside an epoch that this fit can reach: whole batches of its
 * training rows, their results all there. */
static detrun_status check_inside(detrun_fit_ckpt *c, const detrun_checkpoint *k, size_t ntrain)
{
    size_t batches = (ntrain + (size_t)k->batch_size - 1) / (size_t)k->batch_size;
    size_t want = (size_t)k->batch >= batches ? ntrain : (size_t)k->batch * (size_t)k->batch_size;
    if ((size_t)k->batch > batches || k->npartial != want || k->epoch >= k->epochs)
        return detrun_checkpoint_invalid(c->rt, c->path, "its position inside the epoch does "
                                         "not fit the fit's rows and batch size");
    return DETRUN_OK;
}

/* Takes the mid-epoch part of k (its arrays move to c->start). */
static void keep_start(detrun_fit_ckpt *c, detrun_checkpoint *k, detrun_fit_start *at)
{
    at->epoch = k->epoch;
    at->batch = k->batch;
    if (k->batch == 0)
        return;
    c->start.rt = c->rt;
    c->start.npartial = k->npartial;
    c->start.partial_loss = k->partial_loss;
    c->start.partial_hit = k->partial_hit;
    k->partial_loss = k->partial_hit = NULL;
    at->nsamples = k->npartial;
    at->loss = c->start.partial_loss;
    at->hit = c->start.partial_hit;
    at->seconds = k->partial_seconds;
}

detrun_status detrun_fit_ckpt_begin(detrun_model *m, const uint32_t *rows, size_t nrows,
                                    size_t ntrain, const detrun_fit_options *opt,
                                    detrun_epoch_fn cb, void *ud, detrun_fit_ckpt **out,
                                    detrun_fit_start *at, int *done)
{
    *out = NULL;
    memset(at, 0, sizeof *at);
    *done = 0;
    detrun_runtime *rt = m->rt;
    detrun_fit_ckpt *c = detrun_calloc(rt, 1, sizeof *c);
    size_t pathlen = strlen(opt->checkpoint) + 1;
    if (c == NULL || (c->path = detrun_malloc(rt, pathlen)) == NULL) {
        detrun_free(rt, c, sizeof *c);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "checkpoint: out of memory");
    }
    memcpy(c->path, opt->checkpoint, pathlen);
    c->pathlen = pathlen;
    c->rt = rt;
    c->fit.mode = rt->mode;
    c->fit.seed = opt->seed;
    c->fit.stream = opt->stream;
    c->fit.epochs = opt->epochs;
    c->fit.batch_size = opt->batch;
    c->fit.data = data_key(rows, nrows, opt->validation_split);
    if (!opt->resume || access(opt->checkpoint, F_OK) != 0) {
        *out = c;
        return DETRUN_OK;
    }

    detrun_checkpoint k;
    detrun_status s = detrun_checkpoint_read(rt, opt->checkpoint, &k);
    if (s == DETRUN_OK) {
        if (k.mode != c->fit.mode)
            s = refuse(rt, c->path, k.mode == DETRUN_FAST ? "fast mode" : "deterministic mode");
        else if (k.seed != c->fit.seed || k.stream != c->fit.stream)
            s = refuse(rt, c->path, "another seed or stream");
        else if (k.batch_size != c->fit.batch_size)
            s = refuse(rt, c->path, "another batch size");
        else if (k.epochs != c->fit.epochs)
            s = refuse(rt, c->path, "another number of epochs");
        else if (k.data != c->fit.data)
            s = refuse(rt, c->path, "other rows or another validation split");
        else if (k.batch != 0)
            s = check_inside(c, &k, ntrain);
    }
    if (s == DETRUN_OK)
        s = detrun_checkpoint_apply(m, &k);
    if (s == DETRUN_OK) {
        for (int i = 0; i < k.nstats && s == DETRUN_OK; i++)
            s = push_stats(c, &k.stats[i]);
    }
    if (s != DETRUN_OK) {
        detrun_checkpoint_free(&k);
        detrun_fit_ckpt_end(c);
        return s;
    }
    keep_start(c, &k, at);
    *done = k.epoch >= opt->epochs;
    /* The callback sees every epoch, as an uninterrupted fit would show it. */
    for (int i = 0; i < k.nstats && cb != NULL; i++)
        if (cb(ud, &k.stats[i]) != 0) {
            *done = 1;
            break;
        }
    detrun_checkpoint_free(&k);
    *out = c;
    return DETRUN_OK;
}

/* The model's state at (epoch, batch) with the part inside the epoch, if
 * any, borrowed from the caller. */
static detrun_status save(detrun_fit_ckpt *c, detrun_model *m, int epoch, int batch,
                          const float *loss, const float *hit, size_t n, double seconds)
{
    detrun_checkpoint k;
    detrun_status s = detrun_checkpoint_capture(m, &k);
    if (s != DETRUN_OK)
        return s;
    k.epoch = epoch;
    k.batch = batch;
    k.npartial = n;
    k.partial_loss = (float *)loss;   /* borrowed, as the stats below */
    k.partial_hit = (float *)hit;
    k.partial_seconds = seconds;
    k.mode = c->fit.mode;
    k.seed = c->fit.seed;
    k.stream = c->fit.stream;
    k.epochs = c->fit.epochs;
    k.batch_size = c->fit.batch_size;
    k.data = c->fit.data;
    k.stats = c->stats;
    k.nstats = c->nstats;
    s = detrun_checkpoint_write(c->rt, c->path, &k);
    k.stats = NULL;   /* borrowed */
    k.nstats = 0;
    k.partial_loss = k.partial_hit = NULL;
    detrun_checkpoint_free(&k);
    return s;
}

detrun_status detrun_fit_ckpt_epoch(detrun_fit_ckpt *c, detrun_model *m,
                                    const detrun_epoch_stats *st)
{
    detrun_status s = push_stats(c, st);
    if (s != DETRUN_OK)
        return s;
    return save(c, m, st->epoch + 1, 0, NULL, NULL, 0, 0.0);
}

detrun_status detrun_fit_ckpt_inside(detrun_fit_ckpt *c, detrun_model *m, int epoch, int batch,
                                     const float *loss, const float *hit, size_t n,
                                     double seconds)
{
    if (batch <= 0)
        return DETRUN_OK;   /* at the epoch's start: the last epoch's checkpoint says it all */
    return save(c, m, epoch, batch, loss, hit, n, seconds);
}

void detrun_fit_ckpt_end(detrun_fit_ckpt *c)
{
    if (c == NULL)
        return;
    detrun_runtime *rt = c->rt;
    detrun_checkpoint_free(&c->start);
    detrun_free(rt, c->stats, (size_t)c->cap * sizeof *c->stats);
    detrun_free(rt, c->path, c->pathlen);
    detrun_free(rt, c, sizeof *c);
}
