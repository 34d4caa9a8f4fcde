/* The sequential model: names, shapes and their errors, parameter views,
 * Glorot-uniform initialisation and the model fingerprint. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "detrun.h"
#include "philox.h"

#include "../common.h"

static detrun_runtime *rt;

static detrun_model *reference(void)
{
    return test_reference_network(rt, 128);
}

static void expect_error(detrun_status st, detrun_status want, const char *msg, int line)
{
    if (st != want) {
        failures++;
        printf("FAIL line %d: status %d, want %d (%s)\n", line, st, want, detrun_errmsg(rt));
    } else if (strcmp(detrun_errmsg(rt), msg) != 0 && strstr(detrun_errmsg(rt), msg) == NULL) {
        failures++;
        printf("FAIL line %d: message \"%s\" lacks \"%s\"\n", line, detrun_errmsg(rt), msg);
    }
}
#define EXPECT_ERROR(call, want, msg) expect_error((call), (want), (msg), __LINE__)

static void put32(unsigned char **b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *(*b)++ = (unsigned char)(v >> (8 * i));
}

int main(void)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 2;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }

    /* ---- names and shapes of the reference network -------------------- */
    detrun_model *m = reference();
    const char *names[] = { "conv2d_1", "maxpool_1", "conv2d_2", "maxpool_2", "flatten_1",
                            "dense_1", "dropout_1", "dense_2" };
    for (int i = 0; i < 8; i++) {
        const char *n = detrun_model_layer_name(m, i);
        CHECK(n != NULL && strcmp(n, names[i]) == 0, "layer %d is %s, want %s", i,
              n ? n : "(null)", names[i]);
    }
    CHECK(detrun_model_layer_name(m, 8) == NULL, "layer past the end");
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    CHECK(detrun_model_compile(m, &adam, 42, 0) == DETRUN_OK, "compile: %s", detrun_errmsg(rt));
    CHECK(detrun_model_param_count(m) == 8, "params %d", detrun_model_param_count(m));
    struct { const char *name; int nd; int dims[4]; } want[8] = {
        { "conv2d_1.weight", 4, { 8, 1, 3, 3 } }, { "conv2d_1.bias", 1, { 8 } },
        { "conv2d_2.weight", 4, { 8, 8, 3, 3 } }, { "conv2d_2.bias", 1, { 8 } },
        /* 28 -> 26 -> 13 -> 11 -> 5: flatten gives 8*5*5 = 200 */
        { "dense_1.weight", 2, { 200, 128 } },    { "dense_1.bias", 1, { 128 } },
        { "dense_2.weight", 2, { 128, 10 } },     { "dense_2.bias", 1, { 10 } },
    };
    for (int i = 0; i < 8; i++) {
        int dims[4];
        int nd = detrun_model_param_shape(m, i, dims);
        CHECK(strcmp(detrun_model_param_name(m, i), want[i].name) == 0, "param %d named %s", i,
              detrun_model_param_name(m, i));
        CHECK(nd == want[i].nd, "%s has %d dims", want[i].name, nd);
        for (int d = 0; d < nd && d < 4; d++)
            CHECK(dims[d] == want[i].dims[d], "%s dim %d = %d, want %d", want[i].name, d,
                  dims[d], want[i].dims[d]);
    }

    /* ---- Glorot-uniform, recomputed here from the documented rule ------ */
    static float buf[200 * 128];
    int fans[8][2] = { { 9, 72 }, { 0, 0 }, { 72, 72 }, { 0, 0 }, { 200, 128 }, { 0, 0 },
                       { 128, 10 }, { 0, 0 } };
    size_t counts[8] = { 72, 8, 576, 8, 25600, 128, 1280, 10 };
    for (int i = 0; i < 8; i++) {
        CHECK(detrun_model_param_get(m, i, buf, counts[i]) == DETRUN_OK, "get %d: %s", i,
              detrun_errmsg(rt));
        if (fans[i][0] == 0) {
            int nz = 0;
            for (size_t e = 0; e < counts[i]; e++)
                nz += buf[e] != 0.0f || signbit(buf[e]);
            CHECK(nz == 0, "%s: %d biases are not +0", want[i].name, nz);
            continue;
        }
        double limit = sqrt(6.0 / (fans[i][0] + fans[i][1]));
        float flimit = sqrtf(6.0f / (float)(fans[i][0] + fans[i][1]));
        int mismatch = 0;
        double sum = 0, sq = 0;
        for (size_t e = 0; e < counts[i]; e++) {
            uint32_t word = detrun_philox_word(42, 1, 0, (uint32_t)i, 0, e);
            float u = (float)(word >> 8) * 0x1p-24f;
            float w = (2.0f * u - 1.0f) * flimit;
            mismatch += memcmp(&w, &buf[e], 4) != 0;
            CHECK(fabs(buf[e]) <= limit * (1 + 1e-6), "%s[%zu] = %g beyond %g", want[i].name, e,
                  buf[e], limit);
            sum += buf[e];
            sq += (double)buf[e] * buf[e];
        }
        CHECK(mismatch == 0, "%s: %d values differ from the documented Glorot draw",
              want[i].name, mismatch);
        double n = (double)counts[i], var = sq / n, mean = sum / n;
        /* uniform(-l, l): mean 0, variance l^2/3 */
        CHECK(fabs(mean) < 4 * limit / sqrt(3 * n), "%s: mean %g", want[i].name, mean);
        CHECK(fabs(var / (limit * limit / 3) - 1) < 0.25, "%s: variance %g, want %g",
              want[i].name, var, limit * limit / 3);
    }

    /* ---- the model fingerprint is the hash of the concatenation -------- */
    {
        static unsigned char bytes[4 * 40000];
        unsigned char *b = bytes;
        for (int i = 0; i < 8; i++) {
            detrun_model_param_get(m, i, buf, counts[i]);
            size_t len = strlen(want[i].name);
            put32(&b, (uint32_t)len);
            memcpy(b, want[i].name, len);
            b += len;
            put32(&b, (uint32_t)want[i].nd);
            for (int d = 0; d < want[i].nd; d++)
                put32(&b, (uint32_t)want[i].dims[d]);
            for (size_t e = 0; e < counts[i]; e++) {
                uint32_t u;
                memcpy(&u, &buf[e], 4);
                put32(&b, u);
            }
        }
        XXH128_hash_t h = XXH3_128bits(bytes, (size_t)(b - bytes));
        char want_fp[33], fp[33];
        snprintf(want_fp, sizeof want_fp, "%016llx%016llx", (unsigned long long)h.high64,
                 (unsigned long long)h.low64);
        CHECK(detrun_model_fingerprint(m, fp) == DETRUN_OK, "fingerprint");
        CHECK(strcmp(fp, want_fp) == 0, "model fingerprint %s, independent %s", fp, want_fp);
        printf("reference network, seed 42: %s\n", fp);
        /* One parameter's fingerprint is the tensor fingerprint of its values. */
        char pf[33], tf[33];
        detrun_model_param_get(m, 6, buf, counts[6]);
        detrun_fingerprint_tensor("dense_2.weight", 2, want[6].dims, buf, tf);
        CHECK(detrun_model_param_fingerprint(m, 6, pf) == DETRUN_OK && strcmp(pf, tf) == 0,
              "param fingerprint %s vs %s", pf, tf);
        /* One flipped bit in one weight changes it; setting it back restores it. */
        detrun_model_param_get(m, 4, buf, counts[4]);
        uint32_t u;
        memcpy(&u, &buf[777], 4);
        u ^= 1;
        memcpy(&buf[777], &u, 4);
        CHECK(detrun_model_param_set(m, 4, buf, counts[4]) == DETRUN_OK, "set");
        char fp2[33];
        detrun_model_fingerprint(m, fp2);
        CHECK(strcmp(fp2, fp) != 0, "a flipped bit kept the fingerprint");
        u ^= 1;
        memcpy(&buf[777], &u, 4);
        detrun_model_param_set(m, 4, buf, counts[4]);
        detrun_model_fingerprint(m, fp2);
        CHECK(strcmp(fp2, fp) == 0, "restoring the bit did not restore the fingerprint");
        EXPECT_ERROR(detrun_model_param_set(m, 4, buf, 100), DETRUN_ERR_SHAPE,
                     "dense_1.weight has 25600 values, not 100");
        EXPECT_ERROR(detrun_model_param_get(m, 9, buf, 1), DETRUN_ERR_ARG, "no parameter 9");
    }
    /* Same seed, same bits; another seed or stream, other bits. */
    {
        char a[33], b[33], c[33], d[33];
        detrun_model_fingerprint(m, a);
        detrun_model *m2 = reference(), *m3 = reference(), *m4 = reference();
        detrun_model_compile(m2, &adam, 42, 0);
        detrun_model_compile(m3, &adam, 43, 0);
        detrun_model_compile(m4, &adam, 42, 1);
        detrun_model_fingerprint(m2, b);
        detrun_model_fingerprint(m3, c);
        detrun_model_fingerprint(m4, d);
        CHECK(strcmp(a, b) == 0, "same seed: %s vs %s", a, b);
        CHECK(strcmp(a, c) != 0, "seed 43 gave the seed-42 weights");
        CHECK(strcmp(a, d) != 0, "stream 1 gave the stream-0 weights");
        detrun_model_free(m2);
        detrun_model_free(m3);
        detrun_model_free(m4);
    }
    EXPECT_ERROR(detrun_model_add_dense(m, 3, DETRUN_ACT_NONE), DETRUN_ERR_ARG,
                 "dense_3: cannot add a layer to a model that is already compiled");
    EXPECT_ERROR(detrun_model_compile(m, &adam, 1, 0), DETRUN_ERR_ARG, "already compiled");
    detrun_model_free(m);

    /* ---- shape errors name the layer ------------------------------------ */
    detrun_model_new(rt, 1, 8, 8, &m);
    CHECK(detrun_model_add_conv2d(m, 4, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU) == DETRUN_OK,
          "8x8 -> 6x6");
    CHECK(detrun_model_add_maxpool(m, 2, 0) == DETRUN_OK, "6x6 -> 3x3 (stride = size)");
    EXPECT_ERROR(detrun_model_add_conv2d(m, 4, 5, 5, 1, DETRUN_PAD_VALID, DETRUN_ACT_NONE),
                 DETRUN_ERR_SHAPE, "conv2d_2: kernel 5x5 is larger than its 3x3 input");
    /* A refused layer takes no name: the next conv2d is still conv2d_2. */
    EXPECT_ERROR(detrun_model_add_conv2d(m, 0, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_NONE),
                 DETRUN_ERR_ARG, "conv2d_2: filters must be positive");
    EXPECT_ERROR(detrun_model_add_conv2d(m, 2, 3, 3, 0, DETRUN_PAD_VALID, DETRUN_ACT_NONE),
                 DETRUN_ERR_ARG, "conv2d_2: stride must be positive");
    EXPECT_ERROR(detrun_model_add_maxpool(m, 4, 4), DETRUN_ERR_SHAPE,
                 "maxpool_2: window 4x4 is larger than its 3x3 input");
    EXPECT_ERROR(detrun_model_add_dense(m, 10, DETRUN_ACT_RELU), DETRUN_ERR_SHAPE,
                 "dense_1: input is 4x3x3, not a vector: add a flatten layer before it");
    /* same padding keeps the size at stride 1 and gives ceil(n/s) at stride 2 */
    CHECK(detrun_model_add_conv2d(m, 5, 5, 5, 1, DETRUN_PAD_SAME, DETRUN_ACT_NONE) == DETRUN_OK,
          "same 5x5 on 3x3: %s", detrun_errmsg(rt));
    CHECK(detrun_model_add_conv2d(m, 6, 2, 2, 2, DETRUN_PAD_SAME, DETRUN_ACT_NONE) == DETRUN_OK,
          "same stride 2");
    CHECK(strcmp(detrun_model_layer_name(m, 2), "conv2d_2") == 0, "conv2d_2 after refusals");
    CHECK(strcmp(detrun_model_layer_name(m, 3), "conv2d_3") == 0, "conv2d_3");
    CHECK(detrun_model_add_flatten(m) == DETRUN_OK, "flatten");
    EXPECT_ERROR(detrun_model_add_dense(m, 0, DETRUN_ACT_RELU), DETRUN_ERR_ARG,
                 "dense_1: units must be positive");
    EXPECT_ERROR(detrun_model_add_dropout(m, 1.0f), DETRUN_ERR_ARG,
                 "dropout_1: rate 1 is not in [0, 1)");
    CHECK(detrun_model_add_dense(m, 7, DETRUN_ACT_SOFTMAX) == DETRUN_OK, "dense_1");
    CHECK(detrun_model_add_relu(m) == DETRUN_OK, "relu_1");
    CHECK(strcmp(detrun_model_layer_name(m, 6), "relu_1") == 0, "relu_1 named");
    CHECK(detrun_model_add_dense(m, 3, DETRUN_ACT_NONE) == DETRUN_OK, "dense_2");
    EXPECT_ERROR(detrun_model_compile(m, &adam, 0, 0), DETRUN_ERR_ARG,
                 "dense_1: softmax is only allowed as the activation of the last layer");
    detrun_model_free(m);

    /* conv output 6 filters of 2x2 (3x3 input, stride 2, same): 24 after flatten */
    detrun_model_new(rt, 1, 3, 3, &m);
    detrun_model_add_conv2d(m, 6, 2, 2, 2, DETRUN_PAD_SAME, DETRUN_ACT_NONE);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 2, DETRUN_ACT_NONE);
    detrun_optimizer bad = adam;
    bad.lr = -1;
    EXPECT_ERROR(detrun_model_compile(m, &bad, 0, 0), DETRUN_ERR_ARG, "learning rate -1");
    bad = adam;
    bad.beta2 = 1.0f;
    EXPECT_ERROR(detrun_model_compile(m, &bad, 0, 0), DETRUN_ERR_ARG, "beta2 1 is not in [0, 1)");
    CHECK(detrun_model_compile(m, &adam, 0, 0) == DETRUN_OK, "compile: %s", detrun_errmsg(rt));
    int dims[4];
    detrun_model_param_shape(m, 2, dims);
    CHECK(dims[0] == 24 && dims[1] == 2, "dense_1.weight is %dx%d, want 24x2", dims[0], dims[1]);
    detrun_model_free(m);

    /* a model whose last layer is not a vector */
    detrun_model_new(rt, 1, 6, 6, &m);
    detrun_model_add_conv2d(m, 3, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_NONE);
    EXPECT_ERROR(detrun_model_compile(m, &adam, 0, 0), DETRUN_ERR_SHAPE,
                 "conv2d_1: the last layer gives 3x4x4 outputs");
    detrun_model_free(m);
    detrun_model_new(rt, 1, 6, 6, &m);
    EXPECT_ERROR(detrun_model_compile(m, &adam, 0, 0), DETRUN_ERR_SHAPE, "no layers");
    detrun_model_free(m);
    EXPECT_ERROR(detrun_model_new(rt, 1, 0, 6, &m), DETRUN_ERR_SHAPE,
                 "input shape 1x0x6 must be positive");
    char fp[33];
    detrun_model_new(rt, 1, 6, 6, &m);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 4, DETRUN_ACT_NONE);
    EXPECT_ERROR(detrun_model_fingerprint(m, fp), DETRUN_ERR_ARG, "not compiled");
    detrun_model_free(m);

    detrun_close(rt);
    return test_report("test_model");
}
