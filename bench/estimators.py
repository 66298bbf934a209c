"""Each corrector's cost per request and its memory over a long stream of finishes.

    python bench/estimators.py                   # 1,000,000 observations each (~15 min:
                                                 # tracing memory is slow)
    python bench/estimators.py --observations 100000

One ``estimate`` then one ``observe`` per request, on a stream of admissions drawn once
(seeded: 4 categories, 3 tiers, 50 tenants, log-normal prompts and outputs), the corrector
alone (no simulation). Prints, per corrector: microseconds per request (estimate + observe),
the Python heap it holds after the stream (tracemalloc: what the corrector object retains,
measured after a second, untimed pass), and that figure after a tenth of the stream — bounded
memory shows as the two being equal. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from driftsched.sim.correctors import CORRECTORS, is_oracle, make_corrector
from driftsched.sim.request import Admission

sys.path.insert(0, str(Path(__file__).parent))
from scale import machine  # noqa: E402

CATEGORIES = ("short_qa", "summary", "technical", "report")
TIERS = ("premium", "standard", "batch")


def admissions(n: int, seed: int = 0) -> tuple[list[Admission], np.ndarray]:
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, 4, n)
    tier = rng.integers(0, 3, n)
    tenant = rng.integers(0, 50, n)
    prompt = np.maximum(1, np.rint(300 * np.exp(0.8 * rng.standard_normal(n)))).astype(int)
    out = np.maximum(1, np.rint((40 + 80 * cat) * np.exp(0.6 * rng.standard_normal(n))))
    nan = float("nan")
    adms = [
        Admission(
            i,
            "",
            float(i),
            f"t{tenant[i]}",
            TIERS[tier[i]],
            int(tier[i]) + 1,
            CATEGORIES[cat[i]],
            int(prompt[i]),
            2048,
            nan,
            nan,
        )  # fmt: skip
        for i in range(n)
    ]
    return adms, out.astype(int)


def run(c, adms, out) -> None:
    est, obs = c.estimate, c.observe
    for a, n in zip(adms, out, strict=True):
        est(a)
        obs(a, int(n))


def retained(name: str, adms, out) -> int:
    """Bytes the corrector holds after the stream (tracemalloc, a fresh instance)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    c = make_corrector(name)
    run(c, adms, out)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(s.size_diff for s in after.compare_to(base, "filename"))
    del c
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=1_000_000)
    ap.add_argument("--quick-memory", action="store_true",
                    help="trace memory over a tenth of the stream only")  # fmt: skip
    args = ap.parse_args()
    n = args.observations
    print(machine())
    adms, out = admissions(n)
    print(f"{n:,} requests, one estimate + one observe each, the corrector alone\n")
    names = [c for c in CORRECTORS if not is_oracle(c)]
    timing = {}
    for name in names:  # the timing pass first, for every corrector (no tracing)
        c = make_corrector(name)
        start = time.perf_counter()
        run(c, adms, out)
        timing[name] = (time.perf_counter() - start) / n * 1e6
    print("| corrector | µs per request | retained after 1/10 | retained after all |")
    print("|---|---|---|---|")
    for name in names:
        tenth = retained(name, adms[: n // 10], out[: n // 10])
        full = retained(name, adms, out) if not args.quick_memory else float("nan")
        print(f"| {name} | {timing[name]:.2f} | {tenth / 1024:.1f} KiB | {full / 1024:.1f} KiB |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
