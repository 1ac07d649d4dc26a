#!/usr/bin/env bash
# Watch-mode latency with real containers (see bench.py): with the default
# 100 ms debounce, and with compose's 500 ms for reference. As root.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p stack-cli
for debounce in ${DEBOUNCES:-100 500}; do
    DEBOUNCE_MS=$debounce python3 bench/watch/bench.py target/release/stack
done
