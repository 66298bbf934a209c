"""How simulation cost grows with trace size (issue: a million requests in under a minute).

For each source, size (10k, 100k, 1M requests) and policy (fifo, sjf), one fresh subprocess
builds the trace, scales its arrivals to ~90% of one replica's estimated capacity, and runs the
simulator in continuous mode on the bundled L4 prior. Capacity is measured, not estimated: the
first 5,000 requests all arriving at once, completions per second. Sources:

- ``poisson``: synthetic Poisson arrivals, log-normal prompts (median 300) and outputs (150),
  64 requests in flight;
- ``azure``: the Azure 2023 conversation trace (``../shared/traces``) replayed end to end,
  64 in flight;
- ``long``: long outputs (median 1200 tokens) with 8 in flight — a reasoning-style workload,
  where many decode steps separate batch-changing events.

It prints, per case: wall seconds of the simulation, simulated requests per second, events per
second (arrivals + engine events), engine steps simulated, steps per engine event, and the
process's peak RSS. On the 10k cases it also runs step by step — the fast engine with
``fast_forward=False``, and the literal ``engine_impl="reference"`` — and prints the speed-ups.

    python bench/scale.py                      # everything (~10 min on one core)
    python bench/scale.py --sizes 10000,100000 --sources poisson

Figures are measured, never asserted; targets: 1M requests <= 60 s and <= 2 GiB, 1M/100k wall
ratio <= 12, >= 20x faster than step-by-step at 10k.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

AZURE = (
    Path(__file__).resolve().parents[2] / "shared/traces/azure_2023/AzureLLMInferenceTrace_conv.csv"
)
UTILISATION = 0.9
CONCURRENCY = {"poisson": 64, "azure": 64, "long": 8}
#: the synthetic sources: Poisson arrivals with these length distributions
SYNTHETIC = {
    "poisson": {
        "prompt_len": "lognormal:median=300,sigma=0.8",
        "output_len": "lognormal:median=150,sigma=0.8",
        "prompt_cap": 1024,
        "output_cap": 1000,
    },
    "long": {
        "prompt_len": "lognormal:median=100,sigma=0.5",
        "output_len": "lognormal:median=1200,sigma=0.3",
        "prompt_cap": 400,
        "output_cap": 1600,
    },
}
MODES = {
    "fast-forward": {},
    "step-by-step": {"fast_forward": False},
    "reference": {"engine_impl": "reference"},
}


def machine() -> str:
    """One line naming what the figures are measured on: wall times differ by ~2x between hosts
    of the same kind, so a figure without its machine means little."""
    from importlib.metadata import version

    from driftsched.ground.machine import machine_line

    libs = ", ".join(f"{lib} {version(lib)}" for lib in ("numpy", "pandas", "simpy"))
    return f"machine: {machine_line()}, {libs}"


def build_trace(source: str, n: int):
    """The trace, arrivals scaled so the offered load is ~90% of one replica's capacity."""
    import numpy as np
    from driftsched.traces.generators import generate
    from driftsched.traces.importers import import_trace
    from driftsched.traces.trace import Trace

    if source in SYNTHETIC:
        frame = generate("poisson", requests=n, seed=0, **SYNTHETIC[source]).frame
    else:
        base = import_trace("azure", str(AZURE), tenants="uniform:4").frame
        base = base[base["prompt_tokens"] + base["output_tokens"] <= 2048].reset_index(drop=True)
        reps = -(-n // len(base))
        span = float(base["arrival_s"].iloc[-1]) + float(np.diff(base["arrival_s"]).mean())
        import pandas as pd

        frame = pd.concat([base] * reps, ignore_index=True).iloc[:n].copy()
        offsets = np.repeat(np.arange(reps) * span, len(base))[:n]
        frame["arrival_s"] = frame["arrival_s"].to_numpy() + offsets
        frame["request_id"] = [f"az{i}" for i in range(n)]
    capacity = saturated_throughput(frame, CONCURRENCY[source])
    offered = len(frame) / float(frame["arrival_s"].iloc[-1])
    frame = frame.copy()
    frame["arrival_s"] = frame["arrival_s"] * (offered / (UTILISATION * capacity))
    return Trace.from_frame(frame, f"{source}-{n}", source=source), capacity


def saturated_throughput(frame, concurrency: int, sample: int = 5000, profile=None) -> float:
    """One replica's capacity for this workload, measured: the first ``sample`` requests all
    arrive at t=0 and the simulator's completions per second are the capacity."""
    from driftsched.sim.simulation import simulate
    from driftsched.traces.trace import Trace

    head = frame.iloc[:sample].copy()
    head["arrival_s"] = 0.0
    result = simulate(
        Trace.from_frame(head, "saturation", source="bench"),
        mode="continuous",
        max_concurrency=concurrency,
        profile=profile,
    )
    return len(head) / float(result.records["done_s"].max())


def one(source: str, n: int, policy: str, mode: str) -> dict:
    """Run one case in this process; return its figures."""
    from driftsched.sim.simulation import simulate

    t0 = time.perf_counter()
    trace, capacity = build_trace(source, n)
    build_s = time.perf_counter() - t0  # includes the capacity measurement
    t0 = time.perf_counter()
    result = simulate(
        trace,
        policy=policy,
        mode="continuous",
        max_concurrency=CONCURRENCY[source],
        **MODES[mode],
    )
    wall_s = time.perf_counter() - t0
    meta = result.meta
    makespan = float(result.records["done_s"].max())
    events = meta["engine_events"] + n
    return {
        "source": source,
        "requests": n,
        "policy": policy,
        "mode": mode,
        "wall_s": round(wall_s, 2),
        "trace_build_s": round(build_s, 2),
        "requests_per_s": round(n / wall_s),
        "events_per_s": round(events / wall_s),
        "engine_events": meta["engine_events"],
        "engine_steps": meta["engine_steps"],
        "steps_per_event": round(meta["engine_steps"] / meta["engine_events"], 2),
        "engine_busy_fraction": round(meta["engine_busy_s"] / makespan, 3),
        "capacity_req_per_s": round(capacity, 2),
        "e2e_p50_s": round(float(result.records["e2e_s"].median()), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--sources", default="poisson,azure,long")
    ap.add_argument("--policies", default="fifo,sjf")
    ap.add_argument(
        "--one", nargs=4, metavar=("SOURCE", "N", "POLICY", "FF"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.one:
        source, n, policy, mode = args.one
        print(json.dumps(one(source, int(n), policy, mode)))
        return
    sources = [s for s in args.sources.split(",") if s != "azure" or AZURE.exists()]
    if "azure" in args.sources and not AZURE.exists():
        print(f"skipping azure: {AZURE} not found")
    print(machine())
    rows = []
    header = (
        f"{'source':8} {'requests':>9} {'policy':6} {'mode':13} {'wall s':>7} {'req/s':>8} "
        f"{'events/s':>9} {'steps':>10} {'st/ev':>5} {'RSS MiB':>8}"
    )
    print(header)
    for source in sources:
        for n in (int(x) for x in args.sizes.split(",")):
            for policy in args.policies.split(","):
                modes = list(MODES) if n <= 10_000 else ["fast-forward"]
                for mode in modes:
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", source, str(n), policy, mode],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    print(
                        f"{source:8} {n:>9} {policy:6} {row['mode']:13} {row['wall_s']:>7} "
                        f"{row['requests_per_s']:>8} {row['events_per_s']:>9} "
                        f"{row['engine_steps']:>10} {row['steps_per_event']:>5} "
                        f"{row['peak_rss_mib']:>8}",
                        flush=True,
                    )
    print()
    by = {(r["source"], r["requests"], r["policy"], r["mode"]): r for r in rows}
    for source in sources:
        for policy in args.policies.split(","):
            fast = by.get((source, 10_000, policy, "fast-forward"))
            for other in ("step-by-step", "reference"):
                slow = by.get((source, 10_000, policy, other))
                if fast and slow:
                    ratio = slow["wall_s"] / fast["wall_s"]
                    print(
                        f"{source}/{policy}: fast-forward {ratio:.1f}x faster than {other} at 10k"
                    )
            big = by.get((source, 1_000_000, policy, "fast-forward"))
            mid = by.get((source, 100_000, policy, "fast-forward"))
            if big and mid:
                print(
                    f"{source}/{policy}: 1M / 100k wall ratio {big['wall_s'] / mid['wall_s']:.1f}"
                )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
