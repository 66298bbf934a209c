"""Capacity search: the highest arrival rate a configuration sustains within its SLOs, and the
fewest replicas that sustain a target rate.

An SLO is ``<stat>_<metric> <= <seconds>`` over a run, optionally for one tier
(``p99_e2e<=10s``, ``p50_ttft<=0.5s``, ``premium:p99_e2e<=5s``). A rate *meets* the SLOs when,
for every SLO, the one-sided upper confidence bound of the statistic over the seeds (Student t,
``confidence`` 0.95 by default; the value itself with one seed) is within the target; requests
left unfinished count as failing. Search: from the workload's own rate, double (or halve) until
the rate brackets the knee, then bisect until the bracket is within ``resolution`` (relative).
The latency of an overloaded queue only grows with the rate, so bisection is sound; the result
states the bracket it found: ``rate_per_s`` meets, ``failing_rate_per_s`` does not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.studies.workload import Workload
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


@dataclass
class Evaluation:
    rate_per_s: float
    replicas: int
    values: dict[str, list[float]]  # SLO label -> the statistic per seed
    upper: dict[str, float]  # SLO label -> upper confidence bound
    meets: bool


#: a rate found only below this share of the workload's own rate is "barely feasible"
BARELY_FEASIBLE_SHARE = 1 / 64


@dataclass
class CapacityResult:
    policy: str
    rate_per_s: float | None  # highest rate found to meet the SLOs (None: even the lowest fails)
    failing_rate_per_s: float | None  # the lowest rate found to fail (None: never failed)
    evaluations: list[Evaluation] = field(default_factory=list)
    base_rate_per_s: float | None = None  # the workload's own rate, where the search starts

    @property
    def verdict(self) -> str:
        """``feasible``; ``infeasible`` (not met even at the lowest rate tried, where requests
        hardly overlap: the SLO is tighter than a request alone takes); ``barely feasible``
        (met only below :data:`BARELY_FEASIBLE_SHARE` of the workload's own rate); or
        ``unbounded`` (met at every rate tried)."""
        if self.rate_per_s is None:
            return "infeasible"
        if self.failing_rate_per_s is None:
            return "unbounded"
        base = self.base_rate_per_s
        if base and self.rate_per_s < base * BARELY_FEASIBLE_SHARE:
            return "barely feasible"
        return "feasible"

    def explain(self) -> str:
        """One line saying what :attr:`verdict` means for this search, in numbers."""
        v = self.verdict
        if v == "infeasible":
            lowest = min(self.evaluations, key=lambda e: e.rate_per_s)
            over = ", ".join(f"{k} = {x:.3g} s" for k, x in lowest.upper.items())
            return (
                f"{self.policy}: SLO infeasible — not met even at {lowest.rate_per_s:.3g} req/s, "
                f"near-zero load (upper bounds there: {over}); loosen the SLO or use faster "
                "hardware"
            )
        if v == "barely feasible":
            return (
                f"{self.policy}: SLO barely feasible — met only below {self.rate_per_s:.3g} req/s,"
                f" under {BARELY_FEASIBLE_SHARE:.1%} of the workload's own rate "
                f"{self.base_rate_per_s:.3g} req/s: the SLO is close to what a request alone takes"
            )
        if v == "unbounded":
            return f"{self.policy}: SLO met at every rate tried (up to {self.rate_per_s:.3g} req/s)"
        return f"{self.policy}: {self.rate_per_s:.3g} req/s"


class CapacitySearch:
    """Evaluates (rate, replicas) points for one policy, caching each, and searches them."""

    def __init__(
        self,
        workload: Workload,
        sim: dict[str, Any],
        slos: list[SLO],
        seeds: list[int],
        confidence: float = 0.95,
    ):
        if not 0.5 <= confidence < 1:
            raise InputError(f"confidence must be in [0.5, 1), got {confidence}")
        self.workload, self.slos, self.seeds = workload, slos, list(seeds)
        self.sim = dict(sim)
        self.confidence = confidence
        build(SimConfig, self.sim, "capacity sim settings")
        self._cache: dict[tuple[float, int], Evaluation] = {}

    def evaluate(self, rate_per_s: float, replicas: int = 1) -> Evaluation:
        from driftsched.sim.simulation import simulate
        from scipy import stats

        key = (round(rate_per_s, 12), replicas)
        if key in self._cache:
            return self._cache[key]
        config = build(SimConfig, {**self.sim, "replicas": replicas}, "capacity sim settings")
        values: dict[str, list[float]] = {s.label: [] for s in self.slos}
        for seed in self.seeds:
            records = simulate(self.workload.build(seed, rate_per_s), config).records
            for slo in self.slos:
                values[slo.label].append(slo.value(records))
        upper = {}
        for slo in self.slos:
            v = np.asarray(values[slo.label])
            if not np.isfinite(v).all():
                upper[slo.label] = math.inf
            elif v.size == 1:
                upper[slo.label] = float(v[0])
            else:
                t = stats.t.ppf(self.confidence, v.size - 1)
                upper[slo.label] = float(v.mean() + t * v.std(ddof=1) / math.sqrt(v.size))
        meets = all(upper[s.label] <= s.max_s for s in self.slos)
        ev = Evaluation(rate_per_s, replicas, values, upper, meets)
        self._cache[key] = ev
        return ev

    def max_rate(
        self, replicas: int = 1, resolution: float = 0.02, max_doublings: int = 20
    ) -> CapacityResult:
        """Bracket then bisect the highest rate that meets the SLOs."""
        start = self.workload.base_rate(self.seeds[0])
        lo = hi = None
        rate = start
        for _ in range(max_doublings):
            if self.evaluate(rate, replicas).meets:
                lo = rate
                if hi is not None:
                    break
                rate *= 2
            else:
                hi = rate
                if lo is not None:
                    break
                rate /= 2
        if lo is not None and hi is not None:
            while (hi - lo) / lo > resolution:
                mid = (lo + hi) / 2
                if self.evaluate(mid, replicas).meets:
                    lo = mid
                else:
                    hi = mid
        evaluations = sorted(
            (e for e in self._cache.values() if e.replicas == replicas),
            key=lambda e: e.rate_per_s,
        )
        policy = self.sim.get("policy", "fifo")
        return CapacityResult(policy, lo, hi, evaluations, start)

    def min_replicas(self, rate_per_s: float, max_replicas: int = 64) -> int | None:
        """Fewest replicas meeting the SLOs at ``rate_per_s`` (doubling, then bisection; more
        replicas never make a work-conserving cluster slower). None if ``max_replicas`` fail."""
        lo, hi = 0, 1
        while not self.evaluate(rate_per_s, hi).meets:
            lo = hi
            if hi >= max_replicas:
                return None
            hi = min(hi * 2, max_replicas)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.evaluate(rate_per_s, mid).meets:
                hi = mid
            else:
                lo = mid
        return hi


def knee_table(results: list[CapacityResult], slos: list[SLO]) -> pd.DataFrame:
    """Every evaluated point of every policy: rate, meets, the SLO statistics' upper bounds."""
    rows = []
    for res in results:
        for ev in res.evaluations:
            row = {"policy": res.policy, "rate_per_s": ev.rate_per_s, "replicas": ev.replicas}
            row["meets"] = ev.meets
            row.update({s.label: ev.upper[s.label] for s in slos})
            rows.append(row)
    return pd.DataFrame(rows)


def plot_knee(knee: pd.DataFrame, slos: list[SLO], results: list[CapacityResult]):
    """Each SLO statistic against the rate per policy, with the target line and the capacity."""
    from driftsched.sim.studies.plots import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, len(slos), figsize=(5.5 * len(slos), 4), squeeze=False)
    for ax, slo in zip(axes[0], slos, strict=True):
        for policy, sub in knee.groupby("policy", sort=False):
            sub = sub.sort_values("rate_per_s")
            y = sub[slo.label].replace(np.inf, np.nan)
            (line,) = ax.plot(sub["rate_per_s"], y, marker="o", ms=3, label=policy)
            cap = next(r.rate_per_s for r in results if r.policy == policy)
            if cap:
                ax.axvline(cap, color=line.get_color(), ls=":", lw=1)
        ax.axhline(slo.max_s, color="k", lw=0.8, ls="--", label="target")
        ax.set(xlabel="offered load (requests/s)", ylabel="seconds", title=slo.label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


@dataclass
class CapacityStudy:
    """The capacity question for several policies: per policy, the highest sustainable rate
    within ``slos`` (and, with ``target_rate_per_s``, the fewest replicas for that rate).

    ``sim`` holds the other simulation settings (each policy overrides ``policy``).
    :meth:`run` searches; the result writes ``capacity.csv`` (one row per policy),
    ``capacity_points.csv`` (every evaluated point), ``capacity.json`` and ``capacity_knee.png``.
    """

    workload: Workload
    policies: list[str]
    slos: list[SLO]
    seeds: list[int]
    sim: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.95
    resolution: float = 0.02
    target_rate_per_s: float | None = None
    max_replicas: int = 64

    def __post_init__(self):
        from driftsched.sim.policies import POLICIES

        for name in self.policies:
            POLICIES.check(name)
        if not self.resolution > 0:
            raise InputError(f"resolution must be > 0, got {self.resolution}")
        if self.max_replicas < 1:
            raise InputError(f"max_replicas must be >= 1, got {self.max_replicas}")

    def run(self, progress=None) -> CapacityStudyResult:
        """Search every policy; ``progress(policy, done, total)`` is called before each."""
        results, rows = [], []
        for k, policy in enumerate(self.policies):
            if progress:
                progress(policy, k, len(self.policies))
            search = CapacitySearch(
                self.workload, {**self.sim, "policy": policy}, self.slos, self.seeds,
                self.confidence,
            )  # fmt: skip
            replicas = int(self.sim.get("replicas", 1))
            res = search.max_rate(replicas=replicas, resolution=self.resolution)
            results.append(res)
            row = {
                "policy": policy,
                "replicas": replicas,
                "max_rate_per_s": res.rate_per_s,
                "verdict": res.verdict,
                "failing_rate_per_s": res.failing_rate_per_s,
                "evaluations": len(res.evaluations),
            }
            if self.target_rate_per_s is not None:
                row["target_rate_per_s"] = self.target_rate_per_s
                row["min_replicas"] = search.min_replicas(self.target_rate_per_s, self.max_replicas)
            rows.append(row)
        if progress:
            progress(None, len(self.policies), len(self.policies))
        return CapacityStudyResult(self, results, rows)


@dataclass
class CapacityStudyResult:
    study: CapacityStudy
    results: list[CapacityResult]
    rows: list[dict]  # one per policy: max_rate_per_s, failing_rate_per_s, evaluations, ...

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    @property
    def title(self) -> str:
        s = self.study
        return (
            f"capacity within {', '.join(slo.label for slo in s.slos)} "
            f"({s.confidence:.0%} one-sided, seeds {s.seeds})"
        )

    def write(self, out_dir) -> list:
        """The four files (see :class:`CapacityStudy`), each written atomically."""
        from pathlib import Path

        from driftsched.sim.result import write_csv
        from driftsched.sim.studies import plots

        from driftsched.ground.atomic import write_json

        out, s = Path(out_dir), self.study
        knee = knee_table(self.results, s.slos)
        meta = {
            "slos": [slo.label for slo in s.slos],
            "confidence": s.confidence,
            "seeds": s.seeds,
            "workload": s.workload.model_dump(mode="json"),
            "sim": s.sim,
            "results": self.rows,
        }
        return [
            write_csv(self.summary, out / "capacity.csv"),
            write_csv(knee, out / "capacity_points.csv"),
            write_json(out / "capacity.json", meta),
            plots.save(plot_knee(knee, s.slos, self.results), out / "capacity_knee.png"),
        ]
