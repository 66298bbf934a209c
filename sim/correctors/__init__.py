"""Drift correctors: one registry, :data:`CORRECTORS` (name -> corrector class). To add a
built-in: a module with a :class:`Corrector` subclass (its ``Params`` model if it has
parameters), then one ``CORRECTORS`` entry. A user's corrector comes in by the same door: an
entry point in the group ``driftsched.correctors``, or ``module:Class`` / ``file.py:Class``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driftsched.sim.correctors.base import Corrector, StaticParams, not_a_corrector
from driftsched.sim.correctors.distribution import Histogram, LengthDistribution, LogNormal
from driftsched.sim.correctors.ewma import EwmaCorrector
from driftsched.sim.correctors.ewma_tenant import EwmaTenantCorrector
from driftsched.sim.correctors.heuristics import InputRatioCorrector, MaxTokensCorrector
from driftsched.sim.correctors.lognormal import LogNormalCorrector
from driftsched.sim.correctors.none import StaticCorrector
from driftsched.sim.correctors.oracle import OracleCorrector
from driftsched.sim.correctors.quantile import QuantileCorrector
from driftsched.sim.correctors.regression import RegressionCorrector
from driftsched.sim.policies.base import NoParams

from driftsched.ground.config import build
from driftsched.ground.registry import Registry

#: name -> corrector class (its ``Params`` model validates ``corrector_params``)
CORRECTORS: Registry[type[Corrector]] = Registry(
    "corrector",
    {
        "none": StaticCorrector,
        "ewma": EwmaCorrector,
        "oracle": OracleCorrector,
        # the field's estimators (docs/correctors.md says where each comes from)
        "ewma_tenant": EwmaTenantCorrector,
        "quantile": QuantileCorrector,
        "lognormal": LogNormalCorrector,
        "regression": RegressionCorrector,
        "max_tokens": MaxTokensCorrector,
        "input_ratio": InputRatioCorrector,
    },
    group="driftsched.correctors",
    accepts=not_a_corrector,
)

#: the one wording every output uses for runs whose estimates read the true lengths
ORACLE_NOTE = "corrector 'oracle' reads the true lengths: an upper bound, not a deployable policy"


def make_corrector(
    spec, params: dict[str, Any] | None = None, truth: Callable[[int], int] | None = None
) -> Corrector:
    """A corrector from a spec (registered name, entry point, ``module:Class``,
    ``file.py:Class``), a class, or an instance (used as is; ``params`` must be empty), with
    ``params`` validated by its ``Params`` model; ``truth`` feeds the oracle only."""
    if isinstance(spec, str):
        cls, what = CORRECTORS.resolve(spec), spec
    else:
        why = not_a_corrector(spec)
        if why:
            raise TypeError(why)
        if not isinstance(spec, type):
            if params:
                raise ValueError("corrector_params cannot be applied to a corrector instance")
            return spec
        cls, what = spec, spec.__qualname__
    if not isinstance(cls, type):
        return cls  # a spec that names an instance
    model = getattr(cls, "Params", None)
    if model is None:  # a duck-typed class without a Params model: built with no arguments
        build(NoParams, params or {}, f"corrector {what}")
        return cls()
    config = build(model, params or {}, f"corrector {what}")
    if getattr(cls, "is_oracle", False):
        if truth is None:
            raise ValueError("the oracle corrector needs a truth function")
        return cls(config, truth=truth)
    return cls(config)


def is_oracle(spec) -> bool:
    """Whether the corrector ``spec`` (a spec, class or instance) reads the true lengths."""
    obj = CORRECTORS.resolve(spec) if isinstance(spec, str) else spec
    return bool(getattr(obj, "is_oracle", False))


__all__ = [
    "CORRECTORS",
    "ORACLE_NOTE",
    "Corrector",
    "Histogram",
    "LengthDistribution",
    "LogNormal",
    "StaticParams",
    "is_oracle",
    "make_corrector",
]
