/*
 * conv2d.h - what the convolution's files share: the job a call hands its
 * tasks, the sizes the vector paths are built around, and the paths.
 *
 * conv2d.c holds the plain reference (any stride and padding), conv2d_avx2.c
 * the pixel-grid correlation and the 16-lane pair weight gradient,
 * conv2d_wgrad_avx2.c the weight gradients with eight channels to a register,
 * conv2d_wgrad_avx512.c those with a weight's 16 lanes to a register,
 * conv2d_dispatch.c the entry points and the table that picks a path. Every
 * path follows docs/determinism.md's written orders, so any of them gives
 * the same bits.
 */
#ifndef DETRUN_CPU_CONV2D_H
#define DETRUN_CPU_CONV2D_H

#include <stddef.h>

#include "cpu.h"

#if defined(__x86_64__)
#define DETRUN_CONV2D_AVX2 1
#else
#define DETRUN_CONV2D_AVX2 0
#endif

#define LANES 16
#define MAX_TAPS 1024
#define DWC_KW 3              /* the kernel width the channel-vector weight gradient takes */
#define DWC_NO 4              /* channel-vector weight gradient: output channels per task */
/* Floats past a grid's last pixel that its last register's whole-vector
 * reads may touch. */
#define GRID_SLACK 16
/* Floats of the row copies that the last rows of a batch are read through. */
#define DW_ROW_MAX 2048

/* Weight gradient (dw[t] for each tap) and, when db is not NULL, bias
 * gradient of one (o, c) pair over samples [n0, n1). */
typedef void conv_dw_pair_fn(float *dw, float *db, const float *dout, const float *in,
                             const detrun_conv_dims *d, int o, int c, int n0, int n1);

typedef struct conv_job {
    detrun_cpu *cpu;
    float *out, *din, *dw, *db;
    const float *in, *dout, *w, *bias;
    const detrun_conv_dims *d;
    int relu;
    int ocs_tiles;            /* channel pairs (plain forward) */
    const int *off;
    int np;                   /* grid pixels: (oh - 1) * grid width + ow */
    size_t in_floats;         /* per thread: the sample's (padded) input */
    float *scratch;
    size_t scratch_per_thread;
    /* Run on each sample by the input gradient's tasks before its gradient
     * (a layout for the weight gradient), or NULL. */
    void (*per_sample)(const struct conv_job *j, int n);
    conv_dw_pair_fn *dw_pair; /* pair paths: the pair kernel */
    float *in_t;              /* channel-vector weight gradient: input as (c/8, n, h, w, 8) */
    float *dout_t;            /* and dout as (ceil(o/8), n, oh, ow, 8) */
    float *dout_s;            /* o-vector weight gradient: (thread, oh, ow, 8) */
    float *lanes;             /* lanes of the vector weight gradients (see their files) */
    int lane_group;           /* o-vector weight gradient: lanes per task */
    /* conv2d_pooled_wgrad: dout is NULL and each sample's planes of it are
     * rebuilt by the max-pool's backward from these (codes: maxpool.h's),
     * pd being the pool's dims; codes is NULL otherwise. */
    const float *pool_dout, *pooled;
    const unsigned char *codes;
    const detrun_pool_dims *pd;
    /* conv2d_pooled_forward: the pool's output and codes. */
    float *pooled_out;
    unsigned char *codes_out;
} conv_job;

static inline int conv_in_range(int v, int n)
{
    return v >= 0 && v < n;
}

/* The fixed combining tree of the 16 lanes. */
static inline float conv_lanes_tree(float *L)
{
    for (int h = LANES / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            L[l] = L[l] + L[l + h];
    return L[0];
}

/* conv2d.c: the reference, any stride and padding. */
conv_dw_pair_fn detrun_cpu_conv2d_dw_pair_plain;
void detrun_cpu_conv2d_forward_plain_task(void *arg, int task, int thread);
void detrun_cpu_conv2d_din_plain_task(void *arg, int n, int thread);

/* A valid correlation on a pixel grid, written straight into the output:
 * grid pixel p = y * gw + x (p in [0, np), np = (oh - 1) * gw + ow) runs
 * the chain over ic, then tap t, of fma(in[ic * ips + p + off[t]],
 * w[oc * w_oc + ic * w_ic + t], acc) from init[oc] (or +0), then `acc > 0 ?
 * acc : +0` when relu, and is out[oc * ops + y * ow + x] when x < ow. For an
 * image of width gw and off[t] = ky * gw + kx, that is output (y, x); the
 * pixels x >= ow of each row are computed and dropped, so that neighbouring
 * grid pixels always share one contiguous load. */
typedef struct grid_args {
    float *out;               /* (ocs, ops) */
    size_t ops;
    int gw, oh, ow;
    const float *in;          /* (ics, ips), readable up to np + GRID_SLACK + max(off) past the last plane's start */
    size_t ips;
    int ics, ocs, np;
    const float *w;
    size_t w_oc, w_ic;
    const int *off;
    int taps;
    const float *init;        /* per oc, or NULL for +0 */
    int relu;
    /* The AVX2 path's grid buffer (ocs, ogs): its registers go there whole
     * and then row by row to out, without masked stores (slow on some
     * CPUs). */
    float *og;
    size_t ogs;
} grid_args;

/* The grid buffer's floats per channel (AVX2), and per thread (none for
 * the AVX-512 path, which stores into the output rows directly). */
static inline size_t grid_plane(int np)
{
    return ((size_t)np + 7) & ~(size_t)7;
}

static inline size_t grid_buffer_floats(const detrun_cpu *c, int chans, int np)
{
    return c->simd >= DETRUN_CPU_SIMD_AVX512 ? 0 : (size_t)chans * grid_plane(np);
}

#if DETRUN_CONV2D_AVX2
/* conv2d_avx512.c: the same correlation, 16 pixels to a register; and
 * dst[r * dpitch + x] = src[r * spitch + x] for r < rows, x < cols. */
void detrun_cpu_conv2d_grid_corr_avx512(const grid_args *a);
void detrun_cpu_conv2d_copy_rows_avx512(float *dst, size_t dpitch, const float *src,
                                        size_t spitch, int rows, int cols);

/* conv2d_avx2.c: stride 1 (and no input padding for the forward and the
 * weight gradient). */
conv_dw_pair_fn detrun_cpu_conv2d_dw_pair_avx2;
void detrun_cpu_conv2d_forward_grid_task(void *arg, int n, int thread);
void detrun_cpu_conv2d_forward_pooled_task(void *arg, int n, int thread);
void detrun_cpu_conv2d_din_grid_task(void *arg, int n, int thread);

/* conv2d_wgrad_avx2.c: the weight gradients with eight channels to a
 * register; each returns -1 without its lanes (no scratch), else 0. */
void detrun_cpu_conv2d_to_channels_last(const conv_job *j, int n);
int detrun_cpu_conv2d_dw_cvec_run(conv_job *j);
int detrun_cpu_conv2d_dw_ovec_run(conv_job *j);

/* conv2d_wgrad_avx512.c: the weight and bias gradients with the 16 lanes of
 * one weight in one register; 3x3 kernels, stride 1, no padding. Needs no
 * scratch: returns 0. With j->codes, dout's planes of a sample are rebuilt
 * in j->scratch: DW512_POOLED_FLOATS(d) per thread (3 planes: the output
 * channels of a task at most). */
#define DW512_POOLED_FLOATS(d) ((size_t)3 * (((size_t)(d)->oh * (d)->ow + 15) & ~(size_t)15))
int detrun_cpu_conv2d_dw_avx512_run(conv_job *j);
#endif

#endif
