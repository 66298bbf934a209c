"""Validation scenarios: a seeded sample from a grid of policy x corrector x dispatch mode x load
level x trace slice, each with the exact workload both the live engine and the simulator run.

Workload: the study's generator (``driftsched-paper``, ``requests`` per slice, slice k uses seed
k) — or windows of a trace file — *scaled to the engine*: arrival times are stretched so the mean
offered load equals ``load`` x the engine's estimated capacity (from its measured profile). The
study's two phases survive the scaling: the learning phase runs below capacity, the stress phase
well above it (sustained contention).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from driftsched.sim.costmodel import BatchShape, CostModel, chunk_attention
from driftsched.sim.profile import Profile
from driftsched.traces.generators import generate
from driftsched.traces.trace import Trace, read_trace
from pydantic import Field, field_validator

from driftsched.ground.config import Config
from driftsched.ground.errors import InputError
from driftsched.ground.plugins import file_safe


class Scenario(Config):
    policy: str
    corrector: str
    mode: str
    load: float = Field(gt=0)
    slice: int = Field(ge=0)

    @property
    def key(self) -> str:
        policy, corrector = file_safe(self.policy), file_safe(self.corrector)
        return f"{policy}-{corrector}-{self.mode}-x{self.load:g}-s{self.slice}"


class Grid(Config):
    """What to sample scenarios from, and the workload and gateway settings they share."""

    policies: list[str] = ["fifo", "priority", "weighted", "sjf", "aging"]
    correctors: list[str] = ["none", "ewma"]
    modes: list[str] = ["continuous"]
    loads: list[float] = [1.0]
    slices: list[int] = [0]
    scenarios: int = Field(6, ge=1, description="how many to sample (K)")
    seed: int = Field(0, ge=0)
    requests: int = Field(300, ge=10, description="requests per scenario")
    trace: str | None = Field(None, description="trace file to slice; default: the study's")
    max_concurrency: int = Field(16, ge=1)
    batch_size: int = Field(32, ge=1)
    batch_wait_s: float = Field(0.010, ge=0)

    @field_validator("policies")
    @classmethod
    def _policies(cls, specs: list[str]) -> list[str]:
        """Specs checked and canonical (a plugin file's path absolute), as in a sweep."""
        from driftsched.sim.policies import POLICIES

        return [POLICIES.check(spec) for spec in specs]

    @field_validator("correctors")
    @classmethod
    def _correctors(cls, specs: list[str]) -> list[str]:
        from driftsched.sim.correctors import CORRECTORS

        return [CORRECTORS.check(spec) for spec in specs]

    def sample(self) -> list[Scenario]:
        """K distinct scenarios, seeded; all of them when the grid is smaller than K."""
        combos = list(
            itertools.product(self.policies, self.correctors, self.modes, self.loads, self.slices)
        )
        rng = np.random.default_rng(self.seed)
        pick = sorted(rng.choice(len(combos), min(self.scenarios, len(combos)), replace=False))
        return [
            Scenario(policy=p, corrector=c, mode=m, load=lo, slice=s)
            for p, c, m, lo, s in (combos[i] for i in pick)
        ]


def capacity_requests_per_s(profile: Profile, frame: pd.DataFrame, concurrency: int) -> float:
    """Rough engine capacity for this workload: prefill plus decode time per request at
    ``concurrency`` sequences decoding together (the overheads of the profile included), or
    fewer when the KV cache cannot hold that many of this workload's mean request."""
    cost = CostModel(profile)
    prompt = float(frame["prompt_tokens"].mean())
    output = float(frame["output_tokens"].mean())
    e = profile.engine
    kv_fit = int((e.num_gpu_blocks - 1) * e.block_size // (prompt + output))
    batch = max(1, min(concurrency, e.max_num_seqs, kv_fit))
    context = prompt + output / 2
    ov = profile.overheads_s
    decode_step = cost.step_time(
        BatchShape(decode_requests=batch, decode_context_tokens=int(batch * context))
    )
    decode_step += ov.get("output_per_step_s", 0) + batch * ov.get("output_per_request_s", 0)
    prefill = cost.step_time(
        BatchShape(
            prefill_tokens=int(prompt),
            prefill_requests=1,
            prefill_attention=chunk_attention(int(prompt), 0),
        )
    )
    prefill -= cost.step_time(BatchShape())  # the step's fixed part is shared with decodes
    return 1.0 / (prefill + output * decode_step / batch)


def workload(grid: Grid, scenario: Scenario, profile: Profile, replicas: int = 1) -> Trace:
    """The scenario's trace: slice, then arrivals scaled to ``load`` x capacity (of
    ``replicas`` engines)."""
    if grid.trace is None:
        base = generate("driftsched-paper", requests=grid.requests, seed=scenario.slice).frame
    else:
        full = read_trace(Path(grid.trace)).frame
        start = scenario.slice * grid.requests
        if start >= len(full):
            raise InputError(
                f"{grid.trace}: slice {scenario.slice} starts at row {start + 1} "
                f"but the trace has {len(full)} rows"
            )
        base = full.iloc[start : start + grid.requests].reset_index(drop=True)
        base["arrival_s"] = base["arrival_s"] - base["arrival_s"].iloc[0]
    span = float(base["arrival_s"].iloc[-1]) or 1.0
    offered = len(base) / span
    target = scenario.load * replicas * capacity_requests_per_s(profile, base, grid.max_concurrency)
    frame = base.copy()
    frame["arrival_s"] = frame["arrival_s"] * (offered / target)
    return Trace.from_frame(
        frame,
        f"scenario {scenario.key}",
        source="validate",
        scenario=scenario.model_dump(),
        stretch=offered / target,
    )
