"""``ewma``: the study's corrector — a per-category EWMA bias on the static estimate.

``estimate = int(base * safety * input_factor * bias[category])``; on each finish
``measured = clip(actual / base, lo, hi)`` and ``bias = (1 - alpha) * bias + alpha * measured``
(alpha 0.1, clip [0.25, 3.0], bias starts at 1.0).
"""

from __future__ import annotations

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.request import Admission
from pydantic import Field, model_validator


class EwmaParams(StaticParams):
    alpha: float = Field(0.1, gt=0, le=1)
    clip_low: float = Field(0.25, gt=0)
    clip_high: float = Field(3.0, gt=0)
    initial_bias: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _clip_ordered(self):
        if self.clip_high < self.clip_low:
            raise ValueError("clip_high must be >= clip_low")
        return self


class EwmaCorrector(Corrector):
    name = "ewma"
    Params = EwmaParams

    def __init__(self, params: EwmaParams | None = None):
        super().__init__(params)
        self.bias: dict[str, float] = {}

    def estimate(self, req: Admission) -> int:
        return self.static_estimate(req, self.bias.get(req.category, self.params.initial_bias))

    def observe(self, req: Admission, actual_tokens: int) -> None:
        p = self.params
        measured = min(p.clip_high, max(p.clip_low, actual_tokens / self.base(req.category)))
        old = self.bias.get(req.category, p.initial_bias)
        self.bias[req.category] = (1 - p.alpha) * old + p.alpha * measured

    def state(self) -> dict[str, float]:
        return {f"bias.{cat}": value for cat, value in sorted(self.bias.items())}
