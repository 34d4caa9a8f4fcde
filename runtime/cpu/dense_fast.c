/*
 * dense_fast.c - fast mode's dense weight gradient (docs/determinism.md,
 * "Fast mode"): the batch is cut into FAST_CHUNKS chunks and the gradient's
 * rows into blocks of a multiple of FAST_ROWS rows (enough for a task to
 * outweigh its handover); a task computes one (block, chunk) partial
 * by the written chain restricted to its chunk, then adds it into the shared
 * block under the block's own lock: the first partial to finish is stored,
 * the others are added in the order they finish. Tasks are numbered block by
 * block, so the chunks of a block are claimed by different threads at the
 * same time and their finishing order varies from run to run; the locks are
 * per block and held only for the addition, so no thread waits long.
 */
#include <string.h>

#include "dense.h"

static void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Rows per block: FAST_ROWS, or the multiple of it that gives a task
 * FAST_WORK fmas. */
static int block_rows(int n, int k, int units)
{
    size_t chunk = ((size_t)n + FAST_CHUNKS - 1) / FAST_CHUNKS;
    size_t rows = FAST_WORK / (chunk * (size_t)units) + 1;
    rows = (rows + FAST_ROWS - 1) / FAST_ROWS * FAST_ROWS;
    size_t kr = ((size_t)k + FAST_ROWS - 1) / FAST_ROWS * FAST_ROWS;
    return (int)(rows < kr ? rows : kr);
}

size_t detrun_cpu_dense_fast_floats(const detrun_cpu *c, int n, int k, int units)
{
    if (c->mode != DETRUN_FAST || c->threads < 2 || n < FAST_CHUNKS)
        return 0;
    return (size_t)c->threads * (size_t)block_rows(n, k, units) * (size_t)units;
}

int detrun_cpu_dense_fast_prepare(detrun_cpu *c, dense_bwd_job *j, float *partials)
{
    j->rows = block_rows(j->n, j->k, j->units);
    size_t nb = ((size_t)j->k + j->rows - 1) / j->rows;
    if (nb * FAST_CHUNKS > 0x7fffffff)
        return 0;
    if (nb > c->nblocks) {
        detrun_cpu_block *b = c->alloc(c->alloc_ud, NULL, 0, nb * sizeof *b);
        if (!b)
            return 0;
        if (c->blocks)
            c->alloc(c->alloc_ud, c->blocks, c->nblocks * sizeof *c->blocks, 0);
        c->blocks = b;
        c->nblocks = nb;
    }
    for (size_t i = 0; i < nb; i++) {
        atomic_init(&c->blocks[i].held, 0);
        c->blocks[i].arrived = 0;
    }
    j->blocks = c->blocks;
    j->partials = partials;
    j->chunk = (j->n + FAST_CHUNKS - 1) / FAST_CHUNKS;
    j->ndw = (int)nb * FAST_CHUNKS;
    return 1;
}

void detrun_cpu_dense_fast_task(const dense_bwd_job *j, int task, int thread)
{
    int blk = task / FAST_CHUNKS, ch = task % FAST_CHUNKS;
    int r0 = blk * j->rows, r1 = r0 + j->rows < j->k ? r0 + j->rows : j->k;
    int n0 = ch * j->chunk < j->n ? ch * j->chunk : j->n;
    int n1 = n0 + j->chunk < j->n ? n0 + j->chunk : j->n;
    float *part = j->partials + (size_t)thread * (size_t)j->rows * (size_t)j->units;
    /* dw rows r0..r1 over samples n0..n1: x(r, i) = in[n0 + i][r0 + r]. */
    seq_args a = { part, j->in + (size_t)n0 * j->k + r0, 1, (size_t)j->k,
                   j->dout + (size_t)n0 * j->units, (size_t)j->units, 1, NULL,
                   r1 - r0, n1 - n0, j->units, 0 };
    for (int j0 = 0; j0 < j->units; j0 += COL_TILE)
        detrun_cpu_dense_tile(&a, j->simd, 0, r1 - r0,
                              j0, j0 + COL_TILE < j->units ? j0 + COL_TILE : j->units);
    detrun_cpu_block *b = &j->blocks[blk];
    while (atomic_exchange_explicit(&b->held, 1, memory_order_acquire))
        cpu_pause();
    float *dw = j->dwp + (size_t)r0 * j->units;
    size_t count = (size_t)(r1 - r0) * j->units;
    if (b->arrived == 0) {
        memcpy(dw, part, count * sizeof *dw);
    } else {
#if defined(__x86_64__)
        if (j->simd) {
            detrun_cpu_dense_add_avx2(dw, part, count);
        } else
#endif
        {
            for (size_t i = 0; i < count; i++)
                dw[i] = dw[i] + part[i];
        }
    }
    b->arrived++;
    atomic_store_explicit(&b->held, 0, memory_order_release);
}
