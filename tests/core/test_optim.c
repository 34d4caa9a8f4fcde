/* The optimiser step over the parameter block: Adam's bias correction uses
 * the running products beta^t (docs/determinism.md, "Adam"), checked bit for
 * bit against a host reference written from that page; SGD with momentum. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

#include "../common.h"

enum { STEPS = 300 };

static detrun_model *tiny(detrun_runtime *rt, const detrun_optimizer *o)
{
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, 3, 3, &m);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 5, DETRUN_ACT_NONE);   /* 9x5 + 5 */
    if (detrun_model_compile(m, o, 1, 0) != DETRUN_OK)
        printf("FAIL compile: %s\n", detrun_errmsg(rt));
    return m;
}

/* A gradient for step t, element i: varied signs and magnitudes. */
static float grad_at(int t, size_t i)
{
    return (float)((int)((i * 7 + (size_t)t * 13) % 17) - 8) * 0.0625f + 0.001f * (float)t;
}

int main(void)
{
    detrun_options opt = DETRUN_OPTIONS_INIT;
    opt.threads = 2;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &opt) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        return 1;
    }
    detrun_backend *be = rt->backend;

    /* ---- Adam ---------------------------------------------------------- */
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    adam.lr = 0.01f;
    detrun_model *m = tiny(rt, &adam);
    size_t n = m->total;
    float p[64], mm[64] = { 0 }, vv[64] = { 0 }, g[64], got[64];
    CHECK(n <= 64, "block of %zu floats", n);
    be->ops->download(be, p, m->p, n * sizeof(float));
    float b1t = 1.0f, b2t = 1.0f;
    int running_differs_from_pow = 0;
    for (int t = 1; t <= STEPS; t++) {
        for (size_t i = 0; i < n; i++)
            g[i] = grad_at(t, i);
        be->ops->upload(be, m->g, g, n * sizeof(float));
        CHECK(detrun_model_optimizer_step(m) == DETRUN_OK, "step %d", t);
        /* The reference, as docs/determinism.md writes it. */
        b1t = b1t * adam.beta1;
        b2t = b2t * adam.beta2;
        float lr_t = (adam.lr * sqrtf(1.0f - b2t)) / (1.0f - b1t);
        for (size_t i = 0; i < n; i++) {
            mm[i] = adam.beta1 * mm[i] + (1.0f - adam.beta1) * g[i];
            vv[i] = adam.beta2 * vv[i] + (1.0f - adam.beta2) * (g[i] * g[i]);
            p[i] = p[i] - (lr_t * mm[i]) / (sqrtf(vv[i]) + adam.eps);
        }
        CHECK(memcmp(&m->beta1_t, &b1t, 4) == 0 && memcmp(&m->beta2_t, &b2t, 4) == 0,
              "step %d: beta^t %a %a, running products %a %a", t, m->beta1_t, m->beta2_t, b1t,
              b2t);
        /* beta2^t rounded once (as a double power) differs from the float
         * running product at some step: so the check above can tell them apart. */
        running_differs_from_pow |= b2t != (float)pow((double)adam.beta2, t);
    }
    CHECK(running_differs_from_pow, "the running product never differed from a rounded power");
    CHECK(detrun_model_step(m) == STEPS, "step counter %llu",
          (unsigned long long)detrun_model_step(m));
    be->ops->download(be, got, m->p, n * sizeof(float));
    CHECK(memcmp(got, p, n * sizeof(float)) == 0, "Adam parameters differ from the reference");
    be->ops->download(be, got, m->m, n * sizeof(float));
    CHECK(memcmp(got, mm, n * sizeof(float)) == 0, "Adam m differs from the reference");
    be->ops->download(be, got, m->v, n * sizeof(float));
    CHECK(memcmp(got, vv, n * sizeof(float)) == 0, "Adam v differs from the reference");
    /* The first step moves each parameter by about lr (bias correction at
     * t = 1 makes m/sqrt(v) = sign(g); eps shaves off up to 0.3% for the
     * smallest gradients): a check of the correction's size. */
    {
        detrun_model *m1 = tiny(rt, &adam);
        float p0[64], p1[64];
        be->ops->download(be, p0, m1->p, n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            g[i] = grad_at(1, i);
        be->ops->upload(be, m1->g, g, n * sizeof(float));
        detrun_model_optimizer_step(m1);
        be->ops->download(be, p1, m1->p, n * sizeof(float));
        for (int i = 0; i < 45; i++)   /* the weight view; the bias view starts at 48 */
            CHECK(fabsf((p0[i] - p1[i]) - (g[i] > 0 ? adam.lr : -adam.lr)) < 1e-4f,
                  "first Adam step of element %d moved %g, gradient %g", i, p0[i] - p1[i], g[i]);
        detrun_model_free(m1);
    }
    detrun_model_free(m);

    /* ---- SGD with momentum --------------------------------------------- */
    detrun_optimizer sgd = DETRUN_SGD_INIT;
    sgd.momentum = 0.9f;
    m = tiny(rt, &sgd);
    CHECK(m->v == NULL, "SGD allocated a second moment block");
    be->ops->download(be, p, m->p, n * sizeof(float));
    memset(vv, 0, sizeof vv);
    for (int t = 1; t <= 50; t++) {
        for (size_t i = 0; i < n; i++)
            g[i] = grad_at(t, i);
        be->ops->upload(be, m->g, g, n * sizeof(float));
        detrun_model_optimizer_step(m);
        for (size_t i = 0; i < n; i++) {
            vv[i] = sgd.momentum * vv[i] - sgd.lr * g[i];
            p[i] = p[i] + vv[i];
        }
    }
    be->ops->download(be, got, m->p, n * sizeof(float));
    CHECK(memcmp(got, p, n * sizeof(float)) == 0, "SGD parameters differ from the reference");
    detrun_model_free(m);

    detrun_close(rt);
    return test_report("test_optim");
}
