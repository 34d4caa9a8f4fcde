/*
 * tensor_draw.c - seeded tensors: uniform, normal and Glorot draws through
 * Philox, purpose TENSOR (docs/determinism.md, "Randomness", R3, R6).
 *
 * Element e of a draw depends on (seed, stream, e) alone, never on the
 * tensor's shape or on other elements, so a {4} draw is the prefix of a
 * {1000} one:
 *   uniform, glorot: word e of the stream (block e >> 2, word e & 3) with
 *     step 0, layer 0;
 *   normal: element e owns the counters { a, e, 1, TENSOR << 24 | stream }
 *     for a = 0, 1, ...; try t uses block t >> 1, words 2 (t & 1) and
 *     2 (t & 1) + 1, and the first accepted try gives the value.
 * The normal transform is Marsaglia's polar method built from + - * /,
 * sqrtf and the project's own log, so every machine gets the same bits.
 */
#include <math.h>
#include <stdint.h>

#include "internal.h"
#include "mathf.h"
#include "philox.h"
#include "tensor.h"

#define LAYER_UNIFORM 0u
#define LAYER_NORMAL 1u

static detrun_status check_draw(detrun_runtime *rt, const char *what, const detrun_tensor *t,
                                uint32_t stream)
{
    if (t == NULL)
        return detrun_seterr(rt, DETRUN_ERR_ARG, "%s: the tensor is NULL", what);
    if (stream > 0xffffffu)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "%s: stream %lu is out of range 0..16777215", what,
                             (unsigned long)stream);
    return DETRUN_OK;
}

static int finite(float v)
{
    return v == v && v - v == 0.0f;
}

/* u_e in [0, 1): 24 bits of word e, exact. */
static void uniform01(float *out, size_t count, uint64_t seed, uint32_t stream)
{
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    for (size_t b = 0; b * 4 < count; b++) {
        uint32_t ctr[4] = { (uint32_t)b, 0u, LAYER_UNIFORM,
                            ((uint32_t)DETRUN_RNG_TENSOR << 24) | stream };
        detrun_philox_out o = detrun_philox4x32_10(ctr, key);
        for (size_t w = 0; w < 4 && b * 4 + w < count; w++)
            out[b * 4 + w] = detrun_u01(o.v[w]);
    }
}

detrun_status detrun_tensor_uniform(detrun_runtime *rt, detrun_tensor *t, uint64_t seed,
                                    uint32_t stream, float low, float high)
{
    detrun_status st = check_draw(rt, "uniform", t, stream);
    if (st != DETRUN_OK)
        return st;
    if (!finite(low) || !finite(high) || !(low < high) || !finite(high - low))
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "uniform: needs finite low < high (high - low finite), not "
                             "low %g, high %g", (double)low, (double)high);
    uniform01(t->data, t->count, seed, stream);
    float span = high - low;
    for (size_t e = 0; e < t->count; e++)
        t->data[e] = low + span * t->data[e];   /* a rounded product, then a rounded sum */
    return DETRUN_OK;
}

/* The standard normal of element e: polar method, tries in counter order. */
static float polar(const uint32_t key[2], uint32_t e, uint32_t stream)
{
    for (uint32_t a = 0;; a++) {
        uint32_t ctr[4] = { a, e, LAYER_NORMAL, ((uint32_t)DETRUN_RNG_TENSOR << 24) | stream };
        detrun_philox_out o = detrun_philox4x32_10(ctr, key);
        for (int half = 0; half < 2; half++) {
            float x = 2.0f * detrun_u01(o.v[2 * half]) - 1.0f;       /* exact, in [-1, 1) */
            float y = 2.0f * detrun_u01(o.v[2 * half + 1]) - 1.0f;
            float s = x * x + y * y;                                  /* two products, a sum */
            if (s > 0.0f && s < 1.0f) {
                float f = sqrtf((-2.0f * detrun_logf(s)) / s);
                return x * f;
            }
        }
    }
}

detrun_status detrun_tensor_normal(detrun_runtime *rt, detrun_tensor *t, uint64_t seed,
                                   uint32_t stream, float mean, float std)
{
    detrun_status st = check_draw(rt, "normal", t, stream);
    if (st != DETRUN_OK)
        return st;
    if (!finite(mean) || !finite(std) || std < 0.0f)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "normal: needs a finite mean and a finite std >= 0, not mean %g, "
                             "std %g", (double)mean, (double)std);
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    for (size_t e = 0; e < t->count; e++)
        t->data[e] = mean + std * polar(key, (uint32_t)e, stream);
    return DETRUN_OK;
}

/* As the runtime's own initialisation (docs/determinism.md, Glorot-uniform)
 * but on the TENSOR purpose: (2 u_e - 1) * limit. */
detrun_status detrun_tensor_glorot(detrun_runtime *rt, detrun_tensor *t, uint64_t seed,
                                   uint32_t stream, int fan_in, int fan_out)
{
    detrun_status st = check_draw(rt, "glorot", t, stream);
    if (st != DETRUN_OK)
        return st;
    if (fan_in < 1 || fan_out < 1 || fan_in > 0x3fffffff - fan_out)
        return detrun_seterr(rt, DETRUN_ERR_ARG,
                             "glorot: fan_in and fan_out must be positive, not %d and %d",
                             fan_in, fan_out);
    float limit = sqrtf(6.0f / (float)(fan_in + fan_out));
    uniform01(t->data, t->count, seed, stream);
    for (size_t e = 0; e < t->count; e++)
        t->data[e] = (2.0f * t->data[e] - 1.0f) * limit;
    return DETRUN_OK;
}
