#!/usr/bin/env bash
# Where a health probe's CPU goes: 10 busybox services probed every 100 ms
# (the stack of run.py's probe figure), `perf record -g` on the project's
# supervisor and every process it starts (the init helper, the check) for
# SECONDS, then the top entries by symbol and by binary. Run as root, after
# `cargo build --release -p stack-cli`; perf from bench/setup-peers.sh.
#
#   bench/engine/profile-probe.sh [SECONDS]     (STACK_BIN overrides the binary)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
stack=${STACK_BIN:-$repo/target/release/stack}
seconds=${1:-8}
work=$(mktemp -d /tmp/stack-probe-profile-XXXXXX)
st() { "$stack" --root "$work/root" --run-dir "$work/run" "$@"; }
cleanup() { st down -f "$work/probe.yaml" -p probeprof >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export STACK_SUBNET_POOL=${STACK_SUBNET_POOL:-10.227.0.0/16}

python3 "$repo/tests/fixtures/images/build.py" "$work/fx" >/dev/null
st image load -q -i "$work/fx/busybox-oci.tar" >/dev/null
{
    echo "services:"
    for i in $(seq 0 9); do
        printf '  p%d:\n    image: busybox\n    command: ["sh", "-c", "trap '"'"'exit 0'"'"' TERM; sleep 86400 & wait"]\n' "$i"
        printf '    healthcheck:\n      test: ["CMD", "true"]\n      interval: 100ms\n'
    done
} >"$work/probe.yaml"
st up -d -f "$work/probe.yaml" -p probeprof >/dev/null 2>&1
sup=$(pgrep -f -- "__supervise probeprof" | head -1)
sleep 2
perf record -q -g -F 999 -o "$work/perf.data" -p "$sup" -- sleep "$seconds" 2>/dev/null
echo "== $(perf script -i "$work/perf.data" -F comm 2>/dev/null | wc -l) samples in ${seconds} s ($(awk "{print \$1}" /proc/loadavg) load)"
echo "== by binary (% of samples)"
perf report -q -i "$work/perf.data" --no-children --sort dso -g none 2>/dev/null | head -8
echo "== by symbol"
perf report -q -i "$work/perf.data" --no-children --sort sym -g none 2>/dev/null | head -15
