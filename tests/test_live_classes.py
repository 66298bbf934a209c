"""Live scenario classes gated on schedule replay alone: micro-batch dispatch, long prompts that
need chunked prefill, and the policy laboratory (a baseline with hooks, a plugin policy and a
plugin corrector) on a real vLLM CPU engine.

Replay feeds the simulator the live steps' measured durations, so these checks judge the
engine and gateway *semantics* and need no profile of this machine: the bundled profile's
engine arguments are enough (torch.compile off: :data:`tests.simkit.REPLAY_ENGINE`), and the
machine need not be quiet (``.ci/run`` runs this file beside the unit tests, in its own pytest
process: one in-process vLLM engine per process). The timing-gated checks (fit quality,
rescaled errors, ranking) are ``tests/test_live.py``.
"""

from __future__ import annotations

import pytest

from tests.simkit import LIVE_VLLM, REPLAY_ENGINE, assert_replays, replay_settings

pytestmark = LIVE_VLLM


@pytest.fixture(scope="module")
def class_engine(tmp_path_factory):
    """One vLLM engine for this module's three runs (one start instead of three), built as
    :func:`~tests.simkit.replay_settings` would build it."""
    from driftsched.sim.profile import load_profile
    from driftsched.validate.engines import engine_args, start_engine

    out = tmp_path_factory.mktemp("classes")
    settings = replay_settings({})
    args, plan = engine_args(load_profile(settings.profile), out)
    engine = start_engine(
        {**args, **REPLAY_ENGINE}, plan, settings.warmup_steps, log_path=out / "engine.log"
    )
    try:
        yield engine
    finally:
        engine.shutdown()


@pytest.fixture(scope="module")
def live_microbatch(class_engine, tmp_path_factory):
    """One micro-batch scenario (the study's worker: B = 32, 10 ms)."""
    from driftsched.validate.runner import run

    grid = {"policies": ["sjf"], "correctors": ["ewma"], "modes": ["microbatch"]}
    settings = replay_settings({**grid, "loads": [2.0], "requests": 110, "seed": 1})
    return run(tmp_path_factory.mktemp("validate-microbatch"), settings, engine=class_engine)


def test_live_microbatch_replay_matches_the_engine_step_for_step(live_microbatch):
    """Micro-batch dispatch (batches formed by the same Dispatcher, run to completion) replays
    step for step as well."""
    (row,) = live_microbatch["scenarios"]
    assert row["mode"] == "microbatch"
    assert_replays(row)


@pytest.fixture(scope="module")
def live_long_prompts(class_engine, live_microbatch, tmp_path_factory):
    """Long prompts that need chunked prefill (1,000-1,900 tokens against a 1,024-token step
    budget: every prompt is split, chunks after context share steps with decodes), weighted
    shares over three tiers."""
    from driftsched.traces.synthetic import SyntheticConfig, generate_synthetic
    from driftsched.validate.runner import run

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
    grid = {"policies": ["weighted"], "loads": [2.0], "requests": 60, "trace": str(path)}
    return run(out / "report", replay_settings(grid, timeout_s=300), engine=class_engine)


def test_live_chunked_prefill_replays_step_for_step(live_long_prompts):
    """Chunked prefill (chunks after context, mixed with decodes) batches as vLLM does."""
    (row,) = live_long_prompts["scenarios"]
    assert_replays(row)


@pytest.fixture(scope="module")
def live_policy_lab(class_engine, live_long_prompts, tmp_path_factory):
    """The policy laboratory live: the VTC baseline (hooks: on_dispatch/on_finish, gateway
    state) and the example plugin named by its file spec, with a plugin corrector — the very
    objects the simulator ran."""
    from driftsched.validate.runner import run

    from tests.conftest import REPO

    ltwf = REPO / "examples/driftsched-ltwf/driftsched_ltwf/policy.py"
    grid = {
        "policies": ["vtc", f"{ltwf}:LongestWaitingTenantFirst"],
        "correctors": ["tests.test_plugins:HalfCorrector"],
        "loads": [2.0],
        "requests": 60,
        "scenarios": 2,
        "seed": 2,
    }
    out = tmp_path_factory.mktemp("validate-policy-lab")
    return run(out, replay_settings(grid, timeout_s=300), engine=class_engine)


def test_live_baseline_and_plugin_policies_replay_step_for_step(live_policy_lab):
    """A baseline with hooks and a plugin policy run live through the same objects, every
    request finishes, and the replay batches what vLLM batched."""
    rows = live_policy_lab["scenarios"]
    assert {r["policy"].rsplit(":", 1)[-1] for r in rows} == {"vtc", "LongestWaitingTenantFirst"}
    for row in rows:
        assert_replays(row)
