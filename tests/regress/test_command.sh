#!/bin/sh
# The regression features of the detrun command (docs/regression.md):
# - a run killed with SIGKILL at several moments (before any checkpoint, after
#   an epoch's checkpoint, after a finished fold, at plain moments) and
#   resumed ends with the fingerprints and results of an uninterrupted run,
#   without redoing finished folds;
# - a damaged checkpoint is refused with a message, not half-loaded;
# - --check exits 0 on its own golden and 3 on an altered one;
# - detrun diff: deterministic traces agree, fast ones part (exit 3).
# usage: test_command.sh DETRUN SCRIPT
set -u
DETRUN=$1
SCRIPT=$2
T=$(mktemp -d /tmp/detrun-command-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
say() { echo "FAIL: $*"; fail=1; }
# Large enough that a fold's checkpoint lives for several of wait_for's polls.
RUN="-t 2 -q --mode deterministic --repeats 1 --folds 3 --epochs 3 --limit 3000"

# The uninterrupted run.
"$DETRUN" $RUN -o "$T/full" --record "$T/full.golden" "$SCRIPT" > /dev/null || say "uninterrupted run"
grep -v '^#' "$T/full.golden" > "$T/full.fp"
cut -d, -f1-6 "$T/full/quick.csv" > "$T/full.csv"
[ "$(wc -l < "$T/full.fp")" -eq 13 ] || say "golden holds $(wc -l < "$T/full.fp") lines, want 3 folds x 4 + 1"

# Waits (up to 60 s) until a file matching the pattern exists in the cells folder.
# A checkpoint lives only while its fold runs (tens of milliseconds), so poll often.
wait_for() {
    i=0
    while [ $i -lt 6000 ]; do
        for f in "$1"/quick.cells/$2; do [ -e "$f" ] && return 0; done
        sleep 0.01
        i=$((i + 1))
    done
    return 1
}

n=0
for point in start ckpt record second-record 0.4 1.2; do
    n=$((n + 1))
    out="$T/k$n"
    "$DETRUN" $RUN -o "$out" "$SCRIPT" > /dev/null 2>&1 &
    pid=$!
    case $point in
        start) ;;
        ckpt) wait_for "$out" '*.ckpt' || say "$point: no checkpoint appeared" ;;
        record) wait_for "$out" '*-f0.json' || say "$point: no record appeared" ;;
        second-record) wait_for "$out" '*-f1.json' || say "$point: no record appeared" ;;
        *) sleep "$point" ;;
    esac
    kill -9 $pid 2> /dev/null
    wait $pid 2> /dev/null
    # Records of finished folds must survive the resume untouched.
    # (By name: with cells in parallel, records need not finish in plan order.)
    done_files=$(ls "$out"/quick.cells/*.json 2> /dev/null)
    before=$(cat $done_files < /dev/null 2> /dev/null | cksum)
    nbefore=$(ls "$out"/quick.cells/*.json 2> /dev/null | wc -l)
    # What a kill can leave beside a finished cell (its checkpoint, a temporary
    # file never renamed) must not survive the resume.
    if [ "$nbefore" -gt 0 ]; then
        done1=$(ls "$out"/quick.cells/*.json | head -n 1)
        printf 'stale' > "${done1%.json}.ckpt"
        printf 'stale' > "$done1.tmp"
    fi
    "$DETRUN" $RUN -o "$out" --resume --record "$out.golden" "$SCRIPT" > /dev/null \
        || say "$point: the resumed run failed"
    grep -v '^#' "$out.golden" > "$out.fp" 2> /dev/null
    cmp -s "$T/full.fp" "$out.fp" || say "$point: resumed fingerprints differ from the uninterrupted run's"
    cut -d, -f1-6 "$out/quick.csv" > "$out.csv" 2> /dev/null
    cmp -s "$T/full.csv" "$out.csv" || say "$point: resumed losses/accuracies differ"
    after=$(cat $done_files < /dev/null 2> /dev/null | cksum)
    [ "$nbefore" -eq 0 ] || [ "$before" = "$after" ] || say "$point: finished folds were redone"
    [ -z "$(ls "$out"/quick.cells/*.ckpt "$out"/quick.cells/*.tmp* 2> /dev/null)" ] \
        || say "$point: checkpoints or temporary files left after the run"
    echo "killed at $point: $nbefore folds were done"
done

# A damaged checkpoint is refused.
out="$T/damaged"
"$DETRUN" $RUN -o "$out" "$SCRIPT" > /dev/null 2>&1 &
pid=$!
wait_for "$out" '*.ckpt' || say "damaged: no checkpoint appeared"
kill -9 $pid 2> /dev/null
wait $pid 2> /dev/null
ckpt=$(ls "$out"/quick.cells/*.ckpt | head -n 1)
size=$(wc -c < "$ckpt")
printf 'X' | dd of="$ckpt" bs=1 seek=$((size / 2)) conv=notrunc 2> /dev/null
"$DETRUN" $RUN -o "$out" --resume "$SCRIPT" > /dev/null 2> "$T/damaged.err"
rc=$?
[ $rc -eq 1 ] || say "damaged checkpoint: exit $rc, want 1"
grep -q "checksum" "$T/damaged.err" || say "damaged checkpoint: no clear message: $(cat "$T/damaged.err")"

# Goldens: its own passes, an altered one fails with 3 and names the line.
"$DETRUN" $RUN -o "$T/check" --check "$T/full.golden" "$SCRIPT" > "$T/check.out"
rc=$?
[ $rc -eq 0 ] || say "--check on its own golden: exit $rc"
line=$(grep -n 'fold 1 epoch 1 ' "$T/full.golden" | cut -d: -f1)
fp=$(sed -n "${line}p" "$T/full.golden" | awk '{print $NF}')
rest=$(echo "$fp" | cut -c2-)
if [ "$(echo "$fp" | cut -c1)" = 0 ]; then alt=1$rest; else alt=0$rest; fi
# (its recorded options say --epochs 2 and no --seed: those are named)
sed -e "${line}s/$fp/$alt/" -e '/^# options /s/--epochs 3/--epochs 2/' "$T/full.golden" \
    > "$T/altered.golden"
"$DETRUN" $RUN -o "$T/check" --check "$T/altered.golden" "$SCRIPT" > "$T/check.out" 2> "$T/check.err"
rc=$?
[ $rc -eq 3 ] || say "--check on an altered golden: exit $rc, want 3"
grep -q "first difference: deterministic repeat 0 fold 1 epoch 1" "$T/check.err" \
    || say "--check does not name the first difference on stderr: $(cat "$T/check.err")"
grep -q "expected $alt" "$T/check.err" && grep -q "got      $fp" "$T/check.err" \
    || say "--check does not show expected and got"
grep -q "golden check" "$T/check.out" && say "--check's mismatch is in the report on stdout"
grep -q "options that differ from the golden's: --epochs 2 in the golden, 3 here$" "$T/check.err" \
    || say "--check does not name the option that differs: $(cat "$T/check.err")"
echo "deterministic repeat 0 fold 1 epoch 1 nothex" > "$T/bad.golden"
"$DETRUN" $RUN -o "$T/check" --check "$T/bad.golden" "$SCRIPT" > /dev/null 2> "$T/bad.err"
rc=$?
[ $rc -eq 1 ] && grep -q "bad.golden:1" "$T/bad.err" || say "a malformed golden: exit $rc, $(cat "$T/bad.err")"

# Traces: deterministic ones agree; fast ones at two threads part.
TR="-t 2 -q --folds 2 --epochs 1 --limit 400 --trace-values"
"$DETRUN" $TR --mode deterministic -o "$T/tr" --trace "$T/d1.trace" "$SCRIPT" > /dev/null || say "trace run"
"$DETRUN" $TR --mode deterministic -o "$T/tr" --trace "$T/d2.trace" "$SCRIPT" > /dev/null || say "trace run"
"$DETRUN" diff "$T/d1.trace" "$T/d2.trace" > "$T/diff.out"
rc=$?
[ $rc -eq 0 ] && grep -q "traces agree" "$T/diff.out" || say "deterministic traces: exit $rc, $(cat "$T/diff.out")"
# Fast mode parts only when the two threads really interleave their chunks; on a
# loaded machine one thread may do a whole short run alone, so the fast runs are
# longer and retried.
TRF="-t 2 -q --folds 2 --epochs 1 --limit 1000 --trace-values"
parted=0
for attempt in 1 2 3 4 5 6 7 8; do
    "$DETRUN" $TRF --mode fast -o "$T/tr" --trace "$T/f1.trace" "$SCRIPT" > /dev/null || say "trace run"
    "$DETRUN" $TRF --mode fast -o "$T/tr" --trace "$T/f2.trace" "$SCRIPT" > /dev/null || say "trace run"
    "$DETRUN" diff --dump "$T/dump" "$T/f1.trace" "$T/f2.trace" > "$T/diff.out"
    rc=$?
    if [ $rc -eq 3 ]; then parted=1; break; fi
done
[ $parted -eq 1 ] || say "fast traces never parted"
grep -q "first divergence" "$T/diff.out" && grep -q "tensor" "$T/diff.out" \
    && grep -q "largest absolute difference" "$T/diff.out" || say "diff output: $(cat "$T/diff.out")"
[ -s "$T/dump.a.f32" ] && [ -s "$T/dump.b.f32" ] || say "diff --dump wrote no tensors"
cat "$T/diff.out"
"$DETRUN" diff "$T/d1.trace" "$T/full.golden" > /dev/null 2> "$T/diff.err"
rc=$?
[ $rc -eq 1 ] && grep -q "not a detrun trace" "$T/diff.err" || say "diff of a non-trace: exit $rc"

[ $fail -eq 0 ] && echo "test_command: ok"
exit $fail
