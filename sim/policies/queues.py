"""Queues the tenant-aware policies share: a keyed queue, and one per tenant.

:class:`KeyedQueue` is a heap of ``(key, seq, view)`` (``key() -> ()`` makes it FIFO by
admission order). :class:`TenantQueues` keeps one per tenant and knows which tenants are
*backlogged* (have queued requests), in the order they became so — what fair-share policies
(VTC, DRR, bands) pick among.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from driftsched.sim.request import RequestView


def fcfs_key(view: RequestView) -> tuple:
    """First come, first served: every key equal, so admission order (``seq``) decides."""
    return ()


class KeyedQueue:
    """Requests in ``(key(view), seq)`` order."""

    __slots__ = ("_heap", "_key")

    def __init__(self, key: Callable[[RequestView], object] = fcfs_key):
        self._heap: list[tuple[object, int, RequestView]] = []
        self._key = key

    def push(self, view: RequestView) -> None:
        heapq.heappush(self._heap, (self._key(view), view.seq, view))

    def head(self) -> RequestView:
        return self._heap[0][2]

    def pop(self) -> RequestView:
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)


class TenantQueues:
    """One :class:`KeyedQueue` per tenant. ``backlogged`` maps each tenant with queued
    requests to its queue, in the order tenants became backlogged (a dict: insertion order)."""

    def __init__(self, key: Callable[[RequestView], object] = fcfs_key):
        self._key = key
        self.backlogged: dict[str, KeyedQueue] = {}
        self.count = 0

    def push(self, view: RequestView) -> bool:
        """Queue ``view``; True when its tenant was not backlogged before."""
        queue = self.backlogged.get(view.tenant)
        became = queue is None
        if became:
            queue = self.backlogged[view.tenant] = KeyedQueue(self._key)
        queue.push(view)
        self.count += 1
        return became

    def head(self, tenant: str) -> RequestView:
        return self.backlogged[tenant].head()

    def pop(self, tenant: str) -> RequestView:
        """The head of ``tenant``'s queue; the tenant stops being backlogged when it empties."""
        queue = self.backlogged[tenant]
        view = queue.pop()
        if not queue:
            del self.backlogged[tenant]
        self.count -= 1
        return view

    def __len__(self) -> int:
        return self.count
