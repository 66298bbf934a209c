"""The SimPy driver. It only moves time: the gateway and the engine are pure state machines.

Processes: *arrivals* (admit each request at its ``arrival_s``), the *engine* (schedule a step,
hold for its cost-model duration, complete it) and, in ``microbatch`` mode, the *worker* that
forms batches. In ``continuous`` mode dispatch is a plain call made on every arrival and every
finish: keep at most ``max_concurrency`` requests in the engine.

No wall clock and no randomness inside: the same trace and config give identical records.
Events at equal times are ordered by SimPy's event counter (scheduling order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import simpy
from driftsched.sim.config import SimConfig
from driftsched.sim.costmodel import CostModel, EngineSettings, Profile, load_profile
from driftsched.sim.engine import EngineRequest, ReferenceEngine
from driftsched.sim.fastengine import FastEngine
from driftsched.sim.gateway import Gateway
from driftsched.sim.request import Admission
from driftsched.sim.result import SimResult
from driftsched.traces.schema import tier_rank
from driftsched.traces.trace import Trace

from driftsched.errors import InputError

NAN = float("nan")


class Run:
    """State of one simulation run (built by :func:`simulate`)."""

    def __init__(self, trace: Trace, config: SimConfig, profile: Profile):
        self.config, self.profile = config, profile
        self.settings = EngineSettings(**{**profile.engine.model_dump(), **config.engine})
        self.frame = _usable(trace.frame, self.settings, config.oversize)
        f = self.frame
        n = len(f)
        self.output_tokens = f["output_tokens"].to_numpy(dtype=np.int64)
        self.prompt_tokens = f["prompt_tokens"].to_numpy(dtype=np.int64)
        self.arrival_s = f["arrival_s"].to_numpy(dtype=np.float64)
        self.gateway = Gateway.from_config(config, self.output_tokens)
        engine_cls = FastEngine if config.engine_impl == "fast" else ReferenceEngine
        self.engine = engine_cls(self.settings)
        self.cost = CostModel(profile)
        ov = profile.overheads_s if config.overheads else {}
        self._ov_step = ov.get("output_per_step_s", 0.0)
        self._ov_request = ov.get("output_per_request_s", 0.0)
        self._ov_admission = ov.get("admission_s", 0.0)
        self.env = simpy.Environment()
        self.times = {
            k: np.full(n, NAN)
            for k in ("dispatch_s", "scheduled_s", "first_token_s", "finish_s", "done_s")
        }
        self.estimate = np.zeros(n, dtype=np.int64)
        self.est_class = np.empty(n, dtype=object)
        self.batch_id = np.full(n, -1, dtype=np.int64)
        self.preemptions = np.zeros(n, dtype=np.int64)
        self.generated = np.zeros(n, dtype=np.int64)
        self.dispatch_order = np.full(n, -1, dtype=np.int64)
        self._dispatched = 0
        self.admissions: list[Admission] = []
        self.in_engine = 0
        self.series: list[tuple] = []
        self.corrector_series: list[tuple] = []
        self._next_sample_s = 0.0
        self._engine_wake = self.env.event()
        self._arrival_wake = self.env.event()
        self._batch_done = None
        self._batch_left = 0

    # -- wake-ups --------------------------------------------------------------------------
    def _wake_engine(self) -> None:
        if not self._engine_wake.triggered:
            self._engine_wake.succeed()

    def _wake_worker(self) -> None:
        if not self._arrival_wake.triggered:
            self._arrival_wake.succeed()

    # -- processes -------------------------------------------------------------------------
    def arrivals(self):
        f, env = self.frame, self.env
        cols = [f[c].to_numpy() for c in ("request_id", "tenant", "tier", "category")]
        max_tokens = f["max_tokens"].to_numpy(dtype=np.int64)
        for i in range(len(f)):
            wait = self.arrival_s[i] - env.now
            if wait > 0:
                yield env.timeout(wait)
            tier = str(cols[2][i])
            adm = Admission(
                i,
                str(cols[0][i]),
                float(self.arrival_s[i]),
                str(cols[1][i]),
                tier,
                tier_rank(tier),
                str(cols[3][i]),
                int(self.prompt_tokens[i]),
                int(max_tokens[i]),
            )
            self.admissions.append(adm)
            view = self.gateway.admit(adm, env.now)
            self.estimate[i], self.est_class[i] = view.estimate_tokens, view.est_class
            if self.config.mode == "continuous":
                self.fill()
            else:
                self._wake_worker()

    def dispatch(self, index: int, batch: int = -1) -> None:
        self.times["dispatch_s"][index] = self.env.now
        self.dispatch_order[index] = self._dispatched
        self._dispatched += 1
        self.batch_id[index] = batch
        self.engine.add(
            EngineRequest(index, int(self.prompt_tokens[index]), int(self.output_tokens[index]))
        )
        self.in_engine += 1
        self._wake_engine()

    def fill(self) -> None:
        """Continuous mode: dispatch by policy while fewer than ``max_concurrency`` run."""
        while self.in_engine < self.config.max_concurrency and len(self.gateway):
            self.dispatch(self.gateway.next(self.env.now).index)

    def worker(self):
        """Microbatch mode: the study's worker (see docs/model.md)."""
        env, cfg, batch_no = self.env, self.config, 0
        while True:
            if not len(self.gateway):
                self._arrival_wake = env.event()
                yield self._arrival_wake
            batch = [self.gateway.next(env.now)]
            deadline = env.now + cfg.batch_wait_s
            while len(batch) < cfg.batch_size:
                if len(self.gateway):
                    batch.append(self.gateway.next(env.now))
                    continue
                if env.now >= deadline:
                    break
                self._arrival_wake = env.event()
                yield self._arrival_wake | env.timeout(deadline - env.now)
            self._batch_done, self._batch_left = env.event(), len(batch)
            for view in batch:
                self.dispatch(view.index, batch_no)
            yield self._batch_done
            for view in batch:
                self.times["done_s"][view.index] = env.now
            batch_no += 1

    def engine_loop(self):
        env, engine = self.env, self.engine
        while True:
            if not engine.has_work():
                self._engine_wake = env.event()
                yield self._engine_wake
                continue
            plan = engine.schedule()
            if plan.empty:
                raise RuntimeError("engine has work but scheduled nothing (KV capacity too small?)")
            for req in plan.admitted:
                if np.isnan(self.times["scheduled_s"][req.index]):
                    self.times["scheduled_s"][req.index] = env.now
            yield env.timeout(self.step_seconds(plan))
            outcome = engine.complete(plan)
            for req in outcome.first_token:
                self.times["first_token_s"][req.index] = env.now
            for req in sorted(outcome.finished, key=lambda r: r.index):
                self.on_finish(req)
            self.sample()

    def step_seconds(self, plan) -> float:
        """The cost model's step time plus the profile's overheads around a step."""
        shape = plan.shape
        extra = (
            self._ov_step
            + self._ov_request * shape.num_requests
            + self._ov_admission * len(plan.admitted)
        )
        return self.cost.step_time(shape) + extra

    def on_finish(self, req: EngineRequest) -> None:
        i, now = req.index, self.env.now
        self.times["finish_s"][i] = now
        self.preemptions[i] = req.num_preemptions
        self.generated[i] = req.num_output_tokens
        self.in_engine -= 1
        self.gateway.finished(self.admissions[i], req.num_output_tokens)
        state = self.gateway.corrector.state()
        if state:
            self.corrector_series.append((now, self.admissions[i].category, state))
        if self.config.mode == "continuous":
            self.times["done_s"][i] = now
            self.fill()
        else:
            self._batch_left -= 1
            if self._batch_left == 0:
                self._batch_done.succeed()

    def sample(self) -> None:
        now = self.env.now
        if now < self._next_sample_s:
            return
        self._next_sample_s = now + self.config.timeseries_dt_s
        depth = self.gateway.depth_by_tier
        self.series.append(
            (
                now,
                len(self.gateway),
                depth.get("premium", 0),
                depth.get("standard", 0),
                depth.get("batch", 0),
                len(self.engine.running),
                len(self.engine.waiting),
                self.engine.pool.used / self.engine.pool.capacity,
            )
        )

    def run(self) -> None:
        self.env.process(self.arrivals())
        self.env.process(self.engine_loop())
        if self.config.mode == "microbatch":
            self.env.process(self.worker())
        self.env.run(until=self.config.horizon_s)


def _usable(frame: pd.DataFrame, settings: EngineSettings, oversize: str) -> pd.DataFrame:
    total = (frame["prompt_tokens"] + frame["output_tokens"]).to_numpy()
    too_long = total > settings.max_model_len
    if too_long.any():
        if oversize == "error":
            row = int(np.flatnonzero(too_long)[0])
            raise InputError(
                f"trace row {row + 1} (request {frame['request_id'].iloc[row]!r}): prompt_tokens + "
                f"output_tokens = {total[row]} exceeds the engine's max_model_len "
                f"{settings.max_model_len} ({int(too_long.sum())} such rows); drop them with "
                "oversize='drop' (--set oversize=drop) or use a profile with a longer context"
            )
        frame = frame.loc[~too_long].reset_index(drop=True)
    return frame.reset_index(drop=True)


def simulate(
    trace: Trace, config: SimConfig | None = None, profile: Profile | None = None, **overrides
) -> SimResult:
    """Simulate ``trace`` under ``config`` (or keyword overrides of the defaults).

    ``profile`` defaults to ``load_profile(config.profile)``. Returns a :class:`SimResult`.
    """
    from driftsched.config import build

    if config is None:
        config = build(SimConfig, overrides, "simulation config")
    elif overrides:
        config = build(SimConfig, {**config.model_dump(), **overrides}, "simulation config")
    profile = profile or load_profile(config.profile)
    run = Run(trace, config, profile)
    run.run()
    return SimResult.from_run(run, trace)
