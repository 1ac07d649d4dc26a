#!/usr/bin/env bash
# Build times of a two-stage busybox Dockerfile (a RUN with a 1 s sleep, two
# COPYs): cold, no-op rebuild, rebuild after a one-line source edit; with
# `stack image build`, and when installed `podman build` (runc: crun 1.8
# refuses this host's hybrid cgroups) and Docker 20.10's classic builder
# (`DOCKER_BUILDKIT=0 docker build`, against the dockerd that
# bench/engine/dockerd.sh starts in a network namespace of its own: export
# the DOCKER_HOST it prints) on the same files. Every builder runs the RUN
# step without a network (`--network none`); STACK_NETWORK=default measures
# stack's with its NAT'd build bridge instead.
# Run as root from the repository: bench/build/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
stack=${STACK:-target/release/stack}
# STACK=target/debug/stack measures a debug build (slower: the figures below
# are from one); SKIP_STACK=1 measures only podman.
[ -n "${SKIP_STACK:-}" ] || [ -x "$stack" ] || cargo build --release -q -p stack-cli
work=$(mktemp -d /tmp/stack-bench-build.XXXXXX)
cleanup() {
    # podman keeps its storage's overlay mounted.
    { grep -o " $work[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
python3 tests/fixtures/images/build.py "$work/fixtures" >/dev/null

mkdir -p "$work/ctx"
cat > "$work/ctx/Dockerfile" <<'DF'
FROM busybox AS build
RUN sleep 1 && echo compiled > /artifact
COPY lib.txt /src/lib.txt
FROM busybox
COPY --from=build /artifact /artifact
COPY app.txt /app.txt
CMD ["cat", "/app.txt"]
DF
echo lib > "$work/ctx/lib.txt"

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

measure() { # name, build command...
    local name=$1; shift
    local cold=() noop=() edit=()
    for r in $(seq "$rounds"); do
        echo "v0" > "$work/ctx/app.txt"
        "$name-reset"
        t=$(date +%s%N); "$@" </dev/null >"$work/last.log" 2>&1 || { cat "$work/last.log"; exit 1; }; cold+=("$(ms "$t")")
        t=$(date +%s%N); "$@" >/dev/null 2>&1; noop+=("$(ms "$t")")
        echo "v$r" > "$work/ctx/app.txt"
        t=$(date +%s%N); "$@" >/dev/null 2>&1; edit+=("$(ms "$t")")
    done
    printf '%-8s cold %s ms | no-op %s ms | edit %s ms\n' "$name" \
        "$(printf '%s ' "${cold[@]}")" "$(printf '%s ' "${noop[@]}")" "$(printf '%s ' "${edit[@]}")"
}

stack-reset() {
    rm -rf "$work/root"
    "$stack" --root "$work/root" image load -i "$work/fixtures/busybox-oci.tar" >/dev/null
}
[ -n "${SKIP_STACK:-}" ] || measure stack "$stack" --root "$work/root" --run-dir "$work/run" image build -q \
    --network "${STACK_NETWORK:-none}" -t bench:latest "$work/ctx"

if command -v podman >/dev/null; then
    podman-reset() {
        podman --root "$work/podman" rmi -af >/dev/null 2>&1 || true
        podman --root "$work/podman" system prune -af >/dev/null 2>&1 || true
        # Imported from the fixture's root filesystem: podman 4.3 cannot build
        # on the fixture archive (its history lists fewer layers than it has).
        tar -C "$work/fixtures/rootfs" -c . |
            podman --root "$work/podman" import -q - docker.io/library/busybox:latest >/dev/null
    }
    measure podman podman --root "$work/podman" --runtime runc build -q --network none -t bench:latest "$work/ctx"
    podman --root "$work/podman" rmi -af >/dev/null 2>&1 || true
else
    echo "podman: not installed (apt-get install podman)"
fi

if [ -n "${DOCKER_HOST:-}" ] && docker version >/dev/null 2>&1; then
    docker-reset() {
        docker rmi -f bench:latest >/dev/null 2>&1 || true
        # The classic builder's cache is its untagged intermediate images.
        docker image prune -f >/dev/null 2>&1 || true
        docker tag busybox:fixture busybox:latest
    }
    DOCKER_BUILDKIT=0 measure docker docker build -q --network none -t bench:latest "$work/ctx"
    docker rmi -f bench:latest >/dev/null 2>&1 || true
else
    echo "docker: no dockerd answers (bench/engine/dockerd.sh start, then export its DOCKER_HOST)"
fi
