"""A real-time run of driftsched's engine model: what ``driftsched engine serve`` streams from.

:class:`RealtimeEngine` drives the same pure state machine the simulator runs
(:class:`~driftsched.sim.engine.ReferenceEngine`: continuous batching, chunked prefill, KV
blocks, preemption by recompute) with the wall clock in SimPy's place. Each step is planned,
lasts what the profile's :class:`~driftsched.sim.costmodel.CostModel` says, and then applies;
requests submitted during a step join at the next boundary, as behind ``vllm serve`` (new
requests enter vLLM's scheduler between steps) and as in the offline simulator.

Pacing: the engine keeps the model's timeline, not the host's. A step's end is an absolute
target (its start plus its predicted seconds) and the next step starts at that target, not at
the moment the loop woke, so the sleeps' overshoot does not add up over thousands of steps. A
loop that fell behind (the host busy or stalled: a GC pause, a descheduled process, a paused
VM) catches up: it runs the steps whose ends already passed back to back, without sleeping,
until its timeline reaches the present again — the requests' times stay the model's, only
their tokens reach the client late while it catches up. A request submitted while the loop is
behind joins at the first step starting at or after its arrival (where the model, never late,
would have taken it), not at an earlier step the loop is replaying: no request is scheduled
before it arrived. Only a loop more than ``catch_up_s`` behind gives up: its timeline restarts
at the present and the seconds skipped count as a *slip*. How far behind the loop ran
(``lag_max_s``) and what it slipped (``slips``, ``slipped_s``) are kept, and ``/metrics``
shows them, so a run on a host that stalled says so. Timestamps (``arrival_s``,
``scheduled_s``, ``first_token_s``, ``finish_s``) are on that timeline, seconds since the
engine started.

Not modelled here (yet): prefix caching (the simulator's prefix model needs the trace's
``prefix`` cells, which an HTTP prompt does not carry).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from driftsched.sim.costmodel import CostModel
from driftsched.sim.engine import ReferenceEngine
from driftsched.sim.enginestate import EngineRequest, StepOutcome, StepPlan
from driftsched.sim.kvcache import blocks_for
from driftsched.sim.profile import Profile

NAN = math.nan
#: the longest stall the loop hides by catching up (the host's, not the model's)
CATCH_UP_S = 5.0


@dataclass(eq=False)
class Stream:
    """One request's life in the engine, as a server streams it. ``tokens`` counts the output
    tokens generated so far; :meth:`deltas` yields that count each time it grows and ends when
    the request finished (``reason`` ``"length"``) or was aborted (``"abort"``). Times are on
    the engine's timeline (see the module docstring); NaN until they happen."""

    index: int
    prompt_tokens: int
    max_tokens: int
    arrival_s: float
    scheduled_s: float = NAN
    first_token_s: float = NAN
    finish_s: float = NAN
    tokens: int = 0
    preemptions: int = 0
    reason: str | None = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue, repr=False)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.reason is not None

    async def deltas(self):
        """Output-token counts as they grow (updates already queued coalesce into one), then
        stop once the request ended."""
        while True:
            items = [await self.queue.get()]
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            counts = [k for k in items if k is not None]
            if counts:
                yield counts[-1]
            if None in items:  # the end marker
                return


class RealtimeEngine:
    """See the module docstring. ``observers`` get ``step(engine, plan, outcome, seconds)``
    after every step and ``finished(stream)`` once per request that ends (either is optional).
    ``engine`` overrides the profile's :class:`~driftsched.sim.profile.EngineSettings` fields;
    ``catch_up_s`` is how far behind the loop may fall and still catch up (see the module
    docstring).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        engine: dict | None = None,
        clock: Callable[[], float] = time.perf_counter,
        catch_up_s: float = CATCH_UP_S,
        observers: tuple = (),
    ):
        settings = profile.engine.model_copy(update=engine or {})
        if settings.enable_prefix_caching:
            raise ValueError("engine serve does not model prefix caching yet")
        self.profile, self.settings = profile, settings
        self.engine = ReferenceEngine(settings)
        self.cost = CostModel(profile)
        if not catch_up_s >= 0:
            raise ValueError(f"catch_up_s must be >= 0, not {catch_up_s!r}")
        self.clock, self.catch_up_s = clock, catch_up_s
        self.observers = observers
        self.t0 = clock()
        self.streams: dict[int, Stream] = {}
        self._requests: dict[int, EngineRequest] = {}
        self._arrivals: deque[Stream] = deque()  # submitted, not yet handed to the engine
        self._aborts: list[int] = []
        self._next_index = 0
        self._wake = asyncio.Event()
        self.steps = 0
        self.busy_s = 0.0
        self.lag_max_s = 0.0  # the furthest behind a step started
        self.slips = 0  # times the loop was too far behind and restarted its timeline
        self.slipped_s = 0.0  # the seconds those restarts skipped

    def now(self) -> float:
        """Seconds since the engine started."""
        return self.clock() - self.t0

    # -- requests ------------------------------------------------------------------------------
    def check(self, prompt_tokens: int, max_tokens: int) -> None:
        """Raise ValueError (the server's 400) for a request vLLM would refuse or that could
        never run: an empty prompt, a sequence beyond ``max_model_len``, or one whose KV
        blocks exceed the whole cache."""
        s = self.settings
        if prompt_tokens < 1:
            raise ValueError("the prompt must hold at least one token")
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if prompt_tokens + max_tokens > s.max_model_len:
            raise ValueError(
                f"this model's maximum context length is {s.max_model_len} tokens; the request "
                f"asks for {prompt_tokens + max_tokens} ({prompt_tokens} in the prompt, "
                f"{max_tokens} to generate)"
            )
        capacity = self.engine.pool.capacity
        if blocks_for(prompt_tokens + max_tokens, s.block_size) > capacity:
            raise ValueError(f"the request needs more KV blocks than the cache holds ({capacity})")

    def submit(self, prompt_tokens: int, max_tokens: int) -> Stream:
        """Queue a request that will generate exactly ``max_tokens`` tokens (a simulated
        engine has no end-of-sequence token: vLLM with ``ignore_eos``). It joins at the first
        step boundary at or after its arrival (now). Raises ValueError as :meth:`check`."""
        self.check(prompt_tokens, max_tokens)
        index, self._next_index = self._next_index, self._next_index + 1
        stream = Stream(index, prompt_tokens, max_tokens, self.now())
        self.streams[index] = stream
        self._arrivals.append(stream)
        self._wake.set()
        return stream

    def abort(self, stream: Stream) -> None:
        """Take ``stream``'s request out at the next boundary (a client that went away)."""
        if not stream.finished:
            self._aborts.append(stream.index)
            self._wake.set()

    @property
    def num_running(self) -> int:
        return len(self.engine.running)

    @property
    def num_waiting(self) -> int:
        return len(self.engine.waiting) + len(self._arrivals)

    @property
    def kv_usage(self) -> float:
        pool = self.engine.pool
        return pool.used / pool.capacity if pool.capacity else 0.0

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run steps while there is work, sleep while there is none; forever (cancel it)."""
        engine, cost = self.engine, self.cost
        next_start = None  # the timeline's next boundary; None: restart at the present
        while True:
            self._apply_aborts()
            if not engine.has_work() and not self._arrivals:
                self._wake.clear()
                await self._wake.wait()
                next_start = None
                continue
            now = self.now()
            start = self._start(now, next_start)
            self._join(start)
            if not engine.has_work():  # behind, and idle on the timeline until the next arrival
                start = self._arrivals[0].arrival_s
                self._join(start)
            plan = engine.schedule()
            if plan.empty:
                raise RuntimeError("engine has work but scheduled nothing (KV cache too small?)")
            for req in plan.admitted:
                stream = self.streams[req.index]
                if stream.scheduled_s != stream.scheduled_s:  # NaN: first time scheduled
                    stream.scheduled_s = start
            for req in plan.preempted:
                self.streams[req.index].preemptions += 1
            seconds = cost.step_seconds(plan.shape, len(plan.admitted))
            end = start + seconds
            await asyncio.sleep(max(end - self.now(), 0.0))
            outcome = engine.complete(plan)
            self.steps += 1
            self.busy_s += seconds
            self._emit(plan, outcome, end)
            for obs in self.observers:
                step = getattr(obs, "step", None)
                if step is not None:
                    step(self, plan, outcome, seconds)
            next_start = end

    def _start(self, now: float, next_start: float | None) -> float:
        """The next step's start: the timeline's boundary, however far behind the present it
        is, unless the loop is more than ``catch_up_s`` behind (a slip: restart at ``now``)."""
        if next_start is None:
            return now
        lag = now - next_start
        if lag > self.catch_up_s:
            self.slips += 1
            self.slipped_s += lag
            return now
        if lag > self.lag_max_s:
            self.lag_max_s = lag
        return next_start

    def _join(self, start: float) -> None:
        """Hand the engine every submitted request that arrived by ``start``."""
        arrivals, add = self._arrivals, self.engine.add
        while arrivals and arrivals[0].arrival_s <= start:
            s = arrivals.popleft()
            self._requests[s.index] = add(s.index, s.prompt_tokens, s.max_tokens)

    def _emit(self, plan: StepPlan, outcome: StepOutcome, end_s: float) -> None:
        """Hand every request that produced a token its new count; end the finished ones."""
        streams = self.streams
        produced = list(plan.decodes or ())
        produced.extend(req for req, _ in plan.chunks)
        for req in produced:
            stream = streams.get(req.index)
            if stream is not None and req.num_output_tokens > stream.tokens:
                if stream.tokens == 0:
                    stream.first_token_s = end_s
                stream.tokens = req.num_output_tokens
                stream.queue.put_nowait(stream.tokens)
        for req in outcome.finished:
            self._close(streams[req.index], "length", end_s)

    def _apply_aborts(self) -> None:
        aborts, self._aborts = self._aborts, []
        for index in aborts:
            stream = self.streams.get(index)
            if stream is None or stream.finished:
                continue
            req = self._requests.get(index)
            if req is None:  # not handed to the engine yet
                self._arrivals.remove(stream)
            else:
                self.engine.abort(req)
            self._close(stream, "abort", self.now())

    def _close(self, stream: Stream, reason: str, at_s: float) -> None:
        stream.reason, stream.finish_s = reason, at_s
        del self.streams[stream.index]
        self._requests.pop(stream.index, None)
        stream.queue.put_nowait(None)
        stream.done.set()
        for obs in self.observers:
            finished = getattr(obs, "finished", None)
            if finished is not None:
                finished(stream)
