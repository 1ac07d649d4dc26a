#!/usr/bin/env bash
# Times loading and validating a generated 1,000-service stack file (the one
# `cargo bench -p stack-spec --bench load` measures in-process) with
# `stack config -q`, side by side with Debian's docker-compose 1.29 when it is
# installed (`apt-get install docker-compose`). Needs hyperfine.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo build --release -q -p stack-cli
STACK_BENCH_FILE="$dir/stack.yaml" cargo bench -q -p stack-spec --bench load -- --test >/dev/null
# docker-compose 1.29 predates the top-level `name:`; it gets the file without it.
grep -v '^name:' "$dir/stack.yaml" > "$dir/compose.yaml"
cd "$dir"
export TAG=2.0
commands=("$OLDPWD/target/release/stack config -q -f stack.yaml")
command -v docker-compose >/dev/null && commands+=("docker-compose -f compose.yaml config -q")
hyperfine --warmup 2 --runs "${RUNS:-10}" "${commands[@]}"
