"""The SimPy driver. It only moves time: the gateway, the dispatcher and the engines are pure
state machines, and this module is the clock that drives them.

Processes: *arrivals* (admit each request at its ``arrival_s``), one *engine loop* per replica
(schedule a step, hold for its cost-model duration, complete it) and, in ``microbatch`` mode,
one *batcher* per replica that waits on what :meth:`Dispatcher.form
<driftsched.sim.dispatcher.Dispatcher.form>` asks for. In ``continuous`` mode the dispatcher's
``fill`` is a plain call made on every arrival and every finish.

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
from driftsched.sim.arrivalcursor import ArrivalCursor
from driftsched.sim.config import SimConfig
from driftsched.sim.costmodel import CostModel
from driftsched.sim.dispatcher import WAIT_ARRIVAL, WAIT_BATCH, Dispatcher, ReplicaSlot
from driftsched.sim.engine import Engine
from driftsched.sim.enginestate import EngineRequest
from driftsched.sim.estimatorview import with_view_columns
from driftsched.sim.gateway import Gateway
from driftsched.sim.prefixcache import cache_stats, prefix_at, prefix_cells
from driftsched.sim.profile import Profile, load_profile
from driftsched.sim.records import RecordBook
from driftsched.sim.replica import ENGINES, Replica
from driftsched.sim.request import Admission, slo_columns
from driftsched.sim.result import SimResult
from driftsched.sim.timeseries import CorrectorLog, SeriesLog, state_row
from driftsched.sim.tracecheck import usable
from driftsched.traces.trace import Trace

#: the config fields :func:`simulate` also takes as Python objects
EXTENSIONS = ("policy", "corrector", "router")
#: arrivals this close after a step boundary count as arriving before it (see engine_loop)
TIE_S = 1e-9


class Run:
    """One simulation run (built and run by :func:`simulate`)."""

    def __init__(
        self,
        trace: Trace,
        config: SimConfig,
        profile: Profile,
        progress: Callable[[int, int], None] | None = None,
        cost_model=None,
        extensions: dict | None = None,
    ):
        self.config, self.profile = config, profile
        extensions = extensions or {}
        self.settings = profile.engine_settings(config.engine)
        self.frame = f = usable(trace, self.settings, config.oversize)
        n = len(f)
        self.output_tokens = f["output_tokens"].to_numpy(dtype=np.int64)
        self._target_tokens = array("q", self.output_tokens.tobytes())  # compact: 8 B each
        self.prompt_tokens = f["prompt_tokens"].to_numpy(dtype=np.int64)
        self.arrival_s = f["arrival_s"].to_numpy(dtype=np.float64)
        self._slos = {c: v for c, v in slo_columns(f).items() if c in f.columns}
        # what each prompt shares with others (the engine reads it only when it caches)
        self._prefixes = prefix_cells(f)
        self._engine_prefixes = self.settings.enable_prefix_caching and self._prefixes is not None
        self._parsed = (-1, None)  # the last request's parsed prefix: router, then engine
        cats = f["category"]  # read only by an active estimator view
        self.gateway = Gateway.from_config(config, self.output_tokens, extensions, cats)
        self.env = simpy.Environment()
        engine_cls = ENGINES[config.engine_impl]
        self.replicas = [
            Replica(k, engine_cls(self.settings), self.env) for k in range(config.replicas)
        ]
        self.dispatcher = Dispatcher.from_config(
            config, self.gateway, [r.slot for r in self.replicas], self._send,
            extensions.get("router"), prefix_of=self._chunk_ids,
        )  # fmt: skip
        costs = cost_model or CostModel(profile, overheads=config.overheads)  # or per replica
        self.costs = list(costs) if isinstance(costs, list) else [costs] * config.replicas
        for cost in {id(c): c for c in self.costs}.values():  # a model playing back a live
            if hasattr(cost, "bind_clock"):  # clock reads the simulation's
                cost.bind_clock(lambda: self.env.now)
        self._outcomes = self.gateway.wants_outcomes
        self.book = RecordBook(n)
        self._done_s = self.book.times["done_s"]
        self._scheduled_s = self.book.times["scheduled_s"]
        self._first_token_s = self.book.times["first_token_s"]
        self.admissions: dict[int, Admission] = {}  # admitted and not yet finished
        self.series, self.corrector_series = SeriesLog(), CorrectorLog()
        # A replica in a fast-forwarded run settles its KV pool only at the run's end: step by
        # step for a router that reads the pools (``reads_kv``) or a policy that attaches.
        kv_router = config.replicas > 1 and getattr(self.dispatcher.router, "reads_kv", False)
        self._fast_forward = config.fast_forward and all(c.closed_form_runs for c in self.costs)
        self._fast_forward &= not (kv_router or self.gateway.reads_state)
        self.cursor = ArrivalCursor(
            f, self.arrival_s, self.prompt_tokens, self._slos, self.gateway, self.dispatcher,
            self.book, self.admissions,
        )  # fmt: skip
        # Continuous mode admits what arrived during a step at its boundary (one event fewer
        # per request), unless something reads the engines at dispatch (a KV router, a policy
        # that attaches: a boundary's completions happen in between) or a horizon cuts steps.
        self._lazy = (
            self.dispatcher.continuous
            and not (kv_router or self.gateway.reads_state)
            and config.horizon_s is None
        )
        self._admitted = None  # event the engine waits on for an arrival at a boundary
        self._idle = None  # lazy: event the arrivals wait on while every engine is busy
        self._arrival_wake = self.env.event()  # microbatch: batchers wait on arrivals
        self._next_sample_s, self._sample_dt_s = 0.0, config.timeseries_dt_s
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

    def prefix_cache_stats(self) -> dict:
        """Prefix-cache lookups and hits at admission, all replicas."""
        return cache_stats([r.engine.pool for r in self.replicas])

    @property
    def engine_busy_s(self) -> float:
        """Simulated seconds engines spent running steps, summed over replicas."""
        return sum(r.busy_s for r in self.replicas)

    # -- processes -------------------------------------------------------------------------
    def arrivals(self):
        """Admit each request at its ``arrival_s`` (:class:`ArrivalCursor`). Lazily (see
        ``_lazy``) only while some engine is idle: a busy engine admits what arrived during
        its step at the step's boundary (``engine_loop``)."""
        env, cursor, replicas = self.env, self.cursor, self.replicas
        continuous = self.dispatcher.continuous
        while cursor.next_s < math.inf:
            wait = cursor.due_s() - env.now
            if wait > 0:  # (what is due now is admitted now: the engines start after it)
                if self._lazy and all(r.engine.has_work() for r in replicas):
                    self._idle = env.event()
                    yield self._idle
                else:
                    yield env.timeout(wait)
                continue  # (lazily, a boundary may have admitted it meanwhile)
            if self._admitted is not None and not self._admitted.triggered:
                self._admitted.succeed()
            if cursor.admit_next() and not continuous and not self._arrival_wake.triggered:
                self._arrival_wake.succeed()

    def _prefix(self, index: int):
        """Request ``index``'s :class:`~driftsched.sim.prefixcache.Prefix` (None: it shares
        nothing), parsed once though the router and the engine both ask for it."""
        if self._parsed[0] != index:
            self._parsed = (index, prefix_at(self._prefixes, index))
        return self._parsed[1]

    def _chunk_ids(self, index: int) -> tuple[int, ...]:
        """Request ``index``'s prefix chunk ids (empty without a ``prefix`` column)."""
        prefix = self._prefix(index)
        return prefix.chunk_ids if prefix else ()

    def _send(self, view, slot: ReplicaSlot, batch: int, now_s: float) -> None:
        """The dispatcher's ``send``: hand the request to the replica's engine, record it."""
        replica = self.replicas[slot.replica_id]
        i = view.index
        self.book.dispatched(i, now_s, slot.replica_id, batch)
        if self._engine_prefixes:
            replica.engine.add(i, view.prompt_tokens, self._target_tokens[i], self._prefix(i))
        else:
            replica.engine.add(i, view.prompt_tokens, self._target_tokens[i])
        if not replica.wake.triggered:
            replica.wake.succeed()

    def batcher(self, replica: Replica):
        """Microbatch mode: do what the dispatcher's ``form`` asks for this replica; idle
        replicas take batches from the shared queue in replica order."""
        env, form, slot = self.env, self.dispatcher.form, replica.slot
        while True:
            wait = form(slot, env.now)
            if wait is WAIT_BATCH:
                replica.batch_done = env.event()
                yield replica.batch_done
                continue
            if self._arrival_wake.triggered:
                self._arrival_wake = env.event()
            if wait is WAIT_ARRIVAL:
                yield self._arrival_wake
            else:
                yield self._arrival_wake | env.timeout(wait - env.now)

    def engine_loop(self, replica: Replica):
        """One replica's engine: plan a step (:meth:`_plan`), hold for its duration, apply it
        (:meth:`_complete`), admit what arrives at the boundary, then settle the step's first
        tokens and finishes (:meth:`_settle`)."""
        env, engine, cursor, lazy = self.env, replica.engine, self.cursor, self._lazy
        while True:
            if not engine.has_work():
                if self._idle is not None and not self._idle.triggered:
                    self._idle.succeed()  # the arrivals admit again (lazy)
                replica.wake = env.event()
                yield replica.wake
                continue
            yield env.timeout(self._plan(replica, env.now))
            if lazy:
                cursor.admit_before(env.now)  # what arrived during the step, in order
            self._complete(replica)
            # Ties: an arrival within TIE_S after the boundary counts as before it (step by
            # step and fast-forward round boundary times differently: same side in both).
            boundary_s = env.now
            while cursor.next_s <= boundary_s + TIE_S:
                if lazy:
                    due_s = cursor.due_s()
                    if due_s > env.now:
                        yield env.timeout(due_s - env.now)
                        continue  # (an idle replica's arrivals process may have admitted it)
                    cursor.admit_next()
                else:
                    self._admitted = env.event()
                    yield self._admitted
            self._admitted = None
            self._settle(replica, boundary_s)

    def _plan(self, replica: Replica, now_s: float) -> float:
        """Schedule ``replica``'s next engine event (a step, or a fast-forwarded run of
        decode steps), keep it on the replica and return its seconds."""
        engine, cost = replica.engine, self.costs[replica.replica_id]
        plan = engine.schedule()
        if not plan.chunks:
            decoding = plan.decode_requests
            if not decoding:
                raise RuntimeError("engine has work but scheduled nothing (KV capacity too small?)")
            seconds = cost.step_seconds(plan.shape)
            steps = self._run_length(engine, plan, seconds, cost) if self._fast_forward else 1
            if steps > 1:
                seconds = cost.run_seconds(seconds, decoding, steps)
        else:
            scheduled_s = self._scheduled_s
            for req in plan.admitted:
                if scheduled_s[req.index] != scheduled_s[req.index]:  # NaN: first admission
                    scheduled_s[req.index] = now_s
            seconds = cost.step_seconds(plan.shape, len(plan.admitted))
            steps = 1
        replica.plan, replica.run_steps, replica.run_s = plan, steps, seconds
        return seconds

    def _complete(self, replica: Replica) -> None:
        """Apply ``replica``'s planned event (its outcome kept for :meth:`_settle`)."""
        replica.outcome = replica.engine.complete(replica.plan, replica.run_steps)
        replica.plan = None
        replica.busy_s += replica.run_s
        replica.events += 1
        replica.steps += replica.run_steps

    def _settle(self, replica: Replica, boundary_s: float) -> None:
        """At the step's boundary: record first tokens, finish what finished (in index
        order), and sample the time series when due."""
        outcome, replica.outcome = replica.outcome, None
        if outcome.first_token:
            first_token_s = self._first_token_s
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

    def _run_length(self, engine: Engine, plan, first_s: float, cost) -> int:
        """Steps of this decode-only shape to run as one event (the first lasting ``first_s``):
        through the engine's next finish, stopping before a KV shortage, and — when an arrival
        would be dispatched into the engine (continuous mode, below ``max_concurrency``) — until
        the step during which the next request arrives (the step after it sees it, as step by
        step)."""
        steps = engine.run_length(plan, 1 << 62)
        if (
            steps > 1
            and self.cursor.next_s < math.inf
            and self.dispatcher.continuous
            and self.dispatcher.room()
        ):
            wait = self.cursor.next_s - TIE_S - self.env.now
            steps = min(steps, cost.steps_within(first_s, plan.decode_requests, wait))
        return steps

    def on_finish(self, req: EngineRequest, now: float, replica: Replica) -> None:
        i = req.index
        self._finished += 1
        if self._finished >= self._progress_at:
            self._progress_at += self._progress_every
            self._progress(self._finished, len(self.frame))
        self.book.finished(i, now, req.num_output_tokens, req.num_preemptions)
        adm = self.admissions.pop(i)
        gateway, dispatcher = self.gateway, self.dispatcher
        if self._outcomes:
            gateway.report_finish(adm, req.num_output_tokens, self.book, now)
        else:
            gateway.finished(adm, req.num_output_tokens)
        state = gateway.corrector_state()
        if state:
            self.corrector_series.record(now, adm.category, state)
        done = dispatcher.release(replica.slot, i)
        done_s = self._done_s
        for j in done:
            done_s[j] = now
        if dispatcher.continuous:
            dispatcher.fill(self.env.now)  # not ``now``: a boundary tie may have waited
        elif done:
            replica.batch_done.succeed(now)

    def sample(self) -> None:
        """Append one time-series row (called at engine event boundaries, at most one row
        per ``timeseries_dt_s``)."""
        now = self.env.now
        if now < self._next_sample_s:
            return
        self._next_sample_s = now + self._sample_dt_s
        self.series.append(state_row(now, self.gateway, self.replicas))

    def run(self) -> None:
        self.env.process(self.arrivals())
        for replica in self.replicas:
            self.env.process(self.engine_loop(replica))
        if not self.dispatcher.continuous:
            for replica in self.replicas:
                self.env.process(self.batcher(replica))
        self.env.run(until=self.config.horizon_s)
        if self._progress is not None:
            self._progress(self._finished, len(self.frame))

    def records(self) -> pd.DataFrame:
        """The run's records table (see :mod:`driftsched.sim.records`)."""
        f, out = self.frame, self.output_tokens
        records = self.book.frame(
            f, self.arrival_s, self.prompt_tokens, out, self.config.job_classes
        )
        return with_view_columns(records, self.gateway.corrector, out)


def _by_index(req: EngineRequest) -> int:
    return req.index


def simulate(
    trace: Trace,
    config: SimConfig | None = None,
    profile: Profile | str | None = None,
    progress: Callable[[int, int], None] | None = None,
    cost_model=None,
    **overrides,
) -> SimResult:
    """Simulate ``trace`` under ``config`` (or keyword overrides of the defaults).

    ``profile``: a :class:`Profile`, or a profile name or path (then it is also the config's
    ``profile``); default ``load_profile(config.profile)``. ``progress(finished, total)``, if
    given, is called about every 0.5% of the requests finishing and once at the end (it must not
    touch the run; it is how the CLI draws its bar). ``cost_model`` replaces the profile's
    :class:`CostModel` (anything with ``step_seconds`` and ``closed_form_runs``, and optionally
    ``bind_clock(now)`` to read the simulation clock; schedule replay plays back measured steps
    this way), or is a list of one such model per replica.

    ``policy``, ``corrector`` and ``router`` overrides may be specs (names, ``module:Class``,
    ``file.py:Class``) or Python objects: a class (built with the ``*_params``) or an instance
    (used as is, for this run: its state carries over if you pass it again). The config then
    holds the object's label ``module:QualifiedName``. Returns a :class:`SimResult`.
    """
    from driftsched.ground.config import build
    from driftsched.ground.plugins import spec_of

    if isinstance(profile, str):
        overrides["profile"], profile = profile, None
    objects = {k: overrides[k] for k in EXTENSIONS if not isinstance(overrides.get(k, ""), str)}
    overrides.update({k: spec_of(obj) for k, obj in objects.items()})
    context = {"objects": set(objects)} if objects else None
    if config is None:
        config = build(SimConfig, overrides, "simulation config", context)
    elif overrides:
        data = {**config.model_dump(), **overrides}
        config = build(SimConfig, data, "simulation config", context)
    profile = profile or load_profile(config.profile)
    run = Run(trace, config, profile, progress, cost_model, objects)
    run.run()
    return SimResult.from_run(run, trace)
