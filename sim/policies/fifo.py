"""``fifo``: global arrival (admission) order."""

from __future__ import annotations

from collections import deque

from driftsched.sim.policies.base import Policy
from driftsched.sim.request import RequestView


def pops_oldest_first(events, policy) -> str | None:
    """Each request handed out is the earliest admitted of those queued."""
    for e in events:
        if e.kind == "pop" and e.view is not None and e.queued:
            oldest = min(v.seq for v in e.queued)
            if e.view.seq != oldest:
                return f"at {e.now_s:.6g} s handed out seq {e.view.seq} while seq {oldest} waited"
    return None


class FifoPolicy(Policy):
    name = "fifo"
    properties = (pops_oldest_first,)

    def __init__(self, params=None):
        super().__init__(params)
        self._queue: deque[RequestView] = deque()

    def push(self, req: RequestView) -> None:
        self._queue.append(req)

    def pop(self, now_s: float) -> RequestView | None:
        return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)
