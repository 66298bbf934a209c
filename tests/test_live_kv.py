"""Live check under KV pressure: a vLLM CPU engine with a KV cache too small for the load
(17 blocks of 128 tokens), so requests are preempted and admission waits for free blocks —
the semantics schedule replay must reproduce step for step (it found the simulator admitting
on the first chunk where vLLM 0.32 waits for the whole prompt: docs/model.md).

Its own engine, so ``.ci/run`` runs this file in its own pytest process (one in-process vLLM
engine per process). Replay uses the live steps' measured durations, not the cost model, so the
bundled profile's engine arguments are enough; only replay and the pressure itself are gated.
"""

from __future__ import annotations

import pytest

from tests.simkit import LIVE_VLLM

pytestmark = LIVE_VLLM

KV_BLOCKS = 17  # 16 usable: one 2048-token request fits, a dozen 400-token ones do not


@pytest.fixture(scope="module")
def kv_pressure(tmp_path_factory):
    from driftsched.calibrate.plan import points
    from driftsched.calibrate.profiler import ProfileSettings, warm_up
    from driftsched.calibrate.vllm_engine import InstrumentedEngine
    from driftsched.sim.profile import load_profile
    from driftsched.validate.engines import engine_args
    from driftsched.validate.runner import ValidateSettings, run
    from driftsched.validate.scenario import Grid

    out = tmp_path_factory.mktemp("kv-pressure")
    profile = load_profile("cpu-tiny-llama")
    args, plan = engine_args(profile, out)
    ProfileSettings.model_validate(plan).apply_environment()
    engine = InstrumentedEngine({**args, "num_gpu_blocks_override": KV_BLOCKS})
    try:
        assert engine.num_gpu_blocks == KV_BLOCKS
        warm_up(engine, points(2048, 64, 1024, True), 600)
        grid = Grid(
            policies=["fifo"],
            correctors=["none"],
            modes=["continuous"],
            loads=[2.0],
            requests=120,
            scenarios=1,
            seed=3,
            max_concurrency=16,
        )
        settings = ValidateSettings(
            profile="cpu-tiny-llama", grid=grid, timeout_s=400, warmup_steps=0
        )
        yield run(out, settings, engine=engine), out
    finally:
        engine.shutdown()


def test_replay_matches_vllm_step_for_step_under_kv_pressure(kv_pressure):
    import pandas as pd

    report, out = kv_pressure
    (row,) = report["scenarios"]
    live = pd.read_parquet(out / "scenarios" / row["key"] / "live.parquet")
    print(
        f"{row['key']} with {KV_BLOCKS} KV blocks: {int(live['preemptions'].sum())} preemptions "
        f"live; replay {row['replay_identical_share']:.4f} of {row['replay_steps_live']} steps "
        f"identical (first divergence {row['replay_first_divergence']}), per-request E2E error "
        f"P99 {row['replay_e2e_request_error_p99']:.4f}; raw E2E P50 "
        f"{row['e2e_p50_rel_error']:.3f}, rescaled {row['rescaled_e2e_p50_rel_error']:.3f}"
    )
    assert row["status"] == "complete" and row["live_finished"] == row["requests"]
    assert live["preemptions"].sum() > 0  # the pressure is real
    assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
    assert row["replay_e2e_request_error_p99"] <= 0.01
