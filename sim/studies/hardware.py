"""Which hardware is cheapest for this SLO: the capacity search on several GPUs, priced.

For each :class:`HardwareOption` (a GPU's cost-model profile, how many GPUs a replica takes,
its hourly price) :class:`HardwareStudy` runs the same :class:`~driftsched.sim.studies.
capacity.CapacityStudy` and turns each policy's highest sustainable rate into what a planner
compares: requests/s and output tokens/s, per GPU-hour, and dollars per million output tokens
at that rate (``usd_per_gpu_hour * gpus / (output_tok_per_s * 3600) * 1e6``). A GPU whose
search is ``unbounded`` (the trace ends before it saturates) or ``infeasible`` gets no rate
and no price; its verdict says why. Output tokens/s
is the rate times the workload's mean output tokens (seed ``seeds[0]``): at a rate that meets
the SLOs every request finishes, so that is what the GPUs produce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from driftsched.sim.studies.capacity import PRICED_VERDICTS, CapacityStudy, CapacityStudyResult
from driftsched.sim.studies.slo import SLO
from driftsched.sim.studies.workload import Workload

from driftsched.ground.errors import InputError

#: the columns :func:`~driftsched.sim.studies.capacity.priced` adds
PRICE_COLUMNS = (
    "gpus", "output_tok_per_s", "requests_per_gpu_hour", "output_tok_per_gpu_hour",
    "usd_per_gpu_hour", "usd_per_million_output_tokens",
)  # fmt: skip


@dataclass
class HardwareOption:
    gpu: str
    profile: str  # a profile name or JSON path
    gpus_per_replica: int
    usd_per_gpu_hour: float
    price_source: str


@dataclass
class HardwareStudy:
    workload: Workload
    policies: list[str]
    slos: list[SLO]
    seeds: list[int]
    options: list[HardwareOption]
    sim: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.95
    resolution: float = 0.02

    def __post_init__(self):
        if not self.options:
            raise InputError("give at least one GPU")
        if "profile" in self.sim:
            raise InputError("the profile comes from each GPU; do not also --set profile")

    def run(self, progress=None) -> HardwareResult:
        from driftsched.sim.profile import load_profile

        rows, studies = [], {}
        for k, opt in enumerate(self.options):
            if progress:
                progress(opt.gpu, k, len(self.options))
            study = CapacityStudy(
                workload=self.workload, policies=self.policies, slos=self.slos,
                seeds=self.seeds, sim={**self.sim, "profile": opt.profile},
                confidence=self.confidence, resolution=self.resolution,
                usd_per_gpu_hour=opt.usd_per_gpu_hour, gpus_per_replica=opt.gpus_per_replica,
            )  # fmt: skip
            result = study.run()
            studies[opt.gpu] = result
            profile = load_profile(opt.profile)
            for row in result.rows:
                rows.append(
                    {
                        "gpu": opt.gpu,
                        "policy": row["policy"],
                        "verdict": row["verdict"],
                        # the search's rate only where it is a capacity (see priced)
                        "max_rate_per_s": row["max_rate_per_s"]
                        if row["verdict"] in PRICED_VERDICTS
                        else None,
                        **{k: row[k] for k in PRICE_COLUMNS},
                        "cost_model": profile.name,
                        "cost_model_kind": profile.kind,
                    }
                )
        if progress:
            progress(None, len(self.options), len(self.options))
        mean_output = self.workload.mean_output_tokens(self.seeds[0])
        return HardwareResult(self, pd.DataFrame(rows), studies, mean_output)


@dataclass
class HardwareResult:
    study: HardwareStudy
    table: pd.DataFrame  # one row per (gpu, policy)
    capacity: dict[str, CapacityStudyResult]
    mean_output_tokens: float

    def cheapest(self) -> pd.DataFrame:
        """Per policy, the GPU with the lowest dollars per million output tokens."""
        t = self.table.dropna(subset=["usd_per_million_output_tokens"])
        idx = t.groupby("policy", sort=False)["usd_per_million_output_tokens"].idxmin()
        return t.loc[idx, ["policy", "gpu", "usd_per_million_output_tokens", "max_rate_per_s"]]

    def write(self, out_dir) -> list[Path]:
        """``hardware.csv``, ``hardware.json``, ``hardware_cost.png``, and each GPU's capacity
        files under ``<gpu>/``."""
        from driftsched.sim.result import write_csv
        from driftsched.sim.studies import plots

        from driftsched.ground.atomic import write_json

        out, s = Path(out_dir), self.study
        written = []
        for gpu, result in self.capacity.items():
            written += result.write(out / gpu)
        kinds = sorted(set(self.table["cost_model_kind"]))
        note = "cost models: " + ", ".join(
            f"{g} {m} ({k})"
            for g, m, k in self.table[["gpu", "cost_model", "cost_model_kind"]]
            .drop_duplicates()
            .itertuples(index=False)
        )
        meta = {
            "slos": [slo.label for slo in s.slos],
            "seeds": s.seeds,
            "confidence": s.confidence,
            "mean_output_tokens": self.mean_output_tokens,
            "cost_model_kinds": kinds,
            "cost_model_note": note,
            "options": [o.__dict__ for o in s.options],
            "workload": s.workload.model_dump(mode="json"),
            "sim": s.sim,
            "results": self.table.to_dict("records"),
        }
        return [
            write_csv(self.table, out / "hardware.csv"),
            write_json(out / "hardware.json", meta),
            plots.save(
                plot_cost(self.table, s.slos),
                out / "hardware_cost.png",
                f"seeds {','.join(map(str, s.seeds))} · {note} · prices: hardware.json",
            ),  # fmt: skip
            *written,
        ]


def plot_cost(table: pd.DataFrame, slos: list[SLO]):
    """Dollars per million output tokens at the SLO, per GPU (bars) and policy (groups)."""
    from driftsched.sim.studies.plots import _plt

    plt = _plt()
    values = table.assign(
        usd=pd.to_numeric(table["usd_per_million_output_tokens"], errors="coerce")
    )
    pivot = values.pivot_table(index="gpu", columns="policy", values="usd", sort=False,
                               dropna=False)  # fmt: skip
    gpus = list(dict.fromkeys(table["gpu"]))
    pivot = pivot.reindex(gpus)
    fig, ax = plt.subplots(figsize=(1.6 * len(gpus) + 3, 3.8))
    if pivot.notna().to_numpy().any():
        pivot.plot.bar(ax=ax, rot=0)
    for i, gpu in enumerate(gpus):
        if pivot.loc[gpu].isna().all():
            verdicts = ", ".join(sorted(set(table.loc[table["gpu"] == gpu, "verdict"])))
            ax.text(i, 0, f"no price: {verdicts}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(gpus)), gpus)
    ax.set(
        ylabel="$ per million output tokens",
        xlabel="",
        title=f"cost at the highest rate within {', '.join(s.label for s in slos)}",
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
