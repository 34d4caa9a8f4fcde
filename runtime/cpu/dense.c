/*
 * dense.c - fully connected layer, forward and backward
 * (docs/determinism.md, "dense forward", "dense backward", R1, R2).
 *
 * All three products are one shape: out[r][j] = a sequential fma chain over
 * i ascending of x(r, i) * wt(i, j), from the bias or +0. Forward: x = in,
 * wt = w. Input gradient: x = dout, wt = w transposed, so the chain runs over
 * j. Weight gradient: x(k, n) = in[n][k], wt = dout, so the chain runs over
 * n. Outputs are independent, so threads take tiles of (r, j) and vector
 * lanes take neighbouring j: no split changes an order.
 *
 * Fast mode computes the weight and bias gradients per chunk of samples and
 * adds the chunks to the shared gradient in the order they finish. The AVX2
 * path of the product is in dense_avx2.c.
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

typedef struct seq_job {
    seq_args a;
    int simd;
    int col_tiles;
} seq_job;

static void seq_tile(const seq_args *a, int simd, int r0, int r1, int j0, int j1)
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

static void seq_task(void *arg, int task, int thread)
{
    (void)thread;
    const seq_job *j = arg;
    int rt = task / j->col_tiles, ct = task % j->col_tiles;
    int r0 = rt * ROW_TILE, r1 = r0 + ROW_TILE < j->a.rows ? r0 + ROW_TILE : j->a.rows;
    int j0 = ct * COL_TILE, j1 = j0 + COL_TILE < j->a.units ? j0 + COL_TILE : j->a.units;
    seq_tile(&j->a, j->simd, r0, r1, j0, j1);
}

/* All tiles of a, on the pool. */
static void seq_run(detrun_cpu *c, const seq_args *a)
{
    if (a->rows <= 0 || a->units <= 0)
        return;
    seq_job j;
    j.a = *a;
    j.simd = c->simd;
    j.col_tiles = (a->units + COL_TILE - 1) / COL_TILE;
    int row_tiles = (a->rows + ROW_TILE - 1) / ROW_TILE;
    detrun_pool_run(c->pool, row_tiles * j.col_tiles, seq_task, &j);
}

/* All tiles of a on the calling thread (a fast-mode chunk). */
static void seq_all(const seq_args *a, int simd)
{
    for (int r0 = 0; r0 < a->rows; r0 += ROW_TILE) {
        int r1 = r0 + ROW_TILE < a->rows ? r0 + ROW_TILE : a->rows;
        for (int j0 = 0; j0 < a->units; j0 += COL_TILE)
            seq_tile(a, simd, r0, r1, j0, j0 + COL_TILE < a->units ? j0 + COL_TILE : a->units);
    }
}

void detrun_cpu_dense_forward(detrun_backend *b, float *out, const float *in, const float *w,
                              const float *bias, int n, int k, int units, int relu)
{
    seq_args a = { out, in, (size_t)k, 1, w, (size_t)units, 1, bias, n, k, units, relu };
    seq_run(DETRUN_CPU(b), &a);
}

/* db[j]: a sequential sum over the samples, j side by side. */
static void bias_grad(float *db, const float *dout, int n0, int n1, int units)
{
    for (int j = 0; j < units; j++)
        db[j] = 0.0f;
    for (int s = n0; s < n1; s++) {
        const float *g = dout + (size_t)s * units;
        for (int j = 0; j < units; j++)
            db[j] = db[j] + g[j];
    }
}

typedef struct fast_job {
    detrun_cpu *c;
    float *dw, *db;
    const float *dout, *in;
    float *scratch;       /* per thread: k * units + units */
    int n, k, units;
} fast_job;

static void fast_chunk(void *arg, int chunk, int thread)
{
    const fast_job *j = arg;
    int n0 = chunk * DETRUN_CPU_FAST_CHUNK;
    int n1 = n0 + DETRUN_CPU_FAST_CHUNK < j->n ? n0 + DETRUN_CPU_FAST_CHUNK : j->n;
    size_t wn = (size_t)j->k * j->units;
    float *pw = j->scratch + (size_t)thread * (wn + (size_t)j->units);
    float *pb = pw + wn;
    seq_args a = { pw, j->in + (size_t)n0 * j->k, 1, (size_t)j->k,
                   j->dout + (size_t)n0 * j->units, (size_t)j->units, 1, NULL,
                   j->k, n1 - n0, j->units, 0 };
    seq_all(&a, j->c->simd);
    bias_grad(pb, j->dout, n0, n1, j->units);
    pthread_mutex_lock(&j->c->reduce);
    for (size_t i = 0; i < wn; i++)
        j->dw[i] = j->dw[i] + pw[i];
    for (int u = 0; u < j->units; u++)
        j->db[u] = j->db[u] + pb[u];
    pthread_mutex_unlock(&j->c->reduce);
}

void detrun_cpu_dense_backward(detrun_backend *b, float *din, float *dw, float *db,
                               const float *dout, const float *in, const float *w, int n, int k,
                               int units)
{
    detrun_cpu *c = DETRUN_CPU(b);
    if (din) {
        /* din[n][k] chains over j; the vector path wants j-major rows of w. */
        float *wt = c->simd ? detrun_cpu_scratch(c, (size_t)k * units) : NULL;
        seq_args a = { din, dout, (size_t)units, 1, w, 1, (size_t)units, NULL, n, units, k, 0 };
        if (wt) {
            for (int kk = 0; kk < k; kk++)
                for (int j = 0; j < units; j++)
                    wt[(size_t)j * k + kk] = w[(size_t)kk * units + j];
            a.wt = wt;
            a.wis = (size_t)k;
            a.wjs = 1;
        }
        seq_run(c, &a);
    }
    size_t per_thread = (size_t)k * units + (size_t)units;
    float *scratch = NULL;
    if (c->mode == DETRUN_FAST && c->threads > 1 && n > DETRUN_CPU_FAST_CHUNK)
        scratch = detrun_cpu_scratch(c, per_thread * (size_t)c->threads);
    if (scratch) {
        memset(dw, 0, (size_t)k * units * sizeof *dw);
        memset(db, 0, (size_t)units * sizeof *db);
        fast_job j = { c, dw, db, dout, in, scratch, n, k, units };
        detrun_pool_run(c->pool, (n + DETRUN_CPU_FAST_CHUNK - 1) / DETRUN_CPU_FAST_CHUNK,
                        fast_chunk, &j);
        return;
    }
    seq_args a = { dw, in, 1, (size_t)k, dout, (size_t)units, 1, NULL, k, n, units, 0 };
    seq_run(c, &a);
    bias_grad(db, dout, 0, n, units);
}
