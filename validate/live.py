"""The live gateway: the simulator's own Gateway, Dispatcher and RecordBook in front of a real
engine, under real-time arrivals. Live swaps the driver, not the model: the policy, corrector,
dispatch (continuous fill or micro-batch forming) and record columns are the very objects the
SimPy driver runs; only the clock and the engine differ.

Choice: the engine runs **in-process** (``LLMEngine`` with ``VLLM_ENABLE_V1_MULTIPROCESSING=0``,
wrapped by :class:`~driftsched.calibrate.vllm_engine.InstrumentedEngine`) and one real-time loop
plays gateway and client: it admits each request when the wall clock reaches its ``arrival_s``,
lets the dispatcher send what may go, runs an engine step, and stamps the first token and the
finish of every request from the step's streamed outputs. Why not ``vllm serve`` over HTTP: on
a 2-core machine an API-server process and an HTTP client compete with the engine for the cores
and add jitter that is about the machine, not the scheduler; in-process, the engine is the exact
object the calibration measured, requests join at step boundaries exactly as they do behind
``vllm serve`` (new requests enter the scheduler between steps), and no server process can be
left behind. The loop is what an asyncio gateway would do at each step boundary, without threads
touching the non-thread-safe engine.

The engine needs ``add(request_id, prompt_tokens, output_tokens)``, ``step() -> outputs``
(vLLM ``RequestOutput``-like: ``request_id``, ``outputs[0].token_ids``, ``finished``) and
``has_work()``; when it also keeps ``last_steps`` (the
:class:`~driftsched.calibrate.vllm_engine.StepRecord` of each core step the last ``step()``
ran), records get ``scheduled_s`` and ``preemptions`` too. ``clock`` and ``sleep`` are
injectable, so tests drive the same loop with a fake engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from driftsched.calibrate.profiler import shape_row
from driftsched.sim.config import SimConfig
from driftsched.sim.dispatcher import Dispatcher, ReplicaSlot
from driftsched.sim.estimatorview import with_view_columns
from driftsched.sim.gateway import Gateway
from driftsched.sim.prefixcache import chunk_ids_at, prefix_at, prefix_cells
from driftsched.sim.records import RecordBook
from driftsched.sim.request import Admission, slo_columns
from driftsched.traces.schema import tier_rank
from driftsched.traces.trace import Trace


@dataclass
class LiveResult:
    """Per-request records of a live run (exactly the simulator's columns), and how the run
    ended: ``complete``, ``timeout`` or ``error`` (with ``error`` text). ``extra`` holds what
    only a live run has: ``admission_lag_max_s``/``admission_lag_mean_s``, how long after its
    ``arrival_s`` the loop got round to admitting a request. ``admit_s`` (per trace row) is when
    the loop admitted each request (schedule replay starts requests there)."""

    records: pd.DataFrame
    status: str = "complete"
    error: str | None = None
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)
    #: one row per engine step, when the engine reports its steps (see :data:`STEP_COLUMNS`)
    steps: pd.DataFrame | None = None
    admit_s: np.ndarray | None = None


#: the live step log: the loop's clock at the step's start and once its outputs were handled,
#: whether the loop then went idle (slept) before the next step, how many requests the step
#: scheduled for the first time, the engine core's own time for it, and the step's batch shape
#: (as the profiler records it)
STEP_COLUMNS = [
    "start_s",
    "end_s",
    "idle_after",
    "admitted",
    "engine_s",
    "prefill_tokens",
    "prefill_attention",
    "prefill_requests",
    "decode_requests",
    "decode_context_tokens",
    "preempted",
    "replica",
]


def step_summary(engine, outputs) -> tuple[list, list]:
    """An engine step as plain tuples (they pickle: a worker process sends them,
    :mod:`driftsched.validate.worker`): ``outs`` as ``(request_id, output tokens so far,
    finished)`` per output, ``records`` as ``(chunks, preempted_ids, shape, duration_s)`` per
    core step the engine logged (``shape`` as :func:`~driftsched.calibrate.profiler.shape_row`)."""
    outs = [
        (o.request_id, len(o.outputs[0].token_ids) if o.outputs else 0, bool(o.finished))
        for o in outputs
    ]
    records = [
        (r.chunks, r.preempted_ids, tuple(shape_row(r).values()), r.duration_s)
        for r in getattr(engine, "last_steps", ())
    ]
    return outs, records


class LiveGateway:
    def __init__(
        self,
        engine,
        trace: Trace,
        config: SimConfig,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 600.0,
    ):
        self.engine, self.config, self.clock, self.sleep = engine, config, clock, sleep
        self.timeout_s = timeout_s
        f = trace.frame
        self.frame = f
        self.n = len(f)
        self.arrival_s = f["arrival_s"].to_numpy(dtype=np.float64)
        self.prompt = f["prompt_tokens"].to_numpy(dtype=np.int64)
        self.output = f["output_tokens"].to_numpy(dtype=np.int64)
        self.max_tokens = f["max_tokens"].to_numpy(dtype=np.int64)
        self.slo = slo_columns(f)
        self.caching = bool(config.engine.get("enable_prefix_caching"))
        # what each prompt shares (token ids follow it: calibrate.vllm_engine.prompt_ids);
        # a prefix-reading router reads it with caching on or off, as in the simulator
        cells = prefix_cells(f)
        self.prefixes = cells if self.caching else None
        self.cols = {
            c: [str(v) for v in f[c]] for c in ("request_id", "tenant", "tier", "category")
        }
        self.gateway = Gateway.from_config(config, self.output, categories=f["category"])
        self.slots = self._slots()
        self.slot = self.slots[0]
        self.dispatcher = Dispatcher.from_config(
            config, self.gateway, self.slots, self._send, prefix_of=partial(chunk_ids_at, cells)
        )
        self.book = RecordBook(self.n)
        self.ids = [f"q{i}" for i in range(self.n)]
        self.index = {rid: i for i, rid in enumerate(self.ids)}
        self.admissions: dict[int, Admission] = {}
        self.admit_s = np.full(self.n, np.nan)
        self.next_arrival = 0
        self.step_log: list[list] = []

    def _slots(self) -> list[ReplicaSlot]:
        """The dispatcher's slots: here the one engine's, with its running/waiting queues and
        KV pool where it exposes them (policies that attach read them; see
        calibrate.vllm_engine.InstrumentedEngine)."""
        engine = self.engine
        running = engine if hasattr(engine, "running") else None
        return [ReplicaSlot(0, getattr(engine, "pool", None), running)]

    def _reset_prefix_cache(self) -> None:
        reset = getattr(self.engine, "reset_prefix_cache", None)
        if reset is not None:
            reset()

    def _logs_steps(self) -> bool:
        return hasattr(self.engine, "last_steps")

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> LiveResult:
        if self.caching:
            # start from an empty prefix cache, as the simulator does (an earlier scenario's
            # blocks would otherwise be hits here and not there)
            self._reset_prefix_cache()
        self.t0 = self.clock()
        status, error = "complete", None
        try:
            self._loop()
        except TimeoutError as exc:
            status, error = "timeout", str(exc)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user"
            raise
        except Exception as exc:  # the engine died mid-run: keep what completed
            status, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            steps = (
                pd.DataFrame(self.step_log, columns=STEP_COLUMNS) if self._logs_steps() else None
            )
            self.result = LiveResult(
                self._records(), status, error, self.now(), self._extra(), steps, self.admit_s
            )
        return self.result

    def now(self) -> float:
        return self.clock() - self.t0

    def _loop(self) -> None:
        finished = 0
        while finished + self.gateway.rejected < self.n:  # every request finished or rejected
            if self.now() > self.timeout_s:
                raise TimeoutError(
                    f"scenario exceeded {self.timeout_s:g} s with "
                    f"{self.n - finished - self.gateway.rejected} requests unfinished"
                )
            # While the engine works, requests are admitted only between a step's end and its
            # finishes (in _step), as the simulator orders a step boundary: one arriving after
            # that waits for the next boundary, as it would behind an engine that had already
            # scheduled its next step. An idle engine admits at once.
            busy = self.engine.has_work()
            now = self.now()  # one instant for the admissions and the dispatch after them
            if not busy:
                self._admit(now)
            self.deadline = self.dispatcher.poll(now)
            if busy or self.engine.has_work():
                finished += self._step()
                continue
            k = self.next_arrival
            wait = (self.arrival_s[k] - self.now()) if k < self.n else 0.001
            if self.deadline is not None:
                wait = min(wait, self.deadline - self.now())
            if self.step_log:
                self.step_log[-1][2] = True  # idle after that step
            self.sleep(min(max(wait, 0.0), 0.05))

    #: the dispatcher's next micro-batch deadline (None: none pending)
    deadline: float | None = None

    def _admit(self, now: float) -> None:
        """Admit every request whose arrival time has passed by ``now`` (estimate, classify,
        queue), stamped ``now`` — the caller dispatches at that same instant, so what replay
        sees admitted before a dispatch was admitted before it. A micro-batch deadline already
        passed at that time fires first, as the simulator orders them: the requests admitted
        now come after it, so they are not in its batch (a loop that woke 0.2 ms after a
        deadline used to put one in; replay found a step with one prefill more live than
        simulated)."""
        k = self.next_arrival
        if self.deadline is not None and self.deadline <= now:
            self.deadline = self.dispatcher.poll(now)
        while k < self.n and self.arrival_s[k] <= now:
            tier = self.cols["tier"][k]
            adm = Admission(
                k,
                self.cols["request_id"][k],
                float(self.arrival_s[k]),
                self.cols["tenant"][k],
                tier,
                tier_rank(tier),
                self.cols["category"][k],
                int(self.prompt[k]),
                int(self.max_tokens[k]),
                float(self.slo["ttft_slo_s"][k]),
                float(self.slo["e2e_slo_s"][k]),
            )
            view, rejection = self.gateway.admit(adm, now)
            self.book.admitted(k, view.estimate_tokens, view.est_class)
            self.admit_s[k] = now
            k += 1
            self.next_arrival = k
            if rejection is not None:
                self.book.rejected(adm.index, rejection)
                continue
            self.admissions[adm.index] = adm
            if self.dispatcher.continuous:  # as the simulator: fill on every arrival
                self.dispatcher.fill(now)

    def _send(self, view, slot: ReplicaSlot, batch: int, now_s: float) -> None:
        """The dispatcher's ``send``: submit the request to the engine, record it."""
        i = view.index
        self.book.dispatched(i, now_s, slot.replica_id, batch)
        if self.prefixes is None:
            self.engine.add(self.ids[i], int(self.prompt[i]), int(self.output[i]))
        else:
            prefix = prefix_at(self.prefixes, i)
            self.engine.add(self.ids[i], int(self.prompt[i]), int(self.output[i]), prefix)

    def _row(self, request_id: str) -> int:
        """Trace row of an engine request id (vLLM may append ``-<suffix>``)."""
        i = self.index.get(request_id)
        return i if i is not None else self.index[request_id.rsplit("-", 1)[0]]

    def _step(self) -> int:
        """One engine step; then, in the simulator's order of events at a step's end, the
        requests that arrived during the step are admitted (estimated with the corrector state
        of their arrival) and the finishes are fed back in trace-row order."""
        start = self.now()
        outputs = self.engine.step()
        now = self.now()
        outs, records = step_summary(self.engine, outputs)
        admitted, engine_s, shape, done = self._observe(outs, records, start, now)
        self._admit(self.now())
        self._finish(done, self.slot, now)
        # the step's boundary: a micro-batch whose last request just finished lets the next
        # form here, before anything arrives later — the instant replay ends the step at when
        # the engine then idles (a batch formed at the loop's next turn took one more arrival
        # than replay's, and sjf put it first: a step with other prefills live than simulated)
        end = self.now()
        self.deadline = self.dispatcher.poll(end)
        self.step_log.append([start, end, False, admitted, engine_s, *shape, 0])
        return len(done)

    def _observe(self, outs: list, records: list, start: float, now: float) -> tuple:
        """What a step did (see :func:`step_summary`): requests scheduled for the first time
        stamped at ``start``, preemptions counted, first tokens stamped at ``now``. Returns
        ``(admitted, engine_s, shape, done)``: ``shape`` summed over the core steps (as
        :data:`STEP_COLUMNS`), ``done`` the ``(row, output tokens)`` that finished."""
        book = self.book
        scheduled_s, first_token_s = book.times["scheduled_s"], book.times["first_token_s"]
        admitted, engine_s = 0, 0.0
        shape = [0, 0.0, 0, 0, 0, 0]
        for chunks, preempted_ids, step_shape, duration_s in records:
            engine_s += duration_s
            for rid, _, _ in chunks:
                i = self._row(rid)
                if scheduled_s[i] != scheduled_s[i]:  # NaN: first time in the engine's batch
                    scheduled_s[i] = start
                    admitted += 1
            for rid in preempted_ids:
                book.preemptions[self._row(rid)] += 1
            for k, value in enumerate(step_shape):
                shape[k] += value
        done: list[tuple[int, int]] = []
        for rid, tokens, finished in outs:
            i = self._row(rid)
            if tokens and first_token_s[i] != first_token_s[i]:
                first_token_s[i] = now
            if finished:
                done.append((i, tokens))
        return admitted, engine_s, shape, done

    def _finish(self, done: list, slot: ReplicaSlot, now: float) -> None:
        """Feed finishes back in trace-row order: record, corrector, dispatcher (refill)."""
        book, dispatcher = self.book, self.dispatcher
        done_s = book.times["done_s"]
        for i, tokens in sorted(done):
            book.finished(i, now, tokens, book.preemptions[i])
            self.gateway.report_finish(self.admissions.pop(i), tokens, book, now)
            for j in dispatcher.release(slot, i):
                done_s[j] = now
            if dispatcher.continuous:  # ... and on every finish
                dispatcher.fill(now)

    def _records(self) -> pd.DataFrame:
        records = self.book.frame(
            self.frame, self.arrival_s, self.prompt, self.output, self.config.job_classes
        )
        return with_view_columns(records, self.gateway.corrector, self.output)

    def _extra(self) -> dict:
        lag = (self.admit_s - self.arrival_s)[~np.isnan(self.admit_s)]
        return {
            "admission_lag_max_s": float(lag.max()) if lag.size else None,
            "admission_lag_mean_s": float(lag.mean()) if lag.size else None,
        }
