/* Philox4x32-10 known answers (Random123's kat_vectors) and the uniform draws
 * built on it (docs/determinism.md, "Randomness"). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "detrun.h"
#include "philox.h"

#include "../common.h"

static void kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4])
{
    detrun_philox_out o = detrun_philox4x32_10(ctr, key);
    for (int i = 0; i < 4; i++)
        CHECK(o.v[i] == want[i], "ctr %08x.. key %08x..: word %d is %08x, want %08x",
              ctr[0], key[0], i, o.v[i], want[i]);
}

int main(void)
{
    {
        uint32_t c[4] = { 0, 0, 0, 0 }, k[2] = { 0, 0 };
        uint32_t w[4] = { 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u };
        kat(c, k, w);
    }
    {
        uint32_t c[4] = { 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu };
        uint32_t k[2] = { 0xffffffffu, 0xffffffffu };
        uint32_t w[4] = { 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu };
        kat(c, k, w);
    }
    {
        uint32_t c[4] = { 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u };
        uint32_t k[2] = { 0xa4093822u, 0x299f31d0u };
        uint32_t w[4] = { 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u };
        kat(c, k, w);
    }

    /* Addressing: word e of (seed, purpose, stream, layer, step) is word e&3
     * of the block with counter {e>>2, step, layer, purpose<<24 | stream}. */
    {
        uint64_t seed = 0x0123456789abcdefull;
        uint32_t key[2] = { 0x89abcdefu, 0x01234567u };
        uint32_t ctr[4] = { 5, 7, 3, (2u << 24) | 9u };
        detrun_philox_out o = detrun_philox4x32_10(ctr, key);
        for (int j = 0; j < 4; j++) {
            uint32_t w = detrun_philox_word(seed, 2, 9, 3, 7, 20 + j);
            CHECK(w == o.v[j], "philox_word e=%d: %08x, want %08x", 20 + j, w, o.v[j]);
        }
        /* The stream keeps only its low 24 bits: purpose is not overwritten. */
        CHECK(detrun_philox_word(seed, 2, 9 | 0x5000000u, 3, 7, 21) == o.v[1],
              "stream bits above 24 leak into the purpose");
    }

    /* u01: exact 24-bit grid in [0, 1). */
    CHECK(detrun_u01(0) == 0.0f, "u01(0) = %a", detrun_u01(0));
    CHECK(detrun_u01(0xffffffffu) == 1.0f - 0x1p-24f, "u01(max) = %a", detrun_u01(0xffffffffu));
    CHECK(detrun_u01(0x80000000u) == 0.5f, "u01(2^31) = %a", detrun_u01(0x80000000u));
    CHECK(detrun_u01(0x000001ffu) == 0x1p-24f, "u01(0x1ff) = %a", detrun_u01(0x1ffu));

    /* Distribution over 2^20 draws: mean 1/2, variance 1/12, 10 bins even
     * within 5 standard deviations. */
    {
        const int n = 1 << 20;
        double sum = 0, sq = 0;
        long bins[10] = { 0 };
        for (int e = 0; e < n; e++) {
            float u = detrun_u01(detrun_philox_word(42, 1, 0, 0, 0, (uint64_t)e));
            CHECK(u >= 0.0f && u < 1.0f, "draw %d out of [0,1): %a", e, u);
            sum += u;
            sq += (double)u * u;
            bins[(int)(u * 10.0f)]++;
        }
        double mean = sum / n, var = sq / n - mean * mean;
        CHECK(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / n), "mean %.6f", mean);
        CHECK(fabs(var - 1.0 / 12) < 1e-3, "variance %.6f", var);
        double expect = n / 10.0, sd = sqrt(n * 0.1 * 0.9);
        for (int b = 0; b < 10; b++)
            CHECK(fabs(bins[b] - expect) < 5 * sd, "bin %d: %ld draws, expect %.0f", b, bins[b],
                  expect);
    }

    /* below(): multiply-shift, in range, hand-computed values. */
    CHECK(detrun_below(0, 10) == 0, "below(0,10)");
    CHECK(detrun_below(0xffffffffu, 10) == 9, "below(max,10) = %u", detrun_below(0xffffffffu, 10));
    CHECK(detrun_below(0x80000000u, 7) == 3, "below(2^31,7) = %u", detrun_below(0x80000000u, 7));
    CHECK(detrun_below(0x40000000u, 1) == 0, "below(x,1)");
    {
        long counts[6] = { 0 };
        const int n = 600000;
        for (int e = 0; e < n; e++) {
            uint32_t j = detrun_below(detrun_philox_word(7, 4, 1, 0, 3, (uint64_t)e), 6);
            CHECK(j < 6, "below out of range: %u", j);
            if (j < 6)
                counts[j]++;
        }
        double sd = sqrt(n * (1.0 / 6) * (5.0 / 6));
        for (int j = 0; j < 6; j++)
            CHECK(fabs(counts[j] - n / 6.0) < 5 * sd, "below(.,6) value %d: %ld times", j,
                  counts[j]);
    }

    /* Fisher-Yates (detrun_shuffle) against the documented algorithm, and
     * its properties: a permutation, keyed by step, uniform positions. */
    {
        enum { N = 1000 };
        static uint32_t a[N], ref[N], b[N];
        for (uint32_t i = 0; i < N; i++)
            a[i] = ref[i] = b[i] = i * 3u;   /* values, not indices, are permuted */
        detrun_shuffle(a, N, 77, DETRUN_RNG_SHUFFLE, 2, 5);
        for (uint32_t i = N - 1; i >= 1; i--) {
            uint32_t k = N - 1 - i;
            uint32_t j = detrun_below(detrun_philox_word(77, DETRUN_RNG_SHUFFLE, 2, 0, 5, k), i + 1);
            uint32_t t = ref[i];
            ref[i] = ref[j];
            ref[j] = t;
        }
        CHECK(memcmp(a, ref, sizeof a) == 0, "shuffle differs from the documented Fisher-Yates");
        static unsigned char seen[N];
        int perm = 1;
        for (int i = 0; i < N; i++) {
            if (a[i] % 3 != 0 || a[i] / 3 >= N || seen[a[i] / 3])
                perm = 0;
            else
                seen[a[i] / 3] = 1;
        }
        CHECK(perm, "shuffle is not a permutation");
        int fixed = 0;
        for (int i = 0; i < N; i++)
            fixed += a[i] == (uint32_t)i * 3u;
        CHECK(fixed < 10, "%d fixed points out of %d", fixed, N);
        detrun_shuffle(b, N, 77, DETRUN_RNG_SHUFFLE, 2, 6);
        CHECK(memcmp(a, b, sizeof a) != 0, "step 6 gave the step 5 order");

        /* Where element 0 of 5 lands, over 50000 streams: each place 1/5. */
        long where[5] = { 0 };
        for (uint32_t s = 0; s < 50000; s++) {
            uint32_t r[5] = { 0, 1, 2, 3, 4 };
            detrun_shuffle(r, 5, 1, DETRUN_RNG_SHUFFLE, s, 0);
            for (int i = 0; i < 5; i++)
                if (r[i] == 0)
                    where[i]++;
        }
        double sd = sqrt(50000 * 0.2 * 0.8);
        for (int i = 0; i < 5; i++)
            CHECK(fabs(where[i] - 10000.0) < 5 * sd, "element 0 at place %d %ld times", i,
                  where[i]);
        uint32_t one[1] = { 42 };
        detrun_shuffle(one, 1, 1, DETRUN_RNG_SHUFFLE, 0, 0);
        detrun_shuffle(one, 0, 1, DETRUN_RNG_SHUFFLE, 0, 0);
        CHECK(one[0] == 42, "shuffling 1 or 0 rows changed them");
    }

    return test_report("test_rng");
}
