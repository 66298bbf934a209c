"""``sjf_aging``: shortest estimated job first, made starvation-free by aging — lowest
``budget_tokens - wait_s * aging_tokens_per_s`` first (budget: prompt + estimated output).

As with ``aging``, every queued request ages at the same rate, so the order at any ``now`` is
that of the time-invariant key ``budget_tokens + arrival_s * aging_tokens_per_s`` (a heap).
Wait bound: a request arriving at t with budget b is overtaken only by requests that arrive
before ``t + (b - b_min) / aging_tokens_per_s`` (b_min: the smallest budget there is), so its
wait is at most the time to serve what arrives before then.
"""

from __future__ import annotations

from driftsched.sim.policies.base import HeapPolicy
from driftsched.sim.request import RequestView
from pydantic import Field

from driftsched.ground.config import Config


class SjfAgingParams(Config):
    aging_tokens_per_s: float = Field(
        20.0, gt=0, description="budget tokens forgiven per second of waiting"
    )


class SjfAgingPolicy(HeapPolicy):
    name = "sjf_aging"
    Params = SjfAgingParams

    def key(self, req: RequestView) -> float:
        return req.budget_tokens + req.arrival_s * self.params.aging_tokens_per_s
