#!/usr/bin/env bash
# The embedding tests, against an installed detrun:
#   embed.sh install      BUILD WORK   cmake --install into WORK/prefix
#   embed.sh pkgconfig    SRC WORK     hosts built with pkg-config (shared, static)
#   embed.sh find_package SRC WORK     hosts built by a CMake project with find_package
#   embed.sh leaks        SRC WORK     a host under valgrind (LeakSanitizer in a sanitizer build)
#   embed.sh installed    SRC WORK     the installed command runs an experiment and the Lua
#                                      module loads with the documented LUA_CPATH, neither
#                                      with LD_LIBRARY_PATH; the man page lists every option
#                                      of --help and slurm --help; the core library does not
#                                      link Lua
# Every host run must pass its own checks and print the same fingerprints as
# the first run (a second process, another build, another link).
# DETRUN_SANITIZE=ON in the environment: hosts are built with the sanitizers.
set -euo pipefail
mode=$1 dir=$2 work=$3   # dir: the build folder to install, else this folder
prefix=$work/prefix

if [ "$mode" = install ]; then
  rm -rf "$work"
  mkdir -p "$work"
  cmake --install "$dir" --prefix "$prefix" >"$work/install.log"
  exit 0
fi

pc=$(find "$prefix" -name detrun.pc -print -quit)
[ -n "$pc" ] || { echo "no detrun.pc under $prefix" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir detrun)
san=()
[ "${DETRUN_SANITIZE:-OFF}" = ON ] && san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
cflags=(-std=c11 -Wall -Wextra -Werror "${san[@]}")

# Runs a host; its output must match the reference (the first run's).
check_run() {
  local name=$1
  shift
  env -u LD_LIBRARY_PATH "$@" >"$work/$name.out"
  grep -Eq '^script [0-9a-f]{32}$' "$work/$name.out" || { echo "$name: no script fingerprint" >&2; exit 1; }
  grep -Eq '^c-api [0-9a-f]{32}$' "$work/$name.out" || { echo "$name: no c-api fingerprint" >&2; exit 1; }
  # The first run to get here (tests run in parallel) becomes the reference.
  if ! ln "$work/$name.out" "$work/reference.out" 2>/dev/null; then
    diff -u "$work/reference.out" "$work/$name.out" || { echo "$name: fingerprints differ" >&2; exit 1; }
  fi
  cat "$work/$name.out"
}

build_pkgconfig() {   # OUTPUT [--static]
  local out=$1 static=${2:-}
  if [ -z "$static" ]; then
    cc "${cflags[@]}" "$dir/host.c" -o "$out" $(pkg-config --cflags --libs detrun-lua lua5.4) \
       -Wl,-rpath,"$libdir"
  else
    local libs
    libs=$(pkg-config --static --libs detrun-lua lua5.4 |
           sed -e 's/\(^\| \)-ldetrun-lua\( \|$\)/\1-l:libdetrun-lua.a\2/' \
               -e 's/\(^\| \)-ldetrun\( \|$\)/\1-l:libdetrun.a\2/')
    cc "${cflags[@]}" "$dir/host.c" -o "$out" $(pkg-config --cflags detrun-lua lua5.4) $libs
  fi
}

case $mode in
pkgconfig)
  build_pkgconfig "$work/host_pc_shared"
  build_pkgconfig "$work/host_pc_static" --static
  if readelf -d "$work/host_pc_static" | grep 'libdetrun\(-lua\)\?\.so'; then
    echo "the static host needs libdetrun.so" >&2
    exit 1
  fi
  check_run pc_shared_1 "$work/host_pc_shared"
  check_run pc_shared_2 "$work/host_pc_shared"
  check_run pc_static "$work/host_pc_static"
  ;;
find_package)
  cmake -S "$dir/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS="${san[*]}" >"$work/consumer.log"
  cmake --build "$work/consumer" >>"$work/consumer.log"
  check_run cmake_shared "$work/consumer/host_shared"
  check_run cmake_static "$work/consumer/host_static"
  ;;
leaks)
  build_pkgconfig "$work/host_leaks"
  if [ "${DETRUN_SANITIZE:-OFF}" = ON ]; then
    ASAN_OPTIONS=detect_leaks=1 check_run leaks "$work/host_leaks"
  else
    command -v valgrind >/dev/null || { echo "valgrind is missing (scripts/setup installs it)" >&2; exit 1; }
    check_run leaks valgrind -q --leak-check=full --error-exitcode=1 "$work/host_leaks"
  fi
  ;;
installed)
  version=$(pkg-config --modversion detrun)
  got=$(env -u LD_LIBRARY_PATH "$prefix/bin/detrun" --version)
  [[ $got == *"$version"* ]] || { echo "detrun --version: '$got', want $version" >&2; exit 1; }
  # The installed command runs a whole (small) experiment from its prefix.
  env -u LD_LIBRARY_PATH "$prefix/bin/detrun" -q -t 1 --limit 200 --folds 2 --epochs 1 \
      -o "$work/run" "$dir/../../experiments/quick.lua" >"$work/run.out" 2>"$work/run.err" ||
    { cat "$work/run.err" >&2; echo "the installed detrun failed to run an experiment" >&2; exit 1; }
  grep -q "quick" "$work/run.out" || { echo "installed detrun: no report" >&2; exit 1; }
  module=$(find "$prefix" -path '*/lua/5.4/detrun.so' -print -quit)
  [ -n "$module" ] || { echo "no lua/5.4/detrun.so under $prefix" >&2; exit 1; }
  preload=()   # the stock lua5.4 is not instrumented: load the sanitizer runtime first
  [ "${DETRUN_SANITIZE:-OFF}" = ON ] && preload=("LD_PRELOAD=$(cc -print-file-name=libasan.so)")
  # What the README's Install section says a Lua user sets at this prefix.
  got=$(env -u LD_LIBRARY_PATH "${preload[@]}" LUA_CPATH="$(dirname "$module")/?.so;;" lua5.4 -e "
    local dr = require 'detrun'
    io.write(dr.version)")
  [ "$got" = "$version" ] || { echo "require 'detrun' gives version '$got', want $version" >&2; exit 1; }
  core=$(pkg-config --variable=libdir detrun)/libdetrun.so
  if readelf -d "$core" | grep -q 'liblua'; then
    echo "$core links Lua: the core must not" >&2
    exit 1
  fi
  # libdetrun-lua.so finds libdetrun.so beside it: a host's RUNPATH is not
  # searched for the dependencies of its libraries.
  readelf -d "$(pkg-config --variable=libdir detrun)/libdetrun-lua.so" | grep -q 'R.*PATH.*\$ORIGIN' ||
    { echo "libdetrun-lua.so has no \$ORIGIN run path" >&2; exit 1; }
  # The man page: installed, and every option of --help is in it.
  page=$(find "$prefix" -path '*/man1/detrun.1' -print -quit)
  [ -n "$page" ] || { echo "no man1/detrun.1 under $prefix" >&2; exit 1; }
  sed 's/\\-/-/g' "$page" >"$work/man.txt"
  for opt in $({ "$prefix/bin/detrun" --help; "$prefix/bin/detrun" slurm --help; } |
               grep -E '^ +-' | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$opt\b" "$work/man.txt" || { echo "the man page lacks $opt" >&2; exit 1; }
  done
  if command -v man >/dev/null; then
    warn=$(man -l --warnings "$page" 2>&1 >/dev/null) || true
    [ -z "$warn" ] || { echo "man $page: $warn" >&2; exit 1; }
  fi
  echo "detrun $version: command, man page and Lua module installed"
  ;;
*)
  echo "embed.sh: unknown mode $mode" >&2
  exit 2
  ;;
esac
