"""Arrival processes: inter-arrival gaps in seconds, and arrival times from gaps.

A renewal process with mean rate ``rate_per_s`` and coefficient of variation ``cv`` of its gaps:
``cv = 1`` is Poisson, ``cv > 1`` bursty, ``cv < 1`` regular. Gamma gaps have shape ``1/cv²``;
Weibull gaps have the shape whose CV equals ``cv``. Both are scaled so the mean gap is
``1/rate_per_s``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from driftsched.ground.errors import InputError


def _check(rate_per_s: float, cv: float = 1.0) -> None:
    if not rate_per_s > 0:
        raise InputError(f"arrival rate must be > 0 requests/s, got {rate_per_s}")
    if not cv > 0:
        raise InputError(f"inter-arrival CV must be > 0, got {cv}")


def poisson_gaps(rng: np.random.Generator, n: int, rate_per_s: float) -> np.ndarray:
    """Exponential gaps (a Poisson process)."""
    _check(rate_per_s)
    return rng.exponential(1.0 / rate_per_s, n)


def gamma_gaps(rng: np.random.Generator, n: int, rate_per_s: float, cv: float) -> np.ndarray:
    """Gamma gaps with mean ``1/rate_per_s`` and coefficient of variation ``cv``."""
    _check(rate_per_s, cv)
    shape = 1.0 / cv**2
    return rng.gamma(shape, 1.0 / (rate_per_s * shape), n)


@lru_cache(maxsize=4096)
def weibull_shape_for_cv(cv: float) -> float:
    """The Weibull shape k whose coefficient of variation is ``cv`` (CV depends on k alone)."""
    from scipy.optimize import brentq  # only Weibull arrivals need it: keep imports light

    def log_cv2_plus_1(k: float) -> float:
        return math.lgamma(1 + 2 / k) - 2 * math.lgamma(1 + 1 / k)

    target = np.log(cv**2 + 1)
    return float(brentq(lambda k: log_cv2_plus_1(k) - target, 0.02, 200.0))


def weibull_gaps(rng: np.random.Generator, n: int, rate_per_s: float, cv: float) -> np.ndarray:
    """Weibull gaps with mean ``1/rate_per_s`` and coefficient of variation ``cv``."""
    _check(rate_per_s, cv)
    k = weibull_shape_for_cv(round(float(np.clip(cv, 0.05, 40.0)), 4))
    scale = 1.0 / (rate_per_s * math.exp(math.lgamma(1 + 1 / k)))
    return scale * rng.weibull(k, n)


def arrivals_from_gaps(gaps: np.ndarray, start_s: float = 0.0) -> np.ndarray:
    """Arrival times: the first request at ``start_s``, each next one a gap later."""
    out = np.empty(len(gaps), dtype=np.float64)
    if len(gaps):
        out[0] = start_s
        np.cumsum(gaps[:-1], out=out[1:])
        out[1:] += start_s
    return out
