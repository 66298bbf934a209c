"""``quantile``: an online per-category quantile of true output lengths; the estimate is the
``q``-quantile (``q > 0.5`` gives conservative estimates, for SJF or admission control).

Streaming with bounded memory and forgetting: each category keeps an exponentially decayed
histogram over log-spaced bins (``bins_per_octave`` per doubling, from 1 to ``max_tokens_bin``
tokens: 16 x 8 = 128 floats per category by default). Each finish adds weight 1 to its bin after
every weight decayed by ``2 ** (-1 / half_life_observations)`` — done lazily, by growing the
increment instead and renormalising when it gets large, so an observation costs O(1) and a
quantile O(bins). Within a bin the length is taken as log-uniform. Until a category has
``min_observations`` finishes the static estimate (the study's, as ``none``) is used.

A fixed-bin histogram rather than P² or a t-digest: it forgets (P² does not; drift is the point
here), its memory is fixed and its result is exactly reproducible. Its resolution is the bin
width, 2**(1/8) ≈ 9% of the length by default — finer than the spread of any length
distribution in the bundled traces.
"""

from __future__ import annotations

import math

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.correctors.distribution import Histogram
from driftsched.sim.request import Admission
from pydantic import Field


class QuantileParams(StaticParams):
    q: float = Field(0.5, gt=0, lt=1, description="the quantile used as the estimate")
    half_life_observations: float = Field(
        500.0, gt=0, description="finishes after which an observation's weight has halved"
    )
    bins_per_octave: int = Field(8, ge=1, le=64)
    max_tokens_bin: int = Field(65536, ge=2, description="upper edge of the last bin")
    min_observations: int = Field(10, ge=1)


class _Decayed:
    """One category's decayed histogram (lazy decay: increments grow by ``1 / decay``)."""

    __slots__ = ("weights", "increment", "count")

    def __init__(self, bins: int):
        import numpy as np

        self.weights = np.zeros(bins)
        self.increment = 1.0
        self.count = 0

    def add(self, b: int, growth: float) -> None:
        self.increment *= growth
        self.weights[b] += self.increment
        self.count += 1
        if self.increment > 1e100:  # renormalise before floats overflow
            self.weights /= self.increment
            self.increment = 1.0


class QuantileCorrector(Corrector):
    name = "quantile"
    Params = QuantileParams

    def __init__(self, params: QuantileParams | None = None):
        import numpy as np

        super().__init__(params)
        p = self.params
        octaves = math.log2(p.max_tokens_bin)
        self.nbins = max(1, math.ceil(octaves * p.bins_per_octave))
        self.edges = np.exp2(np.arange(self.nbins + 1) / p.bins_per_octave)
        self.edges[-1] = max(self.edges[-1], p.max_tokens_bin)
        self.growth = 2.0 ** (1.0 / p.half_life_observations)
        self.hist: dict[str, _Decayed] = {}
        self._cache: dict[str, int] = {}  # category -> current estimate (dropped on observe)

    def _bin(self, tokens: int) -> int:
        b = int(math.log2(max(1, tokens)) * self.params.bins_per_octave)
        return min(b, self.nbins - 1)

    def distribution(self, req: Admission) -> Histogram | None:
        h = self.hist.get(req.category)
        if h is None or h.count < self.params.min_observations:
            return None
        return Histogram(self.edges, h.weights.copy())

    def estimate(self, req: Admission) -> int:
        cached = self._cache.get(req.category)
        if cached is not None:
            return cached
        h = self.hist.get(req.category)
        if h is None or h.count < self.params.min_observations:
            return self.static_estimate(req)
        value = max(1, round(Histogram(self.edges, h.weights).quantile(self.params.q)))
        self._cache[req.category] = value
        return value

    def observe(self, req: Admission, actual_tokens: int) -> None:
        h = self.hist.get(req.category)
        if h is None:
            h = self.hist[req.category] = _Decayed(self.nbins)
        h.add(self._bin(actual_tokens), self.growth)
        self._cache.pop(req.category, None)

    def state(self) -> dict[str, float]:
        out = {}
        for cat, h in sorted(self.hist.items()):
            if h.count >= self.params.min_observations:
                out[f"q.{cat}"] = Histogram(self.edges, h.weights).quantile(self.params.q)
        return out
