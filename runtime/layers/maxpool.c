/*
 * maxpool.c - max pooling (docs/determinism.md, "maxpool forward and
 * backward"): the first maximum in row-major window order wins; stride 0
 * means the window size, as Keras' default.
 */
#include <stddef.h>
#include <stdint.h>

#include "layer.h"

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
    /* The ReLU before, undone here with the pooled value as its mask
     * (DETRUN_LAYER_RELU_THROUGH): in one kernel where the backend has one. */
    if (p->relu_before && be->ops->maxpool_relu_backward != NULL) {
        be->ops->maxpool_relu_backward(be, din, dout, l->out, l->aux, &d);
        return din;
    }
    if (p->relu_before)
        be->ops->relu_backward(be, dout, dout, l->out, (size_t)p->n * detrun_layer_out_size(l));
    be->ops->maxpool_backward(be, din, dout, l->aux, &d);
    return din;
}

const detrun_layer_kind detrun_layer_maxpool = {
    .name = "maxpool",
    .doc = "docs/determinism.md#maxpool-forward-and-backward-r5",
    .flags = DETRUN_LAYER_RELU_THROUGH,
    .opts = detrun_layer_pool_opts,
    .shape = detrun_layer_pool_shape,
    .aux_bytes = aux_bytes,
    .forward = forward,
    .backward = backward,
};
