"""Live check with two replicas: two vLLM CPU engines, each in its own worker process pinned to
its own core (validate/worker.py), stepping in parallel behind one gateway
(validate/cluster.py) — continuous dispatch and micro-batches, least-outstanding routing.
Schedule replay must reproduce every step of both engines.

Its own engines, so ``.ci/run`` runs this file in its own pytest process. Replay uses the live
steps' measured durations, not the cost model, so the bundled profile's engine arguments are
enough; replay is gated, the raw and rescaled errors are printed.
"""

from __future__ import annotations

import pytest

from tests.simkit import LIVE_VLLM

pytestmark = LIVE_VLLM


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory):
    from driftsched.validate.runner import ValidateSettings, run
    from driftsched.validate.scenario import Grid

    out = tmp_path_factory.mktemp("replicas")
    grid = Grid(
        policies=["sjf"],
        correctors=["ewma"],
        modes=["continuous", "microbatch"],
        loads=[1.5],
        requests=120,
        scenarios=2,
        max_concurrency=16,
    )
    settings = ValidateSettings(
        profile="cpu-tiny-llama",
        grid=grid,
        replicas=2,
        router="least_outstanding",
        timeout_s=400,
        warmup_steps=600,
    )
    return run(out, settings), out


def test_two_vllm_replicas_replay_step_for_step(two_replicas):
    import pandas as pd

    report, out = two_replicas
    assert report["status"] == "complete"
    assert len({w["pid"] for w in report["workers"]}) == 2
    assert len({w["core"] for w in report["workers"]}) == 2  # one core each
    print(
        f"speed check per replica: {report['speed_ratio_before']} before, "
        f"{report['speed_ratio_after']} after"
    )
    for row in report["scenarios"]:
        steps = pd.read_parquet(out / "scenarios" / row["key"] / "live_steps.parquet")
        per = steps.groupby("replica").size().to_dict()
        print(
            f"{row['key']} on 2 replicas (steps {per}): replay "
            f"{row['replay_identical_share']:.4f} of {row['replay_steps_live']} steps identical "
            f"(first divergence {row['replay_first_divergence']}), per-request E2E error P99 "
            f"{row['replay_e2e_request_error_p99']:.4f}; raw E2E P50 "
            f"{row['e2e_p50_rel_error']:.3f} TTFT P50 {row['ttft_p50_rel_error']:.3f}; "
            f"rescaled E2E P50 "
            f"{row['rescaled_e2e_p50_rel_error']:.3f} (run speed {row['speed_ratio_run']:.3f}); "
            f"engine core share {row['engine_core_share']:.3f}"
        )
        assert row["status"] == "complete" and row["live_finished"] == row["requests"]
        assert set(per) == {0, 1}
        assert row["replay_identical_share"] >= 0.99, row["replay_first_divergence"]
        assert row["replay_e2e_request_error_p99"] <= 0.01
