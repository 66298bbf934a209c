"""The gateway service's core: the simulator's Gateway, Dispatcher, policy, corrector and
router driven by HTTP requests in real time (no HTTP here: :mod:`.gateway_app` is the door).

A request is *admitted* (:meth:`GatewayService.admit`: limits, then the very
:meth:`~driftsched.sim.gateway.Gateway.admit` a simulation calls — estimate, job class, the
policy's admission decision — then queued), waits for the dispatcher to *send* it to an
upstream (its :class:`Pending` future resolves with the slot), is forwarded, and ends exactly
once: :meth:`finish` (the corrector observes the generated length; the dispatcher releases the
slot and dispatches again), :meth:`cancel` (the client left: withdrawn from the queue, or
abandoned in flight) or :meth:`fail` (the upstream failed). Every end writes one record
(:mod:`.gateway_records`). Dispatch points are the simulator's: on every arrival and every
finish, and at a micro-batch's deadline (a timer).

A failed upstream rests ``retry_cooldown_s``: meanwhile its slot looks full to the dispatcher
(``in_engine`` raised by :data:`RESTING`), so no policy or router needs to know about health.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from driftsched.sim.dispatcher import Dispatcher, ReplicaSlot
from driftsched.sim.gateway import Gateway
from driftsched.sim.request import Admission, Outcome, RequestView
from driftsched.traces.schema import tier_rank
from driftsched.validate.serve.gateway_config import GatewayConfig
from driftsched.validate.serve.gateway_records import RecordLog
from driftsched.validate.serve.logs import event
from driftsched.validate.serve.openai_api import APIError
from driftsched.validate.serve.state import MemoryLog, ObservationLog
from driftsched.validate.serve.tenants import Tenant, Tenants

#: added to a resting upstream's in-flight count so that it never has room
RESTING = 1 << 30
NAN = math.nan


class _NoTruth:
    def __getitem__(self, i):
        raise RuntimeError("a live gateway has no true lengths")


@dataclass(eq=False)
class Pending:
    """One admitted request on its way through the gateway."""

    adm: Admission
    view: RequestView
    tenant: Tenant
    dispatched: asyncio.Future
    slot: ReplicaSlot | None = None
    batch: int = -1
    order: int = -1
    dispatch_s: float = NAN
    first_token_s: float = NAN
    finish_s: float = NAN
    sent_s: float = NAN  # when the (last) upstream request was sent
    attempts: int = 0
    tokens: int = 0
    ended: bool = False


class GatewayService:
    """See the module docstring. ``on_end(pending_or_None, row)`` is called with every record
    row written (the metrics hook)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        log: ObservationLog | None = None,
        records: RecordLog | None = None,
        clock=time.perf_counter,
        on_end=None,
    ):
        self.config, self.settings = config, config.gateway
        self.clock, self.t0 = clock, clock()
        sim = config.sim_config()
        self.gateway = Gateway.from_config(sim, _NoTruth())
        self.slots = [ReplicaSlot(r) for r in range(len(self.settings.upstreams))]
        self.dispatcher = Dispatcher.from_config(sim, self.gateway, self.slots, self._send)
        self.tenants = Tenants(config.tenants)
        self.log = log if log is not None else MemoryLog()
        self.replayed = self.log.replay(self.gateway.corrector)
        self.records = records if records is not None else RecordLog(None)
        self.on_end = on_end
        self.pending: dict[int, Pending] = {}
        self.held: dict[int, dict] = {}  # micro-batch members finished, the batch still running
        self.resting = [False] * len(self.slots)
        self._next_index = 0
        self._dispatches = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def now(self) -> float:
        return self.clock() - self.t0

    @property
    def queued(self) -> int:
        return len(self.gateway)

    # -- admission -----------------------------------------------------------------------------
    def admit(
        self,
        tenant: Tenant,
        prompt_tokens: int,
        max_tokens: int,
        category: str | None,
        request_id: str,
    ) -> Pending:
        """Limits, then the gateway's admission; raises :class:`APIError` 429 (a tenant limit,
        with ``Retry-After``) or 503 (the gateway's queue is full, or the policy rejected it)
        after recording the outcome."""
        now = self.now()
        c = tenant.config
        tier = c.tier
        base = {
            "request_id": request_id,
            "tenant": tenant.name,
            "tier": tier,
            "category": category or c.category,
            "arrival_s": now,
            "prompt_tokens": prompt_tokens,
            "max_tokens": max_tokens,
        }
        over = tenant.limit(prompt_tokens + max_tokens, now)
        if over is not None:
            limit, wait = over
            self._record(None, {**base, "outcome": "rate_limited", "reason": limit, "status": 429})
            retry = "3600" if math.isinf(wait) else str(max(1, math.ceil(wait)))
            raise APIError(
                429,
                f"tenant {tenant.name}: over its {limit} limit",
                "rate_limit_error",
                retry_after=retry,
            )
        if self.queued >= self.settings.max_queued:
            self._record(
                None,
                {**base, "outcome": "queue_full", "reason": "gateway queue full", "status": 503},
            )
            raise APIError(503, "the gateway's queue is full", "overloaded", retry_after="1")
        index, self._next_index = self._next_index, self._next_index + 1
        adm = Admission(
            index, request_id, now, tenant.name, tier, tier_rank(tier), base["category"],
            prompt_tokens, max_tokens,
            c.ttft_slo_s if c.ttft_slo_s is not None else NAN,
            c.e2e_slo_s if c.e2e_slo_s is not None else NAN,
        )  # fmt: skip
        view, rejection = self.gateway.admit(adm, now)
        if rejection is not None:
            self._record(
                None,
                {
                    **base,
                    "estimate_tokens": view.estimate_tokens,
                    "est_class": view.est_class,
                    "outcome": "rejected",
                    "reason": rejection,
                    "status": 503,
                },
            )
            raise APIError(503, f"rejected by the policy: {rejection}", "rejected")
        p = Pending(adm, view, tenant, asyncio.get_running_loop().create_future())
        self.pending[index] = p
        tenant.queued += 1
        self._pump()
        return p

    # -- dispatch ------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Dispatch what may go now; arm the timer for a micro-batch deadline."""
        deadline = self.dispatcher.poll(self.now())
        if deadline is None or deadline >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = deadline
        self._timer = loop.call_at(loop.time() + max(0.0, deadline - self.now()), self._tick)

    def _tick(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._pump()

    def _send(self, view: RequestView, slot: ReplicaSlot, batch: int, now_s: float) -> None:
        p = self.pending[view.index]
        p.slot, p.batch, p.dispatch_s = slot, batch, now_s
        p.order, self._dispatches = self._dispatches, self._dispatches + 1
        p.tenant.queued -= 1
        p.dispatched.set_result(slot)

    def reroute(self, p: Pending) -> ReplicaSlot | None:
        """Continuous mode: move ``p`` (nothing streamed yet) off its failed upstream to the
        least-loaded one not resting (None: none, or micro-batch mode)."""
        if not self.dispatcher.continuous:
            return None
        up = [s for s in self.slots if not self.resting[s.replica_id] and s is not p.slot]
        if not up:
            return None
        new = min(up, key=lambda s: (s.in_engine, s.replica_id))
        p.slot.in_engine -= 1
        new.in_engine += 1
        p.slot = new
        return new

    def rest(self, slot: ReplicaSlot) -> None:
        """``slot``'s upstream failed: no dispatch to it for ``retry_cooldown_s``."""
        r = slot.replica_id
        if self.resting[r]:
            return
        self.resting[r] = True
        slot.in_engine += RESTING
        event("upstream_resting", upstream=self.settings.upstreams[r],
              seconds=self.settings.retry_cooldown_s)  # fmt: skip
        asyncio.get_running_loop().call_later(self.settings.retry_cooldown_s, self._wake, slot)

    def _wake(self, slot: ReplicaSlot) -> None:
        self.resting[slot.replica_id] = False
        slot.in_engine -= RESTING
        event("upstream_back", upstream=self.settings.upstreams[slot.replica_id])
        self._pump()

    @property
    def ready(self) -> bool:
        return not all(self.resting)

    # -- the ends ------------------------------------------------------------------------------
    def finish(self, p: Pending, tokens: int) -> None:
        """The upstream generated ``tokens``: the corrector learns, the slot frees."""
        if p.ended:
            return
        p.ended, now = True, self.now()
        p.tokens, p.finish_s = tokens, now
        self.gateway.report_finish(p.adm, tokens, self, now)
        self.log.append(p.adm, tokens)
        self._release(p, self._row(p, "finished", "", 200))

    def outcome(self, index: int, now_s: float, arrival_s: float, tokens: int) -> Outcome:
        """A finished request's outcome (for a policy's ``on_finish``; the RecordBook's role)."""
        p = self.pending[index]
        return Outcome(
            tokens, p.dispatch_s - arrival_s, p.first_token_s - arrival_s, now_s - arrival_s, now_s
        )

    def cancel(self, p: Pending, reason: str = "the client disconnected") -> None:
        """The client left: out of the queue, or abandoned in flight."""
        self._abandon(p, "cancelled", reason, 499)

    def fail(self, p: Pending, reason: str, status: int = 502) -> None:
        """The upstream failed (after retries, or mid-stream)."""
        self._abandon(p, "failed", reason, status)

    def _abandon(self, p: Pending, outcome: str, reason: str, status: int) -> None:
        if p.ended:
            return
        p.ended = True
        if p.slot is None:  # still queued
            self.gateway.withdraw(p.view)
            p.tenant.queued -= 1
            if not p.dispatched.done():
                p.dispatched.cancel()
            del self.pending[p.adm.index]
            self._record(p, self._row(p, outcome, reason, status))
            return
        self.gateway.abandon(p.adm)
        self._release(p, self._row(p, outcome, reason, status))

    def _release(self, p: Pending, row: dict) -> None:
        """Free ``p``'s slot; write the records whose end-to-end time ends now (itself, or a
        whole micro-batch), then dispatch again."""
        now = self.now()
        index = p.adm.index
        done = self.dispatcher.release(p.slot, index)
        self.held[index] = row
        for j in done:
            held = self.held.pop(j)
            held["done_s"] = now if held["outcome"] == "finished" else NAN
            self._record(self.pending.pop(j, None), held)
        self._pump()

    def _row(self, p: Pending, outcome: str, reason: str, status: int) -> dict:
        a, v = p.adm, p.view
        return {
            "request_id": a.request_id, "tenant": a.tenant, "tier": a.tier,
            "category": a.category, "arrival_s": a.arrival_s, "dispatch_s": p.dispatch_s,
            "first_token_s": p.first_token_s, "finish_s": p.finish_s, "done_s": NAN,
            "prompt_tokens": a.prompt_tokens, "max_tokens": a.max_tokens,
            "estimate_tokens": v.estimate_tokens, "est_class": v.est_class,
            "generated_tokens": p.tokens, "dispatch_order": p.order, "batch_id": p.batch,
            "replica": p.slot.replica_id if p.slot is not None else -1,
            "upstream_s": p.finish_s - p.sent_s, "attempts": p.attempts, "outcome": outcome,
            "reason": reason, "status": status,
        }  # fmt: skip

    def _record(self, p: Pending | None, row: dict) -> None:
        self.records.write(row)
        e2e_s = row.get("done_s", NAN) - row.get("arrival_s", NAN)
        event("request", request_id=row.get("request_id"), tenant=row.get("tenant"),
              outcome=row["outcome"], reason=row.get("reason") or "", status=row.get("status"),
              e2e_s=e2e_s)  # fmt: skip
        if self.on_end is not None:
            self.on_end(p, row)

    def record_refused(self, row: dict) -> None:
        """A request refused before admission (401, 400, 413): its one record."""
        self._record(None, {"arrival_s": self.now(), **row})
