/*
 * test_conv_pooled.c - a convolution and the max-pool after it in one call,
 * against the two kernels each call replaces: the forward
 * (conv2d_pooled_forward) against conv2d_forward then maxpool_forward, with
 * and without the convolution's output kept; the weight gradients taken
 * straight from the pool's gradient (conv2d_pooled_wgrad) against the pool's
 * backward (with the ReLU mask when the pooled output is given) into the
 * full-size gradient, then conv2d_backward with no input gradient. Bit for
 * bit (the pool's choices byte for byte), on every kernel path
 * (plain C, AVX2, AVX-512) at 1 to 4 threads, on the reference network's
 * first and second convolutions, rows of one, two and three vector chunks,
 * channel counts that leave blocks of 1, 2 and 3 output channels, odd pool
 * inputs (the last row and column dropped), with and without the ReLU.
 * The calls must also decline (return 0, write nothing) where the backend
 * has no such path: no AVX-512, a pool that is not 2x2 at stride 2 or whose
 * rows are too short for its one-byte choices; and take it where it does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_backend.h"

#include "../common.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t next_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Values with ties, both zeros and a spread of magnitudes. */
static float draw(void)
{
    uint32_t r = next_u32() % 64;
    if (r < 8)
        return r % 2 ? 0.0f : -0.0f;
    return ((float)(int)(next_u32() % 2001) - 1000.0f) * (r < 40 ? 1e-3f : 0.37f);
}

/* One convolution (n, c, h x w -> o, 3x3, stride 1, valid) into a pool of
 * size x size at stride `stride`; relu: the pooled output is the mask. */
static void check_shape(int n, int c, int h, int w, int o, int size, int stride, int relu)
{
    detrun_conv_dims d = { n, c, h, w, o, h - 2, w - 2, 3, 3, 1, 0, 0 };
    detrun_pool_dims pd = { n, o, d.oh, d.ow, (d.oh - size) / stride + 1,
                            (d.ow - size) / stride + 1, size, stride };
    size_t ni = (size_t)n * c * h * w, nc = (size_t)n * o * d.oh * d.ow;
    size_t np = (size_t)n * o * pd.oh * pd.ow, nw = (size_t)o * c * 9;
    float *in = malloc(ni * 4), *wt = malloc(nw * 4), *conv = malloc(nc * 4);
    float *pooled = malloc(np * 4), *pdout = malloc(np * 4), *g = malloc(np * 4);
    float *full = malloc(nc * 4), *dw = malloc(nw * 4), *db = malloc((size_t)o * 4);
    float *rdw = malloc(nw * 4), *rdb = malloc((size_t)o * 4);
    int32_t *am = malloc(np * 4), *am2 = malloc(np * 4);
    float *conv2 = malloc(nc * 4), *pooled2 = malloc(np * 4);
    for (size_t i = 0; i < ni; i++)
        in[i] = draw();
    for (size_t i = 0; i < nw; i++)
        wt[i] = draw();
    for (size_t i = 0; i < np; i++)
        pdout[i] = draw();
    int best = detrun_cpu_simd_best();
    for (int simd = DETRUN_CPU_SIMD_SCALAR; simd <= DETRUN_CPU_SIMD_AVX512; simd++) {
        for (int threads = 1; threads <= 4; threads++) {
            detrun_backend *b = cpu_backend(threads, DETRUN_DETERMINISTIC, simd);
            int path = DETRUN_CPU(b)->simd;
            const char *name = detrun_cpu_simd_name(path);
            /* The forward that makes the pool's choices and output. */
            memset(am, 0xa5, np * 4);
            b->ops->conv2d_forward(b, conv, in, wt, wt, &d, relu);
            b->ops->maxpool_forward(b, pooled, am, conv, &pd);
            int want = path >= DETRUN_CPU_SIMD_AVX512 && best >= DETRUN_CPU_SIMD_AVX512 &&
                       size == 2 && stride == 2 && pd.ow >= 4;
            CHECK(b->ops->conv2d_pooled_forward != NULL,
                  "the CPU backend has conv2d_pooled_forward");
            for (int keep = 0; keep < 2; keep++) {
                memset(conv2, 0xa5, nc * 4);
                memset(pooled2, 0xa5, np * 4);
                memset(am2, 0xa5, np * 4);
                int done = b->ops->conv2d_pooled_forward(b, keep ? conv2 : NULL, pooled2, am2, in,
                                                         wt, wt, &d, relu, &pd);
                CHECK(done == want, "forward n%d c%d %dx%d o%d pool %d/%d keep %d: returned %d, "
                      "want %d (%s, %d threads)", n, c, h, w, o, size, stride, keep, done, want,
                      name, threads);
                if (done) {
                    CHECK(memcmp(pooled2, pooled, np * 4) == 0 && memcmp(am2, am, np * 4) == 0,
                          "forward n%d c%d %dx%d o%d relu %d keep %d: pooled output or choices "
                          "differ from the two kernels' (%s, %d threads)", n, c, h, w, o, relu,
                          keep, name, threads);
                    CHECK(!keep || memcmp(conv2, conv, nc * 4) == 0,
                          "forward n%d c%d %dx%d o%d: the kept output differs (%s, %d threads)",
                          n, c, h, w, o, name, threads);
                }
                int untouched = 1;
                for (size_t i = 0; i < (done && keep ? 0 : nc); i++)
                    untouched &= ((uint32_t *)conv2)[i] == 0xa5a5a5a5u;
                for (size_t i = 0; i < (done ? 0 : np); i++)
                    untouched &= ((uint32_t *)pooled2)[i] == 0xa5a5a5a5u &&
                                 (uint32_t)am2[i] == 0xa5a5a5a5u;
                CHECK(untouched, "forward n%d c%d %dx%d o%d keep %d: wrote what it should not "
                      "(%s, %d threads)", n, c, h, w, o, keep, name, threads);
            }
            /* The two kernels. */
            if (relu) {
                b->ops->relu_backward(b, g, pdout, pooled, np);
                b->ops->maxpool_backward(b, full, g, am, &pd);
            } else {
                b->ops->maxpool_backward(b, full, pdout, am, &pd);
            }
            b->ops->conv2d_backward(b, NULL, rdw, rdb, full, in, wt, &d);
            /* The one call. */
            memset(dw, 0xa5, nw * 4);
            memset(db, 0xa5, (size_t)o * 4);
            CHECK(b->ops->conv2d_pooled_wgrad != NULL, "the CPU backend has conv2d_pooled_wgrad");
            int done = b->ops->conv2d_pooled_wgrad(b, dw, db, pdout, relu ? pooled : NULL, am, in,
                                                   &d, &pd);
            CHECK(done == want,
                  "n%d c%d %dx%d o%d pool %d/%d: returned %d, want %d (%s, %d threads)", n, c, h,
                  w, o, size, stride, done, want, name, threads);
            if (done) {
                CHECK(memcmp(dw, rdw, nw * 4) == 0 && memcmp(db, rdb, (size_t)o * 4) == 0,
                      "n%d c%d %dx%d o%d relu %d: weight gradients differ from the two "
                      "kernels' (%s, %d threads)", n, c, h, w, o, relu, name, threads);
            } else {
                int untouched = 1;
                for (size_t i = 0; i < nw; i++)
                    untouched &= ((uint32_t *)dw)[i] == 0xa5a5a5a5u;
                for (int i = 0; i < o; i++)
                    untouched &= ((uint32_t *)db)[i] == 0xa5a5a5a5u;
                CHECK(untouched, "n%d c%d %dx%d o%d: declined but wrote (%s, %d threads)", n, c,
                      h, w, o, name, threads);
            }
            b->ops->destroy(b);
        }
    }
    free(in); free(wt); free(conv); free(pooled); free(pdout); free(g);
    free(full); free(dw); free(db); free(rdw); free(rdb); free(am); free(am2); free(conv2);
    free(pooled2);
}

int main(void)
{
    check_shape(7, 1, 28, 28, 8, 2, 2, 1);    /* the reference network's first conv */
    check_shape(5, 8, 13, 13, 8, 2, 2, 1);    /* its second: 11 -> 5, a row and column dropped */
    check_shape(3, 1, 28, 28, 8, 2, 2, 0);    /* no ReLU: no mask */
    check_shape(4, 3, 14, 14, 5, 2, 2, 1);    /* one chunk a row; blocks of 2, 3 and 2 */
    check_shape(3, 2, 21, 21, 7, 2, 2, 1);    /* 19 columns: a full chunk and 3 */
    check_shape(2, 2, 40, 42, 4, 2, 2, 1);    /* 40 columns: three chunks */
    check_shape(2, 2, 11, 12, 1, 2, 2, 1);    /* one output channel */
    check_shape(2, 1, 10, 10, 3, 3, 2, 1);    /* a 3x3 pool: declined */
    check_shape(2, 1, 8, 8, 2, 2, 2, 1);      /* pool rows of 3: flat indices, declined */
    check_shape(1, 1, 70, 70, 2, 2, 2, 1);    /* 68 x 68 outputs: planes past L1 */
    return test_report("test_conv_pooled");
}
