"""Does a frozen cgroup v2 use CPU when a controller is enabled above it?

Why the pause test allows a frozen container a little CPU time (README,
"Hosts", controllers as needed). For a parent delegating only memory, pids
and io ("needed", as the runtime does) and for one delegating every
controller ("all"): a busy shell in a leaf below it is frozen, then `+cpu
+cpuset` is written to the parent's cgroup.subtree_control, as when another
container under the same parent asks for a cpu limit. Reports, per trial,
the CPU time the frozen leaf was charged in the next 300 ms, whether its
program made progress (a counter it writes) and whether it is still frozen.
Needs root on a cgroup v2 host with the cpu and cpuset controllers, e.g.

    scripts/vm-test -- python3 bench/cgroup/freeze_migration.py
"""

import os
import random
import subprocess
import tempfile
import time

ROOT = "/sys/fs/cgroup"


def read(path):
    with open(path) as f:
        return f.read().strip()


def write(path, value):
    with open(path, "w") as f:
        f.write(value)


def usage_usec(cgroup):
    for line in read(f"{cgroup}/cpu.stat").splitlines():
        key, value = line.split()
        if key == "usage_usec":
            return int(value)
    raise RuntimeError(f"no usage_usec in {cgroup}/cpu.stat")


def frozen(cgroup):
    return "frozen 1" in read(f"{cgroup}/cgroup.events")


def trial(mode, available, counter):
    parent = f"{ROOT}/freeze-migration-{mode}-{random.randint(0, 999999)}"
    os.mkdir(parent)
    want = available if mode == "all" else ["memory", "pids", "io"]
    write(f"{parent}/cgroup.subtree_control", " ".join("+" + c for c in want))
    leaf = f"{parent}/leaf"
    os.mkdir(leaf)
    loop = f"echo $$ > {leaf}/cgroup.procs; i=0; while :; do i=$((i+1)); echo $i > {counter}; done"
    shell = subprocess.Popen(["sh", "-c", loop])
    try:
        deadline = time.time() + 20
        while not os.path.exists(counter) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        write(f"{leaf}/cgroup.freeze", "1")
        while not frozen(leaf):
            pass
        time.sleep(0.1)
        cpu0, n0 = usage_usec(leaf), read(counter)
        write(f"{parent}/cgroup.subtree_control", "+cpu +cpuset")
        time.sleep(0.3)
        cpu1, n1 = usage_usec(leaf), read(counter)
        return cpu1 - cpu0, n0 == n1, frozen(leaf)
    finally:
        write(f"{leaf}/cgroup.kill", "1")
        shell.wait()
        os.unlink(counter)
        os.rmdir(leaf)
        os.rmdir(parent)


def main():
    available = read(f"{ROOT}/cgroup.controllers").split()
    write(f"{ROOT}/cgroup.subtree_control", " ".join("+" + c for c in available))
    counter = os.path.join(tempfile.mkdtemp(), "n")
    for mode in ["needed", "all"] * 2:
        results = [trial(mode, available, counter) for _ in range(5)]
        used = [r[0] for r in results]
        print(
            f"{mode}: CPU us charged while frozen per trial {used}; "
            f"no progress in {sum(r[1] for r in results)}/5; "
            f"still frozen in {sum(r[2] for r in results)}/5",
            flush=True,
        )


if __name__ == "__main__":
    main()
