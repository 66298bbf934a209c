"""The reference study's two estimator variants, and each of their mechanisms alone, run on
the study's grid (``driftsched paper``): how much of the gap between our estimate-error
reduction and the study's -38.8% each mechanism explains.

The study's code comes as ``with-tokenizer/`` (tokens; the category given) and ``with-split/``
(whitespace words fed back and counted; the category from prompt keywords, sometimes wrong).
:mod:`driftsched.sim.estimatorview` models both mechanisms; here each view runs the study's
policies x {none, ewma} x seeds, and :func:`table` reports the MAE/RMSE change (ewma vs none,
mean over policies and seeds — the study's headline) per view, in the unit the estimator counts.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from driftsched.sim.simulation import simulate

#: view name -> (length unit, category confused?)
VARIANTS = {
    "with-tokenizer": ("tokens", False),
    "words only": ("words", False),
    "confusion only": ("tokens", True),
    "with-split": ("words", True),
}


def run(settings, profile, main: pd.DataFrame, progress: Callable[[str], None] | None = None):
    """One row per (variant, seed, policy, corrector in {none, ewma}); a view equal to the
    main grid's reuses its runs (``main``: the paper's per-run rows)."""
    from driftsched.sim.studies.paper import workload
    from driftsched.traces.paper import generate_paper

    rows = []
    base_view = settings.sim.estimator_view
    for name, (unit, confused) in VARIANTS.items():
        view = base_view.model_copy(
            update={
                "length_unit": unit,
                "category_confusion": settings.split_confusion if confused else 0.0,
            }
        )
        if view == base_view:  # the main grid already ran this view
            sub = main[main["corrector"].isin(["none", "ewma"])]
            cols = ["seed", "policy", "corrector", "est_mae_tokens", "est_rmse_tokens",
                    "requests", "finished"]  # fmt: skip
            rows += [{"variant": name, **r, "reused": True} for r in sub[cols].to_dict("records")]
            continue
        for seed in settings.seeds:
            trace = generate_paper(workload(settings, seed))
            for policy in settings.policies:
                for corrector in ("none", "ewma"):
                    config = settings.sim.model_copy(
                        update={"policy": policy, "corrector": corrector, "estimator_view": view}
                    )
                    s = simulate(trace, config, profile).summary().iloc[0]
                    rows.append({"variant": name, "seed": seed, "policy": policy,
                                 "corrector": corrector, "est_mae_tokens": s["est_mae_tokens"],
                                 "est_rmse_tokens": s["est_rmse_tokens"],
                                 "requests": s["requests"], "finished": s["finished"],
                                 "reused": False})  # fmt: skip
                    if progress:
                        progress(f"{name} seed {seed} {policy}/{corrector}")
    return pd.DataFrame(rows)


def table(runs: pd.DataFrame, split_confusion: float) -> pd.DataFrame:
    """Per variant: its view, the mean MAE of none and of ewma, and the MAE/RMSE change."""
    from driftsched.sim.studies.paper import STUDY

    rows = []
    for name, sub in runs.groupby("variant", sort=False):
        mean = sub.groupby(["policy", "corrector"], sort=False).mean(numeric_only=True)

        def change(metric, m=mean):  # ewma vs none per policy, then the mean over policies
            ewma, none = m.xs("ewma", level="corrector"), m.xs("none", level="corrector")
            return float((ewma[metric] / none[metric] - 1).mean())

        by = mean.reset_index().set_index("corrector")
        unit, confused = VARIANTS[name]
        rows.append(
            {
                "variant": name,
                "length_unit": unit,
                "category_confusion": split_confusion if confused else 0.0,
                "mae_none": float(by.loc["none", "est_mae_tokens"].mean()),
                "mae_ewma": float(by.loc["ewma", "est_mae_tokens"].mean()),
                "est_mae_change": change("est_mae_tokens"),
                "est_rmse_change": change("est_rmse_tokens"),
                "study_est_mae_change": STUDY["est_mae_change"],
            }
        )
    return pd.DataFrame(rows)


def variant_lines(variants: pd.DataFrame) -> list[str]:
    """The variants table as markdown lines (docs/paper.md's section)."""
    from driftsched.sim.studies.paper_report import fmt

    lines = ["## The study's two estimator variants (estimate error, ewma vs none)", ""]
    lines += ["| variant | unit | category confusion | MAE none | MAE ewma | MAE change "
              "| RMSE change | study |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in variants.to_dict("records"):
        lines.append(
            f"| {r['variant']} | {r['length_unit']} | {r['category_confusion']:.2f} | "
            f"{r['mae_none']:.1f} | {r['mae_ewma']:.1f} | {fmt(r['est_mae_change'])} | "
            f"{fmt(r['est_rmse_change'])} | {fmt(r['study_est_mae_change'])} |"
        )
    return lines
