"""``qos_adaptive``: the reference study's QoS-aware mechanism — tenant shares adjusted online
from each tenant's measured SLO attainment and drift rate, so a tenant whose requests miss their
targets, or run longer than estimated, is compensated.

Built on ``vtc``: the backlogged tenant with the smallest virtual token counter goes next, and a
tenant's charges are divided by its weight. After every finish (``on_finish``) the tenant's
EWMAs are updated — SLO attainment ``a`` (1 if the request's E2E met its SLO, else 0; the SLO
is the request's ``e2e_slo_s``, else its tier's default as in ``edf``) and drift
``d = (true - estimate) / estimate`` (clipped to [-1, 3]) — and its weight becomes

    base_weight x clip(1 + slo_gain x (target_attainment - a) + drift_gain x max(d, 0),
                       min_factor, max_factor)

so the adjustment is bounded. The study describes the mechanism, not its constants; these
defaults are ours (docs/policies.md).
"""

from __future__ import annotations

from driftsched.sim.policies.edf import EdfParams, request_slo_s
from driftsched.sim.policies.vtc import VtcParams, VtcPolicy
from driftsched.sim.request import Outcome, RequestView
from pydantic import Field, model_validator


class QosAdaptiveParams(VtcParams):
    target_attainment: float = Field(0.9, ge=0, le=1, description="SLO attainment aimed at")
    slo_gain: float = Field(2.0, ge=0, description="weight boost per point of attainment missed")
    drift_gain: float = Field(0.5, ge=0, description="weight boost per unit of positive drift")
    alpha: float = Field(0.1, gt=0, le=1, description="EWMA weight of each finish")
    min_factor: float = Field(0.5, gt=0)
    max_factor: float = Field(3.0, gt=0)
    slo: EdfParams = Field(default_factory=EdfParams, description="SLO defaults, as edf's")

    @model_validator(mode="after")
    def _bounds(self):
        if self.max_factor < self.min_factor:
            raise ValueError("max_factor must be >= min_factor")
        return self


class QosAdaptivePolicy(VtcPolicy):
    name = "qos_adaptive"
    Params = QosAdaptiveParams

    def __init__(self, params: QosAdaptiveParams | None = None):
        super().__init__(params)
        self.attainment: dict[str, float] = {}
        self.drift: dict[str, float] = {}
        self.factor: dict[str, float] = {}

    def weight(self, tenant: str) -> float:
        return super().weight(tenant) * self.factor.get(tenant, 1.0)

    def on_finish(self, view: RequestView, outcome: Outcome) -> None:
        super().on_finish(view, outcome)  # the charge's correction, at the weight it had
        p, t = self.params, view.tenant
        met = 1.0 if outcome.e2e_s <= request_slo_s(view, p.slo) else 0.0
        drift = min(3.0, max(-1.0, outcome.output_tokens / view.estimate_tokens - 1.0))
        a = self.attainment[t] = (1 - p.alpha) * self.attainment.get(t, 1.0) + p.alpha * met
        d = self.drift[t] = (1 - p.alpha) * self.drift.get(t, 0.0) + p.alpha * drift
        raw = 1.0 + p.slo_gain * (p.target_attainment - a) + p.drift_gain * max(d, 0.0)
        self.factor[t] = min(p.max_factor, max(p.min_factor, raw))
