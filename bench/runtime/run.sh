#!/bin/sh
# Benchmarks create+start+wait+delete of a container running /bin/true
# (`<runtime> run`), median over N runs, for stack-runtime, crun and runc on
# the same bundle: once with pid/ipc/uts/mount/cgroup namespaces, once with a
# new network namespace too; beside them the floor, `unshare` of the same
# namespaces running /bin/true in the same root by chroot.
#
# Usage: bench/runtime/run.sh [RUNS]   (as root; needs hyperfine, runc, crun, jq)
# Env:   STACK_RUNTIME=path to the stack-runtime binary (default: release build)
#
# Everything runs inside one private mount namespace without the empty cgroup2
# mount at /sys/fs/cgroup/unified, because crun 1.8 refuses that hybrid layout;
# all three runtimes see the same v1 host.
set -eu

runs=${1:-200}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${STACK_RUNTIME:-$repo/target/release/stack-runtime}

if [ "${STACK_BENCH_INNER:-}" != 1 ]; then
    for t in hyperfine runc crun jq; do
        command -v $t >/dev/null || { echo "missing $t (apt-get install $t)" >&2; exit 1; }
    done
    [ -x "$bin" ] || { echo "build first: cargo build --release -p stack-runtime" >&2; exit 1; }
    STACK_BENCH_INNER=1 exec unshare -m --propagation private "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true

work=$(mktemp -d /tmp/stack-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$repo/tests/fixtures/busybox-rootfs.sh" "$work/rootfs" >/dev/null

make_bundle() { # DIR NAMESPACES_JSON
    mkdir -p "$1"
    "$bin" spec --bundle "$1"
    jq --arg root "$work/rootfs" --argjson ns "$2" \
        '.root.path = $root | .root.readonly = true | .process.args = ["/bin/true"] | .linux.namespaces = $ns' \
        "$1/config.json" > "$1/config.tmp" && mv "$1/config.tmp" "$1/config.json"
}
make_bundle "$work/nonet" '[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]'
make_bundle "$work/net" '[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"},{"type":"network"}]'

# The floor: the same namespaces made by unshare(1) around a chroot to the
# same root filesystem and /bin/true, no cgroup, mount or state work.
floor_nonet="unshare --pid --ipc --uts --mount --cgroup --fork chroot $work/rootfs /bin/true"
floor_net="unshare --pid --ipc --uts --mount --cgroup --net --fork chroot $work/rootfs /bin/true"

for b in nonet net; do
    echo "== bundle: $b (runs: $runs)"
    eval floor=\$floor_$b
    hyperfine -N --warmup 10 --runs "$runs" --export-json "$work/$b.json" \
        -n "unshare floor" "$floor" \
        -n stack-runtime "$bin --root $work/state-stack run --bundle $work/$b bench-$b" \
        -n crun "crun --root $work/state-crun run --bundle $work/$b bench-$b" \
        -n runc "runc --root $work/state-runc run --bundle $work/$b bench-$b" >/dev/null
    jq -r '.results[] | "\(.command)\tmedian \(.median*1000|.*100|round/100) ms\tmean \(.mean*1000|.*100|round/100) ms ± \(.stddev*1000|.*100|round/100)"' "$work/$b.json"
done
