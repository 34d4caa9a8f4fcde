#!/usr/bin/env python3
"""An independent reference of detrun's seeded tensor draws.

Written from docs/determinism.md ("Randomness", "Tensors") and the Random123
description of Philox4x32-10, not from the C sources: Philox in Python
integers, float32 arithmetic emulated exactly (every + - * / and sqrt is
computed in double and rounded once to float32, which is exact for those
operations; fma and decimal constants are rounded from exact rationals), the
project's own log transcribed from its description.

  tensor_ref.py table          print the known-answer table of test_tensor_draw.c
  tensor_ref.py check DUMP     run DUMP (tensor_draw_dump) and compare every value

Needs only the standard library.
"""
import math
import struct
import subprocess
import sys
from fractions import Fraction

M32 = 0xFFFFFFFF
TENSOR = 6


def philox(ctr, key):
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        hi0, lo0 = p0 >> 32, p0 & M32
        hi1, lo1 = p1 >> 32, p1 & M32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return [c0, c1, c2, c3]


def f32(x):
    """Round a double to float32 (exact for results of one double operation)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def from_bits(u):
    return struct.unpack("<f", struct.pack("<I", u & M32))[0]


def round_exact(q):
    """Round an exact rational to the nearest float32, ties to even."""
    if q == 0:
        return 0.0
    sign = -1.0 if q < 0 else 1.0
    q = abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1
    e = max(e, -126)                       # subnormals share the last exponent
    scaled = q * Fraction(2) ** (23 - e)
    n, rem = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rem
    if twice > scaled.denominator or (twice == scaled.denominator and n % 2 == 1):
        n += 1
    return sign * math.ldexp(n, e - 23)    # n <= 2^24: exactly a float32


def fma(a, b, c):
    return round_exact(Fraction(a) * Fraction(b) + Fraction(c))


def const(text):
    return round_exact(Fraction(text))


LOG_Q = [const(t) for t in ("1.161216497e-01", "-1.272628903e-01", "1.085328758e-01",
                            "-1.222135946e-01", "1.429617852e-01", "-1.667797416e-01",
                            "1.999985278e-01", "-2.499984205e-01", "3.333333433e-01")]
LN2 = const("0.693147182")


def logf_dr(x):
    """detrun's log for positive normal x (the polar method's s in (0, 1))."""
    u = bits(x)
    e = 0
    if u < 0x00800000:
        u = bits(f32(x * 8388608.0))
        e = -23
    off = (u - 0x3F2AAAAB) & M32
    k = off >> 23
    if k >= 256:                           # arithmetic shift of a negative int32
        k -= 512
    e += k
    m = from_bits(u - (k << 23))
    f = f32(m - 1.0)
    s = f32(f * f)
    q = LOG_Q[0]
    for c in LOG_Q[1:]:
        q = fma(q, f, c)
    q = fma(q, f, const("-0.5"))
    r = fma(q, s, f)
    return fma(float(e), LN2, r)


def u01(word):
    return (word >> 8) * 2.0 ** -24


def key_of(seed):
    return [seed & M32, (seed >> 32) & M32]


def uniform(seed, stream, n, low=0.0, high=1.0):
    key = key_of(seed)
    span = f32(high - low)
    out = []
    for e in range(n):
        w = philox([e >> 2, 0, 0, (TENSOR << 24) | stream], key)[e & 3]
        out.append(f32(low + f32(span * u01(w))))
    return out


def polar(key, e, stream):
    a = 0
    while True:
        o = philox([a, e, 1, (TENSOR << 24) | stream], key)
        for half in range(2):
            x = f32(2.0 * u01(o[2 * half]) - 1.0)
            y = f32(2.0 * u01(o[2 * half + 1]) - 1.0)
            s = f32(f32(x * x) + f32(y * y))
            if 0.0 < s < 1.0:
                g = f32(math.sqrt(f32(f32(-2.0 * logf_dr(s)) / s)))
                return f32(x * g)
        a += 1


def normal(seed, stream, n, mean=0.0, std=1.0):
    key = key_of(seed)
    return [f32(mean + f32(std * polar(key, e, stream))) for e in range(n)]


def glorot(seed, stream, n, fan_in, fan_out):
    limit = f32(math.sqrt(f32(6.0 / float(fan_in + fan_out))))
    return [f32(f32(f32(2.0 * u) - 1.0) * limit) for u in uniform(seed, stream, n)]


# (kind, seed, stream, count): the draws the known-answer table pins.
CASES = [("uniform", 1, 0, 8), ("uniform", 0x123456789abcdef0, 77, 6),
         ("normal", 1, 0, 8), ("normal", 42, 3, 6), ("glorot", 7, 1, 6)]


def draw(kind, seed, stream, n):
    if kind == "uniform":
        return uniform(seed, stream, n)
    if kind == "normal":
        return normal(seed, stream, n)
    return glorot(seed, stream, n, 16, 3)


def table():
    for kind, seed, stream, n in CASES:
        vals = ", ".join("0x%08x" % bits(v) for v in draw(kind, seed, stream, n))
        print('    { "%s", 0x%xull, %d, %d, { %s } },' % (kind, seed, stream, n, vals))


def check(dump):
    """The dump prints lines `kind seed stream index hexbits`."""
    out = subprocess.run([dump], check=True, capture_output=True, text=True).stdout
    lines = [l.split() for l in out.splitlines() if l.strip()]
    want = {}
    bad = 0
    for kind, seed, stream, idx, hexbits in lines:
        k = (kind, int(seed), int(stream))
        want.setdefault(k, []).append((int(idx), int(hexbits, 16)))
    for (kind, seed, stream), vals in sorted(want.items()):
        n = max(i for i, _ in vals) + 1
        ref = [bits(v) for v in draw(kind, seed, stream, n)]
        for i, b in vals:
            if ref[i] != b:
                bad += 1
                if bad <= 10:
                    print("MISMATCH %s seed %d stream %d element %d: detrun %08x, reference %08x"
                          % (kind, seed, stream, i, b, ref[i]))
    print("compared %d values, %d differ" % (len(lines), bad))
    return 1 if bad or not lines else 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "table":
        table()
    elif len(sys.argv) >= 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        print(__doc__)
        sys.exit(2)
