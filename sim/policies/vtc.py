"""``vtc``: Virtual Token Counter — the backlogged tenant that has been served the fewest
weighted tokens goes next (Sheng et al., "Fairness in Serving Large Language Models", OSDI'24).

Each tenant has a counter of the service it received: ``input_weight * prompt_tokens +
output_weight * output_tokens`` divided by the tenant's weight (the paper's w_p = 1, w_q = 2).
``pop`` picks the backlogged tenant with the smallest counter (ties: the earlier head request)
and serves its oldest request. When a tenant becomes backlogged its counter is *lifted* to at
least the smallest counter among the tenants already backlogged (or, when none is, to the
counter of the tenant served last), so time spent idle banks no credit.

How this differs from the paper: the paper's VTC sits inside the engine's scheduler and charges
output tokens as they are generated. Here it is a gateway policy in front of the engine: it
charges the prompt and the *estimated* output at dispatch, and corrects the charge with the true
length when the request finishes (``on_finish``). Between dispatch and finish a tenant's counter
is off by its in-flight requests' estimate errors; with exact estimates (the oracle) the two
charge the same totals. Bound (tested): while two tenants stay backlogged, their counters as
charged at dispatch differ by at most the largest single charge, plus the corrections of
requests in flight.
"""

from __future__ import annotations

from driftsched.sim.policies.base import Policy
from driftsched.sim.policies.queues import TenantQueues
from driftsched.sim.request import Outcome, RequestView
from pydantic import Field

from driftsched.ground.config import Config


class VtcParams(Config):
    input_weight: float = Field(1.0, ge=0, description="counter charge per prompt token")
    output_weight: float = Field(2.0, ge=0, description="counter charge per output token")
    tenant_weights: dict[str, float] = Field(
        default_factory=dict, description="tenant -> share weight (others: default_weight)"
    )
    default_weight: float = Field(1.0, gt=0)


class VtcPolicy(Policy):
    name = "vtc"
    Params = VtcParams

    def __init__(self, params: VtcParams | None = None):
        super().__init__(params)
        self.queues = TenantQueues()
        self.counters: dict[str, float] = {}
        self._last_served = 0.0  # counter of the tenant served last

    def weight(self, tenant: str) -> float:
        return self.params.tenant_weights.get(tenant, self.params.default_weight)

    def charge(self, view: RequestView) -> float:
        """The counter increment at dispatch: prompt plus estimated output, weighted."""
        p = self.params
        cost = p.input_weight * view.prompt_tokens + p.output_weight * view.estimate_tokens
        return cost / self.weight(view.tenant)

    def push(self, req: RequestView) -> None:
        queues, counters = self.queues, self.counters
        if req.tenant not in queues.backlogged:  # back from idle: lift, so idling banks no credit
            floor = min((counters[t] for t in queues.backlogged), default=self._last_served)
            counters[req.tenant] = max(counters.get(req.tenant, 0.0), floor)
        queues.push(req)

    def pop(self, now_s: float) -> RequestView | None:
        queues = self.queues
        if not queues.count:
            return None
        counters = self.counters
        tenant = min(queues.backlogged, key=lambda t: (counters[t], queues.head(t).seq))
        view = queues.pop(tenant)
        counters[tenant] += self.charge(view)
        self._last_served = counters[tenant]
        return view

    def on_finish(self, view: RequestView, outcome: Outcome) -> None:
        """Correct the charge: the true output length replaces the estimate."""
        error = outcome.output_tokens - view.estimate_tokens
        self.counters[view.tenant] += self.params.output_weight * error / self.weight(view.tenant)

    def __len__(self) -> int:
        return self.queues.count
