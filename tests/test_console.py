"""Console tables never cut a number: at 80 and 120 columns every value is printed whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from driftsched.ground.console import fmt, rows_table, table


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


def _render(renderable, width: int) -> str:
    out = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(renderable)
    return out.export_text()


def test_values_are_printed_as_they_are_not_as_markup():
    """A value, a header or a title with square brackets or emoji codes is text (a plugin's
    docstring reading ``base[category]`` used to lose ``[category]`` as a rich markup tag)."""
    text = _render(
        rows_table(
            [("x", "base[category] * safety[tier]", ":smile:")],
            ["[k]", "what", "c"],
            title="a [bold]title",
        ),  # fmt: skip
        120,
    )
    for literal in ("base[category] * safety[tier]", ":smile:", "[k]", "a [bold]title"):
        assert literal in text, literal


@pytest.mark.parametrize("width", [60, 100])
def test_a_description_too_long_for_a_line_wraps_whole_in_its_cell(width):
    """`sim list` describes every extension: a long description wraps within the width beside
    the columns that name the row, and none of its words is cut (it used to run off the edge)."""
    prose = " ".join(f"word{k}" for k in range(80))
    text = _render(
        rows_table([("policy", "fifo", prose)], ["kind", "name", "what"], width=width), width
    )
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert sum("fifo" in line for line in lines) == 1 and len(lines) > 5  # one row, wrapped
    assert "…" not in text
    words = text.replace("│", " ").split()
    for k in range(80):
        assert f"word{k}" in words, k
