/*
 * maxpool.c - max pooling (docs/determinism.md, "maxpool forward and
 * backward"): the first maximum in row-major window order wins; stride 0
 * means the window size, as Keras' default.
 */
#include <stddef.h>
#include <stdint.h>

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
    l->out_c = l->in_c;
    l->out_h = (l->in_h - l->size) / l->stride + 1;
    l->out_w = (l->in_w - l->size) / l->stride + 1;
    return DETRUN_OK;
}

static size_t aux_bytes(const detrun_layer *l)
{
    return detrun_layer_out_size(l) * sizeof(int32_t);   /* argmax */
}

static const float *forward(const detrun_pass *p, detrun_layer *l, const float *in)
{
    detrun_backend *be = p->be;
    detrun_pool_dims d = detrun_layer_pool_dims(l, p->n);
    be->ops->maxpool_forward(be, l->out, l->aux, in, &d);
    return l->out;
}

static float *backward(const detrun_pass *p, detrun_layer *l, float *dout, float *din,
                       const float *in)
{
    (void)in;
    detrun_backend *be = p->be;
    detrun_pool_dims d = detrun_layer_pool_dims(l, p->n);
    be->ops->maxpool_backward(be, din, dout, l->aux, &d);
    return din;
}

const detrun_layer_kind detrun_layer_maxpool = {
    .name = "maxpool",
    .doc = "docs/determinism.md#maxpool-forward-and-backward-r5",
    .flags = DETRUN_LAYER_RELU_THROUGH,
    .opts = opts,
    .shape = shape,
    .aux_bytes = aux_bytes,
    .forward = forward,
    .backward = backward,
};
