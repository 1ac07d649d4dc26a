#!/usr/bin/env python3
"""`up -d` (until healthy) and `down` of generated stacks, per tool.

Usage: run.py [--sizes 10,50,200] [--runs 3] [--tools stack,podman-compose,docker-compose]
              [--probe-seconds 10]

Tools:
  stack           target/release/stack (STACK_BIN), a temporary --root/--run-dir,
                  subnets from STACK_SUBNET_POOL (default 10.225.0.0/16)
  podman-compose  rootful podman with localhost/busybox:fixture (bench/setup-peers.sh)
  docker-compose  Debian's 1.29 against DOCKER_HOST (bench/engine/dockerd.sh starts one)

Per size: wall time of `up -d` and `down` (median of --runs), whether every
container ran afterwards, and for stack the peak RSS of the `up` process and
of the project's supervisor (VmHWM). Then, for stack, the CPU cost of one
health probe: a stack of 10 services probed every 100 ms for --probe-seconds,
the supervisor's own and its reaped children's CPU time (the probes are its
children) over that window, divided by the probes run.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
CLK = os.sysconf("SC_CLK_TCK")


def gen(n, image, strip_start_interval=False):
    text = subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), str(n), image],
                          capture_output=True, text=True, check=True).stdout
    if strip_start_interval:
        # Peers without start_interval probe at `interval` from the start:
        # give them 1 s, or their first probe would come after 30 s.
        text = "\n".join(l.replace("interval: 30s", "interval: 1s") for l in text.splitlines()
                         if "start_interval" not in l) + "\n"
    return text


def timed(cmd, env=None, cwd=None):
    """(seconds, max RSS in KiB, stdout+stderr) of one command, which must succeed."""
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True,
                       env=env, cwd=cwd)
    elapsed = time.monotonic() - start
    lines = p.stderr.strip().splitlines()
    rss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return elapsed, rss, p.stdout + p.stderr


def find_supervisor(root, project):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        except OSError:
            continue
        if b"__supervise" in argv and root.encode() in argv and project.encode() in argv:
            return int(pid)
    return None


def hwm_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    """utime + stime + cutime + cstime: the process and its reaped children."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15])


class Stack:
    name = "stack"

    def __init__(self):
        self.bin = os.environ.get("STACK_BIN", os.path.join(REPO, "target/release/stack"))
        self.dir = tempfile.mkdtemp(prefix="stack-bench-engine-")
        self.root = os.path.join(self.dir, "root")
        self.env = dict(os.environ, STACK_SUBNET_POOL=os.environ.get("STACK_SUBNET_POOL", "10.225.0.0/16"))
        fixtures = os.path.join(REPO, ".fixtures/images")
        subprocess.run([sys.executable, os.path.join(REPO, "tests/fixtures/images/build.py"), fixtures],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(self.cmd(["image", "load", "-i", os.path.join(fixtures, "busybox-oci.tar")]),
                       check=True, stdout=subprocess.DEVNULL, env=self.env)
        self.image = "busybox"

    def cmd(self, args):
        return [self.bin, "--root", self.root, "--run-dir", os.path.join(self.dir, "run")] + args

    def file(self, n):
        path = os.path.join(self.dir, "stack-%d.yaml" % n)
        with open(path, "w") as f:
            f.write(gen(n, self.image))
        return path

    def up(self, file, project):
        return timed(self.cmd(["up", "-d", "-f", file, "-p", project]), env=self.env)

    def down(self, file, project):
        return timed(self.cmd(["down", "-f", file, "-p", project]), env=self.env)

    def running(self, file, project):
        out = subprocess.run(self.cmd(["ps", "--format", "json", "-f", file, "-p", project]),
                             capture_output=True, text=True, env=self.env).stdout
        return sum(1 for l in out.splitlines() if l.startswith("{") and json.loads(l)["State"] == "running")

    def extra(self, project):
        pid = find_supervisor(self.root, project)
        return {"supervisor_hwm_kib": hwm_kib(pid) if pid else None}


class Compose:
    def __init__(self, name, exe, image, env=None, strip=False):
        self.name = name
        self.exe = exe
        self.image = image
        self.env = env or dict(os.environ)
        self.strip = strip
        self.dir = tempfile.mkdtemp(prefix="stack-bench-engine-%s-" % name)

    def file(self, n):
        path = os.path.join(self.dir, "compose-%d.yaml" % n)
        with open(path, "w") as f:
            f.write(gen(n, self.image, self.strip))
        return path

    def up(self, file, project):
        return timed(self.exe + ["-p", project, "-f", file, "up", "-d"], env=self.env)

    def down(self, file, project):
        return timed(self.exe + ["-p", project, "-f", file, "down"], env=self.env)

    def running(self, file, project):
        if self.name == "podman-compose":
            out = subprocess.run(["podman", "ps", "-q", "--filter", "label=io.podman.compose.project=" + project],
                                 capture_output=True, text=True).stdout
        else:
            out = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" + project],
                                 capture_output=True, text=True, env=self.env).stdout
        return len(out.split())

    def extra(self, project):
        return {}


def probe_cost(tool, seconds):
    """CPU per probe: 10 services probed every 100 ms, measured at the supervisor."""
    n, interval = 10, 0.1
    text = "services:\n" + "".join(
        "  p%d:\n    image: %s\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 86400 & wait\"]\n"
        "    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 100ms\n" % (i, tool.image)
        for i in range(n))
    file = os.path.join(tool.dir, "probe.yaml")
    with open(file, "w") as f:
        f.write(text)
    project = "wlbench-probe"
    tool.up(file, project)
    try:
        pid = find_supervisor(tool.root, project)
        time.sleep(2)
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        time.sleep(seconds)
        t1, c1 = time.monotonic(), cpu_ticks(pid)
        probes = n * (t1 - t0) / interval
        return {"probes_about": int(probes), "cpu_ms_per_probe": (c1 - c0) * 1000.0 / CLK / probes,
                "supervisor_hwm_kib": hwm_kib(pid)}
    finally:
        tool.down(file, project)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,200")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default="stack")
    ap.add_argument("--probe-seconds", type=float, default=10)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    tools = []
    for t in args.tools.split(","):
        if t == "stack":
            tools.append(Stack())
        elif t == "podman-compose":
            exe = os.environ.get("PODMAN_COMPOSE", "/opt/podman-compose/bin/podman-compose")
            # crun 1.8 refuses this host's hybrid cgroup layout: podman runs runc.
            conf = os.path.join(tempfile.mkdtemp(prefix="stack-bench-podman-"), "containers.conf")
            with open(conf, "w") as f:
                f.write(open("/etc/containers/containers.conf").read() + '\n[engine]\nruntime = "runc"\n'
                        if "[engine]" not in open("/etc/containers/containers.conf").read()
                        else open("/etc/containers/containers.conf").read().replace(
                            "[engine]", '[engine]\nruntime = "runc"'))
            env = dict(os.environ, CONTAINERS_CONF=conf)
            tools.append(Compose(t, [exe], "localhost/busybox:fixture", env=env, strip=True))
        elif t == "docker-compose":
            tools.append(Compose(t, ["docker-compose"], "busybox:fixture", strip=True))
    results = []
    for tool in tools:
        for n in sizes:
            file = tool.file(n)
            project = "wlbench%d" % n
            ups, downs, rss, extra, ok, failed = [], [], [], {}, True, None
            for _ in range(args.runs):
                step = "up"
                try:
                    t_up, rss_up, _ = tool.up(file, project)
                    ups.append(t_up)
                    rss.append(rss_up)
                    running = tool.running(file, project)
                    ok = ok and running == n
                    extra = tool.extra(project)
                    step = "down"
                    downs.append(tool.down(file, project)[0])
                except RuntimeError as e:
                    print("%s %d %s: %s" % (tool.name, n, step, str(e)[-2000:]), file=sys.stderr)
                    failed = step
                    if step == "up":
                        try:
                            tool.down(file, project)
                        except RuntimeError:
                            pass
                    ok = False
                    break
            row = {"tool": tool.name, "services": n, "all_running": ok, "failed": failed,
                   "up_s": statistics.median(ups) if ups else None,
                   "down_s": statistics.median(downs) if downs else None,
                   "up_runs": [round(u, 3) for u in ups], "down_runs": [round(d, 3) for d in downs],
                   "cli_rss_kib": max(rss) if rss else None}
            row.update(extra)
            print(json.dumps(row), flush=True)
            results.append(row)
        if isinstance(tool, Stack) and args.probe_seconds > 0:
            row = dict(tool="stack", probe=probe_cost(tool, args.probe_seconds))
            print(json.dumps(row), flush=True)
        # The temporary root, unless something is still mounted in it.
        if tool.dir not in open("/proc/self/mounts").read():
            shutil.rmtree(tool.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
