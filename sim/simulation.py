"""The SimPy driver. It only moves time: the gateway and the engine are pure state machines.

Processes: *arrivals* (admit each request at its ``arrival_s``), one *engine* loop per replica
(schedule a step, hold for its cost-model duration, complete it) and, in ``microbatch`` mode,
one *worker* per replica that forms batches from the shared queue. In ``continuous`` mode
dispatch is a plain call made on every arrival and every finish: while some replica has fewer
than ``max_concurrency`` requests in flight, the policy's next request goes to the replica the
router picks among those with room.

No wall clock and no randomness inside: the same trace and config give identical records.
Events at equal times are ordered by SimPy's event counter (scheduling order).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable

import numpy as np
import pandas as pd
import simpy
from driftsched.sim.config import SimConfig
from driftsched.sim.costmodel import CostModel, EngineSettings, Profile, load_profile
from driftsched.sim.engine import EngineRequest, ReferenceEngine
from driftsched.sim.fastengine import FastEngine
from driftsched.sim.gateway import Gateway
from driftsched.sim.jobclass import CLASSES
from driftsched.sim.request import Admission
from driftsched.sim.result import SimResult
from driftsched.sim.router import make_router
from driftsched.traces.schema import tier_rank
from driftsched.traces.trace import Trace

from driftsched.ground.errors import InputError

NAN = float("nan")
ARRIVAL_CHUNK = 65_536  # trace rows turned into Python objects at a time
#: arrivals this close after a step boundary count as arriving before it (see engine_loop)
TIE_S = 1e-9


class Replica:
    """One engine replica: its engine state machine and the driver's counters for it."""

    def __init__(self, replica_id: int, engine, env: simpy.Environment):
        self.replica_id, self.engine = replica_id, engine
        self.in_engine = 0  # dispatched to this replica and not finished
        self.wake = env.event()
        self.events = self.steps = 0  # engine iterations; engine steps simulated
        self.busy_s = 0.0
        self.batch_done, self.batch_left = None, 0  # microbatch mode

    @property
    def kv_utilisation(self) -> float:
        return self.engine.pool.used / self.engine.pool.capacity


class Run:
    """State of one simulation run (built by :func:`simulate`)."""

    def __init__(
        self,
        trace: Trace,
        config: SimConfig,
        profile: Profile,
        progress: Callable[[int, int], None] | None = None,
    ):
        self.config, self.profile = config, profile
        self.settings = EngineSettings(**{**profile.engine.model_dump(), **config.engine})
        self.frame = _usable(trace.frame, self.settings, config.oversize)
        f = self.frame
        n = len(f)
        self.output_tokens = f["output_tokens"].to_numpy(dtype=np.int64)
        self._target_tokens = array("q", self.output_tokens.tobytes())  # compact: 8 B each
        self.prompt_tokens = f["prompt_tokens"].to_numpy(dtype=np.int64)
        self.arrival_s = f["arrival_s"].to_numpy(dtype=np.float64)
        self.gateway = Gateway.from_config(config, self.output_tokens)
        engine_cls = FastEngine if config.engine_impl == "fast" else ReferenceEngine
        self.env = simpy.Environment()
        self.replicas = [
            Replica(k, engine_cls(self.settings), self.env) for k in range(config.replicas)
        ]
        self.router = make_router(config.router)
        self.cost = CostModel(profile)
        ov = profile.overheads_s if config.overheads else {}
        self._ov_step = ov.get("output_per_step_s", 0.0)
        self._ov_request = ov.get("output_per_request_s", 0.0)
        self._ov_admission = ov.get("admission_s", 0.0)
        # per-request columns as typed arrays (compact, and cheaper to write one element of
        # than numpy); SimResult.from_run views them as numpy arrays without copying
        self.times = {
            k: _filled("d", n, NAN)
            for k in ("dispatch_s", "scheduled_s", "first_token_s", "finish_s", "done_s")
        }
        self.estimate = _filled("q", n, 0)
        self.est_class = _filled("b", n, -1)  # index into CLASSES; -1 = not admitted
        self._class_code = {name: k for k, name in enumerate(CLASSES)}
        self.batch_id = _filled("q", n, -1)
        self.replica_of = _filled("h", n, -1)
        self._batches = 0
        self.preemptions = _filled("q", n, 0)
        self.generated = _filled("q", n, 0)
        self.dispatch_order = _filled("q", n, -1)
        self._dispatched = 0
        self.admissions: dict[int, Admission] = {}  # admitted and not yet finished
        self._next_arrival = 0  # index of the next request to arrive
        self._next_arrival_s = float(self.arrival_s[0]) if n else math.inf
        self._admitted = None  # event the engine waits on for an arrival at a boundary
        self.series = _SeriesLog()
        # corrector state, long format, one row per value that changed at a finish
        self.corrector_series = _CorrectorLog()
        # least_kv reads every replica's KV pool at each dispatch, and a replica in the middle
        # of a fast-forwarded run only settles its pool at the run's end: step by step then.
        kv_router = config.replicas > 1 and config.router == "least_kv"
        self._fast_forward = (
            config.fast_forward
            and config.engine_impl == "fast"
            and self.cost.closed_form_runs
            and not kv_router
        )
        self._next_sample_s = 0.0
        self._sample_dt_s = config.timeseries_dt_s
        self._arrival_wake = self.env.event()
        self._finished = 0
        self._progress = progress
        self._progress_every = max(1, n // 200)
        self._progress_at = self._progress_every if progress else math.inf

    # -- counters over replicas ----------------------------------------------------------------
    @property
    def engine_events(self) -> int:
        """Engine iterations (single steps or fast-forwarded runs), all replicas."""
        return sum(r.events for r in self.replicas)

    @property
    def engine_steps(self) -> int:
        """Engine steps simulated (a fast-forwarded run counts each), all replicas."""
        return sum(r.steps for r in self.replicas)

    @property
    def engine_busy_s(self) -> float:
        """Simulated seconds engines spent running steps, summed over replicas."""
        return sum(r.busy_s for r in self.replicas)

    @property
    def in_engine(self) -> int:
        return sum(r.in_engine for r in self.replicas)

    # -- wake-ups --------------------------------------------------------------------------
    def _wake_worker(self) -> None:
        if not self._arrival_wake.triggered:
            self._arrival_wake.succeed()

    # -- processes -------------------------------------------------------------------------
    def arrivals(self):
        """Admit each request at its ``arrival_s``. Trace columns are turned into Python
        objects a chunk at a time, so a large trace never exists as a million objects."""
        f, env, gateway = self.frame, self.env, self.gateway
        n = len(f)
        continuous = self.config.mode == "continuous"
        ranks: dict[str, int] = {}
        estimate, est_class, codes = self.estimate, self.est_class, self._class_code
        for start in range(0, len(f), ARRIVAL_CHUNK):
            rows = slice(start, start + ARRIVAL_CHUNK)
            arrival_s = self.arrival_s[rows].tolist()
            request_id, tenant, tier, category = (
                f[c].iloc[rows].astype(str).tolist()
                for c in ("request_id", "tenant", "tier", "category")
            )
            prompt = self.prompt_tokens[rows].tolist()
            max_tokens = f["max_tokens"].iloc[rows].to_numpy(dtype=np.int64).tolist()
            last = len(arrival_s) - 1
            for k, t_s in enumerate(arrival_s):
                i = start + k
                wait = t_s - env.now
                if wait > 0:
                    yield env.timeout(wait)
                self._next_arrival = i + 1
                self._next_arrival_s = (
                    arrival_s[k + 1]
                    if k < last
                    else (float(self.arrival_s[i + 1]) if i + 1 < n else math.inf)
                )
                if self._admitted is not None and not self._admitted.triggered:
                    self._admitted.succeed()
                now = env.now
                t = tier[k]
                rank = ranks.get(t)
                if rank is None:
                    rank = ranks[t] = tier_rank(t)
                adm = Admission(
                    i, request_id[k], t_s, tenant[k], t, rank, category[k], prompt[k], max_tokens[k]
                )
                self.admissions[i] = adm
                view = gateway.admit(adm, now)
                estimate[i] = view.estimate_tokens
                est_class[i] = codes[view.est_class]
                if continuous:
                    self.fill(now)
                else:
                    self._wake_worker()

    def dispatch(self, index: int, replica: Replica, now: float, batch: int = -1) -> None:
        self.times["dispatch_s"][index] = now
        self.dispatch_order[index] = self._dispatched
        self._dispatched += 1
        self.batch_id[index] = batch
        self.replica_of[index] = replica.replica_id
        adm = self.admissions[index]
        replica.engine.add(EngineRequest(index, adm.prompt_tokens, self._target_tokens[index]))
        replica.in_engine += 1
        if not replica.wake.triggered:
            replica.wake.succeed()

    def _room(self) -> bool:
        """Whether a dispatch could happen now (continuous mode): some replica has room."""
        maxc = self.config.max_concurrency
        if len(self.replicas) == 1:
            return self.replicas[0].in_engine < maxc
        return any(r.in_engine < maxc for r in self.replicas)

    def fill(self, now: float) -> None:
        """Continuous mode: dispatch by policy while some replica has fewer than
        ``max_concurrency`` requests in flight; the router picks among those with room."""
        gateway, maxc = self.gateway, self.config.max_concurrency
        if len(self.replicas) == 1:
            only = self.replicas[0]
            while only.in_engine < maxc:
                view = gateway.next(now)
                if view is None:
                    return
                self.dispatch(view.index, only, now)
            return
        while len(gateway):
            room = [r for r in self.replicas if r.in_engine < maxc]
            if not room:
                return
            view = gateway.next(now)
            self.dispatch(view.index, self.router(room, len(self.replicas)), now)

    def worker(self, replica: Replica):
        """Microbatch mode: the study's worker (see docs/model.md), one per replica; idle
        workers take batches from the shared queue in replica order."""
        env, cfg = self.env, self.config
        while True:
            if not len(self.gateway):
                if self._arrival_wake.triggered:
                    self._arrival_wake = env.event()
                yield self._arrival_wake
                continue
            batch = [self.gateway.next(env.now)]
            deadline = env.now + cfg.batch_wait_s
            while len(batch) < cfg.batch_size:
                if len(self.gateway):
                    batch.append(self.gateway.next(env.now))
                    continue
                if env.now >= deadline:
                    break
                if self._arrival_wake.triggered:
                    self._arrival_wake = env.event()
                yield self._arrival_wake | env.timeout(deadline - env.now)
            replica.batch_done, replica.batch_left = env.event(), len(batch)
            batch_no, self._batches = self._batches, self._batches + 1
            for view in batch:
                self.dispatch(view.index, replica, env.now, batch_no)
            yield replica.batch_done
            for view in batch:
                self.times["done_s"][view.index] = replica.batch_done.value

    def engine_loop(self, replica: Replica):
        env, engine, cost = self.env, replica.engine, self.cost
        scheduled_s, first_token_s = self.times["scheduled_s"], self.times["first_token_s"]
        fast_forward = self._fast_forward
        ov_step, ov_request = self._ov_step, self._ov_request
        while True:
            if not engine.has_work():
                replica.wake = env.event()
                yield replica.wake
                continue
            plan = engine.schedule()
            if not plan.chunks:
                decoding = plan.decode_requests
                if not decoding:
                    raise RuntimeError(
                        "engine has work but scheduled nothing (KV capacity too small?)"
                    )
                seconds = cost.step_time(plan.shape) + ov_step + ov_request * decoding
                steps = self._run_length(engine, plan, seconds) if fast_forward else 1
                if steps > 1:
                    seconds = cost.run_seconds(seconds, decoding, steps)
            else:
                now = env.now
                for req in plan.admitted:
                    if scheduled_s[req.index] != scheduled_s[req.index]:  # NaN: first admission
                        scheduled_s[req.index] = now
                seconds = cost.step_time(plan.shape) + self._step_extra(plan)
                steps = 1
            yield env.timeout(seconds)
            outcome = engine.complete(plan) if steps == 1 else engine.complete(plan, steps)
            replica.busy_s += seconds
            replica.events += 1
            replica.steps += steps
            # Ties: a request arriving within TIE_S after the boundary is treated as having
            # arrived before it. Step-by-step and fast-forward compute boundary times with
            # different float rounding; without this, an arrival at (almost) the same instant
            # as a boundary could land on different sides of it in the two modes.
            boundary_s = env.now
            while self._next_arrival_s <= boundary_s + TIE_S:
                self._admitted = env.event()
                yield self._admitted
            self._admitted = None
            if outcome.first_token:
                for req in outcome.first_token:
                    first_token_s[req.index] = boundary_s
            finished = outcome.finished
            if finished:
                if len(finished) > 1:
                    finished.sort(key=_by_index)
                for req in finished:
                    self.on_finish(req, boundary_s, replica)
            if boundary_s >= self._next_sample_s:
                self.sample()

    def _run_length(self, engine, plan, first_s: float) -> int:
        """Steps of this decode-only shape to run as one event (the first lasting ``first_s``):
        through the engine's next finish, stopping before a KV shortage, and — when an arrival
        would be dispatched into the engine (continuous mode, below ``max_concurrency``) — until
        the step during which the next request arrives, so that the step after it sees the new
        request, as step by step.
        """
        steps = engine.run_length(plan, 1 << 62)
        if (
            steps > 1
            and self._next_arrival_s < math.inf
            and self.config.mode == "continuous"
            and self._room()
        ):
            wait = self._next_arrival_s - TIE_S - self.env.now
            steps = min(steps, self.cost.steps_within(first_s, plan.decode_requests, wait))
        return steps

    def _step_extra(self, plan) -> float:
        """The profile's overheads around one step of this plan (outside the engine step)."""
        return (
            self._ov_step
            + self._ov_request * plan.shape.num_requests
            + self._ov_admission * len(plan.admitted)
        )

    def on_finish(self, req: EngineRequest, now: float, replica: Replica) -> None:
        i = req.index
        self._finished += 1
        if self._finished >= self._progress_at:
            self._progress_at += self._progress_every
            self._progress(self._finished, len(self.frame))
        self.times["finish_s"][i] = now
        self.preemptions[i] = req.num_preemptions
        self.generated[i] = req.num_output_tokens
        replica.in_engine -= 1
        adm = self.admissions.pop(i)
        self.gateway.finished(adm, req.num_output_tokens)
        state = self.gateway.corrector.state()
        if state:
            self.corrector_series.record(now, adm.category, state)
        if self.config.mode == "continuous":
            self.times["done_s"][i] = now
            self.fill(self.env.now)  # not ``now``: a boundary tie may have waited for arrivals
        else:
            replica.batch_left -= 1
            if replica.batch_left == 0:
                replica.batch_done.succeed(now)

    def sample(self) -> None:
        """Append one time-series row (called at engine event boundaries, at most one row
        per ``timeseries_dt_s``)."""
        now = self.env.now
        if now < self._next_sample_s:
            return
        self._next_sample_s = now + self._sample_dt_s
        depth = self.gateway.depth_by_tier
        if len(self.replicas) == 1:
            engine = self.replicas[0].engine
            running, waiting = len(engine.running), len(engine.waiting)
            pool = engine.pool
            kv = (pool.capacity - pool.free) / pool.capacity
        else:
            running = sum(len(r.engine.running) for r in self.replicas)
            waiting = sum(len(r.engine.waiting) for r in self.replicas)
            kv = sum(r.kv_utilisation for r in self.replicas) / len(self.replicas)
        self.series.append(
            (
                now,
                len(self.gateway),
                depth["premium"],
                depth["standard"],
                depth["batch"],
                running,
                waiting,
                kv,
            )
        )

    def run(self) -> None:
        self.env.process(self.arrivals())
        for replica in self.replicas:
            self.env.process(self.engine_loop(replica))
        if self.config.mode == "microbatch":
            for replica in self.replicas:
                self.env.process(self.worker(replica))
        self.env.run(until=self.config.horizon_s)
        if self._progress is not None:
            self._progress(self._finished, len(self.frame))


def _filled(typecode: str, n: int, value) -> array:
    return array(typecode, [value]) * n


def as_numpy(column) -> np.ndarray:
    """A typed-array column as a numpy array (a view; no copy)."""
    dtype = {"d": np.float64, "q": np.int64, "b": np.int8, "h": np.int16}[column.typecode]
    return np.frombuffer(column, dtype=dtype) if len(column) else np.empty(0, dtype=dtype)


def _by_index(req: EngineRequest) -> int:
    return req.index


class _SeriesLog:
    """Time-series rows, kept columnar: appended as tuples (cheap), packed into numpy columns
    every ``CHUNK`` rows (8 bytes per value instead of a Python tuple of objects)."""

    CHUNK = 65_536
    #: column name -> dtype, in row order (what :class:`SimResult` exposes as ``series``)
    COLUMNS = {
        "time_s": np.float64,
        "queue_total": np.int64,
        "queue_premium": np.int64,
        "queue_standard": np.int64,
        "queue_batch": np.int64,
        "engine_running": np.int64,
        "engine_waiting": np.int64,
        "kv_utilisation": np.float64,
    }

    def __init__(self):
        self._rows: list[tuple] = []
        self._chunks: list[dict[str, np.ndarray]] = []

    def append(self, row: tuple) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.CHUNK:
            self._pack()

    def _pack(self) -> None:
        columns = list(zip(*self._rows, strict=True))
        self._chunks.append(
            {
                name: np.array(values, dtype=dtype)
                for (name, dtype), values in zip(self.COLUMNS.items(), columns, strict=True)
            }
        )
        self._rows = []

    def frame(self) -> pd.DataFrame:
        if self._rows:
            self._pack()
        return pd.DataFrame(
            {
                name: np.concatenate([c[name] for c in self._chunks])
                if self._chunks
                else np.empty(0, dtype=dtype)
                for name, dtype in self.COLUMNS.items()
            }
        )


class _CorrectorLog:
    """Corrector state after each finish, kept compactly: only the values that changed, in
    typed arrays (a million finishes cost ~25 MB, not a dict each)."""

    def __init__(self):
        from array import array

        self.time_s, self.value = array("d"), array("d")
        self.category, self.key = array("i"), array("i")
        self._names: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def _code(self, name: str) -> int:
        return self._names.setdefault(name, len(self._names))

    def record(self, now_s: float, category: str, state: dict[str, float]) -> None:
        last = self._last
        for key, value in state.items():
            if last.get(key) != value:
                last[key] = value
                self.time_s.append(now_s)
                self.category.append(self._code(category))
                self.key.append(self._code(key))
                self.value.append(value)

    def frame(self) -> pd.DataFrame:
        names = np.asarray(list(self._names), dtype=object)
        if not len(self.time_s):
            return pd.DataFrame({"time_s": [], "category": [], "key": [], "value": []}).astype(
                {"time_s": float, "category": object, "key": object, "value": float}
            )
        return pd.DataFrame(
            {
                "time_s": np.frombuffer(self.time_s, dtype=np.float64),
                "category": names[np.frombuffer(self.category, dtype=np.int32)],
                "key": names[np.frombuffer(self.key, dtype=np.int32)],
                "value": np.frombuffer(self.value, dtype=np.float64),
            }
        )


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
    trace: Trace,
    config: SimConfig | None = None,
    profile: Profile | None = None,
    progress: Callable[[int, int], None] | None = None,
    **overrides,
) -> SimResult:
    """Simulate ``trace`` under ``config`` (or keyword overrides of the defaults).

    ``profile`` defaults to ``load_profile(config.profile)``. ``progress(finished, total)``, if
    given, is called about every 0.5% of the requests finishing and once at the end (it must not
    touch the run; it is how the CLI draws its bar). Returns a :class:`SimResult`.
    """
    from driftsched.ground.config import build

    if config is None:
        config = build(SimConfig, overrides, "simulation config")
    elif overrides:
        config = build(SimConfig, {**config.model_dump(), **overrides}, "simulation config")
    profile = profile or load_profile(config.profile)
    run = Run(trace, config, profile, progress)
    run.run()
    return SimResult.from_run(run, trace)
