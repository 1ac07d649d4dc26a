#!/bin/sh
# Networking benchmark of stack-net (root; Debian packages: iperf3 nftables
# util-linux jq; podman optional). Prints markdown tables: per-container network
# setup time (median of 100) and TCP throughput container->container and
# host->published port, relative to host loopback measured in the same run;
# then the same through podman/netavark when podman and the busybox fixture
# image (localhost/busybox:fixture) are available.
# Traffic stays on loopback and in 10.201.250.0/24 and 10.201.251.0/24.
set -eu
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-net}"
cargo build -q --release -p stack-net --example netbench
"$CARGO_TARGET_DIR/release/examples/netbench"

IMG=localhost/busybox:fixture
if ! command -v podman >/dev/null 2>&1 || ! podman image exists "$IMG" 2>/dev/null; then
    echo
    echo "podman/netavark: not available (needs podman and image $IMG), no comparison"
    exit 0
fi
P="podman --runtime runc"   # crun refuses hybrid cgroup hosts
NET=stkbench-net
NET2=stkbench-net2
cleanup() {
    $P rm -f -t 0 stkbench-srv stkbench-cli >/dev/null 2>&1 || true
    podman network rm -f "$NET" "$NET2" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
podman network create --subnet 10.201.251.0/24 "$NET" >/dev/null
podman network create --subnet 10.201.252.0/24 "$NET2" >/dev/null
$P run -d --network "$NET" -p 127.0.0.1::5201 --name stkbench-srv "$IMG" sleep 600 >/dev/null
$P run -d --network "$NET" --name stkbench-cli "$IMG" sleep 600 >/dev/null
ns() { podman inspect -f '{{.NetworkSettings.SandboxKey}}' "$1"; }
srv_ns=$(ns stkbench-srv)
cli_ns=$(ns stkbench-cli)
srv_ip=$(podman inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" stkbench-srv)
host_port=$(podman port stkbench-srv 5201/tcp | head -1 | sed 's/.*://')

gbit() { jq '.end.sum_received.bits_per_second / 1e9'; }
med3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
lo_r=""; c2c_r=""; pub_r=""
for round in 1 2 3; do   # interleaved rounds, median of each (shared, noisy machine)
    iperf3 -s -1 -p 5298 >/dev/null & sleep 0.3
    lo_r="$lo_r $(iperf3 -J -c 127.0.0.1 -p 5298 -t 2 | gbit)"; wait
    nsenter --net="$srv_ns" iperf3 -s -1 -p 5201 >/dev/null & sleep 0.3
    c2c_r="$c2c_r $(nsenter --net="$cli_ns" iperf3 -J -c "$srv_ip" -p 5201 -t 2 | gbit)"; wait
    nsenter --net="$srv_ns" iperf3 -s -1 -p 5201 >/dev/null & sleep 0.3
    pub_r="$pub_r $(iperf3 -J -c 127.0.0.1 -p "$host_port" -t 2 | gbit)"; wait
done
lo=$(med3 $lo_r); c2c=$(med3 $c2c_r); pub=$(med3 $pub_r)

# Network-only setup time: connect an existing container to a second network
# (netavark: veth, address, routes, DNS entry), median of 20.
times=""
for i in $(seq 1 20); do
    t0=$(date +%s%N); podman network connect "$NET2" stkbench-cli; t1=$(date +%s%N)
    podman network disconnect "$NET2" stkbench-cli
    times="$times $(( (t1 - t0) / 1000 ))"
done
median_us=$(echo $times | tr ' ' '\n' | sort -n | sed -n 10p)

echo
echo "| podman $(podman --version | awk '{print $3}') (netavark) | value |"
echo "|---|---|"
echo "| podman network connect (veth + address + DNS), median of 20 | $(echo "$median_us" | awk '{printf "%.2f", $1/1000}') ms |"
echo "| host loopback TCP (iperf3, 2 s, median of 3) | $(printf '%.1f' "$lo") Gbit/s (1.00) |"
echo "| container -> container TCP | $(printf '%.1f' "$c2c") Gbit/s ($(echo "$c2c $lo" | awk '{printf "%.2f", $1/$2}')) |"
echo "| host -> published port (127.0.0.1) TCP | $(printf '%.1f' "$pub") Gbit/s ($(echo "$pub $lo" | awk '{printf "%.2f", $1/$2}')) |"
