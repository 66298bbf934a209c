"""``lognormal``: an online log-normal fit of output lengths per category, exposing a
distribution (mean, quantiles, CVaR), not just a number.

Per category, exponentially forgotten sufficient statistics of ``x = ln(actual)``: weight
``n``, mean ``m`` and sum of squared deviations ``S`` (a weighted Welford update after every old
weight decayed by ``2 ** (-1 / half_life_observations)``). A prior of ``prior_weight``
pseudo-observations centred on the log of the category's base length (the study's
``base_tokens``) with spread ``prior_sigma`` starts
each category (the normal-inverse-gamma conjugate prior's pseudo-counts), so the first finishes
move it smoothly and a category never seen has its base as the median. Then
``mu = m`` and ``sigma = sqrt(S / n)``; the point estimate is the distribution's ``point``
(``median`` by default — the MAE-optimal point; ``mean`` or ``quantile`` with ``q``).

Policies read the distribution from ``RequestView.estimate_dist`` (``sjf_tail`` orders by its
CVaR).
"""

from __future__ import annotations

import math
from typing import Literal

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.correctors.distribution import LogNormal
from driftsched.sim.request import Admission
from pydantic import Field


class LogNormalParams(StaticParams):
    half_life_observations: float = Field(300.0, gt=0)
    prior_weight: float = Field(5.0, gt=0, description="pseudo-observations of the prior")
    prior_sigma: float = Field(0.8, gt=0, description="prior spread of ln(length)")
    point: Literal["median", "mean", "quantile"] = "median"
    q: float = Field(0.5, gt=0, lt=1, description="the quantile when point = 'quantile'")


class LogNormalCorrector(Corrector):
    name = "lognormal"
    Params = LogNormalParams

    def __init__(self, params: LogNormalParams | None = None):
        super().__init__(params)
        self.decay = 2.0 ** (-1.0 / self.params.half_life_observations)
        self.stats: dict[str, list[float]] = {}  # category -> [n, mean, S]

    def _start(self, req: Admission) -> list[float]:
        p = self.params
        mu0 = math.log(self.base(req.category))
        return [p.prior_weight, mu0, p.prior_weight * p.prior_sigma**2]

    def distribution(self, req: Admission) -> LogNormal:
        s = self.stats.get(req.category) or self._start(req)
        n, m, ss = s
        return LogNormal(m, math.sqrt(max(ss / n, 1e-12)))

    def estimate(self, req: Admission) -> int:
        d = self.distribution(req)
        p = self.params
        if p.point == "median":
            value = d.median
        elif p.point == "mean":
            value = d.mean
        else:
            value = d.quantile(p.q)
        return max(1, round(value))

    def observe(self, req: Admission, actual_tokens: int) -> None:
        s = self.stats.get(req.category)
        if s is None:
            s = self.stats[req.category] = self._start(req)
        x = math.log(max(1, actual_tokens))
        n = s[0] * self.decay
        ss = s[2] * self.decay
        n_new = n + 1.0
        delta = x - s[1]
        mean = s[1] + delta / n_new
        s[0], s[1], s[2] = n_new, mean, ss + delta * (x - mean)

    def state(self) -> dict[str, float]:
        out = {}
        for cat, (n, m, ss) in sorted(self.stats.items()):
            out[f"mu.{cat}"] = m
            out[f"sigma.{cat}"] = math.sqrt(max(ss / n, 1e-12))
        return out
