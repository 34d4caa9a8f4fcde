# Sourced by the Slurm tests: skip (77) where Slurm is absent and cannot be
# installed, install it where we are root (as CI is).
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! command -v slurmctld >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "skip: Slurm is not installed and installing it needs root" >&2
        exit 77
    fi
    "$here/slurm_local.sh" install >/dev/null || fail "could not install Slurm"
fi
