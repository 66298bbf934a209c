"""Generators: large-sample statistics match the configured distributions; determinism; drift."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from driftsched.traces.drift import Drift
from driftsched.traces.generators import generate
from driftsched.traces.paper import PaperConfig
from scipy import stats

from driftsched.ground.errors import InputError, UnknownNameError


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def paper_big():
    return generate("driftsched-paper", requests=60_000, seed=11, learning_requests=20_000)


def test_paper_phase_sizes_follow_the_study_rule():
    assert PaperConfig(requests=3000).learning_count() == 1000
    assert PaperConfig(requests=10_000).learning_count() == 1000
    assert PaperConfig(requests=900).learning_count() == 297
    assert PaperConfig(requests=200).learning_count() == 100
    assert PaperConfig(requests=50).learning_count() == 50
    assert generate("driftsched-paper", requests=3000).meta["learning_requests"] == 1000


def test_paper_category_weights_and_gaps_per_phase(paper_big):
    f = paper_big.frame
    learn, stress = f.iloc[:20_000], f.iloc[20_000:]
    for part, weights in ((learn, [40, 25, 25, 10]), (stress, [10, 20, 40, 30])):
        shares = part["category"].value_counts(normalize=True)
        expected = np.asarray(weights) / 100
        got = shares.reindex(["short_qa", "summary", "technical", "report"]).to_numpy()
        assert np.allclose(got, expected, atol=0.012), got
    gaps = np.diff(f["arrival_s"].to_numpy())
    learn_gaps, stress_gaps = gaps[: 20_000 - 1], gaps[20_000:]
    assert learn_gaps.min() >= 0.05 and learn_gaps.max() <= 0.15
    assert stress_gaps.min() >= 0.005 and stress_gaps.max() <= 0.03
    assert stats.kstest(learn_gaps, stats.uniform(0.05, 0.10).cdf).pvalue > 1e-3
    assert stats.kstest(stress_gaps, stats.uniform(0.005, 0.025).cdf).pvalue > 1e-3


def test_paper_tenants_uniform_and_tier_fixed(paper_big):
    f = paper_big.frame
    shares = f["tenant"].value_counts(normalize=True)
    assert np.allclose(shares.to_numpy(), 1 / 3, atol=0.01)
    pairs = set(zip(f["tenant"], f["tier"], strict=True))
    assert pairs == {
        ("tenant-premium", "premium"),
        ("tenant-standard", "standard"),
        ("tenant-batch", "batch"),
    }


def test_paper_lengths_follow_configured_lognormals_clipped_at_cap(paper_big):
    f, cfg = paper_big.frame, PaperConfig()
    for cat, cap in cfg.caps.items():
        out = f.loc[f["category"] == cat, "output_tokens"].to_numpy()
        params = cfg.output_lengths[cat]
        assert out.max() == cap and (out <= cap).all()
        hit = (out == cap).mean()
        expected_hit = stats.lognorm(params.sigma, scale=params.median).sf(cap - 0.5)
        assert abs(hit - expected_hit) < 0.015, (cat, hit, expected_hit)
        assert abs(np.median(out) - params.median) / params.median < 0.04
        assert (f.loc[f["category"] == cat, "max_tokens"] == cap).all()
    assert f["prompt_tokens"].max() <= cfg.prompt_cap


@pytest.mark.parametrize("name", ["driftsched-paper", "poisson", "gamma"])
def test_same_seed_gives_byte_identical_files(tmp_path, name):
    a = generate(name, requests=2000, seed=5).write(tmp_path / "a.parquet")
    b = generate(name, requests=2000, seed=5).write(tmp_path / "b.parquet")
    c = generate(name, requests=2000, seed=6).write(tmp_path / "c.parquet")
    assert sha(a) == sha(b) != sha(c)
    a_csv = generate(name, requests=500, seed=5).write(tmp_path / "a.csv")
    b_csv = generate(name, requests=500, seed=5).write(tmp_path / "b.csv")
    assert sha(a_csv) == sha(b_csv)


def test_poisson_rate_and_exponential_gaps():
    f = generate("poisson", requests=50_000, rate_per_s=8.0, seed=2).frame
    gaps = np.diff(f["arrival_s"].to_numpy())
    assert abs(gaps.mean() - 1 / 8) / (1 / 8) < 0.02
    assert abs(gaps.std() / gaps.mean() - 1) < 0.03
    assert stats.kstest(gaps, stats.expon(scale=1 / 8).cdf).pvalue > 1e-3


@pytest.mark.parametrize("cv", [0.5, 3.0])
def test_gamma_burstiness_cv(cv):
    f = generate("gamma", requests=80_000, rate_per_s=4.0, cv=cv, seed=3).frame
    gaps = np.diff(f["arrival_s"].to_numpy())
    assert abs(gaps.mean() - 0.25) / 0.25 < 0.05
    assert abs(gaps.std() / gaps.mean() - cv) / cv < 0.08


def test_synthetic_tenant_weights_and_lognormal_lengths():
    f = generate(
        "poisson",
        requests=40_000,
        seed=4,
        tenants="a=premium:0.6,b=batch:0.4",
        output_len="lognormal:median=100,sigma=0.5",
        output_cap=100_000,
    ).frame
    assert abs((f["tenant"] == "a").mean() - 0.6) < 0.01
    assert set(zip(f["tenant"], f["tier"], strict=True)) == {("a", "premium"), ("b", "batch")}
    out = f["output_tokens"].to_numpy()
    assert abs(np.median(out) - 100) < 3
    assert abs(np.log(out).std() - 0.5) < 0.02
    assert (f["max_tokens"] >= f["output_tokens"]).all()


def test_empirical_lengths_resample_another_trace(tmp_path):
    src = generate("poisson", requests=300, seed=1, output_len="lognormal:median=50,sigma=0.1")
    path = src.write(tmp_path / "src.parquet")
    f = generate("poisson", requests=5000, seed=2, output_len=f"empirical:{path}").frame
    assert set(f["output_tokens"]) <= set(src.frame["output_tokens"])


def test_step_drift_shifts_output_lengths_only_where_selected():
    cfg = dict(requests=40_000, seed=9, learning_requests=40_000)
    base = generate("driftsched-paper", **cfg).frame
    drifted = generate(
        "driftsched-paper", drifts=["step:at=20000,unit=request,factor=0.5,category=report"], **cfg
    ).frame
    report = (base["category"] == "report").to_numpy()
    late = np.arange(len(base)) >= 20_000
    b, d = base["output_tokens"].to_numpy(), drifted["output_tokens"].to_numpy()
    assert (b[~(report & late)] == d[~(report & late)]).all()
    ratio = np.median(d[report & late]) / np.median(b[report & late])
    assert 0.45 < ratio < 0.55


def test_ramp_drift_multiplier_and_parsing():
    d = Drift.parse("ramp:start=10,end=20,factor=3,tenant=t1")
    m = d.multiplier(
        np.array([0, 10, 15, 20, 30, 15.0]), np.array(["t1"] * 5 + ["t2"]), np.array(["c"] * 6)
    )
    assert m.tolist() == [1, 1, 2, 3, 3, 1]
    for bad in (
        "wobble:at=1",
        "step:factor=2",
        "step:at=1,factor=-1",
        "ramp:start=5,end=1,factor=2",
        "step:at=1,factor=2,colour=red",
        "step:at=1,factor=2,unit=days",
    ):
        with pytest.raises(InputError):
            Drift.parse(bad)


def test_bad_generator_names_and_params_are_one_line_errors():
    with pytest.raises(UnknownNameError, match="expected one of: driftsched-paper, gamma, poisson"):
        generate("nope")
    with pytest.raises(InputError, match=r"field 'rate_per_s'"):
        generate("poisson", rate_per_s=-1)
    with pytest.raises(InputError, match=r"unknown key 'colour'"):
        generate("driftsched-paper", colour="red")
    with pytest.raises(InputError, match="learning_weights must name exactly the categories"):
        generate("driftsched-paper", learning_weights={"short_qa": 1})


def test_sessions_share_system_prompts_and_history_through_the_prefix_column():
    from driftsched.traces.schema import parse_prefix

    a = generate("sessions", requests=400, seed=3)
    b = generate("sessions", requests=400, seed=3)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    f = a.frame
    assert len(f) == 400 and f["arrival_s"].is_monotonic_increasing
    assert ((f["prompt_tokens"] + f["output_tokens"]) <= 2048).all()
    parsed = [parse_prefix(p) for p in f["prefix"]]
    assert all(p is not None and p[0] == 16 for p in parsed)
    # each chunk id names the prompt's full chunks only
    assert all(len(p[1]) == n // 16 for p, n in zip(parsed, f["prompt_tokens"], strict=True))
    # a session's later turn starts with its earlier turn's chunks (history grows by appending)
    grew = 0
    for _, turns in f.groupby("x_session"):
        ids = [parse_prefix(p)[1] for p in turns["prefix"]]
        for before, after in zip(ids, ids[1:], strict=False):
            assert after[: len(before)] == before
            grew += 1
    assert grew > 50
    # sessions with the same system prompt share its chunks
    firsts = pd.Series([p[1][0] for p in parsed if p[1]])
    assert firsts.duplicated().sum() > 100
