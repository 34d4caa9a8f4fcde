/*
 * dense.c - fully connected layer, forward and backward
 * (docs/determinism.md, "dense forward", "dense backward", R1, R2).
 *
 * All three products are one shape: out[r][j] = a sequential fma chain over
 * i ascending of x(r, i) * wt(i, j), from the bias or +0. Forward: x = in,
 * wt = w. Input gradient: x = dout, wt = w transposed, so the chain runs over
 * j. Weight gradient: x(k, n) = in[n][k], wt = dout, so the chain runs over
 * n. Outputs are independent, so threads take tiles of (r, j) and vector
 * lanes take neighbouring j: no split changes an order. The backward's input
 * gradient, weight gradient and bias gradient are one job (one handover).
 *
 * Fast mode (two or more threads) computes the weight gradient per (block of
 * rows, quarter of the batch) and adds the quarters into the shared gradient
 * in the order they finish (dense_fast.c). The vector paths of the product
 * are in dense_avx2.c and dense_avx512.c.
 */
#include <math.h>
#include <string.h>

#include "dense.h"

/* The reference order, one output column block at a time. */
static void seq_tile_scalar(const seq_args *a, int r0, int r1, int j0, int j1)
{
    float acc[COL_TILE];
    for (int r = r0; r < r1; r++) {
        const float *x = a->x + (size_t)r * a->xrs;
        for (int j = j0; j < j1; j++)
            acc[j - j0] = a->init ? a->init[j] : 0.0f;
        for (int i = 0; i < a->inner; i++) {
            float xv = x[(size_t)i * a->xis];
            const float *w = a->wt + (size_t)i * a->wis;
            for (int j = j0; j < j1; j++)
                acc[j - j0] = fmaf(xv, w[(size_t)j * a->wjs], acc[j - j0]);
        }
        float *out = a->out + (size_t)r * a->units;
        for (int j = j0; j < j1; j++) {
            float v = acc[j - j0];
            out[j] = a->relu ? (v > 0.0f ? v : 0.0f) : v;
        }
    }
}

/* Rows [r0, r1), columns [j0, j1) (at most COL_TILE) on the path simd. */
void detrun_cpu_dense_tile(const seq_args *a, int simd, int r0, int r1, int j0, int j1)
{
#if defined(__x86_64__)
    if (simd >= DETRUN_CPU_SIMD_AVX512 && a->wjs == 1) {
        detrun_cpu_dense_tile_avx512(a, r0, r1, j0, j1);
        return;
    }
    if (simd && a->wjs == 1) {
        detrun_cpu_dense_tile_avx2(a, r0, r1, j0, j1);
        return;
    }
#endif
    (void)simd;
    seq_tile_scalar(a, r0, r1, j0, j1);
}

void detrun_cpu_dense_plan(dense_plan *p, const seq_args *a, int simd)
{
    p->a = *a;
    p->simd = simd;
    /* AVX-512 keeps 8 rows by 32 columns in registers (16 chains in flight),
     * AVX2 6 rows by 16 columns (12): a task is such a block by 32 columns. */
    p->row_tile = simd >= DETRUN_CPU_SIMD_AVX512 ? 8 : simd ? 6 : 4;
    p->row_tiles = a->rows > 0 ? (a->rows + p->row_tile - 1) / p->row_tile : 0;
    p->col_tiles = a->units > 0 ? (a->units + COL_TILE - 1) / COL_TILE : 0;
    p->ntasks = p->row_tiles * p->col_tiles;
}

/* Tasks run column block by column block, so that the tasks a thread claims
 * together share one block of wt in its cache. */
void detrun_cpu_dense_plan_task(const dense_plan *p, int task)
{
    int ct = task / p->row_tiles, rt = task % p->row_tiles;
    int r0 = rt * p->row_tile, r1 = r0 + p->row_tile < p->a.rows ? r0 + p->row_tile : p->a.rows;
    int j0 = ct * COL_TILE, j1 = j0 + COL_TILE < p->a.units ? j0 + COL_TILE : p->a.units;
    detrun_cpu_dense_tile(&p->a, p->simd, r0, r1, j0, j1);
}

static void plan_task(void *arg, int task, int thread)
{
    (void)thread;
    detrun_cpu_dense_plan_task(arg, task);
}

void detrun_cpu_dense_forward(detrun_backend *b, float *out, const float *in, const float *w,
                              const float *bias, int n, int k, int units, int relu)
{
    detrun_cpu *c = DETRUN_CPU(b);
    seq_args a = { out, in, (size_t)k, 1, w, (size_t)units, 1, bias, n, k, units, relu };
    dense_plan p;
    detrun_cpu_dense_plan(&p, &a, c->simd);
    detrun_pool_run(c->pool, p.ntasks, plan_task, &p);
}

/* db[j]: a sequential sum over the samples, j side by side. */
void detrun_cpu_dense_bias_grad(float *db, const float *dout, int n, int units, int simd)
{
#if defined(__x86_64__)
    if (simd) {
        detrun_cpu_dense_bias_grad_avx2(db, dout, n, units);
        return;
    }
#endif
    (void)simd;
    for (int j = 0; j < units; j++)
        db[j] = 0.0f;
    for (int s = 0; s < n; s++) {
        const float *g = dout + (size_t)s * units;
        for (int j = 0; j < units; j++)
            db[j] = db[j] + g[j];
    }
}

/* The backward as one job: task 0 the bias gradient, then the weight
 * gradient's tiles (or fast mode's blocks), then the input gradient's. */
static void backward_task(void *arg, int task, int thread)
{
    const dense_bwd_job *j = arg;
    if (task == 0) {
        detrun_cpu_dense_bias_grad(j->db, j->dout, j->n, j->units, j->simd);
        return;
    }
    task--;
    if (task < j->ndw) {
        if (j->fast)
            detrun_cpu_dense_fast_task(j, task, thread);
        else
            detrun_cpu_dense_plan_task(&j->dw, task);
        return;
    }
    detrun_cpu_dense_plan_task(&j->din, task - j->ndw);
}

/* w (k, units) to wt (units, k), for the vector paths only. */
static void transpose(float *wt, const float *w, int k, int units)
{
#if defined(__x86_64__)
    detrun_cpu_dense_transpose_avx2(wt, w, k, units);
#else
    for (int kk = 0; kk < k; kk++)
        for (int j = 0; j < units; j++)
            wt[(size_t)j * k + kk] = w[(size_t)kk * units + j];
#endif
}

void detrun_cpu_dense_backward(detrun_backend *b, float *din, float *dw, float *db,
                               const float *dout, const float *in, const float *w, int n, int k,
                               int units)
{
    detrun_cpu *c = DETRUN_CPU(b);
    if (n < 0 || k <= 0 || units <= 0)
        return;   /* n == 0 goes on: dw and db are then +0 */
    dense_bwd_job j;
    memset(&j, 0, sizeof j);
    j.dwp = dw;
    j.db = db;
    j.dout = dout;
    j.in = in;
    j.n = n;
    j.k = k;
    j.units = units;
    j.simd = c->simd;
    /* Scratch: w transposed for the vector input gradient, then fast mode's
     * partial blocks; without it, the plain input gradient and the written
     * order. */
    size_t wt_floats = din && c->simd ? (size_t)k * units : 0;
    size_t fast_floats = detrun_cpu_dense_fast_floats(c, n, k, units);
    float *s = wt_floats + fast_floats ? detrun_cpu_scratch(c, wt_floats + fast_floats) : NULL;
    if (!s)
        wt_floats = fast_floats = 0;
    j.fast = fast_floats && detrun_cpu_dense_fast_prepare(c, &j, s + wt_floats);
    if (din) {
        /* din[n][k] chains over j; the vector path wants j-major rows of w. */
        seq_args a = { din, dout, (size_t)units, 1, w, 1, (size_t)units, NULL, n, units, k, 0 };
        if (wt_floats) {
            transpose(s, w, k, units);
            a.wt = s;
            a.wis = (size_t)k;
            a.wjs = 1;
        }
        detrun_cpu_dense_plan(&j.din, &a, c->simd);
    }
    seq_args a = { dw, in, 1, (size_t)k, dout, (size_t)units, 1, NULL, k, n, units, 0 };
    detrun_cpu_dense_plan(&j.dw, &a, c->simd);
    if (!j.fast)
        j.ndw = j.dw.ntasks;
    detrun_pool_run(c->pool, 1 + j.ndw + (din ? j.din.ntasks : 0), backward_task, &j);
}
