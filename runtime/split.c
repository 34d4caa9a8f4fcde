/*
 * split.c - k-fold permutations, the validation split, per-epoch shuffles.
 * docs/determinism.md, "Randomness" (R6) and "Data".
 */
#include <stdint.h>

#include "internal.h"
#include "philox.h"

/* Fisher-Yates as written: for i = n-1 down to 1, draw number k = n-1-i is
 * word k of the addressed stream and picks j = below(word, i+1). One Philox
 * block serves four consecutive draws. */
static void fisher_yates(uint32_t *rows, size_t n, uint64_t seed, uint32_t purpose,
                         uint32_t stream, uint32_t step)
{
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    detrun_philox_out block = { { 0, 0, 0, 0 } };
    for (size_t i = n - 1, k = 0; i >= 1; i--, k++) {
        if ((k & 3) == 0) {
            uint32_t ctr[4] = { (uint32_t)(k >> 2), step, 0, (purpose << 24) | stream };
            block = detrun_philox4x32_10(ctr, key);
        }
        uint32_t j = detrun_below(block.v[k & 3], (uint32_t)(i + 1));
        uint32_t t = rows[i];
        rows[i] = rows[j];
        rows[j] = t;
    }
}

/* Rows are 32-bit indices and each one's draw counter is 32 bits; purpose
 * and stream share the counter's last word, 8 and 24 bits: outside those
 * ranges two keys would give the same order, so they are refused. */
detrun_status detrun_shuffle(uint32_t *rows, size_t n, uint64_t seed, uint32_t purpose,
                             uint32_t stream, uint32_t step)
{
    if (purpose > 0xffu || stream > DETRUN_STREAM_MAX || n > UINT32_MAX)
        return DETRUN_ERR_ARG;
    if (n < 2)
        return DETRUN_OK;
    if (rows == NULL)
        return DETRUN_ERR_ARG;
    fisher_yates(rows, n, seed, purpose, stream, step);
    return DETRUN_OK;
}

detrun_status detrun_kfold(detrun_runtime *rt, size_t n, int k, uint64_t seed, uint32_t *perm,
                           size_t *bounds)
{
    if (rt == NULL)
        return DETRUN_ERR_ARG;
    if (perm == NULL || bounds == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "kfold: %s is NULL",
                             perm == NULL ? "perm" : "bounds");
    if (k < 2)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "kfold: k is %d, at least 2 folds are needed", k);
    if (n < (size_t)k)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "kfold: %zu rows cannot make %d folds (each fold needs a row)", n, k);
    if (n > UINT32_MAX)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "kfold: %zu rows, at most 2^32-1", n);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    fisher_yates(perm, n, seed, DETRUN_RNG_KFOLD, 0, 0);
    /* scikit-learn's KFold: the first n % k folds hold one row more. */
    size_t base = n / (size_t)k, extra = n % (size_t)k;
    bounds[0] = 0;
    for (int f = 0; f < k; f++)
        bounds[f + 1] = bounds[f] + base + ((size_t)f < extra ? 1 : 0);
    return DETRUN_OK;
}

size_t detrun_validation_split(size_t n, double fraction)
{
    /* Written so that NaN lands in the first branch: no validation rows. */
    if (!(fraction > 0.0))
        return n;
    if (fraction >= 1.0)
        return 0;
    /* n * fraction >= 0, so the conversion truncates, which is floor. */
    size_t val = (size_t)((double)n * fraction);
    return val < n ? n - val : 0;
}
