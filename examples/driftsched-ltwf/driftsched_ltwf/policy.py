"""``ltwf``: longest-waiting tenant first — the tenant whose oldest queued request has waited
longest goes next, and within a tenant requests go in arrival order.

A plugin policy, written only against driftsched's public contract
(``driftsched.sim.policies.base``): it subclasses ``Policy``, declares its parameters as a
pydantic model (``Params``), keeps a FIFO per tenant, and declares one property of its own,
which ``driftsched check policy ltwf`` and the ``check_policy`` pytest fixture verify.
"""

from __future__ import annotations

from collections import deque

from driftsched.sim.policies.base import Policy
from driftsched.sim.request import RequestView
from pydantic import Field

from driftsched.ground.config import Config


class LtwfParams(Config):
    max_tenants_scanned: int = Field(
        1_000_000, ge=1, description="scan at most this many tenants per dispatch"
    )


def serves_the_longest_waiting_tenant(events, policy) -> str | None:
    """Each request handed out is the oldest queued one of the tenant whose oldest queued
    request arrived first."""
    for e in events:
        if e.kind == "pop" and e.view is not None and e.queued:
            oldest = min(e.queued, key=lambda v: (v.arrival_s, v.seq))
            if (e.view.arrival_s, e.view.seq) != (oldest.arrival_s, oldest.seq):
                return f"handed out {e.view.request_id} while {oldest.request_id} waited longer"
    return None


class LongestWaitingTenantFirst(Policy):
    name = "ltwf"
    Params = LtwfParams
    properties = (serves_the_longest_waiting_tenant,)

    def __init__(self, params: LtwfParams | None = None):
        super().__init__(params)
        self._queues: dict[str, deque[RequestView]] = {}
        self._count = 0

    def push(self, req: RequestView) -> None:
        self._queues.setdefault(req.tenant, deque()).append(req)
        self._count += 1

    def pop(self, now_s: float) -> RequestView | None:
        if not self._count:
            return None
        heads = [q[0] for q in self._queues.values() if q]
        head = min(heads[: self.params.max_tenants_scanned], key=lambda v: (v.arrival_s, v.seq))
        self._queues[head.tenant].popleft()
        self._count -= 1
        return head

    def __len__(self) -> int:
        return self._count
