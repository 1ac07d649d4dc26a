#!/usr/bin/env bash
# Edit-to-running through `stack up -d --build`: a stack with one `build:`
# service (the two-stage busybox Dockerfile of run.sh, whose container
# writes its app.txt into a bind mount); after a one-line edit of app.txt,
# the time from `up --build` until the new container has written the new
# line. Also the cold `up` (build and start) and a no-op `up --build`. The
# same with `docker-compose up -d --build` (Debian's 1.29, classic builder)
# when a dockerd answers at DOCKER_HOST (bench/engine/dockerd.sh start).
# Run as root from the repository: bench/build/up.sh [ROUNDS]
# (STACK=target/debug/stack measures a debug build).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
stack=${STACK:-target/release/stack}
[ -x "$stack" ] || cargo build --release -q -p stack-cli
work=$(mktemp -d /tmp/stack-bench-up.XXXXXX)
cleanup() {
    "$stack" --root "$work/root" --run-dir "$work/run" down -f "$work/stack.yaml" >/dev/null 2>&1 || true
    { grep -o " $work[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
python3 tests/fixtures/images/build.py "$work/fixtures" >/dev/null
"$stack" --root "$work/root" image load -i "$work/fixtures/busybox-oci.tar" >/dev/null

mkdir -p "$work/ctx" "$work/out"
cat > "$work/ctx/Dockerfile" <<'DF'
FROM busybox AS build
RUN sleep 1 && echo compiled > /artifact
COPY lib.txt /src/lib.txt
FROM busybox
COPY --from=build /artifact /artifact
COPY app.txt /app.txt
CMD ["sh", "-c", "cat /app.txt > /out/app.txt; trap 'exit 0' TERM; while :; do sleep 1; done"]
DF
echo lib > "$work/ctx/lib.txt"
echo v0 > "$work/ctx/app.txt"
cat > "$work/stack.yaml" <<YAML
name: bench-up
services:
  app:
    build: ./ctx
    volumes: ["$work/out:/out"]
YAML
sed -e "s#/out:/out#/dout:/out#" -e "/^name:/d" "$work/stack.yaml" > "$work/docker-compose.yml"
mkdir -p "$work/dout"
export STACK_SUBNET_POOL=10.219.250.0/24
up() { "$stack" --root "$work/root" --run-dir "$work/run" up -d "$@" -f "$work/stack.yaml" >/dev/null 2>&1; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
until_out() { while [ "$(cat "$work/out/app.txt" 2>/dev/null)" != "$1" ]; do sleep 0.005; done; }

t=$(date +%s%N); up; until_out v0; cold=$(ms "$t")
noop=(); edit=()
for r in $(seq "$rounds"); do
    t=$(date +%s%N); up --build; noop+=("$(ms "$t")")
    echo "v$r" > "$work/ctx/app.txt"
    t=$(date +%s%N); up --build; until_out "v$r"; edit+=("$(ms "$t")")
done
printf 'stack up: cold %s ms | no-op up --build %s ms | edit to running %s ms\n' "$cold" \
    "$(printf '%s ' "${noop[@]}")" "$(printf '%s ' "${edit[@]}")"

if [ -n "${DOCKER_HOST:-}" ] && command -v docker-compose >/dev/null && docker version >/dev/null 2>&1; then
    docker tag busybox:fixture busybox:latest
    echo v0 > "$work/ctx/app.txt"
    dc() { DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0 docker-compose -p bench-up -f "$work/docker-compose.yml" "$@" >/dev/null 2>&1; }
    until_dout() { while [ "$(cat "$work/dout/app.txt" 2>/dev/null)" != "$1" ]; do sleep 0.005; done; }
    t=$(date +%s%N); dc up -d --build; until_dout v0; cold=$(ms "$t")
    noop=(); edit=()
    for r in $(seq "$rounds"); do
        t=$(date +%s%N); dc up -d --build; noop+=("$(ms "$t")")
        echo "v$r" > "$work/ctx/app.txt"
        t=$(date +%s%N); dc up -d --build; until_dout "v$r"; edit+=("$(ms "$t")")
    done
    dc down --rmi local -t 1 || true
    docker image prune -f >/dev/null 2>&1 || true
    printf 'docker-compose up: cold %s ms | no-op up --build %s ms | edit to running %s ms\n' "$cold" \
        "$(printf '%s ' "${noop[@]}")" "$(printf '%s ' "${edit[@]}")"
else
    echo "docker-compose: needs docker-compose and a dockerd at DOCKER_HOST (bench/engine/dockerd.sh start)"
fi
