/* The tensor C API (docs/c-api.md, "Tensors"): create, shape, data, free,
 * reshape, clone, arithmetic, and the written orders of sum, mean and
 * matmul (docs/determinism.md, "Tensors") against a transcription, against
 * double precision, against dense's forward kernel, at 1 to 4 threads. */
#include <math.h>
#include <stdlib.h>

#include "tensor_test.h"

static void basics(detrun_runtime *rt)
{
    detrun_tensor *t = NULL;
    int dims[4] = { 2, 3, 4, 5 }, got[4] = { 0 };
    CHECK(detrun_tensor_new(rt, 4, dims, &t) == DETRUN_OK, "new: %s", detrun_errmsg(rt));
    CHECK(detrun_tensor_shape(t, got) == 4 && memcmp(got, dims, sizeof dims) == 0, "shape");
    CHECK(detrun_tensor_count(t) == 120, "count");
    float *d = detrun_tensor_data(t);
    for (int i = 0; i < 120; i++)
        CHECK(fbits(d[i]) == 0, "new tensors are +0");
    for (int i = 0; i < 120; i++)
        d[i] = (float)i;
    int flat[2] = { 12, 10 };
    CHECK(detrun_tensor_reshape(rt, t, 2, flat) == DETRUN_OK, "reshape");
    CHECK(detrun_tensor_shape(t, got) == 2 && got[0] == 12 && got[1] == 10, "reshaped");
    int wrong[2] = { 7, 7 };
    CHECK(detrun_tensor_reshape(rt, t, 2, wrong) == DETRUN_ERR_SHAPE, "reshape 49");
    CHECK(strstr(detrun_errmsg(rt), "12x10 (120 elements) cannot become 7x7") != NULL, "%s",
          detrun_errmsg(rt));
    detrun_tensor *c = NULL;
    CHECK(detrun_tensor_clone(rt, t, &c) == DETRUN_OK, "clone");
    CHECK(detrun_tensor_data(c) != d && memcmp(detrun_tensor_data(c), d, 480) == 0, "a copy");
    detrun_tensor_fill(c, 2.5f);
    CHECK(detrun_tensor_data(c)[119] == 2.5f && d[119] == 119.0f, "fill the copy only");
    detrun_tensor_free(c);
    detrun_tensor_free(t);
    detrun_tensor_free(NULL);

    /* Shapes are checked in C. */
    int zero[2] = { 3, 0 }, big[4] = { 65536, 65536, 1, 1 }, five[5] = { 1, 1, 1, 1, 1 };
    t = (detrun_tensor *)&t;
    CHECK(detrun_tensor_new(rt, 2, zero, &t) == DETRUN_ERR_SHAPE && t == NULL, "dim 0");
    CHECK(strstr(detrun_errmsg(rt), "dimension 2 is 0") != NULL, "%s", detrun_errmsg(rt));
    CHECK(detrun_tensor_new(rt, 4, big, &t) == DETRUN_ERR_SHAPE, "2^32 elements");
    CHECK(detrun_tensor_new(rt, 5, five, &t) == DETRUN_ERR_SHAPE, "5 dims");
    CHECK(detrun_tensor_new(rt, 0, five, &t) == DETRUN_ERR_SHAPE, "0 dims");
    CHECK(detrun_tensor_new(rt, 1, NULL, &t) == DETRUN_ERR_ARG, "NULL dims");
    CHECK(detrun_tensor_new(rt, 1, five, NULL) == DETRUN_ERR_ARG, "NULL out");
    CHECK(detrun_tensor_shape(NULL, got) == 0 && detrun_tensor_count(NULL) == 0 &&
          detrun_tensor_data(NULL) == NULL, "NULL tensor queries");
}

static void arithmetic(detrun_runtime *rt)
{
    detrun_tensor *a = vec(rt, 3), *b = vec(rt, 3), *o = NULL;
    float av[3] = { 1.5f, -2.0f, 0.1f }, bv[3] = { 0.25f, 3.0f, 0.2f };
    memcpy(detrun_tensor_data(a), av, 12);
    memcpy(detrun_tensor_data(b), bv, 12);
    const detrun_tensor_op ops[3] = { DETRUN_TENSOR_ADD, DETRUN_TENSOR_SUB, DETRUN_TENSOR_MUL };
    for (int k = 0; k < 3; k++) {
        CHECK(detrun_tensor_binary(rt, ops[k], a, b, &o) == DETRUN_OK, "binary");
        for (int i = 0; i < 3; i++) {
            float want = k == 0 ? av[i] + bv[i] : k == 1 ? av[i] - bv[i] : av[i] * bv[i];
            CHECK(fbits(detrun_tensor_data(o)[i]) == fbits(want), "op %d element %d", k, i);
        }
        detrun_tensor_free(o);
        CHECK(detrun_tensor_scalar(rt, ops[k], a, 2.0f, 1, &o) == DETRUN_OK, "scalar");
        float want = k == 0 ? 2.0f + av[2] : k == 1 ? 2.0f - av[2] : 2.0f * av[2];
        CHECK(detrun_tensor_data(o)[2] == want, "scalar first, op %d", k);
        detrun_tensor_free(o);
    }
    detrun_tensor *c = vec(rt, 4);
    CHECK(detrun_tensor_binary(rt, DETRUN_TENSOR_ADD, a, c, &o) == DETRUN_ERR_SHAPE, "shapes");
    CHECK(strstr(detrun_errmsg(rt), "shapes 3 and 4 differ") != NULL, "%s", detrun_errmsg(rt));
    CHECK(detrun_tensor_binary(rt, (detrun_tensor_op)9, a, b, &o) == DETRUN_ERR_ARG, "bad op");
    detrun_tensor_free(a);
    detrun_tensor_free(b);
    detrun_tensor_free(c);
}

/* Sum and mean: sequential from +0 in storage order (bit for bit), close to
 * the double sum within the sequential bound n * eps * sum |x|. */
static void sums(detrun_runtime *rt)
{
    int n = 100003;
    detrun_tensor *t = vec(rt, n);
    detrun_tensor_normal(rt, t, 3, 0, 0.25f, 2.0f);
    const float *d = detrun_tensor_data(t);
    float seq = 0.0f;
    double ref = 0.0, abs_sum = 0.0;
    for (int i = 0; i < n; i++) {
        seq = seq + d[i];
        ref += d[i];
        abs_sum += fabs(d[i]);
    }
    float s = detrun_tensor_sum(t), m = detrun_tensor_mean(t);
    CHECK(fbits(s) == fbits(seq), "sum %a, the written order gives %a", s, seq);
    CHECK(fbits(m) == fbits(seq / (float)n), "mean is sum / (float)count");
    CHECK(fabs(s - ref) <= n * 0x1p-24 * abs_sum, "sum %g far from double %g", s, ref);
    printf("sum %.9g, double %.9g; mean %.9g\n", s, ref, m);
    detrun_tensor_free(t);
}

static detrun_tensor *matrix(detrun_runtime *rt, int r, int c, uint64_t seed)
{
    detrun_tensor *t = NULL;
    int dims[2] = { r, c };
    detrun_tensor_new(rt, 2, dims, &t);
    detrun_tensor_normal(rt, t, seed, 0, 0.0f, 1.0f);
    return t;
}

/* Logits of a flatten + dense model whose weight is b and bias +0: dense's
 * forward on the CPU backend, threaded and vectorised as it is in training. */
static detrun_tensor *dense_forward(detrun_runtime *rt, const detrun_tensor *a,
                                    const detrun_tensor *b)
{
    int ad[4], bd[4];
    detrun_tensor_shape(a, ad);
    detrun_tensor_shape(b, bd);
    detrun_model *m = NULL;
    detrun_optimizer opt = DETRUN_SGD_INIT;
    detrun_tensor *out = NULL, *x = NULL;
    int xd[4] = { ad[0], 1, 1, ad[1] };
    CHECK(detrun_model_new(rt, 1, 1, ad[1], &m) == DETRUN_OK &&
          detrun_model_add_flatten(m) == DETRUN_OK &&
          detrun_model_add_dense(m, bd[1], DETRUN_ACT_NONE) == DETRUN_OK &&
          detrun_model_compile(m, &opt, 0, 0) == DETRUN_OK, "model: %s", detrun_errmsg(rt));
    CHECK(detrun_model_set_param_tensor(m, 0, b) == DETRUN_OK, "set weight: %s",
          detrun_errmsg(rt));
    detrun_tensor *bias = vec(rt, bd[1]);
    CHECK(detrun_model_set_param_tensor(m, 1, bias) == DETRUN_OK, "set bias");
    detrun_tensor_clone(rt, a, &x);
    detrun_tensor_reshape(rt, x, 4, xd);
    detrun_tensor_new(rt, 2, (int[]){ ad[0], bd[1] }, &out);
    CHECK(detrun_model_predict(m, detrun_tensor_data(x), (size_t)ad[0], detrun_tensor_data(out))
          == DETRUN_OK, "predict: %s", detrun_errmsg(rt));
    detrun_tensor_free(bias);
    detrun_tensor_free(x);
    detrun_model_free(m);
    return out;
}

static void matmul(void)
{
    const int n = 7, k = 37, mm = 45;
    detrun_tensor *first = NULL;
    for (int th = 1; th <= 4; th++) {
        detrun_runtime *rt = open_rt(th);
        detrun_tensor *a = matrix(rt, n, k, 10), *b = matrix(rt, k, mm, 11), *o = NULL;
        CHECK(detrun_tensor_matmul(rt, a, b, &o) == DETRUN_OK, "matmul: %s", detrun_errmsg(rt));
        const float *A = detrun_tensor_data(a), *B = detrun_tensor_data(b);
        const float *O = detrun_tensor_data(o);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < mm; j++) {
                float acc = 0.0f;
                double ref = 0.0, bound = 0.0;
                for (int q = 0; q < k; q++) {
                    acc = fmaf(A[i * k + q], B[q * mm + j], acc);
                    ref += (double)A[i * k + q] * B[q * mm + j];
                    bound += fabs((double)A[i * k + q] * B[q * mm + j]);
                }
                CHECK(fbits(O[i * mm + j]) == fbits(acc), "(%d, %d): not the written order", i, j);
                CHECK(fabs(O[i * mm + j] - ref) <= k * 0x1p-24 * bound, "(%d, %d) vs double", i, j);
            }
        detrun_tensor *dense = dense_forward(rt, a, b);
        CHECK(dense != NULL && memcmp(detrun_tensor_data(dense), O, sizeof(float) * n * mm) == 0,
              "matmul differs from dense's forward at %d threads", th);
        detrun_tensor_free(dense);
        if (first == NULL)
            first = o;
        else {
            CHECK(memcmp(detrun_tensor_data(first), O, sizeof(float) * n * mm) == 0,
                  "matmul differs at %d threads", th);
            detrun_tensor_free(o);
        }
        detrun_tensor *bad = NULL;
        CHECK(detrun_tensor_matmul(rt, b, b, &bad) == DETRUN_ERR_SHAPE && bad == NULL, "k");
        CHECK(strstr(detrun_errmsg(rt), "37x45 x 37x45") != NULL, "%s", detrun_errmsg(rt));
        detrun_tensor_free(a);
        detrun_tensor_free(b);
        detrun_close(rt);
    }
    detrun_tensor_free(first);
}

static void fingerprints(detrun_runtime *rt)
{
    detrun_tensor *t = matrix(rt, 3, 4, 1);
    char a[33], b[33];
    int dims[2] = { 3, 4 };
    detrun_tensor_fingerprint(t, "w", a);
    detrun_fingerprint_tensor("w", 2, dims, detrun_tensor_data(t), b);
    CHECK(strcmp(a, b) == 0, "tensor fingerprint %s, the parameters' serialisation %s", a, b);
    detrun_tensor_free(t);
}

int main(void)
{
    detrun_runtime *rt = open_rt(1);
    if (rt == NULL)
        return 1;
    basics(rt);
    arithmetic(rt);
    sums(rt);
    fingerprints(rt);
    detrun_close(rt);
    matmul();
    return test_report("test_tensor");
}
