#!/bin/sh
# Pull + unpack of a ~50 MB, 6-layer image from a loopback registry:
# `stack image pull` side by side with `skopeo copy` + `umoci unpack`.
#
# Usage: bench/image/run.sh [PULL_COMMAND]
# PULL_COMMAND is called as `PULL_COMMAND ROOT REFERENCE`; the default is the
# library's example (`cargo build --release -p stack-image --example pull`),
# `stack image pull` with `--root` is equivalent:
#   bench/image/run.sh "sh -c 'exec target/release/stack --root \$0 image pull -q \$1'"
# Needs (Debian): docker-registry skopeo umoci hyperfine python3 busybox-static zstd. Run as root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pull=${1:-${CARGO_TARGET_DIR:-$repo/target-image}/release/examples/pull}
runs=${RUNS:-5}
[ -n "${1:-}" ] || [ -x "$pull" ] || { echo "build it first: cargo build --release -p stack-image --example pull" >&2; exit 1; }
for tool in docker-registry skopeo umoci hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install $tool)" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/stack-image-bench.XXXXXX)
reg_pid=
cleanup() {
    [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

python3 "$repo/tests/fixtures/images/build.py" "$work/fx" --big
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
  secret: bench
YAML
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
reg_pid=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "registry did not start" >&2; exit 1; }
    sleep 0.1
done
skopeo copy -q --dest-tls-verify=false "oci:$work/fx/big-oci" "docker://127.0.0.1:$port/big:latest"
image="127.0.0.1:$port/big:latest"
echo "image: $image, $(du -sh "$work/fx/big-oci/blobs" | cut -f1) of blobs"

hyperfine --runs "$runs" --export-markdown "$work/cold.md" \
    --prepare "rm -rf $work/root" \
    -n "stack-image pull (cold store)" "$pull $work/root $image" \
    --prepare "rm -rf $work/oci $work/bundle" \
    -n "skopeo copy + umoci unpack" \
    "skopeo copy -q --src-tls-verify=false docker://$image oci:$work/oci:big && umoci unpack --image $work/oci:big $work/bundle"

# Warm: everything is already local.
eval "$pull $work/root $image" >/dev/null
hyperfine --runs "$runs" --export-markdown "$work/warm.md" \
    -n "stack-image pull (warm store)" "$pull $work/root $image"

cat "$work/cold.md" "$work/warm.md"
