#!/usr/bin/env bash
# Starts Debian's dockerd 20.10 for the engine benchmark, by hand (no systemd
# here), inside a network namespace of its own so that its bridge and
# iptables rules stay away from the host's, with its own data root, socket
# and subnets (10.225.128.0/17). Prints the DOCKER_HOST to use.
#   bench/engine/dockerd.sh start   # then: export DOCKER_HOST=unix:///run/stack-bench-docker/docker.sock
#   bench/engine/dockerd.sh stop
# Needs docker.io and docker-compose (Debian packages). Run as root.
set -euo pipefail
ns=stack-bench-docker
run=/run/$ns
data=/var/lib/$ns
case "${1:-start}" in
start)
    mkdir -p "$run" "$data"
    ip netns add "$ns" 2>/dev/null || true
    ip netns exec "$ns" ip link set lo up
    # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mounts.
    nsenter --net=/run/netns/"$ns" dockerd --data-root "$data" --exec-root "$run/exec" \
        --pidfile "$run/dockerd.pid" -H "unix://$run/docker.sock" \
        --containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
        --bip 10.225.255.1/24 --default-address-pool base=10.225.128.0/17,size=24 \
        --storage-driver overlay2 >"$run/dockerd.log" 2>&1 &
    for _ in $(seq 100); do
        DOCKER_HOST=unix://$run/docker.sock docker version >/dev/null 2>&1 && break
        sleep 0.2
    done
    DOCKER_HOST=unix://$run/docker.sock docker version --format 'dockerd {{.Server.Version}} ready' \
        || { tail -20 "$run/dockerd.log" >&2; exit 1; }
    # The busybox fixture as busybox:fixture.
    fx=$(mktemp -d)
    trap 'rm -rf "$fx"' EXIT
    python3 "$(dirname "$0")/../../tests/fixtures/images/build.py" "$fx" >/dev/null
    DOCKER_HOST=unix://$run/docker.sock docker load -q -i "$fx/busybox-docker.tar" >/dev/null
    DOCKER_HOST=unix://$run/docker.sock docker tag stack-test/busybox:docker busybox:fixture
    echo "export DOCKER_HOST=unix://$run/docker.sock"
    ;;
stop)
    [ -f "$run/dockerd.pid" ] && kill "$(cat "$run/dockerd.pid")" && sleep 3
    ip netns del "$ns" 2>/dev/null || true
    ;;
esac
