#!/bin/sh
# detrun slurm's planning, without Slurm:  test_plan.sh DETRUN SOURCE_DIR
# --help names the options; --dry-run writes the plan and the job scripts
# (with the #SBATCH lines of --partition, --time, --cpus-per-task, --gres),
# prints the sbatch commands and submits nothing; a layer typo or a model
# that does not fit the data stops the planning before any submission. An
# sbatch on the PATH that only records its calls shows what was submitted.
set -eu
detrun=$1
src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
w=$(mktemp -d /tmp/detrun-plan.XXXXXX)
trap 'rm -rf "$w"' EXIT
quick=$src/experiments/quick.lua
mkdir "$w/bin"
printf '#!/bin/sh\necho "$@" >> "%s/submitted"\necho 42\n' "$w" > "$w/bin/sbatch"
chmod +x "$w/bin/sbatch"
PATH=$w/bin:$PATH
export PATH

"$detrun" slurm --help > "$w/help" || fail "detrun slurm --help exited non-zero"
for o in --shards --wait --dry-run --partition --time --cpus-per-task --gres; do
    grep -q -- "$o" "$w/help" || fail "detrun slurm --help does not explain $o"
done

"$detrun" slurm --dry-run --shards 2 --partition p1 --time 0:30:00 --cpus-per-task 3 \
    --gres gpu:1 -q --limit 300 --folds 2 --repeats 1 -o "$w/a" -- --account=acct "$quick" \
    > "$w/a.out" 2> "$w/a.err" || fail "dry run: $(cat "$w/a.err")"
[ ! -e "$w/submitted" ] || fail "the dry run submitted: $(cat "$w/submitted")"
[ "$(grep -c '^sbatch ' "$w/a.out")" = 2 ] || fail "dry run printed: $(cat "$w/a.out")"
grep -q '^sbatch .*--array=0-1 .*--account=acct .*quick-shards.sh$' "$w/a.out" ||
    fail "no array command: $(cat "$w/a.out")"
grep -q '^sbatch .*--dependency=afterok:ARRAY_JOB_ID .*quick-merge.sh$' "$w/a.out" ||
    fail "no merge command: $(cat "$w/a.out")"
grep -q "nothing submitted" "$w/a.out" || fail "the dry run does not say so"
[ -f "$w/a/shards/plan.json" ] || fail "the dry run wrote no plan"
sh=$w/a/slurm/quick-shards.sh merge=$w/a/slurm/quick-merge.sh
for l in "--partition=p1" "--time=0:30:00" "--cpus-per-task=3" "--gres=gpu:1"; do
    grep -qx "#SBATCH $l" "$sh" || fail "the task script lacks #SBATCH $l: $(cat "$sh")"
done
grep -qx "#SBATCH --partition=p1" "$merge" && grep -qx "#SBATCH --time=0:30:00" "$merge" ||
    fail "the merge script lacks the partition or time: $(cat "$merge")"
grep -q "gres" "$merge" && fail "the merge script asks for the task's resources"
# #SBATCH lines count only before the first command.
awk '/^#SBATCH/ && seen { exit 1 } /^[^#]/ { seen = 1 }' "$sh" || fail "#SBATCH after a command"

# Broken models stop the planning: nothing written, nothing submitted.
mk() {   # NAME LAYER: the quick network with LAYER first
    cat > "$w/$1.lua" <<EOS
local dr = require "detrun"
return dr.experiment { name = "$1", data = dr.data.mnist().train, limit = 200, folds = 2,
  model = function()
    return dr.nn.sequential {
      $2,
      dr.nn.flatten(),
      dr.nn.dense { units = 10, activation = "softmax" } }
  end }
EOS
}
mk typo 'dr.nn.conv2d { filters = 2, kernel = 3, activaton = "relu" }'
mk big 'dr.nn.conv2d { filters = 2, kernel = 40 }'
for s in typo big; do
    rc=0
    "$detrun" slurm -o "$w/$s" "$w/$s.lua" > "$w/$s.out" 2> "$w/$s.err" || rc=$?
    [ "$rc" = 1 ] || fail "$s: detrun slurm exited $rc, want 1"
    [ ! -e "$w/submitted" ] || fail "$s: submitted: $(cat "$w/submitted")"
    [ ! -e "$w/$s/slurm" ] || fail "$s: job scripts written"
    grep -q "$s.lua:5: " "$w/$s.err" || fail "$s: the error does not name the line: $(cat "$w/$s.err")"
    grep -q "traceback" "$w/$s.err" && fail "$s: a traceback for a script error: $(cat "$w/$s.err")"
done
grep -q "unknown option 'activaton'" "$w/typo.err" || fail "typo: $(cat "$w/typo.err")"
grep -q "conv2d_1: kernel 40x40" "$w/big.err" || fail "big: $(cat "$w/big.err")"

# A real submission goes through sbatch (here the recording one).
"$detrun" slurm --shards 2 --time 5 -q --limit 300 --folds 2 --repeats 1 -o "$w/c" "$quick" \
    > "$w/c.out" 2>&1 || fail "submission: $(cat "$w/c.out")"
[ "$(wc -l < "$w/submitted")" = 2 ] || fail "submitted: $(cat "$w/submitted")"

# Usage errors.
rc=0; "$detrun" slurm --time "1 day" "$quick" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--time with a space: exit $rc, want 2"
rc=0; "$detrun" --dry-run "$quick" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "--dry-run without slurm: exit $rc, want 2"
echo "ok: detrun slurm plans, dry-runs and refuses broken models"
