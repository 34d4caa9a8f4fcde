#!/usr/bin/env bash
# Makes the seed inputs of the fuzz targets from real detrun outputs:
#   tests/fuzz/make_seeds.sh DETRUN OUTDIR
# writes OUTDIR/<target>/ (valid files of each kind and damaged copies). The
# kept corpora (corpus/<target>) are these seeds and what the long runs
# found, minimised with libFuzzer's -merge=1 (bench/RESULTS.md, "Fuzzing").
set -euo pipefail
detrun=$(realpath "$1")
out=$(realpath -m "$2")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p "$out"/{trace,checkpoint,golden,record,plan,results}

# A fit small enough for short traces and checkpoints: two dense layers on
# 4x4 images, Adam and SGD, a checkpoint after every epoch.
cat > tiny.lua <<'LUA'
local dr = require "detrun"
local T = dr.tensor
local n = 40
local images = T.uniform { { n, 1, 4, 4 }, seed = 3, stream = 0, low = 0, high = 1 }
local labels = T.zeros { n }
for i = 1, n do labels[i] = (i - 1) % 2 end
local data = assert(dr.data.tensors(images, labels))
for _, opt in ipairs { "adam", "sgd" } do
  local m = dr.nn.sequential { input = { 1, 4, 4 }, dr.nn.flatten(),
                               dr.nn.dense { units = 3, activation = "relu" },
                               dr.nn.dense { units = 2, activation = "softmax" } }
  m:compile { optimizer = opt, loss = "sparse_categorical_crossentropy", metrics = { "accuracy" } }
  m:fit(dr.run { seed = 1 }, data, { epochs = 2, batch = 20, validation_split = 0.25,
                                     checkpoint = arg[1] .. "-" .. opt .. ".ckpt" })
end
LUA
"$detrun" -q -t 1 --trace tiny.trace tiny.lua ck > /dev/null
"$detrun" -q -t 1 --trace tiny-values.trace --trace-values --trace-every 2 tiny.lua ck2 > /dev/null
cp tiny.trace tiny-values.trace "$out/trace/"
cp ck-adam.ckpt ck-sgd.ckpt "$out/checkpoint/"

# The synthetic experiment, cut down: a golden file, results, cell records,
# a resume plan, and a shard's plan and records.
# Run from a copy here, so that the golden file's script line names no
# folder of the machine that made it.
cp "$here/../../experiments/synthetic.lua" synthetic.lua
synth=synthetic.lua
small=(-q -t 1 -j 1 --repeats 1 --folds 2 --epochs 2 --limit 60)
"$detrun" "${small[@]}" -o run --record golden.txt "$synth" > /dev/null
"$detrun" "${small[@]}" -m deterministic -o shard --shard 1/2 "$synth" > /dev/null
cp golden.txt "$out/golden/"
cp run/synthetic.json "$out/results/"
cp run/synthetic.cells/deterministic-r0-f1.json "$out/record/cell.json"
cp shard/shards/deterministic-r0-f1.json "$out/record/shard-cell.json"
printf '{"mode":"deterministic","repeat":0,"fold":1,"error":"a NaN in the loss"}\n' \
  > "$out/record/failed.json"
cp run/synthetic.cells/run.plan "$out/plan/run.plan"
cp shard/shards/plan.json "$out/plan/plan.json"

# Damaged copies: cut short, one byte changed, the checksum taken off (the
# checkpoint target puts a correct one back).
damage() {   # file: writes <file>.cut and <file>.flip beside its copy in $out
  local src=$1 dst=$2 n
  n=$(stat -c %s "$src")
  head -c $((n / 2)) "$src" > "$dst.cut"
  cp "$src" "$dst.flip"
  printf '\x7f' | dd of="$dst.flip" bs=1 seek=$((n / 3)) conv=notrunc status=none
}
damage tiny.trace "$out/trace/tiny.trace"
damage tiny-values.trace "$out/trace/tiny-values.trace"
for c in ck-adam ck-sgd; do
  damage $c.ckpt "$out/checkpoint/$c.ckpt"
  head -c $(($(stat -c %s $c.ckpt) - 16)) $c.ckpt > "$out/checkpoint/$c.unsealed"
done
damage golden.txt "$out/golden/golden.txt"
sed 's/fold 1 final/fold 0 final/' golden.txt > "$out/golden/duplicate.txt"
sed 's/--epochs 2/--epochs 3/; s/462c/462d/' golden.txt > "$out/golden/mismatch.txt"
damage run/synthetic.json "$out/results/synthetic.json"
damage run/synthetic.cells/deterministic-r0-f1.json "$out/record/cell.json"
damage shard/shards/plan.json "$out/plan/plan.json"
sed 's/"folds":\t2/"folds":\t200/' shard/shards/plan.json > "$out/plan/too-many-folds.json"
