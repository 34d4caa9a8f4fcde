/*
 * mathf.h - detrun's own expf and logf (docs/determinism.md, R3).
 *
 * libm's expf/logf are not correctly rounded and differ between glibc
 * versions and between the CPU and the GPU; these are built only from + - *,
 * explicit fmaf and integer bit operations, so every target computes the
 * same bits. Accuracy (measured by tests/core/test_mathf.c against double
 * exp/log): see docs/determinism.md. Header-only so CUDA kernels share it.
 */
#ifndef DETRUN_MATHF_H
#define DETRUN_MATHF_H

#include <math.h>     /* fmaf only: correctly rounded by IEEE 754 */
#include <stdint.h>
#include <string.h>

#include "philox.h"   /* DETRUN_HD */

DETRUN_HD uint32_t detrun_f2u(float f)
{
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

DETRUN_HD float detrun_u2f(uint32_t u)
{
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* 2^n for -126 <= n <= 127, built from its bits. */
DETRUN_HD float detrun_pow2i(int n)
{
    return detrun_u2f((uint32_t)(n + 127) << 23);
}

/*
 * exp(x): n = nearest integer to x / ln 2, r = x - n ln 2 (two-part ln 2,
 * fma, so r is nearly exact), exp(r) by a degree-7 polynomial on
 * |r| <= 0.35, then scaled by 2^n in two halves so that results in the
 * denormal range are rounded once.
 */
DETRUN_HD float detrun_expf(float x)
{
    if (x != x)
        return x + x;                       /* NaN */
    if (x > 88.7228394f)                    /* above log(FLT_MAX) */
        return detrun_u2f(0x7f800000u);
    if (x < -104.0f)                        /* below log(2^-150): rounds to 0 */
        return 0.0f;
    /* Round to nearest integer by adding 1.5 * 2^23 (|x/ln2| < 2^22). */
    const float shifter = 12582912.0f;
    float t = x * 1.44269502f + shifter;    /* log2(e) */
    float n = t - shifter;
    float r = fmaf(-n, 0.693145752f, x);    /* ln2_hi = 0x1.62e400p-1, n*ln2_hi exact */
    r = fmaf(-n, 1.42860677e-6f, r);        /* ln2_lo = 0x1.7f7d1cp-20 */
    float p = 1.98412701e-4f;               /* 1/7! */
    p = fmaf(p, r, 1.38888892e-3f);         /* 1/6! */
    p = fmaf(p, r, 8.33333377e-3f);         /* 1/5! */
    p = fmaf(p, r, 4.16666679e-2f);         /* 1/4! */
    p = fmaf(p, r, 1.66666672e-1f);         /* 1/3! */
    p = fmaf(p, r, 0.5f);
    p = p * (r * r);
    float y = fmaf(1.0f, r, p) + 1.0f;      /* (r + r^2 q(r)) + 1 */
    int ni = (int)n;
    int n1 = ni / 2, n2 = ni - n1;          /* each within [-75, 64] */
    return (y * detrun_pow2i(n1)) * detrun_pow2i(n2);
}

/*
 * log(x): x = 2^e m with m in [2/3, 4/3), f = m - 1 (exact), log1p(f) by
 * f + f^2 q(f) (q(0) = -1/2), then + e ln 2.
 */
DETRUN_HD float detrun_logf(float x)
{
    uint32_t u = detrun_f2u(x);
    if (x != x)
        return x + x;                       /* NaN */
    if (x == 0.0f)
        return -detrun_u2f(0x7f800000u);    /* -inf for +0 and -0 */
    if (u >> 31)
        return detrun_u2f(0x7fc00000u);     /* negative: NaN */
    if (u == 0x7f800000u)
        return x;                           /* +inf */
    int e = 0;
    if (u < 0x00800000u) {                  /* denormal: scale into the normal range */
        u = detrun_f2u(x * 8388608.0f);     /* 2^23, exact */
        e = -23;
    }
    /* Split so that m = mantissa in [2/3, 4/3): subtract the bits of 2/3. */
    uint32_t off = u - 0x3f2aaaabu;
    int k = (int32_t)off >> 23;
    e += k;
    float m = detrun_u2f(u - ((uint32_t)k << 23));
    float f = m - 1.0f;
    float s = f * f;
    /* q(f) = (log1p(f) - f) / f^2: Chebyshev interpolant on [-1/3, 1/3]. */
    float q = 1.161216497e-01f;
    q = fmaf(q, f, -1.272628903e-01f);
    q = fmaf(q, f, 1.085328758e-01f);
    q = fmaf(q, f, -1.222135946e-01f);
    q = fmaf(q, f, 1.429617852e-01f);
    q = fmaf(q, f, -1.667797416e-01f);
    q = fmaf(q, f, 1.999985278e-01f);
    q = fmaf(q, f, -2.499984205e-01f);
    q = fmaf(q, f, 3.333333433e-01f);
    q = fmaf(q, f, -0.5f);
    float r = fmaf(q, s, f);
    return fmaf((float)e, 0.693147182f, r);  /* ln 2 */
}

#endif
