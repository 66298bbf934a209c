"""CLI start-up: wall seconds from launch to exit of the commands a user types first.

    python bench/startup.py            # each command 7 times; the median and the best

Target (issue: performance, round two): <= 0.3 s to first useful output for
``driftsched sim run --help`` and ``driftsched sim list`` on the slow host. Printed with the
CPU model; compare within one machine and session only. Figures are printed, never asserted.

Python caches each module's compiled bytecode on first import, so every run after a user's
first reads it. An environment that sets ``PYTHONDONTWRITEBYTECODE`` (as the development
sandbox does) compiles driftsched's modules from source on every run instead: the script then
times the commands both ways — as the environment runs them, and with the bytecode written
once beforehand (``python -m compileall`` over driftsched's packages, removed afterwards).
"""

from __future__ import annotations

import argparse
import contextlib
import os
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


@contextlib.contextmanager
def bytecode_cached():
    """Runs inside read driftsched's bytecode from a cache; yields how: written by Python
    itself (its default), or, where ``PYTHONDONTWRITEBYTECODE`` is set, written here for this
    run (driftsched's packages byte-compiled; the caches this made removed on the way out)."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        yield "written (Python's default)"
        return
    import compileall
    import importlib
    from pathlib import Path

    packages = (
        "driftsched",
        *(f"driftsched.{n}" for n in ("sim", "traces", "calibrate", "validate")),
    )
    folders = {Path(importlib.import_module(name).__file__).parent for name in packages}
    before = {c for f in folders for c in f.rglob("__pycache__")}
    try:
        for folder in sorted(folders):
            compileall.compile_dir(folder, quiet=1)
        yield "written for this run (PYTHONDONTWRITEBYTECODE is set here)"
    finally:
        for cache in {c for f in folders for c in f.rglob("__pycache__")} - before:
            shutil.rmtree(cache, ignore_errors=True)


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
    ways = [("bytecode cache", bytecode_cached())]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        ways.insert(0, ("no bytecode cache (as this environment runs)", contextlib.nullcontext()))
    for label, way in ways:
        with way as said:
            print(f"{label}: {said}" if said else label)
            for cmd in COMMANDS:
                runs = [timed([exe, *cmd]) for _ in range(a.repeats)]
                name = "driftsched " + " ".join(cmd)
                print(
                    f"  {name:<28} median {statistics.median(runs):.3f} s  best {min(runs):.3f} s"
                )


if __name__ == "__main__":
    main()
