/*
 * backend.h - the table through which runtime/ reaches every kernel.
 *
 * runtime/ (model, training, optimiser orchestration) never touches tensor
 * memory itself: it asks the backend to allocate, copy, and run kernels. The
 * CPU backend (runtime/cpu/) is always built; the CUDA backend (gpu/) plugs in
 * the same table. Pointers passed to kernels are the backend's own memory
 * (host memory for the CPU, device memory for CUDA) unless marked "host".
 *
 * Every kernel follows the order written for it in docs/determinism.md when
 * the backend runs in deterministic mode; in fast mode it may reorder sums.
 * Argument order follows llm.c/THNN: forward (out, in, weight, bias, dims),
 * backward (din, dweight, dbias, dout, in, weight, dims). Shapes are NCHW.
 */
#ifndef DETRUN_BACKEND_H
#define DETRUN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "detrun.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct detrun_conv_dims {
    int n;            /* batch */
    int c, h, w;      /* input channels, height, width */
    int o, oh, ow;    /* output channels, height, width */
    int kh, kw;       /* kernel */
    int stride;       /* >= 1 */
    int pad_top, pad_left;   /* 0 for valid; (k-1)/2 style for same */
} detrun_conv_dims;

typedef struct detrun_pool_dims {
    int n, c, h, w;   /* input */
    int oh, ow;       /* output */
    int size, stride;
} detrun_pool_dims;

/* Philox key/counter of a dropout mask: element e of the layer's output
 * (flattened n-major) uses draw e of counter (block, step, layer,
 * purpose<<24 | stream). See docs/determinism.md "Randomness". */
typedef struct detrun_rng_addr {
    uint64_t seed;
    uint32_t stream;
    uint32_t layer;
    uint32_t step;
} detrun_rng_addr;

typedef struct detrun_adam_params {
    float lr, beta1, beta2, eps;
    float beta1_t, beta2_t;   /* running products beta^t, t = step (from 1) */
} detrun_adam_params;

typedef struct detrun_backend detrun_backend;

struct detrun_backend {
    const char *name;         /* "cpu", "cuda" */
    void *ctx;                /* the backend's own state */

    /* ---- lifetime and settings ---------------------------------------- */
    void (*destroy)(detrun_backend *b);
    /* Called between runs only. */
    detrun_status (*set_mode)(detrun_backend *b, detrun_mode mode);
    detrun_status (*set_threads)(detrun_backend *b, int threads);
    /* Blocks until all queued work is done (no-op on the CPU). */
    detrun_status (*sync)(detrun_backend *b);

    /* ---- memory ------------------------------------------------------- */
    /* Zero-filled, aligned to 64 bytes; NULL on failure. */
    void *(*alloc)(detrun_backend *b, size_t bytes);
    void (*free)(detrun_backend *b, void *p);
    detrun_status (*upload)(detrun_backend *b, void *dst, const void *host_src, size_t bytes);
    detrun_status (*download)(detrun_backend *b, void *host_dst, const void *src, size_t bytes);
    void (*zero)(detrun_backend *b, void *p, size_t bytes);

    /* ---- data --------------------------------------------------------- */
    /* x[i] = images[rows[i]] / 255.0f (exactly, per pixel); y[i] = labels[rows[i]].
     * images/labels are backend memory (uploaded once); rows is host memory. */
    void (*gather)(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                   const uint8_t *labels, size_t pixels, const uint32_t *rows_host, int n);

    /* ---- layers ------------------------------------------------------- */
    /* out: (n, o, oh, ow); in: (n, c, h, w); w: (o, c, kh, kw); b: (o).
     * relu != 0 applies ReLU to the output. */
    void (*conv2d_forward)(detrun_backend *b, float *out, const float *in, const float *w,
                           const float *bias, const detrun_conv_dims *d, int relu);
    /* din may be NULL (first layer). dout is the gradient w.r.t. the output
     * after any fused ReLU has been applied by relu_backward. dw, db are
     * overwritten (not accumulated). */
    void (*conv2d_backward)(detrun_backend *b, float *din, float *dw, float *db,
                            const float *dout, const float *in, const float *w,
                            const detrun_conv_dims *d);
    /* out: (n, c, oh, ow). argmax: (n, c, oh, ow) flat index into the input
     * plane (first maximum in row-major window order). */
    void (*maxpool_forward)(detrun_backend *b, float *out, int32_t *argmax, const float *in,
                            const detrun_pool_dims *d);
    /* din is overwritten. */
    void (*maxpool_backward)(detrun_backend *b, float *din, const float *dout,
                             const int32_t *argmax, const detrun_pool_dims *d);
    /* out: (n, units); in: (n, k); w: (k, units) (Keras layout); b: (units). */
    void (*dense_forward)(detrun_backend *b, float *out, const float *in, const float *w,
                          const float *bias, int n, int k, int units, int relu);
    /* din may be NULL. dw, db overwritten. */
    void (*dense_backward)(detrun_backend *b, float *din, float *dw, float *db,
                           const float *dout, const float *in, const float *w, int n, int k,
                           int units);
    /* out = in > 0 ? in : 0 (in place allowed). */
    void (*relu_forward)(detrun_backend *b, float *out, const float *in, size_t count);
    /* din = out > 0 ? dout : 0 (derivative 0 at 0; in place allowed). */
    void (*relu_backward)(detrun_backend *b, float *din, const float *dout, const float *out,
                          size_t count);
    /* Inverted dropout: keep when u >= rate, out = keep ? in * (1/(1-rate)) : 0.
     * mask receives the multiplier (0 or scale) for the backward pass. */
    void (*dropout_forward)(detrun_backend *b, float *out, float *mask, const float *in,
                            size_t count, float rate, const detrun_rng_addr *addr);
    void (*dropout_backward)(detrun_backend *b, float *din, const float *dout,
                             const float *mask, size_t count);
    /* Softmax + sparse categorical cross-entropy for n samples of `classes`
     * logits. loss[i] and correct[i] (1.0f or 0.0f) per sample; dlogits (may
     * be NULL for evaluation) = (softmax - onehot) / n. */
    void (*softmax_xent)(detrun_backend *b, float *dlogits, float *loss, float *correct,
                         const float *logits, const int32_t *labels, int n, int classes);

    /* ---- optimisers (over the whole parameter block) ------------------ */
    void (*adam_step)(detrun_backend *b, float *p, const float *g, float *m, float *v,
                      size_t count, const detrun_adam_params *a);
    /* v = momentum * v - lr * g; p = p + v (momentum 0: p = p - lr * g). */
    void (*sgd_step)(detrun_backend *b, float *p, const float *g, float *v, size_t count,
                     float lr, float momentum);
    /* Sets *bad to 1 if any of count floats is NaN or infinite (host int). */
    void (*check_finite)(detrun_backend *b, const float *x, size_t count, int *bad);

    /* ---- optional ------------------------------------------------------- */
    /* What the last failed status was about (a CUDA or cuDNN call, named),
     * or NULL; kernels return nothing, so a GPU keeps its first failure and
     * reports it from sync/download. NULL entry: nothing beyond the status. */
    const char *(*errmsg)(detrun_backend *b);

    /* Recorded training steps (NULL: every step issues its calls). Before a
     * training step's calls (gather to the optimiser step), step_begin(b, key)
     * with key = the batch size; 0: issue the calls as usual, no step_end.
     * 1: issue them, then call step_end, which returns 1 when the step has
     * been done (a recording of the same calls replayed with this step's rows,
     * dropout address, result pointers and optimiser parameters, the same work
     * bit for bit), or 0 when nothing of it was done: the caller puts back
     * what its own calls changed (the optimiser's step count and beta powers)
     * and issues the step's calls again. */
    int (*step_begin)(detrun_backend *b, uint64_t key);
    int (*step_end)(detrun_backend *b);

    /* Average pooling (NULL where a backend lacks it: the layer is refused).
     * out: (n, c, oh, ow), each output its window's sum in row-major order
     * from 0, times 1/(size*size); backward overwrites din. */
    void (*avgpool_forward)(detrun_backend *b, float *out, const float *in,
                            const detrun_pool_dims *d);
    void (*avgpool_backward)(detrun_backend *b, float *din, const float *dout,
                             const detrun_pool_dims *d);
};

/* The CPU backend: threads workers (>= 1), in the given mode. */
detrun_status detrun_cpu_backend_new(detrun_backend **out, int threads, detrun_mode mode,
                                     char *err, size_t errlen);

/* The CUDA backend (only when built with DETRUN_CUDA): device index,
 * kernels "cudnn" or "portable". Returns DETRUN_ERR_UNSUPPORTED when the
 * build has no CUDA. */
detrun_status detrun_cuda_backend_new(detrun_backend **out, int device, const char *kernels,
                                      detrun_mode mode, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
