#!/bin/sh
# Faults from outside: SIGINT and SIGTERM stop a run at the next step
# boundary with "interrupted: rerun with --resume to continue" and exit 130
# (143), keeping the checkpoint of the step they stopped at; the resumed run
# ends with the fingerprints of an uninterrupted one. A second run on a locked results folder is refused
# naming the holder; --no-checkpoint gives up --resume.
# usage: test_signals.sh DETRUN SCRIPT
set -u
DETRUN=$1
SCRIPT=$2
T=$(mktemp -d /tmp/detrun-signals-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
say() { echo "FAIL: $*"; fail=1; }
RUN="-t 2 -q --mode deterministic --repeats 1 --folds 3 --epochs 3 --limit 3000"

"$DETRUN" $RUN -o "$T/full" --record "$T/full.golden" "$SCRIPT" > /dev/null || say "uninterrupted run"
grep -v '^#' "$T/full.golden" > "$T/full.fp"

# Waits (up to 60 s) for a checkpoint in the cells folder.
wait_ckpt() {
    i=0
    while [ $i -lt 6000 ]; do
        for f in "$1"/quick.cells/*.ckpt; do [ -e "$f" ] && return 0; done
        sleep 0.01
        i=$((i + 1))
    done
    return 1
}

for sig in INT TERM; do
    out="$T/$sig"
    want=130
    [ $sig = TERM ] && want=143
    "$DETRUN" $RUN -o "$out" "$SCRIPT" > /dev/null 2> "$out.err" &
    pid=$!
    wait_ckpt "$out" || say "$sig: no checkpoint appeared"
    kill -$sig $pid
    wait $pid
    code=$?
    [ $code -eq $want ] || say "$sig: exit status $code, want $want"
    grep -q "interrupted: rerun with --resume to continue" "$out.err" \
        || say "$sig: no 'interrupted' message: $(cat "$out.err")"
    # Stopped early, so no results; the checkpoint or a finished cell remains.
    [ ! -e "$out/quick.json" ] || say "$sig: results written by an interrupted run"
    [ -n "$(ls "$out"/quick.cells/*.ckpt "$out"/quick.cells/*-f*.json 2> /dev/null)" ] \
        || say "$sig: neither checkpoint nor record kept"
    "$DETRUN" $RUN -o "$out" --resume --record "$out.golden" "$SCRIPT" > /dev/null \
        || say "$sig: the resumed run failed"
    grep -v '^#' "$out.golden" > "$out.fp" 2> /dev/null
    cmp -s "$T/full.fp" "$out.fp" || say "$sig: resumed fingerprints differ from the uninterrupted run's"
    echo "stopped by SIG$sig: exit $code"
done

# A real SIGINT at a known step (the script signals itself from its step
# callback): the fit stops at the next step boundary inside the epoch, its
# checkpoint (format version 2) holds that step, and the resumed fit prints
# the uninterrupted fit's epochs and fingerprint, at 1 and 2 threads.
FIT="$(dirname "$0")/signal_fit.lua"
"$DETRUN" -q -t 1 "$FIT" "$T/fit.ckpt" fresh > "$T/fit.full" || say "uninterrupted fit"
for t in 1 2; do
    for at in "1 1" "2 4" "3 9"; do
        set -- $at
        ck="$T/fit-$t-$1-$2.ckpt"
        "$DETRUN" -q -t $t "$FIT" "$ck" fresh $1 $2 > /dev/null 2> "$ck.err"
        code=$?
        [ $code -eq 130 ] && grep -q "interrupted: rerun with --resume" "$ck.err" \
            || say "fit signalled at epoch $1 step $2, $t threads: exit $code, $(cat "$ck.err")"
        [ "$(od -An -tu4 -j8 -N4 "$ck" | tr -d ' ')" = 2 ] \
            || say "fit signalled at epoch $1 step $2: the checkpoint is not one inside an epoch"
        grep -aq "\"epoch\":$(($1 - 1)),\"batch\":$2," "$ck" \
            || say "fit signalled at epoch $1 step $2: the checkpoint is not at the next step"
        "$DETRUN" -q -t $t "$FIT" "$ck" resume > "$ck.out" || say "resuming $ck"
        cmp -s "$T/fit.full" "$ck.out" \
            || say "fit signalled at epoch $1 step $2, $t threads: the resumed fit differs"
    done
done

# A repeat after the first, interrupted and resumed: the epochs it had
# finished are shown again without their weights, so their divergence from
# repeat 1 comes from what the interrupted run measured; in deterministic
# mode every epoch's is exactly 0, none missing.
out="$T/rep"
"$DETRUN" $RUN --repeats 2 --folds 2 -j 1 -o "$out" "$SCRIPT" > /dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 6000 ] && ! ls "$out"/quick.cells/deterministic-r1-*.ckpt > /dev/null 2>&1; do
    sleep 0.01
    i=$((i + 1))
done
kill -INT $pid
wait $pid
"$DETRUN" $RUN --repeats 2 --folds 2 -j 1 -o "$out" --resume "$SCRIPT" > /dev/null \
    || say "resuming repeat 2"
rows=$(grep -c '^deterministic,1,' "$out/quick.epochs.csv")
zero=$(grep '^deterministic,1,' "$out/quick.epochs.csv" | cut -d, -f9 | grep -cx 0)
[ "$rows" -eq 6 ] && [ "$zero" -eq 6 ] \
    || say "a resumed repeat's divergence: $zero of $rows epochs exactly 0: $(cat "$out/quick.epochs.csv")"

# A locked results folder: the run is refused before any work, naming it.
if command -v flock > /dev/null; then
    mkdir -p "$T/locked"
    flock "$T/locked/.detrun.lock" "$DETRUN" $RUN -o "$T/locked" "$SCRIPT" > /dev/null 2> "$T/locked.err"
    code=$?
    [ $code -eq 1 ] && grep -q "is in use by another run (process" "$T/locked.err" \
        || say "a locked folder: exit $code, $(cat "$T/locked.err")"
    [ ! -e "$T/locked/quick.cells" ] || say "a locked folder was written into"
fi

# --no-checkpoint: the same bits, and no resume.
"$DETRUN" $RUN -o "$T/nock" --no-checkpoint --record "$T/nock.golden" "$SCRIPT" > /dev/null \
    || say "--no-checkpoint run"
grep -v '^#' "$T/nock.golden" > "$T/nock.fp"
cmp -s "$T/full.fp" "$T/nock.fp" || say "--no-checkpoint changed the fingerprints"
"$DETRUN" $RUN -o "$T/nock" --no-checkpoint --resume "$SCRIPT" > /dev/null 2> "$T/nock.err"
[ $? -eq 2 ] || say "--no-checkpoint --resume is not a usage error"
exit $fail
