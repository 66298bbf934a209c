"""`traces describe`: the numbers it prints, its JSON, its figure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from driftsched.traces import Trace
from driftsched.traces.describe import rate_bin_for, summarise

from tests.conftest import make_frame, run_cli


def test_summary_counts_rates_and_percentiles():
    frame = make_frame(10, arrival_s=np.arange(10) * 2.0, prompt_tokens=np.arange(1, 11))
    s = summarise(Trace.from_frame(frame), rate_bin_s=6)
    assert s.requests == 10 and s.span_s == 18
    assert s.mean_rate_per_s == 10 / 18
    assert s.rate["requests_per_s"].tolist() == [0.5, 0.5, 0.5, 1 / 6]
    assert s.tokens.loc["prompt", "p50"] == 5.5 and s.tokens.loc["prompt", "max"] == 10
    by_tenant = s.by_tenant.set_index("tenant")
    assert by_tenant.loc["a", "requests"] == 5 and by_tenant.loc["a", "share"] == 0.5
    assert rate_bin_for(100) == 1 and rate_bin_for(3600) == 30


def test_cli_generate_then_describe_with_plot_and_json(tmp_path):
    out, png = tmp_path / "paper.parquet", tmp_path / "paper.png"
    gen = run_cli("traces", "generate", "driftsched-paper", "-n", "500", "-o", out)
    assert gen.returncode == 0, gen.stderr
    desc = run_cli("traces", "describe", out, "--plot", png)
    assert desc.returncode == 0, desc.stderr
    assert "500 requests" in desc.stdout and "tenant-premium" in desc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    js = json.loads(run_cli("traces", "describe", out, "--json").stdout)
    assert js["requests"] == 500
    assert pd.DataFrame(js["by_category"])["requests"].sum() == 500
