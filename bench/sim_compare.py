"""Benchmark: ``sim compare`` over the study's 3000-request workload, 5 policies x 2 correctors,
both dispatch modes. Prints wall seconds and simulated steps per second; asserts nothing.

Target (issue 3): under 20 s wall on one core for one mode. Pin to one core with
``taskset -c 0 python bench/sim_compare.py``.
"""

from __future__ import annotations

import os
import platform
import time

from driftsched.sim.config import SimConfig
from driftsched.sim.correctors import CORRECTORS
from driftsched.sim.policies import STUDY_POLICIES
from driftsched.sim.studies.compare import compare
from driftsched.traces.generators import generate


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: {platform.machine()}, python {platform.python_version()}, "
        f"{cores} core(s) available to this process"
    )
    trace = generate("driftsched-paper", requests=3000, seed=0)
    policies, correctors = list(STUDY_POLICIES), ["none", "ewma"]  # the study's five
    assert set(correctors) <= set(CORRECTORS)
    for mode in ("microbatch", "continuous"):
        start = time.perf_counter()
        result = compare(trace, policies, correctors, SimConfig(mode=mode))
        wall = time.perf_counter() - start
        sim_s = sum(r.meta["simulated_until_s"] for r in result.runs.values())
        print(
            f"{mode:>10}: {len(result.runs)} runs x 3000 requests in {wall:.2f} s wall "
            f"({wall / len(result.runs):.2f} s/run; {sim_s:,.0f} simulated seconds; "
            f"target < 20 s)"
        )


if __name__ == "__main__":
    main()
