"""Live checks with two replicas: two vLLM CPU engines, each in its own worker process pinned
to its own core (validate/worker.py), stepping in parallel behind one gateway
(validate/cluster.py) — continuous dispatch and micro-batches behind least-outstanding routing,
and chat sessions with prefix caching on behind prefix-affinity routing.
Schedule replay must reproduce every step of both engines. (``least_kv`` reads the engines'
pools, which live in the workers: refused live, before any engine starts.)

Its own engines, so ``.ci/run`` runs this file in its own pytest process. Replay uses the live
steps' measured durations, not the cost model, so the bundled profile's engine arguments are
enough; replay is gated, the raw and rescaled errors are printed.
"""

from __future__ import annotations

import pytest

from tests.simkit import LIVE_VLLM, assert_replays, replay_settings
from tests.test_live_prefix import assert_cache_saved_work, sessions_trace

pytestmark = LIVE_VLLM


def assert_both_replicas_replay(report: dict, out) -> None:
    """Two worker processes on two cores, both stepping in every scenario, every step of
    both replayed."""
    import pandas as pd

    assert report["status"] == "complete"
    assert len({w["pid"] for w in report["workers"]}) == 2
    assert len({w["core"] for w in report["workers"]}) == 2  # one core each
    for row in report["scenarios"]:
        steps = pd.read_parquet(out / "scenarios" / row["key"] / "live_steps.parquet")
        per = steps.groupby("replica").size().to_dict()
        assert_replays(row, f" on 2 replicas behind {report['settings']['router']} (steps {per})")
        assert set(per) == {0, 1}


@pytest.fixture(scope="module", params=["least_outstanding", "round_robin"])
def two_replicas(request, tmp_path_factory):
    """sjf + ewma on two engines: behind least-outstanding routing in both modes, and
    micro-batches behind round robin (where a micro-batch deadline the loop noticed late used to
    let in a request the simulator put in the next batch: docs/validate.md)."""
    from driftsched.validate.runner import run

    router = request.param
    modes = ["continuous", "microbatch"] if router == "least_outstanding" else ["microbatch"]
    out = tmp_path_factory.mktemp(f"replicas-{router}")
    grid = {
        "policies": ["sjf"],
        "correctors": ["ewma"],
        "modes": modes,
        "loads": [1.5],
        "requests": 90,
        "scenarios": len(modes),
    }
    settings = replay_settings(grid, replicas=2, router=router)
    return run(out, settings), out


def test_two_vllm_replicas_replay_step_for_step(two_replicas):
    report, out = two_replicas
    assert "microbatch" in {r["mode"] for r in report["scenarios"]}
    assert_both_replicas_replay(report, out)


@pytest.fixture(scope="module")
def two_replicas_prefix_affinity(tmp_path_factory):
    from driftsched.validate.runner import run

    out = tmp_path_factory.mktemp("replicas-prefix")
    path = sessions_trace(out / "sessions.parquet")
    grid = {"policies": ["fifo"], "loads": [1.5], "requests": 120, "trace": str(path)}
    settings = replay_settings(grid, replicas=2, router="prefix_affinity", prefix_caching=True)
    return run(out / "report", settings), out / "report"


def test_prefix_affinity_over_two_caching_replicas_replays_step_for_step(
    two_replicas_prefix_affinity,
):
    """Each replica's own prefix cache, filled by what the router sent it: the hits, and so
    every step's shape, depend on the routing being reproduced exactly."""
    report, out = two_replicas_prefix_affinity
    assert_both_replicas_replay(report, out)
    for row in report["scenarios"]:
        assert_cache_saved_work(row)
