# Sourced by the Slurm tests: skip (77), saying why, where Slurm is absent.
# The tests install nothing: scripts/setup installs Slurm when run as root.
fail() { echo "FAIL: $*" >&2; exit 1; }

for c in slurmctld slurmd sbatch munged; do
    if ! command -v "$c" >/dev/null 2>&1; then
        echo "skip: Slurm is not installed ($c not found; scripts/setup installs slurmctld," \
             "slurmd, slurm-client and munge when run as root)"
        exit 77
    fi
done
