"""The drift bench: every length estimator (corrector) under every drift scenario — which one
wins where, and what it does to latency.

For each scenario (:data:`driftsched.traces.scenarios.SCENARIOS`) one base trace is drifted
and simulated under each corrector with two policies that read the estimate: ``sjf`` (needs the
estimates' *order*) and ``vtc`` (charges them as service). From the ``sjf`` run's records, in
arrival order:

- overall ``mae_tokens``, ``rmse_tokens``, ``bias_tokens`` (estimate - true, signed) and
  ``class_agreement`` (estimated job class = true class) — the run summary's own ``est_*``
  figures — and ``kendall_tau`` between estimated and true lengths (scipy's tau-b): what SJF
  needs is the order, not the value;
- the same per arrival window (``windows`` equal slices of the span) for the figures;
- ``rel_bias_before`` / ``rel_bias_after``: ``mean(est - true) / mean(true)`` before and after
  the change point;
- ``recovery_s``: after the change (after the ramp's end for ``ramp``; none for ``stationary``
  and ``oscillation``), the time until the relative bias over the last ``recovery_window``
  requests is back within ``±recovery_tolerance`` (10 points) of its level before the change
  (before the ramp's start) and stays so for ``recovery_window`` more requests: the estimator
  has re-learned what it knew. NaN when it never is —
  a static estimate keeps the error the change gave it;
- the latency effect: E2E mean, P50 and P99 under ``sjf`` and under ``vtc`` (the mean moves
  most: a wrong order costs the requests queued behind a long one).

The base trace (default: Poisson, three tenants one per tier, 4,000 requests at 2.0 req/s: 91%
of what the bundled prior serves at 16 in flight, 2.19 req/s, before any drift) has
``max_tokens`` set to the room the context leaves (``max_total_tokens - prompt``), as a client
that does not cap sends: the generators' default caps (next power of two above the true length)
would hand ``max_tokens`` and ``regression`` the answer. ``--caps trace`` keeps the trace's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from driftsched.sim.correctors import CORRECTORS
from driftsched.sim.profile import DEFAULT_PROFILE
from driftsched.sim.result import ACCOUNTING_KEYS, accounting_line, summed_accounting
from driftsched.sim.simulation import simulate
from driftsched.traces.generators import generate
from driftsched.traces.scenarios import SCENARIOS, apply_scenario
from driftsched.traces.trace import Trace, read_trace
from pydantic import Field, field_validator
from scipy.stats import kendalltau

from driftsched.ground.atomic import write_json, write_text
from driftsched.ground.config import Config

#: the policies whose latency the bench reports (both read the estimate)
BENCH_POLICIES = ("sjf", "vtc")
#: scenarios without one change to recover from
NO_RECOVERY = ("stationary", "oscillation")


class DriftBenchSettings(Config):
    """What the bench runs; defaults are docs/correctors.md's study."""

    scenarios: list[str] = Field(default_factory=lambda: list(SCENARIOS))
    correctors: list[str] = Field(default_factory=lambda: list(CORRECTORS))
    base: str = Field(
        "poisson", description="a generator name, or a trace file to drift (.parquet/.csv)"
    )
    requests: int = Field(4000, ge=100)
    rate_per_s: float = Field(2.0, gt=0, description="the base generator's arrival rate")
    seed: int = Field(0, ge=0)
    caps: Literal["room", "trace"] = "room"
    max_total_tokens: int = Field(2048, ge=2)
    profile: str = DEFAULT_PROFILE
    max_concurrency: int = Field(
        16, ge=1, description="in flight per replica: the gateway queue forms"
    )
    oversize: Literal["error", "drop"] = Field(
        "error",
        description="requests longer than the profile's context: refuse, or drop them "
        "(counted in the accounting) — a real trace's base may hold some",
    )
    windows: int = Field(20, ge=2)
    recovery_window: int = Field(100, ge=10)
    recovery_tolerance: float = Field(0.1, gt=0)

    @field_validator("scenarios")
    @classmethod
    def _scenarios(cls, v: list[str]) -> list[str]:
        return [SCENARIOS.check(s) for s in v]

    @field_validator("correctors")
    @classmethod
    def _correctors(cls, v: list[str]) -> list[str]:
        return [CORRECTORS.check(c) for c in v]


def base_trace(s: DriftBenchSettings) -> Trace:
    """The trace every scenario drifts (see the module docstring for ``caps``)."""
    if Path(s.base).suffix in (".parquet", ".csv", ".gz"):
        trace = read_trace(s.base).require_requests()
        if len(trace) > s.requests:
            trace = Trace(trace.frame.iloc[: s.requests].reset_index(drop=True), trace.meta)
    elif s.base == "driftsched-paper":
        trace = generate(s.base, requests=s.requests, seed=s.seed)
    else:
        trace = generate(s.base, requests=s.requests, seed=s.seed, rate_per_s=s.rate_per_s)
    if s.caps == "room":
        frame = trace.frame.copy()
        room = np.maximum(1, s.max_total_tokens - frame["prompt_tokens"].to_numpy(np.int64))
        frame["max_tokens"] = np.maximum(room, frame["output_tokens"].to_numpy(np.int64))
        trace = Trace.from_frame(frame, trace.origin, **trace.meta)
    return trace


def kendall_tau(rec: pd.DataFrame) -> float:
    """Kendall's tau-b between estimated and true lengths (NaN with fewer than two)."""
    if len(rec) < 2:
        return float("nan")
    tau = kendalltau(rec["estimate_tokens"], rec["output_tokens"]).statistic
    return float(tau) if np.isfinite(tau) else float("nan")


def relative_bias(rec: pd.DataFrame) -> float:
    """``mean(estimate - true) / mean(true)`` over ``rec``."""
    return float((rec["estimate_tokens"] - rec["output_tokens"]).mean()) / max(
        float(rec["output_tokens"].mean()), 1.0
    )


def recovery_s(
    rec: pd.DataFrame,
    change_s: float,
    window: int,
    tolerance: float,
    baseline_until_s: float | None = None,
) -> float:
    """Seconds after ``change_s`` until the relative bias over the last ``window`` requests (by
    arrival) is back within ``±tolerance`` of its level before the change (the last
    ``3 * window`` requests before ``baseline_until_s``, default ``change_s``) and stays there
    for ``window`` more requests: the estimator has re-learned what it knew. NaN when it never
    is — a static estimate keeps the new error."""
    before = rec[rec["arrival_s"] < (change_s if baseline_until_s is None else baseline_until_s)]
    after = rec[rec["arrival_s"] >= change_s]
    if len(before) < window or len(after) < window:
        return float("nan")
    level = relative_bias(before.tail(3 * window))
    err = (after["estimate_tokens"] - after["output_tokens"]).to_numpy(dtype=float)
    true = after["output_tokens"].to_numpy(dtype=float)
    kernel = np.ones(window)
    rel = np.convolve(err, kernel, "valid") / np.maximum(np.convolve(true, kernel, "valid"), 1.0)
    inside = (np.abs(rel - level) <= tolerance).astype(np.int64)
    if inside.size < window:
        return float("nan")
    # sustained: the window ends of ``window`` consecutive requests all inside, so a rolling
    # window's noise does not count as a recovery
    held = np.flatnonzero(np.convolve(inside, np.ones(window, dtype=np.int64), "valid") == window)
    if held.size == 0:
        return float("nan")
    return float(after["arrival_s"].iat[held[0] + window - 1] - change_s)


def _change_s(trace: Trace, scenario: str) -> float | None:
    meta = trace.meta["drift_scenario"]
    if scenario in NO_RECOVERY:
        return None
    if scenario == "ramp":
        a = trace.frame["arrival_s"]
        return float(a.min() + meta["params"]["end"] * (a.max() - a.min()))
    return float(meta["change_s"])


def _one(args) -> tuple[dict, pd.DataFrame, str]:
    """One (scenario, corrector): both policies' runs, the metrics row and its windows."""
    s, scenario, corrector, trace = args
    row: dict = {"scenario": scenario, "corrector": corrector}
    windows = None
    note = ""
    for policy in BENCH_POLICIES:
        res = simulate(
            trace,
            policy=policy,
            corrector=corrector,
            profile=s.profile,
            max_concurrency=s.max_concurrency,
            oversize=s.oversize,
        )
        note = res.cost_model_note()
        rec = res.records
        summ = res.summary().iloc[0]
        row[f"{policy}_e2e_p50_s"] = float(summ["e2e_p50_s"])
        row[f"{policy}_e2e_p99_s"] = float(summ["e2e_p99_s"])
        row[f"{policy}_e2e_mean_s"] = float(rec.loc[rec["finished"], "e2e_s"].mean())
        if policy != "sjf":
            continue
        adm = rec[rec["estimate_tokens"] > 0].sort_values("arrival_s", kind="stable")
        # the estimate metrics every summary has (over the requests that reached the gateway)
        row.update({"mae_tokens": float(summ["est_mae_tokens"]),
                    "rmse_tokens": float(summ["est_rmse_tokens"]),
                    "bias_tokens": float(summ["est_bias_tokens"]),
                    "class_agreement": float(summ["class_agreement"]),
                    "kendall_tau": kendall_tau(adm)})  # fmt: skip
        change = _change_s(trace, scenario)
        start = float(trace.meta["drift_scenario"]["change_s"])  # the ramp's start, or = change
        split = change if change is not None else start
        row["rel_bias_before"] = relative_bias(adm[adm["arrival_s"] < split])
        row["rel_bias_after"] = relative_bias(adm[adm["arrival_s"] >= split])
        row["recovery_s"] = (
            recovery_s(adm, change, s.recovery_window, s.recovery_tolerance, start)
            if change is not None
            else float("nan")
        )
        a = adm["arrival_s"].to_numpy()
        edges = np.linspace(a.min(), a.max(), s.windows + 1)
        bucket = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, s.windows - 1)
        err = (adm["estimate_tokens"] - adm["output_tokens"]).to_numpy(dtype=float)
        windows = pd.DataFrame({"window": bucket, "err": err, "true": adm["output_tokens"]})
        windows = windows.groupby("window").agg(
            mae_tokens=("err", lambda e: float(np.abs(e).mean())),
            bias_tokens=("err", "mean"),
            true_mean_tokens=("true", "mean"),
        )
        windows["start_s"] = edges[windows.index.to_numpy()]
        windows = windows.reset_index().assign(scenario=scenario, corrector=corrector)
        row["requests"] = len(rec)
        acc = res.accounting()  # where every request of the sjf run went
        row.update({k: acc[k] for k in ACCOUNTING_KEYS})
    return row, windows, note


@dataclass
class DriftBench:
    """The bench's result: one row per (scenario, corrector), the windows, the cost model."""

    settings: DriftBenchSettings
    table: pd.DataFrame
    windows: pd.DataFrame
    note: str
    change_s: dict[str, float | None] = field(default_factory=dict)

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "drift_bench.csv", out / "drift_bench_windows.csv", out / "drift_bench.json"]
        write_text(paths[0], self.table.to_csv(index=False, float_format="%.6g"))
        write_text(paths[1], self.windows.to_csv(index=False, float_format="%.6g"))
        write_json(
            paths[2],
            {
                "cost_model": self.note,
                "settings": self.settings.model_dump(mode="json"),
                "change_s": self.change_s,
                "rows": self.table.to_dict(orient="records"),
            },
        )
        return paths

    def accounting_line(self) -> str:
        """Where the requests of every cell's sjf run went (its vtc run replays the same
        trace), in the one line every command prints."""
        return accounting_line(summed_accounting(self.table), runs=len(self.table))

    def winners(self) -> pd.DataFrame:
        """Per scenario, the non-oracle corrector with the lowest MAE, the highest tau, and the
        lowest mean E2E under sjf and under vtc (those within 1% of the best joined by '≈')."""
        t = self.table[self.table["corrector"] != "oracle"]
        out = []

        def best(sub, col, lowest=True):
            """The winner; with every corrector within 1% of it, joined by '≈'."""
            ranked = sub.sort_values(col, ascending=lowest, kind="stable")
            first = ranked[col].iat[0]
            close = ranked[(ranked[col] - first).abs() <= 0.01 * max(abs(first), 1e-9)]
            return " ≈ ".join(close["corrector"])

        for scenario, sub in t.groupby("scenario", sort=False):
            out.append(
                {
                    "scenario": scenario,
                    "lowest_mae": best(sub, "mae_tokens"),
                    "highest_tau": best(sub, "kendall_tau", lowest=False),
                    "fastest_sjf_mean": best(sub, "sjf_e2e_mean_s"),
                    "fastest_vtc_mean": best(sub, "vtc_e2e_mean_s"),
                }
            )
        return pd.DataFrame(out)

    def plot(self, out: Path) -> list[Path]:
        """One figure per scenario: MAE (log) and relative bias per arrival window, every
        corrector but the oracle (zero error); the change point dotted."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for scenario, sub in self.windows.groupby("scenario", sort=False):
            fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharex=True)
            for corrector, w in sub.groupby("corrector", sort=False):
                if corrector == "oracle":  # zero error: nothing to draw on a log scale
                    continue
                rel = w["bias_tokens"] / w["true_mean_tokens"].clip(lower=1.0)
                off = " (off scale)" if (rel.abs() > 1.5).all() else ""
                axes[0].plot(w["start_s"], w["mae_tokens"], label=corrector)
                axes[1].plot(w["start_s"], rel.clip(-1.5, 1.5), label=corrector + off)
            change = self.change_s.get(scenario)
            for ax in axes:
                if change is not None:
                    ax.axvline(change, color="grey", lw=0.8, ls=":")
                ax.set_xlabel("arrival (s)")
            axes[0].set_ylabel("MAE (tokens, log)")
            axes[0].set_yscale("log")
            axes[1].set_ylabel("relative bias: mean(estimate - true) / mean(true)")
            axes[1].set_ylim(-1.0, 1.6)
            axes[1].axhline(0, color="black", lw=0.5)
            axes[0].set_title(f"{scenario}: estimate error over time (policy sjf)")
            axes[1].legend(fontsize=7, ncol=2)
            fig.text(0.01, 0.005, self.note, fontsize=6)
            fig.tight_layout(rect=(0, 0.03, 1, 1))
            path = out / f"drift_{scenario}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
        return paths


def run_drift_bench(
    settings: DriftBenchSettings | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> DriftBench:
    """Run the bench (deterministic: the same settings give the same tables whatever
    ``workers``)."""
    s = settings or DriftBenchSettings()
    base = base_trace(s)
    traces = {sc: apply_scenario(base, sc, seed=s.seed, max_total_tokens=s.max_total_tokens)
              for sc in s.scenarios}  # fmt: skip
    jobs = [(s, sc, c, traces[sc]) for sc in s.scenarios for c in s.correctors]
    results = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for k, r in enumerate(pool.map(_one, jobs)):
                results.append(r)
                if progress:
                    progress(k + 1, len(jobs))
    else:
        for k, job in enumerate(jobs):
            results.append(_one(job))
            if progress:
                progress(k + 1, len(jobs))
    table = pd.DataFrame([r for r, _, _ in results])
    windows = pd.concat([w for _, w, _ in results], ignore_index=True)
    note = results[0][2] if results else ""
    change = {sc: _change_s(traces[sc], sc) for sc in s.scenarios}
    return DriftBench(s, table, windows, note, change)


def markdown(table: pd.DataFrame, columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * len(columns)]
    for _, row in table[columns].iterrows():
        cells = []
        for v in row:
            if isinstance(v, float):
                text = f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"
                cells.append("never" if math.isnan(v) else text)
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
