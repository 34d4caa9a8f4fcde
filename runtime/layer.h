/*
 * layer.h - a layer kind as data: one descriptor per kind (runtime/layers/),
 * read by the generic loops of model.c (options, shapes, parameters,
 * buffers) and pass.c (forward, backward).
 *
 * Adding a kind: its kernels (reached through the backend table), a file
 * runtime/layers/<name>.c defining `const detrun_layer_kind
 * detrun_layer_<name>` (the build lists that folder, so nothing else names
 * the kind), its Lua builder entry, its test.
 */
#ifndef DETRUN_LAYER_H
#define DETRUN_LAYER_H

#include <math.h>
#include <stddef.h>

#include "model.h"

/* How an option (a detrun_layer_arg of the same key) is read and checked. */
typedef enum detrun_layer_opt_type {
    DETRUN_LOPT_INT,      /* an integer in [min, max], into an int */
    DETRUN_LOPT_RATE,     /* a number in [min, max), into a float */
    DETRUN_LOPT_CHOICE    /* one of choices (by name, or its index as a number), into an int */
} detrun_layer_opt_type;

typedef struct detrun_layer_opt {
    const char *key;                 /* "filters"; NULL ends a kind's list */
    detrun_layer_opt_type type;
    size_t offset;                   /* of the int or float field in detrun_layer */
    double dflt;                     /* the value when the argument is absent */
    double min, max;
    const char *const *choices;      /* CHOICE: names, NULL-terminated; the value is the index */
} detrun_layer_opt;

/* A parameter tensor of a layer, named "<layer>.<suffix>". Glorot-uniform
 * from fan_in and fan_out when fan_in > 0, zeros otherwise. */
#define DETRUN_LAYER_PARAMS_MAX 2
typedef struct detrun_param_spec {
    const char *suffix;
    int ndims;
    int dims[4];
    int fan_in, fan_out;
} detrun_param_spec;

/* What a forward or backward call of a layer sees. */
typedef struct detrun_pass {
    detrun_model *m;
    detrun_backend *be;
    int n;                           /* samples */
    int index;                       /* of the layer in the model */
    int train;                       /* forward: 1 in a training step */
    const detrun_rng_addr *addr;     /* forward in training: the step's dropout address */
    int relu_before;                 /* backward of a RELU_THROUGH kind: undo the layer
                                        before's ReLU here (see the flag) */
    int keep_outputs;                /* forward: every layer's output is read afterwards
                                        (a trace records them all) */
} detrun_pass;

/* Flags of a kind. */
enum {
    /* Its output is its input (no buffer of its own): flatten. */
    DETRUN_LAYER_ALIAS = 1,
    /* A ReLU on its input may be undone on its output gradient, with its
     * output as the mask, instead of on its input gradient: max-pool, whose
     * output is the ReLU output the window chose (docs/determinism.md,
     * "Training step"). The pass then sets relu_before and the kind's
     * backward applies the mask, so a backend may fuse it into the kernel. */
    DETRUN_LAYER_RELU_THROUGH = 2
};

struct detrun_layer_kind {
    const char *name;                /* "conv2d"; layers are named <name>_<n> */
    const char *doc;                 /* its section of docs/determinism.md */
    int flags;
    const detrun_layer_opt *opts;    /* the options it accepts, NULL-key terminated */
    /* The options are parsed and in_c/in_h/in_w set: checks what depends on
     * the input and sets out_c/out_h/out_w, l->relu and derived fields, or
     * returns a status set with detrun_seterr naming l->name. NULL: the
     * output has the input's shape. */
    detrun_status (*shape)(detrun_model *m, detrun_layer *l);
    /* Fills spec (at most DETRUN_LAYER_PARAMS_MAX) and returns how many
     * parameter tensors the layer has. NULL: none. */
    int (*params)(const detrun_layer *l, detrun_param_spec *spec);
    /* Bytes per sample of its scratch buffer l->aux (argmax, mask). NULL: none. */
    size_t (*aux_bytes)(const detrun_layer *l);
    /* 1 when backend be runs the kind's kernels. NULL: every backend does. */
    int (*supported)(const detrun_backend *be);
    /* Writes l->out (unless ALIAS) from in; returns the layer's output. */
    const float *(*forward)(const detrun_pass *p, detrun_layer *l, const float *in);
    /* Gradient of the loss w.r.t. the input from dout (w.r.t. the output,
     * after the ReLU of l->relu is undone by the pass): into din (NULL for
     * the first layer with parameters) or in place in dout; returns which.
     * Parameter gradients go to the model's gradient block. NULL: identity. */
    float *(*backward)(const detrun_pass *p, detrun_layer *l, float *dout, float *din,
                       const float *in);
    /* Its forward and that of next, the layer after it, in one: returns
     * next's output, with next->out and its aux written as next's forward
     * would, and l->out too when p->keep_outputs (otherwise nothing reads
     * it: no backward of l or next does); NULL when it cannot (nothing
     * written: the pass runs both forwards). NULL: never. */
    const float *(*forward_through)(const detrun_pass *p, detrun_layer *l, detrun_layer *next,
                                    const float *in);
    /* The first layer with parameters (no input gradient) when next, the
     * layer after it, has its output gradient next_dout (p->relu_before
     * said for next): its parameter gradients straight from next_dout,
     * skipping next's backward and the full-size gradient between them.
     * Returns 1 when done, 0 when it cannot (nothing written: the pass runs
     * both backwards). NULL: never. */
    int (*backward_through)(const detrun_pass *p, detrun_layer *l, const detrun_layer *next,
                            const float *next_dout, const float *in);
};

/* The kind called name, or NULL. */
const detrun_layer_kind *detrun_layer_kind_find(const char *name);
/* "avgpool, conv2d, ..." (for messages), cut to len. */
void detrun_layer_kind_names(char *buf, size_t len);
/* Reads args into l's option fields through l->kind's option table:
 * defaults for absent ones, an error naming l for an unknown key, a key
 * given twice, a missing required option or a value out of range. */
detrun_status detrun_layer_read_args(detrun_runtime *rt, detrun_layer *l,
                                     const detrun_layer_arg *args, int nargs);

/* The pooling kernels' dims of a pooling layer (size, stride) over n samples. */
detrun_pool_dims detrun_layer_pool_dims(const detrun_layer *l, int n);
/* What pooling layers share: their options (size, default 2; stride, 0 for
 * the size, as Keras' default) and their shape (valid windows). */
extern const detrun_layer_opt detrun_layer_pool_opts[];
detrun_status detrun_layer_pool_shape(detrun_model *m, detrun_layer *l);

/* The names of detrun_activation, by value: the choices of "activation". */
extern const char *const detrun_layer_activations[];

/* Limits of option tables: no default (the option is required), the
 * largest int. */
#define DETRUN_LOPT_REQUIRED NAN
#define DETRUN_LOPT_INT_MAX 2147483647.0
/* The most weights of one layer, as the most values of one layer's output:
 * beyond, sizes in ints and fan-ins overflow long before memory runs out. */
#define DETRUN_LAYER_MAX_WEIGHTS (1LL << 28)

/* Offsets of a layer's first and second parameters in a model block. */
#define DETRUN_LAYER_W(m, l) ((m)->params[(l)->wparam].offset)
#define DETRUN_LAYER_B(m, l) ((m)->params[(l)->bparam].offset)

#endif
