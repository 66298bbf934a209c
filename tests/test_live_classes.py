"""Live scenario classes gated on schedule replay alone: micro-batch dispatch, long prompts that
need chunked prefill, and the policy laboratory (a baseline with hooks, a plugin policy and a
plugin corrector) on a real vLLM CPU engine.

Replay feeds the simulator the live steps' measured durations, so these checks judge the
engine and gateway *semantics* and need no profile of this machine: the bundled profile's
engine arguments are enough, and the machine need not be quiet (``.ci/run`` runs this file
beside the unit tests, in its own pytest process: one in-process vLLM engine per process).
The timing-gated checks (fit quality, rescaled errors, ranking) are ``tests/test_live.py``.
"""

from __future__ import annotations

import pytest

from tests.simkit import LIVE_VLLM

pytestmark = LIVE_VLLM

PROFILE = "cpu-tiny-llama"


@pytest.fixture(scope="module")
def class_engine(tmp_path_factory):
    """One vLLM engine with the bundled profile's arguments, warmed up, for this module."""
    from driftsched.sim.profile import load_profile
    from driftsched.validate.engines import engine_args, start_engine

    out = tmp_path_factory.mktemp("classes")
    args, plan = engine_args(load_profile(PROFILE), out)
    engine = start_engine(args, plan, warmup_steps=600, log_path=out / "engine.log")
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.fixture(scope="module")
def live_microbatch(class_engine, tmp_path_factory):
    """One micro-batch scenario (the study's worker: B = 32, 10 ms)."""
    from driftsched.validate.runner import ValidateSettings, run
    from driftsched.validate.scenario import Grid

    grid = Grid(
        policies=["sjf"],
        correctors=["ewma"],
        modes=["microbatch"],
        loads=[2.0],
        requests=160,
        scenarios=1,
        seed=1,
        max_concurrency=16,
    )
    out = tmp_path_factory.mktemp("validate-microbatch")
    settings = ValidateSettings(profile=PROFILE, grid=grid, timeout_s=400)
    return run(out, settings, engine=class_engine)


def test_live_microbatch_replay_matches_the_engine_step_for_step(live_microbatch):
    """Micro-batch dispatch (batches formed by the same Dispatcher, run to completion) replays
    step for step as well."""
    (row,) = live_microbatch["scenarios"]
    print(
        f"{row['key']}: replay {row['replay_identical_share']:.4f} of {row['replay_steps_live']} "
        f"steps identical, per-request E2E error P99 {row['replay_e2e_request_error_p99']:.4f}; "
        f"raw E2E P50 {row['e2e_p50_rel_error']:.3f}, rescaled "
        f"{row['rescaled_e2e_p50_rel_error']:.3f} (run speed {row['speed_ratio_run']:.3f})"
    )
    assert row["status"] == "complete" and row["live_finished"] == row["requests"]
    assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
    assert row["replay_e2e_request_error_p99"] <= 0.01


@pytest.fixture(scope="module")
def live_long_prompts(class_engine, live_microbatch, tmp_path_factory):
    """Long prompts that need chunked prefill (1,000-1,900 tokens against a 1,024-token step
    budget: every prompt is split, chunks after context share steps with decodes), weighted
    shares over three tiers."""
    from driftsched.traces.synthetic import SyntheticConfig, generate_synthetic
    from driftsched.validate.runner import ValidateSettings, run
    from driftsched.validate.scenario import Grid

    out = tmp_path_factory.mktemp("validate-long")
    trace = generate_synthetic(
        SyntheticConfig(
            requests=60,
            seed=3,
            prompt_len="lognormal:median=1400,sigma=0.2",
            output_len="lognormal:median=40,sigma=0.5",
        )
    )
    assert (trace.frame["prompt_tokens"] > 1024).mean() > 0.6
    path = trace.write(out / "long-prompts.parquet")
    grid = Grid(
        policies=["weighted"],
        correctors=["none"],
        modes=["continuous"],
        loads=[2.0],
        requests=60,
        scenarios=1,
        trace=str(path),
        max_concurrency=16,
    )
    settings = ValidateSettings(profile=PROFILE, grid=grid, timeout_s=300)
    return run(out / "report", settings, engine=class_engine)


def test_live_chunked_prefill_replays_step_for_step(live_long_prompts):
    """Chunked prefill (chunks after context, mixed with decodes) batches as vLLM does."""
    (row,) = live_long_prompts["scenarios"]
    print(
        f"{row['key']}: replay {row['replay_identical_share']:.4f} of {row['replay_steps_live']} "
        f"steps identical (first divergence {row['replay_first_divergence']}), per-request E2E "
        f"error P99 {row['replay_e2e_request_error_p99']:.4f}; raw E2E P50 "
        f"{row['e2e_p50_rel_error']:.3f}, TTFT P50 {row['ttft_p50_rel_error']:.3f}; rescaled "
        f"E2E P50 {row['rescaled_e2e_p50_rel_error']:.3f} (run speed {row['speed_ratio_run']:.3f})"
    )
    assert row["status"] == "complete" and row["live_finished"] == row["requests"]
    assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
    assert row["replay_e2e_request_error_p99"] <= 0.01


@pytest.fixture(scope="module")
def live_policy_lab(class_engine, live_long_prompts, tmp_path_factory):
    """The policy laboratory live: the VTC baseline (hooks: on_dispatch/on_finish, gateway
    state) and the example plugin named by its file spec, with a plugin corrector — the very
    objects the simulator ran."""
    from driftsched.validate.runner import ValidateSettings, run
    from driftsched.validate.scenario import Grid

    from tests.conftest import REPO

    ltwf = REPO / "examples/driftsched-ltwf/driftsched_ltwf/policy.py"
    grid = Grid(
        policies=["vtc", f"{ltwf}:LongestWaitingTenantFirst"],
        correctors=["tests.test_plugins:HalfCorrector"],
        modes=["continuous"],
        loads=[2.0],
        requests=60,
        scenarios=2,
        seed=2,
        max_concurrency=16,
    )
    out = tmp_path_factory.mktemp("validate-policy-lab")
    settings = ValidateSettings(profile=PROFILE, grid=grid, timeout_s=300)
    return run(out, settings, engine=class_engine)


def test_live_baseline_and_plugin_policies_replay_step_for_step(live_policy_lab):
    """A baseline with hooks and a plugin policy run live through the same objects, every
    request finishes, and the replay batches what vLLM batched."""
    rows = live_policy_lab["scenarios"]
    assert {r["policy"].rsplit(":", 1)[-1] for r in rows} == {"vtc", "LongestWaitingTenantFirst"}
    for row in rows:
        print(
            f"{row['key']}: replay {row['replay_identical_share']:.4f} of "
            f"{row['replay_steps_live']} steps identical; raw E2E P50 "
            f"{row['e2e_p50_rel_error']:.3f}, TTFT P50 {row['ttft_p50_rel_error']:.3f}"
        )
        assert row["status"] == "complete" and row["live_finished"] == row["requests"]
        assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
        assert row["replay_e2e_request_error_p99"] <= 0.01
