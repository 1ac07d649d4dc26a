#!/usr/bin/env python3
"""Watch-mode latency, end to end, with real containers.

  recreate: save of the stack file (a new environment value, written to a
            temporary file and renamed over, as editors do) -> the recreated
            container's process has started and written the new value to a
            bind-mounted file. Median of RECREATE_RUNS (50).
  sync:     save of a source file -> its new content is in the container's
            root filesystem (read through the container's overlay mount,
            the very mount its processes see). Median of SYNC_RUNS (100).

Both include the debounce (DEBOUNCE_MS, default 100). Usage (as root):
  bench/watch/bench.py path/to/stack
"""
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "../../tests/fixtures/images/build.py")
PROJECT = "wa-bench"
POOL = "10.220.119.0/24"

STACK = """services:
  web:
    image: busybox
    command: ["sh", "-c", "echo $$V > /out/v; trap 'exit 0' TERM; sleep 1000 & wait"]
    environment: {{V: "{v}"}}
    volumes: ["{out}:/out"]
  app:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    develop:
      watch:
        - {{path: ./src, action: sync, target: /app}}
"""


def save(path, text):
    tmp = path + ".tmp-save"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def wait_for(path, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if f.read().strip() == want:
                    return
        except OSError:
            pass
        time.sleep(0.0005)
    raise SystemExit(f"{path} never became {want!r}")


def main():
    stack = os.path.abspath(sys.argv[1])
    debounce = os.environ.get("DEBOUNCE_MS", "100")
    recreate_runs = int(os.environ.get("RECREATE_RUNS", "50"))
    sync_runs = int(os.environ.get("SYNC_RUNS", "100"))
    tmp = tempfile.mkdtemp(prefix="stack-bench-watch-")
    root, run, out, src = (os.path.join(tmp, d) for d in ("root", "run", "out", "src"))
    os.makedirs(out)
    os.makedirs(src)
    env = dict(os.environ, STACK_SUBNET_POOL=POOL)
    base = [stack, "--root", root, "--run-dir", run]
    file = os.path.join(tmp, "stack.yaml")
    proj = ["-f", file, "-p", PROJECT]
    watcher = None
    try:
        subprocess.run([sys.executable, FIXTURE, os.path.join(tmp, "fx")], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(base + ["image", "load", "-i", os.path.join(tmp, "fx/busybox-oci.tar")],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        save(file, STACK.format(v=0, out=out))
        watcher = subprocess.Popen(base + ["watch"] + proj + ["--debounce", debounce],
                                   env=env, stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in watcher.stderr],
                         daemon=True).start()

        def until(prefix):
            while True:
                line = lines.get(timeout=60)
                if os.environ.get("VERBOSE"):
                    sys.stderr.write(line)
                if line.startswith(prefix):
                    return line

        until("watching ")
        wait_for(os.path.join(out, "v"), "0")

        recreate = []
        for i in range(1, recreate_runs + 1):
            text = STACK.format(v=i, out=out)
            t0 = time.monotonic()
            save(file, text)
            wait_for(os.path.join(out, "v"), str(i))
            recreate.append((time.monotonic() - t0) * 1000)
            until("watch: ")

        config = os.path.join(root, "projects", PROJECT, "containers", f"{PROJECT}-app-1",
                              "config.json")
        import json
        with open(config) as f:
            rootfs = json.load(f)["root"]["path"]
        target = os.path.join(rootfs, "app/file.txt")
        sync = []
        for i in range(1, sync_runs + 1):
            t0 = time.monotonic()
            save(os.path.join(src, "file.txt"), str(i))
            wait_for(target, str(i))
            sync.append((time.monotonic() - t0) * 1000)
            until("watch: ")

        def describe(xs):
            xs = sorted(xs)
            return (f"median {statistics.median(xs):.0f} ms, p90 {xs[int(len(xs) * 0.9) - 1]:.0f} ms,"
                    f" min {xs[0]:.0f} ms (of {len(xs)})")

        print(f"debounce {debounce} ms")
        print(f"stack file save -> recreated container running: {describe(recreate)}")
        print(f"source save -> content in the container (sync): {describe(sync)}")
    finally:
        if watcher:
            watcher.kill()
            watcher.wait()
        subprocess.run(base + ["down", "-v"] + proj, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
