"""The gateway-policy contract.

A policy is a queue discipline over :class:`~driftsched.sim.request.RequestView` (which has no
true output length). ``push`` adds a request, ``pop(now_s)`` removes and returns the next one to
dispatch (``None`` when empty), ``len()`` counts queued requests. Policies are pure: no clocks,
no randomness; equal keys are broken by ``seq`` (admission order). The simulator and the live
gateway drive the very same classes.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod

from driftsched.sim.request import RequestView

from driftsched.ground.config import Config


class NoParams(Config):
    """For policies without parameters."""


class Policy(ABC):
    name: str = "?"

    def __init__(self, params: Config | None = None):
        self.params = params

    @abstractmethod
    def push(self, req: RequestView) -> None:
        """Queue ``req``."""

    @abstractmethod
    def pop(self, now_s: float) -> RequestView | None:
        """Remove and return the request to dispatch at ``now_s``; ``None`` when empty."""

    @abstractmethod
    def __len__(self) -> int: ...


class HeapPolicy(Policy):
    """A policy whose order is a time-invariant key: a binary heap of ``(key, seq, request)``."""

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
