"""``driftsched paper``: the study reproduced in simulation, its deltas and a golden check.

The golden file holds a small seeded paper run's headline figures. If a change to the engine
model, the cost model or a policy moves them beyond the tolerances, this fails; when the move
is intended, regenerate with ``DRIFTSCHED_UPDATE_GOLDEN=1 pytest tests/test_paper.py`` and say
why in the commit message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from driftsched.sim.studies.paper import CLAIMS, STUDY, default_settings, headline, reproduce

from tests.conftest import run_cli

GOLDEN = Path(__file__).parent / "golden" / "paper_small.json"
GOLDEN_COLUMNS = ["e2e_p50_s", "e2e_p99_s", "queue_wait_max_s", "est_mae_tokens", "est_rmse_tokens"]


@pytest.fixture(scope="module")
def small():
    settings = default_settings(
        requests=600,
        seeds=[0, 1],
        policies=["fifo", "priority", "sjf"],
        correctors=["none", "ewma"],
    )
    return reproduce(settings)


def _golden_view(result) -> dict:
    table = result.table()
    rows = {
        f"{r['policy']}/{r['corrector']}": {c: float(r[c]) for c in GOLDEN_COLUMNS}
        for r in table.to_dict("records")
    }
    claims = {c["claim"]: c["driftsched"] for c in result.deltas()["claims"]}
    return {"rows": rows, "claims": claims}


def test_golden_small_paper_run(small):
    view = _golden_view(small)
    if os.environ.get("DRIFTSCHED_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(view, indent=2, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert set(view["rows"]) == set(golden["rows"])
    for key, cols in golden["rows"].items():
        for col, want in cols.items():
            got = view["rows"][key][col]
            assert got == pytest.approx(want, rel=0.03), f"{key} {col}: {got} vs golden {want}"
    for claim, want in golden["claims"].items():
        got = view["claims"][claim]
        if isinstance(want, bool):
            assert got is want, claim
        else:  # relative changes: within 3 percentage points
            assert got == pytest.approx(want, abs=0.03), f"{claim}: {got} vs golden {want}"


def test_the_study_shape_holds_on_the_small_run(small):
    """Directions the study reports, on a run small enough for a unit test."""
    d = {c["claim"]: c for c in small.deltas()["claims"]}
    assert d["est_mae_change"]["driftsched"] < -0.1
    assert d["est_rmse_change"]["driftsched"] < -0.1
    assert d["sjf_vs_fifo_e2e_p50_change"]["driftsched"] < -0.1
    assert len(d["sjf_vs_fifo_e2e_p50_change"]["by_seed"]) == 2


def test_table_is_a_mean_over_seeds(small):
    runs, table = small.runs, small.table()
    assert len(runs) == 2 * 3 * 2 and len(table) == 3 * 2
    assert (table["seeds"] == 2).all()
    fifo = runs[(runs["policy"] == "fifo") & (runs["corrector"] == "none")]
    row = table[(table["policy"] == "fifo") & (table["corrector"] == "none")].iloc[0]
    assert row["e2e_p50_s"] == pytest.approx(fifo["e2e_p50_s"].mean())
    assert fifo["e2e_p50_s"].nunique() == 2  # two seeds, two different traces
    tiers = small.tier_table()
    assert set(tiers["tier"]) == {"premium", "standard", "batch"}
    assert len(tiers) == 3 * 2 * 3


def test_headline_arithmetic_on_a_hand_made_table():
    table = pd.DataFrame(
        [
            ("fifo", "none", 10.0, 40.0, 100.0, 120.0),
            ("fifo", "ewma", 10.0, 40.0, 60.0, 60.0),
            ("sjf", "none", 6.0, 36.0, 100.0, 120.0),
            ("sjf", "ewma", 5.0, 30.0, 50.0, 72.0),
        ],
        columns=[
            "policy",
            "corrector",
            "e2e_p50_s",
            "e2e_p99_s",
            "est_mae_tokens",
            "est_rmse_tokens",
        ],
    )
    h = headline(table)
    assert h["est_mae_change"] == pytest.approx(((60 / 100 - 1) + (50 / 100 - 1)) / 2)
    assert h["est_rmse_change"] == pytest.approx(((60 / 120 - 1) + (72 / 120 - 1)) / 2)
    assert h["sjf_vs_fifo_e2e_p50_change"] == pytest.approx(5 / 10 - 1)
    assert h["sjf_vs_fifo_e2e_p99_change"] == pytest.approx(30 / 40 - 1)
    assert h["details"]["sjf_vs_fifo_e2e_p50_change_none"] == pytest.approx(-0.4)
    # scheduler effect 40% (sjf vs fifo, no corrector) vs calibration effect 16.7% (sjf)
    assert h["details"]["calibration_effect_e2e_p50"] == pytest.approx(1 / 6)
    assert h["scheduler_matters_more_than_calibration"] is True
    table.loc[3, "e2e_p50_s"] = 1.0  # calibration now moves sjf by 83%
    assert headline(table)["scheduler_matters_more_than_calibration"] is False


def test_every_claim_has_the_studys_figure():
    assert set(CLAIMS) == set(STUDY)


def test_cli_writes_the_table_deltas_and_figures(tmp_path):
    out = tmp_path / "paper"
    args = ("paper", "--requests", "300", "--seeds", "0,1", "--policies", "fifo,sjf", "-o", out)
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "-42.0%" in r.stdout and "PRIOR" in r.stdout
    table = pd.read_csv(out / "paper_table.csv")
    assert list(table["policy"]) == ["fifo", "fifo", "sjf", "sjf"]
    assert {"e2e_p50_s", "e2e_p99_s", "est_mae_tokens", "est_rmse_tokens"} <= set(table.columns)
    deltas = json.loads((out / "paper_deltas.json").read_text())
    claims = {c["claim"]: c for c in deltas["claims"]}
    assert claims["est_mae_change"]["study"] == -0.388
    assert len(claims["sjf_vs_fifo_e2e_p99_change"]["by_seed"]) == 2
    for name in ("paper_cdf.png", "paper_tiers.png", "paper_bias.png", "paper.md"):
        assert (out / name).stat().st_size > 0, name
    first = (out / "paper_table.csv").read_bytes()
    assert run_cli(*args).returncode == 0
    assert (out / "paper_table.csv").read_bytes() == first  # same seeds -> same bytes


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--seeds", "0,x"), "--seeds"),
        (("--seeds", "1,1"), "seeds"),
        (("--policies", "fifo,lifo"), "lifo"),
        (("--requests", "5"), "requests"),
    ],
)
def test_cli_bad_options_are_one_line(tmp_path, args, needle):
    r = run_cli("paper", *args, "-o", tmp_path / "p")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert not (tmp_path / "p").exists()
