/*
 * conv2d forward and backward, the project's kernels (docs/determinism.md
 * "conv2d", R1, R2). With kernels "cudnn" the convolutions go to cuDNN
 * (conv2d_cudnn.cu) when it takes the shape.
 *
 * Forward and input gradient: one thread per output element, a sequential
 * fma chain in the written order. Weight and bias gradients: the 16-lane
 * scheme, lane l a thread that walks samples, rows and the columns x with
 * x mod 16 == l in order, the 16 lanes then combined by the fixed tree with
 * warp shuffles. In fast mode the samples are cut into chunks whose results
 * meet by float atomicAdd.
 */
#include "cuda_backend.h"

#define LANES 16
#define SLOTS 32        /* (ky, kx) positions per block, the bias counting as one */
#define FAST_CHUNK 10   /* samples per partial gradient in fast mode */

__global__ static void conv2d_forward_kernel(float *out, const float *in, const float *w,
                                             const float *bias, detrun_conv_dims d, int relu)
{
    size_t total = (size_t)d.n * d.o * d.oh * d.ow;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int x = (int)(i % d.ow);
        int y = (int)(i / d.ow % d.oh);
        int o = (int)(i / ((size_t)d.ow * d.oh) % d.o);
        size_t s = i / ((size_t)d.ow * d.oh * d.o);
        float acc = bias ? bias[o] : 0.0f;
        for (int c = 0; c < d.c; c++) {
            const float *src = in + (s * d.c + c) * d.h * d.w;
            const float *wk = w + ((size_t)o * d.c + c) * d.kh * d.kw;
            for (int ky = 0; ky < d.kh; ky++) {
                int iy = y * d.stride + ky - d.pad_top;
                int rowok = iy >= 0 && iy < d.h;
                for (int kx = 0; kx < d.kw; kx++) {
                    int ix = x * d.stride + kx - d.pad_left;
                    float v = rowok && ix >= 0 && ix < d.w ? src[iy * d.w + ix] : 0.0f;
                    acc = __fmaf_rn(v, wk[ky * d.kw + kx], acc);
                }
            }
        }
        out[i] = relu && !(acc > 0.0f) ? 0.0f : acc;
    }
}

/* din[n][c][iy][ix]: over o, ky, kx ascending, the output (y, x) with
 * y*stride + ky - pad_top == iy (and likewise x); one outside the output
 * reads +0, the fma still done. */
__global__ static void conv2d_din_kernel(float *din, const float *dout, const float *w,
                                         detrun_conv_dims d)
{
    size_t total = (size_t)d.n * d.c * d.h * d.w;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ix = (int)(i % d.w);
        int iy = (int)(i / d.w % d.h);
        int c = (int)(i / ((size_t)d.w * d.h) % d.c);
        size_t s = i / ((size_t)d.w * d.h * d.c);
        float acc = 0.0f;
        for (int o = 0; o < d.o; o++) {
            const float *dy = dout + (s * d.o + o) * d.oh * d.ow;
            const float *wk = w + ((size_t)o * d.c + c) * d.kh * d.kw;
            for (int ky = 0; ky < d.kh; ky++) {
                int ty = iy + d.pad_top - ky;
                if (ty % d.stride != 0)
                    continue;
                int y = ty / d.stride;
                int rowok = y >= 0 && y < d.oh;
                for (int kx = 0; kx < d.kw; kx++) {
                    int tx = ix + d.pad_left - kx;
                    if (tx % d.stride != 0)
                        continue;
                    int x = tx / d.stride;
                    float v = rowok && x >= 0 && x < d.ow ? dy[y * d.ow + x] : 0.0f;
                    acc = __fmaf_rn(v, wk[ky * d.kw + kx], acc);
                }
            }
        }
        din[i] = acc;
    }
}

/* One sample's terms of slot k into lane `lane`: rows ascending, then the
 * columns x = lane, lane + 16, ... (dy: the sample's dout plane of o, src:
 * its input plane of c; global or shared memory). */
__device__ static float lane_terms(float L, const float *dy, const float *src,
                                   const detrun_conv_dims &d, int k, int kk, int lane)
{
    if (k < kk) {
        int ky = k / d.kw, kx = k % d.kw;
        /* Unrolled so that loads are issued ahead of the fma chain. */
#pragma unroll 4
        for (int y = 0; y < d.oh; y++) {
            int iy = y * d.stride + ky - d.pad_top;
            int rowok = iy >= 0 && iy < d.h;
            for (int x = lane; x < d.ow; x += LANES) {
                int ix = x * d.stride + kx - d.pad_left;
                float v = rowok && ix >= 0 && ix < d.w ? src[iy * d.w + ix] : 0.0f;
                L = __fmaf_rn(dy[y * d.ow + x], v, L);
            }
        }
    } else {
        for (int y = 0; y < d.oh; y++)
            for (int x = lane; x < d.ow; x += LANES)
                L = __fadd_rn(L, dy[y * d.ow + x]);
    }
    return L;
}

/* Block (o*c + c, slot group, sample chunk); thread = slot * 16 + lane;
 * SLOTS * LANES threads (slots past the last only stage and shuffle).
 * Slot k < kh*kw is the weight dw[o][c][k]; slot kh*kw is db[o] (in the
 * c == 0 blocks only). stage > 0: the block first copies the dout and input
 * planes of `stage` samples into shared memory (the chains are latency
 * bound, and shared memory answers far sooner than L2); samples are still
 * taken in ascending order, so the sums are the same. */
__global__ static void conv2d_dw_kernel(float *dw, float *db, const float *dout, const float *in,
                                        detrun_conv_dims d, int atomic, int stage)
{
    extern __shared__ float sh[];
    int kk = d.kh * d.kw;
    int o = blockIdx.x / d.c, c = blockIdx.x % d.c;
    int slot = threadIdx.x / LANES, lane = threadIdx.x % LANES;
    int k = blockIdx.y * SLOTS + slot;
    int n0 = atomic ? blockIdx.z * FAST_CHUNK : 0;
    int n1 = atomic ? min(d.n, n0 + FAST_CHUNK) : d.n;
    int active = k < kk || (k == kk && c == 0);
    size_t po = (size_t)d.oh * d.ow, pi = (size_t)d.h * d.w;
    float L = 0.0f;
    if (stage == 0) {
        if (active)
            for (int s = n0; s < n1; s++)
                L = lane_terms(L, dout + ((size_t)s * d.o + o) * po,
                               in + ((size_t)s * d.c + c) * pi, d, k, kk, lane);
    } else {
        /* Planes are small (they fit 48 KiB): 32-bit offsets within a stage. */
        float *sdy = sh, *sx = sh + (size_t)stage * po;
        int npo = (int)po, npi = (int)pi;
        for (int s0 = n0; s0 < n1; s0 += stage) {
            int cnt = min(stage, n1 - s0);
            __syncthreads();   /* the previous stage has been used */
            for (int q = 0; q < cnt; q++) {
                const float *gdy = dout + ((size_t)(s0 + q) * d.o + o) * po;
                const float *gx = in + ((size_t)(s0 + q) * d.c + c) * pi;
                for (int i = threadIdx.x; i < npo; i += blockDim.x)
                    sdy[q * npo + i] = gdy[i];
                for (int i = threadIdx.x; i < npi; i += blockDim.x)
                    sx[q * npi + i] = gx[i];
            }
            __syncthreads();
            if (active)
                for (int q = 0; q < cnt; q++)
                    L = lane_terms(L, sdy + q * po, sx + q * pi, d, k, kk, lane);
        }
    }
    /* The fixed tree: for h = 8, 4, 2, 1, L[l] = L[l] + L[l + h] for l < h.
     * Every thread of the block takes part so that the shuffles are whole. */
    for (int h = LANES / 2; h >= 1; h /= 2) {
        float other = __shfl_down_sync(0xffffffffu, L, h, LANES);
        if (lane < h)
            L = __fadd_rn(L, other);
    }
    if (!active || lane != 0)
        return;
    float *dst = k < kk ? &dw[((size_t)o * d.c + c) * kk + k] : &db[o];
    if (atomic)
        atomicAdd(dst, L);
    else
        *dst = L;
}

void detrun_cuda_conv2d_forward(detrun_backend *b, float *out, const float *in, const float *w,
                                const float *bias, const detrun_conv_dims *d, int relu)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    size_t total = (size_t)d->n * d->o * d->oh * d->ow;
    if (g->status != DETRUN_OK || total == 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(out), DETRUN_CUDA_W(in), DETRUN_CUDA_W(w),
                               DETRUN_CUDA_W(bias), (uint64_t)relu,
                               (uint64_t)d->n, (uint64_t)d->c, (uint64_t)d->h, (uint64_t)d->w,
                               (uint64_t)d->o, (uint64_t)d->oh, (uint64_t)d->ow, (uint64_t)d->kh,
                               (uint64_t)d->kw, (uint64_t)d->stride, (uint64_t)d->pad_top,
                               (uint64_t)d->pad_left };
    if (detrun_cuda_note(g, DETRUN_OP_CONV_FWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    if (!g->portable && detrun_cudnn_conv2d_forward(g, out, in, w, bias, d, relu))
        return;
    conv2d_forward_kernel<<<detrun_cuda_blocks(total), DETRUN_CUDA_THREADS, 0, g->stream>>>(
        out, in, w, bias, *d, relu);
    DETRUN_CUDA_LAUNCHED(g, "conv2d_forward kernel");
}

void detrun_cuda_conv2d_backward(detrun_backend *b, float *din, float *dw, float *db,
                                 const float *dout, const float *in, const float *w,
                                 const detrun_conv_dims *d)
{
    detrun_cuda *g = DETRUN_CUDA(b);
    if (g->status != DETRUN_OK || d->n <= 0 || d->o <= 0 || d->c <= 0)
        return;
    const uint64_t fixed[] = { DETRUN_CUDA_W(din), DETRUN_CUDA_W(dw), DETRUN_CUDA_W(db),
                               DETRUN_CUDA_W(dout), DETRUN_CUDA_W(in), DETRUN_CUDA_W(w),
                               (uint64_t)d->n, (uint64_t)d->c, (uint64_t)d->h, (uint64_t)d->w,
                               (uint64_t)d->o, (uint64_t)d->oh, (uint64_t)d->ow, (uint64_t)d->kh,
                               (uint64_t)d->kw, (uint64_t)d->stride, (uint64_t)d->pad_top,
                               (uint64_t)d->pad_left };
    if (detrun_cuda_note(g, DETRUN_OP_CONV_BWD, fixed, sizeof fixed / sizeof fixed[0]))
        return;
    if (!g->portable && detrun_cudnn_conv2d_backward(g, din, dw, db, dout, in, w, d))
        return;
    if (din) {
        size_t total = (size_t)d->n * d->c * d->h * d->w;
        conv2d_din_kernel<<<detrun_cuda_blocks(total), DETRUN_CUDA_THREADS, 0, g->stream>>>(
            din, dout, w, *d);
        if (!DETRUN_CUDA_LAUNCHED(g, "conv2d_backward (input gradient) kernel"))
            return;
    }
    int kk = d->kh * d->kw;
    /* All SLOTS slots' threads, active or not: the idle ones help stage the
     * planes (the copying, not the chains, dominated with fewer threads). */
    int threads = SLOTS * LANES;
    int atomic = g->mode == DETRUN_FAST;
    dim3 grid((unsigned)(d->o * d->c), (unsigned)((kk + 1 + SLOTS - 1) / SLOTS),
              atomic ? (unsigned)((d->n + FAST_CHUNK - 1) / FAST_CHUNK) : 1u);
    if (atomic && (!detrun_cuda_ok(g, cudaMemsetAsync(dw, 0, (size_t)d->o * d->c * kk * sizeof *dw,
                                                      g->stream), "cudaMemsetAsync (conv dw)") ||
                   !detrun_cuda_ok(g, cudaMemsetAsync(db, 0, (size_t)d->o * sizeof *db, g->stream),
                                   "cudaMemsetAsync (conv db)")))
        return;
    /* Samples staged per pass: as many as 48 KiB of shared memory holds. */
    size_t per_sample = ((size_t)d->oh * d->ow + (size_t)d->h * d->w) * sizeof(float);
    int span = atomic ? FAST_CHUNK : d->n;
    int stage = (int)(48 * 1024 / per_sample);
    if (stage > span)
        stage = span;
    if (stage > 32)
        stage = 32;
    conv2d_dw_kernel<<<grid, threads, (size_t)stage * per_sample, g->stream>>>(dw, db, dout, in,
                                                                              *d, atomic, stage);
    DETRUN_CUDA_LAUNCHED(g, "conv2d_backward (weight gradient) kernel");
}
