/*
 * avgpool.c - average pooling (docs/determinism.md, "avgpool forward and
 * backward"): the mean of each size x size window, stride 0 meaning the
 * window size as Keras' AveragePooling2D default; windows lie inside the
 * input (valid padding).
 */
#include <stddef.h>

#include "layer.h"

static const detrun_layer_opt opts[] = {
    { "size", DETRUN_LOPT_INT, offsetof(detrun_layer, size), 2, 1, DETRUN_LOPT_INT_MAX, NULL },
    { "stride", DETRUN_LOPT_INT, offsetof(detrun_layer, stride), 0, 0, DETRUN_LOPT_INT_MAX,
      NULL },
    { NULL, DETRUN_LOPT_INT, 0, 0, 0, 0, NULL }
};

static detrun_status shape(detrun_model *m, detrun_layer *l)
{
    if (l->stride == 0)
        l->stride = l->size;
    if (l->size > l->in_h || l->size > l->in_w)
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "%s: window %dx%d is larger than its %dx%d input", l->name, l->size,
                             l->size, l->in_h, l->in_w);
    if ((long long)l->size * l->size > (1LL << 24))
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "%s: window %dx%d is too large (at most 2^24 values)", l->name,
                             l->size, l->size);
    l->out_c = l->in_c;
    l->out_h = (l->in_h - l->size) / l->stride + 1;
    l->out_w = (l->in_w - l->size) / l->stride + 1;
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
    .opts = opts,
    .shape = shape,
    .supported = supported,
    .forward = forward,
    .backward = backward,
};
