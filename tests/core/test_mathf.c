/* detrun_expf / detrun_logf against double-precision exp / log (docs/determinism.md, R3). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mathf.h"

#include "../common.h"

static float bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Error of y against the exact value ref, in units of the last place of the
 * float nearest to ref (denormal spacing 2^-149 below the normal range). */
static double ulp_err(float y, double ref)
{
    if (isinf(ref) && isinf(y) && (ref > 0) == (y > 0))
        return 0.0;
    double a = fabs(ref);
    int e;
    frexp(a, &e);                     /* a = f * 2^e, f in [0.5, 1) */
    double ulp = ldexp(1.0, e - 24);
    if (ulp < 0x1p-149)
        ulp = 0x1p-149;
    if (a > 0x1.fffffep127) /* beyond FLT_MAX: the float answer is inf */
        return isinf(y) ? 0.0 : 1e9;
    return fabs((double)y - ref) / ulp;
}

int main(void)
{
    /* exp over its whole finite-result domain, every 7th float bit pattern. */
    double max_exp = 0; float worst_exp = 0;
    long n_exp = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 61) {
        float x = bits((uint32_t)u);
        if (!(x >= -104.0f && x <= 88.8f))
            continue;
        double err = ulp_err(detrun_expf(x), exp((double)x));
        n_exp++;
        if (err > max_exp) { max_exp = err; worst_exp = x; }
    }
    printf("expf: %ld inputs, max error %.3f ulp at %a\n", n_exp, max_exp, worst_exp);
    CHECK(max_exp <= 2.0, "expf max error %.3f ulp > 2 at %a", max_exp, worst_exp);

    /* log over every positive finite float, every 7th bit pattern, plus all
     * floats in [0.5, 2] where cancellation near 1 is hardest. */
    double max_log = 0; float worst_log = 0;
    long n_log = 0;
    for (uint32_t u = 1; u < 0x7f800000u; u += 61) {
        float x = bits(u);
        double err = ulp_err(detrun_logf(x), log((double)x));
        n_log++;
        if (err > max_log) { max_log = err; worst_log = x; }
    }
    for (uint32_t u = 0x3f000000u; u <= 0x40000000u; u++) {
        float x = bits(u);
        double err = ulp_err(detrun_logf(x), log((double)x));
        n_log++;
        if (err > max_log) { max_log = err; worst_log = x; }
    }
    printf("logf: %ld inputs, max error %.3f ulp at %a\n", n_log, max_log, worst_log);
    CHECK(max_log <= 2.0, "logf max error %.3f ulp > 2 at %a", max_log, worst_log);

    /* Exact and special values. */
    CHECK(detrun_expf(0.0f) == 1.0f, "exp(0) = %a", detrun_expf(0.0f));
    CHECK(detrun_expf(-0.0f) == 1.0f, "exp(-0) = %a", detrun_expf(-0.0f));
    CHECK(isinf(detrun_expf(89.0f)) && detrun_expf(89.0f) > 0, "exp(89) = %a", detrun_expf(89.0f));
    CHECK(isinf(detrun_expf(INFINITY)), "exp(inf)");
    CHECK(detrun_expf(-INFINITY) == 0.0f, "exp(-inf) = %a", detrun_expf(-INFINITY));
    CHECK(detrun_expf(-200.0f) == 0.0f, "exp(-200) = %a", detrun_expf(-200.0f));
    CHECK(isnan(detrun_expf(NAN)), "exp(nan)");
    float d = detrun_expf(-100.0f);   /* 3.72e-44: a denormal */
    CHECK(d > 0.0f && d < 0x1p-126f, "exp(-100) = %a is not a denormal", d);
    CHECK(ulp_err(d, exp(-100.0)) <= 1.0, "exp(-100) = %a", d);
    CHECK(ulp_err(detrun_expf(88.72f), exp((double)88.72f)) <= 2.0, "exp(88.72)");
    CHECK(detrun_logf(1.0f) == 0.0f, "log(1) = %a", detrun_logf(1.0f));
    CHECK(isinf(detrun_logf(0.0f)) && detrun_logf(0.0f) < 0, "log(0) = %a", detrun_logf(0.0f));
    CHECK(isinf(detrun_logf(-0.0f)) && detrun_logf(-0.0f) < 0, "log(-0)");
    CHECK(isnan(detrun_logf(-1.0f)), "log(-1) = %a", detrun_logf(-1.0f));
    CHECK(isnan(detrun_logf(-INFINITY)), "log(-inf)");
    CHECK(isnan(detrun_logf(NAN)), "log(nan)");
    CHECK(isinf(detrun_logf(INFINITY)) && detrun_logf(INFINITY) > 0, "log(inf)");
    CHECK(ulp_err(detrun_logf(0x1p-149f), log(0x1p-149)) <= 1.0, "log(min denormal) = %a",
          detrun_logf(0x1p-149f));
    CHECK(ulp_err(detrun_logf(0x1.fffffep127f), log(0x1.fffffep127)) <= 1.0, "log(FLT_MAX)");

    return test_report("test_mathf");
}
