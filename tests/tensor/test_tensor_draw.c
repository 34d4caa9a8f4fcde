/* Seeded draws (docs/determinism.md, "Tensors"): known answers, moments,
 * prefix consistency, thread-count invariance, argument checks.
 *
 * The known answers were computed once by the independent Python reference
 * beside this file (`python3 tests/tensor/tensor_ref.py table`: Philox in
 * Python integers, float32 emulated exactly, the project's log transcribed
 * from docs/determinism.md); the test tensor.reference reruns it against
 * thousands of draws whenever python3 is present. */
#include <math.h>
#include <stdlib.h>

#include "tensor_test.h"

typedef struct kat {
    const char *kind;
    uint64_t seed;
    uint32_t stream;
    int n;
    uint32_t bits[8];
} kat;

/* From tensor_ref.py table; glorot with fan_in 16, fan_out 3. */
static const kat kats[] = {
    { "uniform", 0x1ull, 0, 8, { 0x3f1369df, 0x3eb80c44, 0x3e008354, 0x3effc076, 0x3f66333b, 0x3eb95e2c, 0x3ebefef6, 0x3f642d08 } },
    { "uniform", 0x123456789abcdef0ull, 77, 6, { 0x3f78c457, 0x3f57ad79, 0x3f7c9b6b, 0x3f1e6c7c, 0x3eec1752, 0x3db52a18 } },
    { "normal", 0x1ull, 0, 8, { 0xbec40a8f, 0x3f04425a, 0xbdd55db3, 0x3fbd0c22, 0xbf88065c, 0x3f09ff44, 0xbf463618, 0xbfd26f44 } },
    { "normal", 0x2aull, 3, 6, { 0x3da75f5e, 0xbf978015, 0x3fc40c5a, 0xbfb8b3f4, 0x3f301fa3, 0xbf3d5e92 } },
    { "glorot", 0x7ull, 1, 6, { 0xbefc5872, 0x3ec0ea02, 0xbd815637, 0x3ec2e8f1, 0xbf08761f, 0xbe80f598 } },
};

static detrun_status draw(detrun_runtime *rt, const char *kind, detrun_tensor *t, uint64_t seed,
                          uint32_t stream)
{
    if (kind[0] == 'u')
        return detrun_tensor_uniform(rt, t, seed, stream, 0.0f, 1.0f);
    if (kind[0] == 'n')
        return detrun_tensor_normal(rt, t, seed, stream, 0.0f, 1.0f);
    return detrun_tensor_glorot(rt, t, seed, stream, 16, 3);
}

static void known_answers(detrun_runtime *rt)
{
    for (size_t k = 0; k < sizeof kats / sizeof kats[0]; k++) {
        const kat *a = &kats[k];
        detrun_tensor *t = vec(rt, a->n);
        CHECK(draw(rt, a->kind, t, a->seed, a->stream) == DETRUN_OK, "%s", detrun_errmsg(rt));
        for (int i = 0; i < a->n; i++)
            CHECK(fbits(detrun_tensor_data(t)[i]) == a->bits[i],
                  "%s seed %llx stream %u element %d: %08x, want %08x", a->kind,
                  (unsigned long long)a->seed, a->stream, i, fbits(detrun_tensor_data(t)[i]),
                  a->bits[i]);
        detrun_tensor_free(t);
    }
}

/* Mean and variance of 10^6 draws within 6 standard errors. */
static void moments(detrun_runtime *rt)
{
    const int n = 1000000;
    detrun_tensor *t = vec(rt, n);
    for (int kind = 0; kind < 2; kind++) {
        CHECK(draw(rt, kind ? "normal" : "uniform", t, 2024, 5) == DETRUN_OK, "draw");
        const float *d = detrun_tensor_data(t);
        double s = 0, s2 = 0, s4 = 0, lo = 1e9, hi = -1e9;
        for (int i = 0; i < n; i++) {
            s += d[i];
            lo = d[i] < lo ? d[i] : lo;
            hi = d[i] > hi ? d[i] : hi;
        }
        double mean = s / n;
        for (int i = 0; i < n; i++) {
            double c = d[i] - mean;
            s2 += c * c;
            s4 += c * c * c * c;
        }
        double var = s2 / n, kurt = s4 / n / (var * var);
        double want_mean = kind ? 0.0 : 0.5, want_var = kind ? 1.0 : 1.0 / 12;
        double se_mean = sqrt(want_var / n);
        double se_var = want_var * sqrt((kind ? 2.0 : 0.8) / n);   /* (mu4/var^2 - 1) / n */
        printf("%s: mean %.6f var %.6f kurtosis %.4f min %g max %g\n", kind ? "normal" : "uniform",
               mean, var, kurt, lo, hi);
        CHECK(fabs(mean - want_mean) < 6 * se_mean, "mean %.6f", mean);
        CHECK(fabs(var - want_var) < 6 * se_var, "variance %.6f", var);
        if (kind)
            CHECK(fabs(kurt - 3.0) < 0.05, "kurtosis %.4f", kurt);
        else
            CHECK(lo >= 0.0 && hi < 1.0, "range [%g, %g]", lo, hi);
    }
    detrun_tensor_free(t);
}

/* uniform{{4}} is the first 4 of uniform{{1000}}; the shape never matters. */
static void prefix(detrun_runtime *rt)
{
    const char *kinds[] = { "uniform", "normal", "glorot" };
    for (int k = 0; k < 3; k++) {
        detrun_tensor *a = vec(rt, 4), *b = vec(rt, 1000), *c = NULL;
        int dims[3] = { 10, 10, 10 };
        detrun_tensor_new(rt, 3, dims, &c);
        draw(rt, kinds[k], a, 1, 0);
        draw(rt, kinds[k], b, 1, 0);
        draw(rt, kinds[k], c, 1, 0);
        for (int i = 0; i < 4; i++)
            CHECK(fbits(detrun_tensor_data(a)[i]) == fbits(detrun_tensor_data(b)[i]),
                  "%s: element %d of a {4} draw differs from a {1000} draw", kinds[k], i);
        CHECK(memcmp(detrun_tensor_data(b), detrun_tensor_data(c), 4000) == 0,
              "%s: a {10, 10, 10} draw differs from a {1000} draw", kinds[k]);
        detrun_tensor_free(a);
        detrun_tensor_free(b);
        detrun_tensor_free(c);
    }
    /* Another seed or stream gives another draw. */
    detrun_tensor *a = vec(rt, 4), *b = vec(rt, 4);
    detrun_tensor_uniform(rt, a, 1, 0, 0, 1);
    detrun_tensor_uniform(rt, b, 1, 1, 0, 1);
    CHECK(memcmp(detrun_tensor_data(a), detrun_tensor_data(b), 16) != 0, "stream ignored");
    detrun_tensor_uniform(rt, b, 2, 0, 0, 1);
    CHECK(memcmp(detrun_tensor_data(a), detrun_tensor_data(b), 16) != 0, "seed ignored");
    detrun_tensor_free(a);
    detrun_tensor_free(b);
}

/* Draws are single-threaded: the same bits whatever the runtime's threads. */
static void threads(void)
{
    detrun_tensor *ref[3] = { NULL, NULL, NULL };
    for (int th = 1; th <= 4; th++) {
        detrun_runtime *rt = open_rt(th);
        for (int k = 0; k < 3; k++) {
            detrun_tensor *t = vec(rt, 5000);
            draw(rt, k == 0 ? "uniform" : k == 1 ? "normal" : "glorot", t, 99, 4);
            if (ref[k] == NULL)
                ref[k] = t;
            else {
                CHECK(memcmp(detrun_tensor_data(t), detrun_tensor_data(ref[k]), 20000) == 0,
                      "draw %d differs at %d threads", k, th);
                detrun_tensor_free(t);
            }
        }
        detrun_close(rt);   /* tensors outlive their runtime */
    }
    for (int k = 0; k < 3; k++)
        detrun_tensor_free(ref[k]);
}

static void arguments(detrun_runtime *rt)
{
    detrun_tensor *t = vec(rt, 4);
    CHECK(detrun_tensor_uniform(rt, t, 0, 1u << 24, 0, 1) == DETRUN_ERR_ARG, "stream 2^24");
    CHECK(strstr(detrun_errmsg(rt), "stream 16777216") != NULL, "%s", detrun_errmsg(rt));
    CHECK(detrun_tensor_normal(rt, t, 0, 0xffffff, 0, 1) == DETRUN_OK, "stream 2^24 - 1");
    CHECK(detrun_tensor_uniform(rt, t, 0, 0, 1, 1) == DETRUN_ERR_ARG, "low == high");
    CHECK(detrun_tensor_uniform(rt, t, 0, 0, 0, INFINITY) == DETRUN_ERR_ARG, "high inf");
    CHECK(detrun_tensor_normal(rt, t, 0, 0, 0, -1) == DETRUN_ERR_ARG, "std < 0");
    CHECK(detrun_tensor_normal(rt, t, 0, 0, NAN, 1) == DETRUN_ERR_ARG, "mean NaN");
    CHECK(detrun_tensor_glorot(rt, t, 0, 0, 0, 3) == DETRUN_ERR_ARG, "fan_in 0");
    CHECK(detrun_tensor_uniform(rt, NULL, 0, 0, 0, 1) == DETRUN_ERR_ARG, "NULL tensor");
    /* uniform with a range: low + (high - low) * u */
    CHECK(detrun_tensor_uniform(rt, t, 1, 0, -2.0f, 3.0f) == DETRUN_OK, "range");
    CHECK(detrun_tensor_data(t)[0] == -2.0f + 5.0f * 0.575834215f, "range transform");
    detrun_tensor_free(t);
}

int main(void)
{
    detrun_runtime *rt = open_rt(1);
    if (rt == NULL)
        return 1;
    known_answers(rt);
    moments(rt);
    prefix(rt);
    arguments(rt);
    detrun_close(rt);
    threads();
    return test_report("test_tensor_draw");
}
