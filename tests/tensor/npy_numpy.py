#!/usr/bin/env python3
"""detrun's .npy files against numpy's own reader and writer.

  npy_numpy.py DUMP DIR   (DUMP: tensor_draw_dump)

detrun writes DIR/normal.npy and DIR/bytes.npy; numpy.load must read them
with the right dtype, shape and bits (the normal values recomputed by
tensor_ref.py). numpy.save then writes arrays that detrun must read back bit
for bit. Exits 77 (skipped) when numpy is not installed (Debian:
python3-numpy, in scripts/setup).
"""
import os
import struct
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed (apt-get install python3-numpy)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tensor_ref  # noqa: E402

dump, work = sys.argv[1], sys.argv[2]
bad = 0


def fail(msg):
    global bad
    bad += 1
    print("FAIL " + msg)


subprocess.run([dump, "write", work], check=True)
a = np.load(os.path.join(work, "normal.npy"))
if a.dtype != np.float32 or a.shape != (3, 4, 5) or not a.flags["C_CONTIGUOUS"]:
    fail("normal.npy: dtype %s shape %s" % (a.dtype, a.shape))
want = [tensor_ref.bits(v) for v in tensor_ref.normal(1, 0, 60)]
if [int(x) for x in a.reshape(-1).view(np.uint32)] != want:
    fail("normal.npy: values differ from the reference draw")
b = np.load(os.path.join(work, "bytes.npy"))
if b.dtype != np.uint8 or b.shape != (16, 16) or list(b.reshape(-1)) != list(range(256)):
    fail("bytes.npy: dtype %s shape %s" % (b.dtype, b.shape))

cases = {
    "np_f32.npy": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / np.float32(7),
    "np_vec.npy": np.array([1.5, -0.0, np.inf], dtype=np.float32),
    "np_u8.npy": np.arange(10, dtype=np.uint8).reshape(1, 2, 5),
    "np_4d.npy": np.ones((2, 1, 3, 2), dtype=np.float32),
}
for name, arr in cases.items():
    path = os.path.join(work, name)
    np.save(path, arr)
    out = subprocess.run([dump, "read", path], capture_output=True, text=True).stdout.split()
    kind = "uint8" if arr.dtype == np.uint8 else "float32"
    head = [kind] + [str(d) for d in arr.shape]
    if out[:len(head)] != head:
        fail("%s: detrun read %s, numpy wrote %s" % (name, out[:len(head)], head))
        continue
    got = [int(h, 16) for h in out[len(head):]]
    ref = [struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in arr.reshape(-1)]
    if got != ref:
        fail("%s: values differ" % name)

# numpy's Fortran-ordered and float64 files are refused, naming the file.
for name, arr in {"np_f64.npy": np.zeros(3), "np_fortran.npy":
                  np.asfortranarray(np.zeros((2, 3), dtype=np.float32))}.items():
    path = os.path.join(work, name)
    np.save(path, arr)
    out = subprocess.run([dump, "read", path], capture_output=True, text=True).stdout
    if not out.startswith("error " + path):
        fail("%s: not refused: %s" % (name, out[:200]))

print("numpy %s: %d failures" % (np.__version__, bad))
sys.exit(1 if bad else 0)
