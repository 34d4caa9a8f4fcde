/*
 * avgpool.c - average pooling (docs/determinism.md, "avgpool forward and
 * backward"): the mean of each size x size window, stride 0 meaning the
 * window size as Keras' AveragePooling2D default; windows lie inside the
 * input (valid padding).
 */
#include <stddef.h>

#include "layer.h"

/* Pooling's shape, with at most 2^24 values a window, so that the count
 * size*size is exact in a float. */
static detrun_status shape(detrun_model *m, detrun_layer *l)
{
    detrun_status st = detrun_layer_pool_shape(m, l);
    if (st != DETRUN_OK)
        return st;
    if ((long long)l->size * l->size > (1LL << 24))
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "%s: window %dx%d is too large (at most 2^24 values)", l->name,
                             l->size, l->size);
    return DETRUN_OK;
}

static int supported(const detrun_backend *be)
{
    return be->ops->avgpool_forward != NULL && be->ops->avgpool_backward != NULL;
}

static const float *forward(const detrun_pass *p, detrun_layer *l, const float *in)
{
    detrun_backend *be = p->be;
    detrun_pool_dims d = detrun_layer_pool_dims(l, p->n);
    be->ops->avgpool_forward(be, l->out, in, &d);
    return l->out;
}

static float *backward(const detrun_pass *p, detrun_layer *l, float *dout, float *din,
                       const float *in)
{
    (void)in;
    detrun_backend *be = p->be;
    detrun_pool_dims d = detrun_layer_pool_dims(l, p->n);
    be->ops->avgpool_backward(be, din, dout, &d);
    return din;
}

const detrun_layer_kind detrun_layer_avgpool = {
    .name = "avgpool",
    .doc = "docs/determinism.md#avgpool-forward-and-backward-r1",
    .opts = detrun_layer_pool_opts,
    .shape = shape,
    .supported = supported,
    .forward = forward,
    .backward = backward,
};
