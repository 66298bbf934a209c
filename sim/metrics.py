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


def summary(rec: pd.DataFrame, by: str | None = None, labels: dict | None = None) -> pd.DataFrame:
    """One row for the run (``by=None``), or one per ``tier`` / ``tenant`` (in sorted order:
    a categorical's category order), labelled with ``labels`` (policy, corrector, mode, ...)
    prepended as columns."""
    labels = labels or {}
    cols = _Columns(rec)
    if by is None:
        rows, keys = [_summarise(cols, slice(None))], [{}]
    else:
        codes, uniques = pd.factorize(rec[by], sort=True)  # (a missing key: -1, left out)
        order = np.argsort(codes, kind="stable")  # each group's rows in record order
        bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
        rows = [_summarise(cols, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        keys = [{by: key} for key in uniques]
    table = pd.DataFrame([{**labels, **k, **r} for k, r in zip(keys, rows, strict=True)])
    if by is None:
        done = rec.loc[cols.finished, ["output_tokens", "e2e_s", "tenant"]]
        service = (
            (done["output_tokens"] / done["e2e_s"]).groupby(done["tenant"], observed=True).mean()
        )
        table["jain_fairness"] = jain(service.to_numpy(dtype=float))
    return table


class _Columns:
    """The columns the metrics read, as numpy arrays taken once from a records table (a group
    is then an index into them, not a copy of the table)."""

    def __init__(self, rec: pd.DataFrame):
        def floats(name: str) -> np.ndarray:
            values = rec[name].to_numpy()  # a float column's own array: no copy
            if values.dtype != np.float64:
                values = rec[name].to_numpy(dtype=float, na_value=np.nan)
            return values

        self.finished = rec["finished"].to_numpy(dtype=bool)
        self.rejected = rec["rejected"].to_numpy(dtype=bool)
        self.latency = {name: floats(f"{name}_s") for name in LATENCIES}
        self.done_s, self.arrival_s = floats("done_s"), floats("arrival_s")
        self.output_tokens = rec["output_tokens"].to_numpy()
        self.admitted = rec["est_class"].notna().to_numpy()  # requests that reached the gateway
        # in the unit the estimator counted in: words when it saw words (the estimator view)
        truth = "observed_length" if "observed_length" in rec.columns else "output_tokens"
        self.error = floats("estimate_tokens") - floats(truth)
        self.agree = (rec["est_class"] == rec["true_class"]).to_numpy(dtype=bool)
        self.preemptions = rec["preemptions"].to_numpy()
        self.slo = {
            slo: (floats(f"{slo}_s"), floats(f"{slo}_slo_s"))
            for slo in ("ttft", "e2e")
            if f"{slo}_slo_s" in rec.columns
        }


def _summarise(cols: _Columns, rows) -> dict[str, float]:
    """Metrics of the records ``rows`` (a slice or index array) of ``cols``."""
    finished, admitted = cols.finished[rows], cols.admitted[rows]
    n, n_done = finished.size, int(finished.sum())
    rejected = int(cols.rejected[rows].sum())
    out: dict[str, float] = {
        "requests": n,
        "finished": n_done,
        "unfinished": n - n_done - rejected,
        "rejected": rejected,
        "rejected_rate": rejected / n if n else float("nan"),
    }

    def done(values: np.ndarray) -> np.ndarray:  # the finished requests' values
        return values[rows] if n_done == n else values[rows][finished]

    latency = {name: done(cols.latency[name]) for name in LATENCIES}
    for name, v in latency.items():
        v = v[np.isfinite(v)]
        for (label, _), value in zip(STATS, _pcts(v), strict=True):
            out[f"{name}_{label}_s"] = value
        out[f"{name}_mean_s"] = float(v.mean()) if v.size else float("nan")
    w = latency["queue_wait"]
    out["queue_wait_max_s"] = float(w.max()) if w.size else float("nan")
    span = float("nan")
    if n_done:  # NaN skipped, as pandas reduces
        span = np.fmax.reduce(done(cols.done_s)) - np.fmin.reduce(cols.arrival_s[rows])
    tokens = np.nansum(done(cols.output_tokens))
    out["output_tokens_per_s"] = float(tokens / span) if span and span > 0 else float("nan")
    all_admitted = bool(admitted.all())
    err = cols.error[rows] if all_admitted else cols.error[rows][admitted]
    out["est_mae_tokens"] = float(np.abs(err).mean()) if err.size else float("nan")
    out["est_rmse_tokens"] = float(np.sqrt((err**2).mean())) if err.size else float("nan")
    out["est_bias_tokens"] = float(err.mean()) if err.size else float("nan")
    agree = cols.agree[rows] if all_admitted else cols.agree[rows][admitted]
    out["class_agreement"] = float(agree.mean()) if agree.size else float("nan")
    out["preemptions"] = int(np.nansum(cols.preemptions[rows]))
    for slo, (seconds, target) in cols.slo.items():
        target = target[rows]
        has = ~np.isnan(target)
        if has.any():
            met = finished & (seconds[rows] <= target)
            out[f"{slo}_slo_attainment"] = float(met[has].mean())
    return out
