"""The parts ``bands`` is composed of, each a small registered piece (as the Gateway API
Inference Extension's flow control composes its plugins):

- a **fairness policy** (:data:`FAIRNESS`) picks which backlogged tenant of a band goes next:
  ``round_robin`` (tenants in turn) or ``vtc`` (the smallest virtual token counter, as the
  ``vtc`` policy, charged at dispatch and corrected at finish);
- an **ordering policy** (:data:`ORDERINGS`) orders one tenant's queue: ``fcfs``, ``sjf``
  (smallest estimated budget), ``edf`` (earliest ``arrival_s + SLO``).
"""

from __future__ import annotations

import functools
from collections import deque

from driftsched.sim.policies.edf import EdfParams, request_slo_s
from driftsched.sim.policies.queues import TenantQueues, fcfs_key
from driftsched.sim.request import RequestView

from driftsched.ground.registry import Registry


class RoundRobinFairness:
    """Backlogged tenants in turn, in the order they became backlogged."""

    def __init__(self) -> None:
        self._turn: deque[str] = deque()  # backlogged tenants, the next one first

    def joined(self, tenant: str, queues: TenantQueues) -> None:
        self._turn.append(tenant)

    def pick(self, queues: TenantQueues) -> str:
        turn = self._turn
        while turn[0] not in queues.backlogged:  # left since its last turn
            turn.popleft()
        turn.rotate(-1)
        return turn[-1]

    def dispatched(self, view: RequestView) -> None: ...

    def finished(self, view: RequestView, output_tokens: int) -> None: ...


class VtcFairness:
    """The smallest virtual token counter (prompt + 2 x output tokens: the estimate at
    dispatch, corrected at finish); a tenant back from idle is lifted to the smallest counter of
    the band's backlogged tenants (or the last served one's), as in ``vtc``."""

    def __init__(self) -> None:
        self.counters: dict[str, float] = {}
        self._last = 0.0

    def joined(self, tenant: str, queues: TenantQueues) -> None:
        counters = self.counters
        others = (counters[t] for t in queues.backlogged if t != tenant)
        counters[tenant] = max(counters.get(tenant, 0.0), min(others, default=self._last))

    def pick(self, queues: TenantQueues) -> str:
        counters = self.counters
        return min(queues.backlogged, key=lambda t: (counters[t], queues.head(t).seq))

    def dispatched(self, view: RequestView) -> None:
        self.counters[view.tenant] += view.prompt_tokens + 2 * view.estimate_tokens
        self._last = self.counters[view.tenant]

    def finished(self, view: RequestView, output_tokens: int) -> None:
        self.counters[view.tenant] += 2 * (output_tokens - view.estimate_tokens)


def sjf_key(view: RequestView) -> int:
    return view.budget_tokens


@functools.cache
def _edf_defaults() -> EdfParams:
    """EDF's default SLOs, built on first use (not on import: ``sim list`` builds no model)."""
    return EdfParams()


def edf_key(view: RequestView) -> float:
    return view.arrival_s + request_slo_s(view, _edf_defaults())


#: fairness policy name -> factory (one per band)
FAIRNESS: Registry = Registry(
    "fairness policy", {"round_robin": RoundRobinFairness, "vtc": VtcFairness}
)
#: ordering policy name -> key over a request (smallest first, ties by admission order)
ORDERINGS: Registry = Registry(
    "ordering policy", {"fcfs": fcfs_key, "sjf": sjf_key, "edf": edf_key}
)
