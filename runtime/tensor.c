/*
 * tensor.c - float32 tensors in host memory: shape, arithmetic, sums and
 * products in the orders of docs/determinism.md ("Tensors").
 *
 * Everything here is single-threaded on purpose: a tensor op is small next
 * to training, and one thread keeps each written order trivially the only
 * one. A tensor keeps the allocator it was made with (like a data set), so
 * it can be freed after its runtime is closed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "idx.h"       /* detrun_data_allocator */
#include "internal.h"
#include "mathf.h"
#include "model.h"     /* detrun_fingerprint_update, detrun_fingerprint_hex */
#include "tensor.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

void detrun_tensor_shape_string(int ndims, const int *dims, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndims && at < len; d++) {
        int n = snprintf(buf + at, len - at, d ? "x%d" : "%d", dims[d]);
        if (n < 0)
            break;
        at += (size_t)n;
    }
}

detrun_status detrun_tensor_check_shape(detrun_runtime *rt, const char *what, int ndims,
                                        const int *dims, size_t *count)
{
    if (ndims < 1 || ndims > DETRUN_TENSOR_MAX_DIMS)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE, "%s: a tensor has 1 to %d dimensions, not %d",
                             what, DETRUN_TENSOR_MAX_DIMS, ndims);
    if (dims == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: dims is NULL", what);
    uint64_t n = 1;
    for (int d = 0; d < ndims; d++) {
        if (dims[d] < 1)
            return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                                 "%s: dimension %d is %d; every dimension must be at least 1",
                                 what, d + 1, dims[d]);
        n *= (uint64_t)dims[d];
        if (n > UINT32_MAX)
            return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                                 "%s: more than 2^32 - 1 elements in a tensor", what);
    }
    if (count != NULL)
        *count = (size_t)n;
    return DETRUN_OK;
}

static detrun_status tensor_alloc(detrun_runtime *rt, const char *what, int ndims,
                                  const int *dims, detrun_tensor **out)
{
    if (out == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: out is NULL", what);
    *out = NULL;
    size_t count;
    detrun_status st = detrun_tensor_check_shape(rt, what, ndims, dims, &count);
    if (st != DETRUN_OK)
        return st;
    if (count > (SIZE_MAX - sizeof(detrun_tensor)) / sizeof(float))
        return detrun_seterr(rt, DETRUN_ERR_SHAPE, "%s: tensor too large", what);
    detrun_alloc_fn fn;
    void *ud;
    detrun_data_allocator(rt, &fn, &ud);
    detrun_tensor *t = fn(ud, NULL, 0, sizeof *t + count * sizeof(float));
    if (t == NULL)
        return detrun_seterr(rt, DETRUN_ERR_MEMORY, "%s: out of memory for %zu floats", what,
                             count);
    memset(t, 0, sizeof *t);
    t->ndims = ndims;
    memcpy(t->dims, dims, (size_t)ndims * sizeof(int));
    t->count = count;
    t->data = (float *)(t + 1);
    t->alloc = fn;
    t->alloc_ud = ud;
    *out = t;
    return DETRUN_OK;
}

detrun_status detrun_tensor_new(detrun_runtime *rt, int ndims, const int *dims,
                                detrun_tensor **out)
{
    detrun_status st = tensor_alloc(rt, "tensor_new", ndims, dims, out);
    if (st == DETRUN_OK)
        detrun_tensor_fill(*out, 0.0f);
    return st;
}

void detrun_tensor_free(detrun_tensor *t)
{
    if (t != NULL)
        t->alloc(t->alloc_ud, t, sizeof *t + t->count * sizeof(float), 0);
}

int detrun_tensor_shape(const detrun_tensor *t, int dims[DETRUN_TENSOR_MAX_DIMS])
{
    if (t == NULL)
        return 0;
    if (dims != NULL)
        memcpy(dims, t->dims, (size_t)t->ndims * sizeof(int));
    return t->ndims;
}

size_t detrun_tensor_count(const detrun_tensor *t)
{
    return t != NULL ? t->count : 0;
}

float *detrun_tensor_data(detrun_tensor *t)
{
    return t != NULL ? t->data : NULL;
}

const float *detrun_tensor_cdata(const detrun_tensor *t)
{
    return t != NULL ? t->data : NULL;
}

detrun_status detrun_tensor_reshape(detrun_runtime *rt, detrun_tensor *t, int ndims,
                                    const int *dims)
{
    if (t == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "reshape: tensor is NULL");
    size_t count;
    detrun_status st = detrun_tensor_check_shape(rt, "reshape", ndims, dims, &count);
    if (st != DETRUN_OK)
        return st;
    if (count != t->count) {
        char a[64], b[64];
        detrun_tensor_shape_string(t->ndims, t->dims, a, sizeof a);
        detrun_tensor_shape_string(ndims, dims, b, sizeof b);
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "reshape: %s (%zu elements) cannot become %s (%zu elements)", a,
                             t->count, b, count);
    }
    t->ndims = ndims;
    memset(t->dims, 0, sizeof t->dims);
    memcpy(t->dims, dims, (size_t)ndims * sizeof(int));
    return DETRUN_OK;
}

detrun_status detrun_tensor_clone(detrun_runtime *rt, const detrun_tensor *t,
                                  detrun_tensor **out)
{
    if (t == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "clone: tensor is NULL");
    detrun_status st = tensor_alloc(rt, "clone", t->ndims, t->dims, out);
    if (st == DETRUN_OK)
        memcpy((*out)->data, t->data, t->count * sizeof(float));
    return st;
}

void detrun_tensor_fill(detrun_tensor *t, float value)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++)
        t->data[i] = value;
}

/* One rounded operation; the volatile-free form is enough under
 * -ffp-contract=off, which the build sets everywhere. */
static float apply(detrun_tensor_op op, float a, float b)
{
    switch (op) {
    case DETRUN_TENSOR_SUB: return a - b;
    case DETRUN_TENSOR_MUL: return a * b;
    default: return a + b;
    }
}

static detrun_status check_op(detrun_runtime *rt, const char *what, detrun_tensor_op op)
{
    if (op != DETRUN_TENSOR_ADD && op != DETRUN_TENSOR_SUB && op != DETRUN_TENSOR_MUL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: unknown operation %d", what, (int)op);
    return DETRUN_OK;
}

static int same_shape(const detrun_tensor *a, const detrun_tensor *b)
{
    if (a->ndims != b->ndims)
        return 0;
    for (int d = 0; d < a->ndims; d++)
        if (a->dims[d] != b->dims[d])
            return 0;
    return 1;
}

detrun_status detrun_tensor_binary(detrun_runtime *rt, detrun_tensor_op op,
                                   const detrun_tensor *a, const detrun_tensor *b,
                                   detrun_tensor **out)
{
    detrun_status st = check_op(rt, "tensor arithmetic", op);
    if (st != DETRUN_OK)
        return st;
    if (a == NULL || b == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "tensor arithmetic: a tensor is NULL");
    if (!same_shape(a, b)) {
        char sa[64], sb[64];
        detrun_tensor_shape_string(a->ndims, a->dims, sa, sizeof sa);
        detrun_tensor_shape_string(b->ndims, b->dims, sb, sizeof sb);
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "tensor arithmetic: shapes %s and %s differ", sa, sb);
    }
    if ((st = tensor_alloc(rt, "tensor arithmetic", a->ndims, a->dims, out)) != DETRUN_OK)
        return st;
    float *o = (*out)->data;
    for (size_t i = 0; i < a->count; i++)
        o[i] = apply(op, a->data[i], b->data[i]);
    return DETRUN_OK;
}

detrun_status detrun_tensor_scalar(detrun_runtime *rt, detrun_tensor_op op,
                                   const detrun_tensor *a, float s, int scalar_first,
                                   detrun_tensor **out)
{
    detrun_status st = check_op(rt, "tensor arithmetic", op);
    if (st != DETRUN_OK)
        return st;
    if (a == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "tensor arithmetic: the tensor is NULL");
    if ((st = tensor_alloc(rt, "tensor arithmetic", a->ndims, a->dims, out)) != DETRUN_OK)
        return st;
    float *o = (*out)->data;
    for (size_t i = 0; i < a->count; i++)
        o[i] = scalar_first ? apply(op, s, a->data[i]) : apply(op, a->data[i], s);
    return DETRUN_OK;
}

/* Sequential, from +0, storage order (docs/determinism.md, "Tensors"). */
float detrun_tensor_sum(const detrun_tensor *t)
{
    float acc = 0.0f;
    if (t == NULL)
        return acc;
    for (size_t i = 0; i < t->count; i++)
        acc = acc + t->data[i];
    return acc;
}

float detrun_tensor_mean(const detrun_tensor *t)
{
    if (t == NULL || t->count == 0)
        return 0.0f;
    return detrun_tensor_sum(t) / (float)t->count;
}

/* Dense's forward order without a bias: acc = fma(a[i][k], b[k][j], acc)
 * from +0, k ascending (runtime/cpu/dense.c). */
detrun_status detrun_tensor_matmul(detrun_runtime *rt, const detrun_tensor *a,
                                   const detrun_tensor *b, detrun_tensor **out)
{
    if (a == NULL || b == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "matmul: a tensor is NULL");
    if (a->ndims != 2 || b->ndims != 2 || a->dims[1] != b->dims[0]) {
        char sa[64], sb[64];
        detrun_tensor_shape_string(a->ndims, a->dims, sa, sizeof sa);
        detrun_tensor_shape_string(b->ndims, b->dims, sb, sizeof sb);
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "matmul: needs (n, k) x (k, m) matrices, not %s x %s", sa, sb);
    }
    int n = a->dims[0], k = a->dims[1], m = b->dims[1];
    int dims[2] = { n, m };
    detrun_status st = tensor_alloc(rt, "matmul", 2, dims, out);
    if (st != DETRUN_OK)
        return st;
    float *o = (*out)->data;
    for (int i = 0; i < n; i++) {
        const float *ar = a->data + (size_t)i * (size_t)k;
        for (int j = 0; j < m; j++) {
            float acc = 0.0f;
            for (int kk = 0; kk < k; kk++)
                acc = fmaf(ar[kk], b->data[(size_t)kk * (size_t)m + (size_t)j], acc);
            o[(size_t)i * (size_t)m + (size_t)j] = acc;
        }
    }
    return DETRUN_OK;
}

/* The loss's softmax (docs/determinism.md, "softmax + sparse categorical
 * cross-entropy"): first maximum, expf_dr(x - max), sequential sum from +0,
 * then e / s. */
detrun_status detrun_tensor_softmax(detrun_runtime *rt, const detrun_tensor *logits,
                                    detrun_tensor **out)
{
    if (logits == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "softmax: the tensor is NULL");
    if (logits->ndims != 2)
        return detrun_seterr(rt, DETRUN_ERR_SHAPE,
                             "softmax: needs a (n, classes) tensor, not %d dimensions",
                             logits->ndims);
    detrun_status st = tensor_alloc(rt, "softmax", 2, logits->dims, out);
    if (st != DETRUN_OK)
        return st;
    size_t n = (size_t)logits->dims[0], c = (size_t)logits->dims[1];
    for (size_t i = 0; i < n; i++) {
        const float *x = logits->data + i * c;
        float *p = (*out)->data + i * c;
        float mx = x[0];
        for (size_t j = 1; j < c; j++)
            if (x[j] > mx)
                mx = x[j];
        float s = 0.0f;
        for (size_t j = 0; j < c; j++) {
            p[j] = detrun_expf(x[j] - mx);
            s = s + p[j];
        }
        for (size_t j = 0; j < c; j++)
            p[j] = p[j] / s;
    }
    return DETRUN_OK;
}

void detrun_tensor_fingerprint(const detrun_tensor *t, const char *name, char out[33])
{
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    if (t != NULL)
        detrun_fingerprint_update(&st, name != NULL ? name : "", t->ndims, t->dims, t->data,
                                  t->count);
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    detrun_fingerprint_hex(h.high64, h.low64, out);
}
