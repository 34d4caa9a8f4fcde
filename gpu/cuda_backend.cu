/*
 * cuda_backend.cu - the CUDA backend: its state, memory, settings and table.
 * The kernels live in files named after them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"

void detrun_cuda_fail(detrun_cuda *g, detrun_status st, const char *fmt, ...)
{
    if (g->status != DETRUN_OK)
        return;
    g->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
}

int detrun_cuda_ok(detrun_cuda *g, cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return 1;
    detrun_cuda_fail(g, e == cudaErrorMemoryAllocation ? DETRUN_ERR_MEMORY : DETRUN_ERR_DEVICE,
                     "cuda:%d: %s failed: %s", g->device, what, cudaGetErrorString(e));
    return 0;
}

int detrun_cudnn_ok(detrun_cuda *g, cudnnStatus_t s, const char *what)
{
    if (s == CUDNN_STATUS_SUCCESS)
        return 1;
    detrun_cuda_fail(g, s == CUDNN_STATUS_ALLOC_FAILED ? DETRUN_ERR_MEMORY : DETRUN_ERR_DEVICE,
                     "cuda:%d: cuDNN %s failed: %s", g->device, what, cudnnGetErrorString(s));
    return 0;
}

unsigned detrun_cuda_blocks(size_t n)
{
    size_t b = (n + DETRUN_CUDA_THREADS - 1) / DETRUN_CUDA_THREADS;
    if (b < 1)
        b = 1;
    if (b > 65536)   /* grid-stride loops cover the rest */
        b = 65536;
    return (unsigned)b;
}

void *detrun_cuda_workspace(detrun_cuda *g, size_t bytes)
{
    if (bytes <= g->workspace_bytes)
        return g->workspace;
    if (g->rec != DETRUN_REC_PLAIN)
        detrun_cuda_not_recordable(g);
    g->ws_gen++;   /* recorded steps that used the old one are dropped */
    if (g->workspace) {
        detrun_cuda_ok(g, cudaFree(g->workspace), "cudaFree (workspace)");
        g->workspace = NULL;
        g->workspace_bytes = 0;
    }
    if (!detrun_cuda_ok(g, cudaMalloc(&g->workspace, bytes), "cudaMalloc (cuDNN workspace)")) {
        g->workspace = NULL;
        return NULL;
    }
    g->workspace_bytes = bytes;
    return g->workspace;
}

/* ---- lifetime and settings ------------------------------------------------ */

static void cuda_destroy(detrun_backend *b)
{
    if (!b)
        return;
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g) {
        if (g->stream)
            cudaStreamSynchronize(g->stream);
        detrun_cuda_graphs_free(g);
        detrun_cuda_plans_free(g);
        cudaFree(g->workspace);
        cudaFree(g->rows);
        cudaFree(g->flag);
        if (g->cudnn)
            cudnnDestroy(g->cudnn);
        if (g->stream)
            cudaStreamDestroy(g->stream);
        free(g);
    }
    free(b);
}

static detrun_status cuda_sync(detrun_backend *b)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->rec != DETRUN_REC_PLAIN) {
        detrun_cuda_not_recordable(g);
        return g->status;
    }
    detrun_cuda_ok(g, cudaStreamSynchronize(g->stream), "cudaStreamSynchronize");
    return g->status;
}

static detrun_status cuda_set_mode(detrun_backend *b, detrun_mode mode)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (mode != DETRUN_DETERMINISTIC && mode != DETRUN_FAST) {
        detrun_cuda_fail(g, DETRUN_ERR_ARG, "cuda:%d: unknown mode %d", g->device, (int)mode);
        return DETRUN_ERR_ARG;
    }
    if (mode != g->mode) {
        detrun_status st = cuda_sync(b);
        if (st != DETRUN_OK)
            return st;
        detrun_cuda_graphs_free(g);
        detrun_cuda_plans_free(g);   /* algorithms are chosen per mode */
        g->mode = mode;
    }
    return DETRUN_OK;
}

static detrun_status cuda_set_threads(detrun_backend *b, int threads)
{
    (void)b; (void)threads;   /* host threads play no part in the GPU's order */
    return DETRUN_OK;
}

static const char *cuda_errmsg(detrun_backend *b)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    return g->status != DETRUN_OK ? g->err : NULL;
}

/* ---- memory ----------------------------------------------------------------- */

static void *cuda_alloc(detrun_backend *b, size_t bytes)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    void *p = NULL;
    if (g->rec != DETRUN_REC_PLAIN)
        detrun_cuda_not_recordable(g);   /* the runtime allocates outside its steps */
    if (!detrun_cuda_ok(g, cudaMalloc(&p, bytes ? bytes : 64), "cudaMalloc"))
        return NULL;
    if (!detrun_cuda_ok(g, cudaMemsetAsync(p, 0, bytes ? bytes : 64, g->stream), "cudaMemsetAsync")) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void cuda_free(detrun_backend *b, void *p)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->rec != DETRUN_REC_PLAIN)
        detrun_cuda_not_recordable(g);
    if (p)
        detrun_cuda_ok(g, cudaFree(p), "cudaFree");
}

static detrun_status cuda_upload(detrun_backend *b, void *dst, const void *src, size_t bytes)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    /* Inside a step being recorded or replayed: not done here; the step is
     * then issued again plainly. */
    if (g->rec != DETRUN_REC_PLAIN) {
        detrun_cuda_not_recordable(g);
        return g->status;
    }
    /* Pageable host memory is staged before cudaMemcpyAsync returns, so the
     * caller may reuse src at once. */
    if (bytes)
        detrun_cuda_ok(g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->stream),
                       "upload (cudaMemcpyAsync)");
    return g->status;
}

static detrun_status cuda_download(detrun_backend *b, void *dst, const void *src, size_t bytes)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->rec != DETRUN_REC_PLAIN) {
        detrun_cuda_not_recordable(g);
        return g->status;
    }
    if (bytes && g->status == DETRUN_OK)
        detrun_cuda_ok(g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g->stream),
                       "download (cudaMemcpyAsync)");
    return cuda_sync(b);
}

static void cuda_zero(detrun_backend *b, void *p, size_t bytes)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->rec != DETRUN_REC_PLAIN) {
        detrun_cuda_not_recordable(g);
        return;
    }
    if (bytes)
        detrun_cuda_ok(g, cudaMemsetAsync(p, 0, bytes, g->stream), "cudaMemsetAsync");
}

static void cuda_describe(detrun_backend *b, detrun_backend_info what, char *buf, size_t len)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (!buf || !len)
        return;
    if (what == DETRUN_INFO_DEVICE)
        snprintf(buf, len, "cuda:%d (%s)", g->device, g->portable ? "portable" : "cudnn");
    else
        snprintf(buf, len, "-");   /* no kernel of this backend runs on the host */
}

static const detrun_backend_ops cuda_ops = {
    .destroy = cuda_destroy,
    .set_mode = cuda_set_mode,
    .set_threads = cuda_set_threads,
    .sync = cuda_sync,
    .describe = cuda_describe,
    .errmsg = cuda_errmsg,
    .run_step = detrun_cuda_run_step,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .zero = cuda_zero,
    .gather = detrun_cuda_gather,
    .conv2d_forward = detrun_cuda_conv2d_forward,
    .conv2d_backward = detrun_cuda_conv2d_backward,
    .maxpool_forward = detrun_cuda_maxpool_forward,
    .maxpool_backward = detrun_cuda_maxpool_backward,
    .dense_forward = detrun_cuda_dense_forward,
    .dense_backward = detrun_cuda_dense_backward,
    .relu_forward = detrun_cuda_relu_forward,
    .relu_backward = detrun_cuda_relu_backward,
    .dropout_forward = detrun_cuda_dropout_forward,
    .dropout_backward = detrun_cuda_dropout_backward,
    .softmax_xent = detrun_cuda_softmax_xent,
    .adam_step = detrun_cuda_adam_step,
    .sgd_step = detrun_cuda_sgd_step,
    .check_finite = detrun_cuda_check_finite,
    /* No average pooling kernel yet: a model with avgpool is refused on cuda. */
    .avgpool_forward = NULL,
    .avgpool_backward = NULL,
    .maxpool_relu_backward = NULL,
    /* The pass runs a convolution and its max-pool as two calls. */
    .conv2d_pooled_forward = NULL,
    .conv2d_pooled_wgrad = NULL,
};

/* ---- construction ------------------------------------------------------------ */

static detrun_status refuse(detrun_backend *b, detrun_status st, char *err, size_t errlen,
                            const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    cuda_destroy(b);
    return st;
}

/* Options: kernels=cudnn (the default) or kernels=portable. */
static detrun_status cuda_options(const char *options, int *portable, char *err, size_t errlen)
{
    char kernels[32] = "cudnn";
    if (detrun_backend_option(options, "kernels", kernels, sizeof kernels, err, errlen) < 0)
        return DETRUN_ERR_ARG;
    *portable = strcmp(kernels, "portable") == 0;
    if (!*portable && strcmp(kernels, "cudnn") != 0) {
        if (err && errlen)
            snprintf(err, errlen, "unknown GPU kernels '%s' (use kernels=cudnn or kernels=portable)",
                     kernels);
        return DETRUN_ERR_ARG;
    }
    return DETRUN_OK;
}

/* Checks the request against the devices there are. */
static detrun_status cuda_check_device(int device, char *err, size_t errlen)
{
    char msg[512];
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(msg, sizeof msg, "no CUDA device (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
        return refuse(NULL, DETRUN_ERR_DEVICE, err, errlen, msg);
    }
    if (device < 0 || device >= count) {
        snprintf(msg, sizeof msg, "no CUDA device cuda:%d (this machine has %d: cuda:0%s)",
                 device, count, count > 1 ? " to cuda:N-1" : "");
        return refuse(NULL, DETRUN_ERR_DEVICE, err, errlen, msg);
    }
    return DETRUN_OK;
}

static detrun_status cuda_open(detrun_backend **out, const detrun_backend_params *p, char *err,
                               size_t errlen)
{
    char msg[512];
    if (!out || !p)
        return refuse(NULL, DETRUN_ERR_ARG, err, errlen, "cuda backend: out or params is NULL");
    *out = NULL;
    int portable = 0;
    detrun_status st = cuda_options(p->options, &portable, err, errlen);
    if (st != DETRUN_OK)
        return st;
    if (p->mode != DETRUN_DETERMINISTIC && p->mode != DETRUN_FAST)
        return refuse(NULL, DETRUN_ERR_ARG, err, errlen, "cuda backend: unknown mode");
    if ((st = cuda_check_device(p->device, err, errlen)) != DETRUN_OK)
        return st;

    detrun_backend *b = (detrun_backend *)calloc(1, sizeof *b);
    detrun_cuda *g = (detrun_cuda *)calloc(1, sizeof *g);
    if (!b || !g) {
        free(g);
        free(b);
        return refuse(NULL, DETRUN_ERR_MEMORY, err, errlen, "cuda backend: out of host memory");
    }
    b->name = "cuda";
    b->ops = &cuda_ops;
    b->ctx = g;
    g->device = p->device;
    g->portable = portable;
    g->mode = p->mode;
    /* Recorded steps give the bits of plain calls; DETRUN_CUDA_GRAPHS=off
     * (read here, once) issues every call, to compare or to debug. */
    const char *graphs = getenv("DETRUN_CUDA_GRAPHS");
    g->graphs_off = graphs != NULL && strcmp(graphs, "off") == 0;

    if (detrun_cuda_ok(g, cudaSetDevice(p->device), "cudaSetDevice") &&
        detrun_cuda_ok(g, cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking),
                       "cudaStreamCreate") &&
        detrun_cuda_ok(g, cudaMalloc(&g->flag, sizeof(int)), "cudaMalloc") &&
        detrun_cuda_ok(g, cudaMemsetAsync(g->flag, 0, sizeof(int), g->stream), "cudaMemsetAsync") &&
        !portable && detrun_cudnn_ok(g, cudnnCreate(&g->cudnn), "cudnnCreate"))
        detrun_cudnn_ok(g, cudnnSetStream(g->cudnn, g->stream), "cudnnSetStream");
    if (g->status != DETRUN_OK) {
        snprintf(msg, sizeof msg, "%s", g->err);
        return refuse(b, g->status, err, errlen, msg);
    }
    *out = b;
    return DETRUN_OK;
}

extern "C" const detrun_backend_reg *detrun_cuda_backend_reg(void)
{
    static const detrun_backend_reg reg = { "cuda", cuda_open, detrun_cuda_list_devices };
    return &reg;
}
