/*
 * pass.c - forward and backward passes of the sequential model over a batch.
 *
 * Every sum happens inside a backend kernel, in the order docs/determinism.md
 * writes for it; this file only sequences the layers and their buffers.
 */
#include "model.h"

static detrun_conv_dims conv_dims(const detrun_layer *l, int n)
{
    detrun_conv_dims d;
    d.n = n;
    d.c = l->in_c;
    d.h = l->in_h;
    d.w = l->in_w;
    d.o = l->out_c;
    d.oh = l->out_h;
    d.ow = l->out_w;
    d.kh = l->kh;
    d.kw = l->kw;
    d.stride = l->stride;
    d.pad_top = l->pad_top;
    d.pad_left = l->pad_left;
    return d;
}

static detrun_pool_dims pool_dims(const detrun_layer *l, int n)
{
    detrun_pool_dims d;
    d.n = n;
    d.c = l->in_c;
    d.h = l->in_h;
    d.w = l->in_w;
    d.oh = l->out_h;
    d.ow = l->out_w;
    d.size = l->size;
    d.stride = l->stride;
    return d;
}

const float *detrun_model_forward(detrun_model *m, int n, int train, const detrun_rng_addr *addr)
{
    detrun_backend *be = m->rt->backend;
    const float *in = m->x;
    for (int i = 0; i < m->nlayers; i++) {
        detrun_layer *l = &m->layers[i];
        size_t count = (size_t)n * detrun_layer_out_size(l);
        switch (l->kind) {
        case DETRUN_LAYER_CONV2D: {
            detrun_conv_dims d = conv_dims(l, n);
            be->ops->conv2d_forward(be, l->out, in, m->p + m->params[l->wparam].offset,
                               m->p + m->params[l->bparam].offset, &d,
                               l->act == DETRUN_ACT_RELU);
            l->act_out = l->out;
            break;
        }
        case DETRUN_LAYER_MAXPOOL: {
            detrun_pool_dims d = pool_dims(l, n);
            be->ops->maxpool_forward(be, l->out, l->argmax, in, &d);
            l->act_out = l->out;
            break;
        }
        case DETRUN_LAYER_FLATTEN:
            l->act_out = in;
            break;
        case DETRUN_LAYER_DENSE:
            be->ops->dense_forward(be, l->out, in, m->p + m->params[l->wparam].offset,
                              m->p + m->params[l->bparam].offset, n, l->in_c, l->units,
                              l->act == DETRUN_ACT_RELU);
            l->act_out = l->out;
            break;
        case DETRUN_LAYER_RELU:
            be->ops->relu_forward(be, l->out, in, count);
            l->act_out = l->out;
            break;
        case DETRUN_LAYER_DROPOUT:
            if (train && l->rate > 0.0f) {
                detrun_rng_addr a = *addr;
                a.layer = (uint32_t)i;
                be->ops->dropout_forward(be, l->out, l->mask, in, count, l->rate, &a);
                l->act_out = l->out;
            } else {
                l->act_out = in;
            }
            break;
        default:
            break;
        }
        in = l->act_out;
    }
    return in;
}

void detrun_model_backward(detrun_model *m, int n, float *dlogits)
{
    detrun_backend *be = m->rt->backend;
    int first = 0;
    while (first < m->nlayers && m->layers[first].wparam < 0)
        first++;
    float *dcur = dlogits;
    /* A ReLU right before a max-pool is applied to the pool's gradient, where
     * the mask is the pooled value (the ReLU output the window chose), and
     * skipped on its own layer: a quarter of the elements, the same bits
     * (docs/determinism.md, "Training step"). */
    int relu_done = -1;
    for (int i = m->nlayers - 1; i >= first; i--) {
        detrun_layer *l = &m->layers[i];
        const float *in = i > 0 ? m->layers[i - 1].act_out : m->x;
        /* Input gradients go to the ping-pong buffer dcur is not in; the
         * first layer with parameters needs none. */
        float *din = i == first ? NULL : (dcur == m->grad[0] ? m->grad[1] : m->grad[0]);
        size_t count = (size_t)n * detrun_layer_out_size(l);
        switch (l->kind) {
        case DETRUN_LAYER_CONV2D: {
            if (l->act == DETRUN_ACT_RELU && relu_done != i)
                be->ops->relu_backward(be, dcur, dcur, l->act_out, count);
            detrun_conv_dims d = conv_dims(l, n);
            be->ops->conv2d_backward(be, din, m->g + m->params[l->wparam].offset,
                                m->g + m->params[l->bparam].offset, dcur, in,
                                m->p + m->params[l->wparam].offset, &d);
            dcur = din;
            break;
        }
        case DETRUN_LAYER_DENSE:
            if (l->act == DETRUN_ACT_RELU && relu_done != i)
                be->ops->relu_backward(be, dcur, dcur, l->act_out, count);
            be->ops->dense_backward(be, din, m->g + m->params[l->wparam].offset,
                               m->g + m->params[l->bparam].offset, dcur, in,
                               m->p + m->params[l->wparam].offset, n, l->in_c, l->units);
            dcur = din;
            break;
        case DETRUN_LAYER_MAXPOOL: {
            const detrun_layer *prev = i > 0 ? &m->layers[i - 1] : NULL;
            if (prev != NULL && i - 1 >= first &&
                (prev->kind == DETRUN_LAYER_RELU ||
                 ((prev->kind == DETRUN_LAYER_CONV2D || prev->kind == DETRUN_LAYER_DENSE) &&
                  prev->act == DETRUN_ACT_RELU))) {
                be->ops->relu_backward(be, dcur, dcur, l->act_out, count);
                relu_done = i - 1;
            }
            detrun_pool_dims d = pool_dims(l, n);
            be->ops->maxpool_backward(be, din, dcur, l->argmax, &d);
            dcur = din;
            break;
        }
        case DETRUN_LAYER_FLATTEN:
            break;   /* same memory layout on both sides */
        case DETRUN_LAYER_RELU:
            if (relu_done != i)
                be->ops->relu_backward(be, dcur, dcur, l->act_out, count);
            break;
        case DETRUN_LAYER_DROPOUT:
            if (l->rate > 0.0f) {
                be->ops->dropout_backward(be, din, dcur, l->mask, count);
                dcur = din;
            }
            break;
        default:
            break;
        }
    }
}
