/*
 * model.h - the sequential model as the runtime's own files see it.
 *
 * Parameters, gradients and the optimiser's two moment blocks are one
 * backend allocation each (so a model's weights are one contiguous hash and
 * the CUDA backend gets device memory); each parameter tensor is a named
 * view at the same offset of every block. Activations are per layer, sized
 * for the largest batch seen so far.
 */
#ifndef DETRUN_MODEL_H
#define DETRUN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define DETRUN_NAME_MAX 48

/* A kind of layer: its descriptor (layer.h). */
typedef struct detrun_layer_kind detrun_layer_kind;

typedef struct detrun_layer {
    const detrun_layer_kind *kind;
    char name[32];                      /* "conv2d_1" */
    /* Options (read from the arguments by the kind's option table). */
    int act;                            /* detrun_activation: fused ReLU or softmax (last layer) */
    int filters, kh, kw, stride;        /* conv2d; stride also for pools */
    int pad;                            /* detrun_padding */
    int size;                           /* pool window */
    int units;                          /* dense */
    float rate;                         /* dropout */

    /* Per-sample shapes, fixed when the layer is added. */
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int pad_top, pad_left;              /* conv2d */
    int relu;                           /* 1: the output is a ReLU's (own or fused) */
    int wparam, bparam;                 /* its first and second parameter, -1 when none */

    /* Backend buffers for cap_batch samples. */
    float *out;                         /* output (NULL for an alias such as flatten) */
    const float *act_out;               /* output of the last forward: out, or the input
                                           for flatten and for dropout outside training */
    void *aux;                          /* the kind's scratch: maxpool argmax, dropout mask */
} detrun_layer;

typedef struct detrun_param {
    char name[DETRUN_NAME_MAX];         /* "dense_1.weight" */
    int ndims;
    int dims[4];
    size_t offset;                      /* in floats, into every block */
    size_t count;
} detrun_param;

struct detrun_model {
    detrun_runtime *rt;
    int c, h, w;                        /* input image shape */

    detrun_layer *layers;
    int nlayers, layer_cap;

    int compiled;
    detrun_optimizer opt;
    detrun_param *params;
    int nparams;
    size_t total;                       /* floats per block, views padded to 16 floats */
    float *p, *g, *m, *v;               /* backend blocks; v is NULL for SGD */
    uint64_t step;                      /* optimiser steps so far */
    float beta1_t, beta2_t;             /* running products beta^step (1 at step 0) */

    /* Batch buffers (backend memory) for cap_batch samples. */
    int cap_batch;
    float *x;                           /* (n, c, h, w) input */
    int32_t *y;                         /* labels */
    float *grad[2];                     /* ping-pong activation gradients */
    size_t grad_floats;                 /* per sample, the largest layer input or output */

    /* The data set's device copy, kept across fits. */
    const void *ds_key;
    size_t ds_count, ds_pixels;
    uint64_t ds_identity;
    uint8_t *ds_images, *ds_labels;
    int ds_borrowed;          /* they are the data set's own host memory: never freed here */
};

/* Floats per sample of a layer's input and output. */
size_t detrun_layer_in_size(const detrun_layer *l);
size_t detrun_layer_out_size(const detrun_layer *l);
/* Floats per sample of the model's logits (the last layer's output). */
int detrun_model_classes(const detrun_model *m);

/* Makes the batch buffers hold n samples (grows, never shrinks). */
detrun_status detrun_model_reserve(detrun_model *m, int n);

/* Forward over n samples in m->x. train != 0 applies dropout keyed by addr
 * (addr->layer is filled per layer). Returns the logits (the last output). */
const float *detrun_model_forward(detrun_model *m, int n, int train, const detrun_rng_addr *addr);
/* Backward from dlogits (n, classes) in backend memory, which is overwritten;
 * writes every parameter's gradient into m->g. */
void detrun_model_backward(detrun_model *m, int n, float *dlogits);
/* One optimiser step over the whole parameter block (optim.c). */
detrun_status detrun_model_optimizer_step(detrun_model *m);

/* Fingerprint serialisation (fingerprint.c): feeds one tensor's canonical
 * bytes into an XXH3-128 state (an XXH3_state_t *). */
void detrun_fingerprint_update(void *xxh3_state, const char *name, int ndims, const int *dims,
                               const float *data, size_t count);
/* 32 lowercase hex digits of an XXH128 hash given as high and low halves. */
void detrun_fingerprint_hex(uint64_t high, uint64_t low, char out[33]);

/* The caps on a model's size (model_limits.c): parameters in all and one
 * layer's output per sample, raised by DETRUN_MAX_PARAMS and
 * DETRUN_MAX_ACTIVATIONS. Called by compile once the parameters are laid out. */
detrun_status detrun_model_check_limits(detrun_model *m);

#endif
