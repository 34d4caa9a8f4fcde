#!/bin/sh
# detrun --devices in a CUDA build: on a machine without the NVIDIA driver
# it says so ("no NVIDIA driver found"), not the CUDA runtime's "driver
# version is insufficient"; with a driver and a GPU it lists cuda:0.
#   test_devices.sh DETRUN
set -eu
out=$("$1" --devices) || { echo "FAIL: detrun --devices exited non-zero: $out" >&2; exit 1; }
echo "$out"
if echo "$out" | grep -q '^cuda:0 '; then
    echo "a GPU is listed: the no-driver message cannot be checked here"
    exit 0
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    echo "$out" | grep -q "no NVIDIA driver found" ||
        { echo "FAIL: no libcuda.so.1 here, and --devices does not say no driver was found" >&2; exit 1; }
fi
if echo "$out" | grep -q "insufficient"; then
    echo "FAIL: --devices passes on the CUDA runtime's misleading message" >&2
    exit 1
fi
