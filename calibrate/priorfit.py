"""Fit the prior's efficiency terms to public vLLM measurements, and test them on GPUs left out.

The prior's step time is linear in five parameters (:data:`~driftsched.calibrate.prior.
TERM_PARAMS`): ``1/eta_mem`` (weights and KV read), ``1/eta_flop`` (GEMMs and attention),
``step_overhead_s``, ``per_request_overhead_s`` and, without CUDA graphs,
``eager_layer_overhead_s``. Each measurement (:mod:`driftsched.calibrate.measurements`) is
replayed through the engine model once; its steps' terms form a matrix, so a parameter vector
prices every step, and hence the row's TTFT, TPOT and throughput, without another replay.

:func:`fit` minimises the squared log ratios predicted / measured over every published metric
of every row (``scipy.optimize.least_squares``, bounded: efficiencies in (0, 1], overheads
>= 0): bandwidth, FLOP/s, step overhead and per-sequence cost pooled over all rows
(:data:`POOLED_FREE`), then ``1/eta_mem`` and ``1/eta_flop`` again per
GPU generation with the overheads held at the pooled values. The eager
overhead per layer comes from the eager-vs-graphs pairs: (TPOT eager - TPOT graphs) / layers.
Poisson rows are replayed again with the fitted parameters (their composition depends on step
times) and the fit repeated, :data:`ROUNDS` times.

:func:`leave_one_gpu_out` fits on every GPU but one and predicts that one — what a planner asking
about unmeasured hardware gets — beside the hand-picked ``roofline-v1`` factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from driftsched.calibrate.measurements import (
    Measurement,
    PublicData,
    Replay,
    load_measurements,
    timing_free,
)
from driftsched.calibrate.prior import (
    GPUS,
    PRIOR_FEATURES,
    Efficiency,
    FittedPrior,
    load_model_config,
    step_terms,
    term_params,
)
from driftsched.sim.costmodel import BatchShape

VERSION = "fitted-v2"
#: the parameters fitted to CUDA-graph rows, in vector order
FITTED = ("memory", "compute", "step", "request")
LOWER = np.array([1.0, 1.0, 0.0, 0.0])
UPPER = np.array([20.0, 20.0, 0.05, 2e-3])
#: fitted to every row pooled: bandwidth, FLOP/s, step overhead and per-sequence cost. The
#: per-sequence cost is identified by the 80- and 320-request bursts (up to 256 sequences
#: decoding at once); fitted-v1 had no row above 10 and held it at roofline-v1's 20 us
POOLED_FREE = np.array([True, True, True, True])
#: refitted per GPU generation, the overheads held at the pooled values
GENERATION_FREE = np.array([True, True, False, False])
#: replay-and-fit rounds (Poisson rows' composition follows the fitted step times)
ROUNDS = 3


def theta_of(eff: Efficiency) -> np.ndarray:
    p = term_params(eff, enforce_eager=False)
    return np.array([p[t] for t in FITTED])


def efficiency_of(theta: np.ndarray, eager_layer_s: float, source: str) -> Efficiency:
    return Efficiency(
        eta_mem=1 / theta[0],
        eta_flop=1 / theta[1],
        step_overhead_s=float(theta[2]),
        per_request_overhead_s=float(theta[3]),
        eager_layer_overhead_s=eager_layer_s,
        source=source,
    )


@dataclass
class Row:
    """A measurement replayed: each step's value of every fitted term, plus the unscaled part
    (tensor-parallel all-reduces)."""

    m: Measurement
    replay: Replay
    terms: np.ndarray  # steps x len(FITTED)
    fixed_s: float

    @classmethod
    def build(cls, m: Measurement, theta: np.ndarray, eff: Efficiency | None = None) -> Row:
        eff = eff or Efficiency()
        spec, arch = GPUS[m.gpu], load_model_config(m.model)
        terms = step_terms(spec, arch, tensor_parallel=m.tensor_parallel)
        weights = np.array(
            [[terms[t].get(f, 0.0) for t in FITTED] for f in PRIOR_FEATURES]
        )  # features x terms
        tp = m.tensor_parallel
        fixed = 2 * arch.num_hidden_layers * eff.tp_allreduce_s if tp > 1 else 0.0

        assert ("const", *BatchShape._fields) == PRIOR_FEATURES  # [1, *shape] is the row
        per_feature = (weights @ theta).tolist()
        const, rest = per_feature[0] + fixed, per_feature[1:]

        def step_s(shape: BatchShape) -> float:
            return const + sum(c * x for c, x in zip(rest, shape, strict=True))

        replay = _replay(m, step_s)
        return cls(m, replay, replay.design(list(PRIOR_FEATURES)) @ weights, fixed)

    def predict(self, theta: np.ndarray) -> dict[str, float]:
        return self.replay.metrics(self.terms @ theta + self.fixed_s)

    def log_errors(self, theta: np.ndarray) -> np.ndarray:
        """log(predicted / measured) of every metric fitted (not the row's ``not_fitted``)."""
        pred = self.predict(theta)
        fitted = fitted_metrics(self.m)
        return np.array([np.log(pred[k] / v) for k, v in fitted.items()])


#: replays whose composition does not depend on step times, made once per row
_TIMING_FREE: dict[str, Replay] = {}


def _replay(m: Measurement, step_s) -> Replay:
    if not timing_free(m):
        return Replay(m, step_s)
    key = m.model_dump_json()
    if key not in _TIMING_FREE:
        _TIMING_FREE[key] = Replay(m, step_s)
    return _TIMING_FREE[key]


def fitted_metrics(m: Measurement) -> dict[str, float]:
    return {k: v for k, v in m.measured.values().items() if k not in m.not_fitted}


def _least_squares(rows: list[Row], x0: np.ndarray, free: np.ndarray) -> np.ndarray:
    from scipy.optimize import least_squares

    def residuals(x):
        theta = x0.copy()
        theta[free] = x
        return np.concatenate([r.log_errors(theta) for r in rows])

    start = np.clip(x0[free], LOWER[free] + 1e-12, UPPER[free] - 1e-12)
    out = least_squares(residuals, start, bounds=(LOWER[free], UPPER[free]), x_scale="jac")
    theta = x0.copy()
    theta[free] = out.x
    return theta


def _fit_theta(
    ms: list[Measurement], theta: np.ndarray, free: np.ndarray
) -> tuple[np.ndarray, list[Row]]:
    """Replay, fit, replay again where composition depends on timing, fit again."""
    rows = [Row.build(m, theta) for m in ms]
    for _ in range(ROUNDS):
        theta = _least_squares(rows, theta, free)
        if all(timing_free(r.m) for r in rows):
            break
        rows = [r if timing_free(r.m) else Row.build(r.m, theta) for r in rows]
    return theta, rows


def eager_layer_overhead_s(data: PublicData) -> float:
    """Mean over the eager-vs-graphs pairs of (TPOT eager - TPOT graphs) / layers."""
    per_layer = [
        (p.tpot_eager_ms - p.tpot_graphs_ms) / 1e3 / load_model_config(p.model).num_hidden_layers
        for p in data.eager_vs_graphs
    ]
    return float(np.mean(per_layer)) if per_layer else 0.0


def fit(data: PublicData | None = None, exclude_gpu: str | None = None) -> FittedPrior:
    """Fit pooled and per-generation terms to every CUDA-graph row (but ``exclude_gpu``'s)."""
    data = data or load_measurements()
    ms = [m for m in data.measurements if m.cuda_graphs and m.gpu != exclude_gpu]
    eager = eager_layer_overhead_s(data)
    pooled, _ = _fit_theta(ms, theta_of(Efficiency()), POOLED_FREE)
    generations = {}
    by_gen: dict[str, list[Measurement]] = {}
    for m in ms:
        by_gen.setdefault(GPUS[m.gpu].generation, []).append(m)
    for gen, gen_ms in sorted(by_gen.items()):
        theta, _ = _fit_theta(gen_ms, pooled, GENERATION_FREE)
        gpus = sorted({m.gpu for m in gen_ms})
        generations[gen] = efficiency_of(
            theta, eager, f"{VERSION} ({gen}: {len(gen_ms)} rows on {', '.join(gpus)})"
        )
    return FittedPrior(
        version=VERSION,
        pooled=efficiency_of(pooled, eager, f"{VERSION} (pooled: {len(ms)} rows)"),
        generations=generations,
        training=[m.id for m in ms],
        eager_sources=[p.source for p in data.eager_vs_graphs],
    )


def predictions(rows: list[Measurement], eff_for) -> pd.DataFrame:
    """One row per (measurement, metric): measured, predicted under ``eff_for(gpu)``, error."""
    out = []
    for m in rows:
        eff = eff_for(m.gpu)
        theta = theta_of(eff)
        pred = Row.build(m, theta, eff).predict(theta)
        for metric, value in m.measured.values().items():
            out.append(
                {
                    "measurement": m.id,
                    "gpu": m.gpu,
                    "model": m.model,
                    "metric": metric,
                    "measured": value,
                    "predicted": pred[metric],
                    "error_pct": 100 * (pred[metric] / value - 1),
                    "fitted": metric not in m.not_fitted,
                    "why_not_fitted": m.not_fitted.get(metric, ""),
                }
            )
    return pd.DataFrame(out)


def leave_one_gpu_out(data: PublicData | None = None) -> pd.DataFrame:
    """For each GPU in the data: its rows predicted by a fit to every other GPU's rows, beside
    the in-sample fit and the hand-picked ``roofline-v1`` factors."""
    data = data or load_measurements()
    ms = [m for m in data.measurements if m.cuda_graphs]
    full = fit(data)
    frames = []
    for gpu in sorted({m.gpu for m in ms}):
        held = fit(data, exclude_gpu=gpu)
        mine = [m for m in ms if m.gpu == gpu]
        logo = predictions(mine, held.for_gpu)
        logo["left_out_pct"] = logo.pop("error_pct")
        logo["fitted_on"] = held.for_gpu(gpu).source
        logo["in_sample_pct"] = predictions(mine, full.for_gpu)["error_pct"].to_numpy()
        logo["roofline_v1_pct"] = predictions(mine, lambda _g: Efficiency())["error_pct"].to_numpy()
        frames.append(logo.drop(columns="predicted"))
    return pd.concat(frames, ignore_index=True)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean absolute error per GPU and metric for each column of :func:`leave_one_gpu_out`,
    over the metrics fitted (a row's ``not_fitted`` ones are outside the engine model)."""
    cols = ["left_out_pct", "in_sample_pct", "roofline_v1_pct"]
    table = table[table["fitted"]]
    return (
        table.assign(**{c: table[c].abs() for c in cols})
        .groupby(["gpu", "metric"], sort=True)[cols]
        .mean()
        .round(1)
        .reset_index()
    )
