"""Service-level objectives: ``[tier:]p<NN>_<metric><=<seconds>`` parsed, checked and
evaluated on a run's records (unfinished requests count as infinitely late)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pydantic import Field

from driftsched.ground.config import Config, build
from driftsched.ground.errors import InputError

_SLO = re.compile(
    r"^(?:(?P<tier>[A-Za-z0-9_-]+):)?p(?P<q>\d{1,2}(?:\.\d+)?)_(?P<metric>e2e|ttft|queue_wait|tpot)"
    r"\s*<=\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s)?$"
)


class SLO(Config):
    metric: str = Field(description="e2e | ttft | queue_wait | tpot")
    percentile: float = Field(gt=0, lt=100)
    max_s: float = Field(gt=0)
    tier: str | None = None

    @property
    def label(self) -> str:
        tier = f"{self.tier}:" if self.tier else ""
        return f"{tier}p{self.percentile:g}_{self.metric}<={self.max_s:g}s"

    def value(self, records: pd.DataFrame) -> float:
        """The statistic on one run; unfinished requests count as infinitely late."""
        rec = records if self.tier is None else records[records["tier"] == self.tier]
        if not len(rec):
            raise InputError(f"SLO {self.label}: the workload has no {self.tier!r} requests")
        v = rec[f"{self.metric}_s"].to_numpy(dtype=float).copy()
        v[~rec["finished"].to_numpy()] = np.inf
        return float(np.percentile(v, self.percentile, method="higher"))


def parse_slos(text: str) -> list[SLO]:
    """``"p99_e2e<=10s,p99_ttft<=2s,premium:p99_e2e<=5s"`` -> SLOs (one line error if bad)."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = _SLO.match(part)
        if not m:
            raise InputError(
                f"SLO {part!r}: expected [tier:]p<NN>_<e2e|ttft|queue_wait|tpot><=<seconds>[s|ms],"
                " e.g. p99_e2e<=10s or premium:p50_ttft<=500ms"
            )
        scale = 1e-3 if m["unit"] == "ms" else 1.0
        out.append(
            build(
                SLO,
                {
                    "metric": m["metric"],
                    "percentile": float(m["q"]),
                    "max_s": float(m["value"]) * scale,
                    "tier": m["tier"],
                },
                f"SLO {part!r}",
            )
        )
    if not out:
        raise InputError("no SLO given: e.g. --slo 'p99_e2e<=10s'")
    return out
