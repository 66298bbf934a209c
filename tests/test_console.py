"""Console tables never cut a number: at 80 and 120 columns every value is printed whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from driftsched.ground.console import fmt, table


def wide_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    cols = {"policy": ["fifo", "sjf", "weighted_fair_share"], "corrector": ["none", "ewma", "x"]}
    for name in ("e2e_p50_s", "e2e_p99_s", "queue_wait_max_s", "output_tokens_per_s"):
        cols[name] = rng.uniform(0, 5000, 3)
    for name in ("est_mae_tokens", "class_agreement", "jain_fairness", "preemptions"):
        cols[name] = rng.uniform(0, 1e6, 3)
    cols["requests"] = [1_000_000, 3000, 12]
    return pd.DataFrame(cols)


@pytest.mark.parametrize("width", [80, 120])
def test_no_value_is_cut_at_this_width(width):
    frame = wide_frame()
    out = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(table(frame, "a wide table", width=width))
    text = out.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for row in frame.itertuples(index=False):
        for value in row:
            assert fmt(value) in text, f"{fmt(value)!r} missing at {width} columns"
    for name in frame.columns:
        assert name in text.replace("\n", ""), name


def test_a_narrow_table_stays_one_table():
    out = Console(width=120, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(table(pd.DataFrame({"a": [1.5], "b": ["x"]}), "t", width=120))
    assert "(1/" not in out.export_text()
