"""The drift-corrector contract and the study's static estimate it builds on.

A corrector turns an :class:`~driftsched.sim.request.Admission` into an output-length estimate
(``estimate``) and learns from each finished request (``observe``). It never sees a true length
except through ``observe`` after the request finished (the oracle is the labelled exception).
``state()`` returns the learnable state for time series (e.g. ``{"bias.summary": 1.3}``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from driftsched.sim.request import Admission
from driftsched.traces.categories import CATEGORY_CAPS
from pydantic import Field

from driftsched.ground.config import Config


class StaticParams(Config):
    """The study's static estimate: ``int(base[category] * safety[tier] * input_factor)``,
    ``input_factor = min(input_cap, 1 + prompt_tokens / input_scale_tokens)``."""

    base_tokens: dict[str, int] = Field(default_factory=lambda: dict(CATEGORY_CAPS))
    unknown_base_tokens: int = Field(64, ge=1, description="base for categories not in the table")
    safety: dict[str, float] = Field(
        default_factory=lambda: {"premium": 1.2, "standard": 1.0, "batch": 0.8}
    )
    unknown_safety: float = Field(1.0, gt=0, description="safety for tiers not in the table")
    input_scale_tokens: float = Field(1000.0, gt=0)
    input_cap: float = Field(1.5, ge=1.0)


class Corrector(ABC):
    """Base class: holds :class:`StaticParams` and computes the static estimate."""

    name: str = "?"
    #: the pydantic model of ``corrector_params`` (built as ``cls(params)``)
    Params: type[StaticParams] = StaticParams
    #: True only for correctors that read true lengths; outputs label them as such.
    is_oracle: bool = False

    def __init__(self, params: StaticParams | None = None):
        self.params = params if params is not None else self.Params()

    def base(self, category: str) -> int:
        return self.params.base_tokens.get(category, self.params.unknown_base_tokens)

    def static_estimate(self, req: Admission, multiplier: float = 1.0) -> int:
        """``int(base * safety * input_factor * multiplier)``, at least 1."""
        p = self.params
        safety = p.safety.get(req.tier, p.unknown_safety)
        input_factor = min(p.input_cap, 1.0 + req.prompt_tokens / p.input_scale_tokens)
        return max(1, int(self.base(req.category) * safety * input_factor * multiplier))

    @abstractmethod
    def estimate(self, req: Admission) -> int:
        """Estimated output tokens (>= 1) for ``req`` at admission."""

    def observe(self, req: Admission, actual_tokens: int) -> None:  # noqa: B027
        """Learn from a finished request's true output length (default: nothing)."""

    def state(self) -> dict[str, float]:
        """Learnable state for time series; empty when there is none."""
        return {}


def not_a_corrector(obj: object) -> str | None:
    """Why ``obj`` (a class or an instance) cannot serve as a corrector; ``None`` if it can."""
    cls = obj if isinstance(obj, type) else type(obj)
    if not callable(getattr(cls, "estimate", None)):
        return f"{cls.__qualname__} is not a corrector: it lacks estimate(admission)"
    return None
