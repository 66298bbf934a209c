"""``weighted``: per-tier FIFO queues served by a repeating cycle of slots — by default premium x5,
standard x3, batch x2 (50/30/20 under a permanent backlog).

``pop`` starts at the current cycle position, skips slots whose tier queue is empty, serves the
first non-empty one and moves the position to the slot after it (the cycle keeps its place across
calls). Tiers that are not in the cycle are served, FIFO, only when every cycle tier is empty.
"""

from __future__ import annotations

from collections import deque

from driftsched.sim.policies.base import Policy
from driftsched.sim.request import RequestView
from pydantic import Field, field_validator

from driftsched.ground.config import Config


class WeightedParams(Config):
    weights: dict[str, int] = Field(
        default_factory=lambda: {"premium": 5, "standard": 3, "batch": 2},
        description="slots per cycle for each tier, served in this order",
    )

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        if not v or any(w < 1 for w in v.values()):
            raise ValueError("need at least one tier, each with weight >= 1")
        return v


class WeightedPolicy(Policy):
    name = "weighted"
    Params = WeightedParams

    def __init__(self, params: WeightedParams | None = None):
        super().__init__(params)
        self._cycle = [tier for tier, w in self.params.weights.items() for _ in range(w)]
        self._queues: dict[str, deque[RequestView]] = {t: deque() for t in self.params.weights}
        self._other: deque[RequestView] = deque()
        self._position = 0
        self._count = 0

    def push(self, req: RequestView) -> None:
        self._queues.get(req.tier, self._other).append(req)
        self._count += 1

    def pop(self, now_s: float) -> RequestView | None:
        if not self._count:
            return None
        n = len(self._cycle)
        for step in range(n):
            slot = (self._position + step) % n
            queue = self._queues[self._cycle[slot]]
            if queue:
                self._position = (slot + 1) % n
                self._count -= 1
                return queue.popleft()
        self._count -= 1
        return self._other.popleft()

    def __len__(self) -> int:
        return self._count
