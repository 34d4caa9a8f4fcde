/*
 * checkpoint_state.c - a model's training state into a checkpoint and back
 * (docs/regression.md, "Checkpoints"): parameters, optimiser moments, the
 * optimiser step and the beta^t running products. Philox draws are addressed
 * by counters, so this and the fit's epoch are the whole random state.
 */
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "model.h"

detrun_status detrun_checkpoint_capture(detrun_model *m, detrun_checkpoint *c)
{
    if (m == NULL || c == NULL)
        return DETRUN_ERR_ARG;
    detrun_runtime *rt = m->rt;
    memset(c, 0, sizeof *c);
    if (!m->compiled)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: the model is not compiled");
    size_t count = 0;
    for (int i = 0; i < m->nparams; i++)
        count += m->params[i].count;
    /* The sizes first: detrun_checkpoint_free gives the blocks back by them. */
    c->rt = rt;
    c->ntensors = m->nparams;
    c->count = count;
    size_t block = (count > 0 ? count : 1) * sizeof(float);
    c->tensors = detrun_calloc(rt, m->nparams > 0 ? (size_t)m->nparams : 1, sizeof *c->tensors);
    c->params = detrun_malloc(rt, block);
    c->m = detrun_malloc(rt, block);
    c->v = m->v != NULL ? detrun_malloc(rt, block) : NULL;
    if (c->tensors == NULL || c->params == NULL || c->m == NULL || (m->v != NULL && c->v == NULL)) {
        detrun_checkpoint_free(c);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "checkpoint: out of memory");
    }
    c->step = m->step;
    c->beta1_t = m->beta1_t;
    c->beta2_t = m->beta2_t;
    c->optimizer = m->opt;
    detrun_backend *b = rt->backend;
    size_t at = 0;
    for (int i = 0; i < m->nparams; i++) {
        const detrun_param *p = &m->params[i];
        detrun_checkpoint_tensor *t = &c->tensors[i];
        snprintf(t->name, sizeof t->name, "%s", p->name);
        t->ndims = p->ndims;
        memcpy(t->dims, p->dims, sizeof t->dims);
        t->offset = at;
        t->count = p->count;
        size_t bytes = p->count * sizeof(float);
        detrun_status s = b->ops->download(b, c->params + at, m->p + p->offset, bytes);
        if (s == DETRUN_OK)
            s = b->ops->download(b, c->m + at, m->m + p->offset, bytes);
        if (s == DETRUN_OK && m->v != NULL)
            s = b->ops->download(b, c->v + at, m->v + p->offset, bytes);
        if (s != DETRUN_OK) {
            detrun_checkpoint_free(c);
            return detrun_seterr(rt, s, "checkpoint: cannot copy %s from the device", p->name);
        }
        at += p->count;
    }
    return DETRUN_OK;
}

static int same_optimizer(const detrun_optimizer *a, const detrun_optimizer *b)
{
    return a->kind == b->kind && memcmp(&a->lr, &b->lr, sizeof a->lr) == 0 &&
           memcmp(&a->beta1, &b->beta1, sizeof a->beta1) == 0 &&
           memcmp(&a->beta2, &b->beta2, sizeof a->beta2) == 0 &&
           memcmp(&a->eps, &b->eps, sizeof a->eps) == 0 &&
           memcmp(&a->momentum, &b->momentum, sizeof a->momentum) == 0;
}

detrun_status detrun_checkpoint_apply(detrun_model *m, const detrun_checkpoint *c)
{
    if (m == NULL || c == NULL)
        return DETRUN_ERR_ARG;
    detrun_runtime *rt = m->rt;
    if (!m->compiled)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint: the model is not compiled");
    /* Every check comes before the first byte is restored. */
    if (c->ntensors != m->nparams)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE, "checkpoint holds %d parameter tensors, "
                             "the model has %d", c->ntensors, m->nparams);
    if (!same_optimizer(&c->optimizer, &m->opt))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "checkpoint was written with another optimiser "
                             "or other optimiser settings than the model's");
    if ((c->v != NULL) != (m->v != NULL))
        return detrun_seterr(rt, DETRUN_ERR_FORMAT, "checkpoint holds %d moment blocks, the "
                             "model's optimiser needs %d", c->v != NULL ? 2 : 1,
                             m->v != NULL ? 2 : 1);
    for (int i = 0; i < m->nparams; i++) {
        const detrun_param *p = &m->params[i];
        const detrun_checkpoint_tensor *t = &c->tensors[i];
        if (strcmp(t->name, p->name) != 0)
            return detrun_seterr(rt, DETRUN_ERR_SHAPE, "checkpoint tensor %d is %s, the model's "
                                 "is %s", i, t->name, p->name);
        int same = t->ndims == p->ndims && t->count == p->count && t->offset + t->count <= c->count;
        for (int k = 0; same && k < p->ndims; k++)
            same = t->dims[k] == p->dims[k];
        if (!same)
            return detrun_seterr(rt, DETRUN_ERR_SHAPE, "checkpoint tensor %s has another shape "
                                 "than the model's", p->name);
    }
    detrun_backend *b = rt->backend;
    for (int i = 0; i < m->nparams; i++) {
        const detrun_param *p = &m->params[i];
        const detrun_checkpoint_tensor *t = &c->tensors[i];
        size_t bytes = p->count * sizeof(float);
        detrun_status s = b->ops->upload(b, m->p + p->offset, c->params + t->offset, bytes);
        if (s == DETRUN_OK)
            s = b->ops->upload(b, m->m + p->offset, c->m + t->offset, bytes);
        if (s == DETRUN_OK && m->v != NULL)
            s = b->ops->upload(b, m->v + p->offset, c->v + t->offset, bytes);
        if (s != DETRUN_OK)
            return detrun_seterr(rt, s, "checkpoint: cannot copy %s to the device", p->name);
    }
    m->step = c->step;
    m->beta1_t = c->beta1_t;
    m->beta2_t = c->beta2_t;
    return DETRUN_OK;
}
