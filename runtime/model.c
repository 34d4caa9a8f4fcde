/*
 * model.c - the sequential model: layers and their shapes, parameter views,
 * compile (one backend block each for parameters, gradients and optimiser
 * moments), Glorot-uniform initialisation, batch buffers.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"
#include "model.h"
#include "philox.h"

/* Parameter views start on 16-float (64-byte) boundaries. */
#define VIEW_ALIGN 16

size_t detrun_layer_in_size(const detrun_layer *l)
{
    return (size_t)l->in_c * (size_t)l->in_h * (size_t)l->in_w;
}

size_t detrun_layer_out_size(const detrun_layer *l)
{
    return (size_t)l->out_c * (size_t)l->out_h * (size_t)l->out_w;
}

int detrun_model_classes(const detrun_model *m)
{
    if (m->nlayers == 0)
        return m->c * m->h * m->w;
    return (int)detrun_layer_out_size(&m->layers[m->nlayers - 1]);
}

/* ---- building ---------------------------------------------------------- */

detrun_status detrun_model_new(detrun_runtime *rt, int c, int h, int w, detrun_model **out)
{
    if (rt == NULL || out == NULL)
        return DETRUN_ERR_ARG;
    *out = NULL;
    if (c <= 0 || h <= 0 || w <= 0)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "model: input shape %dx%dx%d must be positive", c, h, w);
    if ((long long)c * h * w > (1LL << 28))
        return detrun_seterr(rt, DETRUN_ERR_SHAPE, "model: input shape %dx%dx%d is too large",
                             c, h, w);
    detrun_model *m = detrun_calloc(rt, 1, sizeof *m);
    if (m == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "model: out of memory");
    m->rt = rt;
    m->c = c;
    m->h = h;
    m->w = w;
    m->beta1_t = 1.0f;
    m->beta2_t = 1.0f;
    *out = m;
    return DETRUN_OK;
}

static void free_batch_buffers(detrun_model *m)
{
    detrun_backend *be = m->rt->backend;
    for (int i = 0; i < m->nlayers; i++) {
        detrun_layer *l = &m->layers[i];
        be->ops->free(be, l->out);
        be->ops->free(be, l->aux);
        l->out = NULL;
        l->aux = NULL;
    }
    be->ops->free(be, m->x);
    be->ops->free(be, m->y);
    be->ops->free(be, m->grad[0]);
    be->ops->free(be, m->grad[1]);
    m->x = NULL;
    m->y = NULL;
    m->grad[0] = m->grad[1] = NULL;
    m->cap_batch = 0;
}

void detrun_model_free(detrun_model *m)
{
    if (m == NULL)
        return;
    detrun_runtime *rt = m->rt;
    detrun_backend *be = rt->backend;
    if (be != NULL) {
        free_batch_buffers(m);
        be->ops->free(be, m->p);
        be->ops->free(be, m->g);
        be->ops->free(be, m->m);
        be->ops->free(be, m->v);
        if (!m->ds_borrowed) {
            be->ops->free(be, m->ds_images);
            be->ops->free(be, m->ds_labels);
        }
    }
    detrun_free(rt, m->params, (size_t)m->nparams * sizeof *m->params);
    detrun_free(rt, m->layers, (size_t)m->layer_cap * sizeof *m->layers);
    detrun_free(rt, m, sizeof *m);
}

/* The shape the next layer receives. */
static void current_shape(const detrun_model *m, int *c, int *h, int *w)
{
    if (m->nlayers == 0) {
        *c = m->c;
        *h = m->h;
        *w = m->w;
    } else {
        const detrun_layer *l = &m->layers[m->nlayers - 1];
        *c = l->out_c;
        *h = l->out_h;
        *w = l->out_w;
    }
}

/* A new layer of the given kind, named and shaped as the next one but not
 * yet part of the model (that happens in push_layer, once checks passed). */
static detrun_status begin_layer(detrun_model *m, const detrun_layer_kind *kind, detrun_layer *l)
{
    int same = 0;
    for (int i = 0; i < m->nlayers; i++)
        same += m->layers[i].kind == kind;
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->wparam = l->bparam = -1;
    snprintf(l->name, sizeof l->name, "%s_%d", kind->name, same + 1);
    current_shape(m, &l->in_c, &l->in_h, &l->in_w);
    if (m->compiled)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG,
                             "%s: cannot add a layer to a model that is already compiled",
                             l->name);
    return DETRUN_OK;
}

static detrun_status push_layer(detrun_model *m, const detrun_layer *l)
{
    if ((long long)l->out_c * l->out_h * l->out_w > (1LL << 28))
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE, "%s: output %dx%dx%d is too large",
                             l->name, l->out_c, l->out_h, l->out_w);
    if (m->nlayers == m->layer_cap) {
        int cap = m->layer_cap ? 2 * m->layer_cap : 8;
        detrun_layer *nl = detrun_realloc(m->rt, m->layers, (size_t)m->layer_cap * sizeof *nl,
                                          (size_t)cap * sizeof *nl);
        if (nl == NULL)
            return detrun_seterr(m->rt, DETRUN_ERR_MEMORY, "%s: out of memory", l->name);
        m->layers = nl;
        m->layer_cap = cap;
    }
    m->layers[m->nlayers++] = *l;
    return DETRUN_OK;
}

/* The failing layer of an error, as data beside the message
 * (detrun_error_layer). */
static detrun_status layer_error(detrun_model *m, int index, const char *name,
                                 detrun_status st)
{
    m->rt->err_layer = index;
    snprintf(m->rt->err_layer_name, sizeof m->rt->err_layer_name, "%s", name);
    return st;
}

/* Arguments, backend support and shape of layer l of kind k. */
static detrun_status fill_layer(detrun_model *m, const detrun_layer_kind *k, detrun_layer *l,
                                const detrun_layer_arg *args, int nargs)
{
    detrun_runtime *rt = m->rt;
    detrun_status st;
    if (nargs < 0 || (nargs > 0 && args == NULL))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: %d arguments%s", l->name, nargs,
                             nargs < 0 ? " (a negative count)" : " but args is NULL");
    if ((st = detrun_layer_read_args(rt, l, args, nargs)) != DETRUN_OK)
        return st;
    if (k->supported != NULL && !k->supported(rt->backend))
        return detrun_seterr(rt, DETRUN_ERR_UNSUPPORTED, "%s: %s is not supported by backend %s",
                             l->name, k->name, rt->backend->name);
    if (k->shape != NULL)
        return k->shape(m, l);
    l->out_c = l->in_c;
    l->out_h = l->in_h;
    l->out_w = l->in_w;
    return DETRUN_OK;
}

detrun_status detrun_model_add_layer(detrun_model *m, const char *kind,
                                     const detrun_layer_arg *args, int nargs)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    detrun_runtime *rt = m->rt;
    const detrun_layer_kind *k = kind != NULL ? detrun_layer_kind_find(kind) : NULL;
    if (k == NULL) {
        char names[256];
        detrun_layer_kind_names(names, sizeof names);
        return detrun_seterr(rt, DETRUN_ERR_ARG, "add_layer: unknown layer kind %s%s%s (known: %s)",
                             kind ? "\"" : "", kind ? kind : "NULL", kind ? "\"" : "", names);
    }
    detrun_layer l;
    detrun_status st = begin_layer(m, k, &l);
    if (st == DETRUN_OK)
        st = fill_layer(m, k, &l, args, nargs);
    if (st == DETRUN_OK)
        st = push_layer(m, &l);
    return st == DETRUN_OK ? st : layer_error(m, m->nlayers, l.name, st);
}

/* The fixed-arity functions of the first kinds, kept for hosts: each is
 * detrun_model_add_layer with its arguments as numbers. */
#define ADD(kind, ...)                                                                  \
    do {                                                                                \
        const detrun_layer_arg args_[] = { __VA_ARGS__ };                               \
        return detrun_model_add_layer(m, kind, args_, (int)(sizeof args_ / sizeof args_[0])); \
    } while (0)
#define ARG(key, v) { key, (double)(v), NULL }

detrun_status detrun_model_add_conv2d(detrun_model *m, int filters, int kh, int kw, int stride,
                                      detrun_padding pad, detrun_activation act)
{
    ADD("conv2d", ARG("filters", filters), ARG("kh", kh), ARG("kw", kw), ARG("stride", stride),
        ARG("padding", pad), ARG("activation", act));
}

detrun_status detrun_model_add_maxpool(detrun_model *m, int size, int stride)
{
    ADD("maxpool", ARG("size", size), ARG("stride", stride));
}

detrun_status detrun_model_add_flatten(detrun_model *m)
{
    return detrun_model_add_layer(m, "flatten", NULL, 0);
}

detrun_status detrun_model_add_dense(detrun_model *m, int units, detrun_activation act)
{
    ADD("dense", ARG("units", units), ARG("activation", act));
}

detrun_status detrun_model_add_relu(detrun_model *m)
{
    return detrun_model_add_layer(m, "relu", NULL, 0);
}

detrun_status detrun_model_add_dropout(detrun_model *m, float rate)
{
    ADD("dropout", ARG("rate", rate));
}

/* ---- compile ----------------------------------------------------------- */

static detrun_status check_optimizer(detrun_runtime *rt, const detrun_optimizer *o)
{
    if (o->kind != DETRUN_OPT_ADAM && o->kind != DETRUN_OPT_SGD)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "compile: unknown optimizer %d", (int)o->kind);
    if (!(o->lr > 0.0f) || isinf(o->lr))
        return detrun_seterr(rt, DETRUN_ERR_ARG, "compile: learning rate %g must be positive",
                             (double)o->lr);
    if (o->kind == DETRUN_OPT_ADAM) {
        if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f))
            return detrun_seterr(rt, DETRUN_ERR_ARG, "compile: adam beta1 %g is not in [0, 1)",
                                 (double)o->beta1);
        if (!(o->beta2 >= 0.0f && o->beta2 < 1.0f))
            return detrun_seterr(rt, DETRUN_ERR_ARG, "compile: adam beta2 %g is not in [0, 1)",
                                 (double)o->beta2);
        if (!(o->eps >= 0.0f) || isinf(o->eps))
            return detrun_seterr(rt, DETRUN_ERR_ARG, "compile: adam epsilon %g is negative",
                                 (double)o->eps);
    } else if (!(o->momentum >= 0.0f && o->momentum < 1.0f)) {
        return detrun_seterr(rt, DETRUN_ERR_ARG, "compile: sgd momentum %g is not in [0, 1)",
                             (double)o->momentum);
    }
    return DETRUN_OK;
}

/* The parameter tensors of l, into spec; how many. */
static int layer_params(const detrun_layer *l, detrun_param_spec *spec)
{
    return l->kind->params != NULL ? l->kind->params(l, spec) : 0;
}

static void add_param(detrun_model *m, const detrun_layer *l, const char *suffix, int ndims,
                      const int *dims)
{
    detrun_param *p = &m->params[m->nparams++];
    snprintf(p->name, sizeof p->name, "%s.%s", l->name, suffix);
    p->ndims = ndims;
    p->count = 1;
    for (int d = 0; d < 4; d++)
        p->dims[d] = d < ndims ? dims[d] : 0;
    for (int d = 0; d < ndims; d++)
        p->count *= (size_t)dims[d];
    p->offset = m->total;
    m->total += (p->count + VIEW_ALIGN - 1) / VIEW_ALIGN * VIEW_ALIGN;
}

/* Undoes the allocations of a compile that failed, so that compile can be
 * called again. */
static void uncompile(detrun_model *m)
{
    detrun_backend *be = m->rt->backend;
    be->ops->free(be, m->p);
    be->ops->free(be, m->g);
    be->ops->free(be, m->m);
    be->ops->free(be, m->v);
    m->p = m->g = m->m = m->v = NULL;
    detrun_free(m->rt, m->params, (size_t)m->nparams * sizeof *m->params);
    m->params = NULL;
    m->nparams = 0;
    m->total = 0;
    for (int i = 0; i < m->nlayers; i++)
        m->layers[i].wparam = m->layers[i].bparam = -1;
}

/* Glorot-uniform (docs/determinism.md, "Randomness"): computed on the host
 * so every backend starts from the same bits. */
static void glorot(float *dst, size_t count, int fan_in, int fan_out, uint64_t seed,
                   uint32_t stream, uint32_t index)
{
    float limit = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (size_t e = 0; e < count; e++) {
        float u = detrun_u01(detrun_philox_word(seed, DETRUN_RNG_INIT, stream, index, 0, e));
        dst[e] = (2.0f * u - 1.0f) * limit;
    }
}

/* What the loss needs of the layers: softmax only last, a vector of at
 * least 2 logits at the end. */
static detrun_status check_layers(detrun_model *m)
{
    detrun_runtime *rt = m->rt;
    const detrun_layer *last = &m->layers[m->nlayers - 1];
    for (int i = 0; i < m->nlayers - 1; i++)
        if (m->layers[i].act == DETRUN_ACT_SOFTMAX)
            return layer_error(m, i, m->layers[i].name,
                               detrun_seterr(rt, DETRUN_ERR_ARG,
                                             "%s: softmax is only allowed as the activation of "
                                             "the last layer (it goes with the cross-entropy "
                                             "loss)", m->layers[i].name));
    if (last->act == DETRUN_ACT_SOFTMAX && last->out_h * last->out_w != 1)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "%s: softmax over a %dx%dx%d output: flatten and use dense first",
                             last->name, last->out_c, last->out_h, last->out_w);
    if (last->out_h != 1 || last->out_w != 1)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "%s: the last layer gives %dx%dx%d outputs; the loss needs a "
                             "vector of class logits (end with flatten or dense)",
                             last->name, last->out_c, last->out_h, last->out_w);
    if (last->out_c < 2)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "%s: the last layer gives %d output; the loss needs at least 2 "
                             "classes", last->name, last->out_c);
    return DETRUN_OK;
}

/* The parameter views, layer by layer in the order their kinds list them. */
static detrun_status lay_out_params(detrun_model *m)
{
    detrun_runtime *rt = m->rt;
    int nparams = 0;
    detrun_param_spec spec[DETRUN_LAYER_PARAMS_MAX];
    for (int i = 0; i < m->nlayers; i++)
        nparams += layer_params(&m->layers[i], spec);
    if (nparams == 0)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE, "compile: the model has no parameters "
                                                   "(add a conv2d or dense layer)");
    m->params = detrun_calloc(rt, (size_t)nparams, sizeof *m->params);
    if (m->params == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "compile: out of memory");
    m->nparams = 0;
    m->total = 0;
    for (int i = 0; i < m->nlayers; i++) {
        detrun_layer *l = &m->layers[i];
        int np = layer_params(l, spec);
        for (int j = 0; j < np; j++) {
            if (j == 0)
                l->wparam = m->nparams;
            else
                l->bparam = m->nparams;
            add_param(m, l, spec[j].suffix, spec[j].ndims, spec[j].dims);
        }
    }
    return DETRUN_OK;
}

/* Glorot-uniform weights into the zeroed host block, keyed by parameter index. */
static void init_weights(const detrun_model *m, float *host, uint64_t seed, uint32_t stream)
{
    detrun_param_spec spec[DETRUN_LAYER_PARAMS_MAX];
    for (int i = 0; i < m->nlayers; i++) {
        const detrun_layer *l = &m->layers[i];
        int np = layer_params(l, spec);
        for (int j = 0; j < np; j++) {
            int idx = (j == 0 ? l->wparam : l->bparam);
            const detrun_param *p = &m->params[idx];
            if (spec[j].fan_in > 0)
                glorot(host + p->offset, p->count, spec[j].fan_in, spec[j].fan_out, seed, stream,
                       (uint32_t)idx);
        }
    }
}

detrun_status detrun_model_compile(detrun_model *m, const detrun_optimizer *opt, uint64_t seed,
                                   uint32_t stream)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    detrun_runtime *rt = m->rt;
    detrun_backend *be = rt->backend;
    detrun_optimizer defaults = DETRUN_ADAM_INIT;
    if (opt == NULL)
        opt = &defaults;
    if (m->compiled)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "compile: the model is already compiled");
    if (m->nlayers == 0)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE, "compile: the model has no layers");
    detrun_status st = check_optimizer(rt, opt);
    if (st != DETRUN_OK)
        return st;
    if (stream > DETRUN_STREAM_MAX)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "compile: stream %" PRIu32 " is out of range (at most %u: random "
                             "streams have 24 bits)", stream, DETRUN_STREAM_MAX);
    if ((st = check_layers(m)) != DETRUN_OK && rt->err_layer < 0)
        st = layer_error(m, m->nlayers - 1, m->layers[m->nlayers - 1].name, st);
    if (st != DETRUN_OK || (st = lay_out_params(m)) != DETRUN_OK)
        return st;
    if ((st = detrun_model_check_limits(m)) != DETRUN_OK) {
        uncompile(m);
        return st;
    }

    size_t bytes = m->total * sizeof(float);
    float *host = detrun_calloc(rt, m->total, sizeof *host);
    m->p = be->ops->alloc(be, bytes);
    m->g = be->ops->alloc(be, bytes);
    m->m = be->ops->alloc(be, bytes);
    if (opt->kind == DETRUN_OPT_ADAM)
        m->v = be->ops->alloc(be, bytes);
    if (host == NULL || m->p == NULL || m->g == NULL || m->m == NULL ||
        (opt->kind == DETRUN_OPT_ADAM && m->v == NULL)) {
        detrun_free(rt, host, bytes);
        uncompile(m);
        return detrun_seterr(rt, DETRUN_ERR_MEMORY,
                             "compile: no memory for %zu parameters on %s", m->total,
                             rt->device_name);
    }
    init_weights(m, host, seed, stream);
    st = be->ops->upload(be, m->p, host, bytes);
    detrun_free(rt, host, bytes);
    if (st != DETRUN_OK) {
        uncompile(m);
        return detrun_seterr(rt, st, "compile: could not upload the initial weights");
    }
    m->opt = *opt;
    m->step = 0;
    m->beta1_t = m->beta2_t = 1.0f;
    m->compiled = 1;
    return DETRUN_OK;
}

/* ---- parameters -------------------------------------------------------- */

int detrun_model_param_count(const detrun_model *m)
{
    return m != NULL ? m->nparams : 0;
}

const char *detrun_model_param_name(const detrun_model *m, int i)
{
    if (m == NULL || i < 0 || i >= m->nparams)
        return NULL;
    return m->params[i].name;
}

int detrun_model_param_shape(const detrun_model *m, int i, int dims[4])
{
    if (m == NULL || i < 0 || i >= m->nparams)
        return 0;
    for (int d = 0; d < 4; d++)
        dims[d] = m->params[i].dims[d];
    return m->params[i].ndims;
}

static detrun_status check_param(detrun_model *m, int i, size_t count, const char *what)
{
    if (!m->compiled)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: the model is not compiled yet", what);
    if (i < 0 || i >= m->nparams)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "%s: no parameter %d (the model has %d)",
                             what, i, m->nparams);
    if (count != m->params[i].count)
        return detrun_seterr(m->rt, DETRUN_ERR_SHAPE, "%s: %s has %zu values, not %zu", what,
                             m->params[i].name, m->params[i].count, count);
    return DETRUN_OK;
}

detrun_status detrun_model_param_get(detrun_model *m, int i, float *dst, size_t count)
{
    if (m == NULL || dst == NULL)
        return DETRUN_ERR_ARG;
    detrun_status st = check_param(m, i, count, "param_get");
    if (st != DETRUN_OK)
        return st;
    detrun_backend *be = m->rt->backend;
    st = be->ops->download(be, dst, m->p + m->params[i].offset, count * sizeof *dst);
    if (st != DETRUN_OK)
        return detrun_seterr(m->rt, st, "param_get: could not download %s", m->params[i].name);
    return DETRUN_OK;
}

detrun_status detrun_model_param_set(detrun_model *m, int i, const float *src, size_t count)
{
    if (m == NULL)
        return DETRUN_ERR_ARG;
    if (src == NULL)
        return detrun_seterr(m->rt, DETRUN_ERR_ARG, "param_set: src is NULL");
    detrun_status st = check_param(m, i, count, "param_set");
    if (st != DETRUN_OK)
        return st;
    detrun_backend *be = m->rt->backend;
    st = be->ops->upload(be, m->p + m->params[i].offset, src, count * sizeof *src);
    if (st != DETRUN_OK)
        return detrun_seterr(m->rt, st, "param_set: could not upload %s", m->params[i].name);
    return DETRUN_OK;
}

const char *detrun_model_layer_name(const detrun_model *m, int i)
{
    if (m == NULL || i < 0 || i >= m->nlayers)
        return NULL;
    return m->layers[i].name;
}

uint64_t detrun_model_step(const detrun_model *m)
{
    return m != NULL ? m->step : 0;
}

/* ---- batch buffers ----------------------------------------------------- */

detrun_status detrun_model_reserve(detrun_model *m, int n)
{
    if (n <= m->cap_batch)
        return DETRUN_OK;
    detrun_backend *be = m->rt->backend;
    free_batch_buffers(m);
    size_t nn = (size_t)n;
    size_t in_size = (size_t)m->c * m->h * m->w;
    size_t gmax = in_size;
    int ok = 1;
    m->x = be->ops->alloc(be, nn * in_size * sizeof(float));
    m->y = be->ops->alloc(be, nn * sizeof(int32_t));
    ok = m->x != NULL && m->y != NULL;
    for (int i = 0; i < m->nlayers && ok; i++) {
        detrun_layer *l = &m->layers[i];
        size_t os = detrun_layer_out_size(l);
        if (os > gmax)
            gmax = os;
        if (l->kind->flags & DETRUN_LAYER_ALIAS)
            continue;   /* its output is its input */
        l->out = be->ops->alloc(be, nn * os * sizeof(float));
        ok = l->out != NULL;
        if (ok && l->kind->aux_bytes != NULL) {
            l->aux = be->ops->alloc(be, nn * l->kind->aux_bytes(l));
            ok = l->aux != NULL;
        }
    }
    if (ok) {
        m->grad[0] = be->ops->alloc(be, nn * gmax * sizeof(float));
        m->grad[1] = be->ops->alloc(be, nn * gmax * sizeof(float));
        ok = m->grad[0] != NULL && m->grad[1] != NULL;
    }
    if (!ok) {
        free_batch_buffers(m);
        return detrun_seterr(m->rt, DETRUN_ERR_MEMORY,
                             "model: no memory on %s for the activations of a batch of %d",
                             m->rt->device_name, n);
    }
    m->grad_floats = gmax;
    m->cap_batch = n;
    return DETRUN_OK;
}
