#!/bin/sh
# The results set (docs/regression.md, "Results files"): a reader that
# resolves OUT/current once and reads the set from there never sees files of
# two runs, while runs rewrite the set; every file carries the set's id; the
# familiar names OUT/NAME.* lead to the current set; old sets are removed; a
# failure while a set is written (here a file size limit that the report
# page exceeds) leaves the previous set current and whole, and no new folder.
# usage: test_results_set.sh DETRUN SCRIPT PYTHON3
set -u
DETRUN=$1
SCRIPT=$2
PY=$3
HERE=$(dirname "$0")
T=$(mktemp -d /tmp/detrun-sets-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
say() { echo "FAIL: $*"; fail=1; }
RUN="-q -t 1 -j 1 --mode deterministic --repeats 1 --folds 2 --epochs 1 --limit 300 -o $T/out"

"$DETRUN" $RUN "$SCRIPT" > /dev/null || say "first run"
"$PY" "$HERE/read_sets.py" "$T/out" quick "$T/out/current" > /dev/null \
    || say "the first set does not carry its id in every file"
"$PY" "$HERE/read_sets.py" "$T/out" quick "$T/stop" > "$T/reader.out" 2>&1 &
reader=$!
i=0
while [ $i -lt 6 ]; do
    "$DETRUN" $RUN "$SCRIPT" > /dev/null || say "run $i"
    i=$((i + 1))
done
touch "$T/stop"
wait $reader || say "the reader saw a mixed set: $(cat "$T/reader.out")"
echo "concurrent reader: $(cat "$T/reader.out")"

# The familiar names lead to the current set; two sets are kept.
cur=$(readlink "$T/out/current")
for f in quick.json quick.csv quick.epochs.csv quick.html; do
    [ "$(readlink "$T/out/$f")" = "current/$f" ] || say "$f is not a link through current/"
    cmp -s "$T/out/$f" "$T/out/$cur/$f" || say "$f is not the current set's"
done
[ "$(ls "$T/out/sets" | wc -l)" -eq 2 ] || say "sets kept: $(ls "$T/out/sets")"

# A failure while writing the set: the page is larger than the limit.
before=$(ls "$T/out/sets")
sum=$(cat "$T/out/$cur"/* | cksum)
( trap '' XFSZ; ulimit -f 8; "$DETRUN" $RUN --no-checkpoint "$SCRIPT" > /dev/null 2> "$T/full.err" )
code=$?
[ $code -eq 1 ] && grep -q "quick.html" "$T/full.err" \
    || say "a set that cannot be written: exit $code, $(cat "$T/full.err")"
[ "$(readlink "$T/out/current")" = "$cur" ] || say "current moved to a set not written whole"
[ "$(ls "$T/out/sets")" = "$before" ] || say "a partial set was left: $(ls "$T/out/sets")"
[ "$(cat "$T/out/$cur"/* | cksum)" = "$sum" ] || say "the previous set changed"
"$PY" "$HERE/read_sets.py" "$T/out" quick "$T/out/current" > /dev/null \
    || say "the previous set is not whole"
exit $fail
