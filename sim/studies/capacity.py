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
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.result import ACCOUNTING_KEYS
from driftsched.sim.studies.slo import SLO
from driftsched.sim.studies.workload import Workload

from driftsched.ground.config import build
from driftsched.ground.errors import InputError


@dataclass
class Evaluation:
    rate_per_s: float
    replicas: int
    values: dict[str, list[float]]  # SLO label -> the statistic per seed
    upper: dict[str, float]  # SLO label -> upper confidence bound
    meets: bool


#: the search also evaluates the workload at its own rate divided by this (requests hardly
#: overlap there): the SLO's "zero-load" baseline
ZERO_LOAD_DIVISOR = 1024
#: an SLO whose zero-load statistic uses more than this share of its bound is "barely feasible"
BARELY_FEASIBLE_SHARE = 0.8


@dataclass
class CapacityResult:
    policy: str
    rate_per_s: float | None  # highest rate found to meet the SLOs (None: even the lowest fails)
    failing_rate_per_s: float | None  # the lowest rate found to fail (None: never failed)
    evaluations: list[Evaluation] = field(default_factory=list)
    zero_load: Evaluation | None = None  # at the workload's rate / ZERO_LOAD_DIVISOR
    slos: list[SLO] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``infeasible`` (not met even at zero load: the SLO is tighter than requests take
        alone), ``barely feasible`` (met at zero load with less than
        1 - :data:`BARELY_FEASIBLE_SHARE` headroom: the rate found is mostly noise),
        ``unbounded`` (met at every rate tried) or ``feasible``."""
        if self.rate_per_s is None or (self.zero_load is not None and not self.zero_load.meets):
            return "infeasible"
        if self.failing_rate_per_s is None:
            return "unbounded"
        if self.zero_load is not None and any(
            self.zero_load.upper[s.label] > BARELY_FEASIBLE_SHARE * s.max_s for s in self.slos
        ):
            return "barely feasible"
        return "feasible"

    def explain(self) -> str:
        """One line saying what :attr:`verdict` means for this search, in numbers."""
        v, z = self.verdict, self.zero_load
        at_zero = (
            ", ".join(f"{s.label.split('<=')[0]} {z.upper[s.label]:.3g} s" for s in self.slos)
            if z is not None
            else "?"
        )
        if v == "infeasible":
            rate = z.rate_per_s if z is not None else min(e.rate_per_s for e in self.evaluations)
            return (
                f"{self.policy}: SLO infeasible — not met even at near-zero load ({rate:.3g} "
                f"req/s: {at_zero}); loosen the SLO or use faster hardware"
            )
        if v == "barely feasible":
            return (
                f"{self.policy}: SLO barely feasible — at near-zero load already {at_zero} "
                f"(over {BARELY_FEASIBLE_SHARE:.0%} of the bound), so the {self.rate_per_s:.3g} "
                "req/s found rests on little headroom; loosen the SLO for a meaningful capacity"
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
        #: where the requests of every run went, summed (see SimResult.accounting), and runs
        self.accounting: Counter[str] = Counter()

    def evaluate(self, rate_per_s: float, replicas: int = 1) -> Evaluation:
        from driftsched.sim.simulation import simulate
        from scipy import stats

        key = (round(rate_per_s, 12), replicas)
        if key in self._cache:
            return self._cache[key]
        config = build(SimConfig, {**self.sim, "replicas": replicas}, "capacity sim settings")
        values: dict[str, list[float]] = {s.label: [] for s in self.slos}
        for seed in self.seeds:
            result = simulate(self.workload.build(seed, rate_per_s), config)
            records = result.records
            acc = result.accounting()
            self.accounting.update({k: acc[k] for k in ACCOUNTING_KEYS}, runs=1)
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
        policy = self.sim.get("policy", "fifo")
        zero = self.evaluate(start / ZERO_LOAD_DIVISOR, replicas)
        if not zero.meets:  # tighter than requests take alone: no rate to search for
            return CapacityResult(policy, None, zero.rate_per_s, [zero], zero, self.slos)
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
        return CapacityResult(policy, lo, hi, evaluations, zero, self.slos)

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


#: verdicts whose rate is a capacity (``unbounded``: the trace never loaded the GPUs)
PRICED_VERDICTS = ("feasible", "barely feasible")


def priced(res: CapacityResult, mean_output_tokens: float, gpus: int, usd_per_gpu_hour: float):
    """What a capacity costs: output tokens/s at the rate (the rate times the workload's mean
    output tokens: at a rate within the SLOs every request finishes), requests and output
    tokens per GPU-hour, and dollars per million output tokens
    (``usd_per_gpu_hour * gpus / (output_tok_per_s * 3600) * 1e6``). None for a search that
    found no capacity (infeasible, or unbounded: the trace ended before it loaded the GPUs)."""
    rate = res.rate_per_s if res.verdict in PRICED_VERDICTS else None
    tokens = rate * mean_output_tokens if rate else None
    return {
        "gpus": gpus,
        "output_tok_per_s": tokens,
        "requests_per_gpu_hour": rate * 3600 / gpus if rate else None,
        "output_tok_per_gpu_hour": tokens * 3600 / gpus if tokens else None,
        "usd_per_gpu_hour": usd_per_gpu_hour,
        "usd_per_million_output_tokens": (
            usd_per_gpu_hour * gpus / (tokens * 3600) * 1e6 if tokens else None
        ),
    }


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
                ax.axvline(cap, color=line.get_color(), ls=":", lw=1, label=f"{policy} capacity")
        ax.axhline(slo.max_s, color="k", lw=0.8, ls="--", label=f"SLO {slo.max_s:g} s")
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
    #: with a price, each row also says what the capacity costs (:func:`priced`)
    usd_per_gpu_hour: float | None = None
    gpus_per_replica: int = 1

    def __post_init__(self):
        from driftsched.sim.policies import POLICIES

        self.policies = [POLICIES.check(name) for name in self.policies]  # canonical specs
        if not self.resolution > 0:
            raise InputError(f"resolution must be > 0, got {self.resolution}")
        if self.max_replicas < 1:
            raise InputError(f"max_replicas must be >= 1, got {self.max_replicas}")

    def run(self, progress=None) -> CapacityStudyResult:
        """Search every policy; ``progress(policy, done, total)`` is called before each."""
        results, rows = [], []
        totals: Counter[str] = Counter()
        for k, policy in enumerate(self.policies):
            if progress:
                progress(policy, k, len(self.policies))
            search = CapacitySearch(
                self.workload, {**self.sim, "policy": policy}, self.slos, self.seeds,
                self.confidence,
            )  # fmt: skip
            replicas = int(self.sim.get("replicas", 1))
            res = search.max_rate(replicas=replicas, resolution=self.resolution)
            totals.update(search.accounting)
            results.append(res)
            row = {
                "policy": policy,
                "replicas": replicas,
                "max_rate_per_s": res.rate_per_s,
                "verdict": res.verdict,
                "failing_rate_per_s": res.failing_rate_per_s,
                "evaluations": len(res.evaluations),
            }
            if self.usd_per_gpu_hour is not None:
                row |= priced(
                    res, self.workload.mean_output_tokens(self.seeds[0]),
                    self.gpus_per_replica * replicas, self.usd_per_gpu_hour,
                )  # fmt: skip
            if self.target_rate_per_s is not None:
                row["target_rate_per_s"] = self.target_rate_per_s
                row["min_replicas"] = search.min_replicas(self.target_rate_per_s, self.max_replicas)
            rows.append(row)
        if progress:
            progress(None, len(self.policies), len(self.policies))
        return CapacityStudyResult(self, results, rows, totals)


@dataclass
class CapacityStudyResult:
    study: CapacityStudy
    results: list[CapacityResult]
    rows: list[dict]  # one per policy: max_rate_per_s, failing_rate_per_s, evaluations, ...
    accounting: dict[str, int] = field(default_factory=dict)  # summed over every run, + runs

    def accounting_line(self) -> str:
        """Where the requests of all the search's runs went (one line)."""
        from driftsched.sim.result import accounting_line

        return accounting_line(self.accounting, runs=self.accounting.get("runs", 0))

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

        from driftsched.sim.profile import DEFAULT_PROFILE, load_profile
        from driftsched.sim.result import write_csv
        from driftsched.sim.studies import plots

        from driftsched.ground.atomic import write_json

        out, s = Path(out_dir), self.study
        knee = knee_table(self.results, s.slos)
        profile = load_profile(s.sim.get("profile", DEFAULT_PROFILE))
        note = profile.note()
        meta = {
            "cost_model": profile.name,
            "cost_model_kind": profile.kind,
            "cost_model_note": note,
            "verdicts": {r.policy: r.explain() for r in self.results},
            "slos": [slo.label for slo in s.slos],
            "confidence": s.confidence,
            "seeds": s.seeds,
            "workload": s.workload.model_dump(mode="json"),
            "sim": s.sim,
            "results": self.rows,
            "accounting": self.accounting,
        }
        return [
            write_csv(
                self.summary.assign(cost_model=profile.name, cost_model_kind=profile.kind),
                out / "capacity.csv",
            ),
            write_csv(knee, out / "capacity_points.csv"),
            write_json(out / "capacity.json", meta),
            plots.save(
                plot_knee(knee, s.slos, self.results),
                out / "capacity_knee.png",
                f"seeds {','.join(map(str, s.seeds))} · {note}",
            ),
        ]
