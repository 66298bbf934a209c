"""Live checks on a real vLLM engine (CPU build, tiny random-weight model).

Run with ``pytest -m live`` (``.ci/run`` does, after installing the ``live-cpu`` extra); skipped
with a reason when vLLM is not importable. Budgets are for CI's noisy 2-core machine.
"""

from __future__ import annotations

import pytest

from tests.simkit import LIVE_VLLM

pytestmark = LIVE_VLLM


@pytest.fixture(scope="session")
def live_engine(tmp_path_factory):
    """One vLLM engine (tiny model) for the session: profiled, then validated on. Engine
    instances on this VM differ in speed by up to ~5% (the validation speed check shows it),
    which queueing amplifies; using one instance keeps that out of the fidelity figures."""
    from driftsched.calibrate.profiler import ProfileSettings
    from driftsched.calibrate.tinymodel import write_tiny_model
    from driftsched.calibrate.vllm_engine import InstrumentedEngine

    raw = tmp_path_factory.mktemp("raw")
    model = write_tiny_model(raw / "tiny-model")
    settings = ProfileSettings(model=str(model), quick=True, repeats=3, warmup_steps=1500)
    settings.apply_environment()
    engine = InstrumentedEngine(settings.engine_args())
    try:
        yield raw, settings, engine
    finally:
        engine.shutdown()


@pytest.fixture(scope="session")
def quick_profile(live_engine):
    """Profile the tiny model with the short plan (twice each point) and fit it."""
    from driftsched.calibrate.fit import fit, to_profile
    from driftsched.calibrate.profiler import profile, read_raw

    raw, settings, engine = live_engine
    profile(raw, settings, engine=engine)
    frame, env, overheads = read_raw(raw)
    report = fit(frame, source=str(raw))
    return raw, report, to_profile(report, env, overheads, "ci-tiny")


def test_profile_records_every_step_and_the_environment(quick_profile):
    raw, report, prof = quick_profile
    steps = len(report.train) + len(report.test)
    assert steps > 200
    env = prof.provenance
    assert env.kind == "measured" and env.engine_version.startswith("0.32")
    assert prof.engine.num_gpu_blocks > 100 and prof.engine.block_size >= 16
    assert set(report.train["regime"]) == {"prefill", "decode", "mixed"}


def test_held_out_step_time_mape_under_15_percent(quick_profile):
    """Held-out step error, with the machine's noise floor printed beside it (docs/calibrate.md)."""
    _, report, prof = quick_profile
    mape = report.metrics()["test"]["all"]["mape"]
    floor = prof.fit_quality["noise_floor"]
    print(
        f"held-out MAPE {mape:.4f} on {len(report.test)} steps, time error "
        f"{report.metrics()['test']['all']['time_error']:+.4f}; noise floor: a perfect model "
        f"would score {floor['repeat_floor_mape']:.4f} ({floor['repeat_floor_steps']} steps); "
        f"identical steps {floor['identical_step_mape']:.4f} ({floor['steps']} steps), "
        f"episode drift {floor['episode_drift']:.4f}"
    )
    assert floor["steps"] > 100 and 0 < floor["identical_step_mape"] < mape + 0.05
    assert floor["repeat_floor_steps"] > 500
    assert mape < 0.15
    assert prof.fit_quality["held_out"]["all"]["mape"] == pytest.approx(mape, abs=1e-5)


def test_profile_resumes_without_redoing_episodes(quick_profile):
    from driftsched.calibrate.profiler import ProfileSettings, profile

    raw, _, _ = quick_profile
    before = sorted(p.stat().st_mtime_ns for p in (raw / "parts").glob("ep-*.parquet"))
    settings = ProfileSettings(
        model=str(raw / "tiny-model"), quick=True, repeats=3, warmup_steps=1500
    )

    def no_engine(args):
        raise AssertionError("a complete folder must not start an engine")

    profile(raw, settings, engine_factory=no_engine)
    after = sorted(p.stat().st_mtime_ns for p in (raw / "parts").glob("ep-*.parquet"))
    assert before == after


@pytest.fixture(scope="session")
def live_validation(quick_profile, live_engine, tmp_path_factory):
    """calibrate (short plan) -> validate: fifo vs sjf under contention, 3 scenarios, on the
    engine instance that was profiled."""
    from driftsched.validate.runner import ValidateSettings, run
    from driftsched.validate.scenario import Grid

    raw, _, prof = quick_profile
    engine = live_engine[2]
    path = prof.write(raw / "ci-tiny.json")
    out = tmp_path_factory.mktemp("validate")
    grid = Grid(
        policies=["fifo", "sjf"],
        correctors=["none"],
        modes=["continuous"],
        # sustained contention, away from the knee: just past capacity (x1.5 of the rough
        # capacity estimate) a few percent of machine-speed drift between profiling and this
        # run is amplified several-fold in queueing delay (docs/validate.md)
        loads=[2.0, 3.0],
        requests=160,
        scenarios=3,
        seed=0,
        max_concurrency=16,
    )
    settings = ValidateSettings(profile=str(path), grid=grid, timeout_s=400, rescale=True)
    return run(out, settings, engine=engine)


def test_live_validation_errors_within_ci_budget(live_validation):
    """CI gates on the summary (mean over the 3 scenarios): a single scenario carries the
    machine's minute-to-minute speed drift (the same live scenario run twice differed ~10%).

    The gated figures are the simulator rescaled by each run's measured speed (``rescale``,
    explicit and reported: docs/validate.md): this VM's speed itself moves by 10-25% over
    minutes (a fixed CPU loop shows it, with no vLLM involved), and schedule replay (below)
    shows the engine and gateway model exact, so the raw figure measures the host's drift as
    much as the simulator. The raw figures are printed beside them."""
    report = live_validation
    assert report["status"] == "complete" and len(report["scenarios"]) == 3
    for row in report["scenarios"]:
        print(
            f"{row['key']}: E2E P50 {row['e2e_p50_rel_error']:.3f} P99 "
            f"{row['e2e_p99_rel_error']:.3f} TTFT P50 {row['ttft_p50_rel_error']:.3f}; "
            f"run speed {row['speed_ratio_run']:.3f}, rescaled E2E P50 "
            f"{row['rescaled_e2e_p50_rel_error']:.3f} P99 {row['rescaled_e2e_p99_rel_error']:.3f}"
            f"; host {row['host_slowdown']}"
            f"; replay {row['replay_identical_share']:.4f} of {row['replay_steps_live']} steps "
            f"identical (first divergence {row['replay_first_divergence']}), per-request E2E "
            f"error P99 {row['replay_e2e_request_error_p99']:.4f}; engine core share of the "
            f"step cycle {row['engine_core_share']:.3f}"
        )
        assert row["live_finished"] == row["requests"]
    print(
        f"speed check: {report['speed_ratio_before']} before, {report['speed_ratio_after']} after"
    )
    s = report["summary"]
    print(
        f"summary: raw E2E P50 {s['e2e_p50_rel_error']:.3f} P99 {s['e2e_p99_rel_error']:.3f}; "
        f"run speed {s['speed_ratio_run']:.3f}; rescaled E2E P50 "
        f"{s['rescaled_e2e_p50_rel_error']:.3f} P99 {s['rescaled_e2e_p99_rel_error']:.3f}"
    )
    assert report["settings"]["rescale"] is True
    assert s["rescaled_e2e_p50_rel_error"] <= 0.15
    assert s["rescaled_e2e_p99_rel_error"] <= 0.25
    assert {r["policy"] for r in report["scenarios"]} == {"fifo", "sjf"}


def test_live_validation_ranks_scenarios_like_the_engine(live_validation):
    """Every pair of scenarios whose live medians differ by more than the live-vs-live noise
    floor (10%) is ordered alike by the simulator. Closer pairs are reported, not gated: two
    live runs of one scenario differ by up to ~10% on this machine, so their order is noise
    (seen: sjf at x2 and x3 overload, live medians 1.235 s and 1.201 s)."""
    s = live_validation["summary"]
    print(
        f"ranking tau {s['ranking_agreement']}, pairs {s['ranking_pairs_agree']}/"
        f"{s['ranking_pairs']}, distinct pairs {s['ranking_pairs_distinct_agree']}/"
        f"{s['ranking_pairs_distinct']} (raw); rescaled: distinct pairs "
        f"{s['rescaled_ranking_pairs_distinct_agree']}/{s['rescaled_ranking_pairs_distinct']}"
    )
    assert s["ranking_pairs"] == 3
    assert s["rescaled_ranking_pairs_distinct"] >= 1  # fifo vs sjf under overload always differ
    # gated like the errors above: with each run's measured speed (rescale) taken into account
    assert s["rescaled_ranking_pairs_distinct_agree"] == s["rescaled_ranking_pairs_distinct"]


def test_live_schedule_replay_matches_the_engine_step_for_step(live_validation):
    """Replay takes timing out: the simulator's gateway and engine model, fed the live steps'
    own durations, must batch what vLLM batched, step for step, and land every request at
    the live timestamps."""
    for row in live_validation["scenarios"]:
        assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
        assert row["replay_e2e_request_error_p99"] <= 0.01
