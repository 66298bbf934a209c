"""Summaries of a trace: counts, span, arrival rate over time, token percentiles, and a figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from driftsched.traces.trace import Trace

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class TraceSummary:
    """What ``driftsched traces describe`` prints. Tables are tidy DataFrames."""

    requests: int
    span_s: float
    mean_rate_per_s: float
    peak_rate_per_s: float
    rate_bin_s: float
    tokens: pd.DataFrame  # index prompt/output/max, columns mean, p50, p90, p99, max
    by_tenant: pd.DataFrame  # tenant, tier, requests, share, mean prompt/output tokens
    by_category: pd.DataFrame
    rate: pd.DataFrame  # bin_start_s, requests_per_s

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "span_s": self.span_s,
            "mean_rate_per_s": self.mean_rate_per_s,
            "peak_rate_per_s": self.peak_rate_per_s,
            "rate_bin_s": self.rate_bin_s,
            "tokens": self.tokens.reset_index(names="column").to_dict("records"),
            "by_tenant": self.by_tenant.to_dict("records"),
            "by_category": self.by_category.to_dict("records"),
        }


def rate_bin_for(span_s: float) -> float:
    """A readable bin width giving roughly 50-200 bins over the span."""
    for width in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21600, 86400):
        if span_s / width <= 200:
            return float(width)
    return 86400.0


def _group(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = (
        frame.groupby(keys, observed=True, sort=True)
        .agg(
            requests=("request_id", "size"),
            prompt_mean_tokens=("prompt_tokens", "mean"),
            output_mean_tokens=("output_tokens", "mean"),
        )
        .reset_index()
    )
    out.insert(len(keys) + 1, "share", out["requests"] / len(frame))
    return out


def summarise(trace: Trace, rate_bin_s: float | None = None) -> TraceSummary:
    """Compute the summary; ``rate_bin_s`` defaults to :func:`rate_bin_for` of the span."""
    f = trace.frame
    span = trace.span_s
    width = rate_bin_s or rate_bin_for(span)
    t = f["arrival_s"].to_numpy()
    # Half-open bins [start, start + width); the last one holds the last arrival.
    edges = t[0] + width * np.arange(int((t[-1] - t[0]) // width) + 2)
    counts, edges = np.histogram(t, bins=edges)
    rate = pd.DataFrame({"bin_start_s": edges[:-1], "requests_per_s": counts / width})
    tokens = pd.DataFrame(
        {
            col.removesuffix("_tokens"): {
                "mean": float(f[col].mean()),
                **{f"p{p}": float(np.percentile(f[col], p)) for p in PERCENTILES},
                "max": float(f[col].max()),
            }
            for col in ("prompt_tokens", "output_tokens", "max_tokens")
        }
    ).T
    return TraceSummary(
        requests=len(f),
        span_s=span,
        mean_rate_per_s=len(f) / span if span > 0 else float("nan"),
        peak_rate_per_s=float(rate["requests_per_s"].max()),
        rate_bin_s=width,
        tokens=tokens,
        by_tenant=_group(f, ["tenant", "tier"]),
        by_category=_group(f, ["category"]),
        rate=rate,
    )


def plot(trace: Trace, summary: TraceSummary, path: str | Path) -> Path:
    """Write a PNG: arrival rate over time per tier, and prompt/output length histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from driftsched.ground.atomic import atomic_path

    f = trace.frame
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    ax = axes[0]
    width = summary.rate_bin_s
    t = f["arrival_s"].to_numpy()
    edges = np.append(
        summary.rate["bin_start_s"].to_numpy(), summary.rate["bin_start_s"].iloc[-1] + width
    )
    for tier, sub in f.groupby("tier", observed=True):
        counts, _ = np.histogram(sub["arrival_s"], bins=edges)
        ax.step(edges[:-1], counts / width, where="post", label=str(tier))
    ax.plot(edges[:-1], np.histogram(t, bins=edges)[0] / width, color="k", lw=1, label="all")
    ax.set(xlabel="arrival time (s)", ylabel=f"requests/s ({width:g}-s bins)", title="Arrival rate")
    ax.legend(fontsize=8)
    for ax, col in zip(axes[1:], ("prompt_tokens", "output_tokens"), strict=True):
        values = f[col].to_numpy()
        bins = np.unique(np.geomspace(1, max(2, values.max()), 60).astype(int))
        for cat, sub in f.groupby("category", observed=True):
            ax.hist(sub[col], bins=bins, histtype="step", label=str(cat))
        ax.set_xscale("log")
        ax.set(xlabel=col.replace("_", " "), ylabel="requests", title=col.replace("_", " "))
        ax.legend(fontsize=8)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
