"""The reference study (DriftSched, arXiv 2606.02982) reproduced in simulation.

:func:`reproduce` runs the study's workload (``driftsched-paper``: 3000 requests, learning then
stress phase) under every scheduler with the corrector off (``none``) and on (``ewma``), with
the study's micro-batching worker (B = 32, 10 ms wait), for several seeds, and sets our
headline deltas beside the study's reported ones (:data:`STUDY`).

Every figure is a mean over seeds; ``paper_runs.csv`` keeps each seed's row so the spread is
visible. Which of the study's claims hold, and why the numbers differ, is in docs/paper.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.metrics import summary
from driftsched.sim.policies import STUDY_POLICIES
from driftsched.sim.profile import DEFAULT_PROFILE, load_profile
from driftsched.sim.result import SimResult, write_csv
from driftsched.sim.simulation import simulate
from driftsched.sim.studies import plots, variants
from driftsched.sim.studies.compare import TABLE_COLUMNS
from driftsched.sim.studies.paper_report import fmt, markdown
from driftsched.traces.paper import PaperConfig, generate_paper
from pydantic import Field, field_validator

from driftsched.ground.atomic import write_json, write_text
from driftsched.ground.config import Config

#: What the study reports (relative changes; negative = lower is better and it went down).
STUDY = {
    "est_mae_change": -0.388,
    "est_rmse_change": -0.405,
    "sjf_vs_fifo_e2e_p50_change": -0.42,
    "sjf_vs_fifo_e2e_p99_change": -0.16,
    "scheduler_matters_more_than_calibration": True,
}

#: one line per headline: key, what it means
CLAIMS = {
    "est_mae_change": "estimate MAE, ewma vs none (mean over schedulers)",
    "est_rmse_change": "estimate RMSE, ewma vs none (mean over schedulers)",
    "sjf_vs_fifo_e2e_p50_change": "median E2E, sjf vs fifo (corrector ewma)",
    "sjf_vs_fifo_e2e_p99_change": "P99 E2E, sjf vs fifo (corrector ewma)",
    "scheduler_matters_more_than_calibration": (
        "largest scheduler effect on median E2E > largest calibration effect"
    ),
}

#: the columns of paper_table.csv (the simulator core's names)
_P95_AFTER = {"e2e_p90_s": "e2e_p95_s", "queue_wait_p50_s": "queue_wait_p95_s"}
PAPER_COLUMNS = [
    *(c for t in TABLE_COLUMNS for c in ((t, _P95_AFTER[t]) if t in _P95_AFTER else (t,))),
    "est_bias_tokens",
    "seeds",
]
TIER_COLUMNS = [
    "policy",
    "corrector",
    "tier",
    "requests",
    "e2e_p50_s",
    "e2e_p95_s",
    "e2e_p99_s",
    "queue_wait_p50_s",
    "queue_wait_p95_s",
    "queue_wait_p99_s",
    "queue_wait_max_s",
]


class PaperSettings(Config):
    """The study's experiment; defaults are the study's setup."""

    requests: int = Field(3000, ge=10, description="requests per trace")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="one trace + run per seed")
    policies: list[str] = Field(list(STUDY_POLICIES), min_length=1)
    correctors: list[str] = Field(["none", "ewma"], min_length=1)
    gap_scale: float = Field(
        1.0,
        gt=0,
        description="multiply the study's inter-arrival gaps (both phases): > 1 is a lighter "
        "load, for asking how the deltas depend on contention",
    )
    sim: SimConfig = Field(
        default_factory=lambda: SimConfig(mode="microbatch", batch_size=32, batch_wait_s=0.010),
        description="the simulation every run shares (policy/corrector are set per run)",
    )
    variants: bool = Field(
        True,
        description="also run the study's two estimator variants and each mechanism alone "
        "(none vs ewma, every policy, every seed): the estimate-error headline per variant",
    )
    split_confusion: float = Field(
        0.25,
        ge=0,
        le=1,
        description="with-split: share of requests the keyword classifier gives a wrong "
        "category (the study does not report its accuracy; docs/paper.md shows the range)",
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("seeds must be distinct non-negative integers")
        return v


def default_settings(profile: str | None = None, **changes) -> PaperSettings:
    """The study's settings, optionally on another profile."""
    sim = SimConfig(
        mode="microbatch", batch_size=32, batch_wait_s=0.010, profile=profile or DEFAULT_PROFILE
    )
    return PaperSettings(sim=sim, **changes)


@dataclass
class PaperResult:
    """Per-seed summaries plus the seed-0 runs kept whole for the figures."""

    settings: PaperSettings
    profile: dict
    runs: pd.DataFrame  # one row per (seed, policy, corrector): overall summary + stress phase
    tiers: pd.DataFrame  # one row per (seed, policy, corrector, tier)
    kept: dict[tuple[str, str], SimResult] = field(default_factory=dict)
    #: one row per (variant, seed, policy, corrector): the estimate error under each view
    variant_runs: pd.DataFrame | None = None

    def accounting_line(self) -> str:
        """Where the requests of every run went, summed (one line), then the variants' runs."""
        from driftsched.sim.result import accounting_line, summed_accounting

        line = accounting_line(summed_accounting(self.runs), runs=len(self.runs))
        extra = self.variant_runs
        if extra is not None:
            extra = extra[~extra["reused"].astype(bool)]
            n, done = int(extra["requests"].sum()), int(extra["finished"].sum())
            line += (
                f"; estimator variants: {n:,} requests over {len(extra)} more runs — "
                f"{done:,} finished, {n - done:,} not"
            )
        return line

    def cost_model_note(self) -> str:
        """Which cost model the reproduction rests on, prior or measured."""
        from driftsched.sim.profile import load_profile

        return load_profile(self.settings.sim.profile).note()

    # -- tables ------------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        """Mean over seeds, one row per (policy, corrector), in run order."""
        return _mean_over_seeds(self.runs, ["policy", "corrector", "mode"], PAPER_COLUMNS)

    def tier_table(self) -> pd.DataFrame:
        return _mean_over_seeds(self.tiers, ["policy", "corrector", "tier"], TIER_COLUMNS)

    def deltas(self) -> dict:
        """The study's headline figures beside ours (means over seeds, plus each seed's)."""
        ours_by_seed = {seed: headline(sub) for seed, sub in self.runs.groupby("seed", sort=True)}
        ours = headline(self.table())
        stress_cols = [c for c in self.runs.columns if c.startswith("stress_")]
        stress = headline(
            self.runs.groupby(["policy", "corrector"], sort=False, as_index=False)[stress_cols]
            .mean()
            .rename(columns=lambda c: c.removeprefix("stress_"))
        )
        rows = []
        for key, meaning in CLAIMS.items():
            row = {
                "claim": key,
                "meaning": meaning,
                "study": STUDY[key],
                "driftsched": ours.get(key),
                "by_seed": [ours_by_seed[s].get(key) for s in sorted(ours_by_seed)],
                "stress_phase_only": stress.get(key),
            }
            if isinstance(STUDY[key], bool):
                row["agrees"] = row["driftsched"] == STUDY[key]
            else:
                row["agrees_in_direction"] = _same_sign(row["driftsched"], STUDY[key])
            rows.append(row)
        return {
            "study": "DriftSched, arXiv 2606.02982 (NVIDIA L4, vLLM, Qwen1.5-1.8B)",
            "profile": self.profile,
            "settings": self.settings.model_dump(mode="json"),
            "claims": rows,
            "details": ours["details"],
        }

    def variants(self) -> pd.DataFrame | None:
        """The estimate error per estimator variant (:func:`variants.table`), or None."""
        if self.variant_runs is None:
            return None
        return variants.table(self.variant_runs, self.settings.split_confusion)

    # -- figures -----------------------------------------------------------------------------
    def claims(self) -> pd.DataFrame:
        """The headline claims as a printable table: the study's figure beside ours, per seed
        and over the stress phase only (formatted text)."""
        return pd.DataFrame(
            [
                {
                    "claim": r["meaning"],
                    "study": fmt(r["study"]),
                    "driftsched": fmt(r["driftsched"]),
                    "per seed": " ".join(fmt(v) for v in r["by_seed"]),
                    "stress phase": fmt(r["stress_phase_only"]),
                }
                for r in self.deltas()["claims"]
            ]
        )

    def plot_cdf(self, corrector: str = "ewma"):
        runs = {
            policy: r.records
            for (policy, cor), r in self.kept.items()
            if cor == _pick(self.settings.correctors, corrector)
        }
        return plots.latency_cdfs(runs)

    def plot_tiers(self):
        return plots.tier_bars(self.tier_table())

    def plot_bias(self):
        series = {
            policy: r.corrector_series
            for (policy, cor), r in self.kept.items()
            if cor == "ewma" and len(r.corrector_series)
        }
        return plots.bias_by_category(series) if series else None

    # -- files -------------------------------------------------------------------------------
    def write(self, out_dir: str | Path) -> list[Path]:
        """paper_table.csv/.md, paper_tiers.csv, paper_runs.csv, paper_deltas.json and the
        figures; every file atomically. Returns the paths written."""
        out = Path(out_dir)
        table, tiers = self.table(), self.tier_table()
        deltas = self.deltas()
        note = self.cost_model_note()
        seeds = ",".join(map(str, self.settings.seeds))
        written = [
            write_csv(table, out / "paper_table.csv"),
            write_csv(tiers, out / "paper_tiers.csv"),
            write_csv(self.runs, out / "paper_runs.csv"),
            write_json(out / "paper_deltas.json", deltas, sort_keys=True),
            write_text(out / "paper.md", markdown(deltas, table, tiers, self.variants()) + "\n"),
            plots.save(self.plot_cdf(), out / "paper_cdf.png", f"seed {seeds[:1]} · {note}"),
            plots.save(self.plot_tiers(), out / "paper_tiers.png", f"seeds {seeds} · {note}"),
        ]
        variants = self.variants()
        if variants is not None:
            written.append(write_csv(variants, out / "paper_variants.csv"))
        bias = self.plot_bias()
        if bias is not None:
            written.append(plots.save(bias, out / "paper_bias.png", f"seed {seeds[:1]} · {note}"))
        return written


def reproduce(
    settings: PaperSettings | None = None, progress: Callable[[str], None] | None = None
) -> PaperResult:
    """Run the study's grid: for each seed one trace, then every policy x corrector on it.

    ``progress`` is called with a label after each run. The first seed's runs are kept whole
    (records, corrector state) for the figures; the rest keep their summaries only."""
    settings = settings or PaperSettings()
    profile = load_profile(settings.sim.profile)
    runs, tiers, kept = [], [], {}
    for seed in settings.seeds:
        trace = generate_paper(workload(settings, seed))
        n_learn = int(trace.meta["learning_requests"])
        for policy in settings.policies:
            for corrector in settings.correctors:
                config = settings.sim.model_copy(update={"policy": policy, "corrector": corrector})
                result = simulate(trace, config, profile)
                row = result.summary().iloc[0].to_dict()
                stress = summary(result.records.iloc[n_learn:]).iloc[0].to_dict()
                row.update({f"stress_{k}": v for k, v in stress.items()})
                acc = result.accounting()
                row.update(unfinished=acc["unfinished"], dropped=acc["dropped"])
                runs.append({"seed": seed, **row})
                for t in result.summary("tier").to_dict("records"):
                    tiers.append({"seed": seed, **t})
                if seed == settings.seeds[0]:
                    kept[(policy, corrector)] = result
                if progress:
                    progress(f"seed {seed} {policy}/{corrector}")
    prov = profile.provenance
    meta = {"name": profile.name, "kind": profile.kind, "hardware": prov.hardware}
    meta["model"] = prov.model
    result = PaperResult(settings, meta, pd.DataFrame(runs), pd.DataFrame(tiers), kept)
    if settings.variants:
        result.variant_runs = variants.run(settings, profile, pd.DataFrame(runs), progress)
    return result


def workload(settings: PaperSettings, seed: int) -> PaperConfig:
    """The study's workload for one seed, gaps scaled by ``settings.gap_scale``."""
    base, k = PaperConfig(), settings.gap_scale
    return PaperConfig(
        requests=settings.requests,
        seed=seed,
        learning_gap_s=tuple(g * k for g in base.learning_gap_s),
        stress_gap_s=tuple(g * k for g in base.stress_gap_s),
    )


def headline(table: pd.DataFrame) -> dict:
    """The study's headline deltas from a table with one row per (policy, corrector).

    Missing policies or correctors give ``None`` for the deltas that need them."""
    t = table.set_index(["policy", "corrector"])
    out: dict = {"details": {}}

    def val(policy, corrector, col):
        key = (policy, corrector)
        return float(t.loc[key, col]) if key in t.index else None

    policies = list(dict.fromkeys(table["policy"]))
    correctors = list(dict.fromkeys(table["corrector"]))
    if {"none", "ewma"} <= set(correctors):
        for metric in ("mae", "rmse"):
            changes = {
                p: _change(
                    val(p, "ewma", f"est_{metric}_tokens"), val(p, "none", f"est_{metric}_tokens")
                )
                for p in policies
            }
            out[f"est_{metric}_change"] = float(np.mean(list(changes.values())))
            out["details"][f"est_{metric}_change_by_policy"] = changes
    for cor in correctors:
        for q in ("p50", "p99"):
            change = _change(val("sjf", cor, f"e2e_{q}_s"), val("fifo", cor, f"e2e_{q}_s"))
            out["details"][f"sjf_vs_fifo_e2e_{q}_change_{cor}"] = change
    ref = _pick(correctors, "ewma")
    for q in ("p50", "p99"):
        out[f"sjf_vs_fifo_e2e_{q}_change"] = out["details"][f"sjf_vs_fifo_e2e_{q}_change_{ref}"]
    if "fifo" in policies and len(policies) > 1:
        base = _pick(correctors, "none")
        sched = {
            p: _change(val(p, base, "e2e_p50_s"), val("fifo", base, "e2e_p50_s"))
            for p in policies
            if p != "fifo"
        }
        out["details"]["scheduler_effect_e2e_p50_by_policy"] = sched
        best = max(abs(v) for v in sched.values() if v is not None)
        out["details"]["scheduler_effect_e2e_p50"] = best
        if {"none", "ewma"} <= set(correctors):
            calib = {
                p: _change(val(p, "ewma", "e2e_p50_s"), val(p, "none", "e2e_p50_s"))
                for p in policies
            }
            out["details"]["calibration_effect_e2e_p50_by_policy"] = calib
            cal = max(abs(v) for v in calib.values() if v is not None)
            out["details"]["calibration_effect_e2e_p50"] = cal
            out["scheduler_matters_more_than_calibration"] = bool(best > cal)
    return out


def _change(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or not old:
        return None
    return new / old - 1.0


def _same_sign(a, b) -> bool | None:
    if a is None:
        return None
    return bool(np.sign(a) == np.sign(b))


def _pick(options: list[str], preferred: str) -> str:
    return preferred if preferred in options else options[0]


def _mean_over_seeds(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(keys, sort=False, observed=True)
    mean = grouped.mean(numeric_only=True).drop(columns="seed").reset_index()
    mean["seeds"] = grouped.size().to_numpy()
    return mean[[c for c in columns if c in mean.columns]]
