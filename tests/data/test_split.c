/*
 * test_split.c - k-fold, validation split and shuffles against
 * docs/determinism.md ("Randomness", "Data"), with Fisher-Yates re-written
 * here from the text, one Philox call per draw.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datatest.h"
#include "detrun.h"
#include "philox.h"

static detrun_runtime *rt;

/* The text: for i = n-1 down to 1, draw number k = n-1-i gives
 * j = below(word_k, i+1), then swap rows i and j. Word k is element k of the
 * draw: counter { k >> 2, step, layer 0, purpose << 24 | stream }, word k & 3. */
static void reference_shuffle(uint32_t *rows, size_t n, uint64_t seed, uint32_t purpose,
                              uint32_t stream, uint32_t step)
{
    for (size_t i = n - 1; n > 1 && i >= 1; i--) {
        uint64_t k = n - 1 - i;
        uint32_t key[2] = { (uint32_t)(seed & 0xffffffffu), (uint32_t)(seed >> 32) };
        uint32_t ctr[4] = { (uint32_t)(k >> 2), step, 0, purpose << 24 | (stream & 0xffffff) };
        uint32_t word = detrun_philox4x32_10(ctr, key).v[k & 3];
        uint32_t j = (uint32_t)(((uint64_t)word * (uint64_t)(i + 1)) >> 32);
        uint32_t t = rows[i];
        rows[i] = rows[j];
        rows[j] = t;
    }
}

static int is_permutation(const uint32_t *p, size_t n)
{
    uint8_t *seen = calloc(n + 1, 1);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        if (p[i] >= n || seen[p[i]])
            ok = 0;
        else
            seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static uint32_t *iota(size_t n)
{
    uint32_t *p = malloc((n + 1) * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint32_t)(i * 3 + 1);   /* not 0..n-1: the shuffle moves values, not indices */
    return p;
}

static void shuffles(void)
{
    static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9, 100, 1001, 54000 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint32_t *a = iota(n), *b = iota(n);
        detrun_shuffle(a, n, 0x123456789abcdef0ull, DETRUN_RNG_SHUFFLE, 3, 7);
        reference_shuffle(b, n, 0x123456789abcdef0ull, DETRUN_RNG_SHUFFLE, 3, 7);
        CHECK(n == 0 || memcmp(a, b, n * sizeof *a) == 0, "n=%zu: differs from the text", n);
        free(a);
        free(b);
    }

    size_t n = 1000;
    uint32_t *base = iota(n), *x = iota(n), *y = iota(n);
    detrun_shuffle(x, n, 42, DETRUN_RNG_SHUFFLE, 0, 0);
    detrun_shuffle(y, n, 42, DETRUN_RNG_SHUFFLE, 0, 0);
    CHECK(memcmp(x, y, n * 4) == 0, "same key, different order");
    CHECK(memcmp(x, base, n * 4) != 0, "the shuffle left the rows in place");
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - 1) / 3;
    CHECK(is_permutation(x, n), "not a permutation");
    /* Each part of the key changes the order: epoch (step), stream, purpose, seed. */
    struct { uint64_t seed; uint32_t purpose, stream, step; const char *what; } keys[] = {
        { 42, DETRUN_RNG_SHUFFLE, 0, 1, "epoch" },
        { 42, DETRUN_RNG_SHUFFLE, 1, 0, "stream" },
        { 42, DETRUN_RNG_KFOLD, 0, 0, "purpose" },
        { 43, DETRUN_RNG_SHUFFLE, 0, 0, "seed (low word)" },
        { 42 | (1ull << 32), DETRUN_RNG_SHUFFLE, 0, 0, "seed (high word)" },
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        memcpy(x, base, n * 4);
        detrun_shuffle(x, n, keys[k].seed, keys[k].purpose, keys[k].stream, keys[k].step);
        memcpy(y, base, n * 4);
        detrun_shuffle(y, n, 42, DETRUN_RNG_SHUFFLE, 0, 0);
        CHECK(memcmp(x, y, n * 4) != 0, "changing the %s did not change the order", keys[k].what);
    }
    free(base);
    free(x);
    free(y);

    /* Uniformity: over 24000 streams, each of the 24 orders of 4 rows comes up
     * about 1000 times (sd ~31; a biased j, e.g. below(word, i), fails). */
    int counts[24] = { 0 };
    for (uint32_t s = 0; s < 24000; s++) {
        uint32_t r[4] = { 0, 1, 2, 3 };
        detrun_shuffle(r, 4, 7, DETRUN_RNG_SHUFFLE, s, 0);
        /* Lehmer code of r as an index in 0..23. */
        int code = 0;
        for (int i = 0; i < 4; i++) {
            int smaller = 0;
            for (int j = i + 1; j < 4; j++)
                smaller += r[j] < r[i];
            code = code * (4 - i) + smaller;
        }
        counts[code]++;
    }
    for (int c = 0; c < 24; c++)
        CHECK(counts[c] > 850 && counts[c] < 1150, "order %d came up %d times of 24000", c,
              counts[c]);
}

static void folds(void)
{
    static const size_t ns[] = { 2, 3, 10, 11, 19, 100, 101, 60000 };
    static const int ks[] = { 2, 3, 5, 10 };
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++) {
            size_t n = ns[a];
            int k = ks[b];
            if ((size_t)k > n)
                continue;
            uint32_t *perm = malloc(n * sizeof *perm), *ref = malloc(n * sizeof *ref);
            size_t bounds[11];
            CHECK(detrun_kfold(rt, n, k, 99, perm, bounds) == DETRUN_OK, "%s", detrun_errmsg(rt));
            CHECK(is_permutation(perm, n), "n=%zu k=%d: not a permutation", n, k);
            /* The permutation is the shuffle of 0..n-1 with purpose KFOLD. */
            for (size_t i = 0; i < n; i++)
                ref[i] = (uint32_t)i;
            reference_shuffle(ref, n, 99, DETRUN_RNG_KFOLD, 0, 0);
            CHECK(memcmp(perm, ref, n * 4) == 0, "n=%zu k=%d: not the KFOLD shuffle", n, k);
            /* scikit-learn: fold sizes n // k, plus one for the first n % k. */
            CHECK(bounds[0] == 0 && bounds[k] == n, "n=%zu k=%d: bounds [%zu, %zu]", n, k,
                  bounds[0], bounds[k]);
            for (int f = 0; f < k; f++) {
                size_t want = n / (size_t)k + ((size_t)f < n % (size_t)k ? 1 : 0);
                CHECK(bounds[f + 1] - bounds[f] == want, "n=%zu k=%d: fold %d has %zu rows, not %zu",
                      n, k, f, bounds[f + 1] - bounds[f], want);
            }
            free(perm);
            free(ref);
        }
    }
    /* Hand-worked sizes: 11 rows in 3 folds are 4, 4, 3. */
    uint32_t p11[11];
    size_t b3[4];
    detrun_kfold(rt, 11, 3, 5, p11, b3);
    CHECK(b3[1] == 4 && b3[2] == 8 && b3[3] == 11, "11 in 3: %zu %zu %zu", b3[1], b3[2], b3[3]);

    /* The seed protocol: 60000 rows, 10 folds of 6000; same seed same folds. */
    size_t n = 60000;
    uint32_t *p = malloc(n * 4), *q = malloc(n * 4);
    size_t bp[11], bq[11];
    detrun_kfold(rt, n, 10, 1234, p, bp);
    detrun_kfold(rt, n, 10, 1234, q, bq);
    CHECK(memcmp(p, q, n * 4) == 0 && memcmp(bp, bq, sizeof bp) == 0, "same seed, other folds");
    for (int f = 0; f <= 10; f++)
        CHECK(bp[f] == (size_t)f * 6000, "bound %d is %zu", f, bp[f]);
    detrun_kfold(rt, n, 10, 1235, q, bq);
    CHECK(memcmp(p, q, n * 4) != 0, "different seeds, same folds");
    /* Folds differ in content too, not only in order within a fold. */
    int same_fold0 = 1;
    uint8_t *in0 = calloc(n, 1);
    for (size_t i = 0; i < 6000; i++)
        in0[p[i]] = 1;
    for (size_t i = 0; i < 6000; i++)
        same_fold0 &= in0[q[i]];
    CHECK(!same_fold0, "fold 0 has the same rows under two seeds");
    free(in0);
    free(p);
    free(q);

    uint32_t small[4];
    size_t bs[6];
    CHECK(detrun_kfold(rt, 4, 1, 0, small, bs) == DETRUN_ERR_ARG &&
              strstr(detrun_errmsg(rt), "k is 1"), "k=1: %s", detrun_errmsg(rt));
    CHECK(detrun_kfold(rt, 4, 5, 0, small, bs) == DETRUN_ERR_ARG &&
              strstr(detrun_errmsg(rt), "4 rows cannot make 5 folds"), "k>n: %s", detrun_errmsg(rt));
    CHECK(detrun_kfold(rt, 4, 2, 0, NULL, bs) == DETRUN_ERR_ARG &&
              strstr(detrun_errmsg(rt), "perm is NULL"), "NULL perm: %s", detrun_errmsg(rt));
}

static void validation(void)
{
    /* Hand computed: training rows = n - floor(n * fraction). */
    struct { size_t n; double f; size_t train; } cases[] = {
        { 54000, 0.2, 43200 },   /* the seed protocol */
        { 10, 0.25, 8 },          /* floor(2.5) = 2 */
        { 7, 0.5, 4 },            /* floor(3.5) = 3 */
        { 3, 0.3, 3 },            /* floor(0.9) = 0 */
        { 100, 0.0, 100 },
        { 100, 1.0, 0 },
        { 100, 1.5, 0 },
        { 100, -0.5, 100 },
        { 0, 0.2, 0 },
        { 60000, 0.1, 54000 },
        { 1, 0.999, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = detrun_validation_split(cases[i].n, cases[i].f);
        CHECK(got == cases[i].train, "n=%zu fraction %g: %zu training rows, expected %zu",
              cases[i].n, cases[i].f, got, cases[i].train);
    }
    CHECK(detrun_validation_split(50, NAN) == 50, "NaN fraction took rows");
}

int main(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 1;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        fprintf(stderr, "test_split: detrun_open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    shuffles();
    folds();
    validation();
    detrun_close(rt);
    return test_report("test_split");
}
