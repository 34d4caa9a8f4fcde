#!/bin/sh
# The quick experiment as a Slurm job array on a real one-node cluster
# (slurm_local.sh):  test_slurm.sh DETRUN SOURCE_DIR
#  1. detrun slurm --shards 4 --wait: four tasks and a merge; the merged
#     results equal a single-process run's (compare.lua).
#  2. A task cancelled before it runs: the merge job never runs, detrun merge
#     names that task's cells; rerunning the same command runs only those and
#     leaves the other records as they were.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "${1:-}" = --inside ]; then
    shift
    detrun=$1 here=$2 w=$3 quick=$4
    shift 4
    cd "$w"

    "$detrun" slurm --shards 4 --wait --partition debug --time 10:00 "$@" -o "$w/a" "$quick" >"$w/a.out" 2>&1 ||
        fail "detrun slurm --wait: $(cat "$w/a.out")"
    for k in 0 1 2 3; do
        grep -q "shard $k/4: 2 cells run" "$w/a/slurm/shard-$k.out" ||
            fail "task $k: $(cat "$w/a/slurm/shard-$k.out")"
    done
    "$detrun" "$here/compare.lua" "$w/single/quick.json" "$w/a/quick.json" ||
        fail "merged results differ from the single-process run's"

    # Hold the queue, cancel task 2 while it waits, let the others run.
    scontrol update PartitionName=debug State=DOWN
    "$detrun" slurm --shards 4 "$@" -o "$w/b" "$quick" >"$w/b.out" 2>&1 || fail "$(cat "$w/b.out")"
    job=$(sed -n 's/.*: job \([0-9][0-9]*\) (array 0-3).*/\1/p' "$w/b.out")
    [ -n "$job" ] || fail "no array job id in: $(cat "$w/b.out")"
    scancel "${job}_2"
    scontrol update PartitionName=debug State=UP
    i=0
    while [ -n "$(squeue -h)" ]; do
        i=$((i + 1))
        [ $i -lt 600 ] || fail "jobs still queued after 120 s: $(squeue)"
        sleep 0.2
    done
    [ ! -e "$w/b/quick.json" ] || fail "the merge job ran although task 2 was cancelled"
    rc=0
    "$detrun" merge "$w/b" >/dev/null 2>"$w/merge.err" || rc=$?
    [ "$rc" = 1 ] || fail "merge exited $rc, expected 1: $(cat "$w/merge.err")"
    grep -q "2 of 8 cells are missing" "$w/merge.err" || fail "merge said: $(cat "$w/merge.err")"
    grep -q "cell 3 (deterministic repeat 2 fold 1): missing" "$w/merge.err" || fail "cell 3 not named"
    grep -q "cell 7 (fast repeat 2 fold 1): missing" "$w/merge.err" || fail "cell 7 not named"

    before=$(ls -i "$w/b/shards" | grep -e '-f[01].json' | sort)
    "$detrun" slurm --shards 4 --wait "$@" -o "$w/b" "$quick" >"$w/b2.out" 2>&1 ||
        fail "rerun: $(cat "$w/b2.out")"
    grep -q "shard 2/4: 2 cells run, 0 already recorded" "$w/b/slurm/shard-2.out" ||
        fail "rerun, task 2: $(cat "$w/b/slurm/shard-2.out")"
    grep -q "shard 0/4: 0 cells run, 2 already recorded" "$w/b/slurm/shard-0.out" ||
        fail "rerun, task 0: $(cat "$w/b/slurm/shard-0.out")"
    after=$(ls -i "$w/b/shards" | grep -e '-f[01].json' | grep -v -e deterministic-r1-f0 -e fast-r1-f0 | sort)
    before=$(echo "$before" | grep -v -e deterministic-r1-f0 -e fast-r1-f0)
    [ "$before" = "$after" ] || fail "records of finished cells were rewritten"
    "$detrun" "$here/compare.lua" "$w/single/quick.json" "$w/b/quick.json" ||
        fail "results after the rerun differ from the single-process run's"
    exit 0
fi

detrun=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
here=$src/tests/slurm
. "$here/common.sh"
w=$(mktemp -d /tmp/detrun-slurm-test.XXXXXX)
trap 'rm -rf "$w"' EXIT
quick=$src/experiments/quick.lua
set -- -q --limit 400 --folds 2 --epochs 1 --repeats 2
"$detrun" "$@" -o "$w/single" "$quick" >/dev/null || fail "single-process run"
"$here/slurm_local.sh" run sh "$here/test_slurm.sh" --inside "$detrun" "$here" "$w" "$quick" "$@"
echo "ok: a 4-task array merged equals a single-process run; a cancelled task's cells named and rerun"
