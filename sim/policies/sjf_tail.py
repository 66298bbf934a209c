"""``sjf_tail``: tail-aware shortest job first — smallest ``prompt_tokens + CVaR_alpha`` of the
estimated output length, where the corrector offers a length distribution
(``RequestView.estimate_dist``: ``lognormal``, ``quantile``, ``regression``), else the point
estimate (then it is ``sjf``).

In the spirit of TIE ("Tail-Aware Inference Scheduling"), which ranks by a conditional value at
risk of the predicted output-length distribution: two requests with the same mean length, one
of them far more uncertain, are no longer tied — the uncertain one, which risks blocking the
queue behind a long generation, goes later. ``alpha = 0`` orders by the distribution's mean.
"""

from __future__ import annotations

from driftsched.sim.policies.base import HeapPolicy
from driftsched.sim.request import RequestView
from pydantic import Field

from driftsched.ground.config import Config


class SjfTailParams(Config):
    alpha: float = Field(0.9, ge=0, lt=1, description="CVaR level (0: the mean)")


class SjfTailPolicy(HeapPolicy):
    name = "sjf_tail"
    Params = SjfTailParams

    def key(self, req: RequestView) -> float:
        dist = req.estimate_dist
        if dist is None:
            return float(req.budget_tokens)
        return req.prompt_tokens + dist.cvar(self.params.alpha)
