"""``none``: the reference study's static estimate, with no learning."""

from __future__ import annotations

from driftsched.sim.correctors.base import Corrector
from driftsched.sim.request import Admission


class StaticCorrector(Corrector):
    """``base[category] * safety[tier] * input_factor``; ``observe`` does nothing."""

    name = "none"

    def estimate(self, req: Admission) -> int:
        return self.static_estimate(req)
