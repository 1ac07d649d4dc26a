#!/usr/bin/env bash
# Installs and configures the peers stack is measured against (runc, crun,
# rootful podman, podman-compose, Docker 20.10 and docker-compose 1.29,
# skopeo, umoci, iperf3, hyperfine) and the profilers (perf, strace) on a Debian 12 host with
# the cgroup v1 + empty unified v2 layout. Run as root. Idempotent.
#
# What this host needs, and why:
# - podman's default RLIMIT_NPROC (1048576) is above what podman itself keeps
#   (32768), and root here has no CAP_SYS_RESOURCE, so the OCI runtime cannot
#   raise it: pin nproc and nofile to values within the hard limits.
# - cgroupfs, not systemd, as the cgroup manager (no systemd here).
# - crun 1.8 refuses the hybrid v1 + unified layout: run crun-based peers
#   inside `unshare -m` with /sys/fs/cgroup/unified unmounted (see crun_env).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends podman runc crun skopeo umoci iperf3 hyperfine busybox-static \
    docker.io docker-compose python3-venv linux-perf strace >/dev/null
# podman-compose from PyPI (Debian 12's 1.0.3 predates depends_on conditions),
# in a venv of its own: bench/engine/run.py looks for it there.
[ -x /opt/podman-compose/bin/podman-compose ] || {
    python3 -m venv /opt/podman-compose
    /opt/podman-compose/bin/pip install -q podman-compose
}

mkdir -p /etc/containers
cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

# The busybox fixture as a podman image, for side-by-side runs.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
"$(dirname "$0")/../tests/fixtures/busybox-rootfs.sh" "$root/rootfs"
tar -C "$root/rootfs" -c . | podman import -q - localhost/busybox:fixture >/dev/null
echo "peers ready: podman $(podman --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'), crun $(crun --version | awk 'NR==1{print $3}')"
