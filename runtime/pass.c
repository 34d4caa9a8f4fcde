/*
 * pass.c - forward and backward passes of the sequential model over a batch.
 *
 * Every sum happens inside a backend kernel, in the order docs/determinism.md
 * writes for it; this file only sequences the layers, through their kinds'
 * descriptors (layer.h), and their buffers.
 */
#include "internal.h"
#include "layer.h"
#include "model.h"

const float *detrun_model_forward(detrun_model *m, int n, int train, const detrun_rng_addr *addr)
{
    detrun_pass p = { m, m->rt->backend, n, 0, train, addr, 0, m->rt->trace != NULL };
    const float *in = m->x;
    for (int i = 0; i < m->nlayers; i++) {
        detrun_layer *l = &m->layers[i];
        p.index = i;
        /* A layer and the next in one pass where the kind can (the same
         * bits); its own output then only when kept (NULL otherwise). */
        if (i + 1 < m->nlayers && l->kind->forward_through != NULL) {
            const float *o = l->kind->forward_through(&p, l, &m->layers[i + 1], in);
            if (o != NULL) {
                l->act_out = p.keep_outputs ? l->out : NULL;
                m->layers[++i].act_out = o;
                in = o;
                continue;
            }
        }
        l->act_out = l->kind->forward != NULL ? l->kind->forward(&p, l, in) : in;
        in = l->act_out;
    }
    return in;
}

void detrun_model_backward(detrun_model *m, int n, float *dlogits)
{
    detrun_backend *be = m->rt->backend;
    detrun_pass p = { m, be, n, 0, 1, NULL, 0, 0 };
    int first = 0;
    while (first < m->nlayers && m->layers[first].wparam < 0)
        first++;
    float *dcur = dlogits;
    /* A ReLU right before a max-pool is applied to the pool's gradient, where
     * the mask is the pooled value (the ReLU output the window chose), and
     * skipped on its own layer: a quarter of the elements, the same bits
     * (docs/determinism.md, "Training step"). The pool's backward applies it
     * (relu_before), so that a backend can do both in one pass. */
    int relu_done = -1;
    for (int i = m->nlayers - 1; i >= first; i--) {
        detrun_layer *l = &m->layers[i];
        const float *in = i > 0 ? m->layers[i - 1].act_out : m->x;
        /* Input gradients go to the ping-pong buffer dcur is not in; the
         * first layer with parameters needs none. */
        float *din = i == first ? NULL : (dcur == m->grad[0] ? m->grad[1] : m->grad[0]);
        size_t count = (size_t)n * detrun_layer_out_size(l);
        if (l->relu && relu_done != i)
            be->ops->relu_backward(be, dcur, dcur, l->act_out, count);
        p.relu_before = (l->kind->flags & DETRUN_LAYER_RELU_THROUGH) && i - 1 >= first &&
                        m->layers[i - 1].relu;
        if (p.relu_before)
            relu_done = i - 1;
        /* The first layer with parameters may take its gradients straight
         * from this layer's output gradient (the same bits). */
        detrun_layer *f = &m->layers[first];
        if (i - 1 == first && f->kind->backward_through != NULL) {
            p.index = first;
            if (f->kind->backward_through(&p, f, l, dcur, first > 0 ? m->layers[first - 1].act_out
                                                                      : m->x))
                break;
        }
        p.index = i;
        if (l->kind->backward != NULL)
            dcur = l->kind->backward(&p, l, dcur, din, in);
    }
}
