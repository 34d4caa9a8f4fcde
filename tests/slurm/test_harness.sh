#!/bin/sh
# The one-node cluster works: a 4-task array runs every task once with the
# array variables set, and sbatch --wait reports a failing task's exit code.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

out=$(mktemp -d /tmp/detrun-harness.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$here/slurm_local.sh" run sh -c '
    cd "$1"
    sbatch --wait --array=0-3 -o "$1/task-%a.out" \
        --wrap "echo task \$SLURM_ARRAY_TASK_ID of \$SLURM_ARRAY_TASK_COUNT" >/dev/null
    rc=0
    sbatch --wait --array=0-1 -o /dev/null \
        --wrap "exit \$((SLURM_ARRAY_TASK_ID == 1 ? 3 : 0))" >/dev/null || rc=$?
    echo "$rc" > "$1/failed.rc"
' sh "$out"

for i in 0 1 2 3; do
    got=$(cat "$out/task-$i.out")
    [ "$got" = "task $i of 4" ] || fail "task $i wrote '$got', expected 'task $i of 4'"
done
[ "$(cat "$out/failed.rc")" = 3 ] || fail "sbatch --wait returned $(cat "$out/failed.rc") for a task that exited 3"
echo "ok: 4-task array ran on the local cluster; a failing task's code came back"
