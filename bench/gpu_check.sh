#!/usr/bin/env bash
# bench/gpu_check.sh OUTDIR - the CUDA backend's checks and timings, on a machine with a GPU.
#
# Configures and builds detrun with -DDETRUN_CUDA=ON, lists the devices, runs
# the GPU tests, runs a small seed experiment (experiments/quick.lua) 3 times
# in each mode and kernel flavour and compares fingerprints (portable ==
# CPU, deterministic: one fingerprint, fast: how many), times one full seed
# CV run (experiments/seed_mnist.lua, 10 folds x 10 epochs, 1 repeat) per
# flavour and mode, and times the PyTorch peer (bench/torch_seed.py) on the
# same GPU. Everything goes to OUTDIR/gpu_check.log; the table, also in
# OUTDIR/summary.txt, is printed last.
#
# A machine without the Debian packages can bring them: .deb files in
# .carry/debs are unpacked into a private prefix (.carry/sysroot), data in
# .carry/data is used when present, and cuDNN is looked for beside the CUDA
# toolkit, under CUDNN_ROOT and in Python's nvidia-cudnn package.
#
# Environment: DETRUN_BUILD (build folder, default build-gpu-check),
# CUDA_ARCH (default 90), TORCH_FOLDS (PyTorch folds timed per mode, default
# 3), CHECK_BUDGET (seconds; steps that would not fit are skipped, default 460),
# CHECK_STEPS (which parts run, default "tests quick seed torch"), SEED_CONFIGS
# (the full runs, default "cudnn deterministic,cudnn fast,portable deterministic,portable fast").
set -u
OUT=${1:?usage: bench/gpu_check.sh OUTDIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
BUILD=${DETRUN_BUILD:-$ROOT/build-gpu-check}
CARRY=$ROOT/.carry
JOBS=$(nproc)
LOG=$OUT/gpu_check.log
SUMMARY=$OUT/summary.txt
BUDGET=${CHECK_BUDGET:-460}
TORCH_FOLDS=${TORCH_FOLDS:-3}
cd "$ROOT"
START=$(date +%s)
: >"$LOG"
: >"$SUMMARY"

want() { case " ${CHECK_STEPS:-tests quick seed torch} " in *" $1 "*) return 0 ;; esac; return 1; }
note() { echo "$*" | tee -a "$SUMMARY" >>"$LOG"; }
elapsed() { echo $(($(date +%s) - START)); }
# run NAME LIMIT CMD...: logs the command's output under a header, keeps it in
# $OUT/last.out for parsing, sets RC and SECS. Skipped (RC=125) when the
# budget has less than LIMIT/2 seconds left.
run() {
    local name=$1 limit=$2
    shift 2
    local left=$((BUDGET - $(elapsed)))
    if [ "$left" -lt $((limit / 2)) ]; then
        RC=125 SECS=0
        echo "==== $name: skipped, ${left}s of the budget left" >>"$LOG"
        : >"$OUT/last.out"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "==== $name: $* (limit ${limit}s, at $(elapsed)s)" >>"$LOG"
    local t0 t1
    t0=$(date +%s.%N)
    timeout "$limit" "$@" >"$OUT/last.out" 2>&1
    RC=$?
    t1=$(date +%s.%N)
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    cat "$OUT/last.out" >>"$LOG"
    echo "==== $name: exit $RC, ${SECS}s" >>"$LOG"
}

# ---- environment -------------------------------------------------------------
if [ -d "$CARRY/debs" ] && { [ -n "${DETRUN_CARRY_DEPS:-}" ] ||
    ! pkg-config --exists lua5.4 libxxhash libcjson zlib 2>/dev/null; }; then
    SYSROOT=$CARRY/sysroot
    if [ ! -d "$SYSROOT/usr" ]; then
        mkdir -p "$SYSROOT"
        for d in "$CARRY"/debs/*.deb; do
            if command -v dpkg >/dev/null; then
                dpkg -x "$d" "$SYSROOT"
            else
                (cd "$SYSROOT" && ar p "$d" "$(ar t "$d" | grep '^data\.tar')" | tar -x -J 2>/dev/null ||
                    ar p "$d" "$(ar t "$d" | grep '^data\.tar')" | tar -x)
            fi
        done
    fi
    MULTI=$SYSROOT/usr/lib/x86_64-linux-gnu
    export PKG_CONFIG_SYSROOT_DIR=$SYSROOT
    export PKG_CONFIG_LIBDIR=$MULTI/pkgconfig:$SYSROOT/usr/share/pkgconfig
    # The prefix's /usr/include is not the system's: keep its -I and -L.
    export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
    export LD_LIBRARY_PATH=$MULTI${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    command -v pkg-config >/dev/null || export PKG_CONFIG=$SYSROOT/usr/bin/pkgconf
    export PATH=$PATH:$SYSROOT/usr/bin   # lua5.4, which the Lua tests' configure looks for
    # Debian's multiarch headers (lua5.4-deb-multiarch.h) sit where gcc looks only in /usr.
    export CPATH=$SYSROOT/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}
    echo "dependencies from $SYSROOT" >>"$LOG"
fi
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
if [ -z "${DETRUN_DATA:-}" ]; then
    if [ -f "$CARRY/data/train-images-idx3-ubyte.gz" ]; then
        export DETRUN_DATA=$CARRY/data
    else
        export DETRUN_DATA=/usr/share/datasets/fashion-mnist
    fi
fi
CMAKE_CUDNN=()
PYCUDNN=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
if [ -z "${CUDNN_ROOT:-}" ] && [ -n "$PYCUDNN" ] && [ -d "$PYCUDNN/lib" ]; then
    CUDNN_ROOT=$PYCUDNN
fi
if [ -n "${CUDNN_ROOT:-}" ]; then
    CMAKE_CUDNN+=("-DCUDNN_ROOT=$CUDNN_ROOT")
    export LD_LIBRARY_PATH=$CUDNN_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    # Python's package may ship the library without the headers.
    if [ ! -f "$CUDNN_ROOT/include/cudnn.h" ] && [ -f "$CARRY/cudnn/include/cudnn.h" ]; then
        CMAKE_CUDNN+=("-DDETRUN_CUDNN_INCLUDE_DIR=$CARRY/cudnn/include")
    fi
fi
{
    echo "root $ROOT, build $BUILD, data $DETRUN_DATA, cuDNN ${CUDNN_ROOT:-beside the toolkit}"
    nvidia-smi -L 2>&1
    nvcc --version 2>&1 | tail -1
    cmake --version 2>&1 | head -1
} >>"$LOG"

# ---- build -------------------------------------------------------------------
run configure 120 cmake -S "$ROOT" -B "$BUILD" -DDETRUN_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" "${CMAKE_CUDNN[@]}"
[ "$RC" = 0 ] && run build 300 cmake --build "$BUILD" -j"$JOBS" --target detrun_cli \
    test_gpu_devices test_gpu_kernels test_gpu_train
BUILD_RC=$RC
note "build: exit $BUILD_RC (${SECS}s)"
DETRUN=$BUILD/detrun
if [ "$BUILD_RC" != 0 ] || [ ! -x "$DETRUN" ]; then
    note "build failed: see $LOG"
    cat "$SUMMARY"
    exit 1
fi

run devices 30 "$DETRUN" --devices
note "$(cat "$OUT/last.out")"

# ---- tests -------------------------------------------------------------------
want tests && for t in test_gpu_devices test_gpu_kernels test_gpu_train; do
    run "$t" 240 "$BUILD/tests/gpu/$t"
    case $RC in
        0) r=pass ;; 77) r=skip ;; 125) r=skipped ;; 124) r="timeout" ;; *) r="FAIL ($RC)" ;;
    esac
    note "$(printf '%-22s %s (%ss)' "$t" "$r" "$SECS")"
done

# ---- fingerprints of a small seed run ------------------------------------------
# Final fingerprints of the repeats, one a line ("MODE repeat N: FP").
fingerprints() { grep -E "^$1 repeat [0-9]+: [0-9a-f]{32}$" "$OUT/last.out" | awk '{ print $4 }'; }
count() { sort -u | grep -c .; }

want quick && run quick_cpu 120 "$DETRUN" -t "$JOBS" -m deterministic --repeats 1 experiments/quick.lua
CPU_FP=$(fingerprints deterministic | head -1)
want quick && note "quick cpu deterministic:        ${CPU_FP:-none} (${SECS}s)"
want quick && for k in portable cudnn; do
    for m in deterministic fast; do
        run "quick_${k}_$m" 120 "$DETRUN" --device cuda --gpu-kernels "$k" -m "$m" --repeats 3 \
            experiments/quick.lua
        fps=$(fingerprints "$m")
        n=$(echo "$fps" | count)
        extra=""
        if [ "$k" = portable ] && [ "$m" = deterministic ]; then
            if [ -n "$fps" ] && [ "$(echo "$fps" | sort -u)" = "$CPU_FP" ]; then
                extra=" == CPU"
            else
                extra=" != CPU"
            fi
        fi
        note "$(printf 'quick %-8s %-13s 3 repeats: %s distinct%s (%ss, exit %s)' "$k" "$m" \
            "$n" "$extra" "$SECS" "$RC")"
    done
done

# ---- one full seed CV run per flavour and mode, and the PyTorch peer -----------
# (PyTorch runs before the least important detrun run, so the budget keeps it.)
TDET="" TDEF=""
torch_peer() {
    TORCH_DONE=1
    run torch 200 python3 "$ROOT/bench/torch_seed.py" --data "$DETRUN_DATA" --folds "$TORCH_FOLDS"
    grep -E "^torch |seconds=" "$OUT/last.out" >>"$SUMMARY"
    note "PyTorch peer: exit $RC (${SECS}s)"
    # The last line of each mode: the first is the warm-up.
    TDET=$(awk '/^deterministic seconds=/ { sub("seconds=", "", $2); t = $2 } END { print t }' "$OUT/last.out")
    TDEF=$(awk '/^default seconds=/ { sub("seconds=", "", $2); t = $2 } END { print t }' "$OUT/last.out")
}
declare -A TIME
IFS=, read -r -a CONFIGS <<<"${SEED_CONFIGS:-cudnn deterministic,cudnn fast,portable deterministic,portable fast}"
want seed || CONFIGS=()
for cfg in "${CONFIGS[@]}"; do
    set -- $cfg
    [ "$cfg" = "portable fast" ] && want torch && torch_peer
    run "seed_$1_$2" 150 "$DETRUN" --device cuda --gpu-kernels "$1" -m "$2" --repeats 1 \
        experiments/seed_mnist.lua
    fp=$(fingerprints "$2" | head -1)
    # The command's own timing of the mode (training and evaluation only).
    own=$(awk -v m="$2" '$1 == m && NF >= 6 && $5 ~ /^[0-9.]+$/ { print $5 }' "$OUT/last.out" | tail -1)
    [ "$RC" = 0 ] && TIME["$1 $2"]=$SECS
    note "$(printf 'seed CV %-8s %-13s wall %6ss, own %6ss, exit %s  %s' "$1" "$2" "$SECS" \
        "${own:--}" "$RC" "${fp:-}")"
done
[ -z "${TORCH_DONE:-}" ] && want torch && torch_peer


# ---- the table ----------------------------------------------------------------------
{
    echo
    echo "seconds per fold (10 epochs, 54000 rows); detrun: one 10-fold run / 10, PyTorch: $TORCH_FOLDS folds / $TORCH_FOLDS"
    printf '%-34s %10s %14s\n' "run" "s/fold" "vs PyTorch det"
    per_fold() { awk -v s="$1" -v f="$2" 'BEGIN { if (s == "") print "-"; else printf "%.2f", s / f }'; }
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
    TD=$(per_fold "$TDET" "$TORCH_FOLDS")
    for cfg in "cudnn deterministic" "cudnn fast" "portable deterministic" "portable fast"; do
        pf=$(per_fold "${TIME[$cfg]:-}" 10)
        printf '%-34s %10s %14s\n' "detrun cuda $cfg" "$pf" "$(ratio "$pf" "$TD")"
    done
    printf '%-34s %10s %14s\n' "PyTorch deterministic" "$TD" "$(ratio "$TD" "$TD")"
    TF=$(per_fold "$TDEF" "$TORCH_FOLDS")
    printf '%-34s %10s %14s\n' "PyTorch default" "$TF" "$(ratio "$TF" "$TD")"
} >>"$SUMMARY"
rm -f "$OUT/last.out"
echo "total $(elapsed)s" >>"$SUMMARY"
cat "$SUMMARY"
