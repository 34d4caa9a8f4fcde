#!/bin/sh
# The locks of a shared results folder, without Slurm:
#   test_shard_locks.sh DETRUN SOURCE_DIR
# A shard holds its own lock (OUT/.detrun.shard-K-of-N.lock): the same shard
# started again on the folder is refused naming the process that holds it,
# while another shard of the run shares the folder; detrun merge and a whole
# run take the folder's lock and are refused while a shard holds its own,
# naming that shard's lock file and process; once the shards end, the merge
# goes through. The held shards wait in model() for a file the test makes
# (tests/slurm/waiting.lua), so nothing here depends on timing.
set -u
detrun=$1
src=$2
script=$src/tests/slurm/waiting.lua
w=$(mktemp -d /tmp/detrun-shard-locks.XXXXXX)
DETRUN_TEST_GO=$w/go
export DETRUN_TEST_GO
pids=""
trap 'touch "$w/go"; for p in $pids; do wait "$p"; done; rm -rf "$w"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }
set -- -q -t 1 -j 1 -o "$w/out"

# Waits (up to 60 s) until the lock file $1 holds a process id.
held() {
    i=0
    while [ $i -lt 1200 ]; do
        [ -s "$1" ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

"$detrun" --shard 0/2 "$@" "$script" > "$w/a.out" 2>&1 &
a=$!
pids="$a"
held "$w/out/.detrun.shard-0-of-2.lock" || fail "shard 0/2 took no lock"

# The same shard again: refused before any work, naming the holder.
rc=0
"$detrun" --shard 0/2 "$@" "$script" > /dev/null 2> "$w/again.err" || rc=$?
[ $rc -eq 1 ] || fail "shard 0/2 twice: exit $rc"
grep -q "is in use by another run (process $a holds $w/out/.detrun.shard-0-of-2.lock)" \
    "$w/again.err" || fail "shard 0/2 twice said: $(cat "$w/again.err")"

# The whole folder's lock: merge, and a run that is not a shard, are refused
# naming the shard's lock.
rc=0
"$detrun" merge -q "$w/out" > /dev/null 2> "$w/merge.err" || rc=$?
[ $rc -eq 1 ] || fail "merge while a shard runs: exit $rc"
grep -q "is in use by another run (process $a holds $w/out/.detrun.shard-0-of-2.lock)" \
    "$w/merge.err" || fail "merge while a shard runs said: $(cat "$w/merge.err")"
rc=0
"$detrun" "$@" "$script" > /dev/null 2> "$w/whole.err" || rc=$?
[ $rc -eq 1 ] && grep -q "process $a holds $w/out/.detrun.shard-0-of-2.lock" "$w/whole.err" \
    || fail "a whole run while a shard runs: exit $rc, $(cat "$w/whole.err")"

# Another shard of the run shares the folder.
"$detrun" --shard 1/2 "$@" "$script" > "$w/b.out" 2>&1 &
b=$!
pids="$a $b"
held "$w/out/.detrun.shard-1-of-2.lock" || fail "shard 1/2 took no lock beside shard 0/2"
kill -0 "$b" 2> /dev/null || fail "shard 1/2 ended while shard 0/2 runs: $(cat "$w/b.out")"

touch "$w/go"
wait "$a" || fail "shard 0/2: $(cat "$w/a.out")"
wait "$b" || fail "shard 1/2: $(cat "$w/b.out")"
pids=""
"$detrun" merge -q "$w/out" || fail "merge after the shards ended"
[ -e "$w/out/waiting.json" ] || fail "merge wrote no results"
# A merge holds the whole folder: a shard started meanwhile would be refused;
# here no merge runs, so a shard may start again (and finds its cell done).
"$detrun" --shard 0/2 "$@" "$script" > "$w/c.out" 2>&1 || fail "shard 0/2 after the merge: $(cat "$w/c.out")"
[ $failed -eq 0 ] && echo "ok: one process per shard, shards share, merge waits for all"
exit $failed
