"""``regression``: an online linear model of ``ln(output length)`` on admission features,
refitted as finishes arrive, with exponential forgetting.

Features (all known at admission): a constant, ``ln(1 + prompt_tokens)``,
``ln(1 + max_tokens)``, and one-hot indicators of the category, the tier and the tenant —
hashed (CRC-32, stable across runs and machines) into ``category_buckets``, ``tier_buckets`` and
``tenant_buckets`` slots, so the model's size is fixed however many tenants come.

The fit is exponentially weighted ridge regression: sufficient statistics ``A = lam A + x x'``,
``b = lam b + x y`` per finish, and ``w = (A + ridge I)^-1 (b + ridge w0)`` with a prior ``w0``
(the constant at ``ln(prior_tokens)``) whose weight ``ridge`` is *not* forgotten. That is
recursive least squares with forgetting factor ``lam`` without its covariance wind-up: a
direction no recent request excites (a tenant gone quiet) decays to the prior instead of
blowing up. ``w`` is solved lazily, once per estimate after new finishes (a 31 x 31 solve in
numpy, ~20 µs). The residual variance is forgotten at the same rate and, with the prediction,
gives a log-normal distribution (``RequestView.estimate_dist``); the point estimate is its
median.
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.correctors.distribution import LogNormal
from driftsched.sim.request import Admission
from pydantic import Field

if TYPE_CHECKING:
    import numpy as np


class RegressionParams(StaticParams):
    lam: float = Field(0.998, gt=0.9, le=1.0, description="forgetting factor per finish")
    ridge: float = Field(1.0, gt=0, description="weight of the prior (not forgotten)")
    prior_tokens: float = Field(128.0, gt=0, description="the prediction before any finish")
    category_buckets: int = Field(8, ge=1, le=256)
    tier_buckets: int = Field(4, ge=1, le=64)
    tenant_buckets: int = Field(16, ge=1, le=1024)
    min_observations: int = Field(10, ge=0, description="static estimate until this many")


def _bucket(text: str, buckets: int) -> int:
    return zlib.crc32(text.encode()) % buckets


class RegressionCorrector(Corrector):
    name = "regression"
    Params = RegressionParams

    def __init__(self, params: RegressionParams | None = None):
        import numpy as np

        super().__init__(params)
        p = self.params
        self.dim = 3 + p.category_buckets + p.tier_buckets + p.tenant_buckets
        self.w0 = np.zeros(self.dim)
        self.w0[0] = math.log(p.prior_tokens)
        self.A = np.zeros((self.dim, self.dim))
        self.b = np.zeros(self.dim)
        self.w = self.w0.copy()
        self.stale = False
        self.resid_var = 1.0
        self.count = 0
        self._slots: dict[tuple[str, str, str], tuple[int, int, int]] = {}

    def features(self, req: Admission) -> np.ndarray:
        import numpy as np

        key = (req.category, req.tier, req.tenant)
        slots = self._slots.get(key)
        if slots is None:
            p = self.params
            c = 3 + _bucket(req.category, p.category_buckets)
            t = 3 + p.category_buckets + _bucket(req.tier, p.tier_buckets)
            u = 3 + p.category_buckets + p.tier_buckets + _bucket(req.tenant, p.tenant_buckets)
            slots = self._slots[key] = (c, t, u)
        x = np.zeros(self.dim)
        x[0] = 1.0
        x[1] = math.log1p(req.prompt_tokens)
        x[2] = math.log1p(max(0, req.max_tokens))
        for s in slots:
            x[s] = 1.0
        return x

    def weights(self) -> np.ndarray:
        import numpy as np

        if self.stale:
            r = self.params.ridge
            self.w = np.linalg.solve(self.A + r * np.eye(self.dim), self.b + r * self.w0)
            self.stale = False
        return self.w

    def distribution(self, req: Admission) -> LogNormal:
        mu = float(self.weights() @ self.features(req))
        return LogNormal(mu, math.sqrt(self.resid_var))

    def estimate(self, req: Admission) -> int:
        if self.count < self.params.min_observations:
            return self.static_estimate(req)
        return max(1, round(math.exp(float(self.weights() @ self.features(req)))))

    def observe(self, req: Admission, actual_tokens: int) -> None:
        import numpy as np

        lam = self.params.lam
        x = self.features(req)
        y = math.log(max(1, actual_tokens))
        err = y - float(self.w @ x)  # the last solved model's error (no extra solve)
        self.A *= lam
        self.A += np.outer(x, x)
        self.b *= lam
        self.b += y * x
        self.stale = True
        self.resid_var = lam * self.resid_var + (1 - lam) * err * err
        self.count += 1

    def state(self) -> dict[str, float]:
        w = self.weights()
        return {"w.log_prompt": float(w[1]), "resid_sigma": math.sqrt(self.resid_var)}
