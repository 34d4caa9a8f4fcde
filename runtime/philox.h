/*
 * philox.h - Philox4x32-10 (Salmon et al., Random123), counter-based.
 *
 * Header-only and free of libm so that the CPU and the CUDA kernels draw
 * exactly the same numbers: every draw is addressed, none is sequential.
 * Addressing (docs/determinism.md, "Randomness"):
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { block, step, layer, purpose << 24 | (stream & 0xffffff) }
 * and element e of a draw uses word e % 4 of block e / 4.
 */
#ifndef DETRUN_PHILOX_H
#define DETRUN_PHILOX_H

#include <stdint.h>

#if defined(__CUDACC__)
#define DETRUN_HD __host__ __device__ static inline
#else
#define DETRUN_HD static inline
#endif

/* Purposes: which use a draw serves. Part of the counter. */
enum {
    DETRUN_RNG_INIT = 1,      /* weight initialisation; layer = parameter index */
    DETRUN_RNG_DROPOUT = 2,   /* dropout masks; layer = layer index, step = optimiser step */
    DETRUN_RNG_KFOLD = 3,     /* the k-fold permutation */
    DETRUN_RNG_SHUFFLE = 4,   /* per-epoch row order; step = epoch */
    DETRUN_RNG_SCRIPT = 5,    /* seeds handed to scripts (math.random) */
    DETRUN_RNG_TENSOR = 6     /* seeded tensors (tensor_draw.c); layer = 0 uniform, 1 normal */
};

typedef struct detrun_philox_out { uint32_t v[4]; } detrun_philox_out;

DETRUN_HD uint32_t detrun_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

DETRUN_HD detrun_philox_out detrun_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = detrun_mulhilo32(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = detrun_mulhilo32(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    detrun_philox_out o;
    o.v[0] = c0; o.v[1] = c1; o.v[2] = c2; o.v[3] = c3;
    return o;
}

/* Word e of the stream addressed by (seed, purpose, stream, layer, step). */
DETRUN_HD uint32_t detrun_philox_word(uint64_t seed, uint32_t purpose, uint32_t stream,
                                      uint32_t layer, uint32_t step, uint64_t e)
{
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    uint32_t ctr[4] = { (uint32_t)(e >> 2), step, layer, (purpose << 24) | (stream & 0xffffffu) };
    detrun_philox_out o = detrun_philox4x32_10(ctr, key);
    return o.v[e & 3];
}

/* Uniform float in [0, 1) with 24-bit resolution: exact, no rounding. */
DETRUN_HD float detrun_u01(uint32_t word)
{
    return (float)(word >> 8) * 0x1p-24f;
}

/* Uniform integer in [0, bound) by multiply-shift (bias below bound / 2^32). */
DETRUN_HD uint32_t detrun_below(uint32_t word, uint32_t bound)
{
    return (uint32_t)(((uint64_t)word * (uint64_t)bound) >> 32);
}

#endif
