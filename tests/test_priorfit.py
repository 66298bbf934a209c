"""Priors fitted to public measurements: the data file, the replay, the fit, leave-one-GPU-out,
eager mode, prices and the hardware comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest
from driftsched.calibrate import priorfit
from driftsched.calibrate.measurements import Measurement, Replay, load_measurements
from driftsched.calibrate.prior import (
    Efficiency,
    derive_prior,
    fitted_prior,
)
from driftsched.sim.costmodel import BatchShape, CostModel

from driftsched.ground.errors import InputError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def fitted():
    return priorfit.fit()


@pytest.fixture(scope="module")
def logo():
    return priorfit.leave_one_gpu_out()


def test_the_data_file_names_a_source_for_every_row_and_no_l4_figure(tmp_path):
    data = load_measurements()
    assert len(data.measurements) >= 8
    for m in data.measurements:
        assert m.source.startswith("https://") and m.gpu != "L4"
    row = data.measurements[0].model_dump()
    with pytest.raises(ValueError, match="no L4 figure"):
        Measurement(**{**row, "gpu": "L4"})
    with pytest.raises(ValueError, match="unknown GPU 'B200'"):
        Measurement(**{**row, "gpu": "B200"})
    # a bad file is one line naming it and the field
    bad = {**data.model_dump(), "measurements": [{**row, "tensor_parallel": 0}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"bad\.json.*tensor_parallel"):
        load_measurements(str(path))


def test_the_shipped_fit_is_what_the_fit_computes(fitted):
    """calibrate/data/fitted_prior.json is `calibrate fit-prior`'s output, not edited by hand."""
    shipped = fitted_prior()
    assert shipped.training == fitted.training
    for a, b in [(shipped.pooled, fitted.pooled)] + [
        (shipped.generations[g], fitted.generations[g]) for g in fitted.generations
    ]:
        for field in ("eta_mem", "eta_flop", "step_overhead_s", "eager_layer_overhead_s"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-6), field


def test_a_burst_replay_prices_the_steps_it_recorded():
    """All ten requests prefill in the first step; TTFT is that step, TPOT the decode steps."""
    m = load_measurements().measurements[0]
    replay = Replay(m, lambda shape: 0.01)
    assert replay.shapes[0][2] == 10  # prefill_requests of step 0: every prompt at once
    metrics = replay.metrics(np.full(len(replay.shapes), 0.01))
    assert metrics["ttft_ms"] == pytest.approx(10.0)
    assert metrics["tpot_ms"] == pytest.approx(10.0)
    outputs = sum(o for o in m.workload.output_tokens if o > 0)
    assert metrics["output_tok_per_s"] == pytest.approx(outputs / (len(replay.shapes) * 0.01))


def test_a_closed_loop_replay_prices_any_step_times_without_idle_gaps():
    """One request at a time: the next arrives as the last finishes, so a replay recorded at
    one step time and priced at another has no wait in it (it used to keep the recording's
    clock as a gate, adding idle time when the priced steps were shorter)."""
    m = next(m for m in load_measurements().measurements if m.workload.arrivals == "closed")
    replay = Replay(m, lambda shape: 0.01)
    metrics = replay.metrics(np.full(len(replay.shapes), 0.005))
    outputs = int(replay.outputs[replay.counted].sum())
    assert metrics["output_tok_per_s"] == pytest.approx(outputs / (len(replay.shapes) * 0.005))


def test_the_fitted_prior_reproduces_the_training_table(fitted):
    """Stated error: every fitted TPOT and throughput within 12%, TTFT within 25%, and the whole
    table's mean |error| under 6% — against 16% for the hand-picked roofline-v1 factors."""
    data = load_measurements()
    ours = priorfit.predictions(data.measurements, fitted.for_gpu)
    ours = ours[ours["fitted"]]
    old = priorfit.predictions(data.measurements, lambda _g: Efficiency())
    old = old[old["fitted"]]
    err = ours.set_index("metric")["error_pct"].abs()
    assert err.drop("ttft_ms").max() < 12
    assert err.loc["ttft_ms"].max() < 25
    assert err.mean() < 6 < old["error_pct"].abs().mean()


def test_left_out_gpus_are_predicted_better_than_roofline_v1_on_decode(logo):
    """A GPU the fit never saw: its TPOT within 10% on every row, better than roofline-v1."""
    tpot = logo[(logo["metric"] == "tpot_ms") & logo["fitted"]]
    assert set(tpot["gpu"]) == {"A100-40GB", "A100-80GB", "H100"}
    assert tpot["left_out_pct"].abs().max() < 10
    assert tpot["left_out_pct"].abs().mean() < tpot["roofline_v1_pct"].abs().mean()
    # the figures outside the engine model are reported with their reason, never fitted
    outside = logo[~logo["fitted"]]
    assert len(outside) and outside["why_not_fitted"].str.len().min() > 20


def test_enforce_eager_pays_the_fitted_overhead_per_layer():
    graphs = derive_prior("L4", "Qwen/Qwen1.5-1.8B-Chat")
    eager = derive_prior("L4", "Qwen/Qwen1.5-1.8B-Chat", enforce_eager=True)
    eff = fitted_prior().for_gpu("L4")
    extra = eager.coefficients["const"] - graphs.coefficients["const"]
    assert extra == pytest.approx(24 * eff.eager_layer_overhead_s, rel=1e-4)  # profiles round
    assert 0.0001 < eff.eager_layer_overhead_s < 0.001
    assert eager.name.endswith("-eager-prior") and "enforce_eager" in eager.provenance.method
    assert "CUDA graphs on" in graphs.provenance.method
    # the L4 has no row in the data (Ada): its prior uses the pooled fit, and says so
    assert "pooled" in graphs.provenance.details["efficiency"]["source"]
    assert (
        "Hopper" in derive_prior("H100", "Qwen/Qwen3-8B").provenance.details["efficiency"]["source"]
    )


def test_roofline_v1_is_still_available_and_differs():
    old = derive_prior("H100", "Qwen/Qwen3-8B", efficiency=Efficiency())
    new = derive_prior("H100", "Qwen/Qwen3-8B")
    shape = BatchShape(decode_requests=8, decode_context_tokens=8 * 500)
    assert CostModel(old).step_time(shape) > 1.1 * CostModel(new).step_time(shape)
    assert old.provenance.details["efficiency"]["source"] == "roofline-v1"


def test_fit_prior_command_writes_the_fit_and_the_leave_one_out_table(tmp_path):
    """On a four-row table of the same schema (two GPUs), to keep it quick."""
    data = load_measurements()
    small = data.model_copy(update={"measurements": data.measurements[:4]})
    (tmp_path / "small.json").write_text(small.model_dump_json())
    assert {m.gpu for m in small.measurements} == {"A100-80GB", "H100"}
    r = run_cli("calibrate", "fit-prior", "--data", tmp_path / "small.json", "-o", tmp_path / "fp")
    assert r.returncode == 0, r.stderr
    assert "left out" in r.stdout and "Hopper" in r.stdout
    written = json.loads((tmp_path / "fp" / "fitted_prior.json").read_text())
    assert written["version"] == "fitted-v2"
    r = run_cli(
        "calibrate", "prior", "--gpu", "A100-80GB", "--model", "Qwen/Qwen3-8B",
        "--efficiency", tmp_path / "fp" / "fitted_prior.json", "-o", tmp_path / "p.json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "fitted-v2 (Ampere" in r.stdout


def test_bad_efficiency_and_price_are_one_line_errors(tmp_path):
    from driftsched.calibrate.prices import gpu_prices

    r = run_cli(
        "calibrate", "prior", "--gpu", "L4", "--model", "Qwen/Qwen3-0.6B",
        "--efficiency", "best", "-o", tmp_path / "p.json",
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--efficiency" in r.stderr and not (tmp_path / "p.json").exists()
    assert gpu_prices("h100=2.5")["H100"].usd_per_hour == 2.5
    for bad in ("H100", "H100=free", "H100=-1", "TPU=1"):
        with pytest.raises(InputError):
            gpu_prices(bad)
    with pytest.raises(InputError, match="not one request"):
        derive_prior("L4", "Qwen/Qwen2.5-7B-Instruct")  # 14 GiB of weights at 0.70 of 24 GB


def test_capacity_compares_gpus_and_prices_them(tmp_path):
    out = tmp_path / "hw"
    r = run_cli(
        "capacity", "--slo", "p99_e2e<=4s", "--gpus", "L4,H100",
        "--model", "Qwen/Qwen2.5-0.5B-Instruct", "--policies", "fifo", "--seeds", "0",
        "--requests", "1000", "--price", "L4=1.0", "--resolution", "0.1", "-o", out,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    import pandas as pd

    t = pd.read_csv(out / "hardware.csv")
    assert set(t["gpu"]) == {"L4", "H100"} and set(t["cost_model_kind"]) == {"prior"}
    meta = json.loads((out / "hardware.json").read_text())
    assert {o["gpu"]: o["usd_per_gpu_hour"] for o in meta["options"]}["L4"] == 1.0
    for row in t.itertuples():
        if row.verdict in ("feasible", "barely feasible"):
            tokens = row.max_rate_per_s * meta["mean_output_tokens"]
            assert row.usd_per_million_output_tokens == pytest.approx(
                row.usd_per_gpu_hour * row.gpus / (tokens * 3600) * 1e6, rel=1e-6
            )
        else:
            assert np.isnan(row.usd_per_million_output_tokens)
    assert set(t["verdict"]) == {"feasible"}  # both priced (an unbounded search is not)
    assert (
        t.set_index("gpu")["max_rate_per_s"]["H100"]
        > 5 * t.set_index("gpu")["max_rate_per_s"]["L4"]
    )
    assert (out / "hardware_cost.png").stat().st_size > 0
    assert (out / "L4" / "capacity.csv").exists() and (out / "priors" / "H100.json").exists()
    r = run_cli("capacity", "--slo", "p99_e2e<=30s", "--gpus", "L4", "-o", tmp_path / "x")
    assert r.returncode == 2 and "--model" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(
        "capacity", "--slo", "p99_e2e<=30s", "--gpus", "A40", "--model", "Qwen/Qwen3-0.6B",
        "-o", tmp_path / "y",
    )  # fmt: skip
    assert r.returncode == 2 and "--price A40=" in r.stderr and not (tmp_path / "y").exists()


def test_a_prior_carries_its_price_and_capacity_on_it_says_what_it_costs(tmp_path):
    """The bundled study prior carries the L4's table price; `capacity` on it prices each
    policy's capacity; `--price` overrides; a GPU=USD list without --gpus is refused."""
    import pandas as pd
    from driftsched.sim.profile import load_profile

    price = load_profile("l4-qwen1.5-1.8b-prior").provenance.details["price"]
    assert price["usd_per_gpu_hour"] == 0.805 and price["source"] and price["table_date"]
    assert "price" not in derive_prior("A40", "Qwen/Qwen3-0.6B").provenance.details
    given = derive_prior("A40", "Qwen/Qwen3-0.6B", usd_per_gpu_hour=0.5).provenance.details
    assert given["price"] == {"usd_per_gpu_hour": 0.5, "source": "given"}
    args = ["capacity", "--slo", "p99_e2e<=20s", "--policies", "fifo", "--seeds", "0",
            "--requests", "1000", "--resolution", "0.2"]  # fmt: skip
    r = run_cli(*args, "-o", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    a = pd.read_csv(tmp_path / "a" / "capacity.csv").iloc[0]
    assert a["usd_per_gpu_hour"] == 0.805 and a["gpus"] == 1 and a["verdict"] == "feasible"
    from driftsched.sim.studies.workload import Workload

    tokens = a["output_tok_per_s"]
    assert tokens == pytest.approx(
        a["max_rate_per_s"] * Workload(requests=1000).mean_output_tokens(0)
    )
    assert a["usd_per_million_output_tokens"] == pytest.approx(0.805 / (tokens * 3600) * 1e6)
    r = run_cli(*args, "--price", "1.61", "-o", tmp_path / "b")
    b = pd.read_csv(tmp_path / "b" / "capacity.csv").iloc[0]
    assert b["usd_per_million_output_tokens"] == pytest.approx(
        2 * a["usd_per_million_output_tokens"]
    )
    r = run_cli(*args, "--price", "L4=1", "-o", tmp_path / "c")
    assert r.returncode == 2 and "one number" in r.stderr and "Traceback" not in r.stderr


def test_large_bursts_identify_the_per_sequence_cost_and_their_throughput_is_fitted(fitted):
    """The 80- and 320-request bursts (up to 256 sequences decoding at once) are in the table;
    their throughput is fitted (within 8% in sample, against 15-25% for roofline-v1) while their
    per-request medians are reported, not fitted (vLLM 0.6 ran prefills before decodes), and
    the per-sequence cost is a fitted term, not roofline-v1's fixed 20 us."""
    data = load_measurements()
    big = [m for m in data.measurements if len(m.workload.input_tokens) >= 80]
    assert len(big) >= 8 and {m.gpu for m in big} == {"A100-80GB", "H100"}
    assert all(set(m.not_fitted) == {"ttft_ms", "tpot_ms"} for m in big)
    ours = priorfit.predictions(big, fitted.for_gpu)
    old = priorfit.predictions(big, lambda _g: Efficiency())
    tput = ours["metric"] == "output_tok_per_s"
    assert ours.loc[tput, "error_pct"].abs().max() < 8
    assert old.loc[tput, "error_pct"].abs().min() > 15
    assert fitted.pooled.per_request_overhead_s != Efficiency().per_request_overhead_s
    assert priorfit.POOLED_FREE.all()


RESULT = {  # the fields of a vLLM --save-result file the importer reads, and some it ignores
    "date": "20240907-090004",
    "backend": "vllm",
    "num_prompts": 4,
    "request_rate": "inf",
    "max_concurrency": None,
    "median_ttft_ms": 80.5,
    "median_tpot_ms": 9.25,
    "mean_ttft_ms": 90.0,
    "mean_tpot_ms": 10.0,
    "output_throughput": 300.0,
    "request_throughput": 2.0,
    "input_lens": [100, 200, 300, 400],
    "output_lens": [50, 0, 70, 80],
    "ttfts": [0.08, 0.0, 0.081, 0.082],
}


def test_add_measurement_turns_a_vllm_result_into_a_row_a_fit_reads(tmp_path):
    """`calibrate add-measurement`: a new table starts as the shipped one plus the row; the
    row replays and fits like the shipped ones; arrivals follow the file's rate/concurrency."""
    from driftsched.calibrate.benchresult import measurement_from_result

    result = tmp_path / "run.json"
    result.write_text(json.dumps(RESULT))
    table = tmp_path / "mine.json"
    args = ["calibrate", "add-measurement", result, "--gpu", "h100", "--model",
            "Qwen/Qwen3-0.6B", "--source", "my lab, 2026-12-07", "--vllm-version", "0.11.0",
            "--data", table, "--engine-arg", "max_num_seqs=64",
            "--not-fitted", "ttft_ms=includes the API server"]  # fmt: skip
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "added 'run-h100-n4'" in r.stdout and "fit-prior --data" in r.stdout
    mine = load_measurements(str(table))
    assert len(mine.measurements) == len(load_measurements().measurements) + 1
    row = mine.measurements[-1]
    assert row.gpu == "H100" and row.workload.arrivals == "burst" and row.cuda_graphs
    assert row.measured.values() == {
        "ttft_ms": 80.5, "tpot_ms": 9.25, "output_tok_per_s": 300.0, "requests_per_s": 2.0
    }  # fmt: skip
    assert row.engine == {"max_num_seqs": 64} and "ttft_ms" in row.not_fitted
    pred = priorfit.predictions([row], priorfit.fit(mine).for_gpu)
    assert set(pred["metric"]) == set(row.measured.values()) and pred["predicted"].gt(0).all()
    # the same id again is refused, the table untouched
    before = table.read_bytes()
    r = run_cli(*args)
    assert r.returncode == 2 and "already there" in r.stderr and table.read_bytes() == before
    # arrivals: a finite rate is Poisson, max_concurrency a closed loop; --stat mean
    poisson = tmp_path / "p.json"
    poisson.write_text(json.dumps({**RESULT, "request_rate": 4.0}))
    kw = {"gpu": "A100-80GB", "model": "Qwen/Qwen3-0.6B", "source": "x", "vllm_version": "0"}
    m = measurement_from_result(poisson, **kw)
    assert m.workload.arrivals == "poisson" and m.workload.rate_per_s == 4.0
    closed = tmp_path / "c.json"
    closed.write_text(json.dumps({**RESULT, "max_concurrency": 2}))
    m = measurement_from_result(closed, stat="mean", **kw)
    assert m.workload.concurrency == 2 and m.measured.ttft_ms == 90.0


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"input_lens": [1, 2]}, "'input_lens' has 2 requests and 'output_lens' 4"),
        ({"output_lens": "many"}, "field 'output_lens': expected the per-request lengths"),
        ({"input_lens": [1, 2, -3, 4]}, "field 'input_lens', entry 2"),
        ({"request_rate": "fast"}, "field 'request_rate': expected a number or 'inf'"),
        ({"median_ttft_ms": -5.0}, "measured.ttft_ms"),  # a bad figure is named, not dropped
        (
            {
                "median_ttft_ms": None,
                "median_tpot_ms": None,
                "output_throughput": None,
                "request_throughput": None,
            },
            "at least one measured metric",
        ),  # fmt: skip
    ],
)
def test_a_bad_result_file_is_one_line_and_writes_nothing(tmp_path, change, expected):
    result = tmp_path / "run.json"
    result.write_text(json.dumps({**RESULT, **change}))
    table = tmp_path / "mine.json"
    r = run_cli(
        "calibrate", "add-measurement", result, "--gpu", "H100", "--model", "Qwen/Qwen3-0.6B",
        "--source", "x", "--vllm-version", "0", "--data", table,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert expected in r.stderr and "run.json" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not table.exists()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(RESULT))
    r = run_cli(
        "calibrate", "add-measurement", good, "--gpu", "H100", "--model", "no/such-model",
        "--source", "x", "--vllm-version", "0", "--data", table,
    )  # fmt: skip
    assert r.returncode == 2 and "no/such-model" in r.stderr and not table.exists()
    r = run_cli(
        "calibrate", "add-measurement", good, "--gpu", "H100", "--model", "Qwen/Qwen3-0.6B",
        "--source", "x", "--vllm-version", "0", "--data", table, "--engine-arg", "max_num_seqs=0",
    )  # fmt: skip
    assert r.returncode == 2 and "max_num_seqs" in r.stderr and not table.exists()
