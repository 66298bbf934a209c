"""Small factories for simulator tests: they live in the installed kit
(:mod:`driftsched.sim.checks.strategies`), which the project's tests and a plugin's share —
and the helpers of the live checks gated on schedule replay (``tests/test_live_*.py``)."""

import importlib.util

import pytest
from driftsched.sim.checks.strategies import Scenario, profile, scenarios, trace

__all__ = [
    "LIVE_VLLM",
    "REPLAY_ENGINE",
    "Scenario",
    "assert_replays",
    "profile",
    "replay_settings",
    "scenarios",
    "trace",
]


#: the marks of a test module that runs a real vLLM engine: ``pytestmark = LIVE_VLLM``
LIVE_VLLM = [
    pytest.mark.live,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not importable (pip install -e '.[live-cpu]')",
    ),
]

#: the bundled measured CPU profile whose engine arguments the replay-gated checks run
REPLAY_PROFILE = "cpu-tiny-llama"
#: set over the profile's arguments for a check of semantics: torch.compile off (~35 s saved
#: per engine start on this VM, step times alike within a few percent; replay takes the live
#: steps' own durations, so the gate does not depend on them)
REPLAY_ENGINE = {"enforce_eager": True}


def replay_settings(grid: dict, **settings):
    """:class:`~driftsched.validate.runner.ValidateSettings` of a live check gated on schedule
    replay alone: the bundled profile's engine with :data:`REPLAY_ENGINE` (and the test's own
    ``engine_overrides``), a short warm-up and no speed check (timing is not gated); ``grid``
    over one continuous scenario with no corrector."""
    from driftsched.validate.runner import ValidateSettings
    from driftsched.validate.scenario import Grid

    grid = {"correctors": ["none"], "modes": ["continuous"], "scenarios": 1, **grid}
    overrides = {**REPLAY_ENGINE, **settings.pop("engine_overrides", {})}
    defaults = {"timeout_s": 400, "warmup_steps": 100, "speed_check_steps": 0}
    return ValidateSettings(
        profile=REPLAY_PROFILE,
        grid=Grid(**grid),
        engine_overrides=overrides,
        **{**defaults, **settings},
    )


def assert_replays(row: dict, what: str = "") -> None:
    """Print a live scenario's replay and timing figures, then gate on replay alone: every
    request finished, >= 99% of steps batched as vLLM batched them, per-request E2E error
    P99 <= 1% (docs/validate.md)."""
    print(
        f"{row['key']}{what}: replay {row['replay_identical_share']:.4f} of "
        f"{row['replay_steps_live']} steps identical (first divergence "
        f"{row['replay_first_divergence']}), per-request E2E error P99 "
        f"{row['replay_e2e_request_error_p99']:.4f}; raw E2E P50 {row['e2e_p50_rel_error']:.3f}"
        f", TTFT P50 {row['ttft_p50_rel_error']:.3f}; rescaled E2E P50 "
        f"{row['rescaled_e2e_p50_rel_error']:.3f} (run speed {row['speed_ratio_run']:.3f})"
    )
    assert row["status"] == "complete" and row["live_finished"] == row["requests"]
    assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
    assert row["replay_e2e_request_error_p99"] <= 0.01
