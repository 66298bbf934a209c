"""Drift knobs: make the true output lengths shift over time so correctors have something to chase.

A :class:`Drift` is a multiplier on sampled output lengths, applied to the requests it selects
(optionally one tenant and/or one category). Two shapes:

- ``step``: factor 1 before ``at``, ``factor`` from ``at`` on.
- ``ramp``: 1 before ``start``, rising linearly to ``factor`` at ``end``, ``factor`` after.

Positions are in seconds of arrival (``unit=s``) or in request index (``unit=request``). Several
drifts multiply. CLI form: ``step:at=1000,unit=request,factor=1.5,category=summary`` or
``ramp:start=0,end=600,factor=2,tenant=tenant-batch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from driftsched.ground.errors import InputError
from driftsched.ground.parse import parse_keyvals


@dataclass(frozen=True)
class Drift:
    """One drift. ``start`` is the step position for ``step``; ``end`` is used by ``ramp`` only."""

    kind: Literal["step", "ramp"]
    factor: float
    start: float
    end: float | None = None
    unit: Literal["s", "request"] = "s"
    tenant: str | None = None
    category: str | None = None

    def __post_init__(self):
        if self.factor <= 0:
            raise InputError(f"drift: factor must be > 0, got {self.factor}")
        if self.kind == "ramp" and (self.end is None or self.end <= self.start):
            raise InputError(f"drift ramp: need end > start, got start={self.start} end={self.end}")

    @classmethod
    def parse(cls, text: str) -> Drift:
        """Parse the CLI form (see module docstring); raises :class:`InputError`."""
        kind, _, rest = text.partition(":")
        if kind not in ("step", "ramp"):
            raise InputError(f"drift {text!r}: expected it to start with 'step:' or 'ramp:'")
        params = parse_keyvals(rest, f"drift {text!r}")
        allowed = {
            "step": {"at", "factor", "unit", "tenant", "category"},
            "ramp": {"start", "end", "factor", "unit", "tenant", "category"},
        }[kind]
        unknown = set(params) - allowed
        if unknown:
            raise InputError(
                f"drift {text!r}: unknown key {sorted(unknown)[0]!r}; allowed: {sorted(allowed)}"
            )
        try:
            start = float(params["at"] if kind == "step" else params["start"])
            end = float(params["end"]) if kind == "ramp" else None
            factor = float(params["factor"])
        except (KeyError, ValueError):
            need = "at, factor" if kind == "step" else "start, end, factor"
            raise InputError(f"drift {text!r}: expected numeric {need}") from None
        unit = params.get("unit", "s")
        if unit not in ("s", "request"):
            raise InputError(f"drift {text!r}: unit must be 's' or 'request', got {unit!r}")
        return cls(kind, factor, start, end, unit, params.get("tenant"), params.get("category"))

    def multiplier(self, arrival_s, tenant, category) -> np.ndarray:
        """Per-request multiplier for arrays of arrival seconds, tenants and categories."""
        arrival_s = np.asarray(arrival_s, dtype=np.float64)
        position = arrival_s if self.unit == "s" else np.arange(arrival_s.size, dtype=np.float64)
        if self.kind == "step":
            m = np.where(position >= self.start, self.factor, 1.0)
        else:
            frac = np.clip((position - self.start) / (self.end - self.start), 0.0, 1.0)
            m = 1.0 + frac * (self.factor - 1.0)
        selected = np.ones(arrival_s.size, dtype=bool)
        if self.tenant is not None:
            selected &= np.asarray(tenant) == self.tenant
        if self.category is not None:
            selected &= np.asarray(category) == self.category
        return np.where(selected, m, 1.0)


def combined_multiplier(drifts, arrival_s, tenant, category) -> np.ndarray:
    """Product of every drift's multiplier (all ones when ``drifts`` is empty)."""
    out = np.ones(len(arrival_s), dtype=np.float64)
    for d in drifts:
        out *= d.multiplier(arrival_s, tenant, category)
    return out
