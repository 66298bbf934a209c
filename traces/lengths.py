"""Token-length distributions. ``sample`` returns raw (unrounded, undrifted) float lengths.

Rounding, drift multipliers and clipping to ``[1, cap]`` happen in :func:`finalise`, so every
distribution drifts the same way: a drift factor f multiplies each sampled length by f (for a
log-normal this moves the median by f and keeps the shape).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from driftsched.ground.errors import InputError
from driftsched.ground.parse import parse_keyvals


@dataclass(frozen=True)
class LogNormal:
    """Log-normal lengths: ``exp(N(ln median, sigma))`` tokens."""

    median: float
    sigma: float

    def __post_init__(self):
        if self.median <= 0 or self.sigma < 0:
            raise InputError(f"lognormal: need median > 0 and sigma >= 0, got {self}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.lognormal(np.log(self.median), self.sigma, n)

    def mean(self) -> float:
        return float(self.median * np.exp(self.sigma**2 / 2))


@dataclass(frozen=True)
class Empirical:
    """Lengths resampled (with replacement) from observed values, each equally likely."""

    values: tuple[int, ...]

    def __post_init__(self):
        if not self.values or min(self.values) < 1:
            raise InputError("empirical lengths: need at least one value, all >= 1")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.values, dtype=np.float64), n)

    def mean(self) -> float:
        return float(np.mean(self.values))


@dataclass(frozen=True)
class PMF:
    """A discrete distribution ``{tokens: probability}`` (probabilities are renormalised)."""

    tokens: tuple[int, ...]
    probs: tuple[float, ...]

    @classmethod
    def from_mapping(cls, mapping: dict) -> PMF:
        """A PMF from ``{tokens: probability}``: tokens integers, probabilities finite and
        >= 0 (zeros dropped), at least one positive; an :class:`InputError` names the entry."""
        import math

        if not isinstance(mapping, dict):
            raise InputError(f"expected a {{tokens: probability}} mapping, got {mapping!r:.60}")
        items = []
        for key, value in mapping.items():
            try:
                tokens, prob = int(key), float(value)
            except (TypeError, ValueError):
                raise InputError(
                    f"entry {key!r}: {value!r}: expected integer tokens and a probability"
                ) from None
            if not math.isfinite(prob) or prob < 0:
                raise InputError(f"entry {key!r}: probability {value!r}; expected a number >= 0")
            if prob > 0:
                items.append((tokens, prob))
        items.sort()
        if not items:
            raise InputError("length PMF is empty")
        tokens, probs = zip(*items, strict=True)
        total = sum(probs)
        return cls(tuple(max(1, t) for t in tokens), tuple(p / total for p in probs))

    @classmethod
    def parse(cls, text: str) -> PMF:
        """Parse a Python dict literal ``{tokens: prob, ...}`` (ServeGen's format)."""
        try:
            mapping = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise InputError(f"not a {{tokens: probability}} literal: {str(text)[:60]!r}") from None
        return cls.from_mapping(mapping)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.tokens, dtype=np.float64), n, p=np.asarray(self.probs))

    def mean(self) -> float:
        return float(np.dot(self.tokens, self.probs))


LengthDist = LogNormal | Empirical | PMF


def parse_length_spec(text: str) -> LengthDist:
    """Parse ``lognormal:median=200,sigma=0.8`` or ``empirical:FILE[:COLUMN]``.

    ``FILE`` is a trace (Parquet/CSV) and ``COLUMN`` one of its token columns (default
    ``output_tokens``). Raises :class:`InputError` naming what was expected.
    """
    kind, _, rest = text.partition(":")
    if kind == "lognormal":
        params = parse_keyvals(rest, f"length spec {text!r}")
        try:
            return LogNormal(float(params.pop("median")), float(params.pop("sigma")))
        except (KeyError, ValueError):
            raise InputError(
                f"length spec {text!r}: expected lognormal:median=<tokens>,sigma=<float>"
            ) from None
    if kind == "empirical":
        from driftsched.traces.trace import read_trace

        m = re.fullmatch(r"(.+?)(?::(prompt_tokens|output_tokens))?", rest)
        path, column = m.group(1), m.group(2) or "output_tokens"
        if not Path(path).exists():
            raise InputError(f"length spec {text!r}: no such file {path}")
        values = read_trace(path).frame[column].to_numpy()
        return Empirical(tuple(int(v) for v in values))
    raise InputError(f"length spec {text!r}: expected 'lognormal:...' or 'empirical:FILE[:COLUMN]'")


def finalise(raw: np.ndarray, multiplier: np.ndarray | float = 1.0, cap=None) -> np.ndarray:
    """Apply drift, round to whole tokens and clip to ``[1, cap]`` (cap may be an array or None)."""
    tokens = np.rint(np.asarray(raw, dtype=np.float64) * multiplier)
    tokens = np.maximum(tokens, 1)
    if cap is not None:
        tokens = np.minimum(tokens, cap)
    return tokens.astype(np.int64)
