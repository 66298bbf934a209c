"""``edf``: earliest deadline first — the request whose deadline ``arrival_s + SLO`` comes
first goes next; ties by arrival.

The SLO is the request's own (the trace's ``e2e_slo_s``, or ``ttft_slo_s`` with
``target = "ttft"``), else the tier's default from ``default_slo_s``, else ``unknown_slo_s``.
The deadline is fixed at admission, so a heap gives the exact order: a later deadline is never
dispatched while an earlier one waits (tested).
"""

from __future__ import annotations

import math
from typing import Literal

from driftsched.sim.policies.base import HeapPolicy
from driftsched.sim.request import RequestView
from pydantic import Field

from driftsched.ground.config import Config


class EdfParams(Config):
    target: Literal["e2e", "ttft"] = Field("e2e", description="which SLO sets the deadline")
    default_slo_s: dict[str, float] = Field(
        default_factory=lambda: {"premium": 10.0, "standard": 30.0, "batch": 120.0},
        description="tier -> SLO in seconds, for requests without one",
    )
    unknown_slo_s: float = Field(60.0, gt=0, description="SLO for other tiers")


def request_slo_s(view: RequestView, params: EdfParams) -> float:
    """The SLO (seconds) ``params`` assign ``view``: its own, else its tier's default."""
    own = view.e2e_slo_s if params.target == "e2e" else view.ttft_slo_s
    if not math.isnan(own):
        return own
    return params.default_slo_s.get(view.tier, params.unknown_slo_s)


class EdfPolicy(HeapPolicy):
    name = "edf"
    Params = EdfParams

    def key(self, req: RequestView) -> float:
        return self.deadline_s(req)

    def deadline_s(self, req: RequestView) -> float:
        return req.arrival_s + request_slo_s(req, self.params)
