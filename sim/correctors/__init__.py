"""Drift correctors: one registry, :data:`CORRECTORS` (name -> (class, params model)). To add
one: a module with a :class:`Corrector` subclass (and a params model if it has parameters), then
one ``CORRECTORS`` entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.correctors.ewma import EwmaCorrector, EwmaParams
from driftsched.sim.correctors.none import StaticCorrector
from driftsched.sim.correctors.oracle import OracleCorrector

from driftsched.ground.config import build
from driftsched.ground.registry import Registry

#: name -> (class, params model)
CORRECTORS: Registry[tuple[type[Corrector], type[StaticParams]]] = Registry(
    "corrector",
    {
        "none": (StaticCorrector, StaticParams),
        "ewma": (EwmaCorrector, EwmaParams),
        "oracle": (OracleCorrector, StaticParams),
    },
)

#: the one wording every output uses for runs whose estimates read the true lengths
ORACLE_NOTE = "corrector 'oracle' reads the true lengths: an upper bound, not a deployable policy"


def make_corrector(
    name: str, params: dict[str, Any] | None = None, truth: Callable[[int], int] | None = None
) -> Corrector:
    """Build corrector ``name`` with validated ``params``; ``truth`` feeds the oracle only."""
    cls, model = CORRECTORS.resolve(name)
    config = build(model, params or {}, f"corrector {name}")
    if cls.is_oracle:
        if truth is None:
            raise ValueError("the oracle corrector needs a truth function")
        return cls(config, truth=truth)
    return cls(config)


__all__ = ["CORRECTORS", "ORACLE_NOTE", "Corrector", "StaticParams", "make_corrector"]
