/*
 * conv2d_dispatch.c - the convolution's entry points: which path runs a call
 * (docs/determinism.md, "CPU"). Every path gives the written order's bits, so
 * the choice only decides speed; it depends on the shape, the vector switch
 * and the mode, never on the data.
 *
 * Forward and input gradient: the AVX2 pixel grid for stride 1 when its
 * scratch can be had, else the plain reference. Weight and bias gradients:
 * the first row of wgrad_paths that applies and runs.
 */
#include <string.h>

#include "conv2d.h"
#include "maxpool.h"

static int vector_forward_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return c->simd && d->stride == 1 && d->pad_top == 0 && d->pad_left == 0 &&
           d->kh * d->kw <= MAX_TAPS && d->oh == d->h - d->kh + 1 && d->ow == d->w - d->kw + 1;
}

/* The pair weight gradient's vector path also reads a batch's last rows
 * through row copies of bounded size. */
static int vector_dw_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return vector_forward_ok(c, d) &&
           (d->ow + LANES - 1) / LANES * LANES + (d->kh - 1) * d->w + d->kw - 1 <= DW_ROW_MAX;
}

/* The input gradient's grid: stride 1, any padding that keeps a valid
 * correlation on the zero-padded dout. */
static int vector_din_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return c->simd && d->stride == 1 && d->kh * d->kw <= MAX_TAPS &&
           d->pad_top <= d->kh - 1 && d->pad_left <= d->kw - 1 &&
           d->oh == d->h + 2 * d->pad_top - d->kh + 1 &&
           d->ow == d->w + 2 * d->pad_left - d->kw + 1;
}

/* Fast mode at two or more threads: chunks of samples meet in finishing order. */
static int fast_chunks(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return c->mode == DETRUN_FAST && c->threads > 1 && d->n > DETRUN_CPU_FAST_CHUNK;
}

/* Grid pixels for an output of oh x ow on a grid of width gw. */
static int grid_pixels(int oh, int ow, int gw)
{
    return (oh - 1) * gw + ow;
}

static void job_init(conv_job *j, detrun_cpu *c, const detrun_conv_dims *d, const float *in,
                     const float *w, int *off)
{
    memset(j, 0, sizeof *j);
    j->cpu = c;
    j->in = in;
    j->w = w;
    j->d = d;
    j->off = off;
}

/* ---- forward --------------------------------------------------------------------- */

static void forward_init(conv_job *j, detrun_cpu *c, const detrun_conv_dims *d, float *out,
                         const float *in, const float *w, const float *bias, int relu, int *off)
{
    job_init(j, c, d, in, w, off);
    j->out = out;
    j->bias = bias;
    j->relu = relu;
}

#if DETRUN_CONV2D_AVX2
/* The grid's taps and its scratch per thread: the sample's padded input,
 * then the AVX2 path's grid buffer. */
static void plan_forward(conv_job *j, int *off)
{
    const detrun_conv_dims *d = j->d;
    for (int t = 0; t < d->kh * d->kw; t++)
        off[t] = (t / d->kw) * d->w + t % d->kw;
    j->np = grid_pixels(d->oh, d->ow, d->w);
    size_t maxoff = (size_t)(d->kh - 1) * d->w + d->kw - 1;
    j->in_floats = ((size_t)d->c * d->h * d->w + j->np + GRID_SLACK + maxoff + 15) & ~(size_t)15;
    j->scratch_per_thread = j->in_floats + grid_buffer_floats(j->cpu, d->o, j->np);
}
#endif

void detrun_cpu_conv2d_forward(detrun_backend *b, float *out, const float *in, const float *w,
                               const float *bias, const detrun_conv_dims *d, int relu)
{
    detrun_cpu *c = DETRUN_CPU(b);
    int off[MAX_TAPS];
    conv_job j;
    forward_init(&j, c, d, out, in, w, bias, relu, off);
#if DETRUN_CONV2D_AVX2
    if (vector_forward_ok(c, d)) {
        plan_forward(&j, off);
        j.scratch = detrun_cpu_scratch(c, j.scratch_per_thread * c->threads);
        if (j.scratch) {
            detrun_pool_run(c->pool, d->n, detrun_cpu_conv2d_forward_grid_task, &j);
            return;
        }
    }
#endif
    j.ocs_tiles = (d->o + 1) / 2;
    detrun_pool_run(c->pool, d->n * j.ocs_tiles, detrun_cpu_conv2d_forward_plain_task, &j);
}

/* ---- weight and bias gradients: the paths ----------------------------------------- */

/* Weight and bias gradients of one (o, c) pair over the whole batch. */
static void dw_task(void *arg, int pair, int thread)
{
    (void)thread;
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int o = pair / d->c, c = pair % d->c;
    float *dw = j->dw + (size_t)pair * d->kh * d->kw;
    float *db = c == 0 ? j->db + o : NULL;
    j->dw_pair(dw, db, j->dout, j->in, d, o, c, 0, d->n);
}

/* Fast mode: every pair over one chunk of samples, added in finishing order. */
static void dw_chunk_task(void *arg, int chunk, int thread)
{
    const conv_job *j = arg;
    const detrun_conv_dims *d = j->d;
    int n0 = chunk * DETRUN_CPU_FAST_CHUNK;
    int n1 = n0 + DETRUN_CPU_FAST_CHUNK < d->n ? n0 + DETRUN_CPU_FAST_CHUNK : d->n;
    size_t taps = (size_t)d->kh * d->kw, wn = (size_t)d->o * d->c * taps;
    float *pw = j->scratch + (size_t)thread * j->scratch_per_thread;
    float *pb = pw + wn;
    for (int o = 0; o < d->o; o++) {
        for (int c = 0; c < d->c; c++) {
            float *dw = pw + ((size_t)o * d->c + c) * taps;
            float *db = c == 0 ? pb + o : NULL;
            j->dw_pair(dw, db, j->dout, j->in, d, o, c, n0, n1);
        }
    }
    pthread_mutex_lock(&j->cpu->reduce);
    for (size_t i = 0; i < wn; i++)
        j->dw[i] = j->dw[i] + pw[i];
    for (int o = 0; o < d->o; o++)
        j->db[o] = j->db[o] + pb[o];
    pthread_mutex_unlock(&j->cpu->reduce);
}

static int run_pairs(conv_job *j)
{
    detrun_pool_run(j->cpu->pool, j->d->o * j->d->c, dw_task, j);
    return 0;
}

static int run_chunks(conv_job *j)
{
    const detrun_conv_dims *d = j->d;
    detrun_cpu *c = j->cpu;
    size_t wn = (size_t)d->o * d->c * d->kh * d->kw;
    j->scratch_per_thread = wn + (size_t)d->o;
    j->scratch = detrun_cpu_scratch(c, j->scratch_per_thread * c->threads);
    if (!j->scratch)
        return -1;
    memset(j->dw, 0, wn * sizeof *j->dw);
    memset(j->db, 0, (size_t)d->o * sizeof *j->db);
    detrun_pool_run(c->pool, (d->n + DETRUN_CPU_FAST_CHUNK - 1) / DETRUN_CPU_FAST_CHUNK,
                    dw_chunk_task, j);
    return 0;
}

static int always(const detrun_cpu *c, const detrun_conv_dims *d)
{
    (void)c;
    (void)d;
    return 1;
}

static int fast_plain(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return fast_chunks(c, d) && !vector_dw_ok(c, d);
}

#if DETRUN_CONV2D_AVX2
static int fast_vec(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return fast_chunks(c, d) && vector_dw_ok(c, d);
}

/* The 16 lanes of a weight in one AVX-512 register, read from the NCHW
 * planes (no copies); faster than the AVX2 forms on both of the reference
 * network's layers, in both modes. */
static int w512_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return c->simd >= DETRUN_CPU_SIMD_AVX512 && vector_forward_ok(c, d) && d->kh == 3 &&
           d->kw == 3;
}

/* Channel-vector: eight input channels to a register; input and dout laid
 * out channels last (by the input gradient's tasks when there are any).
 * Fast mode takes it too (and the o-vector path): both are faster than its
 * chunks, so fast mode is never slower than deterministic mode; it stays
 * free to reorder elsewhere (the dense weight gradients). */
static int cvec_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return vector_forward_ok(c, d) && d->c % 8 == 0 && d->kw == DWC_KW;
}

static size_t cvec_in_floats(const detrun_conv_dims *d)
{
    return (size_t)d->n * d->c * d->h * d->w;
}

static size_t cvec_dout_floats(const detrun_conv_dims *d)
{
    return (size_t)d->n * ((d->o + 7) / 8 * 8) * d->oh * d->ow;
}

static size_t cvec_floats(const detrun_cpu *c, const detrun_conv_dims *d)
{
    (void)c;
    size_t lanes = (size_t)d->o * d->kh * d->kw * LANES * d->c + (size_t)d->o * LANES;
    return (cvec_in_floats(d) + cvec_dout_floats(d) + lanes + 15) & ~(size_t)15;
}

static void cvec_bind(conv_job *j, float *mem)
{
    j->in_t = mem;
    j->dout_t = j->in_t + cvec_in_floats(j->d);
    j->lanes = j->dout_t + cvec_dout_floats(j->d);
    j->per_sample = detrun_cpu_conv2d_to_channels_last;
}

/* O-vector: eight output channels to a register (the first layer's single
 * input channel); dout laid out a sample at a time by the path itself. */
static int ovec_ok(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return vector_forward_ok(c, d) && d->o % 8 == 0 && d->kh == 3 && d->kw == 3;
}

static size_t ovec_sample_floats(const detrun_cpu *c, const detrun_conv_dims *d)
{
    return (size_t)c->threads * d->oh * d->ow * 8;
}

static size_t ovec_floats(const detrun_cpu *c, const detrun_conv_dims *d)
{
    size_t lanes = ((size_t)d->c * 9 + 1) * LANES * d->o;
    return (ovec_sample_floats(c, d) + lanes + 15) & ~(size_t)15;
}

static void ovec_bind(conv_job *j, float *mem)
{
    j->dout_s = mem;
    j->lanes = j->dout_s + ovec_sample_floats(j->cpu, j->d);
}
#endif

typedef struct conv_wgrad_path {
    const char *name;
    int (*applies)(const detrun_cpu *c, const detrun_conv_dims *d);
    /* Scratch it needs beside the input gradient's, given to bind before the
     * input gradient runs; NULL when none. */
    size_t (*floats)(const detrun_cpu *c, const detrun_conv_dims *d);
    void (*bind)(conv_job *j, float *mem);
    int (*run)(conv_job *j);  /* -1: its scratch was not had, the next row that applies runs */
    conv_dw_pair_fn *pair;    /* the pair kernel, for the rows that work by pairs */
} conv_wgrad_path;

/* First match wins; the last row always applies. */
static const conv_wgrad_path wgrad_paths[] = {
#if DETRUN_CONV2D_AVX2
    { "avx512 16 lanes", w512_ok, NULL, NULL, detrun_cpu_conv2d_dw_avx512_run, NULL },
    { "avx2 channel-vector", cvec_ok, cvec_floats, cvec_bind, detrun_cpu_conv2d_dw_cvec_run,
      NULL },
    { "avx2 o-vector", ovec_ok, ovec_floats, ovec_bind, detrun_cpu_conv2d_dw_ovec_run, NULL },
    { "avx2 fast chunks", fast_vec, NULL, NULL, run_chunks, detrun_cpu_conv2d_dw_pair_avx2 },
#endif
    { "fast chunks", fast_plain, NULL, NULL, run_chunks, detrun_cpu_conv2d_dw_pair_plain },
#if DETRUN_CONV2D_AVX2
    { "avx2 pairs", vector_dw_ok, NULL, NULL, run_pairs, detrun_cpu_conv2d_dw_pair_avx2 },
#endif
    { "pairs", always, NULL, NULL, run_pairs, detrun_cpu_conv2d_dw_pair_plain },
};

#define WGRAD_PATHS (sizeof wgrad_paths / sizeof wgrad_paths[0])

/* ---- backward -------------------------------------------------------------------- */

/* The input gradient's grid scratch per thread (0 when the grid does not
 * apply): the zero-padded dout. */
static void plan_din(conv_job *j)
{
    const detrun_conv_dims *d = j->d;
    if (!j->din || !vector_din_ok(j->cpu, d))
        return;
    int ph = d->h + d->kh - 1, pw = d->w + d->kw - 1;
    j->np = grid_pixels(d->h, d->w, pw);
    size_t maxoff = (size_t)(d->kh - 1) * pw + d->kw - 1;
    j->in_floats = ((size_t)d->o * ph * pw + j->np + GRID_SLACK + maxoff + 15) & ~(size_t)15;
    j->scratch_per_thread = j->in_floats + grid_buffer_floats(j->cpu, d->c, j->np);
}

static void run_din(conv_job *j, int *off)
{
    const detrun_conv_dims *d = j->d;
#if DETRUN_CONV2D_AVX2
    if (j->scratch) {
        int pw = d->w + d->kw - 1;
        for (int t = 0; t < d->kh * d->kw; t++)
            off[t] = (d->kh - 1 - t / d->kw) * pw + (d->kw - 1 - t % d->kw);
        /* The zeros around every sample's copy of dout, once per call. */
        memset(j->scratch, 0, j->scratch_per_thread * j->cpu->threads * sizeof *j->scratch);
        detrun_pool_run(j->cpu->pool, d->n, detrun_cpu_conv2d_din_grid_task, j);
        return;
    }
#endif
    (void)off;
    detrun_pool_run(j->cpu->pool, d->n, detrun_cpu_conv2d_din_plain_task, j);
}

void detrun_cpu_conv2d_backward(detrun_backend *b, float *din, float *dw, float *db,
                                const float *dout, const float *in, const float *w,
                                const detrun_conv_dims *d)
{
    detrun_cpu *c = DETRUN_CPU(b);
    int off[MAX_TAPS];
    conv_job j;
    job_init(&j, c, d, in, w, off);
    j.din = din;
    j.dw = dw;
    j.db = db;
    j.dout = dout;
    const conv_wgrad_path *p = wgrad_paths;
    while (!p->applies(c, d))
        p++;
    /* One scratch block for the input gradient and the chosen path, taken
     * before either runs (growing it later would move what they share). */
    size_t extra = p->floats ? p->floats(c, d) : 0;
    plan_din(&j);
    float *sc = detrun_cpu_scratch(c, j.scratch_per_thread * c->threads + extra);
    if (!sc) {
        j.scratch_per_thread = 0;
    } else {
        j.scratch = j.scratch_per_thread ? sc : NULL;
        if (p->bind)
            p->bind(&j, sc + j.scratch_per_thread * c->threads);
    }
    if (din)
        run_din(&j, off);
    for (; p < wgrad_paths + WGRAD_PATHS; p++) {
        if (!p->applies(c, d))
            continue;
        j.dw_pair = p->pair;
        if (p->run(&j) == 0)
            return;
    }
}

/* ---- forward into a max-pool ------------------------------------------------------ */

#if DETRUN_CONV2D_AVX2
/* pd pools d's whole output in 2x2 windows at stride 2 with one-byte
 * choices (maxpool.h): the pool's AVX-512 path. */
static int pools_output(const detrun_conv_dims *d, const detrun_pool_dims *pd)
{
    return detrun_cpu_maxpool_codes(pd) && pd->n == d->n && pd->c == d->o && pd->h == d->oh &&
           pd->w == d->ow;
}
#endif

/* The AVX-512 grid and the max-pool's AVX-512 2x2 path a sample at a time
 * (conv2d_avx2.c): when those are the paths the separate calls would take,
 * so the bits are theirs. Without out, the sample's output stays in the
 * thread's scratch. */
int detrun_cpu_conv2d_pooled_forward(detrun_backend *b, float *out, float *pooled, int32_t *argmax,
                                     const float *in, const float *w, const float *bias,
                                     const detrun_conv_dims *d, int relu,
                                     const detrun_pool_dims *pd)
{
    detrun_cpu *c = DETRUN_CPU(b);
#if DETRUN_CONV2D_AVX2
    if (c->simd < DETRUN_CPU_SIMD_AVX512 || !vector_forward_ok(c, d) || !pools_output(d, pd))
        return 0;
    int off[MAX_TAPS];
    conv_job j;
    forward_init(&j, c, d, out, in, w, bias, relu, off);
    j.pd = pd;
    j.pooled_out = pooled;
    j.codes_out = (unsigned char *)argmax;
    plan_forward(&j, off);
    size_t own = out == NULL ? ((size_t)d->o * d->oh * d->ow + 15) & ~(size_t)15 : 0;
    j.scratch_per_thread += own;
    j.scratch = detrun_cpu_scratch(c, j.scratch_per_thread * c->threads);
    if (!j.scratch)
        return 0;
    detrun_pool_run(c->pool, d->n, detrun_cpu_conv2d_forward_pooled_task, &j);
    return 1;
#else
    (void)c, (void)out, (void)pooled, (void)argmax, (void)in, (void)w, (void)bias, (void)d,
        (void)relu, (void)pd;
    return 0;
#endif
}

/* ---- weight gradients from a max-pool's gradient ---------------------------------- */

/* The AVX-512 16-lane path, its output gradient rebuilt a sample at a time
 * by the max-pool's AVX-512 backward (conv2d_wgrad_avx512.c): when both
 * paths are the ones a separate call would take, so the bits are theirs. */
int detrun_cpu_conv2d_pooled_wgrad(detrun_backend *b, float *dw, float *db,
                                   const float *pool_dout, const float *pooled,
                                   const int32_t *argmax, const float *in,
                                   const detrun_conv_dims *d, const detrun_pool_dims *pd)
{
    detrun_cpu *c = DETRUN_CPU(b);
#if DETRUN_CONV2D_AVX2
    if (!w512_ok(c, d) || !pools_output(d, pd))
        return 0;
    conv_job j;
    job_init(&j, c, d, in, NULL, NULL);
    j.dw = dw;
    j.db = db;
    j.pool_dout = pool_dout;
    j.pooled = pooled;
    j.codes = (const unsigned char *)argmax;
    j.pd = pd;
    j.scratch_per_thread = DW512_POOLED_FLOATS(d);
    j.scratch = detrun_cpu_scratch(c, j.scratch_per_thread * c->threads);
    if (!j.scratch)
        return 0;
    return detrun_cpu_conv2d_dw_avx512_run(&j) == 0;
#else
    (void)c, (void)dw, (void)db, (void)pool_dout, (void)pooled, (void)argmax, (void)in, (void)d,
        (void)pd;
    return 0;
#endif
}
