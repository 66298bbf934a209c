"""Schedule replay and the run's measured speed: telling a semantic error from a timing error.

A live run logs every engine step (:data:`~driftsched.validate.live.STEP_COLUMNS`). Two
comparisons come from that log:

- **Replay** (:func:`replay`): the simulator's gateway, dispatcher and engine model run on the
  same requests, step by step, with the k-th step lasting exactly as long as the live engine's
  k-th step did (:class:`ReplayCostModel`) instead of what the cost model predicts. Timing is
  then the machine's own, so what differs is semantics: the share of steps whose composition
  (batch shape: prefill tokens and attention pairs, prefill requests, decode requests, decode
  context tokens) is identical, the first step where they diverge, and the per-request error of
  the timestamps. Each replayed step ends when the live step released the engine (the next
  step's start while the loop stayed busy, else the moment its outputs were handled), on the
  live clock, so both runs share every boundary exactly (:func:`ends`). A request admitted
  while the engine was busy enters at the start of the first live step after its admission
  (the boundary where it could first join); one admitted to an idle engine enters at its
  admission (:func:`boundaries`). Its latencies are then measured from its real
  ``arrival_s``.
- **Speed** (:func:`run_speed`): measured over predicted time of the live run's own steps —
  how much slower (> 1) or faster the machine ran than the profile says, for exactly this
  scenario's steps. :func:`rescaled_profile` multiplies a profile by it: a sim on that profile
  separates the cost model's *shape* error from the machine's speed on the day. It is an
  explicit, reported option (``validate run --rescale``), never applied silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from driftsched.sim.costmodel import BatchShape, CostModel
from driftsched.sim.profile import Profile
from driftsched.sim.records import latencies
from driftsched.validate.fidelity import paired

#: the shape fields compared step by step
SHAPE = list(BatchShape._fields)


def ends(steps: pd.DataFrame) -> np.ndarray:
    """When each live step released its engine: the next step's start (on the same replica)
    while the loop kept it busy, else the moment its outputs were handled (the engine then went
    idle)."""
    if "replica" in steps.columns and steps["replica"].nunique() > 1:
        out = np.empty(len(steps))
        for rows in steps.groupby("replica").indices.values():
            out[rows] = ends(steps.iloc[rows].drop(columns="replica"))
        return out
    start = steps["start_s"].to_numpy(dtype=float)
    end = steps["end_s"].to_numpy(dtype=float)
    nxt = np.append(start[1:], np.inf)
    busy = ~steps["idle_after"].to_numpy(dtype=bool)
    return np.where(busy & np.isfinite(nxt), nxt, end)


def durations(steps: pd.DataFrame) -> np.ndarray:
    """Seconds each live step held the engine (see :func:`ends`)."""
    return ends(steps) - steps["start_s"].to_numpy(dtype=float)


class ReplayCostModel:
    """A cost model that plays back a live run's steps, in order: the k-th step the simulator
    runs ends when the live k-th step released the engine (``end_s``, absolute, on the live
    clock — so a step the simulator started a little earlier or later still ends on the live
    boundary), and the shape of every step is logged. A step the simulator starts after that
    end lasts the live step's own duration; steps past the end of the log fall back to
    ``fallback`` (a :class:`CostModel`). No closed form: the simulator runs step by step. The
    driver binds its clock through :meth:`bind_clock`."""

    closed_form_runs = False

    def __init__(self, end_s: np.ndarray, seconds: np.ndarray, fallback: CostModel):
        self.end_s = [float(x) for x in end_s]
        self.seconds = [float(x) for x in seconds]
        self.fallback = fallback
        self.shapes: list[BatchShape] = []
        self.now = None

    def bind_clock(self, now) -> None:
        """``now()`` is the simulation's clock (called when the driver is built)."""
        self.now = now

    def step_seconds(self, shape: BatchShape, admitted: int = 0) -> float:
        k = len(self.shapes)
        self.shapes.append(shape)
        if k >= len(self.end_s):
            return self.fallback.step_seconds(shape, admitted)
        left = self.end_s[k] - self.now()
        return left if left > 0 else self.seconds[k]

    def run_seconds(self, first_s: float, decode_requests: int, steps: int) -> float:
        raise NotImplementedError("replay runs step by step")

    steps_within = run_seconds


def boundaries(steps: pd.DataFrame, admit_s: np.ndarray) -> np.ndarray:
    """When each request (admitted at ``admit_s``) enters the replay: while the engine was busy,
    at the start of the first live step after its admission (the boundary where it could first
    join); after the engine went idle (or before any step), at its admission itself. NaN stays
    NaN (never admitted)."""
    start = steps["start_s"].to_numpy(dtype=float)
    idle = steps["idle_after"].to_numpy(dtype=bool)
    out = np.array(admit_s, dtype=float)
    k = np.searchsorted(start, out, side="left")  # first step starting at or after admission
    busy = np.zeros(len(out), dtype=bool)
    has_prev, has_next = k > 0, k < len(start)
    busy[has_prev] = ~idle[k[has_prev] - 1]  # the step before it kept the engine busy
    snap = busy & has_next & ~np.isnan(out)
    out[snap] = start[k[snap]]
    return out


def replay(trace, config, profile: Profile, steps: pd.DataFrame, admit_s: np.ndarray, snap=None):
    """Run ``trace`` under ``config`` with the live ``steps``' durations, each replica's steps
    played back on its own live boundaries, each request entering at its live boundary
    (:func:`boundaries`; with ``snap`` false, at its admission itself — the loop of several
    replicas admits in real time; default: snap with one replica). Returns ``(records,
    report)``: records measured from the real arrivals, and ``replay_steps_live``,
    ``replay_steps_sim``, ``replay_identical_share`` (over the live steps),
    ``replay_first_divergence`` (replica, its step index and both shapes, or ``None``)."""
    from driftsched.sim.simulation import simulate
    from driftsched.traces.trace import Trace

    snap = config.replicas == 1 if snap is None else snap
    frame = trace.frame.copy()
    enter = boundaries(steps, admit_s) if snap else np.array(admit_s, dtype=float)
    enter = np.where(np.isnan(enter), frame["arrival_s"].to_numpy(dtype=float), enter)
    frame["arrival_s"] = np.maximum.accumulate(enter)  # admission order is arrival order
    shifted = Trace.from_frame(frame, f"{trace.meta.get('source')} (replay)", source="replay")
    config = config.model_copy(update={"fast_forward": False})
    fallback = CostModel(profile, overheads=config.overheads)
    replica = (
        steps["replica"].to_numpy(dtype=int)
        if "replica" in steps.columns
        else np.zeros(len(steps), dtype=int)
    )
    groups = [steps[replica == r] for r in range(config.replicas)]
    models = [ReplayCostModel(ends(g), durations(g), fallback) for g in groups]
    result = simulate(shifted, config, profile, cost_model=models)
    records = _from_arrivals(result.records, trace.frame["arrival_s"].to_numpy(dtype=float))
    n_live = n_sim = n_same = 0
    first = None  # (live start, replica, step, live rows, sim rows)
    for r, (g, model) in enumerate(zip(groups, models, strict=True)):
        live = g[SHAPE].to_numpy(dtype=float)
        sim = np.array(model.shapes, dtype=float).reshape(-1, len(SHAPE))
        n = min(len(live), len(sim))
        same = (live[:n] == sim[:n]).all(axis=1)
        n_live, n_sim, n_same = n_live + len(live), n_sim + len(sim), n_same + int(same.sum())
        k = (
            int(np.flatnonzero(~same)[0])
            if (~same).any()
            else (n if len(live) != len(sim) else None)
        )
        if k is not None:
            at = float(g["start_s"].iloc[k]) if k < len(g) else np.inf
            if first is None or at < first[0]:
                first = (at, r, k, live, sim)
    report = {
        "replay_steps_live": n_live,
        "replay_steps_sim": n_sim,
        "replay_identical_share": float(n_same / n_live) if n_live else float("nan"),
        "replay_first_divergence": None
        if first is None
        else {
            **({"replica": first[1]} if config.replicas > 1 else {}),
            "step": first[2],
            "live": _shape(first[3], first[2]),
            "sim": _shape(first[4], first[2]),
        },
    }
    return records, report


def _from_arrivals(records: pd.DataFrame, arrival_s: np.ndarray) -> pd.DataFrame:
    """``records`` with latencies measured from ``arrival_s`` (the trace's real arrivals)."""
    out = records.copy()
    out["arrival_s"] = arrival_s
    for name, values in latencies(out, arrival_s).items():
        out[name] = values
    return out


def _shape(rows: np.ndarray, k: int) -> dict | None:
    if k >= len(rows):
        return None
    return {
        f: (float(v) if f == "prefill_attention" else int(v))
        for f, v in zip(SHAPE, rows[k], strict=True)
    }


def request_errors(live: pd.DataFrame, sim: pd.DataFrame, metric: str = "e2e_s") -> dict:
    """Per-request relative error of ``metric`` (requests finished in both): P50, P99, max."""
    both = paired(live, sim)
    lv, sv = both[f"{metric}_live"].to_numpy(float), both[f"{metric}_sim"].to_numpy(float)
    ok = lv > 0
    err = np.abs(sv[ok] - lv[ok]) / lv[ok]
    name = metric.removesuffix("_s")
    if not err.size:
        return {f"replay_{name}_request_error_{k}": float("nan") for k in ("p50", "p99", "max")}
    return {
        f"replay_{name}_request_error_p50": float(np.percentile(err, 50)),
        f"replay_{name}_request_error_p99": float(np.percentile(err, 99)),
        f"replay_{name}_request_error_max": float(err.max()),
    }


def run_speed(steps: pd.DataFrame, profile: Profile, overheads: bool = True) -> float:
    """Measured / predicted seconds over the live run's steps (> 1: the machine ran slower
    than the profile predicts); NaN without steps."""
    if steps is None or not len(steps):
        return float("nan")
    cost = CostModel(profile, overheads=overheads)
    shapes = steps[SHAPE].to_numpy()
    predicted = sum(
        cost.step_seconds(BatchShape(int(a), float(b), int(c), int(d), int(e)), int(adm))
        for (a, b, c, d, e), adm in zip(shapes, steps["admitted"].to_numpy(), strict=True)
    )
    return float(durations(steps).sum() / predicted) if predicted > 0 else float("nan")


def rescaled_profile(profile: Profile, factor: float) -> Profile:
    """``profile`` with every coefficient and overhead multiplied by ``factor`` (named and
    described as such in its provenance)."""
    details = {**profile.provenance.details, "rescaled_by": factor, "rescaled_from": profile.name}
    return profile.model_copy(
        update={
            "name": f"{profile.name} x{factor:.3f}",
            "coefficients": {k: v * factor for k, v in profile.coefficients.items()},
            "overheads_s": {k: v * factor for k, v in profile.overheads_s.items()},
            "provenance": profile.provenance.model_copy(update={"details": details}),
        }
    )
