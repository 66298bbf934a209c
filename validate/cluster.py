"""The live gateway in front of several engines stepping in parallel, one process and one core
each (:mod:`driftsched.validate.worker`): the simulator's Gateway, Dispatcher, router and
RecordBook, driven by one real-time loop, as :class:`~driftsched.validate.live.LiveGateway`
drives one in-process engine.

The loop works in *turns*. A turn starts when a worker reports a step or when an arrival (or a
micro-batch deadline) is due; in it the gateway admits every request whose ``arrival_s`` has
passed, then — for a reported step — stamps the step's first tokens and finishes at the turn's
time and feeds the finishes back (corrector, dispatcher, refill), then hands each worker that
may step what was dispatched to it (``go``). A worker never steps without a ``go``, so a request
dispatched while its replica stepped joins that replica's next step, and the finishes of a step
are fed back before its replica's next step starts: the simulator's order at a boundary. The
turn's time is the boundary: each step is logged with ``start_s`` = the turn that sent its
``go`` and ``end_s`` = the turn that took its result (with the ``replica`` it ran on), so
schedule replay (:func:`~driftsched.validate.replay.replay`) ends each replica's simulated steps
on that replica's live boundaries, and requests enter at their admission itself (the loop
admits in real time while the engines step; no snapping to a step).

Routers that read an engine's KV pool (``least_kv``) are refused: the pool lives in the worker
and changes when a step is scheduled, which the gateway only learns at the step's end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.connection import wait

from driftsched.sim.config import SimConfig
from driftsched.sim.dispatcher import ReplicaSlot
from driftsched.sim.prefixcache import prefix_at
from driftsched.sim.router import make_router
from driftsched.traces.trace import Trace
from driftsched.validate.live import LiveGateway
from driftsched.validate.worker import EngineWorker

from driftsched.ground.errors import InputError


def refuse_kv_router(router) -> None:
    """:class:`InputError` for a router that reads the engines' KV pools (see the module
    docstring); checked before any engine starts."""
    if getattr(make_router(router), "reads_kv", False):
        raise InputError(
            f"router {router!r} reads the engines' KV pools, which live in their worker "
            "processes; live runs with several replicas take a router that does not "
            "(round_robin, least_outstanding, prefix_affinity)"
        )


class LiveCluster(LiveGateway):
    """``workers`` (started :class:`EngineWorker` s, replica ``k`` = ``workers[k]``) behind one
    gateway; ``config.replicas`` must equal their number. ``run()`` returns a
    :class:`~driftsched.validate.live.LiveResult` whose ``steps`` carry a ``replica`` column."""

    def __init__(
        self,
        workers: list[EngineWorker],
        trace: Trace,
        config: SimConfig,
        *,
        clock: Callable[[], float] = time.perf_counter,
        timeout_s: float = 600.0,
    ):
        if config.replicas != len(workers):
            raise InputError(
                f"replicas is {config.replicas} but {len(workers)} engine workers were started"
            )
        refuse_kv_router(config.router)
        self.workers = workers
        self.outbox: list[list] = [[] for _ in workers]  # dispatched, not yet handed over
        self.started_s = [0.0] * len(workers)  # when each worker's last go was sent
        super().__init__(workers, trace, config, clock=clock, timeout_s=timeout_s)

    def _slots(self) -> list[ReplicaSlot]:
        return [ReplicaSlot(k) for k in range(len(self.workers))]

    def _reset_prefix_cache(self) -> None:
        from driftsched.validate.engines import reset_prefix_cache

        for w in self.workers:
            w.apply(reset_prefix_cache)

    def _logs_steps(self) -> bool:
        return all(w.info.get("logs_steps") for w in self.workers)

    def _send(self, view, slot: ReplicaSlot, batch: int, now_s: float) -> None:
        """The dispatcher's ``send``: record the dispatch, queue the request for its replica
        (handed over with the replica's next ``go``, at the end of this turn)."""
        i = view.index
        self.book.dispatched(i, now_s, slot.replica_id, batch)
        prefix = prefix_at(self.prefixes, i) if self.prefixes is not None else None
        self.outbox[slot.replica_id].append(
            (self.ids[i], int(self.prompt[i]), int(self.output[i]), prefix)
        )

    def _loop(self) -> None:
        finished = 0
        workers = self.workers
        while finished + self.gateway.rejected < self.n:
            if self.now() > self.timeout_s:
                raise TimeoutError(
                    f"scenario exceeded {self.timeout_s:g} s with "
                    f"{self.n - finished - self.gateway.rejected} requests unfinished"
                )
            now = self._turn()
            self._hand_over(now)
            busy = [w.conn for w in workers if w.busy]
            k = self.next_arrival
            wait_s = (self.arrival_s[k] - self.now()) if k < self.n else 0.05
            if self.deadline is not None:
                wait_s = min(wait_s, self.deadline - self.now())
            wait_s = min(max(wait_s, 0.0), 0.05)
            if not busy:
                self.sleep(wait_s)
                continue
            ready = set(wait(busy, timeout=wait_s))
            for r, w in enumerate(workers):
                if w.conn in ready:
                    finished += self._result(r)

    def _turn(self) -> float:
        """Admit what has arrived, let the dispatcher send what may go; the turn's time."""
        now = self.now()
        self._admit(now)
        self.deadline = self.dispatcher.poll(now)
        return now

    def _hand_over(self, now: float) -> None:
        """Send ``go`` to every idle worker that has requests queued for it."""
        for r, w in enumerate(self.workers):
            if not w.busy and self.outbox[r]:
                self._go(r, now)

    def _go(self, r: int, now: float) -> None:
        adds, self.outbox[r] = self.outbox[r], []
        self.started_s[r] = now
        self.workers[r].go(adds)

    def _result(self, r: int) -> int:
        """Worker ``r`` reported its step: a turn at a step boundary (see the module
        docstring). Returns how many requests finished."""
        outs, records, has_work = self.workers[r].result()
        now = self.now()
        self._admit(now)  # arrivals up to the boundary first (and a deadline passed before them)
        start = self.started_s[r]
        admitted, engine_s, shape, done = self._observe(outs, records, start, now)
        self._finish(done, self.slots[r], now)
        self.deadline = self.dispatcher.poll(now)
        steps_on = bool(has_work or self.outbox[r])  # else the replica goes idle after this
        if records:  # a step the engine ran (a go that found no work runs none)
            self.step_log.append([start, now, not steps_on, admitted, engine_s, *shape, r])
        if steps_on:
            self._go(r, now)
        self._hand_over(now)
        return len(done)
