"""Sweeps: grid, resume, parallel == serial, confidence intervals, TOML specs, CLI errors."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
from driftsched.sim.studies.sweep import SweepSpec, aggregate, load_spec, run_sweep

from driftsched.ground.errors import InputError
from tests.conftest import run_cli

SMALL = {
    "generator": "poisson",
    "requests": 200,
    "params": {"prompt_cap": 1024, "output_cap": 1000},
}


def spec(**changes) -> SweepSpec:
    base = {
        "workload": SMALL,
        "rates_per_s": [2.0, 5.0],
        "policies": ["fifo", "sjf"],
        "seeds": [0, 1],
        "slo_e2e_s": 15.0,
    }
    return SweepSpec.model_validate({**base, **changes})


def test_grid_is_the_product_of_the_axes():
    s = spec(replicas=[1, 2], modes=["continuous", "microbatch"])
    points = s.points()
    assert len(points) == 2 * 2 * 1 * 2 * 2 * 2
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)


def test_resume_skips_finished_runs_and_parallel_equals_serial(tmp_path):
    s = spec()
    first = run_sweep(s, tmp_path / "a", workers=2)
    files = sorted((tmp_path / "a" / "runs").glob("*.json"))
    assert len(files) == 8
    stamps = {f.name: f.stat().st_mtime_ns for f in files}
    files[0].unlink()  # as if interrupted before the last run finished
    seen = []
    again = run_sweep(s, tmp_path / "a", workers=2, progress=lambda d, n, k: seen.append(d))
    assert seen[0] == 7  # resumed with 7 of 8 done
    for f in (tmp_path / "a" / "runs").glob("*.json"):
        if f.name != files[0].name:
            assert f.stat().st_mtime_ns == stamps[f.name]  # not redone
    serial = run_sweep(s, tmp_path / "b", workers=1)
    pd.testing.assert_frame_equal(first.runs, again.runs)
    pd.testing.assert_frame_equal(first.runs, serial.runs)


def test_a_different_spec_in_the_same_folder_is_refused(tmp_path):
    run_sweep(spec(seeds=[0]), tmp_path, workers=1)
    with pytest.raises(InputError, match="different sweep"):
        run_sweep(spec(seeds=[0, 1]), tmp_path, workers=1)


def test_confidence_interval_over_seeds():
    runs = pd.DataFrame(
        {
            "rate_per_s": [1.0] * 3,
            "policy": "fifo",
            "corrector": "none",
            "mode": "continuous",
            "replicas": 1,
            "seed": [0, 1, 2],
            "e2e_p50_s": [1.0, 2.0, 3.0],
        }
    )
    row = aggregate(runs).iloc[0]
    # mean 2, sd 1, n 3: t(0.975, 2) = 4.303 -> half width 4.303 / sqrt(3) = 2.484
    assert row["e2e_p50_s"] == pytest.approx(2.0)
    assert row["e2e_p50_s_ci_high"] - 2.0 == pytest.approx(4.302653 / 3**0.5, rel=1e-5)
    assert row["seeds"] == 3


def test_higher_load_means_higher_latency_and_lower_attainment(tmp_path):
    table = run_sweep(spec(policies=["fifo"], rates_per_s=[1.0, 8.0]), tmp_path).table()
    low, high = table.iloc[0], table.iloc[1]
    assert high["e2e_p99_s"] > low["e2e_p99_s"]
    assert high["e2e_slo_attainment"] <= low["e2e_slo_attainment"]


def test_toml_spec_with_command_line_overrides(tmp_path):
    f = tmp_path / "sweep.toml"
    f.write_text(
        "rate_multipliers = [0.5, 1.0]\npolicies = ['fifo']\nseeds = [3]\n"
        "[workload]\ngenerator = 'poisson'\nrequests = 100\n"
        "[workload.params]\nprompt_cap = 1024\noutput_cap = 1000\n"
        "[sim]\nmax_concurrency = 8\n"
    )
    s = load_spec(f, {"policies": ["sjf"], "sim": {"timeseries_dt_s": 2.0}})
    assert s.policies == ["sjf"] and s.seeds == [3]
    assert s.sim == {"max_concurrency": 8, "timeseries_dt_s": 2.0}
    rates = s.rates()
    assert rates[1] == pytest.approx(2 * rates[0])
    with pytest.raises(InputError, match="not valid TOML"):
        bad = tmp_path / "bad.toml"
        bad.write_text("policies = [")
        load_spec(bad, {})


def test_cli_sweep_writes_tables_and_plots_and_rejects_bad_input(tmp_path):
    out = tmp_path / "sw"
    args = ["sweep", "--rates", "2,4", "--policies", "fifo", "--seeds", "0,1", "-o", out]
    args += ["--generator", "poisson", "--requests", "150", "--param", "prompt_cap=1024"]
    args += ["--param", "output_cap=1000", "--slo-e2e", "20", "--workers", "2"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    for name in ("sweep.csv", "sweep.parquet", "sweep_runs.csv", "sweep_latency.png",
                 "sweep_slo.png", "sweep_tiers.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["rate_per_s"]) == [2, 4] and (table["seeds"] == 2).all()
    for bad, needle in (
        (["--rates", "2,x"], "--rates"),
        (["--policies", "lifo"], "lifo"),
        (["--rates", "-1"], "rates_per_s"),
    ):
        r = run_cli("sweep", *bad, "-o", tmp_path / "bad")
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray not installed")
def test_ray_and_local_pool_give_identical_tables(tmp_path):
    s = spec(seeds=[0])
    local = run_sweep(s, tmp_path / "local", workers=2)
    on_ray = run_sweep(s, tmp_path / "ray", ray_address="local")
    pd.testing.assert_frame_equal(local.runs, on_ray.runs)


def test_sweeps_report_the_prefix_cache_hit_rate_when_caching_is_on(tmp_path):
    sessions = {"generator": "sessions", "requests": 300, "params": {}}
    on = spec(
        workload=sessions,
        policies=["fifo"],
        seeds=[0],
        sim={"engine": {"enable_prefix_caching": True}},
    )
    runs = run_sweep(on, tmp_path / "on", workers=1).runs
    assert (runs["prefix_cache_hit_rate"] > 0.3).all()
    off = run_sweep(spec(workload=sessions, policies=["fifo"], seeds=[0]), tmp_path / "off").runs
    assert "prefix_cache_hit_rate" not in off.columns
