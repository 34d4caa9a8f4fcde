#!/usr/bin/env bash
# cpu_compare.sh - detrun's CPU training speed side by side, in one run on one
# machine: detrun at a commit (default HEAD) and at an earlier one (default
# BEFORE below), PyTorch on the CPU (Debian python3-torch, when importable),
# the FP32 FMA peak of a small loop, and optionally the full seed CV run.
# Invocations are interleaved (after, before, torch, after, ...) and medians
# of the invocations' medians are reported: the machine may be shared.
#
#   bench/cpu_compare.sh [ROUNDS (5)]
# Environment: AFTER=commit (HEAD), BEFORE=commit (92525cc), STEPS (20) and
# FITS (5) per train_steps invocation, CV=1 also times the full seed CV run
# (`detrun -t 2 --repeats 1 experiments/seed_mnist.lua`, both modes), TORCH=0
# leaves PyTorch out (TORCH_THREADS="1 2" its thread counts), KEEP=1 keeps the
# work folder, DETRUN_DATA the data, TRAIN_STEPS_CPU=1 has detrun's train_steps
# time CPU instead of wall time (steadier at one thread on a loaded machine).
# Prints the raw lines, then a table; writes nothing into the checkout.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
after=$(git -C "$repo" rev-parse --short "${AFTER:-HEAD}")
before=$(git -C "$repo" rev-parse --short "${BEFORE:-92525cc}")
steps=${STEPS:-20}
fits=${FITS:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/cpu_compare.XXXXXX")
cleanup() {
  for v in after before; do
    git -C "$repo" worktree remove --force "$work/src_$v" 2>/dev/null || true
  done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

build() {   # build NAME COMMIT
  git -C "$repo" worktree add --detach -q "$work/src_$1" "$2"
  # One driver for both: this checkout's train_steps (the library is the commit's).
  cp "$repo/bench/train_steps/train_steps.c" "$work/src_$1/bench/train_steps/train_steps.c"
  cmake -S "$work/src_$1" -B "$work/build_$1" -DDETRUN_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
        >"$work/build_$1.log" 2>&1
  cmake --build "$work/build_$1" --target train_steps detrun_cli -j"$(nproc)" \
        >>"$work/build_$1.log" 2>&1 || { tail -30 "$work/build_$1.log" >&2; exit 1; }
}
echo "building detrun $after (after) and $before (before) in $work"
build after "$after"
build before "$before"
cc -O2 -mavx2 -mfma "$repo/bench/compare/fma_peak.c" -o "$work/fma_peak"

torch=0
if [ "${TORCH:-1}" = 1 ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
  torch=1
fi

raw="$work/raw.txt"
: >"$raw"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cpus;" \
     "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  "$work/fma_peak" 1 | awk '{print "peak 1", $1}' >>"$raw"
  ( "$work/fma_peak" 1 & "$work/fma_peak" 1; wait ) | awk '{s += $1} END {print "peak 2", s}' >>"$raw"
  for v in after before; do
    "$work/build_$v/bench/train_steps/train_steps" "$steps" "$fits" ${DETRUN_DATA:+"$DETRUN_DATA"} |
      awk -v v="$v" '/steps\/s/ {for (i = 1; i <= NF; i++) if ($i == "steps/s") print v, $1, $2, $(i-1)}' >>"$raw"
  done
  if [ "$torch" = 1 ]; then
    for t in ${TORCH_THREADS:-1 2}; do
      /usr/bin/python3 "$repo/bench/compare/torch_steps.py" "$t" "$steps" "$fits" >>"$raw"
    done
  fi
  echo "round $r of $rounds done (load $(cut -d' ' -f1 /proc/loadavg))"
done
if [ "${CV:-0}" = 1 ]; then
  for v in after before; do
    for m in deterministic fast; do
      s=$( { /usr/bin/time -f "%e" "$work/build_$v/detrun" -t 2 -q --mode "$m" --repeats 1 \
               -o "$work/cv_${v}_$m" ${DETRUN_DATA:+--data "$DETRUN_DATA"} \
               "$work/src_$v/experiments/seed_mnist.lua" >/dev/null; } 2>&1 | tail -1)
      echo "cv $v $m $s" >>"$raw"
    done
  done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "--- raw (steps/s; peak in GFLOP/s; cv in seconds)"
cat "$raw"
echo "--- medians over $rounds rounds ($steps steps x $fits fits per train_steps median)"
python3 - "$raw" "$after" "$before" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
after, before = sys.argv[2], sys.argv[3]
med = lambda xs: statistics.median(xs) if xs else float("nan")
peak = {t: med([float(r[2]) for r in rows if r[0] == "peak" and r[1] == str(t)]) for t in (1, 2)}
flop = 77.4e6   # one training step of the reference network at batch 100
def get(name, mode, t):
    return med([float(r[3]) for r in rows if r[0] == name and r[1] == mode and r[2] == str(t)])
print("FMA peak: %.1f GFLOP/s (1 thread), %.1f (2)" % (peak[1], peak[2]))
print("%-30s %7s %7s %7s %7s" % ("", "1 thr", "% peak", "2 thr", "% peak"))
lines = [("detrun %s deterministic" % after, "after", "deterministic"),
         ("detrun %s fast" % after, "after", "fast"),
         ("detrun %s deterministic" % before, "before", "deterministic"),
         ("detrun %s fast" % before, "before", "fast"),
         ("torch deterministic", "torch", "deterministic"),
         ("torch default", "torch", "default")]
for label, name, mode in lines:
    a, b = get(name, mode, 1), get(name, mode, 2)
    if a != a:
        continue
    print("%-30s %7.1f %6.1f%% %7.1f %6.1f%%" % (label, a, 100 * a * flop / 1e9 / peak[1],
                                                 b, 100 * b * flop / 1e9 / peak[2]))
for t in (1, 2):
    ta = get("torch", "default", t)
    if ta == ta:
        print("detrun %s deterministic / torch default at %d thread(s): %.2f"
              % (after, t, get("after", "deterministic", t) / ta))
for r in rows:
    if r[0] == "cv":
        print("seed CV (10 folds x 10 epochs, -t 2) %s %s: %s s" % (r[1], r[2], r[3]))
PY
