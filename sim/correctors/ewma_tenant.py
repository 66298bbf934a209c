"""``ewma_tenant``: the study's EWMA bias, keyed by (tenant, category), falling back to the
category's bias, then to a global one.

Each finish updates all three levels with ``measured = clip(actual / base, lo, hi)``:
``bias = (1 - alpha) * bias + alpha * measured``. An estimate uses the most specific level that
has seen at least ``min_observations`` finishes (a new tenant borrows its category's bias; a new
category the global one), so one tenant whose outputs drift moves its own bias, not everyone's.
"""

from __future__ import annotations

from driftsched.sim.correctors.base import Corrector
from driftsched.sim.correctors.ewma import EwmaParams
from driftsched.sim.request import Admission
from pydantic import Field


class EwmaTenantParams(EwmaParams):
    min_observations: int = Field(
        5, ge=1, description="finishes a level needs before its bias is used"
    )


class EwmaTenantCorrector(Corrector):
    name = "ewma_tenant"
    Params = EwmaTenantParams

    def __init__(self, params: EwmaTenantParams | None = None):
        super().__init__(params)
        # key -> [bias, finishes seen]; keys: (tenant, category), category, None (global)
        self.levels: dict[object, list] = {}

    def bias(self, req: Admission) -> float:
        p = self.params
        for key in ((req.tenant, req.category), req.category, None):
            level = self.levels.get(key)
            if level is not None and level[1] >= p.min_observations:
                return level[0]
        return p.initial_bias

    def estimate(self, req: Admission) -> int:
        return self.static_estimate(req, self.bias(req))

    def observe(self, req: Admission, actual_tokens: int) -> None:
        p = self.params
        measured = min(p.clip_high, max(p.clip_low, actual_tokens / self.base(req.category)))
        for key in ((req.tenant, req.category), req.category, None):
            level = self.levels.setdefault(key, [p.initial_bias, 0])
            level[0] = (1 - p.alpha) * level[0] + p.alpha * measured
            level[1] += 1

    def state(self) -> dict[str, float]:
        out = {}
        for key, (bias, _) in self.levels.items():
            if key is None:
                out["bias.*"] = bias
            elif isinstance(key, str):
                out[f"bias.{key}"] = bias
        return dict(sorted(out.items()))
