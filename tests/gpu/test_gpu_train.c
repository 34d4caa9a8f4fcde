/*
 * Training through the public API on the GPU: a few dozen steps of the
 * reference network (docs/determinism.md) on the CPU and on the CUDA backend.
 *   - portable kernels, deterministic: the CPU's fingerprint, bit for bit,
 *     and the same evaluation loss and accuracy;
 *   - cuDNN kernels, deterministic, three times: one fingerprint;
 *   - fast mode, three times per flavour: the number of distinct
 *     fingerprints is printed (not asserted: atomics may happen to agree).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detrun.h"
#include "../common.h"

#define ROWS 3000   /* 2400 training rows after the validation split: 24 steps an epoch */
#define EPOCHS 2


typedef struct outcome {
    char fp[33];
    double loss, acc;
} outcome;

static int train(const char *device, const char *kernels, detrun_mode mode, const char *data,
                 outcome *out, char *why, size_t whylen)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = 2;
    o.mode = mode;
    o.device = device;
    char options[64];
    snprintf(options, sizeof options, "kernels=%s", kernels);
    o.backend_options = options;
    detrun_runtime *rt = NULL;
    detrun_dataset *ds = NULL;
    detrun_model *m = NULL;
    detrun_status st = detrun_open(&rt, &o);
    if (st == DETRUN_OK)
        st = detrun_dataset_load_mnist(rt, data, "train", &ds);
    if (st == DETRUN_OK) {
        detrun_dataset_limit(ds, ROWS);
        m = test_reference_network(rt, 128);   /* Fashion-MNIST: 1x28x28 */
        st = m != NULL ? DETRUN_OK : DETRUN_ERR_ARG;
    }
    detrun_optimizer adam = DETRUN_ADAM_INIT;
    if (st == DETRUN_OK) st = detrun_model_compile(m, &adam, 7, 0);
    if (st == DETRUN_OK) {
        detrun_fit_options f = DETRUN_FIT_OPTIONS_INIT;
        f.epochs = EPOCHS;
        f.batch = 100;
        f.validation_split = 0.2;
        f.seed = 7;
        f.stream = 1;
        st = detrun_model_fit(m, ds, NULL, 0, &f, NULL, NULL);
    }
    if (st == DETRUN_OK)
        st = detrun_model_evaluate(m, ds, NULL, 0, 250, &out->loss, &out->acc);
    if (st == DETRUN_OK)
        st = detrun_model_fingerprint(m, out->fp);
    if (st != DETRUN_OK)
        snprintf(why, whylen, "%s", rt ? detrun_errmsg(rt) : "detrun_open failed");
    detrun_model_free(m);
    detrun_dataset_free(ds);
    detrun_close(rt);
    return st;
}

static int distinct(outcome *r, int n)
{
    int d = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= strcmp(r[i].fp, r[j].fp) == 0;
        d += !seen;
    }
    return d;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* a crash keeps the lines before it */
    /* DETRUN_DATA (the library's own variable) wins over the test default. */
    const char *data = getenv("DETRUN_DATA") ? NULL : getenv("DETRUN_TEST_DATA");
    char why[2048];
    outcome cpu, r[3];
    int st = train("cuda", "portable", DETRUN_DETERMINISTIC, data, &r[0], why, sizeof why);
    if (st == DETRUN_ERR_DEVICE || st == DETRUN_ERR_UNSUPPORTED) {
        printf("SKIP: %s\n", why);
        return 77;
    }
    CHECK(st == DETRUN_OK, "cuda portable: %s", why);
    st = train("cpu", "cudnn", DETRUN_DETERMINISTIC, data, &cpu, why, sizeof why);
    CHECK(st == DETRUN_OK, "cpu: %s", why);
    if (failures)
        return 1;
    printf("cpu                    %s  loss %.9f  accuracy %.6f\n", cpu.fp, cpu.loss, cpu.acc);
    printf("cuda portable det      %s  loss %.9f  accuracy %.6f\n", r[0].fp, r[0].loss, r[0].acc);
    CHECK(strcmp(cpu.fp, r[0].fp) == 0, "portable GPU kernels: fingerprint %s, CPU %s", r[0].fp, cpu.fp);
    CHECK(cpu.loss == r[0].loss && cpu.acc == r[0].acc, "portable GPU kernels: evaluation differs");

    for (int i = 0; i < 3; i++) {
        st = train("cuda", "cudnn", DETRUN_DETERMINISTIC, data, &r[i], why, sizeof why);
        CHECK(st == DETRUN_OK, "cuda cudnn deterministic: %s", why);
        if (st != DETRUN_OK)
            return 1;
        printf("cuda cudnn det #%d      %s  loss %.9f  accuracy %.6f\n", i, r[i].fp, r[i].loss, r[i].acc);
    }
    CHECK(distinct(r, 3) == 1, "cuDNN deterministic: %d distinct fingerprints in 3 runs", distinct(r, 3));
    /* Same maths in another order: close to the CPU's result, not equal. */
    CHECK(r[0].loss > cpu.loss * 0.95 && r[0].loss < cpu.loss * 1.05,
          "cuDNN loss %.6f far from the CPU's %.6f", r[0].loss, cpu.loss);

    const char *flav[2] = { "portable", "cudnn" };
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < 3; i++) {
            st = train("cuda", flav[f], DETRUN_FAST, data, &r[i], why, sizeof why);
            CHECK(st == DETRUN_OK, "cuda %s fast: %s", flav[f], why);
            if (st != DETRUN_OK)
                return 1;
            printf("cuda %-8s fast #%d   %s  loss %.9f  accuracy %.6f\n", flav[f], i, r[i].fp,
                   r[i].loss, r[i].acc);
        }
        printf("cuda %s fast: %d distinct fingerprint(s) in 3 runs\n", flav[f], distinct(r, 3));
        CHECK(r[0].loss > cpu.loss * 0.95 && r[0].loss < cpu.loss * 1.05,
              "%s fast loss %.6f far from the CPU's %.6f", flav[f], r[0].loss, cpu.loss);
    }
    return test_report("test_gpu_train");
}
