#!/bin/sh
# Cells in parallel (detrun -j N):
#   test_jobs.sh DETRUN SOURCE_DIR
# The results (every cell and repeat fingerprint, loss, accuracy, the whole
# JSON but its timings and thread count) are the same for -j 1/2/8 and
# --threads 1/2/4; a cell of repeat r > 0 never starts before repeat 0 of its
# fold has finished (grid.lua checks it in model()); a failing cell ends the
# run naming it, stops the other workers and keeps the finished cells'
# records for --resume; shards, golden files and traces work with -j; a
# killed or interrupted command leaves no worker behind.
set -eu
detrun=$1
src=$2
here=$src/tests/jobs
fail() { echo "FAIL: $*" >&2; exit 1; }
w=$(mktemp -d /tmp/detrun-jobs.XXXXXX)
trap 'rm -rf "$w"' EXIT
grid=$here/grid.lua

# The results file without what may differ between runs: timings, threads and the
# machine line that names them.
strip() { grep -v -E '"(seconds|run_seconds|wall_seconds|overhead|threads|machine|set)":' "$1"; }

"$detrun" -q -j 1 -t 1 -o "$w/ref" "$grid" >/dev/null || fail "-j 1 -t 1"
strip "$w/ref/grid.json" >"$w/ref.txt"
grep -q '"fingerprint"' "$w/ref.txt" || fail "no fingerprints in the results"
for jt in "1 2" "1 4" "2 1" "2 2" "8 1" "8 4" "auto 2"; do
    set -- $jt
    "$detrun" -q -j "$1" -t "$2" -o "$w/j$1t$2" "$grid" >/dev/null || fail "-j $1 -t $2"
    strip "$w/j$1t$2/grid.json" >"$w/j$1t$2.txt"
    cmp -s "$w/ref.txt" "$w/j$1t$2.txt" ||
        fail "-j $1 -t $2 differs from -j 1 -t 1: $(diff "$w/ref.txt" "$w/j$1t$2.txt" | head -5)"
done
# The strip above must leave something that can differ: another seed does.
"$detrun" -q -j 2 -s 6 -o "$w/seed6" "$grid" >/dev/null || fail "-s 6"
strip "$w/seed6/grid.json" | cmp -s "$w/ref.txt" - && fail "another seed gave the same results"

# A failing cell (repeat 1 fold 2): the run stops naming it; the cells that
# finished keep their records and a resume runs only the others.
rc=0
DETRUN_TEST_FAIL_CELL=1/2 "$detrun" -q -j 2 -o "$w/f" "$grid" >/dev/null 2>"$w/f.err" || rc=$?
[ "$rc" = 1 ] || fail "a failing cell: exit $rc, expected 1"
grep -q "deterministic repeat 2 fold 3: cell 1/2 refuses to train" "$w/f.err" ||
    fail "the failing cell is not named: $(cat "$w/f.err")"
for f in 0 1 2; do
    [ -e "$w/f/grid.cells/deterministic-r0-f$f.json" ] || fail "repeat 0 fold $f's record is gone"
done
[ ! -e "$w/f/grid.cells/deterministic-r1-f2.json" ] || fail "the failed cell has a record"
[ ! -e "$w/f/grid.json" ] || fail "a failed run wrote results"
kept=$(ls -i "$w/f/grid.cells" | grep -e 'r0-.*json' | sort)
"$detrun" -q -j 2 --resume -o "$w/f" "$grid" >/dev/null || fail "resume after a failing cell"
after=$(ls -i "$w/f/grid.cells" | grep -e 'r0-.*json' | sort)
[ -n "$kept" ] && [ "$kept" = "$after" ] || fail "resume rewrote the records of finished cells"
strip "$w/f/grid.json" | cmp -s "$w/ref.txt" - || fail "resumed results differ"

# Golden files: recorded one cell at a time, checked with jobs.
"$detrun" -q -j 1 --record "$w/grid.golden" -o "$w/g1" "$grid" >/dev/null || fail "--record"
"$detrun" -q -j 8 --check "$w/grid.golden" -o "$w/g8" "$grid" >/dev/null || fail "--check with -j 8"

# Shards, each running its cells two at a time, merged: the single run's results.
for k in 0 1; do
    "$detrun" -q -j 2 --shard "$k/2" -o "$w/sh" "$grid" >/dev/null 2>"$w/sh$k.err" ||
        fail "shard $k/2 with -j 2: $(cat "$w/sh$k.err")"
done
"$detrun" merge -q "$w/sh" || fail "merge"
"$detrun" "$src/tests/slurm/compare.lua" "$w/ref/grid.json" "$w/sh/grid.json" >/dev/null ||
    fail "merged shards run with -j 2 differ from the single run"

# A trace with -j: the same trace as one cell at a time.
"$detrun" -q -j 1 --trace "$w/a.trace" -o "$w/t1" "$grid" >/dev/null || fail "--trace -j 1"
"$detrun" -q -j 2 --trace "$w/b.trace" -o "$w/t2" "$grid" >/dev/null || fail "--trace -j 2"
"$detrun" diff "$w/a.trace" "$w/b.trace" >"$w/diff.out" || fail "traces differ: $(cat "$w/diff.out")"

# Stopping: the command killed (TERM) or interrupted (INT, as Ctrl-C) in
# mid-run leaves no worker running.
for sig in TERM INT; do
    env --default-signal=INT "$detrun" -q -j 2 --epochs 40 -o "$w/k$sig" "$grid" >/dev/null 2>&1 &
    pid=$!
    n=0
    while [ "$(pgrep -P "$pid" | wc -l)" -lt 2 ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done
    kids=$(pgrep -P "$pid" | tr '\n' ' ')
    [ -n "$kids" ] || fail "no workers seen under $pid"
    kill -"$sig" "$pid"
    wait "$pid" || true
    n=0
    for k in $kids; do
        while kill -0 "$k" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.05; n=$((n + 1)); done
        ! kill -0 "$k" 2>/dev/null || fail "worker $k still runs after SIG$sig to the command"
    done
done

# Bad values.
for bad in 0 -1 x 2x; do
    rc=0
    "$detrun" -j "$bad" -q -o "$w/bad" "$grid" >/dev/null 2>"$w/bad.err" || rc=$?
    [ "$rc" = 2 ] && grep -q -- "--jobs" "$w/bad.err" || fail "-j $bad: exit $rc, $(cat "$w/bad.err")"
done
"$detrun" --help | grep -q -- "--jobs" || fail "--help does not document --jobs"
echo "ok: -j 1/2/8 and -t 1/2/4 give the same results; order, failures, resume, shards, goldens, traces"
