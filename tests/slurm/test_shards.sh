#!/bin/sh
# detrun --shard K/N and detrun merge, without Slurm:
#   test_shards.sh DETRUN SOURCE_DIR
# Four shards merged equal a single-process run; a missing shard's cells are
# named and the merge refused; a rerun runs only what is missing; a failed
# cell is named with its error; a shard killed in mid-cell resumes it from its
# checkpoint; bad --shard values and mixed grids are refused.
set -eu
detrun=$1
src=$2
here=$src/tests/slurm
fail() { echo "FAIL: $*" >&2; exit 1; }
w=$(mktemp -d /tmp/detrun-shards.XXXXXX)
trap 'rm -rf "$w"' EXIT
quick=$src/experiments/quick.lua
set -- -q --limit 400 --folds 2 --epochs 1 --repeats 2

"$detrun" "$@" -o "$w/single" "$quick" >/dev/null || fail "single-process run"

# Shards 0-2 of 4; shard 3 (cells 4 and 8, counted from 1) is left out, as if its task died.
for k in 0 1 2; do
    "$detrun" --shard "$k/4" "$@" -o "$w/sh" "$quick" >"$w/shard$k.out" || fail "shard $k/4"
    grep -q "shard $k/4: 2 cells run, 0 already recorded" "$w/shard$k.out" ||
        fail "shard $k/4 said: $(cat "$w/shard$k.out")"
done
rc=0
"$detrun" merge "$w/sh" >/dev/null 2>"$w/merge.err" || rc=$?
[ "$rc" = 1 ] || fail "merge with a shard missing exited $rc, expected 1"
grep -q "2 of 8 cells are missing or failed" "$w/merge.err" || fail "merge said: $(cat "$w/merge.err")"
grep -q "cell 4 (deterministic repeat 2 fold 2): missing" "$w/merge.err" || fail "cell 4 not named"
grep -q "cell 8 (fast repeat 2 fold 2): missing" "$w/merge.err" || fail "cell 8 not named"
[ ! -e "$w/sh/quick.json" ] || fail "merge wrote results although cells are missing"

"$detrun" merge --partial -q "$w/sh" 2>/dev/null || fail "merge --partial"
grep -q '"incomplete"' "$w/sh/quick.json" || fail "partial results do not say they are incomplete"
rm "$w/sh/quick.json" "$w/sh/quick.csv"

# The rerun: shard 0 has nothing left to do, shard 3 runs its two cells; the
# records already there are not rewritten.
before=$(ls -i "$w/sh/shards" | grep -v -e plan.json -e r1-f1 | sort)
"$detrun" --shard 0/4 "$@" -o "$w/sh" "$quick" >"$w/rerun0.out" || fail "rerun of shard 0"
grep -q "0 cells run, 2 already recorded" "$w/rerun0.out" || fail "rerun of shard 0 said: $(cat "$w/rerun0.out")"
"$detrun" --shard 3/4 "$@" -o "$w/sh" "$quick" >/dev/null || fail "shard 3/4"
after=$(ls -i "$w/sh/shards" | grep -v -e plan.json -e r1-f1 | sort)
[ "$before" = "$after" ] || fail "recorded cells were rewritten: $before / $after"
"$detrun" merge -q "$w/sh" || fail "merge of all four shards"
"$detrun" "$here/compare.lua" "$w/single/quick.json" "$w/sh/quick.json" || fail "merged != single"

# A failing cell: recorded with its error, named by merge, run again later.
rc=0
DETRUN_TEST_FAIL_FOLD=2 "$detrun" --shard 0/1 "$@" -o "$w/f" "$here/failing.lua" \
    >/dev/null 2>"$w/f.err" || rc=$?
[ "$rc" = 1 ] || fail "a shard with failing cells exited $rc, expected 1"
grep -q "4 of its cells failed" "$w/f.err" || fail "shard said: $(cat "$w/f.err")"
rc=0
"$detrun" merge "$w/f" >/dev/null 2>"$w/f.err" || rc=$?
[ "$rc" = 1 ] || fail "merge with failed cells exited $rc"
grep -q "cell 2 (deterministic repeat 1 fold 2): failed: .*fold 2 refuses to train" "$w/f.err" ||
    fail "merge said: $(cat "$w/f.err")"
"$detrun" --shard 0/1 "$@" -o "$w/f" "$here/failing.lua" >"$w/f.out" || fail "rerun of failed cells"
grep -q "4 cells run, 4 already recorded" "$w/f.out" || fail "rerun said: $(cat "$w/f.out")"
"$detrun" merge -q "$w/f" || fail "merge after the rerun"

# A shard killed in mid-training: its rerun continues the cell from the
# checkpoint and ends with the bits of an uninterrupted run. (Wherever the
# kill lands, the results must be the same.)
set -- -q -m deterministic --limit 2000 --folds 2 --epochs 3 --repeats 1
"$detrun" --shard 0/1 "$@" -o "$w/k" "$quick" >/dev/null 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null && ! ls "$w/k/shards/"*.ckpt >/dev/null 2>&1; do sleep 0.05; done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" || true
"$detrun" --shard 0/1 "$@" -o "$w/k" "$quick" >/dev/null || fail "rerun of a killed shard"
"$detrun" merge -q "$w/k" || fail "merge after a killed shard's rerun"
"$detrun" "$@" -o "$w/k1" "$quick" >/dev/null || fail "single-process run"
"$detrun" "$here/compare.lua" "$w/k1/quick.json" "$w/k/quick.json" || fail "resumed != uninterrupted"
set -- -q --limit 400 --folds 2 --epochs 1 --repeats 2

# Bad input.
for bad in 4/4 -1/4 1/0 x 1/ 1/2/3; do
    rc=0
    "$detrun" --shard "$bad" "$@" -o "$w/bad" "$quick" >/dev/null 2>"$w/bad.err" || rc=$?
    [ "$rc" = 2 ] && grep -q -- "--shard" "$w/bad.err" || fail "--shard $bad: exit $rc, $(cat "$w/bad.err")"
done
rc=0
"$detrun" --shard 0/4 -q --limit 400 --folds 3 --epochs 1 -o "$w/sh" "$quick" \
    >/dev/null 2>"$w/mix.err" || rc=$?
[ "$rc" = 1 ] && grep -q "plan.json describes another grid" "$w/mix.err" ||
    fail "a shard of other settings in the same folder: exit $rc, $(cat "$w/mix.err")"
rc=0
"$detrun" merge "$w/nothing" >/dev/null 2>"$w/none.err" || rc=$?
[ "$rc" = 1 ] && grep -q "plan.json: cannot open" "$w/none.err" || fail "merge of no shards: $rc"
rc=0
"$detrun" merge >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "merge without a folder exited $rc, expected 2"
echo "ok: shards merged equal a single-process run; missing and failed cells named and rerun"
