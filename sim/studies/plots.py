"""Figures for simulation results (matplotlib, Agg backend; written atomically as PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path, footer: str) -> Path:
    """Write ``fig`` as PNG (atomically) with ``footer`` printed under it: what the figure
    shows (run, corrector, seeds) and the cost model it rests on, prior or measured — a figure
    shared alone still says what it is."""
    from driftsched.ground.atomic import atomic_path

    fig.text(0.01, -0.005, footer, fontsize=7, color="0.3", ha="left", va="top", wrap=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", pad_inches=0.15)
    _plt().close(fig)
    return Path(path)


#: figures draw at most this many points per line: a million-request run plots as fast as a
#: small one, and looks the same at 100 dpi
MAX_POINTS = 4000


def cdf_points(values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of ``values`` as (x, fraction) step points: every point when there are
    at most ``max_points``, else that many evenly spaced order statistics (min and max kept)."""
    v = np.sort(values)
    n = v.size
    if n <= max_points:
        return v, np.arange(1, n + 1) / n
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return v[idx], (idx + 1) / n


def thin_series(series: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """``series`` with at most ``max_points`` rows for plotting: above that, rows are grouped
    into equal time bins and each bin shows its maxima (peaks stay visible) at its first time."""
    if len(series) <= max_points:
        return series
    t = series["time_s"].to_numpy()
    span = t[-1] - t[0]
    bins = np.minimum(((t - t[0]) / span * max_points).astype(np.int64), max_points - 1)
    grouped = series.groupby(bins, sort=True)
    out = grouped.max()
    out["time_s"] = grouped["time_s"].min()
    return out.reset_index(drop=True)


def _repeats(runs: dict[str, pd.DataFrame], metric: str, earlier: list[str]) -> str | None:
    """The earlier metric whose distribution ``metric`` repeats in every run (P10-P99 within
    2%, as queue wait and TTFT do when prefill is short), or None."""
    qs = [10, 50, 90, 99]

    def same(rec: pd.DataFrame, other: str) -> bool:
        done = rec.loc[rec["finished"]]
        a, b = done[metric].dropna().to_numpy(), done[other].dropna().to_numpy()
        if not (a.size and b.size):
            return False
        pa, pb = np.percentile(a, qs), np.percentile(b, qs)
        return bool(np.all(np.abs(pa - pb) <= 0.02 * np.maximum(np.abs(pb), 1e-9)))

    return next((o for o in earlier if all(same(rec, o) for rec in runs.values())), None)


def latency_cdfs(runs: dict[str, pd.DataFrame], metrics=("e2e_s", "ttft_s", "queue_wait_s")):
    """A row of CDF panels, one line per labelled run (records frames). A panel whose
    distribution repeats an earlier one in every run is left out, and the figure says so."""
    plt = _plt()
    kept: list[str] = []
    omitted = []
    for metric in metrics:
        twin = _repeats(runs, metric, kept) if kept else None
        if twin is None:
            kept.append(metric)
        else:
            omitted.append(f"{metric.removesuffix('_s')} ≈ {twin.removesuffix('_s')}")
    metrics = kept
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(5 * len(metrics), 4), constrained_layout=True
    )
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for label, rec in runs.items():
            v = rec.loc[rec["finished"], metric].dropna().to_numpy()
            if v.size:
                ax.step(*cdf_points(v), where="post", label=label)
        ax.set(
            xlabel=metric.replace("_s", " (s)").replace("_", " "),
            ylabel="fraction",
            title=f"CDF of {metric.removesuffix('_s').replace('_', ' ')}",
        )
        ax.grid(alpha=0.3)
    title = "policy/corrector" if any("/" in str(k) for k in runs) else None
    np.atleast_1d(axes)[0].legend(fontsize=7, title=title, title_fontsize=7)
    if omitted:
        fig.suptitle(f"(panel omitted, same distribution: {', '.join(omitted)})", fontsize=7)
    return fig


def queue_depth(series: pd.DataFrame):
    """Gateway queue per tier, engine batch and KV use over time (binned maxima when long)."""
    plt = _plt()
    thinned = thin_series(series)
    binned = len(thinned) < len(series)
    series = thinned
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, constrained_layout=True)
    for tier in ("premium", "standard", "batch"):
        a.plot(series["time_s"], series[f"queue_{tier}"], label=tier)
    a.plot(series["time_s"], series["queue_total"], color="k", lw=1, label="total")
    title = "Queue depth per tier" + (" (maximum per time bin)" if binned else "")
    a.set(ylabel="gateway queue", title=title)
    a.legend(fontsize=8)
    b.plot(series["time_s"], series["engine_running"], label="running batch size")
    b.plot(series["time_s"], series["engine_waiting"], label="engine waiting")
    b2 = b.twinx()
    b2.plot(series["time_s"], series["kv_utilisation"], color="tab:red", lw=0.8)
    b2.set_ylabel("KV utilisation", color="tab:red")
    b.set(xlabel="time (s)", ylabel="requests")
    b.legend(fontsize=8, loc="upper left")
    return fig


def corrector_bias(series: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4), constrained_layout=True)
    for key, sub in series.groupby("key", sort=True):
        ax.plot(sub["time_s"], sub["value"], label=key)
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set(xlabel="time (s)", ylabel="value", title="Corrector state over time")
    ax.legend(fontsize=8)
    return fig


def tier_bars(tiers: pd.DataFrame, metrics=("e2e_p50_s", "e2e_p99_s", "queue_wait_p99_s")):
    """Grouped bars per tier, one bar per (policy, corrector); one panel per metric."""
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(5.5 * len(metrics), 4), constrained_layout=True
    )
    runs = list(dict.fromkeys(zip(tiers["policy"], tiers["corrector"], strict=True)))
    tier_names = list(dict.fromkeys(tiers["tier"]))
    width = 0.8 / max(1, len(runs))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for k, (policy, corrector) in enumerate(runs):
            sub = tiers[(tiers["policy"] == policy) & (tiers["corrector"] == corrector)]
            sub = sub.set_index("tier").reindex(tier_names)
            x = np.arange(len(tier_names)) + (k - (len(runs) - 1) / 2) * width
            ax.bar(x, sub[metric].to_numpy(dtype=float), width, label=f"{policy}/{corrector}")
        ax.set_xticks(np.arange(len(tier_names)), tier_names)
        ax.set(ylabel="seconds", title=metric.removesuffix("_s").replace("_", " ") + " per tier")
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=6, ncol=2)
    return fig


def bias_by_category(series: dict[str, pd.DataFrame]):
    """Corrector bias over time: one panel per category, one line per labelled run."""
    plt = _plt()
    keys = sorted({k for s in series.values() for k in s["key"].unique() if k.startswith("bias.")})
    cats = [k.removeprefix("bias.") for k in keys]
    fig, axes = plt.subplots(
        1,
        max(1, len(cats)),
        figsize=(4 * max(1, len(cats)), 3.5),
        constrained_layout=True,
        sharey=True,
    )
    for ax, cat in zip(np.atleast_1d(axes), cats, strict=True):
        for label, s in series.items():
            sub = s[s["key"] == f"bias.{cat}"]
            ax.plot(sub["time_s"], sub["value"], lw=1, label=label)
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set(xlabel="time (s)", title=f"{cat}: EWMA bias")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("bias (actual / base estimate)")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    return fig


def _sweep_lines(ax, table: pd.DataFrame, metric: str, ylabel: str) -> str:
    """One line per configuration (everything but the rate), with its 95% CI band over seeds;
    returns the legend title that says what a label like ``fifo/1`` means."""
    keys = [k for k in ("policy", "corrector", "mode", "replicas") if table[k].nunique() > 1]
    keys = keys or ["policy"]
    for label, sub in table.groupby(keys, sort=False):
        if metric not in sub.columns or sub[metric].isna().all():
            continue
        sub = sub.sort_values("rate_per_s")
        name = "/".join(str(v) for v in (label if isinstance(label, tuple) else (label,)))
        ax.plot(sub["rate_per_s"], sub[metric], marker="o", ms=3, label=name)
        low, high = f"{metric}_ci_low", f"{metric}_ci_high"
        if low in sub.columns:
            ax.fill_between(sub["rate_per_s"], sub[low], sub[high], alpha=0.15)
    ax.set(xlabel="offered load (requests/s)", ylabel=ylabel)
    ax.grid(alpha=0.3)
    seeds = int(table["seeds"].max()) if "seeds" in table.columns else 1
    band = f"; bands: 95% CI over {seeds} seeds" if seeds > 1 else ""
    return "/".join(keys) + band


def sweep_latency(table: pd.DataFrame):
    """P50 and P99 of E2E and TTFT against load, one line per configuration."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for ax, metric in zip(
        axes.ravel(), ("e2e_p50_s", "e2e_p99_s", "ttft_p50_s", "ttft_p99_s"), strict=True
    ):
        legend = _sweep_lines(ax, table, metric, "seconds")
        ax.set_title(metric.removesuffix("_s").replace("_", " ").upper())
    axes[0, 0].legend(fontsize=7, title=legend, title_fontsize=7)
    return fig


def sweep_slo(table: pd.DataFrame):
    """SLO attainment (fraction of requests within the target) against load."""
    plt = _plt()
    metrics = [m for m in ("e2e_slo_attainment", "ttft_slo_attainment") if m in table.columns]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        legend = _sweep_lines(ax, table, metric, "fraction of requests")
        ax.set_title(metric.replace("_", " "))
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].legend(fontsize=7, title=legend, title_fontsize=7)
    fig.tight_layout()
    return fig


def sweep_tiers(table: pd.DataFrame):
    """P99 E2E per tier against load."""
    plt = _plt()
    tiers = [t for t in ("premium", "standard", "batch") if f"e2e_p99_s_{t}" in table.columns]
    tiers = tiers or ["(none)"]
    fig, axes = plt.subplots(1, len(tiers), figsize=(5 * len(tiers), 4), squeeze=False)
    for ax, tier in zip(axes[0], tiers, strict=True):
        legend = _sweep_lines(ax, table, f"e2e_p99_s_{tier}", "seconds")
        ax.set_title(f"P99 E2E, {tier}")
    axes[0, 0].legend(fontsize=7, title=legend, title_fontsize=7)
    fig.tight_layout()
    return fig
