"""Per-run summary metrics from the per-request records.

Column names follow ``<metric>_<stat>_<unit>``: ``e2e_p50_s``, ``ttft_p99_s``,
``queue_wait_max_s`` (the worst wait), ``output_tokens_per_s``, ``est_mae_tokens``,
``class_agreement``, ``jain_fairness`` ... Latency statistics are over *finished* requests;
``rejected`` counts requests the policy turned away at admission (``rejected_rate`` is their
share of the group's requests), ``unfinished`` the rest (a run stopped at a horizon). SLO
attainment counts a rejected request as a miss.

Definitions: ``queue_wait = dispatch - arrival`` (time in the gateway queue), ``ttft =
first_token - arrival``, ``e2e = done - arrival`` (``done`` is when the client gets the whole
response: the request's own finish in continuous mode, its batch's end in microbatch mode),
``tpot = (finish - first_token) / (output_tokens - 1)``. Jain's fairness is over tenants'
normalised service ``x_t = mean(output_tokens / e2e_s)`` (tokens per second of waiting a tenant
experiences): 1 when every tenant is served alike, 1/n when one tenant gets everything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LATENCIES = ("e2e", "ttft", "queue_wait", "tpot")
STATS = (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99))
LABELS = ("policy", "corrector", "mode")


def _pcts(values: np.ndarray) -> list[float]:
    """The :data:`STATS` percentiles of ``values`` in one pass (NaN for no data)."""
    if not values.size:
        return [float("nan")] * len(STATS)
    return [float(x) for x in np.percentile(values, [q for _, q in STATS])]


def jain(x: np.ndarray) -> float:
    """Jain's index ``(sum x)^2 / (n * sum x^2)`` (NaN for no data)."""
    x = x[np.isfinite(x)]
    return (
        float(x.sum() ** 2 / (x.size * (x**2).sum()))
        if x.size and (x**2).sum() > 0
        else float("nan")
    )


def summarise_frame(rec: pd.DataFrame) -> dict[str, float]:
    """Metrics of one group of records (all of a run, or one tier/tenant)."""
    done = rec[rec["finished"]]
    rejected = int(rec["rejected"].sum())
    out: dict[str, float] = {
        "requests": len(rec),
        "finished": len(done),
        "unfinished": int((~rec["finished"]).sum()) - rejected,
        "rejected": rejected,
        "rejected_rate": rejected / len(rec) if len(rec) else float("nan"),
    }
    for name in LATENCIES:
        v = done[f"{name}_s"].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        for (label, _), value in zip(STATS, _pcts(v), strict=True):
            out[f"{name}_{label}_s"] = value
        out[f"{name}_mean_s"] = float(v.mean()) if v.size else float("nan")
    w = done["queue_wait_s"].to_numpy(dtype=float)
    out["queue_wait_max_s"] = float(w.max()) if w.size else float("nan")
    span = (done["done_s"].max() - rec["arrival_s"].min()) if len(done) else float("nan")
    out["output_tokens_per_s"] = (
        float(done["output_tokens"].sum() / span) if span and span > 0 else float("nan")
    )
    admitted = rec[rec["est_class"].notna()]  # requests that reached the gateway
    # in the unit the estimator counted in: words when it saw words (the estimator view)
    truth = "observed_length" if "observed_length" in rec.columns else "output_tokens"
    err = (admitted["estimate_tokens"] - admitted[truth]).to_numpy(dtype=float)
    out["est_mae_tokens"] = float(np.abs(err).mean()) if err.size else float("nan")
    out["est_rmse_tokens"] = float(np.sqrt((err**2).mean())) if err.size else float("nan")
    out["est_bias_tokens"] = float(err.mean()) if err.size else float("nan")
    agree = admitted["est_class"] == admitted["true_class"]
    out["class_agreement"] = float(agree.mean()) if len(admitted) else float("nan")
    out["preemptions"] = int(rec["preemptions"].sum())
    for slo in ("ttft", "e2e"):
        col = f"{slo}_slo_s"
        if col in rec.columns:
            has = rec[col].notna()
            if has.any():
                met = rec["finished"] & (rec[f"{slo}_s"] <= rec[col])
                out[f"{slo}_slo_attainment"] = float(met[has].mean())
    return out


def summary(rec: pd.DataFrame, by: str | None = None, labels: dict | None = None) -> pd.DataFrame:
    """One row for the run (``by=None``), or one per ``tier`` / ``tenant``; ``labels`` (policy,
    corrector, mode, ...) are prepended as columns."""
    labels = labels or {}
    if by is None:
        rows = [summarise_frame(rec)]
        keys: list[dict] = [{}]
    else:
        groups = list(rec.groupby(by, observed=True, sort=True))
        rows = [summarise_frame(g) for _, g in groups]
        keys = [{by: k} for k, _ in groups]
    table = pd.DataFrame([{**labels, **k, **r} for k, r in zip(keys, rows, strict=True)])
    if by is None:
        done = rec[rec["finished"]]
        service = (
            (done["output_tokens"] / done["e2e_s"]).groupby(done["tenant"], observed=True).mean()
        )
        table["jain_fairness"] = jain(service.to_numpy(dtype=float))
    return table
