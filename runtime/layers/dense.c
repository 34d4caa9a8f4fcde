/*
 * dense.c - the fully connected layer (docs/determinism.md, "dense forward"
 * and "dense backward"): Keras' Dense, weights (inputs, units), an optional
 * fused ReLU, or softmax on the last layer.
 */
#include <stddef.h>

#include "layer.h"

static const detrun_layer_opt opts[] = {
    { "units", DETRUN_LOPT_INT, offsetof(detrun_layer, units), DETRUN_LOPT_REQUIRED, 1,
      DETRUN_LOPT_INT_MAX, NULL },
    { "activation", DETRUN_LOPT_CHOICE, offsetof(detrun_layer, act), DETRUN_ACT_NONE, 0, 0,
      detrun_layer_activations },
    { NULL, DETRUN_LOPT_INT, 0, 0, 0, 0, NULL }
};

static detrun_status shape(detrun_model *m, detrun_layer *l)
{
    if (l->in_h != 1 || l->in_w != 1)
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "%s: input is %dx%dx%d, not a vector: add a flatten layer before it",
                             l->name, l->in_c, l->in_h, l->in_w);
    if ((long long)l->units * l->in_c > DETRUN_LAYER_MAX_WEIGHTS)
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE,
                             "%s: %d units of %d inputs are too many weights", l->name, l->units,
                             l->in_c);
    l->out_c = l->units;
    l->out_h = l->out_w = 1;
    l->relu = l->act == DETRUN_ACT_RELU;
    return DETRUN_OK;
}

static int params(const detrun_layer *l, detrun_param_spec *spec)
{
    spec[0] = (detrun_param_spec){ "weight", 2, { l->in_c, l->units, 0, 0 }, l->in_c, l->units };
    spec[1] = (detrun_param_spec){ "bias", 1, { l->units, 0, 0, 0 }, 0, 0 };
    return 2;
}

static const float *forward(const detrun_pass *p, detrun_layer *l, const float *in)
{
    detrun_backend *be = p->be;
    const detrun_model *m = p->m;
    be->ops->dense_forward(be, l->out, in, m->p + DETRUN_LAYER_W(m, l), m->p + DETRUN_LAYER_B(m, l),
                      p->n, l->in_c, l->units, l->act == DETRUN_ACT_RELU);
    return l->out;
}

static float *backward(const detrun_pass *p, detrun_layer *l, float *dout, float *din,
                       const float *in)
{
    detrun_backend *be = p->be;
    const detrun_model *m = p->m;
    be->ops->dense_backward(be, din, m->g + DETRUN_LAYER_W(m, l), m->g + DETRUN_LAYER_B(m, l), dout,
                       in, m->p + DETRUN_LAYER_W(m, l), p->n, l->in_c, l->units);
    return din;
}

const detrun_layer_kind detrun_layer_dense = {
    .name = "dense",
    .doc = "docs/determinism.md#dense-forward-r1-r2",
    .opts = opts,
    .shape = shape,
    .params = params,
    .forward = forward,
    .backward = backward,
};
