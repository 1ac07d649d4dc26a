#!/usr/bin/env python3
"""The whole engine table in one command: stack's `up -d` and `down` of the
generated stacks at every size, with and without health conditions, the
peers at the sizes they manage, and the probe, restart and start figures
beside their floors, as one markdown table with the machine's load.

Usage: bench/engine/table.py [--sizes 10,50,100,200,500] [--runs 3]
                             [--peer-sizes 10,50,200] [--probe-seconds 10]
                             [--restarts 50] [--start-runs 100] [--no-peers]

Run as root after `cargo build --release -p stack-cli -p stack-runtime`.
Peers run only when present: docker-compose when DOCKER_HOST answers
(bench/engine/dockerd.sh), podman-compose when bench/setup-peers.sh installed
it (at the two smallest peer sizes: it does not gate on health, see README).
Peers get `interval: 1s` instead of `start_interval` (they lack it). The
restart figure is bench/supervise/run.sh's, the start figure
bench/runtime/run.sh's (needs hyperfine, runc, crun, jq; skipped without).
Every row carries the 1-minute load average when it was measured.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def rows_of(argv, env=None):
    """The JSON rows run.py prints; its errors go through to stderr."""
    p = subprocess.run([sys.executable, os.path.join(HERE, "run.py")] + argv,
                       stdout=subprocess.PIPE, text=True, env=env)
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def docker_answers():
    if not shutil.which("docker-compose") or not os.environ.get("DOCKER_HOST"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def restart_figure(restarts):
    """(median ms, p90 ms, n, load) from bench/supervise/run.sh, or None."""
    p = subprocess.run(["sh", os.path.join(REPO, "bench/supervise/run.sh"), str(restarts), "1"],
                       capture_output=True, text=True, env=dict(os.environ, NO_PEERS="1"))
    m = re.search(r"^\| stack \| ([\d.]+) ms \| ([\d.]+) ms \| (\d+) \|$", p.stdout, re.M)
    if not m:
        print("restart benchmark failed:\n" + p.stdout + p.stderr, file=sys.stderr)
        return None
    return float(m.group(1)), float(m.group(2)), int(m.group(3)), os.getloadavg()[0]


def start_figures(runs):
    """{bundle: {runtime: median ms}} from bench/runtime/run.sh, or None."""
    if not all(shutil.which(t) for t in ("hyperfine", "runc", "crun", "jq")):
        print("start benchmark skipped: needs hyperfine, runc, crun and jq", file=sys.stderr)
        return None
    p = subprocess.run(["sh", os.path.join(REPO, "bench/runtime/run.sh"), str(runs)],
                       capture_output=True, text=True)
    out, bundle = {}, None
    for line in p.stdout.splitlines():
        m = re.match(r"== bundle: (\w+)", line)
        if m:
            bundle = m.group(1)
            out[bundle] = {}
            continue
        m = re.match(r"([^\t]+)\tmedian ([\d.]+) ms", line)
        if m and bundle:
            out[bundle][m.group(1)] = float(m.group(2))
    if not out:
        print("start benchmark failed:\n" + p.stdout + p.stderr, file=sys.stderr)
        return None
    return out


def fmt_s(v):
    return "—" if v is None else "%.2f s" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,100,200,500")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-sizes", default="10,50,200")
    ap.add_argument("--probe-seconds", type=float, default=10)
    ap.add_argument("--restarts", type=int, default=50)
    ap.add_argument("--start-runs", type=int, default=100)
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    peer_sizes = [int(s) for s in args.peer_sizes.split(",") if s]
    load_before = os.getloadavg()

    rows = rows_of(["--tools", "stack", "--sizes", args.sizes, "--runs", str(args.runs),
                    "--variants", "health,plain", "--probe-seconds", str(args.probe_seconds)])
    if not args.no_peers and docker_answers():
        rows += rows_of(["--tools", "docker-compose", "--sizes", args.peer_sizes,
                         "--runs", "1", "--probe-seconds", "0"])
    podman_compose = os.environ.get("PODMAN_COMPOSE", "/opt/podman-compose/bin/podman-compose")
    if not args.no_peers and os.access(podman_compose, os.X_OK):
        rows += rows_of(["--tools", "podman-compose", "--sizes",
                         ",".join(str(n) for n in peer_sizes[:2]), "--runs", "1",
                         "--probe-seconds", "0"])
    restart = restart_figure(args.restarts) if args.restarts > 0 else None
    start = start_figures(args.start_runs) if args.start_runs > 0 else None

    def cell(tool, variant, n, key):
        for r in rows:
            if r.get("tool") == tool and r.get("variant") == variant and r.get("services") == n:
                v = fmt_s(r.get(key))
                if not r.get("all_running"):
                    v += " (not all ran)" if r.get(key) is not None else " (failed)"
                return v + " [%.1f]" % r["load"]
        return "—"

    all_sizes = sorted(set(sizes) | set(peer_sizes))
    print("Load average (1/5/15 min) at the start: %.1f / %.1f / %.1f; at the end: %.1f / %.1f / %.1f."
          % (load_before + os.getloadavg()))
    print("Medians; [the 1-minute load average after the row]. Peers get `interval: 1s`"
          " instead of `start_interval: 100ms`.")
    print()
    print("| | " + " | ".join("%d services" % n for n in all_sizes) + " |")
    print("|---|" + "---|" * len(all_sizes))
    lines = [("stack", "health", "up_s", "stack `up -d`, health-gated"),
             ("stack", "plain", "up_s", "stack `up -d`, no health checks"),
             ("stack", "health", "down_s", "stack `down`, health-gated"),
             ("stack", "plain", "down_s", "stack `down`, no health checks"),
             ("docker-compose", "health", "up_s", "docker-compose `up -d`"),
             ("docker-compose", "health", "down_s", "docker-compose `down`"),
             ("podman-compose", "health", "up_s", "podman-compose `up -d` (no gating)"),
             ("podman-compose", "health", "down_s", "podman-compose `down`")]
    for tool, variant, key, label in lines:
        if not any(r.get("tool") == tool for r in rows):
            continue
        print("| %s | %s |" % (label, " | ".join(cell(tool, variant, n, key) for n in all_sizes)))
    for variant in ("health", "plain"):
        ups = {r["services"]: r["up_s"] for r in rows
               if r.get("tool") == "stack" and r.get("variant") == variant and r.get("up_s")}
        steps = sorted(ups)
        per = ["%d→%d: %.1f ms" % (a, b, (ups[b] - ups[a]) * 1000 / (b - a))
               for a, b in zip(steps, steps[1:])]
        if per:
            print()
            print("stack, time per added service (%s): %s." % (variant, "; ".join(per)))
    print()
    print("| | stack | floor |")
    print("|---|---|---|")
    for r in rows:
        if "probe" in r:
            p = r["probe"]
            floor = p.get("floor_cpu_ms")
            print("| CPU per health probe [%.1f] | %.2f ms | %s |"
                  % (r["load"], p["cpu_ms_per_probe"],
                     "%.2f ms (`nsenter` into the container + `true`)" % floor if floor else "—"))
    if restart:
        floor = start and start.get("nonet", {}).get("unshare floor")
        print("| restart reaction, median / p90 (n=%d) [%.1f] | %.1f / %.1f ms | %s |"
              % (restart[2], restart[3], restart[0], restart[1],
                 "%.1f ms (create floor below)" % floor if floor else "—"))
    if start:
        for bundle, label in (("nonet", "without"), ("net", "with")):
            m = start.get(bundle, {})
            if "stack-runtime" in m:
                print("| create+start+delete `/bin/true`, %s network (crun %.1f, runc %.1f ms) | %.1f ms | %.1f ms (`unshare` + chroot) |"
                      % (label, m.get("crun", 0), m.get("runc", 0), m["stack-runtime"],
                         m.get("unshare floor", 0)))


if __name__ == "__main__":
    main()
