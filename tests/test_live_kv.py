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

from tests.simkit import LIVE_VLLM, assert_replays, replay_settings

pytestmark = LIVE_VLLM

KV_BLOCKS = 17  # 16 usable: one 2048-token request fits, a dozen 400-token ones do not


@pytest.fixture(scope="module")
def kv_pressure(tmp_path_factory):
    from driftsched.validate.runner import run

    out = tmp_path_factory.mktemp("kv-pressure")
    grid = {"policies": ["fifo"], "loads": [2.0], "requests": 90, "seed": 3}
    settings = replay_settings(grid, engine_overrides={"num_gpu_blocks_override": KV_BLOCKS})
    return run(out, settings), out


def test_replay_matches_vllm_step_for_step_under_kv_pressure(kv_pressure):
    import pandas as pd

    report, out = kv_pressure
    assert report["num_gpu_blocks"] == KV_BLOCKS  # the engine's pool, and the simulator's
    (row,) = report["scenarios"]
    live = pd.read_parquet(out / "scenarios" / row["key"] / "live.parquet")
    preemptions = int(live["preemptions"].sum())
    assert_replays(row, f" with {KV_BLOCKS} KV blocks, {preemptions} preemptions live")
    assert preemptions > 0  # the pressure is real
