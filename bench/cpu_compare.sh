#!/usr/bin/env bash
# cpu_compare.sh - detrun's CPU training speed side by side, in one run on one
# machine: detrun at a commit (default HEAD) and at an earlier one (default
# BEFORE below), PyTorch on the CPU (Debian python3-torch, when importable),
# TensorFlow 2.x on the CPU (bench/tf_seed.py in a virtual environment), the
# FP32 FMA peak of a small loop, and optionally the full seed CV run.
# Invocations are interleaved (after, before, torch, tf, after, ...) and
# medians of the invocations' medians are reported: the machine may be shared.
#
#   bench/cpu_compare.sh [ROUNDS (5)]
# Environment: AFTER=commit (HEAD), BEFORE=commit (92525cc), STEPS (20) and
# FITS (5) per train_steps invocation, CV=1 also times the full seed CV run
# (`detrun -t 2 --repeats 1 experiments/seed_mnist.lua`, both modes), TORCH=0
# leaves PyTorch out (TORCH_THREADS="1 2" its thread counts), TF=0 leaves
# TensorFlow out (TF_THREADS="1 2" its thread counts, TF_MODES="default
# deterministic" its modes, "xla" also possible; one process per mode and
# thread count), KEEP=1 keeps the work folder, DETRUN_DATA the data,
# TRAIN_STEPS_CPU=1 has detrun's train_steps time CPU instead of wall time
# (steadier at one thread on a loaded machine).
#
# TensorFlow runs in bench/.venv-tf (git-ignored; TF_VENV=dir for another),
# made here on first use with Debian's python3: `python3 -m venv` (needs the
# Debian package python3-venv: apt-get install python3-venv) and `pip install`
# of the pinned versions below from PyPI. detrun itself needs neither. Without
# them TensorFlow is left out with a note, as PyTorch is when not importable.
# Prints the raw lines, then a table; writes nothing into the checkout but the
# virtual environment.
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

# TensorFlow's pins: the newest tensorflow-cpu whose wheels install on
# Debian 12's python3 (3.11) when this was written, and the Keras it pulled in.
tf_version=2.20.0
keras_version=3.15.1
venv=${TF_VENV:-$repo/bench/.venv-tf}
tf=0
tfver=
tf_check() {
  "$venv/bin/python" -c 'import tensorflow as tf, keras; print(tf.__version__, keras.__version__)' \
    2>/dev/null
}
if [ "${TF:-1}" = 1 ]; then
  if [ "$(tf_check)" != "$tf_version $keras_version" ]; then
    echo "making $venv (tensorflow-cpu $tf_version, keras $keras_version)"
    if ! { /usr/bin/python3 -m venv "$venv" &&
           "$venv/bin/pip" install -q "tensorflow-cpu==$tf_version" "keras==$keras_version"
         } >"$work/venv.log" 2>&1; then
      tail -5 "$work/venv.log" >&2
      echo "TensorFlow left out: could not make $venv (python3-venv installed? PyPI reachable?)" >&2
    fi
  fi
  tfver=$(tf_check) && tf=1
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
  if [ "$tf" = 1 ]; then
    for t in ${TF_THREADS:-1 2}; do
      for m in ${TF_MODES:-default deterministic}; do
        "$venv/bin/python" "$repo/bench/tf_seed.py" "$t" "$steps" "$fits" --mode "$m" \
          ${DETRUN_DATA:+"$DETRUN_DATA"} >>"$raw" 2>>"$work/tf.log" ||
          { tail -20 "$work/tf.log" >&2; exit 1; }
      done
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
python3 - "$raw" "$after" "$before" "$steps" "$tfver" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
after, before, steps, tfver = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split()
med = lambda xs: statistics.median(xs) if xs else float("nan")
peak = {t: med([float(r[2]) for r in rows if r[0] == "peak" and r[1] == str(t)]) for t in (1, 2)}
flop = 77.4e6   # one training step of the reference network at batch 100
def get(name, mode, t):
    return med([float(r[3]) for r in rows if r[0] == name and r[1] == mode and r[2] == str(t)])
torch = {t: get("torch", "default", t) for t in (1, 2)}
print("FMA peak: %.1f GFLOP/s (1 thread), %.1f (2)" % (peak[1], peak[2]))
print("%-30s %7s %7s %7s %7s %7s %7s" % ("steps/s", "1 thr", "% peak", "/torch",
                                         "2 thr", "% peak", "/torch"))
lines = [("detrun %s deterministic" % after, "after", "deterministic"),
         ("detrun %s fast" % after, "after", "fast"),
         ("detrun %s deterministic" % before, "before", "deterministic"),
         ("detrun %s fast" % before, "before", "fast"),
         ("torch deterministic", "torch", "deterministic"),
         ("torch default", "torch", "default")]
if tfver:
    lines += [("tf %s %s" % (tfver[0], m), "tf", m) for m in ("default", "deterministic", "xla")]
def cells(v, t):
    if v != v:
        return "%7s %7s %7s" % ("-", "-", "-")
    return "%7.1f %6.1f%% %7s" % (v, 100 * v * flop / 1e9 / peak[t],
                                  "%.2f" % (v / torch[t]) if torch[t] == torch[t] else "-")
for label, name, mode in lines:
    a, b = get(name, mode, 1), get(name, mode, 2)
    if a != a and b != b:
        continue
    print("%-30s %s %s" % (label, cells(a, 1), cells(b, 2)))
print("(/torch: steps/s over PyTorch's default mode at the same thread count)")
if tfver:
    print("TensorFlow %s, Keras %s: weights after %s steps from seed 0 (first 16 hex digits "
          "of SHA-256), over all rounds:" % (tfver[0], tfver[1], steps))
    for mode in ("default", "deterministic", "xla"):
        hs = {t: sorted({r[3] for r in rows if r[0] == "tfhash" and r[1] == mode and r[2] == t})
              for t in ("1", "2")}
        if not hs["1"] and not hs["2"]:
            continue
        verdict = "-"
        if len(hs["1"]) > 1 or len(hs["2"]) > 1:
            verdict = "not reproducible at a fixed thread count"
        elif hs["1"] and hs["2"]:
            verdict = "same" if hs["1"] == hs["2"] else "differ"
        print("  tf %-13s 1 thread %s, 2 threads %s: %s" % (mode, ",".join(hs["1"]) or "-",
                                                         ",".join(hs["2"]) or "-", verdict))
for r in rows:
    if r[0] == "cv":
        print("seed CV (10 folds x 10 epochs, -t 2) %s %s: %s s" % (r[1], r[2], r[3]))
PY
