/*
 * dropout_avx512.c - dropout's AVX-512 path (docs/determinism.md, "dropout"
 * and "CPU", R6): 16 Philox blocks side by side with the same integer
 * operations as philox.h, words put back in element order, then the same
 * rounded operations as the plain loop in dropout.c.
 */
#if defined(__x86_64__)

#include <immintrin.h>

#include "dropout.h"
#include "philox.h"

#define AVX512 __attribute__((target("avx512f")))

/* Philox4x32-10 of sixteen counters (ctr0 + 0..15, c1, c2, c3): word w of
 * block k in lane k of x[w]. */
AVX512 static inline void philox16(__m512i x[4], uint32_t ctr0, uint32_t c1, uint32_t c2,
                                   uint32_t c3, uint32_t key0, uint32_t key1)
{
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    __m512i a0 = _mm512_add_epi32(_mm512_set1_epi32((int)ctr0),
                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                    14, 15));
    __m512i a1 = _mm512_set1_epi32((int)c1), a2 = _mm512_set1_epi32((int)c2);
    __m512i a3 = _mm512_set1_epi32((int)c3);
    uint32_t k0 = key0, k1 = key1;
    for (int r = 0; r < 10; r++) {
        /* 32x32 -> 64-bit products of the even lanes, then of the odd ones. */
        __m512i pe0 = _mm512_mul_epu32(a0, m0), po0 = _mm512_mul_epu32(_mm512_srli_epi64(a0, 32), m0);
        __m512i pe1 = _mm512_mul_epu32(a2, m1), po1 = _mm512_mul_epu32(_mm512_srli_epi64(a2, 32), m1);
        __m512i lo0 = _mm512_mask_blend_epi32(0xaaaa, pe0, _mm512_slli_epi64(po0, 32));
        __m512i hi0 = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(pe0, 32), po0);
        __m512i lo1 = _mm512_mask_blend_epi32(0xaaaa, pe1, _mm512_slli_epi64(po1, 32));
        __m512i hi1 = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(pe1, 32), po1);
        __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, a1), _mm512_set1_epi32((int)k0));
        __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, a3), _mm512_set1_epi32((int)k1));
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

/* Elements [e, e + 64) with e a multiple of 4: sixteen Philox blocks, words
 * put back in element order, then u >= rate and in * mask as dropout.c. */
AVX512 size_t detrun_cpu_dropout_avx512(const dropout_job *j, size_t e, size_t end)
{
    const detrun_rng_addr *a = j->addr;
    uint32_t c3 = ((uint32_t)DETRUN_RNG_DROPOUT << 24) | (a->stream & 0xffffffu);
    const __m512 rate = _mm512_set1_ps(j->rate), scale = _mm512_set1_ps(j->scale);
    const __m512 two24 = _mm512_set1_ps(0x1p-24f);
    for (; e + 64 <= end; e += 64) {
        __m512i x[4];
        philox16(x, (uint32_t)(e >> 2), a->step, a->layer, c3, (uint32_t)a->seed,
                 (uint32_t)(a->seed >> 32));
        /* In each 128-bit lane L: b[q] holds block 4L + q's four words. */
        __m512i t0 = _mm512_unpacklo_epi32(x[0], x[1]), t1 = _mm512_unpackhi_epi32(x[0], x[1]);
        __m512i t2 = _mm512_unpacklo_epi32(x[2], x[3]), t3 = _mm512_unpackhi_epi32(x[2], x[3]);
        __m512i b0 = _mm512_unpacklo_epi64(t0, t2), b1 = _mm512_unpackhi_epi64(t0, t2);
        __m512i b2 = _mm512_unpacklo_epi64(t1, t3), b3 = _mm512_unpackhi_epi64(t1, t3);
        /* Then w[q] holds blocks 4q .. 4q + 3 in order. */
        __m512i s01lo = _mm512_shuffle_i32x4(b0, b1, 0x44), s23lo = _mm512_shuffle_i32x4(b2, b3, 0x44);
        __m512i s01hi = _mm512_shuffle_i32x4(b0, b1, 0xee), s23hi = _mm512_shuffle_i32x4(b2, b3, 0xee);
        __m512i w[4];
        w[0] = _mm512_shuffle_i32x4(s01lo, s23lo, 0x88);
        w[1] = _mm512_shuffle_i32x4(s01lo, s23lo, 0xdd);
        w[2] = _mm512_shuffle_i32x4(s01hi, s23hi, 0x88);
        w[3] = _mm512_shuffle_i32x4(s01hi, s23hi, 0xdd);
        for (int q = 0; q < 4; q++) {
            __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(w[q], 8)), two24);
            __m512 m = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(u, rate, _CMP_GE_OQ), scale);
            _mm512_storeu_ps(j->mask + e + 16 * q, m);
            _mm512_storeu_ps(j->out + e + 16 * q, _mm512_mul_ps(_mm512_loadu_ps(j->in + e + 16 * q), m));
        }
    }
    return e;
}

#endif
