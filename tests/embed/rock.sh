#!/usr/bin/env bash
# rock.sh SRC WORK: the rockspec builds with Debian's luarocks into a local
# tree (`luarocks make --tree`), and the stock lua5.4 requires the module
# from that tree with the paths `luarocks path` gives. Skips (77) where
# luarocks is absent (scripts/setup installs it).
set -euo pipefail
src=$1 work=$2
command -v luarocks >/dev/null || { echo "skip: luarocks is not installed (scripts/setup installs it)"; exit 77; }
rm -rf "$work"
mkdir -p "$work/src"
# A copy of the sources: luarocks make builds in the folder it runs in.
tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$work/src" -xf -
version=$(sed -n 's/^project(detrun VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
spec=rockspecs/detrun-$version-1.rockspec
[ -f "$work/src/$spec" ] || { echo "no $spec for version $version" >&2; exit 1; }
(cd "$work/src" && luarocks --lua-version 5.4 make --tree "$work/tree" "$spec") >"$work/make.log" 2>&1 ||
  { tail -n 30 "$work/make.log" >&2; echo "luarocks make failed" >&2; exit 1; }
eval "$(luarocks --lua-version 5.4 --tree "$work/tree" path)"
got=$(env -u LD_LIBRARY_PATH lua5.4 -e '
  local dr = require "detrun"
  local m <close> = dr.nn.sequential { input = { 1, 4, 4 }, dr.nn.flatten(),
                                       dr.nn.dense { units = 3, activation = "softmax" } }
  m:compile { seed = 7 }
  assert(#m:fingerprint() == 32)
  io.write(dr.version, " ", package.searchpath("detrun", package.cpath))')
case $got in
  "$version $work/tree/"*) ;;
  *) echo "require 'detrun' from the rock gave '$got', want version $version from $work/tree" >&2; exit 1 ;;
esac
cmd=$(find "$work/tree" -path '*/bin/detrun' -print -quit)
[ -n "$cmd" ] || { echo "the rock installed no detrun command" >&2; exit 1; }
out=$(env -u LD_LIBRARY_PATH "$cmd" --version)
[[ $out == *"$version"* ]] || { echo "the rock's detrun --version: '$out'" >&2; exit 1; }
echo "rock: $got; $out"
