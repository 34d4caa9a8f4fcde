/* Layers as data: detrun_model_add_layer builds the same model as the
 * fixed-arity functions, checks every option in C with the layer named, and
 * the random streams' 24-bit range is refused past its end everywhere the C
 * API takes a stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detrun.h"
#include "philox.h"
#include "../common.h"


static detrun_runtime *rt;

static void expect_error(detrun_status st, detrun_status want, const char *msg, int line)
{
    if (st != want) {
        failures++;
        printf("FAIL line %d: status %d, want %d (%s)\n", line, st, want, detrun_errmsg(rt));
    } else if (strstr(detrun_errmsg(rt), msg) == NULL) {
        failures++;
        printf("FAIL line %d: message \"%s\" lacks \"%s\"\n", line, detrun_errmsg(rt), msg);
    }
}
#define EXPECT_ERROR(call, want, msg) expect_error((call), (want), (msg), __LINE__)

#define NARGS(a) ((int)(sizeof a / sizeof a[0]))

/* The reference network through the generic entry, choices by name. */
static detrun_model *reference_generic(void)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, 28, 28, &m);
    const detrun_layer_arg conv[] = { { "filters", 8, NULL }, { "kh", 3, NULL },
                                      { "kw", 3, NULL }, { "activation", 0, "relu" } };
    const detrun_layer_arg pool[] = { { "size", 2, NULL } };
    const detrun_layer_arg hidden[] = { { "activation", 0, "relu" }, { "units", 128, NULL } };
    const detrun_layer_arg drop[] = { { "rate", 0.2f, NULL } };
    const detrun_layer_arg out[] = { { "units", 10, NULL }, { "activation", 0, "softmax" } };
    int ok = detrun_model_add_layer(m, "conv2d", conv, NARGS(conv)) == DETRUN_OK &&
             detrun_model_add_layer(m, "maxpool", pool, NARGS(pool)) == DETRUN_OK &&
             detrun_model_add_layer(m, "conv2d", conv, NARGS(conv)) == DETRUN_OK &&
             detrun_model_add_layer(m, "maxpool", NULL, 0) == DETRUN_OK &&
             detrun_model_add_layer(m, "flatten", NULL, 0) == DETRUN_OK &&
             detrun_model_add_layer(m, "dense", hidden, NARGS(hidden)) == DETRUN_OK &&
             detrun_model_add_layer(m, "dropout", drop, NARGS(drop)) == DETRUN_OK &&
             detrun_model_add_layer(m, "dense", out, NARGS(out)) == DETRUN_OK;
    CHECK(ok, "generic reference network: %s", detrun_errmsg(rt));
    return m;
}

static detrun_model *reference_fixed(void)
{
    return test_reference_network(rt, 128);
}

static void same_model_both_ways(void)
{
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    detrun_model *a = reference_fixed(), *b = reference_generic();
    CHECK(detrun_model_compile(a, &adam, 42, 3) == DETRUN_OK, "%s", detrun_errmsg(rt));
    CHECK(detrun_model_compile(b, &adam, 42, 3) == DETRUN_OK, "%s", detrun_errmsg(rt));
    char fa[33] = "", fb[33] = "";
    detrun_model_fingerprint(a, fa);
    detrun_model_fingerprint(b, fb);
    CHECK(strcmp(fa, fb) == 0, "generic and fixed-arity models differ: %s vs %s", fa, fb);
    for (int i = 0; i < 8; i++)
        CHECK(strcmp(detrun_model_layer_name(a, i), detrun_model_layer_name(b, i)) == 0,
              "layer %d: %s vs %s", i, detrun_model_layer_name(a, i),
              detrun_model_layer_name(b, i));
    detrun_model_free(a);
    detrun_model_free(b);
}

static void option_errors(void)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 2, 6, 6, &m);
    const detrun_layer_arg typo[] = { { "filtres", 4, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "conv2d", typo, 1), DETRUN_ERR_ARG,
                 "conv2d_1: conv2d takes no argument \"filtres\"");
    /* The layer an error is about, as data: the index it would have had. */
    const char *layer = NULL;
    CHECK(detrun_error_layer(rt, &layer) == 0 && layer != NULL && strcmp(layer, "conv2d_1") == 0,
          "the error's layer: %s", layer ? layer : "(none)");
    EXPECT_ERROR(detrun_model_add_layer(m, "conv", NULL, 0), DETRUN_ERR_ARG,
                 "unknown layer kind \"conv\" (known: ");
    CHECK(detrun_error_layer(rt, &layer) == -1 && layer == NULL,
          "an error about no layer names none: %s", layer ? layer : "(none)");
    EXPECT_ERROR(detrun_model_add_layer(m, NULL, NULL, 0), DETRUN_ERR_ARG, "unknown layer kind");
    EXPECT_ERROR(detrun_model_add_layer(m, "relu", NULL, 2), DETRUN_ERR_ARG, "relu_1: 2 arguments");
    EXPECT_ERROR(detrun_model_add_layer(m, "relu", NULL, -1), DETRUN_ERR_ARG, "relu_1");
    const detrun_layer_arg missing[] = { { "filters", 4, NULL }, { "kh", 3, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "conv2d", missing, 2), DETRUN_ERR_ARG,
                 "conv2d_1: kw is required");
    const detrun_layer_arg twice[] = { { "units", 4, NULL }, { "units", 5, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "dense", twice, 2), DETRUN_ERR_ARG,
                 "dense_1: argument \"units\" is given twice");
    const detrun_layer_arg frac[] = { { "filters", 2.5, NULL }, { "kh", 3, NULL },
                                      { "kw", 3, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "conv2d", frac, 3), DETRUN_ERR_ARG,
                 "conv2d_1: filters must be an integer (got 2.5)");
    const detrun_layer_arg huge[] = { { "size", 3e9, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "maxpool", huge, 1), DETRUN_ERR_ARG,
                 "maxpool_1: size 3e+09 is not in [1, 2.14748e+09]");
    const detrun_layer_arg negstride[] = { { "stride", -1, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "maxpool", negstride, 1), DETRUN_ERR_ARG,
                 "maxpool_1: stride -1 is not in [0, ");
    const detrun_layer_arg word[] = { { "units", 0, "many" } };
    EXPECT_ERROR(detrun_model_add_layer(m, "dense", word, 1), DETRUN_ERR_ARG,
                 "dense_1: units must be a number, not \"many\"");
    const detrun_layer_arg act[] = { { "units", 3, NULL }, { "activation", 0, "tanh" } };
    EXPECT_ERROR(detrun_model_add_layer(m, "dense", act, 2), DETRUN_ERR_ARG,
                 "dense_1: activation must be one of \"none\", \"relu\", \"softmax\", not \"tanh\"");
    const detrun_layer_arg pad[] = { { "filters", 1, NULL }, { "kh", 1, NULL },
                                     { "kw", 1, NULL }, { "padding", 2, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "conv2d", pad, 4), DETRUN_ERR_ARG,
                 "conv2d_1: unknown padding 2");
    /* 1 - 1e-12 rounds to the float 1: refused as the rate it would be. */
    const detrun_layer_arg rate[] = { { "rate", 1 - 1e-12, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "dropout", rate, 1), DETRUN_ERR_ARG,
                 "dropout_1: rate 1 is not in [0, 1)");
    const detrun_layer_arg norate[] = { { "rate", -0.0 - 1e-3, NULL } };
    EXPECT_ERROR(detrun_model_add_layer(m, "dropout", norate, 1), DETRUN_ERR_ARG, "dropout_1: rate");
    EXPECT_ERROR(detrun_model_add_layer(m, "dropout", NULL, 0), DETRUN_ERR_ARG,
                 "dropout_1: rate is required");
    /* None of the refused layers took a name. */
    const detrun_layer_arg same[] = { { "filters", 3, NULL }, { "kh", 3, NULL },
                                      { "kw", 3, NULL }, { "padding", 0, "same" } };
    CHECK(detrun_model_add_layer(m, "conv2d", same, 4) == DETRUN_OK, "%s", detrun_errmsg(rt));
    CHECK(strcmp(detrun_model_layer_name(m, 0), "conv2d_1") == 0, "conv2d_1 after refusals");
    detrun_model_free(m);
}

/* A small model compiled at a stream. */
static detrun_status compile_at(uint32_t stream, detrun_model **out)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, 28, 28, &m);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 10, DETRUN_ACT_SOFTMAX);
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    detrun_status st = detrun_model_compile(m, &adam, 7, stream);
    *out = m;
    return st;
}

static void stream_range(void)
{
    detrun_model *m = NULL;
    EXPECT_ERROR(compile_at(1u << 24, &m), DETRUN_ERR_ARG, "compile: stream 16777216 is out of range");
    detrun_model_free(m);
    EXPECT_ERROR(compile_at(UINT32_MAX, &m), DETRUN_ERR_ARG, "out of range");
    detrun_model_free(m);
    CHECK(compile_at(DETRUN_STREAM_MAX, &m) == DETRUN_OK, "the last stream: %s", detrun_errmsg(rt));

    /* fit: the stream keys shuffles and dropout. */
    detrun_dataset *ds = NULL;
    if (detrun_dataset_load_mnist(rt, getenv("DETRUN_TEST_DATA"), "t10k", &ds) != DETRUN_OK) {
        printf("FAIL loading Fashion-MNIST: %s\n", detrun_errmsg(rt));
        failures++;
    } else {
        detrun_dataset_limit(ds, 20);
        detrun_fit_options fo = DETRUN_FIT_OPTIONS_INIT;
        fo.stream = 1u << 24;
        EXPECT_ERROR(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL), DETRUN_ERR_ARG,
                     "fit: stream 16777216 is out of range");
        CHECK(detrun_model_step(m) == 0, "a refused fit trained");
        fo.stream = DETRUN_STREAM_MAX;
        fo.batch = 10;
        CHECK(detrun_model_fit(m, ds, NULL, 0, &fo, NULL, NULL) == DETRUN_OK, "%s",
              detrun_errmsg(rt));
        detrun_dataset_free(ds);
    }
    detrun_model_free(m);

    /* detrun_shuffle: purpose 8 bits, stream 24 bits; refused keys leave rows alone. */
    uint32_t rows[6] = { 0, 1, 2, 3, 4, 5 };
    CHECK(detrun_shuffle(rows, 6, 1, DETRUN_RNG_SHUFFLE, 1u << 24, 0) == DETRUN_ERR_ARG,
          "shuffle stream 2^24");
    CHECK(detrun_shuffle(rows, 6, 1, 256, 0, 0) == DETRUN_ERR_ARG, "shuffle purpose 256");
    CHECK(detrun_shuffle(NULL, 6, 1, DETRUN_RNG_SHUFFLE, 0, 0) == DETRUN_ERR_ARG, "NULL rows");
    for (uint32_t i = 0; i < 6; i++)
        CHECK(rows[i] == i, "a refused shuffle moved row %u", i);
    CHECK(detrun_shuffle(NULL, 1, 1, DETRUN_RNG_SHUFFLE, 0, 0) == DETRUN_OK, "one row: nothing");
    CHECK(detrun_shuffle(rows, 6, 1, DETRUN_RNG_SHUFFLE, DETRUN_STREAM_MAX, 0) == DETRUN_OK,
          "the last stream");
    uint32_t perm[4];
    size_t bounds[3];
    CHECK(detrun_kfold(NULL, 4, 2, 0, perm, bounds) == DETRUN_ERR_ARG, "kfold without runtime");
}

int main(void)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 2;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    same_model_both_ways();
    option_errors();
    stream_range();
    detrun_close(rt);
    return test_report("test_layers");
}
