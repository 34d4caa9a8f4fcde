#!/usr/bin/env bash
# check_symbols.sh LIB HEADER... [+SYMBOL...]
# The dynamic symbols LIB defines must be exactly the DETRUN_API functions
# declared in the HEADERs (plus each +SYMBOL): nothing undeclared leaks out of
# the shared object, and nothing declared is missing from it.
set -euo pipefail
lib=$1
shift
declared=$(mktemp) exported=$(mktemp)
trap 'rm -f "$declared" "$exported"' EXIT
{
  for h in "$@"; do
    case $h in
    +*) echo "${h#+}" ;;
    *)  # the identifier right before the first '(' of each DETRUN_API line
        grep -v '^[[:space:]]*#' "$h" |
          sed -n 's/.*DETRUN_API[^(]*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' ;;
    esac
  done
} | sort -u >"$declared"
nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u >"$exported"
[ -s "$declared" ] || { echo "no DETRUN_API declarations found in $*" >&2; exit 1; }
status=0
if extra=$(comm -13 "$declared" "$exported") && [ -n "$extra" ]; then
  echo "$lib exports symbols that no public header declares:" >&2
  sed 's/^/  /' <<<"$extra" >&2
  status=1
fi
if missing=$(comm -23 "$declared" "$exported") && [ -n "$missing" ]; then
  echo "$lib lacks symbols that the public headers declare:" >&2
  sed 's/^/  /' <<<"$missing" >&2
  status=1
fi
[ $status -eq 0 ] && echo "$(basename "$lib"): $(wc -l <"$exported") symbols, as declared"
exit $status
