"""The dispatcher: which queued request goes to which engine replica, and when.

A pure state machine over the :class:`~driftsched.sim.gateway.Gateway` and one
:class:`ReplicaSlot` per replica — no clock (callers pass ``now_s``), no SimPy. The SimPy driver
(:mod:`driftsched.sim.simulation`) and the live real-time loop (:mod:`driftsched.validate.live`)
drive the very same object; only the clock and the engine behind ``send`` differ.

Two modes:

- ``continuous``: :meth:`Dispatcher.fill` — while some replica has fewer than
  ``max_concurrency`` requests in flight, the policy's next request goes to the replica the
  router picks among those with room. Call it on every arrival and every finish.
- ``microbatch`` (the study's worker, docs/model.md): :meth:`Dispatcher.form` — an idle replica
  takes the policy's next request, waits up to ``batch_wait_s`` for the batch to reach
  ``batch_size``, dispatches it whole and takes nothing more until every request of the batch
  has finished. ``form`` says what the caller waits for before calling again.

Dispatching calls ``send(view, slot, batch, now_s)`` (``batch`` is -1 in continuous mode): the
driver hands the request to that replica's engine and writes its record.
"""

from __future__ import annotations

from collections.abc import Callable

from driftsched.sim.gateway import Gateway
from driftsched.sim.request import RequestView

#: :meth:`Dispatcher.form`: nothing is queued; call again after the next arrival
WAIT_ARRIVAL = "arrival"
#: :meth:`Dispatcher.form`: the replica's batch is in the engine; call again once it is done
WAIT_BATCH = "batch"


class ReplicaSlot:
    """The dispatcher's state for one replica, and what a router may read of it."""

    __slots__ = ("replica_id", "in_engine", "pool", "engine", "batch", "batch_left", "deadline_s")

    def __init__(self, replica_id: int, pool=None, engine=None):
        self.replica_id = replica_id
        self.in_engine = 0  # dispatched to this replica and not finished
        self.pool = pool  # the engine's KV block pool (``used``, ``capacity``), if known
        self.engine = engine  # the engine, if known: ``running`` and ``waiting`` are sized
        self.batch: list[RequestView] = []  # microbatch: forming, or in the engine
        self.batch_left = 0  # microbatch: requests of the dispatched batch not finished
        self.deadline_s = 0.0  # microbatch: when the forming batch goes, full or not

    @property
    def kv_utilisation(self) -> float:
        pool = self.pool
        return pool.used / pool.capacity if pool is not None else float("nan")


class Dispatcher:
    """See the module docstring. ``router(candidates, replicas) -> slot`` is called only with
    several replicas, with the slots that have room, in replica order."""

    def __init__(
        self,
        gateway: Gateway,
        slots: list[ReplicaSlot],
        send: Callable[[RequestView, ReplicaSlot, int, float], None],
        *,
        continuous: bool,
        max_concurrency: int,
        batch_size: int,
        batch_wait_s: float,
        router: Callable,
    ):
        self.gateway, self.slots, self.send = gateway, slots, send
        self.continuous = continuous
        self.max_concurrency = max_concurrency
        self.batch_size, self.batch_wait_s = batch_size, batch_wait_s
        self.router = router
        self._by_request = getattr(router, "routes_by_request", False)
        self._only = slots[0] if len(slots) == 1 else None
        self.batches = 0  # micro-batches dispatched so far (the next one's id)
        gateway.attach(slots)

    @classmethod
    def from_config(
        cls, config, gateway: Gateway, slots: list[ReplicaSlot], send, router=None, prefix_of=None
    ) -> Dispatcher:
        """The dispatcher a :class:`~driftsched.sim.config.SimConfig` describes (``router``:
        a router object replacing the config's spec). ``prefix_of(index) -> chunk ids`` is
        bound to a router that reads each request's prefix (``bind``: prefix_affinity) — by
        every driver alike, simulated or live."""
        from driftsched.sim.router import make_router

        out = cls(
            gateway,
            slots,
            send,
            continuous=config.mode == "continuous",
            max_concurrency=config.max_concurrency,
            batch_size=config.batch_size,
            batch_wait_s=config.batch_wait_s,
            router=make_router(router if router is not None else config.router),
        )
        bind = getattr(out.router, "bind", None)
        if bind is not None and prefix_of is not None:
            bind(prefix_of)
        return out

    # -- continuous ----------------------------------------------------------------------------
    def room(self) -> bool:
        """Whether a dispatch could happen now (continuous mode): some replica has room."""
        maxc = self.max_concurrency
        for slot in self.slots:  # noqa: SIM110 (not any(): a compiled C method holds no generator)
            if slot.in_engine < maxc:
                return True
        return False

    def fill(self, now_s: float) -> None:
        """Continuous mode: dispatch by policy while some replica has room."""
        gateway, maxc, send = self.gateway, self.max_concurrency, self.send
        only = self._only
        if only is not None:
            while only.in_engine < maxc:
                view = gateway.next(now_s)
                if view is None:
                    return
                only.in_engine += 1
                send(view, only, -1, now_s)
            return
        slots = self.slots
        while len(gateway):
            room = [s for s in slots if s.in_engine < maxc]
            if not room:
                return
            view = gateway.next(now_s)
            if view is None:  # the policy holds
                return
            slot = (
                self.router(room, len(slots), view)
                if self._by_request
                else self.router(room, len(slots))
            )
            slot.in_engine += 1
            send(view, slot, -1, now_s)

    # -- micro-batches -------------------------------------------------------------------------
    def form(self, slot: ReplicaSlot, now_s: float) -> str | float:
        """Micro-batch mode: advance ``slot``'s batch at ``now_s``. Returns
        :data:`WAIT_BATCH` (its batch is in the engine — dispatched now or earlier),
        :data:`WAIT_ARRIVAL` (nothing queued), or the deadline in seconds (the batch is not
        full yet: call again after an arrival or at the deadline)."""
        if slot.batch_left:
            return WAIT_BATCH
        gateway, batch = self.gateway, slot.batch
        if not batch:
            view = gateway.next(now_s) if len(gateway) else None
            if view is None:  # nothing queued, or the policy holds: ask again on an arrival
                return WAIT_ARRIVAL
            batch.append(view)
            slot.deadline_s = now_s + self.batch_wait_s
        while len(batch) < self.batch_size:
            view = gateway.next(now_s) if len(gateway) else None
            if view is not None:
                batch.append(view)
                continue
            if now_s >= slot.deadline_s:
                break
            return slot.deadline_s
        number, self.batches = self.batches, self.batches + 1
        slot.batch_left = len(batch)
        for view in batch:
            slot.in_engine += 1
            self.send(view, slot, number, now_s)
        return WAIT_BATCH

    # -- feedback ------------------------------------------------------------------------------
    def release(self, slot: ReplicaSlot, index: int) -> list[int]:
        """Request ``index`` finished in ``slot``'s engine. Returns the requests whose
        end-to-end time ends with it: itself (continuous), or the whole batch when it was the
        batch's last (microbatch; the replica is idle again), else none. In continuous mode
        call :meth:`fill` next: the finish made room."""
        slot.in_engine -= 1
        if self.continuous:
            return [index]
        slot.batch_left -= 1
        if slot.batch_left:
            return []
        done = [view.index for view in slot.batch]
        slot.batch = []
        return done

    def poll(self, now_s: float) -> float | None:
        """For a real-time loop: dispatch what can go at ``now_s`` (fill, or advance every
        idle replica's batch). Returns the earliest batch deadline still pending, if any."""
        if self.continuous:
            self.fill(now_s)
            return None
        deadlines = [w for s in self.slots if not isinstance(w := self.form(s, now_s), str)]
        return min(deadlines, default=None)
