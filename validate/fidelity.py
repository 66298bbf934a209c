"""How far the simulator was from the live engine: per scenario and across scenarios.

Per scenario and metric (``e2e``, ``ttft``, ``queue_wait``): the relative error of P50/P90/P99
(``|sim - live| / live``), the mean per-request absolute error (seconds, over requests both
finished), and the Kolmogorov-Smirnov distance between the two distributions. Across scenarios:
whether the simulator ranks them as the live engine does — Kendall's tau between sim and live
median (and P99) E2E over all scenarios, and the share of scenario pairs ordered alike.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("e2e", "ttft", "queue_wait")
QUANTILES = (("p50", 50), ("p90", 90), ("p99", 99))


def rel_error(sim: float, live: float) -> float:
    if not np.isfinite(sim) or not np.isfinite(live):
        return float("nan")
    if live == 0:
        return 0.0 if sim == 0 else float("inf")
    return abs(sim - live) / abs(live)


def paired(live: pd.DataFrame, sim: pd.DataFrame) -> pd.DataFrame:
    """The requests finished on both sides, joined on ``request_id`` (columns suffixed
    ``_live`` and ``_sim``)."""
    both = live.merge(sim, on="request_id", suffixes=("_live", "_sim"))
    return both[both["finished_live"] & both["finished_sim"]]


def scenario_fidelity(live: pd.DataFrame, sim: pd.DataFrame) -> dict:
    """Error metrics of one scenario (records joined on ``request_id``)."""
    done = paired(live, sim)
    out: dict = {
        "requests": len(live),
        "live_finished": int(live["finished"].sum()),
        "compared": len(done),
    }
    for m in METRICS:
        lv = done[f"{m}_s_live"].to_numpy(dtype=float)
        sv = done[f"{m}_s_sim"].to_numpy(dtype=float)
        for label, q in QUANTILES:
            lq = float(np.percentile(lv, q)) if lv.size else float("nan")
            sq = float(np.percentile(sv, q)) if sv.size else float("nan")
            out[f"{m}_{label}_live_s"], out[f"{m}_{label}_sim_s"] = lq, sq
            out[f"{m}_{label}_rel_error"] = rel_error(sq, lq)
        out[f"{m}_mean_abs_error_s"] = float(np.abs(sv - lv).mean()) if lv.size else float("nan")
        # the statistic only (the p-value is not used): no exact-p attempt, no warning
        out[f"{m}_ks"] = (
            float(stats.ks_2samp(lv, sv, method="asymp").statistic) if lv.size else float("nan")
        )
    return out


#: live values closer than this (relative) are within the live-vs-live noise floor measured on
#: the CPU engine (~10%, docs/validate.md): their order is a coin toss, not a fidelity signal
TIE_REL = 0.10


def ranking(rows: list[dict], stat: str = "p50", tie_rel: float = TIE_REL) -> dict:
    """Kendall's tau and pairwise agreement of sim vs live ``e2e_<stat>`` across scenarios:
    over all pairs, and over the *distinct* pairs, whose live values differ by at least
    ``tie_rel`` of the larger one."""
    live = np.array([r[f"e2e_{stat}_live_s"] for r in rows], dtype=float)
    sim = np.array([r[f"e2e_{stat}_sim_s"] for r in rows], dtype=float)
    ok = np.isfinite(live) & np.isfinite(sim)
    live, sim = live[ok], sim[ok]
    if live.size < 2:
        return {
            "tau": float("nan"),
            "pairs": 0,
            "pairs_agree": 0,
            "pairs_distinct": 0,
            "pairs_distinct_agree": 0,
        }
    tau = float(stats.kendalltau(live, sim).statistic)
    pairs = list(itertools.combinations(range(live.size), 2))
    alike = [bool(np.sign(live[i] - live[j]) == np.sign(sim[i] - sim[j])) for i, j in pairs]
    distinct = [
        abs(live[i] - live[j]) >= tie_rel * max(abs(live[i]), abs(live[j])) for i, j in pairs
    ]
    return {
        "tau": tau,
        "pairs": len(pairs),
        "pairs_agree": sum(alike),
        "pairs_distinct": sum(distinct),
        "pairs_distinct_agree": sum(a and d for a, d in zip(alike, distinct, strict=True)),
    }


def summary(rows: list[dict]) -> dict:
    """Mean errors over scenarios (worst case too) and the ranking agreement."""
    out: dict = {"scenarios": len(rows)}
    for m in METRICS:
        for label, _ in QUANTILES:
            key = f"{m}_{label}_rel_error"
            vals = np.array([r[key] for r in rows], dtype=float)
            vals = vals[np.isfinite(vals)]
            out[key] = float(vals.mean()) if vals.size else float("nan")
            out[f"{key}_max"] = float(vals.max()) if vals.size else float("nan")
        ks = np.array([r[f"{m}_ks"] for r in rows], dtype=float)
        out[f"{m}_ks"] = float(np.nanmean(ks)) if np.isfinite(ks).any() else float("nan")
    extra = [
        k
        for k in (rows[0] if rows else {})
        if k.startswith(("noise_", "replay_", "rescaled_", "speed_ratio", "host_slowdown"))
        and isinstance(rows[0][k], (int, float))
    ]
    # live-vs-live differences (the measurement's own noise), replay and rescaled errors, the
    # run's measured speed, the host's own: means over scenarios, when measured
    for key in extra:
        vals = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        out[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    r50, r99 = ranking(rows, "p50"), ranking(rows, "p99")
    out["ranking_agreement"] = r50["tau"]
    out["ranking_agreement_p99"] = r99["tau"]
    out["ranking_pairs"], out["ranking_pairs_agree"] = r50["pairs"], r50["pairs_agree"]
    out["ranking_pairs_distinct"] = r50["pairs_distinct"]
    out["ranking_pairs_distinct_agree"] = r50["pairs_distinct_agree"]
    for prefix in ("replay_", "rescaled_"):
        if rows and f"{prefix}e2e_p50_live_s" in rows[0]:
            r = ranking(_unprefixed(rows, prefix), "p50")
            out[f"{prefix}ranking_pairs_distinct"] = r["pairs_distinct"]
            out[f"{prefix}ranking_pairs_distinct_agree"] = r["pairs_distinct_agree"]
    return out


def _unprefixed(rows: list[dict], prefix: str) -> list[dict]:
    return [{k.removeprefix(prefix): v for k, v in r.items() if k.startswith(prefix)} for r in rows]
