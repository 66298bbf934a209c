"""Public vLLM measurements, and what the engine model predicts for each.

``calibrate/data/public_vllm.json`` holds published benchmark results of vLLM on GPUs (each row
with its source). :func:`load_measurements` reads and checks it; :func:`replay` runs a row's
workload through driftsched's engine model (:mod:`driftsched.sim.engine`, the same scheduler
the simulator uses: continuous batching, chunked prefill, the row's ``max_num_seqs`` and token
budget) and keeps the *composition* of every step, so that any step-time parameters can be
priced over it without rerunning (:class:`Replay`). A row's TTFT and TPOT are computed as
vLLM's benchmark computes them: per request, TPOT = (latency - TTFT) / (output tokens - 1),
then the row's statistic (median or mean) over the requests.

The composition of a burst (all requests at once) or closed-loop row does not depend on step
times (:func:`timing_free`: its replay serves any parameters); a Poisson row's does, so
:func:`driftsched.calibrate.priorfit.fit` replays it again after each fit until the
composition settles.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from driftsched.calibrate.specs import GPUS
from driftsched.sim.costmodel import BatchShape, design_matrix
from driftsched.sim.engine import ReferenceEngine
from driftsched.sim.profile import EngineSettings
from pydantic import Field, model_validator

from driftsched.ground.config import Config, build, build_json

DATA = Path(__file__).parent / "data" / "public_vllm.json"
#: the GPU nothing is ever fitted on (the reference study's, our evaluation GPU)
EVALUATION_GPU = "L4"
#: published metrics a row may state, with the unit of its value
METRICS = {"ttft_ms": "ms", "tpot_ms": "ms", "output_tok_per_s": "tok/s", "requests_per_s": "req/s"}


class Workload(Config):
    """What the benchmark sent: ``burst`` (all requests at t=0, vLLM's request rate inf),
    ``poisson`` at ``rate_per_s`` (seeded, as vLLM's benchmark draws it), or ``closed`` with
    ``concurrency`` requests in flight. Token lists are per request, or one value for all."""

    arrivals: Literal["burst", "poisson", "closed"]
    input_tokens: list[int] = Field(min_length=1)
    output_tokens: list[int] = Field(min_length=1)
    requests: int | None = Field(None, ge=1)
    rate_per_s: float | None = Field(None, gt=0)
    concurrency: int | None = Field(None, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _complete(self):
        if len(self.input_tokens) != len(self.output_tokens):
            raise ValueError("input_tokens and output_tokens must have the same length")
        if self.arrivals == "poisson" and self.rate_per_s is None:
            raise ValueError("poisson arrivals need rate_per_s")
        if self.arrivals == "closed" and self.concurrency is None:
            raise ValueError("closed arrivals need concurrency")
        return self

    def lengths(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.requests or len(self.input_tokens)
        reps = -(-n // len(self.input_tokens))
        return (
            np.tile(self.input_tokens, reps)[:n],
            np.tile(self.output_tokens, reps)[:n],
        )


class Measured(Config):
    stat: Literal["median", "mean"]
    ttft_ms: float | None = Field(None, gt=0)
    tpot_ms: float | None = Field(None, gt=0)
    output_tok_per_s: float | None = Field(None, gt=0)
    requests_per_s: float | None = Field(None, gt=0)

    def values(self) -> dict[str, float]:
        return {m: v for m in METRICS if (v := getattr(self, m)) is not None}


class Measurement(Config):
    """One published benchmark result (see ``public_vllm.json``'s ``about``)."""

    id: str
    gpu: str
    tensor_parallel: int = Field(1, ge=1)
    model: str
    dtype: str = "bfloat16"
    vllm_version: str
    cuda_graphs: bool
    scheduler_steps: int = Field(1, ge=1)
    date: str
    engine: dict = Field(default_factory=dict, description="EngineSettings fields")
    workload: Workload
    measured: Measured
    not_fitted: dict[str, str] = Field(
        default_factory=dict,
        description="metric -> why the engine model cannot predict it (reported, not fitted)",
    )
    source: str
    notes: str = ""

    @model_validator(mode="after")
    def _never_the_evaluation_gpu(self):
        if self.gpu == EVALUATION_GPU:
            raise ValueError(f"no {EVALUATION_GPU} figure may be used for fitting")
        if self.gpu not in GPUS:
            raise ValueError(f"unknown GPU {self.gpu!r}; the spec table has {', '.join(GPUS)}")
        if not self.measured.values():
            raise ValueError("a measurement needs at least one measured metric")
        if unknown := set(self.not_fitted) - set(self.measured.values()):
            raise ValueError(f"not_fitted names metrics not measured: {sorted(unknown)}")
        return self


class EagerPair(Config):
    """The same decode workload measured with and without CUDA graphs."""

    id: str
    gpu: str
    model: str
    tpot_eager_ms: float = Field(gt=0)
    tpot_graphs_ms: float = Field(gt=0)
    decode_requests: int = Field(ge=1)
    source: str
    notes: str = ""


class PublicData(Config):
    about: str
    collected: str
    measurements: list[Measurement]
    eager_vs_graphs: list[EagerPair] = Field(default_factory=list)


@cache
def load_measurements(path: str | None = None) -> PublicData:
    """The shipped table (or another file of the same schema), checked."""
    return build_json(PublicData, path or DATA, "measurements")


def engine_settings(engine: dict, prompts, outputs, what: str) -> EngineSettings:
    """The engine a row's workload is replayed on: its stated limits, a KV pool that never
    runs short, and (unless stated) a ``max_model_len`` that fits its longest request."""
    fields = {"num_gpu_blocks": 10**7, **engine}
    fields.setdefault("max_model_len", int(np.max(np.add(prompts, outputs))) + 1)
    return build(EngineSettings, fields, what)


def timing_free(m: Measurement) -> bool:
    """Whether a row's step composition is independent of step times (burst, closed loop)."""
    return m.workload.arrivals != "poisson"


class Replay:
    """A row's requests through the engine model: the composition of every step (its
    :class:`BatchShape`), what gated a step that began idle, and per request the steps of its
    arrival, first token and finish. :meth:`metrics` prices it for given step durations."""

    def __init__(self, m: Measurement, step_s):
        """``step_s(shape: BatchShape) -> seconds`` decides *when* Poisson arrivals join;
        burst and closed-loop compositions do not depend on it."""
        w = m.workload
        prompts, outputs = w.lengths()
        n = len(prompts)
        settings = engine_settings(m.engine, prompts, outputs, f"measurement {m.id} engine")
        engine = ReferenceEngine(settings)
        if w.arrivals == "poisson":
            gaps = np.random.default_rng(w.seed).exponential(1 / w.rate_per_s, n)
            arrival_s = np.cumsum(gaps) - gaps[0]
        else:
            arrival_s = np.zeros(n)
        closed = w.arrivals == "closed"
        self.outputs = np.maximum(outputs, 1)  # a 0-token answer was still prefilled
        self.counted = outputs > 0
        self.arrival_s = arrival_s
        self.arrival_step = np.full(n, -1)  # closed loop: arrived at the end of this step
        self.first_step = np.zeros(n, dtype=np.int64)
        self.finish_step = np.zeros(n, dtype=np.int64)
        shapes: list[BatchShape] = []
        gates: list[float] = []
        t, nxt = 0.0, 0
        limit = w.concurrency if closed else n
        in_flight = 0
        while nxt < n or engine.has_work():
            gate = -np.inf
            # idle: the next arrival starts the next step (closed loop: the next request
            # arrives as the last one finishes, so no wait, whatever the step times)
            if not engine.has_work() and not closed:
                gate = float(arrival_s[nxt])
                t = max(t, gate)
            while nxt < n and in_flight < limit and (closed or arrival_s[nxt] <= t):
                engine.add(nxt, int(prompts[nxt]), int(self.outputs[nxt]))
                self.arrival_step[nxt] = len(shapes) - 1 if closed else -1
                nxt += 1
                in_flight += 1
            plan = engine.schedule()
            shapes.append(plan.shape)
            gates.append(gate)
            t += step_s(plan.shape)
            out = engine.complete(plan)
            for req in out.first_token:
                self.first_step[req.index] = len(shapes) - 1
            for req in out.finished:
                self.finish_step[req.index] = len(shapes) - 1
                in_flight -= 1
        self.shapes = np.array(shapes, dtype=np.float64)
        self.gates = np.array(gates)
        self.gate_steps = np.flatnonzero(np.isfinite(self.gates))
        self.measurement = m

    def columns(self) -> dict[str, np.ndarray]:
        return {f: self.shapes[:, i] for i, f in enumerate(BatchShape._fields)}

    def design(self, features: list[str]) -> np.ndarray:
        """The steps' feature values (one row per step), as the cost model computes them."""
        return design_matrix(self.columns(), features)

    def metrics(self, durations_s: np.ndarray) -> dict[str, float]:
        """The row's published metrics, predicted from these step durations."""
        m = self.measurement
        end = np.cumsum(durations_s)
        # a step that began idle starts at its gate: shift that segment (and what follows)
        # by however long the engine waited
        for s in self.gate_steps:
            wait = self.gates[s] - (end[s - 1] if s else 0.0)
            if wait > 0:
                end[s:] += wait
        arrived = np.where(self.arrival_step >= 0, end[self.arrival_step], self.arrival_s)
        first = end[self.first_step]
        finish = end[self.finish_step]
        ttft = (first - arrived)[self.counted]
        many = self.counted & (self.outputs > 1)
        tpot = (finish - first)[many] / (self.outputs[many] - 1)
        stat = np.median if m.measured.stat == "median" else np.mean
        duration = finish.max() - self.arrival_s.min()
        return {
            "ttft_ms": float(stat(ttft)) * 1e3,
            "tpot_ms": float(stat(tpot)) * 1e3,
            "output_tok_per_s": float(self.outputs[self.counted].sum() / duration),
            "requests_per_s": float(self.counted.sum() / duration),
        }
