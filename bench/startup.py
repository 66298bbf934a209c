"""CLI start-up: wall seconds from launch to exit of the commands a user types first.

    python bench/startup.py            # each command 7 times; the median and the best

Target (issue: performance, round two): <= 0.3 s to first useful output for
``driftsched sim run --help`` and ``driftsched sim list`` on the slow host. Printed with the
CPU model; compare within one machine and session only. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

from driftsched.ground.machine import machine_line

COMMANDS = [["--help"], ["sim", "run", "--help"], ["sim", "list"], ["--version"]]


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main(args=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(args)
    exe = shutil.which("driftsched") or sys.exit("driftsched is not on PATH")
    print(f"machine: {machine_line()}")
    base = [timed([sys.executable, "-c", "pass"]) for _ in range(a.repeats)]
    print(
        f"  {'python -c pass':<28} median {statistics.median(base):.3f} s  best {min(base):.3f} s"
    )
    for cmd in COMMANDS:
        runs = [timed([exe, *cmd]) for _ in range(a.repeats)]
        name = "driftsched " + " ".join(cmd)
        print(f"  {name:<28} median {statistics.median(runs):.3f} s  best {min(runs):.3f} s")


if __name__ == "__main__":
    main()
