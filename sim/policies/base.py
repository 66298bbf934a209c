"""The gateway-policy contract.

A policy is a queue discipline over :class:`~driftsched.sim.request.RequestView` (which has no
true output length). Required:

- ``push(view)`` queues a request;
- ``pop(now_s)`` removes and returns the next one to dispatch — ``None`` when empty, or to
  *hold* (dispatch nothing now although requests wait; the dispatcher asks again at the next
  arrival or finish);
- ``len()`` counts queued requests.

Optional hooks (a policy that does not define one pays nothing for it; today's policies define
none). They are called by the :class:`~driftsched.sim.gateway.Gateway`, the same in the
simulator, the live gateway and a plugin's own tests:

- ``attach(state)`` — once, before the first request: a read-only
  :class:`~driftsched.sim.gatewaystate.GatewayState` (queued and in-flight counts per tenant and
  tier, per replica running/waiting/KV utilisation) that stays current; read it in ``pop``.
- ``admit(view, now_s) -> str | None`` — before ``push``: a reason string rejects the request
  (it is recorded with that reason and never queued); ``None`` admits it.
- ``on_dispatch(view, now_s)`` — after ``pop`` handed ``view`` out.
- ``on_finish(view, outcome)`` — after the request's last token, with its
  :class:`~driftsched.sim.request.Outcome` (true output tokens, queue wait, TTFT, E2E): post-hoc
  feedback, like a corrector's ``observe``.

Class attribute ``Params``: the pydantic model of the policy's parameters (``NoParams``); the
policy is built as ``cls(params)``. Class attribute ``properties``: functions
``(events, policy) -> str | None`` the conformance kit checks on its log of the policy's calls
(:mod:`driftsched.sim.checks`), beside the invariants every policy keeps.

Policies are pure: no clocks, no randomness, no global state; equal keys are broken by ``seq``
(admission order).
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod

from driftsched.sim.request import RequestView

from driftsched.ground.config import Config

#: the optional hooks, in the order a request meets them
HOOKS = ("attach", "admit", "on_dispatch", "on_finish")


class NoParams(Config):
    """For policies without parameters."""


class Policy(ABC):
    name: str = "?"
    Params: type[Config] = NoParams

    def __init__(self, params: Config | None = None):
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def push(self, req: RequestView) -> None:
        """Queue ``req``."""

    @abstractmethod
    def pop(self, now_s: float) -> RequestView | None:
        """Remove and return the request to dispatch at ``now_s``; ``None`` when empty (or to
        hold)."""

    @abstractmethod
    def __len__(self) -> int: ...


def hook(policy: object, name: str):
    """``policy``'s bound hook ``name`` (see :data:`HOOKS`), or ``None`` when it has none."""
    return getattr(policy, name, None)


def not_a_policy(obj: object) -> str | None:
    """Why ``obj`` (a class or an instance) cannot serve as a policy; ``None`` if it can."""
    cls = obj if isinstance(obj, type) else type(obj)
    missing = [m for m in ("push", "pop", "__len__") if not callable(getattr(cls, m, None))]
    if missing:
        return f"{cls.__qualname__} is not a policy: it lacks {', '.join(missing)}"
    return None


def pops_in_key_order(events, policy) -> str | None:
    """Each request handed out has the smallest ``(key, seq)`` of those queued at that moment
    (a heap policy's declared property; ``events``: the conformance kit's spy log)."""
    for e in events:
        if e.kind == "pop" and e.view is not None and e.queued:
            got = (policy.key(e.view), e.view.seq)
            best = min((policy.key(v), v.seq) for v in e.queued)
            if best < got:
                return f"at {e.now_s:.6g} s handed out key {got} while {best} waited"
    return None


class HeapPolicy(Policy):
    """A policy whose order is a time-invariant key: a binary heap of ``(key, seq, request)``.
    Declares :func:`pops_in_key_order`, which the conformance kit checks."""

    properties = (pops_in_key_order,)

    def __init__(self, params: Config | None = None):
        super().__init__(params)
        self._heap: list[tuple[object, int, RequestView]] = []

    @abstractmethod
    def key(self, req: RequestView) -> object:
        """Sort key; smallest is dispatched first (ties by ``seq``)."""

    def push(self, req: RequestView) -> None:
        heapq.heappush(self._heap, (self.key(req), req.seq, req))

    def pop(self, now_s: float) -> RequestView | None:
        return heapq.heappop(self._heap)[2] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
