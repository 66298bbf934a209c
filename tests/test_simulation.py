"""The simulator end to end: exact small logs, invariants over random traces and configs
(Hypothesis), an M/D/1 analytic check, microbatch semantics, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from driftsched.sim import simulate
from driftsched.traces.generators import generate
from hypothesis import HealthCheck, given, settings

from driftsched.ground.errors import InputError
from tests.simkit import profile, scenarios, trace


def test_exact_log_continuous_fixed_steps():
    tr = trace([(0.0, "standard", "summary", 6, 3), (0.0, "premium", "summary", 5, 2)])
    p = profile(1.0, block_size=4, max_num_batched_tokens=8, max_num_seqs=4, max_model_len=64)
    rec = simulate(tr, profile=p, policy="fifo").records.set_index("request_id")
    # step 0 [0,1): r0 prefills 6, r1 a chunk of 2; step 1: r0 decodes, r1 ends its prefill;
    # step 2: both produce their last token
    assert rec["dispatch_s"].tolist() == [0.0, 0.0]
    assert rec["first_token_s"].tolist() == [1.0, 2.0]
    assert rec["finish_s"].tolist() == [3.0, 3.0] and rec["done_s"].tolist() == [3.0, 3.0]
    assert rec.loc["r0", "tpot_s"] == 1.0 and rec.loc["r1", "tpot_s"] == 1.0
    assert rec["generated_tokens"].tolist() == [3, 2]


def test_priority_dispatch_order_with_one_slot():
    tr = trace(
        [
            (0.0, "batch", "summary", 4, 2),
            (0.5, "batch", "summary", 4, 2),
            (0.6, "premium", "summary", 4, 2),
        ]
    )
    rec = simulate(tr, profile=profile(1.0), policy="priority", max_concurrency=1).records
    # r0 runs [0, 2); at 2 both r1 (batch) and r2 (premium) wait: premium goes first
    assert rec["dispatch_s"].tolist() == [0.0, 4.0, 2.0]
    assert rec["dispatch_order"].tolist() == [0, 2, 1]


def test_microbatch_waits_for_the_batch_and_returns_it_together():
    tr = trace(
        [
            (0.0, "standard", "summary", 4, 1),
            (0.004, "standard", "summary", 4, 5),
            (0.02, "standard", "summary", 4, 1),
        ]
    )
    res = simulate(tr, profile=profile(1.0), mode="microbatch", batch_size=32, batch_wait_s=0.010)
    rec = res.records
    # r0 opens a batch at 0, r1 joins at 0.004, the 10 ms wait ends at 0.010; r2 waits
    assert rec["batch_id"].tolist() == [0, 0, 1]
    assert rec["dispatch_s"].tolist()[:2] == [0.010, 0.010]
    assert rec.loc[0, "finish_s"] == pytest.approx(1.010)  # r0's own finish
    assert rec.loc[0, "done_s"] == rec.loc[1, "done_s"] == pytest.approx(5.010)  # batch end
    # r2 opens the next batch when the worker is back, then waits 10 ms for it to fill
    assert rec.loc[2, "dispatch_s"] == pytest.approx(5.020)


def test_microbatch_full_batch_does_not_wait():
    tr = trace([(0.0, "standard", "summary", 4, 1)] * 3)
    rec = simulate(tr, profile=profile(1.0), mode="microbatch", batch_size=2).records
    assert rec["batch_id"].tolist() == [0, 0, 1]
    # a full batch goes at once; the lone third request waits 10 ms for company
    assert rec["dispatch_s"].tolist() == [0.0, 0.0, pytest.approx(1.01)]


def test_md1_mean_wait_matches_theory():
    """One request at a time, every request exactly k fixed-length steps: an M/D/1 queue."""
    step_s, k, rate = 0.01, 4, 17.5  # service 0.04 s, rho = 0.7
    tr = generate(
        "poisson",
        requests=30_000,
        rate_per_s=rate,
        seed=7,
        prompt_len="lognormal:median=8,sigma=0",
        output_len=f"lognormal:median={k},sigma=0",
    )
    res = simulate(tr, profile=profile(step_s), max_concurrency=1)
    service = k * step_s
    rho = rate * service
    expected = rho * service / (2 * (1 - rho))
    got = res.records["queue_wait_s"].mean()
    assert abs(got - expected) / expected < 0.06, (got, expected)
    assert np.allclose(res.records["finish_s"] - res.records["dispatch_s"], service)


def test_oracle_has_zero_estimate_error_and_is_labelled():
    tr = generate("driftsched-paper", requests=300, seed=1)
    res = simulate(tr, corrector="oracle", profile=profile(0.01))
    s = res.summary().iloc[0]
    assert s["est_mae_tokens"] == 0 and s["class_agreement"] == 1.0
    assert res.meta["oracle"] and "[ORACLE]" in res.label


def test_horizon_reports_unfinished_requests():
    tr = trace(
        [
            (0.0, "standard", "summary", 4, 3),
            (0.0, "standard", "summary", 4, 30),
            (50.0, "standard", "summary", 4, 3),
        ]
    )
    res = simulate(tr, profile=profile(1.0), horizon_s=10.0)
    assert res.records["finished"].tolist() == [True, False, False]
    s = res.summary().iloc[0]
    assert s["finished"] == 1 and s["unfinished"] == 2


def test_oversize_requests_are_refused_or_dropped():
    tr = trace([(0.0, "standard", "summary", 60, 10), (0.0, "standard", "summary", 4, 3)])
    p = profile(1.0, max_model_len=64)
    with pytest.raises(
        InputError,
        match=r"row 1 \(request 'r0'\).*exceeds the engine's "
        r"max_model_len 64",
    ):
        simulate(tr, profile=p)
    res = simulate(tr, profile=p, oversize="drop")
    assert len(res.records) == 1 and res.meta["dropped_oversize"] == 1


def test_bad_config_is_one_line():
    tr = trace([(0.0, "standard", "summary", 4, 3)])
    with pytest.raises(InputError, match="field 'mode'"):
        simulate(tr, mode="batchy")
    with pytest.raises(InputError, match="unknown policy 'lifo'"):
        simulate(tr, policy="lifo")


# -- invariants over random traces and configs -----------------------------------------------
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants_over_random_scenarios(case):
    rows, config = case.rows, case.config
    res = case.run()
    rec = res.records
    # none lost or duplicated; each finished exactly once
    assert len(rec) == len(rows) and rec["request_id"].is_unique and rec["finished"].all()
    assert sorted(rec["dispatch_order"]) == list(range(len(rows)))
    # nothing happens before it may
    assert (rec["dispatch_s"] >= rec["arrival_s"]).all()
    assert (rec["scheduled_s"] >= rec["dispatch_s"]).all()
    assert (rec["first_token_s"] > rec["scheduled_s"]).all()
    assert (rec["finish_s"] >= rec["first_token_s"]).all()
    assert (rec["done_s"] >= rec["finish_s"]).all()
    # tokens generated equal output_tokens
    assert (rec["generated_tokens"] == rec["output_tokens"]).all()
    # time never goes back; KV never exceeds capacity
    assert res.series["time_s"].is_monotonic_increasing
    assert res.corrector_series["time_s"].is_monotonic_increasing
    assert (res.series["kv_utilisation"] <= 1.0).all()
    if config["mode"] == "continuous" and config["policy"] == "fifo":
        order = rec.sort_values("dispatch_order").index.to_numpy()
        assert (np.diff(order) > 0).all()
    if config["mode"] == "microbatch":
        sizes = rec.groupby("batch_id").size()
        assert (sizes <= config["batch_size"]).all()
        ends = rec.groupby("batch_id")["done_s"].nunique()
        assert (ends == 1).all()
        assert np.allclose(
            rec.groupby("batch_id")["done_s"].first(), rec.groupby("batch_id")["finish_s"].max()
        )
    if config["corrector"] == "oracle":
        assert (rec["estimate_tokens"] == rec["output_tokens"]).all()
    # the reference engine gives identical records, and a rerun is identical
    pd.testing.assert_frame_equal(rec, case.run(engine_impl="reference").records)
    pd.testing.assert_frame_equal(rec, case.run().records)


def test_same_inputs_give_byte_identical_files(tmp_path):
    tr = generate("driftsched-paper", requests=400, seed=3)
    for name in ("a", "b"):
        simulate(tr, policy="sjf", corrector="ewma", mode="microbatch").write(
            tmp_path / name, plots_too=False
        )
    for f in (
        "records.parquet",
        "summary.csv",
        "summary.json",
        "timeseries.parquet",
        "corrector.parquet",
        "summary_by_tier.csv",
    ):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_progress_reports_finished_requests_in_order_and_at_the_end():
    tr = generate("driftsched-paper", requests=1000, seed=4)
    calls = []
    res = simulate(tr, mode="continuous", progress=lambda done, total: calls.append((done, total)))
    assert {total for _, total in calls} == {1000}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 1000 and len(done) >= 100
    # reporting changes nothing
    pd.testing.assert_frame_equal(res.records, simulate(tr, mode="continuous").records)


def test_prefix_caching_hits_shared_prompts_and_cuts_ttft():
    """The sessions workload on the bundled prior with prefix caching on: hits on system
    prompts and history, a lower TTFT than without, every request finished; on a trace with
    no prefix column the same engine hits nothing (no preemption here)."""
    from driftsched.traces.generators import generate

    tr = generate("sessions", requests=600, seed=1, rate_per_s=4.0)
    on = simulate(tr, policy="fifo", engine={"enable_prefix_caching": True})
    off = simulate(tr, policy="fifo")
    stats = on.meta["prefix_cache"]
    assert stats["hit_rate"] > 0.3 and stats["hit_tokens"] > 0
    assert "prefix_cache" not in off.meta
    assert on.records["finished"].all() and off.records["finished"].all()
    assert on.records["ttft_s"].mean() < 0.9 * off.records["ttft_s"].mean()
    plain = tr.frame.drop(columns=["prefix"])
    from driftsched.traces.trace import Trace

    none = simulate(Trace.from_frame(plain, "no prefixes"), engine={"enable_prefix_caching": True})
    hits = none.meta["prefix_cache"]["hit_tokens"]
    assert (hits > 0) == (none.records["preemptions"].sum() > 0)
    assert none.meta["prefix_cache"]["hit_rate"] < 0.01


def test_prefix_affinity_router_keeps_sessions_on_their_cache():
    from driftsched.traces.generators import generate

    tr = generate("sessions", requests=800, seed=2, rate_per_s=8.0, system_prompts=16)
    rates = {}
    for router in ("round_robin", "prefix_affinity"):
        r = simulate(
            tr, replicas=4, router=router, max_concurrency=16,
            engine={"enable_prefix_caching": True},
        )  # fmt: skip
        assert r.records["finished"].all()
        rates[router] = r.meta["prefix_cache"]["hit_rate"]
    assert rates["prefix_affinity"] > rates["round_robin"] + 0.1, rates


def test_trace_strings_are_read_as_astype_str_gives_them():
    """The arrival cursor reads a categorical column through its categories (fast path); what
    it hands the gateway is exactly ``astype(str)``'s strings, missing values and non-string
    categories included."""
    from driftsched.sim.arrivalcursor import _strings

    columns = [
        pd.Series(["b", "a", "b", "c"], dtype="category"),
        pd.Series(["a", None, "b"], dtype="category"),  # a missing value (kept): the slow path
        pd.Series([1, 2, 1], dtype="category"),  # integer tiers
        pd.Series([], dtype="category"),
        pd.Series(["x", "y"], dtype="string"),
    ]
    for column in columns:
        expected = column.astype(str).tolist()
        got = _strings(column)
        assert [(type(v), v) for v in got] == [(type(v), v) for v in expected]
