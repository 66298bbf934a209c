"""Run every (policy, corrector) combination on one trace: the study's experiment in one call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.profile import load_profile
from driftsched.sim.result import SimResult, write_csv
from driftsched.sim.simulation import simulate
from driftsched.sim.studies import plots
from driftsched.traces.trace import Trace

from driftsched.ground.atomic import write_text
from driftsched.ground.plugins import file_safe

#: the columns of the comparison table, in order
TABLE_COLUMNS = [
    "policy",
    "corrector",
    "mode",
    "requests",
    "e2e_p50_s",
    "e2e_p90_s",
    "e2e_p99_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "queue_wait_p50_s",
    "queue_wait_p99_s",
    "queue_wait_max_s",
    "output_tokens_per_s",
    "est_mae_tokens",
    "est_rmse_tokens",
    "class_agreement",
    "jain_fairness",
    "preemptions",
]


@dataclass
class Comparison:
    runs: dict[tuple[str, str], SimResult]

    def table(self) -> pd.DataFrame:
        """One row per (policy, corrector); oracle runs are labelled ``oracle`` (an upper bound)."""
        rows = pd.concat([r.summary() for r in self.runs.values()], ignore_index=True)
        return rows[[c for c in TABLE_COLUMNS if c in rows.columns]]

    def accounting_line(self) -> str:
        """Where every request went (:meth:`SimResult.accounting_line`), once when every run
        says the same, else per run."""
        lines = {r.label: r.accounting_line() for r in self.runs.values()}
        if len(set(lines.values())) == 1:
            return f"{next(iter(lines.values()))} (each of the {len(lines)} runs)"
        return "; ".join(f"{label}: {line}" for label, line in lines.items())

    def plot_cdf(self):
        return plots.latency_cdfs({r.label: r.records for r in self.runs.values()})

    def write(self, out_dir: str | Path, records: bool = True) -> Path:
        """``compare.csv``, ``compare.md``, ``compare_cdf.png`` and, with ``records``, each run's
        files under ``runs/<policy>-<corrector>/`` (atomic per file; a plugin spec named by its
        object's name and a hash, never its path, so no run writes outside ``out_dir``)."""
        out = Path(out_dir)
        table = self.table()
        first = next(iter(self.runs.values()))
        write_csv(table.assign(**first.cost_model_columns()), out / "compare.csv")
        write_text(
            out / "compare.md",
            f"{first.cost_model_note()}\n\n{first.accounting_line()}\n\n{to_markdown(table)}\n",
        )
        plots.save(
            self.plot_cdf(),
            out / "compare_cdf.png",
            f"{first.meta['mode']} · {first.cost_model_note()}",
        )
        if records:
            for (policy, corrector), result in self.runs.items():
                name = f"{file_safe(policy)}-{file_safe(corrector)}"  # a spec may be a path
                result.write(out / "runs" / name, plots_too=False)
        return out


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (floats to 4 significant digits)."""

    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines)


def compare(
    trace: Trace,
    policies: list[str],
    correctors: list[str],
    base: SimConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Simulate every combination (policies outer, correctors inner). ``progress`` is called
    with each run's label after it finishes."""
    base = base or SimConfig()
    profile = load_profile(base.profile)
    runs = {}
    for policy in policies:
        for corrector in correctors:
            config = base.model_copy(update={"policy": policy, "corrector": corrector})
            runs[(policy, corrector)] = simulate(trace, config, profile)
            if progress:
                progress(f"{policy}/{corrector}")
    return Comparison(runs)
