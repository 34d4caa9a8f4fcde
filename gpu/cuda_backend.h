/*
 * cuda_backend.h - what the CUDA backend's files share: its state, error
 * recording and the kernels' entry points (signatures as in backend.h).
 *
 * Kernels in the table return nothing, so the first failure of a CUDA or
 * cuDNN call is kept here (sticky) and returned by the next sync, upload or
 * download (its message through the table's errmsg); once one is kept,
 * later kernels are skipped.
 */
#ifndef DETRUN_CUDA_BACKEND_H
#define DETRUN_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cuda_runtime.h>
#include <cudnn.h>

#include "backend.h"

typedef struct detrun_cuda_plan detrun_cuda_plan;   /* cuDNN descriptors for one conv shape */
typedef struct detrun_cuda_graph detrun_cuda_graph; /* a recorded training step (graph.cu) */

/* What the table's kernel entries do with their calls (graph.cu). */
typedef enum detrun_cuda_rec {
    DETRUN_REC_PLAIN = 0,   /* launch */
    DETRUN_REC_RECORD,      /* launch into the stream's capture (nothing runs yet) */
    DETRUN_REC_REPLAY       /* launch nothing: check the call against the recording, and
                               give a varying kernel its new arguments */
} detrun_cuda_rec;

#define DETRUN_CUDA_GRAPHS 4   /* recorded steps kept (one per batch size) */

typedef struct detrun_cuda {
    int device;
    int portable;             /* 1: the project's kernels only; 0: cuDNN for convolutions */
    detrun_mode mode;
    cudaStream_t stream;
    cudnnHandle_t cudnn;      /* NULL for portable kernels */
    detrun_status status;     /* the first failure; the backend stays failed */
    char err[512];
    uint32_t *rows;           /* device copy of gather's row indices */
    size_t rows_cap;
    int *flag;                /* check_finite's answer */
    void *workspace;          /* cuDNN's scratch, grown on demand */
    size_t workspace_bytes;
    detrun_cuda_plan *plans;  /* cuDNN plans, one per convolution shape */
    uint64_t ws_gen;          /* bumped whenever the workspace moves */
    /* Recorded training steps (graph.cu). */
    int graphs_off;           /* 1: never record (a recording failed, or DETRUN_CUDA_GRAPHS=off) */
    detrun_cuda_rec rec;
    int rec_bad;              /* the step in progress cannot be recorded or replayed */
    uint64_t rec_hash;        /* the calls' fixed arguments so far */
    int rec_nvar;             /* varying kernels so far */
    uint64_t rec_key;
    detrun_cuda_graph *rec_graph;   /* REPLAY: the recording; RECORD: the one being made */
    int warm;                 /* warm_key has run once plainly */
    uint64_t warm_key;
    detrun_cuda_graph *graphs[DETRUN_CUDA_GRAPHS];
} detrun_cuda;

#define DETRUN_CUDA(b) ((detrun_cuda *)(b)->ctx)

/* Record a failure (the first one wins); return 1 when e was a success. */
int detrun_cuda_ok(detrun_cuda *g, cudaError_t e, const char *what);
int detrun_cudnn_ok(detrun_cuda *g, cudnnStatus_t s, const char *what);
void detrun_cuda_fail(detrun_cuda *g, detrun_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Checks the launch that just happened. */
#define DETRUN_CUDA_LAUNCHED(g, what) detrun_cuda_ok((g), cudaGetLastError(), (what))

/* Threads per block of the elementwise kernels, and a grid that covers n
 * items with grid-stride loops. */
#define DETRUN_CUDA_THREADS 256
unsigned detrun_cuda_blocks(size_t n);

/* Device scratch of at least bytes for cuDNN, NULL after a failure. */
void *detrun_cuda_workspace(detrun_cuda *g, size_t bytes);
void detrun_cuda_plans_free(detrun_cuda *g);

/* Recorded steps (graph.cu). Every kernel entry of the table calls
 * detrun_cuda_note with its op and fixed arguments before launching; it
 * returns 1 when the entry must launch nothing (a replay). A kernel whose
 * arguments change from step to step (gather's rows, dropout's address, the
 * per-sample result pointers, Adam's parameters) launches through
 * detrun_cuda_launch_var instead of <<<>>>, which records its graph node or,
 * in a replay, gives that node the new arguments. */
enum {
    DETRUN_OP_GATHER = 1, DETRUN_OP_CONV_FWD, DETRUN_OP_CONV_BWD, DETRUN_OP_POOL_FWD,
    DETRUN_OP_POOL_BWD, DETRUN_OP_DENSE_FWD, DETRUN_OP_DENSE_BWD, DETRUN_OP_RELU_FWD,
    DETRUN_OP_RELU_BWD, DETRUN_OP_DROPOUT_FWD, DETRUN_OP_DROPOUT_BWD, DETRUN_OP_SOFTMAX,
    DETRUN_OP_ADAM, DETRUN_OP_SGD
};
int detrun_cuda_note(detrun_cuda *g, int op, const uint64_t *words, size_t nwords);
void detrun_cuda_launch_var(detrun_cuda *g, const void *func, dim3 grid, dim3 block,
                            size_t shmem, void **args, const char *what);
/* Memory operations and synchronisations cannot be part of a recording. */
void detrun_cuda_not_recordable(detrun_cuda *g);
void detrun_cuda_graphs_free(detrun_cuda *g);
#define DETRUN_CUDA_W(p) ((uint64_t)(uintptr_t)(p))
static inline uint64_t detrun_cuda_fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
#define DETRUN_CUDA_F(f) detrun_cuda_fbits(f)

/* The kernels: the project's own (every flavour; signatures are backend.h's) ... */
extern "C" {
detrun_gather_fn detrun_cuda_gather;
detrun_conv2d_forward_fn detrun_cuda_conv2d_forward;
detrun_conv2d_backward_fn detrun_cuda_conv2d_backward;
detrun_maxpool_forward_fn detrun_cuda_maxpool_forward;
detrun_maxpool_backward_fn detrun_cuda_maxpool_backward;
detrun_dense_forward_fn detrun_cuda_dense_forward;
detrun_dense_backward_fn detrun_cuda_dense_backward;
detrun_relu_forward_fn detrun_cuda_relu_forward;
detrun_relu_backward_fn detrun_cuda_relu_backward;
detrun_dropout_forward_fn detrun_cuda_dropout_forward;
detrun_dropout_backward_fn detrun_cuda_dropout_backward;
detrun_softmax_xent_fn detrun_cuda_softmax_xent;
detrun_adam_step_fn detrun_cuda_adam_step;
detrun_sgd_step_fn detrun_cuda_sgd_step;
detrun_check_finite_fn detrun_cuda_check_finite;
/* A training step, recorded and replayed (graph.cu). */
detrun_run_step_fn detrun_cuda_run_step;
/* The devices, for the registry (devices.cu). */
detrun_backend_list_fn detrun_cuda_list_devices;
/* The registration (listed in the build's backends.c). */
const detrun_backend_reg *detrun_cuda_backend_reg(void);
}

/* ... and cuDNN's convolutions; each returns 0 without doing anything when
 * cuDNN cannot take the shape (asymmetric padding), so the caller runs the
 * project's kernel instead. */
int detrun_cudnn_conv2d_forward(detrun_cuda *g, float *out, const float *in, const float *w,
                                const float *bias, const detrun_conv_dims *d, int relu);
int detrun_cudnn_conv2d_backward(detrun_cuda *g, float *din, float *dw, float *db,
                                 const float *dout, const float *in, const float *w,
                                 const detrun_conv_dims *d);

#endif
