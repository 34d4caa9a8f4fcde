/*
 * conv2d.c - the 2-D convolution layer (docs/determinism.md, "conv2d
 * forward" and "conv2d backward"): Keras' Conv2D with valid or same
 * padding and an optional fused ReLU.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layer.h"

static const char *const paddings[] = { "valid", "same", NULL };

static const detrun_layer_opt opts[] = {
    { "filters", DETRUN_LOPT_INT, offsetof(detrun_layer, filters), DETRUN_LOPT_REQUIRED, 1,
      DETRUN_LOPT_INT_MAX, NULL },
    { "kh", DETRUN_LOPT_INT, offsetof(detrun_layer, kh), DETRUN_LOPT_REQUIRED, 1,
      DETRUN_LOPT_INT_MAX, NULL },
    { "kw", DETRUN_LOPT_INT, offsetof(detrun_layer, kw), DETRUN_LOPT_REQUIRED, 1,
      DETRUN_LOPT_INT_MAX, NULL },
    { "stride", DETRUN_LOPT_INT, offsetof(detrun_layer, stride), 1, 1, DETRUN_LOPT_INT_MAX,
      NULL },
    { "padding", DETRUN_LOPT_CHOICE, offsetof(detrun_layer, pad), DETRUN_PAD_VALID, 0, 0,
      paddings },
    { "activation", DETRUN_LOPT_CHOICE, offsetof(detrun_layer, act), DETRUN_ACT_NONE, 0, 0,
      detrun_layer_activations },
    { NULL, DETRUN_LOPT_INT, 0, 0, 0, 0, NULL }
};

static detrun_status shape(detrun_model *m, detrun_layer *l)
{
    l->out_c = l->filters;
    if (l->pad == DETRUN_PAD_VALID) {
        if (l->kh > l->in_h || l->kw > l->in_w)
            return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                                 "%s: kernel %dx%d is larger than its %dx%d input", l->name,
                                 l->kh, l->kw, l->in_h, l->in_w);
        l->out_h = (l->in_h - l->kh) / l->stride + 1;
        l->out_w = (l->in_w - l->kw) / l->stride + 1;
    } else {
        /* As TensorFlow: output ceil(in / stride), the odd pixel of padding
         * at the bottom and right. Written so that no sum passes INT_MAX. */
        l->out_h = (l->in_h - 1) / l->stride + 1;
        l->out_w = (l->in_w - 1) / l->stride + 1;
        long long ph = (long long)(l->out_h - 1) * l->stride + l->kh - l->in_h;
        long long pw = (long long)(l->out_w - 1) * l->stride + l->kw - l->in_w;
        l->pad_top = ph > 0 ? (int)(ph / 2) : 0;
        l->pad_left = pw > 0 ? (int)(pw / 2) : 0;
    }
    if ((double)l->filters * l->in_c * l->kh * l->kw > (double)DETRUN_LAYER_MAX_WEIGHTS)
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "%s: %d filters of %dx%dx%d are too many weights", l->name,
                             l->filters, l->in_c, l->kh, l->kw);
    l->relu = l->act == DETRUN_ACT_RELU;
    return DETRUN_OK;
}

static int params(const detrun_layer *l, detrun_param_spec *spec)
{
    spec[0] = (detrun_param_spec){ "weight", 4, { l->filters, l->in_c, l->kh, l->kw },
                                   l->in_c * l->kh * l->kw, l->filters * l->kh * l->kw };
    spec[1] = (detrun_param_spec){ "bias", 1, { l->filters, 0, 0, 0 }, 0, 0 };
    return 2;
}

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

static const float *forward(const detrun_pass *p, detrun_layer *l, const float *in)
{
    detrun_backend *be = p->be;
    const detrun_model *m = p->m;
    detrun_conv_dims d = conv_dims(l, p->n);
    be->ops->conv2d_forward(be, l->out, in, m->p + DETRUN_LAYER_W(m, l), m->p + DETRUN_LAYER_B(m, l),
                       &d, l->act == DETRUN_ACT_RELU);
    return l->out;
}

static float *backward(const detrun_pass *p, detrun_layer *l, float *dout, float *din,
                       const float *in)
{
    detrun_backend *be = p->be;
    const detrun_model *m = p->m;
    detrun_conv_dims d = conv_dims(l, p->n);
    be->ops->conv2d_backward(be, din, m->g + DETRUN_LAYER_W(m, l), m->g + DETRUN_LAYER_B(m, l), dout,
                        in, m->p + DETRUN_LAYER_W(m, l), &d);
    return din;
}

/* Into a max-pool right after, a sample at a time (conv2d_pooled_forward). */
static const float *forward_through(const detrun_pass *p, detrun_layer *l, detrun_layer *next,
                                    const float *in)
{
    detrun_backend *be = p->be;
    const detrun_model *m = p->m;
    if (be->ops->conv2d_pooled_forward == NULL || strcmp(next->kind->name, "maxpool") != 0)
        return NULL;
    detrun_conv_dims d = conv_dims(l, p->n);
    detrun_pool_dims pd = detrun_layer_pool_dims(next, p->n);
    if (!be->ops->conv2d_pooled_forward(be, p->keep_outputs ? l->out : NULL, next->out,
                                        (int32_t *)next->aux, in, m->p + DETRUN_LAYER_W(m, l),
                                        m->p + DETRUN_LAYER_B(m, l), &d,
                                        l->act == DETRUN_ACT_RELU, &pd))
        return NULL;
    return next->out;
}

/* Through a max-pool right after: the weight gradients from the pool's
 * output gradient, where the backend can (conv2d_pooled_wgrad). */
static int backward_through(const detrun_pass *p, detrun_layer *l, const detrun_layer *next,
                            const float *next_dout, const float *in)
{
    detrun_backend *be = p->be;
    const detrun_model *m = p->m;
    if (be->ops->conv2d_pooled_wgrad == NULL || strcmp(next->kind->name, "maxpool") != 0 ||
        (l->relu && !p->relu_before))
        return 0;
    detrun_conv_dims d = conv_dims(l, p->n);
    detrun_pool_dims pd = detrun_layer_pool_dims(next, p->n);
    return be->ops->conv2d_pooled_wgrad(be, m->g + DETRUN_LAYER_W(m, l), m->g + DETRUN_LAYER_B(m, l),
                                        next_dout, l->relu ? next->out : NULL,
                                        (const int32_t *)next->aux, in, &d, &pd);
}

const detrun_layer_kind detrun_layer_conv2d = {
    .name = "conv2d",
    .doc = "docs/determinism.md#conv2d-forward-r1-r2",
    .opts = opts,
    .shape = shape,
    .params = params,
    .forward = forward,
    .backward = backward,
    .forward_through = forward_through,
    .backward_through = backward_through,
};
