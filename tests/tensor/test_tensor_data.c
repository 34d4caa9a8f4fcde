/* Data sets from tensors and models speaking tensors (docs/c-api.md,
 * "Tensors"): the bytes a data set holds, its checks, parameters as
 * tensors, set_param's shape check, predict's probabilities. */
#include <math.h>
#include <stdlib.h>

#include "tensor_test.h"

static void datasets(detrun_runtime *rt)
{
    int idims[4] = { 3, 1, 2, 2 };
    detrun_tensor *im = NULL, *lb = vec(rt, 3);
    detrun_tensor_new(rt, 4, idims, &im);
    float *x = detrun_tensor_data(im);
    for (int i = 0; i < 12; i++)
        x[i] = (float)i / 11.0f;
    detrun_tensor_data(lb)[1] = 2.0f;
    detrun_dataset *ds = NULL;
    CHECK(detrun_dataset_from_tensors(rt, im, lb, DETRUN_PIXELS_UNIT, &ds) == DETRUN_OK, "%s",
          detrun_errmsg(rt));
    int c, h, w;
    detrun_dataset_shape(ds, &c, &h, &w);
    CHECK(detrun_dataset_count(ds) == 3 && c == 1 && h == 2 && w == 2, "shape");
    CHECK(detrun_dataset_classes(ds) == 3, "classes %d", detrun_dataset_classes(ds));
    for (int i = 0; i < 12; i++)
        CHECK(detrun_dataset_images(ds)[i] == (uint8_t)(x[i] * 255.0f + 0.5f), "pixel %d", i);
    CHECK(detrun_dataset_images(ds)[11] == 255 && detrun_dataset_labels(ds)[1] == 2, "bytes");
    detrun_dataset_free(ds);

    x[5] = 1.5f;
    CHECK(detrun_dataset_from_tensors(rt, im, lb, DETRUN_PIXELS_UNIT, &ds) == DETRUN_ERR_ARG,
          "1.5 as a unit pixel");
    CHECK(strstr(detrun_errmsg(rt), "image element 5 is 1.5") != NULL, "%s", detrun_errmsg(rt));
    for (int i = 0; i < 12; i++)
        x[i] = (float)(i * 20);
    CHECK(detrun_dataset_from_tensors(rt, im, lb, DETRUN_PIXELS_BYTES, &ds) == DETRUN_OK, "%s",
          detrun_errmsg(rt));
    CHECK(detrun_dataset_images(ds)[11] == 220, "byte pixels");
    detrun_dataset_free(ds);
    detrun_tensor_data(lb)[0] = 0.5f;
    CHECK(detrun_dataset_from_tensors(rt, im, lb, DETRUN_PIXELS_BYTES, &ds) == DETRUN_ERR_ARG &&
          strstr(detrun_errmsg(rt), "label 0 is 0.5") != NULL, "%s", detrun_errmsg(rt));
    detrun_tensor *lb4 = vec(rt, 4);
    CHECK(detrun_dataset_from_tensors(rt, im, lb4, DETRUN_PIXELS_BYTES, &ds) == DETRUN_ERR_SHAPE,
          "4 labels for 3 images");
    detrun_tensor_free(lb4);
    detrun_tensor_data(lb)[0] = 0.0f;
    detrun_tensor_data(lb)[1] = 0.0f;
    CHECK(detrun_dataset_from_tensors(rt, im, lb, DETRUN_PIXELS_BYTES, &ds) == DETRUN_ERR_ARG &&
          strstr(detrun_errmsg(rt), "2 classes") != NULL, "one class: %s", detrun_errmsg(rt));
    detrun_tensor_free(im);
    detrun_tensor_free(lb);
}

static void models(detrun_runtime *rt)
{
    detrun_model *m = NULL;
    detrun_optimizer opt = DETRUN_ADAM_INIT;
    CHECK(detrun_model_new(rt, 1, 4, 4, &m) == DETRUN_OK, "model");
    detrun_tensor *t = NULL;
    CHECK(detrun_model_param_tensor(m, 0, &t) == DETRUN_ERR_ARG && t == NULL, "not compiled");
    detrun_model_add_conv2d(m, 2, 3, 3, 1, DETRUN_PAD_VALID, DETRUN_ACT_RELU);
    detrun_model_add_flatten(m);
    detrun_model_add_dense(m, 3, DETRUN_ACT_SOFTMAX);
    CHECK(detrun_model_compile(m, &opt, 5, 0) == DETRUN_OK, "%s", detrun_errmsg(rt));
    CHECK(detrun_model_param_tensor(m, 0, &t) == DETRUN_OK, "%s", detrun_errmsg(rt));
    int d[4];
    CHECK(detrun_tensor_shape(t, d) == 4 && d[0] == 2 && d[1] == 1 && d[2] == 3 && d[3] == 3,
          "conv2d_1.weight shape");
    char a[33], b[33];
    detrun_tensor_fingerprint(t, "conv2d_1.weight", a);
    detrun_model_param_fingerprint(m, 0, b);
    CHECK(strcmp(a, b) == 0, "param tensor fingerprint %s, parameter %s", a, b);
    /* Set a parameter; the wrong shape names it. */
    detrun_tensor_glorot(rt, t, 9, 0, 9, 18);
    CHECK(detrun_model_set_param_tensor(m, 0, t) == DETRUN_OK, "%s", detrun_errmsg(rt));
    detrun_model_param_fingerprint(m, 0, b);
    detrun_tensor_fingerprint(t, "conv2d_1.weight", a);
    CHECK(strcmp(a, b) == 0, "set_param");
    int flat[2] = { 2, 9 };
    detrun_tensor_reshape(rt, t, 2, flat);
    CHECK(detrun_model_set_param_tensor(m, 0, t) == DETRUN_ERR_SHAPE, "wrong shape");
    CHECK(strstr(detrun_errmsg(rt), "conv2d_1.weight has shape 2x1x3x3, the tensor has shape "
                                    "2x9") != NULL, "%s", detrun_errmsg(rt));
    CHECK(detrun_model_set_param_tensor(m, 7, t) == DETRUN_ERR_ARG, "no parameter 7");
    detrun_tensor_free(t);

    /* predict: probabilities, rows summing to about 1, softmax of the logits. */
    int xd[4] = { 5, 1, 4, 4 };
    detrun_tensor *x = NULL, *p = NULL;
    detrun_tensor_new(rt, 4, xd, &x);
    detrun_tensor_uniform(rt, x, 1, 0, 0.0f, 1.0f);
    CHECK(detrun_model_predict_tensor(m, x, &p) == DETRUN_OK, "%s", detrun_errmsg(rt));
    CHECK(detrun_tensor_shape(p, d) == 2 && d[0] == 5 && d[1] == 3, "probabilities shape");
    float logits[15];
    detrun_model_predict(m, detrun_tensor_data(x), 5, logits);
    for (int i = 0; i < 5; i++) {
        double s = 0, ls = 0;
        float mx = fmaxf(fmaxf(logits[3 * i], logits[3 * i + 1]), logits[3 * i + 2]);
        for (int j = 0; j < 3; j++) {
            s += detrun_tensor_data(p)[3 * i + j];
            ls += exp((double)logits[3 * i + j] - mx);
        }
        CHECK(fabs(s - 1.0) < 1e-6, "row %d sums to %.9f", i, s);
        for (int j = 0; j < 3; j++)
            CHECK(fabs(detrun_tensor_data(p)[3 * i + j] - exp((double)logits[3 * i + j] - mx) / ls)
                  < 1e-6, "softmax (%d, %d)", i, j);
    }
    detrun_tensor_free(p);
    detrun_tensor_reshape(rt, x, 4, (int[]){ 5, 16, 1, 1 });
    CHECK(detrun_model_predict_tensor(m, x, &p) == DETRUN_ERR_SHAPE && p == NULL, "shape");
    CHECK(strstr(detrun_errmsg(rt), "N x 1 x 4 x 4, not 5x16x1x1") != NULL, "%s",
          detrun_errmsg(rt));
    detrun_tensor_free(x);
    detrun_model_free(m);
}

int main(void)
{
    detrun_runtime *rt = open_rt(2);
    if (rt == NULL)
        return 1;
    datasets(rt);
    models(rt);
    detrun_close(rt);
    return test_report("test_tensor_data");
}
