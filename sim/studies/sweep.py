"""Sweeps: a grid of simulations (rate x policy x corrector x mode x replicas x seed), run in
parallel, resumable, summarised with confidence intervals over seeds.

Every grid point is one deterministic simulation whose summary row is written to
``runs/<key>.json`` as soon as it finishes; a rerun of the same spec into the same folder skips
the points already there. Points run on a local process pool (every core by default) or on a
Ray cluster; both call the same :func:`run_point`, so the tables are identical.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.studies.workload import Workload
from pydantic import Field, field_validator, model_validator

from driftsched.ground.atomic import write_json
from driftsched.ground.config import Config, build
from driftsched.ground.errors import InputError
from driftsched.ground.plugins import file_safe

#: metrics aggregated over seeds (mean and a 95% confidence interval)
CI_METRICS = [
    "e2e_p50_s",
    "e2e_p99_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "queue_wait_p99_s",
    "output_tokens_per_s",
    "e2e_slo_attainment",
    "ttft_slo_attainment",
    "e2e_p99_s_premium",
    "e2e_p99_s_standard",
    "e2e_p99_s_batch",
]
POINT_KEYS = ["rate_per_s", "policy", "corrector", "mode", "replicas", "seed"]


class SweepSpec(Config):
    """The grid. Give ``rates_per_s`` (offered requests/s) or ``rate_multipliers`` (times the
    workload's own rate); every list is one axis of the grid."""

    workload: Workload = Field(default_factory=Workload)
    rates_per_s: list[float] | None = None
    rate_multipliers: list[float] | None = None
    policies: list[str] = Field(["fifo"], min_length=1)
    correctors: list[str] = Field(["none"], min_length=1)
    modes: list[Literal["continuous", "microbatch"]] = Field(["continuous"], min_length=1)
    replicas: list[int] = Field([1], min_length=1)
    seeds: list[int] = Field([0], min_length=1)
    sim: dict[str, Any] = Field(default_factory=dict, description="other SimConfig fields")
    slo_e2e_s: float | None = Field(None, gt=0, description="per-request E2E target")
    slo_ttft_s: float | None = Field(None, gt=0, description="per-request TTFT target")

    @field_validator("policies")
    @classmethod
    def _policies(cls, specs: list[str]) -> list[str]:
        """Specs in canonical form (a plugin file's path absolute): every worker resolves them."""
        from driftsched.sim.policies import POLICIES

        return [POLICIES.check(spec) for spec in specs]

    @field_validator("correctors")
    @classmethod
    def _correctors(cls, specs: list[str]) -> list[str]:
        from driftsched.sim.correctors import CORRECTORS

        return [CORRECTORS.check(spec) for spec in specs]

    @model_validator(mode="after")
    def _check(self):
        if self.rates_per_s and self.rate_multipliers:
            raise ValueError("give rates_per_s or rate_multipliers, not both")
        for name in ("rates_per_s", "rate_multipliers"):
            if any(v <= 0 for v in getattr(self, name) or []):
                raise ValueError(f"{name} must all be > 0")
        if self.workload.trace is not None and len(self.seeds) > 1:
            raise ValueError(
                "a trace file is the same for every seed: give one seed (or a generator)"
            )
        if min(self.replicas) < 1:
            raise ValueError("replicas must be >= 1")
        build(SimConfig, self.sim, "sweep sim settings")
        return self

    def rates(self) -> list[float]:
        """Offered rates (requests/s) of the grid, from ``rates_per_s`` or the multipliers
        applied to the first seed's workload rate."""
        if self.rates_per_s:
            return list(self.rates_per_s)
        base = self.workload.base_rate(self.seeds[0])
        return [round(base * m, 9) for m in (self.rate_multipliers or [1.0])]

    def preflight(self) -> None:
        """Build every seed's workload and check it against the engine (requests, lengths
        within ``max_model_len``), so a sweep that cannot run fails before it writes anything."""
        from driftsched.sim.tracecheck import check_trace

        config = build(SimConfig, self.sim, "sweep sim settings")
        for seed in self.seeds:
            check_trace(self.workload.base(seed), config)

    def points(self) -> list[dict]:
        grid = product(
            self.rates(), self.policies, self.correctors, self.modes, self.replicas, self.seeds
        )
        return [dict(zip(POINT_KEYS, values, strict=True)) for values in grid]


def point_key(point: dict) -> str:
    """The grid point's file name stem (a plugin spec's path and colon made file-safe)."""
    return (
        f"r{point['rate_per_s']:g}-{file_safe(point['policy'])}-{file_safe(point['corrector'])}"
        f"-{point['mode']}-x{point['replicas']}-s{point['seed']}"
    )


def run_point(spec_json: str, point: dict) -> dict:
    """Simulate one grid point and return its summary row (labels, metrics, SLO attainment,
    per-tier P99 E2E). A plain function of plain data, for process pools and Ray."""
    from driftsched.sim.simulation import simulate

    spec = SweepSpec.model_validate_json(spec_json)
    trace = spec.workload.build(point["seed"], point["rate_per_s"])
    config = build(
        SimConfig,
        {
            **spec.sim,
            "policy": point["policy"],
            "corrector": point["corrector"],
            "mode": point["mode"],
            "replicas": point["replicas"],
        },
        "sweep point",
    )
    result = simulate(trace, config)
    rec = result.records
    row = {**point, **result.summary().iloc[0].to_dict()}
    acc = result.accounting()
    row.update(result.cost_model_columns())
    row.update({k: acc[k] for k in ("trace_requests", "unfinished", "dropped")})
    if "prefix_cache" in result.meta:  # only with prefix caching on
        row["prefix_cache_hit_rate"] = result.meta["prefix_cache"]["hit_rate"]
    done = rec[rec["finished"]]
    for slo, target in (("e2e", spec.slo_e2e_s), ("ttft", spec.slo_ttft_s)):
        if target is not None:
            met = rec["finished"] & (rec[f"{slo}_s"] <= target)
            row[f"{slo}_slo_attainment"] = float(met.mean())
    for tier, sub in done.groupby("tier", observed=True):
        row[f"e2e_p99_s_{tier}"] = float(np.percentile(sub["e2e_s"], 99))
    row["key"] = point_key(point)
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


@dataclass
class SweepResult:
    spec: SweepSpec
    runs: pd.DataFrame  # one row per grid point, in grid order

    def table(self) -> pd.DataFrame:
        """One row per configuration (all axes but the seed): the mean of each metric over
        seeds and a two-sided 95% t-interval (``<metric>_ci_low`` / ``_ci_high``)."""
        return aggregate(self.runs)

    def accounting_line(self) -> str:
        """Where every request of every run went, summed over the grid (one line)."""
        from driftsched.sim.result import accounting_line, summed_accounting

        return accounting_line(summed_accounting(self.runs), runs=len(self.runs))

    def write(self, out_dir: str | Path) -> list[Path]:
        from driftsched.sim.profile import DEFAULT_PROFILE, load_profile
        from driftsched.sim.result import write_csv, write_parquet
        from driftsched.sim.studies import plots

        out = Path(out_dir)
        table = self.table()
        note = load_profile(self.spec.sim.get("profile", DEFAULT_PROFILE)).note()
        seeds = f"mean over seeds {','.join(map(str, self.spec.seeds))}"
        written = [
            write_parquet(self.runs, out / "sweep_runs.parquet"),
            write_csv(self.runs, out / "sweep_runs.csv"),
            write_parquet(table, out / "sweep.parquet"),
            write_csv(table, out / "sweep.csv"),
            plots.save(plots.sweep_latency(table), out / "sweep_latency.png", f"{seeds} · {note}"),
            plots.save(plots.sweep_tiers(table), out / "sweep_tiers.png", f"{seeds} · {note}"),
        ]
        if any(f"{m}_slo_attainment" in table.columns for m in ("e2e", "ttft")):
            written.append(
                plots.save(plots.sweep_slo(table), out / "sweep_slo.png", f"{seeds} · {note}")
            )
        return written


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    from scipy import stats

    keys = [k for k in POINT_KEYS if k != "seed"]
    rows = []
    for values, group in runs.groupby(keys, sort=False):
        row = dict(zip(keys, values, strict=True))
        row["seeds"] = len(group)
        for label in ("cost_model", "cost_model_kind"):
            if label in group.columns:
                row[label] = group[label].iloc[0]
        for count in ("dropped", "unfinished"):
            if count in group.columns:
                row[count] = int(group[count].sum())
        for metric in CI_METRICS:
            if metric not in group.columns:
                continue
            v = group[metric].dropna().to_numpy(dtype=float)
            if not v.size:
                continue
            mean = float(v.mean())
            half = (
                float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
                if v.size > 1
                else 0.0
            )
            row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = (
                mean, mean - half, mean + half
            )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    workers: int | None = None,
    ray_address: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> SweepResult:
    """Run every grid point not already in ``out_dir/runs``; return all rows in grid order."""
    out = Path(out_dir)
    spec_json = spec.model_dump_json()
    spec_file = out / "spec.json"
    points = spec.points()
    spec.preflight()
    if spec_file.exists():
        if json.loads(spec_file.read_text()) != json.loads(spec_json):
            raise InputError(
                f"{out} holds a different sweep (spec.json differs); use a new folder or the "
                "same spec to resume"
            )
    else:
        write_json(spec_file, json.loads(spec_json))
    runs_dir = out / "runs"
    todo = [p for p in points if not (runs_dir / f"{point_key(p)}.json").exists()]
    done = len(points) - len(todo)
    if progress:
        progress(done, len(points), "resumed" if done else "starting")

    def finished(row: dict) -> None:
        nonlocal done
        write_json(runs_dir / f"{row['key']}.json", row, sort_keys=True)
        done += 1
        if progress:
            progress(done, len(points), row["key"])

    if todo:
        if ray_address is not None:
            _run_ray(spec_json, todo, ray_address, finished)
        else:
            _run_local(spec_json, todo, workers, finished)
    rows = [json.loads((runs_dir / f"{point_key(p)}.json").read_text()) for p in points]
    frame = pd.DataFrame(rows).drop(columns=["key"])
    return SweepResult(spec, frame.astype({"replicas": int, "seed": int}))


def _run_local(spec_json: str, todo: list[dict], workers: int | None, finished) -> None:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(todo) == 1:
        for p in todo:
            finished(run_point(spec_json, p))
        return
    from concurrent.futures import as_completed

    from driftsched.ground.procs import worker_pool

    with worker_pool(workers) as pool:
        futures = [pool.submit(run_point, spec_json, p) for p in todo]
        for future in as_completed(futures):
            finished(future.result())


def _run_ray(spec_json: str, todo: list[dict], address: str, finished) -> None:
    try:
        import ray
    except ImportError:
        raise InputError(
            "--ray needs Ray: pip install -e '.[cluster]' (or pip install 'driftsched[cluster]')"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=None if address == "local" else address, include_dashboard=False)
    try:
        remote = ray.remote(run_point)
        pending = [remote.remote(spec_json, p) for p in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            finished(ray.get(ready[0]))
    finally:
        if started_here:
            ray.shutdown()


def load_spec(path: str | Path | None, overrides: dict[str, Any]) -> SweepSpec:
    """A spec from a TOML file (``[workload]``, ``[sim]`` tables and the axis lists) with
    command-line overrides on top."""
    data: dict[str, Any] = {}
    if path is not None:
        import tomllib

        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise InputError(f"{p}: no such scenario file") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{p}: not valid TOML: {exc}") from None
    for key, value in overrides.items():
        if key == "workload":
            data["workload"] = {**data.get("workload", {}), **value}
        elif key == "sim":
            data["sim"] = {**data.get("sim", {}), **value}
        else:
            data[key] = value
    return build(SweepSpec, data, str(path) if path else "sweep")
