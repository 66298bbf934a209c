"""Two stateless estimates many gateways use, as baselines for the learned correctors.

- ``max_tokens``: the client's cap (``max_tokens``) is the estimate — what a gateway that
  reserves for the worst case assumes. Requests without a cap (``max_tokens <= 0``) get the
  study's static estimate.
- ``input_ratio``: a fixed multiple of the input length, ``ratio * prompt_tokens`` (1.5 by
  default: what llm-d's inference scheduler assumes today for output length), capped by
  ``max_tokens`` when the client gave one.

Neither learns: ``observe`` does nothing.
"""

from __future__ import annotations

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.request import Admission
from pydantic import Field


class MaxTokensCorrector(Corrector):
    """``max_tokens``: the client's cap is the estimate (the static one without a cap)."""

    name = "max_tokens"

    def estimate(self, req: Admission) -> int:
        return req.max_tokens if req.max_tokens > 0 else self.static_estimate(req)


class InputRatioParams(StaticParams):
    ratio: float = Field(1.5, gt=0, description="estimate = ratio * prompt_tokens")


class InputRatioCorrector(Corrector):
    """``input_ratio``: ``ratio x prompt_tokens`` (1.5, llm-d's assumption), capped by
    ``max_tokens``."""

    name = "input_ratio"
    Params = InputRatioParams

    def estimate(self, req: Admission) -> int:
        value = max(1, round(self.params.ratio * req.prompt_tokens))
        return min(value, req.max_tokens) if req.max_tokens > 0 else value
