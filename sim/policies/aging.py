"""``aging``: tier rank minus waiting time — ``score = rank - wait_s * rate`` (rate 0.01/s);
lowest score first, ties by arrival.

Because every queued request ages at the same rate, ``rank - (now - arrival_s) * rate`` orders
requests exactly as the time-invariant key ``rank + arrival_s * rate`` does, so a heap gives the
exact order at any ``now``. Wait bound: a request of rank r arriving at t can only be overtaken by
requests arriving before ``t + (r - r_min) / rate``.
"""

from __future__ import annotations

from driftsched.sim.policies.base import HeapPolicy
from driftsched.sim.request import RequestView
from pydantic import Field

from driftsched.ground.config import Config


class AgingParams(Config):
    rate_per_s: float = Field(0.01, gt=0, description="score decrease per second of waiting")


class AgingPolicy(HeapPolicy):
    name = "aging"
    Params = AgingParams

    def key(self, req: RequestView) -> float:
        return req.tier_rank + req.arrival_s * self.params.rate_per_s
