"""``priority``: strict tiers — premium before standard before batch (lower rank first), FIFO
within a tier. A lower tier is never dispatched while a higher one waits."""

from __future__ import annotations

from driftsched.sim.policies.base import HeapPolicy
from driftsched.sim.request import RequestView


class PriorityPolicy(HeapPolicy):
    name = "priority"

    def key(self, req: RequestView) -> int:
        return req.tier_rank
