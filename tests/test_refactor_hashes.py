"""Behaviour-preserving refactors prove it: these runs' records, time series, corrector series,
summaries and counters must stay bit-identical (fingerprints in ``tests/golden/``).

The set covers every dispatch path and both engines: the study workload in both modes, the Azure
2023 replay, simultaneous arrivals (one instant, a coarse grid), two replicas under each router
(continuous) and three micro-batch workers, the literal reference engine, step-by-step timing,
sjf+ewma, weighted, aging, priority with a horizon. A change that alters any of them on purpose
regenerates the file with ``python -m tests.test_refactor_hashes --write`` and says why in its
commit.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

import pytest
from driftsched.sim.simulation import simulate
from driftsched.traces.generators import generate

from tests.conftest import SHARED_TRACES
from tests.fingerprint import result_digests

GOLDEN = Path(__file__).parent / "golden" / "refactor_hashes.json"
AZURE = SHARED_TRACES / "azure_2023" / "AzureLLMInferenceTrace_conv.csv"

#: name -> (trace, simulation config)
CASES: dict[str, tuple[str, dict]] = {
    "paper-sjf-ewma-continuous": ("paper", {"policy": "sjf", "corrector": "ewma"}),
    "paper-sjf-ewma-microbatch": (
        "paper",
        {"policy": "sjf", "corrector": "ewma", "mode": "microbatch", "batch_size": 32},
    ),
    "paper-weighted-microbatch": ("paper", {"policy": "weighted", "mode": "microbatch"}),
    "paper-aging-ewma": ("paper", {"policy": "aging", "corrector": "ewma"}),
    "paper-priority-horizon": ("paper", {"policy": "priority", "horizon_s": 120.0}),
    "paper-fifo-reference": ("paper", {"engine_impl": "reference", "max_concurrency": 32}),
    "paper-sjf-step-by-step": ("paper", {"policy": "sjf", "fast_forward": False}),
    "paper-oracle-sjf": ("paper", {"policy": "sjf", "corrector": "oracle"}),
    "burst-2x-round_robin": ("burst", {"replicas": 2, "router": "round_robin"}),
    "burst-2x-least_outstanding": ("burst", {"replicas": 2, "router": "least_outstanding"}),
    "burst-2x-least_kv": ("burst", {"replicas": 2, "router": "least_kv", "policy": "sjf"}),
    "burst-3x-microbatch": ("burst", {"replicas": 3, "mode": "microbatch", "batch_size": 8}),
    # the measured CPU profile: overheads outside steps and the small-batch decode term
    "fast-cpu-sjf-ewma-continuous": (
        "fast",
        {"profile": "cpu-tiny-llama", "policy": "sjf", "corrector": "ewma", "max_concurrency": 16},
    ),
    "fast-cpu-sjf-ewma-microbatch": (
        "fast",
        {"profile": "cpu-tiny-llama", "policy": "sjf", "corrector": "ewma", "mode": "microbatch"},
    ),
    # arrivals at one instant (a saturation burst) and on a coarse grid (ties with each other
    # and with step boundaries): what is due at an instant is admitted before engines start
    "zero-sjf-continuous": ("zero", {"policy": "sjf", "max_concurrency": 16}),
    "zero-2x-least_outstanding": ("zero", {"replicas": 2, "router": "least_outstanding"}),
    "grid-sjf-ewma-continuous": ("grid", {"policy": "sjf", "corrector": "ewma"}),
    "grid-3x-round_robin": ("grid", {"replicas": 3, "router": "round_robin", "policy": "sjf"}),
    # prefix caching: shared system prompts, roomy and under KV pressure (evictions, preemptions)
    "sessions-sjf-prefix-caching": (
        "sessions",
        {"policy": "sjf", "engine": {"enable_prefix_caching": True}},
    ),
    "sessions-fifo-prefix-caching-kv-pressure": (
        "sessions",
        {"engine": {"enable_prefix_caching": True, "num_gpu_blocks": 300}, "max_concurrency": 32},
    ),
    "paper-prefix-caching-no-prefixes": ("paper", {"engine": {"enable_prefix_caching": True}}),
    "azure-fifo-replay": ("azure", {"max_concurrency": 64, "oversize": "drop"}),
    "azure-sjf-ewma-replay": ("azure", {"policy": "sjf", "corrector": "ewma", "oversize": "drop"}),
}


@cache
def _trace(kind: str):
    if kind == "paper":
        return generate("driftsched-paper", requests=3000, seed=0)
    if kind == "fast":  # the study's 3000 requests, 40x as fast: the tiny CPU model's load
        tr = generate("driftsched-paper", requests=3000, seed=0)
        frame = tr.frame.copy()
        frame["arrival_s"] = frame["arrival_s"] / 40
        return type(tr).from_frame(frame, "fast", source="test")
    if kind == "burst":  # 600 requests at 4x the study's rate: queues build on two replicas
        tr = generate("driftsched-paper", requests=600, seed=1)
        frame = tr.frame.copy()
        frame["arrival_s"] = frame["arrival_s"] / 4
        return type(tr).from_frame(frame, "burst", source="test")
    if kind == "sessions":  # multi-turn chat over shared system prompts (a prefix column)
        return generate("sessions", requests=2000, seed=1, rate_per_s=6.0)
    if kind in ("zero", "grid"):  # 600 at t=0; the study's 3000 at 2x, on a 0.25 s grid
        tr = generate("driftsched-paper", requests=600 if kind == "zero" else 3000, seed=2)
        frame = tr.frame.copy()
        frame["arrival_s"] = (
            0.0 if kind == "zero" else (frame["arrival_s"] / 2 / 0.25).round() * 0.25
        )
        return type(tr).from_frame(frame, kind, source="test")
    from driftsched.traces.importers import import_trace

    return import_trace("azure", AZURE, tenants="uniform:4", limit=5000)


def digests(name: str) -> dict[str, str]:
    kind, config = CASES[name]
    return result_digests(simulate(_trace(kind), **config))


@pytest.mark.parametrize("name", list(CASES))
def test_outputs_are_bit_identical_to_the_golden_fingerprints(name):
    if CASES[name][0] == "azure" and not AZURE.is_file():
        pytest.skip(f"Azure trace not found at {AZURE}")
    expected = json.loads(GOLDEN.read_text())[name]
    assert digests(name) == expected


if __name__ == "__main__":  # python -m tests.test_refactor_hashes [--write]
    table = {name: digests(name) for name in CASES}
    text = json.dumps(table, indent=2, sort_keys=True) + "\n"
    if "--write" in sys.argv:
        GOLDEN.write_text(text)
    print(text)
