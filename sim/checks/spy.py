"""A policy under observation: :class:`Spy` forwards every call to the policy it wraps and logs
what the policy was asked and what it answered, so invariants and a policy's declared
properties are checked on the log after a run.

The spy offers exactly the hooks the wrapped policy has (the gateway looks hooks up by name), so
a policy behaves under the spy as without it.
"""

from __future__ import annotations

from typing import NamedTuple

from driftsched.sim.policies.base import HOOKS, hook
from driftsched.sim.request import Outcome, RequestView


class Event(NamedTuple):
    """One call. ``kind``: push | pop | admit | dispatch | finish. ``view``: the request
    (``None`` for a pop that returned nothing); ``queued``: for a pop, the requests queued just
    before it; ``answer``: admit's reason (None: admitted); ``replicas``: for admit and pop of an
    attached policy, each replica's ``(waiting, kv_utilisation)`` at that moment; ``outcome``:
    for finish."""

    kind: str
    now_s: float
    view: RequestView | None
    queued: tuple[RequestView, ...] = ()
    answer: str | None = None
    replicas: tuple[tuple[int, float], ...] = ()
    outcome: Outcome | None = None
    length: int = 0  # len(policy) after the call


class Spy:
    """Wraps ``policy``; ``events`` is the log. Queue snapshots cost O(queued) per pop: for the
    small traces of property tests."""

    def __init__(self, policy):
        self.policy = policy
        self.events: list[Event] = []
        self._queued: dict[int, RequestView] = {}  # seq -> view, what the spy saw pushed
        self._state = None
        self._now_s = float("-inf")  # the latest time the policy was told
        for name in HOOKS:  # only the hooks the policy has
            if hook(policy, name) is not None:
                setattr(self, name, getattr(self, f"_{name}"))

    # -- the required contract ---------------------------------------------------------------
    def push(self, req: RequestView) -> None:
        self.policy.push(req)
        self._queued[req.seq] = req
        self.events.append(Event("push", self._now_s, req, length=len(self.policy)))

    def pop(self, now_s: float) -> RequestView | None:
        self._now_s = now_s
        before = tuple(self._queued.values())
        view = self.policy.pop(now_s)
        if view is not None:
            self._queued.pop(view.seq, None)
        self.events.append(
            Event("pop", now_s, view, before, replicas=self._replicas(), length=len(self.policy))
        )
        return view

    def __len__(self) -> int:
        return len(self.policy)

    # -- the optional hooks (bound in __init__ only when the policy has them) -----------------
    def _attach(self, state) -> None:
        self._state = state
        self.policy.attach(state)

    def _admit(self, view: RequestView, now_s: float) -> str | None:
        self._now_s = now_s
        replicas = self._replicas()
        reason = self.policy.admit(view, now_s)
        self.events.append(Event("admit", now_s, view, answer=reason, replicas=replicas))
        return reason

    def _on_dispatch(self, view: RequestView, now_s: float) -> None:
        self.events.append(Event("dispatch", now_s, view))
        self.policy.on_dispatch(view, now_s)

    def _on_finish(self, view: RequestView, outcome: Outcome) -> None:
        self.events.append(Event("finish", outcome.finish_s, view, outcome=outcome))
        self.policy.on_finish(view, outcome)

    def _replicas(self) -> tuple[tuple[int, float], ...]:
        if self._state is None:
            return ()
        return tuple((r.waiting, r.kv_utilisation) for r in self._state.replicas)
