"""What each feature costs the built-ins: off (not used) and on, and the two builds.

The same 200,000-request Azure 2023 replay as ``bench/scale.py`` (sjf, continuous, 64 in
flight, ~90% load on the bundled L4 prior), one fresh subprocess per run, the variants
interleaved ``--repeats`` times, on one core:

- ``baseline``: the built-in sjf policy, no corrector;
- ``hooks: on_dispatch+on_finish``: an sjf subclass with two no-op hooks (the gateway's hook
  path instead of its plain one);
- ``hooks: admit, rejects none``: an sjf subclass whose ``admit`` hook returns ``None``;
- ``rejections: 5% rejected``: the same hook rejecting every 20th request (rejection records);
- ``prefix caching: on, no prefixes``: the engine with prefix caching on (the trace has no
  ``prefix`` column: the caching bookkeeping alone);
- ``cost model: measured CPU form``: the measured ``cpu-tiny-llama`` profile's form (overheads
  outside steps, the small-batch decode term) — a different engine, so compare per event;
- ``build: pure Python``: the baseline with ``DRIFTSCHED_PURE=1``.

It prints, per variant: the best wall seconds, engine events, microseconds per engine event,
and the ratio to the baseline per event. Measured, never asserted.

    python bench/features.py                  # ~3 min
    python bench/features.py --requests 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = {
    "baseline": {},
    "hooks: on_dispatch+on_finish": {"policy": "hooked"},
    "hooks: admit, rejects none": {"policy": "admit-none"},
    "rejections: 5% rejected": {"policy": "reject-5pct"},
    "prefix caching: on, no prefixes": {"engine": {"enable_prefix_caching": True}},
    "cost model: measured CPU form": {"profile": "cpu-tiny-llama"},
    "build: pure Python": {"pure": True},
}


def _policies():
    from driftsched.sim.policies.sjf import SjfPolicy

    class Hooked(SjfPolicy):
        def on_dispatch(self, view, now_s):
            pass

        def on_finish(self, view, outcome):
            pass

    class AdmitNone(SjfPolicy):
        def admit(self, view, now_s):
            return None

    class Reject5(SjfPolicy):
        def admit(self, view, now_s):
            return "every 20th" if view.index % 20 == 0 else None

    return {"hooked": Hooked, "admit-none": AdmitNone, "reject-5pct": Reject5}


def one(n: int, variant: str) -> dict:
    from driftsched.sim.simulation import simulate
    from scale import CONCURRENCY, build_trace

    spec = dict(VARIANTS[variant])
    spec.pop("pure", None)
    policy = _policies()[spec.pop("policy")] if "policy" in spec else "sjf"
    trace, _ = build_trace("azure", n)
    t0 = time.perf_counter()
    result = simulate(
        trace, policy=policy, mode="continuous", max_concurrency=CONCURRENCY["azure"], **spec
    )
    wall_s = time.perf_counter() - t0
    events = result.meta["engine_events"]
    return {"wall_s": wall_s, "events": events, "rejected": int(result.records["rejected"].sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1])))
        return
    from scale import AZURE, machine

    if not AZURE.exists():
        print(f"skipped: the Azure trace is not at {AZURE}")
        return
    print(machine())
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for variant, spec in VARIANTS.items():
            env = dict(os.environ)
            env.pop("DRIFTSCHED_PURE", None)
            if spec.get("pure"):
                env["DRIFTSCHED_PURE"] = "1"
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(args.requests), variant],
                capture_output=True, text=True, check=True, env=env,
            )  # fmt: skip
            row = json.loads(out.stdout.strip().splitlines()[-1])
            if variant not in best or row["wall_s"] < best[variant]["wall_s"]:
                best[variant] = row
    base = best["baseline"]
    base_us = base["wall_s"] / base["events"] * 1e6
    print(f"{args.requests:,} requests, best of {args.repeats}, interleaved")
    print(
        f"{'variant':34} {'wall s':>7} {'events':>9} {'us/event':>9} {'vs base':>8} {'rejected':>9}"
    )
    for variant, row in best.items():
        us = row["wall_s"] / row["events"] * 1e6
        print(
            f"{variant:34} {row['wall_s']:7.2f} {row['events']:9d} {us:9.2f} "
            f"{us / base_us:8.3f} {row['rejected']:9d}"
        )


if __name__ == "__main__":
    main()
