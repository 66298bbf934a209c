"""``fifo``: global arrival (admission) order."""

from __future__ import annotations

from collections import deque

from driftsched.sim.policies.base import Policy
from driftsched.sim.request import RequestView


class FifoPolicy(Policy):
    name = "fifo"

    def __init__(self, params=None):
        super().__init__(params)
        self._queue: deque[RequestView] = deque()

    def push(self, req: RequestView) -> None:
        self._queue.append(req)

    def pop(self, now_s: float) -> RequestView | None:
        return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)
