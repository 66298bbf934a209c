"""``oracle``: the true output length. An upper bound for comparison only — it reads the truth,
which no real gateway can; every output labels runs that used it."""

from __future__ import annotations

from collections.abc import Callable

from driftsched.sim.correctors.base import Corrector, StaticParams
from driftsched.sim.request import Admission


class OracleCorrector(Corrector):
    name = "oracle"
    is_oracle = True

    def __init__(self, params: StaticParams | None = None, *, truth: Callable[[int], int]):
        super().__init__(params)
        self._truth = truth

    def estimate(self, req: Admission) -> int:
        return int(self._truth(req.index))
