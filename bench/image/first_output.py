#!/usr/bin/env python3
"""Times a command N times: from spawn to the first byte on its stdout, and
to its exit. Prints one JSON object with the medians (ms) and all samples.

Usage: first_output.py RUNS WARMUP -- COMMAND...
"""
import json
import statistics
import subprocess
import sys
import time


def main():
    runs, warmup = int(sys.argv[1]), int(sys.argv[2])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    first, total = [], []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        byte = p.stdout.read(1)
        t1 = time.perf_counter()
        p.stdout.read()
        code = p.wait()
        t2 = time.perf_counter()
        if code != 0 or not byte:
            sys.exit(f"{cmd!r} failed with status {code}")
        if i >= warmup:
            first.append((t1 - t0) * 1000)
            total.append((t2 - t0) * 1000)
    print(json.dumps({
        "first_output_ms": round(statistics.median(first), 1),
        "exit_ms": round(statistics.median(total), 1),
        "first_output_samples": [round(x, 1) for x in first],
        "exit_samples": [round(x, 1) for x in total],
    }))


main()
