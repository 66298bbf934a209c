"""The reproduction's report: ``paper.md`` (the study's claims beside ours, the tables, the
estimator variants) and the one way every output formats a delta (:func:`fmt`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from driftsched.sim.studies.compare import to_markdown


def markdown(deltas: dict, table: pd.DataFrame, tiers: pd.DataFrame, variants=None) -> str:
    """The report: headline claims side by side, then the per-scheduler and per-tier tables."""
    prof = deltas["profile"]
    s = deltas["settings"]
    lines = [
        "# The DriftSched study, reproduced in simulation",
        "",
        f"Workload `driftsched-paper`, {s['requests']} requests, seeds {s['seeds']}"
        + (f", gaps x{s['gap_scale']:g}" if s["gap_scale"] != 1 else "")
        + "; "
        f"{s['sim']['mode']} dispatch (B={s['sim']['batch_size']}, "
        f"wait {s['sim']['batch_wait_s'] * 1000:g} ms); profile `{prof['name']}` "
        f"({prof['kind']}: {prof['hardware']}, {prof['model']}).",
        "",
        "| claim | study | driftsched (mean) | per seed | stress phase only |",
        "|---|---|---|---|---|",
    ]
    for row in deltas["claims"]:
        lines.append(
            f"| {row['meaning']} | {fmt(row['study'])} | {fmt(row['driftsched'])} | "
            f"{', '.join(fmt(v) for v in row['by_seed'])} | {fmt(row['stress_phase_only'])} |"
        )
    lines += ["", "## Per scheduler (mean over seeds)", "", to_markdown(table), ""]
    lines += ["## Per tier (mean over seeds)", "", to_markdown(tiers)]
    if variants is not None:
        from driftsched.sim.studies.variants import variant_lines

        lines += ["", *variant_lines(variants)]
    return "\n".join(lines)


def fmt(v) -> str:
    """A delta as a signed percentage, a claim as yes/no."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v * 100:+.1f}%"
