"""Drift correctors: one registry table. To add one: a module with a :class:`Corrector` subclass
(and a params model if it has parameters), then one line in ``CORRECTORS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.correctors.ewma import EwmaCorrector, EwmaParams
from driftsched.sim.correctors.none import StaticCorrector
from driftsched.sim.correctors.oracle import OracleCorrector

from driftsched.ground.config import build
from driftsched.ground.errors import UnknownNameError

#: name -> (class, params model)
CORRECTORS: dict[str, tuple[type[Corrector], type[StaticParams]]] = {
    "none": (StaticCorrector, StaticParams),
    "ewma": (EwmaCorrector, EwmaParams),
    "oracle": (OracleCorrector, StaticParams),
}


def make_corrector(
    name: str, params: dict[str, Any] | None = None, truth: Callable[[int], int] | None = None
) -> Corrector:
    """Build corrector ``name`` with validated ``params``; ``truth`` feeds the oracle only."""
    if name not in CORRECTORS:
        raise UnknownNameError("corrector", name, list(CORRECTORS))
    cls, model = CORRECTORS[name]
    config = build(model, params or {}, f"corrector {name}")
    if cls.is_oracle:
        if truth is None:
            raise ValueError("the oracle corrector needs a truth function")
        return cls(config, truth=truth)
    return cls(config)


__all__ = ["CORRECTORS", "Corrector", "StaticParams", "make_corrector"]
