#!/bin/sh
# Time from `container run` to the program's first output, warm store,
# busybox `echo hi`, `--rm`, with and without a network: `stack container
# run` side by side with rootful `podman run` (runc; podman's crun refuses
# this host's hybrid cgroup layout) on the same fixture image.
#
# Usage: cargo build --release -p stack-cli && bench/image/container-run.sh [RUNS]
# Needs (Debian): podman runc python3 busybox-static (bench/setup-peers.sh
# configures podman). Run as root. Medians of RUNS (default 30) after 3 warm-up runs.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
stack=${STACK:-${CARGO_TARGET_DIR:-$repo/target}/release/stack}
runs=${1:-30}
[ -x "$stack" ] || { echo "build it first: cargo build --release -p stack-cli" >&2; exit 1; }
for tool in podman runc python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (bench/setup-peers.sh)" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/stack-run-bench.XXXXXX)
S="$stack --root $work/stack --run-dir $work/stack-run"
P="podman --root $work/podman --runroot $work/podman-run --runtime runc"
cleanup() {
    # The default bridge stays after its containers, like docker0: take
    # this root's away with its state.
    python3 - "$work/stack/net/state.json" <<'PY' | sh
import json, sys
try:
    state = json.load(open(sys.argv[1]))
except OSError:
    sys.exit()
for net in state.get("networks", {}).values():
    own = net.get("Owned")
    if own:
        print(f"ip link del {own['bridge']} 2>/dev/null")
for p in state.get("projects", {}).values():
    print(f"nft delete table ip stk-{p['tag']} 2>/dev/null")
PY
    $P rmi -a -f >/dev/null 2>&1 || true
    grep " $work/" /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

python3 "$repo/tests/fixtures/images/build.py" "$work/fx" >/dev/null
export STACK_SUBNET_POOL=${STACK_SUBNET_POOL:-10.221.254.0/24}
$S image load -q -i "$work/fx/busybox-oci.tar" >/dev/null
$P load -q -i "$work/fx/busybox-oci.tar" >/dev/null
image=$($P images -q | head -1)

measure() {
    python3 "$here/first_output.py" "$runs" 3 -- "$@"
}

printf '%-44s %s\n' "command" "median ms: first output / exit"
for case in \
    "stack bridge|$S container run --rm busybox echo hi" \
    "stack --network none|$S container run --rm --network none busybox echo hi" \
    "podman (runc) bridge|$P run --rm $image echo hi" \
    "podman (runc) --network none|$P run --rm --network none $image echo hi"
do
    name=${case%%|*}
    cmd=${case#*|}
    result=$(measure $cmd)
    printf '%-44s %s\n' "$name" "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["first_output_ms"], "/", r["exit_ms"])' "$result")"
done
