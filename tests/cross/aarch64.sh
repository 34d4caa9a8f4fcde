#!/usr/bin/env bash
# aarch64.sh SRC BUILD - cross-builds detrun for aarch64 into BUILD (kept
# between runs, so a rerun only rebuilds what changed) and runs the synthetic
# experiment under qemu-aarch64 at 1 and 2 threads against the golden file
# recorded on x86. Exit 77 (skipped) with the reason when a tool is missing.
set -euo pipefail
src=$1
build=$2

skip() { echo "cross.aarch64 skipped: $*" >&2; exit 77; }
command -v aarch64-linux-gnu-gcc >/dev/null ||
  skip "no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu; scripts/setup does)"
command -v qemu-aarch64 >/dev/null ||
  skip "no qemu-aarch64 (apt-get install qemu-user; scripts/setup does)"
[ -e /lib/ld-linux-aarch64.so.1 ] ||
  skip "no arm64 C library (dpkg --add-architecture arm64; apt-get install libc6:arm64)"
for pc in lua5.4 libxxhash zlib libcjson; do
  [ -e "/usr/lib/aarch64-linux-gnu/pkgconfig/$pc.pc" ] ||
    skip "no arm64 $pc.pc (the arm64 -dev packages of scripts/setup are not installed)"
done

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" -DDETRUN_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_TOOLCHAIN_FILE="$src/tests/cross/aarch64-toolchain.cmake" >"$build.log" 2>&1 ||
    { cat "$build.log" >&2; echo "cross.aarch64: configure failed" >&2; exit 1; }
fi
cmake --build "$build" --target detrun_cli -j"$jobs" >"$build.log" 2>&1 ||
  { tail -40 "$build.log" >&2; echo "cross.aarch64: build failed" >&2; exit 1; }
file "$build/detrun" 2>/dev/null | grep -q aarch64 || [ ! -x "$(command -v file)" ] ||
  { echo "cross.aarch64: $build/detrun is not an aarch64 program" >&2; exit 1; }

# -L / : the loader and libc of the same (multiarch) glibc; see the toolchain file.
for t in 1 2; do
  echo "cross.aarch64: synthetic experiment, $t thread(s), under qemu-aarch64"
  timeout 600 qemu-aarch64 -L / "$build/detrun" -t "$t" -q --mode deterministic \
      -o "$build/out_t$t" --check "$src/tests/golden/synthetic.golden" \
      "$src/experiments/synthetic.lua" ||
    { echo "cross.aarch64: $t thread(s): exit $? (124: hung)" >&2; exit 1; }
done
echo "cross.aarch64: the aarch64 fingerprints match the x86 golden at 1 and 2 threads"
