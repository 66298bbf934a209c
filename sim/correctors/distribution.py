"""Length estimates that carry their uncertainty.

A corrector may offer, beside its point estimate, a distribution of the output length
(``distribution(admission)``). The gateway hands it to policies as ``RequestView.estimate_dist``
(``None`` when the corrector has none); every policy that reads only ``estimate_tokens`` works
unchanged. A distribution has ``mean``, ``quantile(q)`` and ``cvar(alpha)`` — the mean of the
worst ``1 - alpha`` share, the tail-aware size a CVaR-penalised SJF orders by (in the spirit of
TIE, "Tail-Aware Inference Scheduling", which ranks by a conditional value at risk of the
predicted length distribution rather than by its mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

_SPECIAL = []  # scipy.special, once imported


def _special():
    """scipy.special, imported on first use (scipy costs ~0.1 s to import, and only the
    correctors that read a distribution need it)."""
    if not _SPECIAL:
        import scipy.special

        _SPECIAL.append(scipy.special)
    return _SPECIAL[0]


def ndtri(q: float) -> float:
    """scipy's inverse normal CDF."""
    return _special().ndtri(q)


def ndtr(x: float) -> float:
    """scipy's normal CDF."""
    return _special().ndtr(x)


@runtime_checkable
class LengthDistribution(Protocol):
    """An output-length distribution in tokens (or the run's length unit)."""

    @property
    def mean(self) -> float: ...

    def quantile(self, q: float) -> float: ...

    def cvar(self, alpha: float) -> float: ...


@dataclass(frozen=True, slots=True)
class LogNormal:
    """``log(length) ~ Normal(mu, sigma)``."""

    mu: float
    sigma: float

    @property
    def mean(self) -> float:
        return math.exp(self.mu + 0.5 * self.sigma * self.sigma)

    @property
    def median(self) -> float:
        return math.exp(self.mu)

    def quantile(self, q: float) -> float:
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile q must be in (0, 1), got {q}")
        return math.exp(self.mu + self.sigma * float(ndtri(q)))

    def cvar(self, alpha: float) -> float:
        """``E[L | L >= quantile(alpha)]`` — closed form for the log-normal:
        ``mean * Phi(sigma - z_alpha) / (1 - alpha)``."""
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"cvar alpha must be in [0, 1), got {alpha}")
        if alpha == 0.0:
            return self.mean
        z = float(ndtri(alpha))
        return self.mean * float(ndtr(self.sigma - z)) / (1.0 - alpha)


@dataclass(frozen=True, slots=True)
class Histogram:
    """A distribution over bins: ``edges`` (ascending, ``len(weights) + 1`` of them) and
    non-negative ``weights``; uniform in log-length within a bin."""

    edges: np.ndarray
    weights: np.ndarray

    def _cdf(self) -> np.ndarray:
        import numpy as np

        c = np.cumsum(self.weights)
        return c / c[-1]

    @property
    def mean(self) -> float:
        import numpy as np

        lo, hi = self.edges[:-1], self.edges[1:]
        # mean of a log-uniform variable on [lo, hi): (hi - lo) / ln(hi / lo)
        centre = (hi - lo) / np.log(hi / lo)
        return float(np.dot(self.weights, centre) / self.weights.sum())

    def quantile(self, q: float) -> float:
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile q must be in (0, 1), got {q}")
        import numpy as np

        cdf = self._cdf()
        i = int(np.searchsorted(cdf, q, side="left"))
        below = cdf[i - 1] if i > 0 else 0.0
        frac = (q - below) / max(cdf[i] - below, 1e-300)
        lo, hi = self.edges[i], self.edges[i + 1]
        return float(lo * (hi / lo) ** frac)

    def cvar(self, alpha: float) -> float:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"cvar alpha must be in [0, 1), got {alpha}")
        import numpy as np

        qs = alpha + (1.0 - alpha) * (np.arange(16) + 0.5) / 16  # midpoint rule over the tail
        return float(np.mean([self.quantile(float(q)) for q in qs]))
