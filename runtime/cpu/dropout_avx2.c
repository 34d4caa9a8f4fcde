/*
 * dropout_avx2.c - dropout's AVX2 path (docs/determinism.md, "dropout" and
 * "CPU", R6): 8 Philox blocks side by side with the same integer operations
 * as philox.h, words put back in element order, then the same rounded
 * operations as the plain loop in dropout.c.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "dropout.h"
#include "philox.h"

/* Philox4x32-10 of eight counters (ctr0 + 0..7, c1, c2, c3) side by side:
 * the same integer operations as philox.h, word w of block k in lane k of
 * x[w]. */
__attribute__((target("avx2"))) static inline void philox8(__m256i x[4], uint32_t ctr0,
                                                            uint32_t c1, uint32_t c2,
                                                            uint32_t c3, uint32_t key0,
                                                            uint32_t key1)
{
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    __m256i a0 = _mm256_add_epi32(_mm256_set1_epi32((int)ctr0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i a1 = _mm256_set1_epi32((int)c1), a2 = _mm256_set1_epi32((int)c2);
    __m256i a3 = _mm256_set1_epi32((int)c3);
    uint32_t k0 = key0, k1 = key1;
    for (int r = 0; r < 10; r++) {
        __m256i pe0 = _mm256_mul_epu32(a0, m0), po0 = _mm256_mul_epu32(_mm256_srli_epi64(a0, 32), m0);
        __m256i pe1 = _mm256_mul_epu32(a2, m1), po1 = _mm256_mul_epu32(_mm256_srli_epi64(a2, 32), m1);
        __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xaa);
        __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xaa);
        __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xaa);
        __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xaa);
        __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, a1), _mm256_set1_epi32((int)k0));
        __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, a3), _mm256_set1_epi32((int)k1));
        a0 = n0;
        a1 = lo1;
        a2 = n2;
        a3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    x[0] = a0;
    x[1] = a1;
    x[2] = a2;
    x[3] = a3;
}

/* Elements [e, e + 32) with e a multiple of 4: eight Philox blocks, words
 * put back in element order, then u >= rate and in * mask as below. */
__attribute__((target("avx2"))) size_t detrun_cpu_dropout_avx2(const dropout_job *j, size_t e,
                                                               size_t end)
{
    const detrun_rng_addr *a = j->addr;
    uint32_t c3 = ((uint32_t)DETRUN_RNG_DROPOUT << 24) | (a->stream & 0xffffffu);
    const __m256 rate = _mm256_set1_ps(j->rate), scale = _mm256_set1_ps(j->scale);
    const __m256 two24 = _mm256_set1_ps(0x1p-24f);
    for (; e + 32 <= end; e += 32) {
        __m256i x[4];
        philox8(x, (uint32_t)(e >> 2), a->step, a->layer, c3, (uint32_t)a->seed,
                (uint32_t)(a->seed >> 32));
        __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]), t1 = _mm256_unpackhi_epi32(x[0], x[1]);
        __m256i t2 = _mm256_unpacklo_epi32(x[2], x[3]), t3 = _mm256_unpackhi_epi32(x[2], x[3]);
        __m256i b04 = _mm256_unpacklo_epi64(t0, t2), b15 = _mm256_unpackhi_epi64(t0, t2);
        __m256i b26 = _mm256_unpacklo_epi64(t1, t3), b37 = _mm256_unpackhi_epi64(t1, t3);
        __m256i w[4];
        w[0] = _mm256_permute2x128_si256(b04, b15, 0x20);
        w[1] = _mm256_permute2x128_si256(b26, b37, 0x20);
        w[2] = _mm256_permute2x128_si256(b04, b15, 0x31);
        w[3] = _mm256_permute2x128_si256(b26, b37, 0x31);
        for (int q = 0; q < 4; q++) {
            __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(w[q], 8)), two24);
            __m256 m = _mm256_and_ps(_mm256_cmp_ps(u, rate, _CMP_GE_OQ), scale);
            _mm256_storeu_ps(j->mask + e + 8 * q, m);
            _mm256_storeu_ps(j->out + e + 8 * q, _mm256_mul_ps(_mm256_loadu_ps(j->in + e + 8 * q), m));
        }
    }
    return e;
}

#endif
