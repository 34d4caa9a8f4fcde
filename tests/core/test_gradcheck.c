/* Gradient check of a whole small model: the backend's backward pass (float)
 * against central finite differences of an independent double-precision
 * forward pass, for every parameter. The model covers conv2d with same
 * padding at strides 1 and 2, maxpool, flatten, dense, a separate ReLU,
 * dropout (with the training mask) and the softmax cross-entropy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "philox.h"

#include "../common.h"

enum { N = 5, H = 7, C1 = 3, C2 = 4, D1 = 6, K = 3 };
/* Shapes, worked out by hand: conv2d_1 3x3 same on 7x7 pads 1 on each side
 * -> 3x7x7; maxpool 2/2 -> 3x3x3; conv2d_2 2x2 stride 2 same on 3x3 gives
 * ceil(3/2) = 2, padding (2-1)*2+2-3 = 1 at the bottom/right -> 4x2x2;
 * flatten 16; dense 6; relu; dropout; dense 3. */
static double W1[C1][1][3][3], B1[C1], W2[C2][C1][2][2], B2[C2], W3[16][D1], B3[D1],
    W4[D1][K], B4[K];
static double *const P[8] = { &W1[0][0][0][0], B1, &W2[0][0][0][0], B2, &W3[0][0], B3,
                              &W4[0][0], B4 };
static const size_t PN[8] = { 27, 3, 48, 4, 96, 6, 18, 3 };
static double X[N][H][H];
static int Y[N];
static float MASK[N][D1];

static double loss_ref(void)
{
    double total = 0;
    for (int n = 0; n < N; n++) {
        double a1[C1][H][H], p1[C1][3][3], a2[C2][2][2], f[16], d1[D1], z[K];
        for (int o = 0; o < C1; o++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < H; x++) {
                    double s = B1[o];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = y + ky - 1, ix = x + kx - 1;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < H)
                                s += X[n][iy][ix] * W1[o][0][ky][kx];
                        }
                    a1[o][y][x] = s > 0 ? s : 0;
                }
        for (int c = 0; c < C1; c++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) {
                    double m = a1[c][2 * y][2 * x];
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++)
                            if (a1[c][2 * y + dy][2 * x + dx] > m)
                                m = a1[c][2 * y + dy][2 * x + dx];
                    p1[c][y][x] = m;
                }
        for (int o = 0; o < C2; o++)
            for (int y = 0; y < 2; y++)
                for (int x = 0; x < 2; x++) {
                    double s = B2[o];
                    for (int c = 0; c < C1; c++)
                        for (int ky = 0; ky < 2; ky++)
                            for (int kx = 0; kx < 2; kx++) {
                                int iy = 2 * y + ky, ix = 2 * x + kx;
                                if (iy < 3 && ix < 3)
                                    s += p1[c][iy][ix] * W2[o][c][ky][kx];
                            }
                    a2[o][y][x] = s > 0 ? s : 0;
                }
        for (int o = 0; o < C2; o++)
            for (int i = 0; i < 4; i++)
                f[o * 4 + i] = a2[o][i / 2][i % 2];
        for (int j = 0; j < D1; j++) {
            double s = B3[j];
            for (int k = 0; k < 16; k++)
                s += f[k] * W3[k][j];
            d1[j] = (s > 0 ? s : 0) * (double)MASK[n][j];
        }
        double zmax = -1e300;
        for (int j = 0; j < K; j++) {
            double s = B4[j];
            for (int k = 0; k < D1; k++)
                s += d1[k] * W4[k][j];
            z[j] = s;
            if (s > zmax)
                zmax = s;
        }
        double se = 0;
        for (int j = 0; j < K; j++)
            se += exp(z[j] - zmax);
        total += log(se) + zmax - z[Y[n]];
    }
    return total / N;
}

static int run(int threads, float *grad_out, size_t total_out, double *loss_out)
{
    detrun_options o = DETRUN_OPTIONS_INIT;
    o.threads = threads;
    detrun_runtime *rt = NULL;
    if (detrun_open(&rt, &o) != DETRUN_OK) {
        printf("FAIL open: %s\n", detrun_errmsg(rt));
        detrun_close(rt);
        return 0;
    }
    detrun_model *m = NULL;
    detrun_model_new(rt, 1, H, H, &m);
    int ok = detrun_model_add_conv2d(m, C1, 3, 3, 1, DETRUN_PAD_SAME, DETRUN_ACT_RELU) == 0 &&
             detrun_model_add_maxpool(m, 2, 2) == 0 &&
             detrun_model_add_conv2d(m, C2, 2, 2, 2, DETRUN_PAD_SAME, DETRUN_ACT_RELU) == 0 &&
             detrun_model_add_flatten(m) == 0 &&
             detrun_model_add_dense(m, D1, DETRUN_ACT_NONE) == 0 &&
             detrun_model_add_relu(m) == 0 && detrun_model_add_dropout(m, 0.3f) == 0 &&
             detrun_model_add_dense(m, K, DETRUN_ACT_SOFTMAX) == 0;
    detrun_optimizer sgd = DETRUN_SGD_INIT;
    ok = ok && detrun_model_compile(m, &sgd, 7, 0) == DETRUN_OK;
    CHECK(ok, "building the model: %s", detrun_errmsg(rt));
    if (!ok)
        goto out;
    /* Random biases too, so their gradients are checked off zero. */
    for (int i = 0; i < 8; i++) {
        float tmp[96];
        if (i % 2 == 1) {
            for (size_t e = 0; e < PN[i]; e++)
                tmp[e] = 0.2f * (2.0f * detrun_u01(detrun_philox_word(99, 5, 0, i, 0, e)) - 1.0f);
            detrun_model_param_set(m, i, tmp, PN[i]);
        }
        detrun_model_param_get(m, i, tmp, PN[i]);
        for (size_t e = 0; e < PN[i]; e++)
            P[i][e] = tmp[e];
    }
    detrun_model_reserve(m, N);
    float xf[N * H * H];
    int32_t yf[N];
    for (int n = 0; n < N; n++) {
        for (int i = 0; i < H * H; i++) {
            uint32_t byte = detrun_below(detrun_philox_word(3, 5, 0, 0, 0, n * 49 + i), 256);
            xf[n * H * H + i] = (float)byte / 255.0f;
            X[n][i / H][i % H] = xf[n * H * H + i];
        }
        yf[n] = Y[n] = n % K;
    }
    detrun_backend *be = rt->backend;
    be->ops->upload(be, m->x, xf, sizeof xf);
    be->ops->upload(be, m->y, yf, sizeof yf);
    detrun_rng_addr addr = { 11, 2, 0, 5 };
    const float *logits = detrun_model_forward(m, N, 1, &addr);
    float *loss = be->ops->alloc(be, N * sizeof(float)), *corr = be->ops->alloc(be, N * sizeof(float));
    be->ops->softmax_xent(be, m->grad[0], loss, corr, logits, m->y, N, K);
    detrun_model_backward(m, N, m->grad[0]);
    float hl[N];
    be->ops->download(be, hl, loss, sizeof hl);
    be->ops->download(be, MASK, m->layers[6].aux, sizeof MASK);
    be->ops->download(be, grad_out, m->g, total_out * sizeof(float));
    double s = 0;
    for (int n = 0; n < N; n++)
        s += hl[n];
    *loss_out = s / N;
    /* Views: where each parameter sits in the block. */
    float *g = malloc(m->total * sizeof(float));
    be->ops->download(be, g, m->g, m->total * sizeof(float));
    size_t at = 0;
    for (int i = 0; i < 8; i++)
        for (size_t e = 0; e < PN[i]; e++)
            grad_out[at++] = g[m->params[i].offset + e];
    free(g);
    be->ops->free(be, loss);
    be->ops->free(be, corr);
out:
    detrun_model_free(m);
    detrun_close(rt);
    return ok;
}

int main(void)
{
    enum { TOTAL = 27 + 3 + 48 + 4 + 96 + 6 + 18 + 3 };
    static float grad[TOTAL], grad_t[TOTAL];
    double loss_f = 0;
    if (!run(1, grad, TOTAL, &loss_f))
        return 1;
    int dropped = 0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < D1; j++)
            dropped += MASK[n][j] == 0.0f;
    CHECK(dropped > 0 && dropped < N * D1, "dropout dropped %d of %d", dropped, N * D1);

    double l0 = loss_ref();
    printf("loss: float model %.9f, double reference %.9f\n", loss_f, l0);
    CHECK(fabs(loss_f - l0) <= 1e-5 * fabs(l0), "forward loss %.9f vs reference %.9f", loss_f, l0);

    double gmax = 0;
    for (int i = 0; i < TOTAL; i++)
        if (fabs(grad[i]) > gmax)
            gmax = fabs(grad[i]);
    int at = 0, checked = 0, nonzero = 0;
    double worst = 0;
    for (int i = 0; i < 8; i++) {
        int tensor_nonzero = 0;
        for (size_t e = 0; e < PN[i]; e++, at++) {
            double keep = P[i][e], h = 1e-6;
            P[i][e] = keep + h;
            double lp = loss_ref();
            P[i][e] = keep - h;
            double lm = loss_ref();
            P[i][e] = keep;
            double fd = (lp - lm) / (2 * h);
            double err = fabs(fd - grad[at]) / (fabs(fd) + 1e-3 * gmax);
            if (err > worst)
                worst = err;
            CHECK(err < 1e-3, "param %d element %zu: backward %.8g, finite difference %.8g", i,
                  e, grad[at], fd);
            checked++;
            nonzero += fabs(fd) > 1e-3 * gmax;
            tensor_nonzero += fabs(fd) > 1e-3 * gmax;
        }
        CHECK(tensor_nonzero > 0, "parameter %d: no gradient is clearly non-zero", i);
    }
    printf("%d gradients checked (%d clearly non-zero), worst relative error %.2e\n", checked,
           nonzero, worst);
    CHECK(nonzero > checked / 3, "only %d of %d gradients are non-zero: the check is weak",
          nonzero, checked);

    /* The same gradients, bit for bit, at 2, 3 and 4 threads. */
    for (int t = 2; t <= 4; t++) {
        double lt;
        if (!run(t, grad_t, TOTAL, &lt))
            return 1;
        CHECK(memcmp(grad, grad_t, sizeof grad) == 0 && lt == loss_f,
              "%d threads: gradients differ from 1 thread", t);
    }

    return test_report("test_gradcheck");
}
