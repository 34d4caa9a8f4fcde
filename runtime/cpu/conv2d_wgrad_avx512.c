/*
 * conv2d_wgrad_avx512.c - the convolution's weight and bias gradients with
 * the 16 lanes of one weight in one AVX-512 register (docs/determinism.md,
 * "conv2d backward, weight and bias gradients" and "CPU", R1, R2).
 *
 * The text's lane l (the columns x with x mod 16 = l) is register lane l: a
 * row's columns x0..x0+15 (x0 = 0, 16, ...) are one load of dout and, for tap
 * (ky, kx), one unaligned load of input row y + ky from column x0 + kx,
 * straight from the NCHW planes. Chunks are visited in order (samples, rows,
 * then chunks ascending), so every lane runs its written chain. Columns past
 * a row's end are masked out of the loads and of the fmas: their lanes keep
 * their sums unchanged (-0 included; nothing such as fma(+0, inf) is formed),
 * and no load reaches past a row. The fixed tree is then applied per weight.
 *
 * 3x3 kernels only, stride 1, no padding: a task owns (block of up to
 * DW512_NO output channels, input channel), holding DW512_NO x 9 accumulators
 * (27 of the 32 registers) while the 9 input loads of a row are shared by the
 * block's channels; input channel 0's tasks take blocks of DW512_NB channels
 * and add up the bias lanes from the same dout loads. Rows of one chunk go
 * DW512_R at a time, each input row loaded once for the output rows that
 * read it. Each weight's whole chain is inside one task, so the thread count
 * changes no bit.
 *
 * Pooled (j->codes): the output gradient of each sample's NO channels is
 * first rebuilt by the max-pool's own backward (maxpool_avx512.c: the same
 * values as the full-size buffer it would otherwise write) into the thread's
 * scratch, which stays in L1, and read from there in the same order.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "conv2d.h"
#include "maxpool.h"

#define AVX512 __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

#define DW512_NO 3            /* output channels per task at most */
_Static_assert(DW512_NO <= 3, "DW512_POOLED_FLOATS (conv2d.h) has room for 3 planes");
#define DW512_TAPS 9
#define DW512_NB 2            /* output channels per task with the bias */
#define DW512_R 3             /* rows at a time when a row is one chunk */

/* The lanes of a chunk that hold columns: the first `left` ones. */
static inline __mmask16 chunk_mask(int left)
{
    return left >= LANES ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* The terms of one chunk (columns x0.. of output row y, the lanes of m) of
 * every tap into acc, and of the bias into b when BIAS. */
#define DW512_CHUNK(x0, m)                                                                 \
    do {                                                                                  \
        __m512 g[DW512_NO];                                                               \
        _Pragma("GCC unroll 4") for (int q = 0; q < NO; q++)                              \
        {                                                                                 \
            g[q] = _mm512_maskz_loadu_ps((m), gp + (size_t)q * oplane + (x0));            \
            if (BIAS)                                                                     \
                b[q] = _mm512_mask_add_ps(b[q], (m), b[q], g[q]);                         \
        }                                                                                 \
        _Pragma("GCC unroll 9") for (int t = 0; t < DW512_TAPS; t++)                      \
        {                                                                                 \
            /* One load into a register shared by the NO channels (the empty  \
             * asm keeps the compiler from folding it into each fma). */                  \
            __m512 x = _mm512_maskz_loadu_ps((m), ip + (size_t)(t / 3) * w + t % 3 + (x0)); \
            __asm__("" : "+v"(x));                                                        \
            _Pragma("GCC unroll 4") for (int q = 0; q < NO; q++)                          \
                acc[q][t] = _mm512_mask3_fmadd_ps(g[q], x, acc[q][t], (m));               \
        }                                                                                 \
    } while (0)

/* The terms of DW512_R output rows of one chunk (rows of at most 16
 * columns, the lanes of m): each input row's three loads serve every output
 * row and tap that read it, the terms of an accumulator still in row order
 * (input row r gives output row r - ky its tap ky). */
#define DW512_ROWS(m)                                                                     \
    do {                                                                                  \
        __m512 g[DW512_R][DW512_NO];                                                      \
        _Pragma("GCC unroll 4") for (int r = 0; r < DW512_R; r++)                         \
            _Pragma("GCC unroll 4") for (int q = 0; q < NO; q++)                          \
            {                                                                             \
                g[r][q] = _mm512_maskz_loadu_ps((m), gp + (size_t)q * oplane + (size_t)r * d->ow); \
                if (BIAS)                                                                 \
                    b[q] = _mm512_mask_add_ps(b[q], (m), b[q], g[r][q]);                  \
            }                                                                             \
        _Pragma("GCC unroll 8") for (int r = 0; r < DW512_R + 2; r++)                     \
            _Pragma("GCC unroll 3") for (int kx = 0; kx < 3; kx++)                        \
            {                                                                             \
                __m512 x = _mm512_maskz_loadu_ps((m), ip + (size_t)r * w + kx);           \
                __asm__("" : "+v"(x));                                                    \
                _Pragma("GCC unroll 4") for (int yy = 0; yy < DW512_R; yy++)              \
                {                                                                         \
                    if (r - yy < 0 || r - yy > 2)                                         \
                        continue;                                                         \
                    _Pragma("GCC unroll 4") for (int q = 0; q < NO; q++)                  \
                        acc[q][(r - yy) * 3 + kx] =                                       \
                            _mm512_mask3_fmadd_ps(g[yy][q], x, acc[q][(r - yy) * 3 + kx], (m)); \
                }                                                                         \
            }                                                                             \
    } while (0)

/* Weight gradients of (o0..o0+NO-1, c) over the whole batch and, when BIAS,
 * the channels' bias gradients from the same dout loads: the same lanes,
 * plain additions of dout. CH: the chunks of a row when 1 or 2 (straight
 * code), else 0 (a loop). */
AVX512 INLINE void dw_block(const conv_job *j, int o0, const int NO, int c, const int BIAS,
                            const int CH, float *rebuilt)
{
    const detrun_conv_dims *d = j->d;
    size_t w = (size_t)d->w, oplane = (size_t)d->oh * d->ow, iplane = (size_t)d->h * d->w;
    __m512 acc[DW512_NO][DW512_TAPS], b[DW512_NO];
#pragma GCC unroll 4
    for (int q = 0; q < NO; q++) {
        b[q] = _mm512_setzero_ps();
#pragma GCC unroll 9
        for (int t = 0; t < DW512_TAPS; t++)
            acc[q][t] = _mm512_setzero_ps();
    }
    int last = (d->ow - 1) / LANES * LANES;   /* the last chunk's first column */
    const __mmask16 full = (__mmask16)0xffff, ml = chunk_mask(d->ow - last);
    const detrun_pool_dims *pd = j->pd;
    for (int n = 0; n < d->n; n++) {
        const float *ip = j->in + ((size_t)n * d->c + c) * iplane;
        const float *gp;
        if (j->codes != NULL) {
            size_t pp = ((size_t)n * d->o + o0) * pd->oh * pd->ow;
            detrun_cpu_maxpool_back_2x2_avx512(
                rebuilt, j->pool_dout + pp,
                j->codes + ((size_t)n * d->o + o0) * pd->oh * DETRUN_MAXPOOL_CODE_ROW(pd->ow),
                j->pooled != NULL ? j->pooled + pp : NULL, NO, pd->h, pd->w, pd->oh, pd->ow);
            gp = rebuilt;
        } else {
            gp = j->dout + ((size_t)n * d->o + o0) * oplane;
        }
        if (CH == 1) {
            int y = 0;
            for (; y + DW512_R <= d->oh; y += DW512_R, ip += DW512_R * w, gp += DW512_R * d->ow)
                DW512_ROWS(ml);
            for (; y < d->oh; y++, ip += w, gp += d->ow)
                DW512_CHUNK(0, ml);
            continue;
        }
        for (int y = 0; y < d->oh; y++, ip += w, gp += d->ow) {
            if (n + 1 < d->n) {
                /* Long rows (the first layer's planes do not stay in the
                 * near caches): the next sample's row y, 64 bytes apart. */
                const float *pi = ip + (size_t)d->c * iplane, *pg = gp + (size_t)d->o * oplane;
                _mm_prefetch((const char *)pi, _MM_HINT_T0);
                _mm_prefetch((const char *)(pi + LANES), _MM_HINT_T0);
                if (j->codes == NULL) {
#pragma GCC unroll 4
                    for (int q = 0; q < NO; q++) {
                        _mm_prefetch((const char *)(pg + (size_t)q * oplane), _MM_HINT_T0);
                        _mm_prefetch((const char *)(pg + (size_t)q * oplane + LANES),
                                     _MM_HINT_T0);
                    }
                }
            }
            if (CH == 0)
                for (int x0 = 0; x0 < last; x0 += LANES)
                    DW512_CHUNK(x0, full);
            else if (CH == 2)
                DW512_CHUNK(0, full);
            DW512_CHUNK(last, ml);
        }
    }
    float L[LANES];
#pragma GCC unroll 4
    for (int q = 0; q < NO; q++) {
#pragma GCC unroll 9
        for (int t = 0; t < DW512_TAPS; t++) {
            _mm512_storeu_ps(L, acc[q][t]);
            j->dw[((size_t)(o0 + q) * d->c + c) * DW512_TAPS + t] = conv_lanes_tree(L);
        }
        if (BIAS) {
            _mm512_storeu_ps(L, b[q]);
            j->db[o0 + q] = conv_lanes_tree(L);
        }
    }
}

/* One block, with the row's chunk count as a constant when it is 1 or 2. */
#define DW512_BLOCK(NO, C, BIAS)                                                          \
    (d->ow <= LANES       ? dw_block(j, o0, NO, C, BIAS, 1, rebuilt)                      \
     : d->ow <= 2 * LANES ? dw_block(j, o0, NO, C, BIAS, 2, rebuilt)                      \
                          : dw_block(j, o0, NO, C, BIAS, 0, rebuilt))

/* Task: first the blocks of DW512_NB output channels of input channel 0,
 * which give the bias gradients too (2 x 10 accumulators), then the blocks
 * of DW512_NO of each other input channel. */
AVX512 static void dw512_task(void *arg, int task, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    /* Pooled: the thread's room for a sample's rebuilt output gradient. */
    float *rebuilt = j->codes != NULL ? j->scratch + (size_t)thread * j->scratch_per_thread : NULL;
    int b0 = (d->o + DW512_NB - 1) / DW512_NB;
    if (task < b0) {
        int o0 = task * DW512_NB;
        if (d->o - o0 == 1)
            DW512_BLOCK(1, 0, 1);
        else
            DW512_BLOCK(2, 0, 1);
        return;
    }
    task -= b0;
    int bs = (d->o + DW512_NO - 1) / DW512_NO;
    int c = 1 + task / bs, o0 = task % bs * DW512_NO;
    switch (d->o - o0) {
    case 1: DW512_BLOCK(1, c, 0); break;
    case 2: DW512_BLOCK(2, c, 0); break;
    default: DW512_BLOCK(3, c, 0); break;
    }
}

int detrun_cpu_conv2d_dw_avx512_run(conv_job *j)
{
    const detrun_conv_dims *d = j->d;
    int tasks = (d->o + DW512_NB - 1) / DW512_NB + (d->o + DW512_NO - 1) / DW512_NO * (d->c - 1);
    detrun_pool_run(j->cpu->pool, tasks, dw512_task, j);
    return 0;
}

#endif
