"""``drr``: deficit round robin over tenants (Shreedhar & Varghese, SIGCOMM'95), with a quantum
of tokens: a request costs its prompt plus estimated output tokens.

Backlogged tenants take turns in the order they became backlogged. At the start of its turn a
tenant's deficit grows by ``quantum_tokens x weight``; it is served while its head request costs
no more than its deficit (each service spends the cost), then the turn passes. A tenant whose
queue empties leaves the round with its deficit reset to zero. Under a permanent backlog each
tenant's long-run share of served tokens is its quantum's share (tested within 2 points); the
estimate stands in for the unknown output length, so shares are of *estimated* tokens.
"""

from __future__ import annotations

from collections import deque

from driftsched.sim.policies.base import Policy
from driftsched.sim.policies.queues import TenantQueues
from driftsched.sim.request import RequestView
from pydantic import Field

from driftsched.ground.config import Config


class DrrParams(Config):
    quantum_tokens: int = Field(512, ge=1, description="deficit added per turn (x weight)")
    tenant_weights: dict[str, float] = Field(
        default_factory=dict, description="tenant -> quantum multiplier (others: 1)"
    )


class DrrPolicy(Policy):
    name = "drr"
    Params = DrrParams

    def __init__(self, params: DrrParams | None = None):
        super().__init__(params)
        self.queues = TenantQueues()
        self.deficit: dict[str, float] = {}
        self._round: deque[str] = deque()  # backlogged tenants, the one whose turn it is first
        self._turn_open = False  # the first tenant's quantum for this turn was added

    def push(self, req: RequestView) -> None:
        if self.queues.push(req):
            self._round.append(req.tenant)
            self.deficit[req.tenant] = 0.0

    def pop(self, now_s: float) -> RequestView | None:
        if not self.queues.count:
            return None
        p, round_ = self.params, self._round
        while True:
            tenant = round_[0]
            if not self._turn_open:
                weight = p.tenant_weights.get(tenant, 1.0)
                self.deficit[tenant] += p.quantum_tokens * weight
                self._turn_open = True
            cost = self.queues.head(tenant).budget_tokens
            if cost <= self.deficit[tenant]:
                self.deficit[tenant] -= cost
                view = self.queues.pop(tenant)
                if tenant not in self.queues.backlogged:  # emptied: leaves the round
                    round_.popleft()
                    self.deficit[tenant] = 0.0
                    self._turn_open = False
                return view
            round_.rotate(-1)  # not enough deficit: the turn passes
            self._turn_open = False

    def __len__(self) -> int:
        return self.queues.count
