"""Figure helpers: long runs are thinned for drawing without changing what the figure says."""

from __future__ import annotations

import numpy as np
import pandas as pd
from driftsched.sim.studies.plots import cdf_points, latency_cdfs, queue_depth, save, thin_series


def test_cdf_points_are_exact_order_statistics():
    rng = np.random.default_rng(0)
    v = rng.lognormal(size=100_000)
    x, frac = cdf_points(v, max_points=500)
    s = np.sort(v)
    assert len(x) <= 500 and x[0] == s[0] and x[-1] == s[-1] and frac[-1] == 1.0
    # every point lies on the empirical CDF: fraction of values <= x
    assert np.array_equal(np.searchsorted(s, x, side="right") / len(s), frac)
    small = np.array([3.0, 1.0, 2.0])
    assert cdf_points(small)[0].tolist() == [1.0, 2.0, 3.0]
    assert cdf_points(small)[1].tolist() == [1 / 3, 2 / 3, 1.0]


def test_thin_series_keeps_peaks_and_span():
    n = 50_000
    t = np.linspace(0.0, 1000.0, n)
    queue = np.zeros(n, dtype=np.int64)
    queue[12_345] = 99  # a one-sample spike
    series = pd.DataFrame({"time_s": t, "queue_total": queue, "kv_utilisation": t / 1000})
    thin = thin_series(series, max_points=300)
    assert len(thin) <= 300
    assert thin["queue_total"].max() == 99
    assert thin["time_s"].iloc[0] == 0.0 and thin["kv_utilisation"].iloc[-1] == 1.0
    assert thin["time_s"].is_monotonic_increasing
    assert thin_series(series.iloc[:10]) is not None and len(thin_series(series.iloc[:10])) == 10


def test_big_figures_render(tmp_path):
    rng = np.random.default_rng(1)
    n = 200_000
    rec = pd.DataFrame(
        {
            "finished": True,
            "e2e_s": rng.exponential(size=n),
            "ttft_s": rng.exponential(size=n),
            "queue_wait_s": rng.exponential(size=n),
        }
    )
    t = np.cumsum(rng.exponential(size=n))
    cols = ["queue_total", "queue_premium", "queue_standard", "queue_batch"]
    series = pd.DataFrame({"time_s": t, **{c: rng.integers(0, 9, n) for c in cols}})
    series["engine_running"] = rng.integers(0, 64, n)
    series["engine_waiting"] = 0
    series["kv_utilisation"] = rng.random(n)
    for fig, name in ((latency_cdfs({"run": rec}), "cdf.png"), (queue_depth(series), "q.png")):
        assert save(fig, tmp_path / name, "footer").stat().st_size > 10_000
