#!/usr/bin/env python3
"""Writes a generated stack of N services to stdout, the same file for every
tool measured.

Usage: gen.py N IMAGE [--plain]

Three dependency levels of a third each: level 0 services have a health check
(`true`, probed every 100 ms during a 30 s start period, then every 30 s);
each level 1 service waits for one level 0 service to be healthy, each level 2
service for one level 1 service to have started. Every container runs busybox
`sleep` under a shell that exits on SIGTERM, so `down` measures the tools,
not a stop grace period. `start_interval` needs Docker 25 / Compose spec 2.20;
older peers (Docker 20.10, podman 4.3) get the file without it and with
`interval: 1s` (run.py rewrites it), so their first probe comes after 1 s.

With --plain the same three levels have no health check and every
dependency is `service_started`: the cost of starting, without waiting.
"""
import sys


def main():
    n, image = int(sys.argv[1]), sys.argv[2]
    plain = "--plain" in sys.argv[3:]
    third = max(1, n // 3)
    print("services:")
    for i in range(n):
        level = 0 if i < third else (1 if i < 2 * third else 2)
        print(f"  s{i}:")
        print(f"    image: {image}")
        print("    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 86400 & wait\"]")
        if level == 0:
            if not plain:
                print("    healthcheck:")
                print("      test: [\"CMD\", \"true\"]")
                print("      interval: 30s")
                print("      start_period: 30s")
                print("      start_interval: 100ms")
        elif level == 1:
            print("    depends_on:")
            print(f"      s{i - third}:")
            print("        condition: service_started" if plain else "        condition: service_healthy")
        else:
            print("    depends_on:")
            print(f"      s{i - third}:")
            print("        condition: service_started")


if __name__ == "__main__":
    main()
