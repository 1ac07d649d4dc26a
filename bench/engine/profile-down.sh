#!/usr/bin/env bash
# Where `down` of N services waits: gen.py's plain file brought up, then
# `down` timed under `strace -c -f -w` of the project's supervisor (the
# syscalls that take the wall time: netlink sends, fsyncs, unmounts) and,
# in a second round, under `perf record -g` (where its CPU goes). Run as
# root after `cargo build --release -p stack-cli`; perf and strace from
# Debian's linux-perf and strace packages.
#
#   bench/engine/profile-down.sh [N]     (STACK_BIN overrides the binary)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
stack=${STACK_BIN:-$repo/target/release/stack}
n=${1:-50}
work=$(mktemp -d /tmp/stack-down-profile-XXXXXX)
st() { "$stack" --root "$work/root" --run-dir "$work/run" "$@"; }
cleanup() { st down -f "$work/down.yaml" -p downprof >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export STACK_SUBNET_POOL=${STACK_SUBNET_POOL:-10.228.0.0/16}

python3 "$repo/tests/fixtures/images/build.py" "$work/fx" >/dev/null
st image load -q -i "$work/fx/busybox-oci.tar" >/dev/null
python3 "$repo/bench/engine/gen.py" "$n" busybox --plain >"$work/down.yaml"

up() {
    st up -d -f "$work/down.yaml" -p downprof >/dev/null 2>&1
    pgrep -f -- "__supervise downprof" | head -1
}
timed_down() {
    local start end
    start=$(date +%s.%N)
    st down -f "$work/down.yaml" -p downprof >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "== down of $n: $(echo "$end - $start" | bc) s (load $(awk '{print $1}' /proc/loadavg))"
}

sup=$(up)
strace -c -f -w -o "$work/strace.txt" -p "$sup" &
tracer=$!
sleep 1
timed_down
wait "$tracer" 2>/dev/null || true
echo "== strace -c -f -w of the supervisor (wall time per syscall)"
head -16 "$work/strace.txt"

sup=$(up)
perf record -q -g -F 999 -o "$work/perf.data" -p "$sup" 2>/dev/null &
recorder=$!
sleep 1
timed_down
wait "$recorder" 2>/dev/null || true
echo "== perf: $(perf script -i "$work/perf.data" -F comm 2>/dev/null | wc -l) samples"
perf report -q -i "$work/perf.data" --no-children --sort sym -g none 2>/dev/null | head -15
