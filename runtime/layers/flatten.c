/*
 * flatten.c - (c, h, w) to a vector of c*h*w: NCHW storage is already in
 * that order, so the output is the input's memory and the gradient passes
 * through unchanged.
 */
#include "layer.h"

static detrun_status shape(detrun_model *m, detrun_layer *l)
{
    (void)m;
    l->out_c = l->in_c * l->in_h * l->in_w;
    l->out_h = l->out_w = 1;
    return DETRUN_OK;
}

static const detrun_layer_opt opts[] = { { NULL, DETRUN_LOPT_INT, 0, 0, 0, 0, NULL } };

const detrun_layer_kind detrun_layer_flatten = {
    .name = "flatten",
    .doc = "docs/determinism.md#kernels",
    .flags = DETRUN_LAYER_ALIAS,
    .opts = opts,
    .shape = shape,
};
