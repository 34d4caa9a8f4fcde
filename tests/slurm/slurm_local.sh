#!/bin/sh
# slurm_local.sh - a real one-node Slurm cluster on localhost, for tests and
# for trying `detrun slurm` on a workstation.
#
#   slurm_local.sh install            says how to install Slurm (scripts/setup does)
#   slurm_local.sh run CMD [ARG...]   start munged, slurmctld and slurmd in a
#                                     temporary folder, run CMD with SLURM_CONF
#                                     pointing at that cluster, stop the daemons
#                                     and exit with CMD's status
#
# Everything the cluster writes (key, socket, state, spool, logs) lives in the
# temporary folder, removed afterwards unless DETRUN_SLURM_KEEP=1. Ports are
# derived from the process id, so parallel runs do not collide. The daemons
# run as root (Slurm's jobs then run as root too): this is a test cluster.
set -eu

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

install_packages() {
    die "Slurm and munge are installed by scripts/setup (as root): slurmctld slurmd slurm-client munge"
}

# Runs until the cluster answers with an idle node, or fails after ~30 s.
wait_ready() {
    i=0
    while [ $i -lt 150 ]; do
        for p in $MUNGE_PID $CTLD_PID $SLURMD_PID; do
            kill -0 "$p" 2>/dev/null || { show_logs; die "a daemon exited at start-up (see logs above)"; }
        done
        state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
        case "$state" in idle*|mixed*|allocated*) return 0 ;; esac
        sleep 0.2; i=$((i + 1))
    done
    show_logs; die "the cluster did not come up within 30 s (node state '${state:-none}')"
}

show_logs() {
    for f in "$DIR"/munged.log "$DIR"/slurmctld.log "$DIR"/slurmd.log; do
        [ -f "$f" ] && { echo "---- $f" >&2; tail -n 20 "$f" >&2; }
    done
    return 0
}

stop() {
    set +e
    for p in $SLURMD_PID $CTLD_PID $MUNGE_PID; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "${DETRUN_SLURM_KEEP:-0}" = 1 ]; then
        echo "slurm_local.sh: kept $DIR" >&2
    else
        rm -rf "$DIR"
    fi
}

start() {
    for c in munged slurmctld slurmd sbatch sinfo; do
        command -v "$c" >/dev/null 2>&1 || die "$c not found: scripts/setup installs it (as root)"
    done
    DIR=$(mktemp -d /tmp/detrun-slurm.XXXXXX)
    chmod 755 "$DIR"
    MUNGE_PID= CTLD_PID= SLURMD_PID=
    trap stop EXIT
    trap 'exit 130' INT TERM

    dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge.key"
    SOCK="$DIR/munge.sock"
    munged --force --foreground --key-file="$DIR/munge.key" --socket="$SOCK" \
        --pid-file="$DIR/munged.pid" --seed-file="$DIR/munged.seed" \
        --log-file="$DIR/munged.log" 2>>"$DIR/munged.log" &
    MUNGE_PID=$!

    base=$((20000 + ($$ % 20000) * 2))
    cpus=$(nproc)
    cat > "$DIR/slurm.conf" <<CONF
ClusterName=detrun
SlurmctldHost=localhost
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=4
SchedulerParameters=batch_sched_delay=0,sched_interval=1
NodeName=localhost CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    mkdir -p "$DIR/state" "$DIR/spool"
    export SLURM_CONF="$DIR/slurm.conf"

    # munged must be listening before Slurm authenticates anything.
    i=0
    while [ ! -S "$SOCK" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    [ -S "$SOCK" ] || { show_logs; die "munged did not create $SOCK"; }

    slurmctld -D -f "$SLURM_CONF" -L "$DIR/slurmctld.log" 2>>"$DIR/slurmctld.log" &
    CTLD_PID=$!
    slurmd -D -N localhost -f "$SLURM_CONF" -L "$DIR/slurmd.log" 2>>"$DIR/slurmd.log" &
    SLURMD_PID=$!
    wait_ready
}

case "${1:-}" in
    install)
        install_packages ;;
    run)
        shift
        [ $# -gt 0 ] || die "usage: $0 run CMD [ARG...]"
        start
        rc=0
        "$@" || rc=$?
        [ "$rc" = 0 ] || show_logs
        exit "$rc" ;;
    *)
        die "usage: $0 install | $0 run CMD [ARG...]" ;;
esac
