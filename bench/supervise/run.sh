#!/bin/sh
# Supervisor benchmark (root; python3; podman optional, see
# bench/setup-peers.sh). Prints markdown tables:
#
# 1. Restart reaction: time from a container's exit (the supervisor's `die`
#    event, taken when its pidfd reports the exit) to its restarted process
#    running (the `start` event), median and 90th percentile over RESTARTS
#    exits. The service uses `deploy.restart_policy: {condition: any,
#    delay: 0s}`, a fixed zero delay, so no backoff is waited and nothing
#    needs subtracting: the figure is the supervisor's own reaction (decide,
#    recreate the container with the runtime, hand its pipes to the log
#    keeper).
# 2. Memory: RSS and PSS (/proc/PID/smaps_rollup) of the project's
#    supervisor plus its log keeper with 1, 10, 100, 500 `sleep`
#    containers (network_mode: none; stop_signal SIGKILL, since `sleep` as
#    pid 1 ignores SIGTERM and `down` would wait out every grace period),
#    side by side with the conmon processes rootful podman runs for the
#    same containers.
#
# Usage: bench/supervise/run.sh [RESTARTS] [COUNTS...]   (default 100; 1 10 100 500)
# NO_PEERS=1 leaves podman out; STACK_BIN runs that binary instead of a
# fresh release build.
# Networks come from 10.226.0.0/16; projects and containers are named svbench-*.
set -eu
cd "$(dirname "$0")/../.."
RESTARTS=${1:-100}
shift 2>/dev/null || true
COUNTS=${*:-1 10 100 500}

if [ -n "${STACK_BIN:-}" ]; then
    STACK=$STACK_BIN
else
    cargo build -q --release -p stack-cli
    STACK="$PWD/target/release/stack"
fi
WORK=$(mktemp -d /tmp/svbench.XXXXXX)
export STACK_SUBNET_POOL=10.226.0.0/16
S() { "$STACK" --root "$WORK/root" --run-dir "$WORK/run" "$@"; }
cleanup() {
    for p in svbench-react svbench-mem; do
        [ -f "$WORK/$p.yaml" ] && S down -f "$WORK/$p.yaml" -p "$p" >/dev/null 2>&1 || true
    done
    if command -v podman >/dev/null 2>&1; then
        ids=$(podman ps -aq --filter name=svbench- 2>/dev/null || true)
        [ -n "$ids" ] && podman rm -f -t 0 $ids >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 tests/fixtures/images/build.py "$WORK/fixtures" >/dev/null
S image load -i "$WORK/fixtures/busybox-oci.tar" >/dev/null

# --- 1. restart reaction -------------------------------------------------
cat > "$WORK/svbench-react.yaml" <<'YAML'
services:
  crash:
    image: busybox
    network_mode: none
    command: ["sh", "-c", "exit 1"]
    deploy:
      restart_policy: {condition: any, delay: 0s}
YAML
since=$(date +%s.%N)
S up -d -f "$WORK/svbench-react.yaml" -p svbench-react >/dev/null 2>&1
while :; do
    n=$(S ps -a --format json -f "$WORK/svbench-react.yaml" -p svbench-react |
        python3 -c 'import json,sys; print(max([json.loads(l)["RestartCount"] for l in sys.stdin if l.startswith("{")] or [0]))')
    [ "$n" -ge "$RESTARTS" ] && break
    sleep 0.2
done
S events --format json --since "$since" --until "$(date +%s.%N)" -f "$WORK/svbench-react.yaml" -p svbench-react |
python3 -c '
import json, statistics, sys
gaps, died = [], None
for line in sys.stdin:
    e = json.loads(line)
    if e["Action"] == "die":
        died = e["timeNano"]
    elif e["Action"] == "start" and died is not None:
        gaps.append((e["timeNano"] - died) / 1e6)
        died = None
gaps = gaps[:int(sys.argv[1])]
gaps.sort()
print("| restart reaction (exit to running again, zero policy delay) | median | p90 | n |")
print("|---|---|---|---|")
print("| stack | %.1f ms | %.1f ms | %d |" % (statistics.median(gaps), gaps[int(len(gaps) * 0.9) - 1], len(gaps)))
' "$RESTARTS"
S down -f "$WORK/svbench-react.yaml" -p svbench-react >/dev/null 2>&1

# --- 2. memory -------------------------------------------------------------
pid_of() { # the process whose command line is exactly "... $1 $2"
    for d in /proc/[0-9]*; do
        if cat "$d/cmdline" 2>/dev/null | tr '\0' ' ' | grep -q -- " $1 $2 \$"; then
            basename "$d"
            return
        fi
    done
}
kib() { awk -v k="$2" '$1 == k":" {print $2}' "$1" 2>/dev/null || echo 0; }
mem() { # RSS and PSS in KiB of the given pids, summed
    rss=0 pss=0
    for p in "$@"; do
        rss=$((rss + $(kib /proc/$p/status VmRSS)))
        pss=$((pss + $(kib /proc/$p/smaps_rollup Pss)))
    done
    echo "$rss $pss"
}
echo
echo "| containers | stack supervisor + log keeper RSS | PSS | conmon (podman $(podman --version 2>/dev/null | awk '{print $3}')) RSS, all | PSS, all |"
echo "|---|---|---|---|---|"
for n in $COUNTS; do
    {
        echo "services:"
        i=0
        while [ "$i" -lt "$n" ]; do
            printf '  s%d:\n    image: busybox\n    network_mode: none\n    stop_signal: SIGKILL\n    command: ["sleep", "3600"]\n' "$i"
            i=$((i + 1))
        done
    } > "$WORK/svbench-mem.yaml"
    S up -d -f "$WORK/svbench-mem.yaml" -p svbench-mem >/dev/null 2>&1
    sleep 2
    sup=$(pid_of __supervise svbench-mem)
    keeper=$(pid_of __logs svbench-mem)
    set -- $(mem $sup $keeper)
    s_rss=$1 s_pss=$2
    S down -f "$WORK/svbench-mem.yaml" -p svbench-mem >/dev/null 2>&1
    c_rss=- c_pss=-
    if [ -z "${NO_PEERS:-}" ] && command -v podman >/dev/null 2>&1 && podman image exists localhost/busybox:fixture 2>/dev/null; then
        i=0
        while [ "$i" -lt "$n" ]; do
            podman --runtime runc run -d --network none --name "svbench-$i" localhost/busybox:fixture sleep 3600 >/dev/null
            i=$((i + 1))
        done
        pids=$(podman inspect -f '{{.State.ConmonPid}}' $(podman ps -q --filter name=svbench-))
        set -- $(mem $pids)
        c_rss=$1 c_pss=$2
        podman rm -f -t 0 $(podman ps -aq --filter name=svbench-) >/dev/null
    fi
    mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
    echo "| $n | $(mib "$s_rss") | $(mib "$s_pss") | $c_rss KiB | $c_pss KiB |"
done
