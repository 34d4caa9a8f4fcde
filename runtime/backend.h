/*
 * backend.h - the table through which runtime/ reaches every kernel.
 *
 * runtime/ (model, training, optimiser orchestration) never touches tensor
 * memory itself: it asks the backend to allocate, copy, and run kernels
 * through the backend's table (detrun_backend_ops, one static const per
 * backend). Backends are found by name in the registry at the end of this
 * file. Pointers passed to kernels are the backend's own memory (host memory
 * for the CPU, device memory for a GPU) unless marked "host".
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

/* What describe() writes. */
typedef enum detrun_backend_info {
    DETRUN_INFO_DEVICE = 0,   /* the device for reports: "cpu", "cuda:0 (portable)" */
    DETRUN_INFO_ISA           /* the host instruction set of its kernels: "avx2+fma",
                                 "scalar", or "-" when the host runs none */
} detrun_backend_info;

/* One training step as the training loop issues it (batch_step.c). issue()
 * makes the step's calls, from gathering the batch to the optimiser step;
 * rewind() puts back what issue() changed on the host (the optimiser's step
 * count and beta powers), so that issue() may run again from the same state.
 * key names the shape of the calls (the batch size). */
typedef struct detrun_step {
    detrun_status (*issue)(void *ctx);
    void (*rewind)(void *ctx);
    void *ctx;
    uint64_t key;
} detrun_step;

/* ---- the signatures of the table's entries, each written once ---------- */

/* Lifetime and settings. set_mode and set_threads are called between runs only. */
typedef void detrun_destroy_fn(detrun_backend *b);
typedef detrun_status detrun_set_mode_fn(detrun_backend *b, detrun_mode mode);
typedef detrun_status detrun_set_threads_fn(detrun_backend *b, int threads);
/* Blocks until all queued work is done (no-op on the CPU). */
typedef detrun_status detrun_sync_fn(detrun_backend *b);
/* Writes what (detrun_backend_info) into buf, always NUL-terminated. */
typedef void detrun_describe_fn(detrun_backend *b, detrun_backend_info what, char *buf,
                                size_t len);
/* What the last failed status was about (a CUDA or cuDNN call, named), or
 * NULL; kernels return nothing, so a GPU keeps its first failure and reports
 * it from sync/download. */
typedef const char *detrun_backend_errmsg_fn(detrun_backend *b);
/* Runs one training step: issue() once, or as the backend sees fit (a GPU
 * may record the calls and replay the recording with this step's arguments,
 * the same work bit for bit; when a replay cannot be used it calls rewind()
 * and issue() again). Returns issue()'s status. */
typedef detrun_status detrun_run_step_fn(detrun_backend *b, const detrun_step *step);

/* Memory. alloc: zero-filled, aligned to 64 bytes; NULL on failure. */
typedef void *detrun_buffer_alloc_fn(detrun_backend *b, size_t bytes);
typedef void detrun_buffer_free_fn(detrun_backend *b, void *p);
/* upload: host src to backend dst; download: backend src to host dst. */
typedef detrun_status detrun_copy_fn(detrun_backend *b, void *dst, const void *src, size_t bytes);
typedef void detrun_zero_fn(detrun_backend *b, void *p, size_t bytes);

/* x[i] = images[rows[i]] / 255.0f (exactly, per pixel); y[i] = labels[rows[i]].
 * images/labels are backend memory (uploaded once); rows is host memory. */
typedef void detrun_gather_fn(detrun_backend *b, float *x, int32_t *y, const uint8_t *images,
                              const uint8_t *labels, size_t pixels, const uint32_t *rows_host,
                              int n);
/* out: (n, o, oh, ow); in: (n, c, h, w); w: (o, c, kh, kw); b: (o).
 * relu != 0 applies ReLU to the output. */
typedef void detrun_conv2d_forward_fn(detrun_backend *b, float *out, const float *in,
                                      const float *w, const float *bias,
                                      const detrun_conv_dims *d, int relu);
/* din may be NULL (first layer). dout is the gradient w.r.t. the output
 * after any fused ReLU has been applied by relu_backward. dw, db are
 * overwritten (not accumulated). */
typedef void detrun_conv2d_backward_fn(detrun_backend *b, float *din, float *dw, float *db,
                                       const float *dout, const float *in, const float *w,
                                       const detrun_conv_dims *d);
/* out: (n, c, oh, ow). argmax: room for (n, c, oh, ow) int32, where the
 * backend records each output's choice (the first maximum in row-major
 * window order) in its own form, for its backward only: the flat index into
 * the input plane, or on the CPU one byte per output for 2x2 windows at
 * stride 2 (docs/determinism.md). */
typedef void detrun_maxpool_forward_fn(detrun_backend *b, float *out, int32_t *argmax,
                                       const float *in, const detrun_pool_dims *d);
/* din is overwritten. */
typedef void detrun_maxpool_backward_fn(detrun_backend *b, float *din, const float *dout,
                                        const int32_t *argmax, const detrun_pool_dims *d);
/* maxpool_backward of relu_backward(dout, pooled), in one pass: pooled is the
 * forward's out, so din = (argmax here) ? (pooled > 0 ? +0 + dout : +0) : +0. */
typedef void detrun_maxpool_relu_backward_fn(detrun_backend *b, float *din, const float *dout,
                                             const float *pooled, const int32_t *argmax,
                                             const detrun_pool_dims *d);
/* conv2d_forward then maxpool_forward (pd) on its output, a sample at a
 * time while the sample's output is in the near caches: the same bits in
 * pooled and argmax. out: the convolution's output, or NULL when no one
 * reads it (it may then stay in the backend's scratch). Returns 1 when
 * done, 0 when the backend has no such path for these sizes (nothing
 * written: the caller runs the two). */
typedef int detrun_conv2d_pooled_forward_fn(detrun_backend *b, float *out, float *pooled,
                                            int32_t *argmax, const float *in, const float *w,
                                            const float *bias, const detrun_conv_dims *d,
                                            int relu, const detrun_pool_dims *pd);
/* The weight and bias gradients (dw, db overwritten) of a convolution whose
 * output went into the max-pool pd (through its fused ReLU when pooled is
 * not NULL), from the pool's output gradient pool_dout: the bits of
 * maxpool_relu_backward (or maxpool_backward) into d(conv out) and then
 * conv2d_backward with din NULL, without the full-size d(conv out).
 * Returns 1 when done, 0 when the backend has no such path for these sizes
 * (nothing written: the caller runs the two). */
typedef int detrun_conv2d_pooled_wgrad_fn(detrun_backend *b, float *dw, float *db,
                                          const float *pool_dout, const float *pooled,
                                          const int32_t *argmax, const float *in,
                                          const detrun_conv_dims *d, const detrun_pool_dims *pd);
/* out: (n, units); in: (n, k); w: (k, units) (Keras layout); b: (units). */
typedef void detrun_dense_forward_fn(detrun_backend *b, float *out, const float *in,
                                     const float *w, const float *bias, int n, int k, int units,
                                     int relu);
/* din may be NULL. dw, db overwritten. */
typedef void detrun_dense_backward_fn(detrun_backend *b, float *din, float *dw, float *db,
                                      const float *dout, const float *in, const float *w, int n,
                                      int k, int units);
/* out = in > 0 ? in : 0 (in place allowed). */
typedef void detrun_relu_forward_fn(detrun_backend *b, float *out, const float *in, size_t count);
/* din = out > 0 ? dout : 0 (derivative 0 at 0; in place allowed). */
typedef void detrun_relu_backward_fn(detrun_backend *b, float *din, const float *dout,
                                     const float *out, size_t count);
/* Inverted dropout: keep when u >= rate, out = keep ? in * (1/(1-rate)) : 0.
 * mask receives the multiplier (0 or scale) for the backward pass. */
typedef void detrun_dropout_forward_fn(detrun_backend *b, float *out, float *mask,
                                       const float *in, size_t count, float rate,
                                       const detrun_rng_addr *addr);
typedef void detrun_dropout_backward_fn(detrun_backend *b, float *din, const float *dout,
                                        const float *mask, size_t count);
/* Softmax + sparse categorical cross-entropy for n samples of `classes`
 * logits. loss[i] and correct[i] (1.0f or 0.0f) per sample; dlogits (may
 * be NULL for evaluation) = (softmax - onehot) / n. */
typedef void detrun_softmax_xent_fn(detrun_backend *b, float *dlogits, float *loss,
                                    float *correct, const float *logits, const int32_t *labels,
                                    int n, int classes);
/* Optimisers, over the whole parameter block. */
typedef void detrun_adam_step_fn(detrun_backend *b, float *p, const float *g, float *m, float *v,
                                 size_t count, const detrun_adam_params *a);
/* v = momentum * v - lr * g; p = p + v (momentum 0: p = p - lr * g). */
typedef void detrun_sgd_step_fn(detrun_backend *b, float *p, const float *g, float *v,
                                size_t count, float lr, float momentum);
/* Sets *bad to 1 if any of count floats is NaN or infinite (host int). */
typedef void detrun_check_finite_fn(detrun_backend *b, const float *x, size_t count, int *bad);
/* Average pooling. out: (n, c, oh, ow), each output its window's sum in
 * row-major order from 0, times 1/(size*size); backward overwrites din. */
typedef void detrun_avgpool_forward_fn(detrun_backend *b, float *out, const float *in,
                                       const detrun_pool_dims *d);
typedef void detrun_avgpool_backward_fn(detrun_backend *b, float *din, const float *dout,
                                        const detrun_pool_dims *d);

/* A backend's table: one static const initializer per backend, every entry
 * set but the optional layer kernels at the end (NULL: the layer is refused). */
typedef struct detrun_backend_ops {
    detrun_destroy_fn *destroy;
    detrun_set_mode_fn *set_mode;
    detrun_set_threads_fn *set_threads;
    detrun_sync_fn *sync;
    detrun_describe_fn *describe;
    detrun_backend_errmsg_fn *errmsg;
    detrun_run_step_fn *run_step;

    detrun_buffer_alloc_fn *alloc;
    detrun_buffer_free_fn *free;
    detrun_copy_fn *upload;
    detrun_copy_fn *download;
    detrun_zero_fn *zero;

    detrun_gather_fn *gather;
    detrun_conv2d_forward_fn *conv2d_forward;
    detrun_conv2d_backward_fn *conv2d_backward;
    detrun_maxpool_forward_fn *maxpool_forward;
    detrun_maxpool_backward_fn *maxpool_backward;
    detrun_dense_forward_fn *dense_forward;
    detrun_dense_backward_fn *dense_backward;
    detrun_relu_forward_fn *relu_forward;
    detrun_relu_backward_fn *relu_backward;
    detrun_dropout_forward_fn *dropout_forward;
    detrun_dropout_backward_fn *dropout_backward;
    detrun_softmax_xent_fn *softmax_xent;

    detrun_adam_step_fn *adam_step;
    detrun_sgd_step_fn *sgd_step;
    detrun_check_finite_fn *check_finite;

    /* Optional. */
    detrun_avgpool_forward_fn *avgpool_forward;
    detrun_avgpool_backward_fn *avgpool_backward;
    /* NULL: relu_backward, then maxpool_backward. */
    detrun_maxpool_relu_backward_fn *maxpool_relu_backward;
    /* NULL: conv2d_forward, then maxpool_forward. */
    detrun_conv2d_pooled_forward_fn *conv2d_pooled_forward;
    /* NULL: the pool's backward, then conv2d_backward. */
    detrun_conv2d_pooled_wgrad_fn *conv2d_pooled_wgrad;
} detrun_backend_ops;

struct detrun_backend {
    const char *name;                 /* the registered name: "cpu", "cuda" */
    const detrun_backend_ops *ops;
    void *ctx;                        /* the backend's own state */
};

/* ===================================================================== */
/* The registry                                                          */
/* ===================================================================== */

/* What a backend is opened with. */
typedef struct detrun_backend_params {
    int device;               /* N of "name:N" (0 for a bare "name") */
    const char *options;      /* "key=value,key=value" (see detrun_options), or NULL */
    detrun_mode mode;
    int threads;              /* host worker threads, >= 1 */
    detrun_alloc_fn alloc;    /* the runtime's allocator, for the backend's host memory */
    void *alloc_ud;
} detrun_backend_params;

/* Opens device p->device of the backend; on failure writes why into err. */
typedef detrun_status detrun_backend_open_fn(detrun_backend **out, const detrun_backend_params *p,
                                             char *err, size_t errlen);
/* Writes a human-readable list of the backend's devices into buf (always
 * NUL-terminated, truncated to len); returns how many there are. */
typedef int detrun_backend_list_fn(char *buf, size_t len);

typedef struct detrun_backend_reg {
    const char *name;                     /* what device names start with: "cpu", "cuda" */
    detrun_backend_open_fn *open;
    detrun_backend_list_fn *list_devices; /* NULL: one device, the host, nothing to list */
} detrun_backend_reg;

/* What the build's generated backends.c defines: the registration entry
 * points of the backends it compiled, then NULL; the known backends it left
 * out and why ("built without CUDA: ..."), then { NULL, NULL }. */
typedef const detrun_backend_reg *detrun_backend_reg_entry(void);
extern detrun_backend_reg_entry *const detrun_backends_built[];
typedef struct detrun_backend_missing {
    const char *name, *why;
} detrun_backend_missing;
extern const detrun_backend_missing detrun_backends_missing[];

/* The backends of this build in a fixed order (the build writes the list:
 * backends.c), then NULL. */
const detrun_backend_reg *detrun_backend_reg_get(size_t i);
/* The backend registered under name, or NULL. */
const detrun_backend_reg *detrun_backend_reg_find(const char *name);
/* Why a known backend is missing from this build ("built without CUDA: ..."),
 * or NULL when name is not such a backend. */
const char *detrun_backend_absent(const char *name);

/* Opens a device by name: "cpu", "cuda", "cuda:N" (p->device is ignored;
 * the name's index is used). Writes why into err on failure: a name no
 * backend has is DETRUN_ERR_DEVICE, a backend this build left out
 * DETRUN_ERR_UNSUPPORTED, a malformed options string DETRUN_ERR_ARG. */
detrun_status detrun_backend_open(const char *device, const detrun_backend_params *p,
                                  detrun_backend **out, char *err, size_t errlen);

/* Finds key in a backend options string ("kernels=portable,x=y"): copies its
 * value into val and returns 1; 0 when absent; -1 when the string is not a
 * list of key=value items (err then says where). key NULL: only checks. */
int detrun_backend_option(const char *options, const char *key, char *val, size_t vallen,
                          char *err, size_t errlen);

/* Memory of a backend's host side through the runtime's allocator: 64-byte
 * aligned blocks (the hook itself promises no alignment), freed with
 * detrun_aligned_free. NULL on failure; contents undefined. */
void *detrun_aligned_alloc(detrun_alloc_fn alloc, void *ud, size_t bytes);
void detrun_aligned_free(detrun_alloc_fn alloc, void *ud, void *p);

/* The CPU backend outside a runtime (kernel tests): threads workers (>= 1),
 * in the given mode, malloc'd memory. */
detrun_status detrun_cpu_backend_new(detrun_backend **out, int threads, detrun_mode mode,
                                     char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
