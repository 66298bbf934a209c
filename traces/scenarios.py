"""Named drift scenarios: seeded transformations of a trace's true output lengths (and, for
two of them, of who sends what) that give a length estimator something specific to chase.

Every scenario applies to any trace — a generator's or an imported real one — and changes it
from its *change point* on: ``at`` (default 0.5) of the way through the trace's arrival span.
Changed lengths are multiplied, rounded, and clipped to ``[1, room]`` where ``room`` is what
the context leaves after the prompt (``max_total_tokens - prompt_tokens``), so a drifted trace
still runs on the same engine (requests the scenario leaves alone are left as they are); a
request's ``max_tokens`` is raised to its new length if it fell below (a client cap is never
below what is generated).

=================  =============================================================================
``stationary``     nothing changes: the control (does the estimator converge, and to what?)
``step``           every output x``factor`` (0.6: a prompt template asks for brevity) at ``at``
``ramp``           outputs grow linearly from x1 at ``at`` to x``factor`` (2.0) at ``end`` (0.9)
``oscillation``    outputs swing between x1 and x``factor`` (1.8), period ``period`` (0.2 of the
                   span) from ``at`` on (a daily cycle in how people use the service)
``tenant_drift``   one tenant's outputs x``factor`` (2.0) from ``at`` (``tenant``: default the
                   busiest batch tenant, else the busiest) — does a per-category estimator blame
                   everyone?
``mix_shift``      from ``at``, a share ``share`` (0.5) of requests are replaced by requests of
                   the longest categories (``report``, ``technical``) drawn from the same trace:
                   the category mix shifts, each category's length distribution does not
``new_tenant``     from ``at``, a share ``share`` (0.3) of requests come from a new tenant
                   ``tenant-new`` (standard tier) whose outputs run x``factor`` (2.5) longer in
                   every category
``model_upgrade``  every output x``factor`` (1.4) from ``at``: a model upgrade that makes every
                   answer longer
=================  =============================================================================

Randomness (``mix_shift``, ``new_tenant``) comes from one seeded stream per scenario
(:func:`driftsched.ground.rng.stream`), so scenario + seed + trace give identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from driftsched.traces.trace import Trace
from pydantic import Field

from driftsched.ground.config import Config, build
from driftsched.ground.registry import Registry
from driftsched.ground.rng import stream


class ScenarioParams(Config):
    """What every scenario takes: where the change happens and the context it must fit."""

    at: float = Field(0.5, ge=0, lt=1, description="change point, share of the arrival span")
    max_total_tokens: int = Field(2048, ge=2, description="prompt + output must fit this")


class StepParams(ScenarioParams):
    factor: float = Field(0.6, gt=0)


class RampParams(ScenarioParams):
    factor: float = Field(2.0, gt=0)
    end: float = Field(0.9, gt=0, le=1, description="ramp end, share of the span (> at)")


class OscillationParams(ScenarioParams):
    factor: float = Field(1.8, gt=0)
    period: float = Field(0.2, gt=0, le=1, description="period, share of the span")


class TenantDriftParams(ScenarioParams):
    factor: float = Field(2.0, gt=0)
    tenant: str | None = Field(None, description="default: the busiest batch-tier tenant")


class ShareParams(ScenarioParams):
    share: float = Field(0.5, gt=0, le=1)


class NewTenantParams(ScenarioParams):
    share: float = Field(0.3, gt=0, le=1)
    factor: float = Field(2.5, gt=0)


class UpgradeParams(ScenarioParams):
    factor: float = Field(1.4, gt=0)


@dataclass(frozen=True)
class DriftScenario:
    """A named scenario: its parameter model, the transformation, one line of summary."""

    Params: type[ScenarioParams]
    apply: Callable[[pd.DataFrame, ScenarioParams, np.random.Generator], pd.DataFrame]
    summary: str


def _position(frame: pd.DataFrame) -> np.ndarray:
    """Each request's place in the trace's arrival span, 0..1."""
    a = frame["arrival_s"].to_numpy(dtype=float)
    span = float(a.max() - a.min()) if len(a) else 0.0
    return (a - a.min()) / span if span > 0 else np.zeros(len(a))


def _scale(frame: pd.DataFrame, m: np.ndarray, p: ScenarioParams) -> pd.DataFrame:
    """Outputs x ``m``, rounded and clipped to [1, the context's room] where ``m`` != 1 (the
    rest untouched); caps raised to fit."""
    out = frame.copy()
    prompt = out["prompt_tokens"].to_numpy(dtype=np.int64)
    room = np.maximum(1, p.max_total_tokens - prompt)
    before = out["output_tokens"].to_numpy(dtype=np.int64)
    scaled = np.clip(np.rint(before * m).astype(np.int64), 1, room)
    tokens = np.where(np.asarray(m) != 1.0, scaled, before)
    out["output_tokens"] = tokens
    out["max_tokens"] = np.maximum(out["max_tokens"].to_numpy(dtype=np.int64), tokens)
    return out


def _stationary(frame, p, rng):
    return frame.copy()


def _step(frame, p: StepParams, rng):
    return _scale(frame, np.where(_position(frame) >= p.at, p.factor, 1.0), p)


def _ramp(frame, p: RampParams, rng):
    if p.end <= p.at:
        raise ValueError(f"ramp: end ({p.end}) must be after at ({p.at})")
    frac = np.clip((_position(frame) - p.at) / (p.end - p.at), 0.0, 1.0)
    return _scale(frame, 1.0 + frac * (p.factor - 1.0), p)


def _oscillation(frame, p: OscillationParams, rng):
    x = _position(frame)
    swing = (1.0 - np.cos(2 * np.pi * np.maximum(0.0, x - p.at) / p.period)) / 2
    return _scale(frame, 1.0 + swing * (p.factor - 1.0), p)


def _default_tenant(frame: pd.DataFrame) -> str:
    counts = frame.groupby("tenant", observed=True).size().sort_values(ascending=False)
    batch = frame.loc[frame["tier"].astype(str) == "batch", "tenant"]
    if len(batch):
        counts = counts[counts.index.isin(set(batch.astype(str)))]
    return str(counts.index[0])


def _tenant_drift(frame, p: TenantDriftParams, rng):
    tenant = p.tenant or _default_tenant(frame)
    if tenant not in set(frame["tenant"].astype(str)):
        raise ValueError(f"tenant_drift: no tenant {tenant!r} in the trace")
    hit = (_position(frame) >= p.at) & (frame["tenant"].astype(str).to_numpy() == tenant)
    return _scale(frame, np.where(hit, p.factor, 1.0), p)


LONG_CATEGORIES = ("report", "technical")


def _mix_shift(frame, p: ShareParams, rng):
    out = frame.copy()
    donors = np.flatnonzero(out["category"].astype(str).isin(LONG_CATEGORIES).to_numpy())
    if donors.size == 0:
        raise ValueError("mix_shift: the trace has no request of a long category")
    after = np.flatnonzero(_position(out) >= p.at)
    chosen = after[rng.random(after.size) < p.share]
    source = donors[rng.integers(0, donors.size, chosen.size)]
    for col in ("category", "prompt_tokens", "output_tokens", "max_tokens"):
        values = out[col].astype(str if col == "category" else np.int64).to_numpy(copy=True)
        values[chosen] = values[source]
        out[col] = values
    return out  # each moved prompt travels with its own output: it fits as it did


def _new_tenant(frame, p: NewTenantParams, rng):
    out = frame.copy()
    after = np.flatnonzero(_position(out) >= p.at)
    chosen = after[rng.random(after.size) < p.share]
    for col, value in (("tenant", "tenant-new"), ("tier", "standard")):
        values = out[col].astype(str).to_numpy(copy=True)
        values[chosen] = value
        out[col] = values
    m = np.ones(len(out))
    m[chosen] = p.factor
    return _scale(out, m, p)


def _upgrade(frame, p: UpgradeParams, rng):
    return _scale(frame, np.where(_position(frame) >= p.at, p.factor, 1.0), p)


#: name -> scenario (a plugin registers in the entry-point group ``driftsched.drift_scenarios``)
SCENARIOS: Registry[DriftScenario] = Registry(
    "drift scenario",
    {
        "stationary": DriftScenario(ScenarioParams, _stationary, "nothing changes (control)"),
        "step": DriftScenario(StepParams, _step, "every output x0.6 at the midpoint"),
        "ramp": DriftScenario(RampParams, _ramp, "outputs ramp x1 -> x2 over 0.5-0.9"),
        "oscillation": DriftScenario(
            OscillationParams, _oscillation, "outputs swing x1..x1.8, period 0.2 of the span"
        ),
        "tenant_drift": DriftScenario(
            TenantDriftParams, _tenant_drift, "the busiest batch tenant's outputs x2"
        ),
        "mix_shift": DriftScenario(
            ShareParams, _mix_shift, "half the requests become report/technical ones"
        ),
        "new_tenant": DriftScenario(
            NewTenantParams, _new_tenant, "a new tenant: 30% of requests, outputs x2.5"
        ),
        "model_upgrade": DriftScenario(
            UpgradeParams, _upgrade, "every output x1.4 (a model upgrade)"
        ),
    },
    group="driftsched.drift_scenarios",
    accepts=lambda obj: None if isinstance(obj, DriftScenario) else "not a DriftScenario",
)


def apply_scenario(trace: Trace, name: str, seed: int = 0, **params) -> Trace:
    """``trace`` under scenario ``name`` (params validated by its model; one line on error).
    The result's meta records the scenario, its parameters and the change point in seconds."""
    scenario = SCENARIOS.resolve(name)
    p = build(scenario.Params, params, f"drift scenario {name}")
    try:
        frame = scenario.apply(trace.frame, p, stream(seed, f"drift-scenario-{name}"))
    except ValueError as exc:
        from driftsched.ground.errors import InputError

        raise InputError(f"drift scenario {name}: {exc}") from None
    a = trace.frame["arrival_s"]
    change_s = float(a.min() + p.at * (a.max() - a.min())) if len(a) else 0.0
    out = Trace.from_frame(frame, trace.meta.get("generator", "trace"), source=name)
    out.meta["drift_scenario"] = {"name": name, "params": p.model_dump(mode="json"),
                                  "change_s": change_s, "seed": seed}  # fmt: skip
    return out
